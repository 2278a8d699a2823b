//! Function names as a reader of a Rust backtrace wants them: full path, generic arguments
//! elided (`Map<…>::poll`), closures and async blocks after the function that holds them.

/// The longest name the text view shows; a longer one keeps its start and its end.
const MAX_NAME: usize = 120;

/// `name` with its generic arguments elided: `<A<T> as B<U>>::f<V>` → `<A<…> as B<…>>::f<…>`.
/// A qualified self type (`<A as B>::f`) keeps its angle brackets; every list of generic
/// arguments (after a name) becomes `<…>`. Legacy `{{closure}}` is written `{closure}`.
pub(crate) fn elide_generics(name: &str) -> String {
    let name = name.replace("{{closure}}", "{closure}");
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars().peekable();
    let mut previous: Option<char> = None;
    while let Some(c) = chars.next() {
        if c == '<' && previous.is_some_and(|p| p.is_alphanumeric() || p == '_' || p == '}') {
            // Generic arguments: skip to the matching `>`, ignoring `->` inside.
            let mut depth = 1usize;
            let mut last = c;
            for inner in chars.by_ref() {
                match inner {
                    '<' => depth += 1,
                    '>' if last != '-' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                last = inner;
            }
            out.push_str("<…>");
            previous = Some('>');
            continue;
        }
        out.push(c);
        previous = Some(c);
    }
    shorten(&out)
}

/// Cuts a name longer than [`MAX_NAME`] in its middle.
fn shorten(name: &str) -> String {
    let count = name.chars().count();
    if count <= MAX_NAME {
        return name.to_owned();
    }
    let keep = (MAX_NAME - 1) / 2;
    let head: String = name.chars().take(keep).collect();
    let tail: String = name.chars().skip(count - keep).collect();
    format!("{head}…{tail}")
}

/// Whether `name` has a path (`a::b`, `<A as B>::f`) rather than a bare function name.
pub(crate) fn has_path(name: &str) -> bool {
    name.starts_with('<') || {
        // A `::` outside generic arguments.
        let mut depth = 0usize;
        let bytes = name.as_bytes();
        (0..bytes.len()).any(|i| {
            match bytes[i] {
                b'<' => depth += 1,
                b'>' => depth = depth.saturating_sub(1),
                _ => {}
            }
            depth == 0 && bytes[i] == b':' && bytes.get(i + 1) == Some(&b':')
        })
    }
}

/// The crate a name's path starts with: `tokio::runtime::…` → `tokio`,
/// `<tokio::… as core::…>::poll` → `tokio`; `None` for a bare name.
pub(crate) fn crate_of(name: &str) -> Option<&str> {
    let start = name
        .trim_start_matches(['<', '&', '*'])
        .trim_start_matches("mut ");
    let end = start.find("::")?;
    let first = &start[..end];
    first
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_')
        .then_some(first)
        .filter(|f| !f.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_arguments_are_elided() {
        assert_eq!(
            elide_generics(
                "<futures_util::future::future::Map<Fut, F> as core::future::future::Future>::poll"
            ),
            "<futures_util::future::future::Map<…> as core::future::future::Future>::poll"
        );
        assert_eq!(
            elide_generics(
                "poll<core::pin::Pin<alloc::boxed::Box<(dyn core::future::future::Future<Output=http::response::Response<axum_core::body::Body>> + core::marker::Send), alloc::alloc::Global>>>"
            ),
            "poll<…>"
        );
        assert_eq!(
            elide_generics("<F as axum::handler::Handler<(M,T1),S>>::call::{{closure}}"),
            "<F as axum::handler::Handler<…>>::call::{closure}"
        );
        assert_eq!(
            elide_generics("call_once<fn() -> std::process::ExitCode, ()>"),
            "call_once<…>"
        );
        assert_eq!(
            elide_generics("{closure#0}<gmr_examples::spawn_parked_workers::{closure_env#0}, ()>"),
            "{closure#0}<…>"
        );
        assert_eq!(elide_generics("std::thread::sleep"), "std::thread::sleep");
        let long = format!("a::{}", "b".repeat(300));
        assert!(elide_generics(&long).chars().count() <= MAX_NAME);
    }

    #[test]
    fn paths_and_crates() {
        assert!(has_path("std::thread::sleep"));
        assert!(has_path("<A as B>::f"));
        assert!(!has_path("poll<core::pin::Pin<X>>"));
        assert!(!has_path("{closure#0}"));
        assert_eq!(crate_of("tokio::runtime::park::park"), Some("tokio"));
        assert_eq!(
            crate_of("<tokio::net::TcpStream as core::fmt::Debug>::fmt"),
            Some("tokio")
        );
        assert_eq!(crate_of("demo_block_handler"), None);
    }
}
