//! The consistency-model lattice against the table derived from Elle
//! (`tests/data/elle/anomalies-by-model.txt`), and our own table as a
//! golden file (`tests/data/elle/forbidden-by-model.txt`), so that any
//! change to which anomaly a model forbids is reviewed as text.

use std::collections::BTreeSet;
use std::path::Path;

use checkers::elle::models;

fn data(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/elle").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Our deliberate additions: garbage reads, and the item forms of G-single
/// and G-nonadjacent (every edge we infer is an item edge).
fn addition(anomaly: &str) -> bool {
    anomaly == "garbage-read"
        || anomaly.starts_with("G-single")
        || anomaly.starts_with("G-nonadjacent")
}

#[test]
fn every_model_forbids_what_elle_forbids_and_only_documented_extras() {
    let reference = data("anomalies-by-model.txt");
    let mut rows = 0;
    for line in reference.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (head, anomalies) = line.split_once(':').expect("model (n): anomalies");
        let model = head.split_whitespace().next().expect("model name");
        let theirs: BTreeSet<String> = anomalies.split_whitespace().map(str::to_owned).collect();
        let ours = models::forbidden_by([model]);
        let missing: Vec<&String> = theirs.difference(&ours).collect();
        assert!(missing.is_empty(), "{model}: we do not forbid {missing:?}");
        let extra: Vec<&String> = ours.difference(&theirs).filter(|a| !addition(a)).collect();
        assert!(extra.is_empty(), "{model}: we also forbid {extra:?}");
        rows += 1;
    }
    assert_eq!(rows, 20, "the reference table has 20 models");
}

#[test]
fn the_forbidden_table_matches_its_golden_file() {
    let mut got = String::from(
        "# Anomalies each consistency model forbids, as checkers::elle::models computes them.\n\
         # Regenerate with FAULTLINE_BLESS=1 and review the diff.\n",
    );
    for (model, anomalies) in models::forbidden_table() {
        let list: Vec<&str> = anomalies.iter().map(String::as_str).collect();
        got.push_str(&format!("{model} ({}): {}\n", list.len(), list.join(" ")));
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/elle/forbidden-by-model.txt");
    if std::env::var("FAULTLINE_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &got).expect("write");
        return;
    }
    let expected = data("forbidden-by-model.txt");
    assert_eq!(expected, got, "the lattice changed; bless and review the diff");
}
