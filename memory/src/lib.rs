//! Freed memory handed back to the system soon while bulk work runs.
//!
//! Both binaries allocate with mimalloc, which keeps the pages it frees
//! for a while (a second, in mimalloc 3) before it hands them back, and
//! then only when the thread that owns them next allocates. That is what
//! makes it fast when the same sizes come back, but while a laptop pulls a
//! million families, or the server indexes them for duplicates, the
//! process keeps about a second copy of its working set: 124–151 MB
//! resident for a laptop pull whose live heap is about 65 MB.
//!
//! While an [`EagerPurge`] is alive, mimalloc's purge delay is the one it
//! asked for (the first one's, when several are alive); the previous
//! delay comes back when the last is dropped. The server's duplicate index
//! asks for 0 ms while it works, a laptop's pull for 10 ms (0 ms slows
//! it). Not pushes:
//! purging at once for a whole process made a push of 100,000 families half
//! as slow again.
//!
//! A delay is counted from the free, but mimalloc purges only when a
//! thread next looks, and a thread keeps the pages it freed until it
//! collects them: [`release_freed`] hands back at once what the calling
//! thread freed and every purge that waits, after a burst (each pull page
//! the server serves; the last guard's drop does it too). Not a laptop's
//! pull: the next page faults the memory in again, and the pull of
//! 100,000 families took a fifth longer.
//!
//! This crate is the workspace's one exception to `forbid(unsafe_code)`:
//! three calls into mimalloc's C API (`mi_option_get` and `mi_option_set`,
//! made under one lock, and `mi_collect`). When mimalloc is not the global
//! allocator (unit tests), they change an option nothing reads and collect
//! nothing.

use std::ffi::c_long;
use std::sync::Mutex;

/// mimalloc's `mi_option_purge_delay`: its place in `mi_option_e` of
/// mimalloc 3, which `libmimalloc-sys` gives no name (a test checks that
/// it holds that option's default, 1000 ms, which no other option has).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How many guards are alive, and the delay to put back after the last.
static ACTIVE: Mutex<(usize, c_long)> = Mutex::new((0, 0));

/// While alive, mimalloc hands freed pages back to the system at once.
#[must_use = "eager purging ends when the guard is dropped"]
pub struct EagerPurge(());

impl EagerPurge {
    /// Hands freed pages back once they have been empty for `ms`
    /// milliseconds (0: at once), until the guard is dropped; joins the
    /// guards already alive (and their delay) if there are any.
    pub fn after(ms: u32) -> Self {
        let mut active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
        if active.0 == 0 {
            active.1 = purge_delay();
            set_purge_delay(c_long::from(ms));
        }
        active.0 += 1;
        EagerPurge(())
    }
}

impl Drop for EagerPurge {
    fn drop(&mut self) {
        let mut active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
        active.0 -= 1;
        if active.0 == 0 {
            set_purge_delay(active.1);
            // What the bulk work freed last waits no longer.
            release_freed();
        }
    }
}

/// Hands back to the system, now, the pages this thread freed and what
/// mimalloc's arenas hold for a delayed purge (`mi_collect(true)`).
///
/// Even with no purge delay, a thread keeps the pages it freed until it
/// next collects them: after a burst of large buffers (a pull page's
/// journal frames and body, a few megabytes), the threads that served it
/// would otherwise hold them, and a laptop pulling a million families left
/// the server 30–45 MB above where it started. It walks the calling
/// thread's pages: call it after a burst, not per allocation.
pub fn release_freed() {
    collect();
}

#[allow(unsafe_code)]
fn purge_delay() -> c_long {
    // SAFETY: reads one of mimalloc's options (a plain integer, initialised
    // from the environment on first use); every caller holds `ACTIVE`, so
    // this crate never races itself.
    unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }
}

#[allow(unsafe_code)]
fn collect() {
    // SAFETY: mimalloc's collection of the calling thread's heap and of the
    // arenas' pending purges; safe to call from any thread at any time.
    // Without mimalloc as the global allocator it finds nothing to do.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

#[allow(unsafe_code)]
fn set_purge_delay(ms: c_long) {
    // SAFETY: as above; mimalloc reads the option on each purge decision.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, ms) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The delay now, read while no guard can start or end.
    fn observed() -> (usize, c_long) {
        let active = ACTIVE.lock().unwrap();
        (active.0, purge_delay())
    }

    /// This process's resident memory now, in bytes (Linux).
    fn resident() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        pages * 4096
    }

    #[test]
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    fn a_block_freed_is_handed_back_at_release_not_before() {
        const SIZE: usize = 64 << 20;
        // A minute's delay, whatever guards of other tests are alive
        // (none starts or ends while the lock is held).
        let _serial = ACTIVE.lock().unwrap();
        let delay = purge_delay();
        set_purge_delay(60_000);
        let before = resident();
        // SAFETY: a block of mimalloc's, written, then freed once.
        unsafe {
            let p = libmimalloc_sys::mi_malloc(SIZE).cast::<u8>();
            assert!(!p.is_null());
            std::ptr::write_bytes(p, 1, SIZE);
            libmimalloc_sys::mi_free(p.cast());
        }
        let freed = resident();
        assert!(freed >= before + SIZE / 2, "kept for the purge delay");
        collect();
        let released = resident();
        set_purge_delay(delay);
        assert!(released + SIZE / 2 <= freed, "handed back at once");
    }

    #[test]
    fn the_option_is_the_purge_delay_and_guards_zero_it_then_put_it_back() {
        let default = match std::env::var("MIMALLOC_PURGE_DELAY") {
            Ok(v) => v.parse().unwrap(),
            Err(_) => 1000,
        };
        assert_eq!(observed(), (0, default));
        let outer = EagerPurge::after(10);
        assert_eq!(observed(), (1, 10));
        // A second guard joins the first (and its delay).
        let inner = EagerPurge::after(0);
        assert_eq!(observed(), (2, 10));
        drop(outer);
        assert_eq!(observed(), (1, 10));
        drop(inner);
        assert_eq!(observed(), (0, default));
        let alone = EagerPurge::after(0);
        assert_eq!(observed(), (1, 0));
        drop(alone);
        assert_eq!(observed(), (0, default));
    }
}
