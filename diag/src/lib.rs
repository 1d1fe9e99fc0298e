//! `diag`: the operator CLI as a library. Parsing is in [`cli`], behaviour in [`commands`],
//! inputs in [`input`], output in [`render`]; `main.rs` only parses and exits.

pub mod check;
pub mod cli;
pub mod commands;
pub mod input;
pub mod render;

/// Parse the command line, run it and return the process exit code.
pub fn run_cli() -> i32 {
    use clap::Parser;
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("diag: {e:#}");
            commands::EXIT_BAD_INPUT
        }
    }
}
