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
    /// Panels of `nr` weight columns per output channel (the last maybe partial).
    panels: usize,
    /// Offset of reduction column `r` (channel within the group, tap) in a group's staged
    /// channels.
    row_off: Vec<usize>,
    /// Offset of output position `p`'s window in a staged channel.
    col_off: Vec<usize>,
    /// Runs of positions whose windows are consecutive in the staged input (an output row's
    /// positions, at innermost stride 1; else single positions), as `(first, len)`.
    runs: Vec<(usize, usize)>,
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
        let row_off = (0..cg).flat_map(|c| tap_off.iter().map(move |&o| c * stage.channel + o)).collect();
        let out_sp = p.output_spatial();
        let outs: usize = out_sp.iter().product();
        let mut o = vec![0; rank];
        let col_off = (0..outs)
            .map(|q| {
                unravel(q, &out_sp, &mut o);
                p.axes.iter().enumerate().map(|(a, axis)| o[a] * axis.stride * ax[a]).sum()
            })
            .collect();
        let inner = if p.axes[rank - 1].stride == 1 { out_sp[rank - 1] } else { 1 };
        let runs = (0..outs).step_by(inner.max(1)).map(|q| (q, inner.min(outs - q))).collect();
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
            panels: cr.div_ceil(nr),
            row_off,
            col_off,
            runs,
            gy_strides: (yc, ysp[rank - 1], yn),
            x_strides: (xn, xc),
            padv: T::from_f64(pad_value(p.padding_mode)),
            p: p.clone(),
        })
    }

    /// `grad-weight-gemm:` and the kernel set's level.
    pub fn name(&self) -> String {
        self.ks.name("grad-weight-gemm")
    }

    fn stage_len(&self) -> usize {
        self.stage.channel * self.p.in_channels
    }

    /// One worker's scratch: packed gradient rows, one packed panel, the partial panel's
    /// tiles of every group (they accumulate across samples), and spare rows.
    fn per_thread(&self) -> usize {
        self.kpanels * self.mr * KC
            + KC * self.nr
            + self.p.groups * self.kpanels * self.mr * self.nr
            + self.mr * self.nr
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
                let panel_cut = |t: usize| (self.panels * t / threads * self.nr).min(self.cr);
                split_cols(gwg, (self.kg, self.cr), rest, per, threads, &panel_cut, &|t, mut part, ws| {
                    let q0 = self.panels * t / threads;
                    let q1 = self.panels * (t + 1) / threads;
                    self.sample(staged, gy, n, g, (q0, q1), &mut part, ws);
                });
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
        let (yc, yp, yn) = self.gy_strides;
        let outs = self.col_off.len();
        let src = &staged[g * self.cg * self.stage.channel..];
        let partial = !self.cr.is_multiple_of(self.nr) && qs.1 == self.panels;
        let last = self.p.batch - 1;
        for p0 in (0..outs).step_by(KC) {
            let kc = KC.min(outs - p0);
            let first = n == 0 && p0 == 0;
            let end = n == last && p0 + kc == outs;
            // Gradient rows of every self.mr-block of output channels: [kp][p][self.mr].
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
}
