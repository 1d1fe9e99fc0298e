//! The daemon's HTTP request handling (`node-agent serve`'s local API), without a socket:
//! arbitrary bytes as the request stream of one connection, served by
//! `node_agent::serve::api::serve_connection` over a `tokio::io::duplex` pair, against a
//! fixed state (a snapshot fixture with a finding, and one history entry).
//!
//! Input layout: byte 0 = flags, byte 1 = pause between chunks (in 10 ms steps of virtual
//! time), the rest = the bytes the client sends.
//! - flags bit 0: the peer is NOT allowed (the unix socket's SO_PEERCRED check failed);
//! - flags bit 1: the client never closes its write side (slowloris, held open);
//! - flags bits 2..7: chunk size (0 = everything at once, else 1..63 bytes per write).
//!
//! The runtime runs on paused (virtual) time, so the 5 s header timeout and the 30 s
//! connection timeout are the daemon's real ones yet cost no wall time.
//!
//! Asserted: no panic; the connection ends within the daemon's overall timeout (plus one
//! second of slack) of virtual time; the output is empty or exactly one valid HTTP/1.1
//! response (status line, headers, a body of `content-length` bytes, or none for HEAD) and
//! nothing after it (no keep-alive); a text or JSON body is UTF-8 with no control character
//! other than `\n` (C0, DEL, C1 and bidi controls must be JSON-escaped).
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use node_agent::serve::api::{self, ConnLimits, Ctx};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FIXTURE: &str = include_str!("../../tui/tests/fixtures/no-snat-rule.json");

fn ctx() -> Arc<Ctx> {
    static CTX: OnceLock<Arc<Ctx>> = OnceLock::new();
    CTX.get_or_init(|| {
        let snap: model::Snapshot = serde_json::from_str(FIXTURE).expect("the fixture parses");
        let change = model::diff::Change {
            at: "2026-12-01T14:00:00Z".into(),
            kind: model::diff::ChangeKind::IpRule,
            op: model::diff::ChangeOp::Added,
            subject: "rule ipv4".into(),
            content: "512: from all to 10.0.1.7 lookup main".into(),
        };
        Ctx::fixed(snap, vec![change])
    })
    .clone()
}

fn check_response(out: &[u8]) {
    if out.is_empty() {
        // Garbage, a timeout or a refused head may be answered by closing.
        return;
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(out) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!(
            "not a complete HTTP/1.1 response head ({other:?}): {:?}",
            String::from_utf8_lossy(&out[..out.len().min(300)])
        ),
    };
    // hyper answers an HTTP/1.0 request with an HTTP/1.0 status line (correct).
    assert!(matches!(resp.version, Some(0 | 1)), "HTTP/1.x");
    let code = resp.code.expect("a status code");
    assert!((100..600).contains(&code), "status {code}");
    let mut len = None;
    let mut ctype = "";
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            len = std::str::from_utf8(h.value).ok().and_then(|v| v.parse::<usize>().ok());
        } else if h.name.eq_ignore_ascii_case("content-type") {
            ctype = std::str::from_utf8(h.value).expect("a text content type");
        }
    }
    let body = &out[head_len..];
    if !body.is_empty() {
        // One response and nothing after it; the body as long as announced.
        assert_eq!(Some(body.len()), len, "status {code}: body vs content-length");
    }
    if ctype.contains("json") || ctype.starts_with("text/") || ctype.contains("openmetrics") {
        let text = std::str::from_utf8(body).expect("a text body is UTF-8");
        if let Some(c) = text
            .chars()
            .find(|&c| c != '\n' && model::sanitize::is_unsafe(c))
        {
            panic!("status {code}: control character {c:?} in a {ctype} body");
        }
        if ctype.contains("json") && !body.is_empty() {
            serde_json::from_str::<serde_json::Value>(text).expect("a JSON body parses");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (flags, pause, stream) = match data {
        [f, p, rest @ ..] => (*f, *p, rest),
        _ => return,
    };
    let allowed = flags & 1 == 0;
    let hold_open = flags & 2 != 0;
    let chunk = match (flags >> 2) as usize {
        0 => stream.len().max(1),
        n => n,
    };
    let gap = Duration::from_millis(u64::from(pause) * 10);
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
    else {
        return;
    };
    let limits = ConnLimits::default();
    rt.block_on(async move {
        let started = tokio::time::Instant::now();
        let (client, server) = tokio::io::duplex(64 * 1024);
        let srv = tokio::spawn(api::serve_connection(server, ctx(), allowed, limits));
        let (mut rd, mut wr) = tokio::io::split(client);
        let writer = async move {
            for c in stream.chunks(chunk) {
                if wr.write_all(c).await.is_err() {
                    break;
                }
                if !gap.is_zero() {
                    tokio::time::sleep(gap).await;
                }
            }
            if !hold_open {
                let _ = wr.shutdown().await;
            }
            // Keep the write half (open or half-closed) until the server is done.
            std::future::pending::<()>().await;
            drop(wr);
        };
        let served = async move {
            let mut out = Vec::new();
            let (read, done) = tokio::join!(rd.read_to_end(&mut out), srv);
            assert!(done.is_ok(), "the connection task panicked");
            let _ = read;
            out
        };
        let bounded = tokio::time::timeout(limits.overall + Duration::from_secs(1), async {
            tokio::select! {
                biased;
                out = served => out,
                () = writer => unreachable!("the writer never finishes"),
            }
        });
        let out = bounded
            .await
            .expect("the connection outlived the daemon's overall timeout");
        assert!(started.elapsed() <= limits.overall + Duration::from_secs(1));
        check_response(&out);
    });
});
