//! Convolution implementations behind [`crate::plan::ConvPlan`], in the order the planner
//! tries them (reference last). Each says whether it supports a problem and, if not, why.

pub mod depthwise;
pub mod gemm_tiled;
pub mod grad_weight;
pub(crate) mod grid;
pub mod pointwise;
pub mod reference;
pub mod staging;
pub mod winograd;

use crate::isa::Isa;
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
}

/// Packs the weights for one problem at one ISA level.
pub type Builder<T> = fn(&ConvProblem, &[T], Isa) -> Box<dyn ConvImpl<T>>;

/// An entry of the ordered list: its name, a support check, and a constructor.
pub struct Candidate<T: Scalar> {
    /// Name as users force it (`gemm-tiled:avx2`).
    pub name: &'static str,
    /// `Ok` if the implementation handles the problem at the allowed ISA, else why not.
    pub supports: fn(&ConvProblem, Isa) -> Result<(), String>,
    /// Pack the weights and build.
    pub build: Builder<T>,
    /// Exact algorithm: the same sums as the reference, only in another order (integer-valued
    /// data agree bit for bit). `false` for Winograd, whose transforms round differently.
    pub exact: bool,
}

/// The ordered list of implementations for element type `T`.
pub fn candidates<T: Scalar>() -> Vec<Candidate<T>> {
    vec![
        Candidate {
            name: "dw-direct:avx2",
            supports: |p, isa| {
                depthwise::supports(p)?;
                if T::dw_row(isa).is_none() {
                    Err(format!("no AVX2 row kernel for {} at ISA {isa}", T::NAME))
                } else {
                    Ok(())
                }
            },
            build: |p, w, isa| Box::new(depthwise::Depthwise::new(p, w, isa)),
            exact: true,
        },
        Candidate {
            name: "dw-direct:generic",
            supports: |p, _| depthwise::supports(p),
            build: |p, w, _| Box::new(depthwise::Depthwise::new(p, w, Isa::Generic)),
            exact: true,
        },
        Candidate {
            name: "winograd:avx2",
            supports: |p, isa| {
                winograd::supports(p)?;
                if T::wino(isa).is_none() || T::gemm_tile(isa).is_none() {
                    Err(format!("no AVX2 kernels for {} at ISA {isa}", T::NAME))
                } else {
                    Ok(())
                }
            },
            build: |p, w, isa| Box::new(winograd::Winograd::new(p, w, isa)),
            exact: false,
        },
        Candidate {
            name: "winograd:generic",
            supports: |p, _| winograd::supports(p),
            build: |p, w, _| Box::new(winograd::Winograd::new(p, w, Isa::Generic)),
            exact: false,
        },
        Candidate {
            name: "pointwise:avx2",
            supports: |p, isa| {
                pointwise::supports(p)?;
                if T::gemm_tile(isa).is_none() {
                    Err(format!("no AVX2 kernel for {} at ISA {isa}", T::NAME))
                } else {
                    Ok(())
                }
            },
            build: |p, w, isa| Box::new(pointwise::Pointwise::new(p, w, isa)),
            exact: true,
        },
        Candidate {
            name: "pointwise:generic",
            supports: |p, _| pointwise::supports(p),
            build: |p, w, _| Box::new(pointwise::Pointwise::new(p, w, Isa::Generic)),
            exact: true,
        },
        Candidate {
            name: "gemm-tiled:avx2",
            supports: |p, isa| {
                rank_fits(p)?;
                if T::NAME != "f32" {
                    Err(format!("no AVX2 kernel for {}", T::NAME))
                } else if isa < Isa::Avx2Fma {
                    Err(format!("needs avx2+fma, ISA capped at {isa}"))
                } else {
                    Ok(())
                }
            },
            build: |p, w, _| Box::new(gemm_tiled::GemmTiled::new(p, w, Isa::Avx2Fma)),
            exact: true,
        },
        Candidate {
            name: "gemm-tiled:generic",
            supports: |p, _| rank_fits(p),
            build: |p, w, _| Box::new(gemm_tiled::GemmTiled::new(p, w, Isa::Generic)),
            exact: true,
        },
        Candidate {
            name: "reference",
            supports: |_, _| Ok(()),
            build: |p, w, _| Box::new(reference::Reference::new(p, w)),
            exact: true,
        },
    ]
}

fn rank_fits(p: &ConvProblem) -> Result<(), String> {
    if p.axes.len() <= gemm_tiled::MAX_RANK {
        Ok(())
    } else {
        Err(format!("{} spatial axes, at most 8 supported", p.axes.len()))
    }
}

/// Run `f(t, part, ws_t)` for every worker `t < threads`, where `part` is `y[cut(t)..cut(t + 1)]`
/// (`cut(0) = 0`, `cut(threads) = y.len()`, non-decreasing) and `ws_t` the `t`-th run of
/// `per_ws` elements of `ws`. The parts are split recursively with `rayon::join`, allocating
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
        rayon::join(
            || go(ya, base, wa, per_ws, (t0, mid), cut, f),
            || go(yb, at, wb, per_ws, (mid, t1), cut, f),
        );
    }
    go(y, 0, ws, per_ws, (0, threads.max(1)), cut, f)
}
