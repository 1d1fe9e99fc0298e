//! ipamd/plugin log events classified by the log parser (groundtruth §3.3):
//! `ipamd.ip-exhaustion`, `ipamd.ec2-throttling`, `ipamd.eni-attach-failure`, `ipamd.not-ready`.

use model::{Evidence, EvidenceKind, LogEvent, LogEventKind, SectionStatus, Severity};

use crate::rule::{config_ev, section_reason, Ctx, RuleResult};

pub(crate) const EXHAUSTION_ID: &str = "ipamd.ip-exhaustion";
pub(crate) const THROTTLING_ID: &str = "ipamd.ec2-throttling";
pub(crate) const ATTACH_ID: &str = "ipamd.eni-attach-failure";
pub(crate) const NOT_READY_ID: &str = "ipamd.not-ready";

const SAMPLES: usize = 5;

/// The cni_logs events of one kind, or why the section gives none.
pub(super) fn events<'a>(ctx: &Ctx<'a>, kind: LogEventKind) -> Result<Vec<&'a LogEvent>, String> {
    let logs = ctx.s.cni_logs.get().ok_or_else(|| {
        section_reason(
            "cni_logs",
            ctx.s.cni_logs.status,
            ctx.s.cni_logs.reason.as_deref(),
        )
    })?;
    Ok(logs
        .events
        .iter()
        .filter(|e| e.kind == Some(kind))
        .collect())
}

/// A log event as evidence, located at `file:line`.
pub(super) fn log_ev(e: &LogEvent) -> Evidence {
    let loc = match e.line {
        Some(l) => format!("{}:{l}", e.file),
        None => e.file.clone(),
    };
    let ts = e.ts.clone().map(|t| format!("{t} ")).unwrap_or_default();
    Evidence::new(EvidenceKind::Log, format!("{ts}{} {}", e.level, e.msg)).at(loc)
}

fn summary_of(evs: &[&LogEvent]) -> String {
    let first = evs.iter().filter_map(|e| e.ts.as_deref()).min();
    let last = evs.iter().filter_map(|e| e.ts.as_deref()).max();
    match (first, last) {
        (Some(a), Some(b)) if a != b => format!("{} event(s), first {a}, last {b}", evs.len()),
        (Some(a), _) => format!("{} event(s) at {a}", evs.len()),
        _ => format!("{} event(s)", evs.len()),
    }
}

/// Samples: the first, then the newest ones.
fn samples<'a>(evs: &[&'a LogEvent]) -> Vec<&'a LogEvent> {
    if evs.len() <= SAMPLES {
        return evs.to_vec();
    }
    let mut v = vec![evs[0]];
    v.extend(evs[evs.len() - (SAMPLES - 1)..].iter().copied());
    v
}

fn log_finding(
    ctx: &Ctx<'_>,
    id: &str,
    kind: LogEventKind,
    sev: Severity,
    what: &str,
    explain: &str,
    remedy: &str,
) -> RuleResult {
    let evs = events(ctx, kind)?;
    if evs.is_empty() {
        return Ok(vec![]);
    }
    Ok(vec![ctx
        .finding(id, sev, format!("{what}: {}", summary_of(&evs)))
        .evs(samples(&evs).into_iter().map(log_ev))
        .explain(explain)
        .remedy(remedy)
        .done()])
}

pub(crate) fn check_exhaustion(ctx: &Ctx<'_>) -> RuleResult {
    // ipamd's pool debug lines (`IP pool stats: … used = total`, `IP pool is too low:
    // available (0)`) show a full datastore at one instant; a node allocating its next ENI
    // logs one too. Only a repeated full pool, or one next to "max ENI limit is already
    // reached", proves exhaustion (inferred).
    let all = events(ctx, LogEventKind::IpExhaustion).unwrap_or_default();
    let pool: Vec<&&LogEvent> = all
        .iter()
        .filter(|e| model::vpccni::pool_exhausted(&e.msg))
        .collect();
    let direct = all.len() - pool.len();
    let at_limit = events(ctx, LogEventKind::EniAttachFailure)
        .unwrap_or_default()
        .iter()
        .any(|e| e.msg.contains("max ENI limit") || e.msg.contains("max ENI already attached"));
    let pool_only = direct == 0 && !pool.is_empty();
    if pool_only && pool.len() < 3 && !at_limit {
        return Ok(vec![]);
    }
    let mut out = log_finding(
        ctx,
        EXHAUSTION_ID,
        LogEventKind::IpExhaustion,
        Severity::Warning,
        "ipamd could not hand out IP addresses",
        "When the datastore has no free IP and ipamd cannot allocate more (subnet out of addresses or /28 prefixes, ENI/IP limits), new pods stay in ContainerCreating with `failed to assign an IP address to container`. In prefix mode, fragmentation causes InsufficientCidrBlocks even with free IPs.",
        "Add subnet capacity (a larger or additional subnet via custom networking / subnet discovery, or a CIDR reservation for prefixes), lower WARM_IP_TARGET/WARM_ENI_TARGET waste, enable prefix delegation on Nitro instances, or reduce max pods.",
    )?;
    if pool_only {
        if let Some(f) = out.first_mut() {
            f.inferred.push(format!(
                "exhaustion (from {} ipamd pool debug line(s) showing no free address{})",
                pool.len(),
                if at_limit {
                    " and \"max ENI limit is already reached\""
                } else {
                    ""
                }
            ));
        }
    }
    if let Some(enis) = ctx.s.cni.get().and_then(|c| c.ipamd_enis.as_ref()) {
        let full: Vec<_> = enis
            .network_cards
            .iter()
            .filter(|c| c.total_ips > 0 && c.assigned_ips >= c.total_ips)
            .collect();
        if !full.is_empty() {
            let text = full
                .iter()
                .map(|c| {
                    format!(
                        "network card {}: AssignedIPs={} TotalIPs={}",
                        c.index, c.assigned_ips, c.total_ips
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            if let Some(f) = out.first_mut() {
                f.evidence.push(config_ev(text).at("ipamd /v1/enis"));
            } else {
                out.push(
                    ctx.finding(EXHAUSTION_ID, Severity::Info, format!("every IP in ipamd's pool is assigned ({text})"))
                        .evs([config_ev(text.clone()).at("ipamd /v1/enis")])
                        .explain("The warm pool is empty: the next pod waits for ipamd to allocate more addresses, and fails if the subnet or the ENI limits are exhausted.")
                        .remedy("Check WARM_IP_TARGET/MINIMUM_IP_TARGET and subnet free addresses; watch for ipamd allocation errors.")
                        .done(),
                );
            }
        }
    }
    Ok(out)
}

pub(crate) fn check_throttling(ctx: &Ctx<'_>) -> RuleResult {
    log_finding(
        ctx,
        THROTTLING_ID,
        LogEventKind::Ec2Throttling,
        Severity::Warning,
        "EC2 API calls were throttled",
        "ipamd's EC2 calls (AssignPrivateIpAddresses, CreateNetworkInterface, DescribeNetworkInterfaces) hit RequestLimitExceeded; IP and ENI allocation is delayed, so pods wait in ContainerCreating. Throttling is account/region-wide, often from many nodes scaling at once or other tools sharing the quota.",
        "Reduce churn (higher WARM_IP_TARGET/MINIMUM_IP_TARGET to allocate in fewer calls, prefix delegation), stagger node scale-ups, find other heavy EC2 API callers (CloudTrail), or request a quota increase.",
    )
}

pub(crate) fn check_attach(ctx: &Ctx<'_>) -> RuleResult {
    log_finding(
        ctx,
        ATTACH_ID,
        LogEventKind::EniAttachFailure,
        Severity::Warning,
        "ENI create/attach failures",
        "ipamd could not create or attach another ENI (AttachmentLimitExceeded, subnet without free addresses for a new ENI, IAM). The node is stuck at its current IP capacity; pods beyond it stay in ContainerCreating while max-pods may promise more.",
        "Check the instance type's ENI limit against max pods (ENIs × (IPs − 1) + 2), subnet free addresses, and the node role's ec2:CreateNetworkInterface/AttachNetworkInterface permissions.",
    )
}

/// The aws-node entrypoint of v1.10–v1.15 (`scripts/entrypoint.sh` `wait_for_ipam`) logs this
/// before every health probe of 127.0.0.1:50051 and loops forever: no "Timed out" line follows,
/// the liveness probe kills the container instead.
const IPAMD_WAIT_RETRY: &str = "Retrying waiting for IPAM-D";
/// Fewer retries than this are a normal start (ipamd needs a few seconds).
const IPAMD_WAIT_RETRIES_STUCK: usize = 6;

pub(crate) fn check_not_ready(ctx: &Ctx<'_>) -> RuleResult {
    const EXPLAIN: &str = "The CNI plugin reaches ipamd on 127.0.0.1:50051 for every pod ADD/DEL. While ipamd is down or not ready the kubelet reports NetworkPluginNotReady or pod sandboxes fail (`failed to connect to backend server`), and DELs leave rules behind. `wrong client version` means plugin and ipamd versions differ.";
    const REMEDY: &str = "`kubectl -n kube-system logs <aws-node pod> -c aws-node` and ipamd.log for the cause (IMDS/API server reachability, IAM, a crash loop); restart aws-node; make sure the plugin binary and the aws-node image come from the same release.";
    let logs = events(ctx, LogEventKind::NotReady).map(|all| {
        let (retries, direct): (Vec<&LogEvent>, Vec<&LogEvent>) = all
            .into_iter()
            .partition(|e| e.msg.contains(IPAMD_WAIT_RETRY));
        if !direct.is_empty() {
            return vec![ctx
                .finding(NOT_READY_ID, Severity::Error, format!("ipamd not ready or unreachable: {}", summary_of(&direct)))
                .evs(samples(&direct).into_iter().map(log_ev))
                .explain(EXPLAIN)
                .remedy(REMEDY)
                .done()];
        }
        // Only the entrypoint's wait loop: stuck when it retried many times and nothing says
        // it got through afterwards ("Successfully copied CNI plugin binary…", "Foregrounding").
        let last = retries.last().map(|e| (e.file.clone(), e.line));
        let got_through = events(ctx, LogEventKind::Startup)
            .unwrap_or_default()
            .iter()
            .any(|e| {
                (e.msg.contains("Successfully copied CNI plugin") || e.msg.contains("Foregrounding IPAM daemon"))
                    && last.as_ref().is_some_and(|(f, l)| e.file == *f && e.line > *l)
            });
        if retries.len() < IPAMD_WAIT_RETRIES_STUCK || got_through {
            return vec![];
        }
        let mut f = ctx
            .finding(NOT_READY_ID, Severity::Warning, format!("aws-node kept waiting for ipamd: {} \"{IPAMD_WAIT_RETRY}\" lines, {}", retries.len(), summary_of(&retries)))
            .evs(samples(&retries).into_iter().map(log_ev))
            .explain(EXPLAIN)
            .remedy(REMEDY)
            .done();
        f.inferred.push(format!(
            "ipamd not reachable on 127.0.0.1:50051 (from {} consecutive health-probe retries of the aws-node entrypoint with no success line after them)",
            retries.len()
        ));
        vec![f]
    });
    let logs_missing = logs.is_err();
    let mut out = logs.unwrap_or_default();
    // The introspection endpoint was unreachable at collection time.
    let cni = &ctx.s.cni;
    let reason = cni.reason.clone().unwrap_or_default();
    let r = reason.to_ascii_lowercase();
    let disabled = cni
        .get()
        .and_then(|c| c.get("DISABLE_INTROSPECTION"))
        .and_then(crate::facts::parse_bool)
        == Some(true);
    let about_ipamd = r.contains("61679") || r.contains("introspection") || r.contains("ipamd");
    let failed = r.contains("refused")
        || r.contains("unreachable")
        || r.contains("timed out")
        || r.contains("timeout")
        || r.contains("failed")
        || r.contains("error");
    // Only a live collection can find the endpoint unreachable: a paste or capture directory
    // (rebuilt by `diag-capture`) without enis.json says nothing about ipamd at the time. The
    // agent itself may read the CNI env from a file, so the section's sources do not decide.
    let live = ctx.s.agent.name != model::snapshot::CAPTURE_AGENT_NAME
        && matches!(
            cni.status,
            SectionStatus::Failed | SectionStatus::Partial | SectionStatus::Unavailable
        );
    if live && about_ipamd && failed && !disabled {
        let ev = Evidence::new(
            EvidenceKind::Note,
            format!(
                "cni section {}: {reason}",
                section_reason("cni", cni.status, None).trim_start_matches("section cni is ")
            ),
        )
        .at("snapshot cni section");
        if let Some(f) = out.first_mut() {
            f.evidence.push(ev);
        } else {
            out.push(
                ctx.finding(NOT_READY_ID, Severity::Warning, "ipamd introspection (127.0.0.1:61679) was unreachable during collection")
                    .evs([ev])
                    .explain("ipamd serves introspection on 127.0.0.1:61679 once it is running; an unreachable endpoint usually means ipamd is not running or still initialising, in which case pod networking setup fails on this node (unless DISABLE_INTROSPECTION=true).")
                    .remedy("Check the aws-node pod on this node (`kubectl -n kube-system get pod -o wide | grep aws-node`, its logs and restarts) and `ss -ltnp | grep -E '50051|61679'` on the node.")
                    .done(),
            );
        }
    }
    if logs_missing && out.is_empty() {
        return Err(section_reason(
            "cni_logs",
            ctx.s.cni_logs.status,
            ctx.s.cni_logs.reason.as_deref(),
        ));
    }
    Ok(out)
}
