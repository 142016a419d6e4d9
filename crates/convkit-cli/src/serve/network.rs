//! The Network tab's API: the `convkit train-demo` model, loaded from its folder or trained in
//! the background at start-up when there is none; each layer's feature maps for a held-out
//! image (`POST /api/network/run`), and for one clicked cell its receptive field (from the
//! stack's shape arithmetic, as `convkit shape` computes it) and the arithmetic that made it
//! (`POST /api/network/cell`).

use super::Reply;
use crate::train_demo::data::{CLASSES, SIDE};
use crate::train_demo::net::{self, Config, Net, LAYERS, PARAMS, STACK};
use crate::train_demo::weight_files;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// A model ready to run.
struct Model {
    net: Net<f32>,
    origin: String,
    accuracy: f64,
    test_x: Vec<f32>,
    test_y: Vec<usize>,
}

enum State {
    Training(String),
    Ready(Box<Model>),
    Failed(String),
}

static STATE: OnceLock<Mutex<State>> = OnceLock::new();

fn state() -> &'static Mutex<State> {
    STATE.get_or_init(|| Mutex::new(State::Failed("no model: the server did not start one".into())))
}

fn set(s: State) {
    if let Ok(mut g) = state().lock() {
        *g = s;
    }
}

/// The weights in `dir`, if all six files are there with the right shapes.
fn load(dir: &Path) -> Result<Option<Net<f32>>, String> {
    let files = weight_files(dir);
    if !files.iter().all(|f| f.is_file()) {
        return Ok(None);
    }
    let mut params = Vec::new();
    for ((name, shape), f) in PARAMS.iter().zip(&files) {
        let a = convkit::npy::read_npy(name, f).map_err(|err| err.to_string())?;
        if a.shape() != *shape {
            return Err(format!(
                "invalid model {}: {name} has shape {:?}, expected {shape:?}",
                dir.display(),
                a.shape()
            ));
        }
        params.push(a.to_f32().data);
    }
    Ok(Some(Net { params }))
}

/// Load the model in `dir`, or train one in the background; says which on stderr.
pub(crate) fn start(dir: PathBuf) {
    let config = Config::default();
    match load(&dir) {
        Ok(Some(net)) => {
            let (test_x, test_y) = net::test_set(&config);
            let accuracy = net::accuracy(&net, &test_x, &test_y).unwrap_or(f64::NAN);
            eprintln!("convkit serve: Network tab model loaded from {}", dir.display());
            set(State::Ready(Box::new(Model {
                net,
                origin: format!("Model loaded from {}", dir.display()),
                accuracy,
                test_x,
                test_y,
            })));
        }
        Ok(None) | Err(_) => {
            let why = match load(&dir) {
                Err(err) => err,
                _ => format!("No trained model in {}", dir.display()),
            };
            eprintln!(
                "convkit serve: {}: training one for the Network tab (seed {})",
                why.to_lowercase(),
                config.seed
            );
            set(State::Training(format!(
                "{why}: training one now (convkit train-demo, seed {})…",
                config.seed
            )));
            std::thread::spawn(move || {
                let t0 = Instant::now();
                match crate::train_demo::with_threads(Some(1), || net::train(&config))
                    .and_then(|r| r.map_err(|e| e.to_string()))
                {
                    Ok(t) => {
                        let secs = t0.elapsed().as_secs_f64();
                        eprintln!(
                            "convkit serve: Network tab model trained in {secs:.1} s, held-out accuracy {:.1}%",
                            100.0 * t.accuracy
                        );
                        set(State::Ready(Box::new(Model {
                            net: t.net,
                            origin: format!(
                                "{why}, so one was trained at start-up ({secs:.1} s, seed {})",
                                config.seed
                            ),
                            accuracy: t.accuracy,
                            test_x: t.test_x,
                            test_y: t.test_y,
                        })));
                    }
                    Err(err) => set(State::Failed(format!("training failed: {err}"))),
                }
            });
        }
    }
}

/// Receptive field of every layer of the stack for a 28×28 input, from `convkit shape`'s
/// analysis.
fn fields() -> Result<Vec<Value>, String> {
    let layers = convkit::stack::parse(STACK).map_err(|e| e.to_string())?;
    let a = convkit::stack::analyse(&layers, &[1, 1, SIDE, SIDE]).map_err(|e| e.to_string())?;
    Ok(a.rows
        .iter()
        .map(|r| {
            let f = r.field.clone().unwrap_or_default();
            json!({
                "text": r.text,
                "output": r.output,
                "rf": f.iter().map(|x| x.size).collect::<Vec<_>>(),
                "jump": f.iter().map(|x| x.jump).collect::<Vec<_>>(),
                "start": f.iter().map(|x| x.start).collect::<Vec<_>>(),
            })
        })
        .collect())
}

/// `GET /api/network`: the model's state.
pub(crate) fn info() -> Reply {
    let g = match state().lock() {
        Ok(g) => g,
        Err(_) => return Reply::error(500, "internal error"),
    };
    let fields = match fields() {
        Ok(f) => f,
        Err(err) => return Reply::error(500, err),
    };
    let base = json!({ "stack": STACK, "layers": LAYERS, "classes": CLASSES, "fields": fields });
    let extra = match &*g {
        State::Training(msg) => json!({ "state": "training", "message": msg }),
        State::Failed(msg) => json!({ "state": "failed", "message": msg }),
        State::Ready(m) => json!({
            "state": "ready",
            "message": format!("{}; held-out accuracy {:.1}% on {} images.", m.origin, 100.0 * m.accuracy, m.test_y.len()),
            "accuracy": m.accuracy,
            "test_count": m.test_y.len(),
            "test_labels": m.test_y,
        }),
    };
    let mut v = base;
    if let (Value::Object(a), Value::Object(b)) = (&mut v, extra) {
        a.extend(b);
    }
    Reply::json(200, &v)
}

fn bad(msg: impl Into<String>) -> Reply {
    Reply::error(400, msg)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    image: usize,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CellRequest {
    image: usize,
    layer: usize,
    c: usize,
    i: usize,
    j: usize,
}

/// Run `f` on the ready model, or answer 503 while it trains.
fn with_model(f: impl FnOnce(&Model) -> Result<Value, Reply>) -> Reply {
    let g = match state().lock() {
        Ok(g) => g,
        Err(_) => return Reply::error(500, "internal error"),
    };
    match &*g {
        State::Ready(m) => f(m).map_or_else(|r| r, |v| Reply::json(200, &v)),
        State::Training(msg) => Reply::error(503, msg.clone()),
        State::Failed(msg) => Reply::error(503, msg.clone()),
    }
}

fn image_of(m: &Model, i: usize) -> Result<&[f32], Reply> {
    if i >= m.test_y.len() {
        return Err(bad(format!("invalid image {i}: expected 0 to {}", m.test_y.len().saturating_sub(1))));
    }
    Ok(&m.test_x[i * SIDE * SIDE..][..SIDE * SIDE])
}

fn forward(m: &Model, x: &[f32]) -> Result<net::Forward<f32>, Reply> {
    m.net.forward(x, 1).map_err(|err| Reply::error(500, err.to_string()))
}

fn softmax(z: &[f32]) -> Vec<f64> {
    let z: Vec<f64> = z.iter().map(|&v| f64::from(v)).collect();
    let mx = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let s: f64 = z.iter().map(|v| (v - mx).exp()).sum();
    z.iter().map(|v| (v - mx).exp() / s).collect()
}

/// `POST /api/network/run`: `{"image": I}` → every layer's maps for held-out image I.
pub(crate) fn run(body: &[u8]) -> Reply {
    let req: RunRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(err) => return bad(format!("invalid request body: {err}")),
    };
    with_model(|m| {
        let x = image_of(m, req.image)?;
        let f = forward(m, x)?;
        let layers: Vec<Value> = LAYERS
            .iter()
            .zip(f.layers())
            .map(|(name, (d, s))| json!({ "name": name, "shape": s, "maps": d }))
            .collect();
        let probs = softmax(&f.logits);
        let pred = net::argmax(&probs);
        Ok(json!({
            "image": req.image,
            "label": m.test_y[req.image],
            "class": CLASSES[m.test_y[req.image]],
            "input": x,
            "layers": layers,
            "probabilities": probs,
            "prediction": pred,
            "predicted_class": CLASSES[pred],
        }))
    })
}

/// The `k×k` window of `plane` (`h×w`) whose top-left is `(i0, j0)` (may be negative: zero
/// padding), row by row.
fn window(plane: &[f32], h: usize, w: usize, i0: isize, j0: isize, k: usize) -> Vec<Vec<f64>> {
    (0..k as isize)
        .map(|u| {
            (0..k as isize)
                .map(|v| {
                    let (r, c) = (i0 + u, j0 + v);
                    if r >= 0 && c >= 0 && (r as usize) < h && (c as usize) < w {
                        f64::from(plane[r as usize * w + c as usize])
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect()
}

/// The volume arithmetic of one convolution output: per input channel the window, the
/// filter slice and the sum of their products (in f64), the running total, the bias.
fn conv_cell(
    input: (&[f32], [usize; 3]),
    weight: &[f32],
    bias: &[f32],
    k: usize,
    pad: isize,
    at: (usize, usize, usize),
) -> Value {
    let ([c_in, h, w], (o, i, j)) = (input.1, at);
    let mut channels = Vec::new();
    let mut total = 0.0;
    for c in 0..c_in {
        let win = window(&input.0[c * h * w..][..h * w], h, w, i as isize - pad, j as isize - pad, k);
        let ws: Vec<Vec<f64>> = weight[(o * c_in + c) * k * k..][..k * k]
            .chunks(k)
            .map(|r| r.iter().map(|&v| f64::from(v)).collect())
            .collect();
        let sum: f64 = win.iter().flatten().zip(ws.iter().flatten()).map(|(a, b)| a * b).sum();
        total += sum;
        channels.push(json!({ "c": c, "window": win, "weights": ws, "sum": sum, "running": total }));
    }
    let b = f64::from(bias[o]);
    json!({ "kind": "conv", "channels": channels, "sum": total, "bias": b, "total": total + b })
}

/// `POST /api/network/cell`: `{"image", "layer", "c", "i", "j"}` → the cell's value, its
/// receptive field in the input (clipped to the image, and as the arithmetic gives it), and
/// the arithmetic behind it.
pub(crate) fn cell(body: &[u8]) -> Reply {
    let req: CellRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(err) => return bad(format!("invalid request body: {err}")),
    };
    with_model(|m| {
        let x = image_of(m, req.image)?;
        let f = forward(m, x)?;
        let all = f.layers();
        let (data, [c, h, w]) = *all
            .get(req.layer)
            .ok_or_else(|| bad(format!("invalid layer {}: expected 0 to {}", req.layer, LAYERS.len() - 1)))?;
        if req.c >= c || req.i >= h || req.j >= w {
            return Err(bad(format!(
                "invalid cell ({}, {}, {}): layer {} is {c}x{h}x{w}",
                req.c, req.i, req.j, LAYERS[req.layer]
            )));
        }
        let value = f64::from(data[(req.c * h + req.i) * w + req.j]);
        let fields = fields().map_err(|e| Reply::error(500, e))?;
        let fl = &fields[req.layer];
        let axis = |a: usize, pos: usize| {
            let size = fl["rf"][a].as_u64().unwrap_or(0) as f64;
            let centre =
                fl["start"][a].as_f64().unwrap_or(0.0) + pos as f64 * fl["jump"][a].as_f64().unwrap_or(1.0);
            let begin = centre - (size - 1.0) / 2.0;
            let end = begin + size - 1.0;
            (begin, end, size)
        };
        let (r0, r1, rs) = axis(0, req.i);
        let (c0, c1, cs) = axis(1, req.j);
        let clip = |v: f64| v.clamp(0.0, (SIDE - 1) as f64);
        let p = &m.net.params;
        let x_in = (&f.x[..], [1, SIDE, SIDE]);
        let at = (req.c, req.i, req.j);
        let arithmetic = match req.layer {
            0 => conv_cell(x_in, &p[0], &p[1], 3, 1, at),
            3 => conv_cell(all[2], &p[2], &p[3], 3, 1, at),
            6 => conv_cell(all[5], &p[4], &p[5], 7, 0, at),
            1 | 4 => {
                let (z, [_, zh, zw]) = all[req.layer - 1];
                let zv = f64::from(z[(req.c * zh + req.i) * zw + req.j]);
                json!({ "kind": "relu", "input": zv, "total": zv.max(0.0) })
            }
            _ => {
                let (a, [_, ah, aw]) = all[req.layer - 1];
                let win = window(
                    &a[req.c * ah * aw..][..ah * aw],
                    ah,
                    aw,
                    2 * req.i as isize,
                    2 * req.j as isize,
                    2,
                );
                let mx = win.iter().flatten().copied().fold(f64::NEG_INFINITY, f64::max);
                json!({ "kind": "maxpool", "window": win, "total": mx })
            }
        };
        Ok(json!({
            "layer": LAYERS[req.layer],
            "value": value,
            "field": {
                "size": [rs, cs],
                "rows": [r0, r1],
                "cols": [c0, c1],
                "clipped_rows": [clip(r0), clip(r1)],
                "clipped_cols": [clip(c0), clip(c1)],
            },
            "arithmetic": arithmetic,
        }))
    })
}
