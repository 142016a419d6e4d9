//! `gemm-tiled`: convolution as a GEMM `Y[K, P] = W[K, C/g·taps] · X̂[C/g·taps, P]` per group,
//! where the patch matrix `X̂` is never materialised whole: one `NR`-column panel at a time is
//! gathered (padding modes, dilation, stride, flip and layout resolved through per-axis tap
//! tables) into a few kilobytes of workspace and multiplied at once by every packed weight
//! panel, blocked over the reduction so the panel stays in L1.

use super::ConvImpl;
use crate::isa::Isa;
use crate::kernels::{generic, GemmTile, MR, NR};
use crate::reference::{pad_value, tap_table, unravel};
use crate::scalar::Scalar;
use crate::shape::{data_strides, ConvProblem};
use crate::Layout;
use rayon::prelude::*;

/// Reduction block: a `KC × NR` slice of the patch panel is 16 KiB in f32.
const KC: usize = 256;

/// Most spatial axes this implementation handles (the planner declines more).
pub const MAX_RANK: usize = 8;

/// Tiled implicit-GEMM convolution for one problem, weights packed in `MR`-row panels.
pub struct GemmTiled<T> {
    p: ConvProblem,
    isa: Isa,
    tile: GemmTile<T>,
    cg: usize,
    kg: usize,
    taps: usize,
    cr: usize,
    kpanels: usize,
    /// `[group][k panel][cr][MR]`, rows past `kg` zero.
    packed: Vec<T>,
    tables: Vec<Vec<Option<usize>>>,
    kernel: Vec<usize>,
    out_sp: Vec<usize>,
    outs: usize,
    x_strides: (usize, usize, Vec<usize>),
    padv: T,
}

/// A unit of work: sample `n`, groups `groups`, column panels `ppanels`, and the part of the
/// output it owns.
struct Job<'a, T> {
    n: usize,
    groups: (usize, usize),
    ppanels: (usize, usize),
    out: Out<'a, T>,
}

/// The output a job writes. Channels-first: one slice per output channel of its group,
/// covering its columns. Channels-last: one block holding all channels of its columns.
enum Out<'a, T> {
    Rows { rows: Vec<&'a mut [T]>, k0: usize, p0: usize },
    Block { buf: &'a mut [T], p0: usize, channels: usize },
}

impl<T: Scalar> Out<'_, T> {
    /// Store `vals + bias` at channel `k`, columns `p..p + vals.len()`.
    fn put(&mut self, k: usize, p: usize, vals: &[T], bias: T) {
        match self {
            Out::Rows { rows, k0, p0 } => {
                for (d, &v) in rows[k - *k0][p - *p0..][..vals.len()].iter_mut().zip(vals) {
                    *d = v + bias;
                }
            }
            Out::Block { buf, p0, channels } => {
                for (j, &v) in vals.iter().enumerate() {
                    buf[(p - *p0 + j) * *channels + k] = v + bias;
                }
            }
        }
    }
}

impl<T: Scalar> GemmTiled<T> {
    /// Pack `w` (`(K, C/g, kernel…)`) for `isa`'s micro-kernel.
    pub fn new(p: &ConvProblem, w: &[T], isa: Isa) -> Self {
        let cg = p.in_channels / p.groups;
        let kg = p.out_channels / p.groups;
        let kernel = p.kernel();
        let taps: usize = kernel.iter().product();
        let cr = cg * taps;
        let kpanels = kg.div_ceil(MR);
        let mut packed = vec![T::ZERO; p.groups * kpanels * cr * MR];
        for g in 0..p.groups {
            for kp in 0..kpanels {
                let panel = &mut packed[(g * kpanels + kp) * cr * MR..][..cr * MR];
                for i in 0..MR.min(kg - kp * MR) {
                    let k = g * kg + kp * MR + i;
                    for r in 0..cr {
                        panel[r * MR + i] = w[k * cr + r];
                    }
                }
            }
        }
        let out_sp = p.output_spatial();
        GemmTiled {
            isa,
            tile: T::gemm_tile(isa).unwrap_or(generic::gemm_6x16::<T>),
            cg,
            kg,
            taps,
            cr,
            kpanels,
            packed,
            tables: p.axes.iter().map(|a| tap_table(a, p.flip, p.padding_mode)).collect(),
            kernel,
            outs: out_sp.iter().product(),
            out_sp,
            x_strides: data_strides(p.layout, p.in_channels, &p.input_spatial()),
            padv: T::from_f64(pad_value(p.padding_mode)),
            p: p.clone(),
        }
    }

    /// Gather patch-matrix columns `pp·NR ..` of group `g`, sample `n` into `b` (`[cr][NR]`).
    /// Columns past the output are zero.
    fn pack_panel(&self, x: &[T], n: usize, g: usize, pp: usize, b: &mut [T]) {
        let (xn, xc, ref xsp) = self.x_strides;
        let rank = self.kernel.len();
        let cols = NR.min(self.outs - pp * NR);
        let mut o = [[0usize; MAX_RANK]; NR];
        for (j, oj) in o.iter_mut().enumerate().take(cols) {
            unravel(pp * NR + j, &self.out_sp, &mut oj[..rank]);
        }
        let mut t = [0usize; MAX_RANK];
        let cbase = n * xn + g * self.cg * xc;
        const PAD: usize = usize::MAX;
        for tap in 0..self.taps {
            unravel(tap, &self.kernel, &mut t[..rank]);
            let mut offs = [PAD; NR];
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
            // One full run of consecutive input elements (stride 1, one output row, no padding)
            // is copied as a fixed-size block (inline vector moves); short runs are gathered
            // element by element, which beats a call to memmove per run.
            // A panel crossing an output row splits into two runs, copied as slices.
            let contiguous = cols == NR && offs[0] != PAD && (1..NR).all(|j| offs[j] == offs[0] + j);
            let split = (!contiguous && cols == NR)
                .then(|| {
                    let cut = (1..NR).find(|&j| offs[j] != offs[j - 1].wrapping_add(1))?;
                    let run = |a: usize, b: usize| {
                        offs[a] != PAD && (a + 1..b).all(|j| offs[j] == offs[a] + (j - a))
                    };
                    (cut >= 4 && NR - cut >= 4 && run(0, cut) && run(cut, NR)).then_some(cut)
                })
                .flatten();
            for ci in 0..self.cg {
                let row: &mut [T; NR] =
                    (&mut b[(ci * self.taps + tap) * NR..][..NR]).try_into().expect("NR elements");
                let base = cbase + ci * xc;
                if contiguous {
                    *row = x[base + offs[0]..][..NR].try_into().expect("NR elements");
                } else if let Some(cut) = split {
                    row[..cut].copy_from_slice(&x[base + offs[0]..][..cut]);
                    row[cut..].copy_from_slice(&x[base + offs[cut]..][..NR - cut]);
                } else {
                    for (dst, &off) in row.iter_mut().zip(&offs).take(cols) {
                        *dst = if off == PAD { self.padv } else { x[base + off] };
                    }
                }
            }
            for ci in 0..self.cg {
                for dst in &mut b[(ci * self.taps + tap) * NR + cols..][..NR - cols] {
                    *dst = T::ZERO;
                }
            }
        }
    }

    fn run_job(&self, x: &[T], bias: Option<&[T]>, job: &mut Job<'_, T>, ws: &mut [T]) {
        let (b, rest) = ws.split_at_mut(self.cr * NR);
        let ctiles = &mut rest[..self.kpanels * MR * NR];
        for g in job.groups.0..job.groups.1 {
            for pp in job.ppanels.0..job.ppanels.1 {
                self.pack_panel(x, job.n, g, pp, b);
                let mut r0 = 0;
                while r0 < self.cr {
                    let kc = KC.min(self.cr - r0);
                    for kp in 0..self.kpanels {
                        let a = &self.packed[((g * self.kpanels + kp) * self.cr + r0) * MR..][..kc * MR];
                        let c: &mut [T; MR * NR] = (&mut ctiles[kp * MR * NR..][..MR * NR])
                            .try_into()
                            .expect("tile slice has MR·NR elements");
                        (self.tile)(kc, a, &b[r0 * NR..][..kc * NR], c, r0 > 0);
                    }
                    r0 += kc;
                }
                let cols = NR.min(self.outs - pp * NR);
                for kp in 0..self.kpanels {
                    let c = &ctiles[kp * MR * NR..][..MR * NR];
                    for i in 0..MR.min(self.kg - kp * MR) {
                        let k = g * self.kg + kp * MR + i;
                        job.out.put(k, pp * NR, &c[i * NR..][..cols], bias.map_or(T::ZERO, |b| b[k]));
                    }
                }
            }
        }
    }

    /// Split the output into jobs: every (sample, group) — channels-last: every sample — cut
    /// into `threads` runs of column panels, run `t` going to thread `t`. Each job owns
    /// disjoint slices of `y`; the arithmetic per output does not depend on the split.
    fn jobs<'a>(&self, y: &'a mut [T], threads: usize) -> Vec<Vec<Job<'a, T>>> {
        let ppanels = self.outs.div_ceil(NR);
        let bound = |t: usize| (ppanels * t / threads) * NR;
        let cuts: Vec<usize> = (0..=threads).map(|t| bound(t).min(self.outs)).collect();
        let mut lists: Vec<Vec<Job<'a, T>>> = (0..threads).map(|_| Vec::new()).collect();
        let (channels, groups) = (self.p.out_channels, self.p.groups);
        match self.p.layout {
            Layout::Nchw => {
                for (n, sample) in y.chunks_mut(channels * self.outs).enumerate() {
                    for (g, group) in sample.chunks_mut(self.kg * self.outs).enumerate() {
                        let mut parts: Vec<Vec<&'a mut [T]>> = (0..threads).map(|_| Vec::new()).collect();
                        for row in group.chunks_mut(self.outs) {
                            let mut rest = row;
                            for t in 0..threads {
                                let (mine, tail) = rest.split_at_mut(cuts[t + 1] - cuts[t]);
                                parts[t].push(mine);
                                rest = tail;
                            }
                        }
                        for (t, rows) in parts.into_iter().enumerate() {
                            if cuts[t] < cuts[t + 1] {
                                lists[t].push(Job {
                                    n,
                                    groups: (g, g + 1),
                                    ppanels: (cuts[t] / NR, cuts[t + 1].div_ceil(NR)),
                                    out: Out::Rows { rows, k0: g * self.kg, p0: cuts[t] },
                                });
                            }
                        }
                    }
                }
            }
            Layout::Nhwc => {
                for (n, sample) in y.chunks_mut(channels * self.outs).enumerate() {
                    let mut rest = sample;
                    for t in 0..threads {
                        let (mine, tail) = rest.split_at_mut((cuts[t + 1] - cuts[t]) * channels);
                        rest = tail;
                        if cuts[t] < cuts[t + 1] {
                            lists[t].push(Job {
                                n,
                                groups: (0, groups),
                                ppanels: (cuts[t] / NR, cuts[t + 1].div_ceil(NR)),
                                out: Out::Block { buf: mine, p0: cuts[t], channels },
                            });
                        }
                    }
                }
            }
        }
        lists
    }
}

impl<T: Scalar> ConvImpl<T> for GemmTiled<T> {
    fn name(&self) -> String {
        format!("gemm-tiled:{}", self.isa)
    }

    fn workspace_per_thread(&self) -> usize {
        self.cr * NR + self.kpanels * MR * NR
    }

    fn execute(&self, x: &[T], bias: Option<&[T]>, y: &mut [T], ws: &mut [T], threads: usize) {
        let per = self.workspace_per_thread();
        let threads = threads.max(1);
        let work = |(list, ws): (Vec<Job<'_, T>>, &mut [T])| {
            for mut job in list {
                self.run_job(x, bias, &mut job, ws);
            }
        };
        let pairs: Vec<_> = self.jobs(y, threads).into_iter().zip(ws.chunks_mut(per.max(1))).collect();
        if threads == 1 {
            pairs.into_iter().for_each(work);
        } else {
            pairs.into_par_iter().for_each(work);
        }
    }
}
