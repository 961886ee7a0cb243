//! The console in a real browser: headless Chromium driven over WebDriver ([`webdriver`]), on
//! the embedded default (SQLite, local disk). Signing in, uploading a zip from the upload page
//! and watching its job end on screen, filtering the log, downloading the missing-photos CSV,
//! replacing a person's photo and seeing it change, a school turned off showing the
//! placeholder, tokens and webhooks made from their pages, another district's pages refused,
//! forged forms refused; an SFTP account made, its password changed, its keys replaced and
//! disabled, each checked with the API and the real `sftp` client; the jobs list following an
//! import made elsewhere without a reload; the upload page used with the keyboard alone, and
//! every page checked for labels, headings, table headers and a phone's width (375 px). Every
//! page visited is saved as a PNG under
//! `<target>/browser-screenshots/<test>/`.

mod webdriver;

use std::path::PathBuf;
use std::time::Duration;

use pictureday_platform::config::SftpArgs;
use pictureday_tests::{AppLayout, Backend, TestApp, images, zip_of};
use serde_json::{Value, json};
use webdriver::Browser;

use crate::sftp_client::{Client, Login};

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
        .wait_for_value(
            "const i = document.getElementById('photo'); return i.complete ? [i.naturalWidth, i.getAttribute('src')] : null;",
            json!([]),
            PATIENCE,
        )
        .await?;
    assert_eq!(loaded[0], 240, "the photo is shown: {loaded}");
    let before = fetch(&browser, loaded[1].as_str().unwrap_or_default()).await?;
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
    // The status is written before the browser has loaded the new image: wait for it.
    let src = browser
        .wait_for_value(
            "const i = document.getElementById('photo'); const src = i.getAttribute('src');
             return i.complete && i.naturalWidth > 0 && src !== arguments[0] ? src : null;",
            json!([loaded[1]]),
            PATIENCE,
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
    // The page before the click has the same heading: what shows the restore is done is the
    // reloaded page offering the newer photo to be made current instead.
    let newer = after["photo"].as_str().unwrap_or_default();
    browser
        .wait_for_element_text(
            &format!("main form[action$='/photos/{newer}/restore'] button"),
            PATIENCE,
        )
        .await?;
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
    let secret = browser
        .wait_for_element_text("#new-secret", Duration::from_secs(20))
        .await?;
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
    let secret_text = browser
        .wait_for_element_text("#new-secret", Duration::from_secs(20))
        .await?;
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

/// The SFTP account `springfield-sis`'s row of the SFTP page: the text of one of its cells.
async fn account_cell(browser: &Browser, key: &str) -> anyhow::Result<String> {
    browser
        .text_of(&format!(
            "tr[data-account='springfield-sis'] [data-k='{key}']"
        ))
        .await
}

/// Whether the page (its markup, its address and every field's value) holds `secret` anywhere.
async fn page_holds(browser: &Browser, secret: &str) -> anyhow::Result<bool> {
    let found = browser
        .execute(
            "const s = arguments[0];
             const fields = Array.from(document.querySelectorAll('input, textarea')).some((f) => f.value.includes(s));
             return fields || document.documentElement.outerHTML.includes(s) || location.href.includes(s);",
            json!([secret]),
        )
        .await?;
    Ok(found == true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_makes_rotates_and_disables_an_sftp_account() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(
        Backend::Embedded,
        AppLayout {
            sftp: SftpArgs {
                sftp_listen: Some("127.0.0.1:0".into()),
                sftp_quiet_secs: Some(1),
                sftp_host_key_file: None,
            },
            ..AppLayout::default()
        },
    )
    .await?;
    let token = district(&app).await?;
    let server = app.get_json(&token, "/v1/sftp").await?;
    assert_eq!(server["enabled"], true, "{server}");
    let port = u16::try_from(server["port"].as_u64().unwrap_or(0))?;
    let mut browser = Browser::start(&screenshots("sftp")).await?;
    sign_in(&browser, &app, &token).await?;
    let sftp = browser
        .find("nav a[href='/console/d/springfield/sftp']")
        .await?;
    browser.click(&sftp).await?;
    assert_eq!(browser.text_of("h1").await?, "SFTP accounts");

    // The host key the page gives is the API's: its fingerprint and a known_hosts line.
    assert_eq!(
        browser.text_of("#sftp-fingerprint").await?,
        server["fingerprint"]
            .as_str()
            .unwrap_or("(none from the API)")
    );
    let known_hosts_line = browser
        .execute(
            "return document.getElementById('sftp-known-hosts').value;",
            json!([]),
        )
        .await?;
    assert_eq!(known_hosts_line, server["known_hosts"], "{server}");
    assert_eq!(browser.text_of("#sftp-port").await?, port.to_string());
    assert_eq!(
        browser.text_of("dl.howto dt:nth-of-type(1)").await?,
        "FileZilla"
    );
    browser.screenshot("sftp-empty").await?;

    // An OpenSSH client that trusts exactly the line the page showed.
    let dir = app.dir.path().join("sftp-client");
    tokio::fs::create_dir_all(&dir).await?;
    let known_hosts = dir.join("known_hosts");
    tokio::fs::write(
        &known_hosts,
        format!("{}\n", known_hosts_line.as_str().unwrap_or_default()),
    )
    .await?;
    let client = Client {
        dir: dir.clone(),
        port,
        known_hosts,
    };

    // A new account with a password: made, and its password appears nowhere on the page.
    let first = "first-long-passphrase-1";
    let username = browser.find("#username").await?;
    browser.send_keys(&username, "springfield-sis").await?;
    let password = browser.find("#password").await?;
    browser.send_keys(&password, first).await?;
    let create = browser.find("#create-sftp").await?;
    browser.click(&create).await?;
    browser
        .wait_for_text(
            "main p.note",
            "Account springfield-sis created. Its password is not shown again.",
            PATIENCE,
        )
        .await?;
    assert!(!page_holds(&browser, first).await?, "the password is shown");
    assert_eq!(account_cell(&browser, "password").await?, "yes");
    assert_eq!(account_cell(&browser, "state").await?, "enabled");
    let made = app
        .get_json(
            &token,
            "/v1/districts/springfield/sftp-accounts/springfield-sis",
        )
        .await?;
    assert_eq!(made["has_password"], true, "{made}");
    assert_eq!(made["disabled"], false, "{made}");
    browser.screenshot("sftp-created").await?;
    let (ok, said) = client
        .run("springfield-sis", Login::Password(first), "pwd\n")
        .await?;
    assert!(ok, "the first password logs in: {said}");

    // The password changed from the account's own form: the old one no longer logs in.
    let second = "second-long-passphrase-2";
    let field = browser
        .find("form[action='/console/d/springfield/sftp/springfield-sis/password'] input[type=password]")
        .await?;
    let label = browser
        .execute(
            "return document.querySelector(\"form[action$='/springfield-sis/password'] input[type=password]\").labels[0].textContent;",
            json!([]),
        )
        .await?;
    assert_eq!(
        label,
        "New password for springfield-sis (at least 12 characters)"
    );
    browser.send_keys(&field, second).await?;
    let change = browser
        .find("form[action='/console/d/springfield/sftp/springfield-sis/password'] button")
        .await?;
    browser.click(&change).await?;
    browser
        .wait_for_text(
            "main p.note",
            "The password of springfield-sis was changed. It is not shown again: give it to whoever connects, who must use it from now on.",
            PATIENCE,
        )
        .await?;
    assert!(
        !page_holds(&browser, second).await?,
        "the password is shown"
    );
    let rotated = app
        .get_json(
            &token,
            "/v1/districts/springfield/sftp-accounts/springfield-sis",
        )
        .await?;
    assert_ne!(rotated["rotated_at"], made["rotated_at"], "{rotated}");
    assert_eq!(
        account_cell(&browser, "rotated").await?,
        rotated["rotated_at"].as_str().unwrap_or_default()
    );
    browser.screenshot("sftp-rotated").await?;
    let (ok, said) = client
        .run("springfield-sis", Login::Password(first), "pwd\n")
        .await?;
    assert!(!ok, "the old password is refused: {said}");
    let (ok, said) = client
        .run("springfield-sis", Login::Password(second), "pwd\n")
        .await?;
    assert!(ok, "the new password logs in: {said}");

    // Its keys replaced: the API holds the key pasted, and the password is kept.
    let key = dir.join("id_sis");
    let made_key = tokio::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "sis@springfield",
            "-f",
        ])
        .arg(&key)
        .status()
        .await?;
    anyhow::ensure!(made_key.success(), "ssh-keygen failed");
    let public = tokio::fs::read_to_string(dir.join("id_sis.pub")).await?;
    let keys = browser
        .find("form[action='/console/d/springfield/sftp/springfield-sis/keys'] textarea")
        .await?;
    browser.send_keys(&keys, public.trim()).await?;
    let replace = browser
        .find("form[action='/console/d/springfield/sftp/springfield-sis/keys'] button")
        .await?;
    browser.click(&replace).await?;
    browser
        .wait_for_text(
            "main p.note",
            "The public keys of springfield-sis were replaced.",
            PATIENCE,
        )
        .await?;
    assert_eq!(account_cell(&browser, "keys").await?, "1");
    let with_key = app
        .get_json(
            &token,
            "/v1/districts/springfield/sftp-accounts/springfield-sis",
        )
        .await?;
    assert_eq!(with_key["has_password"], true, "{with_key}");
    assert_eq!(
        with_key["public_keys"][0]
            .as_str()
            .map(|k| k.split_whitespace().take(2).collect::<Vec<_>>()),
        Some(public.split_whitespace().take(2).collect::<Vec<_>>()),
        "{with_key}"
    );
    let (ok, said) = client
        .run("springfield-sis", Login::Key(&key), "pwd\n")
        .await?;
    assert!(ok, "the key logs in: {said}");

    // Disabled: the page and the API say so, and the password no longer logs in.
    let disable = browser
        .find("button[aria-label='Disable springfield-sis']")
        .await?;
    browser.click(&disable).await?;
    browser
        .wait_for_text(
            "main p.note",
            "springfield-sis is disabled: it can no longer log in.",
            PATIENCE,
        )
        .await?;
    assert_eq!(account_cell(&browser, "state").await?, "disabled");
    let disabled = app
        .get_json(
            &token,
            "/v1/districts/springfield/sftp-accounts/springfield-sis",
        )
        .await?;
    assert_eq!(disabled["disabled"], true, "{disabled}");
    browser.screenshot("sftp-disabled").await?;
    let (ok, said) = client
        .run("springfield-sis", Login::Password(second), "pwd\n")
        .await?;
    assert!(!ok, "a disabled account is refused: {said}");
    browser.quit().await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_list_shows_an_import_reach_finished_without_a_reload() -> anyhow::Result<()> {
    let app = TestApp::spawn(Backend::Embedded).await?;
    let token = district(&app).await?;
    let mut browser = Browser::start(&screenshots("jobs-live")).await?;
    sign_in(&browser, &app, &token).await?;
    let jobs_url = app.url("/console/d/springfield/jobs");
    browser.goto(&jobs_url).await?;
    assert_eq!(browser.text_of("h1").await?, "Jobs");
    assert_eq!(browser.text_of("#no-jobs").await?, "No imports yet.");
    // A mark on this very page: a reload or a navigation would lose it.
    browser
        .execute("window.stillThisPage = 'yes';", json!([]))
        .await?;
    browser.screenshot("jobs-empty").await?;
    // Its event stream is open (and what happened before it was asked for once).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while browser
        .find_all("#jobs-live[data-connected]")
        .await?
        .is_empty()
    {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the jobs list's event stream did not open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // An import made through the API (not the page) while the page is open.
    let archive = zip_of(&[
        ("1001.jpg", images::jpeg(images::photo(240, 300, 1))?),
        ("1002.jpg", images::jpeg(images::photo(240, 300, 2))?),
    ])?;
    let job = app.import_archive(&token, "springfield", archive).await?;
    let row = format!("tr[data-job='{job}']");
    browser
        .wait_for_text(&format!("{row} [data-k='state']"), "finished", PATIENCE)
        .await?;
    let api_job = app
        .get_json(&token, &format!("/v1/districts/springfield/jobs/{job}"))
        .await?;
    assert_eq!(api_job["state"], "finished", "{api_job}");
    assert_eq!(
        browser
            .execute("return window.stillThisPage;", json!([]))
            .await?,
        "yes",
        "the page was reloaded"
    );
    assert_eq!(browser.url().await?, jobs_url);
    let row_element = browser.find(&row).await?;
    assert_eq!(
        browser
            .attribute(&row_element, "data-pushed")
            .await?
            .as_deref(),
        Some("1"),
        "the row was filled from the event stream"
    );
    let short = job.get(..8).unwrap_or(&job);
    assert_eq!(browser.text_of(&format!("{row} th a")).await?, short);
    for (key, expected) in [
        ("files", "2"),
        ("applied", "2"),
        ("unmatched", "0"),
        ("rejected", "0"),
    ] {
        assert_eq!(
            browser.text_of(&format!("{row} [data-k='{key}']")).await?,
            expected,
            "{key}"
        );
    }
    let bar = browser
        .execute(
            "const p = document.querySelector(arguments[0] + \" [data-k='progress']\");
             return [p.value, p.max, p.getAttribute('aria-label')];",
            json!([row]),
        )
        .await?;
    assert_eq!(
        bar,
        json!([2, 2, format!("Job {short}: 2 of 2 files have an outcome")])
    );
    assert!(
        browser
            .execute(
                "return document.getElementById('no-jobs').hidden && !document.getElementById('jobs').hidden;",
                json!([])
            )
            .await?
            == true,
        "the table is shown in place of 'No imports yet.'"
    );
    // Told to a screen reader too.
    let announced = browser.text_of("#jobs-announce").await?;
    assert!(
        [
            format!("Job {short}: finished."),
            format!("New job {short}: finished.")
        ]
        .contains(&announced),
        "{announced:?}"
    );
    let link = browser.find(&format!("{row} th a")).await?;
    assert_eq!(
        browser.attribute(&link, "href").await?.as_deref(),
        Some(format!("/console/d/springfield/jobs/{job}").as_str())
    );
    browser.screenshot("jobs-finished").await?;
    browser.quit().await?;
    app.stop().await
}

/// Everything on the page a person using a screen reader or only a keyboard, or reading on a
/// phone, needs: problems found, as sentences.
async fn accessibility_problems(browser: &Browser) -> anyhow::Result<Vec<String>> {
    let found = browser
        .execute(
            "const out = [];
             const visible = (e) => e.type !== 'hidden' && !e.closest('[hidden], template');
             if (document.documentElement.lang !== 'en') out.push('html has no lang');
             for (const f of document.querySelectorAll('input, select, textarea')) {
               if (!visible(f)) continue;
               const named = (f.labels && Array.from(f.labels).some((l) => l.textContent.trim())) || f.getAttribute('aria-label');
               if (!named) out.push('unlabelled ' + f.outerHTML.slice(0, 80));
             }
             for (const b of document.querySelectorAll('button, a[href]')) {
               if (visible(b) && !(b.getAttribute('aria-label') || b.textContent.trim())) out.push('nameless ' + b.outerHTML.slice(0, 80));
             }
             for (const p of document.querySelectorAll('progress')) {
               if (!p.closest('template') && !(p.getAttribute('aria-label') || (p.labels && p.labels.length))) out.push('unlabelled progress #' + p.id);
             }
             for (const th of document.querySelectorAll('th')) {
               if (!th.closest('template') && !th.getAttribute('scope')) out.push('th without scope: ' + th.textContent);
               if (th.closest('thead') && !th.textContent.trim()) out.push('empty column header');
             }
             let level = 0;
             for (const h of document.querySelectorAll('h1, h2, h3, h4, h5, h6')) {
               const n = Number(h.tagName[1]);
               if (n > level + 1) out.push('heading ' + h.tagName + ' after h' + level + ': ' + h.textContent);
               level = n;
             }
             if (document.querySelectorAll('h1').length !== 1) out.push('not one h1');
             if (document.documentElement.scrollWidth > window.innerWidth) out.push('wider than the screen: ' + document.documentElement.scrollWidth + ' > ' + window.innerWidth);
             return out;",
            json!([]),
        )
        .await?;
    Ok(found
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect())
}

/// Tabs forward from where the focus is until `id` has it; what got the focus on the way
/// (`id` or tag, and accessible name).
async fn tab_to(browser: &Browser, id: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut seen = Vec::new();
    for _ in 0..40 {
        browser.press(webdriver::TAB).await?;
        let focused = browser
            .execute(
                "const e = document.activeElement;
                 const label = e.labels && e.labels.length ? e.labels[0].textContent.trim() : '';
                 return [e.id || e.tagName.toLowerCase(), e.getAttribute('aria-label') || label || e.textContent.trim()];",
                json!([]),
            )
            .await?;
        let pair = (
            focused[0].as_str().unwrap_or_default().to_owned(),
            focused[1].as_str().unwrap_or_default().to_owned(),
        );
        let arrived = pair.0 == id;
        seen.push(pair);
        if arrived {
            return Ok(seen);
        }
    }
    anyhow::bail!("Tab never reached #{id}: {seen:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keyboard_alone_uploads_and_every_page_reads_on_a_phone() -> anyhow::Result<()> {
    let app = TestApp::spawn(Backend::Embedded).await?;
    let token = district(&app).await?;
    let archive = zip_of(&[("1001.jpg", images::jpeg(images::photo(240, 300, 1))?)])?;
    let zip_path = app.dir.path().join("photos.zip");
    std::fs::write(&zip_path, &archive)?;
    let mut browser = Browser::start(&screenshots("keyboard")).await?;
    sign_in(&browser, &app, &token).await?;
    browser.emulate_width(375, 800).await?;
    browser
        .goto(&app.url("/console/d/springfield/upload"))
        .await?;
    assert_eq!(
        browser
            .execute("return window.innerWidth;", json!([]))
            .await?,
        375
    );

    // The first Tab reaches the skip link, shown while it has the focus.
    browser.press(webdriver::TAB).await?;
    let skip = browser
        .execute(
            "const e = document.activeElement; const r = e.getBoundingClientRect();
             return [e.textContent, r.width > 1 && r.height > 1, getComputedStyle(e).outlineStyle];",
            json!([]),
        )
        .await?;
    assert_eq!(skip, json!(["Skip to content", true, "solid"]));

    // The drop zone is also a real file input with a label: Tab reaches it.
    let visited = tab_to(&browser, "files").await?;
    assert_eq!(
        visited.last().map(|(_, name)| name.as_str()),
        Some("Files (zip, CSV, images)")
    );
    let ring = browser
        .execute(
            "const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth];",
            json!([]),
        )
        .await?;
    assert_eq!(ring, json!(["solid", "3px"]), "the focus is visible");
    browser.screenshot("files-focused").await?;
    // Choosing the file is the file dialog's work; the page then counts it.
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
    let visited = tab_to(&browser, "upload-button").await?;
    let names: Vec<(&str, &str)> = visited
        .iter()
        .map(|(id, name)| (id.as_str(), name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("folder", "A folder"),
            (
                "preview",
                "Preview first: change no one's photo; read the log, then apply it"
            ),
            ("replace", "Whose photo may it set"),
            ("upload-button", "Upload"),
        ]
    );
    let labels = browser
        .execute(
            "return ['files', 'folder', 'preview', 'replace'].map((id) => document.getElementById(id).labels.length);",
            json!([]),
        )
        .await?;
    assert_eq!(labels, json!([1, 1, 1, 1]));
    assert_eq!(
        browser
            .execute(
                "const p = document.getElementById('upload-progress'); return [p.getAttribute('aria-label'), document.getElementById('upload-status').getAttribute('aria-live')];",
                json!([])
            )
            .await?,
        json!(["Sent", "polite"])
    );
    browser.screenshot("upload-focused").await?;

    // Enter on the focused button sends it; the job's page follows the job.
    browser.press(webdriver::ENTER).await?;
    browser
        .wait_for_text("#state", "finished", PATIENCE)
        .await?;
    assert_eq!(
        browser
            .execute(
                "return [document.getElementById('state').getAttribute('aria-live'), document.getElementById('progress').labels[0].getAttribute('aria-live')];",
                json!([])
            )
            .await?,
        json!(["polite", "polite"])
    );
    let job_url = browser.url().await?;
    browser.screenshot("job-phone").await?;

    // Every page, as a phone shows it: labelled, in order, no wider than the screen.
    let schools = app
        .get_json(&token, "/v1/districts/springfield/schools")
        .await?;
    let person = app
        .get_json(&token, "/v1/districts/springfield/people?sis_id=S1")
        .await?;
    let ada = person["items"][0]["id"].as_str().unwrap_or_default();
    assert!(!schools.as_array().is_none_or(Vec::is_empty), "{schools}");
    let pages = [
        "/console/d/springfield".to_owned(),
        "/console/d/springfield/jobs".to_owned(),
        job_url.trim_start_matches(&app.url("")).to_owned(),
        "/console/d/springfield/upload".to_owned(),
        "/console/d/springfield/missing".to_owned(),
        "/console/d/springfield/people?q=1001".to_owned(),
        format!("/console/d/springfield/people/{ada}"),
        "/console/d/springfield/schools".to_owned(),
        "/console/d/springfield/tokens".to_owned(),
        "/console/d/springfield/sftp".to_owned(),
        "/console/d/springfield/webhooks".to_owned(),
    ];
    let mut problems = Vec::new();
    for path in &pages {
        browser.goto(&app.url(path)).await?;
        for problem in accessibility_problems(&browser).await? {
            problems.push(format!("{path}: {problem}"));
        }
        let name = path
            .trim_start_matches("/console/d/")
            .replace(['/', '?', '='], "-");
        browser.screenshot(&format!("phone-{name}")).await?;
    }
    browser.goto(&app.url("/console/sign-in")).await?;
    for problem in accessibility_problems(&browser).await? {
        problems.push(format!("sign-in: {problem}"));
    }
    assert!(problems.is_empty(), "{problems:#?}");
    browser.quit().await?;
    app.stop().await
}
