//! Transposed convolution on plans (the phase split) against the reference: every exact
//! forward implementation the phases can run on, at every ISA level this CPU has, with 1, 2
//! and 3 threads, bit for bit on small-integer data. Also the data gradient of strided
//! convolutions, which runs through the same plan.

mod common;

use common::ints;
use convkit::{
    reference, ConvDesc, ConvProblem, ConvTransposeDesc, ConvTransposePlan, ConvTransposeProblem, Layout,
    Padding, PlanOptions,
};
use proptest::prelude::*;

/// One transposed problem: per axis (input, kernel, stride, dilation, pad begin, pad end,
/// output padding), then batch, groups, channels per group in and out, flip, layout, bias.
#[derive(Debug, Clone)]
struct TCase {
    axes: Vec<(usize, usize, usize, usize, usize, usize, usize)>,
    n: usize,
    groups: usize,
    cg: usize,
    kg: usize,
    flip: bool,
    layout: Layout,
    bias: bool,
    seed: u64,
}

impl TCase {
    fn problem(&self) -> Option<(ConvTransposeProblem, Vec<usize>)> {
        let sp: Vec<usize> = self.axes.iter().map(|a| a.0).collect();
        let c = self.groups * self.cg;
        let mut x_shape = vec![self.n];
        if self.layout == Layout::Nchw {
            x_shape.push(c);
        }
        x_shape.extend(&sp);
        if self.layout == Layout::Nhwc {
            x_shape.push(c);
        }
        let mut w_shape = vec![c, self.kg];
        w_shape.extend(self.axes.iter().map(|a| a.1));
        let op: Vec<usize> =
            self.axes.iter().map(|a| if a.2.max(a.3) > 1 { a.6 % a.2.max(a.3) } else { 0 }).collect();
        let desc = ConvTransposeDesc::new()
            .stride(self.axes.iter().map(|a| a.2).collect::<Vec<_>>())
            .dilation(self.axes.iter().map(|a| a.3).collect::<Vec<_>>())
            .padding(Padding::asymmetric(
                &self.axes.iter().map(|a| a.4).collect::<Vec<_>>(),
                &self.axes.iter().map(|a| a.5).collect::<Vec<_>>(),
            ))
            .output_padding(op)
            .groups(self.groups)
            .flip(self.flip)
            .layout(self.layout);
        let p = ConvTransposeProblem::new(&desc, &x_shape, &w_shape).ok()?;
        Some((p, w_shape))
    }
}

fn check<T: convkit::Scalar>(c: &TCase, conv: impl Fn(f64) -> T) -> Result<(), TestCaseError> {
    let Some((p, w_shape)) = c.problem() else { return Ok(()) };

    let x: Vec<T> = ints(p.input_shape().iter().product(), c.seed).into_iter().map(&conv).collect();
    let w: Vec<T> = ints(w_shape.iter().product(), c.seed ^ 0x9e37).into_iter().map(&conv).collect();
    let b: Option<Vec<T>> =
        c.bias.then(|| ints(p.out_channels, c.seed ^ 0x51).into_iter().map(&conv).collect());
    let mut want = vec![T::ZERO; p.output_shape().iter().product()];
    reference::conv_transpose(&p, &x, &w, b.as_deref(), &mut want);
    for isa in convkit::isa::available() {
        for threads in [1, 2, 3] {
            let opts = PlanOptions::new().max_isa(isa).threads(threads).exact(true);
            let plan =
                ConvTransposePlan::new(&p, &w, &opts).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(plan.implementation().starts_with("phase-split"), "{}", plan.implementation());
            let mut got = vec![T::from_f64(-7.0); want.len()];
            let mut ws = plan.workspace().map_err(|e| TestCaseError::fail(e.to_string()))?;
            plan.execute(&x, b.as_deref(), &mut got, &mut ws)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(
                got == want,
                "{:?}: {} at {isa}, {threads} threads differs from the reference",
                p,
                plan.implementation()
            );
        }
    }
    Ok(())
}

fn tcase() -> impl Strategy<Value = TCase> {
    let axis = (1usize..=6, 1usize..=5, 1usize..=4, 1usize..=3, 0usize..=4, 0usize..=4, 0usize..=3);
    (
        proptest::collection::vec(axis, 1..=3),
        (1usize..=2, 1usize..=2, 1usize..=3, 1usize..=18),
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<u64>()),
    )
        .prop_map(|(axes, (n, groups, cg, kg), (flip, nhwc, bias, seed))| TCase {
            axes,
            n,
            groups,
            cg,
            kg,
            flip,
            layout: if nhwc { Layout::Nhwc } else { Layout::Nchw },
            bias,
            seed,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn transposed_convolution_matches_the_reference(c in tcase()) {
        check::<f32>(&c, |v| v as f32)?;
        check::<f64>(&c, |v| v)?;
    }
}

/// The suite's shapes, shrunk: 2×2 stride 2 (every phase a 1×1 convolution), 4×4 stride 2
/// padding 1 (DCGAN), 3×3 stride 2 with output padding, a 1-D kernel of 16 at stride 8,
/// stride larger than the kernel (phases holding only the bias), padding beyond the kernel
/// (negative effective padding), dilation sharing a factor with the stride.
#[test]
fn named_shapes_match_the_reference() {
    let cases = [
        vec![(7, 2, 2, 1, 0, 0, 0), (5, 2, 2, 1, 0, 0, 0)],
        vec![(6, 4, 2, 1, 1, 1, 0), (5, 4, 2, 1, 1, 1, 0)],
        vec![(7, 3, 2, 1, 1, 1, 1), (6, 3, 2, 1, 1, 1, 1)],
        vec![(9, 16, 8, 1, 4, 4, 0)],
        vec![(5, 2, 5, 1, 0, 0, 3), (4, 1, 3, 1, 0, 0, 2)],
        vec![(6, 3, 2, 1, 4, 3, 1), (5, 2, 3, 1, 5, 2, 0)],
        vec![(7, 3, 4, 2, 1, 2, 1), (6, 3, 6, 4, 2, 0, 3)],
        vec![(3, 2, 2, 1, 0, 0, 0), (3, 2, 2, 1, 1, 0, 1), (4, 3, 2, 2, 1, 1, 1)],
    ];
    for (i, axes) in cases.into_iter().enumerate() {
        for layout in [Layout::Nchw, Layout::Nhwc] {
            let c = TCase {
                axes: axes.clone(),
                n: 2,
                groups: 1 + i % 2,
                cg: 3,
                kg: 17,
                flip: i % 3 == 1,
                layout,
                bias: i % 2 == 0,
                seed: 40 + i as u64,
            };
            assert!(c.problem().is_some(), "case {i} is not a valid problem");
            check::<f32>(&c, |v| v as f32).unwrap();
            check::<f64>(&c, |v| v).unwrap();
        }
    }
}

/// Shapes whose single group of phases, on one thread at `avx512`, sends its tiles straight
/// into the output (result rows of at least 32 in 2-D, last-axis stride 2 or 4): 2×2 stride 2
/// (U-Net), 2×4 stride (2, 4) with padding and output padding (outputs cut at the row ends),
/// 1-D kernels of 8 at stride 4 and of 4 at stride 2; whole and partial 16-column tiles,
/// result rows that change inside a tile, groups, bias, flip.
#[test]
fn interleaved_tile_shapes_match_the_reference() {
    let cases = [
        vec![(5, 2, 2, 1, 0, 0, 0), (40, 2, 2, 1, 0, 0, 0)],
        vec![(4, 2, 2, 1, 0, 0, 1), (37, 4, 4, 1, 1, 2, 3)],
        vec![(3, 2, 2, 1, 0, 0, 0), (56, 2, 2, 1, 0, 0, 0)],
        vec![(45, 8, 4, 1, 2, 2, 0)],
        vec![(70, 4, 2, 1, 1, 1, 1)],
        vec![(33, 8, 4, 1, 5, 3, 2)],
        // Six phases per output channel: a 16-row weight block splits one output channel's
        // phases, so several threads cannot split the output channels at block boundaries.
        vec![(4, 3, 3, 1, 0, 0, 0), (40, 2, 2, 1, 0, 0, 0)],
        // 64 result channels: 4 weight blocks, 3 threads take 1, 1 and 2.
        vec![(3, 2, 2, 1, 0, 0, 0), (36, 2, 2, 1, 0, 0, 0)],
    ];
    for (i, axes) in cases.into_iter().enumerate() {
        for groups in [1, 2] {
            let c = TCase {
                axes: axes.clone(),
                n: 2,
                groups,
                cg: 3,
                kg: if i == 7 { 16 } else { 8 + 3 * (i % 3) },
                flip: i % 2 == 1,
                layout: Layout::Nchw,
                bias: i % 3 != 2,
                seed: 90 + i as u64,
            };
            assert!(c.problem().is_some(), "case {i} is not a valid problem");
            check::<f32>(&c, |v| v as f32).unwrap();
            check::<f64>(&c, |v| v).unwrap();
        }
    }
}

/// `reference` and a forced forward implementation are accepted; an unknown name is an error.
#[test]
fn implementation_names() {
    let p = ConvTransposeProblem::new(&ConvTransposeDesc::new().stride([2]), &[1, 2, 5], &[2, 3, 3]).unwrap();
    let w = vec![1.0f32; 18];
    let r = ConvTransposePlan::new(&p, &w, &PlanOptions::new().implementation("reference")).unwrap();
    assert_eq!(r.implementation(), "reference");
    let g = ConvTransposePlan::new(&p, &w, &PlanOptions::new().implementation("gemm-tiled:generic")).unwrap();
    assert_eq!(g.implementation(), "phase-split(gemm-tiled:generic)");
    assert!(ConvTransposePlan::new(&p, &w, &PlanOptions::new().implementation("nonsense")).is_err());
    let x = vec![1.0f32; 10];
    assert_eq!(r.run(&x, None).unwrap(), g.run(&x, None).unwrap());
}

/// The data gradient of strided convolutions (through the phase split) equals the reference's.
#[test]
fn strided_data_gradient_matches_the_reference() {
    for (i, (sp, k, s, d, pad, groups)) in [
        (vec![9, 8], 3, 2, 1, 1, 1),
        (vec![12], 4, 3, 1, 2, 2),
        (vec![7, 6, 5], 2, 2, 2, 0, 1),
        (vec![11, 10], 5, 3, 1, 2, 2),
    ]
    .into_iter()
    .enumerate()
    {
        let rank = sp.len();
        let (c, kk) = (2 * groups, 3 * groups);
        let mut xs = vec![2, c];
        xs.extend(&sp);
        let mut ws = vec![kk, c / groups];
        ws.extend(vec![k; rank]);
        let desc = ConvDesc::new()
            .stride(vec![s; rank])
            .dilation(vec![d; rank])
            .padding(Padding::uniform(pad))
            .groups(groups)
            .flip(i % 2 == 1);
        let p = ConvProblem::new(&desc, &xs, &ws).unwrap();
        let x: Vec<f64> = ints(xs.iter().product(), 3 + i as u64);
        let w: Vec<f64> = ints(ws.iter().product(), 5 + i as u64);
        let gy: Vec<f64> = ints(p.output_shape().iter().product(), 7 + i as u64);
        let mut want = vec![0.0; x.len()];
        reference::conv_backward(&p, &x, &w, &gy, Some(&mut want), None, None);
        let (gx, _, _) =
            convkit::raw::conv_backward(&x, &xs, &w, &ws, &gy, &p.output_shape(), &desc).unwrap();
        assert_eq!(gx.data, want, "{p}");
    }
}

/// `GradInputPlan` picks the forward rewrite at stride 1, the phase split at other strides and
/// the reference for other padding modes; each equals the reference.
#[test]
fn grad_input_plan_choices() {
    use convkit::{GradInputPlan, PadMode};
    for (stride, mode, want) in [
        (1, PadMode::Zeros, "gemm-tiled"),
        (2, PadMode::Zeros, "phase-split("),
        (2, PadMode::Reflect, "reference"),
    ] {
        let desc = ConvDesc::new().stride([stride, stride]).padding(Padding::uniform(1)).padding_mode(mode);
        let p = ConvProblem::new(&desc, &[2, 3, 9, 8], &[5, 3, 3, 3]).unwrap();
        let w: Vec<f64> = ints(p.weight_shape().iter().product(), 11);
        let gy: Vec<f64> = ints(p.output_shape().iter().product(), 12);
        let x = vec![0.0; p.input_shape().iter().product()];
        let mut want_gx = vec![0.0; x.len()];
        reference::conv_backward(&p, &x, &w, &gy, Some(&mut want_gx), None, None);
        for threads in [1, 2, 3] {
            let plan = GradInputPlan::new(&p, &w, &PlanOptions::new().threads(threads).exact(true)).unwrap();
            assert!(plan.implementation().contains(want), "{} for {p}", plan.implementation());
            let mut gx = vec![7.0; x.len()];
            plan.execute(&gy, &mut gx, &mut plan.workspace().unwrap()).unwrap();
            assert_eq!(gx, want_gx, "{} for {p}", plan.implementation());
        }
    }
}
