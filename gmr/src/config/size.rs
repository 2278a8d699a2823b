//! Sizes in the configuration: `"128MiB"`, `"64 MiB"`, `"1GiB"`, `"512KiB"`, or a bare number
//! of bytes.

/// Parses a size in bytes.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| "expected a size such as \"128MiB\" or \"1GiB\"".to_owned())?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kib" | "k" | "kb" => 1024.0,
        "mib" | "m" | "mb" => 1024.0 * 1024.0,
        "gib" | "g" | "gb" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!("unknown unit {other:?}; use KiB, MiB or GiB"));
        }
    };
    let bytes = number * scale;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err("out of range".to_owned());
    }
    Ok(bytes as u64)
}

/// A size as messages show it: `128 MiB`.
pub(crate) fn show(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("128MiB"), Ok(128 << 20));
        assert_eq!(parse_size("64 MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1.5 KiB"), Ok(1536));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3 parsecs").is_err());
        assert_eq!(show(128 << 20), "128 MiB");
    }
}
