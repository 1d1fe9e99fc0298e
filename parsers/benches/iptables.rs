//! Benchmark placeholder until its owner lands it.
fn main() {}
