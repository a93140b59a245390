//! Every fault kind, driven through its nemesis on refstore clusters in the
//! netns runtime (root), measured from outside: partitions drop exactly the
//! traffic their grudge names (UDP probes between the namespaces), killed
//! processes are gone and paused ones stopped (`/proc`), refstore's wall
//! clock reads the offset (`/admin/status`, also through libfaketime),
//! shaped links delay connections by the set amount, damaged data files make
//! the node refuse to start or lose what they should; and every stop undoes
//! its fault. Without root these tests say so loudly and pass, except under
//! `CI=true`.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use checkers::Value;
use faultline_refstore::RefstoreDb;
use harness::generator::{Invocation, Rng};
use harness::runtime::netns::{self, NetnsRuntime};
use harness::{Db, Nemesis, Runtime, TestEnv, TestSpec};
use rand::SeedableRng;

use crate::e2e::{root_or_skip, serial};

/// A refstore cluster in namespaces, with what the tests need to look at it.
struct Cluster {
    rt: Arc<NetnsRuntime>,
    env: TestEnv,
    db: Arc<dyn Db>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start(nodes: u32, mode: &str, options: &[(&str, &str)]) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spec = TestSpec {
            nodes,
            mode: mode.into(),
            seed: Some(7),
            op_timeout_ms: 1000,
            ..TestSpec::default()
        };
        for (k, v) in options {
            spec.options.insert((*k).into(), (*v).into());
        }
        let tag = format!("faults-{}-{}", std::process::id(), dir.path().display());
        let rt = Arc::new(
            NetnsRuntime::start(
                nodes,
                dir.path().join("nodes"),
                env!("CARGO_BIN_EXE_faultline").into(),
                &tag,
            )
            .await
            .expect("namespaces"),
        );
        let db: Arc<dyn Db> = Arc::new(RefstoreDb::from_spec(&spec).expect("refstore"));
        let env =
            TestEnv::new(Arc::new(spec), rt.clone() as Arc<dyn Runtime>, dir.path().to_owned());
        for n in env.nodes() {
            db.setup(&env, n).await.expect("setup");
            db.start(&env, n).await.expect("start");
        }
        for n in env.nodes() {
            db.await_ready(&env, n, Duration::from_secs(30)).await.expect("ready");
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_millis(800))
            .build()
            .expect("http client");
        Cluster { rt, env, db, http, _dir: dir }
    }

    fn nodes(&self) -> Vec<String> {
        self.env.nodes().to_vec()
    }

    fn ip(&self, node: &str) -> Ipv4Addr {
        self.rt.ip(node).expect("ip")
    }

    async fn status(&self, node: &str) -> Option<serde_json::Value> {
        let addr = self.env.addrs(node).ok()?.client;
        let r = self.http.get(format!("http://{addr}/admin/status")).send().await.ok()?;
        r.json().await.ok()
    }

    /// Whether `node` answers its health check.
    async fn answers(&self, node: &str) -> bool {
        let Ok(addrs) = self.env.addrs(node) else { return false };
        let url = format!("http://{}/admin/health", addrs.client);
        self.http.get(url).send().await.is_ok_and(|r| r.status().is_success())
    }

    /// Waits up to `limit` for `node` to answer.
    async fn answers_within(&self, node: &str, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if self.answers(node).await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// The current leader, once one is known.
    async fn leader(&self) -> String {
        for _ in 0..100 {
            for n in self.nodes() {
                let role = self.status(&n).await.and_then(|s| s["role"].as_str().map(String::from));
                if role.as_deref() == Some("leader") || role.as_deref() == Some("primary") {
                    return n;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no leader elected");
    }

    /// The refstore processes running in `node`'s namespace.
    fn pids(&self, node: &str) -> Vec<u32> {
        let ns = self.rt.namespace(node).expect("ns");
        netns::run("ip", &["netns", "pids", ns])
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter(|p| {
                std::fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains("refstore"))
            })
            .collect()
    }

    fn wal(&self, node: &str) -> PathBuf {
        self.env.runtime.node(node).expect("node").dir().join("data/wal.log")
    }

    async fn write(&self, node: &str, key: i64, value: i64) -> bool {
        let addr = self.env.addrs(node).expect("addrs").client;
        self.http
            .post(format!("http://{addr}/v1/write"))
            .json(&serde_json::json!({"key": key, "value": value}))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    async fn setup_nemesis(&self, mut nem: Box<dyn Nemesis>) -> Box<dyn Nemesis> {
        nem.setup(&self.env, self.db.clone()).await.expect("nemesis setup");
        nem
    }

    async fn stop(self) {
        for n in self.env.nodes() {
            let _ = self.db.teardown(&self.env, n).await;
        }
        self.rt.teardown().await.expect("teardown");
    }
}

/// Runs a test body on a tokio runtime like the harness's (the netns
/// runtime blocks in place, which needs worker threads).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio")
        .block_on(f)
}

async fn invoke(nem: &mut Box<dyn Nemesis>, f: &str, value: Value, rng: &mut Rng) -> Value {
    let v = nem.invoke(&Invocation::new(f, value), rng).await.expect(f);
    eprintln!("{f}: {v}");
    v
}

/// The first node a start operation's value names under `nodes`.
fn first_node(v: &Value) -> String {
    let nodes = v.get(&Value::str("nodes")).and_then(Value::as_list).expect("nodes");
    nodes[0].as_str().expect("a node name").to_owned()
}

fn map(pairs: &[(&str, &str)]) -> Value {
    Value::map(pairs.iter().map(|(k, v)| (Value::str(*k), Value::str(*v))).collect())
}

/// Which directed links carry traffic now: from every node's namespace,
/// UDP datagrams to every other node; the links whose datagrams arrived.
fn measure_links(c: &Cluster) -> BTreeSet<(String, String)> {
    const PORT: u16 = 7999;
    let nodes = c.nodes();
    let ips: Vec<(String, Ipv4Addr)> = nodes.iter().map(|n| (n.clone(), c.ip(n))).collect();
    let enter = |node: &str| {
        let path = format!("/run/netns/{}", c.rt.namespace(node).expect("ns"));
        move || {
            let f = std::fs::File::open(&path).expect("netns");
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        }
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let mut receivers = Vec::new();
    for (node, ip) in &ips {
        let (enter, node, ip, ready) = (enter(node), node.clone(), *ip, ready_tx.clone());
        let names: Vec<(Ipv4Addr, String)> = ips.iter().map(|(n, i)| (*i, n.clone())).collect();
        receivers.push(std::thread::spawn(move || {
            enter();
            let sock = UdpSocket::bind((ip, PORT)).expect("bind probe");
            sock.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
            ready.send(()).expect("ready");
            let until = Instant::now() + Duration::from_millis(700);
            let mut got = BTreeSet::new();
            let mut buf = [0u8; 64];
            while Instant::now() < until {
                if let Ok((_, SocketAddr::V4(from))) = sock.recv_from(&mut buf)
                    && let Some((_, name)) = names.iter().find(|(i, _)| i == from.ip())
                {
                    got.insert((name.clone(), node.clone()));
                }
            }
            got
        }));
    }
    for _ in &ips {
        ready_rx.recv_timeout(Duration::from_secs(5)).expect("probe listeners");
    }
    let mut senders = Vec::new();
    for (node, ip) in &ips {
        let (enter, ip) = (enter(node), *ip);
        let targets: Vec<Ipv4Addr> = ips.iter().map(|(_, i)| *i).filter(|i| *i != ip).collect();
        senders.push(std::thread::spawn(move || {
            enter();
            let sock = UdpSocket::bind((ip, 0)).expect("bind sender");
            for _ in 0..3 {
                for t in &targets {
                    let _ = sock.send_to(b"probe", (*t, PORT));
                }
                std::thread::sleep(Duration::from_millis(30));
            }
        }));
    }
    for s in senders {
        s.join().expect("sender");
    }
    receivers.into_iter().flat_map(|r| r.join().expect("receiver")).collect()
}

/// Every directed link between distinct nodes.
fn all_links(nodes: &[String]) -> BTreeSet<(String, String)> {
    nodes
        .iter()
        .flat_map(|a| nodes.iter().filter(move |b| *b != a).map(move |b| (a.clone(), b.clone())))
        .collect()
}

/// The links a recorded grudge leaves open: `grudge[to]` lists the nodes
/// whose traffic `to` drops.
fn open_links(nodes: &[String], grudge: &Value) -> BTreeSet<(String, String)> {
    all_links(nodes)
        .into_iter()
        .filter(|(from, to)| {
            !grudge
                .get(&Value::str(to))
                .and_then(Value::as_list)
                .is_some_and(|l| l.contains(&Value::str(from)))
        })
        .collect()
}

#[test]
fn partition_shapes_cut_exactly_their_grudge_and_heal_restores_every_link() {
    let _serial = serial();
    if !root_or_skip("partition faults", &[]) {
        return;
    }
    block_on(async {
        let c = Cluster::start(5, "raft", &[]).await;
        let nodes = c.nodes();
        assert_eq!(measure_links(&c), all_links(&nodes), "all links work before any fault");
        let mut nem = c.setup_nemesis(Box::new(nemesis::PartitionNemesis::default())).await;
        let mut rng = Rng::seed_from_u64(11);
        for kind in nemesis::PartitionKind::EVERY {
            let leader = if kind == nemesis::PartitionKind::Primaries {
                Some(c.leader().await)
            } else {
                None
            };
            let v = invoke(&mut nem, "start-partition", Value::str(kind.name()), &mut rng).await;
            assert_eq!(v.get(&Value::str("verified")), Some(&Value::Bool(true)), "{v}");
            assert_eq!(v.get(&Value::str("enforced-by")), Some(&Value::str("nft")));
            let grudge = v.get(&Value::str("grudge")).expect("grudge").clone();
            let expected = open_links(&nodes, &grudge);
            assert!(expected.len() < all_links(&nodes).len(), "{} cut nothing", kind.name());
            let measured = measure_links(&c);
            assert_eq!(
                measured,
                expected,
                "{}: traffic that flows vs the grudge {grudge}",
                kind.name()
            );
            if let Some(leader) = leader {
                // The leader asked for just before is the node cut off alone.
                let isolated = v.get(&Value::str("primaries")).expect("primaries");
                assert_eq!(isolated, &Value::list([Value::str(&leader)]), "{v}");
                assert!(!measured.iter().any(|(a, b)| *a == leader || *b == leader));
            }
            let healed = invoke(&mut nem, "stop-partition", Value::Nil, &mut rng).await;
            assert_eq!(healed.get(&Value::str("verified")), Some(&Value::Bool(true)));
            assert!(c.rt.current_grudge().await.expect("rules").is_empty());
            assert_eq!(
                measure_links(&c),
                all_links(&nodes),
                "{}: heal restores every link",
                kind.name()
            );
        }
        c.stop().await;
    });
}

/// The state letter of process `pid` (`R`, `S`, `T` for stopped...).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next())
}

#[test]
fn kill_and_pause_stop_the_processes_and_their_stop_brings_them_back() {
    let _serial = serial();
    if !root_or_skip("process faults", &[]) {
        return;
    }
    block_on(async {
        let c = Cluster::start(3, "raft", &[]).await;
        let mut rng = Rng::seed_from_u64(3);
        let mut kill = c
            .setup_nemesis(Box::new(nemesis::ProcessNemesis::new(nemesis::ProcessFault::Kill)))
            .await;
        // The primaries rule asks refstore who leads, and kills exactly that node.
        let leader = c.leader().await;
        let before = c.pids(&leader);
        assert_eq!(before.len(), 1, "one refstore in {leader}'s namespace: {before:?}");
        let v = invoke(&mut kill, "start-kill", Value::str("primaries"), &mut rng).await;
        assert_eq!(v.get(&Value::str("nodes")), Some(&Value::list([Value::str(&leader)])));
        assert!(before.iter().all(|p| proc_state(*p).is_none_or(|s| s == 'Z')), "killed");
        assert!(!c.answers(&leader).await, "a killed node does not answer");
        let v = invoke(&mut kill, "stop-kill", Value::Nil, &mut rng).await;
        assert_eq!(v.get(&Value::str("restarted")), Some(&Value::list([Value::str(&leader)])));
        assert!(c.answers(&leader).await, "restarted");
        let after = c.pids(&leader);
        assert_eq!(after.len(), 1);
        assert_ne!(after, before, "a new process");

        // A majority paused: the processes are stopped (state T) and do not
        // answer; resumed, they run and answer again.
        let mut pause = c
            .setup_nemesis(Box::new(nemesis::ProcessNemesis::new(nemesis::ProcessFault::Pause)))
            .await;
        let v = invoke(&mut pause, "start-pause", Value::str("majority"), &mut rng).await;
        let paused: Vec<String> = v
            .get(&Value::str("nodes"))
            .and_then(Value::as_list)
            .expect("nodes")
            .iter()
            .filter_map(|n| n.as_str().map(String::from))
            .collect();
        assert_eq!(paused.len(), 2);
        for n in &paused {
            let pids = c.pids(n);
            assert!(pids.iter().all(|p| proc_state(*p) == Some('T')), "{n} is stopped: {pids:?}");
            assert!(!c.answers(n).await, "a paused node does not answer");
        }
        invoke(&mut pause, "stop-pause", Value::Nil, &mut rng).await;
        for n in &paused {
            assert!(c.pids(n).iter().all(|p| proc_state(*p) != Some('T')), "{n} resumed");
            assert!(c.answers(n).await, "{n} answers after resuming");
        }
        // All killed at once, all back.
        let v = invoke(&mut kill, "start-kill", Value::str("all"), &mut rng).await;
        assert_eq!(
            v.get(&Value::str("nodes")).and_then(Value::as_list).map(<[Value]>::len),
            Some(3)
        );
        for n in c.nodes() {
            assert!(c.pids(&n).is_empty(), "{n} still runs");
        }
        invoke(&mut kill, "stop-kill", Value::Nil, &mut rng).await;
        for n in c.nodes() {
            assert!(c.answers(&n).await, "{n} back");
        }
        c.stop().await;
    });
}

fn host_now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// How far `node`'s wall clock is from the host's, in milliseconds, read
/// from its status (the host clock sampled around the request).
async fn clock_offset_ms(c: &Cluster, node: &str) -> f64 {
    let before = host_now_us();
    let s = c.status(node).await.expect("status");
    let after = host_now_us();
    let wall = s["wall_clock_us"].as_i64().expect("wall_clock_us");
    (wall - (before + after) / 2) as f64 / 1000.0
}

/// The per-node parameter `param` of a clock start's value.
fn clock_param(v: &Value, node: &str, param: &str) -> Option<Value> {
    v.get(&Value::str("clocks"))?.get(&Value::str(node))?.get(&Value::str(param)).cloned()
}

async fn clock_faults_move_wall_clocks(c: &Cluster) {
    let mut rng = Rng::seed_from_u64(5);
    let limits = nemesis::ClockLimits { max_offset_ms: 30_000, max_drift: 0.5 };
    let mut nem = c.setup_nemesis(Box::new(nemesis::ClockNemesis::new(limits))).await;
    for n in c.nodes() {
        assert!(clock_offset_ms(c, &n).await.abs() < 100.0, "{n} starts on time");
    }
    // Bump: every node jumps by its own offset and stays there.
    let v =
        invoke(&mut nem, "start-clock", map(&[("fault", "bump"), ("targets", "all")]), &mut rng)
            .await;
    let offsets = nemesis::bump_offsets(&v);
    assert_eq!(offsets.len(), 3, "{v}");
    for (n, off) in &offsets {
        assert!(off.abs() >= 3_000, "a bump of {off} ms is below a tenth of the limit");
        let seen = clock_offset_ms(c, n).await;
        assert!((seen - *off as f64).abs() < 100.0, "{n}: bumped {off} ms, clock reads {seen}");
    }
    invoke(&mut nem, "stop-clock", Value::Nil, &mut rng).await;
    for n in c.nodes() {
        assert!(clock_offset_ms(c, &n).await.abs() < 100.0, "{n} back on time after the stop");
    }

    // Strobe: the clock flips between the offset and true time.
    let v =
        invoke(&mut nem, "start-clock", map(&[("fault", "strobe"), ("targets", "one")]), &mut rng)
            .await;
    let node = first_node(&v);
    let strobe = clock_param(&v, &node, "strobe").expect("strobe");
    let off = strobe.get(&Value::str("offset-ms")).and_then(Value::as_int).expect("offset") as f64;
    let (mut at_offset, mut on_time) = (0, 0);
    for _ in 0..60 {
        let seen = clock_offset_ms(c, &node).await;
        if (seen - off).abs() < 100.0 {
            at_offset += 1;
        } else if seen.abs() < 100.0 {
            on_time += 1;
        } else {
            panic!("{node}: a strobed clock read {seen} ms, neither {off} nor 0");
        }
        tokio::time::sleep(Duration::from_millis(17)).await;
    }
    assert!(
        at_offset > 5 && on_time > 5,
        "flips seen: {at_offset} at the offset, {on_time} on time"
    );
    invoke(&mut nem, "stop-clock", Value::Nil, &mut rng).await;
    assert!(clock_offset_ms(c, &node).await.abs() < 100.0);

    // Skew: the clock drifts at its rate.
    let v =
        invoke(&mut nem, "start-clock", map(&[("fault", "skew"), ("targets", "one")]), &mut rng)
            .await;
    let node = first_node(&v);
    let Some(Value::Float(rate)) = clock_param(&v, &node, "rate") else { panic!("rate in {v}") };
    let a = clock_offset_ms(c, &node).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let b = clock_offset_ms(c, &node).await;
    let drift_ms = b - a;
    let expected = (rate.0 - 1.0) * 2000.0;
    assert!(
        (drift_ms - expected).abs() < 150.0,
        "{node} at rate {}: drifted {drift_ms} ms in 2 s, expected {expected}",
        rate.0
    );
    invoke(&mut nem, "stop-clock", Value::Nil, &mut rng).await;
    assert!(clock_offset_ms(c, &node).await.abs() < 100.0);
}

#[test]
fn clock_faults_move_refstore_wall_clocks_through_admin_clock() {
    let _serial = serial();
    if !root_or_skip("clock faults", &[]) {
        return;
    }
    block_on(async {
        let c = Cluster::start(3, "multi-leader", &[]).await;
        clock_faults_move_wall_clocks(&c).await;
        c.stop().await;
    });
}

#[test]
fn clock_faults_move_wall_clocks_through_libfaketime() {
    let _serial = serial();
    if !root_or_skip("clock faults with libfaketime", &[]) {
        return;
    }
    block_on(async {
        if !harness::faketime::LIBRARY_PATHS.iter().any(|p| std::path::Path::new(p).exists()) {
            let msg = "libfaketime clock faults: NEEDS Debian's libfaketime; not run here";
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg} (CI=true requires it)");
            eprintln!("\n!!! {msg} !!!\n");
            return;
        }
        let c = Cluster::start(3, "multi-leader", &[("clock", "faketime")]).await;
        for n in c.nodes() {
            let pid = c.pids(&n)[0];
            let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
            assert!(
                String::from_utf8_lossy(&environ).contains("LD_PRELOAD="),
                "{n} runs under libfaketime"
            );
        }
        clock_faults_move_wall_clocks(&c).await;
        // refstore's own offset stayed at zero: libfaketime moved the clock.
        for n in c.nodes() {
            assert_eq!(c.status(&n).await.expect("status")["clock_offset_ms"], 0);
        }
        c.stop().await;
    });
}

/// Sorted TCP connect times from inside `from`'s namespace to `to`'s peer port.
fn connect_times(c: &Cluster, from: &str, to: &str, n: usize) -> Vec<Duration> {
    let path = format!("/run/netns/{}", c.rt.namespace(from).expect("ns"));
    let addr = c.env.addrs(to).expect("addrs").peer_listen;
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).expect("netns");
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let mut times: Vec<Duration> = (0..n)
            .map(|_| {
                let t = Instant::now();
                let r = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3));
                assert!(r.is_ok(), "connect {addr}: {r:?}");
                t.elapsed()
            })
            .collect();
        times.sort();
        times
    })
    .join()
    .expect("connect thread")
}

#[test]
fn packet_delay_shapes_the_links_out_of_the_target_and_stop_restores_them() {
    let _serial = serial();
    if !root_or_skip("packet faults", &[]) {
        return;
    }
    block_on(async {
        let c = Cluster::start(3, "raft", &[]).await;
        let mut rng = Rng::seed_from_u64(2);
        let mut nem = c.setup_nemesis(Box::new(nemesis::PacketNemesis::default())).await;
        let start = Value::map(vec![
            (Value::str("behaviours"), Value::list([Value::str("delay")])),
            (Value::str("targets"), Value::str("one")),
        ]);
        let v = invoke(&mut nem, "start-packet", start, &mut rng).await;
        assert_eq!(
            v.get(&Value::str("shaper")),
            Some(&Value::str("nfqueue")),
            "this kernel has no netem"
        );
        let target = v.get(&Value::str("from")).and_then(Value::as_list).expect("from")[0]
            .as_str()
            .expect("name")
            .to_owned();
        let others: Vec<String> = c.nodes().into_iter().filter(|n| *n != target).collect();
        // 50 ms plus up to 10 ms of jitter on the target's outgoing packets: a connect (SYN out,
        // SYN-ACK back) takes it once.
        let shaped = connect_times(&c, &target, &others[0], 7);
        eprintln!("{target} -> {}: {shaped:?}", others[0]);
        assert!(
            shaped[3] >= Duration::from_millis(50) && shaped[3] < Duration::from_millis(75),
            "median {:?} for 50 ms + up to 10 ms jitter",
            shaped[3]
        );
        let free = connect_times(&c, &others[0], &others[1], 5);
        assert!(
            free[2] < Duration::from_millis(20),
            "links between others are not shaped: {free:?}"
        );
        // Connecting to the target, its answer (the SYN-ACK) is what waits.
        let back = connect_times(&c, &others[0], &target, 5);
        assert!(back[2] >= Duration::from_millis(50), "the target's answers are delayed: {back:?}");
        let v = invoke(&mut nem, "stop-packet", Value::Nil, &mut rng).await;
        assert_eq!(v.get(&Value::str("restored-links")), Some(&Value::Int(2)));
        for n in c.nodes() {
            let ns = c.rt.namespace(&n).expect("ns");
            assert!(netns::shaping_rules(ns).is_empty(), "{n}: {}", netns::shaping_rules(ns));
        }
        let after = connect_times(&c, &target, &others[0], 5);
        assert!(after[2] < Duration::from_millis(20), "restored: {after:?}");
        c.stop().await;
    });
}

fn file_len(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn file_faults_on_a_durable_log_are_refused_or_survived_and_stop_heals() {
    let _serial = serial();
    if !root_or_skip("file faults (raft)", &[]) {
        return;
    }
    block_on(async {
        let c = Cluster::start(3, "raft", &[]).await;
        let leader = c.leader().await;
        for k in 0..50 {
            assert!(c.write(&leader, k, k).await, "write {k}");
        }
        let mut rng = Rng::seed_from_u64(4);
        let mut nem = c.setup_nemesis(Box::new(nemesis::FileNemesis::default())).await;

        // Bit flips: the node is down with a damaged log; restarted, it refuses
        // (checksum), then gets its log back and answers.
        let v = invoke(
            &mut nem,
            "start-file",
            map(&[("fault", "bitflip"), ("targets", "one")]),
            &mut rng,
        )
        .await;
        let node = first_node(&v);
        assert!(c.pids(&node).is_empty(), "the node is down during the fault");
        let files =
            v.get(&Value::str("files")).and_then(|f| f.get(&Value::str(&node))).expect("files");
        let flipped =
            files.as_list().expect("list")[0].get(&Value::str("flipped-at")).expect("flips");
        assert!(!flipped.as_list().expect("offsets").is_empty());
        let v = invoke(&mut nem, "stop-file", Value::Nil, &mut rng).await;
        let restart = v.as_list().expect("list")[0].get(&Value::str("restart")).expect("restart");
        let refused = restart.get(&Value::str("refused")).and_then(Value::as_str).unwrap_or("");
        assert!(refused.contains("corrupt"), "refstore raft refuses a corrupt log: {restart}");
        assert_eq!(restart.get(&Value::str("restored")), Some(&Value::Bool(true)));
        assert_eq!(restart.get(&Value::str("started")), Some(&Value::Bool(true)));
        assert!(c.answers(&node).await);

        // Truncation: the torn tail is cut at restart and reported.
        let v = invoke(
            &mut nem,
            "start-file",
            map(&[("fault", "truncate"), ("targets", "one")]),
            &mut rng,
        )
        .await;
        let node = first_node(&v);
        let f = &v
            .get(&Value::str("files"))
            .and_then(|f| f.get(&Value::str(&node)))
            .expect("files")
            .as_list()
            .expect("list")[0];
        let (bytes, cut) = (
            f.get(&Value::str("bytes")).and_then(Value::as_int).expect("bytes"),
            f.get(&Value::str("cut-bytes")).and_then(Value::as_int).expect("cut"),
        );
        assert!(cut >= 1);
        assert_eq!(file_len(&c.wal(&node)) as i64, bytes - cut, "the file is shorter while down");
        let v = invoke(&mut nem, "stop-file", Value::Nil, &mut rng).await;
        let restart = v.as_list().expect("list")[0].get(&Value::str("restart")).expect("restart");
        assert_eq!(restart.get(&Value::str("started")), Some(&Value::Bool(true)), "{restart}");
        assert!(c.answers_within(&node, Duration::from_secs(5)).await);

        // Rollback: the running node's log is snapshotted; writes follow; the
        // stop puts the old, shorter log back while the node is down.
        let v = invoke(
            &mut nem,
            "start-file",
            map(&[("fault", "rollback"), ("targets", "one")]),
            &mut rng,
        )
        .await;
        let node = first_node(&v);
        let snapshot_len = file_len(&c.wal(&node));
        let leader = c.leader().await;
        for k in 0..50 {
            c.write(&leader, k, k + 100).await;
        }
        // A majority acknowledges the writes; the target may still be
        // catching up (it was restarted just before). Roll back only once its
        // own log has grown past the snapshot, or there is nothing to lose.
        let deadline = Instant::now() + Duration::from_secs(15);
        while file_len(&c.wal(&node)) <= snapshot_len && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let v = invoke(&mut nem, "stop-file", Value::Nil, &mut rng).await;
        let done = &v.as_list().expect("list")[0];
        let f = &done.get(&Value::str("files")).and_then(Value::as_list).expect("files")[0];
        let before = f.get(&Value::str("bytes-before")).and_then(Value::as_int).expect("before");
        let after = f.get(&Value::str("bytes-after")).and_then(Value::as_int).expect("after");
        assert!(after < before, "rolled back from {before} to {after} bytes on {node}");
        assert!(c.answers_within(&node, Duration::from_secs(5)).await);

        // Losing unsynced writes of a log fsynced before every acknowledgement
        // loses nothing: the stop kills and restarts, keeping the file.
        invoke(
            &mut nem,
            "start-file",
            map(&[("fault", "lose-unfsynced"), ("targets", "one")]),
            &mut rng,
        )
        .await;
        let v = invoke(&mut nem, "stop-file", Value::Nil, &mut rng).await;
        let f = &v.as_list().expect("list")[0]
            .get(&Value::str("files"))
            .and_then(Value::as_list)
            .expect("files")[0];
        assert_eq!(f.get(&Value::str("fsynced-before-ack")), Some(&Value::Bool(true)), "{v}");
        c.stop().await;
    });
}

#[test]
fn losing_unsynced_writes_of_an_unsynced_log_rolls_the_file_back() {
    let _serial = serial();
    if !root_or_skip("file faults (async)", &[]) {
        return;
    }
    block_on(async {
        let c = Cluster::start(3, "async", &[]).await;
        let primary = c.leader().await;
        let mut rng = Rng::seed_from_u64(6);
        let mut nem = c.setup_nemesis(Box::new(nemesis::FileNemesis::default())).await;
        let v = invoke(
            &mut nem,
            "start-file",
            map(&[("fault", "lose-unfsynced"), ("targets", "primaries")]),
            &mut rng,
        )
        .await;
        assert_eq!(v.get(&Value::str("nodes")), Some(&Value::list([Value::str(&primary)])));
        let at_snapshot = file_len(&c.wal(&primary));
        for k in 0..30 {
            assert!(c.write(&primary, k, k).await, "acknowledged write {k}");
        }
        assert!(file_len(&c.wal(&primary)) > at_snapshot, "the writes reached the log");
        let v = invoke(&mut nem, "stop-file", Value::Nil, &mut rng).await;
        let done = &v.as_list().expect("list")[0];
        let f = &done.get(&Value::str("files")).and_then(Value::as_list).expect("files")[0];
        let after = f.get(&Value::str("bytes-after")).and_then(Value::as_int).expect("after");
        assert_eq!(after as u64, at_snapshot, "the log is back to the snapshot: {done}");
        assert!(c.answers_within(&primary, Duration::from_secs(10)).await, "restarted");
        c.stop().await;
    });
}
