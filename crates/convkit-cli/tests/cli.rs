//! The `convkit` command line's contract: every bad input exits with code 2, prints exactly one
//! non-empty line on stderr naming the argument (and its value where there is one), never a
//! panic or backtrace, and writes nothing (no output, no leftover `.tmp-convkit` file); a
//! successful run writes exactly the requested outputs, in the right shape and dtype, replacing
//! an existing file by rename.

use convkit::npy::{write_npy_to, NpyElement};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_convkit");

// ---------------------------------------------------------------------------------------------
// Fixtures.

/// A temporary working directory; the binary runs inside it, so file names are relative.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Work {
        Work { dir: tempfile::tempdir().expect("temp dir") }
    }

    /// The standard small problem: input (1,2,5,5), weight (3,2,3,3), bias (3), grad_output
    /// (1,3,3,3) of a stride-1 unpadded convolution, and a transposed-convolution weight
    /// (2,3,3,3); all f32, all ones except the bias (1, 2, 3).
    fn standard() -> Work {
        let w = Work::new();
        w.ones::<f32>("x.npy", &[1, 2, 5, 5]);
        w.ones::<f32>("w.npy", &[3, 2, 3, 3]);
        w.npy("b.npy", &[3], &[1.0f32, 2.0, 3.0]);
        w.ones::<f32>("gy.npy", &[1, 3, 3, 3]);
        w.ones::<f32>("wt.npy", &[2, 3, 3, 3]);
        w
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn npy<T: NpyElement>(&self, name: &str, shape: &[usize], data: &[T]) {
        let f = std::fs::File::create(self.path(name)).unwrap();
        write_npy_to(f, shape, data).unwrap();
    }

    fn ones<T: NpyElement + From<u8>>(&self, name: &str, shape: &[usize]) {
        let n = shape.iter().product();
        self.npy(name, shape, &vec![T::from(1u8); n]);
    }

    fn bytes(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.path(name), bytes).unwrap();
    }

    /// Every path under the directory (hidden files and subdirectories included).
    fn listing(&self) -> BTreeSet<String> {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                out.insert(p.strip_prefix(root).unwrap().display().to_string());
                if p.is_dir() {
                    walk(root, &p, out);
                }
            }
        }
        let mut out = BTreeSet::new();
        walk(self.dir.path(), self.dir.path(), &mut out);
        out
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .current_dir(self.dir.path())
            .env("RUST_BACKTRACE", "1") // a panic would show up as extra stderr lines
            .stdin(Stdio::null())
            .output()
            .expect("run convkit")
    }

    /// Run a command that must be rejected: exit code 2, one non-empty stderr line containing
    /// every needle, no panic text, nothing on stdout, and the directory exactly as before.
    /// Returns the error line.
    fn fails(&self, args: &[&str], needles: &[&str]) -> String {
        let before = self.listing();
        let out = self.run(args);
        let line = check_rejection(args, &out, needles);
        let after = self.listing();
        let added: Vec<_> = after.difference(&before).collect();
        let removed: Vec<_> = before.difference(&after).collect();
        assert!(
            added.is_empty() && removed.is_empty(),
            "convkit {}: left files behind {added:?} / removed {removed:?} (stderr: {line})",
            args.join(" ")
        );
        line
    }

    /// Run a command that must succeed; returns the files it added.
    fn succeeds(&self, args: &[&str]) -> BTreeSet<String> {
        let before = self.listing();
        let out = self.run(args);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "convkit {}: {:?}\nstderr: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let after = self.listing();
        assert!(before.is_subset(&after), "convkit {} removed files", args.join(" "));
        assert!(
            !after.iter().any(|p| p.contains("tmp-convkit")),
            "convkit {} left a temporary file: {after:?}",
            args.join(" ")
        );
        after.difference(&before).cloned().collect()
    }

    fn load(&self, name: &str) -> Npy {
        Npy::load(&self.path(name))
    }
}

/// Check the exit code and stderr of a rejected command; returns the single stderr line.
fn check_rejection(args: &[&str], out: &Output, needles: &[&str]) -> String {
    let cmd = format!("convkit {}", args.join(" "));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{cmd}: exit status {:?}, stderr:\n{stderr}", out.status);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines.len() == 1 && !lines[0].trim().is_empty(),
        "{cmd}: expected exactly one non-empty stderr line, got {}:\n{stderr}",
        lines.len()
    );
    let line = lines[0].to_string();
    let lower = line.to_lowercase();
    for bad in ["panicked", "backtrace", "thread 'main'"] {
        assert!(!lower.contains(bad), "{cmd}: panic text in stderr: {line}");
    }
    for needle in needles {
        assert!(line.contains(needle), "{cmd}: error line does not mention {needle:?}: {line}");
    }
    assert!(out.stdout.is_empty(), "{cmd}: wrote to stdout: {}", String::from_utf8_lossy(&out.stdout));
    line
}

/// A `.npy` file with a hand-written version-1.0 header.
fn raw_npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let order = if fortran { "True" } else { "False" };
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((h.len() as u16).to_le_bytes());
    b.extend(h.as_bytes());
    b.extend(data);
    b
}

fn f32_bytes(v: &[f32], big_endian: bool) -> Vec<u8> {
    v.iter().flat_map(|x| if big_endian { x.to_be_bytes() } else { x.to_le_bytes() }).collect()
}

/// A minimal independent `.npy` reader for checking outputs.
#[derive(Debug)]
struct Npy {
    descr: String,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl Npy {
    fn load(path: &Path) -> Npy {
        let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(b.len() >= 10 && &b[..6] == b"\x93NUMPY", "{}: not an .npy file", path.display());
        let (hlen, start) = match b[6] {
            1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
            _ => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        };
        let header = String::from_utf8_lossy(&b[start..start + hlen]).into_owned();
        let after = |key: &str| {
            let at = header.find(&format!("'{key}'")).unwrap_or_else(|| panic!("no {key}: {header}"));
            header[at + key.len() + 2..].trim_start_matches([':', ' ']).to_string()
        };
        let descr = after("descr").split('\'').nth(1).unwrap().to_string();
        assert!(after("fortran_order").starts_with("False"), "{header}");
        let s = after("shape");
        let shape = s[1..s.find(')').unwrap()]
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| t.parse().unwrap())
            .collect::<Vec<usize>>();
        let npy = Npy { descr, shape, data: b[start + hlen..].to_vec() };
        let item = if npy.descr == "<f4" { 4 } else { 8 };
        assert_eq!(npy.data.len(), npy.shape.iter().product::<usize>() * item, "{}", path.display());
        npy
    }

    fn f32s(&self) -> Vec<f32> {
        assert_eq!(self.descr, "<f4");
        self.data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
    }

    fn f64s(&self) -> Vec<f64> {
        assert_eq!(self.descr, "<f8");
        self.data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()
    }

    fn i64s(&self) -> Vec<i64> {
        assert_eq!(self.descr, "<i8");
        self.data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

const U64_MAX: &str = "18446744073709551615";

// ---------------------------------------------------------------------------------------------
// Bad input files.

#[test]
fn missing_input_file() {
    let w = Work::standard();
    w.fails(&["conv", "nope.npy", "w.npy", "-o", "out.npy"], &["input", "nope.npy"]);
    w.fails(&["conv", "x.npy", "nope.npy", "-o", "out.npy"], &["weight", "nope.npy"]);
    w.fails(&["conv", "x.npy", "w.npy", "--bias", "nope.npy", "-o", "out.npy"], &["bias", "nope.npy"]);
    w.fails(&["pool", "max", "nope.npy", "--kernel", "2", "-o", "out.npy"], &["input", "nope.npy"]);
    w.fails(
        &["conv-backward", "x.npy", "w.npy", "nope.npy", "--grad-input", "gx.npy"],
        &["grad_output", "nope.npy"],
    );
}

#[test]
fn malformed_file_is_not_npy() {
    let w = Work::standard();
    w.bytes("bad.npy", b"hello world, this is not an array\n");
    w.bytes("empty.npy", b"");
    w.fails(&["conv", "bad.npy", "w.npy", "-o", "out.npy"], &["input", "bad.npy"]);
    w.fails(&["conv", "x.npy", "empty.npy", "-o", "out.npy"], &["weight", "empty.npy"]);
    // A directory where a file is expected.
    std::fs::create_dir(w.path("adir.npy")).unwrap();
    w.fails(&["pool", "avg", "adir.npy", "--kernel", "2", "-o", "out.npy"], &["input", "adir.npy"]);
}

#[test]
fn truncated_npy() {
    let w = Work::standard();
    let full = std::fs::read(w.path("x.npy")).unwrap();
    w.bytes("short_data.npy", &full[..full.len() - 4]);
    w.bytes("short_header.npy", &full[..40]);
    w.fails(&["conv", "short_data.npy", "w.npy", "-o", "out.npy"], &["input", "short_data.npy"]);
    w.fails(&["conv", "short_header.npy", "w.npy", "-o", "out.npy"], &["input", "short_header.npy"]);
    w.fails(&["conv", "x.npy", "short_data.npy", "-o", "out.npy"], &["weight", "short_data.npy"]);
}

#[test]
fn wrong_dtype() {
    let w = Work::standard();
    w.npy("ints.npy", &[1, 2, 5, 5], &[1i64; 50]);
    w.bytes("big_endian.npy", &raw_npy(">f4", false, "(1, 2, 5, 5)", &f32_bytes(&[1.0; 50], true)));
    w.bytes("half.npy", &raw_npy("<f2", false, "(1, 2, 5, 5)", &[0u8; 100]));
    w.fails(&["conv", "ints.npy", "w.npy", "-o", "out.npy"], &["input", "ints.npy", "<i8"]);
    w.fails(&["conv", "big_endian.npy", "w.npy", "-o", "out.npy"], &["input", "big_endian.npy", ">f4"]);
    w.fails(&["conv", "half.npy", "w.npy", "-o", "out.npy"], &["input", "half.npy", "<f2"]);
    w.fails(&["conv", "x.npy", "ints.npy", "-o", "out.npy"], &["weight", "ints.npy"]);
    w.fails(&["pool", "max", "big_endian.npy", "--kernel", "2", "-o", "out.npy"], &["input", ">f4"]);
}

#[test]
fn fortran_order() {
    let w = Work::standard();
    w.bytes("fortran.npy", &raw_npy("<f4", true, "(1, 2, 5, 5)", &f32_bytes(&[1.0; 50], false)));
    let line = w.fails(&["conv", "fortran.npy", "w.npy", "-o", "out.npy"], &["input", "fortran.npy"]);
    assert!(line.to_lowercase().contains("fortran"), "{line}");
}

#[test]
fn huge_declared_shape_is_an_error_not_a_crash() {
    let w = Work::standard();
    // 10^15 elements declared, 16 bytes present.
    w.bytes("huge.npy", &raw_npy("<f4", false, "(100000, 100000, 100000)", &[0u8; 16]));
    w.fails(&["conv", "huge.npy", "w.npy", "-o", "out.npy"], &["input", "huge.npy"]);
    w.fails(&["pool", "max", "huge.npy", "--kernel", "2", "-o", "out.npy"], &["input", "huge.npy"]);
}

#[test]
fn npy_shape_overflowing_64_bits_is_an_error_not_a_panic() {
    let w = Work::standard();
    // The element count overflows 64 bits (2^96).
    w.bytes("overflow.npy", &raw_npy("<f8", false, "(4294967296, 4294967296, 4294967296)", &[0u8; 16]));
    w.fails(&["conv", "overflow.npy", "w.npy", "-o", "out.npy"], &["input"]);
    w.fails(&["pool", "max", "overflow.npy", "--kernel", "2", "-o", "out.npy"], &["input"]);
}

// ---------------------------------------------------------------------------------------------
// Shapes that do not fit together.

#[test]
fn rank_mismatch_between_input_and_weight() {
    let w = Work::standard();
    w.ones::<f32>("w1d.npy", &[3, 2, 3]);
    w.fails(&["conv", "x.npy", "w1d.npy", "-o", "out.npy"], &["weight", "[3, 2, 3]"]);
    w.fails(&["conv-transpose", "x.npy", "w1d.npy", "-o", "out.npy"], &["weight", "[3, 2, 3]"]);
    // An input without a spatial axis.
    w.ones::<f32>("x2d.npy", &[1, 2]);
    w.fails(&["conv", "x2d.npy", "w.npy", "-o", "out.npy"], &["input", "[1, 2]"]);
    w.fails(&["pool", "max", "x2d.npy", "--kernel", "2", "-o", "out.npy"], &["input", "[1, 2]"]);
}

#[test]
fn channel_mismatch() {
    let w = Work::standard();
    w.ones::<f32>("w4.npy", &[3, 4, 3, 3]);
    w.fails(&["conv", "x.npy", "w4.npy", "-o", "out.npy"], &["weight", "[3, 4, 3, 3]"]);
    // Transposed convolution: weight dim 0 must be the input channels.
    w.fails(&["conv-transpose", "x.npy", "w.npy", "-o", "out.npy"], &["weight", "[3, 2, 3, 3]"]);
    // Channels-last reads the channels from the last axis (5 here).
    w.fails(&["conv", "x.npy", "w.npy", "--layout", "nhwc", "-o", "out.npy"], &["weight"]);
}

#[test]
fn groups_not_dividing_channels() {
    let w = Work::standard();
    // 2 input channels, 3 output channels.
    w.fails(&["conv", "x.npy", "w.npy", "--groups", "2", "-o", "out.npy"], &["groups", "2"]);
    w.fails(&["conv", "x.npy", "w.npy", "--groups", "3", "-o", "out.npy"], &["groups", "3"]);
    w.fails(
        &["conv-backward", "x.npy", "w.npy", "gy.npy", "--groups", "2", "--grad-input", "gx.npy"],
        &["groups", "2"],
    );
}

#[test]
fn groups_zero_or_not_a_number() {
    let w = Work::standard();
    w.fails(&["conv", "x.npy", "w.npy", "--groups", "0", "-o", "out.npy"], &["groups", "0"]);
    w.fails(&["conv", "x.npy", "w.npy", "--groups", "two", "-o", "out.npy"], &["groups", "two"]);
    w.fails(&["conv-transpose", "x.npy", "wt.npy", "--groups", "0", "-o", "out.npy"], &["groups", "0"]);
}

#[test]
fn bias_of_wrong_length_or_rank() {
    let w = Work::standard();
    w.ones::<f32>("b2.npy", &[2]);
    w.ones::<f32>("b31.npy", &[3, 1]);
    w.fails(&["conv", "x.npy", "w.npy", "--bias", "b2.npy", "-o", "out.npy"], &["bias", "[2]"]);
    w.fails(&["conv", "x.npy", "w.npy", "--bias", "b31.npy", "-o", "out.npy"], &["bias", "[3, 1]"]);
    w.fails(&["conv-transpose", "x.npy", "wt.npy", "--bias", "b2.npy", "-o", "out.npy"], &["bias", "[2]"]);
    // conv-backward takes no bias: its gradient is --grad-bias.
    w.fails(
        &["conv-backward", "x.npy", "w.npy", "gy.npy", "--bias", "b.npy", "--grad-bias", "gb.npy"],
        &["bias"],
    );
}

// ---------------------------------------------------------------------------------------------
// Bad option values.

#[test]
fn zero_stride_and_zero_dilation() {
    let w = Work::standard();
    w.fails(&["conv", "x.npy", "w.npy", "--stride", "0", "-o", "out.npy"], &["stride", "0"]);
    w.fails(&["conv", "x.npy", "w.npy", "--stride", "1,0", "-o", "out.npy"], &["stride", "1,0"]);
    w.fails(&["conv", "x.npy", "w.npy", "--dilation", "0", "-o", "out.npy"], &["dilation", "0"]);
    w.fails(&["conv-transpose", "x.npy", "wt.npy", "--stride", "0", "-o", "out.npy"], &["stride", "0"]);
    w.fails(&["pool", "max", "x.npy", "--kernel", "2", "--stride", "0", "-o", "out.npy"], &["stride", "0"]);
    w.fails(
        &["pool", "max", "x.npy", "--kernel", "2", "--dilation", "0", "-o", "out.npy"],
        &["dilation", "0"],
    );
    w.fails(&["pool", "max", "x.npy", "--kernel", "0", "-o", "out.npy"], &["kernel", "0"]);
}

#[test]
fn bad_stride_syntax() {
    let w = Work::standard();
    for bad in ["a", "1,a", "", "1.5", "1,,1", "1,2,3", U64_MAX.repeat(2).as_str()] {
        w.fails(&["conv", "x.npy", "w.npy", "--stride", bad, "-o", "out.npy"], &["stride", bad]);
    }
    // A negative value attached with `=` reaches the parser.
    w.fails(&["conv", "x.npy", "w.npy", "--stride=-1", "-o", "out.npy"], &["stride", "-1"]);
    w.fails(&["pool", "avg", "x.npy", "--kernel", "2,2,2", "-o", "out.npy"], &["kernel", "2,2,2"]);
    w.fails(&["conv", "x.npy", "w.npy", "--dilation", "1,2,3", "-o", "out.npy"], &["dilation", "1,2,3"]);
}

#[test]
fn negative_stride_as_separate_word_names_stride() {
    let w = Work::standard();
    w.fails(&["conv", "x.npy", "w.npy", "--stride", "-1", "-o", "out.npy"], &["stride", "-1"]);
}

#[test]
fn bad_padding_syntax() {
    let w = Work::standard();
    for bad in ["1,2,3", "1,2,3,4,5", "sane", "-", "1;1"] {
        w.fails(&["conv", "x.npy", "w.npy", "--padding", bad, "-o", "out.npy"], &["padding", bad]);
    }
    w.fails(&["conv", "x.npy", "w.npy", "--padding=-1", "-o", "out.npy"], &["padding", "-1"]);
}

#[test]
fn padding_that_leaves_no_output() {
    let w = Work::standard();
    // Dilation 3 makes the effective kernel 3*(3-1)+1 = 7, more than the input's 5.
    // With dilation > 1 the message blames the dilation (and still says why).
    w.fails(&["conv", "x.npy", "w.npy", "--dilation", "3", "-o", "out.npy"], &["dilation 3", "no output"]);
    w.fails(
        &["conv", "x.npy", "w.npy", "--padding", "valid", "--dilation", "3", "-o", "out.npy"],
        &["dilation", "no output"],
    );
    w.fails(&["pool", "max", "x.npy", "--kernel", "9", "-o", "out.npy"], &["kernel", "9"]);
    // Transposed convolution: the padding crops away the whole output (7 wide).
    w.fails(&["conv-transpose", "x.npy", "wt.npy", "--padding", "9", "-o", "out.npy"], &["padding", "9"]);
}

#[test]
fn reflect_padding_not_smaller_than_input() {
    let w = Work::standard();
    for pad in ["5", "4,5", "5,0,0,0"] {
        let line = w.fails(
            &["conv", "x.npy", "w.npy", "--padding", pad, "--padding-mode", "reflect", "-o", "out.npy"],
            &["padding"],
        );
        assert!(line.contains("reflect"), "{line}");
    }
    // Circular padding may not exceed the input either.
    w.fails(
        &["conv", "x.npy", "w.npy", "--padding", "6", "--padding-mode", "circular", "-o", "out.npy"],
        &["padding", "circular"],
    );
}

#[test]
fn output_padding_too_large_for_conv_transpose() {
    let w = Work::standard();
    w.fails(
        &["conv-transpose", "x.npy", "wt.npy", "--stride", "2", "--output-padding", "2", "-o", "out.npy"],
        &["output-padding", "2"],
    );
    w.fails(
        &["conv-transpose", "x.npy", "wt.npy", "--output-padding", "1", "-o", "out.npy"],
        &["output-padding", "1"],
    );
    w.fails(
        &["conv-transpose", "x.npy", "wt.npy", "--stride", "2", "--output-padding", "1,2", "-o", "out.npy"],
        &["output-padding", "1,2"],
    );
}

#[test]
fn unknown_padding_mode_and_layout() {
    let w = Work::standard();
    w.fails(
        &["conv", "x.npy", "w.npy", "--padding-mode", "mirror", "-o", "out.npy"],
        &["padding-mode", "mirror"],
    );
    w.fails(
        &["conv", "x.npy", "w.npy", "--padding-mode", "constant:abc", "-o", "out.npy"],
        &["padding-mode", "constant:abc"],
    );
    w.fails(&["conv", "x.npy", "w.npy", "--layout", "chwn", "-o", "out.npy"], &["layout", "chwn"]);
    w.fails(
        &["pool", "max", "x.npy", "--kernel", "2", "--layout", "chwn", "-o", "out.npy"],
        &["layout", "chwn"],
    );
}

#[test]
fn unknown_pool_kind() {
    let w = Work::standard();
    w.fails(&["pool", "median", "x.npy", "-o", "out.npy"], &["kind", "median"]);
}

#[test]
fn windowed_pooling_without_kernel_is_an_error() {
    // PyTorch and ONNX require the window; a default 1x1 window would silently copy the input.
    let w = Work::standard();
    w.fails(&["pool", "max", "x.npy", "-o", "out.npy"], &["kernel", "max"]);
    w.fails(&["pool", "avg", "x.npy", "-o", "out.npy"], &["kernel", "avg"]);
    // Global pooling has no window to give.
    w.succeeds(&["pool", "global-max", "x.npy", "-o", "g.npy"]);
}

#[test]
fn bad_count_include_pad_value() {
    let w = Work::standard();
    w.fails(
        &["pool", "avg", "x.npy", "--kernel", "2", "--count-include-pad", "maybe", "-o", "out.npy"],
        &["count-include-pad", "maybe"],
    );
}

#[test]
fn indices_with_avg_pooling() {
    let w = Work::standard();
    w.fails(
        &["pool", "avg", "x.npy", "--kernel", "2", "--indices", "i.npy", "-o", "out.npy"],
        &["indices", "i.npy"],
    );
    w.fails(&["pool", "global-avg", "x.npy", "--indices", "i.npy", "-o", "out.npy"], &["indices", "i.npy"]);
}

#[test]
fn conv_backward_grad_output_of_wrong_shape() {
    let w = Work::standard();
    w.ones::<f32>("gy_small.npy", &[1, 3, 2, 2]);
    w.fails(
        &[
            "conv-backward",
            "x.npy",
            "w.npy",
            "gy_small.npy",
            "--grad-input",
            "gx.npy",
            "--grad-weight",
            "gw.npy",
        ],
        &["grad_output", "[1, 3, 2, 2]"],
    );
    // Right shape for stride 1, wrong for stride 2.
    w.fails(
        &["conv-backward", "x.npy", "w.npy", "gy.npy", "--stride", "2", "--grad-bias", "gb.npy"],
        &["grad_output", "[1, 3, 3, 3]"],
    );
}

#[test]
fn conv_backward_with_no_output_flag() {
    let w = Work::standard();
    w.fails(
        &["conv-backward", "x.npy", "w.npy", "gy.npy"],
        &["--grad-input", "--grad-weight", "--grad-bias"],
    );
}

#[test]
fn output_too_large_to_allocate() {
    let w = Work::new();
    w.ones::<f32>("x.npy", &[1, 1, 2]);
    w.ones::<f32>("w.npy", &[1, 1, 1]);
    // (2-1)*10^15 + 1 elements.
    w.fails(
        &["conv-transpose", "x.npy", "w.npy", "--stride", "1000000000000000", "-o", "out.npy"],
        &["output", "1000000000000001"],
    );
    // The size itself overflows 64 bits.
    w.fails(&["conv-transpose", "x.npy", "w.npy", "--stride", U64_MAX, "-o", "out.npy"], &["output"]);
    // Pooling over a padding so large the output (stride = kernel = 2) cannot be allocated.
    w.fails(
        &["pool", "avg", "x.npy", "--kernel", "2", "--padding", "1000000000000000", "-o", "out.npy"],
        &["output", "1000000000000001"],
    );
    // A padding or dilation so large the padded size / effective kernel overflows.
    w.fails(&["conv", "x.npy", "w.npy", "--padding", U64_MAX, "-o", "out.npy"], &["padding", U64_MAX]);
    w.ones::<f32>("w3.npy", &[1, 1, 3]);
    w.fails(&["conv", "x.npy", "w3.npy", "--dilation", U64_MAX, "-o", "out.npy"], &["dilation", U64_MAX]);
}

#[test]
fn conv_output_too_large_is_rejected_not_aborted() {
    let w = Work::new();
    w.ones::<f32>("x.npy", &[1, 1, 2]);
    w.ones::<f32>("w.npy", &[1, 1, 1]);
    // Output (1, 1, 2*10^15 + 2): fits the element-count check, cannot be allocated.
    w.fails(&["conv", "x.npy", "w.npy", "--padding", "1000000000000000", "-o", "out.npy"], &["output"]);
    w.fails(
        &[
            "conv-backward",
            "x.npy",
            "w.npy",
            "x.npy",
            "--padding",
            "1000000000000000",
            "--grad-input",
            "gx.npy",
        ],
        &[],
    );
}

#[test]
fn conv_transpose_overflow_does_not_misreport_the_output_shape() {
    let w = Work::standard();
    let line =
        w.fails(&["conv-transpose", "x.npy", "wt.npy", "--stride", U64_MAX, "-o", "out.npy"], &["output"]);
    assert!(!line.contains("[1, 2, 5, 5]"), "the input's shape is reported as the output's: {line}");
}

#[test]
fn extreme_values_never_panic() {
    let w = Work::standard();
    w.ones::<f32>("x1.npy", &[1, 1, 2]);
    w.ones::<f32>("w1.npy", &[1, 1, 1]);
    w.npy("x5.npy", &[1, 1, 5], &[0.0f32, 1.0, 2.0, 3.0, 4.0]);
    let i63m1 = "9223372036854775807";
    let i63 = "9223372036854775808";
    // Rejected: the effective kernel far exceeds any padded input / the output is too large.
    w.fails(
        &["conv", "x.npy", "w.npy", "--padding", "same", "--dilation", i63m1, "-o", "out.npy"],
        &["same"],
    );
    w.fails(
        &["pool", "max", "x.npy", "--kernel", "3", "--padding", "same", "--dilation", i63m1, "-o", "out.npy"],
        &[],
    );
    w.fails(
        &[
            "conv-backward",
            "x.npy",
            "w.npy",
            "gy.npy",
            "--padding",
            "same",
            "--dilation",
            i63m1,
            "--grad-input",
            "gx.npy",
        ],
        &[],
    );
    w.fails(
        &["conv-transpose", "x1.npy", "w1.npy", "--padding", "same", "--stride", i63, "-o", "out.npy"],
        &[],
    );
    // Valid (if absurd) requests: success or a clean rejection, never a panic.
    for pad in [format!("{i63},0"), format!("{i63m1},0")] {
        let args =
            ["pool", "max", "x5.npy", "--kernel", "2", "--padding", &pad, "--stride", i63m1, "-o", "p.npy"];
        let out = w.run(&args);
        if out.status.code() != Some(0) {
            check_rejection(&args, &out, &[]);
        }
        let _ = std::fs::remove_file(w.path("p.npy"));
    }
}

#[test]
fn huge_pool_window_finishes_quickly() {
    let w = Work::standard();
    let mut child = Command::new(BIN)
        .args(["pool", "max", "x.npy", "--kernel", "1000000000000", "--padding", "same", "-o", "out.npy"])
        .current_dir(w.dir.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pool with a 10^12 window over a 5x5 input ran for more than 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// Command-line syntax.

#[test]
fn unknown_flag() {
    let w = Work::standard();
    w.fails(&["conv", "x.npy", "w.npy", "--bogus", "-o", "out.npy"], &["--bogus"]);
    // conv-transpose has no padding mode.
    w.fails(
        &["conv-transpose", "x.npy", "wt.npy", "--padding-mode", "reflect", "-o", "out.npy"],
        &["--padding-mode"],
    );
    w.fails(&["convolve", "x.npy", "w.npy", "-o", "out.npy"], &["convolve"]);
}

#[test]
fn missing_required_argument() {
    let w = Work::standard();
    w.fails(&["conv", "x.npy", "-o", "out.npy"], &["WEIGHT"]);
    w.fails(&["conv", "x.npy", "w.npy"], &["--output"]);
    w.fails(&["conv", "x.npy", "w.npy", "-o"], &["--output"]);
    w.fails(&["pool", "max", "-o", "out.npy"], &["INPUT"]);
    w.fails(&["conv-backward", "x.npy", "w.npy", "--grad-input", "gx.npy"], &["GRAD_OUTPUT"]);
    w.fails(&[], &["conv"]);
}

#[test]
fn unwritable_output_directory() {
    let w = Work::standard();
    w.fails(&["conv", "x.npy", "w.npy", "-o", "no/such/dir/out.npy"], &["output", "no/such/dir/out.npy"]);
    std::fs::create_dir(w.path("adir")).unwrap();
    w.fails(&["conv", "x.npy", "w.npy", "-o", "adir"], &["output", "adir"]);
}

#[test]
fn failed_second_output_leaves_the_first_untouched() {
    let w = Work::standard();
    std::fs::create_dir(w.path("adir")).unwrap();
    w.fails(
        &["conv-backward", "x.npy", "w.npy", "gy.npy", "--grad-input", "gx.npy", "--grad-weight", "adir"],
        &["grad-weight", "adir"],
    );
    w.fails(
        &["pool", "max", "x.npy", "--kernel", "2", "-o", "out.npy", "--indices", "adir"],
        &["indices", "adir"],
    );
    // An existing file must not be replaced by a command that fails.
    w.bytes("keep.npy", b"old contents");
    let _ = w.run(&["pool", "max", "x.npy", "--kernel", "2", "-o", "keep.npy", "--indices", "adir"]);
    assert_eq!(std::fs::read(w.path("keep.npy")).unwrap(), b"old contents");
}

#[test]
fn same_path_for_two_outputs_is_rejected_cleanly() {
    let w = Work::standard();
    w.fails(
        &["pool", "max", "x.npy", "--kernel", "2", "-o", "out.npy", "--indices", "out.npy"],
        &["out.npy"],
    );
    w.fails(
        &["conv-backward", "x.npy", "w.npy", "gy.npy", "--grad-input", "g.npy", "--grad-weight", "g.npy"],
        &["g.npy"],
    );
}

// ---------------------------------------------------------------------------------------------
// Success.

#[test]
fn conv_writes_output_of_right_shape_and_dtype() {
    let w = Work::standard();
    let added = w.succeeds(&["conv", "x.npy", "w.npy", "--bias", "b.npy", "-o", "out.npy"]);
    assert_eq!(added, set(&["out.npy"]));
    let y = w.load("out.npy");
    assert_eq!((y.descr.as_str(), y.shape.as_slice()), ("<f4", &[1, 3, 3, 3][..]));
    // All ones: every output is 2*3*3 = 18 plus the channel's bias.
    let v = y.f32s();
    for (i, &got) in v.iter().enumerate() {
        assert_eq!(got, 18.0 + (i / 9 + 1) as f32, "element {i}");
    }
    // Named padding and channels-last.
    w.succeeds(&["conv", "x.npy", "w.npy", "--padding", "same-lower", "--stride", "2", "-o", "same.npy"]);
    assert_eq!(w.load("same.npy").shape, vec![1, 3, 3, 3]);
    w.ones::<f32>("xl.npy", &[1, 5, 5, 2]);
    w.succeeds(&["conv", "xl.npy", "w.npy", "--layout", "nhwc", "--padding", "full", "-o", "nhwc.npy"]);
    assert_eq!(w.load("nhwc.npy").shape, vec![1, 7, 7, 3]);
    // Transposed convolution.
    w.succeeds(&[
        "conv-transpose",
        "x.npy",
        "wt.npy",
        "--stride",
        "2",
        "--output-padding",
        "1",
        "-o",
        "t.npy",
    ]);
    let t = w.load("t.npy");
    assert_eq!((t.descr.as_str(), t.shape.as_slice()), ("<f4", &[1, 3, 12, 12][..]));
}

#[test]
fn f64_input_gives_f64_output() {
    let w = Work::standard();
    w.ones::<f64>("x64.npy", &[1, 2, 5, 5]);
    w.ones::<f64>("w64.npy", &[3, 2, 3, 3]);
    w.succeeds(&["conv", "x64.npy", "w.npy", "-o", "a.npy"]);
    let a = w.load("a.npy");
    assert_eq!((a.descr.as_str(), a.shape.as_slice()), ("<f8", &[1, 3, 3, 3][..]));
    assert!(a.f64s().iter().all(|&v| v == 18.0));
    // The input's dtype decides; other float inputs are converted to it.
    w.succeeds(&["conv", "x.npy", "w64.npy", "-o", "b.npy"]);
    assert_eq!(w.load("b.npy").descr, "<f4");
    w.succeeds(&["pool", "avg", "x64.npy", "--kernel", "2", "-o", "p.npy"]);
    assert_eq!(w.load("p.npy").descr, "<f8");
    w.ones::<f64>("gy64.npy", &[1, 3, 3, 3]);
    w.succeeds(&["conv-backward", "x64.npy", "w.npy", "gy64.npy", "--grad-weight", "gw.npy"]);
    assert_eq!(w.load("gw.npy").descr, "<f8");
}

#[test]
fn conv_backward_writes_only_the_requested_gradients() {
    let w = Work::standard();
    let added = w.succeeds(&["conv-backward", "x.npy", "w.npy", "gy.npy", "--grad-weight", "gw.npy"]);
    assert_eq!(added, set(&["gw.npy"]));
    let gw = w.load("gw.npy");
    assert_eq!((gw.descr.as_str(), gw.shape.as_slice()), ("<f4", &[3, 2, 3, 3][..]));
    assert!(gw.f32s().iter().all(|&v| v == 9.0), "{:?}", gw.f32s());

    let added = w.succeeds(&[
        "conv-backward",
        "x.npy",
        "w.npy",
        "gy.npy",
        "--grad-input",
        "gx.npy",
        "--grad-bias",
        "gb.npy",
    ]);
    assert_eq!(added, set(&["gb.npy", "gx.npy"]));
    let gx = w.load("gx.npy");
    assert_eq!(gx.shape, vec![1, 2, 5, 5]);
    // The centre of the input is covered by all 9 window positions of all 3 filters.
    assert_eq!(gx.f32s()[12], 27.0);
    let gb = w.load("gb.npy");
    assert_eq!((gb.descr.as_str(), gb.shape.as_slice()), ("<f4", &[3][..]));
    assert_eq!(gb.f32s(), vec![9.0; 3]);
}

#[test]
fn pool_indices_are_int64() {
    let w = Work::new();
    let data: Vec<f32> = (0..16).map(|v| v as f32).collect();
    w.npy("x.npy", &[1, 1, 4, 4], &data);
    let added = w.succeeds(&["pool", "max", "x.npy", "--kernel", "2", "-o", "y.npy", "--indices", "i.npy"]);
    assert_eq!(added, set(&["i.npy", "y.npy"]));
    let (y, i) = (w.load("y.npy"), w.load("i.npy"));
    assert_eq!((y.descr.as_str(), y.shape.as_slice()), ("<f4", &[1, 1, 2, 2][..]));
    assert_eq!((i.descr.as_str(), i.shape.as_slice()), ("<i8", &[1, 1, 2, 2][..]));
    assert_eq!(y.f32s(), vec![5.0, 7.0, 13.0, 15.0]);
    assert_eq!(i.i64s(), vec![5, 7, 13, 15]);
    // f64 data: the values follow the input, the indices stay int64.
    let data: Vec<f64> = (0..16).map(|v| v as f64).collect();
    w.npy("x64.npy", &[1, 1, 4, 4], &data);
    w.succeeds(&["pool", "global-max", "x64.npy", "-o", "g.npy", "--indices", "gi.npy"]);
    assert_eq!(w.load("g.npy").f64s(), vec![15.0]);
    assert_eq!(w.load("gi.npy").i64s(), vec![15]);
}

#[test]
fn help_exits_zero_and_describes_the_padding_grammar() {
    let w = Work::new();
    for args in [
        &["--help"][..],
        &["conv", "--help"],
        &["conv-transpose", "--help"],
        &["conv-backward", "--help"],
        &["pool", "--help"],
    ] {
        let out = w.run(args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "convkit {}: {:?}", args.join(" "), out.status);
        assert!(
            out.stderr.is_empty(),
            "convkit {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        for needle in
            ["same-lower", "valid | same | same-lower | full", "all begins, then all", "Exit status"]
        {
            assert!(text.contains(needle), "convkit {} does not mention {needle:?}:\n{text}", args.join(" "));
        }
    }
    let out = w.run(&["--version"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("convkit "));
    assert!(w.listing().is_empty());
}

#[test]
fn existing_output_is_replaced_on_success() {
    let w = Work::standard();
    w.bytes("out.npy", b"stale contents that are not an array");
    let before = std::fs::metadata(w.path("out.npy")).unwrap();
    let added = w.succeeds(&["conv", "x.npy", "w.npy", "-o", "out.npy"]);
    assert!(added.is_empty(), "{added:?}");
    assert_eq!(w.load("out.npy").shape, vec![1, 3, 3, 3]);
    // Replaced by rename (a new file), not rewritten in place.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let after = std::fs::metadata(w.path("out.npy")).unwrap();
        assert_ne!(before.ino(), after.ino(), "out.npy was rewritten in place, not renamed over");
    }
    let _ = before;
}

#[test]
fn existing_output_is_left_untouched_on_failure() {
    let w = Work::standard();
    w.ones::<f32>("w4.npy", &[3, 4, 3, 3]);
    w.bytes("out.npy", b"precious");
    w.bytes("gw.npy", b"precious too");
    let stamp = |n: &str| std::fs::metadata(w.path(n)).unwrap().modified().unwrap();
    let (t_out, t_gw) = (stamp("out.npy"), stamp("gw.npy"));
    w.fails(&["conv", "x.npy", "w.npy", "--stride", "0", "-o", "out.npy"], &["stride"]);
    w.fails(&["conv", "x.npy", "w4.npy", "-o", "out.npy"], &["weight"]);
    w.fails(&["conv", "nope.npy", "w.npy", "-o", "out.npy"], &["input"]);
    w.fails(&["pool", "avg", "x.npy", "--kernel", "9", "-o", "out.npy"], &["kernel"]);
    w.fails(&["conv-backward", "x.npy", "w.npy", "x.npy", "--grad-weight", "gw.npy"], &["grad_output"]);
    assert_eq!(std::fs::read(w.path("out.npy")).unwrap(), b"precious");
    assert_eq!(std::fs::read(w.path("gw.npy")).unwrap(), b"precious too");
    assert_eq!((stamp("out.npy"), stamp("gw.npy")), (t_out, t_gw));
}

/// A 3×3 layer with 32 channels runs through Winograd by default (`CONVKIT_VERBOSE=1` says so)
/// and through an exact implementation with `CONVKIT_EXACT=1`, whose integer-valued result
/// then equals the reference exactly; the default result stays within Winograd's bound.
#[test]
fn convkit_exact_rules_out_winograd() {
    let w = Work::new();
    let xs: Vec<f32> = (0..32 * 12 * 12).map(|i| ((i * 7) % 5) as f32 - 2.0).collect();
    let ws: Vec<f32> = (0..32 * 32 * 9).map(|i| ((i * 3) % 7) as f32 - 3.0).collect();
    w.npy("x.npy", &[1, 32, 12, 12], &xs);
    w.npy("w.npy", &[32, 32, 3, 3], &ws);
    let run = |exact: bool, out: &str| {
        let mut cmd = Command::new(BIN);
        cmd.args(["conv", "x.npy", "w.npy", "-o", out, "--padding", "same"])
            .current_dir(w.dir.path())
            .env("CONVKIT_VERBOSE", "1");
        if exact {
            cmd.env("CONVKIT_EXACT", "1");
        }
        let o = cmd.output().expect("run convkit");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    assert!(run(false, "fast.npy").contains("-> winograd:"));
    let exact = run(true, "exact.npy");
    assert!(!exact.contains("-> winograd:") && exact.contains("exact results asked for"), "{exact}");
    let p = convkit::ConvProblem::new(
        &convkit::ConvDesc::new().padding(convkit::Padding::Same),
        &[1, 32, 12, 12],
        &[32, 32, 3, 3],
    )
    .unwrap();
    let mut want = vec![0f32; 32 * 144];
    convkit::reference::conv_forward(&p, &xs, &ws, None, &mut want);
    let (fast, exact) = (w.load("fast.npy"), w.load("exact.npy"));
    assert_eq!(exact.f32s(), want);
    let worst = fast.f32s().iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    // Within the tested bound, 2e-5 of Σ|w·x| ≤ 32 channels · 9 taps · 3 · 2.
    assert!(worst <= 2e-5 * 32.0 * 9.0 * 6.0, "winograd error {worst}");
}
