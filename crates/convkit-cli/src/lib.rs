//! The `convkit` command line as a library: every command's module (the binary, `main.rs`,
//! only parses the arguments and dispatches), so other front ends share its parsing, values
//! and messages — the Python package in `crates/convkit-py` (convolution flags, `shape`,
//! `explain`) and the fuzz targets in `fuzz/` (value grammars, `filter`, the `serve` API).

pub mod bench;
pub mod demo;
pub mod explain;
pub mod filter;
pub mod font;
pub mod html;
pub mod image_io;
pub mod output;
pub mod serve;
pub mod shape;
pub mod train_demo;

use clap::Args;
use convkit::{parse_list, ConvDesc, Layout, PadMode, Padding};
use std::path::PathBuf;

/// The flags every convolution command shares.
#[derive(Args)]
pub struct ConvArgs {
    /// Bias .npy, one value per output channel
    #[arg(long, value_name = "FILE")]
    pub bias: Option<PathBuf>,
    /// Stride per axis
    #[arg(long, default_value = "1", value_name = "S")]
    pub stride: String,
    /// Padding: integers or valid | same | same-lower | full (see below)
    #[arg(long, default_value = "0", value_name = "P")]
    pub padding: String,
    /// Dilation per axis
    #[arg(long, default_value = "1", value_name = "D")]
    pub dilation: String,
    /// Groups (divides input and output channels; = channels for depthwise)
    #[arg(long, default_value = "1", value_name = "G")]
    pub groups: String,
    /// True convolution: reverse the kernel on every spatial axis
    #[arg(long)]
    pub flip: bool,
    /// Data layout: nchw (channels first) or nhwc (channels last); weights keep their order
    #[arg(long, default_value = "nchw", value_name = "L")]
    pub layout: String,
}

/// A result whose error is the one line the command line prints after `convkit: `.
pub type CliResult<T> = Result<T, String>;

/// A library error as that line.
pub fn e(err: convkit::Error) -> String {
    err.to_string()
}

impl ConvArgs {
    /// The convolution these flags describe, with `padding_mode`.
    pub fn conv_desc(&self, padding_mode: &str) -> CliResult<ConvDesc> {
        Ok(ConvDesc::new()
            .stride(parse_list("stride", &self.stride).map_err(e)?)
            .dilation(parse_list("dilation", &self.dilation).map_err(e)?)
            .padding(self.padding.parse::<Padding>().map_err(e)?)
            .padding_mode(padding_mode.parse::<PadMode>().map_err(e)?)
            .groups(parse_groups(&self.groups)?)
            .flip(self.flip)
            .layout(self.layout.parse::<Layout>().map_err(e)?))
    }
}

/// `--groups`: a positive integer.
pub fn parse_groups(s: &str) -> CliResult<usize> {
    s.trim()
        .parse::<usize>()
        .ok()
        .filter(|&g| g > 0)
        .ok_or_else(|| format!("invalid groups {s}: expected a positive integer"))
}
