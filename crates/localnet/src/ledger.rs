//! [`Ledger`] for [`Localnet`]: submission, status by commitment depth, balances and fees.

use std::sync::Arc;

use async_trait::async_trait;
use clawfirst_core::{Address, Asset};
use clawfirst_solana::wire::{parse_signature_text, signature_text};
use clawfirst_solana::{
    Balance, Commitment, FeeSchedule, Ledger, LedgerError, Network, RecentBlockhash, TxStatus,
};
use solana_program_pack::Pack;
use solana_transaction::versioned::VersionedTransaction;
use spl_token_interface::state::Account as TokenAccount;
use tracing::{Span, debug, info};

use crate::chain::BLOCKHASH_WINDOW;
use crate::shared::{Shared, lock};
use crate::store::TxRecord;
use crate::{Localnet, LocalnetError};

impl Shared {
    /// Decodes, executes and records one transaction. Runs on the blocking pool.
    fn submit_blocking(&self, bytes: &[u8]) -> Result<String, LedgerError> {
        // 1. Decode the wire bytes; the first signature is the transaction's id.
        let tx: VersionedTransaction = wincode::deserialize_exact(bytes)
            .map_err(|e| LedgerError::MalformedTransaction(Box::new(e)))?;
        let signature: [u8; 64] = tx
            .signatures
            .first()
            .map(|s| *s.as_array())
            .ok_or_else(|| LedgerError::MalformedTransaction("no signature".into()))?;
        let text = signature_text(&signature);
        Span::current().record("tx.signature", text.as_str());
        if tx
            .message
            .address_table_lookups()
            .is_some_and(|l| !l.is_empty())
        {
            let reason = "address-table lookups are not supported by the localnet".to_owned();
            info!(%reason, "transaction rejected");
            return Err(LedgerError::Rejected { reason });
        }
        self.ensure_writable()?;

        // 2. Under the runtime lock, answer a repeated submission from its record.
        let mut chain = lock(&self.chain)?;
        if let Some(record) = lock(&self.store)?.transaction(&signature)? {
            debug!(
                slot = record.slot,
                "repeated submission answered from the record"
            );
            return outcome(text, &record);
        }

        // 3. Execute; a transaction that did not land changed nothing and is not recorded.
        let landed = chain
            .execute(tx)
            .inspect_err(|e| info!(error = %e, "transaction rejected"))?;

        // 4. Commit the record and the written accounts before anyone can run after it.
        let record = TxRecord {
            slot: landed.slot,
            failure: landed.failure,
        };
        let mut store = lock(&self.store)?;
        drop(chain);
        store
            .record_transaction(&signature, &record, &landed.accounts)
            .inspect_err(|e| self.poison(e))?;

        match &record.failure {
            None => debug!(slot = record.slot, "transaction landed"),
            Some(f) => info!(slot = record.slot, error = %f.error, "transaction landed and failed"),
        }
        outcome(text, &record)
    }

    fn commitment(&self, landed_slot: u64) -> Commitment {
        let depth = self.slot().saturating_sub(landed_slot);
        if depth >= self.options.finality_depth_slots {
            Commitment::Finalized
        } else if depth >= self.options.confirmation_depth_slots {
            Commitment::Confirmed
        } else {
            Commitment::Processed
        }
    }
}

/// What `submit` answers for a landed transaction, the first time and every time after.
fn outcome(signature: String, record: &TxRecord) -> Result<String, LedgerError> {
    match &record.failure {
        None => Ok(signature),
        Some(failure) => Err(failure.to_ledger_error()),
    }
}

fn backend(e: LocalnetError) -> LedgerError {
    e.into()
}

#[async_trait]
impl Ledger for Localnet {
    fn network(&self) -> Network {
        Network::Localnet
    }

    fn mint(&self, asset: Asset) -> Option<Address> {
        self.shared.mint(asset)
    }

    async fn latest_blockhash(&self) -> Result<RecentBlockhash, LedgerError> {
        let (slot, hash) = lock(&self.shared.chain).map_err(backend)?.latest();
        Ok(RecentBlockhash {
            hash,
            last_valid_slot: slot.saturating_add(BLOCKHASH_WINDOW),
        })
    }

    async fn is_blockhash_valid(&self, hash: &[u8; 32]) -> Result<bool, LedgerError> {
        Ok(lock(&self.shared.chain).map_err(backend)?.is_recent(hash))
    }

    /// Executes the transaction on tokio's blocking pool (inline when called outside a tokio
    /// runtime). A signature that already landed is not executed again: the call returns what
    /// the first submission returned (the signature, or the same failure), even after a
    /// restart.
    #[tracing::instrument(skip_all, fields(tx.signature = tracing::field::Empty))]
    async fn submit(&self, signed_transaction: &[u8]) -> Result<String, LedgerError> {
        let shared = Arc::clone(&self.shared);
        let bytes = signed_transaction.to_vec();
        let span = Span::current();
        let work = move || span.in_scope(|| shared.submit_blocking(&bytes));
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime
                .spawn_blocking(work)
                .await
                .map_err(|e| LedgerError::Backend(Box::new(e)))?,
            Err(_) => work(),
        }
    }

    async fn status(&self, signature: &str) -> Result<Option<TxStatus>, LedgerError> {
        let signature =
            parse_signature_text(signature).map_err(|_| LedgerError::MalformedSignature)?;
        let record = lock(&self.shared.store)
            .map_err(backend)?
            .transaction(&signature)
            .map_err(backend)?;
        Ok(record.map(|r| TxStatus {
            slot: r.slot,
            commitment: self.shared.commitment(r.slot),
            error: r.failure.map(|f| f.error),
        }))
    }

    async fn balances(&self, owner: &Address) -> Result<Vec<Balance>, LedgerError> {
        let chain = lock(&self.shared.chain).map_err(backend)?;
        let balances = Asset::ALL
            .into_iter()
            .map(|asset| {
                let mint = self.shared.mint(asset);
                let base_units = match mint {
                    None => chain.account(owner).map_or(0, |a| a.lamports),
                    Some(mint) => Shared::token_balance(&chain, owner, &mint),
                };
                Balance {
                    asset,
                    mint,
                    base_units,
                }
            })
            .collect();
        Ok(balances)
    }

    async fn account_exists(&self, address: &Address) -> Result<bool, LedgerError> {
        let chain = lock(&self.shared.chain).map_err(backend)?;
        Ok(chain.account(address).is_some_and(|a| a.lamports > 0))
    }

    async fn fee_schedule(&self) -> Result<FeeSchedule, LedgerError> {
        let chain = lock(&self.shared.chain).map_err(backend)?;
        Ok(FeeSchedule {
            lamports_per_signature: chain.lamports_per_signature(),
            token_account_rent_lamports: chain.rent_exempt_minimum(TokenAccount::LEN),
        })
    }
}
