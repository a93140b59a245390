//! List-append inference: version orders from reads, the anomalies visible
//! without a cycle, and the ww/wr/rw dependency edges.
//!
//! Every append adds a unique element to a key's list, so a read of `[1 2 3]`
//! reveals the whole history of the key up to that point: the longest read
//! of each key is its version order, and every other read must be a prefix
//! of it. Reads are compared with the longest read code by code (a memory
//! compare), so the work is linear in the history.
//!
//! Appends are indexed per key (grouped by key, sorted by element within
//! it) rather than in one big hash table: looking an element up then
//! touches only its key's few entries, which stay in cache, where a table
//! over every append would miss the cache on nearly every lookup.

use fixedbitset::FixedBitSet;
use rustc_hash::FxHashMap;
use serde_json::json;

use super::explain::{Finding, Names, duplicate_value, list_text, lost_update};
use super::graph::{EdgeList, rel};
use super::prep::{Mop, MopKind, NONE, Prepared, Status};
use super::{Analysis, Explainer};

/// `Mop::aux` of a read that is not a prefix of its key's longest read.
const INCOMPATIBLE: u32 = NONE - 1;

/// Every append, grouped by key and sorted by element code within a key.
/// An append is named by its index `a` in these columns.
struct AppendIndex {
    /// `off[k]..off[k+1]`: key `k`'s appends.
    off: Vec<u32>,
    /// Element code of each append.
    code: Vec<u32>,
    /// Its micro-op.
    mop: Vec<u32>,
    /// Its transaction, or `NONE` if that transaction failed.
    txn: Vec<u32>,
    /// Its position in the key's version order, `NONE` if no read saw it.
    pos: Vec<u32>,
    /// Whether its transaction appended to the key again afterwards.
    intermediate: FixedBitSet,
}

impl AppendIndex {
    /// The append of `code` to key `k`.
    #[inline]
    fn find(&self, k: u32, code: u32) -> Option<u32> {
        let (lo, hi) = (self.off[k as usize] as usize, self.off[k as usize + 1] as usize);
        let slice = &self.code[lo..hi];
        // Most keys hold a few dozen appends: a linear scan beats bisection.
        let i = if slice.len() <= 32 {
            slice.iter().position(|&c| c == code)?
        } else {
            slice.binary_search(&code).ok()?
        };
        Some((lo + i) as u32)
    }
}

/// The version orders, kept for explaining edges after the search.
pub(crate) struct AppendOrders {
    index: AppendIndex,
    /// `order_off[k]..order_off[k+1]`: key `k`'s version order as appends
    /// (`NONE` where the read holds an element nobody appended).
    order_off: Vec<u32>,
    order: Vec<u32>,
    /// The same positions as transactions: `NONE` for nobody or an aborted
    /// one, so that the hot loops need no other lookup.
    order_txn: Vec<u32>,
    /// Transactions (not aborted) whose appends of key `k` no read saw:
    /// `unread[unread_off[k]..unread_off[k+1]]`, as append indices.
    unread_off: Vec<u32>,
    unread: Vec<u32>,
}

impl AppendOrders {
    fn order(&self, k: u32) -> &[u32] {
        &self.order[self.order_off[k as usize] as usize..self.order_off[k as usize + 1] as usize]
    }

    fn order_txn(&self, k: u32) -> &[u32] {
        &self.order_txn
            [self.order_off[k as usize] as usize..self.order_off[k as usize + 1] as usize]
    }

    fn unread(&self, k: u32) -> &[u32] {
        &self.unread[self.unread_off[k as usize] as usize..self.unread_off[k as usize + 1] as usize]
    }

    /// The append that wrote the last element a read saw, if anyone did.
    #[inline]
    fn last_writer(&self, prep: &Prepared<'_>, m: &Mop) -> u32 {
        match m.aux {
            0 => NONE,
            INCOMPATIBLE => {
                prep.read_elems(m).last().and_then(|&e| self.index.find(m.key, e)).unwrap_or(NONE)
            }
            v => self.order(m.key)[v as usize - 1],
        }
    }
}

/// Builds the append index: a counting sort by key, then a sort by element
/// within each key. Reports a value appended twice to one key.
fn index_appends(prep: &Prepared<'_>, unknown: &mut Vec<String>) -> AppendIndex {
    let nkeys = prep.keys.len();
    let mut off = vec![0u32; nkeys + 1];
    let mut count = 0usize;
    for m in &prep.mops {
        if m.kind == MopKind::Append {
            off[m.key as usize + 1] += 1;
            count += 1;
        }
    }
    for k in 0..nkeys {
        off[k + 1] += off[k];
    }
    let mut fill = off.clone();
    let mut pairs = vec![(0u32, 0u32); count];
    for (i, m) in prep.mops.iter().enumerate() {
        if m.kind == MopKind::Append {
            let slot = &mut fill[m.key as usize];
            pairs[*slot as usize] = (m.val, i as u32);
            *slot += 1;
        }
    }
    drop(fill);
    for k in 0..nkeys {
        let slice = &mut pairs[off[k] as usize..off[k + 1] as usize];
        slice.sort_unstable();
        if let Some(w) = slice.windows(2).find(|w| w[0].0 == w[1].0)
            && unknown.is_empty()
        {
            let (a, b) = (prep.mops[w[0].1 as usize], prep.mops[w[1].1 as usize]);
            unknown.push(duplicate_value(
                prep,
                (a.val, a.key),
                (a.txn, b.txn),
                "appended",
                "list-append",
            ));
        }
    }
    let code: Vec<u32> = pairs.iter().map(|p| p.0).collect();
    let mop: Vec<u32> = pairs.iter().map(|p| p.1).collect();
    drop(pairs);
    let txn: Vec<u32> = mop
        .iter()
        .map(|&i| {
            let t = prep.mops[i as usize].txn;
            if prep.txns[t as usize].status == Status::Fail { NONE } else { t }
        })
        .collect();
    let mut intermediate = FixedBitSet::with_capacity(code.len());
    for (a, &i) in mop.iter().enumerate() {
        if prep.rewritten_later(i as usize, MopKind::Append) {
            intermediate.insert(a);
        }
    }
    let pos = vec![NONE; code.len()];
    AppendIndex { off, code, mop, txn, pos, intermediate }
}

/// Runs the list-append analysis over `prep`. Reads' versions are left in
/// their `Mop::aux`: their length in distinct elements, or `INCOMPATIBLE`.
/// The edge list has room for `order_edges` more edges (the real-time or
/// process edges the graph adds to it later).
pub(crate) fn analyze(prep: &mut Prepared<'_>, order_edges: usize) -> (Analysis, AppendOrders) {
    let nkeys = prep.keys.len();
    let mut findings: Vec<Finding> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    // Passes that only read the tables run side by side (here and below);
    // the findings of each are joined in a fixed order, so the verdict
    // never depends on which pass finishes first.
    let (mut index, reads) =
        rayon::join(|| index_appends(prep, &mut unknown), || committed_reads(prep));
    let longest = longest_reads(prep, &reads);
    let versions = version_orders(prep, &mut index, &longest, &mut findings);
    read_versions(prep, &reads, &longest, &versions, &mut findings);
    let (unread_off, unread) = unread_appends(&index, nkeys);
    let VersionOrders { order_off, order, .. } = versions;
    let order_txn: Vec<u32> =
        order.iter().map(|&a| if a == NONE { NONE } else { index.txn[a as usize] }).collect();
    let orders = AppendOrders { index, order_off, order, order_txn, unread_off, unread };
    let prep: &Prepared<'_> = prep;

    let single_reads = || {
        let mut found = Vec::new();
        let aborted_pos = aborted_positions(&orders, nkeys);
        aborted_and_intermediate_reads(prep, &orders, &reads, &aborted_pos, &mut found);
        dirty_updates(prep, &orders, &aborted_pos, &mut found);
        internal_and_future_reads(prep, &mut found);
        lost_updates(prep, &mut found);
        found
    };
    let (found, edges) =
        rayon::join(single_reads, || dependency_edges(prep, &orders, &reads, order_edges));
    findings.extend(found);

    let stats = json!({
        "keys": nkeys,
        "appends": orders.index.code.len(),
        "reads": reads.len(),
        "unread_appends": orders.unread.len(),
    });
    (Analysis { findings, edges, broken_premise: unknown, stats }, orders)
}

/// The reads of committed transactions, in history order.
fn committed_reads(prep: &Prepared<'_>) -> Vec<u32> {
    prep.mops
        .iter()
        .enumerate()
        .filter(|(_, m)| m.kind == MopKind::Read && prep.txns[m.txn as usize].status == Status::Ok)
        .map(|(i, _)| i as u32)
        .collect()
}

/// The longest of each key's `reads` (the first, among equals), `NONE` for
/// a key no read saw anything in: its version order.
fn longest_reads(prep: &Prepared<'_>, reads: &[u32]) -> Vec<u32> {
    let mut longest = vec![NONE; prep.keys.len()];
    for &r in reads {
        let m = &prep.mops[r as usize];
        let cur = longest[m.key as usize];
        if m.len > 0 && (cur == NONE || prep.mops[cur as usize].len < m.len) {
            longest[m.key as usize] = r;
        }
    }
    longest
}

/// Every key's version order, as read by its longest read.
struct VersionOrders {
    /// `order_off[k]..order_off[k+1]`: key `k`'s order as appends, `NONE`
    /// for an element nobody appended.
    order_off: Vec<u32>,
    order: Vec<u32>,
    /// For keys whose longest read repeats an element: the number of
    /// distinct elements in each prefix, to turn a read's length into a
    /// version.
    dedup: FxHashMap<u32, Vec<u32>>,
}

/// Lays out each key's version order from its longest read, placing each
/// append (`AppendIndex::pos`), and reports the duplicate elements and the
/// garbage (never appended) the longest reads hold.
fn version_orders(
    prep: &Prepared<'_>,
    index: &mut AppendIndex,
    longest: &[u32],
    findings: &mut Vec<Finding>,
) -> VersionOrders {
    let nkeys = prep.keys.len();
    let mut order_off = Vec::with_capacity(nkeys + 1);
    let mut order: Vec<u32> = Vec::with_capacity(index.code.len());
    let mut dedup: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
    order_off.push(0u32);
    for k in 0..nkeys as u32 {
        let lr = longest[k as usize];
        if lr != NONE {
            let lm = prep.mops[lr as usize];
            let start = order.len();
            let mut dups: Vec<u32> = Vec::new();
            let mut garbage: Vec<u32> = Vec::new();
            // prefix_distinct[n]: distinct elements among the first n.
            let mut prefix_distinct: Vec<u32> = Vec::new();
            for (i, &e) in prep.read_elems(&lm).iter().enumerate() {
                match index.find(k, e) {
                    Some(a) if index.pos[a as usize] != NONE => {
                        if prefix_distinct.is_empty() {
                            prefix_distinct = (0..=i as u32).collect();
                        }
                        dups.push(e);
                    }
                    Some(a) => {
                        index.pos[a as usize] = (order.len() - start) as u32;
                        order.push(a);
                    }
                    None => {
                        garbage.push(e);
                        order.push(NONE);
                    }
                }
                if !prefix_distinct.is_empty() {
                    prefix_distinct.push((order.len() - start) as u32);
                }
            }
            if !dups.is_empty() {
                dedup.insert(k, prefix_distinct);
                findings.push(duplicate_elements(prep, k, &lm, &dups));
            }
            if !garbage.is_empty() {
                findings.push(garbage_read(prep, k, &lm, &garbage));
            }
        }
        order_off.push(u32::try_from(order.len()).unwrap_or(NONE));
    }
    VersionOrders { order_off, order, dedup }
}

/// A read of key `k` that holds the elements `dups` more than once.
fn duplicate_elements(prep: &Prepared<'_>, k: u32, lm: &Mop, dups: &[u32]) -> Finding {
    let mut names = Names::default();
    let t = names.of(lm.txn);
    let shown: Vec<String> = dups.iter().map(|&v| prep.text(v)).collect();
    Finding {
        kind: "duplicate-elements",
        body: format!(
            "{t} read key {} = {}, in which {} appear{} more than once. Every value is \
             appended once, so a correct list holds each at most once.\n",
            prep.key(k),
            list_text(prep, prep.read_elems(lm)),
            shown.join(", "),
            if dups.len() == 1 { "s" } else { "" }
        ),
        names,
        extra: json!({"key": prep.key(k).to_string(), "duplicates": shown}),
    }
}

/// A read of key `k` that holds `garbage`, elements nobody appended.
fn garbage_read(prep: &Prepared<'_>, k: u32, lm: &Mop, garbage: &[u32]) -> Finding {
    let mut names = Names::default();
    let t = names.of(lm.txn);
    let shown: Vec<String> = garbage.iter().map(|&v| prep.text(v)).collect();
    Finding {
        kind: "garbage-read",
        body: format!(
            "{t} read key {k} = {}, but no transaction ever appended {} to key {k}: \
             the read returned data nobody wrote.\n",
            list_text(prep, prep.read_elems(lm)),
            shown.join(", "),
            k = prep.key(k)
        ),
        names,
        extra: json!({"key": prep.key(k).to_string(), "values": shown}),
    }
}

/// Gives every read its version (in `Mop::aux`): its length in distinct
/// elements when it is a prefix of its key's longest read, else
/// `INCOMPATIBLE`, reported once per key.
fn read_versions(
    prep: &mut Prepared<'_>,
    reads: &[u32],
    longest: &[u32],
    versions: &VersionOrders,
    findings: &mut Vec<Finding>,
) {
    let VersionOrders { order_off, dedup, .. } = versions;
    let mut incompatible: FxHashMap<u32, (u32, usize)> = FxHashMap::default();
    for &r in reads {
        let m = prep.mops[r as usize];
        let lr = longest[m.key as usize];
        let version = if m.len == 0 {
            0
        } else if lr == r {
            order_off[m.key as usize + 1] - order_off[m.key as usize]
        } else if prep.read_elems(&prep.mops[lr as usize]).starts_with(prep.read_elems(&m)) {
            match dedup.get(&m.key) {
                Some(d) => d[m.len as usize],
                None => m.len,
            }
        } else {
            incompatible.entry(m.key).or_insert((r, 0)).1 += 1;
            INCOMPATIBLE
        };
        prep.mops[r as usize].aux = version;
    }
    let mut inc_keys: Vec<(u32, (u32, usize))> = incompatible.into_iter().collect();
    inc_keys.sort_unstable();
    for (k, (r, count)) in inc_keys {
        findings.push(incompatible_order(prep, k, r, longest[k as usize], count));
    }
}

/// Read `r` of key `k` is not a prefix of the key's longest read `lr`, nor
/// the other way round (and `count` reads of the key are like it).
fn incompatible_order(prep: &Prepared<'_>, k: u32, r: u32, lr: u32, count: usize) -> Finding {
    let m = prep.mops[r as usize];
    let lm = prep.mops[lr as usize];
    let mut names = Names::default();
    let a = names.of(m.txn);
    let b = names.of(lm.txn);
    let others = if count > 1 {
        format!(" ({count} reads of key {} disagree with {b} like this.)", prep.key(k))
    } else {
        String::new()
    };
    let (va, vb) = (list_text(prep, prep.read_elems(&m)), list_text(prep, prep.read_elems(&lm)));
    Finding {
        kind: "incompatible-order",
        body: format!(
            "{a} read key {k} = {va} and {b} read key {k} = {vb}. Appends only ever add to \
             the end of a list, so one of these reads should be a prefix of the other; \
             neither is, so they cannot both come from one sequence of appends.{others}\n",
            k = prep.key(k),
        ),
        names,
        extra: json!({"key": prep.key(k).to_string(), "values": [va, vb]}),
    }
}

/// Appends no read observed (of transactions that did not fail): they come
/// after every observed element of their key. Returns offsets per key and
/// the appends.
fn unread_appends(index: &AppendIndex, nkeys: usize) -> (Vec<u32>, Vec<u32>) {
    let mut unread_off = Vec::with_capacity(nkeys + 1);
    let mut unread = Vec::new();
    unread_off.push(0u32);
    for k in 0..nkeys {
        for a in index.off[k]..index.off[k + 1] {
            if index.pos[a as usize] == NONE && index.txn[a as usize] != NONE {
                unread.push(a);
            }
        }
        unread_off.push(unread.len() as u32);
    }
    (unread_off, unread)
}

/// Positions of aborted appends in each key's order: rare, so a read only
/// looks at them instead of scanning everything it read.
fn aborted_positions(orders: &AppendOrders, nkeys: usize) -> FxHashMap<u32, Vec<u32>> {
    let mut aborted_pos: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
    for k in 0..nkeys as u32 {
        for (p, &a) in orders.order(k).iter().enumerate() {
            if a != NONE && orders.index.txn[a as usize] == NONE {
                aborted_pos.entry(k).or_default().push(p as u32);
            }
        }
    }
    aborted_pos
}

/// G1a (aborted read) and G1b (intermediate read), per read. For G1a, one
/// anomaly per aborted element: the first read that saw it (reads are in
/// history order) and how many did.
fn aborted_and_intermediate_reads(
    prep: &Prepared<'_>,
    orders: &AppendOrders,
    reads: &[u32],
    aborted_pos: &FxHashMap<u32, Vec<u32>>,
    findings: &mut Vec<Finding>,
) {
    let ix = &orders.index;
    let mut aborted_seen: FxHashMap<u32, (u32, usize)> = FxHashMap::default();
    for &r in reads {
        let m = prep.mops[r as usize];
        if m.aux == INCOMPATIBLE {
            for &e in prep.read_elems(&m) {
                if let Some(a) = ix.find(m.key, e)
                    && ix.txn[a as usize] == NONE
                {
                    aborted_seen.entry(a).or_insert((r, 0)).1 += 1;
                }
            }
        } else if let Some(ps) = aborted_pos.get(&m.key) {
            for &p in ps.iter().take_while(|&&p| p < m.aux) {
                let a = orders.order(m.key)[p as usize];
                aborted_seen.entry(a).or_insert((r, 0)).1 += 1;
            }
        }
        let w = orders.last_writer(prep, &m);
        if w == NONE || !ix.intermediate.contains(w as usize) {
            continue;
        }
        let wm = prep.mops[ix.mop[w as usize] as usize];
        if wm.txn != m.txn {
            findings.push(intermediate_read(prep, &m, &wm));
        }
    }
    // One anomaly per aborted element is enough: every later read repeats it.
    let mut aborted: Vec<(u32, (u32, usize))> = aborted_seen.into_iter().collect();
    aborted.sort_unstable_by_key(|&(a, (r, _))| (r, a));
    for (a, (r, count)) in aborted {
        let wm = prep.mops[ix.mop[a as usize] as usize];
        findings.push(aborted_read(prep, &prep.mops[r as usize], &wm, count));
    }
}

/// G1b: read `m` ends with `wm`'s element, which its transaction appended
/// to again later.
fn intermediate_read(prep: &Prepared<'_>, m: &Mop, wm: &Mop) -> Finding {
    let mut names = Names::default();
    let a = names.of(m.txn);
    let b = names.of(wm.txn);
    let later: Vec<String> = prep
        .txn_mops(wm.txn)
        .iter()
        .filter(|x| x.kind == MopKind::Append && x.key == m.key && x.pos > wm.pos)
        .map(|x| prep.text(x.val))
        .collect();
    Finding {
        kind: "G1b",
        body: format!(
            "{a} read key {k} = {}, ending with {}, which {b} appended; but {b} went on to \
             append {} to key {k} in the same transaction. {a} saw an intermediate state of \
             {b}, which no transaction should ever see.\n",
            list_text(prep, prep.read_elems(m)),
            prep.text(wm.val),
            later.join(" and "),
            k = prep.key(m.key),
        ),
        names,
        extra: json!({"key": prep.key(m.key).to_string(), "element": prep.text(wm.val)}),
    }
}

/// G1a: read `m` (the first of `count`) holds the element of `wm`, whose
/// transaction failed.
fn aborted_read(prep: &Prepared<'_>, m: &Mop, wm: &Mop, count: usize) -> Finding {
    let mut names = Names::default();
    let x = names.of(m.txn);
    let y = names.of(wm.txn);
    let others =
        if count > 1 { format!(" {count} reads in all include it.") } else { String::new() };
    let v = prep.text(wm.val);
    Finding {
        kind: "G1a",
        body: format!(
            "{x} read key {k} = {}, which includes {v}; only {y} appended {v} to key {k}, and \
             {y} failed (aborted). {x} read data from a transaction that never committed.{others}\n",
            list_text(prep, prep.read_elems(m)),
            k = prep.key(m.key),
        ),
        names,
        extra: json!({"key": prep.key(m.key).to_string(), "element": v}),
    }
}

/// Dirty update: a committed append right after an aborted one in the
/// version order means the committed transaction built on aborted state.
fn dirty_updates(
    prep: &Prepared<'_>,
    orders: &AppendOrders,
    aborted_pos: &FxHashMap<u32, Vec<u32>>,
    findings: &mut Vec<Finding>,
) {
    let ix = &orders.index;
    let mut dirty_keys: Vec<u32> = aborted_pos.keys().copied().collect();
    dirty_keys.sort_unstable();
    for k in dirty_keys {
        let ord = orders.order(k);
        let committed = |a: u32| {
            ix.txn[a as usize] != NONE
                && prep.txns[ix.txn[a as usize] as usize].status == Status::Ok
        };
        let Some(w) = ord.windows(2).find(|w| {
            w[0] != NONE && w[1] != NONE && ix.txn[w[0] as usize] == NONE && committed(w[1])
        }) else {
            continue;
        };
        let (am, bm) =
            (prep.mops[ix.mop[w[0] as usize] as usize], prep.mops[ix.mop[w[1] as usize] as usize]);
        let mut names = Names::default();
        let x = names.of(am.txn);
        let y = names.of(bm.txn);
        let (va, vb) = (prep.text(am.val), prep.text(bm.val));
        findings.push(Finding {
            kind: "dirty-update",
            body: format!(
                "The reads of key {k} show {va} (appended by {x}, which failed) followed by {vb} \
                 (appended by {y}, which committed). {y} wrote on top of a state that was never \
                 committed.\n",
                k = prep.key(k),
            ),
            names,
            extra: json!({"key": prep.key(k).to_string(), "values": [va, vb]}),
        });
    }
}

/// Dependency edges: reads first (write-read from the writer of the last
/// element seen, read-write to the writer of the next), then each key's
/// order (write-write between neighbours, and from the last observed
/// element to every unread append), in a list with room for `extra` more.
fn dependency_edges(
    prep: &Prepared<'_>,
    orders: &AppendOrders,
    reads: &[u32],
    extra: usize,
) -> EdgeList {
    let ix = &orders.index;
    let mut edges = EdgeList::with_capacity(reads.len() * 2 + orders.order.len() + extra);
    for &r in reads {
        let m = prep.mops[r as usize];
        let w = orders.last_writer(prep, &m);
        if w != NONE {
            edges.add(ix.txn[w as usize], m.txn, rel::WR);
        }
        if m.aux == INCOMPATIBLE {
            continue;
        }
        match orders.order_txn(m.key).get(m.aux as usize) {
            Some(&next) => edges.add(m.txn, next, rel::RW),
            None => {
                for &u in orders.unread(m.key) {
                    edges.add(m.txn, ix.txn[u as usize], rel::RW);
                }
            }
        }
    }
    for k in 0..prep.keys.len() as u32 {
        let ord = orders.order_txn(k);
        for w in ord.windows(2) {
            edges.add(w[0], w[1], rel::WW);
        }
        if let Some(&last) = ord.last() {
            for &u in orders.unread(k) {
                edges.add(last, ix.txn[u as usize], rel::WW);
            }
        }
    }
    edges
}

/// Internal consistency (a read disagrees with the transaction's own earlier
/// reads and appends of the key) and future reads (a read shows an element
/// the transaction appends only later).
fn internal_and_future_reads(prep: &Prepared<'_>, findings: &mut Vec<Finding>) {
    let mut want: Vec<u32> = Vec::new();
    for (t, txn) in prep.txns.iter().enumerate() {
        if txn.status != Status::Ok || txn.len < 2 {
            continue;
        }
        let t = t as u32;
        let mops = prep.txn_mops(t);
        let mut reported_internal = false;
        for (i, m) in mops.iter().enumerate() {
            if m.kind != MopKind::Read {
                continue;
            }
            let seen = prep.read_elems(m);
            // Future read: the read holds an element this transaction appends later.
            if let Some(f) = mops[i + 1..]
                .iter()
                .find(|n| n.kind == MopKind::Append && n.key == m.key && seen.contains(&n.val))
            {
                let mut names = Names::default();
                let a = names.of(t);
                findings.push(Finding {
                    kind: "future-read",
                    body: format!(
                        "{a} read key {k} = {} before it appended {} to key {k} itself: the read \
                         saw a write from its own future.\n",
                        list_text(prep, seen),
                        prep.text(f.val),
                        k = prep.key(m.key)
                    ),
                    names,
                    extra: json!({"key": prep.key(m.key).to_string(), "element": prep.text(f.val)}),
                });
            }
            if reported_internal {
                continue;
            }
            // What the transaction's own earlier operations on the key say
            // this read must show: exactly its last read plus the appends
            // since, or (with no earlier read) something ending with the
            // appends.
            let earlier = &mops[..i];
            let last_read = earlier.iter().rposition(|n| n.kind == MopKind::Read && n.key == m.key);
            let since = last_read.map_or(0, |p| p + 1);
            want.clear();
            if let Some(p) = last_read {
                want.extend_from_slice(prep.read_elems(&earlier[p]));
            }
            let base = want.len();
            want.extend(
                earlier[since..]
                    .iter()
                    .filter(|n| n.kind == MopKind::Append && n.key == m.key)
                    .map(|n| n.val),
            );
            let ok = match last_read {
                Some(_) => seen == want.as_slice(),
                None => seen.ends_with(&want),
            };
            if ok {
                continue;
            }
            reported_internal = true;
            let mut names = Names::default();
            let a = names.of(t);
            let mut expected = list_text(prep, &want);
            if last_read.is_none() {
                expected.insert_str(1, "... ");
            }
            let why = match last_read {
                Some(_) if want.len() == base => {
                    "it read the key earlier and did not change it since"
                }
                Some(_) => "it read the key earlier and appended to it since",
                None => "it appended to the key earlier in the transaction",
            };
            findings.push(Finding {
                kind: "internal",
                body: format!(
                    "{a} read key {k} = {}, but {why}, so the read should have been {expected}. \
                     A transaction must see its own writes.\n",
                    list_text(prep, seen),
                    k = prep.key(m.key)
                ),
                names,
                extra: json!({"key": prep.key(m.key).to_string(), "expected": expected}),
            });
        }
    }
}

/// Lost update: two committed transactions read the same version of a key
/// and both appended to it, so neither saw the other's update.
fn lost_updates(prep: &Prepared<'_>, findings: &mut Vec<Finding>) {
    let mut first: FxHashMap<u64, u32> = FxHashMap::default();
    let mut groups: Vec<(u32, Vec<u32>)> = Vec::new();
    let mut group_of: FxHashMap<u64, usize> = FxHashMap::default();
    for (t, txn) in prep.txns.iter().enumerate() {
        if txn.status != Status::Ok || txn.len < 2 {
            continue;
        }
        let mops = prep.txn_mops(t as u32);
        for (i, m) in mops.iter().enumerate() {
            // The external read: the first operation on the key is a read,
            // and the transaction appends to the key later.
            if m.kind != MopKind::Read
                || m.aux == INCOMPATIBLE
                || mops[..i].iter().any(|n| n.key == m.key)
                || !mops[i + 1..].iter().any(|n| n.kind == MopKind::Append && n.key == m.key)
            {
                continue;
            }
            let id = (u64::from(m.key) << 32) | u64::from(m.aux);
            match first.get(&id) {
                None => {
                    first.insert(id, t as u32);
                }
                Some(&other) => match group_of.get(&id) {
                    Some(&g) => groups[g].1.push(t as u32),
                    None => {
                        group_of.insert(id, groups.len());
                        groups.push((m.key, vec![other, t as u32]));
                    }
                },
            }
        }
    }
    for (k, ts) in groups {
        let read = prep
            .txn_mops(ts[0])
            .iter()
            .find(|m| m.kind == MopKind::Read && m.key == k)
            .map_or_else(String::new, |m| list_text(prep, prep.read_elems(m)));
        findings.push(lost_update(
            prep,
            k,
            &ts,
            read,
            "appended to",
            "wrote over a state without the others' appends",
        ));
    }
}

impl Explainer for AppendOrders {
    fn edge(&self, prep: &Prepared<'_>, names: &mut Names, a: u32, b: u32, r: u8) -> String {
        let na = names.of(a);
        let nb = names.of(b);
        let ix = &self.index;
        let val_of = |x: u32| prep.text(prep.mops[ix.mop[x as usize] as usize].val);
        match r {
            rel::WW => {
                for m in prep.txn_mops(b).iter().filter(|m| m.kind == MopKind::Append) {
                    let Some(me) = ix.find(m.key, m.val) else { continue };
                    let ord = self.order(m.key);
                    let placed = ix.pos[me as usize] != NONE;
                    let prev = if placed {
                        (ix.pos[me as usize] as usize).checked_sub(1).and_then(|p| ord.get(p))
                    } else {
                        ord.last()
                    };
                    let Some(&p) = prev.filter(|&&p| p != NONE && ix.txn[p as usize] == a) else {
                        continue;
                    };
                    let (v, pv) = (prep.text(m.val), val_of(p));
                    let tail = if placed {
                        String::new()
                    } else {
                        format!(
                            " (no read saw {v}, so it came after {pv}, the last element any read saw)"
                        )
                    };
                    return format!(
                        "{nb} appended {v} to key {k} after {na} appended {pv}{tail}, so {na} < {nb}.",
                        k = prep.key(m.key)
                    );
                }
            }
            rel::WR => {
                for m in
                    prep.txn_mops(b).iter().filter(|m| m.kind == MopKind::Read && m.aux != NONE)
                {
                    let w = self.last_writer(prep, m);
                    if w != NONE && ix.txn[w as usize] == a {
                        return format!(
                            "{nb} read key {k} = {}, whose last element {} {na} appended, so {na} < {nb}.",
                            list_text(prep, prep.read_elems(m)),
                            val_of(w),
                            k = prep.key(m.key)
                        );
                    }
                }
            }
            rel::RW => {
                let known =
                    |m: &&Mop| m.kind == MopKind::Read && m.aux != INCOMPATIBLE && m.aux != NONE;
                for m in prep.txn_mops(a).iter().filter(known) {
                    let next: &[u32] = match self.order(m.key).get(m.aux as usize) {
                        Some(n) => std::slice::from_ref(n),
                        None => self.unread(m.key),
                    };
                    let Some(&n) = next.iter().find(|&&n| n != NONE && ix.txn[n as usize] == b)
                    else {
                        continue;
                    };
                    let seen = if m.aux == 0 {
                        "as empty".to_owned()
                    } else {
                        format!("= {}", list_text(prep, prep.read_elems(m)))
                    };
                    return format!(
                        "{nb} appended {} to key {k} after {na} read key {k} without it ({na} read \
                         key {k} {seen}), so {na} < {nb}.",
                        val_of(n),
                        k = prep.key(m.key)
                    );
                }
            }
            _ => {}
        }
        format!("{na} < {nb} ({} dependency).", rel::name(r))
    }
}
