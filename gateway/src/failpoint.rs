//! Failpoints: named places where a test can make the process die on purpose,
//! to prove that no crash window loses an event.
//!
//! Compiled in only with the `failpoints` cargo feature (the test suite turns it
//! on); then `FAILPOINT=<name>` makes the process abort — no unwinding,
//! no cleanup, like SIGKILL — the first time it reaches that place. Without the
//! feature, [`hit`] is an empty inline function.
//!
//! Names: `after_send_before_ack` (the receiver answered, the outcome is not yet
//! recorded), `before_send` (a job is leased, nothing sent yet).

/// Aborts the process if the failpoint `name` is armed.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    use std::sync::OnceLock;
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var("FAILPOINT").ok());
    if armed.as_deref() == Some(name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}

/// Aborts the process if the failpoint `name` is armed (compiled out).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}
