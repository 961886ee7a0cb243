//! A fake of Clever's Data API v3.1 and Events API v3.1 on loopback, for the Clever sync's tests
//! and benchmark: `/v3.1/users`, `/v3.1/schools` and `/v3.1/events` with bearer tokens, pages
//! linked by `rel: next`, a feed that forgets old events (a cursor before them answers the
//! spec's `404 NotFound`), replayed events and `429`s on demand. Every payload is built to the
//! spec files in `tests/clever/` and, when [`FakeClever::validate`] is on, checked against them
//! (`spec::Spec`) before it is served: a field the spec does not define fails the test.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// The fake's Clever district id.
pub const DISTRICT: &str = "5fd7bd3dbd8bdc0001c0ffee";
const STAMP: &str = "2026-11-01T08:00:00.000Z";

/// A running fake; stopped when dropped.
pub struct FakeClever {
    /// `http://127.0.0.1:<port>` (what `base_url` is set to).
    pub base_url: String,
    state: Arc<Mutex<FakeState>>,
    stop: CancellationToken,
}

impl Drop for FakeClever {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A request the fake answered.
#[derive(Debug, Clone)]
pub struct Request {
    pub path_and_query: String,
    pub authorization: Option<String>,
    pub status: u16,
    pub at: Instant,
}

#[derive(Default)]
struct FakeState {
    tokens: HashSet<String>,
    /// Users by id, as JSON (ids sort as Clever's do).
    users: BTreeMap<String, String>,
    schools: BTreeMap<String, String>,
    /// The feed, oldest first: (id, the event as JSON).
    events: Vec<(String, String)>,
    next_id: u64,
    /// Records per page at most, whatever `limit` asks.
    page_cap: Option<usize>,
    /// `429`s still to answer, and their `Retry-After` (seconds).
    throttle: Option<(u32, u64)>,
    /// `503`s still to answer.
    failures: u32,
    requests: Vec<Request>,
    spec: Option<Arc<spec::Spec>>,
    violations: Vec<String>,
}

impl FakeClever {
    /// Starts a fake that accepts `tokens`.
    pub async fn start(tokens: &[&str]) -> anyhow::Result<Self> {
        let state = Arc::new(Mutex::new(FakeState {
            tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
            next_id: 1,
            ..Default::default()
        }));
        let app = axum::Router::new()
            .route("/v3.1/users", get(users))
            .route("/v3.1/schools", get(schools))
            .route("/v3.1/events", get(events))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .await;
        });
        Ok(Self {
            base_url,
            state,
            stop,
        })
    }

    fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Accepts `token` too from now on.
    pub fn accept(&self, token: &str) {
        self.state().tokens.insert(token.to_owned());
    }

    /// Checks every payload against the spec files before serving it.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.state().spec = Some(Arc::new(spec::Spec::load()?));
        Ok(())
    }

    /// What failed validation so far.
    pub fn violations(&self) -> Vec<String> {
        self.state().violations.clone()
    }

    /// At most `n` records a page.
    pub fn page_cap(&self, n: usize) {
        self.state().page_cap = Some(n);
    }

    /// The next `count` requests are answered `429` with `Retry-After: secs`.
    pub fn throttle(&self, count: u32, retry_after_secs: u64) {
        self.state().throttle = Some((count, retry_after_secs));
    }

    /// The next `count` requests are answered `503`.
    pub fn fail(&self, count: u32) {
        self.state().failures = count;
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state().requests.clone()
    }

    /// A new id, as Clever's look (24 hex digits), increasing.
    pub fn id(&self) -> String {
        let mut state = self.state();
        let id = format!("{:024x}", 0x6565_0000_0000u64 + state.next_id);
        state.next_id += 1;
        id
    }

    /// Adds or replaces a school without an event (as before the feed began).
    pub fn put_school(&self, school: &Value) {
        let id = school["id"].as_str().unwrap_or_default().to_owned();
        self.state().schools.insert(id, school.to_string());
    }

    /// Adds or replaces a user without an event.
    pub fn put_user(&self, user: &Value) {
        let id = user["id"].as_str().unwrap_or_default().to_owned();
        self.state().users.insert(id, user.to_string());
    }

    /// Adds or replaces many users without events, from JSON text already made (the benchmark).
    pub fn put_users_raw(&self, users: impl IntoIterator<Item = (String, String)>) {
        self.state().users.extend(users);
    }

    pub fn user(&self, id: &str) -> Option<Value> {
        self.state()
            .users
            .get(id)
            .and_then(|u| serde_json::from_str(u).ok())
    }

    /// Changes the data and records the event: `users.created|updated|deleted`,
    /// `schools.created|updated|deleted`. Returns the event's id.
    pub fn change(&self, kind: &str, object: Value) -> String {
        let id = self.id();
        let object_id = object["id"].as_str().unwrap_or_default().to_owned();
        let mut state = self.state();
        let (record, map) = kind.split_once('.').unwrap_or_default();
        let store = if record == "users" {
            &mut state.users
        } else {
            &mut state.schools
        };
        let previous = store
            .get(&object_id)
            .and_then(|v| serde_json::from_str::<Value>(v).ok());
        match map {
            "deleted" => {
                store.remove(&object_id);
            }
            _ => {
                store.insert(object_id, object.to_string());
            }
        }
        let mut event = json!({
            "id": id,
            "type": kind,
            "created": STAMP,
            "data": {"object": object},
        });
        if map == "updated" {
            event["previous_attributes"] = previous_attributes(previous.as_ref(), &object);
        }
        state.events.push((id.clone(), event.to_string()));
        id
    }

    /// An event of a kind Pictureday keeps nothing of (a section created).
    pub fn unrelated_event(&self) -> String {
        let id = self.id();
        let section =
            json!({"id": self.id(), "district": DISTRICT, "name": "Math 3", "school": "x"});
        let event = json!({"id": id, "type": "sections.created", "created": STAMP, "data": {"object": section}});
        self.state().events.push((id.clone(), event.to_string()));
        id
    }

    /// The feed serves event `id` again, at its end (a replay).
    pub fn replay(&self, id: &str) {
        let mut state = self.state();
        if let Some(event) = state.events.iter().find(|(e, _)| e == id).cloned() {
            state.events.push(event);
        }
    }

    /// The feed forgets every event so far (older than its retention).
    pub fn expire_events(&self) {
        self.state().events.clear();
    }

    pub fn events(&self) -> usize {
        self.state().events.len()
    }
}

/// What an update changed, as the feed's `previous_attributes` shows it (top-level fields).
fn previous_attributes(previous: Option<&Value>, now: &Value) -> Value {
    let mut out = serde_json::Map::new();
    if let (Some(Value::Object(before)), Value::Object(after)) = (previous, now) {
        for (key, old) in before {
            if after.get(key) != Some(old) {
                out.insert(key.clone(), old.clone());
            }
        }
    }
    Value::Object(out)
}

/// A student, shaped as the spec's `User` with `roles.student`.
pub fn student(
    id: &str,
    first: &str,
    last: &str,
    sis_id: &str,
    number: &str,
    grade: &str,
    schools: &[&str],
) -> Value {
    json!({
        "id": id,
        "district": DISTRICT,
        "email": format!("{}.{}@students.example.org", first.to_lowercase(), last.to_lowercase()),
        "name": {"first": first, "last": last, "middle": null},
        "created": STAMP,
        "last_modified": STAMP,
        "roles": {"student": {
            "sis_id": sis_id,
            "student_number": number,
            "state_id": format!("ST{number}"),
            "grade": grade,
            "school": schools.first().copied().unwrap_or_default(),
            "schools": schools,
            "legacy_id": id,
            "credentials": {"district_username": format!("{first}{last}").to_lowercase()},
            "dob": "1/2/2016",
            "gender": "",
            "preferred_name": {"first": null, "last": null, "middle": null},
        }},
    })
}

/// A teacher (`roles.teacher`, `teacher_number`).
pub fn teacher(
    id: &str,
    first: &str,
    last: &str,
    sis_id: &str,
    number: &str,
    schools: &[&str],
) -> Value {
    json!({
        "id": id,
        "district": DISTRICT,
        "email": format!("{}.{}@example.org", first.to_lowercase(), last.to_lowercase()),
        "name": {"first": first, "last": last, "middle": null},
        "created": STAMP,
        "last_modified": STAMP,
        "roles": {"teacher": {
            "sis_id": sis_id,
            "teacher_number": number,
            "state_id": null,
            "school": schools.first().copied().unwrap_or_default(),
            "schools": schools,
            "district": DISTRICT,
            "legacy_id": id,
            "title": "Teacher",
        }},
    })
}

/// A staff member (`roles.staff`, `staff_id`).
pub fn staff(id: &str, first: &str, last: &str, staff_id: &str, schools: &[&str]) -> Value {
    json!({
        "id": id,
        "district": DISTRICT,
        "email": format!("{}.{}@example.org", first.to_lowercase(), last.to_lowercase()),
        "name": {"first": first, "last": last, "middle": null},
        "created": STAMP,
        "last_modified": STAMP,
        "roles": {"staff": {
            "staff_id": staff_id,
            "schools": schools,
            "legacy_id": id,
            "roles": ["aide"],
            "title": "Aide",
            "department": null,
        }},
    })
}

/// A contact (a parent): not a person Pictureday photographs.
pub fn contact(id: &str, first: &str, last: &str, student: &str) -> Value {
    json!({
        "id": id,
        "district": DISTRICT,
        "email": null,
        "name": {"first": first, "last": last, "middle": null},
        "created": STAMP,
        "last_modified": STAMP,
        "roles": {"contact": {
            "legacy_id": id,
            "phone": null,
            "phone_type": null,
            "sis_id": null,
            "student_relationships": [{"student": student, "relationship": "Parent", "type": "Parent/Guardian"}],
        }},
    })
}

/// A school (`School`).
pub fn school(id: &str, name: &str, number: &str) -> Value {
    json!({
        "id": id,
        "district": DISTRICT,
        "name": name,
        "school_number": number,
        "sis_id": format!("SCH{number}"),
        "created": STAMP,
        "last_modified": STAMP,
        "low_grade": "Kindergarten",
        "high_grade": "5",
        "phone": null,
        "nces_id": null,
        "state_id": null,
        "mdr_number": null,
        "principal": {"name": "Pat Principal", "email": null},
        "location": {"address": "1 Main St", "city": "Springfield", "state": "IL", "zip": "62701", "lat": null, "lon": null},
    })
}

type Shared = Arc<Mutex<FakeState>>;

fn lock(state: &Shared) -> MutexGuard<'_, FakeState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn answer(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Authorisation, throttling and failures, the same for every list; `Err` is the answer.
fn gate(state: &Shared, headers: &HeaderMap, path: String) -> Result<(), Box<Response>> {
    let mut s = lock(state);
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let record = |s: &mut FakeState, status: u16| {
        s.requests.push(Request {
            path_and_query: path.clone(),
            authorization: authorization.clone(),
            status,
            at: Instant::now(),
        });
    };
    let token = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !s.tokens.contains(token) {
        record(&mut s, 401);
        return Err(Box::new(answer(
            StatusCode::UNAUTHORIZED,
            json!({"message": "invalid bearer token"}).to_string(),
        )));
    }
    if let Some((left, secs)) = s.throttle
        && left > 0
    {
        s.throttle = Some((left - 1, secs));
        record(&mut s, 429);
        return Err(Box::new(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, secs.to_string())],
                json!({"message": "rate limit exceeded"}).to_string(),
            )
                .into_response(),
        ));
    }
    if s.failures > 0 {
        s.failures -= 1;
        record(&mut s, 503);
        return Err(Box::new(answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"message": "try again"}).to_string(),
        )));
    }
    record(&mut s, 200);
    Ok(())
}

fn limit_of(s: &FakeState, query: &BTreeMap<String, String>) -> usize {
    let asked = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 10_000);
    s.page_cap.map_or(asked, |cap| asked.min(cap))
}

/// `{"data": [{"data": …}], "links": [self, next?]}` from records already JSON.
fn envelope(resource: &str, limit: usize, records: &[(&String, &String)], more: bool) -> String {
    let mut body =
        String::with_capacity(records.iter().map(|(_, r)| r.len() + 12).sum::<usize>() + 200);
    body.push_str("{\"data\":[");
    for (i, (_, record)) in records.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str("{\"data\":");
        body.push_str(record);
        body.push('}');
    }
    body.push_str("],\"links\":[");
    body.push_str(
        &json!({"rel": "self", "uri": format!("/v3.1/{resource}?limit={limit}")}).to_string(),
    );
    if more && let Some((last, _)) = records.last() {
        body.push(',');
        body.push_str(
            &json!({"rel": "next", "uri": format!("/v3.1/{resource}?limit={limit}&starting_after={last}")})
                .to_string(),
        );
    }
    body.push_str("]}");
    body
}

fn checked(state: &Shared, definition: &str, body: String) -> Response {
    let spec = lock(state).spec.clone();
    if let Some(spec) = spec {
        let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if let Err(violation) = spec.check(definition, &parsed) {
            lock(state).violations.push(violation);
        }
    }
    answer(StatusCode::OK, body)
}

fn list(state: &Shared, resource: &str, query: &BTreeMap<String, String>) -> String {
    let s = lock(state);
    let limit = limit_of(&s, query);
    let map = if resource == "users" {
        &s.users
    } else {
        &s.schools
    };
    let start = query
        .get("starting_after")
        .map_or(Bound::Unbounded, |after| Bound::Excluded(after.clone()));
    let records: Vec<(&String, &String)> = map
        .range((start, Bound::Unbounded))
        .take(limit + 1)
        .collect();
    let more = records.len() > limit;
    envelope(resource, limit, &records[..records.len().min(limit)], more)
}

fn path_of(resource: &str, query: &BTreeMap<String, String>) -> String {
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("/v3.1/{resource}?{}", query.join("&"))
}

async fn users(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(refused) = gate(&state, &headers, path_of("users", &query)) {
        return *refused;
    }
    let body = list(&state, "users", &query);
    checked(&state, "UsersResponse", body)
}

async fn schools(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(refused) = gate(&state, &headers, path_of("schools", &query)) {
        return *refused;
    }
    let body = list(&state, "schools", &query);
    checked(&state, "SchoolsResponse", body)
}

async fn events(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(refused) = gate(&state, &headers, path_of("events", &query)) {
        return *refused;
    }
    let body = {
        let s = lock(&state);
        let limit = limit_of(&s, &query);
        let window: &[(String, String)] = if query.get("ending_before").map(String::as_str)
            == Some("last")
        {
            let from = s.events.len().saturating_sub(limit);
            &s.events[from..]
        } else if let Some(after) = query.get("starting_after") {
            match s.events.iter().rposition(|(id, _)| id == after) {
                Some(at) => &s.events[at + 1..],
                None => {
                    // The spec's NotFound: the feed keeps 30 days of events.
                    return answer(
                        StatusCode::NOT_FOUND,
                        json!({"message": format!("starting_after {after}: no such event (events are kept for 30 days)")})
                            .to_string(),
                    );
                }
            }
        } else {
            &s.events[..]
        };
        let page: Vec<(&String, &String)> =
            window.iter().take(limit).map(|(i, e)| (i, e)).collect();
        // The feed always links onwards from a page that has events.
        envelope("events", limit, &page, !page.is_empty())
    };
    checked(&state, "EventsResponse", body)
}

/// The spec files read as JSON, and payloads checked against their definitions.
pub mod spec {
    use std::path::PathBuf;

    use anyhow::Context as _;
    use serde_json::{Map, Value};

    pub struct Spec {
        definitions: Map<String, Value>,
    }

    fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clever")
    }

    impl Spec {
        /// The definitions of `v3.1.yml` and `v3.1-events.yml` (the events file's win).
        pub fn load() -> anyhow::Result<Self> {
            let mut definitions = Map::new();
            for file in ["v3.1.yml", "v3.1-events.yml"] {
                let path = dir().join(file);
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let doc = super::yaml::parse(&text);
                let defs = doc["definitions"]
                    .as_object()
                    .with_context(|| format!("{file} has no definitions"))?;
                definitions.extend(defs.clone());
            }
            Ok(Self { definitions })
        }

        /// Whether `value` is a `definition` (`UsersResponse`, …): only fields the spec
        /// defines, of the types it gives; `null` only where `x-nullable`.
        pub fn check(&self, definition: &str, value: &Value) -> Result<(), String> {
            self.object(definition, value, definition)
        }

        fn properties(&self, definition: &str) -> Result<Map<String, Value>, String> {
            let def = self
                .definitions
                .get(definition)
                .ok_or_else(|| format!("no definition {definition}"))?;
            let mut properties = def["properties"].as_object().cloned().unwrap_or_default();
            for part in def["allOf"].as_array().into_iter().flatten() {
                if let Some(name) = reference(part) {
                    properties.extend(self.properties(&name)?);
                }
                if let Some(more) = part["properties"].as_object() {
                    properties.extend(more.clone());
                }
            }
            Ok(properties)
        }

        fn object(&self, definition: &str, value: &Value, at: &str) -> Result<(), String> {
            let object = value
                .as_object()
                .ok_or_else(|| format!("{at}: not an object ({definition})"))?;
            // An event is checked as its type's definition (the spec's discriminator).
            let definition = match (definition, object.get("type").and_then(Value::as_str)) {
                ("Event", Some(kind)) if self.definitions.contains_key(kind) => kind,
                _ => definition,
            };
            let properties = self.properties(definition)?;
            for (key, field) in object {
                let schema = properties
                    .get(key)
                    .ok_or_else(|| format!("{at}.{key}: not a field of {definition}"))?;
                self.field(schema, field, &format!("{at}.{key}"))?;
            }
            Ok(())
        }

        fn field(&self, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
            if value.is_null() {
                return if schema["x-nullable"] == Value::Bool(true) {
                    Ok(())
                } else {
                    Err(format!("{at}: null where the spec does not allow it"))
                };
            }
            if let Some(name) = reference(schema) {
                return self.object(&name, value, at);
            }
            let ok = match schema["type"].as_str() {
                Some("string") => {
                    let s = value.as_str();
                    match (s, schema["enum"].as_array()) {
                        (Some(s), Some(allowed)) => allowed.iter().any(|a| a.as_str() == Some(s)),
                        (s, _) => s.is_some(),
                    }
                }
                Some("boolean") => value.is_boolean(),
                Some("integer") | Some("number") => value.is_number(),
                Some("object") => value.is_object(),
                Some("array") => {
                    let items = &schema["items"];
                    for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                        self.field(items, item, &format!("{at}[{i}]"))?;
                    }
                    value.is_array()
                }
                _ => true,
            };
            if ok {
                Ok(())
            } else {
                Err(format!("{at}: {value} is not a {schema}"))
            }
        }
    }

    fn reference(schema: &Value) -> Option<String> {
        schema["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/definitions/"))
            .map(str::to_owned)
    }
}

/// The block YAML the spec files are written in (mappings, sequences, plain and quoted
/// scalars), read into JSON.
pub mod yaml {
    use serde_json::{Map, Value};

    struct Line {
        indent: usize,
        text: String,
    }

    pub fn parse(text: &str) -> Value {
        let mut lines: Vec<Line> = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(|l| Line {
                indent: l.len() - l.trim_start().len(),
                text: l.trim().to_owned(),
            })
            .collect();
        let mut at = 0;
        block(&mut lines, &mut at, 0)
    }

    fn block(lines: &mut Vec<Line>, at: &mut usize, indent: usize) -> Value {
        if *at >= lines.len() {
            return Value::Null;
        }
        if lines[*at].text.starts_with("- ") || lines[*at].text == "-" {
            let mut items = Vec::new();
            while *at < lines.len()
                && lines[*at].indent == indent
                && lines[*at].text.starts_with('-')
            {
                let rest = lines[*at].text[1..].trim().to_owned();
                if rest.is_empty() {
                    *at += 1;
                    let inner = lines.get(*at).map_or(indent, |l| l.indent);
                    items.push(block(lines, at, inner));
                } else if key_value(&rest).is_some() {
                    // `- key: value` opens a mapping indented past the dash.
                    lines[*at] = Line {
                        indent: indent + 2,
                        text: rest,
                    };
                    items.push(block(lines, at, indent + 2));
                } else {
                    items.push(scalar(&rest));
                    *at += 1;
                }
            }
            return Value::Array(items);
        }
        let mut map = Map::new();
        while *at < lines.len() && lines[*at].indent == indent && !lines[*at].text.starts_with("- ")
        {
            let Some((key, rest)) = key_value(&lines[*at].text) else {
                *at += 1;
                continue;
            };
            *at += 1;
            let value = if !rest.is_empty() {
                scalar(&rest)
            } else {
                match lines.get(*at) {
                    Some(next) if next.indent > indent => {
                        let inner = next.indent;
                        block(lines, at, inner)
                    }
                    // A sequence may sit at its key's indent.
                    Some(next) if next.indent == indent && next.text.starts_with("- ") => {
                        block(lines, at, indent)
                    }
                    _ => Value::Null,
                }
            };
            map.insert(key, value);
        }
        Value::Object(map)
    }

    fn key_value(text: &str) -> Option<(String, String)> {
        let (key, rest) = if let Some(quoted) = text.strip_prefix('"') {
            let end = quoted.find('"')?;
            let rest = quoted[end + 1..].strip_prefix(':')?;
            (quoted[..end].to_owned(), rest)
        } else {
            let colon = text
                .find(": ")
                .or_else(|| text.strip_suffix(':').map(|t| t.len()))?;
            (text[..colon].to_owned(), &text[colon + 1..])
        };
        if key.contains(' ') && !text.starts_with('"') {
            return None;
        }
        Some((key, rest.trim().to_owned()))
    }

    fn scalar(text: &str) -> Value {
        let unquoted = text
            .strip_prefix('\'')
            .and_then(|t| t.strip_suffix('\''))
            .or_else(|| text.strip_prefix('"').and_then(|t| t.strip_suffix('"')));
        match unquoted {
            Some(s) => Value::String(s.to_owned()),
            None if text == "true" => Value::Bool(true),
            None if text == "false" => Value::Bool(false),
            None => Value::String(text.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_checked_against_the_spec() -> anyhow::Result<()> {
        let spec = spec::Spec::load()?;
        let page = |user: Value| json!({"data": [{"data": user}], "links": [{"rel": "next", "uri": "/v3.1/users?starting_after=x"}]});
        let kinds = [
            student("u1", "Ann", "Avery", "S1", "1", "Kindergarten", &["s1"]),
            teacher("u2", "Tess", "T", "T1", "T-1", &["s1"]),
            staff("u3", "Sam", "S", "ST-1", &["s1"]),
            contact("u4", "Pat", "P", "u1"),
        ];
        for user in kinds {
            spec.check("UsersResponse", &page(user))
                .map_err(anyhow::Error::msg)?;
        }
        spec.check(
            "SchoolsResponse",
            &json!({"data": [{"data": school("s1", "North", "1")}], "links": []}),
        )
        .map_err(anyhow::Error::msg)?;
        let event = json!({"data": [{"data": {"id": "e1", "type": "users.updated", "created": STAMP,
            "data": {"object": student("u1", "Ann", "Avery", "S2", "1", "3", &["s1"])},
            "previous_attributes": {"roles": {}}}}], "links": []});
        spec.check("EventsResponse", &event)
            .map_err(anyhow::Error::msg)?;

        // What the spec does not define, or types it does not allow, are caught.
        let mut wrong = student("u1", "Ann", "Avery", "S1", "1", "3", &["s1"]);
        wrong["roles"]["student"]["nickname"] = json!("A");
        assert!(spec.check("UsersResponse", &page(wrong)).is_err());
        let mut wrong = student("u1", "Ann", "Avery", "S1", "1", "3", &["s1"]);
        wrong["roles"]["student"]["grade"] = json!("Year 3");
        assert!(spec.check("UsersResponse", &page(wrong)).is_err());
        let mut wrong = student("u1", "Ann", "Avery", "S1", "1", "3", &["s1"]);
        wrong["id"] = Value::Null;
        assert!(spec.check("UsersResponse", &page(wrong)).is_err());
        let deleted_school_as_user = json!({"data": [{"data": {"id": "e2", "type": "users.deleted",
            "data": {"object": {"id": "s1", "low_grade": "5"}}}}]});
        assert!(
            spec.check("EventsResponse", &deleted_school_as_user)
                .is_err()
        );
        Ok(())
    }
}
