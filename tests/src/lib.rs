//! Test support: emulated EKS nodes in network namespaces, IMDS/ipamd doubles, sshd fleets.
//!
//! Everything created here is named uniquely per test and torn down on drop.

pub mod doubles;
pub mod netns;
pub mod node;
pub mod sshd;
