//! The media workers' scheduling priority. A worker's frames are due on a
//! 2 ms grid; on a busy machine a worker woken by its tick timer waits
//! behind whatever holds the core unless the scheduler ranks it first.
//! A lower nice value does that without the starvation risk of a real-time
//! class: other threads still get their weighted share when the workers
//! are busy.

use std::io;
use std::sync::Once;

/// Says once per process that the workers kept their priority.
static REFUSED: Once = Once::new();

/// Gives the calling thread nice value `nice`; logs (once) and carries on
/// when the system refuses.
pub(crate) fn apply_to_current_thread(nice: i32) {
    match set_current_thread_nice(nice) {
        Ok(()) => tracing::debug!(nice, "media worker priority set"),
        Err(e) => REFUSED.call_once(|| {
            tracing::info!(
                nice,
                cause = %e,
                "media workers keep the process's priority (lowering the nice value \
                 needs CAP_SYS_NICE or RLIMIT_NICE; media_nice = 0 turns this off)"
            );
        }),
    }
}

#[cfg(target_os = "linux")]
fn set_current_thread_nice(nice: i32) -> io::Result<()> {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    // SAFETY: a plain syscall on our own thread id.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn set_current_thread_nice(_: i32) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "per-thread priority is set on Linux only",
    ))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The calling thread's nice value (Linux: each thread has its own).
    fn current_thread_nice() -> io::Result<i32> {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        // getpriority returns -1 both as a value and as an error: errno tells.
        // SAFETY: plain syscalls on our own thread id.
        unsafe {
            *libc::__errno_location() = 0;
            let n = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
            if n == -1 && *libc::__errno_location() != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(n)
        }
    }

    /// Raising a thread's nice value needs no privilege, and it stays on
    /// that thread.
    #[test]
    fn a_thread_gets_its_own_nice_value() {
        let before = current_thread_nice().unwrap();
        let inside = std::thread::spawn(move || {
            apply_to_current_thread(before + 3);
            current_thread_nice().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(inside, (before + 3).min(19));
        assert_eq!(current_thread_nice().unwrap(), before);
    }
}
