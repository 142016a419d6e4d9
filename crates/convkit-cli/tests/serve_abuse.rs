//! `convkit serve` against abusive clients: slow heads and bodies (408 after the deadlines,
//! without stalling anyone else), oversized heads (431) and bodies (413), malformed requests
//! (400), path traversal on the static routes (404), huge numbers and wrong types in the JSON
//! (400), and the strict CSP on every answer. Loopback only.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_convkit");
const CSP: &str =
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'";

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
            .stderr(Stdio::null())
            .spawn()
            .expect("start convkit serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("convkit serve: http://").and_then(|r| r.strip_suffix('/'));
        let addr = addr.unwrap_or_else(|| panic!("no URL line: {line:?}")).to_string();
        Server { child, addr }
    }

    /// Raw request bytes in, (status, head, body) out.
    fn raw(&self, request: &[u8]) -> (u16, String, Vec<u8>) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let _ = s.write_all(request);
        read_response(&mut s)
    }

    fn post(&self, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        self.raw(&req)
    }

    fn get(&self, path: &str) -> (u16, String, Vec<u8>) {
        self.raw(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Read one response (to the end of the connection, or its Content-Length).
fn read_response(s: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                })
                .and_then(|v| v.parse::<usize>().ok());
            if let Some(len) = len {
                if buf.len() >= end + 4 + len {
                    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                    return (status, head, buf[end + 4..end + 4 + len].to_vec());
                }
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| panic!("no response: {buf:?}"));
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    (head.split(' ').nth(1).unwrap().parse().unwrap(), head, buf[end + 4..].to_vec())
}

fn csp_of(head: &str) -> Option<String> {
    head.lines().find_map(|l| l.strip_prefix("Content-Security-Policy: ").map(str::to_string))
}

#[test]
fn traversal_malformed_and_oversized_requests_get_4xx_with_the_csp() {
    let s = Server::start();
    for path in [
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/..%2fCargo.toml",
        "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/app.js/../../Cargo.toml",
        "//etc/passwd",
        "/image/../../assets/camera.png",
        "/image/..%5c..%5cCargo.toml",
        "/index.html%00.png",
        "/assets/serve/app.js",
    ] {
        let (status, head, _) = s.get(path);
        assert_eq!(status, 404, "{path}");
        assert_eq!(csp_of(&head).as_deref(), Some(CSP), "{path}");
    }
    let (status, head, _) = s.get("/");
    assert_eq!(status, 200);
    assert_eq!(csp_of(&head).as_deref(), Some(CSP));

    // Malformed requests.
    for req in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1 extra\r\n\r\n",
        b"GET noslash HTTP/1.1\r\n\r\n",
        b"get / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
        b"POST /api/shape HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        b"POST /api/shape HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        b"POST /api/shape HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        b"POST /api/shape HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"\xff\xfe / HTTP/1.1\r\n\r\n",
    ] {
        let (status, head, _) = s.raw(req);
        assert!((400..500).contains(&status), "{:?}: {status}", String::from_utf8_lossy(req));
        assert_eq!(csp_of(&head).as_deref(), Some(CSP));
    }
    assert_eq!(s.raw(b"GET / HTTP/2.0\r\n\r\n").0, 505);
    assert_eq!(s.raw(b"POST /api/shape HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n").0, 501);

    // A head over 16 KiB: one endless line, and many headers.
    let mut long = b"GET /".to_vec();
    long.extend(std::iter::repeat_n(b'a', 1 << 20));
    assert_eq!(s.raw(&long).0, 431);
    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..2000 {
        many.extend_from_slice(format!("X-H{i}: {i}\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(s.raw(&many).0, 431);
    // A body over the 8 MiB cap, declared (answered before it is sent, with Expect too).
    assert_eq!(s.raw(b"POST /api/filter HTTP/1.1\r\nContent-Length: 9000000000\r\n\r\n").0, 413);
    let (status, head, _) =
        s.raw(b"POST /api/filter HTTP/1.1\r\nContent-Length: 900000000\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(status, 413);
    assert_eq!(csp_of(&head).as_deref(), Some(CSP));

    // Huge numbers and wrong types in the JSON bodies.
    for (path, body) in [
        ("/api/explain", json!({"input": "1e400,2,3", "weight": "1"})),
        ("/api/explain", json!({"input": "1,2,3", "weight": "1", "stride": "99999999999999999999999"})),
        ("/api/explain", json!({"input": "1,2,3", "weight": "1", "padding": "18446744073709551615"})),
        ("/api/explain", json!({"input": 5, "weight": "1"})),
        ("/api/explain", json!({"input": ["1"], "weight": {"a": 1}})),
        ("/api/shape", json!({"input": "1,3,18446744073709551615,2", "layers": "conv 8 k3"})),
        ("/api/shape", json!({"input": "1,3,224,224", "layers": "conv 99999999999999999999 k3"})),
        ("/api/shape", json!({"input": 1e308, "layers": 7})),
        ("/api/filter", json!({"kernel": "gaussian:1e300"})),
        ("/api/filter", json!({"kernel": "box:4294967297"})),
        ("/api/filter", json!({"kernel": "box:3", "stride": 1e300})),
        ("/api/filter", json!({"kernel": true})),
    ] {
        let (status, head, body) = s.post(path, body.to_string().as_bytes());
        assert_eq!(status, 400, "{path} {body:?}: {}", String::from_utf8_lossy(&body));
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert!(v["error"].is_string(), "{v}");
        assert_eq!(csp_of(&head).as_deref(), Some(CSP));
    }
    // A number JSON itself cannot hold.
    let (status, _, _) = s.post("/api/filter", br#"{"kernel": "box:3", "stride": 1e400}"#);
    assert_eq!(status, 400);
    // Still serving.
    assert_eq!(s.get("/").0, 200);
}

/// A normal client's latency over `n` requests (GET / and POST /api/shape alternately).
fn latencies(s: &Server, n: usize) -> Vec<Duration> {
    let shape = json!({"input": "1,3,224,224", "layers": "conv 64 k7 s2 p3; maxpool k3 s2 p1"}).to_string();
    (0..n)
        .map(|i| {
            let t = Instant::now();
            let status = if i % 2 == 0 { s.get("/").0 } else { s.post("/api/shape", shape.as_bytes()).0 };
            assert_eq!(status, 200);
            t.elapsed()
        })
        .collect()
}

#[test]
fn slow_clients_get_408_and_stall_nobody() {
    let s = Server::start();
    let quiet = latencies(&s, 20);
    // 32 slow clients: 16 send a head a byte at a time (one every 250 ms, as a slowloris does),
    // 16 declare a body and send it a byte at a time.
    let slow: Vec<_> = (0..32)
        .map(|i| {
            let addr = s.addr.clone();
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(&addr).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let req: &[u8] = if i % 2 == 0 {
                    b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n"
                } else {
                    b"POST /api/shape HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{\"input\": \"1,3,8,8\", \"layers\": \"conv 8 k3\"                                                       "
                };
                let start = Instant::now();
                let head_len = req.iter().position(|&b| b == b'{').unwrap_or(req.len());
                for (k, b) in req.iter().enumerate() {
                    if c.write_all(&[*b]).is_err() {
                        break;
                    }
                    // The slow-body clients send their head at once.
                    if i % 2 == 0 || k >= head_len {
                        std::thread::sleep(Duration::from_millis(250));
                    }
                }
                let (status, _, _) = read_response(&mut c);
                (status, start.elapsed())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let loaded = latencies(&s, 20);
    for h in slow {
        let (status, took) = h.join().unwrap();
        assert_eq!(status, 408, "a slow client got {status} after {took:?}");
        assert!(took < Duration::from_secs(40), "a slow client was held {took:?}");
    }
    let p50 = |v: &[Duration]| {
        let mut v = v.to_vec();
        v.sort();
        v[v.len() / 2]
    };
    let max = |v: &[Duration]| *v.iter().max().unwrap();
    eprintln!(
        "normal client: p50 {:?} max {:?} alone; p50 {:?} max {:?} with 32 slow clients connected",
        p50(&quiet),
        max(&quiet),
        p50(&loaded),
        max(&loaded)
    );
    assert!(
        max(&loaded) < Duration::from_secs(1),
        "a normal request took {:?} beside slow clients",
        max(&loaded)
    );
}

#[test]
fn non_loopback_bind_needs_allow_remote() {
    for host in ["0.0.0.0", "::", "192.0.2.1", "10.0.0.1"] {
        let out = Command::new(BIN).args(["serve", "--host", host, "--port", "0"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{host}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--allow-remote") && err.lines().count() == 1, "{host}: {err}");
    }
}
