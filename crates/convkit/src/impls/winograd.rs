//! `winograd`: convolution whose last two axes are 3×3 or 2×2 with stride 1, by Winograd's
//! minimal filtering F(4×4, 3×3) or F(4×4, 2×2).
//!
//! The output planes (last two axes) are cut into 4×4 tiles; each tile reads a 6×6 input
//! patch (5×5 for 2×2 kernels). Per input channel the patch is transformed (`V = Bᵀ d B`, 36
//! values), per output/input channel pair the kernel (`U = G g Gᵀ`, at plan time in f64), and
//! the 36 element-wise products summed over input channels are 36 GEMMs `M_ξ[K, tiles] =
//! U_ξ[K, R] · V_ξ[R, tiles]`, run by the same packed tile kernels as `gemm-tiled`. Each 4×4
//! output tile is then `Aᵀ M A` plus the bias. That is 36 multiplications per 16 outputs per
//! channel pair instead of 144: 4× fewer (2×2 kernels: 25 GEMMs, 25 for 64, 2.56× fewer; the
//! 2×2 phases of stride-2 transposed convolutions run here).
//!
//! - Outer axes (depth of a 3-D convolution) are taps of the reduction: `R` runs over input
//!   channels × outer kernel taps, each reading the input plane its tap lands on (any outer
//!   kernel, stride, dilation and padding).
//! - Dilation `d` on the last two axes splits the output into `d × d` phases; each phase is an
//!   undilated 3×3 convolution of the matching input phase, so a tile then covers every `d`-th
//!   row and column of a `4d × 4d` block and reads every `d`-th input row and column.
//!
//! The price is accuracy: the transforms scale values by up to 10× and cancel them again, so
//! results differ from the exact sum by a few float32 roundings times those factors (relative
//! error around 1e-6 of the sum of |w·x|, for both kernel sizes, tested in
//! `tests/winograd.rs`), and a NaN or infinity in a patch spreads over the whole 4×4 output
//! tile. Where padding is as wide as the kernel or wider, an output that reads only zero
//! padding (exactly 0, or the bias) gets a rounding residue of its tile's other outputs
//! instead (around 1e-7 of their |w·x|). The planner picks it unless exact results are asked
//! for ([`crate::PlanOptions::exact`], `CONVKIT_EXACT=1`).
//!
//! Work is done in blocks of [`WL`]`·P` tiles: transform the block's patches for every
//! reduction row into the workspace (`V`, `[ξ][panel][r][WL]`), run the 36 GEMMs into `M`
//! (`[ξ][k][panel·WL]`), transform `M` into the output. Both layouts: channels-last data are
//! gathered and scattered with a stride of `C` (or `K`) per position. Tiles run in one
//! sequence across samples, so only the last panel of a worker's share can be partial. A batch
//! that divides evenly among the threads is split by whole samples; otherwise each sample is
//! split either by bands of `4d` output rows (each worker its own output positions of every
//! channel) or, channels-first, by blocks of `mr` output channels (for few tiles), whichever
//! leaves less work to the busiest worker, counting the input transform that a split by
//! channels repeats in every worker. Every output is computed by the same operations in the
//! same order whatever the split. Levels with patch gather and tile scatter kernels (AVX-512)
//! copy runs of tiles side by side in one row with vector shuffles instead of element by
//! element; both are plain copies, so results do not depend on which lanes form a run.

use super::grid::{split_cols, Part};
use super::{split_join, ConvImpl};
use crate::geometry::{pad_value, unravel};
use crate::kernels::winograd::{wino2_weight, wino_weight, Lanes, WinoInFn, WinoOutFn, WA, WA2, WL, WM, WX};
use crate::kernels::{scratch_rows, KernelSet, TileDst, MAX_MR};
use crate::scalar::Scalar;
use crate::shape::ConvProblem;
use crate::{Layout, PadMode};

/// Reduction (input channel) block of the GEMMs, as in `gemm-tiled`.
const KC: usize = super::gemm_tiled::KC;

/// The transformed input and GEMM results of one block stay under this many bytes (L2).
const BLOCK_BYTES: usize = 320 << 10;

/// Most column panels per block.
const MAX_PANELS: usize = 4;

/// Shortest run of whole output tiles given to the level's tile scatter kernel.
const MIN_SCATTER_RUN: usize = 4;

/// Shortest run of lanes given to the level's patch gather kernel (below, copying element by
/// element costs about as much as its fixed 8 vector operations per patch element).
const MIN_GATHER_RUN: usize = 6;

/// Smallest channel counts the planner uses it for: below, the transforms cost more than the
/// multiplications they save.
pub const MIN_CHANNELS: usize = 16;

/// The same for 2×2 kernels, which save less (2.56× against 4×): at 32 channels F(4×4, 2×2)
/// measured 10 % slower than `gemm-tiled`, at 64 as fast or up to 8 % faster, at 128 and
/// more 1.5× faster (Zen 4, AVX-512, one thread).
pub const MIN_CHANNELS_2X2: usize = 64;

/// `Ok` if the last two axes are 3×3 or 2×2 with stride 1 (any dilation), the convolution is
/// ungrouped, padded with zeros or a constant, has at least [`MIN_CHANNELS`]
/// ([`MIN_CHANNELS_2X2`] for 2×2) in and out, and output planes of at least 4×4; the kernel
/// set's tiles must be [`WL`] columns wide (one column per transformed tile).
pub fn supports<T>(p: &ConvProblem, ks: &KernelSet<T>) -> Result<(), String> {
    let rank = p.axes.len();
    if ks.geometry.nr != WL {
        return Err(format!("tiles {} columns wide, the transforms batch {WL} tiles", ks.geometry.nr));
    }
    if rank < 2 {
        return Err(format!("{rank}-D, needs 2-D or more"));
    }
    let (ay, ax) = (p.axes[rank - 2], p.axes[rank - 1]);
    if !matches!((ay.kernel, ax.kernel), (3, 3) | (2, 2)) || ay.stride != 1 || ax.stride != 1 {
        return Err("last two axes need a 3×3 or 2×2 kernel and stride 1".into());
    }
    if p.groups != 1 {
        return Err(format!("{} groups, needs 1", p.groups));
    }
    if !matches!(p.padding_mode, PadMode::Zeros | PadMode::Constant(_)) {
        return Err(format!("padding mode {:?}, needs zeros or constant", p.padding_mode));
    }
    let least = if ay.kernel == 2 { MIN_CHANNELS_2X2 } else { MIN_CHANNELS };
    if p.in_channels < least || p.out_channels < least {
        return Err(format!("fewer than {least} input or output channels for a {0}×{0} kernel", ay.kernel));
    }
    if p.axes[rank - 2..].iter().any(|a| a.output < WM) {
        return Err(format!("output planes smaller than {WM}×{WM}"));
    }
    Ok(())
}

/// How a sample's work is split across workers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Split {
    /// By bands of output rows.
    Bands,
    /// By blocks of `mr` output channels.
    Channels,
    /// By whole samples, their tiles in one sequence (no partial panel at each sample's end).
    Samples,
}

/// Where a worker writes: channels-first, its part of the `K × positions` matrix;
/// channels-last, its run of positions (all `K` values of each) as one slice.
enum Out<'p, 'y, T> {
    /// Channels-first, sample `n`: the worker's columns of its `K × positions` matrix.
    First(&'p mut Part<'y, T>, usize),
    /// Whole output from sample `n0` (channels-first or -last), the first `col0` positions of
    /// that sample excluded (channels-last only).
    Flat(&'p mut [T], usize),
}

/// Runs of lanes side by side (for the level's gather and scatter kernels): `(l0, l1)`
/// ranges, and which lanes they cover.
#[derive(Default)]
struct Runs {
    runs: [(usize, usize); WL],
    n: usize,
    covered: [bool; WL],
}

impl Runs {
    /// The maximal runs of at least `min` of the first `len` lanes in which every lane `l`
    /// `continues(l0, l)` the run's first lane `l0` (`continues(l0, l0)` says whether `l0`
    /// can start one).
    fn find(&mut self, len: usize, min: usize, continues: impl Fn(usize, usize) -> bool) {
        let mut l0 = 0;
        while l0 < len {
            if !continues(l0, l0) {
                l0 += 1;
                continue;
            }
            let mut end = l0 + 1;
            while end < len && continues(l0, end) {
                end += 1;
            }
            if end - l0 >= min {
                self.runs[self.n] = (l0, end);
                self.n += 1;
                self.covered[l0..end].iter_mut().for_each(|c| *c = true);
            }
            l0 = end;
        }
    }

    fn list(&self) -> &[(usize, usize)] {
        &self.runs[..self.n]
    }
}

/// Where one tile lies: sample `n`, output plane `o`, first output row and column (`oy0 +
/// dy·u`, `ox0 + dx·v` for `u, v < 4`).
#[derive(Clone, Copy, Default)]
struct Tile {
    n: usize,
    o: usize,
    oy0: usize,
    ox0: usize,
}

/// Winograd F(4×4, 3×3) or F(4×4, 2×2) for one problem, transformed weights packed for the
/// tile kernel.
pub struct Winograd<T> {
    p: ConvProblem,
    ks: KernelSet<T>,
    /// Kernel side of the last two axes (3 or 2), transformed elements per tile (36 or 25:
    /// the patch side squared), and the level's transforms for that kernel side.
    ka: usize,
    wx: usize,
    tf: (WinoInFn<T>, WinoOutFn<T>),
    /// The kernel set's tile rows (output channels).
    mr: usize,
    c: usize,
    k: usize,
    kpanels: usize,
    /// Reduction rows: input channels × outer taps (`r = c·otaps + t`).
    r: usize,
    otaps: usize,
    /// Input plane read by output plane `o` at outer tap `t`: `planes[o·otaps + t]` (`None`:
    /// padding).
    planes: Vec<Option<usize>>,
    in_planes: usize,
    out_planes: usize,
    /// Input strides: per channel, per plane, per position (channels-first `(planes·HW, HW,
    /// 1)`, channels-last `(1, HW·C, C)`).
    xs: (usize, usize, usize),
    /// Input and output plane height and width, padding before (top, left), dilation.
    hw: (usize, usize),
    ohw: (usize, usize),
    pad: (usize, usize),
    dil: (usize, usize),
    /// Bands (`4·dy` output rows) per plane, `4·dx`-wide tile columns per band.
    th: usize,
    tws: usize,
    /// Column panels per block.
    panels: usize,
    /// `U`: `[ξ][reduction block][k panel][kc][mr]`, rows past `K` zero.
    packed: Vec<T>,
    padv: T,
}

impl<T: Scalar> Winograd<T> {
    /// Transform and pack `w` (`(K, C, outer kernel…, 3, 3)` or `(…, 2, 2)`) for kernel set
    /// `ks`.
    pub fn new(p: &ConvProblem, w: &[T], ks: KernelSet<T>) -> Self {
        let mr = ks.geometry.mr;
        let rank = p.axes.len();
        let ka = p.axes[rank - 1].kernel;
        let (wa, tf) = if ka == 2 { (WA2, ks.wino2) } else { (WA, ks.wino) };
        let (wx, kk) = (wa * wa, ka * ka);
        let (outer, plane) = p.axes.split_at(rank - 2);
        let (c, k) = (p.in_channels, p.out_channels);
        let otaps: usize = outer.iter().map(|a| a.kernel).product();
        let r = c * otaps;
        let kpanels = k.div_ceil(mr);
        let mut packed = vec![T::ZERO; wx * kpanels * r * mr];
        // One weight panel and reduction row at a time, its `mr` output channels together, so
        // each of the 36 (25) packed rows is written whole (one pass over the packed weights).
        let mut us = [[0.0f64; WX]; MAX_MR];
        for kp in 0..kpanels {
            let live = mr.min(k - kp * mr);
            for ri in 0..r {
                // True convolution reverses every axis: the 3×3 (2×2) taps and the outer taps.
                let (ci, t) = (ri / otaps, ri % otaps);
                let t = if p.flip { otaps - 1 - t } else { t };
                for (i, u) in us[..live].iter_mut().enumerate() {
                    let ko = kp * mr + i;
                    let tap = |j: usize| {
                        let j = if p.flip { kk - 1 - j } else { j };
                        w[((ko * c + ci) * otaps + t) * kk + j].to_f64()
                    };
                    *u = if ka == 2 {
                        wino2_weight(&std::array::from_fn(tap))
                    } else {
                        wino_weight(&std::array::from_fn(tap))
                    };
                }
                let (r0, rr) = (ri / KC * KC, ri % KC);
                let kc = KC.min(r - r0);
                for x in 0..wx {
                    let row = &mut packed[(x * kpanels * r + r0 * kpanels + kp * kc + rr) * mr..][..live];
                    for (v, u) in row.iter_mut().zip(&us) {
                        *v = T::from_f64(u[x]);
                    }
                }
            }
        }
        // Input plane of every (output plane, outer tap) pair.
        let out_dims: Vec<usize> = outer.iter().map(|a| a.output).collect();
        let taps_dims: Vec<usize> = outer.iter().map(|a| a.kernel).collect();
        let out_planes: usize = out_dims.iter().product();
        let in_planes: usize = outer.iter().map(|a| a.input).product();
        let (mut oi, mut ti) = (vec![0; outer.len()], vec![0; outer.len()]);
        let mut planes = Vec::with_capacity(out_planes * otaps);
        for o in 0..out_planes {
            unravel(o, &out_dims, &mut oi);
            for t in 0..otaps {
                unravel(t, &taps_dims, &mut ti);
                let mut idx = Some(0usize);
                for (a, ax) in outer.iter().enumerate() {
                    let pos = (oi[a] * ax.stride + ti[a] * ax.dilation) as isize - ax.pad_begin as isize;
                    idx = match idx {
                        Some(i) if pos >= 0 && (pos as usize) < ax.input => Some(i * ax.input + pos as usize),
                        _ => None,
                    };
                }
                planes.push(idx);
            }
        }
        let (ay, ax) = (plane[0], plane[1]);
        let (dy, dx) = (ay.dilation, ax.dilation);
        let (th, tws) = (ay.output.div_ceil(WM * dy), ax.output.div_ceil(WM * dx));
        let per_panel = wx * WL * (r + kpanels * mr) * std::mem::size_of::<T>();
        let tiles = out_planes * th * dy * dx * tws;
        let panels = (BLOCK_BYTES / per_panel).clamp(1, MAX_PANELS).min(tiles.div_ceil(WL));
        let hw = ay.input * ax.input;
        let xs = match p.layout {
            Layout::Nchw => (in_planes * hw, hw, 1),
            Layout::Nhwc => (1, hw * c, c),
        };
        Winograd {
            ks,
            ka,
            wx,
            tf,
            mr,
            xs,
            c,
            k,
            kpanels,
            r,
            otaps,
            planes,
            in_planes,
            out_planes,
            hw: (ay.input, ax.input),
            ohw: (ay.output, ax.output),
            pad: (ay.pad_begin, ax.pad_begin),
            dil: (dy, dx),
            th,
            tws,
            panels,
            packed,
            padv: T::from_f64(pad_value(p.padding_mode)),
            p: p.clone(),
        }
    }

    fn v_len(&self) -> usize {
        self.wx * self.panels * self.r * WL
    }

    fn m_len(&self) -> usize {
        self.wx * self.kpanels * self.mr * self.panels * WL
    }

    fn per_thread(&self) -> usize {
        self.v_len() + self.m_len()
    }

    /// Tiles per band: every phase of every tile column.
    fn band_tiles(&self) -> usize {
        self.dil.0 * self.dil.1 * self.tws
    }

    /// Bands of a sample (over all output planes).
    fn bands(&self) -> usize {
        self.out_planes * self.th
    }

    /// First output position (within a channel of a sample) of band `b`.
    fn band_start(&self, b: usize) -> usize {
        let (oh, ow) = self.ohw;
        (b / self.th) * oh * ow + ((b % self.th) * WM * self.dil.0).min(oh) * ow
    }

    /// Tile `t` of band `u` counted over all samples (sample `u / bands`): phase row `α`,
    /// then tile column, then phase column `β`.
    fn tile_at(&self, u: usize, t: usize) -> Tile {
        let (dy, dx) = self.dil;
        let (n, b) = (u / self.bands(), u % self.bands());
        let (alpha, rest) = (t / (self.tws * dx), t % (self.tws * dx));
        let (tj, beta) = (rest / dx, rest % dx);
        Tile { n, o: b / self.th, oy0: (b % self.th) * WM * dy + alpha, ox0: tj * WM * dx + beta }
    }

    /// The split whose busiest worker has the fewest (panel, weight block) GEMM tiles; ties
    /// go to bands (no input transform done twice).
    fn split(&self, threads: usize) -> Split {
        if self.p.batch.is_multiple_of(threads) && self.p.batch > 0 {
            // Whole samples per worker, evenly: no band boundary inside a sample.
            return Split::Samples;
        }
        // Per panel: one unit per weight block's GEMMs, plus one for the input transform,
        // which a split by channels repeats in every worker. Without that unit 64-channel
        // layers split by channels and lost 17–24 % at 2 threads (Zen 4, AVX-512, alternating
        // A/B: resnet50_3x3_56 313 → 378 GFLOP/s, c3d_3x3x3_28 335 → 441).
        let panels = |tiles: usize| tiles.div_ceil(WL);
        let by_bands = panels(self.bands().div_ceil(threads) * self.band_tiles()) * (self.kpanels + 1);
        let by_channels = panels(self.bands() * self.band_tiles()) * (self.kpanels.div_ceil(threads) + 1);
        if threads > 1 && by_channels < by_bands && self.p.layout == Layout::Nchw {
            Split::Channels
        } else {
            Split::Bands
        }
    }

    /// Tiles of bands `bs` (counted over all samples of `x`) for output channels `ks` into
    /// `out` (which starts at band `bs.0`'s sample and, for [`Out::First`] or channels-last,
    /// its first position).
    fn work(
        &self,
        x: &[T],
        bias: Option<&[T]>,
        out: &mut Out<'_, '_, T>,
        ks: (usize, usize),
        bs: (usize, usize),
        ws: &mut [T],
    ) {
        let (v, m) = ws.split_at_mut(self.v_len());
        let per_band = self.band_tiles();
        let tiles = (bs.1 - bs.0) * per_band;
        let col0 = self.band_start(bs.0 % self.bands());
        let block = self.panels * WL;
        let mut lanes = [Tile::default(); MAX_PANELS * WL];
        for b0 in (0..tiles).step_by(block) {
            let nb = block.min(tiles - b0);
            for (l, tile) in lanes[..nb].iter_mut().enumerate() {
                let t = b0 + l;
                *tile = self.tile_at(bs.0 + t / per_band, t % per_band);
            }
            match self.ka {
                2 => self.transform_input::<WA2>(x, &lanes[..nb], v),
                _ => self.transform_input::<WA>(x, &lanes[..nb], v),
            }
            self.gemms(nb.div_ceil(WL), ks, v, m);
            self.transform_output(bias, &lanes[..nb], ks, col0, m, out);
        }
    }

    /// `V[ξ][q][r][l]` for the tiles of a block, every reduction row; patches of side `A`
    /// (the kernel side plus 3).
    fn transform_input<const A: usize>(&self, x: &[T], tiles: &[Tile], v: &mut [T]) {
        /// How a lane reads its patch for one outer tap (offsets from its channel's start).
        #[derive(Clone, Copy)]
        enum Src<T> {
            /// The patch lies inside the plane; its first element.
            Inside(usize),
            /// It crosses the border: the plane's start and the patch origin.
            Border(usize, isize, isize),
            /// Every element is this value (an outer tap in the padding, or no tile).
            Fill(T),
        }
        let (h, w) = self.hw;
        let (dy, dx) = self.dil;
        let (cs, ps, es) = self.xs;
        let xn = self.c * self.in_planes * h * w;
        let vstride = self.panels * self.r * WL;
        let contiguous = es == 1 && dx == 1;
        let mut d = [[T::ZERO; WL]; WX];
        for (q, tiles) in tiles.chunks(WL).enumerate() {
            for tap in 0..self.otaps {
                let src: [Src<T>; WL] = std::array::from_fn(|l| {
                    let Some(t) = tiles.get(l) else { return Src::Fill(T::ZERO) };
                    let Some(pl) = self.planes[t.o * self.otaps + tap] else { return Src::Fill(self.padv) };
                    let iy = t.oy0 as isize - self.pad.0 as isize;
                    let ix = t.ox0 as isize - self.pad.1 as isize;
                    if iy >= 0 && ix >= 0 && iy as usize + (A - 1) * dy < h && ix as usize + (A - 1) * dx < w
                    {
                        Src::Inside(t.n * xn + pl * ps + (iy as usize * w + ix as usize) * es)
                    } else {
                        Src::Border(t.n * xn + pl * ps, iy, ix)
                    }
                });
                // Runs of lanes side by side in one band (patches 4 columns apart, inside the
                // plane, channels-first undilated rows) go to the level's gather kernel.
                let mut runs = Runs::default();
                if self.ks.wino_gather.is_some() && contiguous {
                    let base = |l: usize| match src[l] {
                        Src::Inside(b) => Some(b),
                        _ => None,
                    };
                    runs.find(WL, MIN_GATHER_RUN, |l0, l| {
                        base(l0).zip(base(l)).is_some_and(|(b0, b)| b == b0 + 4 * (l - l0))
                    });
                }
                let gathered = &runs.covered;
                for ci in 0..self.c {
                    let xc = &x[ci * cs..];
                    if let Some(gather) = self.ks.wino_gather {
                        for &(l0, l1) in runs.list() {
                            let Src::Inside(base) = src[l0] else { unreachable!("runs start inside") };
                            gather(xc, base, dy * w, A, (l0, l1), &mut d);
                        }
                    }
                    for (l, src) in src.iter().enumerate() {
                        if gathered[l] {
                            continue;
                        }
                        match *src {
                            Src::Inside(base) if contiguous => {
                                // Channels-first, undilated rows: six (five) consecutive elements.
                                for r in 0..A {
                                    let row: &[T; A] =
                                        xc[base + r * dy * w..][..A].try_into().expect("A elements");
                                    for (s, &val) in row.iter().enumerate() {
                                        d[r * A + s][l] = val;
                                    }
                                }
                            }
                            Src::Inside(base) => {
                                for r in 0..A {
                                    let row = &xc[base + r * dy * w * es..][..(A - 1) * dx * es + 1];
                                    for (s, &val) in row.iter().step_by(dx * es).enumerate() {
                                        d[r * A + s][l] = val;
                                    }
                                }
                            }
                            Src::Border(base, iy, ix) => {
                                for r in 0..A {
                                    let y = iy + (r * dy) as isize;
                                    for s in 0..A {
                                        let xx = ix + (s * dx) as isize;
                                        let inside =
                                            y >= 0 && (y as usize) < h && xx >= 0 && (xx as usize) < w;
                                        d[r * A + s][l] = if inside {
                                            xc[base + (y as usize * w + xx as usize) * es]
                                        } else {
                                            self.padv
                                        };
                                    }
                                }
                            }
                            Src::Fill(val) => d.iter_mut().for_each(|e| e[l] = val),
                        }
                    }
                    let ri = ci * self.otaps + tap;
                    (self.tf.0)(&d, &mut v[(q * self.r + ri) * WL..], vstride);
                }
            }
        }
    }

    /// `M_ξ = U_ξ · V_ξ` for output channel blocks covering `ks`, `panels` column panels.
    fn gemms(&self, panels: usize, ks: (usize, usize), v: &[T], m: &mut [T]) {
        let r = self.r;
        let cols = self.panels * WL;
        let mstride = self.kpanels * self.mr * cols;
        let (kp0, kp1) = (ks.0 / self.mr, ks.1.div_ceil(self.mr));
        for x in 0..self.wx {
            let vx = &v[x * self.panels * r * WL..];
            let mx = &mut m[x * mstride..][..mstride];
            for r0 in (0..r).step_by(KC) {
                let kc = KC.min(r - r0);
                for kp in kp0..kp1 {
                    let a = &self.packed[(x * self.kpanels * r + r0 * self.kpanels + kp * kc) * self.mr..]
                        [..kc * self.mr];
                    let rows = scratch_rows(&mut mx[kp * self.mr * cols..], self.mr, cols);
                    let mut dst = TileDst {
                        rows,
                        accumulate: r0 > 0,
                        bias: None,
                        live: self.mr.min(self.k - kp * self.mr),
                    };
                    (self.ks.gemm)(kc, a, &vx[r0 * WL..], (panels, r * WL), &mut dst);
                }
            }
        }
    }

    /// `Y = Aᵀ M A + bias` for the tiles of a block, output channels `ks`, into `out` (which
    /// starts at output position `col0`).
    fn transform_output(
        &self,
        bias: Option<&[T]>,
        tiles: &[Tile],
        ks: (usize, usize),
        col0: usize,
        m: &[T],
        out: &mut Out<'_, '_, T>,
    ) {
        let (oh, ow) = self.ohw;
        let (dy, dx) = self.dil;
        let cols = self.panels * WL;
        let mstride = self.kpanels * self.mr * cols;
        let mut y: [Lanes<T>; WM * WM] = [[T::ZERO; WL]; WM * WM];
        let whole = |t: &Tile| t.oy0 + (WM - 1) * dy < oh && t.ox0 + WM <= ow;
        for (q, tiles) in tiles.chunks(WL).enumerate() {
            // Runs of whole tiles side by side in one output row (channels-first, undilated
            // columns) go to the level's scatter kernel.
            let mut runs = Runs::default();
            if self.ks.wino_scatter.is_some() && self.p.layout == Layout::Nchw && dx == 1 {
                runs.find(tiles.len(), MIN_SCATTER_RUN, |l0, l| {
                    let (t0, t) = (tiles[l0], tiles[l]);
                    whole(&t0)
                        && whole(&t)
                        && (t.n, t.o, t.oy0, t.ox0) == (t0.n, t0.o, t0.oy0, t0.ox0 + WM * (l - l0))
                });
            }
            let scattered = &runs.covered;
            for k in ks.0..ks.1 {
                let b = bias.map_or(T::ZERO, |b| b[k]);
                (self.tf.1)(&m[k * cols + q * WL..], mstride, b, &mut y);
                // Channels-first: row k of the part or of each sample, positions 1 apart;
                // channels-last: from channel k, positions K apart. `per` is a sample's
                // length in those steps.
                let cols_all = self.out_planes * oh * ow;
                let (row, step, per, n0) = match out {
                    Out::First(part, n0) => (part.row(k - ks.0), 1, 0, *n0),
                    Out::Flat(s, n0) if self.p.layout == Layout::Nchw => {
                        (&mut s[k * cols_all..], 1, self.k * cols_all, *n0)
                    }
                    Out::Flat(s, n0) => (&mut s[k..], self.k, cols_all, *n0),
                };
                if let Some(scatter) = self.ks.wino_scatter {
                    for &(l0, l1) in runs.list() {
                        let t = tiles[l0];
                        let at = (t.n - n0) * per + t.o * oh * ow + t.oy0 * ow + t.ox0 - col0;
                        scatter(&y, (l0, l1), &mut row[at..], dy * ow);
                    }
                }
                for (l, t) in tiles.iter().enumerate() {
                    if scattered[l] {
                        continue;
                    }
                    let at = (t.n - n0) * per + t.o * oh * ow + t.oy0 * ow + t.ox0 - col0;
                    if step == 1 && dx == 1 && t.oy0 + (WM - 1) * dy < oh && t.ox0 + WM <= ow {
                        // A whole tile, channels-first, undilated columns: four runs of four.
                        for u in 0..WM {
                            let dst: &mut [T; WM] =
                                (&mut row[at + u * dy * ow..][..WM]).try_into().expect("WM");
                            for (v, o) in dst.iter_mut().enumerate() {
                                *o = y[u * WM + v][l];
                            }
                        }
                        continue;
                    }
                    for u in 0..WM {
                        let oy = t.oy0 + u * dy;
                        if oy >= oh {
                            break;
                        }
                        for v in 0..WM {
                            let ox = t.ox0 + v * dx;
                            if ox >= ow {
                                break;
                            }
                            row[(at + u * dy * ow + v * dx) * step] = y[u * WM + v][l];
                        }
                    }
                }
            }
        }
    }
}

impl<T: Scalar> ConvImpl<T> for Winograd<T> {
    fn name(&self) -> String {
        self.ks.name("winograd")
    }

    fn workspace(&self, threads: usize) -> usize {
        self.per_thread() * threads.max(1)
    }

    fn execute(&self, x: &[T], bias: Option<&[T]>, y: &mut [T], ws: &mut [T], threads: usize) {
        let threads = threads.max(1);
        let (oh, ow) = self.ohw;
        let cols = self.out_planes * oh * ow;
        let yn = self.k * cols;
        let per = self.per_thread();
        let split = self.split(threads);
        let bands = self.bands();
        let b = |t: usize| bands * t / threads;
        if split == Split::Samples {
            // Worker t: samples n(t)..n(t + 1), their bands in one sequence.
            let n = |t: usize| self.p.batch * t / threads;
            let cut = |t: usize| n(t) * yn;
            split_join(y, ws, per, threads, &cut, &|t, out, ws| {
                let units = (n(t) * bands, n(t + 1) * bands);
                self.work(x, bias, &mut Out::Flat(out, n(t)), (0, self.k), units, ws)
            });
            return;
        }
        for n in 0..self.p.batch {
            let y = &mut y[n * yn..][..yn];
            let u = |t: usize| n * bands + b(t);
            match split {
                Split::Bands if self.p.layout == Layout::Nhwc => {
                    // Channels-last: a band's positions, with all their channels, are one run.
                    let cut = |t: usize| self.band_start(b(t)) * self.k;
                    split_join(y, ws, per, threads, &cut, &|t, run, ws| {
                        self.work(x, bias, &mut Out::Flat(run, n), (0, self.k), (u(t), u(t + 1)), ws)
                    });
                }
                Split::Channels => {
                    let kc = |t: usize| (self.kpanels * t / threads * self.mr).min(self.k);
                    let cut = |t: usize| kc(t) * cols;
                    split_join(y, ws, per, threads, &cut, &|t, rows, ws| {
                        let (k0, k1) = (kc(t), kc(t + 1));
                        let mut part = Part::whole(rows, (k1 - k0, cols));
                        let units = (n * bands, (n + 1) * bands);
                        self.work(x, bias, &mut Out::First(&mut part, n), (k0, k1), units, ws)
                    });
                }
                _ => {
                    let cut = |t: usize| self.band_start(b(t));
                    split_cols(y, (self.k, cols), ws, per, threads, &cut, &|t, mut part, ws| {
                        let out = &mut Out::First(&mut part, n);
                        self.work(x, bias, out, (0, self.k), (u(t), u(t + 1)), ws)
                    });
                }
            }
        }
    }
}
