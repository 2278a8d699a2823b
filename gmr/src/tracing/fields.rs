//! A span's fields as text: recorded when the span opens and when a value is recorded later,
//! bounded so that a span with a huge value cannot grow the report or gmr's memory.

use std::fmt::{self, Write as _};

use ::tracing::field::{Field, Visit};

/// The most fields kept per span; more are counted, not kept.
pub(crate) const MAX_FIELDS: usize = 16;

/// The most characters kept of one value; longer values end with `…`.
pub(crate) const MAX_VALUE_CHARS: usize = 128;

/// The fields of one span, in the order they were first recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fields {
    /// Name and value of each field kept.
    pub(crate) values: Vec<(&'static str, String)>,
    /// Fields recorded beyond [`MAX_FIELDS`].
    pub(crate) dropped: usize,
}

impl Fields {
    /// Sets `name` to `value` (cut to [`MAX_VALUE_CHARS`]), replacing an earlier value.
    fn set(&mut self, name: &'static str, value: fmt::Arguments<'_>) {
        let mut text = BoundedString::default();
        // A `Debug` impl that fails leaves what it wrote so far.
        let _ = text.write_fmt(value);
        let text = text.finish();
        if let Some(slot) = self.values.iter_mut().find(|(n, _)| *n == name) {
            slot.1 = text;
        } else if self.values.len() < MAX_FIELDS {
            self.values.push((name, text));
        } else {
            self.dropped += 1;
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field.name(), format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set(field.name(), format_args!("{value:?}"));
    }
}

/// A string that keeps at most [`MAX_VALUE_CHARS`] characters of what is written to it.
#[derive(Default)]
struct BoundedString {
    text: String,
    chars: usize,
    cut: bool,
}

impl BoundedString {
    fn finish(mut self) -> String {
        if self.cut {
            self.text.push('…');
        }
        self.text
    }
}

impl fmt::Write for BoundedString {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.cut {
            // Stop the formatter early: nothing more is kept.
            return Err(fmt::Error);
        }
        for c in s.chars() {
            if self.chars == MAX_VALUE_CHARS {
                self.cut = true;
                return Err(fmt::Error);
            }
            self.text.push(c);
            self.chars += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_cut_and_fields_bounded() {
        let mut fields = Fields::default();
        let long = "x".repeat(1000);
        fields.set("long", format_args!("{long}"));
        assert_eq!(fields.values[0].1.chars().count(), MAX_VALUE_CHARS + 1);
        assert!(fields.values[0].1.ends_with('…'));
        fields.set("long", format_args!("short"));
        assert_eq!(fields.values, vec![("long", "short".to_owned())]);
        const NAMES: [&str; 20] = [
            "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q",
            "r", "s", "t",
        ];
        for name in NAMES {
            fields.set(name, format_args!("1"));
        }
        assert_eq!(fields.values.len(), MAX_FIELDS);
        assert_eq!(fields.dropped, 20 - (MAX_FIELDS - 1));
    }
}
