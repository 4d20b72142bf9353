//! The localnet's SQLite file: enough state to rebuild the ledger in a fresh runtime.
//!
//! | table | holds |
//! |---|---|
//! | `blockhashes` | the recent-blockhash window, one row per slot; the highest is the current |
//! | `accounts` | every account a landed transaction or a fixture wrote, as its latest state |
//! | `transactions` | signature, slot and outcome of every landed transaction |
//!
//! Programs, sysvars and feature accounts are not stored: a fresh LiteSVM recreates them.
//! Each landed transaction is one SQLite transaction (its record and the accounts it wrote),
//! committed before `submit` returns, so a crash loses only submissions still in flight.
//! Unsigned 64-bit values are stored bit for bit in SQLite's signed integers.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use solana_account::Account;

use crate::errors::{Failure, FailureKind, LocalnetError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS blockhashes (
    slot INTEGER PRIMARY KEY,
    hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    address BLOB PRIMARY KEY,
    lamports INTEGER NOT NULL,
    owner BLOB NOT NULL,
    executable INTEGER NOT NULL,
    rent_epoch INTEGER NOT NULL,
    data BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS transactions (
    signature BLOB PRIMARY KEY,
    slot INTEGER NOT NULL,
    failure_kind INTEGER,
    error TEXT
) WITHOUT ROWID;
";

const UPSERT_ACCOUNT: &str =
    "INSERT INTO accounts (address, lamports, owner, executable, rent_epoch, data)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT (address) DO UPDATE SET lamports = ?2, owner = ?3, executable = ?4,
         rent_epoch = ?5, data = ?6";

/// How hard each commit is pushed to disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous = FULL`: every landed transaction survives an operating-system crash or
    /// power loss once `submit` returns. Costs one `fsync` per transaction and per slot.
    #[default]
    PowerLoss,
    /// `synchronous = NORMAL`: every landed transaction survives a crash of the process once
    /// `submit` returns; a power loss may roll back the last few. For benchmarks and demos.
    ProcessCrash,
}

/// What the database holds, ready to be replayed into a fresh runtime.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// Oldest first; the last entry is the current slot and blockhash.
    pub(crate) window: Vec<(u64, [u8; 32])>,
    pub(crate) accounts: Vec<([u8; 32], Account)>,
}

/// One landed transaction.
#[derive(Debug)]
pub(crate) struct TxRecord {
    pub(crate) slot: u64,
    pub(crate) failure: Option<Failure>,
}

#[derive(Debug)]
pub(crate) struct Store {
    conn: Connection,
}

fn to_sql(value: u64) -> i64 {
    i64::from_ne_bytes(value.to_ne_bytes())
}

fn from_sql(value: i64) -> u64 {
    u64::from_ne_bytes(value.to_ne_bytes())
}

fn array<const N: usize>(bytes: Vec<u8>, what: &'static str) -> Result<[u8; N], LocalnetError> {
    <[u8; N]>::try_from(bytes).map_err(|_| LocalnetError::CorruptState(what))
}

impl Store {
    pub(crate) fn open(path: &Path, durability: Durability) -> Result<Self, LocalnetError> {
        let conn = Connection::open(path)?;
        let synchronous = match durability {
            Durability::PowerLoss => "FULL",
            Durability::ProcessCrash => "NORMAL",
        };
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", synchronous)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn })
    }

    /// The stored state, or `None` for a database that has never held a ledger.
    pub(crate) fn load(&self) -> Result<Option<Snapshot>, LocalnetError> {
        let mut stmt = self
            .conn
            .prepare("SELECT slot, hash FROM blockhashes ORDER BY slot")?;
        let mut window = Vec::new();
        for row in stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))? {
            let (slot, hash) = row?;
            window.push((from_sql(slot), array(hash, "blockhash")?));
        }
        if window.is_empty() {
            return Ok(None);
        }

        let mut stmt = self.conn.prepare(
            "SELECT address, lamports, owner, executable, rent_epoch, data FROM accounts",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, Vec<u8>>(5)?,
            ))
        })?;
        let mut accounts = Vec::new();
        for row in rows {
            let (address, lamports, owner, executable, rent_epoch, data) = row?;
            let account = Account {
                lamports: from_sql(lamports),
                data,
                owner: solana_address::Address::new_from_array(array(owner, "account owner")?),
                executable,
                rent_epoch: from_sql(rent_epoch),
            };
            accounts.push((array(address, "account address")?, account));
        }
        Ok(Some(Snapshot { window, accounts }))
    }

    /// Records a new slot and its blockhash, and forgets blockhashes older than `oldest_kept`.
    pub(crate) fn record_slot(
        &mut self,
        slot: u64,
        hash: &[u8; 32],
        oldest_kept: u64,
    ) -> Result<(), LocalnetError> {
        let tx = self.conn.transaction()?;
        tx.prepare_cached("INSERT OR REPLACE INTO blockhashes (slot, hash) VALUES (?1, ?2)")?
            .execute(params![to_sql(slot), &hash[..]])?;
        tx.prepare_cached("DELETE FROM blockhashes WHERE slot < ?1")?
            .execute(params![to_sql(oldest_kept)])?;
        tx.commit()?;
        Ok(())
    }

    /// Writes accounts (a fixture, or the genesis mints) in one transaction; `None` deletes.
    pub(crate) fn write_accounts(
        &mut self,
        accounts: &[([u8; 32], Option<Account>)],
    ) -> Result<(), LocalnetError> {
        let tx = self.conn.transaction()?;
        write_accounts(&tx, accounts)?;
        tx.commit()?;
        Ok(())
    }

    /// Records a landed transaction and the accounts it wrote, atomically.
    pub(crate) fn record_transaction(
        &mut self,
        signature: &[u8; 64],
        record: &TxRecord,
        accounts: &[([u8; 32], Option<Account>)],
    ) -> Result<(), LocalnetError> {
        let tx = self.conn.transaction()?;
        let (kind, error) = match &record.failure {
            Some(f) => (Some(f.kind.code()), Some(f.error.as_str())),
            None => (None, None),
        };
        tx.prepare_cached(
            "INSERT INTO transactions (signature, slot, failure_kind, error)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![&signature[..], to_sql(record.slot), kind, error])?;
        write_accounts(&tx, accounts)?;
        tx.commit()?;
        Ok(())
    }

    /// The record of a landed transaction.
    pub(crate) fn transaction(
        &self,
        signature: &[u8; 64],
    ) -> Result<Option<TxRecord>, LocalnetError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT slot, failure_kind, error FROM transactions WHERE signature = ?1",
            )?
            .query_row(params![&signature[..]], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .optional()?;
        let Some((slot, kind, error)) = row else {
            return Ok(None);
        };
        let failure = match (kind, error) {
            (None, None) => None,
            (Some(code), Some(error)) => {
                let kind = FailureKind::from_code(code)
                    .ok_or(LocalnetError::CorruptState("transaction outcome"))?;
                Some(Failure { kind, error })
            }
            _ => return Err(LocalnetError::CorruptState("transaction outcome")),
        };
        Ok(Some(TxRecord {
            slot: from_sql(slot),
            failure,
        }))
    }
}

fn write_accounts(
    tx: &rusqlite::Transaction<'_>,
    accounts: &[([u8; 32], Option<Account>)],
) -> Result<(), LocalnetError> {
    let mut upsert = tx.prepare_cached(UPSERT_ACCOUNT)?;
    let mut delete = tx.prepare_cached("DELETE FROM accounts WHERE address = ?1")?;
    for (address, account) in accounts {
        match account {
            Some(a) => upsert.execute(params![
                &address[..],
                to_sql(a.lamports),
                &a.owner.as_array()[..],
                a.executable,
                to_sql(a.rent_epoch),
                &a.data,
            ])?,
            None => delete.execute(params![&address[..]])?,
        };
    }
    Ok(())
}
