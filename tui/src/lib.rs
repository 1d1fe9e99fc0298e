//! `diag tui`: a live terminal UI over every worker node, worst first.
//!
//! The crate has no transport code: it consumes a channel of [`Event`]s (nodes starting and
//! finishing, with their snapshot and outcome) and sends [`Request`]s back for re-collection.
//! It never blocks on the channel, so the first nodes are usable while the rest arrive.
//!
//! Layout: [`app`] is the state, [`keys`] turns key presses into state changes and
//! [`keys::Effect`]s, [`ui`] draws (one file per view), [`term`] owns the terminal (raw mode,
//! alternate screen, restore on quit, panic and SIGTERM).

pub mod app;
pub mod bundle;
pub mod clipboard;
pub mod event;
pub mod keys;
pub mod sanitize;
pub mod term;
pub mod ui;

pub use app::{App, Options};
pub use event::{ChangeLog, Event, NodeResult, NodeUpdate, Request};
pub use term::{run, TuiError};
