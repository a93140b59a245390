//! Partitions: random halves and isolating one node, as grudges the
//! runtime installs (proxies locally, nftables in namespaces and over SSH).

use std::sync::Arc;

use async_trait::async_trait;
use checkers::Value;
use harness::generator::{self as g, Invocation, Rng};
use harness::plugin::NemesisPackage;
use harness::{Db, Grudge, HarnessError, Nemesis, Result, TestEnv, TestSpec};
use rand::seq::SliceRandom;

/// The partition shapes this package draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionKind {
    /// Two halves, nodes assigned at random (the bigger half gets the odd node).
    RandomHalves,
    /// One random node cut off from all others.
    IsolateOne,
}

impl PartitionKind {
    /// The name recorded in the history.
    pub fn name(self) -> &'static str {
        match self {
            PartitionKind::RandomHalves => "random-halves",
            PartitionKind::IsolateOne => "isolate-one",
        }
    }

    fn parse(s: &str) -> Option<PartitionKind> {
        match s {
            "random-halves" | "halves" => Some(PartitionKind::RandomHalves),
            "isolate-one" | "isolate" => Some(PartitionKind::IsolateOne),
            _ => None,
        }
    }
}

/// The grudge for `kind` over `nodes`, drawing from `rng`.
pub fn grudge_for(kind: PartitionKind, nodes: &[String], rng: &mut Rng) -> Grudge {
    let mut shuffled = nodes.to_vec();
    shuffled.shuffle(rng);
    let cut = match kind {
        PartitionKind::RandomHalves => shuffled.len() / 2,
        PartitionKind::IsolateOne => 1.min(shuffled.len()),
    };
    let (a, b) = shuffled.split_at(cut);
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    Grudge::from_components(&[a, b])
}

/// Installs and heals partitions.
#[derive(Default)]
pub struct PartitionNemesis {
    env: Option<TestEnv>,
}

#[async_trait]
impl Nemesis for PartitionNemesis {
    fn fs(&self) -> Vec<String> {
        vec!["start-partition".into(), "stop-partition".into()]
    }

    async fn setup(&mut self, env: &TestEnv, _db: Arc<dyn Db>) -> Result<()> {
        self.env = Some(env.clone());
        Ok(())
    }

    async fn invoke(&mut self, op: &Invocation, rng: &mut Rng) -> Result<Value> {
        let env = self
            .env
            .as_ref()
            .ok_or_else(|| HarnessError::Internal("partition nemesis not set up".into()))?;
        match op.f.as_str() {
            "start-partition" => {
                let name = op.value.as_str().unwrap_or("random-halves");
                let kind = PartitionKind::parse(name).ok_or_else(|| {
                    HarnessError::Internal(format!("unknown partition kind {name:?}"))
                })?;
                let grudge = grudge_for(kind, env.nodes(), rng);
                env.runtime.set_grudge(&grudge).await?;
                tracing::info!(kind = kind.name(), grudge = ?grudge.0, "partition");
                Ok(Value::map(vec![
                    (Value::str("kind"), Value::str(kind.name())),
                    (Value::str("grudge"), grudge.to_value()),
                ]))
            }
            "stop-partition" => {
                env.runtime.set_grudge(&Grudge::none()).await?;
                Ok(Value::str("healed"))
            }
            other => Err(HarnessError::Internal(format!("partition nemesis cannot {other}"))),
        }
    }

    async fn heal(&mut self) -> Result<()> {
        match &self.env {
            Some(env) => env.runtime.set_grudge(&Grudge::none()).await,
            None => Ok(()),
        }
    }
}

/// The `partition` package: `options.partition` = `random-halves`,
/// `isolate-one` or `both` (default).
pub fn package(spec: &TestSpec) -> Result<NemesisPackage> {
    let which: String = spec.option("partition", "both".to_owned())?;
    let kinds: Vec<PartitionKind> = match which.as_str() {
        "both" => vec![PartitionKind::RandomHalves, PartitionKind::IsolateOne],
        other => vec![PartitionKind::parse(other).ok_or_else(|| {
            HarnessError::spec(
                "test spec",
                "options.partition",
                format!("{other:?}: use random-halves, isolate-one or both"),
            )
        })?],
    };
    let start = g::from_fn(move |rng: &mut Rng, _| {
        use rand::Rng as _;
        let kind = kinds[rng.random_range(0..kinds.len())];
        Some(Invocation::new("start-partition", kind.name()))
    });
    let stop = g::from_fn(|_, _| Some(Invocation::new("stop-partition", Value::Nil)));
    Ok(NemesisPackage {
        nemesis: Box::new(PartitionNemesis::default()),
        generator: g::flip_flop(start, stop),
        final_generator: g::op(Invocation::new("stop-partition", Value::Nil)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn halves_cut_every_cross_link_both_ways() {
        let mut rng = Rng::seed_from_u64(3);
        let ns = nodes(5);
        let grudge = grudge_for(PartitionKind::RandomHalves, &ns, &mut rng);
        let mut cut = 0;
        for a in &ns {
            for b in &ns {
                if a != b && grudge.cuts(a, b) {
                    assert!(grudge.cuts(b, a), "{a}->{b} cut one way only");
                    cut += 1;
                }
            }
        }
        // 2 × 3 nodes: 6 pairs, 12 directed links.
        assert_eq!(cut, 12);
    }

    #[test]
    fn isolate_one_cuts_exactly_one_node_off() {
        let mut rng = Rng::seed_from_u64(9);
        let ns = nodes(5);
        let grudge = grudge_for(PartitionKind::IsolateOne, &ns, &mut rng);
        let isolated: Vec<&String> =
            ns.iter().filter(|n| ns.iter().filter(|o| o != n).all(|o| grudge.cuts(o, n))).collect();
        assert_eq!(isolated.len(), 1);
        let x = isolated[0];
        for a in ns.iter().filter(|n| *n != x) {
            for b in ns.iter().filter(|n| *n != x && *n != a) {
                assert!(!grudge.cuts(a, b));
            }
        }
    }
}
