//! Photos from phones through the whole pipeline: HEIC (and AVIF) files in an upload are decoded,
//! turned upright, stripped and stored as the same JPEG renditions as any photo; a `.HEIC` name
//! with JPEG bytes is a JPEG; a cut-off HEIC is rejected with a reason that says so.

use pictureday_tests::{Backend, TestApp, images, zip_of};

on_each_backend!(photos_from_phones_are_applied_like_any_other);

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/imaging/tests/data/");

fn fixture(name: &str) -> anyhow::Result<Vec<u8>> {
    Ok(std::fs::read(format!("{FIXTURES}{name}"))?)
}

async fn photos_from_phones_are_applied_like_any_other(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let token = app.create_district("springfield", "Springfield").await?;
    app.upload_numbered_roster(&token, "springfield", 6).await?;
    let heic = fixture("quadrants-160x200.heic")?;
    let cut = heic[..heic.len() / 2].to_vec();
    let archive = zip_of(&[
        ("0.HEIC", heic),
        ("1.heic", fixture("rotated-irot-200x160.heic")?),
        ("2.avif", fixture("quadrants-160x200.avif")?),
        ("3.HEIC", images::jpeg(images::photo(240, 300, 3))?),
        ("4.heic", cut),
    ])?;
    let job = app.import_archive(&token, "springfield", archive).await?;
    let done = app.wait_for_job(&token, "springfield", &job).await?;
    assert_eq!(done["counts"]["applied"], 4, "{done}");
    assert_eq!(done["counts"]["rejected"], 1, "{done}");
    let log = app.log(&token, "springfield", &job).await?;
    let reason = log
        .iter()
        .find(|row| row["file_name"] == "4.heic")
        .and_then(|row| row["reason"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(reason.contains("truncated HEIC"), "{reason}");
    // Every applied photo is a JPEG rendition of the usual size, without metadata.
    for n in 0..4 {
        let people = app
            .get_json(
                &token,
                &format!("/v1/districts/springfield/people?sis_id=S{n}"),
            )
            .await?;
        let person = people["items"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let photo = app
            .get(
                &token,
                &format!("/v1/districts/springfield/people/{person}/photo?size=medium"),
            )
            .await?;
        assert_eq!(photo.status(), 200);
        assert!(
            photo.headers().get("x-pictureday-placeholder").is_none(),
            "person S{n}"
        );
        let bytes = photo.bytes().await?;
        let decoded = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg)?;
        assert_eq!(
            (decoded.width(), decoded.height()),
            (240, 300),
            "person S{n}"
        );
        assert!(
            !images::jpeg_markers(&bytes).contains(&0xE1),
            "no EXIF/XMP for S{n}"
        );
    }
    app.stop().await
}
