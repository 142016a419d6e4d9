//! `grad-weight-gemm`: the weight gradient of a convolution as one GEMM per group,
//! `dW[K, C/g·taps] = Σ_n dY_n[K, P] · X̂_nᵀ[P, C/g·taps]`, the reduction running over every
//! output position of every sample, in blocks of [`KC`] (or [`SHIFT_KC`]) positions.
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
//! **Shifted taps.** A weight column is a (channel, tap) pair, and the taps of one channel
//! read the same staged channel at fixed shifts (`tap offset` in the staged layout). Where that
//! packs less (stride 1, or a stride below the taps, along the trailing axes), the columns
//! are split into *pairs* (channel, leading taps) and the taps of the trailing axes: a panel
//! packs `nr` pairs once over the whole staged range a block of [`SHIFT_KC`] positions reads
//! (`vlen` consecutive staged elements: windows, the gaps between output rows, the shifts),
//! and the indirect tile kernel reads row `col_off[p] − col_off[p0] + shift` of it for each
//! tap (taps whose shifts are consecutive in one call, as consecutive panels). A 3×3
//! stride-1 kernel packs one panel row per staged element instead of nine per position, and
//! no gap position is ever multiplied. The tiles of a panel's taps lie side by side
//! (`[slot][nr]` columns) and are put in the weight gradient's order (`[nr][tap]`) after the
//! last block. The sums, and their order, are the same whatever the thread count.

use super::gemm_tiled::KC;
use super::grid::{split_cols, Part};
use super::split_join;
use super::staging::{tap_offsets, Stage};
use crate::geometry::{pad_value, unravel};
use crate::kernels::{scratch_rows, KernelSet, TileDst, MAX_MR, MAX_NR};
use crate::scalar::Scalar;
use crate::shape::{data_strides, ConvProblem};

/// Largest staged sample, in bytes; larger problems use the reference.
const MAX_STAGE_BYTES: usize = 64 << 20;

/// Positions per block where taps are shifted: longer blocks than [`KC`] pack fewer panel
/// rows for the shifts (measured 256 → 1024: about 3 % faster on the suite's 3×3 case, Zen 4).
const SHIFT_KC: usize = 1024;

/// The shifted-tap arrangement (see the module documentation).
struct Shift {
    /// Positions per block.
    kc: usize,
    /// Taps per pair (those of the trailing axes): the tiles side by side per panel.
    taps: usize,
    /// (channel, leading taps) pairs: `cr / taps`.
    pairs: usize,
    /// Offset of pair `j`'s lowest tap in a group's staged channels.
    pair_off: Vec<usize>,
    /// Per tap of a pair: the tile slot (`[slot][nr]` columns) its sums go to, the taps
    /// ordered by their offset from the pair's lowest.
    slot: Vec<usize>,
    /// Slots `s0..s0 + len` whose offsets are `d, d + 1, …`: one indirect kernel call over
    /// `len` panels of the packed panel each, as `(s0, len, d)`.
    calls: Vec<(usize, usize, usize)>,
    /// Largest offset of a tap from its pair's lowest.
    max_shift: usize,
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
        let shift = Self::shift(&row_off, &col_off, &kernel, nr);
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

    /// The shifted-tap arrangement packing least for reduction columns at `row_off` and
    /// positions at `col_off`: each split of the axes into leading ones (pairs of a channel
    /// and a leading tap) and trailing ones (taps read at shifts of a pair's packed panel) is
    /// tried, and the one whose packed panels are shortest in all wins, if shorter than the
    /// plain panels and with at least as many panels as a few workers (4) can share.
    fn shift(row_off: &[usize], col_off: &[usize], kernel: &[usize], nr: usize) -> Option<Shift> {
        let bk = SHIFT_KC;
        let cr = row_off.len();
        let kc = bk.min(col_off.len());
        if cr == 0 || kc == 0 || col_off.chunks(bk).any(|b| b.iter().any(|&c| c < b[0])) {
            return None;
        }
        let span =
            col_off.chunks(bk).map(|b| b.iter().map(|&c| c - b[0]).max().unwrap_or(0)).max().unwrap_or(0);
        let plain = cr.div_ceil(nr) * nr * kc;
        let min_panels = cr.div_ceil(nr).min(4);
        let mut best: Option<(usize, usize)> = None;
        for a in 0..kernel.len() {
            let taps: usize = kernel[a..].iter().product();
            let pairs = cr / taps;
            let lowest = |j: usize| row_off[j * taps..][..taps].iter().copied().min().unwrap_or(0);
            let shifts = row_off[..taps].iter().map(|&o| o - lowest(0));
            let max_shift = shifts.max().unwrap_or(0);
            let vlen = span + 1 + max_shift;
            let volume = pairs.div_ceil(nr) * nr * vlen;
            if pairs.div_ceil(nr) >= min_panels && volume < plain && best.is_none_or(|b| volume < b.1) {
                best = Some((taps, volume));
            }
        }
        let (taps, _) = best?;
        let pairs = cr / taps;
        let lowest = |j: usize| row_off[j * taps..][..taps].iter().copied().min().unwrap_or(0);
        let shift: Vec<usize> = row_off[..taps].iter().map(|&o| o - lowest(0)).collect();
        let same = (0..pairs)
            .all(|j| row_off[j * taps..][..taps].iter().zip(&shift).all(|(&o, &s)| o == lowest(j) + s));
        if !same {
            return None;
        }
        let max_shift = shift.iter().copied().max().unwrap_or(0);
        let mut order: Vec<usize> = (0..taps).collect();
        order.sort_by_key(|&t| shift[t]);
        let mut slot = vec![0; taps];
        for (s, &t) in order.iter().enumerate() {
            slot[t] = s;
        }
        let mut calls: Vec<(usize, usize, usize)> = Vec::new();
        for (s, &t) in order.iter().enumerate() {
            match calls.last_mut() {
                Some((s0, len, d)) if *d + *len == shift[t] && *s0 + *len == s => *len += 1,
                _ => calls.push((s, 1, shift[t])),
            }
        }
        let mut offs = Vec::with_capacity(col_off.len());
        for block in col_off.chunks(bk) {
            offs.extend(block.iter().map(|&c| (c - block[0]) * nr));
        }
        Some(Shift {
            kc: bk,
            taps,
            pairs,
            pair_off: (0..pairs).map(lowest).collect(),
            slot,
            calls,
            max_shift,
            offs,
            vlen: span + 1 + max_shift,
        })
    }

    /// Taps per packed pair where the taps are shifted (see the module documentation), else
    /// `None`.
    pub fn shifted_taps(&self) -> Option<usize> {
        self.shift.as_ref().map(|s| s.taps)
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
        self.kpanels * self.mr * self.shift.as_ref().map_or(KC, |s| s.kc)
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
        if yp == 1 && matches!(self.mr, 4 | 6 | 8) {
            // Channels-first: whole runs of each row, interleaved with the tile rows known.
            for kp in 0..self.kpanels {
                let a = &mut a_pack[kp * self.mr * kc..][..self.mr * kc];
                let rows: [&[T]; MAX_MR] = std::array::from_fn(|i| {
                    let k = (kp * self.mr + i).min(self.kg - 1);
                    gy.get(n * yn + (g * self.kg + k) * yc + p0..).map_or(&[][..], |r| &r[..kc])
                });
                match self.mr {
                    4 => interleave::<T, 4>(&rows, a),
                    6 => interleave::<T, 6>(&rows, a),
                    _ => interleave::<T, 8>(&rows, a),
                }
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
        let (a_pack, rest) = ws.split_at_mut(self.kpanels * mr * sh.kc);
        let (b_pack, rest) = rest.split_at_mut(sh.vlen * nr);
        let (scratch, spare) = rest.split_at_mut(self.p.groups * self.kpanels * mr * w);
        let scratch = &mut scratch[g * self.kpanels * mr * w..][..self.kpanels * mr * w];
        let outs = self.col_off.len();
        let src = &staged[g * self.cg * self.stage.channel..];
        let partial = !sh.pairs.is_multiple_of(nr) && qs.1 == self.panels;
        let max_shift = sh.max_shift;
        let last = self.p.batch - 1;
        let mut end = false;
        for p0 in (0..outs).step_by(sh.kc) {
            let kc = sh.kc.min(outs - p0);
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
                let rows: [usize; MAX_NR] =
                    std::array::from_fn(|j| sh.pair_off[q * nr + j.min(width - 1)] + v0);
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
                    for &(s0, len, d) in &sh.calls {
                        let mut run = TileDst {
                            rows: dst.rows.each_mut().map(|r| r.get_mut(s0 * nr..).unwrap_or_default()),
                            accumulate: !first,
                            bias: None,
                            live,
                        };
                        (self.ks.gemm_indirect)(kc, a, b, (d * nr, len), offs, &mut run);
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

/// `a[p·M + i] = rows[i][p]` for `p < a.len() / M`, `i < M`: `M` runs interleaved, eight
/// positions at a time (rows past the tile's live ones repeat a live row: their sums are not
/// kept).
fn interleave<T: Copy, const M: usize>(rows: &[&[T]; MAX_MR], a: &mut [T]) {
    let len = a.len() / M;
    let rows: [&[T]; M] = std::array::from_fn(|i| &rows[i][..len]);
    let mut chunks = a.chunks_exact_mut(8 * M);
    for (c, d) in (&mut chunks).enumerate() {
        let v: [[T; 8]; M] = std::array::from_fn(|i| rows[i][c * 8..][..8].try_into().expect("8 elements"));
        for (p, dp) in d.chunks_exact_mut(M).enumerate() {
            for i in 0..M {
                dp[i] = v[i][p];
            }
        }
    }
    let done = len / 8 * 8;
    for (p, dp) in chunks.into_remainder().chunks_exact_mut(M).enumerate() {
        for i in 0..M {
            dp[i] = rows[i][done + p];
        }
    }
}
