//! The [`Cleaner`] port on AWS CodeBuild: each run is a build of the
//! cleaning project (infra/cleaner/buildspec.yml) in Purser's account,
//! which assumes the member role in the target account and runs aws-nuke
//! with the configuration it is given.
//!
//! `StartBuild` passes the run in environment variables (the project's
//! buildspec stays the reviewed one): the target account, the role to
//! assume, and the configuration, base64-encoded so that no character of
//! it is the buildspec's shell's to read. Its `idempotencyToken` is the
//! run's (account, pass, attempt): a step retried within CodeBuild's five
//! minutes gets the same build back instead of a second one.
//!
//! `BatchGetBuilds` gives the status: `SUCCEEDED` is a clean run;
//! `FAILED`, `FAULT`, `TIMED_OUT` and `STOPPED` a failed one, whose reason
//! is the failed phase's context (what CodeBuild says went wrong, such as
//! the command that exited non-zero); `IN_PROGRESS` still running.

use async_trait::async_trait;
use aws_sdk_codebuild::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_codebuild::types::{Build, EnvironmentVariable, EnvironmentVariableType, StatusType};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use purser_core::ports::{Cleaner, CleanerError, CleaningStatus};

/// The environment variables the buildspec reads.
pub const TARGET_ACCOUNT_VAR: &str = "PURSER_TARGET_ACCOUNT";
pub const MEMBER_ROLE_VAR: &str = "PURSER_MEMBER_ROLE";
pub const NUKE_CONFIG_VAR: &str = "PURSER_NUKE_CONFIG";

#[derive(Debug, Clone)]
pub struct CodeBuildCleaner {
    codebuild: aws_sdk_codebuild::Client,
    project: String,
    member_role: String,
}

impl CodeBuildCleaner {
    /// `project` is the cleaning project's name; `member_role` the role
    /// its builds assume in member accounts (`MemberAccountRole`).
    pub fn new(
        codebuild: aws_sdk_codebuild::Client,
        project: impl Into<String>,
        member_role: impl Into<String>,
    ) -> Self {
        Self {
            codebuild,
            project: project.into(),
            member_role: member_role.into(),
        }
    }

    pub fn from_config(
        config: &aws_config::SdkConfig,
        project: impl Into<String>,
        member_role: impl Into<String>,
    ) -> Self {
        Self::new(aws_sdk_codebuild::Client::new(config), project, member_role)
    }
}

#[async_trait]
impl Cleaner for CodeBuildCleaner {
    async fn start(
        &self,
        account_id: &str,
        config: &str,
        pass: u32,
        attempt: u32,
    ) -> Result<String, CleanerError> {
        let mut request = self
            .codebuild
            .start_build()
            .project_name(&self.project)
            .idempotency_token(idempotency_token(account_id, pass, attempt));
        for (name, value) in environment(account_id, &self.member_role, config) {
            let variable = EnvironmentVariable::builder()
                .name(name)
                .value(value)
                .r#type(EnvironmentVariableType::Plaintext)
                .build()
                .map_err(|e| CleanerError::Refused(e.to_string()))?;
            request = request.environment_variables_override(variable);
        }
        let output = request.send().await.map_err(|e| error("StartBuild", e))?;
        output
            .build_value()
            .and_then(Build::id)
            .map(str::to_owned)
            .ok_or_else(|| {
                CleanerError::Unavailable("StartBuild answered without a build id".into())
            })
    }

    async fn status(&self, run_id: &str) -> Result<CleaningStatus, CleanerError> {
        let output = self
            .codebuild
            .batch_get_builds()
            .ids(run_id)
            .send()
            .await
            .map_err(|e| error("BatchGetBuilds", e))?;
        let build = output
            .builds()
            .iter()
            .find(|b| b.id() == Some(run_id))
            .ok_or_else(|| CleanerError::NotFound(format!("build {run_id}")))?;
        Ok(status_of(build))
    }
}

/// Names the run; CodeBuild keeps a token for 5 minutes.
fn idempotency_token(account_id: &str, pass: u32, attempt: u32) -> String {
    format!("purser-clean-{account_id}-pass-{pass}-attempt-{attempt}")
}

fn environment(account_id: &str, member_role: &str, config: &str) -> [(&'static str, String); 3] {
    [
        (TARGET_ACCOUNT_VAR, account_id.to_owned()),
        (MEMBER_ROLE_VAR, member_role.to_owned()),
        (NUKE_CONFIG_VAR, STANDARD.encode(config)),
    ]
}

fn status_of(build: &Build) -> CleaningStatus {
    match build.build_status() {
        Some(StatusType::Succeeded) => CleaningStatus::Succeeded,
        None | Some(StatusType::InProgress) => CleaningStatus::Running,
        Some(status) => CleaningStatus::Failed {
            reason: failure_reason(build, status.as_str()),
        },
    }
}

/// The failed phase's contexts (`BUILD: COMMAND_EXECUTION_ERROR: Error
/// while executing command: …`), or the build's status alone.
fn failure_reason(build: &Build, status: &str) -> String {
    let failed = build.phases().iter().find(|phase| {
        !matches!(
            phase.phase_status(),
            None | Some(StatusType::Succeeded | StatusType::InProgress)
        )
    });
    let Some(phase) = failed else {
        return format!("build {status}");
    };
    let phase_type = phase.phase_type().map_or("build", |t| t.as_str());
    let contexts: Vec<String> = phase
        .contexts()
        .iter()
        .map(|c| match (c.status_code(), c.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (code, message) => code.or(message).unwrap_or_default().to_owned(),
        })
        .filter(|c| !c.is_empty())
        .collect();
    if contexts.is_empty() {
        format!("{phase_type} {status}")
    } else {
        format!("{phase_type}: {}", contexts.join("; "))
    }
}

fn error<E, R>(operation: &str, error: SdkError<E, R>) -> CleanerError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let Some(service) = error.as_service_error() else {
        return CleanerError::Unavailable(format!("{operation}: {}", DisplayErrorContext(&error)));
    };
    let text = format!(
        "{operation}: {}",
        service
            .message()
            .unwrap_or_else(|| service.code().unwrap_or("an error"))
    );
    match service.code().unwrap_or_default() {
        "ThrottlingException" | "TooManyRequestsException" => CleanerError::Throttled(text),
        "ResourceNotFoundException" => CleanerError::NotFound(text),
        // Bad input, a parameter mismatch on a reused token, the account's
        // concurrent-build limit.
        "InvalidInputException" | "AccountLimitExceededException" => CleanerError::Refused(text),
        _ => CleanerError::Unavailable(format!("{operation}: {}", DisplayErrorContext(&error))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codebuild::types::{BuildPhase, BuildPhaseType, PhaseContext};

    fn build(status: StatusType, phases: Vec<BuildPhase>) -> Build {
        Build::builder()
            .id("purser-cleaner:1")
            .build_status(status)
            .set_phases(Some(phases))
            .build()
    }

    fn phase(
        kind: BuildPhaseType,
        status: StatusType,
        context: Option<(&str, &str)>,
    ) -> BuildPhase {
        let mut phase = BuildPhase::builder().phase_type(kind).phase_status(status);
        if let Some((code, message)) = context {
            phase = phase.contexts(
                PhaseContext::builder()
                    .status_code(code)
                    .message(message)
                    .build(),
            );
        }
        phase.build()
    }

    #[test]
    fn a_failed_build_says_which_phase_failed_and_why() {
        let build = build(
            StatusType::Failed,
            vec![
                phase(BuildPhaseType::Install, StatusType::Succeeded, None),
                phase(
                    BuildPhaseType::Build,
                    StatusType::Failed,
                    Some((
                        "COMMAND_EXECUTION_ERROR",
                        "Error while executing command: aws-nuke run. Reason: exit status 1",
                    )),
                ),
            ],
        );
        assert_eq!(
            status_of(&build),
            CleaningStatus::Failed {
                reason: "BUILD: COMMAND_EXECUTION_ERROR: Error while executing command: \
                         aws-nuke run. Reason: exit status 1"
                    .into()
            }
        );
    }

    #[test]
    fn every_unsuccessful_end_is_a_failure() {
        for status in [
            StatusType::Failed,
            StatusType::Fault,
            StatusType::TimedOut,
            StatusType::Stopped,
        ] {
            let expected = format!("build {}", status.as_str());
            assert_eq!(
                status_of(&build(status, vec![])),
                CleaningStatus::Failed { reason: expected }
            );
        }
        let timed_out = build(
            StatusType::TimedOut,
            vec![phase(BuildPhaseType::Build, StatusType::TimedOut, None)],
        );
        assert_eq!(
            status_of(&timed_out),
            CleaningStatus::Failed {
                reason: "BUILD TIMED_OUT".into()
            }
        );
        assert_eq!(
            status_of(&build(StatusType::InProgress, vec![])),
            CleaningStatus::Running
        );
        assert_eq!(
            status_of(&build(StatusType::Succeeded, vec![])),
            CleaningStatus::Succeeded
        );
    }

    #[test]
    fn a_run_is_named_by_account_pass_and_attempt() {
        assert_eq!(
            idempotency_token("012345678901", 2, 1),
            "purser-clean-012345678901-pass-2-attempt-1"
        );
        assert_ne!(
            idempotency_token("012345678901", 1, 2),
            idempotency_token("012345678901", 2, 1)
        );
    }

    #[test]
    fn the_configuration_travels_base64_encoded() {
        let config = r#"{"regions":["global"],"x":"$(rm -rf /)"}"#;
        let env = environment("012345678901", "OrganizationAccountAccessRole", config);
        assert_eq!(env[0], (TARGET_ACCOUNT_VAR, "012345678901".into()));
        assert_eq!(
            env[1],
            (MEMBER_ROLE_VAR, "OrganizationAccountAccessRole".into())
        );
        assert_eq!(STANDARD.decode(&env[2].1).unwrap(), config.as_bytes());
    }
}
