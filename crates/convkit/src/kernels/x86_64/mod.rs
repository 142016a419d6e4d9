//! x86-64 SIMD micro-kernels. Each safe wrapper checks its slice preconditions and the CPU
//! feature before entering the `#[target_feature]` function.
#![allow(unsafe_code)]

mod avx2;
mod avx2_dw;
mod avx2_wino;
pub use avx2::{
    f32_copy_panel_avx2, f32_dw_row_avx2_fma, f32_fma_peak_avx2_fma, f32_gemm_4x16_indirect_avx2_fma,
    f32_gemm_6x16_avx2_fma, f32_gemm_6x16_indirect_avx2_fma, f32_gemm_6x8_avx2_fma, f32_transpose_panel_avx2,
};
pub use avx2_dw::{f32_dw3_rows_avx2_fma, f32_dw_copy_avx2, f32_dw_plane_avx2_fma, f32_dw_split2_avx2};
pub use avx2_wino::{f32_wino_input_avx2, f32_wino_output_avx2};
