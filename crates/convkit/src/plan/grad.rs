//! Gradients planned once: [`GradInputPlan`] (`∂L/∂x`, every stride) and [`GradWeightPlan`]
//! (`∂L/∂w`). Both take the forward problem; `∂L/∂b` is a plain sum
//! ([`crate::backward::grad_bias`]).

use super::{ConvPlan, ConvTransposePlan, PlanOptions};
use crate::error::{Error, Result};
use crate::impls::grad_weight::GradWeight;
use crate::impls::grad_weight_winograd::GradWeightWinograd;
use crate::scalar::Scalar;
use crate::shape::ConvProblem;
use crate::tensor::{check_len, check_workspace};

/// How the data gradient runs.
enum GradInput<T: Scalar> {
    /// Stride 1, zero padding: a forward convolution of `grad_output`
    /// ([`crate::backward::grad_input_as_conv`]).
    Conv(ConvPlan<T>),
    /// Zero padding at any stride: a transposed convolution with the same weight
    /// ([`crate::backward::grad_input_as_transpose`]).
    Transpose(ConvTransposePlan<T>),
    /// Other padding modes: the reference (which folds padded reads back onto the input).
    Reference(Vec<T>),
}

/// The input gradient of a convolution, planned once: `∂L/∂x` from `∂L/∂y` and the weight
/// given at plan time.
///
/// ```
/// use convkit::{plan::GradInputPlan, ConvDesc, ConvProblem, PlanOptions};
/// let p = ConvProblem::new(&ConvDesc::new().stride([2]), &[1, 1, 4], &[1, 1, 2]).unwrap();
/// let plan = GradInputPlan::new(&p, &[1.0f32, 10.0], &PlanOptions::new()).unwrap();
/// let mut gx = vec![0.0; 4];
/// let mut ws = plan.workspace().unwrap();
/// plan.execute(&[1.0, 2.0], &mut gx, &mut ws).unwrap();
/// assert_eq!(gx, [1.0, 10.0, 2.0, 20.0]);
/// ```
pub struct GradInputPlan<T: Scalar> {
    problem: ConvProblem,
    imp: GradInput<T>,
}

impl<T: Scalar> GradInputPlan<T> {
    /// Plan the data gradient of `problem` with `weight` (`(K, C/groups, kernel…)`).
    /// `opts` applies to the forward or transposed plan underneath (`implementation` may also
    /// be `reference`).
    pub fn new(problem: &ConvProblem, weight: &[T], opts: &PlanOptions) -> Result<Self> {
        check_len("weight", weight.len(), &problem.weight_shape())?;
        opts.resolve()?;
        let imp = if opts.implementation.as_deref() == Some("reference") {
            GradInput::Reference(weight.to_vec())
        } else if let Some((q, wt)) = crate::backward::grad_input_as_conv(problem, weight) {
            GradInput::Conv(ConvPlan::new(&q, &wt, opts)?)
        } else if let Some(q) = crate::backward::grad_input_as_transpose(problem) {
            GradInput::Transpose(ConvTransposePlan::new(&q, weight, opts)?)
        } else {
            GradInput::Reference(weight.to_vec())
        };
        Ok(GradInputPlan { problem: problem.clone(), imp })
    }

    /// The implementation underneath: a forward one (`gemm-tiled:avx2`…), `phase-split(…)`,
    /// or `reference`.
    pub fn implementation(&self) -> String {
        match &self.imp {
            GradInput::Conv(p) => p.implementation(),
            GradInput::Transpose(p) => p.implementation(),
            GradInput::Reference(_) => "reference".into(),
        }
    }

    /// Scratch elements [`GradInputPlan::execute`] needs.
    pub fn workspace_len(&self) -> usize {
        match &self.imp {
            GradInput::Conv(p) => p.workspace_len(),
            GradInput::Transpose(p) => p.workspace_len(),
            GradInput::Reference(_) => 0,
        }
    }

    /// A workspace of the right size.
    pub fn workspace(&self) -> Result<Vec<T>> {
        crate::tensor::alloc("workspace", &[self.workspace_len()])
    }

    /// `gx = ∂L/∂x` (the input's shape) from `gy = ∂L/∂y` (the output's shape).
    pub fn execute(&self, gy: &[T], gx: &mut [T], ws: &mut [T]) -> Result<()> {
        let p = &self.problem;
        check_len("grad_output", gy.len(), &p.output_shape())?;
        check_len("grad_input", gx.len(), &p.input_shape())?;
        match &self.imp {
            GradInput::Conv(plan) => plan.execute(gy, None, gx, ws),
            GradInput::Transpose(plan) => plan.execute(gy, None, gx, ws),
            GradInput::Reference(w) => {
                // The reference reads the input only for the weight gradient; none is asked for.
                let x = vec![T::ZERO; gx.len()];
                crate::reference::conv_backward(p, &x, w, gy, Some(gx), None, None);
                Ok(())
            }
        }
    }
}

/// How the weight gradient runs.
enum GradWeightImp<T: Scalar> {
    /// Winograd F(3×3, 4×4) ([`crate::impls::grad_weight_winograd`]).
    Winograd(Box<GradWeightWinograd<T>>),
    /// A GEMM over every output position ([`crate::impls::grad_weight`]).
    Gemm(Box<GradWeight<T>>),
}

impl<T: Scalar> GradWeightImp<T> {
    fn name(&self) -> String {
        match self {
            GradWeightImp::Winograd(i) => i.name(),
            GradWeightImp::Gemm(i) => i.name(),
        }
    }

    fn workspace(&self, threads: usize) -> usize {
        match self {
            GradWeightImp::Winograd(i) => i.workspace(threads),
            GradWeightImp::Gemm(i) => i.workspace(threads),
        }
    }

    fn execute(&self, x: &[T], gy: &[T], gw: &mut [T], ws: &mut [T], threads: usize) {
        match self {
            GradWeightImp::Winograd(i) => i.execute(x, gy, gw, ws, threads),
            GradWeightImp::Gemm(i) => i.execute(x, gy, gw, ws, threads),
        }
    }
}

/// The weight gradient of a convolution, planned once: `∂L/∂w` from the input and `∂L/∂y`.
/// A 2-D 3×3 stride-1 convolution with enough channels runs by Winograd F(3×3, 4×4)
/// ([`crate::impls::grad_weight_winograd`]) unless exact results are asked for
/// ([`PlanOptions::exact`], `CONVKIT_EXACT=1`); others run as a GEMM over every output
/// position of every sample ([`crate::impls::grad_weight`]), or through the reference where
/// the staged input would be too large (or with `implementation("reference")`). Results are
/// bitwise identical for any thread count.
///
/// ```
/// use convkit::{plan::GradWeightPlan, ConvDesc, ConvProblem, PlanOptions};
/// let p = ConvProblem::new(&ConvDesc::new(), &[1, 1, 3], &[1, 1, 2]).unwrap();
/// let plan = GradWeightPlan::<f32>::new(&p, &PlanOptions::new()).unwrap();
/// let mut gw = vec![0.0; 2];
/// let mut ws = plan.workspace().unwrap();
/// plan.execute(&[1.0, 2.0, 3.0], &[1.0, 10.0], &mut gw, &mut ws).unwrap();
/// assert_eq!(gw, [21.0, 32.0]); // Σ gy[o]·x[o + t]
/// ```
pub struct GradWeightPlan<T: Scalar> {
    problem: ConvProblem,
    imp: Option<GradWeightImp<T>>,
    threads: usize,
}

/// The weight-gradient families, best first, as users force them (`FAMILY:LEVEL`).
const GRAD_WEIGHT_FAMILIES: [&str; 2] = ["grad-weight-winograd", "grad-weight-gemm"];

impl<T: Scalar> GradWeightPlan<T> {
    /// Plan the weight gradient of `problem`. `opts.implementation` may force `reference`,
    /// `grad-weight-winograd:LEVEL` or `grad-weight-gemm:LEVEL` (`avx512`, `avx2`,
    /// `generic`); the ISA cap, exactness and threads apply as for forward plans.
    pub fn new(problem: &ConvProblem, opts: &PlanOptions) -> Result<Self> {
        use crate::impls::grad_weight_winograd;
        use crate::isa::{Isa, LEVELS};
        use crate::kernels::{best_kernel_set, impl_name, kernel_set};
        let (cap, threads) = opts.resolve()?;
        let exact = opts.exact || std::env::var("CONVKIT_EXACT").is_ok_and(|v| v == "1");
        let imp = match opts.implementation.as_deref() {
            None => {
                let set = best_kernel_set::<T>(cap);
                if !exact && grad_weight_winograd::supports(problem, &set).is_ok() {
                    Some(GradWeightImp::Winograd(Box::new(GradWeightWinograd::new(problem, set))))
                } else {
                    GradWeight::new(problem, set).map(|g| GradWeightImp::Gemm(Box::new(g)))
                }
            }
            Some("reference") => None,
            Some(name) => {
                let names: Vec<String> = GRAD_WEIGHT_FAMILIES
                    .iter()
                    .flat_map(|f| LEVELS.iter().rev().map(|l| impl_name(f, l.0)))
                    .collect();
                let parsed = GRAD_WEIGHT_FAMILIES.iter().find_map(|f| {
                    let level = name.strip_prefix(f)?.strip_prefix(':').and_then(Isa::parse)?;
                    Some((*f, level))
                });
                let (family, level) = parsed.ok_or_else(|| {
                    Error::arg(
                        "implementation",
                        name,
                        format!("expected one of {}, reference", names.join(", ")),
                    )
                })?;
                let set = kernel_set::<T>(level).filter(|_| level <= cap).ok_or_else(|| {
                    Error::arg(
                        "implementation",
                        name,
                        format!("no {level} kernels for {} (ISA cap {cap})", T::NAME),
                    )
                })?;
                if family == GRAD_WEIGHT_FAMILIES[0] {
                    let ok = if exact {
                        Err("approximate (Winograd transforms), exact results asked for".to_string())
                    } else {
                        grad_weight_winograd::supports(problem, &set)
                    };
                    ok.map_err(|why| Error::arg("implementation", name, why))?;
                    Some(GradWeightImp::Winograd(Box::new(GradWeightWinograd::new(problem, set))))
                } else {
                    GradWeight::new(problem, set).map(|g| GradWeightImp::Gemm(Box::new(g)))
                }
            }
        };
        Ok(GradWeightPlan { problem: problem.clone(), imp, threads })
    }

    /// `grad-weight-winograd:LEVEL`, `grad-weight-gemm:LEVEL` (e.g. `grad-weight-gemm:avx512`)
    /// or `reference`.
    pub fn implementation(&self) -> String {
        self.imp.as_ref().map_or("reference".into(), |i| i.name())
    }

    /// Scratch elements [`GradWeightPlan::execute`] needs, with room to start the
    /// implementation's scratch on a cache line.
    pub fn workspace_len(&self) -> usize {
        crate::tensor::with_line_slack::<T>(self.imp.as_ref().map_or(0, |i| i.workspace(self.threads)))
    }

    /// A workspace of the right size.
    pub fn workspace(&self) -> Result<Vec<T>> {
        crate::tensor::alloc("workspace", &[self.workspace_len()])
    }

    /// `gw = ∂L/∂w` (the weight's shape) from `x` (the input) and `gy = ∂L/∂y` (the output's
    /// shape).
    pub fn execute(&self, x: &[T], gy: &[T], gw: &mut [T], ws: &mut [T]) -> Result<()> {
        let p = &self.problem;
        check_len("input", x.len(), &p.input_shape())?;
        check_len("grad_output", gy.len(), &p.output_shape())?;
        check_len("grad_weight", gw.len(), &p.weight_shape())?;
        check_workspace(ws.len(), self.workspace_len())?;
        match &self.imp {
            Some(imp) => {
                let ws = crate::tensor::line_aligned(ws, imp.workspace(self.threads));
                imp.execute(x, gy, gw, ws, self.threads)
            }
            None => {
                // The reference reads the weight only for the input gradient; none is asked for.
                let w = vec![T::ZERO; gw.len()];
                crate::reference::conv_backward(p, x, &w, gy, None, Some(gw), None);
            }
        }
        Ok(())
    }
}
