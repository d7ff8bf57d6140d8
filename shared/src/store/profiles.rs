//! Patient and doctor profile items, and the locator items that place doctors on the map.

use anyhow::Context;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use futures::future::try_join_all;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::keys::{
    ALL_DOCTORS_PK, DOCTOR_SK, PATIENT_SK, USER_SK, doctor_locator_sk, doctor_name_sk,
    doctors_by_specialization_pk, doctors_near_pk, user_pk,
};
use super::users::user_from_item;
use super::{DynamoStore, Item, position_from_key, start_key};
use crate::appointments::book::{BookingReader, Parties};
use crate::error::Contended;
use crate::events::DomainEvent;
use crate::geo::{Cell, NEARBY_PARTITION};
use crate::pagination::{Page, Position};
use crate::profiles::doctor::{DoctorProfile, DoctorStore};
use crate::profiles::patient::{PatientProfile, PatientStore};
use crate::users::{User, UserId};

/// How often a doctor's profile update is tried when other updates of it race it.
const PROFILE_ATTEMPTS: u32 = 8;

#[derive(Serialize, Deserialize)]
struct PatientItem {
    pk: String,
    sk: String,
    user_id: u64,
    username: String,
    cell: Cell,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

#[derive(Serialize, Deserialize)]
struct DoctorItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    gsi2pk: String,
    gsi2sk: String,
    user_id: u64,
    username: String,
    specialization: String,
    cell: Cell,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

/// A doctor's entry in the coarse partition around their practice.
#[derive(Serialize, Deserialize)]
struct LocatorItem {
    pk: String,
    sk: String,
    user_id: u64,
    username: String,
    specialization: String,
    cell: Cell,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<&DoctorProfile> for DoctorItem {
    fn from(p: &DoctorProfile) -> Self {
        let name_sk = doctor_name_sk(&p.username, p.user_id);
        Self {
            pk: user_pk(p.user_id),
            sk: DOCTOR_SK.to_owned(),
            gsi1pk: ALL_DOCTORS_PK.to_owned(),
            gsi1sk: name_sk.clone(),
            gsi2pk: doctors_by_specialization_pk(&p.specialization),
            gsi2sk: name_sk,
            user_id: p.user_id.get(),
            username: p.username.clone(),
            specialization: p.specialization.clone(),
            cell: p.cell,
            updated_at: p.updated_at,
        }
    }
}

impl From<&DoctorProfile> for LocatorItem {
    fn from(p: &DoctorProfile) -> Self {
        Self {
            pk: doctors_near_pk(p.cell.parent(NEARBY_PARTITION)),
            sk: doctor_locator_sk(p.cell, p.user_id),
            user_id: p.user_id.get(),
            username: p.username.clone(),
            specialization: p.specialization.clone(),
            cell: p.cell,
            updated_at: p.updated_at,
        }
    }
}

fn doctor_from(
    user_id: u64,
    username: String,
    specialization: String,
    cell: Cell,
    updated_at: OffsetDateTime,
) -> DoctorProfile {
    DoctorProfile { user_id: UserId::new(user_id), username, specialization, cell, updated_at }
}

/// The profile in a patient item.
fn patient_from_item(item: Item) -> anyhow::Result<PatientProfile> {
    let i: PatientItem = serde_dynamo::from_item(item).context("Bad patient item")?;
    Ok(PatientProfile {
        user_id: UserId::new(i.user_id),
        username: i.username,
        cell: i.cell,
        updated_at: i.updated_at,
    })
}

/// The profile in a doctor item.
fn doctor_from_item(item: Item) -> anyhow::Result<DoctorProfile> {
    let i: DoctorItem = serde_dynamo::from_item(item).context("Bad doctor item")?;
    Ok(doctor_from(i.user_id, i.username, i.specialization, i.cell, i.updated_at))
}

impl BookingReader for DynamoStore {
    /// One consistent `BatchGetItem` of the three keys, instead of three `GetItem`s.
    async fn account_and_parties(
        &self,
        caller: UserId,
        doctor: Option<UserId>,
    ) -> anyhow::Result<(Option<User>, Parties)> {
        let account = (user_pk(caller), USER_SK.to_owned());
        let patient = (user_pk(caller), PATIENT_SK.to_owned());
        let doctor = doctor.map(|id| (user_pk(id), DOCTOR_SK.to_owned()));
        let keys = [&account, &patient].into_iter().chain(doctor.as_ref());
        let mut found = self.get_many(keys, true).await?;

        let account = found.remove(&account).map(user_from_item).transpose()?;
        let parties = Parties {
            patient: found.remove(&patient).map(patient_from_item).transpose()?,
            doctor: doctor.and_then(|key| found.remove(&key)).map(doctor_from_item).transpose()?,
        };
        Ok((account, parties))
    }
}

impl PatientStore for DynamoStore {
    async fn put_patient(
        &self,
        profile: &PatientProfile,
        event: &DomainEvent,
    ) -> anyhow::Result<bool> {
        let item: super::Item = serde_dynamo::to_item(PatientItem {
            pk: user_pk(profile.user_id),
            sk: PATIENT_SK.to_owned(),
            user_id: profile.user_id.get(),
            username: profile.username.clone(),
            cell: profile.cell,
            updated_at: profile.updated_at,
        })?;
        // First as a creation; if a profile exists, as a replacement. Either way the profile
        // and its event are written together.
        for (condition, existed) in [(Some("attribute_not_exists(pk)"), false), (None, true)] {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .set_condition_expression(condition.map(str::to_owned))
                .build()?;
            let items =
                vec![TransactWriteItem::builder().put(put).build(), self.outbox_put(event)?];
            match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
                Ok(_) => return Ok(existed),
                Err(error) if condition.is_some() && super::is_cancelled(&error) => continue,
                Err(error) => {
                    return Err(anyhow::Error::new(error).context("Failed to store a patient"));
                }
            }
        }
        anyhow::bail!("a patient profile could be neither created nor replaced")
    }

    async fn patient(&self, id: UserId) -> anyhow::Result<Option<PatientProfile>> {
        self.get(user_pk(id), PATIENT_SK).await?.map(patient_from_item).transpose()
    }
}

impl DoctorStore for DynamoStore {
    async fn put_doctor(
        &self,
        profile: &DoctorProfile,
        event: &DomainEvent,
    ) -> anyhow::Result<bool> {
        for attempt in 1..=PROFILE_ATTEMPTS {
            let old = self.doctor(profile.user_id).await?;
            if self.replace_doctor(profile, old.as_ref(), event).await? {
                return Ok(old.is_some());
            }
            // Spread the retries of racing updates apart.
            let pause_ms = u64::from(attempt) * 10 + rand::random_range(0..20);
            tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
        }
        Err(anyhow::Error::new(Contended).context("a doctor profile kept changing under an update"))
    }

    async fn doctor(&self, id: UserId) -> anyhow::Result<Option<DoctorProfile>> {
        self.get(user_pk(id), DOCTOR_SK).await?.map(doctor_from_item).transpose()
    }

    async fn doctors(
        &self,
        specialization: Option<&str>,
        limit: u32,
        after: Option<Position>,
    ) -> anyhow::Result<Page<DoctorProfile>> {
        let (index, partition_key, partition) = match specialization {
            None => ("gsi1", "gsi1pk", ALL_DOCTORS_PK.to_owned()),
            Some(s) => ("gsi2", "gsi2pk", doctors_by_specialization_pk(s)),
        };
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", partition_key)
            .expression_attribute_values(":pk", AttributeValue::S(partition))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(after.map(start_key))
            .send()
            .await
            .context("Failed to list doctors")?;
        let items = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                let i: DoctorItem = serde_dynamo::from_item(item)?;
                Ok(doctor_from(i.user_id, i.username, i.specialization, i.cell, i.updated_at))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Page { items, next: output.last_evaluated_key.map(position_from_key) })
    }

    async fn doctors_in(&self, cells: &[Cell]) -> anyhow::Result<Vec<DoctorProfile>> {
        let mut partitions: Vec<Cell> = cells.iter().map(|c| c.parent(NEARBY_PARTITION)).collect();
        partitions.sort();
        partitions.dedup();
        let pages = try_join_all(partitions.into_iter().map(|p| self.locators(p))).await?;
        Ok(pages
            .into_iter()
            .flatten()
            .filter(|i| cells.contains(&i.cell))
            .map(|i| doctor_from(i.user_id, i.username, i.specialization, i.cell, i.updated_at))
            .collect())
    }
}

impl DynamoStore {
    /// Replaces a doctor's profile and moves their locator in one transaction, provided the
    /// profile is still `old`; answers `false` when another update came first.
    async fn replace_doctor(
        &self,
        profile: &DoctorProfile,
        old: Option<&DoctorProfile>,
        event: &DomainEvent,
    ) -> anyhow::Result<bool> {
        let mut put_profile = Put::builder()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(DoctorItem::from(profile))?));
        put_profile = match old {
            None => put_profile.condition_expression("attribute_not_exists(pk)"),
            Some(old) => {
                put_profile.condition_expression("updated_at = :seen").expression_attribute_values(
                    ":seen",
                    AttributeValue::S(
                        old.updated_at.format(&time::format_description::well_known::Rfc3339)?,
                    ),
                )
            }
        };
        let mut items = vec![TransactWriteItem::builder().put(put_profile.build()?).build()];
        let new_locator = LocatorItem::from(profile);
        if let Some(old) =
            old.map(LocatorItem::from).filter(|o| o.pk != new_locator.pk || o.sk != new_locator.sk)
        {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(super::key(old.pk, &old.sk)))
                .build()?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }
        let put_locator = Put::builder()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(new_locator)?))
            .build()?;
        items.push(TransactWriteItem::builder().put(put_locator).build());
        items.push(self.outbox_put(event)?);

        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(true),
            Err(error) if super::is_cancelled(&error) => Ok(false),
            Err(error) => {
                Err(anyhow::Error::new(error).context("Failed to store a doctor profile"))
            }
        }
    }

    /// Every locator under one coarse cell, following pages.
    async fn locators(&self, coarse: Cell) -> anyhow::Result<Vec<LocatorItem>> {
        let pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(doctors_near_pk(coarse)))
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await;
        pages
            .into_iter()
            .map(|item| {
                let item = item.context("Failed to read doctor locators")?;
                serde_dynamo::from_item(item).context("Bad locator item")
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
    use aws_sdk_dynamodb::types::KeysAndAttributes;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use time::macros::datetime;

    use crate::error::ApiError;
    use crate::store::key;

    const PATIENT: UserId = UserId::new(3);
    const DOCTOR: UserId = UserId::new(2);

    fn patient_item() -> super::super::Item {
        let item = PatientItem {
            pk: user_pk(PATIENT),
            sk: PATIENT_SK.into(),
            user_id: PATIENT.get(),
            username: "alice".into(),
            cell: "872a1072cffffff".parse().expect("cell"),
            updated_at: datetime!(2030-01-01 00:00 UTC),
        };
        serde_dynamo::to_item(item).expect("an item")
    }

    /// An answer that found nothing and left the patient's profile unprocessed.
    fn patient_left_unprocessed() -> BatchGetItemOutput {
        let keys = KeysAndAttributes::builder()
            .keys(key(user_pk(PATIENT), PATIENT_SK))
            .consistent_read(true)
            .build()
            .expect("keys");
        BatchGetItemOutput::builder()
            .responses("clinic", Vec::new())
            .unprocessed_keys("clinic", keys)
            .build()
    }

    #[tokio::test]
    async fn a_batch_read_asks_again_for_the_keys_left_unprocessed() {
        let first = mock!(Client::batch_get_item)
            .match_requests(|r| r.request_items().is_some_and(|i| i["clinic"].keys().len() == 3))
            .then_output(patient_left_unprocessed);
        let again = mock!(Client::batch_get_item)
            .match_requests(|r| {
                let keys = r.request_items().map(|i| i["clinic"].keys().to_vec());
                keys == Some(vec![key(user_pk(PATIENT), PATIENT_SK)])
            })
            .then_output(|| {
                BatchGetItemOutput::builder().responses("clinic", vec![patient_item()]).build()
            });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&first, &again]);
        let store = DynamoStore::new(client, "clinic");

        let (account, parties) =
            store.account_and_parties(PATIENT, Some(DOCTOR)).await.expect("read");

        assert!(account.is_none());
        assert_eq!(
            parties.patient.map(|p| (p.user_id, p.username)),
            Some((PATIENT, "alice".into()))
        );
        assert!(parties.doctor.is_none());
        assert_eq!((first.num_calls(), again.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn keys_left_unprocessed_at_every_attempt_answer_busy() {
        let rule = mock!(Client::batch_get_item)
            .sequence()
            .output(patient_left_unprocessed)
            .repeatedly()
            .build();
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]);
        let store = DynamoStore::new(client, "clinic");

        let error = store.account_and_parties(PATIENT, None).await.expect_err("unprocessed");

        assert!(matches!(ApiError::from(error), ApiError::Busy));
        assert_eq!(rule.num_calls(), super::super::BATCH_ATTEMPTS as usize);
    }
}
