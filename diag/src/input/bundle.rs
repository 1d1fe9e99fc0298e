//! eks-diag bundles (`diag bundle`, `node-agent bundle`): the snapshots inside, redacted or
//! not, analysed like the live node they came from. Recognised by their first member
//! (`manifest.json` with `"tool": "eks-diag"`), so an eks-log-collector archive costs one
//! member's read here before [`super::elc`] takes it.

use std::path::Path;

use super::{InputError, Loaded};

/// The nodes of the bundle at `path`, or `None` when it is not an eks-diag bundle.
pub fn load(path: &Path) -> Option<Vec<Loaded>> {
    ::bundle::reader::probe(path)?;
    let label = path.display().to_string();
    let bundle = match ::bundle::reader::read(path) {
        Ok(b) => b,
        Err(e) => {
            return Some(vec![Loaded::err(
                label.clone(),
                InputError::BadSnapshot {
                    path: label,
                    message: e.to_string(),
                },
            )])
        }
    };
    let one = bundle.nodes.len() == 1;
    Some(
        bundle
            .nodes
            .into_iter()
            .map(|n| {
                let l = if one {
                    label.clone()
                } else {
                    format!("{label}#{}", n.dir)
                };
                match n.snapshot {
                    Ok(s) => Loaded::ok(l, s),
                    Err(message) => {
                        Loaded::err(l.clone(), InputError::BadSnapshot { path: l, message })
                    }
                }
            })
            .collect(),
    )
}
