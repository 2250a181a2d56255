//! Guardrails on a vended account: the SCPs that keep it to its lease
//! template's regions and off what a developer account should never buy,
//! attached before `AccountReady` says the account is there.
//!
//! On AWS the deployment's guardrail is on Purser's OU (the template's
//! `GuardrailPolicy`), so an account only gets its template's region rule
//! (an SCP per template version, shared by its accounts). `purser up`'s
//! simulated organization attaches policies to accounts only, so there
//! each account gets them all.

use crate::accounts::{Account, AccountError, Accounts};
use crate::guardrails::{GuardrailError, Guardrails};
use crate::ports::{MAX_POLICIES_PER_TARGET, OrganizationError};

/// How vended accounts are held to the guardrails.
#[derive(Debug, Clone)]
pub struct AccountGuardrails {
    /// The deployment's guardrails (regions, denied actions and types).
    pub guardrails: Guardrails,
    /// Whether Purser's OU already carries the deployment's guardrails.
    pub on_ou: bool,
}

impl Accounts {
    /// Attaches `guardrails` to every account as it becomes ready.
    pub fn with_guardrails(mut self, guardrails: AccountGuardrails) -> Self {
        self.guardrails = Some(guardrails);
        self
    }

    /// `with_guardrails`, or none (logged) when the settings were refused.
    pub fn with_guardrails_if(self, guardrails: Result<AccountGuardrails, GuardrailError>) -> Self {
        match guardrails {
            Ok(guardrails) => self.with_guardrails(guardrails),
            Err(e) => {
                tracing::error!(error = %e, "the guardrail settings are not valid: accounts get none");
                self
            }
        }
    }

    /// The guardrails `account` works under beyond its OU's: its template's
    /// regions (narrowing the deployment's), and locally everything.
    pub(super) async fn account_guardrails(
        &self,
        account: &Account,
    ) -> Result<Option<(String, Guardrails)>, AccountError> {
        let Some(setting) = &self.guardrails else {
            return Ok(None);
        };
        let mut regions = Vec::new();
        let mut scope = "deployment".to_string();
        if let (Some(reference), Some(templates)) = (&account.template, &self.templates)
            && let Some(template) = templates
                .template_version(&reference.name, reference.version)
                .await?
            && !template.regions.is_empty()
        {
            regions = template.regions.clone();
            scope = format!("{}-v{}", reference.name, reference.version);
        }
        let guardrails = setting
            .guardrails
            .for_regions(&regions)
            .map_err(|e| AccountError::Invalid(e.into()))?;
        let guardrails = match (setting.on_ou, regions.is_empty()) {
            // The OU's policy covers it all.
            (true, true) => return Ok(None),
            (true, false) => guardrails.only_regions(),
            (false, _) => guardrails,
        };
        if guardrails.is_empty() {
            return Ok(None);
        }
        Ok(Some((scope, guardrails)))
    }

    /// Creates (once, by name) and attaches the account's guardrail SCPs;
    /// a repeat attaches nothing twice. Refused with a message that says
    /// what to do when the account would hold more SCPs than AWS allows.
    pub(super) async fn apply_guardrails(
        &self,
        account: &Account,
        account_id: &str,
    ) -> Result<(), AccountError> {
        let Some((scope, guardrails)) = self.account_guardrails(account).await? else {
            return Ok(());
        };
        let policies = guardrails
            .named_policies(&scope)
            .map_err(|e| AccountError::Invalid(e.into()))?;
        let attached = self
            .with_retries(|| self.organization.policies_of(account_id))
            .await?;
        let mut ids = Vec::with_capacity(policies.len());
        for (name, document) in &policies {
            let description = format!(
                "Purser guardrails ({scope}): regions, and what developer accounts must not buy"
            );
            let id = self
                .with_retries(|| {
                    self.organization
                        .ensure_policy(name, &description, document)
                })
                .await?;
            ids.push(id);
        }
        let missing: Vec<&String> = ids.iter().filter(|id| !attached.contains(id)).collect();
        // FullAWSAccess is one of the five; a freeze needs one more later.
        if attached.len() + missing.len() + 1 > MAX_POLICIES_PER_TARGET {
            return Err(OrganizationError::Constraint {
                reason: "MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED".into(),
                message: format!(
                "account {account_id} holds {} SCPs; its {} guardrail policies would leave none \
                 for a freeze (AWS allows {MAX_POLICIES_PER_TARGET} per account): detach a policy \
                 attached by hand, or shorten the lease template's regions",
                    attached.len(),
                    missing.len()
                ),
            }
            .into());
        }
        for id in missing {
            self.with_retries(|| self.organization.attach_policy(id, account_id))
                .await?;
        }
        tracing::info!(request_id = %account.id, team = %account.team, account_id, scope,
            policies = ids.len(), "guardrails attached");
        Ok(())
    }
}
