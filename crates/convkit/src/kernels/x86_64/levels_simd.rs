//! [`crate::kernels::levels`] recompiled with AVX2 + FMA and with AVX-512 F/BW/DQ/VL
//! enabled: the same portable body (same operations, same order; Rust never contracts a
//! multiply and an add into an FMA), so the levels equal the portable ones bit for bit,
//! 4 or 8 `f64` lanes at a time. Each safe wrapper asserts the CPU features, then calls its
//! `#[target_feature]` twin (the only `unsafe`); the body only indexes slices.

use crate::kernels::levels::{self, Level, LevelsFn};

macro_rules! level {
    ($m:ident, $feat:literal, $has:expr) => {
        mod $m {
            use super::*;

            fn has() -> bool {
                static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
                *HAS.get_or_init(|| $has)
            }

            #[target_feature(enable = $feat)]
            fn levels_tf<S: Level, const ABS: bool>(src: &[f32], dst: &mut [S], lo: f64, scale: f64) {
                levels::levels::<S, ABS>(src, dst, lo, scale)
            }

            /// [`levels::levels`] at this level; panics if the CPU lacks the features.
            pub fn run<S: Level, const ABS: bool>(src: &[f32], dst: &mut [S], lo: f64, scale: f64) {
                assert!(has(), "CPU lacks {}", $feat);
                // SAFETY: the CPU has every feature the function is compiled with (checked
                // above); its body only indexes slices.
                unsafe { levels_tf::<S, ABS>(src, dst, lo, scale) }
            }
        }
    };
}

level!(a2, "avx2,fma", is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"));
level!(
    a512,
    "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma",
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512dq")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
);

/// The AVX2 + FMA conversion (call only where the CPU has them: it panics otherwise).
pub fn avx2<S: Level>(abs: bool) -> LevelsFn<S> {
    if abs {
        a2::run::<S, true>
    } else {
        a2::run::<S, false>
    }
}

/// The AVX-512 conversion (call only where the CPU has it: it panics otherwise).
pub fn avx512<S: Level>(abs: bool) -> LevelsFn<S> {
    if abs {
        a512::run::<S, true>
    } else {
        a512::run::<S, false>
    }
}
