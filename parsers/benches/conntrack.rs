//! Conntrack parsing throughput on a busy node's table: 262,144 generated entry lines in the
//! shapes of the real fixtures (`conntrack -L` and `/proc/net/nf_conntrack`, SNATed TCP with
//! counters, UDP DNS, ICMP, some IPv6). Target: ≥ 100 MB/s on one core for `parse_into`.
//!
//! Two groups: `conntrack` is wall time (criterion's default); `conntrack-oncpu` counts only
//! the time the benchmark thread was on a CPU (`/proc/thread-self/schedstat`), which is the
//! one-core figure on a shared, oversubscribed build machine.

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use model::SummaryBuilder;
use parsers::conntrack::{parse_entries, parse_into};

const LINES: usize = 262_144;

/// Deterministic table text; `proc` selects the `/proc/net/nf_conntrack` prefix and zone.
fn table(proc: bool) -> String {
    let mut s = String::with_capacity(LINES * 260);
    let mut x: u32 = 0x9e37_79b9;
    for i in 0..LINES {
        // xorshift: cheap, deterministic variety of addresses and ports.
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let pod = format!("10.0.{}.{}", (x >> 8) & 0x3f, x & 0xff);
        let sport = 32768 + (x >> 16) % 28000;
        let nsport = 1024 + (x >> 3) % 60000;
        let (l3, tail) = if proc {
            ("ipv4     2 ", " zone=0")
        } else {
            ("", "")
        };
        match i % 8 {
            0..=3 => s.push_str(&format!(
                "{l3}tcp      6 431999 ESTABLISHED src={pod} dst=52.94.{}.{} sport={sport} dport=443 packets={} bytes={} src=52.94.{}.{} dst=10.0.0.10 sport=443 dport={nsport} packets={} bytes={} [ASSURED] mark=128{tail} use=1\n",
                (x >> 4) & 0xff, (x >> 12) & 0xff, x % 97, x % 9000, (x >> 4) & 0xff, (x >> 12) & 0xff, x % 89, x % 90000
            )),
            4 => s.push_str(&format!(
                "{l3}tcp      6 117 TIME_WAIT src={pod} dst=10.0.3.7 sport={sport} dport=8080 src=10.0.3.7 dst={pod} sport=8080 dport={sport} [ASSURED] mark=0{tail} use=1\n"
            )),
            5 => s.push_str(&format!(
                "{l3}udp      17 28 src={pod} dst=172.20.0.10 sport={sport} dport=53 [UNREPLIED] src=10.0.5.5 dst={pod} sport=53 dport={sport} mark=0{tail} use=1\n"
            )),
            6 => s.push_str(&format!(
                "{l3}icmp     1 29 src={pod} dst=8.8.8.8 type=8 code=0 id={} src=8.8.8.8 dst=10.0.0.10 type=0 code=0 id={nsport} mark=128{tail} use=1\n",
                x & 0xffff
            )),
            _ => {
                let l3 = if proc { "ipv6     10 " } else { "" };
                s.push_str(&format!(
                    "{l3}tcp      6 86399 ESTABLISHED src=2600:1f14:abc:{:x}::{:x} dst=2600:1f14:abc:1::10 sport={sport} dport=443 src=2600:1f14:abc:1::10 dst=2600:1f14:abc:{:x}::{:x} sport=443 dport={sport} [ASSURED] mark=0{tail} use=1\n",
                    (x >> 8) & 0xff, x & 0xffff, (x >> 8) & 0xff, x & 0xffff
                ))
            }
        }
    }
    s
}

/// Nanoseconds this thread has run on a CPU (first field of `/proc/thread-self/schedstat`).
fn on_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

struct OnCpu;

impl Measurement for OnCpu {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        on_cpu_ns()
    }
    fn end(&self, i: u64) -> u64 {
        on_cpu_ns().saturating_sub(i)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &OnCpuFmt
    }
}

struct OnCpuFmt;

impl ValueFormatter for OnCpuFmt {
    fn scale_values(&self, _typical: f64, values: &mut [f64]) -> &'static str {
        for v in values {
            *v /= 1e6;
        }
        "ms (on CPU)"
    }
    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let n = match *t {
            Throughput::Bytes(b) | Throughput::BytesDecimal(b) | Throughput::Elements(b) => {
                b as f64
            }
        };
        for v in values {
            *v = n * 1e9 / *v / 1e6;
        }
        "MB/s (on CPU)"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn bench_oncpu(c: &mut Criterion<OnCpu>) {
    let mut g = c.benchmark_group("conntrack-oncpu");
    g.sample_size(10);
    for (name, proc) in [("conntrack-L", false), ("proc-nf_conntrack", true)] {
        let text = table(proc);
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_with_input(BenchmarkId::new("parse_into", name), &text, |b, t| {
            b.iter(|| {
                let mut builder = SummaryBuilder::new(100);
                let w = parse_into(t, &mut builder);
                (w.len(), builder.finish().0.total)
            })
        });
        g.bench_with_input(BenchmarkId::new("parse_entries", name), &text, |b, t| {
            b.iter(|| parse_entries(t).value.len())
        });
    }
    g.finish();
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("conntrack");
    g.sample_size(10);
    for (name, proc) in [("conntrack-L", false), ("proc-nf_conntrack", true)] {
        let text = table(proc);
        // The generator must produce parseable lines, or the numbers mean nothing.
        let check = parse_entries(&text);
        assert!(check.warnings.is_empty(), "{:?}", check.warnings.first());
        assert_eq!(check.value.len(), LINES);
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_with_input(BenchmarkId::new("parse_into", name), &text, |b, t| {
            b.iter(|| {
                let mut builder = SummaryBuilder::new(100);
                let w = parse_into(t, &mut builder);
                (w.len(), builder.finish().0.total)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_group! {
    name = oncpu;
    config = Criterion::default().with_measurement(OnCpu);
    targets = bench_oncpu
}
criterion_main!(benches, oncpu);
