//! The `pkcs11` backend: Ed25519 keys inside a hardware security module.
//!
//! The private key never leaves the token: the signer logs in as the token's user, finds the
//! private key by label (`CKO_PRIVATE_KEY`, `CKK_EC_EDWARDS`), and asks the token to sign with
//! `CKM_EDDSA` without parameters, which is plain Ed25519 as Solana needs it. The public key is
//! read once from the public key object of the same label (`CKA_EC_POINT`, which SoftHSM and
//! most modules return DER-wrapped as an OCTET STRING; a raw 32-byte point is accepted too).
//!
//! PKCS#11 sessions may not be shared between threads, so the backend keeps a small pool of
//! sessions, each behind its own mutex, and spreads signatures over them round-robin. The
//! module is initialized with OS locking, and once per process: keys that share a module share
//! its context.
//!
//! # Security
//!
//! Every signature is verified against the public key before it is returned, so a token that
//! signs with another key, or returns garbage, is caught. The PIN is used to log in and then
//! dropped (and wiped); it is never logged.
//!
//! Everything here uses cryptoki's safe API; this module contains no `unsafe`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use clawfirst_core::Address;
use clawfirst_core::secret::SecretString;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use rand::RngCore;

use super::{BackendError, KeyBackend, verify_own_signature};
use crate::config::Pkcs11Config;

/// DER encoding of the object identifier 1.3.101.112 (id-Ed25519), the `CKA_EC_PARAMS` of an
/// Ed25519 key.
pub const ED25519_EC_PARAMS: [u8; 5] = [0x06, 0x03, 0x2B, 0x65, 0x70];

/// The most sessions a key keeps open.
const MAX_SESSIONS: usize = 8;

/// Initialized PKCS#11 modules of this process, by path.
#[derive(Debug, Default)]
pub struct Modules {
    by_path: HashMap<PathBuf, Pkcs11>,
}

impl Modules {
    fn context(&mut self, module: &Path) -> Result<Pkcs11, BackendError> {
        if let Some(ctx) = self.by_path.get(module) {
            return Ok(ctx.clone());
        }
        let ctx = initialize(module)?;
        self.by_path.insert(module.to_owned(), ctx.clone());
        Ok(ctx)
    }

    /// Opens a configured key: finds the token, logs in, finds the key pair, opens the session
    /// pool.
    ///
    /// # Errors
    /// [`BackendError::Pkcs11`] or [`BackendError::Pkcs11Lookup`].
    pub fn open_key(
        &mut self,
        config: &Pkcs11Config,
        pin: &SecretString,
    ) -> Result<Pkcs11Backend, BackendError> {
        let ctx = self.context(&config.module)?;
        let slot = find_token(&ctx, &config.token_label)?;
        let pool_size = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, MAX_SESSIONS);

        let mut sessions = Vec::with_capacity(pool_size);
        for index in 0..pool_size {
            let session = ctx.open_ro_session(slot).map_err(p11("open session"))?;
            if index == 0 {
                login(&session, pin)?;
            }
            let private_key = find_one(&session, ObjectClass::PRIVATE_KEY, &config.key_label)?;
            sessions.push(Mutex::new(PooledSession {
                session,
                private_key,
            }));
        }
        let public_key = match sessions.first().map(Mutex::lock) {
            Some(Ok(first)) => read_public_key(&first.session, &config.key_label)?,
            _ => {
                return Err(BackendError::Pkcs11Lookup(
                    "session pool is empty".to_owned(),
                ));
            }
        };

        Ok(Pkcs11Backend {
            public_key,
            label: config.key_label.clone(),
            sessions,
            next: AtomicUsize::new(0),
        })
    }
}

/// A key pair in a PKCS#11 token.
pub struct Pkcs11Backend {
    public_key: Address,
    label: String,
    sessions: Vec<Mutex<PooledSession>>,
    next: AtomicUsize,
}

struct PooledSession {
    session: Session,
    private_key: ObjectHandle,
}

impl fmt::Debug for Pkcs11Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Backend")
            .field("public_key", &self.public_key)
            .field("label", &self.label)
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

impl KeyBackend for Pkcs11Backend {
    fn public_key(&self) -> Address {
        self.public_key
    }

    fn kind(&self) -> &'static str {
        "pkcs11"
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64], BackendError> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.sessions.len().max(1);
        let pooled = self
            .sessions
            .get(index)
            .ok_or_else(|| BackendError::Pkcs11Lookup("session pool is empty".to_owned()))?;
        // A panic while holding the lock cannot leave the session half-used in a way that
        // matters: each C_Sign call is self-contained. So a poisoned lock is still usable.
        let pooled = pooled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);

        let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
        let raw = pooled
            .session
            .sign(&mechanism, pooled.private_key, message)
            .map_err(p11("sign"))?;
        drop(pooled);

        let signature: [u8; 64] = raw
            .as_slice()
            .try_into()
            .map_err(|_| BackendError::SignatureDoesNotVerify)?;
        verify_own_signature(&self.public_key, message, &signature)?;
        Ok(signature)
    }
}

/// What `pkcs11-keygen` needs.
#[derive(Debug, Clone)]
pub struct KeygenOptions {
    /// The PKCS#11 module.
    pub module: PathBuf,
    /// The token to create the key in.
    pub token_label: String,
    /// The label both halves of the key pair get.
    pub key_label: String,
}

/// Generates an Ed25519 key pair on the token and returns its public key.
///
/// The private key is a token object that is private, sensitive, never extractable and can only
/// sign. A label already used by a key on the token is refused, so that a lookup by label stays
/// unambiguous.
///
/// # Errors
/// [`BackendError::Pkcs11`] or [`BackendError::Pkcs11Lookup`].
pub fn generate(options: &KeygenOptions, pin: &SecretString) -> Result<Address, BackendError> {
    let ctx = initialize(&options.module)?;
    let slot = find_token(&ctx, &options.token_label)?;
    let session = ctx.open_rw_session(slot).map_err(p11("open session"))?;
    login(&session, pin)?;

    let label = options.key_label.as_bytes().to_vec();
    let existing = session
        .find_objects(&[Attribute::Label(label.clone())])
        .map_err(p11("find objects"))?;
    if !existing.is_empty() {
        return Err(BackendError::Pkcs11Lookup(format!(
            "token {:?} already holds an object labelled {:?}",
            options.token_label, options.key_label
        )));
    }

    let mut id = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut id);
    let public_template = [
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::EcParams(ED25519_EC_PARAMS.to_vec()),
        Attribute::Label(label.clone()),
        Attribute::Id(id.to_vec()),
    ];
    let private_template = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Label(label),
        Attribute::Id(id.to_vec()),
    ];
    session
        .generate_key_pair(
            &Mechanism::EccEdwardsKeyPairGen,
            &public_template,
            &private_template,
        )
        .map_err(p11("generate key pair"))?;
    read_public_key(&session, &options.key_label)
}

fn initialize(module: &Path) -> Result<Pkcs11, BackendError> {
    let ctx = Pkcs11::new(module).map_err(p11("load module"))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Another context of this process initialized the module already; it is usable.
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(ctx),
        Err(e) => Err(p11("initialize")(e)),
    }
}

fn find_token(ctx: &Pkcs11, label: &str) -> Result<Slot, BackendError> {
    let mut found = Vec::new();
    for slot in ctx
        .get_slots_with_initialized_token()
        .map_err(p11("list slots"))?
    {
        let info = ctx.get_token_info(slot).map_err(p11("read token info"))?;
        if info.label().trim_end() == label {
            found.push(slot);
        }
    }
    match found.as_slice() {
        [slot] => Ok(*slot),
        [] => Err(BackendError::Pkcs11Lookup(format!(
            "no initialized token is labelled {label:?}"
        ))),
        _ => Err(BackendError::Pkcs11Lookup(format!(
            "several tokens are labelled {label:?}"
        ))),
    }
}

fn login(session: &Session, pin: &SecretString) -> Result<(), BackendError> {
    let pin = AuthPin::from(pin.expose());
    match session.login(UserType::User, Some(&pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(e) => Err(p11("login")(e)),
    }
}

fn find_one(
    session: &Session,
    class: ObjectClass,
    label: &str,
) -> Result<ObjectHandle, BackendError> {
    let template = [
        Attribute::Class(class),
        Attribute::KeyType(KeyType::EC_EDWARDS),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    let handles = session
        .find_objects(&template)
        .map_err(p11("find objects"))?;
    match handles.as_slice() {
        [handle] => Ok(*handle),
        [] => Err(BackendError::Pkcs11Lookup(format!(
            "no Ed25519 {class} is labelled {label:?}"
        ))),
        _ => Err(BackendError::Pkcs11Lookup(format!(
            "several Ed25519 {class}s are labelled {label:?}"
        ))),
    }
}

fn read_public_key(session: &Session, label: &str) -> Result<Address, BackendError> {
    let handle = find_one(session, ObjectClass::PUBLIC_KEY, label)?;
    let attributes = session
        .get_attributes(handle, &[AttributeType::EcPoint])
        .map_err(p11("read public key"))?;
    let point = attributes.iter().find_map(|a| match a {
        Attribute::EcPoint(point) => Some(point.as_slice()),
        _ => None,
    });
    point
        .and_then(ec_point_to_address)
        .ok_or(BackendError::InvalidPublicKey)
}

/// Reads an Ed25519 `CKA_EC_POINT`: either the DER OCTET STRING `04 20 <32 bytes>` or the raw
/// 32 bytes.
pub fn ec_point_to_address(point: &[u8]) -> Option<Address> {
    let raw = match point {
        [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest,
        raw if raw.len() == 32 => raw,
        _ => return None,
    };
    raw.try_into().ok().map(Address::new)
}

fn p11(operation: &'static str) -> impl Fn(CkError) -> BackendError {
    move |source| BackendError::Pkcs11 { operation, source }
}
