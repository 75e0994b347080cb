//! Long lists folded into sub-chains, against real iptables (both backends): a policy of a
//! thousand `allow` entries and hundreds of trusted networks applies, reads back as applied
//! (a rerun changes nothing), shrinks to a flat policy without leaving a sub-chain behind, and
//! is removed whole by `state: absent`.

use std::fs;

use serde_json::{json, Value};

use crate::harness::{data, each_backend, Netns};
use crate::support::with;

/// A thousand allow entries on ports that never touch (so none merge), some restricted to
/// sources, a few that do merge, and trusted networks of both families that do not aggregate.
fn big(ns: &Netns) -> Value {
    let mut allow: Vec<Value> = (0..1000u32)
        .map(|i| {
            let port = 20000 + 2 * i;
            match i % 10 {
                0 => json!({"port": port, "from": ["198.51.100.0/24", "2001:db8:77::/48"]}),
                1 => json!({"port": port, "proto": "udp"}),
                _ => json!({"port": port}),
            }
        })
        .collect();
    allow.extend((8000..8020).map(|p| json!({"port": p, "comment": "merged"})));
    let mut trusted: Vec<String> = (0..128)
        .map(|i| format!("203.0.113.{}/32", 2 * i))
        .collect();
    trusted.extend((0..400).map(|i| format!("2001:db8:{:x}::/48", 2 * i + 0x1000)));
    json!({
        "after_rules": ns.path("after.rules"), "after6_rules": ns.path("after6.rules"),
        "allow": allow, "trusted_networks": trusted,
    })
}

/// The module's chains in an iptables-save text.
fn sub_chains(save: &str) -> Vec<String> {
    save.lines()
        .filter_map(|l| l.strip_prefix(':'))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| c.starts_with("ufw-docker-") && *c != "ufw-docker-logging-deny")
        .map(str::to_string)
        .collect()
}

#[test]
fn a_thousand_entries_fold_apply_rerun_shrink_and_go() {
    each_backend(|backend| {
        let ns = Netns::new(backend);
        ns.dockerish();
        let (v4, _) = ns.rule_files();
        let original = ns.save_all();

        let first = ns.module(big(&ns));
        assert!(first.ok(), "{backend:?}");
        for (v6, family) in [(false, "ipv4"), (true, "ipv6")] {
            let save = ns.save(v6);
            let subs = sub_chains(&save);
            assert!(subs.len() > 10, "{backend:?} {family}: folded: {subs:?}");
            let du = ns.chain(v6, "DOCKER-USER");
            assert!(
                du.len() < 30,
                "{backend:?} {family}: DOCKER-USER {}",
                du.len()
            );
            // Every rule reported is live, in the same chain.
            let mut live: Vec<String> = save
                .lines()
                .filter(|l| l.starts_with("-A DOCKER-USER ") || l.starts_with("-A ufw-docker-"))
                .map(str::to_string)
                .collect();
            let mut reported = first.rules(family);
            live.sort();
            reported.sort();
            assert_eq!(live, reported, "{backend:?} {family}");
        }
        let file = fs::read_to_string(&v4).unwrap();
        assert!(file.contains(":ufw-docker-allow-tcp-0 - [0:0]"));
        assert!(file.contains("--ctorigdstport 8000:8019"), "merged range");

        let after_first = ns.save_all();
        let second = ns.module(big(&ns));
        assert!(
            !second.ok(),
            "{backend:?}: rerun of a folded policy changes nothing"
        );
        assert_eq!(ns.save_all(), after_first);

        let small = with(
            big(&ns),
            json!({"allow": [{"port": 8080}], "trusted_networks": []}),
        );
        assert!(ns.module(small.clone()).ok());
        assert!(
            sub_chains(&ns.save_all()).is_empty(),
            "shrinking deletes the sub-chains"
        );
        assert_eq!(ns.chain(false, "DOCKER-USER").len(), 10);
        assert!(!ns.module(small).ok());

        assert!(ns.module(big(&ns)).ok());
        let absent = with(big(&ns), json!({"state": "absent"}));
        assert!(ns.module(absent.clone()).ok());
        assert!(
            !ns.save_all().contains("ufw-docker-"),
            "{backend:?}: absent removes all"
        );
        assert_eq!(
            fs::read(&v4).unwrap(),
            fs::read(data("after.rules")).unwrap()
        );
        assert!(!ns.module(absent).ok());
        assert_eq!(
            ns.save_all().replace("-A DOCKER-USER -j RETURN\n", ""),
            original.replace("-A DOCKER-USER -j RETURN\n", "")
        );
    });
}

/// The folded block through a real UFW: `ufw reload` loads the sub-chains from after.rules, and
/// `apply: reload` of a shorter policy deletes the sub-chains the reload leaves behind.
#[test]
fn ufw_loads_the_folded_block_and_reload_mode_cleans_up() {
    each_backend(|backend| {
        let ns = Netns::new(backend).with_ufw();
        ns.exec(
            "iptables -N DOCKER-USER && iptables -I FORWARD -j DOCKER-USER && \
             ip6tables -N DOCKER-USER && ip6tables -I FORWARD -j DOCKER-USER",
        );
        let files = json!({"after_rules": ns.ufw_dir().join("after.rules"),
                           "after6_rules": ns.ufw_dir().join("after6.rules")});
        let big = with(big(&ns), files.clone());
        assert!(ns
            .module(with(big.clone(), json!({"apply": "reload"})))
            .ok());
        let live = ns.save_all();
        assert!(sub_chains(&live).len() > 10);
        assert!(
            !ns.module(big.clone()).ok(),
            "what UFW loaded is what the module wants"
        );
        ns.exec("ufw reload >/dev/null");
        assert!(!ns.module(big).ok(), "ufw reload loads the same sub-chains");

        let small = with(files, json!({"allow": [{"port": 8080}], "apply": "reload"}));
        assert!(ns.module(small.clone()).ok());
        assert!(
            sub_chains(&ns.save_all()).is_empty(),
            "no sub-chain left behind"
        );
        assert!(!ns.module(small).ok());
    });
}
