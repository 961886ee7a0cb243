//! The access tables, one module each.

pub mod api_token;
pub mod district;
