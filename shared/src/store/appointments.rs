//! Appointment items (in the partition of their cell), their id pointers and slot items.

use anyhow::Context;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::keys::{
    APPOINTMENT_POINTER_SK, DOCTOR_SK, SLOT_SK, USER_SK, appointment_pointer_pk, appointment_sk,
    cell_pk, doctor_appointments_pk, doctor_slot_pk, key_time, party_sk, patient_appointments_pk,
    patient_slot_pk, user_pk,
};
use super::users::user_from_item;
use super::{DynamoStore, cancellation_reasons, is_contention, key, position_from_key, start_key};
use crate::appointments::{
    Appointment, AppointmentId, AppointmentStore, BookingConflict, CancelConflict, Party, Status,
    When,
};
use crate::events::DomainEvent;
use crate::geo::Cell;
use crate::pagination::{Page, Position};
use crate::users::{User, UserId};

/// Position of each item in the booking transaction, to read cancellation reasons by.
const DOCTOR_PROFILE: usize = 0;
const DOCTOR_SLOT: usize = 1;
const PATIENT_SLOT: usize = 2;
/// Position of the appointment in the cancellation transaction.
const APPOINTMENT: usize = 0;

#[derive(Serialize, Deserialize)]
struct AppointmentItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    gsi2pk: String,
    gsi2sk: String,
    id: u64,
    doctor_id: u64,
    patient_id: u64,
    doctor_name: String,
    patient_name: String,
    #[serde(with = "time::serde::rfc3339")]
    start: OffsetDateTime,
    duration_minutes: u32,
    status: Status,
    cell: Cell,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

/// Finds an appointment's item from its id.
#[derive(Serialize, Deserialize)]
struct PointerItem {
    pk: String,
    sk: String,
    appointment_pk: String,
    appointment_sk: String,
}

/// Holds one slot of a doctor or a patient.
#[derive(Serialize, Deserialize)]
struct SlotItem {
    pk: String,
    sk: String,
    appointment_id: u64,
}

impl From<&Appointment> for AppointmentItem {
    fn from(a: &Appointment) -> Self {
        Self {
            pk: cell_pk(a.cell),
            sk: appointment_sk(a.start, a.id),
            gsi1pk: patient_appointments_pk(a.patient_id),
            gsi1sk: party_sk(a.start, a.id),
            gsi2pk: doctor_appointments_pk(a.doctor_id),
            gsi2sk: party_sk(a.start, a.id),
            id: a.id.get(),
            doctor_id: a.doctor_id.get(),
            patient_id: a.patient_id.get(),
            doctor_name: a.doctor_name.clone(),
            patient_name: a.patient_name.clone(),
            start: a.start,
            duration_minutes: a.duration_minutes,
            status: a.status,
            cell: a.cell,
            created_at: a.created_at,
        }
    }
}

impl From<AppointmentItem> for Appointment {
    fn from(i: AppointmentItem) -> Self {
        Self {
            id: AppointmentId::new(i.id),
            doctor_id: UserId::new(i.doctor_id),
            patient_id: UserId::new(i.patient_id),
            doctor_name: i.doctor_name,
            patient_name: i.patient_name,
            start: i.start,
            duration_minutes: i.duration_minutes,
            status: i.status,
            cell: i.cell,
            created_at: i.created_at,
        }
    }
}

impl DynamoStore {
    fn delete_slot(&self, pk: String, id: AppointmentId) -> anyhow::Result<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, SLOT_SK)))
            .condition_expression("appointment_id = :id")
            .expression_attribute_values(":id", AttributeValue::N(id.to_string()))
            .build()?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }
}

impl AppointmentStore for DynamoStore {
    async fn book(&self, a: &Appointment, event: &DomainEvent) -> Result<(), BookingConflict> {
        let doctor_exists = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(a.doctor_id), DOCTOR_SK)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(anyhow::Error::from)?;
        let slot = |pk: String| SlotItem { pk, sk: SLOT_SK.to_owned(), appointment_id: a.id.get() };
        let item = AppointmentItem::from(a);
        let pointer = PointerItem {
            pk: appointment_pointer_pk(a.id),
            sk: APPOINTMENT_POINTER_SK.to_owned(),
            appointment_pk: item.pk.clone(),
            appointment_sk: item.sk.clone(),
        };
        let items = vec![
            TransactWriteItem::builder().condition_check(doctor_exists).build(),
            self.put_new(slot(doctor_slot_pk(a.doctor_id, a.start)))?,
            self.put_new(slot(patient_slot_pk(a.patient_id, a.start)))?,
            self.put_new(pointer)?,
            self.put_new(item)?,
            self.outbox_put(event)?,
        ];

        let result =
            self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        let Err(error) = result else { return Ok(()) };
        if let Some(codes) = cancellation_reasons(&error) {
            let failed = |i: usize| codes.get(i).is_some_and(|c| c == "ConditionalCheckFailed");
            if failed(DOCTOR_PROFILE) {
                return Err(BookingConflict::DoctorGone);
            } else if failed(DOCTOR_SLOT) {
                return Err(BookingConflict::DoctorBusy);
            } else if failed(PATIENT_SLOT) {
                return Err(BookingConflict::PatientBusy);
            } else if codes.iter().any(|c| c == "ConditionalCheckFailed") {
                return Err(BookingConflict::IdTaken);
            }
        }
        if is_contention(&error) {
            return Err(BookingConflict::Contended);
        }
        Err(anyhow::Error::new(error).context("Failed to book an appointment").into())
    }

    /// The account and the id's pointer in one consistent `BatchGetItem`, then the appointment
    /// the pointer names.
    async fn account_and_appointment(
        &self,
        caller: UserId,
        id: Option<AppointmentId>,
    ) -> anyhow::Result<(Option<User>, Option<Appointment>)> {
        let account = (user_pk(caller), USER_SK.to_owned());
        let pointer = id.map(|id| (appointment_pointer_pk(id), APPOINTMENT_POINTER_SK.to_owned()));
        let mut found = self.get_many([&account].into_iter().chain(pointer.as_ref()), true).await?;

        let account = found.remove(&account).map(user_from_item).transpose()?;
        let Some(pointer) = pointer.and_then(|key| found.remove(&key)) else {
            return Ok((account, None));
        };
        let pointer: PointerItem = serde_dynamo::from_item(pointer).context("Bad pointer")?;
        let Some(item) = self.get(pointer.appointment_pk, &pointer.appointment_sk).await? else {
            return Ok((account, None));
        };
        let item: AppointmentItem = serde_dynamo::from_item(item).context("Bad appointment")?;
        Ok((account, Some(item.into())))
    }

    async fn cancel(
        &self,
        a: &Appointment,
        by: UserId,
        at: OffsetDateTime,
        event: &DomainEvent,
    ) -> Result<(), CancelConflict> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(cell_pk(a.cell), &appointment_sk(a.start, a.id))))
            .update_expression("SET #status = :cancelled, cancelled_at = :at, cancelled_by = :by")
            .condition_expression("#status = :scheduled")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":cancelled", AttributeValue::S("cancelled".into()))
            .expression_attribute_values(":scheduled", AttributeValue::S("scheduled".into()))
            .expression_attribute_values(":at", AttributeValue::S(key_time(at)))
            .expression_attribute_values(":by", AttributeValue::N(by.to_string()))
            .build()
            .map_err(anyhow::Error::from)?;
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            self.delete_slot(doctor_slot_pk(a.doctor_id, a.start), a.id)?,
            self.delete_slot(patient_slot_pk(a.patient_id, a.start), a.id)?,
            self.outbox_put(event)?,
        ];

        let result =
            self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        let Err(error) = result else { return Ok(()) };
        if cancellation_reasons(&error).is_some_and(|codes| {
            codes.get(APPOINTMENT).is_some_and(|c| c == "ConditionalCheckFailed")
        }) {
            return Err(CancelConflict::NotScheduled);
        }
        if is_contention(&error) {
            return Err(CancelConflict::Contended);
        }
        Err(anyhow::Error::new(error).context("Failed to cancel an appointment").into())
    }

    async fn appointments_of(
        &self,
        party: Party,
        when: When,
        now: OffsetDateTime,
        limit: u32,
        after: Option<Position>,
    ) -> anyhow::Result<Page<Appointment>> {
        let (index, pk_name, sk_name, partition) = match party {
            Party::Patient(id) => ("gsi1", "gsi1pk", "gsi1sk", patient_appointments_pk(id)),
            Party::Doctor(id) => ("gsi2", "gsi2pk", "gsi2sk", doctor_appointments_pk(id)),
        };
        let condition = match when {
            When::All => "#pk = :pk",
            When::Upcoming => "#pk = :pk AND #sk >= :now",
            When::Past => "#pk = :pk AND #sk < :now",
        };
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression(condition)
            .expression_attribute_names("#pk", pk_name)
            .expression_attribute_values(":pk", AttributeValue::S(partition))
            .scan_index_forward(when != When::Past)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(after.map(start_key));
        if when != When::All {
            query = query
                .expression_attribute_names("#sk", sk_name)
                .expression_attribute_values(":now", AttributeValue::S(key_time(now)));
        }
        let output = query.send().await.context("Failed to list appointments")?;
        let items = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| Ok(serde_dynamo::from_item::<_, AppointmentItem>(item)?.into()))
            .collect::<anyhow::Result<Vec<Appointment>>>()?;
        Ok(Page { items, next: output.last_evaluated_key.map(position_from_key) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use time::macros::datetime;

    fn appointment() -> Appointment {
        Appointment {
            id: AppointmentId::new(9),
            doctor_id: UserId::new(2),
            patient_id: UserId::new(3),
            doctor_name: "grey".into(),
            patient_name: "alice".into(),
            start: datetime!(2030-06-01 10:00 UTC),
            duration_minutes: 30,
            status: Status::Scheduled,
            cell: "872a1072cffffff".parse().expect("cell"),
            created_at: datetime!(2030-01-01 00:00 UTC),
        }
    }

    /// A store whose every transaction is cancelled with these reason codes.
    fn cancelled_with(codes: &'static [&'static str]) -> DynamoStore {
        let rule = mock!(aws_sdk_dynamodb::Client::transact_write_items).then_error(move || {
            let reasons = codes.iter().map(|c| CancellationReason::builder().code(*c).build());
            TransactWriteItemsError::TransactionCanceledException(
                TransactionCanceledException::builder()
                    .set_cancellation_reasons(Some(reasons.collect()))
                    .build(),
            )
        });
        DynamoStore::new(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]), "clinic")
    }

    #[tokio::test]
    async fn each_booking_cancellation_reason_maps_to_its_cause() {
        const CCF: &str = "ConditionalCheckFailed";
        let cases: [(&'static [&'static str], &str); 5] = [
            (&[CCF, "None", "None", "None", "None"], "doctor gone"),
            (&["None", CCF, "None", "None", "None"], "doctor busy"),
            (&["None", "None", CCF, "None", "None"], "patient busy"),
            (&["None", "None", "None", CCF, "None"], "id taken"),
            (&["None", "TransactionConflict", "None", "None", "None"], "contended"),
        ];
        for (codes, expected) in cases {
            let got =
                match cancelled_with(codes).book(&appointment(), &crate::events::any_event()).await
                {
                    Err(BookingConflict::DoctorGone) => "doctor gone",
                    Err(BookingConflict::DoctorBusy) => "doctor busy",
                    Err(BookingConflict::PatientBusy) => "patient busy",
                    Err(BookingConflict::IdTaken) => "id taken",
                    Err(BookingConflict::Contended) => "contended",
                    other => panic!("{codes:?}: {other:?}"),
                };
            assert_eq!(got, expected, "{codes:?}");
        }
    }

    #[tokio::test]
    async fn a_cancellation_of_a_cancelled_appointment_is_not_scheduled() {
        let store = cancelled_with(&["ConditionalCheckFailed", "None", "None"]);

        let event = crate::events::any_event();
        let result =
            store.cancel(&appointment(), UserId::new(3), appointment().created_at, &event).await;

        assert!(matches!(result, Err(CancelConflict::NotScheduled)), "{result:?}");
    }

    #[test]
    fn an_appointment_item_lives_in_its_cell_and_both_party_indexes() {
        let item = AppointmentItem::from(&appointment());

        assert_eq!(item.pk, "CELL#872a1072cffffff");
        assert_eq!(item.sk, "APPT#2030-06-01T10:00:00Z#9");
        assert_eq!((item.gsi1pk.as_str(), item.gsi2pk.as_str()), ("PATIENT#3", "DOCTOR#2"));
        assert_eq!(Appointment::from(item), appointment());
    }
}
