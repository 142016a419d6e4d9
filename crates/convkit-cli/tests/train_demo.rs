//! `convkit train-demo` end to end: the files it writes, bit-identical weights for the same
//! seed and thread count, and one-line errors for bad arguments.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_convkit");
const WEIGHTS: [&str; 6] = [
    "conv1.weight.npy",
    "conv1.bias.npy",
    "conv2.weight.npy",
    "conv2.bias.npy",
    "classifier.weight.npy",
    "classifier.bias.npy",
];

fn train(out: &Path, threads: &str) -> String {
    let o = Command::new(BIN)
        .args(["train-demo", "--out"])
        .arg(out)
        .args(["--seed", "1", "--threads", threads])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn same_seed_and_threads_give_the_same_weights_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let summary = train(&a, "2");
    train(&b, "2");
    // One line, with the held-out accuracy.
    assert_eq!(summary.lines().count(), 1, "{summary}");
    let acc: f64 = summary
        .split("held-out accuracy ")
        .nth(1)
        .and_then(|s| s.split('%').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no accuracy in {summary}"));
    assert!(acc >= 95.0, "{summary}");
    for f in WEIGHTS {
        let (x, y) = (std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap());
        assert!(x.len() > 128, "{f}");
        assert_eq!(x, y, "{f} differs between two runs");
    }
    for f in ["filters.png", "loss.png", "feature-maps.png"] {
        let bytes = std::fs::read(a.join(f)).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{f}");
    }
}

#[test]
fn bad_arguments_exit_2_with_one_line_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    for (flag, value, want) in [
        ("--seed", "-3", "invalid seed -3"),
        ("--threads", "0", "invalid threads 0"),
        ("--threads", "many", "invalid threads many"),
    ] {
        let o =
            Command::new(BIN).args(["train-demo", "--out"]).arg(&out).args([flag, value]).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{flag} {value}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "{err}");
        assert!(!out.exists());
    }
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let o = Command::new(BIN).args(["train-demo", "--out"]).arg(&file).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid out"));
}
