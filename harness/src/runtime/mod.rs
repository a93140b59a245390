//! The three runtimes, and building one from a spec.

pub mod firewall;
pub mod local;
pub mod netem;
pub mod netns;
pub mod nfqueue;
pub mod process;
pub mod proxy;
pub mod shape;
pub mod ssh;

use std::path::Path;
use std::sync::Arc;

use crate::error::Result;
use crate::node::Runtime;
use crate::spec::{RuntimeKind, TestSpec};
use results::RunDir;

/// Brings up the runtime `spec` asks for, with node directories under the
/// run directory's `nodes/` and processes tagged with `tag`.
pub async fn build(
    spec: &TestSpec,
    run_dir: &RunDir,
    tag: &str,
    binary: &Path,
) -> Result<Arc<dyn Runtime>> {
    let nodes_dir = run_dir.path().join(results::store::files::NODES);
    Ok(match spec.runtime {
        RuntimeKind::Local => Arc::new(
            local::LocalRuntime::start(spec.nodes, nodes_dir, binary.to_owned(), tag).await?,
        ),
        RuntimeKind::Netns => Arc::new(
            netns::NetnsRuntime::start_with(
                spec.nodes,
                nodes_dir,
                binary.to_owned(),
                tag,
                firewall_choice(spec)?,
            )
            .await?,
        ),
        RuntimeKind::Sim => {
            return Err(crate::HarnessError::spec(
                "test spec",
                "runtime",
                "runtime \"sim\" is the deterministic simulation's: replay such a run with \
                 `faultline sim --seed S`, not `faultline test`",
            ));
        }
        RuntimeKind::Ssh => {
            let ssh = spec.ssh.clone().ok_or_else(|| {
                crate::HarnessError::spec(
                    "test spec",
                    "ssh",
                    "the ssh runtime needs an [ssh] table",
                )
            })?;
            Arc::new(
                ssh::SshRuntime::start(
                    spec.nodes,
                    &ssh,
                    run_dir,
                    binary,
                    tag,
                    firewall_choice(spec)?,
                )
                .await?,
            )
        }
    })
}

/// `options.firewall` (`auto`, `nft` or `iptables`): which tool installs
/// partitions in the `netns` and `ssh` runtimes.
pub(crate) fn firewall_choice(spec: &TestSpec) -> Result<firewall::FirewallChoice> {
    Ok(spec.option("firewall", firewall::FirewallChoice::Auto)?)
}
