#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Conntrack parser against real kernel output (fixtures/conntrack, see PROVENANCE.md),
//! real pastes and properties.

use std::collections::BTreeMap;
use std::net::IpAddr;

use model::conntrack::{sum_stats, ConntrackEntry};
use model::net::Family;
use model::SummaryBuilder;
use parsers::conntrack::{parse_capture, parse_entries, parse_entry_line, parse_into, parse_stats};
use proptest::prelude::*;

fn fixture(name: &str) -> String {
    let p = format!("{}/fixtures/conntrack/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Everything but the fields that tick between two reads of the table (timeout) keyed by
/// the original tuple, so listings taken a second apart can be compared.
fn by_flow(v: &[ConntrackEntry]) -> BTreeMap<String, ConntrackEntry> {
    v.iter()
        .map(|e| {
            let mut e = e.clone();
            e.timeout = None;
            let k = format!(
                "{} {} {:?} {:?} {:?} {:?}",
                e.protocol,
                e.original.src,
                e.original.sport,
                e.original.dst,
                e.original.dport,
                e.zone.filter(|z| *z != 0)
            );
            // /proc always prints zone=0; conntrack -L only prints non-zero zones.
            if e.zone == Some(0) {
                e.zone = None;
            }
            (k, e)
        })
        .collect()
}

/// Hard-wrap every line at `width` characters, as a terminal copy or mail client does.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let chars: Vec<char> = line.chars().collect();
        if chars.is_empty() {
            out.push('\n');
        }
        for chunk in chars.chunks(width) {
            out.extend(chunk);
            out.push('\n');
        }
    }
    out
}

#[test]
fn hard_wrapped_paste_is_rejoined() {
    for name in ["list-netns.txt", "variety.txt", "k8s-38802-paste.txt"] {
        let f = fixture(name);
        let direct = parse_entries(&f);
        for width in [72, 80, 97, 120] {
            let p = parse_entries(&wrap(&f, width));
            assert!(p.warnings.is_empty(), "{name} at {width}: {:?}", p.warnings);
            assert_eq!(p.value, direct.value, "{name} at {width}");
        }
    }
}

#[test]
fn three_formats_of_the_same_table_agree() {
    let list = parse_entries(&fixture("list-netns.txt"));
    let ext = parse_entries(&fixture("extended-netns.txt"));
    let proc = parse_entries(&fixture("proc-nf_conntrack-netns.txt"));
    for p in [&list, &ext, &proc] {
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(p.value.len(), 11);
    }
    let (l, e, p) = (
        by_flow(&list.value),
        by_flow(&ext.value),
        by_flow(&proc.value),
    );
    assert_eq!(l.len(), 11, "original tuples are distinct");
    assert_eq!(l, e);
    assert_eq!(l, p);
}

#[test]
fn netns_listing_exact_values() {
    let v = parse_entries(&fixture("list-netns.txt")).value;
    let snat: Vec<&ConntrackEntry> = v.iter().filter(|e| e.is_snat()).collect();
    assert_eq!(snat.len(), 2, "two TCP flows to :8081 were SNATed");
    for e in &snat {
        assert_eq!(e.protocol, "tcp");
        assert_eq!(e.original.src, ip("10.99.1.2"));
        assert_eq!(e.original.dport, Some(8081));
        assert_eq!(e.nat_source(), Some(ip("10.99.1.3")));
        assert_eq!(e.mark, Some(0));
        assert_eq!(e.status, vec!["ASSURED".to_string()]);
        // --random-fully picked a new source port.
        assert_ne!(e.reply.dport, e.original.sport);
    }
    // Connmarked flows (0x80 like AWS-CONNMARK) to :8080 are not SNATed.
    let marked: Vec<&ConntrackEntry> = v.iter().filter(|e| e.mark == Some(128)).collect();
    assert_eq!(marked.len(), 4);
    assert!(marked
        .iter()
        .all(|e| !e.is_snat() && e.original.dport == Some(8080)));

    let icmp = v.iter().find(|e| e.protocol == "icmp").unwrap();
    assert_eq!(icmp.protonum, 1);
    assert_eq!(icmp.state, None);
    assert_eq!(icmp.original.icmp_type, Some(8));
    assert_eq!(icmp.original.icmp_code, Some(0));
    assert_eq!(icmp.original.icmp_id, Some(16962));
    assert_eq!(icmp.reply.icmp_type, Some(0));
    assert_eq!(icmp.original.packets, Some(3));
    assert_eq!(icmp.original.bytes, Some(96));

    let zoned = v.iter().find(|e| e.zone == Some(5)).unwrap();
    assert_eq!(zoned.protocol, "udp");
    assert_eq!(zoned.original.dport, Some(5353));
    assert_eq!(zoned.status, vec!["UNREPLIED".to_string()]);

    let v6 = v.iter().find(|e| e.family == Family::Inet6).unwrap();
    assert_eq!(v6.original.src, ip("fd00:99::2"));
    assert_eq!(v6.state.as_deref(), Some("TIME_WAIT"));
    assert_eq!(v6.original.packets, Some(5));
    assert_eq!(v6.reply.bytes, Some(227));

    let held = v
        .iter()
        .find(|e| e.state.as_deref() == Some("CLOSE_WAIT"))
        .unwrap();
    assert_eq!(held.timeout, Some(57));
}

#[test]
fn proc_expanded_ipv6_is_normalised() {
    let v = parse_entries(&fixture("proc-nf_conntrack-netns.txt")).value;
    let v6 = v.iter().find(|e| e.family == Family::Inet6).unwrap();
    assert_eq!(v6.original.src.to_string(), "fd00:99::2");
    assert_eq!(v6.zone, Some(0));
}

#[test]
fn summary_recognises_snat() {
    let mut b = SummaryBuilder::new(3);
    let w = parse_into(&fixture("list-netns.txt"), &mut b);
    assert!(w.is_empty());
    let (s, sample) = b.finish();
    assert_eq!(s.total, 11);
    assert_eq!(s.snat, 2);
    assert_eq!(s.unreplied, 3);
    assert_eq!(s.by_protocol["tcp"], 7);
    assert_eq!(s.by_protocol["udp"], 3);
    assert_eq!(s.by_state["TIME_WAIT"], 6);
    assert_eq!(sample.len(), 3);
    let snat_pair = s
        .pairs
        .iter()
        .find(|p| p.nat_source == Some(ip("10.99.1.3")))
        .unwrap();
    assert_eq!(snat_pair.flows, 2);
    assert_eq!(snat_pair.src, ip("10.99.1.2"));
    assert_eq!(snat_pair.dst, ip("10.99.1.1"));
}

#[test]
fn seed_paste_and_collapsed_spaces() {
    let p = parse_entries(&fixture("seed-paste.txt"));
    assert!(p.warnings.is_empty());
    assert_eq!(p.value.len(), 2);
    assert!(p
        .value
        .iter()
        .all(|e| e.nat_source() == Some(ip("172.30.85.242"))));
    assert!(p.value.iter().all(|e| e.mark == Some(128)));
    // The same lines with the padding conntrack prints parse identically.
    let padded = fixture("seed-paste.txt")
        .replace("icmp 1 ", "icmp     1 ")
        .replace("tcp 6 ", "tcp      6 ")
        .replace(' ', "  ");
    assert_eq!(parse_entries(&padded).value, p.value);
}

#[test]
fn github_paste_with_fence_and_prompt() {
    let p = parse_entries(&fixture("k8s-38802-paste.txt"));
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert_eq!(p.value.len(), 3);
    assert_eq!(p.value[0].state.as_deref(), Some("CLOSE_WAIT"));
    assert_eq!(p.value[0].timeout, Some(3069));
    assert!(!p.value[1].is_snat() && !p.value[1].is_dnat());
    assert!(p.value[2].is_snat() && !p.value[2].is_dnat());
    assert_eq!(p.value[2].nat_source(), Some(ip("10.28.65.112")));
}

#[test]
fn variety_of_protocols_and_flags() {
    let p = parse_entries(&fixture("variety.txt"));
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    let v = p.value;
    assert_eq!(v.len(), 13);
    assert_eq!(v[0].zone, Some(3));
    assert_eq!(v[0].original.packets, Some(10));
    assert_eq!(v[0].reply.bytes, Some(9000));
    assert_eq!(v[1].state.as_deref(), Some("SYN_SENT"));
    assert_eq!(v[1].status, vec!["UNREPLIED".to_string()]);
    assert_eq!(v[2].timeout, None);
    assert_eq!(v[2].status, vec!["OFFLOAD".to_string()]);
    assert_eq!(v[3].status, vec!["HW_OFFLOAD".to_string()]);
    assert_eq!(v[5].protocol, "icmpv6");
    assert_eq!(v[5].family, Family::Inet6);
    assert_eq!(v[5].original.icmp_type, Some(128));
    assert_eq!(v[6].original.src, ip("fd00::1"));
    assert_eq!(v[6].family, Family::Inet6);
    assert_eq!((v[7].protocol.as_str(), v[7].protonum), ("sctp", 132));
    assert_eq!(v[8].state.as_deref(), Some("OPEN"));
    assert_eq!(v[9].protocol, "udplite");
    assert_eq!(v[10].protocol, "gre");
    assert_eq!(v[10].timeout, Some(179));
    assert_eq!(v[10].original.sport, None);
    assert_eq!(v[11].protocol, "2", "unknown protocols are named by number");
    assert_eq!(v[11].reply.src, ip("224.0.0.22"));
    assert!(v[12].is_dnat() && !v[12].is_snat());
}

#[test]
fn malformed_lines_warn_with_line_numbers() {
    let text = "tcp 6 10 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 [ASSURED] use=1\n\
                tcp 6 10 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=99999 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1\n\
                conntrack v1.4.5 (conntrack-tools): 2 flow entries have been shown.\n\
                udp 17 30 src=fd00:0000:…:0002 dst=fd00::1 sport=1 dport=2 src=fd00::1 dst=fd00::2 sport=2 dport=1\n\
                tcp 6 10 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2";
    let p = parse_entries(text);
    assert_eq!(p.value.len(), 1);
    let lines: Vec<usize> = p.warnings.iter().map(|w| w.line).collect();
    assert_eq!(lines, vec![2, 4, 5]);
    assert!(p.warnings[0].message.contains("sport=99999"));
    assert!(p.warnings[2].message.contains("reply tuple has no dst"));
}

#[test]
fn line_entry_roundtrips_through_to_line() {
    for e in parse_entries(&fixture("list-netns.txt")).value {
        let again = parse_entry_line(&e.to_line()).unwrap().unwrap();
        assert_eq!(again.original, e.original);
        assert_eq!(again.reply, e.reply);
        assert_eq!(again.state, e.state);
        assert_eq!(again.mark, e.mark);
    }
}

#[test]
fn stats_per_cpu_real() {
    let s = parse_stats(&fixture("stats-netns.txt")).unwrap();
    assert!(s.warnings.is_empty());
    assert_eq!(s.value.len(), 2);
    assert_eq!(s.value[1].cpu, Some(1));
    assert_eq!(s.value[0].counters.len(), 10);
    assert_eq!(s.value[0].get("chaintoolong"), 0);
    assert!(s.value[0].counters.contains_key("clash_resolve"));
}

#[test]
fn stats_proc_real() {
    let s = parse_stats(&fixture("proc-stat-netns.txt")).unwrap();
    assert!(s.warnings.is_empty());
    assert_eq!(s.value.len(), 2);
    assert_eq!(s.value[0].get("entries"), 11);
    assert!(!s.value[1].counters.contains_key("entries"));
    assert_eq!(s.value[0].counters.len(), 17);
    assert_eq!(sum_stats(&s.value)["entries"], 11);
}

#[test]
fn stats_collapsed_paste() {
    let s = parse_stats(&fixture("stats-imroc-61-collapsed.txt")).unwrap();
    assert!(s.warnings.is_empty());
    assert_eq!(s.value.len(), 4);
    assert_eq!(s.value[3].cpu, Some(3));
    assert_eq!(s.value[3].get("error"), 18);
    let t = sum_stats(&s.value);
    assert_eq!(t["search_restart"], 746284 + 718963 + 2319295 + 2320376);
    assert_eq!(t["ignore"], 42570125 + 41988392 + 243330690 + 242616824);
}

#[test]
fn stats_vyos_table() {
    let s = parse_stats(&fixture("stats-vyos-1489-table.txt")).unwrap();
    assert_eq!(s.value.len(), 4);
    assert_eq!(s.value[3].get("search_restart"), 48);
    // The prompt is chatter; the table header and the rule are reported.
    assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
    assert_eq!(s.warnings[0].line, 2);
}

#[test]
fn stats_old_aggregated() {
    let s = parse_stats(&fixture("stats-old-aggregated.txt")).unwrap();
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert_eq!(s.value.len(), 1);
    assert_eq!(s.value[0].cpu, None);
    assert_eq!(s.value[0].counters.len(), 17);
    assert_eq!(s.value[0].get("insert_failed"), 3);
    assert_eq!(s.value[0].get("searched"), 120034);
    // A single line of counters without cpu= is the other aggregated shape.
    let s = parse_stats("found=3 invalid=2 insert_failed=9\n").unwrap();
    assert_eq!(s.value[0].cpu, None);
    assert_eq!(s.value[0].get("insert_failed"), 9);
}

#[test]
fn capture_real() {
    let c = parse_capture(&fixture("capture-netns.txt"), 4);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let s = c.value;
    assert_eq!(s.source, "capture");
    assert_eq!(s.count, Some(11));
    assert_eq!(s.stats.len(), 2);
    assert_eq!(s.totals.get("insert_failed"), Some(&0));
    assert_eq!(s.summary.total, 11);
    assert_eq!(s.summary.snat, 2);
    assert_eq!(s.sample.len(), 4);
    assert_eq!(s.sample_limit, 4);
}

#[test]
fn capture_mixed_formats_and_garbage() {
    let text = format!(
        "{}\n{}\nthis is not conntrack\n{}",
        fixture("proc-stat-netns.txt"),
        fixture("seed-paste.txt"),
        fixture("stats-old-aggregated.txt")
    );
    let c = parse_capture(&text, 10);
    assert_eq!(c.value.count, Some(2));
    assert_eq!(c.value.stats.len(), 3);
    assert_eq!(c.value.totals["entries"], 11 + 42);
    assert_eq!(c.warnings.len(), 1);
    assert_eq!(c.warnings[0].line, 8);
}

proptest! {
    #[test]
    fn any_wrap_width_gives_the_same_entries(width in 70usize..260) {
        for name in ["list-netns.txt", "proc-nf_conntrack-netns.txt", "seed-paste.txt"] {
            let f = fixture(name);
            let p = parse_entries(&wrap(&f, width));
            prop_assert!(p.warnings.is_empty(), "{} at {}: {:?}", name, width, p.warnings);
            prop_assert_eq!(p.value, parse_entries(&f).value);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,300}") {
        let _ = parse_entry_line(&s);
        let _ = parse_stats(&s);
        let _ = parse_capture(&s, 2);
    }

    #[test]
    fn token_soup_never_panics(toks in proptest::collection::vec(
        prop_oneof![
            Just("tcp".to_string()), Just("6".to_string()), Just("src=10.0.0.1".to_string()),
            Just("dst=::1".to_string()), Just("id=".to_string()), Just("[ASSURED]".to_string()),
            Just("type=8".to_string()), Just("[start=Fri".to_string()), Just("ipv4".to_string()),
            Just("cpu=1".to_string()), Just("entries".to_string()), Just("0000000a".to_string()),
            "[a-z_=0-9\\[\\]]{0,12}",
        ], 0..40)) {
        let line = toks.join(" ");
        let _ = parse_entry_line(&line);
        let _ = parse_capture(&line, 1);
        let _ = parse_stats(&line);
    }

    #[test]
    fn truncated_fixtures_never_panic_and_streaming_agrees(cut in 0usize..4000) {
        for name in ["list-netns.txt", "proc-nf_conntrack-netns.txt", "variety.txt", "capture-netns.txt"] {
            let f = fixture(name);
            let mut end = cut.min(f.len());
            while !f.is_char_boundary(end) { end -= 1; }
            let text = &f[..end];
            let all = parse_entries(text);
            let mut b = SummaryBuilder::new(usize::MAX);
            let w = parse_into(text, &mut b);
            let (summary, sample) = b.finish();
            prop_assert_eq!(&sample, &all.value);
            prop_assert_eq!(summary.total as usize, all.value.len());
            prop_assert_eq!(w, all.warnings);
            let _ = parse_stats(text);
        }
    }
}
