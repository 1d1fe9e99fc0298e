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
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

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
        let svc = hyper::service::service_fn(move |req| {
            let ctx = ctx.clone();
            async move { Ok::<_, Infallible>(handle(&ctx, allowed, req)) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .keep_alive(false)
            .serve_connection(TokioIo::new(stream), svc);
        // Errors here are the client's (garbage, timeouts, resets): nothing to do.
        let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
    });
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

fn json(status: StatusCode, value: &impl serde::Serialize) -> Resp {
    match serde_json::to_vec(value) {
        Ok(mut b) => {
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
