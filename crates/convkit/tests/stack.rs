//! Layer stacks: the grammar, hand-worked stacks, the built-in trunks against torchvision's
//! published parameter counts and multiply-adds, receptive fields against the published tables of
//! Araujo et al. (Distill 2019) and an independent measurement, and the impulse cross-check
//! (back-propagation through the actual operations) for every model and axis.

use convkit::stack::{analyse, measure_field, model, parse, Analysis, Op, MODELS};
use convkit::PoolKind;

fn run(layers: &str, input: &[usize]) -> Analysis {
    analyse(&parse(layers).unwrap(), input).unwrap_or_else(|e| panic!("{layers}: {e}"))
}

fn err(layers: &str, input: &[usize]) -> String {
    match parse(layers).and_then(|l| analyse(&l, input)) {
        Ok(_) => panic!("{layers} on {input:?} should fail"),
        Err(e) => e.to_string(),
    }
}

fn trunk(name: &str) -> Analysis {
    run(&model(name).unwrap(), &[1, 3, 224, 224])
}

fn field(a: &Analysis, row: usize) -> (u64, u64, f64) {
    let f = a.rows[row].field.as_ref().unwrap()[0];
    (f.size, f.jump, f.start)
}

#[test]
fn every_layer_kind_parses() {
    let l = parse(
        "conv 8 k3x1 s2 p1x0 d1 g1 bias; convT 4 k2 s2 op1; maxpool k3 s2 p1 ceil; avgpool k2; \
         gmaxpool; gavgpool; bn; relu; relu6; conv k3 dw p=same; res(conv 8 k3 p1; bn | conv 8 k1)",
    )
    .unwrap();
    let kinds: Vec<&str> = l.iter().map(|l| l.kind()).collect();
    assert_eq!(
        kinds,
        ["conv", "convT", "maxpool", "avgpool", "gmaxpool", "gavgpool", "bn", "relu", "relu6", "conv", "res"]
    );
    match &l[0].op {
        Op::Conv { out, kernel, stride, bias, .. } => {
            assert_eq!(
                (*out, kernel.as_slice(), stride.as_slice(), *bias),
                (Some(8), &[3, 1][..], &[2][..], true)
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&l[2].op, Op::Pool { kind: PoolKind::Max, ceil: true, .. }));
    match &l[10].op {
        Op::Residual { main, shortcut } => assert_eq!((main.len(), shortcut.len()), (2, 1)),
        other => panic!("{other:?}"),
    }
    // New lines separate layers too; empty entries are skipped.
    assert_eq!(parse("conv 8 k3;\nrelu\n;").unwrap().len(), 2);
}

#[test]
fn grammar_errors_name_the_layer_and_token() {
    let cases = [
        ("relu; conv 8 k0", "invalid layer 2 'conv 8 k0': 'k0': 0 is below the minimum 1"),
        ("convv 8 k3", "invalid layer 1 'convv 8 k3': unknown layer kind 'convv'"),
        ("conv 8 k3 q2", "invalid layer 1 'conv 8 k3 q2': unknown token 'q2'"),
        ("conv 8 k3 k5", "invalid layer 1 'conv 8 k3 k5': 'k5' repeats 'k3'"),
        ("conv k3", "invalid layer 1 'conv k3': conv needs the number of output channels"),
        ("conv 8", "invalid layer 1 'conv 8': conv needs a kernel size"),
        ("conv 8 k3 ceil", "invalid layer 1 'conv 8 k3 ceil': 'ceil' does not apply to conv"),
        ("maxpool 8 k3", "invalid layer 1 'maxpool 8 k3': '8' does not apply to maxpool"),
        ("conv 8 k3 op1", "'op1' does not apply to conv"),
        ("conv 8 k3 pmiddle", "'pmiddle': expected a non-negative integer, not 'middle'"),
        ("conv 8 k3 sx", "'sx': expected a non-negative integer, not ''"),
        ("conv 8 k3 s", "'s': expected a value after 's'"),
        ("conv 8 k3; res(conv 8 k3", "invalid layers"),
        ("res(conv 8 k3 | conv 8 k1 | relu)", "two branches"),
        ("res( | conv 8 k1)", "the main branch is empty"),
        ("res conv 8 k3", "expected res( MAIN | SHORTCUT )"),
        ("bn; res(conv 8 k3; convv | )", "invalid layer 2, main branch layer 2 'convv': unknown layer kind"),
    ];
    for (text, want) in cases {
        let e = parse(text).expect_err(text).to_string();
        assert!(e.contains(want), "{text}: got {e:?}, want {want:?}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
}

#[test]
fn analysis_errors_name_the_layer_and_axis() {
    let e = err("conv 8 k3 p1; conv 8 k3x9", &[1, 3, 8, 8]);
    assert!(e.starts_with("invalid layer 2 'conv 8 k3x9': "), "{e}");
    assert!(e.contains("leaves no output on axis 1"), "{e}");
    let e = err("maxpool k2; maxpool k2; maxpool k2", &[1, 3, 4]);
    assert!(e.starts_with("invalid layer 3 'maxpool k2': ") && e.contains("on axis 0"), "{e}");
    let e = err("relu; res(conv 8 k3; conv 8 k3 | conv 8 k3)", &[1, 3, 8, 8]);
    assert!(
        e.starts_with("invalid layer 2 'res(")
            && e.contains("main gives [1, 8, 4, 4], shortcut gives [1, 8, 6, 6]"),
        "{e}"
    );
    let e = err("res(conv 8 k3 | conv 8 k9)", &[1, 3, 8]);
    assert!(e.starts_with("invalid layer 1, shortcut layer 1 'conv 8 k9': ") && e.contains("axis 0"), "{e}");
    let e = err("conv 8 k3 g2", &[1, 3, 8, 8]);
    assert!(
        e.contains("layer 1 'conv 8 k3 g2'") && e.contains("groups 2: must divide the 3 input channels"),
        "{e}"
    );
    let e = err("conv 8 k3x3x3", &[1, 3, 8, 8]);
    assert!(e.contains("expected 1 or 2 values for 2 spatial axes"), "{e}");
    let e = err("convT 3 k2 s2 op2", &[1, 3, 8]);
    assert!(e.contains("layer 1 'convT 3 k2 s2 op2'") && e.contains("output-padding"), "{e}");
    assert!(err("relu", &[1, 3]).contains("expected N,C and 1 to 3 spatial sizes"));
    assert!(err("relu", &[1, 3, 4, 4, 4, 4]).contains("expected N,C and 1 to 3 spatial sizes"));
    assert!(err("relu", &[1, 0, 4]).contains("at least 1"));
    // Sizes that overflow are errors, not panics.
    let e = err("conv 4000000000 k3; conv 4000000000 k3", &[1, 1, 3]);
    assert!(e.contains("layer"), "{e}");
}

#[test]
fn hand_worked_stack() {
    // Worked by hand (input 1×3×32×32):
    //   conv 16 k3 p1 bias: 16·3·9+16 = 448 params, 16·32·32·27 = 442,368 MACs; rf 3, jump 1, start 0
    //   bn: 2·16 = 32 params
    //   maxpool k2: 16×16; rf 3+1 = 4, jump 2, start 0+(1/2−0)·1 = 0.5
    //   conv 32 k3 s2 p1 g2: (16+2−3)/2+1 = 8; 32·8·9 = 2,304 params; 32·64·(8·9) = 147,456 MACs;
    //     rf 4+2·2 = 8, jump 4, start 0.5+(1−1)·2 = 0.5
    //   gavgpool: a window of 8 outputs whose centres run from 0.5 to 0.5+7·4 = 28.5, each seeing
    //     ±3.5: [−3, 32] → rf 36, centre 14.5
    let a = run("conv 16 k3 p1 bias; bn; relu; maxpool k2; conv 32 k3 s2 p1 g2; gavgpool", &[1, 3, 32, 32]);
    let out: Vec<Vec<usize>> = a.rows.iter().map(|r| r.output.clone()).collect();
    assert_eq!(
        out,
        [
            vec![1, 16, 32, 32],
            vec![1, 16, 32, 32],
            vec![1, 16, 32, 32],
            vec![1, 16, 16, 16],
            vec![1, 32, 8, 8],
            vec![1, 32, 1, 1]
        ]
    );
    assert_eq!(a.rows.iter().map(|r| r.params).collect::<Vec<_>>(), [448, 32, 0, 0, 2304, 0]);
    assert_eq!(a.rows.iter().map(|r| r.macs).collect::<Vec<_>>(), [442_368, 0, 0, 0, 147_456, 0]);
    assert_eq!((a.params, a.macs), (2784, 589_824));
    assert_eq!(field(&a, 0), (3, 1, 0.0));
    assert_eq!(field(&a, 3), (4, 2, 0.5));
    assert_eq!(field(&a, 4), (8, 4, 0.5));
    assert_eq!(field(&a, 5), (36, 4, 14.5));
    assert_eq!(a.field.as_ref().unwrap()[1].size, 36);
    // Per-axis values: k3x1 p1x0 on 8×8 keeps 8×8; the field is 3 tall and 1 wide.
    let a = run("conv 4 k3x1 p1x0; conv 4 k1x3 d1x2 p0x2", &[2, 1, 8, 8]);
    assert_eq!(a.output, vec![2, 4, 8, 8]);
    let f = a.field.unwrap();
    assert_eq!((f[0].size, f[1].size), (3, 5));
    // Named paddings: psame at stride 2 on 7 gives ceil(7/2) = 4; pvalid 5; pfull 9.
    assert_eq!(run("conv 1 k3 s2 psame", &[1, 1, 7]).output, vec![1, 1, 4]);
    assert_eq!(run("conv 1 k3 pvalid", &[1, 1, 7]).output, vec![1, 1, 5]);
    assert_eq!(run("conv 1 k3 pfull", &[1, 1, 7]).output, vec![1, 1, 9]);
    // Depthwise: 'dw' takes groups = channels and OUT defaults to them: 8·1·9 weights.
    let a = run("conv k3 p1 dw", &[1, 8, 5, 5]);
    assert_eq!((a.output.clone(), a.params, a.macs), (vec![1, 8, 5, 5], 72, 8 * 25 * 9));
    // 3-D, ceil-mode pooling: 5 → ceil((5−2)/2)+1 = 3.
    assert_eq!(run("maxpool k2 s2 ceil", &[1, 2, 5, 5, 5]).output, vec![1, 2, 3, 3, 3]);
}

#[test]
fn transposed_convolution_rows() {
    // (8−1)·2 − 2·1 + 4 = 16 outputs; weights 4·2·4 = 32 (+2 bias); MACs: each of the 4·8 inputs
    // scatters into 2·4 outputs = 256. The field is undefined past a strided transposed conv.
    let a = run("convT 2 k4 s2 p1 bias; conv 2 k3", &[1, 4, 8]);
    assert_eq!(a.rows[0].output, vec![1, 2, 16]);
    assert_eq!((a.rows[0].params, a.rows[0].macs), (34, 256));
    assert!(a.rows[0].field.is_none() && a.field.is_none());
    assert!(measure_field(&a, 0).unwrap().is_none());
    // At stride 1 it is a convolution with padding k−1−p: k3 p1 → rf 3, centred.
    let a = run("convT 2 k3 p1", &[1, 4, 8]);
    assert_eq!(a.output, vec![1, 2, 8]);
    assert_eq!(field(&a, 0), (3, 1, 0.0));
}

#[test]
fn residual_blocks_sum_both_branches() {
    // main: two k3 p1 convs (rf 5); shortcut: a 1×1 conv (rf 1): params 2·8·8·3 + 8·8 = 448.
    let a = run("res(conv 8 k3 p1; conv 8 k3 p1 | conv 8 k1)", &[1, 8, 16]);
    assert_eq!((a.output.clone(), a.params, a.macs), (vec![1, 8, 16], 448, 448 * 16));
    assert_eq!(field(&a, 0), (5, 1, 0.0));
    let (main, short) = a.rows[0].branches.as_ref().unwrap();
    assert_eq!((main.len(), short.len()), (2, 1));
    // An empty shortcut is the identity.
    assert_eq!(run("res(conv 8 k3 p1 | )", &[1, 8, 16]).params, 192);
    // Misaligned branches: main sees [o, o+2], shortcut [o−2, o]; the sum sees [o−2, o+2]:
    // 5 positions centred on o (the union, larger than either branch).
    let a = run("res(conv 1 k3 p0x2 | conv 1 k3 p2x0)", &[1, 1, 16]);
    assert_eq!(field(&a, 0), (5, 1, 0.0));
    let m = measure_field(&a, 0).unwrap().unwrap();
    assert_eq!((m.size(), m.centre()), (5, m.output as f64));
}

/// Published totals of torchvision's ImageNet models (torchvision model docs, "num_params"), minus
/// the classifier computed from its layer sizes: the conv trunks' parameter counts.
const TRUNK_PARAMS: [(&str, u64); 5] = [
    // AlexNet 61,100,840; classifier 9216→4096→4096→1000 with biases.
    ("alexnet", 61_100_840 - (9216 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000)),
    // VGG-16 138,357,544; classifier 25088→4096→4096→1000 with biases.
    ("vgg16", 138_357_544 - (25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000)),
    // ResNet-18 11,689,512; fc 512→1000.
    ("resnet18", 11_689_512 - (512 * 1000 + 1000)),
    // ResNet-50 25,557,032; fc 2048→1000.
    ("resnet50", 25_557_032 - (2048 * 1000 + 1000)),
    // MobileNetV2 3,504,872; classifier 1280→1000.
    ("mobilenetv2", 3_504_872 - (1280 * 1000 + 1000)),
];

#[test]
fn trunks_match_torchvision_parameter_counts_and_shapes() {
    assert_eq!(MODELS.len(), 5);
    for (name, want) in TRUNK_PARAMS {
        assert_eq!(trunk(name).params, want, "{name}");
    }
    // Trunk outputs at 224×224 (torchvision: AlexNet features 256×6×6, the others 7×7).
    assert_eq!(trunk("alexnet").output, vec![1, 256, 6, 6]);
    assert_eq!(trunk("vgg16").output, vec![1, 512, 7, 7]);
    assert_eq!(trunk("resnet18").output, vec![1, 512, 7, 7]);
    assert_eq!(trunk("resnet50").output, vec![1, 2048, 7, 7]);
    assert_eq!(trunk("mobilenetv2").output, vec![1, 1280, 7, 7]);
    assert!(model("resnet51").is_none());
}

#[test]
fn trunks_match_torchvision_multiply_adds() {
    // torchvision model docs, "GFLOPS" (multiply-adds, in billions, 2 decimals) of the whole
    // model; the classifier adds its weight count in multiply-adds.
    for (name, gmacs, classifier) in [
        ("alexnet", 0.71, 9216 * 4096 + 4096 * 4096 + 4096 * 1000),
        ("vgg16", 15.47, 25088 * 4096 + 4096 * 4096 + 4096 * 1000),
        ("resnet18", 1.81, 512 * 1000),
        ("resnet50", 4.09, 2048 * 1000),
        ("mobilenetv2", 0.30, 1280 * 1000),
    ] {
        let total = (trunk(name).macs + classifier) as f64 / 1e9;
        assert!((total - gmacs).abs() <= 0.005, "{name}: {total} GMACs, published {gmacs}");
    }
}

#[test]
fn vgg16_receptive_fields_match_distill() {
    // Araujo, Norris, Sim, "Computing Receptive Fields of Convolutional Neural Networks",
    // Distill 2019, and its library's table of TF-Slim end-points at 224 (google-research/
    // receptive_field, RECEPTIVE_FIELD_TABLE.md): (end-point, RF, effective stride, effective
    // padding). The paper's 212 for VGG-16 is pool5, the end of `features` (conv5_3 is 196).
    // Effective padding P puts the first output's field centre at (RF−1)/2 − P.
    let table = [
        ("conv1_1", 3, 1, 1),
        ("pool1", 6, 2, 2),
        ("conv2_1", 10, 2, 4),
        ("pool2", 16, 4, 6),
        ("conv3_1", 24, 4, 10),
        ("conv3_2", 32, 4, 14),
        ("pool3", 44, 8, 18),
        ("conv4_1", 60, 8, 26),
        ("conv4_2", 76, 8, 34),
        ("pool4", 100, 16, 42),
        ("conv5_1", 132, 16, 58),
        ("conv5_2", 164, 16, 74),
        ("pool5", 212, 32, 90),
    ];
    let a = trunk("vgg16");
    // Name torchvision's rows like the paper: convB_I and poolB.
    let mut names = Vec::new();
    let (mut block, mut conv) = (1, 0);
    for r in &a.rows {
        match r.op.as_str() {
            "conv" => {
                conv += 1;
                names.push(format!("conv{block}_{conv}"));
            }
            "maxpool" => {
                names.push(format!("pool{block}"));
                block += 1;
                conv = 0;
            }
            _ => names.push(String::new()),
        }
    }
    for (name, rf, stride, pad) in table {
        let i = names.iter().position(|n| n == name).unwrap();
        let want = (rf, stride, (rf as f64 - 1.0) / 2.0 - pad as f64);
        assert_eq!(field(&a, i), want, "{name}");
    }
    assert_eq!(a.field.unwrap()[1].size, 212);
}

#[test]
fn alexnet_receptive_fields_match_distill() {
    // Same table, alexnet_v2: conv1 11/4, pool1 19/8, conv2 51/8, conv3 99/16, conv4 131/16,
    // conv5 163/16, pool5 195/32. TF-Slim's kernels and strides are torchvision's; its paddings
    // differ (VALID conv1), so only size and stride are compared.
    let a = trunk("alexnet");
    let got: Vec<(u64, u64)> = a
        .rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.op != "relu")
        .map(|(i, _)| (field(&a, i).0, field(&a, i).1))
        .collect();
    assert_eq!(got, [(11, 4), (19, 8), (51, 8), (67, 16), (99, 16), (131, 16), (163, 16), (195, 32)]);
}

#[test]
fn slim_resnet_v1_50_through_the_grammar_matches_distill() {
    // The table's resnet_v1_50 (RF 483) is TF-Slim's: stride in the LAST unit of each block,
    // with a 1×1 max-pool "subsample" shortcut there, and TF's SAME padding (pool1 pads only at
    // the end). Built in the grammar, block ends must read (RF, stride, padding at 224):
    // block1 35/8/15, block2 99/16/47, block3 291/32/143, block4 483/32/239.
    // torchvision's ResNet-50 strides the first unit instead: see `measured_fields`.
    let mut l = vec!["conv 64 k7 s2 p3; bn; relu; maxpool k3 s2 p0x0x1x1".to_string()];
    // Rows: 4 for the stem, then 2 per unit (the block and its relu).
    let (mut ends, mut rows) = (Vec::new(), 4);
    let mut inp = 64;
    for (depth, units, stride) in [(64, 3, 2), (128, 4, 2), (256, 6, 2), (512, 3, 1)] {
        for u in 0..units {
            let s = if u == units - 1 { stride } else { 1 };
            let out = depth * 4;
            let short =
                if inp == out { format!("maxpool k1 s{s}") } else { format!("conv {out} k1 s{s}; bn") };
            l.push(format!("res(conv {depth} k1; bn; relu; conv {depth} k3 s{s} p1; bn; relu; conv {out} k1; bn | {short}); relu"));
            inp = out;
        }
        rows += 2 * units;
        ends.push(rows);
    }
    let a = run(&l.join("; "), &[1, 3, 224, 224]);
    let want = [(35, 8, 15), (99, 16, 47), (291, 32, 143), (483, 32, 239)];
    for (end, (rf, stride, pad)) in ends.iter().zip(want) {
        assert_eq!(field(&a, end - 1), (rf, stride, (rf as f64 - 1.0) / 2.0 - pad as f64));
    }
}

#[test]
fn slim_mobilenet_v1_through_the_grammar_matches_distill() {
    // Same table, mobilenet_v1 at 224: Conv2d_13_pointwise RF 315, stride 32, padding 126, with
    // TF's SAME padding (the odd extra at the end, as psame here).
    let mut l = vec!["conv 32 k3 s2 psame".to_string()];
    for (i, s) in [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1].into_iter().enumerate() {
        l.push(format!("conv k3 s{s} psame dw; conv {} k1", 64 << (i / 2).min(4)));
    }
    let a = run(&l.join("; "), &[1, 3, 224, 224]);
    assert_eq!(a.output[2..], [7, 7]);
    let f = a.field.unwrap()[0];
    assert_eq!((f.size, f.jump, f.start), (315, 32, 157.0 - 126.0));
}

#[test]
fn measured_fields() {
    // Receptive fields of torchvision's own trunks, measured with torch autograd (torchvision
    // 0.29.2, weights 1, max pools as average pools, ReLUs removed, a 1024×1024 input, gradient of
    // the middle output of channel 0): the span of input rows with a nonzero gradient.
    // ResNet-50 is 427, not the table's 483, because torchvision strides the first unit.
    for (name, rf) in
        [("alexnet", 195), ("vgg16", 212), ("resnet18", 435), ("resnet50", 427), ("mobilenetv2", 491)]
    {
        let a = trunk(name);
        for f in a.field.unwrap() {
            assert_eq!((f.size, f.jump), (rf, 32), "{name}");
        }
    }
}

#[test]
fn impulse_cross_check_every_model_and_axis() {
    for (name, _) in MODELS {
        let a = trunk(name);
        let fields = a.field.clone().unwrap();
        for (axis, f) in fields.iter().enumerate() {
            let m = measure_field(&a, axis).unwrap().unwrap();
            assert_eq!(m.size(), f.size, "{name} axis {axis}");
            assert_eq!(m.centre(), f.start + m.output as f64 * f.jump as f64, "{name} axis {axis}");
        }
    }
}

#[test]
fn impulse_cross_check_odd_stacks() {
    for (layers, input) in [
        ("conv 2 k3 d2 p1; avgpool k3 s2 ceil; conv 2 k4 s3 p0x2", &[1, 1, 40][..]),
        ("conv 2 k5x3 s2x1 p2x0; maxpool k2x3 s2 p1x1 d1x2; conv 2 k3 psame s2", &[1, 1, 30, 31]),
        (
            "conv 2 k3 p1; res(conv 2 k3 s2 p1; conv 2 k3 p1 | conv 2 k1 s2); maxpool k3 s2 p1; gavgpool",
            &[1, 1, 9, 9, 9],
        ),
        ("conv 2 k2 psame-lower; conv 2 k4 s2 pfull", &[1, 1, 12]),
    ] {
        let a = run(layers, input);
        for (axis, f) in a.field.clone().unwrap().iter().enumerate() {
            let m = measure_field(&a, axis).unwrap().unwrap();
            assert_eq!(m.size(), f.size, "{layers} axis {axis}");
            assert_eq!(m.centre(), f.start + m.output as f64 * f.jump as f64, "{layers} axis {axis}");
        }
    }
}
