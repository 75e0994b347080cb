//! One run of the module: parse, lock, observe, plan, validate, (unless check mode) apply, save
//! the policy file and install the command where asked, and build the result Ansible prints.
//!
//! This is the imperative shell's script. It decides nothing about firewall rules itself: it
//! reads through `Host`, asks `plan` what to do, and hands the plan to `apply`.

use std::path::PathBuf;

use serde_json::{json, Map, Value};

use crate::apply;
use crate::command_file;
use crate::docker;
use crate::docker_api::{self, Publisher};
use crate::exposure::Mode;
use crate::host::{Host, LockGuard};
use crate::params::{self, ApplyMode, Backend, Params, State};
use crate::plan::{self, Observed, Plan};
use crate::policy_file;
use crate::rules::{self, Family};

/// The JSON object to print, and whether it reports a failure.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub json: Value,
    pub failed: bool,
}

impl Outcome {
    pub fn failure(msg: impl Into<String>) -> Outcome {
        Outcome {
            json: json!({"failed": true, "changed": false, "msg": msg.into()}),
            failed: true,
        }
    }
}

/// Runs the module on `args` (the JSON text Ansible passed) against `host`.
pub fn run(args: &str, host: &dyn Host) -> Outcome {
    run_with(args, host, None)
}

/// Runs the module as `run` does, for a caller that already holds the run lock (the command
/// line's edits, which save the policy and apply it under one lock).
pub fn run_locked(args: &str, host: &dyn Host, held: &LockGuard) -> Outcome {
    run_with(args, host, Some(held))
}

fn run_with(args: &str, host: &dyn Host, held: Option<&LockGuard>) -> Outcome {
    let parsed = match params::parse_args(args) {
        Ok(p) => p,
        Err(e) => return Outcome::failure(e.0),
    };
    let params = &parsed.params;
    let check_mode = parsed.invocation.check_mode;
    let mut warnings = parsed.warnings.clone();

    let _lock = match held {
        Some(_) => None,
        None => match lock(host, check_mode) {
            Ok(guard) => guard,
            Err(msg) => return Outcome::failure(msg),
        },
    };

    let families = families(host, params, &mut warnings);
    let command = match plan_command(host, params) {
        Ok(command) => command,
        Err(msg) => return Outcome::failure(msg),
    };
    if !check_mode {
        for family in &families {
            host.remove_stale_temps(family_path(params, *family));
        }
        if let Some(c) = &command {
            host.remove_stale_temps(&c.change.path);
        }
    }
    let Planned {
        mut plan,
        unit_present,
        firewall,
    } = match observe_and_plan(host, params, &families, check_mode) {
        Ok(planned) => planned,
        Err((msg, firewall)) => {
            let mut out = Outcome::failure(msg);
            if let Some(f) = firewall {
                out.json["docker_firewall_backend"] = json!(f.key());
            }
            return out;
        }
    };
    warnings.extend(plan.warnings.iter().cloned());
    if let Err(why) = name_published(host, params, &mut plan) {
        warnings.push(why);
    }

    let backup_files = match carry_out(host, params, &plan, check_mode) {
        Ok(applied) => {
            warnings.extend(applied.warnings);
            applied.backup_files
        }
        Err(msg) => {
            let mut out = Outcome::failure(msg);
            out.json["warnings"] = json!(warnings);
            return out;
        }
    };
    // After the firewall, so that what is saved and installed is what applied.
    let mut files = Vec::new();
    let after = save_policy(host, params, args, check_mode).and_then(|saved| {
        files.extend(saved);
        install_command(host, command, check_mode)
    });
    match after {
        Ok(installed) => files.extend(installed),
        Err(msg) => {
            // What the plan changed (nothing when it changed nothing), then the files done.
            let mut done = plan.summary();
            done.extend(files.iter().map(|f| f.path.display().to_string()));
            let changed = !done.is_empty() && !check_mode;
            let done = if changed {
                format!("changed: {}; but ", done.join(", "))
            } else {
                String::new()
            };
            let mut out = Outcome::failure(format!("{done}{msg}"));
            out.json["changed"] = json!(changed);
            out.json["warnings"] = json!(warnings);
            return out;
        }
    }
    let mut json = result(
        params,
        &plan,
        parsed.invocation.diff,
        check_mode,
        unit_present,
        backup_files,
        warnings,
    );
    json["docker_firewall_backend"] = json!(firewall.as_ref().map(DockerFirewall::key));
    for change in files {
        add_file_change(&mut json, change, check_mode, parsed.invocation.diff);
    }
    Outcome {
        json,
        failed: false,
    }
}

/// A change of a file beside the firewall (the policy file, the command): its path, and how it
/// reads before (`None`: no file) and after.
struct FileChange {
    path: PathBuf,
    before: Option<String>,
    after: String,
}

/// Saves the run's parameters in `policy_file` (when set, with state present) unless the file
/// already holds them; in check mode only says it would. Runs after the firewall is in place,
/// so a saved policy is always one that applied. With state absent the file is left alone, as
/// `ufw_docker remove` leaves it.
fn save_policy(
    host: &dyn Host,
    params: &Params,
    args: &str,
    check_mode: bool,
) -> Result<Option<FileChange>, String> {
    let Some(path) = params.policy_file.as_ref() else {
        return Ok(None);
    };
    if params.state == State::Absent {
        return Ok(None);
    }
    let fail = |e: anyhow::Error| format!("the policy could not be saved to policy_file: {e:#}");
    let value: Value = serde_json::from_str(args).unwrap_or(Value::Null);
    let policy = policy_file::saved_form(&value);
    let existing = host.read(path).map_err(fail)?;
    if policy_file::holds(existing.as_deref(), &policy) {
        return Ok(None);
    }
    let text = policy_file::render(&policy);
    if !check_mode {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            host.create_dir_all(dir).map_err(fail)?;
        }
        host.write_atomic(path, text.as_bytes()).map_err(fail)?;
    }
    Ok(Some(FileChange {
        path: path.clone(),
        before: existing.map(|b| String::from_utf8_lossy(&b).into_owned()),
        after: text,
    }))
}

/// The command to install (`command_path`): this build's bytes, and the change (its path).
struct CommandInstall {
    build: Vec<u8>,
    change: FileChange,
}

/// Whether this run installs the build that runs as the command (`command_path`, with state
/// present), and what it replaces: `None` when nothing is asked or the path already holds this
/// build as root's 0755 file. Runs before anything changes, so that a path the module must not
/// replace (`command_file::ensure_installable`) fails the run with nothing done. With state
/// absent the file is left alone (the role removes it).
fn plan_command(host: &dyn Host, params: &Params) -> Result<Option<CommandInstall>, String> {
    let Some(path) = params.command_path.as_ref() else {
        return Ok(None);
    };
    if params.state == State::Absent {
        return Ok(None);
    }
    let fail = |e: anyhow::Error| format!("command_path: {e:#}");
    let entry = host.inspect(path).map_err(fail)?;
    command_file::ensure_installable(path, entry.as_ref())?;
    let build = host.own_executable().map_err(|e| {
        format!("cannot read the running build to install it at command_path: {e:#}")
    })?;
    let existing = match entry {
        Some(_) => host.read(path).map_err(fail)?,
        None => None,
    };
    if command_file::is_current(entry.as_ref(), existing.as_deref(), &build) {
        return Ok(None);
    }
    let change = FileChange {
        path: path.clone(),
        before: existing.map(|b| command_file::describe(&b, entry.as_ref())),
        after: command_file::describe(&build, None),
    };
    Ok(Some(CommandInstall { build, change }))
}

/// Installs the command `plan_command` found due (its directory made, mode 0755, when
/// missing); in check mode only says it would.
fn install_command(
    host: &dyn Host,
    command: Option<CommandInstall>,
    check_mode: bool,
) -> Result<Option<FileChange>, String> {
    let Some(c) = command else {
        return Ok(None);
    };
    if !check_mode {
        let fail = |e: anyhow::Error| format!("the command could not be installed: {e:#}");
        let path = &c.change.path;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            host.create_dir_all(dir).map_err(fail)?;
        }
        host.install_executable(path, &c.build).map_err(fail)?;
    }
    Ok(Some(c.change))
}

/// Adds a saved (or, in check mode, due) policy file or command to the result: `changed`, the
/// message's list of what changed, and a diff entry like the rule files'.
fn add_file_change(json: &mut Value, change: FileChange, check_mode: bool, want_diff: bool) {
    let path = change.path.display().to_string();
    let already = json["changed"] == true;
    let verb = if check_mode {
        "would change"
    } else {
        "changed"
    };
    json["msg"] = if already {
        json!(format!("{}, {path}", json["msg"].as_str().unwrap_or("")))
    } else {
        json!(format!("{verb}: {path}"))
    };
    json["changed"] = json!(true);
    if want_diff {
        let entry = json!({
            "before": change.before.unwrap_or_default(),
            "after": change.after,
            "before_header": format!("{path} (before)"),
            "after_header": format!("{path} (after)"),
        });
        match json["diff"].as_array_mut() {
            Some(list) => list.push(entry),
            None => json["diff"] = json!([entry]),
        }
    }
}

/// Adds Docker's names to the published ports of the plan (already made: the API never
/// decides a rule), in check mode too, since reading changes nothing: the container behind each
/// host-mode port, and the Swarm service behind each ingress port (asked only where there is
/// one; only a manager answers, and a worker's ports stay unnamed without a warning). Hosts
/// where Docker publishes nothing are not asked. Returns the warning when names are missing.
fn name_published(host: &dyn Host, params: &Params, plan: &mut Plan) -> Result<(), String> {
    if plan.published.is_empty() {
        return Ok(());
    }
    let env = host.env("DOCKER_HOST");
    let address = docker_api::resolve_host(params.docker_host.as_deref(), env.as_deref());
    let warn = |why: String| docker_api::missing_names_warning(&address, &why);
    let socket =
        docker_api::socket_path(&address).map_err(|e| warn(format!("DOCKER_HOST: {e}")))?;
    let raw = host
        .docker_get(&socket, docker_api::CONTAINERS_PATH)
        .map_err(|e| warn(format!("{e:#}")))?;
    let containers = docker_api::ok_body(&raw)
        .and_then(|body| docker_api::parse_containers(&body))
        .map_err(|e| warn(format!("GET {}: {e}", docker_api::CONTAINERS_PATH)))?;
    for port in &mut plan.published {
        if port.port.mode == Mode::Host {
            port.names = docker_api::names_for(&containers, &port.port)
                .cloned()
                .map(Publisher::Container);
        }
    }
    if !plan.published.iter().any(|p| p.port.mode == Mode::Ingress) {
        return Ok(());
    }
    let raw = host
        .docker_get(&socket, docker_api::SERVICES_PATH)
        .map_err(|e| warn(format!("{e:#}")))?;
    if docker_api::not_a_manager(&raw) {
        return Ok(());
    }
    let services = docker_api::ok_body(&raw)
        .and_then(|body| docker_api::parse_services(&body))
        .map_err(|e| warn(format!("GET {}: {e}", docker_api::SERVICES_PATH)))?;
    for port in &mut plan.published {
        if port.port.mode == Mode::Ingress {
            port.names =
                docker_api::service_for(&services, &port.port).map(|s| Publisher::Service {
                    swarm_service: s.to_string(),
                });
        }
    }
    Ok(())
}

/// The run lock, so that two runs never interleave. Check mode writes nothing, not even the
/// lock file: it takes none.
fn lock(host: &dyn Host, check_mode: bool) -> Result<Option<LockGuard>, String> {
    if check_mode {
        return Ok(None);
    }
    host.lock().map(Some).map_err(|e| format!("{e:#}"))
}

/// Applies the plan where it changes something, outside check mode. Returns the backups made
/// and the warnings of the check after applying.
fn carry_out(
    host: &dyn Host,
    params: &Params,
    plan: &Plan,
    check_mode: bool,
) -> Result<apply::Applied, String> {
    if !plan.changed() || check_mode {
        return Ok(apply::Applied::default());
    }
    apply::apply(host, params, plan)
}

/// The families to manage: IPv4, and IPv6 where asked for and the host has it (a warning says
/// when it does not).
fn families(host: &dyn Host, params: &Params, warnings: &mut Vec<String>) -> Vec<Family> {
    let mut families = vec![Family::V4];
    if params.ipv6 {
        if host.has_ipv6() {
            families.push(Family::V6);
        } else {
            warnings.push(
                "ipv6 is true but this host has no IPv6 (no /proc/net/if_inet6): after6.rules \
                 and ip6tables are left alone"
                    .into(),
            );
        }
    }
    families
}

/// Everything before a change: reads the host (the files and tables, whether the role's unit
/// is there, Docker's firewall backend), plans, and test-loads the plan's rules. Returns the
/// plan, whether the unit is there, and Docker's firewall backend (`None`: not looked at, with
/// `apply: none`). A failure says which backend Docker has when it is known.
fn observe_and_plan(
    host: &dyn Host,
    params: &Params,
    families: &[Family],
    check_mode: bool,
) -> Result<Planned, Refused> {
    let observed = observe(host, params, families).map_err(|e| (e, None))?;
    let firewall = (params.apply != ApplyMode::None).then(|| docker_firewall(host, &observed));
    let fail = |msg: String| (msg, firewall.clone());
    let unit_present = host
        .read(&params.unit_path)
        .map_err(|e| fail(format!("unit_path: {e:#}")))?
        .is_some();
    if let (State::Present, Some(DockerFirewall::Nftables(reason))) = (params.state, &firewall) {
        return Err(fail(docker::nftables_message(reason)));
    }
    let plan = plan::plan(params, observed).map_err(fail)?;
    if params.validate && params.state == State::Present {
        apply::validate(host, params, &plan, check_mode).map_err(fail)?;
    }
    Ok(Planned {
        plan,
        unit_present,
        firewall,
    })
}

/// What `observe_and_plan` found and planned.
struct Planned {
    plan: Plan,
    unit_present: bool,
    firewall: Option<DockerFirewall>,
}

/// Why `observe_and_plan` stopped, and Docker's firewall backend when it was read by then.
type Refused = (String, Option<DockerFirewall>);

/// Reads the files (UFW backend) and, unless `apply: none`, the live filter and nat tables (the
/// families' at the same time).
fn observe(host: &dyn Host, params: &Params, families: &[Family]) -> Result<Vec<Observed>, String> {
    let files = families
        .iter()
        .map(|&family| {
            let path = family_path(params, family).to_path_buf();
            let file = match params.backend {
                Backend::Iptables => None,
                Backend::Ufw => host.read(&path).map_err(|e| {
                    format!("{e:#}; check the path and its permissions (the module runs as root)")
                })?,
            };
            Ok((family, path, file))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut tables = match params.apply {
        ApplyMode::None => Vec::new(),
        ApplyMode::Live | ApplyMode::Reload => apply::read_tables(host, families)?,
    }
    .into_iter();
    Ok(files
        .into_iter()
        .map(|(family, path, file)| {
            let (live, nat) = tables.next().unzip();
            Observed {
                family,
                path,
                file,
                live,
                nat,
            }
        })
        .collect())
}

/// Docker's firewall backend on this host, as the result reports it
/// (`docker_firewall_backend`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum DockerFirewall {
    /// Docker's chains are in iptables: DOCKER-USER is there to fill.
    Iptables,
    /// Docker programs nftables directly (why we think so): there is no DOCKER-USER chain.
    Nftables(String),
    /// Neither: no Docker chain in any family (Docker stopped, or run with `iptables: false`).
    None,
}

impl DockerFirewall {
    fn key(&self) -> &'static str {
        match self {
            DockerFirewall::Iptables => "iptables",
            DockerFirewall::Nftables(_) => "nftables",
            DockerFirewall::None => "none",
        }
    }
}

/// Where Docker's own iptables chains are loaded and daemon.json does not ask for nftables,
/// Docker runs its iptables backend and `nft list tables` (a process spawn on every run) is
/// skipped.
fn docker_firewall(host: &dyn Host, observed: &[Observed]) -> DockerFirewall {
    let daemon_json = host
        .read(std::path::Path::new("/etc/docker/daemon.json"))
        .ok()
        .flatten();
    let iptables_docker = observed
        .iter()
        .any(|o| o.live.as_ref().is_some_and(|l| l.docker_present()));
    let nft = if iptables_docker && docker::nftables_backend(None, daemon_json.as_deref()).is_none()
    {
        None
    } else {
        host.run("nft", &["list", "tables"], None)
            .ok()
            .filter(|o| o.success())
            .map(|o| o.stdout)
    };
    match docker::nftables_backend(nft.as_deref(), daemon_json.as_deref()) {
        Some(reason) => DockerFirewall::Nftables(reason),
        None if iptables_docker => DockerFirewall::Iptables,
        None => DockerFirewall::None,
    }
}

fn family_path(params: &Params, family: Family) -> &std::path::Path {
    match family {
        Family::V4 => &params.after_rules,
        Family::V6 => &params.after6_rules,
    }
}

/// The chains the module owns after this run: DOCKER-USER, the logging chain, and the
/// sub-chains long lists are folded into (in any family).
fn chains(plan: &Plan) -> Vec<String> {
    let mut names = vec![rules::DOCKER_USER.to_string(), rules::LOG_CHAIN.to_string()];
    for f in &plan.families {
        for name in f.file_rules.subs.keys() {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
}

fn result(
    params: &Params,
    plan: &Plan,
    want_diff: bool,
    check_mode: bool,
    unit_present: bool,
    backup_files: Vec<std::path::PathBuf>,
    warnings: Vec<String>,
) -> Value {
    let changed = plan.changed();
    let summary = plan.summary();
    let msg = match (changed, check_mode) {
        (false, _) => "DOCKER-USER and the after.rules block are already as requested".to_string(),
        (true, true) => format!("would change: {}", summary.join(", ")),
        (true, false) => format!("changed: {}", summary.join(", ")),
    };
    let mut rules_by_family = Map::new();
    for family in Family::ALL {
        // Each line rendered straight into the result (at a thousand entries, half a megabyte
        // that a list of lines and its JSON copy would hold twice).
        let lines = plan
            .families
            .iter()
            .find(|f| f.family == family)
            .map(|f| {
                f.file_rules
                    .rules()
                    .map(|r| Value::String(r.render()))
                    .collect()
            })
            .unwrap_or_default();
        rules_by_family.insert(family.key().into(), Value::Array(lines));
    }
    let mut out = json!({
        "changed": changed,
        "msg": msg,
        "check_mode": check_mode,
        "state": match params.state { State::Present => "present", State::Absent => "absent" },
        "backup_files": backup_files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "commands": plan.commands.iter().map(plan::Command::display).collect::<Vec<_>>(),
        "chains": chains(plan),
        "published": plan.published,
        "unrecognised_dnat": plan.unrecognised,
        "warnings": warnings,
        "unit_present": unit_present,
    });
    // Moved in, not through `json!`, which would serialize a copy of every line (and of both
    // texts of every diff entry) while the original is still held.
    out["rules"] = Value::Object(rules_by_family);
    if want_diff {
        out["diff"] = Value::Array(plan.diff(params).into_iter().map(diff_entry).collect());
    }
    out
}

/// A diff entry as the result shows it (`plan::DiffEntry`'s fields), its texts moved in.
fn diff_entry(entry: plan::DiffEntry) -> Value {
    let mut fields = Map::new();
    fields.insert("before_header".into(), Value::String(entry.before_header));
    fields.insert("after_header".into(), Value::String(entry.after_header));
    fields.insert("before".into(), Value::String(entry.before));
    fields.insert("after".into(), Value::String(entry.after));
    Value::Object(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::after_rules;
    use crate::fake_host::{FakeHost, Reply, AFTER6_RULES};
    use crate::host::Entry;
    use std::path::Path;

    const POLICY: &str = r#"{"allow": [{"port": 8080}], "trusted_networks": ["192.168.50.0/24"]}"#;

    fn lines(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_first_run_applies_and_reports_and_a_second_changes_nothing() {
        let host = FakeHost::new();
        let first = run(POLICY, &host);
        assert!(!first.failed, "{}", first.json);
        assert_eq!(first.json["changed"], true);
        assert_eq!(
            first.json["msg"],
            "changed: /etc/ufw/after.rules, /etc/ufw/after6.rules, live DOCKER-USER (ipv4), \
             live DOCKER-USER (ipv6)"
        );
        assert_eq!(
            first.json["commands"],
            json!([
                "iptables-restore -w 30 --noflush < ipv4 ufw-docker-guard (security table), \
                 DOCKER-USER and ufw-docker-logging-deny",
                "ip6tables-restore -w 30 --noflush < ipv6 ufw-docker-guard (security table), \
                 DOCKER-USER and ufw-docker-logging-deny",
            ])
        );
        assert_eq!(first.json["warnings"], json!([]));
        assert_eq!(
            host.transcript(),
            lines(&[
                "lock",
                "remove stale temps /etc/ufw/after.rules",
                "remove stale temps /etc/ufw/after6.rules",
                "iptables-save",
                "ip6tables-save",
                "docker GET /containers/json (/var/run/docker.sock)",
                "iptables-restore -w 30 --noflush",
                "ip6tables-restore -w 30 --noflush",
                "write /etc/ufw/after.rules",
                "write /etc/ufw/after6.rules",
                "iptables-save",
                "ip6tables-save",
            ])
        );
        host.clear_transcript();
        let second = run(POLICY, &host);
        assert!(!second.failed, "{}", second.json);
        assert_eq!(second.json["changed"], false);
        assert_eq!(
            second.json["msg"],
            "DOCKER-USER and the after.rules block are already as requested"
        );
        assert_eq!(second.json["commands"], json!([]));
        assert_eq!(second.json["rules"], first.json["rules"]);
        assert_eq!(
            host.transcript(),
            lines(&[
                "lock",
                "remove stale temps /etc/ufw/after.rules",
                "remove stale temps /etc/ufw/after6.rules",
                "iptables-save",
                "ip6tables-save",
                "docker GET /containers/json (/var/run/docker.sock)",
            ])
        );
    }

    #[test]
    fn a_diff_entry_is_moved_into_the_result_as_serde_would_copy_it() {
        let entry = plan::DiffEntry {
            before_header: "a (before)".into(),
            after_header: "a (after)".into(),
            before: "x\n".into(),
            after: "y\n".into(),
        };
        assert_eq!(
            diff_entry(entry.clone()),
            serde_json::to_value(&entry).unwrap()
        );
    }

    #[test]
    fn check_mode_takes_no_lock_and_changes_nothing() {
        let host = FakeHost::new();
        let before = host.snapshot();
        let args = POLICY.replacen(
            '{',
            r#"{"_ansible_check_mode": true, "_ansible_diff": true, "#,
            1,
        );
        let out = run(&args, &host);
        assert!(!out.failed, "{}", out.json);
        assert_eq!(out.json["changed"], true);
        assert_eq!(
            out.json["msg"],
            "would change: /etc/ufw/after.rules, /etc/ufw/after6.rules, live DOCKER-USER \
             (ipv4), live DOCKER-USER (ipv6)"
        );
        assert_eq!(out.json["diff"].as_array().map(Vec::len), Some(4));
        assert_eq!(
            host.transcript(),
            lines(&[
                "iptables-save",
                "ip6tables-save",
                "iptables-restore -w 30 --test --noflush",
                "ip6tables-restore -w 30 --test --noflush",
                "docker GET /containers/json (/var/run/docker.sock)",
            ])
        );
        assert_eq!(host.snapshot(), before);
    }

    #[test]
    fn a_failed_apply_is_one_failure_that_keeps_the_warnings_and_puts_the_host_back() {
        let host = FakeHost::new().without_ipv6();
        let before = host.snapshot();
        host.reply(
            "iptables-restore",
            &["-w", "30", "--noflush"],
            [Reply::exit(2, "iptables-restore: line 5 failed")],
        );
        let out = run(POLICY, &host);
        assert!(out.failed);
        assert_eq!(
            out.json,
            json!({
                "failed": true,
                "changed": false,
                "msg": "`iptables-restore -w 30 --noflush < ipv4 ufw-docker-guard (security \
                        table), DOCKER-USER and ufw-docker-logging-deny` failed: \
                        iptables-restore: line 5 failed (exit 2)",
                "warnings": ["ipv6 is true but this host has no IPv6 (no /proc/net/if_inet6): \
                              after6.rules and ip6tables are left alone"],
            })
        );
        assert_eq!(
            host.transcript(),
            // No test-load: the live restore is the test, and it runs before any file is
            // written. Of its two tables it may have committed the first, the guard's: read
            // again, the guard is as it was, so nothing is put back.
            lines(&[
                "lock",
                "remove stale temps /etc/ufw/after.rules",
                "iptables-save",
                "docker GET /containers/json (/var/run/docker.sock)",
                "iptables-restore -w 30 --noflush (exit 2)",
                "iptables-save",
            ])
        );
        assert_eq!(host.snapshot(), before);
    }

    #[test]
    fn rules_the_kernel_rejects_are_shown_by_a_dry_run_or_a_reload_and_nothing_is_written() {
        let host = FakeHost::new();
        let before = host.snapshot();
        let reason = "ip6tables-restore v1.8.9 (nf_tables): line 7: RULE_APPEND failed (No such \
                      file or directory): rule in chain DOCKER-USER";
        host.reply(
            "ip6tables-restore",
            &["-w", "30", "--test", "--noflush"],
            [Reply::exit(2, reason)],
        );
        // With `apply: reload` nothing restores the chains before the files are written: the
        // test-load runs (as it does in check mode).
        let out = run(&POLICY.replacen('{', r#"{"apply": "reload", "#, 1), &host);
        let payload = host.calls().pop().unwrap().stdin.unwrap();
        assert!(payload.contains("-A DOCKER-USER"), "{payload}");
        assert_eq!(
            out.json,
            json!({
                "failed": true,
                "changed": false,
                "docker_firewall_backend": "iptables",
                "msg": format!(
                    "ip6tables-restore --test rejected the rules for /etc/ufw/after6.rules: \
                     {reason} (exit 2). Nothing was written. The rules were:\n{payload}"
                ),
            })
        );
        assert_eq!(
            host.transcript(),
            lines(&[
                "lock",
                "remove stale temps /etc/ufw/after.rules",
                "remove stale temps /etc/ufw/after6.rules",
                "iptables-save",
                "ip6tables-save",
                "iptables-restore -w 30 --test --noflush",
                "ip6tables-restore -w 30 --test --noflush (exit 2)",
            ])
        );
        assert_eq!(host.snapshot(), before);

        host.clear_transcript();
        host.reply(
            "ip6tables-restore",
            &["-w", "30", "--test", "--noflush"],
            [Reply::exit(2, reason)],
        );
        let dry = run(
            &POLICY.replacen('{', r#"{"_ansible_check_mode": true, "#, 1),
            &host,
        );
        assert!(dry.failed);
        assert!(dry.json["msg"]
            .as_str()
            .unwrap()
            .starts_with("ip6tables-restore --test rejected the rules"));
    }

    #[test]
    fn published_ports_carry_dockers_names_in_check_mode_too() {
        let host = FakeHost::new();
        let out = run(r#"{"_ansible_check_mode": true}"#, &host);
        assert!(!out.failed, "{}", out.json);
        let port = &out.json["published"][0];
        assert_eq!(port["host_port"], "8080");
        assert_eq!(port["container"], "shop-web-1");
        assert_eq!(port["compose_project"], "shop");
        assert_eq!(port["compose_service"], "web");
        assert_eq!(port["image"], "ufwd-test");
        assert_eq!(port["container_id"].as_str().map(str::len), Some(64));
        assert!(port.get("swarm_service").is_none(), "{port}");
        assert_eq!(out.json["warnings"], json!([]));
    }

    /// Issue 17: "The firewall decision never depends on the API".
    #[test]
    fn without_dockers_api_the_run_succeeds_with_one_warning_and_the_same_verdicts() {
        let named = run(POLICY, &FakeHost::new());
        let strip = |json: &Value| {
            let mut ports = json["published"].clone();
            for p in ports.as_array_mut().unwrap() {
                let p = p.as_object_mut().unwrap();
                for key in crate::docker_api::NAME_FIELDS {
                    p.remove(*key);
                }
            }
            ports
        };
        let answers: [(Result<&[u8], &str>, &str); 3] = [
            (Err("cannot connect to /var/run/docker.sock: No such file or directory (os error 2)"), "No such file"),
            (Ok(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n[{\"x\""), "not JSON"),
            (Ok(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nbusy"), "answered 500: busy"),
        ];
        for (answer, why) in answers {
            let host = FakeHost::new();
            host.docker_answers(answer);
            let out = run(POLICY, &host);
            assert!(!out.failed, "{}", out.json);
            let warnings = out.json["warnings"].as_array().unwrap();
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            let w = warnings[0].as_str().unwrap();
            assert!(w.contains("no container names"), "{w}");
            assert!(w.contains("unix:///var/run/docker.sock"), "{w}");
            assert!(w.contains(why), "{w}");
            assert!(out.json["published"][0].get("container").is_none());
            assert_eq!(out.json["published"], strip(&named.json));
            assert_eq!(out.json["rules"], named.json["rules"]);
            assert_eq!(out.json["commands"], named.json["commands"]);
        }
    }

    #[test]
    fn docker_host_then_the_environment_then_the_default_socket() {
        let host = FakeHost::new();
        host.set_env("DOCKER_HOST", "unix:///run/user/1000/docker.sock");
        run(r#"{"_ansible_check_mode": true}"#, &host);
        run(
            r#"{"_ansible_check_mode": true, "docker_host": "unix:///srv/d.sock"}"#,
            &host,
        );
        host.set_env("DOCKER_HOST", "tcp://10.0.0.1:2376");
        let out = run(r#"{"_ansible_check_mode": true}"#, &host);
        let asked: Vec<_> = host
            .transcript()
            .into_iter()
            .filter(|l| l.starts_with("docker "))
            .collect();
        assert_eq!(
            asked,
            [
                "docker GET /containers/json (/run/user/1000/docker.sock)",
                "docker GET /containers/json (/srv/d.sock)",
            ]
        );
        let w = out.json["warnings"][0].as_str().unwrap();
        assert!(
            w.contains("DOCKER_HOST") && w.contains("not supported"),
            "{w}"
        );
        assert!(!out.failed);
    }

    #[test]
    fn a_host_where_docker_publishes_nothing_is_not_asked() {
        let host = FakeHost::new().with_tables(Family::V4, crate::fake_host::V6_SAVE);
        host.docker_answers(Err("unreachable"));
        let out = run(POLICY, &host);
        assert_eq!(out.json["published"], json!([]));
        assert!(
            !out.json["warnings"].to_string().contains("names"),
            "{}",
            out.json
        );
        assert!(!host.transcript().iter().any(|l| l.starts_with("docker ")));
    }

    #[test]
    fn a_lock_held_elsewhere_fails_before_anything_is_read() {
        let host = FakeHost::new();
        let msg = "another ufw_docker run has held /run/ufw_docker.lock for 120s; wait for it \
                   to finish, or find it with `fuser /run/ufw_docker.lock`";
        host.fail_lock(msg);
        let out = run(POLICY, &host);
        assert_eq!(
            out.json,
            json!({"failed": true, "changed": false, "msg": msg})
        );
        assert_eq!(host.transcript(), lines(&["lock"]));
    }

    #[test]
    fn a_missing_iptables_save_fails_clearly_and_changes_nothing() {
        let host = FakeHost::new();
        let before = host.snapshot();
        let why = "iptables-save was not found in PATH or /usr/sbin, /sbin; install it (iptables \
                   and ufw come from the Debian packages of those names)";
        host.reply("iptables-save", &[], [Reply::SpawnError(why.into())]);
        let out = run(POLICY, &host);
        assert_eq!(
            out.json,
            json!({"failed": true, "changed": false,
                   "msg": format!("cannot read the live firewall: {why}")})
        );
        assert_eq!(
            host.transcript(),
            lines(&[
                "lock",
                "remove stale temps /etc/ufw/after.rules",
                "remove stale temps /etc/ufw/after6.rules",
                // Both families' tables are read at once (Host::run_all).
                "iptables-save (not started)",
                "ip6tables-save",
            ])
        );
        assert_eq!(host.snapshot(), before);
    }

    #[test]
    fn a_file_with_broken_markers_fails_before_anything_is_tested_or_written() {
        let host = FakeHost::new();
        let mut text = host.file(AFTER6_RULES).unwrap();
        let line = text.iter().filter(|&&b| b == b'\n').count() + 1;
        text.extend_from_slice(format!("{}\n", after_rules::BEGIN).as_bytes());
        host.set_file(AFTER6_RULES, &text);
        let before = host.snapshot();
        let out = run(POLICY, &host);
        assert_eq!(
            out.json["msg"],
            format!(
                "/etc/ufw/after6.rules: line {line} opens a managed block that is never closed; \
                 add the END marker or remove the BEGIN line by hand. Nothing was written."
            )
        );
        assert_eq!(
            host.transcript(),
            lines(&[
                "lock",
                "remove stale temps /etc/ufw/after.rules",
                "remove stale temps /etc/ufw/after6.rules",
                "iptables-save",
                "ip6tables-save",
            ])
        );
        assert_eq!(host.snapshot(), before);
    }

    /// The result's last diff entry: the policy file's or the command's, added after the
    /// firewall's.
    fn last_diff(out: &Outcome) -> Value {
        out.json["diff"].as_array().unwrap().last().unwrap().clone()
    }

    const SAVED: &str = "/etc/ufw-docker/policy.json";

    fn with_policy_file(extra: &str) -> String {
        format!(
            r#"{{"allow": [{{"port": 8080}}], "policy_file": "{SAVED}", "docker_host": null{extra}}}"#
        )
    }

    #[test]
    fn a_run_given_policy_file_saves_its_parameters_once_after_the_firewall() {
        let host = FakeHost::new();
        let check = run(
            &with_policy_file(r#", "_ansible_check_mode": true, "_ansible_diff": true"#),
            &host,
        );
        assert!(!check.failed, "{}", check.json);
        assert!(
            check.json["msg"]
                .as_str()
                .unwrap()
                .ends_with("live DOCKER-USER (ipv6), /etc/ufw-docker/policy.json"),
            "{}",
            check.json["msg"]
        );
        let last = last_diff(&check);
        assert_eq!(last["before"], "");
        assert_eq!(last["after_header"], "/etc/ufw-docker/policy.json (after)");
        assert_eq!(host.file(SAVED), None, "check mode saves nothing");

        let first = run(&with_policy_file(""), &host);
        assert!(!first.failed, "{}", first.json);
        assert_eq!(first.json["changed"], true);
        let t = host.transcript();
        let firewall = t
            .iter()
            .position(|l| l == "iptables-restore -w 30 --noflush");
        let saved = t
            .iter()
            .position(|l| l == "write /etc/ufw-docker/policy.json");
        assert!(firewall < saved && saved.is_some(), "{t:?}");
        assert!(t.contains(&"mkdir -p /etc/ufw-docker".to_string()));
        assert_eq!(
            String::from_utf8(host.file(SAVED).unwrap()).unwrap(),
            "{\n  \"allow\": [\n    {\n      \"port\": 8080\n    }\n  ]\n}\n"
        );

        host.clear_transcript();
        let second = run(&with_policy_file(""), &host);
        assert_eq!(second.json["changed"], false, "{}", second.json);
        assert!(!host.transcript().iter().any(|l| l.starts_with("write")));

        // Only the policy differs: the firewall is in sync, the file is a change of its own.
        let third = run(&with_policy_file(r#", "backup": false"#), &host);
        assert_eq!(third.json["changed"], true);
        assert_eq!(third.json["msg"], "changed: /etc/ufw-docker/policy.json");

        // state: absent leaves the file alone, as `ufw_docker remove` does.
        let saved_before = host.file(SAVED);
        let absent = run(&with_policy_file(r#", "state": "absent""#), &host);
        assert!(!absent.failed, "{}", absent.json);
        assert_eq!(host.file(SAVED), saved_before);
    }

    #[test]
    fn a_policy_that_cannot_be_saved_fails_saying_the_firewall_changed() {
        let host = FakeHost::new();
        host.fail(
            crate::fake_host::FileOp::Write,
            SAVED,
            1,
            "Read-only file system",
        );
        let out = run(&with_policy_file(""), &host);
        assert!(out.failed);
        assert_eq!(out.json["changed"], true);
        let msg = out.json["msg"].as_str().unwrap();
        assert!(msg.starts_with("changed: /etc/ufw/after.rules, "), "{msg}");
        assert!(
            msg.contains("; but the policy could not be saved to policy_file: "),
            "{msg}"
        );
        assert!(msg.contains("Read-only file system"), "{msg}");
    }

    const COMMAND: &str = "/usr/local/sbin/ufw_docker";

    fn with_command(extra: &str) -> String {
        format!(r#"{{"allow": [{{"port": 8080}}], "command_path": "{COMMAND}"{extra}}}"#)
    }

    fn root_0755() -> Entry {
        Entry::File {
            mode: 0o755,
            uid: 0,
            gid: 0,
        }
    }

    /// Issue 15: the role's copy task became the module's own install of the checked build.
    #[test]
    fn a_run_given_command_path_installs_its_own_build_once_after_the_firewall() {
        let host = FakeHost::new();
        let check = run(
            &with_command(r#", "_ansible_check_mode": true, "_ansible_diff": true"#),
            &host,
        );
        assert!(!check.failed, "{}", check.json);
        assert!(
            check.json["msg"]
                .as_str()
                .unwrap()
                .ends_with("live DOCKER-USER (ipv6), /usr/local/sbin/ufw_docker"),
            "{}",
            check.json["msg"]
        );
        let last = last_diff(&check);
        assert_eq!(last["before"], "");
        assert_eq!(
            last["after"],
            command_file::describe(crate::fake_host::BUILD, None)
        );
        assert_eq!(last["after_header"], "/usr/local/sbin/ufw_docker (after)");
        assert_eq!(host.file(COMMAND), None, "check mode installs nothing");

        let first = run(&with_command(""), &host);
        assert!(!first.failed, "{}", first.json);
        let t = host.transcript();
        let firewall = t.iter().position(|l| l == "write /etc/ufw/after6.rules");
        let mkdir = t.iter().position(|l| l == "mkdir -p /usr/local/sbin");
        let installed = t
            .iter()
            .position(|l| l == "install /usr/local/sbin/ufw_docker");
        assert!(
            firewall < mkdir && mkdir < installed && firewall.is_some(),
            "{t:?}"
        );
        assert!(t.contains(&"remove stale temps /usr/local/sbin/ufw_docker".to_string()));
        assert_eq!(host.file(COMMAND).as_deref(), Some(crate::fake_host::BUILD));
        assert_eq!(host.inspect(Path::new(COMMAND)).unwrap(), Some(root_0755()));

        host.clear_transcript();
        let second = run(&with_command(""), &host);
        assert_eq!(second.json["changed"], false, "{}", second.json);
        assert!(!host.transcript().iter().any(|l| l.starts_with("install")));

        // A new release: the command is replaced, a change of its own with its diff.
        host.set_own_executable(b"\x7fELF the next release");
        let upgrade = run(&with_command(r#", "_ansible_diff": true"#), &host);
        assert_eq!(upgrade.json["msg"], "changed: /usr/local/sbin/ufw_docker");
        let diff = last_diff(&upgrade);
        assert_eq!(
            diff["before"],
            command_file::describe(crate::fake_host::BUILD, Some(&root_0755()))
        );
        assert_eq!(
            diff["after"],
            command_file::describe(b"\x7fELF the next release", None)
        );
        assert_eq!(
            host.file(COMMAND).as_deref(),
            Some(&b"\x7fELF the next release"[..])
        );

        // The same bytes with another mode or owner are put right too.
        host.set_entry(
            COMMAND,
            Entry::File {
                mode: 0o777,
                uid: 1000,
                gid: 0,
            },
        );
        let fixed = run(&with_command(""), &host);
        assert_eq!(fixed.json["msg"], "changed: /usr/local/sbin/ufw_docker");
        assert_eq!(host.inspect(Path::new(COMMAND)).unwrap(), Some(root_0755()));

        // state: absent leaves the command alone (the role removes it).
        host.set_own_executable(b"another build");
        let before = host.file(COMMAND);
        let absent = run(&with_command(r#", "state": "absent""#), &host);
        assert!(!absent.failed, "{}", absent.json);
        assert_eq!(host.file(COMMAND), before);
    }

    #[test]
    fn a_command_path_that_is_a_directory_or_a_link_fails_before_anything_changes() {
        for (entry, words) in [
            (Entry::Dir, "is a directory"),
            (
                Entry::Symlink(PathBuf::from("/usr/bin/python3")),
                "is a symbolic link to /usr/bin/python3",
            ),
            (Entry::Other, "is not a regular file"),
        ] {
            let host = FakeHost::new();
            host.set_entry(COMMAND, entry);
            let before = host.snapshot();
            for args in [
                with_command(""),
                with_command(r#", "_ansible_check_mode": true"#),
            ] {
                let out = run(&args, &host);
                assert!(out.failed, "{}", out.json);
                assert_eq!(out.json["changed"], false);
                let msg = out.json["msg"].as_str().unwrap();
                assert!(
                    msg.starts_with(&format!("command_path {COMMAND} {words}")),
                    "{msg}"
                );
                assert!(msg.ends_with("Nothing was changed."), "{msg}");
            }
            assert!(
                host.transcript().iter().all(|l| l == "lock"),
                "{:?}",
                host.transcript()
            );
            assert_eq!(host.snapshot(), before);
        }
    }

    #[test]
    fn a_command_that_cannot_be_installed_fails_saying_what_changed() {
        let host = FakeHost::new();
        host.fail(
            crate::fake_host::FileOp::Write,
            COMMAND,
            1,
            "No space left on device",
        );
        let out = run(
            &with_command(r#", "policy_file": "/etc/ufw-docker/policy.json""#),
            &host,
        );
        assert!(out.failed);
        assert_eq!(out.json["changed"], true);
        let msg = out.json["msg"].as_str().unwrap();
        assert!(msg.starts_with("changed: /etc/ufw/after.rules, "), "{msg}");
        assert!(
            msg.contains(
                "live DOCKER-USER (ipv6), /etc/ufw-docker/policy.json; but the command could \
                 not be installed: "
            ),
            "{msg}"
        );
        assert!(msg.contains("No space left on device"), "{msg}");
        assert_eq!(host.file(COMMAND), None);
        // In sync but for the command: the failure says nothing changed.
        let again = run(
            &with_command(r#", "policy_file": "/etc/ufw-docker/policy.json""#),
            &host,
        );
        assert!(!again.failed, "{}", again.json);
        host.fail(
            crate::fake_host::FileOp::Write,
            COMMAND,
            3, // the third install: the first failed, the second (just above) did it
            "Read-only file system",
        );
        host.set_own_executable(b"the next release");
        let out = run(
            &with_command(r#", "policy_file": "/etc/ufw-docker/policy.json""#),
            &host,
        );
        assert_eq!(out.json["changed"], false);
        assert!(
            out.json["msg"]
                .as_str()
                .unwrap()
                .starts_with("the command could not be installed: "),
            "{}",
            out.json["msg"]
        );
    }

    #[test]
    fn an_empty_command_path_installs_nothing_and_a_relative_one_is_refused() {
        let host = FakeHost::new();
        let out = run(r#"{"command_path": ""}"#, &host);
        assert!(!out.failed, "{}", out.json);
        assert!(!host.transcript().iter().any(|l| l.starts_with("install")));
        let out = run(r#"{"command_path": "ufw_docker"}"#, &host);
        assert_eq!(
            out.json["msg"],
            "command_path must be an absolute path, got 'ufw_docker'"
        );
    }

    #[test]
    fn an_empty_policy_file_saves_nothing_and_a_relative_one_is_refused() {
        let host = FakeHost::new();
        let out = run(r#"{"policy_file": ""}"#, &host);
        assert!(!out.failed, "{}", out.json);
        assert!(!host.transcript().iter().any(|l| l.contains("ufw-docker/")));
        let out = run(r#"{"policy_file": "policy.json"}"#, &host);
        assert_eq!(
            out.json["msg"],
            "policy_file must be an absolute path, got 'policy.json'"
        );
    }

    #[test]
    fn the_result_says_which_firewall_backend_docker_has() {
        let host = FakeHost::new();
        let out = run(POLICY, &host);
        assert_eq!(out.json["docker_firewall_backend"], "iptables");
        let out = run(r#"{"apply": "none"}"#, &host);
        assert_eq!(
            out.json["docker_firewall_backend"],
            Value::Null,
            "not looked at"
        );

        let host = FakeHost::new();
        host.set_file(
            "/etc/docker/daemon.json",
            br#"{"firewall-backend": "nftables"}"#,
        );
        let out = run(POLICY, &host);
        assert!(out.failed);
        assert_eq!(out.json["docker_firewall_backend"], "nftables");
        assert!(out.json["msg"]
            .as_str()
            .unwrap()
            .starts_with("Docker uses its nftables firewall backend"));

        let v4 =
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n\
                  *nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
                  :POSTROUTING ACCEPT [0:0]\nCOMMIT\n";
        let host = FakeHost::new().without_ipv6().with_tables(Family::V4, v4);
        host.reply("nft", &["list", "tables"], [Reply::exit(0, "")]);
        let out = run(r#"{"state": "absent"}"#, &host);
        assert!(!out.failed, "{}", out.json);
        assert_eq!(out.json["docker_firewall_backend"], "none");
    }

    #[test]
    fn swarm_ingress_ports_are_reported_with_their_service_and_blocked_after() {
        let save = include_str!("../tests/data/iptables-save.docker").replacen(
            "-A DOCKER -i docker0 -j RETURN\n",
            ":DOCKER-INGRESS - [0:0]\n-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER-INGRESS\n\
             -A DOCKER -i docker0 -j RETURN\n\
             -A DOCKER-INGRESS -p tcp -m tcp --dport 8098 -j DNAT --to-destination 172.18.0.2:8098\n\
             -A DOCKER-INGRESS -j RETURN\n",
            1,
        );
        let args = r#"{"_ansible_check_mode": true, "ipv6": false}"#;
        let manager = FakeHost::new()
            .without_ipv6()
            .with_tables(Family::V4, &save);
        manager.services_answer(Ok(include_bytes!(
            "../tests/data/docker-api/services-28.http"
        )));
        let out = run(args, &manager);
        assert!(!out.failed, "{}", out.json);
        assert_eq!(out.json["unrecognised_dnat"], json!([]));
        let ingress = out.json["published"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["mode"] == "ingress")
            .unwrap()
            .clone();
        assert_eq!(
            ingress,
            json!({
                "family": "ipv4", "proto": "tcp", "host_address": null, "host_port": "8098",
                "container_address": "172.18.0.2", "container_port": "8098",
                "bridge": "docker_gwbridge", "mode": "ingress", "now": "open",
                "after": "blocked", "sources": [], "trusted": [], "swarm_service": "edge",
            })
        );
        assert!(manager
            .transcript()
            .contains(&"docker GET /services (/var/run/docker.sock)".to_string()));
        assert_eq!(out.json["warnings"], json!([]));

        // A worker: the same port, unnamed, and no warning.
        let worker = FakeHost::new()
            .without_ipv6()
            .with_tables(Family::V4, &save);
        let out = run(args, &worker);
        let ingress = out.json["published"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["mode"] == "ingress")
            .unwrap()
            .clone();
        assert_eq!(ingress.get("swarm_service"), None);
        assert_eq!(ingress["after"], "blocked");
        assert_eq!(out.json["warnings"], json!([]));

        // No ingress port: /services is never asked.
        let plain = FakeHost::new().without_ipv6();
        run(args, &plain);
        assert!(!plain.transcript().iter().any(|l| l.contains("/services")));
    }

    #[test]
    fn where_docker_put_its_rules_first_the_report_reads_the_guard() {
        // Without `ufw route` rules: the fixture's would open 8080 in DOCKER-USER.
        let args = r#"{"ipv6": false, "ufw_route_rules": false, "allow": [{"port": 9090}]}"#;
        let host = FakeHost::new().without_ipv6();
        assert!(!run(args, &host).failed);
        // Docker (20.10, in ip6tables) puts its rules for a network ahead of DOCKER-USER.
        let save = host
            .run("iptables-save", &[], None)
            .unwrap()
            .stdout
            .replacen(
                "-A FORWARD -j DOCKER-USER\n",
                "-A FORWARD -o docker0 -j DOCKER\n-A FORWARD -j DOCKER-USER\n",
                1,
            );
        let moved = FakeHost::new()
            .without_ipv6()
            .with_tables(Family::V4, &save);
        moved.set_file(
            crate::fake_host::AFTER_RULES,
            &host.file(crate::fake_host::AFTER_RULES).unwrap(),
        );
        let check = run(
            &args.replacen('{', r#"{"_ansible_check_mode": true, "#, 1),
            &moved,
        );
        assert!(!check.failed, "{}", check.json);
        let port = &check.json["published"][0];
        assert_eq!(port["host_port"], "8080");
        assert_eq!(
            (&port["now"], &port["after"]),
            (&json!("blocked"), &json!("blocked")),
            "the guard blocks it now, DOCKER-USER after the run: {port}"
        );
        assert_eq!(check.json["msg"], "would change: live DOCKER-USER (ipv4)");
        let warnings = check.json["warnings"].to_string();
        assert!(
            warnings.contains("the guard in the security table keeps the policy"),
            "{warnings}"
        );

        // Without the guard (an older module's rules), the same host is open now.
        let bare = save.split("*security").next().unwrap().to_string();
        let old = FakeHost::new()
            .without_ipv6()
            .with_tables(Family::V4, &bare);
        old.set_file(
            crate::fake_host::AFTER_RULES,
            &host.file(crate::fake_host::AFTER_RULES).unwrap(),
        );
        let check = run(
            &args.replacen('{', r#"{"_ansible_check_mode": true, "#, 1),
            &old,
        );
        assert_eq!(check.json["published"][0]["now"], "open");
    }
}
