//! `convkit train-demo`: trains a small CNN (conv 8 k3 → ReLU → max-pool 2 → conv 16 k3 → ReLU
//! → max-pool 2 → a convolution classifier) on procedurally generated shapes, with gradients
//! from convkit's own `conv_backward` and `pool_backward`, and writes the weights and pictures.

pub mod data;
pub mod net;

use crate::font;
use crate::image_io::CliResult;
use crate::output::Outputs;
use clap::Args;
use convkit::Tensor;
use data::{CLASSES, SIDE};
use net::{Config, Forward, Trained, LAYERS, PARAMS};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `convkit train-demo`.
#[derive(Args, Debug)]
pub struct TrainDemoArgs {
    /// Folder to write into (created if missing; files of the same names in it are replaced)
    #[arg(long, default_value = "convkit-train-demo", value_name = "DIR")]
    out: PathBuf,
    /// Seed of the data, the initial weights and the batch order
    #[arg(long, default_value = "1", value_name = "N")]
    seed: String,
    /// Worker threads (default: all cores); the weights are bit-identical for a given seed and count
    #[arg(long, value_name = "N")]
    threads: Option<String>,
}

/// The weight files of a model folder, in [`PARAMS`] order.
pub fn weight_files(dir: &Path) -> Vec<PathBuf> {
    PARAMS.iter().map(|(name, _)| dir.join(format!("{name}.npy"))).collect()
}

/// Run `f` on `threads` worker threads (all cores when `None`).
pub fn with_threads<R: Send>(threads: Option<usize>, f: impl FnOnce() -> R + Send) -> CliResult<R> {
    match threads {
        None => Ok(f()),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map(|pool| pool.install(f))
            .map_err(|err| format!("invalid threads {n}: {err}")),
    }
}

pub fn run(a: TrainDemoArgs) -> CliResult<()> {
    let seed: u64 = a
        .seed
        .trim()
        .parse()
        .map_err(|_| format!("invalid seed {}: expected a non-negative integer", a.seed))?;
    let threads = match &a.threads {
        None => None,
        Some(t) => Some(
            t.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| (1..=1024).contains(&n))
                .ok_or_else(|| format!("invalid threads {t}: expected an integer from 1 to 1024"))?,
        ),
    };
    if a.out.exists() && !a.out.is_dir() {
        return Err(format!("invalid out {}: exists and is not a folder", a.out.display()));
    }
    let config = Config { seed, ..Config::default() };
    let start = Instant::now();
    let t = with_threads(threads, || net::train(&config))?.map_err(|err| format!("train-demo: {err}"))?;
    let secs = start.elapsed().as_secs_f64();
    // The first held-out image of every class, for the feature-map picture: the first one.
    let sample = 0;
    let f = t
        .net
        .forward(&t.test_x[sample * SIDE * SIDE..][..SIDE * SIDE], 1)
        .map_err(|err| format!("train-demo: {err}"))?;
    std::fs::create_dir_all(&a.out).map_err(|err| format!("invalid out {}: {err}", a.out.display()))?;
    let mut out = Outputs::default();
    for ((name, shape), (path, p)) in PARAMS.iter().zip(weight_files(&a.out).into_iter().zip(&t.net.params)) {
        out = out.add(name, &path, Tensor { shape: shape.to_vec(), data: p.clone() });
    }
    out.add_bytes("filters", a.out.join("filters.png"), png_grey(&filters_picture(&t.net.params[0]))?);
    out.add_bytes("loss", a.out.join("loss.png"), loss_picture(&t)?);
    out.add_bytes(
        "feature-maps",
        a.out.join("feature-maps.png"),
        png_grey(&feature_maps_picture(&f, CLASSES[t.test_y[sample]]))?,
    );
    out.commit()?;
    println!("{}", summary(&t, &config, secs, &a.out));
    Ok(())
}

/// The one-line summary.
pub fn summary(t: &Trained, c: &Config, secs: f64, out: &Path) -> String {
    format!(
        "train-demo: held-out accuracy {:.1}% ({}/{}) after {} epochs on {} images, loss {:.3} -> {:.3}, seed {}, {:.1} s; wrote {}",
        100.0 * t.accuracy,
        (t.accuracy * t.test_len as f64).round(),
        t.test_len,
        c.epochs,
        t.train_len,
        t.epoch_loss.first().copied().unwrap_or(f64::NAN),
        t.epoch_loss.last().copied().unwrap_or(f64::NAN),
        c.seed,
        secs,
        out.display()
    )
}

/// A grey picture: width, height, row-major bytes.
pub struct Grey {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl Grey {
    fn new(width: usize, height: usize) -> Grey {
        Grey { width, height, data: vec![255; width * height] }
    }

    /// `map` (h×w) drawn at `(x, y)`, each value a `zoom`×`zoom` square; values are mapped
    /// to 0..255 by `level`.
    fn blit(&mut self, x: usize, y: usize, map: &[f32], w: usize, zoom: usize, level: impl Fn(f32) -> u8) {
        let h = map.len() / w.max(1);
        for r in 0..h * zoom {
            for c in 0..w * zoom {
                let (px, py) = (x + c, y + r);
                if px < self.width && py < self.height {
                    self.data[py * self.width + px] = level(map[(r / zoom) * w + c / zoom]);
                }
            }
        }
    }

    fn text(&mut self, x: usize, y: usize, s: &str, scale: usize) {
        font::draw_text(&mut self.data, self.width, x, y, s, scale, 0);
    }
}

/// Signed values around mid-grey, scaled by the largest magnitude.
fn diverging(map: &[f32]) -> impl Fn(f32) -> u8 {
    let m = map.iter().fold(0f32, |a, v| a.max(v.abs()));
    move |v| if m > 0.0 { (127.5 + 127.5 * v / m).round().clamp(0.0, 255.0) as u8 } else { 128 }
}

/// Non-negative values from black (0) to white (the map's largest value).
fn sequential(map: &[f32]) -> impl Fn(f32) -> u8 {
    let (lo, hi) = map.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    move |v| if hi > lo { (255.0 * (v - lo) / (hi - lo)).round().clamp(0.0, 255.0) as u8 } else { 0 }
}

/// The first layer's 8 kernels (3×3), enlarged, mid-grey = 0.
pub fn filters_picture(w1: &[f32]) -> Grey {
    const ZOOM: usize = 24;
    const GAP: usize = 12;
    let k = PARAMS[0].1[0];
    let title = "conv1 kernels (grey = 0)";
    let label_h = font::HEIGHT * 2 + 6;
    let width = (GAP + k * (3 * ZOOM + GAP)).max(font::text_width(title, 2) + 2 * GAP);
    let mut g = Grey::new(width, GAP + label_h * 2 + 3 * ZOOM + GAP);
    g.text(GAP, GAP, title, 2);
    for i in 0..k {
        let m = &w1[i * 9..][..9];
        let x = GAP + i * (3 * ZOOM + GAP);
        g.text(x, GAP + label_h, &format!("{i}"), 2);
        g.blit(x, GAP + 2 * label_h, m, 3, ZOOM, diverging(m));
    }
    g
}

/// Every layer's maps for one image: the input, then one row per layer (maps scaled each to
/// its own range), then the class scores.
pub fn feature_maps_picture(f: &Forward<f32>, truth: &str) -> Grey {
    const GAP: usize = 8;
    let zoom_for = |h: usize| (56 / h).max(1);
    let label_h = font::HEIGHT * 2 + 6;
    let rows: Vec<(String, &[f32], [usize; 3])> =
        std::iter::once((format!("input ({truth})"), &f.x[..], [1, SIDE, SIDE]))
            .chain(
                LAYERS
                    .iter()
                    .zip(f.layers())
                    .filter(|(n, _)| !n.starts_with("classifier"))
                    .map(|(n, (d, s))| (format!("{n}  {}x{}x{}", s[0], s[1], s[2]), d, s)),
            )
            .collect();
    let width =
        rows.iter().map(|(_, _, s)| GAP + s[0] * (s[2] * zoom_for(s[1]) + GAP)).max().unwrap_or(0).max(600);
    let scores_h = label_h + CLASSES.len() * (font::HEIGHT * 2 + 4) + GAP;
    let height =
        GAP + rows.iter().map(|(_, _, s)| label_h + s[1] * zoom_for(s[1]) + GAP).sum::<usize>() + scores_h;
    let mut g = Grey::new(width, height);
    let mut y = GAP;
    for (name, d, s) in &rows {
        g.text(GAP, y, name, 2);
        y += label_h;
        let z = zoom_for(s[1]);
        let plane = s[1] * s[2];
        for c in 0..s[0] {
            let m = &d[c * plane..][..plane];
            let x = GAP + c * (s[2] * z + GAP);
            if name.starts_with("conv") {
                g.blit(x, y, m, s[2], z, diverging(m));
            } else {
                g.blit(x, y, m, s[2], z, sequential(m));
            }
        }
        y += s[1] * z + GAP;
    }
    g.text(GAP, y, "classifier scores (softmax)", 2);
    y += label_h;
    let z: Vec<f64> = f.logits.iter().map(|&v| f64::from(v)).collect();
    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = z.iter().map(|v| (v - m).exp()).sum();
    for (i, name) in CLASSES.iter().enumerate() {
        let p = (z[i] - m).exp() / sum;
        g.text(GAP, y, &format!("{name:<10} {p:.3}"), 2);
        let bar_x = GAP + font::text_width("horizontal  1.000 ", 2);
        let bar_w = ((width - bar_x - GAP) as f64 * p).round() as usize;
        for r in y..y + font::HEIGHT * 2 - 4 {
            for c in bar_x..bar_x + bar_w {
                g.data[r * width + c] = 60;
            }
        }
        y += font::HEIGHT * 2 + 4;
    }
    g
}

/// The training curve, drawn with plotters: the loss of every step (light) and every epoch's
/// mean (dark); labels in the built-in bitmap font.
pub fn loss_picture(t: &Trained) -> CliResult<Vec<u8>> {
    use plotters::prelude::*;
    const W: u32 = 720;
    const H: u32 = 420;
    let (left, top, right, bottom) = (70u32, 40u32, 20u32, 50u32);
    let mut rgb = vec![255u8; (W * H * 3) as usize];
    let steps = t.step_loss.len().max(1);
    let ymax = t.step_loss.iter().copied().fold(0.0, f64::max).max(1e-6) * 1.05;
    let e = |err: String| format!("cannot draw loss: {err}");
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (W, H)).into_drawing_area();
        let area = root.margin(top, bottom, left, right);
        let mut chart = ChartBuilder::on(&area)
            .build_cartesian_2d(0f64..steps as f64, 0f64..ymax)
            .map_err(|err| e(err.to_string()))?;
        let grid = RGBColor(225, 225, 225);
        for i in 0..=5 {
            let v = ymax * f64::from(i) / 5.0;
            chart
                .draw_series(LineSeries::new([(0.0, v), (steps as f64, v)], grid))
                .map_err(|err| e(err.to_string()))?;
        }
        chart
            .draw_series(LineSeries::new(
                t.step_loss.iter().enumerate().map(|(i, &l)| (i as f64 + 0.5, l)),
                RGBColor(150, 180, 230),
            ))
            .map_err(|err| e(err.to_string()))?;
        let per = steps as f64 / t.epoch_loss.len().max(1) as f64;
        chart
            .draw_series(LineSeries::new(
                t.epoch_loss.iter().enumerate().map(|(i, &l)| ((i as f64 + 0.5) * per, l)),
                RGBColor(20, 60, 160).stroke_width(3),
            ))
            .map_err(|err| e(err.to_string()))?;
        chart
            .draw_series(LineSeries::new([(0.0, 0.0), (0.0, ymax)], BLACK))
            .map_err(|err| e(err.to_string()))?;
        chart
            .draw_series(LineSeries::new([(0.0, 0.0), (steps as f64, 0.0)], BLACK))
            .map_err(|err| e(err.to_string()))?;
        root.present().map_err(|err| e(err.to_string()))?;
    }
    // Labels: drawn into a grey mask, then blended into the picture as black ink.
    let (w, h) = (W as usize, H as usize);
    let mut mask = vec![255u8; w * h];
    let title = format!(
        "training loss (cross-entropy): every step, and the mean of each of {} epochs",
        t.epoch_loss.len()
    );
    font::draw_text(&mut mask, w, left as usize, 12, &title, 1, 0);
    let plot_h = (H - top - bottom) as usize;
    for i in 0..=5 {
        let v = ymax * i as f64 / 5.0;
        let y = top as usize + plot_h - plot_h * i / 5;
        let s = format!("{v:.2}");
        font::draw_text(
            &mut mask,
            w,
            (left as usize).saturating_sub(font::text_width(&s, 1) + 6),
            y.saturating_sub(4),
            &s,
            1,
            0,
        );
    }
    let plot_w = (W - left - right) as usize;
    for i in 0..=4 {
        let s = i * steps / 4;
        let x = left as usize + plot_w * i / 4;
        let label = s.to_string();
        font::draw_text(
            &mut mask,
            w,
            x.saturating_sub(font::text_width(&label, 1) / 2),
            h - bottom as usize + 8,
            &label,
            1,
            0,
        );
    }
    font::draw_text(&mut mask, w, left as usize + plot_w / 2 - 40, h - 20, "training step", 1, 0);
    for (i, m) in mask.iter().enumerate() {
        if *m == 0 {
            rgb[3 * i..3 * i + 3].copy_from_slice(&[0, 0, 0]);
        }
    }
    let img = image::RgbImage::from_raw(W, H, rgb).ok_or("cannot draw loss: buffer size")?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|err| format!("cannot encode loss.png: {err}"))?;
    Ok(png)
}

/// A grey picture encoded as PNG.
pub fn png_grey(g: &Grey) -> CliResult<Vec<u8>> {
    let img = image::GrayImage::from_raw(g.width as u32, g.height as u32, g.data.clone())
        .ok_or("cannot encode a picture: buffer size")?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|err| format!("cannot encode a picture: {err}"))?;
    Ok(png)
}
