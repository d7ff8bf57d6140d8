//! The meter reads the whole process's CPU clock, so this file holds one test: its own binary,
//! with no other test threads running beside it.

use std::time::{Duration, Instant};

use shared::telemetry::Meter;

#[test]
fn a_meter_counts_cpu_spent_and_not_time_spent_waiting() {
    let busy = Meter::start();
    let mut state = 1_u64;
    let spin_until = Instant::now() + Duration::from_millis(40);
    while Instant::now() < spin_until {
        state = std::hint::black_box(state.wrapping_mul(6_364_136_223_846_793_005) ^ 1);
    }
    let busy = busy.stop();

    let waiting = Meter::start();
    std::thread::sleep(Duration::from_millis(40));
    let waiting = waiting.stop();

    let busy_cpu = busy.cpu_ms.expect("a process CPU clock on this platform");
    let waiting_cpu = waiting.cpu_ms.expect("a process CPU clock on this platform");
    assert!(busy.latency_ms >= 40.0 && waiting.latency_ms >= 40.0, "{busy:?} {waiting:?}");
    // A spin is CPU time (less only while another process has the core); a sleep is not.
    assert!(busy_cpu > 10.0 && busy_cpu <= busy.latency_ms + 1.0, "{busy:?}");
    assert!(waiting_cpu < 5.0, "{waiting:?}");
    assert!(busy_cpu > 2.0 * waiting_cpu, "{busy:?} {waiting:?}");
}
