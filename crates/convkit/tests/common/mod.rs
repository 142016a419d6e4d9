//! Random convolution problems over every parameter, shared by the implementation tests:
//! small-integer data, so exact algorithms must agree with the f64 reference bit for bit.
#![allow(dead_code)]

use convkit::impls::candidates;
use convkit::{reference, ConvDesc, ConvPlan, ConvProblem, Layout, PadMode, Padding, PlanOptions, Scalar};
use proptest::prelude::*;

#[derive(Debug, Clone)]
pub struct Case {
    pub desc: ConvDesc,
    pub x_shape: Vec<usize>,
    pub w_shape: Vec<usize>,
    pub bias: bool,
    pub seed: u64,
}

pub type AxisParams = (usize, usize, usize, usize, usize, usize);

pub fn case() -> impl Strategy<Value = Case> {
    let axis = (1usize..=9, 1usize..=3, 1usize..=3, 1usize..=2, 0usize..=2, 0usize..=2);
    let mode = prop_oneof![
        Just(PadMode::Zeros),
        Just(PadMode::Constant(2.0)),
        Just(PadMode::Reflect),
        Just(PadMode::Symmetric),
        Just(PadMode::Replicate),
        Just(PadMode::Circular),
    ];
    let layout = prop_oneof![Just(Layout::Nchw), Just(Layout::Nhwc)];
    (
        proptest::collection::vec(axis, 1..=3),
        (1usize..=3, 1usize..=3, 1usize..=3, 1usize..=20),
        mode,
        layout,
        (any::<bool>(), any::<bool>(), 0usize..6, any::<u64>()),
    )
        .prop_map(|(axes, (n, groups, cmul, kmul), mode, layout, (flip, bias, named, seed))| {
            build(&axes, n, groups, cmul, kmul, mode, layout, flip, bias, named, seed)
        })
}

#[allow(clippy::too_many_arguments)]
pub fn build(
    axes: &[AxisParams],
    n: usize,
    groups: usize,
    cmul: usize,
    kmul: usize,
    mode: PadMode,
    layout: Layout,
    flip: bool,
    bias: bool,
    named: usize,
    seed: u64,
) -> Case {
    let (c, k) = (groups * cmul, groups * kmul);
    let sp: Vec<usize> = axes.iter().map(|a| a.0 + 2).collect();
    let mut x_shape = vec![n];
    if layout == Layout::Nchw {
        x_shape.push(c);
    }
    x_shape.extend(&sp);
    if layout == Layout::Nhwc {
        x_shape.push(c);
    }
    let mut w_shape = vec![k, cmul];
    w_shape.extend(axes.iter().map(|a| a.1));
    let padding = match named {
        0 => Padding::Valid,
        1 => Padding::Same,
        2 => Padding::Full,
        _ => Padding::asymmetric(
            &axes.iter().map(|a| a.4).collect::<Vec<_>>(),
            &axes.iter().map(|a| a.5).collect::<Vec<_>>(),
        ),
    };
    let desc = ConvDesc::new()
        .stride(axes.iter().map(|a| a.2).collect::<Vec<_>>())
        .dilation(axes.iter().map(|a| a.3).collect::<Vec<_>>())
        .padding(padding)
        .padding_mode(mode)
        .groups(groups)
        .flip(flip)
        .layout(layout);
    Case { desc, x_shape, w_shape, bias, seed }
}

/// A xorshift stream from `seed` (the generator of [`ints`] and [`uniform`]).
fn xorshift(seed: u64) -> impl Iterator<Item = u64> {
    std::iter::successors(Some(seed | 1), |&s| {
        let s = s ^ (s << 13);
        let s = s ^ (s >> 7);
        Some(s ^ (s << 17))
    })
    .skip(1)
}

pub fn ints(n: usize, seed: u64) -> Vec<f64> {
    xorshift(seed).take(n).map(|s| (s % 7) as f64 - 3.0).collect()
}

/// Uniform values in [-1, 1) from a xorshift generator (for the approximate algorithms'
/// error bounds).
pub fn uniform(n: usize, seed: u64) -> Vec<f64> {
    xorshift(seed).take(n).map(|s| (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0).collect()
}

/// The exact result of `p` on `x`, `w`, `b` and `Σ|w·x| + |b|` per output (the scale of an
/// approximate algorithm's error), both in f64 from the same rounded values.
pub fn exact_and_magnitude<T: Scalar>(
    p: &ConvProblem,
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
) -> (Vec<f64>, Vec<f64>) {
    let f = |v: &[T]| -> Vec<f64> { v.iter().map(|v| v.to_f64()).collect() };
    let a = |v: &[f64]| -> Vec<f64> { v.iter().map(|v| v.abs()).collect() };
    let (xf, wf, bf) = (f(x), f(w), b.map(f));
    let len = p.output_shape().iter().product();
    let (mut want, mut mag) = (vec![0.0f64; len], vec![0.0f64; len]);
    reference::conv_forward(p, &xf, &wf, bf.as_deref(), &mut want);
    let mut cp = p.clone();
    if let PadMode::Constant(v) = cp.padding_mode {
        cp.padding_mode = PadMode::Constant(v.abs());
    }
    reference::conv_forward(&cp, &a(&xf), &a(&wf), bf.as_deref().map(a).as_deref(), &mut mag);
    (want, mag)
}

/// The worst error, relative to `Σ|w·x| + |b|` at each output, of every candidate whose name
/// `keep` accepts, at every ISA level this CPU has (each candidate at its own) and 1, 2 and 3
/// threads, on case `c` with uniform data; also checks that the thread counts agree bit for
/// bit, and that some candidate supports the problem.
pub fn approx_worst_error<T: Scalar>(
    c: &Case,
    p: &ConvProblem,
    conv: impl Fn(f64) -> T,
    keep: impl Fn(&str) -> bool,
) -> Result<f64, TestCaseError> {
    let x: Vec<T> = uniform(c.x_shape.iter().product(), c.seed).into_iter().map(&conv).collect();
    let w: Vec<T> = uniform(c.w_shape.iter().product(), c.seed ^ 0x9e37).into_iter().map(&conv).collect();
    let b: Option<Vec<T>> =
        c.bias.then(|| uniform(p.out_channels, c.seed ^ 0x51).into_iter().map(&conv).collect());
    let (want, mag) = exact_and_magnitude(p, &x, &w, b.as_deref());
    let mut worst = 0.0f64;
    let mut any = false;
    for cand in candidates::<T>().into_iter().filter(|c| keep(&c.name)) {
        for isa in convkit::isa::available() {
            if cand.isa != isa || cand.supports(p, isa).is_err() {
                continue;
            }
            let mut first: Option<Vec<T>> = None;
            for threads in [1, 2, 3] {
                let opts = PlanOptions::new().implementation(&cand.name).max_isa(isa).threads(threads);
                let plan = ConvPlan::new(p, &w, &opts).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let got = plan.run(&x, b.as_deref()).map_err(|e| TestCaseError::fail(e.to_string()))?;
                for ((g, wv), m) in got.iter().zip(&want).zip(&mag) {
                    worst = worst.max((g.to_f64() - wv).abs() / m.max(f64::MIN_POSITIVE));
                }
                match &first {
                    None => first = Some(got),
                    Some(f) => prop_assert!(
                        f.iter().zip(&got).all(|(a, b)| a.to_f64().to_bits() == b.to_f64().to_bits()),
                        "{} at {isa}, {threads} threads differs from 1 thread",
                        plan.implementation()
                    ),
                }
                any = true;
            }
        }
    }
    prop_assert!(any, "no candidate supports {p}");
    Ok(worst)
}
