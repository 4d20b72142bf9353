//! The on-chain programs a payment touches, and conversions between ClawFirst's
//! [`Address`] and the Solana SDK's address type.
//!
//! Program ids come from the interface crates where they define one; the SPL Memo id, which no
//! crate in the pinned set exports, is written out here and pinned by a test against its
//! well-known base58 text.

use clawfirst_core::Address;

/// The SDK's address type, as used by the message and instruction crates.
pub type SdkAddress = solana_address::Address;

/// The SPL Memo program, version 2 (`MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr`).
pub const MEMO_PROGRAM: Address = Address::new([
    5, 74, 83, 90, 153, 41, 33, 6, 77, 36, 232, 113, 96, 218, 56, 124, 124, 53, 181, 221, 188, 146,
    187, 129, 228, 31, 168, 64, 65, 5, 68, 141,
]);

/// The System program, which moves lamports.
pub const SYSTEM_PROGRAM: Address = from_sdk(solana_system_interface::program::ID);

/// The Compute Budget program, which sets the compute-unit limit and price.
pub const COMPUTE_BUDGET_PROGRAM: Address = from_sdk(solana_compute_budget_interface::ID);

/// The SPL Token program (not Token-2022, which payments do not use).
pub const TOKEN_PROGRAM: Address = from_sdk(spl_token_interface::ID);

/// The Associated Token Account program.
pub const ASSOCIATED_TOKEN_PROGRAM: Address =
    from_sdk(spl_associated_token_account_interface::program::ID);

/// Converts to the SDK's address type.
pub const fn to_sdk(address: Address) -> SdkAddress {
    SdkAddress::new_from_array(address.to_bytes())
}

/// Converts from the SDK's address type.
pub const fn from_sdk(address: SdkAddress) -> Address {
    Address::new(address.to_bytes())
}

/// The associated token account of `owner` for `mint` under the SPL Token program.
///
/// This is the program-derived address the Associated Token Account program creates; deriving
/// it costs up to a few hundred SHA-256 computations, so callers that need it repeatedly may
/// cache it.
pub fn associated_token_address(owner: &Address, mint: &Address) -> Address {
    let derived = spl_associated_token_account_interface::address::get_associated_token_address(
        &to_sdk(*owner),
        &to_sdk(*mint),
    );
    from_sdk(derived)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_ids_have_their_well_known_text() {
        let expected = [
            (MEMO_PROGRAM, "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"),
            (SYSTEM_PROGRAM, "11111111111111111111111111111111"),
            (
                COMPUTE_BUDGET_PROGRAM,
                "ComputeBudget111111111111111111111111111111",
            ),
            (TOKEN_PROGRAM, "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"),
            (
                ASSOCIATED_TOKEN_PROGRAM,
                "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL",
            ),
        ];
        for (id, text) in expected {
            assert_eq!(id.to_string(), text);
        }
    }

    #[test]
    fn associated_token_address_follows_the_documented_seeds()
    -> Result<(), Box<dyn std::error::Error>> {
        let owner = Address::parse("9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM")?;
        let mint = Address::parse("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")?;
        let seeds: [&[u8]; 3] = [owner.as_bytes(), TOKEN_PROGRAM.as_bytes(), mint.as_bytes()];
        let (expected, _bump) =
            SdkAddress::find_program_address(&seeds, &to_sdk(ASSOCIATED_TOKEN_PROGRAM));

        let ata = associated_token_address(&owner, &mint);
        assert_eq!(ata, from_sdk(expected));
        // A program-derived address is off the Ed25519 curve: no private key exists for it.
        assert!(!to_sdk(ata).is_on_curve());
        assert_ne!(ata, associated_token_address(&mint, &owner));
        Ok(())
    }
}
