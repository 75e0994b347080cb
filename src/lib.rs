//! ufw_docker: an Ansible binary module that keeps ports published by Docker behind UFW.
//!
//! Docker publishes ports with DNAT and FORWARD rules that run before UFW's chains, so
//! `ufw default deny incoming` does not protect them. The module writes a policy into the
//! `DOCKER-USER` chain (which Docker evaluates first and never rewrites), both live and in UFW's
//! `after.rules`/`after6.rules` so that it survives `ufw reload` and reboots.
//!
//! The crate is a functional core with an imperative shell: `params`, `rules`, `policy`, `fold`,
//! `evaluator`, `after_rules`, `live`, `exposure`, `docker`, `plan`, `policy_file`, `command_file`
//! and `status` are pure; `host` is the only interface to the machine; `apply` carries out a plan through it;
//! `module` ties one run together; `main` speaks Ansible's protocol, or hands a command line to
//! `cli` (the verbs), which `commands` carries out on the policy file (`policy_file`) by running
//! the module, printing through `status`. `rules` is the vocabulary the others build on:
//! `policy` assembles its rules into chains, `fold` into trees, `evaluator` walks them for a
//! packet (for `exposure` and the folding measurements); it imports none of them. `pool` is the
//! binary's memory allocator.

pub mod after_rules;
pub mod apply;
pub mod cli;
pub mod command_file;
pub mod commands;
pub mod docker;
pub mod docker_api;
pub mod evaluator;
pub mod exposure;
/// A `Host` in memory for unit tests of `apply` and `module` (see src/host.rs).
#[cfg(test)]
pub(crate) mod fake_host;
pub mod fold;
pub mod host;
pub mod limit;
pub mod live;
pub mod module;
pub mod params;
pub mod plan;
pub mod policy;
pub mod policy_file;
pub mod pool;
pub mod rules;
pub mod status;
