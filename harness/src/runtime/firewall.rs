//! Partitions as firewall rules on a node: one chain on the node's input
//! path that drops packets from the nodes it holds a grudge against. The
//! `netns` runtime runs these commands inside each node's namespace, the
//! `ssh` runtime on each host. nftables is preferred; where `nft` is missing
//! or the kernel lacks nf_tables, iptables does the same with a chain of its
//! own.
//!
//! Rules are read back after every change (`parse_dropped`), so a partition
//! and, above all, a heal are verified on the node itself rather than
//! assumed.

use std::collections::BTreeSet;
use std::net::IpAddr;

/// Which firewall tool installs the partition rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firewall {
    /// An `inet faultline` table with an `input` chain (nft).
    Nft,
    /// A `fl-part` chain jumped to from `INPUT` (iptables).
    Iptables,
}

/// The iptables chain that holds the partition rules.
pub const IPTABLES_CHAIN: &str = "fl-part";

/// Which firewall a runtime should use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FirewallChoice {
    /// nft if it works, else iptables.
    #[default]
    Auto,
    /// Only nft.
    Nft,
    /// Only iptables.
    Iptables,
}

impl std::str::FromStr for FirewallChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(FirewallChoice::Auto),
            "nft" | "nftables" => Ok(FirewallChoice::Nft),
            "iptables" => Ok(FirewallChoice::Iptables),
            _ => Err(format!("unknown firewall {s:?}; use auto, nft or iptables")),
        }
    }
}

impl FirewallChoice {
    /// The firewalls to try, in order.
    pub fn candidates(self) -> &'static [Firewall] {
        match self {
            FirewallChoice::Auto => &[Firewall::Nft, Firewall::Iptables],
            FirewallChoice::Nft => &[Firewall::Nft],
            FirewallChoice::Iptables => &[Firewall::Iptables],
        }
    }
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

impl Firewall {
    /// `nft` or `iptables`.
    pub fn name(self) -> &'static str {
        match self {
            Firewall::Nft => "nft",
            Firewall::Iptables => "iptables",
        }
    }

    /// Commands that create the (empty) partition chain. They fail when the
    /// tool or its kernel support is missing, which is how a runtime
    /// detects what works.
    pub fn prepare(self) -> Vec<Vec<String>> {
        match self {
            Firewall::Nft => vec![argv(&[
                "nft",
                "add table inet faultline; add chain inet faultline input \
                 { type filter hook input priority 0; policy accept; }; \
                 flush chain inet faultline input",
            ])],
            Firewall::Iptables => vec![
                argv(&["iptables", "-N", IPTABLES_CHAIN]),
                argv(&["iptables", "-I", "INPUT", "-j", IPTABLES_CHAIN]),
            ],
        }
    }

    /// Commands that make the chain drop exactly the packets from `sources`
    /// (an empty list heals). nft applies them as one transaction.
    pub fn set(self, sources: &[IpAddr]) -> Vec<Vec<String>> {
        match self {
            Firewall::Nft => {
                let mut script = "flush chain inet faultline input".to_owned();
                for ip in sources {
                    let family = if ip.is_ipv4() { "ip" } else { "ip6" };
                    script.push_str(&format!(
                        "; add rule inet faultline input {family} saddr {ip} drop"
                    ));
                }
                vec![argv(&["nft", &script])]
            }
            Firewall::Iptables => {
                let mut cmds = vec![argv(&["iptables", "-F", IPTABLES_CHAIN])];
                for ip in sources {
                    let src = ip.to_string();
                    cmds.push(argv(&["iptables", "-A", IPTABLES_CHAIN, "-s", &src, "-j", "DROP"]));
                }
                cmds
            }
        }
    }

    /// The command that lists the chain's rules (for `parse_dropped`).
    pub fn list(self) -> Vec<String> {
        match self {
            Firewall::Nft => argv(&["nft", "list", "chain", "inet", "faultline", "input"]),
            Firewall::Iptables => argv(&["iptables", "-S", IPTABLES_CHAIN]),
        }
    }

    /// Commands that remove the chain (teardown; failures are harmless).
    pub fn remove(self) -> Vec<Vec<String>> {
        match self {
            Firewall::Nft => vec![argv(&["nft", "delete", "table", "inet", "faultline"])],
            Firewall::Iptables => vec![
                argv(&["iptables", "-D", "INPUT", "-j", IPTABLES_CHAIN]),
                argv(&["iptables", "-F", IPTABLES_CHAIN]),
                argv(&["iptables", "-X", IPTABLES_CHAIN]),
            ],
        }
    }

    /// The source addresses the listed rules drop: every address on a rule
    /// line that drops (`drop` for nft, `-j DROP` for iptables).
    pub fn parse_dropped(self, listing: &str) -> BTreeSet<IpAddr> {
        let dropping = |line: &str| match self {
            Firewall::Nft => line.split_whitespace().any(|w| w == "drop"),
            Firewall::Iptables => line.contains("-j DROP"),
        };
        listing
            .lines()
            .filter(|l| dropping(l))
            .flat_map(|l| {
                l.split(|c: char| c.is_whitespace() || ",{}".contains(c))
                    .map(|w| w.split('/').next().unwrap_or(w))
                    .filter_map(|w| w.parse::<IpAddr>().ok())
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// Quotes `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// One command as a shell line.
pub fn shell_line(cmd: &[String]) -> String {
    cmd.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|s| s.parse().expect("ip")).collect()
    }

    #[test]
    fn nft_sets_every_rule_in_one_transaction() {
        let cmds = Firewall::Nft.set(&ips(&["10.231.4.1", "10.231.4.3"]));
        assert_eq!(cmds.len(), 1);
        assert_eq!(
            cmds[0][1],
            "flush chain inet faultline input; \
             add rule inet faultline input ip saddr 10.231.4.1 drop; \
             add rule inet faultline input ip saddr 10.231.4.3 drop"
        );
        assert_eq!(Firewall::Nft.set(&[])[0][1], "flush chain inet faultline input");
    }

    #[test]
    fn reads_back_what_nft_and_iptables_list() {
        let nft = "table inet faultline {\n\tchain input {\n\t\ttype filter hook input priority \
                   filter; policy accept;\n\t\tip saddr 10.231.4.1 drop\n\t\tip saddr { \
                   10.231.4.2, 10.231.4.5 } drop\n\t}\n}\n";
        assert_eq!(
            Firewall::Nft.parse_dropped(nft),
            ips(&["10.231.4.1", "10.231.4.2", "10.231.4.5"]).into_iter().collect()
        );
        let ipt = "-N fl-part\n-A fl-part -s 10.231.4.1/32 -j DROP\n-A fl-part -s 10.9.9.9/32 -j ACCEPT\n";
        assert_eq!(
            Firewall::Iptables.parse_dropped(ipt),
            ips(&["10.231.4.1"]).into_iter().collect()
        );
        assert!(Firewall::Nft.parse_dropped("table inet faultline {\n}\n").is_empty());
    }

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(shell_quote("abc-1.2"), "abc-1.2");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_line(&["nft".into(), "flush x; add y".into()]), "nft 'flush x; add y'");
    }
}
