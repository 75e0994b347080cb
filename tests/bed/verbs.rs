//! The command line for one host, on the bed (Docker 28, real packets): the policy is built
//! with `allow` and `trust` alone, and each verb opens or closes what it says; `status` is held
//! to a golden text (volatile parts normalised); `check` exits 0 in sync, 3 after DOCKER-USER
//! is flushed by hand and 0 again after `apply`; `remove` gives after.rules back byte for byte
//! and keeps the policy, which `apply` puts back; `remove --purge` deletes it.
//!
//! Golden files live in tests/data/bed-status/; `UFW_DOCKER_BLESS=1` rewrites them from a run
//! (then read the diff before committing it).

use std::path::Path;

use serde_json::json;

use super::lab::{Case, Docker, From, Lab, Reach};
use super::support::{require_root, Backend};
use super::{expect, tear_down, testsrv, MachineAlternatives};

/// Runs a verb and checks its exit code; returns stdout.
fn verb(lab: &Lab, args: &[&str], code: i32) -> String {
    let (got, stdout, stderr) = lab.cli(args);
    assert_eq!(
        got,
        code,
        "ufw_docker {}: exit {got}, not {code}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        args.join(" ")
    );
    stdout
}

/// The cases, with the rows of `port` from the internet (either source) expected `reach`.
fn with_port(cases: &[Case], port: u16, reach: Reach) -> Vec<Case> {
    cases
        .iter()
        .cloned()
        .map(|mut c| {
            if c.port == port && c.name.starts_with("internet") {
                c.protected = reach;
            }
            c
        })
        .collect()
}

/// The cases, with the trusted LAN's IPv4 rows expected closed (untrusted).
fn lan_v4_untrusted(cases: &[Case], lan: &str) -> Vec<Case> {
    cases
        .iter()
        .cloned()
        .map(|mut c| {
            if c.from == From::Ns(lan.to_string()) && !c.addr.contains(':') {
                c.protected = Reach::Closed;
            }
            c
        })
        .collect()
}

/// `status` with what changes from run to run replaced: the lab's directory, and the
/// user-defined bridges' names (`br-` and twelve hex digits, cut to the column), kept at their
/// length so the table's layout is what the run printed.
fn normalised(text: &str, lab: &Lab) -> String {
    let text = text.replace(&lab.dir.display().to_string(), "LAB");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("br-") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let hex = rest.chars().take_while(|c| c.is_ascii_hexdigit()).count();
        out.push_str(&"x".repeat(hex));
        rest = &rest[hex..];
    }
    out.push_str(rest);
    out
}

fn golden(name: &str, got: &str) {
    let path = super::support::repo()
        .join("tests/data/bed-status")
        .join(name);
    if std::env::var_os("UFW_DOCKER_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UFW_DOCKER_BLESS=1 writes it)", path.display()));
    assert_eq!(
        got,
        want,
        "`ufw_docker status` is not {} (normalised); UFW_DOCKER_BLESS=1 rewrites it",
        path.display()
    );
}

pub fn verbs(docker: Docker, backend: Backend) {
    require_root("the test bed");
    let module = Path::new(env!("CARGO_BIN_EXE_ufw_docker"));
    let tag = format!("{docker:?}/{backend:?} verbs");
    let machine = MachineAlternatives::now();
    let lab = Lab::start(docker, backend, testsrv(), module);
    let cases = lab.cases();
    let policy = lab.dir.join("policy.json");
    let p = policy.to_str().unwrap();
    let files: Vec<Vec<u8>> = ["after.rules", "after6.rules"]
        .iter()
        .map(|f| std::fs::read(lab.ufw_dir().join(f)).unwrap())
        .collect();

    // Nothing installed, no policy yet: every published port is open, and status says so.
    let status = verb(&lab, &["status", "--policy", p], 0);
    golden("not-installed.txt", &normalised(&status, &lab));
    verb(&lab, &["check", "--policy", p], 4);
    expect(&lab, &format!("{tag}: before any verb"), &cases, false);

    // The lab's policy, built with the verbs alone.
    let out = verb(
        &lab,
        &["allow", "8080", "--comment", "web", "--policy", p],
        0,
    );
    assert!(
        out.starts_with(&format!(
            "policy: allowed 8080/tcp from anywhere ({p} saved)\nhost:   changed: "
        )),
        "{out}"
    );
    verb(
        &lab,
        &["allow", "8081/udp", "--comment", "web udp", "--policy", p],
        0,
    );
    verb(
        &lab,
        &[
            "allow",
            "8083",
            "--from",
            "198.51.100.0/24",
            "--from=2001:db8:2::/64",
            "--comment",
            "admin",
            "--policy",
            p,
        ],
        0,
    );
    let out = verb(&lab, &["trust", "192.168.50.0/24", "--policy", p], 0);
    assert!(
        out.contains("192.168.50.0/24 on every published port"),
        "{out}"
    );
    verb(&lab, &["trust", "fd00:50::/64", "--policy", p], 0);
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&policy).unwrap()).unwrap();
    assert_eq!(
        saved,
        json!({
            "allow": [
                {"port": 8080, "proto": "tcp", "comment": "web"},
                {"port": 8081, "proto": "udp", "comment": "web udp"},
                {"port": 8083, "proto": "tcp", "from": ["198.51.100.0/24", "2001:db8:2::/64"],
                 "comment": "admin"},
            ],
            "trusted_networks": ["192.168.50.0/24", "fd00:50::/64"],
        }),
        "{tag}: the policy the verbs saved"
    );
    expect(&lab, &format!("{tag}: after allow and trust"), &cases, true);
    verb(&lab, &["check", "--policy", p], 0);
    let status = verb(&lab, &["status", "--policy", p], 0);
    golden("in-sync.txt", &normalised(&status, &lab));

    // deny closes 8080 to the internet, allow opens it again.
    let out = normalised(&verb(&lab, &["deny", "8080", "--policy", p], 0), &lab);
    assert!(
        out.starts_with(&format!(
            "policy: took 8080/tcp out of the allow list ({} saved)\nhost:   changed: ",
            normalised(p, &lab)
        )) && out.ends_with(
            "\n        tcp 0.0.0.0:8080 web (br-xxxxxxxxxxxx): open -> blocked\n        \
             tcp [::]:8080 web (br-xxxxxxxxxxxx): open -> blocked\n"
        ),
        "{out}"
    );
    let denied = with_port(&cases, 8080, Reach::Closed);
    expect(&lab, &format!("{tag}: after deny 8080"), &denied, true);
    verb(
        &lab,
        &["allow", "8080", "--comment", "web", "--policy", p],
        0,
    );
    expect(
        &lab,
        &format!("{tag}: after allow 8080 again"),
        &cases,
        true,
    );

    // untrust closes the LAN's IPv4 rows; trust opens them again.
    let lan = lab.lan();
    verb(&lab, &["untrust", "192.168.50.0/24", "--policy", p], 0);
    let untrusted = lan_v4_untrusted(&cases, &lan);
    expect(&lab, &format!("{tag}: after untrust"), &untrusted, true);
    verb(&lab, &["trust", "192.168.50.0/24", "--policy", p], 0);
    expect(&lab, &format!("{tag}: after trust again"), &cases, true);

    // Drift by hand, seen by check, repaired by apply.
    verb(&lab, &["check", "--policy", p], 0);
    lab.host_sh("iptables -F DOCKER-USER");
    let out = verb(&lab, &["check", "--policy", p], 3);
    assert!(
        out.starts_with("drifted: a run would change live DOCKER-USER (ipv4)"),
        "{out}"
    );
    let out = verb(&lab, &["apply", "--policy", p], 0);
    assert!(
        out.contains("host:   changed: live DOCKER-USER (ipv4)"),
        "{out}"
    );
    verb(&lab, &["check", "--policy", p], 0);
    expect(
        &lab,
        &format!("{tag}: after the flush and apply"),
        &cases,
        true,
    );

    // remove: after.rules back byte for byte, the policy kept; apply puts it all back.
    let out = verb(&lab, &["remove", "--policy", p], 0);
    assert!(out.starts_with(&format!("policy: {p} kept")), "{out}");
    for (f, before) in ["after.rules", "after6.rules"].iter().zip(&files) {
        assert_eq!(
            &std::fs::read(lab.ufw_dir().join(f)).unwrap(),
            before,
            "{tag}: remove did not give {f} back byte for byte"
        );
    }
    verb(&lab, &["check", "--policy", p], 4);
    expect(&lab, &format!("{tag}: after remove"), &cases, false);
    verb(&lab, &["apply", "--policy", p], 0);
    verb(&lab, &["check", "--policy", p], 0);
    expect(
        &lab,
        &format!("{tag}: after apply of the kept policy"),
        &cases,
        true,
    );
    verb(&lab, &["remove", "--purge", "--policy", p], 0);
    assert!(!policy.exists(), "{tag}: remove --purge kept the policy");
    for (f, before) in ["after.rules", "after6.rules"].iter().zip(&files) {
        assert_eq!(
            &std::fs::read(lab.ufw_dir().join(f)).unwrap(),
            before,
            "{f}"
        );
    }
    tear_down(lab, &tag, &machine);
}
