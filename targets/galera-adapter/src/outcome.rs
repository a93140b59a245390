//! What an operation's trouble proves, without I/O: which errors show that
//! MariaDB with Galera committed nothing (`fail`) and which leave it
//! unknown (`info`).
//!
//! A transaction commits only at COMMIT: Galera replicates and certifies
//! its write set then, and a session that ends before (the server crashed,
//! the connection broke) is rolled back, so every error before COMMIT is
//! sent is `fail`. At COMMIT, a deadlock answer (1213, which is also how
//! Galera reports a certification failure or a brute-force abort by a
//! replicated transaction) and "WSREP has not yet prepared node for
//! application use" (1047, a node outside the primary component refusing
//! the command) both mean it rolled back. Any other answer at COMMIT, and a
//! connection lost there, leaves the outcome unknown: the write set may
//! have been certified on the other nodes.

use checkers::OpType;

/// `ER_LOCK_DEADLOCK`: an InnoDB deadlock, or Galera's certification
/// failure or brute-force abort.
pub const LOCK_DEADLOCK: u16 = 1213;
/// `ER_LOCK_WAIT_TIMEOUT`.
pub const LOCK_WAIT_TIMEOUT: u16 = 1205;
/// `ER_UNKNOWN_COM_ERROR`, which wsrep answers while the node is not
/// ready (outside the primary component, joining).
pub const WSREP_NOT_READY: u16 = 1047;

/// How an operation that did not succeed ended: `code` is the server's
/// error number (none when the connection broke without one), `at_commit`
/// whether COMMIT had been sent.
pub fn outcome(code: Option<u16>, at_commit: bool) -> (OpType, String) {
    match code {
        Some(LOCK_DEADLOCK) => (OpType::Fail, "deadlock-or-certification-failure".into()),
        Some(WSREP_NOT_READY) => (OpType::Fail, "wsrep-not-ready".into()),
        Some(LOCK_WAIT_TIMEOUT) if !at_commit => (OpType::Fail, "lock-wait-timeout".into()),
        Some(c) if !at_commit => (OpType::Fail, format!("error-{c}")),
        Some(c) => (OpType::Info, format!("commit-unknown-{c}")),
        None if !at_commit => (OpType::Fail, "connection-lost-before-commit".into()),
        None => (OpType::Info, "connection-lost-during-commit".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlocks_and_certification_failures_are_fail_even_at_commit() {
        for at_commit in [false, true] {
            assert_eq!(outcome(Some(1213), at_commit).0, OpType::Fail);
            assert_eq!(outcome(Some(1047), at_commit).0, OpType::Fail);
        }
    }

    #[test]
    fn a_connection_lost_before_commit_is_fail_and_during_commit_is_info() {
        assert_eq!(outcome(None, false).0, OpType::Fail);
        assert_eq!(outcome(None, true), (OpType::Info, "connection-lost-during-commit".into()));
        // An unexpected answer to COMMIT proves nothing either way.
        assert_eq!(outcome(Some(1180), true).0, OpType::Info);
        assert_eq!(outcome(Some(1146), false).0, OpType::Fail);
    }
}
