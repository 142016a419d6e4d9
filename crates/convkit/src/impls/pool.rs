//! `pool-direct`: max pooling (with or without indices) and average pooling over 1-, 2- and
//! 3-D windows, NCHW and NHWC, behind [`crate::plan::PoolPlan`], bitwise equal to
//! [`crate::reference::pool_forward`] for every thread count.
//!
//! Bitwise equality fixes the order of each window's reduction: the reference folds a
//! window's taps in row-major scan order, keeping the first maximum (the first NaN wins; of
//! equal values — `+0` and `−0` included — the first stays) and summing averages in `f64`
//! from the empty sum's value. So every output keeps its own accumulator and receives its
//! taps in exactly that order; the speed comes from running many windows side by side:
//!
//! * NCHW: one output row at a time (a chunk of [`CHUNK`] outputs along the last axis), the
//!   input rows of the window's outer axes in scan order, and within a row **tap-major**: for
//!   each kernel tap, one loop over the outputs that tap reaches inside the input (a
//!   contiguous range, so border outputs need no separate path), which vectorizes across
//!   outputs (strides 1 and 2 are compiled separately so their loads are known). Rows with few
//!   outputs fold each window's taps directly.
//! * NHWC: one output position at a time, a chunk of channels as the vector, every tap of the
//!   window a contiguous load.
//!
//! Accumulators live on the stack (a chunk at a time), so nothing is allocated and no
//! workspace is needed. Work is split over output rows (NCHW) or positions (NHWC).

use crate::desc::{Layout, PoolKind};
use crate::isa::Isa;
use crate::kernels::impl_name;
use crate::kernels::pool::{
    fused, pool_kernels, prefetch_rows, shape_slot, Avg, Max, MaxIndex, PoolKernels, Reduce,
};
use crate::scalar::Scalar;
use crate::shape::{Axis, PoolProblem};
use std::ops::Range;

/// Most spatial axes `pool-direct` handles.
pub const MAX_RANK: usize = 3;

/// Accumulators held at once: outputs along the last axis (NCHW) or channels (NHWC).
pub const CHUNK: usize = 64;

/// Kernels longer than this along the last axis are folded window by window (the tap list of
/// the tap-major loop would grow with the kernel, not with what the windows read).
const MAX_TAP_LIST: usize = 4096;

/// Rows (NCHW) with fewer outputs than this fold window by window.
const MIN_TAP_MAJOR: usize = 8;

/// Most input rows (depth × height taps) a window may span for the row-kernel path.
const MAX_FAST_ROWS: usize = crate::kernels::pool::MAX_RUN_ROWS;

/// Whether `pool-direct` handles `p`.
pub fn supports(p: &PoolProblem) -> Result<(), String> {
    if p.axes.len() > MAX_RANK {
        return Err(format!("{} spatial axes, at most {MAX_RANK} supported", p.axes.len()));
    }
    Ok(())
}

/// One output's window along one axis.
#[derive(Debug, Clone, Copy)]
struct Win {
    /// First input index inside the input.
    first: usize,
    /// Taps inside the input (spaced by the dilation).
    count: usize,
    /// This axis's factor of the average's divisor.
    factor: f64,
    /// The reference's index of an empty window's maximum along this axis.
    first_tap: usize,
}

/// One axis, padded to three axes with trivial leading ones.
#[derive(Debug, Clone)]
struct AxisPlan {
    input: usize,
    output: usize,
    stride: usize,
    dilation: usize,
    pad_begin: usize,
    wins: Vec<Win>,
    /// Taps `t` (ascending) with the outputs `lo..hi` whose tap `t` lies inside the input;
    /// `None` for kernels longer than [`MAX_TAP_LIST`].
    taps: Option<Vec<(usize, usize, usize)>>,
    /// Outputs `lo..hi` whose every tap lies inside the input.
    interior: (usize, usize),
    /// Stride and kernel of the fused loop for interior outputs, if there is one.
    fused: Option<(usize, usize)>,
    /// This axis's factor of each output's divisor (`wins[o].factor`).
    factors: Vec<f64>,
    /// The factor every output has, if they all have the same.
    uniform: Option<f64>,
    /// Some output's window lies wholly outside the input.
    any_empty: bool,
}

impl AxisPlan {
    fn new(ax: &Axis, include_pad: bool) -> Self {
        // The reference's arithmetic (in i128: huge kernels or pads neither overflow nor loop).
        let (k, d) = (ax.kernel as i128, ax.dilation as i128);
        let (n, pb, pe) = (ax.input as i128, ax.pad_begin as i128, ax.pad_end as i128);
        let ceil_div = |a: i128| -((-a).div_euclid(d));
        let taps = |start: i128, lo: i128, hi: i128| {
            (ceil_div(lo - start).max(0), (hi - start).div_euclid(d).min(k - 1))
        };
        let wins: Vec<Win> = (0..ax.output)
            .map(|o| {
                let start = o as i128 * ax.stride as i128 - pb;
                let (t0, t1) = taps(start, 0, n - 1);
                let (p0, p1) = taps(start, -pb, n + pe - 1);
                let count = (t1 - t0 + 1).max(0) as usize;
                let in_padded = (p1 - p0 + 1).max(0) as usize;
                let first = ceil_div(-start).max(0);
                Win {
                    first: if count > 0 { (start + t0 * d) as usize } else { 0 },
                    count,
                    factor: if include_pad { in_padded as f64 } else { count as f64 },
                    first_tap: if first < k { (start + first * d) as usize } else { 0 },
                }
            })
            .collect();
        let s = ax.stride as i128;
        let out = ax.output as i128;
        let taps = (ax.kernel <= MAX_TAP_LIST).then(|| {
            (0..k)
                .filter_map(|t| {
                    // Outputs o with 0 ≤ o·s − pb + t·d ≤ n − 1.
                    let lo = (pb - t * d).max(0);
                    let lo = -((-lo).div_euclid(s));
                    let top = n - 1 + pb - t * d;
                    let hi = if top < 0 { 0 } else { (top.div_euclid(s) + 1).min(out) };
                    (lo < hi).then_some((t as usize, lo as usize, hi as usize))
                })
                .collect()
        });
        let reach = (k - 1) * d;
        let lo = -((-pb).div_euclid(s));
        let hi = if n - 1 + pb - reach < 0 { 0 } else { ((n - 1 + pb - reach).div_euclid(s) + 1).min(out) };
        let factors: Vec<f64> = wins.iter().map(|w: &Win| w.factor).collect();
        let uniform = factors.first().copied().filter(|f| factors.iter().all(|g| g.to_bits() == f.to_bits()));
        AxisPlan {
            interior: (lo.min(hi) as usize, hi as usize),
            fused: shape_slot(ax.stride, ax.kernel, ax.dilation).map(|_| (ax.stride, ax.kernel)),
            any_empty: wins.iter().any(|w: &Win| w.count == 0),
            factors,
            uniform,
            input: ax.input,
            output: ax.output,
            stride: ax.stride,
            dilation: ax.dilation,
            pad_begin: ax.pad_begin,
            wins,
            taps,
        }
    }

    fn trivial() -> Self {
        AxisPlan::new(&Axis::UNIT, true)
    }
}

/// How many output rows ahead a 3-D window's input rows are prefetched (by measurement on
/// `maxpool3d_2x2x2`, AMD Zen 4: 1 row +10 %, 2 and 3 rows +20–25 %).
const PREFETCH_ROWS: usize = 2;

/// Direct pooling prepared for one problem (rank at most [`MAX_RANK`]).
#[derive(Debug, Clone)]
pub struct PoolDirect {
    kind: PoolKind,
    layout: Layout,
    batch: usize,
    channels: usize,
    /// Depth, height, width (leading trivial axes for lower ranks).
    axes: [AxisPlan; 3],
    /// The level of the row kernels.
    isa: Isa,
}

impl PoolDirect {
    /// Precompute the windows of `p` (after [`supports`] said yes), to run with the row
    /// kernels of level `isa` (which the CPU must support: see
    /// [`crate::kernels::pool::pool_kernels`]).
    pub fn new(p: &PoolProblem, isa: Isa) -> Self {
        let rank = p.axes.len();
        assert!(rank <= MAX_RANK, "pool-direct takes at most {MAX_RANK} spatial axes");
        let axis = |i: usize| match (i + rank).checked_sub(MAX_RANK) {
            Some(a) => AxisPlan::new(&p.axes[a], p.count_include_pad),
            None => AxisPlan::trivial(),
        };
        PoolDirect {
            kind: match p.kind {
                PoolKind::Max | PoolKind::GlobalMax => PoolKind::Max,
                PoolKind::Avg | PoolKind::GlobalAvg => PoolKind::Avg,
            },
            layout: p.layout,
            batch: p.batch,
            channels: p.channels,
            axes: [axis(0), axis(1), axis(2)],
            isa,
        }
    }

    /// `pool-direct:LEVEL`, e.g. `pool-direct:avx512`.
    pub fn name(&self) -> String {
        impl_name("pool-direct", self.isa)
    }

    /// The level of the row kernels.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Pool `x` into `y` (and the first maxima's flat indices within each input plane into
    /// `indices`, max pooling only) with `threads` workers. Lengths are the caller's to check.
    pub fn forward<T: Scalar>(&self, x: &[T], y: &mut [T], indices: Option<&mut [i64]>, threads: usize) {
        match (self.kind, indices) {
            (PoolKind::Avg, _) => {
                // The reference sums with `Iterator::sum`; start where it starts (−0.0 today).
                let zero: f64 = std::iter::empty::<f64>().sum();
                self.split(Avg(zero), x, y, None, threads)
            }
            (_, None) => self.split(Max, x, y, None, threads),
            (_, Some(ix)) => self.split(MaxIndex, x, y, Some(ix), threads),
        }
    }

    /// The gradient `gx = ∂L/∂x` from `x` and `gy = ∂L/∂y`, bitwise equal to
    /// [`crate::reference::pool_backward`]: every input's contributions are summed in `f64`
    /// in the reference's order (outputs in scan order, each window's taps in scan order) and
    /// rounded once. Max routes each gradient to its window's first maximum, found by the
    /// forward pass with indices; average spreads `gy / divisor` over the window's taps.
    /// Channels-first planes (channels-last samples) are independent, split over `threads`.
    pub fn backward<T: Scalar>(&self, x: &[T], gy: &[T], gx: &mut [T], threads: usize) {
        let [ad, ah, aw] = &self.axes;
        let in_sp = ad.input * ah.input * aw.input;
        let out_sp = ad.output * ah.output * aw.output;
        let c_n = self.channels;
        // Max: the first maximum's flat spatial index of every window.
        let ix = (self.kind == PoolKind::Max).then(|| {
            let mut y = vec![T::ZERO; gy.len()];
            let mut ix = vec![0i64; gy.len()];
            self.forward(x, &mut y, Some(&mut ix), threads);
            ix
        });
        // Units: (n, c) planes channels-first, samples channels-last.
        let (units, unit_in, unit_out) = match self.layout {
            Layout::Nchw => (self.batch * c_n, in_sp, out_sp),
            Layout::Nhwc => (self.batch, in_sp * c_n, out_sp * c_n),
        };
        if units == 0 || unit_in == 0 {
            return;
        }
        let threads = threads.clamp(1, units);
        let cut = |t: usize| units * t / threads * unit_in;
        let chans = if self.layout == Layout::Nhwc { c_n } else { 1 };
        super::split_join(gx, &mut [], 0, threads, &cut, &|t, part, _| {
            let mut acc = vec![0.0f64; unit_in];
            for (k, gxu) in part.chunks_exact_mut(unit_in).enumerate() {
                let u = units * t / threads + k;
                let gyu = &gy[u * unit_out..][..unit_out];
                acc.fill(0.0);
                for o in 0..out_sp {
                    let (od, oh, ow) =
                        (o / (ah.output * aw.output), (o / aw.output) % ah.output, o % aw.output);
                    let (dw, hw, ww) = (ad.wins[od], ah.wins[oh], aw.wins[ow]);
                    if dw.count == 0 || hw.count == 0 || ww.count == 0 {
                        // A window wholly in the padding took no input: no gradient flows.
                        continue;
                    }
                    for c in 0..chans {
                        let g = gyu[o * chans + c].to_f64();
                        match &ix {
                            Some(ix) => acc[ix[u * unit_out + o * chans + c] as usize * chans + c] += g,
                            None => {
                                let v = g / (1.0 * dw.factor * hw.factor * ww.factor);
                                for jd in 0..dw.count {
                                    let id = dw.first + jd * ad.dilation;
                                    for jh in 0..hw.count {
                                        let row = (id * ah.input + hw.first + jh * ah.dilation) * aw.input;
                                        for jw in 0..ww.count {
                                            let iw = ww.first + jw * aw.dilation;
                                            acc[(row + iw) * chans + c] += v;
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                gxu.iter_mut().zip(&acc).for_each(|(d, s)| *d = T::from_f64(*s));
            }
        });
    }

    /// Units of work: output rows (NCHW) or positions (NHWC), and outputs per unit.
    fn units(&self) -> (usize, usize) {
        let [d, h, w] = &self.axes;
        match self.layout {
            Layout::Nchw => (self.batch * self.channels * d.output * h.output, w.output),
            Layout::Nhwc => (self.batch * d.output * h.output * w.output, self.channels),
        }
    }

    fn split<T: Scalar, R: RowKernel<T>>(
        &self,
        r: R,
        x: &[T],
        y: &mut [T],
        ix: Option<&mut [i64]>,
        threads: usize,
    ) {
        let (units, per) = self.units();
        if units == 0 || per == 0 {
            return;
        }
        let threads = threads.clamp(1, units);
        let kern = pool_kernels::<T>(self.isa).expect("pool-direct planned for a level the CPU supports");
        let [ad, ah, aw] = &self.axes;
        let fast = match (self.layout, aw.fused, aw.taps.is_some()) {
            (Layout::Nchw, Some((s, k)), true) => {
                shape_slot(s, k, 1).and_then(|slot| R::row_kernel(&kern, slot))
            }
            _ => None,
        };
        let max_rows = ad.wins.iter().map(|w| w.count).max().unwrap_or(0)
            * ah.wins.iter().map(|w| w.count).max().unwrap_or(0);
        let fast = fast.filter(|_| max_rows <= MAX_FAST_ROWS && aw.output >= MIN_TAP_MAJOR);
        let run_k = match (fast, aw.fused) {
            (Some(_), Some((s, k))) => shape_slot(s, k, 1).and_then(|slot| R::run_kernel(&kern, slot)),
            _ => None,
        };
        let run = |rows: Range<usize>, y: &mut [T], ix: Option<&mut [i64]>| match (self.layout, fast) {
            (Layout::Nchw, Some(f)) => self.nchw_fast(r, &kern, (f, run_k), x, rows, y),
            (Layout::Nchw, None) => self.nchw(r, &kern, x, rows, y, ix),
            (Layout::Nhwc, _) => self.nhwc(r, x, rows, y, ix),
        };
        split_units(y, ix, per, units, threads, &run);
    }

    /// NCHW: output rows `rows` (over planes × outer output positions) into `y` (and `ix`).
    fn nchw<T: Scalar, R: RowKernel<T>>(
        &self,
        r: R,
        kern: &PoolKernels<T>,
        x: &[T],
        rows: Range<usize>,
        y: &mut [T],
        mut ix: Option<&mut [i64]>,
    ) {
        let [ad, ah, aw] = &self.axes;
        let (hi, wi) = (ah.input, aw.input);
        let in_plane = ad.input * hi * wi;
        let ow_n = aw.output;
        let rows_per_plane = ad.output * ah.output;
        let tap_major = aw.taps.as_deref().filter(|_| ow_n >= MIN_TAP_MAJOR);
        for (k, row) in rows.enumerate() {
            let plane = row / rows_per_plane;
            let (od, oh) = ((row % rows_per_plane) / ah.output, row % ah.output);
            let xp = &x[plane * in_plane..][..in_plane];
            let (dw, hw) = (ad.wins[od], ah.wins[oh]);
            let row_empty = dw.count == 0 || hw.count == 0;
            let row_div = 1.0 * dw.factor * hw.factor;
            let row_arg = (dw.first_tap * hi + hw.first_tap) * wi;
            for c0 in (0..ow_n).step_by(CHUNK) {
                let len = CHUNK.min(ow_n - c0);
                let mut acc = [r.init(); CHUNK];
                let acc = &mut acc[..len];
                for jd in 0..dw.count {
                    let id = dw.first + jd * ad.dilation;
                    for jh in 0..hw.count {
                        let ih = hw.first + jh * ah.dilation;
                        let row_flat = (id * hi + ih) * wi;
                        let xr = &xp[row_flat..][..wi];
                        match tap_major {
                            Some(taps) => row_pass::<T, R>(acc, xr, row_flat, c0, aw, taps),
                            None => {
                                for (a, w) in acc.iter_mut().zip(&aw.wins[c0..]) {
                                    let mut v = *a;
                                    for j in 0..w.count {
                                        let iw = w.first + j * aw.dilation;
                                        v = R::step(v, xr[iw], row_flat + iw);
                                    }
                                    *a = v;
                                }
                            }
                        }
                    }
                }
                let at = k * ow_n + c0;
                let empty = row_empty || aw.any_empty;
                let factors = &aw.factors[c0..c0 + len];
                if r.finish_row(kern, &mut y[at..at + len], acc, empty, row_div, factors, aw.uniform) {
                    continue;
                }
                for (i, (a, w)) in acc.iter().zip(&aw.wins[c0..]).enumerate() {
                    let empty = row_empty || w.count == 0;
                    let (v, arg) = r.finish(*a, empty, row_div * w.factor, row_arg + w.first_tap);
                    y[at + i] = v;
                    if let Some(ix) = ix.as_deref_mut() {
                        ix[at + i] = arg as i64;
                    }
                }
            }
        }
    }

    /// NCHW with a row kernel `rows_fn` for the windows inside the input along the last axis
    /// (max without indices, average): output rows `rows` into `y`. Each output row gathers
    /// the offsets of its window's input rows in scan order; the interior windows take them
    /// all in one kernel call, the few border windows fold tap by tap (same order). Where the
    /// whole row is interior and there is a run kernel `run_fn` (max without indices), the
    /// following rows of the same plane and depth whose windows shift by the stride go in
    /// the same call.
    fn nchw_fast<T: Scalar, R: RowKernel<T>>(
        &self,
        r: R,
        kern: &PoolKernels<T>,
        (rows_fn, run_fn): RowFns<T, R::Acc>,
        x: &[T],
        rows: Range<usize>,
        y: &mut [T],
    ) {
        let [ad, ah, aw] = &self.axes;
        let (hi, wi) = (ah.input, aw.input);
        let in_plane = ad.input * hi * wi;
        let ow_n = aw.output;
        let rows_per_plane = ad.output * ah.output;
        let (lo, hi_out) = aw.interior;
        let mut offs = [0usize; MAX_FAST_ROWS];
        // A window over several depth slices reads rows a whole slice apart, more streams at
        // once than the hardware prefetcher follows: the rows of the output row
        // `PREFETCH_ROWS` ahead are asked for early. (2-D windows are left to the hardware,
        // which keeps up with them: prefetching there measured 5–14 % slower.)
        let ahead = if ad.wins.iter().any(|w| w.count > 1) { PREFETCH_ROWS * ah.stride * wi } else { 0 };
        let n_out = rows.len();
        let mut k = 0;
        while k < n_out {
            let row = rows.start + k;
            let plane = row / rows_per_plane;
            let (od, oh) = ((row % rows_per_plane) / ah.output, row % ah.output);
            let xp = &x[plane * in_plane..][..in_plane];
            let (dw, hw) = (ad.wins[od], ah.wins[oh]);
            let row_empty = dw.count == 0 || hw.count == 0;
            let row_div = 1.0 * dw.factor * hw.factor;
            let mut n_rows = 0;
            for jd in 0..dw.count {
                for jh in 0..hw.count {
                    let (id, ih) = (dw.first + jd * ad.dilation, hw.first + jh * ah.dilation);
                    offs[n_rows] = (id * hi + ih) * wi;
                    n_rows += 1;
                }
            }
            let offs = &mut offs[..n_rows];
            // Every window of the row inside the input and not empty, and a run kernel (max
            // without indices, whose accumulators are the outputs): the run kernel sets this
            // output row and the following rows of the plane whose windows lie `stride` input
            // rows further each, in one call.
            let whole = lo == 0 && hi_out == ow_n && !(row_empty || aw.any_empty);
            if let Some(run) = run_fn.filter(|_| whole) {
                let mut len = 1;
                while k + len < n_out
                    && oh + len < ah.output
                    && ah.wins[oh + len].count == hw.count
                    && ah.wins[oh + len].first == hw.first + len * ah.stride
                {
                    len += 1;
                }
                if let Some(yr) = R::output_as_acc(&mut y[k * ow_n..][..len * ow_n]) {
                    run(yr, ow_n, xp, offs, ah.stride * wi, ahead);
                    k += len;
                    continue;
                }
            }
            if ahead > 0 {
                prefetch_rows(xp, offs, ahead, wi);
            }
            for c0 in (0..ow_n).step_by(CHUNK) {
                let c1 = (c0 + CHUNK).min(ow_n);
                let mut acc = [r.init(); CHUNK];
                let acc = &mut acc[..c1 - c0];
                let (l, h) = (lo.clamp(c0, c1), hi_out.clamp(c0, c1));
                // Border windows: every row's taps, rows in scan order.
                for o in (c0..l).chain(h..c1) {
                    let w = aw.wins[o];
                    let mut v = acc[o - c0];
                    for &row_flat in offs.iter() {
                        for j in 0..w.count {
                            let iw = w.first + j * aw.dilation;
                            v = R::step(v, xp[row_flat + iw], row_flat + iw);
                        }
                    }
                    acc[o - c0] = v;
                }
                if l < h {
                    let iw0 = l * aw.stride - aw.pad_begin;
                    offs.iter_mut().for_each(|o| *o += iw0);
                    rows_fn(&mut acc[l - c0..h - c0], xp, offs);
                    offs.iter_mut().for_each(|o| *o -= iw0);
                }
                let at = k * ow_n + c0;
                let empty = row_empty || aw.any_empty;
                let factors = &aw.factors[c0..c1];
                if r.finish_row(kern, &mut y[at..at + acc.len()], acc, empty, row_div, factors, aw.uniform) {
                    continue;
                }
                for (i, (a, w)) in acc.iter().zip(&aw.wins[c0..]).enumerate() {
                    let empty = row_empty || w.count == 0;
                    let arg = (dw.first_tap * hi + hw.first_tap) * wi + w.first_tap;
                    y[at + i] = r.finish(*a, empty, row_div * w.factor, arg).0;
                }
            }
            k += 1;
        }
    }

    /// NHWC: output positions `pos` (over batch × spatial outputs), all channels of each.
    fn nhwc<T: Scalar, R: Reduce<T>>(
        &self,
        r: R,
        x: &[T],
        pos: Range<usize>,
        y: &mut [T],
        mut ix: Option<&mut [i64]>,
    ) {
        let [ad, ah, aw] = &self.axes;
        let (hi, wi) = (ah.input, aw.input);
        let c_n = self.channels;
        let in_image = ad.input * hi * wi * c_n;
        let outs = ad.output * ah.output * aw.output;
        for (k, p) in pos.enumerate() {
            let (n, o) = (p / outs, p % outs);
            let (od, oh, ow) = (o / (ah.output * aw.output), (o / aw.output) % ah.output, o % aw.output);
            let (dw, hw, ww) = (ad.wins[od], ah.wins[oh], aw.wins[ow]);
            let xn = &x[n * in_image..][..in_image];
            let empty = dw.count == 0 || hw.count == 0 || ww.count == 0;
            let divisor = 1.0 * dw.factor * hw.factor * ww.factor;
            let arg = (dw.first_tap * hi + hw.first_tap) * wi + ww.first_tap;
            for c0 in (0..c_n).step_by(CHUNK) {
                let len = CHUNK.min(c_n - c0);
                let mut acc = [r.init(); CHUNK];
                let acc = &mut acc[..len];
                for jd in 0..dw.count {
                    let id = dw.first + jd * ad.dilation;
                    for jh in 0..hw.count {
                        let ih = hw.first + jh * ah.dilation;
                        for jw in 0..ww.count {
                            let flat = (id * hi + ih) * wi + ww.first + jw * aw.dilation;
                            let xs = &xn[flat * c_n + c0..][..len];
                            for (a, &v) in acc.iter_mut().zip(xs) {
                                *a = R::step(*a, v, flat);
                            }
                        }
                    }
                }
                let at = k * c_n + c0;
                for (i, a) in acc.iter().enumerate() {
                    let (v, arg) = r.finish(*a, empty, divisor, arg);
                    y[at + i] = v;
                    if let Some(ix) = ix.as_deref_mut() {
                        ix[at + i] = arg as i64;
                    }
                }
            }
        }
    }
}

/// One input row's taps into the accumulators of outputs `c0..c0 + acc.len()` of an NCHW
/// output row, as the reference scans them (taps ascending). Outputs whose window lies inside
/// the row take all their taps in one pass where a fused loop exists; the rest tap by tap.
#[inline(always)]
fn row_pass<T: Scalar, R: Reduce<T>>(
    acc: &mut [R::Acc],
    xr: &[T],
    row_flat: usize,
    c0: usize,
    aw: &AxisPlan,
    taps: &[(usize, usize, usize)],
) {
    let c1 = c0 + acc.len();
    let (lo, hi) = (aw.interior.0.clamp(c0, c1), aw.interior.1.clamp(c0, c1));
    if aw.fused.is_none() || lo >= hi {
        return tap_by_tap::<T, R>(acc, xr, row_flat, c0, c0..c1, aw, taps);
    }
    tap_by_tap::<T, R>(acc, xr, row_flat, c0, c0..lo, aw, taps);
    let iw0 = lo * aw.stride - aw.pad_begin;
    let (a, xs, flat) = (&mut acc[lo - c0..hi - c0], &xr[iw0..], row_flat + iw0);
    match aw.fused {
        Some((1, 2)) => fused::<T, R, 1, 2>(a, xs, flat),
        Some((1, 3)) => fused::<T, R, 1, 3>(a, xs, flat),
        Some((2, 2)) => fused::<T, R, 2, 2>(a, xs, flat),
        Some((2, 3)) => fused::<T, R, 2, 3>(a, xs, flat),
        _ => unreachable!("fused loops exist for strides 1, 2 and kernels 2, 3"),
    }
    tap_by_tap::<T, R>(acc, xr, row_flat, c0, hi..c1, aw, taps);
}

/// The taps of outputs `outs` (within the chunk starting at output `c0`), tap by tap, each
/// over the outputs it reaches inside the row.
#[inline(always)]
fn tap_by_tap<T: Scalar, R: Reduce<T>>(
    acc: &mut [R::Acc],
    xr: &[T],
    row_flat: usize,
    c0: usize,
    outs: Range<usize>,
    aw: &AxisPlan,
    taps: &[(usize, usize, usize)],
) {
    if outs.is_empty() {
        return;
    }
    for &(t, lo, hi) in taps {
        let (lo, hi) = (lo.max(outs.start), hi.min(outs.end));
        if lo >= hi {
            continue;
        }
        let iw0 = lo * aw.stride + t * aw.dilation - aw.pad_begin;
        let a = &mut acc[lo - c0..hi - c0];
        let step = |v: R::Acc, x: T, j: usize| R::step(v, x, row_flat + iw0 + j);
        match aw.stride {
            1 => strided::<T, R::Acc, 1>(a, &xr[iw0..], step),
            2 => strided::<T, R::Acc, 2>(a, &xr[iw0..], step),
            s => {
                for (j, (v, &x)) in a.iter_mut().zip(xr[iw0..].iter().step_by(s)).enumerate() {
                    *v = step(*v, x, j * s);
                }
            }
        }
    }
}

/// `acc[j] = f(acc[j], xs[j·S], j·S)` with the stride known to the compiler.
#[inline(always)]
fn strided<T: Copy, A: Copy, const S: usize>(acc: &mut [A], xs: &[T], f: impl Fn(A, T, usize) -> A) {
    let n = acc.len();
    // Whole S-element groups where the row has them, then the last element alone.
    let whole = n.min(xs.len() / S);
    for (j, (a, c)) in acc[..whole].iter_mut().zip(xs.chunks_exact(S)).enumerate() {
        *a = f(*a, c[0], j * S);
    }
    for (j, a) in acc.iter_mut().enumerate().skip(whole) {
        *a = f(*a, xs[j * S], j * S);
    }
}

/// Run `f(units, y_part, ix_part)` over `threads` contiguous ranges of `units` (each `per`
/// outputs of `y` and of `ix`), split recursively with `team::join` like
/// [`super::split_join`], which splits one output only; nothing is allocated.
fn split_units<T: Send, F>(
    y: &mut [T],
    ix: Option<&mut [i64]>,
    per: usize,
    units: usize,
    threads: usize,
    f: &F,
) where
    F: Fn(Range<usize>, &mut [T], Option<&mut [i64]>) + Sync,
{
    let cut = |t: usize| units * t / threads;
    fn go<T: Send, F: Fn(Range<usize>, &mut [T], Option<&mut [i64]>) + Sync>(
        y: &mut [T],
        ix: Option<&mut [i64]>,
        per: usize,
        (t0, t1): (usize, usize),
        cut: &(dyn Fn(usize) -> usize + Sync),
        f: &F,
    ) {
        let (u0, u1) = (cut(t0), cut(t1));
        if t1 - t0 == 1 {
            f(u0..u1, y, ix);
            return;
        }
        let mid = (t0 + t1) / 2;
        let at = (cut(mid) - u0) * per;
        let (ya, yb) = y.split_at_mut(at);
        let (ia, ib) = match ix {
            Some(ix) => {
                let (a, b) = ix.split_at_mut(at);
                (Some(a), Some(b))
            }
            None => (None, None),
        };
        super::team::join(|| go(ya, ia, per, (t0, mid), cut, f), || go(yb, ib, per, (mid, t1), cut, f));
    }
    go(y, ix, per, (0, threads), &cut, f)
}

/// A row kernel: one input row's taps into the accumulators of outputs whose windows lie
/// inside it (see [`crate::kernels::pool::fused`]).
type RowFn<T, A> = fn(&mut [A], &[T], &[usize]);

/// A run kernel: whole output rows whose windows lie a constant input step apart, set in one
/// call (see [`crate::kernels::pool::MaxRunFn`]).
type RunFn<T, A> = fn(&mut [A], usize, &[T], &[usize], usize, usize);

/// A row kernel and, where there is one, the run kernel of the same window shape.
type RowFns<T, A> = (RowFn<T, A>, Option<RunFn<T, A>>);

/// A reduction with a level's kernels: the row kernel of a window shape, and the outputs of a
/// chunk written at once where that is possible.
trait RowKernel<T: Scalar>: Reduce<T> {
    /// The level's row kernel for [`crate::kernels::pool::SHAPES`] slot `slot`, if any.
    fn row_kernel(k: &PoolKernels<T>, slot: usize) -> Option<RowFn<T, Self::Acc>>;
    /// The level's run kernel for slot `slot`, where the accumulators are the outputs and
    /// start from [`Reduce::init`] (max without indices).
    fn run_kernel(_: &PoolKernels<T>, _: usize) -> Option<RunFn<T, Self::Acc>> {
        None
    }
    /// The output row itself as the accumulators, where a non-empty window's accumulator is
    /// its output (max without indices).
    fn output_as_acc(_: &mut [T]) -> Option<&mut [Self::Acc]> {
        None
    }
    /// Write a chunk's outputs from its accumulators (`empty`: some window may be empty;
    /// divisors `row_div · factors[j]`, all `row_div · uniform` if that is `Some`); false if
    /// the caller must finish window by window.
    #[allow(clippy::too_many_arguments)]
    fn finish_row(
        &self,
        k: &PoolKernels<T>,
        y: &mut [T],
        acc: &[Self::Acc],
        empty: bool,
        row_div: f64,
        factors: &[f64],
        uniform: Option<f64>,
    ) -> bool;
}

impl<T: Scalar> RowKernel<T> for Max {
    fn row_kernel(k: &PoolKernels<T>, slot: usize) -> Option<RowFn<T, T>> {
        Some(k.max_row[slot])
    }
    fn run_kernel(k: &PoolKernels<T>, slot: usize) -> Option<RunFn<T, T>> {
        Some(k.max_run[slot])
    }
    fn output_as_acc(y: &mut [T]) -> Option<&mut [T]> {
        Some(y)
    }
    #[inline(always)]
    fn finish_row(
        &self,
        _: &PoolKernels<T>,
        y: &mut [T],
        acc: &[T],
        empty: bool,
        _: f64,
        _: &[f64],
        _: Option<f64>,
    ) -> bool {
        if !empty {
            y.copy_from_slice(acc);
        }
        !empty
    }
}

impl<T: Scalar> RowKernel<T> for MaxIndex {
    fn row_kernel(_: &PoolKernels<T>, _: usize) -> Option<RowFn<T, (T, usize)>> {
        None
    }
    #[inline(always)]
    fn finish_row(
        &self,
        _: &PoolKernels<T>,
        _: &mut [T],
        _: &[(T, usize)],
        _: bool,
        _: f64,
        _: &[f64],
        _: Option<f64>,
    ) -> bool {
        false
    }
}

impl<T: Scalar> RowKernel<T> for Avg {
    fn row_kernel(k: &PoolKernels<T>, slot: usize) -> Option<RowFn<T, f64>> {
        Some(k.avg_row[slot])
    }
    #[inline(always)]
    fn finish_row(
        &self,
        k: &PoolKernels<T>,
        y: &mut [T],
        acc: &[f64],
        _: bool,
        row_div: f64,
        factors: &[f64],
        uniform: Option<f64>,
    ) -> bool {
        // One divisor that is a power of two: multiplying by its inverse rounds the same
        // real number, `acc / d`, so the results are the same bits.
        match uniform.map(|f| row_div * f) {
            Some(d) if is_pow2(d) => (k.avg_scale)(y, acc, 1.0 / d),
            _ => (k.avg_out)(y, acc, row_div, factors),
        }
        true
    }
}

/// `d` is a power of two whose inverse is a normal `f64` (`1 / d` exact).
fn is_pow2(d: f64) -> bool {
    d >= 1.0 && d < 2f64.powi(1000) && d.to_bits() & ((1u64 << 52) - 1) == 0
}
