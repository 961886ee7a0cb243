//! District tokens with roles, names and expiry, listed and revoked; and signed photo links that
//! serve a person's photo without a token until they expire, never another person's.

use std::time::Duration;

use pictureday_tests::images::{jpeg, photo};
use pictureday_tests::{Backend, TestApp, file_part, zip_of};
use reqwest::StatusCode;
use reqwest::multipart::Form;
use serde_json::{Value, json};

on_each_backend!(
    tokens_have_roles_names_and_expiry,
    photo_links_serve_the_person_photo_until_they_expire
);

const DISTRICT: &str = "springfield";

async fn new_token(app: &TestApp, by: &str, body: Value) -> anyhow::Result<(StatusCode, Value)> {
    let response = app
        .http
        .post(app.url(&format!("/v1/districts/{DISTRICT}/tokens")))
        .bearer_auth(by)
        .json(&body)
        .send()
        .await?;
    Ok((response.status(), response.json().await?))
}

async fn tokens_have_roles_names_and_expiry(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let admin = app.create_district(DISTRICT, "Springfield").await?;
    app.upload_numbered_roster(&admin, DISTRICT, 2).await?;

    // An admin district token makes a viewer token with a name; the token is shown once.
    let (status, viewer) = new_token(
        &app,
        &admin,
        json!({"role": "viewer", "name": "hall-pass app"}),
    )
    .await?;
    assert_eq!(status, StatusCode::CREATED, "{viewer}");
    assert_eq!(viewer["role"], "viewer");
    assert_eq!(viewer["name"], "hall-pass app");
    assert_eq!(viewer["expires_at"], Value::Null);
    let viewer_token = viewer["token"].as_str().unwrap_or_default().to_owned();
    let viewer_id = viewer["id"].as_str().unwrap_or_default().to_owned();
    assert!(viewer_token.starts_with("pd_") && viewer_id.starts_with("tok_"));

    // The viewer reads people, and may not import: 403 naming the role needed.
    let people = app
        .get(&viewer_token, "/v1/districts/springfield/people")
        .await?;
    assert_eq!(people.status(), StatusCode::OK);
    let import = app
        .http
        .post(app.url("/v1/districts/springfield/imports"))
        .bearer_auth(&viewer_token)
        .multipart(Form::new().part("file", file_part("0.jpg", jpeg(photo(240, 300, 0))?)))
        .send()
        .await?;
    assert_eq!(import.status(), StatusCode::FORBIDDEN);
    let refused: Value = import.json().await?;
    assert_eq!(refused["error"]["code"], "forbidden");
    assert_eq!(
        refused["error"]["message"],
        "this needs a token with role importer or admin; this token's role is viewer"
    );
    // Nor make tokens.
    let (status, _) = new_token(&app, &viewer_token, json!({})).await?;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Bad bodies: an unknown role, an expiry in the past.
    let (status, body) = new_token(&app, &admin, json!({"role": "owner"})).await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) =
        new_token(&app, &admin, json!({"expires_at": "2020-01-01T00:00:00Z"})).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // A token that expires in two seconds works, then is refused.
    let soon = chrono::Utc::now() + chrono::Duration::seconds(2);
    let (status, short) = new_token(
        &app,
        &admin,
        json!({"role": "importer", "expires_at": soon.to_rfc3339()}),
    )
    .await?;
    assert_eq!(status, StatusCode::CREATED, "{short}");
    let short_token = short["token"].as_str().unwrap_or_default().to_owned();
    let before = app.get(&short_token, "/v1/districts/springfield").await?;
    assert_eq!(before.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = app.get(&short_token, "/v1/districts/springfield").await?;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);

    // The list names every token and shows none of them.
    let listed = app
        .get_json(&admin, "/v1/districts/springfield/tokens")
        .await?;
    let listed = listed.as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 3, "{listed:?}");
    let roles: Vec<&str> = listed.iter().filter_map(|t| t["role"].as_str()).collect();
    assert_eq!(roles, ["admin", "viewer", "importer"]);
    let text = serde_json::to_string(&listed)?;
    assert!(!text.contains(&viewer_token) && !text.contains(&admin) && !text.contains("pd_"));

    // Revoked, the viewer token is refused; revoking it again is a 404.
    let revoke = |by: String, id: String| {
        app.http
            .delete(app.url(&format!("/v1/districts/{DISTRICT}/tokens/{id}")))
            .bearer_auth(by)
            .send()
    };
    let revoked = revoke(admin.clone(), viewer_id.clone()).await?;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let refused = app
        .get(&viewer_token, "/v1/districts/springfield/people")
        .await?;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        revoke(admin.clone(), viewer_id).await?.status(),
        StatusCode::NOT_FOUND
    );

    // Another district's admin sees none of this.
    let other = app.create_district("shelbyville", "Shelbyville").await?;
    let foreign = app.get(&other, "/v1/districts/springfield/tokens").await?;
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
    app.stop().await
}

async fn link(app: &TestApp, token: &str, person: &str, query: &str) -> anyhow::Result<Value> {
    app.get_json(
        token,
        &format!("/v1/districts/{DISTRICT}/people/{person}/photo-url?{query}"),
    )
    .await
}

async fn person_id(app: &TestApp, token: &str, sis_id: &str) -> anyhow::Result<String> {
    let people = app
        .get_json(
            token,
            &format!("/v1/districts/{DISTRICT}/people?sis_id={sis_id}"),
        )
        .await?;
    people["items"][0]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no person {sis_id}: {people}"))
}

async fn photos_of(app: &TestApp, token: &str, numbers: &[(u32, u32)]) -> anyhow::Result<()> {
    let entries = numbers
        .iter()
        .map(|&(n, seed)| Ok((format!("{n}.jpg"), jpeg(photo(240, 300, seed))?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let entries: Vec<(&str, Vec<u8>)> = entries
        .iter()
        .map(|(name, bytes)| (name.as_str(), bytes.clone()))
        .collect();
    let job = app
        .import_archive(token, DISTRICT, zip_of(&entries)?)
        .await?;
    let done = app.wait_for_job(token, DISTRICT, &job).await?;
    anyhow::ensure!(done["state"] == "finished", "{done}");
    Ok(())
}

async fn photo_links_serve_the_person_photo_until_they_expire(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let admin = app.create_district(DISTRICT, "Springfield").await?;
    app.upload_numbered_roster(&admin, DISTRICT, 2).await?;
    let (_, viewer) = new_token(&app, &admin, json!({"role": "viewer"})).await?;
    let viewer = viewer["token"].as_str().unwrap_or_default().to_owned();
    let ada = person_id(&app, &admin, "S0").await?;

    // A link made before Ada has a photo serves the placeholder, then her photo once she has one.
    let early = link(&app, &viewer, &ada, "size=small").await?;
    assert_eq!(early["photo_id"], Value::Null);
    let early_url = early["url"].as_str().unwrap_or_default().to_owned();
    let placeholder = app.http.get(&early_url).send().await?;
    assert_eq!(placeholder.status(), StatusCode::OK);
    assert_eq!(placeholder.headers()["x-pictureday-placeholder"], "true");

    photos_of(&app, &admin, &[(0, 100), (1, 101)]).await?;
    let with_token = app
        .get(
            &admin,
            &format!("/v1/districts/{DISTRICT}/people/{ada}/photo?size=small"),
        )
        .await?;
    let ada_bytes = with_token.bytes().await?;
    let from_early = app.http.get(&early_url).send().await?;
    assert!(
        from_early
            .headers()
            .get("x-pictureday-placeholder")
            .is_none()
    );
    assert_eq!(from_early.bytes().await?, ada_bytes);

    // A link to her current photo: no token, the same bytes, an ETag, cacheable until it expires.
    let made = link(&app, &viewer, &ada, "size=small&ttl=600").await?;
    let url = made["url"].as_str().unwrap_or_default().to_owned();
    assert!(
        url.starts_with("http://") && url.contains("/v1/photo-links/springfield/"),
        "{url}"
    );
    let served = app.http.get(&url).send().await?;
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.headers()["content-type"], "image/jpeg");
    let cache = served.headers()["cache-control"].to_str()?.to_owned();
    assert!(cache.starts_with("private, max-age="), "{cache}");
    let max_age: u64 = cache.trim_start_matches("private, max-age=").parse()?;
    assert!((590..=600).contains(&max_age), "{cache}");
    let etag = served.headers()["etag"].clone();
    assert_eq!(served.bytes().await?, ada_bytes);
    let again = app
        .http
        .get(&url)
        .header("if-none-match", etag)
        .send()
        .await?;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // Tampered: another person's id, another size, another expiry, a changed signature.
    let bob = person_id(&app, &admin, "S1").await?;
    let tampered = [
        url.replace(&ada, &bob),
        url.replace("/small?", "/large?"),
        url.replace("expires=", "expires=9"),
        {
            let cut = url.len() - 1;
            let last = if url.ends_with('0') { "1" } else { "0" };
            format!("{}{last}", &url[..cut])
        },
        url.split('?').next().unwrap_or_default().to_owned(),
    ];
    for bad in tampered {
        let refused = app.http.get(&bad).send().await?;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{bad}");
        let body: Value = refused.json().await?;
        assert_eq!(body["error"]["code"], "forbidden", "{bad}");
    }

    // Replaced: the link serves her new photo (checked on every use), never Bob's.
    photos_of(&app, &admin, &[(0, 200)]).await?;
    let new_bytes = app
        .get(
            &admin,
            &format!("/v1/districts/{DISTRICT}/people/{ada}/photo?size=small"),
        )
        .await?
        .bytes()
        .await?;
    assert_ne!(new_bytes, ada_bytes);
    let replaced = app.http.get(&url).send().await?;
    assert_eq!(replaced.headers()["cache-control"], "private, no-cache");
    assert_eq!(replaced.bytes().await?, new_bytes);

    // Expired: refused.
    let short = link(&app, &viewer, &ada, "ttl=1").await?;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = app
        .http
        .get(short["url"].as_str().unwrap_or_default())
        .send()
        .await?;
    assert_eq!(expired.status(), StatusCode::FORBIDDEN);
    let body: Value = expired.json().await?;
    assert_eq!(
        body["error"]["message"],
        "this photo link has expired; ask the app for a new one"
    );

    // Bad requests for a link, and another district's token.
    for query in ["size=huge", "ttl=0", "ttl=9999999"] {
        let response = app
            .get(
                &viewer,
                &format!("/v1/districts/{DISTRICT}/people/{ada}/photo-url?{query}"),
            )
            .await?;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
    }
    let other = app.create_district("shelbyville", "Shelbyville").await?;
    let foreign = app
        .get(
            &other,
            &format!("/v1/districts/{DISTRICT}/people/{ada}/photo-url"),
        )
        .await?;
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
    app.stop().await
}
