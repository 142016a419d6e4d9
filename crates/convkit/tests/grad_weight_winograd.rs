//! The Winograd F(3×3, 4×4) weight gradient against the reference. It is approximate, so the
//! check is a bound: every weight-gradient element within `TOL · s` of the exact result
//! (computed in f64), where `s` is the largest `Σ|dy·x|` among the 9 taps of its channel pair
//! and `TOL` is about ten times the worst error measured on these problems. (Not each tap's
//! own `Σ|dy·x|`: the transforms mix the whole 6×6 patch, so a tap whose own products are
//! tiny, e.g. on a 1×1 output, gets rounding residue of the patch's other values.) Results must also be bitwise identical at every thread count, and the planner
//! must only pick it where exact results were not asked for.

mod common;

use common::uniform;
use convkit::backward::GradWeightPlan;
use convkit::{reference, ConvDesc, ConvProblem, Layout, PadMode, Padding, PlanOptions, Scalar};
use proptest::prelude::*;

/// Relative bound (to the channel pair's largest Σ|dy·x|) for f32 and f64: the worst errors
/// measured were 2.3e-6 and 5.3e-15 (800 cases of the property test, unit-uniform data;
/// about 1e-6 and 1.5e-15 on the long reductions below).
const TOL_F32: f64 = 2e-5;
const TOL_F64: f64 = 4e-14;

#[derive(Debug, Clone)]
struct Case {
    desc: ConvDesc,
    x_shape: Vec<usize>,
    w_shape: Vec<usize>,
    seed: u64,
}

/// 2-D 3×3 stride-1 problems: 16–40 channels in and out (partial channel blocks), planes from
/// 1×1 output up (partial tiles), asymmetric padding up to 2, zero or constant padding,
/// channels-first and channels-last, true convolution and correlation.
fn case() -> impl Strategy<Value = Case> {
    let mode = prop_oneof![Just(PadMode::Zeros), Just(PadMode::Constant(0.5))];
    (
        (1usize..=3, 16usize..=40, 16usize..=40),
        (1usize..=19, 1usize..=23),
        (0usize..=2, 0usize..=2, 0usize..=2, 0usize..=2),
        (mode, any::<bool>(), any::<bool>(), any::<u64>()),
    )
        .prop_map(|((n, c, k), (h, w), (pt, pb, pl, pr), (mode, last, flip, seed))| {
            // At least a 1×1 output.
            let (h, w) = (h + 2, w + 2);
            let x_shape = if last { vec![n, h, w, c] } else { vec![n, c, h, w] };
            Case {
                desc: ConvDesc::new()
                    .padding(Padding::asymmetric(&[pt, pl], &[pb, pr]))
                    .padding_mode(mode)
                    .layout(if last { Layout::Nhwc } else { Layout::Nchw })
                    .flip(flip),
                x_shape,
                w_shape: vec![k, c, 3, 3],
                seed,
            }
        })
}

/// The worst error of the Winograd weight gradient at every ISA level and thread count on
/// case `c`, relative to the largest Σ|dy·x| of each channel pair's 9 taps; also checks that the thread counts
/// agree bit for bit.
fn worst_error<T: Scalar>(c: &Case, p: &ConvProblem, conv: impl Fn(f64) -> T) -> Result<f64, TestCaseError> {
    let x: Vec<T> = uniform(c.x_shape.iter().product(), c.seed).into_iter().map(&conv).collect();
    let gy: Vec<T> =
        uniform(p.output_shape().iter().product(), c.seed ^ 0x9e37).into_iter().map(&conv).collect();
    let (xf, gf): (Vec<f64>, Vec<f64>) =
        (x.iter().map(|v| v.to_f64()).collect(), gy.iter().map(|v| v.to_f64()).collect());
    let len: usize = p.weight_shape().iter().product();
    let zeros = vec![0.0f64; len];
    let (mut want, mut mag) = (vec![0.0f64; len], vec![0.0f64; len]);
    reference::conv_backward(p, &xf, &zeros, &gf, None, Some(&mut want), None);
    let (xa, ga): (Vec<f64>, Vec<f64>) =
        (xf.iter().map(|v| v.abs()).collect(), gf.iter().map(|v| v.abs()).collect());
    let mut cp = p.clone();
    if let PadMode::Constant(v) = cp.padding_mode {
        cp.padding_mode = PadMode::Constant(v.abs());
    }
    reference::conv_backward(&cp, &xa, &zeros, &ga, None, Some(&mut mag), None);
    for pair in mag.chunks_exact_mut(9) {
        let top = pair.iter().copied().fold(0.0, f64::max);
        pair.fill(top);
    }

    let mut worst = 0.0f64;
    let mut any = false;
    for isa in convkit::isa::available() {
        if convkit::kernels::kernel_set::<T>(isa).is_none() {
            continue;
        }
        let name = convkit::kernels::impl_name("grad-weight-winograd", isa);
        let mut first: Option<Vec<T>> = None;
        for threads in [1, 2, 3] {
            let opts = PlanOptions::new().implementation(&name).max_isa(isa).threads(threads);
            let plan = GradWeightPlan::new(p, &opts).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(plan.implementation(), name.clone());
            let mut got = vec![T::from_f64(7.0); len];
            let mut ws = plan.workspace().map_err(|e| TestCaseError::fail(e.to_string()))?;
            plan.execute(&x, &gy, &mut got, &mut ws).map_err(|e| TestCaseError::fail(e.to_string()))?;
            for ((g, wv), m) in got.iter().zip(&want).zip(&mag) {
                worst = worst.max((g.to_f64() - wv).abs() / m.max(f64::MIN_POSITIVE));
            }
            match &first {
                None => first = Some(got),
                Some(f) => prop_assert!(
                    f.iter().zip(&got).all(|(a, b)| a.to_f64().to_bits() == b.to_f64().to_bits()),
                    "{name}, {threads} threads differs from 1 thread on {p}"
                ),
            }
            any = true;
        }
    }
    prop_assert!(any, "no level ran {p}");
    Ok(worst)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]
    #[test]
    fn winograd_weight_gradient_is_within_its_error_bound(c in case()) {
        let p = ConvProblem::new(&c.desc, &c.x_shape, &c.w_shape).unwrap();
        let e32 = worst_error::<f32>(&c, &p, |v| v as f32)?;
        prop_assert!(e32 <= TOL_F32, "{p}: f32 relative error {e32:.3e} > {TOL_F32:e}");
        let e64 = worst_error::<f64>(&c, &p, |v| v)?;
        prop_assert!(e64 <= TOL_F64, "{p}: f64 relative error {e64:.3e} > {TOL_F64:e}");
    }
}

/// Long reductions (many tiles over several samples, several chunks) and wider channel
/// counts, with the worst error printed for the record.
#[test]
fn long_reductions_stay_within_the_bound() {
    for (n, c, k, h, w, seed) in [(8, 64, 64, 56, 56, 1u64), (2, 100, 36, 30, 37, 2), (1, 17, 130, 58, 58, 3)]
    {
        let case = Case {
            desc: ConvDesc::new().padding(Padding::Same),
            x_shape: vec![n, c, h, w],
            w_shape: vec![k, c, 3, 3],
            seed,
        };
        let p = ConvProblem::new(&case.desc, &case.x_shape, &case.w_shape).unwrap();
        let e32 = worst_error::<f32>(&case, &p, |v| v as f32).unwrap();
        let e64 = worst_error::<f64>(&case, &p, |v| v).unwrap();
        eprintln!("{p}: worst relative error f32 {e32:.3e}, f64 {e64:.3e}");
        assert!(e32 <= TOL_F32, "{p}: f32 relative error {e32:.3e}");
        assert!(e64 <= TOL_F64, "{p}: f64 relative error {e64:.3e}");
    }
}

/// The planner picks it for a 3×3 stride-1 layer with enough channels unless exact results
/// are asked for, and never for problems it does not support.
#[test]
fn winograd_weight_gradient_is_chosen_only_where_allowed() {
    let desc = ConvDesc::new().padding(Padding::Same);
    let p = ConvProblem::new(&desc, &[1, 64, 20, 20], &[64, 64, 3, 3]).unwrap();
    let auto = GradWeightPlan::<f32>::new(&p, &PlanOptions::new()).unwrap();
    assert!(auto.implementation().starts_with("grad-weight-winograd"), "{}", auto.implementation());
    let exact = GradWeightPlan::<f32>::new(&p, &PlanOptions::new().exact(true)).unwrap();
    assert!(exact.implementation().starts_with("grad-weight-gemm"), "{}", exact.implementation());
    let forced = GradWeightPlan::<f32>::new(
        &p,
        &PlanOptions::new().exact(true).implementation("grad-weight-winograd:generic"),
    );
    assert!(forced.is_err());
    for (desc, x, wsh) in [
        (ConvDesc::new().stride([2, 2]), vec![1, 64, 20, 20], vec![64, 64, 3, 3]),
        (ConvDesc::new().dilation([2, 2]), vec![1, 64, 20, 20], vec![64, 64, 3, 3]),
        (ConvDesc::new().groups(2), vec![1, 64, 20, 20], vec![64, 32, 3, 3]),
        (
            ConvDesc::new().padding(Padding::Same).padding_mode(PadMode::Reflect),
            vec![1, 64, 20, 20],
            vec![64, 64, 3, 3],
        ),
        (ConvDesc::new(), vec![1, 8, 20, 20], vec![64, 8, 3, 3]),
        (ConvDesc::new(), vec![1, 64, 20, 20], vec![64, 64, 5, 5]),
        (ConvDesc::new(), vec![1, 64, 20, 20, 20], vec![64, 64, 3, 3, 3]),
        (ConvDesc::new(), vec![1, 64, 20], vec![64, 64, 3]),
    ] {
        let p = ConvProblem::new(&desc, &x, &wsh).unwrap();
        let plan = GradWeightPlan::<f32>::new(&p, &PlanOptions::new()).unwrap();
        assert!(!plan.implementation().starts_with("grad-weight-winograd"), "{p}: {}", plan.implementation());
        let forced = GradWeightPlan::<f32>::new(
            &p,
            &PlanOptions::new().implementation("grad-weight-winograd:generic"),
        );
        assert!(forced.is_err(), "{p}");
    }
}
