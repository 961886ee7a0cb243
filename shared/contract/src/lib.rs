//! The contract between Pictureday's services: the events they exchange (and their versions),
//! the subjects, streams and durable consumers those events travel on, the ids they carry and
//! the layout of stored objects. It does no I/O; every service depends on it, and a change here
//! is a change of the documented contract (docs/events.md).

pub mod events;
pub mod ids;
pub mod keys;
pub mod matching;
pub mod options;
pub mod renditions;
pub mod subjects;

pub use ids::{DistrictId, JobId, PersonId, PhotoId};
