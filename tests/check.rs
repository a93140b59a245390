//! `faultline check` and `faultline generate` as users run them: exit codes
//! (0 valid, 1 invalid, 2 unknown, 254 unreadable), the table for several
//! files, JSON and HTML output, and errors that name file, line and field.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test (also used by the other modules).
pub(crate) fn faultline() -> Command {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
}

/// Runs the binary with `args` to completion.
pub(crate) fn run(args: &[&str]) -> Output {
    match faultline().args(args).output() {
        Ok(o) => o,
        Err(e) => panic!("running faultline {args:?}: {e}"),
    }
}

/// Output bytes as text, lossily.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh temporary directory for one test, removed when it ends.
fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("faultline-check-{name}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn generate(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut args = vec!["generate", "--model", "cas-register", "--keys", "3", "--processes", "6"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-o", out.to_str().unwrap_or_default()]);
    let o = run(&args);
    assert!(o.status.success(), "generate failed: {}", text(&o.stderr));
    out
}

#[test]
fn exit_codes_follow_jepsen() {
    let scratch_dir = scratch("codes");
    let dir = scratch_dir.path().to_path_buf();
    let valid =
        generate(&dir, "valid.jsonl", &["--ops", "2000", "--crash-rate", "0.02", "--seed", "3"]);
    let stale = generate(
        &dir,
        "stale.jsonl",
        &["--ops", "2000", "--crash-rate", "0.02", "--seed", "3", "--corrupt", "stale-read"],
    );
    let o = run(&["check", "-m", "cas-register", valid.to_str().unwrap_or_default()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("linearizable: valid"));

    let o = run(&["check", "-m", "cas-register", stale.to_str().unwrap_or_default()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("cannot be linearized"), "{}", text(&o.stdout));

    // A budget that is already spent: the search stops at its first check.
    let big = generate(&dir, "big.jsonl", &["--ops", "20000", "--seed", "4"]);
    let o = run(&[
        "check",
        "-m",
        "cas-register",
        "--time-limit",
        "0.000000001",
        big.to_str().unwrap_or_default(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("time limit"), "{}", text(&o.stdout));
}

#[test]
fn unreadable_input_names_file_line_and_field_and_exits_254() {
    let scratch_dir = scratch("bad");
    let dir = scratch_dir.path().to_path_buf();
    let bad = dir.join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n{\"process\":0,\"type\":\"okay\",\"f\":\"read\"}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let o = run(&["check", "-m", "cas-register", bad.to_str().unwrap_or_default()]);
    assert_eq!(o.status.code(), Some(254));
    let err = text(&o.stderr);
    assert!(err.contains("bad.jsonl:2:"), "{err}");
    assert!(err.contains("okay"), "{err}");

    let empty = dir.join("etcd_095.log");
    std::fs::write(&empty, "").unwrap_or_else(|e| panic!("{e}"));
    let o = run(&["check", "-m", "cas-register", empty.to_str().unwrap_or_default()]);
    assert_eq!(o.status.code(), Some(254));
    assert!(text(&o.stderr).contains("etcd_095.log: the history is empty"), "{}", text(&o.stderr));

    let o = run(&["check", "-m", "no-such-model", bad.to_str().unwrap_or_default()]);
    assert_eq!(o.status.code(), Some(254));
    assert!(text(&o.stderr).contains("has no model \"no-such-model\""), "{}", text(&o.stderr));

    let o = run(&["check", "--bogus-flag"]);
    assert_eq!(o.status.code(), Some(254));
}

#[test]
fn several_files_make_a_table_and_json() {
    let scratch_dir = scratch("table");
    let dir = scratch_dir.path().to_path_buf();
    let a = generate(&dir, "a.jsonl", &["--ops", "300", "--seed", "1"]);
    let b =
        generate(&dir, "b.jsonl", &["--ops", "300", "--seed", "2", "--corrupt", "impossible-read"]);
    let (a, b) = (a.to_str().unwrap_or_default(), b.to_str().unwrap_or_default());
    let o = run(&["check", "-m", "cas-register", a, b]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o.stdout);
    assert!(out.contains("2 files: 1 valid, 1 invalid, 0 unknown, 0 unreadable"), "{out}");

    let o = run(&["check", "-m", "cas-register", "--json", a]);
    let doc: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc["verdict"]["validity"], "valid");
    assert_eq!(doc["verdict"]["checker"], "linearizable");
    // Where the time went: reading, then the check stage by stage.
    assert!(doc["read_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{doc}");
    let stages = doc["verdict"]["details"]["timings_ms"].as_object().expect("timings_ms");
    assert!(stages.contains_key("search"), "{doc}");
}

/// A register history in EDN is decided straight from its text, with the
/// verdict the whole way gives: valid, as its JSONL twin, or with a stale
/// read, evidence and all, as the same file read whole (`--html`, which
/// draws from the history, takes the whole way; `--format jsonl`, which
/// this text is not, is refused).
#[test]
fn a_register_history_is_decided_from_its_text() {
    let scratch_dir = scratch("text");
    let dir = scratch_dir.path().to_path_buf();
    let common = ["--ops", "3000", "--crash-rate", "0.02", "--seed", "4"];
    let edn = generate(&dir, "h.edn", &[&common[..], &["-f", "edn"]].concat());
    let jsonl = generate(&dir, "h.jsonl", &common);
    let stale = generate(
        &dir,
        "stale.edn",
        &[&common[..], &["-f", "edn", "--corrupt", "stale-read"]].concat(),
    );
    let verdict = |extra: &[&str], file: &Path| {
        let mut args = vec!["check", "-m", "cas-register", "--json"];
        args.extend_from_slice(extra);
        args.push(file.to_str().unwrap_or_default());
        let o = run(&args);
        let mut doc: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", text(&o.stderr)));
        let v = doc["verdict"].take();
        (o.status.code(), v)
    };
    let comparable = |mut v: serde_json::Value| {
        v["elapsed"] = serde_json::json!(0);
        if let Some(d) = v["details"].as_object_mut() {
            d.remove("timings_ms");
            d.remove("read_from_text");
        }
        v
    };
    let (code, from_text) = verdict(&[], &edn);
    assert_eq!(code, Some(0), "{from_text}");
    assert_eq!(from_text["details"]["read_from_text"], true, "{from_text}");
    assert!(from_text["details"]["timings_ms"]["read"].as_f64().is_some(), "{from_text}");
    let (_, whole) = verdict(&[], &jsonl);
    assert_eq!(whole["details"].get("read_from_text"), None, "{whole}");
    assert_eq!(comparable(from_text), comparable(whole));
    let html = dir.join("page");
    let (code, drawn) = verdict(&["--html", html.to_str().unwrap_or_default()], &edn);
    assert_eq!(code, Some(0));
    assert_eq!(drawn["details"].get("read_from_text"), None, "{drawn}");
    let (code, refused) = verdict(&["--format", "jsonl"], &edn);
    assert_eq!((code, refused), (Some(254), serde_json::Value::Null));
    let (code, invalid) = verdict(&[], &stale);
    assert_eq!(code, Some(1), "{invalid}");
    assert_eq!(invalid["details"]["read_from_text"], true, "{invalid}");
    assert!(!invalid["anomalies"].as_array().is_some_and(Vec::is_empty), "{invalid}");
    // The same file the whole way (`--html` reads the history), for lines.
    let stale_html = dir.join("stale-page");
    let (_, whole) = verdict(&["--html", stale_html.to_str().unwrap_or_default()], &stale);
    assert_eq!(whole["details"].get("read_from_text"), None, "{whole}");
    assert_eq!(comparable(invalid), comparable(whole));
}

#[test]
fn a_list_append_history_is_decided_from_its_text() {
    let scratch_dir = scratch("text-txn");
    let dir = scratch_dir.path().to_path_buf();
    let line = |i: u32, p: u32, kind: &str, value: &str| {
        format!("{{:index {i}, :time {i}, :type :{kind}, :process {p}, :f :txn, :value {value}}}\n")
    };
    let writes = [
        line(0, 0, "invoke", "[[:append 1 1] [:r 2 nil]]"),
        line(1, 0, "ok", "[[:append 1 1] [:r 2 []]]"),
    ]
    .concat();
    let valid = dir.join("valid.edn");
    let read_after = line(2, 1, "invoke", "[[:r 1 nil]]") + &line(3, 1, "ok", "[[:r 1 [1]]]");
    std::fs::write(&valid, writes.clone() + &read_after).unwrap_or_else(|e| panic!("{e}"));
    // A read that began after the append completed, yet missed it.
    let stale = dir.join("stale.edn");
    let missed = line(2, 1, "invoke", "[[:r 1 nil]]") + &line(3, 1, "ok", "[[:r 1 []]]");
    std::fs::write(&stale, writes + &missed).unwrap_or_else(|e| panic!("{e}"));
    let verdict = |extra: &[&str], file: &Path| {
        let mut args = vec!["check", "-c", "list-append", "--json"];
        args.extend_from_slice(extra);
        args.push(file.to_str().unwrap_or_default());
        let o = run(&args);
        let mut doc: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", text(&o.stderr)));
        (o.status.code(), doc["verdict"].take())
    };
    let comparable = |mut v: serde_json::Value| {
        v["elapsed"] = serde_json::json!(0);
        if let Some(d) = v["details"].as_object_mut() {
            d.remove("timings_ms");
            d.remove("read_from_text");
        }
        v
    };
    for (file, code) in [(&valid, 0), (&stale, 1)] {
        let (got, from_text) = verdict(&[], file);
        assert_eq!(got, Some(code), "{from_text}");
        assert_eq!(from_text["details"]["read_from_text"], true, "{from_text}");
        assert!(from_text["details"]["timings_ms"]["read"].as_f64().is_some(), "{from_text}");
        // The same file the whole way (`--html` reads the history).
        let page = dir.join(format!("page-{code}"));
        let (got, whole) = verdict(&["--html", page.to_str().unwrap_or_default()], file);
        assert_eq!(got, Some(code), "{whole}");
        assert_eq!(whole["details"].get("read_from_text"), None, "{whole}");
        assert_eq!(comparable(from_text), comparable(whole));
    }
}

#[test]
fn html_draws_the_failure() {
    let scratch_dir = scratch("html");
    let dir = scratch_dir.path().to_path_buf();
    let stale =
        generate(&dir, "stale.jsonl", &["--ops", "1000", "--seed", "5", "--corrupt", "stale-read"]);
    let page = dir.join("stale.html");
    let o = run(&[
        "check",
        "-m",
        "cas-register",
        stale.to_str().unwrap_or_default(),
        "--html",
        page.to_str().unwrap_or_default(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let html = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{e}"));
    assert!(html.contains("<svg") && html.contains("No linearization"), "{html}");
    // The SVG namespace URI is a name, not a fetch; nothing may be loaded.
    for fetch in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!html.contains(fetch), "the page must be self-contained, found {fetch}");
    }
}

#[test]
fn every_format_generated_is_read_back_with_the_same_verdict() {
    let scratch_dir = scratch("formats");
    let dir = scratch_dir.path().to_path_buf();
    for format in ["jsonl", "edn", "elle-json", "jepsen-log"] {
        let file = dir.join(format!("h.{format}"));
        let o = run(&[
            "generate",
            "-m",
            "cas-register",
            "--ops",
            "400",
            "--processes",
            "4",
            "--crash-rate",
            "0.05",
            "--seed",
            "9",
            "--corrupt",
            "stale-read",
            "--format",
            format,
            "-o",
            file.to_str().unwrap_or_default(),
        ]);
        assert!(o.status.success(), "{format}: {}", text(&o.stderr));
        let o = run(&["check", "-m", "cas-register", file.to_str().unwrap_or_default()]);
        assert_eq!(o.status.code(), Some(1), "{format}: {}", text(&o.stdout));
    }
    let kv = dir.join("kv.txt");
    let o = run(&[
        "generate",
        "-m",
        "kv",
        "--ops",
        "400",
        "--keys",
        "4",
        "--seed",
        "2",
        "--format",
        "porcupine-kv",
        "-o",
        kv.to_str().unwrap_or_default(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = run(&["check", "-m", "kv", kv.to_str().unwrap_or_default()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
}

/// Regression: `faultline check --json FILE | head` panicked in `println!`
/// once `head` had closed the pipe.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    let scratch_dir = scratch("pipe");
    let dir = scratch_dir.path().to_path_buf();
    let stale =
        generate(&dir, "stale.jsonl", &["--ops", "300", "--seed", "5", "--corrupt", "stale-read"]);
    for extra in [&["--json"][..], &[][..]] {
        // The reading end is closed before the command starts, so its first
        // write meets a broken pipe whatever the timing.
        let (reader, writer) = std::io::pipe().unwrap_or_else(|e| panic!("{e}"));
        drop(reader);
        let o = faultline()
            .args(["check", "-m", "cas-register"])
            .args(extra)
            .arg(&stale)
            .stdout(writer)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {}", text(&o.stderr));
        assert!(!text(&o.stderr).contains("panicked"), "{extra:?}: {}", text(&o.stderr));
    }
}

/// Regression: `--html` exited 254 ("nothing to draw") for a valid Elle
/// history; the page now shows the verdict and the exit code is the verdict's.
#[test]
fn html_of_a_valid_history_shows_the_verdict() {
    let scratch_dir = scratch("html-valid");
    let dir = scratch_dir.path().to_path_buf();
    let history = dir.join("append.jsonl");
    std::fs::write(
        &history,
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",1,1]]}\n\
         {\"process\":0,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"append\",1,1]]}\n\
         {\"process\":1,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"r\",1,null]]}\n\
         {\"process\":1,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"r\",1,[1]]]}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let page = dir.join("append.html");
    let o = run(&[
        "check",
        "--checker",
        "list-append",
        "--consistency-models",
        "strict-serializable",
        "--html",
        page.to_str().unwrap_or_default(),
        history.to_str().unwrap_or_default(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let html = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{e}"));
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains("append.jsonl: valid"), "{html}");
    assert!(html.contains("list-append: valid"), "{html}");
}

/// Every input that crashed a history reader under fuzzing (minimised, see
/// docs/fuzzing.md), and the ones found by reading the readers, run through
/// `faultline check`: an unreadable one exits 254 with an error naming the
/// file, one the fix made readable gets its verdict, and none panics (101)
/// or aborts (134).
#[test]
fn crash_inputs_from_fuzzing_exit_254_or_with_their_verdict() {
    let scratch_dir = scratch("fuzz-crashes");
    let dir = scratch_dir.path().to_path_buf();
    let nested =
        |open: &str, close: &str| format!("{}1{}", open.repeat(10_000), close.repeat(10_000));
    // The inputs the fixes made readable observe nothing of the register
    // (no ok read), so their verdict is unknown.
    const UNOBSERVED: i32 = 2;
    let cases: Vec<(&str, Vec<u8>, Option<&str>, i32)> = vec![
        // A `"` after an op: string skipping ran past the end (panic).
        ("stray-quote.edn", b"{:type :invoke, :f :read, :process 0}\"".to_vec(), None, 254),
        // Nesting 10,000 deep: the stack overflowed (abort).
        (
            "deep.edn",
            format!("{{:type :invoke, :f :write, :process 0, :value {}}}", nested("[", "]")).into(),
            None,
            254,
        ),
        (
            "deep.log",
            format!("INFO  jepsen.util - 0\t:invoke\t:write\t{}\n", nested("[", "]")).into(),
            None,
            254,
        ),
        (
            "deep.jsonl",
            format!("{{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":{}}}\n", nested("[", "]"))
                .into(),
            None,
            254,
        ),
        // `\u` before multi-byte characters: edn-format sliced them (panic).
        (
            "backslash-u.edn",
            "{:type :invoke, :f :write, :process 0, :value [\\u éé]}\n".into(),
            None,
            UNOBSERVED,
        ),
        // Metadata right after an op was blanked past its end (panic).
        (
            "metadata.edn",
            b"{:type :invoke, :f :read, :process 0}^:m\n{:type :ok, :f :read, :process 0}".to_vec(),
            None,
            UNOBSERVED,
        ),
        // Errors at column 0, past the end of a line, or with no line.
        ("empty.json", Vec::new(), Some("elle-json"), 254),
        ("not-an-op.json", b"[[]]".to_vec(), None, 254),
        (
            "char-newline.edn",
            b"{:type :invoke, :f :r, :process 0, :value [\\\n\\newline 1]}\n{:type :ok,\n :f :r, :x:y 1}"
                .to_vec(),
            None,
            254,
        ),
        ("inserts.edn", b"{:type :ok, :f :r, :process 0, :a\\u :b\\u\\u}".to_vec(), None, 254),
        // A big decimal written out digit by digit (out of memory).
        (
            "big-decimal.log",
            b"INFO  jepsen.util - 1\t:invoke\t:write\t777e000000000000000001697180946M\n".to_vec(),
            None,
            UNOBSERVED,
        ),
    ];
    for (name, bytes, format, expected) in cases {
        let path = dir.join(name);
        std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let mut args = vec!["check", "-m", "cas-register"];
        if let Some(f) = format {
            args.extend(["--format", f]);
        }
        args.push(path.to_str().unwrap_or_default());
        let o = run(&args);
        assert_eq!(o.status.code(), Some(expected), "{name}: {}", text(&o.stderr));
        if expected == 254 {
            assert!(text(&o.stderr).contains(name), "{name}: {}", text(&o.stderr));
        }
    }
}
