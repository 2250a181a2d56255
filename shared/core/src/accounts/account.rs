//! Developer accounts: the request a developer makes, its lifecycle, and
//! the rules its fields follow.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::accounts::TeamName;
use crate::validation::{ValidationError, invalid};

/// Where an account is in its life.
///
/// `requested → creating → ready → (frozen ⇄ ready) → closing → closed`,
/// with `failed` from `requested` or `creating`, and `closed` straight from
/// `requested` when a request is withdrawn before creation starts. A
/// request whose template asks for approval starts `pending_approval`:
/// approved it becomes `requested` (and goes on as any request); denied,
/// withdrawn or expired it is `closed`.
///
/// Recycling (a template with `lease_end: recycle`): at lease end a ready
/// or frozen account goes `cleaning → cooling → available`, or
/// `quarantined` when cleaning keeps failing (`cooling` again once an
/// admin released it). A request of the template may be served by an
/// `available` account: it goes `requested → ready` with that account,
/// and the pooled request is `closed` (its account lent again). Pooled
/// accounts (cleaning to available, quarantined) belong to no team: they
/// count against no quota and no budget, and close only through the
/// reaper (above the template's `pool_size`) or an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    PendingApproval,
    Requested,
    Creating,
    Ready,
    Frozen,
    Closing,
    Closed,
    Failed,
    Cleaning,
    Cooling,
    Available,
    Quarantined,
}

impl AccountState {
    pub const ALL: [AccountState; 12] = [
        Self::PendingApproval,
        Self::Requested,
        Self::Creating,
        Self::Ready,
        Self::Frozen,
        Self::Closing,
        Self::Closed,
        Self::Failed,
        Self::Cleaning,
        Self::Cooling,
        Self::Available,
        Self::Quarantined,
    ];

    /// The states of a template's pool, in the order they come.
    pub const POOL: [AccountState; 4] = [
        Self::Cleaning,
        Self::Cooling,
        Self::Available,
        Self::Quarantined,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingApproval => "pending_approval",
            Self::Requested => "requested",
            Self::Creating => "creating",
            Self::Ready => "ready",
            Self::Frozen => "frozen",
            Self::Closing => "closing",
            Self::Closed => "closed",
            Self::Failed => "failed",
            Self::Cleaning => "cleaning",
            Self::Cooling => "cooling",
            Self::Available => "available",
            Self::Quarantined => "quarantined",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the lifecycle allows going from `self` to `next`.
    pub fn can_become(self, next: AccountState) -> bool {
        use AccountState::*;
        matches!(
            (self, next),
            (PendingApproval, Requested)
                | (PendingApproval, Closed)
                | (Requested, Creating)
                | (Requested, Failed)
                | (Requested, Closed)
                | (Creating, Ready)
                | (Creating, Failed)
                | (Ready, Frozen)
                | (Frozen, Ready)
                | (Ready, Closing)
                | (Frozen, Closing)
                | (Closing, Closed)
                // Recycling.
                | (Ready, Cleaning)
                | (Frozen, Cleaning)
                | (Cleaning, Cooling)
                | (Cleaning, Quarantined)
                | (Quarantined, Cooling)
                | (Cooling, Available)
                // Lent again: the pooled request ends, a request takes it.
                | (Available, Closed)
                | (Requested, Ready)
                // Closed by the reaper (above the pool's size) or an admin.
                | (Cooling, Closing)
                | (Available, Closing)
                | (Quarantined, Closing)
        )
    }

    /// An account in a template's pool: cleaning, cooling, available or
    /// quarantined; it belongs to no team.
    pub fn is_pooled(self) -> bool {
        Self::POOL.contains(&self)
    }

    /// Open accounts count against the team's quota: a request pending
    /// approval too, so approving one never takes a team over its quota.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Self::PendingApproval | Self::Requested | Self::Creating | Self::Ready | Self::Frozen
        )
    }

    /// An account being created holds one of the organization's (at most
    /// five) concurrent creations.
    pub fn holds_creation_slot(self) -> bool {
        self == Self::Creating
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Closed | Self::Failed)
    }
}

impl std::fmt::Display for AccountState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A developer's account: the request and, once created, the account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub state: AccountState,
    pub team: TeamName,
    pub owner: String,
    pub purpose: String,
    pub lease_end: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub account_id: Option<String>,
    /// The root email of the AWS account: the owner's address, tagged.
    pub email: String,
    pub ou: Option<String>,
    pub failure_reason: Option<String>,
    /// Organizations' `CreateAccountRequestId`, once creation started.
    pub creation_id: Option<String>,
    pub creation_started_at: Option<DateTime<Utc>>,
    /// How many `CreateAccount`s were made for it (passing failures are retried).
    #[serde(default)]
    pub creation_attempts: u32,
    /// When Purser called `CloseAccount` (counts against the closure quota).
    pub closure_started_at: Option<DateTime<Utc>>,
    /// Who asked for the account (an IAM principal ARN).
    pub requested_by: String,
    /// The account's revision: 0 when requested, one more at every stored
    /// change. A write applies only over the revision it was made from, so
    /// two handlers that read the same revision cannot both act on it (one
    /// `CreateAccount`, not two). Stored accounts from before it read as 0.
    #[serde(default)]
    pub version: u64,
    /// The events that announce the last change, until they are on the bus
    /// (see `events::announce`): stored with the change, so a retried
    /// delivery that finds the change made still announces them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub announcing: Vec<crate::events::Announcement>,
    /// Who may sign into the account, through IAM Identity Center.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<crate::access::Access>,
    /// What happened to it, oldest first: its request and every change
    /// announced since (the last [`TIMELINE_LEN`]), so a page can show an
    /// account's story without reading the bus's archive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<Moment>,
    /// The template (name and version) the account was made from: the
    /// account keeps that version, whatever the template becomes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<crate::leases::TemplateRef>,
    /// The lease in days, extensions included (`None`: no lease).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_days: Option<u32>,
    /// The last approval decision on its request or an extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<crate::leases::Decision>,
    /// An extension beyond the template's maximum, waiting for an approver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_extension: Option<crate::leases::PendingExtension>,
    /// Why a frozen account is frozen: its team's budget, its own (its
    /// template's per-account budget), or both; each budget lifts only its
    /// own cause, and the account is unfrozen when none is left. Empty on
    /// an account that is not frozen, and on one frozen before per-account
    /// budgets (which only a team's budget froze: read as `[team]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frozen_by: Vec<FreezeCause>,
    /// Its template's blueprint: deploying while the account is
    /// `creating`, then how it went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blueprint: Option<crate::accounts::BlueprintRun>,
    /// Its way through its template's pool, once its lease ended under a
    /// template that recycles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recycling: Option<crate::recycling::Recycling>,
    /// The pooled request whose account this request was lent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recycled_from: Option<String>,
}

/// What froze an account (see `Account::frozen_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreezeCause {
    /// The team's budget demands a freeze of every account of the team.
    Team,
    /// The account's own budget (its template version's) demands it.
    Account,
    /// A runaway rule froze it; it stays frozen until an admin releases it.
    Runaway,
}

impl FreezeCause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Team => "team",
            Self::Account => "account",
            Self::Runaway => "runaway",
        }
    }
}

/// How many moments an account's timeline keeps.
pub const TIMELINE_LEN: usize = 30;

/// One moment of an account's timeline: an event it announced, when, and
/// the state it left the account in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moment {
    pub at: DateTime<Utc>,
    pub event: String,
    pub state: AccountState,
}

/// Maximum length of `purpose`.
pub const MAX_PURPOSE: usize = 128;
/// Organizations accepts account emails of 6 to 64 characters.
pub const MAX_ACCOUNT_EMAIL: usize = 64;
/// Organizations accepts account names of 1 to 50 characters.
pub const MAX_ACCOUNT_NAME: usize = 50;

impl Account {
    /// A new request, validated: `id` must be fresh (see [`new_id`]).
    pub fn request(
        id: String,
        input: NewAccount,
        requested_by: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationError> {
        let email = tagged_email(&input.owner, &short_id(&id))?;
        Ok(Self {
            state: AccountState::Requested,
            team: input.team,
            owner: input.owner,
            purpose: input.purpose,
            lease_end: input.lease_days.map(|d| now + Duration::days(i64::from(d))),
            created_at: now,
            updated_at: now,
            account_id: None,
            email,
            ou: None,
            failure_reason: None,
            creation_id: None,
            creation_started_at: None,
            creation_attempts: 0,
            closure_started_at: None,
            requested_by: requested_by.into(),
            version: 0,
            announcing: Vec::new(),
            access: None,
            timeline: vec![Moment {
                at: now,
                event: crate::events::catalog::ACCOUNT_REQUESTED.to_string(),
                state: AccountState::Requested,
            }],
            template: None,
            lease_days: input.lease_days,
            decision: None,
            pending_extension: None,
            frozen_by: Vec::new(),
            blueprint: None,
            recycling: None,
            recycled_from: None,
            id,
        })
    }

    /// Adds `event` to the timeline, at the account's last change, keeping
    /// the last [`TIMELINE_LEN`].
    pub fn remember(&mut self, event: &str) {
        self.timeline.push(Moment {
            at: self.updated_at,
            event: event.to_string(),
            state: self.state,
        });
        let excess = self.timeline.len().saturating_sub(TIMELINE_LEN);
        self.timeline.drain(..excess);
    }

    /// The next revision of this account, to change and then write with
    /// `AccountStore::transition`: the write applies only if the stored
    /// account is still at this revision.
    pub fn next_revision(&self) -> Self {
        Self {
            version: self.version.saturating_add(1),
            ..self.clone()
        }
    }

    /// Why the account stands frozen, in order (empty unless frozen): what
    /// `frozen_by` records, and a team's freeze for an account frozen
    /// before causes were recorded.
    pub fn freeze_causes(&self) -> Vec<FreezeCause> {
        if self.state != AccountState::Frozen {
            return Vec::new();
        }
        let mut causes = self.frozen_by.clone();
        if causes.is_empty() {
            causes.push(FreezeCause::Team);
        }
        causes.sort_unstable();
        causes.dedup();
        causes
    }

    /// The stored revision a write of this account applies over (`None`
    /// for a revision 0, which only `insert_account` writes).
    pub fn base_version(&self) -> Option<u64> {
        self.version.checked_sub(1)
    }

    /// The account's name in Organizations: team and purpose, printable
    /// ASCII, at most 50 characters.
    pub fn account_name(&self) -> String {
        let text = format!("{}-{}", self.team, self.purpose);
        let clean: String = text
            .chars()
            .map(|c| if (' '..='~').contains(&c) { c } else { '-' })
            .take(MAX_ACCOUNT_NAME)
            .collect();
        clean.trim().to_string()
    }

    /// The tags Purser puts on the account.
    pub fn tags(&self) -> Vec<(String, String)> {
        let mut tags = vec![
            ("purser:team".to_string(), self.team.to_string()),
            ("purser:owner".to_string(), self.owner.clone()),
            ("purser:request".to_string(), self.id.clone()),
        ];
        if let Some(end) = self.lease_end {
            tags.push((
                "purser:lease-end".to_string(),
                end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ));
        }
        tags
    }

    /// The account as the API shows it.
    pub fn to_view(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "state": self.state,
            "team": self.team,
            "owner": self.owner,
            "purpose": self.purpose,
            "account_id": self.account_id,
            "email": self.email,
            "ou": self.ou,
            "lease_end": self.lease_end.map(rfc3339),
            "frozen_by": self.freeze_causes().iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "failure_reason": self.failure_reason,
            "access": self.access.as_ref().map(crate::access::Access::to_view),
            "template": self.template.as_ref().map(crate::leases::TemplateRef::to_view),
            "lease_days": self.lease_days,
            "decision": self.decision.as_ref().map(crate::leases::Decision::to_view),
            "pending_extension": self.pending_extension.as_ref().map(crate::leases::PendingExtension::to_view),
            "blueprint": self.blueprint.as_ref().map(crate::accounts::BlueprintRun::to_view),
            "recycling": self.recycling.as_ref().map(crate::recycling::Recycling::to_view),
            "recycled_from": self.recycled_from,
            "timeline": self.timeline.iter().map(|m| serde_json::json!({
                "at": rfc3339(m.at), "event": m.event, "state": m.state,
            })).collect::<Vec<_>>(),
        })
    }
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A fresh request id: `r-` and 12 hex digits.
pub fn new_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("r-{}", &hex[..12])
}

/// The part of the id that tags the account's email.
pub fn short_id(id: &str) -> String {
    id.trim_start_matches("r-").to_string()
}

/// What a developer asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAccount {
    pub team: TeamName,
    pub owner: String,
    pub purpose: String,
    pub lease_days: Option<u32>,
    /// The lease template asked for (else the team's default, if any).
    pub template: Option<crate::leases::TemplateName>,
}

impl NewAccount {
    /// Validates a request body, naming the field that is wrong.
    pub fn from_json(body: &Value) -> Result<Self, ValidationError> {
        let Some(fields) = body.as_object() else {
            return Err(invalid(None, "the body must be a JSON object"));
        };
        reject_unknown(
            fields,
            &["team", "owner", "purpose", "lease_days", "template"],
        )?;
        let team = TeamName::parse(required_str(fields, "team")?)
            .map_err(|m| invalid(Some("team"), &m))?;
        let owner = required_str(fields, "owner")?;
        validate_email(owner).map_err(|m| invalid(Some("owner"), &m))?;
        let purpose = required_str(fields, "purpose")?.trim();
        if purpose.is_empty() {
            return Err(invalid(Some("purpose"), "purpose must not be empty"));
        }
        if purpose.chars().count() > MAX_PURPOSE {
            return Err(invalid(
                Some("purpose"),
                &format!("purpose must be at most {MAX_PURPOSE} characters"),
            ));
        }
        if purpose.chars().any(char::is_control) {
            return Err(invalid(
                Some("purpose"),
                "purpose must not contain control characters",
            ));
        }
        let lease_days = match fields.get("lease_days") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .filter(|d| (1..=365).contains(d))
                    .ok_or_else(|| {
                        invalid(
                            Some("lease_days"),
                            "lease_days must be a whole number of days from 1 to 365",
                        )
                    })? as u32,
            ),
        };
        let template = match fields.get("template") {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) => Some(
                crate::leases::TemplateName::parse(t).map_err(|m| invalid(Some("template"), &m))?,
            ),
            Some(_) => return Err(invalid(Some("template"), "template must be a string")),
        };
        // The tagged email must fit Organizations' limit: check now, before
        // anything is written.
        tagged_email(owner, &"0".repeat(12))?;
        Ok(Self {
            team,
            owner: owner.to_string(),
            purpose: purpose.to_string(),
            lease_days,
            template,
        })
    }
}

pub fn reject_unknown(fields: &Map<String, Value>, known: &[&str]) -> Result<(), ValidationError> {
    match fields.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(invalid(
            Some(unknown),
            &format!(
                "unknown field {unknown:?}; the fields are {}",
                known.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

pub fn required_str<'a>(
    fields: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a str, ValidationError> {
    match fields.get(name) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(invalid(Some(name), &format!("{name} is required"))),
        Some(_) => Err(invalid(Some(name), &format!("{name} must be a string"))),
    }
}

/// An email address as RFC 5321 allows it in a mailbox (dot-atom local
/// part, DNS domain), within the limits AWS puts on account emails.
pub fn validate_email(address: &str) -> Result<(), String> {
    let (local, domain) = address
        .rsplit_once('@')
        .ok_or_else(|| format!("{address:?} is not an email address (no @)"))?;
    if local.is_empty() || local.len() > 64 {
        return Err("the part before @ must be 1 to 64 characters".into());
    }
    const ATEXT: &str = "!#$%&'*+-/=?^_`{|}~";
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(
            "the part before @ must not start or end with a dot or have two in a row".into(),
        );
    }
    if let Some(c) = local
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || ATEXT.contains(*c)))
    {
        return Err(format!("{c:?} is not allowed before the @"));
    }
    if domain.len() > 253 || !domain.contains('.') {
        return Err(format!("{domain:?} is not a valid mail domain"));
    }
    for label in domain.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(format!("{domain:?} is not a valid mail domain"));
        }
    }
    if address.len() < 6 {
        return Err("an account email must be at least 6 characters".into());
    }
    Ok(())
}

/// The owner's address with `+purser-<id>` added to the local part, so each
/// account gets its own root email that still reaches the owner. Shortens
/// the owner's local part when needed to stay within 64 characters.
pub fn tagged_email(owner: &str, short_id: &str) -> Result<String, ValidationError> {
    let (local, domain) = owner
        .rsplit_once('@')
        .ok_or_else(|| invalid(Some("owner"), "owner must be an email address"))?;
    // Drop an existing sub-address: one tag is enough to route mail.
    let base = local.split('+').next().unwrap_or(local);
    let tag = format!("+purser-{short_id}");
    let room = MAX_ACCOUNT_EMAIL.saturating_sub(tag.len() + 1 + domain.len());
    if room == 0 {
        return Err(invalid(
            Some("owner"),
            &format!(
                "the address is too long: AWS account emails are at most {MAX_ACCOUNT_EMAIL} characters and Purser adds {tag:?}"
            ),
        ));
    }
    let kept: String = base.chars().take(room).collect();
    let kept = kept.trim_end_matches('.');
    let email = format!("{kept}{tag}@{domain}");
    validate_email(&email).map_err(|m| invalid(Some("owner"), &m))?;
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_lifecycle_allows_only_its_transitions() {
        use AccountState::*;
        assert!(Requested.can_become(Creating));
        assert!(Creating.can_become(Ready));
        assert!(Ready.can_become(Closing));
        assert!(Closing.can_become(Closed));
        assert!(!Ready.can_become(Creating));
        assert!(!Closed.can_become(Ready));
        assert!(!Failed.can_become(Ready));
        assert!(!Creating.can_become(Closing));
        for s in AccountState::ALL {
            assert!(!s.can_become(s), "{s} -> {s} is not a transition");
            assert_eq!(AccountState::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn requests_validate_each_field_by_name() {
        let ok = json!({"team": "payments", "owner": "ana@example.com", "purpose": "load tests", "lease_days": 30});
        let req = NewAccount::from_json(&ok).unwrap();
        assert_eq!(req.lease_days, Some(30));
        let field = |body: Value| NewAccount::from_json(&body).unwrap_err().field;
        assert_eq!(
            field(json!({"team": "Payments!", "owner": "a@b.co", "purpose": "x"})),
            Some("team".into())
        );
        assert_eq!(
            field(json!({"team": "pay", "owner": "not-an-email", "purpose": "x"})),
            Some("owner".into())
        );
        assert_eq!(
            field(json!({"team": "pay", "owner": "a@b.co", "purpose": "  "})),
            Some("purpose".into())
        );
        assert_eq!(
            field(json!({"team": "pay", "owner": "a@b.co", "purpose": "x".repeat(129)})),
            Some("purpose".into())
        );
        assert_eq!(
            field(json!({"team": "pay", "owner": "a@b.co", "purpose": "x", "lease_days": 0})),
            Some("lease_days".into())
        );
        assert_eq!(
            field(json!({"team": "pay", "owner": "a@b.co", "purpose": "x", "lease_days": 366})),
            Some("lease_days".into())
        );
        assert_eq!(
            field(json!({"team": "pay", "owner": "a@b.co", "purpose": "x", "lease_days": "7"})),
            Some("lease_days".into())
        );
        assert_eq!(
            field(json!({"team": "pay", "owner": "a@b.co", "purpose": "x", "colour": "red"})),
            Some("colour".into())
        );
        assert_eq!(
            field(json!({"owner": "a@b.co", "purpose": "x"})),
            Some("team".into())
        );
        assert_eq!(field(json!([1])), None);
    }

    #[test]
    fn emails_are_tagged_within_64_characters() {
        assert_eq!(
            tagged_email("ana@example.com", "0123456789ab").unwrap(),
            "ana+purser-0123456789ab@example.com"
        );
        assert_eq!(
            tagged_email("ana+ci@example.com", "0123456789ab").unwrap(),
            "ana+purser-0123456789ab@example.com"
        );
        let long = format!("{}@example.com", "a".repeat(60));
        let tagged = tagged_email(&long, "0123456789ab").unwrap();
        assert_eq!(tagged.len(), 64);
        assert!(tagged.ends_with("+purser-0123456789ab@example.com"));
        let dotted = format!("{}.b@example.com", "a".repeat(31));
        let tagged = tagged_email(&dotted, "0123456789ab").unwrap();
        assert!(!tagged.contains(".+"), "{tagged}");
        let huge_domain = format!("a@{}.com", "d".repeat(50));
        assert_eq!(
            tagged_email(&huge_domain, "0123456789ab")
                .unwrap_err()
                .field
                .as_deref(),
            Some("owner")
        );
    }

    #[test]
    fn email_validation_follows_rfc_5321_mailboxes() {
        assert!(validate_email("first.last@sub.example.com").is_ok());
        assert!(validate_email("o'hara+x@example.io").is_ok());
        for bad in [
            "@example.com",
            "a@",
            "a@b",
            "a..b@example.com",
            ".a@example.com",
            "a b@example.com",
            "a@-x.com",
            "a@x_y.com",
            "a@b.c",
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn account_names_fit_organizations() {
        let now = Utc::now();
        let input = NewAccount {
            team: TeamName::parse("payments").unwrap(),
            owner: "ana@example.com".into(),
            purpose: "a very long purpose that goes on and on — with unicode".into(),
            lease_days: Some(3),
            template: None,
        };
        let account = Account::request(new_id(), input, "arn:aws:iam::1:user/ana", now).unwrap();
        let name = account.account_name();
        assert!(
            name.len() <= 50 && name.starts_with("payments-a very"),
            "{name}"
        );
        assert!(name.chars().all(|c| (' '..='~').contains(&c)));
        assert_eq!(account.tags().len(), 4);
        assert_eq!(account.lease_end, Some(now + Duration::days(3)));
    }
}
