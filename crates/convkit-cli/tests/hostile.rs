//! Hostile sizes: inputs whose headers or options ask for more memory than the machine has are
//! refused with exit code 2 and one line, and the refusal itself stays small. Each case's peak
//! resident memory is read from the kernel (`wait4`'s `ru_maxrss` for that child alone) and must
//! stay under 100 MB.

use flate2::write::ZlibEncoder;
use flate2::Compression;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_convkit");
/// The most a refusal may take, in KiB (about 100 MB).
const PEAK_LIMIT_KB: i64 = 100_000;

/// Exit code, stderr and peak resident memory (KiB) of `convkit args` run in `dir`. The child
/// is reaped by `wait4` (which reports its own peak memory), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run_measured(dir: &Path, args: &[&str]) -> (i32, String, i64) {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn convkit");
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our own unreaped child; status and usage point to live locals.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -libc::WTERMSIG(status) };
    (code, stderr, usage.ru_maxrss)
}

/// Run a case that must be refused: exit 2, one line naming `needles`, no output file, and a
/// peak under [`PEAK_LIMIT_KB`]. Returns the peak.
fn refused(dir: &Path, args: &[&str], needles: &[&str]) -> i64 {
    let before: Vec<_> = listing(dir);
    let (code, stderr, peak) = run_measured(dir, args);
    let line = stderr.trim_end();
    assert_eq!(code, 2, "convkit {}: exit {code}, stderr: {stderr}", args.join(" "));
    assert_eq!(line.lines().count(), 1, "convkit {}: not one line: {stderr}", args.join(" "));
    for n in needles {
        assert!(line.contains(n), "convkit {}: {line:?} does not name {n:?}", args.join(" "));
    }
    assert_eq!(listing(dir), before, "convkit {} left files behind", args.join(" "));
    assert!(
        peak < PEAK_LIMIT_KB,
        "convkit {}: refusing took {peak} KiB of resident memory (limit {PEAK_LIMIT_KB})",
        args.join(" ")
    );
    eprintln!("refused in {peak} KiB: convkit {}", args.join(" "));
    peak
}

fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

/// A version-1 `.npy` header for `descr` and `shape` (a Python tuple), then `data`.
fn raw_npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    v.extend_from_slice(dict.as_bytes());
    v.extend_from_slice(data);
    v
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

/// An 8-bit greyscale PNG of `w`×`h` black pixels whose image data is `rows` rows of zeros
/// (all of them: a decompression bomb; fewer: a file whose header lies).
fn grey_png(w: u32, h: u32, rows: u32) -> Vec<u8> {
    let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
    let row = vec![0u8; w as usize + 1]; // filter byte 0, then the samples
    for _ in 0..rows {
        z.write_all(&row).unwrap();
    }
    let idat = z.finish().unwrap();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png_chunk(&mut png, b"IHDR", &ihdr);
    png_chunk(&mut png, b"IDAT", &idat);
    png_chunk(&mut png, b"IEND", &[]);
    png
}

fn f32_npy(shape: &[usize]) -> Vec<u8> {
    let n: usize = shape.iter().product();
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = if shape.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    raw_npy("<f4", &tuple, &vec![0u8; 4 * n])
}

#[test]
fn hostile_sizes_are_refused_without_allocating() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("x.npy"), f32_npy(&[1, 1, 4, 4])).unwrap();
    std::fs::write(d.join("w.npy"), f32_npy(&[1, 1, 3, 3])).unwrap();

    // .npy headers: 2^40 elements claimed (16 bytes present), and a shape whose product
    // overflows 64 bits.
    std::fs::write(d.join("huge.npy"), raw_npy("<f4", "(1048576, 1048576)", &[0; 16])).unwrap();
    std::fs::write(d.join("ovf.npy"), raw_npy("<f8", "(4294967296, 4294967296, 4294967296)", &[0; 16]))
        .unwrap();
    refused(d, &["conv", "huge.npy", "w.npy", "-o", "o.npy"], &["input", "huge.npy"]);
    refused(d, &["conv", "x.npy", "huge.npy", "-o", "o.npy"], &["weight", "huge.npy"]);
    refused(d, &["conv", "ovf.npy", "w.npy", "-o", "o.npy"], &["input", "ovf.npy"]);
    refused(d, &["pool", "max", "huge.npy", "--kernel", "2", "-o", "o.npy"], &["input", "huge.npy"]);
    refused(d, &["filter", "huge.npy", "-k", "box:3", "-o", "o.png"], &["input", "huge.npy"]);

    // Outputs that cannot be allocated (the padding of 10^6 used to allocate 318 MB first).
    refused(d, &["conv", "x.npy", "w.npy", "--padding", "1000000", "-o", "o.npy"], &["output", "allocated"]);
    refused(
        d,
        &["conv-transpose", "x.npy", "w.npy", "--stride", "1000000", "-o", "o.npy"],
        &["output", "allocated"],
    );
    refused(
        d,
        &["pool", "avg", "x.npy", "--kernel", "2", "--stride", "1", "--padding", "1000000", "-o", "o.npy"],
        &["output"],
    );

    // Image headers over the budget: a 10^6 x 10^6 PNG (one row of data follows the header),
    // and a true decompression bomb (20000 x 20000 zeros, 400 MB decoded, ~390 KB on disk)
    // under a 256 MiB budget.
    std::fs::write(d.join("liar.png"), grey_png(1_000_000, 1_000_000, 1)).unwrap();
    refused(d, &["filter", "liar.png", "-k", "box:3", "-o", "o.png"], &["input", "liar.png", "budget"]);
    let bomb = grey_png(20_000, 20_000, 20_000);
    assert!(bomb.len() < 1 << 20, "the bomb is {} bytes", bomb.len());
    std::fs::write(d.join("bomb.png"), bomb).unwrap();
    for out in ["o.png", "o.npy"] {
        refused(
            d,
            &["filter", "bomb.png", "-k", "gaussian:2", "-o", out, "--max-memory", "256M"],
            &["input", "bomb.png", "20000x20000", "256.0 MiB"],
        );
    }
    // A .npy image over the budget (1.4 MB of data, a 1 MiB budget).
    std::fs::write(d.join("img.npy"), f32_npy(&[600, 600])).unwrap();
    refused(
        d,
        &["filter", "img.npy", "-k", "box:3", "-o", "o.npy", "--max-memory", "1M"],
        &["img.npy", "budget"],
    );
    // Within the budget, the same files filter.
    let (code, stderr, _) =
        run_measured(d, &["filter", "img.npy", "-k", "box:3", "-o", "o.npy", "--max-memory", "128M"]);
    assert_eq!(code, 0, "{stderr}");
    std::fs::remove_file(d.join("o.npy")).unwrap();
}

#[test]
fn max_memory_values() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("img.npy"), f32_npy(&[8, 8])).unwrap();
    for bad in ["", "0", "-1", "12Q", "1e9", "NaN", "inf", "G", "1.5.2M", "99999999999T"] {
        refused(
            d,
            &["filter", "img.npy", "-k", "box:3", "-o", "o.npy", "--max-memory", bad],
            &["max-memory"],
        );
    }
    for good in ["100000000", "512M", "1.5G", "2GiB", "64MB", "1T"] {
        let (code, stderr, _) =
            run_measured(d, &["filter", "img.npy", "-k", "box:3", "-o", "o.npy", "--max-memory", good]);
        assert_eq!(code, 0, "--max-memory {good}: {stderr}");
    }
}
