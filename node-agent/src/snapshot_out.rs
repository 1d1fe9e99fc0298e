//! Writing a snapshot whose iptables dumps were indexed rather than parsed
//! ([`crate::collect::collect_with`]): the JSON is exactly what serialising the fully parsed
//! snapshot gives, but each chain's rules are parsed from the dump's text only while that
//! chain is written, so the agent never holds every parsed rule of a 100,000-rule node.
//!
//! Everything but the iptables tables is serialised as usual (through a `serde_json::Value`,
//! small once the tables are taken out); the tables are written table by table and chain by
//! chain, each chain's fields from its own serialisation with `rules` filled in from
//! [`parsers::iptables::indexed_rules`]. No field layout is repeated here, so the output
//! follows the model's serde attributes; `tests::spliced_output_is_the_eager_output` holds
//! the two equal.

use std::io::Write;
use std::sync::Arc;

use model::{IptTable, Snapshot};
use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::collect::iptables::DeferredTexts;

/// Write `snap` as JSON to `w` (pretty or compact). `texts` are the indexed dumps' texts
/// from [`crate::collect::collect_with`]; empty when nothing was deferred.
pub fn write<W: Write>(
    w: W,
    mut snap: Snapshot,
    texts: &DeferredTexts,
    pretty: bool,
) -> serde_json::Result<()> {
    if texts.iter().all(Option::is_none) {
        return if pretty {
            serde_json::to_writer_pretty(w, &snap)
        } else {
            serde_json::to_writer(w, &snap)
        };
    }
    // The tables leave the snapshot; what is left is small enough for a Value.
    let tables: Vec<Vec<IptTable>> = match snap.iptables.data.as_mut() {
        Some(d) => d
            .backends
            .iter_mut()
            .map(|b| std::mem::take(&mut b.tables))
            .collect(),
        None => Vec::new(),
    };
    let head = serde_json::to_value(&snap)?;
    drop(snap);
    let ctx = Ctx {
        tables: &tables,
        texts,
    };
    let root = Walk {
        v: &head,
        at: At::Root,
        ctx: &ctx,
    };
    if pretty {
        serde_json::to_writer_pretty(w, &root)
    } else {
        serde_json::to_writer(w, &root)
    }
}

struct Ctx<'a> {
    tables: &'a [Vec<IptTable>],
    texts: &'a [Option<Arc<String>>],
}

/// Where in the snapshot a value sits, on the way to `iptables.data.backends[i].tables`.
#[derive(Clone, Copy)]
enum At {
    Root,
    Iptables,
    Data,
    Backends,
    Backend(usize),
    /// Anywhere else: written as it is.
    Other,
}

impl At {
    fn key(self, k: &str) -> At {
        match (self, k) {
            (At::Root, "iptables") => At::Iptables,
            (At::Iptables, "data") => At::Data,
            (At::Data, "backends") => At::Backends,
            _ => At::Other,
        }
    }

    fn index(self, i: usize) -> At {
        match self {
            At::Backends => At::Backend(i),
            _ => At::Other,
        }
    }
}

struct Walk<'a> {
    v: &'a Value,
    at: At,
    ctx: &'a Ctx<'a>,
}

impl Serialize for Walk<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let At::Other = self.at {
            return self.v.serialize(s);
        }
        match self.v {
            Value::Object(map) => {
                let mut m = s.serialize_map(Some(map.len()))?;
                for (k, child) in map {
                    match self.at {
                        At::Backend(i) if k == "tables" => {
                            m.serialize_entry(k, &Tables { i, ctx: self.ctx })?
                        }
                        _ => m.serialize_entry(
                            k,
                            &Walk {
                                v: child,
                                at: self.at.key(k),
                                ctx: self.ctx,
                            },
                        )?,
                    }
                }
                m.end()
            }
            Value::Array(items) => {
                let mut q = s.serialize_seq(Some(items.len()))?;
                for (i, child) in items.iter().enumerate() {
                    q.serialize_element(&Walk {
                        v: child,
                        at: self.at.index(i),
                        ctx: self.ctx,
                    })?;
                }
                q.end()
            }
            v => v.serialize(s),
        }
    }
}

/// The tables of backend `i`: as they are, or chain by chain from the dump's text.
struct Tables<'a> {
    i: usize,
    ctx: &'a Ctx<'a>,
}

impl Serialize for Tables<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let tables = self.ctx.tables.get(self.i).map_or(&[][..], Vec::as_slice);
        let Some(text) = self.ctx.texts.get(self.i).and_then(Option::as_ref) else {
            return tables.serialize(s);
        };
        let mut q = s.serialize_seq(Some(tables.len()))?;
        for t in tables {
            q.serialize_element(&Table { t, text })?;
        }
        q.end()
    }
}

struct Table<'a> {
    t: &'a IptTable,
    text: &'a str,
}

impl Serialize for Table<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The table's own fields, from its serialisation without chains.
        let head = IptTable {
            name: self.t.name.clone(),
            chains: Vec::new(),
        };
        let Value::Object(map) = serde_json::to_value(&head).map_err(S::Error::custom)? else {
            return Err(S::Error::custom("an iptables table is not a JSON object"));
        };
        let mut m = s.serialize_map(Some(map.len()))?;
        for (k, v) in &map {
            if k == "chains" {
                m.serialize_entry(
                    k,
                    &Chains {
                        t: self.t,
                        text: self.text,
                    },
                )?;
            } else {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

struct Chains<'a> {
    t: &'a IptTable,
    text: &'a str,
}

impl Serialize for Chains<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut q = s.serialize_seq(Some(self.t.chains.len()))?;
        for c in &self.t.chains {
            let Value::Object(map) = serde_json::to_value(c).map_err(S::Error::custom)? else {
                return Err(S::Error::custom("an iptables chain is not a JSON object"));
            };
            q.serialize_element(&Chain {
                map: &map,
                c,
                text: self.text,
            })?;
        }
        q.end()
    }
}

struct Chain<'a> {
    map: &'a serde_json::Map<String, Value>,
    c: &'a model::IptChain,
    text: &'a str,
}

impl Serialize for Chain<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.map.len()))?;
        for (k, v) in self.map {
            if k == "rules" {
                m.serialize_entry(
                    k,
                    &Rules {
                        c: self.c,
                        text: self.text,
                    },
                )?;
            } else {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

/// A chain's rules, parsed from the text one at a time as they are written.
struct Rules<'a> {
    c: &'a model::IptChain,
    text: &'a str,
}

impl Serialize for Rules<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut names = model::name::Interner::default();
        let mut q = s.serialize_seq(None)?;
        // Rules the chain already holds (none for an indexed chain) come first, as parsed.
        for r in &self.c.rules {
            q.serialize_element(r)?;
        }
        for r in parsers::iptables::indexed_rules(self.text, self.c, &mut names) {
            q.serialize_element(&r)?;
        }
        q.end()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use model::{IptablesBackendDump, IptablesSection, Section};

    fn fixture(rel: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../parsers/fixtures/iptables")
            .join(rel);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// A snapshot with every other section filled from a test fixture and the iptables
    /// section from `dumps` (one text per backend).
    fn snapshots(texts: &[&str]) -> (Snapshot, Snapshot, DeferredTexts) {
        let mut eager = Snapshot::new(model::AgentInfo {
            name: "node-agent".into(),
            version: "test".into(),
            inputs: vec!["node-agent".into(), "collect".into()],
        });
        eager.hostname = "ip-10-0-1-5".into();
        eager.sysctls = Section::ok(model::Sysctls {
            values: [("net.ipv4.ip_forward".to_string(), "1".to_string())]
                .into_iter()
                .collect(),
        });
        let mut lazy = eager.clone();
        let mut eager_dumps: Vec<IptablesBackendDump> = Vec::new();
        let mut lazy_dumps: Vec<IptablesBackendDump> = Vec::new();
        let mut deferred: DeferredTexts = Vec::new();
        for t in texts {
            let e = parsers::iptables::parse_save(t);
            let l = parsers::iptables::index_save(t).unwrap();
            assert!(e.warnings.is_empty() && l.warnings.is_empty());
            let n = l.value.len();
            eager_dumps.extend(e.value);
            lazy_dumps.extend(l.value);
            let text = Arc::new(t.to_string());
            deferred.extend((0..n).map(|_| Some(text.clone())));
        }
        eager.iptables = Section::ok(IptablesSection {
            backends: eager_dumps,
            default_backend: Some(model::Backend::Nft),
        })
        .with_source("iptables-nft-save -c");
        lazy.iptables = Section::ok(IptablesSection {
            backends: lazy_dumps,
            default_backend: Some(model::Backend::Nft),
        })
        .with_source("iptables-nft-save -c");
        (eager, lazy, deferred)
    }

    #[test]
    fn spliced_output_is_the_eager_output() {
        let kube = fixture("netns/nft-kube-proxy-save-c.txt");
        let aws = fixture("netns/nft-save-c.txt");
        let legacy = fixture("netns/legacy-save-c.txt");
        let both = fixture("netns/concat-legacy-then-nft-c.txt");
        for texts in [
            vec![kube.as_str()],
            vec![aws.as_str(), legacy.as_str()],
            vec![both.as_str()],
        ] {
            let (eager, lazy, deferred) = snapshots(&texts);
            assert!(
                lazy.iptables
                    .get()
                    .unwrap()
                    .backends
                    .iter()
                    .flat_map(|d| &d.tables)
                    .flat_map(|t| &t.chains)
                    .all(|c| c.rules.is_empty()),
                "the indexed snapshot holds no parsed rule"
            );
            for pretty in [false, true] {
                let want = if pretty {
                    serde_json::to_vec_pretty(&eager).unwrap()
                } else {
                    serde_json::to_vec(&eager).unwrap()
                };
                let mut got = Vec::new();
                write(&mut got, lazy.clone(), &deferred, pretty).unwrap();
                assert_eq!(
                    String::from_utf8(got).unwrap(),
                    String::from_utf8(want).unwrap(),
                    "pretty={pretty}"
                );
            }
            let back: Snapshot = {
                let mut got = Vec::new();
                write(&mut got, lazy.clone(), &deferred, false).unwrap();
                serde_json::from_slice(&got).unwrap()
            };
            assert_eq!(back, eager, "reads back as the eager snapshot");
        }
    }

    #[test]
    fn nothing_deferred_is_plain_serde() {
        let (eager, _, _) = snapshots(&[]);
        let mut got = Vec::new();
        write(&mut got, eager.clone(), &Vec::new(), false).unwrap();
        assert_eq!(got, serde_json::to_vec(&eager).unwrap());
    }
}
