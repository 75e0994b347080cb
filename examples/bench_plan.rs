//! The in-process half of `make bench` part 2: how long planning takes for a policy, and how
//! many rules a new connection crosses in DOCKER-USER, flat (one rule per entry, as before
//! folding) and folded (as the module renders it).
//!
//! Why an example and not a test: it measures, it asserts nothing, and it runs only from
//! scripts/bench.sh. Planning is timed on the pure core (params, rules, plan) with the host's
//! reads replaced by text, first against a firewall without the policy and then against one that
//! already holds it (a rerun, which parses every live rule back). "Rules crossed" is
//! `evaluator::evaluate` (from one source address) over the rendered chains, the worst case over packets to every allowed port,
//! the port after it, from a trusted and from an untrusted source; scripts/bench.sh checks the
//! model against the kernel's packet counters.
//!
//! Usage: `cargo run --release --example bench_plan -- ARGS.json REPS [PROBES.json]` prints one
//! JSON object. PROBES.json, a list of `[family, proto, src, port]`, adds `probe_crossed`: the
//! rules each of those packets crosses (bench/packets.py compares them with the kernel's
//! counters).

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;
use ufw_docker::evaluator::{evaluate, Fate, Packet, RouteDecision, Source};
use ufw_docker::exposure::Dnat;
use ufw_docker::fold::Fold;
use ufw_docker::live::FilterTable;
use ufw_docker::params::{parse_args, Params, Proto};
use ufw_docker::plan::{plan, Observed};
use ufw_docker::policy::render;
use ufw_docker::rules::{guard_section, restore_section, ChainSet, Family, GUARD_CHAIN};

const STOCK_V4: &[u8] = include_bytes!("../tests/data/after.rules");
const STOCK_V6: &[u8] = include_bytes!("../tests/data/after6.rules");

/// What Docker and UFW leave in the filter table before the module runs.
fn base_save(family: Family) -> String {
    format!(
        "*filter\n:FORWARD DROP [0:0]\n:DOCKER - [0:0]\n:DOCKER-USER - [0:0]\n:{route} - [0:0]\n\
         -A FORWARD -j DOCKER-USER\n-A FORWARD -j {route}\nCOMMIT\n",
        route = family.ufw_route_chain()
    )
}

/// The filter and security tables after the module applied `set`: DOCKER-USER's chains, and
/// the guard's chains with its jump first in the security table's FORWARD.
fn applied_save(family: Family, set: &ChainSet) -> String {
    let mut save = base_save(family).replace("COMMIT\n", "");
    save.push_str(
        restore_section(set, &[])
            .trim_start_matches("*filter\n")
            .replace(":DOCKER-USER - [0:0]\n", "")
            .as_str(),
    );
    let guard = guard_section(set);
    if !guard.is_empty() {
        save.push_str(
            &guard
                .replacen("*security\n", "*security\n:FORWARD ACCEPT [0:0]\n", 1)
                .replace(
                    "COMMIT\n",
                    &format!("-A FORWARD -j {GUARD_CHAIN}\nCOMMIT\n"),
                ),
        );
    }
    save
}

fn observed(params: &Params, applied: bool) -> Vec<Observed> {
    Family::ALL
        .iter()
        .map(|&family| {
            let set = render(params, family, true, Fold::DEFAULT);
            let save = if applied {
                applied_save(family, &set)
            } else {
                base_save(family)
            };
            let stock = if family == Family::V4 {
                STOCK_V4
            } else {
                STOCK_V6
            };
            Observed {
                family,
                path: PathBuf::from(format!("/etc/ufw/{}", family.key())),
                file: Some(stock.to_vec()),
                live: Some(FilterTable::parse(&save)),
                nat: Some(Dnat::default()),
            }
        })
        .collect()
}

fn stats(mut ms: Vec<f64>) -> serde_json::Value {
    ms.sort_by(|a, b| a.total_cmp(b));
    json!({"median": ms[ms.len() / 2], "min": ms[0], "max": ms[ms.len() - 1], "n": ms.len()})
}

/// Times `plan` against `obs`, in milliseconds, `reps` times. `plan` takes what was observed
/// by value, as a run hands it over: each repetition gets its copy before the clock starts.
fn time_plan(params: &Params, obs: &[Observed], reps: usize) -> Vec<f64> {
    (0..reps)
        .map(|_| {
            let obs = obs.to_vec();
            let t = Instant::now();
            let p = plan(params, obs).expect("plans");
            std::hint::black_box(&p);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect()
}

/// The most rules any probe packet crosses in `set`.
fn worst(set: &ChainSet, probes: &[Packet]) -> usize {
    probes
        .iter()
        .map(|p| rules_crossed(set, p))
        .max()
        .unwrap_or(0)
}

/// The rules `packet` crosses in `set` (UFW's route chain taken as empty).
fn rules_crossed(set: &ChainSet, packet: &Packet) -> usize {
    let out = evaluate(set, packet, &RouteDecision::NoMatch);
    assert_ne!(
        out.fate,
        Fate::Unknown,
        "the module's vocabulary: {packet:?}"
    );
    out.crossed
}

fn probes(params: &Params, family: Family) -> Vec<Packet<'static>> {
    let untrusted = match family {
        Family::V4 => "192.0.2.200",
        Family::V6 => "2001:db8:ffff::1",
    };
    let mut srcs = vec![untrusted.parse().unwrap()];
    srcs.extend(
        params
            .trusted_networks
            .iter()
            .filter(|n| family.holds(n))
            .map(|n| n.addr()),
    );
    let mut out = Vec::new();
    for a in &params.allow {
        for port in [a.port.end, a.port.end.saturating_add(1)] {
            for proto in [Proto::Tcp, Proto::Udp] {
                out.push(Packet {
                    proto: proto.as_str(),
                    src: Source::Addr(srcs[0]),
                    port,
                });
            }
        }
    }
    // Trusted sources to a port nobody allowed (they cross the trusted rules only).
    out.extend(srcs.iter().map(|&src| Packet {
        proto: Proto::Tcp.as_str(),
        src: Source::Addr(src),
        port: 1,
    }));
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let text = std::fs::read_to_string(&args[0]).expect("ARGS.json");
    let reps: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(20);
    let params = parse_args(&text).expect("valid args").params;

    let first_obs = observed(&params, false);
    let first = time_plan(&params, &first_obs, reps);
    let first_plan = plan(&params, first_obs.clone()).expect("plans");
    let mut rerun_obs = observed(&params, true);
    for (obs, f) in rerun_obs.iter_mut().zip(&first_plan.families) {
        obs.file = f.file_after.clone();
    }
    let probe = plan(&params, rerun_obs.clone()).unwrap();
    assert!(
        !probe.changed(),
        "the applied table must plan as a no-op: {:?}",
        probe.summary()
    );
    let rerun = time_plan(&params, &rerun_obs, reps);

    let mut crossed = serde_json::Map::new();
    let mut rules = serde_json::Map::new();
    for family in Family::ALL {
        let flat = render(&params, family, true, Fold::NEVER);
        let folded = render(&params, family, true, Fold::DEFAULT);
        let p = probes(&params, family);
        crossed.insert(
            family.key().into(),
            json!({"flat": worst(&flat, &p), "folded": worst(&folded, &p)}),
        );
        rules.insert(
            family.key().into(),
            json!({"flat": flat.lines().len(), "folded": folded.lines().len(),
                   "sub_chains": folded.subs.len()}),
        );
    }
    let mut probe_crossed = Vec::new();
    if let Some(spec) = args.get(2) {
        let list: Vec<(String, String, String, u16)> =
            serde_json::from_str(&std::fs::read_to_string(spec).expect("PROBES.json")).unwrap();
        for (family, proto, src, port) in list {
            let family = if family == "ipv6" {
                Family::V6
            } else {
                Family::V4
            };
            let set = render(&params, family, true, Fold::DEFAULT);
            let proto = if proto == "udp" {
                Proto::Udp
            } else {
                Proto::Tcp
            };
            let packet = Packet {
                proto: proto.as_str(),
                src: Source::Addr(src.parse().expect("an address")),
                port,
            };
            probe_crossed.push(rules_crossed(&set, &packet));
        }
    }
    let out = json!({
        "probe_crossed": probe_crossed,
        "allow": params.allow.len(),
        "trusted": params.trusted_networks.len(),
        "plan_first_ms": stats(first),
        "plan_rerun_ms": stats(rerun),
        "crossed": crossed,
        "rules": rules,
    });
    println!("{out}");
}
