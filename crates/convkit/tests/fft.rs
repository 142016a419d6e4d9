//! FFT convolution (`fft:generic`) against the f64 reference. It is approximate, so the check
//! is a bound: every output within `TOL · (Σ|w_k| · max|x| + |b_k|)` of the exact result, the
//! scale the transforms' rounding grows with (see `convkit::impls::fft`); `TOL` is about ten
//! times the worst error measured on these problems. Results must be bitwise identical at
//! every thread count, and the planner must only pick the FFT path for large kernels, and
//! never when exact results are asked for.

mod common;

use common::uniform;
use convkit::{
    reference, ConvDesc, ConvPlan, ConvProblem, Isa, Layout, PadMode, Padding, PlanOptions, Scalar,
};
use proptest::prelude::*;

/// Relative bounds for f32 and f64 (to `Σ|w_k| · max|x| + |b_k|`): the worst errors measured
/// were about 3.0e-8 and 2.9e-16 (unit-uniform data, kernels up to 35×35 and 700 taps).
const TOL_F32: f64 = 3e-7;
const TOL_F64: f64 = 3e-15;

const FFT: &str = "fft:generic";

#[derive(Debug, Clone)]
struct Case {
    desc: ConvDesc,
    x_shape: Vec<usize>,
    w_shape: Vec<usize>,
    bias: bool,
    seed: u64,
}

fn case(desc: ConvDesc, x_shape: &[usize], w_shape: &[usize], bias: bool, seed: u64) -> Case {
    Case { desc, x_shape: x_shape.to_vec(), w_shape: w_shape.to_vec(), bias, seed }
}

/// Data of case `c` in `T`: input, weight, bias.
#[allow(clippy::type_complexity)]
fn data<T: Scalar>(c: &Case, p: &ConvProblem) -> (Vec<T>, Vec<T>, Option<Vec<T>>) {
    let conv = |v: Vec<f64>| v.into_iter().map(T::from_f64).collect::<Vec<T>>();
    let x = conv(uniform(c.x_shape.iter().product(), c.seed));
    let w = conv(uniform(c.w_shape.iter().product(), c.seed ^ 0x9e37));
    let b = c.bias.then(|| conv(uniform(p.out_channels, c.seed ^ 0x51)));
    (x, w, b)
}

/// The error scale of output channel `k`: `Σ|w_k| · max|x| + |b_k|`.
fn scales<T: Scalar>(p: &ConvProblem, x: &[T], w: &[T], b: Option<&[T]>) -> Vec<f64> {
    let xmax = x.iter().fold(0.0f64, |m, v| m.max(v.to_f64().abs()));
    let per = w.len() / p.out_channels;
    (0..p.out_channels)
        .map(|k| {
            let sw: f64 = w[k * per..][..per].iter().map(|v| v.to_f64().abs()).sum();
            sw * xmax + b.map_or(0.0, |b| b[k].to_f64().abs())
        })
        .collect()
}

/// Output channel of flat output index `i`.
fn channel(p: &ConvProblem, i: usize) -> usize {
    let plane: usize = p.output_spatial().iter().product();
    match p.layout {
        Layout::Nchw => i / plane % p.out_channels,
        Layout::Nhwc => i % p.out_channels,
    }
}

/// Worst relative error of the FFT path on case `c` at 1, 2 and 3 threads (all identical bit
/// for bit), or a failure.
fn worst_error<T: Scalar>(c: &Case) -> Result<f64, TestCaseError> {
    let p =
        ConvProblem::new(&c.desc, &c.x_shape, &c.w_shape).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let (x, w, b) = data::<T>(c, &p);
    let f64s = |v: &[T]| v.iter().map(|v| v.to_f64()).collect::<Vec<f64>>();
    let mut want = vec![0.0f64; p.output_shape().iter().product()];
    reference::conv_forward(&p, &f64s(&x), &f64s(&w), b.as_deref().map(f64s).as_deref(), &mut want);
    let scale = scales(&p, &x, &w, b.as_deref());
    let mut first: Option<Vec<T>> = None;
    let mut worst = 0.0f64;
    for threads in [1, 2, 3] {
        let opts = PlanOptions::new().implementation(FFT).threads(threads);
        let plan = ConvPlan::new(&p, &w, &opts).map_err(|e| TestCaseError::fail(format!("{p}: {e}")))?;
        let got = plan.run(&x, b.as_deref()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (i, (g, wv)) in got.iter().zip(&want).enumerate() {
            let e = (g.to_f64() - wv).abs() / scale[channel(&p, i)];
            // NaN-safe: a NaN output fails.
            if e.is_nan() || e > worst {
                worst = if e.is_nan() { f64::INFINITY } else { e };
            }
        }
        match &first {
            None => first = Some(got),
            Some(f) => prop_assert!(
                f.iter().zip(&got).all(|(a, b)| a.to_f64().to_bits() == b.to_f64().to_bits()),
                "{p}: {threads} threads differ from 1 thread"
            ),
        }
    }
    Ok(worst)
}

fn check(c: &Case) {
    let p = ConvProblem::new(&c.desc, &c.x_shape, &c.w_shape).unwrap();
    let e32 = worst_error::<f32>(c).unwrap();
    let e64 = worst_error::<f64>(c).unwrap();
    eprintln!("{p}: worst relative error f32 {e32:.2e}, f64 {e64:.2e}");
    assert!(e32 <= TOL_F32, "{p}: f32 relative error {e32:.3e} > {TOL_F32:e}");
    assert!(e64 <= TOL_F64, "{p}: f64 relative error {e64:.3e} > {TOL_F64:e}");
}

/// 2-D: odd and even sizes, every padding rule, flip, bias, dilation, both layouts.
#[test]
fn two_d_matches_the_reference() {
    let same = || ConvDesc::new().padding(Padding::Same);
    for c in [
        case(same(), &[1, 1, 64, 64], &[1, 1, 31, 31], false, 1),
        case(same(), &[1, 1, 67, 53], &[1, 1, 21, 19], true, 2),
        case(same().flip(true), &[2, 1, 48, 61], &[1, 1, 25, 22], true, 3),
        case(ConvDesc::new().padding(Padding::Valid), &[1, 1, 90, 77], &[1, 1, 21, 25], false, 4),
        case(ConvDesc::new().padding(Padding::Full), &[1, 1, 40, 33], &[1, 1, 16, 19], true, 5),
        case(
            ConvDesc::new().padding(Padding::asymmetric(&[0, 13], &[20, 2])),
            &[1, 1, 50, 45],
            &[1, 1, 23, 14],
            true,
            6,
        ),
        case(ConvDesc::new().padding(Padding::SameLower), &[1, 1, 38, 70], &[1, 1, 20, 19], false, 7),
        case(same().dilation([2, 2]), &[1, 1, 100, 110], &[1, 1, 21, 21], true, 8),
        case(same().layout(Layout::Nhwc).flip(true), &[1, 70, 52, 1], &[1, 1, 19, 19], true, 9),
        // A tall image: the transform length along rows differs much from the columns'.
        case(same(), &[1, 1, 211, 30], &[1, 1, 29, 13], true, 10),
        // Several tiles along both axes, the last ones partial.
        case(same(), &[1, 1, 400, 530], &[1, 1, 31, 31], true, 17),
        case(
            ConvDesc::new().padding(Padding::Valid).flip(true),
            &[1, 1, 509, 301],
            &[1, 1, 25, 35],
            false,
            18,
        ),
    ] {
        check(&c);
    }
}

/// Depthwise RGB filtering, a channel multiplier, and small dense channel mixes (sums over
/// input channels in the frequency domain), both layouts.
#[test]
fn channels_and_groups_match_the_reference() {
    let same = || ConvDesc::new().padding(Padding::Same);
    for c in [
        case(same().groups(3), &[1, 3, 60, 64], &[3, 1, 21, 21], true, 11),
        case(same().groups(3).layout(Layout::Nhwc), &[2, 41, 64, 3], &[3, 1, 21, 21], true, 12),
        case(same().groups(2).flip(true), &[1, 2, 50, 50], &[4, 1, 25, 25], true, 13),
        case(same(), &[1, 2, 56, 48], &[3, 2, 25, 25], true, 14),
        case(same().layout(Layout::Nhwc), &[2, 40, 40, 3], &[2, 3, 27, 27], false, 15),
        case(same().groups(2), &[1, 4, 44, 44], &[4, 2, 31, 31], true, 16),
    ] {
        check(&c);
    }
}

/// 1-D signals with long kernels.
#[test]
fn one_d_matches_the_reference() {
    for c in [
        case(ConvDesc::new().padding(Padding::Same), &[1, 1, 3000], &[1, 1, 601], true, 21),
        case(ConvDesc::new().padding(Padding::Valid).flip(true), &[2, 1, 2047], &[1, 1, 500], false, 22),
        case(ConvDesc::new().padding(Padding::Full).groups(2), &[1, 2, 1500], &[2, 1, 700], true, 23),
        case(
            ConvDesc::new().padding(Padding::Same).layout(Layout::Nhwc),
            &[1, 2501, 2],
            &[3, 2, 401],
            true,
            24,
        ),
    ] {
        check(&c);
    }
}

/// Images several transform tiles wide and tall (overlap-save), the last tiles partial:
/// both layouts, depthwise with a multiplier, a dense mix, 1-D.
#[test]
fn tiled_problems_match_the_reference() {
    let same = || ConvDesc::new().padding(Padding::Same);
    for c in [
        case(same(), &[1, 1, 300, 420], &[1, 1, 15, 15], true, 41),
        case(
            ConvDesc::new().padding(Padding::asymmetric(&[3, 20], &[14, 0])).flip(true),
            &[1, 1, 333, 291],
            &[1, 1, 17, 13],
            true,
            42,
        ),
        case(same().groups(3).layout(Layout::Nhwc), &[1, 260, 250, 3], &[3, 1, 15, 15], true, 43),
        case(same().groups(2), &[1, 2, 520, 200], &[4, 1, 15, 15], true, 44),
        case(same().layout(Layout::Nhwc), &[1, 520, 180, 2], &[2, 2, 15, 15], false, 45),
        case(same(), &[1, 1, 40000], &[1, 1, 301], true, 46),
        case(
            ConvDesc::new().padding(Padding::Full).layout(Layout::Nhwc),
            &[2, 30000, 1],
            &[1, 1, 257],
            false,
            47,
        ),
    ] {
        check(&c);
    }
}

/// Random 2-D problems (sizes, kernels, padding, flip, bias, layout, channels), skipping those
/// the cost model leaves to direct convolution.
fn random_case() -> impl Strategy<Value = Case> {
    (
        (20usize..=90, 20usize..=90, 11usize..=33, 11usize..=33),
        (0usize..=16, 0usize..=16, 0usize..=16, 0usize..=16),
        (1usize..=2, 1usize..=3, any::<bool>()),
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<u64>()),
    )
        .prop_map(|((h, w, kh, kw), (pt, pb, pl, pr), (n, c, dw), (flip, bias, last, seed))| {
            let (groups, k) = if dw { (c, c) } else { (1, 1) };
            let (h, w) = (h.max(kh), w.max(kw));
            let x_shape = if last { vec![n, h, w, c] } else { vec![n, c, h, w] };
            Case {
                desc: ConvDesc::new()
                    .padding(Padding::asymmetric(&[pt, pl], &[pb, pr]))
                    .groups(groups)
                    .flip(flip)
                    .layout(if last { Layout::Nhwc } else { Layout::Nchw }),
                x_shape,
                w_shape: vec![k, c / groups, kh, kw],
                bias,
                seed,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn random_problems_are_within_the_bound(c in random_case()) {
        let p = ConvProblem::new(&c.desc, &c.x_shape, &c.w_shape).unwrap();
        let w = vec![0.5f32; c.w_shape.iter().product()];
        prop_assume!(ConvPlan::new(&p, &w, &PlanOptions::new().implementation(FFT)).is_ok());
        let e32 = worst_error::<f32>(&c)?;
        prop_assert!(e32 <= TOL_F32, "{p}: f32 relative error {e32:.3e} > {TOL_F32:e}");
        let e64 = worst_error::<f64>(&c)?;
        prop_assert!(e64 <= TOL_F64, "{p}: f64 relative error {e64:.3e} > {TOL_F64:e}");
    }
}

/// A large image (many tiles, a workspace far below the whole image's transform), checked
/// against direct sums in f64: every 37th row in full, and every row at a few columns.
#[test]
fn tiles_of_a_large_image_match_direct_sums() {
    let (h, wd, k) = (5000usize, 700usize, 31usize);
    let c = case(ConvDesc::new().padding(Padding::Same).flip(true), &[1, 1, h, wd], &[1, 1, k, k], true, 31);
    let p = ConvProblem::new(&c.desc, &c.x_shape, &c.w_shape).unwrap();
    let (x, w, b) = data::<f32>(&c, &p);
    let plan = ConvPlan::new(&p, &w, &PlanOptions::new().implementation(FFT).threads(2)).unwrap();
    assert!(plan.workspace_len() * 4 < 16 << 20, "{}", plan.workspace_len());
    let got = plan.run(&x, b.as_deref()).unwrap();
    let scale = scales(&p, &x, &w, b.as_deref())[0];
    let pad = k / 2;
    let direct = |oy: usize, ox: usize| {
        let mut s = b.as_ref().unwrap()[0] as f64;
        for ty in 0..k {
            for tx in 0..k {
                let (iy, ix) = ((oy + ty) as isize - pad as isize, (ox + tx) as isize - pad as isize);
                if (0..h as isize).contains(&iy) && (0..wd as isize).contains(&ix) {
                    // flip: the kernel reversed on both axes.
                    let wv = w[(k - 1 - ty) * k + (k - 1 - tx)] as f64;
                    s += wv * x[iy as usize * wd + ix as usize] as f64;
                }
            }
        }
        s
    };
    let mut worst = 0.0f64;
    for oy in 0..h {
        let full: Vec<usize> = (0..wd).collect();
        let cols: &[usize] = if oy % 37 == 0 || oy == h - 1 { &full } else { &[0, 1, 255, 256, 257, wd - 1] };
        for &ox in cols {
            worst = worst.max((got[oy * wd + ox] as f64 - direct(oy, ox)).abs() / scale);
        }
    }
    eprintln!("{p}: worst relative error {worst:.2e}");
    assert!(worst <= TOL_F32, "{p}: relative error {worst:.3e}");
}

/// The planner picks the FFT path for a large single-channel blur (also with the ISA capped at
/// generic), never when exact results are asked for, and never for small kernels, other
/// padding modes, strides, 3-D problems or many channels.
#[test]
fn fft_is_chosen_only_where_allowed() {
    let desc = ConvDesc::new().padding(Padding::Same);
    let p = ConvProblem::new(&desc, &[1, 1, 256, 256], &[1, 1, 31, 31]).unwrap();
    let w = vec![1.0f32 / 961.0; 961];
    for opts in [PlanOptions::new(), PlanOptions::new().max_isa(Isa::Generic)] {
        let auto = ConvPlan::new(&p, &w, &opts).unwrap();
        assert_eq!(auto.implementation(), FFT, "{}", auto.explain());
    }
    let wd = vec![1.0f64 / 961.0; 961];
    assert_eq!(ConvPlan::new(&p, &wd, &PlanOptions::new()).unwrap().implementation(), FFT);
    let exact = ConvPlan::new(&p, &w, &PlanOptions::new().exact(true)).unwrap();
    assert_ne!(exact.implementation(), FFT, "{}", exact.explain());
    assert!(exact.explain().contains("exact results asked for"), "{}", exact.explain());
    assert!(ConvPlan::new(&p, &w, &PlanOptions::new().exact(true).implementation(FFT)).is_err());
    for name in ["fft:avx2", "fft:avx512"] {
        let forced = ConvPlan::new(&p, &w, &PlanOptions::new().implementation(name));
        assert!(forced.is_err(), "{name} must not be a level of its own");
    }

    for (desc, x, wsh, why) in [
        (desc.clone(), vec![1, 1, 1024, 1024], vec![1, 1, 7, 7], "kernel taps"),
        (desc.clone(), vec![1, 1, 256, 256], vec![1, 1, 1, 65], "predicted slower"),
        (
            desc.clone().padding_mode(PadMode::Reflect),
            vec![1, 1, 256, 256],
            vec![1, 1, 31, 31],
            "padding mode",
        ),
        (
            desc.clone().padding_mode(PadMode::Constant(1.0)),
            vec![1, 1, 256, 256],
            vec![1, 1, 31, 31],
            "padding mode",
        ),
        (ConvDesc::new().stride([2, 2]), vec![1, 1, 256, 256], vec![1, 1, 31, 31], "stride"),
        (desc.clone(), vec![1, 1, 16, 64, 64], vec![1, 1, 9, 9, 9], "3-D"),
        (desc.clone(), vec![1, 8, 128, 128], vec![8, 8, 31, 31], "channel pairs"),
        (desc.clone(), vec![1, 1, 20000], vec![1, 1, 64], "predicted slower"),
    ] {
        let p = ConvProblem::new(&desc, &x, &wsh).unwrap();
        let w = vec![0.5f32; wsh.iter().product()];
        let plan = ConvPlan::new(&p, &w, &PlanOptions::new()).unwrap();
        assert_ne!(plan.implementation(), FFT, "{}", plan.explain());
        assert!(plan.explain().contains(&format!("{FFT} declined: ")), "{}", plan.explain());
        let reason = plan.explain();
        let reason = reason.split(&format!("{FFT} declined: ")).nth(1).unwrap();
        assert!(reason.contains(why), "{p}: expected '{why}' in: {reason}");
    }
}
