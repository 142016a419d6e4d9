//! Reading and writing images (PNG, JPEG, BMP, TIFF, PNM through the `image` crate) and `.npy`
//! arrays as planar float images, and the all-or-nothing writer for byte outputs: every file is
//! written beside its target and renamed into place only when all of them are complete.

use convkit::filter::{quantize, Planar};
use convkit::npy::{read_npy, write_npy_to, NpyArray, NpyElement};
use convkit::Scalar;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::pnm::PnmEncoder;
use image::{DynamicImage, ImageBuffer, ImageDecoder, ImageFormat, ImageReader, Luma, LumaA, Rgb, Rgba};
use std::io::Cursor;
use std::path::Path;

pub type CliResult<T> = Result<T, String>;

/// Sample depth of an image file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// 8-bit integer samples, white = 255.
    U8,
    /// 16-bit integer samples, white = 65535.
    U16,
    /// Floating point (`.npy`, float TIFF), white = 1.0.
    Float,
}

impl Depth {
    /// The value of white.
    pub fn full_scale(self) -> f64 {
        match self {
            Depth::U8 => 255.0,
            Depth::U16 => 65535.0,
            Depth::Float => 1.0,
        }
    }
}

/// A decoded input: colour channels to filter, an optional alpha channel passed through, and
/// the depth they came in.
pub struct Loaded<T> {
    pub colour: Planar<T>,
    pub alpha: Option<Planar<T>>,
    pub depth: Depth,
}

/// An input or output file kind, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Npy,
    Image(ImageFormat),
}

const OUTPUT_EXTENSIONS: &str = ".png, .jpg/.jpeg, .bmp, .tif/.tiff, .pgm/.ppm/.pnm/.pam or .npy";

/// The kind of an output file from its extension.
pub fn output_kind(path: &Path) -> CliResult<FileKind> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    Ok(match ext.as_str() {
        "npy" => FileKind::Npy,
        "png" => FileKind::Image(ImageFormat::Png),
        "jpg" | "jpeg" => FileKind::Image(ImageFormat::Jpeg),
        "bmp" => FileKind::Image(ImageFormat::Bmp),
        "tif" | "tiff" => FileKind::Image(ImageFormat::Tiff),
        "pgm" | "ppm" | "pnm" | "pam" => FileKind::Image(ImageFormat::Pnm),
        _ => {
            return Err(format!(
                "invalid output {}: unsupported file type; use {OUTPUT_EXTENSIONS}",
                path.display()
            ))
        }
    })
}

/// The input array of a `.npy` file, or `None` if `path` is not a `.npy` file.
pub fn read_input_npy(path: &Path) -> CliResult<Option<NpyArray>> {
    let is_npy = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    if !is_npy {
        return Ok(None);
    }
    read_npy("input", path).map(Some).map_err(|e| e.to_string())
}

/// A `.npy` array `(H, W)` or `(H, W, C)` as a planar image of floating-point depth.
pub fn planar_from_npy<T: Scalar + Into<f64>>(
    path: &Path,
    shape: &[usize],
    data: &[T],
) -> CliResult<Loaded<T>> {
    let (h, w, c) = match shape[..] {
        [h, w] => (h, w, 1),
        [h, w, c] => (h, w, c),
        _ => {
            return Err(format!(
                "input {}: shape {shape:?} is not an image; expected (H, W) or (H, W, C), channels last",
                path.display()
            ))
        }
    };
    if h == 0 || w == 0 || c == 0 {
        return Err(format!("input {}: shape {shape:?} is empty", path.display()));
    }
    let colour = Planar::from_interleaved(data, c, h, w).map_err(|e| e.to_string())?;
    Ok(Loaded { colour, alpha: None, depth: Depth::Float })
}

/// A byte count for people: `512 B`, `1.5 GiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// What an image file's header says, before anything is decoded.
#[derive(Debug, Clone, Copy)]
pub struct ImageInfo {
    pub width: u64,
    pub height: u64,
    /// Channels, alpha included.
    pub channels: u64,
    pub alpha: bool,
    /// Bytes the decoded image takes.
    pub decoded_bytes: u64,
}

/// Decode an image file (any of the supported formats, recognised by content). `check` sees
/// the header's size before anything is decoded and may refuse it; the decoder itself is
/// limited to `max_alloc` bytes, so a decompression bomb never reaches the allocator.
pub fn read_image_input(
    path: &Path,
    max_alloc: u64,
    check: &mut dyn FnMut(&ImageInfo) -> CliResult<()>,
) -> CliResult<Input> {
    let err = |reason: String| format!("input {}: {reason}", path.display());
    let reader = ImageReader::open(path)
        .map_err(|e| err(format!("cannot open: {e}")))?
        .with_guessed_format()
        .map_err(|e| err(format!("cannot read: {e}")))?;
    match reader.format() {
        Some(
            ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Bmp | ImageFormat::Tiff | ImageFormat::Pnm,
        ) => {}
        Some(f) => return Err(err(format!("unsupported image format {f:?}"))),
        None => return Err(err("not a PNG, JPEG, BMP, TIFF, PNM or .npy file".into())),
    }
    let mut reader = reader;
    // The memory budget, not the default 512 MiB (which would refuse a 16-bit 8000x8000 RGBA
    // image), bounds what the decoder may allocate.
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_alloc);
    reader.limits(limits.clone());
    let decode_err = |e: image::ImageError| {
        match e {
        image::ImageError::Limits(_) => err(format!(
            "decoding needs more than the memory budget of {} (--max-memory; default half of physical memory)",
            human(max_alloc)
        )),
        e => err(format!("cannot decode: {e}")),
    }
    };
    let decoder = reader.into_decoder().map_err(decode_err)?;
    let (w, h) = decoder.dimensions();
    let colour = decoder.color_type();
    check(&ImageInfo {
        width: w.into(),
        height: h.into(),
        channels: colour.channel_count().into(),
        alpha: colour.has_alpha(),
        decoded_bytes: decoder.total_bytes(),
    })?;
    limits.reserve(decoder.total_bytes()).map_err(decode_err)?;
    let img = DynamicImage::from_decoder(decoder).map_err(decode_err)?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let raw = |samples, channels| Ok(Input::Raw(RawImage { samples, channels, height: h, width: w }));
    match img {
        DynamicImage::ImageLuma8(b) => raw(Levels::U8(b.into_raw()), 1),
        DynamicImage::ImageRgb8(b) => raw(Levels::U8(b.into_raw()), 3),
        DynamicImage::ImageLuma16(b) => raw(Levels::U16(b.into_raw()), 1),
        DynamicImage::ImageRgb16(b) => raw(Levels::U16(b.into_raw()), 3),
        img => decoded(img).map(Input::Loaded).map_err(err),
    }
}

/// A decoded image file: integer grey or RGB samples as decoded (to filter without a planar
/// copy), or anything else (alpha, float) as planes.
pub enum Input {
    Raw(RawImage),
    Loaded(Loaded<f32>),
}

/// Integer samples without alpha, interleaved `(height, width, channels)`.
pub struct RawImage {
    pub samples: Levels,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl RawImage {
    /// The sample depth.
    pub fn depth(&self) -> Depth {
        match self.samples {
            Levels::U8(_) => Depth::U8,
            Levels::U16(_) => Depth::U16,
        }
    }

    /// As `f32` planes.
    pub fn loaded(self) -> CliResult<Loaded<f32>> {
        let depth = self.depth();
        let (c, h, w) = (self.channels, self.height, self.width);
        let colour = match &self.samples {
            Levels::U8(v) => Planar::from_interleaved(v, c, h, w),
            Levels::U16(v) => Planar::from_interleaved(v, c, h, w),
        }
        .map_err(|e| e.to_string())?;
        Ok(Loaded { colour, alpha: None, depth })
    }
}

/// Decode image bytes (the demo's embedded image).
pub fn decode_image_bytes(bytes: &[u8]) -> CliResult<Loaded<f32>> {
    let img = image::load_from_memory(bytes).map_err(|e| format!("embedded image: {e}"))?;
    decoded(img)
}

pub(crate) fn decoded(img: DynamicImage) -> CliResult<Loaded<f32>> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    fn split<S: Copy + Into<f64>>(
        raw: &[S],
        channels: usize,
        alpha: bool,
        h: usize,
        w: usize,
        depth: Depth,
    ) -> CliResult<Loaded<f32>> {
        let all = Planar::<f32>::from_interleaved(raw, channels, h, w).map_err(|e| e.to_string())?;
        if !alpha {
            return Ok(Loaded { colour: all, alpha: None, depth });
        }
        let colour = all.take_channels(0, channels - 1).map_err(|e| e.to_string())?;
        let a = all.take_channels(channels - 1, 1).map_err(|e| e.to_string())?;
        Ok(Loaded { colour, alpha: Some(a), depth })
    }
    match img {
        DynamicImage::ImageLuma8(b) => split(b.as_raw(), 1, false, h, w, Depth::U8),
        DynamicImage::ImageLumaA8(b) => split(b.as_raw(), 2, true, h, w, Depth::U8),
        DynamicImage::ImageRgb8(b) => split(b.as_raw(), 3, false, h, w, Depth::U8),
        DynamicImage::ImageRgba8(b) => split(b.as_raw(), 4, true, h, w, Depth::U8),
        DynamicImage::ImageLuma16(b) => split(b.as_raw(), 1, false, h, w, Depth::U16),
        DynamicImage::ImageLumaA16(b) => split(b.as_raw(), 2, true, h, w, Depth::U16),
        DynamicImage::ImageRgb16(b) => split(b.as_raw(), 3, false, h, w, Depth::U16),
        DynamicImage::ImageRgba16(b) => split(b.as_raw(), 4, true, h, w, Depth::U16),
        DynamicImage::ImageRgb32F(b) => split(b.as_raw(), 3, false, h, w, Depth::Float),
        other => split(other.to_rgba32f().as_raw(), 4, true, h, w, Depth::Float),
    }
}

/// Encode `[0, 1]` intensities (colour channels, then alpha if any) as `format`; `depth16`
/// asks for 16-bit samples where the format has them (PNG, TIFF, PNM). `path` picks the PNM
/// flavour and names the output in errors.
pub fn encode_image<T: Scalar>(
    unit: &Planar<T>,
    has_alpha: bool,
    depth16: bool,
    format: ImageFormat,
    path: &Path,
) -> CliResult<Vec<u8>> {
    let levels = if sixteen_bit(depth16, format) {
        Levels::U16(unit.to_interleaved(|v| quantize(v, 65535.0) as u16))
    } else {
        Levels::U8(unit.to_interleaved(|v| quantize(v, 255.0) as u8))
    };
    let (mut head, body) =
        encode_levels(levels, unit.channels, unit.height, unit.width, has_alpha, format, path)?;
    head.extend_from_slice(&body);
    Ok(head)
}

/// Whether an image of `depth16` input is written with 16-bit samples in `format`.
pub fn sixteen_bit(depth16: bool, format: ImageFormat) -> bool {
    depth16 && matches!(format, ImageFormat::Png | ImageFormat::Tiff | ImageFormat::Pnm)
}

/// Quantised samples, interleaved `(height, width, channels)`.
pub enum Levels {
    U8(Vec<u8>),
    U16(Vec<u16>),
}

/// Encode interleaved levels (colour channels, then alpha if any) as `format`: the file's
/// bytes as a head and a body to write after it (a PNM's header and its samples, written
/// without a copy; other formats return everything in the head).
pub fn encode_levels(
    levels: Levels,
    channels: usize,
    h: usize,
    w: usize,
    has_alpha: bool,
    format: ImageFormat,
    path: &Path,
) -> CliResult<(Vec<u8>, Vec<u8>)> {
    let err = |reason: String| format!("invalid output {}: {reason}", path.display());
    let (w32, h32) = match (u32::try_from(w), u32::try_from(h)) {
        (Ok(a), Ok(b)) => (a, b),
        _ => return Err(err(format!("{w}x{h} is too large for an image file; write .npy"))),
    };
    let colour = channels - has_alpha as usize;
    if !matches!(colour, 1 | 3) {
        return Err(err(format!("{colour} colour channels cannot be stored in an image file; write .npy")));
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let sixteen = matches!(levels, Levels::U16(_));
    // A PNM already in the layout its extension holds: the header (binary PGM `P5` or PPM
    // `P6`, as `.pgm`, `.ppm` and `.pnm` files are read everywhere; PAM `P7` for `.pam`), then
    // the samples as they are (16-bit ones big-endian).
    if format == ImageFormat::Pnm && !has_alpha {
        let fits = match ext.as_str() {
            "pgm" => colour == 1,
            "ppm" => colour == 3,
            _ => true,
        };
        if fits {
            let max = if sixteen { 65535 } else { 255 };
            let head = if ext == "pam" {
                let tuple = if colour == 1 { "GRAYSCALE" } else { "RGB" };
                format!("P7\nWIDTH {w}\nHEIGHT {h}\nDEPTH {colour}\nMAXVAL {max}\nTUPLTYPE {tuple}\nENDHDR\n")
            } else {
                format!("{}\n{w} {h}\n{max}\n", if colour == 1 { "P5" } else { "P6" })
            };
            let body = match levels {
                Levels::U8(v) => v,
                Levels::U16(v) => v.iter().flat_map(|s| s.to_be_bytes()).collect(),
            };
            return Ok((head.into_bytes(), body));
        }
    }
    let none = || err("internal: buffer size mismatch".into());
    let mut img = match levels {
        Levels::U16(raw) => match (colour, has_alpha) {
            (1, false) => DynamicImage::ImageLuma16(
                ImageBuffer::<Luma<u16>, _>::from_raw(w32, h32, raw).ok_or_else(none)?,
            ),
            (1, true) => DynamicImage::ImageLumaA16(
                ImageBuffer::<LumaA<u16>, _>::from_raw(w32, h32, raw).ok_or_else(none)?,
            ),
            (_, false) => DynamicImage::ImageRgb16(
                ImageBuffer::<Rgb<u16>, _>::from_raw(w32, h32, raw).ok_or_else(none)?,
            ),
            (_, true) => DynamicImage::ImageRgba16(
                ImageBuffer::<Rgba<u16>, _>::from_raw(w32, h32, raw).ok_or_else(none)?,
            ),
        },
        Levels::U8(raw) => match (colour, has_alpha) {
            (1, false) => DynamicImage::ImageLuma8(
                ImageBuffer::<Luma<u8>, _>::from_raw(w32, h32, raw).ok_or_else(none)?,
            ),
            (1, true) => DynamicImage::ImageLumaA8(
                ImageBuffer::<LumaA<u8>, _>::from_raw(w32, h32, raw).ok_or_else(none)?,
            ),
            (_, false) => {
                DynamicImage::ImageRgb8(ImageBuffer::<Rgb<u8>, _>::from_raw(w32, h32, raw).ok_or_else(none)?)
            }
            (_, true) => DynamicImage::ImageRgba8(
                ImageBuffer::<Rgba<u8>, _>::from_raw(w32, h32, raw).ok_or_else(none)?,
            ),
        },
    };
    // Fit the layout to what the format can hold.
    match (format, ext.as_str()) {
        (ImageFormat::Jpeg, _) if !has_alpha && !sixteen => {}
        (ImageFormat::Jpeg, _) => {
            img = if colour == 1 {
                DynamicImage::ImageLuma8(img.to_luma8())
            } else {
                DynamicImage::ImageRgb8(img.to_rgb8())
            }
        }
        (ImageFormat::Tiff, _) if colour == 1 && has_alpha => {
            img = if sixteen {
                DynamicImage::ImageRgba16(img.to_rgba16())
            } else {
                DynamicImage::ImageRgba8(img.to_rgba8())
            }
        }
        (ImageFormat::Pnm, "pgm") => {
            if colour != 1 {
                return Err(err("a .pgm file holds grey images; use --grey, or write .ppm".into()));
            }
            img = if sixteen {
                DynamicImage::ImageLuma16(img.to_luma16())
            } else {
                DynamicImage::ImageLuma8(img.to_luma8())
            }
        }
        // Already RGB (the common case): no copy.
        (ImageFormat::Pnm, "ppm") if colour == 3 && !has_alpha => {}
        (ImageFormat::Pnm, "ppm") => {
            img = if sixteen {
                DynamicImage::ImageRgb16(img.to_rgb16())
            } else {
                DynamicImage::ImageRgb8(img.to_rgb8())
            }
        }
        _ => {}
    }
    let mut buf = Cursor::new(Vec::new());
    let res = match format {
        ImageFormat::Jpeg => img.write_with_encoder(JpegEncoder::new_with_quality(&mut buf, 95)),
        ImageFormat::Pnm => img.write_with_encoder(PnmEncoder::new(&mut buf)),
        f => img.write_to(&mut buf, f),
    };
    res.map_err(|e| err(format!("cannot encode: {e}")))?;
    Ok((buf.into_inner(), Vec::new()))
}

/// A `.npy` file's bytes: `(H, W)` for one channel, `(H, W, C)` otherwise.
pub fn encode_npy<T: Scalar + NpyElement>(p: &Planar<T>) -> CliResult<Vec<u8>> {
    let shape: Vec<usize> =
        if p.channels == 1 { vec![p.height, p.width] } else { vec![p.height, p.width, p.channels] };
    let data: Vec<T> = p.to_interleaved(T::from_f64);
    let mut buf = Vec::new();
    write_npy_to(&mut buf, &shape, &data).map_err(|e| format!("cannot encode .npy: {e}"))?;
    Ok(buf)
}
