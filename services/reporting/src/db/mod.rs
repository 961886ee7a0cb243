//! Reporting's tables: the job projection (`job_status`), every file's outcome
//! (`file_outcomes`) and webhooks (`webhook_endpoints`, `webhook_deliveries`,
//! `webhook_attempts`), with their own migration history (`seaql_migrations_reporting`).

pub mod dead_letter;
pub mod file_outcome;
pub mod job_status;
mod migration;
mod migration_previews;
mod migration_undo;
mod migration_webhooks;
pub mod webhook_attempt;
pub mod webhook_delivery;
pub mod webhook_endpoint;

pub use migration::Migrator;
