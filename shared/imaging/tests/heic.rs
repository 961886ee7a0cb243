//! HEIC photos (as iPhones write them), and AVIF, on both paths, from the fixtures in
//! `tests/data` (see the README there for how they were made).

mod support;

use image::{DynamicImage, ImageFormat};
use pictureday_imaging::{
    Config, Format, ImageError, Limits, Processed, Processor, process_reference, sniff,
};
use support::*;

/// 160×200, upright, four coloured quadrants; EXIF (GPS datum, serial number) and XMP.
const UPRIGHT: &[u8] = include_bytes!("data/quadrants-160x200.heic");
/// The same picture stored sideways (200×160) with an `irot` turning it upright, and an
/// EXIF block that still says orientation 6.
const ROTATED: &[u8] = include_bytes!("data/rotated-irot-200x160.heic");
/// The upright picture at 10 bits per sample.
const TEN_BIT: &[u8] = include_bytes!("data/ten-bit-160x200.heic");
/// The upright picture as a 2×2 grid of 96×112 tiles cropped to 160×200 (an iPhone photo's
/// layout).
const GRID: &[u8] = include_bytes!("data/grid-160x200.heic");
/// The upright picture as AVIF, with the same EXIF and XMP.
const AVIF: &[u8] = include_bytes!("data/quadrants-160x200.avif");

const SECRETS: [&[u8]; 3] = [b"SECRET-GPS-DATUM", b"SERIAL-4242", b"SECRET-XMP-CREATOR"];

fn both(config: &Config, bytes: &[u8]) -> [(&'static str, Result<Processed, ImageError>); 2] {
    [
        ("fast", Processor::new(config.clone()).process(bytes)),
        ("reference", process_reference(config, bytes)),
    ]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn heic_photos_come_out_upright_with_exact_sizes_and_colours() {
    for (what, bytes, format) in [
        ("upright", UPRIGHT, Format::Heic),
        ("irot", ROTATED, Format::Heic),
        ("10-bit", TEN_BIT, Format::Heic),
        ("grid", GRID, Format::Heic),
        ("AVIF", AVIF, Format::Avif),
    ] {
        assert_eq!(sniff(bytes).ok(), Some(format), "{what}");
        for (path, result) in both(&Config::default(), bytes) {
            let p = result.unwrap_or_else(|e| panic!("{path} {what}: {e}"));
            assert_eq!(p.format, format);
            // The irot one is stored 200×160 and displayed 160×200; its EXIF orientation 6
            // is not applied on top of the irot (that would turn it a second time).
            assert_eq!(
                (p.source_width, p.source_height, p.orientation),
                (160, 200, 1),
                "{path} {what}"
            );
            let sizes: Vec<_> = p.renditions.iter().map(|r| (r.width, r.height)).collect();
            assert_eq!(sizes, [(480, 600), (240, 300), (96, 120)], "{path} {what}");
            for r in &p.renditions {
                assert_clean_jpeg(&r.jpeg, path == "fast");
                let img = decode(&r.jpeg);
                assert_eq!(img.dimensions(), (r.width, r.height));
                assert_quadrants(&img, &format!("{path} {what} {}", r.name));
            }
        }
    }
}

#[test]
fn no_metadata_survives() {
    for bytes in [UPRIGHT, ROTATED, AVIF] {
        for secret in SECRETS {
            assert!(
                contains(bytes, secret),
                "the fixture should carry {secret:?}"
            );
        }
        for (path, result) in both(&Config::default(), bytes) {
            for r in &result.expect("decodes").renditions {
                assert_clean_jpeg(&r.jpeg, path == "fast");
                for needle in SECRETS
                    .iter()
                    .chain([&&b"Exif"[..], &&b"http://ns.adobe"[..]])
                {
                    assert!(!contains(&r.jpeg, needle), "{path} {}: {needle:?}", r.name);
                }
            }
        }
    }
}

fn messages(config: &Config, bytes: &[u8]) -> Vec<String> {
    both(config, bytes)
        .into_iter()
        .map(|(path, result)| {
            let e = result.err().unwrap_or_else(|| panic!("{path} must refuse"));
            assert!(e.is_input_error(), "{path}: {e}");
            e.to_string()
        })
        .collect()
}

#[test]
fn heic_limits_are_the_limits_of_every_format() {
    let png = encode(
        &DynamicImage::ImageRgb8(quadrants(160, 200, 1)),
        ImageFormat::Png,
    );
    // Sides and pixel counts are checked before decoding, on the size as stored (as for
    // PNG, whose EXIF orientation is not known then either): the irot fixture's is 200×160.
    for (limits, expected) in [
        (
            Limits {
                max_dimension: 180,
                ..Limits::default()
            },
            "{w}×{h} exceeds the 180 px limit",
        ),
        (
            Limits {
                max_pixels: 30_000,
                ..Limits::default()
            },
            "too many pixels: {w}×{h} is 0 megapixels, which exceeds the 0 megapixel limit",
        ),
        (
            Limits {
                min_width: 170,
                ..Limits::default()
            },
            // Checked as displayed, once the rotation is known.
            "the image is 160×200 pixels; a portrait needs at least 170×150",
        ),
        (
            Limits {
                max_input_bytes: 1000,
                ..Limits::default()
            },
            "", // the message names each file's own size
        ),
    ] {
        let config = Config {
            limits,
            ..Config::default()
        };
        for (bytes, stored) in [(UPRIGHT, "160×200"), (ROTATED, "200×160")] {
            let got = messages(&config, bytes);
            if expected.is_empty() {
                assert!(
                    got.iter()
                        .all(|m| m.ends_with("exceeds the 1000 bytes file limit"))
                );
                continue;
            }
            let expected = expected.replace("{w}×{h}", stored);
            assert_eq!(got, [expected.clone(), expected.clone()]);
            if stored == "160×200" {
                assert_eq!(messages(&config, &png), [expected.clone(), expected], "PNG");
            }
        }
    }
    let too_many = Config {
        limits: Limits {
            max_pixels: 30_000,
            ..Limits::default()
        },
        ..Config::default()
    };
    let err = Processor::new(too_many)
        .process(UPRIGHT)
        .expect_err("over the limit");
    assert!(matches!(
        err,
        ImageError::TooManyPixels {
            width: 160,
            height: 200,
            limit: 30_000
        }
    ));
}

/// The fixture with its `ispe` (the coded size, which libheif allocates) changed.
fn claiming(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = UPRIGHT.to_vec();
    let at = bytes
        .windows(4)
        .position(|w| w == b"ispe")
        .expect("ispe box");
    // Box type, then version and flags, then width and height.
    bytes[at + 8..at + 12].copy_from_slice(&width.to_be_bytes());
    bytes[at + 12..at + 16].copy_from_slice(&height.to_be_bytes());
    bytes
}

#[test]
fn a_declared_size_over_the_limits_is_refused_before_decoding() {
    let config = Config::default();
    let expected = "20000×30000 exceeds the 8000 px limit";
    assert_eq!(
        messages(&config, &claiming(20_000, 30_000)),
        [expected, expected]
    );
    let expected =
        "too many pixels: 7000×7500 is 52.5 megapixels, which exceeds the 50 megapixel limit";
    assert_eq!(
        messages(&config, &claiming(7000, 7500)),
        [expected, expected]
    );
}

#[test]
fn the_name_does_not_matter_only_the_bytes() {
    let dir = std::env::temp_dir().join(format!("pictureday-heic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let jpeg_bytes = jpeg(&quadrants(400, 500, 2), 90);
    let named_heic = dir.join("IMG_0001.HEIC");
    std::fs::write(&named_heic, &jpeg_bytes).expect("write");
    let named_jpg = dir.join("IMG_0002.jpg");
    std::fs::write(&named_jpg, UPRIGHT).expect("write");
    let (as_heic, as_jpg) = (
        std::fs::read(&named_heic).expect("read"),
        std::fs::read(&named_jpg).expect("read"),
    );
    std::fs::remove_dir_all(&dir).ok();

    assert_eq!(sniff(&as_heic).ok(), Some(Format::Jpeg));
    assert_eq!(sniff(&as_jpg).ok(), Some(Format::Heic));
    for (path, result) in both(&Config::default(), &as_heic) {
        let p = result.expect("a JPEG named .HEIC is a JPEG");
        assert_eq!(p.format, Format::Jpeg, "{path}");
        assert_quadrants(&decode(&p.renditions[0].jpeg), path);
    }
    for (path, result) in both(&Config::default(), &as_jpg) {
        assert_eq!(result.expect("decodes").format, Format::Heic, "{path}");
    }
}

#[test]
fn damaged_heic_files_say_so() {
    let config = Config::default();
    // Cut inside the image data (mdat, at the end of the file), inside the item
    // properties, and just after the ftyp box.
    let mdat = UPRIGHT.windows(4).position(|w| w == b"mdat").expect("mdat");
    for cut in [UPRIGHT.len() - 200, mdat + 100, mdat - 60, 40] {
        assert_eq!(
            messages(&config, &UPRIGHT[..cut]),
            ["truncated HEIC", "truncated HEIC"],
            "cut at {cut} of {}",
            UPRIGHT.len()
        );
    }
    // Every other cut is refused in words too (never a panic or an internal error).
    for cut in (12..UPRIGHT.len()).step_by(37) {
        for message in messages(&config, &UPRIGHT[..cut]) {
            assert!(
                message == "truncated HEIC" || message.starts_with("corrupt HEIC: "),
                "cut at {cut}: {message}"
            );
        }
    }
    // A bare header, as the sniffing tests use.
    let bare = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic\0\0\0\0meta";
    for message in messages(&config, bare) {
        assert!(message.starts_with("corrupt HEIC: "), "{message}");
    }
}

#[test]
fn hostile_heic_bytes_never_panic() {
    let mut rng = Lcg::new(7);
    let mut processor = Processor::new(Config::default());
    for seed in [UPRIGHT, ROTATED, GRID, AVIF] {
        for round in 0..40 {
            let mut bytes = seed.to_vec();
            let flips = 1 + rng.next_u32() as usize % 8;
            for _ in 0..flips {
                let at = rng.next_u32() as usize % bytes.len();
                bytes[at] = rng.next_u32() as u8;
            }
            if round % 5 == 0 {
                bytes.truncate(rng.next_u32() as usize % bytes.len());
            }
            for result in [
                processor.process(&bytes),
                process_reference(&Config::default(), &bytes),
            ] {
                if let Err(e) = result {
                    assert!(e.is_input_error(), "{e}");
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }
    assert_eq!(
        processor.process(UPRIGHT).expect("still fine").format,
        Format::Heic
    );
}
