//! Pooling row kernels: the hot loops of [`crate::impls::pool`] (NCHW, last axis of stride 1
//! or 2 and kernel 2 or 3, dilation 1), portable and generic over the element type, and the
//! per-level table [`PoolKernels`] a plan picks once. `x86_64::pool_simd` recompiles the same
//! bodies with AVX2 and AVX-512 enabled: the same operations in the same order (no
//! reassociation: Rust never reorders floating-point arithmetic), so every level's results are
//! equal bit for bit.
//!
//! The window reductions live here too ([`Reduce`]: [`Max`], [`MaxIndex`], [`Avg`]), with
//! the reference's semantics: a window's taps are folded in row-major scan order, the first
//! maximum stays (the first NaN wins; of equal values, `+0` and `−0` included, the first
//! stays) and averages are summed in `f64` in scan order.

use crate::isa::{self, Isa};
use crate::scalar::Scalar;

/// Whether the reference's max scan replaces `best` by `v`: `v` is larger, or the first NaN.
/// (`!(v <= best)` is "larger or unordered": two compares on SIMD lanes instead of three.)
#[inline(always)]
#[allow(clippy::neg_cmp_op_on_partial_ord)]
pub fn takes<T: Scalar>(best: T, v: T) -> bool {
    !best.is_nan() & !(v <= best)
}

/// A window reduction: its accumulator, one tap, and the result.
pub trait Reduce<T: Scalar>: Copy + Sync {
    /// The running value of one window.
    type Acc: Copy;
    /// The accumulator before the first tap.
    fn init(&self) -> Self::Acc;
    /// Fold in the tap `v` at flat index `flat` within the input plane.
    fn step(acc: Self::Acc, v: T, flat: usize) -> Self::Acc;
    /// The output and index of a window (`empty`: no tap inside the input).
    fn finish(&self, acc: Self::Acc, empty: bool, divisor: f64, empty_arg: usize) -> (T, usize);
}

/// Max pooling without indices. Starting from −∞ is the same as starting from the first tap:
/// any tap replaces −∞ except −∞ itself, which has the same bits.
#[derive(Clone, Copy)]
pub struct Max;

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
pub struct MaxIndex;

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

/// Average pooling: an `f64` sum in scan order from the empty sum's value (`.0`), then one
/// division.
#[derive(Clone, Copy)]
pub struct Avg(pub f64);

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

/// Windows wholly inside the row: `acc[j]` folds `xs[j·S + k]` for `k < K` in order (`flat0`:
/// the flat index of `xs[0]`, for [`MaxIndex`]). The row is viewed as S-element arrays so
/// that window `j` reads arrays `j` up to `j + 2` (zipped iterators, no bounds checks: the
/// loop vectorizes, strided loads deinterleaved); the last windows, whose last array would
/// pass the row's end, fold by index. Panics if `xs` is shorter than the windows.
#[inline(always)]
pub fn fused<T: Scalar, R: Reduce<T>, const S: usize, const K: usize>(
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

/// Max rows kernel: for each offset `o` of `offs` in order, the row `xs = x[o..]` folded
/// into `acc`: `acc[j]` takes the taps `xs[j·S + k]`, `k < K`, in order (the reference's max
/// scan), for the window shape of the table slot ([`shape_slot`]). Panics if a row is too
/// short.
pub type MaxRowFn<T> = fn(acc: &mut [T], x: &[T], offs: &[usize]);

/// Max kernel over a run of output rows: `y` holds `y.len() / n` rows of `n` outputs, and
/// row `r` is set to the maxima of the input rows at `offs[i] + r·step`: what [`MaxRowFn`]
/// folds into accumulators filled with −∞ (offsets in order), without reading `y` first.
/// `ahead > 0` asks early for the input rows `ahead` elements past each of row `r`'s (a hint;
/// no value changes). One call per run of output rows whose windows lie a constant `step`
/// apart: the caller's per-row work and the call's checks are paid once, and no fill's stores
/// miss the cache ahead of the loads (on a memory-bound 3-D max pool they had).
/// Panics if a row is too short, `n` does not divide `y.len()` or `offs` holds more than
/// [`MAX_RUN_ROWS`].
pub type MaxRunFn<T> = fn(y: &mut [T], n: usize, x: &[T], offs: &[usize], step: usize, ahead: usize);

/// Average rows kernel: as [`MaxRowFn`], `acc[j] += xs[j·S + k]` in order, in `f64`.
pub type AvgRowFn<T> = fn(acc: &mut [f64], x: &[T], offs: &[usize]);

/// Average output kernel: `y[j] = T::from_f64(acc[j] / (row_div · factors[j]))`.
pub type AvgOutFn<T> = fn(y: &mut [T], acc: &[f64], row_div: f64, factors: &[f64]);

/// Average output kernel for one divisor that is a power of two: `y[j] =
/// T::from_f64(acc[j] · scale)` with `scale = 1 / divisor` (exact: both round the same real
/// number).
pub type AvgScaleFn<T> = fn(y: &mut [T], acc: &[f64], scale: f64);

/// Window shapes (stride, kernel) along the last axis with a row kernel, in slot order.
pub const SHAPES: [(usize, usize); 4] = [(1, 2), (1, 3), (2, 2), (2, 3)];

/// The table slot of window shape `(stride, kernel)` (dilation 1), if it has row kernels.
pub fn shape_slot(stride: usize, kernel: usize, dilation: usize) -> Option<usize> {
    if dilation != 1 {
        return None;
    }
    SHAPES.iter().position(|&s| s == (stride, kernel))
}

/// One level's pooling kernels for element type `T`, chosen once when a plan is made.
#[derive(Clone, Copy)]
pub struct PoolKernels<T> {
    /// The level these kernels run at.
    pub isa: Isa,
    /// Max row kernels, one per [`SHAPES`] slot.
    pub max_row: [MaxRowFn<T>; 4],
    /// Max kernels over runs of output rows, one per [`SHAPES`] slot.
    pub max_run: [MaxRunFn<T>; 4],
    /// Average row kernels, one per [`SHAPES`] slot.
    pub avg_row: [AvgRowFn<T>; 4],
    /// Average outputs with per-output divisors.
    pub avg_out: AvgOutFn<T>,
    /// Average outputs with one power-of-two divisor.
    pub avg_scale: AvgScaleFn<T>,
}

/// Portable body of the max row kernels.
#[inline(always)]
pub fn max_row<T: Scalar, const S: usize, const K: usize>(acc: &mut [T], x: &[T], offs: &[usize]) {
    for &o in offs {
        fused::<T, Max, S, K>(acc, &x[o..], 0)
    }
}

/// Portable body of the max run kernels.
#[inline(always)]
pub fn max_run<T: Scalar, const S: usize, const K: usize>(
    y: &mut [T],
    n: usize,
    x: &[T],
    offs: &[usize],
    step: usize,
    ahead: usize,
) {
    assert!(n > 0 && y.len().is_multiple_of(n), "{} outputs are not rows of {n}", y.len());
    let mut shifted = [0usize; MAX_RUN_ROWS];
    let shifted = &mut shifted[..offs.len()];
    for (r, acc) in y.chunks_exact_mut(n).enumerate() {
        shifted.iter_mut().zip(offs).for_each(|(s, &o)| *s = o + r * step);
        if ahead > 0 {
            prefetch_rows(x, shifted, ahead, (n - 1) * S + K);
        }
        acc.fill(Max.init());
        max_row::<T, S, K>(acc, x, shifted);
    }
}

/// Input rows one window may take in a [`MaxRunFn`] call.
pub const MAX_RUN_ROWS: usize = 64;

/// Portable body of the average row kernels.
#[inline(always)]
pub fn avg_row<T: Scalar, const S: usize, const K: usize>(acc: &mut [f64], x: &[T], offs: &[usize]) {
    for &o in offs {
        fused::<T, Avg, S, K>(acc, &x[o..], 0)
    }
}

/// Portable body of [`AvgOutFn`]. Panics unless `acc` and `factors` are as long as `y`.
#[inline(always)]
pub fn avg_out<T: Scalar>(y: &mut [T], acc: &[f64], row_div: f64, factors: &[f64]) {
    let (acc, factors) = (&acc[..y.len()], &factors[..y.len()]);
    for ((o, &a), &f) in y.iter_mut().zip(acc).zip(factors) {
        *o = T::from_f64(a / (row_div * f));
    }
}

/// Portable body of [`AvgScaleFn`]. Panics unless `acc` is as long as `y`.
#[inline(always)]
pub fn avg_scale<T: Scalar>(y: &mut [T], acc: &[f64], scale: f64) {
    let acc = &acc[..y.len()];
    for (o, &a) in y.iter_mut().zip(acc) {
        *o = T::from_f64(a * scale);
    }
}

/// The portable kernels (what `generic` runs).
pub fn generic_kernels<T: Scalar>() -> PoolKernels<T> {
    PoolKernels {
        isa: Isa::Generic,
        max_row: [max_row::<T, 1, 2>, max_row::<T, 1, 3>, max_row::<T, 2, 2>, max_row::<T, 2, 3>],
        max_run: [max_run::<T, 1, 2>, max_run::<T, 1, 3>, max_run::<T, 2, 2>, max_run::<T, 2, 3>],
        avg_row: [avg_row::<T, 1, 2>, avg_row::<T, 1, 3>, avg_row::<T, 2, 2>, avg_row::<T, 2, 3>],
        avg_out: avg_out::<T>,
        avg_scale: avg_scale::<T>,
    }
}

/// The pooling kernels for `T` at exactly `isa`, if the CPU supports that level.
pub fn pool_kernels<T: Scalar>(isa: Isa) -> Option<PoolKernels<T>> {
    if !isa::supported(isa) {
        return None;
    }
    match isa {
        Isa::Generic => Some(generic_kernels::<T>()),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => Some(super::x86_64::pool_simd::avx2_kernels::<T>()),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Some(super::x86_64::pool_simd::avx512_kernels::<T>()),
        // A level without pooling kernels of its own runs the highest lower level's (see the
        // `best_` function below): adding a level need not touch this match.
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The best pooling kernels for `T` at or below `cap`.
pub fn best_pool_kernels<T: Scalar>(cap: Isa) -> PoolKernels<T> {
    isa::LEVELS
        .iter()
        .rev()
        .filter(|l| l.0 <= cap)
        .find_map(|l| pool_kernels::<T>(l.0))
        .unwrap_or_else(generic_kernels::<T>)
}

/// A hint to start loading, for each offset `o` of `offs`, the `len` values of `x` from
/// `o + ahead` into cache; ranges past the end of `x` are skipped. No value changes.
#[inline]
pub fn prefetch_rows<T>(x: &[T], offs: &[usize], ahead: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    super::x86_64::pool_simd::prefetch_rows(x, offs, ahead, len);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (x, offs, ahead, len);
}
