//! `gemm-tiled`: convolution as a GEMM `Y[K, P] = W[K, C/g·taps] · X̂[C/g·taps, P]` per group,
//! where the patch matrix `X̂` is never materialised whole. The reduction is cut into blocks of
//! [`KC`] rows; for each block, the rows of a chunk of `nr`-column panels (up to
//! [`CHUNK_BYTES`], L2-resident) are gathered into the workspace, then every packed weight
//! block (`mr` rows, L1-resident) is multiplied by each panel of the chunk in turn, the tiles
//! going straight into the output rows (channels-first) with the bias added after the last
//! block. Where output rows are a whole number of panels long and the windows of successive
//! output rows overlap (so the input rows stay in cache), chunks are cut at output rows and
//! read in place by the indirect kernel instead of being copied.
//!
//! Where the input can be read in place or staged, a panel is gathered by plain contiguous
//! copies. The input is read in place when the windows never leave it, the layout is
//! channels-first and the innermost stride is 1. Otherwise each sample is first staged: padded
//! (with the padding mode applied), converted to channels-first and, for an innermost stride
//! `s > 1`, split into `s` phases along the innermost axis, so that every tap of every output
//! row reads consecutive elements. Then the source offset of reduction row `r` at column `p`
//! is `row_off[r] + col_off(p)`, both precomputed or cheap. Inputs whose staged copy would
//! exceed [`MAX_STAGE_BYTES`] are gathered element by element through per-axis tap tables.
//!
//! Threads: channels-first output is split either by blocks of `mr` output channels
//! (contiguous in memory) or by column panels, whichever balances the tiles better and packs
//! fewer panels twice (few output channels: columns); channels-last output by column panels.
//! Every output is computed by the same sequence of operations whatever the split.

use super::grid::{split_cols, Part};
use super::staging::{tap_offsets, Stage};
use super::{split_join, split_join2, ConvImpl, IlvCutFn, IlvPlaceFn};
use crate::geometry::{pad_value, tap_table, unravel};
use crate::kernels::{scratch_rows, GemmIndirect, IlvPlace, KernelSet, TileDst, MAX_NR};
use crate::scalar::Scalar;
use crate::shape::{data_strides, ConvProblem};
use crate::Layout;

/// Reduction block: a `KC × nr` slice of a patch panel (16 KiB in f32 for 16-column tiles).
pub const KC: usize = 256;

/// The reduction block length for `cr` reduction rows: the rows split into as few blocks of at
/// most [`KC`] as possible, of equal length (the last may be shorter by less than one row per
/// block). A short last block would load and store every tile once more for few FMAs
/// (`vgg16_3x3_224`, 576 rows: 256 + 256 + 64 took 2–4 % longer than 3 × 192).
fn block_len(cr: usize) -> usize {
    cr.div_ceil(cr.div_ceil(KC).max(1)).max(1)
}

/// Column panels multiplied by at most this many `mr`-row weight blocks are read in place
/// (indirect) when they are one run of the source; with more blocks, packing the panel once
/// pays for itself.
const INDIRECT_MAX_BLOCKS: usize = 1;

/// Packed column panel slices of one chunk: at most this many bytes (a quarter of L2)…
pub const CHUNK_BYTES: usize = 128 << 10;
/// … and at most this many panels. With short reductions the byte limit allows many panels:
/// wav2vec's 10-row panels, 186 to a chunk instead of the earlier cap of 32, ran 3 % faster
/// (one tile-kernel call per weight block and chunk; Zen 4, `--exact`).
const MAX_CHUNK: usize = 256;

/// Most spatial axes this implementation handles (the planner declines more).
pub const MAX_RANK: usize = 8;

/// Largest total of the workers' private staged samples when a batch is split by samples.
const SAMPLE_SPLIT_STAGE_BYTES: usize = 4 << 20;

/// Largest staged input copy (one sample, padded and phase-split), in bytes.
pub const MAX_STAGE_BYTES: usize = 14 << 20;

/// How panels read the input.
enum Source {
    /// The input itself: channels-first, windows inside it, innermost stride 1.
    Direct,
    /// A staged copy of one sample in the workspace.
    Staged(Stage),
    /// Element by element through the per-axis tap tables.
    Gather,
}

/// Where the tiles of a chunk of column panels go: the first `full` panels straight into
/// channels-first output rows, then at most one panel into the tile scratch (a partial last
/// panel, or every panel of channels-last output).
struct Out<'p, 'y, 's, T> {
    /// Channel `k`'s tile row is row `k − k_first` of the part, columns `col..`, as
    /// `(part, k_first, col)`; rows past a block's last channel go to `spare`.
    rows: Option<(&'p mut Part<'y, T>, usize, usize)>,
    spare: &'p mut [T],
    /// Block `kp`'s tile of the scratch panel at `kp·mr·nr` (`mr` rows of `nr`).
    scratch: &'p mut [T],
    /// [`ConvImpl::execute_ilv`]'s destination.
    ilv: Option<IlvOut<'p, 's, T>>,
}

/// Where [`ConvImpl::execute_ilv`] sends the last reduction block's tiles.
struct IlvOut<'p, 's, T> {
    /// The final output.
    y: &'p mut [T],
    /// Where a block's tiles go, filled into `pl`.
    place: &'p IlvPlaceFn<'s, T>,
    /// The sample.
    n: usize,
    pl: &'p mut IlvPlace<T>,
    /// Where `y` starts in the whole output (a worker's part of it).
    base: isize,
}

impl<T> IlvOut<'_, '_, T> {
    /// The place of output channels `k0 .. k0 + rows` at positions `h .. h + lanes`, and the
    /// output.
    fn at(&mut self, (k0, rows): (usize, usize), (h, lanes): (usize, usize)) -> (&IlvPlace<T>, &mut [T]) {
        (self.place)((self.n, k0, rows), (h, lanes), self.pl);
        for at in &mut self.pl.at[..self.pl.runs] {
            *at -= self.base;
        }
        (&*self.pl, &mut *self.y)
    }
}

/// Tiled implicit-GEMM convolution for one problem, weights packed in `mr`-row panels.
pub struct GemmTiled<T> {
    p: ConvProblem,
    ks: KernelSet<T>,
    /// The kernel set's tile rows (output channels) and columns (output positions).
    mr: usize,
    nr: usize,
    /// The indirect tile kernel for this problem's output channels per group.
    indirect: GemmIndirect<T>,
    cg: usize,
    kg: usize,
    taps: usize,
    cr: usize,
    /// Reduction block length ([`block_len`]).
    kc: usize,
    kpanels: usize,
    /// Panels per output row where chunks are cut at output rows and read in place
    /// ([`Self::row_chunks`]).
    row_chunks: Option<usize>,
    /// `[group][reduction block][k panel][kc][mr]` (the weight blocks of one reduction block
    /// consecutive, in the order the tiles read them), rows past `kg` zero.
    packed: Vec<T>,
    source: Source,
    /// Direct and staged sources: offset of reduction row `r` (channel and tap) in the source.
    row_off: Vec<usize>,
    /// The largest of `row_off`.
    row_off_max: usize,
    /// Direct and staged sources: source offset step per output index, per axis.
    col_step: Vec<usize>,
    /// Direct and staged sources: source elements per channel.
    src_channel: usize,
    /// Gather source: per-axis tap tables.
    tables: Vec<Vec<Option<usize>>>,
    kernel: Vec<usize>,
    out_sp: Vec<usize>,
    outs: usize,
    x_strides: (usize, usize, Vec<usize>),
    padv: T,
}

impl<T: Scalar> GemmTiled<T> {
    /// Pack `w` (`(K, C/g, kernel…)`) for kernel set `ks`.
    pub fn new(p: &ConvProblem, w: &[T], ks: KernelSet<T>) -> Self {
        let (mr, nr) = (ks.geometry.mr, ks.geometry.nr);
        let cg = p.in_channels / p.groups;
        let kg = p.out_channels / p.groups;
        let kernel = p.kernel();
        let taps: usize = kernel.iter().product();
        let cr = cg * taps;
        let kpanels = kg.div_ceil(mr);
        let mut packed = vec![T::ZERO; p.groups * kpanels * cr * mr];
        let kc_len = block_len(cr);
        for g in 0..p.groups {
            for r0 in (0..cr).step_by(kc_len) {
                let kc = kc_len.min(cr - r0);
                for kp in 0..kpanels {
                    let block = &mut packed[(g * kpanels * cr + r0 * kpanels + kp * kc) * mr..][..kc * mr];
                    for i in 0..mr.min(kg - kp * mr) {
                        let k = g * kg + kp * mr + i;
                        for r in 0..kc {
                            block[r * mr + i] = w[k * cr + r0 + r];
                        }
                    }
                }
            }
        }
        let out_sp = p.output_spatial();
        let outs = out_sp.iter().product();
        let x_strides = data_strides(p.layout, p.in_channels, &p.input_spatial());
        let source = Self::choose_source(p, outs);
        let row_chunks = Self::row_chunks(p, &source, nr);

        // Source geometry: the stride of each outer axis, of a channel, and of the phases.
        let rank = p.axes.len();
        let (axis_stride, src_channel, phase_len, inner_stride) = match &source {
            Source::Direct => (x_strides.2.clone(), x_strides.1, 0, 1),
            Source::Staged(st) => (st.axis_strides(), st.channel, st.phase_len(), st.phases),
            Source::Gather => (vec![0; rank], 0, 0, 1),
        };
        let mut row_off = Vec::new();
        let mut col_step = vec![0; rank];
        if !matches!(source, Source::Gather) {
            let tap_off = tap_offsets(p, &axis_stride, (inner_stride, phase_len));
            row_off = (0..cg).flat_map(|ci| tap_off.iter().map(move |&o| ci * src_channel + o)).collect();
            for (a, ax) in p.axes.iter().enumerate() {
                col_step[a] = if a + 1 == rank { 1 } else { ax.stride * axis_stride[a] };
            }
        }
        GemmTiled {
            indirect: if kg <= ks.gemm_indirect_small.0 {
                ks.gemm_indirect_small.1
            } else {
                ks.gemm_indirect
            },
            ks,
            mr,
            nr,
            cg,
            kg,
            taps,
            cr,
            kc: kc_len,
            kpanels,
            packed,
            source,
            row_off_max: row_off.iter().copied().max().unwrap_or(0),
            row_chunks,
            row_off,
            col_step,
            src_channel,
            tables: p.axes.iter().map(|a| tap_table(a, p.flip, p.padding_mode)).collect(),
            kernel,
            outs,
            out_sp,
            x_strides,
            padv: T::from_f64(pad_value(p.padding_mode)),
            p: p.clone(),
        }
    }

    fn choose_source(p: &ConvProblem, outs: usize) -> Source {
        let rank = p.axes.len();
        if outs == 0 {
            return Source::Gather;
        }
        let last = p.axes[rank - 1];
        let inside = p
            .axes
            .iter()
            .all(|a| a.pad_begin == 0 && (a.output - 1) * a.stride + (a.kernel - 1) * a.dilation < a.input);
        if p.layout == Layout::Nchw && last.stride == 1 && inside {
            return Source::Direct;
        }
        let max_channel = MAX_STAGE_BYTES / std::mem::size_of::<T>() / p.in_channels.max(1);
        Stage::new(p, true, max_channel).map_or(Source::Gather, Source::Staged)
    }

    /// Workspace of one thread: a patch panel (with `self.nr` elements of slack) and the tiles of
    /// every `self.mr`-row block.
    fn per_thread(&self) -> usize {
        (self.panel_len() + self.mr * self.nr) * self.chunk()
            + self.kpanels * self.mr * self.nr
            + self.group_stage_len()
    }

    /// Channels-first grouped problems stage one group at a time, per thread, just before
    /// its panels are computed (it stays in cache); others stage whole samples, shared.
    fn stages_groups(&self) -> bool {
        matches!(self.source, Source::Staged(_)) && self.p.groups > 1 && self.p.layout == Layout::Nchw
    }

    fn group_stage_len(&self) -> usize {
        match &self.source {
            Source::Staged(st) if self.stages_groups() => st.channel * self.cg,
            _ => 0,
        }
    }

    /// Offset of group `g`'s first channel in the staged buffer.
    fn staged_base(&self, g: usize) -> usize {
        if self.stages_groups() {
            0
        } else {
            g * self.cg * self.src_channel
        }
    }

    /// One packed panel slice: the rows of a reduction block, plus `self.nr` of slack.
    fn panel_len(&self) -> usize {
        self.kc * self.nr + self.nr
    }

    fn stage_len(&self) -> usize {
        match &self.source {
            Source::Staged(st) if !self.stages_groups() => st.channel * self.p.in_channels,
            _ => 0,
        }
    }

    /// Stage input channels `c0..` of sample `n` into `dst` (whole channels).
    fn stage_channels(&self, st: &Stage, x: &[T], n: usize, c0: usize, dst: &mut [T]) {
        let (xn, xc, _) = self.x_strides;
        for (ci, chan) in dst.chunks_exact_mut(st.channel).enumerate() {
            st.fill(x, n * xn + (c0 + ci) * xc, self.padv, chan, self.ks.dw_split2);
        }
    }

    /// Stage sample `n` into `dst`, channels split over `threads`.
    fn stage(&self, st: &Stage, x: &[T], n: usize, dst: &mut [T], threads: usize) {
        let c = self.p.in_channels;
        let cut = |t: usize| (c * t / threads) * st.channel;
        split_join(dst, &mut [], 0, threads, &cut, &|t, part, _| {
            self.stage_channels(st, x, n, c * t / threads, part)
        });
    }

    /// Runs of consecutive source elements among the `cols` columns of panel `pp`, as
    /// (first column, source offset); returns their number. Columns are consecutive output
    /// positions, so a run breaks only where the output wraps to its next row.
    fn col_runs(&self, pp: usize, cols: usize, runs: &mut [(usize, usize); MAX_NR]) -> usize {
        let rank = self.kernel.len();
        let last = rank - 1;
        let mut o = [0usize; MAX_RANK];
        unravel(pp * self.nr, &self.out_sp, &mut o[..rank]);
        let offset = |o: &[usize]| -> usize { (0..rank).map(|a| o[a] * self.col_step[a]).sum() };
        let (mut n, mut j) = (0, 0);
        while j < cols {
            runs[n] = (j, offset(&o));
            n += 1;
            let len = (self.out_sp[last] - o[last]).min(cols - j);
            j += len;
            // Next output position, row-major.
            o[last] += len;
            for a in (1..rank).rev() {
                if o[a] < self.out_sp[a] {
                    break;
                }
                o[a] = 0;
                o[a - 1] += 1;
            }
        }
        n
    }

    /// Gather reduction rows `rows` of panel `pp` from a direct or staged source `src`, group
    /// channels at `base`.
    fn pack_copy(&self, src: &[T], base: usize, pp: usize, rows: std::ops::Range<usize>, b: &mut [T]) {
        let cols = self.nr.min(self.outs - pp * self.nr);
        let mut runs = [(0usize, 0usize); MAX_NR];
        let nruns = self.col_runs(pp, cols, &mut runs);
        for r in &mut runs[..nruns] {
            r.1 += base;
        }
        // One fixed self.nr-element copy per run, in column order, each copy starting at its run's
        // first column and running over into the next run's columns (overwritten by the next
        // copy) or, for the last run, into the next row (overwritten when that row is written;
        // the panel has self.nr elements of slack after its last row). In a partial panel the
        // columns past `cols` then hold whatever follows in the source: their tiles' columns
        // are never stored.
        if runs[nruns - 1].1 + self.row_off_max + self.nr <= src.len() {
            (self.ks.copy_panel)(src, &self.row_off[rows], &runs[..nruns], b);
            return;
        }
        for (row, &ro) in b[..rows.len() * self.nr].chunks_exact_mut(self.nr).zip(&self.row_off[rows]) {
            for (i, &(j0, s)) in runs[..nruns].iter().enumerate() {
                let end = if i + 1 < nruns { runs[i + 1].0 } else { cols };
                for (d, &v) in row[j0..end].iter_mut().zip(&src[ro + s..]) {
                    *d = v;
                }
            }
            row[cols..].fill(T::ZERO);
        }
    }

    /// Gather reduction rows `rows` of patch-matrix columns `pp·self.nr ..` of group `g`, sample `n`
    /// into `b` (`[rows][self.nr]`) through the tap tables. Columns past the output are zero.
    fn pack_gather(
        &self,
        x: &[T],
        (n, g, pp): (usize, usize, usize),
        rows: std::ops::Range<usize>,
        b: &mut [T],
    ) {
        let (xn, xc, ref xsp) = self.x_strides;
        let rank = self.kernel.len();
        let cols = self.nr.min(self.outs - pp * self.nr);
        let mut o = [[0usize; MAX_RANK]; MAX_NR];
        for (j, oj) in o.iter_mut().enumerate().take(cols) {
            unravel(pp * self.nr + j, &self.out_sp, &mut oj[..rank]);
        }
        let mut t = [0usize; MAX_RANK];
        let cbase = n * xn + g * self.cg * xc;
        const PAD: usize = usize::MAX;
        for tap in 0..self.taps {
            unravel(tap, &self.kernel, &mut t[..rank]);
            let mut offs = [PAD; MAX_NR];
            for (j, off) in offs.iter_mut().enumerate().take(cols) {
                let mut acc = 0;
                for a in 0..rank {
                    match self.tables[a][o[j][a] * self.kernel[a] + t[a]] {
                        Some(i) => acc += i * xsp[a],
                        None => {
                            acc = PAD;
                            break;
                        }
                    }
                }
                *off = acc;
            }
            for ci in 0..self.cg {
                let r = ci * self.taps + tap;
                if !rows.contains(&r) {
                    continue;
                }
                let row = &mut b[(r - rows.start) * self.nr..][..self.nr];
                let base = cbase + ci * xc;
                for (dst, &off) in row.iter_mut().zip(&offs).take(cols) {
                    *dst = if off == PAD { self.padv } else { x[base + off] };
                }
                row[cols..].fill(T::ZERO);
            }
        }
    }

    /// Reduction block `r0..r0 + kc`: for every weight block `kp` in `kps` of group `g`,
    /// `f(packed weights, first panel, panels, destination)` for the chunk's `full` panels that
    /// go to the output rows, then for its scratch panel if `scratch`; the bias goes with the
    /// last block.
    #[allow(clippy::too_many_arguments)]
    fn block_tiles(
        &self,
        g: usize,
        (kps, full, scratch): ((usize, usize), usize, bool),
        (r0, kc): (usize, usize),
        out: &mut Out<'_, '_, '_, T>,
        bias: Option<&[T]>,
        mut f: impl FnMut(&[T], usize, usize, &mut TileDst<'_, T>, Option<(&IlvPlace<T>, &mut [T])>),
    ) {
        let last = r0 + kc == self.cr;
        for kp in kps.0..kps.1 {
            let a = &self.packed[(g * self.kpanels * self.cr + r0 * self.kpanels + kp * kc) * self.mr..]
                [..kc * self.mr];
            let k0 = g * self.kg + kp * self.mr;
            let real = self.mr.min(self.kg - kp * self.mr);
            let bias = bias
                .filter(|_| last)
                .map(|b| std::array::from_fn(|i| if i < real { b[k0 + i] } else { T::ZERO }));
            // Interleaved stores: the last block's tiles go straight into the final output.
            let mut ilv = out.ilv.as_mut().filter(|_| last);
            if full > 0 {
                let (part, k_first, col) = out.rows.as_mut().expect("output rows for full panels");
                let rows = part.tile(self.mr, (k0 - *k_first, real), (*col, full * self.nr), out.spare);
                let mut c = TileDst { rows, accumulate: r0 > 0, bias, live: real };
                let to = ilv.as_mut().map(|o| o.at((k0, real), (*col, full * self.nr)));
                f(a, 0, full, &mut c, to);
            }
            if scratch {
                let rows = scratch_rows(&mut out.scratch[kp * self.mr * self.nr..], self.mr, self.nr);
                let mut c = TileDst { rows, accumulate: r0 > 0, bias, live: real };
                let h = out.rows.as_ref().map_or(0, |r| r.2) + full * self.nr;
                let to = ilv.as_mut().map(|o| o.at((k0, real), (h, self.outs - h)));
                f(a, full, 1, &mut c, to);
            }
        }
    }

    /// The reduction blocks `(r0, kc)`.
    fn kc_blocks(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.cr).step_by(self.kc).map(|r0| (r0, self.kc.min(self.cr - r0)))
    }

    /// The contiguous source of group `g` of sample `n` and its first element's offset
    /// (`None` for the gather source).
    fn source<'a>(&self, x: &'a [T], staged: &'a [T], n: usize, g: usize) -> Option<(&'a [T], usize)> {
        match self.source {
            Source::Direct => Some((x, n * self.x_strides.0 + g * self.cg * self.src_channel)),
            Source::Staged(_) => Some((staged, self.staged_base(g))),
            Source::Gather => None,
        }
    }

    /// The tiles of weight blocks `kps` of group `g` for the `full` column panels from `pp` of
    /// sample `n` that go to the output rows, followed by one that goes to the tile scratch
    /// if `scratch`. With few weight blocks a single full panel that is one run of the source
    /// is multiplied in place (indirect, no copy); otherwise, reduction block by reduction
    /// block, the panels' rows are packed into `b`, then every weight block is multiplied by
    /// each of them in turn (so a weight block is reused from L1 across the chunk).
    #[allow(clippy::too_many_arguments)]
    fn compute(
        &self,
        x: &[T],
        staged: &[T],
        (n, g, pp): (usize, usize, usize),
        (kps, full, scratch): ((usize, usize), usize, bool),
        b: &mut [T],
        out: &mut Out<'_, '_, '_, T>,
        bias: Option<&[T]>,
    ) {
        let src = self.source(x, staged, n, g);
        let in_place = full >= 1 && !scratch && self.reads_in_place(kps) && out.ilv.is_none();
        if let Some((src, base)) = src.filter(|_| in_place) {
            let start = self.one_run(pp, full).map(|off| base + off);
            if let Some(start) = start.filter(|&s| s + self.row_off_max + full * self.nr <= src.len()) {
                for (r0, kc) in self.kc_blocks() {
                    self.block_tiles(g, (kps, full, false), (r0, kc), out, bias, |a, _, panels, c, _| {
                        (self.indirect)(kc, a, src, (start, panels), &self.row_off[r0..], c)
                    });
                }
                return;
            }
        }
        let (len, nch) = (self.panel_len(), full + scratch as usize);
        // The scratch panel may be partial: its columns up to 8 take the narrow kernel.
        let narrow = scratch && self.outs - (pp + full) * self.nr <= self.nr / 2;
        for (r0, kc) in self.kc_blocks() {
            for (j, bj) in b[..nch * len].chunks_exact_mut(len).enumerate() {
                match src {
                    Some((src, base)) => self.pack_copy(src, base, pp + j, r0..r0 + kc, bj),
                    None => self.pack_gather(x, (n, g, pp + j), r0..r0 + kc, bj),
                }
            }
            self.block_tiles(g, (kps, full, scratch), (r0, kc), out, bias, |a, first, panels, c, ilv| {
                let b = &b[first * len..(first + panels - 1) * len + kc * self.nr];
                if let (Some((place, y)), Some(gemm_ilv)) = (ilv, self.ks.gemm_ilv) {
                    return gemm_ilv(kc, a, b, (panels, len), c, place, y);
                }
                let tile = if narrow && first == full { self.ks.gemm_narrow } else { self.ks.gemm };
                tile(kc, a, b, (panels, len), c)
            });
        }
    }

    /// Whether panels that are one run of the source are multiplied in place (indirect)
    /// rather than packed, for weight blocks `kps`.
    fn reads_in_place(&self, kps: (usize, usize)) -> bool {
        kps.1 - kps.0 <= INDIRECT_MAX_BLOCKS || self.row_chunks.is_some()
    }

    /// Panels per output row, where chunks of panels are cut at output rows and read in
    /// place: output rows a whole number of panels long, windows that overlap across output
    /// rows (the input rows stay in cache from one output row to the next; without that
    /// reuse, packing streams the input better), a contiguous source.
    fn row_chunks(p: &ConvProblem, source: &Source, nr: usize) -> Option<usize> {
        let rank = p.axes.len();
        let row = p.axes[rank - 1].output;
        let reuse = p.axes[..rank - 1].iter().any(|a| (a.kernel - 1) * a.dilation + 1 > a.stride);
        let contiguous = matches!(source, Source::Direct | Source::Staged(_)) && p.layout == Layout::Nchw;
        (reuse && contiguous && row.is_multiple_of(nr)).then_some(row / nr)
    }

    /// The source offset of column panel `pp` if it and the `panels − 1` after it are one run
    /// of the source (all in one output row).
    fn one_run(&self, pp: usize, panels: usize) -> Option<usize> {
        let rank = self.kernel.len();
        let row = self.out_sp[rank - 1];
        let (c0, c1) = (pp * self.nr, (pp + panels) * self.nr - 1);
        if c0 / row != c1 / row || c1 >= self.outs {
            return None;
        }
        let mut o = [0usize; MAX_RANK];
        unravel(c0, &self.out_sp, &mut o[..rank]);
        Some((0..rank).map(|a| o[a] * self.col_step[a]).sum())
    }

    /// Column panels packed together (channels-first): as many as fit in [`CHUNK_BYTES`], so
    /// each weight block is reused from L1 across several panels and each output row is
    /// written in longer runs.
    fn chunk(&self) -> usize {
        if self.p.layout != Layout::Nchw {
            return 1;
        }
        (CHUNK_BYTES / (self.panel_len() * std::mem::size_of::<T>())).clamp(1, MAX_CHUNK)
    }

    /// Channels-first: output channel blocks `u0..u1` (block `u` = group `u / kpanels`,
    /// rows `self.mr·(u % kpanels)..`) × column panels `p0..p1` of sample `n`; row `i` of `y` is
    /// output channel `block_channel(u0) + i`, its columns starting at panel `p0`.
    #[allow(clippy::too_many_arguments)]
    fn run_blocks(
        &self,
        x: &[T],
        staged: &[T],
        bias: Option<&[T]>,
        n: usize,
        (u0, u1): (usize, usize),
        (p0, p1): (usize, usize),
        y: &mut Part<'_, T>,
        ws: &mut [T],
        mut ilv: Option<IlvOut<'_, '_, T>>,
    ) {
        if u0 >= u1 || p0 >= p1 {
            return;
        }
        let (b, rest) = ws.split_at_mut(self.panel_len() * self.chunk());
        let (ctiles, rest) = rest.split_at_mut(self.kpanels * self.mr * self.nr);
        let (spare, gstage) = rest.split_at_mut(self.mr * self.nr * self.chunk());
        let k_first = self.block_channel(u0);
        for g in u0 / self.kpanels..=(u1 - 1) / self.kpanels {
            let kps = (
                u0.max(g * self.kpanels) - g * self.kpanels,
                u1.min((g + 1) * self.kpanels) - g * self.kpanels,
            );
            let staged: &[T] = match &self.source {
                Source::Staged(st) if self.stages_groups() => {
                    let buf = &mut gstage[..self.group_stage_len()];
                    self.stage_channels(st, x, n, g * self.cg, buf);
                    buf
                }
                _ => staged,
            };
            // Full panels in chunks, tiles straight into the output rows, the last chunk taking
            // a partial last panel through the tile scratch; one panel at a time where they may
            // be read in place.
            // (Interleaved stores go block by block: chunks of several panels amortize them.)
            let in_place = kps.1 - kps.0 <= INDIRECT_MAX_BLOCKS
                && !matches!(self.source, Source::Gather)
                && ilv.is_none();
            let chunk = if in_place { 1 } else { self.chunk() };
            let full = p1.min(self.outs / self.nr).max(p0);
            let mut pp = p0;
            while pp < p1 {
                let mut nfull = chunk.min(full - pp);
                if let Some(per_row) = self.row_chunks {
                    nfull = nfull.min(per_row - pp % per_row);
                }
                let scratch = pp + nfull == full && full < p1 && (nfull < chunk || nfull == 0);
                let mut out = Out {
                    rows: Some((&mut *y, k_first, (pp - p0) * self.nr)),
                    spare,
                    scratch: ctiles,
                    ilv: ilv.as_mut().map(|o| IlvOut {
                        y: &mut *o.y,
                        place: o.place,
                        n: o.n,
                        pl: &mut *o.pl,
                        base: o.base,
                    }),
                };
                self.compute(x, staged, (n, g, pp), (kps, nfull, scratch), b, &mut out, bias);
                if scratch {
                    let (col, cols) = ((full - p0) * self.nr, self.outs - full * self.nr);
                    for kp in kps.0..kps.1 {
                        let c = &ctiles[kp * self.mr * self.nr..][..self.mr * self.nr];
                        for i in 0..self.mr.min(self.kg - kp * self.mr) {
                            let k = g * self.kg + kp * self.mr + i;
                            y.row(k - k_first)[col..][..cols].copy_from_slice(&c[i * self.nr..][..cols]);
                        }
                    }
                }
                pp += nfull + scratch as usize;
            }
        }
    }

    /// Whether channels-first output is better split across `threads` by column panels than
    /// by channel blocks: the busiest worker's tile work (a weight block costs in proportion
    /// to the rows its kernel computes, a last panel of at most `self.nr / 2` columns two thirds of
    /// a panel), plus panel packing (half a 16-row block's tiles per panel, repeated by every
    /// worker that needs the panel).
    fn split_by_columns(&self, threads: usize) -> bool {
        // Groups staged one at a time would be staged by every worker.
        if threads <= 1 || self.stages_groups() {
            return false;
        }
        // Costs in sixths of a 6 x 16 tile (integers, so the choice is exact).
        let units = self.p.groups * self.kpanels;
        let unit = |u: usize| {
            let live = self.mr.min(self.kg - (u % self.kpanels) * self.mr);
            2 * live.div_ceil(2)
        };
        let ppanels = self.outs.div_ceil(self.nr);
        let panel = |pp: usize| if self.outs - pp * self.nr <= self.nr / 2 { 4 } else { 6 };
        // Packing a panel slice costs about half a 16-row weight block's tiles: measured on
        // Zen 4 (AVX-512, `resnet50_3x3s2_56`, 1 thread) copy_panel took 5.2 % of the time
        // against 79 % for the tiles of 8 blocks, as it reads the staged input from L3.
        let pack = 8;
        let sum = |r: std::ops::Range<usize>, f: &dyn Fn(usize) -> usize| r.map(f).sum::<usize>();
        let (all_units, all_panels) = (sum(0..units, &unit), sum(0..ppanels, &panel));
        let by_blocks = (0..threads)
            .map(|t| {
                let (u0, u1) = (units * t / threads, units * (t + 1) / threads);
                let groups = if u1 > u0 { (u1 - 1) / self.kpanels + 1 - u0 / self.kpanels } else { 0 };
                sum(u0..u1, &unit) * all_panels / 6 + groups * ppanels * pack
            })
            .max();
        let by_cols = (0..threads)
            .map(|t| {
                let (p0, p1) = (ppanels * t / threads, ppanels * (t + 1) / threads);
                all_units * sum(p0..p1, &panel) / 6 + self.p.groups * (p1 - p0) * pack
            })
            .max();
        by_cols < by_blocks
    }

    /// Channels-last: column panels `p0..p1` of sample `n`, every group; `y` starts at column
    /// `p0·self.nr`.
    #[allow(clippy::too_many_arguments)]
    fn run_panels(
        &self,
        x: &[T],
        staged: &[T],
        bias: Option<&[T]>,
        n: usize,
        (p0, p1): (usize, usize),
        y: &mut [T],
        ws: &mut [T],
    ) {
        let (b, rest) = ws.split_at_mut(self.panel_len());
        let ctiles = &mut rest[..self.kpanels * self.mr * self.nr];
        let k_all = self.p.out_channels;
        for pp in p0..p1 {
            let cols = self.nr.min(self.outs - pp * self.nr);
            for g in 0..self.p.groups {
                let mut out = Out { rows: None, spare: &mut [], scratch: ctiles, ilv: None };
                self.compute(x, staged, (n, g, pp), ((0, self.kpanels), 0, true), b, &mut out, bias);
                for kp in 0..self.kpanels {
                    let c = &ctiles[kp * self.mr * self.nr..][..self.mr * self.nr];
                    for i in 0..self.mr.min(self.kg - kp * self.mr) {
                        let k = g * self.kg + kp * self.mr + i;
                        for (j, &v) in c[i * self.nr..][..cols].iter().enumerate() {
                            y[((pp - p0) * self.nr + j) * k_all + k] = v;
                        }
                    }
                }
            }
        }
    }

    /// Whether a batch is better split across `threads` by whole samples: each worker stages
    /// and computes its own samples, so no worker reads what another wrote (within a sample,
    /// the staged input or the packed panels would be shared between cores) and there is one
    /// join per call instead of two per sample. Taken when every worker gets at most 1/8 more
    /// samples than an even share and the private staged copies stay small.
    fn split_by_samples(&self, threads: usize) -> bool {
        let batch = self.p.batch;
        threads > 1
            && batch >= threads
            && 8 * batch.div_ceil(threads) * threads <= 9 * batch
            && self.p.layout == Layout::Nchw
            && self.stage_len() * threads * std::mem::size_of::<T>() <= SAMPLE_SPLIT_STAGE_BYTES
    }

    /// Workspace of one worker of a split by samples: its staged sample, then its scratch,
    /// starting on a cache line.
    fn per_sample_worker(&self) -> usize {
        crate::tensor::line_round::<T>(self.stage_len() + self.per_thread())
    }

    /// Samples `batch·t/threads ..` to worker `t`, each computed as with one thread.
    fn execute_by_samples(&self, x: &[T], bias: Option<&[T]>, y: &mut [T], ws: &mut [T], threads: usize) {
        let per_sample = self.p.out_channels * self.outs;
        let batch = self.p.batch;
        let first = |t: usize| batch * t / threads;
        let cut = |t: usize| first(t) * per_sample;
        let (units, ppanels) = (self.p.groups * self.kpanels, self.outs.div_ceil(self.nr));
        split_join(y, ws, self.per_sample_worker(), threads, &cut, &|t, part, w| {
            let (staged, w) = w.split_at_mut(self.stage_len());
            for (i, yn) in part.chunks_exact_mut(per_sample).enumerate() {
                let n = first(t) + i;
                if let Source::Staged(st) = &self.source {
                    if !self.stages_groups() {
                        self.stage_channels(st, x, n, 0, staged);
                    }
                }
                let mut yn = Part::whole(yn, (self.p.out_channels, self.outs));
                self.run_blocks(x, staged, bias, n, (0, units), (0, ppanels), &mut yn, w, None);
            }
        });
    }

    /// First output channel of channel block `u`.
    fn block_channel(&self, u: usize) -> usize {
        (u / self.kpanels) * self.kg + (u % self.kpanels) * self.mr
    }
}

impl<T: Scalar> ConvImpl<T> for GemmTiled<T> {
    fn name(&self) -> String {
        self.ks.name("gemm-tiled")
    }

    /// Channels-first problems that stage whole samples (or none), with tiles and groups a
    /// whole number of runs tall.
    fn has_ilv(&self, run: usize) -> bool {
        self.p.layout == Layout::Nchw
            && !self.stages_groups()
            && self.ks.gemm_ilv.is_some()
            && run > 0
            && self.mr.is_multiple_of(run)
            && self.kg.is_multiple_of(run)
    }

    fn execute_ilv(
        &self,
        x: &[T],
        held: &mut [T],
        y: &mut [T],
        ws: &mut [T],
        threads: usize,
        place: &IlvPlaceFn<'_, T>,
        cut: &IlvCutFn<'_>,
    ) {
        assert!(
            self.p.layout == Layout::Nchw && !self.stages_groups(),
            "execute_ilv on a problem it does not serve"
        );
        let per_sample = self.p.out_channels * self.outs;
        if per_sample == 0 {
            return;
        }
        let (units, ppanels) = (self.p.groups * self.kpanels, self.outs.div_ceil(self.nr));
        let (staged, w) = ws.split_at_mut(self.stage_len());
        let per = self.per_thread();
        for (n, hn) in held.chunks_exact_mut(per_sample).enumerate() {
            if let Source::Staged(st) = &self.source {
                self.stage_channels(st, x, n, 0, staged);
            }
            let staged = &*staged;
            // Workers take whole weight blocks, each writing the outputs of its own channels.
            let threads = threads.clamp(1, units);
            let first = |t: usize| units * t / threads;
            let ylen = y.len();
            let ycut = |t: usize| match t {
                0 => Some(0),
                t if t == threads => Some(ylen),
                t => cut(n, self.block_channel(first(t))),
            };
            let split = (0..threads)
                .all(|t| matches!((ycut(t), ycut(t + 1)), (Some(a), Some(b)) if a <= b && b <= ylen));
            if threads > 1 && split {
                let hcut = |t: usize| {
                    if t == threads {
                        per_sample
                    } else {
                        self.block_channel(first(t)) * self.outs
                    }
                };
                let ycut = |t: usize| ycut(t).unwrap_or(ylen);
                split_join2((hn, &hcut), (y, &ycut), (w, per), threads, &|t, hp, yp, wt| {
                    let mut part = Part::whole(hp, (hp.len() / self.outs, self.outs));
                    let mut pl = IlvPlace::new();
                    let ilv = IlvOut { y: yp, place, n, pl: &mut pl, base: ycut(t) as isize };
                    let blocks = (first(t), first(t + 1));
                    self.run_blocks(x, staged, None, n, blocks, (0, ppanels), &mut part, wt, Some(ilv));
                });
            } else {
                let mut part = Part::whole(hn, (self.p.out_channels, self.outs));
                let mut pl = IlvPlace::new();
                let ilv = Some(IlvOut { y: &mut *y, place, n, pl: &mut pl, base: 0 });
                self.run_blocks(x, staged, None, n, (0, units), (0, ppanels), &mut part, &mut w[..per], ilv);
            }
        }
    }

    fn workspace(&self, threads: usize) -> usize {
        if self.split_by_samples(threads) {
            self.per_sample_worker() * threads
        } else {
            self.stage_len() + self.per_thread() * threads
        }
    }

    fn execute(&self, x: &[T], bias: Option<&[T]>, y: &mut [T], ws: &mut [T], threads: usize) {
        let threads = threads.max(1);
        let per_sample = self.p.out_channels * self.outs;
        if per_sample == 0 {
            return;
        }
        if self.split_by_samples(threads) {
            return self.execute_by_samples(x, bias, y, ws, threads);
        }
        let per = self.per_thread();
        let (staged, ws) = ws.split_at_mut(self.stage_len());
        for (n, yn) in y.chunks_exact_mut(per_sample).enumerate() {
            if let Source::Staged(st) = &self.source {
                if !self.stages_groups() {
                    self.stage(st, x, n, staged, threads);
                }
            }
            let staged = &*staged;
            match self.p.layout {
                Layout::Nchw if self.split_by_columns(threads) => {
                    let (units, ppanels) = (self.p.groups * self.kpanels, self.outs.div_ceil(self.nr));
                    let first = |t: usize| ppanels * t / threads;
                    let cut = |t: usize| (first(t) * self.nr).min(self.outs);
                    let shape = (self.p.out_channels, self.outs);
                    split_cols(yn, shape, ws, per, threads, &cut, &|t, mut part, w| {
                        let panels = (first(t), first(t + 1));
                        self.run_blocks(x, staged, bias, n, (0, units), panels, &mut part, w, None)
                    });
                }
                Layout::Nchw => {
                    let (units, ppanels) = (self.p.groups * self.kpanels, self.outs.div_ceil(self.nr));
                    let first = |t: usize| units * t / threads;
                    let cut = |t: usize| {
                        if t == threads {
                            per_sample
                        } else {
                            self.block_channel(first(t)) * self.outs
                        }
                    };
                    split_join(yn, ws, per, threads, &cut, &|t, part, w| {
                        let rows = part.len() / self.outs;
                        let mut part = Part::whole(part, (rows, self.outs));
                        let blocks = (first(t), first(t + 1));
                        self.run_blocks(x, staged, bias, n, blocks, (0, ppanels), &mut part, w, None)
                    });
                }
                Layout::Nhwc => {
                    let ppanels = self.outs.div_ceil(self.nr);
                    let first = |t: usize| ppanels * t / threads;
                    let cut = |t: usize| (first(t) * self.nr).min(self.outs) * self.p.out_channels;
                    split_join(yn, ws, per, threads, &cut, &|t, part, w| {
                        self.run_panels(x, staged, bias, n, (first(t), first(t + 1)), part, w)
                    });
                }
            }
        }
    }
}
