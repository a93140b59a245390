//! History readers on the shapes other tools write: the examples that ship
//! with elle-cli, Elle and Jepsen's own tests, written anew here in the same
//! shape (our own data, not copies), and regressions found by fuzzing.

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
