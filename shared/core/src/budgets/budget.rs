//! A team's monthly budget: an amount, thresholds, and what to do when
//! spend (or, in forecast mode, projected month-end spend) crosses them.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::accounts::TeamName;
use crate::accounts::reject_unknown;
use crate::validation::{ValidationError, invalid};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BudgetAction {
    Notify,
    Freeze,
    ThrottleLambdas,
}

impl BudgetAction {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "notify" => Some(Self::Notify),
            "freeze" => Some(Self::Freeze),
            "throttle-lambdas" => Some(Self::ThrottleLambdas),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetMode {
    /// Act on spend to date.
    Actual,
    /// Act on projected month-end spend at the current run-rate.
    Forecast,
}

pub const DEFAULT_THRESHOLDS: [u32; 3] = [50, 80, 100];
pub const SUPPORTED_CURRENCY: &str = "USD";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub team: TeamName,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub currency: String,
    /// Percentages of `amount`, ascending, without repeats.
    pub thresholds: Vec<u32>,
    pub actions: BTreeMap<u32, Vec<BudgetAction>>,
    pub mode: BudgetMode,
    /// Spend-rate rules for each of the team's accounts (the runaway guard).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runaway: Vec<crate::budgets::runaway::RunawayRule>,
    /// Raised on every change: a changed budget's thresholds may fire anew.
    pub revision: u64,
    pub updated_at: DateTime<Utc>,
}

impl Budget {
    /// `PUT /teams/{team}/budget`, validated field by field.
    pub fn from_json(
        team: TeamName,
        body: &Value,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationError> {
        let Some(fields) = body.as_object() else {
            return Err(invalid(None, "the body must be a JSON object"));
        };
        reject_unknown(
            fields,
            &[
                "amount",
                "currency",
                "thresholds",
                "actions",
                "mode",
                "runaway",
            ],
        )?;
        let amount = match fields.get("amount") {
            Some(Value::String(s)) => Decimal::from_str(s.trim()).ok(),
            Some(Value::Number(n)) => Decimal::from_str(&n.to_string())
                .or_else(|_| Decimal::from_scientific(&n.to_string()))
                .ok(),
            None | Some(Value::Null) => return Err(invalid(Some("amount"), "amount is required")),
            Some(_) => None,
        }
        .filter(|a| *a > Decimal::ZERO && *a <= Decimal::from(1_000_000_000_000i64) && a.scale() <= 6)
        .ok_or_else(|| {
            invalid(
                Some("amount"),
                "amount must be a positive decimal (a string like \"10.00\" or a number), at most 6 decimal places",
            )
        })?;
        let currency = match fields.get("currency") {
            None | Some(Value::Null) => SUPPORTED_CURRENCY.to_string(),
            Some(Value::String(c)) if c == SUPPORTED_CURRENCY => c.clone(),
            Some(_) => {
                return Err(invalid(
                    Some("currency"),
                    "currency must be USD: Lambda's prices, and so Purser's spend, are in USD",
                ));
            }
        };
        let thresholds = match fields.get("thresholds") {
            None | Some(Value::Null) => DEFAULT_THRESHOLDS.to_vec(),
            Some(Value::Array(items)) if !items.is_empty() => {
                let mut ts = Vec::with_capacity(items.len());
                for item in items {
                    let t = item
                        .as_u64()
                        .filter(|t| (1..=1000).contains(t))
                        .ok_or_else(|| {
                            invalid(
                                Some("thresholds"),
                                "thresholds are whole percentages from 1 to 1000",
                            )
                        })? as u32;
                    if ts.contains(&t) {
                        return Err(invalid(
                            Some("thresholds"),
                            &format!("threshold {t} is given twice"),
                        ));
                    }
                    ts.push(t);
                }
                ts.sort_unstable();
                ts
            }
            Some(_) => {
                return Err(invalid(
                    Some("thresholds"),
                    "thresholds must be a non-empty list of percentages, like [50, 80, 100]",
                ));
            }
        };
        let actions = match fields.get("actions") {
            None | Some(Value::Null) => default_actions(&thresholds),
            Some(Value::Object(map)) => parse_actions(map, &thresholds)?,
            Some(_) => {
                return Err(invalid(
                    Some("actions"),
                    "actions must map thresholds to lists of actions, like {\"100\": [\"notify\", \"freeze\"]}",
                ));
            }
        };
        let mode = match fields.get("mode").and_then(Value::as_str) {
            None if fields.get("mode").is_none_or(Value::is_null) => BudgetMode::Actual,
            Some("actual") => BudgetMode::Actual,
            Some("forecast") => BudgetMode::Forecast,
            _ => {
                return Err(invalid(
                    Some("mode"),
                    "mode must be \"actual\" or \"forecast\"",
                ));
            }
        };
        let runaway =
            crate::budgets::runaway::RunawayRule::parse_list(fields.get("runaway"), "runaway")?;
        Ok(Self {
            team,
            amount,
            currency,
            thresholds,
            actions,
            mode,
            runaway,
            revision: 0,
            updated_at: now,
        })
    }

    /// The spend at which threshold `t` is crossed.
    pub fn limit(&self, t: u32) -> Decimal {
        self.amount * Decimal::from(t) / Decimal::from(100)
    }

    /// What this budget acts on: spend, or the forecast.
    pub fn measure(&self, spend: Decimal, forecast: Decimal) -> Decimal {
        match self.mode {
            BudgetMode::Actual => spend,
            BudgetMode::Forecast => forecast,
        }
    }

    /// The thresholds `measure` has reached, in order.
    pub fn crossed(&self, measure: Decimal) -> Vec<u32> {
        self.thresholds
            .iter()
            .copied()
            .filter(|t| measure >= self.limit(*t))
            .collect()
    }

    /// Whether any reached threshold asks for `action`.
    pub fn demands(&self, measure: Decimal, action: BudgetAction) -> bool {
        self.crossed(measure)
            .iter()
            .any(|t| self.actions.get(t).is_some_and(|a| a.contains(&action)))
    }

    pub fn to_view(&self) -> Value {
        let actions: Map<String, Value> = self
            .actions
            .iter()
            .map(|(t, a)| (t.to_string(), json!(a)))
            .collect();
        json!({
            "team": self.team,
            "amount": self.amount.normalize().to_string(),
            "currency": self.currency,
            "thresholds": self.thresholds,
            "actions": actions,
            "mode": self.mode,
            "runaway": self.runaway.iter().map(crate::budgets::runaway::RunawayRule::to_view).collect::<Vec<_>>(),
            "revision": self.revision,
            "updated_at": crate::accounts::rfc3339(self.updated_at),
        })
    }
}

fn default_actions(thresholds: &[u32]) -> BTreeMap<u32, Vec<BudgetAction>> {
    thresholds
        .iter()
        .map(|t| {
            let actions = if *t >= 100 {
                vec![BudgetAction::Notify, BudgetAction::Freeze]
            } else {
                vec![BudgetAction::Notify]
            };
            (*t, actions)
        })
        .collect()
}

fn parse_actions(
    map: &Map<String, Value>,
    thresholds: &[u32],
) -> Result<BTreeMap<u32, Vec<BudgetAction>>, ValidationError> {
    let mut out = BTreeMap::new();
    for (key, list) in map {
        let t = key
            .parse::<u32>()
            .ok()
            .filter(|t| thresholds.contains(t))
            .ok_or_else(|| {
                invalid(
                    Some("actions"),
                    &format!("actions name threshold {key:?}, which is not in thresholds"),
                )
            })?;
        let Some(items) = list.as_array() else {
            return Err(invalid(
                Some("actions"),
                &format!("actions for {t} must be a list"),
            ));
        };
        let mut actions = Vec::new();
        for item in items {
            let action = item.as_str().and_then(BudgetAction::parse).ok_or_else(|| {
                invalid(
                    Some("actions"),
                    &format!(
                        "{item} is not an action; the actions are notify, freeze, throttle-lambdas"
                    ),
                )
            })?;
            if !actions.contains(&action) {
                actions.push(action);
            }
        }
        out.insert(t, actions);
    }
    for t in thresholds {
        out.entry(*t).or_insert_with(|| vec![BudgetAction::Notify]);
    }
    Ok(out)
}

/// The monthly period `now` falls in: `YYYY-MM`, its first and last day.
pub fn period_of(now: DateTime<Utc>) -> (String, NaiveDate, NaiveDate) {
    let day = now.date_naive();
    let first = day.with_day(1).unwrap_or(day);
    (
        day.format("%Y-%m").to_string(),
        first,
        crate::lake::last_day_of_month(day),
    )
}

/// Month-end spend at the run-rate so far: spend ÷ elapsed × whole month.
/// At least one hour counts as elapsed, so the first minutes of a month do
/// not project absurd figures.
pub fn forecast(spend: Decimal, now: DateTime<Utc>) -> Decimal {
    let (_, first, last) = period_of(now);
    let start = Utc.from_utc_datetime(&first.and_hms_opt(0, 0, 0).expect("midnight"));
    let end = Utc.from_utc_datetime(
        &last
            .succ_opt()
            .unwrap_or(last)
            .and_hms_opt(0, 0, 0)
            .expect("midnight"),
    );
    let elapsed = (now - start).num_seconds().max(3600);
    let total = (end - start).num_seconds().max(elapsed);
    (spend * Decimal::from(total) / Decimal::from(elapsed)).round_dp(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team() -> TeamName {
        TeamName::parse("payments").unwrap()
    }

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn budgets_validate_by_field() {
        let now = Utc::now();
        let b = Budget::from_json(
            team(),
            &json!({"amount": "10.00", "thresholds": [100, 50, 80], "actions": {"100": ["notify", "freeze"]}, "mode": "forecast"}),
            now,
        )
        .unwrap();
        assert_eq!(b.thresholds, [50, 80, 100]);
        assert_eq!(b.actions[&50], [BudgetAction::Notify]);
        assert_eq!(b.mode, BudgetMode::Forecast);
        assert_eq!(
            Budget::from_json(team(), &json!({"amount": 12.5}), now)
                .unwrap()
                .amount,
            d("12.5")
        );
        let field = |body: Value| Budget::from_json(team(), &body, now).unwrap_err().field;
        assert_eq!(field(json!({})), Some("amount".into()));
        assert_eq!(field(json!({"amount": "-1"})), Some("amount".into()));
        assert_eq!(field(json!({"amount": "ten"})), Some("amount".into()));
        assert_eq!(
            field(json!({"amount": "1", "currency": "EUR"})),
            Some("currency".into())
        );
        assert_eq!(
            field(json!({"amount": "1", "thresholds": [0]})),
            Some("thresholds".into())
        );
        assert_eq!(
            field(json!({"amount": "1", "thresholds": [50, 50]})),
            Some("thresholds".into())
        );
        assert_eq!(
            field(json!({"amount": "1", "actions": {"70": ["notify"]}})),
            Some("actions".into())
        );
        assert_eq!(
            field(json!({"amount": "1", "actions": {"100": ["explode"]}})),
            Some("actions".into())
        );
        assert_eq!(
            field(json!({"amount": "1", "mode": "psychic"})),
            Some("mode".into())
        );
        assert_eq!(
            field(json!({"amount": "1", "owner": "x"})),
            Some("owner".into())
        );
    }

    #[test]
    fn thresholds_are_crossed_in_order_and_freeze_by_default_at_100() {
        let b = Budget::from_json(team(), &json!({"amount": "10"}), Utc::now()).unwrap();
        assert_eq!(b.crossed(d("4.99")), Vec::<u32>::new());
        assert_eq!(b.crossed(d("5")), [50]);
        assert_eq!(b.crossed(d("10.01")), [50, 80, 100]);
        assert!(!b.demands(d("9.99"), BudgetAction::Freeze));
        assert!(b.demands(d("10"), BudgetAction::Freeze));
    }

    #[test]
    fn the_forecast_is_the_run_rate_to_month_end() {
        // Ten days into a 30-day month, $1 spent: $3 projected.
        let now = Utc.with_ymd_and_hms(2026, 11, 11, 0, 0, 0).unwrap();
        assert_eq!(forecast(d("1"), now), d("3"));
        // The first minutes count as an hour.
        let early = Utc.with_ymd_and_hms(2026, 11, 1, 0, 1, 0).unwrap();
        assert_eq!(forecast(d("0.001"), early), d("0.72"));
        assert_eq!(period_of(now).0, "2026-11");
    }

    /// Every hour of five years (leap days, month and year ends): the
    /// period holds the day, ends on its month's last day, and the forecast
    /// never falls below what was spent nor exceeds it more than the
    /// month's length in hours allows.
    #[test]
    fn periods_and_forecasts_hold_on_every_day_of_five_years() {
        let mut now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(2029, 1, 1, 0, 0, 0).unwrap();
        while now < end {
            let (period, first, last) = period_of(now);
            let day = now.date_naive();
            assert_eq!(period, day.format("%Y-%m").to_string());
            assert!(first <= day && day <= last, "{now}");
            assert_eq!(first.day(), 1);
            assert_eq!(
                last.succ_opt().unwrap().day(),
                1,
                "{now}: {last} ends the month"
            );
            assert_eq!(last.month(), day.month());
            let f = forecast(d("10"), now);
            assert!(f >= d("10") && f <= d("7440"), "{now}: {f}");
            now += chrono::Duration::hours(7);
        }
        let last_second = Utc.with_ymd_and_hms(2028, 2, 29, 23, 59, 59).unwrap();
        assert_eq!(period_of(last_second).2.to_string(), "2028-02-29");
        assert_eq!(forecast(d("29"), last_second).round_dp(2), d("29"));
    }
}
