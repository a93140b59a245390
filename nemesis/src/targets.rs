//! Which nodes a fault hits (Jepsen's node specs): one node, a minority, a
//! majority, all, or the current primaries as the database reports them;
//! the comma-separated option lists every package reads its choices from;
//! and what every nemesis keeps from its setup.

use std::sync::Arc;

use checkers::Value;
use harness::generator::Rng;
use harness::{Db, HarnessError, Result, TestEnv, TestSpec};
use rand::seq::SliceRandom;

/// A rule for picking the nodes a fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Targets {
    /// One random node.
    One,
    /// A random minority: ⌊(n−1)/2⌋ nodes, at least one.
    Minority,
    /// A random majority: ⌊n/2⌋+1 nodes.
    Majority,
    /// Every node.
    All,
    /// The nodes the database reports as primaries or leaders (one random
    /// node when it reports none).
    Primaries,
}

impl Targets {
    /// Every rule, in the order options list them.
    pub const EVERY: [Targets; 5] =
        [Targets::One, Targets::Minority, Targets::Majority, Targets::All, Targets::Primaries];

    /// The name used in options and histories.
    pub fn name(self) -> &'static str {
        match self {
            Targets::One => "one",
            Targets::Minority => "minority",
            Targets::Majority => "majority",
            Targets::All => "all",
            Targets::Primaries => "primaries",
        }
    }

    /// Parses a name (`primary` is accepted for `primaries`).
    pub fn parse(s: &str) -> Option<Targets> {
        match s {
            "one" => Some(Targets::One),
            "minority" => Some(Targets::Minority),
            "majority" => Some(Targets::Majority),
            "all" => Some(Targets::All),
            "primaries" | "primary" => Some(Targets::Primaries),
            _ => None,
        }
    }

    /// The nodes this rule picks from `nodes`, given the database's current
    /// `primaries`: sorted, drawn from `rng`.
    pub fn pick(self, nodes: &[String], primaries: &[String], rng: &mut Rng) -> Vec<String> {
        let mut shuffled = nodes.to_vec();
        shuffled.shuffle(rng);
        let n = nodes.len();
        let mut chosen: Vec<String> = match self {
            Targets::One => shuffled.into_iter().take(1).collect(),
            Targets::Minority => shuffled.into_iter().take(((n.max(1) - 1) / 2).max(1)).collect(),
            Targets::Majority => shuffled.into_iter().take(n / 2 + 1).collect(),
            Targets::All => shuffled,
            Targets::Primaries => {
                let known: Vec<String> =
                    primaries.iter().filter(|p| nodes.contains(p)).cloned().collect();
                if known.is_empty() { shuffled.into_iter().take(1).collect() } else { known }
            }
        };
        chosen.sort();
        chosen.dedup();
        chosen
    }

    /// Picks nodes, asking the database for its primaries only when needed.
    pub async fn choose(
        self,
        nodes: &[String],
        db: &dyn harness::Db,
        env: &harness::TestEnv,
        rng: &mut Rng,
    ) -> Vec<String> {
        let primaries =
            if self == Targets::Primaries { db.primaries(env).await } else { Vec::new() };
        self.pick(nodes, &primaries, rng)
    }
}

/// A comma-separated option naming choices from `known` (`all` as a value
/// means every one of them); `default` when the option is absent. Errors
/// name the option and list the choices.
pub fn option_list<T: Copy>(
    spec: &TestSpec,
    key: &str,
    known: &[(&str, T)],
    default: &[T],
) -> Result<Vec<T>> {
    let Some(text) = spec.option_text(key) else { return Ok(default.to_vec()) };
    let names: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
    let mut out = Vec::new();
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match known.iter().find(|(n, _)| *n == word) {
            Some((_, v)) => out.push(*v),
            None => {
                return Err(HarnessError::spec(
                    "test spec",
                    format!("options.{key}"),
                    format!("{word:?} is not one of {}", names.join(", ")),
                ));
            }
        }
    }
    if out.is_empty() {
        return Err(HarnessError::spec(
            "test spec",
            format!("options.{key}"),
            format!("names nothing; use some of {}", names.join(", ")),
        ));
    }
    Ok(out)
}

/// The target rules from option `key`, or `default`.
pub fn targets_option(spec: &TestSpec, key: &str, default: &[Targets]) -> Result<Vec<Targets>> {
    let known: Vec<(&str, Targets)> = Targets::EVERY
        .iter()
        .map(|t| (t.name(), *t))
        .chain([("primary", Targets::Primaries)])
        .collect();
    option_list(spec, key, &known, default)
}

/// What a nemesis keeps from `setup`: the test's environment and database.
#[derive(Clone, Default)]
pub struct Bound(Option<(TestEnv, Arc<dyn Db>)>);

impl Bound {
    /// Keeps `env` and `db`.
    pub fn set(&mut self, env: &TestEnv, db: Arc<dyn Db>) {
        self.0 = Some((env.clone(), db));
    }

    /// The environment and database, or an error naming the `nemesis` that
    /// was used before its setup.
    pub fn get(&self, nemesis: &str) -> Result<(TestEnv, Arc<dyn Db>)> {
        self.0
            .clone()
            .ok_or_else(|| HarnessError::Internal(format!("{nemesis} nemesis not set up")))
    }

    /// The environment, once set up.
    pub fn env(&self) -> Option<&TestEnv> {
        self.0.as_ref().map(|(e, _)| e)
    }
}

/// The field `key` of an operation's value (a map), parsed by `parse`.
pub fn field<T>(value: &Value, key: &str, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
    value.get(&Value::str(key)).and_then(Value::as_str).and_then(parse)
}

/// Nodes as a history value (a list of names).
pub fn nodes_value<'a>(nodes: impl IntoIterator<Item = &'a String>) -> Value {
    Value::List(nodes.into_iter().map(Value::str).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn sizes_follow_the_rule() {
        let mut rng = Rng::seed_from_u64(1);
        for n in 1..=7 {
            let ns = nodes(n);
            assert_eq!(Targets::One.pick(&ns, &[], &mut rng).len(), 1);
            assert_eq!(
                Targets::Minority.pick(&ns, &[], &mut rng).len(),
                ((n - 1) / 2).max(1),
                "{n}"
            );
            assert_eq!(Targets::Majority.pick(&ns, &[], &mut rng).len(), n / 2 + 1, "{n}");
            assert_eq!(Targets::All.pick(&ns, &[], &mut rng), ns);
        }
    }

    #[test]
    fn primaries_are_asked_for_and_one_node_stands_in_when_none_is_known() {
        let mut rng = Rng::seed_from_u64(2);
        let ns = nodes(5);
        let p = vec!["n4".to_owned(), "n9".to_owned()];
        assert_eq!(Targets::Primaries.pick(&ns, &p, &mut rng), vec!["n4".to_owned()]);
        assert_eq!(Targets::Primaries.pick(&ns, &[], &mut rng).len(), 1);
    }

    #[test]
    fn option_lists_name_the_bad_word() {
        let mut spec = TestSpec::default();
        spec.options.insert("kill_targets".into(), "one, primary".into());
        assert_eq!(
            targets_option(&spec, "kill_targets", &[]).expect("parse"),
            vec![Targets::One, Targets::Primaries]
        );
        spec.options.insert("kill_targets".into(), "one,some".into());
        let err = targets_option(&spec, "kill_targets", &[]).expect_err("bad").to_string();
        assert!(err.contains("options.kill_targets") && err.contains("\"some\""), "{err}");
        assert_eq!(
            targets_option(&TestSpec::default(), "pause_targets", &[Targets::All]).expect("d"),
            vec![Targets::All]
        );
    }
}
