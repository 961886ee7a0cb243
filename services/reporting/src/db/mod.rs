//! Reporting's tables: the job projection (`job_status`) and every file's outcome
//! (`file_outcomes`), with their own migration history (`seaql_migrations_reporting`).

pub mod dead_letter;
pub mod file_outcome;
pub mod job_status;
mod migration;
mod migration_previews;

pub use migration::Migrator;
