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
