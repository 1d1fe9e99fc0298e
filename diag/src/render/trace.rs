//! `diag trace`: text and Markdown renderings of [`model::trace::TraceReport`].

use model::trace::{PacketTrace, TracePhase, TraceReport};
use model::Evidence;

use super::{hanging, md_code, md_inline, md_table, Style, WIDTH};

fn phase(p: TracePhase) -> &'static str {
    match p {
        TracePhase::Ingress => "ingress",
        TracePhase::Prerouting => "prerouting",
        TracePhase::Routing => "routing",
        TracePhase::Postrouting => "postrouting",
        TracePhase::Reply => "reply",
        TracePhase::Established => "later pkts",
        TracePhase::Observed => "conntrack",
    }
}

fn evidence_line(e: &Evidence) -> String {
    match &e.location {
        Some(l) => format!("{}   ({l})", e.text.replace('\t', " ")),
        None => e.text.replace('\t', " "),
    }
}

fn flow_head(t: &PacketTrace) -> String {
    let dst = match t.flow.dport {
        Some(p) => format!("{}:{p}", t.flow.dst),
        None => t.flow.dst.to_string(),
    };
    let mut s = format!("{} → {dst} ({})", t.flow.src, t.flow.proto);
    if let Some(v) = &t.pod_veth {
        s.push_str(&format!(", pod veth {v}"));
    }
    if let Some(m) = t.flow.mark {
        s.push_str(&format!(", --mark {m:#x}"));
    }
    s
}

fn bad(t: &PacketTrace) -> bool {
    t.route.drop.is_some() || t.reply_accepted == Some(false) || !t.findings.is_empty()
}

fn trace_text(t: &PacketTrace, st: Style, quiet: bool, out: &mut String) {
    out.push_str(&format!("  {}\n", st.bold(&flow_head(t))));
    if !quiet {
        for s in &t.steps {
            let head = format!("    {:<12}", phase(s.phase));
            out.push_str(&hanging(&head, 16, &s.decision, WIDTH));
            for e in &s.evidence {
                out.push_str(&format!(
                    "{}{}\n",
                    " ".repeat(18),
                    st.dim(&evidence_line(e))
                ));
            }
        }
    }
    for u in &t.unknowns {
        out.push_str(&hanging(
            &format!("    {:<12}", st.yellow("unknown")),
            16,
            u,
            WIDTH,
        ));
    }
    for f in &t.findings {
        out.push_str(&hanging(
            &format!("    {:<12}", st.red("finding")),
            16,
            f,
            WIDTH,
        ));
    }
    let v = if bad(t) {
        st.red(&t.verdict)
    } else {
        st.green(&t.verdict)
    };
    out.push_str(&format!("    verdict     {v}\n\n"));
}

pub fn text(r: &TraceReport, st: Style, quiet: bool) -> String {
    let mut out = String::new();
    for n in &r.nodes {
        out.push_str(&format!("{}\n", st.bold(&format!("== {} ==", n.node))));
        if !n.groups.is_empty() {
            for g in &n.groups {
                let pods: Vec<String> = g.pods.iter().map(|p| p.to_string()).collect();
                out.push_str(&format!(
                    "  {} pod(s) → {}: {}\n",
                    g.pods.len(),
                    g.dst,
                    g.outcome
                ));
                out.push_str(&hanging("      ", 6, &pods.join(" "), WIDTH));
            }
            out.push('\n');
            if quiet {
                continue;
            }
            for t in &n.traces {
                out.push_str(&format!("  {}\n", t.verdict));
            }
            out.push('\n');
            continue;
        }
        for t in &n.traces {
            trace_text(t, st, quiet, &mut out);
        }
    }
    for e in &r.input_errors {
        out.push_str(&format!(
            "{} {}: {}\n",
            st.red("input error"),
            e.input,
            e.error
        ));
    }
    if r.nodes.is_empty() && r.input_errors.is_empty() {
        out.push_str("no nodes traced\n");
    }
    out
}

pub fn markdown(r: &TraceReport) -> String {
    let mut out = String::from("# diag trace\n\n");
    for n in &r.nodes {
        out.push_str(&format!("## {}\n\n", n.node));
        if !n.groups.is_empty() {
            let rows: Vec<Vec<String>> = n
                .groups
                .iter()
                .map(|g| {
                    vec![
                        g.dst.to_string(),
                        g.outcome.clone(),
                        g.pods.len().to_string(),
                        g.pods
                            .iter()
                            .map(|p| p.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    ]
                })
                .collect();
            out.push_str(&md_table(
                &["destination", "outcome", "pods", "pod IPs"],
                &rows,
            ));
            out.push('\n');
            continue;
        }
        for t in &n.traces {
            out.push_str(&format!("### {}\n\n", flow_head(t)));
            out.push_str(&format!("**Verdict:** {}\n\n", md_inline(&t.verdict)));
            let rows: Vec<Vec<String>> = t
                .steps
                .iter()
                .map(|s| {
                    vec![
                        phase(s.phase).to_string(),
                        s.decision.clone(),
                        s.evidence
                            .iter()
                            .map(|e| md_inline(&evidence_line(e)))
                            .collect::<Vec<_>>()
                            .join("<br>"),
                    ]
                })
                .collect();
            out.push_str(&md_table(&["phase", "decision", "evidence"], &rows));
            out.push('\n');
            if !t.unknowns.is_empty() {
                out.push_str("**Not evaluated:**\n\n");
                for u in &t.unknowns {
                    out.push_str(&format!("- {u}\n"));
                }
                out.push('\n');
            }
            if !t.findings.is_empty() {
                out.push_str("**Findings:**\n\n");
                for f in &t.findings {
                    out.push_str(&format!("- {f}\n"));
                }
                out.push('\n');
            }
            if !t.observed.is_empty() {
                out.push_str("**Conntrack:**\n\n");
                out.push_str(&md_code(
                    &t.observed
                        .iter()
                        .map(|o| o.line.clone())
                        .collect::<Vec<_>>(),
                ));
                out.push('\n');
            }
        }
    }
    for e in &r.input_errors {
        out.push_str(&format!(
            "- input error {}: {}\n",
            md_inline(&e.input),
            e.error
        ));
    }
    out
}
