//! `diag trace`: the packet-path explainer (`analysis::trace`) on every node read.

use std::net::{IpAddr, SocketAddr};

use clap::{Args, ValueEnum};
use model::trace::{NodeTrace, PacketTrace, TraceInputError, TraceReport};

use crate::cli::{Format, InputOpts, SourceArgs};
use crate::render::trace as r;

use super::{
    emit, load, note_errors, source_inputs, split, Out, EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK,
};

pub const TRACE_HELP: &str = "\
For each node: the path the first packet of the flow takes, in kernel order — mangle/nat
PREROUTING (the connmark the AWS rules set and the packet mark restored from it), the ip rules
by priority and why each matches or not, the table and route chosen, nat POSTROUTING (KUBE-,
AWS-SNAT-CHAIN-*, RETURNs, the SNAT rule) in every iptables backend that holds rules, the
source after NAT — then the reply (the ENI it arrives on, effective rp_filter, the route back
to the pod) and the later packets of the flow, whose mark comes only from the mangle restore.
Every step names its evidence line. Conntrack entries of the flow in the input are compared
with the prediction: a mismatch is a finding.

--src a pod IP (its host veth is found from the routes) traces egress; --src outside and
--dst a pod traces an inbound connection (NLB IP target on the pod's ENI; with --iif another
ENI, NodePort / instance target traffic DNATed from the node address).

Examples:
  diag trace --local --src 10.0.3.21 --dst 198.51.100.7:443
  diag trace --from captures/node-a/ --src 10.0.3.21 --dst 10.0.40.5 --dst 172.16.0.9 -o markdown
  diag trace --from out/fleet/ --all-pods --dst 198.51.100.7      # which pods are affected
  diag trace --hosts nodes.txt --src 203.0.113.9 --dst 10.0.3.21:8080 --iif eth0 -o json

Exit codes: 0 every flow is delivered, its replies accepted and conntrack agrees; 1 a flow is
dropped, its replies are, or the path has a finding; 2 bad input or nothing traced.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
}

/// `diag trace`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    #[command(flatten)]
    pub source: SourceArgs,

    /// Source address: a pod IP, a node address, or a remote client (inbound to a pod).
    #[arg(long, value_name = "IP", required_unless_present = "all_pods")]
    pub src: Option<IpAddr>,

    /// Destination IP or IP:PORT; repeatable.
    #[arg(long, value_name = "IP[:PORT]", required = true, value_parser = parse_dst)]
    pub dst: Vec<(IpAddr, Option<u16>)>,

    /// Protocol (default: tcp with a port, icmp without).
    #[arg(long, value_enum)]
    pub proto: Option<Proto>,

    /// Interface the first packet arrives on (default: the pod's veth, or for inbound traffic
    /// the ENI holding the pod IP).
    #[arg(long, value_name = "IFACE")]
    pub iif: Option<String>,

    /// Packet mark the first packet arrives with (hex, e.g. 0x80).
    #[arg(long, value_name = "HEX", value_parser = parse_mark)]
    pub mark: Option<u32>,

    /// Trace every pod of each node to --dst and group the pods by outcome.
    #[arg(long, conflicts_with_all = ["src", "iif", "mark"])]
    pub all_pods: bool,

    #[command(flatten)]
    pub input: InputOpts,
}

fn parse_dst(s: &str) -> Result<(IpAddr, Option<u16>), String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    s.parse::<SocketAddr>()
        .map(|sa| (sa.ip(), Some(sa.port())))
        .map_err(|_| format!("'{s}' is not an IP or IP:PORT (IPv6 with a port: [addr]:port)"))
}

fn parse_mark(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => u32::from_str_radix(t, 16),
    };
    r.map_err(|_| format!("'{s}' is not a hex mark (e.g. 0x80)"))
}

fn proto_name(p: Option<Proto>, port: Option<u16>) -> &'static str {
    match (p, port) {
        (Some(Proto::Tcp), _) | (None, Some(_)) => "tcp",
        (Some(Proto::Udp), _) => "udp",
        (Some(Proto::Icmp), _) | (None, None) => "icmp",
    }
}

/// A flow that needs attention: dropped, replies dropped, or a finding on the path.
fn failing(t: &PacketTrace) -> bool {
    t.route.drop.is_some() || t.reply_accepted == Some(false) || !t.findings.is_empty()
}

pub fn run(args: TraceArgs, out: Out) -> anyhow::Result<i32> {
    let report = build(&args, out);
    note_errors(
        out,
        &report
            .input_errors
            .iter()
            .map(|e| crate::render::analyze::InputProblem {
                input: e.input.clone(),
                error: e.error.clone(),
            })
            .collect::<Vec<_>>(),
    );
    emit(&match out.format {
        Format::Text => r::text(&report, out.style, out.quiet),
        Format::Json => crate::render::json(&report)?,
        Format::Markdown => r::markdown(&report),
    })?;
    Ok(report.exit_code)
}

fn build(args: &TraceArgs, out: Out) -> TraceReport {
    let mut report = TraceReport::default();
    let sources = match source_inputs(&args.source, &args.input, out, &mut None) {
        Ok(s) => s,
        Err(e) => {
            report.input_errors.push(TraceInputError {
                input: "arguments".into(),
                error: format!("{e:#}"),
            });
            report.exit_code = EXIT_BAD_INPUT;
            return report;
        }
    };
    let sp = split(load(sources.inputs, &args.input));
    report
        .input_errors
        .extend(sp.errors.into_iter().map(|e| TraceInputError {
            input: e.input,
            error: e.error,
        }));
    for (label, snap, problems) in &sp.nodes {
        report
            .input_errors
            .extend(problems.iter().map(|p| TraceInputError {
                input: label.clone(),
                error: p.clone(),
            }));
        let mut node = NodeTrace {
            node: snap.display_name(),
            ..Default::default()
        };
        let facts = analysis::Facts::from_snapshot(snap);
        for (dst, port) in &args.dst {
            let proto = proto_name(args.proto, *port);
            if args.all_pods {
                let (traces, groups) = analysis::trace::trace_all_pods(snap, *dst, proto, *port);
                node.traces.extend(traces);
                node.groups.extend(groups);
            } else if let Some(src) = args.src {
                let mut req = analysis::trace::TraceRequest::new(src, *dst);
                req.proto = proto.to_string();
                req.dport = *port;
                req.iif = args.iif.clone();
                req.mark = args.mark;
                node.traces
                    .push(analysis::trace::trace_with(snap, &facts, &req));
            }
        }
        report.nodes.push(node);
    }
    let bad = report.nodes.iter().flat_map(|n| &n.traces).any(failing);
    report.exit_code = if !report.input_errors.is_empty() || report.nodes.is_empty() {
        EXIT_BAD_INPUT
    } else if bad {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    };
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dst_and_mark_parse() {
        assert_eq!(
            parse_dst("198.51.100.7:443"),
            Ok(("198.51.100.7".parse().unwrap(), Some(443)))
        );
        assert_eq!(
            parse_dst("10.0.0.1"),
            Ok(("10.0.0.1".parse().unwrap(), None))
        );
        assert!(parse_dst("10.0.0.1:x").is_err());
        assert_eq!(parse_mark("0x80"), Ok(0x80));
        assert_eq!(parse_mark("80"), Ok(0x80));
        assert!(parse_mark("zz").is_err());
        assert_eq!(proto_name(None, Some(1)), "tcp");
        assert_eq!(proto_name(None, None), "icmp");
    }
}
