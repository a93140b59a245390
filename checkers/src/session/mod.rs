//! Session guarantees (Terry et al., "Session Guarantees for Weakly
//! Consistent Replicated Data", 1994): read-your-writes, monotonic reads,
//! monotonic writes and writes-follow-reads, each reported separately with
//! its witnesses, for list-append and register histories.
//!
//! A session is one process's operations in order; an operation (or a
//! transaction, as one unit) is served by some replica, which holds some set
//! of writes. A guarantee names writes that set must contain:
//!
//! - **read-your-writes**: the session's own earlier writes;
//! - **monotonic reads**: the writes its earlier reads observed;
//! - **monotonic writes**: once a session has observed a write, every write
//!   its author made before it (and in that order);
//! - **writes-follow-reads**: once a session has observed a write, every write
//!   its author had read before making it (and ordered before it).
//!
//! A list-append read shows exactly which appends its replica held (the
//! elements of the list), so every missing element is evidence. A register
//! read shows only the winning write, so only what is certainly older counts:
//! the initial value, a value the session itself saw replaced, or a write its
//! author replaced. When one missing write breaks several guarantees, it is
//! reported once, under the first of the order above (the session's own
//! history is the most direct evidence).
//!
//! The checker is in pieces by concern: `sessions` reads the history into
//! sessions of units, `evidence` holds a finding and the words shared by
//! both workloads, `order` the version order a list-append history shows,
//! `list_append` and `register` the rules of each guarantee per workload,
//! `report` the verdict and `html` its page.

mod evidence;
mod html;
mod list_append;
mod order;
mod register;
mod report;
mod sessions;
#[cfg(test)]
mod testing;

use std::time::Instant;

use crate::budget::Budget;
use crate::error::CheckError;
use crate::history::History;
use crate::spec::CheckSpec;
use crate::value::Value;
use crate::verdict::{Checker, HtmlPage, Verdict};

use evidence::Ctx;

/// One session guarantee.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Guarantee {
    /// Reads see the session's own earlier writes.
    ReadYourWrites,
    /// Reads see what the session's earlier reads saw.
    MonotonicReads,
    /// A write is visible only with (and after) its author's earlier writes.
    MonotonicWrites,
    /// A write is visible only with (and after) the writes its author had read.
    WritesFollowReads,
}

impl Guarantee {
    /// All four, in reporting precedence.
    pub const ALL: [Guarantee; 4] = [
        Guarantee::ReadYourWrites,
        Guarantee::MonotonicReads,
        Guarantee::MonotonicWrites,
        Guarantee::WritesFollowReads,
    ];

    /// The name used as checker name and anomaly kind.
    pub fn name(self) -> &'static str {
        match self {
            Guarantee::ReadYourWrites => "read-your-writes",
            Guarantee::MonotonicReads => "monotonic-reads",
            Guarantee::MonotonicWrites => "monotonic-writes",
            Guarantee::WritesFollowReads => "writes-follow-reads",
        }
    }

    /// Parses a name (`read-your-writes`, `ryw`, ...).
    pub fn parse(s: &str) -> Option<Guarantee> {
        match s {
            "read-your-writes" | "ryw" => Some(Guarantee::ReadYourWrites),
            "monotonic-reads" | "mr" => Some(Guarantee::MonotonicReads),
            "monotonic-writes" | "mw" => Some(Guarantee::MonotonicWrites),
            "writes-follow-reads" | "wfr" => Some(Guarantee::WritesFollowReads),
            _ => None,
        }
    }
}

/// How to read the history's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Appends of unique elements to lists; reads return whole lists.
    ListAppend,
    /// Writes of unique values to registers; reads return one value.
    Register,
}

/// The session-guarantees checker (`session`, or one guarantee by name).
#[derive(Clone, Debug)]
pub struct SessionChecker {
    name: String,
    guarantees: Vec<Guarantee>,
    workload: Option<Workload>,
    limit: usize,
    budget: Budget,
}

impl SessionChecker {
    /// A checker for `guarantees`, detecting the workload.
    pub fn new(name: impl Into<String>, guarantees: Vec<Guarantee>) -> SessionChecker {
        SessionChecker {
            name: name.into(),
            guarantees,
            workload: None,
            limit: crate::spec::DEFAULT_MAX_ANOMALIES,
            budget: Budget::default(),
        }
    }

    /// Builds the checker named `spec.checker` (`session` checks all four,
    /// or `--opt guarantees=ryw,mr`; a guarantee's name checks only it),
    /// with `--opt workload=list-append|register` and `--opt max-anomalies=N`.
    pub fn from_spec(spec: &CheckSpec) -> Result<SessionChecker, CheckError> {
        let guarantees = match Guarantee::parse(&spec.checker) {
            Some(g) => vec![g],
            None => match spec.options.get("guarantees") {
                None => Guarantee::ALL.to_vec(),
                Some(list) => list
                    .split(',')
                    .map(|g| {
                        Guarantee::parse(g.trim()).ok_or_else(|| {
                            CheckError::BadOption(format!(
                                "--opt guarantees: unknown guarantee {g:?}; known: read-your-writes, \
                                 monotonic-reads, monotonic-writes, writes-follow-reads"
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?,
            },
        };
        let mut c = SessionChecker::new(spec.checker.clone(), guarantees);
        c.workload = match spec.options.get("workload").map(String::as_str) {
            None => None,
            Some("list-append") => Some(Workload::ListAppend),
            Some("register") => Some(Workload::Register),
            Some(other) => {
                return Err(CheckError::BadOption(format!(
                    "--opt workload must be list-append or register, not {other:?}"
                )));
            }
        };
        c.limit = spec.max_anomalies()?;
        c.budget = spec.budget;
        Ok(c)
    }
}

impl Checker for SessionChecker {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self, history: &History) -> Result<Verdict, CheckError> {
        let started = Instant::now();
        let meter = self.budget.start();
        let p = sessions::parse(history, self.workload)?;
        // A register read of several siblings observed no one write, which
        // every guarantee here is judged by.
        if p.workload == Workload::Register
            && let Some(mut v) = crate::siblings::unjudged(&self.name, history, &Value::Nil)?
        {
            v.elapsed = started.elapsed();
            return Ok(v);
        }
        if !p.units.iter().any(|u| !u.reads.is_empty()) {
            return Ok(report::nothing_read(&self.name, &p, started));
        }
        let ctx = Ctx { history, p: &p, meter: &meter };
        let mut found = Vec::new();
        let exhausted = match p.workload {
            Workload::ListAppend => list_append::list_append(&ctx, &self.guarantees, &mut found)?,
            Workload::Register => register::register(&ctx, &self.guarantees, &mut found)?,
        };
        if let Some(reason) = exhausted {
            return Ok(Verdict::out_of_budget(self.name.clone(), reason, started.elapsed()));
        }
        Ok(report::verdict(self, &ctx, found, started))
    }

    fn render_html(&self, _history: &History, verdict: &Verdict) -> Vec<HtmlPage> {
        vec![html::page(&self.name, &self.guarantees, verdict)]
    }
}
