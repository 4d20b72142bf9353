//! The `dangerous_dev_keyfile` backend: an Ed25519 seed encrypted at rest with a passphrase.
//!
//! For development and tests only. The seed is decrypted into this process's memory, so a
//! memory read or a core dump of the signer exposes it; production keys belong in an HSM
//! (`pkcs11`), where they never leave the device. The name says so, so that nobody configures
//! it by accident.
//!
//! # File format, version 1
//!
//! All integers big-endian; 142 bytes in total.
//!
//! | field | bytes |
//! |---|---|
//! | magic `CFDEVKEY` | 8 |
//! | format version, `1` | 1 |
//! | KDF id, `1` = Argon2id version 0x13 | 1 |
//! | Argon2 memory cost in KiB | 4 |
//! | Argon2 time cost (iterations) | 4 |
//! | Argon2 parallelism | 4 |
//! | salt, random | 16 |
//! | XChaCha20-Poly1305 nonce, random | 24 |
//! | Ed25519 public key | 32 |
//! | ciphertext of the 32-byte seed, then the 16-byte tag | 48 |
//!
//! The encryption key is Argon2id(passphrase, salt) with the stored costs. The first 94 bytes
//! (everything before the ciphertext) are the AEAD's associated data, so editing any header
//! field, including the costs and the public key, makes decryption fail.
//!
//! # Security
//!
//! A wrong passphrase and a modified file are indistinguishable by design (both fail the AEAD
//! tag). The decrypted seed lives only inside an `ed25519_dalek::SigningKey`, which wipes itself
//! on drop; intermediate buffers are `Zeroizing`; `Debug` shows only the public key. Files are
//! created with mode 0600 and refused when group or others may access them.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use clawfirst_core::Address;
use clawfirst_core::secret::SecretString;
use ed25519_dalek::{Signer, SigningKey};
use rand::RngCore;
use zeroize::Zeroizing;

use super::{BackendError, KeyBackend, verify_own_signature};

const MAGIC: &[u8; 8] = b"CFDEVKEY";
const VERSION: u8 = 1;
const KDF_ARGON2ID_13: u8 = 1;
const HEADER_LEN: usize = 94;
const FILE_LEN: usize = HEADER_LEN + 48;

/// Argon2id costs, stored in the file so they can be raised without a format change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// What `dangerous-dev-keygen` writes: 64 MiB, 3 passes, 1 lane (RFC 9106's second
    /// recommended setting, with one lane for a 2-core machine).
    pub const DEFAULT: KdfParams = KdfParams {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };

    /// Upper bounds accepted when reading a file, so that a crafted file cannot make the signer
    /// allocate unbounded memory or spin for hours at start.
    const MAX: KdfParams = KdfParams {
        memory_kib: 1024 * 1024,
        iterations: 64,
        parallelism: 16,
    };

    fn argon2(self) -> Result<Argon2<'static>, KeyfileError> {
        if self.memory_kib > Self::MAX.memory_kib
            || self.iterations > Self::MAX.iterations
            || self.parallelism > Self::MAX.parallelism
        {
            return Err(KeyfileError::KdfParams);
        }
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|_| KeyfileError::KdfParams)?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// Why a key file could not be created or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyfileError {
    /// Reading or writing the file failed.
    #[error("cannot access key file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// `dangerous-dev-keygen` never overwrites a key.
    #[error("key file {0} already exists; choose another path or remove it deliberately")]
    AlreadyExists(PathBuf),
    /// Group or others may read or write the file.
    #[error("key file {0} may be accessed by group or others; restrict it with chmod 600")]
    Permissions(PathBuf),
    /// Not a key file of this kind, or truncated, or with trailing bytes.
    #[error("not a clawfirst development key file")]
    Format,
    /// A format version or KDF this build does not know.
    #[error("unsupported key file version {version} or kdf {kdf}")]
    Unsupported {
        /// The file's version byte.
        version: u8,
        /// The file's KDF byte.
        kdf: u8,
    },
    /// The stored Argon2 costs are outside the accepted range.
    #[error("key file kdf parameters are out of range")]
    KdfParams,
    /// The AEAD tag did not verify.
    #[error("cannot decrypt the key file: wrong passphrase, or the file was modified")]
    Unlock,
    /// The decrypted seed does not belong to the stored public key.
    #[error("the key file's seed does not match its public key")]
    PublicKeyMismatch,
}

/// A development key loaded from an encrypted file.
pub struct DevKeyfileBackend {
    key: SigningKey,
    public_key: Address,
}

impl fmt::Debug for DevKeyfileBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevKeyfileBackend")
            .field("public_key", &self.public_key)
            .finish()
    }
}

impl DevKeyfileBackend {
    /// Reads and decrypts a key file.
    ///
    /// # Errors
    /// A [`KeyfileError`]; [`KeyfileError::Unlock`] for a wrong passphrase or a modified file.
    pub fn open(path: &Path, passphrase: &SecretString) -> Result<Self, KeyfileError> {
        let io = |source| KeyfileError::Io {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(KeyfileError::Permissions(path.to_owned()));
        }
        if meta.len() != FILE_LEN as u64 {
            return Err(KeyfileError::Format);
        }
        let bytes = Zeroizing::new(std::fs::read(path).map_err(io)?);
        Self::decrypt(&bytes, passphrase)
    }

    /// Decrypts key file bytes.
    ///
    /// # Errors
    /// As for [`DevKeyfileBackend::open`].
    pub fn decrypt(bytes: &[u8], passphrase: &SecretString) -> Result<Self, KeyfileError> {
        if bytes.len() != FILE_LEN || &bytes[..8] != MAGIC {
            return Err(KeyfileError::Format);
        }
        let (version, kdf) = (bytes[8], bytes[9]);
        if version != VERSION || kdf != KDF_ARGON2ID_13 {
            return Err(KeyfileError::Unsupported { version, kdf });
        }
        let params = KdfParams {
            memory_kib: be_u32(&bytes[10..14]),
            iterations: be_u32(&bytes[14..18]),
            parallelism: be_u32(&bytes[18..22]),
        };
        let salt = &bytes[22..38];
        let nonce = XNonce::from_slice(&bytes[38..62]);
        let mut stored_public = [0u8; 32];
        stored_public.copy_from_slice(&bytes[62..94]);

        let cipher = derive_cipher(params, passphrase, salt)?;
        let payload = Payload {
            msg: &bytes[HEADER_LEN..],
            aad: &bytes[..HEADER_LEN],
        };
        let seed = Zeroizing::new(
            cipher
                .decrypt(nonce, payload)
                .map_err(|_| KeyfileError::Unlock)?,
        );
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
            seed.as_slice()
                .try_into()
                .map_err(|_| KeyfileError::Format)?,
        );

        let key = SigningKey::from_bytes(&seed);
        let public_key = Address::new(key.verifying_key().to_bytes());
        if public_key.to_bytes() != stored_public {
            return Err(KeyfileError::PublicKeyMismatch);
        }
        Ok(Self { key, public_key })
    }
}

impl KeyBackend for DevKeyfileBackend {
    fn public_key(&self) -> Address {
        self.public_key
    }

    fn kind(&self) -> &'static str {
        "dangerous_dev_keyfile"
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64], BackendError> {
        let signature = self.key.sign(message).to_bytes();
        verify_own_signature(&self.public_key, message, &signature)?;
        Ok(signature)
    }
}

/// Creates a new key file at `out` with a fresh random seed and returns its public key.
///
/// The file is created exclusively (an existing file is never overwritten) with mode 0600,
/// written whole and synced; on any failure the partial file is removed.
///
/// # Errors
/// [`KeyfileError::AlreadyExists`], [`KeyfileError::Io`] or [`KeyfileError::KdfParams`].
pub fn generate(
    out: &Path,
    passphrase: &SecretString,
    params: KdfParams,
) -> Result<Address, KeyfileError> {
    // Claim the path first, so an existing key is refused before any work is done.
    let io = |source| KeyfileError::Io {
        path: out.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => KeyfileError::AlreadyExists(out.to_owned()),
            _ => io(e),
        })?;

    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(seed.as_mut_slice());
    let public_key = Address::new(SigningKey::from_bytes(&seed).verifying_key().to_bytes());
    let written = encrypt(&seed, &public_key, passphrase, params).and_then(|bytes| {
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(io)
    });
    if let Err(e) = written {
        drop(file);
        // Best effort: a partial key file is useless and must not be mistaken for a key.
        let _ = std::fs::remove_file(out);
        return Err(e);
    }
    Ok(public_key)
}

/// Encrypts a seed into the version 1 file format.
///
/// # Errors
/// [`KeyfileError::KdfParams`] when the costs are out of range.
pub fn encrypt(
    seed: &[u8; 32],
    public_key: &Address,
    passphrase: &SecretString,
    params: KdfParams,
) -> Result<Vec<u8>, KeyfileError> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    rand::rngs::OsRng.fill_bytes(&mut nonce);

    let mut out = Vec::with_capacity(FILE_LEN);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(KDF_ARGON2ID_13);
    out.extend_from_slice(&params.memory_kib.to_be_bytes());
    out.extend_from_slice(&params.iterations.to_be_bytes());
    out.extend_from_slice(&params.parallelism.to_be_bytes());
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(public_key.as_bytes());

    let cipher = derive_cipher(params, passphrase, &salt)?;
    let payload = Payload {
        msg: seed.as_slice(),
        aad: &out,
    };
    let sealed = cipher
        .encrypt(XNonce::from_slice(&nonce), payload)
        .map_err(|_| KeyfileError::Format)?;
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn derive_cipher(
    params: KdfParams,
    passphrase: &SecretString,
    salt: &[u8],
) -> Result<XChaCha20Poly1305, KeyfileError> {
    let mut key = Zeroizing::new([0u8; 32]);
    params
        .argon2()?
        .hash_password_into(passphrase.expose().as_bytes(), salt, key.as_mut_slice())
        .map_err(|_| KeyfileError::KdfParams)?;
    Ok(XChaCha20Poly1305::new(key.as_slice().into()))
}

fn be_u32(bytes: &[u8]) -> u32 {
    let mut out = [0u8; 4];
    out.copy_from_slice(bytes);
    u32::from_be_bytes(out)
}
