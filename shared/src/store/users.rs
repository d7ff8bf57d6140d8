//! User items, the two uniqueness items (email, username) that guard them, and the tally of
//! active Admins that keeps at least one of them.

use anyhow::Context;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, Select, TransactWriteItem, Update,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::keys::{
    ADMIN_TALLY_PK, ADMIN_TALLY_SK, ALL_USERS_PK, EMAIL_SK, USER_SK, USERNAME_SK, email_pk,
    user_list_prefix, user_list_sk, user_pk, username_pk, users_by_role_pk,
};
use super::{
    DynamoStore, Item, cancellation_reasons, is_contention, key, position_from_key, start_key,
};
use crate::events::DomainEvent;
use crate::pagination::{Page, Position};
use crate::users::{
    AccountUpdate, AccountWriter, AdminTally, AdminTallyReader, CreateUserError, Role, TallyChange,
    UpdateAccountError, User, UserFilter, UserId, UserLister, UserReader, UserStatus, UserWriter,
    Username,
};

/// Index of each item in the registration transaction, to read cancellation reasons by.
const USER_ITEM: usize = 0;
const EMAIL_ITEM: usize = 1;
const USERNAME_ITEM: usize = 2;
/// The tally follows the three items above when a registration moves it.
const CREATE_TALLY_ITEM: usize = 3;

#[derive(Serialize, Deserialize)]
struct UserItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    /// Absent on items stored before accounts could be listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2sk: Option<String>,
    id: u64,
    username: String,
    email: String,
    role: Role,
    status: UserStatus,
    password_hash: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// Absent on items stored before sessions had versions: version 0.
    #[serde(default)]
    token_version: u64,
}

/// Reserves a unique value (an email or a username) for one user.
#[derive(Serialize, Deserialize)]
struct ClaimItem {
    pk: String,
    sk: String,
    user_id: u64,
}

/// The number of active Admins.
#[derive(Serialize, Deserialize)]
struct TallyItem {
    pk: String,
    sk: String,
    active_admins: u64,
}

impl From<&User> for UserItem {
    fn from(user: &User) -> Self {
        let list_sk = user_list_sk(user.status, user.created_at, user.id);
        Self {
            pk: user_pk(user.id),
            sk: USER_SK.to_owned(),
            gsi1pk: users_by_role_pk(user.role),
            gsi1sk: list_sk.clone(),
            gsi2pk: Some(ALL_USERS_PK.to_owned()),
            gsi2sk: Some(list_sk),
            id: user.id.get(),
            username: user.username.clone(),
            email: user.email.clone(),
            role: user.role,
            status: user.status,
            password_hash: user.password_hash.clone(),
            created_at: user.created_at,
            token_version: user.token_version,
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
            token_version: item.token_version,
        }
    }
}

/// The user in a user item.
pub(super) fn user_from_item(item: Item) -> anyhow::Result<User> {
    let item: UserItem = serde_dynamo::from_item(item).context("Failed to read a user item")?;
    Ok(item.into())
}

/// A condition that the item's `token_version` is `version`, the placeholder `placeholder`
/// holding it; items without the attribute are at version 0.
fn version_condition(placeholder: &str, version: u64) -> String {
    if version == 0 {
        let unversioned = "attribute_not_exists(token_version)";
        format!("attribute_exists(pk) AND ({unversioned} OR token_version = {placeholder})")
    } else {
        format!("token_version = {placeholder}")
    }
}

fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

impl DynamoStore {
    /// The transaction item that moves the tally of active Admins: created from the count when
    /// none is stored (only if still absent), else added to, on the condition that a decrease
    /// leaves at least one.
    fn tally_write(&self, change: TallyChange) -> anyhow::Result<TransactWriteItem> {
        if !change.read.stored {
            let item = TallyItem {
                pk: ADMIN_TALLY_PK.to_owned(),
                sk: ADMIN_TALLY_SK.to_owned(),
                active_admins: u64::try_from(change.after()).unwrap_or(0),
            };
            return self.put_new(item);
        }
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(ADMIN_TALLY_PK.to_owned(), ADMIN_TALLY_SK)))
            .update_expression("ADD active_admins :delta")
            .expression_attribute_values(":delta", number(change.delta));
        update = if change.delta < 0 {
            update
                .condition_expression("active_admins >= :needed")
                .expression_attribute_values(":needed", number(1 - change.delta))
        } else {
            update.condition_expression("attribute_exists(pk)")
        };
        Ok(TransactWriteItem::builder().update(update.build()?).build())
    }

    /// Counts the active Admins from their items (for a tally that is not stored yet). The
    /// status is filtered, not part of the key, so that items of every layout are counted.
    async fn count_active_admins(&self) -> anyhow::Result<u64> {
        let mut count = 0;
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("gsi1")
                .key_condition_expression("gsi1pk = :pk")
                .filter_expression("#status = :active")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(
                    ":pk",
                    AttributeValue::S(users_by_role_pk(Role::Admin)),
                )
                .expression_attribute_values(":active", AttributeValue::S("active".into()))
                .select(Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .context("Failed to count the active Admins")?;
            count += u64::try_from(output.count).unwrap_or(0);
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(count);
            }
        }
    }
}

impl UserWriter for DynamoStore {
    async fn create_user(
        &self,
        user: &User,
        event: &DomainEvent,
        tally: Option<TallyChange>,
    ) -> Result<(), CreateUserError> {
        // The username was validated before it became part of `User`.
        let username_key = Username::parse(&user.username)
            .map(|u| u.unique_key())
            .map_err(|e| anyhow::anyhow!("invalid username reached the store: {}", e.message))?;
        let claim =
            |pk: String, sk: &str| ClaimItem { pk, sk: sk.to_owned(), user_id: user.id.get() };
        let mut items = vec![
            self.put_new(UserItem::from(user))?,
            self.put_new(claim(email_pk(&user.email), EMAIL_SK))?,
            self.put_new(claim(username_pk(&username_key), USERNAME_SK))?,
        ];
        if let Some(change) = tally {
            items.push(self.tally_write(change)?);
        }
        items.push(self.outbox_put(event)?);

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
        } else if failed(CREATE_TALLY_ITEM) {
            // Another write created the tally first (the outbox item, which may sit at this
            // index instead, has no condition): read it again.
            return CreateUserError::Contended;
        }
    }
    if is_contention(&error) {
        return CreateUserError::Contended;
    }
    CreateUserError::Unexpected(anyhow::Error::new(error).context("Failed to store a new user"))
}

impl AccountWriter for DynamoStore {
    async fn update_account(&self, update: &AccountUpdate<'_>) -> Result<(), UpdateAccountError> {
        let before = update.before;
        let item =
            serde_dynamo::to_item(UserItem::from(update.after)).map_err(anyhow::Error::from)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(version_condition(":seen", before.token_version))
            .expression_attribute_values(":seen", number(before.token_version))
            .build()
            .map_err(anyhow::Error::from)?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        let mut admin_item = None;
        if let Some(admin) = update.admin {
            let condition = format!(
                "#role = :admin AND #status = :active AND {}",
                version_condition(":admin_seen", admin.token_version)
            );
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key(user_pk(admin.id), USER_SK)))
                .condition_expression(condition)
                .expression_attribute_names("#role", "role")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":admin", AttributeValue::S("Admin".into()))
                .expression_attribute_values(":active", AttributeValue::S("active".into()))
                .expression_attribute_values(":admin_seen", number(admin.token_version))
                .build()
                .map_err(anyhow::Error::from)?;
            items.push(TransactWriteItem::builder().condition_check(check).build());
            admin_item = Some(items.len() - 1);
        }
        let tally_item = match update.tally {
            Some(change) => {
                items.push(self.tally_write(change)?);
                Some(items.len() - 1)
            }
            None => None,
        };
        for event in update.events {
            items.push(self.outbox_put(event)?);
        }

        let result =
            self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        let Err(error) = result else {
            return Ok(());
        };
        if let Some(codes) = cancellation_reasons(&error) {
            let failed = |i: Option<usize>| {
                i.and_then(|i| codes.get(i)).is_some_and(|c| c == "ConditionalCheckFailed")
            };
            if failed(tally_item) {
                let decrease = update.tally.is_some_and(|t| t.read.stored && t.delta < 0);
                return Err(if decrease {
                    UpdateAccountError::LastAdmin
                } else {
                    UpdateAccountError::Contended
                });
            } else if failed(admin_item) {
                return Err(UpdateAccountError::AdminRevoked);
            } else if failed(Some(0)) {
                return Err(UpdateAccountError::Changed);
            }
        }
        if is_contention(&error) {
            return Err(UpdateAccountError::Contended);
        }
        Err(anyhow::Error::new(error).context("Failed to change an account").into())
    }
}

impl AdminTallyReader for DynamoStore {
    async fn admin_tally(&self) -> anyhow::Result<AdminTally> {
        if let Some(item) = self.get(ADMIN_TALLY_PK.to_owned(), ADMIN_TALLY_SK).await? {
            let tally: TallyItem =
                serde_dynamo::from_item(item).context("Failed to read the Admin tally")?;
            return Ok(AdminTally { active: tally.active_admins, stored: true });
        }
        Ok(AdminTally { active: self.count_active_admins().await?, stored: false })
    }
}

impl UserLister for DynamoStore {
    async fn users_page(
        &self,
        filter: UserFilter,
        limit: u32,
        after: Option<Position>,
    ) -> anyhow::Result<Page<User>> {
        let (index, partition) = match filter.role {
            Some(role) => ("gsi1", users_by_role_pk(role)),
            None => ("gsi2", ALL_USERS_PK.to_owned()),
        };
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .expression_attribute_names("#pk", format!("{index}pk"))
            .expression_attribute_values(":pk", AttributeValue::S(partition))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(after.map(start_key));
        query = match filter.status {
            Some(status) => query
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :status)")
                .expression_attribute_names("#sk", format!("{index}sk"))
                .expression_attribute_values(
                    ":status",
                    AttributeValue::S(user_list_prefix(status)),
                ),
            None => query.key_condition_expression("#pk = :pk"),
        };
        let output = query.send().await.context("Failed to list users")?;
        let items = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| Ok(User::from(serde_dynamo::from_item::<_, UserItem>(item)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Page { items, next: output.last_evaluated_key.map(position_from_key) })
    }
}

impl UserReader for DynamoStore {
    async fn user_by_id(&self, id: UserId) -> anyhow::Result<Option<User>> {
        let Some(item) = self.get(user_pk(id), USER_SK).await? else {
            return Ok(None);
        };
        Ok(Some(user_from_item(item)?))
    }

    async fn account_and_user(
        &self,
        caller: UserId,
        other: Option<UserId>,
    ) -> anyhow::Result<(Option<User>, Option<User>)> {
        let own = other == Some(caller);
        let account_key = (user_pk(caller), USER_SK.to_owned());
        // A batch may not name a key twice: the caller's own account is read once.
        let other_key = other.filter(|_| !own).map(|id| (user_pk(id), USER_SK.to_owned()));
        let keys = [&account_key].into_iter().chain(other_key.as_ref());
        let mut found = self.get_many(keys, true).await?;

        let account = found.remove(&account_key).map(user_from_item).transpose()?;
        let other = match other_key {
            Some(key) => found.remove(&key).map(user_from_item).transpose()?,
            None if own => account.clone(),
            None => None,
        };
        Ok((account, other))
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
    use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
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
            token_version: 3,
        }
    }

    fn cancelled(codes: &[&str]) -> TransactWriteItemsError {
        let reasons = codes.iter().map(|code| CancellationReason::builder().code(*code).build());
        TransactWriteItemsError::TransactionCanceledException(
            TransactionCanceledException::builder()
                .set_cancellation_reasons(Some(reasons.collect()))
                .build(),
        )
    }

    fn failing_store(error: TransactWriteItemsError) -> DynamoStore {
        let rule = mock!(aws_sdk_dynamodb::Client::transact_write_items)
            .then_error(move || clone_error(&error));
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&rule]);
        DynamoStore::new(client, "clinic")
    }

    async fn create_with(error: TransactWriteItemsError) -> CreateUserError {
        failing_store(error)
            .create_user(&user(), &crate::events::any_event(), None)
            .await
            .expect_err("the mock fails the write")
    }

    /// An Admin (`admin`) demoting another (`user()` promoted), with a stored tally of 2.
    async fn demote_with(error: TransactWriteItemsError) -> UpdateAccountError {
        let admin = User { id: UserId::new(1), role: Role::Admin, ..user() };
        let before = User { role: Role::Admin, ..user() };
        let after = User { role: Role::Patient, token_version: 4, ..user() };
        let tally = TallyChange { read: AdminTally { active: 2, stored: true }, delta: -1 };
        let events = [crate::events::any_event()];
        let update = AccountUpdate {
            before: &before,
            after: &after,
            admin: Some(&admin),
            tally: Some(tally),
            events: &events,
        };
        failing_store(error).update_account(&update).await.expect_err("the mock fails the write")
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
            (&["None", "ConditionalCheckFailed", "None"][..], "email"),
            (&["None", "None", "ConditionalCheckFailed"], "username"),
            (&["ConditionalCheckFailed", "None", "None"], "id"),
            (&["None", "TransactionConflict", "None"], "contended"),
            (&["None", "None", "None", "ConditionalCheckFailed", "None"], "contended"),
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
    async fn each_account_change_cancellation_maps_to_its_cause() {
        let condition = "ConditionalCheckFailed";
        let cases = [
            (["None", "None", condition, "None"], "last admin"),
            (["None", condition, condition, "None"], "last admin"),
            (["None", condition, "None", "None"], "admin revoked"),
            ([condition, "None", "None", "None"], "changed"),
            (["TransactionConflict", "None", "None", "None"], "contended"),
        ];
        for (codes, expected) in cases {
            let got = match demote_with(cancelled(&codes)).await {
                UpdateAccountError::LastAdmin => "last admin",
                UpdateAccountError::AdminRevoked => "admin revoked",
                UpdateAccountError::Changed => "changed",
                UpdateAccountError::Contended => "contended",
                UpdateAccountError::Unexpected(_) => "unexpected",
            };
            assert_eq!(got, expected, "{codes:?}");
        }
    }

    #[test]
    fn a_version_condition_accepts_items_without_a_version_only_at_zero() {
        assert!(version_condition(":v", 0).contains("attribute_not_exists(token_version)"));
        assert_eq!(version_condition(":v", 2), "token_version = :v");
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
        let listed = AttributeValue::S("active#1970-01-01T00:00:00Z#7".into());
        assert_eq!((&item["gsi1sk"], &item["gsi2sk"]), (&listed, &listed));
        assert_eq!(item["gsi2pk"], AttributeValue::S("USERS".into()));
        let back: UserItem = serde_dynamo::from_item(item).expect("deserialise");
        assert_eq!(User::from(back), user());
    }

    #[tokio::test]
    async fn an_admin_naming_their_own_account_reads_it_once_for_both() {
        let rule = mock!(aws_sdk_dynamodb::Client::batch_get_item)
            .match_requests(|r| r.request_items().is_some_and(|i| i["clinic"].keys().len() == 1))
            .then_output(|| {
                let item = serde_dynamo::to_item(UserItem::from(&user())).expect("serialise");
                BatchGetItemOutput::builder().responses("clinic", vec![item]).build()
            });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]);
        let store = DynamoStore::new(client, "clinic");

        let id = user().id;
        let (account, other) = store.account_and_user(id, Some(id)).await.expect("read");

        assert_eq!((account, other), (Some(user()), Some(user())));
        assert_eq!(rule.num_calls(), 1);
    }
}
