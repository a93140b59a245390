//! faultline's pure library: the history model, history formats, consistency
//! models and checkers.
//!
//! **Architecture invariant:** nothing here performs I/O beyond reading
//! history files, and nothing depends on an async runtime. Checkers are
//! functions from a `History` to a `Verdict`, so they run the same in the
//! harness, in `faultline check`, in tests and in benchmarks.

pub mod budget;
pub mod causal;
pub mod classic;
pub mod convergence;
pub mod diagram;
pub mod elle;
pub mod error;
pub mod exit;
pub mod formats;
pub mod history;
pub mod html;
pub mod kv;
pub mod linear;
pub mod registry;
pub mod session;
mod siblings;
pub mod sim;
pub mod spec;
pub mod synth;
pub mod text;
pub mod txn;
pub mod value;
pub mod verdict;

pub use error::{CheckError, HistoryError, Location};
pub use history::{History, Note, Op, OpType, Pair, Process};
pub use value::{ArcStr, Value};
pub use verdict::{
    Anomaly, Budget, Checker, Compose, FromText, HtmlPage, Validity, Verdict, judge,
};
