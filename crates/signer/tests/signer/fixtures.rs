//! Payments, messages and grants as the approval layer would produce them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use clawfirst_core::grant::{GrantBody, GrantSigner, SignedGrant};
use clawfirst_core::signer_proto::{SignerErrorCode, SignerRequest, SignerResponse};
use clawfirst_core::{Address, AgentId, Asset, GrantId, KeyId, SessionId, Transfer, now_ms};
use clawfirst_solana::{PaymentPlan, build_message};
use rand::RngCore;

use crate::harness::Error;

pub fn random_address() -> Address {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Address::new(bytes)
}

pub fn sol_transfer(payer: Address) -> Transfer {
    Transfer {
        asset: Asset::Sol,
        mint: None,
        amount: 1_500_000,
        recipient: random_address(),
        payer,
    }
}

pub fn usdc_transfer(payer: Address) -> Transfer {
    Transfer {
        asset: Asset::Usdc,
        mint: Some(clawfirst_solana::ledger::MAINNET_USDC_MINT),
        amount: 2_500_000,
        recipient: random_address(),
        payer,
    }
}

/// The message the server would build for `transfer`, under a random blockhash.
pub fn message_for(transfer: &Transfer) -> Result<Vec<u8>, Error> {
    let mut blockhash = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut blockhash);
    Ok(build_message(&PaymentPlan::new(*transfer), blockhash)?)
}

/// A grant body for `message` performing `transfer`, valid for one minute from now.
pub fn body_for(key_id: &KeyId, transfer: &Transfer, message: &[u8]) -> Result<GrantBody, Error> {
    let now = now_ms();
    Ok(GrantBody {
        grant_id: GrantId::random(),
        issued_at_ms: now,
        expires_at_ms: now + 60_000,
        agent_id: AgentId::new("agent-7")?,
        session_id: SessionId::random(),
        key_id: key_id.clone(),
        message_sha256: GrantBody::hash_message(message),
        transfer: *transfer,
    })
}

pub fn sign_request(key_id: &KeyId, message: &[u8], grant: SignedGrant) -> SignerRequest {
    SignerRequest::Sign {
        key_id: key_id.clone(),
        message: B64.encode(message),
        grant,
        approvals: Vec::new(),
    }
}

/// A complete, valid sign request for `transfer` under `grants`.
pub struct Granted {
    pub message: Vec<u8>,
    pub body: GrantBody,
    pub request: SignerRequest,
}

pub fn granted(
    grants: &GrantSigner,
    key_id: &KeyId,
    transfer: &Transfer,
) -> Result<Granted, Error> {
    let message = message_for(transfer)?;
    let body = body_for(key_id, transfer, &message)?;
    let request = sign_request(key_id, &message, grants.sign(&body));
    Ok(Granted {
        message,
        body,
        request,
    })
}

/// Copies the message's last instruction to its end, as an attacker adding a second transfer
/// would. Works on the legacy messages `build_message` writes (short lengths fit one byte).
pub fn with_last_instruction_repeated(message: &[u8]) -> Result<Vec<u8>, Error> {
    let byte = |i: usize| message.get(i).copied().ok_or("message too short");
    let keys = usize::from(byte(3)?);
    let count_at = 4 + keys * 32 + 32;
    let count = byte(count_at)?;
    if keys >= 0x80 || count >= 0x7f {
        return Err("lengths do not fit one byte".into());
    }
    let mut at = count_at + 1;
    let mut last = at;
    for _ in 0..count {
        last = at;
        let accounts = usize::from(byte(at + 1)?);
        let data = usize::from(byte(at + 2 + accounts)?);
        at += 3 + accounts + data;
    }
    if at != message.len() {
        return Err("unexpected message layout".into());
    }
    let mut out = message.to_vec();
    out[count_at] = count + 1;
    out.extend_from_slice(&message[last..]);
    Ok(out)
}

/// Asserts that `response` is an error with `code`.
pub fn assert_refused(response: &SignerResponse, code: SignerErrorCode) {
    match response {
        SignerResponse::Error { code: found, .. } => assert_eq!(*found, code, "{response:?}"),
        other => panic!("expected refusal {code:?}, got {other:?}"),
    }
}
