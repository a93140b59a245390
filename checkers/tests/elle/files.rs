//! Histories as Jepsen and elle-cli write them, read as they are: EDN
//! `history.edn` files and elle-cli JSON arrays, for both workloads.

use std::path::{Path, PathBuf};

use checkers::elle::Workload;
use checkers::elle::generate::{GenOptions, generate};
use checkers::formats::{self, Format};
use checkers::registry::{self, CheckSpec};
use checkers::{History, Validity};

use super::support::{check, found, set};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/elle").join(name)
}

fn read(name: &str) -> History {
    formats::read_path(&data(name), None).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn jepsen_edn_and_elle_cli_json_list_append_histories_read_as_is() {
    for name in ["jepsen-list-append.edn", "elle-cli-list-append.json"] {
        let text = std::fs::read_to_string(data(name)).expect("read");
        let expected = if name.ends_with(".edn") { Format::Edn } else { Format::ElleJson };
        assert_eq!(formats::detect(&text), Some(expected), "{name}");
        let h = read(name);
        let ser = check("list-append", &["serializable"], &[], &h);
        assert_eq!(ser.validity, Validity::Invalid, "{name}: {}", ser.to_text());
        assert_eq!(found(&ser), set(&["G2-item"]), "{name}: {}", ser.to_text());
        assert_eq!(ser.details["transactions"]["info"], 1, "{name}");
        assert_eq!(ser.details["transactions"]["fail"], 1, "{name}");
        let si = check("list-append", &["snapshot-isolation"], &[], &h);
        assert_eq!(si.validity, Validity::Valid, "{name}: {}", si.to_text());
    }
}

#[test]
fn jepsen_edn_and_elle_cli_json_rw_register_histories_read_as_is() {
    for name in ["jepsen-rw-register.edn", "elle-cli-rw-register.json"] {
        let h = read(name);
        let v = check("rw-register", &["serializable"], &[], &h);
        assert_eq!(v.validity, Validity::Invalid, "{name}: {}", v.to_text());
        assert_eq!(found(&v), set(&["G-single"]), "{name}: {}", v.to_text());
        let rc = check("rw-register", &["read-committed"], &[], &h);
        assert_eq!(rc.validity, Validity::Valid, "{name}: {}", rc.to_text());
    }
}

#[test]
fn every_format_we_write_reads_back_to_the_same_verdict() {
    let h = generate(&GenOptions {
        txns: 400,
        stale_read_rate: 0.02,
        seed: 11,
        ..GenOptions::default()
    });
    let reference = check("list-append", &["strict-serializable"], &[], &h);
    assert_eq!(reference.validity, Validity::Invalid, "seed 11 injects stale reads");
    for format in [Format::Jsonl, Format::Edn, Format::ElleJson] {
        let text = formats::write(&h, format);
        let back = formats::parse(&text, "roundtrip", Some(format)).expect("parse back");
        let v = check("list-append", &["strict-serializable"], &[], &back);
        assert_eq!(v.summary, reference.summary, "{format}");
        assert_eq!(v.anomalies, reference.anomalies, "{format}");
    }
}

#[test]
fn a_read_of_the_wrong_shape_is_an_error_naming_file_line_and_field() {
    let text = "{:type :invoke, :f :txn, :value [[:r 1 nil]], :process 0, :index 0}\n\
                {:type :ok, :f :txn, :value [[:r 1 5]], :process 0, :index 1}\n";
    let h = formats::parse(text, "bad.edn", Some(Format::Edn)).expect("parses as EDN");
    let spec = CheckSpec { checker: "list-append".into(), ..CheckSpec::default() };
    let err = registry::build(&spec).expect("build").check(&h).expect_err("a register read");
    let msg = err.to_string();
    assert!(msg.starts_with("bad.edn:2 (field `value`)"), "{msg}");
    assert!(msg.contains("list-append read returns a list"), "{msg}");
}

#[test]
fn bad_options_are_errors_that_list_what_is_known() {
    let build = |spec: CheckSpec| registry::build(&spec).err().map(|e| e.to_string());
    let spec = CheckSpec {
        checker: "list-append".into(),
        consistency_models: vec!["serialisable".into()],
        ..CheckSpec::default()
    };
    let msg = build(spec).expect("unknown model");
    assert!(
        msg.contains("unknown consistency model \"serialisable\"")
            && msg.contains("snapshot-isolation")
    );
    let mut spec = CheckSpec { checker: "list-append".into(), ..CheckSpec::default() };
    spec.options.insert("wfr-keys".into(), "true".into());
    let msg = build(spec).expect("register-only option");
    assert!(msg.contains("unknown option \"wfr-keys\" for the list-append checker"), "{msg}");
    let mut spec = CheckSpec { checker: "rw-register".into(), ..CheckSpec::default() };
    spec.options.insert("wfr-keys".into(), "maybe".into());
    assert!(build(spec).expect("bad flag").contains("expected true or false"));
}

#[test]
fn html_has_one_page_per_anomaly_type_with_a_drawing_of_each_cycle() {
    let h = read("jepsen-list-append.edn");
    let spec = CheckSpec {
        checker: "list-append".into(),
        consistency_models: vec!["serializable".into()],
        ..CheckSpec::default()
    };
    let checker = registry::build(&spec).expect("build");
    let v = checker.check(&h).expect("check");
    let pages = checker.render_html(&h, &v);
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].name, "G2-item");
    assert!(pages[0].body.contains("<svg"), "{}", pages[0].body);
    assert!(pages[0].body.contains(">rw</text>"));
    assert!(pages[0].body.contains("[:append 9 1]"));
    assert!(pages[0].body.contains("not repeatable-read"), "the lattice verdict is on the page");
    let register =
        generate(&GenOptions { txns: 50, workload: Workload::RwRegister, ..GenOptions::default() });
    let v = check("rw-register", &["strict-serializable"], &[], &register);
    assert!(checker.render_html(&register, &v).is_empty(), "a valid history draws nothing");
}
