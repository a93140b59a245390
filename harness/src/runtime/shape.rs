//! The decisions of a user-space link shaper, without I/O: for each packet
//! (or chunk of a proxied stream) that enters a shaped link, when it leaves,
//! how many copies leave, or whether it is lost. The NFQUEUE shaper of the
//! `netns` runtime and the TCP proxies of the `local` runtime both ask this,
//! so the same shape means the same thing in both, and tests step it by
//! hand with a fake clock.
//!
//! Packets follow `tc netem`: jitter may reorder them, `reorder` lets a
//! packet skip the delay, `duplicate` sends a second copy, `rate` spaces
//! packets by their size. A byte stream cannot be reordered, duplicated or
//! holed without breaking TCP's contract, so in stream mode chunks leave in
//! order, and a loss is what TCP would turn it into: the chunk (and, head of
//! line, everything behind it) waits one retransmission timeout.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::{Rng as _, SeedableRng};

use crate::error::{HarnessError, Result};
use crate::generator::Rng;
use crate::node::{LinkShape, NodeId};

/// The shapes of a cluster's directed links, as a runtime that applies them
/// per sending node (netem, NFQUEUE) keeps them.
#[derive(Debug, Default)]
pub struct ShapeTable(Mutex<BTreeMap<(NodeId, NodeId), LinkShape>>);

impl ShapeTable {
    /// Checks `shape` and records it for `from → to`, where both are among
    /// `nodes` (`None`, or a shape that changes nothing, removes it).
    pub fn set(
        &self,
        nodes: &[NodeId],
        from: &str,
        to: &str,
        shape: Option<&LinkShape>,
    ) -> Result<()> {
        if from == to || !nodes.iter().any(|n| n == from) || !nodes.iter().any(|n| n == to) {
            return Err(HarnessError::Net(format!("no link {from} -> {to} in this cluster")));
        }
        if let Some(s) = shape {
            s.validate().map_err(|e| HarnessError::Net(format!("link {from} -> {to}: {e}")))?;
        }
        let mut shapes =
            self.0.lock().map_err(|_| HarnessError::Internal("shape table lock".into()))?;
        let key = (from.to_owned(), to.to_owned());
        match shape.filter(|s| !s.is_identity()) {
            Some(s) => shapes.insert(key, s.clone()),
            None => shapes.remove(&key),
        };
        Ok(())
    }

    /// The shaped links out of `from`: destination and shape.
    pub fn outgoing(&self, from: &str) -> Vec<(NodeId, LinkShape)> {
        self.0
            .lock()
            .map(|s| {
                s.iter()
                    .filter(|((f, _), _)| f == from)
                    .map(|((_, to), shape)| (to.clone(), shape.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The retransmission timeout a lost segment costs a TCP stream (Linux's
/// minimum RTO).
pub const STREAM_LOSS_PENALTY: Duration = Duration::from_millis(200);

/// What happens to one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Dropped.
    Lost,
    /// Released at `at` (time since the shaper's epoch), in `copies` copies.
    Send {
        /// When it leaves.
        at: Duration,
        /// 1, or 2 when duplicated.
        copies: u8,
    },
}

/// Packets (may reorder, duplicate, drop) or a byte stream (in order, whole).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// IP packets.
    Packets,
    /// Chunks of a TCP stream.
    Stream,
}

/// The shaper state of one directed link.
#[derive(Debug)]
pub struct Shaper {
    shape: LinkShape,
    mode: Mode,
    rng: Rng,
    /// When the rate limiter is next free.
    link_free: Duration,
    /// When the previous chunk left (stream mode keeps order).
    last_release: Duration,
}

impl Shaper {
    /// A shaper for `shape`, its randomness seeded by `shape.seed`.
    pub fn new(shape: LinkShape, mode: Mode) -> Shaper {
        let rng = Rng::seed_from_u64(shape.seed);
        Shaper { shape, mode, rng, link_free: Duration::ZERO, last_release: Duration::ZERO }
    }

    /// The shape it applies.
    pub fn shape(&self) -> &LinkShape {
        &self.shape
    }

    /// The fate of a packet of `len` bytes that arrives at `now`.
    pub fn admit(&mut self, now: Duration, len: usize) -> Fate {
        let s = &self.shape;
        let lost = s.loss > 0.0 && self.rng.random_bool(s.loss.min(1.0));
        if lost && self.mode == Mode::Packets {
            return Fate::Lost;
        }
        let skip_delay = self.mode == Mode::Packets
            && s.reorder > 0.0
            && self.rng.random_bool(s.reorder.min(1.0));
        let mut at = now;
        if !skip_delay {
            at += s.delay;
            if !s.jitter.is_zero() {
                let j = self.rng.random_range(0..=s.jitter.as_nanos() as u64);
                at += Duration::from_nanos(j);
            }
        }
        if lost {
            at += STREAM_LOSS_PENALTY;
        }
        if s.rate > 0 {
            // Serialisation: the packet occupies the link for len/rate.
            let busy = Duration::from_secs_f64(len as f64 / s.rate as f64);
            let start = self.link_free.max(now);
            self.link_free = start + busy;
            at = at.max(self.link_free);
        }
        let copies = if self.mode == Mode::Packets
            && s.duplicate > 0.0
            && self.rng.random_bool(s.duplicate.min(1.0))
        {
            2
        } else {
            1
        };
        if self.mode == Mode::Stream {
            at = at.max(self.last_release);
        }
        self.last_release = self.last_release.max(at);
        Fate::Send { at, copies }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn delay_and_jitter_stay_in_bounds() {
        let shape = LinkShape { delay: ms(50), jitter: ms(10), seed: 7, ..LinkShape::default() };
        let mut s = Shaper::new(shape, Mode::Packets);
        for i in 0..1000 {
            let now = ms(i);
            match s.admit(now, 100) {
                Fate::Send { at, copies: 1 } => {
                    assert!(at >= now + ms(50) && at <= now + ms(60), "{at:?} at {now:?}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn loss_drops_about_the_given_share_of_packets() {
        let shape = LinkShape { loss: 0.3, seed: 1, ..LinkShape::default() };
        let mut s = Shaper::new(shape, Mode::Packets);
        let lost = (0..10_000).filter(|_| s.admit(ms(0), 1) == Fate::Lost).count();
        assert!((2700..3300).contains(&lost), "{lost} of 10000 lost");
    }

    #[test]
    fn duplicate_and_reorder_happen_in_packet_mode_only() {
        let shape = LinkShape {
            delay: ms(100),
            duplicate: 0.5,
            reorder: 0.5,
            seed: 3,
            ..LinkShape::default()
        };
        let mut p = Shaper::new(shape.clone(), Mode::Packets);
        let fates: Vec<Fate> = (0..1000).map(|i| p.admit(ms(i), 1)).collect();
        let dup = fates.iter().filter(|f| matches!(f, Fate::Send { copies: 2, .. })).count();
        let early = fates
            .iter()
            .enumerate()
            .filter(|(i, f)| matches!(f, Fate::Send { at, .. } if *at == ms(*i as u64)))
            .count();
        assert!((400..600).contains(&dup), "{dup} duplicated");
        assert!((400..600).contains(&early), "{early} skipped the delay");

        let mut st = Shaper::new(shape, Mode::Stream);
        let mut last = Duration::ZERO;
        for i in 0..1000 {
            match st.admit(ms(i), 1) {
                Fate::Send { at, copies: 1 } => {
                    assert!(at >= last, "a stream chunk overtook another");
                    assert_eq!(at, ms(i) + ms(100));
                    last = at;
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn stream_loss_costs_a_retransmission_and_blocks_the_line() {
        let shape = LinkShape { loss: 1.0, seed: 0, ..LinkShape::default() };
        let mut st = Shaper::new(shape, Mode::Stream);
        assert_eq!(st.admit(ms(0), 1), Fate::Send { at: STREAM_LOSS_PENALTY, copies: 1 });
        let shape = LinkShape { loss: 0.5, seed: 5, ..LinkShape::default() };
        let mut st = Shaper::new(shape, Mode::Stream);
        let mut last = Duration::ZERO;
        for i in 0..100 {
            let Fate::Send { at, .. } = st.admit(ms(i), 1) else { panic!("streams lose nothing") };
            assert!(at >= last);
            last = at;
        }
    }

    #[test]
    fn rate_spaces_packets_by_their_size() {
        // 1000 bytes/s: a 100-byte packet occupies the link for 100 ms.
        let shape = LinkShape { rate: 1000, ..LinkShape::default() };
        let mut s = Shaper::new(shape, Mode::Packets);
        let at: Vec<Duration> = (0..5)
            .map(|_| match s.admit(ms(0), 100) {
                Fate::Send { at, .. } => at,
                Fate::Lost => panic!("lost"),
            })
            .collect();
        assert_eq!(at, vec![ms(100), ms(200), ms(300), ms(400), ms(500)]);
        // After an idle period the link is free again.
        assert_eq!(s.admit(ms(10_000), 100), Fate::Send { at: ms(10_100), copies: 1 });
    }
}
