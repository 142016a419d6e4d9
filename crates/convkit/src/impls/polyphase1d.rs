//! `polyphase-winograd-1d`: 1-D convolutions of 3 taps at stride 2 split by the parity of the
//! inputs they read, so that two thirds of the work runs on Winograd F(4, 2).
//!
//! Output `o` reads the padded inputs `2o − p, 2o + 1 − p, 2o + 2 − p` (`p` the padding
//! before). Taps 0 and 2 read `E[j] = x[2j − p]` at `j = o` and `o + 1`; tap 1 reads
//! `O[j] = x[2j + 1 − p]` at `j = o`. So the convolution is the sum of two stride-1, unpadded
//! convolutions: `E` with the 2-tap kernel `[g0, g2]` on `winograd-1d` (5 multiplications per
//! 4 outputs instead of 8) and `O` with `[g1]` on `gemm-tiled` — 2.25 multiplications per
//! output and channel pair instead of 3. Each sample's two phases are copied out first (one
//! pass over the input); the odd part runs first and the even part's output transform adds
//! its result as it writes (`(even + bias) + odd`). Approximate like
//! `winograd-1d` (its part's error); the planner skips it where exact results are asked for.

use super::gemm_tiled::GemmTiled;
use super::winograd1d::{self, Winograd1d};
use super::{split_join, ConvImpl};
use crate::desc::ConvDesc;
use crate::geometry::pad_value;
use crate::kernels::KernelSet;
use crate::scalar::Scalar;
use crate::shape::ConvProblem;
use crate::tensor::line_round;
use crate::{Layout, PadMode};

/// `Ok` for 1-D, one-group, channels-first convolutions of 3 taps, stride 2 and dilation 1,
/// zero or constant padding, whose 2-tap part `winograd-1d` takes (at least
/// [`winograd1d::MIN_CHANNELS_2TAP`] channels, 4 outputs).
pub fn supports<T>(p: &ConvProblem, ks: &KernelSet<T>) -> Result<(), String> {
    if p.axes.len() != 1 || p.groups != 1 || p.layout != Layout::Nchw {
        return Err("needs 1-D, one group, channels-first".into());
    }
    let a = p.axes[0];
    if a.kernel != 3 || a.stride != 2 || a.dilation != 1 {
        return Err("needs 3 taps, stride 2 and dilation 1".into());
    }
    if !matches!(p.padding_mode, PadMode::Zeros | PadMode::Constant(_)) {
        return Err(format!("padding mode {:?}, needs zeros or constant", p.padding_mode));
    }
    let (even, _) = part_problem(p, 2)?;
    winograd1d::supports(&even, ks).map_err(|why| format!("its 2-tap part: {why}"))
}

/// The stride-1 problem of the part with `taps` taps (2: the even phase, `lout + 1` long; 1:
/// the odd one, `lout` long) and its phase length.
fn part_problem(p: &ConvProblem, taps: usize) -> Result<(ConvProblem, usize), String> {
    let len = p.axes[0].output + taps - 1;
    let q =
        ConvProblem::new(&ConvDesc::new(), &[1, p.in_channels, len], &[p.out_channels, p.in_channels, taps])
            .map_err(|e| e.to_string())?;
    Ok((q, len))
}

/// The two parts of one problem.
pub struct Polyphase1d<T> {
    p: ConvProblem,
    ks: KernelSet<T>,
    even: Winograd1d<T>,
    odd: GemmTiled<T>,
    /// Phase lengths (even, odd).
    lens: (usize, usize),
    padv: T,
}

impl<T: Scalar> Polyphase1d<T> {
    /// Split `w` (`(K, C, 3)`) into the two parts' kernels and pack them.
    pub fn new(p: &ConvProblem, w: &[T], ks: KernelSet<T>) -> Self {
        let (k, c) = (p.out_channels, p.in_channels);
        // True convolution reverses the kernel.
        let tap = |kc: usize, t: usize| w[kc * 3 + if p.flip { 2 - t } else { t }];
        let we: Vec<T> = (0..k * c).flat_map(|kc| [tap(kc, 0), tap(kc, 2)]).collect();
        let wo: Vec<T> = (0..k * c).map(|kc| tap(kc, 1)).collect();
        let (pe, le) = part_problem(p, 2).expect("checked in supports");
        let (po, lo) = part_problem(p, 1).expect("checked in supports");
        Polyphase1d {
            even: Winograd1d::new(&pe, &we, ks),
            odd: GemmTiled::new(&po, &wo, ks),
            lens: (le, lo),
            padv: T::from_f64(pad_value(p.padding_mode)),
            ks,
            p: p.clone(),
        }
    }

    fn phases_len(&self) -> (usize, usize) {
        let c = self.p.in_channels;
        (line_round::<T>(c * self.lens.0), line_round::<T>(c * self.lens.1))
    }

    fn out_len(&self) -> usize {
        line_round::<T>(self.p.out_channels * self.p.axes[0].output)
    }

    fn inner(&self, threads: usize) -> usize {
        line_round::<T>(self.even.workspace(threads).max(self.odd.workspace(threads)))
    }

    /// Copy both phases of sample `n` (every channel, split over `threads`): `even[j] =
    /// x[2j − p]`, `odd[j] = x[2j + 1 − p]`, positions outside the input the padding value.
    fn extract(&self, x: &[T], n: usize, (even, odd): (&mut [T], &mut [T]), threads: usize) {
        let (c, l, pad) = (self.p.in_channels, self.p.axes[0].input, self.p.axes[0].pad_begin);
        let (le, lo) = self.lens;
        let xn = &x[n * c * l..][..c * l];
        for (dst, len, off) in [(even, le, 0usize), (odd, lo, 1)] {
            let cut = |t: usize| c * t / threads * len;
            split_join(&mut dst[..c * len], &mut [], 0, threads, &cut, &|t, part, _| {
                let c0 = c * t / threads;
                // Positions j0.. read the input from i0 = 2·j0 + off − pad on, every other one.
                let j0 = pad.saturating_sub(off).div_ceil(2).min(len);
                let i0 = (2 * j0 + off).saturating_sub(pad);
                for (ci, row) in part.chunks_exact_mut(len).enumerate() {
                    let xr = &xn[(c0 + ci) * l..][..l];
                    row[..j0].fill(self.padv);
                    let src = xr.get(i0..).unwrap_or(&[]);
                    let n = src.len().div_ceil(2).min(len - j0);
                    let pairs = n.min(src.len() / 2);
                    for (v, pair) in row[j0..j0 + pairs].iter_mut().zip(src.chunks_exact(2)) {
                        *v = pair[0];
                    }
                    if pairs < n {
                        row[j0 + pairs] = src[2 * pairs];
                    }
                    row[j0 + n..].fill(self.padv);
                }
            });
        }
    }
}

impl<T: Scalar> ConvImpl<T> for Polyphase1d<T> {
    fn name(&self) -> String {
        self.ks.name("polyphase-winograd-1d")
    }

    fn workspace(&self, threads: usize) -> usize {
        let (e, o) = self.phases_len();
        e + o + self.out_len() + self.inner(threads.max(1))
    }

    fn execute(&self, x: &[T], bias: Option<&[T]>, y: &mut [T], ws: &mut [T], threads: usize) {
        let threads = threads.max(1);
        let yn = self.p.out_channels * self.p.axes[0].output;
        let (le, lo) = self.phases_len();
        let (even, r) = ws.split_at_mut(le);
        let (odd, r) = r.split_at_mut(lo);
        let (t1, r) = r.split_at_mut(self.out_len());
        let inner = &mut r[..self.inner(threads)];
        let c = self.p.in_channels;
        for n in 0..self.p.batch {
            self.extract(x, n, (&mut *even, &mut *odd), threads);
            let yv = &mut y[n * yn..][..yn];
            // The odd part first, added by the even part's output transform as it writes.
            self.odd.execute(&odd[..c * self.lens.1], None, &mut t1[..yn], inner, threads);
            self.even.execute_plus(&even[..c * self.lens.0], (bias, Some(&t1[..yn])), yv, inner, threads);
        }
    }
}
