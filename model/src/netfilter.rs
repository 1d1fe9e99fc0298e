//! Built-in netfilter names (tables, chains, targets, target options) and the one vocabulary
//! for a SNAT rule's port randomisation, beside the AWS names in [`crate::vpccni`].
//!
//! Source: the kernel's built-in tables (`net/ipv4/netfilter/iptable_{nat,mangle,filter}.c`)
//! and targets (`xt_nat`, `xt_CONNMARK`, `xt_MASQUERADE`), as `iptables-save` prints them;
//! the randomisation modes are `NF_NAT_RANGE_PROTO_RANDOM{,_FULLY}` and the CNI's
//! `AWS_VPC_K8S_CNI_RANDOMIZESNAT` (aws/amazon-vpc-cni-k8s `pkg/networkutils/network.go`
//! `typeOfSNAT`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::iptables::IptRule;

/// Tables.
pub const TABLE_NAT: &str = "nat";
pub const TABLE_MANGLE: &str = "mangle";
pub const TABLE_FILTER: &str = "filter";

/// Built-in chains.
pub const CHAIN_PREROUTING: &str = "PREROUTING";
pub const CHAIN_INPUT: &str = "INPUT";
pub const CHAIN_FORWARD: &str = "FORWARD";
pub const CHAIN_OUTPUT: &str = "OUTPUT";
pub const CHAIN_POSTROUTING: &str = "POSTROUTING";

/// The built-in chains of each table; a complete dump of a table lists them with a policy.
pub const NAT_BUILTIN_CHAINS: &[&str] = &[
    CHAIN_PREROUTING,
    CHAIN_INPUT,
    CHAIN_OUTPUT,
    CHAIN_POSTROUTING,
];
pub const MANGLE_BUILTIN_CHAINS: &[&str] = &[
    CHAIN_PREROUTING,
    CHAIN_INPUT,
    CHAIN_FORWARD,
    CHAIN_OUTPUT,
    CHAIN_POSTROUTING,
];
pub const FILTER_BUILTIN_CHAINS: &[&str] = &[CHAIN_INPUT, CHAIN_FORWARD, CHAIN_OUTPUT];

/// The built-in chains of `table` (filter's for an unknown table).
pub fn builtin_chains(table: &str) -> &'static [&'static str] {
    match table {
        TABLE_NAT => NAT_BUILTIN_CHAINS,
        TABLE_MANGLE => MANGLE_BUILTIN_CHAINS,
        _ => FILTER_BUILTIN_CHAINS,
    }
}

/// Targets.
pub const TARGET_SNAT: &str = "SNAT";
pub const TARGET_MASQUERADE: &str = "MASQUERADE";
pub const TARGET_RETURN: &str = "RETURN";
pub const TARGET_ACCEPT: &str = "ACCEPT";
pub const TARGET_CONNMARK: &str = "CONNMARK";
pub const TARGET_MARK: &str = "MARK";

/// Target options.
pub const OPT_TO_SOURCE: &str = "--to-source";
pub const OPT_RANDOM: &str = "--random";
pub const OPT_RANDOM_FULLY: &str = "--random-fully";
pub const OPT_SET_XMARK: &str = "--set-xmark";
pub const OPT_SET_MARK: &str = "--set-mark";
pub const OPT_RESTORE_MARK: &str = "--restore-mark";

/// Source-port randomisation of a SNAT rule, named as `AWS_VPC_K8S_CNI_RANDOMIZESNAT` names
/// it. This is the only vocabulary for it: the CNI setting, the flag a rule carries and the
/// words in reports all come from here.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Randomize {
    /// `--random-fully` (the CNI default).
    Prng,
    /// `--random`.
    Hashrandom,
    /// No flag.
    None,
}

impl Randomize {
    /// The SNAT target flag this mode produces.
    pub fn flag(self) -> Option<&'static str> {
        match self {
            Randomize::Prng => Some(OPT_RANDOM_FULLY),
            Randomize::Hashrandom => Some(OPT_RANDOM),
            Randomize::None => None,
        }
    }

    /// The flag, or `none` when the rule carries no flag.
    pub fn flag_or_none(self) -> &'static str {
        self.flag().unwrap_or("none")
    }

    /// The `RANDOMIZESNAT` value (`prng`, `hashrandom`, `none`).
    pub fn as_str(self) -> &'static str {
        match self {
            Randomize::Prng => "prng",
            Randomize::Hashrandom => "hashrandom",
            Randomize::None => "none",
        }
    }

    /// Flag and setting together: `--random-fully = prng`, `no --random flag = none`.
    pub fn describe(self) -> &'static str {
        match self {
            Randomize::Prng => "--random-fully = prng",
            Randomize::Hashrandom => "--random = hashrandom",
            Randomize::None => "no --random flag = none",
        }
    }

    /// The mode a programmed rule has, from its target options.
    pub fn of_rule(rule: &IptRule) -> Randomize {
        if rule.has_target_option(OPT_RANDOM_FULLY) {
            Randomize::Prng
        } else if rule.has_target_option(OPT_RANDOM) {
            Randomize::Hashrandom
        } else {
            Randomize::None
        }
    }

    /// A mode written by a person: the setting's name or the flag (`prng`, `random-fully`,
    /// `--random-fully`, `hashrandom`, `random`, `--random`, `none`), any case.
    pub fn from_name_or_flag(s: &str) -> Option<Randomize> {
        match s.trim().to_ascii_lowercase().as_str() {
            "prng" | "random-fully" | "--random-fully" => Some(Randomize::Prng),
            "hashrandom" | "random" | "--random" => Some(Randomize::Hashrandom),
            "none" => Some(Randomize::None),
            _ => None,
        }
    }
}

impl std::fmt::Display for Randomize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_flags_round_trip() {
        for m in [Randomize::Prng, Randomize::Hashrandom, Randomize::None] {
            assert_eq!(Randomize::from_name_or_flag(m.as_str()), Some(m));
            assert_eq!(Randomize::from_name_or_flag(m.flag_or_none()), Some(m));
        }
        assert_eq!(Randomize::from_name_or_flag("fast"), None);
        assert_eq!(builtin_chains(TABLE_NAT).len(), 4);
    }
}
