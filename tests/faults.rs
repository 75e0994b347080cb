//! Fault injection with real namespaces and real file systems: a full disk, a read-only file
//! system, a missing directory, a symlinked after.rules, the xtables lock held by another
//! program, two runs at once, and SIGKILL at many points of a run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{data, each_backend, sh, Backend, Netns};

fn policy(v4: &Path, v6: &Path) -> Value {
    json!({
        "after_rules": v4, "after6_rules": v6,
        "allow": [{"port": 8080}, {"port": "6000:6010", "proto": "udp"}],
        "trusted_networks": ["192.168.50.0/24"],
    })
}

/// A tmpfs mounted for one test, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn new(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        sh(&format!(
            "mount -t tmpfs -o size={size} ufwd-test {}",
            dir.path().display()
        ));
        Tmpfs { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_file_system_leaves_the_original_intact_with_a_clear_error() {
    let ns = Netns::new(Backend::Nft);
    ns.dockerish();
    let fs_ = Tmpfs::new("64k");
    let (v4, v6) = (fs_.path("after.rules"), fs_.path("after6.rules"));
    fs::copy(data("after.rules"), &v4).unwrap();
    fs::copy(data("after6.rules"), &v6).unwrap();
    // Fill the file system to the last block.
    let _ = Command::new("dd")
        .args([
            "if=/dev/zero",
            &format!("of={}", fs_.path("filler").display()),
            "bs=1k",
        ])
        .stderr(Stdio::null())
        .status();
    let before = ns.save_all();
    let run = ns.module(policy(&v4, &v6));
    run.fails_with("No space left on device");
    run.fails_with("was left as it was");
    assert_eq!(
        fs::read(&v4).unwrap(),
        fs::read(data("after.rules")).unwrap()
    );
    assert_eq!(
        fs::read(&v6).unwrap(),
        fs::read(data("after6.rules")).unwrap()
    );
    assert_eq!(
        ns.save_all(),
        before,
        "nothing applied live when the file could not be written"
    );
    let temps: Vec<_> = fs::read_dir(fs_.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(temps.is_empty(), "no temporary file left behind");
}

#[test]
fn a_read_only_file_system_fails_clearly_and_changes_nothing() {
    let ns = Netns::new(Backend::Nft);
    ns.dockerish();
    let fs_ = Tmpfs::new("1m");
    let (v4, v6) = (fs_.path("after.rules"), fs_.path("after6.rules"));
    fs::copy(data("after.rules"), &v4).unwrap();
    fs::copy(data("after6.rules"), &v6).unwrap();
    sh(&format!("mount -o remount,ro {}", fs_.dir.path().display()));
    let before = ns.save_all();
    let run = ns.module(policy(&v4, &v6));
    run.fails_with("Read-only file system");
    assert_eq!(
        fs::read(&v4).unwrap(),
        fs::read(data("after.rules")).unwrap()
    );
    assert_eq!(ns.save_all(), before);
}

#[test]
fn a_missing_directory_is_reported_as_a_missing_file() {
    let ns = Netns::new(Backend::Nft);
    let v4 = ns.path("no/such/dir/after.rules");
    ns.module(policy(&v4, &ns.path("after6.rules")))
        .fails_with("no/such/dir/after.rules does not exist");
}

#[test]
fn a_symlinked_after_rules_is_written_through_and_the_link_kept() {
    let ns = Netns::new(Backend::Nft);
    ns.dockerish();
    let (real4, v6) = ns.rule_files();
    let link = ns.path("link.rules");
    std::os::unix::fs::symlink(&real4, &link).unwrap();
    assert!(ns.module(policy(&link, &v6)).ok());
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(fs::read_to_string(&real4)
        .unwrap()
        .contains("MANAGED BLOCK"));
    assert!(!ns.module(policy(&link, &v6)).ok());
}

#[test]
fn the_xtables_lock_held_elsewhere_is_waited_for() {
    // Only the legacy backend takes /run/xtables.lock; the module passes -w to wait for it.
    let ns = Netns::new(Backend::Legacy);
    ns.dockerish();
    let (v4, v6) = ns.rule_files();
    let mut holder = Command::new("flock")
        .args(["/run/xtables.lock", "sleep", "2"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let run = ns.module(policy(&v4, &v6));
    assert!(run.ok(), "the run waits for the lock, then applies");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "it really waited"
    );
    holder.wait().unwrap();
    assert!(!ns.chain(false, "DOCKER-USER").is_empty());
}

#[test]
fn two_runs_at_once_are_serialised_and_leave_one_correct_chain() {
    each_backend(|backend| {
        let ns = Netns::new(backend);
        ns.dockerish();
        let (v4, v6) = ns.rule_files();
        let runs: Vec<_> = (0..4)
            .map(|_| {
                let args = ns.path(&format!("args-{}.json", rand_suffix()));
                fs::write(&args, policy(&v4, &v6).to_string()).unwrap();
                module_cmd(&ns, &args).spawn().unwrap()
            })
            .collect();
        let mut reported = Value::Null;
        for child in runs {
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{stdout}");
            reported = serde_json::from_str(stdout.trim()).unwrap();
        }
        let text = fs::read_to_string(&v4).unwrap();
        assert_eq!(text.matches("# BEGIN UFW-DOCKER MANAGED BLOCK").count(), 1);
        for (v6, family) in [(false, "ipv4"), (true, "ipv6")] {
            let live: Vec<String> = ["DOCKER-USER", "ufw-docker-logging-deny"]
                .iter()
                .flat_map(|chain| ns.chain(v6, chain))
                .collect();
            // Anywhere in the chains, not only next to each other: a repeated block of rules
            // puts its copies apart.
            let mut seen = std::collections::HashSet::new();
            let repeated: Vec<&String> = live.iter().filter(|r| !seen.insert(*r)).collect();
            assert!(
                repeated.is_empty(),
                "{backend:?} {family}: no duplicated rules, yet these are there twice: \
                 {repeated:#?}\nin {live:#?}"
            );
            let tokens = |lines: &[String]| -> Vec<Vec<String>> {
                lines
                    .iter()
                    .map(|l| ufw_docker::rules::tokenize(l))
                    .collect()
            };
            let want: Vec<String> = reported["rules"][family]
                .as_array()
                .expect("the result lists the rules")
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
                .collect();
            assert_eq!(
                tokens(&live),
                tokens(&want),
                "{backend:?} {family}: the live chains are the rules the runs report"
            );
        }
        assert!(
            !ns.module(policy(&v4, &v6)).ok(),
            "the final state is the desired one"
        );
    });
}

/// Review of issue 16: "`UFW_DOCKER_LOCK` (a test hook) can redirect or defeat the run lock in
/// the released binary". The module's lock is /run/ufw_docker.lock whatever its environment
/// says: with that file held (the namespace's, bind-mounted there by the harness), a run told
/// to lock elsewhere waits, writing nothing, and applies once the lock is released.
#[test]
fn no_environment_variable_moves_the_run_lock() {
    let ns = Netns::new(Backend::Nft);
    ns.dockerish();
    let (v4, v6) = ns.rule_files();
    let args = ns.path("lock-args.json");
    fs::write(&args, policy(&v4, &v6).to_string()).unwrap();
    let elsewhere = ns.path("elsewhere.lock");
    let held = ns.hold_lock();
    let mut run = module_cmd(&ns, &args)
        .env("UFW_DOCKER_LOCK", &elsewhere)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        run.try_wait().unwrap().is_none(),
        "the run did not wait for the held lock"
    );
    assert_eq!(
        fs::read(&v4).unwrap(),
        fs::read(data("after.rules")).unwrap(),
        "nothing is written while another run holds the lock"
    );
    drop(held);
    let out = run.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!elsewhere.exists(), "UFW_DOCKER_LOCK is not read");
    assert!(fs::read_to_string(&v4).unwrap().contains("MANAGED BLOCK"));
}

#[test]
fn sigkill_at_any_point_leaves_the_old_or_the_new_file_and_a_rerun_repairs() {
    let ns = Netns::new(Backend::Nft);
    ns.dockerish();
    let (v4, v6) = ns.rule_files();
    let old4 = fs::read(&v4).unwrap();
    // The file the module writes, learnt from one complete run in a scratch copy.
    let scratch = ns.path("scratch.rules");
    fs::copy(&v4, &scratch).unwrap();
    assert!(ns
        .module(
            json!({"after_rules": scratch, "after6_rules": v6, "apply": "none",
        "allow": [{"port": 8080}, {"port": "6000:6010", "proto": "udp"}],
        "trusted_networks": ["192.168.50.0/24"]})
        )
        .ok());
    let new4 = fs::read(&scratch).unwrap();
    fs::copy(data("after6.rules"), &v6).unwrap();
    let args = ns.path("kill-args.json");
    fs::write(&args, policy(&v4, &v6).to_string()).unwrap();
    for i in 0..40u64 {
        let mut child = module_cmd(&ns, &args)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(i * 700));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let now = fs::read(&v4).unwrap();
        assert!(
            now == old4 || now == new4,
            "kill after {}us left a partial file",
            i * 700
        );
        // Reset so every iteration starts from the old state.
        if now == new4 {
            fs::write(&v4, &old4).unwrap();
            fs::copy(data("after6.rules"), &v6).unwrap();
            sh(&format!(
                "ip netns exec {} iptables -F DOCKER-USER",
                ns.name
            ));
        }
    }
    // Every iteration ends with the old file: the rerun has the whole change to make.
    assert!(
        ns.module(policy(&v4, &v6)).ok(),
        "the rerun after the kills reports the change it makes"
    );
    assert!(
        !ns.module(policy(&v4, &v6)).ok(),
        "rerun after the kills converges"
    );
    assert_eq!(fs::read(&v4).unwrap(), new4);
    let temps = sh(&format!(
        "ls -a {} | grep -c '\\.tmp$' || true",
        ns.dir.path().display()
    ));
    assert_eq!(temps.trim(), "0", "no temporary files left behind");
}

fn module_cmd(ns: &Netns, args: &Path) -> Command {
    let mut cmd = ns.module_cmd(args);
    cmd.stdout(Stdio::piped());
    cmd
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}
