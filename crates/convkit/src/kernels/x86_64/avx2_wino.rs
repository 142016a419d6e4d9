//! The Winograd F(4×4, 3×3) and F(4×4, 2×2) transforms of [`crate::kernels::winograd`] compiled with AVX2
//! and FMA enabled: the same operations in the same order (Rust never contracts `a·b + c`
//! into a fused multiply-add on its own), so the results equal the portable kernels' bit for
//! bit, with the lane loops vectorized 8 wide.

use crate::kernels::winograd::{self, Lanes, WA, WM, WX};

/// `f32_wino_input_avx2`: [`winograd::wino_input`] with AVX2.
///
/// Safe to call: it checks that the CPU has AVX2 and FMA; the transform itself only indexes
/// slices (checked).
pub fn f32_wino_input_avx2(d: &[Lanes<f32>; WX], v: &mut [f32], vstride: usize) {
    assert!(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"));
    // SAFETY: the CPU supports AVX2 and FMA (checked above); the function has no other
    // precondition.
    unsafe { input(d, v, vstride) }
}

/// `f32_wino_output_avx2`: [`winograd::wino_output`] with AVX2.
///
/// Safe to call: it checks that the CPU has AVX2 and FMA; the transform itself only indexes
/// slices (checked).
pub fn f32_wino_output_avx2(m: &[f32], mstride: usize, bias: f32, y: &mut [Lanes<f32>; WM * WM]) {
    assert!(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"));
    // SAFETY: as above.
    unsafe { output(m, mstride, bias, y) }
}

#[target_feature(enable = "avx2,fma")]
fn input(d: &[Lanes<f32>; WX], v: &mut [f32], vstride: usize) {
    winograd::wino_input(d, v, vstride)
}

#[target_feature(enable = "avx2,fma")]
fn output(m: &[f32], mstride: usize, bias: f32, y: &mut [Lanes<f32>; WM * WM]) {
    winograd::wino_output(m, mstride, bias, y)
}

/// `f32_wino2_input_avx2`: [`winograd::wino2_input`] with AVX2.
///
/// Safe to call: it checks that the CPU has AVX2 and FMA; the transform itself only indexes
/// slices (checked).
pub fn f32_wino2_input_avx2(d: &[Lanes<f32>; WX], v: &mut [f32], vstride: usize) {
    assert!(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"));
    // SAFETY: the CPU supports AVX2 and FMA (checked above); the function has no other
    // precondition.
    unsafe { input2(d, v, vstride) }
}

/// `f32_wino2_output_avx2`: [`winograd::wino2_output`] with AVX2.
///
/// Safe to call: it checks that the CPU has AVX2 and FMA; the transform itself only indexes
/// slices (checked).
pub fn f32_wino2_output_avx2(m: &[f32], mstride: usize, bias: f32, y: &mut [Lanes<f32>; WM * WM]) {
    assert!(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"));
    // SAFETY: as above.
    unsafe { output2(m, mstride, bias, y) }
}

#[target_feature(enable = "avx2,fma")]
fn input2(d: &[Lanes<f32>; WX], v: &mut [f32], vstride: usize) {
    winograd::wino2_input(d, v, vstride)
}

#[target_feature(enable = "avx2,fma")]
fn output2(m: &[f32], mstride: usize, bias: f32, y: &mut [Lanes<f32>; WM * WM]) {
    winograd::wino2_output(m, mstride, bias, y)
}

/// `f32_wino_grad_dy_avx2`: [`winograd::wino_grad_dy`] with AVX2.
///
/// Safe to call: it checks that the CPU has AVX2 and FMA; the transform itself only indexes
/// slices (checked).
pub fn f32_wino_grad_dy_avx2(h: &[Lanes<f32>; WM * WM], u: &mut [f32], ustride: usize) {
    assert!(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"));
    // SAFETY: as above.
    unsafe { grad_dy(h, u, ustride) }
}

#[target_feature(enable = "avx2,fma")]
fn grad_dy(h: &[Lanes<f32>; WM * WM], u: &mut [f32], ustride: usize) {
    winograd::wino_grad_dy(h, u, ustride)
}

/// `f32_wino1_input_avx2`: [`winograd::wino1_input`] with AVX2.
///
/// Safe to call: it checks that the CPU has AVX2 and FMA; the transform itself only indexes
/// slices (checked).
pub fn f32_wino1_input_avx2(a: usize, d: &[Lanes<f32>; WA], v: &mut [f32], vstride: usize) {
    assert!(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"));
    // SAFETY: as above.
    unsafe { input1(a, d, v, vstride) }
}

/// `f32_wino1_output_avx2`: [`winograd::wino1_output`] with AVX2.
///
/// Safe to call: it checks that the CPU has AVX2 and FMA; the transform itself only indexes
/// slices (checked).
pub fn f32_wino1_output_avx2(
    a: usize,
    m: &[f32],
    mstride: usize,
    bias: f32,
    add: Option<&[f32]>,
    y: &mut [f32],
) {
    assert!(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"));
    // SAFETY: as above.
    unsafe { output1(a, m, mstride, bias, add, y) }
}

#[target_feature(enable = "avx2,fma")]
fn input1(a: usize, d: &[Lanes<f32>; WA], v: &mut [f32], vstride: usize) {
    winograd::wino1_input(a, d, v, vstride)
}

#[target_feature(enable = "avx2,fma")]
fn output1(a: usize, m: &[f32], mstride: usize, bias: f32, add: Option<&[f32]>, y: &mut [f32]) {
    winograd::wino1_output(a, m, mstride, bias, add, y)
}
