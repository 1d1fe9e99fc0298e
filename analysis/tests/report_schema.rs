//! `model/schema/report.v1.schema.json` is the schema of the report with the analysis' facts
//! (what `diag analyze -o json` prints). `UPDATE_SCHEMA=1` rewrites it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[test]
fn report_schema_is_committed() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/schema/report.v1.schema.json");
    let schema = model::schema::report_schema_for::<analysis::Facts>();
    let rendered = serde_json::to_string_pretty(&schema).unwrap() + "\n";
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == rendered,
        "{} drifted from the report types; run UPDATE_SCHEMA=1 cargo test -p analysis --test report_schema and commit",
        path.display()
    );
}
