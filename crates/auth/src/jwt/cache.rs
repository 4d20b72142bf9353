//! Loading and refreshing the key set, kept apart from the pure verifier.
//!
//! [`JwksCache`] holds the current [`JwtVerifier`] and replaces it when the key set is reloaded:
//! on a timer ([`JwksCacheSettings::refresh_interval`]) and when a token names an unknown `kid`
//! (an identity provider rotating keys), but then at most once per
//! [`JwksCacheSettings::unknown_kid_refetch_interval`], so a flood of made-up key ids cannot
//! turn into a flood of fetches. A failed reload keeps the last good key set and logs a
//! warning.
//!
//! # Security
//!
//! URLs must be https; the TLS client uses rustls on aws-lc-rs with Mozilla's roots (plus any
//! configured extra roots) and follows no redirects. Plain http exists only behind
//! [`JwksCacheSettings::dangerous_allow_http`], for tests. Responses above [`MAX_JWKS_BYTES`]
//! are refused.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::sync::Mutex;
use tracing::{debug, info, instrument, warn};

use super::jwks::{JwkSet, MAX_JWKS_BYTES};
use super::{JwtIdentity, JwtSettings, JwtVerifier};
use crate::error::{AuthError, SetupError};

/// Where the key set comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwksSource {
    /// A local file with a JWKS document.
    File(PathBuf),
    /// An https URL serving a JWKS document.
    Url(String),
}

/// How often the key set is reloaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwksCacheSettings {
    /// Reload after this long in any case. Default 5 minutes.
    pub refresh_interval: Duration,
    /// After a token with an unknown `kid`, reload at most this often. Default 30 seconds.
    pub unknown_kid_refetch_interval: Duration,
    /// Timeout of one fetch. Default 10 seconds.
    pub fetch_timeout: Duration,
    /// Certificates (PEM) trusted for the JWKS server in addition to Mozilla's roots, for an
    /// identity provider behind a private CA. Default none.
    pub extra_root_certificates_pem: Option<String>,
    /// Accept `http://` URLs. Never set outside tests: a key set fetched in clear text can be
    /// replaced by anyone on the path, who can then mint tokens for any agent.
    pub dangerous_allow_http: bool,
}

impl Default for JwksCacheSettings {
    fn default() -> Self {
        Self {
            refresh_interval: Duration::from_secs(300),
            unknown_kid_refetch_interval: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(10),
            extra_root_certificates_pem: None,
            dangerous_allow_http: false,
        }
    }
}

struct FetchState {
    loaded_at: Instant,
    last_unknown_kid_fetch: Option<Instant>,
}

/// A [`JwtVerifier`] whose key set is loaded from a [`JwksSource`] and kept fresh.
pub struct JwksCache {
    settings: JwtSettings,
    source: JwksSource,
    cache: JwksCacheSettings,
    client: Option<reqwest::Client>,
    current: RwLock<Arc<JwtVerifier>>,
    state: Mutex<FetchState>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("source", &self.source)
            .field("cache", &self.cache)
            .field("verifier", &self.verifier())
            .finish()
    }
}

impl JwksCache {
    /// Loads the key set once and builds the first verifier.
    ///
    /// # Errors
    /// Invalid settings, an insecure or unparsable URL, or a first load that fails: a server
    /// must not start with no keys.
    pub async fn load(
        settings: JwtSettings,
        source: JwksSource,
        cache: JwksCacheSettings,
    ) -> Result<Self, SetupError> {
        settings.validate()?;
        let client = match &source {
            JwksSource::File(_) => None,
            JwksSource::Url(url) => Some(http_client(url, &cache)?),
        };
        let keys = fetch(&source, client.as_ref()).await?;
        let verifier = JwtVerifier::new(settings.clone(), keys)?;
        Ok(Self {
            settings,
            source,
            cache,
            client,
            current: RwLock::new(Arc::new(verifier)),
            state: Mutex::new(FetchState {
                loaded_at: Instant::now(),
                last_unknown_kid_fetch: None,
            }),
        })
    }

    /// The current verifier.
    pub fn verifier(&self) -> Arc<JwtVerifier> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Reloads the key set now.
    ///
    /// # Errors
    /// The load failed; the previous key set stays in use.
    pub async fn refresh(&self) -> Result<(), SetupError> {
        let mut state = self.state.lock().await;
        self.reload(&mut state).await
    }

    /// Verifies a token, reloading the key set first when it is stale, and once more (rate
    /// limited) when the token names a key the set does not have.
    ///
    /// # Errors
    /// As [`JwtVerifier::verify`].
    #[instrument(skip_all, fields(auth.method = "jwt"))]
    pub async fn verify(&self, token: &str, now_s: u64) -> Result<JwtIdentity, AuthError> {
        // A stale set is reloaded by one caller; callers arriving meanwhile use the current
        // set rather than wait for the fetch.
        if let Ok(mut state) = self.state.try_lock()
            && state.loaded_at.elapsed() >= self.cache.refresh_interval
        {
            self.reload_or_warn(&mut state).await;
        }

        match self.verifier().verify(token, now_s) {
            Err(AuthError::JwtUnknownKid) => {}
            other => return other,
        }

        {
            let mut state = self.state.lock().await;
            let allowed = state
                .last_unknown_kid_fetch
                .is_none_or(|at| at.elapsed() >= self.cache.unknown_kid_refetch_interval);
            if !allowed {
                info!("unknown jwt key id; key set reloaded too recently to reload again");
                return Err(AuthError::JwtUnknownKid);
            }
            state.last_unknown_kid_fetch = Some(Instant::now());
            self.reload_or_warn(&mut state).await;
        }
        self.verifier().verify(token, now_s)
    }

    async fn reload_or_warn(&self, state: &mut FetchState) {
        if let Err(error) = self.reload(state).await {
            warn!(error = %error, "jwks reload failed; keeping the previous key set");
        }
    }

    async fn reload(&self, state: &mut FetchState) -> Result<(), SetupError> {
        // Count an attempt as a load, so a failing source is retried at the refresh interval
        // and not on every request.
        state.loaded_at = Instant::now();
        let keys = fetch(&self.source, self.client.as_ref()).await?;
        debug!(
            jwks.keys = keys.len(),
            jwks.ignored = keys.ignored().len(),
            "jwks loaded"
        );
        let verifier = JwtVerifier::new(self.settings.clone(), keys)?;
        match self.current.write() {
            Ok(mut guard) => *guard = Arc::new(verifier),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(verifier),
        }
        Ok(())
    }
}

fn http_client(url: &str, cache: &JwksCacheSettings) -> Result<reqwest::Client, SetupError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| SetupError::JwksInsecureUrl)?;
    let scheme_ok =
        parsed.scheme() == "https" || (cache.dangerous_allow_http && parsed.scheme() == "http");
    if !scheme_ok || parsed.host_str().is_none() {
        return Err(SetupError::JwksInsecureUrl);
    }

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = &cache.extra_root_certificates_pem {
        let mut added = 0usize;
        for der in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let der = der.map_err(|_| SetupError::Pem)?;
            roots.add(der).map_err(|_| SetupError::Pem)?;
            added += 1;
        }
        if added == 0 {
            return Err(SetupError::Pem);
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError::JwksClient(Box::new(e)))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .https_only(!cache.dangerous_allow_http)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(cache.fetch_timeout)
        .build()
        .map_err(|e| SetupError::JwksClient(Box::new(e)))
}

async fn fetch(
    source: &JwksSource,
    client: Option<&reqwest::Client>,
) -> Result<JwkSet, SetupError> {
    let text = match (source, client) {
        (JwksSource::File(path), _) => read_file(path).await?,
        (JwksSource::Url(url), Some(client)) => fetch_url(client, url).await?,
        (JwksSource::Url(_), None) => return Err(SetupError::JwksInsecureUrl),
    };
    JwkSet::from_json(&text)
}

async fn read_file(path: &PathBuf) -> Result<String, SetupError> {
    let metadata = tokio::fs::metadata(path)
        .await
        .map_err(SetupError::JwksRead)?;
    if metadata.len() > MAX_JWKS_BYTES as u64 {
        return Err(SetupError::JwksTooLarge);
    }
    tokio::fs::read_to_string(path)
        .await
        .map_err(SetupError::JwksRead)
}

async fn fetch_url(client: &reqwest::Client, url: &str) -> Result<String, SetupError> {
    let mut response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(SetupError::JwksFetch)?;
    if !response.status().is_success() {
        return Err(SetupError::JwksStatus(response.status().as_u16()));
    }
    if response
        .content_length()
        .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
    {
        return Err(SetupError::JwksTooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(SetupError::JwksFetch)? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(SetupError::JwksTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| SetupError::JwksMalformed(None))
}
