//! Large rosters are imports: a post that does not finish within its wait is a `202` with a
//! status to poll, the rows are applied in short chunks (another district's roster and photos go
//! on meanwhile, never a `500`), every bad row is in the import's error log, and an import
//! interrupted by a restart resumes where it stopped, with exact counts.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context as _;
use pictureday_tests::{AppLayout, Backend, TestApp, TestClient};
use serde_json::{Value, json};

on_each_backend!(a_large_roster_is_an_import_with_a_status_and_an_error_log);

mod restart {
    /// The restart is of the roster service, not of a backend: one backend is enough.
    #[tokio::test]
    async fn on_sqlite_local() -> anyhow::Result<()> {
        super::an_import_interrupted_by_a_restart_resumes_with_exact_counts().await
    }
}

/// Rows of the large roster; every 5,000th (from the 18th) has a bad role, and one has no last
/// name.
const ROWS: u32 = 40_000;
const NO_LAST_NAME: u32 = 20_000;

fn bad_role(n: u32) -> bool {
    n % 5000 == 17
}

fn large_roster(rows: u32, last_name: &str) -> String {
    let mut csv = String::from("role,sis_id,student_number,email,first_name,last_name,school\n");
    for n in 0..rows {
        let role = if bad_role(n) { "teacher" } else { "student" };
        let last = if n == NO_LAST_NAME {
            String::new()
        } else {
            format!("{last_name}{}", n % 97)
        };
        csv.push_str(&format!(
            "{role},S{n},{n},s{n}@example.org,First{n},{last},School {}\n",
            n % 7
        ));
    }
    csv
}

/// The rows of [`large_roster`] that are rejected, as `(row, field)` (the header is row 1).
fn rejected(rows: u32) -> Vec<(u64, String)> {
    let mut bad: Vec<(u64, String)> = (0..rows)
        .filter(|n| bad_role(*n))
        .map(|n| (u64::from(n) + 2, "role".to_owned()))
        .collect();
    if NO_LAST_NAME < rows {
        bad.push((u64::from(NO_LAST_NAME) + 2, "last_name".to_owned()));
    }
    bad.sort();
    bad
}

async fn post_roster(
    client: &TestClient,
    token: &str,
    district: &str,
    query: &str,
    csv: String,
) -> anyhow::Result<(u16, Option<String>, Value)> {
    let response = client
        .http
        .post(client.url(&format!("/v1/districts/{district}/roster{query}")))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((status, location, response.json().await?))
}

async fn wait_for_import(
    client: &TestClient,
    token: &str,
    status_url: &str,
) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        let import = client.get_json(token, status_url).await?;
        if import["state"] == "completed" || import["state"] == "failed" {
            return Ok(import);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the import did not finish: {import}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every person of the district, by SIS id, read page by page.
async fn people(client: &TestClient, token: &str, district: &str) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(after) => format!("/v1/districts/{district}/people?limit=1000&after={after}"),
            None => format!("/v1/districts/{district}/people?limit=1000"),
        };
        let page = client.get_json(token, &path).await?;
        let items = page["items"].as_array().context("no items")?;
        all.extend(items.iter().cloned());
        match page["next_after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return Ok(all),
        }
    }
}

async fn a_large_roster_is_an_import_with_a_status_and_an_error_log(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let north = app.create_district("north", "North USD").await?;
    let south = app.create_district("south", "South USD").await?;

    // Not waited for: 202, with where to look.
    let (status, location, accepted) = post_roster(
        &app,
        &north,
        "north",
        "?wait=false",
        large_roster(ROWS, "Last"),
    )
    .await?;
    assert_eq!(status, 202, "{accepted}");
    let import = accepted["import"]
        .as_str()
        .context("no import id")?
        .to_owned();
    let status_url = format!("/v1/districts/north/roster/imports/{import}");
    assert_eq!(accepted["status_url"], status_url.as_str(), "{accepted}");
    assert_eq!(location.as_deref(), Some(status_url.as_str()));
    assert!(
        accepted["state"] == "queued" || accepted["state"] == "running",
        "{accepted}"
    );

    // Meanwhile another district's roster and photos go on: answered, never a 500.
    let small = "role,sis_id,student_number,first_name,last_name\n\
                 student,S1,0,Ada,Lovelace\nstudent,S2,1,Grace,Hopper\nstaff,T1,,Alan,Turing\n";
    let (status, _, loaded) = post_roster(&app, &south, "south", "", small.to_owned()).await?;
    assert_eq!(status, 200, "{loaded}");
    assert_eq!(loaded["created"], 3, "{loaded}");
    assert_eq!(loaded["updated"], 0, "{loaded}");
    assert_eq!(loaded["unchanged"], 0, "{loaded}");
    assert_eq!(loaded["rejected_rows"], 0, "{loaded}");
    assert_eq!(loaded["errors"], json!([]), "{loaded}");
    assert!(loaded["import"].is_string(), "{loaded}");
    let job = app
        .import_numbered_photos(&south, "south", 2, (320, 400))
        .await?;
    let south_people = people(&app, &south, "south").await?;
    assert_eq!(south_people.len(), 3);

    // Another district's token sees none of north's import; a malformed id is a 400.
    for path in [
        status_url.clone(),
        format!("{status_url}/errors"),
        "/v1/districts/north/roster/imports".to_owned(),
    ] {
        let response = app.get(&south, &path).await?;
        assert_eq!(response.status().as_u16(), 404, "{path}");
    }
    let response = app
        .get(
            &south,
            &format!("/v1/districts/south/roster/imports/{import}"),
        )
        .await?;
    assert_eq!(response.status().as_u16(), 404);
    let response = app
        .get(&north, "/v1/districts/north/roster/imports/not-an-id")
        .await?;
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await?;
    assert_eq!(body["error"]["code"], "bad_request", "{body}");

    let done = wait_for_import(&app, &north, &status_url).await?;
    let bad = rejected(ROWS);
    let accepted_rows = u64::from(ROWS) - bad.len() as u64;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["created"], accepted_rows, "{done}");
    assert_eq!(done["updated"], 0, "{done}");
    assert_eq!(done["unchanged"], 0, "{done}");
    assert_eq!(done["rejected_rows"], bad.len(), "{done}");
    assert_eq!(done["error_count"], bad.len(), "{done}");
    assert_eq!(done["rows_read"], ROWS, "{done}");
    assert_eq!(done["error"], Value::Null, "{done}");
    assert!(done["finished_at"].is_string(), "{done}");

    // Exactly the accepted rows are people.
    let north_people = people(&app, &north, "north").await?;
    assert_eq!(north_people.len() as u64, accepted_rows);
    let sis: HashSet<&str> = north_people
        .iter()
        .filter_map(|p| p["sis_id"].as_str())
        .collect();
    assert_eq!(sis.len() as u64, accepted_rows);
    for (row, _) in &bad {
        assert!(!sis.contains(format!("S{}", row - 2).as_str()), "row {row}");
    }
    assert!(sis.contains("S0") && sis.contains(format!("S{}", ROWS - 1).as_str()));

    // The error log names exactly the bad rows, as JSON and as CSV.
    let log = app
        .get_json(&north, &format!("{status_url}/errors"))
        .await?;
    assert_eq!(log["import"], import.as_str(), "{log}");
    let logged: Vec<(u64, String)> = log["items"]
        .as_array()
        .context("no items")?
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap_or_default(),
                e["field"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(logged, bad);
    assert_eq!(
        log["items"][0]["reason"],
        "must be student or staff, not \"teacher\""
    );
    let csv = app
        .get(&north, &format!("{status_url}/errors?format=csv"))
        .await?
        .text()
        .await?;
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("row,field,reason"));
    assert_eq!(
        lines.next(),
        Some("19,role,\"must be student or staff, not \"\"teacher\"\"\"")
    );
    assert_eq!(csv.lines().count(), bad.len() + 1);

    let list = app
        .get_json(&north, "/v1/districts/north/roster/imports")
        .await?;
    assert_eq!(list["items"][0]["import"], import.as_str(), "{list}");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");

    // A district's imports run in arrival order: the second changes every name the first set,
    // and the third, the same file again, changes nothing.
    let (status, _, first) = post_roster(
        &app,
        &north,
        "north",
        "?wait=false",
        large_roster(ROWS, "Renamed"),
    )
    .await?;
    assert_eq!(status, 202, "{first}");
    let (status, _, second) = post_roster(
        &app,
        &north,
        "north",
        "?wait=false",
        large_roster(ROWS, "Renamed"),
    )
    .await?;
    assert_eq!(status, 202, "{second}");
    let url = |body: &Value| body["status_url"].as_str().unwrap_or_default().to_owned();
    let renamed = wait_for_import(&app, &north, &url(&first)).await?;
    assert_eq!(renamed["state"], "completed", "{renamed}");
    assert_eq!(renamed["created"], 0, "{renamed}");
    assert_eq!(renamed["updated"], accepted_rows, "{renamed}");
    let again = wait_for_import(&app, &north, &url(&second)).await?;
    assert_eq!(again["unchanged"], accepted_rows, "{again}");
    assert_eq!(again["updated"], 0, "{again}");
    let time = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default())
            .map_err(|e| anyhow::anyhow!("{v}: {e}"))
    };
    assert!(
        time(&again["started_at"])? >= time(&renamed["finished_at"])?,
        "{renamed} {again}"
    );
    let one = app
        .get_json(&north, "/v1/districts/north/people?sis_id=S5")
        .await?;
    assert_eq!(one["items"][0]["last_name"], "Renamed5", "{one}");

    let south_job = app.wait_for_job(&south, "south", &job).await?;
    assert_eq!(south_job["state"], "finished", "{south_job}");
    app.stop().await
}

async fn an_import_interrupted_by_a_restart_resumes_with_exact_counts() -> anyhow::Result<()> {
    const RESTART_ROWS: u32 = 30_000;
    let mut app = TestApp::spawn_with(
        Backend::Embedded,
        AppLayout {
            behind_gateway: true,
            ..AppLayout::default()
        },
    )
    .await?;
    let token = app.create_district("north", "North USD").await?;
    let (status, _, accepted) = post_roster(
        &app,
        &token,
        "north",
        "?wait=false",
        large_roster(RESTART_ROWS, "Last"),
    )
    .await?;
    assert_eq!(status, 202, "{accepted}");
    let status_url = accepted["status_url"]
        .as_str()
        .context("no status_url")?
        .to_owned();
    // Stopped in the middle of the import.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let import = app.get_json(&token, &status_url).await?;
        if import["rows_read"].as_u64().unwrap_or(0) > 0 {
            anyhow::ensure!(
                import["state"] == "running",
                "finished before the restart; make the roster larger: {import}"
            );
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{import}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop_service("roster").await?;
    app.start_service("roster").await?;
    let done = wait_for_import(&app, &token, &status_url).await?;
    let bad = rejected(RESTART_ROWS);
    let accepted_rows = u64::from(RESTART_ROWS) - bad.len() as u64;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["created"], accepted_rows, "{done}");
    assert_eq!(done["updated"], 0, "{done}");
    assert_eq!(done["unchanged"], 0, "{done}");
    assert_eq!(done["rejected_rows"], bad.len(), "{done}");
    let log = app
        .get_json(&token, &format!("{status_url}/errors"))
        .await?;
    assert_eq!(
        log["items"].as_array().map(Vec::len),
        Some(bad.len()),
        "{log}"
    );
    let people = people(&app, &token, "north").await?;
    assert_eq!(people.len() as u64, accepted_rows);
    app.stop().await
}
