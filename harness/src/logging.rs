//! Logging: `tracing` events go to the current run's `faultline.log`.
//!
//! The subscriber is global and installed once; what changes from run to
//! run is the file behind it, so several runs in one process (tests) each
//! get their own log.

use std::fs::File;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

static SINK: Mutex<Option<File>> = Mutex::new(None);
static INSTALLED: OnceLock<()> = OnceLock::new();

/// Writes to the current log file, or nowhere.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunLog;

impl Write for RunLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match SINK.lock() {
            Ok(mut guard) => match guard.as_mut() {
                Some(f) => f.write(buf),
                None => Ok(buf.len()),
            },
            Err(_) => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match SINK.lock() {
            Ok(mut guard) => guard.as_mut().map_or(Ok(()), Write::flush),
            Err(_) => Ok(()),
        }
    }
}

impl<'a> MakeWriter<'a> for RunLog {
    type Writer = RunLog;
    fn make_writer(&'a self) -> RunLog {
        RunLog
    }
}

/// Installs the global subscriber (once) and points it at `file` (or
/// nowhere). The level comes from `FAULTLINE_LOG` (default `info`).
pub fn log_to(file: Option<File>) {
    INSTALLED.get_or_init(|| {
        let filter =
            EnvFilter::try_from_env("FAULTLINE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(RunLog)
            .try_init();
    });
    if let Ok(mut guard) = SINK.lock() {
        *guard = file;
    }
}
