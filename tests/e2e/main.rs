//! End-to-end: the real services on a real nats-server, driven over HTTP.

mod access;
mod pipeline;
mod scaling;
mod tracing;
