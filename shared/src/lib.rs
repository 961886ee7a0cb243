//! Code every Pictureday service shares: the event contract, the JetStream topology, configuration,
//! storage, the database schema, authorisation and the HTTP plumbing.

pub mod auth;
pub mod bus;
pub mod config;
pub mod config_file;
pub mod context;
pub mod csv_out;
pub mod db;
pub mod events;
pub mod http;
pub mod ids;
pub mod metrics;
pub mod nats_server;
pub mod renditions;
pub mod runtime;
pub mod storage;
pub mod telemetry;
pub mod text;

pub use context::Context;
pub use ids::DistrictId;
