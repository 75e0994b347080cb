//! What Docker publishes on the host, and who can reach it: the exposure report.
//!
//! Reads Docker's DNAT rules from `iptables-save -t nat` (both families) and evaluates a
//! DOCKER-USER rule list, the live one ("now") or the module's ("after"), for a new connection
//! from the public internet to each published port, with the crate's one packet evaluator
//! (`evaluator`, from `Source::Anyone`): it understands the module's own rule vocabulary,
//! including the gotos into the sub-chains long lists are folded into; a rule it does not
//! recognise makes the verdict `unknown` rather than a guess. Pure: text and rules in, data out.

use ipnet::IpNet;
use serde::Serialize;

use crate::evaluator::{self, Fate, Packet, Source};
use crate::rules::{Chains, Family, Rule};

/// One port Docker publishes on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    pub family: &'static str,
    pub proto: String,
    /// The host address the port is bound to; `None` for every address.
    pub host_address: Option<String>,
    pub host_port: String,
    pub container_address: String,
    pub container_port: String,
    /// The Docker bridge the container sits on (`docker0`, `br-...`; `docker_gwbridge` for
    /// Swarm's ingress).
    pub bridge: Option<String>,
    /// How Docker publishes it: on the host (`docker run -p`, a Swarm service's `mode=host`),
    /// or through Swarm's ingress routing mesh.
    pub mode: Mode,
}

/// How a port is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A DNAT rule in nat `DOCKER` to one container.
    Host,
    /// A DNAT rule in nat `DOCKER-INGRESS` to Swarm's ingress sandbox on `docker_gwbridge`,
    /// which spreads connections over the service's tasks (IPVS).
    Ingress,
}

/// The nat chain where Docker publishes Swarm's ingress ports.
pub const INGRESS_CHAIN: &str = "DOCKER-INGRESS";
/// The bridge Swarm's ingress sandbox sits on, behind every ingress DNAT.
pub const INGRESS_BRIDGE: &str = "docker_gwbridge";

/// Who can open a new connection to a published port from the internet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reach {
    /// Everyone.
    Open,
    /// Only the listed sources (`allow` entries with `from`).
    Restricted,
    /// Nobody on the internet (trusted networks still may).
    Blocked,
    /// A rule the module does not recognise decides first.
    Unknown,
}

/// A verdict with the sources it depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub reach: Reach,
    /// For `restricted`: the sources allowed to this port.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Trusted networks, which reach every published port whatever the verdict.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted: Vec<String>,
}

/// The DNAT rules of one family's nat table, as `parse_published` reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dnat {
    /// Docker's published ports.
    pub published: Vec<Published>,
    /// The other DNAT rules, verbatim: ports published by something else.
    pub other: Vec<String>,
}

/// Parses Docker's published ports from `iptables-save -t nat` output: the DNAT rules of its
/// `DOCKER` chain (host mode) and of `DOCKER-INGRESS` (Swarm's routing mesh). Returns them, and
/// the other DNAT rules (published by something else), verbatim.
pub fn parse_published(family: Family, nat_save: &str) -> Dnat {
    let mut published = Vec::new();
    let mut other = Vec::new();
    let mut in_nat = false;
    for line in nat_save.lines() {
        if let Some(table) = line.strip_prefix('*') {
            in_nat = table.trim() == "nat";
            continue;
        }
        if !in_nat || !line.starts_with("-A ") || !line.contains("-j DNAT") {
            continue;
        }
        let tokens = crate::rules::tokenize(line);
        let mode = match tokens.get(1).map(String::as_str) {
            Some("DOCKER") => Mode::Host,
            Some(INGRESS_CHAIN) => Mode::Ingress,
            _ => {
                other.push(line.to_string());
                continue;
            }
        };
        match parse_docker_dnat(family, &tokens, mode) {
            Some(p) => published.push(p),
            None => other.push(line.to_string()),
        }
    }
    Dnat { published, other }
}

fn parse_docker_dnat(family: Family, tokens: &[String], mode: Mode) -> Option<Published> {
    let value = |flag: &str, negated: bool| -> Option<String> {
        tokens.windows(3).find_map(|w| {
            let hit = if negated {
                w[0] == "!" && w[1] == flag
            } else {
                w[1] == flag && w[0] != "!"
            };
            hit.then(|| w[2].clone())
        })
    };
    let plain = |flag: &str| -> Option<String> {
        tokens.windows(2).enumerate().find_map(|(i, w)| {
            (w[0] == flag && (i == 0 || tokens[i - 1] != "!")).then(|| w[1].clone())
        })
    };
    let proto = plain("-p")?;
    let host_port = plain("--dport")?;
    let dest = plain("--to-destination")?;
    let (addr, port) = match dest.strip_prefix('[') {
        Some(v6) => {
            let (a, rest) = v6.split_once(']')?;
            (a.to_string(), rest.strip_prefix(':')?.to_string())
        }
        None => {
            let (a, p) = dest.rsplit_once(':')?;
            (a.to_string(), p.to_string())
        }
    };
    Some(Published {
        family: family.key(),
        proto,
        host_address: plain("-d").map(|d| {
            d.trim_end_matches("/32")
                .trim_end_matches("/128")
                .to_string()
        }),
        host_port,
        container_address: addr,
        container_port: port,
        bridge: match mode {
            Mode::Host => value("-i", true),
            Mode::Ingress => Some(INGRESS_BRIDGE.to_string()),
        },
        mode,
    })
}

/// Evaluates DOCKER-USER (in `set`, with the sub-chains it goes to) for a new connection from
/// the internet to the published port `to`. `hooked` says whether FORWARD reaches DOCKER-USER
/// first; if not, Docker's own rules accept the connection and the port is open. `route` holds
/// UFW's `ufw route` rules, consulted where the chain jumps to them.
pub fn evaluate(set: &dyn Chains, hooked: bool, route: &[Rule], to: &Published) -> Verdict {
    let Ok(port) = to.host_port.parse::<u16>() else {
        return Verdict {
            reach: Reach::Unknown,
            sources: Vec::new(),
            trusted: Vec::new(),
        };
    };
    if !hooked {
        return Verdict {
            reach: Reach::Open,
            sources: Vec::new(),
            trusted: Vec::new(),
        };
    }
    let packet = Packet {
        proto: &to.proto,
        port,
        src: Source::Anyone,
    };
    let route =
        evaluator::route_decision(route, &to.proto, &to.container_address, &to.container_port);
    let out = evaluator::evaluate(set, &packet, &route);
    let reach = match out.fate {
        Fate::Returned => Reach::Open,
        Fate::Blocked if out.sources.is_empty() => Reach::Blocked,
        Fate::Blocked => Reach::Restricted,
        // A `ufw route` deny blocks the port whatever was admitted before it.
        Fate::Denied => Reach::Blocked,
        Fate::Unknown => Reach::Unknown,
    };
    Verdict {
        reach,
        sources: out.sources,
        trusted: out.trusted,
    }
}

/// Whether a source list entry is the whole address space (an allow `from: 0.0.0.0/0`).
pub fn is_everyone(net: &str) -> bool {
    net.parse::<IpNet>().is_ok_and(|n| n.prefix_len() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::parse_args;
    use crate::policy::desired;
    use crate::rules::{ChainSet, DOCKER_USER};

    const NAT4: &str = "*nat\n:PREROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n\
        -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n\
        -A PREROUTING -p tcp -m tcp --dport 2222 -j DNAT --to-destination 192.0.2.5:22\n\
        -A DOCKER -i docker0 -j RETURN\n\
        -A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80\n\
        -A DOCKER -d 127.0.0.1/32 ! -i br-1a2b -p udp -m udp --dport 5353 -j DNAT --to-destination 10.10.0.3:53\n\
        COMMIT\n";
    /// Swarm's ingress, as moby's iptablesdoc (swarm-portmap) shows a service published with
    /// `-p 8080:80`: the DNAT to the ingress sandbox keeps the published port.
    const NAT4_INGRESS: &str =
        "*nat\n:PREROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n:DOCKER-INGRESS - [0:0]\n\
        -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER-INGRESS\n\
        -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n\
        -A DOCKER -i docker_gwbridge -j RETURN\n\
        -A DOCKER-INGRESS -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.18.0.2:8080\n\
        -A DOCKER-INGRESS -p udp -m udp --dport 8081 -j DNAT --to-destination 172.18.0.2:8081\n\
        -A DOCKER-INGRESS -j RETURN\n\
        COMMIT\n";
    const NAT6: &str = "*nat\n:DOCKER - [0:0]\n\
        -A DOCKER ! -s fe80::/10 ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd00:dead:beef::2]:80\n\
        COMMIT\n";

    #[test]
    fn parses_dockers_dnat_rules_and_sets_others_aside() {
        let Dnat {
            published: p,
            other,
        } = parse_published(Family::V4, NAT4);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].host_port, "8080");
        assert_eq!(p[0].container_address, "172.17.0.2");
        assert_eq!(p[0].container_port, "80");
        assert_eq!(p[0].bridge.as_deref(), Some("docker0"));
        assert_eq!(p[0].host_address, None);
        assert_eq!(p[1].proto, "udp");
        assert_eq!(p[1].host_address.as_deref(), Some("127.0.0.1"));
        assert_eq!(
            other,
            ["-A PREROUTING -p tcp -m tcp --dport 2222 -j DNAT --to-destination 192.0.2.5:22"]
        );
        let p6 = parse_published(Family::V6, NAT6).published;
        assert_eq!(p6[0].container_address, "fd00:dead:beef::2");
        assert_eq!(p6[0].container_port, "80");
        assert_eq!(p6[0].family, "ipv6");
        assert!(p.iter().chain(&p6).all(|p| p.mode == Mode::Host));
    }

    #[test]
    fn swarms_ingress_ports_are_published_in_ingress_mode() {
        let Dnat {
            published: p,
            other,
        } = parse_published(Family::V4, NAT4_INGRESS);
        assert!(other.is_empty(), "{other:?}");
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].mode, p[0].proto.as_str(), p[0].host_port.as_str()),
            (Mode::Ingress, "tcp", "8080")
        );
        assert_eq!(p[0].container_address, "172.18.0.2");
        assert_eq!(p[0].container_port, "8080");
        assert_eq!(p[0].bridge.as_deref(), Some("docker_gwbridge"));
        assert_eq!(p[1].proto, "udp");
        assert_eq!(
            serde_json::to_value(&p[0]).unwrap()["mode"],
            serde_json::json!("ingress")
        );
    }

    fn to(proto: &str, port: u16) -> Published {
        Published {
            family: "ipv4",
            proto: proto.into(),
            host_address: None,
            host_port: port.to_string(),
            container_address: "172.17.0.3".into(),
            container_port: "80".into(),
            bridge: Some("docker0".into()),
            mode: crate::exposure::Mode::Host,
        }
    }

    fn evaluate(chain: &[Rule], hooked: bool, proto: &str, port: u16) -> Verdict {
        let set = ChainSet {
            docker_user: chain.to_vec(),
            ..ChainSet::default()
        };
        super::evaluate(&set, hooked, &[], &to(proto, port))
    }

    fn rule(chain: &str, args: &str) -> Rule {
        Rule::of(chain, args.split(' '))
    }

    #[test]
    fn ufw_route_rules_are_consulted_for_the_container() {
        let c = set("{}");
        let allow = [rule(
            "ufw-user-forward",
            "-d 172.17.0.3/32 -p tcp -m tcp --dport 80 -j ACCEPT",
        )];
        assert_eq!(
            super::evaluate(&c, true, &allow, &to("tcp", 9280)).reach,
            Reach::Open
        );
        let other = [rule(
            "ufw-user-forward",
            "-d 172.17.0.9/32 -p tcp -m tcp --dport 80 -j ACCEPT",
        )];
        assert_eq!(
            super::evaluate(&c, true, &other, &to("tcp", 9280)).reach,
            Reach::Blocked
        );
        let from = [rule(
            "ufw-user-forward",
            "-s 198.51.100.0/24 -d 172.17.0.0/16 -p tcp -m tcp --dport 80 -j ACCEPT",
        )];
        let v = super::evaluate(&c, true, &from, &to("tcp", 9280));
        assert_eq!(
            (v.reach, v.sources),
            (Reach::Restricted, vec!["198.51.100.0/24".to_string()])
        );
        let odd = [rule(
            "ufw-user-forward",
            "-i eth0 -d 172.17.0.3/32 -j ACCEPT",
        )];
        assert_eq!(
            super::evaluate(&c, true, &odd, &to("tcp", 9280)).reach,
            Reach::Unknown
        );
    }

    fn chain(json: &str) -> Vec<Rule> {
        desired(&parse_args(json).unwrap().params, Family::V4, true).docker_user
    }

    fn set(json: &str) -> ChainSet {
        desired(&parse_args(json).unwrap().params, Family::V4, true)
    }

    #[test]
    fn the_modules_policy_reads_as_open_restricted_or_blocked() {
        let c = chain(
            r#"{"allow": [{"port": 8080}, {"port": "9000:9010", "proto": "udp"},
            {"port": 8443, "from": ["198.51.100.0/24"]}], "trusted_networks": ["192.168.1.0/24"]}"#,
        );
        assert_eq!(evaluate(&c, true, "tcp", 8080).reach, Reach::Open);
        assert_eq!(evaluate(&c, true, "udp", 9005).reach, Reach::Open);
        assert_eq!(evaluate(&c, true, "tcp", 9005).reach, Reach::Blocked);
        let r = evaluate(&c, true, "tcp", 8443);
        assert_eq!(r.reach, Reach::Restricted);
        assert_eq!(r.sources, ["198.51.100.0/24"]);
        assert_eq!(r.trusted, ["192.168.1.0/24"]);
        let b = evaluate(&c, true, "tcp", 22);
        assert_eq!(b.reach, Reach::Blocked);
        assert_eq!(b.trusted, ["192.168.1.0/24"]);
    }

    #[test]
    fn without_the_module_everything_published_is_open() {
        assert_eq!(evaluate(&[], true, "tcp", 80).reach, Reach::Open);
        let docker_default = [Rule::new(DOCKER_USER, &["-j", "RETURN"])];
        assert_eq!(
            evaluate(&docker_default, true, "tcp", 80).reach,
            Reach::Open
        );
        assert_eq!(
            evaluate(&chain("{}"), false, "tcp", 80).reach,
            Reach::Open,
            "not hooked"
        );
    }

    #[test]
    fn an_unrecognised_rule_gives_unknown() {
        let foreign = [Rule::new(
            DOCKER_USER,
            &["-p", "tcp", "--dport", "80", "-j", "ACCEPT"],
        )];
        assert_eq!(evaluate(&foreign, true, "tcp", 80).reach, Reach::Unknown);
    }

    #[test]
    fn a_folded_trusted_tree_is_reported_network_by_network() {
        let trusted: Vec<String> = (0..100)
            .map(|i| format!("\"203.0.113.{}/32\"", 2 * i))
            .collect();
        let c = set(&format!(
            r#"{{"allow": [{{"port": 80}}], "trusted_networks": [{}]}}"#,
            trusted.join(",")
        ));
        assert!(!c.subs.is_empty(), "folded");
        let v = super::evaluate(&c, true, &[], &to("tcp", 22));
        assert_eq!(v.reach, Reach::Blocked);
        assert_eq!(v.trusted.len(), 100);
        assert_eq!(
            super::evaluate(&c, true, &[], &to("tcp", 80)).reach,
            Reach::Open
        );
    }
}
