//! A photographer's PSPA `INDEX.TXT` / `MASTER.TXT` (any encoding, delimiter, header or none).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pictureday_ingest::pspa::parse_index("INDEX.TXT", data);
});
