//! The `Package` section: the application's identity, gmr's version, and the build.
//!
//! The section is a small model ([`PackageFields`]) taken from the [`PackageInfo`] and the
//! build of gmr when a report is made, or read back from a report's JSON (`gmr view`): the text
//! view comes from the model either way, so a report re-rendered elsewhere shows the versions
//! of the process that made it, not those of the reader.

use serde::Deserialize;
use serde_json::Value;

use crate::package::PackageInfo;
use crate::report::{SectionBody, TextWriter};

/// What the `Package` section shows, in order; `None` where Cargo had no value.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct PackageFields {
    #[serde(default)]
    product: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    vendor: Option<String>,
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    license: Option<String>,
    #[serde(default)]
    binary: Option<String>,
    #[serde(default)]
    gmr_version: Option<String>,
    #[serde(default)]
    build_target: Option<String>,
    #[serde(default)]
    build_profile: Option<String>,
}

/// What the `Package` section shows.
#[derive(Debug, Clone)]
pub(crate) struct PackageSection {
    fields: PackageFields,
}

/// Generates the `Package` section.
pub(crate) fn generate(ctx: &super::ReportContext<'_>) -> PackageSection {
    PackageSection::new(ctx.package.clone())
}

impl PackageSection {
    pub(crate) fn new(p: PackageInfo) -> Self {
        let known = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let authors = p.authors_list();
        PackageSection {
            fields: PackageFields {
                product: Some(p.name.to_owned()),
                version: Some(p.version.to_owned()),
                vendor: (!authors.is_empty()).then(|| authors.join(", ")),
                repository: known(p.repository),
                description: known(p.description),
                license: known(p.license),
                binary: p.bin_name.map(str::to_owned),
                gmr_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
                build_target: Some(env!("GMR_BUILD_TARGET").to_owned()),
                build_profile: Some(env!("GMR_BUILD_PROFILE").to_owned()),
            },
        }
    }

    /// The section of a report's JSON `package` object.
    pub(crate) fn from_fields(fields: PackageFields) -> Self {
        PackageSection { fields }
    }

    fn fields(&self) -> [(&'static str, &Option<String>); 10] {
        let f = &self.fields;
        [
            ("product", &f.product),
            ("version", &f.version),
            ("vendor", &f.vendor),
            ("repository", &f.repository),
            ("description", &f.description),
            ("license", &f.license),
            ("binary", &f.binary),
            ("gmr_version", &f.gmr_version),
            ("build_target", &f.build_target),
            ("build_profile", &f.build_profile),
        ]
    }
}

impl SectionBody for PackageSection {
    fn write_text(&self, out: &mut TextWriter) {
        for (key, value) in self.fields() {
            out.kv(key, value.as_deref().unwrap_or("(none)"));
        }
    }

    fn to_json(&self) -> Value {
        Value::Object(
            self.fields()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.clone().map_or(Value::Null, Value::String)))
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
