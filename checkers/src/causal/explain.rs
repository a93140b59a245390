//! Violations in words: each names its operations and walks the chain of
//! causality step by step, as a newcomer would retell it.

use serde_json::json;

use super::graph::{Chain, Step};
use super::patterns::{Pattern, Violation};
use crate::history::History;
use crate::kv::KvHistory;
use crate::verdict::Anomaly;

/// Turns violations into anomalies.
pub struct Explainer<'a> {
    /// The history, for op indices.
    pub history: &'a History,
    /// Its events.
    pub kv: &'a KvHistory,
}

impl Explainer<'_> {
    fn short(&self, e: u32) -> String {
        format!("op {}", self.kv.op_index(self.history, e))
    }

    fn long(&self, e: u32) -> String {
        self.kv.describe(self.history, e)
    }

    /// `op 15 (process 2)`, with the micro-op inside a transaction.
    fn who(&self, e: u32) -> String {
        let ev = &self.kv.events[e as usize];
        let mop = ev.mop.map(|i| format!(", micro-op {i}")).unwrap_or_default();
        format!("{} (process {}{mop})", self.short(e), self.kv.process(e))
    }

    fn key_phrase(&self, e: u32) -> String {
        let key = self.kv.key_name(self.kv.events[e as usize].key);
        if key.is_empty() { "the register".into() } else { key }
    }

    fn process(&self, session: u32) -> u64 {
        self.kv.sessions[session as usize].process
    }

    /// Why `to` follows `from`, as the tail of a chain line.
    fn step_phrase(&self, step: Step, from: u32, to: u32) -> String {
        let from_s = self.short(from);
        match step {
            Step::Session => {
                format!("later in process {}'s session", self.kv.process(to))
            }
            Step::ReadFrom => format!("which read the value {from_s} wrote"),
            Step::Conflict { witness } => format!(
                "which every replica must order after {from_s}, because {} read this write's value with {from_s} already in its causal past",
                self.long(witness)
            ),
            Step::HappensBefore { witness, view } => format!(
                "ordered after {from_s} in process {}'s view, because its read {} returned this write's value after {from_s} had happened before that read",
                self.process(view),
                self.short(witness)
            ),
        }
    }

    /// The chain, one operation per line.
    pub fn chain_text(&self, chain: &Chain) -> String {
        let mut out = String::new();
        for (i, &e) in chain.events.iter().enumerate() {
            if i == 0 {
                out.push_str(&format!("  {}\n", self.long(e)));
            } else {
                let step = self.step_phrase(chain.steps[i - 1], chain.events[i - 1], e);
                out.push_str(&format!("  -> {}, {step}\n", self.long(e)));
            }
        }
        out
    }

    /// The chain as JSON (`[{op, process, what, step}]`), as `chain_svg` draws it.
    pub(crate) fn chain_json(&self, chain: &Chain) -> serde_json::Value {
        let items: Vec<serde_json::Value> = chain
            .events
            .iter()
            .enumerate()
            .map(|(i, &e)| {
                let step = (i > 0).then(|| step_name(chain.steps[i - 1]));
                json!({
                    "op": self.kv.op_index(self.history, e),
                    "process": self.kv.process(e),
                    "what": self.kv.describe_access(e),
                    "step": step,
                })
            })
            .collect();
        json!(items)
    }

    /// The anomaly for one violation.
    pub fn anomaly(&self, v: &Violation) -> Anomaly {
        let kv = self.kv;
        let explanation = match v.pattern {
            Pattern::ThinAirRead => {
                let r = v.read.unwrap_or(0);
                let ev = &kv.events[r as usize];
                let why = match v.failed_write {
                    Some(pos) => format!(
                        ": the only write of {}, op {}, failed, so it never took effect",
                        ev.value,
                        self.history.ops()[pos].index
                    ),
                    None => String::new(),
                };
                format!(
                    "{} read {} = {}, but no operation wrote {} to {}{why}. A value cannot appear out of thin air.",
                    self.who(r),
                    self.key_phrase(r),
                    ev.value,
                    ev.value,
                    self.key_phrase(r)
                )
            }
            Pattern::WriteCOInitRead => {
                let (r, w) = (v.read.unwrap_or(0), v.write.unwrap_or(0));
                format!(
                    "{} read {} = {}, the initial value, but a write to {}, {}, was already in its causal past:\n{}\
                     Once a write is causally before a read of the same key, the read must not see the key as never written.",
                    self.who(r),
                    self.key_phrase(r),
                    kv.events[r as usize].value,
                    self.key_phrase(r),
                    self.long(w),
                    self.chain_text(&v.chains[0])
                )
            }
            Pattern::WriteCORead => {
                let (r, w2) = (v.read.unwrap_or(0), v.write.unwrap_or(0));
                let w = v.chains[0].events[0];
                format!(
                    "{} read {} = {}, written by {}, but in the read's causal past that value had already been \
                     overwritten by {}.\n{} came causally before {}:\n{}and {} came causally before the read:\n{}\
                     A causally consistent store shows {} or a later value here, never the older {}.",
                    self.who(r),
                    self.key_phrase(r),
                    kv.events[r as usize].value,
                    self.short(w),
                    self.long(w2),
                    self.short(w),
                    self.short(w2),
                    self.chain_text(&v.chains[0]),
                    self.short(w2),
                    self.chain_text(&v.chains[1]),
                    kv.events[w2 as usize].value,
                    kv.events[r as usize].value,
                )
            }
            Pattern::CyclicCO => format!(
                "These operations depend on each other in a circle (each step is session order or a read of a \
                 written value), so no order of events can explain them:\n{}",
                self.chain_text(&v.chains[0])
            ),
            Pattern::CyclicCF => format!(
                "The writes cannot be put in one order that every replica agrees on, as convergence requires: \
                 following causal order and what reads observed, the chain returns to where it started:\n{}",
                self.chain_text(&v.chains[0])
            ),
            Pattern::WriteHBInitRead => {
                let (r, w) = (v.read.unwrap_or(0), v.write.unwrap_or(0));
                let p = self.process(v.view.unwrap_or(0));
                format!(
                    "In process {p}'s view, {} happened before {}, its read of {}, which returned {}, the initial value:\n{}\
                     Causal memory requires each process to explain its reads by one order of the writes that \
                     respects causality; in that order {} must come before {}, so the read cannot see {} as never written.",
                    self.long(w),
                    self.short(r),
                    self.key_phrase(r),
                    kv.events[r as usize].value,
                    self.chain_text(&v.chains[0]),
                    self.short(w),
                    self.short(r),
                    self.key_phrase(r),
                )
            }
            Pattern::CyclicHB => {
                let p = self.process(v.view.unwrap_or(0));
                format!(
                    "Process {p}'s reads force an order of writes that contradicts itself: in its view the chain \
                     below returns to where it started, so no single order of the writes explains what it read:\n{}",
                    self.chain_text(&v.chains[0])
                )
            }
        };
        let mut ops: Vec<u64> = Vec::new();
        let mut note = |e: u32| {
            let i = kv.op_index(self.history, e);
            if !ops.contains(&i) {
                ops.push(i);
            }
        };
        for c in &v.chains {
            c.events.iter().for_each(|&e| note(e));
        }
        if let Some(r) = v.read {
            note(r);
        }
        let data = json!({
            "pattern": v.pattern.name(),
            "read": v.read.map(|r| kv.op_index(self.history, r)),
            "write": v.write.map(|w| kv.op_index(self.history, w)),
            "view": v.view.map(|s| self.process(s)),
            "failed_write": v.failed_write.map(|p| self.history.ops()[p].index),
            "chains": v.chains.iter().map(|c| self.chain_json(c)).collect::<Vec<_>>(),
        });
        Anomaly { kind: v.pattern.name().into(), explanation, ops, data }
    }
}

/// The stable name of a step in JSON and HTML.
pub fn step_name(step: Step) -> &'static str {
    match step {
        Step::Session => "session-order",
        Step::ReadFrom => "read-from",
        Step::Conflict { .. } => "conflict",
        Step::HappensBefore { .. } => "happens-before",
    }
}
