//! A SmartPass-style mapping CSV (id,file rows), as uploaded beside images or inside a zip.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mapping = pictureday_ingest::mapping::parse("mapping.csv", data);
    // Look every file the mapping names back up, as ingest does for each image.
    for path in ["a.jpg", "dir/a.jpg", "A.JPG", ""] {
        let _ = mapping.key_for(path);
    }
    let _ = pictureday_ingest::pspa::parse_idlink("idlink.txt", data);
});
