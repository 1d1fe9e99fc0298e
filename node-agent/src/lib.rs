//! `node-agent`: a read-only collector of one worker node's pod-networking state.
//!
//! [`collect::collect`] runs one collector per source concurrently, each under a timeout,
//! and returns a [`model::Snapshot`] in which every section carries its own status. Nothing
//! here writes to the node: netlink is dumped (never modified), only the `*-save` iptables
//! binaries are run, files are read, and HTTP requests go to IMDS and ipamd introspection.
//!
//! Layout: one module per source under [`collect`]; [`exec`] owns process spawning; [`http`]
//! is the HTTP/1 client (hyper) for IMDS and ipamd; [`duration`] parses `--since`/`--timeout`
//! and formats timestamps (jiff); [`cli`] is the command line.

pub mod bundle;
pub mod cli;
pub mod collect;
pub mod duration;
pub mod exec;
pub mod http;
pub mod serve;
pub mod snapshot_out;

pub use collect::{collect, Options};
