//! The user-space packet shaper of the `netns` runtime, for kernels without
//! `tc netem` (like the one CI runs on): an iptables `NFQUEUE` rule in the
//! sending node's namespace hands every packet bound for a shaped peer to a
//! thread of the harness, which holds it and gives the kernel its verdict
//! when `shape::Shaper` says (delay, jitter, reordering, rate), drops it
//! (loss), or also sends a copy through a raw socket (duplication).
//!
//! The thread enters the namespace (`setns`) before it opens the queue and
//! the raw socket, so both belong to that namespace. The rule has
//! `--queue-bypass`: if the harness dies, packets flow unshaped instead of
//! being dropped, and namespace removal deletes the rule. Copies carry the
//! mark `SHAPER_MARK`, which the rule skips, so they are not shaped twice.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{HarnessError, Result};
use crate::node::LinkShape;
use crate::runtime::shape::{Fate, Mode, Shaper};

/// The firewall mark of packets the shaper sends itself (duplicates).
pub const SHAPER_MARK: u32 = 0x666c;
/// The queue number (queues are per namespace, so one number serves all).
pub const QUEUE: u16 = 0;
/// The iptables chain (filter table, inside the namespace) that queues
/// shaped packets.
pub const CHAIN: &str = "fl-shape";

/// The shapes of one namespace's outgoing links, by destination address.
pub type Links = BTreeMap<Ipv4Addr, LinkShape>;

/// A running shaper thread for one namespace.
pub struct NfqShaper {
    links: Arc<Mutex<Links>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl NfqShaper {
    /// Starts a shaper inside the namespace at `netns_path`
    /// (`/run/netns/NAME`); returns once its queue is bound, or the reason
    /// it could not be.
    pub fn start(netns_path: &Path) -> Result<NfqShaper> {
        let links = Arc::new(Mutex::new(Links::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let path = netns_path.to_owned();
        let (l, s) = (links.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("fl-nfqueue".into())
            .spawn(move || run(path, l, s, ready_tx))
            .map_err(|e| HarnessError::Net(format!("cannot start the NFQUEUE shaper: {e}")))?;
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => Ok(NfqShaper { links, stop, thread: Some(thread) }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(HarnessError::Net(e))
            }
            Err(_) => {
                stop.store(true, Ordering::SeqCst);
                Err(HarnessError::Net("the NFQUEUE shaper did not start within 5 s".into()))
            }
        }
    }

    /// Replaces the shapes it applies.
    pub fn set_links(&self, links: Links) {
        if let Ok(mut l) = self.links.lock() {
            *l = links;
        }
    }

    /// Releases every held packet and stops.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for NfqShaper {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether this kernel offers NFQUEUE at all (the module is loaded or
/// built in). Binding a queue in a namespace is the real test.
pub fn kernel_has_nfqueue() -> bool {
    Path::new("/proc/net/netfilter/nfnetlink_queue").exists()
}

/// A packet held for later.
enum Held {
    /// The kernel's packet, awaiting its verdict.
    Verdict(nfq::Message),
    /// A duplicate to send through the raw socket.
    Copy(Vec<u8>, Ipv4Addr),
}

/// An entry of the release heap: due time, then arrival order.
struct Due(Duration, u64, Held);

impl PartialEq for Due {
    fn eq(&self, other: &Due) -> bool {
        (self.0, self.1) == (other.0, other.1)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Due) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Due) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(other.0, other.1))
    }
}

/// The destination of an IPv4 packet.
fn ipv4_destination(packet: &[u8]) -> Option<Ipv4Addr> {
    if packet.len() < 20 || packet[0] >> 4 != 4 {
        return None;
    }
    Some(Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]))
}

fn open(path: &Path) -> std::result::Result<(nfq::Queue, socket2::Socket), String> {
    let ns = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("cannot enter {}: {e}", path.display()))?;
    let mut queue = nfq::Queue::open().map_err(|e| format!("NFQUEUE netlink socket: {e}"))?;
    queue.bind(QUEUE).map_err(|e| format!("cannot bind NFQUEUE {QUEUE}: {e}"))?;
    // Held packets stay in the kernel's queue until their verdict; make
    // room for a delayed burst, and let packets through unshaped rather
    // than drop them if it still overflows.
    queue.set_queue_max_len(QUEUE, 65_536).map_err(|e| format!("NFQUEUE length: {e}"))?;
    queue.set_fail_open(QUEUE, true).map_err(|e| format!("NFQUEUE fail-open: {e}"))?;
    queue.set_nonblocking(true);
    let raw = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::RAW,
        Some(socket2::Protocol::from(255)), // IPPROTO_RAW: we supply the header
    )
    .map_err(|e| format!("raw socket for duplicates: {e}"))?;
    raw.set_mark(SHAPER_MARK).map_err(|e| format!("mark on the raw socket: {e}"))?;
    Ok((queue, raw))
}

fn run(
    path: PathBuf,
    links: Arc<Mutex<Links>>,
    stop: Arc<AtomicBool>,
    ready: std::sync::mpsc::Sender<std::result::Result<(), String>>,
) {
    let (mut queue, raw) = match open(&path) {
        Ok(q) => q,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let epoch = Instant::now();
    let mut shapers: BTreeMap<Ipv4Addr, Shaper> = BTreeMap::new();
    let mut held: BinaryHeap<Reverse<Due>> = BinaryHeap::new();
    let mut seq = 0u64;
    let release = |queue: &mut nfq::Queue, item: Held| match item {
        Held::Verdict(mut msg) => {
            msg.set_verdict(nfq::Verdict::Accept);
            let _ = queue.verdict(msg);
        }
        Held::Copy(bytes, dst) => {
            let _ = raw.send_to(&bytes, &SocketAddrV4::new(dst, 0).into());
        }
    };
    while !stop.load(Ordering::SeqCst) {
        let mut busy = false;
        // Take what the kernel has queued.
        for _ in 0..256 {
            let mut msg = match queue.recv() {
                Ok(m) => m,
                Err(_) => break,
            };
            busy = true;
            let now = epoch.elapsed();
            let payload = msg.get_payload();
            let dst = ipv4_destination(payload);
            let shape = dst.and_then(|d| links.lock().ok().and_then(|l| l.get(&d).cloned()));
            let (Some(dst), Some(shape)) = (dst, shape) else {
                msg.set_verdict(nfq::Verdict::Accept);
                let _ = queue.verdict(msg);
                continue;
            };
            let shaper =
                shapers.entry(dst).or_insert_with(|| Shaper::new(shape.clone(), Mode::Packets));
            if shaper.shape() != &shape {
                *shaper = Shaper::new(shape, Mode::Packets);
            }
            match shaper.admit(now, payload.len()) {
                Fate::Lost => {
                    msg.set_verdict(nfq::Verdict::Drop);
                    let _ = queue.verdict(msg);
                }
                Fate::Send { at, copies } => {
                    if copies > 1 {
                        seq += 1;
                        held.push(Reverse(Due(at, seq, Held::Copy(payload.to_vec(), dst))));
                    }
                    seq += 1;
                    held.push(Reverse(Due(at, seq, Held::Verdict(msg))));
                }
            }
        }
        // Release what is due.
        let now = epoch.elapsed();
        while held.peek().is_some_and(|Reverse(d)| d.0 <= now) {
            if let Some(Reverse(Due(_, _, item))) = held.pop() {
                release(&mut queue, item);
            }
        }
        if !busy {
            let next = held.peek().map(|Reverse(d)| d.0.saturating_sub(now));
            let nap = next.unwrap_or(Duration::from_millis(1)).min(Duration::from_millis(1));
            std::thread::sleep(nap.max(Duration::from_micros(100)));
        }
    }
    // Stopping: let everything held go now, then leave the queue.
    while let Some(Reverse(Due(_, _, item))) = held.pop() {
        release(&mut queue, item);
    }
    let _ = queue.unbind(QUEUE);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_destination_of_ipv4_packets_only() {
        let mut p = vec![0u8; 20];
        p[0] = 0x45;
        p[16..20].copy_from_slice(&[10, 231, 7, 2]);
        assert_eq!(ipv4_destination(&p), Some(Ipv4Addr::new(10, 231, 7, 2)));
        p[0] = 0x60;
        assert_eq!(ipv4_destination(&p), None);
        assert_eq!(ipv4_destination(&[0x45, 0, 0]), None);
    }
}
