//! `diag`: the operator CLI. Everything lives in the `diag` library; see `diag/src/lib.rs`.

fn main() {
    std::process::exit(diag::run_cli());
}
