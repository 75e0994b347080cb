//! The firewall policy as data: from validated parameters to the chains of each address family.
//!
//! Why these rules (in `DOCKER-USER`, which Docker's FORWARD chain jumps to first):
//! 1. replies to existing connections return to Docker's own chains untouched, and every new
//!    connection Docker DNATed is marked as seen here (`rules::SEEN_MARK`), for the guard
//!    (below), which leaves what DOCKER-USER decided alone;
//! 2. `ufw route` rules decide next (UFW's `ufw-user-forward` chain), as operators expect;
//! 3. traffic coming out of a Docker bridge (container egress, container to container) returns;
//! 4. trusted sources return;
//! 5. `allow` entries return, matched on conntrack's original destination port, i.e. the
//!    published host port, so they survive a container restart with a new IP and never follow
//!    an old IP to another container;
//! 6. every other new connection that Docker DNATed (any published port, on any network, with
//!    any subnet) or that is routed into a Docker bridge (`docker0`, `br-*`, including networks
//!    created later) goes to the logging chain and is dropped;
//! 7. everything else (traffic that has nothing to do with Docker) returns.
//!
//! The guard (`rules::guard_set`, in the `security` table, which the kernel runs after filter
//! and Docker never touches) holds the same rules without the mark and 2, after a return of what is
//! marked: where Docker put its own ACCEPT rules ahead of the jump to DOCKER-USER (Docker
//! 20.10's ip6tables, for every network it creates or re-creates, until the module puts the
//! jump first again), the policy still holds, less the `ufw route` exceptions.
//!
//! Long lists are folded into sub-chains by `fold`; the rules themselves come from `rules`.

use std::collections::BTreeMap;

use ipnet::IpNet;

use crate::fold::{self, Fold};
use crate::params::{Params, State};
use crate::rules::{
    block_published, block_routed, drop_logged, from_containers, log, replies, return_rest, seen,
    to_untrusted, trusted_rule, ufw_route_jump, ChainSet, Family, PortRule, Proto, Rule,
    DOCKER_BRIDGES, DOCKER_USER, UNTRUSTED,
};

/// Builds the module's rules for one family. `route_jump` says whether to consult UFW's
/// `ufw route` chain (it must exist where the rules are loaded). Long lists are folded.
pub fn desired(params: &Params, family: Family, route_jump: bool) -> ChainSet {
    render(params, family, route_jump, Fold::DEFAULT)
}

/// `desired` with an explicit folding rule (tests compare `Fold::NEVER` with folded sets).
pub fn render(params: &Params, family: Family, route_jump: bool, fold: Fold) -> ChainSet {
    if params.state == State::Absent {
        return ChainSet::default();
    }
    let mut subs = BTreeMap::new();
    let mut docker_user = head(family, route_jump);
    let rest = trusted(params, family, fold, &mut docker_user, &mut subs);
    let mut tail = allows(params, family, fold, rest, &mut subs);
    tail.extend(blocks(rest));
    if rest == DOCKER_USER {
        docker_user.extend(tail);
    } else {
        subs.insert(rest.to_string(), tail);
    }
    ChainSet {
        docker_user,
        log_chain: log_chain(params),
        subs,
    }
}

/// What DOCKER-USER starts with: replies, the `ufw route` rules (where `route_jump`), and
/// traffic coming out of a Docker bridge.
fn head(family: Family, route_jump: bool) -> Vec<Rule> {
    let mut rules = vec![replies(), seen()];
    if route_jump {
        rules.push(ufw_route_jump(family));
    }
    rules.extend(DOCKER_BRIDGES.map(from_containers));
    rules
}

/// Appends the family's trusted networks to DOCKER-USER (`docker_user`): one rule each, or,
/// for more than `fold.at` once aggregated, the entry to a tree of sub-chains and a goto to
/// `ufw-docker-untrusted`. Returns the chain that holds the rest of the policy: DOCKER-USER,
/// or `ufw-docker-untrusted`.
fn trusted(
    params: &Params,
    family: Family,
    fold: Fold,
    docker_user: &mut Vec<Rule>,
    subs: &mut BTreeMap<String, Vec<Rule>>,
) -> &'static str {
    let nets: Vec<IpNet> = params
        .trusted_networks
        .iter()
        .filter(|n| family.holds(n))
        .copied()
        .collect();
    let nets = if nets.len() > fold.at {
        fold::aggregate(&nets)
    } else {
        nets
    };
    if nets.len() > fold.at {
        docker_user.extend(fold::trusted_tree(&nets, fold.fanout, DOCKER_USER, subs));
        docker_user.push(to_untrusted(DOCKER_USER));
        UNTRUSTED
    } else {
        docker_user.extend(nets.iter().map(|n| trusted_rule(DOCKER_USER, n)));
        DOCKER_USER
    }
}

/// The family's `allow` rules in `chain`: one per entry and source, or, for more than
/// `fold.at`, merged and (per protocol, where still more than `fold.at`) folded into trees.
fn allows(
    params: &Params,
    family: Family,
    fold: Fold,
    chain: &str,
    subs: &mut BTreeMap<String, Vec<Rule>>,
) -> Vec<Rule> {
    let allows = port_rules(params, family);
    if allows.len() <= fold.at {
        return allows.iter().map(|r| r.rule(chain)).collect();
    }
    let merged = fold::merge_ports(&allows);
    let mut rules = Vec::new();
    for proto in [Proto::Tcp, Proto::Udp] {
        let mine: Vec<PortRule> = merged
            .iter()
            .filter(|r| r.proto == proto)
            .cloned()
            .collect();
        if mine.len() > fold.at {
            rules.extend(fold::port_tree(proto, &mine, fold.fanout, chain, subs));
        } else {
            rules.extend(mine.iter().map(|r| r.rule(chain)));
        }
    }
    rules
}

/// What follows the allow rules in `chain`: every other connection Docker DNATed, or routed
/// into a Docker bridge, goes to the logging chain; the rest returns.
fn blocks(chain: &str) -> Vec<Rule> {
    let mut rules = vec![block_published(chain)];
    rules.extend(DOCKER_BRIDGES.map(|bridge| block_routed(chain, bridge)));
    rules.push(return_rest(chain));
    rules
}

/// The logging chain: a rate-limited LOG (unless `log` is off), then DROP.
fn log_chain(params: &Params) -> Vec<Rule> {
    let mut rules = Vec::new();
    if params.log {
        rules.push(log(&params.log_limit.to_string(), &params.log_prefix));
    }
    rules.push(drop_logged());
    rules
}

/// The family's `allow` rules in the order of the entries: one per entry without `from`, one
/// per source of this family otherwise.
fn port_rules(params: &Params, family: Family) -> Vec<PortRule> {
    let mut out = Vec::new();
    for allow in &params.allow {
        let mut what = format!("allow {}/{}", allow.port, allow.proto.as_str());
        if let Some(comment) = &allow.comment {
            what.push(' ');
            what.push_str(comment);
        }
        let rule = |src: Option<IpNet>| PortRule {
            proto: allow.proto,
            src,
            lo: allow.port.start,
            hi: allow.port.end,
            what: what.clone(),
        };
        if allow.from.is_empty() {
            out.push(rule(None));
        }
        out.extend(
            allow
                .from
                .iter()
                .filter(|n| family.holds(n))
                .map(|n| rule(Some(*n))),
        );
    }
    out
}

/// Policies for the tests of the modules that walk or fold what `render` builds.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::render;
    use crate::fold::Fold;
    use crate::params::parse_args;
    use crate::rules::{ChainSet, Family};

    /// The IPv4 chains the module renders for the parameters JSON, with UFW's route jump.
    pub(crate) fn set(json: &serde_json::Value, fold: Fold) -> ChainSet {
        let params = parse_args(&json.to_string()).unwrap().params;
        render(&params, Family::V4, true, fold)
    }

    /// Parameters allowing N ports from 10000 on, two apart (so that none merge).
    pub(crate) fn allow_ports(n: u16) -> serde_json::Value {
        let allow: Vec<_> = (0..n)
            .map(|i| serde_json::json!({"port": 10000 + 2 * i}))
            .collect();
        serde_json::json!({ "allow": allow })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::parse_args;
    use crate::rules::{restore_section, LOG_CHAIN};

    fn params(json: &str) -> Params {
        parse_args(json).unwrap().params
    }

    fn rendered(json: &str, family: Family, route: bool) -> Vec<String> {
        desired(&params(json), family, route).lines()
    }

    #[test]
    fn default_policy_blocks_published_and_routed_traffic_and_logs() {
        let lines = rendered("{}", Family::V4, true);
        assert_eq!(
            lines,
            [
                r#"-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "ufw-docker: replies" -j RETURN"#,
                r#"-A DOCKER-USER -m conntrack --ctstate DNAT -m comment --comment "ufw-docker: seen by DOCKER-USER" -j MARK --set-xmark 0x1000000/0x1000000"#,
                r#"-A DOCKER-USER -m comment --comment "ufw-docker: ufw route rules" -j ufw-user-forward"#,
                r#"-A DOCKER-USER -i docker0 -m comment --comment "ufw-docker: from containers" -j RETURN"#,
                r#"-A DOCKER-USER -i br-+ -m comment --comment "ufw-docker: from containers" -j RETURN"#,
                r#"-A DOCKER-USER -m conntrack --ctstate DNAT -m comment --comment "ufw-docker: block published ports" -j ufw-docker-logging-deny"#,
                r#"-A DOCKER-USER -o docker0 -m comment --comment "ufw-docker: block routed to containers" -j ufw-docker-logging-deny"#,
                r#"-A DOCKER-USER -o br-+ -m comment --comment "ufw-docker: block routed to containers" -j ufw-docker-logging-deny"#,
                "-A DOCKER-USER -j RETURN",
                r#"-A ufw-docker-logging-deny -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW DOCKER BLOCK] ""#,
                "-A ufw-docker-logging-deny -j DROP",
            ]
        );
    }

    #[test]
    fn ipv6_uses_ufw6_route_chain() {
        let lines = rendered("{}", Family::V6, true);
        assert!(lines[2].ends_with("-j ufw6-user-forward"), "{}", lines[2]);
    }

    #[test]
    fn the_guard_is_the_policy_without_the_mark_and_the_route_jump() {
        let set = desired(
            &params(r#"{"allow": [{"port": 8080}], "trusted_networks": ["192.0.2.0/24"]}"#),
            Family::V4,
            true,
        );
        let guard = crate::rules::guard_set(&set);
        assert_eq!(
            guard.lines(),
            [
                r#"-A ufw-docker-guard -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "ufw-docker: replies" -j RETURN"#,
                r#"-A ufw-docker-guard -m mark --mark 0x1000000/0x1000000 -m comment --comment "ufw-docker: decided by DOCKER-USER" -j RETURN"#,
                r#"-A ufw-docker-guard -i docker0 -m comment --comment "ufw-docker: from containers" -j RETURN"#,
                r#"-A ufw-docker-guard -i br-+ -m comment --comment "ufw-docker: from containers" -j RETURN"#,
                r#"-A ufw-docker-guard -s 192.0.2.0/24 -m comment --comment "ufw-docker: trusted" -j RETURN"#,
                r#"-A ufw-docker-guard -p tcp -m conntrack --ctstate DNAT --ctorigdstport 8080 -m comment --comment "ufw-docker: allow 8080/tcp" -j RETURN"#,
                r#"-A ufw-docker-guard -m conntrack --ctstate DNAT -m comment --comment "ufw-docker: block published ports" -j ufw-docker-logging-deny"#,
                r#"-A ufw-docker-guard -o docker0 -m comment --comment "ufw-docker: block routed to containers" -j ufw-docker-logging-deny"#,
                r#"-A ufw-docker-guard -o br-+ -m comment --comment "ufw-docker: block routed to containers" -j ufw-docker-logging-deny"#,
                "-A ufw-docker-guard -j RETURN",
                r#"-A ufw-docker-logging-deny -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW DOCKER BLOCK] ""#,
                "-A ufw-docker-logging-deny -j DROP",
            ]
        );
        let section = crate::rules::security_section(&guard);
        assert!(section.starts_with(
            "*security\n:ufw-docker-guard - [0:0]\n:ufw-docker-logging-deny - [0:0]\n"
        ));
        assert!(section.ends_with("COMMIT\n") && !section.contains("FORWARD"));
        assert_eq!(
            crate::rules::guard_set(&ChainSet::default()),
            ChainSet::default()
        );
    }

    #[test]
    fn the_guards_section_is_rendered_from_the_set_as_its_copy_would_be() {
        use super::fixtures::{allow_ports, set};
        use crate::fold::Fold;
        use crate::rules::{guard_section, guard_set, security_section};
        for set in [
            ChainSet::default(),
            set(&allow_ports(3), Fold::DEFAULT),
            set(&allow_ports(300), Fold::DEFAULT),
        ] {
            assert_eq!(guard_section(&set), security_section(&guard_set(&set)));
        }
    }

    #[test]
    fn allow_matches_the_published_port_and_splits_sources_by_family() {
        let json = r#"{"allow": [
            {"port": 8080, "comment": "web"},
            {"port": "5000:5010", "proto": "udp", "from": ["198.51.100.0/24", "2001:db8:5::/48"]},
            {"port": 9000, "from": ["198.51.100.7"]}
        ], "trusted_networks": ["192.168.10.0/24", "fd00::/8"]}"#;
        let v4 = rendered(json, Family::V4, false);
        let v6 = rendered(json, Family::V6, false);
        assert!(v4.contains(&r#"-A DOCKER-USER -s 192.168.10.0/24 -m comment --comment "ufw-docker: trusted" -j RETURN"#.to_string()));
        assert!(v4.contains(&r#"-A DOCKER-USER -p tcp -m conntrack --ctstate DNAT --ctorigdstport 8080 -m comment --comment "ufw-docker: allow 8080/tcp web" -j RETURN"#.to_string()));
        assert!(v4.contains(&r#"-A DOCKER-USER -s 198.51.100.0/24 -p udp -m conntrack --ctstate DNAT --ctorigdstport 5000:5010 -m comment --comment "ufw-docker: allow 5000:5010/udp" -j RETURN"#.to_string()));
        assert!(v4.contains(&r#"-A DOCKER-USER -s 198.51.100.7/32 -p tcp -m conntrack --ctstate DNAT --ctorigdstport 9000 -m comment --comment "ufw-docker: allow 9000/tcp" -j RETURN"#.to_string()));
        assert!(!v4
            .iter()
            .any(|l| l.contains("2001:db8") || l.contains("fd00")));
        assert!(v6.contains(
            &r#"-A DOCKER-USER -s fd00::/8 -m comment --comment "ufw-docker: trusted" -j RETURN"#
                .to_string()
        ));
        assert!(v6.contains(&r#"-A DOCKER-USER -s 2001:db8:5::/48 -p udp -m conntrack --ctstate DNAT --ctorigdstport 5000:5010 -m comment --comment "ufw-docker: allow 5000:5010/udp" -j RETURN"#.to_string()));
        // The v4-only source leaves port 9000 closed on IPv6.
        assert!(!v6.iter().any(|l| l.contains("9000")));
        assert!(!v4.iter().any(|l| l.contains("ufw-user-forward")));
    }

    #[test]
    fn accepts_come_before_the_blocks() {
        let json = r#"{"allow": [{"port": 80}], "trusted_networks": ["10.9.0.0/16"]}"#;
        let lines = rendered(json, Family::V4, true);
        let first_block = lines.iter().position(|l| l.contains(LOG_CHAIN)).unwrap();
        let last_return = lines
            .iter()
            .rposition(|l| l.contains("ufw-docker: allow") || l.contains("trusted"))
            .unwrap();
        assert!(last_return < first_block);
    }

    #[test]
    fn logging_can_be_turned_off_or_tuned() {
        let off = rendered(r#"{"log": false}"#, Family::V4, true);
        assert_eq!(off.last().unwrap(), "-A ufw-docker-logging-deny -j DROP");
        assert!(!off.iter().any(|l| l.contains("LOG")));
        let tuned = rendered(
            r#"{"log_limit": "60/minute", "log_prefix": "DOCKER-DROP"}"#,
            Family::V4,
            true,
        );
        assert!(tuned.contains(&"-A ufw-docker-logging-deny -m limit --limit 1/sec --limit-burst 10 -j LOG --log-prefix DOCKER-DROP".to_string()));
    }

    #[test]
    fn absent_has_no_rules() {
        assert!(rendered(r#"{"state": "absent"}"#, Family::V4, true).is_empty());
    }

    #[test]
    fn restore_section_declares_only_owned_chains() {
        let set = desired(&params("{}"), Family::V4, false);
        let text = restore_section(&set, &[]);
        let declared: Vec<&str> = text.lines().filter(|l| l.starts_with(':')).collect();
        assert_eq!(
            declared,
            [":DOCKER-USER - [0:0]", ":ufw-docker-logging-deny - [0:0]"]
        );
        assert!(text.starts_with("*filter\n") && text.ends_with("COMMIT\n"));
    }
}
