//! The gateway in front of separately served ingest, roster and reporting: one address for the
//! whole API, with each request answered by the service that owns it, bodies streamed through
//! and authorisation left to the services; the console served at the same address.

use pictureday_tests::images::{jpeg, photo};
use pictureday_tests::{AppLayout, Backend, TestApp, zip_of};

on_each_backend!(one_address_serves_the_whole_api);

async fn one_address_serves_the_whole_api(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::spawn_with(
        backend,
        AppLayout {
            behind_gateway: true,
            ..AppLayout::default()
        },
    )
    .await?;
    // Roster (districts, tokens, people).
    let token = app.create_district("springfield", "Springfield").await?;
    app.upload_numbered_roster(&token, "springfield", 3).await?;

    // Ingest: a 30 MB upload goes through whole (a filler file beside two photos is skipped
    // as not a photo, and reported).
    let filler: Vec<u8> = (0..30 * 1024 * 1024u32).map(|n| (n % 251) as u8).collect();
    let archive = zip_of(&[
        ("0.jpg", jpeg(photo(800, 1000, 0))?),
        ("1.jpg", jpeg(photo(800, 1000, 1))?),
        ("notes.bin", filler),
    ])?;
    let job_id = &app.import_archive(&token, "springfield", archive).await?;

    // Reporting: the job and its log.
    let job = app.wait_for_job(&token, "springfield", job_id).await?;
    assert_eq!(job["counts"]["applied"], 2, "{job}");
    let log = app.log(&token, "springfield", job_id).await?;
    assert_eq!(
        log.len(),
        job["counts"]["files"].as_u64().unwrap_or(0) as usize
    );

    // Roster again: a photo streams back with its headers.
    let people = app
        .get_json(
            &token,
            "/v1/districts/springfield/people?missing_photo=true",
        )
        .await?;
    assert_eq!(people["items"].as_array().map(Vec::len), Some(1));
    let everyone = app
        .get_json(&token, "/v1/districts/springfield/people")
        .await?;
    let with_photo = everyone["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["student_number"] == "0")
        .and_then(|p| p["id"].as_str())
        .unwrap_or_default()
        .to_owned();
    let response = app
        .get(
            &token,
            &format!("/v1/districts/springfield/people/{with_photo}/photo?size=large"),
        )
        .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    let bytes = response.bytes().await?;
    let decoded = image::load_from_memory(&bytes)?;
    assert_eq!((decoded.width(), decoded.height()), (480, 600));

    // The services still decide who may do what: no token, another district, a bad path.
    let anonymous = app
        .http
        .get(app.url("/v1/districts/springfield/jobs"))
        .send()
        .await?;
    assert_eq!(anonymous.status(), 401);
    let other = app.create_district("shelbyville", "Shelbyville").await?;
    let foreign = app
        .get(&other, &format!("/v1/districts/springfield/jobs/{job_id}"))
        .await?;
    // Another district's job is not found, rather than forbidden: its existence is not disclosed.
    assert_eq!(foreign.status(), 404);
    let nowhere = app.get(&token, "/v2/nothing").await?;
    assert_eq!(nowhere.status(), 404);

    // The console is served at the same address, and its pages read the API through it.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let signed_in = browser
        .post(app.url("/console/sign-in"))
        .header("origin", app.url(""))
        .form(&[("token", token.as_str()), ("district", "")])
        .send()
        .await?;
    assert_eq!(signed_in.status(), 303);
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let jobs_page = browser
        .get(app.url("/console/d/springfield/jobs"))
        .header("cookie", &cookie)
        .send()
        .await?;
    assert_eq!(jobs_page.status(), 200);
    let html = jobs_page.text().await?;
    assert!(
        html.contains(job_id.as_str()),
        "the job is listed through the gateway: {html}"
    );

    let ready = app.http.get(app.url("/readyz")).send().await?;
    assert_eq!(ready.status(), 200);
    app.stop().await
}
