//! The `Package` section: the application's identity, gmr's version, and the build.

use serde_json::{Value, json};

use crate::package::PackageInfo;
use crate::report::{SectionBody, TextWriter};

/// What the `Package` section shows.
#[derive(Debug, Clone)]
pub(crate) struct PackageSection {
    package: PackageInfo,
}

/// Generates the `Package` section.
pub(crate) fn generate(ctx: &super::ReportContext<'_>) -> PackageSection {
    PackageSection::new(ctx.package.clone())
}

impl PackageSection {
    pub(crate) fn new(package: PackageInfo) -> Self {
        PackageSection { package }
    }

    fn fields(&self) -> Vec<(&'static str, Value)> {
        let p = &self.package;
        let or_unknown = |s: &str| {
            if s.is_empty() {
                Value::Null
            } else {
                Value::String(s.to_owned())
            }
        };
        vec![
            ("product", json!(p.name)),
            ("version", json!(p.version)),
            (
                "vendor",
                if p.authors_list().is_empty() {
                    Value::Null
                } else {
                    json!(p.authors_list().join(", "))
                },
            ),
            ("repository", or_unknown(p.repository)),
            ("description", or_unknown(p.description)),
            ("license", or_unknown(p.license)),
            ("binary", p.bin_name.map_or(Value::Null, |b| json!(b))),
            ("gmr_version", json!(env!("CARGO_PKG_VERSION"))),
            ("build_target", json!(env!("GMR_BUILD_TARGET"))),
            ("build_profile", json!(env!("GMR_BUILD_PROFILE"))),
        ]
    }
}

impl SectionBody for PackageSection {
    fn write_text(&self, out: &mut TextWriter) {
        for (key, value) in self.fields() {
            out.kv(key, crate::report::content_scalar(&value));
        }
    }

    fn to_json(&self) -> Value {
        Value::Object(
            self.fields()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_application_package_and_gmr() {
        let section = PackageSection::new(PackageInfo {
            name: "billing",
            version: "1.4.2",
            authors: "Ann <ann@example.com>:Bob",
            repository: "https://example.com/billing",
            description: "",
            license: "MIT",
            bin_name: Some("billing-api"),
            manifest_dir: "/src/billing",
        });
        let mut w = TextWriter::new();
        section.write_text(&mut w);
        let text = w.into_string();
        assert!(text.starts_with(
            "product = billing\nversion = 1.4.2\nvendor = Ann <ann@example.com>, Bob\n"
        ));
        assert!(text.contains("description = (none)\n"));
        assert!(text.contains(&format!("gmr_version = {}\n", env!("CARGO_PKG_VERSION"))));
        let json = section.to_json();
        assert_eq!(json["product"], "billing");
        assert_eq!(json["binary"], "billing-api");
        assert_eq!(json["build_target"], env!("GMR_BUILD_TARGET"));
    }
}
