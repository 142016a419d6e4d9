//! `convkit::explain`: the trace's results equal the reference (`convkit::raw`) exactly on
//! integer inputs over random problems, its terms add up, textbook examples worked by hand
//! come out as printed in their sources, and every kind of bad input is an error.

use convkit::explain::{explain_conv, explain_pool, Explanation, Limits, Op};
use convkit::{raw, ConvDesc, Layout, PadMode, Padding, PoolDesc, PoolKind};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

fn conv1(desc: &ConvDesc, x: &[f64], w: &[f64]) -> Explanation {
    explain_conv(desc, x, &[1, 1, x.len()], w, &[1, 1, w.len()], None, &Limits::default()).unwrap()
}

fn roomy() -> Limits {
    let mut l = Limits::default();
    l.max_input = 1 << 20;
    l.max_weight = 1 << 20;
    l.max_output = 1 << 20;
    l.max_terms = 1 << 24;
    l.max_padded = 1 << 20;
    l
}

// ---------------------------------------------------------------------------------------------
// Textbook examples, worked by hand in the comments.

#[test]
fn the_one_dimensional_textbook_example() {
    // x = [1, 2, 0, −1, 3, 1], w = [2, −1, 1], cross-correlation, no padding, stride 1:
    // y0 = 1·2 + 2·(−1) + 0·1 = 0;  y1 = 2·2 + 0·(−1) + (−1)·1 = 3;
    // y2 = 0·2 + (−1)·(−1) + 3·1 = 4;  y3 = (−1)·2 + 3·(−1) + 1·1 = −4.
    // Output size ⌊(6 + 0 + 0 − 1·(3 − 1) − 1) / 1⌋ + 1 = 4.
    let e = conv1(&ConvDesc::new(), &[1.0, 2.0, 0.0, -1.0, 3.0, 1.0], &[2.0, -1.0, 1.0]);
    assert_eq!(e.output, vec![0.0, 3.0, 4.0, -4.0]);
    assert_eq!(e.output_shape, vec![1, 1, 4]);
    let s = &e.steps[1];
    assert_eq!(
        s.terms.iter().map(|t| (t.x, t.w.unwrap())).collect::<Vec<_>>(),
        vec![(2.0, 2.0), (0.0, -1.0), (-1.0, 1.0)]
    );
    assert_eq!(s.terms.iter().map(|t| t.source.clone().unwrap()[0]).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(e.formula[0].text, "⌊(6 + 0 + 0 − 1·(3 − 1) − 1) / 1⌋ + 1 = 4");
    let text = e.to_text();
    for line in [
        "1·2 + 2·(−1) + 0·1 = 0",
        "2·2 + 0·(−1) + (−1)·1 = 3",
        "0·2 + (−1)·(−1) + 3·1 = 4",
        "(−1)·2 + 3·(−1) + 1·1 = −4",
        "[0, 3, 4, −4]",
        "⌊(6 + 0 + 0 − 1·(3 − 1) − 1) / 1⌋ + 1 = 4",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    let md = e.to_markdown();
    assert!(md.contains("| `y[0]` | 0–2 | `1·2 + 2·(−1) + 0·1` | **0** |"), "{md}");
}

#[test]
fn dumoulin_visin_figure_1_1() {
    // Dumoulin & Visin, "A guide to convolution arithmetic for deep learning" (2016,
    // arXiv:1603.07285), Figure 1.1: a 5×5 input, 3×3 kernel, no padding, stride 1 → 3×3.
    // Worked by hand, row by row: with kernel rows K0 = K2 = (0, 1, 2) (a·0 + b·1 + c·2) and
    // K1 = (2, 2, 0) (2a + 2b), the input row triples give
    //   r0: (3,3,2)→K0 7, (3,2,1)→K0 4, (2,1,0)→K0 1
    //   r1: (0,0,1)→K0 2 K1 0, (0,1,3)→K0 7 K1 2, (1,3,1)→K0 5 K1 8
    //   r2: (3,1,2)→K0/K2 5 K1 8, (1,2,2)→6 / 6, (2,2,3)→8 / 8
    //   r3: (2,0,0)→K1 4 K2 0, (0,0,2)→K1 0 K2 4, (0,2,2)→K1 4 K2 6
    //   r4: (2,0,0)→K2 0, (0,0,0)→0, (0,0,1)→2
    // y[0,·] = 7+0+5, 4+2+6, 1+8+8 = 12, 12, 17; y[1,·] = 2+8+0, 7+6+4, 5+8+6 = 10, 17, 19;
    // y[2,·] = 5+4+0, 6+0+0, 8+4+2 = 9, 6, 14 — the values printed in the figure.
    #[rustfmt::skip]
    let x = [3., 3., 2., 1., 0.,
             0., 0., 1., 3., 1.,
             3., 1., 2., 2., 3.,
             2., 0., 0., 2., 2.,
             2., 0., 0., 0., 1.];
    let w = [0., 1., 2., 2., 2., 0., 0., 1., 2.];
    let e = explain_conv(&ConvDesc::new(), &x, &[1, 1, 5, 5], &w, &[1, 1, 3, 3], None, &Limits::default())
        .unwrap();
    assert_eq!(e.output, vec![12., 12., 17., 10., 17., 19., 9., 6., 14.]);
    assert_eq!(e.steps[0].terms.len(), 9);
    assert!(
        e.to_text().contains("3·0 + 3·1 + 2·2 + 0·2 + 0·2 + 1·0 + 3·0 + 1·1 + 2·2 = 12"),
        "{}",
        e.to_text()
    );
}

#[test]
fn goodfellow_figure_9_1_with_numbers() {
    // Goodfellow, Bengio & Courville, Deep Learning (2016), Figure 9.1: a 3×4 input
    // [a b c d; e f g h; i j k l] and a 2×2 kernel [w x; y z] give a 2×3 output whose top-left
    // value is aw + bx + ey + fz, and so on. With a..l = 1..12 and w, x, y, z = 1, 2, 3, 4:
    //   aw+bx+ey+fz = 1+4+15+24 = 44;  bw+cx+fy+gz = 2+6+18+28 = 54;  cw+dx+gy+hz = 3+8+21+32 = 64;
    //   ew+fx+iy+jz = 5+12+27+40 = 84; fw+gx+jy+kz = 6+14+30+44 = 94; gw+hx+ky+lz = 7+16+33+48 = 104.
    let x: Vec<f64> = (1..=12).map(f64::from).collect();
    let e = explain_conv(
        &ConvDesc::new(),
        &x,
        &[1, 1, 3, 4],
        &[1., 2., 3., 4.],
        &[1, 1, 2, 2],
        None,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(e.output, vec![44., 54., 64., 84., 94., 104.]);
    // The figure's pairing for the bottom-right output: g·w, h·x, k·y, l·z.
    let last = e.steps.last().unwrap();
    let pairs: Vec<(f64, f64)> = last.terms.iter().map(|t| (t.x, t.w.unwrap())).collect();
    assert_eq!(pairs, vec![(7., 1.), (8., 2.), (11., 3.), (12., 4.)]);
    assert_eq!(
        last.terms.iter().map(|t| t.source.clone().unwrap()).collect::<Vec<_>>(),
        vec![vec![1, 2], vec![1, 3], vec![2, 2], vec![2, 3]]
    );
}

#[test]
fn cs231n_max_pooling_figure() {
    // CS231n (Stanford) notes, "Pooling layer" figure: max pooling 2×2, stride 2 on
    // [1 1 2 4; 5 6 7 8; 3 2 1 0; 1 2 3 4] gives max(1,1,5,6) = 6, max(2,4,7,8) = 8,
    // max(3,2,1,2) = 3, max(1,0,3,4) = 4.
    let x = [1., 1., 2., 4., 5., 6., 7., 8., 3., 2., 1., 0., 1., 2., 3., 4.];
    let e = explain_pool(&PoolDesc::new(PoolKind::Max).kernel([2]), &x, &[1, 1, 4, 4], &Limits::default())
        .unwrap();
    assert_eq!(e.op, Op::MaxPool);
    assert_eq!(e.output, vec![6., 8., 3., 4.]);
    let s = &e.steps[0];
    assert_eq!(s.terms[s.argmax.unwrap()].source, Some(vec![1, 1]));
    assert!(e.to_text().contains("max(1, 1, 5, 6) = 6, at x[1, 1]"), "{}", e.to_text());
}

#[test]
fn dumoulin_visin_output_size_relationships() {
    // Dumoulin & Visin, relationship 6 / figure 2.6: i = 5, k = 3, s = 2, p = 1 → o = 3;
    // relationship 4 / figure 2.3 (half padding): i = 5, k = 3, p = 1, s = 1 → o = 5;
    // relationship 5 / figure 2.4 (full padding): i = 5, k = 3, p = 2 → o = 7.
    let x = [1.0; 5];
    let e = conv1(&ConvDesc::new().stride([2]).padding(Padding::uniform(1)), &x, &[1.0; 3]);
    assert_eq!(e.formula[0].text, "⌊(5 + 1 + 1 − 1·(3 − 1) − 1) / 2⌋ + 1 = 3");
    let e = conv1(&ConvDesc::new().padding(Padding::Same), &x, &[1.0; 3]);
    assert_eq!(e.formula[0].text, "⌊(5 + 1 + 1 − 1·(3 − 1) − 1) / 1⌋ + 1 = 5");
    let e = conv1(&ConvDesc::new().padding(Padding::Full), &x, &[1.0; 3]);
    assert_eq!(e.formula[0].text, "⌊(5 + 2 + 2 − 1·(3 − 1) − 1) / 1⌋ + 1 = 7");
}

#[test]
fn hand_worked_padding_flip_dilation_groups_bias() {
    // True convolution, full padding: [1,2,3] * [1,0,−1]: c[n] = Σ x[m]·h[n−m] =
    // 1, 2·1+1·0 = 2, 3·1+2·0+1·(−1) = 2, 3·0+2·(−1) = −2, 3·(−1) = −3.
    let e = conv1(&ConvDesc::new().flip(true).padding(Padding::Full), &[1., 2., 3.], &[1., 0., -1.]);
    assert_eq!(e.output, vec![1., 2., 2., -2., -3.]);
    assert_eq!(e.kernel_applied, Some(vec![-1., 0., 1.]));
    assert_eq!(e.steps[0].terms[0].weight_tap, Some(vec![2]));
    // Reflect padding by 1: [1,2,3] → [2,1,2,3,2]; box [1,1,1] → 5, 6, 7.
    let e = conv1(
        &ConvDesc::new().padding(Padding::uniform(1)).padding_mode(PadMode::Reflect),
        &[1., 2., 3.],
        &[1.; 3],
    );
    assert_eq!(e.padded, vec![2., 1., 2., 3., 2.]);
    assert_eq!(e.padded_is_pad, vec![true, false, false, false, true]);
    assert_eq!(e.output, vec![5., 6., 7.]);
    let t0 = &e.steps[0].terms[0];
    assert_eq!((t0.source.clone(), t0.reads.clone()), (None, Some(vec![1])));
    // Constant padding 9 on the left only: [9,1,2] · [1,1] → 10, 3.
    let e = conv1(
        &ConvDesc::new().padding(Padding::asymmetric(&[1], &[0])).padding_mode(PadMode::Constant(9.0)),
        &[1., 2.],
        &[1., 1.],
    );
    assert_eq!(e.output, vec![10., 3.]);
    assert!(e.to_text().contains("[9]·1 + 1·1 = 10"), "{}", e.to_text());
    // Dilation 2: [1,2,3,4,5] with taps 2 apart, [1,1] → 1+3, 2+4, 3+5.
    let e = conv1(&ConvDesc::new().dilation([2]), &[1., 2., 3., 4., 5.], &[1., 1.]);
    assert_eq!(e.output, vec![4., 6., 8.]);
    assert!(e.to_text().contains("patch   1  ·  3"), "{}", e.to_text());
    // Two groups of one channel, 1×1 kernels 2 and 3, bias 10 and 20:
    // channel 0 [1,2]·2 + 10 = 12, 14; channel 1 [3,4]·3 + 20 = 29, 32.
    let e = explain_conv(
        &ConvDesc::new().groups(2),
        &[1., 2., 3., 4.],
        &[1, 2, 2],
        &[2., 3.],
        &[2, 1, 1],
        Some(&[10., 20.]),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(e.output, vec![12., 14., 29., 32.]);
    assert_eq!(e.steps[2].terms[0].c, 1);
    assert_eq!((e.steps[2].sum, e.steps[2].bias), (Some(9.0), Some(20.0)));
}

#[test]
fn hand_worked_average_pooling_with_padding() {
    // [1,2,3,4], window 2, stride 2, padding 1: windows (pad,1), (2,3), (4,pad).
    // Counting padding: 1/2, 5/2, 4/2 = 0.5, 2.5, 2; input only: 1/1, 5/2, 4/1 = 1, 2.5, 4.
    let x = [1., 2., 3., 4.];
    let d = PoolDesc::new(PoolKind::Avg).kernel([2]).padding(Padding::uniform(1));
    let e = explain_pool(&d, &x, &[1, 1, 4], &Limits::default()).unwrap();
    assert_eq!(e.output, vec![0.5, 2.5, 2.0]);
    assert_eq!(e.steps[0].divisor, Some(2.0));
    assert!(e.to_text().contains("([0] + 1) / 2 = 0.5"), "{}", e.to_text());
    let e = explain_pool(&d.count_include_pad(false), &x, &[1, 1, 4], &Limits::default()).unwrap();
    assert_eq!(e.output, vec![1.0, 2.5, 4.0]);
    assert_eq!(e.steps[2].divisor, Some(1.0));
}

// ---------------------------------------------------------------------------------------------
// Errors.

#[test]
fn bad_input_is_an_error_naming_the_argument() {
    let x = [1.0; 6];
    let l = Limits::default();
    let err = |r: convkit::Result<Explanation>| r.unwrap_err().to_string();
    let d = ConvDesc::new();
    assert!(err(explain_conv(&d.clone().stride([0]), &x, &[1, 1, 6], &[1.; 3], &[1, 1, 3], None, &l))
        .contains("stride"));
    assert!(err(explain_conv(&d.clone().groups(4), &x, &[1, 2, 3], &[1.; 3], &[2, 1, 3], None, &l))
        .contains("groups"));
    assert!(err(explain_conv(&d, &x, &[1, 1, 6], &[1.; 9], &[1, 1, 9], None, &l)).contains("padding"));
    assert!(err(explain_conv(&d, &x, &[1, 1, 5], &[1.; 3], &[1, 1, 3], None, &l)).contains("input"));
    assert!(err(explain_conv(&d, &x, &[1, 1, 6], &[1.; 3], &[1, 1, 3], Some(&[1., 2.]), &l)).contains("bias"));
    assert!(err(explain_conv(
        &d.clone().layout(Layout::Nhwc),
        &x,
        &[1, 6, 1],
        &[1.; 3],
        &[1, 1, 3],
        None,
        &l
    ))
    .contains("layout"));
    let reflect = d.clone().padding(Padding::uniform(6)).padding_mode(PadMode::Reflect);
    assert!(err(explain_conv(&reflect, &x, &[1, 1, 6], &[1.; 3], &[1, 1, 3], None, &l)).contains("reflect"));
    let m = err(explain_conv(&d, &x, &[1, 1, usize::MAX], &[1.; 3], &[1, 1, 3], None, &l));
    assert!(m.contains("output"), "{m}");
    // Limits: input, output steps, products, padded values, weight.
    let big = vec![0.0; 2000];
    let m = err(explain_conv(&d, &big, &[1, 1, 2000], &[1.], &[1, 1, 1], None, &l));
    assert!(m.contains("input") && m.contains("2000 values") && m.contains("at most 1024"), "{m}");
    let m = err(explain_conv(&d, &big[..300], &[1, 1, 300], &[1.], &[1, 1, 1], None, &l));
    assert!(m.contains("300 steps") && m.contains("at most 256"), "{m}");
    let m = err(explain_conv(&d, &big[..200], &[1, 1, 200], &big[..100], &[1, 1, 100], None, &l));
    assert!(m.contains("products") && m.contains("at most 4096"), "{m}");
    let m = err(explain_conv(
        &d.clone().padding(Padding::uniform(3000)),
        &x,
        &[1, 1, 6],
        &[1.; 1000],
        &[1, 1, 1000],
        None,
        &l,
    ));
    assert!(m.contains("padded input") && m.contains("at most 4096"), "{m}");
    let m = err(explain_conv(&d, &x, &[1, 1, 6], &big, &[2000, 1, 1], None, &l));
    assert!(m.contains("weight") && m.contains("at most 1024"), "{m}");
    let m = err(explain_pool(&PoolDesc::new(PoolKind::Max).kernel([2]), &big, &[1, 1, 2000], &l));
    assert!(m.contains("convkit pool"), "{m}");
    assert!(explain_pool(&PoolDesc::new(PoolKind::Max).kernel([0]), &x, &[1, 1, 6], &l).is_err());
    assert!(explain_pool(&PoolDesc::new(PoolKind::Avg).kernel([7]), &x, &[1, 1, 6], &l).is_err());
}

// ---------------------------------------------------------------------------------------------
// The trace equals the reference on random problems.

fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        max_global_rejects: 100_000,
        ..ProptestConfig::default()
    }
}

/// Deterministic small integers from a seed (SplitMix64).
fn ints(seed: u64, n: usize, lo: i64, hi: i64) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (lo + (z % (hi - lo + 1) as u64) as i64) as f64
        })
        .collect()
}

fn padding_strategy(rank: usize) -> impl Strategy<Value = Padding> {
    prop_oneof![
        proptest::collection::vec(0usize..3, 2 * rank).prop_map(Padding::Explicit),
        (0usize..3).prop_map(Padding::uniform),
        Just(Padding::Valid),
        Just(Padding::Same),
        Just(Padding::SameLower),
        Just(Padding::Full),
    ]
}

fn mode_strategy() -> impl Strategy<Value = PadMode> {
    prop_oneof![
        Just(PadMode::Zeros),
        (-3i32..4).prop_map(|v| PadMode::Constant(v as f64)),
        Just(PadMode::Reflect),
        Just(PadMode::Symmetric),
        Just(PadMode::Replicate),
        Just(PadMode::Circular),
    ]
}

#[derive(Debug, Clone)]
struct ConvCase {
    x_shape: Vec<usize>,
    w_shape: Vec<usize>,
    desc: ConvDesc,
    bias: bool,
    seed: u64,
}

fn conv_case() -> impl Strategy<Value = ConvCase> {
    (1usize..=2).prop_flat_map(|rank| {
        (
            (1usize..=2, 1usize..=2, 1usize..=2, 1usize..=2),
            proptest::collection::vec(1usize..=6, rank),
            proptest::collection::vec(1usize..=3, rank),
            proptest::collection::vec(1usize..=3, rank),
            proptest::collection::vec(1usize..=2, rank),
            padding_strategy(rank),
            mode_strategy(),
            any::<bool>(),
            any::<bool>(),
            any::<u64>(),
        )
            .prop_map(|((n, g, cg, kg), sp, k, s, d, padding, mode, flip, bias, seed)| {
                let mut x_shape = vec![n, g * cg];
                x_shape.extend(&sp);
                let mut w_shape = vec![g * kg, cg];
                w_shape.extend(&k);
                let desc = ConvDesc::new()
                    .stride(s)
                    .dilation(d)
                    .padding(padding)
                    .padding_mode(mode)
                    .groups(g)
                    .flip(flip);
                ConvCase { x_shape, w_shape, desc, bias, seed }
            })
    })
}

proptest! {
    #![proptest_config(cfg(400))]

    #[test]
    fn conv_trace_equals_the_reference(c in conv_case()) {
        let nx: usize = c.x_shape.iter().product();
        let nw: usize = c.w_shape.iter().product();
        let x = ints(c.seed, nx, -4, 4);
        let w = ints(c.seed ^ 0xABCD, nw, -3, 3);
        let b = c.bias.then(|| ints(c.seed ^ 0x1234, c.w_shape[0], -5, 5));
        let want = raw::conv(&x, &c.x_shape, &w, &c.w_shape, b.as_deref(), &c.desc);
        let got = explain_conv(&c.desc, &x, &c.x_shape, &w, &c.w_shape, b.as_deref(), &roomy());
        match (want, got) {
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (Ok(want), Ok(e)) => {
                prop_assert_eq!(&e.output_shape, &want.shape);
                prop_assert_eq!(&e.output, &want.data);
                let cg = c.w_shape[1];
                let taps: usize = c.w_shape[2..].iter().product();
                for st in &e.steps {
                    prop_assert_eq!(st.terms.len(), cg * taps);
                    let sum: f64 = st.terms.iter().map(|t| t.product.unwrap()).sum();
                    prop_assert_eq!(st.sum, Some(sum));
                    prop_assert_eq!(st.value, sum + st.bias.unwrap_or(0.0));
                    for t in &st.terms {
                        // Padded position = out·stride + tap·dilation, and the value read is the
                        // input element the term names.
                        for (a, ax) in e.axes.iter().enumerate() {
                            prop_assert_eq!(t.padded[a], st.out[a] * ax.stride + t.tap[a] * ax.dilation);
                        }
                        if let Some(src) = &t.source {
                            let plane: usize = c.x_shape[2..].iter().product();
                            let off = src.iter().zip(&c.x_shape[2..]).fold(0, |acc, (&i, &d)| acc * d + i);
                            prop_assert_eq!(t.x, x[(st.n * c.x_shape[1] + t.c) * plane + off]);
                        }
                    }
                }
            }
            (a, b) => prop_assert!(false, "reference {:?} but explain {:?}", a.map(|t| t.shape), b.map(|e| e.output_shape)),
        }
    }

    #[test]
    fn pool_trace_equals_the_reference(
        rank in 1usize..=2,
        nc in (1usize..=2, 1usize..=2),
        sp in proptest::collection::vec(1usize..=7, 2),
        k in proptest::collection::vec(1usize..=3, 2),
        s in proptest::collection::vec(1usize..=3, 2),
        d in proptest::collection::vec(1usize..=2, 2),
        p in proptest::collection::vec(0usize..=2, 4),
        max in any::<bool>(),
        global in any::<bool>(),
        ceil in any::<bool>(),
        include in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let kind = match (max, global) {
            (true, false) => PoolKind::Max,
            (false, false) => PoolKind::Avg,
            (true, true) => PoolKind::GlobalMax,
            (false, true) => PoolKind::GlobalAvg,
        };
        let mut x_shape = vec![nc.0, nc.1];
        x_shape.extend(&sp[..rank]);
        let desc = PoolDesc::new(kind)
            .kernel(&k[..rank])
            .stride(&s[..rank])
            .dilation(&d[..rank])
            .padding(Padding::Explicit(p[..2 * rank].to_vec()))
            .ceil_mode(ceil)
            .count_include_pad(include);
        let x = ints(seed, x_shape.iter().product(), -9, 9);
        let want = raw::pool(&x, &x_shape, &desc);
        let got = explain_pool(&desc, &x, &x_shape, &roomy());
        match (want, got) {
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (Ok((y, idx)), Ok(e)) => {
                prop_assert_eq!(&e.output_shape, &y.shape);
                // NaN (0/0 for an empty window not counting padding) compares by bits.
                let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                prop_assert_eq!(bits(&e.output), bits(&y.data));
                if let Some(idx) = idx {
                    // The maximum's position is the reference's index (within the (n, c) plane).
                    for (st, &i) in e.steps.iter().zip(&idx.data) {
                        if let Some(a) = st.argmax {
                            let src = st.terms[a].source.clone().unwrap();
                            let flat = src.iter().zip(&x_shape[2..]).fold(0, |acc, (&i, &d)| acc * d + i);
                            prop_assert_eq!(flat as i64, i);
                        }
                    }
                }
            }
            (a, b) => prop_assert!(false, "reference {:?} but explain {:?}", a.map(|t| t.0.shape), b.map(|e| e.output_shape)),
        }
    }
}
