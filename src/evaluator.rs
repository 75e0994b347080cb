//! The packet evaluator: which rule of the module's chains decides a new connection to a
//! published port. One walker serves both questions the crate asks:
//!
//! - the exposure report: a connection from anyone on the internet (`Source::Anyone`); rules
//!   that admit some sources only are collected (`sources`, `trusted`) and the walk goes on for
//!   everyone else, so the end says whether the port is open, restricted or blocked;
//! - the folding walk: a connection from one address (`Source::Addr`), followed through the
//!   sub-chains long lists are folded into, counting the rules it crosses (the "rules a new
//!   connection crosses" of BENCHMARKS.md, which bench/packets.py checks against the kernel).
//!
//! Rules are read through `rules::Match`, never by token positions. The evaluator knows the
//! module's vocabulary, Docker's bare `-j RETURN` and UFW's route rules; where a rule it does
//! not recognise may decide, the fate is `Unknown` rather than a guess. (Options outside the
//! vocabulary on a `-j` rule are not looked at, as the exposure report always did: see `decide`.)
//!
//! Pure: rules in, a fate out.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::rules::{
    is_sub_chain, is_ufw_route_chain, matches_seen_mark, Chains, Match, Rule, Target, DOCKER_USER,
    LOG_CHAIN, UNTRUSTED,
};

/// Who opens the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Anyone on the internet: a rule that admits some sources records them and the walk goes
    /// on for the rest.
    Anyone,
    /// One address.
    Addr(IpAddr),
}

/// A new connection forwarded to a published port, as DOCKER-USER sees it: from outside (not
/// from a Docker bridge), DNATed by Docker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// `tcp`, `udp`, ... as `-p` spells it.
    pub proto: &'a str,
    /// The published (original destination) port.
    pub port: u16,
    pub src: Source,
}

/// Where the walk ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Returned from DOCKER-USER (a RETURN, the end of a chain, a `ufw route` accept): Docker's
    /// chains take it.
    Returned,
    /// Sent to the logging chain (or dropped, or rejected).
    Blocked,
    /// Denied by a `ufw route` rule.
    Denied,
    /// A rule the evaluator does not recognise may decide.
    Unknown,
}

/// The end of a walk and what it met on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub fate: Fate,
    /// Rules evaluated, in DOCKER-USER and the sub-chains.
    pub crossed: usize,
    /// With `Source::Anyone`: the sources port rules (and `ufw route` accepts) admitted on the
    /// way.
    pub sources: Vec<String>,
    /// With `Source::Anyone`: the trusted networks met on the way, folded trees included.
    pub trusted: Vec<String>,
}

/// What UFW's `ufw route` chain does with the connection, for the container behind the
/// published port (see `route_decision`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteDecision {
    NoMatch,
    /// Accepted, from everyone (`None`) or from one source.
    Accept(Option<String>),
    Deny,
    /// A rule that may match and that this evaluator does not understand.
    Unknown,
}

/// The most gotos one evaluation follows; the module's trees are far shallower, so more means
/// a loop the module did not make.
const MAX_HOPS: usize = 64;

/// Walks DOCKER-USER in `set`, and the sub-chains it goes to, for `packet`, the way the kernel
/// does. `route` is what UFW's route chain decides where DOCKER-USER jumps to it
/// (`RouteDecision::NoMatch` takes the chain as empty).
pub fn evaluate(set: &dyn Chains, packet: &Packet, route: &RouteDecision) -> Outcome {
    let mut walk = Walk {
        set,
        packet,
        route,
        hops: 0,
        sources: Vec::new(),
        trusted: Vec::new(),
    };
    let mut chain = set.chain(DOCKER_USER);
    let mut crossed = 0;
    let mut i = 0;
    let fate = loop {
        // The end of a chain (DOCKER-USER, or one entered by goto) returns from DOCKER-USER.
        let Some(rule) = chain.get(i) else {
            break Fate::Returned;
        };
        i += 1;
        crossed += 1;
        match walk.step(rule) {
            Step::Next => {}
            Step::Enter(next) => {
                chain = set.chain(next);
                i = 0;
            }
            Step::End(fate) => break fate,
        }
    };
    Outcome {
        fate,
        crossed,
        sources: walk.sources,
        trusted: walk.trusted,
    }
}

/// One walk in progress.
struct Walk<'s> {
    set: &'s dyn Chains,
    packet: &'s Packet<'s>,
    route: &'s RouteDecision,
    hops: usize,
    sources: Vec<String>,
    trusted: Vec<String>,
}

/// What a rule does with the packet.
enum Step<'r> {
    /// No decision: the next rule.
    Next,
    /// Go on in this chain.
    Enter(&'r str),
    End(Fate),
}

/// Which list a source admitted on the way goes to.
enum Admitted {
    Sources,
    Trusted,
}

impl Walk<'_> {
    fn step<'r>(&mut self, rule: &'r Rule) -> Step<'r> {
        if matches_seen_mark(rule) {
            // The guard's return of what DOCKER-USER saw: the evaluator walks the guard only
            // for connections DOCKER-USER never saw (Docker accepted them first).
            return Step::Next;
        }
        let read = rule.read();
        match read.target {
            Some(Target::Goto(next)) => self.goto(&read.matches, next),
            Some(Target::Jump(target)) => self.decide(&read.matches, target),
            None => self.decide(&read.matches, ""),
        }
    }

    /// A goto: the module's only gotos lead into its trees, by port range (`--ctorigdstport`),
    /// by source range (`--src-range`), or unconditionally (to `ufw-docker-untrusted`).
    fn goto<'r>(&mut self, m: &Match, next: &'r str) -> Step<'r> {
        self.hops += 1;
        if !is_sub_chain(next) || m.negated || self.hops > MAX_HOPS {
            return Step::End(Fate::Unknown);
        }
        match self.holds(m) {
            None => return Step::End(Fate::Unknown),
            Some(false) => return Step::Next,
            Some(true) => {}
        }
        match (m.src, m.src_range, self.packet.src) {
            (None, None, _) => Step::Enter(next),
            // Trusted sources: every network in the tree reaches every published port.
            (None, Some(_), Source::Anyone) => {
                if collect_trusted(self.set, next, &mut self.trusted, 0) {
                    Step::Next
                } else {
                    Step::End(Fate::Unknown)
                }
            }
            (None, Some(range), Source::Addr(addr)) => match in_src_range(range, addr) {
                Some(true) => Step::Enter(next),
                Some(false) => Step::Next,
                None => Step::End(Fate::Unknown),
            },
            // A goto by a single source: the module never writes one.
            (Some(_), _, _) => Step::End(Fate::Unknown),
        }
    }

    /// Whether the conditions of a goto other than its source hold for the packet: it comes
    /// from outside, is new and DNATed, to `packet.port`. `None` for a condition the
    /// evaluator cannot decide.
    fn holds(&self, m: &Match) -> Option<bool> {
        let unknown =
            !m.other.is_empty() || m.dst.is_some() || m.dport.is_some() || m.out_iface.is_some();
        if unknown {
            return None;
        }
        Some(
            m.in_iface.is_none()
                && m.proto.is_none_or(|p| p == self.packet.proto)
                && (m.ctstate.is_none() || m.states().any(|s| s == "NEW" || s == "DNAT"))
                && m.orig_port.is_none_or(|r| port_in(r, self.packet.port)),
        )
    }

    /// A rule that jumps (or returns, or has no target): how the exposure report has always
    /// read DOCKER-USER. Options outside the vocabulary (`other`) are not looked at here.
    fn decide<'r>(&mut self, m: &Match, target: &str) -> Step<'r> {
        let state = m.ctstate.unwrap_or_default();
        if m.states().any(|s| s == "ESTABLISHED") || m.negated {
            return Step::Next; // Replies only (and negations are not ours to guess at).
        }
        if m.in_iface.is_some() && target == "RETURN" {
            return Step::Next; // Traffic coming from containers.
        }
        if is_ufw_route_chain(target) {
            return self.route();
        }
        if target == "MARK" {
            return Step::Next; // A mark decides nothing (the module's: `rules::seen`).
        }
        let proto_ok = m.proto.is_none_or(|p| p == self.packet.proto);
        match (target, m.orig_port) {
            ("RETURN", Some(range)) if proto_ok && port_in(range, self.packet.port) => {
                self.admit(m.src, Admitted::Sources)
            }
            ("RETURN", Some(_)) => Step::Next,
            ("RETURN", None) if m.src.is_some() && m.proto.is_none() && state.is_empty() => {
                self.admit(m.src, Admitted::Trusted)
            }
            ("RETURN", None) if m.is_empty() => Step::End(Fate::Returned),
            (t, None) if t == LOG_CHAIN || t == "DROP" || t == "REJECT" => {
                let blocks_published = state == "DNAT" || m.out_iface.is_some();
                if blocks_published && m.src.is_none() && proto_ok {
                    Step::End(Fate::Blocked)
                } else {
                    Step::End(Fate::Unknown)
                }
            }
            _ => Step::End(Fate::Unknown),
        }
    }

    /// The jump to UFW's route chain: the operator's explicit exceptions, matched on the
    /// container.
    fn route<'r>(&mut self) -> Step<'r> {
        match self.route {
            RouteDecision::NoMatch => Step::Next,
            RouteDecision::Accept(None) => Step::End(Fate::Returned),
            RouteDecision::Accept(Some(src)) => self.admit(Some(src), Admitted::Sources),
            RouteDecision::Deny => Step::End(Fate::Denied),
            RouteDecision::Unknown => Step::End(Fate::Unknown),
        }
    }

    /// A rule that returns the packet if it comes from `src` (from everyone: `None`).
    fn admit<'r>(&mut self, src: Option<&str>, to: Admitted) -> Step<'r> {
        let Some(src) = src else {
            return Step::End(Fate::Returned);
        };
        match self.packet.src {
            Source::Anyone => {
                match to {
                    Admitted::Sources => self.sources.push(src.to_string()),
                    Admitted::Trusted => self.trusted.push(src.to_string()),
                }
                Step::Next
            }
            Source::Addr(addr) => match src.parse::<IpNet>() {
                Ok(net) if net.contains(&addr) => Step::End(Fate::Returned),
                Ok(_) => Step::Next,
                Err(_) => Step::End(Fate::Unknown),
            },
        }
    }
}

/// Collects the trusted networks of a folded source tree rooted at `chain`. False when the
/// tree holds a rule the module does not write there.
fn collect_trusted(set: &dyn Chains, chain: &str, trusted: &mut Vec<String>, depth: usize) -> bool {
    if depth > MAX_HOPS {
        return false;
    }
    for rule in set.chain(chain) {
        let read = rule.read();
        let m = &read.matches;
        match (read.target, m.src) {
            (Some(Target::Goto(UNTRUSTED)), None) => {}
            (Some(Target::Goto(child)), None) if m.src_range.is_some() => {
                if !is_sub_chain(child) || !collect_trusted(set, child, trusted, depth + 1) {
                    return false;
                }
            }
            (Some(Target::Jump("RETURN")), Some(src)) if !m.negated => {
                trusted.push(src.to_string())
            }
            _ => return false,
        }
    }
    true
}

/// Whether `port` lies in a port match (`80`, `8000:8100`); false for a value that is not one.
pub fn port_in(range: &str, port: u16) -> bool {
    match range.split_once(':') {
        Some((a, b)) => {
            matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if a <= port && port <= b)
        }
        None => range.parse::<u16>() == Ok(port),
    }
}

/// Whether `addr` lies in `--src-range lo-hi`; `None` for a value that is not a range.
fn in_src_range(range: &str, addr: IpAddr) -> Option<bool> {
    let (lo, hi) = range.split_once('-')?;
    let (lo, hi): (IpAddr, IpAddr) = (lo.parse().ok()?, hi.parse().ok()?);
    Some(lo <= addr && addr <= hi)
}

/// Walks `ufw route` rules (`-d`, `-s`, `-p`, `--dport`, `-j ACCEPT|DROP|REJECT`, as
/// `ufw route allow|deny` writes them) for a new `proto` connection to `container` port
/// `container_port`.
pub fn route_decision(
    route: &[Rule],
    proto: &str,
    container: &str,
    container_port: &str,
) -> RouteDecision {
    let Ok(container) = container.parse::<IpAddr>() else {
        return RouteDecision::Unknown;
    };
    let Ok(cport) = container_port.parse::<u16>() else {
        return RouteDecision::Unknown;
    };
    for rule in route {
        let read = rule.read();
        let m = &read.matches;
        let understood = understood_route_rule(m);
        let dst_ok = m.dst.is_none_or(|d| {
            d.parse::<IpNet>()
                .map(|n| n.contains(&container))
                .or_else(|_| d.parse::<IpAddr>().map(|a| a == container))
                .unwrap_or(false)
        });
        let proto_ok = m.proto.is_none_or(|p| p == proto);
        let port_ok = m.dport.is_none_or(|r| port_in(r, cport));
        if !(dst_ok && proto_ok && port_ok) {
            if understood {
                continue;
            }
            return RouteDecision::Unknown;
        }
        if !understood {
            return RouteDecision::Unknown;
        }
        match read.target {
            Some(Target::Jump("ACCEPT")) => {
                return RouteDecision::Accept(m.src.map(str::to_string))
            }
            Some(Target::Jump("DROP" | "REJECT")) if m.src.is_none() => return RouteDecision::Deny,
            _ => return RouteDecision::Unknown,
        }
    }
    RouteDecision::NoMatch
}

/// Whether a route rule holds only what `ufw route` writes: `-s`, `-d`, `-p`, `-m tcp|udp`,
/// `--dport` and a target without options.
fn understood_route_rule(m: &Match) -> bool {
    let written_by_ufw = Match {
        src: m.src,
        dst: m.dst,
        proto: m.proto,
        dport: m.dport,
        modules: m.modules.clone(),
        ..Match::default()
    };
    *m == written_by_ufw && m.modules.iter().all(|x| *x == "tcp" || *x == "udp")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::Fold;
    use crate::params::Proto;
    use crate::policy::fixtures::{allow_ports, set};
    use crate::rules::ChainSet;

    fn from(src: &str, port: u16) -> Packet<'static> {
        Packet {
            proto: Proto::Tcp.as_str(),
            src: Source::Addr(src.parse().unwrap()),
            port,
        }
    }

    fn walk(set: &ChainSet, packet: &Packet) -> Outcome {
        let out = evaluate(set, packet, &RouteDecision::NoMatch);
        assert_ne!(
            out.fate,
            Fate::Unknown,
            "the module's vocabulary: {packet:?}"
        );
        out
    }

    /// The most rules any packet to an allowed port, or just past one, crosses.
    fn worst(set: &ChainSet, n: u16) -> usize {
        (0..n)
            .flat_map(|i| [10000 + 2 * i, 10001 + 2 * i])
            .map(|p| walk(set, &from("203.0.113.9", p)).crossed)
            .max()
            .unwrap()
    }

    #[test]
    fn the_path_grows_with_the_log_of_the_list() {
        let mut crossed = Vec::new();
        for n in [10u16, 100, 1000] {
            let flat = set(&allow_ports(n), Fold::NEVER);
            let folded = set(&allow_ports(n), Fold::DEFAULT);
            let (f, t) = (worst(&flat, n), worst(&folded, n));
            assert!(f >= usize::from(n), "flat crosses every entry: {f}");
            crossed.push(t);
        }
        // 10 stays flat; 100 and 1000 fold into trees two and three levels deep.
        assert!(crossed[0] <= 16, "{crossed:?}");
        assert!(crossed[2] <= 40, "{crossed:?}");
        assert!(crossed[2] - crossed[1] <= 12, "{crossed:?}");
    }

    #[test]
    fn a_trusted_tree_returns_trusted_sources_and_blocks_the_rest() {
        let trusted: Vec<String> = (0..100)
            .map(|i| format!("203.0.113.{}/32", 2 * i))
            .collect();
        let json = serde_json::json!({"allow": [{"port": 80}], "trusted_networks": trusted});
        let folded = set(&json, Fold::DEFAULT);
        assert!(folded.subs.contains_key(UNTRUSTED));
        assert_eq!(
            walk(&folded, &from("203.0.113.198", 22)).fate,
            Fate::Returned
        );
        assert_eq!(
            walk(&folded, &from("203.0.113.199", 22)).fate,
            Fate::Blocked
        );
        assert_eq!(
            walk(&folded, &from("203.0.113.199", 80)).fate,
            Fate::Returned
        );
        assert_eq!(walk(&folded, &from("198.51.100.1", 22)).fate, Fate::Blocked);
        assert!(walk(&folded, &from("203.0.113.197", 22)).crossed < 40);
        // From anyone: the walk names every trusted network, and blocks the rest.
        let anyone = Packet {
            src: Source::Anyone,
            ..from("203.0.113.9", 22)
        };
        let out = evaluate(&folded, &anyone, &RouteDecision::NoMatch);
        assert_eq!(out.fate, Fate::Blocked);
        assert_eq!(out.trusted.len(), 100);
    }

    #[test]
    fn a_source_restricted_rule_admits_its_source_or_is_collected() {
        let json = serde_json::json!({"allow": [{"port": 80, "from": ["198.51.100.0/24"]}]});
        let flat = set(&json, Fold::NEVER);
        assert_eq!(walk(&flat, &from("198.51.100.9", 80)).fate, Fate::Returned);
        assert_eq!(walk(&flat, &from("192.0.2.9", 80)).fate, Fate::Blocked);
        let anyone = Packet {
            src: Source::Anyone,
            ..from("192.0.2.9", 80)
        };
        let out = evaluate(&flat, &anyone, &RouteDecision::NoMatch);
        assert_eq!(
            (out.fate, out.sources),
            (Fate::Blocked, vec!["198.51.100.0/24".into()])
        );
    }

    #[test]
    fn gotos_the_module_never_writes_are_unknown() {
        let mut flat = set(&allow_ports(1), Fold::NEVER);
        for args in [
            "-s 192.0.2.0/24 -g ufw-docker-untrusted",
            "-m set --match-set x src -g ufw-docker-allow-tcp-0",
            "! -p tcp -g ufw-docker-allow-tcp-0",
            "-g DOCKER",
        ] {
            flat.docker_user[0] = Rule::of(DOCKER_USER, args.split(' '));
            assert_eq!(
                evaluate(&flat, &from("192.0.2.9", 1), &RouteDecision::NoMatch).fate,
                Fate::Unknown,
                "{args}"
            );
        }
    }

    #[test]
    fn the_route_decision_follows_ufws_rules_for_the_container() {
        let rule = |args: &str| Rule::of("ufw-user-forward", args.split(' '));
        let decide = |rules: &[Rule]| route_decision(rules, "tcp", "172.17.0.3", "80");
        assert_eq!(decide(&[]), RouteDecision::NoMatch);
        assert_eq!(
            decide(&[rule("-d 172.17.0.3/32 -p tcp -m tcp --dport 80 -j ACCEPT")]),
            RouteDecision::Accept(None)
        );
        assert_eq!(
            decide(&[rule("-s 198.51.100.0/24 -d 172.17.0.0/16 -j ACCEPT")]),
            RouteDecision::Accept(Some("198.51.100.0/24".into()))
        );
        assert_eq!(
            decide(&[rule("-d 172.17.0.9/32 -j DROP")]),
            RouteDecision::NoMatch
        );
        assert_eq!(
            decide(&[rule("-d 172.17.0.3/32 -j REJECT")]),
            RouteDecision::Deny
        );
        assert_eq!(
            decide(&[rule("-i eth0 -d 172.17.0.3/32 -j ACCEPT")]),
            RouteDecision::Unknown
        );
        assert_eq!(
            decide(&[rule("-d 172.17.0.3/32 -m comment --comment x -j ACCEPT")]),
            RouteDecision::Unknown
        );
    }
}
