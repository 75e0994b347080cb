//! Desired state against observed state: which files and chains change, the payloads that
//! change them (and put them back), the diff, the commands and the warnings.
//!
//! Pure: it takes what the shell read from the host and returns data. Check mode stops after
//! this step, so everything an operator sees in `--check --diff` is computed here.

use std::borrow::Cow;
use std::path::PathBuf;

use serde::Serialize;

use crate::after_rules;
use crate::exposure::{self, Dnat, Published, Reach};
use crate::live::{self, FilterTable};
use crate::params::{ApplyMode, Backend, Params, State};
use crate::policy;
use crate::rules::{self, ChainSet, Family, DOCKER_USER};

/// Seconds iptables-restore waits for the xtables lock held by another program.
pub const XTABLES_WAIT: &str = "30";

/// What the shell read for one family.
#[derive(Debug, Clone)]
pub struct Observed {
    pub family: Family,
    pub path: PathBuf,
    /// The file's bytes; `None` when it does not exist.
    pub file: Option<Vec<u8>>,
    /// The live filter table; `None` when the running firewall is not consulted (`apply: none`).
    pub live: Option<FilterTable>,
    /// The nat table's DNAT rules (the ports Docker publishes, and others); `None` with
    /// `apply: none`.
    pub nat: Option<Dnat>,
}

/// The plan for one family.
#[derive(Debug, Clone)]
pub struct FamilyPlan {
    pub family: Family,
    pub path: PathBuf,
    pub file_before: Option<Vec<u8>>,
    /// The new file text, when it differs from the current one.
    pub file_after: Option<Vec<u8>>,
    /// The rules written into the file's block.
    pub file_rules: ChainSet,
    /// The live filter and security tables as they were; `None` when the running firewall is
    /// not consulted.
    pub live_before: Option<FilterTable>,
    /// The rules the live chains are set to where they are not `file_rules`: the same without
    /// the `ufw route` jump, while UFW's route chain is not loaded. Read through `live_rules`
    /// (`file_rules` is not copied here for the common case).
    pub live_without_route: Option<ChainSet>,
    /// The `--noflush` payload that brings the live chains to the desired state, when they
    /// differ from it.
    pub live_payload: Option<String>,
    /// The same for the guard in the security table (`live::guard_payload`). Where both
    /// change, one restore loads both (`Tables::Both`, `Plan::payload`).
    pub guard_payload: Option<String>,
}

impl FamilyPlan {
    pub fn changes(&self) -> bool {
        self.file_after.is_some() || self.live_changes()
    }

    /// Whether the module's live chains change: DOCKER-USER's, or the guard's.
    pub fn live_changes(&self) -> bool {
        self.live_payload.is_some() || self.guard_payload.is_some()
    }

    /// What `iptables-restore --test` checks before anything is written, where the block is
    /// present and something changes: the file's section (UFW backend: what `ufw reload` and a
    /// boot load), or the live payloads (iptables backend). Rendered only for the family that is
    /// test-loaded (`apply::validate`): at a thousand entries it is megabytes.
    pub fn validate_payload(&self, params: &Params) -> Option<String> {
        (params.state == State::Present && self.changes()).then(|| match params.backend {
            Backend::Ufw => file_section(params, self.family, &self.file_rules),
            Backend::Iptables => {
                self.live_payload.clone().unwrap_or_default()
                    + self.guard_payload.as_deref().unwrap_or_default()
            }
        })
    }

    /// The rules the live chains are set to (`None` when the running firewall is not
    /// consulted): `file_rules`, or `live_without_route`.
    pub fn live_rules(&self) -> Option<&ChainSet> {
        self.live_before.as_ref()?;
        Some(self.live_without_route.as_ref().unwrap_or(&self.file_rules))
    }

    /// What the live chains hold once the plan's commands ran (`None` when the running
    /// firewall is not consulted), given whether UFW's route chain is loaded then: the planned
    /// `live_rules`, or the file's rules where a `ufw reload` has loaded the route chain with
    /// the file's block.
    pub fn live_after(&self, route_chain_loaded: bool) -> Option<&ChainSet> {
        let live = self.live_rules()?;
        Some(if route_chain_loaded {
            &self.file_rules
        } else {
            live
        })
    }
}

impl FamilyPlan {
    /// The diff entry of the family's file: as it is, and as the plan writes it.
    fn file_diff(&self) -> DiffEntry {
        let path = self.path.display();
        let before = self
            .file_before
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        DiffEntry {
            before_header: format!("{path} (before)"),
            after_header: format!("{path} (after)"),
            before: before.to_string(),
            after: self.file_after.as_deref().map_or_else(
                || before.to_string(),
                |t| String::from_utf8_lossy(t).into_owned(),
            ),
        }
    }

    /// The diff entry of the family's live chains (DOCKER-USER's, then the guard's), as they
    /// are and as the plan sets them; `None` when the running firewall is not consulted.
    fn live_diff(&self, present: bool) -> Option<DiffEntry> {
        let (live, want) = (self.live_before.as_ref()?, self.live_rules()?);
        let want_guard = if present {
            rules::guard_set(want)
        } else {
            ChainSet::default()
        };
        let key = self.family.key();
        Some(DiffEntry {
            before_header: format!("{DOCKER_USER} {key} (live, before)"),
            after_header: format!("{DOCKER_USER} {key} (live, after)"),
            before: live::live_text(live),
            after: live::chain_text(want) + &live::guard_text(&want_guard),
        })
    }
}

/// One entry of Ansible's `diff` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffEntry {
    pub before_header: String,
    pub after_header: String,
    pub before: String,
    pub after: String,
}

/// One port Docker publishes, and who can reach it from the internet now and after the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedPort {
    #[serde(flatten)]
    pub port: Published,
    pub now: Reach,
    pub after: Reach,
    /// After the run: the sources `allow` entries admit to this port (when `restricted`).
    pub sources: Vec<String>,
    /// Trusted networks, which reach every published port.
    pub trusted: Vec<String>,
    /// Who publishes it, as Docker's API names it; added by the module after planning (never
    /// used for a rule), absent when the API could not be read or knows no such container
    /// (or, for an ingress port, when this node is not a Swarm manager).
    #[serde(flatten)]
    pub names: Option<crate::docker_api::Publisher>,
}

/// A command the apply step runs (or, in check mode, would run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `iptables-restore --noflush` (or ip6tables-) of the module's chains in `tables`. Its
    /// input is the family's payload, which the plan holds once (`Plan::payload`).
    Restore { family: Family, tables: Tables },
    /// `ufw reload`.
    UfwReload,
}

/// The tables one restore loads.
///
/// Where a family's filter and security tables both change, one iptables-restore loads both:
/// each process costs a kernel transaction per table anyway, and a second process adds its
/// spawn and a transaction of its own (measured, nft on a 2-CPU host: one process of two tables,
/// 32.5 ms; two processes, 36.7 ms). iptables-restore (nft and legacy alike) commits each table at its COMMIT line and exits
/// at the first failure, so a failed restore may have committed the tables before the failing
/// one. The guard's `*security` section goes first: the rollback of the guard reads the table
/// again (`live::guard_rollback`) and undoes whatever part took effect, whereas the rollback of
/// DOCKER-USER's chains (`live::rollback_payload`) is built from the table before and assumes
/// its payload took effect, which a failed restore whose `*filter` section comes last never
/// committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tables {
    /// DOCKER-USER's chains in filter (`live_payload`).
    Filter,
    /// The guard's in security (`guard_payload`).
    Guard,
    /// The guard's, then DOCKER-USER's.
    Both,
}

impl Tables {
    /// Whether DOCKER-USER's chains (the filter table) are loaded.
    pub fn filter(self) -> bool {
        self != Tables::Guard
    }

    /// Whether the guard's chains (the security table) are loaded.
    pub fn guard(self) -> bool {
        self != Tables::Filter
    }
}

impl Command {
    pub fn program(&self) -> &'static str {
        match self {
            Command::Restore { family, .. } => family.restore_cmd(),
            Command::UfwReload => "ufw",
        }
    }

    pub fn args(&self) -> Vec<&'static str> {
        match self {
            Command::Restore { .. } => vec!["-w", XTABLES_WAIT, "--noflush"],
            Command::UfwReload => vec!["reload"],
        }
    }

    /// The command line as reported in the result.
    pub fn display(&self) -> String {
        let mut line = self.program().to_string();
        for a in self.args() {
            line.push(' ');
            line.push_str(a);
        }
        if let Command::Restore { family, tables } = self {
            // Literals, lighter in the binary than formatting `rules::GUARD_CHAIN`, `DOCKER_USER`
            // and `rules::LOG_CHAIN` (which a test checks they name).
            let what = match tables {
                Tables::Filter => "DOCKER-USER and ufw-docker-logging-deny",
                Tables::Guard => "ufw-docker-guard (security table)",
                Tables::Both => {
                    "ufw-docker-guard (security table), DOCKER-USER and ufw-docker-logging-deny"
                }
            };
            line.push_str(&format!(" < {} {what}", family.key()));
        }
        line
    }
}

/// The whole plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub families: Vec<FamilyPlan>,
    /// The exposure report: Docker's published ports with their reach.
    pub published: Vec<PublishedPort>,
    /// DNAT rules that are not Docker's: ports published by something else.
    pub unrecognised: Vec<String>,
    pub commands: Vec<Command>,
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn changed(&self) -> bool {
        self.families.iter().any(FamilyPlan::changes)
    }

    /// Short names of what changes, for the result's `msg`.
    pub fn summary(&self) -> Vec<String> {
        let mut items = Vec::new();
        for f in &self.families {
            if f.file_after.is_some() {
                items.push(f.path.display().to_string());
            }
        }
        for f in &self.families {
            if f.live_changes() {
                items.push(format!("live {DOCKER_USER} ({})", f.family.key()));
            }
        }
        items
    }

    /// What a command pipes into the program it runs: a restore's payload (the family's
    /// `guard_payload`, its `live_payload`, or, for both tables, the two joined in that order:
    /// see `Tables`; that copy lives as long as the command runs); `None` for a reload.
    pub fn payload(&self, cmd: &Command) -> Option<Cow<'_, str>> {
        let Command::Restore { family, tables } = cmd else {
            return None;
        };
        let f = self.families.iter().find(|f| f.family == *family)?;
        let (filter, guard) = (f.live_payload.as_deref(), f.guard_payload.as_deref());
        match tables {
            Tables::Filter => filter.map(Cow::Borrowed),
            Tables::Guard => guard.map(Cow::Borrowed),
            Tables::Both => Some(Cow::Owned(guard?.to_string() + filter?)),
        }
    }

    /// Ansible's `diff` list: for each family, its file as it is and as the plan writes it (UFW
    /// backend), then its live chains before and after (where the running firewall is
    /// consulted). Built when a run asks for it (`--diff`), from what the plan holds anyway: the
    /// texts double each file and the chains, which a run without a diff never needs.
    pub fn diff(&self, params: &Params) -> Vec<DiffEntry> {
        let mut entries = Vec::new();
        for f in &self.families {
            if params.backend == Backend::Ufw {
                entries.push(f.file_diff());
            }
            if let Some(entry) = f.live_diff(params.state == State::Present) {
                entries.push(entry);
            }
        }
        entries
    }
}

/// Computes the plan. Fails, before anything is written, when a file is missing (unless the
/// block is to be absent anyway) or its markers cannot be trusted. What was observed moves into
/// the plan (each family's file and live table as they were, for the rollback and the diff):
/// at a thousand entries they weigh megabytes, which a copy would double.
// Called once: inlined into `module::run_with`, it weighs 1.5 KB more in the release binary,
// which must stay within 1 MiB (scripts/build.sh).
#[inline(never)]
pub fn plan(params: &Params, observed: Vec<Observed>) -> Result<Plan, String> {
    let mut plan = Plan {
        families: Vec::new(),
        published: Vec::new(),
        unrecognised: Vec::new(),
        commands: Vec::new(),
        warnings: Vec::new(),
    };
    for obs in observed {
        let family = plan_family(params, obs, &mut plan)?;
        plan.families.push(family);
    }
    plan.commands = commands(params, &plan.families);
    Ok(plan)
}

/// The plan for one family. Its warnings and published ports are added to `plan`.
fn plan_family(params: &Params, mut obs: Observed, plan: &mut Plan) -> Result<FamilyPlan, String> {
    let present = params.state == State::Present;
    let file_rules = policy::desired(params, obs.family, params.ufw_route_rules);
    let file_after = if params.backend == Backend::Ufw {
        plan_file(params, &obs, &file_rules, &mut plan.warnings)?
    } else {
        None
    };
    let nat = obs.nat.take();
    let (live_without_route, live_payload, guard_payload) = match &obs.live {
        Some(live) => {
            let without_route = live_without_route(params, obs.family, live);
            let rules = without_route.as_ref().unwrap_or(&file_rules);
            let payload = plan_live(params, &obs, live, nat, rules, plan);
            let hook = live::guard_hook_needed(live, payload.is_some());
            let guard = live::guard_payload(live, rules, present, hook);
            (without_route, payload, guard)
        }
        None => (None, None, None),
    };
    Ok(FamilyPlan {
        family: obs.family,
        path: obs.path,
        file_before: obs.file,
        file_after,
        file_rules,
        live_before: obs.live,
        live_without_route,
        live_payload,
        guard_payload,
    })
}

/// The payload that sets the family's live chains to `want` where they differ. The warnings
/// about the live firewall and the exposure report (of the ports in `nat`) are added to `plan`.
fn plan_live(
    params: &Params,
    obs: &Observed,
    live: &FilterTable,
    nat: Option<Dnat>,
    want: &ChainSet,
    plan: &mut Plan,
) -> Option<String> {
    let present = params.state == State::Present;
    live_warnings(params, obs, live, want, &mut plan.warnings);
    let payload =
        (!live::matches(live, want, present)).then(|| live::set_payload(live, want, present));
    if let Some(nat) = nat {
        plan.published.extend(
            nat.published
                .into_iter()
                .map(|port| report(live, want, obs.family, present, port)),
        );
        plan.unrecognised.extend(nat.other);
    }
    payload
}

/// The rules the live chains get when they are not the file's: without the jump to UFW's route
/// chain where that chain is missing live (the jump could not load); `None` for the file's.
fn live_without_route(params: &Params, family: Family, live: &FilterTable) -> Option<ChainSet> {
    (params.ufw_route_rules && !live.has_chain(family.ufw_route_chain()))
        .then(|| policy::desired(params, family, false))
}

/// What the live firewall of the family calls for saying: UFW's route chain missing, rules the
/// module replaces, DOCKER-USER not first in FORWARD.
fn live_warnings(
    params: &Params,
    obs: &Observed,
    live: &FilterTable,
    want: &ChainSet,
    warnings: &mut Vec<String>,
) {
    let present = params.state == State::Present;
    let key = obs.family.key();
    let route_chain = obs.family.ufw_route_chain();
    if present && params.ufw_route_rules && !live.has_chain(route_chain) {
        warnings.push(format!(
            "UFW's {route_chain} chain is not loaded ({key}): the live {DOCKER_USER} skips `ufw \
             route` rules until UFW is enabled and loads {}",
            obs.path.display()
        ));
    }
    let foreign = live::foreign_rules(live, want);
    if !foreign.is_empty() {
        let verb = if present { "replaced" } else { "removed" };
        warnings.push(format!(
            "{DOCKER_USER} ({key}) held rules ufw_docker does not manage; they are {verb}: {}",
            foreign
                .iter()
                .map(rules::Rule::render)
                .collect::<Vec<_>>()
                .join(" | ")
        ));
    }
    if present && live.needs_hook() {
        warnings.push(format!(
            "Docker runs here ({key}) but {DOCKER_USER} is not the first rule of FORWARD (Docker \
             20.10 never hooks it for IPv6, and puts rules for networks created later ahead of \
             it): the module puts the jump first, as Docker 23+ does. Until it runs again, the \
             guard in the security table keeps the policy for what Docker lets in ahead of \
             {DOCKER_USER}, without `ufw route` exceptions."
        ));
    } else if present && !live.docker_user_hooked_first() {
        warnings.push(format!(
            "{DOCKER_USER} is not the first rule of FORWARD ({key}): Docker is not running here, \
             or runs with its nftables firewall backend. The rules are in place for when Docker \
             starts and hooks {DOCKER_USER}."
        ));
    }
}

/// Who reaches a published port now (the live chain) and after the run (the chain the plan
/// sets; the module hooks it first where Docker runs).
fn report(
    live: &FilterTable,
    want: &ChainSet,
    family: Family,
    present: bool,
    port: Published,
) -> PublishedPort {
    let route = live.rules(family.ufw_route_chain());
    // Where Docker's own rules come before DOCKER-USER, the guard (if it is in place) decides,
    // without the `ufw route` rules.
    let now = if !live.docker_user_hooked_first() && live.guard_hooked_first() {
        exposure::evaluate(&live.held_guard(), true, &[], &port)
    } else {
        exposure::evaluate(&live.held(), live.docker_user_hooked_first(), route, &port)
    };
    let hooked_after = live.docker_user_hooked_first() || live.docker_present();
    let after = if present {
        exposure::evaluate(want, hooked_after, route, &port)
    } else {
        exposure::evaluate(&ChainSet::default(), true, route, &port)
    };
    PublishedPort {
        port,
        now: now.reach,
        after: after.reach,
        sources: after.sources,
        trusted: after.trusted,
        names: None,
    }
}

/// The new text of the family's after.rules, when it must change.
fn plan_file(
    params: &Params,
    obs: &Observed,
    file_rules: &ChainSet,
    warnings: &mut Vec<String>,
) -> Result<Option<Vec<u8>>, String> {
    let present = params.state == State::Present;
    let path = obs.path.display();
    let Some(text) = &obs.file else {
        if present {
            return Err(format!(
                "{path} does not exist; install UFW (or set ufw_docker's after_rules to the \
                 right file, or use backend: iptables on a host without UFW) before adding the \
                 block"
            ));
        }
        return Ok(None);
    };
    let found =
        after_rules::find(text).map_err(|e| format!("{path}: {e}. Nothing was written."))?;
    let section = present.then(|| file_section(params, obs.family, file_rules));
    if found.hand_edited() {
        warnings.push(format!(
            "{path}: the managed block was edited by hand; the edit is replaced"
        ));
    }
    if found.is_legacy() {
        let verb = if present {
            "replaced by"
        } else {
            "removed along with"
        };
        warnings.push(format!(
            "{path}: adopted the block of the ufw-docker script ('# BEGIN UFW AND DOCKER'); it \
             is {verb} the module's block"
        ));
    }
    let section = section.as_deref();
    Ok(after_rules::changes(text, &found, section)
        .then(|| after_rules::splice(text, &found, section).text))
}

/// The iptables-restore section written into the file's block. UFW loads after.rules before
/// it creates its `ufw-user-forward` chain (see `ufw-init-functions`), so the block declares that
/// chain for its jump to resolve; UFW's user.rules, loaded next, fills it. The live payload never
/// declares it: with `--noflush` that would flush the operator's `ufw route` rules.
fn file_section(params: &Params, family: Family, file_rules: &ChainSet) -> String {
    let route: &[&str] = if params.ufw_route_rules {
        &[family.ufw_route_chain()]
    } else {
        &[]
    };
    // The guard's chains too (`rules::security_section`), so that `ufw reload` and a boot load
    // them; only the live payload hooks the guard in FORWARD (a hook in the file would be added
    // again by every reload).
    rules::restore_section(file_rules, route) + &rules::guard_section(file_rules)
}

/// The mutating commands the plan needs, in the order the apply step runs them.
fn commands(params: &Params, families: &[FamilyPlan]) -> Vec<Command> {
    // A family's restore: the guard's chains and (where `filter`) DOCKER-USER's, in one process
    // where both change (`Tables`).
    let restore = |f: &FamilyPlan, filter: bool| {
        let tables = match (
            filter && f.live_payload.is_some(),
            f.guard_payload.is_some(),
        ) {
            (true, true) => Tables::Both,
            (true, false) => Tables::Filter,
            (false, true) => Tables::Guard,
            (false, false) => return None,
        };
        Some(Command::Restore {
            family: f.family,
            tables,
        })
    };
    match (params.apply, params.state) {
        (ApplyMode::None, _) => Vec::new(),
        (ApplyMode::Live, _) => families.iter().filter_map(|f| restore(f, true)).collect(),
        (ApplyMode::Reload, State::Present) => {
            let reload = families
                .iter()
                .any(|f| f.file_after.is_some() || f.live_payload.is_some());
            if !reload {
                // Only the guard differs (its jump, after a boot): no reload for that.
                return families.iter().filter_map(|f| restore(f, false)).collect();
            }
            // A reload loads the block but leaves alone sub-chains a longer policy folded
            // into: the live payload, which deletes them, runs after it where there are any.
            // Nor does it hook the guard in the security table's FORWARD, or delete its stale
            // sub-chains: the guard's payload, which does, runs after the reload wherever the
            // guard is not as wanted.
            let mut cmds = vec![Command::UfwReload];
            for f in families {
                let Some(live) = &f.live_before else {
                    continue;
                };
                let stale = !live::stale_sub_chains(live, &f.file_rules).is_empty();
                cmds.extend(restore(f, stale));
            }
            cmds
        }
        (ApplyMode::Reload, State::Absent) => {
            // A reload loads the files without the block but leaves DOCKER-USER as it was:
            // the chains are emptied with their own payload afterwards.
            let mut cmds = Vec::new();
            if families.iter().any(|f| f.file_after.is_some()) {
                cmds.push(Command::UfwReload);
            }
            cmds.extend(families.iter().filter_map(|f| restore(f, true)));
            cmds
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::parse_args;

    const UFW_AFTER: &[u8] = include_bytes!("../tests/data/after.rules");
    const DOCKER_SAVE: &str = include_str!("../tests/data/iptables-save.docker");

    fn params(json: &str) -> Params {
        parse_args(json).unwrap().params
    }

    fn observed(file: Option<&[u8]>, save: Option<&str>) -> Vec<Observed> {
        vec![Observed {
            family: Family::V4,
            path: PathBuf::from("/etc/ufw/after.rules"),
            file: file.map(<[u8]>::to_vec),
            live: save.map(FilterTable::parse),
            nat: save.map(|s| exposure::parse_published(Family::V4, s)),
        }]
    }

    /// The live table as it is after the plan's payload ran.
    fn after_apply(p: &Plan) -> String {
        let f = &p.families[0];
        let mut save = String::from(
            "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -j DOCKER-USER\n:ufw-user-forward - [0:0]\n",
        );
        let want_set = &f.file_rules;
        save.push_str(":DOCKER-USER - [0:0]\n:ufw-docker-logging-deny - [0:0]\n");
        for l in want_set.lines() {
            save.push_str(&l);
            save.push('\n');
        }
        save.push_str("COMMIT\n");
        let guard = rules::security_section(&rules::guard_set(want_set));
        if !guard.is_empty() {
            save.push_str(&guard.replace(
                "COMMIT\n",
                ":FORWARD ACCEPT [0:0]\n-A FORWARD -j ufw-docker-guard\nCOMMIT\n",
            ));
        }
        save
    }

    #[test]
    fn first_run_changes_file_and_chain_then_second_run_is_a_no_op() {
        let p = params(r#"{"allow": [{"port": 8080}]}"#);
        let first = plan(&p, observed(Some(UFW_AFTER), Some(DOCKER_SAVE))).unwrap();
        assert!(first.changed());
        assert_eq!(first.commands.len(), 1, "one restore of both tables");
        assert_eq!(
            first.commands[0].display(),
            "iptables-restore -w 30 --noflush < ipv4 ufw-docker-guard (security table), \
             DOCKER-USER and ufw-docker-logging-deny"
        );
        let f = &first.families[0];
        assert_eq!(
            first.payload(&first.commands[0]).unwrap(),
            format!(
                "{}{}",
                f.guard_payload.as_deref().unwrap(),
                f.live_payload.as_deref().unwrap()
            ),
            "the guard's security table first, then the filter table"
        );
        let names = [rules::GUARD_CHAIN, DOCKER_USER, rules::LOG_CHAIN];
        assert!(names
            .iter()
            .all(|n| first.commands[0].display().contains(n)));
        assert!(first.families[0].validate_payload(&p).is_some());
        let new_file = first.families[0].file_after.clone().unwrap();
        let second = plan(&p, observed(Some(&new_file), Some(&after_apply(&first)))).unwrap();
        assert!(!second.changed(), "{:?}", second.summary());
        assert!(second.commands.is_empty());
        assert!(second.families[0].validate_payload(&p).is_none());
    }

    #[test]
    fn diff_lists_each_file_and_each_live_chain() {
        let p = params("{}");
        let diff = plan(&p, observed(Some(UFW_AFTER), Some(DOCKER_SAVE)))
            .unwrap()
            .diff(&p);
        assert_eq!(diff.len(), 2);
        assert_eq!(diff[0].before_header, "/etc/ufw/after.rules (before)");
        assert_eq!(diff[0].before.as_bytes(), UFW_AFTER);
        assert!(diff[0].after.contains(after_rules::BEGIN));
        assert_eq!(diff[1].before, "-A DOCKER-USER -j RETURN\n");
        assert!(diff[1].after.contains("ufw-docker: block published ports"));
    }

    #[test]
    fn the_exposure_report_says_what_is_open_now_and_after() {
        let p = params(r#"{"allow": [{"port": 8443, "from": ["198.51.100.0/24"]}]}"#);
        let first = plan(&p, observed(Some(UFW_AFTER), Some(DOCKER_SAVE))).unwrap();
        assert_eq!(first.published.len(), 1);
        let port = &first.published[0];
        assert_eq!(
            (
                port.port.host_port.as_str(),
                port.port.container_port.as_str()
            ),
            ("8080", "80")
        );
        assert_eq!(
            port.now,
            Reach::Open,
            "Docker's bare RETURN lets everyone in"
        );
        // The fixture's `ufw route allow` to 172.17.0.2 port 80 keeps it open...
        assert_eq!(port.after, Reach::Open);
        // ... and without that rule, the policy blocks it.
        let no_route = DOCKER_SAVE.replace(
            "-A ufw-user-forward -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j ACCEPT\n",
            "",
        );
        let blocked = plan(&p, observed(Some(UFW_AFTER), Some(&no_route))).unwrap();
        assert_eq!(blocked.published[0].after, Reach::Blocked);
        let json = serde_json::to_value(&blocked.published[0]).unwrap();
        assert_eq!(json["host_port"], "8080");
        assert_eq!(json["after"], "blocked");
        let absent = plan(
            &params(r#"{"state": "absent"}"#),
            observed(Some(UFW_AFTER), Some(DOCKER_SAVE)),
        )
        .unwrap();
        assert_eq!(absent.published[0].after, Reach::Open);
    }

    #[test]
    fn backend_iptables_leaves_files_alone() {
        let p = params(r#"{"backend": "iptables"}"#);
        let first = plan(&p, observed(None, Some(DOCKER_SAVE))).unwrap();
        assert!(first.families[0].file_after.is_none());
        assert!(first.families[0].live_payload.is_some());
        assert_eq!(first.diff(&p).len(), 1, "only the live chain");
        let v = first.families[0].validate_payload(&p).unwrap();
        assert!(
            !v.contains("ufw-user-forward"),
            "no UFW, no route chain: {v}"
        );
    }

    #[test]
    fn a_missing_file_fails_unless_absent() {
        let err = plan(&params("{}"), observed(None, None)).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
        let ok = plan(&params(r#"{"state": "absent"}"#), observed(None, None)).unwrap();
        assert!(!ok.changed());
    }

    #[test]
    fn broken_markers_fail_the_plan() {
        let text = [UFW_AFTER, after_rules::BEGIN.as_bytes(), b"\n"].concat();
        let err = plan(&params("{}"), observed(Some(&text), None)).unwrap_err();
        assert!(
            err.contains("never closed") && err.contains("Nothing was written"),
            "{err}"
        );
    }

    #[test]
    fn warnings_cover_foreign_rules_missing_hook_and_missing_ufw() {
        let save = "*filter\n:FORWARD ACCEPT [0:0]\n:DOCKER-USER - [0:0]\n-A DOCKER-USER -j ACCEPT\nCOMMIT\n";
        let defaults = params("{}");
        let p = plan(&defaults, observed(Some(UFW_AFTER), Some(save))).unwrap();
        let all = p.warnings.join("\n");
        assert!(
            all.contains("does not manage; they are replaced: -A DOCKER-USER -j ACCEPT"),
            "{all}"
        );
        assert!(all.contains("not the first rule of FORWARD"), "{all}");
        assert!(
            all.contains("ufw-user-forward chain is not loaded"),
            "{all}"
        );
        // The live payload leaves the route jump out, the file keeps it.
        let live = p.families[0].live_payload.as_deref().unwrap();
        assert!(!live.contains("-j ufw-user-forward"));
        assert!(
            String::from_utf8_lossy(p.families[0].file_after.as_deref().unwrap())
                .contains("-j ufw-user-forward")
        );
        assert!(p.families[0]
            .validate_payload(&defaults)
            .unwrap()
            .contains(":ufw-user-forward - [0:0]"));
    }

    #[test]
    fn apply_none_plans_files_only_and_reload_plans_one_reload() {
        let apply_none = params(r#"{"apply": "none"}"#);
        let none = plan(&apply_none, observed(Some(UFW_AFTER), None)).unwrap();
        assert!(none.changed() && none.commands.is_empty());
        assert_eq!(none.diff(&apply_none).len(), 1);
        let reload = plan(
            &params(r#"{"apply": "reload"}"#),
            observed(Some(UFW_AFTER), Some(DOCKER_SAVE)),
        )
        .unwrap();
        assert_eq!(reload.commands.len(), 2);
        assert_eq!(reload.commands[0], Command::UfwReload);
        assert_eq!(
            reload.commands[1].display(),
            "iptables-restore -w 30 --noflush < ipv4 ufw-docker-guard (security table)",
            "the reload loads the guard's chains, never its jump"
        );
    }

    #[test]
    fn absent_removes_the_block_and_empties_the_chains() {
        let p = params(r#"{"allow": [{"port": 8080}]}"#);
        let first = plan(&p, observed(Some(UFW_AFTER), Some(DOCKER_SAVE))).unwrap();
        let with_block = first.families[0].file_after.clone().unwrap();
        let live = after_apply(&first);
        let absent = params(r#"{"state": "absent"}"#);
        let gone = plan(&absent, observed(Some(&with_block), Some(&live))).unwrap();
        assert_eq!(gone.families[0].file_after.as_deref(), Some(UFW_AFTER));
        assert_eq!(
            gone.families[0].live_payload.as_deref(),
            Some("*filter\n:DOCKER-USER - [0:0]\n:ufw-docker-logging-deny - [0:0]\n-X ufw-docker-logging-deny\nCOMMIT\n")
        );
        assert_eq!(
            gone.families[0].guard_payload.as_deref(),
            Some(
                "*security\n-D FORWARD -j ufw-docker-guard\n:ufw-docker-logging-deny - [0:0]\n\
                 :ufw-docker-guard - [0:0]\n-X ufw-docker-logging-deny\n-X ufw-docker-guard\n\
                 COMMIT\n"
            ),
            "the guard's jump, then its chains"
        );
        assert!(gone.families[0].validate_payload(&absent).is_none());
        let reload = plan(
            &params(r#"{"state": "absent", "apply": "reload"}"#),
            observed(Some(&with_block), Some(&live)),
        )
        .unwrap();
        assert_eq!(
            reload.commands,
            [
                Command::UfwReload,
                Command::Restore {
                    family: Family::V4,
                    tables: Tables::Both
                }
            ]
        );
    }
}
