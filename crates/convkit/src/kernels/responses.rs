//! Per-value maps of filter responses, a slice at a time: gradient magnitudes, the finite
//! extremes a min–max range needs, and the 8- and 16-bit image levels
//! ([`crate::filter::RangeMap::unit`] followed by [`crate::filter::quantize`]). Each is one
//! branch-free loop that vectorizes, so that finishing a large image costs little next to
//! filtering it, and each performs the same operations in the same order as the scalar
//! definition it stands for, so every level of the table gives its values bit for bit.

use crate::isa::{self, Isa};
use crate::scalar::Scalar;

/// An image sample type the levels are written as: `u8` or `u16`.
pub trait Level: Copy + Default + Send + Sync + 'static {
    /// The largest level (255, 65535).
    const MAX: f64;
    /// The low bits of `bits` (a whole number in `[0, MAX]`) as a sample.
    fn from_low_bits(bits: u64) -> Self;
    /// This type's conversion in `k`, without (`abs = false`) or with the absolute value.
    fn levels_fn<T>(k: &ResponseKernels<T>, abs: bool) -> LevelsFn<Self>;
}

impl Level for u8 {
    const MAX: f64 = 255.0;
    #[inline(always)]
    fn from_low_bits(bits: u64) -> u8 {
        bits as u8
    }
    fn levels_fn<T>(k: &ResponseKernels<T>, abs: bool) -> LevelsFn<u8> {
        k.levels_u8[usize::from(abs)]
    }
}

impl Level for u16 {
    const MAX: f64 = 65535.0;
    #[inline(always)]
    fn from_low_bits(bits: u64) -> u16 {
        bits as u16
    }
    fn levels_fn<T>(k: &ResponseKernels<T>, abs: bool) -> LevelsFn<u16> {
        k.levels_u16[usize::from(abs)]
    }
}

/// 2^52: the smallest `f64` whose spacing is 1.
const MAGIC: f64 = 4_503_599_627_370_496.0;

/// `dst[i]` = the level of `src[i]`: `|v|` when `ABS`, then `(v − lo)·scale`, a non-finite
/// result taken as 0, clamped to `[0, 1]` and rounded to `f32` (as `RangeMap::unit` stores
/// it), then times `S::MAX` rounded to nearest, halves up (as `quantize`). Lengths must match.
#[inline(always)]
pub fn levels<S: Level, const ABS: bool>(src: &[f32], dst: &mut [S], lo: f64, scale: f64) {
    assert_eq!(src.len(), dst.len(), "levels: lengths differ");
    for (d, &v) in dst.iter_mut().zip(src) {
        let v = v as f64;
        let v = if ABS { v.abs() } else { v };
        let u = (v - lo) * scale;
        let u = if u.is_finite() { u } else { 0.0 };
        // Finite and in [0, 1] from here on: `quantize`'s own clip changes nothing. `x` is
        // exact (24 significant bits times at most 16), and so is `x + 0.5` (for `x ≥ 0.5`
        // both fit in 53 bits; below, `x` is at least 2^-34 short of 0.5): its floor is `x`
        // rounded half up, as `quantize` rounds.
        let x = u.clamp(0.0, 1.0) as f32 as f64 * S::MAX;
        let v = x + 0.5;
        // Floor without a float-to-int conversion (which would not vectorize): adding and
        // subtracting 2^52 rounds to the nearest integer, one too many if above `v`; the
        // integer then sits in the low bits of `floor + 2^52`.
        let r = (v + MAGIC) - MAGIC;
        let floor = if r > v { r - 1.0 } else { r };
        *d = S::from_low_bits((floor + MAGIC).to_bits());
    }
}

/// The smallest and largest finite values of `src` (of `|v|` when `ABS`), or `(∞, −∞)` when
/// there are none. Which zero is returned when both signs are present is unspecified.
#[inline(always)]
pub fn bounds<const ABS: bool>(src: &[f32]) -> (f32, f32) {
    const L: usize = 16;
    let (mut lo, mut hi) = ([f32::INFINITY; L], [f32::NEG_INFINITY; L]);
    let step = |lo: &mut f32, hi: &mut f32, v: f32| {
        let v = if ABS { v.abs() } else { v };
        // False for NaN and both infinities.
        let finite = v.abs() < f32::INFINITY;
        *lo = if finite && v < *lo { v } else { *lo };
        *hi = if finite && v > *hi { v } else { *hi };
    };
    let chunks = src.chunks_exact(L);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..L {
            step(&mut lo[i], &mut hi[i], c[i]);
        }
    }
    for (i, &v) in rest.iter().enumerate() {
        step(&mut lo[i], &mut hi[i], v);
    }
    let lo = lo.iter().fold(f32::INFINITY, |a, &b| if b < a { b } else { a });
    let hi = hi.iter().fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
    (lo, hi)
}

/// `out[i] = √(x[i]² + y[i]²)`: for `f32` in `f64` (neither square can overflow there, and
/// the one rounding back to `f32` matches `hypot`'s result); for `f64` by `hypot`, whose
/// squares could.
#[inline(always)]
pub fn magnitude<T: Scalar>(x: &[T], y: &[T], out: &mut [T]) {
    assert!(x.len() == out.len() && y.len() == out.len(), "magnitude: lengths differ");
    if T::NAME == "f32" {
        for ((o, &a), &b) in out.iter_mut().zip(x).zip(y) {
            let (a, b) = (a.to_f64(), b.to_f64());
            *o = T::from_f64((a * a + b * b).sqrt());
        }
    } else {
        for ((o, &a), &b) in out.iter_mut().zip(x).zip(y) {
            *o = T::from_f64(a.to_f64().hypot(b.to_f64()));
        }
    }
}

/// The smallest and largest finite values of [`magnitude`]`(x, y)` (what [`bounds`] of the
/// magnitudes gives, with or without absolute values: magnitudes are never negative), or
/// `(∞, −∞)` when there are none, without the magnitudes: for `f32` the extremes of
/// `x² + y²` in `f64` (exact squares, one rounding: the sum `magnitude` takes the root of),
/// whose roots rounded to `f32` are the extreme magnitudes, as the root and the rounding never
/// reverse an order; sums whose magnitude would round to infinity are left out, as `bounds`
/// leaves out infinite magnitudes. For `f64`, the magnitudes one by one.
#[inline(always)]
pub fn magnitude_bounds<T: Scalar>(x: &[T], y: &[T]) -> (T, T) {
    assert!(x.len() == y.len(), "magnitude_bounds: lengths differ");
    fold_pairs(x.len(), &(x, y))
}

/// Pairs of responses, a block of [`G`] or one at a time (methods, not closures, so that
/// they inline into the `#[target_feature]` callers).
trait Pairs<T> {
    /// Pairs `j .. j + G`.
    fn block(&self, j: usize) -> ([T; G], [T; G]);
    /// Pair `j`.
    fn one(&self, j: usize) -> (T, T);
}

impl<T: Scalar> Pairs<T> for (&[T], &[T]) {
    #[inline(always)]
    fn block(&self, j: usize) -> ([T; G], [T; G]) {
        let (mut a, mut b) = ([T::ZERO; G], [T::ZERO; G]);
        a.copy_from_slice(&self.0[j..j + G]);
        b.copy_from_slice(&self.1[j..j + G]);
        (a, b)
    }
    #[inline(always)]
    fn one(&self, j: usize) -> (T, T) {
        (self.0[j], self.1[j])
    }
}

/// Outputs a block of the pair kernels holds.
const G: usize = 16;

/// [`magnitude_bounds`] of `n` pairs, taken a block at a time but the last `n % G`; the `f64`
/// extremes are kept in `G` lanes so that the loop vectorizes.
#[inline(always)]
fn fold_pairs<T: Scalar>(n: usize, pairs: &impl Pairs<T>) -> (T, T) {
    if T::NAME == "f32" {
        let (mut lo, mut hi) = ([f64::INFINITY; G], [f64::NEG_INFINITY; G]);
        let limit = f32_root_overflow();
        let step = |lo: &mut f64, hi: &mut f64, a: T, b: T| {
            let (a, b) = (a.to_f64(), b.to_f64());
            let s = a * a + b * b;
            // A NaN sum compares false and is passed over. One whose root rounds to an
            // infinite `f32` never becomes `hi`; it may become `lo` only if no sum below the
            // limit comes (`lo` is at most every sum), and then `hi` stays −∞: nothing finite.
            *lo = if s < *lo { s } else { *lo };
            *hi = if s > *hi && s < limit { s } else { *hi };
        };
        let blocks = n / G;
        for k in 0..blocks {
            let (x, y) = pairs.block(k * G);
            for i in 0..G {
                step(&mut lo[i], &mut hi[i], x[i], y[i]);
            }
        }
        for (i, j) in (blocks * G..n).enumerate() {
            let (a, b) = pairs.one(j);
            step(&mut lo[i], &mut hi[i], a, b);
        }
        let lo = lo.iter().fold(f64::INFINITY, |a, &b| if b < a { b } else { a });
        let hi = hi.iter().fold(f64::NEG_INFINITY, |a, &b| if b > a { b } else { a });
        if lo > hi {
            return (T::from_f64(f64::INFINITY), T::from_f64(f64::NEG_INFINITY));
        }
        (T::from_f64(lo.sqrt()), T::from_f64(hi.sqrt()))
    } else {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for j in 0..n {
            let (a, b) = pairs.one(j);
            let m = a.to_f64().hypot(b.to_f64());
            if m.is_finite() {
                lo = lo.min(m);
                hi = hi.max(m);
            }
        }
        (T::from_f64(lo), T::from_f64(hi))
    }
}

/// The weights of a 3×3 gradient pair, `[x, y]`, each row-major.
pub type Pair3<T> = [[T; 9]; 2];

/// The nine windows of `n` values a 3×3 kernel reads from three rows at stride 1: tap
/// `3r + c` reads `rows[r][c..c + n]`.
#[inline(always)]
fn taps3<T>(rows: [&[T]; 3], n: usize) -> [&[T]; 9] {
    let [a, b, c] = rows;
    [
        &a[..n],
        &a[1..][..n],
        &a[2..][..n],
        &b[..n],
        &b[1..][..n],
        &b[2..][..n],
        &c[..n],
        &c[1..][..n],
        &c[2..][..n],
    ]
}

/// A 3×3 pair's responses along a row: its nine windows and its weights.
struct Window3<'a, T> {
    taps: [&'a [T]; 9],
    w: &'a Pair3<T>,
}

impl<T: Scalar> Pairs<T> for Window3<'_, T> {
    #[inline(always)]
    fn block(&self, j: usize) -> ([T; G], [T; G]) {
        pair3_block(&self.taps, self.w, j)
    }
    #[inline(always)]
    fn one(&self, j: usize) -> (T, T) {
        pair3(&self.taps, self.w, j)
    }
}

/// Both responses of a 3×3 pair at output `j`: each the sum over the taps in row-major order
/// of weight times value, added one product at a time from zero.
#[inline(always)]
fn pair3<T: Scalar>(t: &[&[T]; 9], w: &Pair3<T>, j: usize) -> (T, T) {
    let (mut x, mut y) = (T::ZERO, T::ZERO);
    for k in 0..9 {
        let v = t[k][j];
        x = x + w[0][k] * v;
        y = y + w[1][k] * v;
    }
    (x, y)
}

/// [`pair3`] at outputs `j .. j + G`, the same operations lane by lane.
#[inline(always)]
fn pair3_block<T: Scalar>(t: &[&[T]; 9], w: &Pair3<T>, j: usize) -> ([T; G], [T; G]) {
    let (mut x, mut y) = ([T::ZERO; G], [T::ZERO; G]);
    for k in 0..9 {
        let v = &t[k][j..j + G];
        let (a, b) = (w[0][k], w[1][k]);
        for i in 0..G {
            x[i] = x[i] + a * v[i];
            y[i] = y[i] + b * v[i];
        }
    }
    (x, y)
}

/// One [`magnitude`].
#[inline(always)]
fn magnitude1<T: Scalar>(a: T, b: T) -> T {
    if T::NAME == "f32" {
        let (a, b) = (a.to_f64(), b.to_f64());
        T::from_f64((a * a + b * b).sqrt())
    } else {
        T::from_f64(a.to_f64().hypot(b.to_f64()))
    }
}

/// One output row of the gradient magnitude of a 3×3 pair at stride 1, computed straight from
/// its three input rows (`out.len() + 2` values each, padding included) without writing the
/// two responses: `out[j]` = [`magnitude`] of the responses [`pair3`] gives.
#[inline(always)]
pub fn gradient3_magnitude<T: Scalar>(rows: [&[T]; 3], w: &Pair3<T>, out: &mut [T]) {
    let n = out.len();
    let t = taps3(rows, n);
    let mut blocks = out.chunks_exact_mut(G);
    for (k, o) in (&mut blocks).enumerate() {
        let (x, y) = pair3_block(&t, w, k * G);
        for i in 0..G {
            o[i] = magnitude1(x[i], y[i]);
        }
    }
    let done = n - blocks.into_remainder().len();
    for (j, o) in out.iter_mut().enumerate().skip(done) {
        let (a, b) = pair3(&t, w, j);
        *o = magnitude1(a, b);
    }
}

/// [`magnitude_bounds`] of the `n` responses of one output row of a 3×3 pair at stride 1
/// (rows of `n + 2` values), without writing them.
#[inline(always)]
pub fn gradient3_bounds<T: Scalar>(rows: [&[T]; 3], w: &Pair3<T>, n: usize) -> (T, T) {
    fold_pairs(n, &Window3 { taps: taps3(rows, n), w })
}

/// The smallest `f64` `s` whose root rounds to an infinite `f32` (about 1.16e77), found once
/// by bisecting the ordered bit patterns of the positive `f64`s.
fn f32_root_overflow() -> f64 {
    static LIMIT: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        let inf = |bits: u64| (f64::from_bits(bits).sqrt() as f32).is_infinite();
        let (mut ok, mut over) = (0u64, f64::INFINITY.to_bits());
        while over - ok > 1 {
            let mid = ok + (over - ok) / 2;
            if inf(mid) {
                over = mid;
            } else {
                ok = mid;
            }
        }
        f64::from_bits(over)
    })
}

/// A conversion to levels: `(src, dst, lo, scale)`.
pub type LevelsFn<S> = fn(&[f32], &mut [S], f64, f64);
/// Finite extremes of a slice.
pub type BoundsFn = fn(&[f32]) -> (f32, f32);
/// Gradient magnitudes: `(x, y, out)`.
pub type MagnitudeFn<T> = fn(&[T], &[T], &mut [T]);
/// Finite extremes of gradient magnitudes: `(x, y) → (lo, hi)`.
pub type MagnitudeBoundsFn<T> = fn(&[T], &[T]) -> (T, T);
/// One row of a 3×3 pair's gradient magnitudes: `(rows, weights, out)`.
pub type Gradient3Fn<T> = fn([&[T]; 3], &Pair3<T>, &mut [T]);
/// The extremes of one row of a 3×3 pair's gradient magnitudes: `(rows, weights, n)`.
pub type Gradient3BoundsFn<T> = fn([&[T]; 3], &Pair3<T>, usize) -> (T, T);

/// One SIMD level's response maps; index 1 of each pair takes absolute values first.
#[derive(Clone, Copy)]
pub struct ResponseKernels<T> {
    /// The level these were compiled for.
    pub isa: Isa,
    /// [`levels`] to `u8`.
    pub levels_u8: [LevelsFn<u8>; 2],
    /// [`levels`] to `u16`.
    pub levels_u16: [LevelsFn<u16>; 2],
    /// [`bounds`].
    pub bounds: [BoundsFn; 2],
    /// [`magnitude`].
    pub magnitude: MagnitudeFn<T>,
    /// [`magnitude_bounds`].
    pub magnitude_bounds: MagnitudeBoundsFn<T>,
    /// [`gradient3_magnitude`].
    pub gradient3: Gradient3Fn<T>,
    /// [`gradient3_bounds`].
    pub gradient3_bounds: Gradient3BoundsFn<T>,
}

/// The portable maps (what `generic` runs).
pub fn generic_kernels<T: Scalar>() -> ResponseKernels<T> {
    ResponseKernels {
        isa: Isa::Generic,
        levels_u8: [levels::<u8, false>, levels::<u8, true>],
        levels_u16: [levels::<u16, false>, levels::<u16, true>],
        bounds: [bounds::<false>, bounds::<true>],
        magnitude: magnitude::<T>,
        magnitude_bounds: magnitude_bounds::<T>,
        gradient3: gradient3_magnitude::<T>,
        gradient3_bounds: gradient3_bounds::<T>,
    }
}

/// The maps at exactly `isa`, if the CPU supports that level.
pub fn response_kernels<T: Scalar>(isa: Isa) -> Option<ResponseKernels<T>> {
    if !isa::supported(isa) {
        return None;
    }
    match isa {
        Isa::Generic => Some(generic_kernels::<T>()),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => Some(super::x86_64::responses_simd::avx2_kernels::<T>()),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Some(super::x86_64::responses_simd::avx512_kernels::<T>()),
        // A level without maps of its own runs the highest lower level's (see the
        // `best_` function below): adding a level need not touch this match.
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The best maps at or below `cap`.
pub fn best_response_kernels<T: Scalar>(cap: Isa) -> ResponseKernels<T> {
    isa::LEVELS
        .iter()
        .rev()
        .filter(|l| l.0 <= cap)
        .find_map(|l| response_kernels::<T>(l.0))
        .unwrap_or_else(generic_kernels::<T>)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<f64> {
        let mut v = vec![0.0, -0.0, 1e-300, 1e300, -1e300, f64::NAN, f64::INFINITY, 3e38, -3e38, 1e-40];
        v.extend((0..3000).map(|i| (i as f64 * 0.917).sin() * 10f64.powi(i % 9 - 3)));
        v
    }

    #[test]
    fn magnitude_equals_its_definition_at_every_level() {
        let xs = samples();
        let ys: Vec<f64> = xs.iter().rev().copied().collect();
        let (x32, y32): (Vec<f32>, Vec<f32>) =
            (xs.iter().map(|&v| v as f32).collect(), ys.iter().map(|&v| v as f32).collect());
        let want32: Vec<u32> = x32
            .iter()
            .zip(&y32)
            .map(|(&a, &b)| (((a as f64) * (a as f64) + (b as f64) * (b as f64)).sqrt() as f32).to_bits())
            .collect();
        let want64: Vec<u64> = xs.iter().zip(&ys).map(|(&a, &b)| a.hypot(b).to_bits()).collect();
        for isa in isa::available() {
            let mut o32 = vec![0f32; x32.len()];
            (response_kernels::<f32>(isa).unwrap().magnitude)(&x32, &y32, &mut o32);
            assert_eq!(o32.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want32, "{isa:?} f32");
            let mut o64 = vec![0f64; xs.len()];
            (response_kernels::<f64>(isa).unwrap().magnitude)(&xs, &ys, &mut o64);
            assert_eq!(o64.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want64, "{isa:?} f64");
        }
    }

    #[test]
    fn bounds_skip_non_finite_values_and_empty_slices() {
        for isa in isa::available() {
            let k = response_kernels::<f32>(isa).unwrap();
            assert_eq!((k.bounds[0])(&[]), (f32::INFINITY, f32::NEG_INFINITY), "{isa:?}");
            let v = [f32::NAN, f32::NEG_INFINITY, -7.5, 3.0, f32::INFINITY, 2.0];
            assert_eq!((k.bounds[0])(&v), (-7.5, 3.0), "{isa:?}");
            assert_eq!((k.bounds[1])(&v), (2.0, 7.5), "{isa:?}");
            // Lengths around the 16-lane blocks.
            for n in [1, 15, 16, 17, 33] {
                let v: Vec<f32> = (0..n).map(|i| (i as f32 - 7.0) * 1.5).collect();
                let lo = v.iter().copied().fold(f32::INFINITY, f32::min);
                let hi = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                assert_eq!((k.bounds[0])(&v), (lo, hi), "{isa:?} n={n}");
            }
        }
    }

    /// A 3×3 pair's magnitudes and their extremes computed straight from three rows equal, at
    /// every level and bit for bit, `magnitude` and `magnitude_bounds` of the two responses
    /// summed tap by tap in row-major order: NaN, infinite, huge and tiny samples, integer
    /// rows, row lengths around the 16-output blocks, `f32` and `f64`.
    #[test]
    fn gradient_rows_equal_the_magnitudes_of_their_responses() {
        fn check<T: Scalar>(isa: Isa, rows: [&[T]; 3], w: &Pair3<T>) {
            let k = response_kernels::<T>(isa).unwrap();
            let n = rows[0].len() - 2;
            let resp = |w: &[T; 9]| -> Vec<T> {
                (0..n).map(|j| (0..9).fold(T::ZERO, |acc, t| acc + w[t] * rows[t / 3][j + t % 3])).collect()
            };
            let (x, y) = (resp(&w[0]), resp(&w[1]));
            let mut want = vec![T::ZERO; n];
            (k.magnitude)(&x, &y, &mut want);
            let mut got = vec![T::ZERO; n];
            (k.gradient3)(rows, w, &mut got);
            // Any NaN stands for every NaN (which sign and payload comes out is unspecified).
            let bits = |v: &[T]| {
                v.iter().map(|a| if a.is_nan() { u64::MAX } else { a.to_f64().to_bits() }).collect::<Vec<_>>()
            };
            assert_eq!(bits(&got), bits(&want), "{isa:?} {} n={n}", T::NAME);
            let (lo, hi) = (k.gradient3_bounds)(rows, w, n);
            let (wlo, whi) = (k.magnitude_bounds)(&x, &y);
            assert_eq!(
                (lo.to_f64().to_bits(), hi.to_f64().to_bits()),
                (wlo.to_f64().to_bits(), whi.to_f64().to_bits()),
                "{isa:?} {} n={n} bounds",
                T::NAME
            );
        }
        let sobel = [
            [-1.0, 0.0, 1.0, -2.0, 0.0, 2.0, -1.0, 0.0, 1.0],
            [-1.0, -2.0, -1.0, 0.0, 0.0, 0.0, 1.0, 2.0, 1.0],
        ];
        let odd = [
            [0.3, -1.7, 2.5, 1e-3, 4.0, -0.5, 7.0, 0.25, -3.0],
            [1.5, 0.0, -2.25, 9.0, -1e4, 0.1, 3.0, 2.0, -1.0],
        ];
        let xs = samples();
        for isa in isa::available() {
            for n in [0, 1, 15, 16, 17, 33, 200, xs.len() / 3 - 2] {
                for (integer, w) in [(true, &sobel), (false, &odd)] {
                    // Integer rows, or the samples (NaN, ±∞, ±1e300, tiny); each in f64 and f32.
                    let row = |q: usize| -> Vec<f64> {
                        (0..n + 2)
                            .map(|j| match integer {
                                true => ((j * 7 + q * 13) % 256) as f64,
                                false => xs[(q * (n + 2) + j) % xs.len()],
                            })
                            .collect()
                    };
                    let (a, b, c) = (row(0), row(1), row(2));
                    check::<f64>(isa, [&a, &b, &c], w);
                    let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
                    let (a, b, c) = (f(&a), f(&b), f(&c));
                    check::<f32>(isa, [&a, &b, &c], &w.map(|k| k.map(|v| v as f32)));
                }
            }
        }
    }

    /// The extremes of the magnitudes without computing them equal `bounds` of `magnitude`,
    /// bit for bit, at every level: NaN and infinite inputs, sums whose root overflows `f32`
    /// (3e38 with 3e38) beside the largest that does not, tiny and zero values, lengths
    /// around the 8-lane blocks, and nothing finite at all.
    #[test]
    fn magnitude_bounds_equal_bounds_of_the_magnitudes() {
        let limit = f32_root_overflow();
        let below = f64::from_bits(limit.to_bits() - 1);
        assert!((limit.sqrt() as f32).is_infinite() && (below.sqrt() as f32).is_finite());
        let big = (below / 2.0).sqrt() as f32;
        let xs = samples();
        let x32: Vec<f32> = xs.iter().map(|&v| v as f32).chain([big, 3e38, f32::MAX]).collect();
        let y32: Vec<f32> = xs.iter().rev().map(|&v| v as f32).chain([big, 3e38, 0.0]).collect();
        for isa in isa::available() {
            let k = response_kernels::<f32>(isa).unwrap();
            let check = |x: &[f32], y: &[f32]| {
                let mut m = vec![0f32; x.len()];
                (k.magnitude)(x, y, &mut m);
                let want = (k.bounds[0])(&m);
                assert_eq!(want, (k.bounds[1])(&m));
                let got = (k.magnitude_bounds)(x, y);
                assert_eq!(
                    (got.0.to_bits(), got.1.to_bits()),
                    (want.0.to_bits(), want.1.to_bits()),
                    "{isa:?} {}",
                    x.len()
                );
            };
            for n in [0, 1, 7, 8, 9, 17, x32.len()] {
                check(&x32[x32.len() - n..], &y32[y32.len() - n..]);
                check(&x32[..n], &y32[..n]);
            }
            check(&[f32::NAN, 3e38, f32::INFINITY], &[1.0, 3e38, 0.0]);
            let k64 = response_kernels::<f64>(isa).unwrap();
            assert_eq!(
                (k64.magnitude_bounds)(&[3.0, f64::NAN, 1e300], &[4.0, 1.0, 1e300]),
                (5.0, 1e300f64.hypot(1e300))
            );
        }
    }
}
