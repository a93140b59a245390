//! Every checker `faultline check --list` names runs from the command line:
//! each golden history of the checkers crate (which names its checker,
//! model and options in its header) is checked by the binary, which must
//! print the checked-in verdict, exit with its code, give the same validity
//! in `--json`, and write an HTML page for every invalid one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn faultline(dir: &Path, args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running faultline {args:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A golden history and how its header says to check it.
struct Golden {
    /// Path relative to the checkers crate, as its expected text names it.
    file: PathBuf,
    checker: String,
    /// The `faultline check` options the header asks for.
    args: Vec<String>,
    /// The expected verdict text (or `error: ...`).
    expected: String,
}

/// The golden histories under `dir` (relative to `crate_dir`) whose header
/// lines start with `prefix` (`;;` or `;`) and name a checker.
fn goldens(crate_dir: &Path, dir: &str, prefix: &str, expected_ext: &str) -> Vec<Golden> {
    let mut stack = vec![crate_dir.join(dir)];
    let mut out = Vec::new();
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for path in entries.map(|e| e.expect("directory entry").path()) {
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|x| x != "edn") {
                continue;
            }
            let body = std::fs::read_to_string(&path).expect("read golden");
            let mut checker = None;
            let mut args = Vec::new();
            for line in body.lines() {
                let Some(rest) = line.strip_prefix(prefix) else { break };
                let Some((key, value)) = rest.trim().split_once(':') else { continue };
                let value = value.trim();
                match key.trim() {
                    "checker" => checker = Some(value.to_owned()),
                    "model" => args.extend(["--model".to_owned(), value.to_owned()]),
                    "init" => args.extend(["--init".to_owned(), value.to_owned()]),
                    "models" => {
                        args.extend(["--consistency-models".into(), value.replace(' ', "")])
                    }
                    "opt" => args.extend(["--opt".to_owned(), value.to_owned()]),
                    "opts" => {
                        for kv in value.split(',') {
                            args.extend(["--opt".to_owned(), kv.trim().to_owned()]);
                        }
                    }
                    _ => {}
                }
            }
            let Some(checker) = checker else { continue };
            let expected = std::fs::read_to_string(path.with_extension(expected_ext))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let file = path.strip_prefix(crate_dir).expect("inside the crate").to_path_buf();
            out.push(Golden { file, checker, args, expected });
        }
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    out
}

/// The validity the expected text states (`NAME: invalid (...)`), or `None`
/// for an expected error.
fn expected_validity(g: &Golden) -> Option<&str> {
    if g.expected.starts_with("error:") {
        return None;
    }
    let head = g.expected.split_once(" (").map_or(g.expected.as_str(), |(h, _)| h);
    head.rsplit(": ").next().map(str::trim)
}

#[test]
fn every_listed_checker_runs_from_the_command_line_on_its_golden_histories() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("checkers");
    let mut all = goldens(&crate_dir, "tests/golden", ";;", "expected");
    all.extend(goldens(&crate_dir, "tests/data/elle/golden", ";", "txt"));
    assert!(all.len() >= 60, "only {} golden histories found", all.len());

    let out_dir =
        std::env::temp_dir().join(format!("faultline-checkers-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir).expect("scratch directory");
    let mut failures = Vec::new();
    let mut covered = BTreeSet::new();
    for (i, g) in all.iter().enumerate() {
        let file = g.file.display().to_string();
        let mut args = vec!["check".to_owned(), "--checker".to_owned(), g.checker.clone()];
        args.extend(g.args.iter().cloned());
        args.push(file.clone());

        let plain = faultline(&crate_dir, &args);
        let code = plain.status.code();
        let Some(validity) = expected_validity(g) else {
            // Rejected input: the binary names the problem and exits 254.
            let message = g.expected.trim_start_matches("error: ").trim();
            if code != Some(254) || !text(&plain.stderr).contains(message) {
                failures.push(format!(
                    "{file}: expected exit 254 and {message:?}, got {code:?}: {}",
                    text(&plain.stderr)
                ));
            }
            covered.insert(g.checker.clone());
            continue;
        };
        let want = match validity {
            "valid" => 0,
            "invalid" => 1,
            "unknown" => 2,
            other => panic!("{file}: unexpected validity {other:?} in its expected text"),
        };
        if code != Some(want) {
            failures.push(format!(
                "{file}: exit {code:?}, expected {want} ({validity}): {}",
                text(&plain.stderr)
            ));
        }
        if text(&plain.stdout) != g.expected {
            failures.push(format!(
                "{file}: printed\n{}\nexpected\n{}",
                text(&plain.stdout),
                g.expected
            ));
        }

        let mut json_args = args.clone();
        json_args.insert(1, "--json".into());
        let json = faultline(&crate_dir, &json_args);
        match serde_json::from_slice::<serde_json::Value>(&json.stdout) {
            Ok(doc) if doc["verdict"]["validity"] == validity => {}
            Ok(doc) => failures.push(format!("{file}: --json says {}", doc["verdict"]["validity"])),
            Err(e) => failures.push(format!("{file}: --json is not JSON: {e}")),
        }

        if validity == "invalid" {
            let page = out_dir.join(format!("{i}"));
            let mut html_args = args.clone();
            html_args.insert(1, "--html".into());
            html_args.insert(2, page.display().to_string());
            let html = faultline(&crate_dir, &html_args);
            // One page is written as a file, several as a directory.
            let written = if page.is_dir() { page.join("index.html") } else { page.clone() };
            match std::fs::read_to_string(&written) {
                Ok(body)
                    if body.starts_with("<!DOCTYPE html>") && html.status.code() == Some(1) => {}
                Ok(_) => failures.push(format!(
                    "{file}: --html exited {:?}: {}",
                    html.status.code(),
                    text(&html.stderr)
                )),
                Err(e) => failures
                    .push(format!("{file}: --html wrote nothing ({e}): {}", text(&html.stderr))),
            }
        }
        covered.insert(g.checker.clone());
    }
    let _ = std::fs::remove_dir_all(&out_dir);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // Every checker the binary lists has a golden history that reached it
    // here, except linearizable, whose command-line tests are in check.rs.
    let list = faultline(&crate_dir, &["check".to_owned(), "--list".to_owned()]);
    assert!(list.status.success());
    let listed: BTreeSet<String> = text(&list.stdout)
        .lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    let missing: Vec<&String> =
        listed.iter().filter(|n| *n != "linearizable" && !covered.contains(*n)).collect();
    assert!(missing.is_empty(), "no golden history runs {missing:?} from the command line");
}
