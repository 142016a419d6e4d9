//! Plan once, execute many: a [`ConvPlan`] is built from a checked problem and the weights.
//! It walks the ordered implementation list (reference last), takes the first that supports
//! the problem at the allowed ISA (or the one the caller forces), packs the weights, and
//! reports the workspace it needs. Executing it only computes.
//!
//! `CONVKIT_VERBOSE=1` prints the choice and why earlier candidates declined;
//! `CONVKIT_MAX_ISA=generic|avx2|avx512` caps the SIMD level; `CONVKIT_EXACT=1` rules out approximate
//! algorithms (Winograd), like [`PlanOptions::exact`].

pub mod grad;
pub mod pool;
pub mod transpose;

pub use grad::{GradInputPlan, GradWeightPlan};
pub use pool::PoolPlan;
pub use transpose::ConvTransposePlan;

use crate::error::{Error, Result};
use crate::impls::{candidates, ConvImpl, IlvCutFn, IlvPlaceFn};
use crate::isa::{max_isa, Isa};
use crate::scalar::Scalar;
use crate::shape::ConvProblem;
use crate::tensor::{alloc, check_bias, check_len, check_workspace, line_aligned, with_line_slack};

/// Options for building a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlanOptions {
    /// Worker threads; `None` = all cores. Results are bitwise identical for any count.
    pub threads: Option<usize>,
    /// Force an implementation by name: `fft`, `dw-direct`, `winograd`, `polyphase-winograd`, `pointwise`,
    /// `grouped-direct` or `gemm-tiled`
    /// with an ISA level (`:avx512`, `:avx2` or `:generic`), or `reference`
    /// ([`crate::impls::candidates`] lists them).
    pub implementation: Option<String>,
    /// Cap the ISA below what the CPU and `CONVKIT_MAX_ISA` allow.
    pub max_isa: Option<Isa>,
    /// Only exact algorithms: skip Winograd, whose results differ from the exact sums by
    /// more than the reordering of an ordinary convolution (relative error around 1e-6 of
    /// Σ|w·x| in f32 instead of 1e-7). Integer-valued data then give exact results.
    pub exact: bool,
}

impl PlanOptions {
    /// All cores, automatic choice.
    pub fn new() -> Self {
        Self::default()
    }
    /// Use `n` worker threads.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
        self
    }
    /// Force the implementation named `name`.
    pub fn implementation(mut self, name: &str) -> Self {
        self.implementation = Some(name.to_string());
        self
    }
    /// Cap the ISA.
    pub fn max_isa(mut self, isa: Isa) -> Self {
        self.max_isa = Some(isa);
        self
    }
    /// The ISA to plan for (the cap, within what the CPU and `CONVKIT_MAX_ISA` allow) and the
    /// worker threads (all cores when unset; 0 is an error).
    pub(crate) fn resolve(&self) -> Result<(Isa, usize)> {
        let isa = self.max_isa.map_or(max_isa(), |cap| cap.min(max_isa()));
        let threads = match self.threads {
            Some(0) => return Err(Error::arg("threads", 0, "must be at least 1")),
            Some(n) => n,
            None => rayon::current_num_threads(),
        };
        Ok((isa, threads))
    }
    /// Only exact algorithms (no Winograd) when `yes`.
    pub fn exact(mut self, yes: bool) -> Self {
        self.exact = yes;
        self
    }
}

/// A convolution ready to run: problem checked, implementation chosen, weights packed.
///
/// ```
/// use convkit::{ConvDesc, ConvPlan, ConvProblem, Padding, PlanOptions};
/// let p = ConvProblem::new(&ConvDesc::new().padding(Padding::Same), &[1, 2, 5, 5], &[3, 2, 3, 3]).unwrap();
/// let w = vec![1.0f32; 3 * 2 * 9];
/// let plan = ConvPlan::new(&p, &w, &PlanOptions::new()).unwrap();
/// let x = vec![1.0f32; 2 * 25];
/// let mut y = vec![0.0f32; 3 * 25];
/// let mut ws = plan.workspace().unwrap();
/// plan.execute(&x, None, &mut y, &mut ws).unwrap();
/// assert_eq!(y[12], 18.0); // centre: 2 channels × 9 taps
/// ```
pub struct ConvPlan<T: Scalar> {
    problem: ConvProblem,
    imp: Box<dyn ConvImpl<T>>,
    threads: usize,
    declined: Vec<(String, String)>,
}

impl<T: Scalar> ConvPlan<T> {
    /// Choose an implementation for `problem` and pack `weight` (`(K, C/groups, kernel…)`).
    pub fn new(problem: &ConvProblem, weight: &[T], opts: &PlanOptions) -> Result<Self> {
        check_len("weight", weight.len(), &problem.weight_shape())?;
        let (isa, threads) = opts.resolve()?;
        let exact = opts.exact || std::env::var("CONVKIT_EXACT").is_ok_and(|v| v == "1");
        let mut declined = Vec::new();
        let list = candidates::<T>();
        if let Some(name) = &opts.implementation {
            if !list.iter().any(|c| c.name == *name) {
                let names: Vec<_> = list.iter().map(|c| c.name.as_str()).collect();
                return Err(Error::arg(
                    "implementation",
                    name,
                    format!("expected one of {}", names.join(", ")),
                ));
            }
        }
        for c in list {
            if opts.implementation.as_deref().is_some_and(|n| n != c.name) {
                continue;
            }
            let supported = if exact && !c.exact {
                Err("approximate (Winograd transforms), exact results asked for".to_string())
            } else {
                c.supports(problem, isa)
            };
            match supported {
                Ok(()) => {
                    let imp = c.build(problem, weight);
                    let plan = ConvPlan { problem: problem.clone(), imp, threads, declined };
                    if std::env::var("CONVKIT_VERBOSE").is_ok_and(|v| v == "1") {
                        eprintln!("{}", plan.explain());
                    }
                    return Ok(plan);
                }
                Err(why) => declined.push((c.name.clone(), why)),
            }
        }
        let why: Vec<_> = declined.iter().map(|(n, w)| format!("{n}: {w}")).collect();
        Err(Error::arg("implementation", opts.implementation.as_deref().unwrap_or("auto"), why.join("; ")))
    }

    /// The chosen implementation's name, e.g. `gemm-tiled:avx2`.
    pub fn implementation(&self) -> String {
        self.imp.name()
    }

    /// The problem this plan computes.
    pub fn problem(&self) -> &ConvProblem {
        &self.problem
    }

    /// Worker threads the plan runs with.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// One line: the problem, the choice, and why earlier candidates declined.
    pub fn explain(&self) -> String {
        let mut s = format!("convkit: {} -> {}", self.problem, self.imp.name());
        for (n, w) in &self.declined {
            s += &format!(" [{n} declined: {w}]");
        }
        s
    }

    /// Scratch elements [`ConvPlan::execute`] needs (all threads together), with room to start
    /// the implementation's scratch on a cache line.
    pub fn workspace_len(&self) -> usize {
        with_line_slack::<T>(self.imp.workspace(self.threads))
    }

    /// A workspace of the right size.
    pub fn workspace(&self) -> Result<Vec<T>> {
        alloc("workspace", &[self.workspace_len()])
    }

    /// Compute `y = conv(x) + bias`. `x` and `y` have the problem's input and output shapes.
    pub fn execute(&self, x: &[T], bias: Option<&[T]>, y: &mut [T], ws: &mut [T]) -> Result<()> {
        check_len("input", x.len(), &self.problem.input_shape())?;
        check_len("output", y.len(), &self.problem.output_shape())?;
        check_bias(bias, self.problem.out_channels)?;
        check_workspace(ws.len(), self.workspace_len())?;
        let ws = line_aligned(ws, self.imp.workspace(self.threads));
        self.imp.execute(x, bias, y, ws, self.threads);
        Ok(())
    }

    /// Allocate the output and workspace and run once.
    pub fn run(&self, x: &[T], bias: Option<&[T]>) -> Result<Vec<T>> {
        let mut y = alloc("output", &self.problem.output_shape())?;
        let mut ws = self.workspace()?;
        self.execute(x, bias, &mut y, &mut ws)?;
        Ok(y)
    }

    /// Whether [`ConvPlan::execute_ilv`] runs for runs of `run` rows: a plan whose
    /// implementation stores tiles interleaved ([`ConvImpl::has_ilv`]).
    pub(crate) fn has_ilv(&self, run: usize) -> bool {
        self.imp.has_ilv(run)
    }

    /// [`ConvImpl::execute_ilv`] with this plan's threads and workspace (`held` as
    /// `execute`'s output). Panics unless [`ConvPlan::has_ilv`] holds for the places' runs.
    pub(crate) fn execute_ilv(
        &self,
        x: &[T],
        (held, y): (&mut [T], &mut [T]),
        ws: &mut [T],
        place: &IlvPlaceFn<'_, T>,
        cut: &IlvCutFn<'_>,
    ) {
        let ws = line_aligned(ws, self.imp.workspace(self.threads));
        self.imp.execute_ilv(x, held, y, ws, self.threads, place, cut);
    }
}
