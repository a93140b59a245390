//! Leader-based log replication: the core behind `raft`, `sync` and `async`.
//!
//! All three share Raft's machinery (terms, randomized elections preceded by a pre-vote,
//! votes that require an up-to-date log, log matching and repair) and differ in exactly the places that give them
//! different promises:
//!
//! | policy | a write is acknowledged when                  | reads are served                          |
//! |--------|-----------------------------------------------|-------------------------------------------|
//! | Raft   | a majority stored it (fsynced)                | read-index: a heartbeat round confirmed by a majority after the read arrived |
//! | Sync   | every in-sync replica stored it, and at least a majority | under a lease granted by a majority (monotonic clocks), else read-index |
//! | Async  | the primary appended it locally               | by the primary from local state, unfenced |
//!
//! In `sync` the in-sync set shrinks when a backup stops answering for an election timeout
//! and grows back once it has caught up, so one dead backup stalls writes only briefly; a
//! write never counts as committed on fewer than a majority, which is what lets any elected
//! primary (voters require an up-to-date log) hold every acknowledged write.
//!
//! Fencing: a follower that heard from the leader less than `election_min_ms` ago neither
//! votes nor campaigns (it ignores the request), and a leader ignores vote requests. A
//! sync leader's lease lasts `election_min_ms / 2` from the *send* time of the newest
//! heartbeat a majority acknowledged, so it ends before any voter of that majority can help
//! elect a successor, as long as clock *rates* agree within a factor of two. Only monotonic
//! clocks are used, so the wall-clock offsets the nemesis injects cannot stretch a lease.

use crate::core::{Core, Ready, Timing, majority, other_nodes};
use crate::kv::{Kv, execute};
use crate::modes::bug::Bug;
use crate::types::{ClientOp, CoreStatus, NodeId, Now, OpError, Reply, RequestId};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Which promises the replicated log keeps; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Majority commit, read-index reads, fsync before acknowledgement.
    Raft,
    /// Primary-backup, acknowledged after every in-sync replica has the write.
    Sync,
    /// Primary-backup, acknowledged at once, shipped in the background.
    Async,
}

/// Most entries sent in one append message.
const MAX_BATCH: usize = 512;

/// One log entry. `op` is `None` for the no-op a new leader appends to commit its term.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The term of the leader that created the entry.
    pub term: u64,
    /// The client operation, applied to the state machine once committed.
    pub op: Option<ClientOp>,
}

/// Messages between nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Msg {
    /// Leader to follower: entries after `prev_index` (empty for a heartbeat).
    Append(Append),
    /// Follower to leader.
    AppendResp(AppendResp),
    /// Would-be candidate to everyone: "would you vote for me in `term`?" Nobody changes
    /// state on a pre-vote, so a node cut off from the cluster cannot inflate terms and
    /// depose a healthy leader when it returns (Raft thesis, section 9.6).
    PreVote {
        /// The term the sender would campaign in.
        term: u64,
        /// Index of the sender's last entry.
        last_index: u64,
        /// Term of the sender's last entry.
        last_term: u64,
    },
    /// Answer to a pre-vote.
    PreVoteResp {
        /// The term asked about.
        term: u64,
        /// Whether a vote would be granted.
        granted: bool,
    },
    /// Candidate to everyone.
    Vote {
        /// The candidate's term.
        term: u64,
        /// Index of the candidate's last entry.
        last_index: u64,
        /// Term of the candidate's last entry.
        last_term: u64,
    },
    /// Voter to candidate.
    VoteResp {
        /// The voter's term.
        term: u64,
        /// Whether the vote was granted.
        granted: bool,
    },
}

/// Leader to follower: entries after `prev_index` (empty for a heartbeat).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Append {
    /// The leader's term.
    pub term: u64,
    /// The index before the first entry.
    pub prev_index: u64,
    /// The term of the entry at `prev_index` (0 for index 0).
    pub prev_term: u64,
    /// The entries, starting at `prev_index + 1`.
    pub entries: Vec<Entry>,
    /// The leader's commit index.
    pub commit: u64,
    /// The leader's heartbeat round, echoed back for read-index and leases.
    pub seq: u64,
}

/// Follower to leader: the answer to an [`Append`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppendResp {
    /// The follower's term.
    pub term: u64,
    /// Whether the follower's log matched at `prev_index`.
    pub success: bool,
    /// On success, the index up to which the follower's log matches the leader's.
    pub match_index: u64,
    /// On failure, the index the leader should retry from.
    pub hint: u64,
    /// The heartbeat round being answered.
    pub seq: u64,
}

/// Write-ahead log records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Record {
    /// The current term and the vote cast in it.
    HardState {
        /// Current term.
        term: u64,
        /// The candidate voted for in `term`.
        vote: Option<NodeId>,
    },
    /// The log from `index` on is replaced by `entries` (entries after them are dropped).
    Entries {
        /// Index of the first entry.
        index: u64,
        /// The entries.
        entries: Vec<Entry>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// What the leader knows of one follower.
#[derive(Clone, Debug)]
struct Progress {
    /// Next index to send.
    next: u64,
    /// Highest index known to match.
    matched: u64,
    /// Monotonic time of the last response in this term.
    acked_at: u64,
    /// Highest heartbeat round acknowledged.
    acked_seq: u64,
    /// Send time of the highest acknowledged heartbeat round.
    lease_base: u64,
}

#[derive(Clone, Debug)]
struct PendingRead {
    req: RequestId,
    op: ClientOp,
    /// The heartbeat round that must be confirmed (0 = not yet sent).
    seq: u64,
    /// The commit index to wait for (None until this term has committed an entry).
    read_index: Option<u64>,
    deadline: u64,
}

/// The replicated-log core.
#[derive(Debug)]
pub struct ReplogCore {
    id: NodeId,
    peers: Vec<NodeId>,
    policy: Policy,
    timing: Timing,
    rng: SmallRng,
    // Persistent state.
    term: u64,
    vote: Option<NodeId>,
    log: Vec<Entry>,
    // Volatile state.
    commit: u64,
    applied: u64,
    kv: Kv,
    role: Role,
    leader: Option<NodeId>,
    election_deadline: u64,
    /// Until this monotonic time the node neither votes for others nor campaigns.
    no_vote_until: u64,
    votes: BTreeSet<NodeId>,
    // Leader state.
    progress: BTreeMap<NodeId, Progress>,
    in_sync: BTreeSet<NodeId>,
    seq: u64,
    seq_sent_at: BTreeMap<u64, u64>,
    next_heartbeat: u64,
    /// When an async primary next ships new entries (see [`Timing::ship_ms`]).
    next_ship: u64,
    pending_writes: BTreeMap<u64, (RequestId, u64, u64)>,
    pending_reads: Vec<PendingRead>,
    ready: Ready<Msg, Record>,
    /// A protocol bug injected on purpose (`None`: the correct protocol).
    bug: Option<Bug>,
}

impl ReplogCore {
    /// Builds a node from the records it persisted earlier (empty on first start).
    /// `peers` are the other nodes' ids; `seed` drives the election timeouts.
    pub fn new(
        id: NodeId,
        peers: Vec<NodeId>,
        policy: Policy,
        timing: Timing,
        seed: u64,
        records: Vec<Record>,
        now: Now,
    ) -> Self {
        let mut core = ReplogCore {
            id,
            peers: other_nodes(id, peers),
            policy,
            timing,
            rng: SmallRng::seed_from_u64(seed),
            term: 0,
            vote: None,
            log: Vec::new(),
            commit: 0,
            applied: 0,
            kv: Kv::default(),
            role: Role::Follower,
            leader: None,
            election_deadline: 0,
            // A restarted node may have promised a leader not to vote before it crashed.
            no_vote_until: now.mono_ms + timing.election_min_ms,
            votes: BTreeSet::new(),
            progress: BTreeMap::new(),
            in_sync: BTreeSet::new(),
            seq: 0,
            seq_sent_at: BTreeMap::new(),
            next_heartbeat: 0,
            next_ship: 0,
            pending_writes: BTreeMap::new(),
            pending_reads: Vec::new(),
            ready: Ready::new(policy != Policy::Async),
            bug: None,
        };
        for rec in records {
            match rec {
                Record::HardState { term, vote } => {
                    core.term = term;
                    core.vote = vote;
                }
                Record::Entries { index, entries } => {
                    core.log.truncate(index.saturating_sub(1) as usize);
                    core.log.extend(entries);
                }
            }
        }
        core.reset_election_timer(now);
        core
    }

    /// The same core with `bug` injected (see [`Bug`]; `None` keeps it correct). Which
    /// mode a bug may be injected in is checked by `Mode::with_core`.
    pub fn with_bug(mut self, bug: Option<Bug>) -> Self {
        self.bug = bug;
        self
    }

    /// Whether the leader counts an entry committed once it is in its own log: async's
    /// documented policy, and the injected bugs that acknowledge before replication.
    fn commits_alone(&self) -> bool {
        match self.policy {
            Policy::Async => true,
            Policy::Raft => self.bug == Some(Bug::AckBeforeCommit),
            Policy::Sync => self.bug == Some(Bug::AckBeforeBackup),
        }
    }

    /// Whether a voter's log must not be ahead of the candidate's for it to grant a vote
    /// (false only with the injected `vote-ignores-log` bug).
    fn checks_candidate_log(&self) -> bool {
        self.bug != Some(Bug::VoteIgnoresLog)
    }

    fn last_index(&self) -> u64 {
        self.log.len() as u64
    }

    fn term_at(&self, index: u64) -> u64 {
        if index == 0 { 0 } else { self.log.get(index as usize - 1).map_or(0, |e| e.term) }
    }

    fn cluster_size(&self) -> usize {
        self.peers.len() + 1
    }

    fn reset_election_timer(&mut self, now: Now) {
        let t = self.rng.random_range(self.timing.election_min_ms..self.timing.election_max_ms);
        self.election_deadline = now.mono_ms + t;
    }

    fn persist_hard_state(&mut self) {
        self.ready.persist.push(Record::HardState { term: self.term, vote: self.vote });
    }

    fn send(&mut self, to: NodeId, msg: Msg) {
        self.ready.messages.push((to, msg));
    }

    /// Adopts a newer term as a follower.
    fn become_follower(&mut self, now: Now, term: u64, leader: Option<NodeId>) {
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.persist_hard_state();
        }
        if self.role == Role::Leader {
            self.abandon_requests();
            self.reset_election_timer(now);
        }
        // Otherwise the election timer keeps running: merely learning of a higher term must
        // not postpone this node's own candidacy forever.
        self.role = Role::Follower;
        self.leader = leader;
    }

    fn pre_campaign(&mut self, now: Now) {
        self.role = Role::PreCandidate;
        self.leader = None;
        self.votes = BTreeSet::from([self.id]);
        self.reset_election_timer(now);
        let (last_index, last_term) = (self.last_index(), self.term_at(self.last_index()));
        for p in self.peers.clone() {
            self.send(p, Msg::PreVote { term: self.term + 1, last_index, last_term });
        }
        if self.votes.len() >= majority(self.cluster_size()) {
            self.campaign(now);
        }
    }

    /// A leader that loses its role answers every request it was working on.
    fn abandon_requests(&mut self) {
        for (_, (req, _, _)) in std::mem::take(&mut self.pending_writes) {
            self.ready.replies.push((
                req,
                Err(OpError::Timeout(
                    "leadership was lost before the write committed; it may still commit".into(),
                )),
            ));
        }
        for read in std::mem::take(&mut self.pending_reads) {
            self.ready.replies.push((read.req, Err(OpError::NotLeader { leader: None })));
        }
        self.progress.clear();
        self.in_sync.clear();
        self.seq_sent_at.clear();
    }

    fn campaign(&mut self, now: Now) {
        self.term += 1;
        self.role = Role::Candidate;
        self.leader = None;
        self.vote = Some(self.id);
        self.votes = BTreeSet::from([self.id]);
        self.persist_hard_state();
        self.reset_election_timer(now);
        let (last_index, last_term) = (self.last_index(), self.term_at(self.last_index()));
        for p in self.peers.clone() {
            self.send(p, Msg::Vote { term: self.term, last_index, last_term });
        }
        if self.votes.len() >= majority(self.cluster_size()) {
            self.become_leader(now);
        }
    }

    fn become_leader(&mut self, now: Now) {
        self.role = Role::Leader;
        self.leader = Some(self.id);
        let next = self.last_index() + 1;
        self.progress = self
            .peers
            .iter()
            .map(|&p| {
                (
                    p,
                    Progress {
                        next,
                        matched: 0,
                        acked_at: now.mono_ms,
                        acked_seq: 0,
                        lease_base: 0,
                    },
                )
            })
            .collect();
        self.in_sync = self.peers.iter().copied().collect();
        // A no-op commits the new term, after which read-index reads are safe.
        self.append_local(Entry { term: self.term, op: None });
        self.broadcast(now);
        self.advance_commit(now);
    }

    fn append_local(&mut self, entry: Entry) -> u64 {
        self.log.push(entry.clone());
        let index = self.last_index();
        self.ready.persist.push(Record::Entries { index, entries: vec![entry] });
        index
    }

    /// Sends every follower what it lacks (an empty append is a heartbeat). An async
    /// primary sends entries only when a shipment is due; otherwise its heartbeat is empty.
    fn broadcast(&mut self, now: Now) {
        self.seq += 1;
        self.seq_sent_at.insert(self.seq, now.mono_ms);
        // Old rounds that no follower can still acknowledge usefully are forgotten.
        while self.seq_sent_at.len() > 1024 {
            self.seq_sent_at.pop_first();
        }
        let ship = self.policy != Policy::Async || now.mono_ms >= self.next_ship;
        if ship {
            self.next_ship = now.mono_ms + self.timing.ship_ms;
        }
        for p in self.peers.clone() {
            self.send_append_with(p, ship);
        }
        self.next_heartbeat = now.mono_ms + self.timing.heartbeat_ms;
    }

    fn send_append(&mut self, to: NodeId) {
        self.send_append_with(to, true)
    }

    /// Sends `to` an append: what it lacks when `entries`, else an empty heartbeat that
    /// still lets it detect a gap (it answers with a hint) and confirms the leader.
    fn send_append_with(&mut self, to: NodeId, entries: bool) {
        let Some(pr) = self.progress.get_mut(&to) else { return };
        let prev_index = pr.next.saturating_sub(1).min(self.log.len() as u64);
        let end = if entries {
            self.log.len().min(prev_index as usize + MAX_BATCH)
        } else {
            prev_index as usize
        };
        let entries = self.log[prev_index as usize..end].to_vec();
        // Pipelining: assume delivery; a failure response moves `next` back.
        pr.next = end as u64 + 1;
        let msg = Msg::Append(Append {
            term: self.term,
            prev_index,
            prev_term: self.term_at(prev_index),
            entries,
            commit: self.commit,
            seq: self.seq,
        });
        self.send(to, msg);
    }

    fn advance_commit(&mut self, now: Now) {
        if self.role != Role::Leader {
            return;
        }
        let last = self.last_index();
        let new_commit = match self.policy {
            _ if self.commits_alone() => last,
            Policy::Async | Policy::Raft | Policy::Sync => {
                let mut matched: Vec<u64> = self.progress.values().map(|p| p.matched).collect();
                matched.push(last);
                matched.sort_unstable_by(|a, b| b.cmp(a));
                let mut n = matched[majority(self.cluster_size()) - 1];
                if self.policy == Policy::Sync {
                    for p in &self.in_sync {
                        n = n.min(self.progress.get(p).map_or(0, |pr| pr.matched));
                    }
                }
                // Only entries of the current term commit by counting (Raft, section 5.4.2).
                if self.term_at(n) == self.term { n } else { self.commit }
            }
        };
        if new_commit > self.commit {
            self.commit = new_commit;
            self.apply_committed();
            self.serve_reads(now);
        }
    }

    fn apply_committed(&mut self) {
        while self.applied < self.commit {
            self.applied += 1;
            let entry = &self.log[self.applied as usize - 1];
            let result = match &entry.op {
                Some(op) => self.kv.apply(op),
                None => Ok(Reply::Done),
            };
            if let Some((req, term, _)) = self.pending_writes.remove(&self.applied) {
                let reply = if term == entry.term {
                    result
                } else {
                    Err(OpError::Unavailable("the entry was replaced by a newer leader's".into()))
                };
                self.ready.replies.push((req, reply));
            }
        }
    }

    fn committed_in_term(&self) -> bool {
        self.term_at(self.commit) == self.term
    }

    fn lease_valid(&self, now: Now) -> bool {
        if self.policy != Policy::Sync || self.role != Role::Leader {
            return false;
        }
        let mut bases: Vec<u64> = self.progress.values().map(|p| p.lease_base).collect();
        bases.sort_unstable_by(|a, b| b.cmp(a));
        // The leader itself counts as one of the majority.
        let needed = majority(self.cluster_size()) - 1;
        let base =
            if needed == 0 { now.mono_ms } else { bases.get(needed - 1).copied().unwrap_or(0) };
        base > 0 && now.mono_ms < base + self.timing.election_min_ms / 2
    }

    /// Answers the reads whose leadership round and read index are confirmed.
    fn serve_reads(&mut self, now: Now) {
        if self.pending_reads.is_empty() {
            return;
        }
        let committed_in_term = self.committed_in_term();
        let quorum = majority(self.cluster_size());
        let mut acked: Vec<u64> = self.progress.values().map(|p| p.acked_seq).collect();
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let confirmed_seq =
            if quorum <= 1 { u64::MAX } else { acked.get(quorum - 2).copied().unwrap_or(0) };
        let commit = self.commit;
        let applied = self.applied;
        let mut keep = Vec::new();
        for mut read in std::mem::take(&mut self.pending_reads) {
            if read.read_index.is_none() && committed_in_term {
                read.read_index = Some(commit);
            }
            let done = read.seq > 0
                && read.seq <= confirmed_seq
                && read.read_index.is_some_and(|ri| applied >= ri);
            if done {
                let result = execute(&read.op, |k| self.kv.get(k)).map(|e| e.reply);
                self.ready.replies.push((read.req, result));
            } else if now.mono_ms >= read.deadline {
                self.ready.replies.push((
                    read.req,
                    Err(OpError::Unavailable("could not confirm leadership in time".into())),
                ));
            } else {
                keep.push(read);
            }
        }
        self.pending_reads = keep;
        if self.role == Role::Leader {
            self.start_read_round_if_idle(now);
        }
    }

    fn handle_append(&mut self, now: Now, from: NodeId, msg: Append) {
        let Append { term, prev_index, prev_term, entries, commit: leader_commit, seq } = msg;
        if term < self.term {
            self.send(
                from,
                Msg::AppendResp(AppendResp {
                    term: self.term,
                    success: false,
                    match_index: 0,
                    hint: 0,
                    seq,
                }),
            );
            return;
        }
        if term > self.term || self.role != Role::Follower || self.leader != Some(from) {
            self.become_follower(now, term, Some(from));
        }
        self.reset_election_timer(now);
        self.no_vote_until = now.mono_ms + self.timing.election_min_ms;
        if prev_index > self.last_index() {
            let hint = self.last_index() + 1;
            self.send(
                from,
                Msg::AppendResp(AppendResp { term, success: false, match_index: 0, hint, seq }),
            );
            return;
        }
        if self.term_at(prev_index) != prev_term {
            // Skip back over the whole conflicting term at once.
            let bad = self.term_at(prev_index);
            let mut hint = prev_index;
            while hint > 1 && self.term_at(hint - 1) == bad {
                hint -= 1;
            }
            self.send(
                from,
                Msg::AppendResp(AppendResp { term, success: false, match_index: 0, hint, seq }),
            );
            return;
        }
        let last_new = prev_index + entries.len() as u64;
        // Only a conflicting entry truncates: a delayed, shorter append must not cut entries
        // that a later append already delivered.
        let mut first_new = None;
        let truncates = self.bug != Some(Bug::NoTruncate);
        for (i, e) in entries.iter().enumerate() {
            let index = prev_index + 1 + i as u64;
            // With the injected `no-truncate` bug an entry already held is kept whatever
            // its term, and only the entries past the log's end are appended.
            let conflicts = truncates && self.term_at(index) != e.term;
            if conflicts || index > self.last_index() {
                first_new = Some(i);
                break;
            }
        }
        if let Some(i) = first_new {
            let index = prev_index + 1 + i as u64;
            if index <= self.applied {
                // Only an async follower can lose applied entries (the old primary
                // acknowledged writes nobody else had): rebuild the state machine.
                self.kv = Kv::default();
                self.applied = 0;
            }
            self.commit = self.commit.min(index - 1);
            self.log.truncate(index as usize - 1);
            let fresh = entries[i..].to_vec();
            self.log.extend(fresh.iter().cloned());
            self.ready.persist.push(Record::Entries { index, entries: fresh });
        }
        let new_commit = leader_commit.min(last_new);
        if new_commit > self.commit {
            self.commit = new_commit;
        }
        self.apply_committed();
        self.send(
            from,
            Msg::AppendResp(AppendResp {
                term,
                success: true,
                match_index: last_new,
                hint: 0,
                seq,
            }),
        );
    }

    fn handle_append_resp(&mut self, now: Now, from: NodeId, msg: AppendResp) {
        let AppendResp { term, success, match_index, hint, seq } = msg;
        if term > self.term {
            self.become_follower(now, term, None);
            return;
        }
        if term < self.term || self.role != Role::Leader {
            return;
        }
        let sent_at = self.seq_sent_at.get(&seq).copied();
        let Some(pr) = self.progress.get_mut(&from) else { return };
        pr.acked_at = now.mono_ms;
        if seq > pr.acked_seq {
            pr.acked_seq = seq;
            if let Some(t) = sent_at {
                pr.lease_base = pr.lease_base.max(t);
            }
        }
        if success {
            pr.matched = pr.matched.max(match_index);
            pr.next = pr.next.max(match_index + 1);
        } else if hint < pr.next {
            pr.next = hint.max(pr.matched + 1).max(1);
            self.send_append(from);
        }
        if self.policy == Policy::Sync
            && !self.in_sync.contains(&from)
            && self.progress.get(&from).is_some_and(|p| p.matched >= self.commit)
        {
            self.in_sync.insert(from);
        }
        self.advance_commit(now);
        self.serve_reads(now);
    }

    fn handle_vote(&mut self, now: Now, from: NodeId, term: u64, last_index: u64, last_term: u64) {
        // Stickiness: while a leader is known to be alive, vote requests are ignored entirely
        // (not even their term is adopted). This is what makes leases safe and keeps a
        // rejoining node from deposing a healthy leader.
        if term > self.term && (self.role == Role::Leader || now.mono_ms < self.no_vote_until) {
            return;
        }
        if term > self.term {
            self.become_follower(now, term, None);
        }
        let up_to_date = !self.checks_candidate_log()
            || (last_term, last_index) >= (self.term_at(self.last_index()), self.last_index());
        let granted = term == self.term && self.vote.is_none_or(|v| v == from) && up_to_date;
        if granted {
            if self.vote.is_none() {
                self.vote = Some(from);
                self.persist_hard_state();
            }
            self.reset_election_timer(now);
        }
        self.send(from, Msg::VoteResp { term: self.term, granted });
    }

    fn handle_pre_vote(
        &mut self,
        now: Now,
        from: NodeId,
        term: u64,
        last_index: u64,
        last_term: u64,
    ) {
        let up_to_date = !self.checks_candidate_log()
            || (last_term, last_index) >= (self.term_at(self.last_index()), self.last_index());
        let granted = term > self.term
            && self.role != Role::Leader
            && now.mono_ms >= self.no_vote_until
            && up_to_date;
        self.send(from, Msg::PreVoteResp { term, granted });
    }

    fn handle_pre_vote_resp(&mut self, now: Now, from: NodeId, term: u64, granted: bool) {
        if self.role != Role::PreCandidate || term != self.term + 1 || !granted {
            return;
        }
        self.votes.insert(from);
        if self.votes.len() >= majority(self.cluster_size()) {
            self.campaign(now);
        }
    }

    fn handle_vote_resp(&mut self, now: Now, from: NodeId, term: u64, granted: bool) {
        if term > self.term {
            self.become_follower(now, term, None);
            return;
        }
        if self.role != Role::Candidate || term != self.term || !granted {
            return;
        }
        self.votes.insert(from);
        if self.votes.len() >= majority(self.cluster_size()) {
            self.become_leader(now);
        }
    }

    fn expire_requests(&mut self, now: Now) {
        let expired: Vec<u64> = self
            .pending_writes
            .iter()
            .filter(|(_, (_, _, d))| *d <= now.mono_ms)
            .map(|(i, _)| *i)
            .collect();
        for i in expired {
            if let Some((req, _, _)) = self.pending_writes.remove(&i) {
                self.ready.replies.push((
                    req,
                    Err(OpError::Timeout(
                        "the write did not commit in time; it may still commit".into(),
                    )),
                ));
            }
        }
        self.serve_reads(now);
    }

    /// The role name the status API reports.
    fn role_name(&self) -> &'static str {
        match (self.role, self.policy) {
            (Role::Leader, Policy::Raft) => "leader",
            (Role::Leader, _) => "primary",
            (Role::Follower, Policy::Raft) => "follower",
            (Role::Follower, _) => "backup",
            (Role::PreCandidate | Role::Candidate, _) => "candidate",
        }
    }

    /// The state machine (for tests and the simulation).
    pub fn kv(&self) -> &Kv {
        &self.kv
    }

    /// The log (for tests).
    pub fn log(&self) -> &[Entry] {
        &self.log
    }

    /// The commit index.
    pub fn commit_index(&self) -> u64 {
        self.commit
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// Whether this node currently acts as leader or primary.
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }
}

impl Core for ReplogCore {
    type Msg = Msg;
    type Record = Record;

    fn tick(&mut self, now: Now) {
        match self.role {
            Role::Leader => {
                if self.policy != Policy::Async {
                    // Check quorum: a leader cut off from a majority steps down, so clients
                    // are told to look elsewhere instead of waiting.
                    let heard = self
                        .progress
                        .values()
                        .filter(|p| p.acked_at + self.timing.election_min_ms > now.mono_ms)
                        .count();
                    if heard + 1 < majority(self.cluster_size()) {
                        self.become_follower(now, self.term, None);
                        return;
                    }
                }
                if self.policy == Policy::Sync {
                    let limit = self.timing.election_min_ms;
                    let stale: Vec<NodeId> = self
                        .in_sync
                        .iter()
                        .copied()
                        .filter(|p| {
                            self.progress.get(p).is_none_or(|pr| pr.acked_at + limit <= now.mono_ms)
                        })
                        .collect();
                    for p in stale {
                        self.in_sync.remove(&p);
                    }
                    self.advance_commit(now);
                }
                let shipment_due = self.policy == Policy::Async
                    && now.mono_ms >= self.next_ship
                    && self.progress.values().any(|p| p.next <= self.last_index());
                if now.mono_ms >= self.next_heartbeat || shipment_due {
                    self.broadcast(now);
                    self.assign_read_rounds();
                }
            }
            Role::Follower | Role::PreCandidate | Role::Candidate => {
                if now.mono_ms >= self.election_deadline && now.mono_ms >= self.no_vote_until {
                    self.pre_campaign(now);
                }
            }
        }
        self.expire_requests(now);
    }

    fn step(&mut self, now: Now, from: NodeId, msg: Msg) {
        if !self.peers.contains(&from) {
            return;
        }
        match msg {
            Msg::Append(a) => self.handle_append(now, from, a),
            Msg::AppendResp(r) => self.handle_append_resp(now, from, r),
            Msg::Vote { term, last_index, last_term } => {
                self.handle_vote(now, from, term, last_index, last_term)
            }
            Msg::VoteResp { term, granted } => self.handle_vote_resp(now, from, term, granted),
            Msg::PreVote { term, last_index, last_term } => {
                self.handle_pre_vote(now, from, term, last_index, last_term)
            }
            Msg::PreVoteResp { term, granted } => {
                self.handle_pre_vote_resp(now, from, term, granted)
            }
        }
    }

    fn propose(&mut self, now: Now, req: RequestId, op: ClientOp) {
        if self.role != Role::Leader {
            self.ready.replies.push((req, Err(OpError::NotLeader { leader: self.leader })));
            return;
        }
        let deadline = now.mono_ms + self.timing.request_ms;
        if op.is_read_only() {
            match self.policy {
                Policy::Async => {
                    let result = execute(&op, |k| self.kv.get(k)).map(|e| e.reply);
                    self.ready.replies.push((req, result));
                }
                Policy::Sync if self.lease_valid(now) && self.committed_in_term() => {
                    let result = execute(&op, |k| self.kv.get(k)).map(|e| e.reply);
                    self.ready.replies.push((req, result));
                }
                Policy::Raft | Policy::Sync => {
                    self.pending_reads.push(PendingRead {
                        req,
                        op,
                        seq: 0,
                        read_index: None,
                        deadline,
                    });
                    self.start_read_round_if_idle(now);
                    self.serve_reads(now);
                }
            }
            return;
        }
        let index = self.append_local(Entry { term: self.term, op: Some(op) });
        self.pending_writes.insert(index, (req, self.term, deadline));
        // An async primary ships in batches on its own timer (`tick`); the others
        // replicate at once, since the write waits for their acknowledgements.
        if self.policy != Policy::Async {
            for p in self.peers.clone() {
                self.send_append(p);
            }
        }
        self.advance_commit(now);
    }

    fn take_ready(&mut self) -> Ready<Msg, Record> {
        std::mem::replace(&mut self.ready, Ready::new(self.policy != Policy::Async))
    }

    fn status(&self) -> CoreStatus {
        let mut extra = serde_json::Map::new();
        extra.insert("policy".into(), serde_json::json!(self.policy));
        extra.insert("commit_index".into(), self.commit.into());
        extra.insert("applied_index".into(), self.applied.into());
        extra.insert("last_index".into(), self.last_index().into());
        extra.insert("vote".into(), serde_json::json!(self.vote));
        extra.insert("keys".into(), self.kv.len().into());
        if self.policy == Policy::Sync && self.role == Role::Leader {
            extra.insert("in_sync".into(), serde_json::json!(self.in_sync));
        }
        CoreStatus { role: self.role_name(), term: self.term, leader: self.leader, extra }
    }
}

impl ReplogCore {
    /// Starts a heartbeat round for the reads waiting for one, unless a round is already in
    /// flight: reads that arrive meanwhile share the next round, which starts as soon as the
    /// current one is confirmed (one round in flight, however many reads).
    fn start_read_round_if_idle(&mut self, now: Now) {
        let waiting = self.pending_reads.iter().any(|r| r.seq == 0);
        let in_flight = self.pending_reads.iter().any(|r| r.seq > 0);
        if waiting && !in_flight {
            self.broadcast(now);
            self.assign_read_rounds();
        }
    }

    /// Gives every read not yet in a heartbeat round the round just sent.
    fn assign_read_rounds(&mut self) {
        let seq = self.seq;
        for r in self.pending_reads.iter_mut().filter(|r| r.seq == 0) {
            r.seq = seq;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modes::testnet::TestNet;
    use crate::types::Key;
    use serde_json::json;

    fn cluster(policy: Policy) -> TestNet<ReplogCore> {
        let now = Now { mono_ms: 1, wall_us: 0 };
        TestNet::new((1..=3).map(|id| {
            let peers = vec![1, 2, 3];
            (id, ReplogCore::new(id, peers, policy, Timing::default(), id * 7919, Vec::new(), now))
        }))
    }

    fn buggy(policy: Policy, bug: Option<Bug>) -> TestNet<ReplogCore> {
        let now = Now { mono_ms: 1, wall_us: 0 };
        TestNet::new((1..=3).map(|id| {
            let peers = vec![1, 2, 3];
            let core =
                ReplogCore::new(id, peers, policy, Timing::default(), id * 7919, vec![], now);
            (id, core.with_bug(bug))
        }))
    }

    fn rebuild(policy: Policy, id: NodeId) -> impl FnOnce(Vec<Record>, Now) -> ReplogCore {
        move |records, now| {
            ReplogCore::new(id, vec![1, 2, 3], policy, Timing::default(), id * 31, records, now)
        }
    }

    /// The live node that leads in the highest term, if any.
    fn leader(net: &TestNet<ReplogCore>) -> Option<NodeId> {
        net.cores
            .iter()
            .filter(|(id, c)| c.is_leader() && !net.down.contains(id))
            .max_by_key(|(_, c)| c.term())
            .map(|(id, _)| *id)
    }

    fn write(k: i64, v: i64) -> ClientOp {
        ClientOp::Write { key: Key::Int(k), value: json!(v) }
    }

    fn read(k: i64) -> ClientOp {
        ClientOp::Read { key: Key::Int(k) }
    }

    #[test]
    fn raft_elects_exactly_one_leader_that_all_nodes_follow() {
        let mut net = cluster(Policy::Raft);
        net.run_for(1500);
        let leaders: Vec<_> = net.cores.values().filter(|c| c.is_leader()).collect();
        assert_eq!(leaders.len(), 1);
        let l = leader(&net).expect("a leader");
        let term = net.cores[&l].term();
        for c in net.cores.values() {
            assert_eq!(c.term(), term);
            assert_eq!(c.status().leader, Some(l));
        }
        // The new leader's no-op is committed everywhere.
        assert!(net.cores.values().all(|c| c.commit_index() == 1));
    }

    #[test]
    fn raft_commits_writes_serves_read_index_reads_and_redirects_followers() {
        let mut net = cluster(Policy::Raft);
        net.run_for(1500);
        let l = leader(&net).expect("a leader");
        let w = net.propose(l, write(1, 10));
        net.deliver_all();
        assert_eq!(net.reply(w), Some(&Ok(Reply::Done)));
        let r = net.propose(l, read(1));
        // A read waits for a heartbeat round confirmed by a majority, sent at once.
        assert_eq!(net.reply(r), None);
        net.deliver_all();
        assert_eq!(net.reply(r), Some(&Ok(Reply::Value(json!(10)))));
        let follower = (1..=3).find(|id| *id != l).expect("a follower");
        let f = net.propose(follower, read(1));
        assert_eq!(net.reply(f), Some(&Err(OpError::NotLeader { leader: Some(l) })));
    }

    #[test]
    fn raft_repairs_a_deposed_leaders_log_after_a_partition() {
        let mut net = cluster(Policy::Raft);
        net.run_for(1500);
        let old = leader(&net).expect("a leader");
        net.isolate(old);
        // The isolated leader appends a write that can never commit.
        let lost = net.propose(old, write(1, 666));
        net.run_for(2000);
        let new = leader(&net).expect("the majority elects a new leader");
        assert_ne!(new, old);
        let w = net.propose(new, write(1, 7));
        net.run_for(50);
        assert_eq!(net.reply(w), Some(&Ok(Reply::Done)));
        // The old leader gave up on its write without claiming it failed.
        assert!(matches!(net.reply(lost), Some(Err(OpError::Timeout(_)))));
        net.heal();
        net.run_for(1000);
        let logs: Vec<_> = net.cores.values().map(|c| c.log().to_vec()).collect();
        assert_eq!(logs[0], logs[1]);
        assert_eq!(logs[1], logs[2]);
        assert!(
            logs[0].iter().all(|e| e.op != Some(write(1, 666))),
            "the uncommitted entry was removed"
        );
        assert!(net.cores.values().all(|c| c.kv().get(&Key::Int(1)) == json!(7)));
    }

    #[test]
    fn raft_stale_leader_steps_down_by_check_quorum_and_adopts_the_new_term() {
        let mut net = cluster(Policy::Raft);
        net.run_for(1500);
        let old = leader(&net).expect("a leader");
        let old_term = net.cores[&old].term();
        net.isolate(old);
        net.run_for(2000);
        assert!(!net.cores[&old].is_leader(), "a leader that cannot reach a majority steps down");
        let r = net.propose(old, read(1));
        assert!(matches!(net.reply(r), Some(Err(OpError::NotLeader { .. }))));
        net.heal();
        net.run_for(1000);
        let new = leader(&net).expect("a leader after healing");
        assert!(net.cores[&new].term() > old_term);
        assert_eq!(net.cores[&old].term(), net.cores[&new].term());
    }

    #[test]
    fn raft_recovers_committed_writes_from_its_log_after_a_full_restart() {
        let mut net = cluster(Policy::Raft);
        net.run_for(1500);
        let l = leader(&net).expect("a leader");
        let w = net.propose(l, ClientOp::Append { key: Key::Int(5), value: json!(1) });
        net.run_for(50);
        assert_eq!(net.reply(w), Some(&Ok(Reply::Done)));
        for id in 1..=3 {
            net.crash(id);
        }
        for id in 1..=3 {
            net.restart(id, rebuild(Policy::Raft, id));
        }
        net.run_for(2000);
        let l = leader(&net).expect("a leader after restart");
        let r = net.propose(l, read(5));
        net.run_for(50);
        assert_eq!(net.reply(r), Some(&Ok(Reply::Value(json!([1])))));
    }

    #[test]
    fn async_loses_an_acknowledged_write_when_the_primary_crashes_before_shipping_it() {
        let mut net = cluster(Policy::Async);
        net.run_for(1500);
        let p = leader(&net).expect("a primary");
        for b in (1..=3).filter(|b| *b != p) {
            net.cut.insert((p, b));
        }
        let w = net.propose(p, write(1, 42));
        // Acknowledged at once, before any backup has it.
        assert_eq!(net.reply(w), Some(&Ok(Reply::Done)));
        net.crash(p);
        net.heal();
        net.run_for(2000);
        let q = leader(&net).expect("a backup is promoted");
        assert_ne!(q, p);
        let r = net.propose(q, read(1));
        assert_eq!(
            net.reply(r),
            Some(&Ok(Reply::Value(json!(null)))),
            "the acknowledged write is gone"
        );
        // The old primary comes back and its divergent entry is cut, so it agrees.
        net.restart(p, rebuild(Policy::Async, p));
        net.run_for(1000);
        assert_eq!(net.cores[&p].kv().get(&Key::Int(1)), json!(null));
        assert!(!net.cores[&p].is_leader());
    }

    #[test]
    fn async_ships_in_batches_so_a_crash_inside_the_interval_loses_acknowledged_writes() {
        let mut net = cluster(Policy::Async);
        net.run_for(1500);
        let p = leader(&net).expect("a primary");
        // Write once and wait until that batch reaches a backup: a shipment
        // just went out. A write right after it waits for the next one, an
        // interval later, though nothing is cut.
        let first = net.propose(p, write(2, 1));
        assert_eq!(net.reply(first), Some(&Ok(Reply::Done)));
        let backup = (1..=3).find(|b| *b != p).expect("a backup");
        let mut waited = 0;
        while net.cores[&backup].kv().get(&Key::Int(2)) != json!(1) {
            net.run_for(10);
            waited += 10;
            assert!(waited <= Timing::default().ship_ms + 50, "never shipped");
        }
        let w = net.propose(p, write(3, 7));
        assert_eq!(net.reply(w), Some(&Ok(Reply::Done)), "acknowledged at once");
        net.run_for(20);
        for b in (1..=3).filter(|b| *b != p) {
            assert_eq!(net.cores[&b].kv().get(&Key::Int(3)), json!(null), "shipped too early");
        }
        net.crash(p);
        net.run_for(2000);
        let q = leader(&net).expect("a backup is promoted");
        let r = net.propose(q, read(3));
        net.run_for(50);
        assert_eq!(net.reply(r), Some(&Ok(Reply::Value(json!(null)))), "the write is lost");
        // Without a crash the batch arrives within one interval.
        let w = net.propose(q, write(4, 1));
        assert_eq!(net.reply(w), Some(&Ok(Reply::Done)));
        net.run_for(Timing::default().ship_ms + 20);
        for b in (1..=3).filter(|b| *b != q && *b != p) {
            assert_eq!(net.cores[&b].kv().get(&Key::Int(4)), json!(1), "the batch arrived");
        }
    }

    #[test]
    fn async_stale_primary_keeps_acknowledging_until_it_sees_the_new_term() {
        let mut net = cluster(Policy::Async);
        net.run_for(1500);
        let old = leader(&net).expect("a primary");
        net.isolate(old);
        net.run_for(2000);
        // No check-quorum in async mode: the isolated primary still acts.
        assert!(net.cores[&old].is_leader());
        let w = net.propose(old, write(2, 1));
        assert_eq!(net.reply(w), Some(&Ok(Reply::Done)));
        net.heal();
        net.run_for(1000);
        assert!(!net.cores[&old].is_leader(), "seeing the higher term deposes it");
        assert!(
            net.cores.values().all(|c| c.kv().get(&Key::Int(2)) == json!(null)),
            "its write was lost"
        );
    }

    #[test]
    fn sync_acknowledges_only_after_every_in_sync_backup_and_drops_a_dead_one() {
        let mut net = cluster(Policy::Sync);
        net.run_for(1500);
        let p = leader(&net).expect("a primary");
        let b = (1..=3).find(|b| *b != p).expect("a backup");
        net.crash(b);
        let w = net.propose(p, write(1, 1));
        net.deliver_all();
        assert_eq!(net.reply(w), None, "waits for the dead backup while it is in sync");
        net.run_for(500);
        assert_eq!(
            net.reply(w),
            Some(&Ok(Reply::Done)),
            "committed once the dead backup left the in-sync set"
        );
        // The write is on every live node, so promoting the other backup loses nothing.
        net.crash(p);
        net.restart(b, rebuild(Policy::Sync, b));
        net.run_for(3000);
        let q = leader(&net).expect("a new primary");
        assert_ne!(q, p);
        let r = net.propose(q, read(1));
        net.run_for(50);
        assert_eq!(net.reply(r), Some(&Ok(Reply::Value(json!(1)))));
    }

    #[test]
    fn sync_lease_reads_are_fenced_on_a_deposed_primary() {
        let mut net = cluster(Policy::Sync);
        net.run_for(1500);
        let p = leader(&net).expect("a primary");
        let r = net.propose(p, read(1));
        assert_eq!(
            net.reply(r),
            Some(&Ok(Reply::Value(json!(null)))),
            "served at once under the lease"
        );
        net.isolate(p);
        net.run_for(2000);
        let q = leader(&net).expect("the majority promotes a backup");
        let w = net.propose(q, write(1, 9));
        net.run_for(50);
        assert_eq!(net.reply(w), Some(&Ok(Reply::Done)));
        // The old primary never serves the stale value: its lease ran out and it stepped down.
        let stale = net.propose(p, read(1));
        net.run_for(50);
        assert!(matches!(net.reply(stale), Some(Err(_))), "got {:?}", net.reply(stale));
    }
    /// Isolates the leader of a fresh cluster, proposes a write there and returns the
    /// cluster, the old leader and the write's request.
    fn write_at_an_isolated_leader(
        policy: Policy,
        bug: Option<Bug>,
    ) -> (TestNet<ReplogCore>, NodeId, RequestId) {
        let mut net = buggy(policy, bug);
        net.run_for(1500);
        let old = leader(&net).expect("a leader");
        net.isolate(old);
        let w = net.propose(old, write(1, 666));
        (net, old, w)
    }

    #[test]
    fn bug_ack_before_commit_acknowledges_a_write_only_the_isolated_leader_has_and_loses_it() {
        let (net, _, w) = write_at_an_isolated_leader(Policy::Raft, None);
        assert_eq!(net.reply(w), None, "without the bug the write waits for a majority");
        let (mut net, old, w) =
            write_at_an_isolated_leader(Policy::Raft, Some(Bug::AckBeforeCommit));
        assert_eq!(
            net.reply(w),
            Some(&Ok(Reply::Done)),
            "acknowledged from the leader's log alone"
        );
        net.run_for(2000);
        let new = leader(&net).expect("the majority elects a leader");
        assert_ne!(new, old);
        net.heal();
        net.run_for(1000);
        for (id, c) in &net.cores {
            assert_eq!(
                c.kv().get(&Key::Int(1)),
                json!(null),
                "node {id} lost the acknowledged write"
            );
        }
    }

    #[test]
    fn bug_ack_before_backup_acknowledges_before_any_backup_and_a_primary_crash_loses_it() {
        let (net, _, w) = write_at_an_isolated_leader(Policy::Sync, None);
        assert_eq!(net.reply(w), None, "without the bug the write waits for its backups");
        let (mut net, p, w) = write_at_an_isolated_leader(Policy::Sync, Some(Bug::AckBeforeBackup));
        assert_eq!(net.reply(w), Some(&Ok(Reply::Done)), "acknowledged before any backup");
        net.crash(p);
        net.heal();
        net.run_for(2000);
        let q = leader(&net).expect("a backup is promoted");
        let r = net.propose(q, read(1));
        net.run_for(50);
        assert_eq!(net.reply(r), Some(&Ok(Reply::Value(json!(null)))), "the write is gone");
    }

    /// A cluster where follower `lagging` missed a committed write (key 1 = 5) that the
    /// other follower has, the leader is down and only `lagging` will campaign; returns
    /// the cluster and `lagging` after it had time to.
    fn lagging_candidate(bug: Option<Bug>) -> (TestNet<ReplogCore>, NodeId) {
        let mut net = buggy(Policy::Raft, bug);
        net.run_for(1500);
        let l = leader(&net).expect("a leader");
        let mut followers = (1..=3).filter(|id| *id != l);
        let (lagging, other) = (followers.next().expect("one"), followers.next().expect("two"));
        net.isolate(lagging);
        let w = net.propose(l, write(1, 5));
        net.run_for(50);
        assert_eq!(net.reply(w), Some(&Ok(Reply::Done)), "committed by the leader and {other}");
        net.crash(l);
        net.heal();
        // Only the lagging node's timer runs out, so the vote it asks is the test.
        net.cores.get_mut(&other).expect("other").election_deadline = u64::MAX / 2;
        net.run_for(1500);
        (net, lagging)
    }

    #[test]
    fn bug_vote_ignores_log_elects_a_candidate_missing_a_committed_write() {
        let (net, lagging) = lagging_candidate(None);
        assert!(!net.cores[&lagging].is_leader(), "the up-to-date voter refuses its vote");
        let (mut net, lagging) = lagging_candidate(Some(Bug::VoteIgnoresLog));
        assert!(net.cores[&lagging].is_leader(), "the voter granted it without looking");
        let r = net.propose(lagging, read(1));
        net.run_for(100);
        assert_eq!(
            net.reply(r),
            Some(&Ok(Reply::Value(json!(null)))),
            "the committed write is gone from the new leader"
        );
    }

    /// A deposed leader holding an uncommitted entry (key 1 = 666) at the index where the
    /// new leader put its own entries, rejoined after a write of key 2; returns the cluster,
    /// the old and the new leader.
    fn deposed_leader_rejoins(bug: Option<Bug>) -> (TestNet<ReplogCore>, NodeId, NodeId) {
        let (mut net, old, _) = write_at_an_isolated_leader(Policy::Raft, bug);
        net.run_for(2000);
        let new = leader(&net).expect("the majority elects a leader");
        let w = net.propose(new, write(2, 7));
        net.run_for(50);
        assert_eq!(net.reply(w), Some(&Ok(Reply::Done)));
        net.heal();
        net.run_for(1000);
        (net, old, new)
    }

    #[test]
    fn bug_no_truncate_keeps_a_deposed_leaders_entry_and_the_replicas_diverge() {
        let (net, old, new) = deposed_leader_rejoins(None);
        assert_eq!(net.cores[&old].log(), net.cores[&new].log(), "the conflict was cut");
        assert_eq!(net.cores[&old].kv().get(&Key::Int(1)), json!(null));
        let (net, old, new) = deposed_leader_rejoins(Some(Bug::NoTruncate));
        assert_ne!(net.cores[&old].log(), net.cores[&new].log(), "the conflicting entry stayed");
        assert_eq!(net.cores[&old].commit_index(), net.cores[&new].commit_index());
        assert_eq!(
            net.cores[&old].kv().get(&Key::Int(1)),
            json!(666),
            "the old leader applied its own uncommitted write"
        );
        assert_eq!(net.cores[&new].kv().get(&Key::Int(1)), json!(null));
        assert_eq!(net.cores[&old].kv().get(&Key::Int(2)), json!(7));
    }
}
