//! The portable interleave ([`generic::interleave`]) compiled with AVX2 and with AVX-512
//! enabled: the same additions, so the results equal the portable kernel's bit for bit, with
//! the 2-, 4- and 8-row bodies vectorized as shuffles 8 or 16 wide.

use crate::kernels::generic;

/// `f32_interleave_avx2`: [`generic::interleave`] with AVX2.
///
/// Safe to call: it checks that the CPU has AVX2; the body only indexes slices (checked).
pub fn f32_interleave_avx2(srcs: &[&[f32]], bias: f32, dst: &mut [f32]) {
    assert!(is_x86_feature_detected!("avx2"), "the CPU lacks AVX2");
    // SAFETY: the CPU supports AVX2 (checked above); the functions have no other
    // precondition.
    unsafe {
        match srcs.len() {
            2 => avx2_2(srcs, bias, dst),
            4 => avx2_4(srcs, bias, dst),
            8 => avx2_8(srcs, bias, dst),
            _ => avx2_any(srcs, bias, dst),
        }
    }
}

/// `f32_interleave_avx512`: [`generic::interleave`] with AVX-512.
///
/// Safe to call: it checks that the CPU has AVX-512 F/BW/DQ/VL; the body only indexes slices
/// (checked).
pub fn f32_interleave_avx512(srcs: &[&[f32]], bias: f32, dst: &mut [f32]) {
    assert!(super::avx512::detected(), "the CPU lacks AVX-512 F/BW/DQ/VL");
    // SAFETY: as above.
    unsafe {
        match srcs.len() {
            2 => avx512_2(srcs, bias, dst),
            4 => avx512_4(srcs, bias, dst),
            8 => avx512_8(srcs, bias, dst),
            _ => avx512_any(srcs, bias, dst),
        }
    }
}

// One compiled body per row count, so each inlines only its own fixed-width code (a small
// frame: the rows of a 56-wide output call it once per output row).
macro_rules! bodies {
    ($feat:literal, $any:ident, $($name:ident = $s:literal),+) => {
        $(
            #[target_feature(enable = $feat)]
            fn $name(srcs: &[&[f32]], bias: f32, dst: &mut [f32]) {
                generic::interleave_fixed::<f32, $s>(srcs, bias, dst)
            }
        )+
        #[target_feature(enable = $feat)]
        fn $any(srcs: &[&[f32]], bias: f32, dst: &mut [f32]) {
            generic::interleave(srcs, bias, dst)
        }
    };
}
bodies!("avx2", avx2_any, avx2_2 = 2, avx2_4 = 4, avx2_8 = 8);
bodies!("avx512f,avx512bw,avx512dq,avx512vl,avx2", avx512_any, avx512_2 = 2, avx512_4 = 4, avx512_8 = 8);

#[cfg(test)]
mod tests {

    /// Every row count (the fixed 2, 4, 8 and others), lengths around the vector widths,
    /// rows longer than needed: equal to the portable kernel bit for bit, and to the
    /// definition.
    #[test]
    fn interleave_matches_generic_at_every_level() {
        let levels: Vec<crate::kernels::InterleaveFn<f32>> = crate::isa::available()
            .into_iter()
            .filter_map(|isa| crate::kernels::kernel_set::<f32>(isa).map(|k| k.interleave))
            .collect();
        for s in 1..=9 {
            for n in [0, 1, 7, 8, 15, 16, 17, 33, 100] {
                let rows: Vec<Vec<f32>> = (0..s)
                    .map(|r| (0..n + r % 3).map(|j| (r * 1000 + j) as f32 * 0.5 - 3.0).collect())
                    .collect();
                let srcs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
                let mut want = vec![0.0; s * n];
                for (j, d) in want.chunks_mut(s).enumerate() {
                    for (r, v) in d.iter_mut().enumerate() {
                        *v = rows[r][j] + 0.25;
                    }
                }
                for f in &levels {
                    let mut got = vec![f32::NAN; s * n];
                    f(&srcs, 0.25, &mut got);
                    assert_eq!(got, want, "{s} rows of {n}");
                }
            }
        }
    }
}
