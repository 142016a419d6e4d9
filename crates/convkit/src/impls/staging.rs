//! Staged input: each channel of one sample copied padded (the padding mode applied) and
//! channels-first, optionally split into `stride` phases along the innermost axis, so that
//! every window of an output row reads consecutive elements and no kernel handles borders.

use super::gemm_tiled::MAX_RANK;
use crate::geometry::{pad_source, unravel};
use crate::kernels::generic::DwSplitFn;
use crate::scalar::Scalar;
use crate::shape::{data_strides, ConvProblem};

/// How one channel is staged: `[outer padded positions…][phase][Wq]`.
pub struct Stage {
    /// Elements per staged channel.
    pub channel: usize,
    /// Padded extent read on each outer axis.
    pub outer_len: Vec<usize>,
    /// Elements per staged row: `phases · Wq`.
    pub row_len: usize,
    /// Phases of the innermost axis (its stride, or 1).
    pub phases: usize,
    /// Per axis: padded position → input index (`None`: the padding constant).
    maps: Vec<Vec<Option<usize>>>,
    /// Innermost axis: padded position → offset in the staged row.
    row_pos: Vec<usize>,
    /// Innermost padded positions `lo..hi` copy input `lo − pad..hi − pad` unchanged.
    interior: (usize, usize),
    /// Innermost begin padding.
    pad: usize,
    /// Input strides of the spatial axes.
    xsp: Vec<usize>,
}

impl Stage {
    /// The staging of `p`'s input, split into phases when `split_phases`; `None` when the
    /// problem has no output or one staged channel would exceed `max_channel` elements.
    pub fn new(p: &ConvProblem, split_phases: bool, max_channel: usize) -> Option<Stage> {
        let rank = p.axes.len();
        if rank > MAX_RANK || p.axes.iter().any(|a| a.output == 0) {
            return None;
        }
        // The padded extent each axis reads.
        let extent: Vec<usize> =
            p.axes.iter().map(|a| (a.output - 1) * a.stride + (a.kernel - 1) * a.dilation + 1).collect();
        let last = p.axes[rank - 1];
        let phases = if split_phases { last.stride } else { 1 };
        let wq = extent[rank - 1].div_ceil(phases);
        let row_len = wq * phases;
        let outer_len = extent[..rank - 1].to_vec();
        let channel = outer_len.iter().try_fold(row_len, |acc, &l| acc.checked_mul(l))?;
        if channel > max_channel {
            return None;
        }
        let maps = p
            .axes
            .iter()
            .zip(&extent)
            .map(|(a, &e)| {
                (0..e)
                    .map(|q| pad_source(q as isize - a.pad_begin as isize, a.input, p.padding_mode))
                    .collect()
            })
            .collect();
        let row_pos = (0..extent[rank - 1]).map(|q| (q % phases) * wq + q / phases).collect();
        let lo = last.pad_begin.min(extent[rank - 1]);
        let hi = (last.pad_begin + last.input).clamp(lo, extent[rank - 1]);
        Some(Stage {
            channel,
            outer_len,
            row_len,
            phases,
            maps,
            row_pos,
            interior: (lo, hi),
            pad: last.pad_begin,
            xsp: data_strides(p.layout, p.in_channels, &p.input_spatial()).2,
        })
    }

    /// Distance in a staged channel between neighbouring positions of each axis (the
    /// innermost: 1, within a phase).
    pub fn axis_strides(&self) -> Vec<usize> {
        let rank = self.outer_len.len() + 1;
        let mut s = vec![1; rank];
        let mut acc = self.row_len;
        for a in (0..rank - 1).rev() {
            s[a] = acc;
            acc *= self.outer_len[a];
        }
        s
    }

    /// Elements per phase of a staged row.
    pub fn phase_len(&self) -> usize {
        self.row_len / self.phases
    }

    /// Stage the channel whose first input element is `x[cbase]` into `dst` (`channel`
    /// elements), padding with `padv`; `split2` splits runs into two phases.
    pub fn fill<T: Scalar>(&self, x: &[T], cbase: usize, padv: T, dst: &mut [T], split2: DwSplitFn<T>) {
        let rank = self.outer_len.len() + 1;
        let inner = &self.maps[rank - 1];
        let xs = self.xsp[rank - 1];
        let mut coords = [0usize; MAX_RANK];
        for (ri, row) in dst[..self.channel].chunks_exact_mut(self.row_len).enumerate() {
            unravel(ri, &self.outer_len, &mut coords[..rank - 1]);
            let mut base = Some(cbase);
            for ((map, &c), &stride) in self.maps.iter().zip(&coords[..rank - 1]).zip(&self.xsp) {
                base = base.and_then(|b| map[c].map(|i| b + i * stride));
            }
            let Some(base) = base else {
                row.fill(padv);
                continue;
            };
            let at = |q: usize| inner[q].map_or(padv, |i| x[base + i * xs]);
            if self.phases == 1 && xs == 1 {
                // Channels-first, no phases: copy the interior, map the borders.
                let (lo, hi) = self.interior;
                for (q, d) in row[..lo].iter_mut().enumerate() {
                    *d = at(q);
                }
                if hi > lo {
                    row[lo..hi].copy_from_slice(&x[base + lo - self.pad..][..hi - lo]);
                }
                for (q, d) in row.iter_mut().enumerate().skip(hi) {
                    *d = at(q);
                }
            } else if self.phases == 2 && xs == 1 {
                // Channels-first, two phases: the interior's pairs split in one pass, the
                // rest mapped one by one.
                let (lo, hi) = self.interior;
                let q0 = lo.next_multiple_of(2).min(hi);
                let pairs = (hi - q0) / 2;
                let wq = self.row_len / 2;
                for q in (0..q0).chain(q0 + 2 * pairs..self.row_pos.len()) {
                    row[self.row_pos[q]] = at(q);
                }
                if pairs > 0 {
                    let (ev, od) = row.split_at_mut(wq);
                    let src = &x[base + q0 - self.pad..][..2 * pairs];
                    split2(src, &mut ev[q0 / 2..][..pairs], &mut od[q0 / 2..][..pairs]);
                }
            } else if xs == 1 {
                // Channels-first, more phases: the borders mapped one by one, the interior
                // copied phase by phase (a strided read into consecutive places).
                let (lo, hi) = self.interior;
                let n = self.row_pos.len();
                for q in (0..lo.min(n)).chain(hi.max(lo)..n) {
                    row[self.row_pos[q]] = at(q);
                }
                let ph = self.phases;
                for q0 in lo..(lo + ph).min(hi) {
                    let count = (hi - q0).div_ceil(ph);
                    let dst = &mut row[self.row_pos[q0]..][..count];
                    let src = &x[base + q0 - self.pad..];
                    for (d, &v) in dst.iter_mut().zip(src.iter().step_by(ph)) {
                        *d = v;
                    }
                }
            } else {
                for (q, &pos) in self.row_pos.iter().enumerate() {
                    row[pos] = at(q);
                }
            }
        }
    }
}

/// Offset of every kernel tap (row-major, reversed for true convolution) from its window's
/// first element in a source with spatial strides `axis_stride`, the innermost axis split into
/// `phases` phases of `phase_len` elements (`(1, _)`: not split).
pub fn tap_offsets(
    p: &ConvProblem,
    axis_stride: &[usize],
    (phases, phase_len): (usize, usize),
) -> Vec<usize> {
    let kernel = p.kernel();
    let rank = kernel.len();
    let taps: usize = kernel.iter().product();
    let mut t = vec![0; rank];
    (0..taps)
        .map(|tap| {
            unravel(tap, &kernel, &mut t);
            p.axes
                .iter()
                .enumerate()
                .map(|(a, ax)| {
                    let tt = if p.flip { ax.kernel - 1 - t[a] } else { t[a] };
                    let pos = tt * ax.dilation;
                    if a + 1 == rank {
                        (pos % phases) * phase_len + pos / phases
                    } else {
                        pos * axis_stride[a]
                    }
                })
                .sum()
        })
        .collect()
}
