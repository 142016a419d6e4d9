//! The pooling problem: a [`PoolDesc`] checked against an input shape.

use super::{check_table, checked_numel, data_shape, effective, forward_pads, per_axis, split_data, Axis};
use crate::desc::{join, Layout, PoolDesc, PoolKind};
use crate::error::{Error, Result};

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
