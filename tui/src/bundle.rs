//! `b`: the selected node's latest snapshot as a redacted incident bundle (the `bundle` crate,
//! the same writer as `diag bundle`), written into [`crate::Options::bundle_dir`] with its
//! private map beside it. Runs on the UI thread: a node's bundle takes well under a second
//! (redaction ≥ 50 MB/s, bench/README.md), and the status line says where it went.

use crate::app::App;

/// Write the bundle; the status line to show (the archive and the map, or why not).
pub fn write(app: &App, name: &str) -> String {
    let Some(node) = app.nodes.iter().find(|n| n.name == name) else {
        return crate::sanitize::owned(&format!("bundle: {name} is no longer listed"));
    };
    let Some(snapshot) = node.snapshot.as_deref() else {
        return crate::sanitize::owned(&format!("bundle: no snapshot of {name}"));
    };
    let input = bundle::NodeInput {
        label: name.to_string(),
        snapshot: Some(snapshot.clone()),
        error: node.error.clone(),
        ..Default::default()
    };
    let opts = bundle::Options::new(env!("CARGO_PKG_VERSION"), std::env::args().collect());
    let msg = match bundle::write(&app.opts.bundle_dir, vec![input], &opts) {
        Ok(w) => match &w.map_file {
            Some(m) => format!(
                "bundle written: {} (redacted; private map {} — keep it out of the ticket)",
                w.archive.display(),
                m.display()
            ),
            None => format!("bundle written: {}", w.archive.display()),
        },
        Err(e) => format!("bundle of {name} failed: {e}"),
    };
    crate::sanitize::owned(&msg)
}
