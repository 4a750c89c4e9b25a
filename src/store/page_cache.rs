//! SQLite's own page cache, with one key moved out of the way (README, Benchmarks, fortieth
//! sitting). When a B-tree split leaves its new sibling pages out of page-number order, SQLite
//! (`balance_nonroot`) swaps two of them through a temporary key: the lock-byte page's number,
//! 524,289 with 2 KiB pages, a page no table ever uses. The cache remembers its largest key, and
//! at the end of the transaction the pager drops every cached page past the database's size; with
//! the largest key far past it, the default cache walks its whole hash table to do so
//! (`pcache1TruncateUnsafe`). Random keys split often (each event id lands on a page of its own
//! in the duplicate check's index), so most commits walked the cache: 12% of the writer thread's
//! CPU flat out, its largest function.
//!
//! This is the default cache behind a thin wrapper that gives each cache its swap key (the
//! lock-byte page's number for that cache's page size, as `balance_nonroot` computes it) and
//! passes `xFetch` and `xRekey` through a key map that swaps that number with 0, a key SQLite
//! never asks for: the temporary key no longer raises the cache's largest key. Nothing else
//! changes: the lock-byte page is never read or written as a page (the pager refuses it), so the
//! only page ever held under key 0 is the one in the middle of such a swap, which ends inside
//! the same call to `balance_nonroot`, and the pages past the database's size are dropped exactly
//! as before (the walk over the few keys past it). SQLite configures its page cache once per
//! process, before its first connection, so every database in the process uses this one.
//!
//! The one other setting SQLite takes only then is here too: how large a statement journal grows
//! in memory before it spills to a temporary file (`STATEMENT_JOURNAL_IN_MEMORY`).

use libsqlite3_sys as ffi;
use std::ffi::{c_int, c_uint};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// How large a statement journal may grow in memory before SQLite spills it to a temporary
/// file (SQLite's default is 64 KiB). A multi-row statement inside a transaction keeps the pages
/// it changes there until it ends; a hot-path statement of a batched write changes a few hundred
/// pages, and a spilled journal is a file created, written a page per `pwrite` and deleted while
/// every sender waits on the transaction (README, Benchmarks, fortieth sitting). A spill writes
/// the journal in chunks of this size, more than SQLite's unix VFS takes in one write (0x1ffff
/// bytes; a larger write fails as a full disk): the writer's VFS (`wal_writes`) splits them, and
/// the writer is the only connection that runs statements (the readers are read-only, the
/// checkpointer only checkpoints). Should that VFS ever fail to register (SQLite without its unix
/// VFS; `SqliteStore::open` warns), a journal past this size would fail its statement as a full
/// disk. Switching on a webhook that holds 1,000,000 deliveries still
/// spills (its one UPDATE's journal took 330 MiB when journals never spilled).
const STATEMENT_JOURNAL_IN_MEMORY: c_int = 1 << 20;

/// SQLite's `PENDING_BYTE`: the lock-byte page holds the database file's byte at this offset.
const PENDING_BYTE: c_uint = 0x4000_0000;

/// The default cache's methods, which ours call; every one is present (checked at install).
struct Real(ffi::sqlite3_pcache_methods2);
// SAFETY: the default cache's methods are plain functions, callable from any thread (the cache
// takes its own mutex where it needs one), and its `pArg` is null and never read through.
unsafe impl Send for Real {}
unsafe impl Sync for Real {}

static REAL: OnceLock<Real> = OnceLock::new();
static INSTALLED: OnceLock<bool> = OnceLock::new();
/// Swaps moved to key 0 since the process started (see `swaps_moved`).
static SWAPS_MOVED: AtomicU64 = AtomicU64::new(0);

/// One cache as SQLite holds it: the default cache's, and the swap key of its page size.
struct Cache {
    inner: *mut ffi::sqlite3_pcache,
    swap_key: c_uint,
}

/// How many times a split's temporary key was held under 0 instead, in this process.
#[cfg(test)]
pub fn swaps_moved() -> u64 {
    SWAPS_MOVED.load(Ordering::Relaxed)
}

/// Installs the cache and the statement journals' spill threshold, once per process. SQLite
/// takes both only before it first initializes; if something in the process opened a database
/// earlier, this returns `false` and SQLite keeps its defaults, which work the same, only
/// slower.
pub fn install() -> bool {
    *INSTALLED.get_or_init(|| {
        let mut methods = std::mem::MaybeUninit::<ffi::sqlite3_pcache_methods2>::zeroed();
        // SAFETY: GETPCACHE2 fills the structure it is given and PCACHE2 copies the one it is
        // given; both are refused (SQLITE_MISUSE) once SQLite is initialized, changing nothing.
        unsafe {
            // Refused only once SQLite is initialized, like the cache below.
            ffi::sqlite3_config(
                ffi::SQLITE_CONFIG_STMTJRNL_SPILL,
                STATEMENT_JOURNAL_IN_MEMORY,
            );
            if ffi::sqlite3_config(ffi::SQLITE_CONFIG_GETPCACHE2, methods.as_mut_ptr())
                != ffi::SQLITE_OK
            {
                return false;
            }
            let d = methods.assume_init();
            let present = [
                d.xCreate.is_some(),
                d.xCachesize.is_some(),
                d.xPagecount.is_some(),
                d.xFetch.is_some(),
                d.xUnpin.is_some(),
                d.xRekey.is_some(),
                d.xTruncate.is_some(),
                d.xDestroy.is_some(),
                d.xShrink.is_some(),
            ];
            if present.contains(&false) {
                return false;
            }
            let _ = REAL.set(Real(d));
            let ours = ffi::sqlite3_pcache_methods2 {
                xCreate: Some(create_cache),
                xCachesize: Some(cachesize_of),
                xPagecount: Some(pagecount_of),
                xFetch: Some(fetch_from),
                xUnpin: Some(unpin_in),
                xRekey: Some(rekey_in),
                xTruncate: Some(truncate_to),
                xDestroy: Some(destroy_cache),
                xShrink: Some(shrink_cache),
                ..d
            };
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_PCACHE2, &ours) == ffi::SQLITE_OK
        }
    })
}

/// One of the default cache's methods.
macro_rules! real {
    ($method:ident) => {
        REAL.get()
            .and_then(|r| r.0.$method)
            .expect("set, with every method, before the cache is installed")
    };
}

impl Cache {
    /// The key the default cache holds a page number under: the swap key and 0 trade places.
    fn mapped(&self, key: c_uint) -> c_uint {
        if key == self.swap_key {
            0
        } else if key == 0 {
            self.swap_key
        } else {
            key
        }
    }
}

/// The lock-byte page's number for a page size: `balance_nonroot`'s temporary key.
fn swap_key(page_size: c_int) -> c_uint {
    PENDING_BYTE / c_uint::try_from(page_size).unwrap_or(1).max(1) + 1
}

/// The default cache behind one of ours.
///
/// # Safety
/// `cache` must be a pointer `create_cache` returned and `destroy_cache` has not freed.
unsafe fn ours<'a>(cache: *mut ffi::sqlite3_pcache) -> &'a Cache {
    // SAFETY: as the caller promises.
    unsafe { &*cache.cast::<Cache>() }
}

unsafe extern "C" fn create_cache(
    page_size: c_int,
    extra: c_int,
    purgeable: c_int,
) -> *mut ffi::sqlite3_pcache {
    // SAFETY: SQLite's own arguments, passed on.
    let inner = unsafe { real!(xCreate)(page_size, extra, purgeable) };
    if inner.is_null() {
        return inner;
    }
    let swap_key = swap_key(page_size);
    Box::into_raw(Box::new(Cache { inner, swap_key })).cast()
}

unsafe extern "C" fn destroy_cache(cache: *mut ffi::sqlite3_pcache) {
    // SAFETY: SQLite destroys a cache once, after its last use; it came from `create_cache`.
    let cache = unsafe { Box::from_raw(cache.cast::<Cache>()) };
    // SAFETY: the default cache's own pointer, destroyed once.
    unsafe { real!(xDestroy)(cache.inner) }
}

unsafe extern "C" fn fetch_from(
    cache: *mut ffi::sqlite3_pcache,
    key: c_uint,
    create: c_int,
) -> *mut ffi::sqlite3_pcache_page {
    // SAFETY: SQLite passes back a cache `create_cache` made; the rest goes on unchanged but
    // for the key's map.
    unsafe {
        let c = ours(cache);
        real!(xFetch)(c.inner, c.mapped(key), create)
    }
}

unsafe extern "C" fn rekey_in(
    cache: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    old: c_uint,
    new: c_uint,
) {
    // SAFETY: as `fetch_from`; the page is one the default cache gave out under `mapped(old)`.
    unsafe {
        let c = ours(cache);
        let key = c.mapped(new);
        if key != new {
            SWAPS_MOVED.fetch_add(1, Ordering::Relaxed);
        }
        real!(xRekey)(c.inner, page, c.mapped(old), key)
    }
}

/// The methods that take no key: passed to the default cache as they come.
macro_rules! through {
    ($name:ident, $method:ident, ($($arg:ident: $ty:ty),*) $(-> $ret:ty)?) => {
        unsafe extern "C" fn $name(cache: *mut ffi::sqlite3_pcache $(, $arg: $ty)*) $(-> $ret)? {
            // SAFETY: as `fetch_from`.
            unsafe { real!($method)(ours(cache).inner $(, $arg)*) }
        }
    };
}

through!(cachesize_of, xCachesize, (size: c_int));
through!(pagecount_of, xPagecount, () -> c_int);
through!(unpin_in, xUnpin, (page: *mut ffi::sqlite3_pcache_page, discard: c_int));
through!(truncate_to, xTruncate, (limit: c_uint));
through!(shrink_cache, xShrink, ());

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite's lock-byte page for each page size (its file format documentation), and the
    /// map is its own inverse: what goes in under a key comes out under it.
    #[test]
    fn the_swap_key_is_the_lock_byte_page_and_the_map_undoes_itself() {
        assert_eq!(swap_key(2048), 524_289);
        assert_eq!(swap_key(4096), 262_145);
        assert_eq!(swap_key(65536), 16_385);
        let cache = Cache {
            inner: std::ptr::null_mut(),
            swap_key: swap_key(2048),
        };
        assert_eq!(cache.mapped(524_289), 0);
        assert_eq!(cache.mapped(0), 524_289);
        for key in [1, 2, 524_288, 524_290, c_uint::MAX] {
            assert_eq!(cache.mapped(key), key);
        }
    }
}
