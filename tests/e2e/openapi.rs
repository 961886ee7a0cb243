//! The API's OpenAPI document: served without a token at `/v1/openapi.json` (and rendered at
//! `/v1/docs`) by the embedded default and the gateway alike, valid OpenAPI 3.1 to a real
//! validator, and exactly the routes the server serves: every route registered in the source is
//! in it with exactly the methods the server answers, and nothing else is.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, ensure};
use pictureday_tests::{AppLayout, Backend, TestApp};
use serde_json::Value;

/// The methods an operation of the document can have.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

async fn document(app: &TestApp) -> anyhow::Result<Value> {
    // No token: the document holds no data.
    let response = app.http.get(app.url("/v1/openapi.json")).send().await?;
    ensure!(response.status() == 200, "{}", response.status());
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    ensure!(kind.starts_with("application/json"), "{kind}");
    Ok(response.json().await?)
}

/// The document's operations, as `(METHOD, path template)`.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            if item.get(method).is_some() {
                operations.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    operations
}

/// The path of every route the services, the runtime and the launcher register, read from
/// their sources (`pictureday_platform::openapi::registered_paths`: a route registered in a way
/// it cannot read fails it, so no route escapes this check).
fn registered_paths() -> anyhow::Result<BTreeSet<String>> {
    let root = workspace_root();
    let mut paths = BTreeSet::new();
    for group in ["services", "shared"] {
        for member in std::fs::read_dir(root.join(group))? {
            let src = member?.path().join("src");
            if src.is_dir() {
                // The console's pages are HTML for people, not the API.
                paths.extend(
                    pictureday_platform::openapi::registered_paths(&src)?
                        .into_iter()
                        .filter(|p| !p.starts_with("/console")),
                );
            }
        }
    }
    Ok(paths)
}

/// A concrete path for a template: each `{param}` filled with a value of its own.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                format!("probe-{}", segment.trim_matches(['{', '}']))
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The methods the server serves on `template`: a method no route has is answered by the
/// router itself with `405` and `Allow` listing those it has (a path it has no route for is the
/// router's own `404`, "no such route").
async fn served_methods(app: &TestApp, template: &str) -> anyhow::Result<BTreeSet<String>> {
    let probe = reqwest::Method::from_bytes(b"PROBE")?;
    let response = app
        .http
        .request(probe, app.url(&concrete(template)))
        .send()
        .await?;
    let status = response.status();
    let allow = response
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.text().await.unwrap_or_default();
    ensure!(
        status == 405,
        "{template} is registered in the source but the server does not route it: {status} {body}"
    );
    let mut methods: BTreeSet<String> = allow
        .split(',')
        .map(|m| m.trim().to_uppercase())
        .filter(|m| !m.is_empty())
        .collect();
    // Every GET route answers HEAD too; the document describes the GET.
    if methods.contains("GET") {
        methods.remove("HEAD");
    }
    ensure!(!methods.is_empty(), "{template}: 405 without Allow");
    Ok(methods)
}

#[tokio::test]
async fn the_document_is_every_route_served_and_nothing_else() -> anyhow::Result<()> {
    let app = TestApp::spawn(Backend::Embedded).await?;
    let doc = document(&app).await?;
    let documented = documented(&doc);
    let mut served = BTreeSet::new();
    for path in registered_paths()? {
        for method in served_methods(&app, &path).await? {
            served.insert((method, path.clone()));
        }
    }
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let not_served: Vec<_> = documented.difference(&served).collect();
    ensure!(
        undocumented.is_empty() && not_served.is_empty(),
        "served but not in /v1/openapi.json: {undocumented:?}\nin /v1/openapi.json but not served: {not_served:?}"
    );
    // The main routes, at least, are there.
    for (method, path) in [
        ("POST", "/v1/districts"),
        ("POST", "/v1/districts/{district}/tokens"),
        ("POST", "/v1/districts/{district}/roster"),
        ("POST", "/v1/districts/{district}/imports"),
        ("GET", "/v1/districts/{district}/jobs/{job}"),
        ("GET", "/v1/districts/{district}/people"),
        ("GET", "/v1/districts/{district}/people/{person}/photo"),
        ("GET", "/v1/openapi.json"),
        ("GET", "/healthz"),
    ] {
        ensure!(
            documented.contains(&(method.to_owned(), path.to_owned())),
            "{method} {path}"
        );
    }
    app.stop().await
}

/// `python3 -m openapi_spec_validator`, with the packages scripts/install-deps.sh installed into
/// `.tools` first on the path.
fn validate(file: &Path) -> anyhow::Result<()> {
    let root = workspace_root();
    let tools = root.join(".tools");
    let site = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, sysconfig; \
             print(sysconfig.get_path('purelib', vars={'base': sys.argv[1], 'platbase': sys.argv[1]}))",
        )
        .arg(&tools)
        .output()
        .context("python3 is needed (scripts/install-deps.sh)")?;
    let site = String::from_utf8_lossy(&site.stdout).trim().to_owned();
    let python_path = match std::env::var("PYTHONPATH") {
        Ok(existing) if !existing.is_empty() => format!("{site}:{existing}"),
        _ => site,
    };
    let output = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
        .arg(file)
        .env("PYTHONPATH", python_path)
        .output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(
        output.status.success(),
        "openapi-spec-validator refused the document (run scripts/install-deps.sh if it is missing):\n{said}"
    );
    ensure!(said.contains("OK"), "{said}");
    Ok(())
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1_with_its_security_errors_and_examples()
-> anyhow::Result<()> {
    let app = TestApp::spawn(Backend::Embedded).await?;
    let doc = document(&app).await?;
    assert_eq!(doc["openapi"], "3.1.0");
    let file = app.dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc)?)?;
    validate(&file)?;

    // A bearer token everywhere, but where none is needed.
    let scheme = &doc["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!(scheme["type"], "http", "{scheme}");
    assert_eq!(scheme["scheme"], "bearer", "{scheme}");
    assert_eq!(doc["security"], serde_json::json!([{"bearerAuth": []}]));
    let public = [
        "/healthz",
        "/readyz",
        "/v1/openapi.json",
        "/v1/docs",
        "/v1/photo-links/{district}/{person}/{photo}/{size}",
    ];
    for (method, path) in documented(&doc) {
        let operation = &doc["paths"][&path][method.to_lowercase()];
        let responses = operation["responses"].as_object().context("responses")?;
        if public.contains(&path.as_str()) {
            assert_eq!(
                operation["security"],
                serde_json::json!([]),
                "{method} {path}"
            );
            assert!(!responses.contains_key("401"), "{method} {path}");
        } else {
            assert!(operation.get("security").is_none(), "{method} {path}");
            assert_eq!(
                operation["responses"]["401"]["$ref"], "#/components/responses/Unauthorized",
                "{method} {path}"
            );
        }
        assert!(operation["operationId"].is_string(), "{method} {path}");
        // Every error response is the one error shape.
        for (status, response) in responses {
            if !status.starts_with('4') && !status.starts_with('5') {
                continue;
            }
            if let Some(reference) = response["$ref"].as_str() {
                let name = reference.rsplit('/').next().unwrap_or_default();
                let shared = &doc["components"]["responses"][name];
                assert_eq!(
                    shared["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{method} {path} {status}"
                );
            } else if path != "/readyz" || status != "503" {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{method} {path} {status}"
                );
            }
        }
    }
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["required"], serde_json::json!(["error"]), "{error}");
    let detail = &doc["components"]["schemas"]["ErrorDetail"]["properties"];
    for field in ["code", "message", "details"] {
        assert!(detail.get(field).is_some(), "{field}: {detail}");
    }

    // Examples of the main routes' bodies.
    let example = |method: &str, path: &str, at: &str| -> Value {
        let operation = &doc["paths"][path][method];
        let content = if at == "request" {
            &operation["requestBody"]["content"]
        } else {
            &operation["responses"][at]["content"]
        };
        content
            .as_object()
            .and_then(|c| c.values().find_map(|media| media.get("example")))
            .cloned()
            .unwrap_or(Value::Null)
    };
    for (method, path, at) in [
        ("post", "/v1/districts", "request"),
        ("post", "/v1/districts", "201"),
        ("get", "/v1/districts", "200"),
        ("post", "/v1/districts/{district}/tokens", "request"),
        ("post", "/v1/districts/{district}/tokens", "201"),
        ("post", "/v1/districts/{district}/roster", "request"),
        ("post", "/v1/districts/{district}/roster", "200"),
        ("post", "/v1/districts/{district}/roster", "202"),
        (
            "get",
            "/v1/districts/{district}/roster/imports/{import}",
            "200",
        ),
        ("post", "/v1/districts/{district}/imports", "202"),
        ("get", "/v1/districts/{district}/jobs", "200"),
        ("get", "/v1/districts/{district}/jobs/{job}", "200"),
        ("get", "/v1/districts/{district}/jobs/{job}/log", "200"),
        ("post", "/v1/districts/{district}/jobs/{job}/apply", "200"),
        ("get", "/v1/districts/{district}/people", "200"),
        ("get", "/v1/districts/{district}/people/{person}", "200"),
        (
            "get",
            "/v1/districts/{district}/people/{person}/photo-url",
            "200",
        ),
    ] {
        assert!(
            !example(method, path, at).is_null(),
            "no example for {method} {path} {at}"
        );
    }
    let photo = &doc["paths"]["/v1/districts/{district}/people/{person}/photo"]["get"];
    assert!(
        photo["responses"]["200"]["content"]["image/jpeg"].is_object(),
        "{photo}"
    );
    app.stop().await
}

#[tokio::test]
async fn the_reference_page_is_plain_html_with_only_its_own_styles() -> anyhow::Result<()> {
    let app = TestApp::spawn(Backend::Embedded).await?;
    let response = app.http.get(app.url("/v1/docs")).send().await?;
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(header("content-type").starts_with("text/html"));
    assert_eq!(
        header("content-security-policy"),
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
    );
    assert_eq!(header("x-content-type-options"), "nosniff");
    let html = response.text().await?;
    assert!(!html.contains("<script"), "no scripts");
    for shown in [
        "/v1/districts/{district}/imports",
        "/v1/districts/{district}/roster",
        "bearer token",
        "id=\"schema-Error\"",
    ] {
        assert!(
            html.contains(&shown.replace('"', "&quot;")) || html.contains(shown),
            "{shown}"
        );
    }
    // Every other response keeps the strict policy.
    let other = app.http.get(app.url("/v1/openapi.json")).send().await?;
    assert_eq!(
        other.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    app.stop().await
}

#[tokio::test]
async fn the_gateway_serves_the_same_document() -> anyhow::Result<()> {
    let embedded = TestApp::spawn(Backend::Embedded).await?;
    let whole = document(&embedded).await?;
    embedded.stop().await?;
    let app = TestApp::spawn_with(
        Backend::Embedded,
        AppLayout {
            behind_gateway: true,
            ..AppLayout::default()
        },
    )
    .await?;
    assert_eq!(document(&app).await?, whole);
    let page = app.http.get(app.url("/v1/docs")).send().await?;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()?
            .contains("style-src 'unsafe-inline'")
    );
    app.stop().await
}
