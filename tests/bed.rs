//! End to end with real packets: a Docker host (Docker 20.10 and 28, iptables nft and legacy)
//! with UFW, probed from "the internet", a trusted LAN and an untrusted private neighbour,
//! before and after the module, and after everything that tends to undo a firewall: `ufw
//! reload`, a dockerd restart, a container coming back with a new IP, a network created later,
//! and `state: absent`.
//!
//! Each lab pins its iptables backend in its Docker host's own /etc (see tests/lab/mod.rs), never
//! in the machine's alternatives, so cases of both backends run at once; every case checks that
//! the machine's alternatives are the same while its lab runs and after it is gone, and that
//! nothing of its lab is left.

#[path = "lab/mod.rs"]
mod lab;
/// Commands, root, the iptables backend and the /etc that pins it: shared with the namespace
/// suites (tests/tests.rs).
mod support;
/// Swarm's routing mesh on a Docker 28 host, its host-side rules replayed (issue 14).
#[path = "bed/swarm.rs"]
mod swarm;
/// The command line's verbs on a Docker 28 host (issue 12).
#[path = "bed/verbs.rs"]
mod verbs;

use std::path::Path;
use std::sync::OnceLock;

use serde_json::json;

use lab::{Case, Docker, From, Lab, Reach};
use support::{require_root, with, Backend};

fn testsrv() -> &'static Path {
    static BUILT: OnceLock<std::path::PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        lab::install_deps();
        lab::build_testsrv()
    })
}

/// This machine's own iptables alternatives (what `update-alternatives --query` says, mode
/// included, and where the links point), which a bed run must leave as they are, not only
/// put back at the end.
struct MachineAlternatives(String);

impl MachineAlternatives {
    fn now() -> MachineAlternatives {
        MachineAlternatives(support::sh(
            "for t in iptables ip6tables; do update-alternatives --query $t; done; \
             for l in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do \
             echo \"$l -> $(readlink /etc/alternatives/$l)\"; done",
        ))
    }

    fn assert_unchanged(&self, tag: &str, when: &str) {
        assert_eq!(
            MachineAlternatives::now().0,
            self.0,
            "{tag}: {when}, this machine's iptables alternatives are not what they were before \
             the lab started"
        );
    }
}

/// The end of every case: the lab still on its own backend, the machine's alternatives as they
/// were, then the teardown, after which nothing of the lab is left (its namespaces, /etc/netns
/// copy, mounts, daemons, containers, test servers and cgroups) and the machine's alternatives
/// are still as they were.
fn tear_down(lab: Lab, tag: &str, machine: &MachineAlternatives) {
    machine.assert_unchanged(tag, "at the end of the run");
    lab.tear_down_checked(tag);
    machine.assert_unchanged(tag, "after the lab was torn down");
}

/// Probes every case and fails with the whole table if any packet did the wrong thing.
///
/// Every probe is a new connection: the host's conntrack table is emptied first. A UDP probe
/// whose random source port happens to equal one of the previous phase's (still tracked as
/// ESTABLISHED for up to two minutes) would otherwise pass DOCKER-USER as a reply would, which
/// is the firewall working as it should, not what the row asks. `conntrack -F` exits 0 on an
/// empty table too; any other exit (127: conntrack is not installed) fails the test.
fn expect(lab: &Lab, title: &str, cases: &[Case], protected: bool) {
    lab.host_sh("conntrack -F");
    let cases = lab.adjusted(cases);
    let outcomes = lab.probe_all(&cases);
    let table = lab::table(title, &outcomes, protected);
    println!("{table}");
    let failures = lab::failures(&outcomes, protected);
    assert!(
        failures.is_empty(),
        "{title}: {} rows wrong:\n{}\n{table}",
        failures.len(),
        failures.join("\n")
    );
}

fn case(
    name: &str,
    from: From,
    proto: &'static str,
    addr: &str,
    port: u16,
    protected: Reach,
) -> Case {
    Case {
        name: name.to_string(),
        from,
        proto,
        addr: addr.to_string(),
        port,
        protected,
        unprotected: Reach::Open,
    }
}

/// Docker 20.10 never hooks DOCKER-USER for IPv6, and when it (re)creates a network's
/// ip6tables rules it inserts them ahead of the jump the module made. The guard (the security
/// table, after filter, which Docker never touches) holds the policy for what Docker's rules
/// let in ahead of DOCKER-USER, so the probes before this rerun already find every blocked
/// port closed (`matrix`); the rerun must see the moved jump (changed) and put it first again,
/// which gives the `ufw route` rules their say back.
fn rehook_on_docker20(lab: &Lab, docker: Docker, tag: &str, after: &str) {
    let forward = lab.host_sh("ip6tables -S FORWARD");
    let first = forward.lines().nth(1).unwrap_or_default().to_string();
    let rerun = lab.module(lab::policy());
    if docker == Docker::V20 {
        assert_eq!(
            first == "-A FORWARD -j DOCKER-USER",
            rerun["changed"] == false,
            "{tag}: after {after}, FORWARD starts with {first:?}; rerun: {rerun}"
        );
    } else {
        assert_eq!(
            first, "-A FORWARD -j DOCKER-USER",
            "{tag}: Docker 28 keeps DOCKER-USER first"
        );
        assert_eq!(
            rerun["changed"], false,
            "{tag}: nothing to redo after {after}: {rerun}"
        );
    }
}

/// On Docker 20.10, whether Docker's own ip6tables rules now come before the jump to
/// DOCKER-USER in FORWARD: they must, after a daemon start and after a network is created, for
/// the rows probed "before any rerun" to test the guard (without it, those IPv6 rows would be
/// open). Returns FORWARD's first rule.
fn docker_put_itself_first(lab: &Lab, docker: Docker, tag: &str, after: &str) -> String {
    let forward = lab.host_sh("ip6tables -S FORWARD");
    let first = forward.lines().nth(1).unwrap_or_default().to_string();
    if docker == Docker::V20 {
        assert_ne!(
            first, "-A FORWARD -j DOCKER-USER",
            "{tag}: after {after}, Docker 20.10 was expected to put its rules first"
        );
    }
    first
}

/// The ports the lab's containers publish (`Lab::workloads`): protocol, host port, container,
/// container port.
const PUBLISHED: [(&str, u16, &str, &str); 8] = [
    ("tcp", 8080, "web", "80"),
    ("udp", 8081, "web", "81"),
    ("tcp", 8082, "pub", "80"),
    ("udp", 8084, "pub", "81"),
    ("tcp", 8083, "admin", "80"),
    ("tcp", 9180, "far", "80"),
    ("udp", 9181, "far", "81"),
    ("tcp", 9280, "routed", "80"),
];

/// The report lists exactly the ports Docker publishes, per family: all of `PUBLISHED` over
/// IPv4, and over IPv6 all but those Docker published without an IPv6 DNAT rule (the
/// iptables-legacy quirk of `Lab::without_v6_dnat`; none on nft).
fn assert_report_rows(lab: &Lab, tag: &str, published: &[serde_json::Value]) {
    let v6_probes: Vec<Case> = PUBLISHED
        .iter()
        .map(|&(proto, port, name, _)| {
            let a = From::Ns(lab.inet_a());
            case(name, a, proto, lab::INET_A.2, port, Reach::Closed)
        })
        .collect();
    let no_v6_dnat = lab.without_v6_dnat(&v6_probes);
    if lab.backend == Backend::Nft {
        assert_eq!(
            no_v6_dnat,
            Vec::<u16>::new(),
            "{tag}: Docker publishes every port over IPv6 with DNAT on nft"
        );
    }
    for (family, v6) in [("ipv4", false), ("ipv6", true)] {
        let mut want: Vec<String> = PUBLISHED
            .iter()
            .filter(|(_, port, _, _)| !(v6 && no_v6_dnat.contains(port)))
            .map(|(proto, port, name, container_port)| {
                let ip = lab
                    .container_ips(name)
                    .into_iter()
                    .find(|ip| ip.contains(':') == v6)
                    .unwrap_or_else(|| panic!("{tag}: {name} has no {family} address"));
                format!("{proto} {port} -> {ip} port {container_port} by {name}")
            })
            .collect();
        let mut got: Vec<String> = published
            .iter()
            .filter(|p| p["family"] == family)
            .map(|p| {
                let s = |k: &str| p[k].as_str().unwrap_or("?").to_string();
                format!(
                    "{} {} -> {} port {} by {}",
                    s("proto"),
                    s("host_port"),
                    s("container_address"),
                    s("container_port"),
                    s("container")
                )
            })
            .collect();
        want.sort();
        got.sort();
        assert_eq!(
            got, want,
            "{tag}: the report lists exactly Docker's {family} ports, each by its container"
        );
    }
    assert_names(lab, tag, published);
}

/// Each entry's other names: the id and image of its container, Compose's project and service
/// for `pub` (labelled as Compose labels), none for the others, no Swarm service.
fn assert_names(lab: &Lab, tag: &str, published: &[serde_json::Value]) {
    for p in published {
        let name = p["container"]
            .as_str()
            .unwrap_or_else(|| panic!("{tag}: no name: {p}"));
        if p.get("swarm_service").is_some() {
            continue;
        }
        let id = lab.docker(&format!("inspect -f '{{{{.Id}}}}' {name}"));
        assert_eq!(p["container_id"], id.trim(), "{tag}: {p}");
        assert_eq!(p["image"], "ufwd-test", "{tag}: {p}");
        let compose = (name == "pub").then(|| (json!("shop"), json!("web")));
        assert_eq!(
            compose,
            p.get("compose_project")
                .map(|project| (project.clone(), p["compose_service"].clone())),
            "{tag}: {p}"
        );
    }
}

/// The exposure report against real packets: every port it calls open answers the internet,
/// every port it calls blocked does not, a restricted one answers only its sources.
fn verify_report(lab: &Lab, tag: &str, args: serde_json::Value) {
    let report = lab.module(with(args, json!({"_ansible_check_mode": true})));
    let published = report["published"].as_array().expect("published is a list");
    assert_report_rows(lab, tag, published);
    let mut cases = Vec::new();
    for p in published {
        let v6 = p["family"] == "ipv6";
        let (addr_a, addr_b) = if v6 {
            (lab::INET_A.2, lab::INET_B.2)
        } else {
            (lab::INET_A.0, lab::INET_B.0)
        };
        let port: u16 = p["host_port"].as_str().unwrap().parse().unwrap();
        let proto = if p["proto"] == "udp" { "udp" } else { "tcp" };
        assert_eq!(p["now"], p["after"], "{tag}: applied, so now is after: {p}");
        let (from_a, from_b) = match p["after"].as_str().unwrap() {
            "open" => (Reach::Open, Reach::Open),
            "blocked" => (Reach::Closed, Reach::Closed),
            "restricted" => {
                assert_eq!(
                    p["sources"],
                    json!([if v6 {
                        "2001:db8:2::/64"
                    } else {
                        "198.51.100.0/24"
                    }])
                );
                (Reach::Closed, Reach::Open)
            }
            other => panic!("{tag}: unexpected verdict {other}: {p}"),
        };
        let label = format!(
            "report: {} {}:{port}/{proto} is {}",
            p["family"], p["container_address"], p["after"]
        );
        cases.push(case(
            &format!("{label}, from A"),
            From::Ns(lab.inet_a()),
            proto,
            addr_a,
            port,
            from_a,
        ));
        cases.push(case(
            &format!("{label}, from B"),
            From::Ns(lab.inet_b()),
            proto,
            addr_b,
            port,
            from_b,
        ));
    }
    expect(
        lab,
        &format!("{tag}: the exposure report against packets"),
        &cases,
        true,
    );
}

fn matrix(docker: Docker, backend: Backend) {
    require_root("the test bed");
    let module = Path::new(env!("CARGO_BIN_EXE_ufw_docker"));
    let tag = format!("{docker:?}/{backend:?}");
    let machine = MachineAlternatives::now();
    let lab = Lab::start(docker, backend, testsrv(), module);
    machine.assert_unchanged(&tag, "with the lab up");
    let mut cases = lab.cases();

    // The problem: UFW denies incoming, yet every published port is open, v4 and v6.
    expect(&lab, &format!("{tag}: before the module"), &cases, false);
    let pristine = lab.snapshot();
    let pristine_files: Vec<Vec<u8>> = ["after.rules", "after6.rules"]
        .iter()
        .map(|f| std::fs::read(lab.ufw_dir().join(f)).unwrap())
        .collect();

    // Check mode: a change is reported, not one byte of firewall or file changes.
    let check = lab.module(with(
        lab::policy(),
        json!({"_ansible_check_mode": true, "_ansible_diff": true}),
    ));
    assert_eq!(check["changed"], true, "{check}");
    assert_eq!(
        lab.snapshot(),
        pristine,
        "{tag}: check mode changed the host"
    );

    let applied = lab.module(lab::policy());
    assert_eq!(applied["changed"], true, "{applied}");
    expect(&lab, &format!("{tag}: after the module"), &cases, true);
    let rerun = lab.module(lab::policy());
    assert_eq!(
        rerun["changed"], false,
        "{tag}: rerun must be a no-op: {rerun}"
    );
    verify_report(&lab, &tag, lab::policy());

    lab.host_sh("ufw reload >/dev/null");
    expect(&lab, &format!("{tag}: after ufw reload"), &cases, true);

    lab.restart_dockerd();
    lab.route_rule();
    // No rerun yet: the guard holds the policy wherever Docker put its rules first.
    docker_put_itself_first(&lab, docker, &tag, "a dockerd restart");
    expect(
        &lab,
        &format!("{tag}: after a dockerd restart, before any rerun"),
        &cases,
        true,
    );
    rehook_on_docker20(&lab, docker, &tag, "a dockerd restart");
    expect(
        &lab,
        &format!("{tag}: after a dockerd restart and a rerun"),
        &cases,
        true,
    );

    // `web` comes back with a new address; `filler` takes the old one and publishes the same
    // container port on a port that is not allowed.
    lab.docker("rm -f web >/dev/null");
    lab.run_container(
        "filler",
        "--network n10 --ip 10.10.0.10 -p 8090:80 -p 8091:81/udp",
        "--tcp 80 --udp 81",
    );
    lab.run_container(
        "web",
        "--network n10 --ip 10.10.0.11 -p 8080:80 -p 8081:81/udp",
        "--tcp 80 --udp 81",
    );
    let a = From::Ns(lab.inet_a());
    for (fam, addr) in [("v4", lab::INET_A.0), ("v6", lab::INET_A.2)] {
        cases.push(case(
            &format!("internet -> 8090 (new container on web's old IP) [{fam}]"),
            a.clone(),
            "tcp",
            addr,
            8090,
            Reach::Closed,
        ));
        cases.push(case(
            &format!("internet -> udp 8091 (new container on web's old IP) [{fam}]"),
            a.clone(),
            "udp",
            addr,
            8091,
            Reach::Closed,
        ));
    }
    expect(
        &lab,
        &format!("{tag}: after web restarted on a new IP"),
        &cases,
        true,
    );

    // A network created after the module ran, in a range nothing names.
    lab.docker(
        "network create --subnet 100.91.0.0/24 --ipv6 --subnet fd00:91::/64 late >/dev/null",
    );
    lab.run_container(
        "late",
        "--network late -p 9380:80 -p 9381:81/udp",
        "--tcp 80 --udp 81",
    );
    let lan = From::Ns(lab.lan());
    for (fam, addr, lan_addr) in [
        ("v4", lab::INET_A.0, lab::LAN.0),
        ("v6", lab::INET_A.2, lab::LAN.2),
    ] {
        cases.push(case(
            &format!("internet -> tcp 9380 (network created later) [{fam}]"),
            a.clone(),
            "tcp",
            addr,
            9380,
            Reach::Closed,
        ));
        cases.push(case(
            &format!("internet -> udp 9381 (network created later) [{fam}]"),
            a.clone(),
            "udp",
            addr,
            9381,
            Reach::Closed,
        ));
        cases.push(case(
            &format!("trusted LAN -> tcp 9380 (network created later) [{fam}]"),
            lan.clone(),
            "tcp",
            lan_addr,
            9380,
            Reach::Open,
        ));
    }
    docker_put_itself_first(&lab, docker, &tag, "a network was created");
    expect(
        &lab,
        &format!("{tag}: after a network was created, before any rerun"),
        &cases,
        true,
    );
    rehook_on_docker20(&lab, docker, &tag, "a network was created");
    expect(
        &lab,
        &format!("{tag}: after a network was created and a rerun"),
        &cases,
        true,
    );

    // Absent: back to the original exposure, files byte for byte as they were.
    let absent = lab.module(json!({"state": "absent"}));
    assert_eq!(absent["changed"], true, "{absent}");
    expect(&lab, &format!("{tag}: after state: absent"), &cases, false);
    for (f, before) in ["after.rules", "after6.rules"].iter().zip(&pristine_files) {
        assert_eq!(
            &std::fs::read(lab.ufw_dir().join(f)).unwrap(),
            before,
            "{tag}: {f} not restored"
        );
    }
    tear_down(lab, &tag, &machine);
}

#[test]
fn docker20_nft() {
    matrix(Docker::V20, Backend::Nft);
}

#[test]
fn docker20_legacy() {
    matrix(Docker::V20, Backend::Legacy);
}

#[test]
fn docker28_nft() {
    matrix(Docker::V28, Backend::Nft);
}

#[test]
fn docker28_legacy() {
    matrix(Docker::V28, Backend::Legacy);
}

/// Boot order: the module's rules must protect from the first packet after a reboot, without
/// the module running again, whether UFW starts before Docker or after it.
fn boot_orders(docker: Docker, backend: Backend) {
    require_root("the test bed");
    let module = Path::new(env!("CARGO_BIN_EXE_ufw_docker"));
    let tag = format!("{docker:?}/{backend:?}");
    let machine = MachineAlternatives::now();
    let lab = Lab::start(docker, backend, testsrv(), module);
    machine.assert_unchanged(&tag, "with the lab up");
    let cases = lab.cases();
    assert_eq!(lab.module(lab::policy())["changed"], true);
    for (ufw_first, order) in [(true, "UFW, then Docker"), (false, "Docker, then UFW")] {
        lab.reboot(ufw_first);
        for c in ["web", "peer", "pub", "admin", "far", "routed"] {
            lab.wait_ready(c);
        }
        lab.route_rule();
        if docker == Docker::V20 {
            // Docker 20.10 starts without any ip6tables hook for DOCKER-USER: the IPv4 rows
            // hold from the first packet, IPv6 needs the module's rerun (documented).
            let v4: Vec<Case> = cases
                .iter()
                .filter(|c| !c.addr.contains(':'))
                .cloned()
                .collect();
            expect(
                &lab,
                &format!("{tag}: IPv4 after a reboot, {order}, before any rerun"),
                &v4,
                true,
            );
            rehook_on_docker20(&lab, docker, &tag, "a reboot");
        } else {
            let rerun_free = lab.host_sh("ip6tables -S FORWARD | sed -n 2p");
            assert_eq!(
                rerun_free.trim(),
                "-A FORWARD -j DOCKER-USER",
                "{tag}: {order}"
            );
        }
        expect(
            &lab,
            &format!("{tag}: after a reboot, {order}"),
            &cases,
            true,
        );
        assert_eq!(
            lab.module(lab::policy())["changed"],
            false,
            "{tag}: {order}: nothing to redo"
        );
    }
    tear_down(lab, &tag, &machine);
}

#[test]
fn boot_order_docker28_nft() {
    boot_orders(Docker::V28, Backend::Nft);
}

#[test]
fn boot_order_docker20_legacy() {
    boot_orders(Docker::V20, Backend::Legacy);
}

/// A host without UFW (`backend: iptables`): the same matrix after the module runs, after a
/// dockerd restart and after a simulated reboot, each followed by what the role's systemd unit
/// (`PartOf=docker.service`) does when Docker starts: the module with the saved arguments.
fn without_ufw(docker: Docker, backend: Backend) {
    require_root("the test bed");
    let module = Path::new(env!("CARGO_BIN_EXE_ufw_docker"));
    let tag = format!("{docker:?}/{backend:?} without UFW");
    let machine = MachineAlternatives::now();
    let lab = Lab::start_with(docker, backend, false, testsrv(), module);
    machine.assert_unchanged(&tag, "with the lab up");
    let cases = lab.cases();
    let args = with(lab::policy(), json!({"backend": "iptables"}));
    let files: Vec<Vec<u8>> = ["after.rules", "after6.rules"]
        .iter()
        .map(|f| std::fs::read(lab.ufw_dir().join(f)).unwrap())
        .collect();
    expect(&lab, &format!("{tag}: before the module"), &cases, false);
    assert_eq!(lab.module(args.clone())["changed"], true);
    expect(&lab, &format!("{tag}: after the module"), &cases, true);
    assert_eq!(lab.module(args.clone())["changed"], false);
    verify_report(&lab, &tag, args.clone());

    lab.restart_dockerd();
    let unit = lab.module(args.clone());
    if docker == Docker::V28 {
        assert_eq!(
            unit["changed"], false,
            "{tag}: Docker 28 keeps DOCKER-USER across restarts"
        );
    }
    expect(
        &lab,
        &format!("{tag}: after a dockerd restart and the unit"),
        &cases,
        true,
    );

    lab.reboot(false);
    for c in ["web", "peer", "pub", "admin", "far", "routed"] {
        lab.wait_ready(c);
    }
    assert_eq!(
        lab.module(args.clone())["changed"],
        true,
        "{tag}: the unit reapplies after a reboot"
    );
    expect(
        &lab,
        &format!("{tag}: after a reboot and the unit"),
        &cases,
        true,
    );

    assert_eq!(
        lab.module(with(args, json!({"state": "absent"})))["changed"],
        true
    );
    expect(&lab, &format!("{tag}: after state: absent"), &cases, false);
    for (f, before) in ["after.rules", "after6.rules"].iter().zip(&files) {
        assert_eq!(
            &std::fs::read(lab.ufw_dir().join(f)).unwrap(),
            before,
            "{tag}: {f} is not the module's with backend: iptables"
        );
    }
    tear_down(lab, &tag, &machine);
}

#[test]
fn without_ufw_docker28_nft() {
    without_ufw(Docker::V28, Backend::Nft);
}

#[test]
fn without_ufw_docker20_legacy() {
    without_ufw(Docker::V20, Backend::Legacy);
}

/// The entries without the names the API gives, for "the same report otherwise".
fn unnamed(published: &serde_json::Value) -> serde_json::Value {
    let mut ports = published.clone();
    for p in ports.as_array_mut().expect("published is a list") {
        let p = p.as_object_mut().unwrap();
        for key in ufw_docker::docker_api::NAME_FIELDS {
            p.remove(*key);
        }
    }
    ports
}

/// A Swarm service in host mode, the same on Docker 20.10 and 28: `swarm init` on the host's
/// LAN address, a swarm-scoped bridge network `apinet` (v4 and v6), then the service `api` on
/// it publishing tcp 8097 -> 80 in host mode. Waits until its one task runs and answers, checks
/// that it answers `api` from internet A over IPv4 and IPv6 before the module (UFW does not
/// guard Docker's ports yet), and returns the task's container name and the families Docker
/// wrote a DNAT rule for 8097 in: both. (On the default bridge, iptables-legacy's quirk of
/// `Lab::without_v6_dnat` makes Docker 20.10 skip the IPv6 one: `pub` and `routed` publish TCP
/// there already; the task was then reached over IPv6 only through docker-proxy, which UFW
/// closes, and the report had an IPv4 entry alone.)
fn swarm_service(lab: &Lab, tag: &str) -> (String, Vec<&'static str>) {
    lab.docker(&format!(
        "swarm init --advertise-addr {} >/dev/null",
        lab::LAN.0
    ));
    // The addresses come from a config-only network: given to a swarm-scoped network
    // directly, the IPv6 subnet never reaches the node's bridge driver, and every task is
    // rejected ("could not find an available, non-overlapping IPv6 address pool among the
    // defaults to assign to the network", 20.10).
    lab.docker(
        "network create --config-only --subnet 10.97.0.0/24 --ipv6 --subnet fd00:97::/64 \
         apinet-config >/dev/null",
    );
    lab.docker(
        "network create --scope swarm --driver bridge --config-from apinet-config apinet \
         >/dev/null",
    );
    // `2>&1`: both versions warn that the local image's digest could not be recorded.
    lab.docker(
        "service create --detach --name api --network apinet \
         --publish mode=host,target=80,published=8097 \
         ufwd-test /bin/testsrv serve --tcp 80 --name api >/dev/null 2>&1",
    );
    let task = (0..60).find_map(|_| {
        let names = lab.docker(
            "ps --filter label=com.docker.swarm.service.name=api --filter status=running \
             --format '{{.Names}}'",
        );
        let nat = lab.host_sh("iptables-save -t nat");
        match names.trim() {
            name if !name.is_empty() && nat.contains("--dport 8097 -j DNAT") => {
                Some(name.to_string())
            }
            _ => {
                std::thread::sleep(std::time::Duration::from_secs(1));
                None
            }
        }
    });
    let task = task.unwrap_or_else(|| {
        panic!(
            "{tag}: the Swarm service never published 8097: {}",
            lab.docker("service ps --no-trunc api")
        )
    });
    // The task's ports are mapped before it starts; once it answers, both families' rules
    // are what they will stay.
    lab.wait_ready(&task);
    let mut families = vec!["ipv4"];
    if lab
        .host_sh("ip6tables-save -t nat")
        .contains("--dport 8097 -j DNAT")
    {
        families.push("ipv6");
    }
    for (addr, family) in [(lab::INET_A.0, "ipv4"), (lab::INET_A.2, "ipv6")] {
        let got = support::try_sh(&format!(
            "ip netns exec {} {} probe tcp {addr} 8097 --timeout-ms 1200 --expect api",
            lab.inet_a(),
            lab.testsrv.display()
        ));
        println!("{tag}: Swarm task {task}: {family} 8097 from internet A: {got:?}");
        assert!(got.is_ok(), "{tag}: {task} does not answer on {addr} 8097");
    }
    println!("{tag}: Swarm task {task}: DNAT for 8097 in {families:?}");
    assert_eq!(families, ["ipv4", "ipv6"], "{tag}: Docker's DNAT for 8097");
    (task, families)
}

/// Issue 17: the report names every container (a Compose-labelled one among them, and a Swarm
/// service published in host mode); without Docker's API (a `docker_host` where nothing
/// listens, the real socket moved away) the same runs succeed with one warning and no names,
/// and every verdict and rule is the same.
fn names(docker: Docker, backend: Backend) {
    require_root("the test bed");
    let module = Path::new(env!("CARGO_BIN_EXE_ufw_docker"));
    let tag = format!("names {docker:?}/{backend:?}");
    let machine = MachineAlternatives::now();
    let lab = Lab::start(docker, backend, testsrv(), module);
    let (task, api_families) = swarm_service(&lab, &tag);
    let check = json!({"_ansible_check_mode": true});
    let named = lab.module(with(lab::policy(), check.clone()));
    let published = named["published"].as_array().unwrap();
    println!("{tag}: the report with names:");
    for p in published {
        println!(
            "  {} {} {} -> {}:{} {} (compose {}/{}, swarm {}) {} -> {}",
            p["family"],
            p["proto"],
            p["host_port"],
            p["container_address"],
            p["container_port"],
            p["container"],
            p["compose_project"],
            p["compose_service"],
            p["swarm_service"],
            p["now"],
            p["after"]
        );
    }
    let about_names = |out: &serde_json::Value| -> Vec<String> {
        out["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|w| w.as_str())
            .filter(|w| w.contains("no container names"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(about_names(&named), Vec::<String>::new(), "{tag}: {named}");
    let mut want: Vec<&str> = PUBLISHED.iter().map(|p| p.2).collect();
    // The Swarm task: one entry per family Docker wrote its DNAT rule in, each named by the
    // task's container (its name, id and image) and the service.
    let api: Vec<_> = published
        .iter()
        .filter(|p| p["host_port"] == "8097")
        .collect();
    let mut families: Vec<&str> = api.iter().filter_map(|p| p["family"].as_str()).collect();
    families.sort_unstable();
    assert_eq!(families, api_families, "{tag}: 8097 in the report: {api:?}");
    let task_id = lab.docker(&format!("inspect -f '{{{{.Id}}}}' {task}"));
    for p in api {
        assert_eq!(p["swarm_service"], "api", "{tag}: {p}");
        assert_eq!(p["container"], task.as_str(), "{tag}: {p}");
        assert!(task.starts_with("api.1."), "{tag}: {p}");
        assert_eq!(p["container_id"], task_id.trim(), "{tag}: {p}");
        assert_eq!(p["image"], "ufwd-test:latest", "{tag}: {p}");
        assert_eq!(p["container_port"], "80", "{tag}: {p}");
        assert!(p.get("compose_project").is_none(), "{tag}: {p}");
    }
    want.push("api");
    for p in published {
        let name = p["container"]
            .as_str()
            .unwrap_or_else(|| panic!("{tag}: no name: {p}"));
        let base = name.split('.').next().unwrap();
        assert!(want.contains(&base), "{tag}: {name} publishes nothing: {p}");
        // The container the name names has the entry's address (the Swarm task too: its
        // network, a local bridge, is in the list).
        let ips = lab.container_ips(name);
        assert!(
            ips.iter()
                .any(|ip| Some(ip.as_str()) == p["container_address"].as_str()),
            "{tag}: {name} has {ips:?}, not the entry's address: {p}"
        );
    }
    assert_names(&lab, &tag, published);

    // Nothing listens there: the same report without names, one warning, the same rules.
    let nowhere = lab.module(with(
        lab::policy(),
        json!({"_ansible_check_mode": true, "docker_host": "unix:///nonexistent.sock"}),
    ));
    // The real socket moved away, DOCKER_HOST still naming it; then the real runs.
    let socket = lab.dir.join("docker.sock");
    let aside = lab.dir.join("docker.sock.aside");
    std::fs::rename(&socket, &aside).unwrap();
    let moved = lab.module(with(lab::policy(), check));
    let applied = lab.module(lab::policy());
    let rerun = lab.module(lab::policy());
    std::fs::rename(&aside, &socket).unwrap();
    for (what, out, at) in [
        (
            "docker_host: nonexistent",
            &nowhere,
            "unix:///nonexistent.sock".to_string(),
        ),
        ("socket moved (check)", &moved, lab.docker_host()),
        ("socket moved (apply)", &applied, lab.docker_host()),
    ] {
        let warnings = about_names(out);
        assert_eq!(warnings.len(), 1, "{tag}: {what}: {out}");
        let w = &warnings[0];
        assert!(
            w.contains("no container names") && w.contains(&at),
            "{tag}: {what}: {w}"
        );
        assert!(
            w.contains("No such file or directory"),
            "{tag}: {what}: {w}"
        );
        println!("{tag}: {what}: {w}");
        assert_eq!(
            out["published"],
            unnamed(&out["published"]),
            "{tag}: {what}: names"
        );
        assert_eq!(out["rules"], named["rules"], "{tag}: {what}: rules");
    }
    assert_eq!(
        unnamed(&named["published"]),
        nowhere["published"],
        "{tag}: verdicts"
    );
    assert_eq!(nowhere["published"], moved["published"], "{tag}: verdicts");
    assert_eq!(applied["changed"], true, "{tag}: {applied}");
    assert_eq!(rerun["changed"], false, "{tag}: {rerun}");
    // Applied without names, the firewall is what the matrix proves it is.
    expect(
        &lab,
        &format!("{tag}: applied without Docker's API"),
        &lab.cases(),
        true,
    );

    // The report said the Swarm task's 8097 would be blocked; applied, it is, in both families.
    for addr in [lab::INET_A.0, lab::INET_A.2] {
        let got = support::try_sh(&format!(
            "ip netns exec {} {} probe tcp {addr} 8097 --timeout-ms 1200",
            lab.inet_a(),
            lab.testsrv.display()
        ));
        println!("{tag}: Swarm task {task}: {addr} 8097 after the module: {got:?}");
        assert!(got.is_err(), "{tag}: {task} still answers on {addr} 8097");
    }
    lab.docker("service rm api >/dev/null");
    // The task's container goes first, then its network can.
    let gone = (0..30).any(|_| {
        let left = lab.docker("ps -aq --filter label=com.docker.swarm.service.name=api");
        if !left.trim().is_empty() {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        left.trim().is_empty()
    });
    assert!(gone, "{tag}: the Swarm task outlived its service");
    lab.docker("network rm apinet apinet-config >/dev/null");
    lab.docker("swarm leave --force >/dev/null");
    tear_down(lab, &tag, &machine);
}

#[test]
fn names_docker28_nft() {
    names(Docker::V28, Backend::Nft);
}

#[test]
fn names_docker20_legacy() {
    names(Docker::V20, Backend::Legacy);
}

#[test]
fn verbs_docker28_nft() {
    verbs::verbs(Docker::V28, Backend::Nft);
}

#[test]
fn swarm_ingress_docker28_nft() {
    swarm::swarm(Docker::V28, Backend::Nft);
}
