//! The symbolizer thread (`gmr-symbolizer`): owns every module's symbols and does the file
//! reads and DWARF parsing, so that a read that blocks (a debug file on a hung network
//! filesystem) or a slow first parse can only delay names, never the report. The reporter
//! waits for its answer until the capture's deadline and goes on without it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use super::module::{Budget, LoadedModule, ModuleKey, key_of};
use crate::capture::Symbol;
use crate::capture::modules::ModuleInfo;

/// One request: the offsets to name in each module.
pub(super) struct Job {
    /// Each module with the offsets (addresses in its file) to name.
    pub(super) modules: Vec<(ModuleInfo, Vec<u64>)>,
    /// The modules mapped now: the others are dropped.
    pub(super) keep: Vec<ModuleKey>,
    /// The budget and the debug directories.
    pub(super) limits: super::Limits,
    /// Where the answer goes.
    pub(super) reply: mpsc::Sender<Answer>,
}

/// The names of a job, in its order, and what the report should say about them.
pub(super) struct Answer {
    /// Per module of the job, per offset: the functions there, innermost first.
    pub(super) symbols: Vec<Vec<Arc<[Symbol]>>>,
    /// Per module of the job: a note about its names (budget cut, replaced file), if any.
    pub(super) notes: Vec<Option<String>>,
}

/// The handle of the symbolizer thread.
#[derive(Debug)]
pub(super) struct Worker {
    jobs: mpsc::SyncSender<Job>,
    busy: Arc<AtomicBool>,
}

impl Worker {
    /// Starts the thread.
    pub(super) fn start() -> std::io::Result<Worker> {
        let (jobs, queue) = mpsc::sync_channel::<Job>(1);
        let busy = Arc::new(AtomicBool::new(false));
        let thread_busy = Arc::clone(&busy);
        crate::threads::spawn("gmr-symbolizer", move || run(&queue, &thread_busy))?;
        Ok(Worker { jobs, busy })
    }

    /// Whether the last job has not been answered yet.
    pub(super) fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// Hands `job` to the thread. `false` when it is still busy or gone.
    pub(super) fn submit(&self, job: Job) -> bool {
        if self.busy.swap(true, Ordering::AcqRel) {
            return false;
        }
        if self.jobs.try_send(job).is_err() {
            self.busy.store(false, Ordering::Release);
            return false;
        }
        true
    }
}

fn run(queue: &mpsc::Receiver<Job>, busy: &AtomicBool) {
    let mut loaded: HashMap<ModuleKey, LoadedModule> = HashMap::new();
    while let Ok(job) = queue.recv() {
        let answer = crate::report::isolate::catch(|| answer(&mut loaded, &job)).unwrap_or_else(
            |panic| {
                tracing::warn!(%panic, "gmr symbolizer panicked; names are missing from this report");
                loaded.clear();
                Answer {
                    symbols: job.modules.iter().map(|(_, o)| vec![Arc::from([]); o.len()]).collect(),
                    notes: vec![Some(format!("the symbolizer failed: {panic}")); job.modules.len()],
                }
            },
        );
        busy.store(false, Ordering::Release);
        // The reporter may have stopped waiting: then nobody receives this.
        let _ = job.reply.send(answer);
    }
}

fn answer(loaded: &mut HashMap<ModuleKey, LoadedModule>, job: &Job) -> Answer {
    loaded.retain(|key, _| job.keep.contains(key));
    let mut budget = Budget {
        limit: job.limits.budget,
        used: loaded.values().map(|m| m.cost).sum(),
    };
    let mut symbols = Vec::with_capacity(job.modules.len());
    let mut notes = Vec::with_capacity(job.modules.len());
    for (module, offsets) in &job.modules {
        let entry = loaded
            .entry(key_of(module))
            .or_insert_with(|| LoadedModule::load(module, &job.limits.debug_dirs, &mut budget));
        symbols.push(
            offsets
                .iter()
                .map(|offset| Arc::from(entry.resolve(*offset)))
                .collect(),
        );
        notes.push(entry.note.clone());
    }
    Answer { symbols, notes }
}
