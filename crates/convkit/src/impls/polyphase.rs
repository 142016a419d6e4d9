//! `polyphase-winograd`: 2-D 3×3 stride-2 convolutions (padding 1 before on both axes, as in
//! ResNet's down-sampling layers) split by the parity of the input rows and columns they read,
//! so that the largest part runs on Winograd.
//!
//! Output `(i, j)` reads input rows `2i − 1, 2i, 2i + 1` and columns `2j − 1, 2j, 2j + 1`. The
//! odd input rows `O[i'] = x[2i' − 1]` (row `−1` is padding) and the even ones
//! `E[i'] = x[2i']` make four phase planes (rows × columns: `OO`, `OE`, `EO`, `EE`), and the
//! convolution is the sum of four stride-1, unpadded convolutions of them:
//!
//! - `OO` with the corner taps `[[g00, g02], [g20, g22]]`, a 2×2 kernel: Winograd F(4×4,
//!   2×2), 25 multiplications per 16 outputs instead of 64;
//! - `OE` with `[[g01], [g21]]` (2×1), `EO` with `[[g10, g12]]` (1×2), `EE` with `[[g11]]`:
//!   `gemm-tiled`.
//!
//! That is 6.6 multiplications per output and channel pair instead of 9. The planes are copied
//! out of each sample first (one pass over the input), and the four results are added in that
//! order. Approximate like any Winograd path (the `OO` part's error, see
//! [`super::winograd`]); the planner skips it where exact results are asked for.

use super::gemm_tiled::GemmTiled;
use super::winograd::{self, Winograd};
use super::{split_join, ConvImpl};
use crate::desc::ConvDesc;
use crate::geometry::pad_value;
use crate::kernels::KernelSet;
use crate::scalar::Scalar;
use crate::shape::ConvProblem;
use crate::tensor::line_round;
use crate::{Layout, PadMode};

/// `Ok` for 2-D, one-group, channels-first 3×3 convolutions of stride 2 and dilation 1 with
/// padding 1 before (any after) on both axes, zero or constant padding, whose 2×2 corner part
/// Winograd F(4×4, 2×2) takes (at least [`winograd::MIN_CHANNELS_2X2`] channels, outputs of
/// at least 4×4).
pub fn supports<T>(p: &ConvProblem, ks: &KernelSet<T>) -> Result<(), String> {
    if p.axes.len() != 2 || p.groups != 1 || p.layout != Layout::Nchw {
        return Err("needs 2-D, one group, channels-first".into());
    }
    if p.axes.iter().any(|a| a.kernel != 3 || a.stride != 2 || a.dilation != 1 || a.pad_begin != 1) {
        return Err("needs a 3×3 kernel, stride 2, dilation 1 and padding 1 before".into());
    }
    if !matches!(p.padding_mode, PadMode::Zeros | PadMode::Constant(_)) {
        return Err(format!("padding mode {:?}, needs zeros or constant", p.padding_mode));
    }
    let (oo, _) = part_problem(p, (1, 1), (2, 2))?;
    winograd::supports(&oo, ks).map_err(|why| format!("its 2×2 part: {why}"))
}

/// The stride-1 problem of the part reading rows and columns of parity `par` with a kernel
/// `kern` (2 taps for odd, 1 for even), and its plane shape.
fn part_problem(
    p: &ConvProblem,
    par: (usize, usize),
    kern: (usize, usize),
) -> Result<(ConvProblem, (usize, usize)), String> {
    let (ho, wo) = (p.axes[0].output, p.axes[1].output);
    let plane = (ho + par.0, wo + par.1);
    let q = ConvProblem::new(
        &ConvDesc::new(),
        &[1, p.in_channels, plane.0, plane.1],
        &[p.out_channels, p.in_channels, kern.0, kern.1],
    )
    .map_err(|e| e.to_string())?;
    Ok((q, plane))
}

/// The four parts of one problem.
pub struct Polyphase<T> {
    p: ConvProblem,
    ks: KernelSet<T>,
    /// The `OO` part on Winograd, the `OE`, `EO`, `EE` parts on `gemm-tiled`.
    oo: Winograd<T>,
    rest: [GemmTiled<T>; 3],
    /// Plane shape (rows, columns) of `OO`, `OE`, `EO`, `EE`.
    planes: [(usize, usize); 4],
    padv: T,
}

/// Row (or column) parity of each plane, in the order `OO`, `OE`, `EO`, `EE`: 1 odd, 0 even.
const PARITY: [(usize, usize); 4] = [(1, 1), (1, 0), (0, 1), (0, 0)];

impl<T: Scalar> Polyphase<T> {
    /// Split `w` (`(K, C, 3, 3)`) into the four parts' kernels and pack them.
    pub fn new(p: &ConvProblem, w: &[T], ks: KernelSet<T>) -> Self {
        let (k, c) = (p.out_channels, p.in_channels);
        // Taps of each part along one axis: odd rows take taps 0 and 2, even rows tap 1.
        let taps = |parity: usize| if parity == 1 { &[0usize, 2][..] } else { &[1usize][..] };
        let mut probs = Vec::with_capacity(4);
        let mut weights = Vec::with_capacity(4);
        let mut planes = [(0, 0); 4];
        for (i, &par) in PARITY.iter().enumerate() {
            let (ty, tx) = (taps(par.0), taps(par.1));
            let (q, plane) = part_problem(p, par, (ty.len(), tx.len())).expect("checked in supports");
            planes[i] = plane;
            let mut wp = Vec::with_capacity(k * c * ty.len() * tx.len());
            for kc in 0..k * c {
                for &a in ty {
                    for &b in tx {
                        // True convolution reverses the kernel.
                        let (a, b) = if p.flip { (2 - a, 2 - b) } else { (a, b) };
                        wp.push(w[kc * 9 + a * 3 + b]);
                    }
                }
            }
            probs.push(q);
            weights.push(wp);
        }
        let gemm = |i: usize| GemmTiled::new(&probs[i], &weights[i], ks);
        Polyphase {
            oo: Winograd::new(&probs[0], &weights[0], ks),
            rest: [gemm(1), gemm(2), gemm(3)],
            planes,
            padv: T::from_f64(pad_value(p.padding_mode)),
            ks,
            p: p.clone(),
        }
    }

    /// Elements of plane `i` (all channels) and of one sample's output, each rounded to whole
    /// cache lines.
    fn plane_len(&self, i: usize) -> usize {
        line_round::<T>(self.p.in_channels * self.planes[i].0 * self.planes[i].1)
    }

    fn out_len(&self) -> usize {
        line_round::<T>(self.p.out_channels * self.p.axes[0].output * self.p.axes[1].output)
    }

    /// Scratch for the parts' implementations (the largest).
    fn inner(&self, threads: usize) -> usize {
        let rest = self.rest.iter().map(|g| g.workspace(threads)).max().unwrap_or(0);
        line_round::<T>(self.oo.workspace(threads).max(rest))
    }

    /// Copy plane `i` of sample `n` (every channel, split over `threads`) into `dst`: plane
    /// row `r` is input row `2r − 1` (odd) or `2r` (even), likewise the columns; positions
    /// outside the input take the padding value.
    fn extract(&self, x: &[T], n: usize, i: usize, dst: &mut [T], threads: usize) {
        let (h, w) = (self.p.axes[0].input, self.p.axes[1].input);
        let (ph, pw) = self.planes[i];
        let (py, px) = PARITY[i];
        let (c, plane) = (self.p.in_channels, ph * pw);
        let cut = |t: usize| c * t / threads * plane;
        split_join(&mut dst[..c * plane], &mut [], 0, threads, &cut, &|t, part, _| {
            let c0 = c * t / threads;
            for (ci, chan) in part.chunks_exact_mut(plane).enumerate() {
                let xc = &x[(n * c + c0 + ci) * h * w..][..h * w];
                for (r, row) in chan.chunks_exact_mut(pw).enumerate() {
                    // Input row 2r − 1 or 2r, if inside.
                    let y = (2 * r + 1 - py).checked_sub(1).filter(|&y| y < h);
                    let Some(y) = y else {
                        row.fill(self.padv);
                        continue;
                    };
                    let src = &xc[y * w..][..w];
                    // Column s is input column 2s − 1 (odd: column 0 is padding) or 2s (even).
                    let (dst, src) = if px == 1 {
                        row[0] = self.padv;
                        (&mut row[1..], &src[1..])
                    } else {
                        (&mut row[..], src)
                    };
                    let pairs = dst.len().min(src.len() / 2);
                    for (v, pair) in dst[..pairs].iter_mut().zip(src.chunks_exact(2)) {
                        *v = pair[0];
                    }
                    let mut done = pairs;
                    if done < dst.len() && 2 * pairs < src.len() {
                        dst[done] = src[2 * pairs];
                        done += 1;
                    }
                    dst[done..].fill(self.padv);
                }
            }
        });
    }
}

impl<T: Scalar> ConvImpl<T> for Polyphase<T> {
    fn name(&self) -> String {
        self.ks.name("polyphase-winograd")
    }

    fn workspace(&self, threads: usize) -> usize {
        (0..4).map(|i| self.plane_len(i)).sum::<usize>() + 3 * self.out_len() + self.inner(threads.max(1))
    }

    fn execute(&self, x: &[T], bias: Option<&[T]>, y: &mut [T], ws: &mut [T], threads: usize) {
        let threads = threads.max(1);
        let yn = self.p.out_channels * self.p.axes[0].output * self.p.axes[1].output;
        let (p0, r) = ws.split_at_mut(self.plane_len(0));
        let (p1, r) = r.split_at_mut(self.plane_len(1));
        let (p2, r) = r.split_at_mut(self.plane_len(2));
        let (p3, r) = r.split_at_mut(self.plane_len(3));
        let (t1, r) = r.split_at_mut(self.out_len());
        let (t2, r) = r.split_at_mut(self.out_len());
        let (t3, r) = r.split_at_mut(self.out_len());
        let inner = &mut r[..self.inner(threads)];
        for n in 0..self.p.batch {
            for (i, plane) in [&mut *p0, &mut *p1, &mut *p2, &mut *p3].into_iter().enumerate() {
                self.extract(x, n, i, plane, threads);
            }
            let yv = &mut y[n * yn..][..yn];
            // Each plane's elements (without the cache-line rounding).
            let plen = |i: usize| self.p.in_channels * self.planes[i].0 * self.planes[i].1;
            self.oo.execute(&p0[..plen(0)], bias, yv, inner, threads);
            self.rest[0].execute(&p1[..plen(1)], None, &mut t1[..yn], inner, threads);
            self.rest[1].execute(&p2[..plen(2)], None, &mut t2[..yn], inner, threads);
            self.rest[2].execute(&p3[..plen(3)], None, &mut t3[..yn], inner, threads);
            let (t1, t2, t3) = (&t1[..yn], &t2[..yn], &t3[..yn]);
            let cut = |t: usize| yn * t / threads;
            split_join(yv, &mut [], 0, threads, &cut, &|t, part, _| {
                let o = cut(t);
                for (((v, &a), &b), &c) in part.iter_mut().zip(&t1[o..]).zip(&t2[o..]).zip(&t3[o..]) {
                    *v = ((*v + a) + b) + c;
                }
            });
        }
    }
}
