//! See the crate docs; implemented by its owner.
