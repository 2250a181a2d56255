//! A generated lake, for tests and demos: realistic invocation, deployment,
//! usage, lease and CUR records of several teams, accounts, regions and
//! days (one account lent to a second team mid-month), written as
//! the local lake sink writes them (`<data-dir>/lake/<table>/dt=…/*.json`),
//! with some records delivered twice, as Firehose and EventBridge may.
//!
//! The generator keeps what it wrote, so a test can compute what each
//! named query must answer without SQL.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use purser_core::lake::{
    DeploymentRecord, InvocationRecord, LAKE_SCHEMA_VERSION, LeaseRecord, UsageRecord, timestamp,
};

/// One line of the CUR 2.0 export (the columns the queries use).
#[derive(Debug, Clone, PartialEq)]
pub struct CurLine {
    pub account_id: String,
    pub product_code: String,
    /// `line_item_usage_type`, where the product needs it told apart.
    pub usage_type: Option<String>,
    pub usage_start: DateTime<Utc>,
    pub unblended_cost: f64,
}

/// What the generator wrote.
#[derive(Debug, Clone, Default)]
pub struct Lake {
    /// `(account_id, team)` of Purser's registry.
    pub accounts: Vec<(String, String)>,
    /// Every invocation, once (the files hold some of them twice).
    pub invocations: Vec<InvocationRecord>,
    /// Every deployment record, once (likewise).
    pub deployments: Vec<DeploymentRecord>,
    pub cur: Vec<CurLine>,
    /// Every usage record beyond Lambda, once (likewise); some unpriced.
    pub usage: Vec<UsageRecord>,
    /// Every lease record (see [`LEASES`]); the files hold some twice, and
    /// one lease's end told twice, later the second time.
    pub leases: Vec<LeaseRecord>,
    /// Records written more than once.
    pub duplicates: usize,
}

/// A small deterministic generator (SplitMix64): the same seed, the same lake.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// In `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The accounts: four of three teams in the registry, and one the
/// registry does not know (its records have no team).
pub const ACCOUNTS: [(&str, Option<&str>); 5] = [
    ("111111111111", Some("web")),
    ("222222222222", Some("web")),
    ("333333333333", Some("pay")),
    ("444444444444", Some("data")),
    ("555555555555", None),
];

/// A lease of the fixture: (lease id, account, team, template, started,
/// ended).
pub type Lease = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    Option<&'static str>,
);

/// The lease history. 111111111111's only lease starts after its first records (which
/// are that lease's all the same); 444444444444 was web's, cleaned and
/// cooled, then lent to data mid-day on 2026-11-15 (the registry names
/// data, its newest holder); 333333333333 has no lease in the lake (as an
/// account made before leases were exported: the registry's team).
pub const LEASES: [Lease; 4] = [
    (
        "r-web-1",
        "111111111111",
        "web",
        Some("sandbox"),
        "2026-11-01T12:00:00.000Z",
        None,
    ),
    (
        "r-web-2",
        "222222222222",
        "web",
        None,
        "2026-10-01T08:00:00.000Z",
        None,
    ),
    (
        "r-web-4",
        "444444444444",
        "web",
        Some("sandbox"),
        "2026-10-01T09:00:00.000Z",
        Some("2026-11-02T09:00:00.000Z"),
    ),
    (
        "r-data-4",
        "444444444444",
        "data",
        Some("sandbox"),
        "2026-11-15T13:30:00.000Z",
        None,
    ),
];

/// The lease of `LEASES` that covers `account` at `at` (RFC 3339 with
/// milliseconds, as the lake writes it): the latest started at or before
/// it, or the account's first lease for a time before all of them.
pub fn lease_at(account: &str, at: &str) -> Option<(&'static str, &'static str)> {
    let mut leases: Vec<_> = LEASES.iter().filter(|l| l.1 == account).collect();
    leases.sort_by_key(|l| (l.4, l.0));
    let first = leases.first()?;
    let covering = leases.iter().rev().find(|l| l.4 <= at).unwrap_or(first);
    Some((covering.0, covering.2))
}

/// The team a record of `account` at `at` is made for: its lease's, or
/// the registry's for an account with no lease.
fn team_at(account: &str, registry: Option<&str>, at: &str) -> Option<String> {
    lease_at(account, at)
        .map(|(_, team)| team)
        .or(registry)
        .map(String::from)
}

/// Usage beyond Lambda: (service, resource, usage type, unit, price per
/// unit); a model with no price is unpriced usage.
const USAGE: [(&str, &str, &str, &str, Option<f64>); 4] = [
    (
        "bedrock",
        "anthropic.claude-3-haiku-20240307-v1:0",
        "OutputTokens:anthropic.claude-3-haiku-20240307-v1:0",
        "1k-tokens",
        Some(0.001_25),
    ),
    (
        "nat_gateway",
        "nat-0a1b2c3d4e5f67890",
        "NatGateway-Bytes",
        "gb",
        Some(0.045),
    ),
    (
        "dynamodb",
        "orders",
        "WriteRequestUnits",
        "request-unit",
        Some(0.000_000_625),
    ),
    (
        "bedrock",
        "us.anthropic.claude-future-v9:0",
        "OutputTokens:us.anthropic.claude-future-v9:0",
        "1k-tokens",
        None,
    ),
];

/// The CUR's products of each account and day, with their usage types.
const CUR_PRODUCTS: [(&str, Option<&str>); 6] = [
    ("AWSLambda", Some("USE1-Lambda-GB-Second")),
    ("AmazonS3", Some("USE1-TimedStorage-ByteHrs")),
    ("AmazonDynamoDB", Some("USE1-WriteRequestUnits")),
    ("AmazonEC2", Some("USE1-BoxUsage:g5.xlarge")),
    ("AmazonEC2", Some("USE1-NatGateway-Bytes")),
    ("AmazonEC2", Some("USE1-EBS:VolumeUsage.gp3")),
];

/// The service Purser streams a CUR line as (cur_cost_per_account_day's
/// mapping), or `(other)`.
pub fn cur_service(product: &str, usage_type: Option<&str>) -> &'static str {
    let usage = usage_type.unwrap_or_default();
    match product {
        "AWSLambda" => "lambda",
        "AmazonBedrock" => "bedrock",
        "AmazonEC2" if usage.contains("NatGateway-Bytes") => "nat_gateway",
        "AmazonEC2" if usage.contains("BoxUsage") => "ec2",
        "AmazonECS" if usage.contains("Fargate") => "fargate",
        "AmazonSageMaker" => "sagemaker",
        "AmazonApiGateway" => "api_gateway",
        "AmazonDynamoDB" if usage.contains("RequestUnits") => "dynamodb",
        "AWSStepFunctions" => "step_functions",
        _ => "(other)",
    }
}

/// The functions of each account: (region, name, architecture, memory).
const FUNCTIONS: [(&str, &str, &str, u32); 4] = [
    ("us-east-1", "api", "arm64", 512),
    ("us-east-1", "worker", "x86_64", 1024),
    ("eu-west-1", "api", "arm64", 256),
    ("us-east-1", "cron", "x86_64", 128),
];

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a valid day")
}

fn at(day: NaiveDate, ms: u64) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).expect("midnight").and_utc() + Duration::milliseconds(ms as i64)
}

/// The days with invocations: across the ends of October and November.
pub fn days() -> Vec<NaiveDate> {
    [
        "2026-10-30",
        "2026-10-31",
        "2026-11-01",
        "2026-11-02",
        "2026-11-03",
        "2026-11-15",
        "2026-11-29",
        "2026-11-30",
        "2026-12-01",
    ]
    .into_iter()
    .map(day)
    .collect()
}

/// Lambda's us-east-1 price: per GB-s by architecture, and per request.
fn cost(architecture: &str, billed_ms: u64, memory_mb: u32) -> f64 {
    let per_gb_s = if architecture == "arm64" {
        0.000_013_333_4
    } else {
        0.000_016_666_7
    };
    billed_ms as f64 / 1000.0 * memory_mb as f64 / 1024.0 * per_gb_s + 0.000_000_2
}

impl Lake {
    /// Generates a lake from `seed`, writes it under `<data_dir>/lake/`
    /// (invocations, deployments, and cur when `with_cur`) and returns it.
    pub fn generate(data_dir: &Path, seed: u64, with_cur: bool) -> std::io::Result<Self> {
        let mut rng = Rng(seed);
        let mut lake = Lake {
            accounts: ACCOUNTS
                .iter()
                .filter_map(|(id, team)| team.map(|t| (id.to_string(), t.to_string())))
                .collect(),
            ..Lake::default()
        };

        // Deployments: per account, some before every invocation, some
        // between them, some after; CI and CloudFormation; successes and
        // failures. The last account has none.
        for (a, (account, team)) in ACCOUNTS.iter().enumerate().take(4) {
            let mut when = at(day("2026-10-29"), 3_600_000 * (a as u64 + 1));
            if a == 3 {
                // Its first deployment comes after its first invocations.
                when = at(day("2026-11-01"), 43_200_000);
            }
            let mut n = 0;
            while when < at(day("2026-12-03"), 0) {
                let ci = rng.chance(50);
                let ok = rng.chance(75);
                let took = 30 + rng.below(300);
                let stack = ["web-app", "jobs"][rng.below(2) as usize].to_string();
                let (start, end) = if ci {
                    ("STARTED", if ok { "SUCCEEDED" } else { "FAILED" })
                } else {
                    (
                        "UPDATE_IN_PROGRESS",
                        if ok {
                            "UPDATE_COMPLETE"
                        } else {
                            "UPDATE_ROLLBACK_COMPLETE"
                        },
                    )
                };
                let finished = when + Duration::seconds(took as i64);
                for (status, t, done) in [(start, when, false), (end, finished, true)] {
                    lake.deployments.push(DeploymentRecord {
                        schema_version: LAKE_SCHEMA_VERSION,
                        account_id: account.to_string(),
                        team: team_at(account, *team, &timestamp(t)),
                        region: "us-east-1".into(),
                        source: if ci { "ci" } else { "cloudformation" }.into(),
                        stack: stack.clone(),
                        status: status.into(),
                        status_reason: None,
                        commit: ci.then(|| format!("c{a}{n:03}")),
                        git_ref: ci.then(|| "main".to_string()),
                        pipeline: ci.then(|| "build".to_string()),
                        started_at: Some(timestamp(when)),
                        finished_at: done.then(|| timestamp(t)),
                        duration_s: done.then_some(took as f64),
                        timestamp: timestamp(t),
                    });
                }
                n += 1;
                when = finished + Duration::minutes(300 + rng.below(3 * 24 * 60) as i64);
            }
        }

        // Invocations: per account and day, a few of each function.
        for d in days() {
            for (a, (account, team)) in ACCOUNTS.iter().enumerate() {
                for (f, (region, name, arch, memory)) in FUNCTIONS.iter().enumerate() {
                    if (a + f) % 5 == 4 {
                        continue; // not every account has every function
                    }
                    for n in 0..rng.below(6) {
                        let billed = 1 + rng.below(3_000);
                        let ms = rng.below(86_400_000);
                        lake.invocations.push(InvocationRecord {
                            schema_version: LAKE_SCHEMA_VERSION,
                            account_id: account.to_string(),
                            team: team_at(account, *team, &timestamp(at(d, ms))),
                            region: region.to_string(),
                            function_name: name.to_string(),
                            architecture: arch.to_string(),
                            memory_mb: *memory,
                            request_id: format!("{}-{f}-{n}-{}", d.format("%m%d"), rng.next()),
                            timestamp: timestamp(at(d, ms)),
                            duration_ms: billed as f64 - 0.37,
                            billed_duration_ms: billed,
                            max_memory_used_mb: memory / 3,
                            init_duration_ms: rng.chance(15).then(|| 100.0 + rng.below(500) as f64),
                            cost_usd: cost(arch, billed, *memory),
                        });
                    }
                }
            }
        }
        // An invocation at the very millisecond of a successful deployment:
        // that deployment is live for it (at or before).
        if let Some(live) = lake
            .deployments
            .iter()
            .find(|d| d.status == "SUCCEEDED" && d.timestamp.starts_with("2026-11"))
            .cloned()
        {
            lake.invocations.push(InvocationRecord {
                schema_version: LAKE_SCHEMA_VERSION,
                account_id: live.account_id.clone(),
                team: live.team.clone(),
                region: "us-east-1".into(),
                function_name: "api".into(),
                architecture: "arm64".into(),
                memory_mb: 512,
                request_id: "at-the-deployment".into(),
                timestamp: live.timestamp.clone(),
                duration_ms: 99.5,
                billed_duration_ms: 100,
                max_memory_used_mb: 80,
                init_duration_ms: None,
                cost_usd: cost("arm64", 100, 512),
            });
        }

        if with_cur {
            for d in days() {
                for (account, _) in ACCOUNTS {
                    for (product, usage_type) in CUR_PRODUCTS {
                        lake.cur.push(CurLine {
                            account_id: account.to_string(),
                            product_code: product.to_string(),
                            usage_type: usage_type.map(String::from),
                            usage_start: at(d, 3_600_000 * rng.below(24)),
                            unblended_cost: rng.below(1_000_000) as f64 / 1_000_000.0,
                        });
                    }
                }
            }
        }

        // Usage beyond Lambda, from its own generator so the records above
        // stay what they were before usage existed.
        let mut usage_rng = Rng(seed ^ 0x5553_4147_4500_0000);
        for d in days() {
            for (account, team) in ACCOUNTS.iter() {
                for (service, resource, usage_type, unit, price) in USAGE {
                    if usage_rng.chance(40) {
                        continue;
                    }
                    let start = at(d, 60_000 * usage_rng.below(1_440));
                    let quantity = 1.0 + usage_rng.below(500) as f64;
                    let n = lake.usage.len();
                    lake.usage.push(UsageRecord {
                        schema_version: LAKE_SCHEMA_VERSION,
                        usage_id: format!("metrics-{account}-{n}"),
                        account_id: account.to_string(),
                        team: team_at(account, *team, &timestamp(start)),
                        region: "us-east-1".into(),
                        service: service.into(),
                        resource: resource.into(),
                        usage_type: usage_type.into(),
                        unit: unit.into(),
                        quantity,
                        cost_usd: price.map(|p| quantity * p),
                        timestamp: timestamp(start),
                        end_timestamp: timestamp(start + Duration::minutes(1)),
                        source: "metric_stream".into(),
                    });
                }
            }
        }

        for (lease_id, account, team, template, started, ended) in LEASES {
            let record = |event: &str, cause: &str, at: &str| LeaseRecord {
                schema_version: LAKE_SCHEMA_VERSION,
                lease_id: lease_id.into(),
                account_id: account.into(),
                team: team.into(),
                template: template.map(String::from),
                event: event.into(),
                cause: cause.into(),
                timestamp: at.into(),
            };
            lake.leases.push(record("started", "AccountReady", started));
            if let Some(ended) = ended {
                lake.leases
                    .push(record("ended", "AccountCleaningStarted", ended));
                // The pooled request closed when lent again: a later end.
                lake.leases
                    .push(record("ended", "AccountRecycled", LEASES[3].4));
            }
        }

        lake.write(data_dir, &mut rng)?;
        lake.write_usage(data_dir, &mut usage_rng)?;
        lake.write_leases(data_dir)?;
        Ok(lake)
    }

    /// Writes the records as the local sink does; about one record in six
    /// is written again (in the same file or in another sink's file of the
    /// same day), as an at-least-once delivery would.
    fn write(&mut self, data_dir: &Path, rng: &mut Rng) -> std::io::Result<()> {
        let root = data_dir.join("lake");
        let mut files: BTreeMap<std::path::PathBuf, Vec<u8>> = BTreeMap::new();
        let mut duplicates = 0;
        let mut put = |table: &str, ts: &str, line: String, rng: &mut Rng| {
            let partition = root.join(table).join(format!("dt={}", &ts[..10]));
            let mut line = line.into_bytes();
            line.push(b'\n');
            files
                .entry(partition.join("part-1-100.json"))
                .or_default()
                .extend_from_slice(&line);
            if rng.chance(17) {
                duplicates += 1;
                let again = if rng.chance(50) {
                    "part-1-100.json"
                } else {
                    "part-2-200.json"
                };
                files
                    .entry(partition.join(again))
                    .or_default()
                    .extend_from_slice(&line);
            }
        };
        for r in &self.invocations {
            put(
                "invocations",
                &r.timestamp,
                serde_json::to_string(r).expect("a record serializes"),
                rng,
            );
        }
        for r in &self.deployments {
            put(
                "deployments",
                &r.timestamp,
                serde_json::to_string(r).expect("a record serializes"),
                rng,
            );
        }
        if !self.cur.is_empty() {
            let mut lines = Vec::new();
            for c in &self.cur {
                let line = serde_json::json!({
                    "bill_billing_period_start_date": "ignored",
                    "line_item_usage_account_id": c.account_id,
                    "line_item_product_code": c.product_code,
                    "line_item_usage_type": c.usage_type,
                    "line_item_usage_start_date": c.usage_start.format("%Y-%m-%dT%H:%M:%S").to_string(),
                    "line_item_unblended_cost": c.unblended_cost,
                    "billing_period": c.usage_start.format("%Y-%m").to_string(),
                });
                writeln!(lines, "{line}")?;
            }
            files.insert(root.join("cur").join("cur-00001.json"), lines);
        }
        for (path, bytes) in files {
            std::fs::create_dir_all(path.parent().expect("a file has a folder"))?;
            std::fs::write(path, bytes)?;
        }
        self.duplicates = duplicates;
        Ok(())
    }

    /// Writes the lease records as the local sink does, the first of each
    /// account's twice (counted in `duplicates`).
    fn write_leases(&mut self, data_dir: &Path) -> std::io::Result<()> {
        let root = data_dir.join("lake").join("leases");
        let mut files: BTreeMap<std::path::PathBuf, Vec<u8>> = BTreeMap::new();
        let mut seen = std::collections::BTreeSet::new();
        for r in &self.leases {
            let partition = root.join(format!("dt={}", &r.timestamp[..10]));
            let mut line = serde_json::to_vec(r).expect("a record serializes");
            line.push(b'\n');
            files
                .entry(partition.join("part-1-100.json"))
                .or_default()
                .extend_from_slice(&line);
            if seen.insert(r.account_id.clone()) {
                self.duplicates += 1;
                files
                    .entry(partition.join("part-4-400.json"))
                    .or_default()
                    .extend_from_slice(&line);
            }
        }
        for (path, bytes) in files {
            std::fs::create_dir_all(path.parent().expect("a file has a folder"))?;
            std::fs::write(path, bytes)?;
        }
        Ok(())
    }

    /// Writes the usage records as the local sink does, about one in six
    /// twice (counted in `duplicates`).
    fn write_usage(&mut self, data_dir: &Path, rng: &mut Rng) -> std::io::Result<()> {
        let root = data_dir.join("lake").join("usage");
        let mut files: BTreeMap<std::path::PathBuf, Vec<u8>> = BTreeMap::new();
        for r in &self.usage {
            let partition = root.join(format!("dt={}", &r.timestamp[..10]));
            let mut line = serde_json::to_vec(r).expect("a record serializes");
            line.push(b'\n');
            files
                .entry(partition.join("part-1-100.json"))
                .or_default()
                .extend_from_slice(&line);
            if rng.chance(17) {
                self.duplicates += 1;
                files
                    .entry(partition.join("part-3-300.json"))
                    .or_default()
                    .extend_from_slice(&line);
            }
        }
        for (path, bytes) in files {
            std::fs::create_dir_all(path.parent().expect("a file has a folder"))?;
            std::fs::write(path, bytes)?;
        }
        Ok(())
    }
}
