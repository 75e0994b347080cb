//! The rule vocabulary: what a rule is, the chains the module owns and how their names are
//! spelled (UFW's route chain included), every rule the module writes, and the one place that
//! renders rules as iptables-restore text.
//!
//! The same rendering feeds the managed block in after.rules and the live `--noflush` payload,
//! so the file and the running chain can never disagree. Rules are token lists; rendering quotes
//! tokens the way `iptables-save` does, which makes a live rule read back from the kernel
//! compare equal to the rule the module asked for.
//!
//! Pure, and at the bottom: `policy` assembles these rules into chains, `fold` into trees, and
//! this file imports neither.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// A rule's protocol (`-p tcp`, `-p udp`): parsed with the parameters, part of the vocabulary.
pub use crate::params::Proto;

/// The chain Docker jumps to first from FORWARD and never rewrites.
pub const DOCKER_USER: &str = "DOCKER-USER";
/// The module's own chain: rate-limited log, then drop.
pub const LOG_CHAIN: &str = "ufw-docker-logging-deny";
/// Every rule the module writes in DOCKER-USER carries a comment starting with this tag.
pub const TAG: &str = "ufw-docker";
/// Docker's own bridge interfaces: the default bridge and user-defined networks (`br-<id>`).
pub const DOCKER_BRIDGES: [&str; 2] = ["docker0", "br-+"];
/// The burst of the logging limit, as the ufw-docker script used.
pub const LOG_BURST: u32 = 10;
/// The module's chain in the `security` table, jumped to first from its FORWARD: the policy
/// again, for new connections DOCKER-USER never saw. Docker runs filter FORWARD and never
/// touches the security table, which the kernel runs after filter: where Docker puts its own
/// ACCEPT rules ahead of the jump to DOCKER-USER (Docker 20.10's ip6tables, for every network it
/// creates or re-creates), the guard still decides.
pub const GUARD_CHAIN: &str = "ufw-docker-guard";
/// The packet mark bit (value/mask) DOCKER-USER sets on every new connection Docker DNATed it
/// sees, so that the guard leaves what DOCKER-USER (and the `ufw route` rules it consults)
/// decided alone.
pub const SEEN_MARK: &str = "0x1000000/0x1000000";

/// An IP family: the module manages each with its own file, tool and UFW chain names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    /// The key used in results (`rules.ipv4`, ...).
    pub fn key(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }

    pub fn save_cmd(self) -> &'static str {
        match self {
            Family::V4 => "iptables-save",
            Family::V6 => "ip6tables-save",
        }
    }

    pub fn restore_cmd(self) -> &'static str {
        match self {
            Family::V4 => "iptables-restore",
            Family::V6 => "ip6tables-restore",
        }
    }

    /// UFW's chain of `ufw route` rules for this family.
    pub fn ufw_route_chain(self) -> &'static str {
        match self {
            Family::V4 => "ufw-user-forward",
            Family::V6 => "ufw6-user-forward",
        }
    }

    pub fn holds(self, net: &IpNet) -> bool {
        matches!(
            (self, net),
            (Family::V4, IpNet::V4(_)) | (Family::V6, IpNet::V6(_))
        )
    }
}

/// One rule: the chain it is appended to and its arguments as separate tokens.
///
/// Held as one string, the chain then each token after a NUL (`chain\0-j\0RETURN`): a run at a
/// thousand entries holds some twelve thousand rules (the live chains of both families, in
/// filter and in security, and the wanted ones), which a `String` per token made weigh
/// megabytes. No token holds a NUL: iptables' text cannot, and the parameters refuse control
/// characters in what they put into a rule.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    text: Box<str>,
}

/// What separates the chain and the tokens in `Rule`'s text.
const SEP: char = '\0';

impl Rule {
    pub fn new(chain: &str, args: &[&str]) -> Rule {
        Rule::of(chain, args)
    }

    /// The rule of `chain` with the tokens `args`.
    pub fn of<S: AsRef<str>>(chain: &str, args: impl IntoIterator<Item = S>) -> Rule {
        let mut text = String::from(chain);
        for arg in args {
            text.push(SEP);
            text.push_str(arg.as_ref());
        }
        Rule {
            text: text.into_boxed_str(),
        }
    }

    /// The chain the rule is appended to.
    pub fn chain(&self) -> &str {
        self.text.split(SEP).next().unwrap_or_default()
    }

    /// The rule's arguments (after `-A CHAIN`), token by token.
    pub fn args(&self) -> impl Iterator<Item = &str> + Clone + '_ {
        self.text.split(SEP).skip(1)
    }

    /// Whether the rule's arguments are exactly `args`.
    pub fn args_are(&self, args: &[&str]) -> bool {
        self.args().eq(args.iter().copied())
    }

    /// Whether the token `option` is followed somewhere by a token that `value` accepts
    /// (`-j` then `MARK`, `--comment` then a tagged comment).
    pub fn has(&self, option: &str, value: impl Fn(&str) -> bool) -> bool {
        let mut args = self.args().peekable();
        while let Some(token) = args.next() {
            if token == option && args.peek().is_some_and(|v| value(v)) {
                return true;
            }
        }
        false
    }

    /// The same arguments in `chain`.
    pub fn in_chain(&self, chain: &str) -> Rule {
        Rule::of(chain, self.args())
    }

    /// The rule as an iptables-restore line: `-A CHAIN args...`.
    pub fn render(&self) -> String {
        let mut line = String::with_capacity(self.text.len() + 16);
        line.push_str("-A ");
        line.push_str(self.chain());
        for arg in self.args() {
            line.push(' ');
            quote_into(&mut line, arg);
        }
        line
    }

    /// Whether the module wrote this rule: it carries the module's comment tag or jumps to the
    /// module's logging chain.
    pub fn is_ours(&self) -> bool {
        self.has("--comment", |c| c.starts_with(TAG)) || self.has("-j", |t| t == LOG_CHAIN)
    }

    /// A bare `-j RETURN`, which Docker 20.10 appends to DOCKER-USER on every start when no
    /// identical rule exists. It changes nothing at the end of a chain.
    pub fn is_bare_return(&self) -> bool {
        self.args_are(&["-j", "RETURN"])
    }

    /// The rule read as a typed match and target (see `Match`).
    pub fn read(&self) -> Parsed<'_> {
        Parsed::of(self.args())
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("chain", &self.chain())
            .field("args", &self.args().collect::<Vec<_>>())
            .finish()
    }
}

/// What a rule matches, read from its tokens: the options of the module's vocabulary (and of
/// UFW's `ufw route` rules), each with its operand as the rule spells it. The packet evaluator
/// works on this, never on token positions or counts.
///
/// A negated option (`! -s ...`) sets `negated` and fills no field. Tokens outside the
/// vocabulary, and a target's own options (`--log-prefix ...`), are kept in `other`, so that a
/// reader can tell a rule it fully knows from one it does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Match<'a> {
    /// `-p`.
    pub proto: Option<&'a str>,
    /// `-s`.
    pub src: Option<&'a str>,
    /// `-d` (UFW's route rules).
    pub dst: Option<&'a str>,
    /// `-i`.
    pub in_iface: Option<&'a str>,
    /// `-o`.
    pub out_iface: Option<&'a str>,
    /// `-m iprange --src-range lo-hi`.
    pub src_range: Option<&'a str>,
    /// `-m conntrack --ctstate`, comma-separated states.
    pub ctstate: Option<&'a str>,
    /// `-m conntrack --ctorigdstport`: the published port (`80`, `8000:8100`).
    pub orig_port: Option<&'a str>,
    /// `--dport` of `-m tcp` / `-m udp` (UFW's route rules).
    pub dport: Option<&'a str>,
    /// `-m comment --comment`.
    pub comment: Option<&'a str>,
    /// The match extensions loaded with `-m`, in order.
    pub modules: Vec<&'a str>,
    /// Whether any option is negated.
    pub negated: bool,
    /// Tokens outside this vocabulary, in order.
    pub other: Vec<&'a str>,
}

impl Match<'_> {
    /// No option at all: the rule applies to every packet (a bare `-j RETURN`).
    pub fn is_empty(&self) -> bool {
        *self == Match::default()
    }

    /// Nothing but (at most) a comment: the rule applies to every packet, like the module's
    /// tagged goto to `ufw-docker-untrusted`.
    pub fn is_unconditional(&self) -> bool {
        let without_comment = Match {
            comment: None,
            modules: self
                .modules
                .iter()
                .copied()
                .filter(|m| *m != "comment")
                .collect(),
            ..self.clone()
        };
        without_comment.is_empty()
    }

    /// The states of `--ctstate` (none without it).
    pub fn states(&self) -> impl Iterator<Item = &str> {
        self.ctstate.into_iter().flat_map(|s| s.split(','))
    }
}

/// Where a rule sends a matching packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// `-j CHAIN` (or `-j RETURN`, `-j DROP`, ...): evaluation comes back after a chain.
    Jump(&'a str),
    /// `-g CHAIN`: evaluation goes on in CHAIN and never comes back.
    Goto(&'a str),
}

/// A rule read: its match and its target (`None`: a rule that only counts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub matches: Match<'a>,
    pub target: Option<Target<'a>>,
}

impl<'a> Parsed<'a> {
    /// Reads a rule's arguments (after `-A CHAIN`).
    pub fn of(args: impl IntoIterator<Item = &'a str>) -> Parsed<'a> {
        let mut m = Match::default();
        let mut target = None;
        let mut negate = false;
        let mut tokens = args.into_iter();
        while let Some(token) = tokens.next() {
            if target.is_some() {
                // The target's own options (`--log-prefix ...`), which no field holds.
                m.other.push(token);
                continue;
            }
            if token == "!" {
                m.negated = true;
                negate = true;
                continue;
            }
            // `!` negates the option right after it only.
            let negated = std::mem::take(&mut negate);
            let field = match token {
                "-p" => &mut m.proto,
                "-s" => &mut m.src,
                "-d" => &mut m.dst,
                "-i" => &mut m.in_iface,
                "-o" => &mut m.out_iface,
                "--src-range" => &mut m.src_range,
                "--ctstate" => &mut m.ctstate,
                "--ctorigdstport" => &mut m.orig_port,
                "--dport" => &mut m.dport,
                "--comment" => &mut m.comment,
                "-m" | "-j" | "-g" => {
                    let Some(value) = tokens.next() else {
                        m.other.push(token);
                        break;
                    };
                    match token {
                        "-m" => m.modules.push(value),
                        "-j" => target = Some(Target::Jump(value)),
                        _ => target = Some(Target::Goto(value)),
                    }
                    continue;
                }
                _ => {
                    m.other.push(token);
                    continue;
                }
            };
            let Some(value) = tokens.next() else {
                m.other.push(token);
                break;
            };
            if !negated && field.is_none() {
                *field = Some(value);
            }
        }
        Parsed { matches: m, target }
    }
}

/// A rule of the module in `chain`: `args`, the module's comment (`ufw-docker: what`), then
/// `how target` (`-j RETURN`, `-g CHAIN`, ...). Every tagged rule, flat or folded, is built here.
pub fn tagged<S: AsRef<str>>(chain: &str, args: &[S], what: &str, how: &str, target: &str) -> Rule {
    let comment = format!("{TAG}: {what}");
    let tag = ["-m", "comment", "--comment", &comment, how, target];
    Rule::of(chain, args.iter().map(AsRef::as_ref).chain(tag))
}

/// The first rule of DOCKER-USER: replies to existing connections return to Docker's chains.
pub fn replies() -> Rule {
    tagged(
        DOCKER_USER,
        &["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED"],
        "replies",
        "-j",
        "RETURN",
    )
}

/// DOCKER-USER's second rule: every new connection Docker DNATed that reaches DOCKER-USER is
/// marked `SEEN_MARK`, for the guard. A mark decides nothing: the rules below still do.
pub fn seen() -> Rule {
    let rule = tagged(
        DOCKER_USER,
        &["-m", "conntrack", "--ctstate", "DNAT"],
        "seen by DOCKER-USER",
        "-j",
        "MARK",
    );
    Rule::of(DOCKER_USER, rule.args().chain(["--set-xmark", SEEN_MARK]))
}

/// Whether the rule is `seen`'s mark (of any chain).
pub fn is_seen_mark(rule: &Rule) -> bool {
    rule.has("-j", |t| t == "MARK") && rule.has("--set-xmark", |m| m == SEEN_MARK)
}

/// The guard's second rule: what DOCKER-USER saw (marked `SEEN_MARK`) it decided already.
pub fn seen_return() -> Rule {
    tagged(
        GUARD_CHAIN,
        &["-m", "mark", "--mark", SEEN_MARK],
        "decided by DOCKER-USER",
        "-j",
        "RETURN",
    )
}

/// Whether the rule matches packets DOCKER-USER marked (`seen_return`, in the guard).
pub fn matches_seen_mark(rule: &Rule) -> bool {
    rule.has("--mark", |m| m == SEEN_MARK)
}

/// The security table's FORWARD jump to the guard, first.
pub fn guard_hook_args() -> [&'static str; 2] {
    ["-j", GUARD_CHAIN]
}

/// The guard's chains, from the module's chains: DOCKER-USER's rules as `GUARD_CHAIN`, without
/// the mark and without the jump to UFW's `ufw route` chain (which lives in the filter table:
/// a connection the guard judges went around DOCKER-USER, and with it around those rules), with
/// `seen_return` after the replies; the sub-chains and the logging chain as they are (chain
/// names belong to a table, so the same names serve both).
pub fn guard_set(set: &ChainSet) -> ChainSet {
    if set.docker_user.is_empty() {
        return ChainSet::default();
    }
    ChainSet {
        docker_user: guard_rules(set),
        log_chain: set.log_chain.clone(),
        subs: set.subs.clone(),
    }
}

/// The rules of the guard's own chain (`guard_set`'s `docker_user`): the rest of the guard's
/// chains are `set`'s, which a caller reads in place rather than copy (at a thousand entries the
/// sub-chains are megabytes).
pub fn guard_rules(set: &ChainSet) -> Vec<Rule> {
    let mut guard = Vec::with_capacity(set.docker_user.len() + 1);
    for rule in &set.docker_user {
        if is_seen_mark(rule) || rule.has("-j", is_ufw_route_chain) {
            continue;
        }
        guard.push(rule.in_chain(GUARD_CHAIN));
        if guard.len() == 1 {
            guard.push(seen_return());
        }
    }
    guard
}

/// The jump to UFW's `ufw route` rules of `family`.
pub fn ufw_route_jump(family: Family) -> Rule {
    let none: &[&str] = &[];
    tagged(
        DOCKER_USER,
        none,
        "ufw route rules",
        "-j",
        family.ufw_route_chain(),
    )
}

/// Traffic coming out of the Docker bridge `bridge` returns (container egress, container to
/// container).
pub fn from_containers(bridge: &str) -> Rule {
    tagged(
        DOCKER_USER,
        &["-i", bridge],
        "from containers",
        "-j",
        "RETURN",
    )
}

/// Traffic routed into the Docker bridge `bridge` (not DNATed) goes to the logging chain.
pub fn block_routed(chain: &str, bridge: &str) -> Rule {
    tagged(
        chain,
        &["-o", bridge],
        "block routed to containers",
        "-j",
        LOG_CHAIN,
    )
}

/// The last rule of the chain that holds the rest of the policy: what has nothing to do with
/// Docker returns.
pub fn return_rest(chain: &str) -> Rule {
    Rule::new(chain, &["-j", "RETURN"])
}

/// The logging chain's LOG rule: at most `limit` (`3/min`, ...) with a burst of `LOG_BURST`,
/// prefixed with `prefix` where it is not empty.
pub fn log(limit: &str, prefix: &str) -> Rule {
    let burst = LOG_BURST.to_string();
    let mut args = vec![
        "-m",
        "limit",
        "--limit",
        limit,
        "--limit-burst",
        &burst,
        "-j",
        "LOG",
    ];
    if !prefix.is_empty() {
        args.extend(["--log-prefix", prefix]);
    }
    Rule::new(LOG_CHAIN, &args)
}

/// The logging chain's last rule.
pub fn drop_logged() -> Rule {
    Rule::new(LOG_CHAIN, &["-j", "DROP"])
}

/// What follows the allow rules, in DOCKER-USER or in a folded port sub-chain: every other new
/// connection Docker DNATed goes to the logging chain.
pub fn block_published(chain: &str) -> Rule {
    tagged(
        chain,
        &["-m", "conntrack", "--ctstate", "DNAT"],
        "block published ports",
        "-j",
        LOG_CHAIN,
    )
}

/// Prefix of the port sub-chains long `allow` lists are folded into (`ufw-docker-allow-tcp-0`).
pub const ALLOW_PREFIX: &str = "ufw-docker-allow-";
/// Prefix of the source sub-chains long `trusted_networks` lists are folded into
/// (`ufw-docker-trust-0`, ...).
pub const TRUST_PREFIX: &str = "ufw-docker-trust-";
/// What DOCKER-USER holds after the trusted networks, when they are folded into a tree.
pub const UNTRUSTED: &str = "ufw-docker-untrusted";

/// Whether the module owns `chain` as one of its folding sub-chains.
pub fn is_sub_chain(chain: &str) -> bool {
    chain == UNTRUSTED || chain.starts_with(ALLOW_PREFIX) || chain.starts_with(TRUST_PREFIX)
}

/// The `n`th port sub-chain of `proto` (`ufw-docker-allow-tcp-0`, ...); iptables allows chain
/// names of 28 characters, which these stay under.
pub fn allow_chain(proto: Proto, n: usize) -> String {
    format!("{ALLOW_PREFIX}{}-{n}", proto.as_str())
}

/// The `n`th source sub-chain (`ufw-docker-trust-0`, ...).
pub fn trust_chain(n: usize) -> String {
    format!("{TRUST_PREFIX}{n}")
}

/// Whether `chain` is UFW's chain of `ufw route` rules, in either family.
pub fn is_ufw_route_chain(chain: &str) -> bool {
    Family::ALL.iter().any(|f| f.ufw_route_chain() == chain)
}

/// One `allow` rule: a protocol, an optional source, a published port range, and the text of
/// its comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    pub proto: Proto,
    pub src: Option<IpNet>,
    pub lo: u16,
    pub hi: u16,
    pub what: String,
}

impl PortRule {
    /// The rule in `chain`, rendered as the flat chain always had it.
    pub fn rule(&self, chain: &str) -> Rule {
        let src = self.src.map(|s| s.to_string());
        let range = port_range(self.lo, self.hi);
        let mut args = Vec::with_capacity(10);
        if let Some(src) = &src {
            args.extend(["-s", src]);
        }
        args.extend([
            "-p",
            self.proto.as_str(),
            "-m",
            "conntrack",
            "--ctstate",
            "DNAT",
            "--ctorigdstport",
            &range,
        ]);
        tagged(chain, &args, &self.what, "-j", "RETURN")
    }
}

/// `lo` or `lo:hi`, as iptables prints a port range.
pub fn port_range(lo: u16, hi: u16) -> String {
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}:{hi}")
    }
}

/// A trusted network's rule, as the flat chain has it.
pub fn trusted_rule(chain: &str, net: &IpNet) -> Rule {
    tagged(chain, &["-s", &net.to_string()], "trusted", "-j", "RETURN")
}

/// The goto that ends DOCKER-USER when its remainder moved to `ufw-docker-untrusted`.
pub fn to_untrusted(chain: &str) -> Rule {
    let none: &[&str] = &[];
    tagged(chain, none, "not trusted", "-g", UNTRUSTED)
}

/// Inside a port tree: the goto from `chain` to the sub-chain `child` that holds the ports
/// `lo..=hi` of `proto` (untagged: only the module's chains hold it).
pub fn port_goto(chain: &str, proto: Proto, lo: u16, hi: u16, child: &str) -> Rule {
    let range = port_range(lo, hi);
    Rule::new(
        chain,
        &[
            "-p",
            proto.as_str(),
            "-m",
            "conntrack",
            "--ctorigdstport",
            &range,
            "-g",
            child,
        ],
    )
}

/// Into a port tree: the goto from `entry` (DOCKER-USER or `ufw-docker-untrusted`) that sends
/// new DNATed connections of `proto` to a port in `lo..=hi` to the sub-chain `child`.
pub fn port_tree_entry(entry: &str, proto: Proto, lo: u16, hi: u16, child: &str) -> Rule {
    let range = port_range(lo, hi);
    let p = proto.as_str();
    tagged(
        entry,
        &[
            "-p",
            p,
            "-m",
            "conntrack",
            "--ctstate",
            "DNAT",
            "--ctorigdstport",
            &range,
        ],
        &format!("allow {range}/{p} (folded)"),
        "-g",
        child,
    )
}

/// `-m iprange --src-range lo-hi`, the match of a source tree's gotos.
fn src_range(lo: IpAddr, hi: IpAddr) -> [String; 4] {
    [
        "-m".into(),
        "iprange".into(),
        "--src-range".into(),
        format!("{lo}-{hi}"),
    ]
}

/// Inside a source tree: the goto from `chain` to the sub-chain `child` that holds the
/// trusted networks within `lo..=hi` (untagged).
pub fn source_goto(chain: &str, lo: IpAddr, hi: IpAddr, child: &str) -> Rule {
    let range = src_range(lo, hi);
    Rule::of(chain, range.iter().map(String::as_str).chain(["-g", child]))
}

/// Into a source tree: the goto from DOCKER-USER that sends sources within `lo..=hi` to the
/// sub-chain `child`.
pub fn source_tree_entry(entry: &str, lo: IpAddr, hi: IpAddr, child: &str) -> Rule {
    tagged(entry, &src_range(lo, hi), "trusted (folded)", "-g", child)
}

/// Quotes a token for iptables-restore input: bare when it is made only of characters that
/// never need quoting (letters, digits and `_-./:,+!`), otherwise in double quotes with `"` and
/// `\\` escaped, as iptables-save prints comments and log prefixes.
pub fn quote(token: &str) -> String {
    let mut out = String::with_capacity(token.len() + 2);
    quote_into(&mut out, token);
    out
}

/// `quote`, appended to `out` (rendering thousands of rules allocates once a line).
fn quote_into(out: &mut String, token: &str) {
    let plain = !token.is_empty()
        && token
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_-./:,+!".contains(&c));
    if plain {
        out.push_str(token);
        return;
    }
    out.push('"');
    let mut last = 0;
    for (at, c) in token.match_indices(['"', '\\']) {
        out.push_str(&token[last..at]);
        out.push('\\');
        out.push_str(c);
        last = at + c.len();
    }
    out.push_str(&token[last..]);
    out.push('"');
}

/// Splits an iptables-save rule line into tokens, undoing its quoting.
pub fn tokenize(line: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut in_token = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => {
                if let Some(next) = chars.next() {
                    cur.push(next);
                }
            }
            '"' => {
                quoted = !quoted;
                in_token = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_token {
                    tokens.push(std::mem::take(&mut cur));
                    in_token = false;
                }
            }
            c => {
                cur.push(c);
                in_token = true;
            }
        }
    }
    if in_token {
        tokens.push(cur);
    }
    tokens
}

/// The rules of one family, for every chain the module owns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChainSet {
    pub docker_user: Vec<Rule>,
    pub log_chain: Vec<Rule>,
    /// The sub-chains long lists are folded into (see `fold`), by name; empty for short lists.
    pub subs: BTreeMap<String, Vec<Rule>>,
}

impl ChainSet {
    /// All rules, DOCKER-USER first, then the sub-chains, then the logging chain, rendered as
    /// restore lines.
    pub fn lines(&self) -> Vec<String> {
        self.rules().map(Rule::render).collect()
    }

    /// All rules, in the order of `lines`.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.docker_user
            .iter()
            .chain(self.subs.values().flatten())
            .chain(&self.log_chain)
    }

    /// The rules of one of the module's chains (none for a chain it does not hold).
    pub fn chain(&self, name: &str) -> &[Rule] {
        match name {
            DOCKER_USER => &self.docker_user,
            LOG_CHAIN => &self.log_chain,
            _ => self.subs.get(name).map_or(&[], Vec::as_slice),
        }
    }
}

/// The module's chains wherever they are held: a `ChainSet` the module built, or the chains of
/// a live table read in place (`live::FilterTable::held`), which the exposure report walks
/// without copying them out.
pub trait Chains {
    /// The rules of one of the module's chains (none for a chain it does not hold), DOCKER-USER
    /// standing for the chain a walk starts in.
    fn chain(&self, name: &str) -> &[Rule];
}

impl Chains for ChainSet {
    fn chain(&self, name: &str) -> &[Rule] {
        ChainSet::chain(self, name)
    }
}

/// The `*filter` section declaring the module's chains and holding its rules. Declaring a chain
/// in `--noflush` mode flushes it, which is how the module replaces its chains atomically.
/// `extra_declarations` is for the after.rules block only (UFW's route chain, which must exist
/// when UFW loads the file); the live payload passes none, so it never flushes a chain it does
/// not own.
pub fn restore_section(set: &ChainSet, extra_declarations: &[&str]) -> String {
    let mut out = String::from("*filter\n");
    for chain in extra_declarations {
        out.push_str(&format!(":{chain} - [0:0]\n"));
    }
    out.push_str(&format!(":{DOCKER_USER} - [0:0]\n:{LOG_CHAIN} - [0:0]\n"));
    push_chains(&mut out, &set.docker_user, set);
    out
}

/// The `*security` section declaring the guard's chains and holding its rules (`guard_set`),
/// without the hook, which only the live payload puts first in FORWARD. Empty for an empty set.
pub fn security_section(guard: &ChainSet) -> String {
    security_of(&guard.docker_user, guard)
}

/// `security_section(&guard_set(set))`, reading `set`'s sub-chains and logging chain in place
/// instead of copying them into the guard's set.
pub fn guard_section(set: &ChainSet) -> String {
    if set.docker_user.is_empty() {
        return String::new();
    }
    security_of(&guard_rules(set), set)
}

/// The `*security` section of the guard's chain `guard` and `set`'s other chains; empty when
/// `guard` is.
fn security_of(guard: &[Rule], set: &ChainSet) -> String {
    if guard.is_empty() {
        return String::new();
    }
    let mut out = String::from("*security\n");
    out.push_str(&format!(":{GUARD_CHAIN} - [0:0]\n:{LOG_CHAIN} - [0:0]\n"));
    push_chains(&mut out, guard, set);
    out
}

/// The sub-chains' declarations, every rule (`first`'s, which stand for DOCKER-USER's, then
/// the sub-chains' and the logging chain's, as `ChainSet::lines` orders them), and COMMIT.
fn push_chains(out: &mut String, first: &[Rule], set: &ChainSet) {
    for chain in set.subs.keys() {
        out.push_str(&format!(":{chain} - [0:0]\n"));
    }
    for rule in first
        .iter()
        .chain(set.subs.values().flatten())
        .chain(&set.log_chain)
    {
        out.push_str(&rule.render());
        out.push('\n');
    }
    out.push_str("COMMIT\n");
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_round_trips_through_the_tokenizer() {
        for token in [
            "plain",
            "ufw-docker: allow 80/tcp",
            "[UFW DOCKER BLOCK] ",
            "a\"b\\c",
            "",
            "br-+",
            "10.0.0.0/8",
        ] {
            let line = format!("-A X -m comment --comment {} -j RETURN", quote(token));
            assert_eq!(
                tokenize(&line),
                [
                    "-A",
                    "X",
                    "-m",
                    "comment",
                    "--comment",
                    token,
                    "-j",
                    "RETURN"
                ]
            );
        }
        assert_eq!(quote("abc"), "abc");
        assert_eq!(quote("[UFW DOCKER BLOCK] "), "\"[UFW DOCKER BLOCK] \"");
        assert_eq!(quote("RELATED,ESTABLISHED"), "RELATED,ESTABLISHED");
    }

    #[test]
    fn a_rule_gives_back_its_chain_and_tokens() {
        let rule = Rule::new("X", &["-m", "comment", "--comment", "", "-j", "RETURN"]);
        assert_eq!(rule.chain(), "X");
        assert_eq!(
            rule.args().collect::<Vec<_>>(),
            ["-m", "comment", "--comment", "", "-j", "RETURN"]
        );
        assert_eq!(rule.render(), r#"-A X -m comment --comment "" -j RETURN"#);
        assert!(rule.has("-j", |t| t == "RETURN") && !rule.has("-m", |m| m == "RETURN"));
        assert!(!rule.has("RETURN", |_| true), "the last token has no value");
        let bare = Rule::new("X", &[]);
        assert_eq!((bare.chain(), bare.args().count()), ("X", 0));
        assert_ne!(
            bare,
            Rule::new("X", &[""]),
            "no tokens is not one empty token"
        );
        assert_eq!(Rule::new("X", &[""]).args().collect::<Vec<_>>(), [""]);
        assert_eq!(
            rule.in_chain("Y").args().collect::<Vec<_>>(),
            rule.args().collect::<Vec<_>>()
        );
        assert_eq!(rule.in_chain("Y").chain(), "Y");
        assert!(Rule::new("X", &["-j", "RETURN"]).is_bare_return());
        assert_eq!(
            format!("{:?}", Rule::new("X", &["-j", "RETURN"])),
            r#"Rule { chain: "X", args: ["-j", "RETURN"] }"#
        );
    }

    fn read(line: &str) -> (Match<'static>, Option<Target<'static>>) {
        let args: &'static [String] = tokenize(line).leak();
        let parsed = Parsed::of(args.iter().map(String::as_str));
        (parsed.matches, parsed.target)
    }

    #[test]
    fn a_rule_reads_as_its_options_and_target() {
        let (m, target) = read(
            r#"-s 198.51.100.0/24 -p tcp -m conntrack --ctstate DNAT --ctorigdstport 8000:8100 -m comment --comment "ufw-docker: allow" -j RETURN"#,
        );
        assert_eq!(
            m,
            Match {
                src: Some("198.51.100.0/24"),
                proto: Some("tcp"),
                ctstate: Some("DNAT"),
                orig_port: Some("8000:8100"),
                comment: Some("ufw-docker: allow"),
                modules: vec!["conntrack", "comment"],
                ..Match::default()
            }
        );
        assert_eq!(target, Some(Target::Jump("RETURN")));
        let (m, target) = read("-m iprange --src-range 10.0.0.0-10.0.0.255 -g ufw-docker-trust-0");
        assert_eq!(m.src_range, Some("10.0.0.0-10.0.0.255"));
        assert_eq!(target, Some(Target::Goto("ufw-docker-trust-0")));
        assert!(read("-j RETURN").0.is_empty());
        assert!(!read("-m comment --comment x -j RETURN").0.is_empty());
        assert!(
            read(r#"-m comment --comment "ufw-docker: not trusted" -g ufw-docker-untrusted"#)
                .0
                .is_unconditional()
        );
        assert!(!read("-s 10.0.0.0/8 -m comment --comment x -g X")
            .0
            .is_unconditional());
    }

    #[test]
    fn negations_unknown_options_and_target_options_fill_no_field() {
        let (m, target) =
            read("! -s 10.0.0.0/8 -i eth0 -m set --match-set x src -j LOG --log-prefix -s");
        assert!(m.negated);
        assert_eq!((m.src, m.in_iface), (None, Some("eth0")));
        assert_eq!(m.modules, ["set"]);
        assert_eq!(m.other, ["--match-set", "x", "src", "--log-prefix", "-s"]);
        assert_eq!(target, Some(Target::Jump("LOG")));
        let (m, _) = read("-p udp -m udp --sport 53 --dport 1024:65535 -j RETURN");
        assert_eq!((m.proto, m.dport), (Some("udp"), Some("1024:65535")));
        assert_eq!(m.other, ["--sport", "53"]);
    }

    #[test]
    fn every_rule_the_module_writes_reads_without_leftovers() {
        let allow = PortRule {
            proto: Proto::Udp,
            src: Some("2001:db8::/32".parse().unwrap()),
            lo: 5000,
            hi: 5010,
            what: "allow \"x\"".into(),
        };
        let (lo, hi) = ("10.0.0.0".parse().unwrap(), "10.0.0.255".parse().unwrap());
        let rules = [
            replies(),
            ufw_route_jump(Family::V6),
            from_containers("br-+"),
            trusted_rule(DOCKER_USER, &"10.0.0.0/8".parse().unwrap()),
            allow.rule(UNTRUSTED),
            block_published(DOCKER_USER),
            block_routed(DOCKER_USER, "docker0"),
            return_rest(DOCKER_USER),
            to_untrusted(DOCKER_USER),
            port_goto("c", Proto::Tcp, 1, 2, "d"),
            port_tree_entry(DOCKER_USER, Proto::Tcp, 1, 2, "d"),
            source_goto("c", lo, hi, "d"),
            source_tree_entry(DOCKER_USER, lo, hi, "d"),
        ];
        for rule in rules {
            // As written, and as iptables-save gives it back.
            let back = Rule::of(rule.chain(), &tokenize(&rule.render())[2..]);
            for r in [&rule, &back] {
                let parsed = r.read();
                assert!(parsed.matches.other.is_empty(), "{}", r.render());
                assert!(!parsed.matches.negated && parsed.target.is_some());
            }
            assert_eq!(rule.read(), back.read());
        }
        let read = allow.rule(UNTRUSTED);
        let m = read.read().matches;
        assert_eq!(
            (m.src, m.proto, m.orig_port, m.comment),
            (
                Some("2001:db8::/32"),
                Some("udp"),
                Some("5000:5010"),
                Some("ufw-docker: allow \"x\"")
            )
        );
    }
}
