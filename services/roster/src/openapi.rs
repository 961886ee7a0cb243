//! Roster's part of the OpenAPI document: districts, tokens, people and photos, photo links,
//! roster imports, the missing-photos report and applying previews. The launcher merges it with
//! the other services' parts (`pictureday::openapi`).

use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

/// A photo's rendition.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PhotoSize {
    /// 96×120.
    Small,
    /// 240×300.
    Medium,
    /// 480×600.
    Large,
}

/// A roster import's row errors, in file order (the JSON form of the streamed log).
#[derive(Serialize, ToSchema)]
#[schema(as = RosterImportErrors)]
pub struct RowErrors {
    pub import: String,
    #[schema(value_type = Vec<crate::imports_api::RowErrorBody>)]
    pub items: Vec<serde_json::Value>,
}

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::api::create_district,
        crate::api::list_districts,
        crate::api::get_district,
        crate::api::list_people,
        crate::api::get_person,
        crate::api::get_photo,
        crate::api::list_photo_versions,
        crate::api::get_photo_version,
        crate::person_photos::delete_photo,
        crate::person_photos::restore_photo,
        crate::person_photos::list_purges,
        crate::reports::missing_photos,
        crate::imports_api::upload_roster,
        crate::imports_api::list_imports,
        crate::imports_api::get_import,
        crate::imports_api::get_errors,
        crate::tokens::create_token,
        crate::tokens::list_tokens,
        crate::tokens::revoke_token,
        crate::tokens::whoami,
        crate::photo_links::make_link,
        crate::photo_links::serve_link,
        crate::preview::apply_preview,
        crate::undo::undo_job,
        crate::undo::get_undo,
        crate::sources::clever::api::configure,
        crate::sources::clever::api::show,
        crate::sources::clever::api::sync_now,
        crate::schools_api::list_schools,
        crate::schools_api::get_school,
        crate::schools_api::put_school,
        crate::schools_api::get_photo_settings,
        crate::schools_api::put_photo_settings,
    ),
    components(schemas(PhotoSize, RowErrors)),
    tags(
        (name = "districts", description = "Districts: the operator creates them; each district's data is its own."),
        (name = "tokens", description = "A district's tokens, each with a role (`admin` ⊃ `importer` ⊃ `viewer`)."),
        (name = "people", description = "People on the roster, their photos and the missing-photos report."),
        (name = "photo-links", description = "Signed, expiring links that serve one person's photo to `<img>` tags."),
        (name = "roster", description = "Roster uploads (CSV) and their imports."),
        (name = "jobs", description = "Import jobs: their state and counts, and what happened to every file."),
        (name = "sources", description = "Roster sources that keep a district's people current: Clever (a token per district, synced on a schedule and on demand)."),
        (name = "schools", description = "A district's schools, and photos turned on or off per school or for the whole district."),
    )
)]
struct RosterApi;

/// Roster's routes, documented.
pub fn openapi() -> utoipa::openapi::OpenApi {
    RosterApi::openapi()
}

#[cfg(test)]
mod tests {
    use pictureday_platform::openapi::{documented_paths, registered_paths};

    /// Every route this service registers is documented, and every documented one registered
    /// (the methods are compared with what the server answers by the end-to-end tests).
    #[test]
    fn every_route_registered_is_documented_and_no_other() -> anyhow::Result<()> {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        assert_eq!(registered_paths(&src)?, documented_paths(&super::openapi()));
        Ok(())
    }
}
