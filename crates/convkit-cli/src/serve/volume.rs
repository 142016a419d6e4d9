//! `POST /api/volume`: convolution over a volume for the Volume tab. The request's channels
//! (typed integers, or a crop of the embedded colour photo split into R, G, B) and filters go
//! through the same explanation as `convkit explain`; the answer adds what the page shows
//! beside it: each step's per-channel sums and running totals, and the parameter count.

use super::Reply;
use crate::explain::{explain_json_inline, ExplainArgs};
use serde_json::{json, Value};

/// The embedded colour photo: scikit-image's "astronaut" reduced to 128×128 (public domain),
/// see `assets/SOURCES.md`.
pub(crate) const ASTRONAUT: &[u8] = include_bytes!("../../assets/astronaut-128.png");

fn bad(msg: impl Into<String>) -> Reply {
    Reply::error(400, msg)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct VolumeRequest {
    /// `values` (the `input` list) or `photo` (a crop of the embedded photo).
    #[serde(default)]
    source: Option<String>,
    channels: usize,
    height: usize,
    width: usize,
    #[serde(default)]
    input: Option<Vec<f64>>,
    #[serde(default)]
    crop_x: usize,
    #[serde(default)]
    crop_y: usize,
    filters: usize,
    kernel: usize,
    #[serde(default)]
    groups: Option<usize>,
    weight: Vec<f64>,
    #[serde(default)]
    bias: Option<Vec<f64>>,
    #[serde(default)]
    stride: Option<Value>,
    #[serde(default)]
    padding: Option<Value>,
}

fn in_range(name: &str, v: usize, lo: usize, hi: usize) -> Result<(), Reply> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(bad(format!("invalid {name} {v}: expected {lo} to {hi}")))
    }
}

fn list(v: &[f64]) -> String {
    v.iter().map(f64::to_string).collect::<Vec<_>>().join(",")
}

fn flag(name: &str, v: &Option<Value>, default: &str) -> Result<String, Reply> {
    match v {
        None | Some(Value::Null) => Ok(default.to_string()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(other) => Err(bad(format!("invalid {name} {other}: expected a string or a number"))),
    }
}

/// `channels` planes of `height × width` from the photo at `(x, y)`: R, G, B in 0..255.
fn crop(channels: usize, height: usize, width: usize, x: usize, y: usize) -> Result<Vec<f64>, Reply> {
    let img = image::load_from_memory(ASTRONAUT).map_err(|err| bad(err.to_string()))?.to_rgb8();
    let (iw, ih) = (img.width() as usize, img.height() as usize);
    if x + width > iw || y + height > ih {
        return Err(bad(format!(
            "invalid crop-x {x}, crop-y {y}: a {width}x{height} crop must lie inside the {iw}x{ih} photo"
        )));
    }
    let mut out = Vec::with_capacity(channels * height * width);
    for c in 0..channels {
        for r in 0..height {
            for q in 0..width {
                out.push(f64::from(img.get_pixel((x + q) as u32, (y + r) as u32)[c]));
            }
        }
    }
    Ok(out)
}

/// Per step: for every input channel the filter reads, the sum of its products and the running
/// total over the channels so far (summed in f64, in the explanation's term order).
fn channel_sums(explained: &Value) -> Vec<Value> {
    let steps = explained["steps"].as_array().cloned().unwrap_or_default();
    steps
        .iter()
        .map(|s| {
            let mut sums: Vec<(u64, f64)> = Vec::new();
            for t in s["terms"].as_array().into_iter().flatten() {
                let c = t["c"].as_u64().unwrap_or(0);
                let p = t["product"].as_f64().unwrap_or(0.0);
                match sums.last_mut() {
                    Some((last, sum)) if *last == c => *sum += p,
                    _ => sums.push((c, p)),
                }
            }
            let mut running = 0.0;
            let v: Vec<Value> = sums
                .into_iter()
                .map(|(c, sum)| {
                    running += sum;
                    json!({ "c": c, "sum": sum, "running": running })
                })
                .collect();
            Value::Array(v)
        })
        .collect()
}

/// `POST /api/volume`.
pub(crate) fn volume(body: &[u8]) -> Reply {
    let run = || -> Result<Value, Reply> {
        let req: VolumeRequest =
            serde_json::from_slice(body).map_err(|err| bad(format!("invalid request body: {err}")))?;
        let (c, k, ks) = (req.channels, req.filters, req.kernel);
        in_range("channels", c, 1, 4)?;
        in_range("filters", k, 1, 4)?;
        in_range("kernel", ks, 1, 5)?;
        in_range("height", req.height, 1, 12)?;
        in_range("width", req.width, 1, 12)?;
        let g = req.groups.unwrap_or(1);
        if g == 0 || c % g != 0 || k % g != 0 {
            return Err(bad(format!(
                "invalid groups {g}: must divide both the channels ({c}) and the filters ({k})"
            )));
        }
        let source = req.source.as_deref().unwrap_or("values");
        let input = match source {
            "values" => {
                let v = req.input.clone().ok_or_else(|| bad("invalid input: missing (source values)"))?;
                if v.len() != c * req.height * req.width {
                    return Err(bad(format!(
                        "invalid input: {} values for {c} channels of {}x{}",
                        v.len(),
                        req.height,
                        req.width
                    )));
                }
                v
            }
            "photo" => {
                if c > 3 {
                    return Err(bad(format!("invalid channels {c}: the photo has 3 (R, G, B)")));
                }
                crop(c, req.height, req.width, req.crop_x, req.crop_y)?
            }
            other => return Err(bad(format!("invalid source {other}: expected values or photo"))),
        };
        let per = c / g;
        if req.weight.len() != k * per * ks * ks {
            return Err(bad(format!(
                "invalid weight: {} values for {k} filters of {per}x{ks}x{ks}",
                req.weight.len()
            )));
        }
        let bias = req.bias.clone().unwrap_or_else(|| vec![0.0; k]);
        if bias.len() != k {
            return Err(bad(format!("invalid bias: {} values for {k} filters", bias.len())));
        }
        let args = ExplainArgs {
            input: list(&input),
            input_shape: Some(format!("1,{c},{},{}", req.height, req.width)),
            weight: Some(list(&req.weight)),
            weight_shape: Some(format!("{k},{per},{ks},{ks}")),
            bias: Some(list(&bias)),
            groups: g.to_string(),
            stride: Some(flag("stride", &req.stride, "1")?),
            padding: flag("padding", &req.padding, "0")?,
            ..ExplainArgs::default()
        };
        let mut explained = explain_json_inline(&args).map_err(bad)?;
        let desc = convkit::ConvDesc::new().groups(g);
        let problem = convkit::ConvProblem::new(&desc, &[1, c, ks, ks], &[k, per, ks, ks])
            .map_err(|err| bad(err.to_string()))?;
        let count = problem.params(true);
        let sums = channel_sums(&explained);
        if let Value::Object(m) = &mut explained {
            m.insert("channel_sums".into(), Value::Array(sums));
            m.insert(
                "params".into(),
                json!({
                    "count": count,
                    "weights": problem.params(false),
                    "text": format!("K·(C/groups)·k·k + K = {k}·{per}·{ks}·{ks} + {k} = {count}"),
                }),
            );
            m.insert("source".into(), json!(source));
            m.insert("channel_names".into(), json!(channel_names(source, c)));
        }
        Ok(explained)
    };
    run().map_or_else(|r| r, |v| Reply::json(200, &v))
}

fn channel_names(source: &str, c: usize) -> Vec<String> {
    (0..c)
        .map(|i| if source == "photo" { ["R", "G", "B"][i].to_string() } else { format!("channel {i}") })
        .collect()
}
