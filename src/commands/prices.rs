//! `purser prices update --from FILE`: rebuild the usage price table
//! (`infra/prices.json`'s `usage` section) from AWS Price List bulk offer
//! files, offline.
//!
//! A bulk file is `https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/<offer>/current/<region>/index.json`.
//! What is taken, on-demand only, each price in force from its term's
//! effective date:
//!
//! - AmazonEC2: Linux, shared tenancy, no pre-installed software, capacity
//!   used (`BoxUsage:<type>`), and NAT gateways' hours and bytes;
//! - AmazonECS: Fargate's vCPU-hours and GB-hours, x86 and ARM (Linux);
//! - AmazonSageMaker: training and hosting instances;
//! - AmazonBedrock: on-demand input and output tokens of the models whose
//!   CloudWatch `ModelId` Purser knows ([`BEDROCK_MODELS`]);
//! - AmazonApiGateway (REST and HTTP requests), AmazonDynamoDB (on-demand
//!   read and write request units), AWSStepFunctions (state transitions):
//!   the first paid tier.
//!
//! Entries for other services, regions and usage types, and older
//! versions, are kept; a price equal to the one in force adds no version.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use chrono::NaiveDate;
use purser_core::spend::{
    API_GATEWAY_HTTP_REQUEST, API_GATEWAY_REST_REQUEST, DYNAMODB_READ_REQUEST_UNITS,
    DYNAMODB_WRITE_REQUEST_UNITS, LambdaPrices, NAT_GATEWAY_BYTES, NAT_GATEWAY_HOURS,
    STEP_FUNCTIONS_STATE_TRANSITION, Service, Unit, UsagePrice, UsagePrices, bedrock_usage_type,
};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use crate::cli::PricesUpdateArgs;
use crate::output::{println, table_right};

/// The Price List's Bedrock model names, and the `ModelId`s CloudWatch
/// gives the same model. Compared ignoring case, spaces and punctuation.
pub const BEDROCK_MODELS: &[(&str, &[&str])] = &[
    (
        "Claude 3.5 Sonnet",
        &["anthropic.claude-3-5-sonnet-20240620-v1:0"],
    ),
    (
        "Claude 3.5 Sonnet v2",
        &["anthropic.claude-3-5-sonnet-20241022-v2:0"],
    ),
    (
        "Claude 3 Haiku",
        &["anthropic.claude-3-haiku-20240307-v1:0"],
    ),
    ("Titan Text G1 - Express", &["amazon.titan-text-express-v1"]),
    ("Titan Text G1 - Lite", &["amazon.titan-text-lite-v1"]),
    ("Llama 3 70B Instruct", &["meta.llama3-70b-instruct-v1:0"]),
    ("Llama 3 8B Instruct", &["meta.llama3-8b-instruct-v1:0"]),
];

pub fn update(args: PricesUpdateArgs) -> anyhow::Result<()> {
    let mut found = Vec::new();
    let mut skipped: HashMap<String, usize> = HashMap::new();
    for path in &args.from {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--from: cannot read {}", path.display()))?;
        let offer: Offer = serde_json::from_str(&text).with_context(|| {
            format!("--from: {} is not a Price List offer file", path.display())
        })?;
        let extracted = extract(&offer, &args.region);
        eprintln!(
            "{}: {} ({}), {} prices",
            path.display(),
            offer.offer_code,
            offer
                .publication_date
                .as_deref()
                .unwrap_or("no publication date"),
            extracted.prices.len()
        );
        found.extend(extracted.prices);
        for reason in extracted.skipped {
            *skipped.entry(reason).or_default() += 1;
        }
    }
    let text = std::fs::read_to_string(&args.to)
        .with_context(|| format!("--to: cannot read {}", args.to.display()))?;
    let (rewritten, changes) = rewrite(&text, found)?;
    if changes.iter().all(|c| c.kind == Change::Unchanged) && rewritten == text {
        println(format!("{} is up to date", args.to.display()))?;
    } else {
        std::fs::write(&args.to, &rewritten)
            .with_context(|| format!("--to: cannot write {}", args.to.display()))?;
    }
    print_changes(&changes, &args.to)?;
    let mut skipped: Vec<_> = skipped.into_iter().collect();
    skipped.sort();
    for (reason, n) in skipped {
        eprintln!("skipped {n}: {reason}");
    }
    Ok(())
}

// ------------------------------------------------------------ the offer file

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Offer {
    offer_code: String,
    #[serde(default)]
    publication_date: Option<String>,
    products: HashMap<String, Product>,
    terms: Terms,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Product {
    #[serde(default)]
    product_family: Option<String>,
    #[serde(default)]
    attributes: Attributes,
}

/// Only the attributes Purser filters on (an EC2 file has dozens more).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Attributes {
    usagetype: Option<String>,
    region_code: Option<String>,
    operating_system: Option<String>,
    tenancy: Option<String>,
    pre_installed_sw: Option<String>,
    capacitystatus: Option<String>,
    license_model: Option<String>,
    model: Option<String>,
    inference_type: Option<String>,
    feature: Option<String>,
}

#[derive(Deserialize)]
struct Terms {
    #[serde(rename = "OnDemand", default)]
    on_demand: HashMap<String, HashMap<String, Term>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Term {
    effective_date: String,
    price_dimensions: HashMap<String, Dimension>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Dimension {
    unit: String,
    price_per_unit: HashMap<String, String>,
    #[serde(default)]
    begin_range: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

struct Extracted {
    prices: Vec<UsagePrice>,
    /// Why products that looked like ours were left out.
    skipped: Vec<String>,
}

/// What a product is in Purser's table: its service, usage type and unit.
struct Mapped {
    service: Service,
    usage_types: Vec<String>,
    unit: Unit,
}

/// The usage type without its region prefix (`USE1-`, `EUW2-`, `EU-`):
/// upper-case letters with a digit, or `EU`. `IA-` (DynamoDB's infrequent
/// access class) is not a region.
fn without_region_prefix(usage_type: &str) -> &str {
    match usage_type.split_once('-') {
        Some((prefix, rest))
            if prefix == "EU"
                || ((2..=5).contains(&prefix.len())
                    && prefix.bytes().any(|b| b.is_ascii_digit())
                    && prefix
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())) =>
        {
            rest
        }
        _ => usage_type,
    }
}

fn normalised(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Which of the offer's products Purser prices, or `Err(reason)` for one it
/// would but cannot, or `Ok(None)` for one it never prices.
fn map(offer_code: &str, product: &Product) -> Result<Option<Mapped>, String> {
    let a = &product.attributes;
    let Some(usage_type) = a.usagetype.as_deref().map(without_region_prefix) else {
        return Ok(None);
    };
    let is = |v: &Option<String>, want: &str| v.as_deref() == Some(want);
    let one = |service, usage_type: &str, unit| {
        Ok(Some(Mapped {
            service,
            usage_types: vec![usage_type.to_string()],
            unit,
        }))
    };
    match offer_code {
        "AmazonEC2" => match usage_type {
            NAT_GATEWAY_HOURS => one(Service::NatGateway, usage_type, Unit::Hour),
            NAT_GATEWAY_BYTES => one(Service::NatGateway, usage_type, Unit::Gb),
            u if u.starts_with("BoxUsage:")
                && is(&product.product_family, "Compute Instance")
                && is(&a.operating_system, "Linux")
                && is(&a.tenancy, "Shared")
                && is(&a.pre_installed_sw, "NA")
                && is(&a.capacitystatus, "Used")
                && a.license_model
                    .as_deref()
                    .is_none_or(|l| l == "No License required") =>
            {
                one(Service::Ec2, u, Unit::Hour)
            }
            _ => Ok(None),
        },
        "AmazonECS" => match usage_type {
            "Fargate-vCPU-Hours:perCPU" | "Fargate-ARM-vCPU-Hours:perCPU" => {
                one(Service::Fargate, usage_type, Unit::VcpuHour)
            }
            "Fargate-GB-Hours" | "Fargate-ARM-GB-Hours" => {
                one(Service::Fargate, usage_type, Unit::GbHour)
            }
            _ => Ok(None),
        },
        "AmazonSageMaker" => match usage_type.split_once(':') {
            Some(("Train" | "Host", instance))
                if instance.starts_with("ml.")
                    && instance
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.') =>
            {
                one(Service::Sagemaker, usage_type, Unit::Hour)
            }
            _ => Ok(None),
        },
        c if c.starts_with("AmazonBedrock") => {
            if a.feature
                .as_deref()
                .is_some_and(|f| f != "On-demand Inference")
            {
                return Ok(None);
            }
            let output = match a.inference_type.as_deref() {
                Some("Input tokens") => false,
                Some("Output tokens") => true,
                _ => return Ok(None),
            };
            let model = a.model.as_deref().unwrap_or_default();
            let ids = BEDROCK_MODELS
                .iter()
                .find(|(name, _)| normalised(name) == normalised(model))
                .map(|(_, ids)| *ids)
                .ok_or_else(|| format!("Bedrock model {model:?} has no known ModelId"))?;
            Ok(Some(Mapped {
                service: Service::Bedrock,
                usage_types: ids
                    .iter()
                    .map(|id| bedrock_usage_type(id, output))
                    .collect(),
                unit: Unit::ThousandTokens,
            }))
        }
        "AmazonApiGateway" => match usage_type {
            API_GATEWAY_REST_REQUEST | API_GATEWAY_HTTP_REQUEST => {
                one(Service::ApiGateway, usage_type, Unit::Request)
            }
            _ => Ok(None),
        },
        "AmazonDynamoDB" => match usage_type {
            DYNAMODB_READ_REQUEST_UNITS | DYNAMODB_WRITE_REQUEST_UNITS => {
                one(Service::Dynamodb, usage_type, Unit::RequestUnit)
            }
            _ => Ok(None),
        },
        "AWSStepFunctions" => match usage_type {
            STEP_FUNCTIONS_STATE_TRANSITION => {
                one(Service::StepFunctions, usage_type, Unit::StateTransition)
            }
            _ => Ok(None),
        },
        _ => Ok(None),
    }
}

/// How many of the Price List's `unit` make one of ours, or `None` when it
/// is not a unit the usage type can be in (then the product is skipped,
/// never priced in the wrong unit).
fn units_per(unit: Unit, price_list_unit: &str) -> Option<Decimal> {
    let u = normalised(price_list_unit);
    let ok = match unit {
        Unit::Hour => matches!(u.as_str(), "hrs" | "hours" | "hour"),
        Unit::VcpuHour => matches!(u.as_str(), "hrs" | "hours" | "vcpuhours"),
        Unit::GbHour => matches!(u.as_str(), "gbhours" | "gbhour"),
        Unit::Gb => u == "gb",
        Unit::Request => matches!(u.as_str(), "requests" | "request"),
        Unit::RequestUnit => u.ends_with("requestunits") || u.ends_with("requestunit"),
        Unit::StateTransition => u.starts_with("statetransition"),
        Unit::ThousandTokens => {
            return match u.as_str() {
                "1ktokens" => Some(Decimal::ONE),
                "1mtokens" => Some(Decimal::from(1000)),
                _ => None,
            };
        }
    };
    ok.then_some(Decimal::ONE)
}

fn extract(offer: &Offer, regions: &[String]) -> Extracted {
    let mut prices = Vec::new();
    let mut skipped = Vec::new();
    for (sku, product) in &offer.products {
        let mapped = match map(&offer.offer_code, product) {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(reason) => {
                skipped.push(reason);
                continue;
            }
        };
        let Some(region) = product.attributes.region_code.clone() else {
            skipped.push(format!(
                "{} products without a regionCode",
                offer.offer_code
            ));
            continue;
        };
        if !regions.is_empty() && !regions.contains(&region) {
            continue;
        }
        let Some(terms) = offer.terms.on_demand.get(sku) else {
            skipped.push(format!(
                "{} products without an on-demand term",
                offer.offer_code
            ));
            continue;
        };
        for term in terms.values() {
            match price_of(term, mapped.unit) {
                Ok((effective, price, description)) => {
                    for usage_type in &mapped.usage_types {
                        prices.push(UsagePrice {
                            service: mapped.service,
                            region: region.clone(),
                            usage_type: usage_type.clone(),
                            unit: mapped.unit,
                            price,
                            currency: "USD".into(),
                            effective,
                            description: description.clone(),
                        });
                    }
                }
                Err(reason) => skipped.push(format!("{}: {reason}", mapped.usage_types[0])),
            }
        }
    }
    Extracted { prices, skipped }
}

/// A term's effective day and its first paid tier (the free tier, where a
/// term lists one, is an account's monthly allowance, not a price).
fn price_of(term: &Term, unit: Unit) -> Result<(NaiveDate, Decimal, Option<String>), String> {
    let day = term.effective_date.get(..10).unwrap_or_default();
    let effective = NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|_| format!("effectiveDate {:?} is not a date", term.effective_date))?;
    let mut tiers = Vec::new();
    for d in term.price_dimensions.values() {
        let per = units_per(unit, &d.unit)
            .ok_or_else(|| format!("unit {:?} is not per {unit}", d.unit))?;
        let usd = d.price_per_unit.get("USD").ok_or("no USD price")?;
        let price: Decimal = usd
            .parse()
            .map_err(|_| format!("USD price {usd:?} is not a number"))?;
        let begin: f64 = d
            .begin_range
            .as_deref()
            .unwrap_or("0")
            .parse()
            .unwrap_or(0.0);
        tiers.push((begin, (price / per).normalize(), d.description.clone()));
    }
    tiers.sort_by(|a, b| a.0.total_cmp(&b.0));
    tiers
        .into_iter()
        .find(|(_, price, _)| !price.is_zero())
        .map(|(_, price, description)| (effective, price, description))
        .ok_or_else(|| "no paid price".to_string())
}

// ------------------------------------------------------------ the table

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    New,
    Changed,
    Unchanged,
}

struct Changed {
    kind: Change,
    old: Option<Decimal>,
    price: UsagePrice,
}

type Key = (Service, String, String);

fn key(p: &UsagePrice) -> Key {
    (p.service, p.region.clone(), p.usage_type.clone())
}

/// Merges `found` into the table: a price equal to the version in force on
/// its date adds nothing; another adds a version (or replaces one of the
/// same date). Returns the merged entries and what each found price did.
fn merge(table: Vec<UsagePrice>, found: Vec<UsagePrice>) -> (Vec<UsagePrice>, Vec<Changed>) {
    let mut by: HashMap<Key, Vec<UsagePrice>> = HashMap::new();
    for p in table {
        by.entry(key(&p)).or_default().push(p);
    }
    let mut changes: Vec<Changed> = Vec::new();
    for p in found {
        let versions = by.entry(key(&p)).or_default();
        versions.sort_by_key(|v| v.effective);
        let in_force = versions.iter().rev().find(|v| v.effective <= p.effective);
        let old = in_force.map(|v| v.price);
        if in_force.is_some_and(|v| v.price == p.price && v.unit == p.unit) {
            changes.push(Changed {
                kind: Change::Unchanged,
                old,
                price: p,
            });
            continue;
        }
        let kind = if versions.is_empty() {
            Change::New
        } else {
            Change::Changed
        };
        versions.retain(|v| v.effective != p.effective);
        versions.push(p.clone());
        // One product seen twice (two files, two terms) reports once.
        if !changes.iter().any(|c| {
            c.kind != Change::Unchanged
                && key(&c.price) == key(&p)
                && c.price.effective == p.effective
        }) {
            changes.push(Changed {
                kind,
                old,
                price: p,
            });
        }
    }
    let mut all: Vec<UsagePrice> = by.into_values().flatten().collect();
    all.sort_by_key(|a| (key(a), a.effective));
    (all, changes)
}

/// The file with its `usage` section merged and rewritten (one entry a
/// line, sorted); every other section is kept, `lambda` in its own shape.
fn rewrite(text: &str, found: Vec<UsagePrice>) -> anyhow::Result<(String, Vec<Changed>)> {
    let mut file: serde_json::Map<String, Value> =
        serde_json::from_str(text).context("--to is not a JSON object")?;
    let table: Vec<UsagePrice> = match file.remove("usage") {
        Some(usage) => serde_json::from_value(usage).context("--to: its usage section")?,
        None => Vec::new(),
    };
    let (table, changes) = merge(table, found);
    // The result must be a table Purser loads.
    UsagePrices::from_prices(table.clone()).context("the merged table")?;
    Ok((format_file(file, &table)?, changes))
}

/// The file's sections in a fixed order, the usage entries one a line so
/// a price change is a one-line diff.
fn format_file(
    mut file: serde_json::Map<String, Value>,
    usage: &[UsagePrice],
) -> anyhow::Result<String> {
    let indent = |json: String| json.replace('\n', "\n  ");
    let mut sections = Vec::new();
    for name in ["source", "lambda", "note", "usage_source", "usage_note"] {
        let Some(value) = file.remove(name) else {
            continue;
        };
        let json = if name == "lambda" {
            // Typed, so its fields keep their order.
            let lambda: Vec<LambdaPrices> =
                serde_json::from_value(value).context("--to: its lambda section")?;
            serde_json::to_string_pretty(&lambda)?
        } else {
            serde_json::to_string_pretty(&value)?
        };
        sections.push(format!("  {:?}: {}", name, indent(json)));
    }
    let mut rest: Vec<_> = file.into_iter().collect();
    rest.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, value) in rest {
        sections.push(format!(
            "  {}: {}",
            serde_json::to_string(&name)?,
            indent(serde_json::to_string_pretty(&value)?)
        ));
    }
    let lines = usage
        .iter()
        .map(|p| Ok(format!("    {}", serde_json::to_string(p)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    sections.push(format!("  \"usage\": [\n{}\n  ]", lines.join(",\n")));
    Ok(format!("{{\n{}\n}}\n", sections.join(",\n")))
}

fn print_changes(changes: &[Changed], to: &Path) -> anyhow::Result<()> {
    let mut shown: Vec<&Changed> = changes
        .iter()
        .filter(|c| c.kind != Change::Unchanged)
        .collect();
    shown.sort_by_key(|a| (a.kind, key(&a.price)));
    let count = |k| changes.iter().filter(|c| c.kind == k).count();
    if !shown.is_empty() {
        let rows = shown
            .iter()
            .map(|c| {
                vec![
                    match c.kind {
                        Change::New => "new",
                        Change::Changed => "changed",
                        Change::Unchanged => "unchanged",
                    }
                    .into(),
                    c.price.service.to_string(),
                    c.price.region.clone(),
                    c.price.usage_type.clone(),
                    c.price.unit.to_string(),
                    c.old.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                    c.price.price.to_string(),
                    c.price.effective.to_string(),
                ]
            })
            .collect();
        println(table_right(
            &[
                "CHANGE",
                "SERVICE",
                "REGION",
                "USAGE TYPE",
                "UNIT",
                "OLD",
                "NEW",
                "EFFECTIVE",
            ],
            rows,
            &[5, 6],
        ))?;
    }
    println(format!(
        "{}: {} new, {} changed, {} unchanged",
        to.display(),
        count(Change::New),
        count(Change::Changed),
        count(Change::Unchanged)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::str::FromStr;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/price-list");
    const BUILTIN: &str = include_str!("../../infra/prices.json");

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn fixtures() -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(FIXTURES)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    }

    #[test]
    fn the_shipped_table_is_in_the_form_the_command_writes() {
        let (text, changes) = rewrite(BUILTIN, Vec::new()).unwrap();
        assert!(changes.is_empty());
        assert_eq!(
            text, BUILTIN,
            "rewrite infra/prices.json with the command's layout"
        );
        // And the Lambda table still loads from it.
        purser_core::spend::PriceTable::parse(&text).unwrap();
    }

    #[test]
    fn region_prefixes_come_off_usage_types() {
        assert_eq!(
            without_region_prefix("USE1-NatGateway-Bytes"),
            "NatGateway-Bytes"
        );
        assert_eq!(
            without_region_prefix("EU-BoxUsage:m5.large"),
            "BoxUsage:m5.large"
        );
        assert_eq!(
            without_region_prefix("BoxUsage:m5.large"),
            "BoxUsage:m5.large"
        );
        assert_eq!(
            without_region_prefix("NatGateway-Hours"),
            "NatGateway-Hours"
        );
        assert_eq!(
            without_region_prefix("IA-ReadRequestUnits"),
            "IA-ReadRequestUnits"
        );
        assert_eq!(
            without_region_prefix("Fargate-ARM-GB-Hours"),
            "Fargate-ARM-GB-Hours"
        );
    }

    #[test]
    fn the_fixture_offers_update_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let to = dir.path().join("prices.json");
        // An older g5.xlarge price, so the fixture's changes it; a service
        // the fixtures do not cover, which stays.
        let table = BUILTIN.replace(
            r#""usage_type":"BoxUsage:g5.xlarge","unit":"hour","price":"1.006""#,
            r#""usage_type":"BoxUsage:g5.xlarge","unit":"hour","price":"1.2""#,
        );
        assert_ne!(table, BUILTIN);
        std::fs::write(&to, &table).unwrap();
        let found: Vec<UsagePrice> = fixtures()
            .iter()
            .flat_map(|f| {
                let offer: Offer =
                    serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
                extract(&offer, &[]).prices
            })
            .collect();
        let (text, changes) = rewrite(&table, found).unwrap();
        let prices = UsagePrices::parse(&text).unwrap();
        let on = |s| NaiveDate::from_str(s).unwrap();
        let price = |service, usage_type: &str, day| {
            prices
                .price(service, "us-east-1", usage_type, on(day))
                .map(|p| p.price)
        };
        // Changed from the fixture's effective date; the old price stays before it.
        assert_eq!(
            price(Service::Ec2, "BoxUsage:g5.xlarge", "2026-01-01"),
            Some(d("1.006"))
        );
        assert_eq!(
            price(Service::Ec2, "BoxUsage:g5.xlarge", "2024-06-01"),
            Some(d("1.2"))
        );
        // New: an instance type the table lacked; Windows, dedicated and
        // reserved-capacity products are not taken.
        assert_eq!(
            price(Service::Ec2, "BoxUsage:g6.xlarge", "2026-01-01"),
            Some(d("0.8048"))
        );
        assert_eq!(
            prices
                .entries()
                .iter()
                .filter(|p| p.usage_type == "BoxUsage:g6.xlarge")
                .count(),
            1
        );
        assert_eq!(
            price(Service::NatGateway, "NatGateway-Bytes", "2026-01-01"),
            Some(d("0.045"))
        );
        assert_eq!(
            price(Service::Fargate, "Fargate-ARM-GB-Hours", "2026-01-01"),
            Some(d("0.00356"))
        );
        assert_eq!(
            price(Service::Sagemaker, "Host:ml.g5.xlarge", "2026-01-01"),
            Some(d("1.408"))
        );
        assert_eq!(
            price(
                Service::Bedrock,
                "OutputTokens:anthropic.claude-3-haiku-20240307-v1:0",
                "2026-01-01"
            ),
            Some(d("0.00125"))
        );
        // The first paid tier, not the free one.
        assert_eq!(
            price(Service::StepFunctions, "StateTransition", "2026-01-01"),
            Some(d("0.000025"))
        );
        assert_eq!(
            price(Service::ApiGateway, "ApiGatewayHttpRequest", "2026-01-01"),
            Some(d("0.000001"))
        );
        // Read: the builtin's two versions plus nothing (same price in force).
        assert_eq!(
            price(Service::Dynamodb, "ReadRequestUnits", "2026-01-01"),
            Some(d("0.000000125"))
        );
        let kinds = |k| changes.iter().filter(|c| c.kind == k).count();
        assert_eq!(kinds(Change::Changed), 1, "g5.xlarge");
        assert!(kinds(Change::New) >= 1);
        assert!(kinds(Change::Unchanged) >= 8);
        // Kept: the Lambda section and everything the fixtures do not cover.
        assert!(text.contains(r#""per_gb_second_arm64": "0.0000133334""#));
        assert_eq!(
            price(Service::Ec2, "BoxUsage:p4d.24xlarge", "2026-01-01"),
            Some(d("32.7726"))
        );
        // Running it again changes nothing.
        let again: Vec<UsagePrice> = Vec::new();
        assert_eq!(rewrite(&text, again).unwrap().0, text);
    }

    #[test]
    fn the_command_writes_the_table_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let to = dir.path().join("prices.json");
        std::fs::write(&to, BUILTIN).unwrap();
        update(PricesUpdateArgs {
            from: fixtures(),
            to: to.clone(),
            region: vec!["us-east-1".into()],
        })
        .unwrap();
        let text = std::fs::read_to_string(&to).unwrap();
        assert!(text.contains("BoxUsage:g6.xlarge"));
        let missing = PricesUpdateArgs {
            from: vec![dir.path().join("nope.json")],
            to,
            region: vec![],
        };
        assert!(update(missing).unwrap_err().to_string().contains("--from"));
    }

    #[test]
    fn a_unit_that_does_not_match_is_skipped_not_priced() {
        assert_eq!(units_per(Unit::Hour, "Hrs"), Some(Decimal::ONE));
        assert_eq!(
            units_per(Unit::ThousandTokens, "1M tokens"),
            Some(Decimal::from(1000))
        );
        assert_eq!(units_per(Unit::Gb, "Hrs"), None);
        assert_eq!(units_per(Unit::Request, "GB"), None);
    }
}
