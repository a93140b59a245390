//! Read-write register inference: what can be known about version orders
//! when each write replaces a key's value, the anomalies visible without a
//! cycle, and the ww/wr/rw dependency edges.
//!
//! Writes are unique per key, so a read names the write it observed (a
//! write-read edge). The order of versions is not visible in a read, so it
//! is inferred from what must hold: every key starts as `nil`; and, when
//! the user vouches for it, writes follow reads inside a transaction
//! (`wfr-keys`), each process sees a key's versions in order
//! (`sequential-keys`), or real time orders them (`linearizable-keys`).
//! Each inferred pair `v1 < v2` yields a write-write edge between their
//! writers and a read-write edge from every reader of `v1` to the writer of
//! `v2`. A key whose inferred versions form a cycle is reported
//! (`cyclic-versions`) and left out of the dependency graph.

use fixedbitset::FixedBitSet;
use rustc_hash::FxHashMap;
use serde_json::json;

use super::explain::{Finding, Names, duplicate_value, lost_update};
use super::graph::{EdgeList, Graph, rel};
use super::prep::{MopKind, NIL, NONE, Prepared, Status};
use super::{Analysis, ElleOptions, Explainer};

/// A version's identity: key and value code in one word.
#[inline]
fn elem(key: u32, code: u32) -> u64 {
    (u64::from(key) << 32) | u64::from(code)
}

/// Why one version of a key precedes another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Why {
    /// Every key starts as nil.
    Initial,
    /// A transaction read the first and then wrote the second.
    WritesFollowReads,
    /// One process saw the first, then (in a later transaction) the second.
    Process,
    /// A transaction saw the first and completed before one that saw the
    /// second began.
    Realtime,
}

/// `from < to` in a key's version order, with its justification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct VersionEdge {
    from: u32,
    to: u32,
    why: Why,
    /// The transactions that justify it (`NONE` when not needed).
    via: [u32; 2],
}

/// What one transaction externally did to one key.
#[derive(Clone, Copy, Debug)]
struct TxnKey {
    key: u32,
    /// The version it first saw (its external read, or else its write).
    first: u32,
    /// The version it left (its external write, or else what it read).
    last: u32,
    /// Version externally read, `NONE` if it did not read the key first.
    read: u32,
    /// Version externally written (its last write), `NONE` if none.
    write: u32,
}

/// The inferred version orders, kept for explaining edges.
pub(crate) struct RegisterOrders {
    /// Versions: (key, value code); each key's nil is a version too.
    versions: Vec<(u32, u32)>,
    /// Sorted version edges (of keys whose order is acyclic).
    edges: Vec<VersionEdge>,
    /// Per transaction, its keys (`tk[tk_off[t]..tk_off[t+1]]`).
    tk_off: Vec<u32>,
    tk: Vec<TxnKey>,
    /// The transaction that externally wrote each version, `NONE` if none.
    writer: Vec<u32>,
}

impl RegisterOrders {
    fn keys_of(&self, t: u32) -> &[TxnKey] {
        &self.tk[self.tk_off[t as usize] as usize..self.tk_off[t as usize + 1] as usize]
    }

    fn edge(&self, from: u32, to: u32) -> Option<&VersionEdge> {
        let i = self.edges.partition_point(|e| (e.from, e.to) < (from, to));
        self.edges.get(i).filter(|e| e.from == from && e.to == to)
    }

    fn value(&self, prep: &Prepared<'_>, v: u32) -> String {
        prep.text(self.versions[v as usize].1)
    }

    /// Why `e` holds, in words.
    fn why(&self, prep: &Prepared<'_>, names: &mut Names, e: &VersionEdge) -> String {
        why_text(&self.versions, prep, names, e)
    }
}

/// Why version edge `e` holds, in words.
fn why_text(
    versions: &[(u32, u32)],
    prep: &Prepared<'_>,
    names: &mut Names,
    e: &VersionEdge,
) -> String {
    let (a, b) = (prep.text(versions[e.from as usize].1), prep.text(versions[e.to as usize].1));
    match e.why {
        Why::Initial => format!("every key starts as nil, before {b}"),
        Why::WritesFollowReads => format!("{} read {a} and then wrote {b}", names.of(e.via[0])),
        Why::Process => format!(
            "process {} saw {a} in {} and then {b} in {}",
            prep.txns[e.via[0] as usize].process,
            names.of(e.via[0]),
            names.of(e.via[1])
        ),
        Why::Realtime => format!(
            "{} saw {a} and completed before {}, which saw {b}, began",
            names.of(e.via[0]),
            names.of(e.via[1])
        ),
    }
}

/// Runs the rw-register analysis.
pub(crate) fn analyze(prep: &Prepared<'_>, opts: &ElleOptions) -> (Analysis, RegisterOrders) {
    let mut findings: Vec<Finding> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    let writes = index_writes(prep, &mut unknown);
    let ext = external_accesses(prep);
    let mut writer = vec![NONE; ext.versions.len()];
    for t in 0..prep.txns.len() as u32 {
        for x in ext.keys_of(t) {
            if x.write != NONE {
                writer[x.write as usize] = t;
            }
        }
    }
    reads_without_cycles(
        prep,
        &writes.written,
        &writes.failed,
        &writes.intermediate,
        &mut findings,
    );
    lost_updates(prep, &ext, &mut findings);

    let mut vedges = inferred_version_edges(prep, opts, &ext);
    // Keys whose inferred order is cyclic cannot be trusted for edges.
    let cyclic_key = cyclic_keys(prep, &ext.versions, &vedges, &mut findings);
    vedges.retain(|e| !cyclic_key.contains(ext.versions[e.from as usize].0 as usize));
    initial_version_edges(&ext, &cyclic_key, &mut vedges);
    vedges.sort_unstable();
    vedges.dedup_by(|a, b| a.from == b.from && a.to == b.to);
    let edges = dependency_edges(prep, &ext, &writer, &vedges, &cyclic_key);

    let stats = json!({
        "keys": prep.keys.len(),
        "versions": ext.versions.len(),
        "version_edges": vedges.len(),
        "cyclic_keys": cyclic_key.count_ones(..),
    });
    let External { versions, tk_off, tk, .. } = ext;
    let orders = RegisterOrders { versions, edges: vedges, tk_off, tk, writer };
    (Analysis { findings, edges, broken_premise: unknown, stats }, orders)
}

/// Every write by (key, value), committed or indeterminate apart from
/// failed.
struct Writes {
    /// The micro-op of each (key, value) written by a transaction that did
    /// not fail.
    written: FxHashMap<u64, u32>,
    /// The same for failed transactions.
    failed: FxHashMap<u64, u32>,
    /// Micro-ops whose transaction wrote the key again afterwards.
    intermediate: FixedBitSet,
}

/// Indexes every write, reporting a value written twice to one key (which
/// breaks the workload's premise).
fn index_writes(prep: &Prepared<'_>, unknown: &mut Vec<String>) -> Writes {
    let mut written: FxHashMap<u64, u32> = FxHashMap::default();
    let mut failed: FxHashMap<u64, u32> = FxHashMap::default();
    let mut intermediate = FixedBitSet::with_capacity(prep.mops.len());
    let mut duplicates = 0usize;
    for (t, txn) in prep.txns.iter().enumerate() {
        for i in txn.mops() {
            let m = &prep.mops[i];
            if m.kind != MopKind::Write {
                continue;
            }
            if prep.rewritten_later(i, MopKind::Write) {
                intermediate.insert(i);
            }
            let index = if txn.status == Status::Fail { &mut failed } else { &mut written };
            if let Some(&other) = index.get(&elem(m.key, m.val)) {
                duplicates += 1;
                if duplicates == 1 {
                    unknown.push(duplicate_value(
                        prep,
                        (m.val, m.key),
                        (prep.mops[other as usize].txn, t as u32),
                        "written",
                        "rw-register",
                    ));
                }
            } else {
                index.insert(elem(m.key, m.val), i as u32);
            }
        }
    }
    Writes { written, failed, intermediate }
}

/// Versions, and what each transaction externally read and wrote.
struct External {
    /// Each (key, value)'s version id.
    version_ids: FxHashMap<u64, u32>,
    /// Versions: (key, value code).
    versions: Vec<(u32, u32)>,
    /// Per transaction, its keys (`tk[tk_off[t]..tk_off[t+1]]`).
    tk_off: Vec<u32>,
    tk: Vec<TxnKey>,
}

impl External {
    fn keys_of(&self, t: u32) -> &[TxnKey] {
        &self.tk[self.tk_off[t as usize] as usize..self.tk_off[t as usize + 1] as usize]
    }
}

/// Numbers the versions and collects, per transaction that did not fail,
/// the first and last version of each key it touched.
fn external_accesses(prep: &Prepared<'_>) -> External {
    let mut version_ids: FxHashMap<u64, u32> = FxHashMap::default();
    let mut versions: Vec<(u32, u32)> = Vec::new();
    let mut version = |k: u32, v: u32| -> u32 {
        *version_ids.entry(elem(k, v)).or_insert_with(|| {
            versions.push((k, v));
            (versions.len() - 1) as u32
        })
    };
    let mut tk_off: Vec<u32> = Vec::with_capacity(prep.txns.len() + 1);
    let mut tk: Vec<TxnKey> = Vec::new();
    tk_off.push(0);
    for (t, txn) in prep.txns.iter().enumerate() {
        if txn.status != Status::Fail {
            let start = tk.len();
            for m in prep.txn_mops(t as u32) {
                let slot = tk[start..].iter().position(|x| x.key == m.key).map(|p| p + start);
                match (m.kind, slot) {
                    // A transaction's reads are known only when it committed.
                    (MopKind::Read, None) if txn.status == Status::Ok => {
                        let v = version(m.key, m.val);
                        tk.push(TxnKey { key: m.key, first: v, last: v, read: v, write: NONE });
                    }
                    (MopKind::Write, None) => {
                        let v = version(m.key, m.val);
                        tk.push(TxnKey { key: m.key, first: v, last: v, read: NONE, write: v });
                    }
                    (MopKind::Write, Some(s)) => {
                        let v = version(m.key, m.val);
                        tk[s].write = v;
                        tk[s].last = v;
                        if tk[s].read == NONE {
                            tk[s].first = v;
                        }
                    }
                    _ => {}
                }
            }
        }
        tk_off.push(tk.len() as u32);
    }
    External { version_ids, versions, tk_off, tk }
}

/// Lost update: committed transactions that read the same version of a
/// key and then wrote it.
fn lost_updates(prep: &Prepared<'_>, ext: &External, findings: &mut Vec<Finding>) {
    let mut by_read: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
    for t in 0..prep.txns.len() as u32 {
        if prep.txns[t as usize].status == Status::Ok {
            for x in ext.keys_of(t) {
                if x.read != NONE && x.write != NONE {
                    by_read.entry(x.read).or_default().push(t);
                }
            }
        }
    }
    let mut groups: Vec<(u32, Vec<u32>)> =
        by_read.into_iter().filter(|(_, t)| t.len() > 1).collect();
    groups.sort_by_key(|(_, ts)| ts[0]);
    for (v, ts) in groups {
        let (k, value) = ext.versions[v as usize];
        findings.push(lost_update(
            prep,
            k,
            &ts,
            prep.text(value),
            "wrote",
            "overwrote a value the others' writes never saw",
        ));
    }
}

/// Version edges other than the initial state's: from what the options
/// let us assume (writes follow reads, per-process order, real time).
fn inferred_version_edges(
    prep: &Prepared<'_>,
    opts: &ElleOptions,
    ext: &External,
) -> Vec<VersionEdge> {
    let mut vedges: Vec<VersionEdge> = Vec::new();
    let mut link = |from: u32, to: u32, why: Why, via: [u32; 2]| {
        if from != to {
            vedges.push(VersionEdge { from, to, why, via });
        }
    };
    if opts.wfr_keys {
        for t in 0..prep.txns.len() as u32 {
            for x in ext.keys_of(t) {
                if x.read != NONE && x.write != NONE && ext.versions[x.read as usize].1 != NIL {
                    link(x.read, x.write, Why::WritesFollowReads, [t, NONE]);
                }
            }
        }
    }
    if opts.sequential_keys {
        process_order_edges(prep, ext, &mut link);
    }
    if opts.linearizable_keys {
        realtime_edges(prep, ext, &mut link);
    }
    vedges
}

/// `sequential-keys`: each process sees a key's versions in order, so the
/// last version its previous committed transaction left precedes the first
/// its next one saw.
fn process_order_edges(
    prep: &Prepared<'_>,
    ext: &External,
    link: &mut impl FnMut(u32, u32, Why, [u32; 2]),
) {
    // Per process and key, the last committed transaction's final version.
    let mut last: FxHashMap<(u64, u32), (u32, u32)> = FxHashMap::default();
    for (t, txn) in prep.txns.iter().enumerate() {
        let t = t as u32;
        for x in ext.keys_of(t) {
            if let Some(&(v, prev)) = last.get(&(txn.process, x.key)) {
                link(v, x.first, Why::Process, [prev, t]);
            }
            if txn.status == Status::Ok {
                last.insert((txn.process, x.key), (x.last, t));
            }
        }
    }
}

/// `linearizable-keys`: a transaction that completed before another began
/// left a version that precedes the one the other first saw.
fn realtime_edges(
    prep: &Prepared<'_>,
    ext: &External,
    link: &mut impl FnMut(u32, u32, Why, [u32; 2]),
) {
    // Per key, a real-time frontier as in `graph::realtime_among`.
    let mut at = vec![NONE; prep.positions.len()];
    for (t, txn) in prep.txns.iter().enumerate() {
        if txn.status != Status::Fail {
            at[txn.invoke as usize] = t as u32;
            if txn.status == Status::Ok && txn.complete != NONE {
                at[txn.complete as usize] = t as u32;
            }
        }
    }
    let mut frontier: FxHashMap<u32, Vec<(u32, u32)>> = FxHashMap::default();
    for (pos, &t) in at.iter().enumerate() {
        if t == NONE {
            continue;
        }
        let txn = &prep.txns[t as usize];
        for x in ext.keys_of(t) {
            let f = frontier.entry(x.key).or_default();
            if pos as u32 == txn.invoke {
                for &(prev, v) in f.iter() {
                    link(v, x.first, Why::Realtime, [prev, t]);
                }
            } else {
                f.retain(|&(p, _)| prep.txns[p as usize].complete > txn.invoke);
                f.push((t, x.last));
            }
        }
    }
}

/// The keys whose inferred versions form a cycle, each reported once.
fn cyclic_keys(
    prep: &Prepared<'_>,
    versions: &[(u32, u32)],
    vedges: &[VersionEdge],
    findings: &mut Vec<Finding>,
) -> FixedBitSet {
    let mut cyclic_key = FixedBitSet::with_capacity(prep.keys.len());
    let mut el = EdgeList::default();
    for e in vedges {
        el.add(e.from, e.to, rel::WW);
    }
    let vg = Graph::build(versions.len(), el);
    for scc in vg.nontrivial_sccs(versions.len() as u32) {
        let k = versions[scc[0] as usize].0;
        if cyclic_key.contains(k as usize) {
            continue;
        }
        cyclic_key.insert(k as usize);
        findings.push(cyclic_versions(prep, versions, vedges, &scc));
    }
    cyclic_key
}

/// The initial state precedes every version with no other predecessor
/// (of a key whose order is not cyclic).
fn initial_version_edges(ext: &External, cyclic_key: &FixedBitSet, vedges: &mut Vec<VersionEdge>) {
    let mut has_pred = FixedBitSet::with_capacity(ext.versions.len());
    for e in vedges.iter() {
        has_pred.insert(e.to as usize);
    }
    for (id, &(k, v)) in ext.versions.iter().enumerate() {
        if v == NIL || has_pred.contains(id) || cyclic_key.contains(k as usize) {
            continue;
        }
        // Only nil's readers need this edge: without them it adds nothing.
        if let Some(&nil) = ext.version_ids.get(&elem(k, NIL)) {
            vedges.push(VersionEdge {
                from: nil,
                to: id as u32,
                why: Why::Initial,
                via: [NONE; 2],
            });
        }
    }
}

/// The dependency edges: write-read from each version's writer to its
/// readers (keys with cyclic orders left out), and for each version edge
/// `v1 < v2`, write-write between their writers and read-write from every
/// reader of `v1` to the writer of `v2`.
fn dependency_edges(
    prep: &Prepared<'_>,
    ext: &External,
    writer: &[u32],
    vedges: &[VersionEdge],
    cyclic_key: &FixedBitSet,
) -> EdgeList {
    // Readers of each version.
    let mut read_pairs: Vec<(u32, u32)> = Vec::new();
    for t in 0..prep.txns.len() as u32 {
        for x in ext.keys_of(t) {
            if x.read != NONE {
                read_pairs.push((x.read, t));
            }
        }
    }
    read_pairs.sort_unstable();
    let readers = |v: u32| {
        let i = read_pairs.partition_point(|p| p.0 < v);
        read_pairs[i..].iter().take_while(move |p| p.0 == v).map(|p| p.1)
    };
    let mut edges = EdgeList::default();
    for &(v, r) in &read_pairs {
        let w = writer[v as usize];
        if w != NONE && !cyclic_key.contains(ext.versions[v as usize].0 as usize) {
            edges.add(w, r, rel::WR);
        }
    }
    for e in vedges {
        let w2 = writer[e.to as usize];
        if w2 == NONE {
            continue;
        }
        edges.add(writer[e.from as usize], w2, rel::WW);
        for r in readers(e.from) {
            edges.add(r, w2, rel::RW);
        }
    }
    edges
}

/// G1a, G1b, garbage reads, internal inconsistency and future reads: what
/// a single read reveals.
fn reads_without_cycles(
    prep: &Prepared<'_>,
    written: &FxHashMap<u64, u32>,
    failed: &FxHashMap<u64, u32>,
    intermediate: &FixedBitSet,
    findings: &mut Vec<Finding>,
) {
    for (t, txn) in prep.txns.iter().enumerate() {
        if txn.status != Status::Ok {
            continue;
        }
        let t = t as u32;
        let mops = prep.txn_mops(t);
        let mut internal_reported = false;
        for (i, m) in mops.iter().enumerate() {
            if m.kind != MopKind::Read {
                continue;
            }
            let k = prep.key(m.key);
            // What the transaction's own earlier operations say it must see.
            let before = mops[..i].iter().rev().find(|n| n.key == m.key);
            if let Some(prev) = before {
                if prev.val != m.val && !internal_reported {
                    internal_reported = true;
                    let mut names = Names::default();
                    let a = names.of(t);
                    let did = if prev.kind == MopKind::Write { "wrote" } else { "read" };
                    findings.push(Finding {
                        kind: "internal",
                        body: format!(
                            "{a} {did} key {k} = {} and later read key {k} = {}, with nothing in \
                             between: a transaction must see its own writes and keep seeing \
                             what it read.\n",
                            prep.text(prev.val),
                            prep.text(m.val)
                        ),
                        names,
                        extra: json!({"key": k.to_string(), "expected": prep.text(prev.val)}),
                    });
                }
                continue;
            }
            if m.val == NIL {
                continue;
            }
            let v = prep.text(m.val);
            // The first read of the key: who wrote what it saw?
            if let Some(&w) = written.get(&elem(m.key, m.val)) {
                let wm = prep.mops[w as usize];
                if wm.txn == t {
                    let mut names = Names::default();
                    let a = names.of(t);
                    findings.push(Finding {
                        kind: "future-read",
                        body: format!(
                            "{a} read key {k} = {} before it wrote that value itself, later in \
                             the same transaction: the read saw a write from its own future.\n",
                            v
                        ),
                        names,
                        extra: json!({"key": k.to_string(), "value": v}),
                    });
                } else if intermediate.contains(w as usize) {
                    let mut names = Names::default();
                    let a = names.of(t);
                    let b = names.of(wm.txn);
                    findings.push(Finding {
                        kind: "G1b",
                        body: format!(
                            "{a} read key {k} = {}, which {b} wrote; but {b} wrote key {k} again \
                             later in the same transaction. {a} saw an intermediate state of {b}, \
                             which no transaction should ever see.\n",
                            v
                        ),
                        names,
                        extra: json!({"key": k.to_string(), "value": v}),
                    });
                }
            } else if let Some(&w) = failed.get(&elem(m.key, m.val)) {
                let mut names = Names::default();
                let a = names.of(t);
                let b = names.of(prep.mops[w as usize].txn);
                findings.push(Finding {
                    kind: "G1a",
                    body: format!(
                        "{a} read key {k} = {}, which only {b} wrote, and {b} failed (aborted). \
                         {a} read data from a transaction that never committed.\n",
                        v
                    ),
                    names,
                    extra: json!({"key": k.to_string(), "value": v}),
                });
            } else {
                let mut names = Names::default();
                let a = names.of(t);
                findings.push(Finding {
                    kind: "garbage-read",
                    body: format!(
                        "{a} read key {k} = {}, but no transaction ever wrote {} to key {k}: the \
                         read returned data nobody wrote.\n",
                        v, v
                    ),
                    names,
                    extra: json!({"key": k.to_string(), "value": v}),
                });
            }
        }
    }
}

/// A cycle in a key's inferred version order, explained edge by edge.
fn cyclic_versions(
    prep: &Prepared<'_>,
    versions: &[(u32, u32)],
    vedges: &[VersionEdge],
    scc: &[u32],
) -> Finding {
    // The shortest way from the component's first version back to itself.
    let inside = |v: u32| scc.binary_search(&v).is_ok();
    let start = scc[0];
    let mut parent: FxHashMap<u32, usize> = FxHashMap::default();
    let mut queue = std::collections::VecDeque::from([start]);
    let mut closing: Option<usize> = None;
    'bfs: while let Some(x) = queue.pop_front() {
        for (i, e) in vedges.iter().enumerate() {
            if e.from != x || !inside(e.to) {
                continue;
            }
            if e.to == start {
                closing = Some(i);
                break 'bfs;
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = parent.entry(e.to) {
                slot.insert(i);
                queue.push_back(e.to);
            }
        }
    }
    let mut chain: Vec<usize> = Vec::new();
    let mut cur = closing;
    while let Some(i) = cur {
        chain.push(i);
        let from = vedges[i].from;
        cur = if from == start { None } else { parent.get(&from).copied() };
        if chain.len() > scc.len() {
            break;
        }
    }
    chain.reverse();
    let key = versions[start as usize].0;
    let mut names = Names::default();
    let mut lines = String::new();
    for &i in &chain {
        let e = &vedges[i];
        let why = why_text(versions, prep, &mut names, e);
        lines.push_str(&format!(
            "{} < {}, because {why}.\n",
            prep.text(versions[e.from as usize].1),
            prep.text(versions[e.to as usize].1)
        ));
    }
    let shown: Vec<String> =
        chain.iter().map(|&i| prep.text(versions[vedges[i].from as usize].1)).collect();
    Finding {
        kind: "cyclic-versions",
        body: format!(
            "The versions of key {k} must be ordered, but what the history shows orders them in \
             a circle:\n{lines}So {} < {} again: no order of writes to key {k} explains this.\n",
            shown.join(" < "),
            shown.first().cloned().unwrap_or_default(),
            k = prep.key(key)
        ),
        names,
        extra: json!({"key": prep.key(key).to_string(), "versions": shown}),
    }
}

impl Explainer for RegisterOrders {
    fn edge(&self, prep: &Prepared<'_>, names: &mut Names, a: u32, b: u32, r: u8) -> String {
        let na = names.of(a);
        let nb = names.of(b);
        match r {
            rel::WR => {
                for x in self.keys_of(b).iter().filter(|x| x.read != NONE) {
                    if self.writer[x.read as usize] == a {
                        return format!(
                            "{nb} read key {k} = {}, which {na} wrote, so {na} < {nb}.",
                            self.value(prep, x.read),
                            k = prep.key(x.key)
                        );
                    }
                }
            }
            rel::WW | rel::RW => {
                for y in self.keys_of(b).iter().filter(|y| y.write != NONE) {
                    for x in self.keys_of(a).iter().filter(|x| x.key == y.key) {
                        let from = if r == rel::WW { x.write } else { x.read };
                        if from == NONE {
                            continue;
                        }
                        if let Some(e) = self.edge(from, y.write) {
                            let why = self.why(prep, names, e);
                            let k = prep.key(y.key);
                            let (v1, v2) = (self.value(prep, from), self.value(prep, y.write));
                            return if r == rel::RW && e.why == Why::Initial {
                                format!(
                                    "{na} read key {k} = nil, the initial state, and {nb} wrote \
                                     {v2} over it, so {na} < {nb}."
                                )
                            } else if r == rel::WW {
                                format!(
                                    "{nb} wrote key {k} = {v2} after {na} wrote {v1} ({v1} < {v2} \
                                     because {why}), so {na} < {nb}."
                                )
                            } else {
                                format!(
                                    "{na} read key {k} = {v1}, and {nb} wrote {v2}, a later version \
                                     ({v1} < {v2} because {why}), so {na} < {nb}."
                                )
                            };
                        }
                    }
                }
            }
            _ => {}
        }
        format!("{na} < {nb} ({} dependency).", rel::name(r))
    }
}
