//! Layer stacks: a compact grammar for a stack of convolution, pooling, batch-norm, activation
//! and residual layers ([`parse`]), its analysis for an input shape ([`analyse`]: output shape,
//! parameters, multiply-adds and receptive field per layer, every shape from [`crate::shape`]),
//! built-in trunks of well-known networks ([`model`]), and an independent check of the receptive
//! field by pushing a gradient through the actual operations ([`measure_field`]).
//!
//! ```
//! use convkit::stack::{analyse, parse};
//! let layers = parse("conv 64 k7 s2 p3; maxpool k3 s2 p1").unwrap();
//! let a = analyse(&layers, &[1, 3, 224, 224]).unwrap();
//! assert_eq!(a.output, vec![1, 64, 56, 56]);
//! assert_eq!(a.params, 9408);
//! let rf = a.field.unwrap();
//! assert_eq!((rf[0].size, rf[0].jump), (11, 4));
//! ```

use crate::desc::{ConvDesc, ConvTransposeDesc, Padding, PoolDesc, PoolKind};
use crate::error::{Error, Result};
use crate::shape::{Axis, ConvProblem, ConvTransposeProblem, LayerAxis, PoolProblem, ReceptiveField};

/// The grammar, as printed by `convkit shape --help`.
pub const GRAMMAR: &str = "\
Layers are separated by ';' (or new lines). Each layer is a kind followed by tokens:
  conv OUT k.. [s..] [p..] [d..] [g.. | dw] [bias]   convolution to OUT channels (PyTorch Conv)
  convT OUT k.. [s..] [p..] [op..] [d..] [g.. | dw] [bias]   transposed convolution
  maxpool k.. [s..] [p..] [d..] [ceil]               max pooling (stride defaults to the kernel)
  avgpool k.. [s..] [p..] [d..] [ceil]               average pooling
  gmaxpool | gavgpool                                global max / average pooling
  bn                                                 batch norm: 2*C parameters (weight, bias)
  relu | relu6                                       activations: no parameters, shape kept
  res( MAIN | SHORTCUT )                             residual block: the sum of two branches, each
                                                     a ';'-separated stack; an empty SHORTCUT is
                                                     the identity
Values: k3 (every axis) or k3x1 (one per spatial axis); likewise s (stride), d (dilation),
op (output padding). Padding p1, p1x0, or 2 x axes values for all begins then all ends
(p0x0x1x1), or a name: pvalid | psame | psame-lower | pfull. g4 = 4 groups; dw = depthwise
(groups = input channels; OUT defaults to the input channels). Convolutions have no bias unless
the token 'bias' is given ('nobias' is accepted too). Multiply-adds count convolutions only.";

/// Number of groups of a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Groups {
    /// A fixed count.
    Count(usize),
    /// As many groups as input channels (depthwise).
    Depthwise,
}

/// What a layer does, with its options as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Convolution.
    Conv {
        /// Output channels (`None`: as many as input channels, depthwise only).
        out: Option<usize>,
        /// Kernel size (one value or one per axis).
        kernel: Vec<usize>,
        /// Stride.
        stride: Vec<usize>,
        /// Dilation.
        dilation: Vec<usize>,
        /// Padding.
        padding: Padding,
        /// Groups.
        groups: Groups,
        /// Whether there is a bias.
        bias: bool,
    },
    /// Transposed convolution.
    ConvTranspose {
        /// Output channels (`None`: as many as input channels, depthwise only).
        out: Option<usize>,
        /// Kernel size.
        kernel: Vec<usize>,
        /// Stride.
        stride: Vec<usize>,
        /// Dilation.
        dilation: Vec<usize>,
        /// Padding (cropped from the output).
        padding: Padding,
        /// Output padding.
        output_padding: Vec<usize>,
        /// Groups.
        groups: Groups,
        /// Whether there is a bias.
        bias: bool,
    },
    /// Pooling (global kinds ignore the window options).
    Pool {
        /// Reduction.
        kind: PoolKind,
        /// Window size.
        kernel: Vec<usize>,
        /// Stride (empty: the kernel).
        stride: Vec<usize>,
        /// Dilation.
        dilation: Vec<usize>,
        /// Padding.
        padding: Padding,
        /// Ceil mode.
        ceil: bool,
    },
    /// Batch normalisation: `2·C` parameters.
    BatchNorm,
    /// An activation (`relu`, `relu6`): no parameters.
    Activation,
    /// The sum of two branches fed the same input.
    Residual {
        /// The main branch.
        main: Vec<Layer>,
        /// The shortcut branch (empty: identity).
        shortcut: Vec<Layer>,
    },
}

/// One layer of a stack: its text as written and what it does.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// The layer's text, trimmed.
    pub text: String,
    /// The operation.
    pub op: Op,
}

impl Layer {
    /// Short name of the operation: `conv`, `convT`, `maxpool`, `avgpool`, `gmaxpool`,
    /// `gavgpool`, `bn`, `relu`, `relu6` or `res`.
    pub fn kind(&self) -> &str {
        match &self.op {
            Op::Conv { .. } => "conv",
            Op::ConvTranspose { .. } => "convT",
            Op::Pool { kind, .. } => match kind {
                PoolKind::Max => "maxpool",
                PoolKind::Avg => "avgpool",
                PoolKind::GlobalMax => "gmaxpool",
                PoolKind::GlobalAvg => "gavgpool",
            },
            Op::BatchNorm => "bn",
            Op::Activation => self.text.split_whitespace().next().unwrap_or("relu"),
            Op::Residual { .. } => "res",
        }
    }
}

fn quoted(text: &str) -> String {
    format!("'{text}'")
}

/// An error about one layer: `invalid layer 3 'conv 64 k3': <reason>`.
fn layer_err(place: &str, text: &str, reason: impl ToString) -> Error {
    Error::arg(place, quoted(text), reason.to_string())
}

/// Split at `sep` where no parenthesis is open.
fn split_top(s: &str, seps: &[char]) -> std::result::Result<Vec<String>, String> {
    let (mut depth, mut cur, mut out) = (0usize, String::new(), Vec::new());
    for ch in s.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1).ok_or("a ')' closes no '('")?,
            c if depth == 0 && seps.contains(&c) => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    if depth != 0 {
        return Err("a '(' is never closed".into());
    }
    out.push(cur);
    Ok(out)
}

/// Parse a stack in the grammar of [`GRAMMAR`]. Errors name the layer (1-based) and its text.
///
/// ```
/// let layers = convkit::stack::parse("conv 8 k3x1 p1x0; bn; relu; res(conv 8 k3 p1 | )").unwrap();
/// assert_eq!(layers.len(), 4);
/// assert_eq!(layers[3].kind(), "res");
/// assert!(convkit::stack::parse("conv 8 k0").is_err());
/// ```
pub fn parse(text: &str) -> Result<Vec<Layer>> {
    parse_in(text, "layer ")
}

fn parse_in(text: &str, prefix: &str) -> Result<Vec<Layer>> {
    let parts = split_top(text, &[';', '\n']).map_err(|r| Error::arg("layers", quoted(text.trim()), r))?;
    let mut layers = Vec::new();
    for part in parts {
        let t = part.trim();
        if t.is_empty() {
            continue;
        }
        let place = format!("{prefix}{}", layers.len() + 1);
        layers.push(parse_layer(t, &place)?);
    }
    Ok(layers)
}

fn parse_layer(t: &str, place: &str) -> Result<Layer> {
    let err = |r: String| layer_err(place, t, r);
    let head: String = t.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
    let kind = head.to_ascii_lowercase();
    if kind == "res" {
        let rest = t[head.len()..].trim_start();
        let inner = rest
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(|| err("expected res( MAIN | SHORTCUT )".into()))?;
        let branches = split_top(inner, &['|']).map_err(err)?;
        if branches.len() > 2 {
            return Err(err("a residual block has two branches, separated by one '|'".into()));
        }
        let main = parse_in(&branches[0], &format!("{place}, main branch layer "))?;
        if main.is_empty() {
            return Err(err("the main branch is empty".into()));
        }
        let shortcut = match branches.get(1) {
            Some(b) => parse_in(b, &format!("{place}, shortcut layer "))?,
            None => Vec::new(),
        };
        return Ok(Layer { text: t.to_string(), op: Op::Residual { main, shortcut } });
    }
    let mut tokens = t.split_whitespace();
    tokens.next();
    let mut o = Opts::default();
    for tok in tokens {
        o.take(tok).map_err(err)?;
    }
    let allowed: &[&str] = match kind.as_str() {
        "conv" => &["out", "k", "s", "p", "d", "g", "bias"],
        "convt" | "convtranspose" => &["out", "k", "s", "p", "d", "g", "bias", "op"],
        "maxpool" | "avgpool" => &["k", "s", "p", "d", "ceil"],
        "gmaxpool" | "gavgpool" | "bn" | "relu" | "relu6" => &[],
        _ => {
            return Err(err(format!(
                "unknown layer kind '{head}': expected conv, convT, maxpool, avgpool, gmaxpool, gavgpool, \
                 bn, relu, relu6 or res(…)"
            )))
        }
    };
    if let Some(bad) = o.seen.iter().find(|s| !allowed.contains(&s.0.as_str())) {
        return Err(err(format!("'{}' does not apply to {head}", bad.1)));
    }
    let need_kernel = || o.k.clone().ok_or_else(|| err(format!("{head} needs a kernel size, e.g. k3")));
    let out = || {
        if o.out.is_none() && o.groups != Some(Groups::Depthwise) {
            Err(err(format!("{head} needs the number of output channels, e.g. {head} 64 k3")))
        } else {
            Ok(o.out)
        }
    };
    let op = match kind.as_str() {
        "conv" => Op::Conv {
            out: out()?,
            kernel: need_kernel()?,
            stride: o.s.clone().unwrap_or_else(|| vec![1]),
            dilation: o.d.clone().unwrap_or_else(|| vec![1]),
            padding: o.p.clone().unwrap_or_default(),
            groups: o.groups.unwrap_or(Groups::Count(1)),
            bias: o.bias.unwrap_or(false),
        },
        "convt" | "convtranspose" => Op::ConvTranspose {
            out: out()?,
            kernel: need_kernel()?,
            stride: o.s.clone().unwrap_or_else(|| vec![1]),
            dilation: o.d.clone().unwrap_or_else(|| vec![1]),
            padding: o.p.clone().unwrap_or_default(),
            output_padding: o.op.clone().unwrap_or_else(|| vec![0]),
            groups: o.groups.unwrap_or(Groups::Count(1)),
            bias: o.bias.unwrap_or(false),
        },
        "maxpool" | "avgpool" | "gmaxpool" | "gavgpool" => {
            let global = kind.starts_with('g');
            Op::Pool {
                kind: match kind.as_str() {
                    "maxpool" => PoolKind::Max,
                    "avgpool" => PoolKind::Avg,
                    "gmaxpool" => PoolKind::GlobalMax,
                    _ => PoolKind::GlobalAvg,
                },
                kernel: if global { vec![1] } else { need_kernel()? },
                stride: o.s.clone().unwrap_or_default(),
                dilation: o.d.clone().unwrap_or_else(|| vec![1]),
                padding: o.p.clone().unwrap_or_default(),
                ceil: o.ceil,
            }
        }
        "bn" => Op::BatchNorm,
        _ => Op::Activation,
    };
    Ok(Layer { text: t.to_string(), op })
}

/// Options of one layer as the tokens give them.
#[derive(Default)]
struct Opts {
    out: Option<usize>,
    k: Option<Vec<usize>>,
    s: Option<Vec<usize>>,
    d: Option<Vec<usize>>,
    op: Option<Vec<usize>>,
    p: Option<Padding>,
    groups: Option<Groups>,
    bias: Option<bool>,
    ceil: bool,
    /// (option class, token) of every token, to refuse repeats and misplaced options.
    seen: Vec<(String, String)>,
}

fn num(tok: &str, v: &str, min: usize) -> std::result::Result<usize, String> {
    let n: usize = v.parse().map_err(|_| format!("'{tok}': expected a non-negative integer, not '{v}'"))?;
    if n < min {
        return Err(format!("'{tok}': {n} is below the minimum {min}"));
    }
    Ok(n)
}

fn nums(tok: &str, v: &str, min: usize) -> std::result::Result<Vec<usize>, String> {
    if v.is_empty() {
        return Err(format!("'{tok}': expected a value after '{}'", tok.trim_end_matches(v)));
    }
    v.split('x').map(|x| num(tok, x, min)).collect()
}

impl Opts {
    fn take(&mut self, tok: &str) -> std::result::Result<(), String> {
        let lower = tok.to_ascii_lowercase();
        let class = if lower.chars().all(|c| c.is_ascii_digit()) {
            self.out = Some(num(tok, &lower, 1)?);
            "out"
        } else if lower == "bias" || lower == "nobias" {
            self.bias = Some(lower == "bias");
            "bias"
        } else if lower == "ceil" {
            self.ceil = true;
            "ceil"
        } else if lower == "dw" {
            self.groups = Some(Groups::Depthwise);
            "g"
        } else if let Some(v) = lower.strip_prefix("op") {
            self.op = Some(nums(tok, v, 0)?);
            "op"
        } else if let Some(v) = lower.strip_prefix('k') {
            self.k = Some(nums(tok, v, 1)?);
            "k"
        } else if let Some(v) = lower.strip_prefix('s') {
            self.s = Some(nums(tok, v, 1)?);
            "s"
        } else if let Some(v) = lower.strip_prefix('d') {
            self.d = Some(nums(tok, v, 1)?);
            "d"
        } else if let Some(v) = lower.strip_prefix('g') {
            self.groups = Some(Groups::Count(num(tok, v, 1)?));
            "g"
        } else if let Some(v) = lower.strip_prefix('p') {
            let v = v.strip_prefix('=').unwrap_or(v);
            self.p = Some(match v {
                "valid" => Padding::Valid,
                "same" => Padding::Same,
                "same-lower" => Padding::SameLower,
                "full" => Padding::Full,
                _ => Padding::Explicit(nums(tok, v, 0).map_err(|e| {
                    format!("{e} (padding is p1, p1x0, begins then ends, or pvalid/psame/psame-lower/pfull)")
                })?),
            });
            "p"
        } else {
            return Err(format!(
                "unknown token '{tok}': expected OUT, k, s, p, d, g, dw, op, bias, nobias or ceil"
            ));
        };
        if let Some(prev) = self.seen.iter().find(|s| s.0 == class) {
            return Err(format!("'{tok}' repeats '{}'", prev.1));
        }
        self.seen.push((class.to_string(), tok.to_string()));
        Ok(())
    }
}

/// One analysed layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 1-based position in its stack (or branch).
    pub index: usize,
    /// The layer's text.
    pub text: String,
    /// Short operation name ([`Layer::kind`]).
    pub op: String,
    /// Output shape `(N, C, spatial…)`.
    pub output: Vec<usize>,
    /// Learnable parameters (weights and biases; batch-norm weight and bias).
    pub params: u64,
    /// Multiply-adds of convolutions (0 for every other layer).
    pub macs: u64,
    /// Receptive field of one output in the stack's input, per spatial axis; `None` from the
    /// first strided transposed convolution on (its outputs see different numbers of inputs).
    pub field: Option<Vec<ReceptiveField>>,
    /// Per spatial axis, the window this layer slides over its own input (convolution and
    /// pooling only; global pooling is a window over the whole extent).
    pub axes: Vec<Axis>,
    /// Pooling in ceil mode.
    pub ceil: bool,
    /// A residual block's branches: (main, shortcut).
    pub branches: Option<(Vec<Row>, Vec<Row>)>,
}

/// A stack analysed for one input shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// The input shape.
    pub input: Vec<usize>,
    /// One row per top-level layer.
    pub rows: Vec<Row>,
    /// Total parameters.
    pub params: u64,
    /// Total multiply-adds.
    pub macs: u64,
    /// The stack's output shape.
    pub output: Vec<usize>,
    /// Receptive field of one final output, per spatial axis (see [`Row::field`]).
    pub field: Option<Vec<ReceptiveField>>,
}

/// Analyse `layers` for an input of shape `(N, C, spatial…)` with 1 to 3 spatial axes.
pub fn analyse(layers: &[Layer], input: &[usize]) -> Result<Analysis> {
    if !(3..=5).contains(&input.len()) {
        return Err(Error::shape("input", input, "expected N,C and 1 to 3 spatial sizes"));
    }
    if input.contains(&0) {
        return Err(Error::shape("input", input, "every size must be at least 1"));
    }
    let start = vec![ReceptiveField::INPUT; input.len() - 2];
    let (rows, output, field) = run(layers, input, Some(start), "layer ")?;
    let sum = |f: fn(&Row) -> u64| {
        rows.iter().try_fold(0u64, |a, r| a.checked_add(f(r))).ok_or_else(|| Error::too_large("total", input))
    };
    Ok(Analysis {
        input: input.to_vec(),
        params: sum(|r| r.params)?,
        macs: sum(|r| r.macs)?,
        rows,
        output,
        field,
    })
}

type Fields = Option<Vec<ReceptiveField>>;

fn run(
    layers: &[Layer],
    input: &[usize],
    mut field: Fields,
    prefix: &str,
) -> Result<(Vec<Row>, Vec<usize>, Fields)> {
    let mut shape = input.to_vec();
    let mut rows = Vec::with_capacity(layers.len());
    for (i, l) in layers.iter().enumerate() {
        let place = format!("{prefix}{}", i + 1);
        let row = if let Op::Residual { main, shortcut } = &l.op {
            let (m_rows, m_out, m_field) =
                run(main, &shape, field.clone(), &format!("{place}, main branch layer "))?;
            let (s_rows, s_out, s_field) =
                run(shortcut, &shape, field.clone(), &format!("{place}, shortcut layer "))?;
            if m_out != s_out {
                return Err(layer_err(
                    &place,
                    &l.text,
                    format!("the branches do not add up: main gives {m_out:?}, shortcut gives {s_out:?}"),
                ));
            }
            let total = |rs: &[Row], f: fn(&Row) -> u64| rs.iter().try_fold(0u64, |a, r| a.checked_add(f(r)));
            let params = total(&m_rows, |r| r.params)
                .zip(total(&s_rows, |r| r.params))
                .and_then(|(a, b)| a.checked_add(b));
            let macs = total(&m_rows, |r| r.macs)
                .zip(total(&s_rows, |r| r.macs))
                .and_then(|(a, b)| a.checked_add(b));
            let too_large = || layer_err(&place, &l.text, "the parameter or multiply-add count overflows");
            Row {
                index: i + 1,
                text: l.text.clone(),
                op: l.kind().to_string(),
                output: m_out,
                params: params.ok_or_else(too_large)?,
                macs: macs.ok_or_else(too_large)?,
                field: union(m_field, s_field),
                axes: Vec::new(),
                ceil: false,
                branches: Some((m_rows, s_rows)),
            }
        } else {
            step(l, &shape, &field).map_err(|e| layer_err(&place, &l.text, e)).map(|mut r| {
                r.index = i + 1;
                r
            })?
        };
        shape = row.output.clone();
        field = row.field.clone();
        rows.push(row);
    }
    Ok((rows, shape, field))
}

/// The field of a sum of two branches: the union of both branches' fields of the first output,
/// when their jumps agree (they share the input, so the union is what one output sees).
fn union(a: Fields, b: Fields) -> Fields {
    let (a, b) = (a?, b?);
    a.iter()
        .zip(&b)
        .map(|(m, s)| {
            if m.jump != s.jump {
                return None;
            }
            let half = |f: &ReceptiveField| (f.size as f64 - 1.0) / 2.0;
            let lo = (m.start - half(m)).min(s.start - half(s));
            let hi = (m.start + half(m)).max(s.start + half(s));
            Some(ReceptiveField { size: (hi - lo) as u64 + 1, jump: m.jump, start: (lo + hi) / 2.0 })
        })
        .collect()
}

fn layer_axes(axes: &[Axis]) -> Vec<LayerAxis> {
    axes.iter()
        .map(|a| LayerAxis {
            kernel: a.kernel,
            stride: a.stride,
            dilation: a.dilation,
            pad_begin: a.pad_begin,
        })
        .collect()
}

fn advance(field: &Fields, axes: &[LayerAxis]) -> Fields {
    field.as_ref().map(|f| f.iter().zip(axes).map(|(r, l)| r.then(l)).collect())
}

fn groups_for(g: Groups, c: usize) -> usize {
    match g {
        Groups::Count(n) => n,
        Groups::Depthwise => c,
    }
}

/// One non-residual layer; errors are the shape layer's, wrapped by the caller.
fn step(l: &Layer, shape: &[usize], field: &Fields) -> Result<Row> {
    let c = shape[1];
    let overflow = || Error::too_large("parameter or multiply-add count of a layer with output", shape);
    let mut row = Row {
        index: 0,
        text: l.text.clone(),
        op: l.kind().to_string(),
        output: shape.to_vec(),
        params: 0,
        macs: 0,
        field: field.clone(),
        axes: Vec::new(),
        ceil: false,
        branches: None,
    };
    let rank = shape.len() - 2;
    let kernel_of = |k: &[usize]| crate::shape::per_axis("kernel", k, rank, 1, 1);
    match &l.op {
        Op::Conv { out, kernel, stride, dilation, padding, groups, bias } => {
            let g = groups_for(*groups, c);
            let mut w = vec![out.unwrap_or(c), c / g.max(1)];
            w.extend(kernel_of(kernel)?);
            let desc = ConvDesc::new().stride(stride).dilation(dilation).padding(padding.clone()).groups(g);
            let p = ConvProblem::new(&desc, shape, &w)?;
            row.output = p.output_shape();
            row.params = p.checked_params(*bias).ok_or_else(overflow)?;
            row.macs = p.checked_macs().ok_or_else(overflow)?;
            row.field = advance(field, &layer_axes(&p.axes));
            row.axes = p.axes;
        }
        Op::ConvTranspose { out, kernel, stride, dilation, padding, output_padding, groups, bias } => {
            let g = groups_for(*groups, c);
            let k = out.unwrap_or(c);
            if g == 0 || !k.is_multiple_of(g) {
                return Err(Error::arg("groups", g, format!("must divide the {k} output channels")));
            }
            let mut w = vec![c, k / g];
            w.extend(kernel_of(kernel)?);
            let desc = ConvTransposeDesc::new()
                .stride(stride)
                .dilation(dilation)
                .padding(padding.clone())
                .output_padding(output_padding)
                .groups(g);
            let p = ConvTransposeProblem::new(&desc, shape, &w)?;
            row.output = p.output_shape();
            row.params = p.checked_params(*bias).ok_or_else(overflow)?;
            row.macs = p.checked_macs().ok_or_else(overflow)?;
            // At stride 1 a transposed convolution is a convolution with the kernel reversed and
            // padding eff−1−p; at larger strides outputs see different numbers of inputs.
            let as_conv: Option<Vec<LayerAxis>> = p
                .axes
                .iter()
                .map(|a| {
                    let reach = a.effective_kernel() - 1;
                    // `then`, not `then_some`: the subtraction must only run when it cannot
                    // underflow (found by fuzz/shape_grammar).
                    (a.stride == 1 && a.pad_begin <= reach).then(|| LayerAxis {
                        kernel: a.kernel,
                        stride: 1,
                        dilation: a.dilation,
                        pad_begin: reach - a.pad_begin,
                    })
                })
                .collect();
            row.field = as_conv.and_then(|axes| advance(field, &axes));
            row.axes = p.axes;
        }
        Op::Pool { kind, kernel, stride, dilation, padding, ceil } => {
            let mut d = PoolDesc::new(*kind)
                .kernel(kernel)
                .dilation(dilation)
                .padding(padding.clone())
                .ceil_mode(*ceil);
            if !stride.is_empty() {
                d = d.stride(stride);
            }
            let p = PoolProblem::new(&d, shape)?;
            row.output = p.output_shape();
            row.field = advance(field, &layer_axes(&p.axes));
            row.axes = p.axes;
            row.ceil = *ceil;
        }
        Op::BatchNorm => row.params = (c as u64).checked_mul(2).ok_or_else(overflow)?,
        Op::Activation => {}
        Op::Residual { .. } => unreachable!("residual blocks are handled by run"),
    }
    Ok(row)
}

/// The built-in trunks: name and what it is.
pub const MODELS: &[(&str, &str)] = &[
    ("alexnet", "torchvision AlexNet `features`: 5 convolutions with bias, 3 max pools"),
    ("vgg16", "torchvision VGG-16 `features`: 13 3x3 convolutions with bias, 5 max pools"),
    ("resnet18", "torchvision ResNet-18 without avgpool/fc: stem and 8 basic blocks"),
    ("resnet50", "torchvision ResNet-50 (v1.5, stride on the 3x3) without avgpool/fc: 16 bottlenecks"),
    ("mobilenetv2", "torchvision MobileNetV2 `features`: 17 inverted residuals and the 1x1 conv to 1280"),
];

/// The stack text of a built-in model (see [`MODELS`]), following torchvision's definitions.
///
/// ```
/// let text = convkit::stack::model("vgg16").unwrap();
/// let a = convkit::stack::analyse(&convkit::stack::parse(&text).unwrap(), &[1, 3, 224, 224]).unwrap();
/// assert_eq!(a.output, vec![1, 512, 7, 7]);
/// ```
pub fn model(name: &str) -> Option<String> {
    let mut l: Vec<String> = Vec::new();
    match name.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
        "alexnet" => {
            l.extend(
                [
                    "conv 64 k11 s4 p2 bias",
                    "relu",
                    "maxpool k3 s2",
                    "conv 192 k5 p2 bias",
                    "relu",
                    "maxpool k3 s2",
                    "conv 384 k3 p1 bias",
                    "relu",
                    "conv 256 k3 p1 bias",
                    "relu",
                    "conv 256 k3 p1 bias",
                    "relu",
                    "maxpool k3 s2",
                ]
                .map(String::from),
            );
        }
        "vgg16" => {
            for (n, c) in [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)] {
                for _ in 0..n {
                    l.push(format!("conv {c} k3 p1 bias"));
                    l.push("relu".into());
                }
                l.push("maxpool k2 s2".into());
            }
        }
        "resnet18" | "resnet50" => {
            let bottleneck = name.ends_with("50");
            let (blocks, expansion) = if bottleneck { ([3, 4, 6, 3], 4) } else { ([2, 2, 2, 2], 1) };
            l.extend(["conv 64 k7 s2 p3", "bn", "relu", "maxpool k3 s2 p1"].map(String::from));
            let mut inplanes = 64;
            for (stage, &n) in blocks.iter().enumerate() {
                let planes = 64 << stage;
                for b in 0..n {
                    let s = if stage > 0 && b == 0 { 2 } else { 1 };
                    let out = planes * expansion;
                    let main = if bottleneck {
                        format!("conv {planes} k1; bn; relu; conv {planes} k3 s{s} p1; bn; relu; conv {out} k1; bn")
                    } else {
                        format!("conv {planes} k3 s{s} p1; bn; relu; conv {planes} k3 p1; bn")
                    };
                    let short = if s != 1 || inplanes != out {
                        format!(" conv {out} k1 s{s}; bn")
                    } else {
                        String::new()
                    };
                    l.push(format!("res({main} |{short})"));
                    l.push("relu".into());
                    inplanes = out;
                }
            }
        }
        "mobilenetv2" => {
            l.extend(["conv 32 k3 s2 p1", "bn", "relu6"].map(String::from));
            let mut inp = 32;
            for (t, c, n, s) in [
                (1, 16, 1, 1),
                (6, 24, 2, 2),
                (6, 32, 3, 2),
                (6, 64, 4, 2),
                (6, 96, 3, 1),
                (6, 160, 3, 2),
                (6, 320, 1, 1),
            ] {
                for i in 0..n {
                    let stride = if i == 0 { s } else { 1 };
                    let hidden = inp * t;
                    let mut b = Vec::new();
                    if t != 1 {
                        b.push(format!("conv {hidden} k1; bn; relu6"));
                    }
                    b.push(format!("conv {hidden} k3 s{stride} p1 dw; bn; relu6; conv {c} k1; bn"));
                    let body = b.join("; ");
                    if stride == 1 && inp == c {
                        l.push(format!("res({body} | )"));
                    } else {
                        l.extend(body.split("; ").map(String::from));
                    }
                    inp = c;
                }
            }
            l.extend(["conv 1280 k1", "bn", "relu6"].map(String::from));
        }
        _ => return None,
    }
    Some(l.join("; "))
}

/// A receptive field measured by back-propagation ([`measure_field`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeasuredField {
    /// Length of the 1-D input used.
    pub input_len: usize,
    /// The output position whose field was measured.
    pub output: usize,
    /// First and last input positions with a nonzero gradient.
    pub first: usize,
    /// See `first`.
    pub last: usize,
}

impl MeasuredField {
    /// Span `last − first + 1`.
    pub fn size(&self) -> u64 {
        (self.last - self.first + 1) as u64
    }
    /// Centre of the span.
    pub fn centre(&self) -> f64 {
        (self.first + self.last) as f64 / 2.0
    }
}

/// One layer of the 1-D, 1-channel copy of a stack along one axis.
enum Line {
    Conv(Axis),
    Pool(Axis, bool),
    Same,
    Sum(Vec<Line>, Vec<Line>),
}

fn lines(rows: &[Row], axis: usize) -> Option<Vec<Line>> {
    rows.iter()
        .map(|r| {
            Some(match (&r.branches, r.op.as_str()) {
                (Some((m, s)), _) => Line::Sum(lines(m, axis)?, lines(s, axis)?),
                (None, "conv") => Line::Conv(r.axes[axis]),
                (None, "convT") => return None,
                (None, _) if !r.axes.is_empty() => Line::Pool(r.axes[axis], r.ceil),
                _ => Line::Same,
            })
        })
        .collect()
}

fn line_desc(a: &Axis) -> (Padding, [usize; 1], [usize; 1], [usize; 1]) {
    (Padding::asymmetric(&[a.pad_begin], &[a.pad_end]), [a.kernel], [a.stride], [a.dilation])
}

fn pool_desc(a: &Axis, ceil: bool) -> PoolDesc {
    let (p, k, s, d) = line_desc(a);
    PoolDesc::new(PoolKind::Avg).kernel(k).stride(s).dilation(d).padding(p).ceil_mode(ceil)
}

fn conv_desc(a: &Axis) -> ConvDesc {
    let (p, _, s, d) = line_desc(a);
    ConvDesc::new().stride(s).dilation(d).padding(p)
}

/// Output length of a 1-D stack, through the same shape checks as the real layers.
fn line_len(ls: &[Line], n: usize) -> Result<usize> {
    ls.iter().try_fold(n, |n, l| {
        Ok(match l {
            Line::Conv(a) => ConvProblem::new(&conv_desc(a), &[1, 1, n], &[1, 1, a.kernel])?.axes[0].output,
            Line::Pool(a, ceil) => PoolProblem::new(&pool_desc(a, *ceil), &[1, 1, n])?.axes[0].output,
            Line::Same => n,
            Line::Sum(m, s) => {
                let (a, b) = (line_len(m, n)?, line_len(s, n)?);
                if a != b {
                    return Err(Error::arg("length", n, "the branches disagree"));
                }
                a
            }
        })
    })
}

/// Back-propagate `g` (the gradient at the stack's output) to its input of length `n`, with every
/// weight 1 and every pooling an average, so each position that can reach the output gets a
/// positive gradient and no other does.
fn line_back(ls: &[Line], n: usize, mut g: Vec<f64>) -> Result<Vec<f64>> {
    let mut lens = vec![n];
    for l in ls {
        lens.push(line_len(std::slice::from_ref(l), *lens.last().unwrap_or(&n))?);
    }
    for (i, l) in ls.iter().enumerate().rev() {
        let n = lens[i];
        let zeros = vec![0.0; n];
        g = match l {
            Line::Conv(a) => {
                let w = vec![1.0; a.kernel];
                let gy_shape = [1, 1, g.len()];
                crate::raw::conv_backward(
                    &zeros,
                    &[1, 1, n],
                    &w,
                    &[1, 1, a.kernel],
                    &g,
                    &gy_shape,
                    &conv_desc(a),
                )?
                .0
                .data
            }
            Line::Pool(a, ceil) => {
                crate::raw::pool_backward(&zeros, &[1, 1, n], &g, &[1, 1, g.len()], &pool_desc(a, *ceil))?
                    .data
            }
            Line::Same => g,
            Line::Sum(m, s) => {
                let a = line_back(m, n, g.clone())?;
                let b = line_back(s, n, g)?;
                a.iter().zip(&b).map(|(x, y)| x + y).collect()
            }
        };
    }
    Ok(g)
}

/// Measure the receptive field along spatial `axis` independently of the recurrence behind
/// [`Row::field`]: build a 1-D, 1-channel copy of the analysed stack (same kernel, stride,
/// dilation and padding on that axis; weights 1; pooling as averages), feed a one-hot gradient
/// at an output in the middle and see which inputs receive a nonzero gradient. The input grows
/// until that field touches neither border. `None` for stacks with transposed convolutions.
///
/// ```
/// use convkit::stack::{analyse, measure_field, parse};
/// let a = analyse(&parse("conv 1 k3; maxpool k2; conv 1 k3").unwrap(), &[1, 1, 32]).unwrap();
/// let m = measure_field(&a, 0).unwrap().unwrap();
/// assert_eq!(m.size(), 8); // 3, then +1, then +2·2
/// ```
pub fn measure_field(a: &Analysis, axis: usize) -> Result<Option<MeasuredField>> {
    if axis + 2 >= a.input.len() {
        return Err(Error::arg("axis", axis, format!("the input has {} spatial axes", a.input.len() - 2)));
    }
    let Some(ls) = lines(&a.rows, axis) else { return Ok(None) };
    let mut n = 16usize;
    while n <= 1 << 22 {
        n *= 2;
        let Ok(out) = line_len(&ls, n) else { continue };
        let o = out / 2;
        let mut g = vec![0.0; out];
        g[o] = 1.0;
        let gx = line_back(&ls, n, g)?;
        let first = gx.iter().position(|&v| v > 0.0);
        let last = gx.iter().rposition(|&v| v > 0.0);
        if let (Some(first), Some(last)) = (first, last) {
            if first > 0 && last + 1 < n {
                return Ok(Some(MeasuredField { input_len: n, output: o, first, last }));
            }
        }
    }
    Err(Error::arg("axis", axis, "the receptive field does not fit in an input of 4M positions"))
}
