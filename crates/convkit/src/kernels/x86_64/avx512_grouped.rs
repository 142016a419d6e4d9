//! AVX-512 grouped direct band kernel for `f32` (see [`GroupBand`]): per output row, blocks of
//! up to 4 output channels × up to 4 zmm of columns (16 accumulators); every tap loads the
//! shifted input vectors once and multiplies them with one broadcast weight per channel. A
//! row's last columns take a zmm, or a ymm where at most 8 are left, stored through a mask.

use super::Tile;
use crate::kernels::grouped::{GroupBand, GROUP_KB, GROUP_SLACK};
use std::arch::x86_64::*;

/// Lanes of a zmm of `f32`.
const L: usize = 16;
const _: () = assert!(GROUP_SLACK >= L && GROUP_KB == 4);

/// `f32_grouped_avx512`: the band of [`GroupBand`] into `y`.
///
/// Safe to call: it checks that the CPU has AVX-512 F/BW/DQ/VL, FMA and AVX2, and that every
/// read (with [`GROUP_SLACK`] elements of whole-vector tail) and write lies in its slice
/// ([`GroupBand::check`]); it panics otherwise.
pub fn f32_grouped_avx512(b: &GroupBand<'_, f32>, y: &mut [f32]) {
    assert!(crate::isa::supported(crate::isa::Isa::Avx512), "the CPU lacks AVX-512");
    b.check(GROUP_SLACK, y.len());
    // SAFETY: the CPU has the features (checked above) and every access lies in `b.x`,
    // `b.w` and `y` (checked by `b.check`).
    unsafe { band(b, y) }
}

/// # Safety
/// AVX-512 F/BW/DQ/VL, FMA and AVX2 available; `b.check(GROUP_SLACK, y.len())` passed.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
unsafe fn band(b: &GroupBand<'_, f32>, y: &mut [f32]) {
    let taps = b.cg * b.kh * b.cols.len();
    for k0 in (0..b.kg).step_by(GROUP_KB) {
        let kb = GROUP_KB.min(b.kg - k0);
        let w = b.w.as_ptr().add(k0 * taps);
        for r in 0..b.rows {
            let mut ox = 0;
            while ox < b.wout {
                let t = Tile { b, w, k0, r, ox };
                let rem = b.wout - ox;
                if rem >= 4 * L {
                    match kb {
                        1 => tile::<1, 4, 0>(&t, y),
                        2 => tile::<2, 4, 0>(&t, y),
                        3 => tile::<3, 4, 0>(&t, y),
                        _ => tile::<4, 4, 0>(&t, y),
                    }
                    ox += 4 * L;
                    continue;
                }
                // The row's end: whole zmm, then at most 8 columns in a ymm or more in a
                // masked zmm.
                let tail = match rem % L {
                    0 => 0,
                    1..=8 => 1,
                    _ => 2,
                };
                macro_rules! ends {
                    ($kb:literal) => {
                        match (rem / L, tail) {
                            (0, 1) => tile::<$kb, 0, 1>(&t, y),
                            (0, _) => tile::<$kb, 0, 2>(&t, y),
                            (1, 0) => tile::<$kb, 1, 0>(&t, y),
                            (1, 1) => tile::<$kb, 1, 1>(&t, y),
                            (1, _) => tile::<$kb, 1, 2>(&t, y),
                            (2, 0) => tile::<$kb, 2, 0>(&t, y),
                            (2, 1) => tile::<$kb, 2, 1>(&t, y),
                            (2, _) => tile::<$kb, 2, 2>(&t, y),
                            (_, 0) => tile::<$kb, 3, 0>(&t, y),
                            (_, 1) => tile::<$kb, 3, 1>(&t, y),
                            _ => tile::<$kb, 3, 2>(&t, y),
                        }
                    };
                }
                match kb {
                    1 => ends!(1),
                    2 => ends!(2),
                    3 => ends!(3),
                    _ => ends!(4),
                }
                ox = b.wout;
            }
        }
    }
}

/// `KB` output channels × `NV` whole zmm of columns from `t.ox`, then the row's remaining
/// columns: none (`T = 0`), at most 8 in a ymm (`T = 1`) or in a zmm (`T = 2`), stored through
/// a mask. A ymm tail costs half the multiply-adds of a zmm one.
///
/// # Safety
/// As [`band`]; `t.w` points at a block of `KB` channels; `t.ox + NV·16 ≤ wout`, with
/// equality exactly when `T = 0`, and `wout − t.ox − NV·16 ≤ 8` when `T = 1`.
#[inline(always)]
unsafe fn tile<const KB: usize, const NV: usize, const T: u8>(t: &Tile<'_, '_>, y: &mut [f32]) {
    let b = t.b;
    let mut acc = [[_mm512_setzero_ps(); NV]; KB];
    let mut acc_z = [_mm512_setzero_ps(); KB];
    let mut acc_y = [_mm256_setzero_ps(); KB];
    let mut wp = t.w;
    let x = b.x.as_ptr().add(t.ox + t.r * b.sh * b.pitch);
    for ci in 0..b.cg {
        let xc = x.add(ci * b.chan);
        for ky in 0..b.kh {
            let xr = xc.add(ky * b.dh * b.pitch);
            for &c in b.cols {
                let xp = xr.add(c);
                // Whole vectors: lanes past the row's end read staged data or the slack.
                let xv: [__m512; NV] = std::array::from_fn(|v| _mm512_loadu_ps(xp.add(v * L)));
                let xz = if T == 2 { _mm512_loadu_ps(xp.add(NV * L)) } else { _mm512_setzero_ps() };
                let xy = if T == 1 { _mm256_loadu_ps(xp.add(NV * L)) } else { _mm256_setzero_ps() };
                for k in 0..KB {
                    let wv = _mm512_set1_ps(*wp.add(k));
                    for (s, &xx) in acc[k].iter_mut().zip(&xv) {
                        *s = _mm512_fmadd_ps(wv, xx, *s);
                    }
                    if T == 2 {
                        acc_z[k] = _mm512_fmadd_ps(wv, xz, acc_z[k]);
                    }
                    if T == 1 {
                        acc_y[k] = _mm256_fmadd_ps(_mm512_castps512_ps256(wv), xy, acc_y[k]);
                    }
                }
                wp = wp.add(KB);
            }
        }
    }
    let left = b.wout - t.ox - NV * L;
    let mask: u32 = if left >= 32 { !0 } else { (1u32 << left) - 1 };
    let yp = y.as_mut_ptr().add(b.y0 + t.r * b.wout + t.ox);
    for k in 0..KB {
        let yk = yp.add((t.k0 + k) * b.plane);
        let bias = b.bias.map(|bs| bs[t.k0 + k]);
        for (v, &s) in acc[k].iter().enumerate() {
            let s = match bias {
                Some(bv) => _mm512_add_ps(s, _mm512_set1_ps(bv)),
                None => s,
            };
            _mm512_storeu_ps(yk.add(v * L), s);
        }
        if T == 2 {
            let s = match bias {
                Some(bv) => _mm512_add_ps(acc_z[k], _mm512_set1_ps(bv)),
                None => acc_z[k],
            };
            _mm512_mask_storeu_ps(yk.add(NV * L), mask as __mmask16, s);
        }
        if T == 1 {
            let s = match bias {
                Some(bv) => _mm256_add_ps(acc_y[k], _mm256_set1_ps(bv)),
                None => acc_y[k],
            };
            _mm256_mask_storeu_ps(yk.add(NV * L), mask as __mmask8, s);
        }
    }
}
