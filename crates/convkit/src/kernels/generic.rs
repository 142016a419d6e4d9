//! Portable micro-kernels, generic over the element type.

use super::{MR, NR};
use crate::scalar::Scalar;

/// `f32`/`f64` GEMM tile in plain Rust (`gemm_6x16:generic`).
pub fn gemm_6x16<T: Scalar>(kc: usize, a: &[T], b: &[T], c: &mut [T; MR * NR], accumulate: bool) {
    let mut acc = [T::ZERO; MR * NR];
    if accumulate {
        acc = *c;
    }
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)).take(kc) {
        for i in 0..MR {
            let av = ap[i];
            let row = &mut acc[i * NR..(i + 1) * NR];
            for j in 0..NR {
                row[j] = row[j] + av * bp[j];
            }
        }
    }
    *c = acc;
}
