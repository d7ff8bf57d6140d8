//! End-to-end tests: real HTTP requests to the functions served by `cargo lambda watch`, backed
//! by the emulator. Run with `make test`.

mod analytics;
mod appointments;
mod audit;
mod doctors;
mod errors;
mod login;
mod openapi;
mod patients;
mod register;
mod users_me;
