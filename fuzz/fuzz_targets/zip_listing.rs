//! The whole zip listing ingest does before any entry is extracted (`archive::list`): the
//! directory, overlap and path checks, and the mapping/index classification.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!(
        "pictureday-fuzz-listing-{}.zip",
        std::process::id()
    ));
    let mut file = std::fs::File::create(&path).expect("temp file");
    file.write_all(data).expect("write temp file");
    drop(file);
    let _ = pictureday_ingest::archive::list(&path, "upload.zip");
});
