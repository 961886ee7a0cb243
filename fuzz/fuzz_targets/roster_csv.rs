//! The roster CSV a district uploads (`POST /v1/districts/{id}/roster`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pictureday_roster::roster_csv::parse(data);
});
