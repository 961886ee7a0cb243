//! End-to-end behaviour of the fast path and the reference path.

mod support;

use image::metadata::Orientation;
use image::{DynamicImage, ImageFormat, RgbImage};
use pictureday_imaging::{
    Config, Format, ImageError, Limits, Processed, Processor, process_reference, sniff,
};
use support::*;

const SIZES: [(&str, u32, u32); 3] = [
    ("large", 480, 600),
    ("medium", 240, 300),
    ("small", 96, 120),
];

fn fast(bytes: &[u8]) -> Result<Processed, ImageError> {
    Processor::new(Config::default()).process(bytes)
}

fn reference(bytes: &[u8]) -> Result<Processed, ImageError> {
    process_reference(&Config::default(), bytes)
}

fn assert_renditions(p: &Processed, expect_420: bool) {
    let got: Vec<_> = p
        .renditions
        .iter()
        .map(|r| (r.name.as_str(), r.width, r.height))
        .collect();
    assert_eq!(got, SIZES.to_vec());
    for r in &p.renditions {
        assert_clean_jpeg(&r.jpeg, expect_420);
        let img = decode(&r.jpeg);
        assert_eq!(img.dimensions(), (r.width, r.height), "{}", r.name);
    }
}

#[test]
fn defaults_match_the_contract() {
    let c = Config::default();
    assert_eq!(
        c.limits,
        Limits {
            max_input_bytes: 50 * 1024 * 1024,
            max_dimension: 8000,
            max_pixels: 50_000_000,
            min_width: 120,
            min_height: 150,
            min_aspect: 0.5,
            max_aspect: 1.5,
        }
    );
    assert_eq!(c.jpeg_quality, 85);
    let sizes: Vec<_> = c
        .renditions
        .iter()
        .map(|r| (r.name.as_str(), r.width, r.height))
        .collect();
    assert_eq!(sizes, SIZES.to_vec());
    let names: Vec<_> = [
        Format::Jpeg,
        Format::Png,
        Format::Gif,
        Format::Tiff,
        Format::Webp,
        Format::Heic,
        Format::Avif,
    ]
    .iter()
    .map(|f| f.name())
    .collect();
    assert_eq!(
        names,
        ["JPEG", "PNG", "GIF", "TIFF", "WebP", "HEIC", "AVIF"]
    );
}

#[test]
fn every_format_gives_exact_sizes_on_both_paths() {
    let src = DynamicImage::ImageRgb8(photo(500, 640, 1));
    let inputs = [
        (Format::Jpeg, jpeg(&photo(500, 640, 1), 90)),
        (Format::Png, encode(&src, ImageFormat::Png)),
        (Format::Gif, encode(&src, ImageFormat::Gif)),
        (Format::Tiff, encode(&src, ImageFormat::Tiff)),
        (Format::Webp, encode(&src, ImageFormat::WebP)),
    ];
    let mut processor = Processor::new(Config::default());
    for (format, bytes) in &inputs {
        assert_eq!(sniff(bytes).ok(), Some(*format));
        let p = processor.process(bytes).expect("fast path");
        assert_eq!(p.format, *format);
        assert_eq!(
            (p.source_width, p.source_height, p.orientation),
            (500, 640, 1)
        );
        assert_renditions(&p, true);
        let r = reference(bytes).expect("reference path");
        assert_eq!(r.format, *format);
        assert_renditions(&r, false);
        let large = decode(&p.renditions[0].jpeg);
        let large_ref = decode(&r.renditions[0].jpeg);
        let db = psnr(&large, &large_ref);
        assert!(db > 30.0, "{format:?}: fast vs reference PSNR {db:.1} dB");
    }
}

#[test]
fn small_sources_are_upscaled_to_exact_sizes() {
    let bytes = jpeg(&photo(120, 150, 2), 90);
    let p = fast(&bytes).expect("fast path");
    assert_renditions(&p, true);
    let r = reference(&bytes).expect("reference path");
    assert_renditions(&r, false);
}

fn inverse(orientation: u16) -> u8 {
    match orientation {
        6 => 8,
        8 => 6,
        o => o as u8,
    }
}

/// Stores an upright image the way a camera with EXIF `orientation` would.
fn stored_as(upright: &RgbImage, orientation: u16) -> RgbImage {
    let mut img = DynamicImage::ImageRgb8(upright.clone());
    img.apply_orientation(Orientation::from_exif(inverse(orientation)).expect("1..=8"));
    img.into_rgb8()
}

#[test]
fn all_eight_exif_orientations_come_out_upright() {
    let upright = quadrants(400, 500, 3);
    let mut processor = Processor::new(Config::default());
    for orientation in 1..=8u16 {
        let stored = stored_as(&upright, orientation);
        let bytes = with_segment(&jpeg(&stored, 92), &exif_segment(orientation));
        assert!(bytes.windows(16).any(|w| w == b"SECRET-GPS-DATUM"));
        for (path, p) in [
            ("fast", processor.process(&bytes).expect("fast path")),
            ("reference", reference(&bytes).expect("reference path")),
        ] {
            assert_eq!(p.orientation, orientation, "{path}");
            assert_eq!(
                (p.source_width, p.source_height),
                (400, 500),
                "{path} {orientation}"
            );
            assert_renditions(&p, path == "fast");
            for r in &p.renditions {
                for needle in [&b"SECRET-GPS"[..], b"SERIAL-4242", b"Exif"] {
                    assert!(
                        !r.jpeg.windows(needle.len()).any(|w| w == needle),
                        "{path} {} still carries metadata",
                        r.name
                    );
                }
                assert_quadrants(
                    &decode(&r.jpeg),
                    &format!("{path} orientation {orientation} {}", r.name),
                );
            }
        }
    }
}

#[test]
fn portrait_stored_landscape_with_orientation_6_is_portrait() {
    let upright = quadrants(1200, 1500, 4);
    let stored = stored_as(&upright, 6);
    assert_eq!(stored.dimensions(), (1500, 1200));
    let bytes = with_segment(&jpeg(&stored, 90), &exif_segment(6));
    let p = fast(&bytes).expect("fast path");
    assert_eq!((p.source_width, p.source_height), (1200, 1500));
    assert_quadrants(&decode(&p.renditions[0].jpeg), "orientation 6");
}

/// A source whose 4:5 centre is marked: a magenta dot in the centre and blue bands
/// everywhere outside the centre crop.
fn marked(width: u32, height: u32) -> (RgbImage, [u32; 4]) {
    let mut img = photo(width, height, 5);
    let (cw, ch) = if width * 5 > height * 4 {
        (height * 4 / 5, height)
    } else {
        (width, width * 5 / 4)
    };
    let crop = [(width - cw) / 2, (height - ch) / 2, cw, ch];
    for (x, y, px) in img.enumerate_pixels_mut() {
        let inside = x >= crop[0] && x < crop[0] + cw && y >= crop[1] && y < crop[1] + ch;
        let (dx, dy) = (x as i64 - width as i64 / 2, y as i64 - height as i64 / 2);
        if !inside {
            *px = image::Rgb([20, 30, px[2].max(200)]);
        } else if dx * dx + dy * dy < (cw as i64 / 12).pow(2) {
            *px = image::Rgb([230, 20, px[2].max(200)]);
        }
    }
    (img, crop)
}

#[test]
fn crop_keeps_the_centre_of_wide_and_tall_sources() {
    for (w, h) in [(1500, 1000), (600, 1200)] {
        let (img, _) = marked(w, h);
        let bytes = jpeg(&img, 92);
        for (path, p) in [
            ("fast", fast(&bytes).expect("fast")),
            ("reference", reference(&bytes).expect("reference")),
        ] {
            let out = decode(&p.renditions[0].jpeg);
            let (ow, oh) = out.dimensions();
            let centre = mean(&out, ow / 2, oh / 2, 4);
            assert!(
                centre[0] > 180.0 && centre[1] < 80.0,
                "{path} {w}×{h}: centre should stay magenta, got {centre:?}"
            );
            // No blue margin survives anywhere along the edges.
            for (x, y) in [(2, oh / 2), (ow - 3, oh / 2), (ow / 2, 2), (ow / 2, oh - 3)] {
                let c = mean(&out, x, y, 2);
                assert!(
                    !(c[0] < 60.0 && c[2] > 170.0),
                    "{path} {w}×{h}: margin at ({x},{y}) was kept: {c:?}"
                );
            }
            // The magenta dot is centred: as far from the left as from the right.
            let row: Vec<bool> = (0..ow)
                .map(|x| {
                    let p = out.get_pixel(x, oh / 2);
                    p[0] > 160 && p[1] < 100
                })
                .collect();
            let first = row.iter().position(|&m| m).expect("dot");
            let last = row.iter().rposition(|&m| m).expect("dot");
            let (left, right) = (first as i64, ow as i64 - 1 - last as i64);
            assert!(
                (left - right).abs() <= 3,
                "{path} {w}×{h}: dot off centre {left} vs {right}"
            );
        }
    }
}

#[test]
fn fast_path_matches_reference_on_varied_jpegs() {
    // Tolerance: PSNR > 30 dB and a mean absolute difference under 4 levels. The two
    // paths differ in decoder (DCT scaling vs. full decode), resampling (fractional vs.
    // whole-pixel crop, two-stage vs. direct Lanczos3) and encoder, each worth a little
    // noise-level difference; a wrong crop, orientation or colour conversion drops far
    // below 20 dB, so this threshold separates "same picture" from "wrong picture".
    let upright = photo(1200, 1500, 6);
    let mut cases = vec![
        ("1200×1500", jpeg(&upright, 90)),
        ("640×800", jpeg(&photo(640, 800, 7), 90)),
        ("1500×1000 landscape", jpeg(&photo(1500, 1000, 8), 90)),
        (
            "orientation 6",
            with_segment(&jpeg(&stored_as(&upright, 6), 90), &exif_segment(6)),
        ),
        (
            "orientation 3",
            with_segment(&jpeg(&stored_as(&upright, 3), 90), &exif_segment(3)),
        ),
    ];
    cases.push(("grayscale", {
        let gray = DynamicImage::ImageRgb8(upright.clone()).into_luma8();
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&gray)
            .expect("gray JPEG");
        out
    }));
    cases.push(("CMYK (Adobe YCCK)", cmyk_jpeg(&upright)));
    // Every chroma layout cameras and editors write, on an odd-sized photo so the
    // decoder's padded planes are exercised, one of them sideways.
    let odd = photo(1001, 1253, 20);
    for (what, subsamp) in [
        ("4:2:0 odd size", turbojpeg::Subsamp::Sub2x2),
        ("4:2:2 odd size", turbojpeg::Subsamp::Sub2x1),
        ("4:4:0 odd size", turbojpeg::Subsamp::Sub1x2),
        ("4:4:4 odd size", turbojpeg::Subsamp::None),
        ("4:1:1 odd size", turbojpeg::Subsamp::Sub4x1),
    ] {
        cases.push((what, turbo_jpeg(&odd, subsamp)));
    }
    cases.push((
        "4:2:2 orientation 8",
        with_segment(
            &turbo_jpeg(&stored_as(&odd, 8), turbojpeg::Subsamp::Sub2x1),
            &exif_segment(8),
        ),
    ));
    let mut processor = Processor::new(Config::default());
    for (what, bytes) in &cases {
        let p = processor.process(bytes).expect(what);
        let r = reference(bytes).expect(what);
        assert_eq!(
            (p.source_width, p.source_height, p.orientation),
            (r.source_width, r.source_height, r.orientation),
            "{what}"
        );
        for (a, b) in p.renditions.iter().zip(&r.renditions) {
            let (ia, ib) = (decode(&a.jpeg), decode(&b.jpeg));
            let db = psnr(&ia, &ib);
            let mad: f64 = ia
                .as_raw()
                .iter()
                .zip(ib.as_raw())
                .map(|(&x, &y)| (f64::from(x) - f64::from(y)).abs())
                .sum::<f64>()
                / ia.as_raw().len() as f64;
            println!("{what} {}: PSNR {db:.1} dB, mean abs diff {mad:.2}", a.name);
            assert!(db > 30.0, "{what} {}: PSNR {db:.1} dB", a.name);
            assert!(mad < 4.0, "{what} {}: mean abs diff {mad:.2}", a.name);
        }
    }
}

fn turbo_jpeg(rgb: &RgbImage, subsamp: turbojpeg::Subsamp) -> Vec<u8> {
    let image = turbojpeg::Image {
        pixels: rgb.as_raw().as_slice(),
        width: rgb.width() as usize,
        pitch: rgb.width() as usize * 3,
        height: rgb.height() as usize,
        format: turbojpeg::PixelFormat::RGB,
    };
    turbojpeg::compress(image, 90, subsamp)
        .expect("test JPEG")
        .to_vec()
}

#[test]
fn decode_plan_is_the_smallest_scale_that_covers_the_large_rendition() {
    let processor = Processor::new(Config::default());
    let plan = |w, h, subsamp| {
        let p = processor
            .jpeg_decode_plan(&turbo_jpeg(&photo(w, h, 7), subsamp))
            .expect("a JPEG");
        (p.scale.0, p.scale.1, p.planar)
    };
    // 4:2:0 goes to the encoder as planes: 640×800 at 3/4 is exactly 480×600.
    assert_eq!(plan(640, 800, turbojpeg::Subsamp::Sub2x2), (3, 4, true));
    assert_eq!(plan(2000, 2500, turbojpeg::Subsamp::Sub2x2), (1, 4, true));
    assert_eq!(plan(640, 800, turbojpeg::Subsamp::None), (3, 4, true));
    // Greyscale is decoded to RGB, where only the SIMD scales are used.
    assert_eq!(plan(640, 800, turbojpeg::Subsamp::Gray), (1, 1, false));
    let png = encode(&DynamicImage::ImageRgb8(photo(64, 80, 1)), ImageFormat::Png);
    assert!(processor.jpeg_decode_plan(&png).is_err());
}

#[test]
fn decode_plan_reads_the_restart_interval() {
    let processor = Processor::new(Config::default());
    let plain = turbo_jpeg(&photo(160, 200, 3), turbojpeg::Subsamp::Sub2x2);
    let interval = |jpeg: &[u8]| {
        processor
            .jpeg_decode_plan(jpeg)
            .expect("a JPEG")
            .restart_interval
    };
    assert_eq!(interval(&plain), 0);
    // A DRI segment (restart every 4 MCUs) just before the first scan. The scan itself has no
    // restart markers, which libjpeg-turbo would notice only when decoding.
    let sos = plain
        .windows(2)
        .position(|w| w == [0xFF, 0xDA])
        .expect("a scan");
    let mut with_dri = plain[..sos].to_vec();
    with_dri.extend_from_slice(&segment(0xDD, &4u16.to_be_bytes()));
    with_dri.extend_from_slice(&plain[sos..]);
    assert_eq!(interval(&with_dri), 4);
}

/// A CMYK JPEG as Photoshop writes them: Adobe APP14, YCCK, inverted ink values.
fn cmyk_jpeg(rgb: &RgbImage) -> Vec<u8> {
    let mut cmyk = Vec::with_capacity(rgb.as_raw().len() / 3 * 4);
    for p in rgb.pixels() {
        let k = p[0].max(p[1]).max(p[2]).max(1);
        let scale = |c: u8| ((u32::from(c) * 255 + u32::from(k) / 2) / u32::from(k)) as u8;
        cmyk.extend_from_slice(&[scale(p[0]), scale(p[1]), scale(p[2]), k]);
    }
    let mut c = turbojpeg::Compressor::new().expect("compressor");
    c.set_quality(92).expect("quality");
    c.set_subsamp(turbojpeg::Subsamp::None).expect("subsamp");
    let image = turbojpeg::Image {
        pixels: &cmyk[..],
        width: rgb.width() as usize,
        pitch: rgb.width() as usize * 4,
        height: rgb.height() as usize,
        format: turbojpeg::PixelFormat::CMYK,
    };
    let out = c.compress_to_vec(image).expect("CMYK JPEG");
    let has_adobe = markers(&out)
        .iter()
        .any(|(m, p)| *m == 0xEE && p.starts_with(b"Adobe"));
    assert!(has_adobe, "turbojpeg writes an Adobe marker for CMYK");
    out
}

#[test]
fn transparency_lands_on_white() {
    let base = photo(400, 500, 9);
    // Left half fully transparent, right half opaque.
    let rgba = rgba_on(&base, |x, _| if x < 200 { 0 } else { 255 });
    for format in [ImageFormat::Png, ImageFormat::WebP, ImageFormat::Gif] {
        let bytes = encode(&DynamicImage::ImageRgba8(rgba.clone()), format);
        for (path, p) in [
            ("fast", fast(&bytes).expect("fast")),
            ("reference", reference(&bytes).expect("reference")),
        ] {
            let out = decode(&p.renditions[0].jpeg);
            let left = mean(&out, 100, 300, 20);
            assert!(
                left.iter().all(|&c| c > 245.0),
                "{path} {format:?}: transparent area should be white, got {left:?}"
            );
            let right = mean(&out, 380, 300, 20);
            assert!(
                right.iter().any(|&c| c < 200.0),
                "{path} {format:?}: opaque area should keep the photo, got {right:?}"
            );
        }
    }
}

#[test]
fn largest_rendition_is_small_enough() {
    let bytes = jpeg(&photo(2400, 3000, 10), 90);
    let p = fast(&bytes).expect("fast");
    let size = p.renditions[0].jpeg.len();
    assert!(size < 120_000, "large rendition is {size} bytes");
}

fn messages(bytes: &[u8], config: &Config) -> (String, String) {
    let fast = Processor::new(config.clone())
        .process(bytes)
        .expect_err("fast path must refuse");
    let reference = process_reference(config, bytes).expect_err("reference must refuse");
    assert!(fast.is_input_error() && reference.is_input_error());
    (fast.to_string(), reference.to_string())
}

fn assert_refused(bytes: &[u8], config: &Config, expected: &str) {
    let (fast, reference) = messages(bytes, config);
    assert_eq!(fast, expected);
    assert_eq!(reference, expected);
}

/// A JPEG header (SOI, SOF0, SOS) claiming any size, with a few bytes of scan data.
fn jpeg_header_claiming(width: u16, height: u16) -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8];
    let mut sof = vec![8];
    sof.extend_from_slice(&height.to_be_bytes());
    sof.extend_from_slice(&width.to_be_bytes());
    sof.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    j.extend(segment(0xC0, &sof));
    j.extend(segment(0xDA, &[3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0]));
    j.extend_from_slice(&[0x12, 0x34, 0xFF, 0xD9]);
    j
}

#[test]
fn refusals_say_what_is_wrong() {
    let config = Config::default();
    assert_refused(b"", &config, "empty file");
    assert_refused(
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj",
        &config,
        "not an image: starts with %PDF-1.4",
    );
    let good = jpeg(&photo(300, 400, 11), 90);
    assert_refused(&good[..good.len() / 2], &config, "truncated JPEG");
    assert_refused(
        &jpeg_header_claiming(12000, 9000),
        &config,
        "12000×9000 exceeds the 8000 px limit",
    );
    assert_refused(
        &jpeg_header_claiming(7500, 7000),
        &config,
        "too many pixels: 7500×7000 is 52.5 megapixels, which exceeds the 50 megapixel limit",
    );
    let mut bmp = b"BM".to_vec();
    bmp.extend_from_slice(&[0x36, 0x10, 0x0E, 0, 0, 0, 0, 0, 0x36, 0, 0, 0, 40, 0, 0, 0]);
    bmp.resize(2000, 0x80);
    assert_refused(&bmp, &config, "unsupported image format: BMP");
    let avis = b"\0\0\0\x1cftypavis\0\0\0\0avismsf1miaf\0\0\0\0meta";
    assert_refused(avis, &config, "unsupported image format: animated AVIF");

    let small_limit = Config {
        limits: Limits {
            max_input_bytes: 1024 * 1024,
            ..Limits::default()
        },
        ..Config::default()
    };
    let mut big = jpeg(&photo(64, 80, 12), 90);
    big.resize(1_200_000, 0);
    assert_refused(&big, &small_limit, "1.1 MB exceeds the 1 MB file limit");
}

/// A PNG IHDR claiming a size, then nothing else (no pixel data is ever allocated).
fn png_header_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&ihdr);
    let crc = crc32(&chunk);
    png.extend_from_slice(&chunk);
    png.extend_from_slice(&crc.to_be_bytes());
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn png_refusals() {
    let config = Config::default();
    assert_refused(
        &png_header_claiming(12000, 9000),
        &config,
        "12000×9000 exceeds the 8000 px limit",
    );
    assert_refused(
        &png_header_claiming(7500, 7000),
        &config,
        "too many pixels: 7500×7000 is 52.5 megapixels, which exceeds the 50 megapixel limit",
    );
    // A GIF logical screen of 65535×65535 is refused before decoding too.
    let mut gif = b"GIF89a\xff\xff\xff\xff\0\0\0".to_vec();
    gif.resize(64, 0);
    assert_refused(&gif, &config, "65535×65535 exceeds the 8000 px limit");
    let good = encode(
        &DynamicImage::ImageRgb8(photo(300, 400, 13)),
        ImageFormat::Png,
    );
    // Flip bytes inside the compressed image data: the chunk checksum no longer matches.
    let idat = good.windows(4).position(|w| w == b"IDAT").expect("IDAT");
    let mut corrupt = good.clone();
    for b in &mut corrupt[idat + 40..idat + 60] {
        *b ^= 0x5A;
    }
    let (fast, reference) = messages(&corrupt, &config);
    assert!(fast.starts_with("corrupt PNG: "), "{fast}");
    assert_eq!(fast, reference);
    assert_refused(&good[..good.len() / 2], &config, "truncated PNG");
}

#[test]
fn hostile_bytes_never_panic() {
    let seeds = [
        jpeg(&photo(160, 200, 14), 85),
        with_segment(&jpeg(&photo(200, 160, 15), 85), &exif_segment(6)),
        encode(
            &DynamicImage::ImageRgb8(photo(120, 150, 16)),
            ImageFormat::Png,
        ),
        encode(
            &DynamicImage::ImageRgb8(photo(120, 150, 17)),
            ImageFormat::Gif,
        ),
        encode(
            &DynamicImage::ImageRgb8(photo(120, 150, 18)),
            ImageFormat::Tiff,
        ),
        encode(
            &DynamicImage::ImageRgb8(photo(120, 150, 19)),
            ImageFormat::WebP,
        ),
    ];
    let mut rng = Lcg::new(99);
    let mut processor = Processor::new(Config::default());
    for seed in &seeds {
        for round in 0..15 {
            let mut bytes = seed.clone();
            let flips = 1 + rng.next_u32() as usize % 8;
            for _ in 0..flips {
                let at = rng.next_u32() as usize % bytes.len();
                bytes[at] = rng.next_u32() as u8;
            }
            if round % 5 == 0 {
                bytes.truncate(rng.next_u32() as usize % bytes.len());
            }
            // Either outcome is fine; a panic or an internal error is not.
            for result in [processor.process(&bytes), reference(&bytes)] {
                if let Err(e) = result {
                    assert!(e.is_input_error(), "{e}");
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }
    // The processor is still healthy afterwards.
    assert_renditions(&processor.process(&seeds[0]).expect("fast"), true);
}
