//! Portable micro-kernels, generic over the element type.

use super::{TileDst, MR, NR};
use crate::scalar::Scalar;

/// `f32`/`f64` GEMM tile in plain Rust (`gemm_6x16:generic`), panel after panel.
pub fn gemm_6x16<T: Scalar>(
    kc: usize,
    a: &[T],
    b: &[T],
    (panels, b_step): (usize, usize),
    c: &mut TileDst<'_, T>,
) {
    for q in 0..panels {
        let b = &b[q * b_step..];
        let mut acc = start_tile(c, q * NR);
        for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)).take(kc) {
            let bp: &[T; NR] = bp.try_into().expect("NR elements");
            fma_rows(&mut acc, ap, bp);
        }
        finish_tile(acc, c, q * NR);
    }
}

/// The accumulators a tile at column `col` starts from: zero, or the destination's contents.
fn start_tile<T: Scalar>(c: &TileDst<'_, T>, col: usize) -> [[T; NR]; MR] {
    let mut acc = [[T::ZERO; NR]; MR];
    if c.accumulate {
        for (a, row) in acc.iter_mut().zip(&c.rows) {
            *a = row[col..][..NR].try_into().expect("NR elements");
        }
    }
    acc
}

/// `acc[i][j] += a[i]·b[j]`, unfused.
fn fma_rows<T: Scalar>(acc: &mut [[T; NR]; MR], ap: &[T], bp: &[T; NR]) {
    for (row, &av) in acc.iter_mut().zip(ap) {
        for (r, &bv) in row.iter_mut().zip(bp) {
            *r = *r + av * bv;
        }
    }
}

/// Add the bias, if any, and store the accumulators at column `col`.
fn finish_tile<T: Scalar>(mut acc: [[T; NR]; MR], c: &mut TileDst<'_, T>, col: usize) {
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

/// Portable panel copy (see [`crate::kernels::PanelCopy`]).
pub fn copy_panel<T: Scalar>(src: &[T], rows: &[usize], runs: &[(usize, usize)], dst: &mut [T]) {
    for (r, &ro) in rows.iter().enumerate() {
        for &(j0, s) in runs {
            let d: &mut [T; NR] = (&mut dst[r * NR + j0..][..NR]).try_into().expect("NR elements");
            *d = src[ro + s..][..NR].try_into().expect("NR elements");
        }
    }
}

/// Portable indirect GEMM tile (see [`crate::kernels::GemmIndirect`]); the same sums in the
/// same order as [`gemm_6x16`].
pub fn gemm_6x16_indirect<T: Scalar>(
    kc: usize,
    a: &[T],
    src: &[T],
    (base, panels): (usize, usize),
    offs: &[usize],
    c: &mut TileDst<'_, T>,
) {
    for q in 0..panels {
        let mut acc = start_tile(c, q * NR);
        for (ap, &o) in a.chunks_exact(MR).zip(&offs[..kc]) {
            let bp: &[T; NR] = src[base + q * NR + o..][..NR].try_into().expect("NR elements");
            fma_rows(&mut acc, ap, bp);
        }
        finish_tile(acc, c, q * NR);
    }
}
