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

/// A conversion to levels: `(src, dst, lo, scale)`.
pub type LevelsFn<S> = fn(&[f32], &mut [S], f64, f64);
/// Finite extremes of a slice.
pub type BoundsFn = fn(&[f32]) -> (f32, f32);
/// Gradient magnitudes: `(x, y, out)`.
pub type MagnitudeFn<T> = fn(&[T], &[T], &mut [T]);

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
}

/// The portable maps (what `generic` runs).
pub fn generic_kernels<T: Scalar>() -> ResponseKernels<T> {
    ResponseKernels {
        isa: Isa::Generic,
        levels_u8: [levels::<u8, false>, levels::<u8, true>],
        levels_u16: [levels::<u16, false>, levels::<u16, true>],
        bounds: [bounds::<false>, bounds::<true>],
        magnitude: magnitude::<T>,
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
        #[cfg(not(target_arch = "x86_64"))]
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
}
