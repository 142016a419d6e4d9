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
    y_strides: (usize, usize, usize),
    padv: T,
}

/// A unit of work that owns one contiguous range of the output.
#[derive(Clone, Copy)]
struct Job {
    n: usize,
    groups: (usize, usize),
    kpanels: (usize, usize),
    ppanels: (usize, usize),
    origin: usize,
    len: usize,
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
        let (yn, yc, ysp) = data_strides(p.layout, p.out_channels, &out_sp);
        let yp = if p.layout == Layout::Nchw { 1 } else { p.out_channels };
        debug_assert!(ysp.last().is_none_or(|&s| s == yp));
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
            y_strides: (yn, yc, yp),
            padv: T::from_f64(pad_value(p.padding_mode)),
            p: p.clone(),
        }
    }

    /// Split the output into `threads` × (batch, group) contiguous jobs, in output order, the
    /// job's part number being the thread that runs it.
    fn jobs(&self, threads: usize) -> Vec<(usize, Job)> {
        let (yn, yc, yp) = self.y_strides;
        let ppanels = self.outs.div_ceil(NR);
        let split = |n: usize, part: usize| (n * part / threads, n * (part + 1) / threads);
        let mut jobs = Vec::new();
        for n in 0..self.p.batch {
            match self.p.layout {
                Layout::Nchw => {
                    for g in 0..self.p.groups {
                        for part in 0..threads {
                            let (k0, k1) = split(self.kpanels, part);
                            if k0 == k1 {
                                continue;
                            }
                            let first = g * self.kg + k0 * MR;
                            let last = g * self.kg + (k1 * MR).min(self.kg);
                            jobs.push((
                                part,
                                Job {
                                    n,
                                    groups: (g, g + 1),
                                    kpanels: (k0, k1),
                                    ppanels: (0, ppanels),
                                    origin: n * yn + first * yc,
                                    len: (last - first) * yc,
                                },
                            ));
                        }
                    }
                }
                Layout::Nhwc => {
                    for part in 0..threads {
                        let (p0, p1) = split(ppanels, part);
                        if p0 == p1 {
                            continue;
                        }
                        let (first, last) = (p0 * NR, (p1 * NR).min(self.outs));
                        jobs.push((
                            part,
                            Job {
                                n,
                                groups: (0, self.p.groups),
                                kpanels: (0, self.kpanels),
                                ppanels: (p0, p1),
                                origin: n * yn + first * yp,
                                len: (last - first) * yp,
                            },
                        ));
                    }
                }
            }
        }
        jobs
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

    fn run_job(&self, x: &[T], bias: Option<&[T]>, job: &Job, out: &mut [T], ws: &mut [T]) {
        let (yn, yc, yp) = self.y_strides;
        let (b, rest) = ws.split_at_mut(self.cr * NR);
        let ctiles = &mut rest[..self.kpanels * MR * NR];
        for g in job.groups.0..job.groups.1 {
            for pp in job.ppanels.0..job.ppanels.1 {
                self.pack_panel(x, job.n, g, pp, b);
                let mut r0 = 0;
                while r0 < self.cr {
                    let kc = KC.min(self.cr - r0);
                    for kp in job.kpanels.0..job.kpanels.1 {
                        let a = &self.packed[((g * self.kpanels + kp) * self.cr + r0) * MR..][..kc * MR];
                        let c: &mut [T; MR * NR] = (&mut ctiles[kp * MR * NR..][..MR * NR])
                            .try_into()
                            .expect("tile slice has MR·NR elements");
                        (self.tile)(kc, a, &b[r0 * NR..][..kc * NR], c, r0 > 0);
                    }
                    r0 += kc;
                }
                let cols = NR.min(self.outs - pp * NR);
                for kp in job.kpanels.0..job.kpanels.1 {
                    let c = &ctiles[kp * MR * NR..][..MR * NR];
                    for i in 0..MR.min(self.kg - kp * MR) {
                        let k = g * self.kg + kp * MR + i;
                        let bv = bias.map_or(T::ZERO, |b| b[k]);
                        let row = job.n * yn + k * yc + pp * NR * yp - job.origin;
                        let src = &c[i * NR..][..cols];
                        if yp == 1 {
                            for (dst, &v) in out[row..row + cols].iter_mut().zip(src) {
                                *dst = v + bv;
                            }
                        } else {
                            for (j, &v) in src.iter().enumerate() {
                                out[row + j * yp] = v + bv;
                            }
                        }
                    }
                }
            }
        }
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
        // Hand every job its own slice of the output (jobs come in output order, disjoint).
        let mut lists: Vec<Vec<(Job, &mut [T])>> = (0..threads).map(|_| Vec::new()).collect();
        let mut rest = &mut y[..];
        let mut at = 0;
        for (part, job) in self.jobs(threads) {
            let tail = std::mem::take(&mut rest);
            let (_, tail) = tail.split_at_mut(job.origin - at);
            let (mine, tail) = tail.split_at_mut(job.len);
            rest = tail;
            at = job.origin + job.len;
            lists[part].push((job, mine));
        }
        let work = |(list, ws): (Vec<(Job, &mut [T])>, &mut [T])| {
            for (job, out) in list {
                self.run_job(x, bias, &job, out, ws);
            }
        };
        let pairs: Vec<_> = lists.into_iter().zip(ws.chunks_mut(per.max(1))).collect();
        if threads == 1 {
            pairs.into_iter().for_each(work);
        } else {
            pairs.into_par_iter().for_each(work);
        }
    }
}
