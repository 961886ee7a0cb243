//! What an import asks for besides its files: look first or apply at once, and which people's
//! photos it may replace. Chosen per upload (`?mode=preview&replace=missing_only`) and carried by
//! every event of the job, so the stage that applies photos decides without asking anyone.

#[cfg(feature = "db")]
use sea_orm::sea_query::StringLen;
use serde::{Deserialize, Serialize};

/// Apply the photos, or stop before the roster and say what would happen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "db", derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum))]
#[cfg_attr(
    feature = "db",
    sea_orm(rs_type = "String", db_type = "String(StringLen::None)")
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    #[default]
    #[cfg_attr(feature = "db", sea_orm(string_value = "apply"))]
    Apply,
    #[cfg_attr(feature = "db", sea_orm(string_value = "preview"))]
    Preview,
}

/// Whose photo an import may set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "db", derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum))]
#[cfg_attr(
    feature = "db",
    sea_orm(rs_type = "String", db_type = "String(StringLen::None)")
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReplacePolicy {
    /// Everyone matched: a newer upload replaces the current photo.
    #[default]
    #[cfg_attr(feature = "db", sea_orm(string_value = "always"))]
    Always,
    /// Only people with no photo; the others keep theirs (outcome `skipped`).
    #[cfg_attr(feature = "db", sea_orm(string_value = "missing_only"))]
    MissingOnly,
    /// Only people who already have a photo (retakes); the others are `skipped`.
    #[cfg_attr(feature = "db", sea_orm(string_value = "existing_only"))]
    ExistingOnly,
}

impl ReplacePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplacePolicy::Always => "always",
            ReplacePolicy::MissingOnly => "missing_only",
            ReplacePolicy::ExistingOnly => "existing_only",
        }
    }
}

impl ImportMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportMode::Apply => "apply",
            ImportMode::Preview => "preview",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportOptions {
    #[serde(default)]
    pub mode: ImportMode,
    #[serde(default)]
    pub replace: ReplacePolicy,
}

impl ImportOptions {
    /// Events leave the defaults out, so a plain import's events read as before.
    pub fn is_default(&self) -> bool {
        *self == ImportOptions::default()
    }
}
