//! The domain code against the emulator directly, without the HTTP layer: uniqueness holds
//! under real concurrency because DynamoDB enforces it, not because requests happen to queue.

use e2e::{PASSWORD, Person, emulator_clients, trace};
use futures::future::join_all;
use shared::events::{Delivery, EventBridgeBus};
use shared::ids::RandomIds;
use shared::store::DynamoStore;
use shared::users::register::{
    NewUser, RegisterError, RegisterRequest, RegisteredUser, Registrar, register,
};
use shared::users::{Role, UserReader};

fn new_patient(username: String, email: String) -> NewUser {
    let request =
        RegisterRequest { username, email, password: PASSWORD.to_owned(), role: Role::Patient };
    NewUser::try_from(request).expect("valid")
}

/// Registers as an anonymous caller would, through the domain code.
async fn register_patient(
    (store, bus): &(DynamoStore, EventBridgeBus),
    new_user: NewUser,
) -> Result<RegisteredUser, RegisterError> {
    let delivery = Delivery { bus, outbox: store };
    register(store, &RandomIds, &trace(), &delivery, Registrar::Caller(None), new_user).await
}

#[tokio::test]
async fn racing_registrations_of_one_email_store_exactly_one_user() {
    let clients = emulator_clients().await;
    let email = Person::new().email;

    let results = join_all((0..16).map(|_| {
        let new_user = new_patient(Person::new().username, email.clone());
        register_patient(&clients, new_user)
    }))
    .await;

    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let taken = results.iter().filter(|r| matches!(r, Err(RegisterError::EmailTaken))).count();
    assert_eq!((winners.len(), taken), (1, 15), "{results:?}");
    let stored = clients.0.user_by_email(&email).await.expect("read").expect("stored");
    assert_eq!(stored.id, winners[0].id);
}

#[tokio::test]
async fn racing_registrations_of_one_username_store_exactly_one_user() {
    let clients = emulator_clients().await;
    let username = Person::new().username;

    let results = join_all((0..16).map(|i| {
        let name = if i % 2 == 0 { username.clone() } else { username.to_uppercase() };
        register_patient(&clients, new_patient(name, Person::new().email))
    }))
    .await;

    let created = results.iter().filter(|r| r.is_ok()).count();
    let taken = results.iter().filter(|r| matches!(r, Err(RegisterError::UsernameTaken))).count();
    assert_eq!((created, taken), (1, 15), "{results:?}");
}

#[tokio::test]
async fn a_stored_user_is_found_by_id_and_by_email() {
    let clients = emulator_clients().await;
    let person = Person::new();

    let new_user = new_patient(person.username.clone(), person.email.clone());
    let created = register_patient(&clients, new_user).await.expect("stored");

    let by_id = clients.0.user_by_id(created.id).await.expect("read").expect("found");
    let by_email = clients.0.user_by_email(&person.email).await.expect("read").expect("found");
    assert_eq!(by_id, by_email);
    assert_eq!(by_id.username, person.username);
    assert!(by_id.password_hash.starts_with("$argon2id$"));
}
