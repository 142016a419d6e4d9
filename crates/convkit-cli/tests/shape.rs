//! `convkit shape` through the binary: every format (JSON parses to the contract the web page
//! reads, CSV has one row per layer plus totals), the built-in models, and bad input (exit 2,
//! one line on stderr, nothing on stdout).

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_convkit");

fn convkit(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run convkit")
}

fn ok(args: &[&str]) -> String {
    let o = convkit(args);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn bad(args: &[&str], want: &str) {
    let o = convkit(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}");
    assert!(o.stdout.is_empty(), "{args:?}: stdout {:?}", String::from_utf8_lossy(&o.stdout));
    let e = String::from_utf8(o.stderr).unwrap();
    assert_eq!(e.lines().count(), 1, "{args:?}: {e}");
    assert!(e.starts_with("convkit: ") && e.contains(want), "{args:?}: got {e:?}, want {want:?}");
}

const ISSUE: &str =
    "conv 64 k7 s2 p3; maxpool k3 s2 p1; conv 64 k3 p1; conv 128 k3 s2 p1 d1 g1; avgpool k2; convT 64 k2 s2";

#[test]
fn json_follows_the_contract() {
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "shape",
        "--input",
        "1,3,224,224",
        "--layers",
        ISSUE,
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(v["input"], serde_json::json!([1, 3, 224, 224]));
    let l = v["layers"].as_array().unwrap();
    assert_eq!(l.len(), 6);
    // First layer by hand: 64·3·7·7 = 9,408 weights (no bias by default); 112·112 outputs per
    // channel, 64 channels, 3·49 taps each = 118,013,952 MACs; rf 7, jump 2, centre 3−3 = 0.
    assert_eq!(
        l[0],
        serde_json::json!({"index": 1, "text": "conv 64 k7 s2 p3", "op": "conv", "output": [1, 64, 112, 112],
            "params": 9408, "macs": 118013952u64, "rf": [7, 7], "jump": [2, 2], "start": [0.0, 0.0]})
    );
    // maxpool k3 s2 p1: 56×56, rf 7+2·2 = 11, jump 4.
    assert_eq!(l[1]["output"], serde_json::json!([1, 64, 56, 56]));
    assert_eq!(l[1]["rf"], serde_json::json!([11, 11]));
    // convT k2 s2 doubles 14 → 28; its field is undefined (null).
    assert_eq!(l[5]["op"], "convT");
    assert_eq!(l[5]["output"], serde_json::json!([1, 64, 28, 28]));
    assert!(l[5]["rf"].is_null());
    let t = &v["total"];
    let sum: u64 = l.iter().map(|x| x["params"].as_u64().unwrap()).sum();
    assert_eq!(t["params"].as_u64(), Some(sum));
    assert_eq!(t["output"], serde_json::json!([1, 64, 28, 28]));
}

#[test]
fn csv_has_one_row_per_layer_and_totals() {
    let s = ok(&[
        "shape",
        "--input",
        "1,3,32,32",
        "--layers",
        "conv 8 k3 p1 bias; bn; relu; maxpool k2",
        "--format",
        "csv",
    ]);
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 1 + 4 + 1);
    assert_eq!(lines[0], "index,text,op,output,params,macs,rf,jump,start");
    // 8·3·9+8 = 224 params; 8·32·32·27 = 221,184 MACs.
    assert_eq!(lines[1], "1,\"conv 8 k3 p1 bias\",conv,1x8x32x32,224,221184,3x3,1x1,0x0");
    assert_eq!(lines[5], "total,,,1x8x16x16,240,221184,4x4,2x2,0.5x0.5");
}

#[test]
fn table_and_markdown() {
    let t = ok(&["shape", "--input", "1,3,224,224", "--layers", ISSUE]);
    assert!(
        t.lines().any(|l| l.contains("conv 64 k7 s2 p3") && l.contains("9,408") && l.contains("118.01M")),
        "{t}"
    );
    assert!(t.lines().last().unwrap().starts_with("total"), "{t}");
    let m = ok(&["shape", "--input", "1,3,224,224", "--layers", ISSUE, "--format", "markdown"]);
    assert!(m.contains("| # | layer | output | params | MACs | rf | jump | start |"), "{m}");
    assert_eq!(m.lines().filter(|l| l.starts_with('|')).count(), 2 + 6 + 1);
}

#[test]
fn models_default_to_224_and_pass_the_impulse_check() {
    // torchvision ResNet-50: 25,557,032 parameters minus the 2048→1000 fc.
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["shape", "--model", "resnet50", "--format", "json"])).unwrap();
    assert_eq!(v["input"], serde_json::json!([1, 3, 224, 224]));
    assert_eq!(v["total"]["params"].as_u64(), Some(25_557_032 - 2_049_000));
    let s = ok(&["shape", "--model", "vgg16", "--check"]);
    assert_eq!(
        s.lines().filter(|l| l.contains("impulse check") && l.ends_with("(agrees)")).count(),
        2,
        "{s}"
    );
    let s = ok(&["shape", "--list-models"]);
    for m in ["alexnet", "vgg16", "resnet18", "resnet50", "mobilenetv2"] {
        assert!(s.contains(m));
    }
}

#[test]
fn bad_input_exits_2_with_one_line() {
    bad(&["shape", "--model", "resnet51"], "invalid model resnet51: unknown; expected one of alexnet");
    bad(&["shape", "--input", "1,3,8,8"], "missing layers");
    bad(&["shape", "--layers", "conv 8 k3"], "missing input");
    bad(&["shape", "--model", "vgg16", "--layers", "relu"], "not both");
    bad(&["shape", "--input", "1,3,x", "--layers", "relu"], "invalid input 1,3,x");
    bad(&["shape", "--input", "1,3", "--layers", "relu"], "expected N,C and 1 to 3 spatial sizes");
    bad(
        &["shape", "--input", "1,3,8,8", "--layers", "conv 8 k3; conv 8 k7"],
        "invalid layer 2 'conv 8 k7': ",
    );
    bad(&["shape", "--input", "1,3,8,8", "--layers", "conv 8 k3; conv 8 k7"], "leaves no output on axis 0");
    bad(&["shape", "--input", "1,3,8,8", "--layers", "conv 8 q3"], "unknown token 'q3'");
    bad(&["shape", "--input", "1,3,8,8", "--layers", " ; "], "no layers");
    bad(&["shape", "--model", "vgg16", "--format", "xml"], "invalid format xml");
    bad(
        &["shape", "--input", "1,3,8,8", "--layers", "res(conv 8 k3 | conv 8 k1)"],
        "the branches do not add up",
    );
}
