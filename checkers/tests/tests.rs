//! Integration tests of the checkers crate, one module per area.

/// Verdicts on the Porcupine / Horn–Kroening benchmark histories.
mod benchdata;
/// Hand-written histories with their expected verdicts and explanations.
mod golden;
/// Generated histories, valid and corrupted, for every linearizability model.
mod linear_props;

/// The Elle-style transactional checkers (`list-append`, `rw-register`).
mod elle;
