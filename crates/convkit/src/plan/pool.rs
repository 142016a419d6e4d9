//! Pooling, planned once: a [`PoolPlan`] checks a [`PoolProblem`], precomputes its windows and
//! picks `pool-direct:LEVEL` (ranks 1–3, [`crate::impls::pool`], with the row kernels of the
//! best ISA level the options allow, [`crate::kernels::pool`]) or the reference, whose results
//! it reproduces bit for bit (values, NaN propagation, first-maximum indices, divisors) at
//! every level.

use super::PlanOptions;
use crate::desc::PoolKind;
use crate::error::{Error, Result};
use crate::impls::pool::{self, PoolDirect};
use crate::isa::{Isa, LEVELS};
use crate::kernels::impl_name;
use crate::kernels::pool::{best_pool_kernels, pool_kernels};
use crate::reference;
use crate::scalar::Scalar;
use crate::shape::PoolProblem;
use crate::tensor::{alloc, check_len, check_workspace};
use std::marker::PhantomData;

/// The direct implementation's family name (`pool-direct:LEVEL` names one level; the bare
/// name, forced, means the best level allowed).
const DIRECT: &str = "pool-direct";

/// Max or average pooling ready to run.
///
/// ```
/// use convkit::{PlanOptions, PoolDesc, PoolKind, PoolPlan, PoolProblem};
/// let p = PoolProblem::new(&PoolDesc::new(PoolKind::Max).kernel([2]), &[1, 1, 4, 4]).unwrap();
/// let plan = PoolPlan::<f32>::new(&p, &PlanOptions::new()).unwrap();
/// let x: Vec<f32> = (0..16).map(|v| v as f32).collect();
/// let (y, i) = plan.run_with_indices(&x).unwrap();
/// assert_eq!(y, vec![5.0, 7.0, 13.0, 15.0]);
/// assert_eq!(i, vec![5, 7, 13, 15]);
/// assert!(plan.implementation().starts_with("pool-direct:")); // e.g. pool-direct:avx512
/// ```
pub struct PoolPlan<T: Scalar> {
    problem: PoolProblem,
    /// `None`: the reference runs.
    direct: Option<PoolDirect>,
    threads: usize,
    declined: Vec<(String, String)>,
    _t: PhantomData<fn() -> T>,
}

impl<T: Scalar> PoolPlan<T> {
    /// Plan `problem`: `pool-direct` at the best ISA level at or below the options' cap
    /// where it applies, else the reference. `opts.implementation` may force `reference`,
    /// `pool-direct` (the best level) or `pool-direct:LEVEL` (`avx512`, `avx2`, `generic`;
    /// refused above the cap or the CPU). Threads come from `opts`.
    pub fn new(problem: &PoolProblem, opts: &PlanOptions) -> Result<Self> {
        let (cap, threads) = opts.resolve()?;
        let forced = opts.implementation.as_deref();
        let isa = match forced {
            None | Some("reference") | Some(DIRECT) => best_pool_kernels::<T>(cap).isa,
            Some(name) => {
                let level = name.strip_prefix(DIRECT).and_then(|l| l.strip_prefix(':')).and_then(Isa::parse);
                let Some(level) = level else {
                    let names: Vec<String> = LEVELS.iter().rev().map(|l| impl_name(DIRECT, l.0)).collect();
                    let expected = format!("expected one of {DIRECT}, {}, reference", names.join(", "));
                    return Err(Error::arg("implementation", name, expected));
                };
                if level > cap || pool_kernels::<T>(level).is_none() {
                    let why = format!("no {level} kernels on this CPU or above the ISA cap {cap}");
                    return Err(Error::arg("implementation", name, why));
                }
                level
            }
        };
        let mut declined = Vec::new();
        let direct = match forced {
            Some("reference") => None,
            _ => match pool::supports(problem) {
                Ok(()) => Some(PoolDirect::new(problem, isa)),
                Err(why) if forced.is_some() => return Err(Error::arg("implementation", DIRECT, why)),
                Err(why) => {
                    declined.push((DIRECT.to_string(), why));
                    None
                }
            },
        };
        let plan = PoolPlan { problem: problem.clone(), direct, threads, declined, _t: PhantomData };
        if std::env::var("CONVKIT_VERBOSE").is_ok_and(|v| v == "1") {
            eprintln!("{}", plan.explain());
        }
        Ok(plan)
    }

    /// The chosen implementation: `pool-direct:LEVEL` (e.g. `pool-direct:avx512`) or
    /// `reference`.
    pub fn implementation(&self) -> String {
        self.direct.as_ref().map_or_else(|| "reference".to_string(), PoolDirect::name)
    }

    /// The problem this plan computes.
    pub fn problem(&self) -> &PoolProblem {
        &self.problem
    }

    /// Worker threads the plan runs with (the reference runs on one).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// One line: the problem, the choice, and why `pool-direct` declined if it did.
    pub fn explain(&self) -> String {
        let p = &self.problem;
        let mut s = format!(
            "convkit: pool {} {:?} input {:?} kernel {:?} -> {}",
            p.kind,
            p.layout,
            p.input_shape(),
            p.axes.iter().map(|a| a.kernel).collect::<Vec<_>>(),
            self.implementation()
        );
        for (n, w) in &self.declined {
            s += &format!(" [{n} declined: {w}]");
        }
        s
    }

    /// Scratch elements [`PoolPlan::execute`] needs: none (accumulators live on the stack).
    pub fn workspace_len(&self) -> usize {
        0
    }

    /// A workspace of the right size.
    pub fn workspace(&self) -> Result<Vec<T>> {
        alloc("workspace", &[self.workspace_len()])
    }

    /// Pool `x` (the problem's input shape) into `y` (its output shape); for max pooling,
    /// optionally write into `indices` (output shape) the flat index, within each input
    /// (n, c) plane, of each window's first maximum. Allocates nothing.
    pub fn execute(&self, x: &[T], y: &mut [T], indices: Option<&mut [i64]>, ws: &mut [T]) -> Result<()> {
        let p = &self.problem;
        check_len("input", x.len(), &p.input_shape())?;
        check_len("output", y.len(), &p.output_shape())?;
        if let Some(ix) = indices.as_deref() {
            if !matches!(p.kind, PoolKind::Max | PoolKind::GlobalMax) {
                return Err(Error::arg("indices", p.kind, "indices exist for max pooling only"));
            }
            check_len("indices", ix.len(), &p.output_shape())?;
        }
        check_workspace(ws.len(), self.workspace_len())?;
        match &self.direct {
            Some(d) => d.forward(x, y, indices, self.threads),
            None => reference::pool_forward(p, x, y, indices),
        }
        Ok(())
    }

    /// Allocate the output and run once.
    pub fn run(&self, x: &[T]) -> Result<Vec<T>> {
        let mut y = alloc("output", &self.problem.output_shape())?;
        self.execute(x, &mut y, None, &mut [])?;
        Ok(y)
    }

    /// Allocate the output and the indices of the maxima and run once (max pooling only).
    pub fn run_with_indices(&self, x: &[T]) -> Result<(Vec<T>, Vec<i64>)> {
        let mut y = alloc("output", &self.problem.output_shape())?;
        let mut ix = alloc("indices", &self.problem.output_shape())?;
        self.execute(x, &mut y, Some(&mut ix), &mut [])?;
        Ok((y, ix))
    }

    /// The gradient `gx = ∂L/∂x` given `x` and `gy = ∂L/∂y` (max: routed to each window's
    /// first maximum; average: spread by the divisor), exactly as
    /// [`crate::reference::pool_backward`] computes it, bit for bit (on `pool-direct`: the
    /// planes in parallel, the first maxima from the forward pass).
    pub fn backward(&self, x: &[T], gy: &[T], gx: &mut [T]) -> Result<()> {
        let p = &self.problem;
        check_len("input", x.len(), &p.input_shape())?;
        check_len("grad_output", gy.len(), &p.output_shape())?;
        check_len("grad_input", gx.len(), &p.input_shape())?;
        match &self.direct {
            Some(d) => d.backward(x, gy, gx, self.threads),
            None => reference::pool_backward(p, x, gy, gx),
        }
        Ok(())
    }
}
