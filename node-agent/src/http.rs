//! The HTTP client for IMDS and ipamd introspection, on hyper's HTTP/1 client.
//!
//! Only what those two endpoints need: `http://` URLs with an IP-literal host (no DNS, no
//! TLS), one request per connection (`Connection: close`), a connect timeout, a
//! whole-request timeout and a body size cap. Framing (Content-Length, chunked,
//! read-to-close) is hyper's. The same hyper (server side) answers `node-agent serve`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Largest response body accepted (introspection `/v1/enis` on a big node is ~1 MB).
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("invalid URL `{url}`: {why}")]
    Url { url: String, why: &'static str },
    #[error("connect to {addr} timed out after {}", crate::duration::format(*.after))]
    ConnectTimeout { addr: SocketAddr, after: Duration },
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{method} {url} timed out after {}", crate::duration::format(*.after))]
    Timeout {
        method: String,
        url: String,
        after: Duration,
    },
    #[error("{method} {url}: {source}")]
    Io {
        method: String,
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{method} {url}: malformed response: {why}")]
    Malformed {
        method: String,
        url: String,
        why: String,
    },
}

impl HttpError {
    /// Nothing listens there (refused, unreachable, connect timeout): the source is absent.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            HttpError::ConnectTimeout { .. } | HttpError::Connect { .. }
        )
    }
}

/// A parsed `http://IP[:port][/base]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// Path prefix without a trailing slash (usually empty).
    pub base_path: String,
}

impl Endpoint {
    /// Parse an endpoint URL. The host must be an IP literal (`[::1]` for IPv6).
    pub fn parse(url: &str) -> Result<Endpoint, HttpError> {
        let err = |why| HttpError::Url {
            url: url.to_string(),
            why,
        };
        let rest = url
            .trim()
            .strip_prefix("http://")
            .ok_or_else(|| err("only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6.find(']').ok_or_else(|| err("unterminated [ in host"))?;
            let host = &v6[..end];
            let after = &v6[end + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(err("garbage after ]")),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let ip: IpAddr = host
            .parse()
            .map_err(|_| err("host must be an IP address (no DNS)"))?;
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| err("invalid port"))?,
            None => 80,
        };
        Ok(Endpoint {
            addr: SocketAddr::new(ip, port),
            base_path: path.trim_end_matches('/').to_string(),
        })
    }

    /// `http://addr/base/path` for messages.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}{}", self.addr, self.base_path, path)
    }
}

/// Timeouts for one request.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// Whole request, connect included.
    pub total: Duration,
}

/// A response. Header names are lower-cased.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Send one request and read the whole response.
pub async fn request(
    ep: &Endpoint,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeouts: Timeouts,
) -> Result<Response, HttpError> {
    let url = ep.url(path);
    let fut = async {
        let stream = match tokio::time::timeout(timeouts.connect, TcpStream::connect(ep.addr)).await
        {
            Err(_) => {
                return Err(HttpError::ConnectTimeout {
                    addr: ep.addr,
                    after: timeouts.connect,
                })
            }
            Ok(Err(source)) => {
                return Err(HttpError::Connect {
                    addr: ep.addr,
                    source,
                })
            }
            Ok(Ok(s)) => s,
        };
        exchange(stream, ep, method, path, headers, body).await
    };
    match tokio::time::timeout(timeouts.total, fut).await {
        Ok(r) => r,
        Err(_) => Err(HttpError::Timeout {
            method: method.to_string(),
            url,
            after: timeouts.total,
        }),
    }
}

/// One request on a fresh connection with hyper's HTTP/1 client (`Connection: close`).
async fn exchange(
    stream: TcpStream,
    ep: &Endpoint,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, HttpError> {
    let url = ep.url(path);
    let malformed = |why: String| HttpError::Malformed {
        method: method.to_string(),
        url: url.clone(),
        why,
    };
    let io = |e: hyper::Error| {
        // A reset or an early close is I/O; anything hyper could not parse is malformed.
        let kind = if e.is_incomplete_message() {
            std::io::ErrorKind::UnexpectedEof
        } else {
            std::io::ErrorKind::Other
        };
        if e.is_parse() {
            malformed(e.to_string())
        } else {
            HttpError::Io {
                method: method.to_string(),
                url: url.clone(),
                source: std::io::Error::new(kind, e),
            }
        }
    };
    let host = match ep.addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    };
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(format!("{}{path}", ep.base_path))
        .header(hyper::header::HOST, host)
        .header(
            hyper::header::USER_AGENT,
            concat!("node-agent/", env!("CARGO_PKG_VERSION")),
        )
        .header(hyper::header::ACCEPT, "*/*")
        .header(hyper::header::CONNECTION, "close");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if !body.is_empty() || method == "PUT" || method == "POST" {
        req = req.header(hyper::header::CONTENT_LENGTH, body.len());
    }
    let req = req
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| malformed(format!("cannot build the request: {e}")))?;

    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .title_case_headers(true)
        .handshake::<_, Full<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(io)?;
    // The connection task ends with the exchange (Connection: close), or when dropped.
    let conn = tokio::spawn(conn);
    let result = async {
        let resp = sender.send_request(req).await.map_err(io)?;
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let declared: Option<u64> = resp
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        if declared.is_some_and(|n| n > MAX_BODY as u64) {
            return Err(malformed(format!("body exceeds the {MAX_BODY} byte cap")));
        }
        let mut incoming = resp.into_body();
        let mut body: Vec<u8> = Vec::new();
        while let Some(frame) = incoming.frame().await {
            match frame {
                Ok(f) => {
                    if let Some(chunk) = f.data_ref() {
                        if body.len() + chunk.len() > MAX_BODY {
                            return Err(malformed(format!("body exceeds the {MAX_BODY} byte cap")));
                        }
                        body.extend_from_slice(chunk);
                    }
                }
                Err(e) => {
                    return Err(match declared {
                        Some(n) if (body.len() as u64) < n => {
                            malformed(format!("body ended after {} of {n} bytes", body.len()))
                        }
                        _ => io(e),
                    })
                }
            }
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }
    .await;
    conn.abort();
    result
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    /// Serve one raw canned response per connection, for `n` connections; returns the
    /// address and a handle yielding the raw requests seen.
    pub(crate) async fn serve_raw(
        responses: Vec<Vec<u8>>,
    ) -> (SocketAddr, tokio::task::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move {
            let mut seen = Vec::new();
            for resp in responses {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = s.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                    if n == 0 || find(&buf, b"\r\n\r\n").is_some() {
                        break;
                    }
                }
                seen.push(String::from_utf8_lossy(&buf).into_owned());
                s.write_all(&resp).await.unwrap();
                s.shutdown().await.ok();
            }
            seen
        });
        (addr, handle)
    }

    /// Serve canned responses by request path (any order, any number of connections)
    /// until the returned handle is aborted. Unknown paths get 404.
    pub(crate) async fn serve_paths(
        routes: Vec<(&'static str, u16, String)>,
    ) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let routes = std::sync::Arc::new(routes);
        let handle = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let routes = routes.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while find(&buf, b"\r\n\r\n").is_none() {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf).into_owned();
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                    let (status, body) = routes
                        .iter()
                        .find(|(p, _, _)| *p == path)
                        .map(|(_, st, b)| (*st, b.clone()))
                        .unwrap_or((404, "404 page not found".to_string()));
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(resp.as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        (addr, handle)
    }

    fn t() -> Timeouts {
        Timeouts {
            connect: Duration::from_millis(300),
            total: Duration::from_secs(2),
        }
    }

    #[test]
    fn parses_endpoints() {
        let e = Endpoint::parse("http://169.254.169.254").unwrap();
        assert_eq!(e.addr, "169.254.169.254:80".parse().unwrap());
        assert_eq!(e.base_path, "");
        let e = Endpoint::parse("http://127.0.0.1:61679/").unwrap();
        assert_eq!(e.addr, "127.0.0.1:61679".parse().unwrap());
        let e = Endpoint::parse("http://[fd00:ec2::254]:8080/prefix/").unwrap();
        assert_eq!(e.addr, "[fd00:ec2::254]:8080".parse().unwrap());
        assert_eq!(e.base_path, "/prefix");
        assert_eq!(e.url("/x"), "http://[fd00:ec2::254]:8080/prefix/x");
        assert!(Endpoint::parse("https://1.2.3.4").is_err());
        assert!(Endpoint::parse("http://example.com").is_err());
        assert!(Endpoint::parse("http://1.2.3.4:99999").is_err());
    }

    #[tokio::test]
    async fn content_length_and_request_shape() {
        let (addr, h) = serve_raw(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test: a\r\n\r\nhelloEXTRA".to_vec(),
        ])
        .await;
        let ep = Endpoint::parse(&format!("http://{addr}")).unwrap();
        let r = request(&ep, "PUT", "/latest/api/token", &[("X-Hdr", "1")], b"", t())
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hello");
        assert_eq!(r.header("x-test"), Some("a"));
        let seen = h.await.unwrap();
        assert!(
            seen[0].starts_with("PUT /latest/api/token HTTP/1.1\r\n"),
            "{}",
            seen[0]
        );
        assert!(seen[0].contains("\r\nX-Hdr: 1\r\n"));
        assert!(seen[0].contains("\r\nContent-Length: 0\r\n"));
        assert!(seen[0].contains("\r\nConnection: close\r\n"));
    }

    #[tokio::test]
    async fn chunked_and_close_delimited() {
        let (addr, _h) = serve_raw(vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n6;x=y\r\npedia \r\n0\r\n\r\n".to_vec(),
            b"HTTP/1.0 404 Not Found\r\n\r\nnot here".to_vec(),
        ])
        .await;
        let ep = Endpoint::parse(&format!("http://{addr}")).unwrap();
        let r = request(&ep, "GET", "/a", &[], b"", t()).await.unwrap();
        assert_eq!(r.text(), "Wikipedia ");
        let r = request(&ep, "GET", "/b", &[], b"", t()).await.unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.text(), "not here");
    }

    #[tokio::test]
    async fn refused_is_unreachable_and_truncated_is_malformed() {
        // Bind then drop to get a port nobody listens on.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let ep = Endpoint::parse(&format!("http://{addr}")).unwrap();
        let e = request(&ep, "GET", "/", &[], b"", t()).await.unwrap_err();
        assert!(e.is_unreachable(), "{e}");

        let (addr, _h) = serve_raw(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort".to_vec()
        ])
        .await;
        let ep = Endpoint::parse(&format!("http://{addr}")).unwrap();
        let e = request(&ep, "GET", "/", &[], b"", t()).await.unwrap_err();
        assert!(matches!(e, HttpError::Malformed { .. }), "{e}");
        assert!(e.to_string().contains("5 of 50"), "{e}");
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _keep = tokio::spawn(async move {
            let (_s, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        let ep = Endpoint::parse(&format!("http://{addr}")).unwrap();
        let start = std::time::Instant::now();
        let e = request(
            &ep,
            "GET",
            "/slow",
            &[],
            b"",
            Timeouts {
                connect: Duration::from_millis(300),
                total: Duration::from_millis(400),
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(e, HttpError::Timeout { .. }), "{e}");
        assert!(e.to_string().contains("timed out after 400ms"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(3));
    }
}
