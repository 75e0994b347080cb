//! The machinery of the namespace suites (`tests/tests.rs`): throwaway network namespaces with
//! the module's files and run lock, temp copies of UFW's rule files, and running the built
//! module the way Ansible does (an args file as argv[1]).
//!
//! Commands, root, the iptables backend and the namespace's /etc that pins it come from
//! `support.rs`, shared with the Docker lab. Namespace tests need root. They never skip: without
//! root (or without `ip netns`), they fail with a message saying so.

#![allow(dead_code)]

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use ufw_docker::host::LOCK_PATH;

use crate::support::{require_root, sh, Backend, EtcNetns, PINNED_TOOLS};

/// The module binary cargo built for this test run.
pub fn module_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ufw_docker")
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The PATH of commands run in a namespace: the system directories, which are also the only
/// ones the module looks in (it never searches PATH).
const SYSTEM_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// A network namespace, deleted on drop, with a directory of its own for files and an /etc of
/// its own (`support::EtcNetns`, which `ip netns exec` bind-mounts over /etc) whose
/// `alternatives` pins the iptables backend.
///
/// The module finds `/usr/sbin/iptables-restore` (it never searches PATH), a link to
/// /etc/alternatives/iptables-restore, so the pin decides for it as for every other program in
/// the namespace; the machine's own alternatives are never touched.
pub struct Netns {
    pub name: String,
    pub dir: tempfile::TempDir,
    pub backend: Backend,
    /// Scripts that `wrap` puts in place of a tool.
    bin_dir: PathBuf,
    /// `/etc/netns/<name>`, removed on drop after the namespace.
    etc: EtcNetns,
    /// Whether `with_ufw*` configured the namespace's UFW.
    has_ufw: bool,
}

impl Netns {
    pub fn new(backend: Backend) -> Netns {
        require_root("the namespace suite");
        let name = format!(
            "ufwd-t{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        // The /etc first: if the namespace cannot be made, it goes again on the way out.
        let etc = EtcNetns::make(&name, backend);
        sh(&format!("ip netns add {name}"));
        sh(&format!("ip netns exec {name} ip link set lo up"));
        let dir = tempfile::tempdir().expect("tempdir");
        let bin_dir = dir.path().join("bin");
        fs::create_dir(&bin_dir).unwrap();
        make_lock_file(&dir.path().join("lock"));
        // The mount point of the namespace's lock: the file the module itself makes.
        make_lock_file(Path::new(LOCK_PATH));
        Netns {
            name,
            dir,
            backend,
            bin_dir,
            etc,
            has_ufw: false,
        }
    }

    /// Starts the namespace's own UFW (its /etc/ufw, with the package's stock after.rules, and
    /// its /etc/default, which `ufw default` writes) with `default deny incoming` and SSH
    /// allowed, as on a real host.
    pub fn with_ufw(mut self) -> Netns {
        self.has_ufw = true;
        self.exec("ufw default deny incoming >/dev/null && ufw allow 22/tcp >/dev/null && ufw --force enable >/dev/null");
        self
    }

    /// Replaces the namespace's /etc/ufw with a copy of the UFW configuration in `src`, without
    /// starting UFW.
    pub fn with_ufw_from(mut self, src: &Path) -> Netns {
        let ufw = self.etc.ufw_dir();
        fs::remove_dir_all(&ufw).unwrap();
        sh(&format!("cp -a {} {}", src.display(), ufw.display()));
        self.has_ufw = true;
        self
    }

    /// This namespace's /etc/ufw as seen from outside.
    pub fn ufw_dir(&self) -> PathBuf {
        assert!(self.has_ufw, "namespace has a UFW");
        self.etc.ufw_dir()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Puts an executable script in place of `tool` (one of the iptables tools that
    /// /etc/alternatives chooses) for everything in the namespace, the module included: the
    /// namespace's alternative for it is pointed at the script. The script reaches the real
    /// tool by its backend's name (`/usr/sbin/ip6tables-nft-restore`).
    pub fn wrap(&self, tool: &str, script: &str) {
        assert!(
            PINNED_TOOLS.contains(&tool),
            "wrap replaces the tools /etc/alternatives chooses, not {tool}"
        );
        let p = self.bin_dir.join(tool);
        let _ = fs::remove_file(&p);
        fs::write(&p, script).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        let link = self.etc.alternatives().join(tool);
        fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&p, &link).unwrap();
    }

    /// Runs a shell command inside the namespace (its backend pinned by its /etc).
    pub fn exec(&self, cmd: &str) -> String {
        sh(&format!(
            "ip netns exec {} env PATH={SYSTEM_PATH} sh -c '{}'",
            self.name,
            cmd.replace('\'', r"'\''")
        ))
    }

    /// `iptables-save -t filter` for a family, without the timestamped comment lines.
    pub fn save(&self, v6: bool) -> String {
        let tool = if v6 {
            "ip6tables-save"
        } else {
            "iptables-save"
        };
        self.exec(&format!("{tool} -t filter"))
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// Both families' filter tables.
    pub fn save_all(&self) -> String {
        format!("{}{}", self.save(false), self.save(true))
    }

    /// Every table of a family that holds anything (`iptables-save`, without its comments and
    /// counters): a table of empty built-in chains is left out, as one never loaded (after a
    /// failed restore, iptables-legacy leaves the table it opened loaded and empty; the guard's
    /// rollback, on nft, its security table).
    pub fn tables(&self, v6: bool) -> String {
        let tool = if v6 {
            "ip6tables-save"
        } else {
            "iptables-save"
        };
        let save = self.exec(tool);
        let mut out = String::new();
        for section in save.split("COMMIT\n") {
            let lines: Vec<&str> = section
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .collect();
            let builtin = |l: &&str| {
                let chain = l.strip_prefix(':').and_then(|d| d.split(' ').next());
                chain.is_some_and(|c| {
                    ["INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"].contains(&c)
                })
            };
            if lines.iter().all(|l| l.starts_with('*') || builtin(l)) {
                continue;
            }
            for l in lines {
                // `:CHAIN POLICY [packets:bytes]`: the counters go.
                let l = if l.starts_with(':') {
                    l.split(" [").next().unwrap_or(l)
                } else {
                    l
                };
                out.push_str(l);
                out.push('\n');
            }
            out.push_str("COMMIT\n");
        }
        out
    }

    /// Both families' `tables`.
    pub fn tables_all(&self) -> String {
        format!("{}{}", self.tables(false), self.tables(true))
    }

    /// The live rules of one chain, as `-A` lines.
    pub fn chain(&self, v6: bool, chain: &str) -> Vec<String> {
        let prefix = format!("-A {chain} ");
        self.save(v6)
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .map(str::to_string)
            .collect()
    }

    /// Sets up the chains Docker and UFW create: DOCKER-USER (with Docker 20.10's RETURN)
    /// hooked first in FORWARD, and UFW's route chains.
    pub fn dockerish(&self) {
        for (tool, route) in [
            ("iptables", "ufw-user-forward"),
            ("ip6tables", "ufw6-user-forward"),
        ] {
            self.exec(&format!(
                "{tool} -N DOCKER-USER && {tool} -A DOCKER-USER -j RETURN && \
                 {tool} -I FORWARD -j DOCKER-USER && {tool} -N {route} && \
                 {tool} -A FORWARD -j {route}"
            ));
        }
    }

    /// Copies UFW's stock rule files into the namespace's directory; returns their paths.
    pub fn rule_files(&self) -> (PathBuf, PathBuf) {
        let v4 = self.path("after.rules");
        let v6 = self.path("after6.rules");
        fs::copy(data("after.rules"), &v4).unwrap();
        fs::copy(data("after6.rules"), &v6).unwrap();
        (v4, v6)
    }

    /// Runs the module inside the namespace with `args` (an object) plus the rule file paths.
    pub fn module(&self, args: Value) -> ModuleRun {
        let args_file = self.path(&format!(
            "args-{}.json",
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        fs::write(&args_file, serde_json::to_vec(&args).unwrap()).unwrap();
        let out = self
            .module_cmd(&args_file)
            .stdin(Stdio::null())
            .output()
            .expect("module runs");
        ModuleRun::new(args, out)
    }

    /// The command that runs the module inside the namespace as Ansible does (the arguments
    /// file as argv[1]), with the test's environment: the module's choice of programs does not
    /// depend on it.
    ///
    /// The module's run lock is the namespace's own (`lock_file`): nothing can move the lock of
    /// the module, which is always /run/ufw_docker.lock, so the namespace's file is
    /// bind-mounted there in the mount namespace `ip netns exec` makes for this one command
    /// (a slave of the machine's: the mount never reaches the machine, and goes with the run).
    pub fn module_cmd(&self, args_file: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, "sh", "-c"])
            .arg(format!(r#"mount --bind "$0" {LOCK_PATH} && exec "$@""#))
            .arg(self.lock_file())
            .arg(module_bin())
            .arg(args_file);
        cmd
    }

    /// The file the module takes as its run lock in this namespace.
    pub fn lock_file(&self) -> PathBuf {
        self.path("lock")
    }

    /// Takes the namespace's run lock as another run of the module would, until the file
    /// returned is dropped.
    pub fn hold_lock(&self) -> fs::File {
        let file = fs::File::open(self.lock_file()).unwrap();
        // SAFETY: flock on a descriptor we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(rc, 0, "the namespace's lock is free");
        file
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        // `etc` goes with the other fields, after the namespace.
    }
}

/// Creates `path` as the module does its run lock (an empty root-owned file, mode 0600) unless
/// it exists.
fn make_lock_file(path: &Path) {
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot create the lock file {}: {e}", path.display()));
}

/// A finished module run: its exit status and its one JSON object.
pub struct ModuleRun {
    pub args: Value,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub json: Value,
}

impl ModuleRun {
    pub fn new(args: Value, out: Output) -> ModuleRun {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let json = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not exactly one JSON object ({e})\nargs: {args}\nstdout: {stdout}\nstderr: {stderr}"
            )
        });
        ModuleRun {
            args,
            code: out.status.code(),
            stdout,
            stderr,
            json,
        }
    }

    fn context(&self) -> String {
        format!(
            "args: {}\nexit: {:?}\nstdout: {}\nstderr: {}",
            self.args, self.code, self.stdout, self.stderr
        )
    }

    /// Asserts success and returns `changed`.
    pub fn ok(&self) -> bool {
        assert_eq!(self.code, Some(0), "module failed\n{}", self.context());
        assert!(self.json.get("failed").is_none(), "{}", self.context());
        self.json["changed"].as_bool().expect("changed is a bool")
    }

    /// Asserts a clean failure whose message contains `needle`.
    pub fn fails_with(&self, needle: &str) {
        assert_eq!(self.code, Some(1), "module should fail\n{}", self.context());
        assert_eq!(self.json["failed"], true, "{}", self.context());
        let msg = self.json["msg"].as_str().unwrap_or_default();
        assert!(
            msg.contains(needle),
            "msg lacks {needle:?}\n{}",
            self.context()
        );
    }

    pub fn warnings(&self) -> String {
        self.json["warnings"]
            .as_array()
            .map(|w| {
                w.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    }

    pub fn strings(&self, key: &str) -> Vec<String> {
        string_list(&self.json[key])
    }

    /// The rules the module reports for a family.
    pub fn rules(&self, family: &str) -> Vec<String> {
        string_list(&self.json["rules"][family])
    }
}

/// The strings of a JSON list (none if it is not a list).
fn string_list(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Runs a test once per iptables backend (named on stderr, which a failing test shows).
pub fn each_backend(test: impl Fn(Backend)) {
    for backend in Backend::ALL {
        eprintln!("iptables backend: {}", backend.name());
        test(backend);
    }
}

/// A fixture under tests/data.
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Asserts that the IPv4 and IPv6 files are still the stock fixtures, byte for byte: what a run
/// that failed, or was refused, must leave.
pub fn assert_stock_files(v4: &Path, v6: &Path) {
    assert_eq!(
        fs::read(v4).unwrap(),
        fs::read(data("after.rules")).unwrap(),
        "{} is not the stock after.rules",
        v4.display()
    );
    assert_eq!(
        fs::read(v6).unwrap(),
        fs::read(data("after6.rules")).unwrap(),
        "{} is not the stock after6.rules",
        v6.display()
    );
}
