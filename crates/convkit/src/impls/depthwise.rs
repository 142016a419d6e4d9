//! `dw-direct`: direct convolution for one input channel per group (depthwise convolution,
//! small channel multipliers, single-channel image filters), NCHW. One- and two-dimensional
//! problems run a band kernel over several output rows at once, reading a padded (and for
//! inner strides, phase-split) copy of just the input rows a band needs, or the unpadded input
//! itself; 3×3 kernels at strides 1 and 2 with constant padding, where a SIMD kernel exists,
//! read the unpadded input in place instead (padding rows by a row table, border columns by
//! masked loads, stride-2 columns deinterleaved in registers), with nothing staged. Higher
//! ranks run a row kernel, one output row at a time.

use super::staging::Stage;
use super::{split_join, ConvImpl};
use crate::geometry::{pad_source, pad_value, tap_table, unravel};
use crate::isa::Isa;
use crate::kernels::generic::{DwCopyFn, DwPlane, DwPlaneFn, DwRow, DwRowFn, DwRows, DwRowsFn, DwSplitFn};
use crate::kernels::{impl_name, KernelSet};
use crate::scalar::Scalar;
use crate::shape::{data_strides, ConvProblem};
use crate::{Layout, PadMode};

/// Largest channel multiplier (outputs per input channel) this path takes; beyond it the
/// GEMM path reuses each input row better.
pub const MAX_MULTIPLIER: usize = 4;

/// Most (outer output positions × outer taps) the row table may hold (256 MiB).
pub const MAX_ROW_TABLE: usize = 1 << 24;

/// Whether `dw-direct` handles `p`.
pub fn supports(p: &ConvProblem) -> Result<(), String> {
    let cg = p.in_channels / p.groups;
    let kg = p.out_channels / p.groups;
    if cg != 1 {
        return Err(format!("{cg} input channels per group, needs 1"));
    }
    if kg > MAX_MULTIPLIER {
        return Err(format!("channel multiplier {kg} > {MAX_MULTIPLIER}"));
    }
    if p.layout != Layout::Nchw {
        return Err("channels-last layout".into());
    }
    let rank = p.axes.len();
    let rows =
        p.axes[..rank - 1].iter().try_fold(1usize, |acc, a| acc.checked_mul(a.output)?.checked_mul(a.kernel));
    if rows.is_none_or(|r| r > MAX_ROW_TABLE) {
        return Err(format!("outer-axis row table larger than {MAX_ROW_TABLE} entries"));
    }
    Ok(())
}

/// Depthwise direct convolution prepared for one problem.
pub struct Depthwise<T> {
    p: ConvProblem,
    isa: Isa,
    row_fn: DwRowFn<T>,
    w: Vec<T>,
    taps: usize,
    kg: usize,
    /// `[outer output position][outer tap]` → input row offset within a plane.
    rows: Vec<Option<usize>>,
    outer_taps: usize,
    last_table: Vec<Option<usize>>,
    lo: usize,
    hi: usize,
    out_last: usize,
    plane_out: usize,
    xn: usize,
    xc: usize,
    padv: T,
    /// Rows with border outputs are first copied padded (padding mode applied) into the
    /// workspace, one row per outer tap, `padded_len` each, so every output is interior.
    /// `None` where that copy would exceed [`MAX_PADDED_ROWS`].
    padded: Option<PaddedRows>,
    /// Padded problems whose planes are small enough are staged one input plane at a time
    /// into the workspace instead (each input row copied once, every output interior).
    plane: Option<PlaneStage>,
    /// Inner tap table over a padded row: `Some(o·stride + t·dilation)` (staged modes).
    padded_table: Vec<Option<usize>>,
    /// The band path for one- and two-dimensional problems (then the fields above go unused).
    band: Option<BandPath<T>>,
}

/// Most elements per thread of a staged band.
pub const MAX_BAND: usize = 1 << 16;

/// Elements of a staged band that stay in L1 alongside the input and output streams.
pub const BAND_TARGET: usize = 1 << 12;

/// A 1-D or 2-D problem as bands of output rows over input read without borders.
struct BandPath<T> {
    kernel: DwPlaneFn<T>,
    /// Per output channel, `kh × kw` taps, flipped on both axes where the problem flips.
    w: Vec<T>,
    kh: usize,
    sh: usize,
    dh: usize,
    hout: usize,
    wout: usize,
    /// Input row length (the pitch when reading the input directly).
    win: usize,
    /// Per inner tap, its offset within a (staged) row for output 0.
    cols: Vec<usize>,
    /// `None`: unpadded with inner stride 1, so the input itself is read (or `direct`).
    stage: Option<BandStage<T>>,
    /// 3×3 kernels at strides 1 and 2 with constant padding, where a SIMD kernel exists: the
    /// input read in place by [`DwRows`] bands, borders by masked loads, nothing staged.
    direct: Option<BandDirect<T>>,
}

/// A plane read in place by a [`DwRowsFn`] kernel.
struct BandDirect<T> {
    kernel: DwRowsFn<T>,
    /// Padded row → offset of its input row within the plane (`None`: padding).
    rows: Vec<Option<usize>>,
    /// Inner-axis begin padding.
    pad: usize,
    /// Inner stride.
    sw: usize,
    /// Elements per input plane.
    plane: usize,
    padv: T,
}

/// How the padded input rows of a band are copied into the workspace.
struct BandStage<T> {
    /// Padded row → input row (`None`: the padding constant).
    hmap: Vec<Option<usize>>,
    /// Runs `(staged position, input column, length)` copied from an input row: one for a
    /// single phase; per phase, reading every `phases`-th column, for more than two.
    runs: Vec<(usize, usize, usize)>,
    /// Two phases: `(input column, position in each phase, pairs)` split in one pass.
    pairs: Option<(usize, usize, usize)>,
    /// Every other staged position: `(position, input column)` (`None`: the padding constant).
    borders: Vec<(usize, Option<usize>)>,
    /// Inner stride: phases per staged row.
    phases: usize,
    /// Elements per phase.
    wq: usize,
    /// Output rows per band.
    band_rows: usize,
    copy: DwCopyFn<T>,
    split2: DwSplitFn<T>,
}

impl<T: Scalar> BandStage<T> {
    fn row_len(&self) -> usize {
        self.phases * self.wq
    }

    /// Staged rows for `rows` output rows.
    fn rows_for(&self, rows: usize, sh: usize, kh: usize, dh: usize) -> usize {
        (rows - 1) * sh + (kh - 1) * dh + 1
    }

    /// Copy padded rows `pr0..pr0 + n` of the input plane starting at `plane[0]` (rows of
    /// `win`) into `dst`.
    fn fill(&self, plane: &[T], win: usize, pr0: usize, n: usize, padv: T, dst: &mut [T]) {
        for (row, &src) in dst.chunks_exact_mut(self.row_len()).zip(&self.hmap[pr0..pr0 + n]) {
            let Some(src) = src else {
                row.fill(padv);
                continue;
            };
            let src = &plane[src * win..][..win];
            match self.phases {
                1 => {
                    for &(d, s, len) in &self.runs {
                        (self.copy)(&src[s..s + len], &mut row[d..d + len]);
                    }
                }
                2 => {
                    if let Some((s, d, pairs)) = self.pairs {
                        let (ev, od) = row.split_at_mut(self.wq);
                        (self.split2)(&src[s..s + 2 * pairs], &mut ev[d..d + pairs], &mut od[d..d + pairs]);
                    }
                }
                phases => {
                    for &(d, s, len) in &self.runs {
                        for (k, v) in row[d..d + len].iter_mut().enumerate() {
                            *v = src[s + k * phases];
                        }
                    }
                }
            }
            for &(d, s) in &self.borders {
                row[d] = s.map_or(padv, |c| src[c]);
            }
        }
    }
}

impl<T: Scalar> BandPath<T> {
    /// The band kernel's view of rows of `pitch` in `x` from `base`, with weights `w`.
    fn plane<'a>(&'a self, x: &'a [T], base: usize, pitch: usize, w: &'a [T], bias: T) -> DwPlane<'a, T> {
        DwPlane {
            x,
            base,
            pitch,
            cols: &self.cols,
            kh: self.kh,
            sh: self.sh,
            dh: self.dh,
            w,
            bias,
            wout: self.wout,
        }
    }

    /// The band path for `p` (rank 1 or 2, every output axis non-empty), or `None` when one
    /// output row's staged rows would not fit [`MAX_BAND`].
    fn new(p: &ConvProblem, w: &[T], ks: &KernelSet<T>) -> Option<Self> {
        let rank = p.axes.len();
        if rank > 2 || p.axes.iter().any(|a| a.output == 0) {
            return None;
        }
        let last = p.axes[rank - 1];
        let one = crate::shape::Axis::UNIT;
        let outer = if rank == 2 { p.axes[0] } else { one };
        let extent = |a: &crate::shape::Axis| (a.output - 1) * a.stride + (a.kernel - 1) * a.dilation + 1;
        let (eh, ew) = (extent(&outer), extent(&last));
        let padded = p.axes.iter().any(|a| a.pad_begin > 0 || a.pad_end > 0);
        let direct = ks
            .dw_rows
            .filter(|_| {
                rank == 2
                    && (padded || last.stride > 1)
                    && matches!(p.padding_mode, PadMode::Zeros | PadMode::Constant(_))
                    && [outer, last]
                        .iter()
                        .all(|a| a.kernel == 3 && a.dilation == 1 && matches!(a.stride, 1 | 2))
                    && last.output >= 8
            })
            .map(|kernel| BandDirect {
                kernel,
                rows: (0..eh)
                    .map(|q| {
                        pad_source(q as isize - outer.pad_begin as isize, outer.input, p.padding_mode)
                            .map(|r| r * last.input)
                    })
                    .collect(),
                pad: last.pad_begin,
                sw: last.stride,
                plane: outer.input * last.input,
                padv: T::from_f64(pad_value(p.padding_mode)),
            });
        let stage = (direct.is_none() && (padded || last.stride > 1)).then(|| {
            let phases = last.stride;
            let wq = ew.div_ceil(phases);
            let lo = last.pad_begin.min(ew);
            let hi = (last.pad_begin + last.input).clamp(lo, ew);
            let map = |a: &crate::shape::Axis, e: usize| -> Vec<Option<usize>> {
                (0..e)
                    .map(|q| pad_source(q as isize - a.pad_begin as isize, a.input, p.padding_mode))
                    .collect()
            };
            let pad = last.pad_begin;
            let wmap = map(&last, ew);
            let mut runs = Vec::new();
            let mut pairs = None;
            let mut written = vec![false; phases * wq];
            if phases == 1 {
                runs.extend((hi > lo).then(|| (lo, lo - pad, hi - lo)));
            } else if phases == 2 {
                let q0 = lo + (lo & 1);
                let n = hi.saturating_sub(q0) / 2;
                if n > 0 {
                    pairs = Some((q0 - pad, q0 / 2, n));
                    written[q0 / 2..q0 / 2 + n].fill(true);
                    written[wq + q0 / 2..wq + q0 / 2 + n].fill(true);
                }
            } else {
                for ph in 0..phases {
                    // Phase `ph` holds padded columns ph, ph + phases, …; those inside lo..hi
                    // are a strided run of the input row.
                    let idx = |q: usize| q.saturating_sub(ph).div_ceil(phases).min(wq);
                    let (a, b) = (idx(lo), idx(hi));
                    runs.extend((b > a).then(|| (ph * wq + a, a * phases + ph - pad, b - a)));
                }
            }
            for &(d, _, len) in &runs {
                written[d..d + len].fill(true);
            }
            let borders = (0..phases * wq)
                .filter(|&d| !written[d])
                .map(|d| {
                    let q = (d % wq) * phases + d / wq;
                    (d, if q < ew { wmap[q] } else { None })
                })
                .collect();
            BandStage {
                hmap: map(&outer, eh),
                runs,
                pairs,
                borders,
                phases,
                wq,
                band_rows: 1,
                copy: ks.dw_copy,
                split2: ks.dw_split2,
            }
        });
        let stage = match stage {
            Some(mut st) => {
                let rows = |n: usize| st.rows_for(n, outer.stride, outer.kernel, outer.dilation);
                if rows(1).checked_mul(st.row_len()).is_none_or(|n| n > MAX_BAND) {
                    return None;
                }
                // The most output rows whose staged rows fit `cap`.
                let fit = |cap: usize| {
                    let (mut lo, mut hi) = (0, outer.output);
                    while lo < hi {
                        let mid = (lo + hi).div_ceil(2);
                        if rows(mid).saturating_mul(st.row_len()) <= cap {
                            lo = mid;
                        } else {
                            hi = mid - 1;
                        }
                    }
                    lo
                };
                // Bands that stay in L1, unless the rows shared with the next band (the halo)
                // would then be over half of those staged: then larger, up to MAX_BAND.
                let halo = ((outer.kernel - 1) * outer.dilation).div_ceil(outer.stride);
                st.band_rows = fit(BAND_TARGET).max(2 * halo).min(fit(MAX_BAND)).max(1);
                Some(st)
            }
            None => None,
        };
        let cols = (0..last.kernel)
            .map(|j| {
                let q = j * last.dilation;
                match &stage {
                    Some(st) => (q % st.phases) * st.wq + q / st.phases,
                    None => q,
                }
            })
            .collect();
        let taps = outer.kernel * last.kernel;
        let w = if p.flip {
            w.chunks_exact(taps).flat_map(|k| k.iter().rev().copied()).collect()
        } else {
            w.to_vec()
        };
        Some(BandPath {
            kernel: ks.dw_plane,
            w,
            kh: outer.kernel,
            sh: outer.stride,
            dh: outer.dilation,
            hout: outer.output,
            wout: last.output,
            win: last.input,
            cols,
            stage,
            direct,
        })
    }

    /// Workspace elements per thread.
    fn per_thread(&self) -> usize {
        self.stage
            .as_ref()
            .map_or(0, |st| st.rows_for(st.band_rows, self.sh, self.kh, self.dh) * st.row_len())
    }
}

/// Largest staged plane (elements per thread).
pub const MAX_PLANE: usize = 1 << 18;

/// Whole padded input planes staged in the workspace.
struct PlaneStage {
    stage: Stage,
    /// `[outer output position][outer tap]` → row offset in the staged plane (all `Some`).
    rows: Vec<Option<usize>>,
}

/// Most workspace elements per thread for padded row copies.
pub const MAX_PADDED_ROWS: usize = 1 << 20;

/// How a row with borders is copied padded.
struct PaddedRows {
    /// Padded positions the row reads: `(out − 1)·stride + (kernel − 1)·dilation + 1`.
    len: usize,
    /// Padded position → input index (`None`: the padding constant).
    map: Vec<Option<usize>>,
    /// Positions `lo..hi` copy input `lo − pad..` unchanged.
    interior: (usize, usize),
    /// `Some(t·len)` for every outer tap `t`: the copies' offsets in the workspace.
    rows: Vec<Option<usize>>,
}

impl<T: Scalar> Depthwise<T> {
    /// Prepare `p` (which [`supports`] accepts) with weights `w` for kernel set `ks`.
    pub fn new(p: &ConvProblem, w: &[T], ks: KernelSet<T>) -> Self {
        let rank = p.axes.len();
        let (outer, last) = p.axes.split_at(rank - 1);
        let last = last[0];
        let (xn, xc, xsp) = data_strides(p.layout, p.in_channels, &p.input_spatial());
        let tables: Vec<_> = outer.iter().map(|a| tap_table(a, p.flip, p.padding_mode)).collect();
        let outer_out: Vec<usize> = outer.iter().map(|a| a.output).collect();
        let outer_k: Vec<usize> = outer.iter().map(|a| a.kernel).collect();
        let (npos, outer_taps) = (outer_out.iter().product::<usize>(), outer_k.iter().product::<usize>());
        let mut rows = Vec::with_capacity(npos * outer_taps);
        let (mut o, mut t) = (vec![0; rank - 1], vec![0; rank - 1]);
        for pos in 0..npos {
            unravel(pos, &outer_out, &mut o);
            for tap in 0..outer_taps {
                unravel(tap, &outer_k, &mut t);
                let mut off = Some(0usize);
                for a in 0..rank - 1 {
                    off = match (off, tables[a][o[a] * outer_k[a] + t[a]]) {
                        (Some(s), Some(i)) => Some(s + i * xsp[a]),
                        _ => None,
                    };
                }
                rows.push(off);
            }
        }
        // Interior: outputs whose every inner tap reads its natural, unpadded position.
        let natural = |ox: usize| {
            (0..last.kernel).all(|tl| {
                let tt = if p.flip { last.kernel - 1 - tl } else { tl };
                let pos = (ox * last.stride + tt * last.dilation) as isize - last.pad_begin as isize;
                pos >= 0 && (pos as usize) < last.input
            })
        };
        let lo = (0..last.output).find(|&ox| natural(ox)).unwrap_or(last.output);
        let hi = (lo..last.output).find(|&ox| !natural(ox)).unwrap_or(last.output);
        // With flip the taps run backwards; store the kernel reversed on the inner axis instead
        // so the row kernel always walks forward (the outer axes are flipped by their tables).
        let kl = last.kernel;
        let taps: usize = p.kernel().iter().product();
        let w_orig = w;
        let w: Vec<T> = if p.flip {
            w.chunks_exact(kl).flat_map(|r| r.iter().rev().copied()).collect()
        } else {
            w.to_vec()
        };
        // The inner axis always walks forward (the kernel row was reversed above for flip).
        let last_table = tap_table(&last, false, p.padding_mode);
        let len = (last.output.max(1) - 1) * last.stride + (last.kernel - 1) * last.dilation + 1;
        let padded = (len.checked_mul(outer_taps).is_some_and(|n| n <= MAX_PADDED_ROWS)
            && (lo > 0 || hi < last.output))
            .then(|| {
                let ilo = last.pad_begin.min(len);
                PaddedRows {
                    len,
                    map: (0..len)
                        .map(|q| pad_source(q as isize - last.pad_begin as isize, last.input, p.padding_mode))
                        .collect(),
                    interior: (ilo, (last.pad_begin + last.input).clamp(ilo, len)),
                    rows: (0..outer_taps).map(|t| Some(t * len)).collect(),
                }
            });
        let padding = p.axes.iter().any(|a| a.pad_begin > 0 || a.pad_end > 0);
        let plane = Stage::new(p, false, MAX_PLANE).filter(|_| padding).map(|stage| {
            let ast = stage.axis_strides();
            let mut rows = Vec::with_capacity(npos * outer_taps);
            for pos in 0..npos {
                unravel(pos, &outer_out, &mut o);
                for tap in 0..outer_taps {
                    unravel(tap, &outer_k, &mut t);
                    let off = (0..rank - 1)
                        .map(|a| {
                            let tt = if p.flip { outer_k[a] - 1 - t[a] } else { t[a] };
                            (o[a] * outer[a].stride + tt * outer[a].dilation) * ast[a]
                        })
                        .sum();
                    rows.push(Some(off));
                }
            }
            PlaneStage { stage, rows }
        });
        let padded = padded.filter(|_| plane.is_none());
        let padded_table = if plane.is_some() || padded.is_some() {
            (0..last.output)
                .flat_map(|o| (0..kl).map(move |t| Some(o * last.stride + t * last.dilation)))
                .collect()
        } else {
            Vec::new()
        };
        Depthwise {
            band: BandPath::new(p, w_orig, &ks),
            padded_table,
            plane,
            padded,
            isa: ks.isa,
            row_fn: ks.dw_row,
            w,
            taps,
            kg: p.out_channels / p.groups,
            rows,
            outer_taps,
            last_table,
            lo,
            hi,
            out_last: last.output,
            plane_out: p.output_spatial().iter().product(),
            xn,
            xc,
            padv: T::from_f64(pad_value(p.padding_mode)),
            p: p.clone(),
        }
    }

    /// A row over staged (padded) input in `ws`: every output is interior.
    fn staged_row<'a>(&'a self, ws: &'a [T], rows: &'a [Option<usize>], w: &'a [T], bias: T) -> DwRow<'a, T> {
        let last = self.p.axes[self.p.axes.len() - 1];
        DwRow {
            x: ws,
            cbase: 0,
            rows,
            w,
            kl: last.kernel,
            d: last.dilation,
            s: last.stride,
            pb: 0,
            table: &self.padded_table,
            lo: 0,
            hi: self.out_last,
            padv: self.padv,
            bias,
        }
    }

    /// Output rows `first..` (counted over all planes) into `y`, one row of `out_last` at a time.
    fn rows(&self, x: &[T], bias: Option<&[T]>, first: usize, y: &mut [T], ws: &mut [T]) {
        let last = self.p.axes[self.p.axes.len() - 1];
        let per_plane = self.plane_out / self.out_last;
        let mut staged = None;
        for (i, yrow) in y.chunks_exact_mut(self.out_last).enumerate() {
            let (plane, pos) = ((first + i) / per_plane, (first + i) % per_plane);
            let (n, k) = (plane / self.p.out_channels, plane % self.p.out_channels);
            let cbase = n * self.xn + (k / self.kg) * self.xc;
            let rows = &self.rows[pos * self.outer_taps..][..self.outer_taps];
            let w = &self.w[k * self.taps..][..self.taps];
            let bias = bias.map_or(T::ZERO, |b| b[k]);
            if let Some(ps) = &self.plane {
                let plane = n * self.p.in_channels + k / self.kg;
                if staged != Some(plane) {
                    ps.stage.fill(x, cbase, self.padv, ws, crate::kernels::generic::dw_split2::<T>);
                    staged = Some(plane);
                }
                let r = self.staged_row(ws, &ps.rows[pos * self.outer_taps..][..self.outer_taps], w, bias);
                (self.row_fn)(&r, yrow);
                continue;
            }
            let r = match &self.padded {
                Some(pr) => {
                    // Copy the rows this output row reads, padded, then run it all-interior.
                    for (row, dst) in rows.iter().zip(ws.chunks_exact_mut(pr.len)) {
                        let Some(row) = row else {
                            dst.fill(self.padv);
                            continue;
                        };
                        let base = cbase + row;
                        let (lo, hi) = pr.interior;
                        for (q, d) in dst.iter_mut().enumerate() {
                            if q == lo {
                                break;
                            }
                            *d = pr.map[q].map_or(self.padv, |i| x[base + i]);
                        }
                        if hi > lo {
                            dst[lo..hi].copy_from_slice(&x[base + lo - last.pad_begin..][..hi - lo]);
                        }
                        for (q, d) in dst.iter_mut().enumerate().skip(hi) {
                            *d = pr.map[q].map_or(self.padv, |i| x[base + i]);
                        }
                    }
                    self.staged_row(ws, &pr.rows, w, bias)
                }
                None => DwRow {
                    x,
                    cbase,
                    rows,
                    w,
                    kl: last.kernel,
                    d: last.dilation,
                    s: last.stride,
                    pb: last.pad_begin,
                    table: &self.last_table,
                    lo: self.lo,
                    hi: self.hi,
                    padv: self.padv,
                    bias,
                },
            };
            (self.row_fn)(&r, yrow);
        }
    }

    /// Output rows `first..` (counted over all planes) into `y` by the band path.
    fn bands(&self, bp: &BandPath<T>, x: &[T], bias: Option<&[T]>, first: usize, y: &mut [T], ws: &mut [T]) {
        let mut row = first;
        let mut y = y;
        // The (input plane, first output row, rows) whose input rows `ws` holds.
        let mut staged = None;
        while !y.is_empty() {
            let (plane, oy0) = (row / bp.hout, row % bp.hout);
            let rows = (bp.hout - oy0).min(y.len() / bp.wout);
            let (n, k) = (plane / self.p.out_channels, plane % self.p.out_channels);
            let c = k / self.kg;
            let cbase = n * self.xn + c * self.xc;
            let taps = bp.w.len() / self.p.out_channels;
            let w = &bp.w[k * taps..][..taps];
            let bias = bias.map_or(T::ZERO, |b| b[k]);
            let (seg, rest) = std::mem::take(&mut y).split_at_mut(rows * bp.wout);
            match (&bp.direct, &bp.stage) {
                (Some(d), _) => {
                    let r = DwRows {
                        x: &x[cbase..][..d.plane],
                        rows: &d.rows[oy0 * bp.sh..],
                        win: bp.win,
                        pad: d.pad,
                        sh: bp.sh,
                        sw: d.sw,
                        w,
                        bias,
                        padv: d.padv,
                        wout: bp.wout,
                    };
                    (d.kernel)(&r, seg);
                }
                (None, None) => {
                    (bp.kernel)(&bp.plane(x, cbase + oy0 * bp.sh * bp.win, bp.win, w, bias), seg);
                }
                (None, Some(st)) => {
                    for (b, yb) in seg.chunks_mut(st.band_rows * bp.wout).enumerate() {
                        let oy = oy0 + b * st.band_rows;
                        let nrows = yb.len() / bp.wout;
                        let key = (n * self.p.in_channels + c, oy, nrows);
                        if staged != Some(key) {
                            let nstaged = st.rows_for(nrows, bp.sh, bp.kh, bp.dh);
                            st.fill(&x[cbase..], bp.win, oy * bp.sh, nstaged, self.padv, ws);
                            staged = Some(key);
                        }
                        (bp.kernel)(&bp.plane(ws, 0, st.row_len(), w, bias), yb);
                    }
                }
            }
            y = rest;
            row += rows;
        }
    }

    fn per_thread(&self) -> usize {
        if let Some(bp) = &self.band {
            return bp.per_thread();
        }
        match (&self.plane, &self.padded) {
            (Some(ps), _) => ps.stage.channel,
            (None, Some(pr)) => pr.len * self.outer_taps,
            (None, None) => 0,
        }
    }
}

impl<T: Scalar> ConvImpl<T> for Depthwise<T> {
    fn name(&self) -> String {
        impl_name("dw-direct", self.isa)
    }

    fn workspace(&self, threads: usize) -> usize {
        self.per_thread() * threads.max(1)
    }

    fn execute(&self, x: &[T], bias: Option<&[T]>, y: &mut [T], ws: &mut [T], threads: usize) {
        // Contiguous runs of output rows, one per thread, so a single plane (an image filter)
        // is shared too.
        let rows = y.len() / self.out_last;
        let threads = threads.clamp(1, rows.max(1));
        let first = |t: usize| rows * t / threads;
        let cut = |t: usize| first(t) * self.out_last;
        split_join(y, ws, self.per_thread(), threads, &cut, &|t, part, w| match &self.band {
            Some(bp) => self.bands(bp, x, bias, first(t), part, w),
            None => self.rows(x, bias, first(t), part, w),
        });
    }
}
