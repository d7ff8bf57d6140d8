//! User items and the two uniqueness items (email, username) that guard them.

use anyhow::Context;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::keys::{
    EMAIL_SK, USER_SK, USERNAME_SK, email_pk, user_pk, username_pk, users_by_role_pk,
};
use super::{DynamoStore, cancellation_reasons, is_contention};
use crate::events::DomainEvent;
use crate::users::{
    CreateUserError, Role, User, UserId, UserReader, UserStatus, UserWriter, Username,
};

/// Index of each item in the registration transaction, to read cancellation reasons by.
const USER_ITEM: usize = 0;
const EMAIL_ITEM: usize = 1;
const USERNAME_ITEM: usize = 2;

#[derive(Serialize, Deserialize)]
struct UserItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    id: u64,
    username: String,
    email: String,
    role: Role,
    status: UserStatus,
    password_hash: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

/// Reserves a unique value (an email or a username) for one user.
#[derive(Serialize, Deserialize)]
struct ClaimItem {
    pk: String,
    sk: String,
    user_id: u64,
}

impl From<&User> for UserItem {
    fn from(user: &User) -> Self {
        Self {
            pk: user_pk(user.id),
            sk: USER_SK.to_owned(),
            gsi1pk: users_by_role_pk(user.role),
            gsi1sk: format!("{}#{}", user.created_at.unix_timestamp(), user.id),
            id: user.id.get(),
            username: user.username.clone(),
            email: user.email.clone(),
            role: user.role,
            status: user.status,
            password_hash: user.password_hash.clone(),
            created_at: user.created_at,
        }
    }
}

impl From<UserItem> for User {
    fn from(item: UserItem) -> Self {
        Self {
            id: UserId::new(item.id),
            username: item.username,
            email: item.email,
            role: item.role,
            status: item.status,
            password_hash: item.password_hash,
            created_at: item.created_at,
        }
    }
}

impl UserWriter for DynamoStore {
    async fn create_user(&self, user: &User, event: &DomainEvent) -> Result<(), CreateUserError> {
        // The username was validated before it became part of `User`.
        let username_key = Username::parse(&user.username)
            .map(|u| u.unique_key())
            .map_err(|e| anyhow::anyhow!("invalid username reached the store: {}", e.message))?;
        let claim =
            |pk: String, sk: &str| ClaimItem { pk, sk: sk.to_owned(), user_id: user.id.get() };
        let items = vec![
            self.put_new(UserItem::from(user))?,
            self.put_new(claim(email_pk(&user.email), EMAIL_SK))?,
            self.put_new(claim(username_pk(&username_key), USERNAME_SK))?,
            self.outbox_put(event)?,
        ];

        let result =
            self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => Err(classify_create_error(error)),
        }
    }
}

/// Maps a failed registration transaction to what the domain needs to decide.
fn classify_create_error(error: SdkError<TransactWriteItemsError>) -> CreateUserError {
    if let Some(codes) = cancellation_reasons(&error) {
        let failed = |i: usize| codes.get(i).is_some_and(|c| c == "ConditionalCheckFailed");
        if failed(EMAIL_ITEM) {
            return CreateUserError::EmailTaken;
        } else if failed(USERNAME_ITEM) {
            return CreateUserError::UsernameTaken;
        } else if failed(USER_ITEM) {
            return CreateUserError::IdTaken;
        }
    }
    if is_contention(&error) {
        return CreateUserError::Contended;
    }
    CreateUserError::Unexpected(anyhow::Error::new(error).context("Failed to store a new user"))
}

impl UserReader for DynamoStore {
    async fn user_by_id(&self, id: UserId) -> anyhow::Result<Option<User>> {
        let Some(item) = self.get(user_pk(id), USER_SK).await? else {
            return Ok(None);
        };
        let item: UserItem = serde_dynamo::from_item(item).context("Failed to read a user item")?;
        Ok(Some(item.into()))
    }

    async fn user_by_email(&self, email: &str) -> anyhow::Result<Option<User>> {
        let Some(item) = self.get(email_pk(email), EMAIL_SK).await? else {
            return Ok(None);
        };
        let claim: ClaimItem =
            serde_dynamo::from_item(item).context("Failed to read an email item")?;
        self.user_by_id(UserId::new(claim.user_id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn user() -> User {
        User {
            id: UserId::new(7),
            username: "Alice".into(),
            email: "alice@example.com".into(),
            role: Role::Patient,
            status: UserStatus::Active,
            password_hash: "$argon2id$...".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn cancelled(codes: [&str; 3]) -> TransactWriteItemsError {
        let reasons = codes.iter().map(|code| CancellationReason::builder().code(*code).build());
        TransactWriteItemsError::TransactionCanceledException(
            TransactionCanceledException::builder()
                .set_cancellation_reasons(Some(reasons.collect()))
                .build(),
        )
    }

    async fn create_with(error: TransactWriteItemsError) -> CreateUserError {
        let rule = mock!(aws_sdk_dynamodb::Client::transact_write_items)
            .then_error(move || clone_error(&error));
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&rule]);
        let store = DynamoStore::new(client, "clinic");
        store
            .create_user(&user(), &crate::events::any_event())
            .await
            .expect_err("the mock fails the write")
    }

    fn clone_error(error: &TransactWriteItemsError) -> TransactWriteItemsError {
        match error {
            TransactWriteItemsError::TransactionCanceledException(e) => {
                TransactWriteItemsError::TransactionCanceledException(e.clone())
            }
            TransactWriteItemsError::ThrottlingException(e) => {
                TransactWriteItemsError::ThrottlingException(e.clone())
            }
            _ => unreachable!("only the variants above are used"),
        }
    }

    #[tokio::test]
    async fn each_cancellation_reason_maps_to_its_cause() {
        let cases = [
            (["None", "ConditionalCheckFailed", "None"], "email"),
            (["None", "None", "ConditionalCheckFailed"], "username"),
            (["ConditionalCheckFailed", "None", "None"], "id"),
            (["None", "TransactionConflict", "None"], "contended"),
        ];
        for (codes, expected) in cases {
            let got = match create_with(cancelled(codes)).await {
                CreateUserError::EmailTaken => "email",
                CreateUserError::UsernameTaken => "username",
                CreateUserError::IdTaken => "id",
                CreateUserError::Contended => "contended",
                CreateUserError::Unexpected(_) => "unexpected",
            };
            assert_eq!(got, expected, "{codes:?}");
        }
    }

    #[tokio::test]
    async fn throttling_is_contention_not_a_failure() {
        let throttled = TransactWriteItemsError::ThrottlingException(
            aws_sdk_dynamodb::types::error::ThrottlingException::builder().build(),
        );

        assert!(matches!(create_with(throttled).await, CreateUserError::Contended));
    }

    #[test]
    fn user_items_round_trip_without_losing_fields() {
        let item = serde_dynamo::to_item::<_, super::super::Item>(UserItem::from(&user()))
            .expect("serialise");

        assert_eq!(item["pk"], AttributeValue::S("USER#7".into()));
        assert_eq!(item["gsi1pk"], AttributeValue::S("USERS#Patient".into()));
        let back: UserItem = serde_dynamo::from_item(item).expect("deserialise");
        assert_eq!(User::from(back), user());
    }
}
