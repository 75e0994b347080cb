//! Fault injection with real namespaces and real file systems: a full disk, a read-only file
//! system, a missing directory, a symlinked after.rules, the xtables lock held by another
//! program, two runs at once, and SIGKILL at many points of a run.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{assert_stock_files, data, each_backend, ModuleRun, Netns};
use crate::support::{sh, Backend};

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
    assert_stock_files(&v4, &v6);
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

/// The namespace's processes that have `path` open, as `pid: command line`.
fn processes_with_open(ns: &Netns, path: &Path) -> Vec<String> {
    sh(&format!("ip netns pids {}", ns.name))
        .split_whitespace()
        .filter(|pid| {
            fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|fds| {
                    fds.flatten()
                        .any(|fd| fs::read_link(fd.path()).is_ok_and(|t| t == path))
                })
                .unwrap_or(false)
        })
        .map(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            format!(
                "{pid}: {}",
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            )
        })
        .collect()
}

#[test]
fn the_xtables_lock_held_elsewhere_is_waited_for() {
    // Only the legacy backend takes /run/xtables.lock; the module passes -w to wait for it.
    let ns = Netns::new(Backend::Legacy);
    ns.dockerish();
    let (v4, v6) = ns.rule_files();
    let old4 = fs::read(&v4).unwrap();
    let lock = Path::new("/run/xtables.lock");
    // Holds the lock until its stdin closes, and says so once it has it.
    let mut holder = Command::new("flock")
        .arg(lock)
        .args(["sh", "-c", "echo held; cat >/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut said)
        .unwrap();
    assert_eq!(said, "held\n", "flock took {}", lock.display());
    let args = ns.path("lock-args.json");
    fs::write(&args, policy(&v4, &v6).to_string()).unwrap();
    let mut run = module_cmd(&ns, &args).spawn().unwrap();
    // The run gets to an iptables call that opens the lock, which it cannot have: it waits.
    let waiting = loop {
        if let Some(status) = run.try_wait().unwrap() {
            panic!(
                "the run ended ({status}) while {} was held elsewhere, without ever opening it: \
                 it did not wait for the lock",
                lock.display()
            );
        }
        let open = processes_with_open(&ns, lock);
        if !open.is_empty() {
            break open;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    assert!(
        fs::read(&v4).unwrap() == old4,
        "nothing is written while the run waits for the lock ({waiting:?})"
    );
    assert!(
        run.try_wait().unwrap().is_none(),
        "the run is still waiting when the lock is released ({waiting:?})"
    );
    drop(holder.stdin.take()); // `cat` ends, and flock releases the lock.
    assert!(holder.wait().unwrap().success());
    let run = ModuleRun::new(policy(&v4, &v6), run.wait_with_output().unwrap());
    assert!(
        run.ok(),
        "the run waits for the lock, then applies ({waiting:?})"
    );
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

/// The host as the files and both families' filter tables make it.
#[derive(Clone, PartialEq, Eq)]
struct HostState {
    v4: Vec<u8>,
    v6: Vec<u8>,
    live4: String,
    live6: String,
}

impl HostState {
    fn read(ns: &Netns, v4: &Path, v6: &Path) -> HostState {
        HostState {
            v4: fs::read(v4).unwrap(),
            v6: fs::read(v6).unwrap(),
            live4: ns.save(false),
            live6: ns.save(true),
        }
    }

    /// Puts the files and the filter tables back as they were (a full iptables-restore: the
    /// chains a run created go too).
    fn restore(&self, ns: &Netns, v4: &Path, v6: &Path) {
        fs::write(v4, &self.v4).unwrap();
        fs::write(v6, &self.v6).unwrap();
        for (tool, table) in [
            ("iptables-restore", &self.live4),
            ("ip6tables-restore", &self.live6),
        ] {
            let file = ns.path("reset.rules");
            fs::write(&file, table).unwrap();
            ns.exec(&format!("{tool} < {}", file.display()));
        }
    }

    /// Which parts (file or live table, per family) equal `new`'s; each must equal the old
    /// state's or `new`'s, never a mix.
    fn changed_parts(&self, old: &HostState, new: &HostState, when: &str) -> Vec<&'static str> {
        let parts = [
            ("v4 file", self.v4 == old.v4, self.v4 == new.v4),
            ("v6 file", self.v6 == old.v6, self.v6 == new.v6),
            ("v4 live", self.live4 == old.live4, self.live4 == new.live4),
            ("v6 live", self.live6 == old.live6, self.live6 == new.live6),
        ];
        for (part, is_old, is_new) in parts {
            assert!(
                is_old || is_new,
                "{when}: the {part} is neither the old nor the new one"
            );
        }
        parts
            .iter()
            .filter(|(_, is_old, _)| !is_old)
            .map(|(part, _, _)| *part)
            .collect()
    }
}

/// Waits until no process is left in the namespace: the iptables-restore a killed run started
/// goes on without it, and must not commit into the next iteration.
fn wait_until_empty(ns: &Netns) {
    for _ in 0..2000 {
        if sh(&format!("ip netns pids {}", ns.name)).trim().is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!(
        "processes of a killed run are still in {} after 10s",
        ns.name
    );
}

#[test]
fn sigkill_at_any_point_leaves_the_old_or_the_new_file_and_a_rerun_repairs() {
    let ns = Netns::new(Backend::Nft);
    ns.dockerish();
    let (v4, v6) = ns.rule_files();
    let old = HostState::read(&ns, &v4, &v6);
    let args = ns.path("kill-args.json");
    fs::write(&args, policy(&v4, &v6).to_string()).unwrap();
    // What a complete run leaves, and how long one takes here and now.
    let started = Instant::now();
    let out = module_cmd(&ns, &args).output().unwrap();
    let full_run = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let new = HostState::read(&ns, &v4, &v6);
    assert_eq!(
        old.changed_parts(&new, &old, "a complete run").len(),
        4,
        "a complete run changes both files and both tables"
    );
    // Kill points spread over the run and a quarter beyond, round after round, until a kill
    // lands after the first change and before the last (a run left half-applied), which then
    // stays for the rerun. Every other iteration is reset to the old state.
    const ROUND: u32 = 40;
    let (mut untouched, mut complete, mut partial) = (0, 0, 0);
    let mut left_partial = None;
    for i in 0..5 * ROUND {
        old.restore(&ns, &v4, &v6);
        assert!(
            HostState::read(&ns, &v4, &v6) == old,
            "the reset puts back the old files and tables"
        );
        let delay = full_run * (i % ROUND) * 5 / (4 * ROUND);
        let mut child = module_cmd(&ns, &args)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        wait_until_empty(&ns);
        let when = format!("kill after {delay:?} ({status})");
        let changed = HostState::read(&ns, &v4, &v6).changed_parts(&old, &new, &when);
        match changed.len() {
            0 => untouched += 1,
            4 => complete += 1,
            _ => {
                partial += 1;
                if i + 1 >= ROUND {
                    left_partial = Some(format!("{when}: changed {changed:?}"));
                    break;
                }
            }
        }
    }
    let left_partial = left_partial.unwrap_or_else(|| {
        panic!(
            "no kill landed in the middle of a run (full run {full_run:?}): {untouched} before \
             any change, {complete} after the last, {partial} in between within the first round"
        )
    });
    println!(
        "kills: {untouched} before any change, {complete} after the last, {partial} in \
         between; left: {left_partial}"
    );
    assert!(
        ns.module(policy(&v4, &v6)).ok(),
        "the rerun after {left_partial} reports the change it makes"
    );
    assert!(
        !ns.module(policy(&v4, &v6)).ok(),
        "rerun after the kills converges"
    );
    assert!(
        HostState::read(&ns, &v4, &v6) == new,
        "the rerun leaves what a complete run leaves"
    );
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
