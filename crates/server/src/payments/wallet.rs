//! Balances, fee estimates, funds checks and cancellation.

use clawfirst_core::{Amount, Asset, SessionId, Transfer};
use clawfirst_solana::PaymentPlan;
use clawfirst_solana::ledger::{FeeEstimate, associated_token_address, estimate_fee};
use clawfirst_store::{Session, SessionState};
use serde_json::{Value, json};
use tracing::instrument;

use super::authorize::{ledger_error, state_error};
use super::{Caller, PaymentService, ToolResult};
use crate::error::{ErrorCode, ToolError};
use crate::tools::input::EstimateRequest;

impl PaymentService {
    /// The agent wallet's balances.
    ///
    /// # Errors
    /// `NETWORK_ERROR` or `RPC_ERROR` when the ledger cannot answer.
    #[instrument(skip_all, fields(agent.id = %caller.agent_id))]
    pub async fn query_balance(&self, caller: &Caller, only: Option<Asset>) -> ToolResult {
        let (_, wallet) = self.wallet_of(caller).await?;
        let balances = self.ledger.balances(&wallet).await.map_err(ledger_error)?;
        let items: Vec<Value> = balances
            .into_iter()
            .filter(|b| only.is_none_or(|a| a == b.asset))
            .map(|b| {
                json!({
                    "asset": b.asset.symbol(),
                    "amount": decimal(b.asset, b.base_units),
                    "base_units": b.base_units.to_string(),
                    "mint": b.mint.map(|m| m.to_string()),
                })
            })
            .collect();
        Ok(json!({
            "wallet": wallet.to_string(),
            "network": self.ledger.network().to_string(),
            "balances": items,
        }))
    }

    /// The cost of a payment before it is made.
    ///
    /// # Errors
    /// `INVALID_INPUT` for an unknown payee; `SESSION_NOT_FOUND`; ledger errors.
    #[instrument(skip_all, fields(agent.id = %caller.agent_id))]
    pub async fn estimate_fees(&self, caller: &Caller, req: EstimateRequest) -> ToolResult {
        let (_, payer) = self.wallet_of(caller).await?;
        let transfer = match req {
            EstimateRequest::Session(id) => {
                let session = self.session_of(caller, &id).await?;
                self.transfer_of(&session)?
            }
            EstimateRequest::Payment { amount, recipient } => {
                let recipient = self
                    .payees
                    .resolve(&recipient)
                    .map_err(|e| ToolError::invalid_input("recipient", e))?;
                Transfer {
                    asset: amount.asset(),
                    mint: self.ledger.mint(amount.asset()),
                    amount: amount.base_units(),
                    recipient,
                    payer,
                }
            }
        };
        self.estimate_for(&transfer).await
    }

    /// Aborts a session that has not been signed, releasing its reservation.
    ///
    /// # Errors
    /// `INVALID_STATE` once the payment is signed; `SESSION_NOT_FOUND`.
    #[instrument(skip_all, fields(agent.id = %caller.agent_id, session.id = %id))]
    pub async fn cancel_payment(&self, caller: &Caller, id: &SessionId) -> ToolResult {
        let session = self.session_of(caller, id).await?;
        match session.state {
            SessionState::Cancelled => return Ok(self.session_view(&session)),
            SessionState::Initialized | SessionState::AwaitingApproval | SessionState::Approved => {
            }
            other => return Err(state_error(&session, other)),
        }
        let closed = self
            .close(&session, SessionState::Cancelled, None, "session.cancelled")
            .await?;
        if closed.state != SessionState::Cancelled {
            return Err(state_error(&closed, closed.state));
        }
        Ok(self.session_view(&closed))
    }

    /// The payment plan of a transfer under this server's fee settings.
    pub(super) fn plan(&self, transfer: Transfer, memo: Option<&str>) -> PaymentPlan {
        let mut plan = PaymentPlan::new(transfer);
        plan.compute_unit_price_micro_lamports = self.settings.compute_unit_price_micro_lamports;
        plan.memo = memo.map(str::to_owned);
        plan
    }

    /// The transfer a session performs, with the network's mint for tokens.
    pub(super) fn transfer_of(&self, session: &Session) -> Result<Transfer, ToolError> {
        let mint = self.ledger.mint(session.asset);
        if session.asset.is_token() && mint.is_none() {
            return Err(ToolError::new(
                ErrorCode::InvalidInput,
                "this network has no mint for the asset",
            ));
        }
        Ok(Transfer {
            asset: session.asset,
            mint,
            amount: session.amount,
            recipient: session.recipient,
            payer: session.payer,
        })
    }

    /// The fee estimate of a transfer, as JSON.
    pub(super) async fn estimate_for(&self, transfer: &Transfer) -> ToolResult {
        let (fee, creates) = self.fee_of(transfer).await?;
        Ok(json!({
            "base_fee_lamports": fee.base_fee_lamports.to_string(),
            "priority_fee_lamports": fee.priority_fee_lamports.to_string(),
            "rent_lamports": fee.rent_lamports.to_string(),
            "total_lamports": fee.total_lamports.to_string(),
            "total": decimal(Asset::Sol, fee.total_lamports),
            "creates_recipient_account": creates,
        }))
    }

    async fn fee_of(&self, transfer: &Transfer) -> Result<(FeeEstimate, bool), ToolError> {
        let plan = self.plan(*transfer, None);
        let schedule = self.ledger.fee_schedule().await.map_err(ledger_error)?;
        let creates = match transfer.mint {
            Some(mint) => {
                let ata = associated_token_address(&transfer.recipient, &mint);
                !self
                    .ledger
                    .account_exists(&ata)
                    .await
                    .map_err(ledger_error)?
            }
            None => false,
        };
        Ok((estimate_fee(&plan, &schedule, !creates), creates))
    }

    /// Refuses a SOL payment that would leave a new recipient account below the rent-exempt
    /// minimum, which the ledger would reject after charging the fee.
    ///
    /// # Errors
    /// `INVALID_INPUT` naming `amount`.
    pub(super) async fn check_rent(&self, transfer: &Transfer) -> Result<(), ToolError> {
        if transfer.asset != Asset::Sol || transfer.amount >= RENT_EXEMPT_MINIMUM_LAMPORTS {
            return Ok(());
        }
        if self
            .ledger
            .account_exists(&transfer.recipient)
            .await
            .map_err(ledger_error)?
        {
            return Ok(());
        }
        Err(ToolError::invalid_input(
            "amount",
            format!(
                "a SOL payment to a new account must be at least {} SOL, the rent-exempt minimum",
                decimal(Asset::Sol, RENT_EXEMPT_MINIMUM_LAMPORTS)
            ),
        ))
    }

    /// Refuses a payment the wallet cannot cover, before anything is signed.
    pub(super) async fn check_funds(&self, plan: &PaymentPlan) -> Result<(), ToolError> {
        let transfer = plan.transfer;
        let (fee, _) = self.fee_of(&transfer).await?;
        let balances = self
            .ledger
            .balances(&transfer.payer)
            .await
            .map_err(ledger_error)?;
        let held = |asset: Asset| {
            balances
                .iter()
                .find(|b| b.asset == asset)
                .map(|b| b.base_units)
                .unwrap_or(0)
        };
        let sol_needed = match transfer.asset {
            Asset::Sol => fee.total_lamports.checked_add(transfer.amount),
            _ => Some(fee.total_lamports),
        };
        let short_of_sol = sol_needed.is_none_or(|needed| held(Asset::Sol) < needed);
        let short_of_token = transfer.asset.is_token() && held(transfer.asset) < transfer.amount;
        if short_of_sol || short_of_token {
            return Err(ToolError::new(
                ErrorCode::InsufficientBalance,
                "the wallet cannot cover the payment and its fees",
            )
            .with_details(json!({
                "asset": transfer.asset.symbol(),
                "required_base_units": transfer.amount.to_string(),
                "available_base_units": held(transfer.asset).to_string(),
                "required_fee_lamports": fee.total_lamports.to_string(),
            })));
        }
        Ok(())
    }
}

/// The rent-exempt minimum of an account with no data: (128 bytes of account overhead) x 3,480
/// lamports per byte-year x 2 years, per Solana's default rent parameters.
pub(super) const RENT_EXEMPT_MINIMUM_LAMPORTS: u64 = 890_880;

/// A base-unit quantity as a decimal string, `"0"` for zero.
pub(super) fn decimal(asset: Asset, units: u64) -> String {
    Amount::from_base_units(asset, units)
        .map(|a| a.decimal_string())
        .unwrap_or_else(|_| "0".into())
}
