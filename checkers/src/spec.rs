//! What a user asks of a checker: its name, model, initial value,
//! consistency models, budget and `--opt` options, and the readers every
//! checker shares for those options.
//!
//! Checkers read their configuration from here and nowhere else. What a
//! checker reads is its [`Accepts`]; the checker table refuses anything
//! else before the checker is built, so a flag is never silently ignored.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::budget::Budget;
use crate::error::CheckError;
use crate::value::Value;

/// How many violations of each kind a checker explains unless
/// `--opt max-anomalies=N` says otherwise; the rest are counted.
pub const DEFAULT_MAX_ANOMALIES: usize = 20;

/// What the user asked for: a checker name and its options.
///
/// It is stored with each verdict in a run's `results.json` (see
/// `docs/results-format.md`), so a report can rebuild the checker to draw
/// its evidence: the budget is written as `budget_ms` and `memory_bytes`,
/// and empty fields are left out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredSpec", into = "StoredSpec")]
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

/// [`CheckSpec`] as `results.json` holds it.
#[derive(Clone, Default, Serialize, Deserialize)]
struct StoredSpec {
    #[serde(default)]
    checker: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    init: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    consistency_models: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    independent: bool,
    /// Time budget in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    budget_ms: Option<u64>,
    /// Memory budget in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    memory_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    options: BTreeMap<String, String>,
}

impl From<StoredSpec> for CheckSpec {
    fn from(s: StoredSpec) -> CheckSpec {
        CheckSpec {
            checker: s.checker,
            model: s.model,
            init: s.init,
            consistency_models: s.consistency_models,
            independent: s.independent,
            budget: Budget {
                time: s.budget_ms.map(Duration::from_millis),
                memory: s.memory_bytes.and_then(|m| usize::try_from(m).ok()),
            },
            options: s.options,
        }
    }
}

impl From<CheckSpec> for StoredSpec {
    fn from(s: CheckSpec) -> StoredSpec {
        StoredSpec {
            checker: s.checker,
            model: s.model,
            init: s.init,
            consistency_models: s.consistency_models,
            independent: s.independent,
            budget_ms: s.budget.time.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            memory_bytes: s.budget.memory.map(|m| m as u64),
            options: s.options,
        }
    }
}

/// An `--opt` key a checker reads, with one line of help.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionDoc {
    /// The key (`max-anomalies`).
    pub name: String,
    /// What it does and what it takes.
    pub help: String,
}

/// What a checker reads from a [`CheckSpec`] besides its name and budget
/// (every checker honours `--time-limit` and `--memory-limit`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accepts {
    /// The `--model` values it understands; empty when it takes no model.
    pub models: Vec<String>,
    /// Whether it reads `--init` (a model may still refuse it; see the
    /// linearizable checker, whose set and queue models start empty).
    pub init: bool,
    /// Whether it reads `--consistency-models`.
    pub consistency_models: bool,
    /// Whether `--independent` (values as `[key value]` tuples, checked
    /// per key) makes sense for it.
    pub independent: bool,
    /// The `--opt` keys it reads.
    pub options: Vec<OptionDoc>,
    /// For a checker that passes the spec on to others (`compose`): the
    /// table does not validate the spec, the factory does, per child.
    pub delegates: bool,
    /// The operations it judges, as groups of functions: a history must
    /// hold one function of every group for the checker to say anything
    /// (`counter`: a `read`, and an `add` or `increment`). Empty when any
    /// history will do.
    pub needs: Vec<Vec<String>>,
}

impl Accepts {
    /// Accepts nothing but the budget.
    pub fn nothing() -> Accepts {
        Accepts::default()
    }

    /// The same, also reading `--opt name=...`.
    #[must_use]
    pub fn option(mut self, name: &str, help: &str) -> Accepts {
        self.options.push(OptionDoc { name: name.to_owned(), help: help.to_owned() });
        self
    }

    /// The same, also reading `--opt max-anomalies=N`.
    #[must_use]
    pub fn max_anomalies(self) -> Accepts {
        self.option("max-anomalies", "how many violations of each kind to explain (default 20)")
    }

    /// The same, taking these `--model` values.
    #[must_use]
    pub fn models(mut self, models: &[&str]) -> Accepts {
        self.models = models.iter().map(|m| (*m).to_owned()).collect();
        self
    }

    /// The same, reading `--init`.
    #[must_use]
    pub fn init(mut self) -> Accepts {
        self.init = true;
        self
    }

    /// The same, reading `--independent`.
    #[must_use]
    pub fn independent(mut self) -> Accepts {
        self.independent = true;
        self
    }

    /// The same, needing an operation of one of `fs` (see [`Accepts::needs`]).
    #[must_use]
    pub fn needs(mut self, fs: &[&str]) -> Accepts {
        self.needs.push(fs.iter().map(|f| (*f).to_owned()).collect());
        self
    }

    /// The first group of needed functions none of `fs` is in, when one
    /// is: a history of only `fs` gives this checker nothing to judge.
    pub fn unmet_need(&self, fs: &[String]) -> Option<&[String]> {
        self.needs.iter().find(|group| !group.iter().any(|f| fs.contains(f))).map(Vec::as_slice)
    }

    /// Whether `--opt name` is one of these options.
    pub fn has_option(&self, name: &str) -> bool {
        self.options.iter().any(|o| o.name == name)
    }

    /// Checks that `spec` asks only for what this accepts; `checker` names
    /// the checker in the error.
    pub fn validate(&self, checker: &str, spec: &CheckSpec) -> Result<(), CheckError> {
        let bad = |m: String| Err(CheckError::BadOption(m));
        if let Some(m) = &spec.model {
            if self.models.is_empty() {
                return bad(format!("the {checker} checker takes no --model (given {m:?})"));
            }
            if !self.models.iter().any(|k| k == m) {
                return bad(format!(
                    "the {checker} checker has no model {m:?}; its models are {}",
                    self.models.join(", ")
                ));
            }
        }
        if spec.init.is_some() && !self.init {
            return bad(format!(
                "the {checker} checker has no initial value to set, so --init does not apply to it"
            ));
        }
        if !spec.consistency_models.is_empty() && !self.consistency_models {
            return bad(format!(
                "the {checker} checker does not judge consistency models; --consistency-models \
                 applies to list-append and rw-register"
            ));
        }
        if spec.independent && !self.independent {
            return bad(format!(
                "--independent does not apply to the {checker} checker, which does not check \
                 keys apart"
            ));
        }
        for name in spec.options.keys() {
            if !self.has_option(name) {
                let known: Vec<&str> = self.options.iter().map(|o| o.name.as_str()).collect();
                return bad(if known.is_empty() {
                    format!("the {checker} checker takes no --opt options (given {name:?})")
                } else {
                    format!(
                        "unknown option {name:?} for the {checker} checker; its options are {}",
                        known.join(", ")
                    )
                });
            }
        }
        Ok(())
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
