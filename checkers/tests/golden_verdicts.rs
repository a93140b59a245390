//! Golden files: every `tests/golden/<area>/<name>.edn` history whose first
//! line names a checker (`;; checker: NAME`) is checked with it, and the
//! verdict's text (or the error) must equal `<name>.expected` byte for byte.
//! Histories without that header belong to other golden tests.
//!
//! The `;;` comment lines at the top of a history configure the check:
//! `;; checker: NAME`, `;; model: M`, `;; init: VALUE`, `;; opt: key=value`.
//! The files are ordinary EDN histories, so `faultline check` reads them as
//! they are. Run with `FAULTLINE_BLESS=1` to rewrite the expected files after
//! a deliberate change, then review the diff as text. Each checker's HTML
//! pages for the history are checked too (see `html.rs`).

use std::path::{Path, PathBuf};

use checkers::formats;
use checkers::registry::{self, CheckSpec};

fn spec_from_header(text: &str, path: &Path) -> CheckSpec {
    let mut spec = CheckSpec::default();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(";;") else { break };
        let rest = rest.trim();
        if let Some(v) = rest.strip_prefix("checker:") {
            spec.checker = v.trim().to_owned();
        } else if let Some(v) = rest.strip_prefix("model:") {
            spec.model = Some(v.trim().to_owned());
        } else if let Some(v) = rest.strip_prefix("opt:") {
            let (k, v) = v
                .trim()
                .split_once('=')
                .unwrap_or_else(|| panic!("{}: bad opt line {line:?}", path.display()));
            spec.options.insert(k.to_owned(), v.to_owned());
        } else if let Some(v) = rest.strip_prefix("init:") {
            spec.init =
                Some(v.trim().parse::<i64>().map(Into::into).unwrap_or_else(|_| v.trim().into()));
        }
    }
    assert!(!spec.checker.is_empty(), "{}: no `;; checker: NAME` header", path.display());
    spec
}

/// The text a golden file pins: the verdict (without timing) or the error;
/// and what is wrong with the checker's HTML pages for it.
fn render(path: &Path, root: &Path) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(path).expect("read golden history");
    let spec = spec_from_header(&text, path);
    // Name the file relative to the crate so expected texts do not depend
    // on where the repository is checked out.
    let source = path.strip_prefix(root).unwrap_or(path).display().to_string();
    let history = match formats::parse(&text, &source, None) {
        Ok(h) => h,
        Err(e) => return (format!("error: {e}\n"), Vec::new()),
    };
    let checker = match registry::build(&spec) {
        Ok(c) => c,
        Err(e) => return (format!("error: {e}\n"), Vec::new()),
    };
    match checker.check(&history) {
        Ok(verdict) => {
            let html = crate::html::problems(checker.as_ref(), &history, &verdict, &source);
            (verdict.to_text(), html)
        }
        Err(e) => (format!("error: {e}\n"), Vec::new()),
    }
}

fn histories(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).expect("golden dir").map(|e| e.expect("entry").path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            histories(&p, out);
        } else if p.extension().is_some_and(|e| e == "edn")
            && std::fs::read_to_string(&p).is_ok_and(|t| t.starts_with(";; checker:"))
        {
            out.push(p);
        }
    }
}

#[test]
fn golden_histories_give_their_expected_verdicts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    histories(&root.join("tests/golden"), &mut files);
    // Counted, so that a history that lost its header cannot drop out unseen.
    assert!(
        files.len() >= 40,
        "expected at least 40 golden histories with a checker header, found {}",
        files.len()
    );
    let bless = std::env::var_os("FAULTLINE_BLESS").is_some();
    let mut failures = Vec::new();
    for path in &files {
        let (actual, html) = render(path, root);
        failures.extend(html);
        let expected_path = path.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, &actual).expect("write expected");
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures
                .push(format!("{}:\n--- expected\n{expected}--- actual\n{actual}", path.display())),
            Err(_) => {
                failures.push(format!("{}: no .expected file; actual:\n{actual}", path.display()))
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden file(s) differ (FAULTLINE_BLESS=1 rewrites them):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every checker `docs/checkers.md` documents (`## name — ...`, several
/// names separated by commas) is in the checker table and builds.
#[test]
fn documented_checkers_are_registered() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("../docs/checkers.md")).expect("docs/checkers.md");
    let mut documented = Vec::new();
    for line in docs.lines() {
        let Some(head) = line.strip_prefix("## ").and_then(|h| h.split(" — ").nth(1).map(|_| h))
        else {
            continue;
        };
        let names = head.split(" — ").next().unwrap_or("");
        documented.extend(names.split(',').map(|n| n.trim().to_owned()));
    }
    assert!(documented.len() >= 16, "found only {documented:?} in docs/checkers.md");
    let table = registry::CheckerTable::builtin();
    for name in &documented {
        assert!(table.get(name).is_some(), "{name} is documented but not in the checker table");
        let mut spec = CheckSpec::new(name.clone());
        match name.as_str() {
            "linearizable" => spec.model = Some("register".into()),
            "compose" => spec.options.insert("checkers".into(), "stats".into()).map_or((), drop),
            _ => {}
        }
        if let Err(e) = table.build(&spec) {
            panic!("{name}: {e}");
        }
    }
}

/// Every checker honours `--time-limit`: with no time at all, no golden
/// history is judged valid, and an unknown verdict names the limit.
/// Regression: only the linearizability, Elle and causal checkers read
/// the budget; the rest ran to the end whatever the limit.
#[test]
fn a_spent_time_limit_is_unknown_in_every_checker() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    histories(&root.join("tests/golden"), &mut files);
    let mut checked = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read golden history");
        let mut spec = spec_from_header(&text, path);
        spec.budget.time = Some(std::time::Duration::ZERO);
        let (Ok(history), Ok(checker)) = (formats::parse(&text, "h", None), registry::build(&spec))
        else {
            continue;
        };
        let Ok(v) = checker.check(&history) else { continue };
        checked.insert(spec.checker.clone());
        let reason = v.unknown_reason.clone().unwrap_or_default()
            + &v.children.iter().filter_map(|c| c.unknown_reason.clone()).collect::<String>();
        match v.validity {
            checkers::Validity::Valid => {
                failures.push(format!("{}: valid with no time", path.display()))
            }
            checkers::Validity::Unknown
                if !reason.contains("time limit")
                    && !reason.contains("time budget")
                    && unbounded_validity(&spec, &history) != checkers::Validity::Unknown =>
            {
                failures
                    .push(format!("{}: unknown without naming the limit: {reason}", path.display()))
            }
            _ => {}
        }
    }
    assert!(checked.len() >= 15, "only {checked:?} were checked");
    fn unbounded_validity(spec: &CheckSpec, history: &checkers::History) -> checkers::Validity {
        let mut spec = spec.clone();
        spec.budget.time = None;
        registry::build(&spec)
            .and_then(|c| c.check(history))
            .map_or(checkers::Validity::Unknown, |v| v.validity)
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
