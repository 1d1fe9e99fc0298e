//! `node-agent`: the CLI lives in `node_agent::cli`.

fn main() -> std::process::ExitCode {
    node_agent::cli::main()
}
