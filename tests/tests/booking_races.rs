//! Booking races in the domain code against the emulator directly, without the HTTP layer: one
//! slot holds one appointment under real concurrency because DynamoDB's transactions enforce
//! it, not because requests happen to queue.

use e2e::{emulator_clients, future_slot, remote_point, trace, unique_tag};
use futures::future::join_all;
use shared::ApiError;
use shared::appointments::book::{BookingReader, BookingRequest, book};
use shared::appointments::cancel::cancel;
use shared::appointments::{AppointmentId, AppointmentStore, AppointmentView, Party, When};
use shared::auth::AuthedUser;
use shared::events::{Action, Delivery, DomainEvent, EntityType, EventBridgeBus};
use shared::geo::{Cell, GeoPoint};
use shared::ids::{IdGen, RandomIds};
use shared::profiles::doctor::{DoctorProfile, DoctorStore};
use shared::profiles::patient::{PatientProfile, PatientStore};
use shared::store::DynamoStore;
use shared::users::{Role, UserId};
use time::OffsetDateTime;

const MINUTES: u32 = 30;

fn new_id() -> UserId {
    UserId::new(RandomIds.next_id())
}

fn remote_cell() -> Cell {
    let (lat, lng) = remote_point();
    GeoPoint::parse(Some(lat), Some(lng), ("latitude", "longitude")).expect("a valid point").cell()
}

/// The event a profile change publishes, as the product builds it.
fn profile_event(actor: AuthedUser, action: Action, entity: EntityType, cell: Cell) -> DomainEvent {
    let id = Some(actor.id.to_string());
    DomainEvent::new(&RandomIds, &trace(), Some(actor.into()), action, entity, id).with_cell(cell)
}

/// The table and the bus, as the functions reach them.
struct Emulator {
    store: DynamoStore,
    bus: EventBridgeBus,
}

impl Emulator {
    async fn new() -> Self {
        let (store, bus) = emulator_clients().await;
        Self { store, bus }
    }

    fn delivery(&self) -> Delivery<'_, EventBridgeBus, DynamoStore> {
        Delivery { bus: &self.bus, outbox: &self.store }
    }

    /// A bookable doctor, stored straight in the emulator.
    async fn doctor(&self) -> UserId {
        let id = new_id();
        let profile = DoctorProfile {
            user_id: id,
            username: format!("race-doctor-{}", unique_tag()),
            specialization: format!("Racing {}", unique_tag()),
            cell: remote_cell(),
            updated_at: OffsetDateTime::now_utc(),
        };
        let actor = AuthedUser { id, role: Role::Doctor };
        let event =
            profile_event(actor, Action::SetupDoctor, EntityType::DoctorProfile, profile.cell);
        let existed = self.store.put_doctor(&profile, &event).await.expect("stored");
        assert!(!existed);
        self.delivery().after_commit(event).await;
        id
    }

    /// A patient with a profile, stored straight in the emulator, as the caller it would be.
    async fn patient(&self) -> AuthedUser {
        let id = new_id();
        let profile = PatientProfile {
            user_id: id,
            username: format!("race-patient-{}", unique_tag()),
            cell: remote_cell(),
            updated_at: OffsetDateTime::now_utc(),
        };
        let caller = AuthedUser { id, role: Role::Patient };
        let event =
            profile_event(caller, Action::SetupPatient, EntityType::PatientProfile, profile.cell);
        self.store.put_patient(&profile, &event).await.expect("stored");
        self.delivery().after_commit(event).await;
        caller
    }

    async fn book(
        &self,
        caller: AuthedUser,
        doctor: UserId,
        datetime: &str,
    ) -> Result<AppointmentView, ApiError> {
        let request = BookingRequest { doctor_id: doctor.get(), datetime: datetime.to_owned() };
        let (_, parties) = self.store.account_and_parties(caller.id, Some(doctor)).await?;
        let delivery = self.delivery();
        book(&self.store, &RandomIds, &trace(), &delivery, caller, parties, request, MINUTES).await
    }

    async fn cancel(
        &self,
        caller: AuthedUser,
        id: AppointmentId,
    ) -> Result<AppointmentView, ApiError> {
        let (_, found) = self.store.account_and_appointment(caller.id, Some(id)).await?;
        cancel(&self.store, &RandomIds, &trace(), &self.delivery(), caller, found).await
    }
}

#[tokio::test]
async fn twelve_patients_racing_for_one_doctors_slot_store_exactly_one_appointment() {
    let emulator = Emulator::new().await;
    let doctor_id = emulator.doctor().await;
    let patients = join_all((0..12).map(|_| emulator.patient())).await;
    let datetime = future_slot(100);

    let results = join_all(patients.iter().map(|p| emulator.book(*p, doctor_id, &datetime))).await;

    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let conflicts = results.iter().filter(|r| matches!(r, Err(ApiError::Conflict(_)))).count();
    assert_eq!((winners.len(), conflicts), (1, 11), "{results:?}");
    let now = OffsetDateTime::now_utc();
    let stored = emulator
        .store
        .appointments_of(Party::Doctor(doctor_id), When::All, now, 100, None)
        .await
        .expect("read");
    let stored_ids: Vec<AppointmentId> = stored.items.iter().map(|a| a.id).collect();
    assert_eq!(stored_ids, vec![winners[0].id], "{:?}", stored.items);
}

#[tokio::test]
async fn one_patient_racing_for_one_slot_with_twelve_doctors_gets_exactly_one() {
    let emulator = Emulator::new().await;
    let doctors = join_all((0..12).map(|_| emulator.doctor())).await;
    let caller = emulator.patient().await;
    let datetime = future_slot(101);

    let results = join_all(doctors.iter().map(|d| emulator.book(caller, *d, &datetime))).await;

    let created = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results.iter().filter(|r| matches!(r, Err(ApiError::Conflict(_)))).count();
    assert_eq!((created, conflicts), (1, 11), "{results:?}");
    let now = OffsetDateTime::now_utc();
    let stored = emulator
        .store
        .appointments_of(Party::Patient(caller.id), When::All, now, 100, None)
        .await
        .expect("read");
    assert_eq!(stored.items.len(), 1, "{:?}", stored.items);
}

#[tokio::test]
async fn racing_cancellations_of_one_appointment_succeed_once_and_free_the_slot() {
    let emulator = Emulator::new().await;
    let doctor_id = emulator.doctor().await;
    let caller = emulator.patient().await;
    let datetime = future_slot(102);
    let booked = emulator.book(caller, doctor_id, &datetime).await.expect("booked");

    let results = join_all((0..8).map(|_| emulator.cancel(caller, booked.id))).await;

    let cancelled = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results.iter().filter(|r| matches!(r, Err(ApiError::Conflict(_)))).count();
    assert_eq!((cancelled, conflicts), (1, 7), "{results:?}");
    let other = emulator.patient().await;
    let rebooked = emulator.book(other, doctor_id, &datetime).await;
    assert!(rebooked.is_ok(), "{rebooked:?}");
}
