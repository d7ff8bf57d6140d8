//! The clinic's domain crate: every function is a thin handler over what lives here.
//!
//! - [`config`]: typed settings, read once at cold start; [`secret`]: the signing key from
//!   AWS Secrets Manager.
//! - [`auth`]: access tokens and the authentication step of protected handlers.
//! - [`users`]: accounts (registration, login, profile) and the store traits they need.
//! - [`store`]: the DynamoDB implementation of those traits.
//! - [`http`] and [`error`]: the HTTP edge and the house error format.
//! - [`password`], [`ids`], [`telemetry`], [`openapi`]: the supporting pieces.

pub mod analytics;
pub mod app;
pub mod appointments;
pub mod audit;
pub mod auth;
pub mod config;
pub mod error;
pub mod events;
pub mod geo;
pub mod http;
pub mod ids;
pub mod openapi;
pub mod pagination;
pub mod password;
pub mod profiles;
pub mod secret;
pub mod store;
pub mod telemetry;
pub mod users;

pub use config::Config;
pub use error::ApiError;
