//! `convkit filter` and `convkit demo` through the binary: raw `.npy` results against OpenCV's
//! `filter2D`, pixels of written images, alpha and bit depth, every output format, the demo's
//! files and shape table, and bad inputs (exit 2, one line on stderr, nothing written).

use convkit::npy::{read_npy, write_npy_to, NpyArray};
use image::{DynamicImage, GenericImageView, ImageBuffer, Luma, LumaA, Rgb, Rgba};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_convkit");

/// The 5×6 synthetic image of the library's filter tests.
const X: [[f64; 6]; 5] = [
    [1.0, 2.0, 0.0, 4.0, 3.0, 5.0],
    [0.0, 6.0, 2.0, 1.0, 7.0, 2.0],
    [3.0, 1.0, 8.0, 2.0, 0.0, 4.0],
    [5.0, 0.0, 2.0, 9.0, 1.0, 3.0],
    [2.0, 4.0, 1.0, 0.0, 6.0, 8.0],
];

/// `cv2.filter2D(X, cv2.CV_64F, sobel_x, borderType=cv2.BORDER_REFLECT_101)`.
const SOBEL_X: [f64; 30] = [
    0.0, 2.0, -6.0, 16.0, 4.0, 0.0, //
    0.0, 8.0, -7.0, 5.0, 5.0, 0.0, //
    0.0, 9.0, 6.0, -12.0, -1.0, 0.0, //
    0.0, -2.0, 15.0, -5.0, -2.0, 0.0, //
    0.0, -8.0, 10.0, 8.0, 4.0, 0.0,
];

/// `cv2.filter2D(X, cv2.CV_64F, np.ones((3, 3)) / 9, borderType=cv2.BORDER_REFLECT_101) * 9`.
const BOX3_TIMES_9: [f64; 30] = [
    29.0, 19.0, 24.0, 27.0, 32.0, 43.0, //
    22.0, 23.0, 26.0, 27.0, 28.0, 31.0, //
    22.0, 27.0, 31.0, 32.0, 29.0, 25.0, //
    20.0, 26.0, 27.0, 29.0, 33.0, 29.0, //
    20.0, 21.0, 27.0, 31.0, 40.0, 30.0,
];

fn convkit(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run convkit")
}

fn ok(args: &[&str]) -> Output {
    let out = convkit(args);
    assert!(out.status.success(), "convkit {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn x_flat() -> Vec<f64> {
    X.concat()
}

fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) {
    write_npy_to(std::fs::File::create(path).unwrap(), shape, data).unwrap();
}

fn write_npy_f64(path: &Path, shape: &[usize], data: &[f64]) {
    write_npy_to(std::fs::File::create(path).unwrap(), shape, data).unwrap();
}

fn read(path: &Path) -> NpyArray {
    read_npy("test", path).unwrap()
}

fn grey_png(path: &Path, scale: f64) {
    let data: Vec<u8> = x_flat().iter().map(|v| (v * scale) as u8).collect();
    ImageBuffer::<Luma<u8>, _>::from_raw(6, 5, data).unwrap().save(path).unwrap();
}

fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

#[test]
fn npy_in_npy_out_gives_the_raw_response() {
    let d = tempfile::tempdir().unwrap();
    let (x32, x64) = (d.path().join("x32.npy"), d.path().join("x64.npy"));
    write_npy_f32(&x32, &[5, 6], &x_flat().iter().map(|&v| v as f32).collect::<Vec<_>>());
    write_npy_f64(&x64, &[5, 6], &x_flat());
    let y = d.path().join("y.npy");
    ok(&["filter", s(&x32), "-o", s(&y), "--kernel", "sobel-x"]);
    match read(&y) {
        NpyArray::F32(t) => {
            assert_eq!(t.shape, vec![5, 6]);
            assert_eq!(t.data, SOBEL_X.iter().map(|&v| v as f32).collect::<Vec<_>>());
        }
        other => panic!("expected f32, got {}", other.dtype()),
    }
    // f64 stays f64; an inline matrix equals the name.
    ok(&["filter", s(&x64), "-o", s(&y), "-k", "-1,0,1;-2,0,2;-1,0,1"]);
    match read(&y) {
        NpyArray::F64(t) => assert_eq!(t.data, SOBEL_X.to_vec()),
        other => panic!("expected f64, got {}", other.dtype()),
    }
    // (H, W, C): each channel on its own.
    let rgb: Vec<f64> = x_flat().iter().flat_map(|&v| [v, 2.0 * v, 0.0]).collect();
    write_npy_f64(&x64, &[5, 6, 3], &rgb);
    ok(&["filter", s(&x64), "-o", s(&y), "-k", "sobel-x"]);
    let t = read(&y).to_f64();
    assert_eq!(t.shape, vec![5, 6, 3]);
    for (i, px) in t.data.chunks(3).enumerate() {
        assert_eq!(px, &[SOBEL_X[i], 2.0 * SOBEL_X[i], 0.0]);
    }
    // An explicit --range maps .npy output too.
    write_npy_f64(&x64, &[5, 6], &x_flat());
    ok(&["filter", s(&x64), "-o", s(&y), "-k", "sobel-x", "--range", "abs+minmax"]);
    let t = read(&y).to_f64();
    assert_eq!(t.data[3], 1.0);
    assert_eq!(t.data[1], 2.0 / 16.0);
}

#[test]
fn png_pixels_follow_the_default_ranges() {
    let d = tempfile::tempdir().unwrap();
    let x = d.path().join("x.png");
    grey_png(&x, 9.0);
    let y = d.path().join("y.png");
    // box:3 sums to 1: clipped, rounded. On 9·X the mean is exactly BOX3_TIMES_9.
    ok(&["filter", s(&x), "-o", s(&y), "-k", "box:3"]);
    let img = image::open(&y).unwrap();
    assert!(matches!(img, DynamicImage::ImageLuma8(_)), "grey in, grey out");
    let got: Vec<u8> = img.to_luma8().into_raw();
    assert_eq!(got, BOX3_TIMES_9.iter().map(|&v| v as u8).collect::<Vec<_>>());
    // sobel-x sums to 0: |response| stretched so the largest (16 · 9) is white.
    ok(&["filter", s(&x), "-o", s(&y), "-k", "sobel-x"]);
    let got: Vec<u8> = image::open(&y).unwrap().to_luma8().into_raw();
    let want: Vec<u8> = SOBEL_X.iter().map(|v| (v.abs() / 16.0 * 255.0).round() as u8).collect();
    assert_eq!(got, want);
    // --range clip on an edge kernel: negative responses go black, large ones saturate.
    ok(&["filter", s(&x), "-o", s(&y), "-k", "sobel-x", "--range", "clip"]);
    let got: Vec<u8> = image::open(&y).unwrap().to_luma8().into_raw();
    let want: Vec<u8> = SOBEL_X.iter().map(|v| (v * 9.0).clamp(0.0, 255.0) as u8).collect();
    assert_eq!(got, want);
}

#[test]
fn alpha_passes_through_and_follows_the_stride() {
    let d = tempfile::tempdir().unwrap();
    let x = d.path().join("x.png");
    let mut raw = Vec::new();
    for (i, v) in x_flat().iter().enumerate() {
        raw.extend_from_slice(&[(*v * 20.0) as u8, 100, 200, (i * 8) as u8]);
    }
    ImageBuffer::<Rgba<u8>, _>::from_raw(6, 5, raw).unwrap().save(&x).unwrap();
    let y = d.path().join("y.png");
    ok(&["filter", s(&x), "-o", s(&y), "-k", "emboss"]);
    let out = image::open(&y).unwrap();
    assert!(matches!(out, DynamicImage::ImageRgba8(_)));
    let alpha: Vec<u8> = out.to_rgba8().pixels().map(|p| p[3]).collect();
    assert_eq!(alpha, (0..30).map(|i| (i * 8) as u8).collect::<Vec<_>>());
    // Flat channels stay flat under a kernel summing to 1.
    assert!(out.to_rgba8().pixels().all(|p| p[1] == 100 && p[2] == 200));
    // Stride 2 with same padding: rows pad 1/1 (centres 0, 2, 4), columns 0/1 (centres 1, 3, 5).
    ok(&["filter", s(&x), "-o", s(&y), "-k", "box:3", "--stride", "2"]);
    let out = image::open(&y).unwrap().to_rgba8();
    assert_eq!(out.dimensions(), (3, 3));
    let alpha: Vec<u8> = out.pixels().map(|p| p[3]).collect();
    let want: Vec<u8> = [0, 2, 4].iter().flat_map(|r| [1, 3, 5].map(|c| ((r * 6 + c) * 8) as u8)).collect();
    assert_eq!(alpha, want);
    // Grey + alpha with --grey is a no-op conversion; RGBA with --grey keeps alpha.
    ok(&["filter", s(&x), "-o", s(&y), "-k", "identity", "--grey"]);
    assert!(matches!(image::open(&y).unwrap(), DynamicImage::ImageLumaA8(_)));
}

#[test]
fn sixteen_bit_images_stay_sixteen_bit() {
    let d = tempfile::tempdir().unwrap();
    let x = d.path().join("x.png");
    let data: Vec<u16> = x_flat().iter().map(|v| (v * 7000.0) as u16).collect();
    ImageBuffer::<Luma<u16>, _>::from_raw(6, 5, data.clone()).unwrap().save(&x).unwrap();
    for ext in ["png", "tif", "pgm"] {
        let y = d.path().join(format!("y.{ext}"));
        ok(&["filter", s(&x), "-o", s(&y), "-k", "identity"]);
        let out = image::open(&y).unwrap();
        assert!(matches!(out, DynamicImage::ImageLuma16(_)), "{ext}: {:?}", out.color());
        assert_eq!(out.to_luma16().into_raw(), data, "{ext}");
    }
    // JPEG and BMP hold 8 bits: the same picture, scaled.
    let y = d.path().join("y.bmp");
    ok(&["filter", s(&x), "-o", s(&y), "-k", "identity"]);
    let out = image::open(&y).unwrap().to_luma8().into_raw();
    let want: Vec<u8> = data.iter().map(|&v| (v as f64 / 65535.0 * 255.0).round() as u8).collect();
    assert_eq!(out, want);
    // Grey + alpha, 16-bit.
    let xa = d.path().join("xa.png");
    let la: Vec<u16> = data.iter().flat_map(|&v| [v, 65535 - v]).collect();
    ImageBuffer::<LumaA<u16>, _>::from_raw(6, 5, la.clone()).unwrap().save(&xa).unwrap();
    let y = d.path().join("ya.png");
    ok(&["filter", s(&xa), "-o", s(&y), "-k", "identity"]);
    assert_eq!(image::open(&y).unwrap().to_luma_alpha16().into_raw(), la);
}

#[test]
fn a_users_jpeg_filters_into_every_output_format() {
    let d = tempfile::tempdir().unwrap();
    let x = d.path().join("photo.jpg");
    let (w, h) = (40u32, 30u32);
    let rgb: Vec<u8> = (0..w * h).flat_map(|i| [(i % w * 6) as u8, (i / w * 8) as u8, 128]).collect();
    ImageBuffer::<Rgb<u8>, _>::from_raw(w, h, rgb).unwrap().save(&x).unwrap();
    for ext in ["png", "jpg", "jpeg", "bmp", "tif", "tiff", "ppm", "pnm", "pam", "npy"] {
        let y = d.path().join(format!("out.{ext}"));
        ok(&["filter", s(&x), "-o", s(&y), "-k", "gaussian:1", "--stride", "2"]);
        if ext == "npy" {
            assert_eq!(read(&y).shape(), &[15, 20, 3]);
        } else {
            let img = image::open(&y).unwrap_or_else(|e| panic!("{ext}: {e}"));
            assert_eq!(img.dimensions(), (20, 15), "{ext}");
            assert_eq!(img.color().channel_count(), 3, "{ext}");
        }
    }
    // .pgm holds grey: with --grey it works.
    let y = d.path().join("out.pgm");
    ok(&["filter", s(&x), "-o", s(&y), "-k", "sobel", "--grey"]);
    assert_eq!(image::open(&y).unwrap().color().channel_count(), 1);
}

#[test]
fn even_kernels_with_same_padding_put_the_extra_at_the_end() {
    let d = tempfile::tempdir().unwrap();
    let x = d.path().join("row.npy");
    write_npy_f64(&x, &[1, 4], &[1.0, 2.0, 3.0, 4.0]);
    let y = d.path().join("y.npy");
    ok(&["filter", s(&x), "-o", s(&y), "-k", "1,1", "--border", "zeros"]);
    assert_eq!(read(&y).to_f64().data, vec![3.0, 5.0, 7.0, 4.0]);
    // Reflect mirrors 3 past the end: 4 + 3.
    ok(&["filter", s(&x), "-o", s(&y), "-k", "1,1"]);
    assert_eq!(read(&y).to_f64().data, vec![3.0, 5.0, 7.0, 7.0]);
    // same-lower is OpenCV's default anchor: the extra at the start.
    ok(&["filter", s(&x), "-o", s(&y), "-k", "1,1", "--padding", "same-lower"]);
    assert_eq!(read(&y).to_f64().data, vec![3.0, 3.0, 5.0, 7.0]);
    let help = String::from_utf8(ok(&["filter", "--help"]).stdout).unwrap();
    assert!(help.contains("extra row/column of padding\nat the END"), "{help}");
}

#[test]
fn every_border_is_accepted_and_grey_uses_bt601() {
    let d = tempfile::tempdir().unwrap();
    let x = d.path().join("x.npy");
    write_npy_f64(&x, &[5, 6], &x_flat());
    let y = d.path().join("y.npy");
    // Left edge of row 0 under "1,0,0" (reads column −1), one border at a time.
    for (border, want) in [
        ("reflect", 2.0),
        ("symmetric", 1.0),
        ("replicate", 1.0),
        ("circular", 5.0),
        ("zeros", 0.0),
        ("constant:2.5", 2.5),
    ] {
        ok(&["filter", s(&x), "-o", s(&y), "-k", "1,0,0", "--border", border]);
        assert_eq!(read(&y).to_f64().data[0], want, "{border}");
    }
    let rgb = d.path().join("rgb.npy");
    write_npy_f64(&rgb, &[1, 1, 3], &[100.0, 200.0, 50.0]);
    ok(&["filter", s(&rgb), "-o", s(&y), "-k", "identity", "--grey"]);
    let t = read(&y).to_f64();
    assert_eq!(t.shape, vec![1, 1]);
    assert!((t.data[0] - 153.0).abs() < 1e-9);
}

#[test]
fn progress_stays_off_stderr_when_it_is_not_a_terminal() {
    let d = tempfile::tempdir().unwrap();
    let x = d.path().join("big.npy");
    write_npy_f32(&x, &[1100, 1000], &(0..1_100_000).map(|i| (i % 255) as f32).collect::<Vec<_>>());
    let y = d.path().join("y.png");
    let out = ok(&["filter", s(&x), "-o", s(&y), "-k", "sobel-x"]);
    assert!(out.stderr.is_empty() && out.stdout.is_empty());
    assert_eq!(image::open(&y).unwrap().dimensions(), (1000, 1100));
}

/// A demo table row, split on runs of two or more spaces.
fn table_row<'a>(stdout: &'a str, stage: &str) -> Vec<&'a str> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{stage} ")))
        .unwrap_or_else(|| panic!("no row {stage} in\n{stdout}"));
    line.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect()
}

#[test]
fn demo_writes_its_folder_and_prints_the_shape_table() {
    let d = tempfile::tempdir().unwrap();
    let out_dir = d.path().join("demo");
    let out = ok(&["demo", "--out", s(&out_dir)]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut names: Vec<String> =
        listing(&out_dir).iter().map(|p| p.file_name().unwrap().to_string_lossy().into()).collect();
    names.sort();
    let mut want = vec![
        "emboss.png",
        "feature-maps.png",
        "gaussian.png",
        "horizontal-edge.png",
        "index.html",
        "input.png",
        "laplacian.png",
        "sharpen.png",
        "sobel-x.png",
        "sobel-y.png",
        "sobel.png",
        "vertical-edge-dilation2.png",
        "vertical-edge-stride2.png",
        "vertical-edge-valid.png",
        "vertical-edge.png",
    ];
    want.sort();
    assert_eq!(names, want);

    // stage, input, output, kernel, stride, padding, dilation, params, RF (time is last).
    let head = table_row(&stdout, "stage");
    assert_eq!(
        &head[..9],
        &["stage", "input", "output", "kernel", "stride", "padding", "dilation", "params", "RF (px)"]
    );
    let rows: &[(&str, [&str; 8])] = &[
        ("vertical-edge", ["1x1x512x512", "1x1x512x512", "3x3", "1x1", "same (1)", "1x1", "9", "3x3"]),
        (
            "sobel",
            ["1x1x512x512", "1x1x512x512", "2 x 3x3, magnitude", "1x1", "same (1)", "1x1", "18", "3x3"],
        ),
        (
            "gaussian",
            ["1x1x512x512", "1x1x512x512", "11x11 = 11x1 * 1x11", "1x1", "same (5)", "1x1", "22", "11x11"],
        ),
        ("vertical-edge-valid", ["1x1x512x512", "1x1x510x510", "3x3", "1x1", "valid (0)", "1x1", "9", "3x3"]),
        (
            "vertical-edge-stride2",
            ["1x1x512x512", "1x1x255x255", "3x3", "2x2", "valid (0)", "1x1", "9", "3x3"],
        ),
        (
            "vertical-edge-dilation2",
            ["1x1x512x512", "1x1x508x508", "3x3", "1x1", "valid (0)", "2x2", "9", "5x5"],
        ),
        (
            "avg-pool (downscale)",
            ["1x1x512x512", "1x1x256x256", "2x2 mean", "2x2", "valid (0)", "1x1", "0", "2x2"],
        ),
        (
            "bank conv (8 filters)",
            ["1x1x256x256", "1x8x256x256", "8x1x11x11", "1x1", "same (5)", "1x1", "968", "22x22"],
        ),
        ("relu", ["1x8x256x256", "1x8x256x256", "-", "-", "-", "-", "0", "22x22"]),
        ("max-pool", ["1x8x256x256", "1x8x128x128", "2x2 max", "2x2", "valid (0)", "1x1", "0", "24x24"]),
    ];
    for (stage, cells) in rows {
        let row = table_row(&stdout, stage);
        assert_eq!(row.len(), 10, "{row:?}");
        assert_eq!(&row[1..9], cells, "{stage}");
        assert!(row[9].ends_with(" ms"), "{row:?}");
    }
    for stage in ["horizontal-edge", "sobel-x", "sobel-y", "laplacian", "sharpen", "emboss"] {
        assert_eq!(&table_row(&stdout, stage)[1..9], &rows[0].1, "{stage}");
    }

    // Images have the table's sizes; edges are where edges are (the tripod's legs are vertical).
    let dims = |n: &str| image::open(out_dir.join(n)).unwrap().dimensions();
    assert_eq!(dims("vertical-edge-stride2.png"), (255, 255));
    assert_eq!(dims("vertical-edge-dilation2.png"), (508, 508));
    assert_eq!(dims("input.png"), (512, 512));
    // Blur blurs: neighbouring pixels differ less than in the input.
    let roughness = |n: &str| {
        let g = image::open(out_dir.join(n)).unwrap().to_luma8();
        g.pixels().zip(g.pixels().skip(1)).map(|(a, b)| (a[0] as i64 - b[0] as i64).abs()).sum::<i64>()
    };
    assert!(roughness("gaussian.png") * 2 < roughness("input.png"));

    // The page is self-contained: every image is a data: URI and nothing is fetched.
    let html = std::fs::read_to_string(out_dir.join("index.html")).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"));
    assert_eq!(html.matches("<img ").count(), html.matches("<img src=\"data:image/png;base64,").count());
    assert_eq!(html.matches("<img ").count(), 14);

    // `convkit filter` works on the embedded image the demo wrote.
    let y = d.path().join("edges.png");
    ok(&["filter", s(&out_dir.join("input.png")), "-o", s(&y), "-k", "sobel"]);
    assert_eq!(image::open(&y).unwrap().dimensions(), (512, 512));
    // Running the demo again replaces its files.
    ok(&["demo", "--out", s(&out_dir)]);
    assert_eq!(listing(&out_dir).len(), want.len());
}

#[test]
fn bad_inputs_exit_2_with_one_line_and_write_nothing() {
    let d = tempfile::tempdir().unwrap();
    let x = d.path().join("x.npy");
    write_npy_f64(&x, &[5, 6], &x_flat());
    let tiny = d.path().join("tiny.npy");
    write_npy_f64(&tiny, &[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let cube = d.path().join("cube.npy");
    write_npy_f64(&cube, &[2, 2, 2, 2], &[0.0; 16]);
    let two = d.path().join("two.npy");
    write_npy_f64(&two, &[2, 2, 2], &[0.0; 8]);
    let garbage = d.path().join("garbage.png");
    std::fs::write(&garbage, b"this is not a png").unwrap();
    let rgb_png = d.path().join("rgb.png");
    ImageBuffer::<Rgb<u8>, _>::from_raw(2, 2, vec![0u8; 12]).unwrap().save(&rgb_png).unwrap();
    let missing = d.path().join("missing.png");
    let out = d.path().join("out.png");
    let (x, tiny, cube, two, garbage, missing, out) =
        (s(&x), s(&tiny), s(&cube), s(&two), s(&garbage), s(&missing), s(&out));
    let out_npy = d.path().join("out.npy");
    let out_npy = s(&out_npy);
    let rgb_png = s(&rgb_png);
    let cases: &[(&[&str], &str)] = &[
        (&["filter", missing, "-o", out, "-k", "sobel"], "missing.png: cannot open"),
        (&["filter", garbage, "-o", out, "-k", "sobel"], "garbage.png"),
        (&["filter", x, "-o", out, "-k", "blurry"], "invalid kernel blurry: unknown kernel name"),
        (&["filter", x, "-o", out, "-k", "1,0,-1;2,0"], "ragged matrix"),
        (&["filter", x, "-o", out, "-k", "1,,2"], "empty value"),
        (&["filter", x, "-o", out, "-k", "1,a,2"], "not a number"),
        (&["filter", x, "-o", out, "-k", "1,inf;nan,1"], "finite"),
        (&["filter", x, "-o", out, "-k", "1e999,1"], "finite"),
        (&["filter", x, "-o", out, "-k", "gaussian:0"], "SIGMA must be positive"),
        (&["filter", x, "-o", out, "-k", "nokernel.npy"], "nokernel.npy: cannot open"),
        (&["filter", tiny, "-o", out, "-k", "sobel", "--padding", "valid"], "leaves no output"),
        (&["filter", tiny, "-o", out, "-k", "gaussian:1"], "must be smaller than the input size"),
        (&["filter", x, "-o", out, "-k", "sobel", "--border", "mirror"], "invalid border mirror"),
        (&["filter", x, "-o", out, "-k", "sobel", "--border", "constant:nan"], "finite"),
        (&["filter", x, "-o", out, "-k", "sobel", "--range", "stretch"], "invalid range stretch"),
        (&["filter", x, "-o", out, "-k", "sobel", "--stride", "0"], "stride"),
        (&["filter", x, "-o", out, "-k", "sobel", "--stride", "1,1,1"], "stride"),
        (&["filter", x, "-o", out, "-k", "sobel", "--padding", "same-ish"], "padding"),
        (&["filter", x, "-o", "out.gif", "-k", "sobel"], "unsupported file type"),
        (&["filter", x, "-o", out], "--kernel"),
        (&["filter", cube, "-o", out, "-k", "sobel"], "is not an image"),
        (&["filter", two, "-o", out, "-k", "sobel", "--grey"], "--grey needs RGB"),
        (&["filter", two, "-o", out, "-k", "sobel"], "2 colour channels cannot be stored"),
        (&["filter", rgb_png, "-o", &out.replace("out.png", "out.pgm"), "-k", "sobel"], "holds grey images"),
        (
            &["filter", x, "-o", out_npy, "-k", "sobel", "--dilation", "3", "--padding", "valid"],
            "leaves no output",
        ),
        (&["demo", "--out", x], "is not a folder"),
    ];
    for (args, says) in cases {
        let before = listing(d.path());
        let r = convkit(args);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: expected {says:?} in {err}");
        assert!(r.stdout.is_empty(), "{args:?}");
        assert_eq!(listing(d.path()), before, "{args:?} wrote something");
    }
}
