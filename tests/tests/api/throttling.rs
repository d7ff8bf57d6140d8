//! Failed sign-ins are throttled per account (and per address: tested with the in-memory store,
//! since every request here comes from 127.0.0.1). `make test` runs the functions with a short
//! window, so a test can wait for its end.

use std::time::Duration;

use e2e::{PASSWORD, Person, Reply, TestApp, login_limits};
use futures::future::join_all;

/// `limit` wrong passwords for `email`, sent together: each is an ordinary 401.
async fn fail(app: &TestApp, email: &str, times: u32) {
    let replies = join_all((0..times).map(|_| app.login_form(email, "a wrong password!"))).await;
    for reply in replies {
        assert_eq!(reply.status, 401, "{email}: {:?}", reply.body);
    }
}

/// The seconds `Retry-After` asks to wait, asserting that the answer is a throttling 429.
fn retry_after(reply: &Reply) -> u64 {
    assert_eq!(reply.status, 429, "{:?}", reply.body);
    assert!(reply.detail().starts_with("Too many failed sign-in attempts."), "{:?}", reply.body);
    let seconds: u64 = reply.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((1..=u64::from(login_limits().window_seconds)).contains(&seconds), "{seconds}");
    seconds
}

#[tokio::test]
async fn past_the_limit_sign_ins_get_429_until_the_window_ends() {
    let app = TestApp::new();
    let email = app.register_patient().await;
    fail(&app, &email, login_limits().max_failures_per_account).await;

    let throttled = app.login_form(&email, PASSWORD).await;

    let wait = retry_after(&throttled);
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(500)).await;
    let after_the_window = app.login_form(&email, PASSWORD).await;
    assert_eq!(after_the_window.status, 200, "{:?}", after_the_window.body);
}

#[tokio::test]
async fn an_unknown_email_is_throttled_exactly_like_a_known_one() {
    let app = TestApp::new();
    let known = app.register_patient().await;
    let unknown = Person::new().email;
    let limit = login_limits().max_failures_per_account;
    join_all([fail(&app, &known, limit), fail(&app, &unknown, limit)]).await;

    let (known_reply, unknown_reply) =
        futures::join!(app.login_form(&known, PASSWORD), app.login_form(&unknown, PASSWORD));

    retry_after(&known_reply);
    retry_after(&unknown_reply);
    let without_seconds =
        |r: &Reply| r.detail().split(" in ").next().unwrap_or_default().to_owned();
    assert_eq!(without_seconds(&known_reply), without_seconds(&unknown_reply));
}

#[tokio::test]
async fn a_successful_sign_in_clears_the_accounts_failures() {
    let app = TestApp::new();
    let email = app.register_patient().await;
    let below_the_limit = login_limits().max_failures_per_account - 1;

    for _ in 0..2 {
        fail(&app, &email, below_the_limit).await;
        let reply = app.login_form(&email, PASSWORD).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
}

#[tokio::test]
async fn wrong_current_passwords_count_like_failed_sign_ins() {
    let app = TestApp::new();
    let account = app.account("Patient", None).await;
    for _ in 0..login_limits().max_failures_per_account {
        let reply =
            app.change_password(&account.token, "a wrong password!", "a new passphrase!").await;
        assert_eq!(reply.status, 403, "{:?}", reply.body);
    }

    let throttled = app.login_form(&account.person.email, PASSWORD).await;

    retry_after(&throttled);
}
