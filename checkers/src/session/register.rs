//! The four guarantees on a register history, where a read shows only the
//! winning write: a read violates a guarantee only when what it shows is
//! certainly older than a write the guarantee requires (the initial value,
//! a value the session saw replaced, or a write its author replaced).

use rustc_hash::{FxHashMap, FxHashSet};

use super::Guarantee;
use super::evidence::{Bounds, Ctx, Found, dedup_chain, describe_writes, observe};
use crate::error::CheckError;
use crate::value::Value;

/// One session's accesses of one key: (seq in session, unit, value).
type Accesses<'a> = Vec<(u32, u32, &'a Value)>;

/// Per key: each value read with its first reading unit, and the last read.
type SeenValues<'a> = FxHashMap<u32, (FxHashMap<&'a Value, u32>, Option<(u32, &'a Value)>)>;

/// (guarantee, session, key, witness unit) already reported.
type Reported = FxHashSet<(Guarantee, u32, u32, u32)>;

/// Every write by (key, value), and each session's writes and non-nil reads
/// per key.
struct Index<'a> {
    /// The write of each (key, value): its unit.
    writer: FxHashMap<(u32, &'a Value), u32>,
    /// Per (session, key): its writes, as (seq, unit, value).
    writes: FxHashMap<(u32, u32), Accesses<'a>>,
    /// Per (session, key): its non-nil reads, as (seq, unit, value).
    reads: FxHashMap<(u32, u32), Accesses<'a>>,
    /// Per (session, key, value): the session's first read of that value,
    /// as (seq, unit), so writes-follow-reads finds it without a scan.
    first_read: FxHashMap<(u32, u32, &'a Value), (u32, u32)>,
}

/// Finds the violations of a register history; `Some(reason)` when the
/// budget ran out first.
pub(super) fn register(
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
    Ok(None)
}

/// Indexes the writes and reads, refusing a nil write (it reads as the
/// initial value) and a value written twice to one key (a read could not
/// say which write it saw).
fn index<'a>(ctx: &Ctx<'a>) -> Result<Index<'a>, CheckError> {
    let p = ctx.p;
    let mut writer: FxHashMap<(u32, &Value), u32> = FxHashMap::default();
    let mut writes: FxHashMap<(u32, u32), Accesses<'_>> = FxHashMap::default();
    let mut reads: FxHashMap<(u32, u32), Accesses<'_>> = FxHashMap::default();
    let mut first_read = FxHashMap::default();
    for (u, unit) in p.units.iter().enumerate() {
        for (k, v) in &unit.writes {
            if v.is_nil() {
                return Err(CheckError::BadOp {
                    location: ctx.history.locate(unit.pos).field("value"),
                    message: format!(
                        "this write gives {} the value nil, which the session checker cannot tell from the \
                         initial value; write unique non-nil values",
                        ctx.key(*k)
                    ),
                });
            }
            if let Some(&first) = writer.get(&(*k, v)) {
                return Err(CheckError::BadOp {
                    location: ctx.history.locate(unit.pos).field("value"),
                    message: format!(
                        "{} is given the value {v} twice, here and in op {}; the session checker needs each \
                         value written at most once per key to tell which write a read observed",
                        ctx.key(*k),
                        ctx.op(first)
                    ),
                });
            }
            writer.insert((*k, v), u as u32);
            writes.entry((unit.session, *k)).or_default().push((unit.seq, u as u32, v));
        }
        for (k, v) in &unit.reads {
            if !v.is_nil() {
                reads.entry((unit.session, *k)).or_default().push((unit.seq, u as u32, v));
                first_read.entry((unit.session, *k, v)).or_insert((unit.seq, u as u32));
            }
        }
    }
    Ok(Index { writer, writes, reads, first_read })
}

/// One register read being judged.
struct RegisterRead<'a> {
    /// The reading unit, its session and its seq there.
    u: u32,
    s: u32,
    seq: u32,
    k: u32,
    /// The value read.
    x: &'a Value,
    /// The key in words, and `op N (process P) read K = X`.
    key: String,
    read_text: String,
    /// The unit that wrote `x` (none for the initial value).
    origin: Option<u32>,
    /// The session's previous read of the key, and the first unit of the
    /// session that read `x` there.
    last_read: Option<(u32, &'a Value)>,
    first_read_of_x: Option<u32>,
}

/// Judges every read of one session against the four guarantees, in
/// session order; `Some(reason)` when the budget ran out.
fn session_reads<'a>(
    ctx: &Ctx<'a>,
    ix: &Index<'a>,
    enabled: &[Guarantee],
    s: u32,
    units: &[u32],
    reported: &mut Reported,
    out: &mut Vec<Found>,
) -> Option<String> {
    let p = ctx.p;
    let mut bounds = Bounds::default();
    let mut seen: SeenValues<'a> = FxHashMap::default();
    for &u in units {
        if let Some(reason) = ctx.meter.tick() {
            return Some(reason);
        }
        let unit = &p.units[u as usize];
        for (k, v) in &unit.reads {
            if let Some(&w) = ix.writer.get(&(*k, v)) {
                observe(p, &mut bounds, s, u, w);
            }
        }
        for (k, x) in &unit.reads {
            let key = ctx.key(*k);
            let state = seen.get(k);
            let read = RegisterRead {
                u,
                s,
                seq: unit.seq,
                k: *k,
                x,
                read_text: format!("{} read {key} = {x}", ctx.who(u)),
                key,
                origin: ix.writer.get(&(*k, x)).copied(),
                last_read: state.and_then(|s| s.1),
                first_read_of_x: state.and_then(|s| s.0.get(x)).copied(),
            };
            // One read is reported once, under the first guarantee it breaks.
            if let Some((witness, f)) = judge_read(ctx, ix, enabled, &bounds, &read)
                && reported.insert((f.guarantee, s, *k, witness))
            {
                out.push(f);
            }
        }
        for (k, x) in &unit.reads {
            let entry = seen.entry(*k).or_default();
            if !x.is_nil() {
                entry.0.entry(x).or_insert(u);
                entry.1 = Some((u, x));
            } else if entry.1.is_none() {
                entry.1 = Some((u, x));
            }
        }
    }
    None
}

/// The first guarantee (in reporting precedence) that `read` breaks, with
/// the unit that witnesses it.
fn judge_read(
    ctx: &Ctx<'_>,
    ix: &Index<'_>,
    enabled: &[Guarantee],
    bounds: &Bounds,
    read: &RegisterRead<'_>,
) -> Option<(u32, Found)> {
    let on = |g: Guarantee| enabled.contains(&g);
    if on(Guarantee::ReadYourWrites)
        && let Some(hit) = read_your_writes(ctx, ix, read)
    {
        return Some(hit);
    }
    if on(Guarantee::MonotonicReads)
        && let Some(hit) = monotonic_reads(ctx, read)
    {
        return Some(hit);
    }
    for (&author, &(bound, observed)) in bounds {
        let seen = Observation::new(ctx, read, author, bound, observed);
        if on(Guarantee::MonotonicWrites)
            && let Some(hit) = monotonic_writes(ctx, ix, read, &seen)
        {
            return Some(hit);
        }
        if on(Guarantee::WritesFollowReads)
            && let Some(hit) = writes_follow_reads(ctx, ix, read, &seen)
        {
            return Some(hit);
        }
    }
    None
}

/// Read-your-writes: nil, or an own write this session replaced.
fn read_your_writes(
    ctx: &Ctx<'_>,
    ix: &Index<'_>,
    read: &RegisterRead<'_>,
) -> Option<(u32, Found)> {
    let p = ctx.p;
    let (u, x, key, origin) = (read.u, read.x, &read.key, read.origin);
    let (_, latest, lv) = before(ix.writes.get(&(read.s, read.k)), read.seq, false)?;
    let older_own = origin.is_some_and(|o| p.units[o as usize].session == read.s && o < latest);
    if lv == x || !(x.is_nil() || older_own) {
        return None;
    }
    let older = match origin {
        Some(o) => {
            format!(", its own older write (op {}), which it had since replaced", ctx.op(o))
        }
        None => ", the initial value".to_owned(),
    };
    let found = Found {
        guarantee: Guarantee::ReadYourWrites,
        explanation: format!(
            "{}{older}, after process {} wrote {key} = {lv} in op {}.",
            read.read_text,
            ctx.process(u),
            ctx.op(latest)
        ),
        chain: vec![
            (latest, format!("write {key} = {lv}"), None),
            (u, format!("read {key} = {x}"), Some("later in the session")),
        ],
    };
    Some((latest, found))
}

/// Monotonic reads: nil after a value, or back to a value read before
/// another.
fn monotonic_reads(ctx: &Ctx<'_>, read: &RegisterRead<'_>) -> Option<(u32, Found)> {
    let (u, x, key) = (read.u, read.x, &read.key);
    let (lu, lv) = read.last_read?;
    if lv == x {
        return None;
    }
    let back = read.first_read_of_x.filter(|&a| a < lu);
    if !(x.is_nil() || back.is_some()) {
        return None;
    }
    let (explanation, mut chain) = match back {
        Some(a) => (
            format!(
                "{} again, after reading {key} = {x} (op {}) and then {key} = {lv} \
                 (op {}): the reads went back to an older value.",
                read.read_text,
                ctx.op(a),
                ctx.op(lu)
            ),
            vec![(a, format!("read {key} = {x}"), None)],
        ),
        None => (
            format!(
                "{}, the initial value, after reading {key} = {lv} in op {}.",
                read.read_text,
                ctx.op(lu)
            ),
            Vec::new(),
        ),
    };
    chain.push((lu, format!("read {key} = {lv}"), chain.first().map(|_| "later in the session")));
    chain.push((u, format!("read {key} = {x}"), Some("later in the session")));
    Some((lu, Found { guarantee: Guarantee::MonotonicReads, explanation, chain }))
}

/// What a session observed of one author: that author's write of unit
/// `later` (its seq `bound`), seen by unit `observed`.
struct Observation {
    author: u32,
    bound: u32,
    observed: u32,
    later: u32,
    /// The observed unit's writes in words.
    what: String,
    /// When the session saw them, in words.
    when: String,
}

impl Observation {
    fn new(
        ctx: &Ctx<'_>,
        read: &RegisterRead<'_>,
        author: u32,
        bound: u32,
        observed: u32,
    ) -> Observation {
        let later = ctx.p.sessions[author as usize].1[bound as usize];
        let when = if observed == read.u {
            "in the same operation".to_owned()
        } else {
            format!("in op {}", ctx.op(observed))
        };
        Observation { author, bound, observed, later, what: describe_writes(ctx, later), when }
    }
}

/// Monotonic writes: the author's last write of this key before the
/// observed one must be visible (or superseded).
fn monotonic_writes(
    ctx: &Ctx<'_>,
    ix: &Index<'_>,
    read: &RegisterRead<'_>,
    seen: &Observation,
) -> Option<(u32, Found)> {
    let p = ctx.p;
    let (u, x, key, origin) = (read.u, read.x, &read.key, read.origin);
    let Observation { author, bound, observed, later, what, when } = seen;
    let (_, a, av) = before(ix.writes.get(&(*author, read.k)), *bound, true)?;
    let replaced_by_author =
        origin.is_some_and(|o| p.units[o as usize].session == *author && o < a);
    if av == x || !(x.is_nil() || replaced_by_author) {
        return None;
    }
    let older = match origin {
        Some(o) => {
            format!(", a write process {} had replaced (op {})", ctx.process(*later), ctx.op(o))
        }
        None => ", the initial value".to_owned(),
    };
    let found = Found {
        guarantee: Guarantee::MonotonicWrites,
        explanation: format!(
            "{}{older}. It had seen {what} by process {} (op {}) {when}, and \
             process {} wrote {key} = {av} before that, in op {}: a replica that shows a \
             write must also show the writes its author made before it.",
            read.read_text,
            ctx.process(*later),
            ctx.op(*later),
            ctx.process(*later),
            ctx.op(a)
        ),
        chain: dedup_chain(vec![
            (a, format!("write {key} = {av}"), None),
            (*later, what.clone(), Some("later in its author's session")),
            (*observed, format!("saw {what}"), Some("observed by")),
            (u, format!("read {key} = {x}"), Some("later in the session")),
        ]),
    };
    Some((a, found))
}

/// Writes-follow-reads: nil where the author had read a value, or a value
/// the author read and then overwrote.
fn writes_follow_reads(
    ctx: &Ctx<'_>,
    ix: &Index<'_>,
    read: &RegisterRead<'_>,
    seen: &Observation,
) -> Option<(u32, Found)> {
    let (u, x, key, k) = (read.u, read.x, &read.key, read.k);
    let Observation { author, bound, observed, later, what, when } = seen;
    let author_read = before(ix.reads.get(&(*author, k)), *bound, false);
    let replaced = read.origin.and_then(|_| {
        // The author's first read of x before the bound, then its first
        // write of the key after that read (a session's accesses are in
        // seq order), if that too came before the bound.
        let r = ix.first_read.get(&(*author, k, x)).filter(|r| r.0 < *bound)?;
        let ws = ix.writes.get(&(*author, k))?;
        let w = ws.get(ws.partition_point(|e| e.0 <= r.0)).filter(|e| e.0 <= *bound)?;
        Some((r.1, w.1, w.2))
    });
    let (ru, did, overwrote) = match (x.is_nil(), author_read, replaced) {
        (true, Some((_, ru, rv)), _) => (ru, format!("read {key} = {rv}"), None),
        (false, _, Some((ru, wu, wv))) => (ru, format!("read {key} = {x}"), Some((wu, wv))),
        _ => return None,
    };
    let tail = match overwrote {
        Some((wu, wv)) => format!(
            ", and then replaced it with {key} = {wv} (op {}): {x} must come before that write everywhere",
            ctx.op(wu)
        ),
        None => String::new(),
    };
    let found = Found {
        guarantee: Guarantee::WritesFollowReads,
        explanation: format!(
            "{}. It had seen {what} by process {} (op {}) {when}, and before \
             writing that, process {} had {did} (op {}){tail}. A replica that shows a \
             write must also show the writes its author had read.",
            read.read_text,
            ctx.process(*later),
            ctx.op(*later),
            ctx.process(*later),
            ctx.op(ru)
        ),
        chain: dedup_chain(vec![
            (ru, did.clone(), None),
            (*later, what.clone(), Some("later in its author's session")),
            (*observed, format!("saw {what}"), Some("observed by")),
            (u, format!("read {key} = {x}"), Some("later in the session")),
        ]),
    };
    Some((ru, found))
}

/// The last entry of `list` (seq, unit, value) with seq below `bound` (or at it, when `inclusive`).
fn before<'v>(
    list: Option<&Accesses<'v>>,
    bound: u32,
    inclusive: bool,
) -> Option<(u32, u32, &'v Value)> {
    list.and_then(|l| {
        let i = l.partition_point(|e| if inclusive { e.0 <= bound } else { e.0 < bound });
        (i > 0).then(|| l[i - 1])
    })
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
        testing::found(register, h, enabled)
    }

    #[test]
    fn the_initial_value_after_an_own_write_breaks_read_your_writes() {
        let h = history(&[(0, "write", "x", "1"), (0, "read", "x", "nil")]);
        let f = found(&h, &Guarantee::ALL);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, Guarantee::ReadYourWrites);
        assert_eq!(
            f[0].1,
            "op 3 (process 0) read :x = nil, the initial value, after process 0 wrote :x = 1 in op 1."
        );
        assert_eq!(f[0].2, vec![0, 1]);
    }

    #[test]
    fn another_writers_value_after_an_own_write_is_not_evidence() {
        // Process 1's write may be the newer one: a register read shows only the winner.
        let h = history(&[(0, "write", "x", "1"), (1, "write", "x", "2"), (0, "read", "x", "2")]);
        assert!(found(&h, &Guarantee::ALL).is_empty());
    }

    #[test]
    fn going_back_to_an_older_value_breaks_monotonic_reads() {
        let h = history(&[
            (0, "write", "x", "1"),
            (1, "write", "x", "2"),
            (2, "read", "x", "1"),
            (2, "read", "x", "2"),
            (2, "read", "x", "1"),
        ]);
        let f = found(&h, &Guarantee::ALL);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, Guarantee::MonotonicReads);
        assert!(f[0].1.ends_with("the reads went back to an older value."), "{f:?}");
        assert_eq!(f[0].2, vec![2, 3, 4]);
    }

    #[test]
    fn the_initial_value_of_a_key_the_observed_author_wrote_before_breaks_monotonic_writes() {
        let h = history(&[
            (0, "write", "x", "1"),
            (0, "write", "y", "1"),
            (1, "read", "y", "1"),
            (1, "read", "x", "nil"),
        ]);
        let f = found(&h, &Guarantee::ALL);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, Guarantee::MonotonicWrites);
        assert!(f[0].1.contains("It had seen write :y = 1 by process 0 (op 3) in op 5"), "{f:?}");
        assert_eq!(f[0].2, vec![0, 1, 2, 3]);
    }

    #[test]
    fn the_initial_value_of_a_key_the_observed_author_had_read_breaks_writes_follow_reads() {
        let h = history(&[
            (2, "write", "x", "1"),
            (0, "read", "x", "1"),
            (0, "write", "y", "2"),
            (1, "read", "y", "2"),
            (1, "read", "x", "nil"),
        ]);
        let f = found(&h, &Guarantee::ALL);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, Guarantee::WritesFollowReads);
        assert!(f[0].1.contains("process 0 had read :x = 1 (op 3)"), "{f:?}");
        assert!(found(&h, &[Guarantee::ReadYourWrites, Guarantee::MonotonicWrites]).is_empty());
    }

    #[test]
    fn a_nil_write_is_an_error() {
        let h = history(&[(0, "write", "x", "nil")]);
        let p = parse(&h, None).expect("parse");
        let meter = Budget::default().start();
        let ctx = Ctx { history: &h, p: &p, meter: &meter };
        let err = register(&ctx, &Guarantee::ALL, &mut Vec::new()).expect_err("refused");
        assert!(err.to_string().contains("this write gives :x the value nil"), "{err}");
    }

    #[test]
    fn before_finds_the_last_access_below_or_at_a_bound() {
        let (a, b) = (Value::Int(1), Value::Int(2));
        let list: Accesses<'_> = vec![(0, 10, &a), (3, 11, &b)];
        assert_eq!(before(Some(&list), 3, false), Some((0, 10, &a)));
        assert_eq!(before(Some(&list), 3, true), Some((3, 11, &b)));
        assert_eq!(before(Some(&list), 0, false), None);
        assert_eq!(before(None, 9, true), None);
    }
}
