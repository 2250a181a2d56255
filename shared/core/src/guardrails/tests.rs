use serde_json::{Value, json};

use super::policy::{DENIED_ACTIONS_SID, LARGEST_INSTANCES_SID, REGIONS_SID};
use super::*;
use crate::ports::MAX_POLICY_CHARS;

fn exemptions() -> FreezeExemptions {
    FreezeExemptions {
        break_glass_roles: vec!["break-glass".into()],
        purser_role: "purser-lambda-throttle".into(),
        control_tower: false,
    }
}

fn guardrails(settings: GuardrailSettings) -> Guardrails {
    Guardrails::new(settings, exemptions()).unwrap()
}

fn with_regions(regions: &[&str]) -> Guardrails {
    guardrails(GuardrailSettings {
        regions: owned(regions),
        ..GuardrailSettings::default()
    })
}

fn parsed(docs: &[String]) -> Vec<Value> {
    docs.iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// Every statement of every document.
fn statements(docs: &[String]) -> Vec<Value> {
    parsed(docs)
        .into_iter()
        .flat_map(|d| d["Statement"].as_array().unwrap().clone())
        .collect()
}

fn statement(docs: &[String], sid: &str) -> Value {
    statements(docs)
        .into_iter()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("no statement {sid}"))
}

#[test]
fn the_default_guardrails_are_one_minified_document_of_deny_statements() {
    let docs = with_regions(&["eu-west-1", "eu-central-1"])
        .policies()
        .unwrap();
    assert_eq!(docs.len(), 1, "{docs:?}");
    let doc = &docs[0];
    assert!(doc.chars().count() <= MAX_POLICY_CHARS, "{}", doc.len());
    assert!(!doc.contains(' ') && !doc.contains('\n'), "minified: {doc}");
    let value: Value = serde_json::from_str(doc).unwrap();
    assert_eq!(value["Version"], "2012-10-17");
    let all = statements(&docs);
    let sids: Vec<&str> = all.iter().map(|s| s["Sid"].as_str().unwrap()).collect();
    assert_eq!(
        sids,
        [REGIONS_SID, DENIED_ACTIONS_SID, LARGEST_INSTANCES_SID]
    );
    for s in &all {
        assert_eq!(s["Effect"], "Deny", "{s}");
        assert_eq!(s["Resource"], "*", "{s}");
    }
    let denied = statement(&docs, DENIED_ACTIONS_SID);
    for action in [
        "ec2:PurchaseReservedInstancesOffering",
        "savingsplans:CreateSavingsPlan",
        "aws-marketplace:Subscribe",
        "organizations:LeaveOrganization",
        "account:PutAlternateContact",
        "supportplans:StartSupportPlanUpdate",
    ] {
        assert!(
            denied["Action"]
                .as_array()
                .unwrap()
                .contains(&json!(action)),
            "{action}"
        );
    }
    assert!(
        !denied["Action"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().starts_with("support:")),
        "support cases stay open"
    );
    let largest = statement(&docs, LARGEST_INSTANCES_SID);
    assert_eq!(largest["Action"], "ec2:RunInstances");
    let types = &largest["Condition"]["StringLike"]["ec2:InstanceType"];
    assert!(
        types.as_array().unwrap().contains(&json!("p5.*")),
        "{types}"
    );
    assert!(types.as_array().unwrap().contains(&json!("u-*")), "{types}");
}

#[test]
fn the_region_rule_denies_other_regions_but_global_services() {
    let docs = with_regions(&["eu-west-1"]).policies().unwrap();
    let regions = statement(&docs, REGIONS_SID);
    assert!(regions.get("Action").is_none(), "NotAction, not Action");
    assert_eq!(regions["NotAction"], json!(GLOBAL_SERVICE_ACTIONS));
    for global in [
        "iam:*",
        "organizations:*",
        "sts:*",
        "route53:*",
        "cloudfront:*",
        "support:*",
        "budgets:*",
        "ce:*",
        "health:*",
    ] {
        assert!(GLOBAL_SERVICE_ACTIONS.contains(&global), "{global}");
    }
    assert_eq!(
        regions["Condition"]["StringNotEquals"],
        json!({"aws:RequestedRegion": ["eu-west-1"]})
    );
    // No regions, no region rule.
    let docs = guardrails(GuardrailSettings::default()).policies().unwrap();
    assert!(statements(&docs).iter().all(|s| s["Sid"] != REGIONS_SID));
}

#[test]
fn every_statement_exempts_the_roles_a_freeze_exempts() {
    let mut e = exemptions();
    e.control_tower = true;
    let g = Guardrails::new(
        GuardrailSettings {
            regions: vec!["us-east-1".into()],
            ..GuardrailSettings::default()
        },
        e.clone(),
    )
    .unwrap();
    let freeze: Value = serde_json::from_str(&e.policy().unwrap()).unwrap();
    let expected = &freeze["Statement"][0]["Condition"]["ArnNotLike"];
    assert_eq!(
        expected["aws:PrincipalArn"],
        json!([
            "arn:aws:iam::*:role/break-glass",
            "arn:aws:iam::*:role/purser-lambda-throttle",
            "arn:aws:iam::*:role/stacksets-exec-*",
            "arn:aws:iam::*:role/AWSControlTowerExecution"
        ])
    );
    let all = statements(&g.policies().unwrap());
    assert_eq!(all.len(), 3);
    for s in all {
        assert_eq!(&s["Condition"]["ArnNotLike"], expected, "{s}");
    }
    // A wildcard break-glass role is refused here as for the freeze.
    let mut bad = exemptions();
    bad.break_glass_roles = vec!["admin*".into()];
    let err = Guardrails::new(GuardrailSettings::default(), bad).unwrap_err();
    assert_eq!(err.field(), Some("break_glass_roles"));
}

#[test]
fn malformed_entries_are_refused_by_field() {
    let cases = [
        (
            GuardrailSettings {
                regions: vec!["Europe".into()],
                ..GuardrailSettings::default()
            },
            "regions",
        ),
        (
            GuardrailSettings {
                denied_actions: vec!["*".into()],
                ..GuardrailSettings::default()
            },
            "denied_actions",
        ),
        (
            GuardrailSettings {
                denied_actions: vec!["ec2 RunInstances".into()],
                ..GuardrailSettings::default()
            },
            "denied_actions",
        ),
        (
            GuardrailSettings {
                denied_instance_types: vec!["P5.48XLARGE".into()],
                ..GuardrailSettings::default()
            },
            "denied_instance_types",
        ),
    ];
    for (settings, field) in cases {
        let err = Guardrails::new(settings, exemptions()).unwrap_err();
        assert_eq!(err.field(), Some(field), "{err}");
    }
    for region in [
        "us-east-1",
        "ap-southeast-2",
        "us-gov-west-1",
        "eu-central-2",
    ] {
        assert!(is_region(region), "{region}");
    }
    for bad in ["us-east", "useast1", "us-East-1", "-east-1", "us--1"] {
        assert!(!is_region(bad), "{bad}");
    }
}

#[test]
fn settings_come_from_comma_lists_with_defaults_when_unset() {
    let s = GuardrailSettings::from_lists(Some("eu-west-1, eu-central-1"), None, Some(""));
    assert_eq!(s.regions, ["eu-west-1", "eu-central-1"]);
    assert_eq!(s.denied_actions, owned(DEFAULT_DENIED_ACTIONS));
    assert!(s.denied_instance_types.is_empty());
    assert_eq!(
        GuardrailSettings::from_lists(None, None, None),
        GuardrailSettings::default()
    );
}

#[test]
fn nothing_to_deny_is_no_policy() {
    let g = guardrails(GuardrailSettings {
        regions: vec![],
        denied_actions: vec![],
        denied_instance_types: vec![],
    });
    assert!(g.is_empty());
    assert_eq!(g.policies().unwrap(), Vec::<String>::new());
}

#[test]
fn a_template_s_regions_replace_the_deployment_s() {
    let deployment = with_regions(&["eu-west-1", "eu-central-1"]);
    let hackathon = deployment.for_regions(&["eu-west-1".into()]).unwrap();
    assert_eq!(hackathon.settings().regions, ["eu-west-1"]);
    assert_eq!(
        hackathon.settings().denied_actions,
        deployment.settings().denied_actions
    );
    assert_eq!(deployment.for_regions(&[]).unwrap(), deployment);
    assert!(deployment.for_regions(&["mars-1".into()]).is_err());
    let only = hackathon.only_regions();
    let docs = only.policies().unwrap();
    assert_eq!(
        statements(&docs)
            .iter()
            .map(|s| s["Sid"].clone())
            .collect::<Vec<_>>(),
        [REGIONS_SID]
    );
}

#[test]
fn a_long_deny_list_is_split_over_documents_within_the_limit() {
    // 250 actions of about 40 characters: more than one document holds.
    let actions: Vec<String> = (0..250)
        .map(|i| format!("service{i:03}:SomeRatherLongActionName{i:04}"))
        .collect();
    let g = guardrails(GuardrailSettings {
        regions: vec!["eu-west-1".into()],
        denied_actions: actions.clone(),
        ..GuardrailSettings::default()
    });
    let docs = g.policies().unwrap();
    assert!(
        docs.len() > 1 && docs.len() <= MAX_GUARDRAIL_POLICIES,
        "{}",
        docs.len()
    );
    for doc in &docs {
        assert!(
            doc.chars().count() <= MAX_POLICY_CHARS,
            "{}",
            doc.chars().count()
        );
        let value: Value = serde_json::from_str(doc).unwrap();
        let sids: Vec<&str> = value["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap())
            .collect();
        let mut unique = sids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            sids.len(),
            "Sids are unique in a document: {sids:?}"
        );
    }
    // Every action is denied exactly once, in order; every statement is exempt.
    let all = statements(&docs);
    let denied: Vec<String> = all
        .iter()
        .filter(|s| s["Sid"].as_str().unwrap().starts_with(DENIED_ACTIONS_SID))
        .flat_map(|s| s["Action"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(denied, actions);
    assert!(all.iter().all(|s| s["Condition"]["ArnNotLike"].is_object()));
    let names = g.named_policies("ou").unwrap();
    assert_eq!(names[0].0, "purser-guardrail-ou-1");
    assert_eq!(names[1].0, "purser-guardrail-ou-2");
}

#[test]
fn a_deny_list_beyond_what_a_target_takes_is_refused_naming_it() {
    let actions: Vec<String> = (0..1000)
        .map(|i| format!("service{i:04}:SomeRatherLongActionName{i:04}"))
        .collect();
    let err = guardrails(GuardrailSettings {
        denied_actions: actions,
        ..GuardrailSettings::default()
    })
    .policies()
    .unwrap_err();
    assert_eq!(err.field(), Some("denied_actions"), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("shorten denied_actions (1000 entries"),
        "{text}"
    );
    assert!(
        text.contains(&format!("a target takes {MAX_GUARDRAIL_POLICIES}")),
        "{text}"
    );
    assert_eq!(MAX_GUARDRAIL_POLICIES, 3);
    let as_validation: crate::ValidationError = err.into();
    assert_eq!(as_validation.field.as_deref(), Some("denied_actions"));
}

#[test]
fn a_region_rule_too_long_for_one_document_is_refused_not_split() {
    // 400 made-up but well-formed regions: the NotAction cannot be split.
    let word = |i: usize| -> String {
        format!("{i:03}")
            .bytes()
            .map(|d| char::from(b'a' + (d - b'0')))
            .collect()
    };
    let regions: Vec<String> = (0..400)
        .map(|i| format!("xx-somewhere{}-1", word(i)))
        .collect();
    let err = guardrails(GuardrailSettings {
        regions,
        ..GuardrailSettings::default()
    })
    .policies()
    .unwrap_err();
    assert_eq!(err.field(), Some("regions"), "{err}");
    assert!(err.to_string().contains("name fewer regions"), "{err}");
}
