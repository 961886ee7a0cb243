//! The image stage as the image-processor runs it: limits and header checks (JPEG marker walk,
//! PNG/GIF/WebP header sizes, HEIC/AVIF item sizes as libheif reads them), then decode, crop and
//! encode. Limits are tightened so that a valid header never makes one run allocate more than a
//! few megabytes. libheif and its decoders are the system's, not instrumented: the fuzzer
//! sees their crashes but steers by our code's coverage only.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use pictureday_imaging::{Config, Limits, Processor, RenditionSpec};

thread_local! {
    static PROCESSOR: RefCell<Processor> = RefCell::new(Processor::new(Config {
        limits: Limits {
            max_input_bytes: 1024 * 1024,
            max_dimension: 1024,
            max_pixels: 512 * 512,
            min_width: 1,
            min_height: 1,
            min_aspect: 0.01,
            max_aspect: 100.0,
        },
        renditions: vec![RenditionSpec::new("small", 48, 60)],
        jpeg_quality: 85,
    }));
}

fuzz_target!(|data: &[u8]| {
    PROCESSOR.with(|p| {
        let _ = p.borrow_mut().process(data);
    });
});
