//! Fleets of real OpenSSH `sshd`s, one per network namespace, bridged to an "ops" namespace
//! where the client under test runs. Nothing is added to the root namespace: the bridge and
//! every veth end live in the ops namespace or a node namespace.
//!
//! Each fleet gets a unique name stem; on drop every process started in its namespaces is
//! killed by PID and the namespaces are deleted (which removes their veths).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The sshd binary.
pub const SSHD: &str = "/usr/sbin/sshd";
/// Most nodes one fleet may have (bounds the namespaces and sshds a test can start).
pub const MAX_NODES: usize = 120;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// True when sshd and ssh-keygen are installed.
pub fn sshd_available() -> bool {
    Path::new(SSHD).exists()
        && Command::new("ssh-keygen")
            .arg("-?")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
}

fn run(argv: &[&str]) -> Result<String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("spawning {argv:?}"))?;
    if !out.status.success() {
        bail!(
            "{argv:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Generates an ed25519 key pair at `path` (and `path.pub`); returns the public key line.
pub fn keygen(path: &Path, comment: &str) -> Result<String> {
    let p = path.to_string_lossy();
    run(&[
        "ssh-keygen",
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        comment,
        "-f",
        &p,
    ])?;
    let pubkey = fs::read_to_string(format!("{p}.pub")).context("reading generated .pub")?;
    Ok(pubkey.trim().to_string())
}

/// `algo base64` of a public key line (drops the comment).
pub fn key_body(pub_line: &str) -> String {
    pub_line
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Stops a node's `unshare` + sshd: kills sshd (PID 1 of its PID namespace, so the kernel
/// kills and reaps every session in it) so that `unshare` reaps it and exits, then waits for
/// `unshare`. Falls back to killing `unshare` itself.
fn stop_tree(mut c: Child) {
    let pid = c.id();
    let kids = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let mut killed = false;
    for k in kids.split_whitespace() {
        killed |= Command::new("kill")
            .args(["-9", k])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    }
    if !killed {
        let _ = c.kill();
    }
    let _ = c.wait();
}

/// One node: a namespace with an address on the fleet bridge and an sshd.
pub struct SshNode {
    pub index: usize,
    pub ns: String,
    pub addr: String,
    pub port: u16,
    pub dir: PathBuf,
    /// `ssh-ed25519 AAAA...` of the node's host key.
    pub host_key: String,
    config: PathBuf,
    child: Option<Child>,
}

impl SshNode {
    /// PID of the `unshare` process holding the node's sshd PID namespace.
    pub fn sshd_pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// sshd's stderr log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }
}

/// An ops namespace with a bridge, and sshd nodes attached to it.
pub struct SshFleet {
    pub stem: String,
    pub dir: tempfile::TempDir,
    /// Namespace where the client under test runs.
    pub ops: String,
    pub nodes: Vec<SshNode>,
    /// Private key authorised on every node (root login).
    pub client_key: PathBuf,
    pub client_pub: String,
    namespaces: Vec<String>,
    helpers: Vec<Child>,
    subnet: u8,
}

impl SshFleet {
    /// Creates the ops namespace and `n` nodes (each with a running sshd).
    pub fn new(n: usize) -> Result<SshFleet> {
        let k = COUNTER.fetch_add(1, Ordering::SeqCst);
        let stem = format!("fsh{}x{k}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix(&format!("{stem}-"))
            .tempdir()
            .context("creating the fleet temp dir")?;
        let ops = format!("{stem}-ops");
        let client_key = dir.path().join("client_key");
        let client_pub = keygen(&client_key, "fleet-test-client")?;
        fs::write(
            dir.path().join("authorized_keys"),
            format!("{client_pub}\n"),
        )?;
        // 10.(200+k%50).0.0/16: namespace-local, distinct per fleet for readable logs.
        let subnet = 200u8.saturating_add(u8::try_from(k % 50).unwrap_or(0));
        let mut fleet = SshFleet {
            stem,
            dir,
            ops: ops.clone(),
            nodes: Vec::new(),
            client_key,
            client_pub,
            namespaces: Vec::new(),
            helpers: Vec::new(),
            subnet,
        };
        run(&["ip", "netns", "add", &ops])?;
        fleet.namespaces.push(ops.clone());
        run(&["ip", "-n", &ops, "link", "set", "lo", "up"])?;
        run(&["ip", "-n", &ops, "link", "add", "br0", "type", "bridge"])?;
        run(&[
            "ip",
            "-n",
            &ops,
            "addr",
            "add",
            &format!("10.{subnet}.0.1/16"),
            "dev",
            "br0",
        ])?;
        run(&["ip", "-n", &ops, "link", "set", "br0", "up"])?;
        fs::create_dir_all("/run/sshd").context("creating sshd's privilege separation dir")?;
        for _ in 0..n {
            fleet.add_node("")?;
        }
        fleet.wait_ready(Duration::from_secs(10))?;
        Ok(fleet)
    }

    /// Adds a node whose sshd config starts with `extra` (first value wins in sshd_config) (e.g. `AllowUsers root@10.x.y.z`).
    /// Does not wait for it to listen; call [`SshFleet::wait_ready`].
    pub fn add_node(&mut self, extra: &str) -> Result<usize> {
        let i = self.nodes.len();
        if i >= MAX_NODES {
            bail!("a fleet is limited to {MAX_NODES} nodes");
        }
        let ns = format!("{}-n{i}", self.stem);
        let host = i + 10;
        let addr = format!("10.{}.{}.{}", self.subnet, host / 250, host % 250 + 2);
        let ndir = self.dir.path().join(format!("n{i}"));
        fs::create_dir_all(&ndir)?;
        run(&["ip", "netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        // No IPv6 DAD: link-local addresses/routes appear at once, not a second later
        // (collections taken moments apart must see the same state).
        run(&[
            "ip",
            "netns",
            "exec",
            &ns,
            "sysctl",
            "-qw",
            "net.ipv6.conf.default.accept_dad=0",
        ])?;
        let veth = format!("v{i}");
        run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
        run(&[
            "ip", "-n", &self.ops, "link", "add", &veth, "type", "veth", "peer", "name", "eth0",
            "netns", &ns,
        ])?;
        run(&[
            "ip", "-n", &self.ops, "link", "set", &veth, "master", "br0", "up",
        ])?;
        run(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/16"),
            "dev",
            "eth0",
        ])?;
        run(&["ip", "-n", &ns, "link", "set", "eth0", "up"])?;
        let key = ndir.join("ssh_host_ed25519_key");
        let host_key = key_body(&keygen(&key, &format!("node{i}"))?);
        let config = ndir.join("sshd_config");
        let auth = self.dir.path().join("authorized_keys");
        fs::write(
            &config,
            format!(
                "{extra}\nListenAddress {addr}:22\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
                 UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PermitRootLogin prohibit-password\nAllowTcpForwarding yes\nX11Forwarding no\n\
                 PrintMotd no\nLogLevel ERROR\nMaxStartups 200:30:400\nMaxSessions 64\n",
                key.display(),
                ndir.join("sshd.pid").display(),
                auth.display(),
            ),
        )?;
        let mut node = SshNode {
            index: i,
            ns,
            addr,
            port: 22,
            dir: ndir,
            host_key,
            config,
            child: None,
        };
        Self::start(&mut node)?;
        self.nodes.push(node);
        Ok(i)
    }

    /// Starts sshd as PID 1 of its own PID namespace (`unshare --kill-child`): killing the
    /// `unshare` parent kills and reaps every session process too, leaving no zombies.
    fn start(node: &mut SshNode) -> Result<()> {
        let log = fs::File::create(node.dir.join("sshd.log"))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &node.ns])
            .args([
                "unshare",
                "--fork",
                "--pid",
                "--kill-child",
                SSHD,
                "-D",
                "-e",
                "-f",
            ])
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting sshd in {}", node.ns))?;
        node.child = Some(child);
        Ok(())
    }

    /// Starts an sshd in an existing namespace (e.g. an emulated EKS node's), listening on
    /// `addr:22`, and waits until it accepts TCP from `client_ns`. The namespace is not
    /// deleted on drop; the sshd is stopped.
    pub fn attach_sshd(&mut self, ns: &str, addr: &str, client_ns: &str) -> Result<usize> {
        let i = self.nodes.len();
        let ndir = self.dir.path().join(format!("n{i}"));
        fs::create_dir_all(&ndir)?;
        let key = ndir.join("ssh_host_ed25519_key");
        let host_key = key_body(&keygen(&key, &format!("node{i}"))?);
        let config = ndir.join("sshd_config");
        fs::write(
            &config,
            format!(
                "ListenAddress {addr}:22\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
                 UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PermitRootLogin prohibit-password\nX11Forwarding no\nPrintMotd no\nLogLevel ERROR\n",
                key.display(),
                ndir.join("sshd.pid").display(),
                self.dir.path().join("authorized_keys").display(),
            ),
        )?;
        let mut node = SshNode {
            index: i,
            ns: ns.to_string(),
            addr: addr.to_string(),
            port: 22,
            dir: ndir,
            host_key,
            config,
            child: None,
        };
        Self::start(&mut node)?;
        self.nodes.push(node);
        self.wait_listening(i, client_ns, Duration::from_secs(10))?;
        Ok(i)
    }

    fn wait_listening(&self, i: usize, from_ns: &str, limit: Duration) -> Result<()> {
        let n = self.nodes.get(i).context("no such node")?;
        let deadline = Instant::now() + limit;
        loop {
            let ok = Command::new("ip")
                .args(["netns", "exec", from_ns, "bash", "-c"])
                .arg(format!("exec 3<>/dev/tcp/{}/{}", n.addr, n.port))
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "sshd of node {} ({}) not reachable from {from_ns}; log: {}",
                    n.index,
                    n.addr,
                    n.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A command that runs `program` inside namespace `ns`.
    pub fn ns_command(ns: &str, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(program);
        c
    }

    /// Waits until every running node's sshd accepts TCP from the ops namespace.
    pub fn wait_ready(&self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        for n in self
            .nodes
            .iter()
            .filter(|n| n.child.is_some() && n.ns.starts_with(&self.stem))
        {
            loop {
                let ok = Command::new("ip")
                    .args(["netns", "exec", &self.ops, "bash", "-c"])
                    .arg(format!("exec 3<>/dev/tcp/{}/{}", n.addr, n.port))
                    .stderr(Stdio::null())
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false);
                if ok {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "sshd of node {} ({}) not listening; log: {}",
                        n.index,
                        n.addr,
                        n.log()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// Stops a node's sshd (the namespace stays: connections are refused).
    pub fn stop_node(&mut self, i: usize) {
        if let Some(c) = self.nodes.get_mut(i).and_then(|n| n.child.take()) {
            stop_tree(c);
        }
    }

    /// Replaces a node's host key with a fresh one and restarts its sshd.
    pub fn rotate_host_key(&mut self, i: usize) -> Result<()> {
        self.stop_node(i);
        let node = self.nodes.get_mut(i).context("no such node")?;
        let key = node.dir.join("ssh_host_ed25519_key");
        let _ = fs::remove_file(&key);
        let _ = fs::remove_file(node.dir.join("ssh_host_ed25519_key.pub"));
        node.host_key = key_body(&keygen(&key, "rotated")?);
        Self::start(node)?;
        self.wait_ready(Duration::from_secs(10))
    }

    /// known_hosts lines for these nodes (`addr key`).
    pub fn known_hosts_lines(&self, which: impl IntoIterator<Item = usize>) -> String {
        which
            .into_iter()
            .filter_map(|i| self.nodes.get(i))
            .map(|n| format!("{} {}\n", n.addr, n.host_key))
            .collect()
    }

    /// The ops namespace's address on the fleet bridge (source of direct connections).
    pub fn ops_addr(&self) -> String {
        format!("10.{}.0.1", self.subnet)
    }

    /// Writes a file in the fleet's temp dir; returns its path.
    pub fn write(&self, name: &str, content: &str) -> Result<PathBuf> {
        let p = self.dir.path().join(name);
        fs::write(&p, content)?;
        Ok(p)
    }

    /// A command that runs `argv` inside the ops namespace.
    pub fn ops_command(&self, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ops]).arg(program);
        c
    }

    /// Starts a helper process in the ops namespace; it is killed on drop.
    pub fn spawn_in_ops(&mut self, mut cmd: Command) -> Result<u32> {
        let child = cmd
            .spawn()
            .context("spawning a helper in the ops namespace")?;
        let pid = child.id();
        self.helpers.push(child);
        Ok(pid)
    }

    fn teardown(&mut self) {
        for mut c in self.helpers.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &mut self.nodes {
            if let Some(c) = n.child.take() {
                stop_tree(c);
            }
        }
        // Session processes sshd forked are still in the namespaces: kill them by PID.
        for ns in &self.namespaces {
            if let Ok(out) = run(&["ip", "netns", "pids", ns]) {
                for pid in out.split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
        }
        for ns in self.namespaces.drain(..).rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", &ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for SshFleet {
    fn drop(&mut self) {
        self.teardown();
    }
}
