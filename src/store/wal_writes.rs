//! One write call per commit for the SQLite writer's WAL (README, Benchmarks, thirty-third
//! sitting). SQLite writes a commit's WAL frames one by one, each with two `pwrite` calls (its
//! 24-byte header, then the page): 18.4 calls per delivery in `herald bench`, where a pair cost
//! 2.7 µs and the same bytes gathered 0.54 µs a frame. This is a thin VFS over SQLite's own
//! default (unix) VFS that gathers the frames written back to back into a WAL file and hands
//! them to the real file in one write once a commit's last frame (the one whose header carries a
//! non-zero database size) is complete.
//!
//! Durability is unchanged. With `synchronous = NORMAL` a commit is in the operating system once
//! `COMMIT` returns, as before: the gathered frames are written inside the last frame's write,
//! before SQLite marks them committed in the WAL index, so no reader (another connection reads the
//! WAL through its own handle) can see a frame that is not in the file. Anything else asked of a
//! WAL file (a read, a sync, its size, a truncation, closing it, a file control) first writes what
//! is gathered, and so does a write that does not follow on (the WAL started over, or frames of a
//! rolled-back transaction being overwritten: written as SQLite would have written them). A
//! failed gathered write answers the write that triggered it, so the commit fails as it would
//! have. Only WAL files are gathered; every other file goes straight through.
//!
//! Herald's `unsafe` is here and in `page_cache`: the VFS and its files, and the page cache, are C
//! structures SQLite calls into.

use libsqlite3_sys as ffi;
use std::ffi::{c_int, c_void};
use std::sync::OnceLock;

/// The VFS's name, for `SqliteConnectOptions::vfs`.
pub const NAME: &str = "herald-wal";
const NAME_C: &std::ffi::CStr = c"herald-wal";

/// A WAL frame's header: its bytes 4..8 hold the database size after a commit, 0 otherwise.
const FRAME_HEADER: usize = 24;
/// What is gathered is written once it reaches this much, commit or not (a long transaction
/// spilling its cache writes its frames as it goes).
const MOST_GATHERED: usize = 4 << 20;
/// Most bytes handed to the real file in one write. SQLite's unix VFS keeps only the low 17 bits
/// of a write's length (`nBuf &= 0x1ffff` in `seekAndWriteFd`) and writes the rest in a loop that
/// stops at a write of nothing: one write of 128 to 256 KiB fails as a full disk.
const MOST_PER_WRITE: usize = 64 << 10;

/// The real VFS this one passes to; set once, before the first connection uses `NAME`.
struct Real(*mut ffi::sqlite3_vfs);
// SAFETY: SQLite's VFS objects are immutable once registered and may be used from any thread.
unsafe impl Send for Real {}
unsafe impl Sync for Real {}

static REAL: OnceLock<Real> = OnceLock::new();
static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
/// Commits written in one go since the process started (see `gathered_commits`).
static GATHERED_COMMITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Statement journals the writer spilled to a temporary file since the process started.
static SPILLED_JOURNALS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many statement journals the writer's connection spilled to a file in this process.
#[cfg(test)]
pub fn spilled_journals() -> u64 {
    SPILLED_JOURNALS.load(std::sync::atomic::Ordering::Relaxed)
}

/// How many commits reached a WAL through this VFS, each in one go.
pub fn gathered_commits() -> u64 {
    GATHERED_COMMITS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Registers the VFS (once per process); `Err` says why it could not be.
pub fn register() -> Result<(), String> {
    REGISTERED
        .get_or_init(|| {
            // SAFETY: sqlite3_vfs_find(NULL) gives the default VFS, which lives for the process.
            // The copy is leaked, so it lives as long; SQLite keeps its address once registered.
            unsafe {
                let real = ffi::sqlite3_vfs_find(std::ptr::null());
                if real.is_null() {
                    return Err("SQLite has no default VFS".into());
                }
                let _ = REAL.set(Real(real));
                let mut ours = *real;
                ours.zName = NAME_C.as_ptr();
                ours.pNext = std::ptr::null_mut();
                ours.szOsFile = c_int::try_from(std::mem::size_of::<File>())
                    .map_err(|_| "file size".to_owned())?
                    + (*real).szOsFile;
                ours.xOpen = Some(open);
                let ours = Box::leak(Box::new(ours));
                match ffi::sqlite3_vfs_register(ours, 0) {
                    ffi::SQLITE_OK => Ok(()),
                    rc => Err(format!("sqlite3_vfs_register failed ({rc})")),
                }
            }
        })
        .clone()
}

/// An open file: SQLite's header (our methods), the real file (in the bytes that follow this
/// structure) and, for a WAL file, what is gathered.
#[repr(C)]
struct File {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    gathered: *mut Gathered,
}

#[derive(Default)]
struct Gathered {
    bytes: Vec<u8>,
    /// Where `bytes` go in the file.
    at: i64,
    /// The last header written was a commit's: its page completes the commit.
    commit_page_next: bool,
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let Some(Real(real_vfs)) = REAL.get() else {
        return ffi::SQLITE_ERROR;
    };
    let ours = file.cast::<File>();
    // SAFETY: SQLite gives `szOsFile` bytes at `file`: our structure, then the real file's.
    unsafe {
        let real = file.cast::<u8>().add(std::mem::size_of::<File>()).cast();
        (*ours).base.pMethods = std::ptr::null();
        (*ours).real = real;
        (*ours).gathered = std::ptr::null_mut();
        let Some(real_open) = (**real_vfs).xOpen else {
            return ffi::SQLITE_ERROR;
        };
        let rc = real_open(*real_vfs, name, real, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            // SQLite does not close a file whose open failed; the real one may need it.
            if let Some(close) = (*real).pMethods.as_ref().and_then(|m| m.xClose) {
                close(real);
            }
            return rc;
        }
        if flags & ffi::SQLITE_OPEN_WAL != 0 {
            (*ours).gathered = Box::into_raw(Box::default());
        }
        if flags & ffi::SQLITE_OPEN_SUBJOURNAL != 0 {
            SPILLED_JOURNALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        (*ours).base.pMethods = &METHODS;
        ffi::SQLITE_OK
    }
}

/// The real file and its methods.
///
/// # Safety
/// `file` is one of ours, opened.
unsafe fn real(
    file: *mut ffi::sqlite3_file,
) -> (*mut ffi::sqlite3_file, &'static ffi::sqlite3_io_methods) {
    // SAFETY: an opened file of ours has a real file whose methods live as long as SQLite.
    unsafe {
        let real = (*file.cast::<File>()).real;
        (real, &*(*real).pMethods)
    }
}

/// Writes what is gathered, if anything (for methods other than `write`).
///
/// # Safety
/// `file` is one of ours, opened.
unsafe fn flush(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: as the caller promises; `gathered` is ours alone while SQLite holds the file.
    unsafe {
        match (*file.cast::<File>()).gathered.as_mut() {
            Some(g) => g.write_out(file),
            None => ffi::SQLITE_OK,
        }
    }
}

impl Gathered {
    /// Hands what is gathered to the real file, in pieces of at most `MOST_PER_WRITE`.
    ///
    /// # Safety
    /// `file` is the opened file of ours that these bytes belong to.
    unsafe fn write_out(&mut self, file: *mut ffi::sqlite3_file) -> c_int {
        if self.bytes.is_empty() {
            return ffi::SQLITE_OK;
        }
        // SAFETY: as the caller promises.
        let (real, methods) = unsafe { real(file) };
        let mut rc = ffi::SQLITE_IOERR_WRITE;
        if let Some(w) = methods.xWrite {
            let mut at = self.at;
            for piece in self.bytes.chunks(MOST_PER_WRITE) {
                // A piece is at most 64 KiB: its length fits.
                let len = c_int::try_from(piece.len()).unwrap_or(c_int::MAX);
                // SAFETY: the real file is open and `piece` is `len` readable bytes.
                rc = unsafe { w(real, piece.as_ptr().cast(), len, at) };
                if rc != ffi::SQLITE_OK {
                    break;
                }
                at += i64::from(len);
            }
        }
        self.bytes.clear();
        rc
    }
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: SQLite passes an opened file of ours and `amount` readable bytes at `data`.
    unsafe {
        let gathered = (*file.cast::<File>()).gathered;
        let Some(g) = gathered.as_mut() else {
            let (real, methods) = real(file);
            let Some(w) = methods.xWrite else {
                return ffi::SQLITE_IOERR_WRITE;
            };
            // Pages go through whole; a statement journal spilling writes its in-memory chunks
            // (`page_cache::STATEMENT_JOURNAL_IN_MEMORY` bytes each), more than the real VFS
            // takes in one write (see `MOST_PER_WRITE`).
            let most = c_int::try_from(MOST_PER_WRITE).unwrap_or(c_int::MAX);
            let mut done: c_int = 0;
            while done < amount {
                let n = (amount - done).min(most);
                let rc = w(
                    real,
                    data.cast::<u8>().add(done as usize).cast(),
                    n,
                    offset + i64::from(done),
                );
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
                done += n;
            }
            return ffi::SQLITE_OK;
        };
        let Ok(len) = usize::try_from(amount) else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        let follows_on = g.at + i64::try_from(g.bytes.len()).unwrap_or(i64::MAX) == offset;
        if !follows_on {
            let rc = g.write_out(file);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            g.at = offset;
        }
        let bytes = std::slice::from_raw_parts(data.cast::<u8>(), len);
        g.bytes.extend_from_slice(bytes);
        if len == FRAME_HEADER {
            g.commit_page_next = bytes[4..8] != [0, 0, 0, 0];
            ffi::SQLITE_OK
        } else if std::mem::take(&mut g.commit_page_next) {
            GATHERED_COMMITS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            g.write_out(file)
        } else if g.bytes.len() >= MOST_GATHERED {
            g.write_out(file)
        } else {
            ffi::SQLITE_OK
        }
    }
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes an opened file of ours once; nothing uses it afterwards.
    unsafe {
        let flushed = flush(file);
        let ours = file.cast::<File>();
        if !(*ours).gathered.is_null() {
            drop(Box::from_raw((*ours).gathered));
            (*ours).gathered = std::ptr::null_mut();
        }
        let (real, methods) = real(file);
        let rc = methods.xClose.map_or(ffi::SQLITE_OK, |c| c(real));
        if flushed != ffi::SQLITE_OK {
            flushed
        } else {
            rc
        }
    }
}

/// Methods that see the file's contents write what is gathered first; the others pass straight
/// through.
macro_rules! pass {
    ($name:ident, $field:ident, flush, ($($arg:ident: $ty:ty),*), $missing:expr) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
            // SAFETY: SQLite passes an opened file of ours.
            unsafe {
                let rc = flush(file);
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
                let (real, methods) = real(file);
                methods.$field.map_or($missing, |f| f(real $(, $arg)*))
            }
        }
    };
    ($name:ident, $field:ident, through, ($($arg:ident: $ty:ty),*), $missing:expr) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
            // SAFETY: SQLite passes an opened file of ours.
            unsafe {
                let (real, methods) = real(file);
                methods.$field.map_or($missing, |f| f(real $(, $arg)*))
            }
        }
    };
}

pass!(read, xRead, flush, (data: *mut c_void, amount: c_int, offset: i64), ffi::SQLITE_IOERR_READ);
pass!(truncate, xTruncate, flush, (size: i64), ffi::SQLITE_IOERR_TRUNCATE);
pass!(sync, xSync, flush, (flags: c_int), ffi::SQLITE_IOERR_FSYNC);
pass!(file_size, xFileSize, flush, (size: *mut i64), ffi::SQLITE_IOERR_FSTAT);
pass!(file_control, xFileControl, flush, (op: c_int, arg: *mut c_void), ffi::SQLITE_NOTFOUND);
pass!(lock, xLock, through, (level: c_int), ffi::SQLITE_IOERR_LOCK);
pass!(unlock, xUnlock, through, (level: c_int), ffi::SQLITE_IOERR_UNLOCK);
pass!(check_reserved_lock, xCheckReservedLock, through, (out: *mut c_int), ffi::SQLITE_IOERR_CHECKRESERVEDLOCK);
pass!(sector_size, xSectorSize, through, (), 4096);
pass!(
    device_characteristics,
    xDeviceCharacteristics,
    through,
    (),
    0
);
pass!(shm_map, xShmMap, through, (page: c_int, size: c_int, extend: c_int, out: *mut *mut c_void), ffi::SQLITE_IOERR_SHMMAP);
pass!(shm_lock, xShmLock, through, (offset: c_int, n: c_int, flags: c_int), ffi::SQLITE_IOERR_SHMLOCK);
pass!(shm_unmap, xShmUnmap, through, (delete: c_int), ffi::SQLITE_OK);
pass!(unfetch, xUnfetch, through, (offset: i64, p: *mut c_void), ffi::SQLITE_OK);

unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: SQLite passes an opened file of ours.
    unsafe {
        let (real, methods) = real(file);
        if let Some(b) = methods.xShmBarrier {
            b(real);
        }
    }
}

unsafe extern "C" fn fetch(
    file: *mut ffi::sqlite3_file,
    offset: i64,
    amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: SQLite passes an opened file of ours and a place for the pointer.
    unsafe {
        let rc = flush(file);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        let (real, methods) = real(file);
        match methods.xFetch {
            Some(f) => f(real, offset, amount, out),
            None => {
                // No memory map: SQLite reads instead.
                *out = std::ptr::null_mut();
                ffi::SQLITE_OK
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    use sqlx::ConnectOptions as _;
    use std::str::FromStr;

    /// Transactions of 1 to 120 rows of 1.5 KB (from one frame to more than 256 KiB of WAL in a
    /// commit) written through the VFS: each is whole in the file the moment it commits, read by
    /// a connection on SQLite's own VFS, and each commit went in one go. Before writes were cut
    /// into 64 KiB pieces, a commit of 128 to 256 KiB failed as "database or disk is full".
    #[tokio::test]
    async fn every_commit_is_whole_in_the_wal_when_it_returns() {
        super::register().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("wal.db").display());
        let options = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .page_size(2048)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .pragma("wal_autocheckpoint", "0");
        let mut writer = options.clone().vfs(super::NAME).connect().await.unwrap();
        let mut reader = options.clone().read_only(true).connect().await.unwrap();
        sqlx::query("CREATE TABLE t (b BLOB NOT NULL)")
            .execute(&mut writer)
            .await
            .unwrap();
        let before = super::gathered_commits();
        let mut rows = 0i64;
        for size in (1..=120).step_by(7).chain([120]) {
            let mut tx = sqlx::Connection::begin(&mut writer).await.unwrap();
            for _ in 0..size {
                sqlx::query("INSERT INTO t (b) VALUES (randomblob(1500))")
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
            rows += size;
            let (count, bytes): (i64, i64) =
                sqlx::query_as("SELECT COUNT(*), COALESCE(SUM(length(b)), 0) FROM t")
                    .fetch_one(&mut reader)
                    .await
                    .unwrap();
            assert_eq!(
                (count, bytes),
                (rows, rows * 1500),
                "after a commit of {size}"
            );
        }
        // At least this test's 19 commits; other tests' writers may add theirs.
        assert!(super::gathered_commits() - before >= 19);
    }
}
