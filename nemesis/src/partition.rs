//! Partitions as grudges (for each node, the nodes it drops traffic from),
//! in every shape Jepsen knows and then some, installed by the runtime
//! (proxies in `local`, nft or iptables in `netns` and over SSH) and read
//! back from the runtime after every change: a partition is recorded only
//! once the rules in force are the ones asked for, and a heal only once no
//! rule remains.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use checkers::Value;
use harness::generator::{self as g, Invocation, Rng};
use harness::plugin::NemesisPackage;
use harness::{Db, Grudge, HarnessError, Nemesis, Result, TestEnv, TestSpec};
use rand::Rng as _;
use rand::seq::SliceRandom;

use crate::targets::{Bound, nodes_value, option_list};

/// The partition shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionKind {
    /// The sorted nodes cut in two: the first ⌊n/2⌋ against the rest.
    Halves,
    /// Two halves, nodes assigned at random (the bigger half gets the odd node).
    RandomHalves,
    /// One random node cut off from all others.
    IsolateOne,
    /// A random majority (⌊n/2⌋+1 nodes) against the minority.
    MajorityMinority,
    /// Every node sees a majority, and no two see the same one (nodes in a
    /// random ring, each seeing its neighbours).
    MajoritiesRing,
    /// A random third of the nodes (at least one) cut off together.
    MinorityThird,
    /// Two halves that cannot talk, and one node that talks to both.
    Bridge,
    /// The current primaries (asked from the database) each cut off alone.
    Primaries,
    /// Random halves, cut in one direction only: the second half drops what
    /// the first sends, while the first still hears the second.
    OneWay,
}

impl PartitionKind {
    /// Every shape.
    pub const EVERY: [PartitionKind; 9] = [
        PartitionKind::Halves,
        PartitionKind::RandomHalves,
        PartitionKind::IsolateOne,
        PartitionKind::MajorityMinority,
        PartitionKind::MajoritiesRing,
        PartitionKind::MinorityThird,
        PartitionKind::Bridge,
        PartitionKind::Primaries,
        PartitionKind::OneWay,
    ];

    /// The name used in options and recorded in the history.
    pub fn name(self) -> &'static str {
        match self {
            PartitionKind::Halves => "halves",
            PartitionKind::RandomHalves => "random-halves",
            PartitionKind::IsolateOne => "isolate-one",
            PartitionKind::MajorityMinority => "majority-minority",
            PartitionKind::MajoritiesRing => "majorities-ring",
            PartitionKind::MinorityThird => "minority-third",
            PartitionKind::Bridge => "bridge",
            PartitionKind::Primaries => "primaries",
            PartitionKind::OneWay => "one-way",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<PartitionKind> {
        PartitionKind::EVERY.iter().copied().find(|k| k.name() == s).or(match s {
            "isolate" => Some(PartitionKind::IsolateOne),
            "majority" => Some(PartitionKind::MajorityMinority),
            "isolate-primaries" => Some(PartitionKind::Primaries),
            _ => None,
        })
    }

    /// The fewest nodes this shape can cut.
    pub fn min_nodes(self) -> usize {
        match self {
            PartitionKind::MajoritiesRing | PartitionKind::Bridge => 3,
            _ => 2,
        }
    }
}

/// A grudge together with the groups it was built from, for the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Who drops traffic from whom.
    pub grudge: Grudge,
    /// How the shape describes itself (components, bridge node, ring...).
    pub detail: Value,
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn components_value(components: &[Vec<String>]) -> Value {
    Value::List(components.iter().map(nodes_value).collect())
}

/// `a` and `b` cannot talk; `both` talks to everyone.
fn bridged(a: &[String], b: &[String]) -> Grudge {
    let mut g = BTreeMap::new();
    for x in a {
        g.insert(x.clone(), b.iter().cloned().collect::<BTreeSet<_>>());
    }
    for y in b {
        g.insert(y.clone(), a.iter().cloned().collect::<BTreeSet<_>>());
    }
    Grudge(g)
}

/// The partition of shape `kind` over `nodes` (with the database's current
/// `primaries`), drawing from `rng`. Fails when there are too few nodes for
/// the shape.
pub fn partition_for(
    kind: PartitionKind,
    nodes: &[String],
    primaries: &[String],
    rng: &mut Rng,
) -> Result<Partition> {
    let n = nodes.len();
    if n < kind.min_nodes() {
        return Err(HarnessError::Internal(format!(
            "a {} partition needs at least {} nodes, not {n}",
            kind.name(),
            kind.min_nodes()
        )));
    }
    let mut shuffled = nodes.to_vec();
    shuffled.shuffle(rng);
    let split = |v: &[String], at: usize| (sorted(v[..at].to_vec()), sorted(v[at..].to_vec()));
    let two = |a: Vec<String>, b: Vec<String>| {
        let comps = vec![a, b];
        Partition {
            grudge: Grudge::from_components(&comps),
            detail: Value::map(vec![(Value::str("components"), components_value(&comps))]),
        }
    };
    Ok(match kind {
        PartitionKind::Halves => {
            let s = sorted(nodes.to_vec());
            let (a, b) = split(&s, n / 2);
            two(a, b)
        }
        PartitionKind::RandomHalves => {
            let (a, b) = split(&shuffled, n / 2);
            two(a, b)
        }
        PartitionKind::IsolateOne => {
            let (a, b) = split(&shuffled, 1);
            two(a, b)
        }
        PartitionKind::MajorityMinority => {
            let (a, b) = split(&shuffled, n / 2 + 1);
            two(a, b)
        }
        PartitionKind::MinorityThird => {
            let (a, b) = split(&shuffled, (n / 3).max(1));
            two(a, b)
        }
        PartitionKind::Primaries => {
            let mut known: Vec<String> =
                primaries.iter().filter(|p| nodes.contains(p)).cloned().collect();
            known.sort();
            known.dedup();
            let fallback = known.is_empty();
            if fallback {
                known = shuffled[..1].to_vec();
            }
            let rest: Vec<String> =
                sorted(nodes.iter().filter(|x| !known.contains(x)).cloned().collect());
            let mut comps: Vec<Vec<String>> = known.iter().map(|p| vec![p.clone()]).collect();
            if !rest.is_empty() {
                comps.push(rest);
            }
            Partition {
                grudge: Grudge::from_components(&comps),
                detail: Value::map(vec![
                    (Value::str("components"), components_value(&comps)),
                    (Value::str("primaries"), nodes_value(&known)),
                    (Value::str("primaries-known"), Value::Bool(!fallback)),
                ]),
            }
        }
        PartitionKind::Bridge => {
            let bridge = shuffled[0].clone();
            let rest = &shuffled[1..];
            let (a, b) = split(rest, rest.len() / 2);
            Partition {
                grudge: bridged(&a, &b),
                detail: Value::map(vec![
                    (Value::str("components"), components_value(&[a, b])),
                    (Value::str("bridge"), Value::str(&bridge)),
                ]),
            }
        }
        PartitionKind::OneWay => {
            let (from, to) = split(&shuffled, n / 2);
            let mut g = BTreeMap::new();
            for t in &to {
                g.insert(t.clone(), from.iter().cloned().collect::<BTreeSet<_>>());
            }
            Partition {
                grudge: Grudge(g),
                detail: Value::map(vec![
                    (Value::str("cut-from"), nodes_value(&from)),
                    (Value::str("cut-to"), nodes_value(&to)),
                ]),
            }
        }
        PartitionKind::MajoritiesRing => {
            // Nodes on a random ring; each sees itself and its neighbours.
            // A symmetric window of k on each side covers 2k+1 nodes; it must
            // hold a majority and stay short of everything (or every node
            // would see the same set). Where no symmetric window fits (three
            // nodes), each node hears itself and the next m−1 nodes only.
            let m = n / 2 + 1;
            let k = (m - 1).div_ceil(2);
            let ring = shuffled;
            let mut sees: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (i, node) in ring.iter().enumerate() {
                let visible: BTreeSet<String> = if 2 * k + 1 < n {
                    (0..=2 * k).map(|d| ring[(i + n + d - k) % n].clone()).collect()
                } else {
                    (0..m).map(|d| ring[(i + d) % n].clone()).collect()
                };
                sees.insert(node.clone(), visible);
            }
            let grudge = Grudge(
                sees.iter()
                    .map(|(x, vis)| {
                        (x.clone(), nodes.iter().filter(|y| !vis.contains(*y)).cloned().collect())
                    })
                    .collect(),
            );
            let sees_value =
                Value::map(sees.iter().map(|(x, vis)| (Value::str(x), nodes_value(vis))).collect());
            Partition {
                grudge,
                detail: Value::map(vec![
                    (Value::str("ring"), nodes_value(&ring)),
                    (Value::str("sees"), sees_value),
                ]),
            }
        }
    })
}

/// The grudge without empty entries, for comparisons.
fn normalized(g: &Grudge) -> Grudge {
    Grudge(g.0.iter().filter(|(_, s)| !s.is_empty()).map(|(k, s)| (k.clone(), s.clone())).collect())
}

/// Installs partitions, verifies them, and heals.
#[derive(Default)]
pub struct PartitionNemesis {
    bound: Bound,
}

impl PartitionNemesis {
    /// Installs `grudge` and reads back what the runtime enforces; an error
    /// when the two differ (after one retry of the installation).
    async fn install(env: &TestEnv, grudge: &Grudge) -> Result<Value> {
        let want = normalized(grudge);
        let mut last = None;
        for _ in 0..2 {
            env.runtime.set_grudge(grudge).await?;
            match env.runtime.current_grudge().await {
                Ok(got) if normalized(&got) == want => return Ok(Value::Bool(true)),
                Ok(got) => last = Some(got),
                // A runtime that cannot read its rules back says so in the
                // history instead of claiming a verification it did not do.
                Err(HarnessError::Unsupported { why, .. }) => {
                    return Ok(Value::str(format!("not verified: {why}")));
                }
                Err(e) => return Err(e),
            }
        }
        Err(HarnessError::Net(format!(
            "asked for the partition {:?} but the {} rules in force are {:?}",
            want.0,
            env.runtime.partitioner(),
            last.map(|g| normalized(&g).0).unwrap_or_default()
        )))
    }
}

#[async_trait]
impl Nemesis for PartitionNemesis {
    fn fs(&self) -> Vec<String> {
        vec!["start-partition".into(), "stop-partition".into()]
    }

    async fn setup(&mut self, env: &TestEnv, db: Arc<dyn Db>) -> Result<()> {
        self.bound.set(env, db);
        Ok(())
    }

    async fn invoke(&mut self, op: &Invocation, rng: &mut Rng) -> Result<Value> {
        let (env, db) = &self.bound.get("partition")?;
        match op.f.as_str() {
            "start-partition" => {
                let name = op.value.as_str().unwrap_or("random-halves");
                let kind = PartitionKind::parse(name).ok_or_else(|| {
                    HarnessError::Internal(format!("unknown partition kind {name:?}"))
                })?;
                let primaries = if kind == PartitionKind::Primaries {
                    db.primaries(env).await
                } else {
                    Vec::new()
                };
                let p = partition_for(kind, env.nodes(), &primaries, rng)?;
                let verified = Self::install(env, &p.grudge).await?;
                tracing::info!(kind = kind.name(), grudge = ?p.grudge.0, "partition");
                let mut fields = vec![
                    (Value::str("kind"), Value::str(kind.name())),
                    (Value::str("grudge"), p.grudge.to_value()),
                ];
                if let Value::Map(detail) = p.detail {
                    fields.extend(detail);
                }
                fields.push((Value::str("enforced-by"), Value::str(env.runtime.partitioner())));
                fields.push((Value::str("verified"), verified));
                Ok(Value::map(fields))
            }
            "stop-partition" => {
                let verified = Self::install(env, &Grudge::none()).await?;
                Ok(Value::map(vec![
                    (Value::str("healed"), Value::Bool(true)),
                    (Value::str("verified"), verified),
                ]))
            }
            other => Err(HarnessError::Internal(format!("partition nemesis cannot {other}"))),
        }
    }

    async fn heal(&mut self) -> Result<()> {
        match self.bound.env() {
            Some(env) => Self::install(env, &Grudge::none()).await.map(|_| ()),
            None => Ok(()),
        }
    }
}

/// The `partition` package: `options.partition` = a comma-separated list of
/// shapes (default: every shape the cluster is big enough for; `both` is
/// `random-halves,isolate-one`).
pub fn package(spec: &TestSpec) -> Result<NemesisPackage> {
    let n = spec.nodes as usize;
    let known: Vec<(&str, PartitionKind)> =
        PartitionKind::EVERY.iter().map(|k| (k.name(), *k)).collect();
    let kinds: Vec<PartitionKind> = match spec.option_text("partition") {
        Some("both") => vec![PartitionKind::RandomHalves, PartitionKind::IsolateOne],
        Some("all") | None => {
            PartitionKind::EVERY.iter().copied().filter(|k| n >= k.min_nodes()).collect()
        }
        Some(_) => option_list(spec, "partition", &known, &[])?,
    };
    if let Some(k) = kinds.iter().find(|k| n < k.min_nodes()) {
        return Err(HarnessError::spec(
            "test spec",
            "options.partition",
            format!("{} needs at least {} nodes; this test has {n}", k.name(), k.min_nodes()),
        ));
    }
    if kinds.is_empty() {
        return Err(HarnessError::spec(
            "test spec",
            "nodes",
            format!("{n} node(s) cannot be partitioned"),
        ));
    }
    let start = g::from_fn(move |rng: &mut Rng, _| {
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

    /// Whom `x` hears (itself included).
    fn hears(g: &Grudge, ns: &[String], x: &str) -> BTreeSet<String> {
        ns.iter().filter(|y| y.as_str() == x || !g.cuts(y, x)).cloned().collect()
    }

    fn symmetric(g: &Grudge, ns: &[String]) -> bool {
        ns.iter().all(|a| ns.iter().all(|b| g.cuts(a, b) == g.cuts(b, a)))
    }

    fn cut_links(g: &Grudge, ns: &[String]) -> usize {
        ns.iter().flat_map(|a| ns.iter().map(move |b| (a, b))).filter(|(a, b)| g.cuts(a, b)).count()
    }

    fn part(kind: PartitionKind, n: usize, seed: u64) -> Grudge {
        let mut rng = Rng::seed_from_u64(seed);
        partition_for(kind, &nodes(n), &[], &mut rng).expect("partition").grudge
    }

    #[test]
    fn halves_cut_every_cross_link_both_ways() {
        for kind in [PartitionKind::Halves, PartitionKind::RandomHalves] {
            let ns = nodes(5);
            let g = part(kind, 5, 3);
            assert!(symmetric(&g, &ns));
            // 2 × 3 nodes: 6 pairs, 12 directed links.
            assert_eq!(cut_links(&g, &ns), 12, "{kind:?}");
        }
        let g = part(PartitionKind::Halves, 5, 99);
        assert!(g.cuts("n1", "n3") && !g.cuts("n1", "n2") && !g.cuts("n3", "n5"));
    }

    #[test]
    fn isolate_one_cuts_exactly_one_node_off() {
        let ns = nodes(5);
        let g = part(PartitionKind::IsolateOne, 5, 9);
        let isolated: Vec<&String> = ns.iter().filter(|n| hears(&g, &ns, n).len() == 1).collect();
        assert_eq!(isolated.len(), 1);
        assert_eq!(cut_links(&g, &ns), 8);
    }

    #[test]
    fn majority_and_minority_third_sizes() {
        for n in 3..=9 {
            let ns = nodes(n);
            let g = part(PartitionKind::MajorityMinority, n, n as u64);
            let biggest = ns.iter().map(|x| hears(&g, &ns, x).len()).max().unwrap_or(0);
            assert_eq!(biggest, n / 2 + 1, "majority side of {n}");
            let g = part(PartitionKind::MinorityThird, n, n as u64);
            let smallest = ns.iter().map(|x| hears(&g, &ns, x).len()).min().unwrap_or(0);
            assert_eq!(smallest, (n / 3).max(1), "minority third of {n}");
            assert!(symmetric(&g, &ns));
        }
    }

    #[test]
    fn majorities_ring_every_node_sees_a_distinct_majority() {
        for n in 3..=9 {
            for seed in 0..5 {
                let ns = nodes(n);
                let g = part(PartitionKind::MajoritiesRing, n, seed);
                let views: Vec<BTreeSet<String>> = ns.iter().map(|x| hears(&g, &ns, x)).collect();
                for v in &views {
                    assert!(v.len() > n / 2, "{n} nodes: a view of {} is no majority", v.len());
                    assert!(v.len() < n, "{n} nodes: a node sees everything");
                }
                let distinct: BTreeSet<&BTreeSet<String>> = views.iter().collect();
                assert_eq!(distinct.len(), n, "{n} nodes, seed {seed}: views repeat");
            }
        }
    }

    #[test]
    fn bridge_node_talks_to_both_halves_which_cannot_talk() {
        let ns = nodes(5);
        let mut rng = Rng::seed_from_u64(4);
        let p = partition_for(PartitionKind::Bridge, &ns, &[], &mut rng).expect("bridge");
        let Some(Value::Str(bridge)) = p.detail.get(&Value::str("bridge")).cloned() else {
            panic!("no bridge in {}", p.detail)
        };
        assert_eq!(hears(&p.grudge, &ns, &bridge).len(), 5);
        for x in ns.iter().filter(|x| **x != bridge) {
            assert!(!p.grudge.cuts(&bridge, x) && !p.grudge.cuts(x, &bridge));
            assert_eq!(hears(&p.grudge, &ns, x).len(), 3, "{x}: own half plus the bridge");
        }
        assert!(symmetric(&p.grudge, &ns));
    }

    #[test]
    fn primaries_are_each_cut_off_alone() {
        let ns = nodes(5);
        let mut rng = Rng::seed_from_u64(5);
        let prim = vec!["n2".to_owned(), "n4".to_owned()];
        let p = partition_for(PartitionKind::Primaries, &ns, &prim, &mut rng).expect("p");
        assert_eq!(hears(&p.grudge, &ns, "n2").len(), 1);
        assert_eq!(hears(&p.grudge, &ns, "n4").len(), 1);
        assert_eq!(hears(&p.grudge, &ns, "n1").len(), 3);
        let p = partition_for(PartitionKind::Primaries, &ns, &[], &mut rng).expect("p");
        assert_eq!(p.detail.get(&Value::str("primaries-known")), Some(&Value::Bool(false)));
    }

    #[test]
    fn one_way_cuts_one_direction_only() {
        let ns = nodes(5);
        let g = part(PartitionKind::OneWay, 5, 6);
        let cut: Vec<(String, String)> = ns
            .iter()
            .flat_map(|a| ns.iter().map(move |b| (a.clone(), b.clone())))
            .filter(|(a, b)| g.cuts(a, b))
            .collect();
        assert_eq!(cut.len(), 6, "2 × 3 directed links");
        for (a, b) in &cut {
            assert!(!g.cuts(b, a), "{a}->{b} is cut both ways");
        }
    }

    #[test]
    fn too_few_nodes_is_an_error_not_a_silent_no_op() {
        let mut rng = Rng::seed_from_u64(0);
        assert!(partition_for(PartitionKind::MajoritiesRing, &nodes(2), &[], &mut rng).is_err());
        let spec = TestSpec { nodes: 2, ..TestSpec::default() };
        assert!(package(&spec).is_ok(), "shapes that fit two nodes remain");
        let mut spec = TestSpec { nodes: 2, ..TestSpec::default() };
        spec.options.insert("partition".into(), "bridge".into());
        let err = package(&spec).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("bridge needs at least 3 nodes"), "{err}");
    }
}
