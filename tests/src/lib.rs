//! Test support: emulated EKS nodes in network namespaces, IMDS/ipamd doubles, sshd fleets.
//!
//! Everything created here is named uniquely per test and torn down on drop.
//!
//! * [`netns`] — namespaces and the one process-spawning wrapper (timeouts, argv only).
//! * [`node`] — [`node::EksNode`]: the emulated worker node, its facts and fault injectors.
//! * [`doubles`] — IMDSv2 and ipamd introspection doubles (served by `cni-doubles`).
//! * [`agent`] — running `node-agent` in a node and reading the same state independently.
//! * [`daemon`] — `node-agent serve` in a node (killed on drop), its API, its RSS.
//! * [`sshd`] — sshd inside emulated nodes, for fleet tests.
//! * [`oracle`] — independent readers of kernel text (iptables-save, `conntrack -L`) for tests.
//! * [`prereq`] — the one CI-aware skip helper: a missing prerequisite skips locally, fails on CI.

pub mod agent;
pub mod daemon;
pub mod doubles;
pub mod netns;
pub mod node;
pub mod oracle;
pub mod prereq;
pub mod sshd;
