//! The module's parameters: Ansible-style coercion of the raw JSON, then validation into typed
//! values.
//!
//! This is the gate that keeps bad input away from files and iptables: every string that can
//! reach a rule (comments, the log prefix, CIDRs, ports, the log limit) is checked here, and
//! nothing downstream re-validates. It only reads the JSON it is given; it never touches the host.
//!
//! It is also the one source of the option list: `OPTIONS` (names, Ansible types, choices,
//! defaults, and the sub-options of `allow`) is what the parser accepts and defaults to, and the
//! collection, the README and the role are checked against it (see `OPTIONS` for how and why).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use ipnet::IpNet;
use serde_json::{Map, Value};

use crate::limit::LogLimit;

/// The module's name, as Ansible prints it in "Unsupported parameters for (...)".
pub const MODULE_NAME: &str = "ufw_docker";

/// Longest comment accepted on an `allow` entry. The kernel's comment match holds 255 bytes and
/// the module prefixes its own tag (`ufw-docker: allow 65535:65535/tcp `).
pub const MAX_COMMENT_LEN: usize = 200;

/// Longest log prefix the kernel's LOG target accepts (29 characters plus the NUL).
pub const MAX_LOG_PREFIX_LEN: usize = 29;

/// An option's Ansible type (`type`, and `elements` for a list), with its default: the value the
/// module uses when a task leaves the option out or sets it to null. Ansible's own names, because
/// the table is compared with the collection's argument spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `type: str`: free text when `choices` is empty, else one of `choices`.
    Str {
        choices: &'static [&'static str],
        default: Option<&'static str>,
    },
    /// `type: path`: an absolute path; `None`: no default (not set, the option is off).
    Path { default: Option<&'static str> },
    /// `type: bool`, coerced as Ansible does (`yes`, `on`, `1`, ...).
    Bool { default: bool },
    /// `type: raw`: the value as given (a port is a number or a `start:end` string).
    Raw,
    /// `type: list`; `default_empty`: `default: []`, else no default (null).
    List {
        elements: Elements,
        default_empty: bool,
    },
}

/// What a list option holds (`elements`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elements {
    /// `elements: str` (numbers become their text; a string is split on commas).
    Str,
    /// `elements: dict`, each dictionary with these sub-options (`options`).
    Dict(&'static [OptionSpec]),
}

/// One option the module accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    pub name: &'static str,
    pub kind: Kind,
    /// Whether a task must set it (`required: true`); a required option has no default.
    pub required: bool,
}

impl OptionSpec {
    const fn new(name: &'static str, kind: Kind) -> Self {
        OptionSpec {
            name,
            kind,
            required: false,
        }
    }
    const fn choice(
        name: &'static str,
        choices: &'static [&'static str],
        default: &'static str,
    ) -> Self {
        Self::new(
            name,
            Kind::Str {
                choices,
                default: Some(default),
            },
        )
    }
    const fn str(name: &'static str, default: Option<&'static str>) -> Self {
        Self::new(
            name,
            Kind::Str {
                choices: &[],
                default,
            },
        )
    }
    const fn path(name: &'static str, default: &'static str) -> Self {
        Self::new(
            name,
            Kind::Path {
                default: Some(default),
            },
        )
    }
    const fn optional_path(name: &'static str) -> Self {
        Self::new(name, Kind::Path { default: None })
    }
    const fn bool(name: &'static str, default: bool) -> Self {
        Self::new(name, Kind::Bool { default })
    }
    const fn list(name: &'static str, elements: Elements, default_empty: bool) -> Self {
        Self::new(
            name,
            Kind::List {
                elements,
                default_empty,
            },
        )
    }
}

/// The options, in the order the docs list them, each declared once in `opt` below: what the
/// module accepts, their types, choices and defaults, and the sub-options of `allow`. The parser
/// reads every name, choice and default from here (`opt::*`, through `Given`), so what it
/// accepts and what it defaults to cannot differ from the table.
///
/// The table is exported as `src/options.json`, in the shape of Ansible's `argument_spec`
/// (`argument_spec_json`); `options_json_is_the_table` fails when that file is not the table
/// (`UFW_DOCKER_WRITE_OPTIONS=1 cargo test --lib options_json` rewrites it), and
/// `scripts/check-options.py` compares the file with the option list's other homes: the
/// collection's argument spec (`ansible/plugins/module_utils/argument_spec.py`), the module's
/// DOCUMENTATION (`ansible/plugins/modules/ufw_docker.py`), the README's "Parameters" tables and
/// the role (`meta/argument_specs.yml`, `defaults/main.yml`, and `vars/main.yml`'s
/// `__ufw_docker_module_args`). Why a checked-in file rather than argument_spec.py loading it or
/// the check running cargo: argument_spec.py stays plain Python that imports anywhere Ansible
/// imports it (AnsiballZ's zip, ansible-test's import sandbox, ansible-lint) with no data file
/// to ship or find; the Python check needs no Rust toolchain; and a change to the option list
/// shows in review as a diff of one small file. Nothing of it reaches the module protocol.
pub const OPTIONS: &[OptionSpec] = &[
    opt::STATE,
    opt::AFTER_RULES,
    opt::AFTER6_RULES,
    opt::UNIT_PATH,
    opt::IPV6,
    opt::ALLOW,
    opt::TRUSTED_NETWORKS,
    opt::UFW_ROUTE_RULES,
    opt::LOG,
    opt::LOG_PREFIX,
    opt::LOG_LIMIT,
    opt::APPLY,
    opt::BACKUP,
    opt::VALIDATE,
    opt::BACKEND,
    opt::DOCKER_HOST,
    opt::POLICY_FILE,
    opt::COMMAND_PATH,
];

/// The sub-options of one `allow` entry.
pub const ALLOW_OPTIONS: &[OptionSpec] = &[opt::PORT, opt::PROTO, opt::FROM, opt::COMMENT];

/// Each option, by a name the compiler checks wherever the parser reads it.
mod opt {
    use super::{Elements, OptionSpec, ALLOW_OPTIONS};

    pub const STATE: OptionSpec = OptionSpec::choice("state", &["present", "absent"], "present");
    pub const AFTER_RULES: OptionSpec = OptionSpec::path("after_rules", "/etc/ufw/after.rules");
    pub const AFTER6_RULES: OptionSpec = OptionSpec::path("after6_rules", "/etc/ufw/after6.rules");
    pub const UNIT_PATH: OptionSpec =
        OptionSpec::path("unit_path", "/etc/systemd/system/ufw-docker.service");
    pub const IPV6: OptionSpec = OptionSpec::bool("ipv6", true);
    pub const ALLOW: OptionSpec = OptionSpec::list("allow", Elements::Dict(ALLOW_OPTIONS), true);
    pub const TRUSTED_NETWORKS: OptionSpec =
        OptionSpec::list("trusted_networks", Elements::Str, true);
    pub const UFW_ROUTE_RULES: OptionSpec = OptionSpec::bool("ufw_route_rules", true);
    pub const LOG: OptionSpec = OptionSpec::bool("log", true);
    pub const LOG_PREFIX: OptionSpec = OptionSpec::str("log_prefix", Some("[UFW DOCKER BLOCK] "));
    pub const LOG_LIMIT: OptionSpec = OptionSpec::str("log_limit", Some("3/min"));
    pub const APPLY: OptionSpec = OptionSpec::choice("apply", &["live", "reload", "none"], "live");
    pub const BACKUP: OptionSpec = OptionSpec::bool("backup", false);
    pub const VALIDATE: OptionSpec = OptionSpec::bool("validate", true);
    pub const BACKEND: OptionSpec = OptionSpec::choice("backend", &["ufw", "iptables"], "ufw");
    /// No default in the table: unset, the module takes `DOCKER_HOST` from its environment,
    /// else `docker_api::DEFAULT_HOST`; a default here would hide the environment.
    pub const DOCKER_HOST: OptionSpec = OptionSpec::str("docker_host", None);
    /// No default: the module keeps a policy file only where a task (the role) asks for one.
    pub const POLICY_FILE: OptionSpec = OptionSpec::optional_path("policy_file");
    /// No default: the module installs itself as a command only where a task (the role) asks.
    pub const COMMAND_PATH: OptionSpec = OptionSpec::optional_path("command_path");

    pub const PORT: OptionSpec = OptionSpec {
        required: true,
        ..OptionSpec::new("port", super::Kind::Raw)
    };
    pub const PROTO: OptionSpec = OptionSpec::choice("proto", &["tcp", "udp"], "tcp");
    pub const FROM: OptionSpec = OptionSpec::list("from", Elements::Str, false);
    pub const COMMENT: OptionSpec = OptionSpec::str("comment", None);
}

/// The table in the shape of Ansible's `argument_spec` (`type`, `elements`, `choices`,
/// `default`, `required`, `options`), as `src/options.json` holds it for
/// `scripts/check-options.py`. Keys Ansible treats as absent (`required: false`, no default,
/// no choices) are left out.
pub fn argument_spec_json(options: &[OptionSpec]) -> Value {
    let mut spec = Map::new();
    for option in options {
        let mut o = Map::new();
        let mut put = |k: &str, v: Value| o.insert(k.to_string(), v);
        match option.kind {
            Kind::Str { choices, default } => {
                put("type", "str".into());
                if !choices.is_empty() {
                    put("choices", choices.into());
                }
                if let Some(d) = default {
                    put("default", d.into());
                }
            }
            Kind::Path { default } => {
                put("type", "path".into());
                if let Some(d) = default {
                    put("default", d.into());
                }
            }
            Kind::Bool { default } => {
                put("type", "bool".into());
                put("default", default.into());
            }
            Kind::Raw => {
                put("type", "raw".into());
            }
            Kind::List {
                elements,
                default_empty,
            } => {
                put("type", "list".into());
                match elements {
                    Elements::Str => put("elements", "str".into()),
                    Elements::Dict(sub) => {
                        put("options", argument_spec_json(sub));
                        put("elements", "dict".into())
                    }
                };
                if default_empty {
                    put("default", Value::Array(Vec::new()));
                }
            }
        }
        if option.required {
            put("required", true.into());
        }
        spec.insert(option.name.to_string(), Value::Object(o));
    }
    Value::Object(spec)
}

/// A parameter problem, worded for the operator who wrote the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError(pub String);

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParamError {}

type Result<T> = std::result::Result<T, ParamError>;

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(ParamError(msg.into()))
}

/// Whether the block should be in place or gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Present,
    Absent,
}

/// How a change reaches the running firewall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyMode {
    /// One `iptables-restore --noflush` per family, of only the chains the module owns.
    Live,
    /// `ufw reload`, which reloads every UFW rule file.
    Reload,
    /// Write the files only; the running firewall is neither read nor changed.
    None,
}

/// Where the policy is kept so that it survives reboots and reloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// In UFW's after.rules and after6.rules, loaded by UFW at boot and on `ufw reload`.
    Ufw,
    /// Live only, for hosts without UFW; a systemd unit installed by the role reruns the module
    /// after Docker starts.
    Iptables,
}

/// A transport protocol an `allow` entry can open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        self.name()
    }
}

/// An enum that a `choices` option selects. The option's choices in `OPTIONS` are the accepted
/// words (and the error message's list); `name` maps each variant back to its word, and
/// `choices_are_the_enums_names` proves that the two lists are one.
trait Choice: Sized + Copy + 'static {
    /// Every variant, in the order of the option's choices.
    const ALL: &'static [Self];
    /// The word a task writes for this variant.
    fn name(self) -> &'static str;
    fn from_name(word: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.name() == word)
    }
}

impl Choice for State {
    const ALL: &'static [Self] = &[State::Present, State::Absent];
    fn name(self) -> &'static str {
        match self {
            State::Present => "present",
            State::Absent => "absent",
        }
    }
}

impl Choice for ApplyMode {
    const ALL: &'static [Self] = &[ApplyMode::Live, ApplyMode::Reload, ApplyMode::None];
    fn name(self) -> &'static str {
        match self {
            ApplyMode::Live => "live",
            ApplyMode::Reload => "reload",
            ApplyMode::None => "none",
        }
    }
}

impl Choice for Backend {
    const ALL: &'static [Self] = &[Backend::Ufw, Backend::Iptables];
    fn name(self) -> &'static str {
        match self {
            Backend::Ufw => "ufw",
            Backend::Iptables => "iptables",
        }
    }
}

impl Choice for Proto {
    const ALL: &'static [Self] = &[Proto::Tcp, Proto::Udp];
    fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// A published (host) port or an inclusive range of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}:{}", self.start, self.end)
        }
    }
}

/// One validated `allow` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    pub port: PortRange,
    pub proto: Proto,
    /// Sources allowed; empty means anywhere.
    pub from: Vec<IpNet>,
    pub comment: Option<String>,
}

/// The validated parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub state: State,
    pub after_rules: PathBuf,
    pub after6_rules: PathBuf,
    /// The role's `ufw-docker.service`, which the iptables backend installs. The module never
    /// writes it; it reports whether it exists (`unit_present`), so that the role can remove a
    /// unit an earlier run left without a task of its own on every host.
    pub unit_path: PathBuf,
    pub ipv6: bool,
    pub allow: Vec<Allow>,
    pub trusted_networks: Vec<IpNet>,
    pub ufw_route_rules: bool,
    pub log: bool,
    pub log_prefix: String,
    pub log_limit: LogLimit,
    pub apply: ApplyMode,
    pub backup: bool,
    pub validate: bool,
    pub backend: Backend,
    /// Docker's API (`unix://` only), for the names in the exposure report; `None`: the
    /// environment's `DOCKER_HOST`, else the default socket (`docker_api::resolve_host`).
    pub docker_host: Option<String>,
    /// Where a successful run saves its parameters (`policy_file`), for the command line's
    /// verbs; `None` (unset or empty): nowhere.
    pub policy_file: Option<PathBuf>,
    /// Where a run with state present installs its own executable as the `ufw_docker` command
    /// (`command_path`); `None` (unset or empty): nowhere.
    pub command_path: Option<PathBuf>,
}

/// What Ansible itself asks of the run, from the `_ansible_*` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Invocation {
    pub check_mode: bool,
    pub diff: bool,
}

/// Parameters plus the run's mode, and warnings raised while normalising them.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub params: Params,
    pub invocation: Invocation,
    pub warnings: Vec<String>,
}

/// Parses the raw JSON text Ansible hands the module.
pub fn parse_args(text: &str) -> Result<Parsed> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ParamError(format!(
            "The module arguments are not valid JSON ({e}); Ansible passes a JSON object of \
             parameters, as a file path in argv[1] or on stdin"
        ))
    })?;
    let Value::Object(mut obj) = value else {
        return err("The module arguments must be a JSON object of parameters");
    };
    // New-style wrappers put the arguments under ANSIBLE_MODULE_ARGS; accept that shape too.
    if obj.len() == 1 {
        if let Some(Value::Object(inner)) = obj.remove("ANSIBLE_MODULE_ARGS") {
            obj = inner;
        }
    }
    parse_object(&obj)
}

/// Ansible's own keys (`_ansible_*`: check and diff mode) apart from the task's parameters.
fn split_invocation(obj: &Map<String, Value>) -> Result<(Invocation, BTreeMap<&str, &Value>)> {
    let mut invocation = Invocation::default();
    let mut user = BTreeMap::new();
    for (key, value) in obj {
        if let Some(internal) = key.strip_prefix("_ansible_") {
            match internal {
                "check_mode" => invocation.check_mode = to_bool(key, value)?,
                "diff" => invocation.diff = to_bool(key, value)?,
                _ => {} // Whatever else this Ansible version sends is not ours to judge.
            }
        } else {
            user.insert(key.as_str(), value);
        }
    }
    Ok((invocation, user))
}

/// `trusted_networks`, each a CIDR; a network that trusts every source is warned about.
fn trusted_networks(given: &Given, warnings: &mut Vec<String>) -> Result<Vec<IpNet>> {
    let nets = given
        .str_list(&opt::TRUSTED_NETWORKS)?
        .iter()
        .map(|item| cidr_param("trusted_networks", item, warnings))
        .collect::<Result<Vec<_>>>()?;
    for net in &nets {
        if net.prefix_len() == 0 {
            warnings.push(format!(
                "trusted_networks contains {net}, which trusts every source: published ports \
                 are open to the whole internet on that family"
            ));
        }
    }
    Ok(nets)
}

fn parse_object(obj: &Map<String, Value>) -> Result<Parsed> {
    let (invocation, user) = split_invocation(obj)?;
    let given = Given::new(user, OPTIONS, String::new())?;
    let mut warnings = Vec::new();

    let state: State = given.choice(&opt::STATE)?;
    let apply: ApplyMode = given.choice(&opt::APPLY)?;
    let after_rules = given.path(&opt::AFTER_RULES)?;
    let after6_rules = given.path(&opt::AFTER6_RULES)?;
    let unit_path = given.path(&opt::UNIT_PATH)?;
    let ipv6 = given.bool(&opt::IPV6)?;
    let backend: Backend = given.choice(&opt::BACKEND)?;
    ensure_backend_fits_apply(backend, apply)?;
    // Without UFW there are no `ufw route` rules to consult.
    let ufw_route_rules = backend == Backend::Ufw && given.bool(&opt::UFW_ROUTE_RULES)?;
    let log = given.bool(&opt::LOG)?;
    let backup = given.bool(&opt::BACKUP)?;
    let validate = given.bool(&opt::VALIDATE)?;

    let log_prefix = given.str(&opt::LOG_PREFIX)?;
    ensure_log_prefix_is_safe(&log_prefix)?;
    let log_limit = LogLimit::parse(&given.str(&opt::LOG_LIMIT)?)
        .map_err(|e| ParamError(format!("log_limit: {e}")))?;

    let docker_host = given
        .optional_str(&opt::DOCKER_HOST)?
        .filter(|h| !h.is_empty());
    if let Some(h) = &docker_host {
        crate::docker_api::socket_path(h).map_err(ParamError)?;
    }

    let policy_file = given.optional_path(&opt::POLICY_FILE, true)?;
    let command_path = given.optional_path(&opt::COMMAND_PATH, true)?;
    let trusted_networks = trusted_networks(&given, &mut warnings)?;
    let allow = given
        .dict_list(&opt::ALLOW, "entries like {port: 8080, proto: tcp}")?
        .iter()
        .enumerate()
        .map(|(i, item)| allow_entry(i, item, &mut warnings))
        .collect::<Result<Vec<_>>>()?;

    Ok(Parsed {
        params: Params {
            state,
            after_rules,
            after6_rules,
            unit_path,
            ipv6,
            allow,
            trusted_networks,
            ufw_route_rules,
            log,
            log_prefix,
            log_limit,
            apply,
            backup,
            validate,
            backend,
            docker_host,
            policy_file,
            command_path,
        },
        invocation,
        warnings,
    })
}

/// The options a task gave at one level (the top, or one `allow` entry), read through the
/// table: each accessor takes the option's `OptionSpec` and returns the given value, coerced as
/// Ansible coerces its type, or the option's default. Reading an option as a kind the table does
/// not give it (a bool read of a str option) panics: the parser and the table contradict each
/// other, whatever the input, and every unit test's parse shows it.
struct Given<'a> {
    values: BTreeMap<&'a str, &'a Value>,
    /// Put before option names in messages: empty, or `allow[0].`.
    prefix: String,
}

impl<'a> Given<'a> {
    /// The given options, which must all be in `table`.
    fn new(
        values: BTreeMap<&'a str, &'a Value>,
        table: &[OptionSpec],
        prefix: String,
    ) -> Result<Self> {
        ensure_only_supported(&values, table, &prefix)?;
        Ok(Given { values, prefix })
    }

    fn label(&self, option: &OptionSpec) -> String {
        format!("{}{}", self.prefix, option.name)
    }

    /// The value given, unless it is null (which Ansible treats as not set).
    fn get(&self, option: &OptionSpec) -> Option<&'a Value> {
        self.values
            .get(option.name)
            .copied()
            .filter(|v| !v.is_null())
    }

    /// A `choices` option, as the variant of `T` it names.
    fn choice<T: Choice>(&self, option: &OptionSpec) -> Result<T> {
        let Kind::Str {
            choices,
            default: Some(default),
        } = option.kind
        else {
            mismatch(option, "a choice with a default")
        };
        let word = match self.get(option) {
            None => default.to_string(),
            Some(v) => to_str(&self.label(option), v)?,
        };
        if !choices.contains(&word.as_str()) {
            return err(choice_msg(&self.label(option), &word, choices));
        }
        Ok(T::from_name(&word)
            .expect("every choice in OPTIONS names a variant (choices_are_the_enums_names)"))
    }

    /// A free-text option with a default.
    fn str(&self, option: &OptionSpec) -> Result<String> {
        let Kind::Str {
            choices: [],
            default: Some(default),
        } = option.kind
        else {
            mismatch(option, "free text with a default")
        };
        self.get(option)
            .map_or(Ok(default.to_string()), |v| to_str(&self.label(option), v))
    }

    /// A free-text option without a default.
    fn optional_str(&self, option: &OptionSpec) -> Result<Option<String>> {
        let Kind::Str {
            choices: [],
            default: None,
        } = option.kind
        else {
            mismatch(option, "free text without a default")
        };
        self.get(option)
            .map(|v| to_str(&self.label(option), v))
            .transpose()
    }

    /// An absolute path without control characters.
    fn path(&self, option: &OptionSpec) -> Result<PathBuf> {
        let Kind::Path {
            default: Some(default),
        } = option.kind
        else {
            mismatch(option, "a path with a default")
        };
        Ok(self
            .optional_path(option, false)?
            .unwrap_or_else(|| PathBuf::from(default)))
    }

    /// An absolute path, or `None` when not set (null or, where `empty_is_unset`, "").
    fn optional_path(&self, option: &OptionSpec, empty_is_unset: bool) -> Result<Option<PathBuf>> {
        if !matches!(option.kind, Kind::Path { .. }) {
            mismatch(option, "a path")
        }
        let Some(v) = self.get(option) else {
            return Ok(None);
        };
        if empty_is_unset && v.as_str() == Some("") {
            return Ok(None);
        }
        let name = self.label(option);
        let s = to_str(&name, v)?;
        if s.is_empty() || !s.starts_with('/') {
            return err(format!("{name} must be an absolute path, got '{s}'"));
        }
        if s.chars().any(char::is_control) {
            return err(format!("{name} contains a control character"));
        }
        Ok(Some(PathBuf::from(s)))
    }

    fn bool(&self, option: &OptionSpec) -> Result<bool> {
        let Kind::Bool { default } = option.kind else {
            mismatch(option, "a bool")
        };
        self.get(option)
            .map_or(Ok(default), |v| to_bool(&self.label(option), v))
    }

    /// A list of strings; not set, it is empty (with or without the spec's `default: []`).
    fn str_list(&self, option: &OptionSpec) -> Result<Vec<String>> {
        let Kind::List {
            elements: Elements::Str,
            ..
        } = option.kind
        else {
            mismatch(option, "a list of strings")
        };
        self.get(option)
            .map_or(Ok(Vec::new()), |v| to_list(&self.label(option), v))
    }

    /// A list of dictionaries (`like` shows one, for the error); not set, it is empty. Each
    /// entry is read by its own `Given` of the option's sub-options.
    fn dict_list(&self, option: &OptionSpec, like: &str) -> Result<&'a [Value]> {
        let Kind::List {
            elements: Elements::Dict(_),
            ..
        } = option.kind
        else {
            mismatch(option, "a list of dictionaries")
        };
        match self.get(option) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => err(format!(
                "{} must be a list of {like}, got {}",
                self.label(option),
                type_name(other)
            )),
        }
    }

    /// A required option's value; missing, the error says what it takes (`takes`).
    fn required(&self, option: &OptionSpec, takes: &str) -> Result<&'a Value> {
        if !option.required {
            mismatch(option, "required");
        }
        self.get(option)
            .ok_or_else(|| ParamError(format!("{} is required ({takes})", self.label(option))))
    }
}

/// The parser reads `option` as `wanted`, and the table says otherwise: a bug of this file,
/// shown by every parse (`defaults_come_from_the_table`), never by a task's input alone.
fn mismatch(option: &OptionSpec, wanted: &str) -> ! {
    panic!(
        "the parser reads option {} as {wanted}, but OPTIONS says {:?} (required: {}); make them agree",
        option.name, option.kind, option.required
    )
}

/// `backend: iptables` keeps nothing in files: the policy must go to the running firewall, or
/// the task would report success and protect nothing.
fn ensure_backend_fits_apply(backend: Backend, apply: ApplyMode) -> Result<()> {
    match (backend, apply) {
        (Backend::Iptables, ApplyMode::Reload | ApplyMode::None) => err(
            "backend: iptables keeps the policy only in the running firewall, so apply must be \
             live (reload and none need UFW's after.rules)",
        ),
        _ => Ok(()),
    }
}

/// Rejects parameters the module does not know, in Ansible's own words, so that a typo such as
/// `trusted_network` fails instead of silently leaving a LAN blocked or the internet open.
fn ensure_only_supported(
    given: &BTreeMap<&str, &Value>,
    table: &[OptionSpec],
    prefix: &str,
) -> Result<()> {
    let unknown: Vec<String> = given
        .keys()
        .filter(|k| !table.iter().any(|o| o.name == **k))
        .map(|k| format!("{prefix}{k}"))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let mut names: Vec<&str> = table.iter().map(|o| o.name).collect();
    names.sort_unstable();
    err(format!(
        "Unsupported parameters for ({MODULE_NAME}) module: {}. Supported parameters include: {}.",
        unknown.join(", "),
        names.join(", ")
    ))
}

fn allow_entry(index: usize, item: &Value, warnings: &mut Vec<String>) -> Result<Allow> {
    let name = format!("allow[{index}]");
    let Value::Object(obj) = item else {
        return err(format!(
            "{name} must be a dictionary like {{port: 8080, proto: tcp}}, got {}",
            type_name(item)
        ));
    };
    let fields: BTreeMap<&str, &Value> = obj.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let given = Given::new(fields, ALLOW_OPTIONS, format!("{name}."))?;

    let port = port_param(
        &given.label(&opt::PORT),
        given.required(&opt::PORT, "a port like 8080 or a range like 8000:8100")?,
    )?;
    let proto: Proto = given.choice(&opt::PROTO)?;
    let from_name = given.label(&opt::FROM);
    let from = given
        .str_list(&opt::FROM)?
        .iter()
        .map(|s| cidr_param(&from_name, s, warnings))
        .collect::<Result<Vec<_>>>()?;
    let comment = match given.optional_str(&opt::COMMENT)? {
        None => None,
        Some(c) => {
            ensure_comment_is_safe(&given.label(&opt::COMMENT), &c)?;
            Some(c).filter(|c| !c.is_empty())
        }
    };
    Ok(Allow {
        port,
        proto,
        from,
        comment,
    })
}

/// A port is a number or a `start:end` string, as Ansible's own firewall modules take it.
pub(crate) fn port_param(name: &str, value: &Value) -> Result<PortRange> {
    let text = match value {
        Value::Number(n) if n.is_u64() || n.is_i64() => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        other => {
            return err(format!(
                "{name} must be a port number or a range like 8000:8100, got {}",
                type_name(other)
            ))
        }
    };
    let one = |s: &str| -> Result<u16> {
        let n: u64 = s.parse().map_err(|_| {
            ParamError(format!(
                "{name} '{text}' is not a port: use a number 1-65535 or a range like 8000:8100"
            ))
        })?;
        match u16::try_from(n) {
            Ok(p) if p >= 1 => Ok(p),
            _ => err(format!("{name} {n} is outside 1-65535")),
        }
    };
    let range = match text.split_once(':') {
        None => {
            let p = one(&text)?;
            PortRange { start: p, end: p }
        }
        Some((a, b)) => PortRange {
            start: one(a)?,
            end: one(b)?,
        },
    };
    if range.start > range.end {
        return err(format!(
            "{name} '{text}' is a reversed range: write the lower port first ({}:{})",
            range.end, range.start
        ));
    }
    Ok(range)
}

/// A CIDR (or a bare address, taken as a host). Host bits are cleared, as iptables would do
/// silently, but with a warning so the operator sees what is really matched.
pub(crate) fn cidr_param(name: &str, text: &str, warnings: &mut Vec<String>) -> Result<IpNet> {
    let t = text.trim();
    let parsed = t
        .parse::<IpNet>()
        .or_else(|_| t.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| {
            ParamError(format!(
                "{name}: '{t}' is not a CIDR; use an address or network such as \
                 192.0.2.0/24 or 2001:db8::/32"
            ))
        })?;
    let net = parsed.trunc();
    if net != parsed {
        warnings.push(format!(
            "{name}: {parsed} has host bits set; it matches the whole network {net}"
        ));
    }
    Ok(net)
}

/// Characters that may appear in text the module writes inside a rule (comments, log prefix).
/// Quotes and backslashes would let the text end its own quoting in iptables-restore input;
/// control characters (a newline above all) would start a new rule or a `COMMIT` line.
fn rule_text_problem(s: &str) -> Option<String> {
    for c in s.chars() {
        match c {
            '"' | '\'' | '\\' | '`' => return Some(format!("contains the character {c}")),
            c if c.is_control() => return Some("contains a newline or control character".into()),
            c if !c.is_ascii() => return Some(format!("contains the non-ASCII character {c}")),
            _ => {}
        }
    }
    None
}

/// The log prefix lands, quoted, in after.rules and in the live chain.
fn ensure_log_prefix_is_safe(prefix: &str) -> Result<()> {
    if let Some(problem) = rule_text_problem(prefix) {
        return err(format!(
            "log_prefix {problem}; it is written into after.rules and must be plain printable \
             ASCII without quotes or backslashes"
        ));
    }
    if prefix.len() > MAX_LOG_PREFIX_LEN {
        return err(format!(
            "log_prefix is {} characters; the kernel's LOG target takes at most {MAX_LOG_PREFIX_LEN}",
            prefix.len()
        ));
    }
    Ok(())
}

/// An `allow` comment lands, quoted, in after.rules and in the live chain.
fn ensure_comment_is_safe(name: &str, comment: &str) -> Result<()> {
    if let Some(problem) = rule_text_problem(comment) {
        return err(format!(
            "{name} {problem}; comments are written into after.rules and must be plain \
             printable ASCII without quotes or backslashes"
        ));
    }
    if comment.len() > MAX_COMMENT_LEN {
        return err(format!(
            "{name} is {} characters long; at most {MAX_COMMENT_LEN} fit in a rule comment",
            comment.len()
        ));
    }
    Ok(())
}

fn choice_msg(name: &str, got: &str, choices: &[&str]) -> String {
    format!(
        "value of {name} must be one of: {}, got: {got}",
        choices.join(", ")
    )
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a dictionary",
    }
}

/// Ansible's boolean coercion (`yes`, `on`, `1`, `true`, ...), case-insensitive.
fn to_bool(name: &str, v: &Value) -> Result<bool> {
    let text = match v {
        Value::Bool(b) => return Ok(*b),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_ascii_lowercase(),
        other => {
            return err(format!(
                "{name} must be a boolean (true/false, yes/no), got {}",
                type_name(other)
            ))
        }
    };
    match text.as_str() {
        "y" | "yes" | "on" | "1" | "1.0" | "true" | "t" => Ok(true),
        "n" | "no" | "off" | "0" | "0.0" | "false" | "f" => Ok(false),
        _ => err(format!(
            "{name} must be a boolean (true/false, yes/no), got '{text}'"
        )),
    }
}

/// Ansible's string coercion: numbers and booleans become their text; lists and dicts fail.
fn to_str(name: &str, v: &Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(if *b { "True" } else { "False" }.to_string()),
        other => err(format!("{name} must be a string, got {}", type_name(other))),
    }
}

/// Ansible's list coercion: a list stays a list (of strings), a string is split on commas,
/// a number becomes a one-item list.
fn to_list(name: &str, v: &Value) -> Result<Vec<String>> {
    match v {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                other => err(format!(
                    "{name}[{i}] must be a string, got {}",
                    type_name(other)
                )),
            })
            .collect(),
        Value::String(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()),
        Value::Number(n) => Ok(vec![n.to_string()]),
        other => err(format!("{name} must be a list, got {}", type_name(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Parsed> {
        parse_args(json)
    }

    fn params(json: &str) -> Params {
        parse(json).expect("parses").params
    }

    fn fails_with(json: &str, needle: &str) {
        match parse(json) {
            Ok(p) => panic!("expected failure containing {needle:?}, parsed {p:?}"),
            Err(e) => assert!(e.0.contains(needle), "message {:?} lacks {needle:?}", e.0),
        }
    }

    #[test]
    fn docker_host_is_a_local_socket_or_not_set() {
        assert_eq!(params("{}").docker_host, None);
        assert_eq!(params(r#"{"docker_host": ""}"#).docker_host, None);
        assert_eq!(
            params(r#"{"docker_host": "unix:///run/docker.sock"}"#).docker_host,
            Some("unix:///run/docker.sock".into())
        );
        fails_with(
            r#"{"docker_host": "tcp://10.0.0.1:2375"}"#,
            "only a local socket (unix:///path/to/docker.sock) is",
        );
        fails_with(
            r#"{"docker_host": "unix://docker.sock"}"#,
            "no absolute socket path",
        );
    }

    #[test]
    fn defaults_match_the_documented_table() {
        let p = params("{}");
        assert_eq!(p.state, State::Present);
        assert_eq!(p.after_rules, PathBuf::from("/etc/ufw/after.rules"));
        assert_eq!(p.after6_rules, PathBuf::from("/etc/ufw/after6.rules"));
        assert_eq!(
            p.unit_path,
            PathBuf::from("/etc/systemd/system/ufw-docker.service")
        );
        assert!(p.ipv6 && p.ufw_route_rules && p.log && p.validate && !p.backup);
        assert_eq!(p.log_prefix, "[UFW DOCKER BLOCK] ");
        assert_eq!(p.log_limit.to_string(), "3/min");
        assert_eq!(p.apply, ApplyMode::Live);
        assert!(p.allow.is_empty() && p.trusted_networks.is_empty());
    }

    /// `src/options.json` is the table, for scripts/check-options.py, which compares it with the
    /// collection's argument spec, the module's DOCUMENTATION, the README and the role.
    #[test]
    fn options_json_is_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/options.json");
        let table = argument_spec_json(OPTIONS);
        let text = format!("{}\n", serde_json::to_string_pretty(&table).unwrap());
        if std::env::var_os("UFW_DOCKER_WRITE_OPTIONS").is_some() {
            std::fs::write(path, &text).unwrap();
        }
        let file = std::fs::read_to_string(path).unwrap_or_default();
        let parsed: Option<Value> = serde_json::from_str(&file).ok();
        assert!(
            parsed.as_ref() == Some(&table),
            "{path} is not the option table of src/params.rs (OPTIONS). Rewrite it with \
             `UFW_DOCKER_WRITE_OPTIONS=1 cargo test --lib options_json`, then change the \
             option's other homes until scripts/check-options.py passes. The table:\n{text}"
        );
    }

    #[test]
    fn choices_are_the_enums_names() {
        fn names<T: Choice>() -> Vec<&'static str> {
            T::ALL.iter().map(|v| v.name()).collect()
        }
        fn choices(option: &OptionSpec) -> &'static [&'static str] {
            match option.kind {
                Kind::Str { choices, .. } => choices,
                other => panic!("{} is {other:?}", option.name),
            }
        }
        assert_eq!(choices(&opt::STATE), names::<State>());
        assert_eq!(choices(&opt::APPLY), names::<ApplyMode>());
        assert_eq!(choices(&opt::BACKEND), names::<Backend>());
        assert_eq!(choices(&opt::PROTO), names::<Proto>());
        // Every choice option is one of those four.
        let mut with_choices: Vec<&str> = OPTIONS
            .iter()
            .chain(ALLOW_OPTIONS)
            .filter(|o| matches!(o.kind, Kind::Str { choices, .. } if !choices.is_empty()))
            .map(|o| o.name)
            .collect();
        with_choices.sort_unstable();
        assert_eq!(with_choices, ["apply", "backend", "proto", "state"]);
    }

    /// An option in the table that the parser never read would be accepted and ignored: each
    /// one, given a dictionary (no option's type takes one at that level), must fail under its
    /// own name.
    #[test]
    fn the_parser_reads_every_option_in_the_table() {
        for o in OPTIONS {
            fails_with(&format!(r#"{{"{}": {{"x": 1}}}}"#, o.name), o.name);
        }
        for o in ALLOW_OPTIONS {
            let port = if o.name == "port" {
                ""
            } else {
                r#""port": 80, "#
            };
            fails_with(
                &format!(r#"{{"allow": [{{{port}"{}": {{"x": 1}}}}]}}"#, o.name),
                &format!("allow[0].{}", o.name),
            );
        }
    }

    /// What Ansible would reject in an argument spec, and what the parser cannot read.
    #[test]
    fn the_table_is_consistent() {
        for table in [OPTIONS, ALLOW_OPTIONS] {
            let mut names: Vec<&str> = table.iter().map(|o| o.name).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), table.len(), "a name twice in {table:?}");
            for o in table {
                if let Kind::Str {
                    choices,
                    default: Some(d),
                } = o.kind
                {
                    assert!(choices.is_empty() || choices.contains(&d), "{}", o.name);
                }
                let has_default = match o.kind {
                    Kind::Str { default, .. } => default.is_some(),
                    Kind::Path { .. } | Kind::Bool { .. } => true,
                    Kind::Raw => false,
                    Kind::List { default_empty, .. } => default_empty,
                };
                assert!(
                    !(o.required && has_default),
                    "{} is required with a default",
                    o.name
                );
            }
        }
    }

    #[test]
    fn ansible_internal_keys_set_the_mode_and_unknown_ones_are_ignored() {
        let parsed = parse(
            r#"{"_ansible_check_mode": true, "_ansible_diff": "yes",
                "_ansible_future_thing": [1], "_ansible_verbosity": 3}"#,
        )
        .unwrap();
        assert!(parsed.invocation.check_mode);
        assert!(parsed.invocation.diff);
    }

    #[test]
    fn booleans_are_coerced_like_ansible() {
        for yes in [r#""yes""#, r#""True""#, "1", r#""on""#, "true", r#""1""#] {
            assert!(params(&format!(r#"{{"backup": {yes}}}"#)).backup, "{yes}");
        }
        for no in [r#""no""#, r#""False""#, "0", r#""off""#, "false"] {
            assert!(!params(&format!(r#"{{"ipv6": {no}}}"#)).ipv6, "{no}");
        }
        fails_with(r#"{"backup": "maybe"}"#, "backup must be a boolean");
        fails_with(r#"{"backup": [true]}"#, "backup must be a boolean");
    }

    #[test]
    fn unknown_parameters_fail_in_ansibles_words() {
        fails_with(
            r#"{"trusted_network": ["10.0.0.0/8"]}"#,
            "Unsupported parameters for (ufw_docker) module: trusted_network. Supported parameters include: after6_rules, after_rules, allow,",
        );
        fails_with(
            r#"{"allow": [{"port": 80, "protocol": "tcp"}]}"#,
            "Unsupported parameters for (ufw_docker) module: allow[0].protocol",
        );
    }

    #[test]
    fn ports_accept_numbers_strings_and_ranges() {
        let p = params(
            r#"{"allow": [{"port": 80}, {"port": "8080", "proto": "udp"},
                          {"port": "8000:8100"}, {"port": "9000:9000"}]}"#,
        );
        let ports: Vec<String> = p.allow.iter().map(|a| a.port.to_string()).collect();
        assert_eq!(ports, ["80", "8080", "8000:8100", "9000"]);
        assert_eq!(p.allow[0].proto, Proto::Tcp);
        assert_eq!(p.allow[1].proto, Proto::Udp);
    }

    #[test]
    fn bad_ports_fail_with_the_reason() {
        fails_with(r#"{"allow": [{"port": 0}]}"#, "outside 1-65535");
        fails_with(r#"{"allow": [{"port": 65536}]}"#, "outside 1-65535");
        fails_with(r#"{"allow": [{"port": -1}]}"#, "is not a port");
        fails_with(r#"{"allow": [{"port": "9000:8000"}]}"#, "reversed range");
        fails_with(r#"{"allow": [{"port": "80 -j ACCEPT"}]}"#, "is not a port");
        fails_with(r#"{"allow": [{"port": 80.5}]}"#, "must be a port number");
        fails_with(
            r#"{"allow": [{"proto": "tcp"}]}"#,
            "allow[0].port is required",
        );
        fails_with(
            r#"{"allow": [{"port": 80, "proto": "sctp"}]}"#,
            "must be one of: tcp, udp",
        );
        fails_with(r#"{"allow": {"port": 80}}"#, "allow must be a list");
        fails_with(r#"{"allow": ["80/tcp"]}"#, "allow[0] must be a dictionary");
    }

    #[test]
    fn cidrs_are_validated_and_normalised() {
        let parsed = parse(
            r#"{"trusted_networks": "192.168.1.7/24, 2001:DB8::/32",
                "allow": [{"port": 443, "from": ["198.51.100.0/24", "203.0.113.9"]}]}"#,
        )
        .unwrap();
        let nets: Vec<String> = parsed
            .params
            .trusted_networks
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(nets, ["192.168.1.0/24", "2001:db8::/32"]);
        assert_eq!(parsed.params.allow[0].from[1].to_string(), "203.0.113.9/32");
        assert!(parsed.warnings.iter().any(|w| w.contains("host bits")));
        fails_with(r#"{"trusted_networks": ["10.0.0.0/33"]}"#, "is not a CIDR");
        fails_with(r#"{"trusted_networks": ["lan"]}"#, "is not a CIDR");
        fails_with(
            r#"{"allow": [{"port": 1, "from": ["1.2.3.4 -j ACCEPT"]}]}"#,
            "is not a CIDR",
        );
    }

    #[test]
    fn rule_text_cannot_inject_rules() {
        for bad in [
            r#""web\n-A DOCKER-USER -j ACCEPT""#,
            r#""web\" -j ACCEPT \"""#,
            r#""web' -j ACCEPT""#,
            r#""a\\""#,
            r#""x\nCOMMIT""#,
            r#""tab\there""#,
        ] {
            fails_with(
                &format!(r#"{{"allow": [{{"port": 80, "comment": {bad}}}]}}"#),
                "allow[0].comment contains",
            );
            fails_with(
                &format!(r#"{{"log_prefix": {bad}}}"#),
                "log_prefix contains",
            );
        }
        fails_with(
            r#"{"log_prefix": "this prefix is far too long for LOG"}"#,
            "at most 29",
        );
        // A fragment that stays inside the quotes is only text.
        let p = params(r#"{"allow": [{"port": 80, "comment": "web -j ACCEPT COMMIT"}]}"#);
        assert_eq!(p.allow[0].comment.as_deref(), Some("web -j ACCEPT COMMIT"));
    }

    #[test]
    fn choices_and_paths_are_checked() {
        fails_with(
            r#"{"state": "enabled"}"#,
            "value of state must be one of: present, absent",
        );
        fails_with(
            r#"{"apply": "restart"}"#,
            "value of apply must be one of: live, reload, none",
        );
        fails_with(
            r#"{"after_rules": "after.rules"}"#,
            "must be an absolute path",
        );
        fails_with(r#"{"log_limit": "fast"}"#, "log_limit");
        fails_with(r#"{"log_limit": "0/min"}"#, "log_limit");
        assert_eq!(params(r#"{"apply": "none"}"#).apply, ApplyMode::None);
        fails_with(
            r#"{"backend": "nft"}"#,
            "value of backend must be one of: ufw, iptables",
        );
        fails_with(
            r#"{"backend": "iptables", "apply": "reload"}"#,
            "apply must be live",
        );
        let no_ufw = params(r#"{"backend": "iptables"}"#);
        assert_eq!(no_ufw.backend, Backend::Iptables);
        assert!(!no_ufw.ufw_route_rules, "no UFW, no route rules");
        assert_eq!(params(r#"{"state": "absent"}"#).state, State::Absent);
    }

    #[test]
    fn malformed_json_is_a_clear_error() {
        fails_with("{not json", "not valid JSON");
        fails_with("[1,2]", "must be a JSON object");
    }

    #[test]
    fn wrapped_module_args_are_accepted() {
        let p = params(r#"{"ANSIBLE_MODULE_ARGS": {"state": "absent"}}"#);
        assert_eq!(p.state, State::Absent);
    }
}
