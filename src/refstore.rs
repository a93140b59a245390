//! `faultline refstore ...` (hidden): runs the reference store from the faultline binary, so a
//! local cluster needs nothing else. Every argument goes to refstore's own command line.

use clap::Args;
use std::process::ExitCode;

/// Arguments passed through unchanged to `refstore` (see targets/refstore/README.md).
#[derive(Args)]
#[command(disable_help_flag = true)]
pub struct RefstoreArgs {
    /// refstore's arguments, for example `cluster --mode raft --data-dir DIR`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Runs refstore with the given arguments and returns its exit code.
pub fn run(args: RefstoreArgs) -> ExitCode {
    ::refstore::main_from_args(args.args)
}
