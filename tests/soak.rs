//! The soak (issue 14, part 3; `make soak`): a Docker host of the lab kept busy for minutes
//! while real packets probe it without a break, on Docker 28 and Docker 20.10.
//!
//! Why it exists: the bed proves each situation once, at rest (after a restart, after a new
//! network, after a rerun). Operators meet them overlapping: Ansible reruns the module while
//! Docker creates networks and restarts, and a firewall that is right at rest can still open a
//! blocked port, or refuse an allowed one, for the milliseconds in between. The soak measures
//! those moments instead of assuming them away:
//!
//! - the workload whose reach never changes: the lab's containers (`Lab::workloads`), `web`
//!   with the allowed 8080/tcp and 8081/udp on n10, `pub` with 8082/tcp and 8084/udp on the
//!   default bridge, `admin` with 8083/tcp (allowed from internet B only) on n20, `far` with
//!   9180/tcp and 9181/udp on n100;
//! - probers (`testsrv watch`, one process per source, family and protocol) that never stop:
//!   from internet A to the allowed ports (must answer) and to every blocked one, the churned
//!   ones included (must never connect), and from the trusted LAN to all of them (must
//!   answer, but for churned ports, which come and go);
//! - churn around them, in one thread: containers publishing 951x/tcp and 952x/udp started
//!   and removed, half of them on networks created for them and removed with them, and
//!   dockerd restarted every quarter of the soak (every container comes back, `--restart
//!   always`);
//! - in another thread, the module rerun as Ansible runs it (`Lab::module`) with a policy
//!   that changes every time, never for the stable ports: the allowed ports' own rules (their
//!   comment carries the run's number), unrelated allow entries and trusted networks (none, a
//!   few, or enough to fold the lists into sub-chain trees that hold the stable ports' rules),
//!   logging and `ufw_route_rules`; every fourth run is followed by `ufw reload`. After each run
//!   after.rules and after6.rules, less the managed block, are compared byte for byte with the
//!   files as they were before the first run.
//!
//! The figures and their goals: probes to a blocked port that connected (0, any family and
//! protocol, restarts included: on Docker 20.10's IPv6 the guard alone holds them between a
//! restart or a new network and the next rerun); the longest refusal of an allowed port that
//! overlaps a module run, outside dockerd restarts (0 ms: the live apply is atomic), measured
//! to the probe interval; bytes lost or changed outside the managed block (0). Everything is
//! timestamped (the system clock, which `testsrv watch` reads too) and judged afterwards, so
//! the probers never wait for the judge.
//!
//! Not part of `make test`: it is a measurement, and `#[ignore]`d so that `cargo test` never
//! starts it. `make soak` (scripts/soak.sh) runs it: `SOAK_SECONDS` per Docker version (default
//! 90), `SOAK_DOCKER` (default `28,20`), `SOAK_SEED` (the policies' sequence; default from the
//! clock, printed). It prints its figures, writes them to target/soak.md (with every event
//! behind a miss) and target/soak-benchmarks.md (BENCHMARKS.md's section), and fails when a
//! goal is missed or the soak proved nothing (no churned port probed while it was served).
//! iptables nft only: with legacy, Docker skips IPv6 DNAT rules (`Lab::without_v6_dnat`) and
//! UFW's INPUT, not forwarding, decides those ports.

#[path = "lab/mod.rs"]
mod lab;
/// Commands, root, the iptables backend and the /etc that pins it: shared with the bed.
mod support;

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use lab::{Docker, Lab};
use support::{require_root, sh, try_sh, Backend};

fn testsrv() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        lab::install_deps();
        lab::build_testsrv()
    })
}

/// Microseconds since the Unix epoch: the clock `testsrv watch` stamps its probes with.
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Packets the kernel dropped at its per-CPU input backlog so far, machine-wide (the second
/// column of /proc/net/softnet_stat): a lost probe that no firewall dropped shows here.
fn backlog_drops() -> u64 {
    fs::read_to_string("/proc/net/softnet_stat")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|hex| u64::from_str_radix(hex, 16).ok())
        .sum()
}

/// The host's conntrack statistics (`conntrack -S`), each counter summed over the CPUs: a probe
/// lost to a clash or a failed insert shows in `drop`, `insert_failed`, `early_drop`.
fn conntrack_stats(lab: &Lab) -> BTreeMap<String, u64> {
    let mut sums = BTreeMap::new();
    for field in lab.host_sh("conntrack -S").split_whitespace() {
        if let Some((k, v)) = field.split_once('=') {
            if let Ok(n) = v.parse::<u64>() {
                *sums.entry(k.to_string()).or_insert(0) += n;
            }
        }
    }
    sums
}

// ------------------------------------------------------------------------------ the setup ---

/// What the environment asks for.
struct Config {
    seconds: u64,
    dockers: Vec<Docker>,
    seed: u64,
}

impl Config {
    fn from_env() -> Config {
        let seconds = std::env::var("SOAK_SECONDS")
            .ok()
            .map(|s| {
                s.parse::<u64>()
                    .ok()
                    .filter(|&n| n >= 10)
                    .unwrap_or_else(|| {
                        panic!("SOAK_SECONDS={s}: a whole number of seconds, 10 or more")
                    })
            })
            .unwrap_or(90);
        let dockers = std::env::var("SOAK_DOCKER")
            .unwrap_or_else(|_| "28,20".to_string())
            .split(',')
            .map(|d| match d.trim() {
                "28" => Docker::V28,
                "20" => Docker::V20,
                other => panic!("SOAK_DOCKER: {other}: 28 or 20, comma-separated"),
            })
            .collect();
        let seed = std::env::var("SOAK_SEED")
            .ok()
            .map(|s| {
                s.parse()
                    .unwrap_or_else(|_| panic!("SOAK_SEED={s}: a number"))
            })
            .unwrap_or_else(|| now_us() % 1_000_000);
        Config {
            seconds,
            dockers,
            seed,
        }
    }
}

/// Host ports of the lab's containers (`Lab::workloads`) that the soak probes.
const ALLOWED_TCP: u16 = 8080;
const ALLOWED_UDP: u16 = 8081;
/// Blocked from the internet: `pub` (default bridge), `admin` (n20; allowed from internet B
/// only, probed from A), `far` (n100).
const BLOCKED_TCP: [u16; 3] = [8082, 8083, 9180];
const BLOCKED_UDP: [u16; 2] = [8084, 9181];
/// Churned containers take one of these slots: 9510+slot/tcp and 9520+slot/udp. Never allowed.
const SLOTS: u16 = 3;
fn churn_tcp(slot: u16) -> u16 {
    9510 + slot
}
fn churn_udp(slot: u16) -> u16 {
    9520 + slot
}
fn is_churn(port: u16) -> bool {
    (9510..9510 + SLOTS).contains(&port) || (9520..9520 + SLOTS).contains(&port)
}

/// Probe intervals (ms): each prober starts one probe this often, cycling through its ports.
const EVERY_ALLOWED: u64 = 25;
const EVERY_BLOCKED: u64 = 15;
const EVERY_LAN: u64 = 25;
/// A blocked probe waits this long for an answer before it counts as closed.
const TIMEOUT_BLOCKED: u64 = 300;
const TIMEOUT_OPEN: u64 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Internet,
    Lan,
}

/// One prober: a `testsrv watch` process.
#[derive(Debug, Clone)]
struct Watch {
    source: Source,
    v6: bool,
    proto: &'static str,
    ports: Vec<u16>,
    every_ms: u64,
    timeout_ms: u64,
}

impl Watch {
    fn family(&self) -> &'static str {
        if self.v6 {
            "v6"
        } else {
            "v4"
        }
    }

    fn label(&self) -> String {
        let from = match self.source {
            Source::Internet => "internet A",
            Source::Lan => "trusted LAN",
        };
        format!("{from} {} {}", self.proto, self.family())
    }

    /// Whether a probe to `port` must answer: from the LAN every stable port, from the internet
    /// the allowed ones. Churned ports from the LAN answer only while served: not judged.
    fn must_answer(&self, port: u16) -> bool {
        match self.source {
            Source::Lan => !is_churn(port),
            Source::Internet => {
                port == ALLOWED_TCP && self.proto == "tcp"
                    || port == ALLOWED_UDP && self.proto == "udp"
            }
        }
    }

    /// Whether a probe to `port` must never connect.
    fn must_not_connect(&self, port: u16) -> bool {
        self.source == Source::Internet && !self.must_answer(port)
    }
}

fn watches() -> Vec<Watch> {
    let churn = |f: fn(u16) -> u16| (0..SLOTS).map(f).collect::<Vec<u16>>();
    let mut all = Vec::new();
    for v6 in [false, true] {
        let w = |source, proto, ports: Vec<u16>, every_ms, timeout_ms| Watch {
            source,
            v6,
            proto,
            ports,
            every_ms,
            timeout_ms,
        };
        let blocked_tcp = [BLOCKED_TCP.to_vec(), churn(churn_tcp)].concat();
        let blocked_udp = [BLOCKED_UDP.to_vec(), churn(churn_udp)].concat();
        all.push(w(
            Source::Internet,
            "tcp",
            vec![ALLOWED_TCP],
            EVERY_ALLOWED,
            TIMEOUT_OPEN,
        ));
        all.push(w(
            Source::Internet,
            "udp",
            vec![ALLOWED_UDP],
            EVERY_ALLOWED,
            TIMEOUT_OPEN,
        ));
        all.push(w(
            Source::Internet,
            "tcp",
            blocked_tcp.clone(),
            EVERY_BLOCKED,
            TIMEOUT_BLOCKED,
        ));
        all.push(w(
            Source::Internet,
            "udp",
            blocked_udp.clone(),
            EVERY_BLOCKED,
            TIMEOUT_BLOCKED,
        ));
        all.push(w(
            Source::Lan,
            "tcp",
            [vec![ALLOWED_TCP], blocked_tcp].concat(),
            EVERY_LAN,
            TIMEOUT_OPEN,
        ));
        all.push(w(
            Source::Lan,
            "udp",
            [vec![ALLOWED_UDP], blocked_udp].concat(),
            EVERY_LAN,
            TIMEOUT_OPEN,
        ));
    }
    all
}

// -------------------------------------------------------------------------- the probes ---

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// A reply line came.
    Open,
    /// A TCP handshake completed, but nothing replied: the packet got through all the same.
    Connected,
    Closed,
}

#[derive(Debug, Clone)]
struct Probe {
    t0: u64,
    t1: u64,
    port: u16,
    verdict: Verdict,
    /// The reply, or why not.
    detail: String,
}

/// What one prober sent and found.
struct Stream {
    watch: Watch,
    probes: Vec<Probe>,
    sent: u64,
    skipped: u64,
}

fn parse_probe(line: &str) -> Option<Probe> {
    let mut f = line.splitn(5, ' ');
    let t0 = f.next()?.parse().ok()?;
    let t1 = f.next()?.parse().ok()?;
    let port = f.next()?.parse().ok()?;
    let verdict = match f.next()? {
        "open" => Verdict::Open,
        "connected" => Verdict::Connected,
        "closed" => Verdict::Closed,
        _ => return None,
    };
    Some(Probe {
        t0,
        t1,
        port,
        verdict,
        detail: f.next().unwrap_or_default().to_string(),
    })
}

/// Starts a prober; its standard input is the off switch.
fn spawn_watch(lab: &Lab, w: &Watch) -> Child {
    let ns = match w.source {
        Source::Internet => lab.inet_a(),
        Source::Lan => lab.lan(),
    };
    let addr = match (w.source, w.v6) {
        (Source::Internet, false) => lab::INET_A.0,
        (Source::Internet, true) => lab::INET_A.2,
        (Source::Lan, false) => lab::LAN.0,
        (Source::Lan, true) => lab::LAN.2,
    };
    let ports: Vec<String> = w.ports.iter().map(u16::to_string).collect();
    Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(&lab.testsrv)
        .args(["watch", w.proto, addr, &ports.join(",")])
        .args(["--every-ms", &w.every_ms.to_string()])
        .args(["--timeout-ms", &w.timeout_ms.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("ip netns exec testsrv watch")
}

// -------------------------------------------------------------------------- the events ---

/// When something happened, from its start to its end (µs).
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    t0: u64,
    t1: u64,
}

impl Window {
    fn overlaps(&self, t0: u64, t1: u64) -> bool {
        self.t0 <= t1 && t0 <= self.t1
    }
    fn contains(&self, t: u64) -> bool {
        self.t0 <= t && t <= self.t1
    }
    fn ms(&self) -> f64 {
        (self.t1 - self.t0) as f64 / 1000.0
    }
}

/// The control phase, before the soak proper: the probers and the judge must see what they
/// exist to see, or the soak's zeros would mean nothing.
#[derive(Default)]
struct Control {
    /// From when a DROP of the allowed ports' packets was in FORWARD to when it was taken out.
    dropped: Window,
    /// When the first module run started: probes before it met stock Docker and UFW, which
    /// leave every published port open.
    before_module: u64,
    /// When the soak proper began: after that run and a conntrack flush.
    soak_from: u64,
    /// `backlog_drops` when the soak began, then how many more there were by its end.
    backlog_drops: u64,
    /// The host's `conntrack_stats` when the soak began, then what grew by its end.
    conntrack: BTreeMap<String, u64>,
}

struct ModuleRun {
    at: Window,
    /// `changed`, or why the run failed.
    result: Result<bool, String>,
    policy: String,
}

/// A churned container: its slot, its network if one was made for it, and when it served
/// (from its first answer to its removal).
struct Churned {
    name: String,
    slot: u16,
    network: Option<String>,
    up: u64,
    down: Option<u64>,
}

#[derive(Default)]
struct Log {
    module_runs: Vec<ModuleRun>,
    reloads: Vec<Window>,
    restarts: Vec<Window>,
    churned: Vec<Churned>,
    /// Every Docker command the churn ran (a restart included), and when.
    docker_ops: Vec<(Window, String)>,
    networks_made: u32,
    networks_removed: u32,
    containers_removed: u32,
    file_checks: u32,
    /// The most bytes outside the managed block found lost or changed, over every check.
    lost_bytes: usize,
    file_problems: Vec<String>,
    /// The firewall when a blocked port connected (the first few).
    snapshots: Vec<(u64, String)>,
    /// The soak's own workload failing (a Docker command, a panic).
    errors: Vec<String>,
}

/// Sets the flag when dropped: a loop that ends, even by a panic, stops the other.
struct StopOnExit<'a>(&'a AtomicBool);

impl Drop for StopOnExit<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Sleeps up to `d`, waking early once `done` says so.
fn nap(d: Duration, done: &dyn Fn() -> bool) {
    let end = Instant::now() + d;
    while Instant::now() < end && !done() {
        thread::sleep(Duration::from_millis(50).min(end - Instant::now()));
    }
}

// --------------------------------------------------------------------------- the churn ---

/// Containers and networks come and go, dockerd restarts every `restart_every`. Every Docker
/// command is logged with when it ran, for the reader of a miss.
fn churn(lab: &Lab, log: &Mutex<Log>, done: &dyn Fn() -> bool, restart_every: Duration) {
    let timed = |what: String, f: &dyn Fn()| {
        let t0 = now_us();
        f();
        let at = Window { t0, t1: now_us() };
        log.lock().unwrap().docker_ops.push((at, what));
        at
    };
    let mut next_restart = Instant::now() + restart_every;
    let mut alive: VecDeque<usize> = VecDeque::new();
    let mut k: u32 = 0;
    while !done() {
        if Instant::now() >= next_restart {
            let at = timed("dockerd restart".into(), &|| lab.restart_dockerd());
            log.lock().unwrap().restarts.push(at);
            next_restart += restart_every;
            continue;
        }
        if alive.len() >= 2 {
            let i = alive.pop_front().unwrap();
            let (name, network) = {
                let mut log = log.lock().unwrap();
                let c = &mut log.churned[i];
                c.down = Some(now_us());
                (c.name.clone(), c.network.clone())
            };
            timed(format!("docker rm -f {name}"), &|| {
                lab.docker(&format!("rm -f {name} >/dev/null"));
            });
            log.lock().unwrap().containers_removed += 1;
            if let Some(net) = network {
                timed(format!("docker network rm {net}"), &|| {
                    lab.docker(&format!("network rm {net} >/dev/null"));
                });
                log.lock().unwrap().networks_removed += 1;
            }
        }
        k += 1;
        let used: Vec<u16> = {
            let log = log.lock().unwrap();
            alive.iter().map(|&i| log.churned[i].slot).collect()
        };
        let slot = (0..SLOTS).find(|s| !used.contains(s)).unwrap();
        let name = format!("churn{k}");
        // Every other container gets a network of its own, made now and removed with it; the
        // others join n100, where `far` lives.
        let network = (k % 2 == 1).then(|| format!("soak{k}"));
        if let Some(net) = &network {
            let n = k % 200;
            timed(format!("docker network create {net}"), &|| {
                lab.docker(&format!(
                    "network create --subnet 10.60.{n}.0/24 --ipv6 --subnet fd00:60:{n}::/64 \
                     {net} >/dev/null"
                ));
            });
            log.lock().unwrap().networks_made += 1;
        }
        let ports = format!("{}/tcp {}/udp", churn_tcp(slot), churn_udp(slot));
        timed(
            format!("docker run {name} ({ports}), until it answers"),
            &|| {
                lab.run_container(
                    &name,
                    &format!(
                        "--network {} -p {}:80 -p {}:81/udp",
                        network.as_deref().unwrap_or("n100"),
                        churn_tcp(slot),
                        churn_udp(slot)
                    ),
                    "--tcp 80 --udp 81",
                )
            },
        );
        let mut log = log.lock().unwrap();
        log.churned.push(Churned {
            name,
            slot,
            network,
            up: now_us(),
            down: None,
        });
        alive.push_back(log.churned.len() - 1);
        drop(log);
        nap(Duration::from_millis(500), done);
    }
}

// -------------------------------------------------------------------------- the module ---

/// xorshift64*: the policies' sequence, replayable from `SOAK_SEED`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The lab's policy, changed in ways that never change what the stable ports' sources reach:
/// the allowed ports' own rules (their comment), unrelated allow entries (ports 30000 and up),
/// trusted networks that no prober is in (192.0.2.0/24, 2001:db8:f000::/36), logging and
/// `ufw_route_rules` (whose UFW chain is empty here: `soak` deletes the lab's route rule). The
/// trusted LAN stays.
fn policy(run: u64, rng: &mut Rng) -> (Value, String) {
    let mut p = lab::policy();
    p["allow"][0]["comment"] = json!(format!("web, soak run {run}"));
    p["allow"][1]["comment"] = json!(format!("web udp, soak run {run}"));
    let extra_allow = [0, 3, 24][rng.below(3) as usize];
    let shift = rng.below(2) as u16;
    for i in 0..extra_allow as u16 {
        let mut entry = json!({"port": 30000 + 4 * i + shift, "comment": format!("extra {i}")});
        if i % 5 == 1 {
            entry["proto"] = json!("udp");
        }
        if i % 3 == 2 {
            entry["from"] = json!(["192.0.2.0/24", "2001:db8:f000::/36"]);
        }
        p["allow"].as_array_mut().unwrap().push(entry);
    }
    let extra_trust = [0, 2, 20][rng.below(3) as usize];
    let trusted = p["trusted_networks"].as_array_mut().unwrap();
    for i in 0..extra_trust {
        if i < 16 {
            trusted.push(json!(format!("192.0.2.{}/29", 16 * i)));
        }
        trusted.push(json!(format!("2001:db8:f0{i:02x}::/48")));
    }
    let log = rng.below(4) != 0;
    let limit = ["3/min", "10/minute", "1/second"][rng.below(3) as usize];
    let route = rng.below(3) != 0;
    p["log"] = json!(log);
    p["log_limit"] = json!(limit);
    p["ufw_route_rules"] = json!(route);
    let note = format!(
        "run {run}: +{extra_allow} allow, +{extra_trust} trusted, log {log} {limit}, ufw route {route}"
    );
    (p, note)
}

/// `text` without the managed block, or why it cannot be cut out (no block, two, unbalanced).
fn outside_block(text: &[u8]) -> Result<Vec<u8>, String> {
    let begin = ufw_docker::after_rules::BEGIN.as_bytes();
    let end = ufw_docker::after_rules::END.as_bytes();
    let (mut out, mut inside, mut blocks) = (Vec::new(), false, 0);
    for line in text.split_inclusive(|&b| b == b'\n') {
        let bare = line.strip_suffix(b"\n").unwrap_or(line);
        if bare.starts_with(begin) {
            if inside {
                return Err("a BEGIN marker inside the block".into());
            }
            inside = true;
            blocks += 1;
        } else if bare == end {
            if !inside {
                return Err("an END marker outside a block".into());
            }
            inside = false;
        } else if !inside {
            out.extend_from_slice(line);
        }
    }
    match (inside, blocks) {
        (true, _) => Err("the block has no END marker".into()),
        (false, 1) => Ok(out),
        (false, n) => Err(format!("{n} managed blocks")),
    }
}

/// Bytes of `before` and `after` outside their common prefix and suffix: 0 when they are equal,
/// else at least the bytes lost, changed or added.
fn differing_bytes(before: &[u8], after: &[u8]) -> usize {
    let prefix = before.iter().zip(after).take_while(|(a, b)| a == b).count();
    let (b, a) = (&before[prefix..], &after[prefix..]);
    let suffix = b
        .iter()
        .rev()
        .zip(a.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    b.len().max(a.len()) - suffix
}

/// Both files against their originals, outside the managed block.
fn check_files(lab: &Lab, originals: &[(&str, Vec<u8>)], log: &Mutex<Log>, when: &str) {
    for (name, original) in originals {
        let now = fs::read(lab.ufw_dir().join(name)).unwrap_or_default();
        let mut log = log.lock().unwrap();
        log.file_checks += 1;
        match outside_block(&now) {
            Ok(outside) => {
                let lost = differing_bytes(original, &outside);
                log.lost_bytes = log.lost_bytes.max(lost);
                if lost > 0 {
                    log.file_problems.push(format!(
                        "{when}: {name}: {lost} bytes outside the block differ"
                    ));
                }
            }
            Err(why) => log.file_problems.push(format!("{when}: {name}: {why}")),
        }
    }
}

/// The module rerun with a new policy every time, `ufw reload` after every fourth run.
fn reruns(
    lab: &Lab,
    log: &Mutex<Log>,
    done: &dyn Fn() -> bool,
    originals: &[(&str, Vec<u8>)],
    seed: u64,
) {
    let mut rng = Rng(seed.wrapping_mul(2_654_435_761).max(1));
    let mut run = 0;
    while !done() {
        run += 1;
        let (args, note) = policy(run, &mut rng);
        let t0 = now_us();
        let result = lab.try_module(args).map(|out| out["changed"] == true);
        let at = Window { t0, t1: now_us() };
        // What FORWARD starts with right after a failed run (and its rollback): Docker's rules
        // put ahead of the jump to DOCKER-USER meanwhile fail its check of the live chains.
        let result = result.map_err(|e| {
            let heads = try_sh(&format!(
                "ip netns exec {} bash -c 'for t in iptables ip6tables; do \
                 echo \"$t: FORWARD has $($t -S FORWARD | grep -c -- \"^-A\") rules, the jump to \
                 DOCKER-USER is rule $($t -S FORWARD | grep -- \"^-A\" | grep -n -- \"-j DOCKER-USER$\" \
                 | cut -d: -f1 | tr \"\\n\" \" \"), the first two:\"; \
                 $t -S FORWARD | grep -- \"^-A\" | head -2; done'",
                lab.host()
            ))
            .unwrap_or_else(|e| e);
            format!("{e}\nright after it:\n{heads}")
        });
        log.lock().unwrap().module_runs.push(ModuleRun {
            at,
            result,
            policy: note,
        });
        check_files(lab, originals, log, &format!("after module run {run}"));
        if run % 4 == 0 {
            let t0 = now_us();
            let reload = try_sh(&format!("ip netns exec {} ufw reload", lab.host()));
            let t1 = now_us();
            let mut log = log.lock().unwrap();
            log.reloads.push(Window { t0, t1 });
            if let Err(e) = reload {
                log.errors.push(format!("ufw reload: {e}"));
            }
        }
        nap(Duration::from_millis(300 + rng.below(1200)), done);
    }
}

// ---------------------------------------------------------------------------- the soak ---

/// One Docker version's soak, judged.
struct Figures {
    docker: String,
    seconds: f64,
    /// Per protocol and family: "tcp v4" ...
    sent: BTreeMap<String, u64>,
    skipped: u64,
    blocked_probes: u64,
    churn_probes_served: u64,
    lan_churn_answered: u64,
    open_probes: u64,
    module_runs: usize,
    module_changed: usize,
    module_failures: Vec<String>,
    module_ms: (f64, f64),
    runs_measured: usize,
    restarts: usize,
    restart_ms: f64,
    networks: (u32, u32),
    containers: (usize, u32),
    reloads: usize,
    reached: Vec<String>,
    refusal_rerun_ms: f64,
    refusals_outside_restarts: u64,
    refusal_runs: Vec<String>,
    file_checks: u32,
    lost_bytes: usize,
    file_problems: Vec<String>,
    snapshots: Vec<String>,
    errors: Vec<String>,
    /// Before the module: probes to the stable blocked ports, and how many connected.
    control_blocked: (u64, u64),
    /// How long the allowed ports' packets were dropped by hand, and the refusal each internet
    /// prober of those ports measured.
    control_drop_ms: f64,
    control_refusals: Vec<f64>,
    backlog_drops: u64,
    conntrack: BTreeMap<String, u64>,
    /// Runs of refusals outside restarts: overlapping a module run, and not.
    refusals_during_runs: usize,
    refusals_other: usize,
}

impl Figures {
    /// What missed its goal, or made the soak prove nothing.
    fn misses(&self) -> Vec<String> {
        let mut m = Vec::new();
        if !self.reached.is_empty() {
            m.push(format!(
                "{} probes connected to blocked ports",
                self.reached.len()
            ));
        }
        if self.refusal_rerun_ms > 0.0 {
            m.push(format!(
                "an allowed port was refused for {:.0} ms during a module run",
                self.refusal_rerun_ms
            ));
        }
        if self.lost_bytes > 0 || !self.file_problems.is_empty() {
            m.push(format!(
                "after.rules: {} bytes lost or changed, {} problems",
                self.lost_bytes,
                self.file_problems.len()
            ));
        }
        if !self.module_failures.is_empty() {
            m.push(format!("{} module runs failed", self.module_failures.len()));
        }
        if !self.errors.is_empty() {
            m.push(format!("the workload failed: {}", self.errors.join("; ")));
        }
        if self.control_blocked.1 == 0 {
            m.push(
                "the control: before the module, no probe connected to a blocked port (the \
                 probers would not see one open)"
                    .into(),
            );
        }
        if self.control_refusals.contains(&0.0) {
            m.push(
                "the control: a prober of the allowed ports did not see them dropped for a second \
                 (it would not see them refused)"
                    .into(),
            );
        }
        if self.churn_probes_served == 0 || self.lan_churn_answered == 0 || self.runs_measured == 0
        {
            m.push(
                "the soak proved nothing: no churned port probed while served, or no module run \
                 outside a restart"
                    .into(),
            );
        }
        m
    }
}

fn soak(docker: Docker, cfg: &Config) -> Figures {
    let module = Path::new(env!("CARGO_BIN_EXE_ufw_docker"));
    let lab = Lab::start(docker, Backend::Nft, testsrv(), module);
    let version = lab
        .docker("version -f '{{.Server.Version}}'")
        .trim()
        .to_string();
    let tag = format!("Docker {version}");
    // No `ufw route allow` here: it names `routed`'s address, and a dockerd restart may give that
    // address to another container (the default bridge hands them out in start order), which
    // the rule then opens until it is moved. A first soak met exactly that: `pub`'s blocked
    // 8082 answered the internet for 0.3 s after a restart, through UFW's rule, not the
    // module's. `ufw_route_rules` still toggles the jump to UFW's (then empty) route chain.
    lab.delete_route_rule();
    let originals: Vec<(&str, Vec<u8>)> = ["after.rules", "after6.rules"]
        .into_iter()
        .map(|f| (f, fs::read(lab.ufw_dir().join(f)).unwrap()))
        .collect();
    let log = Mutex::new(Log::default());
    let watches = watches();
    let mut children: Vec<Child> = watches.iter().map(|w| spawn_watch(&lab, w)).collect();
    let switches: Vec<ChildStdin> = children
        .iter_mut()
        .map(|c| c.stdin.take().unwrap())
        .collect();
    let outputs: Vec<_> = children
        .iter_mut()
        .map(|c| c.stdout.take().unwrap())
        .collect();
    let stop = AtomicBool::new(false);
    let snapshots_left = AtomicUsize::new(3);
    // Set once the control phase is over: the soak's start (µs) and end.
    let soak_from = AtomicU64::new(u64::MAX);
    let deadline: OnceLock<Instant> = OnceLock::new();
    let done =
        || stop.load(Ordering::SeqCst) || deadline.get().is_some_and(|d| Instant::now() >= *d);
    let restart_every = Duration::from_secs((cfg.seconds / 4).max(15));
    let mut control = Control::default();

    let streams: Vec<Stream> = thread::scope(|s| {
        let readers: Vec<_> = outputs
            .into_iter()
            .zip(&watches)
            .map(|(out, w)| {
                let (lab, log, left, soak_from) = (&lab, &log, &snapshots_left, &soak_from);
                s.spawn(move || {
                    let mut stream = Stream {
                        watch: w.clone(),
                        probes: Vec::new(),
                        sent: 0,
                        skipped: 0,
                    };
                    for line in BufReader::new(out).lines().map_while(Result::ok) {
                        if let Some(summary) = line.strip_prefix("# sent ") {
                            let mut f = summary.split(' ');
                            stream.sent = f.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                            stream.skipped = f.nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
                            continue;
                        }
                        let Some(p) = parse_probe(&line) else {
                            log.lock()
                                .unwrap()
                                .errors
                                .push(format!("{}: unreadable line {line:?}", w.label()));
                            continue;
                        };
                        // A blocked port that connected: the firewall as it is right now.
                        if p.t0 >= soak_from.load(Ordering::SeqCst)
                            && w.must_not_connect(p.port)
                            && p.verdict != Verdict::Closed
                            && left
                                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                                    n.checked_sub(1)
                                })
                                .is_ok()
                        {
                            let at = now_us();
                            let fw = try_sh(&format!(
                                "ip netns exec {} bash -c 'iptables-save; ip6tables-save'",
                                lab.host()
                            ))
                            .unwrap_or_else(|e| e);
                            log.lock().unwrap().snapshots.push((at, fw));
                        }
                        stream.probes.push(p);
                    }
                    stream
                })
            })
            .collect();
        // The control: the same probers and judge, before the module (blocked ports must be
        // seen open) and across a second in which the allowed ports' packets are dropped by
        // hand (their probes must be seen refused, about as long).
        nap(Duration::from_millis(1500), &|| false);
        let drop_allowed = |op: &str| {
            lab.host_sh(&format!(
                "for t in iptables ip6tables; do \
                 $t {op} FORWARD -p tcp -m conntrack --ctstate DNAT --ctorigdstport {ALLOWED_TCP} -j DROP && \
                 $t {op} FORWARD -p udp -m conntrack --ctstate DNAT --ctorigdstport {ALLOWED_UDP} -j DROP; \
                 done"
            ))
        };
        drop_allowed("-I");
        let t0 = now_us();
        thread::sleep(Duration::from_millis(1000));
        let t1 = now_us();
        drop_allowed("-D");
        control.dropped = Window { t0, t1 };
        nap(Duration::from_millis(1500), &|| false);
        control.before_module = now_us();
        let first = lab.module(lab::policy());
        assert_eq!(first["changed"], true, "{tag}: the first run: {first}");
        // Probes of the control phase leave UDP flows in conntrack, still ESTABLISHED for 30 s:
        // a later probe whose random source port met one would pass as a reply does.
        lab.host_sh("conntrack -F");
        control.backlog_drops = backlog_drops();
        control.conntrack = conntrack_stats(&lab);
        soak_from.store(now_us(), Ordering::SeqCst);
        deadline
            .set(Instant::now() + Duration::from_secs(cfg.seconds))
            .unwrap();
        println!(
            "soak: {tag}: protected; {} s of churn from now",
            cfg.seconds
        );
        let (lab, log, done, stop, originals) = (&lab, &log, &done, &stop, &originals);
        let churner = s.spawn(move || {
            let _stop = StopOnExit(stop);
            churn(lab, log, done, restart_every);
        });
        let rerunner = s.spawn(move || {
            let _stop = StopOnExit(stop);
            reruns(lab, log, done, originals, cfg.seed);
        });
        for (what, h) in [("the churn", churner), ("the reruns", rerunner)] {
            if let Err(panic) = h.join() {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                log.lock()
                    .unwrap()
                    .errors
                    .push(format!("{what} stopped: {why}"));
            }
        }
        drop(switches);
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let t_end = now_us();
    control.backlog_drops = backlog_drops() - control.backlog_drops;
    let now = conntrack_stats(&lab);
    control.conntrack = now
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.saturating_sub(*control.conntrack.get(k).unwrap_or(&0)),
            )
        })
        .filter(|(k, v)| *v > 0 && !matches!(k.as_str(), "cpu" | "found" | "searched"))
        .collect();
    for mut c in children {
        let _ = c.wait();
    }
    check_files(&lab, &originals, &log, "at the end");
    // The host converges: the lab's policy once more, then nothing to do.
    let back = lab.try_module(lab::policy());
    let again = lab.try_module(lab::policy());
    let mut log = log.into_inner().unwrap();
    match again {
        Ok(out) if out["changed"] == false => {}
        other => log.errors.push(format!(
            "after the soak, the lab's policy twice: {back:?}, then {other:?}"
        )),
    }

    control.soak_from = soak_from.load(Ordering::SeqCst);
    let figures = judge(&version, &streams, &log, &control, t_end);
    lab.tear_down_checked(&tag);
    figures
}

// --------------------------------------------------------------------------- the judge ---

/// Runs of refused probes among `probes` (one port's, in the order they started): from the
/// first refused probe's start to the start of the next that answered (or the last refused
/// one's end), with how many were refused and the first of them.
fn refusals<'a>(probes: &[&'a Probe]) -> Vec<(u64, u64, usize, &'a Probe)> {
    let mut runs = Vec::new();
    let mut current: Option<(u64, u64, usize, &Probe)> = None;
    for p in probes {
        if p.verdict == Verdict::Open {
            if let Some((t0, _, n, first)) = current.take() {
                runs.push((t0, p.t0, n, first));
            }
        } else {
            current = Some(match current {
                Some((t0, _, n, first)) => (t0, p.t1, n + 1, first),
                None => (p.t0, p.t1, 1, p),
            });
        }
    }
    runs.extend(current);
    runs
}

fn judge(version: &str, streams: &[Stream], log: &Log, control: &Control, t_end: u64) -> Figures {
    let t_start = control.soak_from;
    let secs = |t: u64| (t.saturating_sub(t_start)) as f64 / 1e6;
    // Which events a span of time overlaps, for the reader of a miss.
    let during = |t0: u64, t1: u64| -> String {
        let mut what = Vec::new();

        for m in &log.module_runs {
            // (A module run's own window is not "during" itself.)
            if m.at.overlaps(t0, t1) && m.at.t0 != t0 {
                what.push(format!(
                    "module {} ({:.3} to {:.3} s)",
                    m.policy,
                    secs(m.at.t0),
                    secs(m.at.t1)
                ));
            }
        }
        for r in &log.reloads {
            if r.overlaps(t0, t1) {
                what.push("ufw reload".into());
            }
        }
        for (at, op) in &log.docker_ops {
            if at.overlaps(t0, t1) {
                what.push(format!("{op} ({:.3} to {:.3} s)", secs(at.t0), secs(at.t1)));
            }
        }
        if what.is_empty() {
            "nothing else".into()
        } else {
            what.join(", ")
        }
    };
    let in_restart = |t: u64| log.restarts.iter().any(|r| r.contains(t));

    // Every probe that must answer, for the context of a refusal: what the others found then.
    let answering: Vec<(&Watch, &Probe)> = streams
        .iter()
        .flat_map(|st| st.probes.iter().map(move |p| (&st.watch, p)))
        .filter(|(w, p)| p.t0 >= t_start && w.must_answer(p.port))
        .collect();
    let others = |w: &Watch, port: u16, t0: u64, t1: u64| -> String {
        let (mut open, mut refused) = (0, 0);
        for (ow, p) in &answering {
            let same = ow.source == w.source && ow.v6 == w.v6 && ow.proto == w.proto;
            if !(same && p.port == port) && p.t0 + 30_000 >= t0 && p.t0 <= t1 {
                if p.verdict == Verdict::Open {
                    open += 1;
                } else {
                    refused += 1;
                }
            }
        }
        format!("the other probes that must answer, started meanwhile: {open} answered, {refused} refused")
    };
    let mut sent = BTreeMap::new();
    let (mut skipped, mut blocked_probes, mut churn_served, mut lan_churn, mut open_probes) =
        (0, 0, 0, 0, 0);
    let mut reached = Vec::new();
    let mut refusal_rerun_ms: f64 = 0.0;
    let mut refusals_outside = 0;
    let (mut refusals_during_runs, mut refusals_other) = (0, 0);
    let mut refusal_runs = Vec::new();
    let (mut control_blocked, mut control_connected) = (0, 0);
    let mut control_refusals = Vec::new();
    for st in streams {
        let w = &st.watch;
        let kind = format!("{} {}", w.proto, w.family());
        skipped += st.skipped;
        if st.sent != st.probes.len() as u64 {
            // Counted from the lines; the summary says what was started.
            refusal_runs.push(format!(
                "{}: started {} probes, {} lines read",
                w.label(),
                st.sent,
                st.probes.len()
            ));
        }
        for p in &st.probes {
            if p.t0 < control.before_module && w.must_not_connect(p.port) && !is_churn(p.port) {
                control_blocked += 1;
                if p.verdict != Verdict::Closed {
                    control_connected += 1;
                }
            }
            if p.t0 < t_start {
                continue;
            }
            *sent.entry(kind.clone()).or_insert(0) += 1;
            if w.must_not_connect(p.port) {
                blocked_probes += 1;
                if is_churn(p.port) {
                    let served = log.churned.iter().any(|c| {
                        (churn_tcp(c.slot) == p.port || churn_udp(c.slot) == p.port)
                            && c.up <= p.t0
                            && c.down.is_none_or(|d| p.t0 <= d)
                    });
                    if served && !in_restart(p.t0) {
                        churn_served += 1;
                    }
                }
                if p.verdict != Verdict::Closed {
                    reached.push(format!(
                        "{} -> {}/{} at {:.3} s ({:?}: {}), during: {}",
                        w.label(),
                        p.port,
                        w.proto,
                        secs(p.t0),
                        p.verdict,
                        p.detail,
                        during(p.t0, p.t1)
                    ));
                }
            } else if w.source == Source::Lan && is_churn(p.port) && p.verdict == Verdict::Open {
                lan_churn += 1;
            }
        }
        // Runs of refusals, per port that must answer, in the order the probes started.
        let mut ports: Vec<u16> = w.ports.clone();
        ports.retain(|&p| w.must_answer(p));
        for port in ports {
            let mut probes: Vec<&Probe> = st.probes.iter().filter(|p| p.port == port).collect();
            probes.sort_by_key(|p| p.t0);
            // The control: the refusal measured across the drop, from the internet.
            if w.source == Source::Internet {
                let before: Vec<&Probe> = probes
                    .iter()
                    .copied()
                    .filter(|p| p.t0 < control.before_module)
                    .collect();
                let seen = refusals(&before)
                    .into_iter()
                    .filter(|r| control.dropped.overlaps(r.0, r.1))
                    .map(|r| (r.1 - r.0) as f64 / 1000.0)
                    .fold(0.0, f64::max);
                control_refusals.push(seen);
            }
            probes.retain(|p| p.t0 >= t_start);
            open_probes += probes.len() as u64;
            let runs = refusals(&probes);
            for (t0, t1, n, first) in runs {
                if log.restarts.iter().any(|r| r.overlaps(t0, t1)) {
                    continue;
                }
                refusals_outside += n as u64;
                let ms = (t1 - t0) as f64 / 1000.0;
                if log.module_runs.iter().any(|m| m.at.overlaps(t0, t1)) {
                    refusal_rerun_ms = refusal_rerun_ms.max(ms);
                    refusals_during_runs += 1;
                } else {
                    refusals_other += 1;
                }
                refusal_runs.push(format!(
                    "{} -> {port}: {n} probes refused from {:.3} s for {ms:.0} ms (first: {}); \
                     {}; during: {}",
                    w.label(),
                    secs(t0),
                    first.detail,
                    others(w, port, t0, t1),
                    during(t0, t1)
                ));
            }
        }
    }

    let mut module_ms: Vec<f64> = log.module_runs.iter().map(|m| m.at.ms()).collect();
    module_ms.sort_by(f64::total_cmp);
    let median = module_ms.get(module_ms.len() / 2).copied().unwrap_or(0.0);
    let longest = module_ms.last().copied().unwrap_or(0.0);
    let module_failures = log
        .module_runs
        .iter()
        .filter_map(|m| {
            m.result.as_ref().err().map(|e| {
                format!(
                    "{} at {:.3} s, during: {}: {e}",
                    m.policy,
                    secs(m.at.t0),
                    during(m.at.t0, m.at.t1)
                )
            })
        })
        .collect();
    Figures {
        docker: version.to_string(),
        seconds: (t_end - t_start) as f64 / 1e6,
        sent,
        skipped,
        blocked_probes,
        churn_probes_served: churn_served,
        lan_churn_answered: lan_churn,
        open_probes,
        module_runs: log.module_runs.len(),
        module_changed: log
            .module_runs
            .iter()
            .filter(|m| m.result == Ok(true))
            .count(),
        module_failures,
        module_ms: (median, longest),
        runs_measured: log
            .module_runs
            .iter()
            .filter(|m| !log.restarts.iter().any(|r| r.overlaps(m.at.t0, m.at.t1)))
            .count(),
        restarts: log.restarts.len(),
        restart_ms: log.restarts.iter().map(Window::ms).fold(0.0, f64::max),
        networks: (log.networks_made, log.networks_removed),
        containers: (log.churned.len(), log.containers_removed),
        reloads: log.reloads.len(),
        reached,
        refusal_rerun_ms,
        refusals_outside_restarts: refusals_outside,
        refusal_runs,
        file_checks: log.file_checks,
        lost_bytes: log.lost_bytes,
        file_problems: log.file_problems.clone(),
        snapshots: log
            .snapshots
            .iter()
            .map(|(t, fw)| format!("at {:.3} s:\n{fw}", secs(*t)))
            .collect(),
        errors: log.errors.clone(),
        control_blocked: (control_blocked, control_connected),
        control_drop_ms: control.dropped.ms(),
        control_refusals,
        backlog_drops: control.backlog_drops,
        conntrack: control.conntrack.clone(),
        refusals_during_runs,
        refusals_other,
    }
}

// -------------------------------------------------------------------------- the report ---

/// The figures as a Markdown table, one column per Docker version.
fn table(all: &[Figures]) -> String {
    let mut t = String::from("| figure |");
    for f in all {
        let _ = write!(t, " Docker {} |", f.docker);
    }
    t.push_str(" goal |\n|---|");
    for _ in all {
        t.push_str("---|");
    }
    t.push_str("---|\n");
    let mut row = |name: &str, cell: &dyn Fn(&Figures) -> String, goal: &str| {
        let _ = write!(t, "| {name} |");
        for f in all {
            let _ = write!(t, " {} |", cell(f));
        }
        let _ = writeln!(t, " {goal} |");
    };
    row(
        "control, before the module: probes to the blocked ports that connected",
        &|f| format!("{} of {}", f.control_blocked.1, f.control_blocked.0),
        "most (stock Docker)",
    );
    row(
        "control, the allowed ports' packets dropped by hand: refusal measured by their 4 \
         probers from the internet",
        &|f| {
            let lo = f.control_refusals.iter().copied().fold(f64::MAX, f64::min);
            let hi = f.control_refusals.iter().copied().fold(0.0, f64::max);
            format!("{lo:.0} to {hi:.0} ms for {:.0} ms", f.control_drop_ms)
        },
        "about as long",
    );
    row("soak length", &|f| format!("{:.0} s", f.seconds), "");
    row(
        "probes sent (TCP v4 / TCP v6 / UDP v4 / UDP v6)",
        &|f| {
            let n = |k: &str| f.sent.get(k).copied().unwrap_or(0);
            format!(
                "{} ({} / {} / {} / {})",
                f.sent.values().sum::<u64>(),
                n("tcp v4"),
                n("tcp v6"),
                n("udp v4"),
                n("udp v6")
            )
        },
        "",
    );
    row(
        "of them to blocked ports from the internet (while a churned container served its port)",
        &|f| format!("{} ({})", f.blocked_probes, f.churn_probes_served),
        "",
    );
    row(
        "of them to ports that must answer (from the LAN: churned ports answered)",
        &|f| format!("{} ({})", f.open_probes, f.lan_churn_answered),
        "",
    );
    row(
        "module runs: changed / failed",
        &|f| {
            format!(
                "{}: {} / {}",
                f.module_runs,
                f.module_changed,
                f.module_failures.len()
            )
        },
        "every run a change; 0 failed",
    );
    row(
        "module run, median / longest",
        &|f| format!("{:.0} / {:.0} ms", f.module_ms.0, f.module_ms.1),
        "",
    );
    row(
        "dockerd restarts (longest, until every container answered)",
        &|f| format!("{} ({:.1} s)", f.restarts, f.restart_ms / 1000.0),
        "",
    );
    row(
        "networks created / removed",
        &|f| format!("{} / {}", f.networks.0, f.networks.1),
        "",
    );
    row(
        "containers started / removed",
        &|f| format!("{} / {}", f.containers.0, f.containers.1),
        "",
    );
    row("`ufw reload`", &|f| f.reloads.to_string(), "");
    row(
        "**probes that connected to a blocked port**",
        &|f| f.reached.len().to_string(),
        "0",
    );
    row(
        "**longest refusal of an allowed port during a module run** (runs outside restarts)",
        &|f| format!("{:.0} ms ({} runs)", f.refusal_rerun_ms, f.runs_measured),
        "0 ms",
    );
    row(
        "refusals of ports that must answer outside restarts: during a module run / at other \
         times (refused probes in all)",
        &|f| {
            format!(
                "{} / {} ({})",
                f.refusals_during_runs, f.refusals_other, f.refusals_outside_restarts
            )
        },
        "",
    );
    row(
        "**after.rules / after6.rules bytes lost or changed outside the block** (checks)",
        &|f| format!("{} ({})", f.lost_bytes, f.file_checks),
        "0",
    );
    row(
        "packets the kernel dropped at its input backlog, machine-wide (softnet_stat)",
        &|f| f.backlog_drops.to_string(),
        "",
    );
    row(
        "the host's conntrack counters that grew (`conntrack -S`)",
        &|f| {
            let grew: Vec<String> = f
                .conntrack
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            if grew.is_empty() {
                "none".into()
            } else {
                grew.join(", ")
            }
        },
        "",
    );
    row(
        "verdict",
        &|f| {
            let m = f.misses();
            if m.is_empty() {
                "**pass**".to_string()
            } else {
                format!("**fail**: {}", m.join("; "))
            }
        },
        "",
    );
    t
}

const METHOD: &str = "\
How: a Docker host of the bed (UFW `default deny incoming`, iptables nft, its own dockerd) with \
the lab's containers (its `ufw route allow` rule deleted: it names an address that a restart \
may give to another container). Twelve `testsrv watch` probers never stop: from internet A, TCP and UDP, \
IPv4 and IPv6, to the allowed 8080/tcp and 8081/udp every 25 ms each (a UDP probe is one \
datagram, a TCP one one SYN: nothing resent), and every 15 ms round the blocked ports (8082/tcp and 8084/udp on the default bridge, 8083/tcp allowed from another source \
only, 9180/tcp and 9181/udp on another network, and the churned 951x/tcp and 952x/udp), 300 ms \
to answer; from the trusted LAN round all of them every 25 ms. First the control, which the \
zeros below depend on: before the module runs, the same probers and judge must see the blocked \
ports open (stock Docker), and, while a DROP of the allowed ports' packets sits first in FORWARD \
for a second, those ports refused for about as long. Then the lab's policy is applied, conntrack flushed, and the soak proper runs: one thread \
starts a container publishing a churned TCP and UDP port every half second or so (every other \
one on a network made for it, the others on an existing one), removes the oldest once two run \
(with its network), and restarts dockerd every quarter of the soak; another reruns the module \
as Ansible does, every 0.3 to 1.5 s, each time with a new policy that leaves what the probers \
may reach as it is (the allowed ports' own rules, unrelated allow entries and trusted networks, \
flat or folded into sub-chain trees, logging, `ufw_route_rules`), runs `ufw reload` after every \
fourth run, and compares both files outside the managed block with the originals after each \
run. A blocked probe counts as connected when a reply came or a TCP handshake completed; a \
refusal lasts from the first refused probe to the next that answered (so it is measured to the \
probe interval) and counts for the goal when it overlaps a module run and no dockerd restart \
(containers stop then).";

fn report(cfg: &Config, all: &[Figures], when: &str, machine: &str) -> (String, String) {
    let table = table(all);
    let head = format!(
        "Run: {when}, {machine}. {} s per Docker version, policy seed {} (`SOAK_SEED`).",
        cfg.seconds, cfg.seed
    );
    let section = format!(
        "## 5. The soak (`make soak`)\n\nWritten by `make soak` (tests/soak.rs); `make bench` \
         keeps it as it is.\n\n{head}\n\n{METHOD}\n\n{table}"
    );
    let mut full = format!("# The soak\n\n{head}\n\n{METHOD}\n\n{table}");
    for f in all {
        let _ = writeln!(full, "\n## Docker {}\n", f.docker);
        let lists: [(&str, &[String]); 6] = [
            ("Probes that connected to a blocked port", &f.reached),
            (
                "Refusals of ports that must answer, outside restarts",
                &f.refusal_runs,
            ),
            ("Module runs that failed", &f.module_failures),
            ("after.rules problems", &f.file_problems),
            ("The workload's own failures", &f.errors),
            ("The firewall when a blocked port connected", &f.snapshots),
        ];
        for (title, items) in lists {
            let _ = writeln!(full, "{title}: {}", items.len());
            for i in items.iter() {
                let _ = writeln!(full, "- {i}");
            }
        }
        let _ = writeln!(
            full,
            "Probe ticks skipped (a prober behind its schedule): {}",
            f.skipped
        );
    }
    (full, section)
}

#[test]
#[ignore = "a measurement of minutes, not a test: `make soak` runs it"]
fn soak_docker_28_and_20() {
    require_root("the soak");
    let cfg = Config::from_env();
    let when = sh("date -u +%Y-%m-%dT%H:%MZ").trim().to_string();
    let machine = format!(
        "Linux {}, {} CPUs (load average at the start: {})",
        sh("uname -r").trim(),
        sh("nproc").trim(),
        sh("cut -d' ' -f1-3 /proc/loadavg").trim()
    );
    println!(
        "soak: seed {} (SOAK_SEED), {} s per Docker version",
        cfg.seed, cfg.seconds
    );
    let all: Vec<Figures> = cfg.dockers.iter().map(|&d| soak(d, &cfg)).collect();
    let (full, section) = report(&cfg, &all, &when, &machine);
    println!("\n{full}");
    let target = support::repo().join("target");
    fs::create_dir_all(&target).unwrap();
    fs::write(target.join("soak.md"), &full).unwrap();
    fs::write(target.join("soak-benchmarks.md"), &section).unwrap();
    let misses: Vec<String> = all
        .iter()
        .flat_map(|f| {
            f.misses()
                .into_iter()
                .map(move |m| format!("Docker {}: {m}", f.docker))
        })
        .collect();
    assert!(
        misses.is_empty(),
        "the soak missed a goal (details in target/soak.md):\n{}",
        misses.join("\n")
    );
}
