//! The development key file: unlocking, tampering, and secrets kept out of `Debug`.

use std::os::unix::fs::PermissionsExt;

use clawfirst_core::Address;
use clawfirst_core::secret::{SecretBytes, SecretString};
use clawfirst_signer::backend::KeyBackend;
use clawfirst_signer::backend::dangerous_dev_keyfile::{
    DevKeyfileBackend, KeyfileError, encrypt, generate,
};
use ed25519_dalek::SigningKey;

use crate::harness::{Error, PASSPHRASE, TEST_KDF, TestResult};

const SEED: [u8; 32] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];

fn passphrase() -> SecretString {
    SecretString::new(PASSPHRASE.to_owned())
}

fn sealed() -> Result<(Vec<u8>, Address), Error> {
    let public_key = Address::new(SigningKey::from_bytes(&SEED).verifying_key().to_bytes());
    Ok((
        encrypt(&SEED, &public_key, &passphrase(), TEST_KDF)?,
        public_key,
    ))
}

#[test]
fn the_right_passphrase_unlocks_a_working_key() -> TestResult {
    let (bytes, public_key) = sealed()?;
    assert_eq!(bytes.len(), 142);
    assert_eq!(&bytes[..8], b"CFDEVKEY");
    let backend = DevKeyfileBackend::decrypt(&bytes, &passphrase())?;
    assert_eq!(backend.public_key(), public_key);
    let signature = backend.sign(b"payload")?;
    let expected = ed25519_dalek::Signer::sign(&SigningKey::from_bytes(&SEED), b"payload");
    assert_eq!(signature, expected.to_bytes());
    Ok(())
}

#[test]
fn a_wrong_passphrase_is_refused_clearly() -> TestResult {
    let (bytes, _) = sealed()?;
    let wrong = SecretString::new("correct horse battery stapler".to_owned());
    let error = DevKeyfileBackend::decrypt(&bytes, &wrong)
        .err()
        .ok_or("unlocked")?;
    assert!(matches!(error, KeyfileError::Unlock));
    assert!(error.to_string().contains("wrong passphrase"), "{error}");
    Ok(())
}

#[test]
fn every_single_bit_of_tampering_is_refused() -> TestResult {
    let (bytes, _) = sealed()?;
    for index in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut tampered = bytes.clone();
            tampered[index] ^= bit;
            assert!(
                DevKeyfileBackend::decrypt(&tampered, &passphrase()).is_err(),
                "flipping bit {bit:#x} of byte {index} went unnoticed"
            );
        }
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        DevKeyfileBackend::decrypt(&longer, &passphrase()),
        Err(KeyfileError::Format)
    ));
    let shorter = &bytes[..bytes.len() - 1];
    assert!(matches!(
        DevKeyfileBackend::decrypt(shorter, &passphrase()),
        Err(KeyfileError::Format)
    ));
    Ok(())
}

#[test]
fn excessive_kdf_costs_in_a_file_are_refused_before_any_work() -> TestResult {
    let (mut bytes, _) = sealed()?;
    // Memory cost field: 4 GiB - 1 KiB.
    bytes[10..14].copy_from_slice(&u32::MAX.to_be_bytes());
    let result = DevKeyfileBackend::decrypt(&bytes, &passphrase());
    assert!(matches!(result, Err(KeyfileError::KdfParams)));
    Ok(())
}

#[test]
fn files_open_to_group_or_others_are_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("wallet.key");
    generate(&path, &passphrase(), TEST_KDF)?;
    assert!(DevKeyfileBackend::open(&path, &passphrase()).is_ok());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    let result = DevKeyfileBackend::open(&path, &passphrase());
    assert!(matches!(result, Err(KeyfileError::Permissions(_))));
    Ok(())
}

#[test]
fn generate_never_overwrites() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("wallet.key");
    std::fs::write(&path, b"precious")?;
    let result = generate(&path, &passphrase(), TEST_KDF);
    assert!(matches!(result, Err(KeyfileError::AlreadyExists(_))));
    assert_eq!(std::fs::read(&path)?, b"precious");
    Ok(())
}

/// Every way the seed could appear in text.
fn seed_renderings() -> Vec<String> {
    vec![
        hex::encode(SEED),
        hex::encode_upper(SEED),
        bs58::encode(SEED).into_string(),
        format!("{SEED:?}").trim_matches(['[', ']']).to_owned(),
        format!("{:?}", &SEED[..8])
            .trim_matches(['[', ']'])
            .to_owned(),
    ]
}

#[test]
fn debug_of_every_secret_bearing_type_omits_the_secret() -> TestResult {
    let (bytes, _) = sealed()?;
    let backend = DevKeyfileBackend::decrypt(&bytes, &passphrase())?;
    let wrong = DevKeyfileBackend::decrypt(&bytes, &SecretString::new("nope".to_owned()));
    let printed = [
        format!("{backend:?}"),
        format!("{backend:#?}"),
        format!("{:?}", passphrase()),
        format!("{:?}", SecretBytes::new(SEED.to_vec())),
        format!("{wrong:?}"),
    ]
    .join("\n");
    for rendering in seed_renderings() {
        assert!(
            !printed.contains(&rendering),
            "seed rendering {rendering} in {printed}"
        );
    }
    assert!(!printed.contains(PASSPHRASE), "{printed}");
    Ok(())
}
