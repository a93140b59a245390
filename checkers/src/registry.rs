//! The checker table: every checker by name, with what it accepts and how
//! to build it.
//!
//! One table serves every front end: `faultline check`, a test's checks,
//! `analyze`, `compose` and the report pages all resolve checker names
//! through a [`CheckerTable`]. [`CheckerTable::builtin`] holds the checkers
//! that ship with faultline; a plugin registers its own into the same table
//! (the harness's `Registry` holds one), so a plugin checker is reachable
//! everywhere a built-in one is.
//!
//! Each entry says what it [`Accepts`]: which models, whether an initial
//! value, consistency models or `--independent` mean anything to it, and
//! which `--opt` keys it reads. [`CheckerTable::build`] refuses anything
//! else with an error naming what the checker does take, so a flag is never
//! silently ignored.

use std::sync::Arc;

use crate::elle::{Elle, Workload};
use crate::error::CheckError;
use crate::linear::{Algorithm, LinearChecker, ModelName};
use crate::verdict::{Checker, Compose};

pub use crate::spec::{Accepts, CheckSpec, OptionDoc, parse_bool};

/// Builds a checker from a spec the table has already validated. It gets
/// the table too, so a checker made of other checkers (`compose`) can build
/// them by name.
pub type Factory =
    Arc<dyn Fn(&CheckSpec, &CheckerTable) -> Result<Box<dyn Checker>, CheckError> + Send + Sync>;

/// One checker in the table.
#[derive(Clone)]
pub struct CheckerEntry {
    /// The name users give (`linearizable`).
    pub name: String,
    /// One line saying what it checks.
    pub description: String,
    /// Other names that reach it (`linearizability`).
    pub aliases: Vec<String>,
    /// What it reads from a spec.
    pub accepts: Accepts,
    factory: Factory,
}

impl std::fmt::Debug for CheckerEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckerEntry")
            .field("name", &self.name)
            .field("description", &self.description)
            .field("accepts", &self.accepts)
            .finish_non_exhaustive()
    }
}

/// Checkers by name: the built-ins and whatever plugins register.
#[derive(Clone, Debug, Default)]
pub struct CheckerTable {
    entries: Vec<CheckerEntry>,
}

impl CheckerTable {
    /// A table with no checkers.
    pub fn empty() -> CheckerTable {
        CheckerTable::default()
    }

    /// The checkers that ship with faultline.
    pub fn builtin() -> CheckerTable {
        let mut t = CheckerTable::empty();
        register_builtins(&mut t);
        t
    }

    /// Adds a checker, replacing any of the same name: a plugin may
    /// override a built-in.
    pub fn register(
        &mut self,
        name: &str,
        description: &str,
        accepts: Accepts,
        factory: impl Fn(&CheckSpec, &CheckerTable) -> Result<Box<dyn Checker>, CheckError>
        + Send
        + Sync
        + 'static,
    ) -> &mut CheckerEntry {
        self.entries.retain(|e| e.name != name);
        self.entries.push(CheckerEntry {
            name: name.to_owned(),
            description: description.to_owned(),
            aliases: Vec::new(),
            accepts,
            factory: Arc::new(factory),
        });
        self.entries.last_mut().expect("just pushed")
    }

    /// The entry `name` (or an alias) names.
    pub fn get(&self, name: &str) -> Option<&CheckerEntry> {
        self.entries.iter().find(|e| e.name == name || e.aliases.iter().any(|a| a == name))
    }

    /// Every entry, in registration order.
    pub fn entries(&self) -> &[CheckerEntry] {
        &self.entries
    }

    /// Every checker's name, in registration order.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.name.as_str()).collect()
    }

    /// `spec` for the checker `name`, keeping only what that checker
    /// accepts: how a composition hands its spec to each child, and how a
    /// report rebuilds a child of a composition to draw its evidence.
    pub fn restrict(&self, spec: &CheckSpec, name: &str) -> CheckSpec {
        let Some(entry) = self.get(name) else {
            return CheckSpec { checker: name.to_owned(), ..spec.clone() };
        };
        let a = &entry.accepts;
        if a.delegates {
            return CheckSpec { checker: entry.name.clone(), ..spec.clone() };
        }
        let mut child = CheckSpec {
            checker: entry.name.clone(),
            model: spec.model.clone().filter(|m| a.models.contains(m)),
            init: spec.init.clone().filter(|_| a.init),
            consistency_models: if a.consistency_models {
                spec.consistency_models.clone()
            } else {
                Vec::new()
            },
            independent: spec.independent && a.independent,
            budget: spec.budget,
            options: spec.options.clone(),
        };
        child.options.retain(|k, _| a.has_option(k));
        child
    }

    /// Builds the checker `spec` names, after checking that the spec asks
    /// only for what that checker accepts.
    pub fn build(&self, spec: &CheckSpec) -> Result<Box<dyn Checker>, CheckError> {
        let entry = self.get(&spec.checker).ok_or_else(|| {
            CheckError::BadOption(format!(
                "unknown checker {:?}; known checkers: {}",
                spec.checker,
                self.names().join(", ")
            ))
        })?;
        if !entry.accepts.delegates {
            entry.accepts.validate(&entry.name, spec)?;
        }
        (entry.factory)(spec, self)
    }

    /// The table as `faultline check --list` prints it: one line per
    /// checker, then its models and options indented below.
    pub fn describe(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for e in &self.entries {
            let _ = writeln!(out, "{:<20} {}", e.name, e.description);
            let a = &e.accepts;
            if !a.models.is_empty() {
                let _ = writeln!(out, "{:<22}--model {}", "", a.models.join("|"));
            }
            let mut flags = Vec::new();
            if a.init {
                flags.push("--init");
            }
            if a.consistency_models {
                flags.push("--consistency-models");
            }
            if a.independent {
                flags.push("--independent");
            }
            if !flags.is_empty() {
                let _ = writeln!(out, "{:<22}{}", "", flags.join(" "));
            }
            for o in &a.options {
                let _ = writeln!(out, "{:<22}--opt {}=...  {}", "", o.name, o.help);
            }
        }
        out
    }
}

/// Builds the built-in checker `spec` names (see [`CheckerTable::builtin`]).
pub fn build(spec: &CheckSpec) -> Result<Box<dyn Checker>, CheckError> {
    CheckerTable::builtin().build(spec)
}

fn boxed<C: Checker + 'static>(c: Result<C, CheckError>) -> Result<Box<dyn Checker>, CheckError> {
    Ok(Box::new(c?))
}

const LINEAR_MODELS: &[&str] = &[
    "register",
    "cas-register",
    "multi-register",
    "mutex",
    "set",
    "unordered-queue",
    "fifo-queue",
    "kv",
];

/// Linearizability and the Elle-style checkers, then the rest.
fn register_builtins(t: &mut CheckerTable) {
    t.register(
        "linearizable",
        "linearizability against a sequential model (--model)",
        Accepts::nothing()
            .models(LINEAR_MODELS)
            .init()
            .independent()
            .option("partition", "check each key apart (true, the default) or as one state (false)")
            .option(
                "algorithm",
                "search (default) or reference (the classic search, for comparison)",
            )
            .needs(&[
                "read", "write", "cas", "acquire", "release", "add", "enqueue", "dequeue", "get",
                "put", "append",
            ]),
        |spec, _| boxed(linear_from_spec(spec)),
    )
    .aliases
    .push("linearizability".into());
    t.register(
        "list-append",
        "Elle-style isolation check of [:append k v]/[:r k [..]] transactions \
         (default strict-serializable)",
        elle_accepts(false),
        |spec, _| boxed(Elle::from_spec(spec, Workload::ListAppend)),
    );
    t.register(
        "rw-register",
        "Elle-style isolation check of [:w k v]/[:r k v] transactions \
         (default strict-serializable)",
        elle_accepts(true),
        |spec, _| boxed(Elle::from_spec(spec, Workload::RwRegister)),
    );
    register_weak_models(t);
    register_classic(t);
}

/// Causal consistency, the session guarantees and convergence: what
/// weaker-than-serializable stores promise.
fn register_weak_models(t: &mut CheckerTable) {
    t.register(
        "causal",
        "causal consistency of key-value histories by bad patterns",
        Accepts::nothing()
            .models(&["causal", "ccv", "causal-memory"])
            .init()
            .independent()
            .max_anomalies()
            .needs(&["read", "txn"])
            .needs(&["write", "txn"]),
        |spec, _| boxed(crate::causal::CausalChecker::from_spec(spec)),
    );
    let session = |all: bool| {
        let a = Accepts::nothing()
            .option("workload", "list-append or register (detected when left out)")
            .max_anomalies()
            .needs(&["read", "txn"]);
        if all {
            a.option(
                "guarantees",
                "which guarantees, comma-separated (default all four): read-your-writes, \
                 monotonic-reads, monotonic-writes, writes-follow-reads",
            )
        } else {
            a
        }
    };
    let session_factory =
        |spec: &CheckSpec, _: &CheckerTable| boxed(crate::session::SessionChecker::from_spec(spec));
    t.register(
        "session",
        "all four session guarantees, each reported separately (list-append or register)",
        session(true),
        session_factory,
    );
    for (name, about) in [
        ("read-your-writes", "session guarantee: reads see the session's own earlier writes"),
        ("monotonic-reads", "session guarantee: reads see what the session's earlier reads saw"),
        (
            "monotonic-writes",
            "session guarantee: a write is visible only after its author's earlier writes",
        ),
        (
            "writes-follow-reads",
            "session guarantee: a write is visible only after the writes its author had read",
        ),
    ] {
        t.register(name, about, session(false), session_factory);
    }
    t.register(
        "convergence",
        "eventual convergence: final reads on every node agree and hold every acknowledged write",
        Accepts::nothing()
            .independent()
            .option("type", "set, list, counter or register (detected when left out)")
            .option(
                "order",
                "what a register's last write wins by: real-time (default), causal or none",
            )
            .max_anomalies()
            .needs(&["read", "final-read"]),
        |spec, _| boxed(crate::convergence::ConvergenceChecker::from_spec(spec)),
    );
}

/// Jepsen's classic checkers, and `compose`.
fn register_classic(t: &mut CheckerTable) {
    t.register(
        "set",
        "Jepsen set: every acknowledged add is in the final read (lost, unexpected, recovered)",
        Accepts::nothing().needs(&["add"]).needs(&["read"]),
        |spec, _| boxed(crate::classic::set::SetChecker::from_spec(spec)),
    );
    t.register(
        "set-full",
        "Jepsen set-full: per element stable, lost, never read or stale, with latencies",
        Accepts::nothing()
            .option(
                "linearizable",
                "true: an element missing from a read that began after its add completed is stale",
            )
            .needs(&["add"])
            .needs(&["read"]),
        |spec, _| boxed(crate::classic::set_full::SetFullChecker::from_spec(spec)),
    );
    t.register(
        "counter",
        "Jepsen counter: each read lies between acknowledged and attempted sums",
        Accepts::nothing().max_anomalies().needs(&["read"]).needs(&["add", "increment"]),
        |spec, _| boxed(crate::classic::counter::CounterChecker::from_spec(spec)),
    );
    t.register(
        "bank",
        "Jepsen bank: every read sums to the total, no negative balances",
        Accepts::nothing()
            .option("total", "the total every read must sum to (default: the first ok read's sum)")
            .option("accounts", "the accounts, comma-separated (default: the first ok read's)")
            .option("negative-balances", "true: negative balances are allowed")
            .max_anomalies()
            .needs(&["read"]),
        |spec, _| boxed(crate::classic::bank::BankChecker::from_spec(spec)),
    );
    t.register(
        "unique-ids",
        "Jepsen unique-ids: no id generated twice",
        Accepts::nothing().max_anomalies().needs(&["generate"]),
        |spec, _| boxed(crate::classic::unique_ids::UniqueIdsChecker::from_spec(spec)),
    );
    t.register(
        "long-fork",
        "Jepsen long-fork: reads of key groups agree on one order of inserts",
        Accepts::nothing().max_anomalies().needs(&["txn"]),
        |spec, _| boxed(crate::classic::long_fork::LongForkChecker::from_spec(spec)),
    );
    t.register(
        "total-queue",
        "Jepsen total-queue: every acknowledged enqueue comes out, nothing else does",
        Accepts::nothing().needs(&["enqueue"]).needs(&["dequeue", "drain"]),
        |spec, _| boxed(crate::classic::total_queue::TotalQueueChecker::from_spec(spec)),
    );
    t.register(
        "stats",
        "operation counts per function; invalid when a function never succeeded",
        Accepts::nothing(),
        |spec, _| boxed(crate::classic::stats::StatsChecker::from_spec(spec)),
    );
    let compose = t.register(
        "compose",
        "several checkers in parallel (--opt checkers=a,b), merged: invalid beats unknown beats valid",
        Accepts::nothing().option("checkers", "the checkers to run, comma-separated"),
        |spec, table| boxed(compose(spec, table)),
    );
    compose.accepts.delegates = true;
}

fn elle_accepts(register: bool) -> Accepts {
    let mut a = Accepts { consistency_models: true, ..Accepts::nothing() }
        .option("anomalies", "extra anomaly kinds to report as violations, comma-separated")
        .option(
            "cycle-search-timeout",
            "milliseconds of cycle search per strongly connected component (default 1000)",
        )
        .needs(&["txn"]);
    if register {
        for (k, what) in [
            ("sequential-keys", "each key is sequentially consistent"),
            ("linearizable-keys", "each key is linearizable"),
            ("wfr-keys", "each transaction's writes follow its reads of the same key"),
        ] {
            a = a.option(k, &format!("true: assume {what}, inferring more version order"));
        }
    }
    a
}

/// The linearizable checker from its spec. The models with a fixed
/// initial state (an empty set or queue, a free lock, empty strings) refuse
/// `--init` rather than ignore it.
fn linear_from_spec(spec: &CheckSpec) -> Result<LinearChecker, CheckError> {
    let model = spec.model.as_deref().ok_or_else(|| {
        CheckError::BadOption(
            "the linearizable checker needs --model (e.g. --model cas-register)".into(),
        )
    })?;
    let model = model.parse::<ModelName>().map_err(CheckError::BadOption)?;
    let mut c = LinearChecker::new(model);
    if let Some(init) = &spec.init {
        if let Some(fixed) = model.fixed_initial_state() {
            return Err(CheckError::BadOption(format!(
                "the {model} model always starts {fixed}; --init {init} does not apply to it"
            )));
        }
        c.init = init.clone();
    }
    c.budget = spec.budget;
    c.partition = spec.bool_option("partition", true)?;
    match spec.option("algorithm") {
        None | Some("search") => {}
        Some("reference") => c.algorithm = Algorithm::Reference,
        Some(other) => {
            return Err(CheckError::BadOption(format!(
                "--opt algorithm={other}: expected search or reference"
            )));
        }
    }
    Ok(c)
}

/// `compose`: the checkers named by `--opt checkers=a,b,c`, run in parallel
/// on the same history, verdicts merged (invalid beats unknown beats
/// valid). Each child gets the parts of the spec it accepts; a flag or
/// option that no child accepts is refused, like any other.
pub fn compose(spec: &CheckSpec, table: &CheckerTable) -> Result<Compose, CheckError> {
    let names = spec.option("checkers").ok_or_else(|| {
        CheckError::BadOption("compose needs --opt checkers=NAME,NAME,... (e.g. set,stats)".into())
    })?;
    let names: Vec<&str> = names.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    if names.is_empty() {
        return Err(CheckError::BadOption("--opt checkers names no checker".into()));
    }
    let mut entries = Vec::new();
    for name in &names {
        if *name == "compose" {
            return Err(CheckError::BadOption("compose cannot contain compose".into()));
        }
        let entry = table.get(name).ok_or_else(|| {
            CheckError::BadOption(format!(
                "unknown checker {name:?}; known checkers: {}",
                table.names().join(", ")
            ))
        })?;
        entries.push(entry);
    }
    // Everything given must reach at least one child.
    let union = Accepts {
        models: entries.iter().flat_map(|e| e.accepts.models.clone()).collect(),
        init: entries.iter().any(|e| e.accepts.init),
        consistency_models: entries.iter().any(|e| e.accepts.consistency_models),
        independent: entries.iter().any(|e| e.accepts.independent),
        options: entries.iter().flat_map(|e| e.accepts.options.clone()).collect(),
        delegates: false,
        needs: Vec::new(),
    };
    let mut own = spec.clone();
    own.options.remove("checkers");
    union.validate(&format!("compose ({})", names.join(", ")), &own)?;
    let children = entries
        .iter()
        .map(|entry| table.build(&table.restrict(&own, &entry.name)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Compose::new("compose", children))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(spec: &CheckSpec) -> String {
        build(spec).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn compose_refuses_itself_and_unknown_names() {
        let spec = CheckSpec::new("compose");
        assert!(err(&spec).contains("needs --opt checkers"), "{}", err(&spec));
        let spec = CheckSpec::new("compose").with_option("checkers", "stats,compose");
        assert!(err(&spec).contains("cannot contain compose"), "{}", err(&spec));
        let spec = CheckSpec::new("compose").with_option("checkers", "stats,nope");
        assert!(err(&spec).contains("unknown checker \"nope\""), "{}", err(&spec));
    }

    #[test]
    fn compose_gives_each_child_only_what_it_takes_and_refuses_what_none_takes() {
        let spec = CheckSpec::new("compose")
            .with_option("checkers", "counter,set-full")
            .with_option("linearizable", "true")
            .with_option("max-anomalies", "3");
        assert!(build(&spec).is_ok(), "{}", err(&spec));
        let spec = spec.with_option("partition", "false");
        assert_eq!(
            err(&spec),
            "unknown option \"partition\" for the compose (counter, set-full) checker; its \
             options are max-anomalies, linearizable"
        );
    }

    /// Regression: options, models and initial values a checker does not
    /// read were dropped without a word.
    #[test]
    fn a_flag_a_checker_would_ignore_is_refused() {
        let mut spec = CheckSpec::new("counter");
        spec.init = Some(crate::Value::Int(0));
        assert_eq!(
            err(&spec),
            "the counter checker has no initial value to set, so --init does not apply to it"
        );
        let spec = CheckSpec::new("set").with_option("total", "10");
        assert_eq!(err(&spec), "the set checker takes no --opt options (given \"total\")");
        let mut spec = CheckSpec::new("bank");
        spec.model = Some("cas-register".into());
        assert_eq!(err(&spec), "the bank checker takes no --model (given \"cas-register\")");
        let mut spec = CheckSpec::new("stats");
        spec.independent = true;
        assert!(err(&spec).starts_with("--independent does not apply to the stats"));
        let mut spec = CheckSpec::new("counter");
        spec.consistency_models = vec!["serializable".into()];
        assert!(err(&spec).contains("does not judge consistency models"), "{}", err(&spec));
    }

    /// Regression: `--init` was dropped for every model but the registers.
    #[test]
    fn models_with_a_fixed_initial_state_refuse_init() {
        for (model, ok) in [
            ("register", true),
            ("cas-register", true),
            ("multi-register", true),
            ("set", false),
            ("mutex", false),
            ("fifo-queue", false),
            ("unordered-queue", false),
            ("kv", false),
        ] {
            let mut spec = CheckSpec::new("linearizable");
            spec.model = Some(model.into());
            spec.init = Some(crate::Value::Int(0));
            assert_eq!(build(&spec).is_ok(), ok, "{model}: {}", err(&spec));
            if !ok {
                assert!(err(&spec).contains("--init 0 does not apply"), "{}", err(&spec));
            }
        }
    }

    #[test]
    fn every_checker_is_listed_with_its_options() {
        let t = CheckerTable::builtin();
        let text = t.describe();
        for name in t.names() {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
        assert!(text.contains("--opt max-anomalies=..."), "{text}");
        assert_eq!(t.get("linearizability").map(|e| e.name.as_str()), Some("linearizable"));
    }
}
