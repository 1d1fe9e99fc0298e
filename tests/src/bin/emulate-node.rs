//! `emulate-node`: create or remove a long-lived emulated EKS node (for the demo and benches).
//!
//! `emulate-node up --name demo` builds the namespaces `ekd-emu-demo-{node,vpc,inet,peer,pod<i>}`,
//! starts the IMDS/ipamd doubles in the node, generates some traffic and leaves it all
//! running; `emulate-node down --name demo` removes it from any process.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use e2e::node::{self, Backend, EksNode, Layout, Random};

#[derive(Parser)]
#[command(about = "Create or remove an emulated EKS worker node in network namespaces")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum LayoutArg {
    Current,
    Chained,
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    Nft,
    Legacy,
}

#[derive(Clone, Copy, ValueEnum)]
enum RandomArg {
    Fully,
    Hash,
    None,
}

#[derive(Clone, Copy, ValueEnum)]
enum FaultArg {
    DeleteSnatRule,
    DeletePostroutingJump,
    SnatToSource,
    DuplicatePostroutingJump,
    StaleSnatChain1,
    CopyToOtherBackend,
    MoveToOtherBackend,
    DeleteConnmarkRules,
    DeleteFwmarkRule,
    DeleteEniDefaultRoute,
    AddEniSubnetRouteToMain,
    RpFilterStrict,
    IpForwardOff,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build a node and leave it running.
    Up {
        /// Letters, digits and dashes; namespaces are `ekd-emu-<name>-…`.
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value = "current")]
        layout: LayoutArg,
        #[arg(long, value_enum, default_value = "nft")]
        backend: BackendArg,
        #[arg(long, value_enum, default_value = "fully")]
        random: RandomArg,
        /// Pods in total; one of them sits on the secondary ENI when N ≥ 2.
        #[arg(long, default_value_t = 3)]
        pods: usize,
        #[arg(long, default_value = "eth0")]
        primary_if: String,
        /// Comma-separated VPC CIDRs; the first holds the subnets.
        #[arg(long, default_value = "192.168.0.0/16,100.64.0.0/16")]
        vpc_cidrs: String,
        /// Comma-separated AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS.
        #[arg(long, default_value = "")]
        exclude_snat: String,
        /// Skip the pings and TCP connects that fill conntrack.
        #[arg(long)]
        no_traffic: bool,
        /// The doubles and listeners exit after this many seconds.
        #[arg(long, default_value_t = 4 * 3600)]
        ttl_secs: u64,
        /// Prefix delegation: /28 prefixes on the ENIs, pods drawn from them.
        #[arg(long)]
        prefix_delegation: bool,
        /// Custom networking with the pods' ENI in this secondary VPC CIDR (e.g. 100.64.0.0/16).
        #[arg(long)]
        custom_networking: Option<String>,
        /// Security groups for pods (strict): this many branch-ENI pods on a trunk ENI.
        #[arg(long, default_value_t = 0)]
        branch_pods: usize,
        /// IPv6 mode: pods get IPv6 addresses from the primary ENI's /80 prefix.
        #[arg(long)]
        ipv6: bool,
    },
    /// Remove a node created by `up`.
    Down {
        #[arg(long)]
        name: String,
    },
    /// Inject a fault into a running node (really changes its kernel state).
    Fault {
        #[arg(long)]
        name: String,
        #[arg(value_enum)]
        kind: FaultArg,
        /// Address for `snat-to-source`.
        #[arg(long, default_value = "192.168.9.9")]
        addr: std::net::Ipv4Addr,
    },
    /// Print a human summary of a `node-agent collect` snapshot (`-` for stdin).
    Summary { snapshot: String },
}

fn split(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Up {
            name,
            layout,
            backend,
            random,
            pods,
            primary_if,
            vpc_cidrs,
            exclude_snat,
            no_traffic,
            ttl_secs,
            prefix_delegation,
            custom_networking,
            branch_pods,
            ipv6,
        } => {
            if name.is_empty()
                || name.len() > 40
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                bail!("--name must be 1-40 letters, digits or dashes");
            }
            if !node::teardown_named(&name).is_empty() {
                eprintln!("removed an older node named {name}");
            }
            let secondary = usize::from(pods >= 2);
            let mut b = EksNode::builder()
                .name(&name)
                .prefix_delegation(prefix_delegation)
                .security_groups_for_pods(branch_pods)
                .ipv6(ipv6);
            if let Some(c) = &custom_networking {
                b = b.custom_networking(c);
            }
            let mut n = b
                .layout(match layout {
                    LayoutArg::Current => Layout::Current,
                    LayoutArg::Chained => Layout::Chained,
                })
                .backend(match backend {
                    BackendArg::Nft => Backend::Nft,
                    BackendArg::Legacy => Backend::Legacy,
                })
                .randomize(match random {
                    RandomArg::Fully => Random::Fully,
                    RandomArg::Hash => Random::Hash,
                    RandomArg::None => Random::None,
                })
                .primary_if(&primary_if)
                .vpc_cidrs(split(&vpc_cidrs))
                .exclude_snat(split(&exclude_snat))
                .pods_on_primary(pods - secondary)
                .pods_on_secondary(secondary)
                .doubles_ttl(Duration::from_secs(ttl_secs))
                .build()
                .context("building the emulated node")?;
            if !no_traffic {
                n.generate_traffic().context("generating traffic")?;
            }
            let cfg = n.persist();
            println!("node namespace: {}", cfg.namespaces.node);
            println!("primary IP:     {} on {}", cfg.primary_ip, cfg.primary_if);
            println!("pods:           {}", cfg.pods.len());
            println!(
                "config:         {}",
                cfg.workdir.join("node.json").display()
            );
            println!("run the agent in it:");
            println!(
                "  ip netns exec {} node-agent collect --pretty {}",
                cfg.namespaces.node,
                cfg.agent_args().join(" ")
            );
            println!("remove it:\n  emulate-node down --name {name}");
            Ok(())
        }
        Cmd::Fault { name, kind, addr } => {
            let n = node::attach_named(&name)?;
            match kind {
                FaultArg::DeleteSnatRule => n.fault_delete_snat_rule(),
                FaultArg::DeletePostroutingJump => n.fault_delete_postrouting_jump(),
                FaultArg::SnatToSource => n.fault_snat_to_source(addr),
                FaultArg::DuplicatePostroutingJump => n.fault_duplicate_postrouting_jump(),
                FaultArg::StaleSnatChain1 => n.fault_stale_snat_chain_1(),
                FaultArg::CopyToOtherBackend => n.fault_copy_rules_to_other_backend(),
                FaultArg::MoveToOtherBackend => n.fault_move_rules_to_other_backend(),
                FaultArg::DeleteConnmarkRules => n.fault_delete_nat_connmark_rules(),
                FaultArg::DeleteFwmarkRule => n.fault_delete_fwmark_rule(),
                FaultArg::DeleteEniDefaultRoute => n.fault_delete_eni_default_route(1),
                FaultArg::AddEniSubnetRouteToMain => n.fault_add_eni_subnet_route_to_main(1),
                FaultArg::RpFilterStrict => n.fault_rp_filter(1),
                FaultArg::IpForwardOff => n.fault_ip_forward_off(),
            }
            .context("injecting the fault")
        }
        Cmd::Summary { snapshot } => {
            let text = if snapshot == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading stdin")?
            } else {
                std::fs::read_to_string(&snapshot).with_context(|| format!("reading {snapshot}"))?
            };
            let snap = model::Snapshot::from_json(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
            print!("{}", e2e::agent::summary(&snap));
            Ok(())
        }
        Cmd::Down { name } => {
            let removed = node::teardown_named(&name);
            if removed.is_empty() {
                eprintln!("no emulated node named {name}");
            } else {
                println!("removed {} namespaces of {name}", removed.len());
            }
            Ok(())
        }
    }
}
