//! Capture of the stacks of other threads (owned by the threads work; see DESIGN §4).
