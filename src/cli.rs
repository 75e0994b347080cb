//! The command-line verbs, for one host without Ansible: `status`, `check`, `help` and
//! `--version`. Read-only: every verb runs the module in check mode (no lock, nothing written)
//! on the policy file and reads its result.
//!
//! Which mode a run is in is decided by argv[1] alone (`is_command`): a known verb, or anything
//! starting with `-`, is a command; anything else is the path of Ansible's arguments file, as
//! always, and no argument at all means Ansible's JSON on stdin. An arguments file named like a
//! verb is given with a `/` (`./status`). Argument parsing is hand-written (no dependency).

use serde_json::Value;

use crate::host::Host;
use crate::module;
use crate::params;
use crate::status::{self, Sync};

/// Where the policy is read unless `--policy` says otherwise.
pub const DEFAULT_POLICY: &str = "/etc/ufw-docker/policy.json";

/// The exit codes of the verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done; for `check`: the host is in sync with the policy.
    Ok,
    /// The policy is invalid or the host could not be read.
    Error,
    /// The command line is wrong.
    Usage,
    /// `check`: a run of the module would change the host (drifted).
    Drifted,
    /// `check`: the module's block and rules are not on the host at all.
    NotInstalled,
}

impl Exit {
    /// The process exit status: the one place the numbers are.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Error => 1,
            Exit::Usage => 2,
            Exit::Drifted => 3,
            Exit::NotInstalled => 4,
        }
    }
}

/// The verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Status,
    Check,
    Help,
}

const VERBS: [(&str, Verb); 3] = [
    ("status", Verb::Status),
    ("check", Verb::Check),
    ("help", Verb::Help),
];

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Version,
    /// General help, or a verb's.
    Help(Option<Verb>),
    Status {
        json: bool,
        policy: String,
    },
    Check {
        diff: bool,
        policy: String,
    },
}

/// A command line that cannot be run, with what to type instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage(pub String);

/// What a verb prints, and how it exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub exit: Exit,
    pub stdout: String,
    pub stderr: String,
}

/// Whether argv[1] makes this run a command rather than Ansible's module protocol.
pub fn is_command(first: &str) -> bool {
    first.starts_with('-') || VERBS.iter().any(|(name, _)| *name == first)
}

fn verb(name: &str) -> Option<Verb> {
    VERBS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// Parses the arguments after the program name (argv[1..], argv[1] a command).
pub fn parse(args: &[String]) -> Result<Command, Usage> {
    let Some((first, rest)) = args.split_first() else {
        return Ok(Command::Help(None));
    };
    match first.as_str() {
        "--version" | "-V" if rest.is_empty() => return Ok(Command::Version),
        "--help" | "-h" if rest.is_empty() => return Ok(Command::Help(None)),
        _ => {}
    }
    let Some(v) = verb(first) else {
        return Err(Usage(format!(
            "unknown command or option '{first}'; the verbs are status and check (`ufw_docker \
             --help`), and an Ansible arguments file named like an option is given as ./{first}"
        )));
    };
    if v == Verb::Help {
        return match rest {
            [] => Ok(Command::Help(None)),
            [name] => match verb(name) {
                Some(v) => Ok(Command::Help(Some(v))),
                None => Err(Usage(format!(
                    "no help on '{name}': the verbs are status and check"
                ))),
            },
            _ => Err(Usage(
                "help takes one verb: `ufw_docker help status`".into(),
            )),
        };
    }
    let name = first.as_str();
    let (mut flag, mut policy) = (false, DEFAULT_POLICY.to_string());
    let flag_name = if v == Verb::Status {
        "--json"
    } else {
        "--diff"
    };
    let mut i = 0;
    while i < rest.len() {
        let arg = rest[i].as_str();
        if arg == "--help" || arg == "-h" {
            return Ok(Command::Help(Some(v)));
        } else if arg == flag_name {
            flag = true;
        } else if arg == "--policy" {
            i += 1;
            policy = rest
                .get(i)
                .filter(|p| !p.is_empty())
                .ok_or_else(|| {
                    Usage(format!(
                        "--policy needs a file: `ufw_docker {name} --policy /path/policy.json`"
                    ))
                })?
                .clone();
        } else if let Some(p) = arg.strip_prefix("--policy=") {
            if p.is_empty() {
                return Err(Usage(format!(
                    "--policy needs a file: `ufw_docker {name} --policy /path/policy.json`"
                )));
            }
            policy = p.to_string();
        } else {
            return Err(Usage(format!(
                "unknown argument '{arg}' for {name}; see `ufw_docker help {name}`"
            )));
        }
        i += 1;
    }
    Ok(match v {
        Verb::Status => Command::Status { json: flag, policy },
        _ => Command::Check { diff: flag, policy },
    })
}

/// The general help.
pub const HELP: &str = "\
ufw_docker: keeps ports published by Docker behind UFW (DOCKER-USER and after.rules).

Usage:
  ufw_docker status [--json] [--policy FILE]   who on the internet reaches each
                                               published port, and whether the host
                                               matches the policy
  ufw_docker check [--diff] [--policy FILE]    whether a run would change the host
  ufw_docker help [VERB]                       this text, or a verb's
  ufw_docker --version
  ufw_docker ARGS_FILE | ufw_docker < ARGS     the Ansible module protocol

Both verbs only read: they run the module in check mode and write nothing.

The policy is a JSON object of the module's parameters (allow, trusted_networks, ...;
see the README), default /etc/ufw-docker/policy.json; when it does not exist, the
module's defaults apply (nothing published is allowed from the internet).

Exit codes: 0 done (check: in sync), 1 error (bad policy, host unreadable), 2 usage,
3 drifted (check: a run would change the host), 4 not installed (check: no
ufw_docker block or rules on the host).

An argument that is a verb or starts with '-' is a command; anything else is the
path of Ansible's arguments file. An arguments file named like a verb is given
with a '/': `ufw_docker ./status`.
";

const HELP_STATUS: &str = "\
Usage: ufw_docker status [--json] [--policy FILE]

Prints one row per port Docker publishes (and family): protocol, host address and
port, container (Docker's name, else its address), network, and who on the internet
reaches it now: open, restricted (to the listed sources), blocked or unknown (a rule
ufw_docker does not recognise decides). Above the table: whether the host is in sync
with the policy, drifted (which files and live chains a run would change), or not
installed. Colour only on a terminal, and never with NO_COLOR set.

  --json         print the module's own result (check mode, with diff) instead
  --policy FILE  the policy (default /etc/ufw-docker/policy.json)

Exit codes: 0 shown (whatever the sync state), 1 error, 2 usage.
";

const HELP_CHECK: &str = "\
Usage: ufw_docker check [--diff] [--policy FILE]

Plans a run of the module with the policy, in check mode (nothing is written), and
says whether the host is in sync.

  --diff         print what would change, as a unified diff per file and live chain
  --policy FILE  the policy (default /etc/ufw-docker/policy.json)

Exit codes: 0 in sync, 1 error, 2 usage, 3 drifted, 4 not installed.
";

/// The help text of a verb, or the general one.
pub fn help(v: Option<Verb>) -> &'static str {
    match v {
        Some(Verb::Status) => HELP_STATUS,
        Some(Verb::Check) => HELP_CHECK,
        Some(Verb::Help) | None => HELP,
    }
}

/// Runs a command line (argv[1..]) against `host`; `color`: stdout is a terminal and NO_COLOR
/// is unset.
pub fn main_with(args: &[String], host: &dyn Host, color: bool) -> Report {
    match parse(args) {
        Ok(cmd) => run(&cmd, host, color),
        Err(Usage(msg)) => Report {
            exit: Exit::Usage,
            stdout: String::new(),
            stderr: format!("ufw_docker: {msg}\n"),
        },
    }
}

/// Runs a parsed command.
pub fn run(cmd: &Command, host: &dyn Host, color: bool) -> Report {
    let ok = |stdout: String| Report {
        exit: Exit::Ok,
        stdout,
        stderr: String::new(),
    };
    match cmd {
        Command::Version => ok(format!("ufw_docker {}\n", env!("CARGO_PKG_VERSION"))),
        Command::Help(v) => ok(help(*v).to_string()),
        Command::Status { json, policy } => match plan(host, policy) {
            Err(msg) => error("status", &msg),
            Ok((result, _)) if *json => ok(format!("{result:#}\n")),
            Ok((result, words)) => {
                let view = status::view(&result, words);
                ok(status::render(&view, color))
            }
        },
        Command::Check { diff, policy } => match plan(host, policy) {
            Err(msg) => error("check", &msg),
            Ok((result, words)) => check(&result, &words, *diff),
        },
    }
}

fn error(verb: &str, msg: &str) -> Report {
    Report {
        exit: Exit::Error,
        stdout: String::new(),
        stderr: format!("ufw_docker {verb}: {}\n", msg.replace('\n', " ")),
    }
}

fn check(result: &Value, policy: &str, want_diff: bool) -> Report {
    let sync = status::sync_of(result);
    let mut stdout = format!("{} (policy: {policy})\n", status::sync_line(&sync));
    if want_diff {
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
                stdout.push_str(&format!(
                    "--- {}\n+++ {}\n{text}",
                    d["before_header"].as_str().unwrap_or(""),
                    d["after_header"].as_str().unwrap_or("")
                ));
            }
        }
    } else if sync != Sync::InSync {
        stdout.push_str("(`ufw_docker check --diff` shows the changes)\n");
    }
    let stderr = result["warnings"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
        .map(|w| format!("ufw_docker check: warning: {w}\n"))
        .collect();
    let exit = match sync {
        Sync::InSync => Exit::Ok,
        Sync::Drifted(_) => Exit::Drifted,
        Sync::NotInstalled => Exit::NotInstalled,
    };
    Report {
        exit,
        stdout,
        stderr,
    }
}

/// Reads and validates the policy, then runs the module on it in check mode with diff.
/// Returns the module's result and where the policy came from, in words.
fn plan(host: &dyn Host, path: &str) -> Result<(Value, String), String> {
    let (text, words) = match host.read(std::path::Path::new(path)) {
        Ok(Some(bytes)) => (
            String::from_utf8_lossy(&bytes).into_owned(),
            path.to_string(),
        ),
        Ok(None) => (
            "{}".to_string(),
            format!("none at {path}: the module's defaults"),
        ),
        Err(e) => return Err(format!("cannot read the policy {path}: {e:#}")),
    };
    let mut value: Value = serde_json::from_str(&text).map_err(|e| {
        format!("the policy {path} is not valid JSON ({e}); write one object of the module's parameters")
    })?;
    let Some(object) = value.as_object_mut() else {
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
    object.insert("_ansible_check_mode".into(), Value::Bool(true));
    object.insert("_ansible_diff".into(), Value::Bool(true));
    let args = value.to_string();
    params::parse_args(&args).map_err(|e| format!("the policy {path}: {}", e.0))?;
    let out = module::run(&args, host);
    if out.failed {
        return Err(out.json["msg"]
            .as_str()
            .unwrap_or("the module failed")
            .to_string());
    }
    Ok((out.json, words))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_host::FakeHost;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    fn parsed(line: &str) -> Result<Command, Usage> {
        parse(&args(line))
    }

    #[test]
    fn verbs_and_options_start_a_command_and_anything_else_is_an_args_file() {
        for first in ["status", "check", "help", "--version", "-h", "--help", "-x"] {
            assert!(is_command(first), "{first}");
        }
        for first in [
            "./status",
            "/tmp/check",
            "args.json",
            "status.json",
            "apply",
        ] {
            assert!(!is_command(first), "{first}");
        }
    }

    #[test]
    fn every_verb_parses() {
        let default = || DEFAULT_POLICY.to_string();
        assert_eq!(parsed("--version"), Ok(Command::Version));
        assert_eq!(parsed("-V"), Ok(Command::Version));
        assert_eq!(parsed(""), Ok(Command::Help(None)));
        assert_eq!(parsed("--help"), Ok(Command::Help(None)));
        assert_eq!(parsed("help"), Ok(Command::Help(None)));
        assert_eq!(parsed("help check"), Ok(Command::Help(Some(Verb::Check))));
        assert_eq!(parsed("status -h"), Ok(Command::Help(Some(Verb::Status))));
        assert_eq!(
            parsed("status"),
            Ok(Command::Status {
                json: false,
                policy: default()
            })
        );
        assert_eq!(
            parsed("status --json --policy /p.json"),
            Ok(Command::Status {
                json: true,
                policy: "/p.json".into()
            })
        );
        assert_eq!(
            parsed("check --policy=/p.json --diff"),
            Ok(Command::Check {
                diff: true,
                policy: "/p.json".into()
            })
        );
        assert_eq!(
            parsed("check"),
            Ok(Command::Check {
                diff: false,
                policy: default()
            })
        );
    }

    #[test]
    fn bad_command_lines_exit_2_with_what_to_type() {
        let host = FakeHost::new();
        for (line, needle) in [
            ("--bogus", "unknown command or option '--bogus'"),
            ("--version extra", "unknown command or option '--version'"),
            ("status --diff", "unknown argument '--diff' for status"),
            ("check --json", "unknown argument '--json' for check"),
            ("check extra", "see `ufw_docker help check`"),
            ("status --policy", "--policy needs a file"),
            ("status --policy=", "--policy needs a file"),
            ("help apply", "no help on 'apply'"),
            ("help status check", "help takes one verb"),
        ] {
            let r = main_with(&args(line), &host, false);
            assert_eq!(r.exit, Exit::Usage, "{line}");
            assert_eq!(r.exit.code(), 2);
            assert!(r.stderr.contains(needle), "{line}: {}", r.stderr);
            assert!(r.stderr.starts_with("ufw_docker: ") && r.stderr.lines().count() == 1);
            assert!(r.stdout.is_empty());
        }
        assert!(host.transcript().is_empty(), "nothing read");
    }

    #[test]
    fn version_and_help_exit_0_and_read_nothing() {
        let host = FakeHost::new();
        let v = main_with(&args("--version"), &host, false);
        assert_eq!(
            (v.exit.code(), v.stdout.as_str()),
            (0, "ufw_docker 0.1.0\n")
        );
        let h = main_with(&args("help"), &host, false);
        assert_eq!(h.exit, Exit::Ok);
        assert!(h.stdout.contains("ufw_docker ./status"), "{}", h.stdout);
        for verb in ["allow", "deny", "trust", "apply", "remove"] {
            assert!(!h.stdout.contains(&format!("ufw_docker {verb}")), "{verb}");
        }
        assert!(main_with(&args("help check"), &host, false)
            .stdout
            .contains("3 drifted"));
        for text in [HELP, HELP_STATUS, HELP_CHECK] {
            for line in text.lines() {
                assert!(line.chars().count() <= 86, "{line}");
            }
        }
        assert!(host.transcript().is_empty());
    }

    #[test]
    fn the_exit_codes_are_0_1_2_3_4() {
        let codes: Vec<u8> = [
            Exit::Ok,
            Exit::Error,
            Exit::Usage,
            Exit::Drifted,
            Exit::NotInstalled,
        ]
        .iter()
        .map(|e| e.code())
        .collect();
        assert_eq!(codes, [0, 1, 2, 3, 4]);
    }

    const POLICY: &str = r#"{"allow": [{"port": 8080}], "trusted_networks": ["192.168.50.0/24"]}"#;

    fn host_with_policy(policy: &str) -> FakeHost {
        let host = FakeHost::new();
        host.set_file(DEFAULT_POLICY, policy.as_bytes());
        host
    }

    #[test]
    fn check_says_not_installed_then_in_sync_after_a_run_then_drifted() {
        let host = host_with_policy(POLICY);
        let before = host.snapshot();
        let r = main_with(&args("check"), &host, false);
        assert_eq!(r.exit, Exit::NotInstalled, "{r:?}");
        assert_eq!(r.exit.code(), 4);
        assert!(r.stdout.starts_with("not installed:"), "{}", r.stdout);
        assert_eq!(host.snapshot(), before, "check writes nothing");
        assert!(!host.transcript().contains(&"lock".to_string()), "no lock");

        assert!(!module::run(POLICY, &host).failed);
        let r = main_with(&args("check"), &host, false);
        assert_eq!((r.exit, r.exit.code()), (Exit::Ok, 0), "{r:?}");
        assert_eq!(
            r.stdout,
            "in sync: a run of the module would change nothing (policy: \
             /etc/ufw-docker/policy.json)\n"
        );

        host.set_file(DEFAULT_POLICY, br#"{"allow": [{"port": 8081}]}"#);
        let r = main_with(&args("check --diff"), &host, false);
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
        assert!(
            r.stdout.contains("\n-") && r.stdout.contains("8081"),
            "{}",
            r.stdout
        );
    }

    #[test]
    fn status_shows_the_table_through_the_modules_check_mode() {
        let host = host_with_policy(POLICY);
        let r = main_with(&args("status"), &host, false);
        assert_eq!(r.exit, Exit::Ok, "{r:?}");
        assert!(r.stdout.contains("host:   not installed:"), "{}", r.stdout);
        assert!(
            r.stdout
                .contains("tcp    0.0.0.0:8080  shop-web-1  docker0  open\n"),
            "{}",
            r.stdout
        );
        module::run(POLICY, &host);
        let r = main_with(&args("status"), &host, false);
        assert!(r.stdout.contains("host:   in sync:"), "{}", r.stdout);
        assert!(
            r.stdout.contains("shop-web-1  docker0  open\n"),
            "{}",
            r.stdout
        );
        host.set_file(DEFAULT_POLICY, b"{}");
        let r = main_with(&args("status"), &host, false);
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
        let r = main_with(&args("status --json"), &host, false);
        let json: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(json["check_mode"], true);
        assert_eq!(json["changed"], true);
        assert_eq!(json["published"][0]["container"], "shop-web-1");
    }

    #[test]
    fn a_missing_policy_means_the_modules_defaults_and_says_so() {
        let host = FakeHost::new();
        let r = main_with(&args("status --policy /nowhere.json"), &host, false);
        assert_eq!(r.exit, Exit::Ok, "{r:?}");
        assert!(
            r.stdout
                .starts_with("policy: none at /nowhere.json: the module's defaults\n"),
            "{}",
            r.stdout
        );
    }

    #[test]
    fn a_bad_policy_is_one_line_on_stderr_and_exit_1() {
        for (policy, needle) in [
            ("{\"allow\": [", "is not valid JSON"),
            ("[1]", "must be one JSON object"),
            (
                r#"{"alow": []}"#,
                "the policy /etc/ufw-docker/policy.json: Unsupported parameters",
            ),
            (r#"{"allow": [{"port": 70000}]}"#, "outside 1-65535"),
            (r#"{"_ansible_check_mode": false}"#, "which is Ansible's"),
        ] {
            let host = host_with_policy(policy);
            for verb in ["status", "check"] {
                let r = main_with(&args(verb), &host, false);
                assert_eq!((r.exit, r.exit.code()), (Exit::Error, 1), "{policy}");
                assert!(r.stderr.contains(needle), "{policy}: {}", r.stderr);
                assert!(r.stderr.starts_with(&format!("ufw_docker {verb}: ")));
                assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
                assert!(r.stdout.is_empty());
            }
            assert!(
                !host.transcript().iter().any(|l| l.contains("iptables")),
                "validated before the host is read"
            );
        }
    }

    #[test]
    fn a_host_that_cannot_be_read_is_exit_1() {
        let host = host_with_policy(POLICY);
        host.set_file(
            "/etc/ufw/after.rules",
            b"# BEGIN UFW-DOCKER MANAGED BLOCK\n",
        );
        let r = main_with(&args("check"), &host, false);
        assert_eq!(r.exit, Exit::Error, "{r:?}");
        assert!(r.stderr.contains("never closed"), "{}", r.stderr);
    }
}
