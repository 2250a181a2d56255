//! Announcing a change exactly when it is stored.
//!
//! A handler stores a change, then puts the event that announces it. If the
//! put fails, the delivery is retried, but the retry finds the change made
//! and, without more, would announce nothing: the event is lost. So:
//!
//! - an account's change carries its event: the transition writes it into
//!   the account (`Account::announcing`, one conditional write with the
//!   change), the event goes on the bus, and a second write clears it. A
//!   handler that reads an account still holding one puts it first
//!   (`announce_pending`). Clearing is best effort: if it fails after the
//!   put, a later retry repeats the event (at least once), never loses it.
//! - a claim that stands for an announcement (a threshold crossed, a lease
//!   expiring) is given back when the put fails (`announce_once`), so the
//!   retry claims and announces instead of finding it claimed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::accounts::{Account, AccountState};
use crate::events::{AccountEvent, EventEntry};
use crate::ports::AccountStore;
use crate::ports::{BusError, EventBus, Marker, Markers, StoreError, Transitioned};

/// An account event a stored change has not yet put on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Announcement {
    pub detail_type: String,
    pub event: AccountEvent,
}

#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
}

impl Announcement {
    pub fn of(detail_type: &str, event: AccountEvent) -> Self {
        Self {
            detail_type: detail_type.to_string(),
            event,
        }
    }
}

/// Stores `next`, a revision of an account in state `from`, holding the
/// event that announces it, then announces it. Returns how the write went
/// and the account as it now stands when it applied (its revision moves
/// again once the event is cleared).
pub async fn transition_announced(
    accounts: &dyn AccountStore,
    bus: &dyn EventBus,
    from: AccountState,
    next: Account,
    detail_type: &str,
    event: AccountEvent,
) -> Result<(Transitioned, Account), AnnounceError> {
    let events = vec![Announcement::of(detail_type, event)];
    transition_announcing(accounts, bus, from, next, events).await
}

/// `transition_announced` with several events (at most 10, one `PutEvents`).
pub async fn transition_announcing(
    accounts: &dyn AccountStore,
    bus: &dyn EventBus,
    from: AccountState,
    mut next: Account,
    events: Vec<Announcement>,
) -> Result<(Transitioned, Account), AnnounceError> {
    for event in &events {
        next.remember(&event.detail_type);
    }
    next.announcing = events;
    match accounts.transition(from, &next).await? {
        Transitioned::Applied => {
            let announced = announce_pending(accounts, bus, next).await?;
            Ok((Transitioned::Applied, announced))
        }
        other => Ok((other, next)),
    }
}

/// Puts the event `account` still holds, if any, then clears it from the
/// account; returns the account as it then stands.
pub async fn announce_pending(
    accounts: &dyn AccountStore,
    bus: &dyn EventBus,
    account: Account,
) -> Result<Account, AnnounceError> {
    if account.announcing.is_empty() {
        return Ok(account);
    }
    for pending in &account.announcing {
        tracing::info!(
            request_id = %account.id,
            team = %account.team,
            account_id = account.account_id.as_deref().unwrap_or(""),
            state = %account.state,
            detail_type = %pending.detail_type,
            "account event"
        );
    }
    let entries = account
        .announcing
        .iter()
        .map(|p| p.event.entry(&p.detail_type))
        .collect();
    bus.put(entries).await?;
    let mut cleared = account.next_revision();
    cleared.announcing = Vec::new();
    match accounts.transition(account.state, &cleared).await {
        Ok(Transitioned::Applied) => Ok(cleared),
        // Another change came first: it replaced the event with its own or
        // carried it on, and a later read puts it again.
        Ok(_) => Ok(account),
        Err(e) => {
            tracing::warn!(request_id = %account.id, error = %e,
                "the event is out but could not be cleared from the account; a retry may repeat it");
            Ok(account)
        }
    }
}

/// Claims `marker` until `expires_at` and, on the first claim, puts
/// `entries`: `true` when they were put now. If the put fails the claim is
/// given back (best effort), so that the retry announces them.
pub async fn announce_once(
    markers: &dyn Markers,
    bus: &dyn EventBus,
    marker: &Marker,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    entries: Vec<EventEntry>,
) -> Result<bool, AnnounceError> {
    if !markers.claim_once(marker, now, expires_at).await? {
        return Ok(false);
    }
    if let Err(e) = bus.put(entries).await {
        if let Err(forget) = markers.release(marker).await {
            tracing::warn!(marker = %marker, error = %forget,
                "the announcement failed and its claim could not be given back; it is lost until the claim expires");
        }
        return Err(e.into());
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::accounts::{NewAccount, TeamName};
    use crate::budgets::ACCOUNT_FROZEN;
    use crate::fakes::{FakeAccounts, FakeBus, FakeMarkers, locked};

    fn ready() -> Account {
        let now = Utc.with_ymd_and_hms(2026, 11, 18, 12, 0, 0).unwrap();
        let input = NewAccount {
            team: TeamName::parse("payments").unwrap(),
            owner: "ana@example.com".into(),
            purpose: "tests".into(),
            lease_days: None,
            template: None,
        };
        let mut a = Account::request(
            "r-0123456789ab".into(),
            input,
            "arn:aws:iam::1:user/ana",
            now,
        )
        .unwrap();
        a.state = AccountState::Ready;
        a
    }

    #[tokio::test]
    async fn a_change_whose_event_failed_is_announced_by_the_retry_once() {
        let (accounts, bus) = (FakeAccounts::default(), FakeBus::default());
        let account = ready();
        accounts.add(account.clone());
        let mut frozen = account.next_revision();
        frozen.state = AccountState::Frozen;
        let event = AccountEvent::of(&frozen, frozen.updated_at);

        *locked(&bus.refuse) = 1;
        let failed = transition_announced(
            &accounts,
            &bus,
            AccountState::Ready,
            frozen.clone(),
            ACCOUNT_FROZEN,
            event,
        )
        .await;
        assert!(matches!(failed, Err(AnnounceError::Bus(_))));
        // The change is stored with its event; the retry finds it there.
        let stored = accounts.get(&account.id).unwrap();
        assert_eq!(stored.state, AccountState::Frozen);
        assert_eq!(stored.announcing.len(), 1);
        assert!(bus.of(ACCOUNT_FROZEN).is_empty());

        let after = announce_pending(&accounts, &bus, stored).await.unwrap();
        assert_eq!(bus.of(ACCOUNT_FROZEN).len(), 1);
        assert!(after.announcing.is_empty());
        assert_eq!(accounts.get(&account.id).unwrap(), after);
        // Read again, nothing is pending: nothing is put twice.
        announce_pending(&accounts, &bus, after).await.unwrap();
        assert_eq!(bus.of(ACCOUNT_FROZEN).len(), 1);
    }

    #[tokio::test]
    async fn a_claim_whose_announcement_failed_is_given_back() {
        let (markers, bus) = (FakeMarkers::default(), FakeBus::default());
        let now = Utc.with_ymd_and_hms(2026, 11, 18, 12, 0, 0).unwrap();
        let marker = Marker::LeaseExpiring {
            request_id: "r-1".into(),
        };
        let entry = || vec![AccountEvent::of(&ready(), now).entry("LeaseExpiring")];
        *locked(&bus.refuse) = 1;
        let until = now + chrono::Duration::days(1);
        assert!(
            announce_once(&markers, &bus, &marker, now, until, entry())
                .await
                .is_err()
        );
        assert!(
            announce_once(&markers, &bus, &marker, now, until, entry())
                .await
                .unwrap()
        );
        assert!(
            !announce_once(&markers, &bus, &marker, now, until, entry())
                .await
                .unwrap()
        );
        assert_eq!(bus.of("LeaseExpiring").len(), 1);
    }
}
