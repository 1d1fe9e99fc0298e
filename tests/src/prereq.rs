//! The one place a test decides whether a missing prerequisite (root, a tool, a kernel module,
//! a built binary) is a skip or a failure.
//!
//! Outside CI a missing prerequisite prints `SKIPPED: …` and the test returns early, so a
//! newcomer without root can still run the suite. With `CI` set (`.ci/run` exports `CI=true`)
//! or `EKD_REQUIRE_ALL=1` it panics instead: a green CI run means every test really ran.
//!
//! ```ignore
//! if e2e::prereq::missing(!have_iptables, "iptables-nft not installed") {
//!     return;
//! }
//! ```

/// Is this a run where nothing may be skipped? `CI` set to anything but `false`/`0`/empty, or
/// `EKD_REQUIRE_ALL` set (same rule), or the older `EKD_SCENARIOS=require`.
pub fn required() -> bool {
    fn set(var: &str) -> bool {
        std::env::var_os(var).is_some_and(|v| {
            let v = v.to_string_lossy();
            !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
        })
    }
    set("CI")
        || set("EKD_REQUIRE_ALL")
        || std::env::var("EKD_SCENARIOS").as_deref() == Ok("require")
}

/// Report a missing prerequisite: on a required run this panics with `why`; otherwise it prints
/// `SKIPPED: why` to stderr. Returns `true` (skip) so callers can `return` on it.
#[track_caller]
pub fn skip(why: &str) -> bool {
    assert!(
        !required(),
        "prerequisite missing on a run that must not skip (CI/EKD_REQUIRE_ALL set): {why}"
    );
    eprintln!("SKIPPED: {why}");
    true
}

/// `skip(why)` when `is_missing`, else `false`: `if missing(!ok, "…") { return; }`.
#[track_caller]
pub fn missing(is_missing: bool, why: &str) -> bool {
    is_missing && skip(why)
}

/// Unwrap a prerequisite that may be absent: `Some(v)` as is; `None` → [`skip`] and `None`.
#[track_caller]
pub fn need<T>(v: Option<T>, why: &str) -> Option<T> {
    if v.is_none() {
        skip(why);
    }
    v
}

/// Is the process root (effective uid 0, read from `/proc/self/status`)?
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// `bin` on `PATH` or in `/usr/sbin`, `/sbin` (where Debian puts iptables, sshd, conntrack).
pub fn which(bin: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}
