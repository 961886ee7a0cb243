//! Ingest's part of the OpenAPI document: imports (and resumable uploads), how long originals are kept, SFTP accounts. The launcher
//! merges it with the other services' parts (`pictureday::openapi`).

use utoipa::{OpenApi, ToSchema};

/// The parts of an import's form; any of them, any number of `files` and `archive` parts.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ImportForm {
    /// A SmartPass mapping CSV: no header; column 1 an email or identifier, column 2 the image's
    /// file name.
    #[schema(value_type = Option<String>, format = Binary)]
    mapping: Option<Vec<u8>>,
    /// Image files (also `files[]`, `file`).
    #[schema(value_type = Option<Vec<String>>, format = Binary)]
    files: Option<Vec<Vec<u8>>>,
    /// Zips of images, named by id (`1234.jpg`), folders allowed.
    #[schema(value_type = Option<Vec<String>>, format = Binary)]
    archive: Option<Vec<Vec<u8>>>,
}

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::api::create_import,
        crate::resumable::create_upload,
        crate::resumable::list_uploads,
        crate::resumable::get_upload,
        crate::resumable::patch_upload,
        crate::resumable::delete_upload,
        crate::resumable::import_upload,
        crate::one_photo::put_photo,
        crate::retention_settings::get_retention,
        crate::retention_settings::put_retention,
        crate::sftp::accounts_api::get_sftp,
        crate::sftp::accounts_api::create_account,
        crate::sftp::accounts_api::list_accounts,
        crate::sftp::accounts_api::get_account,
        crate::sftp::accounts_api::update_account,
        crate::sftp::accounts_api::delete_account,
    ),
    components(schemas(ImportForm)),
    tags(
        (name = "imports", description = "Photo uploads: each is a job whose every file ends in one outcome."),
        (name = "retention", description = "How long the files as uploaded are kept after their job ends."),
        (name = "sftp", description = "SFTP drop folders: the server's host key and each district's accounts."),
    )
)]
struct IngestApi;

/// Ingest's routes, documented.
pub fn openapi() -> utoipa::openapi::OpenApi {
    IngestApi::openapi()
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
