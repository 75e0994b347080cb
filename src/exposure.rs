//! What Docker publishes on the host, and who can reach it: the exposure report.
//!
//! Reads Docker's DNAT rules from `iptables-save -t nat` (both families) and evaluates a
//! DOCKER-USER rule list, the live one ("now") or the module's ("after"), for a new connection
//! from the public internet to each published port. Pure: text and rules in, data out. The
//! evaluator understands the module's own rule vocabulary, including the gotos into the
//! sub-chains long lists are folded into (see `fold`); a rule it does not recognise makes the
//! verdict `unknown` rather than a guess.

use ipnet::IpNet;
use serde::Serialize;

use crate::rules::{
    is_sub_chain, is_ufw_route_chain, ChainSet, Family, Rule, LOG_CHAIN, UNTRUSTED,
};

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
    /// The Docker bridge the container sits on (`docker0`, `br-...`).
    pub bridge: Option<String>,
}

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

/// Parses Docker's published ports from `iptables-save -t nat` output. Returns them, and the
/// DNAT rules outside Docker's `DOCKER` chain (published by something else), verbatim.
pub fn parse_published(family: Family, nat_save: &str) -> (Vec<Published>, Vec<String>) {
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
        if tokens.get(1).map(String::as_str) != Some("DOCKER") {
            other.push(line.to_string());
            continue;
        }
        match parse_docker_dnat(family, &tokens) {
            Some(p) => published.push(p),
            None => other.push(line.to_string()),
        }
    }
    (published, other)
}

fn parse_docker_dnat(family: Family, tokens: &[String]) -> Option<Published> {
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
        bridge: value("-i", true),
    })
}

/// The value of `flag` in a rule's arguments, if it is there and not negated.
fn arg<'a>(rule: &'a Rule, flag: &str) -> Option<&'a str> {
    rule.args.windows(2).enumerate().find_map(|(i, w)| {
        (w[0] == flag && (i == 0 || rule.args[i - 1] != "!")).then_some(w[1].as_str())
    })
}

fn has(rule: &Rule, flag: &str) -> bool {
    rule.args.iter().any(|a| a == flag)
}

fn port_in(range: &str, port: u16) -> bool {
    match range.split_once(':') {
        Some((a, b)) => {
            matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if a <= port && port <= b)
        }
        None => range.parse::<u16>() == Ok(port),
    }
}

/// The most gotos one evaluation follows; the module's trees are far shallower, so more means
/// a loop the module did not make.
const MAX_HOPS: usize = 64;

/// Evaluates DOCKER-USER (in `set`, with the sub-chains it goes to) for a new connection from
/// the internet to the published port `to`. `hooked` says whether FORWARD reaches DOCKER-USER
/// first; if not, Docker's own rules accept the connection and the port is open. `route` holds
/// UFW's `ufw route` rules, consulted where the chain jumps to them.
pub fn evaluate(set: &ChainSet, hooked: bool, route: &[Rule], to: &Published) -> Verdict {
    let proto = to.proto.as_str();
    let Ok(port) = to.host_port.parse::<u16>() else {
        return Verdict {
            reach: Reach::Unknown,
            sources: Vec::new(),
            trusted: Vec::new(),
        };
    };
    let mut sources = Vec::new();
    let mut trusted = Vec::new();
    let verdict = |reach: Reach, sources: Vec<String>, trusted: Vec<String>| Verdict {
        reach,
        sources,
        trusted,
    };
    if !hooked {
        return verdict(Reach::Open, sources, trusted);
    }
    let mut chain: &[Rule] = &set.docker_user;
    let mut hops = 0;
    let mut i = 0;
    while let Some(rule) = chain.get(i) {
        i += 1;
        if let Some(next) = arg(rule, "-g") {
            // A goto into one of the module's trees (anything else is not ours to guess at).
            hops += 1;
            if !is_sub_chain(next) || has_negation(rule) || hops > MAX_HOPS {
                return verdict(Reach::Unknown, sources, trusted);
            }
            if arg(rule, "--src-range").is_some() {
                // Trusted sources: every network in the tree reaches every published port.
                if !collect_trusted(set, next, &mut trusted, 0) {
                    return verdict(Reach::Unknown, sources, trusted);
                }
                continue;
            }
            let goes = match arg(rule, "--ctorigdstport") {
                Some(range) => arg(rule, "-p").is_none_or(|p| p == proto) && port_in(range, port),
                None => rule.args.len() == 6 && next == UNTRUSTED, // tagged, unconditional
            };
            if goes {
                chain = set.chain(next);
                i = 0;
            }
            continue;
        }
        let target = arg(rule, "-j").unwrap_or_default();
        let state = arg(rule, "--ctstate").unwrap_or_default();
        if state.contains("ESTABLISHED") || has_negation(rule) {
            continue; // Replies only (and negations are not ours to guess at).
        }
        if arg(rule, "-i").is_some() && target == "RETURN" {
            continue; // Traffic coming from containers.
        }
        if is_ufw_route_chain(target) {
            // `ufw route` rules: the operator's explicit exceptions, matched on the container.
            match route_decision(route, to) {
                RouteDecision::NoMatch => continue,
                RouteDecision::Accept(None) => return verdict(Reach::Open, sources, trusted),
                RouteDecision::Accept(Some(src)) => {
                    sources.push(src);
                    continue;
                }
                RouteDecision::Deny => return verdict(Reach::Blocked, sources, trusted),
                RouteDecision::Unknown => return verdict(Reach::Unknown, sources, trusted),
            }
        }
        let src = arg(rule, "-s");
        let dport = arg(rule, "--ctorigdstport");
        let rproto = arg(rule, "-p");
        match (target, dport) {
            ("RETURN", Some(range)) => {
                if rproto.is_none_or(|p| p == proto) && port_in(range, port) {
                    match src {
                        None => return verdict(Reach::Open, sources, trusted),
                        Some(s) => sources.push(s.to_string()),
                    }
                }
            }
            ("RETURN", None) if src.is_some() && rproto.is_none() && state.is_empty() => {
                trusted.push(src.unwrap_or_default().to_string());
            }
            ("RETURN", None) if rule.args == ["-j", "RETURN"] => {
                return verdict(Reach::Open, sources, trusted);
            }
            (t, None) if t == LOG_CHAIN || t == "DROP" || t == "REJECT" => {
                let blocks_published = state == "DNAT" || arg(rule, "-o").is_some();
                if blocks_published && src.is_none() && rproto.is_none_or(|p| p == proto) {
                    let reach = if sources.is_empty() {
                        Reach::Blocked
                    } else {
                        Reach::Restricted
                    };
                    return verdict(reach, sources, trusted);
                }
                return verdict(Reach::Unknown, sources, trusted);
            }
            _ => return verdict(Reach::Unknown, sources, trusted),
        }
    }
    verdict(Reach::Open, sources, trusted)
}

/// Collects the trusted networks of a folded source tree rooted at `chain`. False when the
/// tree holds a rule the module does not write there.
fn collect_trusted(set: &ChainSet, chain: &str, trusted: &mut Vec<String>, depth: usize) -> bool {
    if depth > MAX_HOPS {
        return false;
    }
    for rule in set.chain(chain) {
        match (arg(rule, "-g"), arg(rule, "-j"), arg(rule, "-s")) {
            (Some(UNTRUSTED), None, None) => {}
            (Some(child), None, None) if arg(rule, "--src-range").is_some() => {
                if !is_sub_chain(child) || !collect_trusted(set, child, trusted, depth + 1) {
                    return false;
                }
            }
            (None, Some("RETURN"), Some(src)) if !has_negation(rule) => {
                trusted.push(src.to_string())
            }
            _ => return false,
        }
    }
    true
}

/// What UFW's route chain does with a new connection to a published port's container.
enum RouteDecision {
    NoMatch,
    /// Accepted, from everyone (`None`) or from one source.
    Accept(Option<String>),
    Deny,
    /// A rule that may match and that this evaluator does not understand.
    Unknown,
}

/// Walks `ufw route` rules (`-d`, `-s`, `-p`, `--dport`, `-j ACCEPT|DROP|REJECT`, as
/// `ufw route allow|deny` writes them) for the container behind `to`.
fn route_decision(route: &[Rule], to: &Published) -> RouteDecision {
    let Ok(container) = to.container_address.parse::<std::net::IpAddr>() else {
        return RouteDecision::Unknown;
    };
    let Ok(cport) = to.container_port.parse::<u16>() else {
        return RouteDecision::Unknown;
    };
    let known = ["-d", "-s", "-p", "-m", "--dport", "-j"];
    for rule in route {
        let understood = rule.args.chunks(2).all(|kv| {
            kv.len() == 2
                && known.contains(&kv[0].as_str())
                && (kv[0] != "-m" || kv[1] == "tcp" || kv[1] == "udp")
        });
        let dst_ok = arg(rule, "-d").is_none_or(|d| {
            d.parse::<IpNet>()
                .map(|n| n.contains(&container))
                .or_else(|_| d.parse::<std::net::IpAddr>().map(|a| a == container))
                .unwrap_or(false)
        });
        let proto_ok = arg(rule, "-p").is_none_or(|p| p == to.proto);
        let port_ok = arg(rule, "--dport").is_none_or(|r| port_in(r, cport));
        if !(dst_ok && proto_ok && port_ok) {
            if understood {
                continue;
            }
            return RouteDecision::Unknown;
        }
        if !understood {
            return RouteDecision::Unknown;
        }
        match arg(rule, "-j") {
            Some("ACCEPT") => return RouteDecision::Accept(arg(rule, "-s").map(str::to_string)),
            Some("DROP") | Some("REJECT") if arg(rule, "-s").is_none() => {
                return RouteDecision::Deny
            }
            _ => return RouteDecision::Unknown,
        }
    }
    RouteDecision::NoMatch
}

fn has_negation(rule: &Rule) -> bool {
    has(rule, "!")
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
    use crate::rules::DOCKER_USER;

    const NAT4: &str = "*nat\n:PREROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n\
        -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n\
        -A PREROUTING -p tcp -m tcp --dport 2222 -j DNAT --to-destination 192.0.2.5:22\n\
        -A DOCKER -i docker0 -j RETURN\n\
        -A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80\n\
        -A DOCKER -d 127.0.0.1/32 ! -i br-1a2b -p udp -m udp --dport 5353 -j DNAT --to-destination 10.10.0.3:53\n\
        COMMIT\n";
    const NAT6: &str = "*nat\n:DOCKER - [0:0]\n\
        -A DOCKER ! -s fe80::/10 ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd00:dead:beef::2]:80\n\
        COMMIT\n";

    #[test]
    fn parses_dockers_dnat_rules_and_sets_others_aside() {
        let (p, other) = parse_published(Family::V4, NAT4);
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
        let (p6, _) = parse_published(Family::V6, NAT6);
        assert_eq!(p6[0].container_address, "fd00:dead:beef::2");
        assert_eq!(p6[0].container_port, "80");
        assert_eq!(p6[0].family, "ipv6");
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
        Rule {
            chain: chain.into(),
            args: args.split(' ').map(String::from).collect(),
        }
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
        let docker_default = [Rule {
            chain: DOCKER_USER.into(),
            args: vec!["-j".into(), "RETURN".into()],
        }];
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
        let foreign = [Rule {
            chain: DOCKER_USER.into(),
            args: ["-p", "tcp", "--dport", "80", "-j", "ACCEPT"]
                .map(String::from)
                .to_vec(),
        }];
        assert_eq!(evaluate(&foreign, true, "tcp", 80).reach, Reach::Unknown);
    }
}
