//! One district's picture day: a roster, a zip named by ids, a SmartPass mapping batch, and every
//! outcome, rendition and report checked exactly.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use image::{DynamicImage, ImageFormat};
use pictureday_tests::images::{
    self, average, encode, halves, jpeg, jpeg_markers, photo, png_with_alpha, with_exif,
};
use pictureday_tests::{Backend, TestApp, file_part, zip_of};
use reqwest::multipart::{Form, Part};
use serde_json::Value;

on_each_backend!(
    a_picture_day_from_upload_to_report,
    bad_uploads_are_refused_with_reasons
);

const ROSTER: &str = "\u{feff}role,email,sis_id,student_number,first_name,last_name,school\r\n\
student,ada@springfield.k12.us,S1001,1001,Ada,Lovelace,North\r\n\
student,,S1002,1002,Grace,Hopper,North\r\n\
student,,S1003,1003,Alan,Turing,North\r\n\
student,,S1004,1004,Edsger,Dijkstra,North\r\n\
student,,S1005,1005,Barbara,Liskov,North\r\n\
student,,S1006,1006,\"Donald, Jr.\",Knuth,South\r\n\
student,,S1007,1007,Frances,Allen,South\r\n\
student,,S1008,1008,Ken,Thompson,South\r\n\
staff,teacher@springfield.k12.us,T1,,Margaret,Hamilton,South\r\n\
staff,=cmd@springfield.k12.us,T2,,Radia,Perlman,West\r\n\
teacher,x@springfield.k12.us,T3,,Bad,Role,West\r\n";

fn counts(job: &Value) -> [u64; 6] {
    [
        "files",
        "matched",
        "unmatched",
        "processed",
        "rejected",
        "applied",
    ]
    .map(|k| job["counts"][k].as_u64().unwrap_or(u64::MAX))
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

async fn person_id(app: &TestApp, token: &str, sis_id: &str) -> anyhow::Result<String> {
    let people = app
        .get_json(
            token,
            &format!("/v1/districts/springfield/people?sis_id={sis_id}"),
        )
        .await?;
    people["items"][0]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no person with SIS id {sis_id}: {people}"))
}

async fn photo_of(
    app: &TestApp,
    token: &str,
    person: &str,
    size: &str,
) -> anyhow::Result<(reqwest::header::HeaderMap, Vec<u8>)> {
    let response = app
        .get(
            token,
            &format!("/v1/districts/springfield/people/{person}/photo?size={size}"),
        )
        .await?;
    anyhow::ensure!(
        response.status() == 200,
        "photo {size}: {}",
        response.status()
    );
    let headers = response.headers().clone();
    Ok((headers, response.bytes().await?.to_vec()))
}

async fn a_picture_day_from_upload_to_report(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let token = app
        .create_district("springfield", "Springfield USD")
        .await?;

    // The roster: one bad row is reported with its row, field and reason; the rest load.
    let (status, loaded) = app.upload_roster(&token, "springfield", ROSTER).await?;
    assert_eq!(status, 200, "{loaded}");
    assert_eq!(loaded["created"], 10);
    assert_eq!(loaded["rejected_rows"], 1);
    assert_eq!(
        loaded["errors"],
        serde_json::json!([{ "row": 12, "field": "role", "reason": "must be student or staff, not \"teacher\"" }])
    );

    // Dashboards listen for job status events.
    let nats = pictureday_platform::nats_client::NatsAddress::parse(&app.nats_url)
        .connect("test")
        .await?;
    let mut statuses = nats
        .subscribe("pictureday.job.status.springfield.>")
        .await?;

    // A vendor's zip named by student number, in every accepted format, with the usual debris.
    let rotated = with_exif(&jpeg(halves(1000, 800))?, 6);
    let archive = zip_of(&[
        ("1001.jpg", rotated),
        ("grade5/1002.png", png_with_alpha(400, 500)?),
        (
            "grade5/1003.gif",
            encode(
                DynamicImage::ImageRgb8(photo(300, 360, 3)),
                ImageFormat::Gif,
            )?,
        ),
        (
            "1004.tiff",
            encode(
                DynamicImage::ImageRgb8(photo(640, 800, 4)),
                ImageFormat::Tiff,
            )?,
        ),
        (
            "1005.webp",
            encode(
                DynamicImage::ImageRgba8(DynamicImage::ImageRgb8(photo(320, 400, 5)).to_rgba8()),
                ImageFormat::WebP,
            )?,
        ),
        ("1006.jpg", {
            let whole = jpeg(photo(640, 800, 6))?;
            whole[..whole.len() / 2].to_vec()
        }),
        (
            "1007.jpg",
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n".to_vec(),
        ),
        ("9999.jpg", jpeg(photo(640, 800, 9))?),
        ("__MACOSX/._1001.jpg", b"resource fork".to_vec()),
        (".DS_Store", b"finder".to_vec()),
    ])?;
    let (status, accepted) = app
        .import(
            &token,
            "springfield",
            Form::new().part("archive", file_part("picture-day.zip", archive)),
        )
        .await?;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["files"], 8);
    let zip_job = accepted["job_id"].as_str().unwrap_or_default().to_owned();

    let job = app.wait_for_job(&token, "springfield", &zip_job).await?;
    assert_eq!(job["state"], "finished_with_errors");
    assert_eq!(counts(&job), [8, 7, 1, 5, 2, 5]);
    assert!(job["started_at"].is_string() && job["finished_at"].is_string());

    let log = rows(&app.log(&token, "springfield", &zip_job).await?);
    let names: Vec<&str> = log.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "1001.jpg",
            "grade5/1002.png",
            "grade5/1003.gif",
            "1004.tiff",
            "1005.webp",
            "1006.jpg",
            "1007.jpg",
            "9999.jpg"
        ]
    );
    for (name, outcome, reason) in &log[..5] {
        assert_eq!(
            (outcome.as_str(), reason.as_str()),
            ("applied", ""),
            "{name}"
        );
    }
    assert_eq!(log[5].1, "rejected");
    assert!(log[5].2.contains("truncated JPEG"), "{}", log[5].2);
    assert_eq!(log[6].1, "rejected");
    assert_eq!(log[6].2, "not an image: starts with %PDF-1.7");
    assert_eq!(
        (log[7].1.as_str(), log[7].2.as_str()),
        (
            "unmatched",
            "no person has 9999 as student number, SIS id, state id, staff id or email (case and leading zeros ignored)"
        )
    );

    // Renditions: exact sizes, upright, no metadata.
    let ada = person_id(&app, &token, "S1001").await?;
    for (size, width, height) in [
        ("large", 480, 600),
        ("medium", 240, 300),
        ("small", 96, 120),
    ] {
        let (headers, bytes) = photo_of(&app, &token, &ada, size).await?;
        assert_eq!(headers["content-type"], "image/jpeg");
        let decoded = image::load_from_memory_with_format(&bytes, ImageFormat::Jpeg)?.to_rgb8();
        assert_eq!(
            (decoded.width(), decoded.height()),
            (width, height),
            "{size}"
        );
        let markers = jpeg_markers(&bytes);
        assert!(
            !markers.iter().any(|m| matches!(m, 0xe1..=0xef | 0xfe)),
            "{size} keeps metadata markers {markers:x?}"
        );
        assert!(!bytes.windows(4).any(|w| w == b"Exif"), "{size} keeps EXIF");
    }
    let (_, large) = photo_of(&app, &token, &ada, "large").await?;
    let large = image::load_from_memory(&large)?.to_rgb8();
    // Orientation 6 turns the stored left (red) half into the top.
    let top = average(&large, 240, 100, 20);
    let bottom = average(&large, 240, 500, 20);
    assert!(top[0] > 180 && top[2] < 80, "top should be red: {top:?}");
    assert!(
        bottom[2] > 180 && bottom[0] < 80,
        "bottom should be blue: {bottom:?}"
    );
    // Transparency lands on white.
    let grace = person_id(&app, &token, "S1002").await?;
    let (_, bytes) = photo_of(&app, &token, &grace, "large").await?;
    let left = average(&image::load_from_memory(&bytes)?.to_rgb8(), 60, 300, 20);
    assert!(
        left.iter().all(|&c| c > 235),
        "transparent area should be white: {left:?}"
    );

    // The final job status event was published for dashboards.
    let last_status = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(message) = statuses.next().await {
            let status: Value = serde_json::from_slice(&message.payload)?;
            // Progress may still be counted after the state is final (a retried event); the last
            // status carries the final counts.
            if status["job_id"] == zip_job.as_str()
                && status["state"] == "finished_with_errors"
                && status["counts"] == job["counts"]
            {
                return Ok::<_, anyhow::Error>(status);
            }
        }
        anyhow::bail!("status subscription ended")
    })
    .await??;
    assert_eq!(last_status["counts"], job["counts"]);

    // A SmartPass batch: a header-less mapping plus files; Ada gets a new photo.
    let first_ada_photo = app
        .get_json(&token, &format!("/v1/districts/springfield/people/{ada}"))
        .await?["photo_id"]
        .clone();
    let mapping =
        "teacher@springfield.k12.us,IMG_0001.JPG\r\nS1001,IMG_0002.JPG\r\n1008,IMG_0404.JPG\r\n";
    let form = Form::new()
        .part("mapping", Part::text(mapping).file_name("mapping.csv"))
        .part(
            "files",
            file_part("IMG_0001.JPG", jpeg(photo(800, 1000, 11))?),
        )
        .part(
            "files",
            file_part("IMG_0002.JPG", jpeg(photo(1200, 1500, 12))?),
        )
        .part(
            "files",
            file_part("=HYPERLINK(1).jpg", jpeg(photo(400, 500, 13))?),
        );
    let (status, accepted) = app.import(&token, "springfield", form).await?;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(
        accepted["warnings"],
        serde_json::json!(["mapping.csv row 3 names IMG_0404.JPG, which is not in the upload"])
    );
    let batch_job = accepted["job_id"].as_str().unwrap_or_default().to_owned();
    let job = app.wait_for_job(&token, "springfield", &batch_job).await?;
    assert_eq!(job["state"], "finished_with_errors");
    assert_eq!(counts(&job), [3, 2, 1, 2, 0, 2]);
    let log = app.log(&token, "springfield", &batch_job).await?;
    assert_eq!(
        rows(&log),
        [
            (
                "IMG_0001.JPG".to_owned(),
                "applied".to_owned(),
                String::new()
            ),
            (
                "IMG_0002.JPG".to_owned(),
                "replaced".to_owned(),
                "replaced the person's previous photo, which is kept as an older version"
                    .to_owned()
            ),
            (
                "=HYPERLINK(1).jpg".to_owned(),
                "unmatched".to_owned(),
                "not listed in the mapping CSV".to_owned()
            ),
        ]
    );
    assert_eq!(log[0]["matched_by"], "email");
    assert_eq!(log[1]["matched_by"], "SIS id");

    // The replaced photo is kept as a version and can still be fetched.
    let versions = app
        .get_json(
            &token,
            &format!("/v1/districts/springfield/people/{ada}/photos"),
        )
        .await?;
    let versions = versions.as_array().cloned().unwrap_or_default();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["current"], true);
    assert_eq!(versions[0]["file_name"], "IMG_0002.JPG");
    assert_eq!(versions[0]["previous_photo_id"], first_ada_photo);
    assert_eq!(versions[1]["id"], first_ada_photo);
    assert_eq!(versions[1]["current"], false);
    let old = app
        .get(
            &token,
            &format!(
                "/v1/districts/springfield/people/{ada}/photos/{}?size=small",
                versions[1]["id"].as_str().unwrap_or("")
            ),
        )
        .await?;
    assert_eq!(old.status(), 200);

    // The log as CSV is safe to open in a spreadsheet.
    let csv = app
        .get(
            &token,
            &format!("/v1/districts/springfield/jobs/{batch_job}/log?format=csv"),
        )
        .await?
        .text()
        .await?;
    assert!(
        csv.starts_with("file_name,outcome,person_id,matched_by,reason\r\n"),
        "{csv}"
    );
    assert!(
        csv.contains("\r\n'=HYPERLINK(1).jpg,unmatched,,,not listed in the mapping CSV\r\n"),
        "{csv}"
    );

    // Who still has no photo: the rejected files' owners and those never photographed.
    let report = app
        .get(
            &token,
            "/v1/districts/springfield/reports/missing-photos.csv",
        )
        .await?
        .text()
        .await?;
    assert_eq!(
        report,
        "role,sis_id,student_number,email,first_name,last_name,school\r\n\
student,S1007,1007,,Frances,Allen,South\r\n\
student,S1006,1006,,\"Donald, Jr.\",Knuth,South\r\n\
student,S1008,1008,,Ken,Thompson,South\r\n\
staff,T2,,'=cmd@springfield.k12.us,Radia,Perlman,West\r\n"
    );

    // Someone without a photo gets the placeholder, marked as such.
    let ken = person_id(&app, &token, "S1008").await?;
    let (headers, bytes) = photo_of(&app, &token, &ken, "medium").await?;
    assert_eq!(headers["x-pictureday-placeholder"], "true");
    let placeholder = image::load_from_memory(&bytes)?;
    assert_eq!((placeholder.width(), placeholder.height()), (240, 300));

    // The people filter agrees with the report.
    let missing = app
        .get_json(
            &token,
            "/v1/districts/springfield/people?missing_photo=true",
        )
        .await?;
    let mut sis: Vec<&str> = missing["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["sis_id"].as_str()).collect())
        .unwrap_or_default();
    sis.sort_unstable();
    assert_eq!(sis, ["S1006", "S1007", "S1008", "T2"]);

    // Every file of both jobs ended in exactly one outcome.
    let jobs = app
        .get_json(&token, "/v1/districts/springfield/jobs")
        .await?;
    let states: BTreeMap<String, String> = jobs["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|j| {
                    (
                        j["job_id"].as_str().unwrap_or("").to_owned(),
                        j["state"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(states.len(), 2);
    assert!(states.values().all(|s| s == "finished_with_errors"));

    drop(images::photo(1, 1, 0));
    app.stop().await
}

async fn bad_uploads_are_refused_with_reasons(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let token = app.create_district("riverside", "Riverside").await?;

    let (status, body) = app
        .import(
            &token,
            "riverside",
            Form::new().part(
                "archive",
                file_part("photos.zip", b"%PDF-1.4 definitely not a zip".to_vec()),
            ),
        )
        .await?;
    assert_eq!(status, 422);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("photos.zip is not a readable zip archive")),
        "{body}"
    );

    let (status, body) = app
        .import(
            &token,
            "riverside",
            Form::new().part("mapping", Part::text("a,b.jpg")),
        )
        .await?;
    assert_eq!(status, 422);
    assert_eq!(
        body["error"]["message"],
        "the upload has no photos: send files parts or an archive of images"
    );

    let (status, body) = app
        .import(
            &token,
            "riverside",
            Form::new().part("photo", file_part("a.jpg", vec![1, 2, 3])),
        )
        .await?;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "form part 1 is named \"photo\"; use mapping, files or archive"
    );

    let (status, body) = app
        .upload_roster(&token, "riverside", "email,first_name\nx@y.org,X\n")
        .await?;
    assert_eq!(status, 422);
    assert_eq!(
        body["error"]["message"],
        "roster CSV: the header row has no role column; expected role, email, sis_id, student_number, first_name, last_name, school"
    );

    // Nothing was recorded for the refused uploads.
    let jobs = app.get_json(&token, "/v1/districts/riverside/jobs").await?;
    assert_eq!(jobs["items"], serde_json::json!([]));
    app.stop().await
}
