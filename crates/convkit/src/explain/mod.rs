//! Worked examples: a convolution or pooling on a small input traced step by step, as a
//! textbook would write it — for every output the window over the padded input, the products,
//! the sum and the result, then the output and the output-size formula with its numbers.
//!
//! The problem is checked by [`crate::shape`] (nothing here re-derives an output size) and the
//! padding values come from the reference implementation's own padding rule, so the trace's
//! results are the reference's results. Inputs larger than a person can read are refused
//! ([`Limits`]).
//!
//! ```
//! use convkit::explain::{explain_conv, Limits};
//! use convkit::ConvDesc;
//! let e = explain_conv(&ConvDesc::new(), &[1.0, 2.0, 0.0, -1.0, 3.0, 1.0], &[1, 1, 6],
//!                      &[2.0, -1.0, 1.0], &[1, 1, 3], None, &Limits::default()).unwrap();
//! assert_eq!(e.output, vec![0.0, 3.0, 4.0, -4.0]);
//! assert!(e.to_text().contains("1·2 + 2·(−1) + 0·1 = 0"));
//! ```

mod render;

use crate::desc::{ConvDesc, Layout, PadMode, PoolDesc, PoolKind};
use crate::error::{Error, Result};
use crate::geometry::{pad_source, pad_value, unravel};
use crate::shape::{checked_numel, Axis, ConvProblem, PoolProblem};
use crate::tensor::{check_bias, check_len};

pub use render::format_number;

/// Which operation a trace explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Convolution (cross-correlation unless flipped).
    Conv,
    /// Max pooling.
    MaxPool,
    /// Average pooling.
    AvgPool,
}

impl Op {
    /// `"conv"`, `"max-pool"` or `"avg-pool"`.
    pub fn name(self) -> &'static str {
        match self {
            Op::Conv => "conv",
            Op::MaxPool => "max-pool",
            Op::AvgPool => "avg-pool",
        }
    }
}

/// How much a trace may show. Larger problems are refused with an error naming the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Most input values (N·C·∏spatial).
    pub max_input: usize,
    /// Most weight values.
    pub max_weight: usize,
    /// Most output values, i.e. steps.
    pub max_output: usize,
    /// Most terms (products or window taps) over all steps.
    pub max_terms: usize,
    /// Most values of the padded input (N·C·∏padded spatial).
    pub max_padded: usize,
}

impl Default for Limits {
    /// 1024 input and weight values, 256 outputs, 4096 terms, 4096 padded values: a 16×16
    /// image with a 3×3 kernel and `same` padding fits (256 steps of 9 products).
    fn default() -> Self {
        Limits { max_input: 1024, max_weight: 1024, max_output: 256, max_terms: 4096, max_padded: 4096 }
    }
}

/// The output-size formula of one spatial axis with its numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AxisFormula {
    /// Spatial axis index (0 = outermost).
    pub axis: usize,
    /// The resolved axis (input, kernel, stride, dilation, padding, output).
    pub numbers: Axis,
    /// Pooling in ceil mode.
    pub ceil_mode: bool,
    /// The formula written out, e.g. `⌊(6 + 0 + 0 − 1·(3 − 1) − 1) / 1⌋ + 1 = 4`.
    pub text: String,
}

/// One term of a step: an input value read by one kernel (window) tap.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    /// Input channel.
    pub c: usize,
    /// Tap index within the window, per axis: the index into the applied (possibly flipped)
    /// kernel; the padded position is `out·stride + tap·dilation`.
    pub tap: Vec<usize>,
    /// Index into the weight as given (differs from `tap` when the kernel is flipped); `None`
    /// for pooling.
    pub weight_tap: Option<Vec<usize>>,
    /// Position in the padded input, per axis.
    pub padded: Vec<usize>,
    /// Position in the original input, or `None` when the position lies in the padding.
    pub source: Option<Vec<usize>>,
    /// The input element the value was read from: `source` inside the input; for reflect,
    /// symmetric, replicate and circular padding the element the padding copies; `None` for
    /// zero or constant padding.
    pub reads: Option<Vec<usize>>,
    /// The value read (the padding value where there is no source).
    pub x: f64,
    /// The weight multiplied (`None` for pooling).
    pub w: Option<f64>,
    /// `x·w` (`None` for pooling).
    pub product: Option<f64>,
}

/// One output value worked out.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Batch index.
    pub n: usize,
    /// Output channel (for pooling: the channel).
    pub k: usize,
    /// Output spatial position.
    pub out: Vec<usize>,
    /// The terms, channel-major, taps in row-major order.
    pub terms: Vec<Term>,
    /// Convolution: sum of the products; average pooling: sum of the values inside the input;
    /// `None` for max pooling.
    pub sum: Option<f64>,
    /// The bias added (convolution with a bias).
    pub bias: Option<f64>,
    /// Average pooling: the divisor.
    pub divisor: Option<f64>,
    /// Max pooling: index into `terms` of the first maximum (`None` when the window lies
    /// wholly in the padding).
    pub argmax: Option<usize>,
    /// The result.
    pub value: f64,
}

/// A convolution or pooling worked step by step.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The operation.
    pub op: Op,
    /// Input shape `(N, C, spatial…)`.
    pub input_shape: Vec<usize>,
    /// Weight shape (convolution).
    pub weight_shape: Option<Vec<usize>>,
    /// Output shape.
    pub output_shape: Vec<usize>,
    /// The input, flat in C order.
    pub input: Vec<f64>,
    /// The weight as given, before any flip (convolution).
    pub weight: Option<Vec<f64>>,
    /// The bias, one per output channel.
    pub bias: Option<Vec<f64>>,
    /// The output, flat in C order.
    pub output: Vec<f64>,
    /// The resolved spatial axes.
    pub axes: Vec<Axis>,
    /// Spatial shape after padding.
    pub padded_shape: Vec<usize>,
    /// The padded input, flat over `(N, C, padded spatial…)`. Max pooling pads with −∞
    /// (padding never wins); average pooling with 0.
    pub padded: Vec<f64>,
    /// For each value of `padded`: it lies in the padding.
    pub padded_is_pad: Vec<bool>,
    /// The kernel as multiplied, `(K, C/groups, taps…)`: reversed on every axis when flipped.
    pub kernel_applied: Option<Vec<f64>>,
    /// Output-size formula per axis.
    pub formula: Vec<AxisFormula>,
    /// One step per output value, in C order of the output.
    pub steps: Vec<Step>,
    /// Groups (1 for pooling).
    pub groups: usize,
    /// The kernel is reversed (true convolution).
    pub flip: bool,
    /// Padding values (convolution; pooling has no padding mode).
    pub padding_mode: PadMode,
    /// Average pooling counts padding taps in the divisor.
    pub count_include_pad: bool,
    /// Pooling rounds the output size up.
    pub ceil_mode: bool,
    /// Global pooling (the window is the whole spatial extent).
    pub global: bool,
}

fn channels_first(layout: Layout) -> Result<()> {
    match layout {
        Layout::Nchw => Ok(()),
        Layout::Nhwc => {
            Err(Error::arg("layout", layout, "explain works on channels-first data (N, C, spatial…)"))
        }
    }
}

fn check_limit(arg: &str, what: String, n: usize, max: usize, tool: &str) -> Result<()> {
    if n > max {
        Err(Error::arg(
            arg,
            what,
            format!("explain shows at most {max} — use convkit {tool} for large problems"),
        ))
    } else {
        Ok(())
    }
}

/// The per-axis padded extents and the padded input with its padding marks.
struct Padded {
    shape: Vec<usize>,
    values: Vec<f64>,
    is_pad: Vec<bool>,
    /// Per axis and padded position: the input index it copies (`None`: the constant).
    sources: Vec<Vec<Option<usize>>>,
}

fn pad_input(
    x: &[f64],
    [batch, channels]: [usize; 2],
    axes: &[Axis],
    mode: PadMode,
    pad_constant: f64,
    limits: &Limits,
    tool: &str,
) -> Result<Padded> {
    let shape: Vec<usize> = axes.iter().map(|a| a.input + a.pad_begin + a.pad_end).collect();
    let mut full = vec![batch, channels];
    full.extend(&shape);
    let total = checked_numel("padded input", &full)?;
    check_limit(
        "padding",
        format!("(padded input of shape {full:?}, {total} values)"),
        total,
        limits.max_padded,
        tool,
    )?;
    let sources: Vec<Vec<Option<usize>>> = axes
        .iter()
        .zip(&shape)
        .map(|(a, &len)| {
            (0..len).map(|p| pad_source(p as isize - a.pad_begin as isize, a.input, mode)).collect()
        })
        .collect();
    let in_sp: Vec<usize> = axes.iter().map(|a| a.input).collect();
    let plane_in: usize = in_sp.iter().product();
    let plane_pad: usize = shape.iter().product();
    let mut values = Vec::with_capacity(total);
    let mut is_pad = Vec::with_capacity(total);
    let mut pos = vec![0; shape.len()];
    for nc in 0..batch * channels {
        for q in 0..plane_pad {
            unravel(q, &shape, &mut pos);
            let mut off = Some(0usize);
            let mut pad = false;
            for (a, &p) in pos.iter().enumerate() {
                pad |= p < axes[a].pad_begin || p >= axes[a].pad_begin + axes[a].input;
                off = off.zip(sources[a][p]).map(|(o, i)| o * in_sp[a] + i);
            }
            values.push(off.map_or(pad_constant, |o| x[nc * plane_in + o]));
            is_pad.push(pad);
        }
    }
    Ok(Padded { shape, values, is_pad, sources })
}

impl Padded {
    fn ravel(&self, pos: &[usize]) -> usize {
        pos.iter().zip(&self.shape).fold(0, |acc, (&p, &d)| acc * d + p)
    }
    fn source(&self, pos: &[usize]) -> Option<Vec<usize>> {
        pos.iter().enumerate().map(|(a, &p)| self.sources[a][p]).collect()
    }
}

fn formulas(axes: &[Axis], ceil_mode: bool) -> Vec<AxisFormula> {
    axes.iter()
        .enumerate()
        .map(|(i, a)| AxisFormula {
            axis: i,
            numbers: *a,
            ceil_mode,
            text: render::formula_text(a, ceil_mode),
        })
        .collect()
}

/// Trace a convolution of `x` (shape `(N, C, spatial…)`, channels first) with `w`
/// (`(K, C/groups, kernel…)`) plus an optional bias (one per output channel).
///
/// Errors: everything [`ConvProblem::new`] refuses, slices whose lengths do not match their
/// shapes, a bias of the wrong length, channels-last layout, and problems over `limits`.
pub fn explain_conv(
    desc: &ConvDesc,
    x: &[f64],
    x_shape: &[usize],
    w: &[f64],
    w_shape: &[usize],
    bias: Option<&[f64]>,
    limits: &Limits,
) -> Result<Explanation> {
    channels_first(desc.layout)?;
    let p = ConvProblem::new(desc, x_shape, w_shape)?;
    check_len("input", x.len(), x_shape)?;
    check_len("weight", w.len(), w_shape)?;
    check_bias(bias, p.out_channels)?;
    check_limit(
        "input",
        format!("(shape {x_shape:?}, {} values)", x.len()),
        x.len(),
        limits.max_input,
        "conv",
    )?;
    check_limit(
        "weight",
        format!("(shape {w_shape:?}, {} values)", w.len()),
        w.len(),
        limits.max_weight,
        "conv",
    )?;
    let pad = pad_input(
        x,
        [p.batch, p.in_channels],
        &p.axes,
        p.padding_mode,
        pad_value(p.padding_mode),
        limits,
        "conv",
    )?;
    let out_shape = p.output_shape();
    let outs = checked_numel("output", &out_shape)?;
    check_limit(
        "input",
        format!("(output shape {out_shape:?}, {outs} steps)"),
        outs,
        limits.max_output,
        "conv",
    )?;
    let cg = p.in_channels / p.groups;
    let kg = p.out_channels / p.groups;
    let kernel = p.kernel();
    let taps: usize = kernel.iter().product();
    let terms = outs.saturating_mul(cg).saturating_mul(taps);
    check_limit("input", format!("({terms} products in all)"), terms, limits.max_terms, "conv")?;

    let plane_pad: usize = pad.shape.iter().product();
    let rank = kernel.len();
    let weight_index = |j: &[usize]| -> Vec<usize> {
        j.iter().zip(&kernel).map(|(&t, &k)| if p.flip { k - 1 - t } else { t }).collect()
    };
    let ravel_k = |t: &[usize]| t.iter().zip(&kernel).fold(0, |acc, (&i, &d)| acc * d + i);
    let mut kernel_applied = Vec::with_capacity(w.len());
    let mut j = vec![0; rank];
    for row in 0..p.out_channels * cg {
        for t in 0..taps {
            unravel(t, &kernel, &mut j);
            kernel_applied.push(w[row * taps + ravel_k(&weight_index(&j))]);
        }
    }
    let out_sp = p.output_spatial();
    let plane_out: usize = out_sp.iter().product();
    let mut steps = Vec::with_capacity(outs);
    let mut o = vec![0; rank];
    for n in 0..p.batch {
        for k in 0..p.out_channels {
            let g = k / kg;
            for op in 0..plane_out {
                unravel(op, &out_sp, &mut o);
                let mut terms = Vec::with_capacity(cg * taps);
                let mut sum = 0.0;
                for ci in 0..cg {
                    let c = g * cg + ci;
                    for t in 0..taps {
                        unravel(t, &kernel, &mut j);
                        let pos: Vec<usize> =
                            (0..rank).map(|a| o[a] * p.axes[a].stride + j[a] * p.axes[a].dilation).collect();
                        let q = (n * p.in_channels + c) * plane_pad + pad.ravel(&pos);
                        let xv = pad.values[q];
                        let wv = kernel_applied[(k * cg + ci) * taps + t];
                        sum += xv * wv;
                        terms.push(Term {
                            c,
                            tap: j.clone(),
                            weight_tap: Some(weight_index(&j)),
                            source: if pad.is_pad[q] { None } else { pad.source(&pos) },
                            reads: pad.source(&pos),
                            padded: pos,
                            x: xv,
                            w: Some(wv),
                            product: Some(xv * wv),
                        });
                    }
                }
                let b = bias.map(|b| b[k]);
                steps.push(Step {
                    n,
                    k,
                    out: o.clone(),
                    terms,
                    sum: Some(sum),
                    bias: b,
                    divisor: None,
                    argmax: None,
                    value: sum + b.unwrap_or(0.0),
                });
            }
        }
    }
    Ok(Explanation {
        op: Op::Conv,
        input_shape: x_shape.to_vec(),
        weight_shape: Some(w_shape.to_vec()),
        output_shape: out_shape,
        input: x.to_vec(),
        weight: Some(w.to_vec()),
        bias: bias.map(<[f64]>::to_vec),
        output: steps.iter().map(|s| s.value).collect(),
        formula: formulas(&p.axes, false),
        axes: p.axes,
        padded_shape: pad.shape,
        padded: pad.values,
        padded_is_pad: pad.is_pad,
        kernel_applied: Some(kernel_applied),
        steps,
        groups: p.groups,
        flip: p.flip,
        padding_mode: p.padding_mode,
        count_include_pad: false,
        ceil_mode: false,
        global: false,
    })
}

/// Trace a pooling of `x` (shape `(N, C, spatial…)`, channels first).
///
/// Max pooling: padding never wins; a window lying wholly in the padding gives `f64::MIN`, as
/// the reference does. Average pooling divides by the taps inside input + padding or inside the
/// input only, following `desc.count_include_pad`; taps of a ceil-mode window that overhang the
/// padded input are not terms.
pub fn explain_pool(desc: &PoolDesc, x: &[f64], x_shape: &[usize], limits: &Limits) -> Result<Explanation> {
    channels_first(desc.layout)?;
    let p = PoolProblem::new(desc, x_shape)?;
    check_len("input", x.len(), x_shape)?;
    check_limit(
        "input",
        format!("(shape {x_shape:?}, {} values)", x.len()),
        x.len(),
        limits.max_input,
        "pool",
    )?;
    let max = p.kind == PoolKind::Max;
    let padv = if max { f64::NEG_INFINITY } else { 0.0 };
    let pad = pad_input(x, [p.batch, p.channels], &p.axes, PadMode::Zeros, padv, limits, "pool")?;
    let out_shape = p.output_shape();
    let outs = checked_numel("output", &out_shape)?;
    check_limit(
        "input",
        format!("(output shape {out_shape:?}, {outs} steps)"),
        outs,
        limits.max_output,
        "pool",
    )?;
    let kernel: Vec<usize> = p.axes.iter().map(|a| a.kernel).collect();
    let taps = kernel.iter().try_fold(1usize, |a, &k| a.checked_mul(k)).unwrap_or(usize::MAX);
    let terms = outs.saturating_mul(taps);
    check_limit("input", format!("({terms} window taps in all)"), terms, limits.max_terms, "pool")?;
    let plane_pad: usize = pad.shape.iter().product();
    let rank = kernel.len();
    let out_sp: Vec<usize> = p.axes.iter().map(|a| a.output).collect();
    let plane_out: usize = out_sp.iter().product();
    let mut steps = Vec::with_capacity(outs);
    let (mut o, mut j) = (vec![0; rank], vec![0; rank]);
    for n in 0..p.batch {
        for c in 0..p.channels {
            for op in 0..plane_out {
                unravel(op, &out_sp, &mut o);
                let mut terms = Vec::new();
                for t in 0..taps {
                    unravel(t, &kernel, &mut j);
                    let pos: Vec<usize> =
                        (0..rank).map(|a| o[a] * p.axes[a].stride + j[a] * p.axes[a].dilation).collect();
                    // A ceil-mode window may overhang the padded input: those taps read nothing.
                    if pos.iter().zip(&pad.shape).any(|(&q, &len)| q >= len) {
                        continue;
                    }
                    let q = (n * p.channels + c) * plane_pad + pad.ravel(&pos);
                    terms.push(Term {
                        c,
                        tap: j.clone(),
                        weight_tap: None,
                        source: if pad.is_pad[q] { None } else { pad.source(&pos) },
                        reads: pad.source(&pos),
                        padded: pos,
                        x: pad.values[q],
                        w: None,
                        product: None,
                    });
                }
                let inside = || terms.iter().enumerate().filter(|(_, t)| t.source.is_some());
                let step = if max {
                    // The reference's rule: the first maximum in scan order; NaN wins and stays.
                    let mut best: Option<(usize, f64)> = None;
                    for (i, t) in inside() {
                        match best {
                            None => best = Some((i, t.x)),
                            Some((_, b)) if !b.is_nan() && (t.x > b || t.x.is_nan()) => best = Some((i, t.x)),
                            _ => {}
                        }
                    }
                    Step {
                        n,
                        k: c,
                        out: o.clone(),
                        terms,
                        sum: None,
                        bias: None,
                        divisor: None,
                        argmax: best.map(|b| b.0),
                        value: best.map_or(f64::MIN, |b| b.1),
                    }
                } else {
                    let sum: f64 = inside().map(|(_, t)| t.x).sum();
                    let count = if p.count_include_pad { terms.len() } else { inside().count() };
                    let divisor = count as f64;
                    Step {
                        n,
                        k: c,
                        out: o.clone(),
                        terms,
                        sum: Some(sum),
                        bias: None,
                        divisor: Some(divisor),
                        argmax: None,
                        value: sum / divisor,
                    }
                };
                steps.push(step);
            }
        }
    }
    let global = matches!(desc.kind, PoolKind::GlobalMax | PoolKind::GlobalAvg);
    let ceil_mode = desc.ceil_mode && !global;
    Ok(Explanation {
        op: if max { Op::MaxPool } else { Op::AvgPool },
        input_shape: x_shape.to_vec(),
        weight_shape: None,
        output_shape: out_shape,
        input: x.to_vec(),
        weight: None,
        bias: None,
        output: steps.iter().map(|s| s.value).collect(),
        formula: formulas(&p.axes, ceil_mode),
        axes: p.axes,
        padded_shape: pad.shape,
        padded: pad.values,
        padded_is_pad: pad.is_pad,
        kernel_applied: None,
        steps,
        groups: 1,
        flip: false,
        padding_mode: PadMode::Zeros,
        count_include_pad: p.count_include_pad,
        ceil_mode,
        global,
    })
}
