//! The consistency-model lattice: which models imply which, which anomalies
//! each model forbids, and which anomalies imply others.
//!
//! The relationships follow Adya's, Cerone's and Bailis's papers as Elle
//! arranges them (Kingsbury and Alvaro, "Elle: Inferring Isolation Anomalies
//! from Experimental Observations"): a model forbids the anomalies it names
//! directly, the anomalies every weaker model forbids, and every anomaly that
//! implies one of those. A history violates a model when an anomaly the
//! model forbids was found.
//!
//! Only transactional models are here. Single-object models (linearizable,
//! sequential, causal, PRAM...) are judged by other checkers; listing them
//! as "still possible" from a transactional history would claim what this
//! checker never looked at.
//!
//! Two additions over Elle: `garbage-read` (a read of a value nobody
//! wrote) is forbidden by read-uncommitted, since every model assumes a read
//! observes some transaction's write; and our dependency edges are all item
//! edges (list-append and rw-register have no predicate reads), so a found
//! `G-single` is also a `G-single-item` and a found `G-nonadjacent` also a
//! `G-nonadjacent-item` (see `item_form`). Elle leaves that link out, which
//! lets a G-single slip past a repeatable-read check.

use std::collections::{BTreeMap, BTreeSet};

/// Models, each with the weaker models it implies (`a` implies `b`: every
/// history satisfying `a` satisfies `b`).
const IMPLIES: &[(&str, &[&str])] = &[
    (
        "strict-serializable",
        &[
            "serializable",
            "snapshot-isolation",
            "strong-snapshot-isolation",
            "strong-session-serializable",
        ],
    ),
    ("strong-session-serializable", &["serializable", "strong-session-snapshot-isolation"]),
    ("strong-snapshot-isolation", &["strong-session-snapshot-isolation", "strong-read-committed"]),
    ("strong-session-snapshot-isolation", &["snapshot-isolation", "strong-session-read-committed"]),
    ("serializable", &["repeatable-read", "update-serializable", "snapshot-isolation"]),
    ("update-serializable", &["forward-consistent-view"]),
    ("forward-consistent-view", &["consistent-view"]),
    ("consistent-view", &["cursor-stability", "monotonic-view"]),
    (
        "snapshot-isolation",
        &[
            "forward-consistent-view",
            "monotonic-atomic-view",
            "monotonic-snapshot-read",
            "parallel-snapshot-isolation",
            "prefix",
        ],
    ),
    ("parallel-snapshot-isolation", &["causal-cerone", "update-atomic"]),
    ("prefix", &["causal-cerone"]),
    ("causal-cerone", &["read-atomic"]),
    ("update-atomic", &["read-atomic"]),
    ("read-atomic", &["monotonic-atomic-view"]),
    ("repeatable-read", &["cursor-stability", "monotonic-atomic-view"]),
    ("cursor-stability", &["read-committed"]),
    ("monotonic-view", &["read-committed"]),
    ("monotonic-snapshot-read", &["read-committed"]),
    ("monotonic-atomic-view", &["read-committed"]),
    ("read-committed", &["read-uncommitted"]),
    ("strong-read-committed", &["strong-session-read-committed", "strong-read-uncommitted"]),
    ("strong-session-read-committed", &["read-committed", "strong-session-read-uncommitted"]),
    ("strong-read-uncommitted", &["strong-session-read-uncommitted"]),
    ("strong-session-read-uncommitted", &["read-uncommitted"]),
    ("read-uncommitted", &[]),
];

/// Other names users type for the same models (Adya's PL-n names, and the
/// names Elle accepts).
const ALIASES: &[(&str, &str)] = &[
    ("PL-1", "read-uncommitted"),
    ("PL-2", "read-committed"),
    ("PL-2.99", "repeatable-read"),
    ("PL-3", "serializable"),
    ("conflict-serializable", "serializable"),
    ("PL-SI", "snapshot-isolation"),
    ("PL-SS", "strict-serializable"),
    ("strong-serializable", "strict-serializable"),
    ("PL-CS", "cursor-stability"),
    ("PL-2L", "monotonic-view"),
    ("PL-MSR", "monotonic-snapshot-read"),
    ("PL-2+", "consistent-view"),
    ("PL-FCV", "forward-consistent-view"),
    ("PL-3U", "update-serializable"),
    ("ROLA", "update-atomic"),
    ("strong-session-PL-1", "strong-session-read-uncommitted"),
    ("strong-session-PL-2", "strong-session-read-committed"),
    ("strong-PL-1", "strong-read-uncommitted"),
    ("strong-PL-2", "strong-read-committed"),
];

/// Anomalies each model forbids directly, over what the models it implies forbid.
const FORBIDS: &[(&str, &[&str])] = &[
    (
        "read-uncommitted",
        &["G0", "duplicate-elements", "cyclic-versions", "garbage-read", "PL-1-cycle-exists"],
    ),
    ("read-committed", &["G1", "PL-2-cycle-exists"]),
    ("cursor-stability", &["G1", "G-cursor", "lost-update"]),
    ("monotonic-view", &["G1", "G-monotonic"]),
    ("monotonic-snapshot-read", &["G1", "G-MSR"]),
    ("consistent-view", &["G1", "G-single"]),
    ("forward-consistent-view", &["G1", "G-SIb"]),
    ("update-serializable", &["G1", "G-update"]),
    ("causal-cerone", &["internal", "G1a"]),
    ("parallel-snapshot-isolation", &["internal", "G1a"]),
    ("prefix", &["internal", "G1a"]),
    ("read-atomic", &["internal", "G1a", "future-read"]),
    ("update-atomic", &["lost-update"]),
    ("repeatable-read", &["G1", "G2-item", "PL-2.99-cycle-exists", "lost-update"]),
    ("snapshot-isolation", &["internal", "G1", "G-SI", "G-nonadjacent", "PL-SI-cycle-exists"]),
    ("serializable", &["G1", "G2", "internal", "predicate-read-miss", "PL-3-cycle-exists"]),
    ("strict-serializable", &["G1", "G1c-realtime", "G2-realtime", "PL-SS-cycle-exists"]),
    ("strong-session-read-uncommitted", &["G0-process", "strong-session-PL-1-cycle-exists"]),
    ("strong-session-read-committed", &["G1c-process", "strong-session-PL-2-cycle-exists"]),
    ("strong-read-uncommitted", &["G0-realtime", "strong-PL-1-cycle-exists"]),
    ("strong-read-committed", &["G1c-realtime", "strong-PL-2-cycle-exists"]),
    (
        "strong-session-snapshot-isolation",
        &[
            "internal",
            "G1-process",
            "G-nonadjacent-process",
            "strong-session-snapshot-isolation-cycle-exists",
        ],
    ),
    (
        "strong-snapshot-isolation",
        &[
            "internal",
            "G1-realtime",
            "G-nonadjacent-realtime",
            "strong-snapshot-isolation-cycle-exists",
        ],
    ),
    (
        "strong-session-serializable",
        &["G1-process", "G2-process", "strong-session-serializable-cycle-exists"],
    ),
];

/// Anomalies that imply others: finding `a` means `b` is present too.
const ANOMALY_IMPLIES: &[(&str, &[&str])] = &[
    ("G0", &["G1c", "G0-process"]),
    ("G0-process", &["G1c-process", "G0-realtime"]),
    ("G0-realtime", &["G1c-realtime"]),
    ("G1a", &["G1"]),
    ("G1b", &["G1"]),
    ("G1c", &["G1", "G1c-process"]),
    ("G1c-process", &["G1c-realtime", "G1-process"]),
    ("G1c-realtime", &["G1-realtime"]),
    ("G1", &["G1-process"]),
    ("G1-process", &["G1-realtime"]),
    ("G-single-item", &["G-single", "G-single-item-process", "G-nonadjacent-item"]),
    (
        "G-single-item-process",
        &["G-single-process", "G-single-item-realtime", "G-nonadjacent-item-process"],
    ),
    ("G-single-item-realtime", &["G-single-realtime", "G-nonadjacent-item-realtime"]),
    ("G-single", &["G-nonadjacent", "G-SIb", "G-single-process"]),
    ("G-single-process", &["G-nonadjacent-process", "G-single-realtime"]),
    ("G-single-realtime", &["G-nonadjacent-realtime"]),
    ("G-nonadjacent-item", &["G-nonadjacent", "G2-item", "G-nonadjacent-item-process"]),
    (
        "G-nonadjacent-item-process",
        &["G-nonadjacent-process", "G2-item-process", "G-nonadjacent-item-realtime"],
    ),
    ("G-nonadjacent-item-realtime", &["G2-item-realtime", "G-nonadjacent-realtime"]),
    ("G-nonadjacent", &["G2", "G-nonadjacent-process"]),
    ("G-nonadjacent-process", &["G2-process", "G-nonadjacent-realtime"]),
    ("G-nonadjacent-realtime", &["G2-realtime"]),
    ("G2-item", &["G2", "G2-item-process"]),
    ("G2-item-process", &["G2-process", "G2-item-realtime"]),
    ("G2-item-realtime", &["G2-realtime"]),
    ("G2", &["G2-process"]),
    ("G2-process", &["G2-realtime"]),
    ("G-SIb", &["G-SI"]),
    ("incompatible-order", &["G1a"]),
    ("dirty-update", &["G1a"]),
    ("future-read", &["G1c"]),
    ("lost-update", &["write-skew", "G2-item"]),
    ("write-skew", &["G2"]),
];

/// The `-item` form of a cycle anomaly: every dependency edge this checker
/// infers is an item edge, so a `G-single` it finds is a `G-single-item`.
pub fn item_form(kind: &str) -> Option<String> {
    for base in ["G-single", "G-nonadjacent"] {
        if let Some(rest) = kind.strip_prefix(base)
            && (rest.is_empty() || rest == "-process" || rest == "-realtime")
        {
            return Some(format!("{base}-item{rest}"));
        }
    }
    None
}

/// The canonical name of a model, or `None` if it is not a transactional
/// model this checker knows.
pub fn canonical(model: &str) -> Option<&'static str> {
    if let Some((name, _)) = IMPLIES.iter().find(|(m, _)| *m == model) {
        return Some(name);
    }
    ALIASES.iter().find(|(a, _)| *a == model).map(|(_, m)| *m)
}

/// Every model name this checker knows (canonical names, strongest first).
pub fn all_models() -> Vec<&'static str> {
    IMPLIES.iter().map(|(m, _)| *m).collect()
}

fn weaker(model: &str) -> &'static [&'static str] {
    IMPLIES.iter().find(|(m, _)| *m == model).map_or(&[], |(_, w)| w)
}

/// `model` and every model it implies.
pub fn implied_models(model: &str) -> BTreeSet<&'static str> {
    let mut out = BTreeSet::new();
    let mut stack: Vec<&'static str> = canonical(model).into_iter().collect();
    while let Some(m) = stack.pop() {
        if out.insert(m) {
            stack.extend(weaker(m));
        }
    }
    out
}

/// `anomalies` and every anomaly they imply.
pub fn implied_anomalies<'a>(anomalies: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack: Vec<String> = anomalies.into_iter().map(str::to_owned).collect();
    while let Some(a) = stack.pop() {
        if out.contains(&a) {
            continue;
        }
        if let Some(item) = item_form(&a) {
            stack.push(item);
        }
        if let Some((_, next)) = ANOMALY_IMPLIES.iter().find(|(x, _)| *x == a) {
            stack.extend(next.iter().map(|s| (*s).to_owned()));
        }
        out.insert(a);
    }
    out
}

/// Every anomaly the given models forbid: what they and the models they
/// imply forbid directly, plus every anomaly that implies one of those.
pub fn forbidden_by<'a>(models: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    let direct: BTreeSet<&str> = models
        .into_iter()
        .flat_map(implied_models)
        .flat_map(|m| FORBIDS.iter().filter(move |(x, _)| *x == m).flat_map(|(_, a)| a.iter()))
        .copied()
        .collect();
    // Walk the implication graph backwards: an anomaly is forbidden if
    // anything it implies is.
    let mut every: BTreeSet<&str> = BTreeSet::new();
    for (a, next) in ANOMALY_IMPLIES {
        every.insert(a);
        every.extend(next.iter());
    }
    every.extend(direct.iter());
    every
        .into_iter()
        .filter(|a| implied_anomalies([*a]).iter().any(|x| direct.contains(x.as_str())))
        .map(str::to_owned)
        .collect()
}

/// What a set of found anomalies says about the models.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Boundary {
    /// The weakest models the history violates.
    pub not: Vec<&'static str>,
    /// Stronger models it violates too (they imply one in `not`).
    pub also_not: Vec<&'static str>,
    /// The strongest models the history may still satisfy: nothing found
    /// rules them out.
    pub possible: Vec<&'static str>,
}

/// The models `anomalies` rule out, and the strongest ones still possible.
pub fn boundary<'a>(anomalies: impl IntoIterator<Item = &'a str>) -> Boundary {
    let present = implied_anomalies(anomalies);
    let all = all_models();
    let impossible: BTreeSet<&'static str> = all
        .iter()
        .copied()
        .filter(|m| {
            implied_models(m).iter().any(|w| {
                FORBIDS
                    .iter()
                    .filter(|(x, _)| x == w)
                    .any(|(_, a)| a.iter().any(|a| present.contains(*a)))
            })
        })
        .collect();
    let implies_other = |m: &str, set: &BTreeSet<&'static str>| {
        implied_models(m).iter().any(|w| *w != m && set.contains(w))
    };
    let not: Vec<&'static str> =
        impossible.iter().copied().filter(|m| !implies_other(m, &impossible)).collect();
    let also_not = impossible.iter().copied().filter(|m| !not.contains(m)).collect();
    let possible_set: BTreeSet<&'static str> =
        all.iter().copied().filter(|m| !impossible.contains(m)).collect();
    // The strongest possible models: those no other possible model implies.
    let implied_by_other =
        |m: &str| possible_set.iter().any(|o| *o != m && implied_models(o).contains(m));
    let possible = possible_set.iter().copied().filter(|m| !implied_by_other(m)).collect();
    Boundary { not, also_not, possible }
}

/// For each canonical model, the sorted anomalies it forbids: the table that
/// `tests/data/elle/anomalies-by-model.txt` pins down.
pub fn forbidden_table() -> BTreeMap<&'static str, BTreeSet<String>> {
    all_models().into_iter().map(|m| (m, forbidden_by([m]))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializable_forbids_g2_item_but_not_realtime_cycles() {
        let f = forbidden_by(["serializable"]);
        assert!(f.contains("G2-item") && f.contains("G1c") && f.contains("lost-update"));
        assert!(!f.contains("G2-item-realtime") && !f.contains("G0-realtime"));
        let s = forbidden_by(["strict-serializable"]);
        assert!(s.contains("G2-item-realtime") && s.contains("G-single-realtime"));
    }

    #[test]
    fn g_single_rules_out_repeatable_read_through_its_item_form() {
        assert!(implied_anomalies(["G-single"]).contains("G2-item"));
        let b = boundary(["G-single"]);
        assert_eq!(b.not, vec!["consistent-view", "repeatable-read"]);
        assert!(b.also_not.contains(&"serializable"));
        assert!(b.possible.contains(&"read-atomic") || b.possible.contains(&"prefix"));
    }

    #[test]
    fn aliases_resolve_and_unknown_models_do_not() {
        assert_eq!(canonical("PL-3"), Some("serializable"));
        assert_eq!(canonical("strong-serializable"), Some("strict-serializable"));
        assert_eq!(canonical("linearizable"), None);
    }

    #[test]
    fn nothing_found_leaves_strict_serializable_possible() {
        let b = boundary([]);
        assert!(b.not.is_empty() && b.also_not.is_empty());
        assert_eq!(b.possible, vec!["strict-serializable"]);
    }
}
