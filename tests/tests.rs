//! Integration tests of the `faultline` binary, one module per area.

/// `faultline check` and `faultline generate`: exit codes, outputs, errors.
mod check;
/// Whole test campaigns on each runtime, interruption and cleanup.
mod e2e;
