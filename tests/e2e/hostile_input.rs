//! Hostile and broken uploads: zips with duplicate, unsafe, damaged or overlapping entries,
//! images that cannot be portraits, and uploads that are too large or cut off. Every file gets
//! an outcome, nothing is inflated twice, and a refused upload leaves nothing in storage.

use std::time::Duration;

use image::{DynamicImage, ImageFormat, RgbImage};
use pictureday_platform::config::PhotoArgs;
use pictureday_tests::images::{encode, jpeg, photo};
use pictureday_tests::{AppLayout, Backend, TestApp, file_part};
use reqwest::multipart::Form;
use serde_json::Value;

on_each_backend!(
    entries_sharing_a_name_each_get_an_outcome,
    unsafe_and_damaged_entries_are_rejected_with_reasons,
    overlapping_entries_refuse_the_archive,
    images_that_cannot_be_portraits_are_refused,
    over_limit_and_aborted_uploads_leave_nothing_behind,
);

/// One entry of a hand-made zip: stored (not compressed), so its bytes are where they are said
/// to be, unless the test says otherwise.
struct RawEntry {
    name: String,
    data: Vec<u8>,
    /// What the central directory claims, when the test lies.
    claimed_size: Option<u32>,
    /// Point the central record at another entry's local header (an overlap bomb).
    same_header_as: Option<usize>,
}

fn entry(name: &str, data: Vec<u8>) -> RawEntry {
    RawEntry {
        name: name.to_owned(),
        data,
        claimed_size: None,
        same_header_as: None,
    }
}

/// Writes a zip with exactly the given entries, duplicates and lies included: the zip crate's
/// writer refuses them, so the format's three records are written here.
fn raw_zip(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offsets = Vec::new();
    for e in entries {
        offsets.push(out.len() as u32);
        if e.same_header_as.is_some() {
            continue;
        }
        let size = e.data.len() as u32;
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes()); // version needed
        out.extend_from_slice(&0x0800u16.to_le_bytes()); // UTF-8 names
        out.extend_from_slice(&0u16.to_le_bytes()); // stored
        out.extend_from_slice(&[0; 4]); // time, date
        out.extend_from_slice(&crc32(&e.data).to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(&e.data);
    }
    let directory_start = out.len() as u32;
    for (i, e) in entries.iter().enumerate() {
        let (header, data) = match e.same_header_as {
            Some(j) => (offsets[j], &entries[j].data),
            None => (offsets[i], &e.data),
        };
        let size = e.claimed_size.unwrap_or(data.len() as u32);
        out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes()); // made by
        out.extend_from_slice(&20u16.to_le_bytes()); // needed
        out.extend_from_slice(&0x0800u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&crc32(data).to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0; 4]); // extra, comment lengths
        out.extend_from_slice(&[0; 4]); // disk, internal attributes
        out.extend_from_slice(&[0; 4]); // external attributes
        out.extend_from_slice(&header.to_le_bytes());
        out.extend_from_slice(e.name.as_bytes());
    }
    let directory_size = out.len() as u32 - directory_start;
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&directory_size.to_le_bytes());
    out.extend_from_slice(&directory_start.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// The zip format's CRC-32, bit by bit: the test needs it for a few small entries only.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

fn rows(log: &[Value]) -> Vec<(String, String, String)> {
    log.iter()
        .map(|r| {
            (
                r["file_name"].as_str().unwrap_or("").to_owned(),
                r["outcome"].as_str().unwrap_or("").to_owned(),
                r["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn portrait(seed: u32) -> anyhow::Result<Vec<u8>> {
    jpeg(photo(160, 200, seed))
}

async fn import_zip(app: &TestApp, token: &str, archive: Vec<u8>) -> anyhow::Result<(u16, Value)> {
    app.import(
        token,
        "springfield",
        Form::new().part("archive", file_part("photos.zip", archive)),
    )
    .await
}

async fn finished_log(
    app: &TestApp,
    token: &str,
    accepted: &Value,
) -> anyhow::Result<(Value, Vec<(String, String, String)>)> {
    let job_id = accepted["job_id"].as_str().unwrap_or_default();
    let job = app.wait_for_job(token, "springfield", job_id).await?;
    let log = rows(&app.log(token, "springfield", job_id).await?);
    Ok((job, log))
}

async fn entries_sharing_a_name_each_get_an_outcome(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let token = app.create_district("springfield", "Springfield").await?;
    app.upload_numbered_roster(&token, "springfield", 2).await?;

    let archive = raw_zip(&[
        entry("1.jpg", portrait(1)?),
        entry("0.jpg", portrait(2)?),
        entry("1.jpg", portrait(3)?),
    ]);
    let (status, accepted) = import_zip(&app, &token, archive).await?;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["files"], 3, "{accepted}");
    assert_eq!(
        accepted["warnings"],
        serde_json::json!([
            "photos.zip has several entries with one name: 1.jpg (2×); each is processed in \
             archive order and the last one is used"
        ])
    );
    let (job, log) = finished_log(&app, &token, &accepted).await?;
    assert_eq!(job["state"], "finished", "{job}");
    let names: Vec<&str> = log.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["1.jpg", "0.jpg", "1.jpg"]);
    // The later entry wins: applied over the earlier (which then ends `applied` then replaced)
    // or first (the earlier one is then `superseded`), as the two photos' timing has it.
    let (first, last) = (log[0].1.as_str(), log[2].1.as_str());
    assert!(
        matches!(
            (first, last),
            ("applied", "replaced") | ("superseded", "applied")
        ),
        "{log:?}"
    );
    let job_id = accepted["job_id"].as_str().unwrap_or_default();
    let items = app.log(&token, "springfield", job_id).await?;
    let people = app
        .get_json(&token, "/v1/districts/springfield/people?sis_id=S1")
        .await?;
    assert_eq!(
        people["items"][0]["photo_id"], items[2]["photo_id"],
        "{people}"
    );
    app.stop().await
}

async fn unsafe_and_damaged_entries_are_rejected_with_reasons(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let token = app.create_district("springfield", "Springfield").await?;
    app.upload_numbered_roster(&token, "springfield", 2).await?;

    let mut past_end = entry("1.jpg", portrait(1)?);
    past_end.claimed_size = Some(50_000_000);
    let archive = raw_zip(&[
        entry("0.jpg", portrait(0)?),
        entry("../../0.jpg", portrait(2)?),
        entry("..\\0.jpg", portrait(3)?),
        entry("/etc/0.jpg", portrait(4)?),
        entry("C:0.jpg", portrait(5)?),
        past_end,
    ]);
    let (status, accepted) = import_zip(&app, &token, archive).await?;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["files"], 6, "{accepted}");
    let (job, log) = finished_log(&app, &token, &accepted).await?;
    assert_eq!(job["state"], "finished_with_errors", "{job}");
    let expected = [
        ("0.jpg", "applied", "".to_owned()),
        (
            "../../0.jpg",
            "rejected",
            "unsafe path: ../../0.jpg".to_owned(),
        ),
        ("..\\0.jpg", "rejected", "unsafe path: ..\\0.jpg".to_owned()),
        (
            "/etc/0.jpg",
            "rejected",
            "unsafe path: /etc/0.jpg".to_owned(),
        ),
        ("C:0.jpg", "rejected", "unsafe path: C:0.jpg".to_owned()),
        (
            "1.jpg",
            "rejected",
            "photos.zip entry 1.jpg is damaged: its data runs past the end of the archive"
                .to_owned(),
        ),
    ];
    let got: Vec<(&str, &str, String)> = log
        .iter()
        .map(|(n, o, r)| (n.as_str(), o.as_str(), r.clone()))
        .collect();
    assert_eq!(got, expected);
    app.stop().await
}

async fn overlapping_entries_refuse_the_archive(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let token = app.create_district("springfield", "Springfield").await?;
    app.upload_numbered_roster(&token, "springfield", 5).await?;

    // Five directory records, one local header and one copy of the data: each record would
    // be inflated on its own.
    let mut entries = vec![entry("0.jpg", portrait(0)?)];
    for n in 1..5 {
        let mut copy = entry(&format!("{n}.jpg"), Vec::new());
        copy.same_header_as = Some(0);
        entries.push(copy);
    }
    let (status, body) = import_zip(&app, &token, raw_zip(&entries)).await?;
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("photos.zip is refused: entries share the same compressed data (0.jpg and 1.jpg; 0.jpg and 2.jpg"),
        "{message}"
    );
    let jobs = app
        .get_json(&token, "/v1/districts/springfield/jobs")
        .await?;
    assert_eq!(jobs["items"], serde_json::json!([]));
    assert_eq!(
        pictureday_tests::stored_files(&app.storage_root())?,
        Vec::<String>::new()
    );
    app.stop().await
}

fn png(width: u32, height: u32) -> anyhow::Result<Vec<u8>> {
    encode(
        DynamicImage::ImageRgb8(RgbImage::from_pixel(
            width,
            height,
            image::Rgb([90, 120, 200]),
        )),
        ImageFormat::Png,
    )
}

async fn images_that_cannot_be_portraits_are_refused(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let token = app.create_district("springfield", "Springfield").await?;
    app.upload_numbered_roster(&token, "springfield", 6).await?;

    let form = Form::new()
        .part("files", file_part("0.png", png(1, 1)?))
        .part("files", file_part("1.png", png(2, 1)?))
        .part("files", file_part("2.png", png(7999, 1)?))
        .part("files", file_part("3.jpg", jpeg(photo(119, 150, 3))?))
        .part("files", file_part("4.jpg", jpeg(photo(400, 300, 4))?))
        .part("files", file_part("5.jpg", jpeg(photo(120, 150, 5))?));
    let (status, accepted) = app.import(&token, "springfield", form).await?;
    assert_eq!(status, 202, "{accepted}");
    let (_, log) = finished_log(&app, &token, &accepted).await?;
    let got: Vec<(&str, &str)> = log
        .iter()
        .map(|(_, o, r)| (o.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "rejected",
                "the image is 1×1 pixels; a portrait needs at least 120×150"
            ),
            (
                "rejected",
                "the image is 2×1 pixels; a portrait needs at least 120×150"
            ),
            (
                "rejected",
                "the image is 7999×1, 7999.0 wide for 1 high; a portrait is 0.5 to 1.5 as wide as high"
            ),
            (
                "rejected",
                "the image is 119×150 pixels; a portrait needs at least 120×150"
            ),
            ("applied", ""),
            ("applied", ""),
        ]
    );
    app.stop().await
}

/// Stored objects and spooled files of `app`: on S3 the spool is a directory of its own.
fn leftovers(app: &TestApp) -> anyhow::Result<Vec<String>> {
    let mut files = pictureday_tests::stored_files(&app.storage_root())?;
    files.extend(pictureday_tests::stored_files(
        &app.dir.path().join("spool"),
    )?);
    Ok(files)
}

/// Waits until nothing of a stopped upload is left, or returns what is.
async fn settle(app: &TestApp) -> anyhow::Result<Vec<String>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = leftovers(app)?;
        if left.is_empty() || tokio::time::Instant::now() > deadline {
            return Ok(left);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn over_limit_and_aborted_uploads_leave_nothing_behind(
    backend: Backend,
) -> anyhow::Result<()> {
    const MB: u64 = 1024 * 1024;
    let layout = AppLayout {
        photos: PhotoArgs {
            max_file_bytes: Some(MB),
            max_upload_bytes: Some(3 * MB),
            ..PhotoArgs::default()
        },
        ..AppLayout::default()
    };
    let app = TestApp::spawn_with(backend, layout).await?;
    let token = app.create_district("springfield", "Springfield").await?;
    app.upload_numbered_roster(&token, "springfield", 2).await?;

    // A photo over the per-file limit, after one that is not: refused as it streams.
    let form = Form::new()
        .part("files", file_part("0.jpg", portrait(0)?))
        .part("files", file_part("1.jpg", vec![0xFF; 2 * MB as usize]));
    let (status, body) = app.import(&token, "springfield", form).await?;
    assert_eq!(status, 413, "{body}");
    assert_eq!(
        body["error"]["message"],
        "1.jpg is larger than the 1 MB limit for one photo"
    );
    assert_eq!(settle(&app).await?, Vec::<String>::new());

    // A request over the total limit, every part within the per-file one.
    let mut form = Form::new();
    for n in 0..4 {
        form = form.part(
            "files",
            file_part(&format!("{n}.jpg"), vec![0xFF; (MB - 1024) as usize]),
        );
    }
    let (status, body) = app.import(&token, "springfield", form).await?;
    assert_eq!(status, 413, "{body}");
    assert_eq!(
        body["error"]["message"],
        "the upload is larger than the 3 MB limit for one request; send it in parts"
    );
    assert_eq!(settle(&app).await?, Vec::<String>::new());

    // An upload cut off after one whole photo part: the connection ends mid-way.
    let boundary = "pictureday-test-boundary";
    let mut first = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"0.jpg\"\r\n\
         Content-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    first.extend_from_slice(&portrait(0)?);
    first.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; \
             filename=\"1.jpg\"\r\n\r\npartial"
        )
        .as_bytes(),
    );
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(first),
        Err(std::io::Error::other("the client went away")),
    ];
    let aborted = app
        .http
        .post(app.url("/v1/districts/springfield/imports"))
        .bearer_auth(&token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await;
    assert!(aborted.is_err(), "{aborted:?}");
    assert_eq!(settle(&app).await?, Vec::<String>::new());
    let jobs = app
        .get_json(&token, "/v1/districts/springfield/jobs")
        .await?;
    assert_eq!(jobs["items"], serde_json::json!([]));

    // The same photo whole is stored: the count above would have seen it.
    let form = Form::new().part("files", file_part("0.jpg", portrait(0)?));
    let (status, accepted) = app.import(&token, "springfield", form).await?;
    assert_eq!(status, 202, "{accepted}");
    let (job, _) = finished_log(&app, &token, &accepted).await?;
    assert_eq!(job["state"], "finished", "{job}");
    assert!(!leftovers(&app)?.is_empty());
    app.stop().await
}
