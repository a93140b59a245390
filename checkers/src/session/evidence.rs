//! What a violation is before it is put in a verdict (`Found`), the context
//! that names ops, processes and keys in words, and the steps both workloads
//! share: which authors a session has observed, and how a chain of witnesses
//! is written.

use std::collections::BTreeMap;

use super::Guarantee;
use super::Workload;
use super::sessions::Parsed;
use crate::budget::Meter;
use crate::history::History;
use crate::value::Value;

/// Witness ops in causal order, each with what it did and how it follows
/// the step before (`None` for the first).
pub(super) type Chain = Vec<(u32, String, Option<&'static str>)>;

/// A violation found, before it is put in words.
pub(super) struct Found {
    pub(super) guarantee: Guarantee,
    pub(super) explanation: String,
    pub(super) chain: Chain,
}

/// Shared context for putting findings in words.
pub(super) struct Ctx<'a> {
    pub(super) history: &'a History,
    pub(super) p: &'a Parsed,
    pub(super) meter: &'a Meter,
}

impl Ctx<'_> {
    /// The history index of the op that names `unit`.
    pub(super) fn op(&self, unit: u32) -> u64 {
        self.history.ops()[self.p.units[unit as usize].pos].index
    }
    /// The process of `unit`'s session.
    pub(super) fn process(&self, unit: u32) -> u64 {
        self.p.sessions[self.p.units[unit as usize].session as usize].0
    }
    /// Key `k` in words (a register without a key is "the register").
    pub(super) fn key(&self, k: u32) -> String {
        match &self.p.keys[k as usize] {
            Value::Nil => "the register".into(),
            v => v.to_string(),
        }
    }
    /// `op N (process P)`.
    pub(super) fn who(&self, unit: u32) -> String {
        format!("op {} (process {})", self.op(unit), self.process(unit))
    }
}

/// For each author session, what of it one session has observed so far:
/// (the seq of the author's latest write it saw, the unit that saw it).
pub(super) type Bounds = BTreeMap<u32, (u32, u32)>;

/// Records that unit `u` of session `s` observed the write of unit `w`: a
/// session's own writes bind nothing, and a later write of the same author
/// raises the bound.
pub(super) fn observe(p: &Parsed, bounds: &mut Bounds, s: u32, u: u32, w: u32) {
    let (author, seq) = (p.units[w as usize].session, p.units[w as usize].seq);
    if author != s && bounds.get(&author).is_none_or(|b| b.0 < seq) {
        bounds.insert(author, (seq, u));
    }
}

/// The writes of `unit` in words (`append :x 1, append :y 2` or
/// `write :x = 1`).
pub(super) fn describe_writes(ctx: &Ctx<'_>, unit: u32) -> String {
    let u = &ctx.p.units[unit as usize];
    let verb = if ctx.p.workload == Workload::ListAppend { "append" } else { "write" };
    let parts: Vec<String> = u
        .writes
        .iter()
        .map(|(k, v)| {
            if ctx.p.workload == Workload::ListAppend {
                format!("{verb} {} {v}", ctx.key(*k))
            } else {
                format!("{verb} {} = {v}", ctx.key(*k))
            }
        })
        .collect();
    parts.join(", ")
}

/// Drops a step that repeats the previous op (the observing read may be the
/// violating read itself).
pub(super) fn dedup_chain(chain: Chain) -> Chain {
    let mut out: Chain = Vec::new();
    for step in chain {
        if out.last().is_none_or(|l| l.0 != step.0) {
            out.push(step);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats;
    use crate::session::sessions::parse;

    fn parsed(edn: &str) -> (History, Parsed) {
        let h = formats::parse(edn, "test", None).expect("a readable history");
        let p = parse(&h, None).expect("parse");
        (h, p)
    }

    const TWO_SESSIONS: &str = "\
        {:index 0, :process 0, :type :invoke, :f :write, :key :x, :value 1}\n\
        {:index 1, :process 0, :type :ok, :f :write, :key :x, :value 1}\n\
        {:index 2, :process 0, :type :invoke, :f :write, :key :x, :value 2}\n\
        {:index 3, :process 0, :type :ok, :f :write, :key :x, :value 2}\n\
        {:index 4, :process 7, :type :invoke, :f :read, :key :x, :value nil}\n\
        {:index 5, :process 7, :type :ok, :f :read, :key :x, :value 2}\n\
        {:index 6, :process 7, :type :invoke, :f :read, :key :x, :value nil}\n\
        {:index 7, :process 7, :type :ok, :f :read, :key :x, :value 1}\n";

    #[test]
    fn the_context_names_ops_processes_keys_and_writes() {
        let (h, p) = parsed(TWO_SESSIONS);
        let meter = crate::budget::Budget::default().start();
        let ctx = Ctx { history: &h, p: &p, meter: &meter };
        assert_eq!(ctx.op(1), 3);
        assert_eq!(ctx.process(2), 7);
        assert_eq!(ctx.key(0), ":x");
        assert_eq!(ctx.who(3), "op 7 (process 7)");
        assert_eq!(describe_writes(&ctx, 1), "write :x = 2");
        assert_eq!(describe_writes(&ctx, 2), "", "a read writes nothing");
    }

    #[test]
    fn observing_raises_the_bound_of_another_author_only() {
        let (_, p) = parsed(TWO_SESSIONS);
        let mut bounds = Bounds::new();
        observe(&p, &mut bounds, 0, 1, 0);
        assert!(bounds.is_empty(), "a session's own write binds nothing");
        observe(&p, &mut bounds, 1, 2, 1);
        assert_eq!(bounds.get(&0), Some(&(1, 2)));
        observe(&p, &mut bounds, 1, 3, 0);
        assert_eq!(bounds.get(&0), Some(&(1, 2)), "an older write keeps the later bound");
    }

    #[test]
    fn a_chain_loses_a_step_that_repeats_the_op_before_it() {
        let chain = vec![
            (4, "write".to_owned(), None),
            (9, "saw".to_owned(), Some("observed by")),
            (9, "read".to_owned(), Some("later in the session")),
            (4, "again".to_owned(), Some("later")),
        ];
        let steps: Vec<u32> = dedup_chain(chain).iter().map(|s| s.0).collect();
        assert_eq!(steps, vec![4, 9, 4]);
    }
}
