//! Arbitrary bytes as the files of a capture directory (several kinds at once), through the
//! same builder `diag analyze DIR` uses, then the analysis and the sanitised report text.
#![no_main]

mod common;

use common::input;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let files: Vec<capture::CaptureFile> = common::files(data, common::CAPTURE_NAMES, 6)
        .into_iter()
        .filter_map(|(name, body)| {
            capture::kind::classify_capture(name).map(|kind| capture::CaptureFile {
                name: name.to_string(),
                kind,
                data: body.to_vec(),
            })
        })
        .collect();
    let origin = capture::Origin {
        label: "fuzz".into(),
        hostname: "fuzz".into(),
        where_: "in fuzz".into(),
        ..capture::Origin::default()
    };
    let opts = input::LoadOptions {
        map: Vec::new(),
        conntrack_sample: 16,
    };
    let loaded = input::capture::build(&origin, files, &opts);
    if let Ok(snapshot) = &loaded.outcome {
        common::analyse_and_print(snapshot);
    }
});
