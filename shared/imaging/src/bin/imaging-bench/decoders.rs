//! `--decoders`: the JPEG decoders alone, one core, on the same corpus. For large photos
//! decoding is most of the image stage, so this is where another decoder would have to win:
//! libjpeg-turbo as the fast path runs it (DCT-scaled), libjpeg-turbo at full size, and
//! zune-jpeg (a pure-Rust decoder with SIMD Huffman and IDCT paths, full size only: it has no
//! DCT scaling).

use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use pictureday_imaging::{Config, DecodePlan, Processor};
use turbojpeg::{Decompressor, PixelFormat, ScalingFactor, YuvImage};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;

use super::PASSES;

/// One way of decoding the `i`th JPEG held in memory; returns the bytes it produced.
type Decode<'a> = Box<dyn FnMut(usize, &[u8]) -> Result<usize, String> + 'a>;

/// Prints, for `files`, each decoder's milliseconds per photo (best of [`PASSES`]) and its
/// ratio to libjpeg-turbo as the fast path runs it.
pub fn compare(files: &[PathBuf]) -> Result<(), String> {
    let inputs: Vec<Vec<u8>> = files
        .iter()
        .map(|p| fs::read(p).map_err(|e| format!("{}: {e}", p.display())))
        .collect::<Result<_, _>>()?;
    let config = Config::default();
    let mut processor = Processor::new(config.clone());
    let plans: Vec<DecodePlan> = inputs
        .iter()
        .map(|bytes| processor.jpeg_decode_plan(bytes).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let with_restarts = plans.iter().filter(|p| p.restart_interval > 0).count();
    let described: std::collections::BTreeSet<String> = plans
        .iter()
        .map(|p| {
            format!(
                "{}/{} to {}",
                p.scale.0,
                p.scale.1,
                if p.planar { "YCbCr planes" } else { "RGB" }
            )
        })
        .collect();

    let mut turbo = Decompressor::new().map_err(|e| e.to_string())?;
    let mut scaled_out = Vec::new();
    let as_ours: Decode = Box::new(move |i, bytes| {
        let plan = *plans.get(i).ok_or("no decode plan for this photo")?;
        let (num, den) = plan.scale;
        turbo_decode(
            &mut turbo,
            &mut scaled_out,
            bytes,
            ScalingFactor::new(num, den),
            plan.planar,
        )
    });
    let mut turbo_full = Decompressor::new().map_err(|e| e.to_string())?;
    let mut full_out = Vec::new();
    let turbo_one: Decode = Box::new(move |_, bytes| {
        turbo_decode(
            &mut turbo_full,
            &mut full_out,
            bytes,
            ScalingFactor::ONE,
            true,
        )
    });
    let mut zune_out = Vec::new();
    let zune_ycbcr: Decode =
        Box::new(move |_, bytes| zune_decode(&mut zune_out, bytes, ColorSpace::YCbCr));
    let mut zune_rgb_out = Vec::new();
    let zune_rgb: Decode =
        Box::new(move |_, bytes| zune_decode(&mut zune_rgb_out, bytes, ColorSpace::RGB));
    let whole: Decode = Box::new(move |_, bytes| {
        processor
            .process(bytes)
            .map(|p| p.renditions.iter().map(|r| r.jpeg.len()).sum())
            .map_err(|e| e.to_string())
    });

    let mut engines: Vec<(String, Decode)> = vec![
        (
            format!(
                "libjpeg-turbo as ours ({})",
                described.into_iter().collect::<Vec<_>>().join(", ")
            ),
            as_ours,
        ),
        ("libjpeg-turbo 1/1 to YCbCr planes".into(), turbo_one),
        ("zune-jpeg 1/1 to YCbCr".into(), zune_ycbcr),
        ("zune-jpeg 1/1 to RGB".into(), zune_rgb),
        ("ours, whole photo (3 renditions)".into(), whole),
    ];
    println!(
        "decoding alone, one core ({with_restarts} of {} photos have restart markers):",
        inputs.len()
    );
    println!("{:<58} {:>9} {:>10}", "decoder", "ms/photo", "/ as ours");
    let mut reference = None;
    for (name, decode) in &mut engines {
        let ms = best_ms_per_photo(&inputs, decode)?;
        let base = *reference.get_or_insert(ms);
        println!("{name:<58} {ms:>9.2} {:>9.2}×", ms / base);
    }
    Ok(())
}

/// Milliseconds per photo of the fastest of [`PASSES`] passes, after one untimed warm-up photo.
fn best_ms_per_photo(inputs: &[Vec<u8>], decode: &mut Decode) -> Result<f64, String> {
    if let Some(first) = inputs.first() {
        decode(0, first).map_err(|e| format!("warm-up: {e}"))?;
    }
    let mut best = f64::INFINITY;
    for _ in 0..PASSES {
        let started = Instant::now();
        let mut bytes = 0usize;
        for (i, input) in inputs.iter().enumerate() {
            bytes += decode(i, input)?;
        }
        // The output size is used, so no decoder's work can be optimised away.
        std::hint::black_box(bytes);
        best = best.min(started.elapsed().as_secs_f64());
    }
    Ok(best * 1000.0 / inputs.len().max(1) as f64)
}

fn turbo_decode(
    dec: &mut Decompressor,
    out: &mut Vec<u8>,
    bytes: &[u8],
    scale: ScalingFactor,
    planar: bool,
) -> Result<usize, String> {
    let header = dec.read_header(bytes).map_err(|e| e.to_string())?;
    dec.set_scaling_factor(scale).map_err(|e| e.to_string())?;
    let scaled = header.scaled(scale);
    if planar {
        let len = turbojpeg::yuv_pixels_len(scaled.width, 1, scaled.height, header.subsamp)
            .map_err(|e| e.to_string())?;
        out.resize(len, 0);
        let image = YuvImage {
            pixels: &mut out[..],
            width: scaled.width,
            align: 1,
            height: scaled.height,
            subsamp: header.subsamp,
        };
        dec.decompress_to_yuv(bytes, image)
            .map_err(|e| e.to_string())?;
    } else {
        out.resize(scaled.width * scaled.height * 3, 0);
        let image = turbojpeg::Image {
            pixels: &mut out[..],
            width: scaled.width,
            pitch: scaled.width * 3,
            height: scaled.height,
            format: PixelFormat::RGB,
        };
        dec.decompress(bytes, image).map_err(|e| e.to_string())?;
    }
    Ok(out.len())
}

fn zune_decode(out: &mut Vec<u8>, bytes: &[u8], colorspace: ColorSpace) -> Result<usize, String> {
    let options = DecoderOptions::default().jpeg_set_out_colorspace(colorspace);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(|e| e.to_string())?;
    let len = decoder
        .output_buffer_size()
        .ok_or("zune-jpeg: no output size")?;
    out.resize(len, 0);
    decoder.decode_into(out).map_err(|e| e.to_string())?;
    Ok(len)
}
