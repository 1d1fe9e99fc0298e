//! Sysctls that matter for pod networking, keyed by their dotted name.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Sysctl values keyed by dotted name (`net.ipv4.conf.eth0.rp_filter`), values as printed.
///
/// The agent collects: `net.ipv4.ip_forward`, `net.ipv4.conf.{all,default,<if>}.rp_filter`,
/// `net.ipv4.tcp_early_demux`, `net.netfilter.nf_conntrack_max`,
/// `net.netfilter.nf_conntrack_count`, `net.ipv6.conf.all.forwarding`,
/// `net.ipv6.conf.all.disable_ipv6`, `net.ipv4.ip_local_port_range` and
/// `net.ipv4.ip_local_reserved_ports`. A `sysctl -a` capture may hold anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
pub struct Sysctls {
    pub values: BTreeMap<String, String>,
}

impl Sysctls {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|s| s.trim())
    }

    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key)?.parse().ok()
    }

    /// `net.ipv4.conf.<iface>.rp_filter`.
    pub fn rp_filter(&self, iface: &str) -> Option<u64> {
        self.get_u64(&format!("net.ipv4.conf.{iface}.rp_filter"))
    }

    /// The value the kernel applies: `max(conf.all, conf.<iface>)`. None when it cannot be
    /// determined: with only one of the two known, the value is certain only when that one is
    /// already the maximum (2, loose).
    pub fn effective_rp_filter(&self, iface: &str) -> Option<u64> {
        match (self.rp_filter("all"), self.rp_filter(iface)) {
            (Some(a), Some(i)) => Some(a.max(i)),
            (Some(2), None) | (None, Some(2)) => Some(2),
            _ => None,
        }
    }

    /// Interfaces with an `rp_filter` entry (excluding `all` and `default`).
    pub fn rp_filter_interfaces(&self) -> Vec<String> {
        self.values
            .keys()
            .filter_map(|k| {
                k.strip_prefix("net.ipv4.conf.")
                    .and_then(|r| r.strip_suffix(".rp_filter"))
                    .filter(|i| *i != "all" && *i != "default")
                    .map(str::to_string)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_rp_filter_is_max() {
        let mut s = Sysctls::default();
        s.values
            .insert("net.ipv4.conf.all.rp_filter".into(), "1".into());
        s.values
            .insert("net.ipv4.conf.eth0.rp_filter".into(), "2".into());
        assert_eq!(s.effective_rp_filter("eth0"), Some(2));
        s.values
            .insert("net.ipv4.conf.all.rp_filter".into(), "0".into());
        s.values
            .insert("net.ipv4.conf.eth1.rp_filter".into(), "1".into());
        assert_eq!(s.effective_rp_filter("eth1"), Some(1));
        assert_eq!(
            s.rp_filter_interfaces(),
            vec!["eth0".to_string(), "eth1".to_string()]
        );
    }
}
