//! The console over HTTP, as a browser uses it: signing in sets an `HttpOnly`, `SameSite=Strict`
//! cookie; pages show the district's own data (another district's pages are a `404`); every
//! form needs the session's CSRF value and the console's own origin; a school's photos turned off
//! from the console serve the placeholder; a viewer is offered no switches and cannot use them.

use pictureday_tests::{Backend, TestApp, images, zip_of};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use serde_json::json;

on_each_backend!(an_admin_signs_in_and_runs_the_district_from_the_console);

fn browser() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// Signs in; the session cookie (`name=value`).
async fn sign_in(app: &TestApp, token: &str) -> anyhow::Result<String> {
    let response = browser()?
        .post(app.url("/console/sign-in"))
        .header(ORIGIN, app.url(""))
        .form(&[("token", token), ("district", "")])
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == StatusCode::SEE_OTHER,
        "sign-in: {}",
        response.status()
    );
    let cookie = response
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Ok(cookie.split(';').next().unwrap_or_default().to_owned())
}

async fn page(app: &TestApp, cookie: &str, path: &str) -> anyhow::Result<(StatusCode, String)> {
    let response = browser()?
        .get(app.url(path))
        .header(COOKIE, cookie)
        .send()
        .await?;
    Ok((response.status(), response.text().await?))
}

/// The CSRF value in a page's forms.
fn csrf(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned()
}

async fn an_admin_signs_in_and_runs_the_district_from_the_console(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let token = app.create_district("springfield", "Springfield").await?;
    let other = app.create_district("shelbyville", "Shelbyville").await?;
    let roster = "role,sis_id,student_number,first_name,last_name,school\n\
        student,S1,1001,Ada,North,North Elementary\n\
        student,S2,1002,Ben,South,South Middle\n";
    let (status, body) = app.upload_roster(&token, "springfield", roster).await?;
    anyhow::ensure!(status == 200, "{body}");
    let archive = zip_of(&[
        ("1001.jpg", images::jpeg(images::photo(240, 300, 1))?),
        ("9999.jpg", images::jpeg(images::photo(240, 300, 9))?),
    ])?;
    let job = app.import_archive(&token, "springfield", archive).await?;
    app.wait_for_job(&token, "springfield", &job).await?;

    // The sign-in page, and a wrong token.
    let (status, form) = page(&app, "", "/console/sign-in").await?;
    assert_eq!(status, 200);
    assert!(
        form.contains("<label for=\"token\">Token</label>"),
        "{form}"
    );
    let wrong = browser()?
        .post(app.url("/console/sign-in"))
        .header(ORIGIN, app.url(""))
        .form(&[("token", "pd_wrong")])
        .send()
        .await?;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get(SET_COOKIE).is_none());
    // Not signed in: every page sends you to sign in.
    let (status, _) = page(&app, "", "/console/d/springfield").await?;
    assert_eq!(status, 303);

    // Signed in: the cookie is the session's and nothing else can read it.
    let response = browser()?
        .post(app.url("/console/sign-in"))
        .header(ORIGIN, app.url(""))
        .form(&[("token", token.as_str())])
        .send()
        .await?;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()[LOCATION], "/console/d/springfield");
    let set = response.headers()[SET_COOKIE].to_str()?.to_owned();
    assert!(
        set.contains("HttpOnly")
            && set.contains("SameSite=Strict")
            && set.contains("Path=/console"),
        "{set}"
    );
    assert!(
        !set.contains(&token),
        "the token is sealed, never in the clear"
    );
    assert!(!set.contains("Secure"), "plain HTTP here");
    let cookie = set.split(';').next().unwrap_or_default().to_owned();

    // Home: SmartPass's alert, with its list and CSV.
    let (status, home) = page(&app, &cookie, "/console/d/springfield").await?;
    assert_eq!(status, 200);
    assert!(
        home.contains("<strong>1</strong> person is without a photo"),
        "{home}"
    );
    // Another district's pages do not exist for this token.
    let (status, _) = page(&app, &cookie, "/console/d/shelbyville").await?;
    assert_eq!(status, 404);

    // The job and its log, filtered.
    let (status, jobs) = page(&app, &cookie, "/console/d/springfield/jobs").await?;
    assert_eq!(status, 200);
    assert!(
        jobs.contains(&format!("/console/d/springfield/jobs/{job}")),
        "{jobs}"
    );
    let (status, log) = page(
        &app,
        &cookie,
        &format!("/console/d/springfield/jobs/{job}?outcome=unmatched"),
    )
    .await?;
    assert_eq!(status, 200);
    assert!(log.contains("<p id=\"shown\">1 of 1 files</p>"), "{log}");
    assert!(
        log.contains("9999.jpg") && !log.contains("1001.jpg"),
        "{log}"
    );
    assert!(
        log.contains("No one on the roster has this id: add the person to the roster"),
        "{log}"
    );
    let (status, searched) = page(
        &app,
        &cookie,
        &format!("/console/d/springfield/jobs/{job}?q=1001"),
    )
    .await?;
    assert_eq!(status, 200);
    assert!(searched.contains("1001.jpg") && !searched.contains("9999.jpg"));
    let (status, csv) = page(
        &app,
        &cookie,
        &format!("/console/d/springfield/jobs/{job}/log.csv"),
    )
    .await?;
    assert_eq!(status, 200);
    assert_eq!(csv.lines().count(), 3, "{csv}");

    // Missing photos: Ben, as a page and as the CSV.
    let (_, missing) = page(&app, &cookie, "/console/d/springfield/missing").await?;
    assert!(
        missing.contains("<p id=\"count\">1 without a photo</p>") && missing.contains("Ben South"),
        "{missing}"
    );
    let (_, missing_csv) = page(&app, &cookie, "/console/d/springfield/missing.csv").await?;
    assert!(
        missing_csv.contains("student,S2,1002,,Ben,South,South Middle"),
        "{missing_csv}"
    );

    // A school's photos off, from the console.
    let schools = app
        .get_json(&token, "/v1/districts/springfield/schools")
        .await?;
    let north = schools[0]["id"].as_str().unwrap_or_default().to_owned();
    let (_, schools_page) = page(&app, &cookie, "/console/d/springfield/schools").await?;
    let value = csrf(&schools_page);
    assert_eq!(value.len(), 32, "{schools_page}");
    let toggle = app.url(&format!("/console/d/springfield/schools/{north}/photos"));
    let post = |csrf: String, origin: String| {
        let (toggle, cookie) = (toggle.clone(), cookie.clone());
        async move {
            browser()?
                .post(toggle)
                .header(COOKIE, cookie)
                .header(ORIGIN, origin)
                .form(&[("csrf", csrf.as_str()), ("enabled", "false")])
                .send()
                .await
                .map_err(anyhow::Error::from)
        }
    };
    assert_eq!(
        post(String::new(), app.url("")).await?.status(),
        403,
        "no CSRF value"
    );
    assert_eq!(
        post("0".repeat(32), app.url("")).await?.status(),
        403,
        "a wrong one"
    );
    assert_eq!(
        post(value.clone(), "https://evil.example".into())
            .await?
            .status(),
        403,
        "another site's form"
    );
    let people = app
        .get_json(&token, "/v1/districts/springfield/people?sis_id=S1")
        .await?;
    let ada = people["items"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let photo_path = format!("/v1/districts/springfield/people/{ada}/photo");
    assert!(
        app.get(&token, &photo_path)
            .await?
            .headers()
            .get("x-pictureday-placeholder")
            .is_none()
    );
    let done = post(value.clone(), app.url("")).await?;
    assert_eq!(done.status(), 303);
    let photo = app.get(&token, &photo_path).await?;
    assert_eq!(
        photo.headers()["x-pictureday-placeholder-reason"],
        "school-photos-off"
    );
    let (_, schools_page) = page(&app, &cookie, "/console/d/springfield/schools").await?;
    assert!(
        schools_page.contains("<strong>off</strong>"),
        "{schools_page}"
    );

    // A viewer sees the schools but is offered no switch, and cannot use one.
    let viewer: serde_json::Value = app
        .http
        .post(app.url("/v1/districts/springfield/tokens"))
        .bearer_auth(&token)
        .json(&json!({"role": "viewer"}))
        .send()
        .await?
        .json()
        .await?;
    let viewer_cookie = sign_in(&app, viewer["token"].as_str().unwrap_or_default()).await?;
    let (_, viewer_page) = page(&app, &viewer_cookie, "/console/d/springfield/schools").await?;
    assert!(
        !viewer_page.contains("/photos\""),
        "no switch: {viewer_page}"
    );
    let viewer_csrf = csrf(&viewer_page);
    let refused = browser()?
        .post(&toggle)
        .header(COOKIE, &viewer_cookie)
        .header(ORIGIN, app.url(""))
        .form(&[("csrf", viewer_csrf.as_str()), ("enabled", "true")])
        .send()
        .await?;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        app.get(&token, &photo_path).await?.headers()["x-pictureday-placeholder-reason"],
        "school-photos-off"
    );

    // The operator picks a district; the other district's admin sees only theirs.
    let operator_cookie = sign_in(&app, &app.operator_token).await?;
    let (status, districts) = page(&app, &operator_cookie, "/console/districts").await?;
    assert_eq!(status, 200);
    assert!(
        districts.contains("/console/d/shelbyville")
            && districts.contains("/console/d/springfield")
    );
    let other_cookie = sign_in(&app, &other).await?;
    let (status, _) = page(&app, &other_cookie, "/console/d/springfield/jobs").await?;
    assert_eq!(status, 404);

    // Signing out clears the cookie.
    let out = browser()?
        .post(app.url("/console/sign-out"))
        .header(COOKIE, &cookie)
        .header(ORIGIN, app.url(""))
        .form(&[("csrf", value.as_str())])
        .send()
        .await?;
    assert_eq!(out.status(), 303);
    assert!(out.headers()[SET_COOKIE].to_str()?.contains("Max-Age=0"));
    app.stop().await
}
