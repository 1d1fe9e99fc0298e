//! Fuzz the ipamd introspection and env parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(enis) = parsers::ipamd::parse_enis(s) {
        // Sorted by network card index, as documented.
        assert!(enis.network_cards.windows(2).all(|w| w[0].index <= w[1].index));
        let _ = enis.assigned().count();
    }
    let _ = parsers::ipamd::parse_env_settings(s);
    let _ = parsers::ipamd::parse_env_file(s);
});
