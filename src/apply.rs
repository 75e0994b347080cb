//! Carrying out a plan through the `Host`: validate, back up, write atomically, apply live,
//! check the result, and put everything back if any step fails.
//!
//! The order is chosen so that a failure never leaves the host half-changed: the rules are
//! test-loaded before any write; files are replaced atomically; the live chains are replaced in
//! one `iptables-restore --noflush` transaction per family; and after applying, the chains are
//! read back and compared with the plan. On failure the previous files and chains are restored
//! and the error says what failed and what was put back.

use std::path::PathBuf;

use crate::host::Host;
use crate::live::{self, FilterTable};
use crate::params::{ApplyMode, Params, State};
use crate::plan::{Command, FamilyPlan, Plan, XTABLES_WAIT};
use crate::rules::{self, Family};

/// What the apply step did.
#[derive(Debug, Default)]
pub struct Applied {
    pub backup_files: Vec<PathBuf>,
}

/// Reads one family's live filter table with `iptables-save -t filter` (after applying, when
/// only the filter table matters).
pub fn read_live(host: &dyn Host, family: Family) -> Result<FilterTable, String> {
    Ok(FilterTable::parse(&save(host, family, &["-t", "filter"])?))
}

/// Reads every table of one family with one `iptables-save`: the filter table (the chains) and
/// the nat table (Docker's published ports) come from the same snapshot, for one process
/// spawn and one kernel dump instead of two.
pub fn read_tables(host: &dyn Host, family: Family) -> Result<(FilterTable, String), String> {
    let text = save(host, family, &[])?;
    Ok((FilterTable::parse(&text), text))
}

fn save(host: &dyn Host, family: Family, args: &[&str]) -> Result<String, String> {
    let out = host
        .run(family.save_cmd(), args, None)
        .map_err(|e| format!("cannot read the live firewall: {e:#}"))?;
    if !out.success() {
        return Err(format!(
            "{} failed: {}; is iptables installed and are we root?",
            [family.save_cmd()]
                .iter()
                .chain(args)
                .copied()
                .collect::<Vec<_>>()
                .join(" "),
            out.reason()
        ));
    }
    Ok(out.stdout)
}

/// Test-loads the rules of every family that changes with `iptables-restore --test`. Runs in
/// check mode too: it changes nothing, and it catches a rule the kernel would refuse.
pub fn validate(host: &dyn Host, plan: &Plan) -> Result<(), String> {
    for f in &plan.families {
        let Some(payload) = &f.validate_payload else {
            continue;
        };
        let cmd = f.family.restore_cmd();
        let out = host
            .run(
                cmd,
                &["-w", XTABLES_WAIT, "--test", "--noflush"],
                Some(payload.as_bytes()),
            )
            .map_err(|e| format!("cannot validate the rules: {e:#}"))?;
        if !out.success() {
            return Err(format!(
                "{cmd} --test rejected the rules for {}: {}. Nothing was written. The rules \
                 were:\n{payload}",
                f.path.display(),
                out.reason()
            ));
        }
    }
    Ok(())
}

/// Everything changed so far, to be undone on failure.
#[derive(Default)]
struct Undo {
    files: Vec<(PathBuf, Vec<u8>)>,
    live: Vec<LiveUndo>,
    reloaded: bool,
}

/// One family's live chains, to be put back.
struct LiveUndo {
    family: Family,
    /// The filter table before the run.
    before: FilterTable,
    /// The sub-chains the plan may create.
    created: Vec<String>,
    /// Whether an applied payload put the jump to DOCKER-USER first in FORWARD.
    rehooked: bool,
}

impl Undo {
    /// Notes that `f`'s live chains changed (the first time, from `before`), and whether this
    /// change put the jump to DOCKER-USER first in FORWARD.
    fn changed_live(&mut self, f: &FamilyPlan, before: &FilterTable, rehooked: bool) {
        match self.live.iter_mut().find(|u| u.family == f.family) {
            Some(u) => u.rehooked |= rehooked,
            None => self.live.push(LiveUndo {
                family: f.family,
                before: before.clone(),
                created: f.file_rules.subs.keys().cloned().collect(),
                rehooked,
            }),
        }
    }
}

/// Applies the plan. On error, the host has been restored as far as possible and the message
/// says what failed and how the rollback went.
pub fn apply(host: &dyn Host, params: &Params, plan: &Plan) -> Result<Applied, String> {
    let mut applied = Applied::default();
    let mut undo = Undo::default();
    let result = run_steps(host, params, plan, &mut applied, &mut undo);
    match result {
        Ok(()) => Ok(applied),
        Err(cause) => {
            let rollback = roll_back(host, &undo);
            Err(match rollback {
                Ok(what) if what.is_empty() => cause,
                Ok(what) => format!("{cause}. Rolled back: {}.", what.join(", ")),
                Err(e) => format!(
                    "{cause}. Rolling back ALSO FAILED: {e}. Check the firewall by hand \
                     (iptables-save, {}) before rerunning.",
                    plan.families
                        .iter()
                        .map(|f| f.path.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
        }
    }
}

fn run_steps(
    host: &dyn Host,
    params: &Params,
    plan: &Plan,
    applied: &mut Applied,
    undo: &mut Undo,
) -> Result<(), String> {
    for f in &plan.families {
        if f.file_after.is_some() && params.backup {
            let copy = host
                .backup(&f.path)
                .map_err(|e| format!("{e:#}; nothing was written"))?;
            applied.backup_files.push(copy);
        }
    }
    for f in &plan.families {
        if let (Some(after), Some(before)) = (&f.file_after, &f.file_before) {
            host.write_atomic(&f.path, after)
                .map_err(|e| format!("cannot write {}: {e:#}", f.path.display()))?;
            undo.files.push((f.path.clone(), before.clone()));
        }
    }
    for cmd in &plan.commands {
        let families: Vec<Family> = match cmd {
            // A reload touches every family, even when it fails half-way.
            Command::UfwReload => {
                undo.reloaded = true;
                plan.families.iter().map(|f| f.family).collect()
            }
            // A failed iptables-restore commits nothing, so only a success needs undoing.
            Command::Restore { family, .. } => vec![*family],
        };
        let outcome = run(host, cmd);
        if outcome.is_ok() || *cmd == Command::UfwReload {
            let restored = outcome.is_ok() && matches!(cmd, Command::Restore { .. });
            let present = params.state == State::Present;
            for f in plan
                .families
                .iter()
                .filter(|f| families.contains(&f.family))
            {
                if let Some(live) = &f.live_before {
                    undo.changed_live(f, live, restored && live::rehooks(live, present));
                }
            }
        }
        outcome?;
    }
    if params.apply != ApplyMode::None && !plan.commands.is_empty() {
        verify(host, params, plan)?;
    }
    Ok(())
}

fn run(host: &dyn Host, cmd: &Command) -> Result<(), String> {
    let stdin = match cmd {
        Command::Restore { payload, .. } => Some(payload.as_bytes()),
        Command::UfwReload => None,
    };
    let out = host
        .run(cmd.program(), &cmd.args(), stdin)
        .map_err(|e| format!("{e:#}"))?;
    if !out.success() {
        return Err(format!("`{}` failed: {}", cmd.display(), out.reason()));
    }
    if *cmd == Command::UfwReload && out.stdout.contains("not enabled") {
        return Err(format!(
            "`ufw reload` did not load the rules: {} Enable UFW, or use apply: live",
            out.stdout.trim()
        ));
    }
    Ok(())
}

/// Reads the chains back and checks they are what the plan wanted.
fn verify(host: &dyn Host, params: &Params, plan: &Plan) -> Result<(), String> {
    let present = params.state == State::Present;
    for f in &plan.families {
        if f.live_before.is_none() {
            continue;
        }
        let now = read_live(host, f.family)?;
        let route = params.ufw_route_rules && now.has_chain(f.family.ufw_route_chain());
        let want = rules::desired(params, f.family, route);
        if !live::matches(&now, &want, present) {
            return Err(format!(
                "after applying, the live {} ({}) does not hold the expected rules; it holds:\n{}",
                rules::DOCKER_USER,
                f.family.key(),
                live::chain_text(&now.owned())
            ));
        }
    }
    Ok(())
}

/// Undoes what was done, newest first. Returns what was restored.
fn roll_back(host: &dyn Host, undo: &Undo) -> Result<Vec<String>, String> {
    let mut restored = Vec::new();
    let mut errors = Vec::new();
    for (path, before) in undo.files.iter().rev() {
        match host.write_atomic(path, before) {
            Ok(()) => restored.push(path.display().to_string()),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if undo.reloaded {
        if let Err(e) = run(host, &Command::UfwReload) {
            errors.push(e);
        }
    }
    for u in &undo.live {
        let payload = live::rollback_payload(&u.before, &u.created, u.rehooked);
        let cmd = u.family.restore_cmd();
        match host.run(
            cmd,
            &["-w", XTABLES_WAIT, "--noflush"],
            Some(payload.as_bytes()),
        ) {
            Ok(out) if out.success() => restored.push(format!(
                "live {}{} ({})",
                rules::DOCKER_USER,
                if u.rehooked {
                    " and FORWARD's jumps to it"
                } else {
                    ""
                },
                u.family.key()
            )),
            Ok(out) => errors.push(format!("{cmd} (rollback) failed: {}", out.reason())),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if errors.is_empty() {
        Ok(restored)
    } else {
        Err(errors.join("; "))
    }
}
