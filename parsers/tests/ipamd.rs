#![allow(clippy::unwrap_used, clippy::expect_used)]
//! ipamd introspection and env parsers (fixtures/ipamd, see PROVENANCE.md).

use std::net::IpAddr;

use model::cni::IpamdEnis;
use parsers::ipamd::{parse_enis, parse_env_file, parse_env_settings};
use proptest::prelude::*;

fn fixture(name: &str) -> String {
    let p = format!("{}/fixtures/ipamd/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn v1_21_map_groundtruth_sample() {
    let e = parse_enis(&fixture("enis-v1.21-map.json")).unwrap();
    assert_eq!(e.network_cards.len(), 1);
    let c = &e.network_cards[0];
    assert_eq!((c.index, c.total_ips, c.assigned_ips), (0, 9, 1));
    assert_eq!(c.enis.len(), 2);
    let p = &c.enis[0];
    assert_eq!(p.id, "eni-0aaa");
    assert!(p.is_primary && !p.is_trunk && !p.is_efa);
    assert_eq!(p.route_table_id, Some(254));
    assert_eq!(p.cidrs.len(), 2);
    assert_eq!(p.cidrs[0].cidr.to_string(), "192.168.5.10/32");
    assert!(!p.cidrs[0].is_prefix);
    let a = &p.cidrs[0].addresses[0];
    assert_eq!(a.address, ip("192.168.5.10"));
    assert!(a.assigned);
    assert_eq!(a.pod_namespace.as_deref(), Some("default"));
    assert_eq!(a.pod_name.as_deref(), Some("web-5d8f7c9b6-x2k4p"));
    assert_eq!(a.container_id.as_deref(), Some("3f2c…"));
    assert!(p.cidrs[1].addresses.is_empty(), "never-used IPs are absent");
    let s = &c.enis[1];
    assert_eq!((s.device_number, s.route_table_id), (1, Some(2)));
    assert_eq!(s.cidrs[0].cidr.to_string(), "192.168.16.32/28");
    assert!(s.cidrs[0].is_prefix);
    let assigned: Vec<_> = e
        .assigned()
        .map(|(eni, a)| (eni.id.as_str(), a.address))
        .collect();
    assert_eq!(assigned, vec![("eni-0aaa", ip("192.168.5.10"))]);
}

#[test]
fn v1_21_multicard_prefix_trunk_efa() {
    let e = parse_enis(&fixture("enis-v1.21-multicard.json")).unwrap();
    let idx: Vec<u32> = e.network_cards.iter().map(|c| c.index).collect();
    assert_eq!(idx, vec![0, 1]);
    let c0 = &e.network_cards[0];
    assert!(c0.enis[0].is_trunk);
    let pd = &c0.enis[0].cidrs[0];
    assert_eq!(pd.cidr.to_string(), "10.1.1.16/28");
    assert!(pd.is_prefix);
    let addrs: Vec<(IpAddr, bool)> = pd
        .addresses
        .iter()
        .map(|a| (a.address, a.assigned))
        .collect();
    assert_eq!(
        addrs,
        vec![
            (ip("10.1.1.17"), true),
            (ip("10.1.1.18"), true),
            (ip("10.1.1.30"), false)
        ]
    );
    assert_eq!(pd.addresses[1].pod_name, None);
    assert_eq!(pd.addresses[2].container_id, None);
    let c1 = &e.network_cards[1];
    assert!(c1.enis[0].is_efa);
    assert_eq!(c1.enis[0].route_table_id, Some(10100));
    assert_eq!(e.assigned().count(), 3);
}

#[test]
fn v1_19_single_object() {
    let e = parse_enis(&fixture("enis-v1.19-single.json")).unwrap();
    assert_eq!(e.network_cards.len(), 1);
    let c = &e.network_cards[0];
    assert_eq!((c.index, c.total_ips, c.assigned_ips), (0, 4, 2));
    let eni = &c.enis[0];
    assert_eq!(eni.route_table_id, None);
    // Sorted numerically, not as strings (10.2.0.9 before 10.2.0.11).
    let cidrs: Vec<String> = eni.cidrs.iter().map(|c| c.cidr.to_string()).collect();
    assert_eq!(
        cidrs,
        vec![
            "10.2.0.9/32",
            "10.2.0.11/32",
            "10.2.0.12/32",
            "10.2.0.13/32"
        ]
    );
    let assigned: Vec<IpAddr> = e.assigned().map(|(_, a)| a.address).collect();
    assert_eq!(assigned, vec![ip("10.2.0.9"), ip("10.2.0.11")]);
    assert!(
        !eni.cidrs[2].addresses[0].assigned,
        "zero IPAMKey = cooldown, not assigned"
    );
}

#[test]
fn obsolete_troubleshooting_paste() {
    let e = parse_enis(&fixture("enis-troubleshooting-paste.txt")).unwrap();
    let c = &e.network_cards[0];
    assert_eq!((c.total_ips, c.assigned_ips), (56, 46));
    assert_eq!(c.enis[0].id, "eni-0334a44d21188bd24");
    assert!(c.enis[0].is_primary);
    assert_eq!(c.enis[1].id, "eni-0248f7351c1dab6b4");
    assert_eq!(c.enis[1].device_number, 2);
    assert_eq!(c.enis[1].cidrs.len(), 3);
    assert_eq!(e.assigned().count(), 3);
}

#[test]
fn enis_errors_have_context() {
    assert!(parse_enis("").unwrap_err().contains("no JSON"));
    let err = parse_enis("{\"0\": {\"ENIs\": {\"eni-1\": ").unwrap_err();
    assert!(err.contains("line 1"), "{err}");
    let err = parse_enis(r#"{"AvailableCommands":["/v1/enis","/v1/eni-configs"]}"#).unwrap_err();
    assert!(err.contains("AvailableCommands"));
    let err = parse_enis(r#"{"foo":1}"#).unwrap_err();
    assert!(err.contains("foo"));
    let err = parse_enis(r#"{"ENIs":{"eni-9":{"AvailableIPv4Cidrs":{"nope":{}}}}}"#).unwrap_err();
    assert!(err.contains("eni-9") && err.contains("nope"), "{err}");
    assert_eq!(parse_enis("{}").unwrap(), IpamdEnis::default());
}

#[test]
fn env_settings_normalised() {
    let m = parse_env_settings(&fixture("env-networkutils-v1.21.2.json")).unwrap();
    assert_eq!(m.len(), 6, "two nulls omitted");
    assert_eq!(m["AWS_VPC_K8S_CNI_RANDOMIZESNAT"], "2");
    assert_eq!(m["AWS_VPC_K8S_CNI_CONNMARK"], "128");
    assert_eq!(m["AWS_VPC_K8S_CNI_EXTERNALSNAT"], "false");
    assert_eq!(m["AWS_VPC_CNI_NODE_PORT_SUPPORT"], "true");
    assert_eq!(m["AWS_VPC_K8S_CNI_VETHPREFIX"], "eni");
    assert!(!m.contains_key("AWS_EXTERNAL_SERVICE_CIDRS"));
    let old = parse_env_settings(&fixture("env-networkutils-old-paste.txt")).unwrap();
    assert_eq!(old["AWS_VPC_K8S_CNI_CONFIGURE_RPFILTER"], "true");
    assert_eq!(old["AWS_VPC_K8S_CNI_RANDOMIZESNAT"], "1");
    let ipamd = parse_env_settings(&fixture("env-ipamd-v1.21.2.json")).unwrap();
    assert_eq!(ipamd["WARM_ENI_TARGET"], "1");
    assert_eq!(ipamd["ENABLE_SUBNET_DISCOVERY"], "true");
    let m = parse_env_settings(
        r#"{"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS":["10.0.0.0/8","192.168.0.0/16"]}"#,
    )
    .unwrap();
    assert_eq!(
        m["AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS"],
        "10.0.0.0/8,192.168.0.0/16"
    );
    assert!(parse_env_settings("[1,2]").is_err());
    assert!(parse_env_settings("nope").is_err());
}

#[test]
fn env_file_key_value() {
    let p = parse_env_file(&fixture("cni-env.txt"));
    let m = &p.value;
    assert_eq!(m["AWS_VPC_K8S_CNI_EXTERNALSNAT"], "false");
    assert_eq!(m["AWS_VPC_K8S_CNI_RANDOMIZESNAT"], "prng");
    assert_eq!(
        m["AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS"],
        "10.100.0.0/16,172.16.0.0/12"
    );
    assert_eq!(m["WARM_ENI_TARGET"], "1");
    assert_eq!(m["ENABLE_PREFIX_DELEGATION"], "");
    assert_eq!(m.len(), 6);
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(p.warnings[0].line, 8);
}

#[test]
fn env_file_kubectl_json_array() {
    let p = parse_env_file(&fixture("kubectl-env.json"));
    assert_eq!(p.value.len(), 4);
    assert_eq!(p.value["ADDITIONAL_ENI_TAGS"], "{}");
    assert_eq!(p.value["AWS_VPC_K8S_CNI_RANDOMIZESNAT"], "prng");
    assert!(!p.value.contains_key("MY_NODE_NAME"));
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(p.warnings[0].line, 15);
    assert!(p.warnings[0].message.contains("MY_NODE_NAME"));
}

#[test]
fn env_file_kubectl_describe() {
    let p = parse_env_file(&fixture("describe-ds.txt"));
    assert_eq!(p.value.len(), 8, "{:?}", p.value);
    assert_eq!(p.value["AWS_VPC_K8S_CNI_EXTERNALSNAT"], "false");
    assert_eq!(p.value["ADDITIONAL_ENI_TAGS"], "{}");
    assert_eq!(p.value["AWS_VPC_ENI_MTU"], "9001");
    let w: Vec<usize> = p.warnings.iter().map(|w| w.line).collect();
    assert_eq!(
        w,
        vec![18, 19],
        "fieldRef vars are reported, describe chatter is not"
    );
}

#[test]
fn env_file_proc_environ() {
    let environ =
        "PATH=/usr/bin\0AWS_VPC_K8S_CNI_EXTERNALSNAT=true\0EMPTY=\0WITH_EQ=a=b\0garbage\0";
    let p = parse_env_file(environ);
    assert_eq!(p.value["AWS_VPC_K8S_CNI_EXTERNALSNAT"], "true");
    assert_eq!(p.value["EMPTY"], "");
    assert_eq!(p.value["WITH_EQ"], "a=b");
    assert_eq!(p.value.len(), 4);
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(p.warnings[0].text, "garbage");
}

#[test]
fn env_file_paste_with_prompt() {
    let p = parse_env_file(
        "[root@ip-10-0-0-1 ~]# cat /proc/$(pidof aws-k8s-agent)/environ | tr '\\0' '\\n'\nAWS_VPC_K8S_CNI_EXTERNALSNAT=false\n$ env | grep WARM\nWARM_ENI_TARGET=1\nTRAILING=abc$\n",
    );
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert_eq!(p.value.len(), 3);
    assert_eq!(p.value["TRAILING"], "abc$");
    assert_eq!(p.value["WARM_ENI_TARGET"], "1");
}

#[test]
fn env_file_json_object_and_broken_json() {
    let p = parse_env_file(&fixture("env-networkutils-v1.21.2.json"));
    assert_eq!(p.value["AWS_VPC_K8S_CNI_RANDOMIZESNAT"], "2");
    let p = parse_env_file("[{\"name\": \"A\", \"value\": \"1\"}\nB=2\n");
    assert_eq!(p.value.get("B").map(String::as_str), Some("2"));
    assert!(!p.warnings.is_empty());
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,300}") {
        let _ = parse_enis(&s);
        let _ = parse_env_settings(&s);
        let _ = parse_env_file(&s);
    }

    #[test]
    fn truncated_fixtures_never_panic(cut in 0usize..3000) {
        for name in ["enis-v1.21-map.json", "enis-v1.21-multicard.json", "enis-troubleshooting-paste.txt", "kubectl-env.json", "describe-ds.txt"] {
            let f = fixture(name);
            let mut end = cut.min(f.len());
            while !f.is_char_boundary(end) { end -= 1; }
            let _ = parse_enis(&f[..end]);
            let _ = parse_env_settings(&f[..end]);
            let _ = parse_env_file(&f[..end]);
        }
    }
}
