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
        let wins = (0..ax.output)
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
        AxisPlan {
            interior: (lo.min(hi) as usize, hi as usize),
            fused: fused_shape(ax.stride, ax.kernel, ax.dilation),
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
        let ax = Axis {
            input: 1,
            kernel: 1,
            stride: 1,
            dilation: 1,
            pad_begin: 0,
            pad_end: 0,
            output_padding: 0,
            output: 1,
        };
        AxisPlan::new(&ax, true)
    }
}

/// Direct pooling prepared for one problem (rank at most [`MAX_RANK`]).
#[derive(Debug, Clone)]
pub struct PoolDirect {
    kind: PoolKind,
    layout: Layout,
    batch: usize,
    channels: usize,
    /// Depth, height, width (leading trivial axes for lower ranks).
    axes: [AxisPlan; 3],
}

impl PoolDirect {
    /// Precompute the windows of `p` (after [`supports`] said yes).
    pub fn new(p: &PoolProblem) -> Self {
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
        }
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

    /// Units of work: output rows (NCHW) or positions (NHWC), and outputs per unit.
    fn units(&self) -> (usize, usize) {
        let [d, h, w] = &self.axes;
        match self.layout {
            Layout::Nchw => (self.batch * self.channels * d.output * h.output, w.output),
            Layout::Nhwc => (self.batch * d.output * h.output * w.output, self.channels),
        }
    }

    fn split<T: Scalar, R: Reduce<T>>(
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
        let run = |rows: Range<usize>, y: &mut [T], ix: Option<&mut [i64]>| match self.layout {
            Layout::Nchw => self.nchw(r, x, rows, y, ix),
            Layout::Nhwc => self.nhwc(r, x, rows, y, ix),
        };
        split_units(y, ix, per, units, threads, &run);
    }

    /// NCHW: output rows `rows` (over planes × outer output positions) into `y` (and `ix`).
    fn nchw<T: Scalar, R: Reduce<T>>(
        &self,
        r: R,
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

/// Stride and kernel of the fused loops (dilation 1).
fn fused_shape(stride: usize, kernel: usize, dilation: usize) -> Option<(usize, usize)> {
    (dilation == 1 && matches!(stride, 1 | 2) && matches!(kernel, 2 | 3)).then_some((stride, kernel))
}

/// Windows wholly inside the row: `acc[j]` folds `xs[j·S + k]` for `k < K` in order. The row
/// is viewed as S-element arrays so that window `j` reads arrays `j` up to `j + 2` (zipped
/// iterators, no bounds checks: the loop vectorizes, strided loads deinterleaved); the last
/// windows, whose last array would pass the row's end, fold by index.
#[inline(always)]
fn fused<T: Scalar, R: Reduce<T>, const S: usize, const K: usize>(
    acc: &mut [R::Acc],
    xs: &[T],
    flat0: usize,
) {
    let n = acc.len();
    let (groups, _) = xs.as_chunks::<S>();
    // Arrays a window spans: 1 (S = K = 2), 2 (S = 2, K = 3 or S = 1, K = 2) or 3.
    let spans = (K - 1) / S + 1;
    let main = n.min((groups.len() + 1).saturating_sub(spans));
    let (head, tail) = acc.split_at_mut(main);
    let fold = |a: &mut R::Acc, g: [&[T; S]; 3], j: usize| {
        let mut v = *a;
        for k in 0..K {
            v = R::step(v, g[k / S][k % S], flat0 + j * S + k);
        }
        *a = v;
    };
    match spans {
        1 => head.iter_mut().zip(groups).enumerate().for_each(|(j, (a, g0))| fold(a, [g0, g0, g0], j)),
        2 => {
            let it = head.iter_mut().zip(groups).zip(&groups[1..]);
            it.enumerate().for_each(|(j, ((a, g0), g1))| fold(a, [g0, g1, g1], j))
        }
        _ => {
            let it = head.iter_mut().zip(groups).zip(&groups[1..]).zip(&groups[2..]);
            it.enumerate().for_each(|(j, (((a, g0), g1), g2))| fold(a, [g0, g1, g2], j))
        }
    }
    for (j, a) in tail.iter_mut().enumerate() {
        let b = (main + j) * S;
        let mut v = *a;
        for k in 0..K {
            v = R::step(v, xs[b + k], flat0 + b + k);
        }
        *a = v;
    }
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

/// Whether the reference's max scan replaces `best` by `v`: `v` is larger, or the first NaN.
/// (`!(v <= best)` is "larger or unordered": two compares on SIMD lanes instead of three.)
#[inline(always)]
#[allow(clippy::neg_cmp_op_on_partial_ord)]
fn takes<T: Scalar>(best: T, v: T) -> bool {
    !best.is_nan() & !(v <= best)
}

/// A window reduction: its accumulator, one tap, and the result.
trait Reduce<T: Scalar>: Copy + Sync {
    type Acc: Copy;
    fn init(&self) -> Self::Acc;
    /// Fold in the tap `v` at flat index `flat` within the input plane.
    fn step(acc: Self::Acc, v: T, flat: usize) -> Self::Acc;
    /// The output and index of a window (`empty`: no tap inside the input).
    fn finish(&self, acc: Self::Acc, empty: bool, divisor: f64, empty_arg: usize) -> (T, usize);
}

/// Max pooling without indices. Starting from −∞ is the same as starting from the first tap:
/// any tap replaces −∞ except −∞ itself, which has the same bits.
#[derive(Clone, Copy)]
struct Max;

impl<T: Scalar> Reduce<T> for Max {
    type Acc = T;
    #[inline(always)]
    fn init(&self) -> T {
        T::from_f64(f64::NEG_INFINITY)
    }
    #[inline(always)]
    fn step(acc: T, v: T, _: usize) -> T {
        if takes(acc, v) {
            v
        } else {
            acc
        }
    }
    #[inline(always)]
    fn finish(&self, acc: T, empty: bool, _: f64, _: usize) -> (T, usize) {
        (if empty { T::LOWEST } else { acc }, 0)
    }
}

/// Max pooling with the index of the first maximum (`usize::MAX` until the first tap).
#[derive(Clone, Copy)]
struct MaxIndex;

impl<T: Scalar> Reduce<T> for MaxIndex {
    type Acc = (T, usize);
    #[inline(always)]
    fn init(&self) -> (T, usize) {
        (T::from_f64(f64::NEG_INFINITY), usize::MAX)
    }
    #[inline(always)]
    fn step(acc: (T, usize), v: T, flat: usize) -> (T, usize) {
        if (acc.1 == usize::MAX) | takes(acc.0, v) {
            (v, flat)
        } else {
            acc
        }
    }
    #[inline(always)]
    fn finish(&self, acc: (T, usize), empty: bool, _: f64, empty_arg: usize) -> (T, usize) {
        if empty {
            (T::LOWEST, empty_arg)
        } else {
            acc
        }
    }
}

/// Average pooling: an `f64` sum in scan order from the empty sum's value, then one division.
#[derive(Clone, Copy)]
struct Avg(f64);

impl<T: Scalar> Reduce<T> for Avg {
    type Acc = f64;
    #[inline(always)]
    fn init(&self) -> f64 {
        self.0
    }
    #[inline(always)]
    fn step(acc: f64, v: T, _: usize) -> f64 {
        acc + v.to_f64()
    }
    #[inline(always)]
    fn finish(&self, acc: f64, _: bool, divisor: f64, _: usize) -> (T, usize) {
        (T::from_f64(acc / divisor), 0)
    }
}

/// Run `f(units, y_part, ix_part)` over `threads` contiguous ranges of `units` (each `per`
/// outputs of `y` and of `ix`), split recursively with `rayon::join` like
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
        rayon::join(|| go(ya, ia, per, (t0, mid), cut, f), || go(yb, ib, per, (mid, t1), cut, f));
    }
    go(y, ix, per, (0, threads), &cut, f)
}
