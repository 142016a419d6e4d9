//! Winograd F(4×4, 3×3) and F(4×4, 2×2) against the reference. It is approximate, so the check is a bound:
//! every output within `TOL · (Σ|w·x| + |b|)` of the exact result (computed in f64), where
//! `TOL` is about ten times the worst error measured on these problems. Results must also be
//! bitwise identical at every thread count, and the planner must only pick
//! Winograd where exact results were not asked for.

mod common;

use common::Case;
use convkit::{ConvDesc, ConvPlan, ConvProblem, Layout, PadMode, Padding, PlanOptions, Scalar};
use proptest::prelude::*;

/// Relative bound (to the sum of |w·x| per output) for f32 and f64: the worst errors measured
/// were about 2.0e-6 and 3.3e-15 (unit-uniform data, up to 300 input channels) for 3×3
/// kernels, and 1.2e-6 and 2.8e-15 for 2×2 (`long_reductions_and_many_tiles_stay_within_the_bound`).
const TOL_F32: f64 = 2e-5;
const TOL_F64: f64 = 4e-14;

/// 2-D problems, and 3-D ones (the outer axis with its own kernel, stride, dilation and
/// padding); 3×3 and 2×2 kernels (the latter with the 64 or more channels it needs); dilation
/// 1–3 on the last two axes; channels-first and channels-last.
fn case() -> impl Strategy<Value = Case> {
    let mode = prop_oneof![Just(PadMode::Zeros), Just(PadMode::Constant(0.5))];
    let outer =
        prop_oneof![Just(None), (1usize..=5, 1usize..=3, 1usize..=2, 1usize..=2, 0usize..=1).prop_map(Some)];
    (
        (1usize..=2, 16usize..=40, 16usize..=30),
        (4usize..=21, 4usize..=23, 1usize..=3, 1usize..=3),
        (0usize..=2, 0usize..=2, 0usize..=2, 0usize..=2),
        (mode, outer, any::<bool>(), 2usize..=3),
        (any::<bool>(), any::<bool>(), any::<u64>()),
    )
        .prop_map(
            |((n, c, k), (h, w, dy, dx), (pt, pb, pl, pr), (mode, outer, last, ka), (flip, bias, seed))| {
                let (c, k) = if ka == 2 { (c + 48, k + 48) } else { (c, k) };
                // Padding below the kernel side: an output that reads only zero padding is 0
                // exactly, and Winograd leaves a rounding residue of its tile's other outputs
                // there, which no bound relative to that output's own |w·x| can hold (see the
                // implementation's documentation).
                let (pt, pb, pl, pr) = (pt.min(ka - 1), pb.min(ka - 1), pl.min(ka - 1), pr.min(ka - 1));
                // Output planes of at least 4×4.
                let (h, w) = (h + (ka - 1) * dy, w + (ka - 1) * dx);
                let (mut x_shape, mut w_shape) = (vec![n], vec![k, c]);
                if !last {
                    x_shape.push(c);
                }
                let (mut stride, mut dil, mut pb_, mut pe_) = (vec![], vec![], vec![], vec![]);
                if let Some((d, kd, s, dd, pd)) = outer {
                    x_shape.push(d + (kd - 1) * dd);
                    w_shape.push(kd);
                    stride.push(s);
                    dil.push(dd);
                    pb_.push(pd);
                    pe_.push(pd);
                }
                x_shape.extend([h, w]);
                if last {
                    x_shape.push(c);
                }
                w_shape.extend([ka, ka]);
                stride.extend([1, 1]);
                dil.extend([dy, dx]);
                pb_.extend([pt, pl]);
                pe_.extend([pb, pr]);
                Case {
                    desc: ConvDesc::new()
                        .stride(stride)
                        .dilation(dil)
                        .padding(Padding::asymmetric(&pb_, &pe_))
                        .padding_mode(mode)
                        .layout(if last { Layout::Nhwc } else { Layout::Nchw })
                        .flip(flip),
                    x_shape,
                    w_shape,
                    bias,
                    seed,
                }
            },
        )
}

/// The worst error of every Winograd candidate on case `c` ([`common::approx_worst_error`]).
fn worst_error<T: Scalar>(c: &Case, p: &ConvProblem, conv: impl Fn(f64) -> T) -> Result<f64, TestCaseError> {
    common::approx_worst_error(c, p, conv, |name| {
        name.starts_with("winograd") || name.starts_with("polyphase-winograd")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]
    #[test]
    fn winograd_is_within_its_error_bound(c in case()) {
        let p = ConvProblem::new(&c.desc, &c.x_shape, &c.w_shape).unwrap();
        let e32 = worst_error::<f32>(&c, &p, |v| v as f32)?;
        prop_assert!(e32 <= TOL_F32, "{p}: f32 relative error {e32:.3e} > {TOL_F32:e}");
        let e64 = worst_error::<f64>(&c, &p, |v| v)?;
        prop_assert!(e64 <= TOL_F64, "{p}: f64 relative error {e64:.3e} > {TOL_F64:e}");
    }
}

/// Case `case` at f32 and f64 within the bound, the worst errors printed for the record.
fn assert_within_bound(case: &Case) {
    let p = ConvProblem::new(&case.desc, &case.x_shape, &case.w_shape).unwrap();
    let e32 = worst_error::<f32>(case, &p, |v| v as f32).unwrap();
    let e64 = worst_error::<f64>(case, &p, |v| v).unwrap();
    eprintln!("{p}: worst relative error f32 {e32:.3e}, f64 {e64:.3e}");
    assert!(e32 <= TOL_F32, "{p}: f32 relative error {e32:.3e}");
    assert!(e64 <= TOL_F64, "{p}: f64 relative error {e64:.3e}");
}

/// Long reductions (several KC blocks of input channels) and many tiles (several blocks, a
/// partial last panel), with the worst error printed for the record.
#[test]
fn long_reductions_and_many_tiles_stay_within_the_bound() {
    for (n, c, k, h, w, d, ka, seed) in [
        (1, 300, 20, 9, 10, 1, 3, 1u64),
        (2, 64, 70, 30, 37, 1, 3, 2),
        (1, 17, 16, 58, 58, 1, 3, 3),
        (1, 40, 30, 28, 28, 2, 3, 4),
        (1, 300, 64, 9, 10, 1, 2, 5),
        (2, 64, 70, 30, 37, 1, 2, 6),
        (1, 64, 65, 29, 28, 2, 2, 7),
    ] {
        let case = Case {
            desc: ConvDesc::new().padding(Padding::Same).dilation([d, d]),
            x_shape: vec![n, c, h, w],
            w_shape: vec![k, c, ka, ka],
            bias: true,
            seed,
        };
        assert_within_bound(&case);
    }
}

/// `polyphase-winograd` (3×3 stride 2, padding 1 before): its 2×2 corner part on Winograd,
/// the rest exact; odd and even sizes, padding 0 or 1 after, zero and constant padding, true
/// convolution, batches, bias — within the same bound, and picked by the planner only where
/// exact results are not asked for.
#[test]
fn polyphase_stride_2_stays_within_the_bound() {
    for (n, c, k, h, w, pe, mode, flip, seed) in [
        (1, 64, 64, 56, 56, 1, PadMode::Zeros, false, 11u64),
        (2, 70, 65, 15, 18, 0, PadMode::Constant(0.5), true, 12),
        (1, 64, 80, 17, 20, 1, PadMode::Zeros, true, 13),
        (3, 96, 64, 10, 11, 0, PadMode::Zeros, false, 14),
    ] {
        let case = Case {
            desc: ConvDesc::new()
                .stride([2, 2])
                .padding(Padding::asymmetric(&[1, 1], &[pe, pe]))
                .padding_mode(mode)
                .flip(flip),
            x_shape: vec![n, c, h, w],
            w_shape: vec![k, c, 3, 3],
            bias: seed % 2 == 1,
            seed,
        };
        assert_within_bound(&case);
    }
    let desc = ConvDesc::new().stride([2, 2]).padding(Padding::uniform(1));
    let p = ConvProblem::new(&desc, &[1, 64, 20, 20], &[64, 64, 3, 3]).unwrap();
    let w = vec![0.5f32; 64 * 64 * 9];
    let auto = ConvPlan::new(&p, &w, &PlanOptions::new()).unwrap();
    assert!(auto.implementation().starts_with("polyphase-winograd"), "{}", auto.explain());
    let exact = ConvPlan::new(&p, &w, &PlanOptions::new().exact(true)).unwrap();
    assert!(exact.implementation().starts_with("gemm-tiled"), "{}", exact.explain());
    for (desc, x, wsh) in [
        (ConvDesc::new().stride([2, 2]), [1, 64, 20, 20], [64, 64, 3, 3]),
        (ConvDesc::new().stride([2, 2]).padding(Padding::uniform(1)), [1, 32, 20, 20], [64, 32, 3, 3]),
        (ConvDesc::new().stride([2, 1]).padding(Padding::uniform(1)), [1, 64, 20, 20], [64, 64, 3, 3]),
        (
            ConvDesc::new().stride([2, 2]).padding(Padding::uniform(1)).groups(2),
            [1, 64, 20, 20],
            [64, 32, 3, 3],
        ),
    ] {
        let p = ConvProblem::new(&desc, &x, &wsh).unwrap();
        let plan = ConvPlan::new(&p, &vec![0.5f32; wsh.iter().product()], &PlanOptions::new()).unwrap();
        assert!(!plan.implementation().starts_with("polyphase"), "{}", plan.explain());
    }
}

/// The planner picks Winograd for a large 3×3 layer unless exact results are asked for, and
/// never for problems it does not support.
#[test]
fn winograd_is_chosen_only_where_allowed() {
    let desc = ConvDesc::new().padding(Padding::Same);
    let p = ConvProblem::new(&desc, &[1, 64, 20, 20], &[64, 64, 3, 3]).unwrap();
    let w = vec![0.5f32; 64 * 64 * 9];
    let auto = ConvPlan::new(&p, &w, &PlanOptions::new()).unwrap();
    assert!(auto.implementation().starts_with("winograd"), "{}", auto.explain());
    let exact = ConvPlan::new(&p, &w, &PlanOptions::new().exact(true)).unwrap();
    assert!(exact.implementation().starts_with("gemm-tiled"), "{}", exact.explain());
    assert!(exact.explain().contains("exact results asked for"), "{}", exact.explain());
    let forced = ConvPlan::new(&p, &w, &PlanOptions::new().exact(true).implementation("winograd:generic"));
    assert!(forced.is_err());
    // 2×2 kernels with enough channels, too.
    let p2 = ConvProblem::new(&desc, &[1, 64, 20, 20], &[64, 64, 2, 2]).unwrap();
    let auto = ConvPlan::new(&p2, &vec![0.5f32; 64 * 64 * 4], &PlanOptions::new()).unwrap();
    assert!(auto.implementation().starts_with("winograd"), "{}", auto.explain());
    for (desc, x, wsh) in [
        (ConvDesc::new().stride([2, 2]), [1, 64, 20, 20], [64, 64, 3, 3]),
        (ConvDesc::new().stride([1, 2]), [1, 64, 20, 20], [64, 64, 3, 3]),
        (ConvDesc::new().groups(2), [1, 64, 20, 20], [64, 32, 3, 3]),
        (
            ConvDesc::new().padding(Padding::Same).padding_mode(PadMode::Reflect),
            [1, 64, 20, 20],
            [64, 64, 3, 3],
        ),
        (ConvDesc::new(), [1, 8, 20, 20], [64, 8, 3, 3]),
        (ConvDesc::new(), [1, 64, 20, 20], [64, 64, 5, 5]),
        (ConvDesc::new(), [1, 32, 20, 20], [64, 32, 2, 2]),
        (ConvDesc::new().stride([2, 2]), [1, 64, 20, 20], [64, 64, 2, 2]),
        (ConvDesc::new(), [1, 64, 20, 20], [64, 64, 2, 3]),
    ] {
        let p = ConvProblem::new(&desc, &x, &wsh).unwrap();
        let w = vec![0.5f32; wsh.iter().product()];
        let plan = ConvPlan::new(&p, &w, &PlanOptions::new()).unwrap();
        assert!(!plan.implementation().starts_with("winograd"), "{}", plan.explain());
    }
}
