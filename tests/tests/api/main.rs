//! End-to-end tests: real HTTP requests to the functions served by `cargo lambda watch`, backed
//! by the emulator. Run with `make test`.

mod accounts;
mod analytics;
mod appointments;
mod audit;
mod cors;
mod doctors;
mod errors;
mod health;
mod login;
mod openapi;
mod passwords;
mod patients;
mod register;
mod throttling;
mod users_me;
