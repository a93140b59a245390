//! `faultline report` and `faultline serve`: the store's commands, with the
//! registry's checkers drawing each verdict's evidence, so a plugin
//! checker's pages appear in reports like a built-in one's.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::Args;

use super::{EXIT_BAD_INPUT, EXIT_VALID};
use crate::plugin::Registry;

/// Options of `faultline report`.
#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// The run directory: `store/<test>/<timestamp>`, or a `latest` link.
    pub run_dir: PathBuf,
}

/// Redraws a run's `report.html` from the files in its directory and
/// prints its path: exit 0. Files the report had to do without (an
/// unreadable history, say) are printed as warnings and named in the
/// report. A directory that is not a run exits 254.
pub fn report(args: &ReportArgs, registry: &Registry) -> i32 {
    match results::regenerate_report(&args.run_dir, registry.checkers()) {
        Ok(written) => {
            for w in &written.warnings {
                eprintln!("faultline report: warning: {w}");
            }
            println!("{}", written.report.display());
            EXIT_VALID
        }
        Err(e) => {
            eprintln!("faultline report: {e}");
            EXIT_BAD_INPUT
        }
    }
}

/// Options of `faultline serve`.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// The store to show.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// The port to listen on (0 picks a free one).
    #[arg(long, short, default_value_t = 8080)]
    pub port: u16,
    /// The address to listen on. Anything but loopback shows every run's
    /// files to the network.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
}

/// Serves the store until Ctrl-C; exit 254 when the address cannot be bound.
pub fn serve(args: &ServeArgs, registry: &Registry) -> i32 {
    let shown = args.store.display().to_string();
    let store = results::Store::new(args.store.clone());
    let addr = SocketAddr::new(args.bind, args.port);
    let served = results::serve::run_server(store, registry.checkers().clone(), addr, |bound| {
        println!("faultline serve: store {shown} at http://{bound}/ (Ctrl-C to stop)");
    });
    match served {
        Ok(()) => EXIT_VALID,
        Err(e) => {
            eprintln!("faultline serve: {addr}: {e}");
            EXIT_BAD_INPUT
        }
    }
}
