//! The classic Wing–Gong–Lowe search as Porcupine implements it, kept as a
//! reference: benchmarks measure the real checker against it in the same
//! run, and tests check that both always agree.
//!
//! Differences from `search.rs`, all deliberate: a crashed op gets a return
//! event at the end of the history and must be linearized somewhere, with
//! an unknown result (if its effect is impossible where it is placed, it is
//! taken not to have happened); candidates are tried in call order; the
//! cache holds full bitsets of linearized ops; no dominance, no bursts, no
//! model oracles, no dropping of unobservable ops. It is exact, and slow on
//! exactly the histories the real search was built for.

use std::hash::BuildHasher;
use std::time::Instant;

use rustc_hash::{FxBuildHasher, FxHashMap};

use super::model::Model;
use super::search::Entry;

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Node {
    prev: u32,
    next: u32,
    /// Index into the partition's entries.
    op: u32,
    /// For a call node, its return node; NIL on return nodes.
    matching: u32,
}

/// States already reached, by a hash of the linearized set: each set in
/// full (to tell collisions apart) with the model state it led to.
type Cache<S> = FxHashMap<u64, Vec<(Vec<u64>, S)>>;

/// `Some(true)` when linearizable, `Some(false)` when not, `None` when
/// `deadline` passed first.
pub(crate) fn check<M: Model>(
    mut model: M,
    entries: &[Entry<M::Op>],
    deadline: Option<Instant>,
) -> Option<bool> {
    let n = entries.len();
    // Events: calls at their position, returns at theirs; crashed ops return
    // after everything else, in call order.
    let mut events: Vec<(u64, u32, bool)> = Vec::with_capacity(2 * n);
    for (i, e) in entries.iter().enumerate() {
        events.push((u64::from(e.call), i as u32, true));
        let ret = e.ret.map_or(u64::from(u32::MAX) + u64::from(e.call), u64::from);
        events.push((ret, i as u32, false));
    }
    events.sort_unstable_by_key(|&(pos, _, _)| pos);
    let mut nodes = vec![Node { prev: NIL, next: NIL, op: NIL, matching: NIL }];
    let mut ret_node = vec![NIL; n];
    for &(_, op, is_call) in events.iter().rev() {
        // Built back to front so each call can point at its return.
        let idx = nodes.len() as u32;
        nodes.push(Node {
            prev: NIL,
            next: NIL,
            op,
            matching: if is_call { ret_node[op as usize] } else { NIL },
        });
        if !is_call {
            ret_node[op as usize] = idx;
        }
    }
    // Link in history order: nodes[len-1] is the first event.
    let order: Vec<u32> = (1..nodes.len() as u32).rev().collect();
    let mut prev = 0u32;
    for &i in &order {
        nodes[prev as usize].next = i;
        nodes[i as usize].prev = prev;
        prev = i;
    }

    let words = n.div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: Cache<M::State> = FxHashMap::default();
    let mut calls: Vec<(u32, M::State)> = Vec::new();
    let mut state = model.init();
    let mut entry = nodes[0].next;
    let mut steps: u64 = 0;
    while nodes[0].next != NIL {
        steps += 1;
        if steps.is_multiple_of(4096) && deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        let node = nodes[entry as usize];
        if node.matching != NIL {
            let e = &entries[node.op as usize];
            let next = match model.step(&state, &e.op) {
                Some(s) => Some(s),
                // Unknown result: it may not have taken effect.
                None if e.ret.is_none() => Some(state.clone()),
                None => None,
            };
            if let Some(next) = next {
                let bit = (node.op as usize / 64, 1u64 << (node.op % 64));
                linearized[bit.0] |= bit.1;
                let h = FxBuildHasher.hash_one(&linearized) ^ FxBuildHasher.hash_one(&next);
                let bucket = cache.entry(h).or_default();
                if bucket.iter().any(|(l, s)| *l == linearized && *s == next) {
                    linearized[bit.0] &= !bit.1;
                    entry = node.next;
                } else {
                    bucket.push((linearized.clone(), next.clone()));
                    calls.push((entry, std::mem::replace(&mut state, next)));
                    lift(&mut nodes, entry);
                    entry = nodes[0].next;
                }
            } else {
                entry = node.next;
            }
        } else {
            let Some((call, previous)) = calls.pop() else { return Some(false) };
            state = previous;
            let op = nodes[call as usize].op;
            linearized[op as usize / 64] &= !(1u64 << (op % 64));
            unlift(&mut nodes, call);
            entry = nodes[call as usize].next;
        }
    }
    Some(true)
}

fn lift(nodes: &mut [Node], call: u32) {
    let Node { prev, next, matching, .. } = nodes[call as usize];
    nodes[prev as usize].next = next;
    if next != NIL {
        nodes[next as usize].prev = prev;
    }
    let Node { prev, next, .. } = nodes[matching as usize];
    nodes[prev as usize].next = next;
    if next != NIL {
        nodes[next as usize].prev = prev;
    }
}

fn unlift(nodes: &mut [Node], call: u32) {
    let matching = nodes[call as usize].matching;
    let Node { prev, next, .. } = nodes[matching as usize];
    nodes[prev as usize].next = matching;
    if next != NIL {
        nodes[next as usize].prev = matching;
    }
    let Node { prev, next, .. } = nodes[call as usize];
    nodes[prev as usize].next = call;
    if next != NIL {
        nodes[next as usize].prev = call;
    }
}
