//! Child processes that must not outlive us (a development Redis, a test
//! emulator).

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
