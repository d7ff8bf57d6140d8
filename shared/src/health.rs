//! The health check for load balancers and uptime monitors: the version, and whether the table
//! answers a cheap read within a short time. It never reads or returns any data.

use std::future::Future;
use std::time::Duration;

use lambda_http::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

/// How long the table may take to answer before the check calls it unavailable.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Something that can tell whether the table answers.
pub trait TableProbe: Send + Sync {
    /// Reads a key that never exists: the cheapest call that reaches the table.
    fn probe(&self) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// The health check's answer.
#[derive(Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct Health {
    /// `ok`, or `unavailable` when a dependency does not answer.
    #[schema(example = "ok")]
    pub status: &'static str,
    #[schema(example = "0.1.0")]
    pub version: &'static str,
    /// `ok` or `unavailable`.
    #[schema(example = "ok")]
    pub table: &'static str,
    /// Present when something is unavailable: what.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'static str>,
}

/// Probes the table within [`PROBE_TIMEOUT`]: 200 when it answers, 503 when it fails or is late.
pub async fn check(probe: &impl TableProbe, version: &'static str) -> (StatusCode, Health) {
    check_within(probe, version, PROBE_TIMEOUT).await
}

async fn check_within(
    probe: &impl TableProbe,
    version: &'static str,
    timeout: Duration,
) -> (StatusCode, Health) {
    let answered = match tokio::time::timeout(timeout, probe.probe()).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(error.cause_chain = ?e, "health check: the table failed");
            false
        }
        Err(_) => {
            tracing::warn!(timeout_ms = timeout.as_millis(), "health check: the table is late");
            false
        }
    };
    if answered {
        let health = Health { status: "ok", version, table: "ok", detail: None };
        return (StatusCode::OK, health);
    }
    let detail = Some("The table did not answer in time. Please retry later.");
    let health = Health { status: "unavailable", version, table: "unavailable", detail };
    (StatusCode::SERVICE_UNAVAILABLE, health)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Answers(bool);

    impl TableProbe for Answers {
        async fn probe(&self) -> anyhow::Result<()> {
            if self.0 { Ok(()) } else { Err(anyhow::anyhow!("connection refused")) }
        }
    }

    struct Hangs;

    impl TableProbe for Hangs {
        async fn probe(&self) -> anyhow::Result<()> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_table_that_answers_is_ok() {
        let (status, health) = check(&Answers(true), "1.2.3").await;

        assert_eq!(status, StatusCode::OK);
        let json = serde_json::to_value(&health).expect("JSON");
        assert_eq!(json, serde_json::json!({"status": "ok", "version": "1.2.3", "table": "ok"}));
    }

    #[tokio::test]
    async fn a_failing_table_is_503() {
        let (status, health) = check(&Answers(false), "1.2.3").await;

        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!((health.status, health.table), ("unavailable", "unavailable"));
        assert!(health.detail.is_some());
    }

    #[tokio::test]
    async fn a_table_that_does_not_answer_in_time_is_503() {
        let (status, health) = check_within(&Hangs, "1.2.3", Duration::from_millis(20)).await;

        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(health.table, "unavailable");
    }
}
