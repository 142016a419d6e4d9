//! Gradients through the fast engine where an identity allows it. For stride 1 and zero
//! padding, the gradient with respect to the input is itself a convolution: of `grad_output`
//! with the weight's channel axes swapped, the kernel's orientation reversed (`flip` toggled)
//! and padding `d·(k−1) − pad` on each side. At any stride, it is the transposed convolution
//! of `grad_output` with the same weight ([`grad_input_as_transpose`], run on a
//! [`crate::plan::ConvTransposePlan`]). Other padding modes use the reference.

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

/// The transposed convolution that computes `grad_input` of `p` from `grad_output` with the
/// forward weight as it is (`(K, C/groups, kernel…)` is the transposed weight order), for
/// zero padding at any stride: the output padding restores the input positions the forward
/// stride never reached. `None` for other padding modes.
pub fn grad_input_as_transpose(p: &ConvProblem) -> Option<crate::shape::ConvTransposeProblem> {
    if p.padding_mode != PadMode::Zeros {
        return None;
    }
    let rank = p.axes.len();
    let mut op = Vec::with_capacity(rank);
    for a in &p.axes {
        // Forward: (output − 1)·s + d·(k − 1) + 1 + rem = input + pads, 0 ≤ rem < s.
        let used = (a.output - 1) * a.stride + a.effective_kernel();
        op.push((a.input + a.pad_begin + a.pad_end).checked_sub(used)?);
    }
    let desc = crate::desc::ConvTransposeDesc::new()
        .stride(p.axes.iter().map(|a| a.stride).collect::<Vec<_>>())
        .dilation(p.axes.iter().map(|a| a.dilation).collect::<Vec<_>>())
        .padding(Padding::asymmetric(
            &p.axes.iter().map(|a| a.pad_begin).collect::<Vec<_>>(),
            &p.axes.iter().map(|a| a.pad_end).collect::<Vec<_>>(),
        ))
        .output_padding(op)
        .groups(p.groups)
        .flip(p.flip)
        .layout(p.layout);
    let q = crate::shape::ConvTransposeProblem::new(&desc, &p.output_shape(), &p.weight_shape()).ok()?;
    (q.output_shape() == p.input_shape()).then_some(q)
}

pub use crate::plan::grad::{GradInputPlan, GradWeightPlan};

/// `gb[k] = Σ_n Σ_p gy[n][k][p]`, summed in `f64` (as the reference does) in sample and
/// position order.
pub fn grad_bias<T: Scalar>(p: &ConvProblem, gy: &[T], gb: &mut [T]) {
    let out_sp = p.output_spatial();
    let (yn, yc, ysp) = crate::shape::data_strides(p.layout, p.out_channels, &out_sp);
    let outs: usize = out_sp.iter().product();
    let yp = ysp.last().copied().unwrap_or(1);
    for (k, b) in gb.iter_mut().enumerate().take(p.out_channels) {
        let mut acc = 0.0f64;
        for n in 0..p.batch {
            for q in 0..outs {
                acc += gy[n * yn + k * yc + q * yp].to_f64();
            }
        }
        *b = T::from_f64(acc);
    }
}
