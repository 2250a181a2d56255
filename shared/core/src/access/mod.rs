//! Sign-in to vended accounts through IAM Identity Center: the owner is
//! given the developer permission set when the account is ready (or the
//! permission set its lease template names), the read-only set while it is
//! frozen, and nothing once it closes; team members named by email may be
//! given the read-only set.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::accounts::{Account, Team};
use crate::ports::{AccessError, Assignment, AssignmentRequest, IdentityCenter, RequestState};

/// A permission set, by ARN (what Identity Center assigns) and by name
/// (what the access portal's sign-in link names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionSet {
    pub arn: String,
    pub name: String,
}

/// How Purser grants sign-in (none when Identity Center is not configured).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessSettings {
    /// The access portal's URL (`https://d-xxxxxxxxxx.awsapps.com/start`).
    pub portal_url: String,
    pub developer: PermissionSet,
    /// Given to the owner while the account is frozen, and to the team's
    /// members named by email; none: a frozen account's owner has no way in.
    pub read_only: Option<PermissionSet>,
}

impl AccessSettings {
    /// The access portal's shortcut into `account_id` as `set`.
    pub fn link(&self, account_id: &str, set: &PermissionSet) -> String {
        format!(
            "{}/#/console?account_id={account_id}&role_name={}",
            self.portal_url.trim_end_matches('/'),
            set.name
        )
    }
}

/// Where the owner's sign-in stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessStatus {
    /// The owner can sign in with `permission_set`.
    Assigned,
    /// Identity Center has not finished the assignment yet.
    Pending,
    /// No Identity Center user has the owner's address.
    NoUser,
    /// Identity Center refused the assignment (`reason`).
    Failed,
    /// The account closed and Purser removed what it had granted.
    Removed,
    /// This deployment has no Identity Center (its parameters are empty).
    NotConfigured,
}

/// Who may sign into an account, as the account view and its events show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub status: AccessStatus,
    /// The owner's permission set, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_set: Option<String>,
    /// The access portal's sign-in link for the owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The owner's Identity Center user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The set the owner works with while the account is not frozen: its
    /// lease template's, or the deployment's developer set. An unfreeze
    /// gives it back. None (granted before this was recorded): the
    /// deployment's developer set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_set: Option<PermissionSet>,
    /// What Purser assigned (removed when the account closes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub granted: Vec<Assignment>,
}

impl Access {
    fn of(status: AccessStatus, reason: Option<String>) -> Self {
        Self {
            status,
            permission_set: None,
            link: None,
            reason,
            owner: None,
            owner_set: None,
            granted: Vec::new(),
        }
    }

    /// The account view's `access`, without the assignments' user ids.
    pub fn to_view(&self) -> serde_json::Value {
        serde_json::json!({
            "status": self.status,
            "permission_set": self.permission_set,
            "link": self.link,
            "reason": self.reason,
        })
    }
}

/// How often a just-made assignment's status is asked before it is left
/// `pending`: Identity Center usually finishes within seconds.
const POLLS: [Duration; 5] = [
    Duration::from_millis(200),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// Grants, swaps and removes sign-in.
#[derive(Clone)]
pub struct AccessGrants {
    /// Identity Center and how to use it; `None`: not configured.
    configured: Option<(Arc<dyn IdentityCenter>, AccessSettings)>,
    polls: Vec<Duration>,
}

impl AccessGrants {
    pub fn new(center: Arc<dyn IdentityCenter>, settings: AccessSettings) -> Self {
        Self {
            configured: Some((center, settings)),
            polls: POLLS.to_vec(),
        }
    }

    /// For a deployment without Identity Center: every account's access is
    /// `not_configured`.
    pub fn none() -> Self {
        Self {
            configured: None,
            polls: POLLS.to_vec(),
        }
    }

    /// Without waiting between status polls (tests, and the local
    /// simulation, which completes at once).
    pub fn polling_at_once(mut self) -> Self {
        self.polls = vec![Duration::ZERO; POLLS.len()];
        self
    }

    /// Whether Identity Center is configured (else access is
    /// `not_configured`, and no permission set name can be checked).
    pub fn configured(&self) -> bool {
        self.configured.is_some()
    }

    /// The permission set named `name`: the deployment's own two without
    /// asking, any other as Identity Center's instance has it (`None`: it
    /// has none of that name, or Identity Center is not configured).
    pub async fn permission_set(&self, name: &str) -> Result<Option<PermissionSet>, AccessError> {
        let Some((center, settings)) = &self.configured else {
            return Ok(None);
        };
        let mut own = std::iter::once(&settings.developer).chain(&settings.read_only);
        if let Some(set) = own.find(|s| s.name == name) {
            return Ok(Some(set.clone()));
        }
        center.permission_set(name).await
    }

    /// On ready: the owner of `account` (its AWS account id known) is given
    /// `permission_set` (by name: its lease template's), or the developer
    /// set without one, and `team`'s members named by email the read-only
    /// set. A set Identity Center does not have leaves access `failed`,
    /// saying which. Only an unreachable Identity Center is an error (the
    /// delivery is retried, and assigning again is harmless).
    pub async fn grant(
        &self,
        account: &Account,
        team: &Team,
        permission_set: Option<&str>,
    ) -> Result<Access, AccessError> {
        let Some((center, settings)) = &self.configured else {
            return Ok(Access::of(AccessStatus::NotConfigured, None));
        };
        let account_id = account.account_id.clone().unwrap_or_default();
        let failed = |why: String, name: &str| {
            let mut access = Access::of(AccessStatus::Failed, Some(why));
            access.permission_set = Some(name.to_owned());
            access
        };
        // A refusal (a wrong instance, store or role) or a set the
        // instance lacks does not keep the account from being ready: it
        // says what is wrong, like no user.
        let owner_set = match permission_set {
            None => settings.developer.clone(),
            Some(name) => match self.permission_set(name).await {
                Ok(Some(set)) => set,
                Ok(None) => {
                    let template = account
                        .template
                        .as_ref()
                        .map(|t| format!("lease template {} v{}", t.name, t.version))
                        .unwrap_or_else(|| "the lease template".into());
                    let why = format!(
                        "IAM Identity Center has no permission set named {name}, which {template} gives the owner: create it in the instance (or change the template's permission_set), then ask a platform admin to grant access"
                    );
                    return Ok(failed(why, name));
                }
                Err(AccessError::Denied(why)) => return Ok(failed(why, name)),
                Err(e) => return Err(e),
            },
        };
        let found = match center.user_by_email(&account.owner).await {
            Err(AccessError::Denied(why)) => return Ok(failed(why, &owner_set.name)),
            other => other?,
        };
        let Some(owner) = found else {
            let reason = format!(
                "IAM Identity Center has no user with the address {}: add one (or the address to the owner's user), then ask a platform admin to grant access",
                account.owner
            );
            let mut access = Access::of(AccessStatus::NoUser, Some(reason));
            access.permission_set = Some(owner_set.name.clone());
            access.owner_set = Some(owner_set);
            return Ok(access);
        };
        let mut access = self
            .assign_owner(center.as_ref(), settings, &account_id, &owner, &owner_set)
            .await?;
        access.owner_set = Some(owner_set);
        if let Some(read_only) = &settings.read_only {
            for member in team.member_emails().filter(|m| *m != account.owner) {
                let Some(user) = center.user_by_email(member).await? else {
                    continue;
                };
                let assignment = Assignment {
                    account_id: account_id.clone(),
                    permission_set: read_only.arn.clone(),
                    user_id: user,
                };
                match center.assign(&assignment).await {
                    Ok(_) => access.granted.push(assignment),
                    Err(e) if e.is_retryable() => return Err(e),
                    Err(e) => {
                        tracing::warn!(request_id = %account.id, member, error = %e,
                            "a team member could not be given the read-only set")
                    }
                }
            }
        }
        Ok(access)
    }

    /// On freeze (`frozen`) and unfreeze: the owner's set swapped, so a
    /// frozen account's owner can look at what runs and why, not change it
    /// (with no read-only set configured, a frozen owner has no way in),
    /// and given back the set recorded as theirs (`Access::owner_set`: the
    /// lease template's, or the developer set). `None` when there is
    /// nothing to change.
    pub async fn swap(
        &self,
        account: &Account,
        frozen: bool,
    ) -> Result<Option<Access>, AccessError> {
        let (Some((center, settings)), Some(current)) = (&self.configured, &account.access) else {
            return Ok(None);
        };
        let Some(owner) = current.owner.clone() else {
            return Ok(None);
        };
        let owner_set = current
            .owner_set
            .clone()
            .unwrap_or_else(|| settings.developer.clone());
        let to = if frozen {
            settings.read_only.as_ref()
        } else {
            Some(&owner_set)
        };
        let wanted = to.map(|set| set.name.clone());
        if current.permission_set == wanted
            && matches!(
                current.status,
                AccessStatus::Assigned | AccessStatus::Pending
            )
        {
            return Ok(None);
        }
        let account_id = account.account_id.clone().unwrap_or_default();
        // What the owner has now goes: what was granted them (and, for an
        // account granted before grants were all recorded, the set the
        // freeze swaps away from).
        let mut from: Vec<String> = current
            .granted
            .iter()
            .filter(|a| a.user_id == owner)
            .map(|a| a.permission_set.clone())
            .collect();
        let assumed = if frozen {
            Some(&owner_set)
        } else {
            settings.read_only.as_ref()
        };
        if from.is_empty()
            && let Some(set) = assumed
        {
            from.push(set.arn.clone());
        }
        for arn in from
            .into_iter()
            .filter(|arn| Some(arn) != to.map(|t| &t.arn))
        {
            center
                .unassign(&Assignment {
                    account_id: account_id.clone(),
                    permission_set: arn,
                    user_id: owner.clone(),
                })
                .await?;
        }
        let others = current
            .granted
            .iter()
            .filter(|a| a.user_id != owner)
            .cloned()
            .collect::<Vec<_>>();
        let mut access = match to {
            Some(set) => {
                self.assign_owner(center.as_ref(), settings, &account_id, &owner, set)
                    .await?
            }
            None => {
                let mut access = Access::of(
                    AccessStatus::Removed,
                    Some(
                        "the account is frozen and no read-only permission set is configured"
                            .into(),
                    ),
                );
                access.owner = Some(owner.clone());
                access
            }
        };
        access.owner_set = Some(owner_set);
        access.granted.extend(others);
        access.granted.sort();
        Ok(Some(access))
    }

    /// On close: every assignment Purser made, removed.
    pub async fn remove(&self, account: &Account) -> Result<Option<Access>, AccessError> {
        let Some(current) = &account.access else {
            return Ok(None);
        };
        if current.granted.is_empty() && current.status == AccessStatus::Removed {
            return Ok(None);
        }
        let Some((center, _)) = &self.configured else {
            return Ok(None);
        };
        for assignment in &current.granted {
            center.unassign(assignment).await?;
        }
        let mut access = Access::of(AccessStatus::Removed, None);
        access.permission_set = current.permission_set.clone();
        access.owner_set = current.owner_set.clone();
        Ok(Some(access))
    }

    async fn assign_owner(
        &self,
        center: &dyn IdentityCenter,
        settings: &AccessSettings,
        account_id: &str,
        owner: &str,
        set: &PermissionSet,
    ) -> Result<Access, AccessError> {
        let assignment = Assignment {
            account_id: account_id.to_string(),
            permission_set: set.arn.clone(),
            user_id: owner.to_string(),
        };
        let request = match center.assign(&assignment).await {
            Ok(request) => self.until_done(center, request).await?,
            Err(AccessError::Denied(why)) => AssignmentRequest {
                id: String::new(),
                state: RequestState::Failed(why),
            },
            Err(e) => return Err(e),
        };
        let (status, reason) = match request.state {
            RequestState::Succeeded => (AccessStatus::Assigned, None),
            RequestState::InProgress => (AccessStatus::Pending, None),
            RequestState::Failed(why) => (AccessStatus::Failed, Some(why)),
        };
        let mut access = Access::of(status, reason);
        access.permission_set = Some(set.name.clone());
        access.owner = Some(owner.to_string());
        if status != AccessStatus::Failed {
            access.link = Some(settings.link(account_id, set));
            access.granted.push(assignment);
        }
        Ok(access)
    }

    async fn until_done(
        &self,
        center: &dyn IdentityCenter,
        mut request: AssignmentRequest,
    ) -> Result<AssignmentRequest, AccessError> {
        for wait in &self.polls {
            if request.state != RequestState::InProgress {
                break;
            }
            tokio::time::sleep(*wait).await;
            request = center.assign_status(&request.id).await?;
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::accounts::{AccountState, NewAccount, TeamName};
    use crate::fakes::locked;

    /// Identity Center with ana and bob as users; assignments complete at
    /// the first status poll.
    #[derive(Default)]
    struct FakeCenter {
        assigned: Mutex<BTreeSet<Assignment>>,
    }

    #[async_trait]
    impl IdentityCenter for FakeCenter {
        async fn user_by_email(&self, email: &str) -> Result<Option<String>, AccessError> {
            Ok(["ana@example.com", "bob@example.com"]
                .contains(&email)
                .then(|| format!("u-{}", &email[..3])))
        }
        async fn assign(&self, a: &Assignment) -> Result<AssignmentRequest, AccessError> {
            locked(&self.assigned).insert(a.clone());
            Ok(AssignmentRequest {
                id: "req-1".into(),
                state: RequestState::InProgress,
            })
        }
        async fn assign_status(&self, id: &str) -> Result<AssignmentRequest, AccessError> {
            Ok(AssignmentRequest {
                id: id.into(),
                state: RequestState::Succeeded,
            })
        }
        async fn unassign(&self, a: &Assignment) -> Result<AssignmentRequest, AccessError> {
            locked(&self.assigned).remove(a);
            Ok(AssignmentRequest {
                id: "req-2".into(),
                state: RequestState::Succeeded,
            })
        }
        async fn unassign_status(&self, id: &str) -> Result<AssignmentRequest, AccessError> {
            self.assign_status(id).await
        }
        async fn assignments(
            &self,
            account: &str,
            set: &str,
        ) -> Result<Vec<Assignment>, AccessError> {
            Ok(locked(&self.assigned)
                .iter()
                .filter(|a| a.account_id == account && a.permission_set == set)
                .cloned()
                .collect())
        }
        async fn permission_set(&self, name: &str) -> Result<Option<PermissionSet>, AccessError> {
            Ok(["PurserDeveloper", "PurserReadOnly", "PurserDataScience"]
                .contains(&name)
                .then(|| set(name)))
        }
    }

    fn set(name: &str) -> PermissionSet {
        PermissionSet {
            arn: format!("arn:aws:sso:::permissionSet/ssoins-1/{name}"),
            name: name.into(),
        }
    }

    fn grants(center: &Arc<FakeCenter>, read_only: bool) -> AccessGrants {
        let settings = AccessSettings {
            portal_url: "https://d-1234567890.awsapps.com/start/".into(),
            developer: set("PurserDeveloper"),
            read_only: read_only.then(|| set("PurserReadOnly")),
        };
        AccessGrants::new(center.clone(), settings).polling_at_once()
    }

    fn ready(owner: &str) -> (Account, Team) {
        let now = Utc.with_ymd_and_hms(2026, 11, 18, 12, 0, 0).unwrap();
        let name = TeamName::parse("payments").unwrap();
        let input = NewAccount {
            team: name.clone(),
            owner: owner.into(),
            purpose: "tests".into(),
            lease_days: None,
            template: None,
        };
        let mut a =
            Account::request("r-0123456789ab".into(), input, "arn:aws:iam::1:user/x", now).unwrap();
        a.state = AccountState::Ready;
        a.account_id = Some("210987654321".into());
        let mut team = Team::unconfigured(name);
        team.members = vec!["bob@example.com".into(), "nobody@example.com".into()];
        (a, team)
    }

    #[tokio::test]
    async fn the_owner_signs_in_as_developer_then_read_only_while_frozen_and_nobody_after_close() {
        let center = Arc::new(FakeCenter::default());
        let grants = grants(&center, true);
        let (mut account, team) = ready("ana@example.com");

        let access = grants.grant(&account, &team, None).await.unwrap();
        assert_eq!(access.status, AccessStatus::Assigned);
        assert_eq!(access.permission_set.as_deref(), Some("PurserDeveloper"));
        assert_eq!(
            access.link.as_deref(),
            Some(
                "https://d-1234567890.awsapps.com/start/#/console?account_id=210987654321&role_name=PurserDeveloper"
            )
        );
        // ana as developer, bob (a member by email) read-only; nobody has no user.
        assert_eq!(locked(&center.assigned).len(), 2);
        account.access = Some(access);

        let frozen = grants.swap(&account, true).await.unwrap().expect("swapped");
        assert_eq!(frozen.permission_set.as_deref(), Some("PurserReadOnly"));
        assert!(
            frozen
                .link
                .as_deref()
                .unwrap()
                .ends_with("role_name=PurserReadOnly")
        );
        let sets: Vec<_> = locked(&center.assigned)
            .iter()
            .map(|a| (a.user_id.clone(), a.permission_set.clone()))
            .collect();
        assert_eq!(
            sets,
            [
                ("u-ana".into(), set("PurserReadOnly").arn),
                ("u-bob".into(), set("PurserReadOnly").arn)
            ]
        );
        account.access = Some(frozen);
        assert_eq!(
            grants.swap(&account, true).await.unwrap(),
            None,
            "frozen twice changes nothing"
        );

        let unfrozen = grants
            .swap(&account, false)
            .await
            .unwrap()
            .expect("swapped back");
        assert_eq!(unfrozen.permission_set.as_deref(), Some("PurserDeveloper"));
        account.access = Some(unfrozen);

        let removed = grants.remove(&account).await.unwrap().expect("removed");
        assert_eq!(removed.status, AccessStatus::Removed);
        assert!(
            locked(&center.assigned).is_empty(),
            "nothing Purser granted is left"
        );
        account.access = Some(removed);
        assert_eq!(grants.remove(&account).await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_owner_without_a_user_is_told_what_to_do_and_nothing_is_assigned() {
        let center = Arc::new(FakeCenter::default());
        let (account, team) = ready("carol@example.com");
        let access = grants(&center, true)
            .grant(&account, &team, None)
            .await
            .unwrap();
        assert_eq!(access.status, AccessStatus::NoUser);
        assert!(access.reason.unwrap().contains("carol@example.com"));
        assert_eq!(access.link, None);
        // Nothing is granted until the owner has a user.
        assert!(locked(&center.assigned).is_empty());
    }

    struct DeniedCenter;

    #[async_trait]
    impl IdentityCenter for DeniedCenter {
        async fn user_by_email(&self, _: &str) -> Result<Option<String>, AccessError> {
            Err(AccessError::Denied(
                "identitystore:GetUserId on d-1 is not allowed".into(),
            ))
        }
        async fn assign(&self, _: &Assignment) -> Result<AssignmentRequest, AccessError> {
            unreachable!("nobody is assigned without a user")
        }
        async fn assign_status(&self, _: &str) -> Result<AssignmentRequest, AccessError> {
            unreachable!("no request was made")
        }
        async fn unassign(&self, _: &Assignment) -> Result<AssignmentRequest, AccessError> {
            unreachable!("nothing was assigned")
        }
        async fn unassign_status(&self, _: &str) -> Result<AssignmentRequest, AccessError> {
            unreachable!("no request was made")
        }
        async fn assignments(&self, _: &str, _: &str) -> Result<Vec<Assignment>, AccessError> {
            Ok(Vec::new())
        }
        async fn permission_set(&self, _: &str) -> Result<Option<PermissionSet>, AccessError> {
            Err(AccessError::Denied(
                "sso:ListPermissionSets on ssoins-1 is not allowed".into(),
            ))
        }
    }

    #[tokio::test]
    async fn a_refusing_identity_center_leaves_the_account_ready_and_says_why() {
        let (account, team) = ready("ana@example.com");
        let settings = AccessSettings {
            portal_url: "https://d-1.awsapps.com/start".into(),
            developer: set("PurserDeveloper"),
            read_only: None,
        };
        let access = AccessGrants::new(Arc::new(DeniedCenter), settings)
            .grant(&account, &team, None)
            .await
            .unwrap();
        assert_eq!(access.status, AccessStatus::Failed);
        assert!(access.reason.unwrap().contains("GetUserId"));
        assert_eq!(access.link, None);
    }

    #[tokio::test]
    async fn without_identity_center_access_is_not_configured() {
        let (account, team) = ready("ana@example.com");
        let access = AccessGrants::none()
            .grant(&account, &team, None)
            .await
            .unwrap();
        assert_eq!(access.status, AccessStatus::NotConfigured);
    }

    #[tokio::test]
    async fn without_a_read_only_set_a_frozen_owner_has_no_way_in_until_unfrozen() {
        let center = Arc::new(FakeCenter::default());
        let grants = grants(&center, false);
        let (mut account, team) = ready("ana@example.com");
        account.access = Some(grants.grant(&account, &team, None).await.unwrap());
        let frozen = grants.swap(&account, true).await.unwrap().expect("swapped");
        assert_eq!(frozen.status, AccessStatus::Removed);
        assert!(locked(&center.assigned).is_empty());
        account.access = Some(frozen);
        let back = grants.swap(&account, false).await.unwrap().expect("back");
        assert_eq!(back.status, AccessStatus::Assigned);
        assert_eq!(locked(&center.assigned).len(), 1);
    }

    fn from_template(owner: &str) -> (Account, Team) {
        let (mut account, team) = ready(owner);
        account.template = Some(crate::leases::TemplateRef {
            name: crate::leases::TemplateName::parse("data-science").unwrap(),
            version: 3,
        });
        (account, team)
    }

    #[tokio::test]
    async fn a_templates_set_is_the_owners_and_an_unfreeze_gives_it_back() {
        let center = Arc::new(FakeCenter::default());
        let grants = grants(&center, true);
        let (mut account, team) = from_template("ana@example.com");

        let access = grants
            .grant(&account, &team, Some("PurserDataScience"))
            .await
            .unwrap();
        assert_eq!(access.status, AccessStatus::Assigned);
        assert_eq!(access.permission_set.as_deref(), Some("PurserDataScience"));
        assert!(
            access
                .link
                .as_deref()
                .unwrap()
                .ends_with("role_name=PurserDataScience")
        );
        assert!(locked(&center.assigned).contains(&Assignment {
            account_id: "210987654321".into(),
            permission_set: set("PurserDataScience").arn,
            user_id: "u-ana".into(),
        }));
        account.access = Some(access);

        let frozen = grants.swap(&account, true).await.unwrap().expect("frozen");
        assert_eq!(frozen.permission_set.as_deref(), Some("PurserReadOnly"));
        let owners: Vec<_> = locked(&center.assigned)
            .iter()
            .filter(|a| a.user_id == "u-ana")
            .map(|a| a.permission_set.clone())
            .collect();
        assert_eq!(
            owners,
            [set("PurserReadOnly").arn],
            "the template's set is gone"
        );
        account.access = Some(frozen);

        let back = grants.swap(&account, false).await.unwrap().expect("back");
        assert_eq!(back.permission_set.as_deref(), Some("PurserDataScience"));
        assert!(
            back.link
                .as_deref()
                .unwrap()
                .ends_with("role_name=PurserDataScience")
        );
        let owners: Vec<_> = locked(&center.assigned)
            .iter()
            .filter(|a| a.user_id == "u-ana")
            .map(|a| a.permission_set.clone())
            .collect();
        assert_eq!(owners, [set("PurserDataScience").arn]);
        account.access = Some(back);

        grants.remove(&account).await.unwrap().expect("removed");
        assert!(locked(&center.assigned).is_empty());
    }

    #[tokio::test]
    async fn a_set_identity_center_lacks_leaves_access_failed_naming_it() {
        let center = Arc::new(FakeCenter::default());
        let (account, team) = from_template("ana@example.com");
        let access = grants(&center, true)
            .grant(&account, &team, Some("PurserGpuWizards"))
            .await
            .unwrap();
        assert_eq!(access.status, AccessStatus::Failed);
        assert_eq!(access.permission_set.as_deref(), Some("PurserGpuWizards"));
        let reason = access.reason.unwrap();
        assert!(
            reason.contains("no permission set named PurserGpuWizards"),
            "{reason}"
        );
        assert!(reason.contains("data-science v3"), "{reason}");
        assert_eq!(access.link, None);
        assert!(
            locked(&center.assigned).is_empty(),
            "nobody is given anything"
        );
    }

    #[tokio::test]
    async fn the_deployments_sets_are_known_without_asking_and_others_are_asked() {
        let center = Arc::new(FakeCenter::default());
        let grants = grants(&center, true);
        assert_eq!(
            grants.permission_set("PurserReadOnly").await.unwrap(),
            Some(set("PurserReadOnly"))
        );
        assert_eq!(
            grants.permission_set("PurserDataScience").await.unwrap(),
            Some(set("PurserDataScience"))
        );
        assert_eq!(grants.permission_set("Nope").await.unwrap(), None);
        assert!(!AccessGrants::none().configured());
        // The deployment's developer set is never asked for.
        let settings = AccessSettings {
            portal_url: "https://d-1.awsapps.com/start".into(),
            developer: set("PurserDeveloper"),
            read_only: None,
        };
        let denied = AccessGrants::new(Arc::new(DeniedCenter), settings);
        assert_eq!(
            denied.permission_set("PurserDeveloper").await.unwrap(),
            Some(set("PurserDeveloper"))
        );
        assert!(matches!(
            denied.permission_set("PurserDataScience").await,
            Err(AccessError::Denied(_))
        ));
    }

    #[tokio::test]
    async fn an_account_granted_before_sets_were_recorded_unfreezes_to_the_developer_set() {
        let center = Arc::new(FakeCenter::default());
        let grants = grants(&center, true);
        let (mut account, team) = ready("ana@example.com");
        let mut access = grants.grant(&account, &team, None).await.unwrap();
        access.owner_set = None;
        account.access = Some(access);
        let frozen = grants.swap(&account, true).await.unwrap().expect("frozen");
        account.access = Some(frozen);
        let back = grants.swap(&account, false).await.unwrap().expect("back");
        assert_eq!(back.permission_set.as_deref(), Some("PurserDeveloper"));
    }
}
