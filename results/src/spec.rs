//! Test specifications: everything that defines a test run, from the command
//! line or a TOML file, written back in full (with the seed) as the run's
//! `test.toml` so the run can be replayed.
//!
//! The spec lives here, with the store, because `test.toml` is one of the
//! store's files: the harness writes it and reads it back to replay or
//! analyze a run, and the reports and `faultline serve` read it to say what
//! a run was. One type serves all of them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::error::StoreError;

type Result<T> = std::result::Result<T, StoreError>;

/// Which node-control runtime to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// Processes on loopback, links through the harness's proxies. No root.
    #[default]
    Local,
    /// Network namespaces on a bridge, firewall rules. Needs root.
    Netns,
    /// Remote hosts over SSH.
    Ssh,
    /// No processes at all: refstore's protocol cores in the deterministic
    /// simulation (`faultline sim`). A run directory whose `test.toml` says
    /// `runtime = "sim"` was simulated; `faultline test` refuses it.
    Sim,
}

impl RuntimeKind {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Local => "local",
            RuntimeKind::Netns => "netns",
            RuntimeKind::Ssh => "ssh",
            RuntimeKind::Sim => "sim",
        }
    }
}

impl std::str::FromStr for RuntimeKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "local" => Ok(RuntimeKind::Local),
            "netns" => Ok(RuntimeKind::Netns),
            "ssh" => Ok(RuntimeKind::Ssh),
            _ => Err(format!("unknown runtime {s:?}; use local, netns or ssh")),
        }
    }
}

/// SSH settings for the `ssh` runtime.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshSpec {
    /// The hosts, one per node, in node order (`host` or `host:port`).
    pub hosts: Vec<String>,
    /// The remote user.
    #[serde(default = "default_user")]
    pub user: String,
    /// The default port.
    #[serde(default = "default_ssh_port")]
    pub port: u16,
    /// The private key file.
    pub private_key: PathBuf,
    /// Run commands through `sudo -n` on the remote hosts.
    #[serde(default)]
    pub sudo: bool,
    /// Refuse hosts whose key is not in `known_hosts` (on by default).
    #[serde(default = "yes")]
    pub strict_host_key_checking: bool,
    /// The known-hosts file (default `~/.ssh/known_hosts`).
    #[serde(default)]
    pub known_hosts: Option<PathBuf>,
    /// Connection attempts before giving up.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Port clients use on each host.
    #[serde(default = "default_client_port")]
    pub client_port: u16,
    /// Port peers use on each host.
    #[serde(default = "default_peer_port")]
    pub peer_port: u16,
    /// Directory for the test's files on each host.
    #[serde(default = "default_remote_dir")]
    pub remote_dir: PathBuf,
}

fn default_user() -> String {
    "root".into()
}
fn default_ssh_port() -> u16 {
    22
}
fn yes() -> bool {
    true
}
fn default_retries() -> u32 {
    5
}
fn default_client_port() -> u16 {
    7700
}
fn default_peer_port() -> u16 {
    7800
}
fn default_remote_dir() -> PathBuf {
    PathBuf::from("/tmp/faultline")
}

/// The nemesis name that stands for the target's own choice of faults.
pub const DEFAULT_NEMESIS: &str = "default";

/// A full test specification. Every field has a default, so an empty file
/// (or `faultline test` with no arguments) is a sensible test: refstore in
/// raft mode, five local nodes, the register workload for 30 seconds under
/// the faults the target picks for the mode (raft: partitions, kills and
/// pauses).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestSpec {
    /// The test's name (the store folder); derived from the rest when empty.
    pub name: String,
    /// The target system (`refstore`, or a plugin's).
    pub target: String,
    /// The target's mode (refstore: `raft`, `async`, `multi-leader`...).
    pub mode: String,
    /// The workload.
    pub workload: String,
    /// Nemesis packages; empty (or `["none"]`) runs without faults;
    /// `default` (the default) stands for the faults the target picks for
    /// its mode, and is replaced by them before the run starts.
    pub nemesis: Vec<String>,
    /// Seconds between fault operations.
    pub nemesis_interval: f64,
    /// Number of nodes.
    pub nodes: u32,
    /// Seconds of the main phase.
    pub time_limit: f64,
    /// Client threads; 0 means nodes × 2.
    pub concurrency: u32,
    /// Total client operations per second; 0 means as fast as possible.
    pub rate: f64,
    /// Per-operation timeout in milliseconds (then `info`).
    pub op_timeout_ms: u64,
    /// Seconds to wait after healing before the final reads.
    pub recovery: f64,
    /// The node-control runtime.
    pub runtime: RuntimeKind,
    /// The seed of every random choice; chosen at random and printed when absent.
    pub seed: Option<u64>,
    /// Where runs are stored.
    pub store: PathBuf,
    /// The faultline executable to run nodes with (default: this one).
    pub binary: Option<PathBuf>,
    /// SSH settings (for `runtime = "ssh"`).
    pub ssh: Option<SshSpec>,
    /// Workload, target, nemesis and checker options (`key = value`). Each
    /// goes to every component that reads it; an option none reads is
    /// refused before the run starts.
    pub options: BTreeMap<String, String>,
    /// The checkers that judge the run: empty for the workload's own;
    /// `default` stands for those, so `["default", "stats"]` adds one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checkers: Vec<String>,
    /// Consistency models for every checker that takes them (the
    /// workload's own included), overriding the workload's choice.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub consistency_models: Vec<String>,
    /// The model for checkers named in `checkers` that take one
    /// (`linearizable`: `cas-register`, `set`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The campaign this run belongs to, when a campaign ran it; `faultline
    /// serve` compares a campaign's runs side by side.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub campaign: String,
    /// The options some component has read so far (not part of the spec).
    #[serde(skip)]
    pub options_read: OptionsRead,
}

/// The names of the options components have read from a spec, so that an
/// option nothing reads (a typo, or an option of another workload) is
/// refused instead of silently ignored. Shared by the spec's clones, since
/// a component may read options from a copy; never compared or printed.
#[derive(Clone, Default)]
pub struct OptionsRead(Arc<Mutex<BTreeSet<String>>>);

impl OptionsRead {
    fn note(&self, key: &str) {
        // A poisoned lock only means another reader panicked; the set of
        // names is still whole.
        let mut read = self.0.lock().unwrap_or_else(|e| e.into_inner());
        read.insert(key.to_owned());
    }

    /// The names read so far.
    pub fn names(&self) -> BTreeSet<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl PartialEq for OptionsRead {
    fn eq(&self, _: &OptionsRead) -> bool {
        true
    }
}

impl std::fmt::Debug for OptionsRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OptionsRead")
    }
}

impl Default for TestSpec {
    fn default() -> TestSpec {
        TestSpec {
            name: String::new(),
            target: "refstore".into(),
            mode: "raft".into(),
            workload: "register".into(),
            nemesis: vec![DEFAULT_NEMESIS.into()],
            nemesis_interval: 5.0,
            nodes: 5,
            time_limit: 30.0,
            concurrency: 0,
            rate: 200.0,
            op_timeout_ms: 2000,
            recovery: 5.0,
            runtime: RuntimeKind::Local,
            seed: None,
            store: PathBuf::from("store"),
            binary: None,
            ssh: None,
            options: BTreeMap::new(),
            checkers: Vec::new(),
            consistency_models: Vec::new(),
            model: None,
            campaign: String::new(),
            options_read: OptionsRead::default(),
        }
    }
}

impl TestSpec {
    /// Reads a spec from a TOML file; errors name the file and field.
    pub fn from_file(path: &Path) -> Result<TestSpec> {
        let text = std::fs::read_to_string(path).map_err(|e| StoreError::io(path, e))?;
        TestSpec::from_toml(&text, &path.display().to_string())
    }

    /// Parses a spec from TOML text read from `source`.
    pub fn from_toml(text: &str, source: &str) -> Result<TestSpec> {
        let spec: TestSpec = from_toml_text(text, source)?;
        spec.validate(source)?;
        Ok(spec)
    }

    /// The spec as TOML, for `test.toml`.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# could not write the spec: {e}\n"))
    }

    /// Checks ranges and combinations; errors name the field.
    pub fn validate(&self, source: &str) -> Result<()> {
        let bad = |field: &str, msg: String| Err(StoreError::spec(source, field, msg));
        if self.nodes == 0 || self.nodes > 64 {
            return bad("nodes", format!("must be between 1 and 64, not {}", self.nodes));
        }
        if !(self.time_limit.is_finite() && self.time_limit > 0.0) {
            return bad(
                "time_limit",
                format!("must be a positive number of seconds, not {}", self.time_limit),
            );
        }
        if !(self.rate.is_finite() && self.rate >= 0.0) {
            return bad("rate", format!("must be 0 (unlimited) or positive, not {}", self.rate));
        }
        if !(self.nemesis_interval.is_finite() && self.nemesis_interval > 0.0) {
            return bad(
                "nemesis_interval",
                format!("must be positive, not {}", self.nemesis_interval),
            );
        }
        if !(self.recovery.is_finite() && self.recovery >= 0.0) {
            return bad("recovery", format!("must be 0 or positive, not {}", self.recovery));
        }
        if self.seed.is_some_and(|s| s > i64::MAX as u64) {
            return bad("seed", "must be below 2^63 (TOML integers are signed)".into());
        }
        if self.op_timeout_ms == 0 {
            return bad("op_timeout_ms", "must be positive".into());
        }
        if self.concurrency > 4096 {
            return bad(
                "concurrency",
                format!("{} threads is too many (at most 4096)", self.concurrency),
            );
        }
        if self.runtime == RuntimeKind::Ssh {
            match &self.ssh {
                None => {
                    return bad(
                        "ssh",
                        "the ssh runtime needs an [ssh] table with hosts and private_key".into(),
                    );
                }
                Some(s) if s.hosts.len() != self.nodes as usize => {
                    return bad(
                        "ssh.hosts",
                        format!(
                            "{} hosts for {} nodes; give one host per node",
                            s.hosts.len(),
                            self.nodes
                        ),
                    );
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The number of client threads.
    pub fn client_threads(&self) -> u32 {
        if self.concurrency == 0 { self.nodes * 2 } else { self.concurrency }
    }

    /// The nemesis packages to run (empty for none).
    pub fn nemeses(&self) -> Vec<&str> {
        self.nemesis.iter().map(String::as_str).filter(|n| *n != "none" && !n.is_empty()).collect()
    }

    /// The test's name, derived from target, mode (refstore's), workload
    /// and faults when not given.
    pub fn test_name(&self) -> String {
        if !self.name.is_empty() {
            return sanitize(&self.name);
        }
        let faults = self.nemeses();
        let faults = if faults.is_empty() { "none".to_owned() } else { faults.join("+") };
        // Only refstore has modes; an external target's spec still carries
        // the default one, which would name an etcd run `etcd-raft-...`.
        if self.target == "refstore" {
            let mode = match self.injected_bug() {
                Some(bug) => format!("{}-bug-{bug}", self.mode),
                None => self.mode.clone(),
            };
            sanitize(&format!("{}-{}-{}-{}", self.target, mode, self.workload, faults))
        } else {
            sanitize(&format!("{}-{}-{}", self.target, self.workload, faults))
        }
    }

    /// An option's text, when given; the option counts as read.
    pub fn option_text(&self, key: &str) -> Option<&str> {
        self.options_read.note(key);
        self.options.get(key).map(String::as_str)
    }

    /// The options given that no component has read so far.
    pub fn options_unread(&self) -> Vec<&str> {
        let read = self.options_read.names();
        self.options.keys().map(String::as_str).filter(|k| !read.contains(*k)).collect()
    }

    /// An option, parsed, or `default` when absent; errors name the option.
    /// The option counts as read.
    pub fn option<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.option_text(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| {
                StoreError::spec("test spec", format!("options.{key}"), format!("{v:?}: {e}"))
            }),
        }
    }
}

impl TestSpec {
    /// The system under test with its mode, for people (`refstore raft`),
    /// and the bug injected into it, if any, so that no report or index
    /// shows a deliberately broken run as the mode's real behaviour.
    pub fn target_label(&self) -> String {
        let label = if self.mode.is_empty() || self.mode == self.target {
            self.target.clone()
        } else {
            format!("{} {}", self.target, self.mode)
        };
        match self.injected_bug() {
            Some(bug) => format!("{label} with injected bug {bug}"),
            None => label,
        }
    }

    /// The bug deliberately injected into the target (`options.bug`, which a
    /// target that can inject bugs reads and checks), if any. Looking does
    /// not count as reading the option.
    pub fn injected_bug(&self) -> Option<&str> {
        self.options.get("bug").map(String::as_str)
    }

    /// The command that replays this run.
    pub fn replay_command(&self, spec_path: &str) -> String {
        format!("faultline test -f {spec_path}")
    }
}

/// A run's `test.toml` as stored: its text, shown verbatim in reports, and
/// the spec it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct SpecFile {
    /// The file's text as written.
    pub text: String,
    /// The spec.
    pub spec: TestSpec,
}

impl SpecFile {
    /// Reads `path`; `Ok(None)` when the file does not exist. A file that
    /// does not parse is an error naming its line and field.
    pub fn read(path: &Path) -> Result<Option<SpecFile>> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let spec = TestSpec::from_toml(&text, &path.display().to_string())?;
                Ok(Some(SpecFile { text, spec }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }
}

/// A name safe for a path component.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || "-_.+".contains(c) { c } else { '_' })
        .collect()
}

/// Names the field a TOML error is about, when its message quotes one.
/// Parses TOML `text` read from `source` into `T`; an error names the
/// source, the line and the field (test files, campaign files).
pub fn from_toml_text<T: serde::de::DeserializeOwned>(text: &str, source: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .map_or(String::new(), |l| format!(":{l}"));
        StoreError::spec(format!("{source}{line}"), field_of(e.message()), e.message())
    })
}

fn field_of(message: &str) -> String {
    for (open, close) in [("field `", '`'), ("`", '`')] {
        if let Some(start) = message.find(open) {
            let rest = &message[start + open.len()..];
            if let Some(end) = rest.find(close) {
                return rest[..end].to_owned();
            }
        }
    }
    "(spec)".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default_campaign() {
        let spec = TestSpec::from_toml("", "t.toml").expect("parse");
        assert_eq!(spec, TestSpec::default());
        assert_eq!(spec.test_name(), "refstore-raft-register-default");
        // `default` faults are resolved by the harness before a run is named.
        assert_eq!(spec.client_threads(), 10);
    }

    #[test]
    fn round_trips_through_toml() {
        let mut spec = TestSpec { seed: Some(42), mode: "async".into(), ..TestSpec::default() };
        spec.options.insert("keys".into(), "3".into());
        let back = TestSpec::from_toml(&spec.to_toml(), "w.toml").expect("parse");
        assert_eq!(back, spec);
    }

    #[test]
    fn unknown_field_names_file_line_and_field() {
        let err =
            TestSpec::from_toml("nodes = 3\nnodez = 5\n", "t.toml").expect_err("bad").to_string();
        assert!(err.starts_with("t.toml:2: field `nodez`"), "{err}");
    }

    #[test]
    fn bad_value_names_the_field() {
        let err = TestSpec::from_toml("nodes = 0\n", "t.toml").expect_err("bad").to_string();
        assert!(err.contains("field `nodes`"), "{err}");
        let err =
            TestSpec::from_toml("runtime = \"ssh\"\n", "t.toml").expect_err("bad").to_string();
        assert!(err.contains("field `ssh`"), "{err}");
    }

    #[test]
    fn an_injected_bug_is_named_in_the_test_name_and_the_target_label() {
        let mut spec = TestSpec::from_toml("", "t.toml").expect("parse");
        spec.options.insert("bug".into(), "ack-before-commit".into());
        assert_eq!(spec.test_name(), "refstore-raft-bug-ack-before-commit-register-default");
        assert_eq!(spec.target_label(), "refstore raft with injected bug ack-before-commit");
        assert!(spec.options_unread().contains(&"bug"), "naming a run does not read the option");
    }
}
