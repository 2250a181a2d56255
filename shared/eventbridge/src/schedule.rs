//! EventBridge schedule expressions: `rate(...)` and `cron(...)` as EventBridge
//! rules and Scheduler accept them, and Scheduler's one-time `at(...)`.
//!
//! Parsing refuses what EventBridge refuses, so a template that runs locally
//! also deploys; [`ScheduleExpression::next_after`] is what the local runtime
//! arms its timers with.
//!
//! Everything is UTC, as for EventBridge rules. Scheduler's
//! `ScheduleExpressionTimezone` is not applied: the local runtime evaluates
//! every schedule in UTC (chrono-tz is not a dependency), so a schedule that
//! names a zone fires at the UTC wall-clock time its expression gives.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeDelta, Timelike, Utc, Weekday};

/// A parsed, valid schedule expression. Each variant's payload can only be
/// made by parsing, so [`Display`](fmt::Display) always round-trips.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleExpression {
    /// `rate(5 minutes)`: every period, counted from when the schedule started.
    Rate(Rate),
    /// `cron(0 18 ? * MON-FRI *)`: at every minute the six fields allow.
    Cron(Cron),
    /// `at(2026-11-21T10:00:00)`: once.
    At(OneTime),
}

/// Why an expression was refused. Messages name the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "{0:?} is not a schedule expression: expected rate(value unit), cron(fields) or at(yyyy-mm-ddThh:mm:ss)"
    )]
    Unrecognized(String),
    #[error("rate(...): {0}")]
    Rate(String),
    #[error("cron(...): {0}")]
    Cron(String),
    #[error("cron(...): {field}: {message}")]
    CronField { field: CronField, message: String },
    #[error("at(...): {0}")]
    At(String),
}

impl ScheduleExpression {
    /// Parses `rate(value unit)`, `cron(fields)` or `at(yyyy-mm-ddThh:mm:ss)`.
    /// Surrounding whitespace is ignored; the keyword and rate unit are
    /// lowercase, cron names (JAN, MON) are case-insensitive.
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        let text = text.trim();
        if let Some(body) = arguments(text, "rate", ScheduleError::Rate)? {
            Rate::parse(body).map(Self::Rate)
        } else if let Some(body) = arguments(text, "cron", ScheduleError::Cron)? {
            Cron::parse(body).map(Self::Cron)
        } else if let Some(body) = arguments(text, "at", ScheduleError::At)? {
            OneTime::parse(body).map(Self::At)
        } else {
            Err(ScheduleError::Unrecognized(text.to_owned()))
        }
    }

    /// The first firing strictly after `after` (UTC). For `rate(...)`,
    /// firings are `anchor + k*period` for k = 0, 1, 2, ... (anchor = when the
    /// schedule was created or started; Scheduler fires at its start date).
    /// `cron(...)` and `at(...)` ignore the anchor. `None` when it never fires
    /// again: a past `at(...)`, or a cron whose years have ended.
    pub fn next_after(&self, anchor: DateTime<Utc>, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Rate(rate) => rate.next_after(anchor, after),
            Self::Cron(cron) => cron.next_after(after),
            Self::At(at) => Some(at.time()).filter(|&time| time > after),
        }
    }
}

impl FromStr for ScheduleExpression {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for ScheduleExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rate(rate) => write!(f, "rate({} {})", rate.value, rate.unit.name(rate.value)),
            Self::Cron(cron) => write!(f, "cron({})", cron.text),
            Self::At(at) => write!(f, "at({})", at.0.format(AT_FORMAT)),
        }
    }
}

/// The text between `keyword(` and `)`, or `None` if `text` is not that kind
/// of expression. A recognised keyword without its `)` is an error of that kind.
fn arguments<'a>(
    text: &'a str,
    keyword: &str,
    error: fn(String) -> ScheduleError,
) -> Result<Option<&'a str>, ScheduleError> {
    let Some(rest) = text
        .strip_prefix(keyword)
        .and_then(|rest| rest.strip_prefix('('))
    else {
        return Ok(None);
    };
    match rest.strip_suffix(')') {
        Some(body) => Ok(Some(body)),
        None => Err(error(format!("{text:?} does not end with )"))),
    }
}

// ---------------------------------------------------------------- rate(...)

/// `rate(value unit)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    value: u32,
    unit: RateUnit,
}

/// The unit of a `rate(...)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    Minute,
    Hour,
    Day,
}

impl RateUnit {
    fn seconds(self) -> i64 {
        match self {
            Self::Minute => 60,
            Self::Hour => 60 * 60,
            Self::Day => 24 * 60 * 60,
        }
    }

    /// EventBridge insists on the grammatical number: `1 minute`, `5 minutes`.
    fn name(self, value: u32) -> &'static str {
        match (self, value == 1) {
            (Self::Minute, true) => "minute",
            (Self::Minute, false) => "minutes",
            (Self::Hour, true) => "hour",
            (Self::Hour, false) => "hours",
            (Self::Day, true) => "day",
            (Self::Day, false) => "days",
        }
    }
}

impl Rate {
    pub fn value(&self) -> u32 {
        self.value
    }

    pub fn unit(&self) -> RateUnit {
        self.unit
    }

    /// The time between firings.
    pub fn period(&self) -> TimeDelta {
        // At most u32::MAX days, well inside TimeDelta's range.
        TimeDelta::try_seconds(i64::from(self.value) * self.unit.seconds())
            .unwrap_or(TimeDelta::MAX)
    }

    fn parse(body: &str) -> Result<Self, ScheduleError> {
        let error = |message: String| ScheduleError::Rate(message);
        let parts: Vec<&str> = body.split_whitespace().collect();
        let [value, written] = parts[..] else {
            return Err(error(format!(
                "expected a value and a unit, e.g. rate(5 minutes), found {body:?}"
            )));
        };
        if !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error(format!("value {value:?} is not a positive integer")));
        }
        let value: u32 = value
            .parse()
            .map_err(|_| error(format!("value {value} is too large")))?;
        if value == 0 {
            return Err(error("value must be a positive integer, not 0".into()));
        }
        let (unit, plural) = match written {
            "minute" => (RateUnit::Minute, false),
            "minutes" => (RateUnit::Minute, true),
            "hour" => (RateUnit::Hour, false),
            "hours" => (RateUnit::Hour, true),
            "day" => (RateUnit::Day, false),
            "days" => (RateUnit::Day, true),
            _ => {
                return Err(error(format!(
                    "unit {written:?} is not one of minute, minutes, hour, hours, day, days"
                )));
            }
        };
        if plural != (value > 1) {
            let number = if plural { "singular" } else { "plural" };
            let wanted = unit.name(value);
            return Err(error(format!(
                "value {value} takes the {number} unit: rate({value} {wanted}), not rate({value} {written})"
            )));
        }
        Ok(Self { value, unit })
    }

    fn next_after(&self, anchor: DateTime<Utc>, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if after < anchor {
            return Some(anchor);
        }
        // In nanoseconds, as i128: exact for any anchor, `after` and u32 value.
        const NANOS: i128 = 1_000_000_000;
        let period = i128::from(self.value) * i128::from(self.unit.seconds()) * NANOS;
        let elapsed = after.signed_duration_since(anchor);
        let elapsed =
            i128::from(elapsed.num_seconds()) * NANOS + i128::from(elapsed.subsec_nanos());
        let periods = elapsed / period + 1;
        let seconds = i64::try_from(periods * period / NANOS).ok()?;
        anchor.checked_add_signed(TimeDelta::try_seconds(seconds)?)
    }
}

// ------------------------------------------------------------------ at(...)

const AT_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// `at(yyyy-mm-ddThh:mm:ss)`: a wall-clock time, taken as UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OneTime(NaiveDateTime);

impl OneTime {
    /// When it fires: the expression's wall-clock time, read as UTC.
    pub fn time(&self) -> DateTime<Utc> {
        self.0.and_utc()
    }

    fn parse(body: &str) -> Result<Self, ScheduleError> {
        // The exact shape first: chrono alone would take `+12345-1-2T3:4:5`.
        const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd";
        let body = body.trim();
        let shaped = body.len() == SHAPE.len()
            && body.bytes().zip(SHAPE).all(|(b, &s)| {
                if s == b'd' {
                    b.is_ascii_digit()
                } else {
                    b == s
                }
            });
        if !shaped {
            return Err(ScheduleError::At(format!(
                "expected yyyy-mm-ddThh:mm:ss, found {body:?}"
            )));
        }
        NaiveDateTime::parse_from_str(body, AT_FORMAT)
            .ok()
            // chrono reads second 60 as a leap second; EventBridge has none.
            .filter(|time| time.nanosecond() == 0)
            .map(Self)
            .ok_or_else(|| ScheduleError::At(format!("{body} is not a valid date and time")))
    }
}

// ---------------------------------------------------------------- cron(...)

/// `cron(Minutes Hours Day-of-month Month Day-of-week Year)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    /// The fields as written, uppercased and single-spaced.
    text: String,
    minutes: Values,
    hours: Values,
    /// Exactly one of day-of-month and day-of-week is `?`; this is the other.
    days: DayRule,
    months: Values,
    years: Years,
}

/// The six fields of a cron expression, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CronField {
    Minutes,
    Hours,
    DayOfMonth,
    Month,
    DayOfWeek,
    Year,
}

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
/// Day-of-week 1 is Sunday, unlike Unix cron.
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl CronField {
    fn range(self) -> (u32, u32) {
        match self {
            Self::Minutes => (0, 59),
            Self::Hours => (0, 23),
            Self::DayOfMonth => (1, 31),
            Self::Month => (1, 12),
            Self::DayOfWeek => (1, 7),
            Self::Year => (1970, 2199),
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            Self::Month => &MONTH_NAMES,
            Self::DayOfWeek => &DAY_NAMES,
            _ => &[],
        }
    }

    /// `JAN-DEC` for fields that take names.
    fn name_range(self) -> Option<String> {
        let names = self.names();
        Some(format!("{}-{}", names.first()?, names.last()?))
    }
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Minutes => "minutes",
            Self::Hours => "hours",
            Self::DayOfMonth => "day-of-month",
            Self::Month => "month",
            Self::DayOfWeek => "day-of-week",
            Self::Year => "year",
        })
    }
}

/// Which days of a month a cron expression fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayRule {
    /// Day-of-month values: `1,15`, `1-7`, `*`, `1/5`.
    MonthDays(Values),
    /// Day-of-month `L`.
    LastDay,
    /// Day-of-month `15W`: the weekday nearest the 15th, within the month.
    NearestWeekday(u32),
    /// Day-of-month `LW`.
    LastWeekday,
    /// Day-of-week values (1 = Sunday): `MON-FRI`, `1,7`, `L` (Saturday).
    WeekDays(Values),
    /// Day-of-week `5L`: the last Thursday of the month.
    LastOf(u32),
    /// Day-of-week `3#2`: the second Tuesday of the month.
    Nth { weekday: u32, nth: u32 },
}

impl Cron {
    fn parse(body: &str) -> Result<Self, ScheduleError> {
        let fields: Vec<String> = body
            .split_whitespace()
            .map(str::to_ascii_uppercase)
            .collect();
        let [minutes, hours, day_of_month, month, day_of_week, year] = &fields[..] else {
            return Err(ScheduleError::Cron(format!(
                "expected 6 fields (minutes hours day-of-month month day-of-week year), found {}",
                fields.len()
            )));
        };
        let minutes = plain_field(CronField::Minutes, minutes)?;
        let hours = plain_field(CronField::Hours, hours)?;
        let month_days = parse_day_of_month(day_of_month)
            .map_err(|message| field_error(CronField::DayOfMonth, message))?;
        let months = plain_field(CronField::Month, month)?;
        let week_days = parse_day_of_week(day_of_week)
            .map_err(|message| field_error(CronField::DayOfWeek, message))?;
        let years = plain_field(CronField::Year, year)?;
        let days = match (month_days, week_days) {
            (Some(days), None) | (None, Some(days)) => days,
            (Some(_), Some(_)) => {
                return Err(ScheduleError::Cron(
                    "day-of-month and day-of-week can't both be set: use ? in one of them".into(),
                ));
            }
            (None, None) => {
                return Err(ScheduleError::Cron(
                    "day-of-month and day-of-week can't both be ?: set one of them".into(),
                ));
            }
        };
        Ok(Self {
            text: fields.join(" "),
            minutes,
            hours,
            days,
            months,
            years,
        })
    }

    /// Walks forward a year, a month or a day at a time, skipping whole
    /// years and months the fields exclude, and looks at the hours and
    /// minutes only on days that match. The year field ends at 2199, so the
    /// walk always ends.
    fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Firings are on whole minutes: the first candidate is the next one.
        let start = after
            .naive_utc()
            .with_second(0)?
            .with_nanosecond(0)?
            .checked_add_signed(TimeDelta::minutes(1))?;
        let mut date = start.date();
        let mut from = (start.hour(), start.minute());
        loop {
            // Years before 1970 are below the field's range, so 0 will do.
            let year = u32::try_from(date.year()).unwrap_or(0);
            let wanted_year = self.years.first_from(year)?;
            if wanted_year != year {
                date = NaiveDate::from_ymd_opt(i32::try_from(wanted_year).ok()?, 1, 1)?;
                from = (0, 0);
                continue;
            }
            match self.months.first_from(date.month()) {
                Some(month) if month == date.month() => {}
                Some(month) => {
                    date = NaiveDate::from_ymd_opt(date.year(), month, 1)?;
                    from = (0, 0);
                    continue;
                }
                None => {
                    date = NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)?;
                    from = (0, 0);
                    continue;
                }
            }
            if self.days.matches(date)
                && let Some((hour, minute)) = self.first_time_from(from)
            {
                return Some(date.and_hms_opt(hour, minute, 0)?.and_utc());
            }
            date = date.succ_opt()?;
            from = (0, 0);
        }
    }

    /// The first allowed (hour, minute) at or after `(hour, minute)` in a day.
    fn first_time_from(&self, (hour, minute): (u32, u32)) -> Option<(u32, u32)> {
        if self.hours.contains(hour)
            && let Some(minute) = self.minutes.first_from(minute)
        {
            return Some((hour, minute));
        }
        let hour = self.hours.first_from(hour + 1)?;
        Some((hour, self.minutes.first_from(0)?))
    }
}

/// Minutes, hours, month or year: lists, ranges and increments only.
fn plain_field<const WORDS: usize>(
    field: CronField,
    text: &str,
) -> Result<Values<WORDS>, ScheduleError> {
    if text.contains('?') {
        return Err(field_error(
            field,
            "? is only allowed in day-of-month or day-of-week",
        ));
    }
    parse_values(field, text).map_err(|message| field_error(field, message))
}

fn field_error(field: CronField, message: impl Into<String>) -> ScheduleError {
    ScheduleError::CronField {
        field,
        message: message.into(),
    }
}

/// `?`, `L`, `LW`, `15W`, or a list of days. `None` for `?`.
fn parse_day_of_month(text: &str) -> Result<Option<DayRule>, String> {
    let field = CronField::DayOfMonth;
    match text {
        "?" => return Ok(None),
        "L" => return Ok(Some(DayRule::LastDay)),
        "LW" => return Ok(Some(DayRule::LastWeekday)),
        _ => {}
    }
    if text.contains('?') {
        return Err("? can't be combined with other values".into());
    }
    if text.contains('#') {
        return Err("# is only allowed in day-of-week".into());
    }
    if let Some(day) = text.strip_suffix('W') {
        if day.contains([',', '-', '*', '/', 'L', 'W']) {
            return Err(format!("W takes a single day, e.g. 15W, not {text:?}"));
        }
        return parse_value(field, day).map(|day| Some(DayRule::NearestWeekday(day)));
    }
    if text.contains(['L', 'W']) {
        return Err(format!(
            "L and W stand alone (L, LW or a single day such as 15W), not {text:?}"
        ));
    }
    parse_values(field, text).map(|days| Some(DayRule::MonthDays(days)))
}

/// `?`, `L`, `5L`, `3#2`, or a list of days (no increments). `None` for `?`.
fn parse_day_of_week(text: &str) -> Result<Option<DayRule>, String> {
    let field = CronField::DayOfWeek;
    let single = |day: &str| {
        if day.contains([',', '-', '*', '/', 'L', '#']) {
            Err(format!(
                "L and # take a single day, e.g. 5L or 3#2, not {text:?}"
            ))
        } else {
            parse_value(field, day)
        }
    };
    match text {
        "?" => return Ok(None),
        // The last day of the week.
        "L" => return Ok(Some(DayRule::WeekDays(Values::single(field, 7)))),
        _ => {}
    }
    if text.contains('?') {
        return Err("? can't be combined with other values".into());
    }
    if let Some((day, nth)) = text.split_once('#') {
        if text.contains(',') {
            return Err(format!(
                "# allows a single expression, and {text:?} is a list"
            ));
        }
        let weekday = single(day)?;
        let nth = match nth.as_bytes() {
            [digit @ b'1'..=b'5'] => u32::from(digit - b'0'),
            _ => {
                return Err(format!(
                    "{nth:?} after # is not 1-5 (the nth such day of the month)"
                ));
            }
        };
        return Ok(Some(DayRule::Nth { weekday, nth }));
    }
    if let Some(day) = text.strip_suffix('L') {
        return single(day).map(|weekday| Some(DayRule::LastOf(weekday)));
    }
    if text.contains('L') {
        return Err(format!("L goes last (L or 5L), not {text:?}"));
    }
    if text.contains('/') {
        return Err("/ (increments) is not allowed in day-of-week".into());
    }
    parse_values(field, text).map(|days| Some(DayRule::WeekDays(days)))
}

/// A `,` list of `*`, `n`, `a-b`, each optionally `/step`.
fn parse_values<const WORDS: usize>(field: CronField, text: &str) -> Result<Values<WORDS>, String> {
    let (min, max) = field.range();
    let mut values = Values::empty(field);
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!("empty item in the list {text:?}"));
        }
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => (base, Some(parse_step(step)?)),
            None => (item, None),
        };
        let (low, high) = if base == "*" {
            (min, max)
        } else if let Some((low, high)) = base.split_once('-') {
            let (low, high) = (parse_value(field, low)?, parse_value(field, high)?);
            if low > high {
                return Err(format!(
                    "range {base} runs backwards (ranges can't wrap around; use a list)"
                ));
            }
            (low, high)
        } else {
            // `5/15` counts from 5 to the end of the field's range.
            let value = parse_value(field, base)?;
            (value, if step.is_some() { max } else { value })
        };
        for value in (low..=high).step_by(step.unwrap_or(1)) {
            values.insert(value);
        }
    }
    Ok(values)
}

fn parse_step(text: &str) -> Result<usize, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("increment {text:?} is not a positive integer"));
    }
    match text.parse::<usize>() {
        Ok(0) => Err("increment must be at least 1, not 0".into()),
        Ok(step) => Ok(step),
        Err(_) => Err(format!("increment {text} is too large")),
    }
}

/// A number in the field's range, or a name (JAN, MON) where the field has names.
fn parse_value(field: CronField, text: &str) -> Result<u32, String> {
    let (min, max) = field.range();
    if text.is_empty() {
        return Err("a value is missing".into());
    }
    let names = field.name_range();
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u32>() {
            Ok(value) if (min..=max).contains(&value) => Ok(value),
            _ => Err(match names {
                Some(names) => format!("{text} is out of range {min}-{max} (or {names})"),
                None => format!("{text} is out of range {min}-{max}"),
            }),
        };
    }
    if let Some(index) = field.names().iter().position(|name| *name == text) {
        return Ok(min + index as u32);
    }
    Err(match names {
        Some(names) => format!("{text:?} is not a number or a name {names}"),
        None => format!("{text:?} is not a number"),
    })
}

/// The values a field allows, as bits offset from the field's minimum: one
/// word holds any field but the year, which spans 230 values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Values<const WORDS: usize = 1> {
    min: u32,
    bits: [u64; WORDS],
}

/// The year field's values.
type Years = Values<4>;

impl<const WORDS: usize> Values<WORDS> {
    fn empty(field: CronField) -> Self {
        Self {
            min: field.range().0,
            bits: [0; WORDS],
        }
    }

    fn single(field: CronField, value: u32) -> Self {
        let mut values = Self::empty(field);
        values.insert(value);
        values
    }

    fn insert(&mut self, value: u32) {
        let Some(index) = value.checked_sub(self.min) else {
            return;
        };
        let index = index as usize;
        if let Some(word) = self.bits.get_mut(index / 64) {
            *word |= 1 << (index % 64);
        }
    }

    fn contains(&self, value: u32) -> bool {
        self.first_from(value) == Some(value)
    }

    /// The smallest allowed value at or above `value`.
    fn first_from(&self, value: u32) -> Option<u32> {
        let mut index = value.saturating_sub(self.min) as usize;
        while let Some(word) = self.bits.get(index / 64) {
            let rest = word >> (index % 64);
            if rest != 0 {
                return Some(self.min + (index as u32) + rest.trailing_zeros());
            }
            index = (index / 64 + 1) * 64;
        }
        None
    }
}

impl DayRule {
    fn matches(&self, date: NaiveDate) -> bool {
        let day = date.day();
        let last = u32::from(date.num_days_in_month());
        let weekday = date.weekday().number_from_sunday();
        match *self {
            Self::MonthDays(days) => days.contains(day),
            Self::LastDay => day == last,
            // A day beyond this month's end (31W in April) never fires.
            Self::NearestWeekday(target) => date
                .with_day(target)
                .is_some_and(|target| nearest_weekday(target, last) == day),
            Self::LastWeekday => date
                .with_day(last)
                .is_some_and(|target| nearest_weekday(target, last) == day),
            Self::WeekDays(days) => days.contains(weekday),
            Self::LastOf(wanted) => weekday == wanted && day + 7 > last,
            Self::Nth {
                weekday: wanted,
                nth,
            } => weekday == wanted && (day - 1) / 7 + 1 == nth,
        }
    }
}

/// The day of the month of the weekday nearest `target`, without leaving the
/// month: a Saturday the 1st moves to Monday the 3rd, a Sunday the last to
/// the Friday before.
fn nearest_weekday(target: NaiveDate, last: u32) -> u32 {
    let day = target.day();
    match target.weekday() {
        Weekday::Sat if day == 1 => 3,
        Weekday::Sat => day - 1,
        Weekday::Sun if day == last => day - 2,
        Weekday::Sun => day + 1,
        _ => day,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ScheduleExpression {
        text.parse()
            .unwrap_or_else(|error| panic!("{text} should parse: {error}"))
    }

    fn error(text: &str) -> String {
        match ScheduleExpression::parse(text) {
            Ok(expression) => panic!("{text} should be refused, parsed as {expression}"),
            Err(error) => error.to_string(),
        }
    }

    /// `"2026-01-05 10:00"` (or with `:ss`), UTC.
    fn utc(text: &str) -> DateTime<Utc> {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
            .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M"))
            .unwrap_or_else(|_| panic!("bad test time {text}"))
            .and_utc()
    }

    /// The next `count` cron firings after `after`, as `2026-01-05 Mon 10:00`.
    fn firings(expression: &str, after: &str, count: usize) -> Vec<String> {
        let expression = parse(expression);
        let mut after = utc(after);
        let mut times = Vec::new();
        for _ in 0..count {
            let Some(next) = expression.next_after(after, after) else {
                break;
            };
            assert!(next > after, "{expression}: {next} is not after {after}");
            times.push(next.format("%Y-%m-%d %a %H:%M").to_string());
            after = next;
        }
        times
    }

    /// The next firing, or `"never"`.
    fn next(expression: &str, after: &str) -> String {
        firings(expression, after, 1)
            .pop()
            .unwrap_or_else(|| "never".into())
    }

    // ---- the AWS docs' examples

    #[test]
    fn schedule_docs_examples_parse_and_round_trip() {
        for text in [
            "cron(0 10 * * ? *)",
            "cron(15 12 * * ? *)",
            "cron(0 18 ? * MON-FRI *)",
            "cron(0 8 1 * ? *)",
            "cron(0/15 * * * ? *)",
            "cron(0/10 * ? * MON-FRI *)",
            "cron(0/5 8-17 ? * MON-FRI *)",
            "cron(0 9 ? * 2#1 *)",
            "rate(5 minutes)",
            "rate(1 hour)",
            "rate(7 days)",
            "rate(1 minute)",
            "rate(1 day)",
            "at(2026-11-21T10:00:00)",
        ] {
            let expression = parse(text);
            assert_eq!(expression.to_string(), text);
            assert_eq!(parse(&expression.to_string()), expression);
        }
    }

    #[test]
    fn schedule_display_is_canonical() {
        assert_eq!(
            parse("  cron(0  18 ? jan-mar mon-fri  *) ").to_string(),
            "cron(0 18 ? JAN-MAR MON-FRI *)"
        );
        assert_eq!(parse("rate( 05 minutes )").to_string(), "rate(5 minutes)");
        assert_eq!(
            parse("cron(0 0 lw * ? *)").to_string(),
            "cron(0 0 LW * ? *)"
        );
    }

    #[test]
    fn schedule_every_day_at_ten() {
        // 2026-01-05 is a Monday.
        assert_eq!(
            firings("cron(0 10 * * ? *)", "2026-01-05 09:59", 2),
            ["2026-01-05 Mon 10:00", "2026-01-06 Tue 10:00"]
        );
        assert_eq!(
            next("cron(15 12 * * ? *)", "2026-01-05 12:15"),
            "2026-01-06 Tue 12:15"
        );
    }

    #[test]
    fn schedule_firings_are_strictly_after() {
        let at_ten = "cron(0 10 * * ? *)";
        assert_eq!(next(at_ten, "2026-01-05 10:00:00"), "2026-01-06 Tue 10:00");
        assert_eq!(next(at_ten, "2026-01-05 09:59:59"), "2026-01-05 Mon 10:00");
        assert_eq!(
            next("cron(* * * * ? *)", "2026-01-05 10:00:30"),
            "2026-01-05 Mon 10:01"
        );
    }

    #[test]
    fn schedule_weekdays_skip_the_weekend() {
        // 2026-01-09 is a Friday.
        assert_eq!(
            firings("cron(0 18 ? * MON-FRI *)", "2026-01-09 12:00", 2),
            ["2026-01-09 Fri 18:00", "2026-01-12 Mon 18:00"]
        );
        assert_eq!(
            firings("cron(0/10 * ? * MON-FRI *)", "2026-01-09 23:45", 2),
            ["2026-01-09 Fri 23:50", "2026-01-12 Mon 00:00"]
        );
        assert_eq!(
            firings("cron(0/5 8-17 ? * MON-FRI *)", "2026-01-09 17:50", 3),
            [
                "2026-01-09 Fri 17:55",
                "2026-01-12 Mon 08:00",
                "2026-01-12 Mon 08:05"
            ]
        );
    }

    #[test]
    fn schedule_first_of_the_month() {
        assert_eq!(
            firings("cron(0 8 1 * ? *)", "2026-01-15 00:00", 2),
            ["2026-02-01 Sun 08:00", "2026-03-01 Sun 08:00"]
        );
    }

    #[test]
    fn schedule_every_quarter_hour() {
        assert_eq!(
            firings("cron(0/15 * * * ? *)", "2026-01-05 10:50", 3),
            [
                "2026-01-05 Mon 11:00",
                "2026-01-05 Mon 11:15",
                "2026-01-05 Mon 11:30"
            ]
        );
    }

    #[test]
    fn schedule_first_monday_of_the_month() {
        // 2#1: Monday (2) the first. Feb 2026 starts on a Sunday, Mar 2026 too.
        assert_eq!(
            firings("cron(0 9 ? * 2#1 *)", "2026-01-15 00:00", 2),
            ["2026-02-02 Mon 09:00", "2026-03-02 Mon 09:00"]
        );
    }

    // ---- L, W, LW and #

    #[test]
    fn schedule_last_day_of_the_month() {
        assert_eq!(
            firings("cron(0 0 L * ? *)", "2024-01-31 00:00", 4),
            [
                "2024-02-29 Thu 00:00",
                "2024-03-31 Sun 00:00",
                "2024-04-30 Tue 00:00",
                "2024-05-31 Fri 00:00"
            ]
        );
        assert_eq!(
            next("cron(0 0 L 2 ? *)", "2025-01-01 00:00"),
            "2025-02-28 Fri 00:00"
        );
        assert_eq!(
            next("cron(0 0 L 2 ? *)", "2100-01-01 00:00"),
            "2100-02-28 Sun 00:00"
        );
    }

    #[test]
    fn schedule_l_alone_in_day_of_week_is_saturday() {
        assert_eq!(
            firings("cron(0 12 ? * L *)", "2026-01-05 00:00", 2),
            ["2026-01-10 Sat 12:00", "2026-01-17 Sat 12:00"]
        );
    }

    #[test]
    fn schedule_last_thursday_of_the_month() {
        // January 2026 ends on Saturday the 31st, so its last Thursday is the
        // 29th; February ends on Saturday the 28th: Thursday the 26th.
        assert_eq!(
            firings("cron(0 9 ? * 5L *)", "2026-01-01 00:00", 2),
            ["2026-01-29 Thu 09:00", "2026-02-26 Thu 09:00"]
        );
        assert_eq!(
            next("cron(0 9 ? * THUL *)", "2026-01-01 00:00"),
            "2026-01-29 Thu 09:00"
        );
    }

    #[test]
    fn schedule_nearest_weekday() {
        // 15 Aug 2026 is a Saturday: Friday the 14th. 15 Nov 2026 is a
        // Sunday: Monday the 16th. 15 Sep 2026 is a Tuesday: the 15th.
        assert_eq!(
            next("cron(0 9 15W 8 ? *)", "2026-01-01 00:00"),
            "2026-08-14 Fri 09:00"
        );
        assert_eq!(
            next("cron(0 9 15W 11 ? *)", "2026-01-01 00:00"),
            "2026-11-16 Mon 09:00"
        );
        assert_eq!(
            next("cron(0 9 15W 9 ? *)", "2026-01-01 00:00"),
            "2026-09-15 Tue 09:00"
        );
    }

    #[test]
    fn schedule_nearest_weekday_stays_in_the_month() {
        // 1 Aug 2026 is a Saturday: not Friday 31 July but Monday the 3rd.
        assert_eq!(
            next("cron(0 9 1W 8 ? *)", "2026-01-01 00:00"),
            "2026-08-03 Mon 09:00"
        );
        // 31 May 2026 is a Sunday: not Monday 1 June but Friday the 29th.
        assert_eq!(
            next("cron(0 9 31W 5 ? *)", "2026-01-01 00:00"),
            "2026-05-29 Fri 09:00"
        );
        // April has no 31st, so 31W skips it.
        assert_eq!(
            firings("cron(0 9 31W 3-5 ? 2026)", "2026-01-01 00:00", 3),
            ["2026-03-31 Tue 09:00", "2026-05-29 Fri 09:00"]
        );
    }

    #[test]
    fn schedule_last_weekday_of_the_month() {
        // Jan 2026 ends on a Saturday, Feb on a Saturday, Mar on a Tuesday,
        // May on a Sunday.
        assert_eq!(
            firings("cron(0 17 LW * ? *)", "2026-01-01 00:00", 5),
            [
                "2026-01-30 Fri 17:00",
                "2026-02-27 Fri 17:00",
                "2026-03-31 Tue 17:00",
                "2026-04-30 Thu 17:00",
                "2026-05-29 Fri 17:00"
            ]
        );
    }

    #[test]
    fn schedule_nth_weekday() {
        // 3#2: the second Tuesday. Jan 2026 starts on a Thursday, so its
        // Tuesdays are 6, 13, ...; Feb starts on a Sunday: 3, 10, ...
        assert_eq!(
            firings("cron(0 9 ? * 3#2 *)", "2026-01-01 00:00", 2),
            ["2026-01-13 Tue 09:00", "2026-02-10 Tue 09:00"]
        );
        // A fifth Friday exists only in some months: Jan 2026 (2, 9, 16, 23,
        // 30), then May (1, ..., 29), then July (3, ..., 31).
        assert_eq!(
            firings("cron(0 9 ? * FRI#5 *)", "2026-01-01 00:00", 3),
            [
                "2026-01-30 Fri 09:00",
                "2026-05-29 Fri 09:00",
                "2026-07-31 Fri 09:00"
            ]
        );
    }

    // ---- calendars and the year field

    #[test]
    fn schedule_crosses_month_and_year_ends() {
        assert_eq!(
            firings("cron(30 23 L * ? *)", "2026-11-30 23:30", 2),
            ["2026-12-31 Thu 23:30", "2027-01-31 Sun 23:30"]
        );
        assert_eq!(
            next("cron(0 0 1 1 ? *)", "2026-12-31 23:59:59"),
            "2027-01-01 Fri 00:00"
        );
        assert_eq!(
            next("cron(59 23 * * ? *)", "2026-12-31 23:59"),
            "2027-01-01 Fri 23:59"
        );
    }

    #[test]
    fn schedule_february_29th() {
        assert_eq!(
            firings("cron(0 12 29 2 ? *)", "2025-03-01 00:00", 2),
            ["2028-02-29 Tue 12:00", "2032-02-29 Sun 12:00"]
        );
        // 2100 is not a leap year: from 2096 the next is 2104.
        assert_eq!(
            firings("cron(0 12 29 2 ? *)", "2096-03-01 00:00", 1),
            ["2104-02-29 Fri 12:00"]
        );
    }

    #[test]
    fn schedule_year_field_limits() {
        assert_eq!(
            firings("cron(0 0 1 1 ? 2030-2040/5)", "2026-01-01 00:00", 4),
            [
                "2030-01-01 Tue 00:00",
                "2035-01-01 Mon 00:00",
                "2040-01-01 Sun 00:00"
            ]
        );
        assert_eq!(next("cron(0 0 1 1 ? 2030)", "2030-01-01 00:00"), "never");
        // The field's range is 1970-2199.
        assert_eq!(
            next("cron(0 0 * * ? *)", "1960-06-01 00:00"),
            "1970-01-01 Thu 00:00"
        );
        assert_eq!(
            next("cron(0 0 * * ? *)", "2199-12-30 12:00"),
            "2199-12-31 Tue 00:00"
        );
        assert_eq!(next("cron(0 0 * * ? *)", "2199-12-31 00:00"), "never");
    }

    #[test]
    fn schedule_that_can_never_fire_ends() {
        assert_eq!(next("cron(0 0 30 2 ? *)", "1970-01-01 00:00"), "never");
        assert_eq!(
            next("cron(0 0 31 4,6,9,11 ? *)", "1970-01-01 00:00"),
            "never"
        );
    }

    #[test]
    fn schedule_steps_lists_and_ranges() {
        assert_eq!(
            firings("cron(5-30/10 9 * * ? *)", "2026-01-05 00:00", 4),
            [
                "2026-01-05 Mon 09:05",
                "2026-01-05 Mon 09:15",
                "2026-01-05 Mon 09:25",
                "2026-01-06 Tue 09:05"
            ]
        );
        assert_eq!(
            firings("cron(*/20 22,23 * * ? *)", "2026-01-05 23:30", 2),
            ["2026-01-05 Mon 23:40", "2026-01-06 Tue 22:00"]
        );
        assert_eq!(
            firings("cron(0 0 1 JAN,jul ? *)", "2026-01-01 00:00", 2),
            ["2026-07-01 Wed 00:00", "2027-01-01 Fri 00:00"]
        );
        assert_eq!(
            firings("cron(0 0 ? * 1,7 *)", "2026-01-05 00:00", 2),
            ["2026-01-10 Sat 00:00", "2026-01-11 Sun 00:00"]
        );
    }

    #[test]
    fn schedule_next_after_is_cheap_far_ahead() {
        // Only 2196's Feb 29th qualifies: this walks 226 years.
        let expression = parse("cron(59 23 29 2 ? 2196)");
        let start = std::time::Instant::now();
        let next = expression.next_after(utc("1970-01-01 00:00"), utc("1970-01-01 00:00"));
        assert_eq!(next, Some(utc("2196-02-29 23:59")));
        // Minute by minute this would take seconds; day by day, microseconds.
        assert!(start.elapsed() < std::time::Duration::from_millis(500));
    }

    // ---- rate(...) and at(...)

    #[test]
    fn schedule_rate_counts_from_the_anchor() {
        let every_five = parse("rate(5 minutes)");
        let anchor = utc("2026-01-05 10:00:17");
        let after = |text| every_five.next_after(anchor, utc(text));
        assert_eq!(after("2026-01-05 09:00"), Some(anchor), "before the start");
        assert_eq!(
            after("2026-01-05 10:00:17"),
            Some(utc("2026-01-05 10:05:17"))
        );
        assert_eq!(
            after("2026-01-05 10:07:30"),
            Some(utc("2026-01-05 10:10:17"))
        );
        assert_eq!(
            after("2026-01-05 10:10:17"),
            Some(utc("2026-01-05 10:15:17"))
        );
    }

    #[test]
    fn schedule_rate_units() {
        let anchor = utc("2026-01-05 10:00");
        let next = |text: &str, after| parse(text).next_after(anchor, utc(after));
        assert_eq!(
            next("rate(1 hour)", "2026-01-05 12:30"),
            Some(utc("2026-01-05 13:00"))
        );
        assert_eq!(
            next("rate(7 days)", "2026-01-12 10:00"),
            Some(utc("2026-01-19 10:00"))
        );
        assert_eq!(
            next("rate(1 day)", "2026-02-28 11:00"),
            Some(utc("2026-03-01 10:00"))
        );
        assert_eq!(
            next("rate(4294967295 days)", "2026-01-05 10:00"),
            None,
            "beyond chrono's calendar"
        );
    }

    #[test]
    fn schedule_at_fires_once() {
        let once = parse("at(2026-11-21T10:00:00)");
        let anchor = utc("2026-01-01 00:00");
        assert_eq!(
            once.next_after(anchor, utc("2026-11-21 09:59:59")),
            Some(utc("2026-11-21 10:00"))
        );
        assert_eq!(once.next_after(anchor, utc("2026-11-21 10:00")), None);
        assert_eq!(once.next_after(anchor, utc("2027-01-01 00:00")), None);
    }

    // ---- refusals

    #[test]
    fn schedule_refuses_day_of_month_and_day_of_week_together() {
        assert_eq!(
            error("cron(0 10 * * MON *)"),
            "cron(...): day-of-month and day-of-week can't both be set: use ? in one of them"
        );
        assert_eq!(
            error("cron(0 10 * * * *)"),
            "cron(...): day-of-month and day-of-week can't both be set: use ? in one of them"
        );
        assert_eq!(
            error("cron(0 10 ? * ? *)"),
            "cron(...): day-of-month and day-of-week can't both be ?: set one of them"
        );
    }

    #[test]
    fn schedule_refuses_wrong_field_counts() {
        assert_eq!(
            error("cron(0 10 * * ?)"),
            "cron(...): expected 6 fields (minutes hours day-of-month month day-of-week year), found 5"
        );
        assert!(error("cron(0 0 10 * * ? *)").ends_with("found 7"));
        assert!(error("cron()").ends_with("found 0"));
    }

    #[test]
    fn schedule_refuses_out_of_range_values() {
        for (text, message) in [
            ("cron(60 * * * ? *)", "minutes: 60 is out of range 0-59"),
            ("cron(0 24 * * ? *)", "hours: 24 is out of range 0-23"),
            ("cron(0 0 0 * ? *)", "day-of-month: 0 is out of range 1-31"),
            (
                "cron(0 0 32 * ? *)",
                "day-of-month: 32 is out of range 1-31",
            ),
            (
                "cron(0 0 32W * ? *)",
                "day-of-month: 32 is out of range 1-31",
            ),
            (
                "cron(0 0 1 13 ? *)",
                "month: 13 is out of range 1-12 (or JAN-DEC)",
            ),
            (
                "cron(0 0 ? * 8 *)",
                "day-of-week: 8 is out of range 1-7 (or SUN-SAT)",
            ),
            (
                "cron(0 0 ? * 0 *)",
                "day-of-week: 0 is out of range 1-7 (or SUN-SAT)",
            ),
            (
                "cron(0 0 ? * 8#1 *)",
                "day-of-week: 8 is out of range 1-7 (or SUN-SAT)",
            ),
            (
                "cron(0 0 1 1 ? 1969)",
                "year: 1969 is out of range 1970-2199",
            ),
            (
                "cron(0 0 1 1 ? 2200)",
                "year: 2200 is out of range 1970-2199",
            ),
            (
                "cron(99999999999 0 1 1 ? *)",
                "minutes: 99999999999 is out of range 0-59",
            ),
        ] {
            assert_eq!(error(text), format!("cron(...): {message}"), "{text}");
        }
    }

    #[test]
    fn schedule_refuses_malformed_fields() {
        for (text, message) in [
            (
                "cron(0 0 1 FOO ? *)",
                r#"month: "FOO" is not a number or a name JAN-DEC"#,
            ),
            (
                "cron(0 0 ? * MONDAY *)",
                r#"day-of-week: "MONDAY" is not a number or a name SUN-SAT"#,
            ),
            ("cron(x 0 1 1 ? *)", r#"minutes: "X" is not a number"#),
            ("cron(-5 0 1 1 ? *)", "minutes: a value is missing"),
            (
                "cron(1,,2 0 1 1 ? *)",
                r#"minutes: empty item in the list "1,,2""#,
            ),
            (
                "cron(0/0 0 1 1 ? *)",
                "minutes: increment must be at least 1, not 0",
            ),
            (
                "cron(0/ 0 1 1 ? *)",
                r#"minutes: increment "" is not a positive integer"#,
            ),
            (
                "cron(30-10 0 1 1 ? *)",
                "minutes: range 30-10 runs backwards (ranges can't wrap around; use a list)",
            ),
            (
                "cron(0 0 ? * FRI-MON *)",
                "day-of-week: range FRI-MON runs backwards (ranges can't wrap around; use a list)",
            ),
            (
                "cron(? 0 1 1 ? *)",
                "minutes: ? is only allowed in day-of-month or day-of-week",
            ),
            (
                "cron(0 0 1,? * ? *)",
                "day-of-month: ? can't be combined with other values",
            ),
            (
                "cron(0 0 ? * 1/2 *)",
                "day-of-week: / (increments) is not allowed in day-of-week",
            ),
            (
                "cron(0 0 ? * 3#6 *)",
                r#"day-of-week: "6" after # is not 1-5 (the nth such day of the month)"#,
            ),
            (
                "cron(0 0 ? * 3#1,6#3 *)",
                r#"day-of-week: # allows a single expression, and "3#1,6#3" is a list"#,
            ),
            (
                "cron(0 0 ? * MON-FRI#2 *)",
                r#"day-of-week: L and # take a single day, e.g. 5L or 3#2, not "MON-FRI#2""#,
            ),
            (
                "cron(0 0 ? * 1,5L *)",
                r#"day-of-week: L and # take a single day, e.g. 5L or 3#2, not "1,5L""#,
            ),
            (
                "cron(0 0 1#2 * ? *)",
                "day-of-month: # is only allowed in day-of-week",
            ),
            (
                "cron(0 0 L-3 * ? *)",
                r#"day-of-month: L and W stand alone (L, LW or a single day such as 15W), not "L-3""#,
            ),
            (
                "cron(0 0 1W,15W * ? *)",
                r#"day-of-month: W takes a single day, e.g. 15W, not "1W,15W""#,
            ),
            (
                "cron(0 0 1-5W * ? *)",
                r#"day-of-month: W takes a single day, e.g. 15W, not "1-5W""#,
            ),
        ] {
            assert_eq!(error(text), format!("cron(...): {message}"), "{text}");
        }
    }

    #[test]
    fn schedule_refuses_bad_rates() {
        for (text, message) in [
            ("rate(0 minutes)", "value must be a positive integer, not 0"),
            (
                "rate(1 minutes)",
                "value 1 takes the singular unit: rate(1 minute), not rate(1 minutes)",
            ),
            (
                "rate(5 minute)",
                "value 5 takes the plural unit: rate(5 minutes), not rate(5 minute)",
            ),
            (
                "rate(1 hours)",
                "value 1 takes the singular unit: rate(1 hour), not rate(1 hours)",
            ),
            (
                "rate(2 day)",
                "value 2 takes the plural unit: rate(2 days), not rate(2 day)",
            ),
            (
                "rate(5 weeks)",
                r#"unit "weeks" is not one of minute, minutes, hour, hours, day, days"#,
            ),
            (
                "rate(5 Minutes)",
                r#"unit "Minutes" is not one of minute, minutes, hour, hours, day, days"#,
            ),
            (
                "rate(-5 minutes)",
                r#"value "-5" is not a positive integer"#,
            ),
            (
                "rate(+5 minutes)",
                r#"value "+5" is not a positive integer"#,
            ),
            (
                "rate(1.5 hours)",
                r#"value "1.5" is not a positive integer"#,
            ),
            (
                "rate(99999999999 minutes)",
                "value 99999999999 is too large",
            ),
            (
                "rate(5)",
                r#"expected a value and a unit, e.g. rate(5 minutes), found "5""#,
            ),
            (
                "rate(5 minutes now)",
                r#"expected a value and a unit, e.g. rate(5 minutes), found "5 minutes now""#,
            ),
            ("rate(5 minutes", r#""rate(5 minutes" does not end with )"#),
        ] {
            assert_eq!(error(text), format!("rate(...): {message}"), "{text}");
        }
    }

    #[test]
    fn schedule_refuses_bad_times() {
        for (text, message) in [
            (
                "at(2026-02-30T10:00:00)",
                "2026-02-30T10:00:00 is not a valid date and time",
            ),
            (
                "at(2026-11-21T24:00:00)",
                "2026-11-21T24:00:00 is not a valid date and time",
            ),
            (
                "at(2026-11-21T10:00:60)",
                "2026-11-21T10:00:60 is not a valid date and time",
            ),
            (
                "at(2026-11-21 10:00:00)",
                r#"expected yyyy-mm-ddThh:mm:ss, found "2026-11-21 10:00:00""#,
            ),
            (
                "at(2026-11-21T10:00)",
                r#"expected yyyy-mm-ddThh:mm:ss, found "2026-11-21T10:00""#,
            ),
            (
                "at(2026-11-21T10:00:00Z)",
                r#"expected yyyy-mm-ddThh:mm:ss, found "2026-11-21T10:00:00Z""#,
            ),
        ] {
            assert_eq!(error(text), format!("at(...): {message}"), "{text}");
        }
    }

    #[test]
    fn schedule_refuses_garbage() {
        for text in [
            "",
            "   ",
            "every 5 minutes",
            "RATE(5 minutes)",
            "cron",
            "0 10 * * ? *",
            "rate[5 minutes]",
        ] {
            assert_eq!(
                error(text),
                format!(
                    "{:?} is not a schedule expression: expected rate(value unit), cron(fields) or at(yyyy-mm-ddThh:mm:ss)",
                    text.trim()
                )
            );
        }
        assert_eq!(
            error("cron(0 10 * * ? *"),
            r#"cron(...): "cron(0 10 * * ? *" does not end with )"#
        );
        assert_eq!(
            error("cron(0 1ö * * ? *)"),
            r#"cron(...): hours: "1ö" is not a number"#
        );
    }

    #[test]
    fn schedule_error_names_the_field() {
        let Err(ScheduleError::CronField { field, .. }) =
            ScheduleExpression::parse("cron(0 0 ? * 8 *)")
        else {
            panic!("expected a field error");
        };
        assert_eq!(field, CronField::DayOfWeek);
    }

    // ---- properties

    #[test]
    fn schedule_next_after_survives_the_calendar_edges() {
        let (min, max) = (DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
        for text in [
            "rate(1 minute)",
            "rate(4294967295 days)",
            "cron(* * * * ? *)",
            "at(2026-11-21T10:00:00)",
        ] {
            let expression = parse(text);
            for (anchor, after) in [(min, min), (min, max), (max, min), (max, max)] {
                // Whatever it answers, it must answer.
                let _ = expression.next_after(anchor, after);
            }
        }
        assert_eq!(
            parse("cron(* * * * ? *)").next_after(min, min),
            Some(utc("1970-01-01 00:00"))
        );
        assert_eq!(parse("rate(1 minute)").next_after(min, max), None);
    }

    /// Whether `cron` fires at the start of `time`'s minute.
    fn fires_at(cron: &Cron, time: NaiveDateTime) -> bool {
        u32::try_from(time.year()).is_ok_and(|year| cron.years.contains(year))
            && cron.months.contains(time.month())
            && cron.days.matches(time.date())
            && cron.hours.contains(time.hour())
            && cron.minutes.contains(time.minute())
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Valid expressions, mixing every kind of field.
        fn cron_text() -> impl Strategy<Value = String> {
            let minutes =
                prop::sample::select(vec!["*", "0", "59", "*/7", "5-20/5", "0,30", "45/20"]);
            let hours = prop::sample::select(vec!["*", "0", "23", "8-17", "*/5", "3,15"]);
            let month_days = prop::sample::select(vec![
                "*", "1", "29", "31", "L", "LW", "1W", "15W", "31W", "1-7", "10/10",
            ]);
            let months = prop::sample::select(vec!["*", "2", "JAN,JUL", "11-12", "4/3"]);
            let week_days = prop::sample::select(vec![
                "*", "MON-FRI", "L", "6L", "2#1", "1#5", "7", "SUN,WED",
            ]);
            let years = prop::sample::select(vec!["*", "2026-2030", "2028", "2025/3"]);
            (
                minutes,
                hours,
                any::<bool>(),
                month_days,
                months,
                week_days,
                years,
            )
                .prop_map(
                    |(minutes, hours, by_month_day, month_days, months, week_days, years)| {
                        let (month_days, week_days) = if by_month_day {
                            (month_days, "?")
                        } else {
                            ("?", week_days)
                        };
                        format!("cron({minutes} {hours} {month_days} {months} {week_days} {years})")
                    },
                )
        }

        fn time() -> impl Strategy<Value = DateTime<Utc>> {
            // 2025-01-01 to 2031-01-01, to the second.
            (1_735_689_600_i64..1_924_992_000)
                .prop_map(|seconds| DateTime::from_timestamp(seconds, 0).unwrap_or_default())
        }

        proptest! {
            // Failures print their input; no regression files in the tree.
            #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn schedule_parse_never_panics(text in "\\PC{0,40}") {
                let _ = ScheduleExpression::parse(&text);
            }

            #[test]
            fn schedule_parse_never_panics_on_near_misses(
                kind in prop::sample::select(vec!["cron(", "rate(", "at("]),
                body in "[0-9LW#?*/,A-Za-z :T-]{0,30}",
            ) {
                if let Ok(expression) = ScheduleExpression::parse(&format!("{kind}{body})")) {
                    prop_assert_eq!(parse(&expression.to_string()), expression);
                }
            }

            #[test]
            fn schedule_cron_next_after_is_the_first_firing(text in cron_text(), after in time()) {
                let expression = parse(&text);
                let ScheduleExpression::Cron(cron) = &expression else { unreachable!() };
                let next = expression.next_after(after, after);
                let start = after.naive_utc().with_second(0).unwrap_or_default() + TimeDelta::minutes(1);
                let end = next.map_or_else(|| utc("2200-01-01 00:00").naive_utc(), |next| next.naive_utc());
                if let Some(next) = next {
                    prop_assert!(next > after);
                    prop_assert!(fires_at(cron, next.naive_utc()), "{} does not fire at {}", text, next);
                }
                // No minute before `next` fires: minute by minute for a day,
                // then by whole days (hours and minutes are never empty).
                let mut minute = start;
                while minute < end && minute < start + TimeDelta::days(1) {
                    prop_assert!(!fires_at(cron, minute), "{} fires earlier, at {}", text, minute);
                    minute += TimeDelta::minutes(1);
                }
                let mut day = start.date() + TimeDelta::days(1);
                while day < end.date() {
                    let fires = u32::try_from(day.year()).is_ok_and(|year| cron.years.contains(year))
                        && cron.months.contains(day.month())
                        && cron.days.matches(day);
                    prop_assert!(!fires, "{} fires earlier, on {}", text, day);
                    day += TimeDelta::days(1);
                }
            }

            #[test]
            fn schedule_rate_next_after_is_on_the_grid(
                value in 1_u32..5000,
                unit in prop::sample::select(vec![RateUnit::Minute, RateUnit::Hour, RateUnit::Day]),
                anchor in time(),
                after in time(),
            ) {
                let expression = parse(&format!("rate({value} {})", unit.name(value)));
                let ScheduleExpression::Rate(rate) = &expression else { unreachable!() };
                let next = expression.next_after(anchor, after).expect("in range");
                prop_assert!(next > after);
                prop_assert!(next >= anchor);
                let periods = (next - anchor).num_seconds() / rate.period().num_seconds();
                prop_assert_eq!(anchor + rate.period() * i32::try_from(periods).unwrap_or(i32::MAX), next);
                prop_assert!(next - rate.period() <= after || next == anchor);
            }
        }
    }
}
