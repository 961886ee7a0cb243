//! sea-orm entities, one module per table.

pub mod api_token;
pub mod district;
pub mod file_outcome;
pub mod job;
pub mod job_file;
pub mod job_status;
pub mod person;
pub mod photo;
