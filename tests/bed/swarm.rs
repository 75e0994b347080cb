//! Swarm's routing mesh on the bed (Docker 28): ingress ports are published entries of the
//! report (`mode: ingress`, named by their service), blocked and allowed by packet, and Swarm
//! tasks keep their egress through `docker_gwbridge`.
//!
//! This kernel has no IPVS, so Docker cannot build the ingress load balancer: a real `swarm
//! init` makes `docker_gwbridge` and the `ingress_sbox` sandbox (172.18.0.2) and runs the
//! service's task, but writes no `DOCKER-INGRESS` rules. The host-side rules are therefore
//! REPLAYED from moby's documentation of a published service
//! (integration/network/bridge/iptablesdoc, swarm-portmap: nat `DOCKER-INGRESS` DNAT to the
//! sandbox, filter `DOCKER-INGRESS` after `DOCKER-USER` in FORWARD), and a real server
//! (`testsrv`) listens inside the real `ingress_sbox` namespace where IPVS would have balanced
//! to the tasks. Rows marked "(replayed)" go through those rules; the egress rows are Docker's
//! own. Host-mode Swarm ports are real and covered by the `names` cases.

use std::path::Path;

use serde_json::json;

use super::lab::{self, Case, Docker, From, Lab, Reach};
use super::support::{require_root, sh, with, Backend};
use super::{expect, tear_down, testsrv, MachineAlternatives};

/// Docker's documented host-side rules of a service publishing 8098/tcp and 8099/udp through
/// the mesh, to the ingress sandbox at `sbox`.
fn replay_ingress_rules(lab: &Lab, sbox: &str) {
    lab.host_sh(&format!(
        "set -e
         iptables -t nat -N DOCKER-INGRESS
         iptables -t nat -I PREROUTING 1 -m addrtype --dst-type LOCAL -j DOCKER-INGRESS
         iptables -t nat -I OUTPUT 1 -m addrtype --dst-type LOCAL -j DOCKER-INGRESS
         iptables -t nat -A DOCKER-INGRESS -p tcp -m tcp --dport 8098 -j DNAT --to-destination {sbox}:8098
         iptables -t nat -A DOCKER-INGRESS -p udp -m udp --dport 8099 -j DNAT --to-destination {sbox}:8099
         iptables -t nat -A DOCKER-INGRESS -j RETURN
         iptables -t nat -I POSTROUTING 1 -o docker_gwbridge -m addrtype --src-type LOCAL -j MASQUERADE
         iptables -N DOCKER-INGRESS
         iptables -I FORWARD 2 -j DOCKER-INGRESS
         iptables -A DOCKER-INGRESS -p tcp -m tcp --dport 8098 -j ACCEPT
         iptables -A DOCKER-INGRESS -p tcp -m tcp --sport 8098 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
         iptables -A DOCKER-INGRESS -p udp -m udp --dport 8099 -j ACCEPT
         iptables -A DOCKER-INGRESS -p udp -m udp --sport 8099 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
         iptables -A DOCKER-INGRESS -j RETURN"
    ));
}

/// A command inside Docker's `ingress_sbox` network namespace, whose file Docker bind-mounts in
/// dockerd's own mount namespace (tests/bed/dockerd.sh starts it in one).
fn in_sbox(lab: &Lab, cmd: &str) -> String {
    let dockerd = std::fs::read_to_string(lab.dir.join("dockerd.pid")).unwrap();
    sh(&format!(
        "nsenter -t {} -m nsenter --net={}/exec/netns/ingress_sbox {cmd}",
        dockerd.trim(),
        lab.dir.display()
    ))
}

fn row(name: &str, from: From, proto: &'static str, addr: &str, port: u16, p: Reach) -> Case {
    Case {
        name: name.to_string(),
        from,
        proto,
        addr: addr.to_string(),
        port,
        protected: p,
        unprotected: Reach::Open,
    }
}

pub fn swarm(docker: Docker, backend: Backend) {
    require_root("the test bed");
    let module = Path::new(env!("CARGO_BIN_EXE_ufw_docker"));
    let tag = format!("swarm {docker:?}/{backend:?}");
    let machine = MachineAlternatives::now();
    let lab = Lab::start(docker, backend, testsrv(), module);
    lab.docker(&format!(
        "swarm init --advertise-addr {} >/dev/null",
        lab::LAN.0
    ));
    // `2>&1`: Docker warns that the local image's digest could not be recorded.
    lab.docker(
        "service create --detach --name edge --publish published=8098,target=80 \
         --publish published=8099,target=81,protocol=udp \
         ufwd-test /bin/testsrv serve --tcp 80 --udp 81 --name edge >/dev/null 2>&1",
    );
    let task = (0..60)
        .find_map(|_| {
            let name = lab.docker(
                "ps --filter label=com.docker.swarm.service.name=edge --filter status=running \
                 --format '{{.Names}}'",
            );
            let name = name.trim().to_string();
            if name.is_empty() {
                std::thread::sleep(std::time::Duration::from_secs(1));
                None
            } else {
                Some(name)
            }
        })
        .unwrap_or_else(|| panic!("{tag}: {}", lab.docker("service ps --no-trunc edge")));
    let sbox = in_sbox(&lab, "ip -4 -o addr show")
        .lines()
        .find_map(|l| {
            l.split_whitespace()
                .skip_while(|w| *w != "inet")
                .nth(1)
                .filter(|a| a.starts_with("172.18."))
                .map(|a| a.split('/').next().unwrap().to_string())
        })
        .unwrap_or_else(|| panic!("{tag}: the ingress sandbox has no docker_gwbridge address"));
    let nat = lab.host_sh("iptables-save -t nat");
    assert!(
        !nat.contains("DOCKER-INGRESS"),
        "{tag}: Docker wrote DOCKER-INGRESS itself (IPVS works here?): replay no longer needed\n{nat}"
    );
    replay_ingress_rules(&lab, &sbox);
    let pidfile = lab.dir.join("ingress-server.pid");
    in_sbox(
        &lab,
        &format!(
            "setsid sh -c 'echo $$ >{}; exec {} serve --tcp 8098 --udp 8099 --name ingress' \
             >/dev/null 2>&1 </dev/null &",
            pidfile.display(),
            lab.testsrv.display()
        ),
    );
    let a = From::Ns(lab.inet_a());
    let lan = From::Ns(lab.lan());
    let egress = From::Container(task.clone());
    let mut cases = vec![
        row(
            "internet -> swarm ingress tcp 8098 (replayed)",
            a.clone(),
            "tcp",
            lab::INET_A.0,
            8098,
            Reach::Closed,
        ),
        row(
            "internet -> swarm ingress udp 8099 (replayed)",
            a.clone(),
            "udp",
            lab::INET_A.0,
            8099,
            Reach::Closed,
        ),
        row(
            "trusted LAN -> swarm ingress tcp 8098 (replayed)",
            lan,
            "tcp",
            lab::LAN.0,
            8098,
            Reach::Open,
        ),
        row(
            "swarm task egress tcp -> internet (docker_gwbridge)",
            egress.clone(),
            "tcp",
            lab::INET_A.1,
            7000,
            Reach::Open,
        ),
        row(
            "swarm task egress udp -> internet (reply, docker_gwbridge)",
            egress,
            "udp",
            lab::INET_A.1,
            7001,
            Reach::Open,
        ),
    ];
    expect(&lab, &format!("{tag}: before the module"), &cases, false);

    // The report: both mesh ports, by service, open now and blocked after; nothing unrecognised.
    let check = lab.module(with(lab::policy(), json!({"_ansible_check_mode": true})));
    let ingress: Vec<_> = check["published"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["mode"] == "ingress")
        .cloned()
        .collect();
    println!("{tag}: the ingress entries of the report: {ingress:#?}");
    assert_eq!(ingress.len(), 2, "{tag}: {}", check["published"]);
    for (p, (proto, port)) in ingress.iter().zip([("tcp", "8098"), ("udp", "8099")]) {
        assert_eq!(
            (
                &p["proto"],
                &p["host_port"],
                &p["bridge"],
                &p["swarm_service"],
                &p["now"],
                &p["after"]
            ),
            (
                &json!(proto),
                &json!(port),
                &json!("docker_gwbridge"),
                &json!("edge"),
                &json!("open"),
                &json!("blocked")
            ),
            "{tag}: {p}"
        );
        assert_eq!(p["container_address"], json!(sbox));
    }
    assert_eq!(check["unrecognised_dnat"], json!([]), "{tag}");

    assert_eq!(lab.module(lab::policy())["changed"], true);
    expect(&lab, &format!("{tag}: after the module"), &cases, true);

    // Allowed, the mesh port is open to the internet again; the report says so.
    let allowed = with(
        lab::policy(),
        json!({"allow": [{"port": 8098}, {"port": 8099, "proto": "udp"}]}),
    );
    let run = lab.module(allowed);
    for c in cases.iter_mut().take(2) {
        c.protected = Reach::Open;
    }
    expect(
        &lab,
        &format!("{tag}: with 8098 and 8099 allowed"),
        &cases,
        true,
    );
    let after: Vec<_> = run["published"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["mode"] == "ingress")
        .map(|p| p["after"].clone())
        .collect();
    assert_eq!(after, [json!("open"), json!("open")], "{tag}");

    let pid = std::fs::read_to_string(&pidfile).unwrap();
    sh(&format!("kill {}", pid.trim()));
    lab.docker("service rm edge >/dev/null");
    tear_down(lab, &tag, &machine);
}
