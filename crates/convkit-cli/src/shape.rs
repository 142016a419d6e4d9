//! `convkit shape` (issue 5): being written.

use crate::CliResult;
use clap::Args;

/// Arguments of `convkit shape`.
#[derive(Args, Debug, Default, Clone, serde::Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct ShapeArgs {}

pub fn after_help() -> String {
    String::new()
}

pub fn run(_a: ShapeArgs) -> CliResult<()> {
    Err("shape: not built yet".into())
}
