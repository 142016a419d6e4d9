//! Micro-kernels: the innermost loops, apart from the API. `generic` is portable Rust and
//! always built; `x86_64` holds the AVX2/FMA versions, the crate's only `unsafe` code.
//!
//! A GEMM micro-kernel computes one `MR × NR` tile `C = A·B` over a reduction of length `kc`
//! from packed panels: `a` holds `kc` groups of `MR` values (rows of the weight),
//! `b` holds `kc` groups of `NR` values (columns of the patch matrix).

pub mod generic;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;

/// Rows of a GEMM tile (output channels).
pub const MR: usize = 6;
/// Columns of a GEMM tile (output positions).
pub const NR: usize = 16;

/// A GEMM tile kernel: `c[i*NR + j] = Σ_p a[p*MR + i]·b[p*NR + j]` for a reduction of `kc`,
/// or `c += …` when `accumulate` is true.
pub type GemmTile<T> = fn(kc: usize, a: &[T], b: &[T], c: &mut [T; MR * NR], accumulate: bool);
