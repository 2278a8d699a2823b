//! The capture signal cannot kill the process (`docs/security.md`): gmr takes other threads'
//! stacks with a real-time signal (`SIGRTMIN+5` by default) whose default action ends the
//! process. Its handler is installed by `install()`, so anyone sending that signal before the
//! first report (a stray `kill -RTMIN+5`, a monitoring tool) finds it handled, on every demo.

use std::time::Duration;

use gmr_integration_tests::{Demo, http, signal_report};

#[test]
fn the_capture_signal_before_the_first_report_does_not_kill_any_demo() {
    let capture = libc::SIGRTMIN() + 5;
    for name in ["axum-demo", "tower-demo", "actix-demo"] {
        let mut demo = Demo::start(name, &[]);
        for _ in 0..3 {
            demo.signal(capture);
        }
        // A default action would have ended the process when the first signal was sent (the
        // kernel starts the exit of every thread at once): the next request would fail.
        let answer = http(demo.addr, "GET", "/", &[]);
        assert_eq!(answer.status, 200, "{name}");
        assert!(demo.alive(), "{name} died of the capture signal");
        // And reports still work, with the stacks of other threads (`signal_report` checks the
        // parked workers' frames).
        signal_report(&demo);
        assert!(demo.wait_exit(Duration::ZERO).is_none(), "{name}");
    }
}
