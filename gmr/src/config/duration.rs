//! Durations in the configuration: `"1s"`, `"250ms"`, `"1.5s"`, `"2m"`, `"1h"`, `"100us"`, or a
//! bare number of seconds; and how a duration is shown back in messages.

use std::time::Duration;

/// The longest duration any key takes.
pub(crate) const MAX: Duration = Duration::from_secs(86_400);

/// Parses a duration string. Zero is accepted here; keys that need more say so in validation.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| "expected a duration such as \"1s\", \"250ms\" or \"2m\"".to_owned())?;
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" | "mins" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?}; use one of us, ms, s, m, h"
            ));
        }
    };
    seconds(number * scale)
}

/// A number of seconds as a duration: finite, not negative, at most [`MAX`].
pub(crate) fn seconds(secs: f64) -> Result<Duration, String> {
    if !secs.is_finite() || secs < 0.0 {
        return Err("must be a number of seconds, not negative".to_owned());
    }
    if secs > MAX.as_secs_f64() {
        return Err("must be at most one day".to_owned());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A duration as messages show it: `250ms`, `2s`.
pub(crate) fn show(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("2 weeks").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn durations_show() {
        assert_eq!(show(Duration::from_millis(250)), "250ms");
        assert_eq!(show(Duration::from_secs(2)), "2s");
        assert_eq!(show(Duration::ZERO), "0s");
    }
}
