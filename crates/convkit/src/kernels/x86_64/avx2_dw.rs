//! AVX2 + FMA depthwise kernels for `f32`: the band kernel (see [`DwPlane`]), several output
//! rows at once so each loaded input vector feeds every output row that reads it, with an
//! unrolled instance for 3×3 kernels at outer stride 1 or 2; the staging copy and stride-2
//! phase split that prepare its padded input; and the direct 3×3 band kernel (see
//! [`DwRows`]), which reads the unpadded input in place at strides 1 and 2.

use crate::kernels::generic::{self, DwPlane, DwRows};
use std::arch::x86_64::*;

/// `f32_dw_plane_avx2_fma`: all rows of `y` (`y.len() / wout`) of a depthwise band.
///
/// Safe to call: it checks that the CPU has AVX2 and FMA and that every element the band
/// reads lies in `p.x` ([`DwPlane::check`]); it panics otherwise.
pub fn f32_dw_plane_avx2_fma(p: &DwPlane<'_, f32>, y: &mut [f32]) {
    assert!(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"));
    if p.wout == 0 {
        return;
    }
    let rows = y.len() / p.wout;
    p.check(rows);
    let (kh, kw) = (p.kh, p.cols.len());
    // SAFETY: the CPU supports AVX2 and FMA and every read of the band lies in `p.x` (both
    // checked above); writes stay in the first `rows · wout` elements of `y`.
    unsafe {
        match (kh, kw, p.sh, p.dh) {
            (3, 3, 1, 1) if p.wout >= 8 => band3::<3, 1>(p, rows, y),
            (3, 3, 2, 1) if p.wout >= 8 => band3::<2, 2>(p, rows, y),
            _ => band(p, rows, y),
        }
    }
}

/// Output rows a column pass walks down each block column before moving right: with a
/// 4 KiB page per input row of a wide image, the window of a band (its rows plus the kernel's)
/// stays within the first-level data TLB for kernels up to about 40 taps.
const COLUMN_BAND: usize = 8;

/// Any kernel: rows in groups of four, then one at a time.
///
/// # Safety
/// AVX2 and FMA are available; `p.check(rows)` passed; `y` holds `rows · wout` elements.
#[target_feature(enable = "avx2,fma")]
unsafe fn band(p: &DwPlane<'_, f32>, rows: usize, y: &mut [f32]) {
    if (p.kh == 1 || p.cols.len() == 1) && p.wout >= 64 {
        // One-dimensional taps (a separable filter's column or row pass) over wide rows:
        // 64-wide blocks of one row, eight independent accumulators, so the multiply-adds of
        // long kernels do not wait on each other (sharing loads between rows saves little
        // when each input row feeds one tap per output). A column pass goes down each block
        // column, [`COLUMN_BAND`] rows at a time, so the input rows of the block's window stay
        // in L1 from one output row to the next.
        let blocks = p.wout.div_ceil(64);
        let at = |b: usize| (b * 64).min(p.wout - 64);
        if p.kh == 1 {
            for oy in 0..rows {
                for b in 0..blocks {
                    block::<1, 8>(p, oy, at(b), y);
                }
            }
        } else {
            for band in (0..rows).step_by(COLUMN_BAND) {
                for b in 0..blocks {
                    for oy in band..rows.min(band + COLUMN_BAND) {
                        block::<1, 8>(p, oy, at(b), y);
                    }
                }
            }
        }
        return;
    }
    let mut oy = 0;
    while oy + 4 <= rows {
        row_group::<4>(p, oy, y);
        oy += 4;
    }
    while oy < rows {
        row_group::<1>(p, oy, y);
        oy += 1;
    }
}

/// Output rows `oy..oy + R`: 16-wide column blocks (the last overlapping its neighbour, so
/// recomputed outputs get identical values), 8-wide for rows of 8 to 15, else one output at
/// a time in the same tap order.
///
/// # Safety
/// As [`band`], with `oy + R ≤ rows`.
#[target_feature(enable = "avx2,fma")]
unsafe fn row_group<const R: usize>(p: &DwPlane<'_, f32>, oy: usize, y: &mut [f32]) {
    let wout = p.wout;
    if wout < 8 {
        for r in oy..oy + R {
            for ox in 0..wout {
                y[r * wout + ox] = generic::dw_plane_one::<f32, true>(p, r, ox);
            }
        }
        return;
    }
    let step = if wout >= 16 { 16 } else { 8 };
    let mut ox = 0;
    loop {
        let at = ox.min(wout - step);
        if step == 16 {
            block::<R, 2>(p, oy, at, y);
        } else {
            block::<R, 1>(p, oy, at, y);
        }
        ox += step;
        if ox >= wout {
            break;
        }
    }
}

/// `R` rows × `8·V` outputs from `(oy, ox)`, `R·V` ymm accumulators. Input rows are visited
/// in order and each tap's loaded vectors feed every row that reads that input row, so each
/// output sums its taps in `(i, j)` order, as [`generic::dw_plane_one`] does.
///
/// # Safety
/// As [`row_group`], with `ox + 8·V ≤ wout`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn block<const R: usize, const V: usize>(p: &DwPlane<'_, f32>, oy: usize, ox: usize, y: &mut [f32]) {
    let mut acc = [[_mm256_setzero_ps(); V]; R];
    let first = p.base + oy * p.sh * p.pitch + ox;
    let span = (R - 1) * p.sh + (p.kh - 1) * p.dh + 1;
    for q in 0..span {
        input_row::<R, V>(p, first, q, &mut acc);
    }
    let bias = _mm256_set1_ps(p.bias);
    for (r, a) in acc.iter().enumerate() {
        let out = &mut y[(oy + r) * p.wout + ox..][..8 * V];
        for (v, a) in a.iter().enumerate() {
            // SAFETY: out holds 8·V elements, so out[8v..8v + 8] is in bounds.
            _mm256_storeu_ps(out.as_mut_ptr().add(8 * v), _mm256_add_ps(*a, bias));
        }
    }
}

/// Input row `q` of a block: load each tap's `V` vectors once and add them, weighted, into
/// every row `r` that reads this input row (kernel row `(q − r·sh) / dh`). Inlined into
/// [`block`], where the features are enabled.
///
/// # Safety
/// As [`block`], with `q < (R − 1)·sh + (kh − 1)·dh + 1`.
#[inline(always)]
unsafe fn input_row<const R: usize, const V: usize>(
    p: &DwPlane<'_, f32>,
    first: usize,
    q: usize,
    acc: &mut [[__m256; V]; R],
) {
    let (kh, kw, sh, dh) = (p.kh, p.cols.len(), p.sh, p.dh);
    let mut wrow = [usize::MAX; R];
    for (r, wr) in wrow.iter_mut().enumerate() {
        if let Some(d) = q.checked_sub(r * sh) {
            // Without dilation no division (this runs for every block and input row).
            let i = if dh == 1 { Some(d) } else { (d % dh == 0).then(|| d / dh) };
            if let Some(i) = i.filter(|&i| i < kh) {
                *wr = i * kw;
            }
        }
    }
    let (x, w, cols) = (p.x.as_ptr(), p.w.as_ptr(), p.cols.as_ptr());
    let row = first + q * p.pitch;
    for j in 0..kw {
        // SAFETY: j < kw = cols.len().
        let c = row + *cols.add(j);
        let mut xv = [_mm256_setzero_ps(); V];
        for (v, xv) in xv.iter_mut().enumerate() {
            // SAFETY: c + 8v + 8 ≤ base + ((oy + R − 1)·sh + (kh − 1)·dh)·pitch + cols[j]
            // + ox + 8·V ≤ base + ((rows − 1)·sh + (kh − 1)·dh)·pitch + max(cols) + wout
            // ≤ x.len() by `check` (q ≤ span − 1, ox + 8·V ≤ wout, oy + R ≤ rows).
            *xv = _mm256_loadu_ps(x.add(c + 8 * v));
        }
        for (a, &wr) in acc.iter_mut().zip(&wrow) {
            if wr == usize::MAX {
                continue;
            }
            // SAFETY: wr + j = i·kw + j < kh·kw = w.len() (checked by `check`).
            let wv = _mm256_broadcast_ss(&*w.add(wr + j));
            for (a, xv) in a.iter_mut().zip(&xv) {
                *a = _mm256_fmadd_ps(wv, *xv, *a);
            }
        }
    }
}

/// A 3×3 band with outer stride `SH` and dilation 1, at least 8 outputs wide: the nine
/// weights stay in registers, rows in groups of `G` (measured best: 3 at stride 1, 2 at
/// stride 2), 8-wide column blocks (the last overlapping its neighbour).
///
/// # Safety
/// As [`band`], with `p.kh = 3`, three columns, `p.sh = SH`, `p.dh = 1` and `p.wout ≥ 8`.
#[target_feature(enable = "avx2,fma")]
unsafe fn band3<const G: usize, const SH: usize>(p: &DwPlane<'_, f32>, rows: usize, y: &mut [f32]) {
    let mut wv = [_mm256_setzero_ps(); 9];
    for (v, &w) in wv.iter_mut().zip(p.w) {
        *v = _mm256_set1_ps(w);
    }
    let wout = p.wout;
    let mut oy = 0;
    while oy + G <= rows {
        let mut ox = 0;
        loop {
            block3::<G, SH>(p, &wv, oy, ox.min(wout - 8), y);
            ox += 8;
            if ox >= wout {
                break;
            }
        }
        oy += G;
    }
    while oy < rows {
        let mut ox = 0;
        loop {
            block3::<1, SH>(p, &wv, oy, ox.min(wout - 8), y);
            ox += 8;
            if ox >= wout {
                break;
            }
        }
        oy += 1;
    }
}

/// `R` rows × 8 outputs of a 3×3 band from `(oy, ox)`: each output is
/// `((bias + Σ_j row 0) + Σ_j row 1) + Σ_j row 2`, each sum over `j` in order, whatever the
/// row group or column block it falls in (input rows in order, each loaded vector feeding
/// every row that reads it).
///
/// # Safety
/// As [`band3`], with `oy + R ≤ rows` and `ox + 8 ≤ wout`.
#[inline(always)]
unsafe fn block3<const R: usize, const SH: usize>(
    p: &DwPlane<'_, f32>,
    wv: &[__m256; 9],
    oy: usize,
    ox: usize,
    y: &mut [f32],
) {
    // One partial sum per kernel row, so an output's taps form three short dependency
    // chains instead of one of nine; the bias starts the first, and they are added in order.
    let mut acc = [[_mm256_set1_ps(p.bias), _mm256_setzero_ps(), _mm256_setzero_ps()]; R];
    let first = p.base + oy * SH * p.pitch + ox;
    let (x, c) = (p.x.as_ptr(), [p.cols[0], p.cols[1], p.cols[2]]);
    macro_rules! steps {
        ($($q:literal)*) => {$(
            if $q < (R - 1) * SH + 3 {
                let row = first + $q * p.pitch;
                for (j, &cj) in c.iter().enumerate() {
                    // SAFETY: row + cj + 8 ≤ base + ((oy + R − 1)·SH + 2)·pitch + max(cols)
                    // + ox + 8 ≤ x.len() by `check` ($q < (R − 1)·SH + 3, ox + 8 ≤ wout,
                    // oy + R ≤ rows).
                    let xv = _mm256_loadu_ps(x.add(row + cj));
                    for (r, a) in acc.iter_mut().enumerate() {
                        if $q >= r * SH && $q - r * SH < 3 {
                            let i = $q - r * SH;
                            a[i] = _mm256_fmadd_ps(wv[i * 3 + j], xv, a[i]);
                        }
                    }
                }
            }
        )*};
    }
    const { assert!((R - 1) * SH + 3 <= 20, "unrolled steps cover 20 input rows") };
    steps!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19);
    for (r, a) in acc.iter().enumerate() {
        let out = &mut y[(oy + r) * p.wout + ox..][..8];
        // SAFETY: out holds 8 elements.
        _mm256_storeu_ps(out.as_mut_ptr(), _mm256_add_ps(_mm256_add_ps(a[0], a[1]), a[2]));
    }
}

/// `f32_dw_copy_avx2`: the staging copy `dst = src` in 8-wide moves (the last overlapping its
/// neighbour), without a library call for the short rows of a band.
pub fn f32_dw_copy_avx2(src: &[f32], dst: &mut [f32]) {
    assert!(is_x86_feature_detected!("avx2"));
    assert_eq!(src.len(), dst.len(), "copy lengths");
    // SAFETY: AVX2 is present and both slices hold `src.len()` elements (checked above).
    unsafe { copy(src, dst) }
}

/// # Safety
/// AVX2 is available and `src.len() = dst.len()`.
#[target_feature(enable = "avx2")]
unsafe fn copy(src: &[f32], dst: &mut [f32]) {
    let n = src.len();
    if n < 8 {
        dst.copy_from_slice(src);
        return;
    }
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    let mut i = 0;
    loop {
        let at = i.min(n - 8);
        // SAFETY: at + 8 ≤ n = src.len() = dst.len().
        _mm256_storeu_ps(d.add(at), _mm256_loadu_ps(s.add(at)));
        i += 8;
        if i >= n {
            break;
        }
    }
}

/// `f32_dw_split2_avx2`: the stride-2 phase split of [`generic::dw_split2`], 8 pairs per step.
pub fn f32_dw_split2_avx2(src: &[f32], ev: &mut [f32], od: &mut [f32]) {
    assert!(is_x86_feature_detected!("avx2"));
    assert!(ev.len() == od.len() && src.len() == 2 * ev.len(), "phase split lengths");
    // SAFETY: AVX2 is present and the lengths agree (checked above).
    unsafe { split2(src, ev, od) }
}

/// # Safety
/// AVX2 is available, `od.len() = ev.len()` and `src.len() = 2·ev.len()`.
#[target_feature(enable = "avx2")]
unsafe fn split2(src: &[f32], ev: &mut [f32], od: &mut [f32]) {
    let n = ev.len();
    let (s, e, o) = (src.as_ptr(), ev.as_mut_ptr(), od.as_mut_ptr());
    let mut k = 0;
    while k + 8 <= n {
        // SAFETY: 2k + 16 ≤ 2n = src.len() and k + 8 ≤ n = ev.len() = od.len().
        let (lo, hi) = (_mm256_loadu_ps(s.add(2 * k)), _mm256_loadu_ps(s.add(2 * k + 8)));
        // Within each 128-bit lane: [lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6]; then the middle
        // 64-bit quarters swap to put them in order.
        let even = _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(
            _mm256_shuffle_ps::<0x88>(lo, hi),
        )));
        let odd = _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(
            _mm256_shuffle_ps::<0xDD>(lo, hi),
        )));
        _mm256_storeu_ps(e.add(k), even);
        _mm256_storeu_ps(o.add(k), odd);
        k += 8;
    }
    for k in k..n {
        ev[k] = src[2 * k];
        od[k] = src[2 * k + 1];
    }
}

/// `f32_dw3_rows_avx2_fma`: all rows of `y` (`y.len() / wout`) of a 3×3 depthwise band read
/// straight from the unpadded input (see [`DwRows`]), without staging: 8-wide column blocks
/// (the last overlapping its neighbour), rows in groups (measured best: 4 at stride 1 and 2
/// at stride 2 on both axes; 3 at outer stride 1 with inner stride 2), the nine weights
/// broadcast once. Groups without padding rows address their rows from the first by the
/// pitch; the others through the row table. At inner stride 2 each input row's 17 columns
/// are loaded as four vectors and deinterleaved by in-lane shuffles into the three taps, with
/// outputs in the order `0 1 4 5 2 3 6 7`, put back in order once at the store. One
/// accumulator per output row (a single chain over the nine taps), so weights and
/// accumulators stay in registers. At inner stride 1 a block whose only outside column is
/// the one just before or after the row shifts the padding constant into a neighbouring tap
/// vector; other blocks reaching a border load with masks and put the padding constant in
/// the lanes outside the row.
///
/// Safe to call: it checks that the CPU has AVX2 and FMA and the band ([`DwRows::check`]);
/// it panics otherwise.
pub fn f32_dw3_rows_avx2_fma(p: &DwRows<'_, f32>, y: &mut [f32]) {
    assert!(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"));
    p.check(0);
    let rows = y.len() / p.wout;
    p.check(rows);
    // SAFETY: the CPU supports AVX2 and FMA; every row the band reads is `None` or lies in
    // `p.x`, strides are 1 or 2, `wout ≥ 8` and the columns fit `i32` (all checked above);
    // writes stay in the first `rows · wout` elements of `y`.
    unsafe {
        match (p.sh, p.sw) {
            (1, 1) => rows3::<4, 1, 1>(p, rows, y),
            (1, _) => rows3::<3, 1, 2>(p, rows, y),
            (_, 1) => rows3::<2, 2, 1>(p, rows, y),
            _ => rows3::<2, 2, 2>(p, rows, y),
        }
    }
}

/// `f32_dw3_rows_avx512`: [`f32_dw3_rows_avx2_fma`] compiled with AVX-512VL, whose 32 vector
/// registers hold twice the output rows per group (8 at stride 1 on both axes, 6 at inner
/// stride 2, 4 at outer stride 2): with one accumulator chain of nine dependent FMAs per
/// output row, four rows kept only half of Zen 4's FMA pipes busy. The same vectors, the
/// same sums in the same order: equal to the AVX2 kernel bit for bit.
///
/// Safe to call: it checks that the CPU has AVX-512 F/VL, AVX2 and FMA and the band
/// ([`DwRows::check`]); it panics otherwise.
pub fn f32_dw3_rows_avx512(p: &DwRows<'_, f32>, y: &mut [f32]) {
    assert!(
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
    );
    p.check(0);
    let rows = y.len() / p.wout;
    p.check(rows);
    // SAFETY: as in `f32_dw3_rows_avx2_fma` (the same checks), and the CPU has AVX-512 F/VL.
    unsafe {
        match (p.sh, p.sw) {
            (1, 1) => rows3_avx512::<8, 1, 1>(p, rows, y),
            (1, _) => rows3_avx512::<6, 1, 2>(p, rows, y),
            (_, 1) => rows3_avx512::<4, 2, 1>(p, rows, y),
            _ => rows3_avx512::<4, 2, 2>(p, rows, y),
        }
    }
}

/// [`rows3`] with AVX-512 F/VL enabled (the inlined body may use all 32 vector registers).
///
/// # Safety
/// As [`rows3`], and AVX-512 F/VL are available.
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn rows3_avx512<const G: usize, const SH: usize, const SW: usize>(
    p: &DwRows<'_, f32>,
    rows: usize,
    y: &mut [f32],
) {
    rows3_body::<G, SH, SW>(p, rows, y)
}

/// Rows in groups of `G`, then one at a time.
///
/// # Safety
/// AVX2 and FMA are available; `p.check(rows)` passed with `p.sh = SH`, `p.sw = SW`; `y`
/// holds `rows · wout` elements.
#[target_feature(enable = "avx2,fma")]
unsafe fn rows3<const G: usize, const SH: usize, const SW: usize>(
    p: &DwRows<'_, f32>,
    rows: usize,
    y: &mut [f32],
) {
    rows3_body::<G, SH, SW>(p, rows, y)
}

/// The body of [`rows3`] and [`rows3_avx512`], inlined into each (so compiled for its
/// features).
///
/// # Safety
/// As [`rows3`].
#[inline(always)]
unsafe fn rows3_body<const G: usize, const SH: usize, const SW: usize>(
    p: &DwRows<'_, f32>,
    rows: usize,
    y: &mut [f32],
) {
    let mut wv = [_mm256_setzero_ps(); 9];
    for (v, &w) in wv.iter_mut().zip(p.w) {
        *v = _mm256_set1_ps(w);
    }
    let mut oy = 0;
    while oy + G <= rows {
        rows3_group::<G, SH, SW>(p, &wv, oy, y);
        oy += G;
    }
    while oy < rows {
        rows3_group::<1, SH, SW>(p, &wv, oy, y);
        oy += 1;
    }
}

/// Output rows `oy..oy + R`, 8-wide column blocks; blocks that read only columns `0..win`
/// load directly; at inner stride 1, a block whose only outside column is the one just before
/// or just after the row derives that tap vector from its neighbour by a lane shift (see
/// [`EDGE_LEFT`], [`EDGE_RIGHT`]); other blocks load with masks. Where the group's input rows
/// are all consecutive rows of `x` (no padding rows), they are addressed from the first
/// without the table.
///
/// # Safety
/// As [`rows3`], with `oy + R ≤ rows`.
#[inline(always)]
unsafe fn rows3_group<const R: usize, const SH: usize, const SW: usize>(
    p: &DwRows<'_, f32>,
    wv: &[__m256; 9],
    oy: usize,
    y: &mut [f32],
) {
    let wout = p.wout;
    let rows = &p.rows[oy * SH..][..(R - 1) * SH + 3];
    let first = rows[0].filter(|&o0| rows.iter().enumerate().all(|(q, &r)| r == Some(o0 + q * p.win)));
    let mut ox = 0;
    loop {
        let at = ox.min(wout - 8);
        // The block reads columns c ..= c + 7·SW + 2, c = at·SW − pad.
        let c = (at * SW) as isize - p.pad as isize;
        let mode = if c >= 0 && (at + 7) * SW + 2 < p.win + p.pad {
            DIRECT
        } else if SW == 1 && c == -1 && p.win >= 9 {
            EDGE_LEFT
        } else if SW == 1 && c >= 0 && c as usize + 9 == p.win {
            EDGE_RIGHT
        } else {
            MASKED
        };
        macro_rules! go {
            ($m:expr) => {
                match first {
                    Some(o0) => block3_rows::<R, SH, SW, { $m }, true>(p, wv, oy, at, o0, y),
                    None => block3_rows::<R, SH, SW, { $m }, false>(p, wv, oy, at, 0, y),
                }
            };
        }
        match mode {
            DIRECT => go!(DIRECT),
            EDGE_LEFT => go!(EDGE_LEFT),
            EDGE_RIGHT => go!(EDGE_RIGHT),
            _ => go!(MASKED),
        }
        ox += 8;
        if ox >= wout {
            break;
        }
    }
}

/// Block load modes of [`block3_rows`]: every column inside the row, loaded directly.
const DIRECT: u8 = 0;
/// Inner stride 1, the block's first tap column is −1 and `win ≥ 9`: taps 1 and 2 load
/// directly, tap 0 is tap 1 shifted up one lane with the padding constant in lane 0.
const EDGE_LEFT: u8 = 1;
/// Inner stride 1, the block's first tap column `c ≥ 0` with `c + 9 = win`: taps 0 and 1
/// load directly, tap 2 is tap 1 shifted down one lane with the padding constant in lane 7.
const EDGE_RIGHT: u8 = 2;
/// Anything else: masked loads, the padding constant in the lanes outside the row.
const MASKED: u8 = 3;

/// The lanes of the eight columns from `c` that lie inside `0..win`.
///
/// # Safety
/// AVX2 is available; `c + 8` and `win` fit `i32`.
#[inline(always)]
unsafe fn inside8(c: isize, win: usize) -> __m256i {
    let idx = _mm256_add_epi32(_mm256_set1_epi32(c as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_and_si256(
        _mm256_cmpgt_epi32(idx, _mm256_set1_epi32(-1)),
        _mm256_cmpgt_epi32(_mm256_set1_epi32(win as i32), idx),
    )
}

/// Eight columns from `c` of the input row at `row` (`win` elements): loaded directly, or
/// under [`MASKED`], only the lanes of `inside` (those of [`inside8`]`(c, win)`) read and the
/// others `pv`.
///
/// # Safety
/// AVX2 is available; `row` points at `win` readable elements; unless `M` is [`MASKED`],
/// `0 ≤ c` and `c + 8 ≤ win`; under [`MASKED`], `inside = inside8(c, win)`.
#[inline(always)]
unsafe fn load8<const M: u8>(row: *const f32, c: isize, inside: __m256i, pv: __m256) -> __m256 {
    if M != MASKED {
        // SAFETY: 0 ≤ c and c + 8 ≤ win (caller).
        return _mm256_loadu_ps(row.offset(c));
    }
    // SAFETY: only lanes with 0 ≤ c + l < win are read (the masked load touches no other
    // lane), and those lie in the row; the pointer is formed with wrapping arithmetic.
    let v = _mm256_maskload_ps(row.wrapping_offset(c), inside);
    _mm256_blendv_ps(pv, v, _mm256_castsi256_ps(inside))
}

/// The column offsets (from a block's first tap column) of the vectors [`taps3`] loads.
const fn tap_loads(sw: usize) -> [isize; 4] {
    if sw == 1 {
        [0, 1, 2, 0]
    } else {
        [0, 8, 1, 9]
    }
}

/// The three tap vectors of input row `row` for eight outputs whose tap 0 reads column `c`:
/// at `SW = 1` columns `c + j ..`; at `SW = 2` columns `c + j, c + j + 2, …`, in the output
/// order `0 1 4 5 2 3 6 7` (the order of `_mm256_shuffle_ps` within lanes). Under
/// [`EDGE_LEFT`] and [`EDGE_RIGHT`] (`SW = 1`) one tap is the middle one shifted a lane, the
/// padding constant `pv` shifted in.
///
/// # Safety
/// As [`load8`] for the 17 columns `c ..= c + 16` at `SW = 2` (`c ..= c + 9` at `SW = 1`),
/// with `m[k] = inside8(c + tap_loads(SW)[k], win)` under [`MASKED`], every column inside the
/// row under [`DIRECT`], and the conditions of the edge modes under those.
#[inline(always)]
unsafe fn taps3<const SW: usize, const M: u8>(
    row: *const f32,
    c: isize,
    m: &[__m256i; 4],
    pv: __m256,
) -> [__m256; 3] {
    let o = const { tap_loads(SW) };
    let ld = |k: usize| load8::<M>(row, c + o[k], m[k], pv);
    if SW == 1 {
        return match M {
            EDGE_LEFT => {
                // SAFETY (loads): columns 0 ..= 8 lie in the row (win ≥ 9).
                let (t1, t2) = (load8::<DIRECT>(row, 0, m[0], pv), load8::<DIRECT>(row, 1, m[0], pv));
                let up = _mm256_permutevar8x32_ps(t1, _mm256_setr_epi32(0, 0, 1, 2, 3, 4, 5, 6));
                [_mm256_blend_ps::<0b0000_0001>(up, pv), t1, t2]
            }
            EDGE_RIGHT => {
                // SAFETY (loads): columns c ..= c + 8 = win − 1 lie in the row (c ≥ 0).
                let (t0, t1) = (load8::<DIRECT>(row, c, m[0], pv), load8::<DIRECT>(row, c + 1, m[0], pv));
                let down = _mm256_permutevar8x32_ps(t1, _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 7));
                [t0, t1, _mm256_blend_ps::<0b1000_0000>(down, pv)]
            }
            _ => [ld(0), ld(1), ld(2)],
        };
    }
    let (a, b, e, f) = (ld(0), ld(1), ld(2), ld(3));
    [_mm256_shuffle_ps::<0x88>(a, b), _mm256_shuffle_ps::<0xDD>(a, b), _mm256_shuffle_ps::<0xDD>(e, f)]
}

/// `R` rows × 8 outputs from `(oy, ox)`: each output is `bias + Σ_(i, j) w[i][j]·x`, one
/// fused multiply-add chain over the taps in `(i, j)` order, whatever the block, row group
/// or load mode; input rows in order, each row's taps feeding every output row that reads
/// it (one accumulator per output row, so the nine weights stay in registers).
///
/// # Safety
/// As [`rows3_group`], with `ox + 8 ≤ wout`, the load mode `M` as [`rows3_group`] chooses it
/// for this block, and with `A` only when the rows are `Some(o0 + q·win)`.
#[inline(always)]
unsafe fn block3_rows<const R: usize, const SH: usize, const SW: usize, const M: u8, const A: bool>(
    p: &DwRows<'_, f32>,
    wv: &[__m256; 9],
    oy: usize,
    ox: usize,
    o0: usize,
    y: &mut [f32],
) {
    let mut acc = [_mm256_set1_ps(p.bias); R];
    let pv = _mm256_set1_ps(p.padv);
    let c = (ox * SW) as isize - p.pad as isize;
    let mut m = [_mm256_setzero_si256(); 4];
    if M == MASKED {
        for (m, &o) in m.iter_mut().zip(&const { tap_loads(SW) }) {
            *m = inside8(c + o, p.win);
        }
    }
    const { assert!((R - 1) * SH + 3 <= 10, "unrolled steps cover 10 input rows") };
    let (x, rows) = (p.x.as_ptr(), &p.rows[oy * SH..][..(R - 1) * SH + 3]);
    macro_rules! steps {
        ($($q:literal)*) => {$(
            if $q < (R - 1) * SH + 3 {
                // SAFETY (both arms): the row lies in `p.x` (checked; with `A` it is
                // `rows[q]`), and the columns are as `taps3` needs (the block's `M`).
                let t = if A {
                    taps3::<SW, M>(x.add(o0 + $q * p.win), c, &m, pv)
                } else {
                    match rows[$q] {
                        Some(o) => taps3::<SW, M>(x.add(o), c, &m, pv),
                        None => [pv; 3],
                    }
                };
                for (j, t) in t.iter().enumerate() {
                    for (r, a) in acc.iter_mut().enumerate() {
                        if $q >= r * SH && $q - r * SH < 3 {
                            let i = $q - r * SH;
                            *a = _mm256_fmadd_ps(wv[i * 3 + j], *t, *a);
                        }
                    }
                }
            }
        )*};
    }
    steps!(0 1 2 3 4 5 6 7 8 9);
    let out = y.as_mut_ptr().add(oy * p.wout + ox);
    for (r, &a) in acc.iter().enumerate() {
        let mut v = a;
        if SW == 2 {
            // Quarters (0 1)(4 5)(2 3)(6 7) → (0 1)(2 3)(4 5)(6 7).
            v = _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(v)));
        }
        // SAFETY: (oy + r)·wout + ox + 8 ≤ rows·wout ≤ y.len() (oy + r < rows, ox + 8 ≤ wout).
        _mm256_storeu_ps(out.add(r * p.wout), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX-512VL build of the 3×3 rows kernel (taller row groups) equals the AVX2 one bit
    /// for bit on random values: every stride, padding rows, both borders, widths around the
    /// 8-wide blocks, heights around the row groups.
    #[test]
    fn dw3_rows_avx512_equals_avx2_bit_for_bit() {
        if !(is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl")) {
            eprintln!("skipped: no AVX-512 F/VL on this CPU");
            return;
        }
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let mut runs = 0;
        for (sh, sw) in [(1, 1), (1, 2), (2, 1), (2, 2)] {
            for win in [9usize, 16, 17, 23, 56] {
                for hin in [1usize, 3, 8, 11, 19, 30] {
                    for pad in [0usize, 1] {
                        let wout = (win + 2 * pad - 3) / sw + 1;
                        if wout < 8 {
                            continue;
                        }
                        // Padded rows: `pad` rows of padding, the input rows, `pad` more.
                        let rows: Vec<Option<usize>> = (0..hin + 2 * pad)
                            .map(|r| (r >= pad && r < pad + hin).then(|| (r - pad) * win))
                            .collect();
                        if rows.len() < 3 {
                            continue;
                        }
                        let hout = (rows.len() - 3) / sh + 1;
                        let x: Vec<f32> = (0..hin * win).map(|_| rnd()).collect();
                        let w: Vec<f32> = (0..9).map(|_| rnd()).collect();
                        let p = DwRows {
                            x: &x,
                            rows: &rows,
                            win,
                            pad,
                            sh,
                            sw,
                            w: &w,
                            bias: rnd(),
                            padv: rnd(),
                            wout,
                        };
                        let (mut a, mut b) = (vec![0.0f32; hout * wout], vec![1.0f32; hout * wout]);
                        f32_dw3_rows_avx2_fma(&p, &mut a);
                        f32_dw3_rows_avx512(&p, &mut b);
                        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&a), bits(&b), "stride {sh}×{sw}, {hin}×{win}, pad {pad}");
                        runs += 1;
                    }
                }
            }
        }
        assert!(runs > 150, "{runs} runs");
    }
}
