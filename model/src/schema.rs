//! JSON Schema of the snapshot and of the analysis output, generated from the types.
//!
//! The committed copies live in `model/schema/`; tests fail when they drift. Regenerate
//! with `UPDATE_SCHEMA=1 cargo test -p model --test schema` (snapshot, fleet) and
//! `UPDATE_SCHEMA=1 cargo test -p analysis --test report_schema` (report: its facts type lives in
//! `analysis`).

use schemars::JsonSchema;

/// Schema of [`crate::Snapshot`].
pub fn snapshot_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(crate::Snapshot)).unwrap_or_default()
}

/// Schema of [`crate::report::AnalyzeReport`] with facts of type `F` (what
/// `diag analyze -o json` prints; `diag` uses `analysis::Facts`).
pub fn report_schema_for<F: JsonSchema>() -> serde_json::Value {
    let mut v = serde_json::to_value(schemars::schema_for!(crate::report::AnalyzeReport<F>))
        .unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        // A stable title: schemars names a generic type after its parameter.
        o.insert("title".into(), "AnalyzeReport".into());
    }
    v
}

/// Schema of [`crate::FleetReport`] (`fleet.json`).
pub fn fleet_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(crate::FleetReport)).unwrap_or_default()
}
