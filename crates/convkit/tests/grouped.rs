//! `grouped-direct` at every ISA level this CPU has (where the level has a grouped kernel) and
//! at 1, 2 and 3 threads, against the reference on small-integer data, bit for bit: groups
//! of 1 to 8 input and output channels (the kernels' 4-channel blocks and their tails),
//! kernels of 1 to 5 taps, dilation, strides, every padding mode, flip, rows shorter than a
//! vector and not a multiple of one, batches, bias or none, one and two spatial axes.

use convkit::impls::candidates;
use convkit::kernels::kernel_set;
use convkit::{reference, ConvDesc, ConvPlan, ConvProblem, PadMode, Padding, PlanOptions};
use proptest::prelude::*;

mod common;
use common::{ints, Case};

/// Runs every `grouped-direct` candidate on `c`; returns how many (level, threads) runs
/// matched, or what differed.
fn check<T: convkit::Scalar>(c: &Case, conv: impl Fn(f64) -> T) -> Result<usize, String> {
    let p = ConvProblem::new(&c.desc, &c.x_shape, &c.w_shape).map_err(|e| e.to_string())?;
    let x: Vec<T> = ints(c.x_shape.iter().product(), c.seed).into_iter().map(&conv).collect();
    let w: Vec<T> = ints(c.w_shape.iter().product(), c.seed ^ 0x9e37).into_iter().map(&conv).collect();
    let b: Option<Vec<T>> =
        c.bias.then(|| ints(p.out_channels, c.seed ^ 0x51).into_iter().map(&conv).collect());
    let mut want = vec![T::ZERO; p.output_shape().iter().product()];
    reference::conv_forward(&p, &x, &w, b.as_deref(), &mut want);
    let mut runs = 0;
    for isa in convkit::isa::available() {
        // A level takes the problem when it has a grouped kernel whose channel bound fits.
        let per_group = (p.in_channels / p.groups) * (p.out_channels / p.groups);
        let expected = kernel_set::<T>(isa).and_then(|s| s.grouped).is_some_and(|g| per_group <= g.0);
        let Some(cand) =
            candidates::<T>().into_iter().find(|k| k.isa == isa && k.name.starts_with("grouped-direct:"))
        else {
            return Err(format!("no grouped-direct candidate at {isa}"));
        };
        match (cand.supports(&p, isa), expected) {
            (Ok(()), true) => {}
            (Err(e), true) => return Err(format!("{p}: {} declined: {e}", cand.name)),
            (Ok(()), false) => return Err(format!("{p}: {} accepted past its bound", cand.name)),
            (Err(_), false) => continue,
        }
        for threads in [1, 2, 3] {
            let opts = PlanOptions::new().implementation(&cand.name).max_isa(isa).threads(threads);
            let plan = ConvPlan::new(&p, &w, &opts).map_err(|e| e.to_string())?;
            let got = plan.run(&x, b.as_deref()).map_err(|e| e.to_string())?;
            if got != want {
                return Err(format!(
                    "{p}: {} at {threads} threads differs from the reference",
                    plan.implementation()
                ));
            }
            runs += 1;
        }
    }
    Ok(runs)
}

/// A grouped problem: `groups` groups of `cg` input and `kg` output channels over `spatial`
/// (one or two axes), with kernel, stride, dilation and padding per axis.
#[allow(clippy::too_many_arguments)]
fn case(
    n: usize,
    (groups, cg, kg): (usize, usize, usize),
    spatial: &[usize],
    kernel: &[usize],
    stride: &[usize],
    dilation: &[usize],
    (pb, pe): (&[usize], &[usize]),
    mode: PadMode,
    flip: bool,
    bias: bool,
    seed: u64,
) -> Case {
    let mut x_shape = vec![n, groups * cg];
    x_shape.extend(spatial);
    let mut w_shape = vec![groups * kg, cg];
    w_shape.extend(kernel);
    let desc = ConvDesc::new()
        .stride(stride)
        .dilation(dilation)
        .padding(Padding::asymmetric(pb, pe))
        .padding_mode(mode)
        .groups(groups)
        .flip(flip);
    Case { desc, x_shape, w_shape, bias, seed }
}

/// A spread of two-dimensional shapes around the kernels' blocks: 4-channel blocks and their
/// tails, 16-column vectors (widths below, at and past multiples of 16, and up to four
/// vectors and more per row), kernel sizes 1 to 5, strides, dilation, asymmetric padding.
#[test]
fn grouped_problems_match_the_reference() {
    let modes =
        [PadMode::Zeros, PadMode::Reflect, PadMode::Replicate, PadMode::Circular, PadMode::Constant(2.0)];
    let widths = [1usize, 5, 15, 16, 17, 33, 56, 64, 70, 131];
    let chans = [
        (2usize, 4usize, 4usize),
        (3, 1, 5),
        (2, 8, 8),
        (4, 3, 2),
        (2, 5, 7),
        (5, 2, 3),
        (2, 4, 6),
        (32, 4, 4),
    ];
    let kernels = [(3usize, 3usize), (1, 1), (5, 5), (2, 4), (3, 1), (1, 3), (4, 2)];
    let mut runs = 0;
    let mut i = 0usize;
    for &wd in &widths {
        for &ch in &chans {
            i += 1;
            let (kh, kw) = kernels[i % kernels.len()];
            let h = 1 + (i * 7) % 9 + kh;
            let stride =
                [1 + usize::from(i % 5 == 2), 1 + usize::from(i % 4 == 1) + usize::from(i.is_multiple_of(9))];
            let dilation = [1 + usize::from(i % 7 == 3), 1 + usize::from(i % 6 == 5)];
            let pad = |m: usize| [(i / m) % 3, (i / (m + 1)) % 2];
            let (pb, pe) = (pad(1), pad(2));
            let mode = modes[i % modes.len()];
            // Reflect padding must stay below the axis size.
            let ok = !(mode == PadMode::Reflect && wd <= 2);
            if !ok {
                continue;
            }
            let c = case(
                1 + i % 2,
                ch,
                &[h, wd],
                &[kh, kw],
                &stride,
                &dilation,
                (&pb, &pe),
                mode,
                i.is_multiple_of(3),
                i % 4 != 1,
                i as u64,
            );
            if ConvProblem::new(&c.desc, &c.x_shape, &c.w_shape).is_err() {
                continue;
            }
            runs += check::<f32>(&c, |v| v as f32).unwrap_or_else(|e| panic!("{e}"));
            runs += check::<f64>(&c, |v| v).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    assert!(runs >= 200, "only {runs} runs");
}

/// The benchmark's ResNeXt shape (32 groups of 4 × 4, 3×3, padding 1) at a smaller size,
/// one-dimensional problems, and a single-row band split over many staged bands.
#[test]
fn resnext_and_one_dimensional_problems_match_the_reference() {
    let cases = [
        case(
            1,
            (32, 4, 4),
            &[20, 56],
            &[3, 3],
            &[1, 1],
            &[1, 1],
            (&[1, 1], &[1, 1]),
            PadMode::Zeros,
            false,
            true,
            1,
        ),
        case(
            2,
            (8, 4, 4),
            &[9, 28],
            &[3, 3],
            &[2, 2],
            &[1, 1],
            (&[1, 1], &[1, 1]),
            PadMode::Zeros,
            false,
            false,
            2,
        ),
        case(
            1,
            (4, 2, 8),
            &[90, 40],
            &[3, 3],
            &[1, 1],
            &[1, 1],
            (&[1, 1], &[1, 1]),
            PadMode::Zeros,
            true,
            true,
            3,
        ),
        case(
            1,
            (3, 4, 4),
            &[1, 300],
            &[1, 5],
            &[1, 1],
            &[1, 2],
            (&[0, 4], &[0, 3]),
            PadMode::Zeros,
            false,
            true,
            4,
        ),
        case(2, (6, 3, 5), &[77], &[3], &[1], &[1], (&[1], &[1]), PadMode::Zeros, false, true, 5),
        case(1, (2, 8, 3), &[40], &[4], &[3], &[2], (&[2], &[0]), PadMode::Circular, true, false, 6),
        case(1, (5, 1, 7), &[13], &[5], &[1], &[1], (&[2], &[2]), PadMode::Replicate, false, true, 7),
    ];
    for c in &cases {
        let runs = check::<f32>(c, |v| v as f32).unwrap_or_else(|e| panic!("{e}"));
        assert!(runs >= 3, "grouped-direct ran {runs} times");
        check::<f64>(c, |v| v).unwrap_or_else(|e| panic!("{e}"));
    }
}

fn grouped_case() -> impl Strategy<Value = Case> {
    let mode = prop_oneof![
        Just(PadMode::Zeros),
        Just(PadMode::Constant(-1.0)),
        Just(PadMode::Replicate),
        Just(PadMode::Circular),
        Just(PadMode::Symmetric),
    ];
    let axis = (1usize..=40, 1usize..=5, 1usize..=3, 1usize..=2, 0usize..=2, 0usize..=2);
    (
        proptest::collection::vec(axis, 1..=2),
        (1usize..=3, 2usize..=6, 1usize..=8, 1usize..=8),
        mode,
        (any::<bool>(), any::<bool>(), any::<u64>()),
    )
        .prop_map(|(axes, (n, groups, cg, kg), mode, (flip, bias, seed))| {
            let v = |f: fn(&common::AxisParams) -> usize| axes.iter().map(f).collect::<Vec<_>>();
            let spatial: Vec<usize> = axes.iter().map(|a| a.0 + a.1).collect();
            case(
                n,
                (groups, cg, kg),
                &spatial,
                &v(|a| a.1),
                &v(|a| a.2),
                &v(|a| a.3),
                (&v(|a| a.4), &v(|a| a.5)),
                mode,
                flip,
                bias,
                seed,
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]
    #[test]
    fn random_grouped_problems_match_the_reference(c in grouped_case()) {
        prop_assume!(ConvProblem::new(&c.desc, &c.x_shape, &c.w_shape).is_ok());
        check::<f32>(&c, |v| v as f32).map_err(TestCaseError::fail)?;
        check::<f64>(&c, |v| v).map_err(TestCaseError::fail)?;
    }
}
