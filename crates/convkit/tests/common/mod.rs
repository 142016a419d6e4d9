//! Random convolution problems over every parameter, shared by the implementation tests:
//! small-integer data, so exact algorithms must agree with the f64 reference bit for bit.
#![allow(dead_code)]

use convkit::{ConvDesc, Layout, PadMode, Padding};
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
