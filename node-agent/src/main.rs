//! `node-agent`: the CLI lives in `node_agent::cli`.

fn main() -> std::process::ExitCode {
    let code = node_agent::cli::main();
    // For benchmarks: the agent's own peak RSS (VmHWM), which GNU time cannot tell apart from
    // its largest child's (`iptables-nft-save` alone needs ~125 MB at 100k rules).
    if std::env::var_os("NODE_AGENT_REPORT_PEAK_RSS").is_some() {
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            if let Some(l) = status.lines().find(|l| l.starts_with("VmHWM:")) {
                eprintln!(
                    "node-agent: own peak RSS {}",
                    l.trim_start_matches("VmHWM:").trim()
                );
            }
        }
    }
    code
}
