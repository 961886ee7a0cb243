//! Roster's tables: people (`people`), every photo applied to them (`photos`) and roster imports
//! (`roster_imports`, `roster_import_errors`), with their
//! own migration history (`seaql_migrations_roster`). Districts and tokens are in
//! `pictureday-access`, which roster writes and every service with an API reads.

pub mod clever_source;
pub mod job_undo;
mod migration;
mod migration_person_photos;
mod migration_sources;
pub mod person;
pub mod person_school;
pub mod photo;
pub mod photo_purge;
pub mod roster_generation;
pub mod roster_import;
pub mod roster_import_error;
pub mod school;
pub mod source_event_applied;
pub mod source_sync_run;

pub use migration::Migrator;
