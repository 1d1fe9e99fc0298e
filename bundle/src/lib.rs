//! Incident bundles for eks-diag (`diag bundle`, `node-agent bundle`, the TUI's `b` key).
//!
//! * [`writer::write`]: a `.tar.gz` in eks-log-collector's layout (`networking/iptables-save.txt`,
//!   `networking/iprule.txt`, …) plus `snapshot.json`, `findings.json`, `report.md` and a
//!   sos-style `manifest.json` (source, exit code, duration, bytes, truncated/timed-out and the
//!   SHA-256 after redaction of every file); `--max-size` / `--since` cuts are recorded.
//! * [`redact::Redactor`]: consistent, prefix-preserving pseudonyms (module docs say what is
//!   kept and why the analysis gives the same answers); the private map is written beside the
//!   archive, never inside it.
//! * [`reader`]: bundles read back (the manifest is the first member), so a bundle is also a
//!   replay input.
//!
//! Pure: no tokio, clap, AWS SDK, russh or ratatui; node-agent links it.

pub mod iptables_list;
pub mod manifest;
pub mod reader;
pub mod redact;
pub mod render;
pub mod report;
pub mod writer;

pub use manifest::Manifest;
pub use redact::{PrivateMap, Redactor};
pub use render::{RawFile, Source};
pub use writer::{write, BundleError, NodeInput, Options, Written};

/// `50M`, `1G`, `512K`, `1000` (bytes; K/M/G are powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => return Err(format!("{s}: unknown unit (use K, M or G)")),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s}: expected a size such as 50M"))?;
    n.checked_mul(mult).ok_or_else(|| format!("{s}: too large"))
}
