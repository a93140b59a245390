//! Classic protocol bugs that refstore can inject on purpose, off by default, to measure
//! how well faultline's checkers find real mistakes (issue 19, detection power).
//!
//! A bug is chosen by name (`--bug NAME` on a node, `--opt bug=NAME` on a test, `--bug NAME`
//! on `faultline sim`) and carried in the core's configuration by [`Mode::with_core`]
//! (no global switch), so one process can run a correct and a broken cluster side by side.
//! Each bug belongs to one mode; asking for it in another mode is refused by name, since
//! a switch that silently did nothing would let a test claim it measured a bug it never ran.
//! The README's "Injected bugs" section says, for each, which promise it breaks, which
//! checker should catch it and under which fault.

use crate::modes::Mode;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A protocol bug a core can be built with.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Bug {
    /// raft: the leader commits (and so acknowledges) a write as soon as it is in its own
    /// log, before a majority stored it.
    AckBeforeCommit,
    /// raft: a voter grants its pre-vote and vote without checking that the candidate's
    /// log is at least as up to date as its own.
    VoteIgnoresLog,
    /// raft: a follower keeps the entries it already has where the leader's conflict with
    /// them, appending only the entries past its own last index.
    NoTruncate,
    /// paxos: an acceptor never persists its promises and acceptances, so a restart forgets
    /// them.
    ForgetPromises,
    /// sync: the primary acknowledges a write once it is in its own log, before the
    /// in-sync backups (or any majority) stored it.
    AckBeforeBackup,
}

impl Bug {
    /// Every bug, in the README's order.
    pub const ALL: [Bug; 5] = [
        Bug::AckBeforeCommit,
        Bug::VoteIgnoresLog,
        Bug::NoTruncate,
        Bug::ForgetPromises,
        Bug::AckBeforeBackup,
    ];

    /// The name used on command lines and in test specs.
    pub fn name(self) -> &'static str {
        match self {
            Bug::AckBeforeCommit => "ack-before-commit",
            Bug::VoteIgnoresLog => "vote-ignores-log",
            Bug::NoTruncate => "no-truncate",
            Bug::ForgetPromises => "forget-promises",
            Bug::AckBeforeBackup => "ack-before-backup",
        }
    }

    /// The one mode whose core this bug breaks.
    pub fn mode(self) -> Mode {
        match self {
            Bug::AckBeforeCommit | Bug::VoteIgnoresLog | Bug::NoTruncate => Mode::Raft,
            Bug::ForgetPromises => Mode::Paxos,
            Bug::AckBeforeBackup => Mode::Sync,
        }
    }

    /// What the bug breaks, in one line.
    pub fn breaks(self) -> &'static str {
        match self {
            Bug::AckBeforeCommit => {
                "acknowledged writes are lost when a leader that alone held them is deposed"
            }
            Bug::VoteIgnoresLog => {
                "a candidate missing committed entries can win and overwrite them on its followers"
            }
            Bug::NoTruncate => {
                "a follower's log keeps a deposed leader's entries where the new leader's belong, \
                 so replicas apply different operations"
            }
            Bug::ForgetPromises => {
                "a restarted acceptor takes lower ballots and loses accepted values, so a chosen \
                 value can be replaced"
            }
            Bug::AckBeforeBackup => {
                "acknowledged writes are lost when the primary fails before its backups have them"
            }
        }
    }

    /// Every bug's name, comma-separated, for help and error messages.
    pub fn names() -> String {
        Bug::ALL.iter().map(|b| b.name()).collect::<Vec<_>>().join(", ")
    }

    /// Refuses the bug for any mode but its own.
    pub fn check_mode(self, mode: Mode) -> Result<(), BugError> {
        if self.mode() == mode {
            Ok(())
        } else {
            Err(BugError::WrongMode { bug: self, mode, its_mode: self.mode() })
        }
    }
}

/// Why a bug cannot be injected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BugError {
    /// The name is not one of [`Bug::ALL`].
    #[error("refstore has no injectable bug {0:?}; bugs: {names}", names = Bug::names())]
    Unknown(String),
    /// The bug belongs to another mode's core.
    #[error("bug {bug} is a bug of mode {its_mode}; mode {mode} has no such code path")]
    WrongMode {
        /// The bug asked for.
        bug: Bug,
        /// The mode it was asked of.
        mode: Mode,
        /// The mode it belongs to.
        its_mode: Mode,
    },
}

impl std::str::FromStr for Bug {
    type Err = BugError;
    fn from_str(s: &str) -> Result<Bug, BugError> {
        Bug::ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| BugError::Unknown(s.into()))
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bug_parses_from_its_name_and_is_refused_outside_its_mode() {
        for bug in Bug::ALL {
            assert_eq!(bug.name().parse::<Bug>(), Ok(bug));
            assert_eq!(bug.check_mode(bug.mode()), Ok(()));
            for mode in Mode::ALL.into_iter().filter(|m| *m != bug.mode()) {
                let err = bug.check_mode(mode).expect_err("refused");
                let text = err.to_string();
                assert!(text.contains(bug.name()) && text.contains(mode.name()), "{text}");
            }
        }
        let err = "ack-late".parse::<Bug>().expect_err("unknown");
        assert!(err.to_string().contains("ack-before-commit"), "{err}");
    }
}
