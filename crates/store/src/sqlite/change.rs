//! Noticing that the database changed, from any process, without a read transaction.
//!
//! In WAL mode every SQLite connection to a database, in every process, shares the wal-index
//! (the `-shm` file beside the database). Its first 96 bytes are two copies of the wal-index
//! header, which a writer rewrites as the very step that makes a commit visible: the commit
//! counter (`iChange`), the number of valid WAL frames (`mxFrame`) and their checksums change
//! with every commit, and the salts with every WAL restart. Reading those 96 bytes with one
//! `pread` therefore tells whether anything was committed since the last time they were read,
//! at a fraction of the cost of a read transaction (which takes and releases POSIX locks on
//! the `-shm` file each time).
//!
//! The layout is documented in SQLite's "WAL-mode File Format"
//! (<https://www.sqlite.org/walformat.html>, the wal-index header) and is stable by necessity:
//! processes built with different SQLite versions share one wal-index.
//!
//! # Security
//!
//! Callers use this to keep answers to reads (credentials, revocations) while the token stays
//! the same, so it must never say "unchanged" after a commit. It cannot: a commit is visible to
//! readers only once both header copies are rewritten, and rewriting them changes `iChange`. A
//! read racing a writer may see two different copies: that is reported as no token at all, and
//! the caller reads the database. Any error is also reported as no token.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The two copies of the wal-index header.
const HEADER_BYTES: usize = 96;
/// One copy.
const COPY_BYTES: usize = 48;

/// The database's state as of one moment: equal tokens mean nothing was committed between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangeToken([u8; COPY_BYTES]);

/// Reads change tokens of one database.
#[derive(Debug)]
pub(super) struct ChangeWatch {
    shm: Option<File>,
}

impl ChangeWatch {
    /// Watches the wal-index of the database at `db_path`, which must already be open in WAL
    /// mode by this process (so that the `-shm` file exists and outlives the watch).
    pub(super) fn open(db_path: &Path) -> Self {
        let mut shm_path = db_path.as_os_str().to_owned();
        shm_path.push("-shm");
        Self {
            shm: File::open(shm_path).ok(),
        }
    }

    /// The current token, or `None` when it cannot be read consistently.
    pub(super) fn token(&self) -> Option<ChangeToken> {
        let shm = self.shm.as_ref()?;
        let mut header = [0u8; HEADER_BYTES];
        shm.read_exact_at(&mut header, 0).ok()?;
        let (first, second) = header.split_at(COPY_BYTES);
        if first != second {
            return None;
        }
        let mut copy = [0u8; COPY_BYTES];
        copy.copy_from_slice(first);
        // A header whose `isInit` byte (offset 12) is 0 has not been set up yet.
        (copy[12] != 0).then_some(ChangeToken(copy))
    }
}
