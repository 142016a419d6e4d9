//! Shape arithmetic: a descriptor checked against tensor shapes becomes a *problem* with every
//! per-axis number resolved (padding split, output size). All validation of caller input lives
//! here, in checked arithmetic and without `unsafe`, shared by the library, the command line
//! and every implementation. Also parameter counts, multiply-adds and receptive fields.

use crate::desc::{join, ConvDesc, ConvTransposeDesc, Layout, PadMode, Padding, PoolDesc, PoolKind};
use crate::error::{Error, Result};
use std::fmt;

/// One spatial axis of a problem with every number resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Axis {
    /// Input size.
    pub input: usize,
    /// Kernel (window) size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Dilation.
    pub dilation: usize,
    /// Padding before the first element (cropped at the start for transposed convolution).
    pub pad_begin: usize,
    /// Padding after the last element (cropped at the end for transposed convolution).
    pub pad_end: usize,
    /// Output padding (transposed convolution only; 0 otherwise).
    pub output_padding: usize,
    /// Output size.
    pub output: usize,
}

impl Axis {
    /// Effective kernel extent `dilation·(kernel−1)+1`.
    pub fn effective_kernel(&self) -> usize {
        self.dilation * (self.kernel - 1) + 1
    }
}

/// The shape of a data tensor described by batch, channels and spatial sizes in a layout.
pub fn data_shape(layout: Layout, batch: usize, channels: usize, spatial: &[usize]) -> Vec<usize> {
    let mut s = Vec::with_capacity(spatial.len() + 2);
    s.push(batch);
    if layout == Layout::Nchw {
        s.push(channels);
    }
    s.extend_from_slice(spatial);
    if layout == Layout::Nhwc {
        s.push(channels);
    }
    s
}

/// Element strides `(batch, channel, [spatial…])` of a contiguous data tensor.
pub fn data_strides(layout: Layout, channels: usize, spatial: &[usize]) -> (usize, usize, Vec<usize>) {
    let plane: usize = spatial.iter().product();
    let mut sp = vec![0; spatial.len()];
    let mut acc = if layout == Layout::Nhwc { channels } else { 1 };
    for a in (0..spatial.len()).rev() {
        sp[a] = acc;
        acc *= spatial[a];
    }
    match layout {
        Layout::Nchw => (channels * plane, plane, sp),
        Layout::Nhwc => (channels * plane, 1, sp),
    }
}

/// Product of dimensions, or an error naming `what` when it overflows.
pub fn checked_numel(what: &str, shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n.checked_mul(8).is_some_and(|b| b <= isize::MAX as usize))
        .ok_or_else(|| Error::too_large(what, shape))
}

/// Split a data shape into `(batch, channels, spatial)` for the layout.
fn split_data(arg: &str, shape: &[usize], layout: Layout) -> Result<(usize, usize, Vec<usize>)> {
    if shape.len() < 3 {
        return Err(Error::shape(
            arg,
            shape,
            "expected rank 3 to 5 or more: (N, C, spatial…) with at least one spatial axis",
        ));
    }
    let (c, sp) = match layout {
        Layout::Nchw => (shape[1], shape[2..].to_vec()),
        Layout::Nhwc => (shape[shape.len() - 1], shape[1..shape.len() - 1].to_vec()),
    };
    if c == 0 {
        return Err(Error::shape(arg, shape, "has zero channels"));
    }
    if let Some(a) = sp.iter().position(|&d| d == 0) {
        return Err(Error::shape(arg, shape, format!("spatial axis {a} is empty")));
    }
    Ok((shape[0], c, sp))
}

/// Resolve a per-axis option: empty → `default`, one value → every axis, or one per axis.
pub fn per_axis(arg: &str, v: &[usize], rank: usize, default: usize, min: usize) -> Result<Vec<usize>> {
    let out = match v.len() {
        0 => vec![default; rank],
        1 => vec![v[0]; rank],
        n if n == rank => v.to_vec(),
        _ => {
            return Err(Error::arg(
                arg,
                join(v),
                format!("expected 1 or {rank} values for {rank} spatial axes"),
            ))
        }
    };
    if let Some(&bad) = out.iter().find(|&&x| x < min) {
        return Err(Error::arg(arg, join(v), format!("{bad} is below the minimum {min}")));
    }
    Ok(out)
}

/// Effective kernel extent, checked.
fn effective(kernel: usize, dilation: usize, arg: &str) -> Result<usize> {
    (kernel - 1)
        .checked_mul(dilation)
        .and_then(|x| x.checked_add(1))
        .ok_or_else(|| Error::arg(arg, dilation, "effective kernel size overflows"))
}

/// Explicit padding list → (begins, ends).
fn explicit_pads(v: &[usize], rank: usize) -> Result<Vec<(usize, usize)>> {
    match v.len() {
        1 => Ok(vec![(v[0], v[0]); rank]),
        n if n == rank => Ok(v.iter().map(|&p| (p, p)).collect()),
        n if n == 2 * rank => Ok((0..rank).map(|a| (v[a], v[rank + a])).collect()),
        _ => Err(Error::arg(
            "padding",
            join(v),
            format!(
                "expected 1, {rank} (per axis) or {} (begins then ends) values for {rank} spatial axes",
                2 * rank
            ),
        )),
    }
}

/// Padding for a forward sliding window (convolution, pooling): per axis (begin, end).
fn forward_pads(
    padding: &Padding,
    inputs: &[usize],
    effs: &[usize],
    strides: &[usize],
) -> Result<Vec<(usize, usize)>> {
    let rank = inputs.len();
    Ok(match padding {
        Padding::Explicit(v) => explicit_pads(v, rank)?,
        Padding::Valid => vec![(0, 0); rank],
        Padding::Full => effs.iter().map(|&e| (e - 1, e - 1)).collect(),
        Padding::Same | Padding::SameLower => (0..rank)
            .map(|a| {
                let out = inputs[a].div_ceil(strides[a]);
                let total = (out - 1)
                    .checked_mul(strides[a])
                    .and_then(|x| x.checked_add(effs[a]))
                    .ok_or_else(|| Error::arg("padding", padding, format!("overflows on axis {a}")))?
                    .saturating_sub(inputs[a]);
                let small = total / 2;
                Ok(if *padding == Padding::Same { (small, total - small) } else { (total - small, small) })
            })
            .collect::<Result<Vec<_>>>()?,
    })
}

fn check_pad_mode(mode: PadMode, a: usize, input: usize, pb: usize, pe: usize) -> Result<()> {
    let (ok, rule) = match mode {
        PadMode::Zeros | PadMode::Constant(_) | PadMode::Replicate => (true, ""),
        PadMode::Reflect => (pb < input && pe < input, "must be smaller than"),
        PadMode::Symmetric | PadMode::Circular => (pb <= input && pe <= input, "must not exceed"),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::arg(
            "padding",
            format!("{pb},{pe} on axis {a}"),
            format!("{mode} padding {rule} the input size {input}"),
        ))
    }
}

/// Most (output positions × kernel taps) along one axis: implementations keep a table of
/// that size per axis (2 GiB at this bound), so larger axes are refused up front.
pub const MAX_AXIS_TAPS: usize = 1 << 27;

fn check_table(a: usize, output: usize, kernel: usize) -> Result<()> {
    match output.checked_mul(kernel) {
        Some(n) if n <= MAX_AXIS_TAPS => Ok(()),
        _ => Err(Error::TooLarge {
            what: format!("axis {a}'s tap table ({output} outputs × {kernel} taps)"),
            shape: format!("[{output}, {kernel}]"),
        }),
    }
}

/// A convolution checked against its tensors: every size resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvProblem {
    /// Batch size N.
    pub batch: usize,
    /// Input channels C.
    pub in_channels: usize,
    /// Output channels K (number of filters).
    pub out_channels: usize,
    /// Groups.
    pub groups: usize,
    /// Spatial axes, outermost first.
    pub axes: Vec<Axis>,
    /// Values padded with.
    pub padding_mode: PadMode,
    /// True convolution (kernel reversed).
    pub flip: bool,
    /// Data layout.
    pub layout: Layout,
}

impl ConvProblem {
    /// Check `desc` against an input of shape `input` and a weight `(K, C/groups, kernel…)`.
    ///
    /// ```
    /// use convkit::{ConvDesc, ConvProblem, Padding};
    /// let p = ConvProblem::new(&ConvDesc::new().stride([2]).padding(Padding::uniform(1)),
    ///                          &[1, 1, 7, 7], &[1, 1, 3, 3]).unwrap();
    /// assert_eq!(p.output_shape(), vec![1, 1, 4, 4]);
    /// ```
    pub fn new(desc: &ConvDesc, input: &[usize], weight: &[usize]) -> Result<Self> {
        let (batch, c, sp) = split_data("input", input, desc.layout)?;
        let rank = sp.len();
        if weight.len() != rank + 2 {
            return Err(Error::shape(
                "weight",
                weight,
                format!("expected rank {} (K, C/groups, kernel…) for input of shape {input:?}", rank + 2),
            ));
        }
        let g = desc.groups;
        if g == 0 || !c.is_multiple_of(g) {
            return Err(Error::arg("groups", g, format!("must divide the {c} input channels")));
        }
        let k = weight[0];
        if k == 0 || !k.is_multiple_of(g) {
            return Err(Error::arg(
                "groups",
                g,
                format!("must divide the {k} output channels (weight dim 0)"),
            ));
        }
        if weight[1] != c / g {
            return Err(Error::shape(
                "weight",
                weight,
                format!("dim 1 must be C/groups = {c}/{g} = {}", c / g),
            ));
        }
        let kernel = &weight[2..];
        if kernel.contains(&0) {
            return Err(Error::shape("weight", weight, "kernel size 0"));
        }
        let stride = per_axis("stride", &desc.stride, rank, 1, 1)?;
        let dilation = per_axis("dilation", &desc.dilation, rank, 1, 1)?;
        let effs =
            (0..rank).map(|a| effective(kernel[a], dilation[a], "dilation")).collect::<Result<Vec<_>>>()?;
        let pads = forward_pads(&desc.padding, &sp, &effs, &stride)?;
        let mut axes = Vec::with_capacity(rank);
        for a in 0..rank {
            let (pb, pe) = pads[a];
            check_pad_mode(desc.padding_mode, a, sp[a], pb, pe)?;
            let padded = sp[a]
                .checked_add(pb)
                .and_then(|x| x.checked_add(pe))
                .ok_or_else(|| Error::arg("padding", desc.padding.to_string(), "overflows"))?;
            if padded < effs[a] {
                let (arg, value) = if dilation[a] > 1 {
                    ("dilation", join(&desc.dilation))
                } else {
                    ("padding", desc.padding.to_string())
                };
                return Err(Error::arg(
                    arg,
                    value,
                    format!(
                        "leaves no output on axis {a}: padded input {padded} < effective kernel {} \
                         (kernel {}, dilation {})",
                        effs[a], kernel[a], dilation[a]
                    ),
                ));
            }
            let output = (padded - effs[a]) / stride[a] + 1;
            check_table(a, output, kernel[a])?;
            axes.push(Axis {
                input: sp[a],
                kernel: kernel[a],
                stride: stride[a],
                dilation: dilation[a],
                pad_begin: pb,
                pad_end: pe,
                output_padding: 0,
                output,
            });
        }
        let p = ConvProblem {
            batch,
            in_channels: c,
            out_channels: k,
            groups: g,
            axes,
            padding_mode: desc.padding_mode,
            flip: desc.flip,
            layout: desc.layout,
        };
        checked_numel("output", &p.output_shape())?;
        Ok(p)
    }

    /// Spatial input sizes.
    pub fn input_spatial(&self) -> Vec<usize> {
        self.axes.iter().map(|a| a.input).collect()
    }
    /// Spatial output sizes.
    pub fn output_spatial(&self) -> Vec<usize> {
        self.axes.iter().map(|a| a.output).collect()
    }
    /// Kernel sizes.
    pub fn kernel(&self) -> Vec<usize> {
        self.axes.iter().map(|a| a.kernel).collect()
    }
    /// Input tensor shape in the problem's layout.
    pub fn input_shape(&self) -> Vec<usize> {
        data_shape(self.layout, self.batch, self.in_channels, &self.input_spatial())
    }
    /// Output tensor shape in the problem's layout.
    pub fn output_shape(&self) -> Vec<usize> {
        data_shape(self.layout, self.batch, self.out_channels, &self.output_spatial())
    }
    /// Weight shape `(K, C/groups, kernel…)`.
    pub fn weight_shape(&self) -> Vec<usize> {
        let mut s = vec![self.out_channels, self.in_channels / self.groups];
        s.extend(self.kernel());
        s
    }
    /// Number of learnable parameters: weights, plus `K` if there is a bias.
    pub fn params(&self, bias: bool) -> u64 {
        let w: u64 = self.weight_shape().iter().map(|&d| d as u64).product();
        w + if bias { self.out_channels as u64 } else { 0 }
    }
    /// [`ConvProblem::params`], or `None` when the count overflows `u64`.
    pub fn checked_params(&self, bias: bool) -> Option<u64> {
        let w = self.weight_shape().iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64))?;
        w.checked_add(if bias { self.out_channels as u64 } else { 0 })
    }
    /// [`ConvProblem::macs`], or `None` when the count overflows `u64`.
    pub fn checked_macs(&self) -> Option<u64> {
        let mut dims = vec![self.batch, self.out_channels, self.in_channels / self.groups];
        dims.extend(self.output_spatial());
        dims.extend(self.kernel());
        dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64))
    }
    /// Multiply-adds: `N·K·∏out·(C/groups)·∏kernel`.
    pub fn macs(&self) -> u64 {
        let per_out = (self.in_channels / self.groups) as u64
            * self.kernel().iter().map(|&k| k as u64).product::<u64>();
        let outs = self.output_spatial().iter().map(|&o| o as u64).product::<u64>();
        self.batch as u64 * self.out_channels as u64 * outs * per_out
    }
}

impl fmt::Display for ConvProblem {
    /// The canonical one-line problem string (benchdnn style), e.g.
    /// `mb1ic3oc8g1_i32x32_k3x3_s1x1_d1x1_pb1x1_pe1x1_zeros_xcorr_nchw`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x =
            |f: fn(&Axis) -> usize| self.axes.iter().map(|a| f(a).to_string()).collect::<Vec<_>>().join("x");
        write!(
            f,
            "mb{}ic{}oc{}g{}_i{}_k{}_s{}_d{}_pb{}_pe{}_{}_{}_{}",
            self.batch,
            self.in_channels,
            self.out_channels,
            self.groups,
            x(|a| a.input),
            x(|a| a.kernel),
            x(|a| a.stride),
            x(|a| a.dilation),
            x(|a| a.pad_begin),
            x(|a| a.pad_end),
            self.padding_mode,
            if self.flip { "conv" } else { "xcorr" },
            self.layout
        )
    }
}

/// A transposed convolution checked against its tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvTransposeProblem {
    /// Batch size N.
    pub batch: usize,
    /// Input channels C (weight dim 0).
    pub in_channels: usize,
    /// Output channels K = groups · weight dim 1.
    pub out_channels: usize,
    /// Groups.
    pub groups: usize,
    /// Spatial axes: `input` is this op's input, `output` its output.
    pub axes: Vec<Axis>,
    /// Kernel reversed.
    pub flip: bool,
    /// Data layout.
    pub layout: Layout,
}

impl ConvTransposeProblem {
    /// Check `desc` against an input and a weight `(C, K/groups, kernel…)`.
    ///
    /// ```
    /// use convkit::{ConvTransposeDesc, ConvTransposeProblem};
    /// let p = ConvTransposeProblem::new(&ConvTransposeDesc::new().stride([2]), &[1, 4, 5], &[4, 2, 3]).unwrap();
    /// assert_eq!(p.output_shape(), vec![1, 2, 11]);
    /// ```
    pub fn new(desc: &ConvTransposeDesc, input: &[usize], weight: &[usize]) -> Result<Self> {
        let (batch, c, sp) = split_data("input", input, desc.layout)?;
        let rank = sp.len();
        if weight.len() != rank + 2 {
            return Err(Error::shape(
                "weight",
                weight,
                format!("expected rank {} (C, K/groups, kernel…) for input of shape {input:?}", rank + 2),
            ));
        }
        let g = desc.groups;
        if g == 0 || !c.is_multiple_of(g) {
            return Err(Error::arg("groups", g, format!("must divide the {c} input channels")));
        }
        if weight[0] != c {
            return Err(Error::shape("weight", weight, format!("dim 0 must equal the {c} input channels")));
        }
        if weight[1] == 0 {
            return Err(Error::shape("weight", weight, "has zero output channels"));
        }
        let k = weight[1].checked_mul(g).ok_or_else(|| Error::too_large("output", weight))?;
        let kernel = &weight[2..];
        if kernel.contains(&0) {
            return Err(Error::shape("weight", weight, "kernel size 0"));
        }
        let stride = per_axis("stride", &desc.stride, rank, 1, 1)?;
        let dilation = per_axis("dilation", &desc.dilation, rank, 1, 1)?;
        let op = per_axis("output-padding", &desc.output_padding, rank, 0, 0)?;
        let effs =
            (0..rank).map(|a| effective(kernel[a], dilation[a], "dilation")).collect::<Result<Vec<_>>>()?;
        let mut axes = Vec::with_capacity(rank);
        for a in 0..rank {
            if op[a] >= stride[a].max(dilation[a]) {
                return Err(Error::arg(
                    "output-padding",
                    join(&desc.output_padding),
                    format!(
                        "must be smaller than max(stride, dilation) = {} on axis {a}",
                        stride[a].max(dilation[a])
                    ),
                ));
            }
            let full = (sp[a] - 1)
                .checked_mul(stride[a])
                .and_then(|x| x.checked_add(effs[a]))
                .and_then(|x| x.checked_add(op[a]))
                .ok_or_else(|| Error::arg("stride", join(&desc.stride), "the output size overflows"))?;
            let (pb, pe) = match &desc.padding {
                Padding::Explicit(v) => explicit_pads(v, rank)?[a],
                Padding::Valid => (0, 0),
                Padding::Full => (effs[a] - 1, effs[a] - 1),
                Padding::Same | Padding::SameLower => {
                    let total = full.saturating_sub(sp[a].saturating_mul(stride[a]));
                    let small = total / 2;
                    if desc.padding == Padding::Same {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    }
                }
            };
            let crop = pb.saturating_add(pe);
            if crop >= full {
                return Err(Error::arg(
                    "padding",
                    desc.padding.to_string(),
                    format!("crops away the whole output on axis {a} (uncropped size {full})"),
                ));
            }
            check_table(a, sp[a], kernel[a])?;
            axes.push(Axis {
                input: sp[a],
                kernel: kernel[a],
                stride: stride[a],
                dilation: dilation[a],
                pad_begin: pb,
                pad_end: pe,
                output_padding: op[a],
                output: full - crop,
            });
        }
        let p = ConvTransposeProblem {
            batch,
            in_channels: c,
            out_channels: k,
            groups: g,
            axes,
            flip: desc.flip,
            layout: desc.layout,
        };
        checked_numel("output", &p.output_shape())?;
        Ok(p)
    }

    /// Input tensor shape.
    pub fn input_shape(&self) -> Vec<usize> {
        data_shape(
            self.layout,
            self.batch,
            self.in_channels,
            &self.axes.iter().map(|a| a.input).collect::<Vec<_>>(),
        )
    }
    /// Output tensor shape.
    pub fn output_shape(&self) -> Vec<usize> {
        data_shape(
            self.layout,
            self.batch,
            self.out_channels,
            &self.axes.iter().map(|a| a.output).collect::<Vec<_>>(),
        )
    }
    /// Weight shape `(C, K/groups, kernel…)`.
    pub fn weight_shape(&self) -> Vec<usize> {
        let mut s = vec![self.in_channels, self.out_channels / self.groups];
        s.extend(self.axes.iter().map(|a| a.kernel));
        s
    }
    /// Learnable parameters (weights, plus `K` with a bias), or `None` when the count overflows.
    pub fn checked_params(&self, bias: bool) -> Option<u64> {
        let w = self.weight_shape().iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64))?;
        w.checked_add(if bias { self.out_channels as u64 } else { 0 })
    }
    /// Multiply-adds `N·C·∏in·(K/groups)·∏kernel` (every input scatters into `K/groups·∏kernel`
    /// outputs), or `None` when the count overflows.
    pub fn checked_macs(&self) -> Option<u64> {
        let mut dims = vec![self.batch, self.in_channels, self.out_channels / self.groups];
        dims.extend(self.axes.iter().map(|a| a.input));
        dims.extend(self.axes.iter().map(|a| a.kernel));
        dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64))
    }
}

/// A pooling layer checked against its input.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolProblem {
    /// Reduction (global kinds are resolved to a whole-extent window of the plain kind).
    pub kind: PoolKind,
    /// Batch size N.
    pub batch: usize,
    /// Channels C.
    pub channels: usize,
    /// Spatial axes.
    pub axes: Vec<Axis>,
    /// Divisor of `avg` counts padding taps.
    pub count_include_pad: bool,
    /// Data layout.
    pub layout: Layout,
}

impl PoolProblem {
    /// Check `desc` against an input shape.
    ///
    /// ```
    /// use convkit::{PoolDesc, PoolKind, PoolProblem};
    /// let p = PoolProblem::new(&PoolDesc::new(PoolKind::Max).kernel([2]).ceil_mode(true), &[1, 1, 5, 5]).unwrap();
    /// assert_eq!(p.output_shape(), vec![1, 1, 3, 3]);
    /// ```
    pub fn new(desc: &PoolDesc, input: &[usize]) -> Result<Self> {
        let (batch, c, sp) = split_data("input", input, desc.layout)?;
        let rank = sp.len();
        let (kind, kernel, stride, dilation, pads, ceil) = match desc.kind {
            PoolKind::GlobalMax | PoolKind::GlobalAvg => {
                let kind = if desc.kind == PoolKind::GlobalMax { PoolKind::Max } else { PoolKind::Avg };
                (kind, sp.clone(), vec![1; rank], vec![1; rank], vec![(0, 0); rank], false)
            }
            k => {
                let kernel = per_axis("kernel", &desc.kernel, rank, 1, 1)?;
                let stride = if desc.stride.is_empty() {
                    kernel.clone()
                } else {
                    per_axis("stride", &desc.stride, rank, 1, 1)?
                };
                let dilation = per_axis("dilation", &desc.dilation, rank, 1, 1)?;
                let effs = (0..rank)
                    .map(|a| effective(kernel[a], dilation[a], "dilation"))
                    .collect::<Result<Vec<_>>>()?;
                let pads = forward_pads(&desc.padding, &sp, &effs, &stride)?;
                (k, kernel, stride, dilation, pads, desc.ceil_mode)
            }
        };
        let mut axes = Vec::with_capacity(rank);
        for a in 0..rank {
            let eff = effective(kernel[a], dilation[a], "dilation")?;
            let (pb, pe) = pads[a];
            let padded = sp[a]
                .checked_add(pb)
                .and_then(|x| x.checked_add(pe))
                .ok_or_else(|| Error::arg("padding", desc.padding.to_string(), "overflows"))?;
            if padded < eff {
                return Err(Error::arg(
                    "kernel",
                    join(&desc.kernel),
                    format!("leaves no output on axis {a}: padded input {padded} < effective window {eff}"),
                ));
            }
            let span = padded - eff;
            let mut out = if ceil { span.div_ceil(stride[a]) + 1 } else { span / stride[a] + 1 };
            // PyTorch: a last window that ceil mode added and that would start past the input
            // plus begin padding is dropped. (A full window that floor mode keeps — possible when
            // the end padding reaches a whole window — stays.)
            if ceil && span % stride[a] != 0 && (out - 1).saturating_mul(stride[a]) >= sp[a] + pb {
                out -= 1;
            }
            check_table(a, out, 1)?;
            let ax = Axis {
                input: sp[a],
                kernel: kernel[a],
                stride: stride[a],
                dilation: dilation[a],
                pad_begin: pb,
                pad_end: pe,
                output_padding: 0,
                output: out,
            };
            axes.push(ax);
        }
        let p = PoolProblem {
            kind,
            batch,
            channels: c,
            axes,
            count_include_pad: desc.count_include_pad,
            layout: desc.layout,
        };
        checked_numel("output", &p.output_shape())?;
        Ok(p)
    }

    /// Input tensor shape.
    pub fn input_shape(&self) -> Vec<usize> {
        data_shape(
            self.layout,
            self.batch,
            self.channels,
            &self.axes.iter().map(|a| a.input).collect::<Vec<_>>(),
        )
    }
    /// Output tensor shape.
    pub fn output_shape(&self) -> Vec<usize> {
        data_shape(
            self.layout,
            self.batch,
            self.channels,
            &self.axes.iter().map(|a| a.output).collect::<Vec<_>>(),
        )
    }
}

/// One layer of a stack, along one axis, for receptive-field arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerAxis {
    /// Kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Dilation.
    pub dilation: usize,
    /// Padding at the start of the axis.
    pub pad_begin: usize,
}

/// Receptive field of one output of a layer stack, along one axis, in input coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReceptiveField {
    /// Size r: how many input positions one output sees.
    pub size: u64,
    /// Jump j: distance in the input between neighbouring outputs (the effective stride).
    pub jump: u64,
    /// Centre of the first output's field, input position 0 being the first input's centre.
    pub start: f64,
}

/// Receptive field after each layer of a stack: `j_l = j_{l−1}·s_l`,
/// `r_l = r_{l−1} + (k_eff,l − 1)·j_{l−1}`, `start_l = start_{l−1} + ((k_eff,l − 1)/2 − p_l)·j_{l−1}`.
///
/// ```
/// use convkit::{receptive_field, LayerAxis};
/// let l = |s| LayerAxis { kernel: 3, stride: s, dilation: 1, pad_begin: 0 };
/// let rf = receptive_field(&[l(1), l(2), l(1)]);
/// assert_eq!(rf.last().unwrap().size, 9);
/// ```
pub fn receptive_field(layers: &[LayerAxis]) -> Vec<ReceptiveField> {
    let mut cur = ReceptiveField::INPUT;
    layers
        .iter()
        .map(|l| {
            cur = cur.then(l);
            cur
        })
        .collect()
}

impl ReceptiveField {
    /// The field of the input itself: one position, jump 1, centred on position 0.
    pub const INPUT: ReceptiveField = ReceptiveField { size: 1, jump: 1, start: 0.0 };

    /// The field after one more layer `l` (one step of [`receptive_field`]'s recurrence), with
    /// saturating arithmetic so absurd stacks cannot overflow.
    ///
    /// ```
    /// use convkit::{LayerAxis, ReceptiveField};
    /// let f = ReceptiveField::INPUT.then(&LayerAxis { kernel: 7, stride: 2, dilation: 1, pad_begin: 3 });
    /// assert_eq!((f.size, f.jump, f.start), (7, 2, 0.0));
    /// ```
    pub fn then(&self, l: &LayerAxis) -> ReceptiveField {
        let eff = (l.dilation as u64).saturating_mul(l.kernel.max(1) as u64 - 1).saturating_add(1);
        ReceptiveField {
            size: self.size.saturating_add((eff - 1).saturating_mul(self.jump)),
            jump: self.jump.saturating_mul(l.stride as u64),
            start: self.start + ((eff - 1) as f64 / 2.0 - l.pad_begin as f64) * self.jump as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_examples_from_the_literature() {
        // 7×7, k 3, s 2, p 1 → 4×4
        let p = ConvProblem::new(
            &ConvDesc::new().stride([2]).padding(Padding::uniform(1)),
            &[1, 1, 7, 7],
            &[1, 1, 3, 3],
        )
        .unwrap();
        assert_eq!(p.output_spatial(), vec![4, 4]);
        // L 20, k 5, s 2, p 2+2 → 10
        let p = ConvProblem::new(
            &ConvDesc::new().stride([2]).padding(Padding::asymmetric(&[2], &[2])),
            &[1, 1, 20],
            &[1, 1, 5],
        )
        .unwrap();
        assert_eq!(p.output_spatial(), vec![10]);
        // (8,3,32,32) into 16 channels, k 3, p 1 → (8,16,32,32) with 432 weights
        let p =
            ConvProblem::new(&ConvDesc::new().padding(Padding::uniform(1)), &[8, 3, 32, 32], &[16, 3, 3, 3])
                .unwrap();
        assert_eq!(p.output_shape(), vec![8, 16, 32, 32]);
        assert_eq!(p.params(false), 432);
        assert_eq!(p.params(true), 448);
        // kernels [3,3,3] with strides [1,2,1] → receptive field 9
        let l = |s| LayerAxis { kernel: 3, stride: s, dilation: 1, pad_begin: 0 };
        let rf = receptive_field(&[l(1), l(2), l(1)]);
        assert_eq!(rf.iter().map(|r| r.size).collect::<Vec<_>>(), vec![3, 5, 9]);
        assert_eq!(rf[2].jump, 2);
    }

    #[test]
    fn same_padding_puts_the_odd_extra_at_the_end() {
        let p = ConvProblem::new(&ConvDesc::new().padding(Padding::Same), &[1, 1, 10], &[1, 1, 4]).unwrap();
        assert_eq!((p.axes[0].pad_begin, p.axes[0].pad_end, p.axes[0].output), (1, 2, 10));
        let p =
            ConvProblem::new(&ConvDesc::new().padding(Padding::SameLower), &[1, 1, 10], &[1, 1, 4]).unwrap();
        assert_eq!((p.axes[0].pad_begin, p.axes[0].pad_end), (2, 1));
        let p =
            ConvProblem::new(&ConvDesc::new().padding(Padding::Same).stride([3]), &[1, 1, 10], &[1, 1, 3])
                .unwrap();
        assert_eq!(p.axes[0].output, 4);
        let p =
            ConvProblem::new(&ConvDesc::new().padding(Padding::Full).dilation([2]), &[1, 1, 10], &[1, 1, 3])
                .unwrap();
        assert_eq!((p.axes[0].pad_begin, p.axes[0].output), (4, 14));
    }

    #[test]
    fn bad_descriptors_are_errors_not_panics() {
        let d = ConvDesc::new();
        assert!(ConvProblem::new(&d.clone().stride([0]), &[1, 1, 5], &[1, 1, 3]).is_err());
        assert!(ConvProblem::new(&d.clone().dilation([0]), &[1, 1, 5], &[1, 1, 3]).is_err());
        assert!(ConvProblem::new(&d.clone().groups(2), &[1, 3, 5], &[2, 1, 3]).is_err());
        assert!(ConvProblem::new(&d, &[1, 1, 2], &[1, 1, 3]).is_err());
        assert!(ConvProblem::new(
            &d.clone().padding(Padding::uniform(3)).padding_mode(PadMode::Reflect),
            &[1, 1, 3],
            &[1, 1, 3]
        )
        .is_err());
        assert!(ConvProblem::new(
            &d.clone().padding(Padding::uniform(3)).padding_mode(PadMode::Circular),
            &[1, 1, 3],
            &[1, 1, 3]
        )
        .is_ok());
        assert!(ConvProblem::new(&d, &[1, 1, 5], &[1, 2, 3]).is_err());
        assert!(ConvProblem::new(&d, &[1, 1, 5], &[1, 1, 3, 3]).is_err());
        assert!(ConvProblem::new(&d.clone().stride([1, 1, 1]), &[1, 1, 5, 5], &[1, 1, 3, 3]).is_err());
        assert!(ConvProblem::new(&d.clone().dilation([usize::MAX]), &[1, 1, 5], &[1, 1, 3]).is_err());
        assert!(ConvProblem::new(&d, &[usize::MAX, 1, 5], &[usize::MAX, 1, 1]).is_err());
        let t = ConvTransposeDesc::new().stride([2]).output_padding([2]);
        assert!(ConvTransposeProblem::new(&t, &[1, 1, 5], &[1, 1, 3]).is_err());
    }

    #[test]
    fn pool_ceil_mode_follows_pytorch() {
        // in 5, k 2, s 2, ceil → 3; in 4, k 2, s 2, p 1, ceil → 3 (last window starts at 4 = in+pb−1 … kept)
        let p =
            PoolProblem::new(&PoolDesc::new(PoolKind::Max).kernel([2]).ceil_mode(true), &[1, 1, 5]).unwrap();
        assert_eq!(p.axes[0].output, 3);
        let p = PoolProblem::new(
            &PoolDesc::new(PoolKind::Max).kernel([2]).padding(Padding::uniform(1)).ceil_mode(true),
            &[1, 1, 4],
        )
        .unwrap();
        assert_eq!(p.axes[0].output, 3);
        // in 6, k 3, s 2, ceil: span 3 → ceil(3/2)+1 = 3, last window starts at 4 < 6 → kept
        let p = PoolProblem::new(
            &PoolDesc::new(PoolKind::Avg).kernel([3]).stride([2]).ceil_mode(true),
            &[1, 1, 6],
        )
        .unwrap();
        assert_eq!(p.axes[0].output, 3);
    }
}
