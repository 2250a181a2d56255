//! The events Purser emits about accounts: detail-types and their detail.
//! Each has a JSON Schema in infra/schemas/ (a test keeps them in step).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::accounts::{Account, AccountState, rfc3339};
use crate::events::EventEntry;

pub const ACCOUNT_REQUESTED: &str = "AccountRequested";
pub const ACCOUNT_CREATION_STARTED: &str = "AccountCreationStarted";
pub const ACCOUNT_READY: &str = "AccountReady";
pub const ACCOUNT_FAILED: &str = "AccountFailed";
pub const ACCOUNT_CLOSE_REQUESTED: &str = "AccountCloseRequested";
pub const ACCOUNT_CLOSE_DEFERRED: &str = "AccountCloseDeferred";
pub const LEASE_EXPIRING: &str = "LeaseExpiring";
pub const ACCOUNT_CLOSED: &str = "AccountClosed";
/// A request (or an extension) waits for an approver.
pub const ACCOUNT_APPROVAL_REQUESTED: &str = "AccountApprovalRequested";
/// An approver, or the template's rules, said yes.
pub const ACCOUNT_APPROVED: &str = "AccountApproved";
/// An approver said no (with the reason).
pub const ACCOUNT_DENIED: &str = "AccountDenied";
/// The lease is longer: a new `lease_end`.
pub const LEASE_EXTENDED: &str = "LeaseExtended";

/// Recycling (a template with `lease_end: recycle`): the lease ended and
/// the account left its team for the pool, sign-in removed; cleaning starts.
pub const ACCOUNT_CLEANING_STARTED: &str = "AccountCleaningStarted";
/// Two clean passes in a row: the account cools until its previous
/// lease's late charges have billed.
pub const ACCOUNT_CLEANED: &str = "AccountCleaned";
/// Cooled: the account may be lent again.
pub const ACCOUNT_AVAILABLE: &str = "AccountAvailable";
/// Three cleaning runs failed: an admin must look (`purser accounts release`).
pub const ACCOUNT_QUARANTINED: &str = "AccountQuarantined";
/// An admin released a quarantined account: it cools, then is available.
pub const ACCOUNT_RELEASED: &str = "AccountReleased";
/// The pooled request ends: its account was lent to another request.
pub const ACCOUNT_RECYCLED: &str = "AccountRecycled";

/// The recycling events, in the order an account meets them.
pub const RECYCLING_EVENTS: [&str; 6] = [
    ACCOUNT_CLEANING_STARTED,
    ACCOUNT_CLEANED,
    ACCOUNT_AVAILABLE,
    ACCOUNT_QUARANTINED,
    ACCOUNT_RELEASED,
    ACCOUNT_RECYCLED,
];

/// Every account event Purser emits.
pub const ACCOUNT_EVENTS: [&str; 18] = [
    ACCOUNT_REQUESTED,
    ACCOUNT_CREATION_STARTED,
    ACCOUNT_READY,
    ACCOUNT_FAILED,
    ACCOUNT_CLOSE_REQUESTED,
    ACCOUNT_CLOSE_DEFERRED,
    LEASE_EXPIRING,
    ACCOUNT_CLOSED,
    ACCOUNT_APPROVAL_REQUESTED,
    ACCOUNT_APPROVED,
    ACCOUNT_DENIED,
    LEASE_EXTENDED,
    ACCOUNT_CLEANING_STARTED,
    ACCOUNT_CLEANED,
    ACCOUNT_AVAILABLE,
    ACCOUNT_QUARANTINED,
    ACCOUNT_RELEASED,
    ACCOUNT_RECYCLED,
];

/// Who may sign into an account changed: granted when it is ready,
/// changed when it is frozen or unfrozen, removed when it closes.
pub const ACCESS_GRANTED: &str = "AccessGranted";
pub const ACCESS_CHANGED: &str = "AccessChanged";
pub const ACCESS_REMOVED: &str = "AccessRemoved";
pub const ACCESS_EVENTS: [&str; 3] = [ACCESS_GRANTED, ACCESS_CHANGED, ACCESS_REMOVED];

pub const SCHEMA_VERSION: u32 = 1;

/// The detail of every account event: the account as it stands after the
/// transition, and why, where there is a why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountEvent {
    pub version: u32,
    pub request_id: String,
    pub state: AccountState,
    pub team: String,
    pub owner: String,
    pub purpose: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ou: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_end: Option<String>,
    /// AWS's or Purser's reason code (`EMAIL_ALREADY_EXISTS`, `CLOSURE_QUOTA`, `LEASE_ENDED`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_id: Option<String>,
    /// Who may sign in (IAM Identity Center), once the account is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<serde_json::Value>,
    /// The lease template (and its version) the account was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<crate::leases::TemplateRef>,
    /// Who approved or denied: a principal, `auto` (the template's rules)
    /// or `expiry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
    /// For an auto-approval, the rules that decided (`auto: lease_at_most 7, …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The days an extension adds (asked for, approved, denied or applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_days: Option<u32>,
    /// Its template's blueprint: the StackSet, regions, status and, when
    /// it failed, CloudFormation's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blueprint: Option<serde_json::Value>,
    pub at: String,
}

impl AccountEvent {
    pub fn of(account: &Account, at: DateTime<Utc>) -> Self {
        Self {
            version: SCHEMA_VERSION,
            request_id: account.id.clone(),
            state: account.state,
            team: account.team.to_string(),
            owner: account.owner.clone(),
            purpose: account.purpose.clone(),
            account_id: account.account_id.clone(),
            ou: account.ou.clone(),
            lease_end: account.lease_end.map(rfc3339),
            reason_code: None,
            reason: None,
            creation_id: account.creation_id.clone(),
            access: account.access.as_ref().map(crate::access::Access::to_view),
            template: account.template.clone(),
            approver: None,
            rule: None,
            extension_days: None,
            blueprint: account
                .blueprint
                .as_ref()
                .map(crate::accounts::BlueprintRun::to_view),
            at: rfc3339(at),
        }
    }

    pub fn because(mut self, code: &str, reason: &str) -> Self {
        self.reason_code = Some(code.into());
        self.reason = Some(reason.into());
        self
    }

    /// Who decided, and by which rule when the template's rules did.
    pub fn decided_by(mut self, approver: &str, rule: Option<&str>) -> Self {
        self.approver = Some(approver.into());
        self.rule = rule.map(str::to_string);
        self
    }

    /// The extension of `days` this event is about.
    pub fn extending(mut self, days: u32) -> Self {
        self.extension_days = Some(days);
        self
    }

    /// The entry for the `purser` bus.
    pub fn entry(&self, detail_type: &str) -> EventEntry {
        let detail = serde_json::to_value(self).expect("an account event serializes");
        EventEntry::purser(detail_type, &detail)
    }
}
