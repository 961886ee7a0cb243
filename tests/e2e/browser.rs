//! The console in a real browser: headless Chromium driven over WebDriver ([`webdriver`]), on
//! the embedded default (SQLite, local disk). Signing in, uploading a zip from the upload page
//! and watching its job end on screen, filtering the log, downloading the missing-photos CSV,
//! replacing a person's photo and seeing it change, a school turned off showing the
//! placeholder, tokens and webhooks made from their pages, another district's pages refused,
//! and forged forms refused. Every page visited is saved as a PNG under
//! `<target>/browser-screenshots/<test>/`.

mod webdriver;

use std::path::PathBuf;
use std::time::Duration;

use pictureday_tests::{Backend, TestApp, images, zip_of};
use serde_json::{Value, json};
use webdriver::Browser;

const PATIENCE: Duration = Duration::from_secs(60);

/// Where a test's screenshots go (printed, so a run says where to look).
fn screenshots(test: &str) -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = target
        .parent()
        .map_or_else(|| target.clone(), PathBuf::from)
        .join("browser-screenshots")
        .join(test);
    println!("screenshots: {}", dir.display());
    dir
}

const ROSTER: &str = "role,sis_id,student_number,first_name,last_name,school\n\
    student,S1,1001,Ada,North,North Elementary\n\
    student,S2,1002,Ben,South,South Middle\n\
    student,S3,1003,Cy,North,North Elementary\n";

/// A district with the roster above; its admin token.
async fn district(app: &TestApp) -> anyhow::Result<String> {
    let token = app.create_district("springfield", "Springfield").await?;
    let (status, body) = app.upload_roster(&token, "springfield", ROSTER).await?;
    anyhow::ensure!(status == 200, "{body}");
    Ok(token)
}

/// The console's pages carry the console's own policy (their own style sheet, script and
/// photos); with the API's `default-src 'none'` a browser would run and show none of them.
async fn console_policy_is_served(app: &TestApp) -> anyhow::Result<()> {
    let response = app.http.get(app.url("/console/sign-in")).send().await?;
    let policy = response
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(
        policy.contains("script-src 'self'") && policy.contains("img-src 'self'"),
        "the console's pages are served with the policy {policy:?}, not the console's own: \
         the browser would block its style sheet, script and photos"
    );
    Ok(())
}

/// Signs in through the sign-in page, as a person types it.
async fn sign_in(browser: &Browser, app: &TestApp, token: &str) -> anyhow::Result<()> {
    console_policy_is_served(app).await?;
    browser.goto(&app.url("/console/sign-in")).await?;
    let field = browser.find("#token").await?;
    browser.send_keys(&field, token).await?;
    let submit = browser.find("main form button[type=submit]").await?;
    browser.click(&submit).await?;
    // Signed in once the page is no longer the sign-in page.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while browser.url().await?.ends_with("/console/sign-in") {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "still on the sign-in page"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// `fetch` of a console address from the page, with the session's cookie: status, some
/// headers, the body's length and text (for text) or a checksum (for images).
async fn fetch(browser: &Browser, path: &str) -> anyhow::Result<Value> {
    browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0], {credentials: 'same-origin'}).then(async (r) => {
               const bytes = new Uint8Array(await r.arrayBuffer());
               let sum = 0; for (const b of bytes) sum = (sum * 31 + b) >>> 0;
               const type = r.headers.get('content-type') || '';
               done({status: r.status, type, length: bytes.length, sum,
                     etag: r.headers.get('etag'),
                     photo: r.headers.get('x-pictureday-photo-id'),
                     placeholder: r.headers.get('x-pictureday-placeholder-reason'),
                     disposition: r.headers.get('content-disposition'),
                     text: type.startsWith('image/') ? '' : new TextDecoder().decode(bytes)});
             }).catch((e) => done({error: String(e)}));",
            json!([path]),
        )
        .await
}

/// The console's style sheet applies (a policy that blocked it would leave the page bare).
async fn styled(browser: &Browser) -> anyhow::Result<bool> {
    Ok(browser
        .execute(
            "return getComputedStyle(document.querySelector('header')).borderBottomStyle;",
            json!([]),
        )
        .await?
        == "solid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_uploads_a_zip_and_follows_the_job_to_its_end() -> anyhow::Result<()> {
    let app = TestApp::spawn(Backend::Embedded).await?;
    let token = district(&app).await?;
    let archive = zip_of(&[
        ("1001.jpg", images::jpeg(images::photo(240, 300, 1))?),
        ("1002.jpg", images::jpeg(images::photo(240, 300, 2))?),
        ("9999.jpg", images::jpeg(images::photo(240, 300, 9))?),
        ("1003.jpg", b"%PDF-1.7 not a photo".to_vec()),
    ])?;
    let zip_path = app.dir.path().join("photos.zip");
    std::fs::write(&zip_path, &archive)?;
    let mut browser = Browser::start(&screenshots("upload")).await?;

    sign_in(&browser, &app, &token).await?;
    assert_eq!(browser.url().await?, app.url("/console/d/springfield"));
    assert_eq!(browser.text_of("h1").await?, "District springfield");
    assert!(
        styled(&browser).await?,
        "the console's style sheet is applied"
    );
    browser.screenshot("home").await?;

    // The upload page: choose the zip, send it, and the page follows the job.
    let upload = browser
        .find("nav a[href='/console/d/springfield/upload']")
        .await?;
    browser.click(&upload).await?;
    assert_eq!(browser.text_of("h1").await?, "Upload photos");
    let files = browser.find("#files").await?;
    browser
        .send_keys(&files, &zip_path.display().to_string())
        .await?;
    let kilobytes = archive.len().div_ceil(1000);
    browser
        .wait_for_text(
            "#selection",
            &format!("1 file, {kilobytes} kB · 1 zip"),
            PATIENCE,
        )
        .await?;
    browser.screenshot("upload-chosen").await?;
    let button = browser.find("#upload-button").await?;
    browser.click(&button).await?;

    // The job's page: state and counts pushed as they change, then its log.
    browser
        .wait_for_text("#state", "finished_with_errors", PATIENCE)
        .await?;
    let url = browser.url().await?;
    let job = url.rsplit('/').next().unwrap_or_default().to_owned();
    assert!(
        url.starts_with(&app.url("/console/d/springfield/jobs/")),
        "{url}"
    );
    let api_job = app
        .get_json(&token, &format!("/v1/districts/springfield/jobs/{job}"))
        .await?;
    assert_eq!(api_job["state"], "finished_with_errors", "{api_job}");
    browser
        .wait_for_text("#shown", "4 of 4 files", PATIENCE)
        .await?;
    assert_eq!(
        browser.text_of("#progress-label").await?,
        "4 of 4 files have an outcome"
    );
    for (count, expected) in [("applied", "2"), ("unmatched", "1"), ("rejected", "1")] {
        assert_eq!(
            browser.text_of(&format!("#count-{count}")).await?,
            expected,
            "{count}"
        );
    }
    browser.screenshot("job-finished").await?;

    // The log filtered to what was unmatched, with what to do about it.
    let unmatched = browser.find("#outcome option:nth-child(7)").await?;
    assert_eq!(browser.text(&unmatched).await?, "unmatched");
    browser.click(&unmatched).await?;
    let filter = browser
        .find("main form[method=get] button[type=submit]")
        .await?;
    browser.click(&filter).await?;
    browser
        .wait_for_text("#shown", "1 of 1 files", PATIENCE)
        .await?;
    let cells = browser.find_all("main table:last-of-type tbody td").await?;
    let mut row = Vec::new();
    for cell in &cells {
        row.push(browser.text(cell).await?);
    }
    assert_eq!(row.get(1).map(String::as_str), Some("9999.jpg"), "{row:?}");
    assert_eq!(row.get(2).map(String::as_str), Some("unmatched"), "{row:?}");
    assert_eq!(
        row.get(4).map(String::as_str),
        Some(
            "No one on the roster has this id: add the person to the roster (or correct the file name) and upload it again."
        ),
        "{row:?}"
    );
    browser.screenshot("log-unmatched").await?;
    // The rejected file says what to do about it too.
    browser
        .goto(&app.url(&format!(
            "/console/d/springfield/jobs/{job}?outcome=rejected"
        )))
        .await?;
    assert_eq!(browser.text_of("#shown").await?, "1 of 1 files");
    assert_eq!(
        browser
            .text_of("main table:last-of-type tbody td:nth-child(5)")
            .await?,
        "This file is not a photo: export it again as JPEG or PNG and upload it."
    );

    // Missing photos: Cy, whose file was no photo; and the CSV behind the page's link.
    browser
        .goto(&app.url("/console/d/springfield/missing"))
        .await?;
    assert_eq!(browser.text_of("#count").await?, "1 without a photo");
    assert_eq!(browser.text_of("main table tbody td").await?, "Cy North");
    browser.screenshot("missing").await?;
    let link = browser
        .find("a[href^='/console/d/springfield/missing.csv']")
        .await?;
    let href = browser.attribute(&link, "href").await?.unwrap_or_default();
    let csv = fetch(&browser, &href).await?;
    assert_eq!(csv["status"], 200, "{csv}");
    assert_eq!(
        csv["disposition"],
        "attachment; filename=\"missing-photos.csv\""
    );
    assert_eq!(
        csv["text"],
        "role,sis_id,student_number,email,first_name,last_name,school\r\n\
         student,S3,1003,,Cy,North,North Elementary\r\n",
        "{csv}"
    );
    browser.quit().await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_photo_shows_at_once_and_a_school_turned_off_shows_the_placeholder()
-> anyhow::Result<()> {
    let app = TestApp::spawn(Backend::Embedded).await?;
    let token = district(&app).await?;
    let archive = zip_of(&[("1001.jpg", images::jpeg(images::photo(240, 300, 1))?)])?;
    let job = app.import_archive(&token, "springfield", archive).await?;
    app.wait_for_job(&token, "springfield", &job).await?;
    let new_photo = app.dir.path().join("ada-retake.jpg");
    std::fs::write(&new_photo, images::jpeg(images::photo(480, 600, 77))?)?;
    let mut browser = Browser::start(&screenshots("person")).await?;
    sign_in(&browser, &app, &token).await?;

    // Found by student number.
    browser
        .goto(&app.url("/console/d/springfield/people"))
        .await?;
    let q = browser.find("#q").await?;
    browser.send_keys(&q, "1001").await?;
    let find = browser.find("main form button[type=submit]").await?;
    browser.click(&find).await?;
    browser.wait_for_text("h1", "Ada North", PATIENCE).await?;
    assert_eq!(browser.text_of("#photo-state").await?, "Current photo.");
    let loaded = browser
        .execute(
            "const i = document.getElementById('photo'); return [i.complete, i.naturalWidth, i.getAttribute('src')];",
            json!([]),
        )
        .await?;
    assert_eq!(loaded[0], true, "{loaded}");
    assert_eq!(loaded[1], 240, "the photo is shown: {loaded}");
    let before = fetch(&browser, loaded[2].as_str().unwrap_or_default()).await?;
    assert_eq!(before["status"], 200, "{before}");
    assert_eq!(before["type"], "image/jpeg");
    assert_eq!(before["placeholder"], Value::Null);
    browser.screenshot("person").await?;

    // Job events pushed to the page through the console, as a dashboard listens.
    browser
        .execute(
            "window.seen = [];
             const s = new EventSource('/console/d/springfield/events');
             s.addEventListener('job.status', (e) => window.seen.push(JSON.parse(e.data)));
             window.stream = s;",
            json!([]),
        )
        .await?;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while browser
        .execute("return window.stream.readyState;", json!([]))
        .await?
        != 1
    {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the event stream did not open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A new photo by choosing a file: shown as soon as it is applied.
    let input = browser.find("#new-photo").await?;
    browser
        .send_keys(&input, &new_photo.display().to_string())
        .await?;
    browser
        .wait_for_text(
            "#photo-status",
            "New photo replaced from ada-retake.jpg.",
            PATIENCE,
        )
        .await?;
    let src = browser
        .execute(
            "const i = document.getElementById('photo'); return i.complete ? i.getAttribute('src') : null;",
            json!([]),
        )
        .await?;
    let after = fetch(&browser, src.as_str().unwrap_or_default()).await?;
    assert_eq!(after["status"], 200, "{after}");
    assert_ne!(after["photo"], before["photo"], "another photo: {after}");
    assert_ne!(after["etag"], before["etag"]);
    assert_ne!(after["sum"], before["sum"], "other bytes");
    let person = app
        .get_json(&token, "/v1/districts/springfield/people?sis_id=S1")
        .await?;
    assert_eq!(person["items"][0]["photo_id"], after["photo"]);
    browser.screenshot("person-replaced").await?;
    let finished = browser
        .execute(
            "return window.seen.filter((e) => e.state === 'finished').map((e) => e.job_id);",
            json!([]),
        )
        .await?;
    assert_eq!(
        finished.as_array().map(Vec::len),
        Some(1),
        "the new photo's job, pushed: {finished}"
    );

    // Its history: two photos; the first made current again.
    browser.goto(&browser.url().await?).await?;
    let restore = browser
        .find_all("main form[action$='/restore'] button")
        .await?;
    assert_eq!(restore.len(), 1);
    browser.click(&restore[0]).await?;
    browser.wait_for_text("h1", "Ada North", PATIENCE).await?;
    let person = app
        .get_json(&token, "/v1/districts/springfield/people?sis_id=S1")
        .await?;
    assert_eq!(person["items"][0]["photo_id"], before["photo"]);

    // North Elementary's photos off from the schools page: Ada's page shows the placeholder.
    browser
        .goto(&app.url("/console/d/springfield/schools"))
        .await?;
    let off = browser
        .find("button[aria-label='Turn off photos for North Elementary']")
        .await?;
    browser.click(&off).await?;
    browser
        .wait_for_text(
            "main table tbody tr:first-child td:nth-child(4) strong",
            "off",
            PATIENCE,
        )
        .await?;
    browser.screenshot("schools-off").await?;
    let ada = person["items"][0]["id"].as_str().unwrap_or_default();
    browser
        .goto(&app.url(&format!("/console/d/springfield/people/{ada}")))
        .await?;
    assert_eq!(
        browser.text_of("#photo-state").await?,
        "No photo is shown: photos are off for one of this person's schools."
    );
    let src = browser
        .execute(
            "return document.getElementById('photo').getAttribute('src');",
            json!([]),
        )
        .await?;
    let shown = fetch(&browser, src.as_str().unwrap_or_default()).await?;
    assert_eq!(shown["placeholder"], "school-photos-off", "{shown}");
    browser.screenshot("person-placeholder").await?;
    browser.quit().await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_pages_and_what_the_console_refuses() -> anyhow::Result<()> {
    let app = TestApp::spawn(Backend::Embedded).await?;
    let token = district(&app).await?;
    let other = app.create_district("shelbyville", "Shelbyville").await?;
    let mut browser = Browser::start(&screenshots("admin")).await?;
    sign_in(&browser, &app, &token).await?;

    // A token made from the tokens page: shown once.
    browser
        .goto(&app.url("/console/d/springfield/tokens"))
        .await?;
    let name = browser.find("#name").await?;
    browser.send_keys(&name, "hall-pass app").await?;
    let viewer = browser.find("#role option:nth-child(1)").await?;
    browser.click(&viewer).await?;
    let create = browser.find("#create-token").await?;
    browser.click(&create).await?;
    let secret = browser.text_of("#new-secret").await?;
    assert!(secret.starts_with("pd_"), "{secret}");
    let who = app.get_json(&secret, "/v1/whoami").await?;
    assert_eq!(who["role"], "viewer", "{who}");
    browser.screenshot("token-made").await?;
    browser
        .goto(&app.url("/console/d/springfield/tokens"))
        .await?;
    assert!(
        browser.find_all("#new-secret").await?.is_empty(),
        "shown once"
    );

    // A webhook endpoint: its secret shown once.
    browser
        .goto(&app.url("/console/d/springfield/webhooks"))
        .await?;
    let url = browser.find("#url").await?;
    browser
        .send_keys(&url, "https://93.184.216.34/pictureday")
        .await?;
    let add = browser.find("#create-webhook").await?;
    browser.click(&add).await?;
    let secret_text = browser.text_of("#new-secret").await?;
    assert!(secret_text.starts_with("whsec_"), "{secret_text}");
    assert_eq!(
        browser.text_of("main table tbody td").await?,
        "https://93.184.216.34/pictureday"
    );
    browser.screenshot("webhook-made").await?;

    // The viewer is offered what a viewer may do.
    let mut viewer_browser = Browser::start(&screenshots("viewer")).await?;
    sign_in(&viewer_browser, &app, &secret).await?;
    let mut links = Vec::new();
    for link in viewer_browser.find_all("nav a").await? {
        links.push(viewer_browser.text(&link).await?);
    }
    assert_eq!(
        links,
        ["Home", "Jobs", "Missing photos", "People", "Schools"]
    );
    viewer_browser
        .goto(&app.url("/console/d/springfield/schools"))
        .await?;
    assert!(
        viewer_browser
            .find_all("main form button")
            .await?
            .is_empty()
    );
    viewer_browser.screenshot("viewer-schools").await?;
    viewer_browser.quit().await?;

    // Another district's token: springfield's pages do not exist for it.
    let mut other_browser = Browser::start(&screenshots("other-district")).await?;
    sign_in(&other_browser, &app, &other).await?;
    assert_eq!(
        other_browser.url().await?,
        app.url("/console/d/shelbyville")
    );
    other_browser
        .goto(&app.url("/console/d/springfield/jobs"))
        .await?;
    assert_eq!(other_browser.text_of("h1").await?, "Not found");
    other_browser.screenshot("other-district").await?;
    let people = fetch(&other_browser, "/console/d/springfield/missing.csv").await?;
    assert_eq!(people["status"], 404, "{people}");
    other_browser.quit().await?;

    // A forged form: a wrong CSRF value is refused, and the school stays on.
    browser
        .goto(&app.url("/console/d/springfield/schools"))
        .await?;
    browser
        .execute(
            "for (const f of document.querySelectorAll('input[name=csrf]')) f.value = '0'.repeat(32);",
            json!([]),
        )
        .await?;
    let off = browser
        .find("button[aria-label='Turn off photos for North Elementary']")
        .await?;
    browser.click(&off).await?;
    browser.wait_for_text("h1", "Refused", PATIENCE).await?;
    browser.screenshot("csrf-refused").await?;

    // A page of another origin posting the console's form, with the right CSRF value even:
    // refused by its origin.
    browser
        .goto(&app.url("/console/d/springfield/schools"))
        .await?;
    let csrf = browser
        .execute(
            "return document.querySelector('input[name=csrf]').value;",
            json!([]),
        )
        .await?;
    let schools = app
        .get_json(&token, "/v1/districts/springfield/schools")
        .await?;
    let north = schools[0]["id"].as_str().unwrap_or_default().to_owned();
    let evil = format!(
        "<!doctype html><title>elsewhere</title><form method=post action=\"{}\">\
         <input name=csrf value=\"{}\"><input name=enabled value=false>\
         <button id=go type=submit>Win a prize</button></form>",
        app.url(&format!("/console/d/springfield/schools/{north}/photos")),
        csrf.as_str().unwrap_or_default()
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let evil_url = format!("http://{}/", listener.local_addr()?);
    let server = tokio::spawn(async move {
        let page = axum::Router::new().route(
            "/",
            axum::routing::get(move || async move { axum::response::Html(evil) }),
        );
        axum::serve(listener, page).await
    });
    browser.goto(&evil_url).await?;
    let go = browser.find("#go").await?;
    browser.click(&go).await?;
    browser.wait_for_text("h1", "Refused", PATIENCE).await?;
    browser.screenshot("other-origin-refused").await?;
    server.abort();
    let schools = app
        .get_json(&token, "/v1/districts/springfield/schools")
        .await?;
    assert_eq!(schools[0]["photos_enabled"], true, "{schools}");
    browser.quit().await?;
    app.stop().await
}
