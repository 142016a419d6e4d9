//! PyTorch parity through the `convkit` command line.
//!
//! `tests/data/conformance/` holds a selection of the shared conformance cases (generated with
//! PyTorch, expected values in float64): every op, ranks 1-3, f32 and f64, every padding mode,
//! named and asymmetric paddings, groups, flip, NHWC, ceil mode, count_include_pad, max-pool
//! indices and a few `_big` cases. Each case is a folder with `case.json` and `.npy` files.
//!
//! Every case is run exactly as the shared harness `run_cases.py` runs it (`cmd_for` is ported
//! below) and compared with its tolerances: f32 max abs error <= 2e-4 * max(1, max|expected|),
//! f64 1e-9 * ...; indices exactly; shape and dtype must match.
//!
//! When the shared folder is present beside the workspace (`../shared/conformance/cases`), a
//! second test runs all of its cases; without it that test passes with a note.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_convkit");
/// The harness's per-case time limit.
const TIMEOUT: Duration = Duration::from_secs(120);

fn in_repo_cases() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance")
}

fn shared_cases() -> PathBuf {
    // crates/convkit-cli -> workspace root -> its sibling `shared/`.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/cases")
}

// ---------------------------------------------------------------------------------------------
// A small, independent .npy reader (so a wrong header written by the library is caught here).

#[derive(Debug)]
struct Npy {
    descr: String,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl Npy {
    fn load(path: &Path) -> Result<Npy, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Npy::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn parse(b: &[u8]) -> Result<Npy, String> {
        if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
            return Err("not an .npy file".into());
        }
        let (hlen, start) = match b[6] {
            1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
            2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
            v => return Err(format!("unknown .npy version {v}")),
        };
        let header = b
            .get(start..start + hlen)
            .ok_or("truncated header")
            .map(|h| String::from_utf8_lossy(h).into_owned())?;
        let field = |key: &str| -> Result<&str, String> {
            let at = header.find(&format!("'{key}'")).ok_or(format!("no {key} in header {header}"))?;
            let rest = &header[at + key.len() + 2..];
            Ok(rest.trim_start().trim_start_matches(':').trim_start())
        };
        let descr = field("descr")?;
        let descr = descr.split('\'').nth(1).ok_or("bad descr")?.to_string();
        if !field("fortran_order")?.starts_with("False") {
            return Err("Fortran-ordered".into());
        }
        let shape_text = field("shape")?;
        let shape_text = &shape_text[1..shape_text.find(')').ok_or("bad shape")?];
        let shape = shape_text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<usize>().map_err(|e| format!("bad shape {shape_text}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let data = b[start + hlen..].to_vec();
        let npy = Npy { descr, shape, data };
        let want = npy.numel() * npy.item_size()?;
        if npy.data.len() != want {
            return Err(format!("{} data bytes for shape {:?}, expected {want}", npy.data.len(), npy.shape));
        }
        Ok(npy)
    }

    fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    fn item_size(&self) -> Result<usize, String> {
        match self.descr.as_str() {
            "<f4" => Ok(4),
            "<f8" | "<i8" => Ok(8),
            d => Err(format!("unexpected dtype {d}")),
        }
    }

    /// The values as f64 (exact for every dtype used here).
    fn values(&self) -> Vec<f64> {
        match self.descr.as_str() {
            "<f4" => {
                self.data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect()
            }
            "<f8" => self.data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect(),
            "<i8" => {
                self.data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64).collect()
            }
            d => panic!("unexpected dtype {d}"),
        }
    }

    fn ints(&self) -> Option<Vec<i64>> {
        (self.descr == "<i8")
            .then(|| self.data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect())
    }
}

// ---------------------------------------------------------------------------------------------
// The harness, ported.

/// Python's `str()` of a JSON value, as `run_cases.py` formats arguments.
fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// The outputs a command writes: (key, path), in the harness's order.
type Files = Vec<(String, PathBuf)>;

/// `cmd_for` of `run_cases.py`: the command line's arguments and the outputs it writes
/// (key -> path), in the harness's order.
fn cmd_for(c: &Value, d: &Path, out: &Path) -> Result<(Vec<String>, Files), String> {
    let a = &c["args"];
    let i = &c["inputs"];
    let p = |key: &str| -> Result<String, String> {
        let f = i[key].as_str().ok_or(format!("no input {key}"))?;
        Ok(d.join(f).display().to_string())
    };
    let arg =
        |key: &str| -> Result<String, String> { a.get(key).map(py_str).ok_or(format!("no argument {key}")) };
    let op = c["op"].as_str().ok_or("no op")?;
    let mut files: Files = Vec::new();
    let mut cmd: Vec<String>;
    match op {
        "conv" | "conv_transpose" => {
            let sub = if op == "conv" { "conv" } else { "conv-transpose" };
            let output = out.join("output.npy");
            cmd = vec![sub.into(), p("input")?, p("weight")?, "-o".into(), output.display().to_string()];
            files.push(("output".into(), output));
            if i.get("bias").is_some() {
                cmd.extend(["--bias".into(), p("bias")?]);
            }
            for key in ["stride", "padding", "dilation", "groups", "output_padding", "padding_mode", "layout"]
            {
                if let Some(v) = a.get(key) {
                    cmd.extend([format!("--{}", key.replace('_', "-")), py_str(v)]);
                }
            }
            if truthy(a.get("flip")) {
                cmd.push("--flip".into());
            }
        }
        "conv_backward" => {
            cmd = vec!["conv-backward".into(), p("input")?, p("weight")?, p("grad_output")?];
            for key in ["grad_input", "grad_weight", "grad_bias"] {
                let path = out.join(format!("{key}.npy"));
                cmd.extend([format!("--{}", key.replace('_', "-")), path.display().to_string()]);
                files.push((key.into(), path));
            }
            for key in ["stride", "padding", "dilation", "groups"] {
                cmd.extend([format!("--{key}"), arg(key)?]);
            }
        }
        "pool" => {
            let output = out.join("output.npy");
            let kind = arg("kind")?;
            cmd = vec!["pool".into(), kind.clone(), p("input")?, "-o".into(), output.display().to_string()];
            files.push(("output".into(), output));
            if !kind.starts_with("global") {
                cmd.extend(["--kernel".into(), arg("kernel")?, "--stride".into(), arg("stride")?]);
                cmd.extend(["--padding".into(), arg("padding")?, "--dilation".into(), arg("dilation")?]);
                let cip = if truthy(a.get("count_include_pad")) { "true" } else { "false" };
                cmd.extend(["--count-include-pad".into(), cip.into()]);
                if truthy(a.get("ceil_mode")) {
                    cmd.push("--ceil-mode".into());
                }
            }
            if c["expected"].get("indices").is_some() {
                let path = out.join("indices.npy");
                cmd.extend(["--indices".into(), path.display().to_string()]);
                files.push(("indices".into(), path));
            }
        }
        other => return Err(format!("unknown op {other}")),
    }
    Ok((cmd, files))
}

/// Run the binary with the harness's time limit; (exit code, stderr).
fn run_with_timeout(args: &[String]) -> Result<(Option<i32>, String), String> {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {BIN}: {e}"))?;
    let start = Instant::now();
    loop {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            break;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err("timeout".into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = if out.stderr.is_empty() { &out.stdout } else { &out.stderr };
    Ok((out.status.code(), String::from_utf8_lossy(text).trim().chars().take(300).collect()))
}

/// Compare one float output with its expected array. `lowest` is the dtype's lowest finite
/// value (f32::MIN or f64::MIN, as f64).
///
/// Harness quirk: where PyTorch's expected value is -inf (a max-pool window lying wholly in
/// padding, e.g. pool1d_014), convkit writes the lowest finite value of the dtype instead.
/// `run_cases.py` accepts that only by accident (the scale max|expected| becomes inf), so here
/// an expected -inf is matched by any value <= the dtype's lowest finite value, and those
/// elements are left out of the scale. Every other element is compared strictly: other
/// non-finite expected values must be reproduced exactly, and the finite ones must lie within
/// tol * max(1, max|finite expected|).
fn compare_floats(got: &[f64], want: &[f64], tol: f64, lowest: f64) -> Result<(), String> {
    let scale = want.iter().filter(|w| w.is_finite()).fold(1.0f64, |m, w| m.max(w.abs()));
    let mut err = 0.0f64;
    let mut worst = 0;
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        if w == f64::NEG_INFINITY {
            if g.is_nan() || g > lowest {
                return Err(format!("element {k}: got {g}, expected -inf (a value <= {lowest})"));
            }
        } else if !w.is_finite() {
            if !(g == w || (g.is_nan() && w.is_nan())) {
                return Err(format!("element {k}: got {g}, expected {w}"));
            }
        } else {
            let e = (g - w).abs();
            if e.is_nan() {
                return Err(format!("element {k}: got {g}, expected {w}"));
            }
            if e > err {
                err = e;
                worst = k;
            }
        }
    }
    if err > tol * scale {
        return Err(format!(
            "max abs error {err:.3e} at element {worst} (scale {scale:.3e}, tolerance {:.3e})",
            tol * scale
        ));
    }
    Ok(())
}

/// Run one case folder; Err(reason) on failure.
fn run_case(d: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(d.join("case.json")).map_err(|e| format!("case.json: {e}"))?;
    let c: Value = serde_json::from_str(&text).map_err(|e| format!("case.json: {e}"))?;
    let out = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (cmd, files) = cmd_for(&c, d, out.path())?;
    let shown = format!("\n    convkit {}", cmd.join(" "));
    let (code, stderr) = run_with_timeout(&cmd).map_err(|e| format!("{e}{shown}"))?;
    if code != Some(0) {
        return Err(format!("exit {code:?}: {stderr}{shown}"));
    }
    let dtype = c["dtype"].as_str().ok_or("no dtype")?;
    let (tol, lowest, want_descr) = match dtype {
        "f32" => (2e-4, f32::MIN as f64, "<f4"),
        "f64" => (1e-9, f64::MIN, "<f8"),
        other => return Err(format!("unknown dtype {other}")),
    };
    for (key, path) in &files {
        let expected_file = c["expected"][key.as_str()].as_str().ok_or(format!("no expected {key}"))?;
        let want = Npy::load(&d.join(expected_file))?;
        if !path.exists() {
            return Err(format!("{key}: no file written{shown}"));
        }
        let got = Npy::load(path).map_err(|e| format!("{key}: {e}{shown}"))?;
        if got.shape != want.shape {
            return Err(format!("{key}: shape {:?} != {:?}{shown}", got.shape, want.shape));
        }
        if key == "indices" {
            let (Some(g), Some(w)) = (got.ints(), want.ints()) else {
                return Err(format!("{key}: dtype {} != <i8{shown}", got.descr));
            };
            let differ = g.iter().zip(&w).filter(|(a, b)| a != b).count();
            if differ > 0 {
                return Err(format!("indices differ at {differ} places{shown}"));
            }
            continue;
        }
        if got.descr != want_descr {
            return Err(format!("{key}: dtype {} != {want_descr}{shown}", got.descr));
        }
        compare_floats(&got.values(), &want.values(), tol, lowest)
            .map_err(|e| format!("{key}: {e}{shown}"))?;
    }
    Ok(())
}

/// Run every case folder under `dir`; returns (number run, failures).
fn run_all(dir: &Path, ids: &[String]) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    for id in ids {
        if let Err(why) = run_case(&dir.join(id)) {
            failures.push(format!("FAIL {id}: {why}"));
        }
    }
    (ids.len(), failures)
}

/// The case folders (those holding a case.json) under `dir`, sorted.
fn case_dirs(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("case.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids
}

fn report(what: &str, run: usize, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} of {run} {what} conformance cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{run} {what} conformance cases passed");
}

#[test]
fn in_repo_cases_match_pytorch() {
    let dir = in_repo_cases();
    let ids = case_dirs(&dir);

    // Guard against the data going missing or thinning out unnoticed.
    assert!(ids.len() >= 60, "only {} cases in {}", ids.len(), dir.display());
    let mut ops: BTreeMap<String, usize> = BTreeMap::new();
    for id in &ids {
        let c: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(id).join("case.json")).unwrap())
                .unwrap_or_else(|e| panic!("{id}/case.json: {e}"));
        *ops.entry(c["op"].as_str().unwrap_or("?").to_string()).or_default() += 1;
    }
    for op in ["conv", "conv_transpose", "conv_backward", "pool"] {
        assert!(ops.contains_key(op), "no {op} case in {}: {ops:?}", dir.display());
    }
    assert!(ids.iter().any(|i| i == "pool1d_014"), "pool1d_014 (window wholly in padding) is missing");
    // The manifest (read by run_cases.py) must list exactly these folders.
    let manifest: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let mut listed = manifest.clone();
    listed.sort();
    assert_eq!(listed, ids, "manifest.json is out of date with the case folders");

    let (run, failures) = run_all(&dir, &ids);
    report("in-repo", run, &failures);
}

#[test]
fn all_shared_cases_match_pytorch_when_present() {
    let dir = shared_cases();
    if !dir.is_dir() {
        eprintln!("note: {} is absent; skipping the full shared conformance run", dir.display());
        return;
    }
    // The harness runs the cases the manifest lists, in its order.
    let ids: Vec<String> = match std::fs::read_to_string(dir.join("manifest.json")) {
        Ok(text) => serde_json::from_str(&text).expect("shared manifest.json"),
        Err(_) => case_dirs(&dir),
    };
    let (run, failures) = run_all(&dir, &ids);
    report("shared", run, &failures);
}

#[test]
fn lowest_finite_matches_expected_minus_infinity_only() {
    // The -inf quirk is narrow: the lowest finite value (or -inf) matches -inf ...
    assert!(compare_floats(&[f64::MIN, 1.0], &[f64::NEG_INFINITY, 1.0], 1e-9, f64::MIN).is_ok());
    assert!(compare_floats(&[f32::MIN as f64], &[f64::NEG_INFINITY], 2e-4, f32::MIN as f64).is_ok());
    // ... but nothing larger, and the -inf does not widen the tolerance for other elements.
    assert!(compare_floats(&[-1e30], &[f64::NEG_INFINITY], 2e-4, f32::MIN as f64).is_err());
    assert!(compare_floats(&[f64::MIN, 1.1], &[f64::NEG_INFINITY, 1.0], 1e-9, f64::MIN).is_err());
    // NaN never passes; tolerances scale with max(1, max|expected|).
    assert!(compare_floats(&[f64::NAN], &[0.0], 1e-9, f64::MIN).is_err());
    assert!(compare_floats(&[1000.1], &[1000.0], 2e-4, f32::MIN as f64).is_ok());
    assert!(compare_floats(&[0.1003], &[0.1], 2e-4, f32::MIN as f64).is_err());
}

#[test]
fn command_lines_follow_run_cases_py() {
    let c: Value = serde_json::from_str(
        r#"{"op":"conv","dtype":"f32","args":{"stride":"1","padding":"same","dilation":"1","groups":3,
            "padding_mode":"replicate","flip":true,"layout":"nhwc"},
            "inputs":{"input":"input.npy","weight":"weight.npy","bias":"bias.npy"},
            "expected":{"output":"expected_output.npy"}}"#,
    )
    .unwrap();
    let (cmd, files) = cmd_for(&c, Path::new("D"), Path::new("O")).unwrap();
    assert_eq!(
        cmd.join(" "),
        "conv D/input.npy D/weight.npy -o O/output.npy --bias D/bias.npy --stride 1 --padding same \
         --dilation 1 --groups 3 --padding-mode replicate --layout nhwc --flip"
    );
    assert_eq!(files, vec![("output".to_string(), PathBuf::from("O/output.npy"))]);

    let c: Value = serde_json::from_str(
        r#"{"op":"pool","dtype":"f64","args":{"kind":"max","kernel":"2","stride":"2","padding":"1",
            "dilation":"2","ceil_mode":true,"count_include_pad":false},
            "inputs":{"input":"input.npy"},
            "expected":{"output":"expected_output.npy","indices":"expected_indices.npy"}}"#,
    )
    .unwrap();
    let (cmd, files) = cmd_for(&c, Path::new("D"), Path::new("O")).unwrap();
    assert_eq!(
        cmd.join(" "),
        "pool max D/input.npy -o O/output.npy --kernel 2 --stride 2 --padding 1 --dilation 2 \
         --count-include-pad false --ceil-mode --indices O/indices.npy"
    );
    assert_eq!(files.len(), 2);

    let c: Value = serde_json::from_str(
        r#"{"op":"conv_backward","dtype":"f64","args":{"stride":"3","padding":"0","dilation":"1","groups":1},
            "inputs":{"input":"input.npy","weight":"weight.npy","grad_output":"grad_output.npy"},
            "expected":{}}"#,
    )
    .unwrap();
    let (cmd, _) = cmd_for(&c, Path::new("D"), Path::new("O")).unwrap();
    assert_eq!(
        cmd.join(" "),
        "conv-backward D/input.npy D/weight.npy D/grad_output.npy --grad-input O/grad_input.npy \
         --grad-weight O/grad_weight.npy --grad-bias O/grad_bias.npy --stride 3 --padding 0 --dilation 1 --groups 1"
    );
}
