//! Logging: structured `tracing` output, JSON when the Lambda log format asks for it, and what
//! each invocation cost the function.

use std::future::Future;
use std::time::{Duration, Instant};

/// Starts logging once per cold start. The level comes from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`
/// (default INFO); `AWS_LAMBDA_LOG_FORMAT=JSON` (set by the template) switches to JSON lines.
pub fn init() {
    lambda_http::tracing::init_default_subscriber();
}

/// Runs one invocation of a function outside the HTTP API (an event consumer, the redrive) and
/// logs one line with its outcome, latency and CPU time; HTTP functions log theirs in
/// [`crate::http::serve`].
pub async fn measured<T, E>(work: impl Future<Output = Result<T, E>>) -> Result<T, E> {
    let meter = Meter::start();
    let result = work.await;
    let Cost { latency_ms, cpu_ms } = meter.stop();
    let outcome = if result.is_ok() { "handled" } else { "failed" };
    tracing::info!(outcome, latency_ms, cpu_ms, "invocation done");
    result
}

/// Measures one invocation: its wall time, and the CPU time the process spent on it.
///
/// The CPU time is the function's own share of an invocation: time spent waiting for DynamoDB
/// or EventBridge is not in it, and neither is the runtime client's exchange with Lambda before
/// and after the handler. It counts every thread (password hashing runs off the handler's).
#[derive(Debug, Clone, Copy)]
pub struct Meter {
    started: Instant,
    cpu_at_start: Option<Duration>,
}

/// What an invocation cost, in milliseconds, as logged with it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    pub latency_ms: f64,
    /// `None` where the platform has no process CPU clock.
    pub cpu_ms: Option<f64>,
}

impl Meter {
    pub fn start() -> Self {
        Self { started: Instant::now(), cpu_at_start: process_cpu_time() }
    }

    pub fn stop(self) -> Cost {
        let cpu = self.cpu_at_start.zip(process_cpu_time()).map(|(start, end)| end - start);
        Cost {
            latency_ms: self.started.elapsed().as_secs_f64() * 1000.0,
            cpu_ms: cpu.map(|spent| spent.as_secs_f64() * 1000.0),
        }
    }
}

/// The CPU time (user and system, all threads) this process has used so far.
fn process_cpu_time() -> Option<Duration> {
    #[cfg(unix)]
    {
        let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `clock_gettime` only writes the `timespec` it is given, which lives here.
        let read = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
        let seconds = u64::try_from(now.tv_sec).ok()?;
        let nanos = u32::try_from(now.tv_nsec).ok()?;
        (read == 0).then(|| Duration::new(seconds, nanos))
    }
    #[cfg(not(unix))]
    None
}
