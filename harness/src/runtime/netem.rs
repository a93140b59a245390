//! Packet faults with the kernel's own `tc netem`, where the kernel has it
//! (`sch_netem`; the CI kernel does not, and the `netns` runtime then uses
//! the NFQUEUE shaper). One node's outgoing links are shaped on its
//! interface: an `htb` root whose default class is unshaped, and per shaped
//! destination a class with a `netem` leaf and a `u32` filter on the
//! destination address.

use std::net::Ipv4Addr;

use crate::node::LinkShape;

/// An htb class rate high enough never to limit (netem's own `rate` does
/// the limiting when asked).
const UNLIMITED: &str = "100gbit";

fn ms(d: std::time::Duration) -> String {
    format!("{:.3}ms", d.as_secs_f64() * 1e3)
}

fn pct(p: f64) -> String {
    format!("{:.4}%", p * 100.0)
}

/// The `netem` arguments for `shape`.
pub fn netem_args(shape: &LinkShape) -> Vec<String> {
    let mut a: Vec<String> = vec!["netem".into()];
    // netem's reorder needs a delay to reorder against. netem spreads its
    // jitter uniformly on both sides of the delay, while `LinkShape` (and
    // the user-space shapers) add 0 to `jitter`: centre netem's range on
    // the middle of ours.
    if !shape.delay.is_zero() || !shape.jitter.is_zero() || shape.reorder > 0.0 {
        a.push("delay".into());
        a.push(ms(shape.delay + shape.jitter / 2));
        if !shape.jitter.is_zero() {
            a.push(ms(shape.jitter / 2));
        }
    }
    if shape.loss > 0.0 {
        a.extend(["loss".into(), pct(shape.loss)]);
    }
    if shape.duplicate > 0.0 {
        a.extend(["duplicate".into(), pct(shape.duplicate)]);
    }
    if shape.reorder > 0.0 {
        a.extend(["reorder".into(), pct(shape.reorder)]);
    }
    if shape.rate > 0 {
        a.extend(["rate".into(), format!("{}bit", shape.rate.saturating_mul(8))]);
    }
    a
}

/// The `tc` argument lists that make `dev`'s outgoing links exactly
/// `links` (destination, shape): the old root is removed first (that
/// command may fail when there is none; callers ignore its status), then,
/// if any link is shaped, the tree is built.
pub fn commands(dev: &str, links: &[(Ipv4Addr, LinkShape)]) -> Vec<Vec<String>> {
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<String>>();
    let mut out = vec![s(&["qdisc", "del", "dev", dev, "root"])];
    if links.is_empty() {
        return out;
    }
    out.push(s(&["qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "1"]));
    out.push(s(&[
        "class", "add", "dev", dev, "parent", "1:", "classid", "1:1", "htb", "rate", UNLIMITED,
    ]));
    for (i, (dst, shape)) in links.iter().enumerate() {
        let class = format!("1:{:x}", i + 16);
        let handle = format!("{:x}:", i + 16);
        out.push(s(&[
            "class", "add", "dev", dev, "parent", "1:", "classid", &class, "htb", "rate", UNLIMITED,
        ]));
        let mut leaf = s(&["qdisc", "add", "dev", dev, "parent", &class, "handle", &handle]);
        leaf.extend(netem_args(shape));
        out.push(leaf);
        let dst = format!("{dst}/32");
        out.push(s(&[
            "filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio", "1", "u32",
            "match", "ip", "dst", &dst, "flowid", &class,
        ]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn one_class_and_filter_per_shaped_destination() {
        let shape = LinkShape {
            delay: Duration::from_millis(50),
            jitter: Duration::from_millis(5),
            loss: 0.1,
            duplicate: 0.02,
            reorder: 0.25,
            rate: 125_000,
            seed: 0,
        };
        let cmds = commands("eth0", &[(Ipv4Addr::new(10, 231, 4, 2), shape)]);
        let text: Vec<String> = cmds.iter().map(|c| c.join(" ")).collect();
        assert_eq!(
            text,
            vec![
                "qdisc del dev eth0 root",
                "qdisc add dev eth0 root handle 1: htb default 1",
                "class add dev eth0 parent 1: classid 1:1 htb rate 100gbit",
                "class add dev eth0 parent 1: classid 1:10 htb rate 100gbit",
                "qdisc add dev eth0 parent 1:10 handle 10: netem delay 52.500ms 2.500ms \
                 loss 10.0000% duplicate 2.0000% reorder 25.0000% rate 1000000bit",
                "filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst 10.231.4.2/32 flowid 1:10",
            ]
        );
        assert_eq!(commands("eth0", &[]).len(), 1, "healing only removes the root");
    }
}
