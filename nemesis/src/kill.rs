//! Crashes: kill nodes with SIGKILL, then restart them. Targets are one
//! random node, the current primaries (asked from the database), a
//! minority, or all.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use checkers::Value;
use harness::generator::{self as g, Invocation, Rng};
use harness::plugin::NemesisPackage;
use harness::{Db, HarnessError, Nemesis, Result, TestEnv, TestSpec};
use rand::seq::SliceRandom;

/// Which nodes a kill hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillTargets {
    /// One random node.
    One,
    /// The nodes the database reports as primaries or leaders (one random
    /// node when it reports none).
    Primaries,
    /// A random minority.
    Minority,
    /// Every node.
    All,
}

impl KillTargets {
    fn parse(s: &str) -> Option<KillTargets> {
        match s {
            "one" => Some(KillTargets::One),
            "primaries" | "primary" => Some(KillTargets::Primaries),
            "minority" => Some(KillTargets::Minority),
            "all" => Some(KillTargets::All),
            _ => None,
        }
    }
}

/// Kills and restarts database processes.
pub struct KillNemesis {
    targets: KillTargets,
    env: Option<TestEnv>,
    db: Option<Arc<dyn Db>>,
    /// Nodes killed and not yet restarted.
    down: BTreeSet<String>,
}

impl KillNemesis {
    /// A kill nemesis aiming at `targets`.
    pub fn new(targets: KillTargets) -> KillNemesis {
        KillNemesis { targets, env: None, db: None, down: BTreeSet::new() }
    }

    async fn restart_all(&mut self) -> Result<Vec<String>> {
        let (Some(env), Some(db)) = (&self.env, &self.db) else { return Ok(Vec::new()) };
        let mut restarted = Vec::new();
        let mut first_err = None;
        for node in std::mem::take(&mut self.down) {
            match db.start(env, &node).await {
                Ok(()) => restarted.push(node),
                Err(e) => {
                    first_err.get_or_insert(e);
                    self.down.insert(node);
                }
            }
        }
        for node in &restarted {
            if let Err(e) = db.await_ready(env, node, Duration::from_secs(20)).await {
                tracing::warn!(node = %node, "restarted node is not answering yet: {e}");
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(restarted),
        }
    }
}

#[async_trait]
impl Nemesis for KillNemesis {
    fn fs(&self) -> Vec<String> {
        vec!["start-kill".into(), "stop-kill".into()]
    }

    async fn setup(&mut self, env: &TestEnv, db: Arc<dyn Db>) -> Result<()> {
        self.env = Some(env.clone());
        self.db = Some(db);
        Ok(())
    }

    async fn invoke(&mut self, op: &Invocation, rng: &mut Rng) -> Result<Value> {
        let (Some(env), Some(db)) = (self.env.clone(), self.db.clone()) else {
            return Err(HarnessError::Internal("kill nemesis not set up".into()));
        };
        match op.f.as_str() {
            "start-kill" => {
                let mut nodes: Vec<String> =
                    env.nodes().iter().filter(|n| !self.down.contains(*n)).cloned().collect();
                nodes.shuffle(rng);
                let victims: Vec<String> = match self.targets {
                    KillTargets::One => nodes.into_iter().take(1).collect(),
                    KillTargets::All => nodes,
                    KillTargets::Minority => {
                        let k = (env.nodes().len().saturating_sub(1)) / 2;
                        nodes.into_iter().take(k.max(1)).collect()
                    }
                    KillTargets::Primaries => {
                        let primaries: Vec<String> = db
                            .primaries(&env)
                            .await
                            .into_iter()
                            .filter(|p| nodes.contains(p))
                            .collect();
                        if primaries.is_empty() {
                            nodes.into_iter().take(1).collect()
                        } else {
                            primaries
                        }
                    }
                };
                for v in &victims {
                    db.kill(&env, v).await?;
                    self.down.insert(v.clone());
                }
                tracing::info!(?victims, "killed");
                Ok(Value::List(victims.into_iter().map(Value::str).collect()))
            }
            "stop-kill" => {
                let restarted = self.restart_all().await?;
                Ok(Value::List(restarted.into_iter().map(Value::str).collect()))
            }
            other => Err(HarnessError::Internal(format!("kill nemesis cannot {other}"))),
        }
    }

    async fn heal(&mut self) -> Result<()> {
        self.restart_all().await.map(|_| ())
    }
}

/// The `kill` package: `options.kill_targets` = `one` (default),
/// `primaries`, `minority` or `all`.
pub fn package(spec: &TestSpec) -> Result<NemesisPackage> {
    let which: String = spec.option("kill_targets", "one".to_owned())?;
    let targets = KillTargets::parse(&which).ok_or_else(|| {
        HarnessError::spec(
            "test spec",
            "options.kill_targets",
            format!("{which:?}: use one, primaries, minority or all"),
        )
    })?;
    let start = g::from_fn(|_, _| Some(Invocation::new("start-kill", Value::Nil)));
    let stop = g::from_fn(|_, _| Some(Invocation::new("stop-kill", Value::Nil)));
    Ok(NemesisPackage {
        nemesis: Box::new(KillNemesis::new(targets)),
        generator: g::flip_flop(start, stop),
        final_generator: g::op(Invocation::new("stop-kill", Value::Nil)),
    })
}
