//! The command line, for one host without Ansible: which verb, with which options, and the help
//! and exit codes that document them. `commands` carries a parsed command out.
//!
//! Which mode a run is in is decided by argv[1] alone (`is_command`): a known verb, or anything
//! starting with `-`, is a command; anything else is the path of Ansible's arguments file, as
//! always (Ansible passes an absolute path), and no argument at all means Ansible's JSON on
//! stdin. An arguments file named like a verb is given with a `/` (`./status`). Argument parsing
//! is hand-written: a table of each verb's options, no dependency.

use crate::commands;
use crate::host::Host;
use crate::params::{PortRange, Proto};
use crate::policy_file::{self, Edit};

/// Where the policy is read (and edited) unless `--policy` says otherwise.
pub const DEFAULT_POLICY: &str = policy_file::DEFAULT_PATH;

/// The exit codes of the verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done; for `check`: the host is in sync with the policy.
    Ok,
    /// The policy is invalid, the host could not be read, or a change failed (and was undone).
    Error,
    /// The command line is wrong.
    Usage,
    /// `check`: a run would change the host (drifted).
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
    Apply,
    Allow,
    Deny,
    Trust,
    Untrust,
    Remove,
    Help,
}

/// Each verb's name, the options it takes (`--policy` and `--help` go with every one), and
/// what its positional argument is (`None`: it takes none).
const VERBS: [(&str, Verb, &[&str], Option<&str>); 9] = [
    ("status", Verb::Status, &["--json"], None),
    ("check", Verb::Check, &["--diff"], None),
    ("apply", Verb::Apply, &["--check", "--diff"], None),
    (
        "allow",
        Verb::Allow,
        &["--from", "--comment", "--no-apply"],
        Some("PORT[:END][/tcp|udp]"),
    ),
    (
        "deny",
        Verb::Deny,
        &["--no-apply"],
        Some("PORT[:END][/tcp|udp]"),
    ),
    ("trust", Verb::Trust, &["--no-apply"], Some("CIDR")),
    ("untrust", Verb::Untrust, &["--no-apply"], Some("CIDR")),
    (
        "remove",
        Verb::Remove,
        &["--check", "--diff", "--purge"],
        None,
    ),
    ("help", Verb::Help, &[], None),
];

/// Options that take a value (`--from CIDR` or `--from=CIDR`).
const WITH_VALUE: [&str; 3] = ["--policy", "--from", "--comment"];

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
    /// The policy to the host (`check`: plan only).
    Apply {
        check: bool,
        diff: bool,
        policy: String,
    },
    /// The module's `state: absent` with the policy's other parameters; `purge`: then delete
    /// the policy file.
    Remove {
        check: bool,
        diff: bool,
        purge: bool,
        policy: String,
    },
    /// `allow`, `deny`, `trust`, `untrust`: edit the policy, then (unless `no_apply`) apply it.
    Edit {
        edit: Edit,
        no_apply: bool,
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
    first.starts_with('-') || verb(first).is_some()
}

fn verb(name: &str) -> Option<Verb> {
    VERBS.iter().find(|v| v.0 == name).map(|v| v.1)
}

fn entry(
    v: Verb,
) -> &'static (
    &'static str,
    Verb,
    &'static [&'static str],
    Option<&'static str>,
) {
    VERBS
        .iter()
        .find(|e| e.1 == v)
        .expect("every verb is in VERBS")
}

fn verb_list() -> String {
    let names: Vec<&str> = VERBS.iter().map(|v| v.0).filter(|n| *n != "help").collect();
    names.join(", ")
}

/// The options of one command line, as given.
#[derive(Default)]
struct Given {
    flags: Vec<&'static str>,
    from: Vec<String>,
    comment: Option<String>,
    policy: Option<String>,
    positional: Vec<String>,
}

impl Given {
    fn has(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }
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
            "unknown command or option '{first}'; the verbs are {} (`ufw_docker --help`), and \
             an Ansible arguments file named like an option is given as ./{first}",
            verb_list()
        )));
    };
    if v == Verb::Help {
        return match rest {
            [] => Ok(Command::Help(None)),
            [name] => match verb(name) {
                Some(v) => Ok(Command::Help(Some(v))),
                None => Err(Usage(format!(
                    "no help on '{name}': the verbs are {}",
                    verb_list()
                ))),
            },
            _ => Err(Usage(
                "help takes one verb: `ufw_docker help status`".into(),
            )),
        };
    }
    let Some(given) = options(v, rest)? else {
        return Ok(Command::Help(Some(v)));
    };
    command(v, given)
}

/// Reads a verb's options and positional arguments; `None` when `--help` is among them.
fn options(v: Verb, rest: &[String]) -> Result<Option<Given>, Usage> {
    let (name, _, allowed, _) = entry(v);
    let mut given = Given::default();
    let mut i = 0;
    while i < rest.len() {
        let arg = rest[i].as_str();
        i += 1;
        if arg == "--help" || arg == "-h" {
            return Ok(None);
        }
        if !arg.starts_with('-') || arg == "-" {
            given.positional.push(arg.to_string());
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, value)) => (f, Some(value.to_string())),
            None => (arg, None),
        };
        let known = allowed
            .iter()
            .chain(&["--policy"])
            .find(|f| **f == flag)
            .ok_or_else(|| {
                Usage(format!(
                    "unknown argument '{arg}' for {name}; see `ufw_docker help {name}`"
                ))
            })?;
        if !WITH_VALUE.contains(known) {
            if inline.is_some() {
                return Err(Usage(format!(
                    "{known} takes no value; see `ufw_docker help {name}`"
                )));
            }
            given.flags.push(known);
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => {
                i += 1;
                rest.get(i - 1).cloned().unwrap_or_default()
            }
        };
        if value.is_empty() {
            return Err(Usage(match *known {
                "--policy" => {
                    format!("--policy needs a file: `ufw_docker {name} --policy /path/policy.json`")
                }
                "--from" => {
                    "--from needs a source: `ufw_docker allow 443 --from 192.0.2.0/24`".to_string()
                }
                _ => "--comment needs a text: `ufw_docker allow 443 --comment web`".to_string(),
            }));
        }
        match *known {
            "--policy" => given.policy = Some(value),
            "--from" => given.from.push(value),
            _ => given.comment = Some(value),
        }
    }
    Ok(Some(given))
}

/// The command a verb's options make.
fn command(v: Verb, given: Given) -> Result<Command, Usage> {
    let (name, _, _, takes) = entry(v);
    match (takes, given.positional.len()) {
        (None, 0) => {}
        (None, _) => {
            return Err(Usage(format!(
                "{name} takes no argument ('{}'); see `ufw_docker help {name}`",
                given.positional[0]
            )))
        }
        (Some(_), 1) => {}
        (Some(what), n) => {
            return Err(Usage(format!(
                "{name} takes one {what}{}; e.g. `ufw_docker {name} {}`",
                if n == 0 { "" } else { ", not more" },
                example(v)
            )))
        }
    }
    let policy = given
        .policy
        .clone()
        .unwrap_or_else(|| DEFAULT_POLICY.to_string());
    let (check, diff) = (given.has("--check"), given.has("--diff"));
    let no_apply = given.has("--no-apply");
    let arg = given.positional.first().map(String::as_str).unwrap_or("");
    let bad = |e: String| Usage(format!("{name}: {e}"));
    let edit = match v {
        Verb::Status => {
            return Ok(Command::Status {
                json: given.has("--json"),
                policy,
            })
        }
        Verb::Check => return Ok(Command::Check { diff, policy }),
        Verb::Apply => {
            return Ok(Command::Apply {
                check,
                diff,
                policy,
            })
        }
        Verb::Remove => {
            return Ok(Command::Remove {
                check,
                diff,
                purge: given.has("--purge"),
                policy,
            })
        }
        Verb::Allow => {
            let (port, proto) = port_arg(arg).map_err(bad)?;
            let from = given
                .from
                .iter()
                .map(|f| policy_file::parse_cidr(f))
                .collect::<Result<Vec<_>, _>>()
                .map_err(bad)?;
            Edit::Allow {
                port,
                proto: proto.unwrap_or(Proto::Tcp),
                from,
                comment: given.comment.clone(),
            }
        }
        Verb::Deny => {
            let (port, proto) = port_arg(arg).map_err(bad)?;
            Edit::Deny { port, proto }
        }
        Verb::Trust => Edit::Trust(policy_file::parse_cidr(arg).map_err(bad)?),
        Verb::Untrust => Edit::Untrust(policy_file::parse_cidr(arg).map_err(bad)?),
        Verb::Help => unreachable!("help is parsed before its options"),
    };
    Ok(Command::Edit {
        edit,
        no_apply,
        policy,
    })
}

fn port_arg(text: &str) -> Result<(PortRange, Option<Proto>), String> {
    policy_file::parse_port(text)
}

fn example(v: Verb) -> &'static str {
    match v {
        Verb::Allow | Verb::Deny => "443/tcp",
        _ => "192.0.2.0/24",
    }
}

/// The general help.
pub const HELP: &str = "\
ufw_docker: keeps the ports Docker publishes behind UFW (DOCKER-USER chain).

Usage:
  ufw_docker status [--json]            who on the internet reaches each port
                                        Docker publishes; is the host in sync
  ufw_docker allow PORT[:END][/tcp|udp] [--from CIDR]... [--comment TEXT]
                                        let the internet (or those sources) in
  ufw_docker deny PORT[:END][/tcp|udp]  take it out of the allow list
  ufw_docker trust CIDR                 let a network reach every published port
  ufw_docker untrust CIDR               stop trusting it
  ufw_docker check [--diff]             whether the host matches the policy
  ufw_docker apply [--check] [--diff]   make the host match the policy
  ufw_docker remove [--purge]           take ufw_docker's rules off the host
  ufw_docker help [VERB]                this text, or a verb's
  ufw_docker --version
  ufw_docker ARGS_FILE | ufw_docker < ARGS   the Ansible module protocol

Every verb takes --policy FILE (default /etc/ufw-docker/policy.json): a JSON
object of the module's parameters (allow, trusted_networks, ...; see the
README). Where it does not exist, the module's defaults apply: nothing
published is allowed from the internet. allow, deny, trust and untrust save
the policy (validated first, written atomically) and apply it at once, unless
--no-apply; a change that fails to apply is undone, policy file included.

Exit codes: 0 done (check: in sync), 1 error (bad policy, host unreadable, a
change that failed and was undone), 2 usage, 3 drifted (check: a run would
change the host), 4 not installed (check: no ufw_docker block or rules on the
host).

An argument that is a verb or starts with '-' is a command; anything else is
the path of Ansible's arguments file. An arguments file named like a verb is
given with a '/': `ufw_docker ./status`.
";

const HELP_STATUS: &str = "\
Usage: ufw_docker status [--json] [--policy FILE]

Prints one row per port Docker publishes (and family): protocol, host address
and port, container (Docker's name, else its address), network, and who on the
internet reaches it now: open, restricted (to the listed sources), blocked or
unknown (a rule ufw_docker does not recognise decides). Above the table:
whether the host is in sync with the policy, drifted (which files and live
chains a run would change), or not installed. Colour only on a terminal, and
never with NO_COLOR set. Writes nothing.

  --json         print the module's own result (check mode, with diff) instead
  --policy FILE  the policy (default /etc/ufw-docker/policy.json)

Exit codes: 0 shown (whatever the sync state), 1 error, 2 usage.
";

const HELP_CHECK: &str = "\
Usage: ufw_docker check [--diff] [--policy FILE]

Plans a run of the module with the policy, in check mode (nothing is written),
and says whether the host is in sync. For monitoring: the exit code is the
answer.

  --diff         print what would change: a unified diff per file and chain
  --policy FILE  the policy (default /etc/ufw-docker/policy.json)

Exit codes: 0 in sync, 1 error, 2 usage, 3 drifted, 4 not installed.
";

const HELP_APPLY: &str = "\
Usage: ufw_docker apply [--check] [--diff] [--policy FILE]

Makes the host match the policy: the after.rules block (UFW backend) and the
live DOCKER-USER chains, validated first, written atomically, put back on any
failure. Prints what changed and which published ports it opened or closed.
The role's ufw-docker.service (iptables backend) runs this whenever Docker
starts.

  --check        plan only, change nothing (like check, but exit 0 if drifted)
  --diff         print the changes: a unified diff per file and chain
  --policy FILE  the policy (default /etc/ufw-docker/policy.json)

Exit codes: 0 done (changed or not), 1 error (the host was put back), 2 usage.
";

const HELP_ALLOW: &str = "\
Usage: ufw_docker allow PORT[:END][/tcp|udp] [--from CIDR]... [--comment TEXT]
                        [--no-apply] [--policy FILE]

Lets the internet reach a published port (or range; tcp unless /udp), or only
the given sources (--from, repeatable). Adds to what is allowed: a port
already allowed from some sources gets these too; allowed from anywhere, it
stays so. PORT is the port Docker publishes on the host (8080 in -p 8080:80),
whichever container it is. The policy is saved and applied at once; the output
says what changed on the host.

  --from CIDR     a source network or address (IPv4 or IPv6)
  --comment TEXT  kept with the rule (plain ASCII, no quotes)
  --no-apply      only save the policy; `ufw_docker apply` applies it later

Exit codes: 0 done, 1 error (nothing saved, or the change was undone), 2
usage.
";

const HELP_DENY: &str = "\
Usage: ufw_docker deny PORT[:END][/tcp|udp] [--no-apply] [--policy FILE]

Takes the port (or range) out of the allow list, for both protocols unless one
is given, and applies the policy: the internet no longer reaches it (trusted
networks still do). A single port inside an allowed range is refused: deny the
range and allow what should stay open. A port not in the list changes nothing
(exit 0).

  --no-apply      only save the policy; `ufw_docker apply` applies it later

Exit codes: 0 done, 1 error (nothing saved, or the change was undone), 2
usage.
";

const HELP_TRUST: &str = "\
Usage: ufw_docker trust CIDR [--no-apply] [--policy FILE]
       ufw_docker untrust CIDR [--no-apply] [--policy FILE]

trust lets a network (IPv4 or IPv6) reach every published port, whatever the
allow list says; untrust takes it out of trusted_networks again. Private
ranges are not trusted unless you say so. The policy is saved and applied at
once.

  --no-apply      only save the policy; `ufw_docker apply` applies it later

Exit codes: 0 done, 1 error (nothing saved, or the change was undone), 2
usage.
";

const HELP_REMOVE: &str = "\
Usage: ufw_docker remove [--check] [--diff] [--purge] [--policy FILE]

The module's state: absent: takes the managed block out of after.rules (the
rest of the file byte for byte as it was) and ufw_docker's rules out of
DOCKER-USER. Docker's published ports are then open to the internet again. The
policy file is kept, so `ufw_docker apply` puts everything back, unless
--purge deletes it.

  --check        plan only, change nothing
  --diff         print the changes: a unified diff per file and chain
  --purge        delete the policy file after a successful removal

Exit codes: 0 done, 1 error (the host was put back), 2 usage.
";

/// The help text of a verb, or the general one.
pub fn help(v: Option<Verb>) -> &'static str {
    match v {
        Some(Verb::Status) => HELP_STATUS,
        Some(Verb::Check) => HELP_CHECK,
        Some(Verb::Apply) => HELP_APPLY,
        Some(Verb::Allow) => HELP_ALLOW,
        Some(Verb::Deny) => HELP_DENY,
        Some(Verb::Trust | Verb::Untrust) => HELP_TRUST,
        Some(Verb::Remove) => HELP_REMOVE,
        Some(Verb::Help) | None => HELP,
    }
}

/// Runs a command line (argv[1..]) against `host`; `color`: stdout is a terminal and NO_COLOR
/// is unset.
pub fn main_with(args: &[String], host: &dyn Host, color: bool) -> Report {
    match parse(args) {
        Ok(cmd) => commands::run(&cmd, host, color),
        Err(Usage(msg)) => Report {
            exit: Exit::Usage,
            stdout: String::new(),
            stderr: format!("ufw_docker: {msg}\n"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    fn parsed(line: &str) -> Result<Command, Usage> {
        parse(&args(line))
    }

    fn policy() -> String {
        DEFAULT_POLICY.to_string()
    }

    fn net(text: &str) -> ipnet::IpNet {
        text.parse().unwrap()
    }

    fn port(start: u16, end: u16) -> PortRange {
        PortRange { start, end }
    }

    #[test]
    fn verbs_and_options_start_a_command_and_anything_else_is_an_args_file() {
        for first in [
            "status",
            "check",
            "apply",
            "allow",
            "deny",
            "trust",
            "untrust",
            "remove",
            "help",
            "--version",
            "-h",
            "--help",
            "-x",
        ] {
            assert!(is_command(first), "{first}");
        }
        // What Ansible passes: an absolute path. A file named like a verb is given with a '/'.
        for first in [
            "./status",
            "/tmp/ansible-tmp-1/args",
            "/root/.ansible/tmp/apply",
            "args.json",
            "status.json",
            "install",
        ] {
            assert!(!is_command(first), "{first}");
        }
    }

    #[test]
    fn the_read_only_verbs_parse() {
        assert_eq!(parsed("--version"), Ok(Command::Version));
        assert_eq!(parsed("-V"), Ok(Command::Version));
        assert_eq!(parsed(""), Ok(Command::Help(None)));
        assert_eq!(parsed("--help"), Ok(Command::Help(None)));
        assert_eq!(parsed("help"), Ok(Command::Help(None)));
        assert_eq!(parsed("help check"), Ok(Command::Help(Some(Verb::Check))));
        assert_eq!(parsed("status -h"), Ok(Command::Help(Some(Verb::Status))));
        assert_eq!(
            parsed("allow 443 --help"),
            Ok(Command::Help(Some(Verb::Allow)))
        );
        assert_eq!(
            parsed("status"),
            Ok(Command::Status {
                json: false,
                policy: policy()
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
    }

    #[test]
    fn apply_and_remove_parse() {
        assert_eq!(
            parsed("apply"),
            Ok(Command::Apply {
                check: false,
                diff: false,
                policy: policy()
            })
        );
        assert_eq!(
            parsed("apply --diff --check --policy /x.json"),
            Ok(Command::Apply {
                check: true,
                diff: true,
                policy: "/x.json".into()
            })
        );
        assert_eq!(
            parsed("remove --purge"),
            Ok(Command::Remove {
                check: false,
                diff: false,
                purge: true,
                policy: policy()
            })
        );
    }

    #[test]
    fn the_editing_verbs_parse_into_edits() {
        let edit = |line: &str| match parsed(line) {
            Ok(Command::Edit {
                edit,
                no_apply,
                policy,
            }) => (edit, no_apply, policy),
            other => panic!("{line}: {other:?}"),
        };
        assert_eq!(
            edit("allow 443"),
            (
                Edit::Allow {
                    port: port(443, 443),
                    proto: Proto::Tcp,
                    from: vec![],
                    comment: None
                },
                false,
                policy()
            )
        );
        assert_eq!(
            edit("allow 8000:8100/udp --from 192.0.2.0/24 --from=2001:db8::/32 --comment=web --no-apply --policy /p"),
            (
                Edit::Allow {
                    port: port(8000, 8100),
                    proto: Proto::Udp,
                    from: vec![net("192.0.2.0/24"), net("2001:db8::/32")],
                    comment: Some("web".into())
                },
                true,
                "/p".into()
            )
        );
        // A source given as an address is that address; host bits are cleared, as the module does.
        assert_eq!(
            edit("allow 22 --from 198.51.100.7").0,
            Edit::Allow {
                port: port(22, 22),
                proto: Proto::Tcp,
                from: vec![net("198.51.100.7/32")],
                comment: None
            }
        );
        assert_eq!(
            edit("deny 443").0,
            Edit::Deny {
                port: port(443, 443),
                proto: None
            }
        );
        assert_eq!(
            edit("deny 53/udp").0,
            Edit::Deny {
                port: port(53, 53),
                proto: Some(Proto::Udp)
            }
        );
        assert_eq!(edit("trust 10.1.2.0/24").0, Edit::Trust(net("10.1.2.0/24")));
        assert_eq!(
            edit("untrust 10.1.2.9/24").0,
            Edit::Untrust(net("10.1.2.0/24"))
        );
    }

    #[test]
    fn bad_command_lines_are_usage_errors_with_what_to_type() {
        for (line, needle) in [
            ("--bogus", "unknown command or option '--bogus'"),
            ("--version extra", "unknown command or option '--version'"),
            ("status --diff", "unknown argument '--diff' for status"),
            ("check --json", "unknown argument '--json' for check"),
            ("check extra", "check takes no argument ('extra')"),
            ("status --policy", "--policy needs a file"),
            ("status --policy=", "--policy needs a file"),
            ("apply --purge", "unknown argument '--purge' for apply"),
            ("apply --check=yes", "--check takes no value"),
            (
                "remove --no-apply",
                "unknown argument '--no-apply' for remove",
            ),
            ("help install", "no help on 'install'"),
            ("help status check", "help takes one verb"),
            (
                "allow",
                "allow takes one PORT[:END][/tcp|udp]; e.g. `ufw_docker allow 443/tcp`",
            ),
            (
                "allow 80 443",
                "allow takes one PORT[:END][/tcp|udp], not more",
            ),
            ("allow 70000", "allow: PORT 70000 is outside 1-65535"),
            ("allow http", "allow: PORT 'http' is not a port"),
            ("allow 443/sctp", "the protocol is tcp or udp, not 'sctp'"),
            ("allow 443 --from", "--from needs a source"),
            (
                "allow 443 --from 300.1.1.1",
                "allow: CIDR: '300.1.1.1' is not a CIDR",
            ),
            ("allow 443 --comment", "--comment needs a text"),
            (
                "deny 443 --from 192.0.2.1",
                "unknown argument '--from' for deny",
            ),
            ("deny 100:50", "deny: PORT"),
            ("trust", "trust takes one CIDR"),
            ("trust lan", "trust: CIDR: 'lan' is not a CIDR"),
            (
                "untrust 10.0.0.0/8 --check",
                "unknown argument '--check' for untrust",
            ),
        ] {
            match parsed(line) {
                Err(Usage(msg)) => assert!(msg.contains(needle), "{line}: {msg}"),
                ok => panic!("{line}: {ok:?}"),
            }
        }
    }

    #[test]
    fn a_usage_error_is_one_line_on_stderr_exit_2_and_reads_nothing() {
        let host = crate::fake_host::FakeHost::new();
        for line in ["--bogus", "allow", "trust 1.2.3", "apply extra"] {
            let r = main_with(&args(line), &host, false);
            assert_eq!((r.exit, r.exit.code()), (Exit::Usage, 2), "{line}");
            assert!(r.stderr.starts_with("ufw_docker: ") && r.stderr.lines().count() == 1);
            assert!(r.stdout.is_empty());
        }
        assert!(host.transcript().is_empty(), "nothing read");
    }

    #[test]
    fn every_verb_has_help_within_80_columns_naming_its_exit_codes() {
        for (name, v, options, _) in VERBS {
            let text = help(Some(v));
            if v != Verb::Help {
                assert!(text.contains(&format!("ufw_docker {name}")), "{name}");
                assert!(text.contains("Exit codes: 0"), "{name}");
                for option in options {
                    assert!(text.contains(option), "{name} {option}");
                }
            }
            assert!(HELP.contains(&format!("ufw_docker {name}")), "{name}");
            for line in text.lines() {
                assert!(line.chars().count() <= 80, "{line}");
            }
        }
        assert!(HELP.contains("3 drifted") && HELP.contains("4 not installed"));
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
}
