//! Fleet runner: picks the nodes (hosts file, ssh_config, EC2 tags, instance ids), reaches
//! them (SSH through russh, or SSM), runs the collection (installed agent, pushed agent, or
//! agentless commands parsed here) and returns one [`model::NodeOutcome`] per node.
//!
//! Entry points for the `diag` binary:
//! - [`cli::TargetArgs`] / [`cli::CollectArgs`] (clap) and [`cli::run_collect`] for
//!   `diag collect`;
//! - [`gather`] for commands that analyse remote targets (`diag snat/check/analyze`);
//! - [`unreachable_findings`] to report the nodes that could not be collected.

pub mod agentless;
pub mod cli;
pub mod ec2;
pub mod outcome;
pub mod quote;
pub mod runner;
pub mod ssh;
pub mod ssm;
pub mod targets;

pub use cli::{gather, unreachable_findings, CollectArgs, TargetArgs};
pub use quote::{shell_join, shell_quote};
