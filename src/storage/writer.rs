//! The group-commit writer (ARCHITECTURE.md "Durability").
//!
//! One thread owns the write connection. Callers submit units of work; the thread takes every
//! unit that is queued when it becomes free (so batches grow by themselves under load and a lone
//! write waits for nothing), runs each in its own savepoint inside one transaction (a failing
//! unit rolls back alone), commits once — a durable commit: SQLite WAL with `synchronous=FULL`,
//! PostgreSQL `synchronous_commit=on` — and only then answers each caller. A commit failure is
//! reported to every caller of the batch; nothing is ever acknowledged before the commit returns.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;

use super::{AnyConnection, StorageError, establish};

/// Largest number of units in one commit.
const MAX_BATCH: usize = 512;

/// Answers the caller; `Some(reason)` replaces the unit's own result with a commit failure.
type Deliver = Box<dyn FnOnce(Option<String>) + Send>;
/// A unit of work: runs on the writer connection, says whether it succeeded, and how to answer.
/// Given `Err(reason)` instead of a connection, it answers the caller with that failure unrun.
type Job = Box<dyn FnOnce(Result<&mut AnyConnection, &str>) -> (bool, Deliver) + Send>;

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    units: AtomicU64,
    /// Units submitted and not yet answered (queued or running): the writer's backlog.
    pending: AtomicU64,
}

/// Counts one unit in the backlog from submission until it is answered or dropped (a panicking
/// unit, a writer that is gone), so the gauge never leaks.
struct Pending(Arc<Counters>);

impl Pending {
    fn new(c: &Arc<Counters>) -> Pending {
        c.pending.fetch_add(1, Ordering::Relaxed);
        Pending(c.clone())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Commits and units written so far (units / commits = mean batch size).
#[derive(Debug, Clone, Copy)]
pub struct WriterStats {
    pub commits: u64,
    pub units: u64,
}

#[derive(Clone)]
pub(super) struct WriterHandle {
    tx: mpsc::Sender<Job>,
    counters: Arc<Counters>,
    thread: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl WriterHandle {
    pub(super) fn start(url: String, conn: AnyConnection) -> Result<WriterHandle, StorageError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        let thread = std::thread::Builder::new()
            .name("mch-db-writer".into())
            .spawn(move || writer_loop(url, conn, rx, c))
            .map_err(|e| StorageError::Connect(format!("cannot start the writer thread: {e}")))?;
        Ok(WriterHandle {
            tx,
            counters,
            thread: Arc::new(std::sync::Mutex::new(Some(thread))),
        })
    }

    /// Stop the writer and wait until it has closed its connection, when this is the last handle
    /// (a command-line run ending): a process must not exit while a database connection — and the
    /// TLS library under it — is still being torn down on another thread.
    pub(super) fn close(self) {
        let WriterHandle { tx, thread, .. } = self;
        drop(tx);
        if let Ok(slot) = Arc::try_unwrap(thread)
            && let Ok(mut slot) = slot.into_inner()
            && let Some(t) = slot.take()
        {
            let _ = t.join();
        }
    }

    fn job<T, E, F>(&self, f: F) -> (Job, tokio::sync::oneshot::Receiver<Result<T, E>>)
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        let (reply, rx) = tokio::sync::oneshot::channel::<Result<T, E>>();
        let span = tracing::Span::current();
        let pending = Pending::new(&self.counters);
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Ok(conn) => span.in_scope(|| f(conn)),
                Err(reason) => Err(E::from(StorageError::Commit(reason.to_string()))),
            };
            let ok = result.is_ok();
            let deliver: Deliver = Box::new(move |commit_failure| {
                let _pending = pending;
                let answer = match commit_failure {
                    Some(reason) => Err(E::from(StorageError::Commit(reason))),
                    None => result,
                };
                // The caller may have gone away (client disconnected); the write stands.
                let _ = reply.send(answer);
            });
            (ok, deliver)
        });
        (job, rx)
    }

    pub(super) async fn submit<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        let (job, rx) = self.job(f);
        self.tx.send(job).map_err(|_| StorageError::WriterGone)?;
        rx.await.map_err(|_| StorageError::WriterGone)?
    }

    pub(super) fn submit_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        let (job, rx) = self.job(f);
        self.tx.send(job).map_err(|_| StorageError::WriterGone)?;
        rx.blocking_recv().map_err(|_| StorageError::WriterGone)?
    }

    /// Units submitted and not yet answered.
    pub(super) fn pending(&self) -> u64 {
        self.counters.pending.load(Ordering::Relaxed)
    }

    pub(super) fn stats(&self) -> WriterStats {
        WriterStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            units: self.counters.units.load(Ordering::Relaxed),
        }
    }
}

fn writer_loop(url: String, conn: AnyConnection, rx: mpsc::Receiver<Job>, counters: Arc<Counters>) {
    let mut conn = Some(conn);
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match establish(&url) {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tracing::error!(error = %e, "writer cannot reconnect; failing the batch");
                    fail_all(batch, &e.to_string());
                    continue;
                }
            },
        };
        let n = batch.len() as u64;
        match run_batch(c, batch) {
            Ok(()) => {
                counters.commits.fetch_add(1, Ordering::Relaxed);
                counters.units.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::error!(error = %e, units = n, "group commit failed");
                if c.batch_execute("SELECT 1").is_err() {
                    conn = None; // reconnect before the next batch
                }
            }
        }
    }
    tracing::debug!("database writer stopped");
}

/// Units that never ran wrote nothing: answer each with the failure.
fn fail_all(batch: Vec<Job>, reason: &str) {
    for job in batch {
        let (_, deliver) = job(Err(reason));
        deliver(None);
    }
}

fn begin_outer(conn: &mut AnyConnection) -> diesel::QueryResult<()> {
    match conn {
        // BEGIN IMMEDIATE takes the write lock up front, so a commit never fails on a lock upgrade.
        AnyConnection::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE"),
        // Every batch writes audit rows, which serialise on the chain head. Taking that lock first
        // gives all instances one lock order, so two instances cannot deadlock on a case row and
        // the head.
        AnyConnection::Postgresql(c) => {
            AnsiTransactionManager::begin_transaction(c)?;
            c.batch_execute("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE")
        }
    }
}

/// Whether the batch's outer transaction is still open (depth 1) after a unit ran.
fn outer_open(conn: &mut AnyConnection) -> bool {
    let depth = match conn {
        AnyConnection::Sqlite(c) => AnsiTransactionManager::transaction_manager_status_mut(c).transaction_depth(),
        AnyConnection::Postgresql(c) => AnsiTransactionManager::transaction_manager_status_mut(c).transaction_depth(),
    };
    matches!(depth, Ok(Some(d)) if d.get() == 1)
}

fn run_batch(conn: &mut AnyConnection, batch: Vec<Job>) -> Result<(), StorageError> {
    if let Err(e) = begin_outer(conn) {
        let reason = e.to_string();
        if outer_open(conn) {
            let _ = match conn {
                AnyConnection::Sqlite(c) => AnsiTransactionManager::rollback_transaction(c),
                AnyConnection::Postgresql(c) => AnsiTransactionManager::rollback_transaction(c),
            };
        }
        fail_all(batch, &reason);
        return Err(StorageError::Query(e));
    }
    let mut answers: Vec<(Deliver, Option<String>)> = Vec::with_capacity(batch.len());
    let mut queue = batch.into_iter();
    while let Some(job) = queue.next() {
        let mut slot: Option<(bool, Deliver)> = None;
        let savepoint = conn.transaction::<(), diesel::result::Error, _>(|sp| {
            match catch_unwind(AssertUnwindSafe(|| job(Ok(sp)))) {
                Ok((ok, deliver)) => {
                    slot = Some((ok, deliver));
                    if ok {
                        Ok(())
                    } else {
                        Err(diesel::result::Error::RollbackTransaction)
                    }
                }
                Err(_) => {
                    tracing::error!("a database unit of work panicked; its savepoint was rolled back");
                    Err(diesel::result::Error::RollbackTransaction)
                }
            }
        });
        if let Some((ok, deliver)) = slot {
            // A unit that succeeded but whose savepoint could not be released did not persist.
            let failure = match (&savepoint, ok) {
                (Err(e), true) => Some(e.to_string()),
                _ => None,
            };
            answers.push((deliver, failure));
        }
        // A panicked unit drops its reply channel: the caller sees WriterGone, nothing persisted.
        if !outer_open(conn) {
            // Some errors (SQLITE_FULL, an I/O error, a lost connection) end the whole transaction:
            // the work of every unit so far is gone. Say so to each caller, run nothing more in
            // autocommit, and let the writer reconnect.
            let reason = "the database ended the transaction (disk full, I/O error or lost connection)".to_string();
            tracing::error!(units = answers.len(), "group commit aborted by the database");
            for (deliver, _) in answers {
                deliver(Some(reason.clone()));
            }
            fail_all(queue.collect(), &reason);
            let _ = match conn {
                AnyConnection::Sqlite(c) => AnsiTransactionManager::rollback_transaction(c),
                AnyConnection::Postgresql(c) => AnsiTransactionManager::rollback_transaction(c),
            };
            return Err(StorageError::Commit(reason));
        }
    }
    let committed = match conn {
        AnyConnection::Sqlite(c) => AnsiTransactionManager::commit_transaction(c),
        AnyConnection::Postgresql(c) => AnsiTransactionManager::commit_transaction(c),
    };
    match committed {
        Ok(()) => {
            for (deliver, failure) in answers {
                deliver(failure);
            }
            Ok(())
        }
        Err(e) => {
            let reason = e.to_string();
            let _ = match conn {
                AnyConnection::Sqlite(c) => AnsiTransactionManager::rollback_transaction(c),
                AnyConnection::Postgresql(c) => AnsiTransactionManager::rollback_transaction(c),
            };
            for (deliver, _) in answers {
                deliver(Some(reason.clone()));
            }
            Err(StorageError::Query(e))
        }
    }
}
