//! The one interface between the module and the machine: read a file, write one atomically,
//! keep a backup, install the running build as a command, run a command, take the run lock, ask
//! Docker's API (read-only, for names).
//!
//! Only this file touches the file system, spawns processes or opens sockets. Everything above it (parsing,
//! rendering, planning) is pure and tested without root; tests of the apply logic use a fake
//! `Host`.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// What a finished command printed, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The exit code; `None` when a signal ended the process.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The most useful line(s) for an error message: stderr, else stdout, trimmed.
    pub fn reason(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let code = self
            .code
            .map_or_else(|| "killed by a signal".to_string(), |c| format!("exit {c}"));
        format!("{} ({code})", text.trim())
    }
}

/// What is at a path itself, a symbolic link not followed (`Host::inspect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A regular file: its permission bits, owner and group.
    File {
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Dir,
    /// A symbolic link, and what it points to.
    Symlink(PathBuf),
    /// Anything else: a FIFO, a socket, a device.
    Other,
}

/// Everything the module does to the machine.
pub trait Host {
    /// The file's bytes, or `None` when it does not exist.
    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>>;
    /// Replaces the file (through a symlink, if it is one) so that a reader sees the old or the
    /// new content, never a mix; owner and mode are kept.
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()>;
    /// Removes temporary files an earlier run left beside `path` when it was killed between
    /// creating and renaming them. Called with the run lock held, so none is in use.
    fn remove_stale_temps(&self, path: &Path);
    /// Creates the directory and any missing parents, as `mkdir -p`, each mode 0755 whatever the
    /// umask.
    fn create_dir_all(&self, path: &Path) -> Result<()>;
    /// What is at `path` itself (a symbolic link is not followed); `None` when nothing is.
    fn inspect(&self, path: &Path) -> Result<Option<Entry>>;
    /// The bytes of the executable this process runs (`/proc/self/exe`): the build the action
    /// plugin checked by its SHA-256 before it ran it, whatever became of its path since.
    fn own_executable(&self) -> Result<Vec<u8>>;
    /// Creates or replaces the file at `path` itself (a symbolic link there is replaced, never
    /// followed) so that a reader sees the old or the new content, never a mix: an executable
    /// of root's, mode 0755. Its directory must exist.
    fn install_executable(&self, path: &Path, bytes: &[u8]) -> Result<()>;
    /// Removes the file; one that does not exist is not an error.
    fn remove_file(&self, path: &Path) -> Result<()>;
    /// Copies the file beside itself, named as Ansible names backups; returns the copy's path.
    fn backup(&self, path: &Path) -> Result<PathBuf>;
    /// Runs a program found in the system directories (`PROGRAM_DIRS`, never PATH) with
    /// optional stdin. One that does not finish in time is killed, and that is an error
    /// naming it; any exit status is an `Output`.
    fn run(&self, program: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<Output>;
    /// Runs the commands (program and arguments, no stdin) at the same time, each as `run` does,
    /// and returns their outcomes in the same order: reading both families' tables costs the
    /// slower of two `iptables-save` instead of their sum. The default runs them one after the
    /// other (a fake host's order stays the test's).
    fn run_all(&self, cmds: &[(&str, &[&str])]) -> Vec<Result<Output>> {
        cmds.iter()
            .map(|(program, args)| self.run(program, args, None))
            .collect()
    }
    /// Whether the kernel has IPv6 in this network namespace.
    fn has_ipv6(&self) -> bool;
    /// Serialises runs of the module on this host; released when the guard drops.
    fn lock(&self) -> Result<LockGuard>;
    /// Sends `GET path` to Docker's API on the Unix socket `socket` and returns the raw answer
    /// (read until the daemon closes, `docker_api::request` asks it to), within
    /// `DOCKER_TIMEOUT` in all. Read-only; the caller parses (`docker_api`).
    fn docker_get(&self, socket: &Path, path: &str) -> Result<Vec<u8>>;
    /// An environment variable of the run (Ansible passes the task's `environment`).
    fn env(&self, name: &str) -> Option<String>;
}

/// How long the whole exchange with Docker's API may take: names are for people, a run never
/// waits long for them.
pub const DOCKER_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the release binary keeps its run lock. No environment variable or argument changes it:
/// a lock that the caller's environment could move is one that two runs could each take. Tests
/// that need a lock of their own give the module a private /run/ufw_docker.lock with a bind
/// mount in their own mount namespace (tests/harness.rs), or build a `RealHost` with another
/// `lock_path` (the unit tests below).
pub const LOCK_PATH: &str = "/run/ufw_docker.lock";

/// The real machine.
pub struct RealHost {
    /// Where the run lock lives.
    pub lock_path: PathBuf,
    /// How long to wait for another run to finish.
    pub lock_timeout: Duration,
    /// How long a program the module runs may take before it is killed. Generous: the slowest,
    /// `ufw reload` and `iptables-restore -w 30` waiting for the xtables lock, take seconds.
    pub command_timeout: Duration,
}

impl Default for RealHost {
    fn default() -> Self {
        RealHost {
            lock_path: PathBuf::from(LOCK_PATH),
            lock_timeout: Duration::from_secs(120),
            command_timeout: Duration::from_secs(120),
        }
    }
}

/// Holds the run lock until dropped (closing the file releases its flock). A fake host hands
/// out `LockGuard::default()`, which holds nothing.
#[derive(Debug, Default)]
pub struct LockGuard {
    _file: Option<File>,
}

impl Host for RealHost {
    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        match File::open(path) {
            Ok(mut f) => {
                let mut buf = Vec::new();
                f.read_to_end(&mut buf)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                Ok(Some(buf))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow!(e).context(format!("cannot read {}", path.display()))),
        }
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        // Write through a symlink: the link stays, its target gets the new content.
        let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        replace(&target, bytes, false)
    }

    fn remove_stale_temps(&self, path: &Path) {
        let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
            return;
        };
        let prefix = format!(".{}.ufw_docker.", name.to_string_lossy());
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.starts_with(&prefix) && file.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    fn create_dir_all(&self, path: &Path) -> Result<()> {
        // The mode is set on each directory made, since a mode given to mkdir passes through
        // the umask, and the action plugin runs the module under `umask 077`.
        let missing: Vec<&Path> = path
            .ancestors()
            .take_while(|d| !d.as_os_str().is_empty() && fs::symlink_metadata(d).is_err())
            .collect();
        let made = fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(path)
            .and_then(|()| {
                missing
                    .iter()
                    .try_for_each(|d| fs::set_permissions(d, fs::Permissions::from_mode(0o755)))
            });
        made.with_context(|| format!("cannot create the directory {}", path.display()))
    }

    fn inspect(&self, path: &Path) -> Result<Option<Entry>> {
        let meta = match fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(anyhow!(e).context(format!("cannot inspect {}", path.display()))),
        };
        let kind = meta.file_type();
        Ok(Some(if kind.is_symlink() {
            Entry::Symlink(fs::read_link(path).unwrap_or_default())
        } else if kind.is_dir() {
            Entry::Dir
        } else if kind.is_file() {
            Entry::File {
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
            }
        } else {
            Entry::Other
        }))
    }

    fn own_executable(&self) -> Result<Vec<u8>> {
        fs::read("/proc/self/exe").context("cannot read /proc/self/exe")
    }

    fn install_executable(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        replace(path, bytes, true)
    }

    fn remove_file(&self, path: &Path) -> Result<()> {
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(anyhow!(e).context(format!("cannot remove {}", path.display())))
            }
            _ => Ok(()),
        }
    }

    fn backup(&self, path: &Path) -> Result<PathBuf> {
        let stamp = local_timestamp();
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{}.{stamp}~", std::process::id()));
        let dest = PathBuf::from(name);
        copy_with_owner(path, &dest, |p, uid, gid| {
            std::os::unix::fs::chown(p, Some(uid), Some(gid))
        })?;
        Ok(dest)
    }

    fn run(&self, program: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<Output> {
        start(program, args, stdin)?.finish(self.command_timeout)
    }

    fn run_all(&self, cmds: &[(&str, &[&str])]) -> Vec<Result<Output>> {
        let started: Vec<Result<Started>> = cmds
            .iter()
            .map(|(program, args)| start(program, args, None))
            .collect();
        started
            .into_iter()
            .map(|s| s.and_then(|s| s.finish(self.command_timeout)))
            .collect()
    }

    fn has_ipv6(&self) -> bool {
        Path::new("/proc/net/if_inet6").exists()
    }

    fn lock(&self) -> Result<LockGuard> {
        let file = open_lock_file(&self.lock_path)?;
        let started = Instant::now();
        loop {
            // SAFETY: flock on a descriptor we own; no memory is shared with the call.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(LockGuard { _file: Some(file) });
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(anyhow!(e).context(format!("cannot lock {}", self.lock_path.display())));
            }
            if started.elapsed() >= self.lock_timeout {
                bail!(
                    "another ufw_docker run has held {} for {}s; wait for it to finish, or \
                     find it with `fuser {}`",
                    self.lock_path.display(),
                    self.lock_timeout.as_secs(),
                    self.lock_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn docker_get(&self, socket: &Path, path: &str) -> Result<Vec<u8>> {
        let deadline = Instant::now() + DOCKER_TIMEOUT;
        let mut stream = UnixStream::connect(socket)
            .with_context(|| format!("cannot connect to {}", socket.display()))?;
        stream.set_write_timeout(Some(DOCKER_TIMEOUT))?;
        stream
            .write_all(&crate::docker_api::request(path))
            .with_context(|| format!("cannot send the request to {}", socket.display()))?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "{} did not answer within {}s",
                    socket.display(),
                    DOCKER_TIMEOUT.as_secs()
                );
            }
            stream.set_read_timeout(Some(left))?;
            match stream.read(&mut buf) {
                Ok(0) => return Ok(answer),
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    bail!(
                        "{} did not answer within {}s",
                        socket.display(),
                        DOCKER_TIMEOUT.as_secs()
                    )
                }
                Err(e) => {
                    return Err(anyhow!(e).context(format!("cannot read {}", socket.display())))
                }
            }
            if answer.len() > crate::docker_api::MAX_RESPONSE {
                bail!("{} answered more than the module reads", socket.display());
            }
        }
    }

    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// Replaces (or creates) the file `target` itself with `bytes`: a temporary file beside it,
/// written, flushed and renamed over it, so that a reader sees the old or the new content, never
/// a mix, and a rename over a symbolic link replaces the link, never what it points to. An
/// `executable` is root's (when the module runs as root, as it does on a host), mode 0755;
/// otherwise an existing file's owner and mode are kept, and a new file is mode 0640.
fn replace(target: &Path, bytes: &[u8], executable: bool) -> Result<()> {
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .ok_or_else(|| anyhow!("{} has no file name", target.display()))?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".ufw_docker.{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let old = if executable {
        None
    } else {
        fs::metadata(target).ok()
    };
    let result = (|| -> Result<()> {
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        let mode = match &old {
            Some(meta) => {
                std::os::unix::fs::fchown(&f, Some(meta.uid()), Some(meta.gid()))
                    .with_context(|| format!("cannot keep the owner of {}", target.display()))?;
                meta.mode() & 0o7777
            }
            None if executable => {
                // SAFETY: geteuid has no preconditions.
                if unsafe { libc::geteuid() } == 0 {
                    std::os::unix::fs::fchown(&f, Some(0), Some(0))
                        .with_context(|| format!("cannot give {} to root", tmp.display()))?;
                }
                0o755
            }
            None => 0o640,
        };
        f.set_permissions(fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the mode of {}", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("cannot flush {} to disk", tmp.display()))?;
        drop(f);
        fs::rename(&tmp, target)
            .with_context(|| format!("cannot move {} over {}", tmp.display(), target.display()))?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("{} was left as it was", target.display()))
}

/// Copies `path` to `dest` with its mode, then gives the copy `path`'s owner and group with
/// `chown` (a parameter, so that a test can make it fail). A backup whose owner could not be
/// kept is not a faithful copy: any failure fails the backup, and removes what was copied.
fn copy_with_owner(
    path: &Path,
    dest: &Path,
    chown: impl Fn(&Path, u32, u32) -> io::Result<()>,
) -> Result<()> {
    let result = (|| -> Result<()> {
        let meta = fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        fs::copy(path, dest)
            .with_context(|| format!("cannot back up {} to {}", path.display(), dest.display()))?;
        chown(dest, meta.uid(), meta.gid()).with_context(|| {
            format!(
                "cannot give the backup {} the owner of {} (uid {}, gid {})",
                dest.display(),
                path.display(),
                meta.uid(),
                meta.gid()
            )
        })
    })();
    if result.is_err() && fs::remove_file(dest).is_ok() {
        return result.context("the copy was removed");
    }
    result
}

/// A command started by `start`: its threads report on `events`.
struct Started {
    events: Receiver<Event>,
    group: u32,
    line: String,
    at: Instant,
}

impl Started {
    /// Waits for the child's exit and both its outputs, for at most `timeout` from its start. At
    /// the deadline the child's process group is killed and the child reaped, and the error
    /// names the command. The threads still reading are left to end with the pipes.
    fn finish(self, timeout: Duration) -> Result<Output> {
        let Started {
            events,
            group,
            line,
            at,
        } = self;
        let deadline = at + timeout;
        let (mut stdout, mut stderr, mut status) = (None, None, None);
        while stdout.is_none() || stderr.is_none() || status.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match events.recv_timeout(left) {
                Ok(Event::Stdout(b)) => stdout = Some(b),
                Ok(Event::Stderr(b)) => stderr = Some(b),
                Ok(Event::Exited(s)) => {
                    status = Some(s.with_context(|| format!("cannot wait for `{line}`"))?);
                }
                Err(RecvTimeoutError::Timeout) => {
                    kill_group(group);
                    if status.is_none() {
                        // The waiting thread reaps the child; SIGKILL makes that prompt.
                        while !matches!(events.recv(), Ok(Event::Exited(_)) | Err(_)) {}
                    }
                    bail!(
                        "`{line}` did not finish within {}s and was killed; something holds it up \
                         (another firewall tool, a stuck kernel call): find it, then rerun",
                        timeout.as_secs_f32()
                    );
                }
                Err(RecvTimeoutError::Disconnected) => bail!("lost track of `{line}`"),
            }
        }
        let status = status.expect("loop ends with a status");
        Ok(Output {
            code: status.code(),
            stdout: text(stdout.unwrap_or_default()),
            stderr: text(stderr.unwrap_or_default()),
        })
    }
}

/// Starts a program found in `PROGRAM_DIRS` with its own process group (so that a timeout kills
/// what it started too: `ufw reload` runs iptables-restore), feeding it `stdin` and reading its
/// outputs on threads of their own.
fn start(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<Started> {
    let exe = find_program(program).ok_or_else(|| {
        anyhow!(
            "{program} was not found in {} (PATH is not searched: ufw_docker runs as \
             root); install it (iptables and ufw come from the Debian packages of those \
             names)",
            PROGRAM_DIRS.join(", ")
        )
    })?;
    let line = std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let at = Instant::now();
    let mut child = Command::new(&exe)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let (tx, events) = mpsc::channel();
    if let Some(input) = stdin {
        feed(child.stdin.take().expect("stdin was piped"), input.to_vec());
    }
    drain(
        Box::new(child.stdout.take().expect("stdout was piped")),
        tx.clone(),
        Event::Stdout,
    );
    drain(
        Box::new(child.stderr.take().expect("stderr was piped")),
        tx.clone(),
        Event::Stderr,
    );
    let group = child.id();
    background(Box::new(move || {
        let _ = tx.send(Event::Exited(child.wait()));
    }));
    Ok(Started {
        events,
        group,
        line,
        at,
    })
}

/// What the threads watching a child report.
enum Event {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exited(io::Result<ExitStatus>),
}

/// Writes `input` to the child's stdin on a thread of its own, so that a child that writes
/// its output before reading all its input (`cat`, a payload larger than a pipe) never waits
/// for us while we wait for it. A child that exits early closes the pipe; its exit status
/// says why, so the write error is dropped.
fn feed(mut pipe: ChildStdin, input: Vec<u8>) {
    background(Box::new(move || {
        let _ = pipe.write_all(&input);
    }));
}

/// Reads a child's stdout or stderr to the end on a thread of its own and sends it as `wrap`
/// makes it; a read error ends the output there.
fn drain(mut pipe: Box<dyn Read + Send>, tx: Sender<Event>, wrap: fn(Vec<u8>) -> Event) {
    background(Box::new(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = tx.send(wrap(buf));
    }));
}

/// Runs `job` on a thread of its own. One function for every kind of job, so that the thread
/// machinery is compiled once: the release binary's size is counted (scripts/build.sh).
fn background(job: Box<dyn FnOnce() + Send>) {
    std::thread::spawn(job);
}

/// A child's output as text: the bytes themselves when they are UTF-8 (iptables-save's output
/// at scale is a megabyte, not copied), else a lossy copy.
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Sends SIGKILL to every process of the group `group` (a child started with
/// `process_group(0)`, whose group id is its pid).
fn kill_group(group: u32) {
    let Ok(group) = libc::pid_t::try_from(group) else {
        return;
    };
    // SAFETY: kill() only sends a signal; a group that is gone gives ESRCH, which is fine.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
}

/// Opens the run lock file, creating it (mode 0600) if it does not exist.
///
/// The module runs as root, so the last component is never followed if it is a symlink
/// (`O_NOFOLLOW`: a link planted there would have root create or lock a file of someone
/// else's choosing), a FIFO makes the open fail instead of blocking (`O_NONBLOCK`), and the
/// descriptor is not inherited by the programs the module runs (`O_CLOEXEC`: a program left
/// running would otherwise hold the lock after the run). What was opened must then be a
/// regular file owned by root (`ensure_lock_file_is_trusted`).
fn open_lock_file(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            let why = if e.raw_os_error() == Some(libc::ELOOP) {
                anyhow!("it is a symbolic link, which ufw_docker does not follow")
            } else {
                anyhow!(e)
            };
            why.context(format!(
                "cannot open the lock file {}; remove whatever is there (ufw_docker creates \
                 it)",
                path.display()
            ))
        })?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot inspect the lock file {}", path.display()))?;
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    ensure_lock_file_is_trusted(path, meta.is_file(), meta.uid(), euid)?;
    Ok(file)
}

/// The lock file must be a regular file owned by root: one that another user owns (or could
/// replace) is one they could hold forever, or hand to two runs at once. When the module does
/// not run as root (only unit tests do), a file of the running user's is accepted too.
fn ensure_lock_file_is_trusted(path: &Path, is_file: bool, owner: u32, euid: u32) -> Result<()> {
    if !is_file {
        bail!(
            "the lock file {} is not a regular file; remove it (ufw_docker creates it)",
            path.display()
        );
    }
    if owner != 0 && owner != euid {
        bail!(
            "the lock file {} is owned by uid {owner}, not root; remove it (ufw_docker \
             creates it)",
            path.display()
        );
    }
    Ok(())
}

/// Where the programs the module runs are looked for, in this order.
///
/// Never PATH: the module runs as root, and PATH comes from whoever started it (Ansible's
/// environment, a `become` that keeps a user's PATH, a cron job); a directory early in it that
/// someone else can write would have root run their `iptables-restore`. Debian and Ubuntu
/// install iptables, ip6tables, ufw and nft in these directories.
const PROGRAM_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// The first executable file named `program` in `PROGRAM_DIRS`. A name with a slash in it is
/// refused: only plain names are looked up.
fn find_program(program: &str) -> Option<PathBuf> {
    if program.is_empty() || program.contains('/') {
        return None;
    }
    PROGRAM_DIRS
        .iter()
        .map(|dir| Path::new(dir).join(program))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Local time as Ansible's backup names use it: `YYYY-MM-DD@HH:MM:SS`.
fn local_timestamp() -> String {
    // SAFETY: time() and localtime_r() only write into the struct we pass.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return format!("{now}");
        }
        format!(
            "{:04}-{:02}-{:02}@{:02}:{:02}:{:02}",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_keeps_mode_and_writes_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("after.rules");
        fs::write(&real, b"old\n").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("link.rules");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let host = RealHost::default();
        host.write_atomic(&link, b"new\n").unwrap();
        assert_eq!(fs::read(&real).unwrap(), b"new\n");
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::metadata(&real).unwrap().mode() & 0o777, 0o640);
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn inspect_tells_a_file_a_directory_and_a_link_without_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ufw_docker");
        fs::write(&file, b"x").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o700)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let host = RealHost::default();
        let meta = fs::metadata(&file).unwrap();
        assert_eq!(
            host.inspect(&file).unwrap(),
            Some(Entry::File {
                mode: 0o700,
                uid: meta.uid(),
                gid: meta.gid()
            })
        );
        assert_eq!(host.inspect(dir.path()).unwrap(), Some(Entry::Dir));
        assert_eq!(host.inspect(&link).unwrap(), Some(Entry::Symlink(file)));
        assert_eq!(host.inspect(&dir.path().join("none")).unwrap(), None);
    }

    #[test]
    fn an_executable_is_installed_atomically_0755_replacing_a_link_never_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let host = RealHost::default();
        let command = dir.path().join("ufw_docker");
        host.install_executable(&command, b"build 1").unwrap();
        assert_eq!(fs::read(&command).unwrap(), b"build 1");
        let meta = fs::metadata(&command).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o755);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            assert_eq!((meta.uid(), meta.gid()), (0, 0), "root's");
        }
        fs::set_permissions(&command, fs::Permissions::from_mode(0o700)).unwrap();
        host.install_executable(&command, b"build 2").unwrap();
        assert_eq!(fs::read(&command).unwrap(), b"build 2");
        assert_eq!(fs::metadata(&command).unwrap().mode() & 0o7777, 0o755);
        // A link put there is replaced: what it points to is never written.
        let other = dir.path().join("other-program");
        fs::write(&other, b"someone else's").unwrap();
        let link = dir.path().join("linked");
        std::os::unix::fs::symlink(&other, &link).unwrap();
        host.install_executable(&link, b"build 2").unwrap();
        assert_eq!(fs::read(&other).unwrap(), b"someone else's");
        assert!(fs::symlink_metadata(&link).unwrap().is_file());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
        // Into a directory that does not exist: an error naming it, nothing made.
        let err = host
            .install_executable(&dir.path().join("no/ufw_docker"), b"x")
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("cannot create a temporary file in"),
            "{err:#}"
        );
    }

    #[test]
    fn the_running_build_is_read_from_proc_self_exe() {
        let exe = std::env::current_exe().unwrap();
        assert_eq!(
            RealHost::default().own_executable().unwrap(),
            fs::read(exe).unwrap()
        );
    }

    #[test]
    fn backup_is_named_like_ansibles() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("after.rules");
        fs::write(&file, b"content").unwrap();
        let copy = RealHost::default().backup(&file).unwrap();
        let name = copy.file_name().unwrap().to_string_lossy().into_owned();
        let pattern = format!("after.rules.{}.", std::process::id());
        assert!(name.starts_with(&pattern) && name.ends_with('~'), "{name}");
        let stamp = &name[pattern.len()..name.len() - 1];
        assert_eq!(stamp.len(), "2026-11-28@17:40:58".len(), "{stamp}");
        assert_eq!(&stamp[10..11], "@");
        assert_eq!(fs::read(copy).unwrap(), b"content");
    }

    /// Review of issue 16: "A backup's `chown` error is ignored".
    #[test]
    fn a_backup_whose_owner_cannot_be_kept_fails_and_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("after.rules");
        fs::write(&file, b"content").unwrap();
        let copy = dir.path().join("after.rules.1.stamp~");
        let err = copy_with_owner(&file, &copy, |_, _, _| {
            Err(io::Error::from_raw_os_error(libc::EPERM))
        })
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("cannot give the backup"), "{msg}");
        assert!(msg.contains("Operation not permitted"), "{msg}");
        assert!(msg.contains("the copy was removed"), "{msg}");
        assert!(!copy.exists());
        assert_eq!(fs::read(&file).unwrap(), b"content");
        // A copy that fails leaves nothing behind either.
        let nowhere = dir.path().join("no/such/dir/after.rules.1.stamp~");
        let err = copy_with_owner(&file, &nowhere, |_, _, _| Ok(())).unwrap_err();
        assert!(format!("{err:#}").contains("cannot back up"), "{err:#}");
    }

    #[test]
    fn missing_files_read_as_none_and_missing_programs_fail_clearly() {
        let host = RealHost::default();
        assert!(host
            .read(Path::new("/nonexistent/after.rules"))
            .unwrap()
            .is_none());
        let err = host.run("no-such-program-xyz", &[], None).unwrap_err();
        assert!(
            err.to_string().contains("was not found in /usr/sbin"),
            "{err}"
        );
        assert!(err.to_string().contains("PATH is not searched"), "{err}");
    }

    #[test]
    fn programs_are_found_in_the_system_directories_only() {
        let sh = find_program("sh").expect("sh is in /usr/bin or /bin");
        assert!(
            PROGRAM_DIRS.contains(&sh.parent().unwrap().to_str().unwrap()),
            "{sh:?}"
        );
        // A path, relative or absolute, is never run as given.
        for name in ["/bin/sh", "./sh", "../bin/sh", "bin/sh", ""] {
            assert_eq!(find_program(name), None, "{name:?}");
        }
    }

    #[test]
    fn commands_get_stdin_and_report_output() {
        let out = RealHost::default()
            .run("sh", &["-c", "cat; echo oops >&2; exit 3"], Some(b"hello"))
            .unwrap();
        assert_eq!(out.stdout, "hello");
        assert_eq!(out.code, Some(3));
        assert!(!out.success());
        assert_eq!(out.reason(), "oops (exit 3)");
    }

    /// Review of issue 16: stdin was written before the output was read, so a payload larger
    /// than a pipe deadlocked against a child that writes as it reads.
    #[test]
    fn a_payload_larger_than_a_pipe_goes_through_cat() {
        let payload = vec![b'x'; 1 << 20];
        let out = RealHost::default().run("cat", &[], Some(&payload)).unwrap();
        assert!(out.success());
        assert_eq!(out.stdout.len(), payload.len());
    }

    /// Review of issue 16: a child had no timeout while the run lock was held.
    #[test]
    fn a_command_that_does_not_finish_is_killed_with_a_clear_error() {
        let host = RealHost {
            command_timeout: Duration::from_millis(300),
            ..RealHost::default()
        };
        // The second starts a child of its own, which the process group kill reaches too.
        for (program, args) in [("sleep", &["30"][..]), ("sh", &["-c", "sleep 30; true"])] {
            let err = host.run(program, args, None).unwrap_err().to_string();
            assert!(err.contains(&format!("`{program}")), "{err}");
            assert!(
                err.contains("did not finish within 0.3s and was killed"),
                "{err}"
            );
        }
    }

    #[test]
    fn run_all_runs_the_commands_at_once_and_answers_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("flag");
        // The first waits for a file only the second creates: run one after the other, the
        // first would be killed at its timeout.
        let wait = format!(
            "while [ ! -e {} ]; do sleep 0.01; done; echo first",
            flag.display()
        );
        let touch = format!("touch {}; echo second >&2; exit 3", flag.display());
        let host = RealHost {
            command_timeout: Duration::from_secs(20),
            ..RealHost::default()
        };
        let out = host.run_all(&[
            ("sh", &["-c", wait.as_str()][..]),
            ("sh", &["-c", touch.as_str()][..]),
            ("no-such-program-ufw-docker", &[][..]),
        ]);
        assert_eq!(out.len(), 3);
        let first = out[0].as_ref().unwrap();
        assert_eq!((first.code, first.stdout.as_str()), (Some(0), "first\n"));
        let second = out[1].as_ref().unwrap();
        assert_eq!((second.code, second.stderr.as_str()), (Some(3), "second\n"));
        let err = format!("{:#}", out[2].as_ref().unwrap_err());
        assert!(
            err.contains("no-such-program-ufw-docker was not found"),
            "{err}"
        );
    }

    /// A socket in `dir` that answers one connection with `answer` (after reading the
    /// request), or with nothing while holding it open for `hold`.
    fn docker_socket(
        dir: &Path,
        answer: &'static [u8],
        hold: Duration,
    ) -> (PathBuf, std::thread::JoinHandle<Vec<u8>>) {
        let path = dir.join("docker.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = vec![0u8; 4096];
            let n = conn.read(&mut request).unwrap();
            request.truncate(n);
            conn.write_all(answer).unwrap();
            std::thread::sleep(hold);
            request
        });
        (path, server)
    }

    #[test]
    fn docker_get_sends_one_request_and_reads_to_the_close() {
        let dir = tempfile::tempdir().unwrap();
        let answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n0\r\n\r\n";
        let (socket, server) = docker_socket(dir.path(), answer, Duration::ZERO);
        let got = RealHost::default()
            .docker_get(&socket, "/containers/json")
            .unwrap();
        assert_eq!(got, answer);
        let request = server.join().unwrap();
        assert_eq!(request, crate::docker_api::request("/containers/json"));
    }

    #[test]
    fn docker_get_fails_clearly_without_a_socket_or_an_answer() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.sock");
        let err = format!(
            "{:#}",
            RealHost::default()
                .docker_get(&missing, "/containers/json")
                .unwrap_err()
        );
        assert!(err.contains("cannot connect to"), "{err}");
        assert!(err.contains("No such file or directory"), "{err}");
        // A daemon that takes the request and says nothing is given up on in time.
        let (socket, server) =
            docker_socket(dir.path(), b"", DOCKER_TIMEOUT + Duration::from_secs(1));
        let started = Instant::now();
        let err = RealHost::default()
            .docker_get(&socket, "/containers/json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("did not answer within 2s"), "{err}");
        assert!(started.elapsed() < DOCKER_TIMEOUT + Duration::from_millis(500));
        server.join().unwrap();
    }

    #[test]
    fn the_lock_is_exclusive_and_times_out_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let host = RealHost {
            lock_path: dir.path().join("lock"),
            lock_timeout: Duration::from_millis(200),
            ..RealHost::default()
        };
        let guard = host.lock().unwrap();
        // flock locks belong to the open file description, so a second open conflicts.
        let err = host.lock().expect_err("second lock must wait and fail");
        assert!(err.to_string().contains("another ufw_docker run"));
        drop(guard);
        assert!(host.lock().is_ok());
    }

    #[test]
    fn the_release_lock_path_is_fixed() {
        assert_eq!(RealHost::default().lock_path, Path::new(LOCK_PATH));
        assert_eq!(LOCK_PATH, "/run/ufw_docker.lock");
    }

    #[test]
    fn the_lock_refuses_a_symlink_a_directory_and_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo reads the NUL-terminated path only.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        for (path, why) in [
            (&link, "symbolic link"),
            (&dir.path().to_path_buf(), "Is a directory"),
            (&fifo, "No such device or address"),
        ] {
            let host = RealHost {
                lock_path: path.clone(),
                lock_timeout: Duration::from_millis(100),
                ..RealHost::default()
            };
            let err = format!("{:#}", host.lock().expect_err("refused"));
            assert!(err.contains("cannot open the lock file"), "{err}");
            assert!(err.contains(why), "{err}");
        }
        assert!(!target.exists(), "nothing was created through the link");
    }

    #[test]
    fn the_lock_file_must_be_a_regular_file_of_roots() {
        let p = Path::new("/run/ufw_docker.lock");
        assert!(ensure_lock_file_is_trusted(p, true, 0, 0).is_ok());
        let err = ensure_lock_file_is_trusted(p, true, 1000, 0).unwrap_err();
        assert!(
            err.to_string().contains("owned by uid 1000, not root"),
            "{err}"
        );
        let err = ensure_lock_file_is_trusted(p, false, 0, 0).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        // Not running as root (unit tests only): the running user's own file will do.
        assert!(ensure_lock_file_is_trusted(p, true, 1000, 1000).is_ok());
        assert!(ensure_lock_file_is_trusted(p, true, 1001, 1000).is_err());
    }
}
