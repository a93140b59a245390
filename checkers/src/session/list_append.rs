//! The four guarantees on a list-append history, where a read shows every
//! append its replica held: an element a guarantee requires and the list
//! lacks is a violation, and so is a session's write order that the version
//! order reverses.

use rustc_hash::{FxHashMap, FxHashSet};

use super::Guarantee;
use super::evidence::{Bounds, Ctx, Found, dedup_chain, describe_writes, observe};
use super::order::{Req, Track, VersionOrder};
use crate::error::CheckError;
use crate::value::Value;

/// What the history says about each session's appends and reads, by
/// element and by (session, key).
struct Index<'a> {
    order: VersionOrder<'a>,
    /// The unit that appended each (key, element).
    appended_by: FxHashMap<(u32, &'a Value), u32>,
    /// Per (session, key): its appends in session order.
    appends: FxHashMap<(u32, u32), Track<'a>>,
    /// Per (session, key): the last element of each of its list reads that
    /// has a place in the version order.
    reads: FxHashMap<(u32, u32), Track<'a>>,
}

/// (guarantee, session, key, element) already reported.
type Reported = FxHashSet<(Guarantee, u32, u32, Value)>;

/// Finds the violations of a list-append history; `Some(reason)` when the
/// budget ran out first.
pub(super) fn list_append(
    ctx: &Ctx<'_>,
    enabled: &[Guarantee],
    out: &mut Vec<Found>,
) -> Result<Option<String>, CheckError> {
    let ix = index(ctx)?;
    let mut reported = Reported::default();
    for (s, (_, units)) in ctx.p.sessions.iter().enumerate() {
        let exhausted = session_reads(ctx, &ix, enabled, s as u32, units, &mut reported, out);
        if exhausted.is_some() {
            return Ok(exhausted);
        }
    }
    // Write order: a session's later append must follow, in the key's
    // version order, what it appended or read there before.
    let on = |g: Guarantee| enabled.contains(&g);
    if on(Guarantee::MonotonicWrites) || on(Guarantee::WritesFollowReads) {
        for (_, units) in &ctx.p.sessions {
            let exhausted = write_order(ctx, &ix, enabled, units, &mut reported, out);
            if exhausted.is_some() {
                return Ok(exhausted);
            }
        }
    }
    Ok(None)
}

/// Indexes the appends and reads, refusing an element appended twice to one
/// key (a read could not say which append it saw).
fn index<'a>(ctx: &Ctx<'a>) -> Result<Index<'a>, CheckError> {
    let p = ctx.p;
    let order = VersionOrder::new(p);
    let mut appended_by: FxHashMap<(u32, &Value), u32> = FxHashMap::default();
    let mut appends: FxHashMap<(u32, u32), Track<'_>> = FxHashMap::default();
    let mut reads: FxHashMap<(u32, u32), Track<'_>> = FxHashMap::default();
    for (u, unit) in p.units.iter().enumerate() {
        for (k, e) in &unit.writes {
            if let Some(&first) = appended_by.get(&(*k, e)) {
                return Err(CheckError::BadOp {
                    location: ctx.history.locate(unit.pos).field("value"),
                    message: format!(
                        "{} is appended to {} twice, here and in op {}; the session checker needs unique \
                         elements per key to tell which append a read observed",
                        e,
                        ctx.key(*k),
                        ctx.op(first)
                    ),
                });
            }
            appended_by.insert((*k, e), u as u32);
            let pos = order.pos.get(&(*k, e)).copied();
            appends
                .entry((unit.session, *k))
                .or_default()
                .push(unit.seq, Req { pos, elem: e, unit: u as u32 });
        }
        for (k, v) in &unit.reads {
            let Some(list) = v.as_list() else { continue };
            if let Some(last) = order.last_known(*k, list) {
                reads
                    .entry((unit.session, *k))
                    .or_default()
                    .push(unit.seq, Req { pos: Some(last.0), elem: last.1, unit: u as u32 });
            }
        }
    }
    Ok(Index { order, appended_by, appends, reads })
}

/// One list read being judged.
struct ListRead<'a> {
    /// The reading unit, its session and its seq there.
    u: u32,
    s: u32,
    seq: u32,
    k: u32,
    /// The value read, and it as a list (nil reads as empty).
    v: &'a Value,
    list: &'a [Value],
    /// How many leading elements the list shares with the version order.
    prefix: usize,
    /// `op N (process P) read K = V`, how every explanation starts.
    read_text: String,
}

impl ListRead<'_> {
    /// Whether the read holds the required element: certainly when the
    /// element's place is inside the read's prefix of the version order.
    fn has(&self, r: &Req<'_>) -> bool {
        match r.pos {
            Some(pos) if pos < self.prefix => true,
            _ => self.list.contains(r.elem),
        }
    }
}

/// Reports the elements one read lacks, each once, under the first
/// guarantee that requires it, and each (guarantee, session, key, element)
/// once in the whole check.
struct ReadReport<'r> {
    missing_here: Vec<Value>,
    reported: &'r mut Reported,
    out: &'r mut Vec<Found>,
}

impl ReadReport<'_> {
    fn report(
        &mut self,
        read: &ListRead<'_>,
        g: Guarantee,
        r: Req<'_>,
        why: impl FnOnce() -> Found,
    ) {
        if !self.missing_here.contains(r.elem) {
            self.missing_here.push(r.elem.clone());
            if self.reported.insert((g, read.s, read.k, r.elem.clone())) {
                self.out.push(why());
            }
        }
    }
}

/// Judges every read of one session against the four guarantees, in
/// session order; `Some(reason)` when the budget ran out.
fn session_reads(
    ctx: &Ctx<'_>,
    ix: &Index<'_>,
    enabled: &[Guarantee],
    s: u32,
    units: &[u32],
    reported: &mut Reported,
    out: &mut Vec<Found>,
) -> Option<String> {
    let p = ctx.p;
    let on = |g: Guarantee| enabled.contains(&g);
    let mut bounds = Bounds::default();
    for &u in units {
        if let Some(reason) = ctx.meter.tick() {
            return Some(reason);
        }
        let unit = &p.units[u as usize];
        for (k, v) in &unit.reads {
            for e in v.as_list().unwrap_or(&[]) {
                if let Some(&w) = ix.appended_by.get(&(*k, e)) {
                    observe(p, &mut bounds, s, u, w);
                }
            }
        }
        for (k, v) in &unit.reads {
            let list = v.as_list().unwrap_or(&[]);
            let read = ListRead {
                u,
                s,
                seq: unit.seq,
                k: *k,
                v,
                list,
                prefix: ix.order.prefix_len(*k, list),
                read_text: format!("{} read {} = {}", ctx.who(u), ctx.key(*k), v),
            };
            let mut rep =
                ReadReport { missing_here: Vec::new(), reported: &mut *reported, out: &mut *out };
            if on(Guarantee::ReadYourWrites) {
                read_your_writes(ctx, ix, &read, &mut rep);
            }
            if on(Guarantee::MonotonicReads) {
                monotonic_reads(ctx, ix, &read, &mut rep);
            }
            for g in [Guarantee::MonotonicWrites, Guarantee::WritesFollowReads] {
                if on(g) {
                    inherited(ctx, ix, g, &bounds, &read, &mut rep);
                }
            }
        }
    }
    None
}

/// Read-your-writes: the read must hold the session's own earlier appends.
fn read_your_writes(ctx: &Ctx<'_>, ix: &Index<'_>, read: &ListRead<'_>, rep: &mut ReadReport<'_>) {
    let Some(t) = ix.appends.get(&(read.s, read.k)) else { return };
    let (best, extra) = t.before(read.seq);
    let (u, k) = (read.u, read.k);
    for r in best.into_iter().chain(extra).filter(|r| !read.has(r)) {
        rep.report(read, Guarantee::ReadYourWrites, r, || Found {
            guarantee: Guarantee::ReadYourWrites,
            explanation: format!(
                "{}, without {}, which process {} itself appended to {} earlier, in op {}.",
                read.read_text,
                r.elem,
                ctx.process(u),
                ctx.key(k),
                ctx.op(r.unit)
            ),
            chain: vec![
                (r.unit, format!("append {} {}", ctx.key(k), r.elem), None),
                (u, format!("read {} = {}", ctx.key(k), read.v), Some("later in the session")),
            ],
        });
    }
}

/// Monotonic reads: the read must hold what the session's earlier reads of
/// the key showed.
fn monotonic_reads(ctx: &Ctx<'_>, ix: &Index<'_>, read: &ListRead<'_>, rep: &mut ReadReport<'_>) {
    let Some(t) = ix.reads.get(&(read.s, read.k)) else { return };
    let (best, _) = t.before(read.seq);
    let (u, k) = (read.u, read.k);
    for r in best.into_iter().filter(|r| !read.has(r)) {
        let earlier = &ctx.p.units[r.unit as usize];
        let seen = earlier.reads.iter().find(|(kk, _)| *kk == k).map(|(_, v)| v.clone());
        let seen = seen.unwrap_or_default();
        rep.report(read, Guarantee::MonotonicReads, r, || Found {
            guarantee: Guarantee::MonotonicReads,
            explanation: format!(
                "{}, without {}, which the same process had already seen in op {} ({} = {}).",
                read.read_text,
                r.elem,
                ctx.op(r.unit),
                ctx.key(k),
                seen
            ),
            chain: vec![
                (r.unit, format!("read {} = {}", ctx.key(k), seen), None),
                (u, format!("read {} = {}", ctx.key(k), read.v), Some("later in the session")),
            ],
        });
    }
}

/// Monotonic writes (`g`) or writes-follow-reads: for every author whose
/// write the session has observed, the read must hold what that author had
/// appended (MW) or read (WFR) to the key before it.
fn inherited(
    ctx: &Ctx<'_>,
    ix: &Index<'_>,
    g: Guarantee,
    bounds: &Bounds,
    read: &ListRead<'_>,
    rep: &mut ReadReport<'_>,
) {
    let tracks = if g == Guarantee::MonotonicWrites { &ix.appends } else { &ix.reads };
    for (&author, &(bound, observed)) in bounds {
        let Some(t) = tracks.get(&(author, read.k)) else { continue };
        let (best, extra) = t.before(bound);
        let extra: Vec<_> =
            if g == Guarantee::MonotonicWrites { extra.collect() } else { Vec::new() };
        for r in best.into_iter().chain(extra).filter(|r| !read.has(r)) {
            rep.report(read, g, r, || inherited_found(ctx, g, &r, read, author, bound, observed));
        }
    }
}

/// The words for a monotonic-writes or writes-follow-reads violation seen in
/// a list: the reader observed `author`'s write of unit `bound` (in unit
/// `observed`), but its read lacks `r`, which that author had appended (MW)
/// or read (WFR) before.
fn inherited_found(
    ctx: &Ctx<'_>,
    g: Guarantee,
    r: &Req<'_>,
    read: &ListRead<'_>,
    author: u32,
    bound: u32,
    observed: u32,
) -> Found {
    let (k, u) = (read.k, read.u);
    let later = ctx.p.sessions[author as usize].1[bound as usize];
    let (how, did) = match g {
        Guarantee::MonotonicWrites => ("appended", format!("append {} {}", ctx.key(k), r.elem)),
        _ => ("had read", format!("read {} with {}", ctx.key(k), r.elem)),
    };
    let prep = if g == Guarantee::MonotonicWrites { "to" } else { "in" };
    let what = describe_writes(ctx, later);
    let when = if observed == u {
        "in the same read".to_owned()
    } else {
        format!("in op {}", ctx.op(observed))
    };
    Found {
        guarantee: g,
        explanation: format!(
            "{}, without {}. It had seen {what} by process {} (op {}) {when}, and process {} {how} {} \
             {prep} {} before that, in op {}: a replica that shows a write must also show what {}.",
            read.read_text,
            r.elem,
            ctx.process(later),
            ctx.op(later),
            ctx.process(later),
            r.elem,
            ctx.key(k),
            ctx.op(r.unit),
            match g {
                Guarantee::MonotonicWrites => "its author wrote before it",
                _ => "its author had read before writing it",
            }
        ),
        chain: dedup_chain(vec![
            (r.unit, did, None),
            (later, what.clone(), Some("later in its author's session")),
            (observed, format!("saw {what}"), Some("observed by")),
            (u, format!("read {} = {}", ctx.key(k), read.v), Some("later in the session")),
        ]),
    }
}

/// What a session last put in a key's version order: (its place, the
/// element, the unit, and the guarantee a later append that goes before it
/// breaks: monotonic writes after an append, writes-follow-reads after a read).
type Latest<'a> = FxHashMap<u32, (usize, &'a Value, u32, Guarantee)>;

/// Checks one session's write order: each append must come, in the key's
/// version order, after what the session appended or read there before;
/// `Some(reason)` when the budget ran out.
fn write_order(
    ctx: &Ctx<'_>,
    ix: &Index<'_>,
    enabled: &[Guarantee],
    units: &[u32],
    reported: &mut Reported,
    out: &mut Vec<Found>,
) -> Option<String> {
    let mut latest: Latest<'_> = FxHashMap::default();
    for &u in units {
        if let Some(reason) = ctx.meter.tick() {
            return Some(reason);
        }
        let unit = &ctx.p.units[u as usize];
        for (k, e) in &unit.writes {
            let Some(&pos) = ix.order.pos.get(&(*k, e)) else { continue };
            if let Some(&(prior, pe, pu, g)) = latest.get(k)
                && prior > pos
                && enabled.contains(&g)
                && reported.insert((g, unit.session, *k, e.clone()))
            {
                out.push(out_of_order(ctx, ix, g, *k, (pu, pe), (u, e)));
            }
        }
        for (k, v) in &unit.reads {
            if let Some((pos, e)) = v.as_list().and_then(|l| ix.order.last_known(*k, l))
                && latest.get(k).is_none_or(|l| l.0 < pos)
            {
                latest.insert(*k, (pos, e, u, Guarantee::WritesFollowReads));
            }
        }
        for (k, e) in &unit.writes {
            if let Some(&pos) = ix.order.pos.get(&(*k, e))
                && latest.get(k).is_none_or(|l| l.0 < pos)
            {
                latest.insert(*k, (pos, e, u, Guarantee::MonotonicWrites));
            }
        }
    }
    None
}

/// The words for an append `(u, e)` that the version order of `k` puts
/// before what its session had earlier appended or read, `(pu, pe)`.
fn out_of_order(
    ctx: &Ctx<'_>,
    ix: &Index<'_>,
    g: Guarantee,
    k: u32,
    (pu, pe): (u32, &Value),
    (u, e): (u32, &Value),
) -> Found {
    let (_, witness) = ix.order.longest[&k];
    let (how, did) = if g == Guarantee::MonotonicWrites {
        ("appended", format!("append {} {pe}", ctx.key(k)))
    } else {
        ("read", format!("read {} with {pe}", ctx.key(k)))
    };
    Found {
        guarantee: g,
        explanation: format!(
            "process {} {how} {pe} {} {} (op {}) and then appended {e} to it (op {}), but reads of {} \
             put {e} before {pe} (op {} read {} = {}): replicas applied the later write first.",
            ctx.process(u),
            if g == Guarantee::MonotonicWrites { "to" } else { "in" },
            ctx.key(k),
            ctx.op(pu),
            ctx.op(u),
            ctx.key(k),
            ctx.op(witness),
            ctx.key(k),
            Value::list(ix.order.longest[&k].0.iter().cloned())
        ),
        chain: vec![
            (pu, did, None),
            (u, format!("append {} {e}", ctx.key(k)), Some("later in the session")),
            (
                witness,
                format!("read {} (… {e} … {pe} …)", ctx.key(k)),
                Some("observed out of order by"),
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Budget;
    use crate::history::History;
    use crate::session::sessions::parse;
    use crate::session::testing;

    fn history(ops: &[(u64, &str, &str, &str)]) -> History {
        testing::history(ops)
    }

    fn found(h: &History, enabled: &[Guarantee]) -> Vec<(Guarantee, String, Vec<u32>)> {
        testing::found(list_append, h, enabled)
    }

    #[test]
    fn a_read_without_an_own_earlier_append_breaks_read_your_writes() {
        let h = history(&[(0, "append", "x", "1"), (0, "read", "x", "[]")]);
        let f = found(&h, &Guarantee::ALL);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, Guarantee::ReadYourWrites);
        assert_eq!(
            f[0].1,
            "op 3 (process 0) read :x = [], without 1, which process 0 itself appended to :x \
             earlier, in op 1."
        );
        assert_eq!(f[0].2, vec![0, 1]);
    }

    #[test]
    fn an_element_missing_for_two_guarantees_is_reported_under_the_first() {
        let h =
            history(&[(0, "append", "x", "1"), (0, "read", "x", "[1]"), (0, "read", "x", "[]")]);
        let kinds: Vec<Guarantee> = found(&h, &Guarantee::ALL).into_iter().map(|f| f.0).collect();
        assert_eq!(kinds, vec![Guarantee::ReadYourWrites]);
        let alone = found(&h, &[Guarantee::MonotonicReads]);
        assert_eq!(alone.len(), 1, "{alone:?}");
        assert!(
            alone[0].1.contains("which the same process had already seen in op 3"),
            "{alone:?}"
        );
    }

    #[test]
    fn a_read_missing_what_the_observed_author_appended_before_breaks_monotonic_writes() {
        let h = history(&[
            (0, "append", "x", "1"),
            (0, "append", "y", "2"),
            (1, "read", "y", "[2]"),
            (1, "read", "x", "[]"),
        ]);
        let f = found(&h, &Guarantee::ALL);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, Guarantee::MonotonicWrites);
        assert!(f[0].1.contains("It had seen append :y 2 by process 0 (op 3) in op 5"), "{f:?}");
        assert_eq!(f[0].2, vec![0, 1, 2, 3], "append, its later append, the observer, the read");
    }

    #[test]
    fn a_read_missing_what_the_observed_author_had_read_breaks_writes_follow_reads() {
        let h = history(&[
            (2, "append", "x", "1"),
            (0, "read", "x", "[1]"),
            (0, "append", "y", "2"),
            (1, "read", "y", "[2]"),
            (1, "read", "x", "[]"),
        ]);
        let f = found(&h, &Guarantee::ALL);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, Guarantee::WritesFollowReads);
        assert!(f[0].1.contains("process 0 had read 1 in :x before that, in op 3"), "{f:?}");
        assert!(found(&h, &[Guarantee::MonotonicWrites]).is_empty());
    }

    #[test]
    fn appends_applied_in_the_reverse_of_session_order_break_monotonic_writes() {
        let h =
            history(&[(0, "append", "x", "1"), (0, "append", "x", "2"), (1, "read", "x", "[2 1]")]);
        let f = found(&h, &Guarantee::ALL);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, Guarantee::MonotonicWrites);
        assert!(
            f[0].1.starts_with("process 0 appended 1 to :x (op 1) and then appended 2"),
            "{f:?}"
        );
        assert_eq!(f[0].2, vec![0, 1, 2]);
    }

    #[test]
    fn a_session_that_sees_everything_in_order_breaks_nothing() {
        let h = history(&[
            (0, "append", "x", "1"),
            (1, "read", "x", "[1]"),
            (1, "append", "x", "2"),
            (0, "read", "x", "[1 2]"),
        ]);
        assert!(found(&h, &Guarantee::ALL).is_empty());
    }

    #[test]
    fn an_element_appended_twice_is_an_error_naming_both_ops() {
        let h = history(&[(0, "append", "x", "1"), (1, "append", "x", "1")]);
        let p = parse(&h, None).expect("parse");
        let meter = Budget::default().start();
        let ctx = Ctx { history: &h, p: &p, meter: &meter };
        let err = list_append(&ctx, &Guarantee::ALL, &mut Vec::new()).expect_err("refused");
        let err = err.to_string();
        assert!(err.contains("1 is appended to :x twice, here and in op 1"), "{err}");
    }
}
