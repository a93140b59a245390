//! The netns runtime (root): namespaces on a bridge, real connectivity
//! between them, one-way partitions as nftables rules, per-node hostnames,
//! and nothing left behind after teardown, after a drop (panic) or, via
//! `clean`, after the harness vanished without tearing down.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use harness::node::{DaemonSpec, Grudge, LinkShape, Runtime};
use harness::runtime::firewall::FirewallChoice;
use harness::runtime::netns::{self, NetnsRuntime, NetnsState};
use harness::runtime::process::pid_alive;

/// Whether this test can run; says so loudly when it cannot, and fails
/// under CI=true where it must run.
pub fn root_or_skip(test: &str) -> bool {
    if netns::have_root() && which("nft") && which("ip") {
        return true;
    }
    let msg = format!("{test}: NEEDS ROOT, iproute2 and nftables; not run here");
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg} (CI=true requires it)");
    eprintln!("\n!!! {msg} !!!\n");
    false
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).exists()))
        .unwrap_or(false)
        || std::path::Path::new("/usr/sbin").join(program).exists()
}

/// A listener inside namespace `ns`, on `addr` (a thread joins the
/// namespace, binds, and accepts forever).
fn listen_in(ns: &str, addr: SocketAddr) {
    let path = format!("/run/netns/{ns}");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("open netns");
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let l = TcpListener::bind(addr).expect("bind in netns");
        tx.send(()).expect("ready");
        for c in l.incoming() {
            drop(c);
        }
    });
    rx.recv_timeout(Duration::from_secs(5)).expect("listener ready");
}

/// Whether a TCP connection from inside `ns` to `addr` succeeds within 1 s.
fn connects_from(ns: &str, addr: SocketAddr) -> bool {
    std::process::Command::new("ip")
        .args(["netns", "exec", ns, "timeout", "1", "bash", "-c"])
        .arg(format!("exec 3<>/dev/tcp/{}/{}", addr.ip(), addr.port()))
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn assert_gone(state: &NetnsState) {
    for ns in &state.namespaces {
        assert!(!netns::namespace_exists(ns), "namespace {ns} left behind");
    }
    for link in &state.links {
        assert!(!netns::link_exists(link), "link {link} left behind");
    }
    let ours: Vec<String> =
        netns::faultline_links().into_iter().filter(|l| l.contains(&state.id)).collect();
    assert!(ours.is_empty(), "links left behind: {ours:?}");
    assert!(
        !std::path::Path::new(netns::STATE_DIR).join(format!("{}.json", state.id)).exists(),
        "state file left behind"
    );
}

fn state_of(tag: &str) -> NetnsState {
    NetnsState::all().into_iter().find(|s| s.tag == tag).expect("state file")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_partition_one_way_and_leave_nothing_behind() {
    if !root_or_skip("netns runtime") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tag = format!("nstest-{}", std::process::id());
    let rt = NetnsRuntime::start(3, dir.path().to_owned(), "/bin/true".into(), &tag)
        .await
        .expect("start");
    let state = state_of(&tag);
    assert_eq!(state.namespaces.len(), 3);
    assert_eq!(state.links.len(), 4, "a bridge and three veths: {:?}", state.links);
    let ns1 = rt.namespace("n1").expect("ns").to_owned();
    let ns2 = rt.namespace("n2").expect("ns").to_owned();
    let ns3 = rt.namespace("n3").expect("ns").to_owned();
    let target = SocketAddr::new(rt.ip("n2").expect("ip").into(), 7901);
    listen_in(&ns2, target);
    assert!(connects_from(&ns1, target), "n1 reaches n2 before any fault");

    // n2 drops traffic from n1: n1 cannot reach n2, n3 still can.
    let mut g = Grudge::none();
    g.0.entry("n2".into()).or_default().insert("n1".into());
    rt.set_grudge(&g).await.expect("grudge");
    assert!(netns::partition_rules(&ns2).contains("drop"));
    assert_eq!(rt.current_grudge().await.expect("read back"), g, "the rules in force");
    assert!(!connects_from(&ns1, target), "the partition must cut n1 -> n2");
    assert!(connects_from(&ns3, target), "n3 -> n2 is not cut");
    rt.set_grudge(&Grudge::none()).await.expect("heal");
    assert!(!netns::partition_rules(&ns2).contains("drop"));
    assert!(rt.current_grudge().await.expect("read back").is_empty());
    assert!(connects_from(&ns1, target), "healed");

    // Processes run inside the namespace under the node's hostname.
    let node = rt.node("n1").expect("node");
    let out = node.exec("hostname", &[]).await.expect("exec");
    assert_eq!(out.stdout.trim(), "n1");
    let pid = node
        .start_daemon(&DaemonSpec {
            name: "sleep".into(),
            program: "sleep".into(),
            args: vec!["1000".into()],
            env: Vec::new(),
            log_file: dir.path().join("n1/sleep.log"),
        })
        .await
        .expect("daemon");
    assert!(pid_alive(pid));
    // The process joins the namespace right after it is spawned.
    let mut pids = String::new();
    for _ in 0..100 {
        pids = netns::run("ip", &["netns", "pids", &ns1]).expect("pids");
        if pids.split_whitespace().any(|p| p == pid.to_string()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(pids.split_whitespace().any(|p| p == pid.to_string()), "{pid} not in {pids}");

    rt.teardown().await.expect("teardown");
    assert!(!pid_alive(pid), "daemon left running");
    assert_gone(&state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_runtime_or_cleaning_removes_everything() {
    if !root_or_skip("netns cleanup") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // Dropped without teardown (as when the harness panics).
    let tag = format!("nsdrop-{}", std::process::id());
    let rt = NetnsRuntime::start(2, dir.path().to_owned(), "/bin/true".into(), &tag)
        .await
        .expect("start");
    let state = state_of(&tag);
    drop(rt);
    assert_gone(&state);

    // Forgotten entirely (as when the harness is killed): `clean` finds the
    // state file and removes what it lists, processes included.
    let tag = format!("nsleak-{}", std::process::id());
    let rt = NetnsRuntime::start(2, dir.path().to_owned(), "/bin/true".into(), &tag)
        .await
        .expect("start");
    let state = state_of(&tag);
    let ns = rt.namespace("n1").expect("ns").to_owned();
    let spawned = std::process::Command::new("ip")
        .args(["netns", "exec", &ns, "sleep", "1000"])
        .env(harness::runtime::process::RUN_TAG_ENV, &tag)
        .spawn()
        .expect("spawn");
    let pid = spawned.id();
    std::mem::forget(rt);
    let report = harness::clean::clean_matching(false, &tag);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(report.removed.iter().any(|r| r.contains(&ns)), "{:?}", report.removed);
    assert_gone(&state);
    let mut child = spawned;
    let _ = child.wait();
    assert!(!pid_alive(pid));
}

/// How long TCP connects from inside `ns` to `addr` take: `n` samples,
/// sorted (a thread joins the namespace and connects).
fn connect_times(ns: &str, addr: SocketAddr, n: usize) -> Vec<Duration> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("open netns");
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let mut times: Vec<Duration> = (0..n)
            .map(|_| {
                let started = std::time::Instant::now();
                let c = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3));
                let t = started.elapsed();
                assert!(c.is_ok(), "connect to {addr} failed: {c:?}");
                t
            })
            .collect();
        times.sort();
        times
    })
    .join()
    .expect("connect thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packet_delay_is_applied_per_directed_link_and_removed() {
    if !root_or_skip("netns packet shaping") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tag = format!("nsshape-{}", std::process::id());
    let rt = NetnsRuntime::start(3, dir.path().to_owned(), "/bin/true".into(), &tag)
        .await
        .expect("start");
    let state = state_of(&tag);
    let kind = rt.link_shaper().await.expect("some shaper works here");
    eprintln!("packet shaper: {kind}");
    let ns1 = rt.namespace("n1").expect("ns").to_owned();
    let ns2 = rt.namespace("n2").expect("ns").to_owned();
    let ns3 = rt.namespace("n3").expect("ns").to_owned();
    let target = SocketAddr::new(rt.ip("n2").expect("ip").into(), 7902);
    listen_in(&ns2, target);
    let before = connect_times(&ns1, target, 5);
    assert!(before[2] < Duration::from_millis(20), "unshaped connects: {before:?}");

    // n1 -> n2 delayed 100 ms: a connect (SYN out, SYN-ACK back) takes the
    // delay once; n3 -> n2 is untouched.
    let shape = LinkShape { delay: Duration::from_millis(100), ..LinkShape::default() };
    rt.set_link_shape("n1", "n2", Some(&shape)).await.expect("shape");
    assert!(!netns::shaping_rules(&ns1).is_empty());
    let shaped = connect_times(&ns1, target, 5);
    let median = shaped[2];
    eprintln!("delay 100 ms: connect times {shaped:?}");
    assert!(
        median >= Duration::from_millis(100) && median < Duration::from_millis(130),
        "median connect {median:?} for a 100 ms delay"
    );
    let other = connect_times(&ns3, target, 5);
    assert!(other[2] < Duration::from_millis(20), "n3 -> n2 is not shaped: {other:?}");

    rt.set_link_shape("n1", "n2", None).await.expect("unshape");
    assert!(netns::shaping_rules(&ns1).is_empty(), "{}", netns::shaping_rules(&ns1));
    let after = connect_times(&ns1, target, 5);
    assert!(after[2] < Duration::from_millis(20), "healed: {after:?}");
    rt.teardown().await.expect("teardown");
    assert_gone(&state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iptables_partitions_are_read_back_and_healed() {
    if !root_or_skip("netns partitions with iptables") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tag = format!("nsipt-{}", std::process::id());
    let rt = NetnsRuntime::start_with(
        3,
        dir.path().to_owned(),
        "/bin/true".into(),
        &tag,
        FirewallChoice::Iptables,
    )
    .await
    .expect("start");
    assert_eq!(rt.partitioner(), "iptables");
    let state = state_of(&tag);
    let ns1 = rt.namespace("n1").expect("ns").to_owned();
    let ns3 = rt.namespace("n3").expect("ns").to_owned();
    let target = SocketAddr::new(rt.ip("n3").expect("ip").into(), 7903);
    listen_in(&ns3, target);
    let mut g = Grudge::none();
    g.0.entry("n3".into()).or_default().insert("n1".into());
    g.0.entry("n2".into()).or_default().insert("n1".into());
    rt.set_grudge(&g).await.expect("grudge");
    assert!(netns::partition_rules(&ns3).contains("-j DROP"), "{}", netns::partition_rules(&ns3));
    assert_eq!(rt.current_grudge().await.expect("read back"), g);
    assert!(!connects_from(&ns1, target), "n1 -> n3 is cut");
    rt.set_grudge(&Grudge::none()).await.expect("heal");
    assert!(rt.current_grudge().await.expect("read back").is_empty());
    assert!(connects_from(&ns1, target), "healed");
    rt.teardown().await.expect("teardown");
    assert_gone(&state);
}

/// Runs `f` on a thread inside namespace `ns`.
fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("open netns");
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("namespace thread")
}

/// Sends `count` numbered UDP datagrams from `from_ns` to `to` (one every
/// `gap`) and returns the numbers `to_ns` received, in arrival order.
fn udp_sequence(from_ns: &str, to_ns: &str, to: SocketAddr, count: u32, gap: Duration) -> Vec<u32> {
    let (tx, rx) = std::sync::mpsc::channel();
    let receiver = {
        let ns = to_ns.to_owned();
        std::thread::spawn(move || {
            in_ns(&ns, move || {
                let sock = std::net::UdpSocket::bind(to).expect("bind");
                sock.set_read_timeout(Some(Duration::from_millis(400))).expect("timeout");
                tx.send(()).expect("ready");
                let mut got = Vec::new();
                let mut buf = [0u8; 16];
                while let Ok(n) = sock.recv(&mut buf) {
                    if n == 4 {
                        got.push(u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]));
                    }
                }
                got
            })
        })
    };
    rx.recv_timeout(Duration::from_secs(5)).expect("receiver ready");
    in_ns(from_ns, move || {
        let sock = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind");
        for i in 0..count {
            sock.send_to(&i.to_be_bytes(), to).expect("send");
            std::thread::sleep(gap);
        }
    });
    receiver.join().expect("receiver")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packet_loss_duplication_reordering_and_rate_are_measured_per_link() {
    if !root_or_skip("netns packet faults") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tag = format!("nspkt-{}", std::process::id());
    let rt = NetnsRuntime::start(2, dir.path().to_owned(), "/bin/true".into(), &tag)
        .await
        .expect("start");
    let state = state_of(&tag);
    let kind = rt.link_shaper().await.expect("some shaper works here");
    eprintln!("packet shaper: {kind}");
    let ns1 = rt.namespace("n1").expect("ns").to_owned();
    let ns2 = rt.namespace("n2").expect("ns").to_owned();
    let to = SocketAddr::new(rt.ip("n2").expect("ip").into(), 7904);
    let gap = Duration::from_micros(500);

    // Loss 30 %: of 1000 datagrams about 700 arrive (binomial sd about 15).
    let shape = LinkShape { loss: 0.3, seed: 1, ..LinkShape::default() };
    rt.set_link_shape("n1", "n2", Some(&shape)).await.expect("shape");
    let got = udp_sequence(&ns1, &ns2, to, 1000, gap);
    eprintln!("loss 0.3: {} of 1000 arrived", got.len());
    assert!((620..=780).contains(&got.len()), "{} of 1000 arrived at 30 % loss", got.len());

    // Duplication 50 %: about 1500 arrive, every number at least once.
    let shape = LinkShape { duplicate: 0.5, seed: 2, ..LinkShape::default() };
    rt.set_link_shape("n1", "n2", Some(&shape)).await.expect("shape");
    let got = udp_sequence(&ns1, &ns2, to, 1000, gap);
    let distinct: std::collections::BTreeSet<u32> = got.iter().copied().collect();
    eprintln!("duplicate 0.5: {} arrivals of {} numbers", got.len(), distinct.len());
    assert_eq!(distinct.len(), 1000, "duplication loses nothing");
    assert!((1400..=1600).contains(&got.len()), "{} arrivals at 50 % duplication", got.len());

    // Reordering 50 % against a 20 ms delay: about half the datagrams
    // overtake those sent up to 20 ms before them.
    let shape = LinkShape {
        delay: Duration::from_millis(20),
        reorder: 0.5,
        seed: 3,
        ..LinkShape::default()
    };
    rt.set_link_shape("n1", "n2", Some(&shape)).await.expect("shape");
    let got = udp_sequence(&ns1, &ns2, to, 400, Duration::from_millis(1));
    let mut highest = 0;
    let overtaken = got
        .iter()
        .filter(|n| {
            let late = **n < highest;
            highest = highest.max(**n);
            late
        })
        .count();
    eprintln!("reorder 0.5: {overtaken} of {} arrived after a later one", got.len());
    assert_eq!(got.len(), 400, "reordering loses nothing");
    assert!(overtaken > 100, "only {overtaken} of 400 arrived out of order");

    // Rate 200 kB/s: 200 kB over TCP takes about a second (headers add a
    // few per cent), not the few milliseconds it takes unshaped.
    let shape = LinkShape { rate: 200_000, seed: 4, ..LinkShape::default() };
    rt.set_link_shape("n1", "n2", Some(&shape)).await.expect("shape");
    let listen = SocketAddr::new(rt.ip("n2").expect("ip").into(), 7905);
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = {
        let ns = ns2.clone();
        std::thread::spawn(move || {
            in_ns(&ns, move || {
                let l = std::net::TcpListener::bind(listen).expect("bind");
                tx.send(()).expect("ready");
                let (mut c, _) = l.accept().expect("accept");
                let mut all = Vec::new();
                std::io::Read::read_to_end(&mut c, &mut all).expect("read");
                all.len()
            })
        })
    };
    rx.recv_timeout(Duration::from_secs(5)).expect("sink ready");
    let took = in_ns(&ns1, move || {
        let started = std::time::Instant::now();
        let mut c = std::net::TcpStream::connect(listen).expect("connect");
        std::io::Write::write_all(&mut c, &vec![7u8; 200_000]).expect("write");
        c.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut c, &mut rest);
        started.elapsed()
    });
    assert_eq!(sink.join().expect("sink"), 200_000);
    eprintln!("rate 200 kB/s: 200 kB in {took:?}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(1600),
        "200 kB at 200 kB/s took {took:?}"
    );

    rt.set_link_shape("n1", "n2", None).await.expect("unshape");
    assert!(netns::shaping_rules(&ns1).is_empty());
    let got = udp_sequence(&ns1, &ns2, to, 200, gap);
    assert_eq!(got, (0..200).collect::<Vec<u32>>(), "restored: all, in order, once");
    rt.teardown().await.expect("teardown");
    assert_gone(&state);
}
