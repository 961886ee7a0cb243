//! OneRoster zips posted to `POST …/roster`: 1.1 and 1.2 bulk files create the district's schools
//! and people with the identifiers it chose; a bulk file without someone deactivates exactly them;
//! a delta file deactivates `tobedeleted` users and updates changed ones; bad rows are logged by
//! file, row and column; and a plain roster CSV is still a roster CSV.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use pictureday_tests::{AppLayout, Backend, TestApp, TestClient, zip_of};
use serde_json::Value;

on_each_backend!(oneroster_zips_keep_a_district_current);

mod oneroster_restart {
    /// The restart is of the roster service, not of a backend: one backend is enough.
    #[tokio::test]
    async fn on_sqlite_local() -> anyhow::Result<()> {
        super::a_oneroster_import_interrupted_by_a_restart_resumes_with_exact_counts().await
    }
}

const USERS_11: &str = "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password\r\n";
const USERS_12: &str = "sourcedId,status,dateLastModified,enabledUser,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password,userMasterIdentifier,resourceSourcedIds,preferredGivenName,preferredMiddleName,preferredFamilyName,primaryOrgSourcedId,pronouns\r\n";
const ROLES_12: &str = "sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId,userProfileSourcedId\r\n";
const ORGS: &str = "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\r\n\
                    d1,active,2026-08-01,Springfield USD,district,,\r\n\
                    s1,active,2026-08-01,North Elementary,school,N,d1\r\n\
                    s2,active,2026-08-01,South Middle,school,S,d1\r\n";

fn manifest(version: &str, users: &str, orgs: &str, roles: &str) -> String {
    format!(
        "propertyName,value\r\nmanifest.version,1.0\r\noneroster.version,{version}\r\nfile.users,{users}\r\nfile.orgs,{orgs}\r\nfile.roles,{roles}\r\nfile.courses,absent\r\n"
    )
}

fn zip(files: &[(&str, &str)]) -> anyhow::Result<Vec<u8>> {
    let entries: Vec<(&str, Vec<u8>)> = files
        .iter()
        .map(|(name, text)| (*name, text.as_bytes().to_vec()))
        .collect();
    zip_of(&entries)
}

/// Posts a roster (zip or CSV) and waits for its import: the answer's status and body.
async fn post(
    client: &TestClient,
    token: &str,
    district: &str,
    query: &str,
    content_type: &str,
    body: Vec<u8>,
) -> anyhow::Result<(u16, Value)> {
    let response = client
        .http
        .post(client.url(&format!("/v1/districts/{district}/roster{query}")))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

async fn post_zip(
    client: &TestClient,
    token: &str,
    district: &str,
    query: &str,
    body: Vec<u8>,
) -> anyhow::Result<Value> {
    let (status, answer) = post(client, token, district, query, "application/zip", body).await?;
    anyhow::ensure!(status == 200, "{status}: {answer}");
    let import = answer["import"].as_str().context("no import")?;
    client
        .get_json(
            token,
            &format!("/v1/districts/{district}/roster/imports/{import}"),
        )
        .await
}

/// Every person of the district, by `first_name`.
async fn people(
    client: &TestClient,
    token: &str,
    district: &str,
) -> anyhow::Result<HashMap<String, Value>> {
    let mut all = HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(after) => format!("/v1/districts/{district}/people?limit=1000&after={after}"),
            None => format!("/v1/districts/{district}/people?limit=1000"),
        };
        let page = client.get_json(token, &path).await?;
        for p in page["items"].as_array().context("no items")? {
            let name = p["first_name"].as_str().unwrap_or_default().to_owned();
            all.insert(name, p.clone());
        }
        match page["next_after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return Ok(all),
        }
    }
}

async fn person(
    client: &TestClient,
    token: &str,
    district: &str,
    id: &Value,
) -> anyhow::Result<Value> {
    let id = id.as_str().context("no person id")?;
    client
        .get_json(token, &format!("/v1/districts/{district}/people/{id}"))
        .await
}

fn counts(import: &Value) -> [i64; 7] {
    [
        "created",
        "updated",
        "unchanged",
        "deactivated",
        "reactivated",
        "ignored",
        "rejected_rows",
    ]
    .map(|k| import[k].as_i64().unwrap_or(-1))
}

async fn oneroster_zips_keep_a_district_current(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let north = app.create_district("north", "North USD").await?;

    // 1.1 bulk, with the district's SIS ids in userIds.
    let users = format!(
        "{USERS_11}\
         u1,active,2026-08-01,true,s1,student,ada,\"{{LDAP:ada}},{{SIS:S-1}}\",Ada,Lovelace,,1001,ada@north.example,,,p1,05,\r\n\
         u2,active,2026-08-01,true,s2,student,grace,{{SIS:S-2}},Grace,Hopper,,1002,,,,,07,\r\n\
         u3,active,2026-08-01,true,\"d1,s1,s2\",teacher,alan,{{SIS:T-3}},Alan,Turing,,T-7,alan@north.example,,,,,\r\n\
         p1,active,2026-08-01,true,s1,guardian,,,Pat,Lovelace,,,,,,u1,,\r\n"
    );
    let first = zip(&[
        ("manifest.csv", &manifest("1.1", "bulk", "bulk", "absent")),
        ("orgs.csv", ORGS),
        ("users.csv", &users),
    ])?;
    let import = post_zip(
        &app,
        &north,
        "north",
        "?oneroster.userIds.SIS=sis_id",
        first.clone(),
    )
    .await?;
    assert_eq!(import["state"], "completed", "{import}");
    assert_eq!(import["format"], "oneroster", "{import}");
    assert_eq!(counts(&import), [3, 0, 0, 0, 0, 1, 0], "{import}");
    assert_eq!(import["rows_read"], 4, "{import}");
    let listed = people(&app, &north, "north").await?;
    assert_eq!(listed.len(), 3, "{listed:?}");
    let ada = &listed["Ada"];
    assert_eq!(ada["role"], "student");
    assert_eq!(ada["sis_id"], "S-1");
    assert_eq!(ada["student_number"], "1001");
    assert_eq!(ada["email"], "ada@north.example");
    assert_eq!(ada["school"], "North Elementary");
    assert_eq!(ada["grade"], "05");
    let alan = &listed["Alan"];
    assert_eq!(alan["role"], "staff");
    assert_eq!(alan["staff_id"], "T-7");
    assert_eq!(alan["sis_id"], "T-3");
    assert_eq!(alan["student_number"], Value::Null);
    assert_eq!(alan["school"], "North Elementary");
    assert_eq!(listed["Grace"]["school"], "South Middle");
    assert!(!listed.contains_key("Pat"));

    // The same roster without Grace: exactly she is deactivated, never deleted.
    let without_grace: String = users
        .lines()
        .filter(|l| !l.starts_with("u2,"))
        .map(|l| format!("{l}\n"))
        .collect();
    let second = zip(&[
        ("manifest.csv", &manifest("1.1", "bulk", "bulk", "absent")),
        ("orgs.csv", ORGS),
        ("users.csv", &without_grace),
    ])?;
    let import = post_zip(
        &app,
        &north,
        "north",
        "?oneroster.userIds.SIS=sis_id",
        second,
    )
    .await?;
    assert_eq!(counts(&import), [0, 0, 2, 1, 0, 1, 0], "{import}");
    let grace = person(&app, &north, "north", &listed["Grace"]["id"]).await?;
    assert_eq!(grace["status"], "inactive", "{grace}");
    assert!(grace["inactive_since"].is_string(), "{grace}");
    assert_eq!(grace["sis_id"], "S-2", "{grace}");
    let ada = person(&app, &north, "north", &listed["Ada"]["id"]).await?;
    assert_eq!(ada["status"], "active", "{ada}");

    // Listed again: reactivated, with the same record.
    let import = post_zip(
        &app,
        &north,
        "north",
        "?oneroster.userIds.SIS=sis_id",
        first,
    )
    .await?;
    assert_eq!(counts(&import), [0, 0, 2, 0, 1, 1, 0], "{import}");
    let grace = person(&app, &north, "north", &listed["Grace"]["id"]).await?;
    assert_eq!(grace["status"], "active", "{grace}");
    assert_eq!(grace["inactive_since"], Value::Null, "{grace}");

    // A bad row: the log names the file, row and column; the others are applied.
    let bad = format!(
        "{USERS_11}\
         u1,active,,true,s1,student,,{{SIS:S-1}},Ada,Lovelace,,1001,ada@north.example,,,,05,\r\n\
         u3,active,,true,s1,teacher,,{{SIS:T-3}},Alan,Turing,,T-7,alan@north.example,,,,,\r\n\
         u7,active,,true,s1,wizard,,,Merlin,Ambrosius,,77,,,,,,\r\n"
    );
    let third = zip(&[
        (
            "manifest.csv",
            &manifest("1.1", "delta", "absent", "absent"),
        ),
        ("users.csv", &bad),
    ])?;
    let import = post_zip(
        &app,
        &north,
        "north",
        "?oneroster.userIds.SIS=sis_id",
        third,
    )
    .await?;
    assert_eq!(import["rejected_rows"], 1, "{import}");
    assert_eq!(import["error_count"], 1, "{import}");
    let errors = app
        .get_json(
            &north,
            import["errors_url"].as_str().context("no errors_url")?,
        )
        .await?;
    let error = &errors["items"][0];
    assert_eq!(error["file"], "users.csv", "{errors}");
    assert_eq!(error["row"], 4, "{errors}");
    assert_eq!(error["field"], "role", "{errors}");
    assert_eq!(error["reason"], "unknown role \"wizard\"", "{errors}");
    let csv = app
        .get(
            &north,
            &format!(
                "{}?format=csv",
                import["errors_url"].as_str().unwrap_or_default()
            ),
        )
        .await?
        .text()
        .await?;
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        vec![
            "file,row,field,reason",
            "users.csv,4,role,\"unknown role \"\"wizard\"\"\""
        ]
    );

    // A zip that is not OneRoster is refused before anything is recorded.
    let (status, body) = post(
        &app,
        &north,
        "north",
        "",
        "application/zip",
        zip(&[("users.csv", &users)])?,
    )
    .await?;
    assert_eq!(status, 422, "{body}");
    let (status, body) = post(
        &app,
        &north,
        "north",
        "?oneroster.identifier=ssn",
        "application/zip",
        zip(&[("manifest.csv", "x")])?,
    )
    .await?;
    assert_eq!(status, 400, "{body}");

    // A plain roster CSV still works beside them.
    let (status, body) = post(
        &app,
        &north,
        "north",
        "",
        "text/csv",
        b"role,sis_id,first_name,last_name,school\nstudent,C-1,Carol,Csv,North Elementary\n"
            .to_vec(),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["created"], 1, "{body}");
    assert!(body.get("deactivated").is_none(), "{body}");

    // 1.2: roles in roles.csv, preferred names, the primary org first.
    let south = app.create_district("south", "South USD").await?;
    let users = format!(
        "{USERS_12}\
         u1,active,,true,adaline,{{SIS:S-1}},Adaline,Lovelace,,1001,,,,,KG,,M-1,,Ada,,,s1,she/her\r\n\
         u2,active,,true,grace,,Grace,Hopper,,1002,,,,,03,,,,,,,s1,\r\n\
         t1,active,,true,min,,Min,Lee,,T-77,min@south.example,,,,,,,,,,,s2,\r\n\
         g1,active,,true,,,Pat,Lovelace,,,,,,,,,,,,,,s1,\r\n"
    );
    let roles = format!(
        "{ROLES_12}\
         r1,active,,u1,primary,student,,,s1,\r\n\
         r2,active,,u2,primary,student,,,s1,\r\n\
         r3,active,,t1,secondary,teacher,,,s1,\r\n\
         r4,active,,t1,primary,teacher,,,s2,\r\n\
         r5,active,,g1,primary,parent,,,s1,\r\n"
    );
    let bulk = zip(&[
        ("manifest.csv", &manifest("1.2", "bulk", "bulk", "bulk")),
        ("orgs.csv", ORGS),
        ("roles.csv", &roles),
        ("users.csv", &users),
    ])?;
    let query = "?oneroster.userMasterIdentifier=state_id&oneroster.userIds.SIS=sis_id";
    let import = post_zip(&app, &south, "south", query, bulk).await?;
    assert_eq!(counts(&import), [3, 0, 0, 0, 0, 1, 0], "{import}");
    let listed = people(&app, &south, "south").await?;
    assert_eq!(listed.len(), 3, "{listed:?}");
    let adaline = &listed["Adaline"];
    assert_eq!(adaline["preferred_first_name"], "Ada");
    assert_eq!(adaline["sis_id"], "S-1");
    assert_eq!(adaline["state_id"], "M-1");
    assert_eq!(adaline["student_number"], "1001");
    assert_eq!(adaline["grade"], "KG");
    let min = &listed["Min"];
    assert_eq!(min["role"], "staff");
    assert_eq!(min["staff_id"], "T-77");
    assert_eq!(min["school"], "South Middle");

    // 1.2 delta: Grace is to be deleted, Min's name changed (no roles.csv: Min keeps her role).
    let delta_users = format!(
        "{USERS_12}\
         u2,tobedeleted,2026-09-01,,,,,,,,,,,,,,,,,,,,\r\n\
         t1,active,2026-09-01,true,min,,Min,Lee-Park,,T-77,min@south.example,,,,,,,,,,,s2,\r\n"
    );
    let delta = zip(&[
        (
            "manifest.csv",
            &manifest("1.2", "delta", "absent", "absent"),
        ),
        ("users.csv", &delta_users),
    ])?;
    let import = post_zip(&app, &south, "south", query, delta).await?;
    assert_eq!(counts(&import), [0, 1, 0, 1, 0, 0, 0], "{import}");
    let grace = person(&app, &south, "south", &listed["Grace"]["id"]).await?;
    assert_eq!(grace["status"], "inactive", "{grace}");
    let min = person(&app, &south, "south", &listed["Min"]["id"]).await?;
    assert_eq!(min["last_name"], "Lee-Park", "{min}");
    assert_eq!(min["role"], "staff", "{min}");
    assert_eq!(min["status"], "active", "{min}");
    // Adaline, not in the delta, is left alone.
    let adaline = person(&app, &south, "south", &listed["Adaline"]["id"]).await?;
    assert_eq!(adaline["status"], "active", "{adaline}");
    assert_eq!(adaline["last_name"], "Lovelace", "{adaline}");
    Ok(())
}

/// A 1.1 bulk `users.csv` of `users` rows across 10 schools, without the users `n` for which
/// `left(n)`: every 5,000th (from the 7th) has an unknown role, every 1,000th (from the 3rd) is a
/// guardian.
fn large_bulk(users: u32, left: impl Fn(u32) -> bool) -> anyhow::Result<Vec<u8>> {
    let mut orgs =
        String::from("sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\n");
    for s in 0..10 {
        orgs.push_str(&format!("s{s},,,School {s},school,,\n"));
    }
    let mut csv = USERS_11.to_owned();
    for n in (0..users).filter(|n| !left(*n)) {
        let role = match (n % 5000, n % 1000) {
            (7, _) => "wizard",
            (_, 3) => "guardian",
            _ => "student",
        };
        csv.push_str(&format!(
            "u{n},,,true,s{},{role},,{{SIS:S{n}}},First{n},Last{},,{n},,,,,,\n",
            n % 10,
            n % 97
        ));
    }
    zip(&[
        ("manifest.csv", &manifest("1.1", "bulk", "bulk", "absent")),
        ("orgs.csv", &orgs),
        ("users.csv", &csv),
    ])
}

/// Posts `zip` without waiting, restarts the roster service once the import has applied a chunk
/// (or finished, unless `mid_way`), and waits for it to end.
async fn post_and_restart(
    app: &mut TestApp,
    token: &str,
    zip: Vec<u8>,
    mid_way: bool,
) -> anyhow::Result<Value> {
    let (status, accepted) =
        post(app, token, "north", "?wait=false", "application/zip", zip).await?;
    anyhow::ensure!(status == 202, "{status}: {accepted}");
    let status_url = accepted["status_url"]
        .as_str()
        .context("no status_url")?
        .to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let import = app.get_json(token, &status_url).await?;
        if import["rows_read"].as_u64().unwrap_or(0) > 0 || import["state"] == "completed" {
            anyhow::ensure!(
                !mid_way || import["state"] == "running",
                "finished before the restart; make the roster larger: {import}"
            );
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{import}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop_service("roster").await?;
    app.start_service("roster").await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        let import = app.get_json(token, &status_url).await?;
        if import["state"] == "completed" || import["state"] == "failed" {
            return Ok(import);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{import}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn a_oneroster_import_interrupted_by_a_restart_resumes_with_exact_counts()
-> anyhow::Result<()> {
    const USERS: u32 = 40_000;
    let mut app = TestApp::spawn_with(
        Backend::Embedded,
        AppLayout {
            behind_gateway: true,
            ..AppLayout::default()
        },
    )
    .await?;
    let token = app.create_district("north", "North USD").await?;
    let wizards = (0..USERS).filter(|n| n % 5000 == 7).count() as i64;
    let guardians = (0..USERS)
        .filter(|n| n % 5000 != 7 && n % 1000 == 3)
        .count() as i64;
    let students = i64::from(USERS) - wizards - guardians;

    let done = post_and_restart(&mut app, &token, large_bulk(USERS, |_| false)?, true).await?;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(
        counts(&done),
        [students, 0, 0, 0, 0, guardians, wizards],
        "{done}"
    );
    assert_eq!(done["rows_read"], USERS, "{done}");
    let log = app
        .get_json(
            &token,
            done["errors_url"].as_str().context("no errors_url")?,
        )
        .await?;
    let logged: Vec<(String, u64, String)> = log["items"]
        .as_array()
        .context("no items")?
        .iter()
        .map(|e| {
            (
                e["file"].as_str().unwrap_or_default().to_owned(),
                e["row"].as_u64().unwrap_or_default(),
                e["field"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, u64, String)> = (0..USERS)
        .filter(|n| n % 5000 == 7)
        .map(|n| ("users.csv".to_owned(), u64::from(n) + 2, "role".to_owned()))
        .collect();
    assert_eq!(logged, expected);

    // A bulk file without every 400th user, also interrupted: exactly they are deactivated (the
    // stamp that tells who was listed survives the restart).
    let gone = |n: u32| n % 400 == 399;
    let left = (0..USERS)
        .filter(|n| gone(*n) && n % 5000 != 7 && n % 1000 != 3)
        .count() as i64;
    let done = post_and_restart(&mut app, &token, large_bulk(USERS, gone)?, false).await?;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(
        counts(&done),
        [0, 0, students - left, left, 0, guardians, wizards],
        "{done}"
    );
    app.stop().await
}
