//! The Volume and Network tabs' API over real HTTP: `/api/volume` against `convkit explain`,
//! its refusals, and `/api/network` loading a `convkit train-demo` folder.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_convkit");

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(model: Option<&Path>) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--port", "0"]);
        if let Some(m) = model {
            cmd.arg("--model").arg(m);
        }
        let mut child =
            cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("start");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().trim_start_matches("convkit serve: http://").trim_end_matches('/').to_string();
        Server { child, addr }
    }

    fn call(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let body = if method == "GET" { String::new() } else { body.to_string() };
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(s, "{method} {path} HTTP/1.0\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len())
            .unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        let status = buf[9..12].parse().unwrap();
        let json = buf.split_once("\r\n\r\n").map(|(_, b)| serde_json::from_str(b).unwrap()).unwrap();
        (status, json)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn volume_matches_explain_and_sums_channels() {
    let s = Server::start(None);
    let input: Vec<i32> = (0..3 * 4 * 4).map(|i| (i * 7 % 11) - 5).collect();
    let weight: Vec<i32> = (0..2 * 3 * 9).map(|i| (i * 5 % 7) - 3).collect();
    let (status, v) = s.call(
        "POST",
        "/api/volume",
        &json!({ "channels": 3, "height": 4, "width": 4, "input": input, "filters": 2, "kernel": 3,
                 "weight": weight, "bias": [1, -2], "padding": 1 }),
    );
    assert_eq!(status, 200, "{v}");
    let list = |v: &[i32]| v.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
    let out = Command::new(BIN)
        .args(["explain", "--input", &list(&input), "--input-shape", "1,3,4,4", "--weight", &list(&weight)])
        .args(["--weight-shape", "2,3,3,3", "--bias", "1,-2", "--padding", "1", "--format", "json"])
        .output()
        .unwrap();
    let explained: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["output", "output_shape", "steps", "formula", "padded"] {
        assert_eq!(v[key], explained[key], "{key}");
    }
    // Per step, the channel sums add up to the step's sum, and each is its channel's products.
    let steps = explained["steps"].as_array().unwrap();
    for (step, sums) in steps.iter().zip(v["channel_sums"].as_array().unwrap()) {
        let sums = sums.as_array().unwrap();
        assert_eq!(sums.len(), 3);
        for s in sums {
            let c = s["c"].as_u64().unwrap();
            let want: f64 = step["terms"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["c"].as_u64() == Some(c))
                .map(|t| t["product"].as_f64().unwrap())
                .sum();
            assert_eq!(s["sum"].as_f64().unwrap(), want);
        }
        assert_eq!(sums[2]["running"].as_f64(), step["sum"].as_f64());
    }
    assert_eq!(v["params"]["count"], 2 * 3 * 3 * 3 + 2);
    assert_eq!(v["params"]["text"], "K·(C/groups)·k·k + K = 2·3·3·3 + 2 = 56");

    // Depthwise: 3 groups, one channel per filter.
    let (status, v) = s.call(
        "POST",
        "/api/volume",
        &json!({ "source": "photo", "channels": 3, "height": 5, "width": 5, "crop-x": 60, "crop-y": 40,
                 "filters": 3, "kernel": 3, "groups": 3, "weight": vec![1; 27] }),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["params"]["count"], 3 * 9 + 3);
    assert_eq!(v["channel_names"], json!(["R", "G", "B"]));
    assert!(v["channel_sums"].as_array().unwrap().iter().all(|s| s.as_array().unwrap().len() == 1));
}

#[test]
fn volume_refuses_bad_requests_with_one_message() {
    let s = Server::start(None);
    let base = json!({ "channels": 2, "height": 3, "width": 3, "input": vec![0; 18], "filters": 2,
                       "kernel": 2, "weight": vec![0; 16] });
    for (patch, want) in [
        (json!({ "channels": 5 }), "invalid channels 5"),
        (json!({ "groups": 3 }), "invalid groups 3"),
        (json!({ "weight": [1, 2] }), "invalid weight"),
        (json!({ "input": [1] }), "invalid input"),
        (json!({ "source": "photo", "crop-x": 127 }), "invalid crop-x 127"),
        (json!({ "source": "camera" }), "invalid source camera"),
        (json!({ "stride": "0" }), "stride"),
    ] {
        let mut req = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            req[k] = v.clone();
        }
        let (status, v) = s.call("POST", "/api/volume", &req);
        assert_eq!(status, 400, "{patch}: {v}");
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(want), "{patch}: {msg}");
    }
}

#[test]
fn network_loads_a_train_demo_folder() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(BIN).args(["train-demo", "--out"]).arg(dir.path()).output().unwrap();
    assert!(o.status.success());
    let s = Server::start(Some(dir.path()));
    let (status, info) = s.call("GET", "/api/network", &Value::Null);
    assert_eq!(status, 200);
    assert_eq!(info["state"], "ready", "{info}");
    assert!(info["message"].as_str().unwrap().starts_with("Model loaded from"), "{info}");
    let (status, run) = s.call("POST", "/api/network/run", &json!({ "image": 3 }));
    assert_eq!(status, 200, "{run}");
    let shapes: Vec<Value> = run["layers"].as_array().unwrap().iter().map(|l| l["shape"].clone()).collect();
    assert_eq!(shapes[0], json!([8, 28, 28]));
    assert_eq!(shapes[6], json!([6, 1, 1]));
    // A conv2 cell: 8 channel sums, their total plus the bias is the engine's value.
    let (status, cell) =
        s.call("POST", "/api/network/cell", &json!({ "image": 3, "layer": 3, "c": 5, "i": 7, "j": 4 }));
    assert_eq!(status, 200, "{cell}");
    let a = &cell["arithmetic"];
    assert_eq!(a["channels"].as_array().unwrap().len(), 8);
    let total = a["total"].as_f64().unwrap();
    let value = cell["value"].as_f64().unwrap();
    assert!((total - value).abs() <= 1e-5 * (1.0 + value.abs()), "{total} vs {value}");
    assert_eq!(cell["field"]["size"], json!([8.0, 8.0]));
    let (status, _) =
        s.call("POST", "/api/network/cell", &json!({ "image": 3, "layer": 9, "c": 0, "i": 0, "j": 0 }));
    assert_eq!(status, 400);
}
