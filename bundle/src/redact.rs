//! Consistent, prefix-preserving pseudonyms for everything that identifies a node.
//!
//! # Addresses
//!
//! IPv4 and IPv6 addresses go through one keyed, **prefix-preserving** permutation (the
//! construction of Crypto-PAn, with SHA-256 as the PRF): bit *k* of the pseudonym is bit *k*
//! of the original XOR a pseudo-random bit computed from the key and the first *k* bits of the
//! original. Two addresses that share their first *n* bits share exactly the first *n* bits of
//! their pseudonyms, so for every network `N/p` the pseudonyms of its addresses are exactly the
//! addresses of `f(N)/p`:
//!
//! * prefix lengths are kept and every membership test gives the same answer (a pod IP stays
//!   inside its redacted subnet, the subnet inside its redacted VPC CIDR, an exclusion CIDR that
//!   was disjoint from the VPC stays disjoint, two equal addresses stay equal);
//! * the answer does not depend on the order in which addresses are met, nor on which file they
//!   are in (text, JSON, a dashed `ip-10-1-2-3` host name, an IPv4-mapped `::ffff:10.1.2.3`):
//!   the pseudonym is a function of the address and the key only. The map file keeps the key,
//!   so a second bundle of the same incident redacted with `--map-file` gets the same
//!   pseudonyms, networks it had not seen included.
//!
//! Some ranges are pinned. *Kept* ranges map to themselves address by address (loopback,
//! `0.0.0.0/8` with `0.0.0.0/0`, link-local `169.254.0.0/16` with IMDS `169.254.169.254` and
//! the pod gateway `169.254.1.1`, multicast and the reserved/broadcast block, their IPv6
//! counterparts, the EC2 IPv6 IMDS/DNS `fd00:ec2::/32`). *Class* ranges map onto themselves as
//! a set, their inside permuted (`10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`,
//! `100.64.0.0/10`, ULA `fc00::/7`, link-local `fe80::/64`), so an RFC 1918 address stays an
//! RFC 1918 address of the same block and a public one stays public. The class networks
//! themselves (`10.0.0.0/8`) therefore appear unchanged: they say nothing about the node.
//!
//! Before rewriting, [`Redactor::preload`] learns every address and network of the bundle (the
//! VPC, subnet, ENI and exclusion CIDRs of the snapshot, and every address of every file) and,
//! when the key is fresh, draws keys until no pseudonym equals an original address or network
//! address: an original can then be searched for in the archive and is never found by
//! accident. With a reused key the key wins (consistency across bundles) and such collisions
//! are reported in [`Redactor::warnings`].
//!
//! # Other identifiers
//!
//! MAC addresses (group addresses and all-zero kept), AWS ids (`i-`, `eni-`, `subnet-`, `vpc-`,
//! `sg-`, …), ARNs, AWS account ids (12-digit numbers met in an ARN or an ECR host name, then
//! everywhere), host names and `--redact-keyword` words get keyed pseudonyms of the same shape
//! (`i-` + as many hex digits, `02:…` MACs, 12 digits, `host-…`, `word-…`). Every pseudonym
//! given is recorded in the [`PrivateMap`] (sos key names: `ip_map`, `ipv6_map`, `mac_map`,
//! `hostname_map`, `keyword_map`, plus `id_map`, `account_map`, `arn_map`, `networks`).

use std::collections::{BTreeMap, BTreeSet};

// The address caches are keyed by addresses the bundle holds, not by an attacker-chosen
// stream that could flood them; foldhash instead of SipHash (the cold run spent ~11% hashing).
use foldhash::{HashMap, HashMapExt, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `format` of a map file.
pub const MAP_FORMAT: &str = "eks-diag-private-map";

/// The private map: the key and every pseudonym handed out. Written beside the archive (mode
/// 0600), never inside it; `--map-file` reads it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PrivateMap {
    pub format: String,
    pub version: u32,
    /// Hex of the 32-byte key of the address permutation and of every other pseudonym.
    pub key: String,
    #[serde(default)]
    pub ip_map: BTreeMap<String, String>,
    #[serde(default)]
    pub ipv6_map: BTreeMap<String, String>,
    #[serde(default)]
    pub mac_map: BTreeMap<String, String>,
    #[serde(default)]
    pub hostname_map: BTreeMap<String, String>,
    #[serde(default)]
    pub keyword_map: BTreeMap<String, String>,
    #[serde(default)]
    pub id_map: BTreeMap<String, String>,
    #[serde(default)]
    pub account_map: BTreeMap<String, String>,
    #[serde(default)]
    pub arn_map: BTreeMap<String, String>,
    /// The preloaded networks (VPC, subnet, ENI, exclusion CIDRs): original → pseudonym.
    #[serde(default)]
    pub networks: BTreeMap<String, String>,
}

/// Why a map file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("not an eks-diag map file: {0}")]
    Json(String),
    #[error("not an eks-diag map file (format is {0:?}, expected {MAP_FORMAT:?})")]
    Format(String),
    #[error("map file key must be 64 hex digits")]
    Key,
    #[error("reading the map file: {0}")]
    Io(#[from] std::io::Error),
}

impl PrivateMap {
    pub fn from_json(text: &str) -> Result<PrivateMap, MapError> {
        let m: PrivateMap =
            serde_json::from_str(text).map_err(|e| MapError::Json(e.to_string()))?;
        if m.format != MAP_FORMAT {
            return Err(MapError::Format(m.format));
        }
        parse_key(&m.key)?;
        Ok(m)
    }

    /// `--map-file PATH` (of `diag bundle`, `node-agent bundle`): the map of an earlier bundle.
    pub fn read_file(path: &std::path::Path) -> Result<PrivateMap, MapError> {
        PrivateMap::from_json(&std::fs::read_to_string(path)?)
    }
}

fn parse_key(hex_key: &str) -> Result<[u8; 32], MapError> {
    let bytes = hex::decode(hex_key.trim()).map_err(|_| MapError::Key)?;
    bytes.try_into().map_err(|_| MapError::Key)
}

/// Address family tag of the PRF input.
const V4: u8 = 4;
const V6: u8 = 6;

/// A pinned range: `kept` maps every address to itself; otherwise the range maps onto itself.
struct Pin {
    net: u128,
    len: u32,
    kept: bool,
}

const fn v4pin(a: u32, len: u32, kept: bool) -> Pin {
    Pin {
        net: a as u128,
        len,
        kept,
    }
}

const V4_PINS: &[Pin] = &[
    v4pin(0x0000_0000, 8, true),   // 0.0.0.0/8 (0.0.0.0/0, "this network")
    v4pin(0x7f00_0000, 8, true),   // 127.0.0.0/8 loopback
    v4pin(0xa9fe_0000, 16, true),  // 169.254.0.0/16: IMDS, 169.254.1.1, link-local
    v4pin(0xe000_0000, 3, true),   // 224.0.0.0/3: multicast, reserved, broadcast, netmasks
    v4pin(0x0a00_0000, 8, false),  // 10.0.0.0/8
    v4pin(0xac10_0000, 12, false), // 172.16.0.0/12
    v4pin(0xc0a8_0000, 16, false), // 192.168.0.0/16
    v4pin(0x6440_0000, 10, false), // 100.64.0.0/10 (CG-NAT, custom networking)
];

const V6_PINS: &[Pin] = &[
    Pin {
        net: 0,
        len: 96,
        kept: true,
    }, // ::/96: ::, ::1
    Pin {
        net: 0xfe80 << 112,
        len: 64,
        kept: false,
    }, // fe80::/64 link-local, interface ids permuted
    Pin {
        net: 0xfe80 << 112,
        len: 10,
        kept: false,
    },
    Pin {
        net: 0xfe80_0000_0000_0000_0000_0000_0000_0001,
        len: 128,
        kept: true,
    }, // fe80::1
    Pin {
        net: 0xff << 120,
        len: 8,
        kept: true,
    }, // multicast
    Pin {
        net: 0xfd00_0ec2 << 96,
        len: 32,
        kept: true,
    }, // fd00:ec2::/32 IMDS / DNS over IPv6
    Pin {
        net: 0xfc << 120,
        len: 7,
        kept: false,
    }, // ULA
    Pin {
        net: 0x2 << 125,
        len: 3,
        kept: false,
    }, // global unicast
];

/// AWS resource id prefixes, longest first where one is a prefix of another.
const ID_PREFIXES: &[&str] = &[
    "eni-attach",
    "eipalloc",
    "eipassoc",
    "subnet",
    "vpce",
    "snap",
    "eni",
    "vpc",
    "vol",
    "ami",
    "rtb",
    "igw",
    "nat",
    "acl",
    "pcx",
    "tgw",
    "sg",
    "lt",
    "i",
];

/// Host names and words never treated as identifying (they name formats, not nodes).
const NOT_A_HOSTNAME: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "unknown",
    "node",
    "ip",
    "lo",
    "eth0",
    "ens5",
    "all",
    "nat",
    "raw",
];

/// Entries of each kind rewritten, for the manifest (sos: `parsers.<name>.entries`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedactionStats {
    pub ip: u64,
    pub ipv6: u64,
    pub mac: u64,
    pub id: u64,
    pub account: u64,
    pub arn: u64,
    pub hostname: u64,
    pub keyword: u64,
}

/// The redactor: one per bundle (or per incident, with a reused map).
pub struct Redactor {
    key: [u8; 32],
    /// The key came from a map file: it is never redrawn.
    key_fixed: bool,
    map: PrivateMap,
    /// (lower-cased needle, pseudonym), longest first.
    words: Vec<(String, String)>,
    accounts: BTreeSet<String>,
    v4: HashMap<u32, u32>,
    v6: HashMap<u128, u128>,
    prf: HashMap<(u8, u8, u128), [u8; 32]>,
    stats: RedactionStats,
    warnings: Vec<String>,
}

/// One identifier found by the scanner.
enum Tok<'a> {
    V4(u32, Option<u8>),
    V6(Ipv6Addr, Option<u8>),
    Dashed(u32),
    Mac(&'a str),
    Id(&'a str, &'a str),
    Arn(&'a str),
    Digits12(&'a str, bool),
}

impl Redactor {
    /// A fresh random key.
    pub fn new() -> Redactor {
        Self::with_key(rand::random(), false, PrivateMap::default())
    }

    /// A fixed key (tests, benchmarks); collisions are reported, the key is not redrawn.
    pub fn from_key(key: [u8; 32]) -> Redactor {
        Self::with_key(key, true, PrivateMap::default())
    }

    /// Continue a map written before: same key, same host/keyword pseudonyms.
    pub fn from_map(map: PrivateMap) -> Result<Redactor, MapError> {
        let key = parse_key(&map.key)?;
        let mut r = Self::with_key(key, true, map);
        r.accounts = r.map.account_map.keys().cloned().collect();
        r.rebuild_words();
        Ok(r)
    }

    fn with_key(key: [u8; 32], key_fixed: bool, map: PrivateMap) -> Redactor {
        let mut map = map;
        map.format = MAP_FORMAT.to_string();
        map.version = 1;
        map.key = hex::encode(key);
        Redactor {
            key,
            key_fixed,
            map,
            words: Vec::new(),
            accounts: BTreeSet::new(),
            v4: HashMap::new(),
            v6: HashMap::new(),
            prf: HashMap::new(),
            stats: RedactionStats::default(),
            warnings: Vec::new(),
        }
    }

    fn set_key(&mut self, key: [u8; 32]) {
        self.key = key;
        self.map.key = hex::encode(key);
        self.v4.clear();
        self.v6.clear();
        self.prf.clear();
        // Every other pseudonym derives from the key too.
        for m in [
            &mut self.map.mac_map,
            &mut self.map.id_map,
            &mut self.map.account_map,
            &mut self.map.arn_map,
            &mut self.map.ip_map,
            &mut self.map.ipv6_map,
        ] {
            m.clear();
        }
        let hosts: Vec<String> = std::mem::take(&mut self.map.hostname_map)
            .into_keys()
            .collect();
        let words: Vec<String> = std::mem::take(&mut self.map.keyword_map)
            .into_keys()
            .collect();
        for h in hosts {
            let p = format!("host-{}", &self.hash_hex(b"host", h.as_bytes())[..8]);
            self.map.hostname_map.insert(h, p);
        }
        for w in words {
            let p = format!("word-{}", &self.hash_hex(b"word", w.as_bytes())[..8]);
            self.map.keyword_map.insert(w, p);
        }
        self.rebuild_words();
    }

    /// The map as it stands (write it after the bundle is done): every address met that got a
    /// pseudonym comes from the permutation's cache, so rewriting never formats map keys.
    pub fn map(&self) -> PrivateMap {
        let mut m = self.map.clone();
        for (a, p) in &self.v4 {
            if a != p {
                m.ip_map.insert(
                    Ipv4Addr::from(*a).to_string(),
                    Ipv4Addr::from(*p).to_string(),
                );
            }
        }
        for (a, p) in &self.v6 {
            if a != p {
                m.ipv6_map.insert(
                    Ipv6Addr::from(*a).to_string(),
                    Ipv6Addr::from(*p).to_string(),
                );
            }
        }
        m
    }

    pub fn stats(&self) -> &RedactionStats {
        &self.stats
    }

    /// Collisions met with a reused key, and other things the user should know.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// A host name of the node (the snapshot's hostname, IMDS local-hostname, private DNS
    /// name). Names that embed the IP (`ip-10-1-2-3…`) need no entry: the dashed address is
    /// rewritten with the address map. Generic names (`localhost`, `eth0`)
    /// (and names under 2 characters) are refused: they would rewrite the formats themselves.
    pub fn add_hostname(&mut self, name: &str) {
        let n = name.trim().trim_end_matches('.').to_ascii_lowercase();
        if n.len() < 2 || NOT_A_HOSTNAME.contains(&n.as_str()) || dashed_host(&n) {
            return;
        }
        // The short name too: logs print `myhost`, the FQDN is `myhost.corp.example`.
        let short = n.split('.').next().unwrap_or("").to_string();
        for v in [n.clone(), short] {
            if v.len() < 2 || NOT_A_HOSTNAME.contains(&v.as_str()) {
                continue;
            }
            if !self.map.hostname_map.contains_key(&v) {
                let p = format!("host-{}", &self.hash_hex(b"host", v.as_bytes())[..8]);
                self.map.hostname_map.insert(v, p);
            }
        }
        self.rebuild_words();
    }

    /// A `--redact-keyword` word (case-insensitive, whole words).
    pub fn add_keyword(&mut self, word: &str) {
        let w = word.trim().to_ascii_lowercase();
        if w.is_empty() || self.map.keyword_map.contains_key(&w) {
            return;
        }
        let p = format!("word-{}", &self.hash_hex(b"word", w.as_bytes())[..8]);
        self.map.keyword_map.insert(w, p);
        self.rebuild_words();
    }

    fn rebuild_words(&mut self) {
        let mut words: Vec<(String, String)> = self
            .map
            .hostname_map
            .iter()
            .chain(self.map.keyword_map.iter())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        words.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        self.words = words;
    }

    /// Learn the bundle before rewriting any of it: every address and network in `texts` (and
    /// the JSON strings of `jsons`), every account id in an ARN or ECR host, and the named
    /// networks (VPC, subnet, ENI, exclusion CIDRs) that go into the map's `networks`. With a
    /// fresh key, keys are drawn until no pseudonym equals an original.
    pub fn preload(&mut self, texts: &[&str], jsons: &[&Value], networks: &[ipnet::IpNet]) {
        let mut seen = Learned::default();
        for t in texts {
            learn_text(t, &mut seen);
        }
        for j in jsons {
            learn_json(j, &mut seen);
        }
        for n in networks {
            seen.add_net(*n);
        }
        self.accounts.extend(seen.accounts.iter().cloned());
        let mut tries = 0;
        loop {
            let clashes = self.clashes(&seen);
            if clashes.is_empty() {
                break;
            }
            if self.key_fixed || tries >= 64 {
                self.warnings.push(format!(
                    "{} pseudonym(s) equal an original address of this bundle (the key is {}): {}",
                    clashes.len(),
                    if self.key_fixed {
                        "reused, so it is kept"
                    } else {
                        "drawn 64 times"
                    },
                    clashes
                        .iter()
                        .take(5)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                break;
            }
            tries += 1;
            self.set_key(rand::random());
        }
        for n in networks {
            let (orig, pseudo) = (n.trunc().to_string(), self.map_net(n.trunc()).to_string());
            if orig != pseudo {
                self.map.networks.insert(orig, pseudo);
            }
        }
    }

    /// Originals that some pseudonym equals: another original, or itself by accident (a
    /// pinned address or class network is meant to stay and does not count). Networks count
    /// by the address their pseudonym is written with: a `/19` inside `192.168.0.0/16` maps
    /// onto itself for one key in eight.
    fn clashes(&mut self, seen: &Learned) -> Vec<String> {
        let mut out = Vec::new();
        for &a in &seen.v4 {
            let m = self.map_v4(a);
            let hit = if m == a {
                !forced_fixed(V4_PINS, u128::from(a), 32, 32)
            } else {
                seen.v4.contains(&m)
            };
            if hit {
                out.push(format!("{} -> {}", Ipv4Addr::from(a), Ipv4Addr::from(m)));
            }
        }
        for &(a, l) in &seen.nets4 {
            let m = self.map_v4(a);
            let mn = trunc_bits(u128::from(m), u32::from(l), 32) as u32;
            let hit = if mn == a {
                !forced_fixed(V4_PINS, u128::from(a), u32::from(l), 32)
            } else {
                seen.v4.contains(&mn)
            };
            if hit {
                out.push(format!(
                    "{}/{l} -> {}/{l}",
                    Ipv4Addr::from(a),
                    Ipv4Addr::from(mn)
                ));
            }
        }
        for &a in &seen.v6 {
            let m = self.map_v6_raw(a);
            let hit = if m == a {
                !forced_fixed(V6_PINS, a, 128, 128)
            } else {
                seen.v6.contains(&m)
            };
            if hit {
                out.push(format!("{} -> {}", Ipv6Addr::from(a), Ipv6Addr::from(m)));
            }
        }
        for &(a, l) in &seen.nets6 {
            let m = self.map_v6_raw(a);
            let mn = trunc_bits(m, u32::from(l), 128);
            let hit = if mn == a {
                !forced_fixed(V6_PINS, a, u32::from(l), 128)
            } else {
                seen.v6.contains(&mn)
            };
            if hit {
                out.push(format!(
                    "{}/{l} -> {}/{l}",
                    Ipv6Addr::from(a),
                    Ipv6Addr::from(mn)
                ));
            }
        }
        // The sets are unordered; the warning that quotes these must not be.
        out.sort();
        out
    }

    // ---- addresses ---------------------------------------------------------------------

    fn prf(&mut self, fam: u8, level: u8, prefix: u128) -> [u8; 32] {
        if let Some(h) = self.prf.get(&(fam, level, prefix)) {
            return *h;
        }
        let mut d = Sha256::new();
        d.update(self.key);
        d.update([b'a', fam, level]);
        d.update(prefix.to_be_bytes());
        let h: [u8; 32] = d.finalize().into();
        self.prf.insert((fam, level, prefix), h);
        h
    }

    /// The prefix-preserving permutation over `width` bits (32 or 128).
    fn permute(&mut self, fam: u8, a: u128, width: u32, pins: &[Pin]) -> u128 {
        let mut out: u128 = 0;
        for level in 0..width / 8 {
            let done = level * 8;
            let prefix = shr(a, width - done);
            let byte = (shr(a, width - done - 8) & 0xff) as u32;
            let h = self.prf(fam, level as u8, prefix);
            let mut mapped = 0u32;
            for j in 0..8u32 {
                let sub = if j == 0 { 0 } else { byte >> (8 - j) };
                let idx = ((1u32 << j) - 1 + sub) as usize;
                let mut flip = u32::from((h[idx / 8] >> (idx % 8)) & 1);
                let k = done + j;
                if flip == 1 && pinned(pins, shr(a, width - k), k, width) {
                    flip = 0;
                }
                let bit = (byte >> (7 - j)) & 1;
                mapped |= (bit ^ flip) << (7 - j);
            }
            out |= u128::from(mapped) << (width - done - 8);
        }
        out
    }

    fn map_v4(&mut self, a: u32) -> u32 {
        if let Some(m) = self.v4.get(&a) {
            return *m;
        }
        let m = self.permute(V4, u128::from(a), 32, V4_PINS) as u32;
        self.v4.insert(a, m);
        m
    }

    /// IPv6 without the IPv4-mapped special case.
    fn map_v6_raw(&mut self, a: u128) -> u128 {
        if let Some(m) = self.v6.get(&a) {
            return *m;
        }
        let m = self.permute(V6, a, 128, V6_PINS);
        self.v6.insert(a, m);
        m
    }

    /// The pseudonym of an IPv4 address (recorded in the map).
    pub fn ipv4(&mut self, a: Ipv4Addr) -> Ipv4Addr {
        let m = Ipv4Addr::from(self.map_v4(u32::from(a)));
        if m != a {
            self.stats.ip += 1;
        }
        m
    }

    /// The pseudonym of an IPv6 address; `::ffff:a.b.c.d` maps its IPv4 part.
    pub fn ipv6(&mut self, a: Ipv6Addr) -> Ipv6Addr {
        if let Some(v4) = a.to_ipv4_mapped() {
            return self.ipv4(v4).to_ipv6_mapped();
        }
        let m = Ipv6Addr::from(self.map_v6_raw(u128::from(a)));
        if m != a {
            self.stats.ipv6 += 1;
        }
        m
    }

    /// The pseudonym of a network: same prefix length, the image of its addresses.
    pub fn map_net(&mut self, n: ipnet::IpNet) -> ipnet::IpNet {
        match n {
            ipnet::IpNet::V4(v) => {
                let m = self.ipv4(v.network());
                ipnet::IpNet::V4(
                    ipnet::Ipv4Net::new(m, v.prefix_len())
                        .map(|x| x.trunc())
                        .unwrap_or(v),
                )
            }
            ipnet::IpNet::V6(v) => {
                let m = self.ipv6(v.network());
                ipnet::IpNet::V6(
                    ipnet::Ipv6Net::new(m, v.prefix_len())
                        .map(|x| x.trunc())
                        .unwrap_or(v),
                )
            }
        }
    }

    // ---- other identifiers -------------------------------------------------------------

    fn hash_hex(&self, tag: &[u8], v: &[u8]) -> String {
        let mut d = Sha256::new();
        d.update(self.key);
        d.update(tag);
        d.update([0]);
        d.update(v);
        hex::encode(d.finalize())
    }

    fn mac(&mut self, m: &str) -> String {
        let lower = m.to_ascii_lowercase();
        let first = u8::from_str_radix(&lower[..2], 16).unwrap_or(0);
        if first & 1 == 1 || lower == "00:00:00:00:00:00" {
            return m.to_string();
        }
        if let Some(p) = self.map.mac_map.get(&lower) {
            self.stats.mac += 1;
            return p.clone();
        }
        let h = self.hash_hex(b"mac", lower.as_bytes());
        let mut p = String::from("02");
        for i in 0..5 {
            p.push(':');
            p.push_str(&h[i * 2..i * 2 + 2]);
        }
        self.stats.mac += 1;
        self.map.mac_map.insert(lower, p.clone());
        p
    }

    fn id(&mut self, prefix: &str, hexpart: &str) -> String {
        let orig = format!("{prefix}-{hexpart}");
        if let Some(p) = self.map.id_map.get(&orig) {
            self.stats.id += 1;
            return p.clone();
        }
        let h = self.hash_hex(b"id", orig.as_bytes());
        let p = format!("{prefix}-{}", &h[..hexpart.len().min(h.len())]);
        self.stats.id += 1;
        self.map.id_map.insert(orig, p.clone());
        p
    }

    fn account(&mut self, a: &str) -> String {
        if let Some(p) = self.map.account_map.get(a) {
            self.stats.account += 1;
            return p.clone();
        }
        let h = self.hash_hex(b"account", a.as_bytes());
        let mut p: String = h
            .bytes()
            .map(|c| char::from(b'0' + (c % 10)))
            .take(12)
            .collect();
        if p == a {
            p = p.chars().rev().collect();
        }
        self.stats.account += 1;
        self.accounts.insert(a.to_string());
        self.map.account_map.insert(a.to_string(), p.clone());
        p
    }

    fn arn(&mut self, arn: &str) -> String {
        if let Some(p) = self.map.arn_map.get(arn) {
            self.stats.arn += 1;
            return p.clone();
        }
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        if parts.len() < 6 {
            return arn.to_string();
        }
        let account = if parts[4].len() == 12 && parts[4].bytes().all(|b| b.is_ascii_digit()) {
            self.account(parts[4])
        } else {
            parts[4].to_string()
        };
        let resource = parts[5];
        let cut = resource.find(['/', ':']);
        let (kind, name) = match cut {
            Some(i) => (&resource[..=i], &resource[i + 1..]),
            None => ("", resource),
        };
        let name_p = if name.is_empty() {
            String::new()
        } else {
            format!("res-{}", &self.hash_hex(b"arn", name.as_bytes())[..10])
        };
        let p = format!(
            "arn:{}:{}:{}:{account}:{kind}{name_p}",
            parts[1], parts[2], parts[3]
        );
        self.stats.arn += 1;
        self.map.arn_map.insert(arn.to_string(), p.clone());
        p
    }

    // ---- rewriting ---------------------------------------------------------------------

    /// Rewrite one text file.
    pub fn redact_text(&mut self, text: &str) -> String {
        let worded = self.replace_words(text);
        let src: &str = worded.as_deref().unwrap_or(text);
        scan(src, &mut |tok| self.replace(tok)).unwrap_or_else(|| src.to_string())
    }

    /// Rewrite a JSON document in place: every string value (text rules and words) and every
    /// object key (identifiers only, so no key that names a field can be rewritten).
    pub fn redact_json(&mut self, v: &mut Value) {
        match v {
            Value::String(s) => {
                let r = self.redact_text(s);
                if r != *s {
                    *s = r;
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.redact_json(x)),
            Value::Object(o) => {
                let old = std::mem::take(o);
                for (k, mut val) in old {
                    self.redact_json(&mut val);
                    let k2 = scan(&k, &mut |tok| self.replace(tok)).unwrap_or(k);
                    o.insert(k2, val);
                }
            }
            _ => {}
        }
    }

    fn replace(&mut self, tok: Tok<'_>) -> Option<String> {
        match tok {
            Tok::V4(a, len) => {
                let orig = Ipv4Addr::from(a);
                match len {
                    Some(l) => {
                        let net = ipnet::Ipv4Net::new(orig, l).ok()?;
                        if net.network() == orig && l < 32 {
                            Some(self.map_net(ipnet::IpNet::V4(net)).to_string())
                        } else {
                            let m = self.ipv4(orig);
                            let mut t = v4_string(m);
                            t.push('/');
                            push_u8(&mut t, l);
                            Some(t)
                        }
                    }
                    None => {
                        let m = self.ipv4(orig);
                        (m != orig).then(|| v4_string(m))
                    }
                }
            }
            Tok::V6(a, len) => match len {
                Some(l) => {
                    let net = ipnet::Ipv6Net::new(a, l).ok()?;
                    if net.network() == a && l < 128 {
                        Some(self.map_net(ipnet::IpNet::V6(net)).to_string())
                    } else {
                        Some(format!("{}/{l}", self.ipv6(a)))
                    }
                }
                None => {
                    let m = self.ipv6(a);
                    (m != a).then(|| m.to_string())
                }
            },
            Tok::Dashed(a) => {
                let m = self.ipv4(Ipv4Addr::from(a)).octets();
                Some(format!("ip-{}-{}-{}-{}", m[0], m[1], m[2], m[3]))
            }
            Tok::Mac(m) => Some(self.mac(m)),
            Tok::Id(p, h) => Some(self.id(p, h)),
            Tok::Arn(a) => Some(self.arn(a)),
            Tok::Digits12(d, ecr) => {
                if ecr || self.accounts.contains(d) {
                    Some(self.account(d))
                } else {
                    None
                }
            }
        }
    }

    /// Host names and keywords, whole words, case-insensitive. `None`: nothing to replace.
    fn replace_words(&mut self, text: &str) -> Option<String> {
        if self.words.is_empty() {
            return None;
        }
        let lower = text.to_ascii_lowercase();
        let lb = lower.as_bytes();
        let mut hits: Vec<(usize, usize, usize)> = Vec::new();
        for (wi, (w, _)) in self.words.iter().enumerate() {
            let mut from = 0;
            while let Some(p) = lower[from..].find(w.as_str()) {
                let s = from + p;
                let e = s + w.len();
                from = s + 1;
                let before = s == 0 || !is_host_char(lb[s - 1]);
                let after = e >= lb.len() || !is_host_char(lb[e]);
                if before && after && !hits.iter().any(|&(hs, he, _)| s < he && hs < e) {
                    hits.push((s, e, wi));
                }
            }
        }
        if hits.is_empty() {
            return None;
        }
        hits.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (s, e, wi) in hits {
            out.push_str(&text[last..s]);
            out.push_str(&self.words[wi].1);
            last = e;
            if self.map.keyword_map.contains_key(&self.words[wi].0) {
                self.stats.keyword += 1;
            } else {
                self.stats.hostname += 1;
            }
        }
        out.push_str(&text[last..]);
        Some(out)
    }
}

impl Default for Redactor {
    fn default() -> Self {
        Self::new()
    }
}

fn shr(a: u128, by: u32) -> u128 {
    a.checked_shr(by).unwrap_or(0)
}

/// Is the flip for the first `k` bits (`prefix`) forced to 0: the prefix is a proper prefix of
/// a pinned range (the range maps onto itself), or lies inside a kept range.
fn pinned(pins: &[Pin], prefix: u128, k: u32, width: u32) -> bool {
    pins.iter().any(|p| {
        if k < p.len {
            shr(p.net, width - k) == prefix
        } else {
            p.kept && shr(prefix, k - p.len) == shr(p.net, width - p.len)
        }
    })
}

fn is_host_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// `ip-10-1-2-3…`: the name is the address, which the address map handles.
fn dashed_host(n: &str) -> bool {
    n.strip_prefix("ip-")
        .and_then(|r| parse_dashed(r.as_bytes(), 0))
        .is_some()
}

#[derive(Default)]
struct Learned {
    // Hash sets: the cold path inserts one per address it meets (100k rules: ~200k).
    v4: HashSet<u32>,
    v6: HashSet<u128>,
    // Networks written as networks (`192.168.32.0/19`): their pseudonym is the truncated image
    // of the network address, which can equal an original even when the address's image does
    // not.
    nets4: HashSet<(u32, u8)>,
    nets6: HashSet<(u128, u8)>,
    accounts: BTreeSet<String>,
}

impl Learned {
    fn add_net(&mut self, n: ipnet::IpNet) {
        match n {
            ipnet::IpNet::V4(v) => {
                self.v4.insert(u32::from(v.addr()));
                self.v4.insert(u32::from(v.network()));
                if v.prefix_len() < 32 {
                    self.nets4.insert((u32::from(v.network()), v.prefix_len()));
                }
            }
            ipnet::IpNet::V6(v) => {
                self.v6.insert(u128::from(v.addr()));
                self.v6.insert(u128::from(v.network()));
                if v.prefix_len() < 128 {
                    self.nets6.insert((u128::from(v.network()), v.prefix_len()));
                }
            }
        }
    }

    fn add_v4_token(&mut self, a: u32, len: Option<u8>) {
        self.v4.insert(a);
        if let Some(l) = len.filter(|l| *l < 32) {
            if let Ok(n) = ipnet::Ipv4Net::new(Ipv4Addr::from(a), l) {
                if u32::from(n.network()) == a {
                    self.nets4.insert((a, l));
                }
            }
        }
    }

    fn add_v6_token(&mut self, a: u128, len: Option<u8>) {
        self.v6.insert(a);
        if let Some(l) = len.filter(|l| *l < 128) {
            if let Ok(n) = ipnet::Ipv6Net::new(Ipv6Addr::from(a), l) {
                if u128::from(n.network()) == a {
                    self.nets6.insert((a, l));
                }
            }
        }
    }
}

/// Does the permutation necessarily map the first `len` bits of `a` onto themselves (a kept
/// range, or a class network such as `10.0.0.0/8`)? Such a fixed point is meant; any other is
/// an accident that would leave an original in the archive.
fn forced_fixed(pins: &[Pin], a: u128, len: u32, width: u32) -> bool {
    (0..len).all(|k| pinned(pins, shr(a, width - k), k, width))
}

/// The first `len` bits of `a` (a `width`-bit address), the rest zero.
fn trunc_bits(a: u128, len: u32, width: u32) -> u128 {
    if len == 0 {
        return 0;
    }
    let mask = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    let keep = mask ^ (mask >> len);
    a & keep
}

fn learn_text(t: &str, seen: &mut Learned) {
    let _ = scan(t, &mut |tok| {
        match tok {
            Tok::V4(a, len) => seen.add_v4_token(a, len),
            Tok::Dashed(a) => {
                seen.v4.insert(a);
            }
            Tok::V6(a, len) => match a.to_ipv4_mapped() {
                Some(v4) => {
                    seen.v4.insert(u32::from(v4));
                }
                None => seen.add_v6_token(u128::from(a), len),
            },
            Tok::Arn(a) => {
                if let Some(acct) = a.split(':').nth(4) {
                    if acct.len() == 12 && acct.bytes().all(|b| b.is_ascii_digit()) {
                        seen.accounts.insert(acct.to_string());
                    }
                }
            }
            Tok::Digits12(d, true) => {
                seen.accounts.insert(d.to_string());
            }
            _ => {}
        }
        None
    });
}

fn learn_json(v: &Value, seen: &mut Learned) {
    match v {
        Value::String(s) => learn_text(s, seen),
        Value::Array(a) => a.iter().for_each(|x| learn_json(x, seen)),
        Value::Object(o) => o.iter().for_each(|(k, x)| {
            learn_text(k, seen);
            learn_json(x, seen)
        }),
        _ => {}
    }
}

// ---- the scanner -------------------------------------------------------------------------

/// Walk `text`, offering every identifier to `f`; `Some(replacement)` rewrites it. Returns the
/// new text, or `None` when nothing was rewritten (no copy). `_` separates like any
/// punctuation (`eks_i-0abc_2026…`).
fn scan(text: &str, f: &mut dyn FnMut(Tok<'_>) -> Option<String>) -> Option<String> {
    let b = text.as_bytes();
    let n = b.len();
    let mut out: Option<String> = None;
    let mut last = 0usize;
    let mut i = 0usize;
    while i < n {
        let c = b[i];
        if !(c.is_ascii_alphanumeric() || c == b':') {
            i += 1;
            continue;
        }
        let prev = if i == 0 { b' ' } else { b[i - 1] };
        // `\n10.0.0.1` inside a JSON log line: the escape is a boundary.
        let escaped = i >= 2 && b[i - 2] == b'\\' && matches!(prev, b'n' | b't' | b'r');
        if prev.is_ascii_alphanumeric() && !escaped {
            i += 1;
            continue;
        }
        let found = match_at(text, b, i, prev, escaped);
        match found {
            Some((tok, end)) => {
                if let Some(rep) = f(tok) {
                    let o = out.get_or_insert_with(|| String::with_capacity(n + n / 8));
                    o.push_str(&text[last..i]);
                    o.push_str(&rep);
                    last = end;
                }
                i = end;
            }
            None => {
                // Skip the rest of this word: nothing inside it starts an identifier.
                i += 1;
                while i < n && b[i].is_ascii_alphanumeric() {
                    i += 1;
                }
            }
        }
    }
    out.map(|mut o| {
        o.push_str(&text[last..]);
        o
    })
}

fn match_at<'a>(
    text: &'a str,
    b: &[u8],
    i: usize,
    prev: u8,
    escaped: bool,
) -> Option<(Tok<'a>, usize)> {
    let c = b[i];
    let after_sep = escaped || !(prev == b'.' || prev == b':');
    let word_start = after_sep && prev != b'-';
    if c.is_ascii_hexdigit() || c == b':' {
        if after_sep {
            if let Some(end) = parse_mac(b, i) {
                return Some((Tok::Mac(&text[i..end]), end));
            }
            if let Some((a, len, end)) = parse_v6(text, b, i) {
                return Some((Tok::V6(a, len), end));
            }
        }
        if c.is_ascii_digit() && prev != b'.' {
            if let Some((a, end)) = parse_v4(b, i) {
                let (len, end) = parse_len(b, end, 32);
                return Some((Tok::V4(a, len), end));
            }
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j - i == 12 && (j >= b.len() || !b[j].is_ascii_alphanumeric()) {
                let ecr = text[j..].starts_with(".dkr.ecr");
                return Some((Tok::Digits12(&text[i..j], ecr), j));
            }
            return None;
        }
    }
    if !word_start || !c.is_ascii_lowercase() {
        return None;
    }
    let rest = &text[i..];
    // Every word identifier starts with a run of lowercase letters ended by `:` (`arn:`) or
    // `-` (`ip-`, `eni-`, `subnet-`…): find the run once instead of comparing each prefix
    // (the cold redaction spent a sixth of its time in those memcmp calls).
    let rb = rest.as_bytes();
    let run = rb
        .iter()
        .take(MAX_PREFIX + 1)
        .take_while(|x| x.is_ascii_lowercase())
        .count();
    match rb.get(run) {
        Some(b':') if run == 3 && &rb[..3] == b"arn" => {}
        Some(b'-') => {}
        _ => return None,
    }
    if rb[run] == b':' {
        let end = i + rest
            .find(|ch: char| {
                ch.is_whitespace()
                    || matches!(
                        ch,
                        '"' | '\'' | ',' | ';' | ')' | ']' | '}' | '<' | '>' | '`'
                    )
            })
            .unwrap_or(rest.len());
        let end = if b[end - 1] == b'.' { end - 1 } else { end };
        let arn = &text[i..end];
        if arn.split(':').count() >= 6 {
            return Some((Tok::Arn(arn), end));
        }
        return None;
    }
    let word = &rest[..run];
    if word == "ip" {
        if let Some((a, len)) = parse_dashed(&rb[3..], 0) {
            return Some((Tok::Dashed(a), i + 3 + len));
        }
    }
    let id = |p: &'static str| -> Option<(Tok<'a>, usize)> {
        let r = rest.strip_prefix(p)?.strip_prefix('-')?;
        let hexlen = r
            .bytes()
            .take_while(|x| x.is_ascii_digit() || (b'a'..=b'f').contains(x))
            .count();
        let next = r.as_bytes().get(hexlen).copied().unwrap_or(b' ');
        if (8..=17).contains(&hexlen) && !next.is_ascii_alphanumeric() {
            let s = i + p.len() + 1;
            return Some((Tok::Id(p, &text[s..s + hexlen]), s + hexlen));
        }
        None
    };
    // `eni-attach-…` is the one prefix with a dash inside.
    if word == "eni" && rest.starts_with("eni-attach-") {
        if let Some(t) = id("eni-attach") {
            return Some(t);
        }
    }
    ID_PREFIXES.iter().find(|p| **p == word).and_then(|p| id(p))
}

/// `a.b.c.d` without `fmt` (the rewrite formats one per address it meets).
fn v4_string(a: Ipv4Addr) -> String {
    let mut t = String::with_capacity(15);
    for (k, o) in a.octets().into_iter().enumerate() {
        if k > 0 {
            t.push('.');
        }
        push_u8(&mut t, o);
    }
    t
}

fn push_u8(t: &mut String, o: u8) {
    if o >= 100 {
        t.push(char::from(b'0' + o / 100));
    }
    if o >= 10 {
        t.push(char::from(b'0' + (o / 10) % 10));
    }
    t.push(char::from(b'0' + o % 10));
}

/// Longest run of letters before the dash of an id prefix (`eipalloc`).
const MAX_PREFIX: usize = 8;

fn hex_at(b: &[u8], i: usize) -> bool {
    b.get(i).is_some_and(|c| c.is_ascii_hexdigit())
}

fn parse_mac(b: &[u8], i: usize) -> Option<usize> {
    for g in 0..6 {
        let s = i + g * 3;
        if !hex_at(b, s) || !hex_at(b, s + 1) {
            return None;
        }
        if g < 5 && b.get(s + 2) != Some(&b':') {
            return None;
        }
    }
    let end = i + 17;
    match b.get(end) {
        Some(c) if c.is_ascii_alphanumeric() || *c == b':' => None,
        _ => Some(end),
    }
}

fn parse_v6(text: &str, b: &[u8], i: usize) -> Option<(Ipv6Addr, Option<u8>, usize)> {
    let mut j = i;
    let mut colons = 0;
    while j < b.len() && j - i < 46 && (b[j].is_ascii_hexdigit() || b[j] == b':' || b[j] == b'.') {
        if b[j] == b':' {
            colons += 1;
        }
        j += 1;
    }
    if colons < 2 {
        return None;
    }
    if j < b.len() && b[j].is_ascii_alphanumeric() {
        return None;
    }
    let mut end = j;
    // A sentence's full stop, or a `addr:` label colon.
    while end > i && b[end - 1] == b'.' {
        end -= 1;
    }
    if end >= i + 2 && b[end - 1] == b':' && b[end - 2] != b':' {
        end -= 1;
    }
    let a: Ipv6Addr = text[i..end].parse().ok()?;
    let (len, end) = parse_len(b, end, 128);
    Some((a, len, end))
}

/// Four decimal octets separated by `sep` at `i`, no octet longer than three digits: the
/// address and where it ends. Shared by the dotted and the dashed (`ip-10-1-2-3`) forms.
fn parse_octets(b: &[u8], i: usize, sep: u8) -> Option<(u32, usize)> {
    let mut j = i;
    let mut a: u32 = 0;
    for o in 0..4 {
        let s = j;
        let mut v: u32 = 0;
        while j < b.len() && b[j].is_ascii_digit() && j - s < 3 {
            v = v * 10 + u32::from(b[j] - b'0');
            j += 1;
        }
        if j == s || v > 255 || (j < b.len() && b[j].is_ascii_digit()) {
            return None;
        }
        a = (a << 8) | v;
        if o < 3 {
            if b.get(j) != Some(&sep) {
                return None;
            }
            j += 1;
        }
    }
    Some((a, j))
}

/// `a.b.c.d` at `i`; the end must not continue a longer dotted number (`1.2.3.4.5`).
fn parse_v4(b: &[u8], i: usize) -> Option<(u32, usize)> {
    let (a, j) = parse_octets(b, i, b'.')?;
    match b.get(j) {
        Some(c) if c.is_ascii_alphabetic() => None,
        Some(b'.') if b.get(j + 1).is_some_and(|c| c.is_ascii_digit()) => None,
        _ => Some((a, j)),
    }
}

/// `/len` after an address, when it is one.
fn parse_len(b: &[u8], end: usize, max: u8) -> (Option<u8>, usize) {
    if b.get(end) != Some(&b'/') {
        return (None, end);
    }
    let mut j = end + 1;
    let mut v: u32 = 0;
    while j < b.len() && b[j].is_ascii_digit() && j - end <= 3 {
        v = v * 10 + u32::from(b[j] - b'0');
        j += 1;
    }
    if j == end + 1
        || v > u32::from(max)
        || b.get(j)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'.')
    {
        return (None, end);
    }
    (u8::try_from(v).ok(), j)
}

/// `10-1-2-3` (the tail of `ip-10-1-2-3`) at `i`; returns the address and the length used.
fn parse_dashed(b: &[u8], i: usize) -> Option<(u32, usize)> {
    let (a, j) = parse_octets(b, i, b'-')?;
    if b.get(j).is_some_and(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((a, j - i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_ipv4_formatter_agrees_with_display() {
        for a in (0..u32::MAX)
            .step_by(65_521)
            .chain([0, 10, 99, 100, 255, u32::MAX])
        {
            let ip = Ipv4Addr::from(a);
            assert_eq!(v4_string(ip), ip.to_string());
        }
    }
}
