//! Ingest's tables: each accepted upload (`jobs`) and its files (`job_files`), with their own
//! migration history (`seaql_migrations_ingest`).

pub mod job;
pub mod job_file;
mod migration;
mod migration_one_photo;

pub use migration::Migrator;
