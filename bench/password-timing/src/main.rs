//! Times `shared::password::hash` and `verify`, as the functions call them (on the blocking
//! thread pool, at the parameters in `shared::password::PARAMS`), and prints the times in
//! milliseconds as one JSON object. The first argument is the number of rounds (default 20).

use std::time::Instant;

use secrecy::SecretString;
use shared::password::{PARAMS, hash, verify};

const PASSWORD: &str = "correct horse battery staple";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(20);
    let (mut hash_ms, mut verify_ms) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let started = Instant::now();
        let phc = hash(SecretString::from(PASSWORD)).await?;
        hash_ms.push(started.elapsed().as_secs_f64() * 1000.0);

        let started = Instant::now();
        let matches = verify(SecretString::from(PASSWORD), Some(phc)).await?;
        verify_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(matches, "a fresh hash did not verify");
    }
    let (memory_kib, passes, lanes) = PARAMS;
    let report = serde_json::json!({
        "memory_kib": memory_kib,
        "passes": passes,
        "lanes": lanes,
        "hash_ms": hash_ms,
        "verify_ms": verify_ms,
    });
    println!("{report}");
    Ok(())
}
