//! `convkit filter INPUT -o OUTPUT --kernel SPEC…`: filter an image (or a `.npy` array) with
//! named or inline kernels, per channel, and map the responses back to pixels.

use crate::image_io::{
    encode_image, encode_levels, encode_npy, human, output_kind, planar_from_npy, read_image_input,
    read_input_npy, sixteen_bit, CliResult, Depth, FileKind, ImageInfo, Input, Levels, Loaded, RawImage,
};
use clap::Args;
use convkit::filter::{
    Filter, FilterOptions, FilterPlan, Interleaved, Planar, RangeMap, RowSource, NAMED_KERNELS,
};
use convkit::npy::{NpyArray, NpyElement};
use convkit::{parse_list, PadMode, Padding, Scalar};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;

/// The `--help` text after the options: kernels, borders, ranges, formats.
pub fn after_help() -> String {
    let mut s = String::from("Kernels (--kernel, repeat to stack; applied in order):\n");
    for (name, what) in NAMED_KERNELS {
        s += &format!("  {name:<30} {what}\n");
    }
    let matrix = "\"1,0,-1;2,0,-2;1,0,-1\"";
    s += &format!("  {matrix:<30} an inline matrix: rows separated by ';', values by ',' (a/b allowed)\n");
    s += &format!("  {:<30} a 1-D or 2-D .npy array of weights\n", "FILE.npy");
    s += "
Kernels are cross-correlated, as OpenCV's filter2D and deep-learning libraries do (--flip for true
convolution); separable kernels (box, gaussian) run as two 1-D passes. Every channel is filtered on
its own (a depthwise convolution); alpha is passed through (taken at each output pixel's window
centre when the size changes). --stride applies once, to the last kernel of a stack; dilation,
padding and border apply to every kernel.

Padding P (default same): an integer; rows,cols; top,left,bottom,right; valid | same | same-lower |
full. `same` keeps the size at stride 1; an even-sized kernel puts the extra row/column of padding
at the END (bottom/right), as everywhere in convkit. OpenCV's default anchor puts it at the start:
use same-lower to match filter2D with even kernels.

Borders (--border, default reflect), as OpenCV's BORDER_* on the row `abcd`:
  reflect     dcb|abcd|cba   BORDER_REFLECT_101 (BORDER_DEFAULT), NumPy 'reflect'
  symmetric   cba|abcd|dcb   BORDER_REFLECT, NumPy 'symmetric' (repeats the edge pixel)
  replicate   aaa|abcd|ddd   BORDER_REPLICATE, NumPy 'edge'
  circular    bcd|abcd|abc   BORDER_WRAP, NumPy 'wrap'
  zeros       000|abcd|000   BORDER_CONSTANT with 0
  constant:V  VVV|abcd|VVV   BORDER_CONSTANT with V (in stored units: 0-255 for 8-bit images)

Ranges (--range) map responses to pixels; W is white (255 8-bit, 65535 16-bit, 1.0 float):
  clip        v/W, clipped to [0,1]            default when the kernels' sums multiply to 1
  abs         |v|/W, clipped to [0,1]
  minmax      [min,max] stretched to [0,1]     default for other sums
  abs+minmax  |v|, then stretched to [0,1]     default for edge kernels (sum 0, and the magnitudes)
Min and max are taken over all colour channels together.

Files: PNG, JPEG, BMP, TIFF, PNM in and out; grey, grey+alpha, RGB, RGBA; 8- and 16-bit (16-bit
input stays 16-bit in PNG, TIFF and PNM; .ppm/.pgm/.pnm are written as binary P6/P5, .pam as
PAM). `.npy` in: (H, W) or (H, W, C), f32 or f64, values taken as intensities with white 1.0.
`.npy` out: the raw float responses in the input's units (0-255 for 8-bit images, as filter2D
with a float output depth), (H, W) or (H, W, C) with alpha last; --range given explicitly maps
them to [0,1] first.

Exit status: 0 on success, 2 on any bad input (one line on stderr, nothing written).";
    s
}

#[derive(Args)]
pub struct FilterArgs {
    /// Input image (PNG, JPEG, BMP, TIFF, PNM) or .npy array (H, W[, C])
    input: PathBuf,
    /// Output file; its extension picks the format (.png .jpg .bmp .tif .pgm/.ppm/.pnm/.pam .npy)
    #[arg(short, long)]
    output: PathBuf,
    /// Kernel: a name with optional :parameters, an inline matrix or a .npy file (see below); repeat to stack
    #[arg(short, long = "kernel", value_name = "SPEC", required = true, allow_hyphen_values = true)]
    kernels: Vec<String>,
    /// Stride: one integer, or rows,cols (applies to the last kernel)
    #[arg(long, default_value = "1", value_name = "S")]
    stride: String,
    /// Dilation: one integer, or rows,cols
    #[arg(long, default_value = "1", value_name = "D")]
    dilation: String,
    /// Padding: integers or valid | same | same-lower | full (see below)
    #[arg(long, default_value = "same", value_name = "P")]
    padding: String,
    /// Border: reflect | symmetric | replicate | circular | zeros | constant:V (see below)
    #[arg(long, default_value = "reflect", value_name = "B")]
    border: String,
    /// Mapping of responses to pixels: clip | abs | minmax | abs+minmax (default depends on the kernels)
    #[arg(long, value_name = "R")]
    range: Option<String>,
    /// Convert a colour image to grey (0.299 R + 0.587 G + 0.114 B) before filtering
    #[arg(long)]
    grey: bool,
    /// True convolution: reverse every kernel
    #[arg(long)]
    flip: bool,
    /// Memory budget: bytes, or with a K, M, G or T suffix (powers of 1024); default half of
    /// physical memory. Inputs whose decoding and filtering would need more are refused before
    /// they are decoded
    #[arg(long, value_name = "BYTES")]
    max_memory: Option<String>,
}

/// Half of physical memory (4 GiB where it cannot be read): the default `--max-memory`.
pub fn default_budget() -> u64 {
    physical_memory().map_or(4 << 30, |m| m / 2)
}

#[cfg(unix)]
fn physical_memory() -> Option<u64> {
    // SAFETY: sysconf only reads system configuration values.
    let (pages, size) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
    (pages > 0 && size > 0).then(|| (pages as u64).saturating_mul(size as u64))
}

#[cfg(not(unix))]
fn physical_memory() -> Option<u64> {
    None
}

/// `--max-memory`: a byte count, optionally with a K/M/G/T suffix (powers of 1024, `B` or `iB`
/// allowed after it), and a fraction allowed before a suffix (`1.5G`).
pub fn parse_bytes(arg: &str, s: &str) -> CliResult<u64> {
    let bad = || format!("invalid {arg} {s}: expected a positive byte count like 4000000, 512M or 2G");
    let t = s.trim();
    let t = t.strip_suffix("iB").or_else(|| t.strip_suffix('B')).unwrap_or(t);
    let (num, scale) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(bad()),
            };
            (&t[..i], (1u64 << shift) as f64)
        }
        _ => (t, 1.0),
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    let bytes = v * scale;
    if !(1.0..1.8e19).contains(&bytes) || num.contains(['e', 'E', 'n', 'N', 'i', 'I']) {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// A refusal naming what was asked for and the budget.
fn over_budget(input: &std::path::Path, what: &str, need: u64, budget: u64) -> String {
    format!(
        "input {}: {what} needs about {} to decode and filter, over the memory budget of {} \
         (--max-memory; default half of physical memory)",
        input.display(),
        human(need),
        human(budget)
    )
}

pub fn run(a: FilterArgs) -> CliResult<()> {
    let e = |err: convkit::Error| err.to_string();
    let filters = a.kernels.iter().map(|k| Filter::parse(k)).collect::<Result<Vec<_>, _>>().map_err(e)?;
    let opts = FilterOptions::default()
        .stride(parse_list("stride", &a.stride).map_err(e)?)
        .dilation(parse_list("dilation", &a.dilation).map_err(e)?)
        .padding(a.padding.parse::<Padding>().map_err(e)?)
        .border(a.border.parse::<PadMode>().map_err(|err| err.to_string().replace("padding-mode", "border"))?)
        .flip(a.flip);
    let range = a.range.as_deref().map(str::parse::<RangeMap>).transpose().map_err(e)?;
    let out_kind = output_kind(&a.output)?;
    let budget = match &a.max_memory {
        Some(m) => parse_bytes("max-memory", m)?,
        None => default_budget(),
    };
    let job = Job { filters, opts, range, out_kind, grey: a.grey, output: a.output };
    let npy_check = |shape: &[usize], elem: u64| -> CliResult<()> {
        let (h, w, c) = match shape[..] {
            [h, w] => (h, w, 1),
            [h, w, c] => (h, w, c),
            _ => return Ok(()), // planar_from_npy names the problem
        };
        let (h, w, c) = (h as u64, w as u64, c as u64);
        let info =
            ImageInfo { width: w, height: h, channels: c, alpha: false, decoded_bytes: h * w * c * elem };
        let need = job.memory_needed(&info, elem, false)?;
        if need > budget {
            return Err(over_budget(&a.input, &format!("a {w}x{h}x{c} array"), need, budget));
        }
        Ok(())
    };
    match read_input_npy(&a.input)? {
        Some(NpyArray::F32(t)) => {
            npy_check(&t.shape, 4)?;
            job.run(planar_from_npy(&a.input, &t.shape, &t.data)?)
        }
        Some(NpyArray::F64(t)) => {
            npy_check(&t.shape, 8)?;
            job.run(planar_from_npy(&a.input, &t.shape, &t.data)?)
        }
        None => match read_image_input(&a.input, budget, &mut |info| {
            let integer = info.decoded_bytes <= info.width * info.height * info.channels * 2;
            let direct = integer && !info.alpha && job.direct_for(info.channels as usize);
            let need = job.memory_needed(info, 4, direct)?;
            if need > budget {
                let what = format!("a {}x{} image", info.width, info.height);
                return Err(over_budget(&a.input, &what, need, budget));
            }
            Ok(())
        })? {
            Input::Raw(raw) if job.direct(&raw) => job.run_direct(raw),
            Input::Raw(raw) => job.run(raw.loaded()?),
            Input::Loaded(l) => job.run(l),
        },
    }
}

struct Job {
    filters: Vec<Filter>,
    opts: FilterOptions,
    range: Option<RangeMap>,
    out_kind: FileKind,
    grey: bool,
    output: PathBuf,
}

impl Job {
    /// Whether a decoded grey or RGB image without alpha goes straight from its samples to
    /// output levels ([`Job::run_direct`]): for image outputs, unless it needs a grey
    /// conversion.
    fn direct(&self, raw: &RawImage) -> bool {
        self.direct_for(raw.channels)
    }

    fn direct_for(&self, channels: usize) -> bool {
        matches!(self.out_kind, FileKind::Image(_)) && !(self.grey && channels != 1)
    }

    /// An upper estimate of the bytes filtering an input described by `info` takes at its
    /// peak: the decoded samples, the float planes (`elem` bytes a value) and their grey or
    /// rescaled copies unless the samples go `direct` to output levels, every intermediate
    /// stage of a stack, the responses, the output samples and their encoding, and up to 64 MiB
    /// for tiles and workspaces. Also checks the filters against the size (the same errors the
    /// plan gives later).
    fn memory_needed(&self, info: &ImageInfo, elem: u64, direct: bool) -> CliResult<u64> {
        let colour = info.channels - u64::from(info.alpha);
        let c = if self.grey && colour == 3 { 1 } else { colour };
        let size = |v: u64| usize::try_from(v).map_err(|_| format!("input: {v} is too large"));
        let plan =
            FilterPlan::new(&self.filters, &self.opts, size(c)?, size(info.height)?, size(info.width)?)
                .map_err(|e| e.to_string())?;
        let stages = plan.stages();
        let inter: u64 = stages[..stages.len() - 1]
            .iter()
            .map(|s| c * s.problem.axes[0].output as u64 * s.problem.axes[1].output as u64 * elem)
            .fold(0, u64::saturating_add);
        let (oc, oh, ow) = plan.output_size();
        let out_values = (oc as u64).saturating_mul(oh as u64).saturating_mul(ow as u64);
        let sample = match self.out_kind {
            FileKind::Npy => elem,
            FileKind::Image(_) => 2,
        };
        let px_in = info.width.saturating_mul(info.height);
        let px_out = (oh as u64).saturating_mul(ow as u64);
        let alpha = u64::from(info.alpha);
        let working = if direct {
            // Responses kept for a min-max range, then levels and their encoding.
            out_values.saturating_mul(4 + 2 * sample)
        } else {
            let planes = (colour + alpha).saturating_mul(px_in).saturating_mul(2 * elem);
            let out = (oc as u64 + alpha).saturating_mul(px_out).saturating_mul(elem + 2 * sample);
            planes.saturating_add(out)
        };
        // Tiles hold at most 4 Mi values of input rows and of responses (fewer for a small image).
        let tiles = (c + alpha).saturating_mul(px_in.max(px_out)).saturating_mul(4 * elem).min(64 << 20);
        Ok(info.decoded_bytes.saturating_add(inter).saturating_add(working).saturating_add(tiles + (1 << 20)))
    }

    /// The image-to-image job without whole-image float planes: the plan reads rows straight
    /// from the decoded samples, and each tile of responses is mapped to output levels as it
    /// comes (for clip and abs; min-max ranges keep the responses, interleaved, until the
    /// extremes are known). The same values as [`Job::run`]'s.
    fn run_direct(&self, raw: RawImage) -> CliResult<()> {
        let e = |err: convkit::Error| err.to_string();
        let FileKind::Image(format) = self.out_kind else {
            return Err("internal: direct filtering needs an image output".into());
        };
        let depth = raw.depth();
        let (c, h, w) = (raw.channels, raw.height, raw.width);
        let plan = FilterPlan::new(&self.filters, &self.opts, c, h, w).map_err(e)?;
        let bar = progress_bar(&plan);
        let range = self.range.unwrap_or_else(|| RangeMap::default_for(&self.filters));
        let sixteen = sixteen_bit(depth == Depth::U16, format);
        let result = match &raw.samples {
            Levels::U8(v) => {
                let src = Interleaved::new(v, c, h, w).map_err(e)?;
                filter_levels(&plan, &src, range, depth.full_scale(), sixteen, &bar)
            }
            Levels::U16(v) => {
                let src = Interleaved::new(v, c, h, w).map_err(e)?;
                filter_levels(&plan, &src, range, depth.full_scale(), sixteen, &bar)
            }
        };
        drop(raw);
        let result = result.and_then(|levels| {
            self.writing(&bar);
            let (oc, oh, ow) = plan.output_size();
            let (head, body) = encode_levels(levels, oc, oh, ow, false, format, &self.output)?;
            let mut staged = crate::output::Outputs::default();
            staged.add_parts("output", self.output.clone(), head, body);
            staged.commit()
        });
        bar.finish_and_clear();
        result
    }

    /// Switch the progress bar to "writing".
    fn writing(&self, bar: &ProgressBar) {
        if !bar.is_hidden() {
            if let Ok(style) = ProgressStyle::with_template("{spinner} writing {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.set_message(self.output.display().to_string());
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
        }
    }

    fn run<T: Scalar + NpyElement>(&self, input: Loaded<T>) -> CliResult<()> {
        let e = |err: convkit::Error| err.to_string();
        let Loaded { mut colour, alpha, depth } = input;
        if self.grey && colour.channels != 1 {
            if colour.channels != 3 {
                return Err(format!(
                    "invalid grey: the input has {} colour channels; --grey needs RGB (3)",
                    colour.channels
                ));
            }
            colour = colour.luma().map_err(e)?;
        }
        let (c, h, w) = (colour.channels, colour.height, colour.width);
        let plan = FilterPlan::new(&self.filters, &self.opts, c, h, w).map_err(e)?;
        let bar = progress_bar(&plan);
        let result = self.filter_and_write(&plan, colour, alpha, depth, &bar);
        bar.finish_and_clear();
        result
    }

    fn filter_and_write<T: Scalar + NpyElement>(
        &self,
        plan: &FilterPlan,
        colour: Planar<T>,
        alpha: Option<Planar<T>>,
        depth: Depth,
        bar: &ProgressBar,
    ) -> CliResult<()> {
        let e = |err: convkit::Error| err.to_string();
        let mut out =
            plan.run(&colour, &mut |done, total| bar.set_position(done * 1000 / total.max(1))).map_err(e)?;
        self.writing(bar);
        // Alpha is not filtered: it is carried over, taken at each output pixel's window centre
        // when the size changed.
        let alpha = match alpha {
            Some(a) if (out.height, out.width) == (colour.height, colour.width) => Some(a),
            Some(a) => Some(a.pick(&plan.centres(0), &plan.centres(1)).map_err(e)?),
            None => None,
        };
        drop(colour);
        let to_unit = |mut a: Planar<T>| {
            let s = 1.0 / depth.full_scale();
            a.data.iter_mut().for_each(|v| *v = T::from_f64(v.to_f64() * s));
            a
        };
        let bytes = match self.out_kind {
            FileKind::Npy => {
                // Raw responses unless a range was asked for.
                if let Some(r) = self.range {
                    r.apply(&mut out.data, depth.full_scale());
                }
                let out = match alpha {
                    Some(a) => {
                        let a = if self.range.is_some() { to_unit(a) } else { a };
                        out.append_channels(&a).map_err(e)?
                    }
                    None => out,
                };
                encode_npy(&out)?
            }
            FileKind::Image(format) => {
                let range = self.range.unwrap_or_else(|| RangeMap::default_for(&self.filters));
                range.apply(&mut out.data, depth.full_scale());
                let has_alpha = alpha.is_some();
                let unit = match alpha {
                    Some(a) => out.append_channels(&to_unit(a)).map_err(e)?,
                    None => out,
                };
                encode_image(&unit, has_alpha, depth == Depth::U16, format, &self.output)?
            }
        };
        let mut staged = crate::output::Outputs::default();
        staged.add_bytes("output", self.output.clone(), bytes);
        staged.commit()
    }
}

/// Run `plan` over `src` and map its responses through `range` to interleaved 8- or 16-bit
/// levels, tile by tile. The min-max ranges need the extremes of every response first: they
/// run the plan twice, the first time only for the extremes, rather than hold the whole
/// image's responses (four bytes a sample, against one or two for the levels).
fn filter_levels(
    plan: &FilterPlan,
    src: &dyn RowSource<f32>,
    range: RangeMap,
    full_scale: f64,
    sixteen: bool,
    bar: &ProgressBar,
) -> CliResult<Levels> {
    let e = |err: convkit::Error| err.to_string();
    let (c, h, w) = plan.output_size();
    let n = c * h * w;
    let passes = if range.is_global() { 2 } else { 1 };
    let (lo, scale) = if range.is_global() {
        let (lo, hi) = plan
            .extremes(src, range.takes_abs(), &mut |done, total| {
                bar.set_position(done * 1000 / (passes * total).max(1))
            })
            .map_err(e)?;
        range.bounds_from(lo, hi, full_scale)
    } else {
        range.bounds_from(0.0, 0.0, full_scale)
    };
    let sink_into = |levels: &mut dyn FnMut(&[f32], usize)| {
        plan.run_into(
            src,
            &mut |_, rows, tile| {
                levels(tile, rows * w);
                Ok(())
            },
            &mut |done, total| {
                bar.set_position(((passes - 1) * total + done) * 1000 / (passes * total).max(1))
            },
        )
        .map_err(e)
    };
    if sixteen {
        let mut out: Vec<u16> = reserve(n)?;
        sink_into(&mut |tile, px| interleave(&mut out, tile, c, px, |v, d| range.levels(v, lo, scale, d)))?;
        Ok(Levels::U16(out))
    } else {
        let mut out: Vec<u8> = reserve(n)?;
        sink_into(&mut |tile, px| interleave(&mut out, tile, c, px, |v, d| range.levels(v, lo, scale, d)))?;
        Ok(Levels::U8(out))
    }
}

/// An empty vector with room for `n` values, or an error naming the size.
fn reserve<S>(n: usize) -> CliResult<Vec<S>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| format!("cannot allocate the output image ({n} samples)"))?;
    Ok(v)
}

/// Append a tile of `c` planes of `px` values each to `dst`, interleaved, through `f`, which
/// maps a block of one plane's values to samples (a block of pixels at a time, through a
/// small buffer).
fn interleave<S: Copy + Default>(
    dst: &mut Vec<S>,
    tile: &[f32],
    c: usize,
    px: usize,
    f: impl Fn(&[f32], &mut [S]),
) {
    const BLOCK: usize = 512;
    let mut lv = vec![S::default(); c * BLOCK];
    let mut i = 0;
    while i < px {
        let n = BLOCK.min(px - i);
        // Each plane's block first (a loop that vectorises), then interleaved.
        for (ch, lv) in lv.chunks_exact_mut(BLOCK).enumerate() {
            f(&tile[ch * px + i..][..n], &mut lv[..n]);
        }
        match c {
            1 => dst.extend_from_slice(&lv[..n]),
            3 => {
                let (r, gb) = lv.split_at(BLOCK);
                let (g, b) = gb.split_at(BLOCK);
                let at = dst.len();
                dst.resize(at + 3 * n, S::default());
                for (((px, &r), &g), &b) in
                    dst[at..].chunks_exact_mut(3).zip(&r[..n]).zip(&g[..n]).zip(&b[..n])
                {
                    px.copy_from_slice(&[r, g, b]);
                }
            }
            _ => dst
                .extend((0..n).flat_map(|j| (0..c).map(move |ch| (ch, j))).map(|(ch, j)| lv[ch * BLOCK + j])),
        }
        i += n;
    }
}

/// A progress bar on stderr when it is a terminal and the job is big enough to wait for;
/// hidden otherwise. Positions are in thousandths of the work.
fn progress_bar(plan: &FilterPlan) -> ProgressBar {
    let (c, h, w) = plan.output_size();
    let big = (c as u64) * (h as u64) * (w as u64) >= 1 << 20;
    if !(big && std::io::stderr().is_terminal()) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("filtering [{bar:40}] {percent:>3}%  {elapsed} elapsed, ~{eta} left")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
