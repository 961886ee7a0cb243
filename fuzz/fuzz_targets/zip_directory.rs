//! The zip central directory reader (`zipdir::read`), on a file as uploads are spooled to disk.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path =
        std::env::temp_dir().join(format!("pictureday-fuzz-zipdir-{}.zip", std::process::id()));
    let mut file = std::fs::File::create(&path).expect("temp file");
    file.write_all(data).expect("write temp file");
    drop(file);
    let mut file = std::fs::File::open(&path).expect("reopen temp file");
    // A small limit so that entry-count handling is exercised too.
    let _ = pictureday_ingest::zipdir::read(&mut file, 64);
});
