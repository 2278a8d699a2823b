//! `--format` values: any [`gmr::OutputFormat`] by its name, so a format added to gmr is a
//! format of every command with no change here.

use gmr::OutputFormat;

/// The format named `name` (`text`, `json`, …), or a message listing the formats.
pub(crate) fn parse(name: &str) -> Result<OutputFormat, String> {
    OutputFormat::from_name(name)
        .ok_or_else(|| format!("unknown format; the formats are: {}", OutputFormat::names()))
}

/// The help of a `--format` option: what it does and the formats there are.
pub(crate) fn help(what: &str) -> String {
    format!("{what}: one of {}", OutputFormat::names())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_of_gmr_is_a_value() {
        for format in OutputFormat::ALL {
            assert_eq!(parse(format.name()), Ok(*format));
        }
        let message = parse("xml").expect_err("unknown");
        assert!(message.contains(&OutputFormat::names()), "{message}");
    }
}
