//! Fleet runner as a plain library: picks the nodes (hosts file, ssh_config, EC2 tags,
//! instance ids), reaches them through a [`Transport`] (SSH through russh, or SSM), runs the
//! collection (installed agent, pushed agent, or agentless commands) and yields one
//! [`model::NodeOutcome`] per node as a stream of [`FleetEvent`]s.
//!
//! - [`FleetSpec`]: targets and run options, a plain value (`diag` builds it from its flags);
//! - [`FleetSpec::resolve_targets`] and [`FleetSpec::transport`], then [`run`] for the event
//!   stream, or [`gather`] for every result at once;
//! - [`report::CollectDir`]: the `diag collect` directory (snapshots as they arrive, then
//!   `fleet.json`).

pub mod agentless;
pub mod ec2;
pub mod outcome;
pub mod quote;
pub mod report;
pub mod runner;
pub mod spec;
pub mod ssh;
pub mod ssm;
pub mod targets;

use std::sync::Arc;

pub use quote::{shell_join, shell_quote};
pub use runner::{run, EventSink, FleetEvent, FleetRun, NodeResult, RawOutput, Transport};
pub use spec::{AnyTransport, FleetError, FleetSpec, TargetSpec, TransportKind};

/// Resolves the targets of `spec` and collects every one; results in target order. Fails
/// only when the run cannot start (bad options, no targets); node failures are outcomes.
pub async fn gather(spec: &FleetSpec) -> Result<Vec<NodeResult>, FleetError> {
    let targets = spec.resolve_targets().await?;
    if targets.is_empty() {
        return Err(FleetError::NoTargets);
    }
    let transport = Arc::new(spec.transport().await?);
    Ok(run(transport, targets).collect_all().await)
}
