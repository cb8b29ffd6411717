//! Child processes that must not outlive us (a development Redis, a test
//! emulator), and a lock file for the data they keep.

use std::process::Command;

/// Makes the child started by `cmd` receive SIGKILL when the thread that
/// spawns it ends (Linux `PR_SET_PDEATHSIG`; a no-op elsewhere). Spawn from a
/// thread that lives as long as the child should.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of ours; it
    // runs in the forked child before exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Makes the child started by `cmd` die with us (no-op on this platform).
#[cfg(not(target_os = "linux"))]
pub fn die_with_parent(_cmd: &mut Command) {}

/// Takes an exclusive advisory lock on `file` without waiting (`flock`);
/// `false` if another process holds it. Released when the file is closed.
#[cfg(unix)]
#[allow(unsafe_code)]
pub fn try_lock(file: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock only reads the descriptor, which `file` keeps open for
    // the duration of the call.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Takes an exclusive lock on `file` (always succeeds on this platform).
#[cfg(not(unix))]
pub fn try_lock(_file: &std::fs::File) -> bool {
    true
}

/// Stops `child`: SIGTERM (a Redis then flushes its append-only file),
/// SIGKILL if it has not exited within `grace`.
pub fn terminate(child: &mut std::process::Child, grace: std::time::Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    if send_term(child) {
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(unix)]
#[allow(unsafe_code)]
fn send_term(child: &std::process::Child) -> bool {
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        return false;
    };
    // SAFETY: kill(2) takes plain integers; the pid is our own child, not
    // yet reaped (try_wait said it is running), so it names no other process.
    unsafe { libc::kill(pid, libc::SIGTERM) == 0 }
}

#[cfg(not(unix))]
fn send_term(_child: &std::process::Child) -> bool {
    false
}
