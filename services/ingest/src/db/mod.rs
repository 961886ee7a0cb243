//! Ingest's tables: each accepted upload (`jobs`) and its files (`job_files`), with their own
//! migration history (`seaql_migrations_ingest`), the SFTP accounts (`sftp_accounts`) and
//! the files sent over SFTP that are not yet a job (`sftp_drops`, `sftp_drop_files`), roster
//! CSVs sent over SFTP that roster has not yet taken (`sftp_roster_handoffs`), and
//! zips uploaded in pieces (`resumable_uploads`, `resumable_upload_pieces`).

pub mod job;
pub mod job_file;
mod migration;
mod migration_one_photo;
mod migration_resumable;
mod migration_sftp;
mod migration_sftp_drops;
mod migration_sftp_roster_handoffs;
pub mod resumable_upload;
pub mod resumable_upload_piece;
pub mod sftp_account;
pub mod sftp_drop;
pub mod sftp_drop_file;
pub mod sftp_roster_handoff;

pub use migration::Migrator;
