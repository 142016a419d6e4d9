//! The response maps of [`crate::kernels::responses`] recompiled with AVX2 + FMA and with
//! AVX-512 F/BW/DQ/VL enabled: the same portable bodies (same operations, same order; Rust
//! never contracts a multiply and an add into an FMA), so the results equal the portable
//! ones bit for bit, 4–16 lanes at a time. Each safe wrapper asserts the CPU features, then
//! calls its `#[target_feature]` twin (the only `unsafe`); the bodies only index slices.

use crate::isa::Isa;
use crate::kernels::responses::{self, Level, Pair3, ResponseKernels};
use crate::scalar::Scalar;

macro_rules! level {
    ($m:ident, $isa:expr, $feat:literal) => {
        mod $m {
            use super::*;

            /// The CPU runs this level (detected once, in [`crate::isa`]).
            fn has() -> bool {
                crate::isa::supported($isa)
            }

            #[target_feature(enable = $feat)]
            fn levels_tf<S: Level, const ABS: bool>(src: &[f32], dst: &mut [S], lo: f64, scale: f64) {
                responses::levels::<S, ABS>(src, dst, lo, scale)
            }

            #[target_feature(enable = $feat)]
            fn bounds_tf<const ABS: bool>(src: &[f32]) -> (f32, f32) {
                responses::bounds::<ABS>(src)
            }

            #[target_feature(enable = $feat)]
            fn magnitude_tf<T: Scalar>(x: &[T], y: &[T], out: &mut [T]) {
                responses::magnitude::<T>(x, y, out)
            }

            /// [`responses::levels`] at this level; panics if the CPU lacks the features.
            fn levels<S: Level, const ABS: bool>(src: &[f32], dst: &mut [S], lo: f64, scale: f64) {
                assert!(has(), "CPU lacks {}", $feat);
                // SAFETY: the CPU has every feature the function is compiled with (checked
                // above); its body only indexes slices.
                unsafe { levels_tf::<S, ABS>(src, dst, lo, scale) }
            }

            /// [`responses::bounds`] at this level; panics if the CPU lacks the features.
            fn bounds<const ABS: bool>(src: &[f32]) -> (f32, f32) {
                assert!(has(), "CPU lacks {}", $feat);
                // SAFETY: as in `levels`.
                unsafe { bounds_tf::<ABS>(src) }
            }

            /// [`responses::magnitude`] at this level; panics if the CPU lacks the features.
            fn magnitude<T: Scalar>(x: &[T], y: &[T], out: &mut [T]) {
                assert!(has(), "CPU lacks {}", $feat);
                // SAFETY: as in `levels`.
                unsafe { magnitude_tf::<T>(x, y, out) }
            }

            #[target_feature(enable = $feat)]
            fn magnitude_bounds_tf<T: Scalar>(x: &[T], y: &[T]) -> (T, T) {
                responses::magnitude_bounds::<T>(x, y)
            }

            /// [`responses::magnitude_bounds`] at this level; panics if the CPU lacks the
            /// features.
            fn magnitude_bounds<T: Scalar>(x: &[T], y: &[T]) -> (T, T) {
                assert!(has(), "CPU lacks {}", $feat);
                // SAFETY: as in `levels`.
                unsafe { magnitude_bounds_tf::<T>(x, y) }
            }

            #[target_feature(enable = $feat)]
            fn gradient3_tf<T: Scalar>(rows: [&[T]; 3], w: &Pair3<T>, out: &mut [T]) {
                responses::gradient3_magnitude::<T>(rows, w, out)
            }

            /// [`responses::gradient3_magnitude`] at this level; panics if the CPU lacks the
            /// features.
            fn gradient3<T: Scalar>(rows: [&[T]; 3], w: &Pair3<T>, out: &mut [T]) {
                assert!(has(), "CPU lacks {}", $feat);
                // SAFETY: as in `levels`.
                unsafe { gradient3_tf::<T>(rows, w, out) }
            }

            #[target_feature(enable = $feat)]
            fn gradient3_bounds_tf<T: Scalar>(rows: [&[T]; 3], w: &Pair3<T>, n: usize) -> (T, T) {
                responses::gradient3_bounds::<T>(rows, w, n)
            }

            /// [`responses::gradient3_bounds`] at this level; panics if the CPU lacks the
            /// features.
            fn gradient3_bounds<T: Scalar>(rows: [&[T]; 3], w: &Pair3<T>, n: usize) -> (T, T) {
                assert!(has(), "CPU lacks {}", $feat);
                // SAFETY: as in `levels`.
                unsafe { gradient3_bounds_tf::<T>(rows, w, n) }
            }

            /// This level's table.
            pub fn kernels<T: Scalar>() -> ResponseKernels<T> {
                ResponseKernels {
                    isa: $isa,
                    levels_u8: [levels::<u8, false>, levels::<u8, true>],
                    levels_u16: [levels::<u16, false>, levels::<u16, true>],
                    bounds: [bounds::<false>, bounds::<true>],
                    magnitude: magnitude::<T>,
                    magnitude_bounds: magnitude_bounds::<T>,
                    gradient3: gradient3::<T>,
                    gradient3_bounds: gradient3_bounds::<T>,
                }
            }
        }
    };
}

level!(avx2, Isa::Avx2Fma, "avx2,fma");
level!(avx512, Isa::Avx512, "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma");

/// The AVX2 + FMA maps (call only where the CPU has them: they panic otherwise).
pub fn avx2_kernels<T: Scalar>() -> ResponseKernels<T> {
    avx2::kernels::<T>()
}

/// The AVX-512 maps (call only where the CPU has them: they panic otherwise).
pub fn avx512_kernels<T: Scalar>() -> ResponseKernels<T> {
    avx512::kernels::<T>()
}
