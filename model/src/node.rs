//! Node identity: instance facts from IMDS (or inferred), ENIs.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the node is, as far as the VPC is concerned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct NodeIdentity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_dns_name: Option<String>,
    /// IMDS `mac`: the primary ENI's MAC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_mac: Option<String>,
    /// The interface whose MAC equals `primary_mac` (eth0 on AL2, ens5 on AL2023).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_interface: Option<String>,
    /// IMDS `local-ipv4`: the address the CNI SNATs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_ipv4: Option<Ipv4Addr>,
    /// IMDS `vpc-ipv4-cidr-blocks` of the primary ENI (includes secondary VPC CIDRs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vpc_cidrs: Vec<Ipv4Net>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enis: Vec<Eni>,
    /// Names of the fields above that were inferred from kernel state rather than read from
    /// IMDS (e.g. `primary_ipv4` from the default route's source).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inferred: Vec<String>,
}

/// One attached ENI, from IMDS `network/interfaces/macs/<mac>/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct Eni {
    pub mac: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_id: Option<String>,
    /// IMDS `device-number`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_number: Option<u32>,
    /// IMDS `network-card` (multi-NIC instances).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_card: Option<u32>,
    /// Kernel interface with this MAC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_cidr: Option<Ipv4Net>,
    /// IMDS `local-ipv4s`; the first is the ENI's primary address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv4_addresses: Vec<Ipv4Addr>,
    /// IMDS `ipv4-prefix` (prefix delegation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv4_prefixes: Vec<Ipv4Net>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vpc_cidrs: Vec<Ipv4Net>,
}
