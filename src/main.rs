//! The `faultline` command: argument parsing and exit codes, nothing else.
fn main() {}
