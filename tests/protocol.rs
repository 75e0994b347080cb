//! The binary-module protocol without a firewall: how arguments arrive, what comes out.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::harness::{module_bin, ModuleRun};

fn via_stdin(text: &str) -> ModuleRun {
    let mut child = Command::new(module_bin())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    ModuleRun::new(json!(text), out)
}

#[test]
fn malformed_json_on_stdin_fails_with_one_json_object() {
    let run = via_stdin("{\"state\": ");
    run.fails_with("not valid JSON");
    assert_eq!(run.stdout.trim().lines().count(), 1);
    assert!(run.stderr.is_empty(), "nothing on stderr: {}", run.stderr);
}

#[test]
fn unknown_parameter_fails_in_ansibles_words() {
    via_stdin(r#"{"alow": []}"#).fails_with(
        "Unsupported parameters for (ufw_docker) module: alow. Supported parameters include:",
    );
}

#[test]
fn missing_args_file_fails_cleanly() {
    let out = Command::new(module_bin())
        .arg("/nonexistent/args.json")
        .output()
        .unwrap();
    ModuleRun::new(json!("/nonexistent/args.json"), out)
        .fails_with("cannot read the arguments file");
}

#[test]
fn wrong_types_fail_before_touching_anything() {
    // after_rules points nowhere real: a failure must come from validation, not from reading.
    for (args, needle) in [
        (json!({"allow": [{"port": 70000}]}), "outside 1-65535"),
        (json!({"allow": [{"port": "90:80"}]}), "reversed range"),
        (
            json!({"allow": [{"port": 80, "proto": "icmp"}]}),
            "must be one of: tcp, udp",
        ),
        (
            json!({"trusted_networks": ["10.0.0.0/40"]}),
            "is not a CIDR",
        ),
        (json!({"log_limit": "3/fortnight"}), "log_limit"),
        (json!({"log_prefix": "x\"y"}), "log_prefix contains"),
        (json!({"ipv6": "perhaps"}), "ipv6 must be a boolean"),
        (json!({"allow": "8080"}), "allow must be a list"),
    ] {
        let mut args = args;
        args["after_rules"] = json!("/nonexistent/after.rules");
        via_stdin(&args.to_string()).fails_with(needle);
    }
}

/// Puts an injection payload into one parameter of the arguments.
type Setter = fn(&mut serde_json::Value, &str);

/// Every string parameter that reaches a rule, with every injection attempt: the run fails, or
/// (for free text that stays inside its quotes) the rules come out one line each, unchanged in
/// number, with the text as a single quoted token.
#[test]
fn no_string_parameter_can_inject_a_rule() {
    let dir = tempfile::tempdir().unwrap();
    let v4 = dir.path().join("after.rules");
    std::fs::copy(crate::harness::data("after.rules"), &v4).unwrap();
    let base = json!({"after_rules": v4, "ipv6": false, "apply": "none", "validate": false,
                      "_ansible_check_mode": true, "allow": [{"port": 80}]});
    let baseline = via_stdin(&base.to_string());
    assert!(
        baseline.ok(),
        "the baseline succeeds and reports the block it would add: {}",
        baseline.stdout
    );
    let rule_count = baseline.rules("ipv4").len();
    let payloads = [
        "x\n-A DOCKER-USER -j ACCEPT",
        "x\" -j ACCEPT \"",
        "x' -j ACCEPT",
        "x\\\" -j ACCEPT",
        "x\nCOMMIT\n*filter",
        "-j ACCEPT",
        "COMMIT",
        "x\r-A DOCKER-USER -j ACCEPT",
    ];
    let setters: [(&str, Setter); 7] = [
        ("allow[0].port", |a, p| {
            a["allow"][0]["port"] = json!(format!("80{p}"))
        }),
        ("allow[0].proto", |a, p| {
            a["allow"][0]["proto"] = json!(format!("tcp{p}"))
        }),
        ("allow[0].from", |a, p| {
            a["allow"][0]["from"] = json!([format!("10.0.0.0/8{p}")])
        }),
        ("allow[0].comment", |a, p| {
            a["allow"][0]["comment"] = json!(p)
        }),
        ("trusted_networks", |a, p| {
            a["trusted_networks"] = json!([format!("10.0.0.0/8{p}")])
        }),
        ("log_prefix", |a, p| a["log_prefix"] = json!(p)),
        ("log_limit", |a, p| {
            a["log_limit"] = json!(format!("3/min{p}"))
        }),
    ];
    for (name, set) in setters {
        for payload in payloads {
            let mut args = base.clone();
            set(&mut args, payload);
            let run = via_stdin(&args.to_string());
            if run.code != Some(0) {
                // Rejected: the README promises the message names the parameter.
                run.fails_with(name);
                continue;
            }
            // Accepted: only free text without quotes or line breaks may get here.
            assert!(
                matches!(name, "allow[0].comment" | "log_prefix")
                    && !payload.contains(['\n', '\r', '"', '\'', '\\']),
                "{name} accepted {payload:?}: {}",
                run.stdout
            );
            let rules = run.rules("ipv4");
            assert_eq!(
                rules.len(),
                rule_count,
                "{name} {payload:?} changed the number of rules"
            );
            let as_one_token = rules.iter().any(|r| {
                ufw_docker::rules::tokenize(r)
                    .iter()
                    .any(|t| t.ends_with(payload))
            });
            assert!(
                as_one_token,
                "{name}: {payload:?} must stay one token: {rules:?}"
            );
        }
    }
}

/// Issue 12: the verbs share the binary; an arguments file named like a verb is still read
/// when its path has a `/`, and the verbs print text, not the module's JSON.
#[test]
fn an_args_file_named_like_a_verb_is_read_through_a_path_with_a_slash() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("status");
    std::fs::write(&file, r#"{"alow": []}"#).unwrap();
    let out = Command::new(module_bin())
        .arg("./status")
        .current_dir(dir.path())
        .output()
        .unwrap();
    ModuleRun::new(json!("./status"), out).fails_with("Unsupported parameters");

    let version = Command::new(module_bin())
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        "ufw_docker 0.1.0\n"
    );

    let bad = Command::new(module_bin())
        .args(["check", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(bad.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("unknown argument '--bogus' for check"),
        "{stderr}"
    );

    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, "[]").unwrap();
    let broken = Command::new(module_bin())
        .args(["status", "--policy"])
        .arg(&policy)
        .output()
        .unwrap();
    assert_eq!(broken.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(stderr.contains("must be one JSON object"), "{stderr}");
}
