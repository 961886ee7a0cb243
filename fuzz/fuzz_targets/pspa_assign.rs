//! Which index row describes which image of a package (`pspa::assign`).
//!
//! Input layout: segments separated by a NUL byte pair. The first segment is the package's image
//! paths, one a line; every further segment is one index file, its path on the first line and
//! its contents after it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fn split<'a>(data: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(at) = rest.windows(sep.len()).position(|w| w == sep) {
        out.push(&rest[..at]);
        rest = &rest[at + sep.len()..];
    }
    out.push(rest);
    out
}

fuzz_target!(|data: &[u8]| {
    let segments = split(data, b"\0\0");
    let images_text = String::from_utf8_lossy(segments[0]).into_owned();
    let images: Vec<&str> = images_text.lines().take(256).collect();
    let names = [
        "INDEX.TXT",
        "MASTER.TXT",
        "cd1/INDEX.TXT",
        "CD1/master.txt",
        "a/b/index.txt",
    ];
    let indexes: Vec<(String, Vec<u8>)> = segments[1..]
        .iter()
        .take(8)
        .enumerate()
        .map(|(i, seg)| match seg.iter().position(|&b| b == b'\n') {
            Some(nl) if nl > 0 => (
                String::from_utf8_lossy(&seg[..nl]).into_owned(),
                seg[nl + 1..].to_vec(),
            ),
            _ => (names[i % names.len()].to_owned(), seg.to_vec()),
        })
        .collect();
    let _ = pictureday_ingest::pspa::assign(&indexes, &images);
});
