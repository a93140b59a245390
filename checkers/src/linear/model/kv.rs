//! Porcupine's key-value store: `get`, `put` and `append` on strings.

use std::sync::Arc;

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::{Call, Interner, Model, ModelKind, unknown_function};
use crate::value::Value;

/// For each (key, value read by a get): the puts it could be reached from.
type Resets = FxHashMap<(u32, u32), SmallVec<[u32; 2]>>;

/// Porcupine's key-value store: string values, `get`, `put`, `append`
/// (concatenation), initially empty strings. Strings are interned, and
/// concatenations memoised, so states are vectors of ids.
///
/// Appends only ever extend a value, so every get still to come must
/// return an extension of the current value, unless a put still to come
/// resets it. The model tracks the gets and puts not yet linearized, and
/// `doomed` rejects a state the moment the get that must be linearized
/// soonest (the remaining get that returned first) could no longer see it:
/// a wrong order of two concurrent appends is caught at the second append,
/// not at the get that shows the order, possibly hundreds of steps later.
#[derive(Clone, Debug)]
pub(crate) struct Kv {
    strings: PartStrings,
    keys: Arc<[Value]>,
    /// Per key: remaining gets, by completion position, with the value read.
    gets: Vec<std::collections::BTreeMap<u32, u32>>,
    /// Per key: remaining gets that no put leads to, by (length of the
    /// value read, completion position), with the value: until such a get
    /// is linearized, the key's value must stay a prefix of what it read.
    fixed: Vec<std::collections::BTreeMap<(u32, u32), u32>>,
    /// Per key: remaining puts, by value.
    puts: Vec<FxHashMap<u32, u32>>,
    /// For each (key, value read by a get): the values of puts to that key
    /// that are prefixes of it, i.e. puts from which the get could be reached.
    resets: Arc<Resets>,
    /// Per key: remaining appends (crashed or not), by value.
    appends: Vec<FxHashMap<u32, u32>>,
    /// Per key: the distinct lengths of appended strings, so that "does a
    /// remaining append start this text" costs a few lookups.
    append_lens: Arc<[SmallVec<[u32; 4]>]>,
    /// The completion position of the first get whose value no sequence of
    /// a put (or the initial empty value) and appends to its key spells:
    /// no linearization reaches past it, whatever the order.
    hopeless: Option<u32>,
}

#[derive(Clone, Debug, Default)]
struct Strings {
    map: FxHashMap<Box<str>, u32>,
    strs: Vec<Box<str>>,
}

impl Strings {
    fn new() -> Strings {
        let mut s = Strings::default();
        s.id("");
        s
    }
    fn id(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.map.get(text) {
            return id;
        }
        let id = self.strs.len() as u32;
        self.strs.push(text.into());
        self.map.insert(text.into(), id);
        id
    }
}

/// A key's value that no get of that key starts with, whatever its text.
/// Appends can never turn it into a value a get reads (they only extend
/// it), so only a put can bring the key back: all such values are
/// interchangeable, and one id for them all spares the search building
/// (and remembering) texts nothing will ever compare, and merges states
/// that differ only in them.
const DEAD: u32 = u32::MAX - 1;

/// Where the ids of values shown in full for evidence start (see
/// `PartStrings::shown`), far above any prefix the search makes.
const SHOWN: u32 = u32::MAX / 2;

/// The values one partition's model reads and makes: the history's own
/// strings, shared by every partition, and the values appends make, which
/// are never materialised. A value appends make is either `DEAD` or a
/// prefix of a get's value: then it is that prefix, and its text a slice
/// of the history's string. (Each partition used to copy the history's
/// whole table, then to build every concatenation the search reached: on
/// Porcupine's c50 histories, whose reads are long concatenations, those
/// cost more than the search.)
#[derive(Clone, Debug)]
struct PartStrings {
    base: Arc<Strings>,
    /// Per key: the distinct values its gets read, sorted by text, so the
    /// reads that start with a given text are a contiguous run.
    reads: Vec<Vec<u32>>,
    /// Per key: where each of its reads is in `reads`.
    read_pos: Vec<FxHashMap<u32, u32>>,
    /// Ids from `base.strs.len()` on: a proper prefix of the reads
    /// `reads[key][lo..hi]` (exactly those that start with it), of `len`
    /// bytes.
    made: Vec<Prefix>,
    made_ids: FxHashMap<(u32, u32, u32), u32>,
    /// For a history string as the value of a key: the run of that key's
    /// reads that start with it.
    runs: FxHashMap<(u32, u32), (u32, u32)>,
    /// Appends already computed: (key, value, appended) to value.
    concat: FxHashMap<(u32, u32, u32), u32>,
    /// Once the search is over and the evidence replays a prefix: the
    /// texts of values that the search merged into `DEAD`, built so the
    /// evidence shows them (ids from `SHOWN` on).
    shown: Option<Vec<Box<str>>>,
}

/// A value appends made: the first `len` bytes of each of the key's reads
/// `lo..hi`.
#[derive(Clone, Copy, Debug)]
struct Prefix {
    key: u32,
    lo: u32,
    hi: u32,
    len: u32,
}

impl PartStrings {
    /// `reads`: per key, the distinct values its gets read, sorted by text.
    fn new(base: Arc<Strings>, reads: Vec<Vec<u32>>) -> PartStrings {
        let read_pos = reads
            .iter()
            .map(|rs| rs.iter().enumerate().map(|(i, &r)| (r, i as u32)).collect())
            .collect();
        PartStrings {
            base,
            reads,
            read_pos,
            made: Vec::new(),
            made_ids: FxHashMap::default(),
            runs: FxHashMap::default(),
            concat: FxHashMap::default(),
            shown: None,
        }
    }
    /// The text of a value; `None` for `DEAD`.
    fn text(&self, id: u32) -> Option<&str> {
        if id >= SHOWN && id != DEAD {
            return self.shown.as_ref()?.get((id - SHOWN) as usize).map(|t| &**t);
        }
        let id = id as usize;
        let n = self.base.strs.len();
        if id < n {
            return Some(&self.base.strs[id]);
        }
        let p = self.made.get(id - n)?;
        let read = self.reads[p.key as usize][p.lo as usize];
        // A prefix of the read that a sequence of whole strings spells:
        // it ends at a character boundary.
        self.base.strs[read as usize].get(..p.len as usize)
    }
    fn find(&self, text: &str) -> Option<u32> {
        self.base.map.get(text).copied()
    }
    /// The length of a value in bytes (0 for `DEAD`, which no caller asks).
    fn len(&self, id: u32) -> u32 {
        self.text(id).map_or(0, |t| t.len() as u32)
    }
    /// Whether `read`, a value a get of key `k` read, starts with `value`,
    /// a value of that key: for a value appends made, whether `read` is in
    /// its run, without comparing text.
    fn starts(&self, k: u32, read: u32, value: u32) -> bool {
        let n = self.base.strs.len();
        if value == DEAD {
            return false;
        }
        if (value as usize) < n {
            let (Some(read), Some(value)) = (self.text(read), self.text(value)) else {
                return false;
            };
            return read.starts_with(value);
        }
        let Some(p) = self.made.get(value as usize - n) else { return false };
        self.read_pos[k as usize].get(&read).is_some_and(|&i| p.lo <= i && i < p.hi)
    }
    /// The run of key `k`'s reads that start with value `v`, and `v`'s
    /// length; `None` for `DEAD`.
    fn run(&mut self, k: u32, v: u32) -> Option<(u32, u32, u32)> {
        let n = self.base.strs.len();
        if v as usize >= n {
            let p = self.made.get(v as usize - n)?;
            return Some((p.lo, p.hi, p.len));
        }
        let len = self.base.strs[v as usize].len() as u32;
        if let Some(&(lo, hi)) = self.runs.get(&(k, v)) {
            return Some((lo, hi, len));
        }
        let text = self.base.strs[v as usize].as_bytes();
        let reads = &self.reads[k as usize];
        let strs = &self.base.strs;
        let lo = reads.partition_point(|&r| strs[r as usize].as_bytes() < text);
        let hi =
            lo + reads[lo..].partition_point(|&r| strs[r as usize].as_bytes().starts_with(text));
        self.runs.insert((k, v), (lo as u32, hi as u32));
        Some((lo as u32, hi as u32, len))
    }
    /// A value no get starts with, `a` then `b`: `DEAD`, or while the
    /// evidence replays a prefix, the text itself.
    fn dead(&mut self, a: u32, b: u32) -> u32 {
        let joined = match (self.text(a), self.text(b)) {
            (Some(a), Some(b)) if self.shown.is_some() => format!("{a}{b}"),
            _ => return DEAD,
        };
        let shown = self.shown.get_or_insert_with(Vec::new);
        shown.push(joined.into());
        SHOWN + shown.len() as u32 - 1
    }
    /// The value of key `k` after appending string `b` to value `a`.
    fn append(&mut self, k: u32, a: u32, b: u32) -> u32 {
        if let Some(&id) = self.concat.get(&(k, a, b)) {
            return id;
        }
        let id = self.join(k, a, b);
        self.concat.insert((k, a, b), id);
        id
    }
    fn join(&mut self, k: u32, a: u32, b: u32) -> u32 {
        let Some((lo, hi, la)) = self.run(k, a) else { return self.dead(a, b) };
        // The reads that start with `a` share its bytes: among them, sorted
        // by text, those that go on with `b` are a contiguous run too.
        let strs = &self.base.strs;
        let tail = strs[b as usize].as_bytes();
        let run = &self.reads[k as usize][lo as usize..hi as usize];
        let suffix = |r: &u32| &strs[*r as usize].as_bytes()[la as usize..];
        let from = run.partition_point(|r| suffix(r) < tail);
        let to = from + run[from..].partition_point(|r| suffix(r).starts_with(tail));
        if from == to {
            return self.dead(a, b);
        }
        let len = la + tail.len() as u32;
        // The shortest read of the run comes first: if one is exactly
        // this value, it is that read, and the value is its id, so that a
        // get of it compares ids.
        if strs[run[from] as usize].len() == len as usize {
            return run[from];
        }
        let (lo2, hi2) = (lo + from as u32, lo + to as u32);
        let next = (self.base.strs.len() + self.made.len()) as u32;
        *self.made_ids.entry((k, lo2, len)).or_insert_with(|| {
            self.made.push(Prefix { key: k, lo: lo2, hi: hi2, len });
            next
        })
    }
}

/// A kv operation on key `slot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum KvOp {
    Get(u32, u32),
    Put(u32, u32),
    Append(u32, u32),
}

impl KvOp {
    fn slot_mut(&mut self) -> &mut u32 {
        match self {
            KvOp::Get(k, _) | KvOp::Put(k, _) | KvOp::Append(k, _) => k,
        }
    }
}

impl Model for Kv {
    type State = SmallVec<[u32; 1]>;
    type Op = KvOp;
    fn on_lift(&mut self, op: &KvOp, ret: u32) {
        match *op {
            KvOp::Get(k, v) => {
                self.gets[k as usize].remove(&ret);
                if !self.resets.contains_key(&(k, v)) {
                    let len = self.strings.len(v);
                    self.fixed[k as usize].remove(&(len, ret));
                }
            }
            KvOp::Put(k, v) => {
                if let Some(c) = self.puts[k as usize].get_mut(&v) {
                    *c = c.saturating_sub(1);
                }
            }
            KvOp::Append(k, v) => {
                if let Some(c) = self.appends[k as usize].get_mut(&v) {
                    *c = c.saturating_sub(1);
                }
            }
        }
    }
    fn on_unlift(&mut self, op: &KvOp, ret: u32) {
        match *op {
            KvOp::Get(k, v) => {
                self.gets[k as usize].insert(ret, v);
                if !self.resets.contains_key(&(k, v)) {
                    let len = self.strings.len(v);
                    self.fixed[k as usize].insert((len, ret), v);
                }
            }
            KvOp::Put(k, v) => *self.puts[k as usize].entry(v).or_insert(0) += 1,
            KvOp::Append(k, v) => *self.appends[k as usize].entry(v).or_insert(0) += 1,
        }
    }
    fn doomed(&self, state: &Self::State, op: &KvOp) -> Option<u32> {
        if self.hopeless.is_some() {
            return self.hopeless;
        }
        let k = match *op {
            KvOp::Get(k, _) | KvOp::Put(k, _) | KvOp::Append(k, _) => k,
        };
        let cur = state[k as usize];
        // The shortest value a remaining get that no put leads to will read:
        // appends alone must get there from here.
        if let Some((&(_, ret), &want)) = self.fixed[k as usize].first_key_value() {
            if !self.strings.starts(k, want, cur) {
                return Some(ret);
            }
            // And the next of those appends must start what is missing.
            let have = self.strings.len(cur) as usize;
            let want = self.strings.text(want).unwrap_or_default();
            if want.len() > have && !self.an_append_starts(k, want.get(have..).unwrap_or_default())
            {
                return Some(ret);
            }
        }
        // The value the remaining get that returned first will read: appends
        // from here, or a remaining put, must lead there.
        let (&ret, &want) = self.gets[k as usize].first_key_value()?;
        if self.strings.starts(k, want, cur) {
            return None;
        }
        let puts = &self.puts[k as usize];
        let resettable = self
            .resets
            .get(&(k, want))
            .is_some_and(|ps| ps.iter().any(|p| puts.get(p).is_some_and(|&c| c > 0)));
        (!resettable).then_some(ret)
    }
    fn doom_reason(&self, op: &KvOp) -> Option<String> {
        let KvOp::Get(k, _) = *op else { return None };
        Some(if self.hopeless.is_some() {
            format!(
                "no put or the empty start value, followed by appends to key {}, spells this value",
                self.keys[k as usize]
            )
        } else {
            "every way forward leaves the key's value where no append still to come continues \
             it toward this get's value, and no put still to come leads there"
                .to_owned()
        })
    }
    fn init(&self) -> Self::State {
        SmallVec::from_elem(0, self.keys.len())
    }
    fn for_evidence(&mut self) {
        self.strings.shown = Some(Vec::new());
        // Appends remembered as `DEAD` are made again, in full.
        self.strings.concat.clear();
    }
    fn step(&mut self, s: &Self::State, op: &KvOp) -> Option<Self::State> {
        match *op {
            KvOp::Get(k, v) => (s[k as usize] == v).then(|| s.clone()),
            KvOp::Put(k, v) => {
                let mut n = s.clone();
                n[k as usize] = v;
                Some(n)
            }
            KvOp::Append(k, v) => {
                let mut n = s.clone();
                n[k as usize] = self.strings.append(k, s[k as usize], v);
                Some(n)
            }
        }
    }
    fn state_bytes(s: &Self::State) -> usize {
        if s.spilled() { s.len() * 4 } else { 0 }
    }
    fn show_state(&self, s: &Self::State) -> String {
        let parts: Vec<String> = s
            .iter()
            .enumerate()
            .map(|(k, v)| match self.strings.text(*v) {
                Some(text) => format!("{} {text:?}", self.keys[k]),
                None => format!("{} «a value no get of this key starts with»", self.keys[k]),
            })
            .collect();
        format!("{{{}}}", parts.join(", "))
    }
}

impl Kv {
    /// Whether some append to key `k` not yet linearized is a prefix of `text`.
    fn an_append_starts(&self, k: u32, text: &str) -> bool {
        let remaining = &self.appends[k as usize];
        self.append_lens[k as usize].iter().any(|&len| {
            let len = len as usize;
            len <= text.len()
                && text.is_char_boundary(len)
                && self
                    .strings
                    .find(&text[..len])
                    .is_some_and(|id| remaining.get(&id).is_some_and(|&c| c > 0))
        })
    }
}

/// Builds kv ops; every op needs a key (the op's `key` field).
pub(crate) struct KvKind {
    /// Shared with every partition's model once compiled.
    strings: Arc<Strings>,
    keys: Interner,
}

impl Default for KvKind {
    fn default() -> Self {
        KvKind { strings: Arc::new(Strings::new()), keys: Interner::default() }
    }
}

impl KvKind {
    /// The values among `reads` (one key's distinct reads, sorted by text)
    /// that neither the initial empty string nor a put's value, followed by
    /// appended strings (each used any number of times), spells: a
    /// necessary condition only, cheap to decide by dynamic programming
    /// over the positions of each value. Whether a position can be reached
    /// depends only on the text before it, so each read reuses the
    /// positions it shares with the previous one in sorted order (reads of
    /// one key are mostly extensions of each other).
    fn unspelled(
        &self,
        reads: &[u32],
        puts: &FxHashMap<u32, u32>,
        appends: &FxHashMap<u32, u32>,
        lens: &[u32],
    ) -> Vec<u32> {
        let strs = &self.strings.strs;
        let mut out = Vec::new();
        let mut reach: Vec<bool> = vec![true];
        let mut prev: &[u8] = b"";
        for &r in reads {
            let text = &*strs[r as usize];
            let shared = prev.iter().zip(text.as_bytes()).take_while(|(a, b)| a == b).count();
            reach.truncate(shared + 1);
            let put_ends: SmallVec<[usize; 4]> = puts
                .keys()
                .map(|&p| &*strs[p as usize])
                .filter(|p| text.starts_with(p))
                .map(str::len)
                .collect();
            for end in reach.len()..=text.len() {
                let reached = put_ends.contains(&end)
                    || (text.is_char_boundary(end)
                        && lens.iter().any(|&len| {
                            let len = len as usize;
                            len > 0
                                && len <= end
                                && reach[end - len]
                                && text.is_char_boundary(end - len)
                                && self
                                    .strings
                                    .map
                                    .get(&text[end - len..end])
                                    .is_some_and(|id| appends.contains_key(id))
                        }));
                reach.push(reached);
            }
            if !reach[text.len()] {
                out.push(r);
            }
            prev = text.as_bytes();
        }
        out
    }
}

/// A value as the kv model's string: borrowed when it is one already, as
/// nearly every value is, so interning one that is known allocates nothing.
fn kv_text(v: &Value) -> Result<std::borrow::Cow<'_, str>, String> {
    match v {
        Value::Nil => Ok("".into()),
        Value::Str(s) | Value::Keyword(s) => Ok(s.as_str().into()),
        Value::Int(i) => Ok(i.to_string().into()),
        Value::BigInt(digits) => Ok(digits.to_string().into()),
        other => Err(format!("the kv model stores strings, found {other}")),
    }
}

impl ModelKind for KvKind {
    type M = Kv;
    fn observes(&self, f: &str, output: &Value) -> bool {
        matches!(f, "get" | "read") && !output.is_nil()
    }
    const OBSERVING: &str = "an ok get";
    // Every kv op names one key, and a get's result depends on that key
    // alone.
    const KEYS_ARE_OBJECTS: bool = true;
    fn compile(&mut self, call: &Call<'_>) -> Result<Option<KvOp>, String> {
        let Call { f, key, input, output } = *call;
        let key = key.ok_or("the kv model needs a key on every operation (the `key` field)")?;
        let k = self.keys.id(key) - 1;
        match f {
            "get" | "read" => match output {
                None => Ok(None),
                Some(v) => {
                    Ok(Some(KvOp::Get(k, Arc::make_mut(&mut self.strings).id(&kv_text(v)?))))
                }
            },
            "put" | "write" => {
                Ok(Some(KvOp::Put(k, Arc::make_mut(&mut self.strings).id(&kv_text(input)?))))
            }
            "append" => {
                Ok(Some(KvOp::Append(k, Arc::make_mut(&mut self.strings).id(&kv_text(input)?))))
            }
            _ => Err(unknown_function("kv", f, "get, put and append")),
        }
    }
    fn model_for(&mut self, ops: &mut [KvOp], _calls: &[u32], rets: &[u32]) -> Kv {
        // Renumber this partition's keys from 0 so states hold only them.
        let mut local: FxHashMap<u32, u32> = FxHashMap::default();
        let mut keys = Vec::new();
        for op in ops.iter_mut() {
            let slot = op.slot_mut();
            let next = local.len() as u32;
            let l = *local.entry(*slot).or_insert_with(|| {
                keys.push(self.keys.values[*slot as usize + 1].clone());
                next
            });
            *slot = l;
        }
        let mut gets = vec![std::collections::BTreeMap::new(); keys.len()];
        let mut puts = vec![FxHashMap::default(); keys.len()];
        let mut appends = vec![FxHashMap::default(); keys.len()];
        let mut append_lens = vec![SmallVec::<[u32; 4]>::new(); keys.len()];
        for (op, &ret) in ops.iter().zip(rets) {
            match *op {
                KvOp::Get(k, v) => {
                    gets[k as usize].insert(ret, v);
                }
                KvOp::Put(k, v) => *puts[k as usize].entry(v).or_insert(0u32) += 1,
                KvOp::Append(k, v) => {
                    *appends[k as usize].entry(v).or_insert(0u32) += 1;
                    let len = self.strings.strs[v as usize].len() as u32;
                    if !append_lens[k as usize].contains(&len) {
                        append_lens[k as usize].push(len);
                    }
                }
            }
        }
        let mut resets: FxHashMap<(u32, u32), SmallVec<[u32; 2]>> = FxHashMap::default();
        for (k, key_gets) in gets.iter().enumerate() {
            for &g in key_gets.values() {
                let want = &self.strings.strs[g as usize];
                let from: SmallVec<[u32; 2]> = puts[k]
                    .keys()
                    .copied()
                    .filter(|&p| want.starts_with(&*self.strings.strs[p as usize]))
                    .collect();
                if !from.is_empty() {
                    resets.insert((k as u32, g), from);
                }
            }
        }
        let mut fixed = vec![std::collections::BTreeMap::new(); keys.len()];
        for (k, key_gets) in gets.iter().enumerate() {
            for (&ret, &g) in key_gets {
                if !resets.contains_key(&(k as u32, g)) {
                    let len = self.strings.strs[g as usize].len() as u32;
                    fixed[k].insert((len, ret), g);
                }
            }
        }
        let strs = &self.strings.strs;
        let reads: Vec<Vec<u32>> = gets
            .iter()
            .map(|g| {
                let mut rs: Vec<u32> = g.values().copied().collect();
                rs.sort_unstable_by(|a, b| strs[*a as usize].cmp(&strs[*b as usize]));
                rs.dedup();
                rs
            })
            .collect();
        let hopeless = reads
            .iter()
            .enumerate()
            .flat_map(|(k, rs)| {
                let bad = self.unspelled(rs, &puts[k], &appends[k], &append_lens[k]);
                gets[k].iter().filter(move |(_, g)| bad.contains(g)).map(|(&ret, _)| ret)
            })
            .min();
        Kv {
            strings: PartStrings::new(Arc::clone(&self.strings), reads),
            keys: keys.into(),
            gets,
            fixed,
            puts,
            resets: Arc::new(resets),
            appends,
            append_lens: append_lens.into(),
            hopeless,
        }
    }
    /// A crashed append whose text no get of its key contains, or a crashed
    /// put whose value no get of its key starts with, was never followed by
    /// a get before the next put on that key (that get would show it), so
    /// leaving it out changes no result.
    fn useful(&self, ops: &[KvOp], rets: &[u32]) -> Vec<bool> {
        let mut seen: FxHashMap<u32, rustc_hash::FxHashSet<u32>> = FxHashMap::default();
        for (op, &ret) in ops.iter().zip(rets) {
            if let (KvOp::Get(k, v), true) = (*op, ret != u32::MAX) {
                seen.entry(k).or_default().insert(v);
            }
        }
        let text = |id: u32| &*self.strings.strs[id as usize];
        let shown = |k: u32, test: &dyn Fn(&str) -> bool| {
            seen.get(&k).is_some_and(|vs| vs.iter().any(|&v| test(text(v))))
        };
        ops.iter()
            .zip(rets)
            .map(|(op, &ret)| match *op {
                _ if ret != u32::MAX => true,
                KvOp::Append(k, a) => shown(k, &|v| v.contains(text(a))),
                KvOp::Put(k, p) => shown(k, &|v| v.starts_with(text(p))),
                KvOp::Get(..) => true,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linear::model::CompileArgs;
    #[test]
    fn kv_appends_concatenate_and_renumber_keys() {
        let mut k = KvKind::default();
        let key = Value::str("7");
        let mut ops = vec![
            k.compile_args("append", Some(&key), &Value::str("x 1 y"), None)
                .expect("a")
                .expect("op"),
            k.compile_args("append", Some(&key), &Value::str("x 2 y"), None)
                .expect("a")
                .expect("op"),
            k.compile_args("get", Some(&key), &Value::Nil, Some(&Value::str("x 1 yx 2 y")))
                .expect("g")
                .expect("op"),
        ];
        let mut m = k.model_for(&mut ops, &[0, 1, 2], &[1, 2, 3]);
        let s = m.step(&m.init(), &ops[0]).expect("a1");
        let s = m.step(&s, &ops[1]).expect("a2");
        assert!(m.step(&s, &ops[2]).is_some());
        assert_eq!(m.show_state(&s), "{\"7\" \"x 1 yx 2 y\"}");
    }

    #[test]
    fn kv_get_no_append_spells_is_hopeless_and_unseen_crashes_are_dropped() {
        let mut k = KvKind::default();
        let key = Value::str("k");
        let mut ops = vec![
            k.compile_args("put", Some(&key), &Value::str("p"), None).expect("p").expect("op"),
            k.compile_args("append", Some(&key), &Value::str("ab"), None).expect("a").expect("op"),
            k.compile_args("append", Some(&key), &Value::str("zz"), None).expect("a").expect("op"),
            k.compile_args("put", Some(&key), &Value::str("q"), None).expect("p").expect("op"),
            k.compile_args("get", Some(&key), &Value::Nil, Some(&Value::str("pabab")))
                .expect("g")
                .expect("op"),
            k.compile_args("get", Some(&key), &Value::Nil, Some(&Value::str("pabc")))
                .expect("g")
                .expect("op"),
        ];
        let crashed = u32::MAX;
        // Crashed: the put of "p" (a get starts with it), the append of "ab"
        // (gets contain it), the append of "zz" and the put of "q" (no get
        // shows them).
        let rets = [crashed, crashed, crashed, crashed, 8, 9];
        assert_eq!(k.useful(&ops, &rets), vec![true, true, false, false, true, true]);
        // "pabab" is "p" then "ab" twice: possible. "pabc": no append spells "c".
        let m = k.model_for(&mut ops, &[0, 1, 2, 3, 4, 5], &rets);
        assert_eq!(m.hopeless, Some(9));
        assert_eq!(m.doomed(&m.init(), &ops[0]), Some(9));
    }
}

#[cfg(test)]
mod value_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        /// Values appends make, never materialised, agree with the strings
        /// themselves: a value's text is the concatenation; a value that
        /// equals a read is that read's id; `DEAD` only for a text no read
        /// starts with; and `starts` answers as `str::starts_with` does.
        #[test]
        fn appended_values_agree_with_concatenated_strings(
            reads in proptest::collection::vec("[ab]{0,6}", 1..6),
            puts in proptest::collection::vec("[ab]{0,3}", 1..3),
            steps in proptest::collection::vec((any::<bool>(), 0usize..6, "[ab]{1,2}"), 1..12),
        ) {
            let mut table = Strings::new();
            let read_ids: Vec<u32> = reads.iter().map(|r| table.id(r)).collect();
            let put_ids: Vec<u32> = puts.iter().map(|p| table.id(p)).collect();
            let appended: Vec<u32> = steps.iter().map(|(_, _, a)| table.id(a)).collect();
            let mut sorted = read_ids.clone();
            sorted.sort_unstable_by(|a, b| table.strs[*a as usize].cmp(&table.strs[*b as usize]));
            sorted.dedup();
            let mut strings = PartStrings::new(Arc::new(table), vec![sorted]);
            // The same values as the evidence replays them: every text kept.
            let mut shown = strings.clone();
            shown.shown = Some(Vec::new());
            let mut full = 0u32;
            let (mut value, mut text) = (0u32, String::new());
            for ((is_put, pick, tail), &a) in steps.iter().zip(&appended) {
                if *is_put {
                    value = put_ids[pick % put_ids.len()];
                    text = puts[pick % puts.len()].clone();
                    full = value;
                } else {
                    value = strings.append(0, value, a);
                    full = shown.append(0, full, a);
                    text.push_str(tail);
                }
                prop_assert_eq!(shown.text(full), Some(text.as_str()));
                let read_by_some = reads.iter().any(|r| r.starts_with(&text));
                if value == DEAD {
                    prop_assert!(!read_by_some, "{text:?} is read, yet dead");
                } else {
                    prop_assert_eq!(strings.text(value), Some(text.as_str()));
                }
                if let Some(i) = reads.iter().position(|r| *r == text) {
                    prop_assert_eq!(value, read_ids[i], "{:?} is a read's value", text);
                }
                for (r, &id) in reads.iter().zip(&read_ids) {
                    prop_assert_eq!(strings.starts(0, id, value), r.starts_with(&text));
                }
            }
        }
    }
}
