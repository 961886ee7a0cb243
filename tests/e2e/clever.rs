//! Clever: a district's people kept current from a fake Clever (`pictureday_tests::fake_clever`)
//! whose every payload is checked against Clever's spec files. A full sync across several pages
//! (students, teachers, staff, a contact left out, schools); incremental syncs from the events
//! feed (users created, updated, deleted; schools created and updated; an unrelated event; a
//! replayed event applied once); an SIS id change that keeps the person and their photo; a 429
//! waited out; an expired cursor that syncs in full; one district's bad token failing its run
//! while another district syncs, each synced once by one of two roster replicas; scheduled
//! syncs turned off while one asked for still runs; the token never shown or logged; runs
//! announced as `roster.sync` on the status stream and the district's event stream.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use opentelemetry_sdk::trace::InMemorySpanExporter;
use pictureday_contract::DistrictId;
use pictureday_contract::events::RosterSync;
use pictureday_contract::subjects::{STATUS_STREAM, roster_sync_subject};
use pictureday_roster::db::person::{self, PersonStatus, RosterSource};
use pictureday_roster::db::person_school;
use pictureday_tests::fake_clever::{FakeClever, contact, school, staff, student, teacher};
use pictureday_tests::images::{jpeg, photo};
use pictureday_tests::{AppLayout, Backend, TestApp};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::sse::{EventStream, Item};

on_each_backend!(
    clever_full_then_incremental_sync,
    clever_districts_fail_alone
);

const TOKEN: &str = "clever-district-token-6f1d2c3b4a5e";

/// PUTs the district's Clever source; the status and body.
async fn configure(
    app: &TestApp,
    token: &str,
    district: &str,
    body: Value,
) -> anyhow::Result<(u16, Value)> {
    let response = app
        .http
        .put(app.url(&format!("/v1/districts/{district}/sources/clever")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    assert!(!text.contains(TOKEN), "the token is shown: {text}");
    Ok((status, serde_json::from_str(&text)?))
}

/// The source's latest run once it has ended (the first run, from the schedule, starts at once).
async fn ended_run(
    app: &TestApp,
    token: &str,
    district: &str,
    nth: usize,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let source = app
            .get_json(token, &format!("/v1/districts/{district}/sources/clever"))
            .await?;
        assert!(!source.to_string().contains(TOKEN));
        let runs = source["runs"].as_array().cloned().unwrap_or_default();
        if runs.len() >= nth
            && let Some(run) = runs.first()
            && (run["status"] == "finished" || run["status"] == "failed")
        {
            return Ok(run.clone());
        }
        anyhow::ensure!(Instant::now() < deadline, "no run ended: {source}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `POST …/sync?wait=60`: the run, ended.
async fn sync_now(
    app: &TestApp,
    token: &str,
    district: &str,
    query: &str,
) -> anyhow::Result<Value> {
    let response = app
        .http
        .post(app.url(&format!(
            "/v1/districts/{district}/sources/clever/sync?wait=60{query}"
        )))
        .bearer_auth(token)
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    Ok(response.json().await?)
}

fn counts(run: &Value) -> [u64; 5] {
    let c = &run["counts"];
    [
        "created",
        "updated",
        "deactivated",
        "reactivated",
        "unchanged",
    ]
    .map(|k| c[k].as_u64().unwrap_or(u64::MAX))
}

/// The district's Clever people by Clever id.
async fn clever_people(
    db: &DatabaseConnection,
    district: &str,
) -> anyhow::Result<BTreeMap<String, person::Model>> {
    Ok(person::Entity::find()
        .filter(person::Column::DistrictId.eq(district))
        .filter(person::Column::Source.eq(RosterSource::Clever))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|p| p.source_id.clone().map(|id| (id, p)))
        .collect())
}

async fn clever_full_then_incremental_sync(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let admin = app.create_district("springfield", "Springfield").await?;
    let db = app.connections.database().await?;
    let fake = FakeClever::start(&[TOKEN]).await?;
    fake.validate()?;
    fake.page_cap(2);

    let (north, south, east) = (fake.id(), fake.id(), fake.id());
    fake.put_school(&school(&north, "North Elementary", "1"));
    fake.put_school(&school(&south, "South Elementary", "2"));
    fake.put_school(&school(&east, "East Middle", "3"));
    let ids: Vec<String> = (0..8).map(|_| fake.id()).collect();
    let (ann, ben, cat, dan, tess, tom, sam, parent) = (
        &ids[0], &ids[1], &ids[2], &ids[3], &ids[4], &ids[5], &ids[6], &ids[7],
    );
    fake.put_user(&student(ann, "Ann", "Avery", "S1", "1001", "3", &[&north]));
    fake.put_user(&student(
        ben,
        "Ben",
        "Baker",
        "S2",
        "1002",
        "4",
        &[&north, &south],
    ));
    fake.put_user(&student(
        cat,
        "Cat",
        "Cole",
        "S3",
        "1003",
        "Kindergarten",
        &[&south],
    ));
    fake.put_user(&student(dan, "Dan", "Diaz", "S4", "1004", "5", &[&south]));
    fake.put_user(&teacher(tess, "Tess", "Turner", "T1", "T-100", &[&north]));
    fake.put_user(&teacher(tom, "Tom", "Tate", "T2", "T-101", &[&south]));
    fake.put_user(&staff(sam, "Sam", "Stone", "STAFF-200", &[&north]));
    fake.put_user(&contact(parent, "Pat", "Avery", ann));
    // An event before the first sync: the full sync starts after it, never applies it.
    fake.unrelated_event();

    // Configured: created, the token sealed and never shown; the first sync starts at once.
    let (status, source) = configure(
        &app,
        &admin,
        "springfield",
        json!({"token": TOKEN, "base_url": fake.base_url}),
    )
    .await?;
    assert_eq!(status, 201, "{source}");
    assert_eq!(source["token_set"], true);
    assert_eq!(source["base_url"], fake.base_url.as_str());
    assert_eq!(source["interval_secs"], 900);
    let sealed: String =
        pictureday_roster::db::clever_source::Entity::find_by_id("springfield".to_owned())
            .one(&db)
            .await?
            .map(|s| s.token_sealed)
            .unwrap_or_default();
    assert!(sealed.starts_with("v1:") && !sealed.contains(TOKEN));

    // Full: 7 people over 4 pages of users (2 a page; the contact is no person), 3 schools.
    let full = ended_run(&app, &admin, "springfield", 1).await?;
    assert_eq!(
        (
            full["kind"].as_str(),
            full["trigger"].as_str(),
            full["status"].as_str()
        ),
        (Some("full"), Some("schedule"), Some("finished")),
        "{full}"
    );
    assert_eq!(counts(&full), [7, 0, 0, 0, 0], "{full}");
    assert_eq!(
        (full["schools"].as_u64(), full["error_count"].as_u64()),
        (Some(3), Some(0)),
        "{full}"
    );
    let user_pages = fake
        .requests()
        .iter()
        .filter(|r| r.path_and_query.starts_with("/v3.1/users") && r.status == 200)
        .count();
    assert_eq!(user_pages, 4);
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN}")[..]))
    );

    let people = clever_people(&db, "springfield").await?;
    assert_eq!(people.len(), 7);
    let role_of = |id: &str| {
        people
            .get(id)
            .map(|p| (p.role.as_str(), p.staff_id.clone(), p.sis_id.clone()))
    };
    assert_eq!(role_of(ann), Some(("student", None, Some("S1".into()))));
    assert_eq!(
        role_of(tess),
        Some(("staff", Some("T-100".into()), Some("T1".into())))
    );
    assert_eq!(
        role_of(sam),
        Some(("staff", Some("STAFF-200".into()), None))
    );
    assert!(!people.contains_key(parent));
    let ann_before = people
        .get(ann)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no Ann"))?;
    assert_eq!(
        (
            ann_before.student_number.as_deref(),
            ann_before.grade.as_deref(),
            ann_before.school.as_str()
        ),
        (Some("1001"), Some("3"), "North Elementary")
    );
    assert_eq!(
        ann_before.email.as_deref(),
        Some("ann.avery@students.example.org")
    );
    let ben_id = people.get(ben).map(|p| p.id.clone()).unwrap_or_default();
    let ben_schools = person_school::Entity::find()
        .filter(person_school::Column::PersonId.eq(ben_id))
        .count(&db)
        .await?;
    assert_eq!(ben_schools, 2);
    assert!(people.values().all(|p| p.status == PersonStatus::Active));

    // Ann gets a photo.
    let put = app
        .http
        .put(app.url(&format!(
            "/v1/districts/springfield/people/{}/photo?wait=true",
            ann_before.id
        )))
        .bearer_auth(&admin)
        .header("content-type", "image/jpeg")
        .body(jpeg(photo(240, 300, 7))?)
        .send()
        .await?;
    assert!(put.status().is_success(), "{}", put.status());
    let ann_photo = person::Entity::find_by_id(ann_before.id.clone())
        .one(&db)
        .await?
        .and_then(|p| p.current_photo_id)
        .ok_or_else(|| anyhow::anyhow!("Ann has no photo"))?;

    // Events: a school created and one renamed, a student created, Ann's SIS id changed, a
    // teacher renamed, a student deleted, a contact updated and a section (neither a person),
    // then the creation replayed. The first request is refused with a 429.
    let west = fake.id();
    fake.change("schools.created", school(&west, "West High", "4"));
    fake.change("schools.updated", school(&east, "East Middle School", "3"));
    let eve = fake.id();
    let eve_created = fake.change(
        "users.created",
        student(&eve, "Eve", "Ellis", "S5", "1005", "9", &[&west]),
    );
    fake.change(
        "users.updated",
        student(ann, "Ann", "Avery", "S1-NEW", "1001", "3", &[&north]),
    );
    fake.change(
        "users.updated",
        teacher(tess, "Tess", "Turner-Hall", "T1", "T-100", &[&north]),
    );
    fake.change(
        "users.deleted",
        student(cat, "Cat", "Cole", "S3", "1003", "Kindergarten", &[&south]),
    );
    fake.change("users.updated", contact(parent, "Pat", "Avery-Smith", ann));
    // Tom is a contact only now: no longer photographed, deactivated.
    fake.change("users.updated", contact(tom, "Tom", "Tate", ben));
    fake.unrelated_event();
    fake.replay(&eve_created);
    fake.throttle(1, 1);
    let before = fake.requests().len();
    let run = sync_now(&app, &admin, "springfield", "").await?;
    assert_eq!(
        (
            run["kind"].as_str(),
            run["trigger"].as_str(),
            run["status"].as_str()
        ),
        (Some("incremental"), Some("manual"), Some("finished")),
        "{run}"
    );
    // Eve created; Ann and Tess updated; Cat and Tom deactivated; the replay applied once.
    assert_eq!(counts(&run), [1, 2, 2, 0, 0], "{run}");
    assert_eq!(
        (run["schools"].as_u64(), run["error_count"].as_u64()),
        (Some(2), Some(0)),
        "{run}"
    );
    // The 429 was waited out as Retry-After said.
    let requests = fake.requests()[before..].to_vec();
    let throttled = requests
        .iter()
        .position(|r| r.status == 429)
        .ok_or_else(|| anyhow::anyhow!("no 429"))?;
    let retried = requests
        .get(throttled + 1)
        .ok_or_else(|| anyhow::anyhow!("no retry"))?;
    assert!(retried.at.duration_since(requests[throttled].at) >= Duration::from_millis(950));
    assert_eq!(retried.status, 200);

    let people = clever_people(&db, "springfield").await?;
    assert_eq!(people.len(), 8);
    let ann_after = people
        .get(ann)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no Ann"))?;
    assert_eq!(
        ann_after.id, ann_before.id,
        "an SIS id change is the same person"
    );
    assert_eq!(ann_after.sis_id.as_deref(), Some("S1-NEW"));
    assert_eq!(
        ann_after.current_photo_id.as_deref(),
        Some(ann_photo.as_str()),
        "and keeps the photo"
    );
    assert_eq!(
        people.get(tess).map(|p| p.last_name.as_str()),
        Some("Turner-Hall")
    );
    let cat_after = people
        .get(cat)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("Cat was deleted"))?;
    assert_eq!(cat_after.status, PersonStatus::Inactive);
    assert!(cat_after.inactive_since.is_some());
    assert_eq!(
        people.get(&eve).map(|p| (p.school.as_str(), p.status)),
        Some(("West High", PersonStatus::Active))
    );
    let schools = pictureday_roster::db::school::Entity::find()
        .filter(pictureday_roster::db::school::Column::DistrictId.eq("springfield"))
        .all(&db)
        .await?;
    let mut names: Vec<&str> = schools.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "East Middle School",
            "North Elementary",
            "South Elementary",
            "West High"
        ]
    );

    // Nothing new: an empty run; the replay is not applied again. A dashboard following the
    // district's event stream sees the run start and end as `roster.sync` events.
    let mut events = EventStream::open(&app, &admin, None).await?;
    let idle = sync_now(&app, &admin, "springfield", "").await?;
    assert_eq!(counts(&idle), [0, 0, 0, 0, 0], "{idle}");
    assert_eq!(idle["kind"], "incremental");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match events.next(Duration::from_secs(30)).await? {
            None => anyhow::bail!("no roster.sync events; got {seen:?}"),
            Some(Item::Comment(_)) => {}
            Some(Item::Event { event, data, .. }) => {
                assert_eq!(event, "roster.sync", "{data}");
                assert_eq!(data["run_id"], idle["id"]);
                seen.push(data["status"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    assert_eq!(seen, ["running", "finished"]);

    // The feed forgot the cursor (older than its 30 days): the spec's 404, then a full sync.
    fake.expire_events();
    // Dan's name is missing for now: skipped, an error, and not deactivated.
    let mut unnamed = student(dan, "Dan", "Diaz", "S4", "1004", "5", &[&south]);
    unnamed["name"]["first"] = Value::Null;
    fake.put_user(&unnamed);
    let fay = fake.id();
    fake.change(
        "users.created",
        student(&fay, "Fay", "Ford", "S6", "1006", "2", &[&south]),
    );
    let resync = sync_now(&app, &admin, "springfield", "").await?;
    assert_eq!(
        (resync["kind"].as_str(), resync["status"].as_str()),
        (Some("full"), Some("finished")),
        "{resync}"
    );
    assert_eq!(counts(&resync), [1, 0, 0, 0, 5], "{resync}");
    assert_eq!(resync["error_count"], 2);
    assert_eq!(resync["errors"][0]["kind"], "cursor_expired");
    assert_eq!(resync["errors"][1]["kind"], "unnamed_user");
    assert_eq!(resync["errors"][1]["record"], dan.as_str());
    // Cat and Tom stay inactive (not listed), Dan active; nobody else changed.
    let people = clever_people(&db, "springfield").await?;
    assert_eq!(people.len(), 9);
    assert_eq!(
        people
            .values()
            .filter(|p| p.status == PersonStatus::Active)
            .count(),
        7
    );
    assert_eq!(
        people.get(dan).map(|p| p.status),
        Some(PersonStatus::Active)
    );
    assert_eq!(
        people.get(tom).map(|p| p.status),
        Some(PersonStatus::Inactive)
    );
    // And incremental again from the feed's newest event.
    let after = sync_now(&app, &admin, "springfield", "").await?;
    assert_eq!(
        (after["kind"].as_str(), counts(&after)),
        (Some("incremental"), [0, 0, 0, 0, 0]),
        "{after}"
    );

    // Announced on the status stream as `roster.sync`.
    let stream = app.bus.js.get_stream(STATUS_STREAM).await?;
    let run_id = resync["id"].as_str().unwrap_or_default();
    let subject = roster_sync_subject(&DistrictId::parse("springfield")?, run_id);
    let message = stream.get_last_raw_message_by_subject(&subject).await?;
    let event: RosterSync = serde_json::from_slice(&message.payload)?;
    assert_eq!(
        (
            event.status.as_str(),
            event.kind.as_str(),
            event.created,
            event.unchanged
        ),
        ("finished", "full", 1, 5)
    );

    // GET shows the runs, newest first, and never the token.
    let source = app
        .get_json(&admin, "/v1/districts/springfield/sources/clever")
        .await?;
    assert_eq!(source["runs"].as_array().map(Vec::len), Some(5));
    assert_eq!(source["runs"][0]["id"], after["id"]);
    assert!(source["last_full_sync_at"].is_string());
    assert!(!source.to_string().contains(TOKEN));

    assert_eq!(fake.violations(), Vec::<String>::new());
    app.stop().await
}

async fn clever_districts_fail_alone(backend: Backend) -> anyhow::Result<()> {
    // Every span (and the log events inside them) of the app is kept, to look for the token.
    let exporter = InMemorySpanExporter::default();
    pictureday_platform::telemetry::init_with_exporters(
        "pictureday-tests",
        exporter.clone(),
        opentelemetry_sdk::metrics::InMemoryMetricExporter::default(),
    );
    // A second roster replica (its own connections and sync worker) competes for every sync.
    let app = TestApp::spawn_with(
        backend,
        AppLayout {
            extra_replicas: 1,
            ..Default::default()
        },
    )
    .await?;
    let springfield = app.create_district("springfield", "Springfield").await?;
    let shelbyville = app.create_district("shelbyville", "Shelbyville").await?;
    let fake = FakeClever::start(&[TOKEN]).await?;
    fake.validate()?;
    let north = fake.id();
    fake.put_school(&school(&north, "North Elementary", "1"));
    for n in 0..3 {
        fake.put_user(&student(
            &fake.id(),
            "Kid",
            &format!("K{n}"),
            &format!("S{n}"),
            &format!("{n}"),
            "1",
            &[&north],
        ));
    }

    // Bad bodies.
    let (status, body) = configure(&app, &springfield, "springfield", json!({"token": ""})).await?;
    assert_eq!(status, 422, "{body}");
    let (status, body) = configure(
        &app,
        &springfield,
        "springfield",
        json!({"token": TOKEN, "base_url": "ftp://x"}),
    )
    .await?;
    assert_eq!(status, 422, "{body}");
    let (status, body) = configure(
        &app,
        &springfield,
        "springfield",
        json!({"token": TOKEN, "interval_secs": 5}),
    )
    .await?;
    assert_eq!(status, 422, "{body}");
    // Not configured yet.
    let missing = app
        .get(&springfield, "/v1/districts/springfield/sources/clever")
        .await?;
    assert_eq!(missing.status().as_u16(), 404);

    // Shelbyville's token is refused by Clever; Springfield's works. Clever fails twice first.
    fake.fail(2);
    let wrong = "revoked-token-0000000000";
    let (status, _) = configure(
        &app,
        &shelbyville,
        "shelbyville",
        json!({"token": wrong, "base_url": fake.base_url}),
    )
    .await?;
    assert_eq!(status, 201);
    let (status, _) = configure(
        &app,
        &springfield,
        "springfield",
        json!({"token": TOKEN, "base_url": fake.base_url, "interval_secs": 3600}),
    )
    .await?;
    assert_eq!(status, 201);
    let failed = ended_run(&app, &shelbyville, "shelbyville", 1).await?;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["errors"][0]["kind"], "unauthorized", "{failed}");
    assert_eq!(counts(&failed), [0, 0, 0, 0, 0]);
    let synced = ended_run(&app, &springfield, "springfield", 1).await?;
    assert_eq!(synced["status"], "finished", "{synced}");
    assert_eq!(counts(&synced), [3, 0, 0, 0, 0], "{synced}");
    // One replica ran it; neither runs it again (both have looked for due syncs meanwhile).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let source = app
        .get_json(&springfield, "/v1/districts/springfield/sources/clever")
        .await?;
    assert_eq!(source["runs"].as_array().map(Vec::len), Some(1), "{source}");
    // The next scheduled run is an interval after the last one ended.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let source = app
            .get_json(&springfield, "/v1/districts/springfield/sources/clever")
            .await?;
        assert_eq!(source["interval_secs"], 3600);
        let next = chrono::DateTime::parse_from_rfc3339(
            source["next_run_at"].as_str().unwrap_or_default(),
        )?;
        if next > chrono::Utc::now() + chrono::Duration::seconds(3000) {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "not rescheduled: {source}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Asking again for Shelbyville fails again, alone.
    let again = sync_now(&app, &shelbyville, "shelbyville", "").await?;
    assert_eq!(
        (again["status"].as_str(), again["kind"].as_str()),
        (Some("failed"), Some("full"))
    );

    // A new token for Shelbyville (an update: 200), and it syncs.
    fake.accept(wrong);
    let (status, _) = configure(
        &app,
        &shelbyville,
        "shelbyville",
        json!({"token": wrong, "base_url": fake.base_url, "enabled": false}),
    )
    .await?;
    assert_eq!(status, 200);
    // Scheduled syncs are off; one asked for still runs.
    let fixed = sync_now(&app, &shelbyville, "shelbyville", "&full=true").await?;
    assert_eq!(
        (fixed["status"].as_str(), counts(&fixed)),
        (Some("finished"), [3, 0, 0, 0, 0]),
        "{fixed}"
    );
    let shown = app
        .get_json(&shelbyville, "/v1/districts/shelbyville/sources/clever")
        .await?;
    assert_eq!(
        (
            shown["enabled"].as_bool(),
            shown["runs"].as_array().map(Vec::len)
        ),
        (Some(false), Some(3)),
        "{shown}"
    );

    // Roles: a viewer reads, may not configure or sync; another district's admin sees nothing.
    let viewer: Value = app
        .http
        .post(app.url("/v1/districts/springfield/tokens"))
        .bearer_auth(&springfield)
        .json(&json!({"role": "viewer"}))
        .send()
        .await?
        .json()
        .await?;
    let viewer = viewer["token"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        app.get(&viewer, "/v1/districts/springfield/sources/clever")
            .await?
            .status()
            .as_u16(),
        200
    );
    let (status, _) = configure(&app, &viewer, "springfield", json!({"token": TOKEN})).await?;
    assert_eq!(status, 403);
    let post = app
        .http
        .post(app.url("/v1/districts/springfield/sources/clever/sync"))
        .bearer_auth(&viewer)
        .send()
        .await?;
    assert_eq!(post.status().as_u16(), 403);
    let other = app
        .get(&shelbyville, "/v1/districts/springfield/sources/clever")
        .await?;
    assert!(matches!(other.status().as_u16(), 403 | 404));

    // The token is in no span or log event.
    let spans = exporter.get_finished_spans()?;
    assert!(!spans.is_empty());
    for span in spans {
        let text = format!("{:?} {:?} {:?}", span.name, span.attributes, span.events);
        assert!(
            !text.contains(TOKEN) && !text.contains(wrong),
            "the token is logged: {text}"
        );
    }
    assert_eq!(fake.violations(), Vec::<String>::new());
    app.stop().await
}
