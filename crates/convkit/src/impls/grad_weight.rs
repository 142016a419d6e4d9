//! `grad-weight-gemm`: the weight gradient of a convolution as one GEMM per group,
//! `dW[K, C/g·taps] = Σ_n dY_n[K, P] · X̂_nᵀ[P, C/g·taps]`, the reduction running over every
//! output position of every sample, in blocks of [`KC`] positions.
//!
//! Each sample's input is staged once (padded with the padding mode, channels-first: see
//! [`Stage`]), so that the patch value of reduction column `r` (channel, tap) at position `p`
//! is `staged[row_off[r] + col_off[p]]`. For each block of positions, the gradient rows are
//! packed as the GEMM's left operand (`mr` output channels × positions) and the patch values
//! as `nr`-column panels (weight elements × positions); the same tile kernels as the
//! forward pass accumulate straight into the weight gradient's rows. A partial last panel
//! (weights per output channel not a multiple of `nr`) accumulates in scratch tiles, copied out
//! at the end. Workers split the weight gradient's columns by panels; every element is summed
//! in the same order whatever the split.
//!
//! **Shifted taps.** Where the innermost axis has stride 1 (or a stride below its taps), the
//! innermost taps of one (channel, outer tap) pair read the same staged row at shifted
//! offsets. Then a panel packs `nr` such pairs once over the staged range the block reads
//! (`vlen` consecutive staged elements, windows and gaps between output rows alike), and the
//! indirect tile kernel reads row `col_off[p] − col_off[p0] + shift` of it for every tap:
//! a third of the packing for 3-wide kernels, and no gap position is ever multiplied. The
//! tiles of a panel's taps lie side by side (`[tap][nr]` columns) and are put in the weight
//! gradient's order (`[nr][tap]`) after the last block.

use super::gemm_tiled::KC;
use super::grid::{split_cols, Part};
use super::split_join;
use super::staging::{tap_offsets, Stage};
use crate::geometry::{pad_value, unravel};
use crate::kernels::{scratch_rows, KernelSet, TileDst, MAX_NR};
use crate::scalar::Scalar;
use crate::shape::{data_strides, ConvProblem};

/// Largest staged sample, in bytes; larger problems use the reference.
const MAX_STAGE_BYTES: usize = 64 << 20;

/// The shifted-tap arrangement (see the module documentation).
struct Shift {
    /// Taps of the innermost axis: the tiles side by side per panel.
    taps: usize,
    /// (channel, outer tap) pairs: `cr / taps`.
    pairs: usize,
    /// Offset of pair `j`'s lowest innermost tap in a group's staged channels.
    pair_off: Vec<usize>,
    /// Per innermost tap: its offset from the pair's lowest.
    shift: Vec<usize>,
    /// Per innermost tap: the tile slot (`[slot][nr]` columns) its sums go to. Where the
    /// shifts are `0..taps` in some order (dilation 1) slot = shift, and one kernel call over
    /// `taps` panels computes them all.
    slot: Vec<usize>,
    /// The shifts are a permutation of `0..taps`.
    unit: bool,
    /// Per output position `p`: `(col_off[p] − col_off[p0])·nr`, `p0` its block's first.
    offs: Vec<usize>,
    /// Rows of the longest packed panel.
    vlen: usize,
}

/// Weight gradient by GEMM for one problem.
pub struct GradWeight<T> {
    p: ConvProblem,
    ks: KernelSet<T>,
    /// The kernel set's tile rows (output channels) and columns (weight elements).
    mr: usize,
    nr: usize,
    stage: Stage,
    cg: usize,
    kg: usize,
    /// Weight elements per output channel: `C/g · taps`.
    cr: usize,
    kpanels: usize,
    /// Panels of `nr` weight columns (of `nr` tap pairs where shifted) per output channel (the
    /// last maybe partial).
    panels: usize,
    /// Offset of reduction column `r` (channel within the group, tap) in a group's staged
    /// channels.
    row_off: Vec<usize>,
    /// Offset of output position `p`'s window in a staged channel.
    col_off: Vec<usize>,
    /// Runs of positions whose windows are consecutive in the staged input (an output row's
    /// positions, at innermost stride 1; else single positions), as `(first, len)`.
    runs: Vec<(usize, usize)>,
    /// The shifted-tap arrangement, where it packs less.
    shift: Option<Shift>,
    /// Gradient strides: per output channel, per output position, per sample.
    gy_strides: (usize, usize, usize),
    x_strides: (usize, usize),
    padv: T,
}

impl<T: Scalar> GradWeight<T> {
    /// The GEMM for `p` on kernel set `ks`, or `None` where the staged input would be too
    /// large.
    pub fn new(p: &ConvProblem, ks: KernelSet<T>) -> Option<Self> {
        let (mr, nr) = (ks.geometry.mr, ks.geometry.nr);
        let elem = std::mem::size_of::<T>();
        let stage = Stage::new(p, false, MAX_STAGE_BYTES / elem / p.in_channels.max(1))?;
        let (cg, kg) = (p.in_channels / p.groups, p.out_channels / p.groups);
        let kernel = p.kernel();
        let taps: usize = kernel.iter().product();
        let cr = cg * taps;
        let rank = p.axes.len();
        let ax = stage.axis_strides();
        let tap_off = tap_offsets(p, &ax, (1, 0));
        let row_off: Vec<usize> =
            (0..cg).flat_map(|c| tap_off.iter().map(move |&o| c * stage.channel + o)).collect();
        let out_sp = p.output_spatial();
        let outs: usize = out_sp.iter().product();
        let mut o = vec![0; rank];
        let col_off: Vec<usize> = (0..outs)
            .map(|q| {
                unravel(q, &out_sp, &mut o);
                p.axes.iter().enumerate().map(|(a, axis)| o[a] * axis.stride * ax[a]).sum()
            })
            .collect();
        let inner = if p.axes[rank - 1].stride == 1 { out_sp[rank - 1] } else { 1 };
        let runs = (0..outs).step_by(inner.max(1)).map(|q| (q, inner.min(outs - q))).collect();
        let shift = Self::shift(&row_off, &col_off, kernel[rank - 1], nr);
        let (yn, yc, ysp) = data_strides(p.layout, p.out_channels, &out_sp);
        let (xn, xc, _) = data_strides(p.layout, p.in_channels, &p.input_spatial());
        Some(GradWeight {
            ks,
            mr,
            nr,
            stage,
            cg,
            kg,
            cr,
            kpanels: kg.div_ceil(mr),
            panels: shift.as_ref().map_or(cr, |s| s.pairs).div_ceil(nr),
            row_off,
            col_off,
            runs,
            shift,
            gy_strides: (yc, ysp[rank - 1], yn),
            x_strides: (xn, xc),
            padv: T::from_f64(pad_value(p.padding_mode)),
            p: p.clone(),
        })
    }

    /// The shifted-tap arrangement for reduction columns at `row_off` (`taps` innermost taps
    /// per pair) and positions at `col_off`, where every pair's taps are the same shifts of
    /// its lowest one and a block's packed panel is shorter than its taps' panels.
    fn shift(row_off: &[usize], col_off: &[usize], taps: usize, nr: usize) -> Option<Shift> {
        let pairs = row_off.len() / taps;
        if pairs == 0 || col_off.is_empty() {
            return None;
        }
        let lowest = |j: usize| row_off[j * taps..][..taps].iter().copied().min().unwrap_or(0);
        let shift: Vec<usize> = row_off[..taps].iter().map(|&o| o - lowest(0)).collect();
        let same = (0..pairs).all(|j| row_off[j * taps..][..taps].iter().zip(&shift).all(|(&o, &s)| o == lowest(j) + s));
        let max_shift = shift.iter().copied().max().unwrap_or(0);
        let mut vlen = 0;
        let mut offs = Vec::with_capacity(col_off.len());
        for block in col_off.chunks(KC) {
            let first = block[0];
            if block.iter().any(|&c| c < first) {
                return None;
            }
            vlen = vlen.max(block.iter().map(|&c| c - first).max().unwrap_or(0) + 1 + max_shift);
            offs.extend(block.iter().map(|&c| (c - first) * nr));
        }
        if !same || vlen >= KC.min(col_off.len()) * taps {
            return None;
        }
        let mut sorted = shift.clone();
        sorted.sort_unstable();
        let unit = sorted.iter().enumerate().all(|(i, &s)| i == s);
        let slot = if unit { shift.clone() } else { (0..taps).collect() };
        Some(Shift { taps, pairs, pair_off: (0..pairs).map(lowest).collect(), shift, slot, unit, offs, vlen })
    }

    /// `grad-weight-gemm:` and the kernel set's level.
    pub fn name(&self) -> String {
        self.ks.name("grad-weight-gemm")
    }

    fn stage_len(&self) -> usize {
        self.stage.channel * self.p.in_channels
    }

    /// Tiles side by side per panel: the innermost taps where shifted, else 1.
    fn slots(&self) -> usize {
        self.shift.as_ref().map_or(1, |s| s.taps)
    }

    /// One worker's scratch: packed gradient rows, one packed panel, the partial panel's
    /// tiles of every group (they accumulate across samples), and spare rows.
    fn per_thread(&self) -> usize {
        let w = self.slots() * self.nr;
        self.kpanels * self.mr * KC
            + self.shift.as_ref().map_or(KC, |s| s.vlen) * self.nr
            + self.p.groups * self.kpanels * self.mr * w
            + self.mr * w
    }

    /// Scratch elements for `threads` workers.
    pub fn workspace(&self, threads: usize) -> usize {
        self.stage_len() + self.per_thread() * threads.max(1)
    }

    /// `gw = ∂L/∂w` (shape `(K, C/g, kernel…)`) from the input `x` and `gy = ∂L/∂y`.
    pub fn execute(&self, x: &[T], gy: &[T], gw: &mut [T], ws: &mut [T], threads: usize) {
        let threads = threads.max(1);
        if self.p.batch == 0 {
            gw.fill(T::ZERO);
            return;
        }
        let (staged, rest) = ws.split_at_mut(self.stage_len());
        let per = self.per_thread();
        let rest = &mut rest[..per * threads];
        let (xn, xc) = self.x_strides;
        let c = self.p.in_channels;
        let ch = self.stage.channel;
        let group_len = self.kg * self.cr;
        let cols = self.slots() * self.nr;
        for n in 0..self.p.batch {
            // Stage sample n, channels split over the workers.
            let cut = |t: usize| (c * t / threads) * ch;
            split_join(staged, &mut [], 0, threads, &cut, &|t, part, _| {
                let c0 = c * t / threads;
                for (ci, chan) in part.chunks_exact_mut(ch).enumerate() {
                    self.stage.fill(x, n * xn + (c0 + ci) * xc, self.padv, chan, self.ks.dw_split2);
                }
            });
            let staged = &*staged;
            for (g, gwg) in gw.chunks_exact_mut(group_len).enumerate() {
                let panel_cut = |t: usize| (self.panels * t / threads * cols).min(self.cr);
                split_cols(gwg, (self.kg, self.cr), rest, per, threads, &panel_cut, &|t, mut part, ws| {
                    let q0 = self.panels * t / threads;
                    let q1 = self.panels * (t + 1) / threads;
                    if self.shift.is_some() {
                        self.sample_shifted(staged, gy, n, g, (q0, q1), &mut part, ws);
                    } else {
                        self.sample(staged, gy, n, g, (q0, q1), &mut part, ws);
                    }
                });
            }
        }
    }

    /// The gradient rows of every `mr`-block of group `g`'s output channels at positions
    /// `p0..p0 + kc` of sample `n`, packed `[kp][p][mr]` (rows past the group zero).
    fn pack_rows(&self, gy: &[T], (n, g): (usize, usize), (p0, kc): (usize, usize), a_pack: &mut [T]) {
        let (yc, yp, yn) = self.gy_strides;
        if yp == 1 && self.mr == self.nr {
            // Channels-first with square tiles: `mr` gradient rows are `nr` runs for the
            // panel transpose (rows past the group repeat its last: their sums are not kept).
            for kp in 0..self.kpanels {
                let a = &mut a_pack[kp * self.mr * kc..][..self.mr * kc];
                let rows: [usize; MAX_NR] = std::array::from_fn(|i| {
                    let k = (kp * self.mr + i).min(self.kg - 1);
                    n * yn + (g * self.kg + k) * yc + p0
                });
                (self.ks.transpose_panel)(gy, &rows[..self.nr], kc, a);
            }
            return;
        }
        for kp in 0..self.kpanels {
            let a = &mut a_pack[kp * self.mr * kc..][..self.mr * kc];
            for i in 0..self.mr {
                let k = kp * self.mr + i;
                if k < self.kg {
                    let base = n * yn + (g * self.kg + k) * yc;
                    for (p, d) in a.iter_mut().skip(i).step_by(self.mr).enumerate() {
                        *d = gy[base + (p0 + p) * yp];
                    }
                } else {
                    a.iter_mut().skip(i).step_by(self.mr).for_each(|d| *d = T::ZERO);
                }
            }
        }
    }

    /// Accumulate sample `n`'s contribution to panels `qs` of group `g` into `part`.
    #[allow(clippy::too_many_arguments)]
    fn sample(
        &self,
        staged: &[T],
        gy: &[T],
        n: usize,
        g: usize,
        qs: (usize, usize),
        part: &mut Part<'_, T>,
        ws: &mut [T],
    ) {
        if qs.0 == qs.1 {
            return;
        }
        let (a_pack, rest) = ws.split_at_mut(self.kpanels * self.mr * KC);
        let (b_pack, rest) = rest.split_at_mut(KC * self.nr);
        let (scratch, spare) = rest.split_at_mut(self.p.groups * self.kpanels * self.mr * self.nr);
        let scratch =
            &mut scratch[g * self.kpanels * self.mr * self.nr..][..self.kpanels * self.mr * self.nr];
        let outs = self.col_off.len();
        let src = &staged[g * self.cg * self.stage.channel..];
        let partial = !self.cr.is_multiple_of(self.nr) && qs.1 == self.panels;
        let last = self.p.batch - 1;
        for p0 in (0..outs).step_by(KC) {
            let kc = KC.min(outs - p0);
            let first = n == 0 && p0 == 0;
            let end = n == last && p0 + kc == outs;
            self.pack_rows(gy, (n, g), (p0, kc), a_pack);
            for q in qs.0..qs.1 {
                // Panel q: weight columns q·self.nr.. at the block's positions, [p][self.nr], run by run
                // (a partial panel repeats its last column).
                let width = self.nr.min(self.cr - q * self.nr);
                let rows: [usize; MAX_NR] =
                    std::array::from_fn(|j| self.row_off[q * self.nr + j.min(width - 1)]);
                let first_run = self.runs.partition_point(|&(s, l)| s + l <= p0);
                for &(s, l) in &self.runs[first_run..] {
                    if s >= p0 + kc {
                        break;
                    }
                    let (a, b) = (s.max(p0), (s + l).min(p0 + kc));
                    let o = self.col_off[a];
                    let rr: [usize; MAX_NR] = std::array::from_fn(|j| rows[j] + o);
                    (self.ks.transpose_panel)(src, &rr[..self.nr], b - a, &mut b_pack[(a - p0) * self.nr..]);
                }
                let in_scratch = partial && q + 1 == qs.1;
                for kp in 0..self.kpanels {
                    let live = self.mr.min(self.kg - kp * self.mr);
                    let a = &a_pack[kp * self.mr * kc..][..self.mr * kc];
                    let mut dst = if in_scratch {
                        TileDst {
                            rows: scratch_rows(&mut scratch[kp * self.mr * self.nr..], self.mr, self.nr),
                            accumulate: !first,
                            bias: None,
                            live,
                        }
                    } else {
                        let col = q * self.nr - qs.0 * self.nr;
                        TileDst {
                            rows: part.tile(self.mr, (kp * self.mr, live), (col, self.nr), spare),
                            accumulate: !first,
                            bias: None,
                            live,
                        }
                    };
                    (self.ks.gemm)(kc, a, b_pack, (1, 0), &mut dst);
                }
                if in_scratch && end {
                    for kp in 0..self.kpanels {
                        for i in 0..self.mr.min(self.kg - kp * self.mr) {
                            let row = part.row(kp * self.mr + i);
                            let col = q * self.nr - qs.0 * self.nr;
                            row[col..col + width]
                                .copy_from_slice(&scratch[(kp * self.mr + i) * self.nr..][..width]);
                        }
                    }
                }
            }
        }
    }

    /// [`Self::sample`] with shifted taps: panel `q` holds tap pairs `q·nr..`, and its tiles
    /// (one per innermost tap, `[slot][nr]` columns) are put in the weight gradient's order
    /// after the last block.
    #[allow(clippy::too_many_arguments)]
    fn sample_shifted(
        &self,
        staged: &[T],
        gy: &[T],
        n: usize,
        g: usize,
        qs: (usize, usize),
        part: &mut Part<'_, T>,
        ws: &mut [T],
    ) {
        let Some(sh) = self.shift.as_ref() else { return };
        if qs.0 == qs.1 {
            return;
        }
        let (nr, mr) = (self.nr, self.mr);
        let w = sh.taps * nr;
        let (a_pack, rest) = ws.split_at_mut(self.kpanels * mr * KC);
        let (b_pack, rest) = rest.split_at_mut(sh.vlen * nr);
        let (scratch, spare) = rest.split_at_mut(self.p.groups * self.kpanels * mr * w);
        let scratch = &mut scratch[g * self.kpanels * mr * w..][..self.kpanels * mr * w];
        let outs = self.col_off.len();
        let src = &staged[g * self.cg * self.stage.channel..];
        let partial = !sh.pairs.is_multiple_of(nr) && qs.1 == self.panels;
        let max_shift = sh.shift.iter().copied().max().unwrap_or(0);
        let last = self.p.batch - 1;
        let mut end = false;
        for p0 in (0..outs).step_by(KC) {
            let kc = KC.min(outs - p0);
            let first = n == 0 && p0 == 0;
            end = n == last && p0 + kc == outs;
            self.pack_rows(gy, (n, g), (p0, kc), a_pack);
            let v0 = self.col_off[p0];
            let vlen = self.col_off[p0 + kc - 1] - v0 + 1 + max_shift;
            let b = &mut b_pack[..vlen * nr];
            let offs = &sh.offs[p0..p0 + kc];
            for q in qs.0..qs.1 {
                // Panel q: tap pairs q·nr.. over the staged range the block reads, [v][nr]
                // (a partial panel repeats its last pair).
                let width = nr.min(sh.pairs - q * nr);
                let rows: [usize; MAX_NR] = std::array::from_fn(|j| sh.pair_off[q * nr + j.min(width - 1)] + v0);
                (self.ks.transpose_panel)(src, &rows[..nr], vlen, b);
                let in_scratch = partial && q + 1 == qs.1;
                for kp in 0..self.kpanels {
                    let live = mr.min(self.kg - kp * mr);
                    let a = &a_pack[kp * mr * kc..][..mr * kc];
                    let mut dst = if in_scratch {
                        TileDst {
                            rows: scratch_rows(&mut scratch[kp * mr * w..], mr, w),
                            accumulate: !first,
                            bias: None,
                            live,
                        }
                    } else {
                        let col = (q - qs.0) * w;
                        TileDst {
                            rows: part.tile(mr, (kp * mr, live), (col, w), spare),
                            accumulate: !first,
                            bias: None,
                            live,
                        }
                    };
                    if sh.unit {
                        (self.ks.gemm_indirect)(kc, a, b, (0, sh.taps), offs, &mut dst);
                    } else {
                        for (t, &s) in sh.shift.iter().enumerate() {
                            let mut one = TileDst {
                                rows: dst.rows.each_mut().map(|r| r.get_mut(sh.slot[t] * nr..).unwrap_or_default()),
                                accumulate: !first,
                                bias: None,
                                live,
                            };
                            (self.ks.gemm_indirect)(kc, a, b, (s * nr, 1), offs, &mut one);
                        }
                    }
                }
            }
        }
        if end {
            // Columns [slot][nr] of each panel become [nr][tap].
            let tmp = &mut spare[..w];
            for q in qs.0..qs.1 {
                let width = nr.min(sh.pairs - q * nr);
                let col = (q - qs.0) * w;
                let in_scratch = partial && q + 1 == qs.1;
                for k in 0..self.kg {
                    let row = part.row(k);
                    let from: &[T] = if in_scratch {
                        &scratch[k * w..][..w]
                    } else {
                        tmp.copy_from_slice(&row[col..col + w]);
                        tmp
                    };
                    for j in 0..width {
                        for (t, &s) in sh.slot.iter().enumerate() {
                            row[col + j * sh.taps + t] = from[s * nr + j];
                        }
                    }
                }
            }
        }
    }
}
