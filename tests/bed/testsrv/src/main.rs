//! testsrv: a tiny std-only TCP/UDP "name" server and prober for the
//! ufw-docker end-to-end test bed (tests/bed/).
//!
//! Why it exists: the bed needs one static binary that can run both inside a
//! minimal busybox container (as the published service) and in a client
//! network namespace on the host (as the prober), and that tells *which*
//! container answered. Busybox's nc/wget cannot do reliable UDP probes with a
//! verdict and exit code, so this does both sides.
//!
//! serve: `testsrv serve [--tcp PORT]... [--udp PORT]... [--name NAME]`
//!   Listens on [::] (dual stack) and additionally on 0.0.0.0 if [::] is
//!   v6-only or IPv6 is unavailable. Each TCP connection gets `NAME\n` and is
//!   closed; each UDP datagram is answered with `NAME\n` to its sender.
//!   Runs until SIGTERM/SIGINT (handled, so it also stops as a container's
//!   PID 1); errors are logged to stderr and never panic.
//!
//! probe: `testsrv probe tcp|udp ADDR PORT [--timeout-ms N] [--expect NAME]`
//!   Prints `open <reply>` (exit 0) when a reply line arrives within the
//!   timeout (default 1500 ms), else `closed` (exit 1). A TCP connection that
//!   is accepted but closed without a reply (e.g. docker-proxy with no
//!   reachable backend) counts as closed. With --expect, a reply other than
//!   NAME prints `open <reply>` and exits 3. Usage errors exit 2.
//!   The reason for `closed` is printed on stderr.
//!
//! watch: `testsrv watch tcp|udp ADDR PORT[,PORT]... [--every-ms N] [--timeout-ms N]
//!         [--max-inflight N]`
//!   For the soak (tests/soak.rs): starts one probe every N ms (default 25),
//!   cycling through the ports, each on its own thread so that a dropped probe
//!   waiting for its timeout (default 500 ms) never delays the next one (a UDP
//!   probe is one datagram, never resent: probes are frequent, and a resend
//!   would hide a moment when the datagram was dropped), until
//!   standard input reaches end of file; then waits for the probes in flight
//!   and exits 0. One line per probe, in the order they finish:
//!   `START_US END_US PORT open NAME`, `... PORT connected REASON` (a TCP
//!   handshake completed, but no reply line came) or `... PORT closed REASON`,
//!   times in microseconds since the Unix epoch (the system clock, which the
//!   caller reads too). A tick that finds --max-inflight (default 64) probes
//!   still running starts none; the last line is `# sent N skipped M`.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::exit;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Like eprintln!/println!, but a closed or broken stderr/stdout is ignored
/// instead of panicking (the server must never die because of logging).
macro_rules! elog {
    ($($t:tt)*) => {{ let _ = writeln!(std::io::stderr(), $($t)*); }};
}
macro_rules! out {
    ($($t:tt)*) => {{ let _ = writeln!(std::io::stdout(), $($t)*); }};
}

const USAGE: &str = "usage:
  testsrv serve [--tcp PORT]... [--udp PORT]... [--name NAME]
  testsrv probe tcp|udp ADDR PORT [--timeout-ms N] [--expect NAME]
  testsrv watch tcp|udp ADDR PORT[,PORT]... [--every-ms N] [--timeout-ms N] [--max-inflight N]
exit codes (probe): 0 open, 1 closed, 2 usage error, 3 open but unexpected reply";

fn usage_exit(msg: &str) -> ! {
    elog!("testsrv: {msg}\n{USAGE}");
    exit(2)
}

fn parse_port(s: Option<String>) -> u16 {
    match s.as_deref().map(str::parse::<u16>) {
        Some(Ok(p)) => p,
        _ => usage_exit(&format!("bad port {s:?}")),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("serve") => serve(args.collect()),
        Some("probe") => probe(args.collect()),
        Some("watch") => watch(args.collect()),
        Some("-h") | Some("--help") | Some("help") => {
            out!("{USAGE}");
        }
        _ => usage_exit("expected `serve` or `probe`"),
    }
}

// ---------------------------------------------------------------- serve ---

fn default_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "testsrv".to_string())
}

/// Addresses to bind for one port: [::] first (dual stack when
/// net.ipv6.bindv6only=0), then 0.0.0.0, which fails with EADDRINUSE when
/// [::] already covers IPv4; that failure is expected and silent.
fn bind_addrs(port: u16) -> [SocketAddr; 2] {
    [
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
    ]
}

// As PID 1 of a container, a process without a handler for SIGTERM/SIGINT
// does not get them at all (the kernel drops them), so `docker stop` and a
// dockerd shutdown/restart would wait their 10 s and then SIGKILL. A tiny
// handler that exits makes them immediate. std has no signal API, and the
// crate takes no dependencies, so declare the two libc functions directly.
mod sig {
    use std::os::raw::c_int;
    extern "C" {
        fn signal(signum: c_int, handler: extern "C" fn(c_int)) -> usize;
        fn _exit(status: c_int) -> !;
    }
    extern "C" fn exit_now(_: c_int) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { _exit(0) }
    }
    pub fn exit_on_term() {
        const SIGINT: c_int = 2;
        const SIGTERM: c_int = 15;
        // SAFETY: installs a handler that only calls an async-signal-safe
        // function; the return value (previous handler) is not needed.
        unsafe {
            signal(SIGTERM, exit_now);
            signal(SIGINT, exit_now);
        }
    }
}

fn serve(args: Vec<String>) {
    let mut tcp = Vec::new();
    let mut udp = Vec::new();
    let mut name = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--tcp" => tcp.push(parse_port(it.next())),
            "--udp" => udp.push(parse_port(it.next())),
            "--name" => name = Some(it.next().unwrap_or_else(|| usage_exit("--name needs a value"))),
            _ => usage_exit(&format!("unknown serve argument {a:?}")),
        }
    }
    if tcp.is_empty() && udp.is_empty() {
        usage_exit("serve needs at least one --tcp or --udp");
    }
    sig::exit_on_term();
    let name = name.unwrap_or_else(default_name);
    let reply: &'static [u8] = Box::leak(format!("{name}\n").into_bytes().into_boxed_slice());

    let mut threads = Vec::new();
    for &port in &tcp {
        let mut bound = 0;
        for addr in bind_addrs(port) {
            match TcpListener::bind(addr) {
                Ok(l) => {
                    elog!("testsrv: {name}: listening tcp {addr}");
                    bound += 1;
                    threads.push(spawn_or_exit(move || tcp_loop(l, reply)));
                }
                Err(e) if bound > 0 && e.kind() == ErrorKind::AddrInUse => {}
                Err(e) => elog!("testsrv: {name}: bind tcp {addr}: {e}"),
            }
        }
        if bound == 0 {
            elog!("testsrv: {name}: could not listen on tcp port {port}");
            exit(1);
        }
    }
    for &port in &udp {
        let mut bound = 0;
        for addr in bind_addrs(port) {
            match UdpSocket::bind(addr) {
                Ok(s) => {
                    elog!("testsrv: {name}: listening udp {addr}");
                    bound += 1;
                    threads.push(spawn_or_exit(move || udp_loop(s, reply)));
                }
                Err(e) if bound > 0 && e.kind() == ErrorKind::AddrInUse => {}
                Err(e) => elog!("testsrv: {name}: bind udp {addr}: {e}"),
            }
        }
        if bound == 0 {
            elog!("testsrv: {name}: could not listen on udp port {port}");
            exit(1);
        }
    }
    for t in threads {
        let _ = t.join();
    }
    // All loops run forever; getting here means every thread died.
    elog!("testsrv: {name}: all listeners ended");
    exit(1);
}

fn spawn_or_exit(f: impl FnOnce() + Send + 'static) -> thread::JoinHandle<()> {
    thread::Builder::new().spawn(f).unwrap_or_else(|e| {
        elog!("testsrv: cannot start thread: {e}");
        exit(1)
    })
}

fn tcp_loop(l: TcpListener, reply: &'static [u8]) {
    loop {
        match l.accept() {
            Ok((mut s, _peer)) => {
                // One short-lived thread per connection so a stuck peer
                // cannot block the others.
                let r = thread::Builder::new().spawn(move || {
                    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
                    let _ = s.write_all(reply);
                    let _ = s.flush();
                    let _ = s.shutdown(std::net::Shutdown::Write);
                    // Drain briefly so the close is a FIN, not a RST caused
                    // by unread data.
                    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                    let mut buf = [0u8; 512];
                    let _ = s.read(&mut buf);
                });
                if let Err(e) = r {
                    elog!("testsrv: spawn: {e}");
                }
            }
            Err(e) => {
                elog!("testsrv: accept: {e}");
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn udp_loop(s: UdpSocket, reply: &'static [u8]) {
    let mut buf = [0u8; 2048];
    loop {
        match s.recv_from(&mut buf) {
            Ok((_n, peer)) => {
                if let Err(e) = s.send_to(reply, peer) {
                    elog!("testsrv: udp send_to {peer}: {e}");
                }
            }
            Err(e) => {
                elog!("testsrv: udp recv: {e}");
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

// ---------------------------------------------------------------- probe ---

fn probe(args: Vec<String>) {
    let mut pos = Vec::new();
    let mut timeout_ms: u64 = 1500;
    let mut expect: Option<String> = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--timeout-ms" => {
                timeout_ms = match it.next().as_deref().map(str::parse::<u64>) {
                    Some(Ok(n)) if n > 0 => n,
                    _ => usage_exit("bad --timeout-ms"),
                }
            }
            "--expect" => expect = Some(it.next().unwrap_or_else(|| usage_exit("--expect needs a value"))),
            _ => pos.push(a),
        }
    }
    if pos.len() != 3 {
        usage_exit("probe needs: tcp|udp ADDR PORT");
    }
    let addr_s = pos[1].trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = addr_s.parse().unwrap_or_else(|_| usage_exit(&format!("bad address {:?}", pos[1])));
    let port = parse_port(Some(pos[2].clone()));
    let target = SocketAddr::new(ip, port);
    let timeout = Duration::from_millis(timeout_ms);

    let result = match pos[0].as_str() {
        "tcp" => probe_tcp(target, timeout).map_err(|e| e.why),
        "udp" => probe_udp(target, timeout, 4),
        p => usage_exit(&format!("bad protocol {p:?}")),
    };
    match result {
        Ok(reply) => {
            out!("open {reply}");
            if let Some(want) = expect {
                if want != reply {
                    elog!("testsrv: {} {target}: expected {want:?}, got {reply:?}", pos[0]);
                    exit(3);
                }
            }
        }
        Err(why) => {
            out!("closed");
            elog!("testsrv: {} {target}: {why}", pos[0]);
            exit(1);
        }
    }
}

fn reply_line(buf: &[u8]) -> String {
    let s = String::from_utf8_lossy(buf);
    s.lines().next().unwrap_or("").trim().to_string()
}

/// Why a TCP probe found no reply, and whether its handshake completed (the
/// packet got through, but nothing answered).
struct TcpFailure {
    connected: bool,
    why: String,
}

fn probe_tcp(target: SocketAddr, timeout: Duration) -> Result<String, TcpFailure> {
    let deadline = Instant::now() + timeout;
    let mut s = TcpStream::connect_timeout(&target, timeout).map_err(|e| TcpFailure {
        connected: false,
        why: format!("connect: {e}"),
    })?;
    let silent = |why: String| TcpFailure { connected: true, why };
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(silent("connected, but no reply before timeout".into()));
        }
        let _ = s.set_read_timeout(Some(left));
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.contains(&b'\n') || buf.len() > 4096 {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) if !buf.is_empty() => break,
            Err(e) => return Err(silent(format!("connected, but read failed: {e}"))),
        }
    }
    if buf.is_empty() {
        return Err(silent("connected, but closed without a reply".into()));
    }
    Ok(reply_line(&buf))
}

/// Sends a datagram `attempts` times, spread over the timeout, until one is answered.
fn probe_udp(target: SocketAddr, timeout: Duration, attempts: u32) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    let local = match target {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    };
    let s = UdpSocket::bind(local).map_err(|e| format!("bind: {e}"))?;
    // connect() filters replies to the target and surfaces ICMP errors.
    s.connect(target).map_err(|e| format!("connect: {e}"))?;
    // `probe` resends a few times within the timeout: the first datagram can
    // be lost while conntrack/NAT state or ARP/ND is being set up.
    let slot = (timeout / attempts).max(Duration::from_millis(50));
    let mut last_err = String::from("no reply before timeout");
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        if let Err(e) = s.send(b"probe\n") {
            last_err = format!("send: {e}");
        }
        let slot_end = (Instant::now() + slot).min(deadline);
        loop {
            let left = slot_end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let _ = s.set_read_timeout(Some(left));
            match s.recv(&mut buf) {
                Ok(n) => return Ok(reply_line(&buf[..n])),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
                Err(e) => {
                    // e.g. ECONNREFUSED from an ICMP port unreachable: note it,
                    // wait out this slot and retry.
                    last_err = format!("recv: {e}");
                    thread::sleep(slot_end.saturating_duration_since(Instant::now()).min(Duration::from_millis(100)));
                }
            }
        }
    }
    Err(last_err)
}

// ---------------------------------------------------------------- watch ---

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

/// One probe's line: `START_US END_US PORT open NAME|connected WHY|closed WHY`.
fn watch_one(proto: &str, ip: IpAddr, port: u16, timeout: Duration) -> String {
    let target = SocketAddr::new(ip, port);
    let start = now_us();
    let verdict = match proto {
        "tcp" => match probe_tcp(target, timeout) {
            Ok(reply) => format!("open {reply}"),
            Err(TcpFailure { connected: true, why }) => format!("connected {why}"),
            Err(TcpFailure { why, .. }) => format!("closed {why}"),
        },
        // One datagram: a probe answered by a resend would hide a firewall that
        // dropped the first one for a moment.
        _ => match probe_udp(target, timeout, 1) {
            Ok(reply) => format!("open {reply}"),
            Err(why) => format!("closed {why}"),
        },
    };
    format!("{start} {} {port} {verdict}", now_us())
}

fn watch(args: Vec<String>) {
    let mut pos = Vec::new();
    let mut every_ms: u64 = 25;
    let mut timeout_ms: u64 = 500;
    let mut max_inflight: usize = 64;
    let mut it = args.into_iter();
    let number = |it: &mut std::vec::IntoIter<String>, what: &str| -> u64 {
        match it.next().as_deref().map(str::parse::<u64>) {
            Some(Ok(n)) if n > 0 => n,
            _ => usage_exit(&format!("bad {what}")),
        }
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--every-ms" => every_ms = number(&mut it, "--every-ms"),
            "--timeout-ms" => timeout_ms = number(&mut it, "--timeout-ms"),
            "--max-inflight" => max_inflight = number(&mut it, "--max-inflight") as usize,
            _ => pos.push(a),
        }
    }
    if pos.len() != 3 || !matches!(pos[0].as_str(), "tcp" | "udp") {
        usage_exit("watch needs: tcp|udp ADDR PORT[,PORT]...");
    }
    let proto: &'static str = if pos[0] == "tcp" { "tcp" } else { "udp" };
    let addr_s = pos[1].trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = addr_s.parse().unwrap_or_else(|_| usage_exit(&format!("bad address {:?}", pos[1])));
    let ports: Vec<u16> = pos[2].split(',').map(|p| parse_port(Some(p.to_string()))).collect();
    let timeout = Duration::from_millis(timeout_ms);
    let every = Duration::from_millis(every_ms);

    // End of file on standard input is the signal to stop.
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        spawn_or_exit(move || {
            let mut sink = [0u8; 64];
            let mut stdin = std::io::stdin();
            while !matches!(stdin.read(&mut sink), Ok(0) | Err(_)) {}
            stop.store(true, Ordering::SeqCst);
        });
    }
    let inflight = Arc::new(AtomicUsize::new(0));
    let (mut sent, mut skipped) = (0u64, 0u64);
    let begin = Instant::now();
    let mut tick: u32 = 0;
    while !stop.load(Ordering::SeqCst) {
        if inflight.load(Ordering::SeqCst) >= max_inflight {
            skipped += 1;
        } else {
            let port = ports[(sent as usize) % ports.len()];
            let mine = Arc::clone(&inflight);
            inflight.fetch_add(1, Ordering::SeqCst);
            let started = thread::Builder::new().spawn(move || {
                let line = watch_one(proto, ip, port, timeout);
                out!("{line}");
                mine.fetch_sub(1, Ordering::SeqCst);
            });
            match started {
                Ok(_) => sent += 1,
                Err(e) => {
                    inflight.fetch_sub(1, Ordering::SeqCst);
                    skipped += 1;
                    elog!("testsrv: watch: cannot start a probe thread: {e}");
                }
            }
        }
        // The next tick on the schedule; ticks already past are skipped, not bunched.
        tick += 1;
        let now = begin.elapsed();
        let mut next = every * tick;
        while next <= now {
            tick += 1;
            skipped += 1;
            next = every * tick;
        }
        thread::sleep(next - now);
    }
    // The probes in flight end within their timeout (a UDP one may take a slot longer).
    let deadline = Instant::now() + timeout * 2 + Duration::from_secs(1);
    while inflight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    out!("# sent {sent} skipped {skipped}");
}
