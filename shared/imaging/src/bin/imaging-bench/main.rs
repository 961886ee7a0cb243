//! Image stage benchmark: our fast `Processor` against the `image`-crate reference path,
//! `vipsthumbnail` (libvips) and sharp, single-threaded, on photo-like JPEGs.
//!
//! ```text
//! cargo run --release -p pictureday-imaging --bin imaging-bench -- [--count N] [--dir DIR]
//!     [--reference-count M] [--keep] [--decoders]
//! ```
//!
//! Without `--dir` it writes a corpus of `N` (default 20) 640×800 and `N` 2400×3000 q90
//! JPEGs with film grain, a third of them stored sideways or upside down with an EXIF
//! orientation, to a temporary folder (removed afterwards unless `--keep`). With `--dir`
//! it uses the JPEGs in that folder as one group.
//!
//! Each engine runs in its own process so that its peak RSS can be reported:
//! this binary re-runs itself with `--worker ours|reference`; `vipsthumbnail` and node
//! are watched through `/proc/PID/status` (VmHWM) / node's own `resourceUsage()`.
//! Run `scripts/bench-deps.sh` first to install vipsthumbnail and sharp; whatever is
//! missing is skipped and said so.
//!
//! `--decoders` compares the JPEG decoders alone instead (see `decoders.rs`), on the two
//! corpora and a third of 12-megapixel (3000×4000) photos.

mod decoders;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use image::RgbImage;
use pictureday_imaging::{Config, Processor, process_reference};

/// Timed passes over the corpus per engine (the reference path gets one); the fastest
/// pass is reported.
const PASSES: usize = 3;

const SIZES: [(&str, u32, u32); 3] = [
    ("large", 480, 600),
    ("medium", 240, 300),
    ("small", 96, 120),
];

struct Args {
    count: usize,
    dir: Option<PathBuf>,
    reference_count: usize,
    keep: bool,
    worker: Option<String>,
    input: Option<PathBuf>,
    out: Option<PathBuf>,
    decoders: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        count: 20,
        dir: None,
        reference_count: 5,
        keep: false,
        worker: None,
        input: None,
        out: None,
        decoders: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--count" => args.count = value()?.parse().map_err(|e| format!("--count: {e}"))?,
            "--reference-count" => {
                args.reference_count = value()?
                    .parse()
                    .map_err(|e| format!("--reference-count: {e}"))?
            }
            "--dir" => args.dir = Some(PathBuf::from(value()?)),
            "--keep" => args.keep = true,
            "--decoders" => args.decoders = true,
            "--worker" => args.worker = Some(value()?),
            "--in" => args.input = Some(PathBuf::from(value()?)),
            "--out" => args.out = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                println!(
                    "imaging-bench [--count N] [--dir DIR] [--reference-count M] [--keep] [--decoders]\n\
                     Benchmarks the image stage against the reference path, vipsthumbnail and sharp;\n\
                     --decoders: the JPEG decoders alone (libjpeg-turbo as ours runs it, at full size, zune-jpeg)."
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.count == 0 {
        return Err("--count must be at least 1".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let result = parse_args().and_then(|args| match args.worker.clone() {
        Some(engine) => worker(&engine, &args),
        None => run(&args),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("imaging-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------- corpus

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }
    fn grain(&mut self, amp: u32) -> i32 {
        (self.next() % (amp + 1)) as i32 - (self.next() % (amp + 1)) as i32
    }
}

/// A portrait-like photo: background gradients and texture, a lit oval face with
/// shading, a darker "shirt", film grain. Never flat colour.
fn photo(width: u32, height: u32, seed: u64) -> RgbImage {
    let mut rng = Lcg(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let (w, h) = (width as f32, height as f32);
    let hue = (seed % 5) as f32 * 0.2;
    RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32 / w, y as f32 / h);
        let dx = (fx - 0.5) / 0.2;
        let dy = (fy - 0.42) / 0.26;
        let face = (1.0 - (dx * dx + dy * dy)).clamp(0.0, 1.0).sqrt();
        let shirt = if fy > 0.75 && (fx - 0.5).abs() < 0.45 - (fy - 0.75) * -0.6 {
            1.0
        } else {
            0.0
        };
        let texture = ((fx * 40.0 + hue).sin() * (fy * 23.0).cos()) * 10.0;
        let bg = [
            70.0 + 80.0 * fx + 40.0 * hue + texture,
            90.0 + 60.0 * fy + texture,
            150.0 - 50.0 * fx + texture,
        ];
        let skin = [
            220.0 - 30.0 * dx.abs(),
            175.0 - 25.0 * dy.abs(),
            145.0 - 20.0 * dx.abs(),
        ];
        let cloth = [40.0 + 30.0 * hue, 50.0, 90.0 - 20.0 * fy];
        let g = rng.grain(12) as f32;
        let px = |c: usize| {
            let v = bg[c] * (1.0 - face) + skin[c] * face;
            let v = v * (1.0 - shirt) + cloth[c] * shirt;
            (v + g).clamp(0.0, 255.0) as u8
        };
        image::Rgb([px(0), px(1), px(2)])
    })
}

fn exif_app1(orientation: u16) -> Vec<u8> {
    let mut tiff = b"II\x2a\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0".to_vec();
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    let mut seg = vec![0xFF, 0xE1];
    seg.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    seg.extend_from_slice(&payload);
    seg
}

fn write_corpus(dir: &Path, width: u32, height: u32, count: usize) -> Result<Vec<PathBuf>, String> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut compressor = turbojpeg::Compressor::new().map_err(|e| e.to_string())?;
    compressor.set_quality(90).map_err(|e| e.to_string())?;
    compressor
        .set_subsamp(turbojpeg::Subsamp::Sub2x2)
        .map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    for i in 0..count {
        let upright = photo(width, height, i as u64 + u64::from(width));
        // Every third photo is stored the way a rotated camera stores it.
        let orientation: u16 = match i % 9 {
            2 => 6,
            5 => 3,
            8 => 8,
            _ => 1,
        };
        let stored = match orientation {
            6 => image::imageops::rotate270(&upright),
            3 => image::imageops::rotate180(&upright),
            8 => image::imageops::rotate90(&upright),
            _ => upright,
        };
        let img = turbojpeg::Image {
            pixels: stored.as_raw().as_slice(),
            width: stored.width() as usize,
            pitch: stored.width() as usize * 3,
            height: stored.height() as usize,
            format: turbojpeg::PixelFormat::RGB,
        };
        let mut jpeg = compressor.compress_to_vec(img).map_err(|e| e.to_string())?;
        if orientation != 1 {
            let mut with = jpeg[..2].to_vec();
            with.extend_from_slice(&exif_app1(orientation));
            with.extend_from_slice(&jpeg[2..]);
            jpeg = with;
        }
        let path = dir.join(format!("photo_{i:03}.jpg"));
        fs::write(&path, &jpeg).map_err(|e| format!("{}: {e}", path.display()))?;
        files.push(path);
    }
    Ok(files)
}

fn jpegs_in(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no .jpg files in {}", dir.display()));
    }
    Ok(files)
}

// ---------------------------------------------------------------- workers

fn vm_hwm_kb(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs our fast path or the reference path over a folder, in this process.
fn worker(engine: &str, args: &Args) -> Result<(), String> {
    let (Some(input), Some(out)) = (&args.input, &args.out) else {
        return Err("--worker needs --in and --out".into());
    };
    let mut files = jpegs_in(input)?;
    if engine == "reference" {
        files.truncate(args.reference_count.max(1));
    }
    let inputs: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|p| {
            let stem = p
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("photo")
                .to_owned();
            fs::read(p)
                .map(|b| (stem, b))
                .map_err(|e| format!("{}: {e}", p.display()))
        })
        .collect::<Result<_, _>>()?;
    let config = Config::default();
    let mut processor = Processor::new(config.clone());
    let mut run = |bytes: &[u8]| match engine {
        "ours" => processor.process(bytes),
        _ => process_reference(&config, bytes),
    };
    if let Some((_, first)) = inputs.first() {
        run(first).map_err(|e| format!("warm-up: {e}"))?;
    }
    // Best of several passes: the machine may be shared, and the fastest pass is the
    // one least disturbed by others. Every engine gets the same treatment.
    let passes = if engine == "reference" { 1 } else { PASSES };
    let mut seconds = f64::INFINITY;
    let mut outputs = Vec::with_capacity(inputs.len());
    for _ in 0..passes {
        outputs.clear();
        let start = Instant::now();
        for (stem, bytes) in &inputs {
            let p = run(bytes).map_err(|e| format!("{stem}: {e}"))?;
            outputs.push((stem, p));
        }
        seconds = seconds.min(start.elapsed().as_secs_f64());
    }
    for (stem, p) in outputs {
        for r in p.renditions {
            let path = out.join(format!("{stem}_{}.jpg", r.name));
            fs::write(&path, &r.jpeg).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    println!(
        "RESULT photos={} seconds={seconds} hwm_kb={}",
        inputs.len(),
        vm_hwm_kb(None).unwrap_or(0)
    );
    Ok(())
}

struct Measured {
    photos: usize,
    seconds: f64,
    hwm_kb: u64,
}

fn parse_result(stdout: &str) -> Result<Measured, String> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .ok_or_else(|| format!("no RESULT line in output: {stdout}"))?;
    let mut fields = BTreeMap::new();
    for kv in line.split_whitespace().skip(1) {
        if let Some((k, v)) = kv.split_once('=') {
            fields.insert(k.to_owned(), v.to_owned());
        }
    }
    let get = |k: &str| {
        fields
            .get(k)
            .cloned()
            .ok_or_else(|| format!("RESULT lacks {k}"))
    };
    Ok(Measured {
        photos: get("photos")?.parse().map_err(|e| format!("photos: {e}"))?,
        seconds: get("seconds")?
            .parse()
            .map_err(|e| format!("seconds: {e}"))?,
        hwm_kb: get("hwm_kb")?.parse().map_err(|e| format!("hwm_kb: {e}"))?,
    })
}

/// Runs a command to completion, watching its peak RSS through /proc while it runs.
fn run_watched(cmd: &mut Command) -> Result<(String, Duration, u64), String> {
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    let pid = child.id();
    let mut hwm = 0;
    loop {
        if let Some(kb) = vm_hwm_kb(Some(pid)) {
            hwm = hwm.max(kb);
        }
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(e.to_string()),
        }
    }
    let elapsed = start.elapsed();
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "{:?} failed: {}",
            cmd.get_program(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok((
        String::from_utf8_lossy(&output.stdout).into_owned(),
        elapsed,
        hwm,
    ))
}

fn run_self(engine: &str, input: &Path, out: &Path, args: &Args) -> Result<Measured, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let (stdout, _, _) = run_watched(
        Command::new(exe)
            .args(["--worker", engine, "--reference-count"])
            .arg(args.reference_count.to_string())
            .arg("--in")
            .arg(input)
            .arg("--out")
            .arg(out),
    )?;
    parse_result(&stdout)
}

fn have(program: &str, version_arg: &str) -> Option<String> {
    let out = Command::new(program).arg(version_arg).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// vipsthumbnail: one invocation per rendition size over the whole corpus (it cannot
/// make several sizes from one decode), so each photo is decoded three times, each time
/// with shrink-on-load. Time is the sum of the three invocations.
fn run_vips(files: &[PathBuf], out: &Path) -> Result<Measured, String> {
    let mut best = f64::INFINITY;
    let mut hwm = 0;
    for _ in 0..PASSES {
        let (seconds, kb) = run_vips_once(files, out)?;
        best = best.min(seconds);
        hwm = hwm.max(kb);
    }
    Ok(Measured {
        photos: files.len(),
        seconds: best,
        hwm_kb: hwm,
    })
}

fn run_vips_once(files: &[PathBuf], out: &Path) -> Result<(f64, u64), String> {
    let mut seconds = 0.0;
    let mut hwm = 0;
    for (name, w, h) in SIZES {
        let pattern = format!(
            "{}/%s_{name}.jpg[Q=85,strip,optimize_coding]",
            out.display()
        );
        let (_, elapsed, kb) = run_watched(
            Command::new("vipsthumbnail")
                .env("VIPS_CONCURRENCY", "1")
                .arg("--vips-concurrency=1")
                .arg(format!("--size={w}x{h}"))
                .arg("--smartcrop=centre")
                .arg("-o")
                .arg(pattern)
                .args(files),
        )?;
        seconds += elapsed.as_secs_f64();
        hwm = hwm.max(kb);
    }
    Ok((seconds, hwm))
}

fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench")
}

fn run_sharp(files: &[PathBuf], out: &Path) -> Result<Measured, String> {
    let (stdout, _, _) = run_watched(
        Command::new("node")
            .env("UV_THREADPOOL_SIZE", "1")
            .env("VIPS_CONCURRENCY", "1")
            .env("BENCH_PASSES", PASSES.to_string())
            .current_dir(bench_dir())
            .arg("sharp-bench.js")
            .arg(out)
            .args(files),
    )?;
    parse_result(&stdout)
}

// ---------------------------------------------------------------- report

fn psnr(a: &RgbImage, b: &RgbImage) -> Option<f64> {
    if a.dimensions() != b.dimensions() {
        return None;
    }
    let mse = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.as_raw().len() as f64;
    Some(if mse == 0.0 {
        99.0
    } else {
        10.0 * (255.0f64.powi(2) / mse).log10()
    })
}

fn load_rgb(path: &Path) -> Option<RgbImage> {
    image::open(path).ok().map(|i| i.into_rgb8())
}

/// Mean PSNR of an engine's large renditions against the reference's, over the photos
/// the reference processed.
fn mean_psnr(engine_out: &Path, reference_out: &Path) -> Option<f64> {
    let mut values = Vec::new();
    for entry in fs::read_dir(reference_out).ok()?.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.ends_with("_large.jpg") {
            continue;
        }
        let (Some(a), Some(b)) = (load_rgb(&engine_out.join(name)), load_rgb(&entry.path())) else {
            continue;
        };
        values.extend(psnr(&a, &b));
    }
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Average output size in KB per rendition name.
fn mean_sizes(out: &Path) -> String {
    SIZES
        .iter()
        .map(|(name, _, _)| {
            let sizes: Vec<u64> = fs::read_dir(out)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .ends_with(&format!("_{name}.jpg"))
                })
                .filter_map(|e| e.metadata().ok().map(|m| m.len()))
                .collect();
            if sizes.is_empty() {
                "-".to_owned()
            } else {
                format!(
                    "{:.1}",
                    sizes.iter().sum::<u64>() as f64 / sizes.len() as f64 / 1024.0
                )
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn run(args: &Args) -> Result<(), String> {
    let root =
        std::env::temp_dir().join(format!("pictureday-imaging-bench-{}", std::process::id()));
    fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let result = run_in(args, &root);
    if args.keep {
        println!("\nkept corpus and outputs in {}", root.display());
    } else {
        let _ = fs::remove_dir_all(&root);
    }
    result
}

fn run_in(args: &Args, root: &Path) -> Result<(), String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("Image stage benchmark — single-threaded, photos/s on one core");
    println!("machine: {} × {}", cores, cpu_model());

    let vips = have("vipsthumbnail", "--vips-version");
    let sharp_ok =
        bench_dir().join("node_modules/sharp").is_dir() && have("node", "--version").is_some();
    let sharp_version = sharp_ok
        .then(|| {
            Command::new("node")
                .current_dir(bench_dir())
                .args(["-p", "'sharp ' + require('sharp').versions.sharp + ' (libvips ' + require('sharp').versions.vips + ')'"])
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        })
        .flatten();
    match &vips {
        Some(v) => println!("vipsthumbnail: {v}"),
        None => println!("vipsthumbnail: SKIPPED (not installed; run scripts/bench-deps.sh)"),
    }
    match &sharp_version {
        Some(v) => println!("sharp: {v}"),
        None => println!("sharp: SKIPPED (not installed; run scripts/bench-deps.sh)"),
    }

    let groups: Vec<(String, Vec<PathBuf>, PathBuf)> = match &args.dir {
        Some(dir) => vec![(dir.display().to_string(), jpegs_in(dir)?, dir.clone())],
        None => {
            let mut groups = Vec::new();
            let sizes: &[(u32, u32)] = if args.decoders {
                &[(640, 800), (2400, 3000), (3000, 4000)]
            } else {
                &[(640, 800), (2400, 3000)]
            };
            for &(w, h) in sizes {
                let dir = root.join(format!("corpus-{w}x{h}"));
                let started = Instant::now();
                let files = write_corpus(&dir, w, h, args.count)?;
                let bytes: u64 = files
                    .iter()
                    .filter_map(|f| fs::metadata(f).ok())
                    .map(|m| m.len())
                    .sum();
                println!(
                    "corpus {w}×{h}: {} JPEGs q90, {:.0} KB average, every third with EXIF orientation ({:.1}s to make)",
                    files.len(),
                    bytes as f64 / files.len() as f64 / 1024.0,
                    started.elapsed().as_secs_f64()
                );
                groups.push((format!("{w}×{h}"), files, dir));
            }
            groups
        }
    };

    if args.decoders {
        for (label, files, _) in &groups {
            println!("\n== {label} ({} photos) ==", files.len());
            decoders::compare(files)?;
        }
        println!(
            "\nms/photo: the fastest of {PASSES} passes over photos held in memory, one core;\n\
             \"/ as ours\" divides by libjpeg-turbo decoding as the fast path does (the first row)."
        );
        return Ok(());
    }

    for (label, files, dir) in &groups {
        println!(
            "\n== {label} ({} photos; reference on {}) ==",
            files.len(),
            args.reference_count.min(files.len())
        );
        let out = |engine: &str| -> Result<PathBuf, String> {
            let p = root
                .join("out")
                .join(label.replace(['/', '×'], "_"))
                .join(engine);
            fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok(p)
        };
        let mut rows: Vec<(&str, Result<Measured, String>, PathBuf)> = Vec::new();
        let o = out("ours")?;
        rows.push(("ours (Processor)", run_self("ours", dir, &o, args), o));
        let o = out("reference")?;
        rows.push((
            "reference (image crate)",
            run_self("reference", dir, &o, args),
            o,
        ));
        if vips.is_some() {
            let o = out("vips")?;
            rows.push(("vipsthumbnail ×3 sizes", run_vips(files, &o), o));
        }
        if sharp_version.is_some() {
            let o = out("sharp")?;
            rows.push(("sharp (1 decode, 3 sizes)", run_sharp(files, &o), o));
        }
        let ours_rate = match &rows[0].1 {
            Ok(m) => m.photos as f64 / m.seconds,
            Err(e) => return Err(format!("our fast path failed: {e}")),
        };
        let reference_out = rows[1].2.clone();
        println!(
            "{:<28} {:>10} {:>11} {:>10} {:>20} {:>12}",
            "engine", "photos/s", "ours/this", "peak RSS", "KB large/med/small", "PSNR vs ref"
        );
        for (name, measured, dir) in &rows {
            match measured {
                Ok(m) => {
                    let rate = m.photos as f64 / m.seconds;
                    let psnr = if dir == &reference_out {
                        "-".to_owned()
                    } else {
                        mean_psnr(dir, &reference_out).map_or("-".into(), |p| format!("{p:.1} dB"))
                    };
                    println!(
                        "{:<28} {:>10.1} {:>10.2}× {:>7.0} MB {:>20} {:>12}",
                        name,
                        rate,
                        ours_rate / rate,
                        m.hwm_kb as f64 / 1024.0,
                        mean_sizes(dir),
                        psnr
                    );
                }
                Err(e) => println!("{name:<28} SKIPPED: {e}"),
            }
        }
    }
    println!(
        "\nphotos/s counts whole photos (three renditions each) on one core, best of {PASSES}\n\
         timed passes (the reference: one pass); ours/this is our rate divided by that\n\
         engine's. vipsthumbnail runs once per size over the corpus (three decodes per\n\
         photo); sharp and ours decode once. PSNR: large rendition against the reference\n\
         path (full decode + Lanczos3) on the photos the reference processed."
    );
    Ok(())
}
