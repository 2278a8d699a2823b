//! Open spans joined to the requests they belong to, and long-open spans outside requests.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::model::{SpanEntry, SpansEntry};
use crate::secrets::Masker;
use crate::tracing::SpanView;

/// The most spans outside requests listed.
pub(super) const MAX_OUTSIDE: usize = 20;

/// The spans of one request: the chain down to its innermost span, outermost first, and how
/// many other spans of it are open.
#[derive(Debug, Default)]
pub(super) struct RequestSpans {
    pub(super) chain: Vec<SpanEntry>,
    pub(super) others: usize,
}

/// The open spans by request id, and the spans block of the section.
pub(super) fn join(
    views: Vec<SpanView>,
    now: Duration,
    span_age: Duration,
    masker: &Masker,
) -> (HashMap<u64, RequestSpans>, SpansEntry) {
    let open = views.len();
    let by_serial: HashMap<u64, &SpanView> = views.iter().map(|v| (v.serial, v)).collect();
    let parents: HashSet<u64> = views.iter().filter_map(|v| v.parent).collect();
    let entry = |v: &SpanView| span_entry(v, now, masker);
    // The chain from the outermost open ancestor down to `leaf`.
    let chain = |leaf: &SpanView| -> Vec<SpanView> { chain_of(leaf, &by_serial) };

    let mut per_request: HashMap<u64, Vec<&SpanView>> = HashMap::new();
    let mut outside = Vec::new();
    for v in &views {
        if parents.contains(&v.serial) {
            continue;
        }
        if v.request != 0 {
            per_request.entry(v.request).or_default().push(v);
        } else if now.saturating_sub(v.opened) >= span_age {
            outside.push(v);
        }
    }
    let counts: HashMap<u64, usize> = views.iter().fold(HashMap::new(), |mut m, v| {
        if v.request != 0 {
            *m.entry(v.request).or_default() += 1;
        }
        m
    });
    let requests = per_request
        .into_iter()
        .map(|(request, leaves)| {
            // The innermost: the deepest leaf, the one entered last among equals.
            let best = leaves
                .iter()
                .map(|leaf| chain(leaf))
                .max_by_key(|c| (c.len(), c.last().and_then(|l| l.last_entered)))
                .unwrap_or_default();
            let shown = best.len();
            let spans = RequestSpans {
                chain: best.iter().map(entry).collect(),
                others: counts
                    .get(&request)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(shown),
            };
            (request, spans)
        })
        .collect();

    outside.sort_by_key(|v| v.opened);
    let not_listed = outside.len().saturating_sub(MAX_OUTSIDE);
    let outside_requests = outside
        .into_iter()
        .take(MAX_OUTSIDE)
        .map(|leaf| {
            let labels: Vec<String> = chain(leaf).iter().map(|v| entry(v).label()).collect();
            let mut e = entry(leaf);
            if labels.len() > 1 {
                e.path = Some(labels.join(" > "));
            }
            e
        })
        .collect();
    (
        requests,
        SpansEntry {
            recorded: true,
            open,
            span_age_ms: span_age.as_millis() as u64,
            outside_requests,
            outside_requests_not_listed: not_listed,
            note: None,
        },
    )
}

/// The chain from the outermost open ancestor in the same request down to `leaf`.
fn chain_of(leaf: &SpanView, by_serial: &HashMap<u64, &SpanView>) -> Vec<SpanView> {
    let mut chain = vec![leaf.clone()];
    let mut at = leaf;
    while let Some(parent) = at.parent.and_then(|p| by_serial.get(&p).copied()) {
        // A parent outside the request is not part of the request's chain.
        if parent.request != leaf.request || chain.len() >= 64 {
            break;
        }
        chain.push(parent.clone());
        at = parent;
    }
    chain.reverse();
    chain
}

fn span_entry(v: &SpanView, now: Duration, masker: &Masker) -> SpanEntry {
    SpanEntry {
        name: v.name.to_owned(),
        target: v.target.to_owned(),
        fields: v
            .fields
            .values
            .iter()
            .map(|(name, value)| format!("{name}={}", masker.mask_value(name, value)))
            .collect(),
        fields_dropped: v.fields.dropped,
        open_ms: now.saturating_sub(v.opened).as_millis() as u64,
        last_entered_ms: v
            .last_entered
            .map(|at| now.saturating_sub(at).as_millis() as u64),
        path: None,
    }
}

/// Where a request waits, in words: from its innermost span and whether a thread polls it.
pub(super) fn waiting_in(chain: &[SpanEntry], polled_now: bool) -> Option<String> {
    let innermost = chain.last()?;
    let label = innermost.label();
    Some(match (polled_now, innermost.last_entered_ms) {
        (true, Some(ms)) => format!("running in `{label}`, entered {} ago", seconds(ms)),
        (true, None) => format!("running, in `{label}`"),
        (false, Some(ms)) => format!("waiting in `{label}` for {}", seconds(ms)),
        (false, None) => format!(
            "waiting in `{label}` (opened {} ago, never entered)",
            seconds(innermost.open_ms)
        ),
    })
}

/// Milliseconds as the text shows them: `12.3 s`.
use crate::sections::since::render::seconds;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracing::Fields;

    fn view(
        serial: u64,
        parent: Option<u64>,
        name: &'static str,
        request: u64,
        opened_s: u64,
        entered_s: Option<u64>,
        fields: &[(&'static str, &str)],
    ) -> SpanView {
        SpanView {
            serial,
            parent,
            name,
            target: "app",
            request,
            opened: Duration::from_secs(opened_s),
            last_entered: entered_s.map(Duration::from_secs),
            fields: Fields {
                values: fields.iter().map(|(n, v)| (*n, (*v).to_owned())).collect(),
                dropped: 0,
            },
        }
    }

    #[test]
    fn requests_get_their_innermost_chain_and_background_spans_are_listed_by_age() {
        let now = Duration::from_secs(100);
        let views = vec![
            view(1, None, "server", 0, 10, Some(10), &[]),
            view(
                2,
                Some(1),
                "request",
                7,
                50,
                Some(88),
                &[("path", "/await-lock")],
            ),
            view(
                3,
                Some(2),
                "await_lock",
                7,
                87,
                Some(88),
                &[("password", "hunter2")],
            ),
            view(4, Some(2), "log_flush", 7, 87, None, &[]),
            view(
                5,
                None,
                "lock_holder",
                0,
                20,
                Some(20),
                &[("resource", "inventory")],
            ),
            view(6, None, "young_job", 0, 100, Some(100), &[]),
        ];
        let masker = Masker::new(&[]);
        let (requests, block) = join(views, now, Duration::from_secs(1), &masker);
        let spans = &requests[&7];
        let names: Vec<&str> = spans.chain.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["request", "await_lock"],
            "entered last wins a tie"
        );
        assert_eq!(spans.others, 1);
        assert_eq!(spans.chain[1].fields, vec!["password=***".to_owned()]);
        assert_eq!(spans.chain[1].last_entered_ms, Some(12_000));
        assert_eq!(
            waiting_in(&spans.chain, false).as_deref(),
            Some("waiting in `await_lock{password=***}` for 12.0 s")
        );
        assert!(
            waiting_in(&spans.chain, true).is_some_and(|w| w.starts_with("running in `await_lock"))
        );
        let listed: Vec<&str> = block
            .outside_requests
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(
            listed,
            vec!["lock_holder"],
            "server has a child; young_job is young"
        );
        assert_eq!(block.open, 6);
    }
}
