//! `fft`: convolution with large kernels by the fast Fourier transform (the `realfft` and
//! `rustfft` crates), for 1-D and 2-D problems with few channels per group: single-channel
//! image filters, depthwise (per-channel) filtering, small dense channel mixes.
//!
//! The output is cut into tiles (overlap-save); each tile reads the padded input patch its
//! outputs see. Per tile and group, every input channel's patch is transformed (real FFT of
//! each row, scattered column-major, then complex FFT of each column), multiplied by the
//! kernel spectra computed at plan time (summed over the group's input channels, one product
//! per output channel), transformed back, and the tile's outputs written. The transform
//! length per axis is at least `tile + effective kernel − 1`: the circular wrap-around then
//! only reaches positions no wanted output reads. Cross-correlation multiplies by the conjugate kernel spectrum; `flip`
//! transforms the reversed kernel; a dilated kernel is transformed with its zeros inserted; the
//! `1/(n_h·n_w)` of the inverse transform is folded into the kernel spectra.
//!
//! - Tile size: per axis, transform lengths from `max(1.25·kernel, MIN_LEN)` up to the one
//!   holding the whole axis are tried, each with the axis cut into equal tiles (the last
//!   partial) and the length shrunk back to the smallest fast one (`fast_len`: `2^a·3^b·5^c`,
//!   `a ≥ 1`, `c ≤ 1`) that still holds them; the pair of axis tilings with the least modelled
//!   cost wins ([`MIN_LEN`] keeps per-call overheads of tiny transforms out). The 1024² image
//!   with a 31×31 kernel runs as 4×4 tiles of 256² outputs through 288² transforms, with a
//!   15×15 kernel as 9×9 tiles of 114² through 128²; a tile's spectra (330 KB in f32 for 288²)
//!   stay in the L2 cache through all passes.
//! - Threads: workers take whole bands of tiles (a row of tiles of one sample and group,
//!   channels-first; of one sample and every group, channels-last), so each writes its own
//!   contiguous output rows (`split_units`, a multi-slice `split_join`); a tile is
//!   computed by one worker entirely in its own scratch, by the same plans in the same order
//!   whatever the split, so results are bitwise identical for any thread count.
//! - ISA: `rustfft` picks its own SIMD code (AVX, SSE or scalar) at run time and uses none of
//!   convkit's kernel sets, so the family is registered once, as `fft:generic` — the one level
//!   that exists for `f32` and `f64` under every `CONVKIT_MAX_ISA` cap (its speed does not
//!   depend on that cap).
//! - Scratch: complex values are carved from the `T` workspace with `bytemuck` (`Complex<T>`
//!   is two `T`s), so executing allocates nothing and needs no `unsafe`.
//!
//! Accuracy: the FFT is not exact. Each output differs from the exact sum by about
//! `c · log2(n_h·n_w) · ε · Σ|w| · max|x|` (ε the unit roundoff, `c` a small constant, the
//! maximum over the tile's input patch) — relative to the largest input near the output, not to
//! that output's own terms, so outputs much smaller than that scale (a dark region beside a
//! bright one) lose relative precision, and a NaN or infinity in a patch spreads over the
//! whole tile. The worst errors measured in `tests/fft.rs` (unit-uniform data, kernels up
//! to 35×35 and 700 taps) are `3.0e-8 · Σ|w|·max|x|` in f32 and `2.9e-16 ·` in f64 (tested
//! against `3e-7` and `3e-15`). The planner therefore only picks it unless exact results are
//! asked for ([`crate::PlanOptions::exact`], `CONVKIT_EXACT=1`).
//!
//! When it is chosen ([`supports`]): stride 1, zero padding, rank 1 or 2, at most
//! [`MAX_PAIRS`] input × output channel pairs per group, at least [`MIN_TAPS`] kernel taps,
//! and a cost model that predicts it faster than direct convolution: direct costs
//! `2·taps·C/g` flops per output at [`DIRECT_GFLOPS`]; the FFT costs per tile and group
//! `(C/g + K/g) · 2.5·n·log2(n)` transform flops (`n = n_h·n_w`) plus `4·C/g·K/g·n` for the
//! products, at [`FFT_GFLOPS`]. Measured on Zen 4 (1 thread, one 1024² channel, `same`
//! padding, f32; direct = `dw-direct:avx512`, the fastest direct path):
//!
//! | kernel | direct ms | fft ms | picked |
//! |--------|-----------|--------|--------|
//! | 7×7    | 2.4       | 5.6    | direct |
//! | 11×11  | 4.4       | 5.1    | direct |
//! | 15×15  | 7.2       | 4.7    | fft    |
//! | 31×31  | 23.6      | 5.4    | fft    |
//!
//! The model predicts 1.2 / 3.0 / 5.6 / 23.7 ms direct against 4.3 / 4.8 / 4.9 / 5.7 ms FFT:
//! its direct rate is that of large kernels, so it errs towards direct convolution near the
//! crossover (13×13: 4.2 against 4.8 predicted, 5.9 against about 5 measured). Per output the
//! FFT cost depends on the kernel, not the image size (the tiles do), so the same crossover
//! holds for larger images; images smaller than a tile pay for a whole transform.

use super::ConvImpl;
use crate::isa::Isa;
use crate::kernels::KernelSet;
use crate::scalar::Scalar;
use crate::shape::ConvProblem;
use crate::{Layout, PadMode};
use num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::FftPlanner;
use std::sync::Arc;

/// Fewest kernel taps (∏ kernel) the planner uses it for.
pub const MIN_TAPS: usize = 64;

/// Most input × output channel pairs per group: each pair is one product per frequency, and
/// direct convolution wins long before the transforms stop dominating.
pub const MAX_PAIRS: usize = 16;

/// Most bytes of kernel spectra a plan keeps.
pub const SPECTRA_BYTES: usize = 64 << 20;

/// Most scratch bytes one worker uses (its tile's spectra).
pub const WORKER_BYTES: usize = 8 << 20;

/// Shortest transform along an axis that is longer (shorter tiles spend more on per-call and
/// per-tile overheads than their transforms save).
pub const MIN_LEN: usize = 128;

/// Rows transformed together between the row-major transforms and the column-major spectra,
/// so each column's part of a block is one contiguous run (a 64-byte line of `f32` values).
pub const ROWS: usize = 8;

/// Rate the cost model assumes for direct convolution, GFLOP/s (flops as `2·taps·C/g` per
/// output; `dw-direct:avx512` on Zen 4 runs the 31×31 blur at about 85).
pub const DIRECT_GFLOPS: f64 = 85.0;

/// Rate the cost model assumes for the FFT path, GFLOP/s of nominal transform flops
/// (`2.5·n·log2 n` per real 2-D transform of `n` points).
pub const FFT_GFLOPS: f64 = 20.0;

/// One axis as the transforms see it (a 1-D problem gets a height axis of one row).
#[derive(Clone, Copy, Debug)]
struct Ax {
    input: usize,
    kernel: usize,
    dilation: usize,
    pad_begin: usize,
    output: usize,
}

impl Ax {
    fn effective(&self) -> usize {
        self.dilation * (self.kernel - 1) + 1
    }
}

/// Transform sizes and tiling chosen for one problem.
#[derive(Clone, Copy, Debug)]
struct Geom {
    h: Ax,
    w: Ax,
    /// Transform lengths: `nh` rows (complex FFT per column), `nw` columns (real FFT per row).
    nh: usize,
    nw: usize,
    /// Complex values per row spectrum, `nw/2 + 1`.
    m: usize,
    /// Output rows and columns per tile, and tiles along each axis.
    th: usize,
    tw: usize,
    tiles_h: usize,
    tiles_w: usize,
    cg: usize,
    kg: usize,
}

impl Geom {
    /// Complex values of one transformed patch, `[column j][row i]`.
    fn spectrum(&self) -> usize {
        self.nh * self.m
    }
    /// Spectra a worker keeps: one per input channel, and an accumulator unless the single
    /// product is formed in place.
    fn worker_spectra(&self) -> usize {
        self.cg + usize::from(self.cg * self.kg > 1)
    }
}

/// Smallest transform length `n ≥ min` that `rustfft` runs fast: `2^a·3^b·5^c` with `a ≥ 1`
/// and `c ≤ 1` (or 1). Its per-point cost at such lengths is within about 20% of a power of
/// two's; lengths with several factors 5 or odd ones measured up to 2.5× slower.
fn fast_len(min: usize) -> usize {
    if min <= 1 {
        return 1;
    }
    let mut n = min;
    loop {
        let mut r = n;
        let mut twos = 0;
        while r.is_multiple_of(2) {
            r /= 2;
            twos += 1;
        }
        while r.is_multiple_of(3) {
            r /= 3;
        }
        if twos >= 1 && (r == 1 || r == 5) {
            return n;
        }
        n += 1;
    }
}

/// Candidate tilings of one axis: `(tiles, tile, n)` for transform lengths from the smallest
/// that holds the kernel up to the one holding the whole axis.
fn axis_tilings(a: &Ax) -> Vec<(usize, usize, usize)> {
    let e = a.effective();
    let mut out: Vec<(usize, usize, usize)> = Vec::new();
    let mut n = fast_len((e + e.div_ceil(4)).max(MIN_LEN));
    loop {
        let tiles = a.output.div_ceil(n + 1 - e);
        let t = a.output.div_ceil(tiles);
        let nt = fast_len(t + e - 1);
        if out.last().is_none_or(|l| l.0 != tiles) {
            out.push((tiles, t, nt));
        }
        if tiles == 1 || out.len() >= 48 {
            return out;
        }
        n = fast_len(n + 1);
    }
}

/// Predicted seconds of the FFT path with geometry `g`.
fn fft_seconds(p: &ConvProblem, g: &Geom) -> f64 {
    let n = (g.nh * g.nw) as f64;
    let (cg, kg) = (g.cg as f64, g.kg as f64);
    let per_tile = (cg + kg) * 2.5 * n * n.max(2.0).log2() + 4.0 * cg * kg * n;
    per_tile * (g.tiles_h * g.tiles_w * p.batch * p.groups) as f64 / (FFT_GFLOPS * 1e9)
}

/// Predicted seconds of direct convolution.
fn direct_seconds(p: &ConvProblem) -> f64 {
    2.0 * p.macs() as f64 / (DIRECT_GFLOPS * 1e9)
}

/// The cheapest tiling for `p` with elements of `bytes` bytes, or why none fits.
fn geometry(p: &ConvProblem, bytes: usize) -> Result<Geom, String> {
    let ax = |a: &crate::shape::Axis| Ax {
        input: a.input,
        kernel: a.kernel,
        dilation: a.dilation,
        pad_begin: a.pad_begin,
        output: a.output,
    };
    let (h, w) = match p.axes.as_slice() {
        [w] => (Ax { input: 1, kernel: 1, dilation: 1, pad_begin: 0, output: 1 }, ax(w)),
        [h, w] => (ax(h), ax(w)),
        a => return Err(format!("{}-D, needs 1-D or 2-D", a.len())),
    };
    let (cg, kg) = (p.in_channels / p.groups, p.out_channels / p.groups);
    let cplx = 2 * bytes;
    let mut best: Option<(f64, Geom)> = None;
    for &(tiles_h, th, nh) in &axis_tilings(&h) {
        for &(tiles_w, tw, nw) in &axis_tilings(&w) {
            let m = nw / 2 + 1;
            let g = Geom { h, w, nh, nw, m, th, tw, tiles_h, tiles_w, cg, kg };
            let spectra = p.out_channels.saturating_mul(cg).saturating_mul(g.spectrum()).saturating_mul(cplx);
            let worker = (g.worker_spectra() * g.spectrum()).saturating_mul(cplx);
            if spectra > SPECTRA_BYTES || worker > WORKER_BYTES {
                continue;
            }
            let t = fft_seconds(p, &g);
            if best.as_ref().is_none_or(|b| t < b.0) {
                best = Some((t, g));
            }
        }
    }
    best.map(|b| b.1).ok_or_else(|| {
        format!(
            "every tiling needs more than {} MiB of kernel spectra or {} MiB of scratch per worker",
            SPECTRA_BYTES >> 20,
            WORKER_BYTES >> 20
        )
    })
}

/// `Ok` if the FFT path handles `p` on kernel set `ks` and is predicted faster than direct
/// convolution (see the module documentation), else why not.
pub fn supports<T: Scalar>(p: &ConvProblem, ks: &KernelSet<T>) -> Result<(), String> {
    if ks.isa != Isa::Generic {
        return Err("the FFT crate picks its own SIMD at run time: registered once, as fft:generic".into());
    }
    let rank = p.axes.len();
    if rank > 2 {
        return Err(format!("{rank}-D, needs 1-D or 2-D"));
    }
    if p.axes.iter().any(|a| a.stride != 1) {
        return Err("stride above 1".into());
    }
    if p.padding_mode != PadMode::Zeros {
        return Err(format!("padding mode {}, needs zeros", p.padding_mode));
    }
    let (cg, kg) = (p.in_channels / p.groups, p.out_channels / p.groups);
    if cg * kg > MAX_PAIRS {
        return Err(format!("{cg}×{kg} channel pairs per group, at most {MAX_PAIRS}"));
    }
    let taps: usize = p.axes.iter().map(|a| a.kernel).product();
    if taps < MIN_TAPS {
        return Err(format!("{taps} kernel taps, needs at least {MIN_TAPS}"));
    }
    let g = geometry(p, std::mem::size_of::<T>())?;
    let (fft, direct) = (fft_seconds(p, &g), direct_seconds(p));
    if fft >= direct {
        return Err(format!(
            "predicted slower than direct ({:.3} ms against {:.3} ms)",
            fft * 1e3,
            direct * 1e3
        ));
    }
    Ok(())
}

/// Build the FFT path for `p` (after [`supports`]): kernel spectra and transform plans.
pub fn build<T: Scalar>(p: &ConvProblem, w: &[T], _ks: KernelSet<T>) -> Box<dyn ConvImpl<T>> {
    let w: Vec<f64> = w.iter().map(|v| v.to_f64()).collect();
    let imp = if T::NAME == "f32" {
        cast::<Box<dyn ConvImpl<f32>>, Box<dyn ConvImpl<T>>>(Box::new(FftConv::<f32>::new(p, &w)))
    } else {
        cast::<Box<dyn ConvImpl<f64>>, Box<dyn ConvImpl<T>>>(Box::new(FftConv::<f64>::new(p, &w)))
    };
    imp.expect("convkit computes in f32 or f64")
}

/// `a` as a `B` when `A` and `B` are the same type.
fn cast<A: 'static, B: 'static>(a: A) -> Option<B> {
    let mut a = Some(a);
    (&mut a as &mut dyn std::any::Any).downcast_mut::<Option<B>>().and_then(Option::take)
}

/// The element types the transforms run in (`f32`, `f64`).
trait FftFloat: Scalar + realfft::FftNum + bytemuck::Pod {}
impl FftFloat for f32 {}
impl FftFloat for f64 {}

/// Output slices a worker writes: up to [`MAX_PAIRS`] (one per output channel of a group,
/// channels-first) or one (channels-last, every channel interleaved).
type Slabs<'a, F> = [&'a mut [F]; MAX_PAIRS];

/// A worker's job for [`split_units`]: first and end unit, its slabs, its scratch.
type UnitFn<'f, F> = dyn Fn(usize, usize, &mut Slabs<'_, F>, &mut [F]) + Sync + 'f;

/// Run `f(u0, u1, slabs, ws_t)` for every worker `t < threads` on units `u0..u1` (an even
/// share of `units`), where each of the first `used` slabs is cut at `offset(u)` (its part for
/// units `u0..u1`, `offset(units)` = the slab's length) and `ws_t` is the `t`-th run of `per_ws`
/// elements of `ws`. Like [`super::split_join`], recursively with `team::join`, allocating
/// nothing.
#[allow(clippy::too_many_arguments)]
fn split_units<F: Send>(
    slabs: Slabs<'_, F>,
    used: usize,
    units: usize,
    offset: &(dyn Fn(usize) -> usize + Sync),
    ws: &mut [F],
    per_ws: usize,
    threads: usize,
    f: &UnitFn<'_, F>,
) {
    #[allow(clippy::too_many_arguments)]
    fn go<F: Send>(
        mut slabs: Slabs<'_, F>,
        used: usize,
        (u0, u1): (usize, usize),
        (t0, t1): (usize, usize),
        units: usize,
        threads: usize,
        offset: &(dyn Fn(usize) -> usize + Sync),
        ws: &mut [F],
        per_ws: usize,
        f: &UnitFn<'_, F>,
    ) {
        if t1 - t0 == 1 {
            if u1 > u0 {
                f(u0, u1, &mut slabs, &mut ws[..per_ws]);
            }
            return;
        }
        let mid = (t0 + t1) / 2;
        let um = units * mid / threads;
        let at = offset(um) - offset(u0);
        let (mut a, mut b): (Slabs<'_, F>, Slabs<'_, F>) = (Default::default(), Default::default());
        for (i, s) in slabs.into_iter().enumerate().take(used) {
            let (x, y) = s.split_at_mut(at);
            a[i] = x;
            b[i] = y;
        }
        let (wa, wb) = ws.split_at_mut((mid - t0) * per_ws);
        super::team::join(
            || go(a, used, (u0, um), (t0, mid), units, threads, offset, wa, per_ws, f),
            || go(b, used, (um, u1), (mid, t1), units, threads, offset, wb, per_ws, f),
        );
    }
    let threads = threads.clamp(1, units.max(1));
    go(slabs, used, (0, units), (0, threads), units, threads, offset, ws, per_ws, f)
}

/// FFT convolution prepared for one problem in element type `F`.
struct FftConv<F: FftFloat> {
    p: ConvProblem,
    g: Geom,
    r2c: Arc<dyn RealToComplex<F>>,
    c2r: Arc<dyn ComplexToReal<F>>,
    col_fwd: Arc<dyn rustfft::Fft<F>>,
    col_inv: Arc<dyn rustfft::Fft<F>>,
    /// Conjugated kernel spectra over `n_h·n_w`: `[group][k][c][column j][row i]`.
    spectra: Vec<Complex<F>>,
    /// FFT scratch (complex values) the largest of the four transforms needs.
    fft_scratch: usize,
    /// Per-worker scratch, complex values.
    per_worker: usize,
}

/// Where a worker's tile outputs go within its slabs: output channel `k` (group-local) of
/// tile-local row `r`, column `q` is `slabs[slab(k)][base + r·row + q·step + chan(k)]`.
struct Dst {
    base: usize,
    row: usize,
    step: usize,
    /// Channels-last: every channel in slab 0, at offset `k0 + k`; channels-first: channel `k`
    /// in slab `k`.
    interleaved: Option<usize>,
}

impl<F: FftFloat> FftConv<F> {
    fn new(p: &ConvProblem, w: &[f64]) -> Self {
        let g = geometry(p, std::mem::size_of::<F>()).expect("supported problem");
        let mut rp = RealFftPlanner::<F>::new();
        let mut cp = FftPlanner::<F>::new();
        let (r2c, c2r) = (rp.plan_fft_forward(g.nw), rp.plan_fft_inverse(g.nw));
        let (col_fwd, col_inv) = (cp.plan_fft_forward(g.nh), cp.plan_fft_inverse(g.nh));
        let spectra = kernel_spectra(p, &g, w)
            .into_iter()
            .map(|z| Complex::new(<F as Scalar>::from_f64(z.re), <F as Scalar>::from_f64(z.im)))
            .collect();
        let fft_scratch = r2c
            .get_scratch_len()
            .max(c2r.get_scratch_len())
            .max(col_fwd.get_inplace_scratch_len())
            .max(col_inv.get_inplace_scratch_len());
        // Spectra, ROWS row spectra, one real row, FFT scratch.
        let per_worker = g.worker_spectra() * g.spectrum() + ROWS * g.m + g.nw.div_ceil(2) + fft_scratch;
        FftConv { p: p.clone(), g, r2c, c2r, col_fwd, col_inv, spectra, fft_scratch, per_worker }
    }

    /// One tile `(bi, bj)` of sample `n`, group `grp`: outputs into `slabs` at `dst`.
    #[allow(clippy::too_many_arguments)]
    fn tile(
        &self,
        x: &[F],
        bias: Option<&[F]>,
        (n, grp): (usize, usize),
        (bi, bj): (usize, usize),
        slabs: &mut Slabs<'_, F>,
        dst: &Dst,
        ws: &mut [Complex<F>],
    ) {
        let g = &self.g;
        let p = &self.p;
        let (nh, nw, m, cg, kg) = (g.nh, g.nw, g.m, g.cg, g.kg);
        let sp = g.spectrum();
        let (specs, rest) = ws.split_at_mut(g.worker_spectra() * sp);
        let (rowc, rest) = rest.split_at_mut(ROWS * m);
        let (rowr, rest) = rest.split_at_mut(nw.div_ceil(2));
        let rowr = &mut bytemuck::cast_slice_mut::<Complex<F>, F>(rowr)[..nw];
        let fs = &mut rest[..self.fft_scratch];
        // The tile's outputs, and the padded patch they read (rows and columns past it are
        // never read by them and stay zero).
        let (oh0, ow0) = (bi * g.th, bj * g.tw);
        let (rows, cols) = (g.th.min(g.h.output - oh0), g.tw.min(g.w.output - ow0));
        let (ph, pw) = (rows + g.h.effective() - 1, cols + g.w.effective() - 1);
        // Input columns the patch holds: patch column `jj` is input column `ow0 + jj − pad`.
        let j0 = g.w.pad_begin.saturating_sub(ow0).min(pw);
        let j1 = (g.w.pad_begin + g.w.input).saturating_sub(ow0).clamp(j0, pw);
        let ix0 = (ow0 + j0).saturating_sub(g.w.pad_begin);
        // Element strides of the input.
        let (hw_in, c_in) = (g.h.input * g.w.input, p.in_channels);
        let (xs_c, xs_pos) = match p.layout {
            Layout::Nchw => (hw_in, 1),
            Layout::Nhwc => (1, c_in),
        };
        let zero = Complex::new(F::ZERO, F::ZERO);
        for c in 0..cg {
            let xc = &mut specs[c * sp..][..sp];
            let ch = grp * cg + c;
            let plane = n * c_in * hw_in + ch * xs_c;
            // Blocks of ROWS rows: transform each into `rowc`, then store the block column by
            // column, ROWS contiguous values each.
            for i0 in (0..nh).step_by(ROWS) {
                let nb = ROWS.min(nh - i0);
                for (r, spec) in rowc.chunks_exact_mut(m).take(nb).enumerate() {
                    let i = i0 + r;
                    let ir = (oh0 + i) as isize - g.h.pad_begin as isize;
                    if i >= ph || ir < 0 || ir as usize >= g.h.input || j1 == j0 {
                        spec.fill(zero);
                        continue;
                    }
                    rowr[..j0].fill(F::ZERO);
                    rowr[j1..].fill(F::ZERO);
                    let base = plane + (ir as usize * g.w.input + ix0) * xs_pos;
                    if xs_pos == 1 {
                        rowr[j0..j1].copy_from_slice(&x[base..base + (j1 - j0)]);
                    } else {
                        for (q, v) in rowr[j0..j1].iter_mut().enumerate() {
                            *v = x[base + q * xs_pos];
                        }
                    }
                    self.r2c.process_with_scratch(rowr, spec, fs).expect("lengths fixed at plan time");
                }
                for j in 0..m {
                    let col = &mut xc[j * nh + i0..][..nb];
                    for (r, v) in col.iter_mut().enumerate() {
                        *v = rowc[r * m + j];
                    }
                }
            }
            self.col_fwd.process_with_scratch(xc, fs);
        }
        let spec = &self.spectra[grp * kg * cg * sp..][..kg * cg * sp];
        let inplace = cg * kg == 1;
        for k in 0..kg {
            let acc_at = if inplace { 0 } else { cg * sp };
            if inplace {
                for (o, &u) in specs[..sp].iter_mut().zip(spec) {
                    *o = *o * u;
                }
            } else {
                let (xs, acc) = specs.split_at_mut(cg * sp);
                for c in 0..cg {
                    let wk = &spec[(k * cg + c) * sp..][..sp];
                    let xv = &xs[c * sp..][..sp];
                    if c == 0 {
                        for ((o, &u), &v) in acc.iter_mut().zip(wk).zip(xv) {
                            *o = u * v;
                        }
                    } else {
                        for ((o, &u), &v) in acc.iter_mut().zip(wk).zip(xv) {
                            *o = *o + u * v;
                        }
                    }
                }
            }
            let acc = &mut specs[acc_at..][..sp];
            self.col_inv.process_with_scratch(acc, fs);
            let b = bias.map_or(F::ZERO, |b| b[grp * kg + k]);
            let (slab, chan) = match dst.interleaved {
                Some(k0) => (0, k0 + k),
                None => (k, 0),
            };
            let out = &mut *slabs[slab];
            for r0 in (0..rows).step_by(ROWS) {
                let nb = ROWS.min(rows - r0);
                for j in 0..m {
                    for (r, &v) in acc[j * nh + r0..][..nb].iter().enumerate() {
                        rowc[r * m + j] = v;
                    }
                }
                for (r, spec) in rowc.chunks_exact_mut(m).take(nb).enumerate() {
                    // A real signal's spectrum is real at 0 and (even length) at nw/2; the
                    // transforms' rounding leaves tiny imaginary parts there, which the
                    // inverse ignores.
                    spec[0].im = F::ZERO;
                    spec[m - 1].im = F::ZERO;
                    self.c2r.process_with_scratch(spec, rowr, fs).expect("lengths fixed at plan time");
                    let o = &mut out[dst.base + (r0 + r) * dst.row + ow0 * dst.step + chan..];
                    if dst.step == 1 {
                        for (d, &v) in o[..cols].iter_mut().zip(rowr.iter()) {
                            *d = v + b;
                        }
                    } else {
                        for (q, &v) in rowr[..cols].iter().enumerate() {
                            o[q * dst.step] = v + b;
                        }
                    }
                }
            }
        }
    }
}

/// The conjugated spectra of the (flipped, dilated) kernels over `n_h·n_w`, computed in f64:
/// `[group][k][c][column j][row i]`.
fn kernel_spectra(p: &ConvProblem, g: &Geom, w: &[f64]) -> Vec<Complex<f64>> {
    let (nh, nw, m) = (g.nh, g.nw, g.m);
    let r2c = RealFftPlanner::<f64>::new().plan_fft_forward(nw);
    let col = FftPlanner::<f64>::new().plan_fft_forward(nh);
    let (kh, kw) = (g.h.kernel, g.w.kernel);
    let scale = 1.0 / (nh * nw) as f64;
    let zero = Complex::new(0.0, 0.0);
    let mut out = Vec::with_capacity(p.out_channels * g.cg * m * nh);
    let mut row = vec![zero; m];
    let mut buf = vec![0.0f64; nw];
    for ko in 0..p.out_channels {
        for c in 0..g.cg {
            let wk = &w[(ko * g.cg + c) * kh * kw..][..kh * kw];
            let at = out.len();
            out.resize(at + m * nh, zero);
            let spec = &mut out[at..];
            for th in 0..kh {
                buf.fill(0.0);
                for tw in 0..kw {
                    let (sh, sw) = if p.flip { (kh - 1 - th, kw - 1 - tw) } else { (th, tw) };
                    buf[tw * g.w.dilation] = wk[sh * kw + sw];
                }
                r2c.process(&mut buf, &mut row).expect("lengths fixed");
                let i = th * g.h.dilation;
                for (j, &v) in row.iter().enumerate() {
                    spec[j * nh + i] = v;
                }
            }
            col.process(spec);
            for v in spec.iter_mut() {
                *v = v.conj() * scale;
            }
        }
    }
    out
}

impl<F: FftFloat> ConvImpl<F> for FftConv<F> {
    fn name(&self) -> String {
        "fft:generic".into()
    }

    fn workspace(&self, threads: usize) -> usize {
        2 * threads.max(1) * self.per_worker
    }

    fn execute(&self, x: &[F], bias: Option<&[F]>, y: &mut [F], ws: &mut [F], threads: usize) {
        let (g, p) = (&self.g, &self.p);
        let (oh, ow) = (g.h.output, g.w.output);
        let plane = oh * ow;
        let bands = g.tiles_h;
        // Output offset of band `bi`'s first row within a plane (`bands` → the plane's end).
        let band_at = move |bi: usize| (bi * g.th).min(oh) * ow;
        let per_ws = 2 * self.per_worker;
        let ws_len = per_ws * threads.max(1);
        let ws = &mut ws[..ws_len];
        let mut slabs: Slabs<'_, F> = Default::default();
        match p.layout {
            // Units: bands of every (sample, group) plane; one group's channels each.
            Layout::Nchw if g.kg == 1 => {
                slabs[0] = y;
                let units = p.batch * p.groups * bands;
                let offset = |u: usize| (u / bands) * plane + band_at(u % bands);
                split_units(slabs, 1, units, &offset, ws, per_ws, threads, &|u0, u1, slabs, wt| {
                    let wt = bytemuck::cast_slice_mut(wt);
                    for u in u0..u1 {
                        let (ng, bi) = (u / bands, u % bands);
                        let dst = Dst { base: offset(u) - offset(u0), row: ow, step: 1, interleaved: None };
                        for bj in 0..g.tiles_w {
                            self.tile(x, bias, (ng / p.groups, ng % p.groups), (bi, bj), slabs, &dst, wt);
                        }
                    }
                });
            }
            // Several output channels per group: per (sample, group), bands of its `kg` planes.
            Layout::Nchw => {
                let kg = g.kg;
                for (ng, block) in y.chunks_exact_mut(kg * plane).enumerate() {
                    let mut slabs: Slabs<'_, F> = Default::default();
                    for (s, pl) in slabs.iter_mut().zip(block.chunks_exact_mut(plane)) {
                        *s = pl;
                    }
                    split_units(slabs, kg, bands, &band_at, ws, per_ws, threads, &|u0, u1, slabs, wt| {
                        let wt = bytemuck::cast_slice_mut(wt);
                        for bi in u0..u1 {
                            let dst =
                                Dst { base: band_at(bi) - band_at(u0), row: ow, step: 1, interleaved: None };
                            for bj in 0..g.tiles_w {
                                self.tile(x, bias, (ng / p.groups, ng % p.groups), (bi, bj), slabs, &dst, wt);
                            }
                        }
                    });
                }
            }
            // Channels-last: units are bands of a sample, every group (channels interleaved).
            Layout::Nhwc => {
                let kk = p.out_channels;
                slabs[0] = y;
                let units = p.batch * bands;
                let offset = |u: usize| ((u / bands) * plane + band_at(u % bands)) * kk;
                split_units(slabs, 1, units, &offset, ws, per_ws, threads, &|u0, u1, slabs, wt| {
                    let wt = bytemuck::cast_slice_mut(wt);
                    for u in u0..u1 {
                        let (n, bi) = (u / bands, u % bands);
                        for grp in 0..p.groups {
                            let dst = Dst {
                                base: offset(u) - offset(u0),
                                row: ow * kk,
                                step: kk,
                                interleaved: Some(grp * g.kg),
                            };
                            for bj in 0..g.tiles_w {
                                self.tile(x, bias, (n, grp), (bi, bj), slabs, &dst, wt);
                            }
                        }
                    }
                });
            }
        }
    }
}
