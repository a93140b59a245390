//! A tolerant view of a run's `test.toml`.
//!
//! The harness owns the schema of `test.toml`; the store only needs a few
//! facts from it (name, seed, workload, target, faults, how to replay) and
//! must keep reading runs written by older or newer harnesses. So the file is
//! kept as an opaque TOML table and each fact is looked up under the few
//! names and shapes a spec can reasonably use, at the top level or under a
//! `[test]` table. A missing fact is `None`, never an error.

use std::path::Path;

use crate::error::StoreError;

/// The parsed `test.toml` of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TestSpec {
    /// The whole file as TOML, for facts this module does not know about.
    pub table: toml::Table,
    /// The file's text as written, shown verbatim in reports.
    pub text: String,
}

impl TestSpec {
    /// Parses the text of a `test.toml` (`path` is for error messages).
    pub fn parse(text: &str, path: &Path) -> Result<TestSpec, StoreError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            StoreError::Toml {
                path: path.to_owned(),
                line: line.unwrap_or(0),
                message: e.message().trim().to_owned(),
            }
        })?;
        Ok(TestSpec { table, text: text.to_owned() })
    }

    /// Reads `path`; `Ok(None)` when the file does not exist.
    pub fn read(path: &Path) -> Result<Option<TestSpec>, StoreError> {
        match std::fs::read_to_string(path) {
            Ok(text) => TestSpec::parse(&text, path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    /// Looks a key up at the top level, then under `[test]`.
    fn get(&self, key: &str) -> Option<&toml::Value> {
        self.table
            .get(key)
            .or_else(|| self.table.get("test").and_then(|t| t.as_table()).and_then(|t| t.get(key)))
    }

    /// The first of `keys` that holds a string (or a table with a `name`).
    fn name_of(&self, keys: &[&str]) -> Option<String> {
        keys.iter().find_map(|k| self.get(k).and_then(name_in))
    }

    /// The test's name.
    pub fn name(&self) -> Option<String> {
        self.name_of(&["name"])
    }

    /// The seed that replays the run's schedule.
    pub fn seed(&self) -> Option<String> {
        self.get("seed").and_then(|v| match v {
            toml::Value::Integer(i) => Some(i.to_string()),
            toml::Value::String(s) => Some(s.clone()),
            _ => None,
        })
    }

    /// The workload (`register`, `list-append`, `set`...).
    pub fn workload(&self) -> Option<String> {
        self.name_of(&["workload"])
    }

    /// The system under test, with its mode when one is given (`refstore raft`).
    pub fn target(&self) -> Option<String> {
        let target = self.name_of(&["target", "db"])?;
        let mode = self.get("mode").and_then(name_in).or_else(|| {
            self.get("target")
                .and_then(|t| t.as_table())
                .and_then(|t| t.get("mode"))
                .and_then(name_in)
        });
        Some(match mode {
            Some(m) if m != target => format!("{target} {m}"),
            _ => target,
        })
    }

    /// The fault kinds the nemesis injects; empty when none are named.
    /// `none` (the spelling for a run without faults) gives an empty list.
    pub fn faults(&self) -> Vec<String> {
        let Some(v) = self.get("nemesis").or_else(|| self.get("faults")) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        collect_names(v, &mut out);
        out.retain(|n| !n.is_empty() && n != "none");
        out
    }

    /// The campaign this run belongs to, when the spec names one.
    pub fn campaign(&self) -> Option<String> {
        self.name_of(&["campaign"])
    }

    /// The command that replays this run, when the harness recorded one.
    pub fn replay_command(&self) -> Option<String> {
        ["replay", "replay_command", "replay-command", "command"]
            .iter()
            .find_map(|k| self.get(k).and_then(|v| v.as_str()).map(str::to_owned))
    }

    /// The checkers the spec asks for, by name (strings, or tables with a `name`/`checker`).
    pub fn checkers(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(v) = self.get("checkers").or_else(|| self.get("checker")) {
            collect_names(v, &mut out);
        }
        out
    }
}

/// A string, or the `name` (or `kind`/`checker`) of a table.
fn name_in(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Table(t) => ["name", "kind", "checker", "type"]
            .iter()
            .find_map(|k| t.get(*k).and_then(|v| v.as_str()).map(str::to_owned)),
        _ => None,
    }
}

/// Names from a string (comma-separated), an array, or a table: the table's
/// own name, or else its `faults`/`kinds` list, or else its keys (as in
/// `[nemesis.partition]`, `[nemesis.kill]`).
fn collect_names(v: &toml::Value, out: &mut Vec<String>) {
    match v {
        toml::Value::String(s) => out.extend(s.split(',').map(|p| p.trim().to_owned())),
        toml::Value::Array(items) => {
            for item in items {
                collect_names(item, out);
            }
        }
        toml::Value::Table(t) => {
            if let Some(list) = ["faults", "kinds"].iter().find_map(|k| t.get(*k)) {
                collect_names(list, out);
            } else if let Some(n) = name_in(v) {
                out.push(n);
            } else {
                out.extend(t.keys().cloned());
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> TestSpec {
        TestSpec::parse(text, Path::new("test.toml")).expect("parse")
    }

    #[test]
    fn reads_flat_specs() {
        let s = spec(
            "name = \"reg\"\nseed = 42\nworkload = \"register\"\ntarget = \"refstore\"\n\
             mode = \"raft\"\nnemesis = \"partition,kill\"\n",
        );
        assert_eq!(s.name().as_deref(), Some("reg"));
        assert_eq!(s.seed().as_deref(), Some("42"));
        assert_eq!(s.workload().as_deref(), Some("register"));
        assert_eq!(s.target().as_deref(), Some("refstore raft"));
        assert_eq!(s.faults(), vec!["partition", "kill"]);
    }

    #[test]
    fn reads_nested_specs_and_tolerates_missing_fields() {
        let s = spec(
            "[test]\nname = \"la\"\n[target]\nname = \"etcd\"\n[workload]\nname = \"list-append\"\n\
             [nemesis.partition]\ninterval = 5\n[nemesis.kill]\n",
        );
        assert_eq!(s.name().as_deref(), Some("la"));
        assert_eq!(s.target().as_deref(), Some("etcd"));
        assert_eq!(s.workload().as_deref(), Some("list-append"));
        assert_eq!(s.faults(), vec!["kill", "partition"]);
        assert_eq!(s.seed(), None);
        assert_eq!(s.replay_command(), None);
        assert!(spec("nemesis = \"none\"").faults().is_empty());
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let err = TestSpec::parse("name = \"x\"\nseed = = 3\n", Path::new("run/test.toml"))
            .expect_err("bad toml")
            .to_string();
        assert!(err.starts_with("run/test.toml:2:"), "{err}");
    }
}
