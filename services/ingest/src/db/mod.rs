//! Ingest's tables: each accepted upload (`jobs`) and its files (`job_files`), with their own
//! migration history (`seaql_migrations_ingest`), and the SFTP accounts (`sftp_accounts`).

pub mod job;
pub mod job_file;
mod migration;
mod migration_one_photo;
mod migration_sftp;
pub mod sftp_account;

pub use migration::Migrator;
