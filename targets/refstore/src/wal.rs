//! The write-ahead log: checksummed JSON records appended to one file per node, fsynced
//! before acknowledgement in the modes that promise durability, and replayed on restart.
//!
//! Each record is framed as `magic (2 bytes) | length (4 bytes, big-endian) | CRC-32 of the
//! payload (4 bytes, big-endian) | payload`. On recovery a damaged record is classified:
//! - a *torn tail*: the last record is incomplete (the file ends inside it). A crash while
//!   appending leaves exactly this, and such a record was never fsynced, so never
//!   acknowledged: it is cut off with a warning in every mode.
//! - *corruption*: a complete record whose checksum or framing is wrong. Under
//!   [`RecoveryPolicy::Refuse`] the node refuses to start (acknowledged data may be gone and
//!   continuing could break the mode's promises); under [`RecoveryPolicy::Truncate`] the log is
//!   cut before the damage with an error in the log and in `/admin/status`.
//!
//! Nothing is ever skipped silently: every cut is reported in [`RecoveryReport`].

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const MAGIC: [u8; 2] = [0xFA, 0x17];
const HEADER: usize = 10;
/// Records larger than this are treated as damage (a corrupted length field).
const MAX_RECORD: usize = 256 << 20;

/// What to do with a log whose records fail their checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecoveryPolicy {
    /// Refuse to start: the default of the modes that promise durability.
    Refuse,
    /// Cut the log before the first damaged record and go on: the default of the modes
    /// whose peers repair a node's missing state anyway.
    Truncate,
}

/// Errors of the write-ahead log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// The file could not be opened, read, written or synced.
    #[error("write-ahead log {path}: {source}")]
    Io {
        /// The log file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A record failed its checksum and the policy is to refuse.
    #[error(
        "write-ahead log {path} is corrupt at byte {offset}: {detail}; refusing to start \
         because acknowledged data may be lost (restart with --wal-recovery truncate to cut \
         the log at that point, or remove the data directory)"
    )]
    Corrupt {
        /// The log file.
        path: PathBuf,
        /// Byte offset of the damaged record.
        offset: u64,
        /// What was wrong.
        detail: String,
    },
    /// A record had a valid checksum but did not decode: a bug or a different version.
    #[error("write-ahead log {path}: record at byte {offset} does not decode: {detail}")]
    Decode {
        /// The log file.
        path: PathBuf,
        /// Byte offset of the record.
        offset: u64,
        /// The decoder's message.
        detail: String,
    },
    /// A record could not be encoded.
    #[error("write-ahead log {path}: cannot encode a record: {detail}")]
    Encode {
        /// The log file.
        path: PathBuf,
        /// The encoder's message.
        detail: String,
    },
}

/// What recovery found and did; shown in `/admin/status` as `wal`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RecoveryReport {
    /// Records replayed.
    pub records: usize,
    /// Bytes cut from the end of the file.
    pub truncated_bytes: u64,
    /// Offset and description of the damage that caused the cut, if any.
    pub damage: Option<String>,
}

/// An open write-ahead log, positioned at its end.
#[derive(Debug)]
pub struct Wal {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
}

impl Wal {
    /// Opens (creating if needed) `dir/wal.log`, replays its records and repairs its tail as
    /// described in the module documentation.
    pub fn open<R: DeserializeOwned>(
        dir: &Path,
        policy: RecoveryPolicy,
    ) -> Result<(Wal, Vec<R>, RecoveryReport), WalError> {
        let path = dir.join("wal.log");
        let io = |source| WalError::Io { path: path.clone(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file =
            OpenOptions::new().read(true).append(true).create(true).open(&path).map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let (records, report, offset) = replay(&path, &bytes, policy)?;
        if offset < bytes.len() {
            file.set_len(offset as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        Ok((Wal { path, file, buf: Vec::new() }, records, report))
    }

    /// Appends `records` in one write and, when `sync`, waits until they are on disk.
    pub fn append<R: Serialize>(&mut self, records: &[R], sync: bool) -> Result<(), WalError> {
        if records.is_empty() {
            return Ok(());
        }
        self.buf.clear();
        encode(&self.path, records, &mut self.buf)?;
        let io = |source| WalError::Io { path: self.path.clone(), source };
        self.file.write_all(&self.buf).map_err(io)?;
        if sync {
            self.file.sync_data().map_err(io)?;
        }
        Ok(())
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Appends `records` to `buf` framed as the log stores them (the bytes
/// [`Wal::append`] writes); `path` names the log in errors.
pub fn encode<R: Serialize>(path: &Path, records: &[R], buf: &mut Vec<u8>) -> Result<(), WalError> {
    for rec in records {
        let payload = serde_json::to_vec(rec)
            .map_err(|e| WalError::Encode { path: path.to_path_buf(), detail: e.to_string() })?;
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        buf.extend_from_slice(&crc32fast::hash(&payload).to_be_bytes());
        buf.extend_from_slice(&payload);
    }
    Ok(())
}

/// Recovery without I/O: the records of the log `bytes` (the file `path`)
/// as [`Wal::open`] replays them under `policy`, what it found, and the
/// length the file is cut to. A simulated disk recovers through this, so
/// it keeps, cuts and refuses exactly what a real node does.
pub fn replay<R: DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
    policy: RecoveryPolicy,
) -> Result<(Vec<R>, RecoveryReport, usize), WalError> {
    let mut records = Vec::new();
    let mut report = RecoveryReport::default();
    let mut offset = 0usize;
    while offset < bytes.len() {
        match frame_at(bytes, offset) {
            Frame::Ok(payload) => {
                let rec = serde_json::from_slice(payload).map_err(|e| WalError::Decode {
                    path: path.to_path_buf(),
                    offset: offset as u64,
                    detail: e.to_string(),
                })?;
                records.push(rec);
                offset += HEADER + payload.len();
            }
            Frame::Torn if !valid_record_after(bytes, offset) => {
                report.damage = Some(format!(
                    "torn tail at byte {offset}: the last record is incomplete (a crash \
                         during an append that was never acknowledged)"
                ));
                break;
            }
            Frame::Torn | Frame::Bad(_) => {
                let detail = match frame_at(bytes, offset) {
                    Frame::Bad(d) => d,
                    _ => "a record's length runs past the next valid record".to_string(),
                };
                let detail = if valid_record_after(bytes, offset) {
                    format!("{detail}; valid records follow, so this is not a torn append")
                } else {
                    detail
                };
                if policy == RecoveryPolicy::Refuse {
                    return Err(WalError::Corrupt {
                        path: path.to_path_buf(),
                        offset: offset as u64,
                        detail,
                    });
                }
                report.damage = Some(format!("corrupt record at byte {offset}: {detail}"));
                break;
            }
        }
    }
    report.records = records.len();
    report.truncated_bytes = (bytes.len() - offset) as u64;
    Ok((records, report, offset))
}

/// How the bytes at one offset parse as a record.
enum Frame<'a> {
    /// A complete record with a valid checksum.
    Ok(&'a [u8]),
    /// The file ends inside the record.
    Torn,
    /// A complete record that is damaged.
    Bad(String),
}

fn frame_at(bytes: &[u8], offset: usize) -> Frame<'_> {
    let rest = &bytes[offset..];
    if rest.len() < HEADER {
        return if rest.iter().zip(MAGIC).all(|(a, b)| *a == b) {
            Frame::Torn
        } else {
            Frame::Bad("bad record header".into())
        };
    }
    if rest[..2] != MAGIC {
        return Frame::Bad("bad record marker".into());
    }
    let len = u32::from_be_bytes([rest[2], rest[3], rest[4], rest[5]]) as usize;
    let crc = u32::from_be_bytes([rest[6], rest[7], rest[8], rest[9]]);
    if len > MAX_RECORD {
        return Frame::Bad(format!("record length {len} is implausible"));
    }
    if rest.len() < HEADER + len {
        return Frame::Torn;
    }
    let payload = &rest[HEADER..HEADER + len];
    if crc32fast::hash(payload) != crc {
        return Frame::Bad("checksum mismatch".into());
    }
    Frame::Ok(payload)
}

/// Whether any complete, valid record starts after `offset`: if one does, the damage at
/// `offset` is in the middle of the log, not a torn final append.
fn valid_record_after(bytes: &[u8], offset: usize) -> bool {
    (offset + 1..bytes.len().saturating_sub(HEADER - 1))
        .filter(|&o| bytes[o..o + 2] == MAGIC)
        .any(|o| matches!(frame_at(bytes, o), Frame::Ok(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_three(dir: &Path) -> u64 {
        let (mut wal, recs, _) =
            Wal::open::<String>(dir, RecoveryPolicy::Refuse).expect("fresh log opens");
        assert!(recs.is_empty());
        wal.append(&["one".to_string(), "two".to_string()], true).expect("append");
        wal.append(&["three".to_string()], false).expect("append");
        std::fs::metadata(wal.path()).expect("log exists").len()
    }

    #[test]
    fn records_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_three(dir.path());
        let (_, recs, report) =
            Wal::open::<String>(dir.path(), RecoveryPolicy::Refuse).expect("reopen");
        assert_eq!(recs, vec!["one", "two", "three"]);
        assert_eq!(report, RecoveryReport { records: 3, truncated_bytes: 0, damage: None });
    }

    #[test]
    fn a_torn_tail_is_cut_and_reported_even_under_refuse() {
        let dir = tempfile::tempdir().expect("tempdir");
        let len = write_three(dir.path());
        let path = dir.path().join("wal.log");
        let f = OpenOptions::new().write(true).open(&path).expect("open");
        f.set_len(len - 3).expect("truncate");
        let (mut wal, recs, report) =
            Wal::open::<String>(dir.path(), RecoveryPolicy::Refuse).expect("reopen");
        assert_eq!(recs, vec!["one", "two"]);
        assert!(report.damage.as_deref().unwrap_or("").contains("torn tail"));
        assert_eq!(report.truncated_bytes, HEADER as u64 + 7 - 3);
        // The log is usable after the cut.
        wal.append(&["four".to_string()], true).expect("append after repair");
        let (_, recs, _) = Wal::open::<String>(dir.path(), RecoveryPolicy::Refuse).expect("open");
        assert_eq!(recs, vec!["one", "two", "four"]);
    }

    #[test]
    fn a_flipped_bit_is_refused_or_truncated_by_policy() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_three(dir.path());
        let path = dir.path().join("wal.log");
        let mut bytes = std::fs::read(&path).expect("read");
        // Flip a bit inside the payload of the second record ("two").
        let second = HEADER + 5;
        bytes[second + HEADER + 1] ^= 0x01;
        std::fs::write(&path, &bytes).expect("write");
        let err = Wal::open::<String>(dir.path(), RecoveryPolicy::Refuse).expect_err("refused");
        let msg = err.to_string();
        assert!(msg.contains("checksum mismatch") && msg.contains("valid records follow"), "{msg}");
        let (_, recs, report) =
            Wal::open::<String>(dir.path(), RecoveryPolicy::Truncate).expect("truncated");
        assert_eq!(recs, vec!["one"]);
        assert!(report.damage.as_deref().unwrap_or("").contains(&format!("byte {second}")));
    }
}
