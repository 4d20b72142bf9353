//! The SQLite backend.
//!
//! # Connections
//!
//! One writer connection, owned by a dedicated thread (see `writer`), runs every change:
//! callers queue operations on a channel, and the thread applies whatever has queued in one
//! `BEGIN IMMEDIATE` transaction, each operation in its own savepoint, then commits once and
//! answers them all (group commit). The transaction takes SQLite's write lock when it begins,
//! before anything is read, so a read-check-write (idempotency, compare-and-set, budget check)
//! can never be interleaved with another writer, whether that writer is a task of this process
//! (its operation runs before or after, on the same thread) or another process sharing the
//! file (the lock, waited for up to the busy timeout). Reads that need no such guarantee use a
//! small pool of read-only connections on tokio's blocking threads; in WAL mode they never
//! block the writer and always see the last committed state.
//!
//! The async methods never block a runtime worker. Dropping the last handle does: it waits for
//! the writer thread to apply what is still queued and end (normally at once).
//!
//! # PostgreSQL
//!
//! `BEGIN IMMEDIATE` locks the whole database, which is what makes the budget check correct
//! here. PostgreSQL has no such lock: its port must serialize the budget step per agent
//! instead, by locking the agent's row (`SELECT ... FROM agents WHERE agent_id = $1 FOR
//! UPDATE`) at the start of the transaction, and take the audit sequence from
//! `UPDATE audit_head ... RETURNING`, which already serializes appends in both databases.

mod agents;
mod approvals;
mod approvers;
mod audit;
mod budget;
pub(crate) mod change;
mod convert;
mod schema;
mod session_rows;
mod sessions;
#[cfg(test)]
mod tests;
mod writer;

mod api;
mod approval_api;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use writer::{Job, Reply, WriterError};

use crate::error::StoreError;

/// Prepared statements kept per connection: more than the store has, so none is re-parsed.
const STATEMENT_CACHE: usize = 64;

/// How hard SQLite works to make each commit durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// Every commit is on disk before it returns: survives a process crash, an operating
    /// system crash and a power loss. The default.
    #[default]
    Full,
    /// Commits are on disk at each WAL checkpoint: survives a process crash, but an operating
    /// system crash or power loss may lose the last commits (never corrupts the file). Faster;
    /// for a payment system that means a budget reservation or an audit record could vanish,
    /// so choose it only where the disk or its controller already protects against power loss.
    Normal,
}

impl Synchronous {
    const fn pragma_value(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Settings of the SQLite backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Durability of commits. Default [`Synchronous::Full`].
    pub synchronous: Synchronous,
    /// How long a connection waits for a lock held by another process before it gives up with
    /// [`StoreError::Busy`]. Default 5 seconds; at most 24 hours.
    pub busy_timeout: Duration,
    /// How many idle read connections are kept open. Default 4.
    pub max_idle_readers: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            max_idle_readers: 4,
        }
    }
}

/// A failure inside the backend: either SQLite's own, mapped to a [`StoreError`] with the
/// operation's name at the edge, or already a [`StoreError`].
#[derive(Debug)]
pub(crate) enum Error {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Sql(e)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl Error {
    fn into_store(self, operation: &'static str) -> StoreError {
        match self {
            Error::Store(e) => e,
            Error::Sql(e) => {
                let busy = matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                );
                if busy {
                    StoreError::Busy {
                        operation,
                        source: Box::new(e),
                    }
                } else {
                    StoreError::Database {
                        operation,
                        source: Box::new(e),
                    }
                }
            }
        }
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// The SQLite backend: cheap to clone, all clones share the connections.
#[derive(Clone, Debug)]
pub(crate) struct SqliteBackend {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    options: SqliteOptions,
    busy_timeout_ms: i32,
    /// Where operations for the writer thread are queued; `None` only while dropping.
    jobs: Option<mpsc::Sender<Job>>,
    /// The writer thread, joined on drop.
    writer: Option<JoinHandle<()>>,
    readers: Mutex<Vec<Connection>>,
    /// The wal-index header, for change tokens.
    change: change::ChangeWatch,
}

impl Drop for Shared {
    /// Closes the queue, so the writer thread applies what is left and ends, and waits for it:
    /// once the store is gone, so are its connections. The readers close first, so that the
    /// writer's connection is the last one and checkpoints the WAL as it closes.
    fn drop(&mut self) {
        lock(&self.readers).clear();
        drop(self.jobs.take());
        if let Some(writer) = self.writer.take()
            && writer.thread().id() != std::thread::current().id()
        {
            // The thread catches the operations' panics; a join error is a bug of the loop
            // itself, and there is nothing left to clean up after it.
            let _ = writer.join();
        }
    }
}

/// The longest busy timeout accepted.
const MAX_BUSY_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

impl SqliteBackend {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub(crate) async fn open(path: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        if options.busy_timeout > MAX_BUSY_TIMEOUT {
            return Err(StoreError::InvalidOption {
                option: "busy_timeout",
                reason: "must be at most 24 hours",
            });
        }
        let busy_timeout_ms = i32::try_from(options.busy_timeout.as_millis()).map_err(|_| {
            StoreError::InvalidOption {
                option: "busy_timeout",
                reason: "must be at most 24 hours",
            }
        })?;
        let path = path.to_path_buf();

        let task = tokio::task::spawn_blocking(move || {
            let mut conn = open_writer(&path, &options, busy_timeout_ms)?;
            schema::migrate(&mut conn, convert::now_i64())?;
            let (jobs, queue) = mpsc::channel();
            let writer = std::thread::Builder::new()
                .name("clawfirst-store-writer".to_owned())
                .spawn(move || writer::run(conn, queue))
                .map_err(|e| StoreError::Open {
                    path: path.clone(),
                    source: Box::new(e),
                })?;
            // The writer's connection is open in WAL mode, so the wal-index exists now and
            // for as long as the store does.
            let change = change::ChangeWatch::open(&path);
            Ok::<_, StoreError>(Shared {
                path,
                options,
                busy_timeout_ms,
                jobs: Some(jobs),
                writer: Some(writer),
                readers: Mutex::new(Vec::new()),
                change,
            })
        });
        let shared = task
            .await
            .map_err(|e| StoreError::TaskFailed(Box::new(e)))??;
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    /// Runs `work` on the writer thread, in its own savepoint of the next batch's
    /// `BEGIN IMMEDIATE` transaction; returns once that transaction committed. When `work`
    /// returns an error, what it wrote is rolled back and the rest of the batch is unaffected.
    async fn write<T, F>(&self, operation: &'static str, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        receive(self.enqueue(operation, work)?).await
    }

    /// Queues `work` for the writer thread without waiting; see [`SqliteBackend::write`].
    fn enqueue<T, F>(&self, operation: &'static str, work: F) -> Result<Reply<T>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (job, reply) = writer::job(operation, work);
        let stopped = || StoreError::TaskFailed(Box::new(WriterError::Stopped));
        let jobs = self.shared.jobs.as_ref().ok_or_else(stopped)?;
        jobs.send(job).map_err(|_| stopped())?;
        Ok(reply)
    }

    /// Runs a lookup by primary key on a read-only connection, on the calling thread.
    ///
    /// Such a lookup takes microseconds against pages in memory, less than handing it to a
    /// blocking thread and back costs; under load those hand-offs dominated the server's CPU.
    /// WAL readers never wait for the writer, so this cannot stall the async runtime on a lock.
    /// Anything that scans goes through [`SqliteStore::read`] instead.
    fn read_point<T>(
        &self,
        operation: &'static str,
        work: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T, StoreError> {
        self.shared.read_now(operation, work)
    }

    /// What the database looks like as of now (see [`change`]): equal tokens mean that no
    /// process committed anything in between. `None` when that cannot be told.
    pub(crate) fn change_token(&self) -> Option<change::ChangeToken> {
        self.shared.change.token()
    }

    /// Runs `work` on a read-only connection, on a blocking thread.
    async fn read<T, F>(&self, operation: &'static str, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        let task = tokio::task::spawn_blocking(move || shared.read_now(operation, work));
        task.await
            .map_err(|e| StoreError::TaskFailed(Box::new(e)))?
    }
}

impl Shared {
    fn read_now<T>(
        &self,
        operation: &'static str,
        work: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T, StoreError> {
        let idle = lock(&self.readers).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => open_reader(&self.path, self.busy_timeout_ms)
                .map_err(|e| Error::Sql(e).into_store(operation))?,
        };

        let out = work(&conn).map_err(|e| e.into_store(operation));

        let mut readers = lock(&self.readers);
        if readers.len() < self.options.max_idle_readers {
            readers.push(conn);
        }
        out
    }
}

/// The result of a queued write.
async fn receive<T>(reply: Reply<T>) -> Result<T, StoreError> {
    reply
        .await
        .map_err(|_| StoreError::TaskFailed(Box::new(WriterError::Stopped)))?
}

/// Locks a mutex even if a panicking task poisoned it: a pool of idle read connections stays
/// usable whatever a reader did.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Switches the file to WAL mode. SQLite answers `SQLITE_BUSY` to this switch without calling
/// the busy handler while another connection (another process starting at the same moment) is
/// setting up the file, so the switch is retried here until the busy timeout has passed.
fn wal_mode(conn: &Connection, busy_timeout_ms: i32) -> Result<String, rusqlite::Error> {
    let deadline = std::time::Instant::now()
        + std::time::Duration::from_millis(u64::try_from(busy_timeout_ms).unwrap_or(0));
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

fn open_writer(
    path: &Path,
    options: &SqliteOptions,
    busy_timeout_ms: i32,
) -> Result<Connection, StoreError> {
    let open_failed = |e: rusqlite::Error| StoreError::Open {
        path: path.to_path_buf(),
        source: Box::new(e),
    };
    create_private(path).map_err(|e| StoreError::Open {
        path: path.to_path_buf(),
        source: Box::new(e),
    })?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(open_failed)?;
    // Every statement the store runs stays prepared: parsing SQL per call costs more than
    // running it.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);

    // The busy timeout first, so that the pragmas below wait for another process too.
    conn.pragma_update(None, "busy_timeout", busy_timeout_ms)
        .map_err(open_failed)?;
    let mode = wal_mode(&conn, busy_timeout_ms).map_err(open_failed)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::InvalidOption {
            option: "path",
            reason: "the file system does not support SQLite's WAL mode",
        });
    }
    conn.pragma_update(None, "synchronous", options.synchronous.pragma_value())
        .map_err(open_failed)?;
    // Each operation of a batch runs in a savepoint, whose undo journal would otherwise spill
    // to a temporary file on disk (one per batch) once it passes 64 KiB. In memory it is
    // small: it holds the pages one operation changed, and is emptied at every release.
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(open_failed)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(open_failed)?;
    let foreign_keys: i64 = conn
        .pragma_query_value(None, "foreign_keys", |row| row.get(0))
        .map_err(open_failed)?;
    if foreign_keys != 1 {
        return Err(StoreError::InvalidOption {
            option: "path",
            reason: "this SQLite build cannot enforce foreign keys",
        });
    }
    Ok(conn)
}

/// Creates a missing database file readable and writable by its owner only; SQLite gives its
/// `-wal` and `-shm` files the same permissions. An existing file is left as it is.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        // Another process may create it at the same moment; either way it exists now.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn open_reader(path: &Path, busy_timeout_ms: i32) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "busy_timeout", busy_timeout_ms)?;
    Ok(conn)
}
