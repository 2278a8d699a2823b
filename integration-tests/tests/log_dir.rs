//! Nobody else can forge or replace a report in `log_dir` (`docs/security.md`, "Report
//! files"). A local attacker, the user `nobody`, runs a loop that replaces every file it can
//! in the directory (final names and temporary names alike) with its own, while gmr (as root,
//! the tests' user) writes reports there.
//!
//! * A directory that anyone can write without the sticky bit is refused when the engine is
//!   built, naming `log_dir` and the mode: there the attacker could replace any report.
//! * In a shared directory with the sticky bit (`/tmp`-like, 1777), every report is the one
//!   gmr wrote: it is written into an unnamed file and linked from its descriptor, so there is
//!   never a name to swap, and the sticky bit keeps others from replacing it afterwards.

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use gmr::{Delivery, Gmr, GmrConfig, SignalChoice, Trigger};

/// What the attacker writes in place of a report.
const FORGED: &str = "FORGED BY NOBODY";

/// Replaces, as fast as a shell can, every entry of the directory `$1` that is not its own with
/// a file of its own, and prints `pass` after each sweep. (`FORG''ED`: the script's own text,
/// which reports show in their list of child processes, must not hold the marker.)
const ATTACKER: &str = r#"
dir=$1
n=0
while :; do
    for f in "$dir"/* "$dir"/.[!.]*; do
        [ -e "$f" ] || continue
        [ -O "$f" ] && continue
        n=$((n + 1))
        printf 'FORG''ED BY NOBODY\n' > "$dir/.forge.$$.$n" 2>/dev/null || continue
        mv -f "$dir/.forge.$$.$n" "$f" 2>/dev/null || rm -f "$dir/.forge.$$.$n"
    done
    echo pass
done
"#;

/// The attacker, running as `nobody`, and the lines it prints.
struct Attacker {
    child: Child,
    passes: Receiver<()>,
}

impl Attacker {
    fn start(dir: &Path) -> Attacker {
        let euid = effective_uid();
        assert_eq!(
            euid, 0,
            "this test plays a local attacker as the user `nobody` with runuser: run it as root (CI does)"
        );
        let mut child = Command::new("runuser")
            .args(["-u", "nobody", "--", "sh", "-c", ATTACKER, "attacker"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the attacker with runuser");
        let stdout = child.stdout.take().expect("attacker stdout");
        let (tx, passes) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if line.is_err() || tx.send(()).is_err() {
                    break;
                }
            }
        });
        let attacker = Attacker { child, passes };
        attacker.wait_passes(1);
        attacker
    }

    /// Waits until the attacker has swept the directory `n` more times.
    fn wait_passes(&self, n: usize) {
        while self.passes.try_recv().is_ok() {}
        for _ in 0..n {
            self.passes
                .recv_timeout(Duration::from_secs(60))
                .expect("the attacker keeps sweeping");
        }
    }
}

impl Drop for Attacker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test's user id (the owner of its `/proc/self`).
fn effective_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .expect("read /proc/self")
}

/// A `reports` directory with `mode` inside a directory `nobody` can enter.
fn reports_dir(mode: u32) -> (tempfile::TempDir, PathBuf) {
    let base = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let dir = base.path().join("reports");
    std::fs::create_dir(&dir).expect("reports dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).expect("chmod");
    (base, dir)
}

fn settings(dir: &Path) -> GmrConfig {
    let mut settings = GmrConfig::default();
    settings.service_name = Some("forge-test".to_owned());
    settings.log_dir = Some(dir.to_owned());
    settings.signal = SignalChoice::None;
    settings.max_reports = 100;
    settings
}

/// Writes `count` reports; the files they went to.
fn write_reports(gmr: &Gmr, count: usize) -> Vec<PathBuf> {
    (0..count)
        .map(|_| match gmr.report_and_write(Trigger::Api) {
            Ok(Delivery::File(path)) => path,
            other => panic!("expected a report file, got {other:?}"),
        })
        .collect()
}

/// The files among `files` that are not gmr's report.
fn forged(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .filter(|path| {
            let body = std::fs::read_to_string(path).unwrap_or_default();
            body.contains(FORGED) || !body.starts_with(&"=".repeat(72))
        })
        .map(|path| path.display().to_string())
        .collect()
}

#[test]
fn a_log_dir_anyone_can_write_is_refused_so_nobody_cannot_replace_reports() {
    let (_base, dir) = reports_dir(0o777);
    let attacker = Attacker::start(&dir);
    match Gmr::builder().settings(settings(&dir)).build() {
        Err(error) => {
            let message = error.to_string();
            assert!(message.contains("gmr.log_dir"), "{message}");
            assert!(message.contains("0777"), "{message}");
            assert!(message.contains("sticky"), "{message}");
        }
        Ok(gmr) => {
            let files = write_reports(&gmr, 10);
            attacker.wait_passes(3);
            panic!(
                "log_dir with mode 0777 was accepted, and nobody replaced {} of {} reports: {:?}",
                forged(&files).len(),
                files.len(),
                forged(&files)
            );
        }
    }
}

#[test]
fn in_a_sticky_shared_directory_every_report_is_the_one_gmr_wrote() {
    let (_base, dir) = reports_dir(0o1777);
    let attacker = Attacker::start(&dir);
    let gmr = Gmr::builder()
        .settings(settings(&dir))
        .build()
        .expect("a sticky shared directory is accepted");
    let files = write_reports(&gmr, 10);
    attacker.wait_passes(3);
    let replaced = forged(&files);
    assert!(
        replaced.is_empty(),
        "replaced reports: {replaced:?}; the first holds {:?}",
        replaced
            .first()
            .map(|p| std::fs::read_to_string(p).map(|b| b.chars().take(200).collect::<String>()))
    );
    for path in &files {
        let meta = std::fs::symlink_metadata(path).expect("report still there");
        assert!(meta.is_file(), "{}", path.display());
        assert_eq!(meta.uid(), 0, "{} is not gmr's", path.display());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
}
