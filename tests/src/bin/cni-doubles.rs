//! `cni-doubles`: helpers run inside an emulated node's namespaces.
//!
//! * `serve --config node.json` — IMDSv2 and ipamd introspection doubles (see `e2e::doubles`).
//! * `listen --port P` — TCP listener (accept, echo, close) and UDP echo, for traffic tests.
//! * `connect --addr IP:PORT` — bounded TCP connects (the client side of `listen`).
//! * `udp-flood --addr IP --ports A-B --sockets K` — one datagram per (socket, port) to fill
//!   conntrack for benchmarks.
//!
//! Every long-running mode prints `ready` once it listens and exits by itself after `--ttl-secs`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use e2e::doubles::{serve_http, Imds, Ipamd};

#[derive(Parser)]
#[command(about = "IMDS/ipamd doubles and traffic helpers for emulated EKS nodes")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve IMDSv2 and ipamd introspection for the node described by --config.
    Serve {
        #[arg(long)]
        config: std::path::PathBuf,
        /// Exit after this many seconds.
        #[arg(long, default_value_t = 900)]
        ttl_secs: u64,
    },
    /// TCP accept-echo-close and UDP echo on 0.0.0.0:PORT.
    Listen {
        #[arg(long)]
        port: u16,
        #[arg(long, default_value_t = 900)]
        ttl_secs: u64,
    },
    /// Connect (and say hello) COUNT times; fails if any connect fails.
    Connect {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long, default_value_t = 1)]
        count: u32,
        #[arg(long, default_value_t = 3000)]
        timeout_ms: u64,
    },
    /// Send one UDP datagram to every port in PORTS from each of SOCKETS sockets.
    UdpFlood {
        #[arg(long)]
        addr: IpAddr,
        /// `A-B`, inclusive.
        #[arg(long)]
        ports: String,
        #[arg(long, default_value_t = 1)]
        sockets: u32,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Serve { config, ttl_secs } => serve(&config, ttl_secs).await,
        Cmd::Listen { port, ttl_secs } => listen(port, ttl_secs).await,
        Cmd::Connect {
            addr,
            count,
            timeout_ms,
        } => connect(addr, count, Duration::from_millis(timeout_ms)).await,
        Cmd::UdpFlood {
            addr,
            ports,
            sockets,
        } => udp_flood(addr, &ports, sockets).await,
    }
}

async fn serve(config: &std::path::Path, ttl_secs: u64) -> Result<()> {
    let cfg = e2e::node::load_config(config)?;
    let imds = Arc::new(Imds::new(&cfg));
    let ipamd = Arc::new(Ipamd::new(&cfg));
    let imds_l = TcpListener::bind(("127.0.0.1", cfg.imds_port))
        .await
        .with_context(|| format!("binding IMDS on 127.0.0.1:{}", cfg.imds_port))?;
    let ipamd_l = TcpListener::bind(("127.0.0.1", cfg.ipamd_port))
        .await
        .with_context(|| format!("binding ipamd on 127.0.0.1:{}", cfg.ipamd_port))?;
    println!("ready");
    let imds_task = tokio::spawn(serve_http(imds_l, move |r| imds.handle(r)));
    let ipamd_task = tokio::spawn(serve_http(ipamd_l, move |r| ipamd.handle(r)));
    tokio::time::sleep(Duration::from_secs(ttl_secs)).await;
    imds_task.abort();
    ipamd_task.abort();
    Ok(())
}

async fn listen(port: u16, ttl_secs: u64) -> Result<()> {
    let tcp = TcpListener::bind(("0.0.0.0", port))
        .await
        .with_context(|| format!("binding tcp/{port}"))?;
    let udp = UdpSocket::bind(("0.0.0.0", port))
        .await
        .with_context(|| format!("binding udp/{port}"))?;
    println!("ready");
    let tcp_task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = tcp.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut b = [0u8; 256];
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_secs(2), s.read(&mut b)).await
                {
                    let _ = s.write_all(&b[..n]).await;
                }
                let _ = s.shutdown().await;
            });
        }
    });
    let udp_task = tokio::spawn(async move {
        let mut b = [0u8; 1500];
        loop {
            if let Ok((n, from)) = udp.recv_from(&mut b).await {
                let _ = udp.send_to(&b[..n], from).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(ttl_secs)).await;
    tcp_task.abort();
    udp_task.abort();
    Ok(())
}

async fn connect(addr: SocketAddr, count: u32, timeout: Duration) -> Result<()> {
    for i in 0..count {
        let mut s = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .with_context(|| format!("connect {i} to {addr} timed out"))?
            .with_context(|| format!("connect {i} to {addr}"))?;
        s.write_all(b"hello\n").await?;
        let mut b = [0u8; 16];
        let n = tokio::time::timeout(timeout, s.read(&mut b))
            .await
            .with_context(|| format!("no echo from {addr}"))??;
        if &b[..n] != b"hello\n" {
            bail!("unexpected echo from {addr}: {:?}", &b[..n]);
        }
    }
    Ok(())
}

async fn udp_flood(addr: IpAddr, ports: &str, sockets: u32) -> Result<()> {
    let (a, b) = ports.split_once('-').context("--ports must be A-B")?;
    let (a, b): (u16, u16) = (a.parse()?, b.parse()?);
    if a > b || a == 0 {
        bail!("invalid port range {ports}");
    }
    let mut sent = 0u64;
    for _ in 0..sockets {
        let s = UdpSocket::bind(("0.0.0.0", 0)).await?;
        for p in a..=b {
            // ENOBUFS/EAGAIN under load: retry briefly, then give up on that datagram.
            for _ in 0..3 {
                if s.send_to(b"x", (addr, p)).await.is_ok() {
                    sent += 1;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    println!("sent {sent}");
    Ok(())
}
