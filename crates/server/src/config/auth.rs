//! The `[auth]` section: how agents authenticate on HTTP besides API keys.
//!
//! ```toml
//! [auth]
//! delegation_key_file = "delegation.key"   # signs the delegation tokens ClawFirst issues
//!
//! [auth.jwt]                               # optional: JWT bearer tokens from an identity provider
//! issuers = ["https://idp.example.com"]
//! audience = "clawfirst"
//! algorithms = ["EdDSA"]                   # EdDSA, ES256, RS256; default all three
//! agent_claim = "sub"                      # the claim holding the agent id
//! leeway_seconds = 30                      # for exp and nbf; at most 300
//! jwks_file = "jwks.json"                  # or jwks_url = "https://idp.example.com/jwks"
//! refresh_seconds = 300                    # how often a jwks_url is fetched again
//! ```
//!
//! | key | default | security consequence |
//! |---|---|---|
//! | `delegation_key_file` | `delegation.key` | whoever holds it can mint tokens for any agent |
//! | `jwt.*` | off | an identity provider's signing keys then admit agents |

use std::path::{Path, PathBuf};
use std::time::Duration;

use clawfirst_auth::jwt::{JwksCacheSettings, JwksSource, JwtAlgorithm, JwtSettings};
use serde::Deserialize;

use super::{ConfigError, invalid};

/// The section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    delegation_key_file: Option<PathBuf>,
    jwt: Option<RawJwt>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwt {
    issuers: Vec<String>,
    audience: String,
    algorithms: Option<Vec<String>>,
    agent_claim: Option<String>,
    leeway_seconds: Option<u64>,
    jwks_file: Option<PathBuf>,
    jwks_url: Option<String>,
    refresh_seconds: Option<u64>,
}

/// JWT bearer authentication, checked.
#[derive(Clone, Debug)]
pub struct JwtConfig {
    /// What a token must say.
    pub settings: JwtSettings,
    /// Where the keys come from.
    pub source: JwksSource,
    /// How a URL source is refreshed.
    pub cache: JwksCacheSettings,
}

/// The checked `[auth]` section.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// The delegation token key file.
    pub delegation_key_file: PathBuf,
    /// JWT bearer tokens, if enabled.
    pub jwt: Option<JwtConfig>,
}

/// Checks the section, resolving paths against `base`.
pub(super) fn build(raw: RawAuth, base: &Path) -> Result<AuthConfig, ConfigError> {
    let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
    let delegation_key_file = resolve(
        raw.delegation_key_file
            .unwrap_or_else(|| PathBuf::from("delegation.key")),
    );
    let jwt = match raw.jwt {
        None => None,
        Some(jwt) => {
            let mut settings = JwtSettings::new(jwt.issuers, jwt.audience);
            if let Some(names) = jwt.algorithms {
                settings.algorithms = names
                    .iter()
                    .map(|n| {
                        JwtAlgorithm::from_name(n).ok_or_else(|| {
                            invalid(
                                "auth.jwt.algorithms",
                                format!("{n:?} is not one of EdDSA, ES256, RS256"),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?;
            }
            if let Some(claim) = jwt.agent_claim {
                settings.agent_claim = claim;
            }
            if let Some(leeway) = jwt.leeway_seconds {
                settings.leeway_seconds = leeway;
            }
            settings.validate().map_err(|e| invalid("auth.jwt", e))?;
            let source = match (jwt.jwks_file, jwt.jwks_url) {
                (Some(file), None) => JwksSource::File(resolve(file)),
                (None, Some(url)) if url.starts_with("https://") => JwksSource::Url(url),
                (None, Some(_)) => {
                    return Err(invalid("auth.jwt.jwks_url", "must be an https URL"));
                }
                _ => {
                    return Err(invalid(
                        "auth.jwt",
                        "set exactly one of jwks_file and jwks_url",
                    ));
                }
            };
            let mut cache = JwksCacheSettings::default();
            if let Some(seconds) = jwt.refresh_seconds {
                if !(10..=86_400).contains(&seconds) {
                    return Err(invalid(
                        "auth.jwt.refresh_seconds",
                        "must be between 10 and 86400",
                    ));
                }
                cache.refresh_interval = Duration::from_secs(seconds);
            }
            Some(JwtConfig {
                settings,
                source,
                cache,
            })
        }
    };
    Ok(AuthConfig {
        delegation_key_file,
        jwt,
    })
}
