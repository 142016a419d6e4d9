//! Mapping filter responses back to displayable pixel values: clip, absolute value, min–max
//! stretch, and the default choice for a stack of filters.

use super::kernel::Filter;
use crate::error::{Error, Result};
use crate::isa::{self, Isa};
use crate::kernels::responses::{best_response_kernels, Level};
use crate::scalar::Scalar;
use std::fmt;
use std::str::FromStr;

/// How filter responses become pixel intensities in `[0, 1]` (0 black, 1 the format's white).
///
/// `full_scale` below is the input's white level (255 for 8-bit, 65535 for 16-bit, 1.0 for
/// floating point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeMap {
    /// `v / full_scale`, clipped to `[0, 1]`: for kernels whose weights sum to 1 (blur, sharpen).
    Clip,
    /// `|v| / full_scale`, clipped to `[0, 1]`: edge strength at its true scale.
    Abs,
    /// Stretch `[min, max]` of the result to `[0, 1]` (a constant result maps to 0).
    MinMax,
    /// `|v|`, then stretch `[min, max]` to `[0, 1]`: for derivative kernels (weights summing to 0).
    AbsMinMax,
}

impl RangeMap {
    /// The default for a stack of filters: the stack's overall gain is the product of its
    /// kernel sums; gain 1 → [`RangeMap::Clip`], gain 0 or any gradient magnitude →
    /// [`RangeMap::AbsMinMax`], any other gain (an unnormalised kernel) → [`RangeMap::MinMax`].
    ///
    /// ```
    /// use convkit::filter::{Filter, RangeMap};
    /// let f = |s: &str| Filter::parse(s).unwrap();
    /// assert_eq!(RangeMap::default_for(&[f("gaussian:2"), f("sharpen")]), RangeMap::Clip);
    /// assert_eq!(RangeMap::default_for(&[f("gaussian:2"), f("laplacian")]), RangeMap::AbsMinMax);
    /// assert_eq!(RangeMap::default_for(&[f("1,1;1,1")]), RangeMap::MinMax);
    /// ```
    pub fn default_for(filters: &[Filter]) -> RangeMap {
        let mut gain = 1.0;
        for f in filters {
            match f {
                Filter::Linear(k) => gain *= k.sum(),
                Filter::Magnitude { .. } => return RangeMap::AbsMinMax,
            }
        }
        if (gain - 1.0).abs() < 1e-6 {
            RangeMap::Clip
        } else if gain.abs() < 1e-6 {
            RangeMap::AbsMinMax
        } else {
            RangeMap::MinMax
        }
    }

    /// Map `values` in place to `[0, 1]`. Min and max are taken over all the values given
    /// (pass every colour channel at once to keep their balance); non-finite values are
    /// ignored for them and become 0.
    ///
    /// ```
    /// use convkit::filter::RangeMap;
    /// let mut v = vec![-10.0f32, 0.0, 30.0];
    /// RangeMap::AbsMinMax.apply(&mut v, 255.0);
    /// assert_eq!(v, vec![1.0 / 3.0, 0.0, 1.0]);
    /// ```
    pub fn apply<T: Scalar>(&self, values: &mut [T], full_scale: f64) {
        let (lo, scale) = self.bounds(values, full_scale);
        for v in values.iter_mut() {
            *v = self.unit(*v, lo, scale);
        }
    }

    /// Whether the map needs every value first (min and max) rather than one at a time.
    pub fn is_global(&self) -> bool {
        matches!(self, RangeMap::MinMax | RangeMap::AbsMinMax)
    }

    /// The offset and scale [`RangeMap::apply`] uses for `values`: `(0, 1/full_scale)` for
    /// clip and abs (which never look at the values), else from their finite min and max.
    pub fn bounds<T: Scalar>(&self, values: &[T], full_scale: f64) -> (f64, f64) {
        match self {
            RangeMap::Clip | RangeMap::Abs => (0.0, 1.0 / full_scale),
            RangeMap::MinMax | RangeMap::AbsMinMax => {
                let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
                for &v in values.iter() {
                    let v = self.signed(v);
                    if v.is_finite() {
                        lo = lo.min(v);
                        hi = hi.max(v);
                    }
                }
                if hi > lo {
                    (lo, 1.0 / (hi - lo))
                } else {
                    (lo, 0.0)
                }
            }
        }
    }

    /// One value mapped to `[0, 1]` with the `(lo, scale)` of [`RangeMap::bounds`], exactly
    /// as [`RangeMap::apply`] stores it.
    #[inline]
    pub fn unit<T: Scalar>(&self, v: T, lo: f64, scale: f64) -> T {
        let u = (self.signed(v) - lo) * scale;
        // Selects rather than branches, so that loops over values vectorise.
        let u = if u.is_finite() { u } else { 0.0 };
        T::from_f64(u.clamp(0.0, 1.0))
    }

    /// [`RangeMap::unit`] then [`quantize`] over a slice, at the best SIMD level this process
    /// may use: `dst[i] = quantize(self.unit(src[i], lo, scale), S::MAX)`, bit for bit.
    ///
    /// ```
    /// use convkit::filter::RangeMap;
    /// let mut out = [0u8; 4];
    /// RangeMap::Clip.levels(&[-3.0, 127.5, 254.4, 300.0], 0.0, 1.0 / 255.0, &mut out);
    /// assert_eq!(out, [0, 128, 254, 255]);
    /// ```
    pub fn levels<S: Level>(&self, src: &[f32], lo: f64, scale: f64, dst: &mut [S]) {
        self.levels_at(isa::max_isa(), src, lo, scale, dst)
    }

    /// [`RangeMap::levels`] with the best SIMD level at or below `cap`.
    pub fn levels_at<S: Level>(&self, cap: Isa, src: &[f32], lo: f64, scale: f64, dst: &mut [S]) {
        (S::levels_fn(&best_response_kernels::<f32>(cap), self.takes_abs()))(src, dst, lo, scale)
    }

    /// [`RangeMap::bounds`] for `f32` responses, at the best SIMD level this process may use.
    pub fn bounds_f32(&self, values: &[f32], full_scale: f64) -> (f64, f64) {
        self.bounds_f32_at(isa::max_isa(), values, full_scale)
    }

    /// [`RangeMap::bounds_f32`] with the best SIMD level at or below `cap`.
    pub fn bounds_f32_at(&self, cap: Isa, values: &[f32], full_scale: f64) -> (f64, f64) {
        let (lo, hi) = self.extremes_at(cap, values);
        self.bounds_from(lo, hi, full_scale)
    }

    /// The smallest and largest finite values of `values` (of `|v|` for the `abs` maps), or
    /// `(∞, −∞)` when there are none: what the min-max maps stretch. Extremes of parts
    /// combine by `min` and `max` into those of the whole.
    pub fn extremes(&self, values: &[f32]) -> (f32, f32) {
        self.extremes_at(isa::max_isa(), values)
    }

    fn extremes_at(&self, cap: Isa, values: &[f32]) -> (f32, f32) {
        (best_response_kernels::<f32>(cap).bounds[usize::from(self.takes_abs())])(values)
    }

    /// [`RangeMap::bounds`] from the [`RangeMap::extremes`] of the values.
    pub fn bounds_from(&self, lo: f32, hi: f32, full_scale: f64) -> (f64, f64) {
        match self {
            RangeMap::Clip | RangeMap::Abs => (0.0, 1.0 / full_scale),
            RangeMap::MinMax | RangeMap::AbsMinMax => {
                let (lo, hi) = (f64::from(lo), f64::from(hi));
                if hi > lo {
                    (lo, 1.0 / (hi - lo))
                } else {
                    (lo, 0.0)
                }
            }
        }
    }

    /// Whether values are taken as `|v|` first.
    pub fn takes_abs(&self) -> bool {
        matches!(self, RangeMap::Abs | RangeMap::AbsMinMax)
    }

    #[inline]
    fn signed<T: Scalar>(&self, v: T) -> f64 {
        let v = v.to_f64();
        if matches!(self, RangeMap::Abs | RangeMap::AbsMinMax) {
            v.abs()
        } else {
            v
        }
    }
}

impl FromStr for RangeMap {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "clip" => Ok(RangeMap::Clip),
            "abs" => Ok(RangeMap::Abs),
            "minmax" => Ok(RangeMap::MinMax),
            "abs+minmax" | "abs-minmax" | "absminmax" => Ok(RangeMap::AbsMinMax),
            other => Err(Error::arg("range", other, "expected clip, abs, minmax or abs+minmax")),
        }
    }
}

impl fmt::Display for RangeMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RangeMap::Clip => "clip",
            RangeMap::Abs => "abs",
            RangeMap::MinMax => "minmax",
            RangeMap::AbsMinMax => "abs+minmax",
        })
    }
}

/// Quantise an intensity in `[0, 1]` to an integer level of `max` (255, 65535), rounding to
/// nearest; out-of-range values clip, NaN becomes 0.
///
/// ```
/// assert_eq!(convkit::filter::quantize(0.5, 255.0), 128.0);
/// assert_eq!(convkit::filter::quantize(f64::NAN, 255.0), 0.0);
/// ```
#[inline]
pub fn quantize(unit: f64, max: f64) -> f64 {
    // `max` ignores NaN: NaN becomes 0, the rest clips to [0, 1] (so not `clamp`).
    #[allow(clippy::manual_clamp)]
    let x = unit.max(0.0).min(1.0) * max;
    if (0.0..2_147_483_648.0).contains(&max) {
        round_small(x)
    } else {
        x.round()
    }
}

/// `x.round()` for `x` known to be in `[0, 2^31)`, without a libm call (baseline x86-64 has
/// no rounding instruction): the truncation, plus one when the fraction is at least a half
/// (the subtraction is exact there).
#[inline]
fn round_small(x: f64) -> f64 {
    let t = x as i32 as f64;
    // A select, not a branch: the fractions of filtered values are random.
    t + f64::from(u8::from(x - t >= 0.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_match_unit_then_quantize_at_every_level() {
        let mut src: Vec<f32> =
            vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0, 1e-30, -1e30, 3e38];
        src.extend((0..=600).map(|i| i as f32 * 0.5 - 20.0));
        src.extend((0..5000).map(|i| (i as f32 * 0.7391).sin() * 400.0));
        src.extend((0..=255).flat_map(|k| {
            let h = k as f32 + 0.5;
            [h, f32::from_bits(h.to_bits() - 1), f32::from_bits(h.to_bits() + 1)]
        }));
        let modes = [RangeMap::Clip, RangeMap::Abs, RangeMap::MinMax, RangeMap::AbsMinMax];
        for isa in isa::available() {
            for mode in modes {
                for full in [255.0, 65535.0, 1.0] {
                    let (lo, scale) = mode.bounds(&src, full);
                    assert_eq!(mode.bounds_f32_at(isa, &src, full), (lo, scale), "{isa:?} {mode} bounds");
                    let unit = |v: f32| mode.unit(v, lo, scale) as f64;
                    let mut a = vec![0u8; src.len()];
                    mode.levels_at(isa, &src, lo, scale, &mut a);
                    let want: Vec<u8> = src.iter().map(|&v| quantize(unit(v), 255.0) as u8).collect();
                    assert_eq!(a, want, "{isa:?} {mode} u8 full {full}");
                    let mut b = vec![0u16; src.len()];
                    mode.levels_at(isa, &src, lo, scale, &mut b);
                    let want: Vec<u16> = src.iter().map(|&v| quantize(unit(v), 65535.0) as u16).collect();
                    assert_eq!(b, want, "{isa:?} {mode} u16 full {full}");
                }
            }
        }
    }

    #[test]
    fn fast_round_matches_round() {
        let mut xs = vec![0.0, 0.5, 1.5, 2.5, 254.5, 255.0, 0.49999999999999994, 65534.5, 2e9 + 0.5];
        xs.extend((0..200_000).map(|i| i as f64 * 0.0013));
        xs.extend((0..=255).map(|i| i as f64 + 0.5));
        for x in xs {
            assert_eq!(round_small(x), x.round(), "{x}");
        }
    }
}
