//! History readers on the shapes other tools write: the examples that ship
//! with elle-cli, Elle and Jepsen's own tests, written anew here in the same
//! shape (our own data, not copies), and regressions found by fuzzing.

use checkers::HistoryError;
use checkers::formats::{self, Format};
use checkers::registry::{self, CheckSpec};
use checkers::{Process, Validity, judge};

fn spec(checker: &str) -> CheckSpec {
    CheckSpec { checker: checker.to_owned(), ..CheckSpec::default() }
}

/// Jepsen's long-fork tests write ops with `:type`, `:f` and `:value` and no
/// `:process` (as does elle-cli's `long-fork.edn`). They load as one
/// process, and the verdict says so.
#[test]
fn long_fork_ops_without_process_load_and_the_verdict_says_how() {
    let text = "\
{:type :invoke, :f :write, :value [[:w 10 1]]}
{:type :ok, :f :write, :value [[:w 10 1]]}
{:type :invoke, :f :write, :value [[:w 11 1]]}
{:type :ok, :f :write, :value [[:w 11 1]]}
{:type :invoke, :f :read, :value [[:r 10 nil] [:r 11 nil]]}
{:type :ok, :f :read, :value [[:r 10 1] [:r 11 nil]]}
{:type :invoke, :f :read, :value [[:r 11 nil] [:r 10 nil]]}
{:type :ok, :f :read, :value [[:r 11 1] [:r 10 nil]]}
";
    let history = formats::parse(text, "long-fork.edn", None).expect("loads");
    assert!(history.ops().iter().all(|o| o.process == Process::Client(0)));
    let checker = registry::build(&spec("long-fork")).expect("checker");
    let verdict = judge(checker.as_ref(), &history).expect("judged");
    assert_eq!(verdict.validity, Validity::Invalid, "{}", verdict.to_text());
    assert_eq!(
        verdict.notes,
        ["long-fork.edn: 8 ops have no :process; read as one process, 0, as Jepsen does"]
    );
}

/// Elle's `paper-example.edn` (and elle-cli's list-append examples): op maps
/// with `:index`, `:process`, `:type` and a transaction, and no `:f`.
#[test]
fn elle_paper_example_shape_loads_as_transactions() {
    let text = "\
{:index 0 :process 1 :type :invoke  :value [[:append 7 1] [:append 8 1]]}
{:index 1 :process 1 :type :ok      :value [[:append 7 1] [:append 8 1]]}
{:index 2 :process 1 :type :invoke, :value [[:append 8 2] [:r 7 nil]]}
{:index 3 :process 1 :type :ok,     :value [[:append 8 2] [:r 7 [1]]]}
";
    assert_eq!(formats::detect(text), Some(Format::Edn));
    let history = formats::parse(text, "paper-example.edn", None).expect("loads");
    assert!(history.ops().iter().all(|o| o.f == "txn"));
    let checker = registry::build(&spec("list-append")).expect("checker");
    let verdict = judge(checker.as_ref(), &history).expect("judged");
    assert_eq!(verdict.validity, Validity::Valid, "{}", verdict.to_text());
    assert!(verdict.notes.is_empty());
}

/// elle-cli's hand-written EDN examples: `:index` but no `:process`, a
/// set read spread over several lines.
#[test]
fn elle_cli_indexed_ops_without_process_load() {
    let text = "\
{:index 1, :type :invoke :f :add    :value 3}
{:index 2, :type :ok     :f :add    :value 3}
{:index 3, :type :invoke :f :read   :value nil}
{:index 4, :type :ok     :f :read   :value #{1 2 3
                                             4 5}}
";
    let history = formats::parse(text, "comments.edn", None).expect("loads");
    assert_eq!(history.len(), 4);
    assert_eq!(history.locate(3).line, Some(4));
    assert_eq!(history.notes().len(), 1);
}

// Found by fuzzing (`fuzz/`, see docs/fuzzing.md): each input is the
// minimised crash, read through the function `read_path` uses.

fn read(bytes: &[u8], format: Option<Format>) -> Result<checkers::History, HistoryError> {
    formats::parse_bytes(bytes, "fuzz.edn", format)
}

/// Metadata written right after an op (no space) was blanked as part of
/// that op, whose text it lies outside of: slicing past its end panicked.
#[test]
fn metadata_right_after_an_op_belongs_to_the_next_one() {
    let h = read(b"{:type :invoke, :f :r, :process 0}^:m\n{:type :ok, :f :r, :process 0}", None)
        .expect("reads");
    assert_eq!(h.len(), 2);
    let h = read(b"[{:type :invoke, :f :r, :process 0, :value 12345678901234567890123}#_x]", None)
        .expect("reads");
    assert!(h.ops()[0].value.to_string().contains("12345678901234567890123"));
}
/// serde_json counts columns in bytes and from 0 at the start of a line
/// (and JSONL lines were trimmed before parsing), so JSON errors named
/// column 0, or columns past the end of lines with multi-byte characters.
/// Every reader now counts characters from 1, from the start of the line,
/// and the message no longer repeats serde_json's own position.
#[test]
fn json_error_columns_count_characters_from_one() {
    let cases: [(&[u8], Option<Format>, &str); 3] = [
        (
            b"",
            Some(Format::ElleJson),
            "fuzz.edn:1:1: expected a JSON array of operation objects, found EOF while parsing a \
             value",
        ),
        (
            b"[{\"process\":0,\"type\":\"invoke\",\n\"f\":\"a\nb\"}]",
            None,
            "fuzz.edn:3:1: expected a JSON array of operation objects, found control character \
             (\\u0000-\\u001F) found while parsing a string",
        ),
        (
            b"{\"process\":0,\"type\":\"invoke\"}\n   {\"process\":0,\"f\":\"\xc3\xa9\xc3\xa9\",\"type\":\"done\"}\n",
            None,
            "fuzz.edn:2:38: expected one operation per line: a JSON object with at least \
             \"process\" and \"type\" (see docs/history-format.md), found unknown variant `done`, \
             expected one of `invoke`, `ok`, `fail`, `info`",
        ),
    ];
    for (bytes, format, expected) in cases {
        let err = read(bytes, format).expect_err("bad JSON").to_string();
        assert_eq!(err, expected);
    }
}

/// The elle-cli reader found each op's line by counting the objects in the
/// array, so an element that is not an object (reported as the error) had
/// no line, or the line of another element.
#[test]
fn an_element_that_is_not_an_op_is_reported_at_its_line() {
    let err = read(b"[[]]", Some(Format::ElleJson)).expect_err("not an op").to_string();
    assert_eq!(err, "fuzz.edn:1: expected an operation object, found []");
    let text = b"[{\"process\":0,\"type\":\"invoke\"},\n 7,\n {\"process\":0,\"type\":\"ok\"}]";
    let err = read(text, None).expect_err("not an op").to_string();
    assert_eq!(err, "fuzz.edn:2: expected an operation object, found 7");
}

/// edn-format does not count what follows the backslash of a character
/// literal, so after `\` and a newline its line was one short and its
/// columns ran past the end of the line; positions are now recounted.
#[test]
fn errors_after_character_literals_are_at_their_line_and_column() {
    let text = b"{:type :invoke, :f :r, :process 0, :value [\\\n\\newline 1]}\n\
                 {:type :ok,\n :f :r, :x:y 1, :process 0}";
    let err = read(text, None).expect_err("bad keyword").to_string();
    assert_eq!(
        err,
        "fuzz.edn:4:12: expected an EDN op map, found Cannot have more a colon in a keyword"
    );
    let text = b"{:type :invoke, :f :r, :value [\\space \\u0041 \\a \\\n], :process 0, :f 1}";
    let err = read(text, None).expect_err("duplicate key").to_string();
    assert_eq!(err, "fuzz.edn:2:19: expected an EDN op map, found Duplicate key in a map: :f");
}

/// A big decimal with a large exponent (`777e1697180946M`) was written out
/// digit by digit to become a float: gigabytes, then out of memory. It is
/// now the float its digits and exponent make, and error messages show such
/// values with their exponent.
#[test]
fn big_decimals_with_huge_exponents_stay_small() {
    let h = read(b"INFO  jepsen.util - 1\t:ok\t:read\t777e000000000000000001697180946M\n", None)
        .expect("reads");
    assert_eq!(h.ops()[0].value, checkers::Value::Float(checkers::value::Float(f64::INFINITY)));
    let h =
        read(b"{:type :ok, :f :r, :process 0, :value [1.5M 7e-1697180946M]}", None).expect("reads");
    assert_eq!(h.ops()[0].value.to_string(), "[1.5 0.0]");
    let err = read(b"{:type :ok, :f :r, :process 1e1000000000M}", None).expect_err("bad process");
    assert!(err.to_string().len() < 200, "{err}");
}

/// Several insertions on one line (`\u` is spelt `\u0075` for edn-format)
/// were taken off an error's column one by one, each compared with the
/// column already shifted, so the later ones were missed.
#[test]
fn errors_after_several_rewritten_literals_keep_their_column() {
    let text = b"{:type :ok, :f :r, :process 0, :a\\u :b\\u\\u}";
    let err = read(text, None).expect_err("odd map").to_string();
    assert_eq!(
        err,
        "fuzz.edn:1:42: expected an EDN op map, found Map must have an even number of elements"
    );
}

/// edn-format strips a comment wherever it sees `;`, even right after the
/// backslash of a character literal, so `\;` (the character `;`) swallowed
/// the rest of its line; and it reads a comment that follows an atom as
/// part of the atom, so `1;c` then `2` on the next line read as `12`.
/// Comments in an op are now blanked out before it parses, and `\;` is
/// spelt `\u003b`.
#[test]
fn semicolons_in_character_literals_and_comments_after_atoms() {
    let h = read(b"{:type :ok, :f :r, :process 0, :value [\\; 1;c\n2]}", None).expect("reads");
    assert_eq!(h.ops()[0].value.to_string(), "[\";\" 1 2]");
    let err = read(b"{:type :ok, :f :r, :process 0, :value [\\; 1x]}\n{:a\\;, 1ss 1}", None)
        .expect_err("bad int")
        .to_string();
    assert_eq!(
        err,
        "fuzz.edn:1:44: expected an EDN op map, found Invalid int 1x: invalid digit found in string"
    );
    let err = read(b"{:type :ok, :f :r, :process 0}\n{:a\\;, 1ss 1}", None).expect_err("bad int");
    assert_eq!(
        err.to_string(),
        "fuzz.edn:2:10: expected an EDN op map, found Invalid int 1ss: invalid digit found in string"
    );
}

/// edn-format compares big decimals by scaling one to the other's
/// exponent, so two of them in a set, one with the exponent 30090123456789012,
/// never finished (a timeout). A big decimal becomes a float in a history
/// anyway, so it is now read as the float.
#[test]
fn big_decimals_with_far_apart_exponents_in_a_set_read_at_once() {
    let h = read(b"INFO  jepsen.util - 0\t:ok\t:read\t#{3.5e30090123456789012M 2M -7.25M}\n", None)
        .expect("reads");
    assert_eq!(h.ops()[0].value.to_string(), "#{-7.25 2.0 inf}");
}

/// Every EDN history under `tests/` (golden files and data) reads the same
/// through the fast reader `faultline check` runs as through the general
/// reader alone: the same ops at the same lines with the same notes, or the
/// same error.
#[test]
fn fast_and_general_edn_readers_agree_on_every_edn_file() {
    fn collect(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                collect(&path, out);
            } else if path.extension().is_some_and(|e| e == "edn") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    collect(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests"), &mut files);
    assert!(files.len() >= 50, "found only {} EDN files", files.len());
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read");
        let source = path.display().to_string();
        let fast = formats::parse(&text, &source, Some(Format::Edn));
        let general = formats::parse_edn_general(&text, &source);
        match (fast, general) {
            (Ok(a), Ok(b)) => {
                assert!(a.ops() == b.ops(), "{source}: different ops");
                for i in 0..a.len() {
                    assert_eq!(a.locate(i), b.locate(i), "{source}: op {i}");
                }
                let notes = |h: &checkers::History| {
                    h.notes().iter().map(|n| n.text.clone()).collect::<Vec<_>>()
                };
                assert_eq!(notes(&a), notes(&b), "{source}");
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{source}"),
            (a, b) => panic!("{source}: the readers disagree: {:?} / {:?}", a.err(), b.err()),
        }
    }
}

/// A file large enough to be read block by block (several MB) reads from
/// its first byte in every format, detected or given: telling its format
/// reads its first kilobytes, and a reader that went on from there lost
/// them (a JSONL file of 64 MB or more was once read from its 65,537th
/// byte). Porcupine's kv op maps are EDN, and read block by block too.
#[test]
fn a_large_file_reads_from_its_first_byte_in_every_format() {
    use checkers::linear::ModelName;
    use checkers::synth::{self, SynthSpec};
    let mut spec = SynthSpec::new(ModelName::CasRegister, 7);
    spec.ops = 60_000;
    spec.keys = 5;
    let history = synth::generate(&spec);
    let dir = tempfile::tempdir().expect("temporary directory");
    for format in [Format::Jsonl, Format::Edn, Format::PorcupineKv] {
        let text = formats::write(&history, format);
        assert!(text.len() > 6 << 20, "{format:?}: {} bytes", text.len());
        let path = dir.path().join(format!("h.{}", format.name()));
        std::fs::write(&path, &text).expect("written");
        let whole = formats::parse(&text, "h", Some(format)).expect("parses");
        for given in [None, Some(format)] {
            let read = formats::read_path(&path, given)
                .unwrap_or_else(|e| panic!("{format:?}, given {given:?}: {e}"));
            assert_eq!(read.ops(), whole.ops(), "{format:?}, given {given:?}");
            assert_eq!(read.locate(read.len() - 1).line, whole.locate(whole.len() - 1).line);
        }
    }
}
