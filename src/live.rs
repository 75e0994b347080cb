//! The running firewall as the module sees it: `iptables-save` output (its filter and security
//! tables) parsed into chains and rules, and the `--noflush` payloads that set (or put back) the
//! chains the module owns.
//!
//! Pure text in, data out. Only DOCKER-USER, the module's logging chain and its folding
//! sub-chains (`rules::is_sub_chain`) are ever written in filter, and in security only the
//! guard (`rules::GUARD_CHAIN`), its copies of those chains and the guard's jump in FORWARD;
//! other chains are read to learn whether Docker hooks DOCKER-USER first in FORWARD and whether
//! UFW's `ufw route` chain exists.

use std::collections::BTreeMap;

use crate::rules::{
    guard_hook_args, guard_rules, guard_section, is_sub_chain, restore_section, tokenize, ChainSet,
    Chains, Rule, DOCKER_USER, GUARD_CHAIN, LOG_CHAIN,
};

/// The filter table of one family, and its security table (where the module keeps its guard).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilterTable {
    /// Every chain declared, with its rules in order.
    pub chains: BTreeMap<String, Vec<Rule>>,
    /// The security table's chains, the same way (none where it is not loaded).
    pub security: BTreeMap<String, Vec<Rule>>,
}

impl FilterTable {
    /// Parses the `*filter` and `*security` sections of iptables-save output. Other tables,
    /// comments and counters are ignored; an empty output (no table loaded yet) gives no chains.
    pub fn parse(save: &str) -> FilterTable {
        let mut table = FilterTable::default();
        let mut into: Option<&mut BTreeMap<String, Vec<Rule>>> = None;
        for line in save.lines() {
            let line = line.trim_end();
            if let Some(name) = line.strip_prefix('*') {
                into = match name {
                    "filter" => Some(&mut table.chains),
                    "security" => Some(&mut table.security),
                    _ => None,
                };
                continue;
            }
            let Some(chains) = into.as_deref_mut() else {
                continue;
            };
            if let Some(decl) = line.strip_prefix(':') {
                let name = decl.split_whitespace().next().unwrap_or_default();
                chains.entry(name.to_string()).or_default();
            } else if line.starts_with("-A ") {
                let mut tokens = tokenize(line);
                // Counters from `iptables-save -c` come first as `[p:b]`; drop them.
                tokens.retain(|t| !(t.starts_with('[') && t.ends_with(']') && t.contains(':')));
                if tokens.len() >= 2 {
                    let rule = Rule::of(&tokens[1], &tokens[2..]);
                    match chains.get_mut(tokens[1].as_str()) {
                        Some(rules) => rules.push(rule),
                        None => {
                            chains.insert(tokens.swap_remove(1), vec![rule]);
                        }
                    }
                }
            }
        }
        table
    }

    /// The rules of a chain of the security table.
    pub fn security_rules(&self, chain: &str) -> &[Rule] {
        self.security.get(chain).map_or(&[], Vec::as_slice)
    }

    /// Whether the security table's FORWARD jumps to the guard first.
    pub fn guard_hooked_first(&self) -> bool {
        self.security_rules("FORWARD")
            .first()
            .is_some_and(|r| r.args_are(&guard_hook_args()))
    }

    /// The guard's chains as they are now (in the shape of `rules::guard_set`).
    pub fn guard(&self) -> ChainSet {
        ChainSet {
            docker_user: self.security_rules(GUARD_CHAIN).to_vec(),
            log_chain: self.security_rules(LOG_CHAIN).to_vec(),
            subs: self
                .security
                .iter()
                .filter(|(name, _)| is_sub_chain(name))
                .map(|(name, rules)| (name.clone(), rules.clone()))
                .collect(),
        }
    }

    /// The module's chains in the security table that exist now (the guard's sub-chains first,
    /// then the logging chain, then the guard: the order they can be deleted in).
    fn guard_chains(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .security
            .keys()
            .map(String::as_str)
            .filter(|name| is_sub_chain(name))
            .collect();
        for name in [LOG_CHAIN, GUARD_CHAIN] {
            if self.security.contains_key(name) {
                names.push(name);
            }
        }
        names
    }

    pub fn has_chain(&self, name: &str) -> bool {
        self.chains.contains_key(name)
    }

    pub fn rules(&self, chain: &str) -> &[Rule] {
        self.chains.get(chain).map_or(&[], Vec::as_slice)
    }

    /// Whether FORWARD's first rule jumps to DOCKER-USER, as Docker sets it up.
    pub fn docker_user_hooked_first(&self) -> bool {
        self.rules("FORWARD")
            .first()
            .is_some_and(|r| r.args_are(&["-j", DOCKER_USER]))
    }

    /// Whether Docker's own filter chains are loaded in this family (Docker runs here, with
    /// iptables for this family enabled).
    pub fn docker_present(&self) -> bool {
        self.has_chain("DOCKER")
    }

    /// Whether the module must put the FORWARD jump to DOCKER-USER first itself: Docker runs
    /// in this family but did not (Docker 20.10 never hooks DOCKER-USER in ip6tables, and
    /// rules it inserts for networks created later push an earlier jump down).
    pub fn needs_hook(&self) -> bool {
        self.docker_present() && !self.docker_user_hooked_first()
    }

    /// The module's chains as they are now.
    pub fn owned(&self) -> ChainSet {
        ChainSet {
            docker_user: self.rules(DOCKER_USER).to_vec(),
            log_chain: self.rules(LOG_CHAIN).to_vec(),
            subs: self
                .chains
                .iter()
                .filter(|(name, _)| is_sub_chain(name))
                .map(|(name, rules)| (name.clone(), rules.clone()))
                .collect(),
        }
    }

    /// The module's chains as they are now, read in place (what `owned` copies out).
    pub fn held(&self) -> Held<'_> {
        Held {
            table: &self.chains,
            entry: DOCKER_USER,
        }
    }

    /// The guard's chains as they are now, read in place (what `guard` copies out).
    pub fn held_guard(&self) -> Held<'_> {
        Held {
            table: &self.security,
            entry: GUARD_CHAIN,
        }
    }

    /// The names of the module's folding sub-chains that exist now.
    pub fn sub_chains(&self) -> Vec<&str> {
        self.chains
            .keys()
            .map(String::as_str)
            .filter(|name| is_sub_chain(name))
            .collect()
    }
}

/// The module's chains of one table of a `FilterTable`, read in place: the chain a walk starts
/// in (`entry`: DOCKER-USER in filter, the guard in security), the logging chain and the
/// sub-chains, as `FilterTable::owned` and `FilterTable::guard` would copy them.
pub struct Held<'a> {
    table: &'a BTreeMap<String, Vec<Rule>>,
    entry: &'static str,
}

impl Chains for Held<'_> {
    fn chain(&self, name: &str) -> &[Rule] {
        let name = match name {
            DOCKER_USER => self.entry,
            LOG_CHAIN => LOG_CHAIN,
            sub if is_sub_chain(sub) => sub,
            _ => return &[],
        };
        self.table.get(name).map_or(&[], Vec::as_slice)
    }
}

/// The rules of a chain that decide something: trailing bare `-j RETURN`s are dropped, since
/// they behave like the end of the chain and Docker 20.10 appends one on every start.
pub fn effective(rules: &[Rule]) -> &[Rule] {
    let keep = rules.len()
        - rules
            .iter()
            .rev()
            .take_while(|r| r.is_bare_return())
            .count();
    &rules[..keep]
}

/// Whether the live chains already are what the module wants: the same rules in DOCKER-USER,
/// the logging chain and exactly the wanted sub-chains, no others; and (present) the jump to
/// DOCKER-USER first in FORWARD where Docker runs.
pub fn matches(live: &FilterTable, want: &ChainSet, present: bool) -> bool {
    chains_match(live, want, present) && !(present && live.needs_hook())
}

/// `matches` without the jump's place in FORWARD: the chains the module writes hold what it
/// wrote. After an apply, Docker (20.10, creating a network or starting) may put its own rules
/// ahead of the jump at any moment; that is no failure of the apply (the guard holds the policy
/// meanwhile, and the next run puts the jump first again).
pub fn chains_match(live: &FilterTable, want: &ChainSet, present: bool) -> bool {
    let du_same = effective(live.rules(DOCKER_USER)) == effective(&want.docker_user);
    let subs_same = live.sub_chains().len() == want.subs.len()
        && want
            .subs
            .iter()
            .all(|(name, rules)| live.has_chain(name) && live.rules(name) == rules.as_slice());
    if present {
        du_same
            && subs_same
            && live.has_chain(LOG_CHAIN)
            && live.rules(LOG_CHAIN) == want.log_chain.as_slice()
    } else {
        du_same && !live.has_chain(LOG_CHAIN) && live.sub_chains().is_empty()
    }
}

/// Whether the guard already is what `want` calls for: its chains, and (where `hook`) its jump
/// first in the security table's FORWARD (present); or no trace of it (absent).
pub fn guard_matches(live: &FilterTable, want: &ChainSet, present: bool, hook: bool) -> bool {
    guard_payload(live, want, present, hook).is_none()
}

/// Whether a run must put the guard's jump first: where it changes the family's DOCKER-USER
/// chains anyway (`filter_changes`), and wherever the jump to DOCKER-USER is not first in FORWARD
/// (Docker 20.10's IPv6, a network it made; Docker not started yet). Where DOCKER-USER is first
/// and nothing else changes (Docker 23+ keeps it first itself; a boot, after which UFW has loaded
/// the guard's chains but nothing hooks them), the guard would add nothing: its missing jump is
/// no drift, and it is put back by the next run that changes something.
pub fn guard_hook_needed(live: &FilterTable, filter_changes: bool) -> bool {
    filter_changes || !live.docker_user_hooked_first()
}

/// Whether the security table holds exactly the guard's chains of `want`
/// (`before.guard() == guard_set(want)`), read in place rather than copied out on both sides.
fn holds_guard(before: &FilterTable, want: &ChainSet) -> bool {
    let mut subs = before
        .security
        .iter()
        .filter(|(name, _)| is_sub_chain(name));
    if want.docker_user.is_empty() {
        return before.security_rules(GUARD_CHAIN).is_empty()
            && before.security_rules(LOG_CHAIN).is_empty()
            && subs.next().is_none();
    }
    before.security_rules(GUARD_CHAIN) == guard_rules(want).as_slice()
        && before.security_rules(LOG_CHAIN) == want.log_chain.as_slice()
        && subs.eq(want.subs.iter())
}

/// Whether the guard's chains of `want` (`guard_set(want)`) hold the sub-chain `chain`.
fn guard_holds(want: &ChainSet, chain: &str) -> bool {
    !want.docker_user.is_empty() && want.subs.contains_key(chain)
}

/// Whether the security table's FORWARD jumps to the guard anywhere.
fn guard_jumps(live: &FilterTable) -> bool {
    live.security_rules("FORWARD")
        .iter()
        .any(|r| r.args_are(&guard_hook_args()))
}

/// Deletes every jump to the guard that `live`'s security FORWARD holds, one `-D` each.
fn unhook_guard(out: &mut String, live: &FilterTable) {
    for _ in live
        .security_rules("FORWARD")
        .iter()
        .filter(|r| r.args_are(&guard_hook_args()))
    {
        out.push_str(&format!("-D FORWARD -j {GUARD_CHAIN}\n"));
    }
}

/// Sub-chains that exist live but that `want` does not hold: left by a longer policy, they
/// are flushed and deleted.
pub fn stale_sub_chains<'a>(live: &'a FilterTable, want: &ChainSet) -> Vec<&'a str> {
    live.sub_chains()
        .into_iter()
        .filter(|name| !want.subs.contains_key(*name))
        .collect()
}

/// Flushes and deletes `chains`: appended before COMMIT, after every rule that referred to them
/// was flushed by its chain's declaration.
fn delete_chains(out: &mut String, chains: &[&str]) {
    for chain in chains {
        out.push_str(&format!(":{chain} - [0:0]\n"));
    }
    for chain in chains {
        out.push_str(&format!("-X {chain}\n"));
    }
}

/// Rules in live DOCKER-USER that neither the module nor Docker put there (the module's own
/// rules from an earlier policy, and Docker's bare trailing RETURN, are not foreign): they are
/// reported, then replaced.
pub fn foreign_rules(live: &FilterTable, want: &ChainSet) -> Vec<Rule> {
    effective(live.rules(DOCKER_USER))
        .iter()
        .filter(|r| !want.docker_user.contains(r) && !r.is_ours())
        .cloned()
        .collect()
}

/// Whether `set_payload(before, _, present)` also puts the jump to DOCKER-USER first in
/// FORWARD (Docker runs in this family but did not), which a rollback must then undo.
pub fn rehooks(before: &FilterTable, present: bool) -> bool {
    present && before.needs_hook()
}

/// The `--noflush` payload that makes the live chains equal `want` (present) or empties
/// DOCKER-USER and deletes the logging chain (absent). `before` is the live table it starts
/// from: a chain is deleted only if it exists. The guard has a payload of its own
/// (`guard_payload`): where both change, one restore loads the guard's first, then this one
/// (`plan::Tables` says why in that order).
pub fn set_payload(before: &FilterTable, want: &ChainSet, present: bool) -> String {
    if present {
        let mut out = restore_section(want, &[]);
        if rehooks(before, present) {
            // The same jump Docker (23 and later) puts first in FORWARD: any older copies go,
            // one goes first. Nothing else in FORWARD is touched.
            let mut hook = String::new();
            for rule in before.rules("FORWARD") {
                if rule.args_are(&["-j", DOCKER_USER]) {
                    hook.push_str(&format!("-D FORWARD -j {DOCKER_USER}\n"));
                }
            }
            hook.push_str(&format!("-I FORWARD 1 -j {DOCKER_USER}\n"));
            out.insert_str(out.len() - "COMMIT\n".len(), &hook);
        }
        let stale = stale_sub_chains(before, want);
        if !stale.is_empty() {
            let mut gone = String::new();
            delete_chains(&mut gone, &stale);
            out.insert_str(out.len() - "COMMIT\n".len(), &gone);
        }
        return out;
    }
    let mut out = String::from("*filter\n");
    if before.has_chain(DOCKER_USER) {
        out.push_str(&format!(":{DOCKER_USER} - [0:0]\n"));
    }
    // Sub-chains go before the logging chain: their rules jump to it.
    delete_chains(&mut out, &before.sub_chains());
    if before.has_chain(LOG_CHAIN) {
        // Flush before delete: a chain must be empty and unreferenced to go.
        out.push_str(&format!(":{LOG_CHAIN} - [0:0]\n-X {LOG_CHAIN}\n"));
    }
    out.push_str("COMMIT\n");
    out
}

/// The `*security` payload of the guard: its chains set from `want` (present: declared,
/// filled, the jump put first in FORWARD where it is not, stale sub-chains deleted), or every
/// trace of it removed (absent: FORWARD's jumps, then the chains). `None` when the guard
/// already is so: its chains, and its jump first where `hook` (`guard_hook_needed`).
pub fn guard_payload(
    before: &FilterTable,
    want: &ChainSet,
    present: bool,
    hook: bool,
) -> Option<String> {
    Some(guard_text_payload(before, want, present, hook)).filter(|p| !p.is_empty())
}

fn guard_text_payload(before: &FilterTable, want: &ChainSet, present: bool, hook: bool) -> String {
    let mut out;
    if present {
        if holds_guard(before, want) && (before.guard_hooked_first() || !hook) {
            return String::new();
        }
        out = guard_section(want);
        let mut tail = String::new();
        if !before.guard_hooked_first() {
            unhook_guard(&mut tail, before);
            tail.push_str(&format!("-I FORWARD 1 -j {GUARD_CHAIN}\n"));
        }
        let stale: Vec<&str> = before
            .guard_chains()
            .into_iter()
            .filter(|c| is_sub_chain(c) && !guard_holds(want, c))
            .collect();
        delete_chains(&mut tail, &stale);
        out.insert_str(out.len() - "COMMIT\n".len(), &tail);
        return out;
    }
    let chains = before.guard_chains();
    if chains.is_empty() && !guard_jumps(before) {
        return String::new();
    }
    out = String::from("*security\n");
    unhook_guard(&mut out, before);
    delete_chains(&mut out, &chains);
    out.push_str("COMMIT\n");
    out
}

/// The payload that puts the module's chains back exactly as they were in `before`, used to
/// roll back a failed apply. `created` names the sub-chains the failed apply may have made;
/// those that did not exist before are deleted. `rehooked` says that an applied payload put the
/// jump to DOCKER-USER first in FORWARD (`rehooks`): FORWARD's jumps go back as they were.
pub fn rollback_payload(before: &FilterTable, created: &[String], rehooked: bool) -> String {
    let mut out = String::from("*filter\n");
    out.push_str(&format!(":{DOCKER_USER} - [0:0]\n:{LOG_CHAIN} - [0:0]\n"));
    let old = before.sub_chains();
    for chain in &old {
        out.push_str(&format!(":{chain} - [0:0]\n"));
    }
    let new: Vec<&str> = created
        .iter()
        .map(String::as_str)
        .filter(|c| !before.has_chain(c))
        .collect();
    for rule in before
        .rules(DOCKER_USER)
        .iter()
        .chain(old.iter().flat_map(|c| before.rules(c)))
        .chain(before.rules(LOG_CHAIN))
    {
        out.push_str(&rule.render());
        out.push('\n');
    }
    // Before DOCKER-USER may be deleted: the jump to it must be gone first.
    if rehooked {
        unhook(&mut out, before);
    }
    delete_chains(&mut out, &new);
    if !before.has_chain(LOG_CHAIN) {
        out.push_str(&format!("-X {LOG_CHAIN}\n"));
    }
    if !before.has_chain(DOCKER_USER) {
        out.push_str(&format!("-X {DOCKER_USER}\n"));
    }
    out.push_str("COMMIT\n");
    out
}

/// The payload that puts the guard back as it was in `before`, from the security table as it
/// is `now` (read again for the rollback, so that it holds whatever part of the guard's payload
/// took effect): FORWARD's jumps to the guard removed and put back at their old positions, its
/// chains (those of either table, and `created` sub-chains) flushed, refilled as they were, and
/// deleted where they did not exist before.
pub fn guard_rollback(before: &FilterTable, now: &FilterTable, created: &[String]) -> String {
    let mut chains: Vec<&str> = before.guard_chains();
    for c in now.guard_chains().into_iter().chain(
        created
            .iter()
            .map(String::as_str)
            .filter(|c| now.security.contains_key(*c)),
    ) {
        if !chains.contains(&c) {
            chains.push(c);
        }
    }
    let mut out = String::from("*security\n");
    unhook_guard(&mut out, now);
    for chain in &chains {
        out.push_str(&format!(":{chain} - [0:0]\n"));
    }
    for chain in before.guard_chains() {
        for rule in before.security_rules(chain) {
            out.push_str(&rule.render());
            out.push('\n');
        }
    }
    for (i, rule) in before.security_rules("FORWARD").iter().enumerate() {
        if rule.args_are(&guard_hook_args()) {
            out.push_str(&format!("-I FORWARD {} -j {GUARD_CHAIN}\n", i + 1));
        }
    }
    for chain in chains.iter().filter(|c| !before.security.contains_key(**c)) {
        out.push_str(&format!("-X {chain}\n"));
    }
    out.push_str("COMMIT\n");
    out
}

/// Whether the guard is `now` as it was in `before`: its chains, with their rules, and the
/// security table's FORWARD (empty as good as not loaded). `guard_rollback` would then change
/// nothing.
pub fn guard_as_before(before: &FilterTable, now: &FilterTable) -> bool {
    fn ours(t: &FilterTable) -> impl Iterator<Item = (&String, &Vec<Rule>)> {
        t.security.iter().filter(|(c, rules)| match c.as_str() {
            "FORWARD" => !rules.is_empty(),
            c => is_sub_chain(c) || c == LOG_CHAIN || c == GUARD_CHAIN,
        })
    }
    ours(before).eq(ours(now))
}

/// Puts FORWARD's jumps to DOCKER-USER back as they were in `before`, undoing the re-hook of
/// `set_payload`: the one jump it left, first in FORWARD, goes; each jump it removed comes back
/// at its old position. Inserting in order rebuilds the chain, since by each insertion every
/// rule above it is back in place. FORWARD's other rules are never touched.
fn unhook(out: &mut String, before: &FilterTable) {
    out.push_str(&format!("-D FORWARD -j {DOCKER_USER}\n"));
    for (i, rule) in before.rules("FORWARD").iter().enumerate() {
        if rule.args_are(&["-j", DOCKER_USER]) {
            out.push_str(&format!("-I FORWARD {} -j {DOCKER_USER}\n", i + 1));
        }
    }
}

/// The module's live chains as text for a diff: DOCKER-USER and the chains it uses, then, after
/// a `*security` line, the guard's (`guard_text`).
pub fn live_text(live: &FilterTable) -> String {
    chain_text(&live.owned()) + &guard_text(&live.guard())
}

/// The guard's chains as text for a diff, after a `*security` line; empty for none.
pub fn guard_text(guard: &ChainSet) -> String {
    let text = chain_text(guard);
    if text.is_empty() {
        text
    } else {
        format!("*security\n{text}")
    }
}

/// The chains as text for a diff: one rendered rule per line.
pub fn chain_text(set: &ChainSet) -> String {
    let mut out = String::new();
    for rule in set.rules() {
        out.push_str(&rule.render());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::parse_args;
    use crate::policy::desired;
    use crate::rules::{guard_set, security_section, Family};

    const DOCKER_SAVE: &str = include_str!("../tests/data/iptables-save.docker");

    fn want(json: &str) -> ChainSet {
        desired(&parse_args(json).unwrap().params, Family::V4, true)
    }

    #[test]
    fn parses_docker_and_ufw_chains() {
        let t = FilterTable::parse(DOCKER_SAVE);
        assert!(t.docker_user_hooked_first());
        assert!(t.has_chain("ufw-user-forward"));
        assert_eq!(t.rules(DOCKER_USER).len(), 1);
        assert!(t.rules(DOCKER_USER)[0].is_bare_return());
        assert!(!t.has_chain(LOG_CHAIN));
        // The nat table in the same output is not mistaken for filter rules.
        assert!(!t.has_chain("POSTROUTING"));
    }

    #[test]
    fn empty_save_output_has_no_chains() {
        let t = FilterTable::parse("");
        assert!(t.chains.is_empty());
        assert!(!t.docker_user_hooked_first());
    }

    #[test]
    fn a_chain_read_back_from_the_kernel_matches_what_was_asked() {
        let want = want(r#"{"allow": [{"port": 80, "comment": "web"}]}"#);
        // Simulate the kernel's round trip: render, save, parse.
        let mut save = String::from("*filter\n:FORWARD ACCEPT [0:0]\n:DOCKER-USER - [0:0]\n:ufw-docker-logging-deny - [0:0]\n");
        for line in want.lines() {
            save.push_str(&line);
            save.push('\n');
        }
        // Docker 20.10 appends its own RETURN on restart.
        save.push_str("-A DOCKER-USER -j RETURN\nCOMMIT\n");
        let live = FilterTable::parse(&save);
        assert!(matches(&live, &want, true));
        assert!(foreign_rules(&live, &want).is_empty());
        assert!(!matches(
            &live,
            &self::want(r#"{"allow": [{"port": 81}]}"#),
            true
        ));
    }

    #[test]
    fn foreign_rules_are_reported() {
        let mut save = DOCKER_SAVE.replace(
            "-A DOCKER-USER -j RETURN",
            "-A DOCKER-USER -s 10.0.0.0/8 -j ACCEPT\n-A DOCKER-USER -j RETURN",
        );
        save.push('\n');
        let live = FilterTable::parse(&save);
        let foreign = foreign_rules(&live, &want("{}"));
        assert_eq!(foreign.len(), 1);
        assert_eq!(
            foreign[0].render(),
            "-A DOCKER-USER -s 10.0.0.0/8 -j ACCEPT"
        );
    }

    #[test]
    fn a_bare_return_before_the_rules_is_not_ignored() {
        let want = want("{}");
        let mut rules = vec![Rule::new(DOCKER_USER, &["-j", "RETURN"])];
        rules.extend(want.docker_user.clone());
        let mut live = FilterTable::default();
        live.chains.insert(DOCKER_USER.into(), rules);
        live.chains.insert(LOG_CHAIN.into(), want.log_chain.clone());
        assert!(!matches(&live, &want, true));
    }

    #[test]
    fn the_forward_hook_is_put_first_where_docker_did_not() {
        // Docker 20.10 with ip6tables: its chains, no DOCKER-USER jump.
        let v6 = "*filter\n:FORWARD DROP [0:0]\n:DOCKER - [0:0]\n:DOCKER-ISOLATION-STAGE-1 - [0:0]\n\
                  -A FORWARD -j DOCKER-ISOLATION-STAGE-1\n-A FORWARD -o docker0 -j DOCKER\nCOMMIT\n";
        let live = FilterTable::parse(v6);
        assert!(live.needs_hook());
        let want = want("{}");
        assert!(!matches(&live, &want, true));
        let payload = set_payload(&live, &want, true);
        assert!(
            payload.ends_with("-I FORWARD 1 -j DOCKER-USER\nCOMMIT\n"),
            "{payload}"
        );
        assert!(!payload.contains("-D FORWARD"));
        // A jump that a network created later pushed down is moved back first.
        let pushed = v6.replace(
            "-A FORWARD -o docker0 -j DOCKER\n",
            "-A FORWARD -o docker0 -j DOCKER\n-A FORWARD -j DOCKER-USER\n",
        );
        let payload = set_payload(&FilterTable::parse(&pushed), &want, true);
        assert!(
            payload.contains("-D FORWARD -j DOCKER-USER\n-I FORWARD 1 -j DOCKER-USER\n"),
            "{payload}"
        );
        // Without Docker there is nothing to hook, and absent never touches FORWARD.
        assert!(!FilterTable::parse("*filter\n:FORWARD DROP [0:0]\nCOMMIT\n").needs_hook());
        assert!(!set_payload(&live, &ChainSet::default(), false).contains("FORWARD"));
    }

    /// Review of issue 16: "Rollback does not undo the FORWARD re-hook".
    #[test]
    fn rollback_puts_forwards_jumps_back_where_they_were() {
        // Jumps at positions 2 and 4, both removed by the re-hook, which inserts one first.
        let save = "*filter\n:FORWARD DROP [0:0]\n:DOCKER - [0:0]\n:DOCKER-USER - [0:0]\n\
                    -A FORWARD -o docker0 -j DOCKER\n-A FORWARD -j DOCKER-USER\n\
                    -A FORWARD -i docker0 -j ACCEPT\n-A FORWARD -j DOCKER-USER\nCOMMIT\n";
        let before = FilterTable::parse(save);
        assert!(rehooks(&before, true) && !rehooks(&before, false));
        let back = rollback_payload(&before, &[], true);
        assert!(
            back.contains(
                "-D FORWARD -j DOCKER-USER\n-I FORWARD 2 -j DOCKER-USER\n\
                 -I FORWARD 4 -j DOCKER-USER\n"
            ),
            "{back}"
        );
        // No jump before: the re-hook's goes, before DOCKER-USER (new then) is deleted.
        let none = FilterTable::parse(
            "*filter\n:FORWARD DROP [0:0]\n:DOCKER - [0:0]\n-A FORWARD -o docker0 -j DOCKER\nCOMMIT\n",
        );
        let back = rollback_payload(&none, &[], true);
        assert_eq!(back.matches("FORWARD").count(), 1, "{back}");
        assert!(
            back.find("-D FORWARD -j DOCKER-USER").unwrap() < back.find("-X DOCKER-USER").unwrap(),
            "{back}"
        );
        // Nothing re-hooked, FORWARD untouched.
        assert!(!rollback_payload(&before, &[], false).contains("FORWARD"));
    }

    #[test]
    fn absent_payload_only_touches_what_exists() {
        let live = FilterTable::parse(DOCKER_SAVE);
        assert_eq!(
            set_payload(&live, &ChainSet::default(), false),
            "*filter\n:DOCKER-USER - [0:0]\nCOMMIT\n"
        );
        assert!(
            matches(&live, &ChainSet::default(), false),
            "Docker's bare RETURN is already 'absent'"
        );
        let none = FilterTable::default();
        assert_eq!(
            set_payload(&none, &ChainSet::default(), false),
            "*filter\nCOMMIT\n"
        );
    }

    #[test]
    fn rollback_recreates_the_previous_chains() {
        let live = FilterTable::parse(DOCKER_SAVE);
        let payload = rollback_payload(&live, &[], false);
        assert_eq!(
            payload,
            "*filter\n:DOCKER-USER - [0:0]\n:ufw-docker-logging-deny - [0:0]\n-A DOCKER-USER -j RETURN\n-X ufw-docker-logging-deny\nCOMMIT\n"
        );
    }

    #[test]
    fn sub_chains_are_owned_compared_and_deleted_when_no_longer_wanted() {
        let save = "*filter\n:FORWARD ACCEPT [0:0]\n:DOCKER-USER - [0:0]\n\
                    :ufw-docker-logging-deny - [0:0]\n:ufw-docker-allow-tcp-0 - [0:0]\n\
                    :ufw-docker-trust-0 - [0:0]\n:ufw-docker-something-else - [0:0]\n\
                    -A ufw-docker-allow-tcp-0 -j RETURN\nCOMMIT\n";
        let live = FilterTable::parse(save);
        assert_eq!(
            live.sub_chains(),
            ["ufw-docker-allow-tcp-0", "ufw-docker-trust-0"],
            "only the module's folding chains (and never the logging chain)"
        );
        let mut want = want("{}");
        want.subs.insert(
            "ufw-docker-allow-tcp-0".into(),
            vec![Rule::new("ufw-docker-allow-tcp-0", &["-j", "RETURN"])],
        );
        assert!(
            !matches(&live, &want, true),
            "an extra sub-chain is a change"
        );
        let payload = set_payload(&live, &want, true);
        assert!(
            payload.ends_with(":ufw-docker-trust-0 - [0:0]\n-X ufw-docker-trust-0\nCOMMIT\n"),
            "{payload}"
        );
        assert!(!payload.contains("-X ufw-docker-allow-tcp-0"));
        // Absent: every sub-chain flushed and deleted before the logging chain they jump to.
        let gone = set_payload(&live, &ChainSet::default(), false);
        let x_sub = gone.find("-X ufw-docker-allow-tcp-0").unwrap();
        assert!(
            x_sub < gone.find("-X ufw-docker-logging-deny").unwrap(),
            "{gone}"
        );
        assert!(!matches(&live, &ChainSet::default(), false));
        // Rollback deletes the sub-chains a failed apply created, keeps those that were there.
        let back = rollback_payload(&live, &["ufw-docker-allow-udp-0".to_string()], false);
        assert!(back.contains("-X ufw-docker-allow-udp-0\n"), "{back}");
        assert!(back.contains("-A ufw-docker-allow-tcp-0 -j RETURN\n"));
        assert!(!back.contains("-X ufw-docker-allow-tcp-0"));
    }

    /// A live table with the module's chains of `want` in filter, and in security the guard's
    /// chains and FORWARD as `forward` (rendered rules of security FORWARD).
    fn with_guard(want: &ChainSet, forward: &[&str]) -> FilterTable {
        let mut save = format!(
            "{}\n",
            DOCKER_SAVE.replace(
                "-A DOCKER-USER -j RETURN\n",
                &format!(
                    "{}\n",
                    want.lines()
                        .into_iter()
                        .filter(|l| l.starts_with("-A DOCKER-USER"))
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            )
        );
        save.push_str(&security_section(&guard_set(want)).replace(
            "*security\n",
            &format!(
                "*security\n:FORWARD ACCEPT [0:0]\n{}",
                forward
                    .iter()
                    .map(|r| format!("-A FORWARD {r}\n"))
                    .collect::<String>()
            ),
        ));
        let mut table = FilterTable::parse(&save);
        table
            .chains
            .insert(LOG_CHAIN.to_string(), want.log_chain.clone());
        table
    }

    #[test]
    fn held_chains_read_what_owned_and_guard_copy() {
        let allow: Vec<String> = (0..40)
            .map(|i| format!(r#"{{"port": {}}}"#, 20000 + 2 * i))
            .collect();
        let want = want(&format!(r#"{{"allow": [{}]}}"#, allow.join(", ")));
        assert!(!want.subs.is_empty(), "folded into sub-chains");
        let live = with_guard(&want, &["-j ufw-docker-guard"]);
        let (owned, guard) = (live.owned(), live.guard());
        let names = [
            DOCKER_USER,
            LOG_CHAIN,
            GUARD_CHAIN,
            "FORWARD",
            "ufw-user-forward",
        ];
        for name in names
            .into_iter()
            .chain(want.subs.keys().map(String::as_str))
        {
            assert_eq!(
                Chains::chain(&live.held(), name),
                owned.chain(name),
                "{name}"
            );
            assert_eq!(
                Chains::chain(&live.held_guard(), name),
                guard.chain(name),
                "{name}"
            );
        }
    }

    #[test]
    fn the_guard_held_is_compared_in_place_as_its_copies_were() {
        let small = want(r#"{"allow": [{"port": 8080}]}"#);
        let allow: Vec<String> = (0..40)
            .map(|i| format!(r#"{{"port": {}}}"#, 20000 + 2 * i))
            .collect();
        let folded = want(&format!(r#"{{"allow": [{}]}}"#, allow.join(", ")));
        let tables = [
            FilterTable::parse(DOCKER_SAVE),
            with_guard(&small, &["-j ufw-docker-guard"]),
            with_guard(&folded, &["-j ufw-docker-guard"]),
        ];
        for live in &tables {
            for want in [&small, &folded, &ChainSet::default()] {
                assert_eq!(
                    holds_guard(live, want),
                    live.guard() == guard_set(want),
                    "{:?} against {:?}",
                    live.guard().lines(),
                    want.lines()
                );
            }
        }
        assert!(holds_guard(&tables[2], &folded));
    }

    #[test]
    fn the_guard_is_read_from_the_security_table_and_hooked_first_or_not() {
        let want = want(r#"{"allow": [{"port": 8080}]}"#);
        let hooked = with_guard(&want, &["-j ufw-docker-guard"]);
        assert!(hooked.guard_hooked_first());
        assert_eq!(hooked.guard(), guard_set(&want));
        assert!(guard_matches(&hooked, &want, true, true));
        assert_eq!(guard_payload(&hooked, &want, true, true), None);

        // Something else (SELinux's secmark, an operator) first: the jump goes first again.
        let second = with_guard(&want, &["-j SECMARK --selctx x", "-j ufw-docker-guard"]);
        assert!(!second.guard_hooked_first());
        let payload = guard_payload(&second, &want, true, true).unwrap();
        assert!(
            payload.ends_with(
                "-D FORWARD -j ufw-docker-guard\n-I FORWARD 1 -j ufw-docker-guard\nCOMMIT\n"
            ),
            "{payload}"
        );
        assert!(
            !payload.contains("SECMARK"),
            "never touches what is not ours"
        );

        // Not loaded at all (a host before its first run): declared, filled, hooked.
        let none = FilterTable::parse(DOCKER_SAVE);
        let payload = guard_payload(&none, &want, true, true).unwrap();
        assert!(payload.starts_with("*security\n:ufw-docker-guard - [0:0]\n"));
        assert!(payload.ends_with("-I FORWARD 1 -j ufw-docker-guard\nCOMMIT\n"));
        assert!(!payload.contains("-D FORWARD"));
        assert_eq!(
            guard_payload(&none, &ChainSet::default(), false, true),
            None
        );
    }

    #[test]
    fn the_guard_is_as_before_only_with_the_same_chains_rules_and_jumps() {
        let want = want(r#"{"allow": [{"port": 8080}]}"#);
        let none = FilterTable::parse(DOCKER_SAVE);
        let hooked = with_guard(&want, &["-j ufw-docker-guard"]);
        assert!(guard_as_before(&hooked, &hooked.clone()));
        // A security table loaded with nothing in it (iptables-legacy, after a failed restore).
        let empty = FilterTable::parse(&format!(
            "{DOCKER_SAVE}*security\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\nCOMMIT\n"
        ));
        assert!(guard_as_before(&none, &empty));
        assert!(!guard_as_before(&none, &hooked));
        assert!(!guard_as_before(&hooked, &none));
        let moved = with_guard(&want, &["-j SECMARK --selctx x", "-j ufw-docker-guard"]);
        assert!(!guard_as_before(&hooked, &moved));
        let other = super::tests::want(r#"{"allow": [{"port": 8081}]}"#);
        assert!(!guard_as_before(
            &hooked,
            &with_guard(&other, &["-j ufw-docker-guard"])
        ));
    }

    #[test]
    fn absent_removes_every_jump_to_the_guard_then_its_chains() {
        let want = want(r#"{"allow": [{"port": 8080}]}"#);
        let twice = with_guard(&want, &["-j ufw-docker-guard", "-j ufw-docker-guard"]);
        assert!(!guard_matches(&twice, &ChainSet::default(), false, true));
        assert_eq!(
            guard_payload(&twice, &ChainSet::default(), false, true).unwrap(),
            "*security\n-D FORWARD -j ufw-docker-guard\n-D FORWARD -j ufw-docker-guard\n\
             :ufw-docker-logging-deny - [0:0]\n:ufw-docker-guard - [0:0]\n\
             -X ufw-docker-logging-deny\n-X ufw-docker-guard\nCOMMIT\n"
        );
    }

    #[test]
    fn the_guards_rollback_starts_from_what_is_there_now() {
        let old = want(r#"{"allow": [{"port": 8080}]}"#);
        let new = want(r#"{"allow": [{"port": 9090}]}"#);
        // Before: the old guard, second in FORWARD. Now: the new guard, first.
        let before = with_guard(&old, &["-j SECMARK --selctx x", "-j ufw-docker-guard"]);
        let now = with_guard(&new, &["-j ufw-docker-guard", "-j SECMARK --selctx x"]);
        let payload = guard_rollback(&before, &now, &[]);
        assert!(
            payload.starts_with(
                "*security\n-D FORWARD -j ufw-docker-guard\n:ufw-docker-logging-deny - [0:0]\n\
                 :ufw-docker-guard - [0:0]\n"
            ),
            "{payload}"
        );
        assert!(payload.contains("--ctorigdstport 8080"), "{payload}");
        assert!(!payload.contains("9090"), "{payload}");
        assert!(payload.ends_with("-I FORWARD 2 -j ufw-docker-guard\nCOMMIT\n"));
        assert!(!payload.contains("-X"), "both chains existed before");

        // Nothing of the guard before: whatever the apply made goes again.
        let none = FilterTable::parse(DOCKER_SAVE);
        let payload = guard_rollback(&none, &now, &[]);
        assert!(
            payload.contains("-D FORWARD -j ufw-docker-guard\n"),
            "{payload}"
        );
        assert!(
            payload.ends_with("-X ufw-docker-logging-deny\n-X ufw-docker-guard\nCOMMIT\n"),
            "{payload}"
        );
        assert!(!payload.contains("-I FORWARD"));
    }

    #[test]
    fn an_unhooked_guard_is_drift_only_where_docker_user_is_not_first_or_changes() {
        let want = want(r#"{"allow": [{"port": 8080}]}"#);
        // After a boot: UFW loaded the guard's chains, nothing hooked them; DOCKER-USER first.
        let booted = with_guard(&want, &[]);
        assert!(booted.docker_user_hooked_first() && !booted.guard_hooked_first());
        let hook = guard_hook_needed(&booted, false);
        assert!(!hook);
        assert!(guard_matches(&booted, &want, true, hook), "no drift");
        // A change of DOCKER-USER puts the jump first as well.
        let payload = guard_payload(&booted, &want, true, guard_hook_needed(&booted, true));
        assert!(payload
            .unwrap()
            .ends_with("-I FORWARD 1 -j ufw-docker-guard\nCOMMIT\n"));
        // Docker's rules ahead of DOCKER-USER: the jump is needed.
        let mut moved = booted.clone();
        moved
            .chains
            .get_mut("FORWARD")
            .unwrap()
            .insert(0, Rule::new("FORWARD", &["-o", "docker0", "-j", "DOCKER"]));
        assert!(guard_hook_needed(&moved, false));
        assert!(!guard_matches(&moved, &want, true, true));
    }
}
