//! Secret masking (`docs/security.md`): what never leaves the process.
//!
//! * A configuration value (or environment variable, or command-line flag) whose **key** looks
//!   secret is shown as `***`. A key looks secret when it contains `passw` (`password`,
//!   `passwd`), `secret`, `token`, `credential`, `private` or `auth` (case-insensitive, anywhere
//!   in the name), has `key` as a word (`api_key`, `apiKey`, `key`, but not `keyboard` or `monkey`), or
//!   matches one of the application's `secrets.extra_keys` (as a word, case-insensitive).
//!   Also `bearer`, `jwt`, `cookie`, `creds` and `passw` anywhere, the words `sk`, `pat`,
//!   `session`, `dsn`, `totp`, `hotp`, and words starting with `otp` (`STRIPE_SK`,
//!   `GITHUB_PAT`, `otp_seed`).
//! * Secrets inside any other value are masked wherever they appear, whatever the key
//!   ([`Masker::mask_text`]):
//!   * the body of PEM private-key blocks (`-----BEGIN PRIVATE KEY-----`, `RSA`, `EC`,
//!     `OPENSSH`, `ENCRYPTED`, PGP), certificates left alone;
//!   * JSON Web Tokens (`eyJ….….…`);
//!   * credentials in URLs: `postgres://app:hunter2@db/x` becomes `postgres://app:***@db/x`
//!     (also when the password holds `/`, `?` or `#`), and a user-only
//!     `https://ghp_abc@github.com` becomes `https://***@github.com`;
//!   * `name=value` pairs whose name looks secret: query strings
//!     (`?user=app&password=…`), key-value DSNs (`host=db password=…`), `-Dapp.password=…`;
//!   * `Name: value` headers whose name looks secret (`X-Api-Key: …`), and the credentials
//!     after `Bearer ` and `Basic `.
//!
//! Masking errs on the side of hiding: an innocent value named like a secret is hidden too.
#![forbid(unsafe_code)]

/// The text shown instead of a secret.
pub const MASK: &str = "***";

/// Substrings that make a key secret wherever they appear in it (`passw` covers `password`,
/// `passwd` and `passwort`).
const SECRET_SUBSTRINGS: &[&str] = &[
    "passw",
    "secret",
    "token",
    "credential",
    "creds",
    "private",
    "auth",
    "bearer",
    "jwt",
    "cookie",
];

/// Words that make a key secret when they are a whole word of it (`STRIPE_SK`, `GITHUB_PAT`,
/// `sentry_dsn`, `user_session`).
const SECRET_WORDS: &[&str] = &[
    "key",
    "keys",
    "apikey",
    "pwd",
    "pass",
    "passphrase",
    "dsn",
    "sk",
    "pat",
    "session",
    "totp",
    "hotp",
];

/// Prefixes that make a key secret when a word of it starts with them (`otp`, `otp_seed`,
/// `otpauth_uri`).
const SECRET_WORD_PREFIXES: &[&str] = &["otp"];

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
        if words.iter().any(|w| {
            SECRET_WORDS.contains(&w.as_str())
                || SECRET_WORD_PREFIXES.iter().any(|p| w.starts_with(p))
        }) {
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
    /// with the secrets inside it masked ([`Masker::mask_text`]).
    pub fn mask_value(&self, key: &str, value: &str) -> String {
        if self.is_secret_key(key) {
            MASK.to_owned()
        } else {
            self.mask_text(value)
        }
    }

    /// Masks the secrets inside a free-form value: the body of PEM private-key blocks, JWTs,
    /// URL credentials, `name=value` pairs and `Name: value` headers whose name looks secret,
    /// and `Bearer`/`Basic` credentials.
    pub fn mask_text(&self, text: &str) -> String {
        let text = mask_private_keys(text);
        let text = mask_jwts(&text);
        let text = mask_url_credentials(&text);
        let text = mask_bare_userinfo(&text);
        let text = mask_auth_schemes(&text);
        let text = self.mask_pairs(&text, "=", |c| {
            matches!(c, '&' | ';' | ',' | '"' | '\'' | ')') || c.is_whitespace()
        });
        self.mask_pairs(&text, ": ", |c| matches!(c, '\n' | '\r' | ',' | ';'))
    }

    /// Masks the value after every `name<sep>` whose name looks secret, up to `ends_value`.
    fn mask_pairs(&self, text: &str, sep: &str, ends_value: impl Fn(char) -> bool) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(pos) = rest.find(sep) {
            let (before, after_sep) = (&rest[..pos], &rest[pos + sep.len()..]);
            let name_start = before
                .char_indices()
                .rev()
                .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                .last()
                .map_or(before.len(), |(i, _)| i);
            let name = &before[name_start..];
            out.push_str(before);
            out.push_str(sep);
            if !name.is_empty() && self.is_secret_key(name) {
                let end = after_sep.find(&ends_value).unwrap_or(after_sep.len());
                if end > 0 && &after_sep[..end] != MASK {
                    out.push_str(MASK);
                    rest = &after_sep[end..];
                    continue;
                }
            }
            rest = after_sep;
        }
        out.push_str(rest);
        out
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
            out.push(self.mask_text(arg));
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
/// `scheme://user:***@host`, and `scheme://token@host` becomes `scheme://***@host`. A password
/// holding `/`, `?` or `#` (not percent-encoded, as some tools accept) is masked too: when the
/// text after `://` has a `:` and later an `@` before any whitespace, everything between them
/// is taken for the password (which may hide a little more than needed, never less).
pub fn mask_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (before, after) = rest.split_at(pos + 3);
        out.push_str(before);
        let segment_end = after.find(char::is_whitespace).unwrap_or(after.len());
        let segment = &after[..segment_end];
        // The authority ends at the first '/', '?' or '#'.
        let authority_end = segment.find(['/', '?', '#']).unwrap_or(segment.len());
        let userinfo_end = match segment[..authority_end].rfind('@') {
            Some(at) => Some(at),
            // `user:pa/ss@host`: a ':' in the authority and an '@' further on.
            None => segment
                .rfind('@')
                .filter(|at| segment[..(*at).min(authority_end)].contains(':')),
        };
        match userinfo_end {
            Some(at) => {
                match segment[..at].split_once(':') {
                    Some((user, _password)) => {
                        out.push_str(user);
                        out.push(':');
                        out.push_str(MASK);
                    }
                    None => out.push_str(MASK),
                }
                out.push_str(&segment[at..authority_end.max(at)]);
                let tail_start = authority_end.max(at);
                rest = &after[tail_start..];
            }
            None => {
                out.push_str(&segment[..authority_end]);
                rest = &after[authority_end..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Masks `user:password@host` where it stands without a scheme (a path such as
/// `/etc/s3:/u:pw@h/app.toml`, where `//` was folded, or `user:pw@host:5432`): in every piece
/// between whitespace, `/`, `,` and `;` that has a `:` before its last `@`, what lies between
/// them.
fn mask_bare_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut piece_start = 0;
    let is_separator = |c: char| c.is_whitespace() || matches!(c, '/' | ',' | ';');
    let flush = |out: &mut String, piece: &str| {
        let masked = piece.rfind('@').and_then(|at| {
            let colon = piece[..at].find(':')?;
            let secret = &piece[colon + 1..at];
            (!secret.is_empty() && secret != MASK)
                .then(|| format!("{}:{MASK}{}", &piece[..colon], &piece[at..]))
        });
        out.push_str(masked.as_deref().unwrap_or(piece));
    };
    for (i, c) in text.char_indices() {
        if is_separator(c) {
            flush(&mut out, &text[piece_start..i]);
            out.push(c);
            piece_start = i + c.len_utf8();
        }
    }
    flush(&mut out, &text[piece_start..]);
    out
}

/// Masks the body of every PEM private-key block (`-----BEGIN PRIVATE KEY-----`, and the `RSA`,
/// `EC`, `OPENSSH`, `ENCRYPTED`, `PGP … BLOCK` variants: any label with `PRIVATE KEY`), keeping
/// its `BEGIN` and `END` lines; a block without its `END` line is masked to the end of the
/// text. Certificates and public keys are left alone.
fn mask_private_keys(text: &str) -> String {
    const BEGIN: &str = "-----BEGIN ";
    const DASHES: &str = "-----";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(BEGIN) {
        let after = &rest[at + BEGIN.len()..];
        let label = after.find(DASHES).map(|end| &after[..end]);
        let Some(label) = label.filter(|l| l.contains("PRIVATE KEY") && !l.contains('\n')) else {
            out.push_str(&rest[..at + BEGIN.len()]);
            rest = after;
            continue;
        };
        let body_start = at + BEGIN.len() + label.len() + DASHES.len();
        out.push_str(&rest[..body_start]);
        out.push_str(MASK);
        let body = &rest[body_start..];
        rest = match body.find(&format!("-----END {label}-----")) {
            Some(end) => &body[end..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// Masks every JSON Web Token: three base64url segments joined by dots, the first starting
/// with `eyJ` (the encoding of `{"`), standing as a word of its own.
fn mask_jwts(text: &str) -> String {
    let bytes = text.as_bytes();
    let b64 = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_');
    // The end of the base64url run starting at `from`.
    let run = |from: usize| {
        bytes[from..]
            .iter()
            .position(|&b| !b64(b))
            .map_or(bytes.len(), |n| from + n)
    };
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find("eyJ") {
        let start = search + found;
        search = start + 3;
        if start > 0 && b64(bytes[start - 1]) {
            continue;
        }
        let first_end = run(start);
        if first_end - start < 10 || bytes.get(first_end) != Some(&b'.') {
            continue;
        }
        let second_end = run(first_end + 1);
        if second_end == first_end + 1 || bytes.get(second_end) != Some(&b'.') {
            continue;
        }
        let end = run(second_end + 1);
        out.push_str(&text[copied..start]);
        out.push_str(MASK);
        copied = end;
        search = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Masks what follows `Bearer ` or `Basic ` (any case): the credentials of an
/// `Authorization` value wherever it appears.
fn mask_auth_schemes(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = ["bearer ", "basic "]
        .iter()
        .filter_map(|scheme| {
            lower[search..]
                .find(scheme)
                .map(|i| (search + i, scheme.len()))
        })
        .min()
    {
        let (start, len) = found;
        let value_start = start + len;
        let value_end = text[value_start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';'))
            .map_or(text.len(), |i| value_start + i);
        let is_word_start = start == 0
            || !text[..start]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric());
        if is_word_start && value_end > value_start && &text[value_start..value_end] != MASK {
            out.push_str(&text[copied..value_start]);
            out.push_str(MASK);
            copied = value_end;
        }
        search = value_end.max(value_start);
    }
    out.push_str(&text[copied..]);
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
    fn more_secret_key_names() {
        let m = Masker::default();
        for key in [
            "bearer",
            "bearer_value",
            "jwt",
            "JWT",
            "id_jwt",
            "passwort",
            "db_passw",
            "sk",
            "STRIPE_SK",
            "stripeSk",
            "creds",
            "aws_creds",
            "cookie",
            "session_cookie",
            "Cookies",
            "otp",
            "otp_seed",
            "otpauth_uri",
            "totp",
            "GITHUB_PAT",
            "gitlab-pat",
            "pat",
            "sentry_dsn",
            "session",
            "user_session",
        ] {
            assert!(m.is_secret_key(key), "{key} should be secret");
        }
        for key in [
            "path", "pattern", "patch", "skip", "sky", "task", "desk", "motd", "hotpot",
        ] {
            assert!(!m.is_secret_key(key), "{key} should be shown");
        }
    }

    /// A private key as tools write it (the body is not a real key).
    const PEM_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\nMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n-----END PRIVATE KEY-----";
    const PEM_CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUPublicCertificateBody\n-----END CERTIFICATE-----";
    const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

    #[test]
    fn private_keys_jwts_and_auth_credentials_in_any_value() {
        let m = Masker::default();
        for label in [
            "PRIVATE KEY",
            "RSA PRIVATE KEY",
            "EC PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
        ] {
            let key = PEM_KEY.replace("PRIVATE KEY", label);
            // Under a key that does not look secret, with a certificate before it.
            let bundle = format!("{PEM_CERT}\n{key}\n");
            let masked = m.mask_value("cert_bundle", &bundle);
            assert!(
                !masked.contains("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
                "{label}: {masked}"
            );
            assert!(!masked.contains("MzEfYyjiWA4R4"), "{label}: {masked}");
            assert!(
                masked.contains(&format!("-----BEGIN {label}-----")),
                "{masked}"
            );
            assert!(
                masked.contains("PublicCertificateBody"),
                "certificates stay: {masked}"
            );
        }
        // A block cut short (no END line) is masked to the end.
        let cut = &PEM_KEY[..80];
        assert!(
            !m.mask_text(cut).contains("MIIEvQIBADAN"),
            "{}",
            m.mask_text(cut)
        );
        // A PGP private key block, and escaped newlines as environment variables hold them.
        let pgp = "-----BEGIN PGP PRIVATE KEY BLOCK-----\\nlQOYBGSecretPgpBody\\n-----END PGP PRIVATE KEY BLOCK-----";
        assert!(
            !m.mask_text(pgp).contains("SecretPgpBody"),
            "{}",
            m.mask_text(pgp)
        );

        for (raw, secret) in [
            (
                format!("token in a query: https://x/cb?state={JWT}&x=1"),
                "SflKxwRJSMeKKF2QT4fw",
            ),
            (JWT.to_owned(), "eyJzdWIiOiIxMjM0NTY3ODkwIiw"),
            (
                format!("cookie jar: id={JWT}; Path=/"),
                "SflKxwRJSMeKKF2QT4fw",
            ),
            (
                "curl -H 'Authorization: Bearer abc.def-123'".to_owned(),
                "abc.def-123",
            ),
            ("Bearer opaque-token-1".to_owned(), "opaque-token-1"),
            (
                "headers=X:1,Authorization:Basic dXNlcjpwYXNz".to_owned(),
                "dXNlcjpwYXNz",
            ),
            ("BASIC dXNlcjpwYXNz".to_owned(), "dXNlcjpwYXNz"),
        ] {
            let masked = m.mask_value("notes", &raw);
            assert!(!masked.contains(secret), "{raw}: {masked}");
            assert!(masked.contains(MASK), "{raw}: {masked}");
        }
        // Not every dotted word is a JWT.
        assert_eq!(
            m.mask_text("app.example.com v1.2.3"),
            "app.example.com v1.2.3"
        );
        assert_eq!(m.mask_text("eyJ alone"), "eyJ alone");
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
    fn url_passwords_with_reserved_characters() {
        for (raw, masked) in [
            ("postgres://app:pa/ss@db/x", "postgres://app:***@db/x"),
            ("postgres://app:pa?ss@db/x", "postgres://app:***@db/x"),
            ("postgres://app:pa#ss@db/x", "postgres://app:***@db/x"),
            ("redis://:p@ss@r1:6379", "redis://:***@r1:6379"),
        ] {
            assert_eq!(mask_url_credentials(raw), masked, "{raw}");
        }
    }

    #[test]
    fn secrets_inside_values() {
        let m = Masker::default();
        let cases = [
            (
                "postgres://db/x?user=app&password=hunter2&sslmode=require",
                "postgres://db/x?user=app&password=***&sslmode=require",
            ),
            (
                "host=db user=app password=hunter2 dbname=x",
                "host=db user=app password=*** dbname=x",
            ),
            (
                "-Xmx1g -Dapp.db.password=hunter2 -Dapp.name=x",
                "-Xmx1g -Dapp.db.password=*** -Dapp.name=x",
            ),
            ("Authorization: Bearer abc.def.ghi", "Authorization: ***"),
            (
                "curl -H 'Authorization: Basic dXNlcjpwdw=='",
                "curl -H 'Authorization: ***",
            ),
            ("X-Api-Key: k-123, other", "X-Api-Key: ***, other"),
            ("token=abc;path=/", "token=***;path=/"),
            (
                "/tmp/s3:/u:pw-in-path@h/demo.toml",
                "/tmp/s3:/u:***@h/demo.toml",
            ),
            ("app:pw-bare@db.internal:5432", "app:***@db.internal:5432"),
        ];
        for (raw, masked) in cases {
            assert_eq!(m.mask_text(raw), masked, "{raw}");
        }
        for secret in [
            "hunter2",
            "abc.def",
            "dXNlcjpwdw",
            "k-123",
            "abc;",
            "pw-in-path",
            "pw-bare",
        ] {
            for (raw, _) in cases {
                assert!(!m.mask_text(raw).contains(secret), "{secret} in {raw}");
            }
        }
        // Innocent text is left alone.
        assert_eq!(
            m.mask_text("host=db port=5432 a: b"),
            "host=db port=5432 a: b"
        );
        assert_eq!(m.mask_text("the basics of it"), "the basics of it");
        assert_eq!(
            m.mask_text("admin@example.com at 10:30"),
            "admin@example.com at 10:30"
        );
        assert_eq!(m.mask_text("db@host:5432"), "db@host:5432");
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
            "--header=Authorization: Bearer hdr-secret",
            "-v",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let masked = m.mask_args(&args).join(" ");
        assert_eq!(
            masked,
            "/usr/bin/app --db-password=*** --api-token *** --listen 127.0.0.1:80 \
             --database-url=postgres://u:***@db/x DB_PASSWORD=*** --header=Authorization: *** -v"
        );
        for secret in ["hunter2", "tok123", "pw@", "s3cr3t", "hdr-secret"] {
            assert!(!masked.contains(secret), "{secret} leaked: {masked}");
        }
    }
}
