//! The text of `gmr summary`, for a person in a hurry: what is stuck first (the oldest
//! requests), then the stacks on most replicas, then the replicas and who is late. Every value
//! from a report goes through gmr's [`TextWriter`], which escapes control characters.

use gmr::report::TextWriter;

use super::Summary;
use super::groups::Group;

/// Replicas named after a group found on only some of them.
const NAMED_REPLICAS: usize = 3;

/// The summary as text, showing `top` groups of each kind and `top` requests.
pub(crate) fn render(s: &Summary, top: usize) -> String {
    let mut out = TextWriter::new();
    heading(s, &mut out);
    requests(s, top, &mut out);
    groups(
        "Thread stacks",
        "thread",
        "threads",
        &s.thread_groups,
        top,
        &mut out,
    );
    if s.task_groups.is_empty() && s.task_dumps_failed.is_empty() {
        out.line("Task stacks: none in these reports (tokio task dumps need gmr's `tokio-taskdump` feature)");
        out.blank();
    } else {
        groups(
            "Task stacks",
            "task",
            "tasks",
            &s.task_groups,
            top,
            &mut out,
        );
        task_dumps_failed(s, &mut out);
    }
    replicas(s, &mut out);
    let mut text = out.into_string();
    while text.ends_with('\n') {
        text.pop();
    }
    text
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

fn heading(s: &Summary, out: &mut TextWriter) {
    let versions: Vec<String> = s
        .versions
        .iter()
        .map(|v| {
            format!(
                "{} {} on {}",
                v.service,
                display_version(&v.version),
                v.replicas
            )
        })
        .collect();
    out.line(format_args!(
        "gmr summary: {} {} ({})",
        s.replicas,
        plural(s.replicas, "replica", "replicas"),
        versions.join(", ")
    ));
    let first = s
        .reports
        .iter()
        .map(|r| r.generated_at.as_str())
        .min()
        .unwrap_or("?");
    let last = s
        .reports
        .iter()
        .map(|r| r.generated_at.as_str())
        .max()
        .unwrap_or("?");
    if s.round_inferred {
        out.line(format_args!(
            "reports from {first} to {last}; the round: since {} (the window before the newest report; give --since to set it)",
            s.round_since
        ));
    } else {
        out.line(format_args!(
            "reports from {first} to {last}; the round: since {} (--since)",
            s.round_since
        ));
    }
    if let (Some(expected), Some(missing)) = (s.expected, s.missing)
        && missing > 0
    {
        out.line(format_args!(
            "MISSING: {missing} of {expected} expected replicas have no report of this round{}",
            if s.late.is_empty() {
                String::new()
            } else {
                format!(" ({} of them late, below)", s.late.len())
            }
        ));
    }
    if !s.late.is_empty() {
        out.line(format_args!(
            "LATE: {} {} whose newest report is older than the round (below)",
            s.late.len(),
            plural(s.late.len(), "replica", "replicas")
        ));
    }
    out.blank();
}

fn display_version(version: &str) -> &str {
    if version.is_empty() {
        "(no version)"
    } else {
        version
    }
}

fn requests(s: &Summary, top: usize, out: &mut TextWriter) {
    let r = &s.requests;
    if r.in_flight == 0 {
        out.line("Requests in flight: none");
        out.blank();
        return;
    }
    out.line(format_args!(
        "Oldest requests in flight: {} in flight on {} {}{}",
        r.in_flight,
        s.replicas,
        plural(s.replicas, "replica", "replicas"),
        if r.stuck > 0 {
            format!(", {} STUCK in one poll", r.stuck)
        } else {
            String::new()
        }
    ));
    let mut rows = vec![vec![
        "age".to_owned(),
        "replica".to_owned(),
        "service".to_owned(),
        "method".to_owned(),
        "path".to_owned(),
        "state".to_owned(),
    ]];
    let shown: Vec<_> = r.oldest.iter().take(top).collect();
    for q in &shown {
        rows.push(vec![
            format!("{:.1} s", q.age_ms as f64 / 1000.0),
            q.replica.clone(),
            q.service.clone(),
            q.method.clone(),
            q.path.clone(),
            q.state.clone(),
        ]);
    }
    let lines = gmr::report::align_rows(&rows);
    out.indented(|out| {
        let mut lines = lines.into_iter();
        if let Some(header) = lines.next() {
            out.line(header);
        }
        for (q, line) in shown.iter().zip(lines) {
            out.line(line);
            let mut about = Vec::new();
            match (&q.thread, &q.thread_stack) {
                (Some(thread), Some(stack)) => {
                    about.push(format!("polled by thread {thread}, in {stack}"));
                }
                (Some(thread), None) => about.push(format!("polled by thread {thread}")),
                _ => {}
            }
            if let Some(waiting) = &q.waiting_in {
                about.push(waiting.clone());
            }
            if let Some(stack) = &q.task_stack {
                match q.task_id {
                    Some(id) => about.push(format!("its task #{id}: {stack}")),
                    None => about.push(format!("its task: {stack}")),
                }
            }
            if !about.is_empty() {
                out.indented(|out| {
                    for line in about {
                        out.line(line);
                    }
                });
            }
        }
    });
    if r.oldest.len() > shown.len() {
        out.indented(|out| {
            out.line(format_args!(
                "… {} more (--top, or --format json)",
                r.oldest.len() - shown.len()
            ));
        });
    }
    out.blank();
}

fn groups(title: &str, one: &str, many: &str, groups: &[Group], top: usize, out: &mut TextWriter) {
    if groups.is_empty() {
        out.line(format_args!("{title}: none in these reports"));
        out.blank();
        return;
    }
    out.line(format_args!(
        "{title}: {} {}",
        groups.len(),
        plural(groups.len(), "group", "groups")
    ));
    // What every replica has (the dominant groups), then what only some have (the odd ones
    // out: a blocked worker, a replica of another build), the most threads first.
    let every: Vec<&Group> = groups.iter().filter(|g| g.replicas >= g.of).collect();
    let mut some: Vec<&Group> = groups.iter().filter(|g| g.replicas < g.of).collect();
    some.sort_by(|a, b| b.count.cmp(&a.count).then(b.replicas.cmp(&a.replicas)));
    out.indented(|out| {
        for (part, list) in [("on every replica", every), ("on some replicas only", some)] {
            if list.is_empty() {
                continue;
            }
            let more = list.len().saturating_sub(top);
            out.line(format_args!(
                "{part} ({}{}):",
                list.len(),
                if more > 0 {
                    format!(", {more} more with --top")
                } else {
                    String::new()
                }
            ));
            out.indented(|out| {
                for g in list.iter().take(top) {
                    group(g, one, many, out);
                }
            });
        }
    });
    out.blank();
}

/// One group: `37/40 replicas, 512 tasks: \`Pool::acquire\`` and where it is.
fn group(g: &Group, one: &str, many: &str, out: &mut TextWriter) {
    let mut line = format!(
        "{}/{} {}, {} {}: `{}`",
        g.replicas,
        g.of,
        plural(g.of, "replica", "replicas"),
        g.count,
        plural(g.count, one, many),
        g.headline
    );
    if g.replicas < g.of {
        let names: Vec<&str> = g
            .members
            .iter()
            .take(NAMED_REPLICAS)
            .map(|m| m.replica.as_str())
            .collect();
        line.push_str(&format!("  on {}", names.join(", ")));
        if g.members.len() > NAMED_REPLICAS {
            line.push_str(&format!(" and {} more", g.members.len() - NAMED_REPLICAS));
        }
    }
    out.line(line);
    let mut detail = Vec::new();
    if let Some(at) = &g.headline_at {
        detail.push(format!("at {at}"));
    }
    if g.innermost != g.headline {
        detail.push(format!("in `{}`", g.innermost));
    }
    if !g.names.is_empty() {
        let what = if one == "task" { "runtimes" } else { "threads" };
        detail.push(format!("{what}: {}", g.names.join(", ")));
    }
    if !detail.is_empty() {
        out.indented(|out| out.indented(|out| out.line(detail.join("; "))));
    }
}

/// The replicas whose task dump gave no stacks: their tasks are in no group above.
fn task_dumps_failed(s: &Summary, out: &mut TextWriter) {
    if s.task_dumps_failed.is_empty() {
        return;
    }
    out.line(format_args!(
        "No task stacks from {} {} (their tasks are in no group above):",
        s.task_dumps_failed.len(),
        plural(s.task_dumps_failed.len(), "task dump", "task dumps")
    ));
    out.indented(|out| {
        for f in &s.task_dumps_failed {
            match &f.note {
                Some(note) => out.line(format_args!(
                    "{}, runtime {}: {}: {note}",
                    f.replica, f.runtime, f.status
                )),
                None => out.line(format_args!(
                    "{}, runtime {}: {}",
                    f.replica, f.runtime, f.status
                )),
            }
        }
    });
    out.blank();
}

fn replicas(s: &Summary, out: &mut TextWriter) {
    table(&format!("Replicas ({})", s.reports.len()), &s.reports, out);
    if !s.late.is_empty() {
        table(
            &format!(
                "Late: newest report older than the round (since {}), left out of the merge",
                s.round_since
            ),
            &s.late,
            out,
        );
    }
    if !s.unreadable.is_empty() {
        out.line(format_args!("Unreadable files ({}):", s.unreadable.len()));
        out.indented(|out| {
            for u in &s.unreadable {
                out.line(format_args!("{}: {}", u.file, u.error));
            }
        });
        out.blank();
    }
}

fn table(title: &str, rows: &[super::ReportRow], out: &mut TextWriter) {
    out.line(format_args!("{title}:"));
    let mut cells = vec![vec![
        "replica".to_owned(),
        "service".to_owned(),
        "version".to_owned(),
        "generated_at".to_owned(),
        "trigger".to_owned(),
        "file".to_owned(),
    ]];
    for r in rows {
        let file = std::path::Path::new(&r.file)
            .file_name()
            .map_or_else(|| r.file.clone(), |n| n.to_string_lossy().into_owned());
        cells.push(vec![
            r.replica.clone(),
            r.service.clone(),
            display_version(&r.version).to_owned(),
            r.generated_at.clone(),
            r.trigger.clone(),
            if r.older_reports > 0 {
                format!("{file} (+{} older)", r.older_reports)
            } else {
                file
            },
        ]);
    }
    out.indented(|out| {
        for line in gmr::report::align_rows(&cells) {
            out.line(line);
        }
    });
    out.blank();
}
