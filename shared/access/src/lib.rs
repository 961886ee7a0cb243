//! Who may call the API: districts and their tokens, and the extractor every service's router
//! uses to check them. The tables are written by roster (which creates districts and issues
//! tokens) and read by every service that serves an API: the one deliberate read across
//! services, kept in this small crate so that Cargo.toml shows who does it.

mod auth;
pub mod entities;
mod migration;
mod role;
pub mod signing;

pub use auth::{Auth, Caller, NewToken, TokenInfo, new_token};
pub use migration::Migrator;
pub use role::Role;
