//! The fast path: libjpeg-turbo with DCT scaling, SIMD resizing, libjpeg-turbo encoding.

use std::cmp::Reverse;

use fast_image_resize as fir;
use fir::images::{Image as FirImage, ImageRef as FirImageRef};
use fir::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use turbojpeg::{Compressor, Decompressor, PixelFormat, ScalingFactor, Subsamp, YuvImage};

use crate::common::{
    centre_crop, check_input, decode_other, displayed, flatten_on_white, orient, short, transposes,
};
use crate::jpeg::JpegInfo;
use crate::{Config, Format, ImageError, Processed, Rendition};

/// Buffers above this size are released after a photo rather than kept for the next one.
const KEEP_BUFFER_BYTES: usize = 48 * 1024 * 1024;

/// Most scans accepted in a progressive JPEG (a defence against crafted files).
const MAX_SCANS: u32 = 500;

/// DCT scaling numerators (over 8) tried, smallest first, when decoding to YCbCr planes.
const SCALES_YUV: [usize; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

/// The same when decoding to RGB. libjpeg-turbo has SIMD inverse DCTs for 1/8, 1/4, 1/2
/// and 1 only; with RGB output the others also decode chroma through plain-C 12×12 and
/// similar IDCTs, which measured slower than decoding at the next SIMD size up and
/// letting the resizer do the rest. (Planar output has no such penalty: there 3/4 for a
/// 640×800 photo, which yields exactly 480×600, was 17% faster than 1/1 on an Intel Xeon; on an
/// AMD EPYC 1/1 decodes faster, but the resize to 480×600 it then needs costs more: whole
/// photos, 3/4 made 1.2–1.5× as many per second.)
const SCALES_RGB: [usize; 4] = [1, 2, 4, 8];

/// Catmull-Rom: as sharp as Lanczos3 to the eye at these ratios, with two thirds of the
/// taps and no trigonometry when the filter weights are built.
const FILTER: ResizeAlg = ResizeAlg::Convolution(FilterType::CatmullRom);

/// Reusable per-thread state for the fast path: the libjpeg-turbo decompressor and
/// compressor, the resizer and every intermediate buffer. Create one per worker thread
/// and feed it photos one after the other.
pub struct Processor {
    config: Config,
    decompressor: Option<Decompressor>,
    compressor: Option<Compressor>,
    resizer: Resizer,
    /// Decoded (and for JPEG, DCT-scaled) source pixels, packed RGB8 as stored.
    decoded: Vec<u8>,
    work: Work,
}

/// How the fast path decodes one JPEG ([`Processor::jpeg_decode_plan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodePlan {
    /// The DCT scale, numerator and denominator.
    pub scale: (usize, usize),
    /// To YCbCr planes (`true`) or packed RGB.
    pub planar: bool,
    /// MCUs between the file's restart markers, 0 without them: only with them could one
    /// photo's entropy-coded data be split between cores.
    pub restart_interval: u16,
}

#[derive(Default)]
struct Work {
    /// Largest rendition before orientation is applied.
    stage: Vec<u8>,
    /// One RGB8 buffer per rendition, largest first.
    levels: Vec<Vec<u8>>,
    /// Scratch output of the JPEG compressor.
    encoded: Vec<u8>,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn internal(what: &str) -> impl Fn(String) -> ImageError + '_ {
    move |e| ImageError::Internal(format!("{what}: {e}"))
}

fn new_compressor(quality: u8) -> Result<Compressor, turbojpeg::Error> {
    let mut c = Compressor::new()?;
    c.set_quality(i32::from(quality.clamp(1, 100)))?;
    c.set_subsamp(Subsamp::Sub2x2)?;
    // Optimised Huffman tables save ~5% of size but cost a fifth of the encode time.
    c.set_optimize(false)?;
    c.set_progressive(false)?;
    Ok(c)
}

fn new_decompressor() -> Result<Decompressor, turbojpeg::Error> {
    let mut d = Decompressor::new()?;
    d.set_scan_limit(MAX_SCANS)?;
    Ok(d)
}

impl Processor {
    /// Creates the reusable state for `config`.
    pub fn new(config: Config) -> Self {
        let compressor = new_compressor(config.jpeg_quality).ok();
        Processor {
            config,
            decompressor: new_decompressor().ok(),
            compressor,
            resizer: Resizer::new(),
            decoded: Vec::new(),
            work: Work::default(),
        }
    }

    /// The configuration this processor was created with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Processes one photo into every configured rendition.
    pub fn process(&mut self, bytes: &[u8]) -> Result<Processed, ImageError> {
        let result = self.process_inner(bytes);
        if self.decoded.capacity() > KEEP_BUFFER_BYTES {
            self.decoded = Vec::new();
        }
        result
    }

    fn process_inner(&mut self, bytes: &[u8]) -> Result<Processed, ImageError> {
        let (format, jpeg_info) = check_input(&self.config, bytes)?;
        let (decoded, orientation, source) = match jpeg_info {
            Some(info) => {
                let decoded = self.decode_jpeg(bytes, &info);
                if decoded.is_err() {
                    // libjpeg-turbo can keep state from a failed decode that breaks the
                    // next one; start afresh (errors are rare, a new handle is cheap).
                    self.decompressor = None;
                }
                let source = displayed(info.width, info.height, info.orientation);
                (decoded?, info.orientation, source)
            }
            None => {
                let (img, orientation) = decode_other(format, bytes, &self.config.limits)?;
                let (rgb, w, h) = flatten_on_white(img);
                self.decoded = rgb;
                (
                    Decoded::Rgb(w, h),
                    orientation,
                    displayed(w, h, orientation),
                )
            }
        };
        if self.compressor.is_none() {
            self.compressor = Some(
                new_compressor(self.config.jpeg_quality)
                    .map_err(|e| ImageError::Internal(format!("JPEG encoder: {e}")))?,
            );
        }
        let Some(compressor) = self.compressor.as_mut() else {
            return Err(ImageError::Internal("JPEG encoder unavailable".into()));
        };
        let renditions = match decoded {
            Decoded::Rgb(width, height) => render(
                &self.config,
                &mut self.resizer,
                compressor,
                &mut self.work,
                &self.decoded,
                width,
                height,
                orientation,
            )?,
            Decoded::Yuv(planes) => render_yuv(
                &self.config,
                &mut self.resizer,
                compressor,
                &mut self.work,
                &self.decoded,
                &planes,
                orientation,
            )?,
        };
        Ok(Processed {
            format,
            source_width: source.0,
            source_height: source.1,
            orientation,
            renditions,
        })
    }

    /// How this processor would decode a JPEG; for measuring the decoder alone.
    pub fn jpeg_decode_plan(&self, bytes: &[u8]) -> Result<DecodePlan, ImageError> {
        let (_, Some(info)) = check_input(&self.config, bytes)? else {
            return Err(ImageError::Internal("not a JPEG".into()));
        };
        let header = new_decompressor()
            .and_then(|mut dec| dec.read_header(bytes))
            .map_err(decode_error)?;
        let (scale, planar) = decode_plan(&self.config, &header, &info);
        Ok(DecodePlan {
            scale: (scale.num(), scale.denom()),
            planar,
            restart_interval: info.restart_interval,
        })
    }

    /// Decodes a JPEG into `self.decoded`, DCT-scaled down as far as the largest rendition
    /// allows: as YCbCr planes when they can go straight to the encoder, otherwise as
    /// packed RGB8. Sizes are in the stored orientation.
    fn decode_jpeg(&mut self, bytes: &[u8], info: &JpegInfo) -> Result<Decoded, ImageError> {
        if self.decompressor.is_none() {
            self.decompressor = Some(
                new_decompressor()
                    .map_err(|e| ImageError::Internal(format!("JPEG decoder: {e}")))?,
            );
        }
        let Some(dec) = self.decompressor.as_mut() else {
            return Err(ImageError::Internal("JPEG decoder unavailable".into()));
        };
        let header = dec.read_header(bytes).map_err(decode_error)?;
        let (scale, planar) = decode_plan(&self.config, &header, info);
        dec.set_scaling_factor(scale)
            .map_err(|e| ImageError::Internal(format!("JPEG decoder scaling: {e}")))?;
        let scaled = header.scaled(scale);
        let (w, h) = (scaled.width, scaled.height);
        let to_u32 = |v: usize| u32::try_from(v).map_err(|e| ImageError::Internal(e.to_string()));
        if let Some(planes) = planar.then(|| yuv_planes(&header.subsamp, w, h)).flatten() {
            self.decoded.resize(planes.len(), 0);
            let output = YuvImage {
                pixels: &mut self.decoded[..],
                width: w,
                align: 1,
                height: h,
                subsamp: header.subsamp,
            };
            if let Err(e) = dec.decompress_to_yuv(bytes, output)
                && let Some(err) = decode_failure(e)
            {
                return Err(err);
            }
            return Ok(Decoded::Yuv(planes));
        }
        let cmyk = info.components == 4;
        let (format, bpp) = if cmyk {
            (PixelFormat::CMYK, 4)
        } else {
            (PixelFormat::RGB, 3)
        };
        // Every byte is overwritten by the decoder; only growth needs filling.
        self.decoded.resize(w * h * bpp, 0);
        let output = turbojpeg::Image {
            pixels: &mut self.decoded[..],
            width: w,
            pitch: w * bpp,
            height: h,
            format,
        };
        if let Err(e) = dec.decompress(bytes, output)
            && let Some(err) = decode_failure(e)
        {
            return Err(err);
        }
        if cmyk {
            cmyk_to_rgb_in_place(&mut self.decoded);
        }
        Ok(Decoded::Rgb(to_u32(w)?, to_u32(h)?))
    }
}

/// What [`Processor::decode_jpeg`] left in the decode buffer.
enum Decoded {
    /// Packed RGB8 of this width and height.
    Rgb(u32, u32),
    /// Planar YCbCr as libjpeg-turbo lays it out with 1-byte row alignment.
    Yuv(Planes),
}

/// Geometry of planar YCbCr: Y, then Cb, then Cr, each plane's rows contiguous.
#[derive(Debug, Clone, Copy)]
struct Planes {
    /// Picture width and height (the luma plane may be padded past them).
    width: u32,
    height: u32,
    /// Luma plane size, padded to whole chroma samples.
    luma: (u32, u32),
    /// Size of each chroma plane.
    chroma: (u32, u32),
}

impl Planes {
    /// 4:2:0 planes for an even-sized output picture.
    fn output(width: u32, height: u32) -> Planes {
        Planes {
            width,
            height,
            luma: (width, height),
            chroma: (width / 2, height / 2),
        }
    }

    fn size(&self, plane: usize) -> (u32, u32) {
        if plane == 0 { self.luma } else { self.chroma }
    }

    fn range(&self, plane: usize) -> std::ops::Range<usize> {
        let luma = self.luma.0 as usize * self.luma.1 as usize;
        let chroma = self.chroma.0 as usize * self.chroma.1 as usize;
        match plane {
            0 => 0..luma,
            1 => luma..luma + chroma,
            _ => luma + chroma..luma + 2 * chroma,
        }
    }

    fn len(&self) -> usize {
        self.range(2).end
    }
}

/// Whether this photo can stay in YCbCr planes from decoder to encoder. CMYK and grey
/// sources, rare subsamplings and odd-sized renditions (4:2:0 output needs even sizes)
/// take the RGB route instead.
fn prefers_yuv(config: &Config, info: &JpegInfo, subsamp: &Subsamp) -> bool {
    info.components == 3
        && matches!(
            subsamp,
            Subsamp::Sub2x2 | Subsamp::Sub2x1 | Subsamp::Sub1x2 | Subsamp::None
        )
        && config
            .renditions
            .iter()
            .all(|r| r.width % 2 == 0 && r.height % 2 == 0)
}

/// The plane layout libjpeg-turbo will produce for a `width`×`height` (scaled) decode,
/// or `None` if it cannot be worked out.
fn yuv_planes(subsamp: &Subsamp, width: usize, height: usize) -> Option<Planes> {
    let (fx, fy) = (subsamp.width(), subsamp.height());
    let luma = (width.div_ceil(fx) * fx, height.div_ceil(fy) * fy);
    let chroma = (luma.0 / fx, luma.1 / fy);
    let planes = Planes {
        width: u32::try_from(width).ok()?,
        height: u32::try_from(height).ok()?,
        luma: (u32::try_from(luma.0).ok()?, u32::try_from(luma.1).ok()?),
        chroma: (u32::try_from(chroma.0).ok()?, u32::try_from(chroma.1).ok()?),
    };
    // Trust our arithmetic only where libjpeg-turbo agrees with it.
    let expected = turbojpeg::yuv_pixels_len(width, 1, height, *subsamp).ok()?;
    (planes.len() == expected).then_some(planes)
}

/// The DCT scale a JPEG is decoded at, the smallest that still covers the largest rendition
/// (lossless JPEGs cannot be scaled), and whether to YCbCr planes.
fn decode_plan(
    config: &Config,
    header: &turbojpeg::DecompressHeader,
    info: &JpegInfo,
) -> (ScalingFactor, bool) {
    let planar = prefers_yuv(config, info, &header.subsamp);
    if header.is_lossless {
        return (ScalingFactor::ONE, planar);
    }
    let (target_w, target_h) = config
        .renditions
        .iter()
        .map(|s| (s.width, s.height))
        .max_by_key(|&(w, h)| u64::from(w) * u64::from(h))
        .unwrap_or((1, 1));
    let scale = choose_scale(
        if planar { &SCALES_YUV } else { &SCALES_RGB },
        header.width,
        header.height,
        transposes(info.orientation),
        target_w,
        target_h,
    );
    (scale, planar)
}

/// The smallest DCT scale among `scales` (numerators over 8) whose 4:5 centre crop still covers the
/// largest rendition, so the resizer never has to enlarge what the decoder shrank.
fn choose_scale(
    scales: &[usize],
    width: usize,
    height: usize,
    transposed: bool,
    target_w: u32,
    target_h: u32,
) -> ScalingFactor {
    let (tw, th, aw, ah) = if transposed {
        (target_h, target_w, 5.0, 4.0)
    } else {
        (target_w, target_h, 4.0, 5.0)
    };
    for &num in scales {
        let factor = ScalingFactor::new(num, 8);
        let [_, _, cw, ch] = centre_crop(
            factor.scale(width) as f64,
            factor.scale(height) as f64,
            aw,
            ah,
        );
        // The tolerance absorbs floating point error on exact fits such as 640×800 at 3/4.
        if cw + 1e-6 >= f64::from(tw) && ch + 1e-6 >= f64::from(th) {
            return factor;
        }
    }
    ScalingFactor::ONE
}

/// Sorts libjpeg-turbo's complaints: `None` for harmless warnings (the image was fully
/// decoded), otherwise the error to report.
fn decode_failure(err: turbojpeg::Error) -> Option<ImageError> {
    let turbojpeg::Error::TurboJpegError(msg) = err else {
        return Some(ImageError::Internal(format!("JPEG decoder: {err}")));
    };
    const HARMLESS: [&str; 4] = [
        "extraneous bytes before marker",
        "Unknown Adobe color transform",
        "unknown JFIF revision",
        "bad ICC marker",
    ];
    if HARMLESS.iter().any(|h| msg.contains(h)) {
        return None;
    }
    Some(decode_error(turbojpeg::Error::TurboJpegError(msg)))
}

fn decode_error(err: turbojpeg::Error) -> ImageError {
    match err {
        turbojpeg::Error::TurboJpegError(msg) if msg.contains("Premature end of JPEG file") => {
            ImageError::Truncated {
                format: Format::Jpeg,
            }
        }
        turbojpeg::Error::TurboJpegError(msg) => ImageError::Corrupt {
            format: Format::Jpeg,
            detail: short(&msg),
        },
        other => ImageError::Internal(format!("JPEG decoder: {other}")),
    }
}

/// Adobe CMYK/YCCK JPEGs store inverted ink values: R = C·K/255 and so on.
fn cmyk_to_rgb_in_place(buf: &mut Vec<u8>) {
    let pixels = buf.len() / 4;
    for i in 0..pixels {
        let s = i * 4;
        let (c, m, y, k) = (
            u32::from(buf[s]),
            u32::from(buf[s + 1]),
            u32::from(buf[s + 2]),
            u32::from(buf[s + 3]),
        );
        let d = i * 3;
        buf[d] = ((c * k + 127) / 255) as u8;
        buf[d + 1] = ((m * k + 127) / 255) as u8;
        buf[d + 2] = ((y * k + 127) / 255) as u8;
    }
    buf.truncate(pixels * 3);
}

/// Crop, resize, orient and encode every rendition from a packed RGB8 source as stored.
#[allow(clippy::too_many_arguments)]
fn render(
    config: &Config,
    resizer: &mut Resizer,
    compressor: &mut Compressor,
    work: &mut Work,
    src: &[u8],
    width: u32,
    height: u32,
    orientation: u16,
) -> Result<Vec<Rendition>, ImageError> {
    let specs = &config.renditions;
    let mut order: Vec<usize> = (0..specs.len()).collect();
    order.sort_by_key(|&i| Reverse(u64::from(specs[i].width) * u64::from(specs[i].height)));
    if work.levels.len() < specs.len() {
        work.levels.resize_with(specs.len(), Vec::new);
    }
    let source = FirImageRef::new(width, height, src, PixelType::U8x3)
        .map_err(|e| ImageError::Internal(format!("resizer source: {e}")))?;
    let transposed = transposes(orientation);
    let (aw, ah) = if transposed { (5.0, 4.0) } else { (4.0, 5.0) };
    let [left, top, cw, ch] = centre_crop(f64::from(width), f64::from(height), aw, ah);
    let crop = ResizeOptions::new()
        .resize_alg(FILTER)
        .crop(left, top, cw, ch);
    let plain = ResizeOptions::new().resize_alg(FILTER);

    let mut out: Vec<Option<Rendition>> = vec![None; specs.len()];
    let mut previous: Option<(usize, u32, u32)> = None;
    for (k, &i) in order.iter().enumerate() {
        let (tw, th) = (specs[i].width, specs[i].height);
        let (done, rest) = work.levels.split_at_mut(k);
        let level = &mut rest[0];
        level.resize(tw as usize * th as usize * 3, 0);
        match previous {
            // Smaller renditions come from the previous, already cropped and upright one.
            Some((pk, pw, ph)) if pw >= tw && ph >= th => {
                let from = FirImageRef::new(pw, ph, &done[pk], PixelType::U8x3)
                    .map_err(|e| ImageError::Internal(format!("resizer source: {e}")))?;
                let mut to = FirImage::from_slice_u8(tw, th, level, PixelType::U8x3)
                    .map_err(|e| ImageError::Internal(format!("resizer target: {e}")))?;
                resizer
                    .resize(&from, &mut to, &plain)
                    .map_err(|e| internal("resizer")(e.to_string()))?;
            }
            _ if orientation == 1 => {
                let mut to = FirImage::from_slice_u8(tw, th, level, PixelType::U8x3)
                    .map_err(|e| ImageError::Internal(format!("resizer target: {e}")))?;
                resizer
                    .resize(&source, &mut to, &crop)
                    .map_err(|e| internal("resizer")(e.to_string()))?;
            }
            _ => {
                // Resize in the stored orientation, then turn only the small result upright.
                let (sw, sh) = if transposed { (th, tw) } else { (tw, th) };
                work.stage.resize(sw as usize * sh as usize * 3, 0);
                let mut to = FirImage::from_slice_u8(sw, sh, &mut work.stage, PixelType::U8x3)
                    .map_err(|e| ImageError::Internal(format!("resizer target: {e}")))?;
                resizer
                    .resize(&source, &mut to, &crop)
                    .map_err(|e| internal("resizer")(e.to_string()))?;
                orient::<3>(&work.stage, sw as usize, sh as usize, orientation, level);
            }
        }
        let jpeg = encode(compressor, &mut work.encoded, level, tw, th)?;
        out[i] = Some(Rendition {
            name: specs[i].name.clone(),
            width: tw,
            height: th,
            jpeg,
        });
        previous = Some((k, tw, th));
    }
    Ok(out.into_iter().flatten().collect())
}

fn encode(
    compressor: &mut Compressor,
    scratch: &mut Vec<u8>,
    pixels: &[u8],
    width: u32,
    height: u32,
) -> Result<Vec<u8>, ImageError> {
    let (w, h) = (width as usize, height as usize);
    let need = compressor
        .buf_len(w, h)
        .map_err(|e| ImageError::Internal(format!("JPEG encoder: {e}")))?;
    if scratch.len() < need {
        scratch.resize(need, 0);
    }
    let image = turbojpeg::Image {
        pixels,
        width: w,
        pitch: w * 3,
        height: h,
        format: PixelFormat::RGB,
    };
    let n = compressor
        .compress_to_slice(image, scratch)
        .map_err(|e| ImageError::Internal(format!("JPEG encoder: {e}")))?;
    Ok(scratch[..n].to_vec())
}

/// The YCbCr twin of [`render`]: each plane is cropped and resized on its own (chroma at
/// its own resolution), turned upright, and handed to the encoder as 4:2:0 planes, so
/// there is no colour conversion or chroma resampling between decoder and encoder.
fn render_yuv(
    config: &Config,
    resizer: &mut Resizer,
    compressor: &mut Compressor,
    work: &mut Work,
    src: &[u8],
    planes: &Planes,
    orientation: u16,
) -> Result<Vec<Rendition>, ImageError> {
    let specs = &config.renditions;
    let mut order: Vec<usize> = (0..specs.len()).collect();
    order.sort_by_key(|&i| Reverse(u64::from(specs[i].width) * u64::from(specs[i].height)));
    if work.levels.len() < specs.len() {
        work.levels.resize_with(specs.len(), Vec::new);
    }
    let transposed = transposes(orientation);
    let (aw, ah) = if transposed { (5.0, 4.0) } else { (4.0, 5.0) };
    let [left, top, cw, ch] =
        centre_crop(f64::from(planes.width), f64::from(planes.height), aw, ah);
    let plain = ResizeOptions::new().resize_alg(FILTER);
    let resize_err = |e: String| ImageError::Internal(format!("resizer: {e}"));

    let mut out: Vec<Option<Rendition>> = vec![None; specs.len()];
    let mut previous: Option<(usize, Planes)> = None;
    for (k, &i) in order.iter().enumerate() {
        let (tw, th) = (specs[i].width, specs[i].height);
        let target = Planes::output(tw, th);
        let (done, rest) = work.levels.split_at_mut(k);
        let level = &mut rest[0];
        level.resize(target.len(), 0);
        match previous {
            Some((pk, prev)) if prev.width >= tw && prev.height >= th => {
                for p in 0..3 {
                    let (sw, sh) = prev.size(p);
                    let (dw, dh) = target.size(p);
                    let from = FirImageRef::new(sw, sh, &done[pk][prev.range(p)], PixelType::U8)
                        .map_err(|e| resize_err(e.to_string()))?;
                    let mut to =
                        FirImage::from_slice_u8(dw, dh, &mut level[target.range(p)], PixelType::U8)
                            .map_err(|e| resize_err(e.to_string()))?;
                    resizer
                        .resize(&from, &mut to, &plain)
                        .map_err(|e| resize_err(e.to_string()))?;
                }
            }
            _ => {
                let stored = if transposed {
                    Planes::output(th, tw)
                } else {
                    target
                };
                let dst: &mut Vec<u8> = if orientation == 1 {
                    &mut *level
                } else {
                    work.stage.resize(stored.len(), 0);
                    &mut work.stage
                };
                for p in 0..3 {
                    let (sw, sh) = planes.size(p);
                    // Plane coordinates: chroma planes cover the picture at lower resolution.
                    let fx = f64::from(sw) / f64::from(planes.luma.0);
                    let fy = f64::from(sh) / f64::from(planes.luma.1);
                    let crop = plain.crop(left * fx, top * fy, cw * fx, ch * fy);
                    let (dw, dh) = stored.size(p);
                    let from = FirImageRef::new(sw, sh, &src[planes.range(p)], PixelType::U8)
                        .map_err(|e| resize_err(e.to_string()))?;
                    let mut to =
                        FirImage::from_slice_u8(dw, dh, &mut dst[stored.range(p)], PixelType::U8)
                            .map_err(|e| resize_err(e.to_string()))?;
                    resizer
                        .resize(&from, &mut to, &crop)
                        .map_err(|e| resize_err(e.to_string()))?;
                }
                if orientation != 1 {
                    for p in 0..3 {
                        let (sw, sh) = stored.size(p);
                        orient::<1>(
                            &work.stage[stored.range(p)],
                            sw as usize,
                            sh as usize,
                            orientation,
                            &mut level[target.range(p)],
                        );
                    }
                }
            }
        }
        let jpeg = encode_yuv(compressor, &mut work.encoded, level, tw, th)?;
        out[i] = Some(Rendition {
            name: specs[i].name.clone(),
            width: tw,
            height: th,
            jpeg,
        });
        previous = Some((k, target));
    }
    Ok(out.into_iter().flatten().collect())
}

fn encode_yuv(
    compressor: &mut Compressor,
    scratch: &mut Vec<u8>,
    planes: &[u8],
    width: u32,
    height: u32,
) -> Result<Vec<u8>, ImageError> {
    let (w, h) = (width as usize, height as usize);
    let need = compressor
        .buf_len(w, h)
        .map_err(|e| ImageError::Internal(format!("JPEG encoder: {e}")))?;
    if scratch.len() < need {
        scratch.resize(need, 0);
    }
    let image = YuvImage {
        pixels: planes,
        width: w,
        align: 1,
        height: h,
        subsamp: Subsamp::Sub2x2,
    };
    let n = compressor
        .compress_yuv_to_slice(image, scratch)
        .map_err(|e| ImageError::Internal(format!("JPEG encoder: {e}")))?;
    Ok(scratch[..n].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processor_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<Processor>();
    }

    #[test]
    fn picks_the_smallest_sufficient_dct_scale() {
        let s = |w, h, t| {
            let f = choose_scale(&SCALES_YUV, w, h, t, 480, 600);
            (f.num(), f.denom())
        };
        assert_eq!(s(2400, 3000, false), (1, 4));
        assert_eq!(s(3000, 2400, true), (1, 4));
        assert_eq!(s(640, 800, false), (3, 4));
        assert_eq!(s(1200, 1500, false), (1, 2));
        assert_eq!(s(1000, 1250, false), (1, 2)); // 500×625
        let rgb = choose_scale(&SCALES_RGB, 640, 800, false, 480, 600);
        assert_eq!((rgb.num(), rgb.denom()), (1, 1));
        assert_eq!(s(4000, 3000, false), (1, 4)); // crop 2400×3000 → 600×750
        assert_eq!(s(300, 400, false), (1, 1)); // upscaled later
        assert_eq!(s(6000, 8000, false), (1, 8));
    }
}
