//! `ip` (iproute2) output: addresses, links, routes of all tables, policy rules, neighbours.
//!
//! Each parser takes text or `ip -j` JSON (chosen by whether the input starts with `[`), strips
//! `ip -c` colours and paste residue (prompts, `>> node <<` separators, markdown fences),
//! accepts collapsed whitespace and lost indentation, and reports what it skipped as warnings
//! with the line number and text. Values are normalised so that the text and the JSON capture
//! of the same state produce equal model values:
//! - host destinations/selectors get /32 or /128;
//! - a route's absent `proto` is `boot` and absent `scope` is `global` (iproute2 hides both);
//! - tables are numeric (main = 254, local = 255; absent = main unless the caller says otherwise);
//! - route destinations carry no host bits (as in the kernel);
//! - a rule's `fwmark X` without `/mask` has mask 0xffffffff (the kernel's; iproute2 hides it);
//! - an address label equal to the device name is dropped (only `eth1:lnk`-style labels stay);
//! - address flags and route flags come in one fixed order, route flags followed by
//!   `multipath:N` (only the first next hop is kept, with a warning) and `nhid:N`.
//!
//! The last three follow the node-agent's netlink collector, so a node reads the same whether
//! its state came from netlink, `ip -j` or a pasted `ip` text.
//!
//! What the model has no place for is dropped: route `pref`, `mtu` and other metrics, a rule's
//! `goto` target, a neighbour's `router` flag, and the name in `link-netns NAME` (only
//! `link-netnsid N` fills `Link::link_netnsid`).

mod addr;
pub(crate) mod common;
mod neigh;
mod route;
mod rule;

pub use addr::{parse_addr, parse_link, LinksAndAddresses};
pub use common::paste_filter;
/// The family argument of [`parse_rule_family`], re-exported for callers without `model`.
pub use model::net::Family;
pub use neigh::parse_neigh;
pub use route::{parse_route, parse_route_in_table};
pub use rule::{parse_rule, parse_rule_family};
