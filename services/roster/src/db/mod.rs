//! Roster's tables: people (`people`) and every photo applied to them (`photos`), with their
//! own migration history (`seaql_migrations_roster`). Districts and tokens are in
//! `pictureday-access`, which roster writes and every service with an API reads.

mod migration;
pub mod person;
pub mod photo;
pub mod roster_generation;

pub use migration::Migrator;
