//! What to undo if the process is interrupted: child processes to stop and temporary files and
//! directories to remove, in one process-wide registry.
//!
//! Everything that creates such a thing registers it here and unregisters it when it is done
//! with it (normally from a `Drop`, which also covers errors and panics). The binary calls
//! `install` once, first thing: SIGINT and SIGTERM are then blocked in every thread and taken by
//! one thread with `sigwait`, which stops the registered children (SIGKILL, by PID), removes the
//! registered paths, prints one line saying so and exits with 130 (SIGINT) or 143 (SIGTERM).
//! Taking the signal in an ordinary thread, rather than in a signal handler, lets the cleanup
//! lock, allocate and print safely. Children started by `std::process::Command` get an empty
//! signal mask back, so they are not affected by the blocking.
//!
//! A library user that does not call `install` keeps the default signal behaviour; the registry
//! is then only bookkeeping.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

struct Registry {
    children: Vec<(u32, String)>,
    paths: Vec<PathBuf>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { children: Vec::new(), paths: Vec::new() });

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts `cmd` and registers the child (`what` names it in the message) to kill if we are
/// interrupted, both under the registry's lock, as `create_path` does for paths: an
/// interruption either finds the child registered or comes first, and then no child is started
/// (starting first and registering after left a server running when the signal fell between).
pub fn spawn_child(cmd: &mut std::process::Command, what: &str) -> std::io::Result<std::process::Child> {
    let mut r = registry();
    let child = cmd.spawn()?;
    r.children.push((child.id(), what.to_owned()));
    Ok(child)
}

/// The child has been stopped and reaped: forget it (its PID may be reused).
pub fn remove_child(pid: u32) {
    registry().children.retain(|(p, _)| *p != pid);
}

/// A temporary file or directory (removed recursively) to delete if we are interrupted.
pub fn add_path(path: &Path) {
    registry().paths.push(path.to_path_buf());
}

/// Runs `create`, which makes a temporary file or directory, and registers the path `path_of`
/// gives, both under the registry's lock. An interruption then either finds the path registered
/// (and removes it) or comes first: the interrupted process holds the lock until it exits, so
/// nothing is created after its cleanup ran (creating first and registering after left a file
/// behind when the signal fell in between).
pub fn create_path<T>(
    create: impl FnOnce() -> std::io::Result<T>,
    path_of: impl FnOnce(&T) -> PathBuf,
) -> std::io::Result<T> {
    let mut r = registry();
    let made = create()?;
    r.paths.push(path_of(&made));
    Ok(made)
}

/// The path was removed or renamed into place: forget it.
pub fn remove_path(path: &Path) {
    registry().paths.retain(|p| p != path);
}

static NOTES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records something cleaned up that the user should hear of (stale files of an earlier run).
pub fn note(message: String) {
    NOTES.lock().unwrap_or_else(|e| e.into_inner()).push(message);
}

/// The notes recorded so far (and forgets them).
pub fn take_notes() -> Vec<String> {
    std::mem::take(&mut *NOTES.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Stops every registered child and removes every registered path; returns a description of
/// what was done (empty: nothing to do).
pub fn run_now() -> Vec<String> {
    run_locked(&mut registry())
}

fn run_locked(r: &mut Registry) -> Vec<String> {
    let mut done = Vec::new();
    for (pid, what) in r.children.drain(..) {
        let Ok(p) = libc::pid_t::try_from(pid) else { continue };
        // SAFETY: plain system calls on a PID we started and have not reaped yet.
        unsafe {
            if libc::kill(p, libc::SIGKILL) == 0 {
                libc::waitpid(p, std::ptr::null_mut(), 0);
                done.push(format!("stopped {what} (pid {pid})"));
            }
        }
    }
    for p in r.paths.drain(..).rev() {
        let removed = match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&p).is_ok(),
            Ok(_) => std::fs::remove_file(&p).is_ok(),
            Err(_) => false,
        };
        if removed {
            done.push(format!("removed {}", p.display()));
        }
    }
    done
}

/// Takes SIGINT and SIGTERM for the whole process (see the module doc). Call it once, before
/// any other thread starts.
pub fn install() {
    // SAFETY: sigset manipulation on a local set, and a mask change before threads exist.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        set
    };
    let spawned = std::thread::Builder::new().name("signals".into()).spawn(move || {
        loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: waits for one of the blocked signals in `set`.
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                continue;
            }
            let (name, code) = if sig == libc::SIGTERM { ("SIGTERM", 143) } else { ("SIGINT", 130) };
            // Both locks are held until the process exits. Standard error first: a thread that
            // sees its server go away (we stop it here) prints nothing more, so the line below
            // is the last word. The registry: no thread registers (so creates, see
            // `create_path`) anything after the cleanup.
            let mut stderr = std::io::stderr().lock();
            let mut r = registry();
            let done = run_locked(&mut r);
            let what = if done.is_empty() { "nothing to clean up".to_owned() } else { done.join(", ") };
            let _ = writeln!(stderr, "rdbtool: interrupted ({name}): {what}");
            std::process::exit(code);
        }
    });
    if spawned.is_err() {
        // No thread: give the default behaviour back.
        // SAFETY: as above.
        unsafe {
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }
}
