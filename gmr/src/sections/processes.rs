//! The `Processes` section: this process, its resources and its children (Linux `/proc`).

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::ReportContext;
use crate::error::SectionError;
use crate::procfs;
use crate::report::{SectionBody, TextWriter, write_fields};
use crate::secrets::Masker;

/// What the `Processes` section shows: an ordered object rendered by the generic layout.
#[derive(Debug)]
pub(crate) struct ProcessesSection {
    fields: Map<String, Value>,
}

impl ProcessesSection {
    /// The section of a report's JSON `processes` object (`gmr view`).
    pub(crate) fn from_fields(fields: Map<String, Value>) -> Self {
        ProcessesSection { fields }
    }
}

/// The machine-readable twin of a human-readable field (`rss_bytes` of `rss`) and its unit.
fn twin(key: &str) -> Option<(String, &'static str)> {
    match key {
        "uptime" => Some(("uptime_seconds".to_owned(), "s")),
        "rss" | "peak_rss" | "virtual" => Some((format!("{key}_bytes"), "bytes")),
        _ => None,
    }
}

/// Whether `key` is a twin the text shows beside its human-readable field, or a count the
/// human-readable `open_fds` already holds.
fn is_twin(key: &str) -> bool {
    key.ends_with("_bytes")
        || matches!(
            key,
            "uptime_seconds" | "open_fds_count" | "open_fds_soft_limit"
        )
}

impl SectionBody for ProcessesSection {
    fn write_text(&self, out: &mut TextWriter) {
        // One line per value: a machine-readable twin in parentheses after its field
        // (`rss = 53.9 MiB (56541184 bytes)`).
        let mut shown = Map::new();
        for (key, value) in &self.fields {
            if is_twin(key) {
                continue;
            }
            let with_twin = twin(key).and_then(|(twin, unit)| {
                let raw = self.fields.get(&twin)?;
                Some(Value::String(format!(
                    "{} ({} {unit})",
                    crate::report::content_scalar(value),
                    crate::report::content_scalar(raw)
                )))
            });
            shown.insert(key.clone(), with_twin.unwrap_or_else(|| value.clone()));
        }
        write_fields(out, &shown);
    }

    fn to_json(&self) -> Value {
        Value::Object(self.fields.clone())
    }
}

/// Bytes as a short human-readable size (`12.0 MiB`).
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A duration as `3d 04:05:06` or `04:05:06`.
pub(crate) fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rest / 3600, (rest % 3600) / 60, rest % 60);
    if days > 0 {
        format!("{days}d {h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

pub(crate) fn generate(ctx: &ReportContext<'_>) -> Result<ProcessesSection, SectionError> {
    let proc_self = Path::new("/proc/self");
    let stat = procfs::read_stat(&proc_self.join("stat"))
        .map_err(|e| SectionError::Unsupported(format!("cannot read /proc/self/stat: {e}")))?;
    let status = procfs::read_status(&proc_self.join("status")).unwrap_or_default();
    let masker = Masker::new(&ctx.settings.secrets.extra_keys);
    let pid = std::process::id();
    let ticks = crate::capture::sys::clock_ticks_per_second();

    let mut f = Map::new();
    f.insert("pid".into(), json!(pid));
    f.insert("ppid".into(), json!(stat.ppid));
    let uid = status
        .get("Uid")
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u32>().ok());
    f.insert(
        "user".into(),
        uid.and_then(procfs::user_name)
            .map_or(Value::Null, Value::String),
    );
    f.insert("uid".into(), uid.map_or(Value::Null, |u| json!(u)));
    f.insert(
        "state".into(),
        json!(
            status
                .get("State")
                .cloned()
                .unwrap_or_else(|| stat.state.to_string())
        ),
    );

    match procfs::boot_time() {
        Ok(boot) => {
            let started = boot as f64 + stat.starttime as f64 / ticks as f64;
            let started_at = UNIX_EPOCH + Duration::from_secs_f64(started);
            f.insert(
                "started_at".into(),
                json!(crate::report::time::rfc3339(started_at)),
            );
            let uptime = SystemTime::now()
                .duration_since(started_at)
                .unwrap_or_default();
            f.insert("uptime".into(), json!(human_duration(uptime)));
            f.insert("uptime_seconds".into(), json!(uptime.as_secs()));
        }
        Err(e) => {
            f.insert("started_at".into(), json!(format!("unknown: {e}")));
        }
    }

    let exe = fs::read_link(proc_self.join("exe"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("unknown: {e}"));
    f.insert("executable".into(), json!(exe));
    let args = fs::read(proc_self.join("cmdline"))
        .map(|b| procfs::split_nul(&b))
        .unwrap_or_default();
    f.insert(
        "command_line".into(),
        json!(masker.mask_args(&args).join(" ")),
    );

    let cpu = |t: u64| format!("{:.2}s", t as f64 / ticks as f64);
    f.insert("cpu_user".into(), json!(cpu(stat.utime)));
    f.insert("cpu_system".into(), json!(cpu(stat.stime)));
    for (key, status_key) in [
        ("rss", "VmRSS"),
        ("peak_rss", "VmHWM"),
        ("virtual", "VmSize"),
    ] {
        match procfs::status_kib_as_bytes(&status, status_key) {
            Some(bytes) => {
                f.insert(key.into(), json!(human_bytes(bytes)));
                f.insert(format!("{key}_bytes"), json!(bytes));
            }
            None => {
                f.insert(key.into(), Value::Null);
            }
        }
    }
    f.insert("threads".into(), json!(stat.num_threads));

    let open_fds = fs::read_dir(proc_self.join("fd")).map(|d| d.count()).ok();
    let limits = fs::read_to_string(proc_self.join("limits")).unwrap_or_default();
    let fd_limit = procfs::parse_limit(&limits, "Max open files");
    let show_limit = |l: Option<u64>| l.map_or_else(|| "unlimited".to_owned(), |v| v.to_string());
    f.insert(
        "open_fds".into(),
        json!(match (open_fds, fd_limit) {
            (Some(n), Some((soft, hard))) => format!(
                "{n} of {} (hard limit {})",
                show_limit(soft),
                show_limit(hard)
            ),
            (Some(n), None) => format!("{n} (limit unknown)"),
            (None, _) => "unknown".to_owned(),
        }),
    );
    f.insert(
        "open_fds_count".into(),
        open_fds.map_or(Value::Null, |n| json!(n)),
    );
    f.insert(
        "open_fds_soft_limit".into(),
        fd_limit
            .and_then(|(soft, _)| soft)
            .map_or(Value::Null, |n| json!(n)),
    );
    f.insert(
        "cgroup_memory_limit".into(),
        procfs::cgroup_memory_limit().map_or(json!("none"), |b| {
            json!(format!("{} ({b} bytes)", human_bytes(b)))
        }),
    );

    f.insert("children".into(), Value::Array(children(pid, &masker)));

    if ctx.settings.show_environment {
        let env: Map<String, Value> = std::env::vars_os()
            .map(|(k, v)| {
                let k = k.to_string_lossy().into_owned();
                let v = masker.mask_value(&k, &v.to_string_lossy());
                (k, Value::String(v))
            })
            .collect();
        f.insert("environment".into(), Value::Object(env));
    } else {
        f.insert(
            "environment".into(),
            json!("not shown (set `gmr.show_environment = true` to list it, masked)"),
        );
    }
    Ok(ProcessesSection { fields: f })
}

/// The direct children of `pid`: pid, state and masked command line.
fn children(pid: u32, masker: &Masker) -> Vec<Value> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut kids: Vec<(u32, Value)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|child| {
            let dir = Path::new("/proc").join(child.to_string());
            let stat = procfs::read_stat(&dir.join("stat")).ok()?;
            (stat.ppid == i64::from(pid)).then(|| {
                let args = fs::read(dir.join("cmdline"))
                    .map(|b| procfs::split_nul(&b))
                    .unwrap_or_default();
                let command = if args.is_empty() {
                    format!("[{}]", stat.comm)
                } else {
                    masker.mask_args(&args).join(" ")
                };
                (
                    child,
                    json!({ "pid": child, "state": stat.state.to_string(), "command": command }),
                )
            })
        })
        .collect();
    kids.sort_by_key(|(pid, _)| *pid);
    kids.into_iter().map(|(_, v)| v).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GmrConfig;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(human_duration(Duration::from_secs(3661)), "01:01:01");
        assert_eq!(human_duration(Duration::from_secs(90_061)), "1d 01:01:01");
    }

    #[test]
    fn describes_this_process_and_its_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let settings = GmrConfig::default();
        let package = crate::package::PackageInfo::gmr();
        let ctx = ReportContext {
            settings: &settings,
            app_config: None,
            package: &package,
        };
        // The child may not have exec'd yet; wait (bounded) until it is visible as `sleep`.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let section = loop {
            let section = generate(&ctx).expect("processes section");
            let listed = section.fields["children"].as_array().is_some_and(|c| {
                c.iter().any(|k| {
                    k["pid"] == json!(child.id())
                        && k["command"].as_str().is_some_and(|c| c.contains("sleep"))
                })
            });
            if listed || std::time::Instant::now() > deadline {
                break section;
            }
            std::thread::yield_now();
        };
        let _ = child.kill();
        let _ = child.wait();
        let json = section.to_json();
        assert_eq!(json["pid"], json!(std::process::id()));
        assert!(json["threads"].as_i64().is_some_and(|n| n >= 1));
        assert!(json["rss_bytes"].as_u64().is_some_and(|n| n > 0));
        assert!(
            json["open_fds"]
                .as_str()
                .is_some_and(|s| s.contains(" of "))
        );
        let kids = json["children"].as_array().expect("children array");
        let kid = kids
            .iter()
            .find(|k| k["pid"] == json!(child.id()))
            .expect("child listed");
        assert!(kid["command"].as_str().is_some_and(|c| c.contains("sleep")));
        assert!(
            json["environment"]
                .as_str()
                .is_some_and(|s| s.contains("not shown"))
        );
    }
}
