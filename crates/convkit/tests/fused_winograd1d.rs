//! `fused-winograd-1d` (F(2, 2) over the stride's phases) against the reference. It is
//! approximate, so the check is a bound: every output within `TOL · (Σ|w·x| + |b|)` of the
//! exact result (computed in f64), where `TOL` is about ten times the worst error measured on
//! these problems. Results must also be bitwise identical at every thread count, and the
//! planner must pick it only where exact results were not asked for. Only AVX-512 has its
//! kernel: on other CPUs the bound tests check that nothing offers it.

mod common;

use common::Case;
use convkit::impls::candidates;
use convkit::isa::Isa;
use convkit::{ConvDesc, ConvPlan, ConvProblem, PadMode, Padding, PlanOptions};
use proptest::prelude::*;

/// Relative bound (to the sum of |w·x| per output) for f32: the worst error measured was
/// about 2e-7 (`wav2vec_and_long_rows_stay_within_the_bound`).
const TOL_F32: f64 = 2e-6;

const NAME: &str = "fused-winograd-1d";

/// The worst relative error of every level offering `fused-winograd-1d` on case `c`, each at
/// 1, 2 and 3 threads (which must agree bit for bit); `None` where no level offers it.
fn worst_error(c: &Case) -> Result<Option<f64>, TestCaseError> {
    let p = ConvProblem::new(&c.desc, &c.x_shape, &c.w_shape).unwrap();
    let offered = candidates::<f32>().into_iter().any(|cand| {
        cand.name.starts_with(NAME)
            && convkit::isa::available().into_iter().any(|i| cand.supports(&p, i).is_ok())
    });
    if !offered {
        return Ok(None);
    }
    common::approx_worst_error(c, &p, |v| v as f32, |name| name.starts_with(NAME)).map(Some)
}

/// 1-D problems whose kernel is twice the stride (strides 2–6, so 4–12 taps), 1–8 input
/// channels (at most 32 phase channels), lengths leaving partial tiles and panels, padding
/// below the kernel on either side (zeros or a constant), true convolution, batches, bias.
fn case() -> impl Strategy<Value = Case> {
    let mode = prop_oneof![Just(PadMode::Zeros), Just(PadMode::Constant(0.5))];
    (
        (1usize..=3, 1usize..=8, 1usize..=40, 2usize..=6),
        (32usize..=150, 0usize..=11, 0usize..=11),
        (mode, any::<bool>(), any::<bool>(), any::<u64>()),
    )
        .prop_map(|((n, c, k, s), (outs, pb, pe), (mode, flip, bias, seed))| {
            let (c, taps) = (c.min(64 / s), 2 * s);
            let (pb, pe) = (pb.min(taps - 1), pe.min(taps - 1));
            // `outs` outputs (give or take the padding and a partial stride).
            let len = (outs - 1) * s + taps + seed as usize % s;
            Case {
                desc: ConvDesc::new()
                    .stride([s])
                    .padding(Padding::asymmetric(&[pb], &[pe]))
                    .padding_mode(mode)
                    .flip(flip),
                x_shape: vec![n, c, len],
                w_shape: vec![k, c, taps],
                bias,
                seed,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]
    #[test]
    fn fused_winograd_1d_is_within_its_error_bound(c in case()) {
        if let Some(e) = worst_error(&c)? {
            prop_assert!(e <= TOL_F32, "{:?} {:?}: f32 relative error {e:.3e} > {TOL_F32:e}", c.x_shape, c.w_shape);
        }
    }
}

/// wav2vec's first layer (one channel, 10 taps at stride 5, 512 filters), long rows split
/// over several chunks of panels, and many phase channels (64 at stride 2, 500 at stride 5),
/// with the worst error printed for the record.
#[test]
fn wav2vec_and_long_rows_stay_within_the_bound() {
    for (n, c, k, len, s, pad, seed) in [
        (1, 1, 512, 16000, 5, 0, 1u64),
        (2, 3, 20, 9001, 2, 1, 2),
        (1, 16, 9, 700, 4, 3, 3),
        (1, 32, 17, 257, 2, 1, 4),
        (1, 100, 16, 400, 5, 2, 5),
    ] {
        let case = Case {
            desc: ConvDesc::new().stride([s]).padding(Padding::uniform(pad)),
            x_shape: vec![n, c, len],
            w_shape: vec![k, c, 2 * s],
            bias: true,
            seed,
        };
        if let Some(e) = worst_error(&case).unwrap() {
            eprintln!("{:?} {:?} stride {s}: worst relative error f32 {e:.3e}", case.x_shape, case.w_shape);
            assert!(e <= TOL_F32, "{:?}: f32 relative error {e:.3e}", case.x_shape);
        }
    }
}

/// The planner picks it for wav2vec's first layer where the CPU has AVX2 or AVX-512 unless
/// exact results are asked for, never at the portable level or for f64, and never for
/// problems it does not support.
#[test]
fn fused_winograd_1d_is_chosen_only_where_allowed() {
    let p = ConvProblem::new(&ConvDesc::new().stride([5]), &[1, 1, 16000], &[512, 1, 10]).unwrap();
    let w = vec![0.5f32; 512 * 10];
    let auto = ConvPlan::new(&p, &w, &PlanOptions::new()).unwrap();
    let has_simd = convkit::isa::available().iter().any(|&i| i >= Isa::Avx2Fma);
    assert_eq!(auto.implementation().starts_with(NAME), has_simd, "{}", auto.explain());
    let exact = ConvPlan::new(&p, &w, &PlanOptions::new().exact(true)).unwrap();
    assert!(exact.implementation().starts_with("gemm-tiled"), "{}", exact.explain());
    let generic = ConvPlan::new(&p, &w, &PlanOptions::new().max_isa(Isa::Generic)).unwrap();
    assert!(!generic.implementation().starts_with(NAME), "{}", generic.explain());
    if convkit::isa::available().contains(&Isa::Avx2Fma) {
        let avx2 = ConvPlan::new(&p, &w, &PlanOptions::new().max_isa(Isa::Avx2Fma)).unwrap();
        assert_eq!(avx2.implementation(), format!("{NAME}:avx2"), "{}", avx2.explain());
    }
    let w64 = vec![0.5f64; 512 * 10];
    let f64_plan = ConvPlan::new(&p, &w64, &PlanOptions::new()).unwrap();
    assert!(!f64_plan.implementation().starts_with(NAME), "{}", f64_plan.explain());
    for (desc, x, wsh) in [
        (ConvDesc::new().stride([5]), [1, 1, 16000], [512, 1, 9]),
        (ConvDesc::new().stride([5]).dilation([2]), [1, 1, 16000], [512, 1, 10]),
        (ConvDesc::new().stride([2]).groups(2), [1, 2, 1000], [8, 1, 4]),
        (ConvDesc::new().stride([2]).layout(convkit::Layout::Nhwc), [1, 1000, 2], [8, 2, 4]),
        (
            ConvDesc::new().stride([2]).padding(Padding::uniform(1)).padding_mode(PadMode::Reflect),
            [1, 2, 1000],
            [8, 2, 4],
        ),
        (ConvDesc::new().stride([5]), [1, 103, 2000], [8, 103, 10]),
        (ConvDesc::new(), [1, 8, 1000], [8, 8, 2]),
        (ConvDesc::new().stride([5]), [1, 1, 160], [512, 1, 10]),
    ] {
        let p = ConvProblem::new(&desc, &x, &wsh).unwrap();
        let plan = ConvPlan::new(&p, &vec![0.5f32; wsh.iter().product()], &PlanOptions::new()).unwrap();
        assert!(!plan.implementation().starts_with(NAME), "{}", plan.explain());
    }
    let p = ConvProblem::new(&ConvDesc::new().stride([2, 2]), &[1, 1, 100, 100], &[8, 1, 4, 4]).unwrap();
    let plan = ConvPlan::new(&p, &[0.5f32; 8 * 16], &PlanOptions::new()).unwrap();
    assert!(!plan.implementation().starts_with(NAME), "{}", plan.explain());
}
