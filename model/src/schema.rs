//! JSON Schema of the snapshot and of the analysis output, generated from the types.
//!
//! The committed copies live in `model/schema/`; a test fails when they drift. Regenerate
//! with `UPDATE_SCHEMA=1 cargo test -p model --test schema`.

/// Schema of [`crate::Snapshot`].
pub fn snapshot_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(crate::Snapshot)).unwrap_or_default()
}

/// Schema of a list of [`crate::NodeReport`] (analysis output).
pub fn report_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Vec<crate::NodeReport>)).unwrap_or_default()
}

/// Schema of [`crate::FleetReport`] (`fleet.json`).
pub fn fleet_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(crate::FleetReport)).unwrap_or_default()
}
