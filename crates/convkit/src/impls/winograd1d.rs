//! `winograd-1d`: 1-D convolutions with kernels of 2 or 3 taps at stride 1, by Winograd's
//! minimal filtering F(4, 2) or F(4, 3) along the one axis.
//!
//! The output row is cut into tiles of 4; each tile reads `α = 4 + k − 1` inputs (5 or 6).
//! Per input channel the `α` inputs are transformed (`v = Bᵀ d`), per output/input channel
//! pair the kernel (`u = G g`, at plan time in f64), and the `α` element-wise products summed
//! over input channels are `α` GEMMs `M_ξ[K, tiles] = U_ξ[K, C] · V_ξ[C, tiles]`, run by the
//! same packed tile kernels as `gemm-tiled`. Each tile of 4 outputs is then `Aᵀ m` plus the
//! bias. That is 5 multiplications per 4 outputs per channel pair instead of 8 for 2 taps
//! (1.6× fewer) and 6 instead of 12 for 3 taps (2×). The transforms are the 1-D factors of
//! `winograd`'s F(4×4, 2×2) and F(4×4, 3×3) (points 0, ±1, 2, ∞ and 0, ±1, ±2, ∞).
//!
//! Its main users are the phases of 1-D transposed convolutions whose kernel is twice or
//! three times the stride (a kernel of 16 at stride 8: eight 2-tap phases sharing one
//! convolution), and 1-D layers of 3 taps.
//!
//! The price is accuracy, as for `winograd`: results differ from the exact sum by a few
//! roundings scaled by the transforms' factors (up to 8), relative to the sum of `|w·x|`
//! (tested in `tests/winograd1d.rs`); a NaN or infinity in a tile's inputs spreads over its 4
//! outputs. The planner picks it unless exact results are asked for.
//!
//! Work runs in blocks of up to [`MAX_PANELS`] panels of [`WL`] tiles: the block's inputs are
//! transformed for every input channel into the workspace (`V`, `[ξ][panel][c][WL]`), then per
//! block of `mr` output channels the `α` GEMMs fill `M` (`[ξ][row][panel·WL]`, in L1) and the
//! tiles are transformed straight into the output rows. Threads split each sample's tiles
//! into contiguous runs of panels, so every output is computed the same way whatever the split.

use super::grid::{split_cols, Part};
use super::ConvImpl;
use crate::geometry::pad_value;
use crate::kernels::winograd::{WA, WINO2_G, WINO_G, WL, WM};
use crate::kernels::{scratch_rows, KernelSet, TileDst};
use crate::scalar::Scalar;
use crate::shape::ConvProblem;
use crate::{Layout, PadMode};

/// Reduction (input channel) block of the GEMMs, as in `gemm-tiled`.
const KC: usize = super::gemm_tiled::KC;

/// The transformed inputs of one block stay under this many bytes (L2).
const BLOCK_BYTES: usize = 256 << 10;

/// Most column panels per block.
const MAX_PANELS: usize = 4;

/// Fewest input and output channels the planner uses it for with 3 taps: below, the
/// transforms cost more than the multiplications they save. Measured on Zen 4 (`avx512`, one
/// thread, 4000 positions, against `gemm-tiled`): 64 channels 1.15×, 128 1.5×, 512 1.75×.
pub const MIN_CHANNELS: usize = 64;

/// The same for 2 taps, which save less (1.6× against 2×): 64 channels measured 0.95–1.0×,
/// 128 0.96–1.17×, 256 1.36–1.38×.
pub const MIN_CHANNELS_2TAP: usize = 128;

/// `Ok` for 1-D, channels-first, ungrouped convolutions with a kernel of 2 or 3 taps, stride
/// and dilation 1, zero or constant padding, at least [`MIN_CHANNELS`] in and out
/// ([`MIN_CHANNELS_2TAP`] for 2 taps) and 4 outputs; the kernel set's tiles must be [`WL`]
/// columns wide (one column per tile).
pub fn supports<T>(p: &ConvProblem, ks: &KernelSet<T>) -> Result<(), String> {
    if ks.geometry.nr != WL {
        return Err(format!("tiles {} columns wide, the transforms batch {WL} tiles", ks.geometry.nr));
    }
    let [a] = p.axes[..] else {
        return Err(format!("{}-D, needs 1-D", p.axes.len()));
    };
    if !matches!(a.kernel, 2 | 3) || a.stride != 1 || a.dilation != 1 {
        return Err("needs a kernel of 2 or 3 taps, stride 1 and dilation 1".into());
    }
    if p.groups != 1 {
        return Err(format!("{} groups, needs 1", p.groups));
    }
    if p.layout != Layout::Nchw {
        return Err("channels-last, needs channels-first".into());
    }
    if !matches!(p.padding_mode, PadMode::Zeros | PadMode::Constant(_)) {
        return Err(format!("padding mode {:?}, needs zeros or constant", p.padding_mode));
    }
    let least = if a.kernel == 2 { MIN_CHANNELS_2TAP } else { MIN_CHANNELS };
    if p.in_channels < least || p.out_channels < least {
        return Err(format!("fewer than {least} input or output channels for {} taps", a.kernel));
    }
    if a.output < WM {
        return Err(format!("fewer than {WM} outputs"));
    }
    Ok(())
}

/// Winograd F(4, 2) or F(4, 3) for one problem, transformed weights packed for the tile
/// kernel.
pub struct Winograd1d<T> {
    p: ConvProblem,
    ks: KernelSet<T>,
    /// Inputs per tile (`α`: 5 or 6), the kernel set's tile rows.
    wa: usize,
    mr: usize,
    c: usize,
    k: usize,
    kpanels: usize,
    /// Input and output lengths, padding before and after.
    lin: usize,
    lout: usize,
    pad: (usize, usize),
    /// Tiles of 4 outputs per sample, column panels per block.
    tiles: usize,
    panels: usize,
    /// `U`: `[ξ][reduction block][k panel][kc][mr]`, rows past `K` zero.
    packed: Vec<T>,
    padv: T,
}

impl<T: Scalar> Winograd1d<T> {
    /// Transform and pack `w` (`(K, C, 2)` or `(K, C, 3)`) for kernel set `ks`.
    pub fn new(p: &ConvProblem, w: &[T], ks: KernelSet<T>) -> Self {
        let mr = ks.geometry.mr;
        let a = p.axes[0];
        let ka = a.kernel;
        let wa = WM + ka - 1;
        let (c, k) = (p.in_channels, p.out_channels);
        let kpanels = k.div_ceil(mr);
        let mut packed = vec![T::ZERO; wa * kpanels * c * mr];
        for ko in 0..k {
            let (kp, i) = (ko / mr, ko % mr);
            for ci in 0..c {
                // True convolution reverses the taps.
                let g = |j: usize| w[(ko * c + ci) * ka + if p.flip { ka - 1 - j } else { j }].to_f64();
                let (r0, rr) = (ci / KC * KC, ci % KC);
                let kc = KC.min(c - r0);
                for x in 0..wa {
                    let u = if ka == 2 {
                        WINO2_G[x][0] * g(0) + WINO2_G[x][1] * g(1)
                    } else {
                        (0..3).map(|j| WINO_G[x][j] * g(j)).sum()
                    };
                    packed[(x * kpanels * c + r0 * kpanels + kp * kc + rr) * mr + i] = T::from_f64(u);
                }
            }
        }
        let tiles = a.output.div_ceil(WM);
        let per_panel = wa * WL * c * std::mem::size_of::<T>();
        let panels = (BLOCK_BYTES / per_panel).clamp(1, MAX_PANELS).min(tiles.div_ceil(WL));
        Winograd1d {
            ks,
            wa,
            mr,
            c,
            k,
            kpanels,
            lin: a.input,
            lout: a.output,
            pad: (a.pad_begin, a.pad_end),
            tiles,
            panels,
            packed,
            padv: T::from_f64(pad_value(p.padding_mode)),
            p: p.clone(),
        }
    }

    fn v_len(&self) -> usize {
        self.wa * self.panels * self.c * WL
    }

    fn m_len(&self) -> usize {
        self.wa * self.mr * self.panels * WL
    }

    fn per_thread(&self) -> usize {
        self.v_len() + self.m_len()
    }

    /// The tiles of panels `p0..p1` of one sample (`x`: its `C × lin` input) into `y` (its
    /// `K × lout` output, the part from column `4·WL·p0`), plus `add` (the sample's `K × lout`
    /// addend) if given.
    fn run(
        &self,
        x: &[T],
        (bias, add): (Option<&[T]>, Option<&[T]>),
        (p0, p1): (usize, usize),
        y: &mut Part<'_, T>,
        ws: &mut [T],
    ) {
        let (v, m) = ws.split_at_mut(self.v_len());
        let m = &mut m[..self.m_len()];
        let mut pp = p0;
        while pp < p1 {
            let np = self.panels.min(p1 - pp);
            self.transform_inputs(x, pp, np, v);
            for kp in 0..self.kpanels {
                self.block(kp, np, v, m);
                self.transform_outputs((bias, add), (kp, pp, np), p0 * WL * WM, m, y);
            }
            pp += np;
        }
    }

    /// `V` of panels `pp .. pp + np`: `v[((ξ·np + j)·C + c)·WL + l]`.
    fn transform_inputs(&self, x: &[T], pp: usize, np: usize, v: &mut [T]) {
        let (lin, wa, c) = (self.lin, self.wa, self.c);
        // Positions outside the padded input are read only by outputs past the end: zero,
        // so that no value spreads into the last tile's real outputs.
        let (lo, hi) = (-(self.pad.0 as isize), (lin + self.pad.1) as isize);
        for ci in 0..c {
            let xr = &x[ci * lin..][..lin];
            for j in 0..np {
                let t0 = (pp + j) * WL;
                let mut d = [[T::ZERO; WL]; WA];
                let t1 = (t0 + WL).min(self.tiles);
                // Tiles whose inputs all lie inside the row: no checks.
                let inside = |t: usize| WM * t >= self.pad.0 && WM * t - self.pad.0 + wa <= lin;
                if t1 == t0 + WL && inside(t0) && inside(t1 - 1) {
                    let row = &xr[WM * t0 - self.pad.0..][..WM * (WL - 1) + wa];
                    for (s, ds) in d[..wa].iter_mut().enumerate() {
                        for (l, v) in ds.iter_mut().enumerate() {
                            *v = row[WM * l + s];
                        }
                    }
                    (self.ks.wino1.0)(wa, &d, &mut v[(j * c + ci) * WL..], np * c * WL);
                    continue;
                }
                for (l, t) in (t0..t1).enumerate() {
                    let base = (WM * t) as isize - self.pad.0 as isize;
                    for (s, ds) in d[..wa].iter_mut().enumerate() {
                        let pos = base + s as isize;
                        ds[l] = if pos >= 0 && (pos as usize) < lin {
                            xr[pos as usize]
                        } else if pos >= lo && pos < hi {
                            self.padv
                        } else {
                            T::ZERO
                        };
                    }
                }
                (self.ks.wino1.0)(wa, &d, &mut v[(j * c + ci) * WL..], np * c * WL);
            }
        }
    }

    /// The `α` GEMMs of weight block `kp` over the `np` panels of `v` into `m`
    /// (`m[(ξ·mr + i)·np·WL + col]`).
    fn block(&self, kp: usize, np: usize, v: &[T], m: &mut [T]) {
        let (c, mr) = (self.c, self.mr);
        let live = mr.min(self.k - kp * mr);
        let width = np * WL;
        for (x, mx) in m.chunks_exact_mut(mr * width).take(self.wa).enumerate() {
            for r0 in (0..c).step_by(KC) {
                let kc = KC.min(c - r0);
                let a = &self.packed[(x * self.kpanels * c + r0 * self.kpanels + kp * kc) * mr..][..kc * mr];
                let b = &v[(x * np * c + r0) * WL..];
                let rows = scratch_rows(mx, mr, width);
                let mut dst = TileDst { rows, accumulate: r0 > 0, bias: None, live };
                (self.ks.gemm)(kc, a, b, (np, c * WL), &mut dst);
            }
        }
    }

    /// Output tiles of weight block `kp` for panels `pp .. pp + np` from `m`, plus the bias
    /// (and `add`'s matching element), into the rows of `y` (whose first column is output
    /// position `col0`).
    fn transform_outputs(
        &self,
        (bias, add): (Option<&[T]>, Option<&[T]>),
        (kp, pp, np): (usize, usize, usize),
        col0: usize,
        m: &[T],
        y: &mut Part<'_, T>,
    ) {
        let (mr, width) = (self.mr, np * WL);
        let live = mr.min(self.k - kp * mr);
        for i in 0..live {
            let ko = kp * mr + i;
            let b = bias.map_or(T::ZERO, |b| b[ko]);
            let row = y.row(ko);
            for j in 0..np {
                let first = (pp + j) * WL * WM;
                let n = (self.lout - first).min(WL * WM);
                let e = add.map(|e| &e[ko * self.lout + first..][..n]);
                (self.ks.wino1.1)(
                    self.wa,
                    &m[i * width + j * WL..],
                    mr * width,
                    b,
                    e,
                    &mut row[first - col0..][..n],
                );
            }
        }
    }
}

impl<T: Scalar> ConvImpl<T> for Winograd1d<T> {
    fn name(&self) -> String {
        self.ks.name("winograd-1d")
    }

    fn workspace(&self, threads: usize) -> usize {
        self.per_thread() * threads.max(1)
    }

    fn execute(&self, x: &[T], bias: Option<&[T]>, y: &mut [T], ws: &mut [T], threads: usize) {
        self.execute_plus(x, (bias, None), y, ws, threads)
    }
}

impl<T: Scalar> Winograd1d<T> {
    /// [`ConvImpl::execute`], each output plus the matching element of `add` (the output's
    /// shape) after the bias, in the same pass.
    pub fn execute_plus(
        &self,
        x: &[T],
        (bias, add): (Option<&[T]>, Option<&[T]>),
        y: &mut [T],
        ws: &mut [T],
        threads: usize,
    ) {
        let (xn, yn) = (self.c * self.lin, self.k * self.lout);
        let ppanels = self.tiles.div_ceil(WL);
        let threads = threads.clamp(1, ppanels.max(1));
        let per = self.per_thread();
        let first = |t: usize| ppanels * t / threads;
        let cut = |t: usize| (first(t) * WL * WM).min(self.lout);
        for n in 0..self.p.batch {
            let (x, y) = (&x[n * xn..][..xn], &mut y[n * yn..][..yn]);
            let add = add.map(|e| &e[n * yn..][..yn]);
            split_cols(y, (self.k, self.lout), ws, per, threads, &cut, &|t, mut part, w| {
                self.run(x, (bias, add), (first(t), first(t + 1)), &mut part, w)
            });
        }
    }
}
