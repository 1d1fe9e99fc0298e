#![allow(clippy::unwrap_used, clippy::expect_used)]
//! EC2 discovery and SSM wiring against moto_server on 127.0.0.1 (started here, killed by
//! PID). moto emulates DescribeInstances faithfully but does NOT execute SSM commands:
//! SendCommand "succeeds" at once, GetCommandInvocation returns empty output and
//! ListCommandInvocations is not implemented. So these tests prove request shapes, batching,
//! pagination and status handling, not remote execution.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use fleet::ec2::{discover, Ec2Query};
use fleet::ssm::{AwsSsm, Invocation, SendRequest, SsmApi, SsmError, SsmOptions, SsmTransport};
use model::Outcome;

struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto() -> Option<Moto> {
    let found = Command::new("moto_server")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if e2e::prereq::missing(
        !found,
        "moto_server is not installed (scripts/install-deps.sh installs moto[server])",
    ) {
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let m = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(m)
}

async fn conf(url: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ec2::config::Credentials::new(
            "testing", "testing", None, None, "static",
        ))
        .endpoint_url(url)
        .load()
        .await
}

async fn launch(ec2: &aws_sdk_ec2::Client, n: i32, key: &str, value: &str) -> Vec<String> {
    let out = ec2
        .run_instances()
        .image_id("ami-03cf127a")
        .instance_type(InstanceType::M5Large)
        .min_count(n)
        .max_count(n)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key(key).value(value).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect()
}

/// Counts calls and checks batch sizes on the way to the real SDK client.
struct Counting<A> {
    inner: A,
    sends: Mutex<Vec<usize>>,
    lists: AtomicUsize,
}

impl<A: SsmApi> SsmApi for Counting<A> {
    async fn send_command(&self, req: &SendRequest) -> Result<String, SsmError> {
        self.sends.lock().unwrap().push(req.instance_ids.len());
        self.inner.send_command(req).await
    }
    async fn get_invocation(&self, c: &str, i: &str) -> Result<Invocation, SsmError> {
        self.inner.get_invocation(c, i).await
    }
    async fn list_invocations(&self, c: &str) -> Result<Vec<Invocation>, SsmError> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        self.inner.list_invocations(c).await
    }
    async fn get_object(&self, b: &str, k: &str) -> Result<Vec<u8>, SsmError> {
        self.inner.get_object(b, k).await
    }
}

#[tokio::test]
async fn ec2_discovery_and_ssm_batches_against_moto() {
    let Some(m) = moto() else { return };
    let conf = conf(&m.url).await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let demo = launch(&ec2, 60, "eks:cluster-name", "demo").await;
    let legacy = launch(&ec2, 5, "kubernetes.io/cluster/demo", "owned").await;
    let _other = launch(&ec2, 3, "eks:cluster-name", "other").await;
    ec2.stop_instances()
        .instance_ids(demo[0].clone())
        .instance_ids(demo[1].clone())
        .send()
        .await
        .unwrap();

    let q = Ec2Query {
        cluster: Some("demo".into()),
        page_size: Some(7),
        ..Default::default()
    };
    let targets = discover(&ec2, &q).await.unwrap();
    assert_eq!(
        targets.len(),
        58 + 5,
        "running demo instances of both tag conventions"
    );
    for t in &targets {
        let id = t.instance_id.as_deref().unwrap();
        assert!(demo[2..].contains(&id.to_string()) || legacy.contains(&id.to_string()));
        assert!(
            t.name.ends_with(".internal"),
            "private DNS name as display name: {}",
            t.name
        );
        assert!(
            t.host.parse::<std::net::Ipv4Addr>().is_ok(),
            "private IP as host"
        );
    }
    // An extra filter narrows further.
    let q = Ec2Query {
        cluster: Some("demo".into()),
        filters: vec![("instance-id".into(), vec![legacy[0].clone()])],
        page_size: Some(5),
        ..Default::default()
    };
    assert_eq!(discover(&ec2, &q).await.unwrap().len(), 1);
    // Instance ids only.
    let q = Ec2Query {
        instance_ids: vec![demo[5].clone(), demo[6].clone()],
        ..Default::default()
    };
    assert_eq!(discover(&ec2, &q).await.unwrap().len(), 2);

    // SSM: 63 instances → SendCommand batches of 50 and 13. moto answers Success with empty
    // output for every invocation (it runs nothing), which must surface as invalid-output
    // ("printed nothing"), never as ok.
    let api = std::sync::Arc::new(Counting {
        inner: AwsSsm::new(&conf),
        sends: Mutex::new(Vec::new()),
        lists: AtomicUsize::new(0),
    });
    let opts = SsmOptions {
        command_timeout: Duration::from_secs(10),
        poll_initial: Duration::from_millis(100),
        poll_max: Duration::from_millis(500),
        poll_slack: Duration::from_secs(20),
        ..Default::default()
    };
    // Through the fleet runner: one Finished event per node.
    let mut run = fleet::run(
        std::sync::Arc::new(SsmTransport::new(api.clone(), opts)),
        targets.clone(),
    );
    let done = AtomicUsize::new(0);
    let mut r = vec![None; targets.len()];
    while let Some(ev) = run.next_event().await {
        if let fleet::FleetEvent::Finished {
            index,
            outcome,
            snapshot,
            ..
        } = ev
        {
            done.fetch_add(1, Ordering::SeqCst);
            r[index] = Some((outcome, snapshot.map(|s| *s)));
        }
    }
    let r: Vec<_> = r.into_iter().map(Option::unwrap).collect();
    assert_eq!(*api.sends.lock().unwrap(), vec![50, 13]);
    assert_eq!(r.len(), 63);
    assert_eq!(done.load(Ordering::SeqCst), 63);
    for (n, s) in &r {
        assert_eq!(n.outcome, Outcome::InvalidOutput, "{n:?}");
        assert!(
            n.error.as_deref().unwrap().contains("printed nothing"),
            "{n:?}"
        );
        assert!(s.is_none());
    }
    // ListCommandInvocations is not implemented by moto: tried once, then per-instance Gets.
    assert_eq!(api.lists.load(Ordering::SeqCst), 1);
}

/// The CLI end to end over SSM: `diag-fleet --ec2-cluster demo` with AWS_ENDPOINT_URL
/// pointing at moto discovers the instances, sends the commands and, since moto runs
/// nothing, reports every node `invalid-output` and exits 2.
#[tokio::test]
async fn cli_ec2_cluster_over_ssm_against_moto() {
    let Some(m) = moto() else { return };
    let conf = conf(&m.url).await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let ids = launch(&ec2, 7, "eks:cluster-name", "cli-demo").await;
    let out = tempfile::tempdir().unwrap();
    // diag-fleet is built by the diag crate (`cargo build -p diag --bin diag-fleet`).
    let bin = e2e::doubles::sibling_bin(
        "diag-fleet",
        "EKD_DIAG_FLEET",
        "cargo build -p diag --bin diag-fleet",
    )
    .unwrap();
    let o = tokio::process::Command::new(bin)
        .args([
            "--ec2-cluster",
            "cli-demo",
            "--transport",
            "ssm",
            "--command-timeout",
            "5",
        ])
        .args(["--only", "ip-", "-o"])
        .arg(out.path())
        .env("AWS_ENDPOINT_URL", &m.url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env("HOME", out.path())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    let report: model::FleetReport =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("fleet.json")).unwrap())
            .unwrap();
    assert_eq!(report.transport, "ssm");
    assert_eq!(report.nodes.len(), 7, "{stderr}");
    for n in &report.nodes {
        assert!(ids.contains(&n.target), "{n:?}");
        assert_eq!(n.outcome, Outcome::InvalidOutput);
    }
    assert!(
        stderr.contains("0 ok, 7 failed (7 invalid-output)"),
        "{stderr}"
    );
}
