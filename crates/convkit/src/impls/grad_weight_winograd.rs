//! `grad-weight-winograd`: the weight gradient of a 2-D 3×3 stride-1 convolution by Winograd's
//! F(3×3, 4×4), the transpose of the forward F(4×4, 3×3).
//!
//! The output gradient `dY` is cut into 4×4 tiles. A tile's contribution to the 3×3 weight
//! gradient of a channel pair `(k, c)` is the correlation of its 6×6 input patch `d` (the
//! same patch the forward F(4×4, 3×3) reads for that output tile) with the tile `h`:
//! `Σ_ij h[i][j]·d[i + a][j + b]`. Transposing the forward algorithm's bilinear form gives
//! `Gᵀ [(A h Aᵀ) ⊙ (Bᵀ d B)] G`: the input patch takes the forward input transform (`Bᵀ d B`),
//! the gradient tile the transpose of the forward output transform (`A h Aᵀ`, 6×4 on both
//! sides), and the 36 products, summed over every tile of every sample, are 36 GEMMs
//! `M_ξ[K, C] = H_ξ[K, tiles] · V_ξ[tiles, C]`, run by the forward tile kernels. Each channel
//! pair's 36 sums then become its 3×3 gradient by `Gᵀ M G` (in `f64`, once). That is 36
//! multiplications per 16 gradient positions per channel pair instead of 144: 4× fewer.
//!
//! Both transforms run on [`WL`] channels at once (lanes are channels, not tiles): a band of
//! 4 output rows of the gradient and the 6 input rows under it are first staged channel-block
//! by channel-block as `[row][column][WL channels]` (padded with the padding value; positions
//! past the padding, which meet only zero gradient, with 0), so that a patch is 36 (16)
//! whole lane arrays. The transformed tiles are then already in the packed layouts the tile
//! kernel reads: `H` as `[ξ][k panel][tile][mr]`, `V` as `[ξ][channel block][tile][WL]`.
//! Tiles are taken [`CHUNK`] at a time, in one sequence over samples and bands.
//!
//! Accuracy: like the forward Winograd, the transforms scale values and cancel them again, so
//! sums differ from the exact ones by a few float32 roundings times those factors (tested in
//! `tests/grad_weight_winograd.rs` against an `f64` reference, relative to `Σ|dy·x|`); a NaN
//! or infinity in a patch or a gradient tile spreads over the whole pair's 3×3 gradient.
//! `--exact`, [`crate::PlanOptions::exact`] and `CONVKIT_EXACT=1` keep it off.
//!
//! The tiles are cut into up to [`PARTS`] parts, a number fixed by the problem (not by the
//! thread count), each summed into its own `M`; workers take whole parts, and the parts'
//! sums are added in order at the end, so every result is the same whatever the split.

use super::split_join;
use crate::geometry::pad_value;
use crate::kernels::winograd::{wino_grad_out, Lanes, WA, WL, WM, WX};
use crate::kernels::{scratch_rows, KernelSet, TileDst};
use crate::scalar::Scalar;
use crate::shape::{data_strides, ConvProblem};
use crate::PadMode;

/// Tiles whose transforms are multiplied together (the reduction length of one tile-kernel
/// call).
const CHUNK: usize = 64;

/// Fewest input and output channels it is used for (below, the transforms cost more than
/// the multiplications they save).
pub const MIN_CHANNELS: usize = 16;

/// Largest `M` (36 sums per channel pair) of all parts together, in bytes; problems whose
/// single `M` is larger take the GEMM.
const MAX_SUMS_BYTES: usize = 12 << 20;

/// Input channels whose sums are finished together (an `f64` block of `36 ×` this on the
/// stack).
const OUT_BLOCK: usize = 64;

/// Most parts the tiles are cut into (each summed on its own, then added in order): the
/// most workers that share the work.
const PARTS: usize = 4;

/// `Ok` if the problem is 2-D with a 3×3 kernel, stride and dilation 1, one group, zero or
/// constant padding, at least [`MIN_CHANNELS`] input and output channels, and a kernel set
/// whose tiles are [`WL`] columns wide.
pub fn supports<T>(p: &ConvProblem, ks: &KernelSet<T>) -> Result<(), String> {
    if ks.geometry.nr != WL {
        return Err(format!("tiles {} columns wide, the transforms batch {WL} channels", ks.geometry.nr));
    }
    if p.axes.len() != 2 {
        return Err(format!("{}-D, needs 2-D", p.axes.len()));
    }
    if p.axes.iter().any(|a| a.kernel != 3 || a.stride != 1 || a.dilation != 1) {
        return Err("needs a 3×3 kernel, stride 1 and dilation 1".into());
    }
    if p.groups != 1 {
        return Err(format!("{} groups, needs 1", p.groups));
    }
    if !matches!(p.padding_mode, PadMode::Zeros | PadMode::Constant(_)) {
        return Err(format!("padding mode {:?}, needs zeros or constant", p.padding_mode));
    }
    if p.in_channels < MIN_CHANNELS || p.out_channels < MIN_CHANNELS {
        return Err(format!("fewer than {MIN_CHANNELS} input or output channels"));
    }
    let mr = ks.geometry.mr;
    let sums =
        WX * p.out_channels.div_ceil(mr) * mr * p.in_channels.div_ceil(WL) * WL * std::mem::size_of::<T>();
    if sums > MAX_SUMS_BYTES {
        return Err(format!("{sums} bytes of transformed sums, more than {MAX_SUMS_BYTES}"));
    }
    Ok(())
}

/// Winograd F(3×3, 4×4) weight gradient for one problem.
pub struct GradWeightWinograd<T> {
    p: ConvProblem,
    ks: KernelSet<T>,
    mr: usize,
    c: usize,
    k: usize,
    /// Blocks of [`WL`] input channels, of [`WL`] output channels, and `mr`-row panels of
    /// output channels.
    cbs: usize,
    kbs: usize,
    kpanels: usize,
    /// Input and output plane height and width, padding before (top, left) and after.
    hw: (usize, usize),
    ohw: (usize, usize),
    pad: (usize, usize),
    pad_end: (usize, usize),
    /// Bands of 4 output rows, tiles per band.
    th: usize,
    tw: usize,
    /// Input and gradient strides: per sample, per channel, per row, per column.
    xs: (usize, usize, usize, usize),
    ys: (usize, usize, usize, usize),
    padv: T,
}

impl<T: Scalar> GradWeightWinograd<T> {
    /// The plan for `p` (which [`supports`] accepts) on kernel set `ks`.
    pub fn new(p: &ConvProblem, ks: KernelSet<T>) -> Self {
        let mr = ks.geometry.mr;
        let (ay, ax) = (p.axes[0], p.axes[1]);
        let strides = |layout, ch, sp: &[usize]| {
            let (n, c, s) = data_strides(layout, ch, sp);
            (n, c, s[0], s[1])
        };
        GradWeightWinograd {
            mr,
            c: p.in_channels,
            k: p.out_channels,
            cbs: p.in_channels.div_ceil(WL),
            kbs: p.out_channels.div_ceil(WL),
            kpanels: p.out_channels.div_ceil(mr),
            hw: (ay.input, ax.input),
            ohw: (ay.output, ax.output),
            pad: (ay.pad_begin, ax.pad_begin),
            pad_end: (ay.pad_end, ax.pad_end),
            th: ay.output.div_ceil(WM),
            tw: ax.output.div_ceil(WM),
            xs: strides(p.layout, p.in_channels, &p.input_spatial()),
            ys: strides(p.layout, p.out_channels, &p.output_spatial()),
            padv: T::from_f64(pad_value(p.padding_mode)),
            ks,
            p: p.clone(),
        }
    }

    /// `grad-weight-winograd:` and the kernel set's level.
    pub fn name(&self) -> String {
        self.ks.name("grad-weight-winograd")
    }

    /// Width of a staged input band (the patches of a band's tiles side by side).
    fn band_width(&self) -> usize {
        WM * self.tw + 2
    }

    /// Tiles over every sample.
    fn tiles(&self) -> usize {
        self.p.batch * self.th * self.tw
    }

    /// Parts the tiles are cut into, each summed into its own `M` (at most [`PARTS`], and
    /// their sums within [`MAX_SUMS_BYTES`]); a property of the problem, not of the thread
    /// count, so the sums are the same whatever the split.
    fn parts(&self) -> usize {
        let m = self.m_len() * std::mem::size_of::<T>();
        (MAX_SUMS_BYTES / m.max(1)).clamp(1, PARTS).min(self.tiles().max(1))
    }

    /// Elements of one `M`: `[ξ][output channel (mr-padded)][input channel (WL-padded)]`.
    fn m_len(&self) -> usize {
        WX * self.kpanels * self.mr * self.cbs * WL
    }

    /// Scratch of one worker: the staged input and gradient bands, then `V` and `H`.
    fn per_thread(&self) -> (usize, [usize; 4]) {
        let parts = [
            self.cbs * WA * self.band_width() * WL,
            self.kbs * WM * WM * self.tw * WL,
            WX * self.cbs * CHUNK * WL,
            WX * self.kpanels * self.mr * CHUNK,
        ];
        (parts.iter().sum(), parts)
    }

    /// Scratch elements for `threads` workers: every part's `M`, then each worker's own.
    pub fn workspace(&self, threads: usize) -> usize {
        self.parts() * self.m_len() + self.per_thread().0 * threads.max(1).min(self.parts())
    }

    /// `gw = ∂L/∂w` (shape `(K, C, 3, 3)`) from the input `x` and `gy = ∂L/∂y`.
    pub fn execute(&self, x: &[T], gy: &[T], gw: &mut [T], ws: &mut [T], threads: usize) {
        if self.p.batch == 0 {
            gw.fill(T::ZERO);
            return;
        }
        let parts = self.parts();
        let threads = threads.max(1).min(parts);
        let (m_len, per) = (self.m_len(), self.per_thread().0);
        let (ms, scratch) = ws.split_at_mut(parts * m_len);
        // Worker t sums parts parts·t/threads .. into their own M.
        let first = |t: usize| parts * t / threads;
        split_join(ms, &mut scratch[..per * threads], per, threads, &|t| first(t) * m_len, &|t, mine, ws| {
            for (i, m) in mine.chunks_exact_mut(m_len).enumerate() {
                let part = first(t) + i;
                let tiles = self.tiles();
                self.work(x, gy, (tiles * part / parts, tiles * (part + 1) / parts), m, ws);
            }
        });
        // Per channel pair: the parts' sums added in order (in f64), then Gᵀ M G; workers
        // split the output channels.
        let (kpad, ct) = (self.kpanels * self.mr, self.cbs * WL);
        let ms = &*ms;
        let row = self.c * 9;
        split_join(gw, &mut [], 0, threads, &|t| self.k * t / threads * row, &|t, part, _| {
            let k0 = self.k * t / threads;
            for (kk, gwk) in part.chunks_exact_mut(row).enumerate() {
                let k = k0 + kk;
                for c0 in (0..self.c).step_by(OUT_BLOCK) {
                    let cn = OUT_BLOCK.min(self.c - c0);
                    let mut acc = [[0.0f64; OUT_BLOCK]; WX];
                    for mp in ms.chunks_exact(m_len) {
                        for (xi, a) in acc.iter_mut().enumerate() {
                            let src = &mp[(xi * kpad + k) * ct + c0..][..cn];
                            for (av, &mv) in a.iter_mut().zip(src) {
                                *av += mv.to_f64();
                            }
                        }
                    }
                    for ci in 0..cn {
                        let z = wino_grad_out(&std::array::from_fn(|xi| acc[xi][ci]));
                        let dst = &mut gwk[(c0 + ci) * 9..][..9];
                        for (j, &v) in z.iter().enumerate() {
                            dst[if self.p.flip { 8 - j } else { j }] = T::from_f64(v);
                        }
                    }
                }
            }
        });
    }

    /// `M` (into `m`) over tiles `t0..t1` of the sequence over samples, bands and tile
    /// columns.
    fn work(&self, x: &[T], gy: &[T], (t0, t1): (usize, usize), m: &mut [T], ws: &mut [T]) {
        let ncb = self.cbs;
        let (_, parts) = self.per_thread();
        let (xb, rest) = ws.split_at_mut(parts[0]);
        let (yb, rest) = rest.split_at_mut(parts[1]);
        let (v, u) = rest.split_at_mut(parts[2]);
        let (wb, yw) = (self.band_width(), WM * self.tw);
        let ustride = self.kpanels * CHUNK * self.mr;
        let vstride = ncb * CHUNK * WL;
        let (mut j, mut first) = (0, true);
        for t in t0..t1 {
            let (band, tx) = (t / self.tw, t % self.tw);
            let (n, ty) = (band / self.th, band % self.th);
            if tx == 0 || t == t0 {
                self.stage_input(x, (n, ty), 0..ncb, xb);
                self.stage_grad(gy, (n, ty), yb);
            }
            for kb in 0..self.kbs {
                let h: [Lanes<T>; WM * WM] = std::array::from_fn(|e| {
                    yb[((kb * WM + e / WM) * yw + WM * tx + e % WM) * WL..][..WL]
                        .try_into()
                        .expect("WL lanes")
                });
                if self.mr == WL {
                    (self.ks.wino_grad)(&h, &mut u[(kb * CHUNK + j) * WL..], ustride);
                } else {
                    self.grad_to_panels(&h, kb, j, u);
                }
            }
            for cb in 0..ncb {
                let d: [Lanes<T>; WX] = std::array::from_fn(|e| {
                    xb[((cb * WA + e / WA) * wb + WM * tx + e % WA) * WL..][..WL]
                        .try_into()
                        .expect("WL lanes")
                });
                (self.ks.wino.0)(&d, &mut v[(cb * CHUNK + j) * WL..], vstride);
            }
            j += 1;
            if j == CHUNK {
                self.gemms(j, first, ncb, u, v, m);
                (j, first) = (0, false);
            }
        }
        if j > 0 || first {
            self.gemms(j, first, ncb, u, v, m);
        }
    }

    /// The gradient transform of block `kb`'s tile `h` into tile slot `j` of `H` where the
    /// tile rows (`mr`) are not [`WL`]: through a lane array, lane by lane into the panels.
    fn grad_to_panels(&self, h: &[Lanes<T>; WM * WM], kb: usize, j: usize, u: &mut [T]) {
        let mut tmp = [T::ZERO; WX * WL];
        (self.ks.wino_grad)(h, &mut tmp, WL);
        for l in 0..WL.min(self.k - kb * WL) {
            let k = kb * WL + l;
            let (kp, i) = (k / self.mr, k % self.mr);
            for xi in 0..WX {
                u[((xi * self.kpanels + kp) * CHUNK + j) * self.mr + i] = tmp[xi * WL + l];
            }
        }
    }

    /// `M_ξ (+)= H_ξ · V_ξ` over the first `nt` tile slots (`first`: start from zero).
    fn gemms(&self, nt: usize, first: bool, ncb: usize, u: &[T], v: &[T], m: &mut [T]) {
        let (mr, ct) = (self.mr, ncb * WL);
        let kpad = self.kpanels * mr;
        for xi in 0..WX {
            let vx = &v[xi * ncb * CHUNK * WL..];
            for kp in 0..self.kpanels {
                let a = &u[(xi * self.kpanels + kp) * CHUNK * mr..][..nt.max(1) * mr];
                let rows = scratch_rows(&mut m[(xi * kpad + kp * mr) * ct..], mr, ct);
                let mut dst =
                    TileDst { rows, accumulate: !first, bias: None, live: mr.min(self.k - kp * mr) };
                (self.ks.gemm)(nt, a, vx, (ncb, CHUNK * WL), &mut dst);
            }
        }
    }

    /// Stage input rows `4·ty − pad_top ..` (6 of them) of sample `n` for channel blocks
    /// `cbs` as `[block][row][column][WL]`, columns from `−pad_left`: the padding value inside
    /// the padding, 0 past it (and in lanes past the last channel).
    fn stage_input(&self, x: &[T], (n, ty): (usize, usize), cbs: std::ops::Range<usize>, xb: &mut [T]) {
        let (h, w) = self.hw;
        let (pt, pl) = self.pad;
        let (xn, xc, xy, xx) = self.xs;
        let wb = self.band_width();
        let (hp, wp) = (h + pt + self.pad_end.0, w + pl + self.pad_end.1);
        let outside = |yy: usize, xi: usize| if yy < hp && xi < wp { self.padv } else { T::ZERO };
        for (cb, blk) in cbs.clone().zip(xb.chunks_exact_mut(WA * wb * WL)) {
            let live = WL.min(self.c - cb * WL);
            for (r, row) in blk.chunks_exact_mut(wb * WL).enumerate() {
                let yy = WM * ty + r; // row in the padded input
                let inside_row = yy >= pt && yy - pt < h;
                if inside_row && live == WL && xx == 1 {
                    // Channels-first, a whole block: WL runs of `w` transposed into lanes.
                    let base = n * xn + (yy - pt) * xy + cb * WL * xc;
                    let rows: [usize; WL] = std::array::from_fn(|l| base + l * xc);
                    (self.ks.transpose_panel)(x, &rows, w, &mut row[pl * WL..][..w * WL]);
                    for xi in (0..pl).chain(pl + w..wb) {
                        row[xi * WL..][..WL].fill(outside(yy, xi));
                    }
                    continue;
                }
                for xi in 0..wb {
                    let lanes = &mut row[xi * WL..][..WL];
                    if inside_row && xi >= pl && xi - pl < w {
                        let at = n * xn + (yy - pt) * xy + (xi - pl) * xx + cb * WL * xc;
                        for (l, v) in lanes[..live].iter_mut().enumerate() {
                            *v = x[at + l * xc];
                        }
                        lanes[live..].fill(T::ZERO);
                    } else {
                        lanes[..live].fill(outside(yy, xi));
                        lanes[live..].fill(T::ZERO);
                    }
                }
            }
        }
    }

    /// Stage gradient rows `4·ty ..` (4 of them) of sample `n`, every channel block, as
    /// `[block][row][column][WL]`: 0 past the output (and in lanes past the last channel).
    fn stage_grad(&self, gy: &[T], (n, ty): (usize, usize), yb: &mut [T]) {
        let (oh, ow) = self.ohw;
        let (yn, yc, yy_s, yx) = self.ys;
        let yw = WM * self.tw;
        for (kb, blk) in yb.chunks_exact_mut(WM * yw * WL).enumerate() {
            let live = WL.min(self.k - kb * WL);
            for (i, row) in blk.chunks_exact_mut(yw * WL).enumerate() {
                let oy = WM * ty + i;
                if oy >= oh {
                    row.fill(T::ZERO);
                    continue;
                }
                let base = n * yn + oy * yy_s + kb * WL * yc;
                if live == WL && yx == 1 {
                    let rows: [usize; WL] = std::array::from_fn(|l| base + l * yc);
                    (self.ks.transpose_panel)(gy, &rows, ow, &mut row[..ow * WL]);
                } else {
                    for (ox, lanes) in row.chunks_exact_mut(WL).take(ow).enumerate() {
                        for (l, v) in lanes[..live].iter_mut().enumerate() {
                            *v = gy[base + ox * yx + l * yc];
                        }
                        lanes[live..].fill(T::ZERO);
                    }
                }
                row[ow * WL..].fill(T::ZERO);
            }
        }
    }
}
