//! Golden explanations: each `tests/data/elle/golden/NAME.edn` is checked
//! with the checker, models and options its header comments name, and the
//! verdict's text must equal `NAME.txt`, reviewed as text. Set
//! `FAULTLINE_BLESS=1` to rewrite the expected files after a deliberate
//! change, then read the diff. The checker's HTML pages for each history are
//! checked too (see `tests/html.rs`).

use std::path::{Path, PathBuf};

use checkers::formats;
use checkers::registry::{self, CheckSpec};

use super::support::check;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/elle/golden")
}

/// The `; key: value` header lines of a golden history.
fn header<'t>(text: &'t str, key: &str) -> Option<&'t str> {
    text.lines()
        .take_while(|l| l.starts_with(';'))
        .find_map(|l| l.trim_start_matches(';').trim().strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}

#[test]
fn explanations_match_their_golden_files() {
    let bless = std::env::var("FAULTLINE_BLESS").is_ok_and(|v| v == "1");
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("golden directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "edn"))
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 10, "golden histories missing from {}", golden_dir().display());
    let mut failures = Vec::new();
    for input in &inputs {
        let text = std::fs::read_to_string(input).expect("read golden input");
        let checker = header(&text, "checker").expect("a `; checker:` header line");
        let models: Vec<&str> =
            header(&text, "models").map_or(Vec::new(), |m| m.split(',').map(str::trim).collect());
        let opts: Vec<(&str, &str)> = header(&text, "opts").map_or(Vec::new(), |o| {
            o.split(',').filter_map(|kv| kv.trim().split_once('=')).collect()
        });
        let history = formats::read_path(input, None).expect("golden history parses");
        let verdict = check(checker, &models, &opts, &history);
        let spec = CheckSpec {
            checker: checker.into(),
            consistency_models: models.iter().map(|m| (*m).to_owned()).collect(),
            options: opts.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            ..CheckSpec::default()
        };
        let built = registry::build(&spec).expect("the golden file's checker");
        failures.extend(crate::html::problems(
            built.as_ref(),
            &history,
            &verdict,
            &input.display().to_string(),
        ));
        let got = verdict.to_text();
        let expected_path = input.with_extension("txt");
        if bless {
            std::fs::write(&expected_path, &got).expect("write golden output");
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == got => {}
            Ok(expected) => failures.push(format!(
                "{}: output differs from {}\n--- expected\n{expected}\n--- got\n{got}",
                input.display(),
                expected_path.display()
            )),
            Err(e) => failures.push(format!(
                "{}: {e}; run with FAULTLINE_BLESS=1 to create it, then review it\n--- got\n{got}",
                expected_path.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
