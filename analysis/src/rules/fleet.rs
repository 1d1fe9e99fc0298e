//! Cross-node rules: `fleet.config-drift`, `fleet.duplicate-pod-ip`.

use model::{Finding, Snapshot};

/// Run the fleet rules.
pub fn check(_snapshots: &[&Snapshot]) -> Vec<Finding> {
    Vec::new()
}
