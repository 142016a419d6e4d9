//! AVX2 + FMA kernels for `f32`: 6×16 GEMM tiles (12 ymm accumulators), packing copies and
//! transposes, the FMA probe and the depthwise row kernel.

/// Rows of this level's GEMM tile.
pub(super) const MR: usize = 6;
/// Columns of this level's GEMM tile (two ymm registers).
pub(super) const NR: usize = 16;

use crate::kernels::generic::{self, DwRow};
use crate::kernels::{TileDst, MAX_MR};
use std::arch::x86_64::*;

/// `f32_gemm_6x16_avx2_fma`: 6×16 tiles, 12 ymm accumulators, one broadcast per row; one
/// tile per column panel.
///
/// Safe to call: it checks that the CPU has AVX2 and FMA (once, cached by std), that the
/// panels hold `kc` groups and that every destination row holds `panels·NR` elements; it
/// panics otherwise, which callers rule out by construction.
pub fn f32_gemm_6x16_avx2_fma(
    kc: usize,
    a: &[f32],
    b: &[f32],
    panels: (usize, usize),
    c: &mut TileDst<'_, f32>,
) {
    packed_tiles(kc, a, b, panels, c, false)
}

/// `f32_gemm_6x8_avx2_fma`: the first 8 columns of [`f32_gemm_6x16_avx2_fma`]'s tiles, for a
/// partial last panel of at most 8 columns (the other 8 columns of the rows are left as they
/// are). The same sums in the same order, at two thirds of the full tile's cost.
pub fn f32_gemm_6x8_avx2_fma(
    kc: usize,
    a: &[f32],
    b: &[f32],
    panels: (usize, usize),
    c: &mut TileDst<'_, f32>,
) {
    packed_tiles(kc, a, b, panels, c, true)
}

/// The checks and the loop over panels of the packed tile kernels; `narrow`: the first 8
/// columns only.
fn packed_tiles(
    kc: usize,
    a: &[f32],
    b: &[f32],
    (panels, b_step): (usize, usize),
    c: &mut TileDst<'_, f32>,
    narrow: bool,
) {
    assert!(a.len() >= kc * MR, "packed weights shorter than kc");
    assert!(panels == 0 || b.len() >= (panels - 1) * b_step + kc * NR, "packed panels shorter than kc");
    let rows = row_ptrs(c, panels * NR);
    assert!(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"));
    let (a, b, acc, bias) = (a.as_ptr(), b.as_ptr(), c.accumulate, c.bias.as_ref());
    let panels = (panels, b_step);
    // SAFETY: the CPU supports AVX2 and FMA (checked above); `a` holds at least kc·MR elements
    // and `b` at least kc·NR from q·b_step for every q < panels (checked above); every row
    // pointer starts panels·NR writable elements (`row_ptrs`), so row + q·NR starts NR of
    // them, borrowed mutably through `c` for the whole call; fewer rows or columns touch a
    // subset of the same memory.
    unsafe {
        match (narrow, c.live) {
            (true, _) => kernel_narrow(kc, a, b, panels, &rows, acc, bias),
            (false, 0..=2) => kernel::<2>(kc, a, b, panels, &rows, acc, bias),
            (false, 3..=4) => kernel::<4>(kc, a, b, panels, &rows, acc, bias),
            (false, 5) => kernel::<5>(kc, a, b, panels, &rows, acc, bias),
            (false, _) => kernel::<MR>(kc, a, b, panels, &rows, acc, bias),
        }
    }
}

/// The destination rows' pointers, after checking each holds `len` elements.
fn row_ptrs(c: &mut TileDst<'_, f32>, len: usize) -> [*mut f32; MR] {
    std::array::from_fn(|i| {
        assert!(c.rows[i].len() >= len, "tile row shorter than the tiles");
        c.rows[i].as_mut_ptr()
    })
}

/// The narrow tiles of `panels.0` panels (`b` advancing by `panels.1`, the rows by `NR`).
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_narrow(
    kc: usize,
    a: *const f32,
    b: *const f32,
    (panels, b_step): (usize, usize),
    rows: &[*mut f32; MR],
    accumulate: bool,
    bias: Option<&[f32; MAX_MR]>,
) {
    for q in 0..panels {
        let rows: [*mut f32; MR] = std::array::from_fn(|i| rows[i].add(q * NR));
        let mut c = [_mm256_setzero_ps(); MR];
        if accumulate {
            for (ci, &row) in c.iter_mut().zip(&rows) {
                // SAFETY: the row holds at least 8 elements (caller's contract).
                *ci = _mm256_loadu_ps(row);
            }
        }
        let (mut ap, mut bp) = (a, b.add(q * b_step));
        for _ in 0..kc {
            // SAFETY: p < kc, so bp..bp+8 and ap..ap+MR lie inside the panels (caller's check).
            let b0 = _mm256_loadu_ps(bp);
            for (i, ci) in c.iter_mut().enumerate() {
                *ci = _mm256_fmadd_ps(_mm256_broadcast_ss(&*ap.add(i)), b0, *ci);
            }
            ap = ap.add(MR);
            bp = bp.add(NR);
        }
        for (i, (&ci, &row)) in c.iter().zip(&rows).enumerate() {
            let v = match bias {
                Some(b) => _mm256_add_ps(ci, _mm256_set1_ps(b[i])),
                None => ci,
            };
            // SAFETY: the row holds at least 8 elements (caller's contract).
            _mm256_storeu_ps(row, v);
        }
    }
}

/// Load the accumulators of `ROWS` destination rows (or zero them).
#[target_feature(enable = "avx2,fma")]
unsafe fn load_tile<const ROWS: usize>(rows: &[*mut f32; MR], accumulate: bool) -> [[__m256; 2]; ROWS] {
    let mut c = [[_mm256_setzero_ps(); 2]; ROWS];
    if accumulate {
        for i in 0..ROWS {
            // SAFETY: row i holds NR = 16 elements (caller's contract).
            c[i] = [_mm256_loadu_ps(rows[i]), _mm256_loadu_ps(rows[i].add(8))];
        }
    }
    c
}

/// Add the bias (if any) and store `ROWS` rows of accumulators.
#[target_feature(enable = "avx2,fma")]
unsafe fn store_tile<const ROWS: usize>(
    c: [[__m256; 2]; ROWS],
    rows: &[*mut f32; MR],
    bias: Option<&[f32; MAX_MR]>,
) {
    for i in 0..ROWS {
        let [mut lo, mut hi] = c[i];
        if let Some(b) = bias {
            let bv = _mm256_set1_ps(b[i]);
            lo = _mm256_add_ps(lo, bv);
            hi = _mm256_add_ps(hi, bv);
        }
        // SAFETY: row i holds NR = 16 elements (caller's contract).
        _mm256_storeu_ps(rows[i], lo);
        _mm256_storeu_ps(rows[i].add(8), hi);
    }
}

/// The `ROWS`-row tiles of `panels.0` panels (`b` advancing by `panels.1`, the rows by `NR`).
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel<const ROWS: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    (panels, b_step): (usize, usize),
    rows: &[*mut f32; MR],
    accumulate: bool,
    bias: Option<&[f32; MAX_MR]>,
) {
    const { assert!(ROWS <= MR) };
    for q in 0..panels {
        let rows: [*mut f32; MR] = std::array::from_fn(|i| rows[i].add(q * NR));
        let mut c = load_tile::<ROWS>(&rows, accumulate);
        let (mut ap, mut bp) = (a, b.add(q * b_step));
        // One reduction step: p < kc, so bp..bp+NR and ap..ap+MR lie inside the panels.
        macro_rules! step {
            () => {
                let b0 = _mm256_loadu_ps(bp);
                let b1 = _mm256_loadu_ps(bp.add(8));
                for (i, ci) in c.iter_mut().enumerate() {
                    let av = _mm256_broadcast_ss(&*ap.add(i));
                    ci[0] = _mm256_fmadd_ps(av, b0, ci[0]);
                    ci[1] = _mm256_fmadd_ps(av, b1, ci[1]);
                }
                ap = ap.add(MR);
                bp = bp.add(NR);
            };
        }
        // SAFETY (the steps): kc steps in all, each inside the panel (caller's check).
        for _ in 0..kc / 4 {
            step!();
            step!();
            step!();
            step!();
        }
        for _ in 0..kc % 4 {
            step!();
        }
        store_tile::<ROWS>(c, &rows, bias);
    }
}

/// `f32_gemm_6x16_indirect_avx2_fma`: [`f32_gemm_6x16_avx2_fma`] reading each row of `B` in
/// place at `src[base + offs[p]..]` (an indirect convolution: no packed patch panel).
pub fn f32_gemm_6x16_indirect_avx2_fma(
    kc: usize,
    a: &[f32],
    src: &[f32],
    base: (usize, usize),
    offs: &[usize],
    c: &mut TileDst<'_, f32>,
) {
    indirect::<MR>(kc, a, src, base, offs, c)
}

/// `f32_gemm_4x16_indirect_avx2_fma`: the indirect tile for at most 4 weight rows (small
/// groups): rows 4 and 5 of the destination are left as they are.
pub fn f32_gemm_4x16_indirect_avx2_fma(
    kc: usize,
    a: &[f32],
    src: &[f32],
    base: (usize, usize),
    offs: &[usize],
    c: &mut TileDst<'_, f32>,
) {
    indirect::<4>(kc, a, src, base, offs, c)
}

fn indirect<const ROWS: usize>(
    kc: usize,
    a: &[f32],
    src: &[f32],
    (base, panels): (usize, usize),
    offs: &[usize],
    c: &mut TileDst<'_, f32>,
) {
    assert!(a.len() >= kc * MR && offs.len() >= kc, "packed weights or offsets shorter than kc");
    let rows = row_ptrs(c, panels * NR);
    assert!(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"));
    for q in 0..panels {
        // Every row must end inside `src`: base + q·NR + offs[p] + NR ≤ src.len(), checked
        // per row by the kernel against this limit.
        let start = base + q * NR;
        let limit = src.len().checked_sub(NR).and_then(|l| l.checked_sub(start));
        let Some(limit) = limit else { panic!("indirect rows lie outside the source") };
        let at: [*mut f32; MR] = std::array::from_fn(|i| rows[i].wrapping_add(q * NR));
        // SAFETY: the CPU supports AVX2 and FMA; `a` holds kc·MR elements and `offs` kc
        // (checked above); start ≤ src.len() − NR (limit exists); the kernel reads row p only
        // after checking offs[p] ≤ limit, so the row ends at or before src.len(); every
        // destination row holds panels·NR elements (`row_ptrs`), so `at` starts NR of them,
        // and ROWS ≤ MR.
        unsafe {
            kernel_indirect::<ROWS>(
                kc,
                a.as_ptr(),
                src.as_ptr().add(start),
                offs,
                limit,
                &at,
                c.accumulate,
                c.bias.as_ref(),
            )
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_indirect<const ROWS: usize>(
    kc: usize,
    a: *const f32,
    src: *const f32,
    offs: &[usize],
    limit: usize,
    rows: &[*mut f32; MR],
    accumulate: bool,
    bias: Option<&[f32; MAX_MR]>,
) {
    const { assert!(ROWS <= MR) };
    let mut c = load_tile::<ROWS>(rows, accumulate);
    let mut ap = a;
    for &o in &offs[..kc] {
        assert!(o <= limit, "indirect row outside the source");
        // SAFETY: o ≤ limit, so src + o .. + NR lies inside the source; ap .. ap + MR lies
        // inside the packed weights (p < kc, caller's check).
        let bp = src.add(o);
        let b0 = _mm256_loadu_ps(bp);
        let b1 = _mm256_loadu_ps(bp.add(8));
        for (i, ci) in c.iter_mut().enumerate() {
            let av = _mm256_broadcast_ss(&*ap.add(i));
            ci[0] = _mm256_fmadd_ps(av, b0, ci[0]);
            ci[1] = _mm256_fmadd_ps(av, b1, ci[1]);
        }
        ap = ap.add(MR);
    }
    store_tile::<ROWS>(c, rows, bias);
}

/// FMA throughput probe: `iters` rounds of 12 independent 8-wide FMA chains (no memory
/// traffic), returning a value that depends on every chain so nothing is optimised away.
/// Each round is 12·8·2 = 192 FLOP ([`FMA_PEAK_FLOP_AVX2`]).
pub const FMA_PEAK_FLOP_AVX2: f64 = 192.0;

/// See [`FMA_PEAK_FLOP_AVX2`].
pub fn f32_fma_peak_avx2_fma(iters: u64) -> f32 {
    assert!(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"));
    // SAFETY: the CPU supports AVX2 and FMA (checked above); no memory is touched.
    unsafe { fma_peak(iters) }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn fma_peak(iters: u64) -> f32 {
    let m = _mm256_set1_ps(0.999_999);
    let a = _mm256_set1_ps(1e-7);
    let mut acc = [_mm256_set1_ps(1.0); 12];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, m, a);
        }
    }
    let mut s = _mm256_setzero_ps();
    for v in acc {
        s = _mm256_add_ps(s, v);
    }
    let mut out = [0f32; 8];
    _mm256_storeu_ps(out.as_mut_ptr(), s);
    out.iter().sum()
}

/// `f32_dw_row_avx2_fma`: the depthwise row body compiled for AVX2 with fused multiply-add.
pub fn f32_dw_row_avx2_fma(r: &DwRow<'_, f32>, y: &mut [f32]) {
    assert!(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"));
    // SAFETY: the CPU supports AVX2 and FMA (checked above); the body is safe Rust.
    unsafe { dw_row(r, y) }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn dw_row(r: &DwRow<'_, f32>, y: &mut [f32]) {
    let (lo, hi) = (r.lo.min(y.len()), r.hi.min(y.len()).max(r.lo.min(y.len())));
    if r.s > 2 || hi - lo < 8 {
        return generic::dw_row_body::<f32, true>(r, y);
    }
    for ox in 0..lo {
        generic::dw_one::<f32, true>(r, ox, y);
    }
    match hi - lo {
        n if n >= 32 => dw_interior::<4>(r, lo, hi, y),
        n if n >= 16 => dw_interior::<2>(r, lo, hi, y),
        _ => dw_interior::<1>(r, lo, hi, y),
    }
    for ox in hi..y.len() {
        generic::dw_one::<f32, true>(r, ox, y);
    }
}

/// Interior outputs in blocks of `8·V`, the last block overlapping its neighbour.
#[target_feature(enable = "avx2,fma")]
unsafe fn dw_interior<const V: usize>(r: &DwRow<'_, f32>, lo: usize, hi: usize, y: &mut [f32]) {
    let b = 8 * V;
    let mut ox = lo;
    while ox + b <= hi {
        dw_block::<V>(r, ox, y);
        ox += b;
    }
    if ox < hi {
        dw_block::<V>(r, hi - b, y);
    }
}

/// `8·V` consecutive interior outputs (stride 1 or 2), `V` ymm accumulators across all taps.
#[target_feature(enable = "avx2,fma")]
unsafe fn dw_block<const V: usize>(r: &DwRow<'_, f32>, ox: usize, y: &mut [f32]) {
    // Stride 1 uses a second accumulator set for odd taps, so 2·V independent FMA chains are
    // in flight; the two are added at the end.
    let mut acc = [_mm256_setzero_ps(); V];
    let mut odd = [_mm256_setzero_ps(); V];
    let pad = _mm256_set1_ps(r.padv);
    for (wrow, row) in r.w.chunks_exact(r.kl).zip(r.rows) {
        match row {
            Some(row) if r.s == 1 => {
                // Stride 1: every tap of this kernel row reads 8·V consecutive elements from
                // `start + tl·d`; one bounds check covers them all.
                let start = r.cbase + row + ox - r.pb;
                let end = start + (r.kl - 1) * r.d + 8 * V;
                let xs = &r.x[start..end];
                let mut tl = 0;
                while tl + 1 < r.kl {
                    let (w0, w1) = (_mm256_set1_ps(wrow[tl]), _mm256_set1_ps(wrow[tl + 1]));
                    // SAFETY: tl + 1 < kl, so (tl + 1)·d + 8·V ≤ (kl − 1)·d + 8·V = xs.len().
                    let (p0, p1) = (xs.as_ptr().add(tl * r.d), xs.as_ptr().add((tl + 1) * r.d));
                    for j in 0..V {
                        // SAFETY: 8j + 8 ≤ 8·V: inside the run checked above.
                        acc[j] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(p0.add(8 * j)), acc[j]);
                        odd[j] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(p1.add(8 * j)), odd[j]);
                    }
                    tl += 2;
                }
                if tl < r.kl {
                    let wv = _mm256_set1_ps(wrow[tl]);
                    // SAFETY: tl < kl, as above.
                    let p = xs.as_ptr().add(tl * r.d);
                    for (j, a) in acc.iter_mut().enumerate() {
                        // SAFETY: 8j + 8 ≤ 8·V: inside the run checked above.
                        *a = _mm256_fmadd_ps(wv, _mm256_loadu_ps(p.add(8 * j)), *a);
                    }
                }
            }
            Some(row) => {
                for (tl, &wv) in wrow.iter().enumerate() {
                    let base = r.cbase + row + ox * r.s + tl * r.d - r.pb;
                    let wv = _mm256_set1_ps(wv);
                    if r.s == 1 {
                        let xs = &r.x[base..base + 8 * V];
                        for (j, a) in acc.iter_mut().enumerate() {
                            // SAFETY: xs holds 8·V elements, so xs[8j..8j+8] is in bounds.
                            *a = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xs.as_ptr().add(8 * j)), *a);
                        }
                    } else if base + 16 * V <= r.x.len() {
                        // Stride 2: load 16, keep the even lanes (the last odd one may lie
                        // past the row, but inside `x`, and is discarded).
                        let xs = &r.x[base..base + 16 * V];
                        for (j, a) in acc.iter_mut().enumerate() {
                            // SAFETY: xs holds 16·V elements, so xs[16j..16j+16] is in bounds.
                            let lo = _mm256_loadu_ps(xs.as_ptr().add(16 * j));
                            let hi = _mm256_loadu_ps(xs.as_ptr().add(16 * j + 8));
                            let even = _mm256_shuffle_ps::<0x88>(lo, hi);
                            let even =
                                _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(even)));
                            *a = _mm256_fmadd_ps(wv, even, *a);
                        }
                    } else {
                        let mut lanes = [0f32; 8];
                        for (j, a) in acc.iter_mut().enumerate() {
                            for (i, l) in lanes.iter_mut().enumerate() {
                                *l = r.x[base + 2 * (8 * j + i)];
                            }
                            *a = _mm256_fmadd_ps(wv, _mm256_loadu_ps(lanes.as_ptr()), *a);
                        }
                    }
                }
            }
            None => {
                for &wv in wrow {
                    let wv = _mm256_set1_ps(wv);
                    for a in acc.iter_mut() {
                        *a = _mm256_fmadd_ps(wv, pad, *a);
                    }
                }
            }
        }
    }
    let bias = _mm256_set1_ps(r.bias);
    let out = &mut y[ox..ox + 8 * V];
    for (j, (a, o)) in acc.iter().zip(&odd).enumerate() {
        // SAFETY: out holds 8·V elements, so out[8j..8j+8] is in bounds.
        _mm256_storeu_ps(out.as_mut_ptr().add(8 * j), _mm256_add_ps(_mm256_add_ps(*a, *o), bias));
    }
}

/// `f32_copy_panel_avx2`: the panel copy of [`crate::kernels::PanelCopy`] with two 8-wide
/// moves per run and row.
pub fn f32_copy_panel_avx2(src: &[f32], rows: &[usize], runs: &[(usize, usize)], dst: &mut [f32]) {
    assert!(is_x86_feature_detected!("avx2"));
    let max_j = runs.iter().map(|r| r.0).max().unwrap_or(0);
    assert!(rows.len().saturating_sub(1) * NR + max_j + NR <= dst.len(), "panel copy writes past the panel");
    // SAFETY: AVX2 is present and every write dst[r·NR + j0 .. + NR] ends at or before
    // (rows.len()−1)·NR + max_j + NR ≤ dst.len() (both checked above); `copy_panel` checks
    // each read against src.len().
    unsafe { copy_panel(src, rows, runs, dst.as_mut_ptr()) }
}

#[target_feature(enable = "avx2")]
unsafe fn copy_panel(src: &[f32], rows: &[usize], runs: &[(usize, usize)], dst: *mut f32) {
    const _: () = assert!(NR == 16);
    let copy = |r: usize, from: usize, j0: usize| {
        assert!(from.checked_add(NR).is_some_and(|end| end <= src.len()), "panel copy reads past the source");
        // SAFETY: src[from .. from + NR] is in bounds (checked just above); the write is in
        // bounds by the caller's check.
        unsafe {
            let p = src.as_ptr().add(from);
            let q = dst.add(r * NR + j0);
            let (lo, hi) = (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)));
            _mm256_storeu_ps(q, lo);
            _mm256_storeu_ps(q.add(8), hi);
        }
    };
    if let [(j0, s)] = runs {
        for (r, &ro) in rows.iter().enumerate() {
            copy(r, ro + s, *j0);
        }
    } else {
        for (r, &ro) in rows.iter().enumerate() {
            for &(j0, s) in runs {
                copy(r, ro + s, j0);
            }
        }
    }
}

/// `f32_transpose_panel_avx2`: [`crate::kernels::PanelTranspose`] by 8×8 register
/// transposes (8 positions of 8 runs at a time), the last `len % 8` positions one by one.
///
/// Safe to call: it checks that the CPU has AVX2 and that every run and the destination lie
/// inside their slices; it panics otherwise.
pub fn f32_transpose_panel_avx2(src: &[f32], rows: &[usize], len: usize, dst: &mut [f32]) {
    assert!(is_x86_feature_detected!("avx2"));
    let rows: &[usize; NR] = rows.try_into().expect("one run per panel column");
    assert!(rows.iter().all(|&r| r.checked_add(len).is_some_and(|e| e <= src.len())), "run outside src");
    assert!(len.checked_mul(NR).is_some_and(|n| n <= dst.len()), "dst shorter than len·NR");
    // SAFETY: AVX2 is available (checked above); every load reads src[rows[j] + p..][..8] with
    // p + 8 ≤ len, inside src (checked above); every store writes dst[(p + i)·NR + 8h..][..8]
    // with p + i < len and 8h + 8 ≤ NR, inside dst (checked above).
    unsafe { transpose_panel(src.as_ptr(), rows, len, dst.as_mut_ptr()) }
}

#[target_feature(enable = "avx2")]
unsafe fn transpose_panel(src: *const f32, rows: &[usize; NR], len: usize, dst: *mut f32) {
    let mut p = 0;
    while p + 8 <= len {
        for h in 0..NR / 8 {
            let r: [__m256; 8] = std::array::from_fn(|j| _mm256_loadu_ps(src.add(rows[h * 8 + j] + p)));
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let o = [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ];
            for (i, v) in o.iter().enumerate() {
                _mm256_storeu_ps(dst.add((p + i) * NR + h * 8), *v);
            }
        }
        p += 8;
    }
    for p in p..len {
        for (j, &r) in rows.iter().enumerate() {
            *dst.add(p * NR + j) = *src.add(r + p);
        }
    }
}

/// `f32_wino1_f2_avx2`: the fused F(2, 2) kernel ([`crate::kernels::winograd::Wino1F2Fn`])
/// for AVX2: per panel, 4 rows × 3 products × 8 tiles at a time (12 ymm accumulators), each
/// `V` vector loaded once for the 4 rows; the even and odd outputs are interleaved by unpacks
/// and lane permutes and stored as two vectors. The same sums in the same order as the
/// AVX-512 kernel.
///
/// Safe to call: it checks that the CPU has AVX2 and FMA, that `u` holds `phases·24`
/// elements, `v` `panels·phases·48`, that there are at most 8 rows of at least `panels·32`
/// elements and a bias per row; it panics otherwise.
pub fn f32_wino1_f2_avx2(
    phases: usize,
    u: &[f32],
    v: &[f32],
    panels: usize,
    rows: &mut [&mut [f32]],
    bias: Option<&[f32]>,
) {
    assert!(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"));
    let (ptrs, live, b) = super::wino1_f2_args(phases, (u, v), panels, rows, bias);
    // SAFETY: AVX2 and FMA are available (checked above); `u` holds phases·24 elements and `v`
    // panels·phases·48 (checked by `wino1_f2_args`); the first `live` pointers start `panels·32`
    // writable elements of distinct rows borrowed mutably for the whole call, and only those are
    // written.
    unsafe { wino1_f2(phases, u.as_ptr(), v.as_ptr(), panels, &ptrs, live, &b, bias.is_some()) }
}

/// See [`f32_wino1_f2_avx2`].
///
/// # Safety
/// AVX2 and FMA are available; `u` holds `phases·24` elements, `v` `panels·phases·48`; the
/// first `live ≤ 8` pointers start `panels·32` writable elements each.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn wino1_f2(
    phases: usize,
    u: *const f32,
    v: *const f32,
    panels: usize,
    rows: &[*mut f32; crate::kernels::winograd::F2_ROWS],
    live: usize,
    bias: &[f32; crate::kernels::winograd::F2_ROWS],
    with_bias: bool,
) {
    use crate::kernels::winograd::{F2_ROWS, F2_U, F2_V, WL};
    const G: usize = 2;
    const H: usize = WL / 8;
    for q in 0..panels {
        let vq = v.add(q * phases * F2_V);
        for g in (0..live).step_by(G) {
            let mut acc = [[[_mm256_setzero_ps(); 3]; H]; G];
            for p in 0..phases {
                for x in 0..3 {
                    // SAFETY: p < phases and q < panels: inside `v` and `u` (caller's
                    // contract); g + G ≤ F2_ROWS.
                    let vv: [__m256; H] =
                        std::array::from_fn(|h| _mm256_loadu_ps(vq.add(p * F2_V + x * WL + 8 * h)));
                    let up = u.add(p * F2_U + x * F2_ROWS + g);
                    for (i, acc) in acc.iter_mut().enumerate() {
                        let w = _mm256_broadcast_ss(&*up.add(i));
                        for (h, acc) in acc.iter_mut().enumerate() {
                            acc[x] = _mm256_fmadd_ps(w, vv[h], acc[x]);
                        }
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate().take(live - g) {
                for (h, acc) in acc.iter().enumerate() {
                    let mut even = _mm256_add_ps(acc[0], acc[1]);
                    let mut odd = _mm256_add_ps(acc[1], acc[2]);
                    if with_bias {
                        let b = _mm256_set1_ps(bias[g + i]);
                        even = _mm256_add_ps(even, b);
                        odd = _mm256_add_ps(odd, b);
                    }
                    // e0 o0 e1 o1 | e4 o4 e5 o5 and e2 o2 e3 o3 | e6 o6 e7 o7.
                    let lo = _mm256_unpacklo_ps(even, odd);
                    let hi = _mm256_unpackhi_ps(even, odd);
                    // SAFETY: g + i < live and q < panels: 16 elements from q·32 + 16·h of
                    // the row are writable.
                    let y = rows[g + i].add(q * 2 * NR + 16 * h);
                    _mm256_storeu_ps(y, _mm256_permute2f128_ps(lo, hi, 0x20));
                    _mm256_storeu_ps(y.add(8), _mm256_permute2f128_ps(lo, hi, 0x31));
                }
            }
        }
    }
}
