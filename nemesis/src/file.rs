//! File faults on the database's data files (`Db::data_files`), each done
//! while the node is down:
//!
//! - `truncate`: the start kills the node and cuts bytes off the end of its
//!   files; the stop restarts it;
//! - `bitflip`: the start kills the node and flips random bits; the stop
//!   restarts it;
//! - `rollback`: the start snapshots the files of the running node; the stop
//!   kills it, restores the snapshot (every write since is rolled back) and
//!   restarts it;
//! - `lose-unfsynced`: the start marks the moment the kernel last wrote the
//!   files back (a snapshot); the stop crashes the machine, as far as the
//!   node can tell: it kills the node and, for files the database never
//!   fsyncs, restores that snapshot, losing the writes since; files it
//!   fsyncs before acknowledging lose nothing acknowledged, and are kept.
//!
//! A node that refuses to start on a damaged file (refstore in its durable
//! modes, on a failed checksum) is recorded as refusing, with the reason
//! from its log; then the file as it was before the damage is put back and
//! the node started again, so the cluster heals. Files go through the node
//! control's download and upload, so every runtime (SSH included) works the
//! same way; copies live in the run directory's `nemesis/` folder for the
//! length of the fault.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use checkers::Value;
use harness::generator::{self as g, Invocation, Rng};
use harness::plugin::NemesisPackage;
use harness::{
    DataFile, Db, Durability, HarnessError, Nemesis, NodeControl, Result, TestEnv, TestSpec,
};
use rand::Rng as _;

use crate::targets::{Bound, Targets, field, nodes_value, option_list, targets_option};

/// How long a restarted node may take to answer.
const READY: Duration = Duration::from_secs(15);
/// The most a truncation cuts.
const MAX_CUT: usize = 64 * 1024;

/// A kind of file fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFault {
    /// Cut bytes off the end.
    Truncate,
    /// Flip random bits.
    Bitflip,
    /// Restore an earlier snapshot.
    Rollback,
    /// Lose what was not fsynced.
    LoseUnfsynced,
}

impl FileFault {
    /// Every kind.
    pub const EVERY: [FileFault; 4] =
        [FileFault::Truncate, FileFault::Bitflip, FileFault::Rollback, FileFault::LoseUnfsynced];

    /// The name in options and histories.
    pub fn name(self) -> &'static str {
        match self {
            FileFault::Truncate => "truncate",
            FileFault::Bitflip => "bitflip",
            FileFault::Rollback => "rollback",
            FileFault::LoseUnfsynced => "lose-unfsynced",
        }
    }

    /// The kind of this name.
    pub fn parse(s: &str) -> Option<FileFault> {
        FileFault::EVERY.iter().copied().find(|k| k.name() == s)
    }
}

/// Damages `bytes` as `fault` says (`truncate` or `bitflip`) and returns
/// the field that records how: `cut-bytes` or `flipped-at`. The real
/// nemesis and the simulation damage and record through this one function.
pub fn damage(fault: FileFault, bytes: &mut Vec<u8>, rng: &mut Rng) -> (Value, Value) {
    if fault == FileFault::Truncate {
        let cut = truncate(bytes, rng);
        (Value::str("cut-bytes"), Value::Int(cut as i64))
    } else {
        let at = bitflip(bytes, rng);
        (Value::str("flipped-at"), Value::List(at.iter().map(|o| Value::Int(*o as i64)).collect()))
    }
}

/// Cuts between 1 byte and a quarter of the file (at most 64 KiB) off the
/// end of `bytes`; returns how many.
pub fn truncate(bytes: &mut Vec<u8>, rng: &mut Rng) -> usize {
    if bytes.is_empty() {
        return 0;
    }
    let most = (bytes.len() / 4).clamp(1, MAX_CUT);
    let cut = rng.random_range(1..=most);
    bytes.truncate(bytes.len() - cut);
    cut
}

/// Flips one random bit per 4 KiB started (at most 64), anywhere in the
/// file; returns the byte offsets hit, in order.
pub fn bitflip(bytes: &mut [u8], rng: &mut Rng) -> Vec<usize> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let flips = bytes.len().div_ceil(4096).min(64);
    let mut at: Vec<usize> = (0..flips)
        .map(|_| {
            let off = rng.random_range(0..bytes.len());
            bytes[off] ^= 1 << rng.random_range(0..8);
            off
        })
        .collect();
    at.sort_unstable();
    at
}

/// A fault begun on one node and not yet ended.
struct Pending {
    node: String,
    fault: FileFault,
    /// Each data file with the local copy taken at the start (before the
    /// damage, or the snapshot), or `None` when the file did not exist.
    files: Vec<(DataFile, Option<PathBuf>)>,
}

/// Damages and restores data files.
#[derive(Default)]
pub struct FileNemesis {
    bound: Bound,
    pending: Vec<Pending>,
    seq: u64,
}

fn control<'a>(env: &'a TestEnv, node: &str) -> Result<&'a dyn NodeControl> {
    env.runtime.node(node).ok_or_else(|| HarnessError::Internal(format!("no node {node}")))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HarnessError + '_ {
    move |e| HarnessError::io(path, e)
}

/// Whether `path` exists on the node.
async fn exists(c: &dyn NodeControl, path: &Path) -> Result<bool> {
    Ok(c.exec("test", &["-e".into(), path.to_string_lossy().into_owned()]).await?.status == 0)
}

/// The size of `path` on the node, if it exists.
async fn size(c: &dyn NodeControl, path: &Path) -> Result<Option<u64>> {
    let out = c.exec("stat", &["-c".into(), "%s".into(), path.to_string_lossy().into()]).await?;
    Ok(if out.status == 0 { out.stdout.trim().parse().ok() } else { None })
}

impl FileNemesis {
    fn dir(env: &TestEnv) -> PathBuf {
        env.run_dir.join("nemesis").join("file")
    }

    /// Copies every data file of `node` to the run directory.
    async fn copy_files(&mut self, env: &TestEnv, db: &dyn Db, node: &str) -> Result<Pending> {
        let files = db.data_files(env, node);
        if files.is_empty() {
            return Err(HarnessError::Unsupported {
                runtime: env.runtime.name().to_owned(),
                what: "damage data files".into(),
                why: "the target names no data files (Db::data_files)".into(),
            });
        }
        let c = control(env, node)?;
        let dir = Self::dir(env);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let mut copies = Vec::new();
        for f in files {
            if !exists(c, &f.path).await? {
                copies.push((f, None));
                continue;
            }
            self.seq += 1;
            let name = f.path.file_name().map(|n| n.to_string_lossy().into_owned());
            let local = dir.join(format!("{node}-{}-{}", self.seq, name.unwrap_or_default()));
            c.download(&f.path, &local).await?;
            copies.push((f, Some(local)));
        }
        Ok(Pending { node: node.to_owned(), fault: FileFault::Truncate, files: copies })
    }

    /// Begins `fault` on `node`: kills it and damages its files
    /// (truncate, bitflip), or snapshots them (rollback, lose-unfsynced);
    /// the fault is then pending until the stop. Returns what was done, per
    /// file.
    async fn begin(
        &mut self,
        env: &TestEnv,
        db: &dyn Db,
        node: &str,
        fault: FileFault,
        rng: &mut Rng,
    ) -> Result<Value> {
        let damaging = matches!(fault, FileFault::Truncate | FileFault::Bitflip);
        if damaging {
            db.kill(env, node).await?;
        }
        let mut p = self.copy_files(env, db, node).await?;
        p.fault = fault;
        let c = control(env, node)?;
        let mut files = Vec::new();
        for (f, local) in &p.files {
            let mut d = vec![(Value::str("file"), Value::str(f.path.to_string_lossy()))];
            let Some(local) = local else {
                d.push((Value::str("absent"), Value::Bool(true)));
                files.push(Value::map(d));
                continue;
            };
            let mut bytes = std::fs::read(local).map_err(io(local))?;
            d.push((Value::str("bytes"), Value::Int(bytes.len() as i64)));
            if damaging {
                d.push(damage(fault, &mut bytes, rng));
                let damaged = local.with_extension("damaged");
                std::fs::write(&damaged, &bytes).map_err(io(&damaged))?;
                c.upload(&damaged, &f.path, 0o644).await?;
                let _ = std::fs::remove_file(&damaged);
            } else {
                d.push((Value::str("snapshot"), Value::Bool(true)));
            }
            files.push(Value::map(d));
        }
        self.pending.push(p);
        Ok(Value::list(files))
    }

    /// Starts `node`; if it refuses (exits), records why, puts back the
    /// pre-damage files when `repair` and starts it again.
    async fn restart(
        env: &TestEnv,
        db: &dyn Db,
        node: &str,
        repair: Option<&[(DataFile, Option<PathBuf>)]>,
    ) -> Result<Value> {
        db.start(env, node).await?;
        let first = db.await_ready(env, node, READY).await;
        let mut fields = Vec::new();
        match first {
            Ok(()) => fields.push((Value::str("started"), Value::Bool(true))),
            Err(e) if db.is_running(env, node).await? => {
                // Running but not answering (a partition, a pause): not a refusal.
                fields.push((Value::str("started"), Value::Bool(true)));
                fields.push((Value::str("not-answering"), Value::str(e.to_string())));
            }
            Err(e) => {
                let reason = log_reason(env, db, node).await.unwrap_or_else(|| e.to_string());
                tracing::info!(node, "refused to start on a damaged file: {reason}");
                fields.push((Value::str("refused"), Value::str(reason)));
                let Some(files) = repair else {
                    fields.push((Value::str("started"), Value::Bool(false)));
                    return Ok(Value::map(fields));
                };
                put_back(env, node, files).await?;
                db.start(env, node).await?;
                let again = db.await_ready(env, node, READY).await;
                fields.push((Value::str("restored"), Value::Bool(true)));
                fields.push((Value::str("started"), Value::Bool(again.is_ok())));
                if let Err(e) = again {
                    fields.push((Value::str("not-answering"), Value::str(e.to_string())));
                }
            }
        }
        Ok(Value::map(fields))
    }

    /// Ends one pending fault.
    async fn finish(env: &TestEnv, db: &dyn Db, p: &Pending) -> Result<Value> {
        let c = control(env, &p.node)?;
        let mut fields = vec![
            (Value::str("node"), Value::str(&p.node)),
            (Value::str("fault"), Value::str(p.fault.name())),
        ];
        match p.fault {
            FileFault::Truncate | FileFault::Bitflip => {
                fields.push((
                    Value::str("restart"),
                    Self::restart(env, db, &p.node, Some(&p.files)).await?,
                ));
            }
            FileFault::Rollback | FileFault::LoseUnfsynced => {
                db.kill(env, &p.node).await?;
                let mut files = Vec::new();
                for (f, snapshot) in &p.files {
                    let now = size(c, &f.path).await?.unwrap_or(0);
                    let restore =
                        p.fault == FileFault::Rollback || f.durability == Durability::NoFsync;
                    let mut d = vec![(Value::str("file"), Value::str(f.path.to_string_lossy()))];
                    if restore {
                        let before = match snapshot {
                            Some(local) => {
                                c.upload(local, &f.path, 0o644).await?;
                                std::fs::metadata(local).map_err(io(local))?.len()
                            }
                            None => {
                                // The file did not exist at the snapshot.
                                let _ = c
                                    .exec("rm", &["-f".into(), f.path.to_string_lossy().into()])
                                    .await?;
                                0
                            }
                        };
                        d.push((Value::str("bytes-before"), Value::Int(now as i64)));
                        d.push((Value::str("bytes-after"), Value::Int(before as i64)));
                    } else {
                        d.push((Value::str("fsynced-before-ack"), Value::Bool(true)));
                        d.push((Value::str("bytes-kept"), Value::Int(now as i64)));
                    }
                    files.push(Value::map(d));
                }
                fields.push((Value::str("files"), Value::list(files)));
                fields.push((Value::str("restart"), Self::restart(env, db, &p.node, None).await?));
            }
        }
        for (_, local) in &p.files {
            if let Some(l) = local {
                let _ = std::fs::remove_file(l);
            }
        }
        Ok(Value::map(fields))
    }

    /// Ends every pending fault; each outcome (or failure) is a value to
    /// record, and the first failure is also returned.
    async fn finish_all(&mut self) -> (Vec<Value>, Option<HarnessError>) {
        let Ok((env, db)) = self.bound.get("file") else { return (Vec::new(), None) };
        let mut out = Vec::new();
        let mut first = None;
        for p in std::mem::take(&mut self.pending) {
            match Self::finish(&env, db.as_ref(), &p).await {
                Ok(v) => out.push(v),
                Err(e) => {
                    out.push(Value::map(vec![
                        (Value::str("node"), Value::str(&p.node)),
                        (Value::str("fault"), Value::str(p.fault.name())),
                        (Value::str("error"), Value::str(e.to_string())),
                    ]));
                    first.get_or_insert(e);
                }
            }
        }
        (out, first)
    }
}

/// Uploads the local copies back over the node's files.
async fn put_back(env: &TestEnv, node: &str, files: &[(DataFile, Option<PathBuf>)]) -> Result<()> {
    let c = control(env, node)?;
    for (f, local) in files {
        if let Some(l) = local {
            c.upload(l, &f.path, 0o644).await?;
        }
    }
    Ok(())
}

/// The line of the node's log that says why it stopped: the last one that
/// mentions an error or corruption, else the last line.
async fn log_reason(env: &TestEnv, db: &dyn Db, node: &str) -> Option<String> {
    let c = control(env, node).ok()?;
    let log = db.log_files(env, node).into_iter().next()?;
    let out =
        c.exec("tail", &["-n".into(), "20".into(), log.to_string_lossy().into()]).await.ok()?;
    let lines: Vec<&str> = out.stdout.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let pick = lines
        .iter()
        .rev()
        .find(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("corrupt") || l.contains("error")
        })
        .or(lines.last())?;
    Some((*pick).to_owned())
}

#[async_trait]
impl Nemesis for FileNemesis {
    fn fs(&self) -> Vec<String> {
        vec!["start-file".into(), "stop-file".into()]
    }

    async fn setup(&mut self, env: &TestEnv, db: Arc<dyn Db>) -> Result<()> {
        self.bound.set(env, db);
        Ok(())
    }

    async fn invoke(&mut self, op: &Invocation, rng: &mut Rng) -> Result<Value> {
        let (env, db) = self.bound.get("file")?;
        match op.f.as_str() {
            "start-file" => {
                if !self.pending.is_empty()
                    && let (_, Some(e)) = self.finish_all().await
                {
                    return Err(e);
                }
                let fault =
                    field(&op.value, "fault", FileFault::parse).unwrap_or(FileFault::Bitflip);
                let rule = field(&op.value, "targets", Targets::parse).unwrap_or(Targets::One);
                let nodes = rule.choose(env.nodes(), db.as_ref(), &env, rng).await;
                // A target without data files is refused before any node
                // goes down.
                if let Some(n) = nodes.iter().find(|n| db.data_files(&env, n).is_empty()) {
                    return Err(HarnessError::Unsupported {
                        runtime: env.runtime.name().to_owned(),
                        what: format!("damage the data files of {n}"),
                        why: "the target names no data files (Db::data_files)".into(),
                    });
                }
                let mut per_node = Vec::new();
                for node in &nodes {
                    match self.begin(&env, db.as_ref(), node, fault, rng).await {
                        Ok(files) => per_node.push((Value::str(node), files)),
                        Err(e) => {
                            // Not left down by a fault that could not be
                            // done (what was begun on other nodes is
                            // pending and ends at the stop).
                            let _ = db.start(&env, node).await;
                            return Err(e);
                        }
                    }
                }
                tracing::info!(fault = fault.name(), ?nodes, "file fault");
                Ok(Value::map(vec![
                    (Value::str("fault"), Value::str(fault.name())),
                    (Value::str("targets"), Value::str(rule.name())),
                    (Value::str("nodes"), nodes_value(&nodes)),
                    (Value::str("files"), Value::map(per_node)),
                ]))
            }
            // Failures are part of the record; the harness logs nothing
            // more useful than what the value says.
            "stop-file" => Ok(Value::list(self.finish_all().await.0)),
            other => Err(HarnessError::Internal(format!("file nemesis cannot {other}"))),
        }
    }

    async fn heal(&mut self) -> Result<()> {
        match self.finish_all().await {
            (_, Some(e)) => Err(e),
            _ => Ok(()),
        }
    }
}

/// The `file` package: `options.file_faults` (comma-separated `truncate`,
/// `bitflip`, `rollback`, `lose-unfsynced`; default all) and
/// `options.file_targets` (default `one,primaries`: each fault draws one).
pub fn package(spec: &TestSpec) -> Result<NemesisPackage> {
    let known: Vec<(&str, FileFault)> = FileFault::EVERY.iter().map(|k| (k.name(), *k)).collect();
    let faults = option_list(spec, "file_faults", &known, &FileFault::EVERY)?;
    // One node at a time, sometimes the primary: damaging the files of a
    // majority at once destroys data no replication scheme can keep.
    let rules = targets_option(spec, "file_targets", &[Targets::One, Targets::Primaries])?;
    let start = g::from_fn(move |rng: &mut Rng, _| {
        let fault = faults[rng.random_range(0..faults.len())];
        let rule = rules[rng.random_range(0..rules.len())];
        Some(Invocation::new(
            "start-file",
            Value::map(vec![
                (Value::str("fault"), Value::str(fault.name())),
                (Value::str("targets"), Value::str(rule.name())),
            ]),
        ))
    });
    let stop = g::from_fn(|_, _| Some(Invocation::new("stop-file", Value::Nil)));
    Ok(NemesisPackage {
        nemesis: Box::new(FileNemesis::default()),
        generator: g::flip_flop(start, stop),
        final_generator: g::op(Invocation::new("stop-file", Value::Nil)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn truncation_cuts_at_most_a_quarter() {
        let mut rng = Rng::seed_from_u64(3);
        for len in [1usize, 10, 4096, 1 << 20] {
            let mut b = vec![7u8; len];
            let cut = truncate(&mut b, &mut rng);
            assert!(cut >= 1 && cut <= (len / 4).clamp(1, MAX_CUT), "{cut} of {len}");
            assert_eq!(b.len(), len - cut);
        }
        assert_eq!(truncate(&mut Vec::new(), &mut rng), 0);
    }

    #[test]
    fn bitflips_change_exactly_the_bytes_they_report() {
        let mut rng = Rng::seed_from_u64(8);
        let orig = vec![0u8; 10_000];
        let mut b = orig.clone();
        let at = bitflip(&mut b, &mut rng);
        assert_eq!(at.len(), 3, "one flip per 4 KiB started");
        let changed: Vec<usize> = (0..b.len()).filter(|i| b[*i] != orig[*i]).collect();
        let mut distinct = at.clone();
        distinct.dedup();
        if distinct.len() == at.len() {
            // No byte was hit twice: each reported byte lost exactly one bit.
            assert_eq!(changed, at);
            assert!(changed.iter().all(|c| b[*c].count_ones() == 1));
        } else {
            assert!(changed.iter().all(|c| distinct.contains(c)), "{changed:?} vs {at:?}");
        }
    }
}
