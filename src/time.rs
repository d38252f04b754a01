//! Wall-clock helpers: milliseconds since the Unix epoch, their UTC rendering, and durations for people.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Names a signed number of milliseconds added to this process's wall clock. For
/// tests only (a node whose clock runs fast or slow, without touching the machine's);
/// undocumented on purpose, and read once.
pub const TEST_OFFSET_VAR: &str = "DSHARE_TEST_CLOCK_OFFSET_MS";

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    let real = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    real.saturating_add_signed(test_offset())
}

fn test_offset() -> i64 {
    static OFFSET: OnceLock<i64> = OnceLock::new();
    *OFFSET.get_or_init(|| {
        std::env::var(TEST_OFFSET_VAR)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    })
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a millisecond timestamp, without a date crate:
/// the civil-from-days algorithm (H. Hinnant) is exact for the proleptic Gregorian calendar.
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// [`utc`] with milliseconds, `YYYY-MM-DDTHH:MM:SS.mmmZ`: log lines from one second
/// stay in order for a reader that sorts them.
pub fn utc_millis(ms: u64) -> String {
    let whole = utc(ms);
    format!("{}.{:03}Z", whole.trim_end_matches('Z'), ms % 1000)
}

/// `1h 5m`, `12m 3s`, `45s`, `800ms`: a duration for people.
pub fn span(ms: u64) -> String {
    let s = ms / 1000;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) if s == 0 => format!("{ms}ms"),
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) if sec == 0 => format!("{m}m"),
        (0, 0, _) => format!("{m}m {sec}s"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h {m}m"),
        _ if h == 0 => format!("{d}d"),
        _ => format!("{d}d {h}h"),
    }
}

/// `90d`, `12h`, `30m`, `45s`, `500ms`: an age for `--keep` and `--before`.
pub fn parse_age(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not an age like 90d, 12h, 30m, 45s or 500ms");
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let ms = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => None,
    }
    .filter(|&ms| ms > 0)
    .ok_or_else(bad)?;
    Ok(Duration::from_millis(ms))
}

/// The shortest spelling [`parse_age`] reads back as `age`.
pub fn render_age(age: Duration) -> String {
    let ms = age.as_millis() as u64;
    [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
    ]
    .into_iter()
    .find(|(unit, _)| ms.is_multiple_of(*unit))
    .map_or(format!("{ms}ms"), |(unit, name)| {
        format!("{}{name}", ms / unit)
    })
}

/// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` (UTC), or an age before now: a time in ms.
pub fn parse_before(s: &str) -> Result<u64, String> {
    if let Ok(age) = parse_age(s) {
        return Ok(now_ms().saturating_sub(age.as_millis() as u64));
    }
    parse_utc(s).ok_or_else(|| {
        format!("{s:?} is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC) nor an age (90d)")
    })
}

fn parse_utc(s: &str) -> Option<u64> {
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z')?)),
        None => (s, None),
    };
    let num = |v: &str, len: usize| {
        (v.len() == len && v.bytes().all(|b| b.is_ascii_digit()))
            .then(|| v.parse::<i64>().ok())
            .flatten()
    };
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next()?, 4)?, num(d.next()?, 2)?, num(d.next()?, 2)?);
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let secs_of_day = match time {
        None => 0,
        Some(t) => {
            let mut p = t.split(':');
            let (h, mi, sec) = (num(p.next()?, 2)?, num(p.next()?, 2)?, num(p.next()?, 2)?);
            if p.next().is_some() || h > 23 || mi > 59 || sec > 59 {
                return None;
            }
            h * 3600 + mi * 60 + sec
        }
    };
    // Days from civil (H. Hinnant), the inverse of `crate::time::utc`.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = (days * 86_400 + secs_of_day).checked_mul(1000)?;
    let ms = u64::try_from(ms).ok()?;
    (utc(ms).starts_with(date)).then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_764_495_935_123), "2025-11-30T09:45:35Z");
        assert_eq!(utc_millis(1_764_495_935_123), "2025-11-30T09:45:35.123Z");
        assert_eq!(utc_millis(5), "1970-01-01T00:00:00.005Z");
    }

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span(800), "800ms");
        assert_eq!(span(45_000), "45s");
        assert_eq!(span(726_000), "12m 6s");
        assert_eq!(span(3_900_000), "1h 5m");
        assert_eq!(span(90_000_000), "1d 1h");
        assert_eq!(span(3_600_000), "1h");
        assert_eq!(span(120_000), "2m");
    }

    #[test]
    fn dates_read_back_as_they_print() {
        assert_eq!(parse_utc("2000-02-29"), Some(951_782_400_000));
        assert_eq!(parse_utc("2025-11-30T09:45:35Z"), Some(1_764_495_935_000));
        assert_eq!(parse_utc("2025-02-30"), None, "no such day");
        assert_eq!(parse_utc("2025-1-30"), None);
        assert_eq!(parse_utc("2025-11-30T09:45:35"), None, "UTC must be said");
    }

    #[test]
    fn ages_read_back_as_they_render() {
        for s in ["90d", "12h", "30m", "2s", "1500ms"] {
            assert_eq!(render_age(parse_age(s).unwrap()), s);
        }
        assert!(parse_age("0s").is_err());
        assert!(parse_age("5").is_err());
        assert!(parse_age("5w").is_err());
    }
}
