//! Which checkers judge a test: the workload's own, or those the spec names
//! (`checkers`, with `default` standing for the workload's), each given the
//! test's consistency models, model and the options it reads. Everything
//! is settled before the run starts: a checker that is unknown, that would
//! refuse what it is given, or whose input the workload never produces is
//! refused, and so is an option no part of the test reads.

use std::collections::BTreeSet;

use checkers::registry::CheckerTable;
use checkers::spec::CheckSpec;

use crate::error::{HarnessError, Result};
use crate::plugin::{Registry, Workload};
use crate::spec::TestSpec;

/// The options the test's target, workload and nemeses read: found by
/// building them from a copy of the spec that notes what they ask for, so
/// the answer is the same when a run is planned and when it is analyzed
/// again. These are theirs; the checkers a test names get only the others
/// (`partition=primaries` is the nemesis's, not the linearizable checker's
/// `partition`).
fn component_options(spec: &TestSpec, registry: &Registry) -> BTreeSet<String> {
    let probe = TestSpec { options_read: Default::default(), ..spec.clone() };
    let _ = registry.build_target(&probe.target, &probe);
    let _ = registry.build_workload(&probe.workload, &probe);
    for name in probe.nemeses() {
        let _ = registry.build_nemesis(name, &probe);
    }
    probe.options_read.names()
}

/// The checks that judge a run of `spec` with `workload`.
pub fn test_checks(
    spec: &TestSpec,
    workload: &dyn Workload,
    registry: &Registry,
) -> Result<Vec<CheckSpec>> {
    let table = registry.checkers();
    let defaults = workload.checks(spec);
    let mut checks = Vec::new();
    if spec.checkers.is_empty() {
        checks = defaults;
    } else {
        let theirs = component_options(spec, registry);
        for name in &spec.checkers {
            if name == "default" {
                checks.extend(defaults.iter().cloned());
                continue;
            }
            if table.get(name).is_none() {
                return Err(HarnessError::Unknown {
                    kind: "checker",
                    name: name.clone(),
                    known: format!("default, {}", table.names().join(", ")),
                });
            }
            let mut options = spec.options.clone();
            options.retain(|k, _| !theirs.contains(k));
            let wanted = CheckSpec {
                checker: name.clone(),
                model: spec.model.clone(),
                consistency_models: spec.consistency_models.clone(),
                options,
                ..CheckSpec::default()
            };
            checks.push(table.restrict(&wanted, name));
        }
    }
    if !spec.consistency_models.is_empty() {
        for c in &mut checks {
            if table.get(&c.checker).is_some_and(|e| e.accepts.consistency_models) {
                c.consistency_models = spec.consistency_models.clone();
            }
        }
    }
    Ok(checks)
}

/// Refuses, before anything starts, checks that cannot judge this test:
/// a checker that refuses its spec, one that needs operations the workload
/// never performs, and test-level choices (`model`, `consistency_models`,
/// options) that nothing uses. Call it once every component of the test
/// has been built, so that the options they read are known.
pub fn validate(
    spec: &TestSpec,
    workload: &dyn Workload,
    table: &CheckerTable,
    checks: &[CheckSpec],
) -> Result<()> {
    let bad = |field: &str, message: String| Err(HarnessError::spec("test spec", field, message));
    let fs = workload.fs();
    for c in checks {
        if let Err(e) = table.build(c) {
            return bad("checkers", format!("checker {}: {e}", c.checker));
        }
        let Some(entry) = table.get(&c.checker) else { continue };
        if let Some(group) = entry.accepts.unmet_need(&fs) {
            return bad(
                "checkers",
                format!(
                    "checker {} judges {} operations, which workload {} never performs \
                     (it performs {})",
                    c.checker,
                    group.join(" or "),
                    spec.workload,
                    fs.join(", ")
                ),
            );
        }
    }
    let names = || {
        let mut names: Vec<&str> = checks.iter().map(|c| c.checker.as_str()).collect();
        names.dedup();
        names.join(", ")
    };
    if let Some(m) = &spec.model
        && !checks.iter().any(|c| c.model.as_ref() == Some(m))
    {
        return bad(
            "model",
            format!("no checker of this test takes a model ({m:?}); its checkers: {}", names()),
        );
    }
    if !spec.consistency_models.is_empty()
        && !checks.iter().any(|c| !c.consistency_models.is_empty())
    {
        return bad(
            "consistency_models",
            format!("no checker of this test takes consistency models; its checkers: {}", names()),
        );
    }
    let unread: Vec<&str> = spec
        .options_unread()
        .into_iter()
        .filter(|k| !checks.iter().any(|c| c.options.contains_key(*k)))
        .collect();
    if !unread.is_empty() {
        return bad(
            "options",
            format!(
                "{} read by no part of this test (target {}, workload {}, nemesis {}, checkers {}); \
                 `faultline test --list` and `faultline check --list` name each part's options",
                if unread.len() == 1 {
                    format!("option {} is", unread[0])
                } else {
                    format!("options {} are", unread.join(", "))
                },
                spec.target,
                spec.workload,
                if spec.nemeses().is_empty() {
                    "none".to_owned()
                } else {
                    spec.nemeses().join(",")
                },
                names()
            ),
        );
    }
    Ok(())
}
