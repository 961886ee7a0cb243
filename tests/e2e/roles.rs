//! Every district route against every role: a token whose role is not enough gets `403` naming
//! the role needed; one whose role is enough gets past the check (whatever the route then
//! answers for the request's content); the operator token passes everywhere.

use pictureday_tests::{Backend, TestApp, file_part};
use reqwest::multipart::Form;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_each_backend!(each_route_needs_its_role);

const D: &str = "springfield";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Viewer,
    Importer,
    Admin,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Importer => "importer",
            Role::Admin => "admin",
        }
    }

    fn needed_text(self) -> &'static str {
        match self {
            Role::Viewer => "viewer, importer or admin",
            Role::Importer => "importer or admin",
            Role::Admin => "admin",
        }
    }
}

enum Body {
    None,
    Json(Value),
    Csv(&'static str),
    /// A photo as a multipart form.
    Photo,
    /// A photo as the raw body.
    Raw,
}

struct Route {
    method: Method,
    path: String,
    body: Body,
    needs: Role,
}

fn route(method: Method, path: impl Into<String>, body: Body, needs: Role) -> Route {
    Route {
        method,
        path: path.into(),
        body,
        needs,
    }
}

/// Every district route, with ids that exist where a route reads and ids that do not where
/// it would change something (so an allowed call changes nothing the others rely on).
fn routes(person: &str, photo: &str, job: &str) -> Vec<Route> {
    use Body::*;
    use Role::*;
    let p = format!("/v1/districts/{D}");
    vec![
        route(Method::GET, p.clone(), None, Viewer),
        route(Method::GET, format!("{p}/people"), None, Viewer),
        route(Method::GET, format!("{p}/people/{person}"), None, Viewer),
        route(
            Method::GET,
            format!("{p}/people/{person}/photo"),
            None,
            Viewer,
        ),
        route(
            Method::GET,
            format!("{p}/people/{person}/photos"),
            None,
            Viewer,
        ),
        route(
            Method::GET,
            format!("{p}/people/{person}/photos/{photo}"),
            None,
            Viewer,
        ),
        route(
            Method::GET,
            format!("{p}/people/{person}/photo-url"),
            None,
            Viewer,
        ),
        route(
            Method::GET,
            format!("{p}/reports/missing-photos.csv"),
            None,
            Viewer,
        ),
        route(Method::GET, format!("{p}/jobs"), None, Viewer),
        route(Method::GET, format!("{p}/jobs/{job}"), None, Viewer),
        route(Method::GET, format!("{p}/jobs/{job}/log"), None, Viewer),
        route(
            Method::GET,
            format!("{p}/jobs/{job}/dead-letters"),
            None,
            Viewer,
        ),
        route(Method::GET, format!("{p}/roster/imports"), None, Viewer),
        route(
            Method::GET,
            format!("{p}/roster/imports/0196f1c4-0000-7c4e-8a1b-2c3d4e5f6a7b"),
            None,
            Viewer,
        ),
        route(
            Method::GET,
            format!("{p}/roster/imports/0196f1c4-0000-7c4e-8a1b-2c3d4e5f6a7b/errors"),
            None,
            Viewer,
        ),
        route(Method::GET, format!("{p}/retention"), None, Viewer),
        route(
            Method::POST,
            format!("{p}/roster?wait=true"),
            Csv("role,sis_id,student_number,first_name,last_name\nstudent,S0,0,First0,Last0\n"),
            Importer,
        ),
        route(Method::POST, format!("{p}/imports"), Photo, Importer),
        // A person who does not exist: refused after the role check (404).
        route(
            Method::PUT,
            format!("{p}/people/nobody/photo"),
            Raw,
            Importer,
        ),
        route(
            Method::DELETE,
            format!("{p}/people/nobody/photo"),
            None,
            Importer,
        ),
        route(
            Method::DELETE,
            format!("{p}/people/nobody/photo?purge=true"),
            None,
            Admin,
        ),
        route(
            Method::POST,
            format!("{p}/people/nobody/photos/{photo}/restore"),
            None,
            Importer,
        ),
        route(
            Method::POST,
            format!("{p}/jobs/no-such-job/undo"),
            None,
            Importer,
        ),
        route(Method::GET, format!("{p}/jobs/{job}/undo"), None, Viewer),
        // Not a preview: refused after the role check (409).
        route(
            Method::POST,
            format!("{p}/jobs/{job}/apply"),
            None,
            Importer,
        ),
        route(
            Method::PUT,
            format!("{p}/retention"),
            Json(json!({"originals_retention_days": null})),
            Admin,
        ),
        route(Method::GET, format!("{p}/sftp-accounts"), None, Admin),
        route(
            Method::POST,
            format!("{p}/sftp-accounts"),
            // Refused for its content (no password, no keys) once past the role check.
            Json(json!({"username": "roles-check"})),
            Admin,
        ),
        route(
            Method::GET,
            format!("{p}/sftp-accounts/missing"),
            None,
            Admin,
        ),
        route(
            Method::PATCH,
            format!("{p}/sftp-accounts/missing"),
            Json(json!({"disabled": true})),
            Admin,
        ),
        route(
            Method::DELETE,
            format!("{p}/sftp-accounts/missing"),
            None,
            Admin,
        ),
        route(Method::GET, format!("{p}/events"), None, Viewer),
        route(Method::GET, format!("{p}/webhooks"), None, Admin),
        route(
            Method::POST,
            format!("{p}/webhooks"),
            Json(json!({"url": "ftp://nowhere", "event_types": ["job.status"]})),
            Admin,
        ),
        route(Method::GET, format!("{p}/webhooks/wh_missing"), None, Admin),
        route(
            Method::DELETE,
            format!("{p}/webhooks/wh_missing"),
            None,
            Admin,
        ),
        route(
            Method::POST,
            format!("{p}/webhooks/wh_missing/enable"),
            None,
            Admin,
        ),
        route(
            Method::GET,
            format!("{p}/webhooks/wh_missing/deliveries"),
            None,
            Admin,
        ),
        // No Clever source: refused after the role check (404, or 422 for the empty token).
        route(Method::GET, format!("{p}/sources/clever"), None, Viewer),
        route(
            Method::PUT,
            format!("{p}/sources/clever"),
            Json(json!({"token": ""})),
            Admin,
        ),
        route(
            Method::POST,
            format!("{p}/sources/clever/sync"),
            None,
            Admin,
        ),
        route(Method::GET, format!("{p}/schools"), None, Viewer),
        route(
            Method::GET,
            format!("{p}/schools/no-such-school"),
            None,
            Viewer,
        ),
        route(
            Method::PUT,
            format!("{p}/schools/no-such-school"),
            Json(json!({"photos_enabled": true})),
            Admin,
        ),
        route(Method::GET, format!("{p}/photo-settings"), None, Viewer),
        route(
            Method::PUT,
            format!("{p}/photo-settings"),
            Json(json!({"photos_enabled": true})),
            Admin,
        ),
        route(Method::GET, format!("{p}/purges"), None, Admin),
        route(Method::GET, format!("{p}/tokens"), None, Admin),
        route(
            Method::POST,
            format!("{p}/tokens"),
            Json(json!({"role": "owner"})),
            Admin,
        ),
        route(
            Method::DELETE,
            format!("{p}/tokens/tok_missing"),
            None,
            Admin,
        ),
    ]
}

async fn send(app: &TestApp, token: &str, route: &Route) -> anyhow::Result<(StatusCode, String)> {
    let mut request = app
        .http
        .request(route.method.clone(), app.url(&route.path))
        .bearer_auth(token);
    request = match &route.body {
        Body::None => request,
        Body::Json(value) => request.json(value),
        Body::Csv(csv) => request
            .header("content-type", "text/csv")
            .body(csv.to_string()),
        Body::Raw => {
            request
                .header("content-type", "image/jpeg")
                .body(pictureday_tests::images::jpeg(
                    pictureday_tests::images::photo(240, 300, 8),
                )?)
        }
        Body::Photo => request.multipart(Form::new().part(
            "file",
            file_part(
                "0.jpg",
                pictureday_tests::images::jpeg(pictureday_tests::images::photo(240, 300, 7))?,
            ),
        )),
    };
    let response = request.send().await?;
    let status = response.status();
    // An event stream that was let through stays open: its status says enough.
    if status.is_success() && route.path.ends_with("/events") {
        return Ok((status, String::new()));
    }
    Ok((status, response.text().await?))
}

async fn each_route_needs_its_role(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let admin = app.create_district(D, "Springfield").await?;
    app.upload_numbered_roster(&admin, D, 1).await?;
    let job = app.import_numbered_photos(&admin, D, 1, (240, 300)).await?;
    app.wait_for_job(&admin, D, &job).await?;
    let people = app
        .get_json(&admin, "/v1/districts/springfield/people")
        .await?;
    let person = people["items"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let photo = people["items"][0]["photo_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(!photo.is_empty(), "{people}");

    let mut tokens = vec![(Role::Admin, admin.clone())];
    for role in [Role::Importer, Role::Viewer] {
        let made: Value = app
            .http
            .post(app.url(&format!("/v1/districts/{D}/tokens")))
            .bearer_auth(&admin)
            .json(&json!({"role": role.name(), "name": format!("{} app", role.name())}))
            .send()
            .await?
            .json()
            .await?;
        let token = made["token"].as_str().unwrap_or_default().to_owned();
        tokens.push((role, token));
    }

    // Every token can say who it is; nothing else about other tokens.
    for (role, token) in &tokens {
        let who = app.get_json(token, "/v1/whoami").await?;
        assert_eq!(who["kind"], "district", "{who}");
        assert_eq!(who["district"], D, "{who}");
        assert_eq!(who["role"], role.name(), "{who}");
        assert!(
            who["token"].as_str().is_some_and(|t| t.starts_with("tok_")),
            "{who}"
        );
    }
    let who = app.get_json(&app.operator_token, "/v1/whoami").await?;
    assert_eq!(who, json!({"kind": "operator"}));
    assert_eq!(
        app.get("pd_wrong", "/v1/whoami").await?.status(),
        StatusCode::UNAUTHORIZED
    );

    let mut checked = 0;
    for route in routes(&person, &photo, &job) {
        for (role, token) in &tokens {
            let (status, body) = send(&app, token, &route).await?;
            let what = format!(
                "{} {} as {}: {status} {body}",
                route.method,
                route.path,
                role.name()
            );
            if *role >= route.needs {
                assert!(
                    status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                    "{what}"
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
                let body: Value = serde_json::from_str(&body)?;
                assert_eq!(body["error"]["code"], "forbidden", "{what}");
                assert_eq!(
                    body["error"]["message"],
                    format!(
                        "this needs a token with role {}; this token's role is {}",
                        route.needs.needed_text(),
                        role.name()
                    ),
                    "{what}"
                );
            }
            checked += 1;
        }
        let (status, body) = send(&app, &app.operator_token, &route).await?;
        assert!(
            status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
            "{} {} as operator: {status} {body}",
            route.method,
            route.path
        );
    }
    assert_eq!(checked, routes(&person, &photo, &job).len() * 3);
    app.stop().await
}
