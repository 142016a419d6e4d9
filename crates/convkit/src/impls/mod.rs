//! Convolution implementations behind [`crate::plan::ConvPlan`], in the order the planner
//! tries them (reference last). Each says whether it supports a problem and, if not, why.

pub mod depthwise;
pub mod gemm_tiled;
pub mod reference;

use crate::isa::Isa;
use crate::scalar::Scalar;
use crate::shape::ConvProblem;

/// A convolution implementation prepared for one problem (weights packed).
pub trait ConvImpl<T: Scalar>: Send + Sync {
    /// Name like `gemm-tiled:avx2`.
    fn name(&self) -> String;
    /// Scratch elements one worker thread needs.
    fn workspace_per_thread(&self) -> usize;
    /// Compute `y = conv(x) + bias` with `threads` workers, each owning `workspace_per_thread`
    /// elements of `ws`. Results do not depend on `threads`.
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
        },
        Candidate {
            name: "dw-direct:generic",
            supports: |p, _| depthwise::supports(p),
            build: |p, w, _| Box::new(depthwise::Depthwise::new(p, w, Isa::Generic)),
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
        },
        Candidate {
            name: "gemm-tiled:generic",
            supports: |p, _| rank_fits(p),
            build: |p, w, _| Box::new(gemm_tiled::GemmTiled::new(p, w, Isa::Generic)),
        },
        Candidate {
            name: "reference",
            supports: |_, _| Ok(()),
            build: |p, w, _| Box::new(reference::Reference::new(p, w)),
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
