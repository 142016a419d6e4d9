//! `winograd`: 2-D 3×3 stride-1 convolution by Winograd's minimal filtering F(4×4, 3×3).
//!
//! The output is cut into 4×4 tiles; each tile reads a 6×6 input patch. Per input channel the
//! patch is transformed (`V = Bᵀ d B`, 36 values), per output/input channel pair the kernel
//! (`U = G g Gᵀ`, at plan time in f64), and the 36 element-wise products summed over input
//! channels are 36 GEMMs `M_ξ[K, tiles] = U_ξ[K, C] · V_ξ[C, tiles]`, run by the same packed
//! tile kernels as `gemm-tiled`. Each 4×4 output tile is then `Aᵀ M A` plus the bias. That is
//! 36 multiplications per 16 outputs per channel pair instead of 144: 4× fewer.
//!
//! The price is accuracy: the transforms scale values by up to 10× and cancel them again, so
//! results differ from the exact sum by a few float32 roundings times those factors (relative
//! error around 1e-6 of the sum of |w·x|, tested in `tests/winograd.rs`), and a NaN or
//! infinity in a patch spreads over the whole 4×4 output tile. The planner only picks it when
//! the caller allows approximate implementations (the default; [`crate::PlanOptions::exact`]
//! turns it off).
//!
//! Work is done in blocks of [`WL`]`·P` tiles: transform the block's patches for every input
//! channel into the workspace (`V`, `[ξ][panel][c][WL]`), run the 36 GEMMs into `M`
//! (`[ξ][k][panel·WL]`), transform `M` into the output. Threads split a sample either by rows
//! of tiles (each worker its own output rows of every channel) or by blocks of `MR` output
//! channels (for few tiles), whichever leaves less work to the busiest worker. Every output
//! is computed by the same operations in the same order whatever the split.

use super::grid::{split_cols, Part};
use super::{split_join, ConvImpl};
use crate::isa::Isa;
use crate::kernels::winograd::{
    wino_input_generic, wino_output_generic, wino_weight, Lanes, WinoInFn, WinoOutFn, WA, WL, WM, WX,
};
use crate::kernels::{generic, GemmTile, TileDst, MR};
use crate::reference::pad_value;
use crate::scalar::Scalar;
use crate::shape::ConvProblem;
use crate::{Layout, PadMode};

/// Reduction (input channel) block of the GEMMs, as in `gemm-tiled`.
const KC: usize = super::gemm_tiled::KC;

/// The transformed input and GEMM results of one block stay under this many bytes (L2).
const BLOCK_BYTES: usize = 320 << 10;

/// Most column panels per block.
const MAX_PANELS: usize = 4;

/// Smallest channel counts the planner uses it for: below, the transforms cost more than the
/// multiplications they save.
pub const MIN_CHANNELS: usize = 16;

/// `Ok` if the problem is a 2-D 3×3 stride-1 undilated ungrouped channels-first convolution
/// with zero or constant padding, at least [`MIN_CHANNELS`] in and out and 4×4 outputs.
pub fn supports(p: &ConvProblem) -> Result<(), String> {
    if p.axes.len() != 2 {
        return Err(format!("{}-D, needs 2-D", p.axes.len()));
    }
    if p.axes.iter().any(|a| a.kernel != 3 || a.stride != 1 || a.dilation != 1) {
        return Err("needs a 3×3 kernel, stride 1, dilation 1".into());
    }
    if p.groups != 1 {
        return Err(format!("{} groups, needs 1", p.groups));
    }
    if p.layout != Layout::Nchw {
        return Err("needs channels-first layout".into());
    }
    if !matches!(p.padding_mode, PadMode::Zeros | PadMode::Constant(_)) {
        return Err(format!("padding mode {:?}, needs zeros or constant", p.padding_mode));
    }
    if p.in_channels < MIN_CHANNELS || p.out_channels < MIN_CHANNELS {
        return Err(format!("fewer than {MIN_CHANNELS} input or output channels"));
    }
    if p.axes.iter().any(|a| a.output < WM) {
        return Err(format!("output smaller than {WM}×{WM}"));
    }
    Ok(())
}

/// How a sample's work is split across workers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Split {
    /// By rows of tiles.
    Tiles,
    /// By blocks of `MR` output channels.
    Channels,
}

/// Winograd F(4×4, 3×3) for one problem, transformed weights packed for the tile kernel.
pub struct Winograd<T> {
    p: ConvProblem,
    isa: Isa,
    tile: GemmTile<T>,
    input: WinoInFn<T>,
    output: WinoOutFn<T>,
    c: usize,
    k: usize,
    kpanels: usize,
    /// Input height and width, output height and width, padding before (top, left).
    hw: (usize, usize),
    ohw: (usize, usize),
    pad: (usize, usize),
    /// Tile rows and columns.
    th: usize,
    tw: usize,
    /// Column panels per block.
    panels: usize,
    /// `U`: `[ξ][reduction block][k panel][kc][MR]`, rows past `K` zero.
    packed: Vec<T>,
    padv: T,
}

impl<T: Scalar> Winograd<T> {
    /// Transform and pack `w` (`(K, C, 3, 3)`) for `isa`'s kernels.
    pub fn new(p: &ConvProblem, w: &[T], isa: Isa) -> Self {
        let (c, k) = (p.in_channels, p.out_channels);
        let kpanels = k.div_ceil(MR);
        let mut packed = vec![T::ZERO; WX * kpanels * c * MR];
        for ko in 0..k {
            for ci in 0..c {
                let g: [f64; 9] = std::array::from_fn(|t| {
                    let t = if p.flip { 8 - t } else { t };
                    w[(ko * c + ci) * 9 + t].to_f64()
                });
                let u = wino_weight(&g);
                let (kp, i) = (ko / MR, ko % MR);
                let (r0, r) = (ci / KC * KC, ci % KC);
                let kc = KC.min(c - r0);
                for (x, &v) in u.iter().enumerate() {
                    packed[(x * kpanels * c + r0 * kpanels + kp * kc + r) * MR + i] = T::from_f64(v);
                }
            }
        }
        let (ay, ax) = (p.axes[0], p.axes[1]);
        let (th, tw) = (ay.output.div_ceil(WM), ax.output.div_ceil(WM));
        let per_panel = WX * WL * (c + kpanels * MR) * std::mem::size_of::<T>();
        let panels = (BLOCK_BYTES / per_panel).clamp(1, MAX_PANELS).min((th * tw).div_ceil(WL));
        let (input, output) = T::wino(isa).unwrap_or((wino_input_generic::<T>, wino_output_generic::<T>));
        Winograd {
            isa,
            tile: T::gemm_tile(isa).unwrap_or(generic::gemm_6x16::<T>),
            input,
            output,
            c,
            k,
            kpanels,
            hw: (ay.input, ax.input),
            ohw: (ay.output, ax.output),
            pad: (ay.pad_begin, ax.pad_begin),
            th,
            tw,
            panels,
            packed,
            padv: T::from_f64(pad_value(p.padding_mode)),
            p: p.clone(),
        }
    }

    fn v_len(&self) -> usize {
        WX * self.panels * self.c * WL
    }

    fn m_len(&self) -> usize {
        WX * self.kpanels * MR * self.panels * WL
    }

    fn per_thread(&self) -> usize {
        self.v_len() + self.m_len()
    }

    /// The split whose busiest worker has the fewest (panel, weight block) GEMM tiles; ties
    /// go to tile rows (no input transform done twice).
    fn split(&self, threads: usize) -> Split {
        let panels = |tiles: usize| tiles.div_ceil(WL);
        let by_tiles = panels(self.th.div_ceil(threads) * self.tw) * self.kpanels;
        let by_channels = panels(self.th * self.tw) * self.kpanels.div_ceil(threads);
        if threads > 1 && by_channels < by_tiles {
            Split::Channels
        } else {
            Split::Tiles
        }
    }

    /// Tiles of rows `ti0..ti1` of sample `x` (channels `C × H × W`) for output channels
    /// `k0..k1` into `part` (rows: channels from `k0`; columns: output positions from row
    /// `4·ti0`).
    fn work(
        &self,
        x: &[T],
        bias: Option<&[T]>,
        part: &mut Part<'_, T>,
        ks: (usize, usize),
        tis: (usize, usize),
        ws: &mut [T],
    ) {
        let (v, m) = ws.split_at_mut(self.v_len());
        let tiles = (tis.1 - tis.0) * self.tw;
        let block = self.panels * WL;
        for b0 in (0..tiles).step_by(block) {
            let nb = block.min(tiles - b0);
            let panels = nb.div_ceil(WL);
            // (tile row, tile column) of every lane of the block.
            let at = |l: usize| {
                let t = b0 + l;
                (tis.0 + t / self.tw, t % self.tw)
            };
            self.transform_input(x, nb, &at, v);
            self.gemms(panels, ks, v, m);
            self.transform_output(bias, nb, &at, ks, tis.0, m, part);
        }
    }

    /// `V[ξ][q][c][l]` for the `nb` tiles of a block, every input channel.
    fn transform_input(&self, x: &[T], nb: usize, at: &dyn Fn(usize) -> (usize, usize), v: &mut [T]) {
        let (h, w) = self.hw;
        let plane = h * w;
        let vstride = self.panels * self.c * WL;
        let mut d = [[T::ZERO; WL]; WX];
        for q in 0..nb.div_ceil(WL) {
            let lanes = WL.min(nb - q * WL);
            // Patch origin of each lane (row, column, possibly before the input), and
            // whether the patch lies inside the input.
            let origin: [(isize, isize, bool); WL] = std::array::from_fn(|l| {
                if l >= lanes {
                    return (0, 0, false);
                }
                let (ti, tj) = at(q * WL + l);
                let iy = (ti * WM) as isize - self.pad.0 as isize;
                let ix = (tj * WM) as isize - self.pad.1 as isize;
                let inside = iy >= 0 && ix >= 0 && iy as usize + WA <= h && ix as usize + WA <= w;
                (iy, ix, inside)
            });
            for ci in 0..self.c {
                let xc = &x[ci * plane..][..plane];
                for (l, &(iy, ix, inside)) in origin.iter().enumerate() {
                    if l >= lanes {
                        for e in d.iter_mut() {
                            e[l] = T::ZERO;
                        }
                    } else if inside {
                        let base = iy as usize * w + ix as usize;
                        for r in 0..WA {
                            let row = &xc[base + r * w..][..WA];
                            for (s, &val) in row.iter().enumerate() {
                                d[r * WA + s][l] = val;
                            }
                        }
                    } else {
                        for r in 0..WA {
                            let y = iy + r as isize;
                            for s in 0..WA {
                                let xx = ix + s as isize;
                                let val = if y >= 0 && (y as usize) < h && xx >= 0 && (xx as usize) < w {
                                    xc[y as usize * w + xx as usize]
                                } else {
                                    self.padv
                                };
                                d[r * WA + s][l] = val;
                            }
                        }
                    }
                }
                (self.input)(&d, &mut v[(q * self.c + ci) * WL..], vstride);
            }
        }
    }

    /// `M_ξ = U_ξ · V_ξ` for output channel blocks covering `ks`, `panels` column panels.
    fn gemms(&self, panels: usize, ks: (usize, usize), v: &[T], m: &mut [T]) {
        let c = self.c;
        let cols = self.panels * WL;
        let mstride = self.kpanels * MR * cols;
        let (kp0, kp1) = (ks.0 / MR, ks.1.div_ceil(MR));
        for x in 0..WX {
            let vx = &v[x * self.panels * c * WL..];
            let mx = &mut m[x * mstride..][..mstride];
            for r0 in (0..c).step_by(KC) {
                let kc = KC.min(c - r0);
                for kp in kp0..kp1 {
                    let a =
                        &self.packed[(x * self.kpanels * c + r0 * self.kpanels + kp * kc) * MR..][..kc * MR];
                    let mut rows = mx[kp * MR * cols..][..MR * cols].chunks_exact_mut(cols);
                    let rows: [&mut [T]; MR] = std::array::from_fn(|_| rows.next().expect("MR rows"));
                    let mut dst =
                        TileDst { rows, accumulate: r0 > 0, bias: None, live: MR.min(self.k - kp * MR) };
                    (self.tile)(kc, a, &vx[r0 * WL..], (panels, c * WL), &mut dst);
                }
            }
        }
    }

    /// `Y = Aᵀ M A + bias` for the `nb` tiles of a block, output channels `ks`, into `part`
    /// (its columns start at output row `4·ti0`).
    #[allow(clippy::too_many_arguments)]
    fn transform_output(
        &self,
        bias: Option<&[T]>,
        nb: usize,
        at: &dyn Fn(usize) -> (usize, usize),
        ks: (usize, usize),
        ti0: usize,
        m: &[T],
        part: &mut Part<'_, T>,
    ) {
        let (oh, ow) = self.ohw;
        let cols = self.panels * WL;
        let mstride = self.kpanels * MR * cols;
        let mut y: [Lanes<T>; WM * WM] = [[T::ZERO; WL]; WM * WM];
        for q in 0..nb.div_ceil(WL) {
            let lanes = WL.min(nb - q * WL);
            for k in ks.0..ks.1 {
                let b = bias.map_or(T::ZERO, |b| b[k]);
                (self.output)(&m[k * cols + q * WL..], mstride, b, &mut y);
                let row = part.row(k - ks.0);
                // `l` picks a lane of every output element's array, not an element of `y`.
                #[allow(clippy::needless_range_loop)]
                for l in 0..lanes {
                    let (ti, tj) = at(q * WL + l);
                    let (oy0, ox0) = (ti * WM, tj * WM);
                    for u in 0..WM.min(oh - oy0) {
                        let dst = &mut row[(oy0 + u - ti0 * WM) * ow + ox0..];
                        for (vv, o) in dst.iter_mut().take(WM.min(ow - ox0)).enumerate() {
                            *o = y[u * WM + vv][l];
                        }
                    }
                }
            }
        }
    }
}

impl<T: Scalar> ConvImpl<T> for Winograd<T> {
    fn name(&self) -> String {
        format!(
            "winograd:{}",
            if self.isa >= Isa::Avx2Fma && T::wino(self.isa).is_some() { "avx2" } else { "generic" }
        )
    }

    fn workspace(&self, threads: usize) -> usize {
        self.per_thread() * threads.max(1)
    }

    fn execute(&self, x: &[T], bias: Option<&[T]>, y: &mut [T], ws: &mut [T], threads: usize) {
        let threads = threads.max(1);
        let (h, w) = self.hw;
        let (oh, ow) = self.ohw;
        let (xn, yn) = (self.c * h * w, self.k * oh * ow);
        let per = self.per_thread();
        let split = self.split(threads);
        for n in 0..self.p.batch {
            let (x, y) = (&x[n * xn..][..xn], &mut y[n * yn..][..yn]);
            match split {
                Split::Tiles => {
                    let ti = |t: usize| self.th * t / threads;
                    let cut = |t: usize| (ti(t) * WM).min(oh) * ow;
                    split_cols(y, (self.k, oh * ow), ws, per, threads, &cut, &|t, mut part, ws| {
                        self.work(x, bias, &mut part, (0, self.k), (ti(t), ti(t + 1)), ws)
                    });
                }
                Split::Channels => {
                    let kc = |t: usize| (self.kpanels * t / threads * MR).min(self.k);
                    let cut = |t: usize| kc(t) * oh * ow;
                    split_join(y, ws, per, threads, &cut, &|t, rows, ws| {
                        let (k0, k1) = (kc(t), kc(t + 1));
                        let mut part = Part::whole(rows, (k1 - k0, oh * ow));
                        self.work(x, bias, &mut part, (k0, k1), (0, self.th), ws)
                    });
                }
            }
        }
    }
}
