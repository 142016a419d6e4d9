//! Image filtering (`convkit::filter`): every named kernel's weights written out by hand, every
//! named kernel and every border mode on a small synthetic image against OpenCV's `filter2D`,
//! and the plan's geometry (even kernels, stride, dilation, tiles, separable passes, stacks).
//!
//! Expected images were produced once with OpenCV 5.0 (`cv2.filter2D(x, cv2.CV_64F, k,
//! borderType=…)`, or `copyMakeBorder` + a valid correlation for `BORDER_WRAP` and a constant
//! other than 0) and pasted here; OpenCV is not a dependency. The pixels marked "by hand" below
//! were checked with pencil and paper.

use convkit::filter::{
    bank, named, parse_matrix, Filter, FilterOptions, FilterPlan, Interleaved, Kernel, Planar, RangeMap,
    RowSource, TileSink,
};
use convkit::{PadMode, Padding};

/// A 5×6 image of small integers: every result with integer weights is exact.
const X: [[f64; 6]; 5] = [
    [1.0, 2.0, 0.0, 4.0, 3.0, 5.0],
    [0.0, 6.0, 2.0, 1.0, 7.0, 2.0],
    [3.0, 1.0, 8.0, 2.0, 0.0, 4.0],
    [5.0, 0.0, 2.0, 9.0, 1.0, 3.0],
    [2.0, 4.0, 1.0, 0.0, 6.0, 8.0],
];

fn image() -> Planar<f64> {
    Planar::new(1, 5, 6, X.concat()).unwrap()
}

fn filter(specs: &[&str], opts: &FilterOptions, img: &Planar<f64>) -> Planar<f64> {
    let f: Vec<Filter> = specs.iter().map(|s| Filter::parse(s).unwrap()).collect();
    let plan = FilterPlan::new(&f, opts, img.channels, img.height, img.width).unwrap();
    plan.run(img, &mut |_, _| {}).unwrap()
}

fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol,
            "{what}: element {i} (row {}, col {}): got {g}, want {w}",
            i / 6,
            i % 6
        );
    }
}

fn weights(spec: &str) -> Vec<f64> {
    match named(spec).unwrap() {
        Filter::Linear(k) => k.weights().to_vec(),
        Filter::Magnitude { .. } => panic!("{spec} is a magnitude"),
    }
}

#[test]
fn named_kernels_have_the_textbook_weights() {
    let t = 1.0 / 3.0;
    let cases: &[(&str, &[f64])] = &[
        ("identity", &[1.0]),
        ("sobel-x", &[-1.0, 0.0, 1.0, -2.0, 0.0, 2.0, -1.0, 0.0, 1.0]),
        ("sobel-y", &[-1.0, -2.0, -1.0, 0.0, 0.0, 0.0, 1.0, 2.0, 1.0]),
        ("scharr-x", &[-3.0, 0.0, 3.0, -10.0, 0.0, 10.0, -3.0, 0.0, 3.0]),
        ("scharr-y", &[-3.0, -10.0, -3.0, 0.0, 0.0, 0.0, 3.0, 10.0, 3.0]),
        ("prewitt-x", &[-1.0, 0.0, 1.0, -1.0, 0.0, 1.0, -1.0, 0.0, 1.0]),
        ("prewitt-y", &[-1.0, -1.0, -1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]),
        ("laplacian", &[0.0, 1.0, 0.0, 1.0, -4.0, 1.0, 0.0, 1.0, 0.0]),
        ("laplacian8", &[1.0, 1.0, 1.0, 1.0, -8.0, 1.0, 1.0, 1.0, 1.0]),
        ("sharpen", &[0.0, -1.0, 0.0, -1.0, 5.0, -1.0, 0.0, -1.0, 0.0]),
        ("emboss", &[-2.0, -1.0, 0.0, -1.0, 1.0, 1.0, 0.0, 1.0, 2.0]),
        ("vertical-edge", &[1.0, 0.0, -1.0, 1.0, 0.0, -1.0, 1.0, 0.0, -1.0]),
        ("horizontal-edge", &[1.0, 1.0, 1.0, 0.0, 0.0, 0.0, -1.0, -1.0, -1.0]),
        ("box:2", &[0.25, 0.25, 0.25, 0.25]),
        ("motion:3:0", &[0.0, 0.0, 0.0, t, t, t, 0.0, 0.0, 0.0]),
        ("motion:3:90", &[0.0, t, 0.0, 0.0, t, 0.0, 0.0, t, 0.0]),
        ("motion:3:180", &[0.0, 0.0, 0.0, t, t, t, 0.0, 0.0, 0.0]),
    ];
    for (spec, want) in cases {
        assert_close(spec, &weights(spec), want, 1e-15);
    }
    let b = weights("box:3");
    assert_eq!(b.len(), 9);
    assert_close("box:3", &b, &[1.0 / 9.0; 9], 1e-15);

    // gaussian:1:3 — taps e^(-1/2), 1, e^(-1/2) over their sum (OpenCV getGaussianKernel(3, 1)).
    let e = (-0.5f64).exp();
    let g = [e / (1.0 + 2.0 * e), 1.0 / (1.0 + 2.0 * e), e / (1.0 + 2.0 * e)];
    let outer: Vec<f64> = g.iter().flat_map(|a| g.iter().map(move |b| a * b)).collect();
    assert_close("gaussian:1:3", &weights("gaussian:1:3"), &outer, 1e-15);
    // Default sizes: round(6σ+1) made odd, as OpenCV for 8-bit images.
    for (spec, n) in
        [("gaussian", 7), ("gaussian:1", 7), ("gaussian:0.5", 5), ("gaussian:2", 13), ("gaussian:1.5", 11)]
    {
        let Filter::Linear(k) = named(spec).unwrap() else { panic!() };
        assert_eq!((k.rows(), k.cols()), (n, n), "{spec}");
        assert!((k.sum() - 1.0).abs() < 1e-12, "{spec} sums to {}", k.sum());
        assert!(k.factors().is_some(), "{spec} is separable");
    }
    // unsharp:1:2 = 3·δ − 2·gaussian:1 (7×7).
    let u = weights("unsharp:1:2");
    let gw = weights("gaussian:1");
    for (i, (uv, gv)) in u.iter().zip(&gw).enumerate() {
        let want = if i == 24 { 3.0 - 2.0 * gv } else { -2.0 * gv };
        assert!((uv - want).abs() < 1e-15, "unsharp tap {i}");
    }
    // motion at 30°: sums to 1, symmetric under a half turn, heaviest at the centre.
    let m = weights("motion:5:30");
    assert!((m.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    for i in 0..25 {
        assert!((m[i] - m[24 - i]).abs() < 1e-15);
    }
    assert!(m.iter().all(|&v| v <= m[12]));
    // Magnitudes pair the x and y kernels.
    let Filter::Magnitude { x, y, .. } = named("sobel").unwrap() else { panic!() };
    assert_eq!((x.weights(), y.weights()), (&weights("sobel-x")[..], &weights("sobel-y")[..]));
}

/// `cv2.filter2D(X, cv2.CV_64F, k, borderType=cv2.BORDER_REFLECT_101)` for each named kernel
/// (`np.hypot` of the x and y responses for the magnitudes).
const OPENCV_REFLECT_101: &[(&str, &[f64])] = &[
    (
        "identity",
        &[
            1.0, 2.0, 0.0, 4.0, 3.0, 5.0, 0.0, 6.0, 2.0, 1.0, 7.0, 2.0, 3.0, 1.0, 8.0, 2.0, 0.0, 4.0, 5.0,
            0.0, 2.0, 9.0, 1.0, 3.0, 2.0, 4.0, 1.0, 0.0, 6.0, 8.0,
        ],
    ),
    (
        "box:3",
        &[
            3.222222222222222,
            2.111111111111111,
            2.666666666666667,
            2.9999999999999996,
            3.555555555555556,
            4.777777777777778,
            2.4444444444444446,
            2.5555555555555554,
            2.888888888888889,
            3.0,
            3.1111111111111116,
            3.4444444444444438,
            2.4444444444444446,
            3.0,
            3.4444444444444446,
            3.5555555555555554,
            3.2222222222222223,
            2.777777777777778,
            2.2222222222222223,
            2.888888888888889,
            3.0000000000000004,
            3.2222222222222223,
            3.6666666666666665,
            3.222222222222222,
            2.2222222222222223,
            2.3333333333333335,
            3.0,
            3.4444444444444446,
            4.444444444444444,
            3.3333333333333335,
        ],
    ),
    (
        "gaussian:1:3",
        &[
            2.5022721590822306,
            2.318752583948424,
            2.290004542887301,
            2.78797178122551,
            3.9115737869580443,
            4.362494832103153,
            2.432144098172253,
            2.7456500446441567,
            2.9420034300249296,
            2.888050690361495,
            3.2990122272311235,
            3.707393831386387,
            2.3807929842351303,
            2.9855062807592194,
            3.702147193909867,
            3.5388684633461858,
            2.8604837634533085,
            2.6377445653172864,
            2.391242873164275,
            2.537687349193249,
            3.1633004235756284,
            3.5835307352214656,
            3.484915723682751,
            3.2476828063059484,
            2.6375051678968475,
            2.2398345431031155,
            2.5469561239694576,
            3.5467167265490187,
            4.266220355858366,
            4.163039333143243,
        ],
    ),
    (
        "gaussian:1",
        &[
            2.371701156012901,
            2.5167822766535495,
            2.5572569836190513,
            2.9223496263394257,
            3.612267807459134,
            3.862694640395104,
            2.525295448452706,
            2.759893396602788,
            2.926162188023049,
            3.033043001787674,
            3.369372347765891,
            3.528176740075236,
            2.588000794279147,
            2.8667229620654053,
            3.361937268646442,
            3.339438303752663,
            3.0638100159116646,
            3.011925160134531,
            2.5328769963517312,
            2.603055415431998,
            3.125328034093995,
            3.537085099054835,
            3.4335788298122236,
            3.4021671940509637,
            2.5478866831955167,
            2.4683942353822745,
            2.8122151285425008,
            3.4830756969985424,
            3.8236697735958414,
            3.9711023447326457,
        ],
    ),
    (
        "sobel-x",
        &[
            0.0, 2.0, -6.0, 16.0, 4.0, 0.0, 0.0, 8.0, -7.0, 5.0, 5.0, 0.0, 0.0, 9.0, 6.0, -12.0, -1.0, 0.0,
            0.0, -2.0, 15.0, -5.0, -2.0, 0.0, 0.0, -8.0, 10.0, 8.0, 4.0, 0.0,
        ],
    ),
    (
        "sobel-y",
        &[
            0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 8.0, 13.0, 1.0, -9.0, -8.0, -2.0, -7.0, 2.0, 10.0, -3.0,
            -10.0, 4.0, -2.0, -13.0, -5.0, 14.0, 20.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        ],
    ),
    (
        "scharr-x",
        &[
            0.0, 2.0, -10.0, 60.0, 16.0, 0.0, 0.0, 32.0, -41.0, 35.0, 19.0, 0.0, 0.0, 47.0, 22.0, -68.0, 5.0,
            0.0, 0.0, -18.0, 81.0, -19.0, -30.0, 0.0, 0.0, -28.0, 14.0, 44.0, 44.0, 0.0,
        ],
    ),
    (
        "scharr-y",
        &[
            0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 14.0, 20.0, 71.0, -5.0, -39.0, -28.0, 14.0, -45.0, 6.0, 62.0,
            -33.0, -26.0, 8.0, 6.0, -67.0, -23.0, 66.0, 76.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        ],
    ),
    (
        "prewitt-x",
        &[
            0.0, 3.0, -8.0, 13.0, 3.0, 0.0, 0.0, 6.0, -2.0, 0.0, 4.0, 0.0, 0.0, 4.0, 5.0, -4.0, -3.0, 0.0,
            0.0, 1.0, 6.0, -4.0, 4.0, 0.0, 0.0, -7.0, 14.0, 3.0, -4.0, 0.0,
        ],
    ),
    (
        "prewitt-y",
        &[
            0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 9.0, 5.0, 3.0, -6.0, -7.0, -7.0, -1.0, 2.0, 2.0, 3.0, -11.0,
            5.0, -5.0, -6.0, -3.0, 8.0, 16.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        ],
    ),
    (
        "laplacian",
        &[
            0.0, 5.0, 10.0, -11.0, 11.0, -10.0, 16.0, -19.0, 7.0, 11.0, -22.0, 15.0, -5.0, 13.0, -25.0, 10.0,
            14.0, -11.0, -15.0, 12.0, 10.0, -31.0, 14.0, 2.0, 10.0, -13.0, 4.0, 25.0, -14.0, -14.0,
        ],
    ),
    (
        "laplacian8",
        &[
            20.0, 1.0, 24.0, -9.0, 5.0, -2.0, 22.0, -31.0, 8.0, 18.0, -35.0, 13.0, -5.0, 18.0, -41.0, 14.0,
            29.0, -11.0, -25.0, 26.0, 9.0, -52.0, 24.0, 2.0, 2.0, -15.0, 18.0, 31.0, -14.0, -42.0,
        ],
    ),
    (
        "sharpen",
        &[
            1.0, -3.0, -10.0, 15.0, -8.0, 15.0, -16.0, 25.0, -5.0, -10.0, 29.0, -13.0, 8.0, -12.0, 33.0,
            -8.0, -14.0, 15.0, 20.0, -12.0, -8.0, 40.0, -13.0, 1.0, -8.0, 17.0, -3.0, -25.0, 20.0, 22.0,
        ],
    ),
    (
        "emboss",
        &[
            1.0, 5.0, -8.0, 17.0, 6.0, 5.0, 0.0, 21.0, 5.0, 4.0, 5.0, -5.0, -4.0, 4.0, 15.0, 0.0, 0.0, -7.0,
            10.0, -4.0, 2.0, 2.0, 13.0, 19.0, 2.0, -3.0, 15.0, 3.0, 2.0, 8.0,
        ],
    ),
    (
        "unsharp:1:1",
        &[
            -0.37170115601290055,
            1.4832177233464499,
            -2.5572569836190513,
            5.077650373660576,
            2.387732192540866,
            6.1373053596048965,
            -2.525295448452706,
            9.240106603397212,
            1.0738378119769514,
            -1.033043001787674,
            10.630627652234109,
            0.4718232599247641,
            3.4119992057208535,
            -0.8667229620654057,
            12.638062731353557,
            0.6605616962473364,
            -3.0638100159116646,
            4.988074839865469,
            7.46712300364827,
            -2.603055415431998,
            0.8746719659060048,
            14.462914900945165,
            -1.433578829812224,
            2.597832805949037,
            1.4521133168044835,
            5.531605764617726,
            -0.8122151285425012,
            -3.4830756969985424,
            8.176330226404158,
            12.028897655267356,
        ],
    ),
    (
        "vertical-edge",
        &[
            0.0, -3.0, 8.0, -13.0, -3.0, 0.0, 0.0, -6.0, 2.0, 0.0, -4.0, 0.0, 0.0, -4.0, -5.0, 4.0, 3.0, 0.0,
            0.0, -1.0, -6.0, 4.0, -4.0, 0.0, 0.0, 7.0, -14.0, -3.0, 4.0, 0.0,
        ],
    ),
    (
        "horizontal-edge",
        &[
            0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -9.0, -5.0, -3.0, 6.0, 7.0, 7.0, 1.0, -2.0, -2.0, -3.0, 11.0,
            -5.0, 5.0, 6.0, 3.0, -8.0, -16.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        ],
    ),
    (
        "motion:3:0",
        &[
            1.6666666666666665,
            1.0,
            2.0,
            2.333333333333333,
            3.9999999999999996,
            3.6666666666666665,
            4.0,
            2.6666666666666665,
            3.0,
            3.333333333333333,
            3.333333333333333,
            5.333333333333332,
            1.6666666666666665,
            4.0,
            3.6666666666666665,
            3.333333333333333,
            2.0,
            1.3333333333333333,
            1.6666666666666665,
            2.333333333333333,
            3.6666666666666665,
            4.0,
            4.333333333333334,
            1.6666666666666665,
            3.333333333333333,
            2.3333333333333335,
            1.6666666666666665,
            2.3333333333333335,
            4.666666666666666,
            6.666666666666666,
        ],
    ),
    (
        "motion:3:90",
        &[
            0.3333333333333333,
            4.666666666666666,
            1.3333333333333333,
            1.9999999999999998,
            5.666666666666666,
            2.9999999999999996,
            1.3333333333333333,
            3.0,
            3.333333333333333,
            2.333333333333333,
            3.333333333333333,
            3.666666666666666,
            2.6666666666666665,
            2.3333333333333335,
            3.9999999999999996,
            4.0,
            2.6666666666666665,
            3.0,
            3.333333333333333,
            1.6666666666666665,
            3.6666666666666665,
            3.6666666666666665,
            2.3333333333333335,
            5.0,
            3.9999999999999996,
            1.3333333333333333,
            1.6666666666666665,
            6.0,
            2.666666666666667,
            4.666666666666666,
        ],
    ),
    (
        "sobel",
        &[
            0.0,
            2.0,
            6.0,
            16.0,
            4.0,
            0.0,
            2.0,
            11.313708498984761,
            14.7648230602334,
            5.0990195135927845,
            10.295630140987,
            8.0,
            2.0,
            11.40175425099138,
            6.324555320336759,
            15.620499351813308,
            3.1622776601683795,
            10.0,
            4.0,
            2.8284271247461903,
            19.849433241279208,
            7.0710678118654755,
            14.142135623730951,
            20.0,
            0.0,
            8.0,
            10.0,
            8.0,
            4.0,
            0.0,
        ],
    ),
    (
        "scharr",
        &[
            0.0,
            2.0,
            10.0,
            60.0,
            16.0,
            0.0,
            14.0,
            37.73592452822641,
            81.98780397107853,
            35.35533905932738,
            43.382023926967726,
            28.0,
            14.0,
            65.06919393998976,
            22.80350850198276,
            92.02173656261873,
            33.37663853655727,
            26.0,
            8.0,
            18.973665961010276,
            105.11898020814318,
            29.832867780352597,
            72.49827584156743,
            76.0,
            0.0,
            28.0,
            14.0,
            44.0,
            44.0,
            0.0,
        ],
    ),
    (
        "prewitt",
        &[
            0.0,
            3.0,
            8.0,
            13.0,
            3.0,
            0.0,
            0.0,
            10.816653826391969,
            5.385164807134504,
            3.0,
            7.211102550927978,
            7.0,
            7.0,
            4.123105625617661,
            5.385164807134504,
            4.47213595499958,
            4.242640687119285,
            11.0,
            5.0,
            5.0990195135927845,
            8.48528137423857,
            5.0,
            8.94427190999916,
            16.0,
            0.0,
            7.0,
            14.0,
            3.0,
            4.0,
            0.0,
        ],
    ),
];

#[test]
fn every_named_kernel_matches_opencv_filter2d() {
    let img = image();
    let opts = FilterOptions::default();
    for (spec, want) in OPENCV_REFLECT_101 {
        let got = filter(&[spec], &opts, &img);
        assert_eq!((got.channels, got.height, got.width), (1, 5, 6), "{spec}");
        assert_close(spec, &got.data, want, 1e-12);
    }
    // By hand: Sobel-x at row 2, col 2 reads 6 2 1 / 1 8 2 / 0 2 9:
    // (−6 + 1) + 2·(−1 + 2) + (−0 + 9) = −5 + 2 + 9 = 6.
    assert_eq!(filter(&["sobel-x"], &opts, &img).data[2 * 6 + 2], 6.0);
    // By hand: at the left edge reflect mirrors column 1 onto column −1, so a horizontal
    // derivative is 0 there whatever the image.
    let sx = filter(&["sobel-x"], &opts, &img);
    assert!((0..5).all(|r| sx.data[r * 6] == 0.0 && sx.data[r * 6 + 5] == 0.0));
}

/// A 5×3 kernel 1…15 (asymmetric, so any flip or transposition shows), under each border:
/// `copyMakeBorder(X, 2, 2, 1, 1, border, value)` then a valid correlation, which equals
/// `filter2D(X, CV_64F, k, borderType=border)` for the borders filter2D accepts.
const OPENCV_BORDERS: &[(&str, &[f64])] = &[
    (
        "reflect",
        &[
            312.0, 357.0, 362.0, 373.0, 359.0, 408.0, 270.0, 330.0, 397.0, 417.0, 407.0, 329.0, 305.0, 319.0,
            339.0, 378.0, 467.0, 469.0, 269.0, 307.0, 380.0, 411.0, 489.0, 382.0, 240.0, 363.0, 408.0, 395.0,
            416.0, 304.0,
        ],
    ),
    (
        "symmetric",
        &[
            240.0, 318.0, 344.0, 369.0, 376.0, 422.0, 294.0, 317.0, 398.0, 409.0, 411.0, 370.0, 318.0, 319.0,
            339.0, 378.0, 467.0, 535.0, 330.0, 309.0, 283.0, 347.0, 517.0, 673.0, 348.0, 287.0, 337.0, 381.0,
            531.0, 579.0,
        ],
    ),
    (
        "replicate",
        &[
            231.0, 305.0, 345.0, 361.0, 380.0, 433.0, 294.0, 317.0, 398.0, 409.0, 411.0, 370.0, 318.0, 319.0,
            339.0, 378.0, 467.0, 535.0, 330.0, 309.0, 283.0, 347.0, 517.0, 673.0, 327.0, 289.0, 240.0, 317.0,
            559.0, 789.0,
        ],
    ),
    (
        "circular",
        &[
            341.0, 331.0, 351.0, 369.0, 392.0, 361.0, 323.0, 325.0, 390.0, 411.0, 422.0, 346.0, 395.0, 319.0,
            339.0, 378.0, 467.0, 436.0, 377.0, 253.0, 303.0, 345.0, 482.0, 421.0, 359.0, 262.0, 312.0, 357.0,
            467.0, 406.0,
        ],
    ),
    (
        "zeros",
        &[
            155.0, 286.0, 299.0, 306.0, 294.0, 209.0, 186.0, 312.0, 384.0, 392.0, 386.0, 201.0, 220.0, 319.0,
            339.0, 378.0, 467.0, 316.0, 149.0, 212.0, 217.0, 244.0, 313.0, 210.0, 86.0, 116.0, 123.0, 132.0,
            193.0, 133.0,
        ],
    ),
    (
        "constant:2.5",
        &[
            282.5, 338.5, 351.5, 358.5, 346.5, 351.5, 286.0, 327.0, 399.0, 407.0, 401.0, 321.0, 307.5, 319.0,
            339.0, 378.0, 467.0, 428.5, 309.0, 317.0, 322.0, 349.0, 418.0, 390.0, 303.5, 303.5, 310.5, 319.5,
            380.5, 365.5,
        ],
    ),
];

#[test]
fn every_border_mode_matches_opencv() {
    let img = image();
    let k = "1,2,3;4,5,6;7,8,9;10,11,12;13,14,15";
    for (border, want) in OPENCV_BORDERS {
        let opts = FilterOptions::default().border(border.parse::<PadMode>().unwrap());
        let got = filter(&[k], &opts, &img);
        assert_close(border, &got.data, want, 0.0);
    }
    // By hand, zeros at (0, 0): rows −2…2 meet kernel rows 1…5, columns −1…1 kernel columns 1…3;
    // only image rows 0…2 and columns 0…1 count: (1·8 + 2·9) + (0·11 + 6·12) + (3·14 + 1·15) = 155.
    let z = filter(&[k], &FilterOptions::default().border(PadMode::Zeros), &img);
    assert_eq!(z.data[0], 155.0);
}

#[test]
fn borders_read_the_documented_pixels() {
    // A 1×4 row `abcd` = 1 2 3 4 and a 1×5 kernel that picks the tap two to the left of the
    // output: the first output reads padded position −2, the second −1.
    let row = Planar::new(1, 1, 4, vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let pick = "1,0,0,0,0";
    let cases = [
        ("reflect", [3.0, 2.0]),    // dcb|abcd : c b
        ("symmetric", [2.0, 1.0]),  // cba|abcd : b a
        ("replicate", [1.0, 1.0]),  // aaa|abcd : a a
        ("circular", [3.0, 4.0]),   // bcd|abcd : c d
        ("zeros", [0.0, 0.0]),      // 000|abcd
        ("constant:7", [7.0, 7.0]), // VVV|abcd
    ];
    for (border, want) in cases {
        let opts = FilterOptions::default().border(border.parse().unwrap());
        let y = filter(&[pick], &opts, &row);
        assert_eq!(&y.data[..2], &want, "{border}");
    }
    // Reflect needs padding smaller than the image; symmetric and circular allow equal.
    let tiny = Planar::new(1, 2, 2, vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let f = [Filter::parse("box:5").unwrap()];
    assert!(FilterPlan::new(&f, &FilterOptions::default(), 1, 2, 2).is_err());
    let sym = FilterOptions::default().border(PadMode::Symmetric);
    assert!(FilterPlan::new(&f, &sym, 1, 2, 2).is_ok());
    // Symmetric padding of 2 on a 2-pixel axis (`ba|ab|ba`): positions −2…2 read 1 0 0 1 1.
    let y = filter(&["box:5"], &sym, &tiny);
    let at = |r: isize, c: isize| {
        let m = |p: isize| [1, 0, 0, 1, 1][(p + 2) as usize];
        tiny.data[m(r) * 2 + m(c)]
    };
    let want: f64 =
        (-2..3).flat_map(|r| (-2..3).map(move |c| (r, c))).map(|(r, c)| at(r, c)).sum::<f64>() / 25.0;
    assert!((y.data[0] - want).abs() < 1e-12);
}

#[test]
fn even_kernels_put_the_extra_padding_at_the_end() {
    let img = image();
    // 2×2 kernel, same: top 0, bottom 1, left 0, right 1 (reflect).
    let same: &[f64] = &[
        29.0, 28.0, 18.0, 41.0, 42.0, 45.0, 25.0, 45.0, 36.0, 21.0, 27.0, 28.0, 20.0, 25.0, 54.0, 33.0, 23.0,
        17.0, 27.0, 20.0, 23.0, 35.0, 57.0, 53.0, 25.0, 14.0, 43.0, 43.0, 37.0, 33.0,
    ];
    let got = filter(&["1,2;3,4"], &FilterOptions::default(), &img);
    assert_close("same", &got.data, same, 0.0);
    // By hand at (4, 5): bottom row and right column mirror to rows 3, 4 and columns 4, 5:
    // window [[8, 6·]] … = 1·X[4][5] + 2·X[4][4] + 3·X[3][5] + 4·X[3][4] = 8 + 12 + 9 + 4 = 33.
    assert_eq!(got.data[4 * 6 + 5], 33.0);
    // OpenCV's default anchor puts the extra at the start: that is same-lower.
    let lower: &[f64] = &[
        16.0, 23.0, 16.0, 20.0, 39.0, 40.0, 22.0, 29.0, 28.0, 18.0, 41.0, 42.0, 21.0, 25.0, 45.0, 36.0, 21.0,
        27.0, 27.0, 20.0, 25.0, 54.0, 33.0, 23.0, 30.0, 27.0, 20.0, 23.0, 35.0, 57.0,
    ];
    let got = filter(&["1,2;3,4"], &FilterOptions::default().padding(Padding::SameLower), &img);
    assert_close("same-lower", &got.data, lower, 0.0);
    // 1-D: [1 2 3 4] with [1 1] and zeros: the last output reads the padding.
    let row = Planar::new(1, 1, 4, vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let y = filter(&["1,1"], &FilterOptions::default().border(PadMode::Zeros), &row);
    assert_eq!(y.data, vec![3.0, 5.0, 7.0, 4.0]);
}

#[test]
fn stride_and_dilation_resize_as_the_core_says() {
    let img = image();
    let pad1 = FilterOptions::default().padding(Padding::uniform(1));
    let full = filter(&["sobel-x"], &pad1, &img);
    let s2 = filter(&["sobel-x"], &pad1.clone().stride([2]), &img);
    assert_eq!((s2.height, s2.width), (3, 3));
    for r in 0..3 {
        for c in 0..3 {
            assert_eq!(s2.data[r * 3 + c], full.data[2 * r * 6 + 2 * c]);
        }
    }
    // Dilation 2 is the kernel with zeros between its taps.
    let d2 = filter(&["sobel-x"], &FilterOptions::default().dilation([2]).border(PadMode::Replicate), &img);
    let spread = "-1,0,0,0,1;0,0,0,0,0;-2,0,0,0,2;0,0,0,0,0;-1,0,0,0,1";
    let want = filter(&[spread], &FilterOptions::default().border(PadMode::Replicate), &img);
    assert_eq!(d2.data, want.data);
    // Same padding keeps ceil(n / stride); valid shrinks by the effective kernel − 1.
    let f = [Filter::parse("box:3").unwrap()];
    let p = FilterPlan::new(&f, &FilterOptions::default().stride([2, 3]), 1, 5, 6).unwrap();
    assert_eq!(p.output_size(), (1, 3, 2));
    let p = FilterPlan::new(&f, &FilterOptions::default().padding(Padding::Valid).dilation([2]), 1, 5, 6)
        .unwrap();
    assert_eq!(p.output_size(), (1, 1, 2));
    // An output that would be empty is an error, not a panic.
    let e = FilterPlan::new(&f, &FilterOptions::default().padding(Padding::Valid), 1, 2, 2).unwrap_err();
    assert!(e.to_string().contains("leaves no output"), "{e}");
}

#[test]
fn flip_gives_true_convolution() {
    let img = image();
    let flipped = filter(&["1,2,3;4,5,6;7,8,9"], &FilterOptions::default().flip(true), &img);
    let rotated = filter(&["9,8,7;6,5,4;3,2,1"], &FilterOptions::default(), &img);
    assert_eq!(flipped.data, rotated.data);
    let a = filter(&["sobel-x"], &FilterOptions::default().flip(true), &img);
    let b = filter(&["sobel-x"], &FilterOptions::default(), &img);
    assert!(a.data.iter().zip(&b.data).all(|(x, y)| *x == -*y));
}

#[test]
fn tiles_and_separable_passes_do_not_change_the_result() {
    // A taller image so that tiles of 1, 2 and 3 rows cut through it at many places.
    let h = 11;
    let data: Vec<f64> = (0..3 * h * 7).map(|i| ((i * 37) % 17) as f64).collect();
    let img = Planar::new(3, h, 7, data).unwrap();
    let borders = ["reflect", "symmetric", "replicate", "circular", "zeros", "constant:3"];
    for spec in ["box:3", "gaussian:1:5", "sobel", "1,2;3,4", "laplacian"] {
        for border in borders {
            for opts in [
                FilterOptions::default(),
                FilterOptions::default().stride([2]),
                FilterOptions::default().dilation([2, 1]).padding(Padding::Full),
                FilterOptions::default().padding(Padding::Explicit(vec![0, 2, 1, 0])).stride([3, 2]),
            ] {
                let opts = opts.border(border.parse().unwrap());
                let whole = filter(&[spec], &opts, &img);
                for t in [1, 2, 3] {
                    let tiled = filter(&[spec], &opts.clone().tile_rows(t), &img);
                    assert_eq!(tiled, whole, "{spec} {border} {opts:?} tile {t}");
                }
                // The separable path agrees with the same weights as a dense matrix.
                if let Ok(Filter::Linear(k)) = Filter::parse(spec) {
                    if k.factors().is_some() {
                        let dense = Kernel::new("dense", k.rows(), k.cols(), k.weights().to_vec()).unwrap();
                        let f = [Filter::Linear(dense)];
                        let plan = FilterPlan::new(&f, &opts, 3, h, 7).unwrap();
                        assert!(!plan.stages()[0].separable);
                        let d = plan.run(&img, &mut |_, _| {}).unwrap();
                        assert_close(&format!("{spec} {border} dense"), &d.data, &whole.data, 1e-12);
                    }
                }
            }
        }
    }
}

#[test]
fn colour_channels_are_filtered_independently() {
    let img = image();
    let mut rgb = img.clone();
    for k in 1..3 {
        let shifted: Vec<f64> = img.data.iter().map(|v| v * (k as f64 + 1.0) + k as f64).collect();
        rgb = rgb.append_channels(&Planar::new(1, 5, 6, shifted).unwrap()).unwrap();
    }
    let y = filter(&["emboss"], &FilterOptions::default(), &rgb);
    for k in 0..3 {
        let one = Planar::new(1, 5, 6, rgb.plane(k).to_vec()).unwrap();
        assert_eq!(y.plane(k), &filter(&["emboss"], &FilterOptions::default(), &one).data[..], "channel {k}");
    }
}

#[test]
fn stacks_apply_in_order_and_stride_once() {
    let img = image();
    let opts = FilterOptions::default().stride([2]);
    let y = filter(&["box:3", "sobel-x"], &opts, &img);
    assert_eq!((y.height, y.width), (3, 3));
    let blurred = filter(&["box:3"], &FilterOptions::default(), &img);
    let want = filter(&["sobel-x"], &opts, &blurred);
    assert_eq!(y.data, want.data);
    // Progress is reported in output rows over all stages.
    let f = [Filter::parse("box:3").unwrap(), Filter::parse("sobel-x").unwrap()];
    let plan = FilterPlan::new(&f, &opts.clone().tile_rows(2), 1, 5, 6).unwrap();
    let mut seen = Vec::new();
    plan.run(&img, &mut |d, t| seen.push((d, t))).unwrap();
    assert_eq!(seen, vec![(2, 8), (4, 8), (5, 8), (7, 8), (8, 8)]);
    // Alpha follows each output pixel's window centre.
    assert_eq!(plan.centres(0), vec![0, 2, 4]);
    // Columns: same padding with stride 2 on 6 columns pads 0 left, 1 right, so windows
    // centre on the odd columns.
    assert_eq!(plan.centres(1), vec![1, 3, 5]);
}

#[test]
fn bad_specs_are_errors_naming_the_kernel() {
    for (spec, says) in [
        ("blurry", "unknown kernel name"),
        ("", "expected a name"),
        ("1,2;3", "ragged matrix"),
        ("1,,2", "empty value"),
        ("1,x,2", "not a number"),
        ("1,inf,2", "finite"),
        ("1,nan;2,3", "finite"),
        ("1/0,1", "finite"),
        ("gaussian:0", "SIGMA must be positive"),
        ("gaussian:-1", "SIGMA must be positive"),
        ("gaussian:1e9", "more than"),
        ("gaussian:nan", "finite number"),
        ("gaussian:1:0", "SIZE must be an integer"),
        ("box:0", "N must be an integer"),
        ("box:3:3", "too many parameters"),
        ("motion:0", "LEN must be an integer"),
        ("sobel:3", "too many parameters"),
        ("missing-kernel.npy", "cannot open"),
    ] {
        let e = Filter::parse(spec).unwrap_err().to_string();
        assert!(e.contains("kernel") && e.contains(says), "{spec:?}: {e}");
    }
    assert!(parse_matrix("1 2 1; 2 4 2; 1 2 1").is_ok());
    assert!(Kernel::new("k", 0, 3, vec![]).is_err());
    assert!(Kernel::new("k", 2, 2, vec![1.0; 3]).is_err());
    assert!(FilterPlan::new(&[], &FilterOptions::default(), 1, 5, 5).is_err());
    let f = [Filter::parse("sobel").unwrap()];
    assert!(FilterPlan::new(&f, &FilterOptions::default().stride([0]), 1, 5, 5).is_err());
    assert!(FilterPlan::new(&f, &FilterOptions::default().stride([1, 1, 1]), 1, 5, 5).is_err());
    assert!(FilterPlan::new(&f, &FilterOptions::default().tile_rows(0), 1, 5, 5).is_err());
    // A plan refuses an image of another size.
    let plan = FilterPlan::new(&f, &FilterOptions::default(), 1, 5, 5).unwrap();
    assert!(plan.run(&image(), &mut |_, _| {}).is_err());
}

#[test]
fn kernels_load_from_npy() {
    let dir = std::env::temp_dir().join(format!("convkit-filter-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("k.npy");
    let mut f = std::fs::File::create(&p).unwrap();
    convkit::npy::write_npy_to(&mut f, &[2, 3], &[1.0f64, 0.0, -1.0, 2.0, 0.0, -2.0]).unwrap();
    let Filter::Linear(k) = Filter::parse(p.to_str().unwrap()).unwrap() else { panic!() };
    assert_eq!((k.rows(), k.cols(), k.weights()), (2, 3, &[1.0, 0.0, -1.0, 2.0, 0.0, -2.0][..]));
    let p3 = dir.join("k3.npy");
    let mut f = std::fs::File::create(&p3).unwrap();
    convkit::npy::write_npy_to(&mut f, &[1, 1, 2], &[1.0f32, 2.0]).unwrap();
    assert!(Filter::parse(p3.to_str().unwrap()).is_err());
    let pn = dir.join("kn.npy");
    let mut f = std::fs::File::create(&pn).unwrap();
    convkit::npy::write_npy_to(&mut f, &[2], &[1.0f32, f32::INFINITY]).unwrap();
    assert!(Filter::parse(pn.to_str().unwrap()).unwrap_err().to_string().contains("finite"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ranges_map_responses_to_pixels() {
    let mut v = vec![-100.0f64, 0.0, 127.5, 255.0, 400.0];
    RangeMap::Clip.apply(&mut v, 255.0);
    assert_eq!(v, vec![0.0, 0.0, 0.5, 1.0, 1.0]);
    let mut v = vec![-127.5f64, 0.0, 510.0];
    RangeMap::Abs.apply(&mut v, 255.0);
    assert_eq!(v, vec![0.5, 0.0, 1.0]);
    let mut v = vec![-2.0f64, 0.0, 2.0, f64::NAN];
    RangeMap::MinMax.apply(&mut v, 255.0);
    assert_eq!(v, vec![0.0, 0.5, 1.0, 0.0]);
    let mut v = vec![-4.0f64, 1.0, 2.0];
    RangeMap::AbsMinMax.apply(&mut v, 255.0);
    assert_eq!(v, vec![1.0, 0.0, 1.0 / 3.0]);
    let mut flat = vec![5.0f64; 3];
    RangeMap::MinMax.apply(&mut flat, 255.0);
    assert_eq!(flat, vec![0.0; 3]);
    let f = |s: &str| Filter::parse(s).unwrap();
    for (specs, want) in [
        (vec!["gaussian:2"], RangeMap::Clip),
        (vec!["sharpen", "emboss", "box:5", "unsharp:1:1", "motion:9:30", "identity"], RangeMap::Clip),
        (vec!["sobel-x"], RangeMap::AbsMinMax),
        (vec!["sobel"], RangeMap::AbsMinMax),
        (vec!["laplacian"], RangeMap::AbsMinMax),
        (vec!["vertical-edge"], RangeMap::AbsMinMax),
        (vec!["1,1;1,1"], RangeMap::MinMax),
    ] {
        let fs: Vec<Filter> = specs.iter().map(|s| f(s)).collect();
        assert_eq!(RangeMap::default_for(&fs), want, "{specs:?}");
    }
    for r in ["clip", "abs", "minmax", "abs+minmax"] {
        assert_eq!(r.parse::<RangeMap>().unwrap().to_string(), r);
    }
    assert!("stretch".parse::<RangeMap>().is_err());
}

#[test]
fn planar_images_convert_to_and_from_interleaved_samples() {
    let rgba: Vec<u16> = (0..2 * 3 * 4).map(|v| v * 1000).collect();
    let p = Planar::<f32>::from_interleaved(&rgba, 4, 2, 3).unwrap();
    assert_eq!(p.plane(3), &[3000.0, 7000.0, 11000.0, 15000.0, 19000.0, 23000.0]);
    assert_eq!(p.to_interleaved(|v| v as u16), rgba);
    let colour = p.take_channels(0, 3).unwrap();
    let alpha = p.take_channels(3, 1).unwrap();
    assert_eq!(colour.append_channels(&alpha).unwrap(), p);
    assert!(p.take_channels(3, 2).is_err());
    assert!(Planar::<f32>::from_interleaved(&rgba, 4, 2, 2).is_err());
    assert!(Planar::<f32>::from_interleaved::<u8>(&[], 0, 2, 2).is_err());
    let picked = alpha.pick(&[1], &[0, 2]).unwrap();
    assert_eq!(picked.data, vec![15000.0, 23000.0]);
    assert!(alpha.pick(&[2], &[0]).is_err());
    assert!(alpha.luma().is_err());
}

#[test]
fn a_bank_is_one_weight_tensor_reading_the_same_pixels() {
    let k = |s: &str| match Filter::parse(s).unwrap() {
        Filter::Linear(k) => k,
        _ => unreachable!(),
    };
    let kernels = [k("sobel-x"), k("gaussian:1:5"), k("1,2;3,4")];
    let w = bank(&kernels).unwrap();
    assert_eq!(w.shape, vec![3, 1, 5, 5]);
    // One convolution with the bank = each kernel alone, under same padding.
    let img = image();
    let x: Vec<f64> = img.data.clone();
    let desc = convkit::ConvDesc::new().padding(Padding::Same).padding_mode(PadMode::Reflect);
    let y = convkit::raw::conv(&x, &[1, 1, 5, 6], &w.data, &w.shape, None, &desc).unwrap();
    for (i, spec) in ["sobel-x", "gaussian:1:5", "1,2;3,4"].iter().enumerate() {
        let alone = filter(&[spec], &FilterOptions::default(), &img);
        assert_close(spec, &y.data[i * 30..][..30], &alone.data, 1e-12);
    }
}

/// The responses of one stage computed the way the filter did before it filtered in strips:
/// whole-image plans, the border applied by the convolution (a separable kernel as a padded
/// column pass, then a padded row pass), the magnitude as √(x² + y²) in f64.
fn whole_image_stage(st: &convkit::filter::Stage, opts: &FilterOptions, img: &Planar<f32>) -> Vec<f32> {
    use convkit::{ConvDesc, ConvPlan, ConvProblem, PlanOptions};
    let (c, h, w) = (img.channels, img.height, img.width);
    let (ay, ax) = (&st.problem.axes[0], &st.problem.axes[1]);
    let conv = |x: &[f32],
                shape: [usize; 4],
                k: (usize, usize),
                wts: &[f64],
                s: [usize; 2],
                d: [usize; 2],
                pad: Vec<usize>| {
        let desc = ConvDesc::new()
            .stride(s)
            .dilation(d)
            .padding(Padding::Explicit(pad))
            .padding_mode(opts.border)
            .groups(c)
            .flip(opts.flip);
        let p = ConvProblem::new(&desc, &shape, &[c, 1, k.0, k.1]).unwrap();
        let wv: Vec<f32> = (0..c).flat_map(|_| wts.iter().map(|&v| v as f32)).collect();
        let out = ConvPlan::new(&p, &wv, &PlanOptions::new()).unwrap().run(x, None).unwrap();
        (out, p.output_shape())
    };
    let one = |k: &Kernel| -> Vec<f32> {
        match k.factors().filter(|_| st.separable) {
            Some((col, row)) => {
                let (mid, ms) = conv(
                    &img.data,
                    [1, c, h, w],
                    (k.rows(), 1),
                    col,
                    [ay.stride, 1],
                    [ay.dilation, 1],
                    vec![ay.pad_begin, 0, ay.pad_end, 0],
                );
                conv(
                    &mid,
                    [ms[0], ms[1], ms[2], ms[3]],
                    (1, k.cols()),
                    row,
                    [1, ax.stride],
                    [1, ax.dilation],
                    vec![0, ax.pad_begin, 0, ax.pad_end],
                )
                .0
            }
            None => {
                conv(
                    &img.data,
                    [1, c, h, w],
                    (k.rows(), k.cols()),
                    k.weights(),
                    [ay.stride, ax.stride],
                    [ay.dilation, ax.dilation],
                    vec![ay.pad_begin, ax.pad_begin, ay.pad_end, ax.pad_end],
                )
                .0
            }
        }
    };
    match &st.filter {
        Filter::Linear(k) => one(k),
        Filter::Magnitude { x, y, .. } => one(x)
            .iter()
            .zip(&one(y))
            .map(|(&a, &b)| ((a as f64) * (a as f64) + (b as f64) * (b as f64)).sqrt() as f32)
            .collect(),
    }
}

/// Strips that slide down the image (rows shared by two tiles moved, not read again), rows
/// converted from interleaved 8- and 16-bit samples all channels at once, mirrored border
/// columns padded into the strip: bit for bit the whole-image passes, for every border, odd
/// and even sizes, strides, dilation, tiny images, 1, 3 and 4 channels and tile heights from
/// one row to the whole image.
#[test]
fn strips_equal_whole_image_passes_bit_for_bit() {
    let borders = ["reflect", "symmetric", "replicate", "circular", "zeros", "constant:3"];
    let specs = ["gaussian:1.3", "box:4", "sobel", "gaussian:2:3", "1,2;3,4", "identity", "scharr"];
    let mut seed = 7u64;
    for (h, w) in [(1, 1), (2, 3), (9, 8), (13, 70), (20, 33)] {
        for c in [1, 3, 4] {
            let n = c * h * w;
            let samples8: Vec<u8> = (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (seed >> 56) as u8
                })
                .collect();
            let samples16: Vec<u16> =
                samples8.iter().enumerate().map(|(i, &v)| (v as u16 * 257) ^ i as u16).collect();
            for spec in specs {
                for border in borders {
                    for opts in [
                        FilterOptions::default(),
                        FilterOptions::default().stride([2]).flip(true),
                        FilterOptions::default().dilation([2, 1]).padding(Padding::Full),
                        FilterOptions::default().padding(Padding::Explicit(vec![0, 2, 1, 0])).stride([3, 2]),
                        // Stride 1, uneven padding, flipped: a 3×3 magnitude straight from the strip.
                        FilterOptions::default().padding(Padding::Explicit(vec![2, 0, 0, 1])).flip(true),
                    ] {
                        let opts = opts.border(border.parse().unwrap());
                        let f = [Filter::parse(spec).unwrap()];
                        let Ok(plan) = FilterPlan::new(&f, &opts, c, h, w) else { continue };
                        for (name, src) in [
                            ("u8", Planar::<f32>::from_interleaved(&samples8, c, h, w).unwrap()),
                            ("u16", Planar::<f32>::from_interleaved(&samples16, c, h, w).unwrap()),
                        ] {
                            let want = whole_image_stage(&plan.stages()[0], &opts, &src);
                            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                            for tile in [None, Some(1), Some(2), Some(5)] {
                                let o = match tile {
                                    Some(t) => opts.clone().tile_rows(t),
                                    None => opts.clone(),
                                };
                                let plan = FilterPlan::new(&f, &o, c, h, w).unwrap();
                                let mut got = Vec::new();
                                let mut rows = Vec::new();
                                let mut sink = |r0: usize, r: usize, t: &[f32]| {
                                    rows.push((r0, r));
                                    got.push(t.to_vec());
                                    Ok(())
                                };
                                let run = |src: &dyn RowSource<f32>, sink: &mut TileSink<'_, f32>| {
                                    plan.run_into(src, sink, &mut |_, _| {}).unwrap()
                                };
                                if name == "u8" {
                                    run(&Interleaved::new(&samples8, c, h, w).unwrap(), &mut sink);
                                } else {
                                    run(&Interleaved::new(&samples16, c, h, w).unwrap(), &mut sink);
                                }
                                // Reassemble the planes from the tiles.
                                let (oc, oh, ow) = plan.output_size();
                                let mut whole = vec![0f32; oc * oh * ow];
                                for ((r0, r), t) in rows.iter().zip(&got) {
                                    for (ch, part) in t.chunks_exact(r * ow).enumerate() {
                                        whole[(ch * oh + r0) * ow..][..r * ow].copy_from_slice(part);
                                    }
                                }
                                let what =
                                    format!("{spec} {border} {opts:?} {name} {c}x{h}x{w} tile {tile:?}");
                                assert_eq!(bits(&whole), bits(&want), "{what}");
                                // The extremes a min-max range asks for first (a magnitude's
                                // from its two responses, without the roots).
                                for abs in [false, true] {
                                    let ext = |src: &dyn RowSource<f32>| {
                                        plan.extremes(src, abs, &mut |_, _| {}).unwrap()
                                    };
                                    let got = if name == "u8" {
                                        ext(&Interleaved::new(&samples8, c, h, w).unwrap())
                                    } else {
                                        ext(&Interleaved::new(&samples16, c, h, w).unwrap())
                                    };
                                    let vals = whole.iter().map(|&v| if abs { v.abs() } else { v });
                                    let want = vals
                                        .filter(|v| v.is_finite())
                                        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), v| {
                                            (l.min(v), h.max(v))
                                        });
                                    assert_eq!(got, want, "{what} extremes, abs {abs}");
                                }
                                let planar = plan.run(&src, &mut |_, _| {}).unwrap();
                                assert_eq!(bits(&planar.data), bits(&want), "{what} planar");
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A gradient magnitude of a user's 3×3 pair that no flip maps onto itself, at stride 1 (the
/// pair is computed straight from the strip): bit for bit the whole-image convolutions, for
/// every border, both flips, uneven padding and tile heights.
#[test]
fn a_custom_3x3_pair_from_the_strip_equals_its_convolutions() {
    let k = |m: &str| parse_matrix(m).unwrap();
    let f =
        [Filter::Magnitude { name: "pair".into(), x: k("1,2,0;3,4,5;0,1,7"), y: k("-2,0,1;5,-3,0;0,6,1") }];
    let (c, h, w) = (2, 9, 37);
    let data: Vec<f32> = (0..c * h * w).map(|i| ((i * 37) % 23) as f32).collect();
    let src = Planar::new(c, h, w, data).unwrap();
    for border in ["reflect", "symmetric", "replicate", "circular", "zeros", "constant:3"] {
        for flip in [false, true] {
            for pad in [Padding::Same, Padding::Explicit(vec![2, 0, 0, 1]), Padding::Valid] {
                let opts = FilterOptions::default().padding(pad).flip(flip).border(border.parse().unwrap());
                let plan = FilterPlan::new(&f, &opts, c, h, w).unwrap();
                let want = whole_image_stage(&plan.stages()[0], &opts, &src);
                for t in [None, Some(1), Some(4)] {
                    let o = if let Some(t) = t { opts.clone().tile_rows(t) } else { opts.clone() };
                    let got = FilterPlan::new(&f, &o, c, h, w).unwrap().run(&src, &mut |_, _| {}).unwrap();
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got.data), bits(&want), "{border} flip {flip} {o:?}");
                }
            }
        }
    }
}
