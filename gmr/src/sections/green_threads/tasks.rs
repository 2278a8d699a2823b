//! Task dumps into the report's frame model: every task's stack named like a thread's, and
//! tasks with identical stacks grouped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::model::{TaskDumpEntry, TaskGroup, TaskRef};
use crate::capture::{Frame, locate_addresses};
use crate::report::stack::StackStyle;
use crate::runtimes::taskdump::{DumpOutcome, RuntimeDump};
use crate::sections::threads::frame_entries;

/// The dumps as the report shows them, and where each task id is.
pub(super) fn entries(
    dumps: Vec<RuntimeDump>,
    style: &StackStyle,
) -> (Vec<TaskDumpEntry>, HashMap<u64, TaskRef>) {
    // Every address once: where it is (module, offset).
    let mut addresses: Vec<u64> = dumps
        .iter()
        .filter_map(|d| match &d.outcome {
            DumpOutcome::Tasks(tasks) => Some(tasks),
            DumpOutcome::Missing { .. } => None,
        })
        .flatten()
        .flat_map(|t| t.traces.iter().flatten().map(|f| f.address))
        .collect();
    addresses.sort_unstable();
    addresses.dedup();
    let located: HashMap<u64, Frame> = addresses
        .iter()
        .copied()
        .zip(locate_addresses(&addresses))
        .collect();

    let mut index = HashMap::new();
    let mut out = Vec::with_capacity(dumps.len());
    for (dump_index, dump) in dumps.into_iter().enumerate() {
        let (status, note, tasks) = match dump.outcome {
            DumpOutcome::Tasks(tasks) => ("ok".to_owned(), None, tasks),
            DumpOutcome::Missing { status, reason } => (status.to_owned(), Some(reason), vec![]),
        };
        let task_count = tasks.len();
        // Group by the addresses of every trace: the same await points, the same stack.
        let mut groups: BTreeMap<Vec<Vec<u64>>, (Vec<u64>, usize)> = BTreeMap::new();
        let mut traces_of = Vec::new();
        for task in &tasks {
            let key: Vec<Vec<u64>> = task
                .traces
                .iter()
                .map(|t| t.iter().map(|f| f.address).collect())
                .collect();
            let next = traces_of.len();
            let entry = groups.entry(key).or_insert_with(|| (Vec::new(), next));
            if entry.1 == next {
                traces_of.push(&task.traces);
            }
            entry.0.push(task.id);
        }
        let mut groups: Vec<TaskGroup> = groups
            .into_values()
            .map(|(mut ids, at)| {
                ids.sort_unstable();
                let traces = traces_of[at]
                    .iter()
                    .map(|trace| {
                        let frames: Vec<Frame> = trace
                            .iter()
                            .map(|f| {
                                let mut frame = located.get(&f.address).cloned().unwrap_or(Frame {
                                    address: f.address,
                                    module: None,
                                    offset: None,
                                    system: false,
                                    symbols: Arc::from([]),
                                });
                                frame.symbols = Arc::from(f.symbols.clone());
                                frame
                            })
                            .collect();
                        frame_entries(&frames, style)
                    })
                    .collect();
                TaskGroup { tasks: ids, traces }
            })
            .collect();
        // The largest groups first; among equals, those running application code.
        let own = |g: &TaskGroup| {
            g.traces
                .iter()
                .flatten()
                .any(|f| f.kind == crate::report::stack::FrameKind::Application)
        };
        groups.sort_by(|a, b| {
            b.tasks
                .len()
                .cmp(&a.tasks.len())
                .then_with(|| own(b).cmp(&own(a)))
                .then_with(|| a.tasks.first().cmp(&b.tasks.first()))
        });
        for (group_index, group) in groups.iter().enumerate() {
            for id in &group.tasks {
                index.insert(
                    *id,
                    TaskRef {
                        dump: dump_index,
                        group: group_index,
                    },
                );
            }
        }
        out.push(TaskDumpEntry {
            runtime: dump.runtime,
            status,
            note,
            task_count,
            groups,
        });
    }
    (out, index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Symbol;
    use crate::runtimes::taskdump::{DumpedTask, TaskFrame};

    fn task(id: u64, names: &[&str]) -> DumpedTask {
        DumpedTask {
            id,
            traces: vec![
                names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| TaskFrame {
                        address: 0x1000 + i as u64 + (n.len() as u64) * 0x100,
                        symbols: vec![Symbol {
                            function: Some((*n).to_owned()),
                            ..Symbol::default()
                        }],
                    })
                    .collect(),
            ],
        }
    }

    #[test]
    fn identical_stacks_are_grouped_largest_first() {
        let dumps = vec![
            RuntimeDump {
                runtime: "main".into(),
                outcome: DumpOutcome::Tasks(vec![
                    task(9, &["tokio::time::sleep::Sleep::poll", "app::job"]),
                    task(
                        3,
                        &[
                            "tokio::sync::batch_semaphore::Acquire::poll",
                            "app::handler",
                        ],
                    ),
                    task(
                        5,
                        &[
                            "tokio::sync::batch_semaphore::Acquire::poll",
                            "app::handler",
                        ],
                    ),
                ]),
            },
            RuntimeDump {
                runtime: "blocked".into(),
                outcome: DumpOutcome::Missing {
                    status: "skipped",
                    reason: "a worker is stuck".into(),
                },
            },
        ];
        let (entries, index) = entries(dumps, &StackStyle::default());
        assert_eq!(entries.len(), 2);
        let main = &entries[0];
        assert_eq!((main.status.as_str(), main.task_count), ("ok", 3));
        assert_eq!(main.groups[0].tasks, vec![3, 5]);
        assert_eq!(main.groups[1].tasks, vec![9]);
        assert_eq!(
            main.groups[0].traces[0][0].function.as_deref(),
            Some("tokio::sync::batch_semaphore::Acquire::poll")
        );
        assert_eq!(index[&5], TaskRef { dump: 0, group: 0 });
        assert_eq!(index[&9], TaskRef { dump: 0, group: 1 });
        assert_eq!(entries[1].status, "skipped");
        assert_eq!(entries[1].note.as_deref(), Some("a worker is stuck"));
        assert!(entries[1].groups.is_empty());
    }
}
