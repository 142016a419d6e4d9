//! The portable interleave ([`generic::interleave`]) compiled with AVX2 and with AVX-512
//! enabled: the same additions, so the results equal the portable kernel's bit for bit, with
//! the 2-, 4- and 8-row bodies vectorized as shuffles 8 or 16 wide.

use crate::kernels::{generic, IlvPlace};
use std::arch::x86_64::{__m512, __m512i};

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

/// Lanes `lo..hi` (clamped to `0..16`) as a store mask.
fn lanes_mask(lo: isize, hi: isize) -> u16 {
    let (lo, hi) = (lo.clamp(0, 16), hi.clamp(0, 16));
    if hi <= lo {
        0
    } else {
        ((1u32 << hi) - (1u32 << lo)) as u16
    }
}

/// Permute indices that zip units of `w` values of `a` and `b`: the first 8 values of each
/// (`hi = false`) or the last 8.
fn zip_index(w: usize, hi: bool) -> [i32; 16] {
    std::array::from_fn(|f| {
        let (q, within) = (f / (2 * w), f % (2 * w));
        let half = if hi { 8 } else { 0 };
        if within < w {
            (half + q * w + within) as i32
        } else {
            (16 + half + q * w + within - w) as i32
        }
    })
}

/// Where the next 16 columns of an [`IlvPlace`] start: their first column's result row and
/// place in it.
pub(super) struct IlvCursor {
    ri: usize,
    c: usize,
}

impl IlvCursor {
    pub(super) fn new<T>(pl: &IlvPlace<T>) -> Self {
        IlvCursor { ri: pl.first / pl.width, c: pl.first % pl.width }
    }
}

/// Prefetch for writing the outputs the next 16 columns of a place's runs go to (before
/// their tiles are computed, so the lines are in cache when [`ilv_group`] stores).
#[inline]
pub(super) fn ilv_prefetch<const S: usize>(at: &IlvCursor, pl: &IlvPlace<f32>, yp: *mut f32) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_ET0};
    let row_len = (pl.step * pl.cols) as isize;
    for u in 0..pl.runs {
        let base = pl.at[u] + row_len * at.ri as isize + (S * at.c) as isize + pl.d;
        for l in 0..S as isize {
            // SAFETY: a prefetch reads nothing the program sees and never faults, whatever
            // the address (`wrapping_offset` computes it without assumptions).
            unsafe { _mm_prefetch::<_MM_HINT_ET0>(yp.wrapping_offset(base + 16 * l).cast::<i8>()) };
        }
    }
}

/// The permute indices of [`ilv_group`]'s rounds: zip units of 1, 2, 4, 8 (first and last
/// halves), built once per kernel call.
pub(super) type IlvZips = [(__m512i, __m512i); 4];

/// [`IlvZips`] in registers.
///
/// # Safety
/// AVX-512F is available.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2")]
pub(super) unsafe fn ilv_zips() -> IlvZips {
    use std::arch::x86_64::_mm512_loadu_si512;
    let idx = |w: usize, hi: bool| {
        let i = zip_index(w, hi);
        // SAFETY: `i` holds 16 i32.
        unsafe { _mm512_loadu_si512(i.as_ptr().cast()) }
    };
    [
        (idx(1, false), idx(1, true)),
        (idx(2, false), idx(2, true)),
        (idx(4, false), idx(4, true)),
        (idx(8, false), idx(8, true)),
    ]
}

/// Interleave the next `n ≤ 16` columns of a place's runs, held in `acc` (row `i` of the
/// block in `acc[i]`), into the output at `y`, and move the cursor past them.
///
/// # Safety
/// AVX-512 F/BW/DQ/VL are available; `y` starts a buffer in which every existing output row
/// the place reaches lies (see [`generic::ilv_check`]).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2")]
pub(super) unsafe fn ilv_group<const S: usize>(
    acc: &[__m512; 16],
    zips: &IlvZips,
    n: usize,
    at: &mut IlvCursor,
    pl: &IlvPlace<f32>,
    yp: *mut f32,
) {
    use std::arch::x86_64::*;
    let (s, cols, nrows, ni) = (S as isize, pl.cols as isize, pl.rows as isize, n as isize);
    let row_len = (pl.step * pl.cols) as isize;
    let (ri, c) = (at.ri, at.c);
    // Columns `split ..` lie in the next result row, at places from 0.
    let split = (pl.width - c).min(16) as isize;
    for u in 0..pl.runs {
        let b = _mm512_set1_ps(pl.bias[u]);
        let mut cur: [__m512; S] = std::array::from_fn(|r| _mm512_add_ps(acc[u * S + r], b));
        // Groups of `w` rows, each in `w` vectors (`cur[g·w + q]`: columns `16q/w ..` of rows
        // `g·w ..`, unit by unit); each round zips pairs of groups.
        let (mut w, mut round) = (1, 0);
        while w < S {
            let (lo, hi) = zips[round];
            let prev = cur;
            for gg in 0..S / (2 * w) {
                for q in 0..w {
                    let (a, cc) = (prev[2 * gg * w + q], prev[(2 * gg + 1) * w + q]);
                    cur[gg * 2 * w + 2 * q] = _mm512_permutex2var_ps(a, lo, cc);
                    cur[gg * 2 * w + 2 * q + 1] = _mm512_permutex2var_ps(a, hi, cc);
                }
            }
            w *= 2;
            round += 1;
        }
        // Vector v: outputs 16v .. 16v + 16 of the group (column 16v/S + f/S, phase f % S).
        let row_a = pl.row[u] + (pl.step * ri) as isize;
        let start_a = pl.at[u] + row_len * ri as isize;
        let base_a = start_a + s * c as isize + pl.d;
        let (row_b, start_b) = (row_a + pl.step as isize, start_a + row_len);
        let base_b = start_b + pl.d - s * split;
        let (ok_a, ok_b) = ((0..nrows).contains(&row_a), (0..nrows).contains(&row_b));
        if ok_a && split >= 16 && ni == 16 && base_a >= start_a && base_a + 16 * s <= start_a + cols {
            // The whole group inside one output row: plain stores.
            for (v, &vec) in cur.iter().enumerate() {
                // SAFETY: outputs base_a .. base_a + 16·S lie in an existing output row.
                unsafe { _mm512_storeu_ps(yp.offset(base_a + 16 * v as isize), vec) };
            }
            continue;
        }
        for (v, &vec) in cur.iter().enumerate() {
            let p0 = 16 * v as isize;
            let (a, at_b) = (base_a + p0, base_b + p0);
            // Outputs f of the vector: row A for columns below `split` (f < S·split), row B
            // above, each inside its row's `cols` and among the group's `n` columns.
            let ma = if ok_a {
                lanes_mask(start_a - a, (start_a + cols - a).min(s * split.min(ni) - p0))
            } else {
                0
            };
            let mb = if ok_b && split < ni {
                lanes_mask((start_b - at_b).max(s * split - p0), (start_b + cols - at_b).min(s * ni - p0))
            } else {
                0
            };
            for (m, at) in [(ma, a), (mb, at_b)] {
                // SAFETY: the lanes in `m` are outputs inside an existing output row, so inside
                // the buffer; masked-off lanes are not accessed.
                unsafe {
                    let p = yp.wrapping_offset(at);
                    if m == u16::MAX {
                        _mm512_storeu_ps(p, vec);
                    } else if m != 0 {
                        _mm512_mask_storeu_ps(p, m, vec);
                    }
                }
            }
        }
    }
    at.c += 16;
    if at.c >= pl.width {
        (at.c, at.ri) = (at.c - pl.width, at.ri + 1);
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
