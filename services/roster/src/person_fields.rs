//! What any roster says about a person — the roster CSV, Clever, OneRoster — compared with the
//! stored person and written onto them in one place, so every source updates the same fields the
//! same way.

use chrono::{DateTime, Utc};
use pictureday_contract::DistrictId;
use sea_orm::ActiveValue::Set;

use crate::db::person::{self, PersonStatus, RosterSource};
use crate::roster_csv::Role;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonFields {
    pub role: Role,
    /// Lower-case: matching on email ignores case.
    pub email: Option<String>,
    pub sis_id: Option<String>,
    pub student_number: Option<String>,
    pub first_name: String,
    pub last_name: String,
    /// The name of the person's (first) school.
    pub school: String,
    pub state_id: Option<String>,
    pub staff_id: Option<String>,
    pub preferred_first_name: Option<String>,
    pub grade: Option<String>,
    pub homeroom: Option<String>,
    pub teacher: Option<String>,
}

/// Who keeps a new person current, and their status.
pub struct Origin {
    pub source: RosterSource,
    pub source_id: Option<String>,
    pub status: PersonStatus,
    /// A complete listing's stamp, when the person came in one.
    pub seen: Option<DateTime<Utc>>,
}

impl PersonFields {
    /// Whether the stored person says anything else.
    pub fn differs_from(&self, p: &person::Model) -> bool {
        p.role != self.role
            || p.email != self.email
            || p.sis_id != self.sis_id
            || p.student_number != self.student_number
            || p.first_name != self.first_name
            || p.last_name != self.last_name
            || p.school != self.school
            || p.state_id != self.state_id
            || p.staff_id != self.staff_id
            || p.preferred_first_name != self.preferred_first_name
            || p.grade != self.grade
            || p.homeroom != self.homeroom
            || p.teacher != self.teacher
    }

    /// Writes every field onto `model`.
    pub fn write(self, model: &mut person::ActiveModel) {
        model.role = Set(self.role);
        model.email = Set(self.email);
        model.sis_id = Set(self.sis_id);
        model.student_number = Set(self.student_number);
        model.first_name = Set(self.first_name);
        model.last_name = Set(self.last_name);
        model.school = Set(self.school);
        model.state_id = Set(self.state_id);
        model.staff_id = Set(self.staff_id);
        model.preferred_first_name = Set(self.preferred_first_name);
        model.grade = Set(self.grade);
        model.homeroom = Set(self.homeroom);
        model.teacher = Set(self.teacher);
    }

    /// A new person with these fields.
    pub fn new_person(
        self,
        id: String,
        district: &DistrictId,
        origin: Origin,
        stamp: DateTime<Utc>,
    ) -> person::ActiveModel {
        let mut model = person::ActiveModel {
            id: Set(id),
            district_id: Set(district.as_str().to_owned()),
            current_photo_id: Set(None),
            current_photo_rank: Set(None),
            created_at: Set(stamp),
            updated_at: Set(stamp),
            inactive_since: Set(match origin.status {
                PersonStatus::Active => None,
                PersonStatus::Inactive => Some(stamp),
            }),
            status: Set(origin.status),
            source: Set(origin.source),
            source_id: Set(origin.source_id),
            source_seen_at: Set(origin.seen),
            ..Default::default()
        };
        self.write(&mut model);
        model
    }
}
