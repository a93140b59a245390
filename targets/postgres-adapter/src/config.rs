//! PostgreSQL's configuration as data, without I/O: the options a test
//! chooses, the settings every server shares, each node's command line,
//! the standby's connection to its primary, and the replication positions
//! (LSNs) failover compares.

use std::fmt;
use std::net::SocketAddr;

use thiserror::Error;

/// A test's choices the adapter cannot work with.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// An option has a value the adapter does not know.
    #[error("options.{key}: {value:?}: use {allowed}")]
    BadOption {
        /// The option's name.
        key: &'static str,
        /// The value given.
        value: String,
        /// The values it takes, in words.
        allowed: &'static str,
    },
    /// A combination the adapter refuses, and why.
    #[error("{0}")]
    Refused(String),
    /// A replication position that is not `X/Y` in hexadecimal.
    #[error("not an LSN: {0:?}")]
    BadLsn(String),
}

/// How the primary replicates (`--opt pg_replication`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replication {
    /// Commits are acknowledged once flushed on the primary; standbys
    /// stream behind it.
    Async,
    /// `synchronous_standby_names = 'ANY 1 (*)'` with
    /// `synchronous_commit = remote_apply`: a commit is acknowledged once
    /// one standby has applied it.
    Sync,
}

impl Replication {
    /// Reads the option's value.
    pub fn parse(value: &str) -> Result<Replication, ConfigError> {
        match value {
            "async" => Ok(Replication::Async),
            "sync" => Ok(Replication::Sync),
            other => Err(ConfigError::BadOption {
                key: "pg_replication",
                value: other.to_owned(),
                allowed: "async or sync",
            }),
        }
    }
}

/// The isolation level of every transaction (`--opt isolation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// `READ COMMITTED`, PostgreSQL's default.
    ReadCommitted,
    /// `REPEATABLE READ`, which PostgreSQL implements as snapshot isolation.
    RepeatableRead,
    /// `SERIALIZABLE`: serializable snapshot isolation (SSI).
    Serializable,
}

impl Isolation {
    /// Reads the option's value.
    pub fn parse(value: &str) -> Result<Isolation, ConfigError> {
        match value {
            "read-committed" => Ok(Isolation::ReadCommitted),
            "repeatable-read" => Ok(Isolation::RepeatableRead),
            "serializable" => Ok(Isolation::Serializable),
            other => Err(ConfigError::BadOption {
                key: "isolation",
                value: other.to_owned(),
                allowed: "read-committed, repeatable-read or serializable",
            }),
        }
    }

    /// The statement that opens a transaction at this level.
    pub fn begin(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "BEGIN ISOLATION LEVEL READ COMMITTED",
            Isolation::RepeatableRead => "BEGIN ISOLATION LEVEL REPEATABLE READ",
            Isolation::Serializable => "BEGIN ISOLATION LEVEL SERIALIZABLE",
        }
    }
}

/// Who decides failover (`--opt pg_failover`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failover {
    /// The adapter itself, as an operator's script would (see `failover.rs`).
    Promote,
}

impl Failover {
    /// Reads the option's value; Patroni is named and refused, since it is
    /// not built.
    pub fn parse(value: &str) -> Result<Failover, ConfigError> {
        match value {
            "promote" => Ok(Failover::Promote),
            "patroni" => Err(ConfigError::Refused(
                "options.pg_failover: patroni is not built; the adapter's own promotion \
                 (pg_failover=promote) is the only failover"
                    .into(),
            )),
            other => Err(ConfigError::BadOption {
                key: "pg_failover",
                value: other.to_owned(),
                allowed: "promote",
            }),
        }
    }
}

/// The settings every server of the cluster shares, appended to the
/// `postgresql.conf` that `initdb` writes (and that `pg_basebackup` copies
/// to every standby). What differs per node goes on its command line.
pub fn shared_settings(replication: Replication) -> String {
    let (commit, standbys) = match replication {
        Replication::Async => ("on", ""),
        // `*` matches every standby's application name, so whichever node
        // is primary after a failover waits for one of the others.
        Replication::Sync => ("remote_apply", "ANY 1 (*)"),
    };
    format!(
        "\n# faultline\n\
         unix_socket_directories = ''\n\
         wal_level = replica\n\
         max_wal_senders = 10\n\
         wal_keep_size = '512MB'\n\
         hot_standby = on\n\
         # pg_rewind needs hint bits in the WAL to bring a former primary back.\n\
         wal_log_hints = on\n\
         fsync = on\n\
         synchronous_commit = {commit}\n\
         synchronous_standby_names = '{standbys}'\n\
         shared_buffers = '32MB'\n\
         max_connections = 200\n\
         log_line_prefix = '%m [%p] %q%a '\n\
         include_if_exists = '{STANDBY_CONF}'\n"
    )
}

/// The file (in the data directory, never copied on purpose: it is written
/// again before every start) that points a standby at its primary.
pub const STANDBY_CONF: &str = "faultline-standby.conf";

/// Authentication: every host of the test's private network may connect
/// and replicate without a password. Only ever for a test cluster.
pub const PG_HBA: &str = "\
host all all 0.0.0.0/0 trust
host replication all 0.0.0.0/0 trust
host all all ::/0 trust
host replication all ::/0 trust
";

/// The settings a node's server takes on its command line: where it
/// listens, and its name in the primary's `pg_stat_replication`.
pub fn server_args(data_dir: &str, node: &str, addr: SocketAddr) -> Vec<String> {
    let settings = [
        format!("listen_addresses={}", addr.ip()),
        format!("port={}", addr.port()),
        format!("cluster_name={node}"),
    ];
    let mut args = vec!["-D".to_owned(), data_dir.to_owned()];
    for s in settings {
        args.push("-c".into());
        args.push(s);
    }
    args
}

/// A libpq connection string to `addr` as the superuser.
pub fn conninfo(addr: SocketAddr, application_name: &str) -> String {
    format!(
        "host={} port={} user=postgres dbname=postgres application_name={application_name} \
         connect_timeout=2",
        addr.ip(),
        addr.port()
    )
}

/// The standby file's contents: stream from `primary`, naming itself
/// `node` (the name `synchronous_standby_names` matches).
pub fn standby_conf(primary: SocketAddr, node: &str) -> String {
    // Single quotes inside the value are doubled, as the config syntax wants.
    let info = conninfo(primary, node).replace('\'', "''");
    format!("primary_conninfo = '{info}'\nrecovery_target_timeline = 'latest'\n")
}

/// A position in the WAL (`pg_lsn`), ordered as PostgreSQL orders them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lsn(pub u64);

impl Lsn {
    /// Reads PostgreSQL's `X/Y` text form.
    pub fn parse(text: &str) -> Result<Lsn, ConfigError> {
        let bad = || ConfigError::BadLsn(text.to_owned());
        let (hi, lo) = text.split_once('/').ok_or_else(bad)?;
        let hi = u64::from_str_radix(hi, 16).map_err(|_| bad())?;
        let lo = u64::from_str_radix(lo, 16).map_err(|_| bad())?;
        if hi > u64::from(u32::MAX) || lo > u64::from(u32::MAX) {
            return Err(bad());
        }
        Ok(Lsn((hi << 32) | lo))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}

/// What a standby reports when failover asks how far it got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StandbyPosition {
    /// The node.
    pub node: String,
    /// The WAL it has received and flushed (`pg_last_wal_receive_lsn`;
    /// none when its WAL receiver has not run since it started).
    pub received: Option<Lsn>,
    /// The WAL it has replayed (`pg_last_wal_replay_lsn`).
    pub replayed: Option<Lsn>,
}

impl StandbyPosition {
    /// How far promotion would take it: a promoted standby replays all the
    /// WAL it has received before it accepts writes, so the greater of the
    /// two positions counts.
    pub fn reach(&self) -> Lsn {
        self.received.max(self.replayed).unwrap_or_default()
    }
}

/// The standby to promote: the one that reaches furthest, the first in
/// node order among equals (so a run replays the same choice).
pub fn most_advanced(positions: &[StandbyPosition]) -> Option<&StandbyPosition> {
    positions.iter().fold(None, |best: Option<&StandbyPosition>, p| match best {
        Some(b) if b.reach() >= p.reach() => Some(b),
        _ => Some(p),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_read_and_order_like_postgres() {
        let a = Lsn::parse("0/3000060").expect("lsn");
        let b = Lsn::parse("1/0").expect("lsn");
        assert!(a < b);
        assert_eq!(a.to_string(), "0/3000060");
        assert_eq!(b.0, 1 << 32);
        assert!(Lsn::parse("3000060").is_err());
        assert!(Lsn::parse("G/0").is_err());
        assert!(Lsn::parse("100000000/0").is_err());
    }

    fn pos(node: &str, received: Option<&str>, replayed: Option<&str>) -> StandbyPosition {
        let lsn = |s: Option<&str>| s.map(|s| Lsn::parse(s).expect("lsn"));
        StandbyPosition { node: node.into(), received: lsn(received), replayed: lsn(replayed) }
    }

    #[test]
    fn failover_promotes_the_standby_that_received_most_and_the_first_among_equals() {
        let ps = [
            pos("n2", Some("0/5000000"), Some("0/4000000")),
            pos("n3", Some("0/6000000"), Some("0/3000000")),
        ];
        assert_eq!(most_advanced(&ps).map(|p| p.node.as_str()), Some("n3"));
        // A standby whose receiver has not run since a restart counts by replay.
        let ps = [pos("n2", None, Some("0/7000000")), pos("n3", Some("0/6000000"), None)];
        assert_eq!(most_advanced(&ps).map(|p| p.node.as_str()), Some("n2"));
        let ps = [pos("n2", Some("0/6000000"), None), pos("n3", Some("0/6000000"), None)];
        assert_eq!(most_advanced(&ps).map(|p| p.node.as_str()), Some("n2"));
        assert!(most_advanced(&[]).is_none());
    }

    #[test]
    fn sync_replication_waits_for_one_standby_to_apply_and_async_for_none() {
        let sync = shared_settings(Replication::Sync);
        assert!(sync.contains("synchronous_commit = remote_apply"));
        assert!(sync.contains("synchronous_standby_names = 'ANY 1 (*)'"));
        let not = shared_settings(Replication::Async);
        assert!(not.contains("synchronous_standby_names = ''"));
        assert!(not.contains("wal_log_hints = on"));
    }

    #[test]
    fn options_refuse_what_they_do_not_know_and_patroni_says_it_is_not_built() {
        assert_eq!(Isolation::parse("serializable"), Ok(Isolation::Serializable));
        assert!(Isolation::parse("snapshot").is_err());
        assert_eq!(Replication::parse("sync"), Ok(Replication::Sync));
        assert!(Replication::parse("semi-sync").is_err());
        let e = Failover::parse("patroni").expect_err("refused");
        assert!(e.to_string().contains("not built"), "{e}");
    }

    #[test]
    fn a_standby_streams_from_the_primary_under_its_own_name() {
        let addr: SocketAddr = "10.0.0.2:5432".parse().expect("addr");
        let conf = standby_conf(addr, "n3");
        assert!(conf.contains("host=10.0.0.2 port=5432"), "{conf}");
        assert!(conf.contains("application_name=n3"), "{conf}");
        let args = server_args("/d", "n3", addr);
        assert_eq!(args[..2], ["-D", "/d"]);
        assert!(args.contains(&"listen_addresses=10.0.0.2".to_owned()));
    }
}
