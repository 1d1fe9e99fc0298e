//! What the TUI consumes and what it asks for.
//!
//! The producer (in `diag`: the fleet runner on a background thread, or the input loader for
//! `--from`) sends [`Event`]s; the TUI drains them without ever blocking and sends
//! [`Request`]s back when the operator asks for a re-collection.

use model::diff::Change;
use model::{NodeReport, Outcome, Snapshot};

/// One message from the producer.
#[derive(Debug, Clone)]
pub enum Event {
    /// Something about one node.
    Node(NodeUpdate),
    /// Collection progress of the current round.
    Progress { done: usize, total: usize },
    /// A line for the status bar (a producer-level problem, e.g. target discovery failed).
    Message(String),
}

/// Per-node progress.
#[derive(Debug, Clone)]
pub enum NodeUpdate {
    /// The node is being collected (again).
    Started { name: String },
    /// The node's collection ended.
    Finished(Box<NodeResult>),
    /// The node daemon's change log (the Changes tab).
    Changes { name: String, log: ChangeLog },
}

/// What the node's `node-agent serve` said about its changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeLog {
    /// The daemon's changes, oldest first, since `since` (RFC 3339).
    Changes { since: String, changes: Vec<Change> },
    /// Nothing listens on the daemon's socket.
    NoDaemon,
    /// The node or its daemon could not be asked.
    Failed(String),
}

/// A finished collection of one node.
#[derive(Debug, Clone)]
pub struct NodeResult {
    pub name: String,
    pub outcome: Outcome,
    /// Why the collection failed (or what went partly wrong).
    pub error: Option<String>,
    pub snapshot: Option<Snapshot>,
    /// The analysis of `snapshot`; computed by the TUI when `None` and a snapshot is present.
    pub report: Option<NodeReport>,
}

impl NodeResult {
    /// A successful collection; the TUI analyses it.
    pub fn ok(name: impl Into<String>, snapshot: Snapshot) -> Self {
        NodeResult {
            name: name.into(),
            outcome: Outcome::Ok,
            error: None,
            snapshot: Some(snapshot),
            report: None,
        }
    }

    /// A node that delivered nothing.
    pub fn failed(name: impl Into<String>, outcome: Outcome, error: impl Into<String>) -> Self {
        NodeResult {
            name: name.into(),
            outcome,
            error: Some(error.into()),
            snapshot: None,
            report: None,
        }
    }
}

/// What the TUI asks the producer for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Collect this node again.
    Recollect(String),
    /// Collect every node again.
    RecollectAll,
}
