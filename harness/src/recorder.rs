//! The crash-safe recorder: appends every event to `history.jsonl` as it
//! happens.
//!
//! The interpreter serialises each event into an in-memory batch (an
//! invocation before the call is made, a completion after it returns). A
//! batch is handed to a writer thread when it reaches `batch_bytes` or when
//! `batch_interval` has passed since the previous hand-over, and the writer
//! thread `write`s it to the file at once. A harness that crashes or is
//! killed with SIGKILL therefore loses at most the events of the batch it
//! was filling: written bytes live in the kernel's page cache, which
//! survives the process. The writer also `fsync`s at most once per
//! `sync_interval`, so a machine crash loses at most that much more. The
//! reader in `checkers::formats` accepts a torn last line.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use checkers::Op;
use checkers::formats::{JSONL_SCHEMA_VERSION, write_jsonl_line};

use crate::error::{HarnessError, Result};

/// When batches are handed to the disk.
#[derive(Clone, Copy, Debug)]
pub struct RecorderConfig {
    /// Hand the batch over once it holds this many bytes.
    pub batch_bytes: usize,
    /// Hand the batch over once this long has passed since the last time.
    pub batch_interval: Duration,
    /// Call `fsync` at most this often.
    pub sync_interval: Duration,
}

impl Default for RecorderConfig {
    fn default() -> RecorderConfig {
        RecorderConfig {
            batch_bytes: 256 * 1024,
            batch_interval: Duration::from_millis(50),
            sync_interval: Duration::from_secs(1),
        }
    }
}

enum Msg {
    Write(Vec<u8>),
    Sync,
}

/// Appends operations to a JSONL history file. See the module docs.
pub struct Recorder {
    path: PathBuf,
    buf: Vec<u8>,
    config: RecorderConfig,
    last_handover: Instant,
    next_index: u64,
    tx: Option<mpsc::SyncSender<Msg>>,
    /// Empty buffers coming back from the writer, to reuse their capacity.
    spare: mpsc::Receiver<Vec<u8>>,
    writer: Option<JoinHandle<std::io::Result<u64>>>,
}

impl Recorder {
    /// Creates `path` (failing if it exists, so a run never overwrites
    /// another's history) and writes the format header line.
    pub fn create(path: &Path, config: RecorderConfig) -> Result<Recorder> {
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| HarnessError::io(path, e))?;
        // A few batches in flight absorb a slow disk without blocking the
        // interpreter; beyond that, back-pressure is the honest answer.
        let (tx, rx) = mpsc::sync_channel::<Msg>(8);
        let (spare_tx, spare) = mpsc::channel::<Vec<u8>>();
        let sync_interval = config.sync_interval;
        let writer = std::thread::Builder::new()
            .name("faultline-recorder".into())
            .spawn(move || writer_loop(file, rx, spare_tx, sync_interval))
            .map_err(|e| HarnessError::io(path, e))?;
        let mut r = Recorder {
            path: path.to_owned(),
            buf: Vec::with_capacity(config.batch_bytes + 4096),
            config,
            last_handover: Instant::now(),
            next_index: 0,
            tx: Some(tx),
            spare,
            writer: Some(writer),
        };
        r.buf.extend_from_slice(
            format!("{{\"format\":\"faultline-history\",\"version\":{JSONL_SCHEMA_VERSION}}}\n")
                .as_bytes(),
        );
        r.handover()?;
        Ok(r)
    }

    /// The history file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Events recorded so far.
    pub fn len(&self) -> u64 {
        self.next_index
    }

    /// Whether nothing was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.next_index == 0
    }

    /// Numbers `op` (its `index` is overwritten with the next index) and
    /// appends it to the current batch.
    pub fn record(&mut self, op: &mut Op) -> Result<()> {
        op.index = self.next_index;
        self.next_index += 1;
        write_jsonl_line(op, &mut self.buf);
        if self.buf.len() >= self.config.batch_bytes {
            self.handover()?;
        }
        Ok(())
    }

    /// Hands the batch over if `batch_interval` has passed; call this
    /// regularly (the interpreter does, also when idle).
    pub fn tick(&mut self) -> Result<()> {
        if !self.buf.is_empty() && self.last_handover.elapsed() >= self.config.batch_interval {
            self.handover()?;
        }
        Ok(())
    }

    /// The time until the current batch is due, for the interpreter's timer.
    pub fn due_in(&self) -> Option<Duration> {
        if self.buf.is_empty() {
            None
        } else {
            Some(self.config.batch_interval.saturating_sub(self.last_handover.elapsed()))
        }
    }

    /// Hands the current batch to the writer thread now.
    pub fn handover(&mut self) -> Result<()> {
        self.last_handover = Instant::now();
        if self.buf.is_empty() {
            return Ok(());
        }
        let fresh =
            self.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(self.buf.capacity()));
        let batch = std::mem::replace(&mut self.buf, fresh);
        let sent = self.tx.as_ref().map(|tx| tx.send(Msg::Write(batch)));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => Err(self.writer_failed()),
        }
    }

    /// Writes everything, `fsync`s, and closes the file. Returns the number
    /// of events recorded.
    pub fn finish(mut self) -> Result<u64> {
        self.handover()?;
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Msg::Sync);
        }
        self.join()?;
        Ok(self.next_index)
    }

    fn join(&mut self) -> Result<()> {
        self.tx = None;
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(Ok(_))) | None => Ok(()),
            Some(Ok(Err(e))) => Err(HarnessError::io(&self.path, e)),
            Some(Err(_)) => {
                Err(HarnessError::Internal("the recorder's writer thread panicked".into()))
            }
        }
    }

    fn writer_failed(&mut self) -> HarnessError {
        match self.join() {
            Err(e) => e,
            Ok(()) => HarnessError::Internal("the recorder's writer thread stopped".into()),
        }
    }
}

impl Drop for Recorder {
    /// A harness that panics or returns early still writes what it recorded.
    fn drop(&mut self) {
        if self.tx.is_some() {
            let _ = self.handover();
            let _ = self.join();
        }
    }
}

fn writer_loop(
    mut file: File,
    rx: mpsc::Receiver<Msg>,
    spare: mpsc::Sender<Vec<u8>>,
    sync_interval: Duration,
) -> std::io::Result<u64> {
    let mut written = 0u64;
    let mut last_sync = Instant::now();
    let mut dirty = false;
    for msg in rx {
        match msg {
            Msg::Write(mut batch) => {
                file.write_all(&batch)?;
                written += batch.len() as u64;
                dirty = true;
                batch.clear();
                let _ = spare.send(batch);
                if last_sync.elapsed() >= sync_interval {
                    file.sync_data()?;
                    last_sync = Instant::now();
                    dirty = false;
                }
            }
            Msg::Sync => {
                file.sync_data()?;
                dirty = false;
            }
        }
    }
    if dirty {
        file.sync_data()?;
    }
    Ok(written)
}
