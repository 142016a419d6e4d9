//! The element types convkit computes in (`f32`, `f64`), with the conversions the
//! reference implementation needs to accumulate in `f64`.

/// A floating-point element type: `f32` or `f64`.
pub trait Scalar:
    Copy
    + Send
    + Sync
    + PartialOrd
    + std::fmt::Debug
    + std::fmt::Display
    + Default
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + 'static
{
    /// Zero.
    const ZERO: Self;
    /// The lowest finite value (`MIN`).
    const LOWEST: Self;
    /// Short name used in messages and .npy headers (`f32`, `f64`).
    const NAME: &'static str;
    /// Widen to `f64` (exact).
    fn to_f64(self) -> f64;
    /// Round from `f64` to the nearest value of this type.
    fn from_f64(v: f64) -> Self;
    /// True for NaN.
    fn is_nan(self) -> bool;
    /// `self·a + b` with one rounding.
    fn mul_add(self, a: Self, b: Self) -> Self;
}

impl Scalar for f32 {
    const ZERO: Self = 0.0;
    const LOWEST: Self = f32::MIN;
    const NAME: &'static str = "f32";
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    fn mul_add(self, a: Self, b: Self) -> Self {
        f32::mul_add(self, a, b)
    }
}

impl Scalar for f64 {
    const ZERO: Self = 0.0;
    const LOWEST: Self = f64::MIN;
    const NAME: &'static str = "f64";
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    fn mul_add(self, a: Self, b: Self) -> Self {
        f64::mul_add(self, a, b)
    }
}
