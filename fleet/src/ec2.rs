//! EC2 discovery: running instances of an EKS cluster (by tag), extra filters, instance ids.

#[cfg(feature = "aws")]
use std::collections::BTreeMap;

#[cfg(feature = "aws")]
use aws_sdk_ec2::types::Filter;

use crate::targets::TargetError;
#[cfg(feature = "aws")]
use crate::targets::Target;

/// What to ask DescribeInstances for.
#[derive(Debug, Clone, Default)]
pub struct Ec2Query {
    pub cluster: Option<String>,
    /// `(name, values)` filters, ANDed.
    pub filters: Vec<(String, Vec<String>)>,
    pub instance_ids: Vec<String>,
    /// MaxResults per page (the paginator follows NextToken); None = service default.
    pub page_size: Option<i32>,
}

#[derive(Debug, thiserror::Error)]
pub enum Ec2Error {
    #[error("EC2 DescribeInstances ({what}): {message}")]
    Describe { what: String, message: String },
}

/// Parses `--ec2-filter KEY=V1,V2` values.
pub fn parse_filters(specs: &[String]) -> Result<Vec<(String, Vec<String>)>, TargetError> {
    specs
        .iter()
        .map(|s| {
            let (k, v) = s.split_once('=').ok_or_else(|| TargetError::BadSpec {
                spec: s.clone(),
                message: "expected --ec2-filter KEY=VALUE[,VALUE...]".to_string(),
            })?;
            if k.is_empty() || v.is_empty() {
                return Err(TargetError::BadSpec {
                    spec: s.clone(),
                    message: "empty filter name or value".to_string(),
                });
            }
            Ok((k.to_string(), v.split(',').map(str::to_string).collect()))
        })
        .collect()
}

#[cfg(feature = "aws")]
/// The standard AWS config chain (env, profile, SSO, IMDS), with optional region/profile.
/// `AWS_ENDPOINT_URL` is honoured by the SDK (used with moto in tests).
pub async fn aws_config(region: Option<String>, profile: Option<String>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r));
    }
    if let Some(p) = profile {
        loader = loader.profile_name(p);
    }
    loader.load().await
}

#[cfg(feature = "aws")]
fn filter(name: &str, values: &[String]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.to_vec()))
        .build()
}

#[cfg(feature = "aws")]
/// The filter sets to query: one per cluster tag convention (EC2 ANDs filters, so the two
/// conventions need two queries), each with `instance-state-name=running` and the extras.
pub fn filter_sets(q: &Ec2Query) -> Vec<Vec<Filter>> {
    let mut base = vec![filter("instance-state-name", &["running".to_string()])];
    for (k, v) in &q.filters {
        base.push(filter(k, v));
    }
    match &q.cluster {
        None => vec![base],
        Some(c) => {
            let mut a = base.clone();
            a.push(filter("tag:eks:cluster-name", std::slice::from_ref(c)));
            let mut b = base;
            b.push(filter("tag-key", &[format!("kubernetes.io/cluster/{c}")]));
            vec![a, b]
        }
    }
}

#[cfg(feature = "aws")]
/// Lists the matching running instances as targets (private IP as host, private DNS name as
/// display name), de-duplicated by instance id, sorted by name.
pub async fn discover(client: &aws_sdk_ec2::Client, q: &Ec2Query) -> Result<Vec<Target>, Ec2Error> {
    let mut found: BTreeMap<String, Target> = BTreeMap::new();
    for filters in filter_sets(q) {
        let mut req = client.describe_instances().set_filters(Some(filters));
        if q.instance_ids.is_empty() {
            if let Some(n) = q.page_size {
                req = req.max_results(n);
            }
        } else {
            req = req.set_instance_ids(Some(q.instance_ids.clone()));
        }
        let mut pages = req.into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| Ec2Error::Describe {
                what: q
                    .cluster
                    .as_ref()
                    .map(|c| format!("cluster {c}"))
                    .unwrap_or_else(|| "filters".to_string()),
                message: format!("{}", aws_sdk_ec2::error::DisplayErrorContext(&e)),
            })?;
            for r in page.reservations() {
                for i in r.instances() {
                    let Some(id) = i.instance_id() else { continue };
                    let ip = i.private_ip_address().unwrap_or_default().to_string();
                    let name = i
                        .private_dns_name()
                        .filter(|s| !s.is_empty())
                        .unwrap_or(id)
                        .to_string();
                    found.entry(id.to_string()).or_insert(Target {
                        name,
                        host: if ip.is_empty() { id.to_string() } else { ip },
                        port: 22,
                        instance_id: Some(id.to_string()),
                        ..Default::default()
                    });
                }
            }
        }
    }
    let mut v: Vec<Target> = found.into_values().collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(v)
}

#[cfg(all(test, feature = "aws"))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn filters() {
        let f = parse_filters(&[
            "tag:role=worker,infra".into(),
            "instance-type=m5.large".into(),
        ])
        .unwrap();
        assert_eq!(f[0].1, vec!["worker", "infra"]);
        assert!(parse_filters(&["novalue".into()]).is_err());
        assert!(parse_filters(&["=x".into()]).is_err());
        let q = Ec2Query {
            cluster: Some("demo".into()),
            filters: f,
            ..Default::default()
        };
        let sets = filter_sets(&q);
        assert_eq!(sets.len(), 2);
        assert_eq!(sets[0].len(), 4);
        assert_eq!(sets[1].last().unwrap().name(), Some("tag-key"));
        assert_eq!(
            sets[1].last().unwrap().values(),
            &["kubernetes.io/cluster/demo".to_string()]
        );
    }
}
