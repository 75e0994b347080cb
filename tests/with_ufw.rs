//! The module with a real UFW in the namespace (its own /etc/ufw through /etc/netns): the
//! default file paths, `apply: reload`, `ufw reload` after a live apply, and `ufw route` rules,
//! whose chain the module must never flush. Each test runs on both iptables backends, pinned in
//! the namespace's /etc like everything else there (UFW included), never the machine's.

use std::fs;

use serde_json::json;

use crate::harness::{each_backend, Netns};
use crate::support::Backend;

/// A namespace with UFW enabled and Docker's DOCKER-USER hook, as after dockerd started.
fn ufw_host(backend: Backend) -> Netns {
    let ns = Netns::new(backend).with_ufw();
    ns.exec(
        "iptables -N DOCKER-USER && iptables -I FORWARD -j DOCKER-USER && \
         ip6tables -N DOCKER-USER && ip6tables -I FORWARD -j DOCKER-USER",
    );
    ns.exec("ufw route allow proto tcp from any to 172.17.0.2 port 80 >/dev/null");
    ns
}

fn etc_ufw(ns: &Netns, file: &str) -> Vec<u8> {
    fs::read(format!("/etc/netns/{}/ufw/{file}", ns.name)).unwrap()
}

fn route_rule_present(ns: &Netns) -> bool {
    ns.chain(false, "ufw-user-forward")
        .iter()
        .any(|r| r.contains("-d 172.17.0.2/32") && r.contains("--dport 80"))
}

#[test]
fn live_apply_survives_ufw_reload_and_keeps_route_rules() {
    each_backend(|backend| {
        let ns = ufw_host(backend);
        let original = etc_ufw(&ns, "after.rules");
        let args = json!({"allow": [{"port": 8080}]});
        let run = ns.module(args.clone());
        assert!(run.ok());
        assert!(run.warnings().is_empty(), "{}", run.warnings());
        assert!(
            route_rule_present(&ns),
            "ufw-user-forward must never be flushed"
        );
        let live = ns.chain(false, "DOCKER-USER");
        assert!(
            live.iter().any(|r| r.ends_with("-j ufw-user-forward")),
            "{live:?}"
        );
        assert!(ns
            .chain(true, "DOCKER-USER")
            .iter()
            .any(|r| r.ends_with("-j ufw6-user-forward")));

        ns.exec("ufw reload >/dev/null");
        assert_eq!(
            ns.chain(false, "DOCKER-USER"),
            live,
            "ufw reload loads the same block"
        );
        assert!(route_rule_present(&ns));
        assert!(!ns.module(args).ok(), "no change after ufw reload");

        assert!(ns.module(json!({"state": "absent"})).ok());
        assert_eq!(etc_ufw(&ns, "after.rules"), original);
        assert!(ns.chain(false, "DOCKER-USER").is_empty());
        assert!(route_rule_present(&ns));
    });
}

#[test]
fn apply_reload_loads_the_block_through_ufw() {
    each_backend(|backend| {
        let ns = ufw_host(backend);
        let args = json!({"apply": "reload", "trusted_networks": ["192.168.77.0/24"]});
        let check = ns.module(json!({"apply": "reload", "trusted_networks": ["192.168.77.0/24"], "_ansible_check_mode": true}));
        assert!(check.ok());
        // The reload loads both blocks; the guard's jump (security table) needs its payload.
        let commands = [
            "ufw reload",
            "iptables-restore -w 30 --noflush < ipv4 ufw-docker-guard (security table)",
            "ip6tables-restore -w 30 --noflush < ipv6 ufw-docker-guard (security table)",
        ];
        assert_eq!(check.strings("commands"), commands);
        let run = ns.module(args.clone());
        assert!(run.ok());
        assert_eq!(run.strings("commands"), commands);
        let live = ns.chain(false, "DOCKER-USER").join("\n");
        assert!(live.contains("-s 192.168.77.0/24"), "{live}");
        assert!(route_rule_present(&ns));
        assert!(!ns.module(args).ok());

        let gone = ns.module(json!({"apply": "reload", "state": "absent"}));
        assert!(gone.ok());
        assert!(ns.chain(false, "DOCKER-USER").is_empty());
        assert!(!ns.save(false).contains("ufw-docker-logging-deny"));
    });
}

#[test]
fn apply_reload_fails_and_rolls_back_when_ufw_is_disabled() {
    each_backend(|backend| {
        let ns = ufw_host(backend);
        ns.exec("ufw disable >/dev/null");
        let original = etc_ufw(&ns, "after.rules");
        let run = ns.module(json!({"apply": "reload"}));
        run.fails_with("did not load the rules");
        assert_eq!(etc_ufw(&ns, "after.rules"), original, "files restored");
    });
}

#[test]
fn ufw_starting_on_a_fresh_kernel_loads_the_block_and_keeps_route_rules() {
    each_backend(|backend| {
        // As at boot: UFW's chains do not exist when it loads after.rules, which comes before
        // user.rules, and Docker has not started. The block (with its jump to ufw-user-forward)
        // must load, and Docker starting afterwards finds its DOCKER-USER ready.
        let configured = ufw_host(backend);
        assert!(configured.module(json!({"allow": [{"port": 8080}]})).ok());
        let live = configured.chain(false, "DOCKER-USER");

        let booted = Netns::new(backend).with_ufw_from(&configured.ufw_dir());
        booted.exec("ufw --force enable >/dev/null");
        assert_eq!(booted.chain(false, "DOCKER-USER"), live);
        assert!(
            route_rule_present(&booted),
            "user.rules filled the route chain after the block"
        );
        // Docker starts: it finds DOCKER-USER and hooks it first in FORWARD.
        booted.exec("iptables -I FORWARD -j DOCKER-USER && ip6tables -I FORWARD -j DOCKER-USER");
        // UFW loaded the guard's chains too, but a file cannot hook them (every reload would
        // add the jump again). With DOCKER-USER first, the guard would add nothing: its missing
        // jump is no drift, and the next run that changes something puts it first.
        let args = json!({"allow": [{"port": 8080}]});
        let rerun = booted.module(args.clone());
        assert!(!rerun.ok(), "nothing to redo after boot: {}", rerun.json);
        assert!(rerun.warnings().is_empty(), "{}", rerun.warnings());
        assert!(
            booted
                .exec("iptables-save -t security")
                .contains(":ufw-docker-guard"),
            "the guard's chains are loaded from the block"
        );
        let changed = booted.module(json!({"allow": [{"port": 8081}]}));
        assert!(changed.ok());
        assert!(
            booted
                .exec("iptables -t security -S FORWARD")
                .contains("-A FORWARD -j ufw-docker-guard"),
            "a run that changes something hooks the guard"
        );
    });
}
