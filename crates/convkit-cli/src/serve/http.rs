//! The HTTP/1.1 server under `convkit serve`, std only: one thread per connection (at most
//! [`Limits::connections`] at once; more get 503), keep-alive, `Content-Length` and chunked
//! bodies, and deadlines so a slow or silent client holds only its own thread: a request head
//! must arrive within [`Limits::head_timeout`] of its first byte (else 408), a body within
//! [`Limits::body_timeout`] (else 408), and an idle keep-alive connection is closed after
//! [`Limits::idle_timeout`]. Heads are capped at [`Limits::max_head`] bytes (431), bodies at
//! [`Limits::max_body`] (413). At most [`Limits::workers`] requests are computed at once;
//! reading and writing happen outside that limit.

use super::Reply;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The server's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests computed at once.
    pub workers: usize,
    /// Open connections at once.
    pub connections: usize,
    /// Largest request line and headers, in bytes.
    pub max_head: usize,
    /// Largest body, in bytes.
    pub max_body: usize,
    pub head_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            workers: 4,
            connections: 512,
            max_head: 16 << 10,
            max_body: 8 << 20,
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(30),
        }
    }
}

const CSP: &str =
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'";

/// A counting semaphore for the compute slots.
struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Slots {
    fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.cv.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        drop(free);
        struct Release<'a>(&'a Slots);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                self.0.cv.notify_one();
            }
        }
        let _release = Release(self);
        f()
    }
}

/// Serve `route(method, path, body)` on `listener` until the process ends.
pub fn serve(
    listener: TcpListener,
    limits: Limits,
    route: fn(&str, &str, &[u8]) -> Reply,
) -> Result<(), String> {
    let slots = Arc::new(Slots { free: Mutex::new(limits.workers.max(1)), cv: Condvar::new() });
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        if open.fetch_add(1, Ordering::AcqRel) >= limits.connections {
            open.fetch_sub(1, Ordering::AcqRel);
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let reply = Reply::error(503, "too many connections; try again");
            let _ = write_reply(&mut stream, &reply, false, true);
            continue;
        }
        let (slots, open2) = (Arc::clone(&slots), Arc::clone(&open));
        let spawned = std::thread::Builder::new().name("convkit-http".into()).spawn(move || {
            connection(stream, &limits, &slots, route);
            open2.fetch_sub(1, Ordering::AcqRel);
        });
        if spawned.is_err() {
            open.fetch_sub(1, Ordering::AcqRel);
        }
    }
    Ok(())
}

/// A socket reader that gives up at a deadline (each read waits at most the time left).
struct Deadline {
    stream: TcpStream,
    until: Instant,
}

impl Read for Deadline {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        match self.stream.read(buf) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => Err(ErrorKind::TimedOut.into()),
            r => r,
        }
    }
}

/// Why a request could not be read: the reply to send before closing, or nothing (the client
/// went away or stayed idle).
type Failure = Option<Reply>;

fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock)
}

struct Head {
    method: String,
    target: String,
    close: bool,
    length: Option<usize>,
    chunked: bool,
    expect_continue: bool,
}

fn connection(stream: TcpStream, limits: &Limits, slots: &Slots, route: fn(&str, &str, &[u8]) -> Reply) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(limits.body_timeout));
    let Ok(read_half) = stream.try_clone() else { return };
    let mut writer = stream;
    let mut reader =
        BufReader::new(Deadline { stream: read_half, until: Instant::now() + limits.idle_timeout });
    loop {
        // Idle until the next request's first byte, then the head has its own deadline.
        reader.get_mut().until = Instant::now() + limits.idle_timeout;
        match reader.fill_buf() {
            Ok([]) | Err(_) => return,
            Ok(_) => {}
        }
        reader.get_mut().until = Instant::now() + limits.head_timeout;
        let head = match read_head(&mut reader, limits) {
            Ok(h) => h,
            Err(failure) => return fail(&mut writer, &mut reader, failure),
        };
        if head.expect_continue && head.length.is_some_and(|n| n > limits.max_body) {
            let reply = Reply::error(413, format!("request body larger than {} MiB", limits.max_body >> 20));
            return fail(&mut writer, &mut reader, Some(reply));
        }
        if head.expect_continue && writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err() {
            return;
        }
        reader.get_mut().until = Instant::now() + limits.body_timeout;
        let body = match read_body(&mut reader, &head, limits) {
            Ok(b) => b,
            Err(failure) => return fail(&mut writer, &mut reader, failure),
        };
        let path = head.target.split(['?', '#']).next().unwrap_or("").to_string();
        // A handler bug must not take the server down: it becomes a 500.
        let reply = slots.run(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| route(&head.method, &path, &body)))
                .unwrap_or_else(|_| Reply::error(500, "internal error"))
        });
        let mut reply = reply;
        if reply.status == 405 {
            reply.allow = Some(if path.starts_with("/api/") { "POST" } else { "GET, HEAD" });
        }
        if write_reply(&mut writer, &reply, head.method == "HEAD", head.close).is_err() || head.close {
            let _ = writer.shutdown(Shutdown::Write);
            return;
        }
    }
}

/// Send `failure`'s reply and close, reading (and dropping) what the client still sends for a
/// moment so that it sees the reply rather than a reset connection.
fn fail(writer: &mut TcpStream, reader: &mut BufReader<Deadline>, failure: Failure) {
    let Some(reply) = failure else { return };
    if write_reply(writer, &reply, false, true).is_err() {
        return;
    }
    let _ = writer.shutdown(Shutdown::Write);
    reader.get_mut().until = Instant::now() + Duration::from_secs(2);
    let _ = std::io::copy(&mut reader.take(64 << 20), &mut std::io::sink());
}

/// One line of the head, without its CRLF (or bare LF), counting against `budget`.
fn head_line(
    reader: &mut BufReader<Deadline>,
    budget: &mut usize,
    limits: &Limits,
) -> Result<String, Failure> {
    let too_large =
        || Some(Reply::error(431, format!("request head larger than {} KiB", limits.max_head >> 10)));
    let mut line = Vec::new();
    loop {
        let buf = match reader.fill_buf() {
            Ok([]) => return Err(None),
            Ok(b) => b,
            Err(e) if timed_out(&e) => {
                return Err(Some(Reply::error(408, "request head not received in time")));
            }
            Err(_) => return Err(None),
        };
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if take > *budget {
            return Err(too_large());
        }
        *budget -= take;
        line.extend_from_slice(&buf[..take]);
        reader.consume(take);
        if done {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return String::from_utf8(line).map_err(|_| Some(Reply::error(400, "request head is not UTF-8")));
        }
    }
}

fn read_head(reader: &mut BufReader<Deadline>, limits: &Limits) -> Result<Head, Failure> {
    let bad = |msg: &str| Some(Reply::error(400, msg.to_string()));
    let mut budget = limits.max_head;
    let line = head_line(reader, &mut budget, limits)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) || !target.starts_with('/') {
        return Err(bad("malformed request line"));
    }
    let mut close = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(Some(Reply::error(505, format!("unsupported HTTP version {version}")))),
    };
    let mut head = Head {
        method: method.to_string(),
        target: target.to_string(),
        close,
        length: None,
        chunked: false,
        expect_continue: false,
    };
    loop {
        let line = head_line(reader, &mut budget, limits)?;
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else { return Err(bad("malformed header line")) };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        match name.as_str() {
            "content-length" => {
                let n = value.parse::<usize>().map_err(|_| bad("invalid Content-Length"))?;
                if head.length.is_some_and(|m| m != n) {
                    return Err(bad("conflicting Content-Length headers"));
                }
                head.length = Some(n);
            }
            "transfer-encoding" => {
                if !value.eq_ignore_ascii_case("chunked") {
                    return Err(Some(Reply::error(501, format!("unsupported Transfer-Encoding {value}"))));
                }
                head.chunked = true;
            }
            "connection" => {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    close = true;
                } else if v.contains("keep-alive") {
                    close = false;
                }
            }
            "expect" => {
                if !value.eq_ignore_ascii_case("100-continue") {
                    return Err(Some(Reply::error(417, format!("unsupported Expect {value}"))));
                }
                head.expect_continue = true;
            }
            _ => {}
        }
    }
    if head.chunked && head.length.is_some() {
        return Err(bad("both Content-Length and Transfer-Encoding"));
    }
    head.close = close;
    Ok(head)
}

fn read_body(reader: &mut BufReader<Deadline>, head: &Head, limits: &Limits) -> Result<Vec<u8>, Failure> {
    let too_large =
        || Some(Reply::error(413, format!("request body larger than {} MiB", limits.max_body >> 20)));
    let io = |e: std::io::Error| {
        if timed_out(&e) {
            Some(Reply::error(408, "request body not received in time"))
        } else if e.kind() == ErrorKind::UnexpectedEof {
            None
        } else {
            Some(Reply::error(400, format!("cannot read the request body: {e}")))
        }
    };
    if let Some(n) = head.length {
        if n > limits.max_body {
            return Err(too_large());
        }
        let mut body = vec![0; n];
        reader.read_exact(&mut body).map_err(io)?;
        return Ok(body);
    }
    if !head.chunked {
        return Ok(Vec::new());
    }
    let mut body = Vec::new();
    let mut budget = limits.max_head;
    loop {
        let line = head_line(reader, &mut budget, limits)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let n = usize::from_str_radix(size, 16).map_err(|_| Some(Reply::error(400, "invalid chunk size")))?;
        if n == 0 {
            // Trailers, up to the empty line.
            while !head_line(reader, &mut budget, limits)?.is_empty() {}
            return Ok(body);
        }
        if n > limits.max_body - body.len() {
            return Err(too_large());
        }
        let at = body.len();
        body.resize(at + n, 0);
        reader.read_exact(&mut body[at..]).map_err(io)?;
        if !head_line(reader, &mut budget, limits)?.is_empty() {
            return Err(Some(Reply::error(400, "chunk not followed by CRLF")));
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

fn write_reply(w: &mut TcpStream, reply: &Reply, head_only: bool, close: bool) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
         X-Content-Type-Options: nosniff\r\nContent-Security-Policy: {CSP}\r\n",
        reply.status,
        reason(reply.status),
        reply.content_type,
        reply.body.len()
    );
    if let Some(allow) = reply.allow {
        out += &format!("Allow: {allow}\r\n");
    }
    if close {
        out += "Connection: close\r\n";
    }
    out += "\r\n";
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(&reply.body);
    }
    w.write_all(&bytes)?;
    w.flush()
}
