//! The HTTP edge: every refusal in the documented JSON shape (the framework's own included),
//! security headers on every response, list cursors checked, connection limits and timeouts on
//! every listener (a service's and the gateway's), and no token ever written to a log.

use std::time::{Duration, Instant};

use pictureday_platform::http_limits::HttpLimits;
use pictureday_tests::images::{jpeg, photo};
use pictureday_tests::{
    AppLayout, Backend, OPERATOR_TOKEN, ServiceProcess, TestApp, TestClient, zip_of,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SERVER: &str = env!("CARGO_BIN_EXE_pictureday-under-test");

fn assert_hardened(headers: &reqwest::header::HeaderMap, what: &str) {
    assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(
        headers["content-security-policy"], "default-src 'none'; frame-ancestors 'none'",
        "{what}"
    );
    assert_eq!(headers["cache-control"], "no-store", "{what}");
}

#[tokio::test]
async fn every_refusal_is_a_json_error_and_every_response_hardened() -> anyhow::Result<()> {
    let app = TestApp::spawn(Backend::Embedded).await?;
    let token = app.create_district("springfield", "Springfield").await?;
    app.upload_numbered_roster(&token, "springfield", 1).await?;
    let op = app.operator_token.clone();
    let big = format!(
        "{{\"id\":\"big\",\"name\":\"{}\"}}",
        "x".repeat(3 * 1024 * 1024)
    );
    // (what, method, path, content type, body, status, code)
    type Case = (
        &'static str,
        reqwest::Method,
        &'static str,
        Option<&'static str>,
        String,
        u16,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "malformed JSON",
            reqwest::Method::POST,
            "/v1/districts",
            Some("application/json"),
            "{\"id\":".into(),
            400,
            "bad_request",
        ),
        (
            "wrong type",
            reqwest::Method::POST,
            "/v1/districts",
            Some("application/json"),
            "{\"id\":5,\"name\":\"x\"}".into(),
            422,
            "unprocessable",
        ),
        (
            "missing field",
            reqwest::Method::POST,
            "/v1/districts",
            Some("application/json"),
            "{\"id\":\"x\"}".into(),
            422,
            "unprocessable",
        ),
        (
            "wrong content type",
            reqwest::Method::POST,
            "/v1/districts",
            Some("text/plain"),
            "{\"id\":\"x\",\"name\":\"y\"}".into(),
            415,
            "unsupported_media_type",
        ),
        (
            "bad query string",
            reqwest::Method::GET,
            "/v1/districts/springfield/people?missing_photo=maybe",
            None,
            String::new(),
            400,
            "bad_request",
        ),
        (
            "body too large",
            reqwest::Method::POST,
            "/v1/districts",
            Some("application/json"),
            big,
            413,
            "payload_too_large",
        ),
        (
            "unknown route",
            reqwest::Method::GET,
            "/v2/nothing",
            None,
            String::new(),
            404,
            "not_found",
        ),
        (
            "wrong method",
            reqwest::Method::DELETE,
            "/v1/districts",
            None,
            String::new(),
            405,
            "method_not_allowed",
        ),
        (
            "no token",
            reqwest::Method::GET,
            "/v1/districts",
            None,
            String::new(),
            401,
            "unauthorized",
        ),
    ];
    for (what, method, path, content_type, body, status, code) in cases {
        let mut request = app.http.request(method, app.url(path));
        if code != "unauthorized" {
            request = request.bearer_auth(&op);
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        if !body.is_empty() {
            request = request.body(body);
        }
        let response = request.send().await?;
        assert_eq!(response.status().as_u16(), status, "{what}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{what}"
        );
        assert_hardened(response.headers(), what);
        let json: Value = response.json().await?;
        assert_eq!(json["error"]["code"], code, "{what}: {json}");
        assert!(
            json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: {json}"
        );
    }

    // Heads over the limits: one 40 KiB header, or 150 small ones.
    let mut many = reqwest::header::HeaderMap::new();
    for n in 0..150 {
        many.insert(
            reqwest::header::HeaderName::from_bytes(format!("x-extra-{n}").as_bytes())?,
            reqwest::header::HeaderValue::from_static("1"),
        );
    }
    let one_big = app
        .http
        .get(app.url("/v1/districts"))
        .bearer_auth(&op)
        .header("x-padding", "p".repeat(40 * 1024));
    let too_many = app
        .http
        .get(app.url("/v1/districts"))
        .bearer_auth(&op)
        .headers(many);
    for (what, request) in [("one large header", one_big), ("150 headers", too_many)] {
        let response = request.send().await?;
        assert_eq!(response.status().as_u16(), 431, "{what}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{what}"
        );
        assert_hardened(response.headers(), what);
        let json: Value = response.json().await?;
        assert_eq!(json["error"]["code"], "headers_too_large", "{what}: {json}");
    }

    // Successes carry the headers too: JSON, a photo (a placeholder here), health.
    let people = app.get(&token, "/v1/districts/springfield/people").await?;
    assert_hardened(people.headers(), "people");
    let people: Value = people.json().await?;
    let person = people["items"][0]["id"].as_str().unwrap_or_default();
    let rendition = app
        .get(
            &token,
            &format!("/v1/districts/springfield/people/{person}/photo"),
        )
        .await?;
    assert_eq!(rendition.status(), 200);
    assert_hardened(rendition.headers(), "photo");
    let health = app.http.get(app.url("/healthz")).send().await?;
    assert_hardened(health.headers(), "healthz");
    app.stop().await
}

on_each_backend!(people_and_jobs_query_parameters_are_checked);

async fn people_and_jobs_query_parameters_are_checked(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let token = app.create_district("springfield", "Springfield").await?;
    let roster = "role,sis_id,student_number,email,first_name,last_name\n\
                  student,S0,0,zero@example.org,A,Zero\n\
                  student,S1,1,one@example.org,B,One\n\
                  student,S2,2,two@example.org,C,Two\n";
    let (status, body) = app.upload_roster(&token, "springfield", roster).await?;
    assert_eq!(status, 200, "{body}");
    let first_job = app
        .import_archive(
            &token,
            "springfield",
            zip_of(&[("0.jpg", jpeg(photo(400, 500, 0))?)])?,
        )
        .await?;
    app.wait_for_job(&token, "springfield", &first_job).await?;
    let second_job = app
        .import_archive(
            &token,
            "springfield",
            zip_of(&[("1.jpg", jpeg(photo(400, 500, 1))?)])?,
        )
        .await?;
    app.wait_for_job(&token, "springfield", &second_job).await?;

    let people = "/v1/districts/springfield/people";
    let count = |v: &Value| v["items"].as_array().map_or(0, Vec::len);
    let sis = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["sis_id"].as_str().map(str::to_owned))
            .collect()
    };
    let missing = app
        .get_json(&token, &format!("{people}?missing_photo=true"))
        .await?;
    assert_eq!(sis(&missing), ["S2"]);
    let with = app
        .get_json(&token, &format!("{people}?missing_photo=false"))
        .await?;
    assert_eq!(count(&with), 2);
    for (query, expected) in [
        ("sis_id=S1", "S1"),
        ("student_number=2", "S2"),
        ("email=ONE@example.org", "S1"),
    ] {
        let found = app.get_json(&token, &format!("{people}?{query}")).await?;
        assert_eq!(sis(&found), [expected], "{query}");
    }
    let page = app.get_json(&token, &format!("{people}?limit=2")).await?;
    assert_eq!(count(&page), 2);
    let after = page["next_after"].as_str().unwrap_or_default().to_owned();
    let rest = app
        .get_json(&token, &format!("{people}?limit=2&after={after}"))
        .await?;
    assert_eq!(count(&rest), 1);
    assert!(rest["next_after"].is_null());

    let jobs = "/v1/districts/springfield/jobs";
    let newest = app.get_json(&token, &format!("{jobs}?limit=1")).await?;
    assert_eq!(newest["items"][0]["job_id"], second_job.as_str());
    let after = newest["next_after"].as_str().unwrap_or_default().to_owned();
    let older = app
        .get_json(&token, &format!("{jobs}?limit=1&after={after}"))
        .await?;
    assert_eq!(older["items"][0]["job_id"], first_job.as_str());
    let all = app.get_json(&token, jobs).await?;
    assert_eq!(count(&all), 2);

    for (path, parameter) in [
        (format!("{people}?missing_photo=maybe"), "missing_photo"),
        (format!("{people}?limit=0"), "limit"),
        (format!("{people}?limit=1001"), "limit"),
        (format!("{people}?limit=many"), "limit"),
        (format!("{people}?after=S1"), "after"),
        (format!("{people}?after="), "after"),
        (format!("{people}?after=%27%20or%201=1"), "after"),
        (format!("{jobs}?limit=0"), "limit"),
        (format!("{jobs}?limit=x"), "limit"),
        (format!("{jobs}?after=not-a-job"), "after"),
        (
            format!("{jobs}?after={}", first_job.to_uppercase()),
            "after",
        ),
    ] {
        let response = app.get(&token, &path).await?;
        assert_eq!(response.status(), 400, "{path}");
        let json: Value = response.json().await?;
        assert_eq!(json["error"]["code"], "bad_request", "{path}: {json}");
        assert!(
            json["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(parameter)),
            "{path}: {json}"
        );
    }
    app.stop().await
}

fn small_limits(max_connections: usize) -> HttpLimits {
    HttpLimits {
        header_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(4),
        body_timeout: Duration::from_secs(1),
        body_min_rate: 1000,
        max_connections,
    }
}

fn address(base_url: &str) -> String {
    base_url.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (at most `patience`); what it sent.
async fn read_to_close(stream: &mut TcpStream, patience: Duration) -> anyhow::Result<String> {
    let mut out = Vec::new();
    tokio::time::timeout(patience, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .map_err(|_| anyhow::anyhow!("still open after {patience:?}"))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// One request on a connection of its own, answered and closed.
async fn request(addr: &str, text: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(text.as_bytes()).await?;
    read_to_close(&mut stream, Duration::from_secs(5)).await
}

/// A stalled head, an idle keep-alive connection and a stalled body are each closed after their
/// timeout, and no sooner.
async fn timeouts_hold(addr: &str) -> anyhow::Result<()> {
    let mut stalled = TcpStream::connect(addr).await?;
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await?;
    let started = Instant::now();
    read_to_close(&mut stalled, Duration::from_secs(6)).await?;
    let waited = started.elapsed();
    assert!(
        (Duration::from_millis(1500)..Duration::from_millis(3600)).contains(&waited),
        "stalled head closed after {waited:?}"
    );

    let mut idle = TcpStream::connect(addr).await?;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await?;
    let mut buf = [0u8; 4096];
    let mut head = String::new();
    while !head.ends_with("ok") {
        let n = idle.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "closed before answering: {head}");
        head.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let started = Instant::now();
    // Longer than the header timeout: kept alive, waiting for a next request.
    let early = tokio::time::timeout(Duration::from_millis(2800), idle.read(&mut buf)).await;
    assert!(early.is_err(), "closed too early: {early:?}");
    read_to_close(&mut idle, Duration::from_secs(4)).await?;
    let waited = started.elapsed();
    assert!(
        (Duration::from_millis(3500)..Duration::from_millis(6000)).contains(&waited),
        "idle connection closed after {waited:?}"
    );

    let mut slow = TcpStream::connect(addr).await?;
    slow.write_all(
        format!(
            "POST /v1/districts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {OPERATOR_TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"id\":"
        )
        .as_bytes(),
    )
    .await?;
    let started = Instant::now();
    let answer = read_to_close(&mut slow, Duration::from_secs(6)).await?;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(4), "{answer}");
    Ok(())
}

/// `max` connections served; as many again only answered `503` (health probes still answered);
/// beyond that, closed at accept.
async fn the_cap_sheds_load(addr: &str, max: usize) -> anyhow::Result<()> {
    let mut held = Vec::new();
    // All served, and some of the shedding band taken, leaving room in it.
    for _ in 0..max + max / 2 {
        held.push(TcpStream::connect(addr).await?);
    }
    // Let the server accept them, in order, before the next one arrives.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = request(
        addr,
        &format!(
            "GET /v1/districts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {OPERATOR_TOKEN}\r\n\r\n"
        ),
    )
    .await?;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.to_lowercase().contains("retry-after:"), "{refused}");
    assert!(refused.contains("\"code\":\"unavailable\""), "{refused}");
    let started = Instant::now();
    let health = request(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await?;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(started.elapsed() < Duration::from_millis(500));

    // Fill the shedding band too: every further connection is closed as it is accepted.
    for _ in 0..max + 15 {
        held.push(TcpStream::connect(addr).await?);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut closed = 0;
    for stream in held.iter_mut() {
        let mut buf = [0u8; 16];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(5), stream.read(&mut buf)).await
        {
            closed += 1;
        }
    }
    let total = held.len();
    assert!(
        closed >= total - 2 * max && closed <= total - 2 * max + 2,
        "{closed} of {total} closed at accept with a cap of {max}"
    );
    drop(held);
    Ok(())
}

#[tokio::test]
async fn a_services_listener_limits_connections_and_time() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(
        Backend::Embedded,
        AppLayout {
            http_limits: Some(small_limits(20)),
            ..AppLayout::default()
        },
    )
    .await?;
    let addr = address(&app.base_url);
    timeouts_hold(&addr).await?;
    the_cap_sheds_load(&addr, 20).await?;
    // Once the idle connections are gone, everything is served again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let listed = app.get(&app.operator_token, "/v1/districts").await?;
    assert_eq!(listed.status(), 200);
    app.stop().await
}

#[tokio::test]
async fn the_gateway_limits_connections_and_time() -> anyhow::Result<()> {
    let app = TestApp::spawn(Backend::Embedded).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let upstreams = pictureday::gateway::Upstreams {
        ingest: app.base_url.clone(),
        roster: app.base_url.clone(),
        reporting: app.base_url.clone(),
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let gateway = tokio::spawn(pictureday::gateway::serve_with_limits(
        listener,
        upstreams,
        small_limits(5),
        shutdown.clone(),
    ));
    timeouts_hold(&addr).await?;
    the_cap_sheds_load(&addr, 5).await?;
    let missing = request(
        &addr,
        "GET /v2/nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await?;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    assert!(missing.contains("\"code\":\"not_found\""), "{missing}");
    assert!(
        missing
            .to_lowercase()
            .contains("x-content-type-options: nosniff")
    );
    shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(5), gateway).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "{stopped:?}");
    app.stop().await
}

/// Starts the launcher on `data` with `env`, logging to `<logs>/<name>.log`.
async fn launch(
    data: &std::path::Path,
    logs: &std::path::Path,
    name: &str,
    mut env: Vec<(String, String)>,
) -> anyhow::Result<ServiceProcess> {
    env.push(("PICTUREDAY_DATA_DIR".into(), data.display().to_string()));
    env.push(("PICTUREDAY_IMAGE_WORKERS".into(), "1".into()));
    ServiceProcess::start_with_args(SERVER, &["serve"], name, env, logs).await
}

/// Kills a launcher's nats-server if the test ends before the launcher stopped it.
struct NatsReaper(std::path::PathBuf);

impl Drop for NatsReaper {
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(self.0.join("nats/nats-server.pid")).unwrap_or_default();
        if let Ok(pid) = pid.trim().parse::<u32>() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

#[tokio::test]
async fn tokens_never_appear_in_logs() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let logs = dir.path();

    // A token the launcher makes is shown once, when made, and never again.
    let made = dir.path().join("made/data");
    let _reaper = NatsReaper(made.clone());
    let mut first = launch(&made, logs, "first", vec![]).await?;
    first.terminate(Duration::from_secs(10)).await?;
    assert_eq!(
        std::fs::metadata(&made)?.permissions().mode() & 0o777,
        0o700
    );
    let token_file = made.join("operator-token");
    assert_eq!(
        std::fs::metadata(&token_file)?.permissions().mode() & 0o777,
        0o600
    );
    let generated = std::fs::read_to_string(&token_file)?.trim().to_owned();
    assert_eq!(
        first.log().matches(&generated).count(),
        1,
        "{}",
        first.log()
    );
    let mut second = launch(&made, logs, "second", vec![]).await?;
    second.terminate(Duration::from_secs(10)).await?;
    assert!(!second.log().contains(&generated), "{}", second.log());

    // The suite's typical flow with the token from the environment: no token in any line.
    let data = dir.path().join("env/data");
    let _reaper = NatsReaper(data.clone());
    let env = vec![(
        "PICTUREDAY_OPERATOR_TOKEN".to_owned(),
        OPERATOR_TOKEN.to_owned(),
    )];
    let mut server = launch(&data, logs, "flow", env).await?;
    let client = TestClient::new(&server.base_url, OPERATOR_TOKEN);
    let token = client.create_district("springfield", "Springfield").await?;
    client
        .upload_numbered_roster(&token, "springfield", 2)
        .await?;
    let job = client
        .import_numbered_photos(&token, "springfield", 3, (400, 500))
        .await?;
    let finished = client.wait_for_job(&token, "springfield", &job).await?;
    assert_eq!(finished["state"], "finished_with_errors", "{finished}");
    // Refused tokens are not logged either.
    let refused = client
        .get("pd_wrong-token-0123456789", "/v1/districts")
        .await?;
    assert_eq!(refused.status(), 401);
    server.terminate(Duration::from_secs(10)).await?;
    let log = server.log();
    assert!(log.lines().count() > 3, "{log}");
    for line in log.lines() {
        for secret in [OPERATOR_TOKEN, token.as_str(), "pd_wrong-token-0123456789"] {
            assert!(!line.contains(secret), "a token in the log: {line}");
        }
        let hex = token.trim_start_matches("pd_");
        assert!(!line.contains(hex), "a token in the log: {line}");
    }
    Ok(())
}
