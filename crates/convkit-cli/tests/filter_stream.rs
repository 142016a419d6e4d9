//! `convkit filter` on grey and RGB images without alpha reads rows straight from the decoded
//! samples and maps each tile to output levels as it comes: the files must hold exactly what
//! the whole-image computation (planes, `FilterPlan::run`, `RangeMap::apply`, `quantize`) gives.

use convkit::filter::{quantize, Filter, FilterOptions, FilterPlan, Interleaved, Planar, RangeMap};
use convkit::{PadMode, Padding};
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_convkit");

fn pixels(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 56) as u8
        })
        .collect()
}

/// What the whole-image path writes: 8-bit levels, interleaved.
fn expected(px: &[u8], c: usize, h: usize, w: usize, kernels: &[&str], opts: &FilterOptions) -> Vec<u8> {
    let filters: Vec<Filter> = kernels.iter().map(|k| Filter::parse(k).unwrap()).collect();
    let img = Planar::<f32>::from_interleaved(px, c, h, w).unwrap();
    let plan = FilterPlan::new(&filters, opts, c, h, w).unwrap();
    let mut out = plan.run(&img, &mut |_, _| {}).unwrap();
    RangeMap::default_for(&filters).apply(&mut out.data, 255.0);
    out.to_interleaved(|v| quantize(v, 255.0) as u8)
}

fn write_pnm(path: &Path, px: &[u8], c: usize, h: usize, w: usize) {
    let mut bytes = format!("{}\n{w} {h}\n255\n", if c == 1 { "P5" } else { "P6" }).into_bytes();
    bytes.extend_from_slice(px);
    std::fs::write(path, bytes).unwrap();
}

/// The samples of a binary PNM: PAM (`P7`, through `ENDHDR`) for `.pam`, otherwise PGM/PPM
/// (`P5`/`P6` by the channels: magic, width and height, maxval, each on its own line).
fn pnm_body(path: &Path, channels: usize) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    if path.extension().is_some_and(|e| e == "pam") {
        assert!(bytes.starts_with(b"P7\n"), "a PAM header");
        let at = bytes.windows(7).position(|w| w == b"ENDHDR\n").expect("a PAM header") + 7;
        return bytes[at..].to_vec();
    }
    let magic: &[u8] = if channels == 1 { b"P5\n" } else { b"P6\n" };
    assert!(
        bytes.starts_with(magic),
        "{}: a binary {} header",
        path.display(),
        if channels == 1 { "PGM" } else { "PPM" }
    );
    let at = bytes.iter().enumerate().filter(|(_, &b)| b == b'\n').nth(2).expect("a three-line header").0 + 1;
    bytes[at..].to_vec()
}

#[test]
fn direct_outputs_match_the_whole_image_computation() {
    let dir = tempfile::tempdir().unwrap();
    let stacks: &[&[&str]] = &[
        &["identity"],
        &["gaussian:1:5"],
        &["box:4"],
        &["sobel"],
        &["laplacian"],
        &["1,2,0;-3,1,1"],
        &["gaussian:1:5", "sobel-x"],
    ];
    let borders = ["reflect", "symmetric", "replicate", "circular", "zeros", "constant:9"];
    for (c, h, w) in [(3, 13, 7), (1, 9, 17), (3, 3, 6)] {
        let px = pixels(c * h * w, (c * h * w) as u64);
        let input = dir.path().join(if c == 1 { "in.pgm" } else { "in.ppm" });
        write_pnm(&input, &px, c, h, w);
        for kernels in stacks {
            for border in borders {
                for stride in ["1", "2", "2,3"] {
                    let opts = FilterOptions::default()
                        .border(border.parse::<PadMode>().unwrap())
                        .padding(Padding::Same)
                        .stride(stride.split(',').map(|s| s.parse().unwrap()).collect::<Vec<usize>>());
                    let want = expected(&px, c, h, w, kernels, &opts);
                    let pnm = if c == 1 { "out.pgm" } else { "out.ppm" };
                    for out_name in ["out.pam", pnm, "out.png"] {
                        let out = dir.path().join(out_name);
                        let mut args = vec!["filter".to_string(), input.display().to_string()];
                        for k in *kernels {
                            args.extend(["-k".to_string(), k.to_string()]);
                        }
                        args.extend(["--border", border, "--stride", stride, "-o"].map(String::from));
                        args.push(out.display().to_string());
                        let res = Command::new(BIN).args(&args).output().unwrap();
                        assert!(res.status.success(), "{args:?}: {}", String::from_utf8_lossy(&res.stderr));
                        let got = if out_name.ends_with(".png") {
                            image::open(&out).unwrap().into_bytes()
                        } else {
                            pnm_body(&out, c)
                        };
                        assert_eq!(got, want, "{args:?}");
                    }
                }
            }
        }
    }
}

#[test]
fn run_into_hands_over_what_run_returns() {
    let (c, h, w) = (3, 23, 11);
    let px = pixels(c * h * w, 7);
    let img = Planar::<f32>::from_interleaved(&px, c, h, w).unwrap();
    for kernels in [&["gaussian:3"][..], &["sobel"], &["box:3", "laplacian"]] {
        let filters: Vec<Filter> = kernels.iter().map(|k| Filter::parse(k).unwrap()).collect();
        let opts = FilterOptions::default().tile_rows(4);
        let plan = FilterPlan::new(&filters, &opts, c, h, w).unwrap();
        let whole = plan.run(&img, &mut |_, _| {}).unwrap();
        let (oc, oh, ow) = plan.output_size();
        let mut got = Planar::<f32>::zeros(oc, oh, ow).unwrap();
        let mut next = 0;
        let src = Interleaved::new(&px, c, h, w).unwrap();
        plan.run_into(
            &src,
            &mut |r0, rows, tile| {
                assert_eq!(r0, next);
                next += rows;
                for ch in 0..oc {
                    got.data[(ch * oh + r0) * ow..][..rows * ow]
                        .copy_from_slice(&tile[ch * rows * ow..][..rows * ow]);
                }
                Ok(())
            },
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(next, oh);
        assert_eq!(got, whole, "{kernels:?}");
    }
}

#[test]
fn bad_output_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ppm");
    write_pnm(&input, &pixels(3 * 4 * 5, 1), 3, 4, 5);
    let out = dir.path().join("out.pgm");
    let res = Command::new(BIN)
        .args(["filter", input.to_str().unwrap(), "-k", "gaussian:3", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&res.stderr).lines().count(), 1);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
