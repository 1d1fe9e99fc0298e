//! The committed JSON Schemas must match the types. `UPDATE_SCHEMA=1` rewrites them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

fn check(name: &str, schema: serde_json::Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("schema")
        .join(name);
    let rendered = serde_json::to_string_pretty(&schema).unwrap() + "\n";
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run UPDATE_SCHEMA=1 cargo test -p model --test schema",
            path.display()
        )
    });
    assert!(
        committed == rendered,
        "{} drifted from the model types; run UPDATE_SCHEMA=1 cargo test -p model --test schema and commit",
        path.display()
    );
}

#[test]
fn snapshot_schema_is_committed() {
    check("snapshot.v1.schema.json", model::schema::snapshot_schema());
}

// report.v1.schema.json is checked in `analysis/tests/report_schema.rs`:
// its facts type is `analysis::Facts`, which this crate cannot name.

#[test]
fn report_schema_names_the_report_fields() {
    let v = model::schema::report_schema_for::<serde_json::Value>();
    let required: Vec<&str> = v["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(required, ["fail_on", "exit_code", "nodes", "input_errors"]);
    assert_eq!(v["title"], "AnalyzeReport");
}

#[test]
fn fleet_schema_is_committed() {
    check("fleet.v1.schema.json", model::schema::fleet_schema());
}

#[test]
fn unknown_fields_are_accepted_and_version_checked() {
    let doc = r#"{"schema_version":1,"hostname":"n1","future_field":{"x":1},
        "routes":{"status":"ok","data":[],"new_thing":true}}"#;
    let s = model::Snapshot::from_json(doc).unwrap();
    assert_eq!(s.hostname, "n1");
    assert_eq!(s.routes.status, model::SectionStatus::Ok);
    let err = model::Snapshot::from_json(r#"{"schema_version":7}"#).unwrap_err();
    assert!(err.to_string().contains("schema_version 7"));
    assert!(model::Snapshot::from_json(r#"{"x":1}"#).is_err());
}

#[test]
fn trace_schema_is_committed() {
    check("trace.v1.schema.json", model::trace::trace_schema());
}
