//! Owned by the harness; see lib.rs.
