//! AVX2 + FMA grouped direct band kernel for `f32` (see [`GroupBand`]): per output row, blocks
//! of up to 4 output channels × up to [`MAX_NV`] ymm of columns (8 accumulators; 3 vectors, 12
//! accumulators, ran out of registers and measured 35 % slower on ResNeXt's 3×3, Zen 4); every
//! tap loads the shifted input vectors once and multiplies them with one broadcast weight per
//! channel. The last vector of a row is stored through a mask.

use super::Tile;
use crate::kernels::grouped::{GroupBand, GROUP_KB, GROUP_SLACK};
use std::arch::x86_64::*;

/// Lanes of a ymm of `f32`.
const L: usize = 8;
/// Most column vectors per tile.
const MAX_NV: usize = 2;
const _: () = assert!(GROUP_SLACK >= L && GROUP_KB == 4);

/// `f32_grouped_avx2_fma`: the band of [`GroupBand`] into `y`.
///
/// Safe to call: it checks that the CPU has AVX2 and FMA, and that every read (with
/// [`GROUP_SLACK`] elements of whole-vector tail) and write lies in its slice
/// ([`GroupBand::check`]); it panics otherwise.
pub fn f32_grouped_avx2_fma(b: &GroupBand<'_, f32>, y: &mut [f32]) {
    assert!(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"));
    b.check(GROUP_SLACK, y.len());
    // SAFETY: the CPU has the features (checked above) and every access lies in `b.x`,
    // `b.w` and `y` (checked by `b.check`).
    unsafe { band(b, y) }
}

/// # Safety
/// AVX2 and FMA available; `b.check(GROUP_SLACK, y.len())` passed.
#[target_feature(enable = "avx2,fma")]
unsafe fn band(b: &GroupBand<'_, f32>, y: &mut [f32]) {
    let taps = b.cg * b.kh * b.cols.len();
    for k0 in (0..b.kg).step_by(GROUP_KB) {
        let kb = GROUP_KB.min(b.kg - k0);
        let w = b.w.as_ptr().add(k0 * taps);
        for r in 0..b.rows {
            let mut ox = 0;
            while ox < b.wout {
                let nv = (b.wout - ox).div_ceil(L).min(MAX_NV);
                let t = Tile { b, w, k0, r, ox };
                match (kb, nv) {
                    (1, 1) => tile::<1, 1>(&t, y),
                    (1, _) => tile::<1, 2>(&t, y),
                    (2, 1) => tile::<2, 1>(&t, y),
                    (2, _) => tile::<2, 2>(&t, y),
                    (3, 1) => tile::<3, 1>(&t, y),
                    (3, _) => tile::<3, 2>(&t, y),
                    (_, 1) => tile::<4, 1>(&t, y),
                    _ => tile::<4, 2>(&t, y),
                }
                ox += nv * L;
            }
        }
    }
}

/// `KB` output channels × `NV` vectors of columns from `t.ox` (the last vector masked to
/// the row's end).
///
/// # Safety
/// As [`band`]; `t.w` points at a block of `KB` channels; `t.ox + (NV − 1)·8 < wout`.
#[inline(always)]
unsafe fn tile<const KB: usize, const NV: usize>(t: &Tile<'_, '_>, y: &mut [f32]) {
    let b = t.b;
    let mut acc = [[_mm256_setzero_ps(); NV]; KB];
    let mut wp = t.w;
    let x = b.x.as_ptr().add(t.ox + t.r * b.sh * b.pitch);
    for ci in 0..b.cg {
        let xc = x.add(ci * b.chan);
        for ky in 0..b.kh {
            let xr = xc.add(ky * b.dh * b.pitch);
            for &c in b.cols {
                let xp = xr.add(c);
                // Whole vectors: lanes past the row's end read staged data or the slack.
                let xv: [__m256; NV] = std::array::from_fn(|v| _mm256_loadu_ps(xp.add(v * L)));
                for (k, a) in acc.iter_mut().enumerate() {
                    let wv = _mm256_broadcast_ss(&*wp.add(k));
                    for (s, &xx) in a.iter_mut().zip(&xv) {
                        *s = _mm256_fmadd_ps(wv, xx, *s);
                    }
                }
                wp = wp.add(KB);
            }
        }
    }
    let left = (b.wout - t.ox - (NV - 1) * L).min(L) as i32;
    let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    let yp = y.as_mut_ptr().add(b.y0 + t.r * b.wout + t.ox);
    for (k, a) in acc.iter().enumerate() {
        let yk = yp.add((t.k0 + k) * b.plane);
        let bias = b.bias.map(|bs| _mm256_set1_ps(bs[t.k0 + k]));
        for (v, &s) in a.iter().enumerate() {
            let s = match bias {
                Some(bv) => _mm256_add_ps(s, bv),
                None => s,
            };
            if v + 1 < NV || left == L as i32 {
                _mm256_storeu_ps(yk.add(v * L), s);
            } else {
                _mm256_maskstore_ps(yk.add(v * L), mask, s);
            }
        }
    }
}
