//! Folding long `allow` and `trusted_networks` lists so that a new packet crosses O(log n) rules
//! in DOCKER-USER instead of one rule per entry.
//!
//! Why: every rule in DOCKER-USER is evaluated, in order, for every new connection forwarded
//! to a container. With a thousand entries that is a thousand rule evaluations per SYN. Small
//! lists (up to `Fold::at` rules of a kind) render exactly as before; longer ones are folded:
//!
//! - `allow` rules with the same protocol and source whose published ports touch or overlap are
//!   merged into one `--ctorigdstport lo:hi` range (conntrack's original destination port is
//!   the published host port; `multiport` would match the container port after DNAT, so it is
//!   not used);
//! - trusted networks are aggregated into the fewest CIDRs that cover exactly the same
//!   addresses;
//! - what is still longer than `Fold::at` becomes a balanced tree of sub-chains that the module
//!   owns, dispatched by port range (`--ctorigdstport lo:hi`) or source range
//!   (`-m iprange --src-range a-b`), at most `Fold::fanout` rules per chain.
//!
//! The tree uses `-g` (goto), not `-j`: a `RETURN` in a chain entered by goto returns from
//! DOCKER-USER itself, to FORWARD, exactly like the `RETURN` of a flat allow rule. A port
//! sub-tree is entered only by new DNAT connections of its protocol whose port lies in its
//! range, and every one of its chains ends with the same block rule the flat chain has after
//! its allow rules, so nothing falls off a chain by accident. A source sub-tree ends in a goto
//! to `ufw-docker-untrusted`, which holds the rest of what DOCKER-USER would hold. Ranges of
//! siblings never overlap, so each packet follows one path.
//!
//! Pure: rules in, rules out. The rules themselves, and the names of the sub-chains (only names
//! `rules::is_sub_chain` accepts), come from `rules`: this file decides the shape of the trees
//! only.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::rules::{
    allow_chain, block_published, port_goto, port_range, port_tree_entry, source_goto,
    source_tree_entry, to_untrusted, trust_chain, trusted_rule, PortRule, Proto, Rule,
};

/// When and how wide to fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fold {
    /// Lists of more rules than this (of one kind, in one family) are folded.
    pub at: usize,
    /// The most rules one sub-chain holds (its fallthrough rule aside).
    pub fanout: usize,
}

impl Fold {
    /// What the module uses: a list of up to 16 rules stays flat.
    pub const DEFAULT: Fold = Fold { at: 16, fanout: 8 };
    /// Never folds: the flat rendering, one rule per entry (for comparisons in tests).
    pub const NEVER: Fold = Fold {
        at: usize::MAX,
        fanout: usize::MAX,
    };
}

/// Merges rules of the same protocol and source whose port ranges overlap or touch. Rules
/// that merge with nothing keep their comment; merged ones say how many entries they hold.
/// The result is sorted by protocol, source and port.
pub fn merge_ports(rules: &[PortRule]) -> Vec<PortRule> {
    let mut groups: BTreeMap<(Proto, Option<IpNet>), Vec<&PortRule>> = BTreeMap::new();
    for r in rules {
        groups.entry((r.proto, r.src)).or_default().push(r);
    }
    let mut out = Vec::new();
    for ((proto, src), mut group) in groups {
        by_ports(&mut group);
        let mut run: Vec<&PortRule> = Vec::new();
        let mut hi = 0u16;
        let flush = |run: &mut Vec<&PortRule>, hi: u16, out: &mut Vec<PortRule>| {
            let Some(first) = run.first() else { return };
            let merged = if run.len() == 1 {
                (*first).clone()
            } else {
                PortRule {
                    proto,
                    src,
                    lo: first.lo,
                    hi,
                    what: format!(
                        "allow {}/{} ({} entries)",
                        port_range(first.lo, hi),
                        proto.as_str(),
                        run.len()
                    ),
                }
            };
            out.push(merged);
            run.clear();
        };
        for r in group {
            if !run.is_empty() && u32::from(r.lo) > u32::from(hi) + 1 {
                flush(&mut run, hi, &mut out);
            }
            hi = if run.is_empty() { r.hi } else { hi.max(r.hi) };
            run.push(r);
        }
        flush(&mut run, hi, &mut out);
    }
    out
}

/// Sorts rules by their port range (one function for both callers: the release binary's size is
/// counted, and each sort call compiles a sort of its own).
fn by_ports(rules: &mut [&PortRule]) {
    rules.sort_by_key(|r| (r.lo, r.hi));
}

/// The fewest networks covering exactly the addresses of `nets`, sorted.
pub fn aggregate(nets: &[IpNet]) -> Vec<IpNet> {
    IpNet::aggregate(&nets.to_vec())
}

/// A node of a tree level: the range it covers (inclusive, as text for the dispatch match)
/// and its chain.
struct Item<K> {
    lo: K,
    hi: K,
    chain: String,
}

/// Builds the levels above `items` until at most `fanout` remain; those are returned for the
/// entry chain to dispatch to. `dispatch` makes the rule that sends a covered packet from a
/// chain to a child; `fallthrough` ends each new chain.
fn levels<K: Copy>(
    mut items: Vec<Item<K>>,
    fanout: usize,
    name: &mut dyn FnMut() -> String,
    dispatch: &dyn Fn(&str, &Item<K>) -> Rule,
    fallthrough: &dyn Fn(&str) -> Rule,
    subs: &mut BTreeMap<String, Vec<Rule>>,
) -> Vec<Item<K>> {
    while items.len() > fanout {
        let mut up = Vec::new();
        for chunk in items.chunks(fanout) {
            let chain = name();
            let mut rules: Vec<Rule> = chunk.iter().map(|c| dispatch(&chain, c)).collect();
            rules.push(fallthrough(&chain));
            subs.insert(chain.clone(), rules);
            up.push(Item {
                lo: chunk[0].lo,
                hi: chunk[chunk.len() - 1].hi,
                chain,
            });
        }
        items = up;
    }
    items
}

/// Folds the allow rules of one protocol (already merged) into a tree of sub-chains. Returns
/// the dispatch rules for `entry` (DOCKER-USER or `ufw-docker-untrusted`), at most `fanout`.
pub fn port_tree(
    proto: Proto,
    rules: &[PortRule],
    fanout: usize,
    entry: &str,
    subs: &mut BTreeMap<String, Vec<Rule>>,
) -> Vec<Rule> {
    let mut sorted: Vec<&PortRule> = rules.iter().filter(|r| r.proto == proto).collect();
    by_ports(&mut sorted);
    let mut counter = 0usize;
    let mut name = || {
        counter += 1;
        allow_chain(proto, counter - 1)
    };
    // Leaves: runs of at least `fanout` rules (more only where ranges overlap), so that the
    // ranges of two leaves never overlap and a port is looked up in one leaf only.
    let mut leaves: Vec<(Vec<&PortRule>, u16)> = Vec::new();
    for r in sorted {
        match leaves.last_mut() {
            Some((leaf, hi)) if leaf.len() < fanout || r.lo <= *hi => {
                leaf.push(r);
                *hi = (*hi).max(r.hi);
            }
            _ => leaves.push((vec![r], r.hi)),
        }
    }
    let mut items = Vec::new();
    for (leaf, hi) in leaves {
        let chain = name();
        let mut chain_rules: Vec<Rule> = leaf.iter().map(|r| r.rule(&chain)).collect();
        chain_rules.push(block_published(&chain));
        let lo = leaf[0].lo;
        subs.insert(chain.clone(), chain_rules);
        items.push(Item { lo, hi, chain });
    }
    let inner = |from: &str, c: &Item<u16>| port_goto(from, proto, c.lo, c.hi, &c.chain);
    let top = levels(items, fanout, &mut name, &inner, &block_published, subs);
    top.iter()
        .map(|c| port_tree_entry(entry, proto, c.lo, c.hi, &c.chain))
        .collect()
}

/// Folds trusted networks (aggregated, sorted, disjoint) into a tree of sub-chains dispatched
/// by source range. Returns the dispatch rules for DOCKER-USER; the caller ends DOCKER-USER
/// with a goto to `ufw-docker-untrusted`, which every sub-chain ends with too.
pub fn trusted_tree(
    nets: &[IpNet],
    fanout: usize,
    entry: &str,
    subs: &mut BTreeMap<String, Vec<Rule>>,
) -> Vec<Rule> {
    let mut counter = 0usize;
    let mut name = || {
        counter += 1;
        trust_chain(counter - 1)
    };
    let untrusted = to_untrusted;
    let mut items = Vec::new();
    for chunk in nets.chunks(fanout) {
        let chain = name();
        let mut rules: Vec<Rule> = chunk.iter().map(|n| trusted_rule(&chain, n)).collect();
        rules.push(untrusted(&chain));
        subs.insert(chain.clone(), rules);
        items.push(Item {
            lo: chunk[0].network(),
            hi: chunk[chunk.len() - 1].broadcast(),
            chain,
        });
    }
    let inner = |from: &str, c: &Item<IpAddr>| source_goto(from, c.lo, c.hi, &c.chain);
    let top = levels(items, fanout, &mut name, &inner, &untrusted, subs);
    top.iter()
        .map(|c| source_tree_entry(entry, c.lo, c.hi, &c.chain))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fixtures::{allow_ports, set};

    #[test]
    fn sixteen_rules_stay_flat_and_seventeen_fold() {
        assert!(set(&allow_ports(16), Fold::DEFAULT).subs.is_empty());
        let folded = set(&allow_ports(17), Fold::DEFAULT);
        assert!(!folded.subs.is_empty());
        assert!(
            folded.subs.keys().all(|c| c.len() <= 28),
            "iptables' chain name limit"
        );
    }

    #[test]
    fn touching_and_overlapping_ports_merge_only_with_the_same_proto_and_source() {
        let r = |proto, src: Option<&str>, lo, hi| PortRule {
            proto,
            src: src.map(|s| s.parse().unwrap()),
            lo,
            hi,
            what: format!("allow {lo}"),
        };
        let merged = merge_ports(&[
            r(Proto::Tcp, None, 80, 80),
            r(Proto::Tcp, None, 81, 90),
            r(Proto::Tcp, None, 85, 86),
            r(Proto::Tcp, None, 92, 92),
            r(Proto::Udp, None, 81, 81),
            r(Proto::Tcp, Some("198.51.100.0/24"), 82, 82),
        ]);
        let got: Vec<_> = merged
            .iter()
            .map(|m| (m.proto, m.src.is_some(), m.lo, m.hi))
            .collect();
        assert_eq!(
            got,
            [
                (Proto::Tcp, false, 80, 90),
                (Proto::Tcp, false, 92, 92),
                (Proto::Tcp, true, 82, 82),
                (Proto::Udp, false, 81, 81),
            ]
        );
        assert_eq!(merged[0].what, "allow 80:90/tcp (3 entries)");
        assert_eq!(merged[1].what, "allow 92", "a lone rule keeps its comment");
    }
}
