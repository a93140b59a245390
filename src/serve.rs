//! `faultline serve`: a web view of the store (index of runs, reports,
//! files, comparisons), on 127.0.0.1 unless told otherwise.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::EXIT_BAD_INPUT;

/// Options of `faultline serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The store to show.
    #[arg(long, default_value = "store")]
    store: PathBuf,
    /// The port to listen on (0 picks a free one).
    #[arg(long, short, default_value_t = 8080)]
    port: u16,
    /// The address to listen on. Anything but loopback shows every run's
    /// files to the network.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,
}

/// Serves until Ctrl-C; exit 254 when the address cannot be bound.
pub fn run(args: ServeArgs) -> ExitCode {
    let shown = args.store.display().to_string();
    let store = results::Store::new(args.store);
    let addr = SocketAddr::new(args.bind, args.port);
    let served = results::serve::run_server(store, addr, |bound| {
        println!("faultline serve: store {shown} at http://{bound}/ (Ctrl-C to stop)");
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faultline serve: {addr}: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}
