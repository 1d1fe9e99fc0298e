//! Arbitrary members wrapped in a VALID gzip + tar (so the fuzzer reaches the member handling,
//! not just the magic check), read as an eks-log-collector bundle from a file, then analysed.
//! Member names include path traversal and absolute paths; some members are symlinks.
#![no_main]

mod common;

use common::input;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (i, (name, body)) in common::files(data, common::ELC_NAMES, 8)
        .into_iter()
        .enumerate()
    {
        let path = format!("eks_i-0fuzz_2026-12-01_0000-UTC_0.7.9/{name}");
        let mut h = tar::Header::new_gnu();
        // Every fifth member is a symlink pointing at the body's text (a path).
        if i % 5 == 4 {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            let target = String::from_utf8_lossy(&body[..body.len().min(64)]).into_owned();
            if h.set_link_name(&target).is_err() {
                continue;
            }
            if h.set_path(&path).is_err() {
                continue;
            }
            h.set_cksum();
            let _ = tar.append(&h, std::io::empty());
        } else {
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            let _ = tar.append_data(&mut h, &path, body);
        }
    }
    let Ok(gz) = tar.into_inner() else { return };
    let Ok(bytes) = gz.finish() else { return };
    // /dev/shm when there is one: the reader takes a path, and a tmpfs keeps it cheap.
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let file = dir.join(format!("eksdiag-fuzz-{}.tar.gz", std::process::id()));
    if std::fs::write(&file, &bytes).is_err() {
        return;
    }
    let opts = input::LoadOptions {
        map: Vec::new(),
        conntrack_sample: 16,
    };
    let loaded = input::elc::load(&file, &opts);
    let _ = std::fs::remove_file(&file);
    if let Ok(snapshot) = &loaded.outcome {
        common::analyse_and_print(snapshot);
    }
});
