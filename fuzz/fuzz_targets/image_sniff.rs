//! Format identification from the first bytes of an upload, before any decoder runs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pictureday_imaging::sniff(data);
});
