//! The Porcupine benchmark data (`$FAULTLINE_BENCHDATA/porcupine`): 102 Jepsen
//! etcd histories and 6 key-value histories with known verdicts.
//!
//! Needs `FAULTLINE_BENCHDATA`. Without it the tests say so and pass, except
//! under `CI=true`, where the data must be there.

use std::path::PathBuf;

use checkers::formats;
use checkers::linear::{LinearChecker, ModelName};
use checkers::{Checker, Validity};

/// Linearizable etcd histories, per Porcupine's tests (and Horn & Kroening's).
const ETCD_LINEARIZABLE: [u32; 23] =
    [2, 5, 7, 18, 25, 31, 38, 45, 48, 49, 51, 53, 56, 67, 75, 76, 80, 87, 92, 98, 100, 101, 102];

fn benchdata() -> Option<PathBuf> {
    match std::env::var_os("FAULTLINE_BENCHDATA") {
        Some(p) => Some(PathBuf::from(p).join("porcupine/test_data")),
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true but FAULTLINE_BENCHDATA is not set; .ci/run must provide it")
        }
        None => {
            eprintln!(
                "SKIPPED: FAULTLINE_BENCHDATA is not set; the Porcupine benchmark verdicts were not checked"
            );
            None
        }
    }
}

#[test]
fn etcd_histories_get_their_known_verdicts() {
    let Some(dir) = benchdata() else { return };
    let checker = LinearChecker::new(ModelName::CasRegister);
    let mut wrong = Vec::new();
    for n in 0..=102u32 {
        let path = dir.join(format!("jepsen/etcd_{n:03}.log"));
        let read = formats::read_path(&path, None);
        if n == 95 {
            let err = read.expect_err("etcd_095 is empty");
            assert!(err.to_string().contains("empty"), "{err}");
            continue;
        }
        let history = read.unwrap_or_else(|e| panic!("{e}"));
        let verdict = checker.check(&history).unwrap_or_else(|e| panic!("{e}"));
        let expected =
            if ETCD_LINEARIZABLE.contains(&n) { Validity::Valid } else { Validity::Invalid };
        if verdict.validity != expected {
            wrong.push(format!(
                "etcd_{n:03}: expected {expected}, got {} ({})",
                verdict.validity, verdict.summary
            ));
        }
        if expected == Validity::Invalid {
            assert!(
                !verdict.anomalies.is_empty(),
                "etcd_{n:03}: an invalid verdict carries evidence"
            );
        }
    }
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
}

#[test]
fn kv_histories_get_their_known_verdicts() {
    let Some(dir) = benchdata() else { return };
    let checker = LinearChecker::new(ModelName::Kv);
    for name in ["c01-ok", "c01-bad", "c10-ok", "c10-bad", "c50-ok", "c50-bad"] {
        let history = formats::read_path(&dir.join(format!("kv/{name}.txt")), None)
            .unwrap_or_else(|e| panic!("{e}"));
        let verdict = checker.check(&history).unwrap_or_else(|e| panic!("{e}"));
        let expected = if name.ends_with("ok") { Validity::Valid } else { Validity::Invalid };
        assert_eq!(verdict.validity, expected, "{name}: {}", verdict.summary);
    }
}
