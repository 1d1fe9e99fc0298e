//! eks-log-collector bundles (`eks_<instance-id>_<YYYY-MM-DD_HHMM-UTC>_<version>.tar.gz`,
//! groundtruth §8), read in memory: only the members `diag` uses are kept, each under a size
//! cap, so `var_log/messages` and friends cost a pass of the decompressor but no memory.

use std::io::Read;
use std::path::Path;

use capture::{CaptureFile, Kind, Origin};

use super::capture as dir_capture;
use super::names;
use super::{file_name, InputError, LoadOptions, Loaded, MAX_FILE_BYTES};

/// Most bytes kept from all members together.
const MAX_KEPT_BYTES: u64 = 512 * 1024 * 1024;
/// Largest compressed archive accepted.
const MAX_ARCHIVE_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// Read one bundle.
pub fn load(path: &Path, opts: &LoadOptions) -> Loaded {
    let label = path.display().to_string();
    match read_members(path) {
        Ok((files, problems)) => {
            let mut loaded = from_members(&label, &file_name(path), files, opts);
            loaded.problems.splice(0..0, problems);
            loaded
        }
        Err(e) => Loaded::err(label, e),
    }
}

/// The members of interest, keyed by their path relative to the bundle's top dir.
/// Archive members kept (path relative to the bundle, bytes) and problems met reading it.
type Members = (Vec<(String, Vec<u8>)>, Vec<String>);

fn read_members(path: &Path) -> Result<Members, InputError> {
    let label = path.display().to_string();
    let not_elc = |message: String| InputError::NotElc {
        path: label.clone(),
        message,
    };
    let mut f = std::fs::File::open(path).map_err(|e| InputError::Io {
        path: label.clone(),
        message: e.to_string(),
    })?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    if size > MAX_ARCHIVE_BYTES {
        return Err(InputError::TooLarge {
            path: label,
            size,
            limit: MAX_ARCHIVE_BYTES,
        });
    }
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).map_err(|e| InputError::Io {
        path: label.clone(),
        message: e.to_string(),
    })?;
    if n < 2 || magic != [0x1f, 0x8b] {
        return Err(not_elc(
            "not gzip-compressed (expected the eks_i-*.tar.gz written by eks-log-collector.sh)"
                .into(),
        ));
    }
    let f = std::fs::File::open(path).map_err(|e| InputError::Io {
        path: label.clone(),
        message: e.to_string(),
    })?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let entries = archive
        .entries()
        .map_err(|e| not_elc(format!("cannot read the tar stream: {e}")))?;
    let mut kept = Vec::new();
    let mut problems = Vec::new();
    let mut seen = 0usize;
    let mut first_names = Vec::new();
    let mut kept_bytes = 0u64;
    // Members diag reads that a cap or their type made it skip.
    let mut capped: Vec<String> = Vec::new();
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                if seen == 0 {
                    return Err(not_elc(format!("cannot read the tar stream: {e}")));
                }
                problems.push(format!(
                    "{label}: archive truncated or corrupt after {seen} members: {e}"
                ));
                break;
            }
        };
        seen += 1;
        let name = match entry.path() {
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(_) => continue,
        };
        if first_names.len() < 4 {
            first_names.push(name.clone());
        }
        let Some(rel) = relative_to_bundle(&name) else {
            continue;
        };
        if names::classify_elc(&rel).is_none() {
            continue;
        }
        let kind = entry.header().entry_type();
        if !kind.is_file() {
            if !kind.is_dir() {
                problems.push(format!(
                    "{label}: {rel}: {}, not a regular file; skipped",
                    member_type(kind)
                ));
                capped.push(rel);
            }
            continue;
        }
        let size = entry.header().size().unwrap_or(0);
        if size > MAX_FILE_BYTES {
            problems.push(format!(
                "{label}: {rel}: {size} bytes is over the {MAX_FILE_BYTES}-byte per-member cap; skipped"
            ));
            capped.push(rel);
            continue;
        }
        if kept_bytes + size > MAX_KEPT_BYTES {
            problems.push(format!(
                "{label}: {rel}: {size} bytes would bring the members kept to {} bytes, over the {MAX_KEPT_BYTES}-byte total cap; skipped",
                kept_bytes + size
            ));
            capped.push(rel);
            continue;
        }
        let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        if let Err(e) = entry.read_to_end(&mut buf) {
            problems.push(format!("{label}: {rel}: truncated member: {e}"));
            if !buf.is_empty() {
                kept.push((rel, buf));
            }
            break;
        }
        kept_bytes += buf.len() as u64;
        kept.push((rel, buf));
    }
    if seen == 0 {
        return Err(not_elc("the archive is empty".into()));
    }
    if kept.is_empty() && !capped.is_empty() {
        return Err(InputError::Capped {
            path: label.clone(),
            message: format!(
                "eks-log-collector bundle, but every member diag reads was skipped: {}",
                problems
                    .iter()
                    .map(|p| p.strip_prefix(&format!("{label}: ")).unwrap_or(p))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        });
    }
    if kept.is_empty() {
        return Err(not_elc(format!(
            "no networking/, ipamd/, sysctls/ or var_log/aws-routed-eni/ files found (first members: {})",
            first_names.join(", ")
        )));
    }
    Ok((kept, problems))
}

fn member_type(t: tar::EntryType) -> &'static str {
    match t {
        tar::EntryType::Symlink => "a symlink",
        tar::EntryType::Link => "a hard link",
        tar::EntryType::Char => "a character device",
        tar::EntryType::Block => "a block device",
        tar::EntryType::Fifo => "a FIFO",
        _ => "a special member",
    }
}

/// `eks_i-0abc_2026-…/networking/iprule.txt` → `networking/iprule.txt`: the path from the
/// first marker directory on, whatever prefix the tarball has.
fn relative_to_bundle(name: &str) -> Option<String> {
    let parts: Vec<&str> = name
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let i = parts.iter().position(|p| names::ELC_MARKERS.contains(p))?;
    Some(parts[i..].join("/"))
}

/// Build the snapshot from the kept members.
fn from_members(
    label: &str,
    archive_name: &str,
    members: Vec<(String, Vec<u8>)>,
    opts: &LoadOptions,
) -> Loaded {
    let mut files: Vec<CaptureFile> = members
        .into_iter()
        .filter_map(|(rel, data)| {
            names::classify_elc(&rel).map(|kind| CaptureFile {
                name: rel,
                kind,
                data,
            })
        })
        .collect();
    // The collector writes `ifconfig` always; with an `ip addr` it would only be a fallback.
    if files.iter().any(|f| f.kind == Kind::IpAddr) {
        files.retain(|f| f.kind != Kind::Ifconfig);
    }
    let inputs = files
        .iter()
        .map(|f| format!("{label}:{}", f.name))
        .collect();
    let (id, collected_at) = parse_bundle_name(archive_name);
    let origin = Origin {
        label: label.to_string(),
        collected_at: collected_at.unwrap_or_default(),
        inputs,
        where_: format!("in bundle {label}"),
        never_captured: never_captured(),
        ..Default::default()
    };
    let mut loaded = dir_capture::build(&origin, files, opts);
    if let Ok(s) = loaded.outcome.as_mut() {
        if s.hostname.is_empty() {
            s.hostname = id.unwrap_or_else(|| archive_name.to_string());
        }
    }
    loaded
}

/// Sections eks-log-collector (v0.7.9) never captures, and why, instead of "no ip-link.txt
/// in bundle …": it runs `ifconfig` (links and addresses come from there) but never
/// `ip link` or `ip neigh`.
fn never_captured() -> Vec<(model::SectionName, String)> {
    use model::SectionName;
    vec![
        (
            SectionName::Links,
            "eks-log-collector captures no ip link and this bundle has no networking/ifconfig.txt"
                .into(),
        ),
        (
            SectionName::Addresses,
            "eks-log-collector captures no ip addr and this bundle has no networking/ifconfig.txt"
                .into(),
        ),
        (
            SectionName::Neighbours,
            "eks-log-collector does not capture ip neigh".into(),
        ),
    ]
}

/// Instance id and collection time from `eks_i-0abc_2020-03-11_0103-UTC_0.6.0.tar.gz`.
fn parse_bundle_name(name: &str) -> (Option<String>, Option<String>) {
    let Ok(re) =
        regex::Regex::new(r"eks_(i-[0-9a-fA-F]+)(?:_(\d{4}-\d{2}-\d{2})_(\d{2})(\d{2})-UTC)?")
    else {
        return (None, None);
    };
    let Some(c) = re.captures(name) else {
        return (None, None);
    };
    let id = c.get(1).map(|m| m.as_str().to_string());
    let at = match (c.get(2), c.get(3), c.get(4)) {
        (Some(d), Some(h), Some(m)) => {
            Some(format!("{}T{}:{}:00Z", d.as_str(), h.as_str(), m.as_str()))
        }
        _ => None,
    };
    (id, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_prefix_is_ignored() {
        assert_eq!(
            relative_to_bundle("eks_i-0abc_2020/networking/iprule.txt").as_deref(),
            Some("networking/iprule.txt")
        );
        assert_eq!(
            relative_to_bundle("./tmp/eks-log-collector/ipamd/enis.json").as_deref(),
            Some("ipamd/enis.json")
        );
        assert_eq!(relative_to_bundle("README"), None);
    }

    #[test]
    fn bundle_name_gives_id_and_time() {
        let (id, at) =
            parse_bundle_name("eks_i-01111ad54b6cfaa19_2020-03-11_0103-UTC_0.6.0.tar.gz");
        assert_eq!(id.as_deref(), Some("i-01111ad54b6cfaa19"));
        assert_eq!(at.as_deref(), Some("2020-03-11T01:03:00Z"));
        assert_eq!(parse_bundle_name("bundle.tar.gz"), (None, None));
    }
}
