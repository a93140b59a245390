//! The dependency direction ARCHITECTURE.md promises, read from `cargo
//! metadata`: checkers ← results ← harness ← plugins ← the binary, with
//! refstore standing alone. A new dependency that points the wrong way
//! fails here, not in a review.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Each workspace crate and the workspace crates it may depend on (normal
/// dependencies; tests and benches may reach further).
const ALLOWED: &[(&str, &[&str])] = &[
    ("faultline-checkers", &[]),
    ("refstore", &[]),
    ("faultline-results", &["faultline-checkers"]),
    ("faultline-harness", &["faultline-checkers", "faultline-results"]),
    ("faultline-workloads", &["faultline-checkers", "faultline-harness"]),
    ("faultline-nemesis", &["faultline-checkers", "faultline-harness"]),
    ("faultline-refstore", &["faultline-checkers", "faultline-harness", "refstore"]),
    ("faultline-etcd", &["faultline-checkers", "faultline-harness"]),
    ("faultline-redis", &["faultline-checkers", "faultline-harness"]),
    ("faultline-postgres", &["faultline-checkers", "faultline-harness"]),
    ("faultline-galera", &["faultline-checkers", "faultline-harness"]),
    (
        "faultline-sim",
        &[
            "faultline-checkers",
            "faultline-results",
            "faultline-harness",
            "faultline-nemesis",
            "faultline-refstore",
            "refstore",
        ],
    ),
];

#[test]
fn dependencies_point_one_way() {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let members: BTreeSet<String> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in meta["packages"].as_array().expect("packages") {
        let name = p["name"].as_str().unwrap_or_default().to_owned();
        let normal = p["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| d["name"].as_str())
            .filter(|d| members.contains(*d))
            .map(str::to_owned)
            .collect();
        deps.insert(name, normal);
    }
    for (krate, allowed) in ALLOWED {
        let found = deps.get(*krate).unwrap_or_else(|| panic!("{krate} is not in the workspace"));
        let wrong: Vec<&String> = found.iter().filter(|d| !allowed.contains(&d.as_str())).collect();
        assert!(wrong.is_empty(), "{krate} depends on {wrong:?}; it may depend on {allowed:?}");
    }
    // Nothing depends on the binary, and results never on the harness.
    for (krate, found) in &deps {
        assert!(!found.contains("faultline"), "{krate} depends on the binary");
    }
    // The simulation runs on no async runtime: simulated time is its own.
    let sim = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "faultline-sim")
        .expect("faultline-sim is in the workspace");
    for d in sim["dependencies"].as_array().expect("dependencies") {
        let name = d["name"].as_str().unwrap_or_default();
        assert!(!name.starts_with("tokio"), "faultline-sim depends on {name}");
    }
}
