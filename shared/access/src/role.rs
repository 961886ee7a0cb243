//! What a district token may do. Roles nest: an admin may do what an importer may, an importer
//! what a viewer may.

use sea_orm::sea_query::StringLen;
use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    sea_orm::EnumIter,
    sea_orm::DeriveActiveEnum,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[derive(utoipa::ToSchema)]
#[schema(as = TokenRole)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything in the district, tokens and settings included.
    #[sea_orm(string_value = "admin")]
    Admin,
    /// Imports (photos and rosters), jobs, and changing people's photos; reading what a viewer
    /// reads.
    #[sea_orm(string_value = "importer")]
    Importer,
    /// Reading people, photos, jobs and reports.
    #[sea_orm(string_value = "viewer")]
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Importer => "importer",
            Role::Viewer => "viewer",
        }
    }

    fn rank(self) -> u8 {
        match self {
            Role::Viewer => 0,
            Role::Importer => 1,
            Role::Admin => 2,
        }
    }

    /// Whether a token of this role may do what needs `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self.rank() >= needed.rank()
    }

    /// How a refusal names what was needed: `importer or admin`.
    pub fn and_above(self) -> &'static str {
        match self {
            Role::Viewer => "viewer, importer or admin",
            Role::Importer => "importer or admin",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_nest() {
        use Role::*;
        let allowed: Vec<(Role, Role)> = [Admin, Importer, Viewer]
            .into_iter()
            .flat_map(|have| [Admin, Importer, Viewer].map(move |need| (have, need)))
            .filter(|(have, need)| have.allows(*need))
            .collect();
        assert_eq!(
            allowed,
            [
                (Admin, Admin),
                (Admin, Importer),
                (Admin, Viewer),
                (Importer, Importer),
                (Importer, Viewer),
                (Viewer, Viewer)
            ]
        );
    }
}
