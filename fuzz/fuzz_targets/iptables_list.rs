//! Fuzz the iptables -L -n -v parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = parsers::iptables::parse_list(s, "nat");
        let _ = parsers::iptables::parse_any(s, "filter");
    }
});
