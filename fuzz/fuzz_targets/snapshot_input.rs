//! Arbitrary bytes as snapshot JSON (a snapshot, an array of them, a fleet report), through
//! diag's document dispatch, then the analysis of every snapshot it accepted.
#![no_main]

mod common;

use common::input;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for loaded in input::snapshot_json::parse_document("fuzz.json", text) {
        if let Ok(snapshot) = &loaded.outcome {
            common::analyse_and_print(snapshot);
        }
    }
});
