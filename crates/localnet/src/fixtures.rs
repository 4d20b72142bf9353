//! The localnet's token mints and the development funding fixture, written as account state
//! directly: no mint authority, no wallet key, no airdrop. Both mints have no mint or freeze
//! authority; their supply is the sum of the balances the funding fixture has written.
//!
//! The addresses and their derivation are documented at the crate root.

use clawfirst_core::{Address, Asset};
use clawfirst_solana::programs::{SYSTEM_PROGRAM, TOKEN_PROGRAM, from_sdk, to_sdk};
use solana_account::Account;
use solana_program_option::COption;
use solana_program_pack::Pack;
use spl_token_interface::state::{Account as TokenAccount, AccountState, Mint};

use crate::errors::LocalnetError;

/// The namespace under which the mint addresses are derived (ASCII `clawfirst-localnet-mints`,
/// zero-padded to 32 bytes). Nothing is deployed there.
pub const MINT_NAMESPACE: [u8; 32] = *b"clawfirst-localnet-mints\0\0\0\0\0\0\0\0";

/// The localnet USDC mint, as base58 text.
pub const USDC_MINT_TEXT: &str = "EcwuxBxWFDR12Apj8Tg8FbKeD3zAjzMeeyBU5sFubXVM";

/// The localnet BONK mint, as base58 text.
pub const BONK_MINT_TEXT: &str = "CHe4ARuw2UVregYsdaF9Z39gFyqdTTV3wPPSQLkkNY2p";

/// The mint the localnet uses for `asset`; `None` for SOL.
pub fn localnet_mint(asset: Asset) -> Option<Address> {
    if !asset.is_token() {
        return None;
    }
    let seeds: [&[u8]; 2] = [b"mint", asset.symbol().as_bytes()];
    let namespace = solana_address::Address::new_from_array(MINT_NAMESPACE);
    let (mint, _bump) = solana_address::Address::find_program_address(&seeds, &namespace);
    Some(from_sdk(mint))
}

/// A packed, initialized mint with a fixed supply and no authorities.
pub(crate) fn mint_account(decimals: u8, supply: u64, rent_lamports: u64) -> Account {
    let state = Mint {
        mint_authority: COption::None,
        supply,
        decimals,
        is_initialized: true,
        freeze_authority: COption::None,
    };
    packed(state, rent_lamports)
}

/// A packed, initialized token account holding `amount` of `mint` for `owner`.
pub(crate) fn token_account(mint: Address, owner: Address, amount: u64, rent: u64) -> Account {
    let state = TokenAccount {
        mint: to_sdk(mint),
        owner: to_sdk(owner),
        amount,
        delegate: COption::None,
        state: AccountState::Initialized,
        is_native: COption::None,
        delegated_amount: 0,
        close_authority: COption::None,
    };
    packed(state, rent)
}

fn packed<T: Pack>(state: T, lamports: u64) -> Account {
    let mut data = vec![0u8; T::LEN];
    state.pack_into_slice(&mut data);
    Account {
        lamports,
        data,
        owner: to_sdk(TOKEN_PROGRAM),
        executable: false,
        rent_epoch: u64::MAX,
    }
}

/// The token state of an account owned by the SPL Token program, if it holds one.
pub(crate) fn token_state(account: &Account) -> Option<TokenAccount> {
    if from_sdk(account.owner) != TOKEN_PROGRAM {
        return None;
    }
    TokenAccount::unpack(&account.data).ok()
}

/// `account` with its token amount raised to `amount`, and by how much it grew.
pub(crate) fn with_token_amount(account: &Account, amount: u64) -> Option<(Account, u64)> {
    let mut state = token_state(account)?;
    let grown = amount.checked_sub(state.amount)?;
    state.amount = amount;
    let mut updated = account.clone();
    state.pack_into_slice(&mut updated.data);
    Some((updated, grown))
}

/// `mint` with its supply grown by `by`.
///
/// # Errors
/// [`LocalnetError::SupplyOverflow`], or [`LocalnetError::CorruptState`] when `mint` does
/// not hold a mint.
pub(crate) fn with_supply_grown(mint: &Account, by: u64) -> Result<Account, LocalnetError> {
    let mut state = Mint::unpack(&mint.data).map_err(|_| LocalnetError::CorruptState("mint"))?;
    state.supply = state
        .supply
        .checked_add(by)
        .ok_or(LocalnetError::SupplyOverflow)?;
    let mut updated = mint.clone();
    state.pack_into_slice(&mut updated.data);
    Ok(updated)
}

/// A system account holding `lamports`, or `existing` raised to that balance.
pub(crate) fn with_lamports(existing: Option<Account>, lamports: u64) -> Account {
    match existing {
        Some(mut account) => {
            account.lamports = account.lamports.max(lamports);
            account
        }
        None => Account {
            lamports,
            data: Vec::new(),
            owner: to_sdk(SYSTEM_PROGRAM),
            executable: false,
            rent_epoch: u64::MAX,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mint_addresses_are_the_documented_off_curve_derivations() -> Result<(), String> {
        for (asset, text) in [(Asset::Usdc, USDC_MINT_TEXT), (Asset::Bonk, BONK_MINT_TEXT)] {
            let mint = localnet_mint(asset).ok_or("token without mint")?;
            assert_eq!(mint.to_string(), text);
            assert!(
                !to_sdk(mint).is_on_curve(),
                "{asset} mint has a private key"
            );
        }
        assert_eq!(localnet_mint(Asset::Sol), None);
        Ok(())
    }

    #[test]
    fn packed_states_unpack_to_what_was_written() -> Result<(), String> {
        let mint = mint_account(6, 10, 1);
        let state = Mint::unpack(&mint.data).map_err(|e| e.to_string())?;
        assert_eq!(
            (state.decimals, state.supply, state.mint_authority),
            (6, 10, COption::None)
        );

        let owner = Address::new([4; 32]);
        let account = token_account(Address::new([5; 32]), owner, 7, 2);
        assert_eq!(
            token_state(&account).map(|s| (s.amount, from_sdk(s.owner))),
            Some((7, owner))
        );
        let (raised, grown) = with_token_amount(&account, 9).ok_or("not a token account")?;
        assert_eq!(
            (token_state(&raised).map(|s| s.amount), grown),
            (Some(9), 2)
        );
        assert_eq!(with_token_amount(&account, 6).map(|(_, g)| g), None);

        let grown = with_supply_grown(&mint, u64::MAX - 10).map_err(|e| e.to_string())?;
        assert!(matches!(
            with_supply_grown(&grown, 1),
            Err(LocalnetError::SupplyOverflow)
        ));
        Ok(())
    }
}
