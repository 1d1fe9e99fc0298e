//! Fuzz the CNI log parsers on raw bytes (plain and gzip paths).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = parsers::cnilog::parse_bytes("ipamd.log", data, 1 << 20);
    assert!(p.value.0.unparsed_lines <= p.value.0.lines);
    let _ = parsers::cnilog::parse_bytes("ipamd-2024-05-01T10-00-00.123.log.gz", data, 1 << 16);
    let text = String::from_utf8_lossy(data);
    for (i, line) in text.lines().take(64).enumerate() {
        if let Some(ev) = parsers::cnilog::parse_line("f", i as u64 + 1, line) {
            assert_eq!(ev.kind, parsers::cnilog::classify(&ev.msg));
        }
    }
});
