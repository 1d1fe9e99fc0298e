//! Fuzz the conntrack entry, stats and capture parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let all = parsers::conntrack::parse_entries(s);
    // Streaming and collecting must agree. (The fuzz crate does not depend on `model`; the
    // builder's type is inferred from `parse_into`, and its Default keeps no sample.)
    let mut b = Default::default();
    let w = parsers::conntrack::parse_into(s, &mut b);
    let (summary, _) = b.finish();
    assert_eq!(w, all.warnings);
    assert_eq!(summary.total as usize, all.value.len());
    // What was parsed renders (ConntrackEntry::to_line) to a line that parses back to the same
    // addresses, and the same ports when both were present (to_line prints a pair or nothing;
    // likewise counters, so those are not compared).
    for e in &all.value {
        let again = parsers::conntrack::parse_entry_line(&e.to_line())
            .ok()
            .flatten();
        let Some(again) = again else {
            panic!("to_line of a parsed entry does not parse: {}", e.to_line());
        };
        for (a, b) in [(&again.original, &e.original), (&again.reply, &e.reply)] {
            assert_eq!((a.src, a.dst), (b.src, b.dst));
            if b.sport.is_some() && b.dport.is_some() {
                assert_eq!((a.sport, a.dport), (b.sport, b.dport));
            }
        }
        assert_eq!(again.protonum, e.protonum);
    }
    let _ = parsers::conntrack::parse_stats(s);
    let _ = parsers::conntrack::parse_capture(s, 4);
});
