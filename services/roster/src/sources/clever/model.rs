//! Clever's Data API v3.1 and Events API v3.1 as Pictureday reads them: only the fields it uses,
//! everything else ignored; fields the spec marks nullable accept `null`.
//!
//! Lists are `{"data": [{"data": <record>}, …], "links": [{"rel": "next", "uri": "/v3.1/…"}]}`;
//! an event is `{"id", "type": "users.updated", "created", "data": {"object": <record>},
//! "previous_attributes"?}`.

use serde::{Deserialize, Deserializer};

use crate::roster_csv::Role;
use crate::sources::people::SourcePerson;
use crate::sources::schools::SourceSchool;

/// A page of a list (`UsersResponse`, `SchoolsResponse`, `EventsResponse`).
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct Page<T> {
    #[serde(default = "Vec::new", deserialize_with = "null_as_default")]
    pub data: Vec<Item<T>>,
    #[serde(default = "Vec::new", deserialize_with = "null_as_default")]
    pub links: Vec<Link>,
}

impl<T> Page<T> {
    /// The `rel: next` link's URI, if there are more pages.
    pub fn next(&self) -> Option<&str> {
        self.links
            .iter()
            .find(|l| l.rel == "next")
            .map(|l| l.uri.as_str())
            .filter(|u| !u.is_empty())
    }
}

/// `{"data": <record>}`.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct Item<T> {
    pub data: T,
}

#[derive(Debug, Deserialize)]
pub struct Link {
    #[serde(default)]
    pub rel: String,
    #[serde(default)]
    pub uri: String,
}

/// An error body (`BadRequest`, `NotFound`, `InternalError`).
#[derive(Debug, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Name {
    #[serde(default)]
    pub first: Option<String>,
    #[serde(default)]
    pub last: Option<String>,
    #[serde(default)]
    pub middle: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: Name,
    #[serde(default, deserialize_with = "null_as_default")]
    pub roles: Roles,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Roles {
    #[serde(default)]
    pub student: Option<Student>,
    #[serde(default)]
    pub teacher: Option<Teacher>,
    #[serde(default)]
    pub staff: Option<Staff>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Student {
    #[serde(default)]
    pub sis_id: Option<String>,
    #[serde(default)]
    pub student_number: Option<String>,
    #[serde(default)]
    pub state_id: Option<String>,
    #[serde(default)]
    pub grade: Option<String>,
    #[serde(default)]
    pub school: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub schools: Vec<String>,
    #[serde(default)]
    pub preferred_name: Option<Name>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Teacher {
    #[serde(default)]
    pub sis_id: Option<String>,
    #[serde(default)]
    pub teacher_number: Option<String>,
    #[serde(default)]
    pub state_id: Option<String>,
    #[serde(default)]
    pub school: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub schools: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Staff {
    #[serde(default)]
    pub staff_id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub schools: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct School {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// An event of the feed; `data.object` is read by its `type`.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub data: Option<EventData>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventData {
    #[serde(default)]
    pub object: serde_json::Value,
}

/// What an event asks of a district's roster.
#[derive(Debug, Clone)]
pub enum Change {
    /// `users.created`, `users.updated`.
    UserUpserted(Box<User>),
    /// `users.deleted`.
    UserDeleted(String),
    /// `schools.created`, `schools.updated`.
    SchoolUpserted(School),
    /// `schools.deleted`: the school is kept (its people and photos stay), noted only.
    SchoolDeleted(String),
    /// Sections, terms, courses, contacts…: nothing Pictureday keeps.
    Ignored,
}

impl Event {
    /// The change the event describes; `Err` when its object does not read as its type says.
    pub fn change(&self) -> Result<Change, String> {
        let object = || {
            self.data
                .as_ref()
                .map(|d| d.object.clone())
                .unwrap_or(serde_json::Value::Null)
        };
        let read_err = |e: serde_json::Error| format!("event {} ({}): {e}", self.id, self.kind);
        Ok(match self.kind.as_str() {
            "users.created" | "users.updated" => Change::UserUpserted(Box::new(
                serde_json::from_value(object()).map_err(read_err)?,
            )),
            "users.deleted" => {
                let user: IdOnly = serde_json::from_value(object()).map_err(read_err)?;
                Change::UserDeleted(user.id)
            }
            "schools.created" | "schools.updated" => {
                Change::SchoolUpserted(serde_json::from_value(object()).map_err(read_err)?)
            }
            "schools.deleted" => {
                let school: IdOnly = serde_json::from_value(object()).map_err(read_err)?;
                Change::SchoolDeleted(school.id)
            }
            _ => Change::Ignored,
        })
    }
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

fn clean(value: Option<&String>) -> Option<String> {
    value
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

impl School {
    pub fn to_source(&self) -> SourceSchool {
        SourceSchool {
            source_id: self.id.clone(),
            name: clean(self.name.as_ref()).unwrap_or_else(|| self.id.clone()),
        }
    }
}

/// Why a Clever user is not a person of the district.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAPerson {
    /// A contact or district admin only: no photo is taken of them.
    OtherRole,
    /// A student, teacher or staff member without a first or last name.
    Unnamed,
}

impl User {
    /// The person the user is: a student (`roles.student`), or staff (`roles.teacher` or
    /// `roles.staff`, with `teacher_number`, else `staff_id`, as their staff id).
    pub fn to_person(&self) -> Result<SourcePerson, NotAPerson> {
        let roles = &self.roles;
        let mut schools: Vec<String> = Vec::new();
        let mut add = |primary: Option<&String>, all: &[String]| {
            for s in primary.into_iter().chain(all) {
                if !s.is_empty() && !schools.contains(s) {
                    schools.push(s.clone());
                }
            }
        };
        let first_name = clean(self.name.first.as_ref());
        let last_name = clean(self.name.last.as_ref());
        let person = |role: Role| SourcePerson {
            source_id: self.id.clone(),
            role,
            email: clean(self.email.as_ref()),
            sis_id: None,
            student_number: None,
            state_id: None,
            staff_id: None,
            first_name: first_name.clone().unwrap_or_default(),
            last_name: last_name.clone().unwrap_or_default(),
            preferred_first_name: None,
            grade: None,
            homeroom: None,
            teacher: None,
            schools: Vec::new(),
            active: true,
        };
        let mut person = if let Some(student) = &roles.student {
            add(student.school.as_ref(), &student.schools);
            SourcePerson {
                sis_id: clean(student.sis_id.as_ref()),
                student_number: clean(student.student_number.as_ref()),
                state_id: clean(student.state_id.as_ref()),
                grade: clean(student.grade.as_ref()),
                preferred_first_name: student
                    .preferred_name
                    .as_ref()
                    .and_then(|n| clean(n.first.as_ref()))
                    .filter(|p| Some(p) != first_name.as_ref()),
                ..person(Role::Student)
            }
        } else if roles.teacher.is_some() || roles.staff.is_some() {
            let teacher = roles.teacher.as_ref();
            let staff = roles.staff.as_ref();
            if let Some(t) = teacher {
                add(t.school.as_ref(), &t.schools);
            }
            if let Some(s) = staff {
                add(None, &s.schools);
            }
            SourcePerson {
                sis_id: teacher.and_then(|t| clean(t.sis_id.as_ref())),
                state_id: teacher.and_then(|t| clean(t.state_id.as_ref())),
                staff_id: teacher
                    .and_then(|t| clean(t.teacher_number.as_ref()))
                    .or_else(|| staff.and_then(|s| clean(s.staff_id.as_ref()))),
                ..person(Role::Staff)
            }
        } else {
            return Err(NotAPerson::OtherRole);
        };
        if first_name.is_none() || last_name.is_none() {
            return Err(NotAPerson::Unnamed);
        }
        person.schools = schools;
        Ok(person)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(value: serde_json::Value) -> User {
        serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn students_teachers_and_staff_become_people() {
        let student = user(json!({
            "id": "u1", "email": "Ann@Example.org", "district": "d",
            "name": {"first": "Ann", "last": "Lee", "middle": null},
            "roles": {"student": {"sis_id": "S1", "student_number": "1001", "state_id": null,
                "grade": "3", "school": "sch1", "schools": ["sch1", "sch2"],
                "preferred_name": {"first": "Annie"}}}
        }))
        .to_person();
        let student = student.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(student.role, Role::Student);
        assert_eq!(student.sis_id.as_deref(), Some("S1"));
        assert_eq!(student.student_number.as_deref(), Some("1001"));
        assert_eq!(student.grade.as_deref(), Some("3"));
        assert_eq!(student.preferred_first_name.as_deref(), Some("Annie"));
        assert_eq!(student.schools, vec!["sch1", "sch2"]);

        let teacher = user(json!({"id": "u2", "name": {"first": "T", "last": "Z"},
            "roles": {"teacher": {"sis_id": "T1", "teacher_number": "T-9", "school": "sch1", "schools": []},
                      "staff": {"staff_id": "ST-1", "schools": ["sch3"]}}}))
        .to_person()
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(teacher.role, Role::Staff);
        assert_eq!(teacher.staff_id.as_deref(), Some("T-9"));
        assert_eq!(teacher.schools, vec!["sch1", "sch3"]);

        let staff = user(json!({"id": "u3", "name": {"first": "S", "last": "Y"},
            "roles": {"staff": {"staff_id": "ST-2", "schools": ["sch2"], "roles": ["aide"]}}}))
        .to_person()
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            (staff.role, staff.staff_id.as_deref()),
            (Role::Staff, Some("ST-2"))
        );

        let contact = user(json!({"id": "u4", "name": {"first": "C", "last": "X"},
            "roles": {"contact": {"sis_id": "C1"}}}));
        assert_eq!(contact.to_person().err(), Some(NotAPerson::OtherRole));
        let unnamed = user(json!({"id": "u5", "name": null, "roles": {"student": {}}}));
        assert_eq!(unnamed.to_person().err(), Some(NotAPerson::Unnamed));
    }

    #[test]
    fn events_read_by_type() {
        let page: Page<Event> = serde_json::from_value(json!({
            "data": [
                {"data": {"id": "e1", "type": "users.deleted", "created": "2026-11-30T00:00:00Z",
                    "data": {"object": {"id": "u1"}}}},
                {"data": {"id": "e2", "type": "schools.updated",
                    "data": {"object": {"id": "s1", "name": "North"}},
                    "previous_attributes": {"name": "Old North"}}},
                {"data": {"id": "e3", "type": "sections.created", "data": {"object": {"id": "x"}}}}
            ],
            "links": [{"rel": "self", "uri": "/v3.1/events"}, {"rel": "next", "uri": "/v3.1/events?starting_after=e3"}]
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(page.next(), Some("/v3.1/events?starting_after=e3"));
        let changes: Vec<Change> = page
            .data
            .iter()
            .map(|e| e.data.change().unwrap_or_else(|e| panic!("{e}")))
            .collect();
        assert!(matches!(&changes[0], Change::UserDeleted(id) if id == "u1"));
        assert!(
            matches!(&changes[1], Change::SchoolUpserted(s) if s.name.as_deref() == Some("North"))
        );
        assert!(matches!(changes[2], Change::Ignored));
    }
}
