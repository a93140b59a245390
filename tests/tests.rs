//! Integration tests of the `faultline` binary, one module per area.

/// Whole test campaigns on each runtime, interruption and cleanup.
mod e2e;
