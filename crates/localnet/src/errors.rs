//! The localnet's own error type, and the mapping from runtime failures to [`LedgerError`].

use clawfirst_solana::LedgerError;
use clawfirst_solana::programs::{
    ASSOCIATED_TOKEN_PROGRAM, SYSTEM_PROGRAM, TOKEN_PROGRAM, from_sdk,
};
use solana_transaction::{InstructionError, TransactionError, VersionedMessage};

/// Why the localnet could not be opened or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalnetError {
    /// The SQLite database failed.
    #[error("localnet database failed")]
    Database(#[from] rusqlite::Error),
    /// The database holds a value this version cannot restore.
    #[error("localnet database holds an invalid {0}")]
    CorruptState(&'static str),
    /// LiteSVM refused an account being restored or written.
    #[error("localnet runtime refused an account")]
    Runtime(#[source] litesvm::error::LiteSVMError),
    /// An earlier write to the database failed, so memory and disk may differ; the localnet
    /// refuses further changes until it is reopened.
    #[error("localnet state was not persisted; reopen the localnet")]
    Poisoned,
    /// A lock was poisoned by a panic in another thread.
    #[error("localnet state lock is poisoned")]
    LockPoisoned,
    /// Funding would push a token's supply past `u64::MAX`.
    #[error("token supply would overflow")]
    SupplyOverflow,
    /// An option is out of range.
    #[error("invalid localnet option: {0}")]
    InvalidOptions(&'static str),
    /// The slot ticker thread could not be started.
    #[error("could not start the slot ticker")]
    Ticker(#[source] std::io::Error),
}

impl From<LocalnetError> for LedgerError {
    fn from(e: LocalnetError) -> Self {
        LedgerError::Backend(Box::new(e))
    }
}

/// How a landed transaction failed, as recorded and replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// The payer could not cover an amount, fee or deposit.
    InsufficientFunds,
    /// Any other failure.
    Rejected,
}

impl FailureKind {
    /// The stable code stored in the database.
    pub(crate) const fn code(self) -> i64 {
        match self {
            FailureKind::InsufficientFunds => 1,
            FailureKind::Rejected => 2,
        }
    }

    pub(crate) const fn from_code(code: i64) -> Option<Self> {
        match code {
            1 => Some(FailureKind::InsufficientFunds),
            2 => Some(FailureKind::Rejected),
            _ => None,
        }
    }
}

/// A failure and the runtime's text for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) kind: FailureKind,
    pub(crate) error: String,
}

impl Failure {
    pub(crate) fn to_ledger_error(&self) -> LedgerError {
        let reason = self.error.clone();
        match self.kind {
            FailureKind::InsufficientFunds => LedgerError::InsufficientFunds { reason },
            FailureKind::Rejected => LedgerError::Rejected { reason },
        }
    }
}

/// Whether LiteSVM charged the fee and recorded the transaction despite `error`: the runtime
/// includes a transaction in a block once its fee payer is validated and its programs are
/// loaded, so only execution failures (an instruction, or the rent check after it) land.
pub(crate) fn landed(error: &TransactionError) -> bool {
    matches!(
        error,
        TransactionError::InstructionError(..) | TransactionError::InsufficientFundsForRent { .. }
    )
}

/// Classifies a runtime error. Running short of lamports or tokens is told apart from other
/// failures because the caller can do something about it: fund the wallet.
pub(crate) fn classify(error: &TransactionError, message: &VersionedMessage) -> Failure {
    let kind = match error {
        // The fee payer does not exist (no lamports at all) or cannot pay the fee.
        TransactionError::AccountNotFound | TransactionError::InsufficientFundsForFee => {
            FailureKind::InsufficientFunds
        }
        // Index 0 is the fee payer, left below its rent-exempt minimum.
        TransactionError::InsufficientFundsForRent { account_index: 0 } => {
            FailureKind::InsufficientFunds
        }
        TransactionError::InstructionError(_, InstructionError::InsufficientFunds) => {
            FailureKind::InsufficientFunds
        }
        // Custom error 1 is "insufficient funds" for SPL Token and "result with negative
        // lamports" for the System program, also when it is reached through the Associated
        // Token Account program creating an account.
        TransactionError::InstructionError(index, InstructionError::Custom(1))
            if is_funds_program(message, *index) =>
        {
            FailureKind::InsufficientFunds
        }
        _ => FailureKind::Rejected,
    };
    Failure {
        kind,
        error: error.to_string(),
    }
}

fn is_funds_program(message: &VersionedMessage, instruction: u8) -> bool {
    let program = message
        .instructions()
        .get(usize::from(instruction))
        .and_then(|ix| {
            message
                .static_account_keys()
                .get(usize::from(ix.program_id_index))
        })
        .map(|key| from_sdk(*key));
    matches!(
        program,
        Some(p) if p == SYSTEM_PROGRAM || p == TOKEN_PROGRAM || p == ASSOCIATED_TOKEN_PROGRAM
    )
}
