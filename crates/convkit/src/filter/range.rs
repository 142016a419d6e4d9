//! Mapping filter responses back to displayable pixel values: clip, absolute value, min–max
//! stretch, and the default choice for a stack of filters.

use super::kernel::Filter;
use crate::error::{Error, Result};
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
        let abs = matches!(self, RangeMap::Abs | RangeMap::AbsMinMax);
        let f = |v: T| {
            let v = v.to_f64();
            if abs {
                v.abs()
            } else {
                v
            }
        };
        let (lo, scale) = match self {
            RangeMap::Clip | RangeMap::Abs => (0.0, 1.0 / full_scale),
            RangeMap::MinMax | RangeMap::AbsMinMax => {
                let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
                for &v in values.iter() {
                    let v = f(v);
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
        };
        for v in values.iter_mut() {
            let u = (f(*v) - lo) * scale;
            *v = T::from_f64(if u.is_finite() { u.clamp(0.0, 1.0) } else { 0.0 });
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
pub fn quantize(unit: f64, max: f64) -> f64 {
    if unit.is_nan() {
        0.0
    } else {
        (unit.clamp(0.0, 1.0) * max).round()
    }
}
