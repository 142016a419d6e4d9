//! The JSON API behind the page: `/api/explain` and `/api/shape` hand the request to the same
//! functions as `convkit explain` and `convkit shape` (so errors read the same), `/api/filter`
//! runs a named or inline kernel over the embedded or an uploaded image.

use super::{Reply, CAMERA};
use crate::explain::{explain_json_inline, ExplainArgs};
use crate::image_io::{decoded, encode_image, Loaded};
use crate::shape::{report_json, ShapeArgs};
use base64::Engine;
use convkit::filter::{parse_matrix, Filter, FilterOptions, FilterPlan, Kernel, RangeMap, NAMED_KERNELS};
use convkit::{parse_list, PadMode, Padding};
use image::{ImageFormat, ImageReader};
use serde_json::{json, Value};
use std::io::Cursor;
use std::path::Path;

/// Largest uploaded image, in pixels (4 megapixels).
pub(crate) const MAX_PIXELS: u64 = 4 << 20;
/// Largest filter job: output pixels × channels × kernel taps (taps of both passes for a
/// separable kernel), about a second of work.
pub(crate) const MAX_WORK: u64 = 1 << 31;

fn bad(msg: impl Into<String>) -> Reply {
    Reply::error(400, msg)
}

/// The body as a JSON object, or the 400 reply saying why not.
fn object(body: &[u8]) -> Result<serde_json::Map<String, Value>, Reply> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad("invalid request body: expected a JSON object")),
        Err(err) => Err(bad(format!("invalid request body: {err}"))),
    }
}

fn typed<T: serde::de::DeserializeOwned>(m: serde_json::Map<String, Value>) -> Result<T, Reply> {
    serde_json::from_value(Value::Object(m)).map_err(|err| bad(format!("invalid request body: {err}")))
}

/// `POST /api/explain`: the body is `convkit explain`'s flags as JSON, the answer its JSON.
pub fn explain(body: &[u8]) -> Reply {
    let run = || -> Result<Value, Reply> {
        let m = object(body)?;
        let args: ExplainArgs = typed(m)?;
        // The inline-only entry point: a request never makes the server open a file.
        explain_json_inline(&args).map_err(bad)
    };
    run().map_or_else(|r| r, |v| Reply::json(200, &v))
}

/// `POST /api/shape`: `{"input": "1,3,32,32", "layers": "conv 8 k3 p1; …"}` or `{"model": NAME}`.
pub fn shape(body: &[u8]) -> Reply {
    let run = || -> Result<Value, Reply> {
        let m = object(body)?;
        let args: ShapeArgs = typed(m)?;
        report_json(&args).map_err(bad)
    };
    run().map_or_else(|r| r, |v| Reply::json(200, &v))
}

/// `GET /api/kernels`: the kernel names `convkit filter --kernel` knows, with their help text.
pub(crate) fn kernels() -> Value {
    let mut names = Vec::new();
    for (syntax, _) in NAMED_KERNELS {
        for s in syntax.split(", ") {
            names.push(s.split(':').next().unwrap_or(s).to_string());
        }
    }
    let help: Vec<Value> =
        NAMED_KERNELS.iter().map(|(s, d)| json!({ "syntax": s, "description": d })).collect();
    json!({ "names": names, "help": help })
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FilterRequest {
    kernel: String,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    stride: Option<Value>,
    #[serde(default)]
    dilation: Option<Value>,
    #[serde(default)]
    padding: Option<Value>,
    #[serde(default)]
    border: Option<String>,
    #[serde(default)]
    range: Option<String>,
    #[serde(default)]
    grey: bool,
    #[serde(default)]
    flip: bool,
}

/// A flag's value given as a JSON string or number.
fn text(name: &str, v: &Option<Value>, default: &str) -> Result<String, Reply> {
    match v {
        None | Some(Value::Null) => Ok(default.to_string()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(other) => Err(bad(format!("invalid {name} {other}: expected a string or a number"))),
    }
}

/// A kernel spec as `convkit filter --kernel` takes it, except `.npy` files.
fn parse_kernel(spec: &str) -> Result<Filter, Reply> {
    let s = spec.trim();
    if s.to_ascii_lowercase().ends_with(".npy") {
        return Err(bad(format!(
            "invalid kernel {spec}: the server takes names and inline matrices only, not files"
        )));
    }
    let first = s.chars().next().unwrap_or(' ');
    let f = if s.contains([',', ';']) || first.is_ascii_digit() || "+-.".contains(first) {
        parse_matrix(s).map(Filter::Linear)
    } else {
        Filter::parse(s)
    };
    f.map_err(|err| bad(err.to_string()))
}

fn matrix(k: &Kernel) -> Value {
    let rows: Vec<Vec<f64>> = k.weights().chunks(k.cols()).map(<[f64]>::to_vec).collect();
    json!(rows)
}

/// Decode uploaded image bytes, refusing anything over [`MAX_PIXELS`] before decoding it.
fn decode_upload(bytes: &[u8]) -> Result<Loaded<f32>, Reply> {
    let err = |why: String| bad(format!("invalid image: {why}"));
    let reader = || {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| err(format!("cannot read: {e}")))
    };
    match reader()?.format() {
        Some(
            ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Bmp | ImageFormat::Tiff | ImageFormat::Pnm,
        ) => {}
        Some(f) => return Err(err(format!("unsupported image format {f:?}"))),
        None => return Err(err("not a PNG, JPEG, BMP, TIFF or PNM image".into())),
    }
    let (w, h) = reader()?.into_dimensions().map_err(|e| err(format!("cannot decode: {e}")))?;
    if w == 0 || h == 0 || u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(err(format!("{w}x{h} pixels: the server takes images of 1 to {MAX_PIXELS} pixels")));
    }
    // The decoder is held to the cap too (a header that lies about the size cannot make it
    // allocate more): 4 MP of 16-bit RGBA at most, plus the decoder's own buffers.
    let mut reader = reader()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(u32::try_from(MAX_PIXELS).unwrap_or(u32::MAX));
    limits.max_image_height = Some(u32::try_from(MAX_PIXELS).unwrap_or(u32::MAX));
    limits.max_alloc = Some(MAX_PIXELS * 8 + (64 << 20));
    reader.limits(limits);
    let img = reader.decode().map_err(|e| err(format!("cannot decode: {e}")))?;
    decoded(img).map_err(err)
}

/// `POST /api/filter`: filter the embedded or an uploaded (base64) image with one kernel, as
/// `convkit filter IMAGE -o out.png --kernel SPEC` would, and return the PNG base64-encoded.
pub fn filter(body: &[u8]) -> Reply {
    let run = || -> Result<Value, Reply> {
        let req: FilterRequest = typed(object(body)?)?;
        let e = |err: convkit::Error| bad(err.to_string());
        let f = parse_kernel(&req.kernel)?;
        let opts = FilterOptions::default()
            .stride(parse_list("stride", &text("stride", &req.stride, "1")?).map_err(e)?)
            .dilation(parse_list("dilation", &text("dilation", &req.dilation, "1")?).map_err(e)?)
            .padding(text("padding", &req.padding, "same")?.parse::<Padding>().map_err(e)?)
            .border(
                req.border
                    .as_deref()
                    .unwrap_or("reflect")
                    .parse::<PadMode>()
                    .map_err(|err| bad(err.to_string().replace("padding-mode", "border")))?,
            )
            .flip(req.flip);
        let range = req.range.as_deref().map(str::parse::<RangeMap>).transpose().map_err(e)?;
        let Loaded { mut colour, alpha, depth } = match &req.image {
            None => {
                decoded(image::load_from_memory(CAMERA).map_err(|err| bad(err.to_string()))?).map_err(bad)?
            }
            Some(b64) => {
                let data = b64.split_once(";base64,").map_or(b64.as_str(), |(_, d)| d);
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data.trim())
                    .map_err(|err| bad(format!("invalid image: not base64 ({err})")))?;
                decode_upload(&bytes)?
            }
        };
        if req.grey && colour.channels == 3 {
            colour = colour.luma().map_err(e)?;
        }
        let (c, h, w) = (colour.channels, colour.height, colour.width);
        let filters = [f];
        let plan = FilterPlan::new(&filters, &opts, c, h, w).map_err(e)?;
        let (_, oh, ow) = plan.output_size();
        let (kh, kw) = filters[0].size();
        let taps = match &filters[0] {
            Filter::Linear(k) if k.factors().is_some() => (kh + kw) as u64,
            Filter::Linear(_) => (kh * kw) as u64,
            Filter::Magnitude { .. } => 2 * (kh * kw) as u64,
        };
        let work = (c as u64).saturating_mul(h.max(oh) as u64 * w.max(ow) as u64).saturating_mul(taps);
        if work > MAX_WORK {
            return Err(bad(format!(
                "invalid kernel {}: {kh}x{kw} over {w}x{h} pixels is more work than the server does per request; use convkit filter",
                req.kernel
            )));
        }
        let mut out = plan.run(&colour, &mut |_, _| {}).map_err(e)?;
        range.unwrap_or_else(|| RangeMap::default_for(&filters)).apply(&mut out.data, depth.full_scale());
        // Alpha is carried over as `convkit filter` does: taken at each window's centre.
        let alpha = match alpha {
            Some(a) if (oh, ow) == (h, w) => Some(a),
            Some(a) => Some(a.pick(&plan.centres(0), &plan.centres(1)).map_err(e)?),
            None => None,
        };
        let has_alpha = alpha.is_some();
        let unit = match alpha {
            Some(mut a) => {
                let s = 1.0 / depth.full_scale();
                a.data.iter_mut().for_each(|v| *v *= s as f32);
                out.append_channels(&a).map_err(e)?
            }
            None => out,
        };
        let png = encode_image(&unit, has_alpha, false, ImageFormat::Png, Path::new("filtered.png"))
            .map_err(bad)?;
        let kernels: Vec<Value> =
            filters[0].kernels().iter().map(|k| json!({ "name": k.name(), "matrix": matrix(k) })).collect();
        Ok(json!({
            "width": ow,
            "height": oh,
            "input_width": w,
            "input_height": h,
            "channels": c,
            "range": range.unwrap_or_else(|| RangeMap::default_for(&filters)).to_string(),
            "png": base64::engine::general_purpose::STANDARD.encode(png),
            "kernel": matrix(filters[0].kernels()[0]),
            "kernels": kernels,
        }))
    };
    run().map_or_else(|r| r, |v| Reply::json(200, &v))
}
