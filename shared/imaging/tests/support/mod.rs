//! Test helpers: photo-like images, encoders for every format, an EXIF writer and a
//! JPEG marker walker.
#![allow(dead_code)]

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, RgbImage, RgbaImage};

/// Deterministic pseudo-random numbers (no dependency needed).
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Lcg(seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1))
    }
    pub fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }
    /// Roughly triangular noise in -amp..=amp.
    pub fn grain(&mut self, amp: i32) -> i32 {
        let a = (self.next_u32() % (amp as u32 + 1)) as i32;
        let b = (self.next_u32() % (amp as u32 + 1)) as i32;
        a - b
    }
}

fn clamp(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// A portrait-like picture: smooth background gradients, a lighter oval "face" in the
/// middle, soft shading and film grain. Never flat colour.
pub fn photo(width: u32, height: u32, seed: u64) -> RgbImage {
    let mut rng = Lcg::new(seed);
    let (w, h) = (width as f32, height as f32);
    RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32 / w, y as f32 / h);
        let dx = (fx - 0.5) / 0.22;
        let dy = (fy - 0.45) / 0.3;
        let face = (1.0 - (dx * dx + dy * dy)).clamp(0.0, 1.0).sqrt();
        let wave = ((fx * 17.0).sin() * (fy * 11.0).cos() * 12.0) as i32;
        let base = [
            60 + (fx * 90.0) as i32 + wave,
            80 + (fy * 70.0) as i32,
            140 - (fx * 60.0) as i32 + wave / 2,
        ];
        let skin = [225, 180, 150];
        let g = rng.grain(10);
        let px = |c: usize| {
            let v = base[c] as f32 * (1.0 - face) + skin[c] as f32 * face;
            clamp(v as i32 + g + rng_fixed(x, y, c))
        };
        image::Rgb([px(0), px(1), px(2)])
    })
}

/// Cheap per-channel texture so the channels are not perfectly correlated.
fn rng_fixed(x: u32, y: u32, c: usize) -> i32 {
    let v = x
        .wrapping_mul(73_856_093)
        .wrapping_add(y.wrapping_mul(19_349_663))
        .wrapping_add(c as u32 * 83_492_791);
    ((v >> 13) % 7) as i32 - 3
}

/// Adds four distinctly coloured quadrants over a photo (with grain), to check
/// orientation: top-left red, top-right green, bottom-left blue, bottom-right yellow.
pub fn quadrants(width: u32, height: u32, seed: u64) -> RgbImage {
    let mut img = photo(width, height, seed);
    let mut rng = Lcg::new(seed + 7);
    for (x, y, px) in img.enumerate_pixels_mut() {
        let right = x >= width / 2;
        let bottom = y >= height / 2;
        let c = match (right, bottom) {
            (false, false) => [210, 40, 40],
            (true, false) => [40, 190, 50],
            (false, true) => [40, 60, 210],
            (true, true) => [220, 210, 40],
        };
        let g = rng.grain(8);
        *px = image::Rgb([
            clamp((c[0] + i32::from(px[0])) / 2 + g + c[0] / 2 - 60),
            clamp((c[1] + i32::from(px[1])) / 2 + g + c[1] / 2 - 60),
            clamp((c[2] + i32::from(px[2])) / 2 + g + c[2] / 2 - 60),
        ]);
    }
    img
}

pub fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("test encoder");
    out.into_inner()
}

pub fn jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .expect("test JPEG encoder");
    out
}

pub fn rgba_on(img: &RgbImage, alpha: impl Fn(u32, u32) -> u8) -> RgbaImage {
    RgbaImage::from_fn(img.width(), img.height(), |x, y| {
        let p = img.get_pixel(x, y);
        image::Rgba([p[0], p[1], p[2], alpha(x, y)])
    })
}

/// An EXIF APP1 segment (big-endian TIFF) with Orientation in IFD0, an ExifIFD with a
/// camera serial number and a GPS IFD holding a latitude and a map datum that the tests
/// look for in the output.
pub fn exif_segment(orientation: u16) -> Vec<u8> {
    let mut t: Vec<u8> = Vec::new();
    t.extend_from_slice(b"MM\0\x2a\0\0\0\x08");
    // IFD0 at 8: 3 entries.
    let ifd0_len = 2 + 3 * 12 + 4;
    let exif_ifd = 8 + ifd0_len;
    let exif_ifd_len = 2 + 12 + 4;
    let serial_at = exif_ifd + exif_ifd_len;
    let serial = b"SERIAL-4242-CAMERA\0";
    let gps_ifd = serial_at + serial.len() + (serial.len() % 2);
    let gps_ifd_len = 2 + 3 * 12 + 4;
    let lat_at = gps_ifd + gps_ifd_len;
    let datum_at = lat_at + 24;
    let datum = b"SECRET-GPS-DATUM\0";
    let entry = |t: &mut Vec<u8>, tag: u16, ty: u16, count: u32, value: u32| {
        t.extend_from_slice(&tag.to_be_bytes());
        t.extend_from_slice(&ty.to_be_bytes());
        t.extend_from_slice(&count.to_be_bytes());
        t.extend_from_slice(&value.to_be_bytes());
    };
    t.extend_from_slice(&3u16.to_be_bytes());
    // Orientation SHORT: value left-justified in the 4-byte field.
    entry(&mut t, 0x0112, 3, 1, u32::from(orientation) << 16);
    entry(&mut t, 0x8769, 4, 1, exif_ifd as u32);
    entry(&mut t, 0x8825, 4, 1, gps_ifd as u32);
    t.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(t.len(), exif_ifd);
    t.extend_from_slice(&1u16.to_be_bytes());
    entry(&mut t, 0xA431, 2, serial.len() as u32, serial_at as u32);
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(serial);
    if serial.len() % 2 == 1 {
        t.push(0);
    }
    assert_eq!(t.len(), gps_ifd);
    t.extend_from_slice(&3u16.to_be_bytes());
    entry(&mut t, 0x0001, 2, 2, u32::from_be_bytes(*b"N\0\0\0"));
    entry(&mut t, 0x0002, 5, 3, lat_at as u32);
    entry(&mut t, 0x0012, 2, datum.len() as u32, datum_at as u32);
    t.extend_from_slice(&0u32.to_be_bytes());
    for (num, den) in [(52u32, 1u32), (22, 1), (1234, 100)] {
        t.extend_from_slice(&num.to_be_bytes());
        t.extend_from_slice(&den.to_be_bytes());
    }
    t.extend_from_slice(datum);

    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&t);
    let mut seg = vec![0xFF, 0xE1];
    seg.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    seg.extend_from_slice(&payload);
    seg
}

/// Inserts a segment right after SOI (before JFIF APP0 too, as many cameras do).
pub fn with_segment(jpeg: &[u8], segment: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(segment);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A segment of the given marker with arbitrary payload.
pub fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut seg = vec![0xFF, marker];
    seg.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    seg.extend_from_slice(payload);
    seg
}

/// Markers of a JPEG up to and including the first SOS, with their payloads.
pub fn markers(jpeg: &[u8]) -> Vec<(u8, Vec<u8>)> {
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "output must start with SOI");
    assert_eq!(
        &jpeg[jpeg.len() - 2..],
        &[0xFF, 0xD9],
        "output must end with EOI"
    );
    let mut out = Vec::new();
    let mut pos = 2;
    loop {
        assert_eq!(jpeg[pos], 0xFF, "marker expected at {pos}");
        let marker = jpeg[pos + 1];
        let len = u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]) as usize;
        out.push((marker, jpeg[pos + 4..pos + 2 + len].to_vec()));
        pos += 2 + len;
        if marker == 0xDA {
            return out;
        }
    }
}

/// Asserts an output JPEG is baseline, carries at most a JFIF APP0 and no other
/// metadata, and (optionally) uses 4:2:0 chroma subsampling.
pub fn assert_clean_jpeg(jpeg: &[u8], expect_420: bool) {
    let ms = markers(jpeg);
    for (m, payload) in &ms {
        match m {
            0xE0 => assert!(payload.starts_with(b"JFIF\0"), "APP0 must be JFIF"),
            0xE1..=0xEF => panic!("metadata segment APP{} present", m - 0xE0),
            0xFE => panic!("comment segment present"),
            0xC1..=0xCF if *m != 0xC4 && *m != 0xCC => {
                panic!("not a baseline JPEG: SOF marker {m:#x}")
            }
            _ => {}
        }
    }
    let sof = &ms
        .iter()
        .find(|(m, _)| *m == 0xC0)
        .expect("baseline SOF0")
        .1;
    if expect_420 {
        assert_eq!(sof[5], 3, "three components");
        assert_eq!(sof[7], 0x22, "luma sampled 2x2 (4:2:0)");
        assert_eq!(sof[10], 0x11);
        assert_eq!(sof[13], 0x11);
    }
}

pub fn decode(jpeg: &[u8]) -> RgbImage {
    image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg)
        .expect("output decodes")
        .into_rgb8()
}

/// Mean colour of a square of side 2r+1 around (cx, cy).
pub fn mean(img: &RgbImage, cx: u32, cy: u32, r: u32) -> [f64; 3] {
    let mut sum = [0.0; 3];
    let mut n = 0.0;
    for y in cy.saturating_sub(r)..=(cy + r).min(img.height() - 1) {
        for x in cx.saturating_sub(r)..=(cx + r).min(img.width() - 1) {
            let p = img.get_pixel(x, y);
            for c in 0..3 {
                sum[c] += f64::from(p[c]);
            }
            n += 1.0;
        }
    }
    sum.map(|s| s / n)
}

/// Asserts the four quadrants of an upright [`quadrants`] picture: top-left red, top-right
/// green, bottom-left blue, bottom-right yellow.
pub fn assert_quadrants(img: &RgbImage, what: &str) {
    let (w, h) = img.dimensions();
    let r = w / 10;
    let tl = mean(img, w / 4, h / 4, r);
    let tr = mean(img, 3 * w / 4, h / 4, r);
    let bl = mean(img, w / 4, 3 * h / 4, r);
    let br = mean(img, 3 * w / 4, 3 * h / 4, r);
    let red = |c: [f64; 3]| c[0] > 150.0 && c[1] < 110.0 && c[2] < 110.0;
    let green = |c: [f64; 3]| c[1] > 130.0 && c[0] < 110.0 && c[2] < 110.0;
    let blue = |c: [f64; 3]| c[2] > 150.0 && c[0] < 110.0 && c[1] < 130.0;
    let yellow = |c: [f64; 3]| c[0] > 150.0 && c[1] > 150.0 && c[2] < 110.0;
    assert!(red(tl), "{what}: top-left should be red, got {tl:?}");
    assert!(green(tr), "{what}: top-right should be green, got {tr:?}");
    assert!(blue(bl), "{what}: bottom-left should be blue, got {bl:?}");
    assert!(
        yellow(br),
        "{what}: bottom-right should be yellow, got {br:?}"
    );
}

pub fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let mse: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.as_raw().len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}
