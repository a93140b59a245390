//! What an operation's trouble proves, without I/O: which errors show that
//! PostgreSQL committed nothing (`fail`) and which leave it unknown
//! (`info`).
//!
//! A transaction commits only when its COMMIT is processed, so anything
//! that goes wrong before the client sent COMMIT proves nothing was
//! written: an error answer aborts the transaction, and a session that
//! ends (the server crashed, the connection broke) is rolled back. At
//! COMMIT, an `ERROR` answer (a serialization failure found at commit, a
//! deferred constraint) means it rolled back; but a connection lost
//! there, or a `FATAL` answer (a server shutting down while a synchronous
//! commit waits for its standby says the transaction "has already
//! committed locally"), leaves the outcome unknown.

use checkers::OpType;

/// An error PostgreSQL answered with, as far as the outcome depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer<'a> {
    /// The SQLSTATE code (`40001`).
    pub code: &'a str,
    /// `ERROR`, `FATAL` or `PANIC`.
    pub severity: &'a str,
}

/// How an operation that did not succeed ended: `answer` is PostgreSQL's
/// error (none when the connection broke without one), `at_commit`
/// whether COMMIT had been sent.
pub fn outcome(answer: Option<Answer<'_>>, at_commit: bool) -> (OpType, String) {
    match answer {
        Some(a) if a.code == "40001" => (OpType::Fail, "serialization-failure".into()),
        Some(a) if a.code == "40P01" => (OpType::Fail, "deadlock-detected".into()),
        Some(a) if a.severity == "ERROR" => (OpType::Fail, format!("sqlstate-{}", a.code)),
        Some(a) if !at_commit => (OpType::Fail, format!("session-ended-{}", a.code)),
        Some(a) => (OpType::Info, format!("commit-unknown-{}", a.code)),
        None if !at_commit => (OpType::Fail, "connection-lost-before-commit".into()),
        None => (OpType::Info, "connection-lost-during-commit".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: &'static str, severity: &'static str) -> Option<Answer<'static>> {
        Some(Answer { code, severity })
    }

    #[test]
    fn serialization_failures_and_deadlocks_are_fail_even_at_commit() {
        for at_commit in [false, true] {
            assert_eq!(outcome(answer("40001", "ERROR"), at_commit).0, OpType::Fail);
            assert_eq!(outcome(answer("40P01", "ERROR"), at_commit).0, OpType::Fail);
        }
        assert_eq!(outcome(answer("40001", "ERROR"), true).1, "serialization-failure");
    }

    #[test]
    fn a_connection_lost_before_commit_is_fail_and_during_commit_is_info() {
        assert_eq!(outcome(None, false).0, OpType::Fail);
        assert_eq!(outcome(None, true).0, OpType::Info);
    }

    #[test]
    fn a_fatal_answer_to_commit_is_unknown_but_before_commit_it_rolled_back() {
        // 57P01: terminating connection due to administrator command.
        assert_eq!(outcome(answer("57P01", "FATAL"), true).0, OpType::Info);
        assert_eq!(outcome(answer("57P01", "FATAL"), false).0, OpType::Fail);
        // 25006: a write sent to a standby (a client behind a failover).
        assert_eq!(
            outcome(answer("25006", "ERROR"), false),
            (OpType::Fail, "sqlstate-25006".into())
        );
    }
}
