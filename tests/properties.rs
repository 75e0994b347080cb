//! Properties over generated parameters, checked by the real iptables: whatever the parameters,
//! every rule the module renders loads with `iptables-restore --test`, and no string parameter
//! can add a rule, a line or a `COMMIT` of its own.

use proptest::prelude::*;
use serde_json::{json, Value};

use ufw_docker::params::parse_args;
use ufw_docker::policy::desired;
use ufw_docker::rules::{restore_section, Family};

use crate::harness::Netns;
use crate::support::Backend;

fn cidr4() -> impl Strategy<Value = String> {
    (any::<[u8; 4]>(), 0u8..=32)
        .prop_map(|(a, p)| format!("{}.{}.{}.{}/{p}", a[0], a[1], a[2], a[3]))
}

fn cidr6() -> impl Strategy<Value = String> {
    (any::<[u16; 8]>(), 0u8..=128).prop_map(|(a, p)| {
        let parts: Vec<String> = a.iter().map(|x| format!("{x:x}")).collect();
        format!("{}/{p}", parts.join(":"))
    })
}

fn port() -> impl Strategy<Value = Value> {
    prop_oneof![
        (1u16..=65535).prop_map(|p| json!(p)),
        (1u16..=65535).prop_map(|p| json!(p.to_string())),
        (1u16..=65535, 0u16..2000).prop_map(|(a, d)| json!(format!("{a}:{}", a.saturating_add(d)))),
    ]
}

/// Text a user might put in a comment or prefix, hostile included.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,40}",
        Just("x\n-A DOCKER-USER -j ACCEPT".to_string()),
        Just("web\" -j ACCEPT \"".to_string()),
        Just("COMMIT".to_string()),
        Just("-j ACCEPT".to_string()),
        Just("a\\".to_string()),
        Just("x\r\nCOMMIT\n*filter".to_string()),
        ".{0,20}",
    ]
}

fn allow() -> impl Strategy<Value = Value> {
    (
        port(),
        prop_oneof![Just("tcp"), Just("udp")],
        proptest::collection::vec(prop_oneof![cidr4(), cidr6()], 0..3),
        proptest::option::of(prop_oneof![6 => "[A-Za-z0-9 ._:/-]{0,40}", 1 => text()]),
    )
        .prop_map(|(port, proto, from, comment)| {
            let mut e = json!({"port": port, "proto": proto});
            if !from.is_empty() {
                e["from"] = json!(from);
            }
            if let Some(c) = comment {
                e["comment"] = json!(c);
            }
            e
        })
}

fn args() -> impl Strategy<Value = Value> {
    (
        proptest::collection::vec(allow(), 0..8),
        proptest::collection::vec(prop_oneof![cidr4(), cidr6()], 0..6),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![3 => "[A-Za-z0-9 _:\\[\\]-]{0,29}", 1 => text()],
        (
            1u32..=10_000,
            prop_oneof![Just("second"), Just("min"), Just("h"), Just("day")],
        ),
    )
        .prop_map(|(allow, trusted, log, route, prefix, (n, unit))| {
            json!({
                "allow": allow, "trusted_networks": trusted, "log": log,
                "ufw_route_rules": route, "log_prefix": prefix,
                "log_limit": format!("{n}/{unit}"),
            })
        })
}

/// The `*filter` section as the module writes it into after.rules for `family`.
fn section(args: &Value, family: Family) -> Option<(String, usize)> {
    let params = parse_args(&args.to_string()).ok()?.params;
    let set = desired(&params, family, params.ufw_route_rules);
    let route = [family.ufw_route_chain()];
    let extra: &[&str] = if params.ufw_route_rules { &route } else { &[] };
    Some((restore_section(&set, extra), set.lines().len()))
}

#[test]
fn everything_rendered_loads_and_nothing_is_injected() {
    for backend in Backend::ALL {
        let ns = Netns::new(backend);
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
        let loaded = std::sync::atomic::AtomicUsize::new(0);
        runner
            .run(&args(), |args| {
                let Some((v4, v4_rules)) = section(&args, Family::V4) else {
                    return Ok(()); // Rejected input: checked to fail cleanly elsewhere.
                };
                loaded.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (v6, v6_rules) = section(&args, Family::V6).expect("same params parse");
                for (text, rules, tool) in [
                    (&v4, v4_rules, "iptables-restore"),
                    (&v6, v6_rules, "ip6tables-restore"),
                ] {
                    // One line per rule, plus *filter, the declarations and COMMIT: a comment or
                    // prefix never adds a line.
                    let lines: Vec<&str> = text.lines().collect();
                    prop_assert_eq!(lines.iter().filter(|l| l.starts_with("-A ")).count(), rules);
                    prop_assert_eq!(lines.iter().filter(|l| **l == "COMMIT").count(), 1);
                    prop_assert!(lines.iter().all(|l| l.starts_with("-A ")
                        || l.starts_with(':')
                        || *l == "*filter"
                        || *l == "COMMIT"));
                    let file = ns.path("rules");
                    std::fs::write(&file, text).unwrap();
                    // /usr/sbin/TOOL is the namespace's pinned backend.
                    let out = std::process::Command::new("ip")
                        .args(["netns", "exec", &ns.name, &format!("/usr/sbin/{tool}")])
                        .arg("--test")
                        .arg(&file)
                        .output()
                        .unwrap();
                    prop_assert!(
                        out.status.success(),
                        "{:?} {} rejected:\n{}\n{}",
                        backend,
                        tool,
                        text,
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        let loaded = loaded.into_inner();
        assert!(loaded >= 16, "{backend:?}: only {loaded} of 64 generated policies were valid; the generator must exercise iptables");
        eprintln!("{backend:?}: {loaded} generated policies loaded with --test");
    }
}

/// Ports and sources drawn from a narrow space so that entries touch, overlap and share
/// sources often: the cases where merging and tree boundaries could go wrong.
fn dense_policy() -> impl Strategy<Value = Value> {
    let entry = (
        1000u16..1060,
        0u16..4,
        prop_oneof![Just("tcp"), Just("udp")],
        proptest::collection::vec(
            prop_oneof![
                Just("198.51.100.0/25"),
                Just("198.51.100.128/25"),
                Just("203.0.113.7")
            ],
            0..2,
        ),
    )
        .prop_map(|(lo, len, proto, from)| {
            let port = if len == 0 {
                json!(lo)
            } else {
                json!(format!("{lo}:{}", lo + len))
            };
            json!({"port": port, "proto": proto, "from": from})
        });
    (
        proptest::collection::vec(entry, 0..60),
        proptest::collection::btree_set(0u8..=255, 0..60),
    )
        .prop_map(|(allow, hosts)| {
            let trusted: Vec<String> = hosts.iter().map(|h| format!("192.0.2.{h}")).collect();
            json!({"allow": allow, "trusted_networks": trusted})
        })
}

/// Folding changes how many rules a packet crosses, never its fate, and never the exposure
/// report: flat and folded renderings agree for every port and source, including with trees of
/// fan-out 2 and 3 that make small lists deep.
#[test]
fn folded_and_flat_policies_agree_on_every_packet_and_report() {
    use ufw_docker::evaluator::{evaluate as walk, Fate, Packet, RouteDecision, Source};
    use ufw_docker::exposure::{evaluate, Published};
    use ufw_docker::fold::{aggregate, Fold};
    use ufw_docker::params::Proto;
    use ufw_docker::policy::render;

    let cases = (
        dense_policy(),
        prop_oneof![Just(2usize), Just(3), Just(8)],
        proptest::collection::vec((995u16..1070, any::<bool>(), any::<u8>(), 0u8..3), 20),
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(200));
    runner
        .run(&cases, |(policy, fanout, packets)| {
            let params = parse_args(&policy.to_string()).unwrap().params;
            let flat = render(&params, Family::V4, true, Fold::NEVER);
            let fold = Fold { at: fanout, fanout };
            let folded = render(&params, Family::V4, true, fold);
            for (port, udp, host, net) in packets {
                let src = match net {
                    0 => format!("192.0.2.{host}"),
                    1 => format!("198.51.100.{host}"),
                    _ => "203.0.113.7".to_string(),
                };
                let proto = if udp { Proto::Udp } else { Proto::Tcp };
                let packet = Packet {
                    proto: proto.as_str(),
                    src: Source::Addr(src.parse().unwrap()),
                    port,
                };
                let a = walk(&flat, &packet, &RouteDecision::NoMatch);
                let b = walk(&folded, &packet, &RouteDecision::NoMatch);
                prop_assert_ne!(a.fate, Fate::Unknown, "flat walks: {:?}", packet);
                prop_assert_ne!(b.fate, Fate::Unknown, "folded walks: {:?}", packet);
                prop_assert_eq!(a.fate, b.fate, "{:?} flat {:?} folded {:?}", packet, a, b);

                let to = Published {
                    family: "ipv4",
                    proto: proto.as_str().into(),
                    host_address: None,
                    host_port: port.to_string(),
                    container_address: "172.17.0.2".into(),
                    container_port: "80".into(),
                    bridge: Some("docker0".into()),
                    mode: ufw_docker::exposure::Mode::Host,
                };
                let (x, y) = (
                    evaluate(&flat, true, &[], &to),
                    evaluate(&folded, true, &[], &to),
                );
                prop_assert_eq!(&x.reach, &y.reach, "{:?}", to);
                let norm = |v: &[String]| {
                    let nets: Vec<ipnet::IpNet> = v.iter().map(|s| s.parse().unwrap()).collect();
                    aggregate(&nets)
                };
                // Sources matter where they restrict; once a port is open to everyone, which
                // restricted rules came before the open one depends on the order only.
                if x.reach == ufw_docker::exposure::Reach::Restricted {
                    prop_assert_eq!(norm(&x.sources), norm(&y.sources));
                }
                prop_assert_eq!(norm(&x.trusted), norm(&y.trusted));
            }
            Ok(())
        })
        .unwrap();
}
