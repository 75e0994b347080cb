//! What every test that builds hosts in network namespaces needs, in one place: running shell
//! commands, requiring root, the iptables backend and the /etc that pins it per namespace.
//!
//! Why it exists: the namespace suites (`tests/tests.rs`, through `harness.rs`) and the Docker
//! lab (`tests/bed.rs` and `examples/lab.rs`, through `lab/mod.rs`) once each had their own
//! copies of these, and chose the iptables backend in different ways. There is one way now: a
//! namespace gets its own /etc (`/etc/netns/NS`, which `ip netns exec` bind-mounts over /etc),
//! made by `etc_netns` in tests/fleet/etc-netns.sh, the same function the fleet hosts, the bench
//! host and tests/bed/dockerd.sh rely on. Its `alternatives` points `iptables`, `ip6tables` and
//! their `-save` and `-restore` at one backend. Nothing here switches the machine's alternatives
//! or puts links on PATH (the module never searches PATH anyway), so namespaces of both
//! backends live side by side, beside anything else on the machine that uses iptables.
//!
//! It must not know about the module, Docker or UFW's rules: that is `harness.rs` and
//! `lab/mod.rs`. Included with `mod support;` by each test crate root and with `#[path]` by the
//! lab example, so not every item is used everywhere.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a bash command; returns its stdout, or the failure with the command, its exit status,
/// stdout and stderr.
pub fn try_sh(cmd: &str) -> Result<String, String> {
    let out = Command::new("bash")
        .arg("-c")
        .arg(cmd)
        .output()
        .map_err(|e| format!("cannot run bash: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "command failed ({}): {cmd}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Runs a bash command, panicking with its output if it fails.
pub fn sh(cmd: &str) -> String {
    try_sh(cmd).unwrap_or_else(|e| panic!("{e}"))
}

/// `s` as one single-quoted shell word.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Whether this process may create namespaces and drive iptables; if not, why, naming `what`.
pub fn check_root(what: &str) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        Ok(())
    } else {
        Err(format!(
            "{what} creates network namespaces and drives iptables: run it as root (`make test` \
             and `make demo` do)"
        ))
    }
}

/// Fails the test loudly unless it runs as root. Tests never skip: a firewall test that
/// silently did not run proves nothing.
pub fn require_root(what: &str) {
    if let Err(e) = check_root(what) {
        panic!("{e}; it never skips");
    }
}

/// An iptables backend. A namespace's backend is pinned in its own /etc (`EtcNetns`), so that
/// UFW, the module, dockerd and every other program in it use that backend and no other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Nft,
    Legacy,
}

impl Backend {
    pub const ALL: [Backend; 2] = [Backend::Nft, Backend::Legacy];

    /// As `etc_netns`, the tools' names and the command lines take it: `nft` or `legacy`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Nft => "nft",
            Backend::Legacy => "legacy",
        }
    }

    /// The other one.
    pub fn other(self) -> Backend {
        match self {
            Backend::Nft => Backend::Legacy,
            Backend::Legacy => Backend::Nft,
        }
    }

    /// This backend's own binary for one of the tools the alternatives choose
    /// (`iptables-restore` -> `/usr/sbin/iptables-nft-restore`).
    pub fn tool(self, tool: &str) -> PathBuf {
        let (family, rest) = tool.split_once('-').map_or((tool, ""), |(f, r)| (f, r));
        let name = if rest.is_empty() {
            format!("{family}-{}", self.name())
        } else {
            format!("{family}-{}-{rest}", self.name())
        };
        Path::new("/usr/sbin").join(name)
    }
}

/// The iptables tools whose backend /etc/alternatives chooses, and so `EtcNetns` pins.
pub const PINNED_TOOLS: [&str; 6] = [
    "iptables",
    "iptables-save",
    "iptables-restore",
    "ip6tables",
    "ip6tables-save",
    "ip6tables-restore",
];

/// A namespace's own /etc, `/etc/netns/NS`, removed on drop: `ufw` (a copy of /etc/ufw with the
/// package's stock after.rules and after6.rules), `default` (a copy of /etc/default: `ufw
/// default ...` writes /etc/default/ufw, which must never be the machine's) and `alternatives`
/// (a copy of /etc/alternatives with the `PINNED_TOOLS` pointing at one backend). Made by
/// `etc_netns` in tests/fleet/etc-netns.sh, the one place that knows how.
pub struct EtcNetns {
    dir: PathBuf,
}

impl EtcNetns {
    /// (Re)makes the /etc of namespace `ns` with `backend` pinned.
    pub fn make(ns: &str, backend: Backend) -> EtcNetns {
        sh(&format!(
            "set -euo pipefail; . {}; etc_netns {} {}",
            shell_quote(
                &repo()
                    .join("tests/fleet/etc-netns.sh")
                    .display()
                    .to_string()
            ),
            shell_quote(ns),
            backend.name()
        ));
        let etc = EtcNetns {
            dir: PathBuf::from("/etc/netns").join(ns),
        };
        for tool in PINNED_TOOLS {
            assert_eq!(
                fs::read_link(etc.alternatives().join(tool)).ok(),
                Some(backend.tool(tool)),
                "etc_netns {ns} {}: /etc/netns/{ns}/alternatives/{tool}",
                backend.name()
            );
        }
        etc
    }

    /// `/etc/netns/NS`.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The namespace's /etc/ufw, as seen from outside it.
    pub fn ufw_dir(&self) -> PathBuf {
        self.dir.join("ufw")
    }

    /// The namespace's /etc/alternatives, as seen from outside it.
    pub fn alternatives(&self) -> PathBuf {
        self.dir.join("alternatives")
    }
}

impl Drop for EtcNetns {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `args` with the keys of `extra` set (replaced where present).
pub fn with(mut args: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    for (k, v) in extra.as_object().expect("extra is an object") {
        args[k] = v.clone();
    }
    args
}
