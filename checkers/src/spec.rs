//! What a user asks of a checker: its name, model, initial value,
//! consistency models, budget and `--opt` options, and the readers every
//! checker shares for those options.
//!
//! Checkers read their configuration from here and nowhere else; the
//! [`crate::registry`] decides which of these fields a checker accepts, so
//! a flag a checker would ignore is refused before it is built.

use std::collections::BTreeMap;

use crate::budget::Budget;
use crate::error::CheckError;
use crate::value::Value;

/// How many violations of each kind a checker explains unless
/// `--opt max-anomalies=N` says otherwise; the rest are counted.
pub const DEFAULT_MAX_ANOMALIES: usize = 20;

/// What the user asked for: a checker name and its options.
#[derive(Clone, Debug, Default)]
pub struct CheckSpec {
    /// The checker's name (see [`crate::registry::CheckerTable`]).
    pub checker: String,
    /// The model, for checkers that take one (`cas-register` for
    /// `linearizable`, `causal` for `causal`).
    pub model: Option<String>,
    /// The model's initial value, where it has one.
    pub init: Option<Value>,
    /// Consistency models to check against, for the transactional checkers.
    pub consistency_models: Vec<String>,
    /// Treat each op's value as an independent `[key value]` tuple.
    pub independent: bool,
    /// Time and memory limits.
    pub budget: Budget,
    /// Checker-specific options (`--opt key=value`).
    pub options: BTreeMap<String, String>,
}

impl CheckSpec {
    /// A spec naming `checker`, with nothing else set.
    pub fn new(checker: impl Into<String>) -> CheckSpec {
        CheckSpec { checker: checker.into(), ..CheckSpec::default() }
    }

    /// The same spec with `--opt name=value` added.
    #[must_use]
    pub fn with_option(mut self, name: impl Into<String>, value: impl Into<String>) -> CheckSpec {
        self.options.insert(name.into(), value.into());
        self
    }

    /// The text of `--opt name=...`, if given.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options.get(name).map(String::as_str)
    }

    /// Reads a true/false `--opt name=...`, `default` when absent.
    pub fn bool_option(&self, name: &str, default: bool) -> Result<bool, CheckError> {
        match self.option(name) {
            None => Ok(default),
            Some(v) => parse_bool(name, v),
        }
    }

    /// Reads `--opt max-anomalies=N`: how many violations of each kind are
    /// explained ([`DEFAULT_MAX_ANOMALIES`] when absent).
    pub fn max_anomalies(&self) -> Result<usize, CheckError> {
        match self.option("max-anomalies") {
            None => Ok(DEFAULT_MAX_ANOMALIES),
            Some(v) => v.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
                CheckError::BadOption(format!(
                    "--opt max-anomalies must be a positive number, not {v:?}"
                ))
            }),
        }
    }
}

/// Reads a true/false `--opt` value.
pub fn parse_bool(name: &str, v: &str) -> Result<bool, CheckError> {
    match v {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(CheckError::BadOption(format!("--opt {name}={v}: expected true or false"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_read_with_defaults_and_clear_errors() {
        let spec = CheckSpec::new("x").with_option("linearizable", "yes");
        assert!(spec.bool_option("linearizable", false).expect("a boolean"));
        assert!(!spec.bool_option("absent", false).expect("default"));
        assert_eq!(spec.max_anomalies().expect("default"), DEFAULT_MAX_ANOMALIES);
        let bad = CheckSpec::new("x").with_option("max-anomalies", "0");
        let err = bad.max_anomalies().expect_err("zero").to_string();
        assert_eq!(err, "--opt max-anomalies must be a positive number, not \"0\"");
        let err = CheckSpec::new("x")
            .with_option("flag", "maybe")
            .bool_option("flag", true)
            .expect_err("not a boolean")
            .to_string();
        assert_eq!(err, "--opt flag=maybe: expected true or false");
    }
}
