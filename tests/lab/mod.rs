//! The lab: a Docker host with UFW, "the internet", a LAN and an untrusted private neighbour,
//! all network namespaces, and the matrix of probes that says what each of them can reach.
//!
//! Shared by the end-to-end tests (`tests/bed.rs`) and the demo (`examples/lab.rs`). Every probe
//! is a real packet sent by `testsrv` from a namespace or a container; nothing is mocked. Traffic
//! never leaves the namespaces created here (documentation and private addresses only). `Drop`
//! tears everything down: containers through Docker, then dockerd and its containerd, then the
//! namespaces and the host's /etc/netns copy.
//!
//! The host's iptables backend (nft or legacy) is pinned in the host's own /etc
//! (`support::EtcNetns`: /etc/netns/HOST, whose `alternatives` points `iptables` and
//! `ip6tables` at that backend). Everything on the host sees that /etc: UFW, the module and
//! every `host_sh` through `ip netns exec`, and dockerd (with containerd and whatever they spawn)
//! through tests/bed/dockerd.sh, which starts them with the same bind mounts. The machine's own
//! alternatives are never touched, so labs of both backends can run at once, beside anything
//! else on the machine that uses iptables. Commands, root and the backend are `support.rs`'s,
//! which every crate that includes this module declares as `crate::support`.

#![allow(dead_code)]

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use crate::support::{repo, sh, shell_quote, try_sh, Backend, EtcNetns};

fn bed_script(name: &str) -> PathBuf {
    repo().join("tests/bed").join(name)
}

/// Which Docker the host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Docker {
    /// Debian bookworm's docker.io.
    V20,
    /// Debian forky's docker.io, unpacked by tests/bed/install-deps.sh.
    V28,
}

impl Docker {
    fn arg(self) -> &'static str {
        match self {
            Docker::V20 => "20",
            Docker::V28 => "28",
        }
    }
}

/// Open or closed, as a real packet found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Open,
    Closed,
}

impl fmt::Display for Reach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reach::Open => "open",
            Reach::Closed => "closed",
        })
    }
}

/// Where a probe is sent from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum From {
    /// A namespace: one of the lab's clients, or the Docker host itself.
    Ns(String),
    /// Inside a container, with `docker exec`.
    Container(String),
}

/// One row of the matrix: a probe and what the protected host must answer.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub from: From,
    pub proto: &'static str,
    pub addr: String,
    pub port: u16,
    /// With the module's policy in place.
    pub protected: Reach,
    /// Without it (stock Docker and UFW): the exposure the project exists to fix.
    pub unprotected: Reach,
}

/// A case and what the packet found.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub case: Case,
    pub got: Reach,
}

// The lab's addresses: each client sits on its own link to the host, host side `.1`/`::1`.
pub const INET_A: (&str, &str, &str, &str) = (
    "203.0.113.1",
    "203.0.113.10",
    "2001:db8:1::1",
    "2001:db8:1::10",
);
pub const INET_B: (&str, &str, &str, &str) = (
    "198.51.100.1",
    "198.51.100.10",
    "2001:db8:2::1",
    "2001:db8:2::10",
);
pub const LAN: (&str, &str, &str, &str) =
    ("192.168.50.1", "192.168.50.10", "fd00:50::1", "fd00:50::10");
pub const NEIGHBOUR: (&str, &str, &str, &str) =
    ("10.99.0.1", "10.99.0.10", "fd00:99::1", "fd00:99::10");

/// The policy the lab applies: two public ports, one port for internet B only, a trusted LAN.
pub fn policy() -> serde_json::Value {
    serde_json::json!({
        "allow": [
            {"port": 8080, "comment": "web"},
            {"port": 8081, "proto": "udp", "comment": "web udp"},
            {"port": 8083, "from": ["198.51.100.0/24", "2001:db8:2::/64"], "comment": "admin"},
        ],
        "trusted_networks": ["192.168.50.0/24", "fd00:50::/64"],
    })
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A running lab.
pub struct Lab {
    pub docker: Docker,
    pub backend: Backend,
    /// Short unique id; namespace names derive from it.
    pub id: String,
    /// State directory of dockerd (short: unix socket paths are limited).
    pub dir: PathBuf,
    pub testsrv: PathBuf,
    pub module: PathBuf,
    namespaces: Vec<String>,
    dockerd_started: bool,
    /// The address the `ufw route allow` rule points at.
    route_ip: std::sync::Mutex<Option<String>>,
    /// Whether the host runs UFW.
    pub ufw: bool,
    /// The host's /etc, removed after everything else (`Drop`).
    etc: Option<EtcNetns>,
}

impl Lab {
    pub fn host(&self) -> String {
        format!("{}h", self.id)
    }
    pub fn inet_a(&self) -> String {
        format!("{}a", self.id)
    }
    pub fn inet_b(&self) -> String {
        format!("{}b", self.id)
    }
    pub fn lan(&self) -> String {
        format!("{}l", self.id)
    }
    pub fn neighbour(&self) -> String {
        format!("{}n", self.id)
    }
    /// The host's /etc/ufw, as seen from outside its namespace.
    pub fn ufw_dir(&self) -> PathBuf {
        self.etc.as_ref().expect("the host has its /etc").ufw_dir()
    }

    /// Builds the lab: namespaces and links, UFW enabled on the host, dockerd, the test image,
    /// the containers and the networks.
    pub fn start(docker: Docker, backend: Backend, testsrv: &Path, module: &Path) -> Lab {
        Lab::start_with(docker, backend, true, testsrv, module)
    }

    /// As `start`; `ufw: false` builds a host with no UFW at all (only Docker's rules).
    pub fn start_with(
        docker: Docker,
        backend: Backend,
        ufw: bool,
        testsrv: &Path,
        module: &Path,
    ) -> Lab {
        let id = format!(
            "ufwl{}-{}",
            std::process::id() % 100_000,
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut lab = Lab {
            docker,
            backend,
            dir: PathBuf::from(format!("/run/ufwd-lab/{id}")),
            id,
            testsrv: testsrv.to_path_buf(),
            module: module.to_path_buf(),
            namespaces: Vec::new(),
            dockerd_started: false,
            route_ip: std::sync::Mutex::new(None),
            ufw,
            etc: None,
        };
        lab.network();
        lab.etc();
        lab.ufw();
        lab.dockerd();
        lab.workloads();
        lab.check_backend();
        lab
    }

    fn add_ns(&mut self, name: &str) {
        sh(&format!(
            "ip netns add {name} && ip -n {name} link set lo up"
        ));
        self.namespaces.push(name.to_string());
    }

    /// The host namespace and one client namespace per link; clients route everything via the
    /// host, and nothing routes anywhere else.
    fn network(&mut self) {
        let host = self.host();
        self.add_ns(&host);
        sh(&format!(
            "ip netns exec {host} sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1"
        ));
        let links = [
            (self.inet_a(), INET_A),
            (self.inet_b(), INET_B),
            (self.lan(), LAN),
            (self.neighbour(), NEIGHBOUR),
        ];
        for (i, (client, (h4, c4, h6, c6))) in links.iter().enumerate() {
            self.add_ns(client);
            let hif = format!("eth{i}");
            sh(&format!(
                "ip link add {hif} netns {host} type veth peer name eth0 netns {client} && \
                 ip -n {host} link set {hif} up && ip -n {client} link set eth0 up && \
                 ip -n {host} addr add {h4}/24 dev {hif} && ip -n {client} addr add {c4}/24 dev eth0 && \
                 ip -n {host} addr add {h6}/64 dev {hif} nodad && ip -n {client} addr add {c6}/64 dev eth0 nodad && \
                 ip -n {client} route add default via {h4} && ip -n {client} -6 route add default via {h6}"
            ));
        }
    }

    /// The host's own /etc (/etc/netns/HOST, which `ip netns exec` and dockerd.sh mount over
    /// /etc): a copy of /etc/ufw with the stock after.rules, its own /etc/default (`ufw default
    /// deny incoming` writes /etc/default/ufw), and /etc/alternatives with iptables and
    /// ip6tables pinned to the lab's backend.
    fn etc(&mut self) {
        self.etc = Some(EtcNetns::make(&self.host(), self.backend));
    }

    /// UFW of the host's own, as an operator sets it up: deny incoming, SSH allowed.
    fn ufw(&mut self) {
        if self.ufw {
            self.host_sh("ufw default deny incoming >/dev/null && ufw allow 22/tcp >/dev/null && ufw --force enable >/dev/null");
        }
        // The host's own services: SSH (allowed by UFW) and one UFW denies.
        self.background(&self.host(), "--tcp 22 --tcp 23 --name host");
        // A server on the internet, for container egress.
        self.background(&self.inet_a(), "--tcp 7000 --udp 7001 --name internet");
    }

    /// Starts `testsrv serve ARGS` in namespace `ns`, detached, and waits until each of its TCP
    /// ports answers on the namespace's loopback: a server that failed to start (seen once in
    /// CI: the host's 22 and 23 closed "before the module" on a host without UFW) fails here,
    /// with its log, rather than as wrong rows later.
    fn background(&self, ns: &str, args: &str) {
        let log = self.dir_for_logs().join(format!("testsrv-{ns}.log"));
        sh(&format!(
            "ip netns exec {ns} setsid {} serve {args} >{} 2>&1 < /dev/null &",
            self.testsrv.display(),
            log.display()
        ));
        let words: Vec<&str> = args.split_whitespace().collect();
        for port in words.windows(2).filter(|w| w[0] == "--tcp").map(|w| w[1]) {
            let ok = (0..50).any(|_| {
                let hit = try_sh(&format!(
                    "ip netns exec {ns} {} probe tcp 127.0.0.1 {port} --timeout-ms 300",
                    self.testsrv.display()
                ))
                .is_ok();
                if !hit {
                    thread::sleep(Duration::from_millis(100));
                }
                hit
            });
            assert!(
                ok,
                "testsrv serve {args} in {ns} never answered on 127.0.0.1:{port}; its log:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
    }

    /// A directory for the lab's own logs that exists before dockerd's state directory does.
    fn dir_for_logs(&self) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ufwd-lab-logs-{}", self.id));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn dockerd(&mut self) {
        fs::create_dir_all(&self.dir).unwrap();
        self.dockerd_started = true;
        sh(&format!(
            "{} start {} {} {}",
            bed_script("dockerd.sh").display(),
            self.host(),
            self.dir.display(),
            self.docker.arg()
        ));
        sh(&format!(
            "TESTSRV={} {} {}/docker.sock {}/docker-client",
            self.testsrv.display(),
            bed_script("image.sh").display(),
            self.dir.display(),
            self.dir.display()
        ));
    }

    /// Everything on the host uses the lab's backend, and only it: `iptables` and `ip6tables`
    /// there are that backend, for `ip netns exec` (UFW, the module) and for dockerd; Docker's
    /// chains (and UFW's) are in its tables, and the other backend's tables hold no rule.
    pub fn check_backend(&self) {
        let (want, other) = (self.backend.name(), self.backend.other().name());
        let kernel = match self.backend {
            Backend::Nft => "(nf_tables)",
            Backend::Legacy => "(legacy)",
        };
        let versions = self.host_sh("iptables -V && ip6tables -V");
        assert_eq!(
            versions.matches(kernel).count(),
            2,
            "{}: iptables in the host is not {want}: {versions}",
            self.host()
        );
        let pid = fs::read_to_string(self.dir.join("dockerd.pid")).unwrap();
        for tool in ["iptables", "ip6tables"] {
            let seen = fs::read_link(format!("/proc/{}/root/etc/alternatives/{tool}", pid.trim()))
                .unwrap();
            assert_eq!(
                seen,
                self.backend.tool(tool),
                "{}: dockerd's {tool}",
                self.host()
            );
        }
        for tool in ["iptables", "ip6tables"] {
            let mine = self.host_sh(&format!("{tool}-{want}-save"));
            let mut chains = vec![":DOCKER "];
            // Docker 20.10 has no ip6tables DOCKER-USER chain.
            if tool == "iptables" || self.docker == Docker::V28 {
                chains.push(":DOCKER-USER ");
            }
            if self.ufw {
                chains.push(if tool == "iptables" {
                    ":ufw-before-input "
                } else {
                    ":ufw6-before-input "
                });
            }
            for chain in chains {
                assert!(
                    mine.contains(chain),
                    "{}: {tool}-{want} has no {chain} chain:\n{mine}",
                    self.host()
                );
            }
            let theirs = self.host_sh(&format!("{tool}-{other}-save"));
            let rules: Vec<&str> = theirs.lines().filter(|l| l.starts_with("-A ")).collect();
            assert!(
                rules.is_empty(),
                "{}: {tool}-{other} has rules, the lab's backend is {want}:\n{}",
                self.host(),
                rules.join("\n")
            );
        }
    }

    /// `docker ...` against this lab's daemon.
    pub fn docker(&self, args: &str) -> String {
        sh(&format!("{}/docker {args}", self.dir.display()))
    }

    /// Runs a shell command in the host's namespace (with its /etc/ufw).
    pub fn host_sh(&self, cmd: &str) -> String {
        sh(&format!(
            "ip netns exec {} bash -c '{}'",
            self.host(),
            cmd.replace('\'', r"'\''")
        ))
    }

    /// Starts a container of the test image serving `serve`, and waits until it answers.
    ///
    /// Under load, runc sometimes loses the race with a container's first process and `docker
    /// run` fails with "cannot start a stopped process" (seen once in a CI run, while the lab was
    /// being built); nothing of the firewall is involved. That one error is retried, twice at
    /// most, after removing the half-made container; any other failure fails at once.
    pub fn run_container(&self, name: &str, opts: &str, serve: &str) {
        let run = format!(
            "{}/docker run -d --restart always --name {name} {opts} ufwd-test /bin/testsrv serve {serve} --name {name} >/dev/null",
            self.dir.display()
        );
        for attempt in 1.. {
            match try_sh(&run) {
                Ok(_) => break,
                Err(e) if attempt < 3 && e.contains("cannot start a stopped process") => {
                    eprintln!("lab: docker run {name} failed (attempt {attempt}), retried: {e}");
                    self.docker(&format!("rm -f {name} >/dev/null"));
                }
                Err(e) => panic!("{e}"),
            }
        }
        self.wait_ready(name);
    }

    /// Waits until the container answers on each of its addresses from the host (IPv6
    /// addresses are usable only after duplicate address detection).
    pub fn wait_ready(&self, name: &str) {
        for ip in self.container_ips(name) {
            let ok = (0..60).any(|_| {
                let hit = try_sh(&format!(
                    "ip netns exec {} {} probe tcp {ip} 80 --timeout-ms 300",
                    self.host(),
                    self.testsrv.display()
                ))
                .is_ok();
                if !hit {
                    thread::sleep(Duration::from_millis(200));
                }
                hit
            });
            assert!(ok, "container {name} never answered on {ip}");
        }
    }

    /// The container's IPv4 and IPv6 addresses on all its networks.
    pub fn container_ips(&self, name: &str) -> Vec<String> {
        self.docker(&format!(
            "inspect -f '{{{{range .NetworkSettings.Networks}}}}{{{{.IPAddress}}}} {{{{.GlobalIPv6Address}}}} {{{{end}}}}' {name}"
        ))
        .split_whitespace()
        .map(str::to_string)
        .collect()
    }

    pub fn container_ip4(&self, name: &str) -> String {
        self.container_ips(name)
            .into_iter()
            .find(|ip| ip.contains('.'))
            .expect("container has an IPv4 address")
    }

    /// The workloads: published ports on the default bridge and on user networks in 10.x and
    /// 100.90.0.0/24, a container reached through a `ufw route allow` rule, and a second
    /// container on one network for container-to-container traffic.
    fn workloads(&self) {
        self.docker(
            "network create --subnet 10.10.0.0/24 --ipv6 --subnet fd00:10::/64 n10 >/dev/null",
        );
        self.docker(
            "network create --subnet 100.90.0.0/24 --ipv6 --subnet fd00:90::/64 n100 >/dev/null",
        );
        // On n10 with a fixed address, so a restart can move it and another container can take
        // the old address.
        self.run_container(
            "web",
            "--network n10 --ip 10.10.0.10 -p 8080:80 -p 8081:81/udp",
            "--tcp 80 --udp 81",
        );
        self.run_container("peer", "--network n10 --ip 10.10.0.20", "--tcp 80");
        // One TCP and one UDP port per network where possible: iptables-legacy's `-C` matches
        // ip6tables DNAT rules it should not (see `without_v6_dnat`), and Docker then skips
        // the IPv6 DNAT of a second port on the same bridge.
        self.docker(
            "network create --subnet 10.20.0.0/24 --ipv6 --subnet fd00:20::/64 n20 >/dev/null",
        );
        // Labelled as Compose labels its containers: the report names the project and service.
        self.run_container(
            "pub",
            "--label com.docker.compose.project=shop --label com.docker.compose.service=web \
             -p 8082:80 -p 8084:81/udp",
            "--tcp 80 --udp 81",
        );
        self.run_container("admin", "--network n20 -p 8083:80", "--tcp 80");
        self.run_container(
            "far",
            "--network n100 -p 9180:80 -p 9181:81/udp",
            "--tcp 80 --udp 81",
        );
        self.run_container("routed", "-p 9280:80", "--tcp 80");
        self.route_rule();
    }

    /// `ufw route allow` to the `routed` container's current address (replacing the rule for
    /// an address it had before a restart).
    pub fn route_rule(&self) {
        if !self.ufw {
            return;
        }
        let ip = self.container_ip4("routed");
        let mut current = self.route_ip.lock().unwrap();
        if current.as_deref() == Some(ip.as_str()) {
            return;
        }
        if let Some(old) = current.take() {
            self.host_sh(&format!(
                "ufw route delete allow proto tcp from any to {old} port 80 >/dev/null"
            ));
        }
        self.host_sh(&format!(
            "ufw route allow proto tcp from any to {ip} port 80 >/dev/null"
        ));
        *current = Some(ip);
    }

    /// Deletes the `ufw route allow` rule to `routed`, for a run whose probes must not depend on
    /// it: the rule names an address, and after a dockerd restart another container may have
    /// that address (until `route_rule` moves the rule), and with it the rule's ACCEPT.
    pub fn delete_route_rule(&self) {
        if let Some(old) = self.route_ip.lock().unwrap().take() {
            self.host_sh(&format!(
                "ufw route delete allow proto tcp from any to {old} port 80 >/dev/null"
            ));
        }
    }

    /// The lab's Docker API, as `DOCKER_HOST` names it.
    pub fn docker_host(&self) -> String {
        format!("unix://{}/docker.sock", self.dir.display())
    }

    /// Runs the module on the host as Ansible would, with `args` plus the lab's policy, and
    /// `DOCKER_HOST` set to the lab's daemon (as a task's `environment` sets it).
    pub fn module(&self, args: serde_json::Value) -> serde_json::Value {
        self.try_module(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As `module`, but a run that fails (or prints no JSON) is returned as the error, with its
    /// output, instead of failing the test: for the soak, which counts such runs.
    pub fn try_module(&self, args: serde_json::Value) -> Result<serde_json::Value, String> {
        let file = self.dir.join(format!(
            "args-{}.json",
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        fs::write(&file, serde_json::to_vec(&args).unwrap()).unwrap();
        let out = Command::new("ip")
            .args(["netns", "exec", &self.host()])
            .arg(&self.module)
            .arg(&file)
            .env("DOCKER_HOST", self.docker_host())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let json: serde_json::Value = serde_json::from_str(stdout.trim())
            .map_err(|e| format!("module printed no JSON ({e}): {stdout}"))?;
        if !out.status.success() {
            return Err(format!(
                "module failed: {json}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(json)
    }

    /// Runs the binary's command line on the host (`ufw_docker ARGS...`), with `DOCKER_HOST`
    /// set to the lab's daemon as an operator's shell would have it. Returns the exit code,
    /// stdout and stderr; `NO_COLOR` is unset and stdout is not a terminal, so no colour.
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.host()])
            .arg(&self.module)
            .args(args)
            .env("DOCKER_HOST", self.docker_host())
            .env_remove("NO_COLOR")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The host's whole firewall (every table, both families) and its UFW files, for "nothing
    /// changed" comparisons. Counters and timestamps are left out.
    pub fn snapshot(&self) -> String {
        let tables = self.host_sh("iptables-save; ip6tables-save");
        let tables: String = tables
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                // Chain declarations carry packet counters that moving traffic changes.
                match l.strip_prefix(':') {
                    Some(decl) => format!(":{}\n", decl.split(" [").next().unwrap_or(decl)),
                    None => format!("{l}\n"),
                }
            })
            .collect();
        let files = ["after.rules", "after6.rules"]
            .iter()
            .map(|f| {
                String::from_utf8_lossy(&fs::read(self.ufw_dir().join(f)).unwrap()).into_owned()
            })
            .collect::<Vec<_>>()
            .join("");
        format!("{}{files}", without_pristine_security(&tables))
    }

    /// The standard rows: every published port from every kind of source, both families.
    pub fn cases(&self) -> Vec<Case> {
        use Reach::{Closed, Open};
        let mut cases = Vec::new();
        let mut add = |name: String,
                       from: From,
                       proto: &'static str,
                       addr: &str,
                       port: u16,
                       protected: Reach,
                       unprotected: Reach| {
            cases.push(Case {
                name,
                from,
                proto,
                addr: addr.to_string(),
                port,
                protected,
                unprotected,
            });
        };
        let a = From::Ns(self.inet_a());
        let b = From::Ns(self.inet_b());
        let lan = From::Ns(self.lan());
        let nb = From::Ns(self.neighbour());
        for (fam, host_a, host_b, host_lan, host_nb) in [
            ("v4", INET_A.0, INET_B.0, LAN.0, NEIGHBOUR.0),
            ("v6", INET_A.2, INET_B.2, LAN.2, NEIGHBOUR.2),
        ] {
            let rows: [(&str, &From, &'static str, &str, u16, Reach); 16] = [
                (
                    "internet -> allowed tcp 8080 (n10)",
                    &a,
                    "tcp",
                    host_a,
                    8080,
                    Open,
                ),
                (
                    "internet -> allowed udp 8081 (n10)",
                    &a,
                    "udp",
                    host_a,
                    8081,
                    Open,
                ),
                (
                    "internet -> tcp 8082 (default bridge)",
                    &a,
                    "tcp",
                    host_a,
                    8082,
                    Closed,
                ),
                (
                    "internet -> udp 8084 (default bridge)",
                    &a,
                    "udp",
                    host_a,
                    8084,
                    Closed,
                ),
                (
                    "internet -> tcp 9180 (n100 100.90.0.0/24)",
                    &a,
                    "tcp",
                    host_a,
                    9180,
                    Closed,
                ),
                (
                    "internet -> udp 9181 (n100 100.90.0.0/24)",
                    &a,
                    "udp",
                    host_a,
                    9181,
                    Closed,
                ),
                (
                    "internet A -> 8083 (allowed from B only)",
                    &a,
                    "tcp",
                    host_a,
                    8083,
                    Closed,
                ),
                (
                    "internet B -> 8083 (allowed from B only)",
                    &b,
                    "tcp",
                    host_b,
                    8083,
                    Open,
                ),
                ("internet B -> tcp 8082", &b, "tcp", host_b, 8082, Closed),
                ("trusted LAN -> tcp 8082", &lan, "tcp", host_lan, 8082, Open),
                ("trusted LAN -> udp 9181", &lan, "udp", host_lan, 9181, Open),
                (
                    "untrusted 10.x neighbour -> tcp 8082",
                    &nb,
                    "tcp",
                    host_nb,
                    8082,
                    Closed,
                ),
                (
                    "untrusted 10.x neighbour -> udp 8084",
                    &nb,
                    "udp",
                    host_nb,
                    8084,
                    Closed,
                ),
                (
                    "untrusted 10.x neighbour -> tcp 9180",
                    &nb,
                    "tcp",
                    host_nb,
                    9180,
                    Closed,
                ),
                (
                    "internet -> host SSH (UFW allows 22)",
                    &a,
                    "tcp",
                    host_a,
                    22,
                    Open,
                ),
                (
                    "internet -> host port 23 (UFW denies)",
                    &a,
                    "tcp",
                    host_a,
                    23,
                    Closed,
                ),
            ];
            for (name, from, proto, addr, port, protected) in rows {
                // Without the module every published port is open; host ports follow UFW,
                // which the module never touches: without UFW, the host's port 23 is open too.
                let unprotected = if port == 23 && self.ufw { Closed } else { Open };
                let protected = if port == 23 { unprotected } else { protected };
                let name = if port == 23 && !self.ufw {
                    "internet -> host port 23 (no UFW on this host)"
                } else {
                    name
                };
                add(
                    format!("{name} [{fam}]"),
                    from.clone(),
                    proto,
                    addr,
                    port,
                    protected,
                    unprotected,
                );
            }
        }
        let host = From::Ns(self.host());
        add(
            "host itself -> its published tcp 8082".into(),
            host,
            "tcp",
            INET_A.0,
            8082,
            Open,
            Open,
        );
        let web = From::Container("pub".into());
        add(
            "container egress tcp -> internet".into(),
            web.clone(),
            "tcp",
            INET_A.1,
            7000,
            Open,
            Open,
        );
        add(
            "container egress udp -> internet (reply)".into(),
            web,
            "udp",
            INET_A.1,
            7001,
            Open,
            Open,
        );
        let peer = From::Container("peer".into());
        add(
            "container -> container on n10".into(),
            peer,
            "tcp",
            "10.10.0.10",
            80,
            Open,
            Open,
        );
        if self.ufw {
            add(
                "internet -> 9280 via `ufw route allow`".into(),
                a,
                "tcp",
                INET_A.0,
                9280,
                Open,
                Open,
            );
        }
        cases
    }

    /// Host ports that Docker published over IPv6 without a DNAT rule. With iptables-legacy,
    /// `ip6tables -C` reports a rule with `! -s fe80::/10` as present when another rule of the
    /// same protocol on the same bridge exists (iptables 1.8.9), so Docker skips adding it; that
    /// port is then served by docker-proxy on the host, where UFW's INPUT policy decides, not
    /// by forwarding. Such rows are closed with or without the module where UFW denies
    /// incoming, and open with or without it on a host without UFW.
    pub fn without_v6_dnat(&self, cases: &[Case]) -> Vec<u16> {
        let nat = self.host_sh("ip6tables-save -t nat");
        let mut missing: Vec<u16> = cases
            .iter()
            .filter(|c| c.addr.contains(':') && matches!(c.from, From::Ns(_)) && c.port >= 8000)
            .map(|c| c.port)
            .filter(|p| !nat.contains(&format!("--dport {p} -j DNAT")))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        missing
    }

    /// The cases with the rows of `without_v6_dnat` expected closed, and marked so.
    pub fn adjusted(&self, cases: &[Case]) -> Vec<Case> {
        let missing = self.without_v6_dnat(cases);
        cases
            .iter()
            .cloned()
            .map(|mut c| {
                if c.addr.contains(':')
                    && matches!(c.from, From::Ns(_))
                    && missing.contains(&c.port)
                {
                    // docker-proxy serves it on the host: UFW's INPUT policy decides, or, on
                    // a host without UFW, nothing does. The module never writes INPUT.
                    let (reach, why) = if self.ufw {
                        (Reach::Closed, "docker-proxy, UFW decides")
                    } else {
                        (Reach::Open, "docker-proxy, no UFW")
                    };
                    c.name
                        .push_str(&format!(" (no v6 DNAT from Docker: {why})"));
                    c.protected = reach;
                    c.unprotected = reach;
                }
                c
            })
            .collect()
    }

    /// Sends every probe (in parallel: a dropped probe waits for its timeout) and returns what
    /// each found.
    pub fn probe_all(&self, cases: &[Case]) -> Vec<Outcome> {
        thread::scope(|s| {
            let handles: Vec<_> = cases
                .iter()
                .map(|case| s.spawn(move || self.probe(case)))
                .collect();
            handles
                .into_iter()
                .zip(cases)
                .map(|(h, case)| Outcome {
                    case: case.clone(),
                    got: h.join().unwrap(),
                })
                .collect()
        })
    }

    /// One real packet exchange. UDP gets retries inside testsrv; an open port answers.
    pub fn probe(&self, case: &Case) -> Reach {
        let probe = format!(
            "probe {} {} {} --timeout-ms 1200",
            case.proto, case.addr, case.port
        );
        let cmd = match &case.from {
            From::Ns(ns) => format!("ip netns exec {ns} {} {probe}", self.testsrv.display()),
            From::Container(c) => format!(
                "{}/docker exec {c} /bin/testsrv {probe}",
                self.dir.display()
            ),
        };
        // A second try absorbs a one-off lost packet; "closed" must hold twice.
        for _ in 0..2 {
            if try_sh(&cmd).is_ok() {
                return Reach::Open;
            }
        }
        Reach::Closed
    }

    /// Stops dockerd and starts it again; containers come back (`--restart always`).
    pub fn restart_dockerd(&self) {
        self.restart_dockerd_with("");
    }

    /// A simulated reboot: dockerd goes down, the kernel's firewall and conntrack are emptied,
    /// and then UFW starts through its boot path (`ufw-init start`) before Docker
    /// (`ufw_first`) or after it. The flush's exit status is conntrack's: 0 on an empty table
    /// too, anything else (127: conntrack is not installed) fails the reboot.
    pub fn reboot(&self, ufw_first: bool) {
        let ns = self.host();
        let flush = format!(
            "ip netns exec {ns} bash -c 'for t in iptables ip6tables; do for tb in filter nat mangle raw; do \
             $t -t $tb -F; $t -t $tb -X; done; for c in INPUT FORWARD OUTPUT; do $t -P $c ACCEPT; done; done; \
             conntrack -F'"
        );
        let ufw_start = if self.ufw {
            format!("ip netns exec {ns} /lib/ufw/ufw-init start >/dev/null")
        } else {
            "true".to_string()
        };
        if ufw_first {
            self.restart_dockerd_with(&format!("{flush} && {ufw_start}"));
        } else {
            self.restart_dockerd_with(&flush);
            sh(&ufw_start);
        }
    }

    fn restart_dockerd_with(&self, while_down: &str) {
        sh(&format!(
            "BED_WHILE_DOWN={} {} restart {} {} {}",
            shell_quote(while_down),
            bed_script("dockerd.sh").display(),
            self.host(),
            self.dir.display(),
            self.docker.arg()
        ));
        for c in ["web", "peer", "pub", "admin", "far", "routed"] {
            self.wait_ready(c);
        }
    }
}

/// What a lab could leave behind once it is gone, noted while it runs (`Lab::traces`) and
/// looked for after the drop (`Traces::left`): its namespaces, the host's /etc/netns copy, its
/// state directory, mounts, the daemons, containers and test servers, and the cgroups
/// dockerd.sh puts containers in. Only this lab's: other labs may run meanwhile.
pub struct Traces {
    namespaces: Vec<String>,
    /// The namespaces themselves, held open: a process still in one after `ip netns del` is
    /// found by the namespace's inode, which no new namespace can take while it is held.
    held: Vec<fs::File>,
    inodes: Vec<u64>,
    dir: PathBuf,
    host: String,
}

impl Lab {
    /// Tears the lab down after checking it is still on its own backend, and fails (naming
    /// `tag`) if anything of it is left: namespaces, the /etc/netns copy, mounts, daemons,
    /// containers, test servers, cgroups.
    pub fn tear_down_checked(self, tag: &str) {
        self.check_backend();
        let traces = self.traces();
        drop(self);
        let left = traces.left();
        assert!(
            left.is_empty(),
            "{tag}: the lab's teardown left:\n{}",
            left.join("\n")
        );
    }

    /// This lab's `Traces`, while it runs.
    pub fn traces(&self) -> Traces {
        use std::os::unix::fs::MetadataExt;
        let held: Vec<fs::File> = self
            .namespaces
            .iter()
            .map(|ns| fs::File::open(format!("/run/netns/{ns}")).unwrap())
            .collect();
        Traces {
            inodes: held.iter().map(|f| f.metadata().unwrap().ino()).collect(),
            held,
            namespaces: self.namespaces.clone(),
            dir: self.dir.clone(),
            host: self.host(),
        }
    }
}

impl Traces {
    /// What is still there, one line each; empty once the lab is gone. Killed processes get
    /// five seconds to go.
    pub fn left(&self) -> Vec<String> {
        let mut left = self.look();
        for _ in 0..50 {
            if left.is_empty() {
                break;
            }
            thread::sleep(Duration::from_millis(100));
            left = self.look();
        }
        left
    }

    fn look(&self) -> Vec<String> {
        use std::os::unix::fs::MetadataExt;
        let mut left = Vec::new();
        let listed = sh("ip netns list");
        for ns in &self.namespaces {
            if listed.split_whitespace().any(|n| n == ns) {
                left.push(format!("namespace {ns}"));
            }
        }
        let etc = format!("/etc/netns/{}", self.host);
        for path in [Path::new(&etc), &self.dir] {
            if path.exists() {
                left.push(format!("{}", path.display()));
            }
        }
        let dir = format!("{}/", self.dir.display());
        let cgroup = format!("/ufwd-bed-{}", self.host);
        let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
        for line in mounts.lines() {
            let on = line.split(' ').nth(1).unwrap_or_default();
            if on.starts_with(&dir)
                || on.starts_with(&format!("{etc}/"))
                || self
                    .namespaces
                    .iter()
                    .any(|ns| on == format!("/run/netns/{ns}"))
            {
                left.push(format!("mount {line}"));
            }
        }
        for entry in fs::read_dir("/proc").unwrap().flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if !pid.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let proc = entry.path();
            // Zombies have no exe: they are gone but for their parent's wait.
            let Ok(exe) = fs::read_link(proc.join("exe")) else {
                continue;
            };
            let name = exe.file_name().unwrap_or_default().to_string_lossy();
            let cmdline = fs::read(proc.join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .unwrap_or_default();
            let ours = matches!(
                name.as_ref(),
                "dockerd" | "containerd" | "docker-proxy" | "testsrv" | "runc"
            ) || name.starts_with("containerd-shim");
            let in_netns =
                fs::metadata(proc.join("ns/net")).is_ok_and(|m| self.inodes.contains(&m.ino()));
            let in_cgroup = fs::read_to_string(proc.join("cgroup")).is_ok_and(|c| {
                c.lines().any(|l| {
                    let path = l.splitn(3, ':').nth(2).unwrap_or_default();
                    path == cgroup || path.starts_with(&format!("{cgroup}/"))
                })
            });
            if in_netns || in_cgroup || (ours && cmdline.contains(&dir)) {
                left.push(format!("process {pid}: {}", cmdline.trim()));
            }
        }
        // cgroup v2 has one tree, v1 one per controller (/sys/fs/cgroup/cpu, ...).
        let root = Path::new("/sys/fs/cgroup");
        let trees = fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .chain([root.to_path_buf()]);
        for tree in trees {
            let cg = tree.join(cgroup.trim_start_matches('/'));
            if cg.is_dir() {
                left.push(format!("cgroup {}", cg.display()));
            }
        }
        left
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.dockerd_started {
            let _ = try_sh(&format!(
                "{} stop {} {}",
                bed_script("dockerd.sh").display(),
                self.host(),
                self.dir.display()
            ));
        }
        for ns in self.namespaces.iter().rev() {
            // Kills the namespace's own test servers first, so the namespace can go.
            let _ = try_sh(&format!("ip netns pids {ns} | xargs -r kill -9"));
            let _ = try_sh(&format!("ip netns del {ns}"));
        }
        let _ = fs::remove_dir_all(&self.dir);
        let _ = fs::remove_dir_all(std::env::temp_dir().join(format!("ufwd-lab-logs-{}", self.id)));
        // `etc` (/etc/netns/HOST) goes last, with the fields.
    }
}

/// The matrix as a table, one line per case.
/// `iptables-save` output without a security table that holds nothing but its built-in chains
/// with their ACCEPT policies: iptables-legacy instantiates the table the first time anything
/// names it, `iptables-restore --test` of the guard in check mode included. Such a table
/// decides nothing; one with a rule, a chain or another policy is kept and compared.
fn without_pristine_security(save: &str) -> String {
    const PRISTINE: &str = "*security\n:INPUT ACCEPT\n:FORWARD ACCEPT\n:OUTPUT ACCEPT\nCOMMIT\n";
    save.replace(PRISTINE, "")
}

pub fn table(title: &str, outcomes: &[Outcome], expect_protected: bool) -> String {
    let mut out = format!("\n{title}\n");
    for o in outcomes {
        let want = if expect_protected {
            o.case.protected
        } else {
            o.case.unprotected
        };
        let mark = if o.got == want { "  " } else { "!!" };
        out.push_str(&format!(
            "{mark} {:<58} {:<6} (expected {want})\n",
            o.case.name,
            o.got.to_string()
        ));
    }
    out
}

/// The rows whose packet did not do what was expected.
pub fn failures(outcomes: &[Outcome], expect_protected: bool) -> Vec<String> {
    outcomes
        .iter()
        .filter(|o| {
            o.got
                != if expect_protected {
                    o.case.protected
                } else {
                    o.case.unprotected
                }
        })
        .map(|o| format!("{}: got {}", o.case.name, o.got))
        .collect()
}

/// Builds the static test server (musl, so it runs inside the busybox image too).
pub fn build_testsrv() -> PathBuf {
    let dir = repo().join("tests/bed/testsrv");
    sh(&format!(
        "cd {} && cargo build --quiet --release --target x86_64-unknown-linux-musl",
        dir.display()
    ));
    dir.join("target/x86_64-unknown-linux-musl/release/testsrv")
}

/// Installs what the lab needs (idempotent): bookworm's Docker, forky's Docker 28, UFW, ...
pub fn install_deps() {
    sh(&bed_script("install-deps.sh").display().to_string());
}
