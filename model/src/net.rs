//! Links, addresses, neighbours, routes (all tables) and policy rules.
//!
//! Field names follow `ip -j` where one exists so that people who know iproute2 can read the
//! JSON, but values are typed (table ids are numbers, never `main`).

use std::net::IpAddr;

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Routing table ids with names in iproute2 (`/etc/iproute2/rt_tables`).
pub const RT_TABLE_DEFAULT: u32 = 253;
pub const RT_TABLE_MAIN: u32 = 254;
pub const RT_TABLE_LOCAL: u32 = 255;

/// Table id from an iproute2 table name or number (`main`, `local`, `default`, `2`, `100000`).
pub fn table_id_from_name(name: &str) -> Option<u32> {
    match name {
        "main" => Some(RT_TABLE_MAIN),
        "local" => Some(RT_TABLE_LOCAL),
        "default" => Some(RT_TABLE_DEFAULT),
        "unspec" => Some(0),
        n => n.parse().ok(),
    }
}

/// iproute2 rendering of a table id.
pub fn table_name(id: u32) -> String {
    match id {
        RT_TABLE_MAIN => "main".into(),
        RT_TABLE_LOCAL => "local".into(),
        RT_TABLE_DEFAULT => "default".into(),
        n => n.to_string(),
    }
}

/// Address family.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
    Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    #[default]
    Inet,
    Inet6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Inet,
            IpAddr::V6(_) => Family::Inet6,
        }
    }
}

/// A network interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct Link {
    pub ifindex: u32,
    pub ifname: String,
    /// `veth`, `vlan`, `dummy`, `bridge`, ... (IFLA_INFO_KIND); absent for physical devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// `UP`, `DOWN`, `UNKNOWN`, `LOWERLAYERDOWN`, ...
    #[serde(default)]
    pub operstate: String,
    /// `UP`, `LOWER_UP`, `BROADCAST`, `NOARP`, ...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// ifindex of the parent/peer (`eni…@if3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_index: Option<u32>,
    /// Peer lives in another namespace (veth to a pod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_netnsid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
}

impl Link {
    /// Administratively up (IFF_UP) and not reported down. Brief captures (`ip -br`) carry no
    /// flags, only the state: then `UP`/`UNKNOWN` count as up.
    pub fn is_up(&self) -> bool {
        if self.flags.is_empty() {
            return matches!(self.operstate.as_str(), "UP" | "UNKNOWN");
        }
        self.flags.iter().any(|f| f == "UP") && self.operstate != "DOWN"
    }
}

/// An address on an interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Address {
    pub ifindex: u32,
    pub ifname: String,
    pub family: Family,
    pub local: IpAddr,
    pub prefixlen: u8,
    /// `global`, `link`, `host`, or a number.
    #[serde(default)]
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<IpAddr>,
    /// `secondary`, `dynamic`, `noprefixroute`, ...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

/// A neighbour (ARP/NDP) entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Neighbour {
    #[serde(default)]
    pub ifindex: u32,
    pub dev: String,
    pub dst: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lladdr: Option<String>,
    /// `PERMANENT`, `REACHABLE`, `STALE`, `FAILED`, ...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub state: Vec<String>,
}

/// A route from any table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Route {
    pub family: Family,
    /// Numeric table id (254 = main, 255 = local; ids above 255 exist).
    pub table: u32,
    /// `unicast`, `local`, `broadcast`, `blackhole`, `unreachable`, `prohibit`, `multicast`, ...
    #[serde(rename = "type", default = "default_route_type")]
    pub route_type: String,
    /// Destination; `0.0.0.0/0` / `::/0` for default.
    pub dst: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oif: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefsrc: Option<IpAddr>,
    /// `kernel`, `boot`, `static`, `dhcp`, `ra`, or a number.
    #[serde(default)]
    pub protocol: String,
    /// `universe`/`global`, `link`, `host`, `nowhere`.
    #[serde(default)]
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

fn default_route_type() -> String {
    "unicast".to_string()
}

impl Route {
    pub fn is_default(&self) -> bool {
        self.dst.prefix_len() == 0
    }

    /// One line in `ip route show table all` style, for evidence.
    pub fn to_ip_line(&self) -> String {
        let mut s = String::new();
        if self.route_type != "unicast" {
            s.push_str(&self.route_type);
            s.push(' ');
        }
        if self.is_default() {
            s.push_str("default");
        } else if self.dst.prefix_len() == self.dst.max_prefix_len() {
            s.push_str(&self.dst.addr().to_string());
        } else {
            s.push_str(&self.dst.to_string());
        }
        if let Some(gw) = &self.gateway {
            s.push_str(&format!(" via {gw}"));
        }
        if let Some(dev) = &self.dev {
            s.push_str(&format!(" dev {dev}"));
        }
        if self.table != RT_TABLE_MAIN {
            s.push_str(&format!(" table {}", table_name(self.table)));
        }
        if !self.protocol.is_empty() && self.protocol != "boot" {
            s.push_str(&format!(" proto {}", self.protocol));
        }
        if !self.scope.is_empty() && self.scope != "universe" && self.scope != "global" {
            s.push_str(&format!(" scope {}", self.scope));
        }
        if let Some(src) = &self.prefsrc {
            s.push_str(&format!(" src {src}"));
        }
        if let Some(m) = self.metric {
            s.push_str(&format!(" metric {m}"));
        }
        s
    }
}

/// A policy-routing rule (`ip rule`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IpRule {
    pub family: Family,
    pub priority: u32,
    /// `not` before the selector.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not: bool,
    /// `from` selector; absent means `from all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<IpNet>,
    /// `to` selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<IpNet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iif: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oif: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmask: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipproto: Option<String>,
    /// Table for `lookup` rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    /// `lookup` (FR_ACT_TO_TBL), `goto`, `nop`, `blackhole`, `unreachable`, `prohibit`.
    #[serde(default = "default_rule_action")]
    pub action: String,
    /// `[detached]` / `[oif detached]`: the interface named by iif/oif does not exist.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub detached: bool,
}

fn default_rule_action() -> String {
    "lookup".to_string()
}

impl IpRule {
    /// One line in `ip rule show` style, for evidence.
    pub fn to_ip_line(&self) -> String {
        let mut s = format!("{}:\t", self.priority);
        if self.not {
            s.push_str("not ");
        }
        match &self.src {
            Some(n) if n.prefix_len() == n.max_prefix_len() => {
                s.push_str(&format!("from {}", n.addr()))
            }
            Some(n) => s.push_str(&format!("from {n}")),
            None => s.push_str("from all"),
        }
        if let Some(n) = &self.dst {
            if n.prefix_len() == n.max_prefix_len() {
                s.push_str(&format!(" to {}", n.addr()));
            } else {
                s.push_str(&format!(" to {n}"));
            }
        }
        if let Some(m) = self.fwmark {
            match self.fwmask {
                Some(mask) if mask != u32::MAX => s.push_str(&format!(" fwmark {m:#x}/{mask:#x}")),
                _ => s.push_str(&format!(" fwmark {m:#x}")),
            }
        }
        // iproute2 prints `[detached]` right after the interface it refers to.
        if let Some(i) = &self.iif {
            s.push_str(&format!(" iif {i}"));
            if self.detached {
                s.push_str(" [detached]");
            }
        }
        if let Some(o) = &self.oif {
            s.push_str(&format!(" oif {o}"));
            if self.detached && self.iif.is_none() {
                s.push_str(" [detached]");
            }
        }
        if let Some(p) = &self.ipproto {
            s.push_str(&format!(" ipproto {p}"));
        }
        match (self.action.as_str(), self.table) {
            ("lookup", Some(t)) => s.push_str(&format!(" lookup {}", table_name(t))),
            (a, _) => s.push_str(&format!(" {a}")),
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detached_follows_the_interface_like_iproute2() {
        let r = IpRule {
            family: Family::Inet,
            priority: 10,
            not: false,
            src: None,
            dst: None,
            iif: Some("vlan1c357e15edb".into()),
            oif: None,
            fwmark: None,
            fwmask: None,
            ipproto: None,
            table: Some(102),
            action: "lookup".into(),
            detached: true,
        };
        assert_eq!(
            r.to_ip_line(),
            "10:\tfrom all iif vlan1c357e15edb [detached] lookup 102"
        );
    }
}
