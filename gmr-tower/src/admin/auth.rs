//! Bearer-token authentication of the admin endpoint.
//!
//! The presented token and the configured one are both hashed (SHA-256) and the digests are
//! compared in constant time, so neither the length nor the content of the token leaks through
//! timing. The token is never logged and never echoed.

#[cfg(test)]
use http::HeaderMap;
#[cfg(test)]
use http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};

/// Why a request was not authorized. The message is safe to send to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    Missing,
    Malformed,
    WrongScheme,
    WrongToken,
}

impl Denied {
    pub(crate) fn message(self) -> &'static str {
        match self {
            Denied::Missing => "missing Authorization header; send `Authorization: Bearer <token>`",
            Denied::Malformed => {
                "malformed Authorization header; send `Authorization: Bearer <token>`"
            }
            Denied::WrongScheme => "unsupported authorization scheme; use `Bearer`",
            Denied::WrongToken => "invalid token",
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750).
    pub(crate) fn challenge(self) -> &'static str {
        match self {
            Denied::Missing | Denied::WrongScheme => "Bearer realm=\"gmr\"",
            Denied::Malformed => "Bearer realm=\"gmr\", error=\"invalid_request\"",
            Denied::WrongToken => "Bearer realm=\"gmr\", error=\"invalid_token\"",
        }
    }
}

/// The digest of the configured token.
#[derive(Clone)]
pub(crate) struct TokenDigest([u8; 32]);

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenDigest(***)")
    }
}

impl TokenDigest {
    pub(crate) fn of(token: &str) -> Self {
        TokenDigest(Sha256::digest(token.as_bytes()).into())
    }

    /// Checks the request's `Authorization` header.
    #[cfg(test)]
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), Denied> {
        self.check_values(headers.get_all(AUTHORIZATION).iter().map(|v| v.as_bytes()))
    }

    /// Checks the raw values of the request's `Authorization` headers (any HTTP library).
    pub(crate) fn check_values<'a>(
        &self,
        mut values: impl Iterator<Item = &'a [u8]>,
    ) -> Result<(), Denied> {
        let Some(bytes) = values.next() else {
            return Err(Denied::Missing);
        };
        if values.next().is_some() {
            return Err(Denied::Malformed);
        }
        let Some(space) = bytes.iter().position(|&b| b == b' ') else {
            return Err(if bytes.is_empty() {
                Denied::Missing
            } else {
                Denied::Malformed
            });
        };
        let (scheme, rest) = bytes.split_at(space);
        if !scheme.eq_ignore_ascii_case(b"bearer") {
            return Err(Denied::WrongScheme);
        }
        // Exactly one space, then a token of visible ASCII (RFC 6750 b64token and more).
        let token = &rest[1..];
        if token.is_empty() || !token.iter().all(u8::is_ascii_graphic) {
            return Err(Denied::Malformed);
        }
        let presented: [u8; 32] = Sha256::digest(token).into();
        if constant_time_eq(&presented, &self.0) {
            Ok(())
        } else {
            Err(Denied::WrongToken)
        }
    }
}

/// Compares two digests without an early exit.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b.iter()) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use http::header::AUTHORIZATION;

    const TOKEN: &str = "s3cr3t-token-0123456789";

    fn check(value: Option<&[u8]>) -> Result<(), Denied> {
        let mut headers = HeaderMap::new();
        if let Some(v) = value {
            headers.insert(
                AUTHORIZATION,
                HeaderValue::from_bytes(v).expect("header value"),
            );
        }
        TokenDigest::of(TOKEN).check(&headers)
    }

    #[test]
    fn accepts_the_token_with_any_scheme_case() {
        assert_eq!(check(Some(format!("Bearer {TOKEN}").as_bytes())), Ok(()));
        assert_eq!(check(Some(format!("bearer {TOKEN}").as_bytes())), Ok(()));
        assert_eq!(check(Some(format!("BEARER {TOKEN}").as_bytes())), Ok(()));
    }

    #[test]
    fn rejects_everything_else() {
        assert_eq!(check(None), Err(Denied::Missing));
        assert_eq!(check(Some(b"")), Err(Denied::Missing));
        assert_eq!(check(Some(b"Bearer")), Err(Denied::Malformed));
        assert_eq!(check(Some(b"Bearer ")), Err(Denied::Malformed));
        assert_eq!(
            check(Some(format!("Bearer  {TOKEN}").as_bytes())),
            Err(Denied::Malformed)
        );
        assert_eq!(
            check(Some(format!("Bearer {TOKEN} ").as_bytes())),
            Err(Denied::Malformed)
        );
        assert_eq!(
            check(Some(format!("Basic {TOKEN}").as_bytes())),
            Err(Denied::WrongScheme)
        );
        assert_eq!(check(Some(b"Bearer wrong-token")), Err(Denied::WrongToken));
        assert_eq!(
            check(Some(format!("Bearer {TOKEN}x").as_bytes())),
            Err(Denied::WrongToken)
        );
        assert_eq!(
            check(Some(&format!("Bearer {}", &TOKEN[..5]).into_bytes())),
            Err(Denied::WrongToken)
        );
        assert_eq!(check(Some(b"Bearer \xff\xfe")), Err(Denied::Malformed));
        let huge = format!("Bearer {}", "a".repeat(64 * 1024));
        assert_eq!(check(Some(huge.as_bytes())), Err(Denied::WrongToken));
    }

    #[test]
    fn two_authorization_headers_are_malformed() {
        let mut headers = HeaderMap::new();
        let value = HeaderValue::from_str(&format!("Bearer {TOKEN}")).expect("value");
        headers.append(AUTHORIZATION, value.clone());
        headers.append(AUTHORIZATION, value);
        assert_eq!(
            TokenDigest::of(TOKEN).check(&headers),
            Err(Denied::Malformed)
        );
    }

    #[test]
    fn debug_never_shows_the_digest() {
        assert_eq!(format!("{:?}", TokenDigest::of(TOKEN)), "TokenDigest(***)");
    }
}
