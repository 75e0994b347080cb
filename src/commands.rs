//! Carrying out a parsed command line (`cli`): every verb reads the policy file, turns it into
//! the module's own arguments and runs the module on them, in check mode for `status` and
//! `check`; `allow`, `deny`, `trust` and `untrust` first edit the policy (`policy_file`),
//! validate it with the module's parser and save it, under the run lock, then apply it and put
//! the file back if that fails. What is printed is read from the module's result (`status`).
//! No firewall knowledge here.

use std::path::Path;

use serde_json::Value;

use crate::cli::{help, Command, Exit, Report};
use crate::host::{Host, LockGuard};
use crate::module;
use crate::params;
use crate::policy_file::{self, Edit, Policy};
use crate::status::{self, Sync};

/// Runs a parsed command against `host`; `color`: stdout is a terminal and NO_COLOR is unset.
pub fn run(cmd: &Command, host: &dyn Host, color: bool) -> Report {
    let outcome = match cmd {
        Command::Version => Ok(done(format!("ufw_docker {}\n", env!("CARGO_PKG_VERSION")))),
        Command::Help(v) => Ok(done(help(*v).to_string())),
        Command::Status { json, policy } => status(host, policy, *json, color),
        Command::Check { diff, policy } => check(host, policy, *diff),
        Command::Apply {
            check,
            diff,
            policy,
        } => apply(host, policy, Run::new(*check, *diff, false)),
        Command::Remove {
            check,
            diff,
            purge,
            policy,
        } => remove(host, policy, Run::new(*check, *diff, true), *purge),
        Command::Edit {
            edit,
            no_apply,
            policy,
        } => edit_and_apply(host, policy, edit, *no_apply),
    };
    outcome.unwrap_or_else(|msg| Report {
        exit: Exit::Error,
        stdout: String::new(),
        stderr: format!(
            "ufw_docker {}: {}\n",
            verb_name(cmd),
            msg.replace('\n', " ")
        ),
    })
}

fn verb_name(cmd: &Command) -> &'static str {
    match cmd {
        Command::Version | Command::Help(_) => "help",
        Command::Status { .. } => "status",
        Command::Check { .. } => "check",
        Command::Apply { .. } => "apply",
        Command::Remove { .. } => "remove",
        Command::Edit { edit, .. } => verb_of(edit),
    }
}

fn done(stdout: String) -> Report {
    Report {
        exit: Exit::Ok,
        stdout,
        stderr: String::new(),
    }
}

/// How the module is run: check mode, diff, and state absent (`remove`).
#[derive(Debug, Clone, Copy)]
struct Run {
    check: bool,
    diff: bool,
    absent: bool,
}

impl Run {
    fn new(check: bool, diff: bool, absent: bool) -> Self {
        Run {
            check,
            diff,
            absent,
        }
    }
}

/// A policy file as read: its parameters (the module's defaults when there is no file), its
/// bytes, and where it came from in words.
struct Loaded {
    policy: Policy,
    /// The policy's parameters, as the module's parser reads them.
    typed: params::Params,
    bytes: Option<Vec<u8>>,
    words: String,
}

/// Reads and validates the policy at `path`.
fn load(host: &dyn Host, path: &str) -> Result<Loaded, String> {
    let bytes = host
        .read(Path::new(path))
        .map_err(|e| format!("cannot read the policy {path}: {e:#}"))?;
    let (policy, words) = match &bytes {
        Some(b) => (
            policy_file::parse(path, &String::from_utf8_lossy(b))?,
            path.to_string(),
        ),
        None => (
            Policy::new(),
            format!("none at {path}: the module's defaults"),
        ),
    };
    let typed = validate(path, &policy)?;
    Ok(Loaded {
        policy,
        typed,
        bytes,
        words,
    })
}

/// The module's own validation of a policy's parameters.
fn validate(path: &str, policy: &Policy) -> Result<params::Params, String> {
    params::parse_args(&Value::Object(policy.clone()).to_string())
        .map(|p| p.params)
        .map_err(|e| format!("the policy {path}: {}", e.0))
}

/// The module's arguments for a run on `policy`.
fn module_args(policy: &Policy, run: Run) -> String {
    let mut args = policy.clone();
    args.insert("_ansible_check_mode".into(), Value::Bool(run.check));
    args.insert("_ansible_diff".into(), Value::Bool(run.diff || run.check));
    if run.absent {
        args.insert("state".into(), Value::from("absent"));
    }
    Value::Object(args).to_string()
}

/// Runs the module (taking the run lock unless `held`); its failure message is the error.
fn run_module(
    host: &dyn Host,
    policy: &Policy,
    run: Run,
    held: Option<&LockGuard>,
) -> Result<Value, String> {
    let args = module_args(policy, run);
    let out = match held {
        Some(guard) => module::run_locked(&args, host, guard),
        None => module::run(&args, host),
    };
    if out.failed {
        return Err(out.json["msg"]
            .as_str()
            .unwrap_or("the module failed")
            .to_string());
    }
    Ok(out.json)
}

/// The module's warnings, for stderr.
fn warnings(verb: &str, result: &Value) -> String {
    result["warnings"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
        .map(|w| format!("ufw_docker {verb}: warning: {w}\n"))
        .collect()
}

/// The unified diffs of a result run with `_ansible_diff`.
fn diffs(result: &Value) -> String {
    let mut out = String::new();
    for d in result["diff"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let text = status::unified_diff(
            d["before"].as_str().unwrap_or(""),
            d["after"].as_str().unwrap_or(""),
        );
        if !text.is_empty() {
            out.push_str(&format!(
                "--- {}\n+++ {}\n{text}",
                d["before_header"].as_str().unwrap_or(""),
                d["after_header"].as_str().unwrap_or("")
            ));
        }
    }
    out
}

fn status(host: &dyn Host, path: &str, json: bool, color: bool) -> Result<Report, String> {
    let loaded = load(host, path)?;
    let result = run_module(host, &loaded.policy, Run::new(true, true, false), None)?;
    if json {
        return Ok(done(format!("{result:#}\n")));
    }
    let view = status::view(&result, loaded.words);
    Ok(done(status::render(&view, color)))
}

fn check(host: &dyn Host, path: &str, want_diff: bool) -> Result<Report, String> {
    let loaded = load(host, path)?;
    let result = run_module(host, &loaded.policy, Run::new(true, true, false), None)?;
    let sync = status::sync_of(&result);
    let mut stdout = format!("{} (policy: {})\n", status::sync_line(&sync), loaded.words);
    if want_diff {
        stdout.push_str(&diffs(&result));
    } else if sync != Sync::InSync {
        stdout.push_str(
            "(`ufw_docker check --diff` shows the changes, `ufw_docker apply` makes them)\n",
        );
    }
    let exit = match sync {
        Sync::InSync => Exit::Ok,
        Sync::Drifted(_) => Exit::Drifted,
        Sync::NotInstalled => Exit::NotInstalled,
    };
    Ok(Report {
        exit,
        stdout,
        stderr: warnings("check", &result),
    })
}

/// What a run did (or, in check mode, would do) to the host: the module's message, the
/// published ports whose reach it changes, and the diffs when asked.
fn host_lines(result: &Value, run: Run) -> String {
    let changed = result["changed"] == true;
    let mut out = match (changed, run.check) {
        (false, _) => "host:   in sync: nothing to change\n".to_string(),
        (true, _) => format!("host:   {}\n", result["msg"].as_str().unwrap_or("changed")),
    };
    for line in status::reach_changes(result, !run.check) {
        out.push_str(&format!("        {line}\n"));
    }
    if run.diff {
        out.push_str(&diffs(result));
    }
    out
}

fn apply(host: &dyn Host, path: &str, run: Run) -> Result<Report, String> {
    let loaded = load(host, path)?;
    let result = run_module(host, &loaded.policy, run, None)?;
    Ok(Report {
        exit: Exit::Ok,
        stdout: format!("policy: {}\n{}", loaded.words, host_lines(&result, run)),
        stderr: warnings("apply", &result),
    })
}

fn remove(host: &dyn Host, path: &str, run: Run, purge: bool) -> Result<Report, String> {
    let loaded = load(host, path)?;
    let result = run_module(host, &loaded.policy, run, None)?;
    let mut stdout = host_lines(&result, run);
    let kept = match (purge, run.check, &loaded.bytes) {
        (_, _, None) => format!("policy: none at {path}\n"),
        (true, true, Some(_)) => format!("policy: {path} would be deleted (--purge)\n"),
        (true, false, Some(_)) => {
            host.remove_file(Path::new(path)).map_err(|e| {
                format!(
                    "ufw_docker's rules are removed, but the policy could not be deleted: {e:#}"
                )
            })?;
            format!("policy: {path} deleted (--purge)\n")
        }
        (false, _, Some(_)) => format!(
            "policy: {path} kept (`ufw_docker apply` puts the rules back; --purge deletes it)\n"
        ),
    };
    stdout.insert_str(0, &kept);
    Ok(Report {
        exit: Exit::Ok,
        stdout,
        stderr: warnings("remove", &result),
    })
}

/// `allow`, `deny`, `trust`, `untrust`: under the run lock, edit the policy, validate it with
/// the module's parser, save it, and apply it; when applying fails (the module has put the host
/// back), the file is put back too, so the policy never says what the host refused.
fn edit_and_apply(
    host: &dyn Host,
    path: &str,
    change: &Edit,
    no_apply: bool,
) -> Result<Report, String> {
    let guard = host.lock().map_err(|e| format!("{e:#}"))?;
    let loaded = load(host, path)?;
    let edited = policy_file::edit(&loaded.policy, &loaded.typed, change)
        .map_err(|e| format!("{e}; nothing was saved"))?;
    validate(path, &edited.policy)
        .map_err(|e| format!("{e}; nothing was saved, the policy is as it was"))?;
    let file = Path::new(path);
    if edited.changed {
        save(host, file, &policy_file::render(&edited.policy))?;
    }
    let mut stdout = format!(
        "policy: {} ({path} {})\n",
        edited.said,
        if edited.changed { "saved" } else { "unchanged" }
    );
    if no_apply {
        stdout
            .push_str("host:   not changed (--no-apply); `ufw_docker apply` applies the policy\n");
        return Ok(done(stdout));
    }
    let run = Run::new(false, false, false);
    match run_module(host, &edited.policy, run, Some(&guard)) {
        Ok(result) => {
            stdout.push_str(&host_lines(&result, run));
            Ok(Report {
                exit: Exit::Ok,
                stdout,
                stderr: warnings(verb_of(change), &result),
            })
        }
        Err(msg) if edited.changed => {
            let put_back = match &loaded.bytes {
                Some(bytes) => host.write_atomic(file, bytes),
                None => host.remove_file(file),
            };
            Err(match put_back {
                Ok(()) => format!("{msg}; the policy {path} was put back as it was"),
                Err(e) => format!(
                    "{msg}; and the policy {path} could not be put back ({e:#}): it holds the \
                     change the host refused"
                ),
            })
        }
        Err(msg) => Err(msg),
    }
}

fn verb_of(change: &Edit) -> &'static str {
    match change {
        Edit::Allow { .. } => "allow",
        Edit::Deny { .. } => "deny",
        Edit::Trust(_) => "trust",
        Edit::Untrust(_) => "untrust",
    }
}

/// Writes the policy file atomically, making its directory first.
fn save(host: &dyn Host, file: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        host.create_dir_all(dir)
            .map_err(|e| format!("cannot save the policy: {e:#}; nothing was saved"))?;
    }
    host.write_atomic(file, text.as_bytes())
        .map_err(|e| format!("cannot save the policy: {e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{main_with, DEFAULT_POLICY};
    use crate::fake_host::{FakeHost, Reply, AFTER_RULES};

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    fn run(host: &FakeHost, line: &str) -> Report {
        main_with(&args(line), host, false)
    }

    fn policy_json(host: &FakeHost) -> Value {
        serde_json::from_slice(&host.file(DEFAULT_POLICY).expect("a policy file")).unwrap()
    }

    const POLICY: &str = r#"{"allow": [{"port": 8080}], "trusted_networks": ["192.168.50.0/24"]}"#;
    /// Without UFW's own route rules, which in the fixture let 8080 in whatever the policy.
    const NO_ROUTES: &str = r#"{"ufw_route_rules": false}"#;

    fn host_with_policy(policy: &str) -> FakeHost {
        let host = FakeHost::new();
        host.set_file(DEFAULT_POLICY, policy.as_bytes());
        host
    }

    #[test]
    fn check_says_not_installed_then_in_sync_after_apply_then_drifted() {
        let host = host_with_policy(POLICY);
        let before = host.snapshot();
        let r = run(&host, "check");
        assert_eq!((r.exit, r.exit.code()), (Exit::NotInstalled, 4), "{r:?}");
        assert!(r.stdout.starts_with("not installed:"), "{}", r.stdout);
        assert_eq!(host.snapshot(), before, "check writes nothing");
        assert!(!host.transcript().contains(&"lock".to_string()), "no lock");

        let r = run(&host, "apply");
        assert_eq!(r.exit, Exit::Ok, "{r:?}");
        let r = run(&host, "check");
        assert_eq!((r.exit, r.exit.code()), (Exit::Ok, 0), "{r:?}");
        assert_eq!(
            r.stdout,
            "in sync: a run of the module would change nothing (policy: \
             /etc/ufw-docker/policy.json)\n"
        );

        host.set_file(DEFAULT_POLICY, br#"{"allow": [{"port": 8081}]}"#);
        let r = run(&host, "check --diff");
        assert_eq!((r.exit, r.exit.code()), (Exit::Drifted, 3), "{r:?}");
        assert!(
            r.stdout.starts_with(
                "drifted: a run would change /etc/ufw/after.rules, /etc/ufw/after6.rules, \
                 live DOCKER-USER (ipv4), live DOCKER-USER (ipv6)"
            ),
            "{}",
            r.stdout
        );
        assert!(
            r.stdout.contains(
                "--- /etc/ufw/after.rules (before)\n+++ /etc/ufw/after.rules (after)\n@@ "
            ),
            "{}",
            r.stdout
        );
        assert!(
            r.stdout.contains("\n--- DOCKER-USER ipv4 (live, before)\n"),
            "{}",
            r.stdout
        );
        assert!(r.stdout.contains("8081"), "{}", r.stdout);
    }

    #[test]
    fn status_shows_the_table_through_the_modules_check_mode() {
        let host = host_with_policy(POLICY);
        let r = run(&host, "status");
        assert_eq!(r.exit, Exit::Ok, "{r:?}");
        assert!(r.stdout.contains("host:   not installed:"), "{}", r.stdout);
        assert!(
            r.stdout
                .contains("tcp    0.0.0.0:8080  shop-web-1  docker0  open\n"),
            "{}",
            r.stdout
        );
        run(&host, "apply");
        let r = run(&host, "status");
        assert!(r.stdout.contains("host:   in sync:"), "{}", r.stdout);
        host.set_file(DEFAULT_POLICY, b"{}");
        let r = run(&host, "status");
        assert!(
            r.stdout.contains("host:   drifted: a run would change"),
            "{}",
            r.stdout
        );
        for line in r.stdout.lines() {
            assert!(line.chars().count() <= 80, "{line}");
        }
    }

    #[test]
    fn status_json_is_the_modules_check_mode_result() {
        let host = host_with_policy(POLICY);
        let r = run(&host, "status --json");
        let json: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(json["check_mode"], true);
        assert_eq!(json["changed"], true);
        assert_eq!(json["published"][0]["container"], "shop-web-1");
    }

    #[test]
    fn a_missing_policy_means_the_modules_defaults_and_says_so() {
        let host = FakeHost::new();
        let r = run(&host, "status --policy /nowhere.json");
        assert_eq!(r.exit, Exit::Ok, "{r:?}");
        assert!(
            r.stdout
                .starts_with("policy: none at /nowhere.json: the module's defaults\n"),
            "{}",
            r.stdout
        );
        let r = run(&host, "apply --policy /nowhere.json");
        assert_eq!(r.exit, Exit::Ok, "{r:?}");
        assert!(r.stdout.starts_with("policy: none at /nowhere.json"));
        assert_eq!(host.file("/nowhere.json"), None, "apply saves no policy");
    }

    #[test]
    fn a_bad_policy_is_one_line_on_stderr_and_exit_1_for_every_verb() {
        for (policy, needle) in [
            ("{\"allow\": [", "is not valid JSON"),
            ("[1]", "must be one JSON object"),
            (
                r#"{"alow": []}"#,
                "the policy /etc/ufw-docker/policy.json: Unsupported parameters",
            ),
            (r#"{"allow": [{"port": 70000}]}"#, "outside 1-65535"),
            (r#"{"_ansible_check_mode": false}"#, "which is Ansible's"),
            (r#"{"policy_file": "/x.json"}"#, "names the file itself"),
            (r#"{"command_path": "/usr/bin/x"}"#, "no part of a policy"),
        ] {
            let host = host_with_policy(policy);
            let before = host.snapshot();
            for verb in [
                "status",
                "check",
                "apply",
                "remove",
                "allow 443",
                "trust 192.0.2.0/24",
            ] {
                let r = run(&host, verb);
                assert_eq!((r.exit, r.exit.code()), (Exit::Error, 1), "{policy} {verb}");
                assert!(r.stderr.contains(needle), "{policy}: {}", r.stderr);
                let name = verb.split(' ').next().unwrap();
                assert!(r.stderr.starts_with(&format!("ufw_docker {name}: ")));
                assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
                assert!(r.stdout.is_empty());
            }
            assert_eq!(host.snapshot(), before, "nothing written");
            assert!(
                !host.transcript().iter().any(|l| l.contains("iptables")),
                "validated before the host is read"
            );
        }
    }

    #[test]
    fn a_host_that_cannot_be_read_is_exit_1() {
        let host = host_with_policy(POLICY);
        host.set_file(AFTER_RULES, b"# BEGIN UFW-DOCKER MANAGED BLOCK\n");
        for verb in ["check", "status", "apply"] {
            let r = run(&host, verb);
            assert_eq!(r.exit, Exit::Error, "{r:?}");
            assert!(r.stderr.contains("never closed"), "{}", r.stderr);
        }
    }

    #[test]
    fn allow_saves_the_policy_and_applies_it_under_one_lock_and_deny_closes_the_port() {
        let host = host_with_policy(NO_ROUTES);
        let r = run(&host, "allow 8080");
        assert_eq!(r.exit, Exit::Ok, "{r:?}");
        assert_eq!(
            r.stdout,
            "policy: allowed 8080/tcp from anywhere (/etc/ufw-docker/policy.json saved)\n\
             host:   changed: /etc/ufw/after.rules, /etc/ufw/after6.rules, live DOCKER-USER \
             (ipv4), live DOCKER-USER (ipv6)\n"
        );
        assert_eq!(
            policy_json(&host),
            serde_json::json!({"ufw_route_rules": false, "allow": [{"port": 8080, "proto": "tcp"}]})
        );
        let t = host.transcript();
        assert_eq!(t.iter().filter(|l| *l == "lock").count(), 1, "{t:?}");
        let lock = t.iter().position(|l| l == "lock").unwrap();
        let save = t
            .iter()
            .position(|l| l == "write /etc/ufw-docker/policy.json")
            .unwrap();
        let first_write = t
            .iter()
            .position(|l| l == "write /etc/ufw/after.rules")
            .unwrap();
        assert!(lock < save && save < first_write, "{t:?}");
        assert_eq!(run(&host, "check").exit, Exit::Ok);

        let r = run(&host, "deny 8080");
        assert_eq!(r.exit, Exit::Ok, "{r:?}");
        assert!(
            r.stdout.starts_with(
                "policy: took 8080/tcp out of the allow list (/etc/ufw-docker/policy.json saved)\n\
                 host:   changed: /etc/ufw/after.rules, "
            ),
            "{}",
            r.stdout
        );
        assert!(
            r.stdout
                .ends_with("\n        tcp 0.0.0.0:8080 shop-web-1 (docker0): open -> blocked\n"),
            "{}",
            r.stdout
        );
        assert_eq!(policy_json(&host)["allow"], serde_json::json!([]));
        assert_eq!(run(&host, "check").exit, Exit::Ok);

        let r = run(&host, "deny 8080");
        assert_eq!(
            r.stdout,
            "policy: 8080 was not in the allow list (/etc/ufw-docker/policy.json unchanged)\n\
             host:   in sync: nothing to change\n"
        );
    }

    #[test]
    fn trust_and_untrust_edit_the_trusted_networks() {
        let host = FakeHost::new();
        let r = run(&host, "trust 192.0.2.0/24 --no-apply");
        assert_eq!(r.exit, Exit::Ok, "{r:?}");
        assert_eq!(
            r.stdout,
            "policy: trusted 192.0.2.0/24 on every published port (/etc/ufw-docker/policy.json \
             saved)\nhost:   not changed (--no-apply); `ufw_docker apply` applies the policy\n"
        );
        assert!(host
            .transcript()
            .contains(&"mkdir -p /etc/ufw-docker".to_string()));
        assert_eq!(
            policy_json(&host),
            serde_json::json!({"trusted_networks": ["192.0.2.0/24"]})
        );
        assert_eq!(run(&host, "check").exit, Exit::NotInstalled, "not applied");
        let r = run(&host, "untrust 192.0.2.0/24");
        assert_eq!(r.exit, Exit::Ok, "{r:?}");
        assert!(r
            .stdout
            .starts_with("policy: stopped trusting 192.0.2.0/24 ("));
        assert_eq!(
            policy_json(&host),
            serde_json::json!({"trusted_networks": []})
        );
        assert_eq!(run(&host, "check").exit, Exit::Ok);
    }

    #[test]
    fn an_edit_the_module_refuses_is_never_saved() {
        let host = host_with_policy(POLICY);
        let before = host.snapshot();
        let r = run(&host, "allow 443 --comment a\"b");
        assert_eq!(r.exit, Exit::Error, "{r:?}");
        assert!(
            r.stderr
                .contains("allow[1].comment contains the character \""),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("nothing was saved"), "{}", r.stderr);
        assert_eq!(host.snapshot(), before);
        host.set_file(DEFAULT_POLICY, br#"{"allow": [{"port": "8000:8100"}]}"#);
        let r = run(&host, "deny 8080");
        assert_eq!(r.exit, Exit::Error, "{r:?}");
        assert!(
            r.stderr
                .contains("overlaps the allowed 8000:8100/tcp; deny that entry"),
            "{}",
            r.stderr
        );
    }

    #[test]
    fn an_edit_that_fails_to_apply_puts_the_policy_back() {
        for (before, after) in [(Some(POLICY), Some(POLICY)), (None, None)] {
            let host = FakeHost::new().without_ipv6();
            if let Some(p) = before {
                host.set_file(DEFAULT_POLICY, p.as_bytes());
            }
            host.reply(
                "iptables-restore",
                &["-w", "30", "--noflush"],
                [Reply::exit(2, "iptables-restore: line 5 failed")],
            );
            let r = run(&host, "allow 9090");
            assert_eq!((r.exit, r.exit.code()), (Exit::Error, 1), "{r:?}");
            assert!(
                r.stderr.starts_with("ufw_docker allow: `iptables-restore"),
                "{}",
                r.stderr
            );
            assert!(
                r.stderr
                    .ends_with("; the policy /etc/ufw-docker/policy.json was put back as it was\n"),
                "{}",
                r.stderr
            );
            assert_eq!(
                host.file(DEFAULT_POLICY),
                after.map(|p| p.as_bytes().to_vec())
            );
        }
    }

    #[test]
    fn apply_check_plans_only_and_apply_twice_changes_once() {
        let host = host_with_policy(POLICY);
        let before = host.snapshot();
        let r = run(&host, "apply --check");
        assert_eq!(r.exit, Exit::Ok, "{r:?}");
        assert!(
            r.stdout
                .contains("host:   would change: /etc/ufw/after.rules"),
            "{}",
            r.stdout
        );
        assert_eq!(host.snapshot(), before);
        let r = run(&host, "apply --diff");
        assert!(r.stdout.contains("host:   changed: "), "{}", r.stdout);
        assert!(
            r.stdout.contains("+++ /etc/ufw/after.rules (after)"),
            "{}",
            r.stdout
        );
        let r = run(&host, "apply");
        assert_eq!(
            r.stdout,
            "policy: /etc/ufw-docker/policy.json\nhost:   in sync: nothing to change\n"
        );
    }

    #[test]
    fn remove_gives_after_rules_back_byte_for_byte_and_purge_deletes_the_policy() {
        let host = host_with_policy(POLICY);
        let original = host.file(AFTER_RULES).unwrap();
        assert_eq!(run(&host, "apply").exit, Exit::Ok);
        assert_ne!(host.file(AFTER_RULES).unwrap(), original);
        let r = run(&host, "remove");
        assert_eq!(r.exit, Exit::Ok, "{r:?}");
        assert!(
            r.stdout.starts_with(
                "policy: /etc/ufw-docker/policy.json kept (`ufw_docker apply` puts the rules \
                 back; --purge deletes it)\nhost:   changed: /etc/ufw/after.rules"
            ),
            "{}",
            r.stdout
        );
        assert_eq!(host.file(AFTER_RULES).unwrap(), original);
        assert_eq!(run(&host, "check").exit, Exit::NotInstalled);
        assert_eq!(run(&host, "apply").exit, Exit::Ok);
        assert_eq!(run(&host, "check").exit, Exit::Ok);
        let r = run(&host, "remove --purge");
        assert!(
            r.stdout
                .starts_with("policy: /etc/ufw-docker/policy.json deleted (--purge)\n"),
            "{}",
            r.stdout
        );
        assert_eq!(host.file(AFTER_RULES).unwrap(), original);
        assert_eq!(host.file(DEFAULT_POLICY), None);
    }
}
