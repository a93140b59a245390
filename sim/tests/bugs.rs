//! refstore's injected bugs under the simulation: each is found within a
//! small, fixed range of seeds, the same seeds stay valid without the bug,
//! a bug of another mode is refused by name, and a shrunk counterexample
//! replays byte for byte from the command it prints.

use checkers::Validity;
use checkers::formats::{self, Format};
use clap::Parser;
use sim::cli::SimArgs;
use sim::run::{run_seed, simulate};
use sim::{WorldConfig, prepare};

use crate::{prepared, registry, small};

/// Each bug found by the detection sweep (`sim/examples/detection.rs`,
/// figures in `docs/simulation.md`), its mode, and the first seed whose run
/// is invalid with the bug under [`detection`]'s test.
const FIRST_DETECTING_SEED: [(&str, &str, u64); 5] = [
    ("ack-before-commit", "raft", 13),
    ("vote-ignores-log", "raft", 10),
    ("no-truncate", "raft", 91),
    ("forget-promises", "paxos", 441),
    ("ack-before-backup", "sync", 2),
];

/// The detection sweep's test: 5 nodes, register workload, partitions and
/// kills, 5 simulated seconds at 200 operations a second, a fault
/// operation every simulated second; for `no-truncate` every 0.3 s, aimed
/// at the leader (`partition = primaries`, `kill_targets = primaries`).
/// `bug` is the bug whose schedule it is; `inject` whether it is injected.
fn detection(mode: &str, bug: &str, inject: bool) -> harness::TestSpec {
    let mut spec = harness::TestSpec {
        time_limit: 5.0,
        rate: 200.0,
        nemesis_interval: 1.0,
        ..small(mode, "register", &["partition", "kill"])
    };
    if bug == "no-truncate" {
        spec.nemesis_interval = 0.3;
        spec.options.insert("partition".into(), "primaries".into());
        spec.options.insert("kill_targets".into(), "primaries".into());
    }
    if inject {
        spec.options.insert("bug".into(), bug.into());
    }
    spec
}

#[test]
fn every_injected_bug_is_found_at_its_seed_and_the_same_seed_is_valid_without_it() {
    for (bug, mode, seed) in FIRST_DETECTING_SEED {
        let with = run_seed(&prepared(detection(mode, bug, true)), seed).expect("runs");
        assert_eq!(with.checked.verdict.validity, Validity::Invalid, "{bug} at seed {seed}");
        let without = run_seed(&prepared(detection(mode, bug, false)), seed).expect("runs");
        assert_eq!(without.checked.verdict.validity, Validity::Valid, "{mode} at seed {seed}");
    }
}

#[test]
fn a_bug_is_refused_by_name_outside_its_mode() {
    let mut spec = small("paxos", "register", &["kill"]);
    spec.options.insert("bug".into(), "ack-before-commit".into());
    let err = prepare(spec, WorldConfig::default(), &registry()).err().expect("refused");
    let text = err.to_string();
    assert!(text.contains("ack-before-commit") && text.contains("paxos"), "{text}");
    let mut spec = small("raft", "register", &["kill"]);
    spec.options.insert("bug".into(), "ack-late".into());
    let err = prepare(spec, WorldConfig::default(), &registry()).err().expect("refused");
    assert!(err.to_string().contains("options.bug"), "{err}");
}

/// `faultline sim`'s arguments, as the binary parses them.
#[derive(Parser)]
struct Sim {
    #[command(flatten)]
    args: SimArgs,
}

#[test]
fn a_shrunk_counterexample_is_smaller_and_replays_byte_for_byte_from_its_command() {
    let store = tempfile::tempdir().expect("a temporary store");
    let seed = 13;
    let args = Sim::parse_from([
        "sim",
        "--mode",
        "raft",
        "--nemesis",
        "partition,kill",
        "--bug",
        "ack-before-commit",
        "--time-limit",
        "5",
        "--rate",
        "200",
        "--nemesis-interval",
        "1",
    ])
    .args;
    let args = SimArgs { store: store.path().to_owned(), ..args };
    let shrunk = sim::shrink::shrink(&args, seed, &registry(), 12).expect("shrinks");
    assert!(shrunk.runs <= 12);
    assert!(
        shrunk.shrunk.ops <= shrunk.original.ops && shrunk.shrunk.faults <= shrunk.original.faults,
        "{}",
        shrunk.summary()
    );
    let kept = std::fs::read_to_string(shrunk.run_dir.join("history.jsonl")).expect("kept");
    let meta = std::fs::read_to_string(shrunk.run_dir.join("shrink.json")).expect("recorded");
    assert!(meta.contains("\"seed\": 13") && meta.contains(&shrunk.command), "{meta}");
    // The run directory names the same command, and its report shows it
    // (not `faultline test -f`, which refuses a simulated run).
    let named = results::store::replay_command(&shrunk.run_dir).expect("a replay file");
    assert_eq!(named, shrunk.command);
    let report = std::fs::read_to_string(shrunk.run_dir.join("report.html")).expect("a report");
    assert!(report.contains("faultline sim --mode raft"), "the report's replay line");
    assert!(!report.contains("faultline test -f"), "the report offers faultline test");
    let words = shrunk.command.split(' ').skip(1);
    let replay = Sim::parse_from(words).args;
    let p = prepare(replay.spec().expect("spec"), replay.world(), &registry()).expect("plans");
    let (history, _, _) = simulate(&p, replay.seed.expect("a seed")).expect("simulates");
    assert!(formats::write(&history, Format::Jsonl) == kept, "the replay differs");
}
