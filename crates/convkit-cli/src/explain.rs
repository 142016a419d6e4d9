//! `convkit explain` (issue 5): being written.

use crate::CliResult;
use clap::Args;

/// Arguments of `convkit explain`.
#[derive(Args, Debug, Default, Clone, serde::Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct ExplainArgs {}

pub fn after_help() -> String {
    String::new()
}

pub fn run(_a: ExplainArgs) -> CliResult<()> {
    Err("explain: not built yet".into())
}
