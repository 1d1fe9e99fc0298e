//! Owned by the harness.
fn main() {}
