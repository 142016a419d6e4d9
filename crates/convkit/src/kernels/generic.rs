//! Portable micro-kernels, generic over the element type, and the portable kernel set.

use super::{Geometry, KernelSet, TileDst};
use crate::isa::Isa;
use crate::scalar::Scalar;

/// The portable kernel set: `MR × NR` tiles (6 × 16, as the AVX2 set, so both pack alike).
pub fn kernel_set<T: Scalar>() -> KernelSet<T> {
    kernel_set_with::<T, 6, 16>()
}

/// The portable kernels with `MR × NR` tiles: any geometry, so that tests can run every
/// implementation on tile shapes no SIMD level has.
pub fn kernel_set_with<T: Scalar, const MR: usize, const NR: usize>() -> KernelSet<T> {
    const { assert!(MR <= super::MAX_MR && NR <= super::MAX_NR && NR >= 2) };
    KernelSet {
        isa: Isa::Generic,
        geometry: Geometry { mr: MR, nr: NR, lanes: 1 },
        gemm: gemm::<T, MR, NR>,
        gemm_narrow: gemm::<T, MR, NR>,
        gemm_strided: None,
        gemm_indirect: gemm_indirect::<T, MR, NR>,
        gemm_indirect_small: (MR, gemm_indirect::<T, MR, NR>),
        copy_panel: copy_panel::<T, NR>,
        transpose_panel: transpose_panel::<T>,
        wino: (super::winograd::wino_input_generic::<T>, super::winograd::wino_output_generic::<T>),
        wino2: (super::winograd::wino2_input_generic::<T>, super::winograd::wino2_output_generic::<T>),
        wino1: (super::winograd::wino1_input_generic::<T>, super::winograd::wino1_output_generic::<T>),
        wino_grad: super::winograd::wino_grad_dy_generic::<T>,
        wino_gather: None,
        wino_scatter: None,
        dw_row: dw_row::<T>,
        dw_plane: dw_plane::<T>,
        dw_rows: None,
        dw_copy: dw_copy::<T>,
        dw_split2: dw_split2::<T>,
        grouped: Some((64, super::grouped::grouped_band::<T>)),
        fma_peak: None,
        interleave: interleave::<T>,
        gemm_ilv: None,
        wino1_f2: None,
    }
}

/// `f32`/`f64` GEMM tile in plain Rust (`gemm_MRxNR:generic`), panel after panel.
pub fn gemm<T: Scalar, const MR: usize, const NR: usize>(
    kc: usize,
    a: &[T],
    b: &[T],
    (panels, b_step): (usize, usize),
    c: &mut TileDst<'_, T>,
) {
    for q in 0..panels {
        let b = &b[q * b_step..];
        let mut acc = start_tile::<T, MR, NR>(c, q * NR);
        for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)).take(kc) {
            let bp: &[T; NR] = bp.try_into().expect("NR elements");
            fma_rows(&mut acc, ap, bp);
        }
        finish_tile(acc, c, q * NR);
    }
}

/// The accumulators a tile at column `col` starts from: zero, or the destination's contents.
fn start_tile<T: Scalar, const MR: usize, const NR: usize>(c: &TileDst<'_, T>, col: usize) -> [[T; NR]; MR] {
    let mut acc = [[T::ZERO; NR]; MR];
    if c.accumulate {
        for (a, row) in acc.iter_mut().zip(&c.rows) {
            *a = row[col..][..NR].try_into().expect("NR elements");
        }
    }
    acc
}

/// `acc[i][j] += a[i]·b[j]`, unfused.
fn fma_rows<T: Scalar, const MR: usize, const NR: usize>(acc: &mut [[T; NR]; MR], ap: &[T], bp: &[T; NR]) {
    for (row, &av) in acc.iter_mut().zip(ap) {
        for (r, &bv) in row.iter_mut().zip(bp) {
            *r = *r + av * bv;
        }
    }
}

/// Add the bias, if any, and store the accumulators at column `col`.
fn finish_tile<T: Scalar, const MR: usize, const NR: usize>(
    mut acc: [[T; NR]; MR],
    c: &mut TileDst<'_, T>,
    col: usize,
) {
    if let Some(bias) = c.bias {
        for (row, b) in acc.iter_mut().zip(bias) {
            row.iter_mut().for_each(|v| *v = *v + b);
        }
    }
    for (row, dst) in acc.iter().zip(c.rows.iter_mut()) {
        dst[col..][..NR].copy_from_slice(row);
    }
}

/// One output row of a per-channel (depthwise) convolution, see [`dw_row`].
pub struct DwRow<'a, T> {
    /// The whole input tensor.
    pub x: &'a [T],
    /// Offset of this channel's plane in `x`.
    pub cbase: usize,
    /// For each tap of the outer axes (all but the innermost), the offset of the input row it
    /// reads within the plane, or `None` where that row is padding.
    pub rows: &'a [Option<usize>],
    /// This channel's kernel, `[outer taps][inner taps]`.
    pub w: &'a [T],
    /// Inner-axis kernel size, dilation, stride and begin padding.
    pub kl: usize,
    /// Inner-axis dilation.
    pub d: usize,
    /// Inner-axis stride.
    pub s: usize,
    /// Inner-axis begin padding.
    pub pb: usize,
    /// Inner-axis tap table `[ox·kl + tap]` → input index (`None`: padding).
    pub table: &'a [Option<usize>],
    /// Outputs `lo..hi` read no padding on the inner axis.
    pub lo: usize,
    /// End of the interior range.
    pub hi: usize,
    /// Padding value.
    pub padv: T,
    /// Added to every output.
    pub bias: T,
}

/// Signature of a depthwise row kernel.
pub type DwRowFn<T> = fn(&DwRow<'_, T>, &mut [T]);

#[inline(always)]
fn madd<T: Scalar, const FUSED: bool>(acc: T, w: T, x: T) -> T {
    if FUSED {
        w.mul_add(x, acc)
    } else {
        acc + w * x
    }
}

/// `B` interior outputs starting at `ox`, all taps accumulated in registers.
#[inline(always)]
fn dw_block<T: Scalar, const FUSED: bool, const B: usize>(r: &DwRow<'_, T>, ox: usize, y: &mut [T]) {
    let mut acc = [T::ZERO; B];
    for (wrow, row) in r.w.chunks_exact(r.kl).zip(r.rows) {
        match row {
            Some(row) => {
                for (tl, &wv) in wrow.iter().enumerate() {
                    let base = r.cbase + row + ox * r.s + tl * r.d - r.pb;
                    if r.s == 1 {
                        let xs = &r.x[base..base + B];
                        for i in 0..B {
                            acc[i] = madd::<T, FUSED>(acc[i], wv, xs[i]);
                        }
                    } else {
                        for (i, a) in acc.iter_mut().enumerate() {
                            *a = madd::<T, FUSED>(*a, wv, r.x[base + i * r.s]);
                        }
                    }
                }
            }
            None => {
                for &wv in wrow {
                    for a in acc.iter_mut() {
                        *a = madd::<T, FUSED>(*a, wv, r.padv);
                    }
                }
            }
        }
    }
    for (dst, a) in y[ox..ox + B].iter_mut().zip(acc) {
        *dst = a + r.bias;
    }
}

/// Interior outputs `lo..hi` in blocks of `B`; the last block overlaps its neighbour rather
/// than falling back to scalar code (recomputed outputs get identical values).
#[inline(always)]
fn dw_interior<T: Scalar, const FUSED: bool, const B: usize>(
    r: &DwRow<'_, T>,
    lo: usize,
    hi: usize,
    y: &mut [T],
) {
    let mut ox = lo;
    while ox + B <= hi {
        dw_block::<T, FUSED, B>(r, ox, y);
        ox += B;
    }
    if ox < hi {
        dw_block::<T, FUSED, B>(r, hi - B, y);
    }
}

/// One output computed through the tap table (borders and short rows).
#[inline(always)]
pub(crate) fn dw_one<T: Scalar, const FUSED: bool>(r: &DwRow<'_, T>, ox: usize, y: &mut [T]) {
    let kl = r.kl;
    let mut acc = T::ZERO;
    for (wrow, row) in r.w.chunks_exact(kl).zip(r.rows) {
        for (tl, &wv) in wrow.iter().enumerate() {
            let v = match (row, r.table[ox * kl + tl]) {
                (Some(row), Some(i)) => r.x[r.cbase + row + i],
                _ => r.padv,
            };
            acc = madd::<T, FUSED>(acc, wv, v);
        }
    }
    y[ox] = acc + r.bias;
}

/// The body of every depthwise row kernel: interior outputs in register blocks of 32, 16 or
/// 8 across all taps, border outputs through the tap table. Each output sums its taps in the
/// same order on every path, so results do not depend on the blocking.
#[inline(always)]
pub fn dw_row_body<T: Scalar, const FUSED: bool>(r: &DwRow<'_, T>, y: &mut [T]) {
    let (lo, hi) = (r.lo.min(y.len()), r.hi.min(y.len()).max(r.lo.min(y.len())));
    for ox in 0..lo {
        dw_one::<T, FUSED>(r, ox, y);
    }
    match hi - lo {
        n if n >= 32 => dw_interior::<T, FUSED, 32>(r, lo, hi, y),
        n if n >= 16 => dw_interior::<T, FUSED, 16>(r, lo, hi, y),
        n if n >= 8 => dw_interior::<T, FUSED, 8>(r, lo, hi, y),
        _ => (lo..hi).for_each(|ox| dw_one::<T, FUSED>(r, ox, y)),
    }
    for ox in hi..y.len() {
        dw_one::<T, FUSED>(r, ox, y);
    }
}

/// Portable depthwise row kernel (`dw_row:generic`).
pub fn dw_row<T: Scalar>(r: &DwRow<'_, T>, y: &mut [T]) {
    dw_row_body::<T, false>(r, y)
}

/// A band of output rows of one 2-D depthwise plane whose input is read without borders:
/// output `(oy, ox)` sums `w[i·kw + j] · x[base + (oy·sh + i·dh)·pitch + cols[j] + ox]` over
/// `i < kh`, `j < kw` (taps in that order), plus `bias`. The source is a staged, padded (and
/// for strides on the inner axis, phase-split) band, or an unpadded input plane itself.
pub struct DwPlane<'a, T> {
    /// The source elements.
    pub x: &'a [T],
    /// Offset of the band's first padded row in `x`.
    pub base: usize,
    /// Elements between consecutive padded rows.
    pub pitch: usize,
    /// Per inner tap `j`, the offset of output 0's element within a padded row (`kw` entries).
    pub cols: &'a [usize],
    /// Outer kernel size.
    pub kh: usize,
    /// Outer stride.
    pub sh: usize,
    /// Outer dilation.
    pub dh: usize,
    /// The channel's kernel, `kh × kw`, already flipped where the problem asks for it.
    pub w: &'a [T],
    /// Added to every output.
    pub bias: T,
    /// Outputs per row.
    pub wout: usize,
}

impl<T> DwPlane<'_, T> {
    /// Check that every element the band reads for `rows` output rows lies in `x` and that
    /// the kernel is consistent; kernels rely on this. Panics otherwise.
    pub fn check(&self, rows: usize) {
        let kw = self.cols.len();
        assert!(self.kh >= 1 && kw >= 1 && self.sh >= 1 && self.dh >= 1, "empty kernel or zero step");
        assert_eq!(self.w.len(), self.kh * kw, "kernel size");
        if rows == 0 || self.wout == 0 {
            return;
        }
        let last_row = (rows - 1) * self.sh + (self.kh - 1) * self.dh;
        let end = last_row
            .checked_mul(self.pitch)
            .and_then(|o| o.checked_add(self.base))
            .and_then(|o| o.checked_add(self.cols.iter().copied().max().unwrap_or(0)))
            .and_then(|o| o.checked_add(self.wout));
        assert!(end.is_some_and(|e| e <= self.x.len()), "depthwise band reads past its source");
    }
}

/// Signature of a depthwise band kernel: all rows of `y` (`y.len() / wout` rows).
pub type DwPlaneFn<T> = fn(&DwPlane<'_, T>, &mut [T]);

/// Width of the portable band kernel's column blocks.
const DWB: usize = 8;

/// `R` output rows from `oy` times `DWB` outputs from `ox`: every input row the `R` rows
/// read is visited once, in order, and each of its loaded runs feeds every row that uses it,
/// so each output still sums its taps in `(i, j)` order.
#[inline(always)]
fn dw_plane_block<T: Scalar, const FUSED: bool, const R: usize>(
    p: &DwPlane<'_, T>,
    oy: usize,
    ox: usize,
    y: &mut [T],
) {
    let kw = p.cols.len();
    let span = (R - 1) * p.sh + (p.kh - 1) * p.dh + 1;
    let mut acc = [[T::ZERO; DWB]; R];
    let first = p.base + oy * p.sh * p.pitch + ox;
    for q in 0..span {
        let row = first + q * p.pitch;
        // The kernel row output row `r` reads from input row `q`, if any (divisions only
        // with dilation, once per input row).
        let wrows: [Option<usize>; R] = std::array::from_fn(|r| {
            let d = q.checked_sub(r * p.sh)?;
            let i = if p.dh == 1 { d } else { (d % p.dh == 0).then(|| d / p.dh)? };
            (i < p.kh).then_some(i * kw)
        });
        for (j, &c) in p.cols.iter().enumerate() {
            let xs: &[T; DWB] = p.x[row + c..][..DWB].try_into().expect("DWB elements");
            for (a, wr) in acc.iter_mut().zip(&wrows) {
                let Some(wr) = *wr else { continue };
                let wv = p.w[wr + j];
                for l in 0..DWB {
                    a[l] = madd::<T, FUSED>(a[l], wv, xs[l]);
                }
            }
        }
    }
    for (r, a) in acc.iter().enumerate() {
        for (dst, &v) in y[(oy + r) * p.wout + ox..][..DWB].iter_mut().zip(a) {
            *dst = v + p.bias;
        }
    }
}

/// One output of a band, taps in `(i, j)` order (rows narrower than a block).
#[inline(always)]
pub fn dw_plane_one<T: Scalar, const FUSED: bool>(p: &DwPlane<'_, T>, oy: usize, ox: usize) -> T {
    let kw = p.cols.len();
    let mut acc = T::ZERO;
    for (i, wrow) in p.w.chunks_exact(kw).enumerate() {
        let row = p.base + (oy * p.sh + i * p.dh) * p.pitch + ox;
        for (&wv, &c) in wrow.iter().zip(p.cols) {
            acc = madd::<T, FUSED>(acc, wv, p.x[row + c]);
        }
    }
    acc + p.bias
}

/// Output rows `oy..oy + R` of a band: blocks of `DWB` columns, the last overlapping its
/// neighbour (recomputed outputs get identical values), or one output at a time when the
/// rows are narrower than a block.
#[inline(always)]
fn dw_plane_rows<T: Scalar, const FUSED: bool, const R: usize>(p: &DwPlane<'_, T>, oy: usize, y: &mut [T]) {
    let wout = p.wout;
    if wout < DWB {
        for r in oy..oy + R {
            for ox in 0..wout {
                y[r * wout + ox] = dw_plane_one::<T, FUSED>(p, r, ox);
            }
        }
        return;
    }
    let mut ox = 0;
    while ox + DWB <= wout {
        dw_plane_block::<T, FUSED, R>(p, oy, ox, y);
        ox += DWB;
    }
    if ox < wout {
        dw_plane_block::<T, FUSED, R>(p, oy, wout - DWB, y);
    }
}

/// The body of the portable band kernel: rows in groups of four, then one at a time.
#[inline(always)]
pub fn dw_plane_body<T: Scalar, const FUSED: bool>(p: &DwPlane<'_, T>, y: &mut [T]) {
    if p.wout == 0 {
        return;
    }
    let rows = y.len() / p.wout;
    p.check(rows);
    let mut oy = 0;
    while oy + 4 <= rows {
        dw_plane_rows::<T, FUSED, 4>(p, oy, y);
        oy += 4;
    }
    while oy < rows {
        dw_plane_rows::<T, FUSED, 1>(p, oy, y);
        oy += 1;
    }
}

/// Portable depthwise band kernel (`dw_plane:generic`), see [`DwPlane`].
pub fn dw_plane<T: Scalar>(p: &DwPlane<'_, T>, y: &mut [T]) {
    dw_plane_body::<T, false>(p, y)
}

/// Signature of a staging copy: `dst = src` (equal lengths).
pub type DwCopyFn<T> = fn(&[T], &mut [T]);

/// Portable staging copy (`dw_copy:generic`).
pub fn dw_copy<T: Scalar>(src: &[T], dst: &mut [T]) {
    dst.copy_from_slice(src)
}

/// Signature of a stride-2 phase split: `ev[k] = src[2k]`, `od[k] = src[2k + 1]` for
/// `k < ev.len()`, where `od.len() = ev.len()` and `src.len() = 2·ev.len()`.
pub type DwSplitFn<T> = fn(&[T], &mut [T], &mut [T]);

/// Portable stride-2 phase split (`dw_split2:generic`).
pub fn dw_split2<T: Scalar>(src: &[T], ev: &mut [T], od: &mut [T]) {
    assert!(ev.len() == od.len() && src.len() == 2 * ev.len(), "phase split lengths");
    for ((e, o), g) in ev.iter_mut().zip(od.iter_mut()).zip(src.chunks_exact(2)) {
        *e = g[0];
        *o = g[1];
    }
}

/// A band of output rows of a 3×3 depthwise plane with constant padding, read straight from
/// the unpadded input: output `(oy, ox)` is
/// `((bias + Σ_j w[j]·X(oy·sh, c_j)) + Σ_j w[3 + j]·X(oy·sh + 1, c_j)) + Σ_j w[6 + j]·X(oy·sh + 2, c_j)`
/// with `c_j = ox·sw + j − pad` and each sum over `j` in order, where `X(q, c)` is
/// `x[o + c]` when `rows[q] = Some(o)` and `0 ≤ c < win`, and `padv` otherwise.
pub struct DwRows<'a, T> {
    /// The input plane.
    pub x: &'a [T],
    /// Per padded row of the band, the offset of its input row (`win` elements) in `x`, or
    /// `None` for a row of padding.
    pub rows: &'a [Option<usize>],
    /// Input row length.
    pub win: usize,
    /// Padding columns before the input row.
    pub pad: usize,
    /// Outer stride (1 or 2).
    pub sh: usize,
    /// Inner stride (1 or 2).
    pub sw: usize,
    /// The channel's 3×3 kernel, already flipped where the problem asks for it.
    pub w: &'a [T],
    /// Added to every output.
    pub bias: T,
    /// The padding constant.
    pub padv: T,
    /// Outputs per row (at least 8).
    pub wout: usize,
}

impl<T> DwRows<'_, T> {
    /// Check that the band's `rows` output rows read only rows of `x` (and padding), that the
    /// column arithmetic fits `i32` and that the kernel is consistent; kernels rely on this.
    /// Panics otherwise.
    pub fn check(&self, rows: usize) {
        assert!(matches!(self.sh, 1 | 2) && matches!(self.sw, 1 | 2), "stride 1 or 2");
        assert_eq!(self.w.len(), 9, "3×3 kernel");
        assert!(self.wout >= 8, "rows of at least 8 outputs");
        let cols = self.wout.checked_mul(self.sw).and_then(|c| c.checked_add(self.pad + 16));
        assert!(
            cols.is_some_and(|c| c <= i32::MAX as usize) && self.win <= i32::MAX as usize,
            "columns past i32"
        );
        if rows == 0 {
            return;
        }
        let need = (rows - 1) * self.sh + 3;
        assert!(self.rows.len() >= need, "band rows");
        // One branch-free pass: the furthest end of any row read (saturating, so an overflow
        // fails the bound too).
        let end =
            self.rows[..need].iter().fold(0usize, |e, o| e.max(o.map_or(0, |o| o.saturating_add(self.win))));
        assert!(end <= self.x.len(), "row past the plane");
    }
}

/// Signature of a direct 3×3 depthwise band kernel: all rows of `y` (`y.len() / wout` rows).
pub type DwRowsFn<T> = fn(&DwRows<'_, T>, &mut [T]);

/// Portable panel copy (see [`crate::kernels::PanelCopy`]).
pub fn copy_panel<T: Scalar, const NR: usize>(
    src: &[T],
    rows: &[usize],
    runs: &[(usize, usize)],
    dst: &mut [T],
) {
    for (r, &ro) in rows.iter().enumerate() {
        for &(j0, s) in runs {
            let d: &mut [T; NR] = (&mut dst[r * NR + j0..][..NR]).try_into().expect("NR elements");
            *d = src[ro + s..][..NR].try_into().expect("NR elements");
        }
    }
}

/// Portable indirect GEMM tile (see [`crate::kernels::GemmIndirect`]); the same sums in the
/// same order as [`gemm`].
pub fn gemm_indirect<T: Scalar, const MR: usize, const NR: usize>(
    kc: usize,
    a: &[T],
    src: &[T],
    (base, panels): (usize, usize),
    offs: &[usize],
    c: &mut TileDst<'_, T>,
) {
    for q in 0..panels {
        let mut acc = start_tile::<T, MR, NR>(c, q * NR);
        for (ap, &o) in a.chunks_exact(MR).zip(&offs[..kc]) {
            let bp: &[T; NR] = src[base + q * NR + o..][..NR].try_into().expect("NR elements");
            fma_rows(&mut acc, ap, bp);
        }
        finish_tile(acc, c, q * NR);
    }
}

/// Portable [`super::PanelTranspose`] (`nr = rows.len()`).
pub fn transpose_panel<T: Scalar>(src: &[T], rows: &[usize], len: usize, dst: &mut [T]) {
    let nr = rows.len();
    for (j, &r) in rows.iter().enumerate() {
        for (p, &v) in src[r..r + len].iter().enumerate() {
            dst[p * nr + j] = v;
        }
    }
}

/// `f32`/`f64` interleave ([`super::InterleaveFn`]): rows of 2, 4 or 8 phases through
/// fixed-width bodies the compiler vectorizes (as shuffles), any other count element by
/// element.
#[inline(always)]
pub fn interleave<T: Scalar>(srcs: &[&[T]], bias: T, dst: &mut [T]) {
    match srcs.len() {
        2 => interleave_fixed::<T, 2>(srcs, bias, dst),
        4 => interleave_fixed::<T, 4>(srcs, bias, dst),
        8 => interleave_fixed::<T, 8>(srcs, bias, dst),
        s => {
            let n = interleave_len(srcs, dst);
            if n == 0 {
                return;
            }
            for (r, src) in srcs.iter().enumerate() {
                for (d, &v) in dst[r..].iter_mut().step_by(s).zip(&src[..n]) {
                    *d = v + bias;
                }
            }
        }
    }
}

/// The checks of [`ilv_store`]: the rows, and [`ilv_check_rows`].
#[inline(always)]
pub fn ilv_check<T>(rows: &[&[T]], pl: &super::IlvPlace<T>, y: &[T]) {
    let n = pl.runs * pl.s;
    assert!(n <= super::MAX_MR && rows.len() >= n, "interleaving store: {n} rows");
    assert!(
        rows[..n].iter().all(|r| r.len() >= pl.lanes),
        "interleaving store: a row shorter than {}",
        pl.lanes
    );
    ilv_check_rows(pl, y);
}

/// The checks of an [`super::IlvPlace`]: runs of at least 2 rows, result rows of at least
/// 16, and every existing output row the place reaches inside `y`.
pub fn ilv_check_rows<T>(pl: &super::IlvPlace<T>, y: &[T]) {
    assert!(pl.s >= 2 && pl.runs <= super::MAX_RUNS, "interleaving store: {} runs of {}", pl.runs, pl.s);
    assert!(pl.width >= 16 && pl.first < pl.width, "interleaving store: rows of {}", pl.width);
    let last = (pl.first + pl.lanes.max(1) - 1) / pl.width;
    for u in 0..pl.runs {
        for ri in 0..=last {
            let row = pl.row[u] + (pl.step * ri) as isize;
            if (0..pl.rows as isize).contains(&row) {
                let start = pl.at[u] + (pl.step * ri * pl.cols) as isize;
                assert!(
                    start >= 0 && start as usize + pl.cols <= y.len(),
                    "interleaving store: a row past the output"
                );
            }
        }
    }
}

/// Interleave the first `runs·s` rows of a row block into `y` at `place`
/// ([`super::IlvPlace`]), `lanes` columns of each. Panics if an existing output row passes the
/// end of `y`, or if there are fewer than `runs·s` rows of at least `lanes` values. The
/// definition [`super::GemmIlvFn`] kernels are tested against.
pub fn ilv_store<T: Scalar>(rows: &[&[T]], pl: &super::IlvPlace<T>, y: &mut [T]) {
    ilv_check(rows, pl, y);
    for u in 0..pl.runs {
        for r in 0..pl.s {
            for (j, &v) in rows[u * pl.s + r][..pl.lanes].iter().enumerate() {
                let (ri, c) = ((pl.first + j) / pl.width, (pl.first + j) % pl.width);
                let row = pl.row[u] + (pl.step * ri) as isize;
                let col = (pl.s * c + r) as isize + pl.d;
                if (0..pl.rows as isize).contains(&row) && (0..pl.cols as isize).contains(&col) {
                    y[(pl.at[u] + (pl.step * ri * pl.cols) as isize + col) as usize] = v + pl.bias[u];
                }
            }
        }
    }
}

/// Values per row of an interleave, checked.
#[inline(always)]
fn interleave_len<T>(srcs: &[&[T]], dst: &[T]) -> usize {
    let s = srcs.len();
    assert!(s > 0 && dst.len().is_multiple_of(s), "interleave: {} values for {s} rows", dst.len());
    let n = dst.len() / s;
    assert!(srcs.iter().all(|r| r.len() >= n), "interleave: a row shorter than {n}");
    n
}

/// [`interleave`] of exactly `S` rows (panics otherwise).
#[inline(always)]
pub fn interleave_fixed<T: Scalar, const S: usize>(srcs: &[&[T]], bias: T, dst: &mut [T]) {
    assert_eq!(srcs.len(), S, "interleave: rows");
    let n = interleave_len(srcs, dst);
    let rows: [&[T]; S] = std::array::from_fn(|r| &srcs[r][..n]);
    // Blocks of 16, then of 4, then single positions: fixed-size bodies that unroll whole.
    let mut j = 0;
    j = interleave_blocks::<T, S, 16>(&rows, bias, dst, j);
    j = interleave_blocks::<T, S, 4>(&rows, bias, dst, j);
    interleave_blocks::<T, S, 1>(&rows, bias, dst, j);
}

/// Positions `j ..` of `rows` interleaved into `dst` in blocks of `B`; returns the first
/// position of the incomplete last block.
#[inline(always)]
fn interleave_blocks<T: Scalar, const S: usize, const B: usize>(
    rows: &[&[T]; S],
    bias: T,
    dst: &mut [T],
    mut j: usize,
) -> usize {
    let n = rows[0].len();
    while j + B <= n {
        let blk: [[T; B]; S] = std::array::from_fn(|r| rows[r][j..j + B].try_into().expect("B values"));
        let (d, _) = dst[j * S..(j + B) * S].as_chunks_mut::<S>();
        let d: &mut [[T; S]; B] = d.try_into().expect("B groups");
        for (jj, out) in d.iter_mut().enumerate() {
            for r in 0..S {
                out[r] = blk[r][jj] + bias;
            }
        }
        j += B;
    }
    j
}
