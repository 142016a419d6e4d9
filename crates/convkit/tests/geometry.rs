//! Implementations take their tile shape from the kernel set, never from a constant: every
//! GEMM-based implementation runs on portable kernel sets of tile shapes no SIMD level has
//! (narrow, wide, tall, odd), at 1–3 threads, and must equal the reference bit for bit on
//! small-integer data.

mod common;
use common::{case, ints};
use convkit::backward::GradWeightPlan;
use convkit::impls::gemm_tiled::GemmTiled;
use convkit::impls::grad_weight::GradWeight;
use convkit::impls::pointwise::{self, Pointwise};
use convkit::impls::ConvImpl;
use convkit::kernels::generic::kernel_set_with;
use convkit::kernels::KernelSet;
use convkit::{reference, ConvProblem, PlanOptions};
use proptest::prelude::*;

/// Tile shapes: rows × columns.
fn sets() -> Vec<KernelSet<f64>> {
    vec![
        kernel_set_with::<f64, 1, 2>(),
        kernel_set_with::<f64, 4, 8>(),
        kernel_set_with::<f64, 5, 24>(),
        kernel_set_with::<f64, 16, 16>(),
        kernel_set_with::<f64, 3, 32>(),
    ]
}

fn run(imp: &dyn ConvImpl<f64>, x: &[f64], b: Option<&[f64]>, len: usize, threads: usize) -> Vec<f64> {
    let mut y = vec![f64::NAN; len];
    let mut ws = vec![f64::NAN; imp.workspace(threads)];
    imp.execute(x, b, &mut y, &mut ws, threads);
    y
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]
    #[test]
    fn gemm_implementations_work_in_any_tile_shape(c in case()) {
        let p = ConvProblem::new(&c.desc, &c.x_shape, &c.w_shape);
        prop_assume!(p.is_ok());
        let p = p.unwrap();
        let x = ints(c.x_shape.iter().product(), c.seed);
        let w = ints(c.w_shape.iter().product(), c.seed ^ 0x9e37);
        let b: Option<Vec<f64>> = c.bias.then(|| ints(p.out_channels, c.seed ^ 0x51));
        let len: usize = p.output_shape().iter().product();
        let mut want = vec![0.0; len];
        reference::conv_forward(&p, &x, &w, b.as_deref(), &mut want);
        let gy = ints(len, c.seed ^ 0x77);
        let zeros = vec![0.0; w.len()];
        let mut want_gw = zeros.clone();
        reference::conv_backward(&p, &x, &zeros, &gy, None, Some(&mut want_gw), None);
        for set in sets() {
            let g = set.geometry;
            for threads in [1, 2, 3] {
                let got = run(&GemmTiled::new(&p, &w, set), &x, b.as_deref(), len, threads);
                prop_assert!(got == want, "{p}: gemm-tiled with {}x{} tiles, {threads} threads", g.mr, g.nr);
                if pointwise::supports(&p, g.nr).is_ok() {
                    let got = run(&Pointwise::new(&p, &w, set), &x, b.as_deref(), len, threads);
                    prop_assert!(got == want, "{p}: pointwise with {}x{} tiles, {threads} threads", g.mr, g.nr);
                }
                if let Some(gw) = GradWeight::new(&p, set) {
                    let mut got = vec![7.0; w.len()];
                    let mut ws = vec![f64::NAN; gw.workspace(threads)];
                    gw.execute(&x, &gy, &mut got, &mut ws, threads);
                    prop_assert!(got == want_gw, "{p}: weight gradient with {}x{} tiles, {threads} threads", g.mr, g.nr);
                }
            }
        }
    }
}

/// The weight-gradient plan names the level of the kernel set it runs on, and refuses a level
/// the CPU lacks or the cap rules out.
#[test]
fn weight_gradient_plans_name_their_level() {
    let p = ConvProblem::new(&convkit::ConvDesc::new(), &[1, 2, 9], &[3, 2, 3]).unwrap();
    for isa in convkit::isa::available() {
        if convkit::kernels::kernel_set::<f32>(isa).is_none() {
            continue;
        }
        let name = convkit::kernels::impl_name("grad-weight-gemm", isa);
        let plan = GradWeightPlan::<f32>::new(&p, &PlanOptions::new().implementation(&name));
        assert_eq!(plan.unwrap().implementation(), name);
    }
    let err = GradWeightPlan::<f32>::new(&p, &PlanOptions::new().implementation("grad-weight-gemm:sse9"));
    assert!(err.is_err());
}
