//! The version order a list-append history shows (each key's longest list
//! read), and per-session tracks of the elements a later read must hold.

use rustc_hash::FxHashMap;

use super::sessions::Parsed;
use crate::value::Value;

/// Positions in each key's version order, from the longest list read.
pub(super) struct VersionOrder<'a> {
    /// Per key: the longest list read and the unit that read it.
    pub(super) longest: FxHashMap<u32, (&'a [Value], u32)>,
    /// Per (key, element): its position in that longest list.
    pub(super) pos: FxHashMap<(u32, &'a Value), usize>,
}

impl<'a> VersionOrder<'a> {
    /// The version order of every key some unit read as a list.
    pub(super) fn new(p: &'a Parsed) -> VersionOrder<'a> {
        let mut longest: FxHashMap<u32, (&[Value], u32)> = FxHashMap::default();
        for (u, unit) in p.units.iter().enumerate() {
            for (k, v) in &unit.reads {
                if let Some(list) = v.as_list() {
                    let e = longest.entry(*k).or_insert((list, u as u32));
                    if list.len() > e.0.len() {
                        *e = (list, u as u32);
                    }
                }
            }
        }
        let mut pos = FxHashMap::default();
        for (k, (list, _)) in &longest {
            for (i, e) in list.iter().enumerate() {
                pos.entry((*k, e)).or_insert(i);
            }
        }
        VersionOrder { longest, pos }
    }

    /// How many leading elements `list` shares with the version order of `k`.
    pub(super) fn prefix_len(&self, k: u32, list: &[Value]) -> usize {
        let Some((order, _)) = self.longest.get(&k) else { return 0 };
        list.iter().zip(order.iter()).take_while(|(a, b)| a == b).count()
    }

    /// The last element of `list` that has a place in the version order of
    /// `k`, with that place: what a read of `list` has certainly seen.
    pub(super) fn last_known<'l>(&self, k: u32, list: &'l [Value]) -> Option<(usize, &'l Value)> {
        list.iter().rev().find_map(|e| self.pos.get(&(k, e)).map(|&p| (p, e)))
    }
}

/// The best (latest in version order) requirement among entries before a bound.
#[derive(Clone, Copy)]
pub(super) struct Req<'a> {
    /// The element's place in the version order, if it has one.
    pub(super) pos: Option<usize>,
    pub(super) elem: &'a Value,
    /// The unit that appended or read it.
    pub(super) unit: u32,
}

/// Per (session, key): entries in session order with a running best.
#[derive(Default)]
pub(super) struct Track<'a> {
    seqs: Vec<u32>,
    best: Vec<Req<'a>>,
    unpositioned: Vec<(u32, Req<'a>)>,
}

impl<'a> Track<'a> {
    /// Adds the entry of the unit with `seq` (entries come in session order).
    pub(super) fn push(&mut self, seq: u32, r: Req<'a>) {
        if r.pos.is_none() {
            self.unpositioned.push((seq, r));
            return;
        }
        let best = match self.best.last() {
            Some(b) if b.pos >= r.pos => *b,
            _ => r,
        };
        self.seqs.push(seq);
        self.best.push(best);
    }

    /// The best entry with seq < bound, and the unpositioned ones.
    pub(super) fn before(
        &self,
        bound: u32,
    ) -> (Option<Req<'a>>, impl Iterator<Item = Req<'a>> + '_) {
        let i = self.seqs.partition_point(|&s| s < bound);
        let best = (i > 0).then(|| self.best[i - 1]);
        (best, self.unpositioned.iter().filter(move |(s, _)| *s < bound).map(|(_, r)| *r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats;
    use crate::session::sessions::parse;

    #[test]
    fn the_longest_read_gives_each_element_its_place() {
        let h = formats::parse(
            "{:index 0, :process 0, :type :invoke, :f :read, :key :x, :value nil}\n\
             {:index 1, :process 0, :type :ok, :f :read, :key :x, :value [1 2]}\n\
             {:index 2, :process 1, :type :invoke, :f :read, :key :x, :value nil}\n\
             {:index 3, :process 1, :type :ok, :f :read, :key :x, :value [1 2 3]}\n\
             {:index 4, :process 1, :type :invoke, :f :append, :key :x, :value 9}\n\
             {:index 5, :process 1, :type :ok, :f :append, :key :x, :value 9}\n",
            "test",
            None,
        )
        .expect("a readable history");
        let p = parse(&h, None).expect("parse");
        let order = VersionOrder::new(&p);
        assert_eq!(order.longest[&0].1, 1, "unit 1 read the longest list");
        assert_eq!(order.pos.get(&(0, &Value::Int(3))), Some(&2));
        assert_eq!(order.pos.get(&(0, &Value::Int(9))), None, "never read");
        let (one, two, nine) = (Value::Int(1), Value::Int(2), Value::Int(9));
        assert_eq!(order.prefix_len(0, &[one.clone(), two.clone()]), 2);
        assert_eq!(order.prefix_len(0, &[two.clone(), one.clone()]), 0);
        assert_eq!(order.prefix_len(5, std::slice::from_ref(&one)), 0, "a key nobody read");
        assert_eq!(order.last_known(0, &[one, two.clone(), nine]), Some((1, &two)));
    }

    #[test]
    fn a_track_answers_the_latest_entry_before_a_bound() {
        let (a, b, c) = (Value::Int(1), Value::Int(2), Value::Int(3));
        let mut t = Track::default();
        t.push(0, Req { pos: Some(5), elem: &a, unit: 10 });
        t.push(2, Req { pos: Some(3), elem: &b, unit: 11 });
        t.push(3, Req { pos: None, elem: &c, unit: 12 });
        t.push(4, Req { pos: Some(7), elem: &c, unit: 13 });
        let units = |bound| {
            let (best, extra) = t.before(bound);
            (best.map(|r| r.unit), extra.map(|r| r.unit).collect::<Vec<_>>())
        };
        assert_eq!(units(0), (None, vec![]));
        assert_eq!(units(3), (Some(10), vec![]), "an older position does not replace the best");
        assert_eq!(units(4), (Some(10), vec![12]), "the unpositioned entry comes apart");
        assert_eq!(units(5), (Some(13), vec![12]));
    }
}
