//! `winograd-1d` (F(4, 2) and F(4, 3)) against the reference. It is approximate, so the check
//! is a bound: every output within `TOL · (Σ|w·x| + |b|)` of the exact result (computed in
//! f64), where `TOL` is about ten times the worst error measured on these problems. Results
//! must also be bitwise identical at every thread count, and the planner must only pick it
//! where exact results were not asked for.

mod common;

use common::{uniform, Case};
use convkit::{
    reference, ConvDesc, ConvPlan, ConvProblem, ConvTransposeDesc, ConvTransposePlan, ConvTransposeProblem,
    PadMode, Padding, PlanOptions, Scalar,
};
use proptest::prelude::*;

/// Relative bound (to the sum of |w·x| per output) for f32 and f64: the worst errors measured
/// were about 8.2e-7 and 1.4e-15 (`long_reductions_and_many_tiles_stay_within_the_bound`).
const TOL_F32: f64 = 5e-6;
const TOL_F64: f64 = 1e-14;

/// The worst error of `winograd-1d` on case `c` ([`common::approx_worst_error`]).
fn worst_error<T: Scalar>(c: &Case, p: &ConvProblem, conv: impl Fn(f64) -> T) -> Result<f64, TestCaseError> {
    common::approx_worst_error(c, p, conv, |name| name.starts_with("winograd-1d"))
}

/// 1-D problems with kernels of 2 and 3 taps, the 64 or more channels they need, lengths that
/// leave partial tiles and panels, padding below the kernel on either side (zeros or a
/// constant), true convolution, batches and bias.
fn case() -> impl Strategy<Value = Case> {
    let mode = prop_oneof![Just(PadMode::Zeros), Just(PadMode::Constant(0.5))];
    (
        (1usize..=3, 64usize..=90, 64usize..=90),
        (1usize..=150, 2usize..=3, 0usize..=2, 0usize..=2),
        (mode, any::<bool>(), any::<bool>(), any::<u64>()),
    )
        .prop_map(|((n, c, k), (len, ka, pb, pe), (mode, flip, bias, seed))| {
            // 2 taps need twice the channels.
            let (c, k) = if ka == 2 { (c + 64, k + 64) } else { (c, k) };
            // Padding below the kernel: an output reading only padding would be 0 exactly,
            // which no bound relative to its own |w·x| holds (see `winograd`).
            let (pb, pe) = (pb.min(ka - 1), pe.min(ka - 1));
            Case {
                desc: ConvDesc::new()
                    .padding(Padding::asymmetric(&[pb], &[pe]))
                    .padding_mode(mode)
                    .flip(flip),
                x_shape: vec![n, c, len + ka + 2],
                w_shape: vec![k, c, ka],
                bias,
                seed,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]
    #[test]
    fn winograd_1d_is_within_its_error_bound(c in case()) {
        let p = ConvProblem::new(&c.desc, &c.x_shape, &c.w_shape).unwrap();
        let e32 = worst_error::<f32>(&c, &p, |v| v as f32)?;
        prop_assert!(e32 <= TOL_F32, "{p}: f32 relative error {e32:.3e} > {TOL_F32:e}");
        let e64 = worst_error::<f64>(&c, &p, |v| v)?;
        prop_assert!(e64 <= TOL_F64, "{p}: f64 relative error {e64:.3e} > {TOL_F64:e}");
    }
}

/// Long reductions (several blocks of input channels) and many tiles (several blocks of
/// panels, a partial last panel and tile), with the worst error printed for the record.
#[test]
fn long_reductions_and_many_tiles_stay_within_the_bound() {
    for (n, c, k, len, ka, pad, seed) in [
        (1, 300, 70, 333, 3, 1, 1u64),
        (2, 128, 140, 1001, 2, 1, 2),
        (1, 520, 128, 77, 2, 0, 3),
        (1, 128, 129, 2051, 3, 0, 4),
    ] {
        let case = Case {
            desc: ConvDesc::new().padding(Padding::uniform(pad)),
            x_shape: vec![n, c, len],
            w_shape: vec![k, c, ka],
            bias: true,
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

/// The planner picks it for 1-D layers of 2 or 3 taps with enough channels unless exact
/// results are asked for, and never for problems it does not support.
#[test]
fn winograd_1d_is_chosen_only_where_allowed() {
    let desc = ConvDesc::new().padding(Padding::uniform(1));
    let p = ConvProblem::new(&desc, &[1, 64, 100], &[64, 64, 3]).unwrap();
    let w = vec![0.5f32; 64 * 64 * 3];
    let auto = ConvPlan::new(&p, &w, &PlanOptions::new()).unwrap();
    assert!(auto.implementation().starts_with("winograd-1d"), "{}", auto.explain());
    let exact = ConvPlan::new(&p, &w, &PlanOptions::new().exact(true)).unwrap();
    assert!(exact.implementation().starts_with("gemm-tiled"), "{}", exact.explain());
    assert!(
        ConvPlan::new(&p, &w, &PlanOptions::new().exact(true).implementation("winograd-1d:generic")).is_err()
    );
    for (desc, x, wsh) in [
        (ConvDesc::new().stride([2]), [1, 64, 100], [64, 64, 3]),
        (ConvDesc::new().dilation([2]), [1, 64, 100], [64, 64, 3]),
        (ConvDesc::new(), [1, 32, 100], [64, 32, 3]),
        (ConvDesc::new(), [1, 100, 100], [128, 100, 2]),
        (ConvDesc::new(), [1, 64, 100], [64, 64, 4]),
        (ConvDesc::new().groups(2), [1, 256, 100], [128, 128, 2]),
        (
            ConvDesc::new().padding(Padding::uniform(1)).padding_mode(PadMode::Reflect),
            [1, 64, 100],
            [64, 64, 3],
        ),
        (ConvDesc::new().layout(convkit::Layout::Nhwc), [1, 100, 64], [64, 64, 3]),
    ] {
        let p = ConvProblem::new(&desc, &x, &wsh).unwrap();
        let plan = ConvPlan::new(&p, &vec![0.5f32; wsh.iter().product()], &PlanOptions::new()).unwrap();
        assert!(!plan.implementation().starts_with("winograd-1d"), "{}", plan.explain());
    }
}

/// A 1-D transposed convolution whose kernel is twice its stride runs its 2-tap phases on it
/// (unless exact results are asked for), within the bound of the exact transposed
/// convolution, at every thread count.
#[test]
fn transposed_2_tap_phases_run_on_it_within_the_bound() {
    let d = ConvTransposeDesc::new().stride([8]).padding(Padding::uniform(4));
    let p = ConvTransposeProblem::new(&d, &[2, 128, 75], &[128, 70, 16]).unwrap();
    let x: Vec<f32> = uniform(2 * 128 * 75, 7).into_iter().map(|v| v as f32).collect();
    let w: Vec<f32> = uniform(128 * 70 * 16, 8).into_iter().map(|v| v as f32).collect();
    let b: Vec<f32> = uniform(70, 9).into_iter().map(|v| v as f32).collect();
    let len = p.output_shape().iter().product();
    let f = |v: &[f32]| -> Vec<f64> { v.iter().map(|&v| v as f64).collect() };
    let a = |v: &[f64]| -> Vec<f64> { v.iter().map(|v| v.abs()).collect() };
    let (xf, wf, bf) = (f(&x), f(&w), f(&b));
    let (mut want, mut mag) = (vec![0.0f64; len], vec![0.0f64; len]);
    reference::conv_transpose(&p, &xf, &wf, Some(&bf), &mut want);
    reference::conv_transpose(&p, &a(&xf), &a(&wf), Some(&a(&bf)), &mut mag);
    let exact = ConvTransposePlan::new(&p, &w, &PlanOptions::new().exact(true)).unwrap();
    assert!(!exact.implementation().contains("winograd-1d"), "{}", exact.implementation());
    for isa in convkit::isa::available() {
        let mut first: Option<Vec<f32>> = None;
        for threads in [1, 2, 3] {
            let plan =
                ConvTransposePlan::new(&p, &w, &PlanOptions::new().max_isa(isa).threads(threads)).unwrap();
            assert_eq!(plan.implementation(), format!("phase-split(winograd-1d:{isa})"));
            let got = plan.run(&x, Some(&b)).unwrap();
            let worst = got
                .iter()
                .zip(&want)
                .zip(&mag)
                .map(|((g, w), m)| (*g as f64 - w).abs() / m)
                .fold(0.0, f64::max);
            assert!(worst <= TOL_F32, "{isa}, {threads} threads: relative error {worst:.3e}");
            match &first {
                None => first = Some(got),
                Some(f) => assert!(f.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits())),
            }
        }
    }
}

/// `polyphase-winograd-1d` (3 taps at stride 2): its 2-tap even part on `winograd-1d`, its
/// odd tap exact; odd and even lengths, padding 0–2 on either side, zero and constant
/// padding, true convolution, batches, bias — within the same bound, bit for bit at every
/// thread count, and picked by the planner only where exact results are not asked for.
#[test]
fn polyphase_stride_2_stays_within_the_bound() {
    for (n, c, k, len, pb, pe, mode, flip, seed) in [
        (1, 128, 128, 3199, 0, 0, PadMode::Zeros, false, 21u64),
        (2, 130, 140, 101, 1, 1, PadMode::Constant(0.5), true, 22),
        (1, 300, 129, 70, 2, 1, PadMode::Zeros, true, 23),
        (3, 128, 160, 64, 1, 2, PadMode::Constant(-1.5), false, 24),
    ] {
        let case = Case {
            desc: ConvDesc::new()
                .stride([2])
                .padding(Padding::asymmetric(&[pb], &[pe]))
                .padding_mode(mode)
                .flip(flip),
            x_shape: vec![n, c, len],
            w_shape: vec![k, c, 3],
            bias: seed % 2 == 1,
            seed,
        };
        let p = ConvProblem::new(&case.desc, &case.x_shape, &case.w_shape).unwrap();
        let x: Vec<f32> =
            uniform(case.x_shape.iter().product(), seed).into_iter().map(|v| v as f32).collect();
        let w: Vec<f32> =
            uniform(case.w_shape.iter().product(), seed ^ 0x9e37).into_iter().map(|v| v as f32).collect();
        let b: Option<Vec<f32>> =
            case.bias.then(|| uniform(k, seed ^ 0x51).into_iter().map(|v| v as f32).collect());
        let (want, mag) = common::exact_and_magnitude(&p, &x, &w, b.as_deref());
        let mut worst = 0.0f64;
        for isa in convkit::isa::available() {
            let mut first: Option<Vec<f32>> = None;
            for threads in [1, 2, 3] {
                let opts = PlanOptions::new().max_isa(isa).threads(threads);
                let plan = ConvPlan::new(&p, &w, &opts).unwrap();
                assert_eq!(
                    plan.implementation(),
                    format!("polyphase-winograd-1d:{isa}"),
                    "{}",
                    plan.explain()
                );
                let got = plan.run(&x, b.as_deref()).unwrap();
                for ((g, wv), m) in got.iter().zip(&want).zip(&mag) {
                    worst = worst.max((*g as f64 - wv).abs() / m.max(f64::MIN_POSITIVE));
                }
                match &first {
                    None => first = Some(got),
                    Some(f) => assert!(f.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits())),
                }
            }
        }
        eprintln!("{p}: worst relative error f32 {worst:.3e}");
        assert!(worst <= TOL_F32, "{p}: f32 relative error {worst:.3e}");
    }
    let p = ConvProblem::new(&ConvDesc::new().stride([2]), &[1, 128, 100], &[128, 128, 3]).unwrap();
    let w = vec![0.5f32; 128 * 128 * 3];
    let exact = ConvPlan::new(&p, &w, &PlanOptions::new().exact(true)).unwrap();
    assert!(exact.implementation().starts_with("gemm-tiled"), "{}", exact.explain());
    for (desc, x, wsh) in [
        (ConvDesc::new().stride([2]), [1, 64, 100], [128, 64, 3]),
        (ConvDesc::new().stride([3]), [1, 128, 100], [128, 128, 3]),
        (ConvDesc::new().stride([2]).dilation([2]), [1, 128, 100], [128, 128, 3]),
        (ConvDesc::new().stride([2]), [1, 128, 100], [128, 128, 5]),
        (
            ConvDesc::new().stride([2]).padding(Padding::uniform(1)).padding_mode(PadMode::Circular),
            [1, 128, 100],
            [128, 128, 3],
        ),
    ] {
        let p = ConvProblem::new(&desc, &x, &wsh).unwrap();
        let plan = ConvPlan::new(&p, &vec![0.5f32; wsh.iter().product()], &PlanOptions::new()).unwrap();
        assert!(!plan.implementation().starts_with("polyphase-winograd-1d"), "{}", plan.explain());
    }
}
