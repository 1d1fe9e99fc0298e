//! `node-agent bundle`: the snapshot just collected, plus the CNI log files copied raw, into
//! an incident bundle (the writer is the pure `bundle` crate). Only files are read beyond
//! what `collect` does: the read-only guarantee is unchanged.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use bundle::{RawFile, Source};

/// Most bytes kept of one log file (its end: the newest lines).
const MAX_LOG_BYTES: u64 = 64 * 1024 * 1024;

/// Where and how to write.
pub struct Request {
    pub dir: PathBuf,
    pub options: bundle::Options,
}

/// Write the bundle; returns the archive path.
pub fn write(
    req: &Request,
    opts: &crate::Options,
    snap: model::Snapshot,
    ipamd: Vec<crate::collect::cni::RawAnswer>,
) -> anyhow::Result<PathBuf> {
    let label = snap.display_name();
    let mut extra = raw_logs(&opts.log_dir);
    let (ipamd, problems) = ipamd_files(ipamd);
    extra.extend(ipamd);
    let node = bundle::NodeInput {
        label,
        snapshot: Some(snap),
        extra,
        problems,
        ..Default::default()
    };
    let w = bundle::write(&req.dir, vec![node], &req.options)
        .with_context(|| format!("writing the bundle into {}", req.dir.display()))?;
    if let Some(r) = &w.manifest.redaction {
        for warn in &r.warnings {
            eprintln!("node-agent: redaction: {warn}");
        }
    }
    if let Some(m) = &w.map_file {
        eprintln!(
            "node-agent: private map (keep it out of the ticket): {}",
            m.display()
        );
    }
    Ok(w.archive)
}

/// ipamd's answers as served (ELC's `ipamd/<name>.json`, and `metrics.json` from the
/// metrics port), through the collector's own ipamd client; redacted as text like every
/// other file, so the bytes are ipamd's but for the pseudonyms. An answer that is not a 200
/// (or no answer) gives no file, a problem saying why, and the manifest's `omitted` entry.
fn ipamd_files(answers: Vec<crate::collect::cni::RawAnswer>) -> (Vec<RawFile>, Vec<String>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for a in answers {
        let path = format!("ipamd/{}.json", a.name);
        match a.result {
            Ok(resp) if resp.status == 200 => files.push(RawFile {
                path,
                data: resp.body,
                source: Source::http(&a.url),
                duration_ms: Some(u64::try_from(a.duration.as_millis()).unwrap_or(u64::MAX)),
                ..Default::default()
            }),
            Ok(resp) => problems.push(format!(
                "{path}: GET {} answered HTTP {}",
                a.url, resp.status
            )),
            Err(e) => problems.push(format!("{path}: GET {}: {e}", a.url)),
        }
    }
    (files, problems)
}

/// Every regular file of the CNI log directory, `.gz` decompressed, each capped at its last
/// [`MAX_LOG_BYTES`]. A file that cannot be read is listed with the error as its note.
fn raw_logs(dir: &Path) -> Vec<RawFile> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| e.path())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|p| {
            let t0 = Instant::now();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let gz = name.ends_with(".gz");
            let (data, truncated, note) = match read_log(&p, gz) {
                Ok((d, t)) => (d, t, None),
                Err(e) => (Vec::new(), false, Some(format!("cannot read: {e:#}"))),
            };
            RawFile {
                path: format!(
                    "var_log/aws-routed-eni/{}",
                    name.strip_suffix(".gz").unwrap_or(&name)
                ),
                data,
                source: Source::file(&p.display().to_string()),
                duration_ms: Some(u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX)),
                truncated,
                note: note.or_else(|| gz.then(|| "decompressed from .gz".to_string())),
                log: true,
                ..Default::default()
            }
        })
        .collect()
}

fn read_log(p: &Path, gz: bool) -> anyhow::Result<(Vec<u8>, bool)> {
    let f = std::fs::File::open(p).with_context(|| p.display().to_string())?;
    let mut data = Vec::new();
    if gz {
        flate2::read::GzDecoder::new(f)
            .take(MAX_LOG_BYTES + 1)
            .read_to_end(&mut data)
            .with_context(|| p.display().to_string())?;
    } else {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let mut f = f;
        if len > MAX_LOG_BYTES {
            use std::io::{Seek, SeekFrom};
            f.seek(SeekFrom::Start(len - MAX_LOG_BYTES))?;
        }
        f.take(MAX_LOG_BYTES + 1).read_to_end(&mut data)?;
        if len > MAX_LOG_BYTES {
            return Ok((data, true));
        }
    }
    let cut = data.len() as u64 > MAX_LOG_BYTES;
    if cut {
        data.truncate(usize::try_from(MAX_LOG_BYTES).unwrap_or(usize::MAX));
    }
    Ok((data, cut))
}
