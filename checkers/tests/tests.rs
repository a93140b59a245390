//! Integration tests of the checkers crate, one module per area.

/// The modules import each other without cycles, and no function is longer
/// than 150 lines.
mod architecture;

/// Verdicts on the Porcupine / Horn–Kroening benchmark histories.
mod benchdata;
/// History readers on the shapes other tools write, and fuzzing's finds.
mod formats;
/// Hand-written histories with their expected verdicts and explanations.
mod golden;
/// Generated histories, valid and corrupted, for every linearizability model.
mod linear_props;
/// Register histories decided straight from their EDN text.
mod linear_text;

/// The Elle-style transactional checkers (`list-append`, `rw-register`).
mod elle;
/// List-append histories read straight from their text.
mod elle_text;
/// What the text paths' tests share.
mod text_paths;

/// Hand-written histories, each naming its checker, with their expected
/// verdicts checked in as text.
mod golden_verdicts;

/// What every checker's HTML pages must hold (used by the golden tests).
mod html;

/// The causal checker against simulated causally consistent replication.
mod causal;

/// Session guarantees against simulated sticky-session replication.
mod session;

/// Jepsen's classic checkers and convergence against simulated objects.
mod classic;

/// Regressions for wrong verdicts, named after what they caught.
mod verdict_truth;
