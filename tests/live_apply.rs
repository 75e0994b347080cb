//! The module against real iptables, both backends, in throwaway namespaces, with temp copies
//! of UFW's after.rules files.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;

use serde_json::{json, Value};

use crate::harness::{assert_stock_files, data, each_backend, ModuleRun, Netns};
use crate::support::{try_sh, with, Backend};

/// A policy with something of everything.
fn policy(ns: &Netns) -> Value {
    let (v4, v6) = (ns.path("after.rules"), ns.path("after6.rules"));
    json!({
        "after_rules": v4, "after6_rules": v6,
        "allow": [
            {"port": 8080, "comment": "web"},
            {"port": "5000:5010", "proto": "udp", "from": ["198.51.100.0/24", "2001:db8:5::/48"]},
        ],
        "trusted_networks": ["192.168.50.0/24", "fd00:50::/64"],
        "_ansible_diff": true,
    })
}

#[test]
fn check_mode_changes_nothing() {
    each_backend(|backend| {
        let ns = Netns::new(backend);
        ns.dockerish();
        let (v4, v6) = ns.rule_files();
        let before = ns.save_all();
        // Another run holds the lock: check mode, which takes no lock, does not wait for it.
        let held = ns.hold_lock();
        let run = ns.module(with(policy(&ns), json!({"_ansible_check_mode": true})));
        drop(held);
        assert!(run.ok(), "check mode reports the change it would make");
        assert_eq!(
            run.json["check_mode"], true,
            "the result says it only planned"
        );
        assert!(run.json["msg"]
            .as_str()
            .unwrap()
            .starts_with("would change"));
        // Per family, one restore: the guard's chains (the security table), then DOCKER-USER's.
        assert_eq!(run.strings("commands").len(), 2, "{backend:?}");
        assert_eq!(
            run.json["diff"].as_array().unwrap().len(),
            4,
            "two files, two chains"
        );
        assert_eq!(
            ns.save_all(),
            before,
            "{backend:?}: iptables changed in check mode"
        );
        assert_stock_files(&v4, &v6);
    });
}

#[test]
fn apply_then_rerun_is_a_no_op_then_absent_restores_everything() {
    each_backend(|backend| {
        let ns = Netns::new(backend);
        ns.dockerish();
        let (v4, v6) = ns.rule_files();
        let original_save = ns.save_all();

        let first = ns.module(policy(&ns));
        assert!(first.ok());
        assert_eq!(first.json["check_mode"], false);
        for (v6flag, family) in [(false, "ipv4"), (true, "ipv6")] {
            let live = ns.chain(v6flag, "DOCKER-USER");
            let mut reported = first.rules(family);
            reported.retain(|l| l.starts_with("-A DOCKER-USER"));
            assert_eq!(
                live, reported,
                "{backend:?} {family}: live chain = reported rules"
            );
            let log = ns.chain(v6flag, "ufw-docker-logging-deny");
            assert_eq!(log.len(), 2, "{log:?}");
        }
        let text = fs::read_to_string(&v4).unwrap();
        assert!(text.starts_with(&fs::read_to_string(data("after.rules")).unwrap()));
        assert!(text.contains("# BEGIN UFW-DOCKER MANAGED BLOCK sha256="));
        assert!(text.contains("--ctorigdstport 8080"));
        assert!(fs::read_to_string(&v6)
            .unwrap()
            .contains("-j ufw6-user-forward"));

        let after_first = ns.save_all();
        let second = ns.module(policy(&ns));
        assert!(!second.ok(), "{backend:?}: rerun must report no change");
        assert!(second.strings("commands").is_empty());
        assert_eq!(ns.save_all(), after_first);

        let absent = with(policy(&ns), json!({"state": "absent"}));
        assert!(ns.module(absent.clone()).ok());
        assert_stock_files(&v4, &v6);
        for v6flag in [false, true] {
            assert!(
                ns.chain(v6flag, "DOCKER-USER").is_empty(),
                "absent empties DOCKER-USER"
            );
            assert!(!ns.save(v6flag).contains("ufw-docker-logging-deny"));
        }
        // Docker's own FORWARD hook and UFW's chains are untouched.
        assert!(ns.save(false).contains("-A FORWARD -j DOCKER-USER"));
        assert!(ns.save(false).contains(":ufw-user-forward"));
        let again = ns.module(absent);
        assert!(!again.ok(), "absent twice is a no-op");
        // Back where we started, except Docker 20.10's bare RETURN, which absent empties.
        assert_eq!(
            ns.save_all().replace("-A DOCKER-USER -j RETURN\n", ""),
            original_save.replace("-A DOCKER-USER -j RETURN\n", "")
        );
    });
}

#[test]
fn docker_restart_appending_its_return_is_not_a_change() {
    each_backend(|backend| {
        let ns = Netns::new(backend);
        ns.dockerish();
        ns.rule_files();
        assert!(ns.module(policy(&ns)).ok());
        // What dockerd 20.10 does on start when it finds no bare RETURN: append one.
        ns.exec("iptables -A DOCKER-USER -j RETURN; ip6tables -A DOCKER-USER -j RETURN");
        let run = ns.module(policy(&ns));
        assert!(!run.ok(), "{backend:?}");
        assert!(run.warnings().is_empty(), "{}", run.warnings());
    });
}

#[test]
fn a_changed_policy_replaces_the_chain_in_place() {
    each_backend(|backend| {
        let ns = Netns::new(backend);
        ns.dockerish();
        ns.rule_files();
        assert!(ns.module(policy(&ns)).ok());
        let changed = with(
            policy(&ns),
            json!({"allow": [{"port": 9090}], "log": false}),
        );
        let run = ns.module(changed.clone());
        assert!(run.ok());
        let live = ns.chain(false, "DOCKER-USER").join("\n");
        assert!(
            live.contains("--ctorigdstport 9090") && !live.contains("8080"),
            "{live}"
        );
        assert_eq!(
            ns.chain(false, "ufw-docker-logging-deny"),
            ["-A ufw-docker-logging-deny -j DROP"]
        );
        assert!(
            run.warnings().is_empty(),
            "our old rules are not foreign: {}",
            run.warnings()
        );
        assert!(!ns.module(changed).ok());
    });
}

#[test]
fn foreign_rules_in_docker_user_are_reported_and_replaced() {
    let ns = Netns::new(Backend::Nft);
    ns.dockerish();
    ns.rule_files();
    ns.exec("iptables -I DOCKER-USER -s 10.0.0.0/8 -j ACCEPT");
    let run = ns.module(policy(&ns));
    assert!(run.ok());
    assert!(
        run.warnings()
            .contains("does not manage; they are replaced: -A DOCKER-USER -s 10.0.0.0/8 -j ACCEPT"),
        "{}",
        run.warnings()
    );
    let diff = run.json["diff"].as_array().unwrap();
    let chain_diff = diff
        .iter()
        .find(|d| {
            d["before_header"]
                .as_str()
                .unwrap()
                .starts_with("DOCKER-USER ipv4")
        })
        .unwrap();
    assert!(chain_diff["before"]
        .as_str()
        .unwrap()
        .contains("-s 10.0.0.0/8 -j ACCEPT"));
    assert!(!ns.save(false).contains("-s 10.0.0.0/8 -j ACCEPT"));
}

#[test]
fn without_docker_the_chain_is_created_and_a_warning_says_why() {
    let ns = Netns::new(Backend::Nft);
    ns.rule_files();
    let run = ns.module(policy(&ns));
    assert!(run.ok());
    let w = run.warnings();
    assert!(
        w.contains("DOCKER-USER is not the first rule of FORWARD (ipv4)"),
        "{w}"
    );
    assert!(w.contains("ufw-user-forward chain is not loaded"), "{w}");
    assert!(!ns.chain(false, "DOCKER-USER").is_empty());
    assert!(
        !ns.module(policy(&ns)).ok(),
        "idempotent without Docker too"
    );
}

#[test]
fn backup_keeps_a_copy_named_like_ansibles() {
    let ns = Netns::new(Backend::Nft);
    ns.dockerish();
    let (v4, _) = ns.rule_files();
    let run = ns.module(with(policy(&ns), json!({"backup": true})));
    assert!(run.ok());
    let backups = run.strings("backup_files");
    assert_eq!(backups.len(), 2, "{backups:?}");
    assert!(backups[0].starts_with(&format!("{}.", v4.display())) && backups[0].ends_with('~'));
    assert_eq!(
        fs::read(&backups[0]).unwrap(),
        fs::read(data("after.rules")).unwrap()
    );
    let rerun = ns.module(with(policy(&ns), json!({"backup": true})));
    assert!(!rerun.ok());
    assert!(
        rerun.strings("backup_files").is_empty(),
        "no change, no backup"
    );
}

#[test]
fn apply_none_writes_files_and_leaves_iptables_alone() {
    let ns = Netns::new(Backend::Nft);
    ns.dockerish();
    let (v4, _) = ns.rule_files();
    let before = ns.save_all();
    let run = ns.module(with(policy(&ns), json!({"apply": "none"})));
    assert!(run.ok());
    assert!(run.strings("commands").is_empty());
    assert_eq!(ns.save_all(), before);
    assert!(fs::read_to_string(&v4).unwrap().contains("MANAGED BLOCK"));
}

/// Issue 15: the role's command is the module's own install of the build that runs, the one the
/// action plugin checked (here the test build itself), at `command_path`.
#[test]
fn the_binary_installs_itself_at_command_path_once_and_refuses_a_link() {
    let ns = Netns::new(Backend::Nft);
    ns.dockerish();
    ns.rule_files();
    let command = ns.path("sbin/ufw_docker");
    let args = with(policy(&ns), json!({"command_path": command}));
    let check = ns.module(with(args.clone(), json!({"_ansible_check_mode": true})));
    assert!(check.ok());
    assert!(!command.exists(), "check mode installs nothing");
    let first = ns.module(args.clone());
    assert!(first.ok());
    assert!(first.json["msg"]
        .as_str()
        .unwrap()
        .ends_with(&format!(", {}", command.display())));
    assert_eq!(
        fs::read(&command).unwrap(),
        fs::read(crate::harness::module_bin()).unwrap()
    );
    let meta = fs::metadata(&command).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
    assert!(!ns.module(args.clone()).ok(), "a rerun changes nothing");

    // A link at the path is refused before anything changes; its target is never written.
    let target = ns.path("other-program");
    fs::write(&target, b"someone else's").unwrap();
    fs::remove_file(&command).unwrap();
    std::os::unix::fs::symlink(&target, &command).unwrap();
    let before = ns.save_all();
    ns.module(with(args, json!({"allow": [{"port": 9090}]})))
        .fails_with("is a symbolic link to");
    assert_eq!(fs::read(&target).unwrap(), b"someone else's");
    assert_eq!(ns.save_all(), before, "nothing applied");
}

/// The action plugin runs the module under `umask 077` (its script, for the build cache): the
/// directories the module makes for the policy file and the command are still 0755, as
/// documented, not 0700.
#[test]
fn directories_made_for_the_policy_and_the_command_are_0755_under_the_plugins_umask() {
    let ns = Netns::new(Backend::Nft);
    ns.dockerish();
    ns.rule_files();
    let (policy_dir, command_dir) = (ns.path("etc/ufw-docker"), ns.path("sbin"));
    let args = with(
        policy(&ns),
        json!({"policy_file": policy_dir.join("policy.json"),
               "command_path": command_dir.join("ufw_docker")}),
    );
    let args_file = ns.path("args-umask.json");
    fs::write(&args_file, serde_json::to_vec(&args).unwrap()).unwrap();
    let mut cmd = ns.module_cmd(&args_file);
    // SAFETY: umask only sets the child's file mode creation mask before it execs.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        });
    }
    let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
    assert!(crate::harness::ModuleRun::new(args, out).ok());
    for dir in [&policy_dir, ns.path("etc").as_path(), &command_dir] {
        let mode = fs::metadata(dir).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o755, "{}", dir.display());
    }
    let file = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(file(&policy_dir.join("policy.json")), 0o640);
    assert_eq!(file(&command_dir.join("ufw_docker")), 0o755);
}

#[test]
fn a_failing_live_apply_restores_files_and_chains() {
    each_backend(|backend| {
        let ns = Netns::new(backend);
        ns.dockerish();
        let (v4, v6) = ns.rule_files();
        let before = ns.save_all();
        // IPv4's chains are already applied when IPv6's restore fails: they go back, and no
        // file was written (with `apply: live` the chains come first).
        fail_ip6tables_restore(&ns);
        let run = ns.module(policy(&ns));
        run.fails_with("injected failure");
        run.fails_with("Rolled back: live ufw-docker-guard (ipv4), live DOCKER-USER (ipv4).");
        assert_stock_files(&v4, &v6);
        assert_eq!(ns.save_all(), before, "{backend:?}: chains restored");
    });
}

/// What the module's one restore of both tables per family relies on (`plan::Tables`), checked
/// on both backends in both families: iptables-restore commits each table at its COMMIT and
/// stops at the first failure, whether the failing line is refused as it is read (a jump to no
/// chain) or by the kernel at the commit (a target neither table takes). A failing `*security`
/// section, first, leaves the filter table as it was; a failing `*filter` section, second,
/// leaves the security table committed.
#[test]
fn iptables_restore_commits_each_table_at_its_commit_and_stops_at_the_first_failure() {
    let security = "*security\n:ufw-docker-guard - [0:0]\n-A ufw-docker-guard -j RETURN\n\
                    -I FORWARD 1 -j ufw-docker-guard\nCOMMIT\n";
    let filter = "*filter\n:DOCKER-USER - [0:0]\n-A DOCKER-USER -j DROP\nCOMMIT\n";
    each_backend(|backend| {
        let ns = Netns::new(backend);
        ns.dockerish();
        for (v6, tool) in [(false, "iptables"), (true, "ip6tables")] {
            // Put back before each case: the filter table as it is now, an empty security table.
            let reset = ns.path("reset.rules");
            let empty = "*security\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n\
                         :OUTPUT ACCEPT [0:0]\nCOMMIT\n";
            fs::write(&reset, ns.save(v6) + empty).unwrap();
            for bad in [
                "-A FORWARD -j injected-failure",
                "-A FORWARD -p tcp -j TPROXY --on-port 1",
            ] {
                for failing in ["*security", "*filter"] {
                    let case = format!("{backend:?} {tool}-restore, {failing} refusing `{bad}`");
                    ns.exec(&format!("{tool}-restore < {}", reset.display()));
                    let before = ns.tables(v6);
                    let broken = |section: &str| {
                        if section.starts_with(failing) {
                            section.replace("COMMIT\n", &format!("{bad}\nCOMMIT\n"))
                        } else {
                            section.to_string()
                        }
                    };
                    let payload = ns.path("both.rules");
                    fs::write(&payload, broken(security) + &broken(filter)).unwrap();
                    let loaded = try_sh(&format!(
                        "ip netns exec {} /usr/sbin/{tool}-restore -w 30 --noflush < {}",
                        ns.name,
                        payload.display()
                    ));
                    assert!(loaded.is_err(), "{case}: the restore fails");
                    let after = ns.tables(v6);
                    if failing == "*security" {
                        assert_eq!(after, before, "{case}: nothing is committed");
                        continue;
                    }
                    assert_eq!(
                        section(&after, "*filter"),
                        section(&before, "*filter"),
                        "{case}: the failing filter table as it was"
                    );
                    assert_eq!(
                        section(&after, "*security"),
                        "*security\n:INPUT ACCEPT\n:FORWARD ACCEPT\n:OUTPUT ACCEPT\n\
                         :ufw-docker-guard -\n-A FORWARD -j ufw-docker-guard\n\
                         -A ufw-docker-guard -j RETURN\nCOMMIT\n",
                        "{case}: the security table, before the failure, committed"
                    );
                }
            }
        }
    });
}

/// The `*name` section of `tables` (`Netns::tables`), through its COMMIT; empty if none.
fn section<'a>(tables: &'a str, name: &str) -> &'a str {
    let Some(start) = tables.find(&format!("{name}\n")) else {
        return "";
    };
    let len = tables[start..]
        .find("COMMIT\n")
        .map_or(0, |i| i + "COMMIT\n".len());
    &tables[start..start + len]
}

/// The module's restore of both tables failing in either table, in either family, on both
/// backends (a wrapper pinned in the namespace's /etc/alternatives adds a line the tool refuses
/// to the table's section of a payload that holds both). A failure in the security table, first,
/// commits nothing of that family; one in the filter table, second, leaves the guard committed,
/// and the rollback puts it back. Every table of both families ends as it was, and no file is
/// written (with `apply: live` the chains come first).
#[test]
fn a_restore_of_both_tables_failing_in_either_table_is_rolled_back() {
    each_backend(|backend| {
        for (tool, failing, rolled_back) in [
            ("iptables-restore", "security", None),
            (
                "iptables-restore",
                "filter",
                Some("live ufw-docker-guard (ipv4)"),
            ),
            (
                "ip6tables-restore",
                "security",
                Some("live ufw-docker-guard (ipv4), live DOCKER-USER (ipv4)"),
            ),
            (
                "ip6tables-restore",
                "filter",
                Some(
                    "live ufw-docker-guard (ipv4), live DOCKER-USER (ipv4), live \
                     ufw-docker-guard (ipv6)",
                ),
            ),
        ] {
            let case = format!("{backend:?}, {tool} failing in {failing}");
            let ns = Netns::new(backend);
            ns.dockerish();
            let (v4, v6) = ns.rule_files();
            let before = ns.tables_all();
            fail_in_table(&ns, tool, failing);
            let run = ns.module(policy(&ns));
            let key = if tool == "iptables-restore" {
                "ipv4"
            } else {
                "ipv6"
            };
            run.fails_with(&format!(
                "`{tool} -w 30 --noflush < {key} ufw-docker-guard (security table), DOCKER-USER \
                 and ufw-docker-logging-deny` failed"
            ));
            run.fails_with("injected-failure");
            let msg = run.json["msg"].as_str().unwrap();
            match rolled_back {
                Some(what) => assert!(
                    msg.ends_with(&format!(". Rolled back: {what}.")),
                    "{case}: {msg}"
                ),
                None => assert!(!msg.contains("Rolled back"), "{case}: {msg}"),
            }
            assert_stock_files(&v4, &v6);
            assert_eq!(ns.tables_all(), before, "{case}: every table as it was");
        }
    });
}

/// Makes the namespace's `tool` (iptables-restore or ip6tables-restore) refuse a line added
/// before the COMMIT of `table`'s section, in a payload that holds both the filter and the
/// security table; anything else (a test-load, one table, a rollback) goes to the real tool.
fn fail_in_table(ns: &Netns, tool: &str, table: &str) {
    let real = ns.backend.tool(tool).display().to_string();
    ns.wrap(
        tool,
        &format!(
            "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = --test ] && exec {real} \"$@\"; done\n\
             in=$(/usr/bin/mktemp)\n/bin/cat > \"$in\"\n\
             if /bin/grep -qx '[*]security' \"$in\" && /bin/grep -qx '[*]filter' \"$in\"; then\n\
             /bin/sed -i '/^[*]{table}$/,/^COMMIT$/ s/^COMMIT$/-A FORWARD -j \
             injected-failure\\nCOMMIT/' \"$in\"\nfi\n\
             {real} \"$@\" < \"$in\"\nrc=$?\n/bin/rm -f \"$in\"\nexit $rc\n"
        ),
    );
}

/// Review of issue 16: "`find_program` looks in PATH before the system directories, as root".
/// The module runs the namespace's pinned backend from the system directories, and never a
/// program of the same name first on PATH.
#[test]
fn programs_first_on_path_are_never_run_and_each_backend_is_the_pinned_one() {
    each_backend(|backend| {
        let ns = Netns::new(backend);
        ns.dockerish();
        ns.rule_files();
        let decoys = ns.path("decoys");
        fs::create_dir(&decoys).unwrap();
        let ran = ns.path("a-decoy-ran");
        for tool in [
            "iptables-save",
            "iptables-restore",
            "ip6tables-save",
            "ip6tables-restore",
            "ufw",
            "nft",
        ] {
            let script = decoys.join(tool);
            fs::write(
                &script,
                format!(
                    "#!/bin/sh
echo {tool} >> {}
exit 99
",
                    ran.display()
                ),
            )
            .unwrap();
            fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let args = policy(&ns);
        let args_file = ns.path("decoy-args.json");
        fs::write(&args_file, args.to_string()).unwrap();
        let out = ns
            .module_cmd(&args_file)
            .env(
                "PATH",
                format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", decoys.display()),
            )
            .output()
            .unwrap();
        assert!(ModuleRun::new(args, out).ok(), "{backend:?}");
        assert!(
            !ran.exists(),
            "{backend:?}: root ran a program from PATH: {}",
            fs::read_to_string(&ran).unwrap_or_default()
        );
        // The rules are in the pinned backend's tables, and only there.
        let (pinned, other) = (backend.name(), backend.other().name());
        let tables = |b: &str| {
            ns.exec(&format!(
                "/usr/sbin/iptables-{b}-save 2>/dev/null; /usr/sbin/ip6tables-{b}-save 2>/dev/null; true"
            ))
        };
        // The logging chain of filter and of the guard (security), in both families.
        assert_eq!(
            tables(pinned).matches(":ufw-docker-logging-deny").count(),
            4,
            "{backend:?}: both families applied with iptables-{pinned}"
        );
        assert!(
            !tables(other).contains("ufw-docker-logging-deny"),
            "{backend:?}: nothing applied with iptables-{other}"
        );
    });
}

/// Review of issue 16: "Rollback does not undo the FORWARD re-hook". Where Docker runs but
/// DOCKER-USER is not first in FORWARD, the IPv4 apply moves the jump first; when IPv6 then
/// fails, the rollback puts FORWARD back as well: the jumps where they were (two, pushed down
/// by Docker's rules), or none at all where there was none.
#[test]
fn a_failed_apply_puts_back_the_forward_jump_it_moved() {
    each_backend(|backend| {
        for (case, setup) in [
            (
                "two jumps, pushed down",
                "iptables -N DOCKER && iptables -I FORWARD -o docker0 -j DOCKER && \
                 iptables -A FORWARD -j DOCKER-USER",
            ),
            (
                "no jump",
                "iptables -D FORWARD -j DOCKER-USER && iptables -N DOCKER && \
                 iptables -I FORWARD -o docker0 -j DOCKER",
            ),
        ] {
            let ns = Netns::new(backend);
            ns.dockerish();
            ns.exec(setup);
            ns.rule_files();
            let before = ns.save_all();
            fail_ip6tables_restore(&ns);
            let run = ns.module(policy(&ns));
            run.fails_with("injected failure");
            run.fails_with("Rolled back");
            run.fails_with("FORWARD's jumps to it (ipv4)");
            assert_eq!(
                ns.save_all(),
                before,
                "{backend:?}, {case}: FORWARD and the chains as they were"
            );
        }
    });
}

/// Makes the namespace's ip6tables-restore pass validation (`--test`) and fail the real load,
/// so that a run fails after IPv4 was applied.
fn fail_ip6tables_restore(ns: &Netns) {
    let real = ns.backend.tool("ip6tables-restore").display().to_string();
    ns.wrap(
        "ip6tables-restore",
        &format!(
            "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = --test ] && exec {real} \"$@\"; done\n\
             echo 'injected failure: table locked by a test' >&2\nexit 4\n"
        ),
    );
}

#[test]
fn hand_edits_are_detected_and_restored() {
    let ns = Netns::new(Backend::Nft);
    ns.dockerish();
    let (v4, _) = ns.rule_files();
    assert!(ns.module(policy(&ns)).ok());
    let good = fs::read_to_string(&v4).unwrap();
    let edited = good.replace(
        "-A DOCKER-USER -j RETURN\n",
        "-A DOCKER-USER -j ACCEPT\n-A DOCKER-USER -j RETURN\n",
    );
    fs::write(&v4, &edited).unwrap();
    let run = ns.module(policy(&ns));
    assert!(run.ok());
    assert!(
        run.warnings().contains("edited by hand"),
        "{}",
        run.warnings()
    );
    assert_eq!(fs::read_to_string(&v4).unwrap(), good);
}

#[test]
fn a_legacy_script_block_is_adopted() {
    let ns = Netns::new(Backend::Nft);
    ns.dockerish();
    let (v4, _) = ns.rule_files();
    fs::copy(data("after.rules.legacy-block"), &v4).unwrap();
    let run = ns.module(policy(&ns));
    assert!(run.ok());
    assert!(run
        .warnings()
        .contains("adopted the block of the ufw-docker script"));
    let text = fs::read_to_string(&v4).unwrap();
    assert!(
        !text.contains("# BEGIN UFW AND DOCKER")
            && text.contains("# BEGIN UFW-DOCKER MANAGED BLOCK")
    );
    assert!(text.ends_with("# operator's text after the script block\n"));
    assert!(!ns.module(policy(&ns)).ok());
}

#[test]
fn every_bad_input_fails_cleanly_and_writes_nothing() {
    let ns = Netns::new(Backend::Nft);
    ns.dockerish();
    let (v4, v6) = ns.rule_files();
    let broken = format!(
        "{}# BEGIN UFW-DOCKER MANAGED BLOCK sha256=00\n-A DOCKER-USER -j ACCEPT\n",
        fs::read_to_string(data("after.rules")).unwrap()
    );
    let broken_file = ns.path("broken.rules");
    fs::write(&broken_file, &broken).unwrap();
    let two_blocks = ns.path("two.rules");
    fs::write(
        &two_blocks,
        "# BEGIN UFW AND DOCKER\n# END UFW AND DOCKER\n# BEGIN UFW AND DOCKER\n# END UFW AND DOCKER\n",
    )
    .unwrap();
    let a_dir = ns.path("bin");
    let before = ns.save_all();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"allow": [{"port": 0}]}), "outside 1-65535"),
        (json!({"allow": [{"port": 65536}]}), "outside 1-65535"),
        (json!({"allow": [{"port": "200:100"}]}), "reversed range"),
        (
            json!({"allow": [{"port": 80, "proto": "gre"}]}),
            "must be one of: tcp, udp",
        ),
        (
            json!({"trusted_networks": ["10.0.0.300/8"]}),
            "is not a CIDR",
        ),
        (
            json!({"allow": [{"port": 80, "from": ["any"]}]}),
            "is not a CIDR",
        ),
        (
            json!({"allow": [{"port": 80, "comment": "x\n-A DOCKER-USER -j ACCEPT"}]}),
            "comment contains",
        ),
        (
            json!({"allow": [{"port": 80, "comment": "x\" -j ACCEPT \""}]}),
            "comment contains",
        ),
        (json!({"log_prefix": "a\nCOMMIT"}), "log_prefix contains"),
        (json!({"log_prefix": "it's"}), "log_prefix contains"),
        (json!({"log_limit": "100000/second"}), "too fast"),
        (
            json!({"log_limit": "3/min --limit-burst 1000"}),
            "log_limit",
        ),
        (json!({"backup": "sometimes"}), "backup must be a boolean"),
        (json!({"allow": [{"port": []}]}), "must be a port number"),
        (
            json!({"after_rules": ns.path("missing.rules")}),
            "does not exist",
        ),
        (json!({"after_rules": a_dir}), "cannot read"),
        (json!({"after_rules": broken_file}), "never closed"),
        (json!({"after_rules": two_blocks}), "two managed blocks"),
    ];
    for (extra, needle) in cases {
        let args = with(policy(&ns), extra);
        ns.module(args).fails_with(needle);
    }
    assert_stock_files(&v4, &v6);
    assert_eq!(fs::read_to_string(&broken_file).unwrap(), broken);
    assert_eq!(ns.save_all(), before);
    // A missing file is fine when the block is to be absent anyway.
    let absent = with(
        policy(&ns),
        json!({"state": "absent", "after_rules": ns.path("missing.rules")}),
    );
    ns.module(absent).ok();
}

#[test]
fn the_module_hooks_docker_user_where_docker_20_did_not() {
    each_backend(|backend| {
        let ns = Netns::new(backend);
        ns.dockerish();
        ns.rule_files();
        // Docker 20.10 with ip6tables: its chains in FORWARD, no DOCKER-USER jump at all.
        ns.exec(
            "ip6tables -D FORWARD -j DOCKER-USER && ip6tables -N DOCKER && \
             ip6tables -I FORWARD -o docker0 -j DOCKER",
        );
        let run = ns.module(policy(&ns));
        assert!(run.ok());
        assert!(
            run.warnings().contains("the module puts the jump first"),
            "{}",
            run.warnings()
        );
        let forward = ns.chain(true, "FORWARD");
        assert_eq!(
            forward[0], "-A FORWARD -j DOCKER-USER",
            "{backend:?} {forward:?}"
        );
        assert!(!ns.module(policy(&ns)).ok(), "hooked: nothing more to do");
        // A network created later: Docker 20.10 inserts its rules ahead of the jump.
        ns.exec("ip6tables -I FORWARD -o br-later -j DOCKER");
        assert!(ns.module(policy(&ns)).ok(), "the jump is moved back first");
        let forward = ns.chain(true, "FORWARD");
        assert_eq!(forward[0], "-A FORWARD -j DOCKER-USER");
        assert_eq!(
            forward
                .iter()
                .filter(|r| r.ends_with("-j DOCKER-USER"))
                .count(),
            1
        );
        assert!(ns.chain(false, "FORWARD")[0] == "-A FORWARD -j DOCKER-USER");
    });
}

#[test]
fn backend_iptables_manages_the_chain_and_no_file() {
    each_backend(|backend| {
        let ns = Netns::new(backend);
        ns.dockerish();
        // No UFW here: the file paths point nowhere, and must not matter.
        let args = json!({
            "backend": "iptables",
            "after_rules": ns.path("absent/after.rules"), "after6_rules": ns.path("absent/after6.rules"),
            "allow": [{"port": 8080}],
        });
        let run = ns.module(args.clone());
        assert!(run.ok(), "{backend:?}");
        assert_eq!(run.json["diff"], Value::Null, "no diff asked");
        let live = ns.chain(false, "DOCKER-USER").join("\n");
        assert!(
            live.contains("--ctorigdstport 8080") && !live.contains("ufw-user-forward"),
            "{live}"
        );
        assert!(!ns.path("absent").exists());
        assert!(!ns.module(args.clone()).ok(), "rerun is a no-op");
        let gone = with(args, json!({"state": "absent"}));
        assert!(ns.module(gone).ok());
        assert!(ns.chain(false, "DOCKER-USER").is_empty());
    });
}

#[test]
fn unit_present_reports_the_roles_unit_and_leaves_it_alone() {
    let ns = Netns::new(Backend::Nft);
    ns.dockerish();
    let unit = ns.path("ufw-docker.service");
    let args = json!({
        "backend": "iptables", "unit_path": unit,
        "after_rules": ns.path("absent/after.rules"), "after6_rules": ns.path("absent/after6.rules"),
    });
    let check = with(args.clone(), json!({"_ansible_check_mode": true}));
    assert_eq!(ns.module(check.clone()).json["unit_present"], false);
    assert!(!unit.exists());

    let text = "[Unit]\nDescription=left by an earlier run\n";
    fs::write(&unit, text).unwrap();
    assert_eq!(ns.module(check).json["unit_present"], true);
    let run = ns.module(args.clone());
    assert!(run.ok());
    assert_eq!(run.json["unit_present"], true);
    let gone = ns.module(with(args.clone(), json!({"state": "absent"})));
    gone.ok();
    assert_eq!(gone.json["unit_present"], true);
    assert_eq!(
        fs::read_to_string(&unit).unwrap(),
        text,
        "the module never writes the unit"
    );

    // A path that cannot be read is a clear failure, before anything is applied.
    let before = ns.save_all();
    let odd = ns.module(with(args, json!({"unit_path": ns.path("")})));
    odd.fails_with("unit_path");
    assert_eq!(ns.save_all(), before);
}

#[test]
fn dockers_nftables_backend_is_refused_with_what_to_do() {
    let ns = Netns::new(Backend::Nft);
    ns.rule_files();
    ns.exec("nft add table ip docker-bridges && nft add table ip6 docker-bridges");
    let before = ns.save_all();
    let run = ns.module(policy(&ns));
    run.fails_with("Docker uses its nftables firewall backend");
    run.fails_with("firewall-backend");
    assert_eq!(run.json["docker_firewall_backend"], "nftables");
    assert_eq!(ns.save_all(), before);
    assert_eq!(
        fs::read(ns.path("after.rules")).unwrap(),
        fs::read(data("after.rules")).unwrap()
    );
}

#[test]
fn the_exposure_report_lists_dockers_published_ports() {
    let ns = Netns::new(Backend::Nft);
    ns.dockerish();
    ns.rule_files();
    // Docker's nat rules for two published ports, and someone else's DNAT.
    ns.exec(
        "iptables -t nat -N DOCKER && \
         iptables -t nat -A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80 && \
         iptables -t nat -A DOCKER ! -i docker0 -p tcp -m tcp --dport 9090 -j DNAT --to-destination 172.17.0.3:90 && \
         iptables -t nat -A PREROUTING -p tcp --dport 2222 -j DNAT --to-destination 192.0.2.5:22",
    );
    let check = ns.module(with(policy(&ns), json!({"_ansible_check_mode": true})));
    assert!(check.ok());
    let published = check.json["published"].as_array().unwrap();
    assert_eq!(published.len(), 2, "{published:?}");
    let by_port = |p: &str| {
        published
            .iter()
            .find(|e| e["host_port"] == p)
            .unwrap()
            .clone()
    };
    assert_eq!(by_port("8080")["now"], "open");
    assert_eq!(by_port("8080")["after"], "open", "allowed by the policy");
    assert_eq!(by_port("9090")["now"], "open");
    assert_eq!(by_port("9090")["after"], "blocked");
    assert_eq!(by_port("9090")["container_address"], "172.17.0.3");
    assert_eq!(by_port("9090")["trusted"], json!(["192.168.50.0/24"]));
    let other = check.strings("unrecognised_dnat");
    assert_eq!(other.len(), 1);
    assert!(other[0].contains("--dport 2222"));
    // After applying, "now" is what the policy says.
    assert!(ns.module(policy(&ns)).ok());
    let again = ns.module(with(policy(&ns), json!({"_ansible_check_mode": true})));
    let now: Vec<_> = again.json["published"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["now"].clone())
        .collect();
    assert_eq!(now, [json!("open"), json!("blocked")]);
}
