//! `fused-winograd-1d`: 1-D convolutions whose kernel is twice a stride of 2 or more
//! (wav2vec's first layer: 10 taps at stride 5), by Winograd F(2, 2) over the stride's
//! phases, the products summed in registers.
//!
//! Output `o` reads the padded inputs `s·o .. s·o + 2s`. Split the input of channel `c` into
//! its `s` phases `X_{c,φ}[i] = x[c][s·i + φ]`: tap `φ + s·m` reads `X_{c,φ}[o + m]`, so the
//! convolution is a 2-tap, stride-1 one over `C·s` phase rows ("phase channels") with the
//! kernels `g = (w[φ], w[φ + s])`. F(2, 2) computes two neighbouring outputs from the
//! inputs `d0, d1, d2` with three products instead of four:
//! `y0 = g0·(d0 − d1) + (g0 + g1)·d1` and `y1 = (g0 + g1)·d1 + g1·(d2 − d1)`.
//! The inputs are transformed once per sample (`V`, three rows per phase channel), the
//! weights once per plan (`U`); a kernel ([`crate::kernels::winograd::Wino1F2Fn`]) sums the
//! three products of 8 output channels × 16 tiles over every phase channel in 24
//! accumulators (AVX-512; AVX2 2 channels in 12), adds them into the even and odd outputs,
//! interleaves and stores them: 1.5 multiply-adds per output and phase channel instead of 2,
//! and no product matrix in memory.
//!
//! It pays where the reduction is short, so that `gemm-tiled`'s tiles spend much of their time
//! storing (10 multiply-adds per output at wav2vec's first layer), and `winograd-1d`'s
//! F(4, 2), which writes its products to memory, loses to its transforms (it needs 128
//! channels). It stays ahead of `gemm-tiled` at strides of 2 and more up to [`MAX_PHASES`]
//! phase channels; stride 1 is left to the others (see there).
//!
//! The price is accuracy, as for every Winograd path: each output differs from the exact sum
//! by a few roundings of `|g0 + g1|·|d1|`-sized terms and of the differences `d0 − d1`,
//! `d2 − d1` (tested against the reference in `tests/fused_winograd1d.rs`); an infinity among a
//! tile's inputs can make both its outputs NaN. The planner picks it unless exact results are
//! asked for. Levels without the kernel (the portable one: AVX2 and AVX-512 have one)
//! decline.

use super::grid::{split_cols, Part};
use super::ConvImpl;
use crate::geometry::pad_value;
use crate::kernels::winograd::{Wino1F2Fn, F2_ROWS, F2_U, F2_V, WL};
use crate::kernels::KernelSet;
use crate::scalar::Scalar;
use crate::shape::ConvProblem;
use crate::{Layout, PadMode};

/// Most phase channels (input channels × stride) the planner uses it for. Measured on Zen 4
/// (`avx512`, one thread, 2000–16000 outputs, 256 or 512 filters, against `gemm-tiled`):
/// stride 5 with 1 channel 1.2–1.3×, stride 2 with 8–256 channels 1.1–1.3× (512 phase
/// channels 1.33×). At `avx2` (the same Zen 4 capped): wav2vec 1.15–1.18× at one thread,
/// 1.25× at two.
///
/// Stride 1 (a 2-tap kernel) is left to the others: 64 channels measured 1.09×, but 96
/// 0.82–0.93× and 128 0.96× (where `winograd-1d`'s F(4, 2) takes over, 1.24×), and the 2-tap
/// stride-1 phases of transposed convolutions run better on `gemm-tiled`, whose tiles go
/// straight into the transposed output (kernel 4 at stride 2 over 64 channels: 0.85×).
pub const MAX_PHASES: usize = 512;

/// Outputs of one column panel: [`WL`] tiles of 2.
const PANEL: usize = 2 * WL;

/// The transformed inputs of one chunk of panels stay under this many bytes (L1).
const CHUNK_BYTES: usize = 16 << 10;

/// `Ok` for 1-D, one-group, channels-first convolutions of stride 2 or more whose kernel is
/// twice the stride, dilation 1, zero or constant padding, at most [`MAX_PHASES`] phase
/// channels and at least one panel of outputs, on a kernel set with the fused kernel.
pub fn supports<T>(p: &ConvProblem, ks: &KernelSet<T>) -> Result<(), String> {
    if ks.wino1_f2.is_none() {
        return Err(format!("no fused F(2, 2) kernel at level {}", ks.isa));
    }
    let [a] = p.axes[..] else {
        return Err(format!("{}-D, needs 1-D", p.axes.len()));
    };
    if a.stride < 2 || a.stride.checked_mul(2) != Some(a.kernel) || a.dilation != 1 {
        return Err("needs a stride of 2 or more, a kernel of twice the stride and dilation 1".into());
    }
    if p.groups != 1 || p.layout != Layout::Nchw {
        return Err("needs one group, channels-first".into());
    }
    if !matches!(p.padding_mode, PadMode::Zeros | PadMode::Constant(_)) {
        return Err(format!("padding mode {:?}, needs zeros or constant", p.padding_mode));
    }
    let phases = p.in_channels.saturating_mul(a.stride);
    if phases > MAX_PHASES {
        return Err(format!("{phases} phase channels (input channels × stride), more than {MAX_PHASES}"));
    }
    if a.output < PANEL {
        return Err(format!("fewer than {PANEL} outputs"));
    }
    Ok(())
}

/// One problem's transformed weights and geometry.
pub struct FusedWinograd1d<T> {
    p: ConvProblem,
    ks: KernelSet<T>,
    f2: Wino1F2Fn<T>,
    /// Stride, input and output channels, phase channels.
    s: usize,
    c: usize,
    k: usize,
    phases: usize,
    /// Input and output lengths, padding before and after.
    lin: usize,
    lout: usize,
    pad: (usize, usize),
    /// Column panels per sample, panels per chunk.
    panels: usize,
    chunk: usize,
    /// `U`: `[block of 8 output channels][phase channel][ξ][row]`, rows past `K` zero.
    packed: Vec<T>,
    padv: T,
}

impl<T: Scalar> FusedWinograd1d<T> {
    /// Transform and pack `w` (`(K, C, 2·stride)`) for kernel set `ks`.
    pub fn new(p: &ConvProblem, w: &[T], ks: KernelSet<T>) -> Self {
        let a = p.axes[0];
        let (s, c, k, taps) = (a.stride, p.in_channels, p.out_channels, a.kernel);
        let phases = c * s;
        let blocks = k.div_ceil(F2_ROWS);
        let mut packed = vec![T::ZERO; blocks * phases * F2_U];
        for ko in 0..k {
            let (kb, i) = (ko / F2_ROWS, ko % F2_ROWS);
            for ci in 0..c {
                // True convolution reverses the taps.
                let tap = |j: usize| w[(ko * c + ci) * taps + if p.flip { taps - 1 - j } else { j }];
                for ph in 0..s {
                    let (g0, g1) = (tap(ph), tap(ph + s));
                    let u = &mut packed[(kb * phases + ci * s + ph) * F2_U..][..F2_U];
                    u[i] = g0;
                    u[F2_ROWS + i] = T::from_f64(g0.to_f64() + g1.to_f64());
                    u[2 * F2_ROWS + i] = g1;
                }
            }
        }
        let panels = a.output.div_ceil(PANEL);
        let chunk = (CHUNK_BYTES / (phases * F2_V * std::mem::size_of::<T>())).clamp(1, panels);
        FusedWinograd1d {
            f2: ks.wino1_f2.expect("checked in supports"),
            ks,
            s,
            c,
            k,
            phases,
            lin: a.input,
            lout: a.output,
            pad: (a.pad_begin, a.pad_end),
            panels,
            chunk,
            packed,
            padv: T::from_f64(pad_value(p.padding_mode)),
            p: p.clone(),
        }
    }

    fn v_len(&self) -> usize {
        self.chunk * self.phases * F2_V
    }

    fn per_thread(&self) -> usize {
        self.v_len() + F2_ROWS * PANEL
    }

    /// `V` of panels `pp .. pp + np` of one sample (`x`: its `C × lin` input):
    /// `v[((j·phases + c·s + φ)·3 + ξ)·WL + l]` for tile `t = (pp + j)·WL + l` with
    /// `d_m = X_{c,φ}[2t + m]`: `(d0 − d1, d1, d2 − d1)`.
    fn transform_inputs(&self, x: &[T], pp: usize, np: usize, v: &mut [T]) {
        let (s, lin, pb) = (self.s, self.lin, self.pad.0);
        // Positions outside the padded input are read only by outputs past the end: zero.
        let (lo, hi) = (-(pb as isize), (lin + self.pad.1) as isize);
        let at = |xr: &[T], pos: isize| {
            if pos >= 0 && (pos as usize) < lin {
                xr[pos as usize]
            } else if pos >= lo && pos < hi {
                self.padv
            } else {
                T::ZERO
            }
        };
        for j in 0..np {
            let t0 = (pp + j) * WL;
            // The panel's first and one-past-last input positions (phase 0 and phase s − 1).
            let first = 2 * s * t0;
            let inside = first >= pb && first + 2 * s * WL + s - pb <= lin;
            for ci in 0..self.c {
                let xr = &x[ci * lin..][..lin];
                for ph in 0..s {
                    let out = &mut v[(j * self.phases + ci * s + ph) * F2_V..][..F2_V];
                    let (v0, rest) = out.split_at_mut(WL);
                    let (v1, v2) = rest.split_at_mut(WL);
                    if inside {
                        let row = &xr[first + ph - pb..][..2 * s * (WL - 1) + 2 * s + 1];
                        for l in 0..WL {
                            let (d0, d1, d2) = (row[2 * s * l], row[2 * s * l + s], row[2 * s * l + 2 * s]);
                            (v0[l], v1[l], v2[l]) = (d0 - d1, d1, d2 - d1);
                        }
                    } else {
                        for l in 0..WL {
                            let pos = ((2 * (t0 + l)) * s + ph) as isize - pb as isize;
                            let d = |m: isize| at(xr, pos + m * s as isize);
                            let (d0, d1, d2) = (d(0), d(1), d(2));
                            (v0[l], v1[l], v2[l]) = (d0 - d1, d1, d2 - d1);
                        }
                    }
                }
            }
        }
    }

    /// The outputs of panels `p0..p1` of one sample into `y` (its `K × lout` output, the part
    /// from column `PANEL·p0`).
    fn run(&self, x: &[T], bias: Option<&[T]>, (p0, p1): (usize, usize), y: &mut Part<'_, T>, ws: &mut [T]) {
        let (v, scratch) = ws.split_at_mut(self.v_len());
        let scratch = &mut scratch[..F2_ROWS * PANEL];
        let whole = self.lout / PANEL;
        let mut pp = p0;
        while pp < p1 {
            let np = self.chunk.min(p1 - pp);
            self.transform_inputs(x, pp, np, v);
            let full = whole.clamp(pp, pp + np) - pp;
            for kb in 0..self.k.div_ceil(F2_ROWS) {
                let k0 = kb * F2_ROWS;
                let live = F2_ROWS.min(self.k - k0);
                let u = &self.packed[kb * self.phases * F2_U..][..self.phases * F2_U];
                let b = bias.map(|b| &b[k0..k0 + live]);
                if full > 0 {
                    let mut rows = y.tile(live, (k0, live), ((pp - p0) * PANEL, full * PANEL), &mut []);
                    (self.f2)(self.phases, u, v, full, &mut rows[..live], b);
                }
                if full < np {
                    // The last panel, partial: through the scratch rows.
                    let mut it = scratch.chunks_exact_mut(PANEL);
                    let mut rows: [&mut [T]; F2_ROWS] =
                        std::array::from_fn(|_| it.next().unwrap_or_default());
                    (self.f2)(self.phases, u, &v[full * self.phases * F2_V..], 1, &mut rows[..live], b);
                    let (col, first) = ((pp + full - p0) * PANEL, (pp + full) * PANEL);
                    for (i, r) in rows[..live].iter().enumerate() {
                        y.row(k0 + i)[col..][..self.lout - first].copy_from_slice(&r[..self.lout - first]);
                    }
                }
            }
            pp += np;
        }
    }
}

impl<T: Scalar> ConvImpl<T> for FusedWinograd1d<T> {
    fn name(&self) -> String {
        self.ks.name("fused-winograd-1d")
    }

    fn workspace(&self, threads: usize) -> usize {
        self.per_thread() * threads.max(1)
    }

    fn execute(&self, x: &[T], bias: Option<&[T]>, y: &mut [T], ws: &mut [T], threads: usize) {
        let (xn, yn) = (self.c * self.lin, self.k * self.lout);
        let threads = threads.clamp(1, self.panels);
        let per = self.per_thread();
        let first = |t: usize| self.panels * t / threads;
        let cut = |t: usize| (first(t) * PANEL).min(self.lout);
        for n in 0..self.p.batch {
            let (x, y) = (&x[n * xn..][..xn], &mut y[n * yn..][..yn]);
            split_cols(y, (self.k, self.lout), ws, per, threads, &cut, &|t, mut part, w| {
                self.run(x, bias, (first(t), first(t + 1)), &mut part, w)
            });
        }
    }
}
