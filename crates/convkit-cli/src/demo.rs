//! `convkit demo`: the classic filters, a filter bank as one multi-channel convolution with
//! ReLU and max pooling, and stride/dilation variants, on an image embedded in the binary.
//! Writes PNGs and a self-contained `index.html`, and prints a table of every stage.

use crate::font;
use crate::html::{self, Figure, Section};
use crate::image_io::{decode_image_bytes, encode_image, CliResult};
use clap::Args;
use convkit::filter::{bank, Filter, FilterOptions, FilterPlan, Kernel, Planar, RangeMap, Stage};
use convkit::{
    raw, receptive_field, Axis, ConvDesc, ConvProblem, LayerAxis, PadMode, Padding, PoolDesc, PoolKind,
};
use image::ImageFormat;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The embedded input: scikit-image's "camera" (CC0), see `assets/SOURCES.md`.
const CAMERA: &[u8] = include_bytes!("../assets/camera.png");

/// The classic filters: output file stem and `--kernel` spec.
const CLASSIC: &[(&str, &str)] = &[
    ("vertical-edge", "vertical-edge"),
    ("horizontal-edge", "horizontal-edge"),
    ("sobel-x", "sobel-x"),
    ("sobel-y", "sobel-y"),
    ("sobel", "sobel"),
    ("laplacian", "laplacian"),
    ("gaussian", "gaussian:1.5"),
    ("sharpen", "sharpen"),
    ("emboss", "emboss"),
];

#[derive(Args)]
pub struct DemoArgs {
    /// Folder to write into (created if missing; files of the same names in it are replaced)
    #[arg(long, default_value = "convkit-demo", value_name = "DIR")]
    out: PathBuf,
}

/// One row of the stage table.
struct Row {
    stage: String,
    input: Vec<usize>,
    output: Vec<usize>,
    kernel: String,
    stride: String,
    padding: String,
    dilation: String,
    params: u64,
    rf: String,
    time: Duration,
}

const HEAD: [&str; 10] =
    ["stage", "input", "output", "kernel", "stride", "padding", "dilation", "params", "RF (px)", "time"];

impl Row {
    fn cells(&self) -> Vec<String> {
        vec![
            self.stage.clone(),
            dims(&self.input),
            dims(&self.output),
            self.kernel.clone(),
            self.stride.clone(),
            self.padding.clone(),
            self.dilation.clone(),
            self.params.to_string(),
            self.rf.clone(),
            format!("{:.1} ms", self.time.as_secs_f64() * 1e3),
        ]
    }
}

fn dims(v: &[usize]) -> String {
    v.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")
}

/// `same (1,1,1,1)`: the rule and the resolved pads, top, left, bottom, right.
fn pads(rule: &Padding, axes: &[Axis]) -> String {
    let p: Vec<usize> = axes.iter().map(|a| a.pad_begin).chain(axes.iter().map(|a| a.pad_end)).collect();
    let p = if p.iter().all(|&v| v == p[0]) { p[0].to_string() } else { dims(&p).replace('x', ",") };
    format!("{rule} ({p})")
}

fn per_axis(axes: &[Axis], f: fn(&Axis) -> usize) -> String {
    dims(&axes.iter().map(f).collect::<Vec<_>>())
}

/// Receptive field, per axis, of a stack of layers given as their problem axes.
fn rf(layers: &[&[Axis]]) -> String {
    let rank = layers[0].len();
    let sizes: Vec<usize> = (0..rank)
        .map(|a| {
            let l: Vec<LayerAxis> = layers
                .iter()
                .map(|ax| LayerAxis {
                    kernel: ax[a].kernel,
                    stride: ax[a].stride,
                    dilation: ax[a].dilation,
                    pad_begin: ax[a].pad_begin,
                })
                .collect();
            receptive_field(&l).last().map_or(1, |r| r.size as usize)
        })
        .collect();
    dims(&sizes)
}

fn stage_row(name: &str, st: &Stage, padding: &Padding, time: Duration) -> Row {
    let p = &st.problem;
    let (kh, kw) = st.filter.size();
    let kernel = match &st.filter {
        Filter::Magnitude { .. } => format!("2 x {kh}x{kw}, magnitude"),
        Filter::Linear(_) if st.separable => format!("{kh}x{kw} = {kh}x1 * 1x{kw}"),
        Filter::Linear(_) => format!("{kh}x{kw}"),
    };
    Row {
        stage: name.to_string(),
        input: p.input_shape(),
        output: p.output_shape(),
        kernel,
        stride: per_axis(&p.axes, |a| a.stride),
        padding: pads(padding, &p.axes),
        dilation: per_axis(&p.axes, |a| a.dilation),
        params: st.params_per_channel() * p.in_channels as u64,
        rf: rf(&[&p.axes]),
        time,
    }
}

/// One filtered output ready to show.
struct Output {
    stem: String,
    title: String,
    matrix: String,
    caption: String,
    png: Vec<u8>,
    width: usize,
}

impl Output {
    fn figure(&self) -> Figure<'_> {
        Figure {
            title: self.title.clone(),
            matrices: vec![(String::new(), self.matrix.clone())],
            wide: false,
            caption: self.caption.clone(),
            png: &self.png,
            width: self.width / 2,
        }
    }
}

fn linear(f: &Filter) -> Option<&Kernel> {
    match f {
        Filter::Linear(k) => Some(k),
        Filter::Magnitude { .. } => None,
    }
}

fn matrix_of(f: &Filter) -> String {
    match f {
        Filter::Linear(k) if k.rows() * k.cols() > 49 => match k.factors() {
            Some((col, row)) => {
                let taps = |v: &[f64]| {
                    let t: Vec<String> = v.iter().map(|x| format!("{x:.4}")).collect();
                    t.chunks(4).map(|c| c.join(" ")).collect::<Vec<_>>().join("\n")
                };
                if col == row {
                    format!("{}x{} = g * g', g =\n{}", k.rows(), k.cols(), taps(col))
                } else {
                    format!(
                        "{}x{} = column * row\ncolumn:\n{}\nrow:\n{}",
                        k.rows(),
                        k.cols(),
                        taps(col),
                        taps(row)
                    )
                }
            }
            None => format!("{}x{} kernel", k.rows(), k.cols()),
        },
        Filter::Linear(k) => k.to_matrix_string(),
        Filter::Magnitude { x, y, .. } => {
            format!("sqrt(x² + y²) of\nx:\n{}\ny:\n{}", x.to_matrix_string(), y.to_matrix_string())
        }
    }
}

/// Filter `img` with one filter, timed, and turn the result into a PNG with the default range.
fn filter_one(
    stem: &str,
    spec: &str,
    img: &Planar<f32>,
    opts: &FilterOptions,
    rows: &mut Vec<Row>,
) -> CliResult<Output> {
    let e = |err: convkit::Error| format!("demo {stem}: {err}");
    let f = Filter::parse(spec).map_err(e)?;
    let t = Instant::now();
    let plan =
        FilterPlan::new(std::slice::from_ref(&f), opts, img.channels, img.height, img.width).map_err(e)?;
    let mut y = plan.run(img, &mut |_, _| {}).map_err(e)?;
    let time = t.elapsed();
    let row = stage_row(stem, &plan.stages()[0], &opts.padding, time);
    let range = RangeMap::default_for(std::slice::from_ref(&f));
    range.apply(&mut y.data, 255.0);
    let png = encode_image(&y, false, false, ImageFormat::Png, Path::new(&format!("{stem}.png")))?;
    let caption = format!(
        "{} → {}, stride {}, padding {}, dilation {}, reflect border, range {range}",
        dims(&row.input),
        dims(&row.output),
        row.stride,
        row.padding,
        row.dilation
    );
    rows.push(row);
    Ok(Output {
        stem: stem.to_string(),
        title: if spec == stem { spec.to_string() } else { format!("{stem} ({spec})") },
        matrix: matrix_of(&f),
        caption,
        png,
        width: y.width,
    })
}

/// The labelled grid of feature maps `(K, h, w)`: each map stretched to its own maximum,
/// shown twice its size, its kernel's name above it.
fn feature_grid(maps: &[f32], k: usize, h: usize, w: usize, labels: &[String], title: &str) -> Planar<f32> {
    const COLS: usize = 4;
    const ZOOM: usize = 2;
    const GAP: usize = 12;
    const SCALE: usize = 2;
    let label_h = font::HEIGHT * SCALE + 8;
    let title_h = font::HEIGHT * SCALE + 14;
    let grid_rows = k.div_ceil(COLS);
    let (tw, th) = (w * ZOOM, h * ZOOM);
    let width = (GAP + COLS * (tw + GAP)).max(2 * GAP + font::text_width(title, SCALE));
    let height = title_h + grid_rows * (label_h + th + GAP);
    let mut buf = vec![255u8; width * height];
    font::draw_text(&mut buf, width, GAP, GAP, title, SCALE, 0);
    for (m, label) in labels.iter().enumerate().take(k) {
        let (gx, gy) = (GAP + (m % COLS) * (tw + GAP), title_h + (m / COLS) * (label_h + th + GAP));
        font::draw_text(&mut buf, width, gx, gy, label, SCALE, 0);
        let map = &maps[m * h * w..][..h * w];
        let max = map.iter().copied().fold(0.0f32, f32::max);
        let s = if max > 0.0 { 255.0 / max } else { 0.0 };
        for y in 0..th {
            for x in 0..tw {
                let v = map[(y / ZOOM) * w + x / ZOOM] * s;
                buf[(gy + label_h + y) * width + gx + x] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    Planar { channels: 1, height, width, data: buf.into_iter().map(|v| v as f32 / 255.0).collect() }
}

pub fn run(a: DemoArgs) -> CliResult<()> {
    let start = Instant::now();
    if a.out.exists() && !a.out.is_dir() {
        return Err(format!("invalid out {}: exists and is not a folder", a.out.display()));
    }
    let img = decode_image_bytes(CAMERA)?.colour;
    let (h, w) = (img.height, img.width);
    let mut rows = Vec::new();
    let same = FilterOptions::default();

    // 1. The classic filters, one by one.
    let mut classic = Vec::new();
    for (stem, spec) in CLASSIC {
        classic.push(filter_one(stem, spec, &img, &same, &mut rows)?);
    }

    // 2. Stride and dilation change the output size (valid padding makes it visible).
    let valid = FilterOptions::default().padding(Padding::Valid);
    let mut variants = vec![
        filter_one("vertical-edge-valid", "vertical-edge", &img, &valid, &mut rows)?,
        filter_one("vertical-edge-stride2", "vertical-edge", &img, &valid.clone().stride([2]), &mut rows)?,
        filter_one(
            "vertical-edge-dilation2",
            "vertical-edge",
            &img,
            &valid.clone().dilation([2]),
            &mut rows,
        )?,
    ];
    for (o, what) in variants.iter_mut().zip(["valid padding", "stride 2", "dilation 2"]) {
        o.title = format!("vertical-edge, {what}");
    }

    // 3. The linear kernels as ONE convolution with 8 output channels, then ReLU and 2x2 max
    //    pooling, on the image halved by 2x2 average pooling (keeps the demo fast).
    let e = |err: convkit::Error| format!("demo bank: {err}");
    let filters: Vec<Filter> =
        CLASSIC.iter().map(|(_, s)| Filter::parse(s)).collect::<Result<_, _>>().map_err(e)?;
    let kernels: Vec<Kernel> = filters.iter().filter_map(linear).cloned().collect();
    let labels: Vec<String> = kernels.iter().map(|k| k.name().to_string()).collect();
    let nk = kernels.len();

    let t = Instant::now();
    let avg = PoolDesc::new(PoolKind::Avg).kernel([2]);
    let (small, _) = raw::pool(&img.data, &[1, 1, h, w], &avg).map_err(e)?;
    let avg_p = convkit::PoolProblem::new(&avg, &[1, 1, h, w]).map_err(e)?;
    rows.push(Row {
        stage: "avg-pool (downscale)".into(),
        input: vec![1, 1, h, w],
        output: small.shape.clone(),
        kernel: "2x2 mean".into(),
        stride: per_axis(&avg_p.axes, |a| a.stride),
        padding: pads(&Padding::Valid, &avg_p.axes),
        dilation: "1x1".into(),
        params: 0,
        rf: rf(&[&avg_p.axes]),
        time: t.elapsed(),
    });

    let t = Instant::now();
    let wb = bank(&kernels).map_err(e)?;
    let wf: Vec<f32> = wb.data.iter().map(|&v| v as f32).collect();
    let desc = ConvDesc::new().padding(Padding::Same).padding_mode(PadMode::Reflect);
    let bank_p = ConvProblem::new(&desc, &small.shape, &wb.shape).map_err(e)?;
    let mut maps = raw::conv(&small.data, &small.shape, &wf, &wb.shape, None, &desc).map_err(e)?;
    let bank_rf = rf(&[&avg_p.axes, &bank_p.axes]);
    rows.push(Row {
        stage: format!("bank conv ({nk} filters)"),
        input: small.shape.clone(),
        output: maps.shape.clone(),
        kernel: dims(&wb.shape),
        stride: per_axis(&bank_p.axes, |a| a.stride),
        padding: pads(&Padding::Same, &bank_p.axes),
        dilation: per_axis(&bank_p.axes, |a| a.dilation),
        params: bank_p.params(false),
        rf: bank_rf.clone(),
        time: t.elapsed(),
    });

    let t = Instant::now();
    maps.data.iter_mut().for_each(|v| *v = v.max(0.0));
    rows.push(Row {
        stage: "relu".into(),
        input: maps.shape.clone(),
        output: maps.shape.clone(),
        kernel: "-".into(),
        stride: "-".into(),
        padding: "-".into(),
        dilation: "-".into(),
        params: 0,
        rf: bank_rf,
        time: t.elapsed(),
    });

    let t = Instant::now();
    let maxp = PoolDesc::new(PoolKind::Max).kernel([2]);
    let (pooled, _) = raw::pool(&maps.data, &maps.shape, &maxp).map_err(e)?;
    let max_p = convkit::PoolProblem::new(&maxp, &maps.shape).map_err(e)?;
    rows.push(Row {
        stage: "max-pool".into(),
        input: maps.shape.clone(),
        output: pooled.shape.clone(),
        kernel: "2x2 max".into(),
        stride: per_axis(&max_p.axes, |a| a.stride),
        padding: pads(&Padding::Valid, &max_p.axes),
        dilation: per_axis(&max_p.axes, |a| a.dilation),
        params: 0,
        rf: rf(&[&avg_p.axes, &bank_p.axes, &max_p.axes]),
        time: t.elapsed(),
    });
    let (ph, pw) = (pooled.shape[2], pooled.shape[3]);
    let title = format!("{nk} feature maps: conv {} > relu > max-pool 2x2", dims(&wb.shape));
    let grid = feature_grid(&pooled.data, nk, ph, pw, &labels, &title);
    let grid_png = encode_image(&grid, false, false, ImageFormat::Png, Path::new("feature-maps.png"))?;

    // 4. The page and the files.
    let (total_ms, table): (f64, Vec<Vec<String>>) =
        (rows.iter().map(|r| r.time.as_secs_f64() * 1e3).sum(), rows.iter().map(Row::cells).collect());
    let bank_text: Vec<(String, String)> =
        kernels.iter().map(|k| (k.name().to_string(), matrix_of(&Filter::Linear(k.clone())))).collect();
    let sections = vec![
        Section {
            heading: "Input".into(),
            intro: "Images on this page are shown at half their pixel size, so outputs of different \
                    sizes keep their relative scale; the PNG files beside this page are full size."
                .into(),
            figures: vec![Figure {
                title: "input.png".into(),
                matrices: vec![],
                wide: false,
                caption: format!(
                    "scikit-image \"camera\" (CC0), {w}x{h}, 8-bit grey, embedded in the binary."
                ),
                png: CAMERA,
                width: w / 2,
            }],
        },
        Section {
            heading: "Classic filters".into(),
            intro: "Each kernel is cross-correlated with the image (as OpenCV's filter2D does) with same \
                    padding and a reflect border (BORDER_REFLECT_101). Edge responses are shown as \
                    |response| stretched to black-white; blur, sharpen and emboss are clipped to 0-255."
                .into(),
            figures: classic.iter().map(Output::figure).collect(),
        },
        Section {
            heading: "Stride and dilation".into(),
            intro: "With valid padding the output shrinks by the effective kernel minus one; stride 2 \
                    halves it, dilation 2 spreads the 3x3 taps over 5x5."
                .into(),
            figures: variants.iter().map(Output::figure).collect(),
        },
        Section {
            heading: "A filter bank as one convolution".into(),
            intro: format!(
                "The {nk} linear kernels above, zero-padded to a common size, form one weight tensor \
                 {} applied in a single convolution to the image halved by 2x2 average pooling; then \
                 ReLU and 2x2 max pooling give {} feature maps, each stretched to its own maximum.",
                dims(&wb.shape),
                dims(&pooled.shape)
            ),
            figures: vec![Figure {
                title: "feature-maps.png".into(),
                matrices: bank_text,
                wide: true,
                caption: String::new(),
                png: &grid_png,
                width: grid.width,
            }],
        },
    ];
    let lead = format!(
        "Everything on this page was computed by convkit's convolution and pooling in {total_ms:.0} ms; \
         the table at the end lists every stage."
    );
    let page = html::page(
        &lead,
        &sections,
        &HEAD,
        &table,
        "Input image: scikit-image sample data \"camera\" by Lav Varshney, CC0. Page written by `convkit demo`.",
    );

    let mut staged = crate::output::Outputs::default();
    let out = |name: &str| a.out.join(name);
    staged.add_bytes("out", out("input.png"), CAMERA.to_vec());
    for o in classic.iter().chain(&variants) {
        staged.add_bytes("out", out(&format!("{}.png", o.stem)), o.png.clone());
    }
    staged.add_bytes("out", out("feature-maps.png"), grid_png.clone());
    staged.add_bytes("out", out("index.html"), page.into_bytes());
    let n_files = 3 + classic.len() + variants.len();
    std::fs::create_dir_all(&a.out).map_err(|err| format!("cannot write out {}: {err}", a.out.display()))?;
    staged.commit()?;

    print_table(&table);
    println!(
        "\nwrote {n_files} files to {} in {:.2} s; open {} in a browser",
        a.out.display(),
        start.elapsed().as_secs_f64(),
        a.out.join("index.html").display()
    );
    Ok(())
}

fn print_table(table: &[Vec<String>]) {
    let mut widths: Vec<usize> = HEAD.iter().map(|h| h.chars().count()).collect();
    for row in table {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let s: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, &w))| if i >= 7 { format!("{c:>w$}") } else { format!("{c:<w$}") })
            .collect();
        println!("{}", s.join("  ").trim_end());
    };
    line(&HEAD.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    line(&widths.iter().map(|&w| "-".repeat(w)).collect::<Vec<_>>());
    for row in table {
        line(row);
    }
}
