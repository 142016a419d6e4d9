//! `convkit serve`: a local web page (sliding window, image filters, layer stacks) whose every
//! number comes from the Rust core through a small JSON API. The page's files are embedded in
//! the binary; nothing is fetched from the network.

pub mod api;
mod http;
mod network;
mod volume;

use crate::CliResult;
use clap::Args;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};

/// Arguments of `convkit serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; only loopback addresses unless --allow-remote
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    host: String,
    /// Port to listen on (0 picks a free port)
    #[arg(long, default_value = "8000", value_name = "N")]
    port: String,
    /// Allow a non-loopback --host: anyone who can reach it can use the page (no authentication)
    #[arg(long)]
    allow_remote: bool,
    /// The Network tab's model: a `convkit train-demo` folder; when it holds none, one is trained at start-up
    #[arg(long, default_value = "convkit-train-demo", value_name = "DIR")]
    model: std::path::PathBuf,
}

/// Largest request body accepted (an uploaded image is sent base64-encoded).
pub(crate) const MAX_BODY: usize = 8 << 20;
/// Requests computed at once (the others wait their turn; connections are not limited by it).
const WORKERS: usize = 4;

const INDEX_HTML: &str = include_str!("../assets/serve/index.html");
/// One script for the page: the tabs' files joined.
const APP_JS: &str = concat!(
    include_str!("../assets/serve/app.js"),
    "\n",
    include_str!("../assets/serve/volume.js"),
    "\n",
    include_str!("../assets/serve/network.js")
);
const STYLE_CSS: &str = include_str!("../assets/serve/style.css");
/// The embedded input: scikit-image's "camera" (CC0), see `assets/SOURCES.md`.
pub(crate) const CAMERA: &[u8] = include_bytes!("../assets/camera.png");

fn parse_addr(a: &ServeArgs) -> CliResult<SocketAddr> {
    let ip: IpAddr = match a.host.trim() {
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        h => h.trim_start_matches('[').trim_end_matches(']').parse().map_err(|_| {
            format!("invalid host {}: expected an IP address such as 127.0.0.1 or ::1", a.host)
        })?,
    };
    if !ip.is_loopback() && !a.allow_remote {
        return Err(format!(
            "invalid host {}: not a loopback address; add --allow-remote to serve other machines (the page has no authentication)",
            a.host
        ));
    }
    let port: u16 = a
        .port
        .trim()
        .parse()
        .map_err(|_| format!("invalid port {}: expected an integer from 0 to 65535", a.port))?;
    Ok(SocketAddr::new(ip, port))
}

pub fn run(a: ServeArgs) -> CliResult<()> {
    let addr = parse_addr(&a)?;
    let listener = TcpListener::bind(addr).map_err(|err| {
        let why = match err.kind() {
            std::io::ErrorKind::AddrInUse => "already in use".to_string(),
            _ => err.to_string(),
        };
        format!("invalid port {}: cannot listen on {addr}: {why}", a.port)
    })?;
    let local = listener.local_addr().map_err(|err| format!("invalid port {}: {err}", a.port))?;
    let url = match local.ip() {
        IpAddr::V6(ip) => format!("http://[{ip}]:{}/", local.port()),
        IpAddr::V4(ip) => format!("http://{ip}:{}/", local.port()),
    };
    let mut out = std::io::stdout().lock();
    // Tests and scripts read this line to find the port.
    writeln!(out, "convkit serve: {url}")
        .and_then(|()| out.flush())
        .map_err(|err| format!("stdout: {err}"))?;
    drop(out);
    network::start(a.model.clone());
    http::serve(
        listener,
        http::Limits { workers: WORKERS, max_body: MAX_BODY, ..http::Limits::default() },
        route,
    )
}

/// A response: status, content type and body.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// The `Allow` header of a 405.
    pub allow: Option<&'static str>,
}

impl Reply {
    fn ok(content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
        Reply { status: 200, content_type, body: body.into(), allow: None }
    }

    pub(crate) fn json(status: u16, value: &serde_json::Value) -> Reply {
        Reply { status, content_type: "application/json", body: value.to_string().into_bytes(), allow: None }
    }

    pub(crate) fn error(status: u16, msg: impl Into<String>) -> Reply {
        Reply::json(status, &serde_json::json!({ "error": msg.into() }))
    }
}

/// Answer one request (its body already read, at most [`MAX_BODY`] bytes).
fn route(method: &str, path: &str, body: &[u8]) -> Reply {
    let get = matches!(method, "GET" | "HEAD");
    let post = method == "POST";
    let asset = match path {
        "/" | "/index.html" => Some(Reply::ok("text/html; charset=utf-8", INDEX_HTML)),
        "/app.js" => Some(Reply::ok("text/javascript; charset=utf-8", APP_JS)),
        "/style.css" => Some(Reply::ok("text/css; charset=utf-8", STYLE_CSS)),
        "/image/photo.png" => Some(Reply::ok("image/png", volume::ASTRONAUT)),
        "/api/network" => Some(network::info()),
        "/image/default.png" => Some(Reply::ok("image/png", CAMERA)),
        "/api/kernels" => Some(Reply::json(200, &api::kernels())),
        _ => None,
    };
    if let Some(reply) = asset {
        return if get { reply } else { Reply::error(405, format!("method {method} not allowed on {path}")) };
    }
    let handler: fn(&[u8]) -> Reply = match path {
        "/api/explain" => api::explain,
        "/api/shape" => api::shape,
        "/api/filter" => api::filter,
        "/api/volume" => volume::volume,
        "/api/network/run" => network::run,
        "/api/network/cell" => network::cell,
        _ => return Reply::error(404, format!("not found: {path}")),
    };
    if !post {
        return Reply::error(405, format!("method {method} not allowed on {path}: use POST"));
    }
    handler(body)
}
