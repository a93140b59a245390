//! MariaDB and Galera's configuration as data, without I/O: the options a
//! test chooses, the ports a node needs, each node's `my.cnf` as text, and
//! the wsrep status the adapter reads back.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use thiserror::Error;

/// Where Debian's `galera-4` puts the wsrep provider.
pub const PROVIDER: &str = "/usr/lib/galera/libgalera_smm.so";

/// The database the client's tables live in.
pub const DATABASE: &str = "faultline";
/// The user the client connects as: created without a password for any
/// host (a test cluster on a private network only).
pub const USER: &str = "faultline";

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
}

/// The isolation level of every transaction (`--opt isolation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// `READ COMMITTED`: a new read view per statement.
    ReadCommitted,
    /// `REPEATABLE READ`, MariaDB's default: one read view per transaction
    /// for plain reads, while writes and locking reads see the latest
    /// committed row.
    RepeatableRead,
    /// `SERIALIZABLE`: InnoDB turns plain reads into shared-lock reads;
    /// the locks are the local node's, Galera does not replicate them.
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
                allowed: "repeatable-read (the default), serializable or read-committed",
            }),
        }
    }

    /// The statement that sets a session's level for all its transactions.
    pub fn set_session(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            Isolation::RepeatableRead => "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            Isolation::Serializable => "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        }
    }
}

/// The addresses one node's server uses. MariaDB takes the client port;
/// Galera takes three more: group communication (the runtime's peer
/// address), incremental state transfer (IST) and full state transfer
/// (SST, an rsync daemon on the joiner). The last two are the two ports
/// after the peer port, which only a runtime that gives every node its own
/// address can promise are free (netns, ssh).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ports {
    /// Where clients connect.
    pub client: SocketAddr,
    /// Galera's group communication (`gmcast.listen_addr`).
    pub group: SocketAddr,
    /// Where this node receives IST.
    pub ist: SocketAddr,
    /// Where this node receives SST.
    pub sst: SocketAddr,
}

impl Ports {
    /// The ports of a node whose runtime addresses are `client` and `peer`.
    pub fn new(client: SocketAddr, peer: SocketAddr) -> Ports {
        let next = |n: u16| SocketAddr::new(peer.ip(), peer.port().wrapping_add(n));
        Ports { client, group: peer, ist: next(1), sst: next(2) }
    }
}

/// What differs between the nodes' `my.cnf` files.
#[derive(Clone, Debug)]
pub struct NodeConf {
    /// The node's name (`wsrep_node_name`).
    pub name: String,
    /// The data directory.
    pub data_dir: String,
    /// The Unix socket (the adapter's own status queries use it).
    pub socket: String,
    /// Where mysqld writes its pid.
    pub pid_file: String,
    /// Its temporary files (the node's own, not a shared `/tmp`).
    pub tmp_dir: String,
    /// The node's ports.
    pub ports: Ports,
    /// Every member's group address, this node's included.
    pub members: Vec<SocketAddr>,
    /// The cluster's name, unique to the run.
    pub cluster_name: String,
}

/// A node's `my.cnf`. Everything is here, read with `--defaults-file`, so
/// nothing of `/etc/mysql` applies.
pub fn my_cnf(c: &NodeConf) -> String {
    let members: Vec<String> = c.members.iter().map(SocketAddr::to_string).collect();
    let p = &c.ports;
    // Failure detection is made faster than Galera's defaults (5 s to
    // suspect, 15 s to declare inactive) so a partition lasting one nemesis
    // interval changes the membership within it.
    let provider = format!(
        "gmcast.listen_addr=tcp://{group};ist.recv_addr={ist};gcache.size=256M;\
         evs.keepalive_period=PT1S;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT6S;\
         evs.install_timeout=PT6S;pc.wait_prim_timeout=PT30S",
        group = p.group,
        ist = p.ist,
    );
    format!(
        "# written by faultline\n\
         [mysqld]\n\
         datadir={data}\n\
         socket={socket}\n\
         pid-file={pid}\n\
         tmpdir={tmp}\n\
         bind-address={ip}\n\
         port={port}\n\
         skip-name-resolve\n\
         performance_schema=OFF\n\
         max_connections=300\n\
         default_storage_engine=InnoDB\n\
         innodb_buffer_pool_size=64M\n\
         innodb_flush_log_at_trx_commit=1\n\
         # Galera needs row-based replication events and interleaved\n\
         # auto-increment locks.\n\
         binlog_format=ROW\n\
         innodb_autoinc_lock_mode=2\n\
         wsrep_on=ON\n\
         wsrep_provider={PROVIDER}\n\
         wsrep_cluster_name={cluster}\n\
         wsrep_cluster_address=gcomm://{members}\n\
         wsrep_node_name={name}\n\
         wsrep_node_address={group}\n\
         wsrep_provider_options=\"{provider}\"\n\
         # rsync ships with mariadb-server; mariabackup would need another package.\n\
         wsrep_sst_method=rsync\n\
         wsrep_sst_receive_address={sst}\n",
        data = c.data_dir,
        socket = c.socket,
        pid = c.pid_file,
        tmp = c.tmp_dir,
        ip = p.client.ip(),
        port = p.client.port(),
        cluster = c.cluster_name,
        members = members.join(","),
        name = c.name,
        group = p.group,
        sst = p.sst,
    )
}

/// The status variables readiness reads.
pub const STATUS_QUERY: &str = "SHOW GLOBAL STATUS WHERE Variable_name IN \
     ('wsrep_local_state_comment', 'wsrep_ready', 'wsrep_cluster_status', 'wsrep_cluster_size')";

/// A node's wsrep status, as `STATUS_QUERY` answers it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// `wsrep_local_state_comment`: `Joining`, `Donor/Desynced`, `Synced`...
    pub state: String,
    /// `wsrep_ready`: whether the node accepts queries.
    pub ready: bool,
    /// `wsrep_cluster_status`: `Primary` or `non-Primary`.
    pub cluster: String,
    /// `wsrep_cluster_size`: members of the component it is in.
    pub size: u32,
}

impl Status {
    /// Reads the batch output (`name<TAB>value` lines) of `STATUS_QUERY`.
    pub fn parse(text: &str) -> Status {
        let vars: BTreeMap<&str, &str> =
            text.lines().filter_map(|l| l.split_once('\t')).map(|(k, v)| (k, v.trim())).collect();
        let get = |k: &str| vars.get(k).copied().unwrap_or("").to_owned();
        Status {
            state: get("wsrep_local_state_comment"),
            ready: get("wsrep_ready") == "ON",
            cluster: get("wsrep_cluster_status"),
            size: get("wsrep_cluster_size").parse().unwrap_or(0),
        }
    }

    /// Synced with a primary component and serving: what readiness waits for.
    pub fn synced(&self) -> bool {
        self.ready && self.state == "Synced" && self.cluster == "Primary"
    }
}

/// The tables, the database and the client's user, created once on the
/// first node when it is synced; Galera replicates the statements (DDL by
/// total order isolation), and joiners receive them by SST anyway.
pub fn schema() -> String {
    format!(
        "CREATE DATABASE IF NOT EXISTS {DATABASE};\n\
         CREATE USER IF NOT EXISTS '{USER}'@'%';\n\
         GRANT ALL ON {DATABASE}.* TO '{USER}'@'%';\n\
         CREATE TABLE IF NOT EXISTS {DATABASE}.lists \
         (k BIGINT PRIMARY KEY, v TEXT NOT NULL) ENGINE=InnoDB;\n\
         CREATE TABLE IF NOT EXISTS {DATABASE}.registers \
         (k BIGINT PRIMARY KEY, v BIGINT) ENGINE=InnoDB;\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf() -> NodeConf {
        let client: SocketAddr = "10.0.0.2:7700".parse().expect("addr");
        let peer: SocketAddr = "10.0.0.2:7800".parse().expect("addr");
        NodeConf {
            name: "n1".into(),
            data_dir: "/d".into(),
            socket: "/tmp/s.sock".into(),
            pid_file: "/p".into(),
            tmp_dir: "/t".into(),
            ports: Ports::new(client, peer),
            members: vec![peer, "10.0.0.3:7800".parse().expect("addr")],
            cluster_name: "fl-1".into(),
        }
    }

    #[test]
    fn my_cnf_turns_wsrep_on_with_every_member_and_the_nodes_own_ports() {
        let text = my_cnf(&conf());
        for line in [
            "wsrep_on=ON",
            "wsrep_provider=/usr/lib/galera/libgalera_smm.so",
            "wsrep_cluster_address=gcomm://10.0.0.2:7800,10.0.0.3:7800",
            "binlog_format=ROW",
            "innodb_autoinc_lock_mode=2",
            "wsrep_sst_method=rsync",
            "wsrep_sst_receive_address=10.0.0.2:7802",
            "bind-address=10.0.0.2",
            "port=7700",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from:\n{text}");
        }
        assert!(text.contains("ist.recv_addr=10.0.0.2:7801"), "{text}");
        assert!(text.contains("gmcast.listen_addr=tcp://10.0.0.2:7800"), "{text}");
    }

    #[test]
    fn status_is_synced_only_when_ready_synced_and_primary() {
        let s = Status::parse(
            "wsrep_local_state_comment\tSynced\nwsrep_cluster_size\t3\n\
             wsrep_cluster_status\tPrimary\nwsrep_ready\tON\n",
        );
        assert!(s.synced());
        assert_eq!(s.size, 3);
        let joining = Status::parse("wsrep_local_state_comment\tJoining\nwsrep_ready\tOFF\n");
        assert!(!joining.synced());
        let cut = Status { cluster: "non-Primary".into(), ..s };
        assert!(!cut.synced());
    }

    #[test]
    fn isolation_levels_are_read_and_others_refused() {
        assert_eq!(Isolation::parse("repeatable-read"), Ok(Isolation::RepeatableRead));
        assert_eq!(Isolation::parse("serializable"), Ok(Isolation::Serializable));
        let e = Isolation::parse("snapshot").expect_err("refused");
        assert!(e.to_string().contains("repeatable-read"), "{e}");
        assert!(Isolation::Serializable.set_session().ends_with("SERIALIZABLE"));
    }
}
