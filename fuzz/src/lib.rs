//! What the fuzz targets call: the command line's own modules, from its library target
//! (`convkit_cli`), so the targets reach its parsers and the `serve` API handlers in-process,
//! compiled as the binary compiles them.

pub use convkit_cli::{explain, filter, serve};
use convkit_cli::parse_groups;

/// `POST /api/explain`, `/api/shape` or `/api/filter` (`which` 0, 1, 2) with `body`: the HTTP
/// status the server would answer.
pub fn serve_api(which: u8, body: &[u8]) -> u16 {
    let reply = match which % 3 {
        0 => serve::api::explain(body),
        1 => serve::api::shape(body),
        _ => serve::api::filter(body),
    };
    reply.status
}

#[derive(clap::Parser)]
#[command(allow_negative_numbers = true)]
struct FilterCmd {
    #[command(flatten)]
    args: filter::FilterArgs,
}

/// `convkit filter ARGS…` (without the program name), as the binary runs it.
pub fn filter_cli(args: &[&str]) -> Result<(), String> {
    use clap::Parser;
    let cmd = FilterCmd::try_parse_from(std::iter::once("filter").chain(args.iter().copied()))
        .map_err(|e| e.to_string())?;
    filter::run(cmd.args)
}

/// `--groups` as the command line parses it.
pub fn groups(s: &str) -> Result<usize, String> {
    parse_groups(s)
}
