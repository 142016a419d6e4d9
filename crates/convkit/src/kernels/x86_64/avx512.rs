//! AVX-512 (F/BW/DQ/VL) + FMA kernels for `f32`: packed and indirect GEMM tiles of up to 16
//! rows × 16 columns (one zmm per row), the panel copy and transpose, an FMA peak probe, and
//! the portable Winograd and depthwise bodies recompiled for AVX-512. Tiles take plain slices
//! (row stride `mr` of the packed weights, destination rows as a slice of slices), so they do
//! not depend on the crate-wide tile geometry.

use crate::kernels::generic::{self, DwPlane, DwRow};
use crate::kernels::winograd::{self, Lanes, WM, WX};
use crate::kernels::{IlvPlace, TileDst};
use std::arch::x86_64::*;

/// Columns of every tile here: one zmm of `f32`.
pub(super) const NR: usize = 16;

/// Most rows a tile computes (16 zmm accumulators, half the register file).
const MAX_ROWS: usize = 16;

/// FLOP of one round of [`f32_fma_peak_avx512`]: 16 chains × 16 lanes × 2.
pub const FMA_PEAK_FLOP_PER_ITER_AVX512: f64 = 512.0;

/// Independent FMA chains of [`f32_fma_peak_avx512`].
const PEAK_CHAINS: usize = 16;
const _: () = assert!(PEAK_CHAINS * NR * 2 == FMA_PEAK_FLOP_PER_ITER_AVX512 as usize);

/// True when the CPU has every feature the kernels of this file are compiled with. Asked once
/// and remembered: every safe entry point checks it, some once per output row.
pub(super) fn detected() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    // 0: not asked yet, 1: yes, 2: no.
    static DETECTED: AtomicU8 = AtomicU8::new(0);
    match DETECTED.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let yes = is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512dq")
                && is_x86_feature_detected!("avx512vl")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("avx2");
            DETECTED.store(if yes { 1 } else { 2 }, Ordering::Relaxed);
            yes
        }
    }
}

/// `f32_gemm_tile_avx512`: `ROWS`×16 tiles (`ROWS ≤ 16`), `ROWS` zmm accumulators, one
/// embedded broadcast per row and step; one tile per column panel. For panel
/// `q < panels.0`: `rows[i][q·16 + j] = (accumulate ? rows[i][q·16 + j] : 0)
/// + Σ_p a[p·mr + i]·b[q·panels.1 + p·16 + j]` (one fused multiply-add per `p`, in order),
/// then `+ bias[i]`: the same sums in the same order as the AVX2 tiles, so equal rows are
/// equal bit for bit. Rows `ROWS..` are left as they are.
///
/// Safe to call: it checks that the CPU has AVX-512 F/BW/DQ/VL, FMA and AVX2, that
/// `ROWS ≤ mr`, that `a` holds `(kc − 1)·mr + ROWS` elements (step `p` reads `a[p·mr..][..ROWS]`)
/// and `b` every panel's `kc` groups, that there
/// are `ROWS` destination rows of `panels.0·16` elements each and `ROWS` biases; it panics
/// otherwise.
#[allow(clippy::too_many_arguments)]
pub fn f32_gemm_tile_avx512<const ROWS: usize>(
    kc: usize,
    a: &[f32],
    b: &[f32],
    panels: (usize, usize),
    rows: &mut [&mut [f32]],
    accumulate: bool,
    bias: Option<&[f32]>,
    mr: usize,
) {
    packed_tiles::<ROWS>(kc, a, b, panels, rows, accumulate, bias, mr, false)
}

/// `f32_gemm_tile_narrow_avx512`: the first 8 columns of [`f32_gemm_tile_avx512`]'s tiles
/// (ymm accumulators), for a partial last panel of at most 8 columns; columns 8..16 of each
/// tile are left as they are. The same checks (rows of `panels.0·16` elements).
#[allow(clippy::too_many_arguments)]
pub fn f32_gemm_tile_narrow_avx512<const ROWS: usize>(
    kc: usize,
    a: &[f32],
    b: &[f32],
    panels: (usize, usize),
    rows: &mut [&mut [f32]],
    accumulate: bool,
    bias: Option<&[f32]>,
    mr: usize,
) {
    packed_tiles::<ROWS>(kc, a, b, panels, rows, accumulate, bias, mr, true)
}

/// The checks of the tile kernels (the weights, the biases and the destination rows, each
/// `width` long), returning the row pointers and the biases as arrays.
fn tile_args<'r, const ROWS: usize>(
    kc: usize,
    a: &[f32],
    mr: usize,
    rows: &mut [&mut [f32]],
    width: usize,
    bias: Option<&'r [f32]>,
) -> ([*mut f32; ROWS], Option<&'r [f32; ROWS]>) {
    const { assert!(ROWS >= 1 && ROWS <= MAX_ROWS, "1 to 16 rows") };
    assert!(ROWS <= mr, "more tile rows than the packed weights' row stride");
    // Step p reads a[p·mr..][..ROWS].
    let need = match kc {
        0 => Some(0),
        kc => (kc - 1).checked_mul(mr).and_then(|n| n.checked_add(ROWS)),
    };
    assert!(need.is_some_and(|n| a.len() >= n), "packed weights shorter than kc");
    assert!(rows.len() >= ROWS, "fewer destination rows than ROWS");
    let bias = bias.map(|b| b.get(..ROWS).and_then(|b| b.try_into().ok()).expect("fewer biases than ROWS"));
    let ptrs = std::array::from_fn(|i| {
        assert!(rows[i].len() >= width, "tile row shorter than the tiles");
        rows[i].as_mut_ptr()
    });
    (ptrs, bias)
}

/// Panics unless `b` holds `kc·16` elements from `q·b_step` for every `q < panels`.
fn check_panels(kc: usize, b: &[f32], (panels, b_step): (usize, usize)) {
    let need = match panels {
        0 => Some(0),
        n => (n - 1).checked_mul(b_step).and_then(|o| o.checked_add(kc.checked_mul(NR)?)),
    };
    assert!(need.is_some_and(|n| n <= b.len()), "packed panels shorter than kc");
}

/// The checks and the dispatch of the packed tile kernels; `narrow`: the first 8 columns only.
#[allow(clippy::too_many_arguments)]
fn packed_tiles<const ROWS: usize>(
    kc: usize,
    a: &[f32],
    b: &[f32],
    (panels, b_step): (usize, usize),
    rows: &mut [&mut [f32]],
    accumulate: bool,
    bias: Option<&[f32]>,
    mr: usize,
    narrow: bool,
) {
    check_panels(kc, b, (panels, b_step));
    let width = panels.checked_mul(NR).expect("panels·16 overflows");
    let (rows, bias) = tile_args::<ROWS>(kc, a, mr, rows, width, bias);
    assert!(detected(), "the CPU lacks AVX-512 F/BW/DQ/VL, FMA or AVX2");
    let (a, b, panels) = (a.as_ptr(), b.as_ptr(), (panels, b_step));
    // SAFETY: the CPU supports AVX-512 F/BW/DQ/VL, FMA and AVX2 (checked above); `a` holds at
    // least (kc − 1)·mr + ROWS elements with ROWS ≤ mr, and `b` at least kc·16 from q·b_step for every
    // q < panels (checked above); every row pointer starts panels·16 writable elements
    // (`tile_args`), borrowed mutably through `rows` for the whole call, so row + q·16 starts
    // 16 of them; the narrow kernel touches the first 8 of those.
    unsafe {
        if narrow {
            kernel_narrow::<ROWS>(kc, a, mr, b, panels, &rows, accumulate, bias)
        } else {
            kernel::<ROWS>(kc, a, mr, b, panels, &rows, accumulate, bias)
        }
    }
}

/// One reduction step of a 16-wide tile: `c[i] += a[i]·b[..16]` for every accumulator, then
/// `ap` advances by `mr` and `bp` by 16. The broadcast of `a[i]` folds into the FMA as an
/// embedded {1to16} operand. Used inside `unsafe` code whose caller guarantees that
/// `ap..ap + c.len()` and `bp..bp + 16` are readable.
macro_rules! fma_step {
    ($ap:ident, $bp:ident, $mr:expr, $c:ident) => {
        let b0 = _mm512_loadu_ps($bp);
        for (i, ci) in $c.iter_mut().enumerate() {
            *ci = _mm512_fmadd_ps(_mm512_set1_ps(*$ap.add(i)), b0, *ci);
        }
        $ap = $ap.add($mr);
        $bp = $bp.add(NR);
    };
}

/// `kc` steps of [`fma_step`], four at a time.
macro_rules! fma_steps {
    ($kc:expr, $ap:ident, $bp:ident, $mr:expr, $c:ident) => {
        for _ in 0..$kc {
            fma_step!($ap, $bp, $mr, $c);
        }
    };
}

/// Load the accumulators of `ROWS` destination rows (or zero them).
///
/// # Safety
/// AVX-512F is available; every row pointer starts 16 readable elements.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
unsafe fn load_tile<const ROWS: usize>(rows: &[*mut f32; ROWS], accumulate: bool) -> [__m512; ROWS] {
    let mut c = [_mm512_setzero_ps(); ROWS];
    if accumulate {
        for (ci, &row) in c.iter_mut().zip(rows) {
            // SAFETY: the row holds 16 elements (caller's contract).
            *ci = _mm512_loadu_ps(row);
        }
    }
    c
}

/// Add the bias (if any, as a separate add after the sums) and store `ROWS` rows.
///
/// # Safety
/// AVX-512F is available; every row pointer starts 16 writable elements.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
unsafe fn store_tile<const ROWS: usize>(
    c: [__m512; ROWS],
    rows: &[*mut f32; ROWS],
    bias: Option<&[f32; ROWS]>,
) {
    for (i, (&ci, &row)) in c.iter().zip(rows).enumerate() {
        let v = match bias {
            Some(b) => _mm512_add_ps(ci, _mm512_set1_ps(b[i])),
            None => ci,
        };
        // SAFETY: the row holds 16 elements (caller's contract).
        _mm512_storeu_ps(row, v);
    }
}

/// The `ROWS`×16 tiles of `panels.0` panels (`b` advancing by `panels.1`, the rows by 16).
///
/// # Safety
/// The features are available; `a` holds (kc − 1)·mr + ROWS elements with `ROWS ≤ mr`; `b` holds kc·16
/// from q·b_step for every q < panels; every row pointer starts panels·16 writable elements.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
unsafe fn kernel<const ROWS: usize>(
    kc: usize,
    a: *const f32,
    mr: usize,
    b: *const f32,
    (panels, b_step): (usize, usize),
    rows: &[*mut f32; ROWS],
    accumulate: bool,
    bias: Option<&[f32; ROWS]>,
) {
    for q in 0..panels {
        // SAFETY: q < panels, so row + q·16 starts 16 of the row's panels·16 elements.
        let rows: [*mut f32; ROWS] = std::array::from_fn(|i| rows[i].add(q * NR));
        let mut c = load_tile::<ROWS>(&rows, accumulate);
        let (mut ap, mut bp) = (a, b.add(q * b_step));
        // SAFETY (the steps): kc steps in all, each inside the panel (caller's contract).
        fma_steps!(kc, ap, bp, mr, c);
        store_tile::<ROWS>(c, &rows, bias);
    }
}

/// The `ROWS`×8 tiles of `panels.0` panels: [`kernel`] on the first 8 columns, in ymm.
///
/// # Safety
/// As [`kernel`].
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
unsafe fn kernel_narrow<const ROWS: usize>(
    kc: usize,
    a: *const f32,
    mr: usize,
    b: *const f32,
    (panels, b_step): (usize, usize),
    rows: &[*mut f32; ROWS],
    accumulate: bool,
    bias: Option<&[f32; ROWS]>,
) {
    for q in 0..panels {
        // SAFETY: q < panels, so row + q·16 starts 16 (so 8) of the row's elements.
        let rows: [*mut f32; ROWS] = std::array::from_fn(|i| rows[i].add(q * NR));
        let mut c = [_mm256_setzero_ps(); ROWS];
        if accumulate {
            for (ci, &row) in c.iter_mut().zip(&rows) {
                // SAFETY: the row holds at least 8 elements (caller's contract).
                *ci = _mm256_loadu_ps(row);
            }
        }
        let (mut ap, mut bp) = (a, b.add(q * b_step));
        // One reduction step: p < kc, so bp..bp+8 and ap..ap+ROWS lie inside the panels.
        macro_rules! step {
            () => {
                let b0 = _mm256_loadu_ps(bp);
                for (i, ci) in c.iter_mut().enumerate() {
                    *ci = _mm256_fmadd_ps(_mm256_set1_ps(*ap.add(i)), b0, *ci);
                }
                ap = ap.add(mr);
                bp = bp.add(NR);
            };
        }
        // SAFETY (the steps): kc steps in all, each inside the panel (caller's contract).
        for _ in 0..kc / 4 {
            step!();
            step!();
            step!();
            step!();
        }
        for _ in 0..kc % 4 {
            step!();
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

/// `f32_gemm_indirect_avx512`: [`f32_gemm_tile_avx512`] reading row `p` of panel
/// `q < panels` of `B` in place at `src[base + q·16 + offs[p]..][..16]` (an indirect
/// convolution: no packed patch panel), `offs.len() ≥ kc`.
///
/// Safe to call: the checks of [`f32_gemm_tile_avx512`] (rows of `panels·16` elements), and
/// every row of `B` is checked against `src.len()` before it is read; it panics otherwise.
#[allow(clippy::too_many_arguments)]
pub fn f32_gemm_indirect_avx512<const ROWS: usize>(
    kc: usize,
    a: &[f32],
    src: &[f32],
    (base, panels): (usize, usize),
    offs: &[usize],
    rows: &mut [&mut [f32]],
    accumulate: bool,
    bias: Option<&[f32]>,
    mr: usize,
) {
    assert!(offs.len() >= kc, "offsets shorter than kc");
    let width = panels.checked_mul(NR).expect("panels·16 overflows");
    let (rows, bias) = tile_args::<ROWS>(kc, a, mr, rows, width, bias);
    assert!(detected(), "the CPU lacks AVX-512 F/BW/DQ/VL, FMA or AVX2");
    for q in 0..panels {
        // Every row must end inside `src`: base + q·16 + offs[p] + 16 ≤ src.len(), checked
        // per row by the kernel against this limit.
        let limit = (src.len().checked_sub(NR)).and_then(|l| l.checked_sub(base.checked_add(q * NR)?));
        let Some(limit) = limit else { panic!("indirect rows lie outside the source") };
        // SAFETY: q < panels and every row holds panels·16 elements (`tile_args`), so each
        // pointer starts 16 of them.
        let at: [*mut f32; ROWS] = std::array::from_fn(|i| unsafe { rows[i].add(q * NR) });
        // SAFETY: the CPU has the features; `a` holds (kc − 1)·mr + ROWS elements with ROWS ≤ mr
        // and `offs` kc (checked above); base + q·16 ≤ src.len() − 16 (limit exists); the kernel
        // reads row p only after checking offs[p] ≤ limit, so the row ends at or before
        // src.len(); `at` starts 16 writable elements per row (above).
        unsafe {
            kernel_indirect::<ROWS>(
                kc,
                a.as_ptr(),
                mr,
                src.as_ptr().add(base + q * NR),
                offs,
                limit,
                &at,
                accumulate,
                bias,
            )
        }
    }
}

/// One indirect `ROWS`×16 tile.
///
/// # Safety
/// The features are available; `a` holds (kc − 1)·mr + ROWS elements with `ROWS ≤ mr`;
/// `offs` holds kc;
/// `src + o .. + 16` is readable for every `o ≤ limit`; every row pointer starts 16 writable
/// elements.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
unsafe fn kernel_indirect<const ROWS: usize>(
    kc: usize,
    a: *const f32,
    mr: usize,
    src: *const f32,
    offs: &[usize],
    limit: usize,
    rows: &[*mut f32; ROWS],
    accumulate: bool,
    bias: Option<&[f32; ROWS]>,
) {
    let mut c = load_tile::<ROWS>(rows, accumulate);
    let mut ap = a;
    for &o in &offs[..kc] {
        assert!(o <= limit, "indirect row outside the source");
        // SAFETY: o ≤ limit, so src + o .. + 16 lies inside the source; ap .. ap + ROWS lies
        // inside the packed weights (p < kc, caller's contract).
        let b0 = _mm512_loadu_ps(src.add(o));
        for (i, ci) in c.iter_mut().enumerate() {
            *ci = _mm512_fmadd_ps(_mm512_set1_ps(*ap.add(i)), b0, *ci);
        }
        ap = ap.add(mr);
    }
    store_tile::<ROWS>(c, rows, bias);
}

/// `f32_copy_panel_avx512`: the panel copy of [`crate::kernels::PanelCopy`] with 16-column
/// rows, one zmm move per run and row.
///
/// Safe to call: it checks that the CPU has the features and that every write lies inside
/// `dst` and every read inside `src`; it panics otherwise.
pub fn f32_copy_panel_avx512(src: &[f32], rows: &[usize], runs: &[(usize, usize)], dst: &mut [f32]) {
    assert!(detected(), "the CPU lacks AVX-512 F/BW/DQ/VL, FMA or AVX2");
    let max_j = runs.iter().map(|r| r.0).max().unwrap_or(0);
    let end =
        rows.len().saturating_sub(1).checked_mul(NR).and_then(|o| o.checked_add(max_j)?.checked_add(NR));
    assert!(end.is_some_and(|e| e <= dst.len()), "panel copy writes past the panel");
    // SAFETY: the features are present and every write dst[r·16 + j0 .. + 16] ends at or
    // before (rows.len()−1)·16 + max_j + 16 ≤ dst.len() (both checked above); `copy_panel`
    // checks each read against src.len().
    unsafe { copy_panel(src, rows, runs, dst.as_mut_ptr()) }
}

/// # Safety
/// The features are available; `dst[r·16 + j0 ..][..16]` is writable for every `r < rows.len()`
/// and run `(j0, _)`.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
unsafe fn copy_panel(src: &[f32], rows: &[usize], runs: &[(usize, usize)], dst: *mut f32) {
    let copy = |r: usize, from: usize, j0: usize| {
        assert!(from.checked_add(NR).is_some_and(|end| end <= src.len()), "panel copy reads past the source");
        // SAFETY: src[from .. from + 16] is in bounds (checked just above); the write is in
        // bounds by the caller's contract.
        unsafe { _mm512_storeu_ps(dst.add(r * NR + j0), _mm512_loadu_ps(src.as_ptr().add(from))) }
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

/// `f32_transpose_panel_avx512`: `dst[p·16 + j] = src[rows[j] + p]` for `j < 16`, `p < len`
/// (see [`crate::kernels::PanelTranspose`]) by 16×16 register transposes, 16 positions of
/// the 16 runs at a time; the last `len % 16` positions through masked loads (lanes past the
/// runs are never read) and as many stores.
///
/// Safe to call: it checks that the CPU has the features, that there are 16 runs and that
/// every run and the destination lie inside their slices; it panics otherwise.
pub fn f32_transpose_panel_avx512(src: &[f32], rows: &[usize], len: usize, dst: &mut [f32]) {
    assert!(detected(), "the CPU lacks AVX-512 F/BW/DQ/VL, FMA or AVX2");
    let rows: &[usize; NR] = rows.try_into().expect("16 runs");
    assert!(rows.iter().all(|&r| r.checked_add(len).is_some_and(|e| e <= src.len())), "run outside src");
    assert!(len.checked_mul(NR).is_some_and(|n| n <= dst.len()), "dst shorter than len·16");
    // SAFETY: the features are available (checked above); every load reads (at most, with a
    // mask) src[rows[j] + p..][..16] with only lanes p + l < len enabled, inside src (checked
    // above); every store writes dst[(p + i)·16..][..16] with p + i < len, inside dst
    // (checked above).
    unsafe { transpose_panel(src.as_ptr(), rows, len, dst.as_mut_ptr()) }
}

/// # Safety
/// As in [`f32_transpose_panel_avx512`]: `src[rows[j]..][..len]` readable, `dst[..len·16]`
/// writable, the features available.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
unsafe fn transpose_panel(src: *const f32, rows: &[usize; NR], len: usize, dst: *mut f32) {
    let mut p = 0;
    // Whole blocks of 16 positions: plain loads, and the 16 stores written out (a loop over
    // a variable count is turned into a copy through the stack).
    while p + NR <= len {
        // SAFETY: p + 16 ≤ len, so every lane lies inside its run.
        let r: [__m512; NR] = std::array::from_fn(|j| _mm512_loadu_ps(src.add(rows[j] + p)));
        let o = transpose16(&r);
        let d = dst.add(p * NR);
        // SAFETY: p + 16 ≤ len, so dst[p·16..][..256] lies inside dst[..len·16].
        _mm512_storeu_ps(d, o[0]);
        _mm512_storeu_ps(d.add(NR), o[1]);
        _mm512_storeu_ps(d.add(2 * NR), o[2]);
        _mm512_storeu_ps(d.add(3 * NR), o[3]);
        _mm512_storeu_ps(d.add(4 * NR), o[4]);
        _mm512_storeu_ps(d.add(5 * NR), o[5]);
        _mm512_storeu_ps(d.add(6 * NR), o[6]);
        _mm512_storeu_ps(d.add(7 * NR), o[7]);
        _mm512_storeu_ps(d.add(8 * NR), o[8]);
        _mm512_storeu_ps(d.add(9 * NR), o[9]);
        _mm512_storeu_ps(d.add(10 * NR), o[10]);
        _mm512_storeu_ps(d.add(11 * NR), o[11]);
        _mm512_storeu_ps(d.add(12 * NR), o[12]);
        _mm512_storeu_ps(d.add(13 * NR), o[13]);
        _mm512_storeu_ps(d.add(14 * NR), o[14]);
        _mm512_storeu_ps(d.add(15 * NR), o[15]);
        p += NR;
    }
    if p < len {
        let n = len - p;
        let mask: __mmask16 = (1u16 << n) - 1;
        // SAFETY: lanes l < n have p + l < len, inside the run; masked lanes are not read.
        let r: [__m512; NR] = std::array::from_fn(|j| _mm512_maskz_loadu_ps(mask, src.add(rows[j] + p)));
        let o = transpose16(&r);
        for (i, v) in o.iter().take(n).enumerate() {
            // SAFETY: p + i < len, so dst[(p + i)·16..][..16] lies inside dst[..len·16].
            _mm512_storeu_ps(dst.add((p + i) * NR), *v);
        }
    }
}

/// A 16×16 transpose: `o[i][j] = r[j][i]`. Within 128-bit lanes, unpacks and shuffles make
/// 4×4 blocks (`u[g][c]`, lane `L` = rows `4g..4g+4` at column `4L + c`); two rounds of
/// 128-bit lane shuffles then gather lane `L` of `u[0..4][c]` into output `4L + c`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
fn transpose16(r: &[__m512; NR]) -> [__m512; NR] {
    let u: [[__m512; 4]; 4] = std::array::from_fn(|g| {
        let t0 = _mm512_unpacklo_ps(r[4 * g], r[4 * g + 1]);
        let t1 = _mm512_unpackhi_ps(r[4 * g], r[4 * g + 1]);
        let t2 = _mm512_unpacklo_ps(r[4 * g + 2], r[4 * g + 3]);
        let t3 = _mm512_unpackhi_ps(r[4 * g + 2], r[4 * g + 3]);
        [
            _mm512_shuffle_ps::<0x44>(t0, t2),
            _mm512_shuffle_ps::<0xEE>(t0, t2),
            _mm512_shuffle_ps::<0x44>(t1, t3),
            _mm512_shuffle_ps::<0xEE>(t1, t3),
        ]
    });
    let mut o = [_mm512_setzero_ps(); NR];
    for c in 0..4 {
        // Lanes [0 1] and [2 3] of groups 0, 1 and of groups 2, 3.
        let v_lo = _mm512_shuffle_f32x4::<0x44>(u[0][c], u[1][c]);
        let v_hi = _mm512_shuffle_f32x4::<0xEE>(u[0][c], u[1][c]);
        let w_lo = _mm512_shuffle_f32x4::<0x44>(u[2][c], u[3][c]);
        let w_hi = _mm512_shuffle_f32x4::<0xEE>(u[2][c], u[3][c]);
        o[c] = _mm512_shuffle_f32x4::<0x88>(v_lo, w_lo);
        o[4 + c] = _mm512_shuffle_f32x4::<0xDD>(v_lo, w_lo);
        o[8 + c] = _mm512_shuffle_f32x4::<0x88>(v_hi, w_hi);
        o[12 + c] = _mm512_shuffle_f32x4::<0xDD>(v_hi, w_hi);
    }
    o
}

/// FMA throughput probe: `iters` rounds of 16 independent 16-wide FMA chains (no memory
/// traffic), returning a value that depends on every chain so nothing is optimised away.
/// Each round is [`FMA_PEAK_FLOP_PER_ITER_AVX512`] = 16·16·2 = 512 FLOP.
pub fn f32_fma_peak_avx512(iters: u64) -> f32 {
    assert!(detected(), "the CPU lacks AVX-512 F/BW/DQ/VL, FMA or AVX2");
    // SAFETY: the CPU has the features (checked above); no memory is touched.
    unsafe { fma_peak(iters) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
fn fma_peak(iters: u64) -> f32 {
    let m = _mm512_set1_ps(0.999_999);
    let a = _mm512_set1_ps(1e-7);
    let mut acc = [_mm512_set1_ps(1.0); PEAK_CHAINS];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, m, a);
        }
    }
    let mut s = _mm512_setzero_ps();
    for v in acc {
        s = _mm512_add_ps(s, v);
    }
    _mm512_reduce_add_ps(s)
}

/// `f32_wino_input_avx512`: [`winograd::wino_input`] with AVX-512 (the same operations in
/// the same order, so the same bits as the portable kernel).
///
/// Safe to call: it checks that the CPU has the features; the transform itself only indexes
/// slices (checked).
pub fn f32_wino_input_avx512(d: &[Lanes<f32>; WX], v: &mut [f32], vstride: usize) {
    assert!(detected(), "the CPU lacks AVX-512 F/BW/DQ/VL, FMA or AVX2");
    // SAFETY: the CPU has the features (checked above); the function has no other
    // precondition.
    unsafe { wino_input(d, v, vstride) }
}

/// `f32_wino_output_avx512`: [`winograd::wino_output`] with AVX-512.
///
/// Safe to call: it checks that the CPU has the features; the transform itself only indexes
/// slices (checked).
pub fn f32_wino_output_avx512(m: &[f32], mstride: usize, bias: f32, y: &mut [Lanes<f32>; WM * WM]) {
    assert!(detected(), "the CPU lacks AVX-512 F/BW/DQ/VL, FMA or AVX2");
    // SAFETY: as above.
    unsafe { wino_output(m, mstride, bias, y) }
}

/// `f32_wino_gather_avx512`: [`winograd::WinoGatherFn`] with AVX-512. Per patch element
/// `(r, s)`, the 16 lanes' values lie 4 apart: four 16-wide loads from `p0 + r·row_step + s −
/// 4·l0` (masked to stay inside `x`), every fourth element picked by two `vpermt2ps` and one
/// 128-bit shuffle, stored into the run's lanes through a mask: 8 vector operations per
/// element instead of 32 scalar moves for 16 lanes.
///
/// Safe to call: it checks the features and that every read of the run lies inside `x`.
pub fn f32_wino_gather_avx512(
    x: &[f32],
    p0: usize,
    row_step: usize,
    a: usize,
    lanes: (usize, usize),
    d: &mut [Lanes<f32>; WX],
) {
    assert!(detected(), "the CPU lacks AVX-512 F/BW/DQ/VL, FMA or AVX2");
    let (l0, l1) = lanes;
    assert!(a <= winograd::WA && l0 < l1 && l1 <= 16, "patch side {a} or lanes {l0}..{l1} out of range");
    let last = (a - 1).checked_mul(row_step).and_then(|o| o.checked_add(p0 + (a - 1) + 4 * (l1 - 1 - l0)));
    assert!(last.is_some_and(|e| e < x.len()), "patch gather reads past the source");
    // SAFETY: the features are present; loads are masked to elements inside `x` (checked
    // per load), stores go to `d`'s rows `r·a + s < 36` (a ≤ 6).
    unsafe { wino_gather(x, p0, row_step, a, lanes, d) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
unsafe fn wino_gather(
    x: &[f32],
    p0: usize,
    row_step: usize,
    a: usize,
    (l0, l1): (usize, usize),
    d: &mut [Lanes<f32>; WX],
) {
    let len = x.len() as isize;
    let idx = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
    let store_mask: __mmask16 = ((((1u32 << (l1 - l0)) - 1) << l0) & 0xffff) as u16;
    // Elements e..e + 16 of `x`, those outside it as zero (never read).
    let load = |e: isize| {
        let lo = (-e).clamp(0, 16);
        let hi = (len - e).clamp(0, 16);
        let m: __mmask16 = if hi > lo { ((((1u32 << (hi - lo)) - 1) << lo) & 0xffff) as u16 } else { 0 };
        // SAFETY: only the lanes of `m`, which lie inside `x`, are read (masked-off lanes
        // are not accessed and cannot fault).
        unsafe { _mm512_maskz_loadu_ps(m, x.as_ptr().wrapping_offset(e)) }
    };
    for r in 0..a {
        for s in 0..a {
            let start = (p0 + r * row_step + s) as isize - 4 * l0 as isize;
            let (z0, z1, z2, z3) = if start >= 0 && start + 64 <= len {
                // SAFETY: x[start .. start + 64] is inside `x` (checked just above).
                unsafe {
                    let p = x.as_ptr().offset(start);
                    (
                        _mm512_loadu_ps(p),
                        _mm512_loadu_ps(p.add(16)),
                        _mm512_loadu_ps(p.add(32)),
                        _mm512_loadu_ps(p.add(48)),
                    )
                }
            } else {
                (load(start), load(start + 16), load(start + 32), load(start + 48))
            };
            let lo = _mm512_permutex2var_ps(z0, idx, z1);
            let hi = _mm512_permutex2var_ps(z2, idx, z3);
            let v = _mm512_shuffle_f32x4::<0x44>(lo, hi);
            // SAFETY: `d[r·a + s]` is a 16-element row (r·a + s < 36).
            unsafe { _mm512_mask_storeu_ps(d[r * a + s].as_mut_ptr(), store_mask, v) };
        }
    }
}

/// `f32_wino_scatter_avx512`: [`winograd::WinoScatterFn`] with AVX-512. Per tile row `u`,
/// the four column vectors (16 tiles each) are interleaved by a 4×4 transpose of elements
/// within 128-bit lanes (4 unpacks, 4 shuffles) and one of 128-bit lanes (8 shuffles), giving
/// 64 consecutive outputs; 16-wide stores, masked to the run's tiles at its ends.
///
/// Safe to call: it checks the features and that every write lies inside `dst`.
pub fn f32_wino_scatter_avx512(
    y: &[Lanes<f32>; WM * WM],
    lanes: (usize, usize),
    dst: &mut [f32],
    row_step: usize,
) {
    assert!(detected(), "the CPU lacks AVX-512 F/BW/DQ/VL, FMA or AVX2");
    let (l0, l1) = lanes;
    assert!(l0 < l1 && l1 <= 16, "lanes {l0}..{l1} out of range");
    let end = row_step.checked_mul(WM - 1).and_then(|o| o.checked_add(WM * (l1 - l0)));
    assert!(end.is_some_and(|e| e <= dst.len()), "tile scatter writes past the destination");
    // SAFETY: the features are present; every store is masked to the run's tiles, whose
    // elements lie inside `dst` (checked above).
    unsafe { wino_scatter(y, lanes, dst, row_step) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
unsafe fn wino_scatter(
    y: &[Lanes<f32>; WM * WM],
    (l0, l1): (usize, usize),
    dst: &mut [f32],
    row_step: usize,
) {
    for u in 0..WM {
        // SAFETY (loads): each y row holds 16 elements.
        let [a, b, c, d] = std::array::from_fn(|v| unsafe { _mm512_loadu_ps(y[u * WM + v].as_ptr()) });
        let (t0, t1) = (_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
        let (t2, t3) = (_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
        // Per 128-bit lane k: tile 4k + i's four values in u_i.
        let u0 = _mm512_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm512_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm512_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm512_shuffle_ps::<0xEE>(t1, t3);
        let v0 = _mm512_shuffle_f32x4::<0x44>(u0, u1);
        let v1 = _mm512_shuffle_f32x4::<0xEE>(u0, u1);
        let v2 = _mm512_shuffle_f32x4::<0x44>(u2, u3);
        let v3 = _mm512_shuffle_f32x4::<0xEE>(u2, u3);
        // o_k: tiles 4k .. 4k + 4, 16 consecutive outputs.
        let o = [
            _mm512_shuffle_f32x4::<0x88>(v0, v2),
            _mm512_shuffle_f32x4::<0xDD>(v0, v2),
            _mm512_shuffle_f32x4::<0x88>(v1, v3),
            _mm512_shuffle_f32x4::<0xDD>(v1, v3),
        ];
        let row = dst.as_mut_ptr().wrapping_add(u * row_step);
        for (k, &ok) in o.iter().enumerate() {
            let (first, last) = (4 * k, 4 * k + 4);
            if last <= l0 || first >= l1 {
                continue;
            }
            // Output of tile `first` relative to the run's start (may lie before it: masked).
            let at = row.wrapping_offset(4 * first as isize - 4 * l0 as isize);
            if first >= l0 && last <= l1 {
                // SAFETY: tiles first..last are in the run: their 16 outputs lie in `dst`.
                unsafe { _mm512_storeu_ps(at, ok) };
            } else {
                let (lo, hi) = (first.max(l0) - first, last.min(l1) - first);
                let m = ((((1u32 << (4 * (hi - lo))) - 1) << (4 * lo)) & 0xffff) as u16;
                // SAFETY: only the run's tiles' lanes are written, all inside `dst`.
                unsafe { _mm512_mask_storeu_ps(at, m, ok) };
            }
        }
    }
}

/// `f32_wino_grad_dy_avx512`: [`winograd::wino_grad_dy`] with AVX-512.
///
/// Safe to call: it checks that the CPU has AVX-512 F/BW/DQ/VL, FMA and AVX2; the transform
/// itself only indexes slices (checked).
pub fn f32_wino_grad_dy_avx512(h: &[Lanes<f32>; WM * WM], u: &mut [f32], ustride: usize) {
    assert!(detected(), "the CPU lacks AVX-512 F/BW/DQ/VL, FMA or AVX2");
    // SAFETY: the CPU supports the features (checked above); no other precondition.
    unsafe { wino_grad_dy(h, u, ustride) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
fn wino_grad_dy(h: &[Lanes<f32>; WM * WM], u: &mut [f32], ustride: usize) {
    winograd::wino_grad_dy(h, u, ustride)
}

/// `f32_wino2_input_avx512`: [`winograd::wino2_input`] with AVX-512.
///
/// Safe to call: it checks that the CPU has the features; the transform itself only indexes
/// slices (checked).
pub fn f32_wino2_input_avx512(d: &[Lanes<f32>; WX], v: &mut [f32], vstride: usize) {
    assert!(detected(), "the CPU lacks AVX-512 F/BW/DQ/VL, FMA or AVX2");
    // SAFETY: as above.
    unsafe { wino2_input(d, v, vstride) }
}

/// `f32_wino2_output_avx512`: [`winograd::wino2_output`] with AVX-512.
///
/// Safe to call: it checks that the CPU has the features; the transform itself only indexes
/// slices (checked).
pub fn f32_wino2_output_avx512(m: &[f32], mstride: usize, bias: f32, y: &mut [Lanes<f32>; WM * WM]) {
    assert!(detected(), "the CPU lacks AVX-512 F/BW/DQ/VL, FMA or AVX2");
    // SAFETY: as above.
    unsafe { wino2_output(m, mstride, bias, y) }
}

/// `f32_wino1_input_avx512`: [`winograd::wino1_input`] with AVX-512.
///
/// Safe to call: it checks that the CPU has the features; the transform itself only indexes
/// slices (checked).
pub fn f32_wino1_input_avx512(a: usize, d: &[Lanes<f32>; winograd::WA], v: &mut [f32], vstride: usize) {
    assert!(detected(), "the CPU lacks AVX-512 F/BW/DQ/VL, FMA or AVX2");
    // SAFETY: as above.
    unsafe { wino1_input(a, d, v, vstride) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
fn wino1_input(a: usize, d: &[Lanes<f32>; winograd::WA], v: &mut [f32], vstride: usize) {
    winograd::wino1_input(a, d, v, vstride)
}

/// `f32_wino1_output_avx512`: [`winograd::wino1_output`] with AVX-512: the transform on
/// [`winograd::wino1_tiles`], then its 4 rows of 16 tiles interleaved in registers (the
/// tiles' outputs side by side: two rounds of unpacks, two of 128-bit block shuffles) and
/// stored 16 at a time, the last vector through a mask. The same sums as the portable kernel.
///
/// Safe to call: it checks that the CPU has the features, the buffer lengths (in
/// `wino1_tiles`) and that `y` holds at most 64 outputs; it panics otherwise.
pub fn f32_wino1_output_avx512(
    a: usize,
    m: &[f32],
    mstride: usize,
    bias: f32,
    add: Option<&[f32]>,
    y: &mut [f32],
) {
    assert!(detected(), "the CPU lacks AVX-512 F/BW/DQ/VL, FMA or AVX2");
    assert!(y.len() <= NR * WM, "more than {} outputs", NR * WM);
    let add = add.map(|e| &e[..y.len()]);
    // SAFETY: the CPU has the features (checked above); every load and store lies inside
    // `add` and `y` (`wino1_store` masks at y.len() ≤ 64, `add` as long).
    unsafe { wino1_store(winograd_tiles(a, m, mstride), bias, add, y) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
fn winograd_tiles(a: usize, m: &[f32], mstride: usize) -> [Lanes<f32>; WM] {
    winograd::wino1_tiles(a, m, mstride)
}

/// `y[4·l + u] = (o[u][l] + bias) + add[4·l + u]` (without `add` if `None`) for
/// `4·l + u < y.len() ≤ 64`.
///
/// # Safety
/// AVX-512F is available; `y.len() ≤ 64`; `add`, if any, as long as `y`.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
unsafe fn wino1_store(o: [Lanes<f32>; WM], bias: f32, add: Option<&[f32]>, y: &mut [f32]) {
    let b = _mm512_set1_ps(bias);
    // SAFETY: each lane array holds 16 f32.
    let r: [__m512; WM] =
        std::array::from_fn(|u| _mm512_add_ps(unsafe { _mm512_loadu_ps(o[u].as_ptr()) }, b));
    // Per 128-bit block k (tiles 4k .. 4k + 3): e = tile 4k's 4 outputs, f, g, h the next.
    let (lo01, hi01) = (_mm512_unpacklo_ps(r[0], r[1]), _mm512_unpackhi_ps(r[0], r[1]));
    let (lo23, hi23) = (_mm512_unpacklo_ps(r[2], r[3]), _mm512_unpackhi_ps(r[2], r[3]));
    let pd = _mm512_castps_pd;
    let e = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(lo01), pd(lo23)));
    let f = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(lo01), pd(lo23)));
    let g = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(hi01), pd(hi23)));
    let h = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(hi01), pd(hi23)));
    // Blocks: out k = [e_k, f_k, g_k, h_k].
    let ef_lo = _mm512_shuffle_f32x4::<0b01_00_01_00>(e, f);
    let ef_hi = _mm512_shuffle_f32x4::<0b11_10_11_10>(e, f);
    let gh_lo = _mm512_shuffle_f32x4::<0b01_00_01_00>(g, h);
    let gh_hi = _mm512_shuffle_f32x4::<0b11_10_11_10>(g, h);
    let out = [
        _mm512_shuffle_f32x4::<0b10_00_10_00>(ef_lo, gh_lo),
        _mm512_shuffle_f32x4::<0b11_01_11_01>(ef_lo, gh_lo),
        _mm512_shuffle_f32x4::<0b10_00_10_00>(ef_hi, gh_hi),
        _mm512_shuffle_f32x4::<0b11_01_11_01>(ef_hi, gh_hi),
    ];
    let n = y.len();
    let p = y.as_mut_ptr();
    for (v, &x) in out.iter().enumerate() {
        let at = v * NR;
        if at >= n {
            break;
        }
        let mask = if at + NR <= n { u16::MAX } else { ((1u32 << (n - at)) - 1) as u16 };
        // SAFETY (both): the mask keeps the lanes below n − at, inside `add` and `y`.
        let x = match add {
            Some(e) => _mm512_add_ps(x, unsafe { _mm512_maskz_loadu_ps(mask, e.as_ptr().add(at)) }),
            None => x,
        };
        unsafe { _mm512_mask_storeu_ps(p.add(at), mask, x) };
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
fn wino2_input(d: &[Lanes<f32>; WX], v: &mut [f32], vstride: usize) {
    winograd::wino2_input(d, v, vstride)
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
fn wino2_output(m: &[f32], mstride: usize, bias: f32, y: &mut [Lanes<f32>; WM * WM]) {
    winograd::wino2_output(m, mstride, bias, y)
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
fn wino_input(d: &[Lanes<f32>; WX], v: &mut [f32], vstride: usize) {
    winograd::wino_input(d, v, vstride)
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
fn wino_output(m: &[f32], mstride: usize, bias: f32, y: &mut [Lanes<f32>; WM * WM]) {
    winograd::wino_output(m, mstride, bias, y)
}

/// `f32_dw_row_avx512`: the portable depthwise row body with fused multiply-add
/// ([`generic::dw_row_body`]) compiled for AVX-512; the same bits as that body.
///
/// Safe to call: it checks that the CPU has the features; the body only indexes slices.
pub fn f32_dw_row_avx512(r: &DwRow<'_, f32>, y: &mut [f32]) {
    assert!(detected(), "the CPU lacks AVX-512 F/BW/DQ/VL, FMA or AVX2");
    // SAFETY: the CPU has the features (checked above); the body is safe Rust.
    unsafe { dw_row(r, y) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
fn dw_row(r: &DwRow<'_, f32>, y: &mut [f32]) {
    generic::dw_row_body::<f32, true>(r, y)
}

/// `f32_dw_plane_avx512`: the portable depthwise band body with fused multiply-add
/// ([`generic::dw_plane_body`], which checks the band) compiled for AVX-512.
///
/// Safe to call: it checks that the CPU has the features; the body only indexes slices.
pub fn f32_dw_plane_avx512(p: &DwPlane<'_, f32>, y: &mut [f32]) {
    assert!(detected(), "the CPU lacks AVX-512 F/BW/DQ/VL, FMA or AVX2");
    // SAFETY: the CPU has the features (checked above); the body is safe Rust.
    unsafe { dw_plane(p, y) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
fn dw_plane(p: &DwPlane<'_, f32>, y: &mut [f32]) {
    generic::dw_plane_body::<f32, true>(p, y)
}

/// `f32_dw_copy_avx512`: the staging copy [`generic::dw_copy`] compiled for AVX-512.
///
/// Safe to call: it checks that the CPU has the features; the copy checks the lengths.
pub fn f32_dw_copy_avx512(src: &[f32], dst: &mut [f32]) {
    assert!(detected(), "the CPU lacks AVX-512 F/BW/DQ/VL, FMA or AVX2");
    // SAFETY: the CPU has the features (checked above); the body is safe Rust.
    unsafe { dw_copy(src, dst) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
fn dw_copy(src: &[f32], dst: &mut [f32]) {
    generic::dw_copy(src, dst)
}

/// `f32_dw_split2_avx512`: the stride-2 phase split [`generic::dw_split2`] compiled for
/// AVX-512.
///
/// Safe to call: it checks that the CPU has the features; the split checks the lengths.
pub fn f32_dw_split2_avx512(src: &[f32], ev: &mut [f32], od: &mut [f32]) {
    assert!(detected(), "the CPU lacks AVX-512 F/BW/DQ/VL, FMA or AVX2");
    // SAFETY: the CPU has the features (checked above); the body is safe Rust.
    unsafe { dw_split2(src, ev, od) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
fn dw_split2(src: &[f32], ev: &mut [f32], od: &mut [f32]) {
    generic::dw_split2(src, ev, od)
}

/// Rows of this level's GEMM tile (16 zmm accumulators); blocks with fewer live rows run a
/// kernel of exactly that many rows, at least 4, on the same packing (a tile's cost is one
/// FMA per row and step; below 4 rows the FMA latency bounds it instead).
pub(super) const MR: usize = 16;

/// Call tile kernel `$k` on a [`TileDst`] `$c` with as many rows as it has live, at least 4
/// (`$args` go before the destination rows), `A`'s rows `MR` apart or, after `$lda;`, that far.
macro_rules! by_live_rows {
    ($k:ident, $c:expr, $($args:expr),*) => {
        by_live_rows!($k, $c, MR; $($args),*)
    };
    ($k:ident, $c:expr, $lda:expr; $($args:expr),*) => {{
        let c: &mut TileDst<'_, f32> = $c;
        let (bias, acc) = (c.bias, c.accumulate);
        let (bias, rows) = (bias.as_ref().map(|b| &b[..]), &mut c.rows[..]);
        match c.live {
            0..=4 => $k::<4>($($args,)* rows, acc, bias, $lda),
            5 => $k::<5>($($args,)* rows, acc, bias, $lda),
            6 => $k::<6>($($args,)* rows, acc, bias, $lda),
            7 => $k::<7>($($args,)* rows, acc, bias, $lda),
            8 => $k::<8>($($args,)* rows, acc, bias, $lda),
            9 => $k::<9>($($args,)* rows, acc, bias, $lda),
            10 => $k::<10>($($args,)* rows, acc, bias, $lda),
            11 => $k::<11>($($args,)* rows, acc, bias, $lda),
            12 => $k::<12>($($args,)* rows, acc, bias, $lda),
            13 => $k::<13>($($args,)* rows, acc, bias, $lda),
            14 => $k::<14>($($args,)* rows, acc, bias, $lda),
            15 => $k::<15>($($args,)* rows, acc, bias, $lda),
            _ => $k::<16>($($args,)* rows, acc, bias, $lda),
        }
    }};
}

/// `f32_gemm_16x16_avx512`: [`f32_gemm_tile_avx512`] on a [`TileDst`], computing the live
/// rows (at least 4).
pub fn f32_gemm_16x16_avx512(
    kc: usize,
    a: &[f32],
    b: &[f32],
    panels: (usize, usize),
    c: &mut TileDst<'_, f32>,
) {
    by_live_rows!(f32_gemm_tile_avx512, c, kc, a, b, panels)
}

/// `f32_gemm_16x16_strided_avx512`: [`f32_gemm_16x16_avx512`] with `A`'s rows `lda` apart
/// (read in place; see [`crate::kernels::GemmStrided`]).
pub fn f32_gemm_16x16_strided_avx512(
    kc: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    panels: (usize, usize),
    c: &mut TileDst<'_, f32>,
) {
    by_live_rows!(f32_gemm_tile_avx512, c, lda; kc, a, b, panels)
}

/// `f32_gemm_ilv_avx512`: [`f32_gemm_16x16_avx512`] (all 16 rows computed) whose tiles,
/// instead of being stored, are interleaved into `y` at `place` ([`IlvPlace`], its columns
/// those of the tiles) straight from the accumulators: no pass over the tiles afterwards.
/// The rows of `c` are read when it accumulates, never written. Runs of 2, 4 or 8 rows.
///
/// Safe to call: it checks the CPU, the operands as [`f32_gemm_tile_avx512`] does, and the
/// place as [`crate::kernels::generic::ilv_store`] does, and panics otherwise.
#[allow(clippy::too_many_arguments)]
pub fn f32_gemm_ilv_avx512(
    kc: usize,
    a: &[f32],
    b: &[f32],
    (panels, b_step): (usize, usize),
    c: &mut TileDst<'_, f32>,
    place: &IlvPlace<f32>,
    y: &mut [f32],
) {
    check_panels(kc, b, (panels, b_step));
    let width = if c.accumulate { panels.checked_mul(NR).expect("panels·16 overflows") } else { 0 };
    let (rows, _) = tile_args::<MR>(kc, a, MR, &mut c.rows, width, None);
    let rows: [*const f32; MR] = rows.map(|r| r.cast_const());
    assert!(place.lanes <= panels * NR, "a place wider than the tiles");
    assert!(place.runs * place.s <= MR, "more runs than the tile's rows");
    generic::ilv_check_rows(place, y);
    assert!(detected(), "the CPU lacks AVX-512 F/BW/DQ/VL, FMA or AVX2");
    let kernel = match place.s {
        2 => kernel_ilv::<2>,
        4 => kernel_ilv::<4>,
        8 => kernel_ilv::<8>,
        s => panic!("interleaved tiles in runs of {s}"),
    };
    // SAFETY: the CPU has the features (checked above); `a` holds kc·16 elements and `b`
    // kc·16 from q·b_step for every q < panels; with `accumulate` every row pointer starts
    // panels·16 readable elements (`tile_args`); every existing output row the place reaches
    // lies inside `y` (`ilv_check_rows`).
    unsafe {
        kernel(kc, a.as_ptr(), b.as_ptr(), (panels, b_step), &rows, c.accumulate, place, y.as_mut_ptr())
    }
}

/// The tiles of [`kernel`] (16 rows), interleaved into the output (`place.lanes` columns).
///
/// # Safety
/// As [`kernel`] with 16 rows, rows only read (and only with `accumulate`); every existing
/// output row the place reaches lies inside the buffer at `y`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
unsafe fn kernel_ilv<const S: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    (panels, b_step): (usize, usize),
    rows: &[*const f32; MR],
    accumulate: bool,
    place: &IlvPlace<f32>,
    y: *mut f32,
) {
    let mut at = super::interleave::IlvCursor::new(place);
    let zips = super::interleave::ilv_zips();
    for q in 0..place.lanes.div_ceil(NR).min(panels) {
        let mut c = [_mm512_setzero_ps(); MR];
        if accumulate {
            for (ci, &row) in c.iter_mut().zip(rows) {
                // SAFETY: the row holds panels·16 elements (caller's contract).
                *ci = _mm512_loadu_ps(row.add(q * NR));
            }
        }
        // The outputs' lines come in (for writing) while the tile is computed.
        super::interleave::ilv_prefetch::<S>(&at, place, y);
        let (mut ap, mut bp) = (a, b.add(q * b_step));
        // SAFETY (the steps): kc steps in all, each inside the panel (caller's contract).
        fma_steps!(kc, ap, bp, MR, c);
        let n = (place.lanes - q * NR).min(NR);
        // SAFETY: caller's contract.
        super::interleave::ilv_group::<S>(&c, &zips, n, &mut at, place, y);
    }
}

/// `f32_gemm_16x8_avx512`: the narrow tile ([`f32_gemm_tile_narrow_avx512`]) on a [`TileDst`].
pub fn f32_gemm_16x8_avx512(
    kc: usize,
    a: &[f32],
    b: &[f32],
    panels: (usize, usize),
    c: &mut TileDst<'_, f32>,
) {
    by_live_rows!(f32_gemm_tile_narrow_avx512, c, kc, a, b, panels)
}

/// `f32_gemm_16x16_indirect_avx512`: [`f32_gemm_indirect_avx512`] on a [`TileDst`].
pub fn f32_gemm_16x16_indirect_avx512(
    kc: usize,
    a: &[f32],
    src: &[f32],
    base: (usize, usize),
    offs: &[usize],
    c: &mut TileDst<'_, f32>,
) {
    by_live_rows!(f32_gemm_indirect_avx512, c, kc, a, src, base, offs)
}

/// `f32_wino1_f2_avx512`: the fused F(2, 2) kernel ([`winograd::Wino1F2Fn`]) for AVX-512: 8
/// rows × 3 products = 24 zmm accumulators, each `V` vector loaded once for the 8 rows and
/// each `U` value an embedded broadcast; the even and odd outputs are interleaved by two
/// `vpermt2ps` and stored as two full vectors.
///
/// Safe to call: it checks that the CPU has the features, that `u` holds `phases·`
/// [`winograd::F2_U`] elements, `v` `panels·phases·`[`winograd::F2_V`], that there are at most
/// [`winograd::F2_ROWS`] rows of at least `panels·32` elements and a bias per row; it panics
/// otherwise.
pub fn f32_wino1_f2_avx512(
    phases: usize,
    u: &[f32],
    v: &[f32],
    panels: usize,
    rows: &mut [&mut [f32]],
    bias: Option<&[f32]>,
) {
    assert!(detected(), "the CPU lacks AVX-512 F/BW/DQ/VL, FMA or AVX2");
    let (ptrs, live, b) = super::wino1_f2_args(phases, (u, v), panels, rows, bias);
    // SAFETY: the features are available (checked above); `u` holds phases·24 elements and `v`
    // panels·phases·48 (checked by `wino1_f2_args`); the first `live` pointers start `panels·32`
    // writable elements of distinct rows borrowed mutably for the whole call, and only those are
    // written.
    unsafe { wino1_f2(phases, u.as_ptr(), v.as_ptr(), panels, &ptrs, live, &b, bias.is_some()) }
}

/// See [`f32_wino1_f2_avx512`].
///
/// # Safety
/// The features are available; `u` holds `phases·24` elements, `v` `panels·phases·48`; the
/// first `live ≤ 8` pointers start `panels·32` writable elements each.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")]
unsafe fn wino1_f2(
    phases: usize,
    u: *const f32,
    v: *const f32,
    panels: usize,
    rows: &[*mut f32; winograd::F2_ROWS],
    live: usize,
    bias: &[f32; winograd::F2_ROWS],
    with_bias: bool,
) {
    use winograd::{F2_ROWS, F2_U, F2_V, WL};
    // Lanes 0..16 of the even sums and of the odd ones, alternating: outputs 0..16 of the
    // panel, then 16..32.
    let lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for q in 0..panels {
        let mut acc = [[_mm512_setzero_ps(); 3]; F2_ROWS];
        let vq = v.add(q * phases * F2_V);
        for p in 0..phases {
            for x in 0..3 {
                // SAFETY: p < phases and q < panels: inside `v` and `u` (caller's contract).
                let vv = _mm512_loadu_ps(vq.add(p * F2_V + x * WL));
                let up = u.add(p * F2_U + x * F2_ROWS);
                for (i, acc) in acc.iter_mut().enumerate() {
                    acc[x] = _mm512_fmadd_ps(_mm512_set1_ps(*up.add(i)), vv, acc[x]);
                }
            }
        }
        for (i, acc) in acc.iter().enumerate().take(live) {
            let mut even = _mm512_add_ps(acc[0], acc[1]);
            let mut odd = _mm512_add_ps(acc[1], acc[2]);
            if with_bias {
                let b = _mm512_set1_ps(bias[i]);
                even = _mm512_add_ps(even, b);
                odd = _mm512_add_ps(odd, b);
            }
            // SAFETY: i < live and q < panels: 32 elements from q·32 of row i are writable.
            let y = rows[i].add(q * 2 * NR);
            _mm512_storeu_ps(y, _mm512_permutex2var_ps(even, lo, odd));
            _mm512_storeu_ps(y.add(NR), _mm512_permutex2var_ps(even, hi, odd));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::x86_64 as k2;
    use crate::kernels::TileDst;

    /// A small deterministic generator (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        /// Small integers in -4..=4 (exact sums) or uniform in [-1, 1) (rounding matters).
        fn value(&mut self, small: bool) -> f32 {
            if small {
                (self.next() % 9) as f32 - 4.0
            } else {
                (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            }
        }
        fn vec(&mut self, n: usize, small: bool) -> Vec<f32> {
            (0..n).map(|_| self.value(small)).collect()
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// The naive tile from the definition: `C = init + Σ_p a·b` by one fused multiply-add per
    /// `p` in order (what the kernels promise bit for bit), then `+ bias`; columns `0..w` of
    /// each 16-column tile.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        kc: usize,
        a: &[f32],
        mr: usize,
        nrows: usize,
        read_b: &dyn Fn(usize, usize, usize) -> f32,
        panels: usize,
        rows: &mut [Vec<f32>],
        accumulate: bool,
        bias: Option<&[f32]>,
        w: usize,
    ) {
        for (i, row) in rows.iter_mut().enumerate().take(nrows) {
            for q in 0..panels {
                for j in 0..w {
                    let mut s = if accumulate { row[q * NR + j] } else { 0.0 };
                    for p in 0..kc {
                        s = a[p * mr + i].mul_add(read_b(q, p, j), s);
                    }
                    row[q * NR + j] = bias.map_or(s, |b| s + b[i]);
                }
            }
        }
    }

    /// An AVX2 tile call: `(kc, weights of row stride 6, destination)`.
    type Avx2Tile<'f> = &'f dyn Fn(usize, &[f32], &mut TileDst<'_, f32>);

    /// The same tile from the AVX2 kernels (6 rows at a time, the weights repacked to row
    /// stride 6), by `run(kc, a6, tile)`.
    #[allow(clippy::too_many_arguments)]
    fn by_avx2(
        kc: usize,
        a: &[f32],
        mr: usize,
        nrows: usize,
        rows: &mut [Vec<f32>],
        accumulate: bool,
        bias: Option<&[f32]>,
        run: Avx2Tile<'_>,
    ) {
        for g in (0..nrows).step_by(6) {
            let live = (nrows - g).min(6);
            let mut a6 = vec![0.0; kc * 6];
            for p in 0..kc {
                for i in 0..live {
                    a6[p * 6 + i] = a[p * mr + g + i];
                }
            }
            let width = rows[0].len();
            let mut spare: Vec<Vec<f32>> = vec![vec![0.0; width]; 6 - live];
            let (_, rest) = rows.split_at_mut(g);
            let mut it = rest
                .iter_mut()
                .take(live)
                .map(|r| r.as_mut_slice())
                .chain(spare.iter_mut().map(|r| r.as_mut_slice()));
            let rs: [&mut [f32]; crate::kernels::MAX_MR] =
                std::array::from_fn(|i| if i < 6 { it.next().expect("6 rows") } else { Default::default() });
            let bias6 = bias.map(|b| std::array::from_fn(|i| if i < live { b[g + i] } else { 0.0 }));
            let mut c = TileDst { rows: rs, accumulate, bias: bias6, live: 6 };
            run(kc, &a6, &mut c);
        }
    }

    /// Every ROWS, panel count, kc, bias and accumulate setting, small-integer and random
    /// data: the packed (or indirect) tile against the naive loop and the AVX2 kernels, bit
    /// for bit, and rows past ROWS and columns past the panels untouched.
    fn check_tiles<const ROWS: usize>(indirect: bool, narrow: bool) {
        if !detected() {
            return;
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15
            ^ ((ROWS as u64) << 8)
            ^ u64::from(indirect)
            ^ (u64::from(narrow) << 1));
        let w = if narrow { 8 } else { NR };
        for small in [true, false] {
            for panels in 0..=3usize {
                for kc in (0..=9).chain([37]) {
                    for (accumulate, with_bias) in
                        [(false, false), (false, true), (true, false), (true, true)]
                    {
                        let mr = ROWS + rng.below(3);
                        let extra = rng.below(3);
                        let a = rng.vec(kc * mr + extra, small);
                        let bias = rng.vec(ROWS, small);
                        let bias = with_bias.then_some(&bias[..]);
                        // Packed: panels b_step apart. Indirect: one source, rows at offsets.
                        let b_step = kc * NR + rng.below(3) * 5;
                        let extra = rng.below(4);
                        let b = rng.vec(panels.saturating_sub(1) * b_step + kc * NR + extra, small);
                        let base = rng.below(5);
                        let offs: Vec<usize> = (0..kc).map(|_| rng.below(40)).collect();
                        let src = rng.vec(base + panels * NR + 40 + 16, small);
                        let read_b = |q: usize, p: usize, j: usize| {
                            if indirect {
                                src[base + q * NR + offs[p] + j]
                            } else {
                                b[q * b_step + p * NR + j]
                            }
                        };
                        let width = panels * NR + 3;
                        let init: Vec<Vec<f32>> = (0..ROWS + 2).map(|_| rng.vec(width, small)).collect();
                        let mut got = init.clone();
                        {
                            let mut rs: Vec<&mut [f32]> = got.iter_mut().map(|r| r.as_mut_slice()).collect();
                            match (indirect, narrow) {
                                (true, _) => f32_gemm_indirect_avx512::<ROWS>(
                                    kc,
                                    &a,
                                    &src,
                                    (base, panels),
                                    &offs,
                                    &mut rs,
                                    accumulate,
                                    bias,
                                    mr,
                                ),
                                (false, false) => f32_gemm_tile_avx512::<ROWS>(
                                    kc,
                                    &a,
                                    &b,
                                    (panels, b_step),
                                    &mut rs,
                                    accumulate,
                                    bias,
                                    mr,
                                ),
                                (false, true) => f32_gemm_tile_narrow_avx512::<ROWS>(
                                    kc,
                                    &a,
                                    &b,
                                    (panels, b_step),
                                    &mut rs,
                                    accumulate,
                                    bias,
                                    mr,
                                ),
                            }
                        }
                        let mut want = init.clone();
                        naive(kc, &a, mr, ROWS, &read_b, panels, &mut want, accumulate, bias, w);
                        let case = format!(
                            "ROWS={ROWS} mr={mr} kc={kc} panels={panels} acc={accumulate} bias={with_bias} small={small}"
                        );
                        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                            assert_eq!(bits(g), bits(w), "row {i} vs naive: {case}");
                        }
                        let mut avx2 = init.clone();
                        by_avx2(kc, &a, mr, ROWS, &mut avx2, accumulate, bias, &|kc, a6, c| match (
                            indirect, narrow,
                        ) {
                            (true, _) => {
                                k2::f32_gemm_6x16_indirect_avx2_fma(kc, a6, &src, (base, panels), &offs, c)
                            }
                            (false, false) => k2::f32_gemm_6x16_avx2_fma(kc, a6, &b, (panels, b_step), c),
                            (false, true) => k2::f32_gemm_6x8_avx2_fma(kc, a6, &b, (panels, b_step), c),
                        });
                        for (i, (g, w)) in got.iter().zip(&avx2).enumerate() {
                            assert_eq!(bits(g), bits(w), "row {i} vs AVX2: {case}");
                        }
                    }
                }
            }
        }
    }

    macro_rules! tile_tests {
        ($($name:ident: $rows:literal,)*) => {$(
            #[test]
            fn $name() {
                check_tiles::<$rows>(false, false);
                check_tiles::<$rows>(false, true);
                check_tiles::<$rows>(true, false);
            }
        )*};
    }

    tile_tests! {
        tiles_1: 1,
        tiles_2: 2,
        tiles_4: 4,
        tiles_5: 5,
        tiles_6: 6,
        tiles_7: 7,
        tiles_8: 8,
        tiles_9: 9,
        tiles_11: 11,
        tiles_12: 12,
        tiles_13: 13,
        tiles_14: 14,
        tiles_15: 15,
        tiles_16: 16,
    }

    /// The `TileDst` entry points run a kernel of the live rows (at least 4): for every live
    /// count, the live rows equal the 16-row kernel's bit for bit, and rows from
    /// max(live, 4) on are left as they were.
    /// The interleaving tile kernel equals the plain tile followed by the portable
    /// interleaving store, bit for bit, on every output (written or not): runs of 2, 4 and
    /// 8, whole and partial last tiles, accumulating or not, 1-D places and result rows that
    /// change inside a tile, output rows that do not exist, outputs cut at row ends.
    #[test]
    fn gemm_ilv_equals_the_tile_then_the_portable_store() {
        if !detected() {
            return;
        }
        let mut rng = Rng(0x1f1e_2024);
        for case in 0..300 {
            let s = [2, 4, 8][case % 3];
            let (kc, panels) = (1 + rng.below(40), 1 + rng.below(3));
            let runs = 1 + rng.below(MR / s);
            let lanes = (panels - 1) * NR + 1 + rng.below(NR);
            let accumulate = case % 2 == 0;
            let a = rng.vec(kc * MR, true);
            let b = rng.vec(kc * NR * panels, true);
            let start = rng.vec(MR * panels * NR, true);
            let two_d = case % 4 < 2;
            let (width, rows, step) = if two_d {
                (16 + rng.below(30), 3 + rng.below(5), 1 + rng.below(3))
            } else {
                (usize::MAX, 1, 0)
            };
            let cols = s * 8 + rng.below(3 * s * 8);
            let planes = runs;
            let mut place = IlvPlace::new();
            (place.s, place.runs, place.lanes, place.width, place.cols, place.rows, place.step) =
                (s, runs, lanes, width, cols, rows, step);
            place.first = if two_d { rng.below(width) } else { rng.below(4) };
            place.d = rng.below(2 * s) as isize - s as isize;
            for u in 0..runs {
                place.row[u] = rng.below(rows + 2) as isize - 1;
                place.at[u] = ((u * rows) as isize + place.row[u]) * cols as isize;
                place.bias[u] = rng.value(true);
            }
            let len = planes * rows * cols;
            // The plain tiles, then the portable store.
            let mut tiles = start.clone();
            {
                let mut it = tiles.chunks_exact_mut(panels * NR);
                let rows: [&mut [f32]; MR] = std::array::from_fn(|_| it.next().unwrap());
                let mut c = TileDst { rows, accumulate, bias: None, live: MR };
                f32_gemm_16x16_avx512(kc, &a, &b, (panels, kc * NR), &mut c);
            }
            let mut want = vec![-1.0f32; len];
            let trs: Vec<&[f32]> = tiles.chunks_exact(panels * NR).collect();
            generic::ilv_store(&trs, &place, &mut want);
            // The interleaving kernel.
            let mut held = start.clone();
            let mut got = vec![-1.0f32; len];
            let mut it = held.chunks_exact_mut(panels * NR);
            let rows: [&mut [f32]; MR] = std::array::from_fn(|_| it.next().unwrap());
            let mut c = TileDst { rows, accumulate, bias: None, live: MR };
            f32_gemm_ilv_avx512(kc, &a, &b, (panels, kc * NR), &mut c, &place, &mut got);
            assert_eq!(
                bits(&got),
                bits(&want),
                "case {case}: s {s}, {runs} runs, {lanes} lanes, width {width}"
            );
        }
    }

    #[test]
    fn live_rows_pick_a_kernel_of_that_many_rows() {
        if !detected() {
            return;
        }
        let mut rng = Rng(0x51ce_0f1e_5eed_0001);
        let (kc, panels) = (37, 2);
        let a = rng.vec(kc * MR, false);
        let b = rng.vec(panels * kc * NR, false);
        let width = panels * NR;
        let mut full = vec![vec![0f32; width]; MR];
        {
            let mut rs: Vec<&mut [f32]> = full.iter_mut().map(|r| r.as_mut_slice()).collect();
            f32_gemm_tile_avx512::<16>(kc, &a, &b, (panels, kc * NR), &mut rs, false, None, MR);
        }
        for live in 1..=MR {
            let mut got = vec![vec![-1f32; width]; MR];
            {
                let mut it = got.iter_mut().map(|r| r.as_mut_slice());
                let rows =
                    std::array::from_fn(
                        |i| if i < MR { it.next().expect("row") } else { Default::default() },
                    );
                let mut c = TileDst { rows, accumulate: false, bias: None, live };
                f32_gemm_16x16_avx512(kc, &a, &b, (panels, kc * NR), &mut c);
            }
            for (i, row) in got.iter().enumerate() {
                if i < live {
                    assert_eq!(bits(row), bits(&full[i]), "live {live}: row {i}");
                } else if i >= live.max(4) {
                    assert!(row.iter().all(|&v| v == -1.0), "live {live}: row {i} was written");
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "indirect row outside the source")]
    fn indirect_row_past_the_source_panics() {
        if !detected() {
            panic!("indirect row outside the source");
        }
        let (a, src) = (vec![1.0; 4], vec![1.0; 40]);
        let mut row = vec![0.0; 16];
        let mut rows = [row.as_mut_slice()];
        f32_gemm_indirect_avx512::<1>(2, &a, &src, (0, 1), &[0, 25], &mut rows, false, None, 1);
    }

    #[test]
    #[should_panic(expected = "tile row shorter than the tiles")]
    fn short_row_panics() {
        if !detected() {
            panic!("tile row shorter than the tiles");
        }
        let (a, b) = (vec![1.0; 8], vec![1.0; 64]);
        let (mut r0, mut r1) = (vec![0.0; 32], vec![0.0; 31]);
        let mut rows = [r0.as_mut_slice(), r1.as_mut_slice()];
        f32_gemm_tile_avx512::<2>(2, &a, &b, (2, 32), &mut rows, false, None, 2);
    }

    #[test]
    fn copy_panel_matches_avx2() {
        if !detected() {
            return;
        }
        let mut rng = Rng(7);
        let src = rng.vec(300, false);
        for runs in [vec![(0, 3)], vec![(0, 0), (5, 17), (9, 2)], vec![]] {
            for nrows in [0, 1, 5] {
                let rows: Vec<usize> = (0..nrows).map(|_| rng.below(250)).collect();
                let init = rng.vec(nrows.max(1) * NR + 16, false);
                let (mut got, mut want, mut avx2) = (init.clone(), init.clone(), init.clone());
                f32_copy_panel_avx512(&src, &rows, &runs, &mut got);
                generic::copy_panel::<f32, NR>(&src, &rows, &runs, &mut want);
                k2::f32_copy_panel_avx2(&src, &rows, &runs, &mut avx2);
                assert_eq!(bits(&got), bits(&want), "{runs:?} {rows:?}");
                assert_eq!(bits(&got), bits(&avx2), "{runs:?} {rows:?}");
            }
        }
    }

    #[test]
    fn transpose_panel_matches_generic_and_avx2() {
        if !detected() {
            return;
        }
        let mut rng = Rng(11);
        let src = rng.vec(400, false);
        for len in (0..=40).chain([63, 64, 65]) {
            let rows: [usize; NR] = std::array::from_fn(|_| rng.below(src.len() - len + 1));
            let init = rng.vec(len * NR + 5, false);
            let (mut got, mut want, mut avx2) = (init.clone(), init.clone(), init.clone());
            f32_transpose_panel_avx512(&src, &rows, len, &mut got);
            generic::transpose_panel(&src, &rows, len, &mut want);
            k2::f32_transpose_panel_avx2(&src, &rows, len, &mut avx2);
            assert_eq!(bits(&got), bits(&want), "len {len}");
            assert_eq!(bits(&got), bits(&avx2), "len {len}");
        }
    }

    #[test]
    fn fma_peak_runs() {
        if !detected() {
            return;
        }
        let v = f32_fma_peak_avx512(1000);
        assert!(v.is_finite() && v > 0.0);
    }

    #[test]
    fn winograd_transforms_equal_the_portable_ones() {
        if !detected() {
            return;
        }
        let mut rng = Rng(13);
        for vstride in [16, 21] {
            let d: [Lanes<f32>; WX] =
                std::array::from_fn(|_| std::array::from_fn(|_| rng.value(false) * 100.0));
            let (mut got, mut want) = (vec![0.0; WX * vstride], vec![0.0; WX * vstride]);
            f32_wino_input_avx512(&d, &mut got, vstride);
            winograd::wino_input_generic(&d, &mut want, vstride);
            assert_eq!(bits(&got), bits(&want));
            let m = rng.vec(WX * vstride, false);
            let (mut got, mut want) = ([[0.0; 16]; WM * WM], [[0.0; 16]; WM * WM]);
            f32_wino_output_avx512(&m, vstride, 0.3, &mut got);
            winograd::wino_output_generic(&m, vstride, 0.3, &mut want);
            assert_eq!(bits(got.as_flattened()), bits(want.as_flattened()));
            let (mut got, mut want) = (vec![0.0; WX * vstride], vec![0.0; WX * vstride]);
            f32_wino2_input_avx512(&d, &mut got, vstride);
            winograd::wino2_input_generic(&d, &mut want, vstride);
            assert_eq!(bits(&got), bits(&want));
            let (mut got, mut want) = ([[0.0; 16]; WM * WM], [[0.0; 16]; WM * WM]);
            f32_wino2_output_avx512(&m, vstride, -0.7, &mut got);
            winograd::wino2_output_generic(&m, vstride, -0.7, &mut want);
            assert_eq!(bits(got.as_flattened()), bits(want.as_flattened()));
        }
    }

    #[test]
    fn winograd_gather_equals_the_portable_one() {
        if !detected() {
            return;
        }
        let mut rng = Rng(29);
        let x = rng.vec(600, false);
        for (p0, row_step, a, lanes) in [
            (0, 70, 6, (0, 16)),
            (5, 70, 6, (3, 16)),
            (2, 64, 5, (0, 14)),
            (1, 66, 6, (14, 16)),
            (0, 67, 5, (7, 8)),
        ] {
            let (mut got, mut want) = ([[0.5f32; 16]; WX], [[0.5f32; 16]; WX]);
            f32_wino_gather_avx512(&x, p0, row_step, a, lanes, &mut got);
            winograd::wino_gather_generic(&x, p0, row_step, a, lanes, &mut want);
            assert_eq!(bits(got.as_flattened()), bits(want.as_flattened()), "{p0} {row_step} {a} {lanes:?}");
        }
        // The last element of `x` read by the last lane, and nothing past it.
        let end = x.len() - 1 - (5 * 58 + 5 + 4 * 15);
        let mut got = [[0.0f32; 16]; WX];
        f32_wino_gather_avx512(&x, end, 58, 6, (0, 16), &mut got);
        assert_eq!(got[35][15].to_bits(), x[x.len() - 1].to_bits());
    }

    #[test]
    fn winograd_scatter_equals_the_portable_one() {
        if !detected() {
            return;
        }
        let mut rng = Rng(31);
        let y: [Lanes<f32>; WM * WM] = std::array::from_fn(|_| std::array::from_fn(|_| rng.value(false)));
        for (lanes, row_step) in
            [((0, 16), 64), ((0, 14), 60), ((2, 16), 70), ((3, 9), 24), ((5, 6), 4), ((15, 16), 9)]
        {
            let len = 3 * row_step + 4 * (lanes.1 - lanes.0);
            let (mut got, mut want) = (vec![0.25f32; len], vec![0.25f32; len]);
            f32_wino_scatter_avx512(&y, lanes, &mut got, row_step);
            winograd::wino_scatter_generic(&y, lanes, &mut want, row_step);
            assert_eq!(bits(&got), bits(&want), "{lanes:?} {row_step}");
        }
    }

    #[test]
    fn dw_copy_and_split_equal_the_portable_ones() {
        if !detected() {
            return;
        }
        let mut rng = Rng(17);
        for n in [0, 1, 7, 8, 9, 31, 100] {
            let src = rng.vec(2 * n, false);
            let mut got = vec![0.0; 2 * n];
            f32_dw_copy_avx512(&src, &mut got);
            assert_eq!(bits(&got), bits(&src));
            let (mut ev, mut od, mut ev2, mut od2) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
            f32_dw_split2_avx512(&src, &mut ev, &mut od);
            generic::dw_split2(&src, &mut ev2, &mut od2);
            assert_eq!((bits(&ev), bits(&od)), (bits(&ev2), bits(&od2)));
        }
    }

    /// A random depthwise row problem on an `h × win` plane: kernel `kh × kl`, inner stride,
    /// dilation and begin padding, output row `oy` (outer stride 1, outer padding 1).
    struct DwCase {
        x: Vec<f32>,
        rows: Vec<Option<usize>>,
        w: Vec<f32>,
        table: Vec<Option<usize>>,
        kl: usize,
        d: usize,
        s: usize,
        pb: usize,
        lo: usize,
        hi: usize,
        wout: usize,
        bias: f32,
    }

    fn dw_case(rng: &mut Rng, small: bool, s: usize) -> DwCase {
        let (kh, kl, d) = (1 + rng.below(3), 1 + rng.below(5), 1 + rng.below(2));
        let (pb, pe) = (rng.below(3), rng.below(3));
        let span = (kl - 1) * d + 1;
        let win = span + rng.below(70);
        let h = 4;
        let cbase = 3;
        let x = rng.vec(cbase + h * win + 5, small);
        let wout = (win + pb + pe - span) / s + 1;
        let oy = rng.below(h);
        let rows = (0..kh).map(|i| (oy + i).checked_sub(1).filter(|&iy| iy < h).map(|iy| iy * win)).collect();
        let table: Vec<Option<usize>> = (0..wout)
            .flat_map(|ox| (0..kl).map(move |t| (ox * s + t * d).checked_sub(pb).filter(|&i| i < win)))
            .collect();
        let interior = |ox: usize| ox * s >= pb && ox * s + (kl - 1) * d - pb < win;
        let lo = (0..wout).find(|&o| interior(o)).unwrap_or(wout);
        let hi = (lo..wout).take_while(|&o| interior(o)).last().map_or(lo, |o| o + 1);
        let w = rng.vec(kh * kl, small);
        DwCase { x, rows, w, table, kl, d, s, pb, lo, hi, wout, bias: rng.value(small) }
    }

    fn dw_row_of(c: &DwCase) -> DwRow<'_, f32> {
        DwRow {
            x: &c.x,
            cbase: 3,
            rows: &c.rows,
            w: &c.w,
            kl: c.kl,
            d: c.d,
            s: c.s,
            pb: c.pb,
            table: &c.table,
            lo: c.lo,
            hi: c.hi,
            padv: 0.25,
            bias: c.bias,
        }
    }

    /// The recompiled row body equals the portable fused body bit for bit, always.
    #[test]
    fn dw_row_equals_the_portable_fused_body() {
        if !detected() {
            return;
        }
        let mut rng = Rng(19);
        for n in 0..600 {
            let c = dw_case(&mut rng, n % 2 == 0, 1 + n % 3);
            let r = dw_row_of(&c);
            let (mut got, mut want) = (vec![0.0; c.wout], vec![0.0; c.wout]);
            f32_dw_row_avx512(&r, &mut got);
            generic::dw_row_body::<f32, true>(&r, &mut want);
            assert_eq!(bits(&got), bits(&want), "case {n}");
        }
    }

    /// Against the AVX2 row kernel: equal bit for bit on small integers (exact sums) and,
    /// on random data, wherever the AVX2 kernel sums taps in the portable order (strides 2
    /// and 3, one tap per kernel row, rows of fewer than 8 interior outputs). At stride 1 with
    /// two or more taps per row its interior splits even and odd taps into two accumulators
    /// added at the end, so random sums may differ in the last bits there.
    #[test]
    fn dw_row_vs_avx2() {
        if !detected() {
            return;
        }
        let mut rng = Rng(23);
        let mut differ = 0;
        for n in 0..900 {
            let small = (n / 3) % 3 == 0;
            let c = dw_case(&mut rng, small, 1 + n % 3);
            let r = dw_row_of(&c);
            let (mut got, mut avx2) = (vec![0.0; c.wout], vec![0.0; c.wout]);
            f32_dw_row_avx512(&r, &mut got);
            k2::f32_dw_row_avx2_fma(&r, &mut avx2);
            let same_order = c.s != 1 || c.kl == 1 || c.hi - c.lo < 8;
            if small || same_order {
                assert_eq!(
                    bits(&got),
                    bits(&avx2),
                    "case {n}: s={} kl={} lo..hi={}..{}",
                    c.s,
                    c.kl,
                    c.lo,
                    c.hi
                );
            } else {
                differ += usize::from(bits(&got) != bits(&avx2));
            }
        }
        eprintln!("dw_row: {differ} stride-1 random rows differ from the AVX2 kernel in the last bits");
    }

    /// A random band: `rows` output rows of `wout`, kernel `kh × kw`, outer stride and
    /// dilation, inner tap columns `j·dw`.
    struct PlaneCase {
        x: Vec<f32>,
        cols: Vec<usize>,
        kh: usize,
        sh: usize,
        dh: usize,
        w: Vec<f32>,
        bias: f32,
        wout: usize,
        rows: usize,
        pitch: usize,
    }

    fn plane_case(rng: &mut Rng, small: bool, three: bool) -> PlaneCase {
        let (kh, kw) = if three { (3, 3) } else { (1 + rng.below(4), 1 + rng.below(4)) };
        let (sh, dh, dw) = (1 + rng.below(2), if three { 1 } else { 1 + rng.below(2) }, 1 + rng.below(2));
        let wout = 1 + rng.below(40);
        let rows = 1 + rng.below(9);
        let cols: Vec<usize> = (0..kw).map(|j| j * dw).collect();
        let pitch = wout + (kw - 1) * dw + rng.below(3);
        let n = 2 + ((rows - 1) * sh + (kh - 1) * dh) * pitch + (kw - 1) * dw + wout;
        PlaneCase {
            x: rng.vec(n, small),
            cols,
            kh,
            sh,
            dh,
            w: rng.vec(kh * kw, small),
            bias: rng.value(small),
            wout,
            rows,
            pitch,
        }
    }

    fn plane_of(c: &PlaneCase) -> DwPlane<'_, f32> {
        DwPlane {
            x: &c.x,
            base: 2,
            pitch: c.pitch,
            cols: &c.cols,
            kh: c.kh,
            sh: c.sh,
            dh: c.dh,
            w: &c.w,
            bias: c.bias,
            wout: c.wout,
        }
    }

    /// The recompiled band body equals the portable fused body bit for bit, always; and the
    /// AVX2 band kernel on small integers, and on random data wherever the AVX2 kernel sums in
    /// the portable order (all but its unrolled 3×3 kernel, which keeps one partial sum per
    /// kernel row, the bias first, and may differ in the last bits).
    #[test]
    fn dw_plane_equals_the_portable_fused_body_and_avx2() {
        if !detected() {
            return;
        }
        let mut rng = Rng(29);
        let mut differ = 0;
        for n in 0..900 {
            let small = n % 3 == 0;
            let c = plane_case(&mut rng, small, n % 4 == 1);
            let p = plane_of(&c);
            let len = c.rows * c.wout;
            let (mut got, mut want, mut avx2) = (vec![0.0; len], vec![0.0; len], vec![0.0; len]);
            f32_dw_plane_avx512(&p, &mut got);
            generic::dw_plane_body::<f32, true>(&p, &mut want);
            k2::f32_dw_plane_avx2_fma(&p, &mut avx2);
            assert_eq!(bits(&got), bits(&want), "case {n} vs portable");
            let band3 = c.kh == 3 && c.cols.len() == 3 && c.dh == 1 && c.sh <= 2 && c.wout >= 8;
            if small || !band3 {
                assert_eq!(bits(&got), bits(&avx2), "case {n} vs AVX2: kh={} kw={}", c.kh, c.cols.len());
            } else {
                differ += usize::from(bits(&got) != bits(&avx2));
            }
        }
        eprintln!("dw_plane: {differ} random 3×3 bands differ from the AVX2 kernel in the last bits");
    }

    /// GFLOP/s of the packed tile per ROWS (kc = 256, A in L1; 32 panels: B (512 KiB) in L2,
    /// as asked; 256 panels: B (4 MiB) in L3), best and median of many calls, against the
    /// AVX2 6×16 tile and the FMA peak probes. Run with
    /// `cargo test --release -p convkit tile_rows_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn tile_rows_speed() {
        use std::time::Instant;
        if !detected() {
            return;
        }
        const KC: usize = 256;
        const B_STEP: usize = KC * NR + 16;
        const WORK: usize = 3000 * 32;
        let mut rng = Rng(31);
        let b = rng.vec(255 * B_STEP + KC * NR, false);
        let a = rng.vec(KC * 16, false);
        /// (best, median) GFLOP/s over `calls` calls.
        fn best(flop: f64, calls: usize, mut f: impl FnMut()) -> (f64, f64) {
            let mut t: Vec<f64> = (0..calls)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    t.elapsed().as_secs_f64()
                })
                .collect();
            t.sort_by(f64::total_cmp);
            (flop / t[0] / 1e9, flop / t[calls / 2] / 1e9)
        }
        fn tile<const R: usize>(a: &[f32], b: &[f32], panels: usize) -> (f64, f64) {
            let mut out = vec![vec![0.0f32; panels * NR]; R];
            let mut rs: Vec<&mut [f32]> = out.iter_mut().map(|r| r.as_mut_slice()).collect();
            let flop = (2 * R * NR * KC * panels) as f64;
            best(flop, WORK / panels, || {
                f32_gemm_tile_avx512::<R>(KC, a, b, (panels, B_STEP), &mut rs, false, None, R);
                std::hint::black_box(&mut rs);
            })
        }
        fn avx2(a: &[f32], b: &[f32], panels: usize) -> (f64, f64) {
            let mut out = vec![vec![0.0f32; panels * NR]; 6];
            let mut it = out.iter_mut().map(|r| r.as_mut_slice());
            let rows: [&mut [f32]; crate::kernels::MAX_MR] =
                std::array::from_fn(|i| if i < 6 { it.next().expect("6 rows") } else { Default::default() });
            let mut c = TileDst { rows, accumulate: false, bias: None, live: 6 };
            best((2 * 6 * NR * KC * panels) as f64, WORK / panels, || {
                k2::f32_gemm_6x16_avx2_fma(KC, &a[..KC * 6], b, (panels, B_STEP), &mut c);
                std::hint::black_box(&mut c);
            })
        }
        let peak = |flop_per_iter: f64, f: fn(u64) -> f32| {
            let iters = 1u64 << 20;
            let t = (0..20)
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(f(std::hint::black_box(iters)));
                    t.elapsed().as_secs_f64()
                })
                .fold(f64::MAX, f64::min);
            flop_per_iter * iters as f64 / t / 1e9
        };
        let peak512 = peak(FMA_PEAK_FLOP_PER_ITER_AVX512, f32_fma_peak_avx512);
        let peak256 = peak(192.0, k2::f32_fma_peak_avx2_fma);
        eprintln!("FMA peak probe: avx512 {peak512:.1} GFLOP/s, avx2 {peak256:.1} GFLOP/s (1 thread)");
        for panels in [32, 256] {
            eprintln!("kc = {KC}, {panels} panels: best GFLOP/s (% of peak), median GFLOP/s (% of peak)");
            let line = |name: &str, (g, m): (f64, f64)| {
                let (gp, mp) = (100.0 * g / peak512, 100.0 * m / peak512);
                eprintln!("  {name:<13} {g:6.1} ({gp:5.1}%)  {m:6.1} ({mp:5.1}%)")
            };
            line("avx2 6x16", avx2(&a, &b, panels));
            line("avx512 6x16", tile::<6>(&a, &b, panels));
            line("avx512 8x16", tile::<8>(&a, &b, panels));
            line("avx512 12x16", tile::<12>(&a, &b, panels));
            line("avx512 14x16", tile::<14>(&a, &b, panels));
            line("avx512 16x16", tile::<16>(&a, &b, panels));
        }
    }
}
