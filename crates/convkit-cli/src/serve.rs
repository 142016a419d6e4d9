//! `convkit serve` (issue 5): being written.

use crate::CliResult;
use clap::Args;

/// Arguments of `convkit serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {}

pub fn run(_a: ServeArgs) -> CliResult<()> {
    Err("serve: not built yet".into())
}
