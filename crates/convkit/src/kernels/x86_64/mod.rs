//! x86-64 SIMD micro-kernels, one kernel-set module per level. Each safe wrapper checks its
//! slice preconditions and the CPU feature before entering the `#[target_feature]` function.
#![allow(unsafe_code)]

mod avx2;
mod avx2_dw;
mod avx2_grouped;
mod avx2_wino;
mod avx512;
mod avx512_grouped;
mod interleave;
pub mod pool_simd;
pub mod responses_simd;
pub use avx2::{
    f32_copy_panel_avx2, f32_dw_row_avx2_fma, f32_fma_peak_avx2_fma, f32_gemm_4x16_indirect_avx2_fma,
    f32_gemm_6x16_avx2_fma, f32_gemm_6x16_indirect_avx2_fma, f32_gemm_6x8_avx2_fma, f32_transpose_panel_avx2,
};
pub use avx2_dw::{
    f32_dw3_rows_avx2_fma, f32_dw3_rows_avx512, f32_dw_copy_avx2, f32_dw_plane_avx2_fma, f32_dw_split2_avx2,
};
pub use avx2_wino::{
    f32_wino2_input_avx2, f32_wino2_output_avx2, f32_wino_grad_dy_avx2, f32_wino_input_avx2,
    f32_wino_output_avx2,
};
pub use avx512::{
    f32_copy_panel_avx512, f32_dw_copy_avx512, f32_dw_plane_avx512, f32_dw_row_avx512, f32_dw_split2_avx512,
    f32_fma_peak_avx512, f32_gemm_16x16_avx512, f32_gemm_16x16_indirect_avx512, f32_gemm_16x8_avx512,
    f32_gemm_ilv_avx512, f32_gemm_indirect_avx512, f32_gemm_tile_avx512, f32_gemm_tile_narrow_avx512,
    f32_transpose_panel_avx512, f32_wino2_input_avx512, f32_wino2_output_avx512, f32_wino_gather_avx512,
    f32_wino_grad_dy_avx512, f32_wino_input_avx512, f32_wino_output_avx512, f32_wino_scatter_avx512,
    FMA_PEAK_FLOP_PER_ITER_AVX512,
};

pub use avx2_grouped::f32_grouped_avx2_fma;
pub use avx512_grouped::f32_grouped_avx512;

use super::{Geometry, KernelSet};
use crate::kernels::grouped::GroupBand;
use crate::kernels::winograd::{F2_ROWS, F2_U, F2_V, WL};

/// Where one tile of a grouped band lies (the AVX2 and AVX-512 grouped kernels).
struct Tile<'a, 'b> {
    b: &'a GroupBand<'b, f32>,
    /// The packed weights of the tile's channel block.
    w: *const f32,
    /// First output channel of the block.
    k0: usize,
    /// Band row.
    r: usize,
    /// First column.
    ox: usize,
}
use crate::isa::Isa;

/// The AVX2 + FMA kernel set for `f32`: 6×16 tiles.
pub fn avx2_set() -> KernelSet<f32> {
    KernelSet {
        isa: Isa::Avx2Fma,
        geometry: Geometry { mr: avx2::MR, nr: avx2::NR, lanes: 8 },
        gemm: f32_gemm_6x16_avx2_fma,
        gemm_narrow: f32_gemm_6x8_avx2_fma,
        gemm_strided: None,
        gemm_indirect: f32_gemm_6x16_indirect_avx2_fma,
        gemm_indirect_small: (4, f32_gemm_4x16_indirect_avx2_fma),
        copy_panel: f32_copy_panel_avx2,
        transpose_panel: f32_transpose_panel_avx2,
        wino: (f32_wino_input_avx2, f32_wino_output_avx2),
        wino2: (f32_wino2_input_avx2, f32_wino2_output_avx2),
        wino1: (avx2_wino::f32_wino1_input_avx2, avx2_wino::f32_wino1_output_avx2),
        wino_grad: f32_wino_grad_dy_avx2,
        wino_gather: None,
        wino_scatter: None,
        dw_row: f32_dw_row_avx2_fma,
        dw_plane: f32_dw_plane_avx2_fma,
        dw_rows: Some(f32_dw3_rows_avx2_fma),
        dw_copy: f32_dw_copy_avx2,
        dw_split2: f32_dw_split2_avx2,
        grouped: Some((64, f32_grouped_avx2_fma)),
        fma_peak: Some((f32_fma_peak_avx2_fma, avx2::FMA_PEAK_FLOP_AVX2)),
        interleave: interleave::f32_interleave_avx2,
        gemm_ilv: None,
        wino1_f2: Some(avx2::f32_wino1_f2_avx2),
    }
}

/// The AVX-512 kernel set for `f32`: 16×16 tiles (one zmm per row, 16 accumulators).
///
/// Depthwise runs the AVX2 kernels: the portable row and band bodies compiled for AVX-512
/// ([`f32_dw_row_avx512`], [`f32_dw_plane_avx512`]) measured 3–9× slower than the hand-written
/// AVX2 ones on the suite's depthwise and blur cases (Zen 4); the direct 3×3 kernel is the AVX2
/// one compiled with AVX-512VL's 32 registers and taller row groups ([`f32_dw3_rows_avx512`]).
pub fn avx512_set() -> KernelSet<f32> {
    KernelSet {
        isa: Isa::Avx512,
        geometry: Geometry { mr: avx512::MR, nr: avx512::NR, lanes: 16 },
        gemm: f32_gemm_16x16_avx512,
        gemm_narrow: f32_gemm_16x8_avx512,
        gemm_strided: Some(avx512::f32_gemm_16x16_strided_avx512),
        gemm_indirect: f32_gemm_16x16_indirect_avx512,
        gemm_indirect_small: (avx512::MR, f32_gemm_16x16_indirect_avx512),
        copy_panel: f32_copy_panel_avx512,
        transpose_panel: f32_transpose_panel_avx512,
        wino: (f32_wino_input_avx512, f32_wino_output_avx512),
        wino2: (f32_wino2_input_avx512, f32_wino2_output_avx512),
        wino1: (avx512::f32_wino1_input_avx512, avx512::f32_wino1_output_avx512),
        wino_grad: f32_wino_grad_dy_avx512,
        wino_gather: Some(f32_wino_gather_avx512),
        wino_scatter: Some(f32_wino_scatter_avx512),
        dw_row: f32_dw_row_avx2_fma,
        dw_plane: f32_dw_plane_avx2_fma,
        dw_rows: Some(f32_dw3_rows_avx512),
        dw_copy: f32_dw_copy_avx512,
        dw_split2: f32_dw_split2_avx512,
        grouped: Some((64, f32_grouped_avx512)),
        fma_peak: Some((f32_fma_peak_avx512, FMA_PEAK_FLOP_PER_ITER_AVX512)),
        interleave: interleave::f32_interleave_avx512,
        gemm_ilv: Some(f32_gemm_ilv_avx512),
        wino1_f2: Some(avx512::f32_wino1_f2_avx512),
    }
}

/// The checks of the fused F(2, 2) kernels ([`crate::kernels::winograd::Wino1F2Fn`]): `u`
/// holds `phases·24` elements, `v` `panels·phases·48`, at most 8 rows of at least `panels·32`
/// elements and a bias per row (panics otherwise). Returns the row pointers (the first
/// `rows.len()` set), the number of rows and the biases (zero past them, or all zero).
pub(super) fn wino1_f2_args(
    phases: usize,
    (u, v): (&[f32], &[f32]),
    panels: usize,
    rows: &mut [&mut [f32]],
    bias: Option<&[f32]>,
) -> ([*mut f32; F2_ROWS], usize, [f32; F2_ROWS]) {
    assert!(phases.checked_mul(F2_U).is_some_and(|n| n <= u.len()), "u shorter than phases·24");
    assert!(
        panels.checked_mul(phases).and_then(|n| n.checked_mul(F2_V)).is_some_and(|n| n <= v.len()),
        "v shorter than panels·phases·48"
    );
    assert!(rows.len() <= F2_ROWS, "more than {F2_ROWS} rows");
    let width = panels.checked_mul(2 * WL).expect("panels·32 overflows");
    let live = rows.len();
    let mut ptrs = [std::ptr::null_mut(); F2_ROWS];
    for (p, r) in ptrs.iter_mut().zip(rows.iter_mut()) {
        assert!(r.len() >= width, "row shorter than panels·32");
        *p = r.as_mut_ptr();
    }
    let mut b = [0.0f32; F2_ROWS];
    if let Some(bias) = bias {
        b[..live].copy_from_slice(&bias[..live]);
    }
    (ptrs, live, b)
}
