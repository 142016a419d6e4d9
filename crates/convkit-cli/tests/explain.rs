//! `convkit explain`: the textbook example in text, Markdown and JSON (the web page's contract),
//! .npy inputs, and refusals (too large, bad flags) as exit code 2 with one line on stderr.

use convkit::npy::write_npy_to;
use serde_json::{json, Value};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_convkit");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).arg("explain").args(args).output().expect("run convkit")
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stderr.is_empty());
    String::from_utf8(o.stdout).unwrap()
}

/// Exit code 2, nothing on stdout, exactly one non-empty line on stderr starting `convkit: `.
fn refused(args: &[&str]) -> String {
    let o = run(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&o.stdout));
    assert!(o.stdout.is_empty(), "{args:?}");
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(err.starts_with("convkit: ") && err.len() > 12, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err.trim_end().to_string()
}

// x = [1, 2, 0, −1, 3, 1], w = [2, −1, 1], cross-correlation, valid, stride 1 (worked by hand:
// 1·2 + 2·(−1) + 0·1 = 0, 2·2 + 0·(−1) + (−1)·1 = 3, 0·2 + (−1)·(−1) + 3·1 = 4,
// (−1)·2 + 3·(−1) + 1·1 = −4).
const X: &str = "1,2,0,-1,3,1";
const W: &str = "2,-1,1";

#[test]
fn text_reproduces_the_textbook_example() {
    let out = ok(&["--input", X, "--weight", W]);
    for line in [
        "1·2 + 2·(−1) + 0·1 = 0",
        "2·2 + 0·(−1) + (−1)·1 = 3",
        "0·2 + (−1)·(−1) + 3·1 = 4",
        "(−1)·2 + 3·(−1) + 1·1 = −4",
        "[0, 3, 4, −4]",
        "axis 0: out = ⌊(6 + 0 + 0 − 1·(3 − 1) − 1) / 1⌋ + 1 = 4",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
    // The default format is text, and `--format text` says the same.
    assert_eq!(out, ok(&["--input", X, "--weight", W, "--format", "text"]));
}

#[test]
fn markdown_has_the_steps_table() {
    let out = ok(&["--input", X, "--weight", W, "--format", "markdown"]);
    assert!(out.contains("| output | window (padded positions) | arithmetic | result |"), "{out}");
    assert!(out.contains("| `y[3]` | 3–5 | `(−1)·2 + 3·(−1) + 1·1` | **−4** |"), "{out}");
    assert!(out.contains("```text\n[0, 3, 4, −4]\n```"), "{out}");
}

#[test]
fn json_follows_the_contract() {
    let v: Value = serde_json::from_str(&ok(&["--input", X, "--weight", W, "--format", "json"])).unwrap();
    assert_eq!(v["op"], "conv");
    assert_eq!(v["spatial_dims"], 1);
    assert_eq!(v["input_shape"], json!([1, 1, 6]));
    assert_eq!(v["weight_shape"], json!([1, 1, 3]));
    assert_eq!(v["output_shape"], json!([1, 1, 4]));
    assert_eq!(v["input"], json!([1, 2, 0, -1, 3, 1]));
    assert_eq!(v["weight"], json!([2, -1, 1]));
    assert_eq!(v["bias"], Value::Null);
    assert_eq!(v["output"], json!([0, 3, 4, -4]));
    assert_eq!(v["pad_begin"], json!([0]));
    assert_eq!(v["pad_end"], json!([0]));
    assert_eq!(v["padded_shape"], json!([6]));
    assert_eq!(v["padded"], json!([1, 2, 0, -1, 3, 1]));
    assert_eq!(v["kernel_applied"], json!([2, -1, 1]));
    let f = &v["formula"][0];
    for (key, want) in [
        ("axis", json!(0)),
        ("input", json!(6)),
        ("pad_begin", json!(0)),
        ("pad_end", json!(0)),
        ("dilation", json!(1)),
        ("kernel", json!(3)),
        ("stride", json!(1)),
        ("output", json!(4)),
        ("text", json!("⌊(6 + 0 + 0 − 1·(3 − 1) − 1) / 1⌋ + 1 = 4")),
    ] {
        assert_eq!(f[key], want, "formula.{key}");
    }
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4);
    let s = &steps[1];
    for (key, want) in [
        ("n", json!(0)),
        ("k", json!(0)),
        ("out", json!([1])),
        ("sum", json!(3)),
        ("bias", Value::Null),
        ("value", json!(3)),
    ] {
        assert_eq!(s[key], want, "steps[1].{key}");
    }
    let t = &s["terms"][2];
    for (key, want) in [
        ("c", json!(0)),
        ("tap", json!([2])),
        ("padded", json!([3])),
        ("source", json!([3])),
        ("x", json!(-1)),
        ("w", json!(1)),
        ("product", json!(-1)),
    ] {
        assert_eq!(t[key], want, "steps[1].terms[2].{key}");
    }
}

#[test]
fn json_padding_flip_and_pooling() {
    // Zero padding 1, flipped kernel [1, 2] applied as [2, 1]: padded [0, 5, 7, 0];
    // outputs 0·2 + 5·1 = 5, 5·2 + 7·1 = 17, 7·2 + 0·1 = 14.
    let out = ok(&["--input", "5,7", "--weight", "1,2", "--padding", "1", "--flip", "--format", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["weight"], json!([1, 2]));
    assert_eq!(v["kernel_applied"], json!([2, 1]));
    assert_eq!(v["padded"], json!([0, 5, 7, 0]));
    assert_eq!(v["output"], json!([5, 17, 14]));
    assert_eq!(v["steps"][0]["terms"][0]["source"], Value::Null);
    // Max pooling 2, padding 1 on [3, 1, 4]: windows (pad, 3), (1, 4) → 3, 4; padding is
    // never a maximum, shown as null in JSON.
    let out =
        ok(&["--input", "3,1,4", "--pool", "max", "--kernel", "2", "--padding", "1", "--format", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["op"], "max-pool");
    assert_eq!(
        (v["weight"].clone(), v["weight_shape"].clone(), v["kernel_applied"].clone()),
        (Value::Null, Value::Null, Value::Null)
    );
    assert_eq!(v["output"], json!([3, 4]));
    assert_eq!(v["padded"], json!([null, 3, 1, 4, null]));
    assert_eq!(v["steps"][0]["terms"][0]["w"], Value::Null);
    assert_eq!(v["steps"][0]["terms"][0]["product"], Value::Null);
    // Average pooling 2 on [1, 2, 3, 4]: 1.5, 3.5.
    let out = ok(&["--input", "1,2,3,4", "--pool", "avg", "--kernel", "2", "--format", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["op"].clone(), v["output"].clone()), (json!("avg-pool"), json!([1.5, 3.5])));
}

#[test]
fn npy_inputs_give_the_same_example() {
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x.npy");
    let w = dir.path().join("w.npy");
    let x1 = dir.path().join("x1.npy");
    write_npy_to(std::fs::File::create(&x).unwrap(), &[1, 1, 6], &[1.0f32, 2.0, 0.0, -1.0, 3.0, 1.0])
        .unwrap();
    write_npy_to(std::fs::File::create(&w).unwrap(), &[1, 1, 3], &[2.0f64, -1.0, 1.0]).unwrap();
    // A rank-1 array is one signal.
    write_npy_to(std::fs::File::create(&x1).unwrap(), &[6], &[1.0f64, 2.0, 0.0, -1.0, 3.0, 1.0]).unwrap();
    let inline = ok(&["--input", X, "--weight", W]);
    assert_eq!(ok(&["--input", x.to_str().unwrap(), "--weight", w.to_str().unwrap()]), inline);
    assert_eq!(ok(&["--input", x1.to_str().unwrap(), "--weight", W]), inline);
    // A large file is refused before it is read.
    let big = dir.path().join("big.npy");
    write_npy_to(std::fs::File::create(&big).unwrap(), &[1, 1, 64, 64], &vec![0.0f64; 4096]).unwrap();
    let err = refused(&["--input", big.to_str().unwrap(), "--weight", W]);
    assert!(err.contains("input") && err.contains("big.npy"), "{err}");
    // A 1024-value .npy within the byte limit but with too many outputs is refused by the steps limit.
    let mid = dir.path().join("mid.npy");
    write_npy_to(std::fs::File::create(&mid).unwrap(), &[1, 1, 32, 32], &vec![0.0f32; 1024]).unwrap();
    let err = refused(&["--input", mid.to_str().unwrap(), "--weight", "1,1;1,1"]);
    assert!(err.contains("961 steps") && err.contains("at most 256"), "{err}");
    // A .npy with --input-shape is contradictory.
    refused(&["--input", x.to_str().unwrap(), "--weight", W, "--input-shape", "1,1,6"]);
}

#[test]
fn large_inputs_are_refused_with_one_line() {
    let many = vec!["1"; 4096].join(",");
    let err = refused(&["--input", &many, "--weight", "1"]);
    assert!(err.contains("4096 values") && err.contains("at most 1024"), "{err}");
    assert!(err.len() < 200, "the value is not echoed in full: {err}");
    let rows = vec!["1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20"; 20].join(";");
    let err = refused(&["--input", &rows, "--weight", "1,1;1,1"]);
    assert!(err.contains("361 steps"), "{err}");
    let huge = "1,".repeat(20_000);
    let err = refused(&["--input", &huge, "--weight", "1"]);
    assert!(err.contains("characters"), "{err}");
}

#[test]
fn bad_flags_are_refused_with_one_line() {
    for (args, needle) in [
        (vec!["--input", X, "--weight", W, "--stride", "0"], "stride"),
        (vec!["--input", "1,x,3", "--weight", W], "'x'"),
        (vec!["--input", "1,2;3", "--weight", "1"], "row 2"),
        (vec!["--input", X], "missing weight"),
        (vec!["--weight", W], "--input"),
        (vec!["--input", X, "--weight", W, "--groups", "2"], "groups"),
        (vec!["--input", X, "--weight", W, "--format", "xml"], "format"),
        (vec!["--input", X, "--weight", W, "--padding", "9", "--padding-mode", "reflect"], "reflect"),
        (vec!["--input", X, "--weight", W, "--padding-mode", "mirror"], "padding-mode"),
        (vec!["--input", X, "--weight", W, "--bias", "1,2"], "bias"),
        (vec!["--input", X, "--weight", W, "--input-shape", "1,2,2"], "input-shape"),
        (vec!["--input", X, "--weight", "1,2,3,4,5,6,7"], "padding"),
        (vec!["--input", X, "--weight", W, "--kernel", "2"], "kernel"),
        (vec!["--input", X, "--pool", "max"], "kernel"),
        (vec!["--input", X, "--pool", "min", "--kernel", "2"], "pool kind"),
        (vec!["--input", X, "--pool", "max", "--kernel", "2", "--weight", W], "weight"),
        (vec!["--input", X, "--pool", "max", "--kernel", "2", "--exclude-pad"], "exclude-pad"),
        (vec!["--input", X, "--weight", W, "--ceil-mode"], "ceil-mode"),
        (vec!["--input", "1,inf", "--weight", "1"], "finite"),
        (vec!["--input", "missing.npy", "--weight", W], "missing.npy"),
        (vec!["--input", X, "--weight", W, "--nope"], "--nope"),
    ] {
        let err = refused(&args);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn descriptor_errors_match_convkit_conv() {
    // The same problem as .npy files for `convkit conv`: the same bad flag gives the same line.
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x.npy");
    let w = dir.path().join("w.npy");
    write_npy_to(std::fs::File::create(&x).unwrap(), &[1, 1, 6], &[1.0f64, 2.0, 0.0, -1.0, 3.0, 1.0])
        .unwrap();
    write_npy_to(std::fs::File::create(&w).unwrap(), &[1, 1, 3], &[2.0f64, -1.0, 1.0]).unwrap();
    let y = dir.path().join("y.npy");
    for flag in [
        ["--stride", "0"],
        ["--padding", "-1"],
        ["--padding", "1,2,3"],
        ["--dilation", "a"],
        ["--dilation", "4"],
        ["--groups", "0"],
        ["--groups", "2"],
        ["--padding-mode", "wrapx"],
    ] {
        let explain = refused(&["--input", X, "--weight", W, flag[0], flag[1]]);
        let conv =
            Command::new(BIN).arg("conv").args([&x, &w]).arg("-o").arg(&y).args(flag).output().unwrap();
        assert_eq!(conv.status.code(), Some(2));
        assert_eq!(String::from_utf8_lossy(&conv.stderr).trim_end(), explain, "{flag:?}");
    }
    assert!(!y.exists());
}
