//! The `Configuration` section: every key of the application's `config::Config`, masked.
//!
//! Tables are shown as groups and arrays in their own order (never sorted). A value under a key
//! that looks secret (see [`crate::secrets`]) is `***`, as is everything below a table whose
//! key looks secret; URL credentials are masked in every other string. Where the `config` crate
//! knows where a value came from (a file, the environment), the text view shows it after the
//! value and the JSON view lists it under `origins`, keyed by the dotted path.

use ::config::{Value as ConfigValue, ValueKind};
use serde_json::{Map, Value, json};

use super::ReportContext;
use crate::report::{SectionBody, TextWriter};
use crate::secrets::{MASK, Masker};

/// One node of the masked configuration tree.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Leaf {
        value: Value,
        origin: Option<String>,
    },
    Table(Vec<(String, Node)>),
    Array(Vec<Node>),
}

/// What the `Configuration` section shows.
#[derive(Debug)]
pub(crate) struct ConfigurationSection {
    root: Option<Vec<(String, Node)>>,
}

const NO_CONFIG: &str = "no configuration was handed to gmr (see GmrBuilder::config)";

/// Generates the `Configuration` section.
pub(crate) fn generate(ctx: &ReportContext<'_>) -> ConfigurationSection {
    let masker = Masker::new(&ctx.settings.secrets.extra_keys);
    let root = ctx
        .app_config
        .map(|config| match convert("", &config.cache, &masker, false) {
            Node::Table(entries) => entries,
            other => vec![("value".to_owned(), other)],
        });
    ConfigurationSection { root }
}

impl ConfigurationSection {
    /// The section of a report's JSON `configuration` object (`gmr view`): `{"note": …}`
    /// when no configuration was handed to gmr, else `values` (tables as objects, arrays as
    /// arrays) and `origins` by dotted path, as [`SectionBody::to_json`] writes them.
    ///
    /// # Errors
    ///
    /// What is missing when the object has neither `values` nor `note`.
    pub(crate) fn from_json(body: &Value) -> Result<Self, String> {
        let no_origins = Map::new();
        let origins = match body.get("origins") {
            Some(Value::Object(origins)) => origins,
            _ => &no_origins,
        };
        match body.get("values") {
            Some(Value::Object(values)) => Ok(ConfigurationSection {
                root: Some(
                    values
                        .iter()
                        .map(|(k, v)| (k.clone(), from_value(v, k, origins)))
                        .collect(),
                ),
            }),
            Some(_) => Err("`values` must be an object".to_owned()),
            None if body.get("note").is_some() => Ok(ConfigurationSection { root: None }),
            None => Err("missing field `values` (or `note`)".to_owned()),
        }
    }
}

/// The node of a value read back from the JSON view: objects are tables (a leaf is never an
/// object), arrays are arrays, anything else a leaf with its origin from `origins`.
fn from_value(value: &Value, path: &str, origins: &Map<String, Value>) -> Node {
    match value {
        Value::Object(entries) => Node::Table(
            entries
                .iter()
                .map(|(k, child)| (k.clone(), from_value(child, &join(path, k), origins)))
                .collect(),
        ),
        Value::Array(items) => Node::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| from_value(item, &format!("{path}[{i}]"), origins))
                .collect(),
        ),
        leaf => Node::Leaf {
            value: leaf.clone(),
            origin: origins.get(path).and_then(Value::as_str).map(str::to_owned),
        },
    }
}

/// gmr's own keys whose names look secret but whose values are not: shown as they are.
const NOT_SECRET: &[&str] = &[
    "gmr.secrets",
    "gmr.secrets.extra_keys",
    "gmr.admin.token_file",
];

fn convert(path: &str, value: &ConfigValue, masker: &Masker, masked: bool) -> Node {
    // Origins are file paths: a path can hold credentials too (`…/s3:/u:pw@h/app.toml`).
    let origin = value.origin().map(|o| masker.mask_text(o));
    match &value.kind {
        ValueKind::Table(table) => Node::Table(
            table
                .iter()
                .map(|(key, child)| {
                    let child_path = join(path, key);
                    let mask = masked
                        || (masker.is_secret_key(key)
                            && !NOT_SECRET.contains(&child_path.as_str()));
                    (key.clone(), convert(&child_path, child, masker, mask))
                })
                .collect(),
        ),
        ValueKind::Array(items) => Node::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| convert(&format!("{path}[{i}]"), item, masker, masked))
                .collect(),
        ),
        _ if masked => Node::Leaf {
            value: json!(MASK),
            origin,
        },
        ValueKind::Nil => Node::Leaf {
            value: Value::Null,
            origin,
        },
        ValueKind::Boolean(b) => Node::Leaf {
            value: json!(b),
            origin,
        },
        ValueKind::I64(n) => Node::Leaf {
            value: json!(n),
            origin,
        },
        ValueKind::U64(n) => Node::Leaf {
            value: json!(n),
            origin,
        },
        ValueKind::I128(n) => Node::Leaf {
            value: json!(n.to_string()),
            origin,
        },
        ValueKind::U128(n) => Node::Leaf {
            value: json!(n.to_string()),
            origin,
        },
        ValueKind::Float(f) => Node::Leaf {
            value: json!(f),
            origin,
        },
        ValueKind::String(s) => Node::Leaf {
            value: json!(masker.mask_text(s)),
            origin,
        },
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn leaf_text(value: &Value) -> String {
    crate::report::content_scalar(value)
}

fn write_node(out: &mut TextWriter, key: &str, node: &Node) {
    match node {
        Node::Leaf { value, origin } => match origin {
            Some(origin) => out.line(format_args!(
                "{key} = {}  (from {origin})",
                leaf_text(value)
            )),
            None => out.kv(key, leaf_text(value)),
        },
        Node::Table(entries) if entries.is_empty() => out.kv(key, "(empty table)"),
        Node::Table(entries) => {
            out.line(format_args!("[{key}]"));
            out.indented(|out| {
                for (k, child) in entries {
                    write_node(out, k, child);
                }
            });
        }
        Node::Array(items) if items.is_empty() => out.kv(key, "[]"),
        Node::Array(items) => {
            out.line(format_args!("{key} ="));
            out.indented(|out| {
                for (i, item) in items.iter().enumerate() {
                    write_node(out, &format!("[{i}]"), item);
                }
            });
        }
    }
}

fn to_value(node: &Node, path: &str, origins: &mut Map<String, Value>) -> Value {
    match node {
        Node::Leaf { value, origin } => {
            if let Some(origin) = origin {
                origins.insert(path.to_owned(), json!(origin));
            }
            value.clone()
        }
        Node::Table(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, child)| (k.clone(), to_value(child, &join(path, k), origins)))
                .collect(),
        ),
        Node::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| to_value(item, &format!("{path}[{i}]"), origins))
                .collect(),
        ),
    }
}

impl SectionBody for ConfigurationSection {
    fn write_text(&self, out: &mut TextWriter) {
        match &self.root {
            None => out.line(NO_CONFIG),
            Some(entries) if entries.is_empty() => out.line("(the configuration is empty)"),
            Some(entries) => {
                for (key, node) in entries {
                    write_node(out, key, node);
                }
            }
        }
    }

    fn to_json(&self) -> Value {
        match &self.root {
            None => json!({ "note": NO_CONFIG }),
            Some(entries) => {
                let mut origins = Map::new();
                let values: Map<String, Value> = entries
                    .iter()
                    .map(|(k, node)| (k.clone(), to_value(node, k, &mut origins)))
                    .collect();
                json!({ "values": values, "origins": origins })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GmrConfig;

    fn section(config: &::config::Config, settings: &GmrConfig) -> ConfigurationSection {
        generate(&ReportContext {
            settings,
            app_config: Some(config),
            package: &crate::package::PackageInfo::gmr(),
        })
    }

    fn text(s: &ConfigurationSection) -> String {
        let mut w = TextWriter::new();
        s.write_text(&mut w);
        w.into_string()
    }

    #[test]
    fn groups_arrays_masking_and_origins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("app.toml");
        std::fs::write(
            &file,
            r#"
            [database]
            url = "postgres://app:hunter2@db.internal/billing"
            password = "s3cr3t-db"
            pool = 16
            [api]
            hosts = ["zeta", "alpha", "mid"]
            api_key = "abcd1234"
            [credentials]
            user = "svc"
            nested = { inner = "deep-secret" }
            [[upstreams]]
            name = "a"
            token = "tok-1"
            [[upstreams]]
            name = "b"
            token = "tok-2"
            [billing]
            account_number = "ACCT-123456"
            dsn_hint = "host=db password=in-a-dsn"
            [gmr.secrets]
            extra_keys = ["pool", "billing.account_number"]
            [gmr.admin]
            token = "admin-token-0123456789"
            "#,
        )
        .expect("write config");
        let config = ::config::Config::builder()
            .add_source(::config::File::from(file.clone()))
            .build()
            .expect("config");
        let settings = GmrConfig::from_config(&config).expect("gmr config");
        let s = section(&config, &settings);
        let t = text(&s);
        let j = s.to_json().to_string();
        for secret in [
            "hunter2",
            "s3cr3t-db",
            "abcd1234",
            "svc",
            "deep-secret",
            "tok-1",
            "tok-2",
        ] {
            assert!(!t.contains(secret), "{secret} in text:\n{t}");
            assert!(!j.contains(secret), "{secret} in json: {j}");
        }
        assert!(t.contains("[database]\n"), "{t}");
        assert!(
            t.contains("  url = postgres://app:***@db.internal/billing  (from "),
            "{t}"
        );
        assert!(t.contains("  password = ***"), "{t}");
        assert!(t.contains("  pool = ***"), "extra key masks: {t}");
        // Arrays keep their own order.
        let zeta = t.find("zeta").expect("zeta");
        let alpha = t.find("alpha").expect("alpha");
        let mid = t.find("mid").expect("mid");
        assert!(zeta < alpha && alpha < mid, "{t}");
        let json = s.to_json();
        assert_eq!(
            json["values"]["api"]["hosts"],
            json!(["zeta", "alpha", "mid"])
        );
        assert_eq!(json["values"]["upstreams"][1]["name"], "b");
        assert_eq!(json["values"]["upstreams"][1]["token"], MASK);
        let origin = json["origins"]["database.url"].as_str().expect("origin");
        assert!(origin.contains("app.toml"), "{origin}");
    }

    #[test]
    fn environment_origin_is_shown() {
        // The config crate's Environment source records "the environment" as the origin.
        let mut env = ::config::Map::new();
        env.insert("APP_DATABASE_HOST".to_owned(), "db-9".to_owned());
        env.insert(
            "APP_DATABASE_PASSWORD".to_owned(),
            "from-env-secret".to_owned(),
        );
        let config = ::config::Config::builder()
            .add_source(
                ::config::Environment::with_prefix("APP")
                    .separator("_")
                    .source(Some(env)),
            )
            .build()
            .expect("config");
        let s = section(&config, &GmrConfig::default());
        let t = text(&s);
        assert!(t.contains("host = db-9  (from the environment)"), "{t}");
        assert!(!t.contains("from-env-secret"), "{t}");
    }

    #[test]
    fn reads_back_from_its_json_to_the_same_text() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("app.toml");
        std::fs::write(
            &file,
            "[db]\nurl = \"postgres://u:pw@h/db\"\npool = 4\nempty = {}\nhosts = [\"a\", \"b\"]\nnone = []\n[[up]]\nname = \"x\"\n",
        )
        .expect("write config");
        let config = ::config::Config::builder()
            .add_source(::config::File::from(file))
            .add_source(::config::Environment::with_prefix("GMR_TEST_NOTHING_HERE"))
            .build()
            .expect("config");
        let s = section(&config, &GmrConfig::default());
        let again = ConfigurationSection::from_json(&s.to_json()).expect("reads back");
        assert_eq!(text(&again), text(&s));
        assert_eq!(again.to_json(), s.to_json());
        let none = generate(&ReportContext {
            settings: &GmrConfig::default(),
            app_config: None,
            package: &crate::package::PackageInfo::gmr(),
        });
        let again = ConfigurationSection::from_json(&none.to_json()).expect("reads back");
        assert_eq!(text(&again), text(&none));
        assert!(ConfigurationSection::from_json(&json!({"values": 3})).is_err());
        assert!(ConfigurationSection::from_json(&json!({})).is_err());
    }

    #[test]
    fn without_config_says_so() {
        let s = generate(&ReportContext {
            settings: &GmrConfig::default(),
            app_config: None,
            package: &crate::package::PackageInfo::gmr(),
        });
        assert!(text(&s).contains("no configuration was handed to gmr"));
    }
}
