//! `diag`: the operator CLI. Parsing is in [`cli`], behaviour in [`commands`], inputs in
//! [`input`], output in [`render`].

mod check;
mod cli;
mod commands;
mod input;
mod render;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("diag: {e:#}");
            commands::EXIT_BAD_INPUT
        }
    };
    std::process::exit(code);
}
