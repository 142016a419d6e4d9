//! The pooling row kernels of [`crate::kernels::pool`] recompiled with AVX2 + FMA and with
//! AVX-512 F/BW/DQ/VL enabled: the same portable bodies (same operations, same order), so
//! the results equal the portable kernels' bit for bit, with the loops vectorized 8 or 16
//! `f32` lanes wide. Each safe wrapper asserts the CPU features, then calls its
//! `#[target_feature]` twin (the only `unsafe`); the bodies only index slices (checked).

use crate::isa::Isa;
use crate::kernels::pool::{self, PoolKernels};
use crate::scalar::Scalar;

/// One level's wrappers: `$isa` the level (whether the CPU runs it comes from
/// [`crate::isa::supported`]), `$feat` the features compiled in.
macro_rules! level {
    ($m:ident, $isa:expr, $feat:literal, $doc:literal) => {
        #[doc = $doc]
        mod $m {
            use super::*;

            /// The CPU has the features (detected once).
            /// The CPU runs this level (detected once, in [`crate::isa`]).
            fn has() -> bool {
                crate::isa::supported($isa)
            }

            #[target_feature(enable = $feat)]
            fn max_row_tf<T: Scalar, const S: usize, const K: usize>(acc: &mut [T], x: &[T], offs: &[usize]) {
                pool::max_row::<T, S, K>(acc, x, offs)
            }

            #[target_feature(enable = $feat)]
            fn avg_row_tf<T: Scalar, const S: usize, const K: usize>(
                acc: &mut [f64],
                x: &[T],
                offs: &[usize],
            ) {
                pool::avg_row::<T, S, K>(acc, x, offs)
            }

            #[target_feature(enable = $feat)]
            fn avg_out_tf<T: Scalar>(y: &mut [T], acc: &[f64], row_div: f64, factors: &[f64]) {
                pool::avg_out::<T>(y, acc, row_div, factors)
            }

            #[target_feature(enable = $feat)]
            fn avg_scale_tf<T: Scalar>(y: &mut [T], acc: &[f64], scale: f64) {
                pool::avg_scale::<T>(y, acc, scale)
            }

            /// [`pool::max_row`] at this level; panics if the CPU lacks the features.
            pub fn max_row<T: Scalar, const S: usize, const K: usize>(
                acc: &mut [T],
                x: &[T],
                offs: &[usize],
            ) {
                assert!(has(), "CPU lacks {}", $feat);
                // SAFETY: the CPU has every feature the function is compiled with (checked
                // above); its body only indexes slices.
                unsafe { max_row_tf::<T, S, K>(acc, x, offs) }
            }

            /// [`pool::avg_row`] at this level; panics if the CPU lacks the features.
            pub fn avg_row<T: Scalar, const S: usize, const K: usize>(
                acc: &mut [f64],
                x: &[T],
                offs: &[usize],
            ) {
                assert!(has(), "CPU lacks {}", $feat);
                // SAFETY: as in `max_row`.
                unsafe { avg_row_tf::<T, S, K>(acc, x, offs) }
            }

            /// [`pool::avg_out`] at this level; panics if the CPU lacks the features.
            pub fn avg_out<T: Scalar>(y: &mut [T], acc: &[f64], row_div: f64, factors: &[f64]) {
                assert!(has(), "CPU lacks {}", $feat);
                // SAFETY: as in `max_row`.
                unsafe { avg_out_tf::<T>(y, acc, row_div, factors) }
            }

            /// [`pool::avg_scale`] at this level; panics if the CPU lacks the features.
            pub fn avg_scale<T: Scalar>(y: &mut [T], acc: &[f64], scale: f64) {
                assert!(has(), "CPU lacks {}", $feat);
                // SAFETY: as in `max_row`.
                unsafe { avg_scale_tf::<T>(y, acc, scale) }
            }

            /// This level's table.
            pub fn kernels<T: Scalar>() -> PoolKernels<T> {
                PoolKernels {
                    isa: $isa,
                    max_row: [max_row::<T, 1, 2>, max_row::<T, 1, 3>, max_row::<T, 2, 2>, max_row::<T, 2, 3>],
                    avg_row: [avg_row::<T, 1, 2>, avg_row::<T, 1, 3>, avg_row::<T, 2, 2>, avg_row::<T, 2, 3>],
                    avg_out: avg_out::<T>,
                    avg_scale: avg_scale::<T>,
                }
            }
        }
    };
}

level!(avx2, Isa::Avx2Fma, "avx2,fma", "AVX2 + FMA (256-bit vectors).");
level!(
    avx512,
    Isa::Avx512,
    "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma",
    "AVX-512 F/BW/DQ/VL (512-bit vectors)."
);

/// The AVX2 + FMA pooling kernels for `T` (call only where the CPU has them: they panic
/// otherwise).
pub fn avx2_kernels<T: Scalar>() -> PoolKernels<T> {
    avx2::kernels::<T>()
}

/// The AVX-512 pooling kernels for `T` (call only where the CPU has them: they panic
/// otherwise).
pub fn avx512_kernels<T: Scalar>() -> PoolKernels<T> {
    avx512::kernels::<T>()
}
