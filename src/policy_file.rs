//! The policy file: the module's own parameters (`allow`, `trusted_networks`, ...) saved as one
//! JSON object, by default at `/etc/ufw-docker/policy.json`. The command line reads it for every
//! verb and edits it for `allow`, `deny`, `trust` and `untrust`; a module run given
//! `policy_file` (the role's) saves its arguments there. One saved state, whichever way a host
//! is managed.
//!
//! Pure: text and JSON in, JSON and words out. What an edit may produce is not judged here: the
//! caller validates the whole edited policy with the module's own parser before it saves it, so
//! a bad `allow` never lands in the file. Reading and writing go through `Host` (`cli_run`).

use ipnet::IpNet;
use serde_json::{json, Map, Value};

use crate::params::{self, PortRange, Proto};

/// Where the policy lives unless `--policy` (or the module's `policy_file`) says otherwise.
pub const DEFAULT_PATH: &str = "/etc/ufw-docker/policy.json";

/// A policy: the module's parameters, as a JSON object.
pub type Policy = Map<String, Value>;

/// The option that names the file itself: a run's arguments hold it, the saved policy does not.
pub const POLICY_FILE_OPTION: &str = "policy_file";

/// The option that installs the running build as the command (the role's): where a host keeps
/// its command, not how its firewall is kept, so a run's arguments may hold it and the saved
/// policy does not. A policy holding it would have every `ufw_docker apply` install itself, and
/// every `check` find a change to make wherever the command is elsewhere.
pub const COMMAND_PATH_OPTION: &str = "command_path";

/// The option whose empty string means unset, as null does (see `saved_form`).
const DOCKER_HOST_OPTION: &str = "docker_host";

/// What a module run saves from its arguments: the task's parameters, without Ansible's own
/// keys (`_ansible_*`), without `policy_file` and `command_path`, and without options set to
/// null (unset). `docker_host: ""` is unset too (`params` reads it so): ansible-core before
/// 2.19 templates the role's null `ufw_docker_docker_host` into "", 2.19 keeps null, and a host
/// converged by both must not find its file changed at every run.
pub fn saved_form(args: &Value) -> Policy {
    let object = match args.get("ANSIBLE_MODULE_ARGS") {
        Some(inner) if args.as_object().is_some_and(|o| o.len() == 1) => inner,
        _ => args,
    };
    object
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, v)| {
                    !k.starts_with("_ansible_")
                        && *k != POLICY_FILE_OPTION
                        && *k != COMMAND_PATH_OPTION
                        && !v.is_null()
                        && !(*k == DOCKER_HOST_OPTION && v.as_str() == Some(""))
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The file's text: the policy as indented JSON (keys sorted), ending in a newline.
pub fn render(policy: &Policy) -> String {
    let mut text = serde_json::to_string_pretty(policy).expect("a JSON object always serialises");
    text.push('\n');
    text
}

/// Whether the file's bytes already hold this policy (as JSON values: spacing and key order
/// do not matter, so a hand-formatted file that says the same is left alone).
pub fn holds(existing: Option<&[u8]>, policy: &Policy) -> bool {
    existing
        .and_then(|bytes| serde_json::from_slice::<Value>(bytes).ok())
        .and_then(|v| v.as_object().cloned())
        .is_some_and(|o| &o == policy)
}

/// Reads a policy file's text (`path` names it in messages): one JSON object, holding neither
/// Ansible's keys nor `policy_file` or `command_path`. Its parameters are validated by the
/// caller.
pub fn parse(path: &str, text: &str) -> Result<Policy, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "the policy {path} is not valid JSON ({e}); write one object of the module's \
             parameters"
        )
    })?;
    let Value::Object(object) = value else {
        return Err(format!(
            "the policy {path} must be one JSON object of the module's parameters, e.g. \
             {{\"allow\": [{{\"port\": 443}}]}}"
        ));
    };
    if let Some(key) = object.keys().find(|k| k.starts_with("_ansible_")) {
        return Err(format!(
            "the policy {path} holds {key}, which is Ansible's, not a parameter; remove it"
        ));
    }
    if object.contains_key(POLICY_FILE_OPTION) {
        return Err(format!(
            "the policy {path} holds policy_file, which names the file itself; remove it \
             (`--policy FILE` picks the file)"
        ));
    }
    if object.contains_key(COMMAND_PATH_OPTION) {
        return Err(format!(
            "the policy {path} holds command_path, which installs the command and is no part of \
             a policy; remove it"
        ));
    }
    Ok(object)
}

/// `PORT[:END][/tcp|udp]` as the verbs take it; the protocol is `None` when not given.
pub fn parse_port(text: &str) -> Result<(PortRange, Option<Proto>), String> {
    let (port, proto) = match text.rsplit_once('/') {
        Some((port, "tcp")) => (port, Some(Proto::Tcp)),
        Some((port, "udp")) => (port, Some(Proto::Udp)),
        Some((_, other)) => {
            return Err(format!(
                "'{text}': the protocol is tcp or udp, not '{other}' (like 443/tcp or 53/udp)"
            ))
        }
        None => (text, None),
    };
    let range = params::port_param("PORT", &Value::String(port.to_string())).map_err(|e| e.0)?;
    Ok((range, proto))
}

/// A CIDR (or one address) as the verbs take it, as the module reads it (host bits cleared).
pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    params::cidr_param("CIDR", text, &mut Vec::new()).map_err(|e| e.0)
}

/// One change to the policy, as a verb asks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Allow the port (range) from these sources (empty: anywhere), adding to what is allowed.
    Allow {
        port: PortRange,
        proto: Proto,
        from: Vec<IpNet>,
        comment: Option<String>,
    },
    /// Take the port (range) out of the allow list: of one protocol, or of both when `None`.
    Deny {
        port: PortRange,
        proto: Option<Proto>,
    },
    /// Trust the network on every published port.
    Trust(IpNet),
    /// Stop trusting it.
    Untrust(IpNet),
}

/// An edited policy, whether it differs from the one edited, and what happened, in words.
#[derive(Debug, Clone, PartialEq)]
pub struct Edited {
    pub policy: Policy,
    pub changed: bool,
    pub said: String,
}

/// Applies an edit to a policy whose parameters are valid (`typed`: their parsed form, whose
/// `allow` entries are in the JSON's order). A port inside an allowed range, but not that range,
/// cannot be denied alone: the range is the operator's to split.
pub fn edit(policy: &Policy, typed: &params::Params, change: &Edit) -> Result<Edited, String> {
    let mut out = policy.clone();
    let said = match change {
        Edit::Allow {
            port,
            proto,
            from,
            comment,
        } => allow(&mut out, typed, *port, *proto, from, comment.as_deref()),
        Edit::Deny { port, proto } => deny(&mut out, typed, *port, *proto)?,
        Edit::Trust(net) => trust(&mut out, typed, *net),
        Edit::Untrust(net) => untrust(&mut out, typed, *net),
    };
    Ok(Edited {
        changed: &out != policy,
        policy: out,
        said,
    })
}

/// The `allow` list to edit (a valid policy's is a list, or not set).
fn allow_entries(policy: &mut Policy) -> &mut Vec<Value> {
    let slot = policy
        .entry("allow".to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    slot.as_array_mut().expect("made an array above")
}

fn port_value(port: PortRange) -> Value {
    if port.start == port.end {
        json!(port.start)
    } else {
        json!(port.to_string())
    }
}

fn sources(from: &[IpNet]) -> String {
    if from.is_empty() {
        "anywhere".into()
    } else {
        from.iter()
            .map(IpNet::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn allow(
    policy: &mut Policy,
    typed: &params::Params,
    port: PortRange,
    proto: Proto,
    from: &[IpNet],
    comment: Option<&str>,
) -> String {
    let what = format!("{port}/{}", proto.as_str());
    let found = typed
        .allow
        .iter()
        .position(|a| a.port == port && a.proto == proto);
    let list = allow_entries(policy);
    let Some(i) = found else {
        let mut entry = Map::new();
        entry.insert("port".into(), port_value(port));
        entry.insert("proto".into(), json!(proto.as_str()));
        if !from.is_empty() {
            entry.insert("from".into(), json!(sources_list(from)));
        }
        if let Some(c) = comment {
            entry.insert("comment".into(), json!(c));
        }
        list.push(Value::Object(entry));
        return format!("allowed {what} from {}", sources(from));
    };
    let had = &typed.allow[i].from;
    let entry = list[i].as_object_mut().expect("a valid policy's entry");
    if let Some(c) = comment {
        entry.insert("comment".into(), json!(c));
    }
    if had.is_empty() {
        return format!("{what} was already allowed from anywhere");
    }
    if from.is_empty() {
        entry.remove("from");
        return format!(
            "allowed {what} from anywhere (was from {} only)",
            sources(had)
        );
    }
    let added: Vec<IpNet> = from.iter().filter(|n| !had.contains(n)).copied().collect();
    if added.is_empty() {
        return format!("{what} was already allowed from {}", sources(had));
    }
    let all: Vec<IpNet> = had.iter().chain(&added).copied().collect();
    entry.insert("from".into(), json!(sources_list(&all)));
    format!(
        "allowed {what} from {} too (now from {})",
        sources(&added),
        sources(&all)
    )
}

fn sources_list(from: &[IpNet]) -> Vec<String> {
    from.iter().map(IpNet::to_string).collect()
}

fn deny(
    policy: &mut Policy,
    typed: &params::Params,
    port: PortRange,
    proto: Option<Proto>,
) -> Result<String, String> {
    let proto_ok = |p: Proto| proto.is_none_or(|want| want == p);
    let what = match proto {
        Some(p) => format!("{port}/{}", p.as_str()),
        None => port.to_string(),
    };
    let exact: Vec<usize> = (0..typed.allow.len())
        .filter(|&i| typed.allow[i].port == port && proto_ok(typed.allow[i].proto))
        .collect();
    if exact.is_empty() {
        if let Some(wider) = typed
            .allow
            .iter()
            .find(|a| proto_ok(a.proto) && a.port.start <= port.end && port.start <= a.port.end)
        {
            return Err(format!(
                "{what} is not an entry of the allow list but overlaps the allowed {}/{}; deny \
                 that entry and allow what should stay open (`ufw_docker deny {}/{}`)",
                wider.port,
                wider.proto.as_str(),
                wider.port,
                wider.proto.as_str()
            ));
        }
        return Ok(format!("{what} was not in the allow list"));
    }
    let removed: Vec<String> = exact
        .iter()
        .map(|&i| format!("{}/{}", typed.allow[i].port, typed.allow[i].proto.as_str()))
        .collect();
    let list = allow_entries(policy);
    for &i in exact.iter().rev() {
        list.remove(i);
    }
    Ok(format!(
        "took {} out of the allow list",
        removed.join(" and ")
    ))
}

/// The `trusted_networks` entries as written, one per parsed network (a comma-separated string,
/// which Ansible's list coercion also accepts, becomes one entry each).
fn trusted_entries(policy: &Policy, typed: &params::Params) -> Vec<Value> {
    match policy.get("trusted_networks") {
        Some(Value::Array(items)) if items.len() == typed.trusted_networks.len() => items.clone(),
        _ => typed
            .trusted_networks
            .iter()
            .map(|n| json!(n.to_string()))
            .collect(),
    }
}

fn trust(policy: &mut Policy, typed: &params::Params, net: IpNet) -> String {
    if typed.trusted_networks.contains(&net) {
        return format!("{net} was already trusted");
    }
    let mut list = trusted_entries(policy, typed);
    list.push(json!(net.to_string()));
    policy.insert("trusted_networks".into(), Value::Array(list));
    format!("trusted {net} on every published port")
}

fn untrust(policy: &mut Policy, typed: &params::Params, net: IpNet) -> String {
    if !typed.trusted_networks.contains(&net) {
        return format!("{net} was not trusted");
    }
    let keep: Vec<Value> = typed
        .trusted_networks
        .iter()
        .zip(trusted_entries(policy, typed))
        .filter(|(t, _)| **t != net)
        .map(|(_, v)| v)
        .collect();
    policy.insert("trusted_networks".into(), Value::Array(keep));
    format!("stopped trusting {net}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> Policy {
        parse("/p.json", text).unwrap()
    }

    fn typed(p: &Policy) -> params::Params {
        params::parse_args(&Value::Object(p.clone()).to_string())
            .unwrap()
            .params
    }

    fn edited(text: &str, change: Edit) -> Edited {
        let p = policy(text);
        edit(&p, &typed(&p), &change).unwrap()
    }

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    fn port(start: u16, end: u16) -> PortRange {
        PortRange { start, end }
    }

    fn allow(p: u16, from: &[&str]) -> Edit {
        Edit::Allow {
            port: port(p, p),
            proto: Proto::Tcp,
            from: from.iter().map(|n| parse_cidr(n).unwrap()).collect(),
            comment: None,
        }
    }

    #[test]
    fn an_empty_docker_host_is_saved_as_unset_like_null() {
        // ansible-core 2.15 hands the role's null docker_host over as "", 2.19 as null.
        let older = saved_form(&json!({"allow": [{"port": 443}], "docker_host": ""}));
        let newer = saved_form(&json!({"allow": [{"port": 443}], "docker_host": null}));
        assert_eq!(older, newer);
        assert_eq!(Value::Object(older), json!({"allow": [{"port": 443}]}));
        let set = saved_form(&json!({"docker_host": "unix:///run/docker.sock"}));
        assert_eq!(
            Value::Object(set),
            json!({"docker_host": "unix:///run/docker.sock"})
        );
    }

    #[test]
    fn a_run_saves_its_parameters_without_ansibles_keys_the_file_options_or_nulls() {
        let args = json!({
            "allow": [{"port": 443}], "docker_host": null, "policy_file": "/etc/x.json",
            "command_path": "/usr/local/sbin/ufw_docker",
            "_ansible_check_mode": false, "_ansible_diff": true,
        });
        let saved = saved_form(&args);
        assert_eq!(
            Value::Object(saved.clone()),
            json!({"allow": [{"port": 443}]})
        );
        assert_eq!(saved_form(&json!({"ANSIBLE_MODULE_ARGS": args})), saved);
        assert_eq!(
            render(&saved),
            "{\n  \"allow\": [\n    {\n      \"port\": 443\n    }\n  ]\n}\n"
        );
        assert!(holds(Some(render(&saved).as_bytes()), &saved));
        assert!(
            holds(Some(b"{\"allow\":[{\"port\":443}]}"), &saved),
            "spacing ignored"
        );
        assert!(!holds(Some(b"{\"allow\":[{\"port\":444}]}"), &saved));
        assert!(!holds(Some(b"not json"), &saved));
        assert!(!holds(None, &saved));
    }

    #[test]
    fn a_policy_file_is_one_object_without_ansibles_keys_or_its_own_path() {
        assert!(parse("/p", "{}").unwrap().is_empty());
        for (text, needle) in [
            ("{", "is not valid JSON"),
            ("[]", "must be one JSON object"),
            (r#"{"_ansible_diff": true}"#, "which is Ansible's"),
            (r#"{"policy_file": "/p"}"#, "names the file itself"),
            (r#"{"command_path": "/c"}"#, "no part of a policy"),
        ] {
            let e = parse("/p", text).unwrap_err();
            assert!(e.starts_with("the policy /p "), "{e}");
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn ports_and_cidrs_are_read_as_the_module_reads_them() {
        assert_eq!(parse_port("443"), Ok((port(443, 443), None)));
        assert_eq!(
            parse_port("8000:8100/udp"),
            Ok((port(8000, 8100), Some(Proto::Udp)))
        );
        assert_eq!(parse_port("53/tcp"), Ok((port(53, 53), Some(Proto::Tcp))));
        assert!(parse_port("0").unwrap_err().contains("outside 1-65535"));
        assert!(parse_port("443/icmp").unwrap_err().contains("not 'icmp'"));
        assert!(parse_port("9:8").is_err());
        assert_eq!(parse_cidr("192.0.2.9/24"), Ok(net("192.0.2.0/24")));
        assert_eq!(parse_cidr("2001:db8::1"), Ok(net("2001:db8::1/128")));
        assert!(parse_cidr("example.com").is_err());
    }

    #[test]
    fn allow_adds_an_entry_then_adds_sources_and_never_narrows() {
        let e = edited("{}", allow(443, &[]));
        assert!(e.changed);
        assert_eq!(e.said, "allowed 443/tcp from anywhere");
        assert_eq!(
            Value::Object(e.policy),
            json!({"allow": [{"port": 443, "proto": "tcp"}]})
        );

        let text = r#"{"allow": [{"port": "22", "from": ["192.0.2.0/24"]}], "log": false}"#;
        let e = edited(text, allow(22, &["198.51.100.7", "192.0.2.0/24"]));
        assert_eq!(
            e.said,
            "allowed 22/tcp from 198.51.100.7/32 too (now from 192.0.2.0/24, 198.51.100.7/32)"
        );
        assert_eq!(
            Value::Object(e.policy),
            json!({"allow": [{"port": "22", "from": ["192.0.2.0/24", "198.51.100.7/32"]}],
                   "log": false})
        );
        let e = edited(text, allow(22, &["192.0.2.0/24"]));
        assert!(!e.changed);
        assert_eq!(e.said, "22/tcp was already allowed from 192.0.2.0/24");
        let e = edited(text, allow(22, &[]));
        assert_eq!(
            e.said,
            "allowed 22/tcp from anywhere (was from 192.0.2.0/24 only)"
        );
        assert_eq!(Value::Object(e.policy)["allow"], json!([{"port": "22"}]));

        let e = edited(r#"{"allow": [{"port": 80}]}"#, allow(80, &["192.0.2.0/24"]));
        assert!(!e.changed, "anywhere stays anywhere");
        assert_eq!(e.said, "80/tcp was already allowed from anywhere");

        let e = edited(
            r#"{"allow": [{"port": 53}]}"#,
            Edit::Allow {
                port: port(53, 53),
                proto: Proto::Udp,
                from: vec![],
                comment: Some("dns".into()),
            },
        );
        assert_eq!(
            Value::Object(e.policy)["allow"],
            json!([{"port": 53}, {"port": 53, "proto": "udp", "comment": "dns"}]),
            "another protocol is another entry"
        );
        let e = edited(
            r#"{"allow": [{"port": 8000}]}"#,
            Edit::Allow {
                port: port(8000, 8100),
                proto: Proto::Tcp,
                from: vec![],
                comment: None,
            },
        );
        assert_eq!(
            Value::Object(e.policy)["allow"][1],
            json!({"port": "8000:8100", "proto": "tcp"})
        );
    }

    #[test]
    fn deny_takes_exact_entries_out_and_refuses_to_split_a_range() {
        let text = r#"{"allow": [{"port": 53}, {"port": 53, "proto": "udp"}, {"port": 80}]}"#;
        let both = edited(
            text,
            Edit::Deny {
                port: port(53, 53),
                proto: None,
            },
        );
        assert_eq!(both.said, "took 53/tcp and 53/udp out of the allow list");
        assert_eq!(Value::Object(both.policy)["allow"], json!([{"port": 80}]));
        let udp = edited(
            text,
            Edit::Deny {
                port: port(53, 53),
                proto: Some(Proto::Udp),
            },
        );
        assert_eq!(
            Value::Object(udp.policy)["allow"],
            json!([{"port": 53}, {"port": 80}])
        );
        let none = edited(
            text,
            Edit::Deny {
                port: port(443, 443),
                proto: None,
            },
        );
        assert!(!none.changed);
        assert_eq!(none.said, "443 was not in the allow list");

        let p = policy(r#"{"allow": [{"port": "8000:8100"}]}"#);
        let e = edit(
            &p,
            &typed(&p),
            &Edit::Deny {
                port: port(8080, 8080),
                proto: None,
            },
        )
        .unwrap_err();
        assert!(e.contains("`ufw_docker deny 8000:8100/tcp`"), "{e}");
    }

    #[test]
    fn trust_and_untrust_keep_the_other_networks_as_written() {
        let text = r#"{"trusted_networks": ["10.0.0.1/8", "2001:db8::/32"]}"#;
        let e = edited(text, Edit::Trust(net("192.0.2.0/24")));
        assert_eq!(e.said, "trusted 192.0.2.0/24 on every published port");
        assert_eq!(
            Value::Object(e.policy)["trusted_networks"],
            json!(["10.0.0.1/8", "2001:db8::/32", "192.0.2.0/24"])
        );
        let e = edited(text, Edit::Trust(net("10.0.0.0/8")));
        assert!(!e.changed, "10.0.0.1/8 is 10.0.0.0/8");
        let e = edited(text, Edit::Untrust(net("10.0.0.0/8")));
        assert_eq!(e.said, "stopped trusting 10.0.0.0/8");
        assert_eq!(
            Value::Object(e.policy)["trusted_networks"],
            json!(["2001:db8::/32"])
        );
        let e = edited(text, Edit::Untrust(net("192.0.2.0/24")));
        assert!(!e.changed);
        assert_eq!(e.said, "192.0.2.0/24 was not trusted");
        // Ansible's list coercion accepts one comma-separated string: an edit writes a list.
        let e = edited(
            r#"{"trusted_networks": "10.0.0.0/8, 192.0.2.0/24"}"#,
            Edit::Untrust(net("10.0.0.0/8")),
        );
        assert_eq!(
            Value::Object(e.policy)["trusted_networks"],
            json!(["192.0.2.0/24"])
        );
    }
}
