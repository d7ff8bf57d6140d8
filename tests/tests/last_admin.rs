//! The last active Admin can be neither demoted nor disabled, even when two Admins demote each
//! other at the same moment: real HTTP requests, racing on 16 instances.
//!
//! The rule counts every active Admin of the table, and the other tests create many. So each
//! test here first disables every active Admin but its own. That is why these tests are a test
//! binary of their own: cargo runs test binaries one after another, so no other test holds an
//! Admin token meanwhile; and the tests of this binary take turns (`TABLE`).

use std::collections::HashSet;

use e2e::{Account, TestApp};
use serde_json::json;
use tokio::sync::Mutex;

/// Held by a test while it needs to be the only one with active Admins.
static TABLE: Mutex<()> = Mutex::const_new(());

/// The ids of every active Admin.
async fn active_admins(app: &TestApp, admin_token: &str) -> HashSet<u64> {
    let pages = app.all_pages("/users?role=Admin&status=active&limit=100", admin_token).await;
    pages
        .iter()
        .flat_map(|page| page.body.as_array().cloned().unwrap_or_default())
        .map(|user| user["id"].as_u64().expect("an id"))
        .collect()
}

/// Disables every active Admin except `keep`, with the first one's token (one at a time: each
/// change moves the same tally).
async fn only_these_admins(app: &TestApp, keep: &[&Account]) {
    let token = &keep[0].token;
    let kept: HashSet<u64> = keep.iter().map(|a| a.id).collect();
    let others = active_admins(app, token).await.into_iter().filter(|id| !kept.contains(id));
    for id in others {
        let reply = app.update_user(token, id, json!({"status": "disabled"})).await;
        assert_eq!(reply.status, 200, "disabling Admin {id}: {:?}", reply.body);
    }
    assert_eq!(active_admins(app, token).await, kept);
}

#[tokio::test]
async fn the_last_active_admin_can_be_neither_demoted_nor_disabled() {
    let _table = TABLE.lock().await;
    let app = TestApp::new();
    let first = app.admin_account().await;
    only_these_admins(&app, &[&first]).await;

    for change in [json!({"role": "Doctor"}), json!({"status": "disabled"})] {
        let reply = app.update_user(&first.token, first.id, change.clone()).await;
        assert_eq!(reply.status, 409, "{change}: {:?}", reply.body);
        assert!(reply.detail().contains("no active Admin"), "{:?}", reply.body);
    }

    let second = app.admin_account().await;
    let demoted = app.update_user(&first.token, second.id, json!({"role": "Patient"})).await;
    assert_eq!(demoted.status, 200, "{:?}", demoted.body);
    let own = app.update_user(&first.token, first.id, json!({"role": "Patient"})).await;
    assert_eq!(own.status, 409, "{:?}", own.body);
    let promoted = app.update_user(&first.token, second.id, json!({"role": "Admin"})).await;
    assert_eq!(promoted.status, 200, "{:?}", promoted.body);
    let own = app.update_user(&first.token, first.id, json!({"status": "disabled"})).await;
    assert_eq!(own.status, 200, "another Admin is active again: {:?}", own.body);
    assert_eq!(app.get("/users", Some(&first.token)).await.status, 401);
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_exactly_one() {
    let _table = TABLE.lock().await;
    let app = TestApp::new();

    for round in 0..5 {
        let (ann, bob) = (app.admin_account().await, app.admin_account().await);
        only_these_admins(&app, &[&ann, &bob]).await;

        let demote = json!({"role": "Patient"});
        let (ann_demotes_bob, bob_demotes_ann) = futures::join!(
            app.update_user(&ann.token, bob.id, demote.clone()),
            app.update_user(&bob.token, ann.id, demote.clone()),
        );

        let statuses = [ann_demotes_bob.status, bob_demotes_ann.status];
        let winners = statuses.iter().filter(|s| **s == 200).count();
        assert_eq!(winners, 1, "round {round}: {ann_demotes_bob:?} {bob_demotes_ann:?}");
        let loser = statuses.iter().find(|s| **s != 200).expect("a loser");
        assert!(matches!(loser, 401 | 409), "round {round}: {statuses:?}");
        let winner = if ann_demotes_bob.status == 200 { &ann } else { &bob };
        assert_eq!(active_admins(&app, &winner.token).await, HashSet::from([winner.id]));
    }
}
