//! `convkit serve` over real HTTP: the binary is started on a free port, requests are sent with
//! a plain `TcpStream`, and the process is killed when each test ends.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_convkit");

/// A running server, killed on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start convkit serve");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout).read_line(&mut line).expect("read the URL line");
        let mut server = Server { child, addr: String::new() };
        let url =
            line.trim().strip_prefix("convkit serve: ").unwrap_or_else(|| panic!("no URL line: {line:?}"));
        let addr = url.strip_prefix("http://").and_then(|r| r.strip_suffix('/')).expect("http://HOST:PORT/");
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        server.addr = addr.to_string();
        server
    }

    /// Send raw request bytes; the answer's status, headers (lower-cased names) and body.
    fn raw(&self, request: &[u8]) -> Response {
        let mut s = TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        // The server may answer (413) and close before it has read everything: not an error.
        let _ = s.write_all(request);
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        parse(&buf)
    }

    fn request(&self, method: &str, path: &str, body: &[u8]) -> Response {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        self.raw(&req)
    }

    fn get(&self, path: &str) -> Response {
        self.request("GET", path, b"")
    }

    fn post(&self, path: &str, body: &Value) -> Response {
        self.request("POST", path, body.to_string().as_bytes())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The start of the body, for failure messages.
    fn short(&self) -> String {
        self.text().chars().take(300).collect()
    }
    fn json(&self) -> Value {
        assert_eq!(self.header("content-type"), "application/json", "{}", self.short());
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.short()))
    }
    fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_else(|| panic!("no error: {}", self.short())).to_string()
    }
}

fn parse(buf: &[u8]) -> Response {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete HTTP response");
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut r = Response { status, headers, body: buf[end + 4..].to_vec() };
    if r.header("transfer-encoding").eq_ignore_ascii_case("chunked") {
        r.body = dechunk(&r.body);
    }
    r
}

/// The body of a `Transfer-Encoding: chunked` response.
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let size = std::str::from_utf8(&b[..eol]).unwrap().split(';').next().unwrap().trim();
        let n = usize::from_str_radix(size, 16).expect("hex chunk size");
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
}

/// What the command line prints after `convkit: ` for these arguments (and exit code 2).
fn cli_error(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().expect("run convkit");
    assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    err.trim().strip_prefix("convkit: ").expect("convkit: prefix").to_string()
}

#[test]
fn page_and_assets_are_served_with_no_external_urls() {
    let s = Server::start();
    let index = s.get("/");
    assert_eq!(index.status, 200);
    assert_eq!(index.header("content-type"), "text/html; charset=utf-8");
    assert!(index.text().contains(r#"<script src="/app.js">"#));
    for (path, ty) in [("/", "text/html"), ("/app.js", "text/javascript"), ("/style.css", "text/css")] {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert!(r.header("content-type").starts_with(ty), "{path}: {}", r.header("content-type"));
        let text = r.text();
        assert!(!text.contains("http://") && !text.contains("https://") && !text.contains("//cdn"), "{path}");
    }
    let png = s.get("/image/default.png");
    assert_eq!(png.status, 200);
    assert_eq!(png.header("content-type"), "image/png");
    let on_disk = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/camera.png")).unwrap();
    assert!(png.body == on_disk, "the embedded image differs from assets/camera.png");
}

#[test]
fn unknown_routes_and_wrong_methods() {
    let s = Server::start();
    assert_eq!(s.get("/nope").status, 404);
    assert_eq!(s.get("/api/nope").status, 404);
    assert_eq!(s.get("/../Cargo.toml").status, 404);
    let r = s.get("/api/explain");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), "POST");
    assert_eq!(s.post("/", &json!({})).status, 405);
    assert_eq!(s.request("DELETE", "/app.js", b"").status, 405);
}

#[test]
fn explain_one_d_example() {
    let s = Server::start();
    let r = s.post("/api/explain", &json!({"input": "1,2,0,-1,3,1", "weight": "2,-1,1"}));
    assert_eq!(r.status, 200, "{}", r.short());
    let v = r.json();
    // By hand: 1·2 + 2·(−1) + 0·1 = 0, 2·2 + 0·(−1) + (−1)·1 = 3, 0·2 + (−1)·(−1) + 3·1 = 4,
    // (−1)·2 + 3·(−1) + 1·1 = −4.
    let out: Vec<f64> = v["output"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(out, [0.0, 3.0, 4.0, -4.0]);
    assert_eq!(v["output_shape"], json!([1, 1, 4]));
    assert_eq!(v["steps"].as_array().unwrap().len(), 4);
}

#[test]
fn api_errors_are_the_cli_errors() {
    let s = Server::start();
    let r = s.post("/api/explain", &json!({"input": "1,2,0,-1,3,1", "weight": "2,-1,1", "stride": "0"}));
    assert_eq!(r.status, 400);
    let cli = cli_error(&["explain", "--input", "1,2,0,-1,3,1", "--weight", "2,-1,1", "--stride", "0"]);
    assert_eq!(r.error(), cli);
    assert!(cli.contains("stride"), "{cli}");

    let r = s.post("/api/explain", &json!({"input": "1,2,0", "weight": "1", "dilation": "-2"}));
    assert_eq!(r.status, 400);
    assert_eq!(r.error(), cli_error(&["explain", "--input", "1,2,0", "--weight", "1", "--dilation", "-2"]));
}

#[test]
fn shape_model_and_layers() {
    let s = Server::start();
    let r = s.post("/api/shape", &json!({"model": "resnet18"}));
    assert_eq!(r.status, 200, "{}", r.short());
    let v = r.json();
    // torchvision's resnet18 has 11,689,512 parameters, of which the classifier (fc, 512 → 1000)
    // holds 512·1000 + 1000; the trunk ends at 512 × 7 × 7 for a 224 × 224 input.
    assert_eq!(v["total"]["params"], json!(11_689_512 - (512 * 1000 + 1000)));
    assert_eq!(v["total"]["output"], json!([1, 512, 7, 7]));

    // By hand: conv 8 k3 p1 bias on 3 × 32 × 32 keeps 32 × 32 and has 8·3·3·3 + 8 = 224
    // parameters; maxpool k2 s2 halves it to 16 × 16.
    let r =
        s.post("/api/shape", &json!({"input": "1,3,32,32", "layers": "conv 8 k3 p1 bias; maxpool k2 s2"}));
    let v = r.json();
    assert_eq!(v["layers"][0]["output"], json!([1, 8, 32, 32]));
    assert_eq!(v["layers"][0]["params"], json!(224));
    assert_eq!(v["total"]["output"], json!([1, 8, 16, 16]));

    let r = s.post("/api/shape", &json!({"input": "1,3,32,32", "layers": "conv 8 k0"}));
    assert_eq!(r.status, 400);
    let cli = cli_error(&["shape", "--input", "1,3,32,32", "--layers", "conv 8 k0"]);
    assert_eq!(r.error(), cli);
    let r = s.post("/api/shape", &json!({"model": "lenet"}));
    assert_eq!((r.status, r.error()), (400, cli_error(&["shape", "--model", "lenet"])));
}

#[test]
fn garbage_is_refused_and_the_server_keeps_serving() {
    let s = Server::start();
    for body in [&b"{not json"[..], b"", b"[1,2,3]", b"\xff\xfe\x00", b"null", b"{\"input\": 5"] {
        for path in ["/api/explain", "/api/shape", "/api/filter"] {
            let r = s.request("POST", path, body);
            assert_eq!(r.status, 400, "{path} {body:?}: {}", r.short());
            assert!(r.error().starts_with("invalid request body"), "{}", r.short());
        }
    }
    let r = s.post("/api/explain", &json!({"input": "1,2", "weight": "1", "colour": "red"}));
    assert_eq!(r.status, 400);
    assert!(r.error().contains("colour"), "{}", r.error());
    // Files named by a request are never opened.
    let r = s.post("/api/explain", &json!({"input": "/etc/passwd.npy", "weight": "1"}));
    assert_eq!(r.status, 400);
    assert!(r.error().contains("inline"), "{}", r.error());
    let r = s.post("/api/filter", &json!({"kernel": "/etc/kernel.npy"}));
    assert_eq!(r.status, 400);
    assert!(r.error().contains("inline"), "{}", r.error());

    // Over the 8 MiB cap: refused by the declared length, then by the bytes actually sent.
    let big = vec![b' '; (8 << 20) + 1];
    assert_eq!(s.request("POST", "/api/filter", &big).status, 413);
    let mut chunked =
        b"POST /api/filter HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..9 {
        chunked.extend_from_slice(format!("{:x}\r\n", 1 << 20).as_bytes());
        chunked.extend(std::iter::repeat_n(b' ', 1 << 20));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(s.raw(&chunked).status, 413);
    // Half a request, then a hang-up.
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.write_all(b"POST /api/explain HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"in").unwrap();
    drop(c);

    assert_eq!(s.get("/").status, 200);
    let r = s.post("/api/filter", &json!({"kernel": "identity", "image": "not base64!"}));
    assert_eq!(r.status, 400);
    assert!(r.error().starts_with("invalid image"), "{}", r.error());
    let r = s.post("/api/filter", &json!({"kernel": "identity", "image": "aGVsbG8="}));
    assert_eq!(r.status, 400);
    assert!(r.error().starts_with("invalid image"), "{}", r.error());
}

fn png_b64(img: image::DynamicImage) -> String {
    use base64::Engine;
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png).unwrap();
    base64::engine::general_purpose::STANDARD.encode(buf.into_inner())
}

fn decode_png(v: &Value) -> image::GrayImage {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(v["png"].as_str().unwrap()).unwrap();
    image::load_from_memory(&bytes).unwrap().to_luma8()
}

/// An 8-wide, 6-high grey ramp: column j holds 10·j.
fn ramp() -> image::GrayImage {
    image::GrayImage::from_fn(8, 6, |x, _| image::Luma([(10 * x) as u8]))
}

#[test]
fn filter_uploaded_and_embedded_images() {
    let s = Server::start();
    let img = ramp();
    let b64 = png_b64(image::DynamicImage::ImageLuma8(img.clone()));

    // identity with clip: the image comes back unchanged.
    let r = s.post("/api/filter", &json!({"kernel": "identity", "image": b64, "range": "clip"}));
    assert_eq!(r.status, 200, "{}", r.short());
    let v = r.json();
    assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(8), Some(6)));
    assert_eq!(decode_png(&v), img);
    assert_eq!(v["kernel"], json!([[1.0]]));

    // Sobel-x of a ramp of slope 10 with the reflect border: 8·10 inside, 0 in the first and
    // last columns (the border mirrors the ramp); abs+minmax maps 0..80 to 0..255.
    let url = format!("data:image/png;base64,{b64}");
    let r = s.post("/api/filter", &json!({"kernel": "sobel-x", "image": url}));
    assert_eq!(r.status, 200, "{}", r.short());
    let v = r.json();
    assert_eq!(v["kernel"], json!([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]));
    let out = decode_png(&v);
    for row in out.rows() {
        let row: Vec<u8> = row.map(|p| p.0[0]).collect();
        assert_eq!(row, [0, 255, 255, 255, 255, 255, 255, 0]);
    }

    // Stride 2 with same padding: ceil(8/2) × ceil(6/2).
    let r = s.post("/api/filter", &json!({"kernel": "box", "image": b64, "stride": 2}));
    let v = r.json();
    assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(4), Some(3)));

    // The embedded camera image (512 × 512) with the Sobel magnitude: two kernels.
    let r = s.post("/api/filter", &json!({"kernel": "sobel"}));
    assert_eq!(r.status, 200, "{}", r.short());
    let v = r.json();
    assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(512), Some(512)));
    assert_eq!(decode_png(&v).dimensions(), (512, 512));
    assert_eq!(v["kernels"].as_array().unwrap().len(), 2);

    // Errors read as `convkit filter`'s.
    let r = s.post("/api/filter", &json!({"kernel": "blurry"}));
    assert_eq!(r.status, 400);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.png");
    img.save(&input).unwrap();
    let out = dir.path().join("out.png");
    let cli =
        cli_error(&["filter", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--kernel", "blurry"]);
    assert_eq!(r.error(), cli);
    let r = s.post("/api/filter", &json!({"kernel": "box", "stride": "0"}));
    let cli = cli_error(&[
        "filter",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--kernel",
        "box",
        "--stride",
        "0",
    ]);
    assert_eq!((r.status, r.error()), (400, cli));
}

#[test]
fn filter_caps_image_size_and_work() {
    let s = Server::start();
    // 2049 × 2049 is just over 4 megapixels (4 · 2^20 = 4,194,304 < 4,198,401).
    let big = image::GrayImage::new(2049, 2049);
    let r = s.post("/api/filter", &json!({"kernel": "identity", "image": png_b64(big.into())}));
    assert_eq!(r.status, 400);
    assert!(r.error().contains("2049x2049"), "{}", r.error());
    // A huge kernel over the camera image is refused rather than computed for minutes.
    let r = s.post("/api/filter", &json!({"kernel": "motion:501:30"}));
    assert_eq!(r.status, 400, "{}", r.short());
    assert!(r.error().contains("more work"), "{}", r.error());
    assert_eq!(s.get("/").status, 200);
}

#[test]
fn bad_flags_exit_2_with_one_line() {
    for (args, needle) in [
        (&["serve", "--port", "abc"][..], "invalid port abc"),
        (&["serve", "--port", "70000"], "invalid port 70000"),
        (&["serve", "--port", "-1"], "-1"),
        (&["serve", "--host", "example"], "invalid host example"),
        (&["serve", "--host", "8.8.8.8", "--port", "0"], "--allow-remote"),
        (&["serve", "--colour"], "--colour"),
    ] {
        let msg = cli_error(args);
        assert!(msg.contains(needle), "{args:?}: {msg}");
    }
    // A port already in use.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let msg = cli_error(&["serve", "--port", &port]);
    assert!(msg.starts_with(&format!("invalid port {port}:")), "{msg}");
    assert!(msg.contains("in use"), "{msg}");
}
