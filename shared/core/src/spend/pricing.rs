//! What Lambda costs: a price table that is data (region, effective date,
//! prices), not literals in code, and the cost of one invocation.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A function's instruction set; Lambda prices them differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    Arm64,
    X86_64,
}

impl Architecture {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "arm64" => Some(Self::Arm64),
            "x86_64" => Some(Self::X86_64),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Arm64 => "arm64",
            Self::X86_64 => "x86_64",
        }
    }
}

/// Lambda's on-demand prices in one region from one date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LambdaPrices {
    pub region: String,
    pub effective: NaiveDate,
    pub currency: String,
    pub per_request: Decimal,
    pub per_gb_second_x86_64: Decimal,
    pub per_gb_second_arm64: Decimal,
}

/// The price table Purser ships (infra/prices.json), compiled in.
pub const BUILTIN_PRICES: &str = include_str!("../../../../infra/prices.json");

#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    #[error("the price table is not valid: {0}")]
    Invalid(String),
    #[error("no Lambda prices for region {region} on {on}")]
    Missing { region: String, on: NaiveDate },
}

/// Every known price, by region and effective date.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    prices: Vec<LambdaPrices>,
}

impl PriceTable {
    pub fn parse(json: &str) -> Result<Self, PriceError> {
        #[derive(Deserialize)]
        struct File {
            lambda: Vec<LambdaPrices>,
        }
        let file: File =
            serde_json::from_str(json).map_err(|e| PriceError::Invalid(e.to_string()))?;
        if file.lambda.is_empty() {
            return Err(PriceError::Invalid("it lists no Lambda prices".into()));
        }
        Ok(Self {
            prices: file.lambda,
        })
    }

    pub fn builtin() -> Self {
        Self::parse(BUILTIN_PRICES).expect("infra/prices.json is valid (a test checks it)")
    }

    /// The prices in force in `region` on `on`: the latest effective on or
    /// before that day, from the region's own entries or else from `*`.
    pub fn lambda(&self, region: &str, on: NaiveDate) -> Result<&LambdaPrices, PriceError> {
        let latest = |r: &str| {
            self.prices
                .iter()
                .filter(|p| p.region == r && p.effective <= on)
                .max_by_key(|p| p.effective)
        };
        latest(region)
            .or_else(|| latest("*"))
            .ok_or_else(|| PriceError::Missing {
                region: region.into(),
                on,
            })
    }
}

impl LambdaPrices {
    /// billed ms / 1000 × memory MB / 1024 × price per GB-s, plus one request.
    pub fn invocation(
        &self,
        architecture: Architecture,
        billed_ms: u64,
        memory_mb: u32,
    ) -> Decimal {
        let per_gb_second = match architecture {
            Architecture::Arm64 => self.per_gb_second_arm64,
            Architecture::X86_64 => self.per_gb_second_x86_64,
        };
        let gb_seconds =
            Decimal::from(billed_ms) * Decimal::from(memory_mb) / Decimal::from(1000 * 1024);
        gb_seconds * per_gb_second + self.per_request
    }
}

/// Money in counters: integer nano-units of the currency, so atomic adds are
/// exact (no floating point in money).
pub fn to_nanos(amount: Decimal) -> i64 {
    // Saturates rather than panics: no amount may stop a handler.
    match amount.checked_mul(Decimal::from(1_000_000_000)) {
        Some(nanos) => i64::try_from(nanos.round()).unwrap_or(if nanos.is_sign_negative() {
            i64::MIN
        } else {
            i64::MAX
        }),
        None if amount.is_sign_negative() => i64::MIN,
        None => i64::MAX,
    }
}

pub fn from_nanos(nanos: i64) -> Decimal {
    Decimal::from(nanos) / Decimal::from(1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn the_builtin_table_has_us_east_1() {
        let table = PriceTable::builtin();
        let p = table
            .lambda("us-east-1", NaiveDate::from_ymd_opt(2026, 11, 21).unwrap())
            .unwrap();
        assert_eq!(p.per_request, d("0.0000002"));
        assert_eq!(p.per_gb_second_x86_64, d("0.0000166667"));
        assert_eq!(p.per_gb_second_arm64, d("0.0000133334"));
        assert_eq!(
            table
                .lambda("eu-west-1", NaiveDate::from_ymd_opt(2026, 1, 1).unwrap())
                .unwrap()
                .region,
            "*"
        );
        assert!(
            table
                .lambda("us-east-1", NaiveDate::from_ymd_opt(2001, 1, 1).unwrap())
                .is_err()
        );
    }

    #[test]
    fn an_invocation_costs_compute_plus_a_request() {
        let p = PriceTable::builtin();
        let p = p
            .lambda("us-east-1", NaiveDate::from_ymd_opt(2026, 11, 21).unwrap())
            .unwrap();
        // 1 s at 1024 MB is one GB-s.
        assert_eq!(
            p.invocation(Architecture::X86_64, 1000, 1024),
            d("0.0000168667")
        );
        assert_eq!(
            p.invocation(Architecture::Arm64, 1000, 1024),
            d("0.0000135334")
        );
        // 100 ms at 128 MB: 0.0125 GB-s.
        assert_eq!(
            p.invocation(Architecture::Arm64, 100, 128),
            d("0.000000166667500") + d("0.0000002")
        );
        assert_eq!(to_nanos(d("0.0000168667")), 16_867);
        assert_eq!(from_nanos(16_867), d("0.000016867"));
    }

    #[test]
    fn the_latest_effective_price_applies() {
        let table = PriceTable::parse(r#"{"lambda": [
            {"region": "r", "effective": "2020-01-01", "currency": "USD", "per_request": "1", "per_gb_second_x86_64": "1", "per_gb_second_arm64": "1"},
            {"region": "r", "effective": "2026-01-01", "currency": "USD", "per_request": "2", "per_gb_second_x86_64": "2", "per_gb_second_arm64": "2"}
        ]}"#).unwrap();
        let on = |y| NaiveDate::from_ymd_opt(y, 6, 1).unwrap();
        assert_eq!(table.lambda("r", on(2025)).unwrap().per_request, d("1"));
        assert_eq!(table.lambda("r", on(2026)).unwrap().per_request, d("2"));
        assert!(table.lambda("r", on(2019)).is_err());
    }
}
