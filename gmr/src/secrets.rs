//! Secret masking (DESIGN §6): what never leaves the process.
//!
//! * A configuration value (or environment variable, or command-line flag) whose **key** looks
//!   secret is shown as `***`. A key looks secret when it contains `password`, `passwd`,
//!   `secret`, `token`, `credential`, `private` or `auth` (case-insensitive, anywhere in the
//!   name), has `key` as a word (`api_key`, `apiKey`, `key`, but not `keyboard` or `monkey`), or
//!   matches one of the application's `secrets.extra_keys` (as a word, case-insensitive).
//! * Credentials inside URLs are masked wherever they appear, whatever the key:
//!   `postgres://app:hunter2@db/x` becomes `postgres://app:***@db/x`, and a user-only
//!   `https://ghp_abc@github.com` becomes `https://***@github.com`.
//!
//! Masking errs on the side of hiding: an innocent value named like a secret is hidden too.

/// The text shown instead of a secret.
pub const MASK: &str = "***";

/// Substrings that make a key secret wherever they appear in it.
const SECRET_SUBSTRINGS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "credential",
    "private",
    "auth",
];

/// Words that make a key secret when they are a whole word of it.
const SECRET_WORDS: &[&str] = &["key", "keys", "apikey", "pwd", "pass", "passphrase", "dsn"];

/// Decides which keys are secret and masks values.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    extra_words: Vec<String>,
}

impl Masker {
    /// A masker with the built-in patterns plus `extra_keys` (matched as words of a key,
    /// case-insensitive; an extra key with separators, such as `db.pin`, must match the whole
    /// key or a dotted suffix of it).
    pub fn new(extra_keys: &[String]) -> Self {
        Masker {
            extra_words: extra_keys
                .iter()
                .map(|k| k.trim().to_ascii_lowercase())
                .filter(|k| !k.is_empty())
                .collect(),
        }
    }

    /// Whether values under this key (a name like `db_password`, or a dotted path like
    /// `database.primary.password`) must be masked.
    pub fn is_secret_key(&self, key: &str) -> bool {
        let lower = key.to_ascii_lowercase();
        if SECRET_SUBSTRINGS.iter().any(|s| lower.contains(s)) {
            return true;
        }
        let words = split_words(key);
        if words.iter().any(|w| SECRET_WORDS.contains(&w.as_str())) {
            return true;
        }
        self.extra_words.iter().any(|extra| {
            if extra.contains(['.', '_', '-']) {
                lower == *extra || lower.ends_with(&format!(".{extra}"))
            } else {
                words.iter().any(|w| w == extra)
            }
        })
    }

    /// The value as it may be shown under `key`: [`MASK`] for a secret key, otherwise the value
    /// with URL credentials masked.
    pub fn mask_value(&self, key: &str, value: &str) -> String {
        if self.is_secret_key(key) {
            MASK.to_owned()
        } else {
            mask_url_credentials(value)
        }
    }

    /// Masks a command line: values of flags named like secrets (`--password=x`,
    /// `--db-password x`, `-p` is left alone) and credentials inside URLs in any argument.
    pub fn mask_args(&self, args: &[String]) -> Vec<String> {
        let mut out = Vec::with_capacity(args.len());
        let mut mask_next = false;
        for arg in args {
            if mask_next {
                out.push(MASK.to_owned());
                mask_next = false;
                continue;
            }
            if let Some(flag) = arg.strip_prefix('-').map(|a| a.trim_start_matches('-')) {
                if let Some((name, _value)) = flag.split_once('=') {
                    if self.is_secret_key(name) {
                        let prefix_len = arg.len() - flag.len();
                        out.push(format!("{}{name}={MASK}", &arg[..prefix_len]));
                        continue;
                    }
                } else if !flag.is_empty() && self.is_secret_key(flag) {
                    out.push(arg.clone());
                    mask_next = true;
                    continue;
                }
            } else if let Some((name, _)) = arg.split_once('=') {
                // `KEY=value` arguments, as passed to `env` or to some launchers.
                if !name.contains("://") && self.is_secret_key(name) {
                    out.push(format!("{name}={MASK}"));
                    continue;
                }
            }
            out.push(mask_url_credentials(arg));
        }
        out
    }
}

/// Splits a key into lowercase words at `_`, `-`, `.`, spaces and camelCase boundaries.
fn split_words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Masks the credentials of every URL in `text`: `scheme://user:pass@host` becomes
/// `scheme://user:***@host`, and `scheme://token@host` becomes `scheme://***@host`.
pub fn mask_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (before, after) = rest.split_at(pos + 3);
        out.push_str(before);
        // The authority ends at the first '/', '?', '#' or whitespace.
        let end = after
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.split_once(':') {
                    Some((user, _password)) => {
                        out.push_str(user);
                        out.push(':');
                        out.push_str(MASK);
                    }
                    None => out.push_str(MASK),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys() {
        let m = Masker::new(&["pin".to_owned(), "billing.account_number".to_owned()]);
        for key in [
            "password",
            "db_password",
            "DB_PASSWORD",
            "passwd",
            "client_secret",
            "secretKey",
            "api_token",
            "key",
            "api_key",
            "apiKey",
            "API-KEY",
            "signing.key",
            "aws_credentials",
            "private_key_path",
            "auth",
            "oauth_client",
            "Authorization",
            "pin",
            "card_pin",
            "billing.account_number",
            "dsn",
        ] {
            assert!(m.is_secret_key(key), "{key} should be secret");
        }
        for key in [
            "keyboard",
            "monkey",
            "host",
            "port",
            "log_dir",
            "pinned",
            "account_number",
            "url",
            "name",
        ] {
            assert!(!m.is_secret_key(key), "{key} should be shown");
        }
    }

    #[test]
    fn url_credentials() {
        assert_eq!(
            mask_url_credentials("postgres://app:hunter2@db.internal:5432/billing"),
            "postgres://app:***@db.internal:5432/billing"
        );
        assert_eq!(
            mask_url_credentials("https://ghp_abcdef@github.com/x"),
            "https://***@github.com/x"
        );
        assert_eq!(
            mask_url_credentials("a redis://:pw@r1 and amqp://u:p@q/v?x=1"),
            "a redis://:***@r1 and amqp://u:***@q/v?x=1"
        );
        assert_eq!(
            mask_url_credentials("http://example.com/a@b"),
            "http://example.com/a@b"
        );
        assert_eq!(mask_url_credentials("no url here"), "no url here");
        assert_eq!(mask_url_credentials("trailing://"), "trailing://");
        assert_eq!(
            mask_url_credentials("http://u:p@h/p@ss"),
            "http://u:***@h/p@ss"
        );
    }

    #[test]
    fn mask_value_uses_key_then_url() {
        let m = Masker::default();
        assert_eq!(m.mask_value("password", "hunter2"), MASK);
        assert_eq!(
            m.mask_value("url", "mysql://root:hunter2@localhost/db"),
            "mysql://root:***@localhost/db"
        );
        assert_eq!(m.mask_value("host", "localhost"), "localhost");
    }

    #[test]
    fn command_lines() {
        let m = Masker::default();
        let args: Vec<String> = [
            "/usr/bin/app",
            "--db-password=hunter2",
            "--api-token",
            "tok123",
            "--listen",
            "127.0.0.1:80",
            "--database-url=postgres://u:pw@db/x",
            "DB_PASSWORD=s3cr3t",
            "-v",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let masked = m.mask_args(&args).join(" ");
        assert_eq!(
            masked,
            "/usr/bin/app --db-password=*** --api-token *** --listen 127.0.0.1:80 \
             --database-url=postgres://u:***@db/x DB_PASSWORD=*** -v"
        );
        for secret in ["hunter2", "tok123", "pw@", "s3cr3t"] {
            assert!(!masked.contains(secret), "{secret} leaked: {masked}");
        }
    }
}
