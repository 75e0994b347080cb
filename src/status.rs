//! What the command-line verbs print: the exposure table of `status`, the sync verdict, and the
//! line diff of `check --diff`, all read from the module's own result JSON (check mode).
//!
//! Pure: JSON in, text out. Nothing here reads the host or decides a rule; the module planned
//! everything before this file sees it. The table fits 80 columns; colour is the caller's
//! choice (a terminal, and NO_COLOR unset).

use serde_json::Value;

use crate::after_rules;
use crate::rules;

/// The width the table is laid out for.
pub const WIDTH: usize = 80;

/// Whether the host matches the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sync {
    /// A run of the module would change nothing.
    InSync,
    /// A run would change these files and live chains.
    Drifted(Vec<String>),
    /// No managed block in the files and none of the module's rules live.
    NotInstalled,
}

/// One row of the table: a published port of one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub proto: String,
    pub host: String,
    pub container: String,
    pub network: String,
    /// Who on the internet reaches it now: `open`, `restricted`, `blocked`, `unknown`.
    pub now: String,
    /// The same after a run of the module.
    pub after: String,
    /// For `restricted`: the sources, when they are known to be the live ones (in sync).
    pub sources: Vec<String>,
}

/// Everything `status` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// Where the policy came from, in words.
    pub policy: String,
    pub sync: Sync,
    pub rows: Vec<Row>,
    /// Trusted networks, which reach every published port.
    pub trusted: Vec<String>,
    /// DNAT rules that are not Docker's.
    pub unrecognised: usize,
    pub warnings: Vec<String>,
}

/// The sync verdict of a check-mode result (run with `_ansible_diff`).
pub fn sync_of(result: &Value) -> Sync {
    if result["changed"] != true {
        return Sync::InSync;
    }
    let diff = result["diff"].as_array().cloned().unwrap_or_default();
    let installed = diff.iter().any(|d| {
        let before = d["before"].as_str().unwrap_or("");
        before.contains(after_rules::BEGIN) || before.contains(rules::LOG_CHAIN)
    });
    if !installed {
        return Sync::NotInstalled;
    }
    let msg = result["msg"].as_str().unwrap_or("");
    let what = msg.strip_prefix("would change: ").unwrap_or(msg);
    Sync::Drifted(what.split(", ").map(String::from).collect())
}

/// The view of a check-mode result.
pub fn view(result: &Value, policy: String) -> View {
    let sync = sync_of(result);
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut trusted = Vec::new();
    let rows = result["published"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or("").to_string();
            for t in strs(&p["trusted"]) {
                if !trusted.contains(&t) {
                    trusted.push(t);
                }
            }
            let v6 = s("family") == "ipv6";
            let address = match p["host_address"].as_str() {
                Some(a) => a.to_string(),
                None if v6 => "::".into(),
                None => "0.0.0.0".into(),
            };
            let host = if v6 {
                format!("[{address}]:{}", s("host_port"))
            } else {
                format!("{address}:{}", s("host_port"))
            };
            let ingress = p["mode"] == "ingress";
            let container = match (p["container"].as_str(), p["swarm_service"].as_str()) {
                (Some(name), _) => name.to_string(),
                (None, Some(service)) if ingress => format!("{service} (ingress)"),
                (None, _) if ingress => "swarm ingress".into(),
                (None, _) if v6 => {
                    format!("[{}]:{}", s("container_address"), s("container_port"))
                }
                (None, _) => format!("{}:{}", s("container_address"), s("container_port")),
            };
            Row {
                proto: s("proto"),
                host,
                container,
                network: p["bridge"].as_str().unwrap_or("-").to_string(),
                now: s("now"),
                after: s("after"),
                sources: if sync == Sync::InSync {
                    strs(&p["sources"])
                } else {
                    Vec::new()
                },
            }
        })
        .collect();
    View {
        policy,
        sync,
        rows,
        trusted,
        unrecognised: result["unrecognised_dnat"].as_array().map_or(0, Vec::len),
        warnings: strs(&result["warnings"]),
    }
}

/// The published ports whose reach a run changes, one a line: `tcp 0.0.0.0:8080 web-1:
/// open -> blocked`; `done`: the run happened (else: "after a run").
pub fn reach_changes(result: &Value, done: bool) -> Vec<String> {
    view(result, String::new())
        .rows
        .iter()
        .filter(|r| r.now != r.after)
        .map(|r| {
            let when = if done { "" } else { " after a run" };
            format!(
                "{} {} {} ({}): {} -> {}{when}",
                r.proto, r.host, r.container, r.network, r.now, r.after
            )
        })
        .collect()
}

/// One line saying whether the host matches the policy.
pub fn sync_line(sync: &Sync) -> String {
    match sync {
        Sync::InSync => "in sync: a run of the module would change nothing".into(),
        Sync::Drifted(what) => format!("drifted: a run would change {}", what.join(", ")),
        Sync::NotInstalled => {
            "not installed: ufw_docker has no block in after.rules and no rules live".into()
        }
    }
}

/// Breaks `text` at spaces into lines of at most `WIDTH` columns, the later ones indented.
fn wrap(text: &str, indent: usize) -> String {
    let mut out = String::new();
    let mut len = 0;
    for word in text.split(' ') {
        let w = word.chars().count();
        if len > indent && len + 1 + w > WIDTH {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            len = indent;
        } else if !out.is_empty() {
            out.push(' ');
            len += 1;
        }
        out.push_str(word);
        len += w;
    }
    out
}

fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn reach_color(reach: &str) -> &'static str {
    match reach {
        "open" => "31",
        "restricted" => "33",
        "blocked" => "32",
        _ => "35",
    }
}

/// Cuts `text` to `width` characters, marking the cut with `~`.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('~');
    out
}

/// The `status` text: the policy, the sync verdict, the table, notes and warnings.
pub fn render(view: &View, color: bool) -> String {
    let mut out = String::new();
    out.push_str(&format!("policy: {}\n", view.policy));
    let sync_color = match view.sync {
        Sync::InSync => "32",
        Sync::Drifted(_) => "33",
        Sync::NotInstalled => "31",
    };
    let line = wrap(&format!("host:   {}", sync_line(&view.sync)), 8);
    let (word, rest) = line["host:   ".len()..].split_once(':').unwrap_or(("", ""));
    out.push_str(&format!(
        "host:   {}:{rest}\n",
        paint(word, sync_color, color)
    ));
    if view.sync != Sync::InSync {
        out.push_str(
            "        (`ufw_docker check --diff` shows them, `ufw_docker apply` makes them)\n",
        );
    }
    out.push('\n');
    if view.rows.is_empty() {
        out.push_str("Docker publishes no port on this host.\n");
    } else {
        out.push_str(&table(&view.rows, color));
    }
    if !view.trusted.is_empty() {
        out.push_str(&format!(
            "\ntrusted networks reach every published port: {}\n",
            view.trusted.join(", ")
        ));
    }
    if view.unrecognised > 0 {
        let note = format!(
            "{} DNAT rule(s) not Docker's are not in the table (`status --json`: \
             unrecognised_dnat)",
            view.unrecognised
        );
        out.push_str(&format!("\n{}\n", wrap(&note, 0)));
    }
    for w in &view.warnings {
        out.push_str(&format!("\n{}\n", wrap(&format!("warning: {w}"), 9)));
    }
    out
}

fn table(rows: &[Row], color: bool) -> String {
    const HEAD: [&str; 5] = ["PROTO", "HOST", "CONTAINER", "NETWORK", "INTERNET NOW"];
    const CAP: [usize; 4] = [5, 22, 22, 12];
    let cells = |r: &Row| {
        [
            r.proto.clone(),
            r.host.clone(),
            r.container.clone(),
            r.network.clone(),
        ]
    };
    let mut widths = [0usize; 4];
    for i in 0..4 {
        let longest = rows
            .iter()
            .map(|r| cells(r)[i].chars().count())
            .chain([HEAD[i].len()])
            .max()
            .unwrap_or(0);
        widths[i] = longest.min(CAP[i]);
    }
    let last = WIDTH - widths.iter().map(|w| w + 2).sum::<usize>();
    let mut out = String::new();
    let mut line = String::new();
    for i in 0..4 {
        line.push_str(&format!("{:<w$}  ", HEAD[i], w = widths[i]));
    }
    line.push_str(HEAD[4]);
    out.push_str(&line);
    out.push('\n');
    for r in rows {
        let mut line = String::new();
        let c = cells(r);
        for i in 0..4 {
            line.push_str(&format!("{:<w$}  ", fit(&c[i], widths[i]), w = widths[i]));
        }
        let mut reach = r.now.clone();
        let mut below = Vec::new();
        if r.now == "restricted" && !r.sources.is_empty() {
            (reach, below) = restricted(&r.sources, last);
        }
        if r.after != r.now {
            reach = format!("{reach} -> {} after a run", r.after);
        }
        let reach = fit(&reach, last);
        let word_len = r.now.len().min(reach.len());
        line.push_str(&paint(&reach[..word_len], reach_color(&r.now), color));
        line.push_str(&reach[word_len..]);
        out.push_str(&line);
        out.push('\n');
        for source in below {
            let indent = WIDTH - last;
            out.push_str(&format!("{:indent$}  {}\n", "", fit(&source, last - 2)));
        }
    }
    out
}

/// `restricted (a, b)` when it fits in `width`; else `restricted (N sources):` and the
/// sources, one a line, to print below.
fn restricted(sources: &[String], width: usize) -> (String, Vec<String>) {
    let inline = format!("restricted ({})", sources.join(", "));
    if inline.chars().count() <= width {
        return (inline, Vec::new());
    }
    (
        format!("restricted ({} sources):", sources.len()),
        sources.to_vec(),
    )
}

/// A unified diff of two texts, line by line, with three lines of context; empty when they are
/// equal. Long texts whose line table would be large are shown as all removed, all added.
pub fn unified_diff(before: &str, after: &str) -> String {
    let a: Vec<&str> = before.lines().collect();
    let b: Vec<&str> = after.lines().collect();
    if a == b {
        return String::new();
    }
    // ops: (' ' | '-' | '+', line)
    let mut ops: Vec<(char, &str)> = Vec::new();
    if a.len().saturating_mul(b.len()) > 4_000_000 {
        ops.extend(a.iter().map(|l| ('-', *l)));
        ops.extend(b.iter().map(|l| ('+', *l)));
    } else {
        let (n, m) = (a.len(), b.len());
        let mut lcs = vec![0u32; (n + 1) * (m + 1)];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i * (m + 1) + j] = if a[i] == b[j] {
                    lcs[(i + 1) * (m + 1) + j + 1] + 1
                } else {
                    lcs[(i + 1) * (m + 1) + j].max(lcs[i * (m + 1) + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && a[i] == b[j] {
                ops.push((' ', a[i]));
                i += 1;
                j += 1;
            } else if i < n && (j == m || lcs[(i + 1) * (m + 1) + j] >= lcs[i * (m + 1) + j + 1]) {
                ops.push(('-', a[i]));
                i += 1;
            } else {
                ops.push(('+', b[j]));
                j += 1;
            }
        }
    }
    hunks(&ops)
}

/// Groups diff operations into `@@` hunks with three lines of context.
fn hunks(ops: &[(char, &str)]) -> String {
    const CONTEXT: usize = 3;
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    let mut out = String::new();
    let mut k = 0;
    while k < changed.len() {
        let start = changed[k].saturating_sub(CONTEXT);
        let mut end = changed[k];
        while k + 1 < changed.len() && changed[k + 1] <= end + 2 * CONTEXT + 1 {
            k += 1;
            end = changed[k];
        }
        let end = (end + CONTEXT + 1).min(ops.len());
        let line_of = |upto: usize, side: char| -> usize {
            ops[..upto]
                .iter()
                .filter(|o| o.0 == ' ' || o.0 == side)
                .count()
        };
        let count = |side: char| {
            ops[start..end]
                .iter()
                .filter(|o| o.0 == ' ' || o.0 == side)
                .count()
        };
        let (ac, bc) = (count('-'), count('+'));
        let from = |upto: usize, side: char, n: usize| {
            if n == 0 {
                line_of(upto, side)
            } else {
                line_of(upto, side) + 1
            }
        };
        out.push_str(&format!(
            "@@ -{},{ac} +{},{bc} @@\n",
            from(start, '-', ac),
            from(start, '+', bc)
        ));
        for (op, line) in &ops[start..end] {
            out.push_str(&format!("{op}{line}\n"));
        }
        k += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(proto: &str, host: &str, container: &str, now: &str, after: &str) -> Row {
        Row {
            proto: proto.into(),
            host: host.into(),
            container: container.into(),
            network: "docker0".into(),
            now: now.into(),
            after: after.into(),
            sources: Vec::new(),
        }
    }

    #[test]
    fn the_table_of_a_host_in_sync_fits_80_columns() {
        let mut restricted = row(
            "tcp",
            "0.0.0.0:8443",
            "shop-admin-1",
            "restricted",
            "restricted",
        );
        restricted.sources = vec!["198.51.100.0/24".into(), "2001:db8::/32".into()];
        let view = View {
            policy: "/etc/ufw-docker/policy.json".into(),
            sync: Sync::InSync,
            rows: vec![
                row("tcp", "0.0.0.0:8080", "shop-web-1", "open", "open"),
                row(
                    "tcp",
                    "[::]:8080",
                    "[fd00:dead:beef::2]:80",
                    "blocked",
                    "blocked",
                ),
                restricted,
                row(
                    "udp",
                    "127.0.0.1:5353",
                    "a-container-with-a-very-long-name-1",
                    "blocked",
                    "blocked",
                ),
            ],
            trusted: vec!["192.168.50.0/24".into()],
            unrecognised: 1,
            warnings: vec!["something to know".into()],
        };
        let text = render(&view, false);
        assert_eq!(
            text,
            "\
policy: /etc/ufw-docker/policy.json
host:   in sync: a run of the module would change nothing

PROTO  HOST            CONTAINER               NETWORK  INTERNET NOW
tcp    0.0.0.0:8080    shop-web-1              docker0  open
tcp    [::]:8080       [fd00:dead:beef::2]:80  docker0  blocked
tcp    0.0.0.0:8443    shop-admin-1            docker0  restricted (2 sources):
                                                          198.51.100.0/24
                                                          2001:db8::/32
udp    127.0.0.1:5353  a-container-with-a-ve~  docker0  blocked

trusted networks reach every published port: 192.168.50.0/24

1 DNAT rule(s) not Docker's are not in the table (`status --json`:
unrecognised_dnat)

warning: something to know
"
        );
        for line in text.lines() {
            assert!(line.chars().count() <= WIDTH, "{line}");
        }
    }

    #[test]
    fn a_drifted_host_says_what_changes_and_colours_only_when_asked() {
        let view = View {
            policy: "none at /etc/ufw-docker/policy.json: the module's defaults".into(),
            sync: Sync::Drifted(vec![
                "/etc/ufw/after.rules".into(),
                "live DOCKER-USER (ipv4)".into(),
            ]),
            rows: vec![row("tcp", "0.0.0.0:8080", "shop-web-1", "open", "blocked")],
            trusted: vec![],
            unrecognised: 0,
            warnings: vec![],
        };
        assert_eq!(
            render(&view, false),
            "\
policy: none at /etc/ufw-docker/policy.json: the module's defaults
host:   drifted: a run would change /etc/ufw/after.rules, live DOCKER-USER
        (ipv4)
        (`ufw_docker check --diff` shows them, `ufw_docker apply` makes them)

PROTO  HOST          CONTAINER   NETWORK  INTERNET NOW
tcp    0.0.0.0:8080  shop-web-1  docker0  open -> blocked after a run
"
        );
        let coloured = render(&view, true);
        assert!(
            coloured.contains("\x1b[33mdrifted\x1b[0m: a run"),
            "{coloured}"
        );
        assert!(
            coloured.contains("\x1b[31mopen\x1b[0m -> blocked"),
            "{coloured}"
        );
    }

    #[test]
    fn no_published_port_is_said_in_words() {
        let view = View {
            policy: "p".into(),
            sync: Sync::NotInstalled,
            rows: vec![],
            trusted: vec![],
            unrecognised: 0,
            warnings: vec![],
        };
        assert!(render(&view, false).ends_with("\nDocker publishes no port on this host.\n"));
    }

    #[test]
    fn the_sync_verdict_reads_changed_and_the_diffs_before() {
        assert_eq!(sync_of(&json!({"changed": false})), Sync::InSync);
        let fresh = json!({"changed": true, "msg": "would change: /a",
                           "diff": [{"before": "*filter\nCOMMIT\n"}, {"before": ""}]});
        assert_eq!(sync_of(&fresh), Sync::NotInstalled);
        let drifted = json!({"changed": true, "msg": "would change: /a, live DOCKER-USER (ipv4)",
                             "diff": [{"before": format!("{}\n", rules::LOG_CHAIN)}]});
        assert_eq!(
            sync_of(&drifted),
            Sync::Drifted(vec!["/a".into(), "live DOCKER-USER (ipv4)".into()])
        );
    }

    #[test]
    fn the_view_names_containers_and_falls_back_to_addresses() {
        let result = json!({"changed": false, "published": [
            {"family": "ipv4", "proto": "tcp", "host_address": null, "host_port": "8080",
             "container_address": "172.17.0.2", "container_port": "80", "bridge": "docker0",
             "now": "restricted", "after": "restricted", "sources": ["198.51.100.0/24"],
             "trusted": ["10.0.0.0/8"], "container": "shop-web-1"},
            {"family": "ipv6", "proto": "udp", "host_address": "::1", "host_port": "53",
             "container_address": "fd00::3", "container_port": "53", "bridge": null,
             "now": "blocked", "after": "blocked", "sources": [], "trusted": ["10.0.0.0/8"]}],
            "unrecognised_dnat": [], "warnings": []});
        let v = view(&result, "p".into());
        assert_eq!(v.rows[0].host, "0.0.0.0:8080");
        assert_eq!(v.rows[0].container, "shop-web-1");
        assert_eq!(v.rows[0].sources, ["198.51.100.0/24"]);
        assert_eq!(v.rows[1].host, "[::1]:53");
        assert_eq!(v.rows[1].container, "[fd00::3]:53");
        assert_eq!(v.rows[1].network, "-");
        assert_eq!(v.trusted, ["10.0.0.0/8"]);
    }

    #[test]
    fn swarm_ingress_ports_are_named_by_service_or_said_to_be_ingress() {
        let entry = |service: Option<&str>| {
            let mut p = json!({"family": "ipv4", "proto": "tcp", "host_address": null,
                "host_port": "8098", "container_address": "172.18.0.2", "container_port": "8098",
                "bridge": "docker_gwbridge", "mode": "ingress", "now": "open", "after": "blocked",
                "sources": [], "trusted": []});
            if let Some(s) = service {
                p["swarm_service"] = json!(s);
            }
            p
        };
        let result = json!({"changed": true, "published": [entry(Some("edge")), entry(None)]});
        let v = view(&result, "p".into());
        assert_eq!(v.rows[0].container, "edge (ingress)");
        assert_eq!(v.rows[1].container, "swarm ingress");
        assert_eq!(v.rows[0].network, "docker_gwbridge");
        assert_eq!(
            reach_changes(&result, true)[0],
            "tcp 0.0.0.0:8098 edge (ingress) (docker_gwbridge): open -> blocked"
        );
    }

    #[test]
    fn the_line_diff_is_unified_with_three_lines_of_context() {
        assert_eq!(unified_diff("a\nb\n", "a\nb\n"), "");
        let before = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n";
        let after = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n10\n11\n";
        assert_eq!(
            unified_diff(before, after),
            "@@ -2,9 +2,10 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n 9\n 10\n+11\n"
        );
        assert_eq!(unified_diff("", "x\n"), "@@ -0,0 +1,1 @@\n+x\n");
        let far_before: String = (1..=20).map(|i| format!("{i}\n")).collect();
        let far_after: String = (1..=20)
            .map(|i| match i {
                2 => "two\n".to_string(),
                19 => "nineteen\n".to_string(),
                _ => format!("{i}\n"),
            })
            .collect();
        assert_eq!(
            unified_diff(&far_before, &far_after),
            "@@ -1,5 +1,5 @@\n 1\n-2\n+two\n 3\n 4\n 5\n@@ -16,5 +16,5 @@\n 16\n 17\n 18\n-19\n+nineteen\n 20\n"
        );
    }
}
