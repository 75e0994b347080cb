//! Carrying out a plan through the `Host`: validate, back up, apply live, write atomically (or,
//! for a reload, write then reload), check the result, and put everything back if any step
//! fails.
//!
//! The order is chosen so that a failure never leaves the host half-changed: rules that no live
//! restore loads first are test-loaded before any write (`validate`); with `apply: live` the
//! live chains are replaced first, with one `iptables-restore --noflush` per family, so that
//! rules the kernel refuses stop the run before a file changes; files are replaced atomically;
//! and after applying, the chains are read back and compared with the plan. On failure the
//! previous chains and files are restored and the error says what failed and what was put back.
//!
//! One restore carries both tables where both change, for one process and its spawn less
//! (`plan::Tables`). iptables-restore commits each table at its COMMIT, one transaction each, and
//! stops at the first failure: the guard's security table comes first, so a failed restore of
//! both may have committed the guard, never DOCKER-USER's chains. The guard's rollback reads
//! the table again and undoes what took effect, if anything; DOCKER-USER's is built from the
//! table as it was, and runs only where its restore succeeded.

use std::path::{Path, PathBuf};

use crate::exposure::{self, Dnat};
use crate::host::{Host, Output};
use crate::live::{self, FilterTable};
use crate::params::{ApplyMode, Params, State};
use crate::plan::{Command, FamilyPlan, Plan, Tables, XTABLES_WAIT};
use crate::rules::{self, Family};

/// What the apply step did.
#[derive(Debug, Default)]
pub struct Applied {
    pub backup_files: Vec<PathBuf>,
    /// What the check after applying found that is no failure (Docker moved the jump to
    /// DOCKER-USER meanwhile).
    pub warnings: Vec<String>,
}

/// Reads each family's live filter and security tables with one `iptables-save` per family, the
/// families at the same time (after applying, to check them; and for the guard's rollback). Not
/// `-t filter -t security`: iptables-save takes one table, and asking for a security table a
/// host never loaded fails on some backends.
pub fn read_live(host: &dyn Host, families: &[Family]) -> Result<Vec<FilterTable>, String> {
    save_all(host, families)
        .map(|(_, text)| Ok(FilterTable::parse(&text?)))
        .collect()
}

/// Reads every table of each family with one `iptables-save` per family, the families at the
/// same time: the filter table (the chains) and the nat table (Docker's published ports) come
/// from the same snapshot, for one process spawn and one kernel dump instead of two. Returned
/// in the order of `families`, both parsed: each text is dropped once parsed (at a thousand
/// entries it is a megabyte a family, which the run would otherwise hold to its end).
pub fn read_tables(
    host: &dyn Host,
    families: &[Family],
) -> Result<Vec<(FilterTable, Dnat)>, String> {
    save_all(host, families)
        .map(|(family, text)| {
            let text = text?;
            Ok((
                FilterTable::parse(&text),
                exposure::parse_published(family, &text),
            ))
        })
        .collect()
}

/// One `iptables-save` per family, all started at once (`Host::run_all`): each family with its
/// text, or why its save failed, in the order of `families`.
fn save_all<'a>(
    host: &dyn Host,
    families: &'a [Family],
) -> impl Iterator<Item = (Family, Result<String, String>)> + 'a {
    let cmds: Vec<(&str, &[&str])> = families.iter().map(|f| (f.save_cmd(), &[][..])).collect();
    families
        .iter()
        .zip(host.run_all(&cmds))
        .map(|(&family, out)| (family, saved(family, out)))
}

/// The text of one `iptables-save` that ran, or why it failed.
fn saved(family: Family, out: anyhow::Result<Output>) -> Result<String, String> {
    let out = out.map_err(|e| format!("cannot read the live firewall: {e:#}"))?;
    if !out.success() {
        return Err(format!(
            "{} failed: {}; is iptables installed and are we root?",
            family.save_cmd(),
            out.reason()
        ));
    }
    Ok(out.stdout)
}

/// Test-loads the rules of every family that changes with `iptables-restore --test`, before
/// anything is written. Runs in check mode too: it changes nothing, and it catches a rule the
/// kernel would refuse.
///
/// Outside check mode, with `apply: live`, a family whose DOCKER-USER chains are restored is not
/// test-loaded: `apply` restores the live chains before it writes a file, each restore loads
/// the very rules the file's block holds (less the hook of the guard, which the file never
/// holds), one transaction per table, and one the kernel refuses stops the run before any file
/// is written (the table committed before the refused one, the guard's, is put back). The
/// test-load would only load the same rules twice. A family whose file changes with no live
/// restore (the file alone differs) is still test-loaded: nothing else proves its block loads at
/// the next `ufw reload` or boot.
pub fn validate(
    host: &dyn Host,
    params: &Params,
    plan: &Plan,
    check_mode: bool,
) -> Result<(), String> {
    for f in &plan.families {
        if !check_mode && restores_first(params) && f.live_payload.is_some() {
            continue;
        }
        let Some(payload) = f.validate_payload(params) else {
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

/// Everything changed so far, to be undone on failure: what was there before is read from the
/// plan, which holds it anyway (a copy would double a file and a table of a thousand entries).
#[derive(Default)]
struct Undo<'p> {
    /// Each file written, and its text before.
    files: Vec<(&'p Path, &'p [u8])>,
    live: Vec<LiveUndo<'p>>,
    reloaded: bool,
}

/// One family's live chains, to be put back.
struct LiveUndo<'p> {
    family: Family,
    /// The filter and security tables before the run.
    before: &'p FilterTable,
    /// The sub-chains the plan may create.
    created: Vec<String>,
    /// Whether DOCKER-USER's chains changed (a restore of them, or a reload).
    filter: bool,
    /// Whether an applied payload put the jump to DOCKER-USER first in FORWARD.
    rehooked: bool,
    /// Whether the guard's chains or jumps changed (a restore of them, or a reload).
    guard: bool,
}

impl<'p> Undo<'p> {
    /// Notes that `f`'s live chains in `tables` changed (the first time, from `before`), and
    /// whether the jump to DOCKER-USER went first in FORWARD.
    fn changed_live(
        &mut self,
        f: &FamilyPlan,
        before: &'p FilterTable,
        tables: Tables,
        rehooked: bool,
    ) {
        let u = match self.live.iter().position(|u| u.family == f.family) {
            Some(i) => &mut self.live[i],
            None => {
                self.live.push(LiveUndo {
                    family: f.family,
                    before,
                    created: f.file_rules.subs.keys().cloned().collect(),
                    filter: false,
                    rehooked: false,
                    guard: false,
                });
                self.live.last_mut().expect("just pushed")
            }
        };
        u.filter |= tables.filter();
        u.rehooked |= tables.filter() && rehooked;
        u.guard |= tables.guard();
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

/// Whether the live chains are restored before the files are written: with `apply: live`, so
/// that a restore the kernel refuses stops the run before any file changes (and stands in for
/// the test-load, see `validate`). A reload loads the files, so they come first there.
fn restores_first(params: &Params) -> bool {
    params.apply == ApplyMode::Live
}

fn run_steps<'p>(
    host: &dyn Host,
    params: &Params,
    plan: &'p Plan,
    applied: &mut Applied,
    undo: &mut Undo<'p>,
) -> Result<(), String> {
    for f in &plan.families {
        if f.file_after.is_some() && params.backup {
            let copy = host
                .backup(&f.path)
                .map_err(|e| format!("{e:#}; nothing was written"))?;
            applied.backup_files.push(copy);
        }
    }
    if restores_first(params) {
        run_commands(host, params, plan, undo)?;
        write_files(host, plan, undo)?;
    } else {
        write_files(host, plan, undo)?;
        run_commands(host, params, plan, undo)?;
    }
    if params.apply != ApplyMode::None && !plan.commands.is_empty() {
        applied.warnings = verify(host, params, plan)?;
    }
    Ok(())
}

/// Writes every family's file that changes, atomically, noting each for the rollback.
fn write_files<'p>(host: &dyn Host, plan: &'p Plan, undo: &mut Undo<'p>) -> Result<(), String> {
    for f in &plan.families {
        if let (Some(after), Some(before)) = (&f.file_after, &f.file_before) {
            host.write_atomic(&f.path, after)
                .map_err(|e| format!("cannot write {}: {e:#}", f.path.display()))?;
            undo.files.push((&f.path, before));
        }
    }
    Ok(())
}

/// Runs the plan's restores and reloads in order, noting what each changed for the rollback.
fn run_commands<'p>(
    host: &dyn Host,
    params: &Params,
    plan: &'p Plan,
    undo: &mut Undo<'p>,
) -> Result<(), String> {
    let present = params.state == State::Present;
    for cmd in &plan.commands {
        let outcome = run(host, cmd, plan.payload(cmd).as_deref());
        // What the command may have changed, in which family (`None`: every family). A reload
        // may have loaded some files before it failed (the guard's chains too). A restore
        // commits each table at its COMMIT and stops at the first failure: a failed one of one
        // table committed nothing, and of both tables (the guard's first, `plan::Tables`) at
        // most the guard's.
        let (only, tables, rehooks) = match *cmd {
            Command::UfwReload => {
                undo.reloaded = true;
                (None, Some(Tables::Both), false)
            }
            Command::Restore { family, tables } if outcome.is_ok() => {
                (Some(family), Some(tables), true)
            }
            Command::Restore {
                family,
                tables: Tables::Both,
            } => (Some(family), Some(Tables::Guard), false),
            Command::Restore { family, .. } => (Some(family), None, false),
        };
        for f in &plan.families {
            let (Some(tables), Some(live)) = (tables, &f.live_before) else {
                continue;
            };
            if only.is_some_and(|family| family != f.family) {
                continue;
            }
            let rehooked = rehooks && live::rehooks(live, present);
            undo.changed_live(f, live, tables, rehooked);
        }
        outcome?;
    }
    Ok(())
}

/// Runs `cmd`, piping `payload` into it (a restore's, from `Plan::payload`).
fn run(host: &dyn Host, cmd: &Command, payload: Option<&str>) -> Result<(), String> {
    let stdin = payload.map(str::as_bytes);
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

/// Reads the chains back (the families at the same time) and checks they are what the plan
/// wanted: DOCKER-USER's chains, and the guard's with its jump first where the plan set it. The
/// jump to DOCKER-USER may have moved meanwhile: Docker 20.10 puts the rules of a network it creates, or of every network when it
/// starts, ahead of it at any moment. That is a warning, not a failure (the guard holds the
/// policy until the next run puts the jump first again).
fn verify(host: &dyn Host, params: &Params, plan: &Plan) -> Result<Vec<String>, String> {
    let present = params.state == State::Present;
    let mut warnings = Vec::new();
    let read: Vec<&FamilyPlan> = plan
        .families
        .iter()
        .filter(|f| f.live_rules().is_some())
        .collect();
    let families: Vec<Family> = read.iter().map(|f| f.family).collect();
    for (f, now) in read.into_iter().zip(read_live(host, &families)?) {
        let Some(want) = f.live_after(now.has_chain(f.family.ufw_route_chain())) else {
            continue;
        };
        if !live::chains_match(&now, want, present) {
            return Err(format!(
                "after applying, the live {} ({}) does not hold the expected rules; it holds:\n{}",
                rules::DOCKER_USER,
                f.family.key(),
                live::chain_text(&now.owned())
            ));
        }
        if !live::guard_matches(&now, want, present, f.guard_payload.is_some()) {
            return Err(format!(
                "after applying, the guard ({} in the security table, {}) does not hold the \
                 expected rules, or its jump is not first in FORWARD; it holds:\n{}",
                rules::GUARD_CHAIN,
                f.family.key(),
                live::guard_text(&now.guard())
            ));
        }
        if present && now.needs_hook() {
            warnings.push(format!(
                "Docker put its own rules ahead of the jump to {} in FORWARD ({}) while the \
                 module ran (Docker 20.10 does so when it creates a network or starts): the guard \
                 holds the policy, without `ufw route` exceptions, until the next run puts the \
                 jump first again",
                rules::DOCKER_USER,
                f.family.key()
            ));
        }
    }
    Ok(warnings)
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
        if let Err(e) = run(host, &Command::UfwReload, None) {
            errors.push(e);
        }
    }
    for u in &undo.live {
        let cmd = u.family.restore_cmd();
        let mut payloads = Vec::new();
        if u.guard {
            // Read again: whatever part of the guard's payload took effect is undone, and
            // nothing where none did (a failed restore of both tables, `plan::Tables`).
            match read_live(host, &[u.family]).map(|mut now| now.remove(0)) {
                Ok(now) if live::guard_as_before(u.before, &now) => {}
                Ok(now) => payloads.push((
                    live::guard_rollback(u.before, &now, &u.created),
                    format!("live {} ({})", rules::GUARD_CHAIN, u.family.key()),
                )),
                Err(e) => errors.push(e),
            }
        }
        if u.filter {
            payloads.push((
                live::rollback_payload(u.before, &u.created, u.rehooked),
                format!(
                    "live {}{} ({})",
                    rules::DOCKER_USER,
                    if u.rehooked {
                        " and FORWARD's jumps to it"
                    } else {
                        ""
                    },
                    u.family.key()
                ),
            ));
        }
        for (payload, what) in payloads {
            match host.run(
                cmd,
                &["-w", XTABLES_WAIT, "--noflush"],
                Some(payload.as_bytes()),
            ) {
                Ok(out) if out.success() => restored.push(what),
                Ok(out) => errors.push(format!("{cmd} (rollback) failed: {}", out.reason())),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
    }
    if errors.is_empty() {
        Ok(restored)
    } else {
        Err(errors.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_host::{FakeHost, FileOp, Reply, AFTER6_RULES, AFTER_RULES, V6_SAVE};
    use crate::params::parse_args;
    use crate::plan::{self, Observed};
    use crate::rules::ChainSet;

    const RESTORE: [&str; 3] = ["-w", "30", "--noflush"];
    const POLICY: &str = r#"{"allow": [{"port": 8080}], "trusted_networks": ["192.168.50.0/24"]}"#;
    const V6_FAILS: &str = "ip6tables-restore: unable to initialize table 'filter'";
    /// The message of an ip6tables-restore that fails with `V6_FAILS`.
    const V6_RESTORE_FAILED: &str = "`ip6tables-restore -w 30 --noflush < ipv6 ufw-docker-guard \
                                     (security table), DOCKER-USER and ufw-docker-logging-deny` \
                                     failed: ip6tables-restore: unable to initialize table \
                                     'filter' (exit 4)";
    /// How a failed run ends when it could not put everything back.
    const BY_HAND: &str = "Check the firewall by hand (iptables-save, /etc/ufw/after.rules, \
                           /etc/ufw/after6.rules) before rerunning.";

    /// What `module::run` observes on `host`: both files, both families' tables.
    fn observe(host: &FakeHost) -> Vec<Observed> {
        let tables = read_tables(host, &[Family::V4, Family::V6]).unwrap();
        [(Family::V4, AFTER_RULES), (Family::V6, AFTER6_RULES)]
            .into_iter()
            .zip(tables)
            .map(|((family, path), (live, nat))| {
                let path = PathBuf::from(path);
                Observed {
                    family,
                    file: host.read(&path).unwrap(),
                    path,
                    live: Some(live),
                    nat: Some(nat),
                }
            })
            .collect()
    }

    /// The parameters for `args` and their plan on `host`, which must change something; the
    /// transcript starts after planning.
    fn planned(host: &FakeHost, args: &str) -> (Params, Plan) {
        let params = parse_args(args).unwrap().params;
        let plan = plan::plan(&params, observe(host)).unwrap();
        assert!(plan.changed());
        host.clear_transcript();
        (params, plan)
    }

    fn lines(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    /// What the last iptables-restore (IPv4) on `host` was given.
    fn last_restore(host: &FakeHost) -> String {
        let calls = host.calls().into_iter().rev();
        let mut restores = calls.filter(|c| c.program == "iptables-restore");
        restores.next().and_then(|c| c.stdin).unwrap()
    }

    /// The baseline the failures below depart from: everything applies, is checked, and the
    /// next plan has nothing left to do.
    #[test]
    fn a_successful_apply_leaves_what_the_plan_wanted() {
        let host = FakeHost::new();
        let (params, plan) = planned(&host, POLICY);
        apply(&host, &params, &plan).unwrap();
        assert_eq!(
            host.transcript(),
            lines(&[
                // One restore per family: the guard's security table, then the filter table.
                "iptables-restore -w 30 --noflush",
                "ip6tables-restore -w 30 --noflush",
                "write /etc/ufw/after.rules",
                "write /etc/ufw/after6.rules",
                "iptables-save",
                "ip6tables-save",
            ])
        );
        for f in &plan.families {
            assert_eq!(host.file(f.path.to_str().unwrap()), f.file_after);
            let live = host.filter(f.family);
            assert_eq!(live.owned(), f.file_rules);
            assert_eq!(live.guard(), rules::guard_set(&f.file_rules));
            assert!(live.guard_hooked_first());
        }
        let again = plan::plan(&params, observe(&host)).unwrap();
        assert!(!again.changed(), "{:?}", again.summary());
    }

    #[test]
    fn a_file_write_failing_after_the_other_familys_puts_that_one_back() {
        let host = FakeHost::new();
        let (params, plan) = planned(&host, POLICY);
        let before = host.snapshot();
        host.fail(
            FileOp::Write,
            AFTER6_RULES,
            1,
            "cannot create a temporary file in /etc/ufw: No space left on device (os error 28)",
        );
        let err = apply(&host, &params, &plan).unwrap_err();
        assert_eq!(
            err,
            "cannot write /etc/ufw/after6.rules: /etc/ufw/after6.rules was left as it was: \
             cannot create a temporary file in /etc/ufw: No space left on device (os error 28). \
             Rolled back: /etc/ufw/after.rules, live ufw-docker-guard (ipv4), live DOCKER-USER \
             (ipv4), live ufw-docker-guard (ipv6), live DOCKER-USER (ipv6)."
        );
        // With `apply: live` the chains are restored first: they go back too.
        assert_eq!(
            host.transcript(),
            lines(&[
                "iptables-restore -w 30 --noflush",
                "ip6tables-restore -w 30 --noflush",
                "write /etc/ufw/after.rules",
                "write /etc/ufw/after6.rules (failed)",
                "write /etc/ufw/after.rules",
                "iptables-save",
                "iptables-restore -w 30 --noflush",
                "iptables-restore -w 30 --noflush",
                "ip6tables-save",
                "ip6tables-restore -w 30 --noflush",
                "ip6tables-restore -w 30 --noflush",
            ])
        );
        assert_eq!(host.snapshot(), before, "files and chains as they were");
    }

    #[test]
    fn a_live_restore_failing_writes_no_file_and_undoes_the_applied_family() {
        let host = FakeHost::new();
        let (params, plan) = planned(&host, POLICY);
        let before = host.snapshot();
        host.reply("ip6tables-restore", &RESTORE, [Reply::exit(4, V6_FAILS)]);
        let err = apply(&host, &params, &plan).unwrap_err();
        assert_eq!(
            err,
            format!(
                "{V6_RESTORE_FAILED}. Rolled back: live ufw-docker-guard (ipv4), live DOCKER-USER \
                 (ipv4)."
            )
        );
        // The chains go first, so no file was written. IPv4's chains (its guard's, then
        // DOCKER-USER's) are put back. The failed restore of IPv6's two tables may have
        // committed the first, the guard's: read again, it is as it was, and left alone.
        assert_eq!(
            host.transcript(),
            lines(&[
                "iptables-restore -w 30 --noflush",
                "ip6tables-restore -w 30 --noflush (exit 4)",
                "iptables-save",
                "iptables-restore -w 30 --noflush",
                "iptables-restore -w 30 --noflush",
                "ip6tables-save",
            ])
        );
        let rollback = last_restore(&host);
        assert_eq!(
            rollback,
            live::rollback_payload(&before.filters[&Family::V4], &[], false),
            "IPv4's chains are put back from what was read before the run"
        );
        assert_eq!(host.snapshot(), before, "files and chains as they were");
    }

    #[test]
    fn a_restore_of_both_tables_failing_in_the_filter_table_puts_back_the_guard_it_committed() {
        // IPv6's FORWARD jumps to a sub-chain of an earlier policy, which this one deletes: the
        // filter table refuses, after the guard's security table, first in the same restore,
        // was committed.
        let save = V6_SAVE
            .replace(
                ":DOCKER-USER - [0:0]\n",
                ":DOCKER-USER - [0:0]\n:ufw-docker-allow-tcp-9 - [0:0]\n",
            )
            .replace(
                "-A FORWARD -j ufw6-before-forward\n",
                "-A FORWARD -j ufw6-before-forward\n-A FORWARD -j ufw-docker-allow-tcp-9\n",
            );
        let host = FakeHost::new().with_tables(Family::V6, &save);
        let (params, plan) = planned(&host, POLICY);
        let before = host.snapshot();
        let err = apply(&host, &params, &plan).unwrap_err();
        let cmd = "`ip6tables-restore -w 30 --noflush < ipv6 ufw-docker-guard (security table), \
                   DOCKER-USER and ufw-docker-logging-deny` failed";
        assert!(err.starts_with(cmd), "{err}");
        // IPv6's guard is put back; its DOCKER-USER was never changed.
        assert!(
            err.ends_with(
                "chain 'ufw-docker-allow-tcp-9' is still referenced (exit 1). Rolled back: live \
                 ufw-docker-guard (ipv4), live DOCKER-USER (ipv4), live ufw-docker-guard (ipv6)."
            ),
            "{err}"
        );
        assert_eq!(
            host.transcript(),
            lines(&[
                "iptables-restore -w 30 --noflush",
                "ip6tables-restore -w 30 --noflush (exit 1)",
                "iptables-save",
                "iptables-restore -w 30 --noflush",
                "iptables-restore -w 30 --noflush",
                "ip6tables-save",
                "ip6tables-restore -w 30 --noflush",
            ])
        );
        assert_eq!(host.snapshot(), before, "files and chains as they were");
    }

    #[test]
    fn a_failure_after_the_forward_jump_was_moved_puts_forward_back() {
        // Docker put its isolation jump ahead of DOCKER-USER (a network created later): the
        // IPv4 payload moves the jump first, then IPv6 fails.
        let save = include_str!("../tests/data/iptables-save.docker").replace(
            "-A FORWARD -j DOCKER-USER\n-A FORWARD -j DOCKER-ISOLATION-STAGE-1\n",
            "-A FORWARD -j DOCKER-ISOLATION-STAGE-1\n-A FORWARD -j DOCKER-USER\n",
        );
        let host = FakeHost::new().with_tables(Family::V4, &save);
        assert!(!host.filter(Family::V4).docker_user_hooked_first());
        let (params, plan) = planned(&host, POLICY);
        let before = host.snapshot();
        host.reply("ip6tables-restore", &RESTORE, [Reply::exit(4, V6_FAILS)]);
        let err = apply(&host, &params, &plan).unwrap_err();
        assert_eq!(
            err,
            format!(
                "{V6_RESTORE_FAILED}. Rolled back: live ufw-docker-guard (ipv4), live DOCKER-USER \
                 and FORWARD's jumps to it (ipv4)."
            )
        );
        let rollback = last_restore(&host);
        assert!(
            rollback.contains("-D FORWARD -j DOCKER-USER\n-I FORWARD 2 -j DOCKER-USER\n"),
            "{rollback}"
        );
        assert_eq!(host.snapshot(), before, "FORWARD's order too, as it was");
    }

    #[test]
    fn docker_moving_the_jump_during_the_run_is_a_warning_not_a_rollback() {
        // What the check after applying reads: the applied chains, but Docker (20.10, making a
        // network) has put a rule of its own ahead of the jump to DOCKER-USER meanwhile.
        let twin = FakeHost::new().without_ipv6();
        let (params, plan) = planned(&twin, POLICY);
        apply(&twin, &params, &plan).unwrap();
        let moved = twin
            .run("iptables-save", &[], None)
            .unwrap()
            .stdout
            .replacen(
                "-A FORWARD -j DOCKER-USER\n",
                "-A FORWARD -o br-new -j DOCKER\n-A FORWARD -j DOCKER-USER\n",
                1,
            );
        let host = FakeHost::new().without_ipv6();
        let (params, plan) = planned(&host, POLICY);
        host.reply("iptables-save", &[], [Reply::Succeed(moved)]);
        let applied = apply(&host, &params, &plan).unwrap();
        assert_eq!(applied.warnings.len(), 1, "{:?}", applied.warnings);
        assert!(
            applied.warnings[0].starts_with(
                "Docker put its own rules ahead of the jump to DOCKER-USER in FORWARD (ipv4)"
            ),
            "{:?}",
            applied.warnings
        );
        assert_eq!(
            host.filter(Family::V4).owned(),
            plan.families[0].file_rules,
            "nothing rolled back"
        );
    }

    #[test]
    fn a_failed_verify_undoes_everything_and_shows_what_the_chain_held() {
        let host = FakeHost::new();
        let (params, plan) = planned(&host, POLICY);
        let before = host.snapshot();
        // iptables-restore says it loaded the rules, and did not.
        host.reply(
            "iptables-restore",
            &RESTORE,
            [Reply::Succeed(String::new())],
        );
        let err = apply(&host, &params, &plan).unwrap_err();
        // IPv4's guard, read again, is as it was: nothing of it is put back, nor said to be.
        assert_eq!(
            err,
            "after applying, the live DOCKER-USER (ipv4) does not hold the expected rules; it \
             holds:\n-A DOCKER-USER -j RETURN\n. Rolled back: /etc/ufw/after6.rules, \
             /etc/ufw/after.rules, live DOCKER-USER (ipv4), live ufw-docker-guard (ipv6), live \
             DOCKER-USER (ipv6)."
        );
        assert_eq!(
            host.transcript(),
            lines(&[
                "iptables-restore -w 30 --noflush",
                "ip6tables-restore -w 30 --noflush",
                "write /etc/ufw/after.rules",
                "write /etc/ufw/after6.rules",
                // The check reads both families at once, then finds IPv4 wrong.
                "iptables-save",
                "ip6tables-save",
                "write /etc/ufw/after6.rules",
                "write /etc/ufw/after.rules",
                "iptables-save",
                "iptables-restore -w 30 --noflush",
                "ip6tables-save",
                "ip6tables-restore -w 30 --noflush",
                "ip6tables-restore -w 30 --noflush",
            ])
        );
        assert_eq!(host.snapshot(), before, "files and chains as they were");
    }

    #[test]
    fn a_ufw_reload_failing_half_way_is_undone_in_both_families() {
        let host = FakeHost::new();
        let (params, plan) = planned(&host, &POLICY.replacen('{', r#"{"apply": "reload", "#, 1));
        // The reload loads the guard's chains; its payload, run after, puts its jump first.
        assert_eq!(plan.commands.len(), 3);
        assert_eq!(plan.commands[0], Command::UfwReload);
        let before = host.snapshot();
        // UFW loads after.rules (the module's block goes live for IPv4), then fails on IPv6.
        host.reply(
            "ufw",
            &["reload"],
            [Reply::ReloadPartly {
                loads: vec![Family::V4],
                code: 1,
                stderr: "ERROR: problem running ip6tables-restore".into(),
            }],
        );
        let err = apply(&host, &params, &plan).unwrap_err();
        assert_eq!(
            err,
            "`ufw reload` failed: ERROR: problem running ip6tables-restore (exit 1). Rolled \
             back: /etc/ufw/after6.rules, /etc/ufw/after.rules, live ufw-docker-guard (ipv4), \
             live DOCKER-USER (ipv4), live DOCKER-USER (ipv6)."
        );
        // The old files are reloaded, then each family's chains put back: a reload of files
        // without the block leaves DOCKER-USER as the failed reload made it. IPv6's guard, read
        // again, is as it was (the reload failed before IPv6's block): it is left alone.
        assert_eq!(
            host.transcript(),
            lines(&[
                "write /etc/ufw/after.rules",
                "write /etc/ufw/after6.rules",
                "ufw reload (exit 1)",
                "write /etc/ufw/after6.rules",
                "write /etc/ufw/after.rules",
                "ufw reload",
                "iptables-save",
                "iptables-restore -w 30 --noflush",
                "iptables-restore -w 30 --noflush",
                "ip6tables-save",
                "ip6tables-restore -w 30 --noflush",
            ])
        );
        assert_eq!(host.snapshot(), before, "files and chains as they were");
    }

    #[test]
    fn a_failing_live_rollback_is_reported_and_the_rest_is_still_put_back() {
        let host = FakeHost::new();
        let (params, plan) = planned(&host, POLICY);
        let before = host.snapshot();
        host.reply("ip6tables-restore", &RESTORE, [Reply::exit(4, V6_FAILS)]);
        host.reply(
            "iptables-restore",
            &RESTORE,
            [
                Reply::Simulate,
                Reply::Simulate,
                Reply::exit(1, "iptables-restore: line 2 failed"),
            ],
        );
        let err = apply(&host, &params, &plan).unwrap_err();
        assert_eq!(
            err,
            format!(
                "{V6_RESTORE_FAILED}. Rolling back ALSO FAILED: iptables-restore (rollback) \
                 failed: iptables-restore: line 2 failed (exit 1). {BY_HAND}"
            )
        );
        assert_eq!(
            host.transcript(),
            lines(&[
                "iptables-restore -w 30 --noflush",
                "ip6tables-restore -w 30 --noflush (exit 4)",
                "iptables-save",
                "iptables-restore -w 30 --noflush",
                "iptables-restore -w 30 --noflush (exit 1)",
                "ip6tables-save",
            ])
        );
        // No file was written; IPv4's guard is back; IPv4's DOCKER-USER stays as applied,
        // IPv6's chains were never changed.
        assert_eq!(host.snapshot().files, before.files);
        assert_eq!(host.filter(Family::V4).owned(), plan.families[0].file_rules);
        assert_eq!(host.filter(Family::V4).guard(), ChainSet::default());
        assert_eq!(host.filter(Family::V6), before.filters[&Family::V6]);
    }

    #[test]
    fn a_failing_file_rollback_does_not_stop_the_live_rollback() {
        // The chains are applied, after.rules is written, after6.rules is not (disk full), and
        // putting after.rules back fails too: the live chains are put back all the same.
        let host = FakeHost::new();
        let (params, plan) = planned(&host, POLICY);
        let before = host.snapshot();
        host.fail(
            FileOp::Write,
            AFTER6_RULES,
            1,
            "cannot create a temporary file in /etc/ufw: No space left on device (os error 28)",
        );
        host.fail(
            FileOp::Write,
            AFTER_RULES,
            2,
            "cannot create a temporary file in /etc/ufw: Read-only file system (os error 30)",
        );
        let err = apply(&host, &params, &plan).unwrap_err();
        assert_eq!(
            err,
            format!(
                "cannot write /etc/ufw/after6.rules: /etc/ufw/after6.rules was left as it was: \
                 cannot create a temporary file in /etc/ufw: No space left on device (os error \
                 28). Rolling back ALSO FAILED: /etc/ufw/after.rules was left as it was: cannot \
                 create a temporary file in /etc/ufw: Read-only file system (os error 30). \
                 {BY_HAND}"
            )
        );
        assert_eq!(
            host.transcript(),
            lines(&[
                "iptables-restore -w 30 --noflush",
                "ip6tables-restore -w 30 --noflush",
                "write /etc/ufw/after.rules",
                "write /etc/ufw/after6.rules (failed)",
                "write /etc/ufw/after.rules (failed)",
                "iptables-save",
                "iptables-restore -w 30 --noflush",
                "iptables-restore -w 30 --noflush",
                "ip6tables-save",
                "ip6tables-restore -w 30 --noflush",
                "ip6tables-restore -w 30 --noflush",
            ])
        );
        assert_eq!(host.file(AFTER_RULES), plan.families[0].file_after);
        assert_eq!(
            host.file(AFTER6_RULES),
            before.files.get(&PathBuf::from(AFTER6_RULES)).cloned()
        );
        assert_eq!(
            host.snapshot().filters,
            before.filters,
            "both families' chains as they were"
        );
    }

    #[test]
    fn a_failing_backup_writes_nothing() {
        let host = FakeHost::new();
        let (params, plan) = planned(&host, &POLICY.replacen('{', r#"{"backup": true, "#, 1));
        let before = host.snapshot();
        host.fail(
            FileOp::Backup,
            AFTER6_RULES,
            1,
            "Permission denied (os error 13)",
        );
        let err = apply(&host, &params, &plan).unwrap_err();
        assert_eq!(
            err,
            "cannot back up /etc/ufw/after6.rules to \
             /etc/ufw/after6.rules.1234.2026-01-01@00:00:00~: Permission denied (os error 13); \
             nothing was written"
        );
        assert_eq!(
            host.transcript(),
            lines(&[
                "backup /etc/ufw/after.rules",
                "backup /etc/ufw/after6.rules (failed)",
            ])
        );
        let mut want = before.files.clone();
        want.insert(
            PathBuf::from("/etc/ufw/after.rules.1234.2026-01-01@00:00:00~"),
            before.files[&PathBuf::from(AFTER_RULES)].clone(),
        );
        assert_eq!(
            host.snapshot().files,
            want,
            "only the first backup was made"
        );
        assert_eq!(host.snapshot().filters, before.filters);
    }

    /// A reload loads UFW's route chain with the file's block: the check afterwards expects the
    /// file's rules, route jump included, though the plan set the live chains without it.
    #[test]
    fn a_reload_that_loads_ufws_route_chain_is_checked_against_the_files_rules() {
        let save = include_str!("../tests/data/iptables-save.docker")
            .replace(":ufw-user-forward - [0:0]\n", "")
            .replace("-A ufw-before-forward -j ufw-user-forward\n", "")
            .replace(
                "-A ufw-user-forward -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j ACCEPT\n",
                "",
            );
        let host = FakeHost::new().with_tables(Family::V4, &save);
        let (params, plan) = planned(&host, &POLICY.replacen('{', r#"{"apply": "reload", "#, 1));
        let v4 = &plan.families[0];
        assert_ne!(v4.live_rules(), Some(&v4.file_rules), "no route jump live");
        assert_eq!(v4.live_after(false), v4.live_rules());
        assert_eq!(v4.live_after(true), Some(&v4.file_rules));
        apply(&host, &params, &plan).unwrap();
        assert!(host.filter(Family::V4).has_chain("ufw-user-forward"));
        assert_eq!(host.filter(Family::V4).owned(), v4.file_rules);
    }
}
