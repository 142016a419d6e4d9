//! The forward convolution's problem: a [`ConvDesc`] checked against input and weight shapes.

use super::{
    check_pad_mode, check_table, checked_numel, data_shape, effective, forward_pads, per_axis, split_data,
    Axis,
};
use crate::desc::{join, ConvDesc, Layout, PadMode};
use crate::error::{Error, Result};
use std::fmt;

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
