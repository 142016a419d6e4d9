//! Shape arithmetic: a descriptor checked against tensor shapes becomes a *problem* with every
//! per-axis number resolved (padding split, output size). All validation of caller input lives
//! here, in checked arithmetic and without `unsafe`, shared by the library, the command line
//! and every implementation. Also parameter counts, multiply-adds and receptive fields.
//!
//! One file per operation: [`ConvProblem`] (`conv.rs`), [`ConvTransposeProblem`]
//! (`transpose.rs`), [`PoolProblem`] (`pool.rs`), receptive fields (`field.rs`); this module
//! holds the axis, layout and padding arithmetic they share.

mod conv;
mod field;
mod pool;
mod transpose;

pub use conv::ConvProblem;
pub use field::{receptive_field, LayerAxis, ReceptiveField};
pub use pool::PoolProblem;
pub use transpose::ConvTransposeProblem;

use crate::desc::{join, Layout, PadMode, Padding};
use crate::error::{Error, Result};

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

    /// A size-1 axis with a 1-tap window: what a missing outer axis is to an algorithm written
    /// for a fixed rank.
    pub const UNIT: Axis = Axis {
        input: 1,
        kernel: 1,
        stride: 1,
        dilation: 1,
        pad_begin: 0,
        pad_end: 0,
        output_padding: 0,
        output: 1,
    };
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
pub(crate) fn split_data(arg: &str, shape: &[usize], layout: Layout) -> Result<(usize, usize, Vec<usize>)> {
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
pub(crate) fn effective(kernel: usize, dilation: usize, arg: &str) -> Result<usize> {
    (kernel - 1)
        .checked_mul(dilation)
        .and_then(|x| x.checked_add(1))
        .ok_or_else(|| Error::arg(arg, dilation, "effective kernel size overflows"))
}

/// Explicit padding list → (begins, ends).
pub(crate) fn explicit_pads(v: &[usize], rank: usize) -> Result<Vec<(usize, usize)>> {
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
pub(crate) fn forward_pads(
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

pub(crate) fn check_pad_mode(mode: PadMode, a: usize, input: usize, pb: usize, pe: usize) -> Result<()> {
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

pub(crate) fn check_table(a: usize, output: usize, kernel: usize) -> Result<()> {
    match output.checked_mul(kernel) {
        Some(n) if n <= MAX_AXIS_TAPS => Ok(()),
        _ => Err(Error::TooLarge {
            what: format!("axis {a}'s tap table ({output} outputs × {kernel} taps)"),
            shape: format!("[{output}, {kernel}]"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desc::{ConvDesc, ConvTransposeDesc, PoolDesc, PoolKind};

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
