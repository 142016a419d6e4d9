//! Every implementation in the plan list, at every ISA level and thread count, against the
//! reference on random problems over every parameter. Inputs are small integers, so these
//! exact algorithms must agree with the f64 reference bit for bit.

use convkit::backward::GradWeightPlan;
use convkit::impls::candidates;
use convkit::{reference, ConvDesc, ConvPlan, ConvProblem, Layout, PadMode, Padding, PlanOptions};
use proptest::prelude::*;

mod common;
use common::{build, case, ints, Case};

fn check<T: convkit::Scalar>(
    c: &Case,
    p: &ConvProblem,
    conv: impl Fn(f64) -> T,
) -> Result<(), TestCaseError> {
    let x: Vec<T> = ints(c.x_shape.iter().product(), c.seed).into_iter().map(&conv).collect();
    let w: Vec<T> = ints(c.w_shape.iter().product(), c.seed ^ 0x9e37).into_iter().map(&conv).collect();
    let b: Option<Vec<T>> =
        c.bias.then(|| ints(p.out_channels, c.seed ^ 0x51).into_iter().map(&conv).collect());
    let mut want = vec![T::ZERO; p.output_shape().iter().product()];
    reference::conv_forward(p, &x, &w, b.as_deref(), &mut want);
    // Approximate implementations (Winograd) have their own tolerance tests (tests/winograd.rs).
    for cand in candidates::<T>().into_iter().filter(|c| c.exact) {
        // Every level this CPU has (and CONVKIT_MAX_ISA allows), each candidate at its own.
        for isa in convkit::isa::available() {
            if cand.isa != isa || cand.supports(p, isa).is_err() {
                continue;
            }
            for threads in [1, 2, 3] {
                let opts = PlanOptions::new().implementation(&cand.name).max_isa(isa).threads(threads);
                let plan = ConvPlan::new(p, &w, &opts).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let got = plan.run(&x, b.as_deref()).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(
                    got == want,
                    "{} ({} at {isa}, {threads} threads) differs from the reference",
                    p,
                    plan.implementation()
                );
            }
        }
    }
    Ok(())
}

/// The weight gradient (GEMM at every ISA level and thread count) against the reference.
fn check_grad_weight<T: convkit::Scalar>(
    c: &Case,
    p: &ConvProblem,
    conv: impl Fn(f64) -> T,
) -> Result<(), TestCaseError> {
    let x: Vec<T> = ints(c.x_shape.iter().product(), c.seed).into_iter().map(&conv).collect();
    let gy: Vec<T> = ints(p.output_shape().iter().product(), c.seed ^ 0x77).into_iter().map(&conv).collect();
    let zeros = vec![T::ZERO; p.weight_shape().iter().product()];
    let mut want = zeros.clone();
    reference::conv_backward(p, &x, &zeros, &gy, None, Some(&mut want), None);
    for isa in convkit::isa::available() {
        if convkit::kernels::kernel_set::<T>(isa).is_none() {
            continue;
        }
        let name = convkit::kernels::impl_name("grad-weight-gemm", isa);
        let name = name.as_str();
        for threads in [1, 2, 3] {
            let opts = PlanOptions::new().implementation(name).max_isa(isa).threads(threads);
            let plan = GradWeightPlan::new(p, &opts).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut got = vec![T::from_f64(7.0); want.len()];
            let mut ws = plan.workspace().map_err(|e| TestCaseError::fail(e.to_string()))?;
            plan.execute(&x, &gy, &mut got, &mut ws).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(
                got == want,
                "{} weight gradient ({} at {isa}, {threads} threads) differs from the reference",
                p,
                plan.implementation()
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn weight_gradients_match_the_reference(c in case()) {
        let p = ConvProblem::new(&c.desc, &c.x_shape, &c.w_shape);
        prop_assume!(p.is_ok());
        let p = p.unwrap();
        check_grad_weight::<f32>(&c, &p, |v| v as f32)?;
        check_grad_weight::<f64>(&c, &p, |v| v)?;
    }

    #[test]
    fn every_implementation_matches_the_reference(c in case()) {
        let p = ConvProblem::new(&c.desc, &c.x_shape, &c.w_shape);
        prop_assume!(p.is_ok());
        let p = p.unwrap();
        check::<f32>(&c, &p, |v| v as f32)?;
        check::<f64>(&c, &p, |v| v)?;
    }
}

/// Pointwise (1×1) problems around the transposed tiles' edges: positions not a multiple of 6,
/// output channels not a multiple of 16 (and a multiple, for the direct channels-last path),
/// reductions over several blocks of 256 channels, strides, both layouts.
#[test]
fn pointwise_problems_match_the_reference() {
    let mut n = 0;
    let cases = [
        (300, 20, vec![7, 7], 1, true),
        (17, 32, vec![5, 9], 2, true),
        (600, 48, vec![13], 1, true),
        (8, 7, vec![2, 3, 3], 1, true),
        // Fewer positions than a tile's 4 rows: packed even where tiles could read in place.
        (40, 9, vec![3], 1, true),
        // Channels-last only: enough positions that each position block sweeps the panels.
        (300, 32, vec![20, 21], 1, false),
    ];
    for (c, k, sp, stride, first) in cases {
        for layout in [Layout::Nchw, Layout::Nhwc] {
            if layout == Layout::Nchw && !first {
                continue;
            }
            let mut x_shape = vec![2];
            if layout == Layout::Nchw {
                x_shape.push(c);
            }
            x_shape.extend(&sp);
            if layout == Layout::Nhwc {
                x_shape.push(c);
            }
            let mut w_shape = vec![k, c];
            w_shape.extend(sp.iter().map(|_| 1));
            let desc = ConvDesc::new().stride(vec![stride; sp.len()]).layout(layout);
            let case = Case { desc, x_shape, w_shape, bias: true, seed: 77 + n };
            let p = ConvProblem::new(&case.desc, &case.x_shape, &case.w_shape).unwrap();
            assert!(convkit::impls::pointwise::supports(&p, 16).is_ok(), "{p}");
            check::<f32>(&case, &p, |v| v as f32).unwrap();
            check::<f64>(&case, &p, |v| v).unwrap();
            n += 1;
        }
    }
}

/// Batches that `gemm-tiled` splits across workers by whole samples (each worker staging its
/// own): 9 samples on 2 workers (5 + 4), 3 on 3, staged (padded, strided) and read in place,
/// with a partial last panel; at 3 workers 9 samples are split evenly too.
#[test]
fn batches_split_by_samples_match_the_reference() {
    let cases = [
        (ConvDesc::new().padding(Padding::uniform(1)), vec![9, 12, 9, 10], vec![20, 12, 3, 3]),
        (
            ConvDesc::new().stride([2, 2]).padding(Padding::asymmetric(&[1, 0], &[0, 1])),
            vec![3, 5, 11, 7],
            vec![7, 5, 2, 2],
        ),
        (ConvDesc::new(), vec![9, 4, 40], vec![33, 4, 5]),
    ];
    for (i, (desc, x_shape, w_shape)) in cases.into_iter().enumerate() {
        let case = Case { desc, x_shape, w_shape, bias: i != 1, seed: 900 + i as u64 };
        let p = ConvProblem::new(&case.desc, &case.x_shape, &case.w_shape).unwrap();
        check::<f32>(&case, &p, |v| v as f32).unwrap();
        check::<f64>(&case, &p, |v| v).unwrap();
    }
}

/// Weight gradients with several position blocks per sample (KC = 256), several panels and a
/// partial one, grouped and channels-last problems, samples accumulated.
#[test]
fn larger_weight_gradients_match_the_reference() {
    let cases = [
        (ConvDesc::new().padding(Padding::Same), vec![2, 5, 20, 19], vec![13, 5, 3, 3]),
        (ConvDesc::new().stride([2]).groups(2).padding(Padding::uniform(2)), vec![3, 8, 600], vec![14, 4, 5]),
        (
            ConvDesc::new().dilation([2, 1]).layout(Layout::Nhwc).flip(true),
            vec![2, 17, 18, 6],
            vec![7, 6, 2, 3],
        ),
        (
            ConvDesc::new().padding(Padding::uniform(1)).padding_mode(PadMode::Reflect),
            vec![1, 4, 6, 7, 8],
            vec![9, 4, 3, 3, 3],
        ),
    ];
    for (i, (desc, x_shape, w_shape)) in cases.into_iter().enumerate() {
        let case = Case { desc, x_shape, w_shape, bias: false, seed: 1000 + i as u64 };
        let p = ConvProblem::new(&case.desc, &case.x_shape, &case.w_shape).unwrap();
        check_grad_weight::<f32>(&case, &p, |v| v as f32).unwrap();
        check_grad_weight::<f64>(&case, &p, |v| v).unwrap();
    }
}

/// Weight gradients through the shifted-tap arrangement (`grad_weight` module documentation):
/// every tap of a pair shifted (3×3 stride 1, partial last pair panel, output channels not a
/// multiple of the tile rows, two blocks of positions), innermost taps only, shifts not
/// consecutive (dilation) or reversed (flip), a stride below the taps, channels-last gradient
/// rows, groups, 1-D and 3-D; and problems where it would pack more, or leave too few panels
/// to share among workers, and the plain panels run.
#[test]
fn shifted_tap_weight_gradients_match_the_reference() {
    use convkit::impls::grad_weight::GradWeight;
    let d = || ConvDesc::new().padding(Padding::uniform(1));
    let cases: Vec<(ConvDesc, Vec<usize>, Vec<usize>, bool)> = vec![
        (d(), vec![1, 50, 40, 30], vec![7, 50, 3, 3], true),
        (d(), vec![2, 20, 11, 13], vec![20, 20, 3, 3], true),
        (d().dilation([1, 2]), vec![2, 64, 9, 14], vec![17, 64, 3, 3], true),
        (d().flip(true).groups(2), vec![2, 70, 8, 9], vec![10, 35, 3, 2], true),
        (d().stride([1, 2]), vec![1, 64, 10, 23], vec![5, 64, 3, 5], true),
        (d().layout(Layout::Nhwc), vec![2, 6, 7, 64], vec![9, 64, 3, 3], true),
        (d(), vec![2, 64, 1500], vec![18, 64, 5], true),
        (d(), vec![1, 20, 5, 6, 7], vec![6, 20, 3, 3, 3], true),
        (ConvDesc::new(), vec![2, 20, 9, 9], vec![6, 20, 1, 1], false),
        (ConvDesc::new().stride([3]), vec![2, 8, 50], vec![6, 8, 2], false),
        // Too few pairs to share among workers.
        (d(), vec![2, 9, 11, 13], vec![20, 9, 3, 3], false),
    ];
    for (i, (desc, x_shape, w_shape, shifted)) in cases.into_iter().enumerate() {
        let case = Case { desc, x_shape, w_shape, bias: false, seed: 2000 + i as u64 };
        let p = ConvProblem::new(&case.desc, &case.x_shape, &case.w_shape).unwrap();
        for isa in convkit::isa::available() {
            if let Some(set) = convkit::kernels::kernel_set::<f32>(isa) {
                let gw = GradWeight::new(&p, set).unwrap();
                assert_eq!(gw.shifted_taps().is_some(), shifted, "{p} at {isa}: {:?}", gw.shifted_taps());
            }
        }
        check_grad_weight::<f32>(&case, &p, |v| v as f32).unwrap();
        check_grad_weight::<f64>(&case, &p, |v| v).unwrap();
    }
}

/// Sizes around the tile edges (MR = 6 output channels, NR = 16 positions, KC = 256 reduction).
#[test]
fn tile_edges_match_the_reference() {
    let sizes =
        [(1, 1, 1, 1), (3, 7, 17, 3), (5, 13, 33, 5), (64, 12, 15, 5), (300, 6, 16, 1), (29, 5, 40, 9)];
    for (c, k, len, kernel) in sizes {
        let case = Case {
            desc: ConvDesc::new().padding(Padding::Same),
            x_shape: vec![2, c, len],
            w_shape: vec![k, c, kernel],
            bias: true,
            seed: (c * 1000 + k) as u64,
        };
        let p = ConvProblem::new(&case.desc, &case.x_shape, &case.w_shape).unwrap();
        check::<f32>(&case, &p, |v| v as f32).unwrap();
        check::<f64>(&case, &p, |v| v).unwrap();
    }
}

/// Rows wider than a column panel (whole-panel copies from the staged or direct input), every
/// stride on the innermost axis (phase-split staging), and an input too large to stage, which
/// is gathered through the tap tables instead.
#[test]
fn wide_rows_and_large_inputs_match_the_reference() {
    let modes = [PadMode::Zeros, PadMode::Reflect, PadMode::Circular, PadMode::Constant(-1.0)];
    let mut cases = Vec::new();
    for (i, (stride, dil, pad, flip, layout)) in [
        (1, 1, 1, false, Layout::Nchw),
        (2, 1, 3, true, Layout::Nchw),
        (3, 2, 2, false, Layout::Nchw),
        (1, 2, 0, false, Layout::Nchw),
        (2, 1, 1, false, Layout::Nhwc),
        (1, 1, 2, true, Layout::Nhwc),
    ]
    .into_iter()
    .enumerate()
    {
        let desc = ConvDesc::new()
            .stride([stride])
            .dilation([dil])
            .padding(Padding::uniform(pad))
            .padding_mode(modes[i % modes.len()])
            .flip(flip)
            .layout(layout)
            .groups(1 + i % 2);
        let (c, k) = (2 + 2 * (i % 2), 8);
        let x_shape = if layout == Layout::Nchw { vec![2, c, 9, 37] } else { vec![2, 9, 37, c] };
        cases.push(Case {
            desc,
            x_shape,
            w_shape: vec![k, c / (1 + i % 2), 3, 5],
            bias: i % 2 == 0,
            seed: i as u64,
        });
    }
    // Small groups (4, 5 and 6 outputs per group: the in-place indirect tiles) over wide rows.
    for (i, kg) in [1usize, 3, 4, 5, 6].into_iter().enumerate() {
        cases.push(Case {
            desc: ConvDesc::new().padding(Padding::uniform(i % 2)).groups(3).flip(i == 2),
            x_shape: vec![1, 6, 4, 21 + 7 * i],
            w_shape: vec![3 * kg, 2, 3, 3],
            bias: true,
            seed: 100 + i as u64,
        });
    }
    // Regression: the padded extent the windows read ends inside the begin padding (one
    // window, stride past the input), so no input element is copied into the padded rows.
    for (c, k, groups) in [(1, 1, 1), (2, 3, 1), (2, 2, 2)] {
        cases.push(Case {
            desc: ConvDesc::new().stride([10]).padding(Padding::uniform(3)).groups(groups),
            x_shape: vec![1, c, 4],
            w_shape: vec![k, c / groups, 1],
            bias: true,
            seed: 5,
        });
    }
    // 2002 x 2002 padded f64 elements are more than MAX_STAGE_BYTES: the gather path.
    cases.push(Case {
        desc: ConvDesc::new().padding(Padding::uniform(1)),
        x_shape: vec![1, 1, 2000, 2000],
        w_shape: vec![2, 1, 3, 3],
        bias: false,
        seed: 7,
    });
    for case in cases {
        let p = ConvProblem::new(&case.desc, &case.x_shape, &case.w_shape).unwrap();
        check::<f32>(&case, &p, |v| v as f32).unwrap();
        check::<f64>(&case, &p, |v| v).unwrap();
    }
}

/// Reductions longer than one block (KC = 256 rows) over many column panels, so panels are
/// packed in chunks block by block (several chunks, a short last chunk, a partial last panel),
/// with output channels that are not a multiple of MR, both thread splits, every source
/// (in place, staged, channels-last, and gathered: 300 channels of 82 x 82 padded f64 are more
/// than MAX_STAGE_BYTES).
#[test]
fn chunked_long_reductions_match_the_reference() {
    let mut cases = Vec::new();
    for (i, (pad, groups, layout, mode)) in [
        (1, 1, Layout::Nchw, PadMode::Reflect),
        (0, 1, Layout::Nchw, PadMode::Zeros),
        (1, 2, Layout::Nchw, PadMode::Circular),
        (1, 1, Layout::Nhwc, PadMode::Replicate),
    ]
    .into_iter()
    .enumerate()
    {
        let (c, k) = (40, 13 + groups - 1);
        let x_shape = if layout == Layout::Nchw { vec![2, c, 11, 23] } else { vec![2, 11, 23, c] };
        cases.push(Case {
            desc: ConvDesc::new()
                .padding(Padding::uniform(pad))
                .padding_mode(mode)
                .groups(groups)
                .layout(layout),
            x_shape,
            w_shape: vec![k, c / groups, 3, 3],
            bias: i % 2 == 0,
            seed: 200 + i as u64,
        });
    }
    // Output rows a whole number of panels long (32, 48 columns) with windows overlapping
    // across rows: chunks cut at row ends and read in place (direct and staged sources,
    // stride 2 phases, a reduction longer than one block).
    for (i, (pad, stride, c, w)) in
        [(0, 1, 40, 34), (1, 1, 5, 32), (1, 2, 40, 96), (2, 1, 3, 44)].into_iter().enumerate()
    {
        cases.push(Case {
            desc: ConvDesc::new()
                .padding(Padding::uniform(pad))
                .stride([stride, stride])
                .padding_mode(PadMode::Replicate),
            x_shape: vec![2, c, 7, w],
            w_shape: vec![13, c, 3, 3],
            bias: i % 2 == 1,
            seed: 400 + i as u64,
        });
    }
    cases.push(Case {
        desc: ConvDesc::new().padding(Padding::uniform(1)),
        x_shape: vec![1, 300, 80, 80],
        w_shape: vec![7, 300, 1, 1],
        bias: true,
        seed: 300,
    });
    for case in cases {
        let p = ConvProblem::new(&case.desc, &case.x_shape, &case.w_shape).unwrap();
        check::<f32>(&case, &p, |v| v as f32).unwrap();
        check::<f64>(&case, &p, |v| v).unwrap();
    }
}

/// Depthwise-shaped problems (one input channel per group), with inner axes long enough for
/// the row kernels' 16-wide interior blocks.
fn dw_case() -> impl Strategy<Value = Case> {
    let axis = (1usize..=4, 1usize..=3, 1usize..=3, 1usize..=2, 0usize..=2, 0usize..=2);
    let mode = prop_oneof![
        Just(PadMode::Zeros),
        Just(PadMode::Constant(-1.0)),
        Just(PadMode::Reflect),
        Just(PadMode::Replicate),
        Just(PadMode::Circular),
    ];
    (
        proptest::collection::vec(axis, 0..=2),
        (1usize..=45, 1usize..=5, 1usize..=3, 1usize..=2, 0usize..=3, 0usize..=3),
        (1usize..=2, 1usize..=4, 1usize..=4),
        mode,
        (any::<bool>(), any::<bool>(), 0usize..6, any::<u64>()),
    )
        .prop_map(|(mut axes, last, (n, groups, kmul), mode, (flip, bias, named, seed))| {
            axes.push(last);
            build(&axes, n, groups, 1, kmul, mode, Layout::Nchw, flip, bias, named, seed)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]
    #[test]
    fn depthwise_problems_match_the_reference(c in dw_case()) {
        let p = ConvProblem::new(&c.desc, &c.x_shape, &c.w_shape);
        prop_assume!(p.is_ok());
        let p = p.unwrap();
        check::<f32>(&c, &p, |v| v as f32)?;
        check::<f64>(&c, &p, |v| v)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]
    /// Where grad_input is rewritten as a forward convolution, it equals the reference's.
    #[test]
    fn grad_input_as_conv_matches_the_reference(c in case()) {
        let desc = c.desc.clone().stride([1]).padding_mode(PadMode::Zeros);
        let p = ConvProblem::new(&desc, &c.x_shape, &c.w_shape);
        prop_assume!(p.is_ok());
        let p = p.unwrap();
        let w: Vec<f64> = ints(c.w_shape.iter().product(), c.seed ^ 0x9e37);
        let gy: Vec<f64> = ints(p.output_shape().iter().product(), c.seed ^ 0x77);
        let x = vec![0.0f64; c.x_shape.iter().product()];
        let rewritten = convkit::backward::grad_input_as_conv(&p, &w);
        // Stride 1 with zero padding rewrites whenever no side is padded past the kernel's reach.
        let fits = p.axes.iter().all(|a| a.pad_begin.max(a.pad_end) <= a.dilation * (a.kernel - 1));
        prop_assert_eq!(rewritten.is_some(), fits, "{}", p);
        let Some((q, wt)) = rewritten else { return Ok(()) };
        let mut want = vec![0.0f64; x.len()];
        reference::conv_backward(&p, &x, &w, &gy, Some(&mut want), None, None);
        let mut got = vec![0.0f64; x.len()];
        reference::conv_forward(&q, &gy, &wt, None, &mut got);
        prop_assert!(got == want, "{}", p);
    }
}

/// The depthwise band path: 3×3 kernels at stride 1 and 2 (the unrolled AVX2 instances) and
/// other kernels (the general ones), over heights and widths around the 4-row groups and the
/// 8- and 16-wide column blocks, every padding mode, asymmetric padding, dilation, flip,
/// channel multiplier 2, bias; one-dimensional problems; planes staged in several bands.
#[test]
fn depthwise_bands_match_the_reference() {
    let modes =
        [PadMode::Zeros, PadMode::Reflect, PadMode::Replicate, PadMode::Circular, PadMode::Constant(2.0)];
    let sizes = [1usize, 2, 3, 7, 9, 17, 31];
    let kernels = [(3usize, 3usize), (3, 3), (5, 3), (1, 7), (2, 4)];
    let mut cases = Vec::new();
    let mut i = 0usize;
    for &h in &sizes {
        for &w in sizes.iter().chain(&[40]) {
            i += 1;
            let (kh, kw) = kernels[i % kernels.len()];
            let stride = [1 + (i / 2) % 2, 1 + i % 2];
            let dilation = [1 + usize::from(i % 7 == 3), 1 + usize::from(i % 5 == 4)];
            let (pb, pe) = ([i % 2, (i / 3) % 3], [(i / 2) % 2, i % 3]);
            let kmul = 1 + i % 2;
            let groups = 2 + i % 2;
            let desc = ConvDesc::new()
                .stride(stride)
                .dilation(dilation)
                .padding(Padding::asymmetric(&pb, &pe))
                .padding_mode(modes[i % modes.len()])
                .groups(groups)
                .flip(i.is_multiple_of(3));
            cases.push(Case {
                desc,
                x_shape: vec![1 + i % 2, groups, h, w],
                w_shape: vec![groups * kmul, 1, kh, kw],
                bias: i.is_multiple_of(2),
                seed: i as u64,
            });
        }
    }
    // One spatial axis, and inner strides past 2 (the general phase split).
    for (i, (len, k, s, pad)) in
        [(1usize, 1usize, 1usize, 0usize), (37, 3, 1, 1), (37, 5, 3, 2), (64, 3, 2, 1)]
            .into_iter()
            .enumerate()
    {
        cases.push(Case {
            desc: ConvDesc::new()
                .stride([s])
                .padding(Padding::uniform(pad))
                .padding_mode(modes[i + 1])
                .groups(3),
            x_shape: vec![2, 3, len],
            w_shape: vec![6, 1, k],
            bias: true,
            seed: 50 + i as u64,
        });
    }
    // Planes larger than one staged band (several bands per plane, thread cuts inside them),
    // at stride 1 and 2, and an unpadded plane read in place.
    for (i, (s, pad)) in [(1usize, 1usize), (2, 1), (1, 0)].into_iter().enumerate() {
        cases.push(Case {
            desc: ConvDesc::new()
                .stride([s, s])
                .padding(Padding::uniform(pad))
                .padding_mode(modes[i])
                .groups(2),
            x_shape: vec![1, 2, 301, 299],
            w_shape: vec![2, 1, 3, 3],
            bias: true,
            seed: 70 + i as u64,
        });
    }
    // 3×3 bands read in place with constant padding: strides 1 and 2 on either axis, padding
    // rows at the top and bottom, masked border blocks on both sides (odd widths, asymmetric
    // padding, rows just over one block), flip, several planes and thread cuts.
    let mut i = 0u64;
    for mode in [PadMode::Zeros, PadMode::Constant(-3.0)] {
        for stride in [[1usize, 1usize], [2, 2], [1, 2], [2, 1]] {
            for (h, w, pb, pe) in [
                (9usize, 17usize, [1usize, 0usize], [2usize, 1usize]),
                (30, 23, [2, 1], [0, 2]),
                (13, 19, [0, 1], [1, 0]),
            ] {
                i += 1;
                cases.push(Case {
                    desc: ConvDesc::new()
                        .stride(stride)
                        .padding(Padding::asymmetric(&pb, &pe))
                        .padding_mode(mode)
                        .groups(3)
                        .flip(i.is_multiple_of(2)),
                    x_shape: vec![2, 3, h, w],
                    w_shape: vec![3 * (1 + i as usize % 2), 1, 3, 3],
                    bias: i.is_multiple_of(3),
                    seed: 100 + i,
                });
            }
        }
    }
    for (i, s) in [1usize, 2].into_iter().enumerate() {
        cases.push(Case {
            desc: ConvDesc::new().stride([s, s]).padding(Padding::uniform(1)).groups(2),
            x_shape: vec![1, 2, 113, 111],
            w_shape: vec![2, 1, 3, 3],
            bias: true,
            seed: 90 + i as u64,
        });
    }
    let mut ran = 0;
    for mut case in cases {
        // Reflecting or wrapping more than the input holds is invalid: fall back to zeros.
        let p = ConvProblem::new(&case.desc, &case.x_shape, &case.w_shape).or_else(|_| {
            case.desc = case.desc.clone().padding_mode(PadMode::Zeros);
            ConvProblem::new(&case.desc, &case.x_shape, &case.w_shape)
        });
        let Ok(p) = p else { continue };
        check::<f32>(&case, &p, |v| v as f32).unwrap();
        check::<f64>(&case, &p, |v| v).unwrap();
        ran += 1;
    }
    assert!(ran >= 40, "only {ran} valid band cases");
}

/// Row passes of separable filters (one kernel row, long rows, as `convkit filter` runs
/// them), including the overlapping last column block, against the reference at every level.
#[test]
fn single_row_depthwise_kernels_match_the_reference() {
    let mut seed = 900;
    for (w, kw, dilation, stride) in
        [(100, 31, 1, 1), (33, 5, 1, 1), (64, 3, 2, 1), (200, 7, 1, 2), (47, 1, 1, 1)]
    {
        for h in [1, 5] {
            seed += 1;
            let case = Case {
                desc: ConvDesc::new()
                    .groups(3)
                    .padding(Padding::Same)
                    .dilation([1, dilation])
                    .stride([1, stride]),
                x_shape: vec![1, 3, h, w],
                w_shape: vec![3, 1, 1, kw],
                bias: seed % 2 == 0,
                seed,
            };
            let p = ConvProblem::new(&case.desc, &case.x_shape, &case.w_shape).unwrap();
            check::<f32>(&case, &p, |v| v as f32).unwrap();
            check::<f64>(&case, &p, |v| v).unwrap();
        }
    }
}

/// One-column depthwise kernels (a separable filter's column pass) over rows of 64 outputs
/// and more, where the band walks each block of columns down in bands of rows: long and short
/// kernels, dilation, stride, unpadded and padded, more output rows than a band.
#[test]
fn single_column_depthwise_kernels_match_the_reference() {
    let mut seed = 950;
    for (w, kh, dilation, stride, padding) in [
        (64, 31, 1, 1, Padding::Valid),
        (100, 5, 1, 1, Padding::Valid),
        (130, 3, 2, 1, Padding::Same),
        (200, 7, 1, 2, Padding::Same),
        (65, 1, 1, 1, Padding::Valid),
    ] {
        for h in [40, 31 + 2] {
            seed += 1;
            let case = Case {
                desc: ConvDesc::new()
                    .groups(3)
                    .padding(padding.clone())
                    .dilation([dilation, 1])
                    .stride([stride, 1]),
                x_shape: vec![1, 3, h, w],
                w_shape: vec![3, 1, kh, 1],
                bias: seed % 2 == 0,
                seed,
            };
            let p = ConvProblem::new(&case.desc, &case.x_shape, &case.w_shape).unwrap();
            check::<f32>(&case, &p, |v| v as f32).unwrap();
            check::<f64>(&case, &p, |v| v).unwrap();
        }
    }
}
