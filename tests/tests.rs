//! Integration tests: the built binary, run the way Ansible runs it.

/// Fault injection: full and read-only file systems, symlinks, the xtables lock, the run lock,
/// concurrent runs, SIGKILL at many points.
mod faults;
/// Long lists folded into sub-chains: a thousand entries apply, rerun, shrink and go.
mod folding;
/// Namespaces, fixtures, and running the module with an args file.
mod harness;
/// Real iptables (nft and legacy) in throwaway namespaces: check mode, apply, idempotence,
/// absent, rollback, adoption, every bad input leaving the host untouched.
mod live_apply;
/// Generated parameters against the real iptables-restore --test: everything loads, nothing
/// is injected.
mod properties;
/// The binary-module protocol: args file or stdin, one JSON object out, exit codes, bad input.
mod protocol;
/// Every input fuzzing ever kept, replayed through the fuzz checks.
mod regressions;
/// Commands, root, the iptables backend and the /etc that pins it per namespace: shared with
/// the Docker lab (tests/bed.rs, examples/lab.rs).
mod support;
/// Real UFW in a namespace: `apply: reload`, route rules, and `ufw reload` keeping the block.
mod with_ufw;
