//! How Pictureday's services run: connections made on first use ([`Connections`]), the bus and
//! the one consumer loop every pipeline stage goes through ([`stage`]), storage, the database
//! plumbing, HTTP plumbing, configuration and telemetry. It owns no tables: each service's live
//! in its own crate.

pub mod bus;
pub mod config;
pub mod config_file;
pub mod connections;
pub mod consumer;
pub mod csv_out;
pub mod db;
pub mod http;
pub mod http_limits;
pub mod http_responses;
pub mod http_server;
pub mod job_status;
pub mod metrics;
pub mod nats_client;
pub mod nats_server;
pub mod openapi;
pub mod runtime;
pub mod sealing;
pub mod stage;
pub mod storage;
pub mod telemetry;
pub mod text;

pub use connections::Connections;
