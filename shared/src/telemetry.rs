//! Logging: structured `tracing` output, JSON when the Lambda log format asks for it.

/// Starts logging once per cold start. The level comes from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`
/// (default INFO); `AWS_LAMBDA_LOG_FORMAT=JSON` (set by the template) switches to JSON lines.
pub fn init() {
    lambda_http::tracing::init_default_subscriber();
}
