//! The element types convkit computes in (`f32`, `f64`), with the conversions the
//! reference implementation needs to accumulate in `f64`.

use crate::isa::Isa;
use crate::kernels::generic::{DwCopyFn, DwPlaneFn, DwRowFn, DwRowsFn, DwSplitFn};
use crate::kernels::winograd::{WinoInFn, WinoOutFn};
use crate::kernels::{GemmIndirect, GemmTile, PanelCopy, PanelTranspose};

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
    /// The SIMD depthwise row kernel for this type at `isa`, if one exists.
    #[doc(hidden)]
    fn dw_row(isa: Isa) -> Option<DwRowFn<Self>>;
    /// The SIMD depthwise band kernel for this type at `isa`, if one exists.
    #[doc(hidden)]
    fn dw_plane(isa: Isa) -> Option<DwPlaneFn<Self>> {
        let _ = isa;
        None
    }
    /// The SIMD direct 3×3 depthwise band kernel (constant padding, no staging) for this type
    /// at `isa`, if one exists.
    #[doc(hidden)]
    fn dw_rows(isa: Isa) -> Option<DwRowsFn<Self>> {
        let _ = isa;
        None
    }
    /// The SIMD staging copy for this type at `isa`, if one exists.
    #[doc(hidden)]
    fn dw_copy(isa: Isa) -> Option<DwCopyFn<Self>> {
        let _ = isa;
        None
    }
    /// The SIMD stride-2 phase split for this type at `isa`, if one exists.
    #[doc(hidden)]
    fn dw_split2(isa: Isa) -> Option<DwSplitFn<Self>> {
        let _ = isa;
        None
    }
    /// The SIMD GEMM tile kernel for this type at `isa`, if one exists.
    #[doc(hidden)]
    fn gemm_tile(isa: Isa) -> Option<GemmTile<Self>>;
    /// The SIMD Winograd input and output transforms for this type at `isa`, if they exist.
    #[doc(hidden)]
    fn wino(isa: Isa) -> Option<(WinoInFn<Self>, WinoOutFn<Self>)> {
        let _ = isa;
        None
    }
    /// The SIMD GEMM tile kernel computing only the first `NR / 2` columns, if one exists.
    #[doc(hidden)]
    fn gemm_tile_narrow(isa: Isa) -> Option<GemmTile<Self>> {
        let _ = isa;
        None
    }
    /// The SIMD panel copy kernel for this type at `isa`, if one exists.
    #[doc(hidden)]
    fn copy_panel(isa: Isa) -> Option<PanelCopy<Self>> {
        let _ = isa;
        None
    }
    /// The SIMD panel transpose kernel for this type at `isa`, if one exists.
    #[doc(hidden)]
    fn transpose_panel(isa: Isa) -> Option<PanelTranspose<Self>> {
        let _ = isa;
        None
    }
    /// The SIMD indirect GEMM tile kernel for this type at `isa` computing at least `rows`
    /// rows of the tile, if one exists.
    #[doc(hidden)]
    fn gemm_indirect(isa: Isa, rows: usize) -> Option<GemmIndirect<Self>> {
        let _ = (isa, rows);
        None
    }
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
    fn dw_row(isa: Isa) -> Option<DwRowFn<Self>> {
        #[cfg(target_arch = "x86_64")]
        if isa >= Isa::Avx2Fma && crate::isa::supported(Isa::Avx2Fma) {
            return Some(crate::kernels::x86_64::f32_dw_row_avx2_fma);
        }
        let _ = isa;
        None
    }
    fn dw_plane(isa: Isa) -> Option<DwPlaneFn<Self>> {
        #[cfg(target_arch = "x86_64")]
        if isa >= Isa::Avx2Fma && crate::isa::supported(Isa::Avx2Fma) {
            return Some(crate::kernels::x86_64::f32_dw_plane_avx2_fma);
        }
        let _ = isa;
        None
    }
    fn dw_rows(isa: Isa) -> Option<DwRowsFn<Self>> {
        #[cfg(target_arch = "x86_64")]
        if isa >= Isa::Avx2Fma && crate::isa::supported(Isa::Avx2Fma) {
            return Some(crate::kernels::x86_64::f32_dw3_rows_avx2_fma);
        }
        let _ = isa;
        None
    }
    fn dw_copy(isa: Isa) -> Option<DwCopyFn<Self>> {
        #[cfg(target_arch = "x86_64")]
        if isa >= Isa::Avx2Fma && crate::isa::supported(Isa::Avx2Fma) {
            return Some(crate::kernels::x86_64::f32_dw_copy_avx2);
        }
        let _ = isa;
        None
    }
    fn dw_split2(isa: Isa) -> Option<DwSplitFn<Self>> {
        #[cfg(target_arch = "x86_64")]
        if isa >= Isa::Avx2Fma && crate::isa::supported(Isa::Avx2Fma) {
            return Some(crate::kernels::x86_64::f32_dw_split2_avx2);
        }
        let _ = isa;
        None
    }
    fn gemm_tile(isa: Isa) -> Option<GemmTile<Self>> {
        #[cfg(target_arch = "x86_64")]
        if isa >= Isa::Avx2Fma && crate::isa::supported(Isa::Avx2Fma) {
            return Some(crate::kernels::x86_64::f32_gemm_6x16_avx2_fma);
        }
        let _ = isa;
        None
    }
    fn wino(isa: Isa) -> Option<(WinoInFn<Self>, WinoOutFn<Self>)> {
        #[cfg(target_arch = "x86_64")]
        if isa >= Isa::Avx2Fma && crate::isa::supported(Isa::Avx2Fma) {
            use crate::kernels::x86_64::{f32_wino_input_avx2, f32_wino_output_avx2};
            return Some((f32_wino_input_avx2, f32_wino_output_avx2));
        }
        let _ = isa;
        None
    }
    fn gemm_tile_narrow(isa: Isa) -> Option<GemmTile<Self>> {
        #[cfg(target_arch = "x86_64")]
        if isa >= Isa::Avx2Fma && crate::isa::supported(Isa::Avx2Fma) {
            return Some(crate::kernels::x86_64::f32_gemm_6x8_avx2_fma);
        }
        let _ = isa;
        None
    }
    fn copy_panel(isa: Isa) -> Option<PanelCopy<Self>> {
        #[cfg(target_arch = "x86_64")]
        if isa >= Isa::Avx2Fma && crate::isa::supported(Isa::Avx2Fma) {
            return Some(crate::kernels::x86_64::f32_copy_panel_avx2);
        }
        let _ = isa;
        None
    }
    fn transpose_panel(isa: Isa) -> Option<PanelTranspose<Self>> {
        #[cfg(target_arch = "x86_64")]
        if isa >= Isa::Avx2Fma && crate::isa::supported(Isa::Avx2Fma) {
            return Some(crate::kernels::x86_64::f32_transpose_panel_avx2);
        }
        let _ = isa;
        None
    }
    fn gemm_indirect(isa: Isa, rows: usize) -> Option<GemmIndirect<Self>> {
        #[cfg(target_arch = "x86_64")]
        if isa >= Isa::Avx2Fma && crate::isa::supported(Isa::Avx2Fma) {
            return Some(if rows <= 4 {
                crate::kernels::x86_64::f32_gemm_4x16_indirect_avx2_fma
            } else {
                crate::kernels::x86_64::f32_gemm_6x16_indirect_avx2_fma
            });
        }
        let _ = (isa, rows);
        None
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
    fn dw_row(_isa: Isa) -> Option<DwRowFn<Self>> {
        None
    }
    fn gemm_tile(_isa: Isa) -> Option<GemmTile<Self>> {
        None
    }
}
