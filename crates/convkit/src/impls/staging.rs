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
    /// Per staged row (outer padded positions, row-major): the offset of its input row from
    /// the channel's first element, or `None` for a row of padding. Precomputed so that
    /// staging a row costs no index arithmetic (rows of ResNet's 56-wide maps are short).
    row_src: Vec<Option<usize>>,
    /// The innermost positions not covered by the interior copy: `(offset in the staged row,
    /// input offset from the row's first element or None for the padding constant)`.
    borders: Vec<(usize, Option<usize>)>,
    /// How the interior of a row is copied.
    interior: Interior,
}

/// The interior of a staged row: innermost padded positions `q0..q0 + len` reading input
/// `q0 − pad..` (channels-first, unit stride), copied without index tables.
enum Interior {
    /// No interior copy: every position is in `borders`.
    None,
    /// One phase: `row[q0..q0 + len] = input[src..src + len]`.
    Copy { q0: usize, src: usize, len: usize },
    /// Two phases: `len` pairs from `input[src..]` split into `row[q0 / 2..]` and
    /// `row[wq + q0 / 2..]`.
    Split2 { q0: usize, src: usize, len: usize },
    /// More phases: for each of the first `phases` interior positions `q`, `(dst, src,
    /// count)`: every `phases`-th input from `src = q − pad` into `count` consecutive places
    /// from `dst`, the offset of `q`'s phase in the staged row.
    Strided(Vec<(usize, usize, usize)>),
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
        let maps: Vec<Vec<Option<usize>>> = p
            .axes
            .iter()
            .zip(&extent)
            .map(|(a, &e)| {
                (0..e)
                    .map(|q| pad_source(q as isize - a.pad_begin as isize, a.input, p.padding_mode))
                    .collect()
            })
            .collect();
        let xsp = data_strides(p.layout, p.in_channels, &p.input_spatial()).2;
        let rows: usize = outer_len.iter().product();
        let mut coords = [0usize; MAX_RANK];
        let row_src = (0..rows)
            .map(|ri| {
                unravel(ri, &outer_len, &mut coords[..rank - 1]);
                maps.iter()
                    .zip(&coords[..rank - 1])
                    .zip(&xsp)
                    .try_fold(0, |b, ((map, &c), &st)| map[c].map(|i| b + i * st))
            })
            .collect();
        let n = extent[rank - 1];
        let row_pos: Vec<usize> = (0..n).map(|q| (q % phases) * wq + q / phases).collect();
        let (xs, pad) = (xsp[rank - 1], last.pad_begin);
        let lo = pad.min(n);
        let hi = (pad + last.input).clamp(lo, n);
        // The interior copied in bulk (unit stride only); every other position is a border.
        let (interior, covered) = if xs != 1 || hi == lo {
            (Interior::None, lo..lo)
        } else if phases == 1 {
            (Interior::Copy { q0: lo, src: lo - pad, len: hi - lo }, lo..hi)
        } else if phases == 2 {
            let q0 = lo.next_multiple_of(2).min(hi);
            let pairs = (hi - q0) / 2;
            (Interior::Split2 { q0, src: q0 - pad, len: pairs }, q0..q0 + 2 * pairs)
        } else {
            let runs = (lo..(lo + phases).min(hi))
                .map(|q| (row_pos[q], q - pad, (hi - q).div_ceil(phases)))
                .collect();
            (Interior::Strided(runs), lo..hi)
        };
        let borders = (0..n)
            .filter(|q| !covered.contains(q))
            .map(|q| (row_pos[q], maps[rank - 1][q].map(|i| i * xs)))
            .collect();
        Some(Stage { channel, outer_len, row_len, phases, row_src, borders, interior })
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
        let wq = self.row_len / self.phases;
        for (row, &src) in dst[..self.channel].chunks_exact_mut(self.row_len).zip(&self.row_src) {
            let Some(off) = src else {
                row.fill(padv);
                continue;
            };
            let xr = &x[cbase + off..];
            for &(d, s) in &self.borders {
                row[d] = s.map_or(padv, |s| xr[s]);
            }
            match &self.interior {
                Interior::None => {}
                Interior::Copy { q0, src, len } => row[*q0..][..*len].copy_from_slice(&xr[*src..][..*len]),
                Interior::Split2 { q0, src, len } => {
                    if *len > 0 {
                        let (ev, od) = row.split_at_mut(wq);
                        split2(&xr[*src..][..2 * len], &mut ev[q0 / 2..][..*len], &mut od[q0 / 2..][..*len]);
                    }
                }
                Interior::Strided(runs) => {
                    // The runs read consecutive inputs (counts non-increasing): their first
                    // `whole` elements come from blocks of `phases` consecutive inputs, then
                    // each run's remainder.
                    let (p, whole) = (self.phases, runs.last().map_or(0, |r| r.2));
                    let src = &xr[runs.first().map_or(0, |r| r.1)..];
                    match (runs.len() == p).then_some(p) {
                        Some(3) => deinterleave::<T, 3>(src, runs, whole, row),
                        Some(4) => deinterleave::<T, 4>(src, runs, whole, row),
                        Some(5) => deinterleave::<T, 5>(src, runs, whole, row),
                        Some(6) => deinterleave::<T, 6>(src, runs, whole, row),
                        Some(7) => deinterleave::<T, 7>(src, runs, whole, row),
                        Some(8) => deinterleave::<T, 8>(src, runs, whole, row),
                        _ => {
                            for i in 0..whole {
                                for (&(d, _, _), &v) in runs.iter().zip(&src[i * p..]) {
                                    row[d + i] = v;
                                }
                            }
                        }
                    }
                    for &(d, s, count) in runs {
                        for i in whole..count {
                            row[d + i] = xr[s + i * p];
                        }
                    }
                }
            }
        }
    }
}

/// `row[runs[r].0 + i] = src[i·P + r]` for every run `r < P` and `i < n`: the first `n`
/// elements of every phase, read as blocks of `P` consecutive inputs. With `P` fixed the
/// compiler vectorizes the strided reads (wav2vec's stride-5 staging took 2.5 % of its
/// `gemm-tiled` time with a loop per phase, 0.6 % this way; Zen 4).
fn deinterleave<T: Copy, const P: usize>(src: &[T], runs: &[(usize, usize, usize)], n: usize, row: &mut [T]) {
    // The phase rows as disjoint slices of `row`, cut in the order of their offsets.
    let mut order: [usize; P] = std::array::from_fn(|r| r);
    order.sort_unstable_by_key(|&r| runs[r].0);
    let mut outs: [&mut [T]; P] = std::array::from_fn(|_| Default::default());
    let (mut rest, mut at) = (row, 0);
    for &r in &order {
        let tail = std::mem::take(&mut rest).split_at_mut(runs[r].0 - at).1;
        let (o, tail) = tail.split_at_mut(n);
        (outs[r], rest, at) = (o, tail, runs[r].0 + n);
    }
    for (i, block) in src.chunks_exact(P).take(n).enumerate() {
        for (o, &v) in outs.iter_mut().zip(block) {
            o[i] = v;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desc::{ConvDesc, PadMode, Padding};
    use crate::kernels::generic;

    /// Every staged position of 1-D and 2-D problems, strides 1–9 (every phase-split path: the
    /// plain copy, the two-phase split, the fixed-phase de-interleave and the general loop),
    /// against the position it reads, worked out one at a time.
    #[test]
    fn staged_positions_read_their_padded_inputs() {
        let modes = [
            PadMode::Zeros,
            PadMode::Constant(-7.0),
            PadMode::Replicate,
            PadMode::Reflect,
            PadMode::Circular,
        ];
        for stride in 1..=9 {
            for (len, kernel) in [(1, 1), (5, 3), (23, 4), (64, 10), (97, 7)] {
                for (pb, pe) in [(0, 0), (1, 2), (3, 0), (0, 4)] {
                    for &mode in &modes {
                        for rank2 in [false, true] {
                            if matches!(mode, PadMode::Reflect) && pb.max(pe) >= len {
                                continue;
                            }
                            let (input, weight, pad) = if rank2 {
                                (
                                    vec![1, 1, 3, len],
                                    vec![1, 1, 2, kernel],
                                    Padding::asymmetric(&[1, pb], &[0, pe]),
                                )
                            } else {
                                (vec![1, 1, len], vec![1, 1, kernel], Padding::asymmetric(&[pb], &[pe]))
                            };
                            let desc = ConvDesc::new().stride([stride]).padding(pad).padding_mode(mode);
                            let Ok(p) = ConvProblem::new(&desc, &input, &weight) else { continue };
                            let Some(st) = Stage::new(&p, true, usize::MAX) else { continue };
                            let x: Vec<f32> =
                                (0..input.iter().product::<usize>()).map(|i| i as f32 + 1.0).collect();
                            let padv = crate::geometry::pad_value(mode) as f32;
                            let mut dst = vec![f32::NAN; st.channel];
                            st.fill(&x, 0, padv, &mut dst, generic::dw_split2::<f32>);
                            let last = p.axes[p.axes.len() - 1];
                            let extent =
                                (last.output - 1) * last.stride + (last.kernel - 1) * last.dilation + 1;
                            let wq = st.phase_len();
                            for (r, row) in dst.chunks_exact(st.row_len).enumerate() {
                                let src_row =
                                    if rank2 { pad_source(r as isize - 1, 3, mode) } else { Some(0) };
                                for q in 0..extent {
                                    let want =
                                        match (src_row, pad_source(q as isize - pb as isize, len, mode)) {
                                            (Some(rr), Some(i)) => x[rr * len + i],
                                            _ => padv,
                                        };
                                    let got = row[(q % st.phases) * wq + q / st.phases];
                                    assert_eq!(
                                        got.to_bits(),
                                        want.to_bits(),
                                        "stride {stride}, len {len}, kernel {kernel}, pad {pb}/{pe}, {mode:?}, 2-D {rank2}: row {r}, position {q}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
