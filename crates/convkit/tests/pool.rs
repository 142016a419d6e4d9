//! `PoolPlan` against the reference pooling, bit for bit: values (NaN payloads, signed zeros
//! and infinities included), first-maximum indices and average divisors, over ranks 1–3,
//! kernels, strides, dilations, asymmetric padding, ceil mode, both divisor rules, both
//! layouts, f32 and f64, every implementation (`pool-direct` at every ISA level this process
//! may use) and 1–3 threads.

use convkit::{reference, Layout, Padding, PlanOptions, PoolDesc, PoolKind, PoolPlan, PoolProblem, Scalar};
use proptest::prelude::*;

/// Bit patterns, so NaN payloads and signs of zero are compared too.
trait Bits: Scalar {
    fn bits(self) -> u64;
    fn from_bits64(b: u64) -> Self;
}
impl Bits for f32 {
    fn bits(self) -> u64 {
        self.to_bits() as u64
    }
    fn from_bits64(b: u64) -> Self {
        f32::from_bits(b as u32)
    }
}
impl Bits for f64 {
    fn bits(self) -> u64 {
        self.to_bits()
    }
    fn from_bits64(b: u64) -> Self {
        f64::from_bits(b)
    }
}

/// What the data holds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Data {
    /// Small integers: many ties.
    Ints,
    /// Fractions of mixed magnitude: every summation order rounds differently.
    Fractions,
    /// Small integers mixed with ±0, ±∞ and NaNs of several payloads and signs.
    Specials,
    /// `±0`, `±1` and `±∞` without NaNs: ties between zeros of both signs in windows that
    /// take the kernels' NaN-free paths (which of two equal zeros is kept shows in the bits).
    Zeros,
}

fn data<T: Bits>(n: usize, seed: u64, kind: Data) -> Vec<T> {
    let mut s = seed | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let nans: [u64; 4] = if T::NAME == "f32" {
        [0x7fc0_0000, 0xffc0_0000, 0x7fc0_0123, 0xffc0_4567]
    } else {
        [0x7ff8_0000_0000_0000, 0xfff8_0000_0000_0000, 0x7ff8_0000_0000_0123, 0xfff8_0000_0004_5670]
    };
    (0..n)
        .map(|_| {
            let r = next();
            let int = T::from_f64((r % 7) as f64 - 3.0);
            match kind {
                Data::Ints => int,
                Data::Fractions => {
                    let m = ((r >> 11) % 1_000_003) as f64 / 997.0 - 500.0;
                    T::from_f64(m * [1e-6, 1.0, 1e6, 3.0][(r >> 40) as usize % 4])
                }
                Data::Specials => match (r >> 32) % 16 {
                    0 => T::from_bits64(nans[(r >> 50) as usize % 4]),
                    1 => T::from_f64(f64::INFINITY),
                    2 => T::from_f64(f64::NEG_INFINITY),
                    3 => T::from_f64(-0.0),
                    4 | 5 => T::ZERO,
                    _ => int,
                },
                Data::Zeros => T::from_f64(
                    [0.0, -0.0, 0.0, -0.0, 1.0, -1.0, f64::INFINITY, f64::NEG_INFINITY]
                        [(r >> 32) as usize % 8],
                ),
            }
        })
        .collect()
}

fn check<T: Bits>(p: &PoolProblem, kind: Data, seed: u64) -> Result<(), String> {
    let x: Vec<T> = data(p.input_shape().iter().product(), seed, kind);
    let n_out: usize = p.output_shape().iter().product();
    let max = matches!(p.kind, PoolKind::Max);
    let mut want = vec![T::ZERO; n_out];
    let mut want_ix = vec![0i64; n_out];
    reference::pool_forward(p, &x, &mut want, max.then_some(&mut want_ix[..]));
    let want: Vec<u64> = want.into_iter().map(Bits::bits).collect();
    // Which NaN an addition returns is unspecified in Rust (LLVM may swap the operands of an
    // add), so an average that is NaN only has to be NaN; everything else compares bits.
    let same = |got: u64, want: u64| {
        got == want || (!max && T::from_bits64(got).is_nan() && T::from_bits64(want).is_nan())
    };
    // The gradient: `gy` fractions, the same input (its maxima route the max gradient).
    let gy: Vec<T> = data(n_out, seed ^ 0x9e37, Data::Fractions);
    let mut want_gx = vec![T::ZERO; x.len()];
    reference::pool_backward(p, &x, &gy, &mut want_gx);
    let want_gx: Vec<u64> = want_gx.into_iter().map(Bits::bits).collect();
    let mut imps: Vec<Option<String>> = vec![None];
    if p.axes.len() <= 3 {
        imps.extend(convkit::isa::available().into_iter().map(|l| Some(format!("pool-direct:{l}"))));
    }
    for imp in &imps {
        for threads in [1, 2, 3] {
            let mut opts = PlanOptions::new().threads(threads);
            if let Some(name) = imp {
                opts = opts.implementation(name.as_str());
            }
            let plan = PoolPlan::<T>::new(p, &opts).map_err(|e| e.to_string())?;
            let what = format!(
                "{} {:?} {:?} {kind:?} ({}, {threads} threads)",
                T::NAME,
                p.kind,
                p,
                plan.implementation()
            );
            let got: Vec<u64> =
                plan.run(&x).map_err(|e| e.to_string())?.into_iter().map(Bits::bits).collect();
            if let Some(i) = (0..n_out).find(|&i| !same(got[i], want[i])) {
                return Err(format!("{what}: output {i} is {:#x}, reference {:#x}", got[i], want[i]));
            }
            let mut gx = vec![T::from_f64(1.0); x.len()];
            plan.backward(&x, &gy, &mut gx).map_err(|e| e.to_string())?;
            if let Some(i) = (0..x.len()).find(|&i| gx[i].bits() != want_gx[i]) {
                let (got, want) = (gx[i].bits(), want_gx[i]);
                return Err(format!("{what}, backward: grad_input {i} is {got:#x}, reference {want:#x}"));
            }
            if max {
                let (got, ix) = plan.run_with_indices(&x).map_err(|e| e.to_string())?;
                let got: Vec<u64> = got.into_iter().map(Bits::bits).collect();
                if let Some(i) = (0..n_out).find(|&i| got[i] != want[i] || ix[i] != want_ix[i]) {
                    return Err(format!(
                        "{what}, with indices: output {i} is {:#x} at {}, reference {:#x} at {}",
                        got[i], ix[i], want[i], want_ix[i]
                    ));
                }
            }
        }
    }
    Ok(())
}

fn check_all(p: &PoolProblem, seed: u64) -> Result<(), String> {
    for kind in [Data::Ints, Data::Fractions, Data::Specials, Data::Zeros] {
        check::<f32>(p, kind, seed)?;
        check::<f64>(p, kind, seed ^ 0x5555)?;
    }
    Ok(())
}

fn problem(desc: &PoolDesc, input: &[usize]) -> PoolProblem {
    PoolProblem::new(desc, input).unwrap_or_else(|e| panic!("{desc:?} on {input:?}: {e}"))
}

/// The same problem in both layouts (the shape is given NCHW) and with both divisor rules.
fn check_variants(desc: PoolDesc, nchw: &[usize]) {
    let mut nhwc = nchw.to_vec();
    let c = nhwc.remove(1);
    nhwc.push(c);
    for (layout, shape) in [(Layout::Nchw, nchw), (Layout::Nhwc, &nhwc[..])] {
        for include in [true, false] {
            let d = desc.clone().layout(layout).count_include_pad(include);
            let p = problem(&d, shape);
            check_all(&p, 0x1234_5678 ^ shape.len() as u64).unwrap();
        }
    }
}

fn max() -> PoolDesc {
    PoolDesc::new(PoolKind::Max)
}
fn avg() -> PoolDesc {
    PoolDesc::new(PoolKind::Avg)
}

#[test]
fn resnet_stem_3x3_s2_p1() {
    for d in [max(), avg()] {
        check_variants(d.clone().kernel([3]).stride([2]).padding(Padding::uniform(1)), &[2, 3, 17, 150]);
        check_variants(d.kernel([3]).stride([1]).padding(Padding::uniform(1)), &[1, 2, 5, 77]);
    }
}

#[test]
fn two_by_two_stride_two_and_stride_one() {
    for d in [max(), avg()] {
        check_variants(d.clone().kernel([2]), &[1, 70, 9, 10]);
        check_variants(d.kernel([2]).stride([1]), &[2, 2, 5, 130]);
    }
}

#[test]
fn ceil_mode_overhang_windows() {
    for d in [max(), avg()] {
        check_variants(d.clone().kernel([3]).stride([2]).ceil_mode(true), &[1, 2, 8, 20]);
        check_variants(
            d.clone().kernel([3]).stride([2]).padding(Padding::uniform(1)).ceil_mode(true),
            &[1, 2, 6, 17],
        );
        check_variants(d.kernel([2, 3]).stride([3, 2]).ceil_mode(true), &[1, 1, 7, 11]);
    }
}

#[test]
fn dilation_and_large_strides() {
    for d in [max(), avg()] {
        check_variants(
            d.clone().kernel([3]).stride([1]).dilation([2]).padding(Padding::uniform(2)),
            &[1, 2, 9, 40],
        );
        check_variants(d.clone().kernel([2, 3]).stride([3, 4]).dilation([3, 2]), &[1, 2, 13, 70]);
        check_variants(
            d.kernel([3]).stride([5]).padding(Padding::uniform(1)).ceil_mode(true),
            &[1, 1, 12, 99],
        );
    }
}

#[test]
fn windows_wholly_in_padding() {
    // Padding wider than the kernel: border windows read nothing (max: lowest value and
    // PyTorch's index; average: 0 or 0/0).
    for d in [max(), avg()] {
        check_variants(d.clone().kernel([2]).stride([1]).padding(Padding::uniform(3)), &[1, 2, 3, 12]);
        check_variants(
            d.kernel([1, 2]).stride([2]).padding(Padding::asymmetric(&[2, 4], &[3, 1])),
            &[1, 1, 4, 9],
        );
    }
}

#[test]
fn one_and_three_dimensions() {
    for d in [max(), avg()] {
        check_variants(d.clone().kernel([3]).stride([2]).padding(Padding::uniform(1)), &[2, 3, 200]);
        check_variants(d.clone().kernel([5]).stride([1]).dilation([2]).ceil_mode(true), &[1, 2, 30]);
        check_variants(d.clone().kernel([2]), &[1, 3, 6, 8, 20]);
        check_variants(
            d.kernel([3, 2, 3])
                .stride([2, 1, 2])
                .padding(Padding::asymmetric(&[1, 0, 1], &[0, 1, 1]))
                .ceil_mode(true),
            &[2, 2, 5, 6, 19],
        );
    }
}

#[test]
fn global_pooling_and_whole_window_kernels() {
    for k in [PoolKind::GlobalMax, PoolKind::GlobalAvg] {
        check_variants(PoolDesc::new(k), &[2, 3, 7, 9]);
        check_variants(PoolDesc::new(k), &[1, 66, 5]);
        check_variants(PoolDesc::new(k), &[1, 2, 3, 4, 70]);
    }
}

#[test]
fn rank_four_falls_back_to_the_reference() {
    let p = problem(&max().kernel([2]), &[1, 2, 4, 4, 4, 4]);
    let plan = PoolPlan::<f32>::new(&p, &PlanOptions::new()).unwrap();
    assert_eq!(plan.implementation(), "reference");
    assert!(plan.explain().contains("pool-direct declined: 4 spatial axes"), "{}", plan.explain());
    check_all(&p, 7).unwrap();
    let forced = PoolPlan::<f32>::new(&p, &PlanOptions::new().implementation("pool-direct"));
    assert!(forced.is_err());
}

#[test]
fn arguments_are_checked() {
    let p = problem(&max().kernel([2]), &[1, 1, 4, 4]);
    let e = PoolPlan::<f32>::new(&p, &PlanOptions::new().implementation("winograd")).err().unwrap();
    assert!(e.to_string().contains("expected one of pool-direct, pool-direct:avx512"), "{e}");
    assert!(e.to_string().contains("pool-direct:generic, reference"), "{e}");
    assert!(PoolPlan::<f32>::new(&p, &PlanOptions::new().implementation("pool-direct:sse9")).is_err());
    // The bare name is the best level allowed, as the automatic choice.
    let best = convkit::isa::available().into_iter().max().unwrap();
    for name in [None, Some("pool-direct")] {
        let mut opts = PlanOptions::new();
        if let Some(n) = name {
            opts = opts.implementation(n);
        }
        let plan = PoolPlan::<f32>::new(&p, &opts).unwrap();
        assert_eq!(plan.implementation(), format!("pool-direct:{best}"));
    }
    let plan = PoolPlan::<f64>::new(&p, &PlanOptions::new().implementation("pool-direct:generic")).unwrap();
    assert_eq!(plan.implementation(), "pool-direct:generic");
    assert!(plan.explain().ends_with("-> pool-direct:generic"), "{}", plan.explain());
    let plan = PoolPlan::<f32>::new(&p, &PlanOptions::new().implementation("reference")).unwrap();
    assert_eq!(plan.implementation(), "reference");
    let plan = PoolPlan::<f32>::new(&p, &PlanOptions::new()).unwrap();
    let (mut y, mut ix) = (vec![0.0f32; 4], vec![0i64; 4]);
    assert!(plan.execute(&[0.0; 15], &mut y, None, &mut []).is_err());
    assert!(plan.execute(&[0.0; 16], &mut y[..3], None, &mut []).is_err());
    assert!(plan.execute(&[0.0; 16], &mut y, Some(&mut ix[..3]), &mut []).is_err());
    plan.execute(&[0.0; 16], &mut y, Some(&mut ix), &mut []).unwrap();
    let avg_plan =
        PoolPlan::<f32>::new(&problem(&avg().kernel([2]), &[1, 1, 4, 4]), &PlanOptions::new()).unwrap();
    assert!(avg_plan.execute(&[0.0; 16], &mut y, Some(&mut ix), &mut []).is_err());
    assert!(PoolPlan::<f32>::new(&p, &PlanOptions::new().threads(0)).is_err());
}

#[test]
fn backward_equals_the_reference() {
    for d in [max(), avg()] {
        let p =
            problem(&d.kernel([3]).stride([2]).padding(Padding::uniform(1)).ceil_mode(true), &[2, 3, 7, 9]);
        let x: Vec<f32> = data(p.input_shape().iter().product(), 3, Data::Specials);
        let gy: Vec<f32> = data(p.output_shape().iter().product(), 4, Data::Fractions);
        let mut want = vec![0.0f32; x.len()];
        reference::pool_backward(&p, &x, &gy, &mut want);
        let plan = PoolPlan::<f32>::new(&p, &PlanOptions::new()).unwrap();
        let mut got = vec![1.0f32; x.len()];
        plan.backward(&x, &gy, &mut got).unwrap();
        assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}

/// Random small problems over every parameter.
fn arb_problem() -> impl Strategy<Value = (PoolDesc, Vec<usize>)> {
    // (input, kernel, stride, dilation, pad begin, pad end)
    let axis = (1usize..=12, 1usize..=4, 1usize..=3, 1usize..=2, 0usize..=3, 0usize..=3);
    let kind = prop_oneof![
        3 => Just(PoolKind::Max),
        3 => Just(PoolKind::Avg),
        1 => Just(PoolKind::GlobalMax),
        1 => Just(PoolKind::GlobalAvg),
    ];
    let layout = prop_oneof![Just(Layout::Nchw), Just(Layout::Nhwc)];
    (
        proptest::collection::vec(axis, 1..=3),
        kind,
        layout,
        (1usize..=2, prop_oneof![1usize..=4, 60usize..=70], any::<bool>(), any::<bool>(), 0usize..4),
    )
        .prop_filter_map(
            "window larger than the padded input",
            |(axes, kind, layout, (n, c, ceil, inc, wide))| {
                let mut spatial: Vec<usize> = axes.iter().map(|a| a.0).collect();
                // Sometimes a long last axis: several chunks and the tap-major loop.
                if wide == 0 {
                    *spatial.last_mut().unwrap() += 60;
                }
                for (a, &s) in axes.iter().zip(&spatial) {
                    if s + a.4 + a.5 < a.3 * (a.1 - 1) + 1 {
                        return None;
                    }
                }
                let desc = PoolDesc::new(kind)
                    .kernel(axes.iter().map(|a| a.1).collect::<Vec<_>>())
                    .stride(axes.iter().map(|a| a.2).collect::<Vec<_>>())
                    .dilation(axes.iter().map(|a| a.3).collect::<Vec<_>>())
                    .padding(Padding::asymmetric(
                        &axes.iter().map(|a| a.4).collect::<Vec<_>>(),
                        &axes.iter().map(|a| a.5).collect::<Vec<_>>(),
                    ))
                    .ceil_mode(ceil)
                    .count_include_pad(inc)
                    .layout(layout);
                let mut shape = vec![n];
                if layout == Layout::Nchw {
                    shape.push(c);
                }
                shape.extend(&spatial);
                if layout == Layout::Nhwc {
                    shape.push(c);
                }
                Some((desc, shape))
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_problems_match_the_reference((desc, shape) in arb_problem(), seed in any::<u64>()) {
        let p = PoolProblem::new(&desc, &shape);
        prop_assume!(p.is_ok());
        let p = p.unwrap();
        check_all(&p, seed).map_err(TestCaseError::fail)?;
    }
}

/// Each level's max run kernels against its row kernels on rows filled with −∞: runs of 1–4
/// output rows, 1–40 outputs (whole vectors and tails), 1–5 input rows a window, every data
/// kind (NaNs included), prefetching on and off.
fn max_run_equals_rows<T: Bits>(seed: u64) {
    use convkit::kernels::pool::{pool_kernels, SHAPES};
    for kind in [Data::Ints, Data::Specials, Data::Zeros] {
        let x: Vec<T> = data(4000, seed, kind);
        for level in convkit::isa::available() {
            let k = pool_kernels::<T>(level).expect("an available level has pool kernels");
            for (slot, &(s, kw)) in SHAPES.iter().enumerate() {
                for n in [1, 7, 16, 17, 28, 40] {
                    for (rows, n_offs, step) in [(1, 1, 0), (3, 4, 2 * s * n + 3), (4, 5, 97), (2, 2, 0)] {
                        let need = (n - 1) * s + kw;
                        let offs: Vec<usize> = (0..n_offs).map(|i| (i * 131 + 5 * i * i) % 700).collect();
                        assert!(offs.iter().all(|o| o + (rows - 1) * step + need <= x.len()));
                        let mut want = vec![T::from_f64(f64::NEG_INFINITY); rows * n];
                        for (r, row) in want.chunks_exact_mut(n).enumerate() {
                            let shifted: Vec<usize> = offs.iter().map(|o| o + r * step).collect();
                            (k.max_row[slot])(row, &x, &shifted);
                        }
                        for ahead in [0, 300] {
                            let mut got = vec![T::from_f64(7.0); rows * n];
                            (k.max_run[slot])(&mut got, n, &x, &offs, step, ahead);
                            let at = (0..rows * n).find(|&i| got[i].bits() != want[i].bits());
                            assert!(
                                at.is_none(),
                                "{} {level} slot {slot} {kind:?} n {n} rows {rows} offs {n_offs} step {step}: \
                                 output {at:?} differs",
                                T::NAME
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn max_run_kernels_equal_the_row_kernels() {
    max_run_equals_rows::<f32>(0x51);
    max_run_equals_rows::<f64>(0x52);
}
