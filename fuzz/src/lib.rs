//! The command line's modules, compiled from crates/convkit-cli/src so the fuzz targets reach
//! its parsers and the `serve` API handlers in-process. The few items of its main.rs those
//! modules use (`e`, `parse_groups`, `CliResult`, `ConvArgs`) are included from it verbatim
//! below the module list.
#![allow(dead_code, unused_imports, clippy::all)]

#[path = "../../crates/convkit-cli/src/demo.rs"]
pub mod demo;
#[path = "../../crates/convkit-cli/src/explain.rs"]
pub mod explain;
#[path = "../../crates/convkit-cli/src/filter.rs"]
pub mod filter;
#[path = "../../crates/convkit-cli/src/font.rs"]
pub mod font;
#[path = "../../crates/convkit-cli/src/html.rs"]
pub mod html;
#[path = "../../crates/convkit-cli/src/image_io.rs"]
pub mod image_io;
#[path = "../../crates/convkit-cli/src/output.rs"]
pub mod output;
#[path = "../../crates/convkit-cli/src/serve.rs"]
pub mod serve;
#[path = "../../crates/convkit-cli/src/shape.rs"]
pub mod shape;

use clap::Args;
use std::path::PathBuf;
use convkit::{parse_list, ConvDesc, Layout, PadMode, Padding};
include!(concat!(env!("OUT_DIR"), "/cli_root.rs"));

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
