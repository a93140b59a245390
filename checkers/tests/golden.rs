//! Golden-file tests: small hand-written histories under `tests/golden/`,
//! each beside the exact text the checker must print for it
//! (`<history>.expected`). The directory names the checker and its model:
//! `golden/linear/<model>/`. Set `FAULTLINE_BLESS=1` to rewrite the expected
//! files after a deliberate change, then review the diff.

use std::path::{Path, PathBuf};

use checkers::formats;
use checkers::registry::{self, CheckSpec};

fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(cases(&p));
        } else if p.extension().is_some_and(|x| x != "expected") {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn linearizability_explanations_match_golden_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/linear");
    let bless = std::env::var_os("FAULTLINE_BLESS").is_some();
    let cases = cases(&root);
    assert!(cases.len() >= 7, "golden histories are missing under {}", root.display());
    let mut mismatches = Vec::new();
    for path in cases {
        let model =
            path.parent().and_then(Path::file_name).and_then(|m| m.to_str()).unwrap_or_default();
        let spec = CheckSpec {
            checker: "linearizable".into(),
            model: Some(model.into()),
            ..CheckSpec::default()
        };
        let checker = registry::build(&spec).unwrap_or_else(|e| panic!("{e}"));
        let mut history = formats::read_path(&path, None).unwrap_or_else(|e| panic!("{e}"));
        history.set_source(path.strip_prefix(&root).unwrap_or(&path).display().to_string());
        let mut verdict = checker.check(&history).unwrap_or_else(|e| panic!("{e}"));
        verdict.elapsed = std::time::Duration::ZERO;
        let actual = verdict.to_text();
        let expected_path = path.with_extension(format!(
            "{}.expected",
            path.extension().and_then(|e| e.to_str()).unwrap_or_default()
        ));
        if bless {
            std::fs::write(&expected_path, &actual).unwrap_or_else(|e| panic!("{e}"));
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            mismatches
                .push(format!("{}:\n--- expected\n{expected}--- actual\n{actual}", path.display()));
        }
    }
    assert!(
        mismatches.is_empty(),
        "golden mismatches (FAULTLINE_BLESS=1 to accept):\n{}",
        mismatches.join("\n")
    );
}
