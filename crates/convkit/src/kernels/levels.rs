//! Filter responses to 8- and 16-bit image levels, a slice at a time: the range map of
//! [`crate::filter::RangeMap::unit`] followed by [`crate::filter::quantize`], written as one
//! branch-free loop that vectorizes, so that converting a large image's responses costs
//! little next to filtering it. The same operations in the same order as those two
//! functions, so every level of the table gives their values bit for bit.

use crate::isa::{self, Isa};

/// An image sample type the levels are written as: `u8` or `u16`.
pub trait Level: Copy + Default + Send + Sync + 'static {
    /// The largest level (255, 65535).
    const MAX: f64;
    /// The low bits of `bits` (a whole number in `[0, MAX]`) as a sample.
    fn from_low_bits(bits: u64) -> Self;
}

impl Level for u8 {
    const MAX: f64 = 255.0;
    #[inline(always)]
    fn from_low_bits(bits: u64) -> u8 {
        bits as u8
    }
}

impl Level for u16 {
    const MAX: f64 = 65535.0;
    #[inline(always)]
    fn from_low_bits(bits: u64) -> u16 {
        bits as u16
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

/// One level's conversion: `(src, dst, lo, scale)`.
pub type LevelsFn<S> = fn(&[f32], &mut [S], f64, f64);

/// The portable conversion, without (`abs = false`) or with the absolute value.
pub fn generic_levels<S: Level>(abs: bool) -> LevelsFn<S> {
    if abs {
        levels::<S, true>
    } else {
        levels::<S, false>
    }
}

/// The conversion at exactly `isa`, if the CPU supports that level.
pub fn levels_fn<S: Level>(isa: Isa, abs: bool) -> Option<LevelsFn<S>> {
    if !isa::supported(isa) {
        return None;
    }
    match isa {
        Isa::Generic => Some(generic_levels::<S>(abs)),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => Some(super::x86_64::levels_simd::avx2::<S>(abs)),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Some(super::x86_64::levels_simd::avx512::<S>(abs)),
        #[cfg(not(target_arch = "x86_64"))]
        _ => None,
    }
}

/// The best conversion at or below `cap`.
pub fn best_levels<S: Level>(cap: Isa, abs: bool) -> LevelsFn<S> {
    isa::LEVELS
        .iter()
        .rev()
        .filter(|l| l.0 <= cap)
        .find_map(|l| levels_fn::<S>(l.0, abs))
        .unwrap_or_else(|| generic_levels::<S>(abs))
}
