//! The process exit codes of every faultline command, in one place.
//!
//! They follow Jepsen: a verdict is 0 valid, 1 invalid, 2 unknown. Beyond
//! verdicts, 3 says the harness itself failed (a node would not start, the
//! run was interrupted), so a run's exit code never blames the system under
//! test for faultline's own trouble, and 254 says the arguments or the
//! input could not be read.

/// The history is valid.
pub const VALID: i32 = 0;
/// The history is invalid.
pub const INVALID: i32 = 1;
/// The checkers could not decide.
pub const UNKNOWN: i32 = 2;
/// The harness failed, not the system under test.
pub const HARNESS_FAILED: i32 = 3;
/// Bad arguments or unreadable input.
pub const BAD_INPUT: i32 = 254;
