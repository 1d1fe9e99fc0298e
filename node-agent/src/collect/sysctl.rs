//! Sysctls that matter for pod networking, read from `/proc/sys` (per network namespace).

use std::collections::BTreeMap;
use std::path::Path;

use model::{Section, Sysctls};

use super::Deadline;

const PROC_SYS: &str = "/proc/sys";

/// Fixed keys (dotted names). Per-interface `rp_filter` keys are added from
/// `/proc/sys/net/ipv4/conf/*`.
pub const KEYS: &[&str] = &[
    "net.ipv4.ip_forward",
    "net.ipv4.tcp_early_demux",
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_count",
    "net.ipv6.conf.all.forwarding",
    "net.ipv6.conf.all.disable_ipv6",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_local_reserved_ports",
];

/// Keys that may legitimately be absent (conntrack not loaded, IPv6 disabled at boot).
const OPTIONAL_PREFIXES: &[&str] = &["net.netfilter.", "net.ipv6."];

pub async fn collect(deadline: Deadline) -> Section<Sysctls> {
    let root = Path::new(PROC_SYS).to_path_buf();
    match tokio::time::timeout(
        deadline.remaining(),
        tokio::task::spawn_blocking(move || read_from(&root)),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => Section::failed(format!("sysctls: reader task failed: {e}")),
        Err(_) => Section::failed(format!(
            "sysctls: reading {PROC_SYS} timed out after {}",
            crate::duration::format(deadline.remaining())
        )),
    }
}

/// Dotted name → path under `root` (`net.ipv4.conf.eth0.rp_filter`). Interface names may
/// contain dots (`vlan.eth.2`), so per-interface keys are built from the path, not split.
fn path_of(root: &Path, key: &str) -> std::path::PathBuf {
    root.join(key.replace('.', "/"))
}

/// Read the sysctls below `root` (normally `/proc/sys`).
pub fn read_from(root: &Path) -> Section<Sysctls> {
    let mut values = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut missing_required = Vec::new();
    let mut read_one =
        |key: String, path: std::path::PathBuf, values: &mut BTreeMap<String, String>| {
            match std::fs::read_to_string(&path) {
                Ok(v) => {
                    // Multi-value sysctls use tabs (`32768\t60999`); `sysctl` prints them the same.
                    values.insert(key, v.trim_end_matches('\n').trim().to_string());
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if OPTIONAL_PREFIXES.iter().any(|p| key.starts_with(p)) {
                        warnings.push(format!("{key}: not present ({})", path.display()));
                    } else {
                        missing_required.push(key);
                    }
                }
                Err(e) => warnings.push(format!("{key}: cannot read {}: {e}", path.display())),
            }
        };
    for key in KEYS {
        read_one(key.to_string(), path_of(root, key), &mut values);
    }
    let conf = root.join("net/ipv4/conf");
    match std::fs::read_dir(&conf) {
        Ok(entries) => {
            let mut ifaces: Vec<String> = entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            ifaces.sort();
            for i in ifaces {
                let key = format!("net.ipv4.conf.{i}.rp_filter");
                read_one(key, conf.join(&i).join("rp_filter"), &mut values);
            }
        }
        Err(e) => warnings.push(format!("cannot list {}: {e}", conf.display())),
    }
    let source = format!("{}", root.display());
    if values.is_empty() {
        return Section::failed(format!(
            "sysctls: nothing readable under {} ({} keys missing)",
            root.display(),
            missing_required.len()
        ))
        .with_source(source)
        .with_warnings(warnings);
    }
    let s = if missing_required.is_empty() && !warnings.iter().any(|w| w.contains("cannot")) {
        Section::ok(Sysctls { values })
    } else {
        let mut why = Vec::new();
        if !missing_required.is_empty() {
            why.push(format!("missing: {}", missing_required.join(", ")));
        }
        if warnings.iter().any(|w| w.contains("cannot")) {
            why.push("some values unreadable".to_string());
        }
        Section::partial(Sysctls { values }, why.join("; "))
    };
    s.with_source(source).with_warnings(warnings)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use model::SectionStatus;

    fn write(root: &Path, key: &str, v: &str) {
        let p = path_of(root, key);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, v).unwrap();
    }

    #[test]
    fn reads_fixed_keys_and_every_interface() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for k in KEYS {
            write(root, k, "1\n");
        }
        write(root, "net.ipv4.ip_local_port_range", "32768\t60999\n");
        for i in ["all", "default", "eth0", "lo"] {
            write(root, &format!("net.ipv4.conf.{i}.rp_filter"), "2\n");
        }
        // An interface name with dots.
        let p = root.join("net/ipv4/conf/vlan.eth.2");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("rp_filter"), "0\n").unwrap();

        let s = read_from(root);
        assert_eq!(
            s.status,
            SectionStatus::Ok,
            "{:?} {:?}",
            s.reason,
            s.warnings
        );
        let v = s.data.unwrap();
        assert_eq!(v.get("net.ipv4.ip_local_port_range"), Some("32768\t60999"));
        assert_eq!(v.rp_filter("eth0"), Some(2));
        assert_eq!(v.rp_filter("vlan.eth.2"), Some(0));
        assert_eq!(v.rp_filter_interfaces(), ["eth0", "lo", "vlan.eth.2"]);
    }

    #[test]
    fn missing_conntrack_is_a_warning_missing_forward_is_partial() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for k in KEYS.iter().filter(|k| !k.starts_with("net.netfilter")) {
            write(root, k, "0");
        }
        write(root, "net.ipv4.conf.all.rp_filter", "1");
        let s = read_from(root);
        assert_eq!(s.status, SectionStatus::Ok);
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);

        std::fs::remove_file(path_of(root, "net.ipv4.ip_forward")).unwrap();
        let s = read_from(root);
        assert_eq!(s.status, SectionStatus::Partial);
        assert!(s.reason.unwrap().contains("net.ipv4.ip_forward"));

        let empty = tempfile::tempdir().unwrap();
        assert_eq!(read_from(empty.path()).status, SectionStatus::Failed);
    }
}
