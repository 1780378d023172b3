//! ISO 8601 dates, durations and Pacemaker intervals.
//!
//! Pacemaker reads points in time in several ISO 8601 forms (calendar dates
//! such as `2009-01-01 12:00:00Z`, ordinal dates such as `2005-020T12:00:00`,
//! week dates such as `2008-W01-1`, each with an optional time of day and UTC
//! offset), durations such as `P1Y2M3DT4H5M6S`, and operation intervals and
//! timeouts such as `10s`, `500ms` or `PT1M`. This module reads all of them
//! the way Pacemaker does, including its leniencies, and does the calendar
//! arithmetic its rules need. It has no clock: anything that depends on "now"
//! (the current date, the local UTC offset) is an input.
//!
//! A [`DateTime`] keeps Pacemaker's model of a point in time: a year, a day of
//! that year, a second of that day, all in local time, plus the offset of that
//! local time from UTC. Calendar accessors ([`DateTime::hours`],
//! [`DateTime::weekday`], ...) answer in local time, as Pacemaker's
//! `date_spec` does; comparison and [`DateTime::to_epoch_seconds`] work on the
//! instant.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

const SECONDS_IN_MINUTE: i64 = 60;
const SECONDS_IN_HOUR: i64 = 3600;
const SECONDS_IN_DAY: i64 = 86_400;
/// Seconds from 0001-01-01T00:00:00 to 1970-01-01T00:00:00 (proleptic
/// Gregorian calendar).
const EPOCH_OFFSET_SECONDS: i64 = 62_135_596_800;

/// Why a text is not a date, time or duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{input}' is not a valid ISO 8601 {what}: {reason}")]
pub struct TimeError {
    pub input: String,
    /// "date/time" or "duration".
    pub what: &'static str,
    pub reason: String,
}

impl TimeError {
    fn date(input: &str, reason: impl Into<String>) -> Self {
        TimeError {
            input: input.to_string(),
            what: "date/time",
            reason: reason.into(),
        }
    }
    fn duration(input: &str, reason: impl Into<String>) -> Self {
        TimeError {
            input: input.to_string(),
            what: "duration",
            reason: reason.into(),
        }
    }
}

// ---------------------------------------------------------------------------
// Calendar helpers (proleptic Gregorian).

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn year_days(year: i64) -> i64 {
    if is_leap_year(year) { 366 } else { 365 }
}

/// Days in `month` (1-12) of `year`, or 0 when either is out of range.
fn days_in_month(month: i64, year: i64) -> i64 {
    if !(1..=12).contains(&month) || year < 1 {
        return 0;
    }
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Day of the year of `year`-`month`-`day` (all assumed in range).
fn ordinal_day(year: i64, month: i64, day: i64) -> i64 {
    (1..month).map(|m| days_in_month(m, year)).sum::<i64>() + day
}

/// Days from 0001-01-01 to January 1 of `year`.
fn days_before_year(year: i64) -> i64 {
    let y = year - 1;
    365 * y + y.div_euclid(4) - y.div_euclid(100) + y.div_euclid(400)
}

/// Weekday of January 1 of `year`, 1 = Monday .. 7 = Sunday. (0001-01-01 was
/// a Monday in the proleptic Gregorian calendar.)
fn jan1_weekday(year: i64) -> i64 {
    days_before_year(year).rem_euclid(7) + 1
}

/// Number of ISO weeks in `year`: 53 when the year starts on a Thursday or
/// ends on one (that is, the next year starts on a Friday), 52 otherwise.
fn weeks_in_year(year: i64) -> i64 {
    if jan1_weekday(year) == 4 || jan1_weekday(year + 1) == 5 {
        53
    } else {
        52
    }
}

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

// ---------------------------------------------------------------------------
// A tiny scanf: enough to read numbers the way C's `%u` and `strtoll` do.

/// Reads an unsigned number like C's `sscanf("%u")`: leading white space is
/// skipped, a sign is accepted (a minus wraps around, as in C), and at most
/// `width` characters (sign included) are read when a width is given.
/// Returns the value and the rest of the text.
fn scan_uint(s: &str, width: Option<usize>) -> Option<(u32, &str)> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() && is_c_space(bytes[i]) {
        i += 1;
    }
    let limit = width.map_or(bytes.len(), |w| (i + w).min(bytes.len()));
    let mut negative = false;
    if i < limit && (bytes[i] == b'+' || bytes[i] == b'-') {
        negative = bytes[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut value: u64 = 0;
    while i < limit && bytes[i].is_ascii_digit() {
        value = value
            .saturating_mul(10)
            .saturating_add(u64::from(bytes[i] - b'0'));
        i += 1;
    }
    if i == start {
        return None;
    }
    if negative {
        value = value.wrapping_neg();
    }
    // C stores the unsigned long result into an unsigned int.
    Some((value as u32, &s[i..]))
}

/// Runs a scanf-like format over `s`: `None` items are `%u` (with an optional
/// width), `Some(text)` items are literal text. Returns how many numbers were
/// converted before the first mismatch, and the numbers.
fn scan_format(s: &str, format: &[Item]) -> (usize, [u32; 3]) {
    let mut out = [0u32; 3];
    let mut n = 0;
    let mut rest = s;
    for item in format {
        match item {
            Item::Num(width) => match scan_uint(rest, *width) {
                Some((v, r)) => {
                    out[n] = v;
                    n += 1;
                    rest = r;
                }
                None => break,
            },
            Item::Lit(text) => match rest.strip_prefix(text) {
                Some(r) => rest = r,
                None => break,
            },
        }
    }
    (n, out)
}

#[derive(Clone, Copy)]
enum Item {
    Num(Option<usize>),
    Lit(&'static str),
}

const U: Item = Item::Num(None);
const U2: Item = Item::Num(Some(2));
const U4: Item = Item::Num(Some(4));

/// The outcome of reading a `long long` the way C's `strtoll` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanLl {
    /// A number, and how many bytes of the text it used.
    Ok(i64, usize),
    /// A number too large; clipped to the nearest limit.
    Range(i64, usize),
    /// No digits.
    NoDigits,
}

/// Reads a decimal `long long` prefix of `s` as `strtoll(s, &end, 10)` does:
/// white space, an optional sign, digits; the rest is left over.
pub(crate) fn scan_ll(s: &str) -> ScanLl {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() && is_c_space(bytes[i]) {
        i += 1;
    }
    let mut negative = false;
    if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
        negative = bytes[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut value: i128 = 0;
    let mut overflow = false;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        if !overflow {
            value = value * 10 + i128::from(bytes[i] - b'0');
            if value > i128::from(i64::MAX) + 1 {
                overflow = true;
            }
        }
        i += 1;
    }
    if i == start {
        return ScanLl::NoDigits;
    }
    if negative {
        value = -value;
    }
    if overflow || value > i128::from(i64::MAX) || value < i128::from(i64::MIN) {
        let clipped = if negative { i64::MIN } else { i64::MAX };
        return ScanLl::Range(clipped, i);
    }
    ScanLl::Ok(value as i64, i)
}

/// Reads an integer as Pacemaker's `pcmk__scan_ll()` does: a `strtoll`
/// prefix (trailing text is ignored); `None` when there are no digits or the
/// number does not fit.
pub fn scan_integer(s: &str) -> Option<i64> {
    match scan_ll(s) {
        ScanLl::Ok(v, _) => Some(v),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// DateTime

/// A point in time as Pacemaker models it: local year, day of year and second
/// of day, with the local time's offset from UTC in seconds (east positive).
///
/// Equality and ordering compare instants (after conversion to UTC), so
/// `12:00:00+02:00` equals `10:00:00Z`.
#[derive(Debug, Clone, Copy)]
pub struct DateTime {
    years: i32,
    /// Day of the year, 1-based.
    days: i32,
    /// Second of the day. Pacemaker's arithmetic can leave this at exactly
    /// 86400 (see [`DateTime::add_seconds`]).
    seconds: i32,
    /// Offset of local time from UTC, in seconds east.
    offset: i32,
}

impl DateTime {
    /// Builds a time from calendar fields in local time with the given UTC
    /// offset (seconds east), or `None` if a field is out of range.
    pub fn new(
        year: i32,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
        offset_seconds: i32,
    ) -> Option<DateTime> {
        let (y, m, d) = (i64::from(year), i64::from(month), i64::from(day));
        if y < 1 || !(1..=12).contains(&m) || d < 1 || d > days_in_month(m, y) {
            return None;
        }
        if hour >= 24 || minute >= 60 || second >= 60 {
            return None;
        }
        if i64::from(offset_seconds).abs() >= SECONDS_IN_DAY {
            return None;
        }
        Some(DateTime {
            years: year,
            days: ordinal_day(y, m, d) as i32,
            seconds: (hour * 3600 + minute * 60 + second) as i32,
            offset: offset_seconds,
        })
    }

    /// The time `secs` seconds after 1970-01-01T00:00:00Z, in UTC.
    pub fn from_epoch_seconds(secs: i64) -> DateTime {
        Self::from_epoch_seconds_with_offset(secs, 0)
    }

    /// The time `secs` seconds after the epoch, expressed in local time with
    /// the given UTC offset (what Pacemaker's `localtime()` based conversion
    /// gives in a time zone with that offset).
    pub fn from_epoch_seconds_with_offset(secs: i64, offset_seconds: i32) -> DateTime {
        let total = secs
            .saturating_add(EPOCH_OFFSET_SECONDS)
            .saturating_add(i64::from(offset_seconds));
        let mut day_number = total.div_euclid(SECONDS_IN_DAY);
        let sod = total.rem_euclid(SECONDS_IN_DAY);
        if day_number < 0 {
            // Before 0001-01-01: clip, as Pacemaker does (no BCE).
            day_number = 0;
        }
        // Estimate the year, then correct it.
        let mut year = day_number * 400 / 146_097 + 1;
        while days_before_year(year) > day_number {
            year -= 1;
        }
        while days_before_year(year + 1) <= day_number {
            year += 1;
        }
        let year = year.min(i64::from(i32::MAX));
        DateTime {
            years: year as i32,
            days: (day_number - days_before_year(year) + 1) as i32,
            seconds: sod as i32,
            offset: offset_seconds,
        }
    }

    /// Parses one of Pacemaker's ISO 8601 forms. A time of day given without
    /// an offset is taken as UTC (Pacemaker would use the host's local
    /// offset; see [`DateTime::parse_with`]). A bare time of day, without a
    /// date, is refused because it needs today's date.
    pub fn parse(s: &str) -> Result<DateTime, TimeError> {
        Self::parse_with(s, 0, None)
    }

    /// Parses like [`DateTime::parse`], taking times of day without an offset
    /// to be at `local_offset` seconds east of UTC, and completing a bare time
    /// of day (`T12:00`, `12:00:00`) with the date of `today` (in `today`'s
    /// own local time).
    ///
    /// Accepted forms, all as Pacemaker accepts them:
    /// - `YYYY-MM-DD`, `YYYYMMDD` (calendar date),
    /// - `YYYY-DDD` (ordinal date),
    /// - `YYYY-Www-D` (ISO week date),
    /// - `epoch` (1970-01-01 00:00:00Z),
    ///
    /// each optionally followed by `T` or a space and a time of day
    /// (`hh:mm:ss`, `hh:mm`, `hh`, `hhmmss`; `24:00:00` is midnight of the
    /// next day), itself optionally followed by `Z` or an offset `±hh:mm`
    /// (a space before the offset is tolerated). A date without a time of day
    /// is midnight UTC. Text after the date that does not start with `T` or a
    /// space is ignored, as Pacemaker ignores it.
    pub fn parse_with(
        s: &str,
        local_offset: i32,
        today: Option<&DateTime>,
    ) -> Result<DateTime, TimeError> {
        if s.is_empty() {
            return Err(TimeError::date(s, "it is empty"));
        }
        let bytes = s.as_bytes();
        if bytes[0] == b'T' || (bytes.len() > 2 && bytes[2] == b':') {
            let Some(today) = today else {
                return Err(TimeError::date(
                    s,
                    "a time of day alone needs the current date",
                ));
            };
            let time_s = s.strip_prefix('T').unwrap_or(s);
            let mut dt = *today;
            parse_time(s, time_s, &mut dt, local_offset)?;
            return dt.checked(s);
        }

        if bytes.len() >= 5
            && s[..5].eq_ignore_ascii_case("epoch")
            && (bytes.len() == 5 || bytes[5] == b'/' || is_c_space(bytes[5]))
        {
            return Ok(DateTime {
                years: 1970,
                days: 1,
                seconds: 0,
                offset: 0,
            });
        }

        let mut dt = parse_date_part(s)?;

        // The time of day, if any, follows a 'T' or a space after the date.
        let date_len = s
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'-' || *b == b'W')
            .count();
        let after = &s[date_len..];
        if let Some(time_s) = after.strip_prefix('T').or_else(|| after.strip_prefix(' ')) {
            parse_time(s, time_s, &mut dt, local_offset)?;
        }
        dt.checked(s)
    }

    fn checked(self, input: &str) -> Result<DateTime, TimeError> {
        let valid = self.days > 0
            && i64::from(self.days) <= year_days(i64::from(self.years))
            && self.seconds >= 0
            && i64::from(self.seconds) < SECONDS_IN_DAY;
        if valid {
            Ok(self)
        } else {
            Err(TimeError::date(input, "it does not name a valid time"))
        }
    }

    /// Seconds since 1970-01-01T00:00:00Z.
    pub fn to_epoch_seconds(&self) -> i64 {
        let utc = self.to_utc();
        let mut days = days_before_year(i64::from(utc.years));
        if utc.days > 0 {
            days += i64::from(utc.days) - 1;
        }
        i64::from(utc.seconds) + SECONDS_IN_DAY * days - EPOCH_OFFSET_SECONDS
    }

    /// The same instant expressed in UTC.
    pub fn to_utc(&self) -> DateTime {
        let mut utc = DateTime { offset: 0, ..*self };
        if self.offset != 0 {
            utc.add_seconds(-i64::from(self.offset));
        }
        utc
    }

    /// The same instant expressed at another UTC offset.
    pub fn with_offset(&self, offset_seconds: i32) -> DateTime {
        let mut t = self.to_utc();
        t.add_seconds(i64::from(offset_seconds));
        t.offset = offset_seconds;
        t
    }

    /// Offset of this time's local time from UTC, in seconds east.
    pub fn offset_seconds(&self) -> i32 {
        self.offset
    }

    /// This time plus a duration, calendar-aware as Pacemaker's
    /// `crm_time_add()`: years are added first (keeping the day of the year),
    /// then months (keeping the day of the month, clipped to the month's
    /// length), then days, then seconds.
    pub fn add_duration(&self, d: &Duration) -> DateTime {
        let mut t = *self;
        t.add_years(i64::from(d.years));
        t.add_months(i64::from(d.months));
        t.add_days(i64::from(d.days));
        t.add_seconds(i64::from(d.seconds));
        t
    }

    /// Adds years, keeping the day of the year; the year is clipped to
    /// 1..=i32::MAX.
    pub fn add_years(&mut self, value: i64) {
        let y = (i64::from(self.years) + value).clamp(1, i64::from(i32::MAX));
        self.years = y as i32;
    }

    /// Adds months, keeping the day of the month unless the target month is
    /// shorter, in which case its last day is used.
    pub fn add_months(&mut self, value: i64) {
        let (year, month, day) = self.gregorian();
        let index = (i64::from(year) * 12 + i64::from(month) - 1).saturating_add(value);
        let mut year = index.div_euclid(12);
        let month = index.rem_euclid(12) + 1;
        if year < 1 {
            year = 1;
        }
        let year = year.min(i64::from(i32::MAX));
        let day = i64::from(day).min(days_in_month(month, year));
        self.years = year as i32;
        self.days = ordinal_day(year, month, day) as i32;
    }

    /// Adds weeks (7 days each).
    pub fn add_weeks(&mut self, value: i64) {
        self.add_days(value.saturating_mul(7));
    }

    /// Adds days, moving across years; clipped to the first day of year 1.
    pub fn add_days(&mut self, mut value: i64) {
        let mut years = i64::from(self.years);
        let mut days = i64::from(self.days);
        if value > 0 {
            // Whole 400-year cycles first, so huge values stay cheap.
            let cycles = value / 146_097;
            let cycles = cycles.min((i64::from(i32::MAX) - years) / 400);
            years += cycles * 400;
            value -= cycles * 146_097;
            while days + value > year_days(years) {
                if years >= i64::from(i32::MAX) {
                    days = year_days(years);
                    value = 0;
                    break;
                }
                value -= year_days(years);
                years += 1;
            }
        } else if value < 0 {
            let cycles = (-value) / 146_097;
            let cycles = cycles.min((years - 1).max(0) / 400);
            years -= cycles * 400;
            value += cycles * 146_097;
            while days + value < 1 {
                if years <= 1 {
                    days = 1;
                    value = 0;
                    break;
                }
                years -= 1;
                value += year_days(years);
            }
        }
        self.years = years as i32;
        self.days = (days + value) as i32;
    }

    /// Adds hours.
    pub fn add_hours(&mut self, value: i64) {
        self.add_seconds(value.saturating_mul(SECONDS_IN_HOUR));
    }

    /// Adds minutes.
    pub fn add_minutes(&mut self, value: i64) {
        self.add_seconds(value.saturating_mul(SECONDS_IN_MINUTE));
    }

    /// Adds seconds. Like Pacemaker, a sum landing exactly on the end of a
    /// day stays on that day as second 86400 (it compares as earlier than
    /// midnight of the next day).
    pub fn add_seconds(&mut self, value: i64) {
        let mut days = value / SECONDS_IN_DAY;
        let mut seconds = i64::from(self.seconds) + value % SECONDS_IN_DAY;
        if seconds > SECONDS_IN_DAY {
            days += 1;
            seconds -= SECONDS_IN_DAY;
        } else if seconds < 0 {
            days -= 1;
            seconds += SECONDS_IN_DAY;
        }
        self.seconds = seconds as i32;
        self.add_days(days);
    }

    /// (year, month 1-12, day of month) in local time.
    fn gregorian(&self) -> (i32, u32, u32) {
        let year = i64::from(self.years);
        let mut days = i64::from(self.days);
        let mut month = 1;
        while month <= 12 && days > 0 {
            let mdays = days_in_month(month, year);
            if mdays >= days {
                break;
            }
            days -= mdays;
            month += 1;
        }
        (self.years, month as u32, days.max(0) as u32)
    }

    /// Calendar year (local time).
    pub fn year(&self) -> i32 {
        self.years
    }

    /// Month, 1-12 (local time).
    pub fn month(&self) -> u32 {
        self.gregorian().1
    }

    /// Day of the month, 1-31 (local time).
    pub fn monthday(&self) -> u32 {
        self.gregorian().2
    }

    /// Day of the year, 1-366 (local time).
    pub fn yearday(&self) -> u32 {
        self.days.max(0) as u32
    }

    /// Hour of the day, 0-23 (local time).
    pub fn hours(&self) -> u32 {
        (self.seconds / 3600).unsigned_abs()
    }

    /// Minute of the hour, 0-59 (local time).
    pub fn minutes(&self) -> u32 {
        ((self.seconds % 3600) / 60).unsigned_abs()
    }

    /// Second of the minute, 0-59.
    pub fn seconds(&self) -> u32 {
        (self.seconds % 60).unsigned_abs()
    }

    /// Second of the day, 0-86399 (local time).
    pub fn second_of_day(&self) -> u32 {
        self.seconds.max(0) as u32
    }

    /// ISO 8601 week date of the local day: (week-numbering year, week 1-53,
    /// weekday 1 = Monday .. 7 = Sunday).
    pub fn iso_week(&self) -> (i32, u32, u32) {
        let year = i64::from(self.years);
        let days = i64::from(self.days);
        if days <= 0 {
            return (self.years, 0, 0);
        }
        let jan1 = jan1_weekday(year);
        let weekday = (days + jan1 - 2).rem_euclid(7) + 1;
        let (wyear, week) = if jan1 > 4 && days <= 8 - jan1 {
            // Still in the last week of the previous year.
            (year - 1, weeks_in_year(year - 1))
        } else if year_days(year) - days < 4 - weekday {
            // Already in week 1 of the next year.
            (year + 1, 1)
        } else {
            let mut week = (days + (7 - weekday) + (jan1 - 1)) / 7;
            if jan1 > 4 {
                week -= 1;
            }
            (year, week)
        };
        (wyear as i32, week as u32, weekday as u32)
    }

    /// ISO week-numbering year.
    pub fn weekyear(&self) -> i32 {
        self.iso_week().0
    }

    /// ISO week of the week-numbering year, 1-53.
    pub fn weeks(&self) -> u32 {
        self.iso_week().1
    }

    /// Day of the week, 1 = Monday .. 7 = Sunday.
    pub fn weekday(&self) -> u32 {
        self.iso_week().2
    }

    /// The local time with its offset, as Pacemaker prints a time with the
    /// time zone: `YYYY-MM-DD HH:MM:SS +HH:MM`, or with `Z` right after the
    /// time when the offset is zero.
    pub fn to_string_with_offset(&self) -> String {
        let mut s = self.fields_string();
        if self.offset == 0 {
            s.push('Z');
        } else {
            let sign = if self.offset < 0 { '-' } else { '+' };
            let h = (self.offset / 3600).unsigned_abs();
            let m = ((self.offset % 3600) / 60).unsigned_abs();
            s.push_str(&format!(" {sign}{h:02}:{m:02}"));
        }
        s
    }

    fn fields_string(&self) -> String {
        let (y, m, d) = self.gregorian();
        let sec = self.seconds;
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            y,
            m,
            d,
            (sec / 3600).unsigned_abs(),
            ((sec % 3600) / 60).unsigned_abs(),
            (sec % 60).unsigned_abs()
        )
    }

    /// Pacemaker's field-wise comparison of two instants (both in UTC).
    fn key(&self) -> (i32, i32, i32) {
        let u = self.to_utc();
        (u.years, u.days, u.seconds)
    }
}

/// Shows the instant in UTC as crm_simulate prints dates:
/// `YYYY-MM-DD HH:MM:SSZ`.
impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.to_utc().fields_string();
        s.push('Z');
        f.write_str(&s)
    }
}

impl PartialEq for DateTime {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for DateTime {}

impl PartialOrd for DateTime {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for DateTime {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl FromStr for DateTime {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<DateTime, TimeError> {
        DateTime::parse(s)
    }
}

impl std::ops::Add<Duration> for DateTime {
    type Output = DateTime;
    fn add(self, rhs: Duration) -> DateTime {
        self.add_duration(&rhs)
    }
}

/// Reads the date part of `s` (calendar, ordinal or week date).
fn parse_date_part(s: &str) -> Result<DateTime, TimeError> {
    let max_year = i64::from(i32::MAX);

    // Calendar date, YYYY-MM-DD or YYYYMMDD.
    let (mut n, mut v) = scan_format(s, &[U, Item::Lit("-"), U, Item::Lit("-"), U]);
    if n == 1 {
        (n, v) = scan_format(s, &[U4, U2, U2]);
    }
    if n == 3 {
        let (year, month, day) = (i64::from(v[0]), i64::from(v[1]), i64::from(v[2]));
        if !(1..=12).contains(&month) {
            return Err(TimeError::date(s, format!("{month} is not a valid month")));
        }
        if !(1..=max_year).contains(&year) {
            return Err(TimeError::date(s, format!("{year} is not a valid year")));
        }
        if day < 1 || day > days_in_month(month, year) {
            return Err(TimeError::date(
                s,
                format!("{day} is not a valid day of the month"),
            ));
        }
        return Ok(DateTime {
            years: year as i32,
            days: ordinal_day(year, month, day) as i32,
            seconds: 0,
            offset: 0,
        });
    }

    // Ordinal date, YYYY-DDD.
    let (n, v) = scan_format(s, &[U, Item::Lit("-"), U]);
    if n == 2 {
        let (year, day) = (i64::from(v[0]), i64::from(v[1]));
        if !(1..=max_year).contains(&year) {
            return Err(TimeError::date(s, format!("{year} is not a valid year")));
        }
        if day < 1 || day > year_days(year) {
            return Err(TimeError::date(
                s,
                format!(
                    "{day} is not a valid day of year {year} (1-{})",
                    year_days(year)
                ),
            ));
        }
        return Ok(DateTime {
            years: year as i32,
            days: day as i32,
            seconds: 0,
            offset: 0,
        });
    }

    // Week date, YYYY-Www-D.
    let (n, v) = scan_format(s, &[U, Item::Lit("-W"), U, Item::Lit("-"), U]);
    if n == 3 {
        let (year, week, day) = (i64::from(v[0]), i64::from(v[1]), i64::from(v[2]));
        if !(1..=max_year).contains(&year) {
            return Err(TimeError::date(s, format!("{year} is not a valid year")));
        }
        if week < 1 || week > weeks_in_year(year) {
            return Err(TimeError::date(
                s,
                format!(
                    "{week} is not a valid week of year {year} (1-{})",
                    weeks_in_year(year)
                ),
            ));
        }
        if !(1..=7).contains(&day) {
            return Err(TimeError::date(
                s,
                format!("{day} is not a valid day of the week"),
            ));
        }
        // Week 1 is the week holding the year's first Thursday; find its
        // Monday relative to January 1, then count from there.
        let jan1 = jan1_weekday(year);
        let to_monday = if jan1 <= 4 { 1 - jan1 } else { 8 - jan1 };
        let mut dt = DateTime {
            years: year as i32,
            days: 1,
            seconds: 0,
            offset: 0,
        };
        dt.add_days((week - 1) * 7 + to_monday + day - 1);
        return Ok(dt);
    }

    Err(TimeError::date(
        s,
        "no calendar, ordinal or week date found",
    ))
}

/// Reads `hh[:mm[:ss]]` or `hhmmss` into seconds of the day. `24:00:00` gives
/// 86400.
fn parse_hms(time_s: &str) -> Option<i64> {
    let (mut n, mut v) = scan_format(time_s, &[U, Item::Lit(":"), U, Item::Lit(":"), U]);
    if n == 1 {
        (n, v) = scan_format(time_s, &[U2, U2, U2]);
    }
    if n < 1 {
        return None;
    }
    let (h, m, s) = (i64::from(v[0]), i64::from(v[1]), i64::from(v[2]));
    if h == 24 && m == 0 && s == 0 {
        // Midnight at the end of the day.
    } else if h >= 24 {
        return None;
    }
    if m >= 60 || s >= 60 {
        return None;
    }
    Some(h * SECONDS_IN_HOUR + m * SECONDS_IN_MINUTE + s)
}

/// Reads a UTC offset: `Z`, or `±hh[:mm]`; `None` means "not given" and
/// yields `local_offset`. Anything else counts as UTC, as in Pacemaker.
fn parse_offset(offset_s: Option<&str>, local_offset: i32) -> Option<i64> {
    let Some(s) = offset_s else {
        return Some(i64::from(local_offset));
    };
    let first = s.bytes().next();
    match first {
        Some(b'Z') => Some(0),
        Some(b'+') => parse_hms(&s[1..]),
        Some(b'-') => parse_hms(&s[1..]).map(|v| -v),
        Some(c) if c.is_ascii_digit() => parse_hms(s),
        _ => Some(0),
    }
}

/// Reads the time-of-day part (after any `T`) into `dt`.
fn parse_time(
    input: &str,
    time_s: &str,
    dt: &mut DateTime,
    local_offset: i32,
) -> Result<(), TimeError> {
    let seconds = parse_hms(time_s)
        .ok_or_else(|| TimeError::date(input, format!("'{time_s}' is not a valid time of day")))?;
    let offset_s = match time_s.find('Z') {
        Some(i) => Some(&time_s[i..]),
        None => time_s
            .find([' ', '+', '-'])
            .map(|i| time_s[i..].trim_start_matches(|c: char| c.is_ascii() && is_c_space(c as u8))),
    };
    let offset = parse_offset(offset_s, local_offset).ok_or_else(|| {
        TimeError::date(
            input,
            format!("'{}' is not a valid offset", offset_s.unwrap_or("")),
        )
    })?;
    if offset.abs() > SECONDS_IN_DAY {
        return Err(TimeError::date(input, "the UTC offset is too large"));
    }
    dt.seconds = seconds as i32;
    dt.offset = offset as i32;
    if seconds == SECONDS_IN_DAY {
        dt.seconds = 0;
        dt.add_days(1);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Duration

/// An ISO 8601 duration such as `P1Y2M3DT4H5M6S`, `PT10S` or `P2W`, kept as
/// Pacemaker keeps it: years, months, days (weeks count as 7 days) and
/// seconds (hours and minutes are folded into seconds). Components may be
/// negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Duration {
    pub years: i32,
    pub months: i32,
    pub days: i32,
    pub seconds: i32,
}

impl Duration {
    /// Parses an ISO 8601 duration the way Pacemaker does. It must start with
    /// `P`; each component is an integer followed by `Y`, `M`, `W`, `D`, `H`,
    /// `M` or `S`, where `M` means months until a `T` is seen and minutes
    /// after. The order of components is not enforced; a repeated `Y` or
    /// month `M` replaces the earlier value while the others add up.
    /// Parsing stops at white space or `/`. Fractions are refused, and so is
    /// a duration whose components are all zero.
    pub fn parse(s: &str) -> Result<Duration, TimeError> {
        if s.is_empty() {
            return Err(TimeError::duration(s, "it is empty"));
        }
        let Some(body) = s.strip_prefix('P') else {
            return Err(TimeError::duration(s, "it does not start with 'P'"));
        };
        if body.is_empty() || is_c_space(body.as_bytes()[0]) {
            return Err(TimeError::duration(s, "nothing follows 'P'"));
        }
        let mut d = Duration::default();
        let mut as_time = false;
        let bytes = body.as_bytes();
        let mut i = 0;
        while i < bytes.len() && bytes[i] != b'/' && !is_c_space(bytes[i]) {
            if bytes[i] == b'T' {
                as_time = true;
                i += 1;
                continue;
            }
            let (value, used) = duration_int(&bytes[i..]).ok_or_else(|| {
                TimeError::duration(s, format!("no valid integer at '{}'", &body[i..]))
            })?;
            i += used;
            let too_big = || TimeError::duration(s, "a component is too large");
            let add = |old: i32, v: i64| -> Result<i32, TimeError> {
                i32::try_from(i64::from(old) + v).map_err(|_| too_big())
            };
            match bytes.get(i) {
                Some(b'Y') => d.years = value,
                Some(b'M') if !as_time => d.months = value,
                Some(b'M') => d.seconds = add(d.seconds, i64::from(value) * 60)?,
                Some(b'W') => d.days = add(d.days, i64::from(value) * 7)?,
                Some(b'D') => d.days = add(d.days, i64::from(value))?,
                Some(b'H') => d.seconds = add(d.seconds, i64::from(value) * 3600)?,
                Some(b'S') => d.seconds = add(d.seconds, i64::from(value))?,
                None => {
                    return Err(TimeError::duration(s, "a number has no unit after it"));
                }
                Some(_) => {
                    let c = body[i..].chars().next().unwrap_or('?');
                    return Err(TimeError::duration(
                        s,
                        format!("'{c}' is not a valid time unit"),
                    ));
                }
            }
            i += 1;
        }
        if d == Duration::default() {
            return Err(TimeError::duration(s, "no amounts and units given"));
        }
        Ok(d)
    }

    /// The duration in seconds, counting years as 365 days and months as 30
    /// days (Pacemaker's approximation when no start date is known).
    pub fn total_seconds(&self) -> i64 {
        let days = 365 * i64::from(self.years) + 30 * i64::from(self.months) + i64::from(self.days);
        i64::from(self.seconds) + SECONDS_IN_DAY * days
    }
}

/// Reads a duration component's integer: an optional `-`, `+` or `:`, then
/// 1 to 10 digits fitting in an `i32`. Returns the value and bytes used.
fn duration_int(bytes: &[u8]) -> Option<(i32, usize)> {
    let mut i = 0;
    let mut negative = false;
    match bytes.first() {
        Some(b'.') | Some(b',') => return None,
        Some(b'-') => {
            negative = true;
            i = 1;
        }
        Some(b'+') | Some(b':') => i = 1,
        _ => {}
    }
    let mut value: i64 = 0;
    let mut digits = 0;
    while digits < 10 && i < bytes.len() && bytes[i].is_ascii_digit() {
        value = value * 10 + i64::from(bytes[i] - b'0');
        if value > i64::from(i32::MAX) {
            return None;
        }
        i += 1;
        digits += 1;
    }
    if digits == 0 {
        return None;
    }
    Some((if negative { -value } else { value } as i32, i))
}

impl FromStr for Duration {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Duration, TimeError> {
        Duration::parse(s)
    }
}

/// ISO 8601 form, e.g. `P1Y2M3DT4H5M6S`.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("P")?;
        if self.years != 0 {
            write!(f, "{}Y", self.years)?;
        }
        if self.months != 0 {
            write!(f, "{}M", self.months)?;
        }
        if self.days != 0 {
            write!(f, "{}D", self.days)?;
        }
        if self.seconds != 0 || *self == Duration::default() {
            let s = i64::from(self.seconds);
            f.write_str("T")?;
            let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
            if h != 0 {
                write!(f, "{h}H")?;
            }
            if m != 0 {
                write!(f, "{m}M")?;
            }
            if sec != 0 || (h == 0 && m == 0) {
                write!(f, "{sec}S")?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Intervals and timeouts

/// Why a time span text could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SpanError {
    /// No number, or a unit Pacemaker does not know.
    #[error("not a valid time duration")]
    Invalid,
    /// The number does not fit; Pacemaker goes on with the clipped value.
    #[error("out of range (clipped to {clipped_ms} ms)")]
    OutOfRange { clipped_ms: i64 },
    /// A negative interval.
    #[error("negative")]
    Negative,
}

/// Milliseconds per unit, as (multiplier, divisor) applied to the number.
/// Units match on their first letters, case-insensitively, as in Pacemaker
/// (so `s`, `sec` and `seconds` are all seconds, and `m` or `min` minutes).
fn unit_factors(units: &str) -> Option<(i64, i64)> {
    let u = units.as_bytes();
    let starts = |p: &str| u.len() >= p.len() && u[..p.len()].eq_ignore_ascii_case(p.as_bytes());
    if u.is_empty() || starts("s") {
        Some((1000, 1))
    } else if starts("ms") {
        Some((1, 1))
    } else if starts("us") {
        Some((1, 1000))
    } else if starts("m") {
        Some((60_000, 1))
    } else if starts("h") {
        Some((3_600_000, 1))
    } else {
        None
    }
}

/// Skips a decimal tail (`.5`, `.1.4`) and white space after a number.
fn after_number(rest: &str) -> &str {
    rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
        .trim_start_matches(|c: char| c.is_ascii() && is_c_space(c as u8))
}

fn apply_units(value: i64, multiplier: i64, divisor: i64) -> i64 {
    if value > i64::MAX / multiplier {
        i64::MAX
    } else if value < i64::MIN / multiplier {
        i64::MIN
    } else {
        value * multiplier / divisor
    }
}

/// Reads a number with an optional unit into milliseconds, as Pacemaker's
/// `pcmk__parse_ms()` (used for operation timeouts and start delays): white
/// space may surround the number; a decimal part is ignored (`3.14s` is 3
/// seconds); the unit defaults to seconds and may be `ms`/`msec`,
/// `us`/`usec` (rounded down to whole milliseconds), `s`/`sec`, `m`/`min`,
/// `h`/`hr`. Negative numbers are returned as they are. ISO 8601 durations
/// are not accepted here.
pub fn parse_ms(input: &str) -> Result<i64, SpanError> {
    let (value, used, clipped) = match scan_ll(input) {
        ScanLl::Ok(v, used) => (v, used, false),
        ScanLl::Range(v, used) => (v, used, true),
        ScanLl::NoDigits => return Err(SpanError::Invalid),
    };
    let (multiplier, divisor) =
        unit_factors(after_number(&input[used..])).ok_or(SpanError::Invalid)?;
    let ms = apply_units(value, multiplier, divisor);
    if clipped {
        Err(SpanError::OutOfRange { clipped_ms: ms })
    } else {
        Ok(ms)
    }
}

/// What Pacemaker's `pcmk_parse_interval_spec()` makes of an interval text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntervalSpec {
    /// The milliseconds Pacemaker goes on with: 0 for invalid or negative
    /// input, clipped to `u32::MAX`.
    pub ms: u32,
    /// Why Pacemaker reported the input as bad, if it did.
    pub error: Option<SpanError>,
}

/// Reads an interval specification as `pcmk_parse_interval_spec()` does:
/// absent means 0; text starting with `P` is an ISO 8601 duration (years
/// count as 365 days, months as 30); anything else goes through
/// [`parse_ms`]. Invalid or negative input yields 0 with an error.
pub fn interval_spec(input: Option<&str>) -> IntervalSpec {
    let Some(input) = input else {
        return IntervalSpec { ms: 0, error: None };
    };
    let mut error = None;
    let msec: i64 = if input.starts_with('P') {
        match Duration::parse(input) {
            Ok(d) => d.total_seconds().min(i64::from(u32::MAX / 1000)) * 1000,
            Err(_) => -1,
        }
    } else {
        match parse_ms(input) {
            Ok(ms) => ms,
            Err(e @ SpanError::OutOfRange { clipped_ms }) => {
                error = Some(e);
                clipped_ms
            }
            Err(e) => {
                error = Some(e);
                -1
            }
        }
    };
    if msec < 0 {
        return IntervalSpec {
            ms: 0,
            error: Some(error.unwrap_or(if input.starts_with('P') {
                SpanError::Invalid
            } else {
                SpanError::Negative
            })),
        };
    }
    IntervalSpec {
        ms: msec.min(i64::from(u32::MAX)) as u32,
        error,
    }
}

/// An interval specification in milliseconds, or `None` where Pacemaker
/// reports the text as invalid (and would go on with 0). See
/// [`interval_spec`] for the accepted forms.
pub fn parse_interval_ms(input: &str) -> Option<u64> {
    let spec = interval_spec(Some(input));
    match spec.error {
        None => Some(u64::from(spec.ms)),
        Some(_) => None,
    }
}

/// Pacemaker's older `crm_get_msec()`: like [`parse_ms`], but leading white
/// space is allowed, a huge number is clipped rather than refused, and any
/// invalid or negative input gives -1.
pub fn legacy_get_msec(input: &str) -> i64 {
    let (value, used) = match scan_ll(input) {
        ScanLl::Ok(v, used) if v >= 0 => (v, used),
        ScanLl::Range(v, used) if v > 0 => (v, used),
        _ => return -1,
    };
    match unit_factors(after_number(&input[used..])) {
        Some((multiplier, divisor)) => {
            if value > i64::MAX / multiplier {
                i64::MAX
            } else {
                value * multiplier / divisor
            }
        }
        None => -1,
    }
}

/// A short readable form of an interval, as Pacemaker logs them: `0s`,
/// `500ms`, `10s`, `1.500s`, `1m30s`, `2h`, `1d2h3m4s`.
pub fn readable_interval(ms: u64) -> String {
    const S: u64 = 1000;
    const M: u64 = 60 * S;
    const H: u64 = 60 * M;
    const D: u64 = 24 * H;
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, name) in [(D, 'd'), (H, 'h'), (M, 'm')] {
        if rest >= unit {
            out.push_str(&format!("{}{name}", rest / unit));
            rest %= unit;
        }
    }
    if rest >= S {
        out.push_str(&(rest / S).to_string());
        if !rest.is_multiple_of(S) {
            out.push_str(&format!(".{:03}", rest % S));
        }
        out.push('s');
    } else if rest > 0 {
        out.push_str(&format!("{rest}ms"));
    }
    out
}

/// Reads a time stored as seconds since the epoch the way Pacemaker reads
/// such CIB attributes (`last-rc-change`, `execution-date`): a `strtoll`
/// prefix, trailing text ignored. `None` without digits or on overflow.
pub fn parse_epoch(s: &str) -> Option<i64> {
    scan_integer(s)
}

/// Reads a time that may be stored as epoch seconds or as ISO 8601 text.
/// A text that is a whole (optionally signed) integer is epoch seconds, even
/// if it could also be read as a `YYYYMMDD` date; otherwise an ISO 8601 form
/// is tried, and last an integer prefix.
pub fn parse_epoch_or_iso(s: &str) -> Option<DateTime> {
    let t = s.trim();
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return parse_epoch(t).map(DateTime::from_epoch_seconds);
    }
    if let Ok(dt) = DateTime::parse(t) {
        return Some(dt);
    }
    parse_epoch(t).map(DateTime::from_epoch_seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> DateTime {
        DateTime::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Each input and how it prints with its offset, or "ERR".
    fn check_parse(cases: &[(&str, &str)]) {
        for (input, expected) in cases {
            let got = match DateTime::parse(input) {
                Ok(t) => t.to_string_with_offset(),
                Err(_) => "ERR".to_string(),
            };
            assert_eq!(&got, expected, "parsing {input:?}");
        }
    }

    #[test]
    fn parses_pacemaker_date_forms() {
        check_parse(&[
            ("2005-020T12:00:00", "2005-01-20 12:00:00Z"),
            ("2005-020T12:30", "2005-01-20 12:30:00Z"),
            ("2005-020", "2005-01-20 00:00:00Z"),
            ("2009-01-01 12:00:00Z", "2009-01-01 12:00:00Z"),
            ("2009-01-01", "2009-01-01 00:00:00Z"),
            ("20090101", "2009-01-01 00:00:00Z"),
            ("2009-01-01T123456", "2009-01-01 12:34:56Z"),
            ("2009-01-01T12", "2009-01-01 12:00:00Z"),
            ("2008-W01-1", "2007-12-31 00:00:00Z"),
            ("2009-W01-1", "2008-12-29 00:00:00Z"),
            ("2009-W53-7", "2010-01-03 00:00:00Z"),
            ("2008-W37-6", "2008-09-13 00:00:00Z"),
            ("2005-06-01T00:00:00+02:00", "2005-06-01 00:00:00 +02:00"),
            ("2019-09-23 17:00:00 -05:00", "2019-09-23 17:00:00 -05:00"),
            ("2019-09-20 15:10:52 +00:00", "2019-09-20 15:10:52Z"),
            ("2005-06-01T00:00:00+0230", "2005-06-01 00:00:00 +02:30"),
            ("2005-06-01T00:00:00-01", "2005-06-01 00:00:00 -01:00"),
            ("2005-12-31T24:00:00", "2006-01-01 00:00:00Z"),
            ("epoch", "1970-01-01 00:00:00Z"),
            ("EPOCH/P1D", "1970-01-01 00:00:00Z"),
            ("2004-02-29", "2004-02-29 00:00:00Z"),
            ("2004-366", "2004-12-31 00:00:00Z"),
            // Text after the date that is not a time is ignored.
            ("2005-06-01xyz", "2005-06-01 00:00:00Z"),
            ("", "ERR"),
            ("2005", "ERR"),
            ("2005-13-01", "ERR"),
            ("2005-02-29", "ERR"),
            ("2005-366", "ERR"),
            ("2009-W54-1", "ERR"),
            ("2008-W53-1", "ERR"),
            ("2009-W01-8", "ERR"),
            ("0000-01-01", "ERR"),
            ("2005-06-01T25:00:00", "ERR"),
            ("2005-06-01T12:60:00", "ERR"),
            ("2005-06-01T24:00:01", "ERR"),
            ("2005-06-01T12:00:00+25:00", "ERR"),
            ("2005-06-01Tnoon", "ERR"),
            ("T12:00:00", "ERR"),
            ("12:00:00", "ERR"),
            ("garbage", "ERR"),
        ]);
    }

    #[test]
    fn local_offset_and_time_only() {
        let today = DateTime::new(2020, 3, 4, 8, 0, 0, 3600).unwrap();
        let t = DateTime::parse_with("T12:30", 3600, Some(&today)).unwrap();
        assert_eq!(t.to_string_with_offset(), "2020-03-04 12:30:00 +01:00");
        let t = DateTime::parse_with("12:30:15Z", 3600, Some(&today)).unwrap();
        assert_eq!(t.to_string_with_offset(), "2020-03-04 12:30:15Z");
        // A time without an offset takes the local one ...
        let t = DateTime::parse_with("2005-020T12:30", -7200, None).unwrap();
        assert_eq!(t.to_string_with_offset(), "2005-01-20 12:30:00 -02:00");
        assert_eq!(t.to_string(), "2005-01-20 14:30:00Z");
        // ... but a date alone is midnight UTC.
        let t = DateTime::parse_with("2005-020", -7200, None).unwrap();
        assert_eq!(t.offset_seconds(), 0);
    }

    #[test]
    fn epoch_round_trip() {
        for (s, epoch) in [
            ("1970-01-01 00:00:00Z", 0i64),
            ("2017-10-12 07:31:57Z", 1_507_793_517),
            ("2000-02-29 23:59:59Z", 951_868_799),
            ("2005-06-01T02:00:00+02:00", 1_117_584_000),
            ("1969-12-31 23:59:59Z", -1),
            ("0001-01-01", -EPOCH_OFFSET_SECONDS),
        ] {
            let t = dt(s);
            assert_eq!(t.to_epoch_seconds(), epoch, "{s}");
            assert_eq!(DateTime::from_epoch_seconds(epoch), t, "{s}");
        }
        let t = DateTime::from_epoch_seconds(1_507_793_517);
        assert_eq!(t.to_string(), "2017-10-12 07:31:57Z");
        let t = DateTime::from_epoch_seconds_with_offset(1_507_793_517, -5 * 3600);
        assert_eq!(t.to_string_with_offset(), "2017-10-12 02:31:57 -05:00");
        assert_eq!(t.hours(), 2);
        assert_eq!(t.to_epoch_seconds(), 1_507_793_517);
        // Every day for a few centuries maps back and forth.
        let mut s = -200 * 365 * 86_400i64;
        while s < 300 * 365 * 86_400 {
            let t = DateTime::from_epoch_seconds(s);
            assert_eq!(t.to_epoch_seconds(), s);
            s += 86_400 + 3_601;
        }
    }

    #[test]
    fn compares_instants() {
        assert_eq!(dt("2005-06-01T02:00:00+02:00"), dt("2005-06-01T00:00:00Z"));
        assert!(dt("2005-06-01T02:00:01+02:00") > dt("2005-06-01T00:00:00Z"));
        assert!(dt("2019-09-23 17:00:00 -05:00") > dt("2019-09-23 21:00:00Z"));
        assert!(dt("2004-12-31") < dt("2005-001T00:00:01"));
    }

    #[test]
    fn calendar_accessors() {
        // (input, year, month, monthday, yearday, hour, minute, second,
        //  weekyear, week, weekday)
        type Row = (
            &'static str,
            i32,
            u32,
            u32,
            u32,
            u32,
            u32,
            u32,
            i32,
            u32,
            u32,
        );
        let rows: &[Row] = &[
            ("2005-020T12:30:15", 2005, 1, 20, 20, 12, 30, 15, 2005, 3, 4),
            ("2008-12-29", 2008, 12, 29, 364, 0, 0, 0, 2009, 1, 1),
            ("2010-01-03", 2010, 1, 3, 3, 0, 0, 0, 2009, 53, 7),
            ("2008-09-27", 2008, 9, 27, 271, 0, 0, 0, 2008, 39, 6),
            ("2005-01-01", 2005, 1, 1, 1, 0, 0, 0, 2004, 53, 6),
            ("2007-01-01", 2007, 1, 1, 1, 0, 0, 0, 2007, 1, 1),
            (
                "2020-12-31T23:59:59",
                2020,
                12,
                31,
                366,
                23,
                59,
                59,
                2020,
                53,
                4,
            ),
            ("2024-02-29", 2024, 2, 29, 60, 0, 0, 0, 2024, 9, 4),
            // Local fields, not UTC ones.
            (
                "2019-09-23 17:00:00 -05:00",
                2019,
                9,
                23,
                266,
                17,
                0,
                0,
                2019,
                39,
                1,
            ),
        ];
        for &(s, y, mo, md, yd, h, mi, se, wy, w, wd) in rows {
            let t = dt(s);
            let got = (
                t.year(),
                t.month(),
                t.monthday(),
                t.yearday(),
                t.hours(),
                t.minutes(),
                t.seconds(),
                t.weekyear(),
                t.weeks(),
                t.weekday(),
            );
            assert_eq!(got, (y, mo, md, yd, h, mi, se, wy, w, wd), "{s}");
        }
        // Week dates agree with the ISO week accessors for a few years.
        let mut t = dt("2000-01-01");
        for _ in 0..(366 * 12) {
            let (wy, w, wd) = t.iso_week();
            let again = dt(&format!("{wy}-W{w:02}-{wd}"));
            assert_eq!(again, t, "{}", t);
            t.add_days(1);
        }
    }

    #[test]
    fn durations() {
        type Parts = Option<(i32, i32, i32, i32)>;
        let cases: &[(&str, Parts)] = &[
            ("P1Y2M3DT4H5M6S", Some((1, 2, 3, 4 * 3600 + 5 * 60 + 6))),
            ("PT10S", Some((0, 0, 0, 10))),
            ("P2W", Some((0, 0, 14, 0))),
            ("P1W2D", Some((0, 0, 9, 0))),
            ("PT1M", Some((0, 0, 0, 60))),
            ("P1M", Some((0, 1, 0, 0))),
            ("PT36H", Some((0, 0, 0, 36 * 3600))),
            ("P-1D", Some((0, 0, -1, 0))),
            ("P1D trailing", Some((0, 0, 1, 0))),
            ("P1D/2005-01-01", Some((0, 0, 1, 0))),
            ("P", None),
            ("P ", None),
            ("", None),
            ("1D", None),
            ("PT", None),
            ("P0D", None),
            ("PT0S", None),
            ("P1", None),
            ("P1X", None),
            ("PT1.5S", None),
            ("P99999999999D", None),
        ];
        for (s, expected) in cases {
            let got = Duration::parse(s)
                .ok()
                .map(|d| (d.years, d.months, d.days, d.seconds));
            assert_eq!(&got, expected, "{s}");
        }
        assert_eq!(
            Duration::parse("P1Y2M3DT4H5M6S").unwrap().to_string(),
            "P1Y2M3DT4H5M6S"
        );
        assert_eq!(
            Duration::parse("P1Y1M1D").unwrap().total_seconds(),
            (365 + 30 + 1) * 86_400
        );
    }

    #[test]
    fn adds_durations_like_pacemaker() {
        let cases = [
            ("2005-01-31", "P1M", "2005-02-28 00:00:00Z"),
            ("2004-01-31", "P1M", "2004-02-29 00:00:00Z"),
            ("2004-02-29", "P1Y", "2005-03-01 00:00:00Z"),
            ("2005-12-15", "P1M", "2006-01-15 00:00:00Z"),
            ("2005-03-31", "P-1M", "2005-02-28 00:00:00Z"),
            ("2005-12-31T23:00:00", "PT2H", "2006-01-01 01:00:00Z"),
            ("2005-01-01T00:00:00", "PT-1S", "2004-12-31 23:59:59Z"),
            ("2005-01-01", "P2W", "2005-01-15 00:00:00Z"),
            ("2005-01-01", "P400D", "2006-02-05 00:00:00Z"),
            ("2005-01-01", "P-400D", "2003-11-28 00:00:00Z"),
            ("2005-01-01", "P1Y2M3DT4H5M6S", "2006-03-04 04:05:06Z"),
        ];
        for (start, d, expected) in cases {
            let got = dt(start) + Duration::parse(d).unwrap();
            assert_eq!(got.to_string(), expected, "{start} + {d}");
        }
        // Adding keeps the offset and works in local time.
        let t = dt("2005-06-01T23:30:00+02:00") + Duration::parse("PT1H").unwrap();
        assert_eq!(t.to_string_with_offset(), "2005-06-02 00:30:00 +02:00");
        // Huge day counts stay fast and exact.
        let mut t = dt("2000-01-01");
        t.add_days(146_097 * 10 + 1);
        assert_eq!(t.to_string(), "6000-01-02 00:00:00Z");
        t.add_days(-(146_097 * 10 + 1));
        assert_eq!(t.to_string(), "2000-01-01 00:00:00Z");
        // Pacemaker's quirk: landing exactly on the end of a day stays on it.
        let mut t = dt("2005-01-01T23:00:00");
        t.add_seconds(3600);
        assert!(t < dt("2005-01-02T00:00:00"));
        assert_eq!(
            t.to_epoch_seconds(),
            dt("2005-01-02T00:00:00").to_epoch_seconds()
        );
    }

    #[test]
    fn parse_ms_forms() {
        let cases: &[(&str, Result<i64, SpanError>)] = &[
            ("10", Ok(10_000)),
            ("10s", Ok(10_000)),
            ("10sec", Ok(10_000)),
            ("10 seconds", Ok(10_000)),
            (" 10 ", Ok(10_000)),
            ("500ms", Ok(500)),
            ("500msec", Ok(500)),
            ("1500us", Ok(1)),
            ("1500usec", Ok(1)),
            ("2m", Ok(120_000)),
            ("2min", Ok(120_000)),
            ("2MIN", Ok(120_000)),
            ("1h", Ok(3_600_000)),
            ("1hr", Ok(3_600_000)),
            ("3.14s", Ok(3_000)),
            ("3.1.4 ms", Ok(3)),
            ("-5s", Ok(-5_000)),
            ("", Err(SpanError::Invalid)),
            ("s", Err(SpanError::Invalid)),
            ("10x", Err(SpanError::Invalid)),
            ("1e3", Err(SpanError::Invalid)),
            ("PT10S", Err(SpanError::Invalid)),
            (
                "99999999999999999999",
                Err(SpanError::OutOfRange {
                    clipped_ms: i64::MAX,
                }),
            ),
        ];
        for (s, expected) in cases {
            assert_eq!(&parse_ms(s), expected, "{s:?}");
        }
    }

    #[test]
    fn interval_specs() {
        let cases: &[(&str, Option<u64>, u32)] = &[
            ("0", Some(0), 0),
            ("10", Some(10_000), 10_000),
            ("10s", Some(10_000), 10_000),
            ("20000ms", Some(20_000), 20_000),
            ("1m", Some(60_000), 60_000),
            ("PT10S", Some(10_000), 10_000),
            ("PT1M30S", Some(90_000), 90_000),
            ("P1D", Some(86_400_000), 86_400_000),
            ("P1M", Some(30 * 86_400_000), 2_592_000_000),
            (
                "P1Y",
                Some(u64::from(u32::MAX / 1000 * 1000)),
                u32::MAX / 1000 * 1000,
            ),
            ("-1", None, 0),
            ("P-1D", None, 0),
            ("PT0S", None, 0),
            ("bogus", None, 0),
            ("10x", None, 0),
            ("99999999999999999999", None, u32::MAX),
        ];
        for &(s, expected, ms) in cases {
            assert_eq!(parse_interval_ms(s), expected, "{s:?}");
            assert_eq!(interval_spec(Some(s)).ms, ms, "{s:?}");
        }
        assert_eq!(interval_spec(None), IntervalSpec { ms: 0, error: None });
        assert_eq!(legacy_get_msec(" 10s"), 10_000);
        assert_eq!(legacy_get_msec("-10s"), -1);
        assert_eq!(legacy_get_msec("10x"), -1);
    }

    #[test]
    fn readable_intervals() {
        for (ms, s) in [
            (0, "0s"),
            (500, "500ms"),
            (10_000, "10s"),
            (1_500, "1.500s"),
            (90_000, "1m30s"),
            (7_200_000, "2h"),
            (93_784_000, "1d2h3m4s"),
        ] {
            assert_eq!(readable_interval(ms), s);
        }
    }

    #[test]
    fn epoch_or_iso() {
        assert_eq!(parse_epoch("1507793517"), Some(1_507_793_517));
        assert_eq!(parse_epoch(" 12abc"), Some(12));
        assert_eq!(parse_epoch("abc"), None);
        assert_eq!(
            parse_epoch_or_iso("1507793517").map(|t| t.to_string()),
            Some("2017-10-12 07:31:57Z".to_string())
        );
        assert_eq!(
            parse_epoch_or_iso("2017-10-12 07:31:57Z").map(|t| t.to_epoch_seconds()),
            Some(1_507_793_517)
        );
        assert_eq!(parse_epoch_or_iso("nonsense"), None);
    }
}
