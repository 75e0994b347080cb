//! A `Host` in memory, for unit tests of `apply` and `module` without root: files in a map, each
//! family's filter and security tables simulated through the commands the module runs
//! (`iptables-save`, `iptables-restore --noflush`, `ufw reload`), every effect recorded in order,
//! and failures injected where a test asks for them.
//!
//! The simulation is small on purpose: those two tables only, each committed at its COMMIT as
//! iptables-restore does, and of iptables-restore's checks those a payload of the module could
//! trip (a rule in or a jump to a chain that does not exist, deleting a chain that is built in,
//! not empty or still jumped to, a transaction without COMMIT). A test that needs anything else
//! scripts the reply instead. Nothing here touches the machine.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};

use crate::after_rules::{self, Found};
use crate::host::{Entry, Host, LockGuard, Output};
use crate::live::FilterTable;
use crate::rules::{tokenize, Family, Rule};

/// UFW's files, where the module looks for them by default.
pub const AFTER_RULES: &str = "/etc/ufw/after.rules";
pub const AFTER6_RULES: &str = "/etc/ufw/after6.rules";

/// A Docker host's IPv6 tables: DOCKER-USER hooked first with Docker's bare RETURN, UFW's route
/// chain, no published port.
pub const V6_SAVE: &str = "*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A DOCKER -i docker0 -j RETURN
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-USER - [0:0]
:ufw6-before-forward - [0:0]
:ufw6-user-forward - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -j ufw6-before-forward
-A DOCKER-USER -j RETURN
-A ufw6-before-forward -j ufw6-user-forward
COMMIT
";

const BUILTIN_CHAINS: [&str; 3] = ["INPUT", "FORWARD", "OUTPUT"];
const BUILTIN_TARGETS: [&str; 8] = [
    "ACCEPT", "DROP", "RETURN", "REJECT", "LOG", "QUEUE", "NFLOG", "MARK",
];

/// What a scripted command does instead of the simulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// What the simulated machine does.
    Simulate,
    /// Exits with `code`, printing `stderr`, and changes nothing.
    Exit { code: i32, stderr: String },
    /// Exits 0, printing `stdout`, and changes nothing: a command that claims success.
    Succeed(String),
    /// The program cannot be started: `run` returns this error.
    SpawnError(String),
    /// A `ufw reload` that loads the files of `loads` (in that order), then fails.
    ReloadPartly {
        loads: Vec<Family>,
        code: i32,
        stderr: String,
    },
}

impl Reply {
    pub fn exit(code: i32, stderr: &str) -> Reply {
        Reply::Exit {
            code,
            stderr: stderr.to_string(),
        }
    }
}

/// A file operation a failure can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileOp {
    Read,
    Write,
    Backup,
}

/// One `run` call, as the module made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub program: String,
    pub args: Vec<String>,
    pub stdin: Option<String>,
}

/// Everything the fake host holds that a run can change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub files: BTreeMap<PathBuf, Vec<u8>>,
    pub entries: BTreeMap<PathBuf, Entry>,
    pub filters: BTreeMap<Family, FilterTable>,
}

/// One family's tables: the filter table (simulated) and the others (printed as they are).
#[derive(Debug, Clone)]
struct Tables {
    filter: FilterTable,
    others: String,
}

#[derive(Debug)]
struct Fault {
    op: FileOp,
    path: PathBuf,
    /// The call (1 for the first) to `op` on `path` that fails.
    nth: usize,
    error: String,
}

#[derive(Debug)]
struct State {
    files: BTreeMap<PathBuf, Vec<u8>>,
    /// What `inspect` says of a path: a file's mode and owner (a file not here is root's, 0644),
    /// or a directory, link or other entry a test put there.
    entries: BTreeMap<PathBuf, Entry>,
    /// The bytes of the build that runs (`own_executable`).
    exe: Vec<u8>,
    tables: BTreeMap<Family, Tables>,
    ipv6: bool,
    scripts: Vec<(String, Vec<String>, VecDeque<Reply>)>,
    faults: Vec<Fault>,
    op_counts: BTreeMap<(FileOp, PathBuf), usize>,
    lock_error: Option<String>,
    /// What Docker's API answers (raw HTTP), or the error reaching it gives.
    docker: std::result::Result<Vec<u8>, String>,
    /// Docker's answer to `GET /services` (a worker's 503 unless a test sets one).
    services: std::result::Result<Vec<u8>, String>,
    env: BTreeMap<String, String>,
    transcript: Vec<String>,
    calls: Vec<Call>,
}

/// What the fake Docker's API answers to `GET /containers/json` unless a test says otherwise:
/// Docker 20.10's recorded answer, where `shop-web-1` has 172.17.0.2, the address the IPv4
/// tables publish 8080 to.
/// A worker node's answer to `GET /services`.
pub const NOT_A_MANAGER: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
    Content-Length: 108\r\n\r\n{\"message\":\"This node is not a swarm manager. Worker nodes can't be used \
    to view or modify cluster state.\"}\n";

pub const CONTAINERS: &[u8] = include_bytes!("../tests/data/docker-api/containers-20.http");

/// The bytes of the build that runs, unless a test says otherwise (`set_own_executable`).
pub const BUILD: &[u8] = b"\x7fELF the ufw_docker build that runs";

/// The fake machine. Starts as a Docker host with UFW: the stock after.rules and after6.rules
/// of tests/data, the IPv4 tables of tests/data/iptables-save.docker, `V6_SAVE` for IPv6, and
/// Docker's API answering `CONTAINERS`.
#[derive(Debug)]
pub struct FakeHost {
    state: RefCell<State>,
}

impl Default for FakeHost {
    fn default() -> Self {
        FakeHost::new()
    }
}

impl FakeHost {
    pub fn new() -> FakeHost {
        let mut files = BTreeMap::new();
        files.insert(
            PathBuf::from(AFTER_RULES),
            include_bytes!("../tests/data/after.rules").to_vec(),
        );
        files.insert(
            PathBuf::from(AFTER6_RULES),
            include_bytes!("../tests/data/after6.rules").to_vec(),
        );
        let mut tables = BTreeMap::new();
        tables.insert(
            Family::V4,
            Tables::parse(include_str!("../tests/data/iptables-save.docker")),
        );
        tables.insert(Family::V6, Tables::parse(V6_SAVE));
        FakeHost {
            state: RefCell::new(State {
                files,
                entries: BTreeMap::new(),
                exe: BUILD.to_vec(),
                tables,
                ipv6: true,
                scripts: Vec::new(),
                faults: Vec::new(),
                op_counts: BTreeMap::new(),
                lock_error: None,
                docker: Ok(CONTAINERS.to_vec()),
                services: Ok(NOT_A_MANAGER.to_vec()),
                env: BTreeMap::new(),
                transcript: Vec::new(),
                calls: Vec::new(),
            }),
        }
    }

    /// A host whose kernel has no IPv6.
    pub fn without_ipv6(self) -> FakeHost {
        self.state.borrow_mut().ipv6 = false;
        self
    }

    /// A host whose `family` tables are `save` (iptables-save output) instead.
    pub fn with_tables(self, family: Family, save: &str) -> FakeHost {
        self.state
            .borrow_mut()
            .tables
            .insert(family, Tables::parse(save));
        self
    }

    /// Docker's API answers `answer` (raw HTTP) from now on, or cannot be reached (`Err`).
    pub fn docker_answers(&self, answer: std::result::Result<&[u8], &str>) {
        self.state.borrow_mut().docker = answer.map(<[u8]>::to_vec).map_err(str::to_string);
    }

    /// Docker's API answers `GET /services` with `answer` (a manager's list, say).
    pub fn services_answer(&self, answer: std::result::Result<&[u8], &str>) {
        self.state.borrow_mut().services = answer.map(<[u8]>::to_vec).map_err(str::to_string);
    }

    /// Sets an environment variable of the run.
    pub fn set_env(&self, name: &str, value: &str) {
        self.state
            .borrow_mut()
            .env
            .insert(name.to_string(), value.to_string());
    }

    /// Replaces a file (or creates it).
    pub fn set_file(&self, path: &str, bytes: &[u8]) {
        self.state
            .borrow_mut()
            .files
            .insert(PathBuf::from(path), bytes.to_vec());
    }

    /// What `inspect` says of `path` from now on: a file's mode and owner, or a directory, a
    /// link or another entry in place of a file.
    pub fn set_entry(&self, path: &str, entry: Entry) {
        self.state
            .borrow_mut()
            .entries
            .insert(PathBuf::from(path), entry);
    }

    /// The build that runs is `bytes` from now on (a new release, say).
    pub fn set_own_executable(&self, bytes: &[u8]) {
        self.state.borrow_mut().exe = bytes.to_vec();
    }

    /// The file's bytes, `None` when it does not exist.
    pub fn file(&self, path: &str) -> Option<Vec<u8>> {
        self.state.borrow().files.get(Path::new(path)).cloned()
    }

    /// The family's filter table as it is now.
    pub fn filter(&self, family: Family) -> FilterTable {
        self.state.borrow().tables[&family].filter.clone()
    }

    /// Everything a run can change, to compare before and after.
    pub fn snapshot(&self) -> Snapshot {
        let state = self.state.borrow();
        Snapshot {
            files: state.files.clone(),
            entries: state.entries.clone(),
            filters: state
                .tables
                .iter()
                .map(|(f, t)| (*f, t.filter.clone()))
                .collect(),
        }
    }

    /// The next calls of `program` with exactly `args` get `replies`, one each, in order; later
    /// calls are simulated again.
    pub fn reply(&self, program: &str, args: &[&str], replies: impl IntoIterator<Item = Reply>) {
        self.state.borrow_mut().scripts.push((
            program.to_string(),
            args.iter().map(|a| a.to_string()).collect(),
            replies.into_iter().collect(),
        ));
    }

    /// The `nth` call (1 for the first) of `op` on `path` fails with `error`, changing nothing.
    pub fn fail(&self, op: FileOp, path: &str, nth: usize, error: &str) {
        self.state.borrow_mut().faults.push(Fault {
            op,
            path: PathBuf::from(path),
            nth,
            error: error.to_string(),
        });
    }

    /// Taking the run lock fails with `error`.
    pub fn fail_lock(&self, error: &str) {
        self.state.borrow_mut().lock_error = Some(error.to_string());
    }

    /// Every effect so far, in order, one line each: a command line (with ` (exit N)` when it
    /// failed, ` (not started)` when it could not start), `write PATH`, `install PATH`, `backup
    /// PATH` (with ` (failed)` when injected to fail), `lock`, `remove stale temps PATH`. Reads
    /// are left out: they change nothing.
    pub fn transcript(&self) -> Vec<String> {
        self.state.borrow().transcript.clone()
    }

    /// Forgets the transcript and the calls so far (say, those of planning).
    pub fn clear_transcript(&self) {
        let mut state = self.state.borrow_mut();
        state.transcript.clear();
        state.calls.clear();
    }

    /// Every `run` call so far, with its stdin.
    pub fn calls(&self) -> Vec<Call> {
        self.state.borrow().calls.clone()
    }

    /// The error injected into this call of `op` on `path`, if any; counts the call.
    fn fault(&self, op: FileOp, path: &Path) -> Option<String> {
        let mut state = self.state.borrow_mut();
        let count = state.op_counts.entry((op, path.to_path_buf())).or_insert(0);
        *count += 1;
        let nth = *count;
        state
            .faults
            .iter()
            .find(|f| f.op == op && f.path == path && f.nth == nth)
            .map(|f| f.error.clone())
    }

    fn note(&self, line: String) {
        self.state.borrow_mut().transcript.push(line);
    }

    /// The scripted reply for this call, if one is left.
    fn scripted(&self, program: &str, args: &[&str]) -> Option<Reply> {
        let mut state = self.state.borrow_mut();
        state
            .scripts
            .iter_mut()
            .find(|(p, a, replies)| p == program && a == args && !replies.is_empty())
            .and_then(|(_, _, replies)| replies.pop_front())
    }

    fn simulate(&self, program: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<Output> {
        let family = match program {
            "iptables-save" | "iptables-restore" => Some(Family::V4),
            "ip6tables-save" | "ip6tables-restore" => Some(Family::V6),
            _ => None,
        };
        match (program, family) {
            (_, Some(family)) if program.ends_with("-save") => {
                let state = self.state.borrow();
                let tables = &state.tables[&family];
                match args {
                    [] => Ok(exit(
                        0,
                        &format!(
                            "{}{}{}",
                            tables.others,
                            render("filter", &tables.filter.chains),
                            render_security(&tables.filter)
                        ),
                        "",
                    )),
                    ["-t", "filter"] => Ok(exit(0, &render("filter", &tables.filter.chains), "")),
                    _ => panic!("the fake host does not simulate {program} {args:?}"),
                }
            }
            (_, Some(family)) => {
                assert!(
                    args.contains(&"--noflush"),
                    "the fake host simulates iptables-restore --noflush only, not {args:?}"
                );
                let payload = String::from_utf8_lossy(stdin.unwrap_or_default()).into_owned();
                let mut state = self.state.borrow_mut();
                let tables = state.tables.get_mut(&family).expect("family simulated");
                let mut table = tables.filter.clone();
                let loaded = load(&mut table, &payload, program);
                if !args.contains(&"--test") {
                    tables.filter = table;
                }
                match loaded {
                    Ok(()) => Ok(exit(0, "", "")),
                    Err(e) => Ok(exit(1, "", &e)),
                }
            }
            ("ufw", None) if args == ["reload"] => match self.ufw_load(&Family::ALL) {
                Ok(()) => Ok(exit(0, "Firewall reloaded\n", "")),
                Err(e) => Ok(exit(
                    1,
                    "",
                    &format!("ERROR: problem running ufw-init\n{e}"),
                )),
            },
            _ => Err(anyhow!(
                "{program} was not found in PATH or /usr/sbin, /sbin (fake host)"
            )),
        }
    }

    /// What `ufw reload` does to the module's chains: each family's after.rules is loaded with
    /// `--noflush` (its managed block, if it has one; a file without one leaves DOCKER-USER as
    /// it is), and UFW's route chain gets its rules back from user.rules.
    fn ufw_load(&self, families: &[Family]) -> Result<(), String> {
        let mut state = self.state.borrow_mut();
        for &family in families {
            let path = match family {
                Family::V4 => AFTER_RULES,
                Family::V6 => AFTER6_RULES,
            };
            let text = state
                .files
                .get(Path::new(path))
                .cloned()
                .ok_or_else(|| format!("ERROR: Couldn't find '{path}'"))?;
            let block = match after_rules::find(&text).map_err(|e| format!("{path}: {e}"))? {
                Found::Managed { span, .. } => text[span].to_vec(),
                Found::None | Found::Legacy { .. } => continue,
            };
            let tables = state.tables.get_mut(&family).expect("family simulated");
            let route = family.ufw_route_chain();
            let user_rules = tables.filter.rules(route).to_vec();
            let cmd = family.restore_cmd();
            let loaded = load(&mut tables.filter, &String::from_utf8_lossy(&block), cmd);
            tables.filter.chains.insert(route.to_string(), user_rules);
            loaded.map_err(|e| format!("{path}: {e}"))?;
        }
        Ok(())
    }
}

impl Host for FakeHost {
    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        if let Some(error) = self.fault(FileOp::Read, path) {
            return Err(anyhow!(error).context(format!("cannot read {}", path.display())));
        }
        Ok(self.state.borrow().files.get(path).cloned())
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        if let Some(error) = self.fault(FileOp::Write, path) {
            self.note(format!("write {} (failed)", path.display()));
            return Err(anyhow!(error).context(format!("{} was left as it was", path.display())));
        }
        self.note(format!("write {}", path.display()));
        self.state
            .borrow_mut()
            .files
            .insert(path.to_path_buf(), bytes.to_vec());
        Ok(())
    }

    fn remove_stale_temps(&self, path: &Path) {
        self.note(format!("remove stale temps {}", path.display()));
    }

    fn create_dir_all(&self, path: &Path) -> Result<()> {
        self.note(format!("mkdir -p {}", path.display()));
        Ok(())
    }

    fn inspect(&self, path: &Path) -> Result<Option<Entry>> {
        if let Some(error) = self.fault(FileOp::Read, path) {
            return Err(anyhow!(error).context(format!("cannot inspect {}", path.display())));
        }
        let state = self.state.borrow();
        Ok(state.entries.get(path).cloned().or_else(|| {
            state.files.contains_key(path).then_some(Entry::File {
                mode: 0o644,
                uid: 0,
                gid: 0,
            })
        }))
    }

    fn own_executable(&self) -> Result<Vec<u8>> {
        Ok(self.state.borrow().exe.clone())
    }

    fn install_executable(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        if let Some(error) = self.fault(FileOp::Write, path) {
            self.note(format!("install {} (failed)", path.display()));
            return Err(anyhow!(error).context(format!("{} was left as it was", path.display())));
        }
        self.note(format!("install {}", path.display()));
        let mut state = self.state.borrow_mut();
        state.files.insert(path.to_path_buf(), bytes.to_vec());
        let entry = Entry::File {
            mode: 0o755,
            uid: 0,
            gid: 0,
        };
        state.entries.insert(path.to_path_buf(), entry);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> Result<()> {
        if let Some(error) = self.fault(FileOp::Write, path) {
            self.note(format!("remove {} (failed)", path.display()));
            return Err(anyhow!(error).context(format!("cannot remove {}", path.display())));
        }
        self.note(format!("remove {}", path.display()));
        self.state.borrow_mut().files.remove(path);
        Ok(())
    }

    fn backup(&self, path: &Path) -> Result<PathBuf> {
        let mut name = path.as_os_str().to_owned();
        name.push(".1234.2026-01-01@00:00:00~");
        let dest = PathBuf::from(name);
        let context = || format!("cannot back up {} to {}", path.display(), dest.display());
        if let Some(error) = self.fault(FileOp::Backup, path) {
            self.note(format!("backup {} (failed)", path.display()));
            return Err(anyhow!(error).context(context()));
        }
        let Some(bytes) = self.state.borrow().files.get(path).cloned() else {
            self.note(format!("backup {} (failed)", path.display()));
            return Err(anyhow!("No such file or directory (os error 2)").context(context()));
        };
        self.note(format!("backup {}", path.display()));
        self.state.borrow_mut().files.insert(dest.clone(), bytes);
        Ok(dest)
    }

    fn run(&self, program: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<Output> {
        self.state.borrow_mut().calls.push(Call {
            program: program.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            stdin: stdin.map(|s| String::from_utf8_lossy(s).into_owned()),
        });
        let result = match self.scripted(program, args).unwrap_or(Reply::Simulate) {
            Reply::Simulate => self.simulate(program, args, stdin),
            Reply::Exit { code, stderr } => Ok(exit(code, "", &stderr)),
            Reply::Succeed(stdout) => Ok(exit(0, &stdout, "")),
            Reply::SpawnError(e) => Err(anyhow!(e)),
            Reply::ReloadPartly {
                loads,
                code,
                stderr,
            } => {
                self.ufw_load(&loads)
                    .expect("the partial reload loads what the test asked");
                Ok(exit(code, "", &stderr))
            }
        };
        let line = [program]
            .iter()
            .chain(args)
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        self.note(match &result {
            Ok(out) if out.success() => line,
            Ok(out) => format!("{line} (exit {})", out.code.unwrap_or(-1)),
            Err(_) => format!("{line} (not started)"),
        });
        result
    }

    fn has_ipv6(&self) -> bool {
        self.state.borrow().ipv6
    }

    fn lock(&self) -> Result<LockGuard> {
        self.note("lock".to_string());
        match &self.state.borrow().lock_error {
            Some(e) => Err(anyhow!(e.clone())),
            None => Ok(LockGuard::default()),
        }
    }

    fn docker_get(&self, socket: &Path, path: &str) -> Result<Vec<u8>> {
        let answer = if path == crate::docker_api::SERVICES_PATH {
            self.state.borrow().services.clone()
        } else {
            self.state.borrow().docker.clone()
        };
        let line = format!("docker GET {path} ({})", socket.display());
        self.note(match &answer {
            Ok(_) => line,
            Err(_) => format!("{line} (failed)"),
        });
        answer.map_err(|e| anyhow!(e))
    }

    fn env(&self, name: &str) -> Option<String> {
        self.state.borrow().env.get(name).cloned()
    }
}

fn exit(code: i32, stdout: &str, stderr: &str) -> Output {
    Output {
        code: Some(code),
        stdout: stdout.to_string(),
        stderr: stderr.to_string(),
    }
}

impl Tables {
    /// Splits iptables-save output into the filter and security tables and the rest, kept as
    /// text.
    fn parse(save: &str) -> Tables {
        let mut others = String::new();
        let mut in_filter = false;
        for line in save.lines() {
            if let Some(name) = line.strip_prefix('*') {
                in_filter = name == "filter" || name == "security";
            }
            if !in_filter {
                others.push_str(line);
                others.push('\n');
            }
            if line == "COMMIT" {
                in_filter = false;
            }
        }
        Tables {
            filter: FilterTable::parse(save),
            others,
        }
    }
}

/// A table as iptables-save prints it (policies are not simulated).
fn render(table: &str, chains: &BTreeMap<String, Vec<Rule>>) -> String {
    let mut out = format!("*{table}\n");
    for name in chains.keys() {
        let policy = if BUILTIN_CHAINS.contains(&name.as_str()) {
            "ACCEPT"
        } else {
            "-"
        };
        out.push_str(&format!(":{name} {policy} [0:0]\n"));
    }
    for rule in chains.values().flatten() {
        out.push_str(&rule.render());
        out.push('\n');
    }
    out.push_str("COMMIT\n");
    out
}

/// The security table, where it is loaded (as iptables-save prints only loaded tables).
fn render_security(table: &FilterTable) -> String {
    if table.security.is_empty() {
        String::new()
    } else {
        render("security", &table.security)
    }
}

/// The chain a rule jumps or goes to, if any.
fn target<'a>(args: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut args = args.into_iter();
    while let Some(token) = args.next() {
        if token == "-j" || token == "-g" {
            return args.next();
        }
    }
    None
}

/// Applies an `iptables-restore --noflush` payload to `table` (its filter and security tables)
/// in one go: the tables after the last COMMIT, or iptables-restore's complaint (nothing
/// committed: `load` says what a failure leaves of a payload of several tables).
#[cfg(test)]
fn restore(table: &FilterTable, payload: &str, cmd: &str) -> Result<FilterTable, String> {
    let mut work = table.clone();
    load(&mut work, payload, cmd).map(|()| work)
}

/// Loads an `iptables-restore --noflush` payload into `table` (its filter and security tables)
/// as iptables-restore does, nft and legacy alike: each table is committed at its COMMIT line,
/// one transaction each, and the first failure stops the load with iptables-restore's
/// complaint, the tables committed before it kept and the failing one's lines lost.
fn load(table: &mut FilterTable, payload: &str, cmd: &str) -> Result<(), String> {
    let mut work = table.clone();
    let mut open: Option<bool> = None; // Some(true): the security table
    let mut last = 0;
    for (i, raw) in payload.lines().enumerate() {
        let n = i + 1;
        last = n;
        let line = raw.trim();
        let fail = |why: &str| Err(format!("{cmd}: line {n} failed: {why}"));
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('*') {
            open = match name {
                "filter" => Some(false),
                "security" => Some(true),
                _ => return fail("the fake host simulates the filter and security tables only"),
            };
            continue;
        }
        let Some(security) = open else {
            return fail("no table opened");
        };
        if line == "COMMIT" {
            open = None;
            // A security table of empty built-in chains is one nothing uses: as if not loaded.
            if work
                .security
                .iter()
                .all(|(name, rules)| BUILTIN_CHAINS.contains(&name.as_str()) && rules.is_empty())
            {
                work.security.clear();
            }
            *table = work.clone();
            continue;
        }
        let chains = if security {
            &mut work.security
        } else {
            &mut work.chains
        };
        if security {
            for builtin in BUILTIN_CHAINS {
                chains.entry(builtin.to_string()).or_default();
            }
        }
        if let Some(decl) = line.strip_prefix(':') {
            let name = decl.split_whitespace().next().unwrap_or_default();
            // Declaring a chain creates it, or flushes it (--noflush); a built-in chain's
            // declaration only sets its policy.
            if !BUILTIN_CHAINS.contains(&name) {
                chains.insert(name.to_string(), Vec::new());
            }
            continue;
        }
        let tokens = tokenize(line);
        let (Some(op), Some(chain)) = (tokens.first(), tokens.get(1)) else {
            return fail("not a rule");
        };
        if !chains.contains_key(chain.as_str()) {
            return fail(&format!("chain '{chain}' does not exist"));
        }
        let rest = &tokens[2..];
        match op.as_str() {
            "-A" | "-I" => {
                let (at, args) = match (op.as_str(), rest.first().map(|a| a.parse::<usize>())) {
                    ("-A", _) => (chains[chain.as_str()].len(), rest),
                    (_, Some(Ok(pos))) if pos >= 1 => (pos - 1, &rest[1..]),
                    _ => (0, rest),
                };
                let missing = target(args.iter().map(String::as_str))
                    .filter(|t| !BUILTIN_TARGETS.contains(t) && !chains.contains_key(*t))
                    .map(str::to_string);
                if let Some(missing) = missing {
                    return fail(&format!("target '{missing}' does not exist"));
                }
                let rules = chains.get_mut(chain.as_str()).expect("checked");
                if at > rules.len() {
                    return fail("index of insertion too big");
                }
                let rule = Rule::of(chain, args);
                rules.insert(at, rule);
            }
            "-D" => {
                let rules = chains.get_mut(chain.as_str()).expect("checked");
                let same = |r: &Rule| r.args().eq(rest.iter().map(String::as_str));
                let Some(at) = rules.iter().position(same) else {
                    return fail("Bad rule (does a matching rule exist in that chain?)");
                };
                rules.remove(at);
            }
            "-F" => chains.get_mut(chain.as_str()).expect("checked").clear(),
            "-X" => {
                if BUILTIN_CHAINS.contains(&chain.as_str()) {
                    return fail(&format!("cannot delete built-in chain '{chain}'"));
                }
                if !chains[chain.as_str()].is_empty() {
                    return fail(&format!("chain '{chain}' is not empty"));
                }
                if chains
                    .values()
                    .flatten()
                    .any(|r| target(r.args()) == Some(chain.as_str()))
                {
                    return fail(&format!("chain '{chain}' is still referenced"));
                }
                chains.remove(chain.as_str());
            }
            _ => return fail(&format!("unknown command {op}")),
        }
    }
    if open.is_some() {
        return Err(format!("{cmd}: COMMIT expected at line {}", last + 1));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(save: &str) -> FilterTable {
        FilterTable::parse(save)
    }

    #[test]
    fn restore_replaces_declared_chains_and_keeps_the_rest() {
        let before = table(V6_SAVE);
        let after = restore(
            &before,
            "*filter\n:DOCKER-USER - [0:0]\n:log - [0:0]\n-A DOCKER-USER -j log\n-A log -j DROP\nCOMMIT\n",
            "ip6tables-restore",
        )
        .unwrap();
        assert_eq!(
            after.rules("DOCKER-USER"),
            [Rule::new("DOCKER-USER", &["-j", "log"])]
        );
        assert_eq!(after.rules("log"), [Rule::new("log", &["-j", "DROP"])]);
        assert_eq!(after.rules("FORWARD"), before.rules("FORWARD"));
        assert_eq!(after.chains.len(), before.chains.len() + 1);
    }

    #[test]
    fn restore_refuses_what_iptables_refuses_and_commits_nothing() {
        let before = table(V6_SAVE);
        for (payload, why) in [
            (
                "*filter\n-A nowhere -j DROP\nCOMMIT\n",
                "line 2 failed: chain 'nowhere' does not exist",
            ),
            (
                "*filter\n-A DOCKER-USER -j nowhere\nCOMMIT\n",
                "line 2 failed: target 'nowhere' does not exist",
            ),
            (
                "*filter\n-X DOCKER-USER\nCOMMIT\n",
                "line 2 failed: chain 'DOCKER-USER' is not empty",
            ),
            (
                "*filter\n:DOCKER-USER - [0:0]\n-X DOCKER-USER\nCOMMIT\n",
                "line 3 failed: chain 'DOCKER-USER' is still referenced",
            ),
            (
                "*filter\n-X FORWARD\nCOMMIT\n",
                "line 2 failed: cannot delete built-in chain 'FORWARD'",
            ),
            (
                "*filter\n-D FORWARD -j nowhere\nCOMMIT\n",
                "line 2 failed: Bad rule",
            ),
            (
                "*filter\n:DOCKER-USER - [0:0]\n",
                "COMMIT expected at line 3",
            ),
        ] {
            let err = restore(&before, payload, "ip6tables-restore").unwrap_err();
            assert!(err.contains(why), "{payload:?}: {err}");
        }
    }

    #[test]
    fn each_table_is_committed_at_its_commit_and_the_first_failure_stops_the_load() {
        let before = table(V6_SAVE);
        let guard = "*security\n:g - [0:0]\n-A g -j RETURN\n-I FORWARD 1 -j g\nCOMMIT\n";
        let filter = "*filter\n:DOCKER-USER - [0:0]\n-A DOCKER-USER -j DROP\nCOMMIT\n";
        let broken = |section: &str| section.replace("COMMIT", "-A FORWARD -j nowhere\nCOMMIT");
        let mut work = before.clone();
        let err = load(
            &mut work,
            &(guard.to_string() + &broken(filter)),
            "ip6tables-restore",
        );
        assert!(err.unwrap_err().contains("line 9 failed"));
        assert_eq!(
            work.chains, before.chains,
            "the failing filter table as it was"
        );
        assert_eq!(
            work.security_rules("g"),
            [Rule::new("g", &["-j", "RETURN"])]
        );
        let mut work = before.clone();
        let err = load(&mut work, &(broken(guard) + filter), "ip6tables-restore");
        assert!(err.unwrap_err().contains("line 5 failed"));
        assert_eq!(work, before, "nothing after the failure is loaded");
    }

    #[test]
    fn insert_and_delete_work_by_position_and_by_rule() {
        let before = table(V6_SAVE);
        let after = restore(
            &before,
            "*filter\n-D FORWARD -j DOCKER-USER\n-I FORWARD 2 -j DOCKER-USER\nCOMMIT\n",
            "ip6tables-restore",
        )
        .unwrap();
        let forward: Vec<String> = after.rules("FORWARD").iter().map(Rule::render).collect();
        assert_eq!(
            forward,
            [
                "-A FORWARD -o docker0 -j DOCKER",
                "-A FORWARD -j DOCKER-USER",
                "-A FORWARD -j ufw6-before-forward"
            ]
        );
    }

    #[test]
    fn saves_print_what_restores_loaded_and_scripts_and_faults_apply_once() {
        let host = FakeHost::new();
        let payload = "*filter\n:DOCKER-USER - [0:0]\n-A DOCKER-USER -j DROP\nCOMMIT\n";
        let args = ["-w", "30", "--noflush"];
        host.reply("ip6tables-restore", &args, [Reply::exit(4, "locked")]);
        let first = host
            .run("ip6tables-restore", &args, Some(payload.as_bytes()))
            .unwrap();
        assert_eq!(first.reason(), "locked (exit 4)");
        assert!(host
            .run("ip6tables-restore", &args, Some(payload.as_bytes()))
            .unwrap()
            .success());
        let saved = host
            .run("ip6tables-save", &["-t", "filter"], None)
            .unwrap()
            .stdout;
        assert_eq!(
            FilterTable::parse(&saved).rules("DOCKER-USER"),
            [Rule::new("DOCKER-USER", &["-j", "DROP"])]
        );
        let all = host.run("ip6tables-save", &[], None).unwrap().stdout;
        assert!(
            all.starts_with("*nat\n") && all.contains("-A DOCKER -i docker0 -j RETURN"),
            "{all}"
        );
        host.fail(
            FileOp::Write,
            AFTER_RULES,
            2,
            "Read-only file system (os error 30)",
        );
        host.write_atomic(Path::new(AFTER_RULES), b"one").unwrap();
        let err = host
            .write_atomic(Path::new(AFTER_RULES), b"two")
            .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "/etc/ufw/after.rules was left as it was: Read-only file system (os error 30)"
        );
        assert_eq!(host.file(AFTER_RULES).unwrap(), b"one");
        assert!(host.run("nft", &["list", "tables"], None).is_err());
        assert_eq!(
            host.transcript(),
            [
                "ip6tables-restore -w 30 --noflush (exit 4)",
                "ip6tables-restore -w 30 --noflush",
                "ip6tables-save -t filter",
                "ip6tables-save",
                "write /etc/ufw/after.rules",
                "write /etc/ufw/after.rules (failed)",
                "nft list tables (not started)",
            ]
        );
    }
}
