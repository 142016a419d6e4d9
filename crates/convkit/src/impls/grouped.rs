//! `grouped-direct`: direct convolution for grouped problems (2 groups or more) with few
//! channels per group (ResNeXt's 32 groups of 4), channels first, one or two spatial axes,
//! any kernel size, stride, dilation and padding mode. Work is split over (image, group)
//! pairs; for each, bands of output rows are computed from a copy of the input rows they read
//! (padding applied, inner stride split into phases) staged in the workspace, by a band kernel
//! that vectorizes across output columns: per tap, the shifted input vectors are loaded once
//! and multiplied with a broadcast weight per output channel of the group. A GEMM formulation
//! instead wastes most of its tile on a group's few output channels.
use super::{split_join, ConvImpl};
use crate::geometry::{pad_source, pad_value};
use crate::isa::Isa;
use crate::kernels::grouped::{GroupBand, GroupedFn, GROUP_KB, GROUP_SLACK};
use crate::kernels::{impl_name, KernelSet};
use crate::scalar::Scalar;
use crate::shape::{Axis, ConvProblem};
use crate::Layout;

/// Most input channels per group this path takes.
pub const MAX_CG: usize = 8;
/// Most output channels per group this path takes.
pub const MAX_KG: usize = 8;
/// Most elements per thread of a staged band.
pub const MAX_BAND: usize = 1 << 16;
/// Elements of a staged band that stay in L1 alongside the output rows.
pub const BAND_TARGET: usize = 1 << 12;

/// The inner axis of `p`, and the outer one (a unit axis for one-dimensional problems).
fn axes(p: &ConvProblem) -> (Axis, Axis) {
    let rank = p.axes.len();
    let outer = if rank == 2 { p.axes[0] } else { Axis::UNIT };
    (outer, p.axes[rank - 1])
}

/// How one staged row is laid out: `phases` runs of `wq` (padded positions `ph, ph + phases, …`).
fn row_layout(last: &Axis) -> (usize, usize) {
    let ew = (last.output.max(1) - 1) * last.stride + (last.kernel - 1) * last.dilation + 1;
    let phases = last.stride;
    (phases, ew.div_ceil(phases))
}

/// Staged rows `n` output rows read.
fn rows_for(n: usize, outer: &Axis) -> usize {
    (n.max(1) - 1) * outer.stride + (outer.kernel - 1) * outer.dilation + 1
}

/// Whether `grouped-direct` handles `p` with kernel set `set`.
pub fn supports<T>(p: &ConvProblem, set: &KernelSet<T>) -> Result<(), String> {
    let Some((max_product, _)) = set.grouped else {
        return Err(format!("no grouped kernel at {}", set.isa));
    };
    if p.groups < 2 {
        return Err("1 group: a dense convolution".into());
    }
    let (cg, kg) = (p.in_channels / p.groups, p.out_channels / p.groups);
    if cg > MAX_CG || kg > MAX_KG {
        return Err(format!("{cg} input and {kg} output channels per group, at most {MAX_CG} and {MAX_KG}"));
    }
    if cg * kg > max_product {
        return Err(format!(
            "{cg}×{kg} channels per group, more than the {max_product} the {} kernel beats GEMM on",
            set.isa
        ));
    }
    if p.layout != Layout::Nchw {
        return Err("channels-last layout".into());
    }
    if p.axes.len() > 2 {
        return Err(format!("{} spatial axes, at most 2", p.axes.len()));
    }
    let (outer, last) = axes(p);
    let (phases, wq) = row_layout(&last);
    let one = phases
        .checked_mul(wq)
        .and_then(|pitch| pitch.checked_mul(rows_for(1, &outer)))
        .and_then(|n| n.checked_mul(cg));
    if one.is_none_or(|n| n > MAX_BAND) {
        return Err(format!("one output row's staged input exceeds {MAX_BAND} elements"));
    }
    Ok(())
}

/// Grouped direct convolution prepared for one problem.
pub struct Grouped<T> {
    isa: Isa,
    kernel: GroupedFn<T>,
    /// Per group, the packed weights (see [`GroupBand`]), `wpg` each.
    w: Vec<T>,
    wpg: usize,
    groups: usize,
    cg: usize,
    kg: usize,
    outer: Axis,
    win: usize,
    plane_in: usize,
    xn: usize,
    wout: usize,
    plane_out: usize,
    /// Per inner tap, its offset within a staged row.
    cols: Vec<usize>,
    /// Padded row → input row (`None`: the padding constant).
    hmap: Vec<Option<usize>>,
    /// Runs `(staged position, input column, length)` copied unchanged.
    runs: Vec<(usize, usize, usize)>,
    /// Every other staged position and the input column it holds (`None`: padding).
    borders: Vec<(usize, Option<usize>)>,
    pitch: usize,
    /// Elements per staged channel (`rows_for(band_rows) · pitch`).
    chan: usize,
    band_rows: usize,
    padv: T,
}

impl<T: Scalar> Grouped<T> {
    /// Prepare `p` (which [`supports`] accepts with `ks`) with weights `w`.
    pub fn new(p: &ConvProblem, w: &[T], ks: KernelSet<T>) -> Self {
        let (outer, last) = axes(p);
        let (cg, kg) = (p.in_channels / p.groups, p.out_channels / p.groups);
        let (kh, kw) = (outer.kernel, last.kernel);
        let taps = cg * kh * kw;
        // True convolution: both axes reversed, so the kernel always walks forward.
        let wk = |k: usize, ci: usize, t: usize| {
            let t = if p.flip { kh * kw - 1 - t } else { t };
            w[(k * cg + ci) * kh * kw + t]
        };
        let wpg = kg * taps;
        let mut packed = Vec::with_capacity(p.groups * wpg);
        for g in 0..p.groups {
            for k0 in (0..kg).step_by(GROUP_KB) {
                let kb = GROUP_KB.min(kg - k0);
                for ci in 0..cg {
                    for t in 0..kh * kw {
                        packed.extend((0..kb).map(|j| wk(g * kg + k0 + j, ci, t)));
                    }
                }
            }
        }
        let (phases, wq) = row_layout(&last);
        let pitch = phases * wq;
        let ew = (last.output.max(1) - 1) * last.stride + (last.kernel - 1) * last.dilation + 1;
        let src = |q: usize| {
            (q < ew)
                .then(|| pad_source(q as isize - last.pad_begin as isize, last.input, p.padding_mode))
                .flatten()
        };
        let mut runs = Vec::new();
        let mut written = vec![false; pitch];
        if phases == 1 {
            let lo = last.pad_begin.min(ew);
            let hi = (last.pad_begin + last.input).clamp(lo, ew);
            if hi > lo {
                runs.push((lo, lo - last.pad_begin, hi - lo));
                written[lo..hi].fill(true);
            }
        }
        let borders =
            (0..pitch).filter(|&d| !written[d]).map(|d| (d, src((d % wq) * phases + d / wq))).collect();
        let cols = (0..kw)
            .map(|j| {
                let q = j * last.dilation;
                (q % phases) * wq + q / phases
            })
            .collect();
        let hmap = (0..rows_for(outer.output, &outer))
            .map(|q| pad_source(q as isize - outer.pad_begin as isize, outer.input, p.padding_mode))
            .collect();
        // The most output rows whose staged rows fit `cap`.
        let fit = |cap: usize| {
            (1..=outer.output.max(1))
                .take_while(|&n| cg * rows_for(n, &outer) * pitch <= cap)
                .last()
                .unwrap_or(1)
        };
        // Bands that stay in L1, unless the rows shared with the next band (the halo) would
        // then be over half of those staged.
        let halo = ((outer.kernel - 1) * outer.dilation).div_ceil(outer.stride);
        let band_rows = fit(BAND_TARGET).max(2 * halo).min(fit(MAX_BAND)).clamp(1, outer.output.max(1));
        Grouped {
            isa: ks.isa,
            kernel: ks.grouped.expect("supports checked the grouped kernel").1,
            w: packed,
            wpg,
            groups: p.groups,
            cg,
            kg,
            outer,
            win: last.input,
            plane_in: outer.input * last.input,
            xn: p.in_channels * outer.input * last.input,
            wout: last.output,
            plane_out: outer.output * last.output,
            cols,
            hmap,
            runs,
            borders,
            pitch,
            chan: rows_for(band_rows, &outer) * pitch,
            band_rows,
            padv: T::from_f64(pad_value(p.padding_mode)),
        }
    }

    fn per_thread(&self) -> usize {
        self.cg * self.chan + GROUP_SLACK
    }

    /// Copy padded rows `pr0..pr0 + n` of the group's `cg` input planes (from `x[base..]`)
    /// into `ws`, one channel every `chan` elements.
    fn stage(&self, x: &[T], base: usize, pr0: usize, n: usize, ws: &mut [T]) {
        for ci in 0..self.cg {
            let plane = &x[base + ci * self.plane_in..][..self.plane_in];
            let dst = &mut ws[ci * self.chan..][..n * self.pitch];
            for (row, &ir) in dst.chunks_exact_mut(self.pitch).zip(&self.hmap[pr0..pr0 + n]) {
                let Some(ir) = ir else {
                    row.fill(self.padv);
                    continue;
                };
                let src = &plane[ir * self.win..][..self.win];
                for &(d, s, len) in &self.runs {
                    row[d..d + len].copy_from_slice(&src[s..s + len]);
                }
                for &(d, s) in &self.borders {
                    row[d] = s.map_or(self.padv, |c| src[c]);
                }
            }
        }
    }
}

impl<T: Scalar> ConvImpl<T> for Grouped<T> {
    fn name(&self) -> String {
        impl_name("grouped-direct", self.isa)
    }

    fn workspace(&self, threads: usize) -> usize {
        self.per_thread() * threads.max(1)
    }

    fn execute(&self, x: &[T], bias: Option<&[T]>, y: &mut [T], ws: &mut [T], threads: usize) {
        let unit = self.kg * self.plane_out;
        if unit == 0 || y.is_empty() {
            return;
        }
        // Work units: (image, group) pairs, each a contiguous run of `kg` output planes.
        let units = y.len() / unit;
        let threads = threads.clamp(1, units.max(1));
        let first = |t: usize| units * t / threads;
        let cut = |t: usize| first(t) * unit;
        let hout = self.outer.output;
        split_join(y, ws, self.per_thread(), threads, &cut, &|t, part, ws| {
            for (i, yu) in part.chunks_exact_mut(unit).enumerate() {
                let u = first(t) + i;
                let (n, g) = (u / self.groups, u % self.groups);
                let base = n * self.xn + g * self.cg * self.plane_in;
                let w = &self.w[g * self.wpg..][..self.wpg];
                let bias = bias.map(|b| &b[g * self.kg..][..self.kg]);
                for oy0 in (0..hout).step_by(self.band_rows) {
                    let rows = self.band_rows.min(hout - oy0);
                    self.stage(x, base, oy0 * self.outer.stride, rows_for(rows, &self.outer), ws);
                    let band = GroupBand {
                        x: ws,
                        cg: self.cg,
                        chan: self.chan,
                        pitch: self.pitch,
                        cols: &self.cols,
                        kh: self.outer.kernel,
                        sh: self.outer.stride,
                        dh: self.outer.dilation,
                        w,
                        kg: self.kg,
                        bias,
                        rows,
                        wout: self.wout,
                        plane: self.plane_out,
                        y0: oy0 * self.wout,
                    };
                    (self.kernel)(&band, yu);
                }
            }
        });
    }
}
