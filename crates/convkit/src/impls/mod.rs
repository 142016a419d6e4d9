//! Convolution implementations behind [`crate::plan::ConvPlan`], in the order the planner
//! tries them (reference last). Each says whether it supports a problem and, if not, why.

pub mod depthwise;
pub mod fft;
pub mod fused_winograd1d;
pub mod gemm_tiled;
pub mod grad_weight;
pub mod grad_weight_winograd;
pub(crate) mod grid;
pub mod grouped;
pub mod pointwise;
pub mod polyphase;
pub mod polyphase1d;
pub mod pool;
pub mod reference;
pub mod staging;
mod team;
pub mod winograd;
pub mod winograd1d;

use crate::isa::{Isa, LEVELS};
use crate::kernels::{impl_name, kernel_set, KernelSet};
use crate::scalar::Scalar;
use crate::shape::ConvProblem;

/// A convolution implementation prepared for one problem (weights packed).
pub trait ConvImpl<T: Scalar>: Send + Sync {
    /// Name like `gemm-tiled:avx2`.
    fn name(&self) -> String;
    /// Scratch elements `threads` workers need.
    fn workspace(&self, threads: usize) -> usize;
    /// Compute `y = conv(x) + bias` with `threads` workers in `ws` (at least
    /// `workspace(threads)` elements). Results do not depend on `threads`.
    fn execute(&self, x: &[T], bias: Option<&[T]>, y: &mut [T], ws: &mut [T], threads: usize);
    /// Whether [`ConvImpl::execute_ilv`] runs with places in runs of `run` rows (every
    /// tile's first row and row count then a multiple of `run`).
    fn has_ilv(&self, run: usize) -> bool {
        let _ = run;
        false
    }
    /// Channels-first, no bias: [`ConvImpl::execute`] into `held` (at least the results not
    /// sent on), each tile of the last reduction block also stored into `y` as soon as it is
    /// final, by the kernel set's [`crate::kernels::GemmIlvFn`] at the place
    /// `place((n, k0, rows), (h, lanes), &mut place)` fills in (sample `n`, output channels
    /// `k0 .. k0 + rows`, positions `h .. h + lanes` flattened over the spatial axes). A
    /// transposed convolution's phases go to their outputs this way, with no pass over the
    /// whole result afterwards. With several `threads` the output channels are split between
    /// them where `cut(n, k)` says where in `y` the outputs of sample `n`'s channels `k..`
    /// begin (`None` where channels on both sides of `k` share outputs: then one thread runs).
    /// Panics where [`ConvImpl::has_ilv`] is false.
    #[allow(clippy::too_many_arguments)]
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
        let _ = (x, held, y, ws, threads, place, cut);
        panic!("{} does not store tiles interleaved", self.name());
    }
}

/// See [`ConvImpl::execute_ilv`].
pub type IlvPlaceFn<'a, T> =
    dyn Fn((usize, usize, usize), (usize, usize), &mut crate::kernels::IlvPlace<T>) + Sync + 'a;

/// See [`ConvImpl::execute_ilv`]: `cut(n, k)`.
pub type IlvCutFn<'a> = dyn Fn(usize, usize) -> Option<usize> + Sync + 'a;

/// Packs the weights for one problem with one kernel set.
pub type Builder<T> = fn(&ConvProblem, &[T], KernelSet<T>) -> Box<dyn ConvImpl<T>>;

/// An implementation family: the algorithm, which runs on any kernel set it accepts.
struct Family<T: Scalar> {
    name: &'static str,
    /// `Ok` if the family handles the problem with this kernel set, else why not.
    supports: fn(&ConvProblem, &KernelSet<T>) -> Result<(), String>,
    build: Builder<T>,
    exact: bool,
}

/// An entry of the ordered list: one family on one ISA level.
pub struct Candidate<T: Scalar> {
    /// Name as users force it (`gemm-tiled:avx2`).
    pub name: String,
    /// The ISA level whose kernel set it runs on.
    pub isa: Isa,
    family: fn(&ConvProblem, &KernelSet<T>) -> Result<(), String>,
    build: Builder<T>,
    /// Exact algorithm: the same sums as the reference, only in another order (integer-valued
    /// data agree bit for bit). `false` for Winograd, whose transforms round differently.
    pub exact: bool,
}

impl<T: Scalar> Candidate<T> {
    /// `Ok` if this candidate handles `p` with the ISA capped at `cap` on this CPU, else why not.
    pub fn supports(&self, p: &ConvProblem, cap: Isa) -> Result<(), String> {
        if self.isa > cap {
            return Err(format!("ISA capped at {cap}"));
        }
        let set = kernel_set::<T>(self.isa)
            .ok_or_else(|| format!("no {} kernels for {} on this CPU", self.isa, T::NAME))?;
        (self.family)(p, &set)
    }

    /// Pack the weights and build (after [`Candidate::supports`] said yes).
    pub fn build(&self, p: &ConvProblem, w: &[T]) -> Box<dyn ConvImpl<T>> {
        let set = kernel_set::<T>(self.isa).expect("a supported candidate has its kernel set");
        (self.build)(p, w, set)
    }
}

/// The implementation families, fastest first; each is tried at every ISA level, highest
/// first, before the next family.
fn families<T: Scalar>() -> Vec<Family<T>> {
    vec![
        Family { name: "fft", supports: fft::supports, build: fft::build, exact: false },
        Family {
            name: "dw-direct",
            supports: |p, _| depthwise::supports(p),
            build: |p, w, set| Box::new(depthwise::Depthwise::new(p, w, set)),
            exact: true,
        },
        Family {
            name: "winograd",
            supports: winograd::supports,
            build: |p, w, set| Box::new(winograd::Winograd::new(p, w, set)),
            exact: false,
        },
        Family {
            name: "winograd-1d",
            supports: winograd1d::supports,
            build: |p, w, set| Box::new(winograd1d::Winograd1d::new(p, w, set)),
            exact: false,
        },
        Family {
            name: "polyphase-winograd",
            supports: polyphase::supports,
            build: |p, w, set| Box::new(polyphase::Polyphase::new(p, w, set)),
            exact: false,
        },
        Family {
            name: "polyphase-winograd-1d",
            supports: polyphase1d::supports,
            build: |p, w, set| Box::new(polyphase1d::Polyphase1d::new(p, w, set)),
            exact: false,
        },
        Family {
            name: "fused-winograd-1d",
            supports: fused_winograd1d::supports,
            build: |p, w, set| Box::new(fused_winograd1d::FusedWinograd1d::new(p, w, set)),
            exact: false,
        },
        Family {
            name: "pointwise",
            supports: |p, set| pointwise::supports(p, set.geometry.nr),
            build: |p, w, set| Box::new(pointwise::Pointwise::new(p, w, set)),
            exact: true,
        },
        Family {
            name: "grouped-direct",
            supports: grouped::supports,
            build: |p, w, set| Box::new(grouped::Grouped::new(p, w, set)),
            exact: true,
        },
        Family {
            name: "gemm-tiled",
            supports: |p, set| {
                rank_fits(p)?;
                small_groups_fit(p, set)
            },
            build: |p, w, set| Box::new(gemm_tiled::GemmTiled::new(p, w, set)),
            exact: true,
        },
    ]
}

/// The ordered list of implementations for element type `T`: every family at every level
/// (highest first), then the reference.
pub fn candidates<T: Scalar>() -> Vec<Candidate<T>> {
    let mut list: Vec<Candidate<T>> = families::<T>()
        .into_iter()
        .flat_map(|f| {
            LEVELS.iter().rev().map(move |&(isa, _, _)| Candidate {
                name: impl_name(f.name, isa),
                isa,
                family: f.supports,
                build: f.build,
                exact: f.exact,
            })
        })
        .collect();
    list.push(Candidate {
        name: "reference".to_string(),
        isa: Isa::Generic,
        family: |_, _| Ok(()),
        build: |p, w, _| Box::new(reference::Reference::new(p, w)),
        exact: true,
    });
    list
}

/// A tile at least four times as tall as a group has output channels computes mostly rows
/// that are thrown away; on the AVX-512 set (16 rows) the 4-row remainder kernel has too few
/// independent accumulators, and measured slower than the AVX2 set's 6×16 tile (ResNeXt's 32
/// groups of 4 channels, Zen 4: 34.9 against 41.5 GFLOP/s), so such problems go to a lower
/// level.
fn small_groups_fit<T>(p: &ConvProblem, set: &KernelSet<T>) -> Result<(), String> {
    let kg = p.out_channels / p.groups.max(1);
    if set.isa > Isa::Avx2Fma && kg * 4 <= set.geometry.mr {
        Err(format!(
            "{kg} output channels per group fill a quarter of the {}-row tile at most",
            set.geometry.mr
        ))
    } else {
        Ok(())
    }
}

fn rank_fits(p: &ConvProblem) -> Result<(), String> {
    if p.axes.len() <= gemm_tiled::MAX_RANK {
        Ok(())
    } else {
        Err(format!("{} spatial axes, at most 8 supported", p.axes.len()))
    }
}

/// Cuts of one buffer among workers: `cut(t)` for `t ≤ threads`, from 0 to the buffer's length.
pub(crate) type Cuts<'a> = &'a (dyn Fn(usize) -> usize + Sync);

/// [`split_join`] over two buffers cut at once: worker `t` gets `a[cut_a(t)..cut_a(t + 1)]`,
/// `b[cut_b(t)..cut_b(t + 1)]` and its `per_ws` elements of `ws`.
pub(crate) fn split_join2<T: Send, F>(
    (a, cut_a): (&mut [T], Cuts<'_>),
    (b, cut_b): (&mut [T], Cuts<'_>),
    (ws, per_ws): (&mut [T], usize),
    threads: usize,
    f: &F,
) where
    F: Fn(usize, &mut [T], &mut [T], &mut [T]) + Sync,
{
    type Bufs<'x, T> = (&'x mut [T], &'x mut [T], &'x mut [T]);
    fn go<T: Send, F: Fn(usize, &mut [T], &mut [T], &mut [T]) + Sync>(
        (a, b, ws): Bufs<'_, T>,
        (base_a, base_b): (usize, usize),
        (cut_a, cut_b): (Cuts<'_>, Cuts<'_>),
        per_ws: usize,
        (t0, t1): (usize, usize),
        f: &F,
    ) {
        if t1 - t0 == 1 {
            f(t0, a, b, &mut ws[..per_ws]);
            return;
        }
        let mid = (t0 + t1) / 2;
        let (at_a, at_b) = (cut_a(mid), cut_b(mid));
        let (a0, a1) = a.split_at_mut(at_a - base_a);
        let (b0, b1) = b.split_at_mut(at_b - base_b);
        let (w0, w1) = ws.split_at_mut((mid - t0) * per_ws);
        let cuts = (cut_a, cut_b);
        team::join(
            || go((a0, b0, w0), (base_a, base_b), cuts, per_ws, (t0, mid), f),
            || go((a1, b1, w1), (at_a, at_b), cuts, per_ws, (mid, t1), f),
        );
    }
    go((a, b, ws), (0, 0), (cut_a, cut_b), per_ws, (0, threads.max(1)), f)
}

/// Run `f(t, part, ws_t)` for every worker `t < threads`, where `part` is `y[cut(t)..cut(t + 1)]`
/// (`cut(0) = 0`, `cut(threads) = y.len()`, non-decreasing) and `ws_t` the `t`-th run of
/// `per_ws` elements of `ws`. The parts are split recursively with [`team::join`], allocating
/// nothing; one worker runs on the calling thread.
pub(crate) fn split_join<T: Send, F>(
    y: &mut [T],
    ws: &mut [T],
    per_ws: usize,
    threads: usize,
    cut: &(dyn Fn(usize) -> usize + Sync),
    f: &F,
) where
    F: Fn(usize, &mut [T], &mut [T]) + Sync,
{
    fn go<T: Send, F: Fn(usize, &mut [T], &mut [T]) + Sync>(
        y: &mut [T],
        base: usize,
        ws: &mut [T],
        per_ws: usize,
        (t0, t1): (usize, usize),
        cut: &(dyn Fn(usize) -> usize + Sync),
        f: &F,
    ) {
        if t1 - t0 == 1 {
            f(t0, y, &mut ws[..per_ws]);
            return;
        }
        let mid = (t0 + t1) / 2;
        let at = cut(mid);
        let (ya, yb) = y.split_at_mut(at - base);
        let (wa, wb) = ws.split_at_mut((mid - t0) * per_ws);
        team::join(
            || go(ya, base, wa, per_ws, (t0, mid), cut, f),
            || go(yb, at, wb, per_ws, (mid, t1), cut, f),
        );
    }
    go(y, 0, ws, per_ws, (0, threads.max(1)), cut, f)
}
