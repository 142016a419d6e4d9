//! Gradients through the fast engine where an identity allows it. For stride 1 and zero
//! padding, the gradient with respect to the input is itself a convolution: of `grad_output`
//! with the weight's channel axes swapped, the kernel's orientation reversed (`flip` toggled)
//! and padding `d·(k−1) − pad` on each side. Other cases use the reference.

use crate::desc::{ConvDesc, PadMode, Padding};
use crate::scalar::Scalar;
use crate::shape::ConvProblem;

/// The forward convolution that computes `grad_input` of `p`, with its weight, if one exists.
pub fn grad_input_as_conv<T: Scalar>(p: &ConvProblem, w: &[T]) -> Option<(ConvProblem, Vec<T>)> {
    if p.padding_mode != PadMode::Zeros || p.axes.iter().any(|a| a.stride != 1) {
        return None;
    }
    let mut begin = Vec::with_capacity(p.axes.len());
    let mut end = Vec::with_capacity(p.axes.len());
    for a in &p.axes {
        let reach = a.dilation * (a.kernel - 1);
        begin.push(reach.checked_sub(a.pad_begin)?);
        end.push(reach.checked_sub(a.pad_end)?);
    }
    let (g, cg, kg) = (p.groups, p.in_channels / p.groups, p.out_channels / p.groups);
    let taps: usize = p.kernel().iter().product();
    // w: (K, C/g, taps) → wt: (C, K/g, taps), wt[g·cg + c][kk] = w[g·kg + kk][c].
    let mut wt = vec![T::ZERO; w.len()];
    for gi in 0..g {
        for c in 0..cg {
            for kk in 0..kg {
                let src = ((gi * kg + kk) * cg + c) * taps;
                let dst = ((gi * cg + c) * kg + kk) * taps;
                wt[dst..dst + taps].copy_from_slice(&w[src..src + taps]);
            }
        }
    }
    let desc = ConvDesc::new()
        .dilation(p.axes.iter().map(|a| a.dilation).collect::<Vec<_>>())
        .padding(Padding::asymmetric(&begin, &end))
        .groups(g)
        .flip(!p.flip)
        .layout(p.layout);
    let mut wshape = vec![p.in_channels, kg];
    wshape.extend(p.kernel());
    let q = ConvProblem::new(&desc, &p.output_shape(), &wshape).ok()?;
    (q.output_shape() == p.input_shape()).then_some((q, wt))
}
