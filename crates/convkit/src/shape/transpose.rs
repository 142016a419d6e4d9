//! The transposed convolution's problem: a [`ConvTransposeDesc`] checked against input and
//! weight shapes.

use super::{check_table, checked_numel, data_shape, effective, explicit_pads, per_axis, split_data, Axis};
use crate::desc::{join, ConvTransposeDesc, Layout, Padding};
use crate::error::{Error, Result};

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
