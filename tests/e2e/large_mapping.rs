//! SmartPass tells admins to reuse one district-wide mapping for every batch: a mapping of
//! 20,000 rows with the one image of this batch is an ordinary upload, not 20,000 warnings, and
//! the job runs (no event grows with the input).

use pictureday_tests::images::{jpeg, photo};
use pictureday_tests::{Backend, TestApp, file_part};
use reqwest::multipart::{Form, Part};

on_each_backend!(a_district_wide_mapping_with_one_image_of_this_batch);

async fn a_district_wide_mapping_with_one_image_of_this_batch(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let token = app.create_district("springfield", "Springfield").await?;
    app.upload_numbered_roster(&token, "springfield", 3).await?;
    let mut mapping = String::new();
    for n in 0..20_000u32 {
        mapping.push_str(&format!("S{n},IMG_{n:05}.JPG\n"));
    }
    let form = Form::new()
        .part(
            "mapping",
            Part::bytes(mapping.into_bytes()).file_name("district-mapping.csv"),
        )
        .part(
            "files",
            file_part("IMG_00002.JPG", jpeg(photo(300, 375, 2))?),
        );
    let (status, accepted) = app.import(&token, "springfield", form).await?;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(
        accepted["warnings"],
        serde_json::json!([
            "19999 rows of district-mapping.csv name files not in this upload (rows 1, 2, 4, 5, 6, …)"
        ])
    );
    let job = accepted["job_id"].as_str().unwrap_or_default().to_owned();
    let done = app.wait_for_job(&token, "springfield", &job).await?;
    assert_eq!(done["state"], "finished", "{done}");
    assert_eq!(done["counts"]["applied"], 1, "{done}");
    let jobs = app
        .get_json(&token, "/v1/districts/springfield/jobs")
        .await?;
    assert_eq!(jobs["items"][0]["job_id"], job.as_str(), "{jobs}");
    app.stop().await
}
