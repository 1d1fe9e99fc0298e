//! The local API: hyper's HTTP/1 server on a unix socket (0600, root or our own uid only,
//! checked with SO_PEERCRED) and optionally on a loopback TCP port.
//!
//! `GET /v1/snapshot`, `/v1/findings`, `/v1/changes?since=RFC3339`, `/v1/health`,
//! `/metrics`. Anything else is a 4xx with a one-line reason. A client never takes the
//! daemon down: each connection is its own task with a header-read timeout and an overall
//! timeout, and at most [`MAX_CONNECTIONS`] are served at once.

use std::convert::Infallible;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;

use super::Shared;

pub const MAX_CONNECTIONS: usize = 64;
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one connection may take: the request head, and everything.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub header_read: Duration,
    pub overall: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            header_read: HEADER_TIMEOUT,
            overall: CONNECTION_TIMEOUT,
        }
    }
}

/// What the handlers need.
pub struct Ctx {
    pub shared: Arc<Shared>,
    pub registry: Registry,
    limit: Arc<Semaphore>,
}

impl Ctx {
    pub fn new(shared: Arc<Shared>, registry: Registry) -> Arc<Ctx> {
        Arc::new(Ctx {
            shared,
            registry,
            limit: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        })
    }

    /// The API over a fixed state (see [`Shared::fixed`]), with the daemon's real metrics
    /// registry.
    pub fn fixed(snapshot: model::Snapshot, changes: Vec<model::diff::Change>) -> Arc<Ctx> {
        let shared = Shared::fixed(snapshot, changes);
        Ctx::new(shared.clone(), super::metrics::registry(shared))
    }
}

/// Why the API could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("--listen {0}: only loopback addresses are served (the API has no authentication)")]
    NotLoopback(std::net::SocketAddr),
}

/// Bind the unix socket: stale socket removed, mode 0600.
pub fn bind_unix(path: &Path) -> Result<UnixListener, ApiError> {
    let err = |op, source| ApiError::Io {
        op,
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err("creating the directory of", e))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err("removing the stale socket", e)),
    }
    let l = UnixListener::bind(path).map_err(|e| err("binding", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| err("chmod 0600", e))?;
    Ok(l)
}

/// Bind `--listen`, loopback only.
pub async fn bind_tcp(addr: std::net::SocketAddr) -> Result<TcpListener, ApiError> {
    if !addr.ip().is_loopback() {
        return Err(ApiError::NotLoopback(addr));
    }
    TcpListener::bind(addr)
        .await
        .map_err(|source| ApiError::Io {
            op: "binding",
            path: addr.to_string(),
            source,
        })
}

/// Our effective uid (owner of /proc/self), allowed besides root.
fn own_uid() -> Option<u32> {
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

pub async fn serve_unix(listener: UnixListener, ctx: Arc<Ctx>) {
    let me = own_uid();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // EMFILE and friends: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let allowed = match stream.peer_cred() {
            Ok(c) => c.uid() == 0 || Some(c.uid()) == me,
            Err(_) => false,
        };
        spawn_conn(stream, ctx.clone(), allowed);
    }
}

pub async fn serve_tcp(listener: TcpListener, ctx: Arc<Ctx>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        spawn_conn(stream, ctx.clone(), true);
    }
}

fn spawn_conn<S>(stream: S, ctx: Arc<Ctx>, allowed: bool)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ok(permit) = ctx.limit.clone().try_acquire_owned() else {
        // Over the limit: drop the connection rather than queue without bound.
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        serve_connection(stream, ctx, allowed, ConnLimits::default()).await;
    });
}

/// Serve one connection over any byte stream (a socket, or a `tokio::io::duplex` pair in
/// the fuzz target and tests): one request (no keep-alive), then the stream is dropped.
/// Returns within `limits.overall` whatever the peer sends or withholds.
pub async fn serve_connection<S>(stream: S, ctx: Arc<Ctx>, allowed: bool, limits: ConnLimits)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let ctx = ctx.clone();
        async move { Ok::<_, Infallible>(handle(&ctx, allowed, req)) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(false)
        // A client that shuts down its write side after the request (`nc -N`, a duplex in
        // the tests) still gets the whole answer: without this hyper closes on the read EOF
        // and a big /v1/snapshot was cut after the first 16 KiB.
        .half_close(true)
        .serve_connection(TokioIo::new(stream), svc);
    // Errors here are the client's (garbage, timeouts, resets): nothing to do.
    let _ = tokio::time::timeout(limits.overall, conn).await;
}

type Resp = Response<Full<Bytes>>;

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// JSON with C1 and bidi controls written as `\u` escapes too (serde_json escapes only C0):
/// request paths and query values are echoed in error messages, snapshot text comes from
/// the node, and `curl` prints the body to a terminal.
fn json(status: StatusCode, value: &impl serde::Serialize) -> Resp {
    match serde_json::to_string(value) {
        Ok(text) => {
            let mut b = model::sanitize::json_text(&text).into_owned().into_bytes();
            b.push(b'\n');
            reply(status, "application/json", b)
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("serialising: {e}"),
        ),
    }
}

fn error(status: StatusCode, why: &str) -> Resp {
    json(
        status,
        &serde_json::json!({ "error": why, "status": status.as_u16() }),
    )
}

const ROUTES: &str = "/v1/snapshot, /v1/findings, /v1/changes?since=RFC3339, /v1/health, /metrics";

/// Route one request. Never panics, never fails: every problem is a status code.
pub fn handle(ctx: &Ctx, allowed: bool, req: Request<Incoming>) -> Resp {
    if !allowed {
        return error(
            StatusCode::FORBIDDEN,
            "only root (or the daemon's own user) may use this socket",
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return error(StatusCode::METHOD_NOT_ALLOWED, "only GET is served");
    }
    let query = req.uri().query().unwrap_or("");
    match req.uri().path() {
        "/v1/snapshot" => match ctx.shared.lock().latest.clone() {
            Some(s) => json(StatusCode::OK, &*s),
            None => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "no snapshot yet: the first round has not finished",
            ),
        },
        "/v1/findings" => {
            let st = ctx.shared.lock();
            json(
                StatusCode::OK,
                &serde_json::json!({
                    "collected_at": st.latest.as_ref().map(|s| s.collected_at.clone()),
                    "round": st.rounds,
                    "hold_rounds": st.hold_rounds,
                    "pending": st.pending,
                    "findings": st.findings,
                }),
            )
        }
        "/v1/changes" => {
            let mut since = None;
            for (k, v) in query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| p.split_once('=').unwrap_or((p, "")))
            {
                match k {
                    "since" => {
                        let v = percent_decode(v);
                        match v.parse::<jiff::Timestamp>() {
                            Ok(t) => since = Some(t),
                            Err(e) => {
                                return error(
                                    StatusCode::BAD_REQUEST,
                                    &format!("since={v}: not an RFC 3339 time ({e}); e.g. since=2026-12-01T14:00:00Z"),
                                )
                            }
                        }
                    }
                    other => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            &format!("unknown query parameter `{other}` (known: since)"),
                        )
                    }
                }
            }
            let st = ctx.shared.lock();
            json(
                StatusCode::OK,
                &serde_json::json!({
                    "since": since.map(crate::duration::rfc3339_ts),
                    "changes": st.history.since(since),
                }),
            )
        }
        "/v1/health" => {
            let st = ctx.shared.lock();
            let fresh = st.fresh();
            let body = serde_json::json!({
                "status": if fresh { "ok" } else { "stale" },
                "rounds": st.rounds,
                "last_round_at": st.last_success.map(crate::duration::rfc3339_ts),
                "history_problems": st.history.problems,
                "store_error": st.store_error,
                "changes_kept": st.history.len(),
            });
            json(
                if fresh {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                },
                &body,
            )
        }
        "/metrics" => match super::metrics::render(&ctx.registry) {
            Ok(text) => reply(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                text,
            ),
            Err(_) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding the metrics failed",
            ),
        },
        other => error(
            StatusCode::NOT_FOUND,
            &format!("no such path `{other}` (served: {ROUTES})"),
        ),
    }
}

/// `%3A` → `:`, enough for an RFC 3339 value in a query string. A literal `+` stays a `+`
/// (an offset such as `+02:00` written unencoded).
fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(x) = v
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why `node-agent api` could not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connecting to {path}: {source}")]
    Connect {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("GET {target} on {path}: {why}")]
    Http {
        target: String,
        path: String,
        why: String,
    },
    #[error("GET {target} on {path}: no answer within {}", crate::duration::format(*.after))]
    Timeout {
        target: String,
        path: String,
        after: Duration,
    },
}

/// `GET target` on the daemon's unix socket (hyper client): status and body.
pub async fn get_unix(
    socket: &Path,
    target: &str,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), ClientError> {
    use http_body_util::BodyExt;
    let path = socket.display().to_string();
    let http = |why: String| ClientError::Http {
        target: target.to_string(),
        path: path.clone(),
        why,
    };
    let fut = async {
        let stream = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|source| ClientError::Connect {
                path: path.clone(),
                source,
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| http(e.to_string()))?;
        let conn = tokio::spawn(conn);
        let req = Request::builder()
            .uri(target)
            .header(hyper::header::HOST, "localhost")
            .header(hyper::header::CONNECTION, "close")
            .body(Full::new(Bytes::new()))
            .map_err(|e| http(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| http(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| http(e.to_string()))?
            .to_bytes()
            .to_vec();
        conn.abort();
        Ok((status, body))
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(ClientError::Timeout {
            target: target.to_string(),
            path: path.clone(),
            after: timeout,
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    //! The connection handling over a duplex pair with hostile input: the same entry point
    //! the `daemon_http` fuzz target drives, so CI exercises it without a fuzzer.
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const FIXTURE: &str = include_str!("../../../tui/tests/fixtures/no-snat-rule.json");

    fn ctx() -> Arc<Ctx> {
        let snap: model::Snapshot = serde_json::from_str(FIXTURE).unwrap();
        let change = model::diff::Change {
            at: "2026-12-01T14:00:00Z".into(),
            kind: model::diff::ChangeKind::IpRule,
            op: model::diff::ChangeOp::Added,
            subject: "rule ipv4".into(),
            content: "512: from all to 10.0.1.7 lookup main".into(),
        };
        Ctx::fixed(snap, vec![change])
    }

    const LIMITS: ConnLimits = ConnLimits {
        header_read: Duration::from_millis(300),
        overall: Duration::from_secs(2),
    };

    /// Write `chunks` (pausing `gap` between them), close our write side if `eof`, and read
    /// everything the server sends until it closes. Panics if the server outlives its limit.
    async fn exchange(chunks: &[&[u8]], gap: Duration, eof: bool) -> Vec<u8> {
        let (client, server) = tokio::io::duplex(16 * 1024);
        let started = std::time::Instant::now();
        let srv = tokio::spawn(serve_connection(server, ctx(), true, LIMITS));
        let (mut rd, mut wr) = tokio::io::split(client);
        let writer = async move {
            for c in chunks {
                if wr.write_all(c).await.is_err() {
                    break;
                }
                tokio::time::sleep(gap).await;
            }
            if eof {
                let _ = wr.shutdown().await;
            }
            wr
        };
        let reader = async move {
            let mut out = Vec::new();
            let _ = rd.read_to_end(&mut out).await;
            out
        };
        let (_wr, out, done) =
            tokio::time::timeout(LIMITS.overall + Duration::from_secs(5), async {
                tokio::join!(writer, reader, srv)
            })
            .await
            .expect("the connection outlived its overall limit");
        done.unwrap();
        assert!(started.elapsed() < LIMITS.overall + Duration::from_secs(5));
        out
    }

    /// (status, content type, body) of the one response, checked for HTTP/1.1 shape.
    fn parse(out: &[u8]) -> Option<(u16, String, Vec<u8>)> {
        if out.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(out);
        let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
        let status: u16 = status_line[9..12].parse().unwrap();
        let mut ctype = String::new();
        let mut len = None;
        for l in lines {
            let (k, v) = l.split_once(": ").unwrap();
            match k.to_ascii_lowercase().as_str() {
                "content-type" => ctype = v.to_string(),
                "content-length" => len = Some(v.parse::<usize>().unwrap()),
                _ => {}
            }
        }
        if !body.is_empty() {
            assert_eq!(Some(body.len()), len, "one response, whole: {text}");
        }
        for c in body.chars() {
            assert!(
                !model::sanitize::is_unsafe(c) || c == '\n',
                "{c:?} in {body}"
            );
        }
        Some((status, ctype, body.as_bytes().to_vec()))
    }

    fn get(path: &str) -> Vec<u8> {
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
    }

    #[tokio::test]
    async fn every_path_answers_and_hostile_input_ends_in_bounded_time() {
        for (path, want) in [
            ("/v1/snapshot", 200),
            ("/v1/findings", 200),
            ("/v1/changes?since=2026-12-01T13%3A00%3A00Z", 200),
            ("/v1/health", 200),
            ("/metrics", 200),
            ("/nope", 404),
            ("/v1/changes?since=yesterday", 400),
        ] {
            let out = exchange(&[&get(path)], Duration::ZERO, true).await;
            let (status, _, body) = parse(&out).unwrap();
            assert_eq!(status, want, "{path}: {}", String::from_utf8_lossy(&body));
        }
        let changes = exchange(&[&get("/v1/changes")], Duration::ZERO, true).await;
        assert!(String::from_utf8_lossy(&changes).contains("lookup main"));

        // HEAD: a head, no body.
        let out = exchange(
            &[b"HEAD /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"],
            Duration::ZERO,
            true,
        )
        .await;
        assert_eq!(parse(&out).unwrap().0, 200);

        // A bad method, pipelined requests (one answer: no keep-alive), garbage.
        let out = exchange(
            &[b"DELETE /v1/health HTTP/1.1\r\n\r\n"],
            Duration::ZERO,
            true,
        )
        .await;
        assert_eq!(parse(&out).unwrap().0, 405);
        let mut two = get("/v1/health");
        two.extend(get("/metrics"));
        let out = exchange(&[&two], Duration::ZERO, true).await;
        assert_eq!(parse(&out).unwrap().0, 200);
        assert_eq!(String::from_utf8_lossy(&out).matches("HTTP/1.1").count(), 1);
        let out = exchange(&[b"\x00\xff\x1b[2J\r\n\r\n"], Duration::ZERO, true).await;
        if let Some((status, _, _)) = parse(&out) {
            assert!((400..500).contains(&status), "{status}");
        }

        // Control characters in the path and in a query value come back escaped.
        for path in ["/\u{85}x\u{9b}31m", "/v1/changes?since=%C2%9B%07"] {
            let out = exchange(&[&get(path)], Duration::ZERO, true).await;
            let (status, ctype, body) = parse(&out).unwrap();
            assert!((400..500).contains(&status));
            assert_eq!(ctype, "application/json");
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert!(v["error"].as_str().unwrap().contains('\u{9b}'), "{v}");
        }

        // A huge header: refused (431 or closed), not buffered without bound.
        let mut huge = b"GET /v1/health HTTP/1.1\r\nX-Big: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', 1 << 20));
        let out = exchange(&[&huge], Duration::ZERO, true).await;
        if let Some((status, _, _)) = parse(&out) {
            assert!((400..500).contains(&status), "{status}");
        }

        // Slowloris: a partial head, trickled, never finished, never closed: the header
        // timeout ends it.
        let drip: Vec<&[u8]> = b"GET /v1/health HTTP/1.1\r\nHost: x\r\n"
            .chunks(1)
            .collect();
        let started = std::time::Instant::now();
        let out = exchange(&drip, Duration::from_millis(40), false).await;
        assert!(started.elapsed() >= LIMITS.header_read);
        if let Some((status, _, _)) = parse(&out) {
            assert!((400..500).contains(&status), "{status}");
        }
        // A partial head and then silence, held open.
        let out = exchange(&[b"GET /v1/hea"], Duration::ZERO, false).await;
        assert!(parse(&out).is_none_or(|(s, _, _)| (400..500).contains(&s)));
    }
}
