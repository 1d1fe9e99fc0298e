//! Lenient parsers for what people and tools print on an EKS node: text in, model out.
//!
//! Every parser accepts mangled real-world input (pastes with collapsed spaces, indentation,
//! markdown residue, truncation), parses what it can and reports what it skipped as
//! [`ParseWarning`]s carrying the line number and the offending text. No input may make a
//! parser panic; a property test and a fuzz target per format hold them to that.
//!
//! | module | input |
//! |---|---|
//! | [`iptables`] | `iptables-save [-c]` (nft and legacy), `iptables -S`, `iptables -L -n -v [-x] [--line-numbers]` |
//! | [`ip`] | `ip addr`, `ip link`, `ip route [show table all]`, `ip rule`, `ip neigh`, text and `ip -j` JSON |
//! | [`conntrack`] | `conntrack -L [-o extended]`, `/proc/net/nf_conntrack`, `conntrack -S`, `/proc/net/stat/nf_conntrack` |
//! | [`ifconfig`] | `ifconfig` (net-tools 2.x and 1.60) |
//! | [`sysctl`] | `sysctl -a` |
//! | [`cnilog`] | `/var/log/aws-routed-eni/*.log[.gz]`: zap JSON, logrus/seelog text, split pastes |
//! | [`ipamd`] | ipamd introspection JSON (`/v1/enis`, `*-env-settings`), `cni-env` KEY=VALUE files |

pub mod cnilog;
pub mod conntrack;
pub mod ifconfig;
pub mod ip;
pub mod ipamd;
pub mod iptables;
pub mod sysctl;
mod util;

pub use util::{ParseError, ParseWarning, Parsed, WarningKind};
