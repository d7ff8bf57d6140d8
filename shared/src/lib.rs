//! The clinic's domain crate: every function is a thin handler over what lives here.
//!
//! - [`config`]: typed settings, read once at cold start; [`secret`]: the signing key from
//!   AWS Secrets Manager.
//! - [`auth`] and [`session`]: access tokens, and the check of a token against its account that
//!   every protected handler starts with.
//! - [`users`]: accounts (registration, login, profile, management, password changes) and the
//!   store traits they need; [`throttle`]: limits on failed sign-ins.
//! - [`store`]: the DynamoDB implementation of those traits.
//! - [`http`] and [`error`]: the HTTP edge and the house error format.
//! - [`cors`]: the cross-origin policy every response follows; [`health`]: the health check.
//! - [`password`], [`ids`], [`telemetry`], [`openapi`]: the supporting pieces.

pub mod analytics;
pub mod app;
pub mod appointments;
pub mod audit;
pub mod auth;
pub mod config;
pub mod cors;
pub mod error;
pub mod events;
pub mod geo;
pub mod health;
pub mod http;
pub mod ids;
pub mod openapi;
pub mod pagination;
pub mod password;
pub mod profiles;
pub mod secret;
pub mod session;
pub mod store;
pub mod telemetry;
pub mod throttle;
pub mod users;

pub use config::Config;
pub use error::ApiError;
