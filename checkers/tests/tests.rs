//! Integration tests of the checkers crate, one module per area.

/// Verdicts on the Porcupine / Horn–Kroening benchmark histories.
mod benchdata;
/// Generated histories, valid and corrupted, for every linearizability model.
mod linear_props;
