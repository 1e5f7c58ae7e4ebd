//! swarmhub-node: the tokio driver of swarmhub-core.
//!
//! - [`hub`]: `swarmhub hub ...`: image cache, private tracker, HTTP API, web seed, seeder.
//! - [`client`]: `swarmhub login|pull|images|config|service|doctor`.
//! - [`peer`]: the peer driver shared by both: transport, listener, one task per swarm.
//! - [`metrics`]: the Prometheus metric families of hub and client, `/metrics`.
//! - [`store`], [`db`], [`image`], [`rate`], [`paths`], [`logging`]: the pieces they share.
#![forbid(unsafe_code)]

mod budget;
pub mod client;
pub mod db;
mod digests;
mod handles;
pub mod hub;
pub mod image;
pub mod logging;
pub mod metrics;
pub mod oci;
pub mod paths;
pub mod peer;
mod piece_buf;
pub mod rate;
pub mod store;
pub mod tls;
pub mod util;
