//! How Purser's records are laid out as items of the single table: keys,
//! index attributes, and the conversions between items and domain types.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use purser_core::budgets::Budget;
use purser_core::ports::{
    DEPLOYMENTS_KEPT, DeploymentMark, DeploymentSource, FunctionSpend, HourlySpend,
};
use purser_core::{Account, StoreError, Team, TeamName, TeamNotify};

/// One item, as the SDK reads and writes it.
pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) const PK: &str = "pk";
pub(super) const SK: &str = "sk";
pub(super) const EXPIRES_AT: &str = "expires_at";

pub(super) const ACCOUNT_PREFIX: &str = "ACCOUNT#";
pub(super) const ACCOUNT_SK: &str = "ACCOUNT";
/// The whole [`Account`] as JSON: one attribute reads back exactly what was
/// written, whatever fields the account gains.
pub(super) const DATA: &str = "data";
/// The account's state on its own, for the conditions of transitions.
pub(super) const STATE: &str = "state";
/// A team's notification settings, as JSON.
pub(super) const NOTIFY: &str = "notify";
/// A team's default template and approvers, as JSON.
pub(super) const LEASES: &str = "leases";
/// The account's revision, which every transition's condition checks.
pub(super) const VERSION: &str = "version";
/// When `CloseAccount` was called, [`sortable`], for `closures_since`.
pub(super) const CLOSURE_STARTED_AT: &str = "closure_started_at";

pub(super) const TEAM_PREFIX: &str = "TEAM#";
pub(super) const TEAM_SK: &str = "TEAM";
/// The partition of every team's listing copy (sort key `TEAM#<team>`), so
/// listing the teams is one `Query`, never a `Scan` of the table.
pub(super) const TEAMS_PK: &str = "TEAMS";
pub(super) const COUNTERS_SK: &str = "COUNTERS";
/// A team's open accounts, on its `COUNTERS` item.
pub(super) const OPEN: &str = "open";
const NAME: &str = "name";
const QUOTA: &str = "quota";
const MEMBERS: &str = "members";
/// Sort key of a team's budget, in the team's partition.
pub(super) const BUDGET_SK: &str = "BUDGET";
/// The budget's revision on its own, for the condition of the next change.
pub(super) const REVISION: &str = "revision";
/// Sort key prefix of a team's settled spend of a month (`SETTLED#YYYY-MM`).
pub(super) const SETTLED_PREFIX: &str = "SETTLED#";
/// When a settlement was made (epoch milliseconds), for its condition.
pub(super) const SETTLED_AT: &str = "settled_at";

pub(super) const ORG_PK: &str = "ORG";
pub(super) const CREATIONS_SK: &str = "CREATIONS";
/// The organization's `CreateAccount`s in flight, on `ORG`/`CREATIONS`.
pub(super) const IN_FLIGHT: &str = "in_flight";

pub(super) const REQUEST_KEY_PREFIX: &str = "IDEMPOTENCY#";
pub(super) const REQUEST_KEY_SK: &str = "REQUEST";
pub(super) const FINGERPRINT: &str = "fingerprint";
/// The id of the account a request's idempotency key created.
pub(super) const KEY_ACCOUNT: &str = "account";

/// Sort key of event claims (`claim_once`, `record_spend_once`); their
/// partition key is `IDEMPOTENCY#<key>`.
pub(super) const CLAIM_SK: &str = "IDEMPOTENCY";

pub(super) const SPEND_TEAM_PREFIX: &str = "SPEND#TEAM#";
pub(super) const SPEND_ACCOUNT_PREFIX: &str = "SPEND#ACCOUNT#";
/// Sort keys of spend counters: `DAY#YYYY-MM-DD`, which sorts as days do.
pub(super) const DAY_PREFIX: &str = "DAY#";
/// A counter's spend, in nano-units of the currency.
pub(super) const NANOS: &str = "nanos";
/// The team of an account's counter, when Purser knows the account.
pub(super) const SPEND_TEAM: &str = "team";
/// Partition prefix of a team's function counters of a month
/// (`SPEND#FUNCTION#<team>#<YYYY-MM>`).
pub(super) const SPEND_FUNCTION_PREFIX: &str = "SPEND#FUNCTION#";
/// Sort key prefix of a function counter (`FUNCTION#<account id>#<name>`).
pub(super) const FUNCTION_PREFIX: &str = "FUNCTION#";
/// The account of a function counter or deployment mark.
pub(super) const ACCOUNT_ID: &str = "account_id";
/// The function of a function counter, as reported.
pub(super) const FUNCTION: &str = "function";

/// Partition prefix of a team's deployment marks (`DEPLOYMENTS#<team>`);
/// their sort key is `<at>#<id>`, `at` in [`sortable_nanos`].
pub(super) const DEPLOYMENTS_PREFIX: &str = "DEPLOYMENTS#";
/// The team of a deployment mark.
pub(super) const MARK_TEAM: &str = "team";
pub(super) const STACK: &str = "stack";
pub(super) const STATUS: &str = "status";
pub(super) const SOURCE: &str = "source";
pub(super) const AT: &str = "at";
pub(super) const MARK_ID: &str = "id";

pub(super) const MARKER_PREFIX: &str = "MARKER#";
pub(super) const MARKER_SK: &str = "MARKER";
/// What `remember` keeps, on a marker item.
pub(super) const VALUE: &str = "value";

/// The global secondary indexes, with their key attributes (all strings,
/// all projecting every attribute).
pub(super) struct Index {
    pub name: &'static str,
    pub hash: &'static str,
    pub range: Option<&'static str>,
}

/// A team's accounts by creation time: `TEAM#<team>`, `<created_at>#<id>`.
pub(super) const BY_TEAM: Index = Index {
    name: "by-team",
    hash: "gsi1pk",
    range: Some("gsi1sk"),
};
/// Accounts by state, by creation time: `STATE#<state>`, `<created_at>#<id>`.
pub(super) const BY_STATE: Index = Index {
    name: "by-state",
    hash: "gsi2pk",
    range: Some("gsi2sk"),
};
/// An account by its `CreateAccountRequestId`: `CREATION#<id>`.
pub(super) const BY_CREATION: Index = Index {
    name: "by-creation",
    hash: "gsi3pk",
    range: None,
};
/// An account by its AWS account id: `AWSACCOUNT#<account id>`.
pub(super) const BY_ACCOUNT_ID: Index = Index {
    name: "by-account-id",
    hash: "gsi4pk",
    range: None,
};

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A time as text that sorts as the time does: RFC 3339 in UTC with a
/// fixed six fractional digits (`2025-01-31T09:30:00.000000Z`).
pub(super) fn sortable(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// As [`sortable`], to the nanosecond (nine fractional digits): a
/// deployment mark's time reads back exactly as it was written.
pub(super) fn sortable_nanos(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub(super) fn account_key(id: &str) -> Item {
    HashMap::from([
        (PK.to_owned(), s(format!("{ACCOUNT_PREFIX}{id}"))),
        (SK.to_owned(), s(ACCOUNT_SK)),
    ])
}

pub(super) fn team_key(team: &TeamName) -> Item {
    HashMap::from([
        (PK.to_owned(), s(format!("{TEAM_PREFIX}{team}"))),
        (SK.to_owned(), s(TEAM_SK)),
    ])
}

/// The key of the team's copy in the listing partition.
pub(super) fn team_listing_key(team: &TeamName) -> Item {
    HashMap::from([
        (PK.to_owned(), s(TEAMS_PK)),
        (SK.to_owned(), s(team_partition(team))),
    ])
}

pub(super) fn counters_key(team: &TeamName) -> Item {
    HashMap::from([
        (PK.to_owned(), s(format!("{TEAM_PREFIX}{team}"))),
        (SK.to_owned(), s(COUNTERS_SK)),
    ])
}

pub(super) fn budget_key(team: &TeamName) -> Item {
    HashMap::from([
        (PK.to_owned(), s(team_partition(team))),
        (SK.to_owned(), s(BUDGET_SK)),
    ])
}

pub(super) fn creations_key() -> Item {
    HashMap::from([(PK.to_owned(), s(ORG_PK)), (SK.to_owned(), s(CREATIONS_SK))])
}

pub(super) fn request_key(storage_key: &str) -> Item {
    HashMap::from([
        (
            PK.to_owned(),
            s(format!("{REQUEST_KEY_PREFIX}{storage_key}")),
        ),
        (SK.to_owned(), s(REQUEST_KEY_SK)),
    ])
}

pub(super) fn claim_key(key: &str) -> Item {
    HashMap::from([
        (PK.to_owned(), s(format!("{REQUEST_KEY_PREFIX}{key}"))),
        (SK.to_owned(), s(CLAIM_SK)),
    ])
}

pub(super) fn marker_key(key: &str) -> Item {
    HashMap::from([
        (PK.to_owned(), s(format!("{MARKER_PREFIX}{key}"))),
        (SK.to_owned(), s(MARKER_SK)),
    ])
}

/// `DAY#YYYY-MM-DD`: four-digit years, so the text sorts as the days do.
pub(super) fn day_sort_key(day: NaiveDate) -> String {
    format!("{DAY_PREFIX}{}", day.format("%Y-%m-%d"))
}

pub(super) fn team_spend_key(team: &TeamName, day: NaiveDate) -> Item {
    HashMap::from([
        (PK.to_owned(), s(format!("{SPEND_TEAM_PREFIX}{team}"))),
        (SK.to_owned(), s(day_sort_key(day))),
    ])
}

pub(super) fn account_spend_key(account_id: &str, day: NaiveDate) -> Item {
    HashMap::from([
        (
            PK.to_owned(),
            s(format!("{SPEND_ACCOUNT_PREFIX}{account_id}")),
        ),
        (SK.to_owned(), s(day_sort_key(day))),
    ])
}

/// The partition of an account's hourly counters.
pub(super) const SPEND_HOURLY_PREFIX: &str = "SPEND#HOURLY#";
/// Sort keys of hourly counters: `HOUR#YYYY-MM-DDTHH#<resource>` (an empty
/// resource: the account's own), which sort by hour, then resource.
pub(super) const HOUR_PREFIX: &str = "HOUR#";
/// An hourly counter's hour (`YYYY-MM-DDTHH`) and resource, which reads take.
pub(super) const HOUR: &str = "hour";
pub(super) const RESOURCE: &str = "resource";

pub(super) fn hour_text(hour: DateTime<Utc>) -> String {
    hour.format("%Y-%m-%dT%H").to_string()
}

pub(super) fn hourly_spend_partition(account_id: &str) -> String {
    format!("{SPEND_HOURLY_PREFIX}{account_id}")
}

pub(super) fn hourly_spend_key(
    account_id: &str,
    hour: DateTime<Utc>,
    resource: Option<&str>,
) -> Item {
    HashMap::from([
        (PK.to_owned(), s(hourly_spend_partition(account_id))),
        (
            SK.to_owned(),
            s(format!(
                "{HOUR_PREFIX}{}#{}",
                hour_text(hour),
                resource.unwrap_or_default()
            )),
        ),
    ])
}

/// The sort keys from the first counter of `from` to the last of `to`:
/// `$` sorts right after `#`, so `HOUR#<to>$` follows every resource of `to`.
pub(super) fn hourly_sort_range(from: DateTime<Utc>, to: DateTime<Utc>) -> (String, String) {
    (
        format!("{HOUR_PREFIX}{}#", hour_text(from)),
        format!("{HOUR_PREFIX}{}$", hour_text(to)),
    )
}

/// An hourly counter read back.
pub(super) fn hourly_spend_from_item(item: &Item) -> Result<HourlySpend, StoreError> {
    let text = string(item, HOUR)?;
    let hour = chrono::NaiveDateTime::parse_from_str(&format!("{text}:00"), "%Y-%m-%dT%H:%M")
        .map_err(|e| StoreError::Corrupt(format!("hourly spend counter with hour {text:?}: {e}")))?
        .and_utc();
    let resource = string(item, RESOURCE)?;
    Ok(HourlySpend {
        hour,
        resource: (!resource.is_empty()).then(|| resource.to_owned()),
        nanos: number(item, NANOS)?,
    })
}

/// The partition of a team's function counters of `period` (`YYYY-MM`).
pub(super) fn function_spend_partition(team: &TeamName, period: &str) -> String {
    format!("{SPEND_FUNCTION_PREFIX}{team}#{period}")
}

/// A function counter's key. The account id and the name are attributes
/// too, which is what reads take: the key is never parsed.
pub(super) fn function_spend_key(
    team: &TeamName,
    period: &str,
    account_id: &str,
    function: &str,
) -> Item {
    HashMap::from([
        (PK.to_owned(), s(function_spend_partition(team, period))),
        (
            SK.to_owned(),
            s(format!("{FUNCTION_PREFIX}{account_id}#{function}")),
        ),
    ])
}

/// A function counter read back.
pub(super) fn function_spend_from_item(item: &Item) -> Result<FunctionSpend, StoreError> {
    Ok(FunctionSpend {
        account_id: string(item, ACCOUNT_ID)?.to_owned(),
        function: string(item, FUNCTION)?.to_owned(),
        nanos: number(item, NANOS)?,
    })
}

pub(super) fn deployments_partition(team: &TeamName) -> String {
    format!("{DEPLOYMENTS_PREFIX}{team}")
}

/// A deployment mark's item, with its TTL: `DEPLOYMENTS_KEPT` after its
/// `at`, so every write of one mark writes the same item.
pub(super) fn deployment_item(mark: &DeploymentMark) -> Item {
    HashMap::from([
        (PK.to_owned(), s(deployments_partition(&mark.team))),
        (
            SK.to_owned(),
            s(format!("{}#{}", sortable_nanos(mark.at), mark.id)),
        ),
        (MARK_TEAM.to_owned(), s(mark.team.as_str())),
        (AT.to_owned(), s(sortable_nanos(mark.at))),
        (MARK_ID.to_owned(), s(&mark.id)),
        (ACCOUNT_ID.to_owned(), s(&mark.account_id)),
        (STACK.to_owned(), s(&mark.stack)),
        (STATUS.to_owned(), s(&mark.status)),
        (SOURCE.to_owned(), s(mark.source.as_str())),
        (
            EXPIRES_AT.to_owned(),
            n((mark.at + DEPLOYMENTS_KEPT).timestamp()),
        ),
    ])
}

pub(super) fn deployment_from_item(item: &Item) -> Result<DeploymentMark, StoreError> {
    let corrupt = |what: String| {
        StoreError::Corrupt(format!("deployment item {}: {what}", describe_key(item)))
    };
    let at = string(item, AT)?;
    let source = string(item, SOURCE)?;
    Ok(DeploymentMark {
        team: TeamName::parse(string(item, MARK_TEAM)?).map_err(corrupt)?,
        account_id: string(item, ACCOUNT_ID)?.to_owned(),
        at: DateTime::parse_from_rfc3339(at)
            .map_err(|e| corrupt(format!("at {at:?}: {e}")))?
            .to_utc(),
        stack: string(item, STACK)?.to_owned(),
        status: string(item, STATUS)?.to_owned(),
        source: DeploymentSource::parse(source)
            .ok_or_else(|| corrupt(format!("source {source:?}")))?,
        id: string(item, MARK_ID)?.to_owned(),
    })
}

/// A spend counter read back: its day and its nanos.
pub(super) fn spend_from_item(item: &Item) -> Result<(NaiveDate, i64), StoreError> {
    let sk = string(item, SK)?;
    let day = sk
        .strip_prefix(DAY_PREFIX)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .ok_or_else(|| {
            StoreError::Corrupt(format!(
                "item {} is not a spend counter of a day",
                describe_key(item)
            ))
        })?;
    Ok((day, number(item, NANOS)?))
}

/// Whether a claim or marker still stands at `now`: the negation of
/// `CLAIM_CONDITION`, in the same whole seconds. An item without an expiry
/// never expires, as that condition treats it.
pub(super) fn unexpired(item: &Item, now: DateTime<Utc>) -> Result<bool, StoreError> {
    if !item.contains_key(EXPIRES_AT) {
        return Ok(true);
    }
    Ok(number(item, EXPIRES_AT)? >= now.timestamp())
}

pub(super) fn state_partition(state: purser_core::AccountState) -> String {
    format!("STATE#{state}")
}

pub(super) fn team_partition(team: &TeamName) -> String {
    format!("{TEAM_PREFIX}{team}")
}

pub(super) fn creation_partition(creation_id: &str) -> String {
    format!("CREATION#{creation_id}")
}

pub(super) fn account_id_partition(account_id: &str) -> String {
    format!("AWSACCOUNT#{account_id}")
}

/// The account's item: the account itself, its state, and the keys of the
/// indexes it belongs to (the sparse ones only once their value is known).
pub(super) fn account_item(account: &Account) -> Result<Item, StoreError> {
    let data = serde_json::to_string(account).map_err(|e| {
        StoreError::Corrupt(format!("account {} cannot be written: {e}", account.id))
    })?;
    let ordered = format!("{}#{}", sortable(account.created_at), account.id);
    let mut item = account_key(&account.id);
    item.insert(DATA.to_owned(), s(data));
    item.insert(STATE.to_owned(), s(account.state.as_str()));
    item.insert(VERSION.to_owned(), n(account.version));
    item.insert(BY_TEAM.hash.to_owned(), s(team_partition(&account.team)));
    item.insert(BY_TEAM.range.unwrap_or_default().to_owned(), s(&ordered));
    item.insert(BY_STATE.hash.to_owned(), s(state_partition(account.state)));
    item.insert(BY_STATE.range.unwrap_or_default().to_owned(), s(ordered));
    if let Some(creation_id) = &account.creation_id {
        item.insert(
            BY_CREATION.hash.to_owned(),
            s(creation_partition(creation_id)),
        );
    }
    if let Some(account_id) = &account.account_id {
        item.insert(
            BY_ACCOUNT_ID.hash.to_owned(),
            s(account_id_partition(account_id)),
        );
    }
    if let Some(at) = account.closure_started_at {
        item.insert(CLOSURE_STARTED_AT.to_owned(), s(sortable(at)));
    }
    Ok(item)
}

pub(super) fn account_from_item(item: &Item) -> Result<Account, StoreError> {
    let data = string(item, DATA)?;
    serde_json::from_str(data).map_err(|e| {
        StoreError::Corrupt(format!(
            "item {} holds no account Purser can read: {e}",
            describe_key(item)
        ))
    })
}

pub(super) fn team_item(team: &Team) -> Result<Item, StoreError> {
    let mut item = team_key(&team.name);
    item.insert(NAME.to_owned(), s(team.name.as_str()));
    item.insert(QUOTA.to_owned(), n(team.quota));
    item.insert(
        MEMBERS.to_owned(),
        AttributeValue::L(team.members.iter().map(s).collect()),
    );
    let notify = serde_json::to_string(&team.notify)
        .map_err(|e| StoreError::Corrupt(format!("team {}: {e}", team.name)))?;
    item.insert(NOTIFY.to_owned(), s(notify));
    let leases = serde_json::to_string(&team.leases)
        .map_err(|e| StoreError::Corrupt(format!("team {}: {e}", team.name)))?;
    item.insert(LEASES.to_owned(), s(leases));
    Ok(item)
}

/// The team's copy in the listing partition: the team's attributes under
/// [`team_listing_key`], written in one transaction with the team's item.
pub(super) fn team_listing_item(team: &Team) -> Result<Item, StoreError> {
    let mut item = team_item(team)?;
    item.extend(team_listing_key(&team.name));
    Ok(item)
}

pub(super) fn team_from_item(item: &Item) -> Result<Team, StoreError> {
    let corrupt =
        |what: &str| StoreError::Corrupt(format!("team item {}: {what}", describe_key(item)));
    let name = TeamName::parse(string(item, NAME)?).map_err(|e| corrupt(&e))?;
    let quota = number(item, QUOTA)?;
    let quota = u32::try_from(quota).map_err(|_| corrupt(&format!("quota {quota}")))?;
    let members = match item.get(MEMBERS) {
        None => Vec::new(),
        Some(AttributeValue::L(values)) => values
            .iter()
            .map(|v| match v {
                AttributeValue::S(member) => Ok(member.clone()),
                other => Err(corrupt(&format!(
                    "a member that is not a string: {other:?}"
                ))),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(corrupt(&format!("members is not a list: {other:?}"))),
    };
    // Teams stored before notification settings have none.
    let notify = match item.get(NOTIFY) {
        None => TeamNotify::default(),
        Some(AttributeValue::S(json)) => serde_json::from_str(json)
            .map_err(|e| corrupt(&format!("notification settings: {e}")))?,
        Some(other) => return Err(corrupt(&format!("notify is not a string: {other:?}"))),
    };
    // Teams stored before lease templates have no default nor approvers.
    let leases = match item.get(LEASES) {
        None => Default::default(),
        Some(AttributeValue::S(json)) => {
            serde_json::from_str(json).map_err(|e| corrupt(&format!("lease settings: {e}")))?
        }
        Some(other) => return Err(corrupt(&format!("leases is not a string: {other:?}"))),
    };
    Ok(Team {
        name,
        quota,
        members,
        notify,
        leases,
    })
}

/// The budget's item: the budget itself as JSON, and its revision.
pub(super) fn budget_item(budget: &Budget) -> Result<Item, StoreError> {
    let data = serde_json::to_string(budget).map_err(|e| {
        StoreError::Corrupt(format!(
            "the budget of team {} cannot be written: {e}",
            budget.team
        ))
    })?;
    let mut item = budget_key(&budget.team);
    item.insert(REVISION.to_owned(), n(budget.revision));
    item.insert(DATA.to_owned(), s(data));
    Ok(item)
}

/// A budget read back, checked against its item: the team of its key and
/// the revision its condition compares.
pub(super) fn budget_from_item(item: &Item) -> Result<Budget, StoreError> {
    let corrupt =
        |what: String| StoreError::Corrupt(format!("budget item {}: {what}", describe_key(item)));
    let budget: Budget = serde_json::from_str(string(item, DATA)?)
        .map_err(|e| corrupt(format!("holds no budget Purser can read: {e}")))?;
    if string(item, PK)? != team_partition(&budget.team) {
        return Err(corrupt(format!("holds the budget of team {}", budget.team)));
    }
    let revision = match item.get(REVISION) {
        Some(AttributeValue::N(value)) => value.parse::<u64>().ok(),
        _ => None,
    };
    if revision != Some(budget.revision) {
        return Err(corrupt(format!(
            "its revision attribute ({:?}) is not its budget's ({})",
            item.get(REVISION),
            budget.revision
        )));
    }
    Ok(budget)
}

/// A string attribute of an item.
pub(super) fn string<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        Some(other) => Err(StoreError::Corrupt(format!(
            "attribute {name} of item {} is not a string: {other:?}",
            describe_key(item)
        ))),
        None => Err(StoreError::Corrupt(format!(
            "item {} has no attribute {name}",
            describe_key(item)
        ))),
    }
}

/// A number attribute of an item, as a whole number.
pub(super) fn number(item: &Item, name: &str) -> Result<i64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value.parse().map_err(|_| {
            StoreError::Corrupt(format!(
                "attribute {name} of item {} is not a whole number: {value}",
                describe_key(item)
            ))
        }),
        Some(other) => Err(StoreError::Corrupt(format!(
            "attribute {name} of item {} is not a number: {other:?}",
            describe_key(item)
        ))),
        None => Err(StoreError::Corrupt(format!(
            "item {} has no attribute {name}",
            describe_key(item)
        ))),
    }
}

/// A counter's value: absent is zero; below zero means a write went
/// missing, which Purser must not paper over.
pub(super) fn counter(item: Option<&Item>, name: &str) -> Result<u32, StoreError> {
    let Some(item) = item.filter(|i| i.contains_key(name)) else {
        return Ok(0);
    };
    let value = number(item, name)?;
    u32::try_from(value).map_err(|_| {
        StoreError::Corrupt(format!(
            "counter {name} of item {} is {value}",
            describe_key(item)
        ))
    })
}

/// `pk`/`sk` of an item, for messages.
pub(super) fn describe_key(item: &Item) -> String {
    let part = |name| match item.get(name) {
        Some(AttributeValue::S(v)) => v.as_str(),
        _ => "?",
    };
    format!("{}/{}", part(PK), part(SK))
}

/// A call that failed as a whole: the store is unavailable, and the
/// message carries the SDK's whole account of why.
pub(super) fn unavailable<E>(operation: &str, table: &str, error: &E) -> StoreError
where
    E: std::error::Error,
{
    StoreError::Unavailable(format!(
        "{operation} on table {table}: {}",
        DisplayErrorContext(error)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use purser_core::AccountState;

    fn account() -> Account {
        let at = Utc.with_ymd_and_hms(2025, 3, 1, 9, 30, 0).single().unwrap();
        Account {
            id: "r-0123456789ab".into(),
            state: AccountState::Ready,
            team: TeamName::parse("payments").unwrap(),
            owner: "ana@example.com".into(),
            purpose: "load tests".into(),
            lease_end: None,
            created_at: at,
            updated_at: at,
            account_id: Some("111122223333".into()),
            email: "ana+purser-0123456789ab@example.com".into(),
            ou: Some("ou-ab12-cd34ef56".into()),
            failure_reason: None,
            creation_id: Some("car-0123".into()),
            creation_started_at: Some(at),
            creation_attempts: 1,
            closure_started_at: None,
            requested_by: "arn:aws:iam::123456789012:user/ana".into(),
            version: 2,
            announcing: Vec::new(),
            access: None,
            timeline: Vec::new(),
            template: Some(purser_core::leases::TemplateRef {
                name: purser_core::leases::TemplateName::parse("hackathon").unwrap(),
                version: 3,
            }),
            lease_days: Some(7),
            decision: None,
            pending_extension: None,
            frozen_by: Vec::new(),
            blueprint: None,
            recycling: None,
            recycled_from: None,
        }
    }

    #[test]
    fn an_account_item_reads_back_as_the_account() {
        let account = account();
        let item = account_item(&account).unwrap();
        assert_eq!(account_from_item(&item).unwrap(), account);
        assert_eq!(item["pk"], s("ACCOUNT#r-0123456789ab"));
        assert_eq!(item["sk"], s("ACCOUNT"));
        assert_eq!(item["state"], s("ready"));
        assert_eq!(item["version"], n(2));
        assert_eq!(item["gsi1pk"], s("TEAM#payments"));
        assert_eq!(
            item["gsi1sk"],
            s("2025-03-01T09:30:00.000000Z#r-0123456789ab")
        );
        assert_eq!(item["gsi2pk"], s("STATE#ready"));
        assert_eq!(item["gsi3pk"], s("CREATION#car-0123"));
        assert_eq!(item["gsi4pk"], s("AWSACCOUNT#111122223333"));
        assert!(!item.contains_key("closure_started_at"));
    }

    #[test]
    fn sparse_index_keys_are_left_out_until_known() {
        let mut account = account();
        account.creation_id = None;
        account.account_id = None;
        let item = account_item(&account).unwrap();
        assert!(!item.contains_key("gsi3pk"));
        assert!(!item.contains_key("gsi4pk"));
    }

    #[test]
    fn sortable_times_sort_as_the_times_do() {
        let a = Utc.with_ymd_and_hms(2025, 3, 1, 9, 30, 0).single().unwrap();
        let b = a + chrono::Duration::microseconds(1);
        let c = a + chrono::Duration::seconds(1);
        assert!(sortable(a) < sortable(b) && sortable(b) < sortable(c));
        assert_eq!(sortable(a).len(), sortable(b).len());
    }

    #[test]
    fn unreadable_items_are_corrupt_and_named() {
        let mut item = account_item(&account()).unwrap();
        item.insert(DATA.into(), s("{"));
        let err = account_from_item(&item).unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt(m) if m.contains("ACCOUNT#r-0123456789ab/ACCOUNT")),
            "{err:?}"
        );
        let mut counters = counters_key(&account().team);
        counters.insert(OPEN.into(), n(-1));
        assert!(matches!(
            counter(Some(&counters), OPEN),
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(counter(None, OPEN).unwrap(), 0);
    }

    #[test]
    fn spend_counters_are_keyed_by_day_in_sortable_text() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap();
        let team = TeamName::parse("payments").unwrap();
        let key = team_spend_key(&team, day);
        assert_eq!(key["pk"], s("SPEND#TEAM#payments"));
        assert_eq!(key["sk"], s("DAY#2026-03-09"));
        let mut item = account_spend_key("111122223333", day);
        assert_eq!(item["pk"], s("SPEND#ACCOUNT#111122223333"));
        item.insert(NANOS.into(), n(1_500));
        assert_eq!(spend_from_item(&item).unwrap(), (day, 1_500));
        item.insert(SK.into(), s("DAY#March"));
        assert!(matches!(
            spend_from_item(&item),
            Err(StoreError::Corrupt(_))
        ));
        let later = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        assert!(day_sort_key(day) < day_sort_key(later));
    }

    #[test]
    fn a_teams_listing_copy_is_the_team_under_the_listing_key() {
        let team = Team::unconfigured(TeamName::parse("payments").unwrap());
        let item = team_listing_item(&team).unwrap();
        assert_eq!(item["pk"], s("TEAMS"));
        assert_eq!(item["sk"], s("TEAM#payments"));
        assert_eq!(team_from_item(&item).unwrap(), team);
        let mut original = team_item(&team).unwrap();
        original.remove(PK);
        original.remove(SK);
        let mut copy = item.clone();
        copy.remove(PK);
        copy.remove(SK);
        assert_eq!(copy, original, "the same attributes as the team's item");
    }

    #[test]
    fn a_function_counter_is_keyed_by_team_month_account_and_name() {
        let team = TeamName::parse("payments").unwrap();
        let key = function_spend_key(&team, "2026-11", "111122223333", "checkout");
        assert_eq!(key["pk"], s("SPEND#FUNCTION#payments#2026-11"));
        assert_eq!(key["sk"], s("FUNCTION#111122223333#checkout"));
        let mut item = key;
        item.insert(ACCOUNT_ID.into(), s("111122223333"));
        item.insert(FUNCTION.into(), s("checkout"));
        item.insert(NANOS.into(), n(42));
        assert_eq!(
            function_spend_from_item(&item).unwrap(),
            FunctionSpend {
                account_id: "111122223333".into(),
                function: "checkout".into(),
                nanos: 42
            }
        );
    }

    #[test]
    fn a_deployment_mark_reads_back_exactly_and_expires_100_days_after_it() {
        let at = Utc.with_ymd_and_hms(2026, 3, 9, 12, 0, 0).single().unwrap()
            + chrono::Duration::nanoseconds(123_456_789);
        let mark = DeploymentMark {
            team: TeamName::parse("payments").unwrap(),
            account_id: "111122223333".into(),
            at,
            stack: "checkout-api".into(),
            status: "UPDATE_COMPLETE".into(),
            source: DeploymentSource::CloudFormation,
            id: "00ff".into(),
        };
        let item = deployment_item(&mark);
        assert_eq!(item["pk"], s("DEPLOYMENTS#payments"));
        assert_eq!(item["sk"], s("2026-03-09T12:00:00.123456789Z#00ff"));
        assert_eq!(
            item["expires_at"],
            n((at + chrono::Duration::days(100)).timestamp())
        );
        assert_eq!(deployment_from_item(&item).unwrap(), mark);
        let mut odd = item.clone();
        odd.insert(SOURCE.into(), s("jenkins"));
        assert!(matches!(
            deployment_from_item(&odd),
            Err(StoreError::Corrupt(m)) if m.contains("jenkins")
        ));
    }

    #[test]
    fn a_claim_stands_through_the_second_it_expires_in() {
        let expires = Utc.with_ymd_and_hms(2026, 3, 9, 12, 0, 0).single().unwrap();
        let mut item = claim_key("k");
        item.insert(EXPIRES_AT.into(), n(expires.timestamp()));
        let at = |ms| expires + chrono::Duration::milliseconds(ms);
        assert!(unexpired(&item, at(-1)).unwrap());
        assert!(unexpired(&item, at(999)).unwrap());
        assert!(!unexpired(&item, at(1_000)).unwrap());
        assert!(
            unexpired(&claim_key("k"), at(1_000)).unwrap(),
            "no expiry: held"
        );
    }

    fn budget() -> Budget {
        let at = Utc.with_ymd_and_hms(2026, 3, 9, 12, 0, 0).single().unwrap();
        let mut budget = Budget::from_json(
            TeamName::parse("payments").unwrap(),
            &serde_json::json!({"amount": "250.50", "mode": "forecast",
                "actions": {"80": ["notify"], "100": ["notify", "freeze"]},
                "thresholds": [80, 100]}),
            at,
        )
        .unwrap();
        budget.revision = 3;
        budget
    }

    #[test]
    fn a_budget_item_reads_back_as_the_budget() {
        let budget = budget();
        let item = budget_item(&budget).unwrap();
        assert_eq!(item["pk"], s("TEAM#payments"));
        assert_eq!(item["sk"], s("BUDGET"));
        assert_eq!(item["revision"], n(3));
        assert_eq!(budget_from_item(&item).unwrap(), budget);
    }

    #[test]
    fn a_budget_item_that_contradicts_itself_is_corrupt() {
        let budget = budget();
        let mut moved = budget_item(&budget).unwrap();
        moved.insert(PK.into(), s("TEAM#core"));
        let err = budget_from_item(&moved).unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt(m) if m.contains("TEAM#core/BUDGET") && m.contains("payments")),
            "{err:?}"
        );
        let mut stale = budget_item(&budget).unwrap();
        stale.insert(REVISION.into(), n(2));
        assert!(matches!(
            budget_from_item(&stale),
            Err(StoreError::Corrupt(m)) if m.contains("revision")
        ));
        let mut unreadable = budget_item(&budget).unwrap();
        unreadable.insert(DATA.into(), s("{\"team\": \"payments\"}"));
        assert!(matches!(
            budget_from_item(&unreadable),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn a_team_item_reads_back_as_the_team() {
        let team = Team {
            name: TeamName::parse("payments").unwrap(),
            quota: 3,
            members: vec![
                "arn:aws:iam::123456789012:user/ana".into(),
                "ana@example.com".into(),
            ],
            notify: TeamNotify {
                emails: vec!["payments@example.com".into()],
                slack_webhook: Some(
                    purser_core::ports::WebhookUrl::parse("https://hooks.slack.com/services/T/B/x")
                        .unwrap(),
                ),
                teams_webhook: None,
            },
            leases: purser_core::accounts::TeamLeases {
                default_template: Some(
                    purser_core::leases::TemplateName::parse("hackathon").unwrap(),
                ),
                approvers: vec!["ana@example.com".into()],
            },
        };
        assert_eq!(team_from_item(&team_item(&team).unwrap()).unwrap(), team);
        let empty = Team::unconfigured(TeamName::parse("core").unwrap());
        assert_eq!(team_from_item(&team_item(&empty).unwrap()).unwrap(), empty);
        // A team stored before notification settings reads with none.
        let mut old = team_item(&empty).unwrap();
        old.remove(NOTIFY);
        old.remove(LEASES);
        assert_eq!(team_from_item(&old).unwrap(), empty);
    }
}
