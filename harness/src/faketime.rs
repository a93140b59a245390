//! Clock faults for programs that have no clock control of their own, through
//! libfaketime (Debian's `libfaketime`): the program starts with the library
//! preloaded and reads its offset from a small file on its node, which the
//! harness rewrites to bump, strobe or skew that node's wall clock. The host
//! clock is never touched.
//!
//! Only the wall clock (`CLOCK_REALTIME`, `gettimeofday`, `time`) is faked:
//! timers and timeouts run on the monotonic clock, as real clock jumps leave
//! it alone. Where it works: programs that read time through the C library,
//! Rust programs included. Where it does not: Go programs (etcd) read the
//! clock through the vDSO without libc, so the preload never sees the call;
//! Redis crashes under it. Targets like those get no clock faults.

use std::path::{Path, PathBuf};

use crate::error::{HarnessError, Result};
use crate::node::NodeControl;

/// Where Debian installs the thread-safe library, per architecture.
pub const LIBRARY_PATHS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/faketime/libfaketimeMT.so.1",
    "/usr/local/lib/faketime/libfaketimeMT.so.1",
];

/// libfaketime on one node: the library, and the file holding the offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Faketime {
    /// The preloaded library on the node.
    pub library: PathBuf,
    /// The file libfaketime reads the offset from on every clock call.
    pub offset_file: PathBuf,
}

impl Faketime {
    /// Finds the library on `node` and prepares `offset_file` with a zero
    /// offset; `Unsupported` (naming the package) when it is not installed.
    pub async fn prepare(node: &dyn NodeControl, offset_file: &Path) -> Result<Faketime> {
        for lib in LIBRARY_PATHS {
            let out = node.exec("test", &["-r".into(), (*lib).into()]).await?;
            if out.status == 0 {
                let ft = Faketime { library: lib.into(), offset_file: offset_file.to_owned() };
                ft.set_offset_ms(node, 0).await?;
                return Ok(ft);
            }
        }
        Err(HarnessError::Unsupported {
            runtime: node.id().to_owned(),
            what: "fake the clock with libfaketime".into(),
            why: format!(
                "none of {} exists; install Debian's libfaketime on the node",
                LIBRARY_PATHS.join(", ")
            ),
        })
    }

    /// The environment a daemon starts with so libfaketime governs its wall
    /// clock (and only its wall clock) from the offset file.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("LD_PRELOAD".into(), self.library.to_string_lossy().into_owned()),
            ("FAKETIME_TIMESTAMP_FILE".into(), self.offset_file.to_string_lossy().into_owned()),
            // Read the file on every call, so a new offset applies at once.
            ("FAKETIME_NO_CACHE".into(), "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
        ]
    }

    /// Sets the node's wall-clock offset from the host clock.
    pub async fn set_offset_ms(&self, node: &dyn NodeControl, offset_ms: i64) -> Result<()> {
        let file = self.offset_file.to_string_lossy().into_owned();
        // Written to a temporary file and renamed, so the program never
        // reads a half-written offset.
        let script = format!(
            "printf '%s\\n' {} > {tmp} && mv -f {tmp} {file}",
            offset_spec(offset_ms),
            tmp = crate::runtime::firewall::shell_quote(&format!("{file}.tmp")),
            file = crate::runtime::firewall::shell_quote(&file),
        );
        let out = node.exec("sh", &["-c".into(), script]).await?;
        if out.status != 0 {
            return Err(HarnessError::node(
                node.id(),
                "write the libfaketime offset",
                out.stderr.trim(),
            ));
        }
        Ok(())
    }
}

/// libfaketime's relative offset syntax: `+1.500` or `-0.250` seconds.
pub fn offset_spec(offset_ms: i64) -> String {
    let sign = if offset_ms < 0 { '-' } else { '+' };
    let abs = offset_ms.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_signed_seconds_with_milliseconds() {
        assert_eq!(offset_spec(1500), "+1.500");
        assert_eq!(offset_spec(-250), "-0.250");
        assert_eq!(offset_spec(0), "+0.000");
        assert_eq!(offset_spec(-86_400_001), "-86400.001");
    }
}
