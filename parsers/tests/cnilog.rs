#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CNI log parser against issue-sourced lines (fixtures/cnilog, see PROVENANCE.md).

use std::io::Write;

use model::cni::{LogEvent, LogEventKind};
use parsers::cnilog::{classify, parse_bytes, parse_line, parse_text};
use proptest::prelude::*;
use serde_json::Value;

fn fixture(name: &str) -> String {
    let p = format!("{}/fixtures/cnilog/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn kinds(evs: &[LogEvent]) -> Vec<Option<LogEventKind>> {
    evs.iter().map(|e| e.kind).collect()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

use LogEventKind::*;

#[test]
fn ipamd_log_every_line_and_kind() {
    let p = parse_text("ipamd.log", &fixture("ipamd.log"));
    assert!(p.warnings.is_empty());
    let (lf, evs) = p.value;
    assert_eq!(lf.path, "ipamd.log");
    assert_eq!(lf.lines, 22);
    assert_eq!(lf.unparsed_lines, 0);
    assert_eq!(evs.len(), 22);
    assert_eq!(
        kinds(&evs),
        vec![
            Some(Startup),
            None,
            None,
            Some(IpExhaustion),
            Some(IpExhaustion),
            None,
            Some(IpExhaustion),
            None, // "InsufficientCidr Error" backoff notice is not the EC2 code itself
            Some(IpExhaustion),
            // `Prefix pool stats: … AssignedIPs/CooldownIPs: 32/0` of 32: a full pool
            // (model::vpccni::pool_exhausted); the rule needs it sustained to report.
            Some(IpExhaustion),
            None, // debug noise "no free IP available in the prefix"
            Some(IpExhaustion),
            None,
            None,
            Some(Ec2Throttling),
            Some(EniAttachFailure),
            Some(EniAttachFailure),
            Some(EniConfigMissing),
            Some(MissingIamPermission),
            Some(ReconcileDrift),
            Some(Startup),
            Some(NotReady),
        ]
    );
    let e = &evs[3];
    assert_eq!(e.level, "error");
    assert_eq!(e.ts.as_deref(), Some("2021-12-02T03:34:46.067Z"));
    assert_eq!(e.caller.as_deref(), Some("ipamd/ipamd.go:934"));
    assert!(e.msg.contains("satisfy the request.\n\tstatus code: 400"));
    assert_eq!(e.line, Some(4));
    assert_eq!(e.file, "ipamd.log");
    assert_eq!(evs[21].fields["logger"], Value::String("rpc".into()));
    assert!(evs[21].caller.is_some());
}

#[test]
fn plugin_log() {
    let p = parse_text("plugin.log", &fixture("plugin.log"));
    let (lf, evs) = p.value;
    assert_eq!(lf.lines, 7);
    assert_eq!(
        kinds(&evs),
        vec![
            None,
            Some(PodAdd),
            None,
            None,
            Some(PodDel),
            Some(NotReady),
            Some(IpExhaustion)
        ]
    );
    assert!(evs[1]
        .msg
        .contains("argsStdinData({\"cniVersion\":\"0.4.0\""));
    assert_eq!(evs[2].msg, "Prev Result: <nil>\n");
}

#[test]
fn seelog_and_damaged_timestamps() {
    let p = parse_text(
        "plugin.log.2018-06-15-02",
        &fixture("plugin.log.2018-06-15-02"),
    );
    let (lf, evs) = p.value;
    assert_eq!(lf.lines, 7);
    assert_eq!(lf.unparsed_lines, 1, "the tail -f separator");
    assert_eq!(evs.len(), 5);
    assert_eq!(evs[0].ts.as_deref(), Some("018-06-15T02:26:38Z"));
    assert_eq!(evs[0].level, "info");
    assert_eq!(evs[0].kind, Some(PodAdd));
    assert_eq!(evs[2].level, "error");
    assert_eq!(
        kinds(&evs[1..]),
        vec![
            None,
            Some(IpExhaustion),
            Some(IpExhaustion),
            Some(IpExhaustion)
        ]
    );
}

#[test]
fn aws_node_stdout_entrypoint_json_and_logrus() {
    let (lf, evs) = parse_text("aws-node", &fixture("aws-node-stdout.log")).value;
    assert_eq!(lf.unparsed_lines, 0);
    assert_eq!(evs.len(), 5);
    assert_eq!(evs[0].caller.as_deref(), Some("entrypoint.sh"));
    assert_eq!(evs[1].kind, Some(NotReady));
    assert_eq!(evs[2].ts.as_deref(), Some("2025-12-08T08:50:58Z"));
    assert_eq!(evs[2].msg, "Starting IPAM daemon... ");
    assert_eq!(evs[2].level, "info");
    assert_eq!(evs[4].level, "error");
    assert_eq!(evs[4].kind, Some(NotReady));
    assert_eq!(
        evs[4].fields["error"],
        Value::String("context deadline exceeded".into())
    );
}

#[test]
fn jq_pretty_printed_is_reassembled() {
    let text = fixture("ipamd-jq-pretty.txt");
    let (lf, evs) = parse_text("paste", &text).value;
    let (_, direct) = parse_text("paste", &fixture("ipamd.log")).value;
    assert_eq!(evs.len(), 6);
    assert_eq!(lf.unparsed_lines, 1, "the $ prompt");
    for (a, b) in evs.iter().zip(&direct) {
        assert_eq!(
            (&a.msg, &a.ts, &a.level, &a.caller, a.kind),
            (&b.msg, &b.ts, &b.level, &b.caller, b.kind)
        );
    }
    assert_eq!(evs[0].line, Some(2), "line of the opening brace");
    assert_eq!(evs[1].line, Some(8));
}

#[test]
fn hard_wrapped_paste_is_reassembled() {
    let (lf, evs) = parse_text("paste", &fixture("plugin-wrapped-paste.txt")).value;
    let (_, direct) = parse_text("plugin.log", &fixture("plugin.log")).value;
    assert_eq!(lf.unparsed_lines, 0);
    assert_eq!(evs.len(), direct.len());
    for (a, b) in evs.iter().zip(&direct) {
        assert_eq!(a.msg, b.msg);
        assert_eq!(a.kind, b.kind);
    }
}

#[test]
fn truncated_json_is_warned_not_fatal() {
    let text = "{\"level\":\"info\",\"ts\":\"2024-01-01T00:00:00.000Z\",\"msg\":\"cut\n{\"level\":\"error\",\"msg\":\"DataStore has no available IP/Prefix addresses\"}\n";
    let p = parse_text("x", text);
    assert_eq!(p.value.1.len(), 1);
    assert_eq!(p.value.1[0].line, Some(2));
    assert_eq!(p.value.1[0].kind, Some(IpExhaustion));
    assert_eq!(p.value.0.unparsed_lines, 1);
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(p.warnings[0].line, 1);
}

#[test]
fn parse_line_shapes() {
    assert!(parse_line("f", 1, "").is_none());
    assert!(parse_line("f", 1, "random words here").is_none());
    assert!(parse_line("f", 1, "[INFO] no timestamp").is_none());
    let e = parse_line("f", 9, "2018-05-15T21:04:05Z [WARN] Something").unwrap();
    assert_eq!((e.level.as_str(), e.msg.as_str()), ("warn", "Something"));
    let e = parse_line(
        "f",
        1,
        r#"{"level":"info","ts":"t","caller":"c","msg":"m","n":3}"#,
    )
    .unwrap();
    assert_eq!(e.fields["n"], Value::from(3));
}

#[test]
fn kubectl_logs_prefixes() {
    let e = parse_line(
        "aws-node",
        1,
        r#"[pod/aws-node-7x2kq/aws-node] 2025-12-08T08:50:58.123456789Z time="2025-12-08T08:50:58Z" level=info msg="Starting IPAM daemon... ""#,
    )
    .unwrap();
    assert_eq!(e.ts.as_deref(), Some("2025-12-08T08:50:58Z"));
    assert_eq!(e.msg, "Starting IPAM daemon... ");
    let e = parse_line(
        "aws-node",
        2,
        r#"2022-06-01T10:00:30.000000001Z {"level":"info","caller":"entrypoint.sh","msg":"Timed out waiting for IPAM daemon to start:"}"#,
    )
    .unwrap();
    assert_eq!(e.ts.as_deref(), Some("2022-06-01T10:00:30.000000001Z"));
    assert_eq!(e.kind, Some(NotReady));
    // A seelog line is not mistaken for a kubectl timestamp prefix.
    let e = parse_line(
        "f",
        3,
        "2020-03-16T15:02:38.121Z [INFO] Starting CNI Plugin v1.5.5  ...",
    )
    .unwrap();
    assert_eq!(e.msg, "Starting CNI Plugin v1.5.5  ...");
}

#[test]
fn classify_all_documented_messages() {
    let cases: &[(&str, LogEventKind)] = &[
        ("DataStore has no available IP/Prefix addresses", IpExhaustion),
        ("AssignPodIPAddress: no available IP/Prefix addresses", IpExhaustion),
        ("add cmd: failed to assign an IP address to container", IpExhaustion),
        ("InsufficientFreeAddressesInSubnet: x", IpExhaustion),
        ("InsufficientCidrBlocks: x", IpExhaustion),
        ("There aren't sufficient free Ipv4 addresses or prefixes", IpExhaustion),
        ("Unable to attach IPs/Prefixes for the ENI, subnet doesn't seem to have enough IPs/Prefixes. Consider using new subnet", IpExhaustion),
        ("api error RequestLimitExceeded: Request limit exceeded.", Ec2Throttling),
        ("Request limit exceeded", Ec2Throttling),
        ("failed to get rate limit token, retry quota exceeded", Ec2Throttling),
        ("Throttling: Rate exceeded", Ec2Throttling),
        ("Failed to attach ENI eni-1: x", EniAttachFailure),
        ("attachENI: failed to attach ENI for network card 0", EniAttachFailure),
        ("AllocENI: error attaching ENI for network card 1", EniAttachFailure),
        ("AttachmentLimitExceeded", EniAttachFailure),
        ("AllocENI: failed to create ENI: boom", EniAttachFailure),
        ("Skipping ENI allocation as the max ENI limit is already reached", EniAttachFailure),
        ("Failed to connect to backend server for container abc: x", NotReady),
        ("add cmd: failed to connect to backend server", NotReady),
        ("Timed out waiting for IPAM daemon to start", NotReady),
        ("Rejecting AddNetwork request: wrong client version \"a\" (!= \"b\")", NotReady),
        ("dial tcp 127.0.0.1:50051: connect: connection refused", NotReady),
        ("Prefix datastore not initialized", NotReady),
        ("failed ipam state recovery due to unexpected checkpointVersion: 1/2", NotReady),
        ("UnauthorizedOperation: You are not authorized", MissingIamPermission),
        ("failed to call ec2:AssignPrivateIpAddresses due to missing permissions", MissingIamPermission),
        ("No ENIConfig could be found for this node%!(EXTRA <nil>)", EniConfigMissing),
        ("error while retrieving eniconfig: eniconfig: eniconfig is not available", EniConfigMissing),
        ("Starting L-IPAMD v1.21.2  ...", Startup),
        ("IP pool manager - max pods: 110, warm IP target: 0", Startup),
        ("Received CNI add request: ContainerID(x)", PodAdd),
        ("Received CNI del request: ContainerID(x)", PodDel),
        ("Instance metadata does not match data store! ipPool: [], metadata: []", ReconcileDrift),
    ];
    for (msg, kind) in cases {
        assert_eq!(classify(msg), Some(*kind), "{msg}");
    }
    for msg in [
        "",
        "Trying to allocate 1 IP addresses",
        "datastore not initialized",
        "starting l-ipamd",
    ] {
        assert_eq!(classify(msg), None, "{msg}");
    }
}

#[test]
fn bytes_plain_gzip_multimember_and_lossy() {
    let text = fixture("ipamd.log");
    let plain = parse_bytes("ipamd.log", text.as_bytes(), 1 << 20);
    assert_eq!(plain.value.1.len(), 22);
    assert_eq!(plain.value.0.size, text.len() as u64);

    let z = gz(text.as_bytes());
    let p = parse_bytes("ipamd-2024-05-01T10-00-00.123.log.gz", &z, 1 << 20);
    assert!(p.warnings.is_empty());
    assert_eq!(p.value.1, {
        let mut v = plain.value.1.clone();
        for e in &mut v {
            e.file = "ipamd-2024-05-01T10-00-00.123.log.gz".into();
        }
        v
    });
    assert_eq!(p.value.0.size, z.len() as u64);
    assert!(!p.value.0.truncated);

    // Two gzip members back to back (concatenated rotations).
    let mut two = gz(text.as_bytes());
    two.extend(gz(fixture("plugin.log").as_bytes()));
    let p = parse_bytes("x.gz", &two, 1 << 20);
    assert_eq!(p.value.1.len(), 29);

    // Bounded decompression.
    let p = parse_bytes("x.gz", &z, 1000);
    assert!(p.value.0.truncated);
    assert!(p.value.1.len() < 22);
    assert!(p
        .warnings
        .iter()
        .any(|w| w.message.contains("exceeds 1000")));

    // Damaged gzip keeps what decompressed and records the error.
    let mut bad = z.clone();
    let n = bad.len();
    bad.truncate(n / 2);
    let p = parse_bytes("x.gz", &bad, 1 << 20);
    assert!(p.value.0.error.is_some());

    // Invalid UTF-8 is replaced, the line still parses.
    let mut raw =
        b"{\"level\":\"error\",\"msg\":\"DataStore has no available IP/Prefix addresses \xff\"}\n"
            .to_vec();
    raw.extend_from_slice(b"\n");
    let p = parse_bytes("ipamd.log", &raw, 1 << 20);
    assert_eq!(p.value.1[0].kind, Some(IpExhaustion));
    assert!(p.value.1[0].msg.ends_with('\u{fffd}'));

    // Named .gz but plain text.
    let p = parse_bytes("ipamd.log.gz", text.as_bytes(), 1 << 20);
    assert_eq!(p.value.1.len(), 22);
    assert_eq!(p.warnings.len(), 1);
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,400}") {
        let _ = classify(&s);
        let _ = parse_line("f", 1, &s);
        let _ = parse_text("f", &s);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400), gzip in any::<bool>()) {
        let data = if gzip { let mut z = gz(&b); let n = z.len(); z.truncate(n - n / 3); z } else { b };
        let _ = parse_bytes("f.gz", &data, 1 << 16);
    }

    #[test]
    fn truncated_fixtures_never_panic(cut in 0usize..3000) {
        for name in ["ipamd.log", "ipamd-jq-pretty.txt", "plugin-wrapped-paste.txt", "aws-node-stdout.log"] {
            let f = fixture(name);
            let mut end = cut.min(f.len());
            while !f.is_char_boundary(end) { end -= 1; }
            let p = parse_text(name, &f[..end]);
            prop_assert!(p.value.0.unparsed_lines <= p.value.0.lines);
        }
    }
}
