//! Enrollment: the installer parameters buy a per-agent credential
//! (`POST {SERVER_URL}/api/v1/enroll`), and the agent pins the catalog root
//! and the tenant's assignment key it receives.
//!
//! What is stored in the state directory (0700):
//!
//! ```text
//! system_id             the SystemID (0600); kept once the server may have recorded it
//! credential            the agent credential, `upda_…` (0600)
//! assignment_key.json   the tenant's assignment-signing key {keyid, key} (0600)
//! metadata/root.json    the pinned catalog root (0644), for the TUF client
//! enrollment.json       agent id, tenant, server URL, … (0600); written last:
//!                       its presence means "enrolled"
//! ```
//!
//! Nothing of the answer is stored unless all of it checks out: the root must
//! be a TUF root signed by its own threshold of root keys (and chain from the
//! pinned or fingerprinted one), the catalog targets verified from it must
//! endorse the assignment key, and the answer must be for our tenant and
//! SystemID.

use std::path::{Path, PathBuf};
use std::time::Duration;

use catalog::protocol::{AssignmentKey, CatalogRootRef, EnrollRequest, EnrollResponse};
use catalog::tuf::{
    root_fingerprint, verify_next_root, verify_self_signed_root, Root, Signed, TufError,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::InstallerParams;
use crate::fsutil::{self, PRIVATE, PUBLIC};
use crate::identity::{IdentityError, SystemId};

/// The enrollment record's file name.
pub const ENROLLMENT_FILE: &str = "enrollment.json";
/// The credential's file name.
pub const CREDENTIAL_FILE: &str = "credential";
/// The assignment key's file name.
pub const ASSIGNMENT_KEY_FILE: &str = "assignment_key.json";
/// The pinned root, relative to the state directory.
pub const ROOT_FILE: &str = "metadata/root.json";

/// Why enrollment failed.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// No connection to the server.
    #[error("cannot reach the server at {url}: {source}")]
    Unreachable {
        /// The enrollment URL.
        url: String,
        /// The HTTP client's error.
        source: reqwest::Error,
    },
    /// The server refused the tenant id / token pair.
    #[error("the server refused the enrollment token for tenant {tenant} (invalid_enrollment_token): check TENANT_ID and TENANT_TOKEN; a lost or revoked token is replaced with `updater-server tenant rotate-token`")]
    InvalidToken {
        /// The tenant id sent.
        tenant: String,
    },
    /// The server answered with another error.
    #[error("the server answered {status}: {code}: {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The error code (`{"code": …}`), or empty.
        code: String,
        /// The message.
        message: String,
    },
    /// The answer is not an enrollment answer for this agent.
    #[error("unexpected answer from the server: {0}")]
    BadResponse(String),
    /// The catalog root does not verify.
    #[error("the catalog root sent by the server does not verify, nothing was stored: {0}")]
    RootInvalid(#[source] TufError),
    /// The catalog root does not come from the trusted one: not the pinned
    /// first root, or not reached from the pinned root by signed rotations.
    #[error("the catalog root sent by the server is not trusted, nothing was stored: {0}")]
    RootNotTrusted(String),
    /// The catalog metadata does not refresh from the trusted root.
    #[error("the catalog metadata does not verify from the trusted root, nothing was stored: {0}")]
    Metadata(#[source] TufError),
    /// The catalog's signed targets do not vouch for the assignment key.
    #[error(
        "the tenant's assignment key sent by the server is not trusted, nothing was stored: {0}"
    )]
    KeyNotEndorsed(#[source] catalog::assignment::EndorsementError),
    /// The SystemID cannot be read or kept.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// A local file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The TLS client could not be set up.
    #[error("TLS settings: {0}")]
    TlsSetup(String),
    /// The extra CA certificate is unusable.
    #[error("CA certificate {path}: {why}")]
    CaCert {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

/// What the agent keeps about its enrollment (`enrollment.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    /// The agent id the server gave.
    pub agent_id: String,
    /// The tenant.
    pub tenant: String,
    /// The server's base URL.
    pub server_url: String,
    /// The SystemID enrolled.
    pub system_id: String,
    /// The machine fingerprint sent.
    pub machine_fingerprint: String,
    /// Host name sent.
    pub hostname: String,
    /// OS sent.
    pub os: String,
    /// First enrollment of this agent (server time).
    pub enrolled_at: DateTime<Utc>,
    /// When the stored credential was issued.
    pub credential_issued_at: DateTime<Utc>,
    /// The server suspects this host is a clone of another agent.
    pub suspected_clone: bool,
    /// Which agent.
    pub clone_of: Option<String>,
    /// The last enrollment was a re-enrollment.
    pub reenrolled: bool,
    /// The catalog root the server published at enrollment.
    pub catalog_root: CatalogRootRef,
    /// The version of the root pinned in `metadata/root.json` at enrollment.
    pub pinned_root_version: u64,
    /// Key id of the tenant's assignment key.
    pub assignment_key_id: String,
    /// The catalog targets version that endorsed the assignment key.
    #[serde(default)]
    pub endorsed_in_targets: u64,
}

/// Everything `enroll` needs besides the state directory.
#[derive(Debug, Clone)]
pub struct EnrollOptions {
    /// Tenant, server, token.
    pub params: InstallerParams,
    /// An extra trusted certificate (PEM) for the server's TLS.
    pub ca_cert: Option<PathBuf>,
    /// The machine fingerprint to send.
    pub machine_fingerprint: String,
    /// Host name to send.
    pub hostname: String,
    /// OS to send.
    pub os: String,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> EnrollError + '_ {
    move |source| EnrollError::Io {
        path: path.to_owned(),
        source,
    }
}

fn client_builder() -> reqwest::blocking::ClientBuilder {
    reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("update-agent/", env!("CARGO_PKG_VERSION")))
}

/// The HTTP client of an enrollment: [`http_client`], or with the
/// installer's `SERVER_CERT_SHA256` a client that also requires the
/// server's certificate to be that one (see [`pin`]).
fn enrollment_client(
    ca_cert: Option<&Path>,
    pin: Option<&str>,
) -> Result<reqwest::blocking::Client, EnrollError> {
    let Some(pin) = pin else {
        return http_client(ca_cert);
    };
    client_builder()
        .use_preconfigured_tls(pin::pinned_tls(ca_cert, pin)?)
        .build()
        .map_err(|e| EnrollError::TlsSetup(format!("building the HTTP client: {e}")))
}

/// The HTTP client for the agent's API calls (ring-based rustls; an extra
/// trusted certificate if configured).
pub fn http_client(ca_cert: Option<&Path>) -> Result<reqwest::blocking::Client, EnrollError> {
    let mut builder = client_builder();
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path).map_err(io_err(path))?;
        let ca_err = |e: reqwest::Error| EnrollError::CaCert {
            path: path.to_owned(),
            why: e.to_string(),
        };
        for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(ca_err)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| EnrollError::CaCert {
        path: ca_cert.map(Path::to_owned).unwrap_or_default(),
        why: format!("building the HTTP client: {e}"),
    })
}

/// Checks that `root` is a TUF root signed by its own threshold of root keys;
/// returns it with the bytes to store.
pub fn verify_root(root: &serde_json::Value) -> Result<(Signed<Root>, Vec<u8>), EnrollError> {
    let bytes = serde_json::to_vec(root).map_err(|e| EnrollError::BadResponse(e.to_string()))?;
    let signed = verify_self_signed_root("root", &bytes).map_err(EnrollError::RootInvalid)?;
    let file = signed.to_json_bytes().map_err(EnrollError::RootInvalid)?;
    Ok((signed, file))
}

/// Largest root file fetched while chaining.
const ROOT_MAX_LEN: u64 = 512_000;

/// The server's `N.root.json`.
fn fetch_root(
    client: &reqwest::blocking::Client,
    server_url: &str,
    version: u64,
) -> Result<Vec<u8>, EnrollError> {
    use catalog::tuf::Fetcher as _;
    let url = format!("{server_url}/repo/metadata/{version}.root.json");
    crate::fetch::HttpFetcher::with_client(client.clone())
        .fetch(&url, ROOT_MAX_LEN)
        .map_err(|e| EnrollError::RootNotTrusted(format!("fetching root v{version}: {e}")))
}

/// Where the root trusted before the server's answer comes from.
enum Anchor {
    /// `metadata/root.json`: pinned by an earlier enrollment, and moved on
    /// by the TUF client as it followed rotations.
    Pinned(Signed<Root>),
    /// The server's first root, matching the installer's fingerprint.
    Fingerprint(Signed<Root>),
}

/// The root to trust before the server's answer: the pinned one of an
/// earlier enrollment, else the first root matching the installer's
/// fingerprint, else none (the first enrollment trusts the answer).
fn trust_anchor(
    state_dir: &Path,
    opts: &EnrollOptions,
    client: &reqwest::blocking::Client,
) -> Result<Option<Anchor>, EnrollError> {
    let path = state_dir.join(ROOT_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            return verify_self_signed_root("pinned root", &bytes)
                .map(|r| Some(Anchor::Pinned(r)))
                .map_err(EnrollError::RootInvalid)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&path)(e)),
    }
    let Some(pin) = &opts.params.catalog_root_sha256 else {
        return Ok(None);
    };
    let bytes = fetch_root(client, &opts.params.server_url, 1)?;
    let first = verify_self_signed_root("root v1", &bytes).map_err(EnrollError::RootInvalid)?;
    let found = root_fingerprint(&first);
    if &found != pin || first.signed.version != 1 {
        return Err(EnrollError::RootNotTrusted(format!(
            "the server's first root has fingerprint {found}, the installer pins {pin}"
        )));
    }
    Ok(Some(Anchor::Fingerprint(first)))
}

/// Walks the signed rotations from `anchor` to the answered root's version
/// and requires that they reach exactly the answered root. An answer older
/// than the anchor keeps the anchor (the TUF client may have followed
/// rotations past what the server hands out here).
fn chain_to(
    anchor: Signed<Root>,
    answered: Signed<Root>,
    client: &reqwest::blocking::Client,
    server_url: &str,
) -> Result<Signed<Root>, EnrollError> {
    let mut trusted = anchor;
    while trusted.signed.version < answered.signed.version {
        let v = trusted.signed.version + 1;
        let bytes = fetch_root(client, server_url, v)?;
        trusted = verify_next_root(&trusted.signed, &bytes).map_err(|e| {
            EnrollError::RootNotTrusted(format!(
                "root v{v} does not chain from v{}: {e}",
                trusted.signed.version
            ))
        })?;
    }
    if trusted.signed.version == answered.signed.version
        && trusted.canonical_signed() != answered.canonical_signed()
    {
        return Err(EnrollError::RootNotTrusted(format!(
            "the answered root v{} is not the one reached from the trusted root",
            answered.signed.version
        )));
    }
    Ok(trusted)
}

/// Enrolls this host (or re-enrolls it: same SystemID, new credential) and
/// stores the result in `state_dir`; `now` judges the catalog metadata's
/// expiry.
pub fn enroll(
    state_dir: &Path,
    opts: &EnrollOptions,
    now: DateTime<Utc>,
) -> Result<Enrollment, EnrollError> {
    let stored = SystemId::load(state_dir)?;
    let fresh = stored.is_none();
    let system_id = stored.unwrap_or_else(SystemId::generate);
    // Keeps a new SystemID once the server may have recorded it, so a retry
    // re-enrolls the same agent instead of creating another.
    let keep_id = |id: &SystemId| if fresh { id.store(state_dir) } else { Ok(()) };

    let client = enrollment_client(
        opts.ca_cert.as_deref(),
        opts.params.server_cert_sha256.as_deref(),
    )?;
    let url = format!("{}/api/v1/enroll", opts.params.server_url);
    let request = EnrollRequest {
        tenant: opts.params.tenant_id.clone(),
        token: opts.params.tenant_token.clone(),
        system_id: system_id.to_string(),
        machine_fingerprint: opts.machine_fingerprint.clone(),
        hostname: opts.hostname.clone(),
        os: opts.os.clone(),
    };
    let body = serde_json::to_vec(&request).map_err(|e| EnrollError::BadResponse(e.to_string()))?;
    let sent = client
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send();
    let response = match sent {
        Ok(r) => r,
        Err(source) => {
            if !source.is_connect() {
                keep_id(&system_id)?;
            }
            return Err(EnrollError::Unreachable { url, source });
        }
    };
    let status = response.status();
    let bytes = response.bytes().map_err(|source| EnrollError::Unreachable {
        url: url.clone(),
        source,
    });
    if !status.is_success() {
        if status.is_server_error() {
            keep_id(&system_id)?;
        }
        return Err(rejection(
            status.as_u16(),
            &bytes.unwrap_or_default(),
            &request,
        ));
    }
    keep_id(&system_id)?;
    let answer: EnrollResponse =
        serde_json::from_slice(&bytes?).map_err(|e| EnrollError::BadResponse(format!("{e}")))?;
    store(state_dir, opts, &system_id, answer, &client, now)
}

fn rejection(status: u16, body: &[u8], request: &EnrollRequest) -> EnrollError {
    #[derive(Deserialize)]
    struct ApiError {
        code: String,
        message: String,
    }
    match serde_json::from_slice::<ApiError>(body) {
        Ok(e) if status == 401 && e.code == "invalid_enrollment_token" => {
            EnrollError::InvalidToken {
                tenant: request.tenant.clone(),
            }
        }
        Ok(e) => EnrollError::Rejected {
            status,
            code: e.code,
            message: e.message,
        },
        Err(_) => EnrollError::Rejected {
            status,
            code: String::new(),
            message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        },
    }
}

fn store(
    state_dir: &Path,
    opts: &EnrollOptions,
    system_id: &SystemId,
    answer: EnrollResponse,
    client: &reqwest::blocking::Client,
    now: DateTime<Utc>,
) -> Result<Enrollment, EnrollError> {
    if answer.tenant != opts.params.tenant_id || answer.system_id != system_id.as_str() {
        return Err(EnrollError::BadResponse(format!(
            "answer for tenant {} / SystemID {}, not ours",
            answer.tenant, answer.system_id
        )));
    }
    let (root, _) = verify_root(&answer.root)?;
    if root.signed.version != answer.catalog_root.version {
        return Err(EnrollError::BadResponse(format!(
            "root version {} but the server says it publishes version {}",
            root.signed.version, answer.catalog_root.version
        )));
    }
    let (root, pinned_before) = match trust_anchor(state_dir, opts, client)? {
        Some(Anchor::Pinned(p)) => {
            let v = p.signed.version;
            (chain_to(p, root, client, &opts.params.server_url)?, Some(v))
        }
        Some(Anchor::Fingerprint(first)) => (
            chain_to(first, root, client, &opts.params.server_url)?,
            None,
        ),
        None => (root, None),
    };
    let root_file = root.to_json_bytes().map_err(EnrollError::RootInvalid)?;
    let key_id = answer
        .assignment_key
        .key
        .key_id()
        .map_err(|e| EnrollError::BadResponse(format!("assignment key: {e}")))?;
    if key_id != answer.assignment_key.keyid {
        return Err(EnrollError::BadResponse(format!(
            "assignment key id {} does not match its key ({key_id})",
            answer.assignment_key.keyid
        )));
    }
    let endorsed_in_targets = endorsement::check_key_endorsed(
        &state_dir.join("metadata"),
        &root_file,
        client,
        &opts.params.server_url,
        &answer.tenant,
        &answer.assignment_key.key,
        now,
    )?;

    fsutil::create_private_dir(state_dir).map_err(io_err(state_dir))?;
    let metadata = state_dir.join("metadata");
    std::fs::create_dir_all(&metadata).map_err(io_err(&metadata))?;
    let root_path = state_dir.join(ROOT_FILE);
    let pinned_root_version = root.signed.version;
    if pinned_before != Some(pinned_root_version) {
        fsutil::write_atomic(&root_path, &root_file, PUBLIC).map_err(io_err(&root_path))?;
    }
    let key = AssignmentKey {
        keyid: answer.assignment_key.keyid.clone(),
        key: answer.assignment_key.key.clone(),
    };
    write_json(&state_dir.join(ASSIGNMENT_KEY_FILE), &key)?;
    let cred_path = state_dir.join(CREDENTIAL_FILE);
    fsutil::write_atomic(&cred_path, answer.credential.as_bytes(), PRIVATE)
        .map_err(io_err(&cred_path))?;
    let enrollment = Enrollment {
        agent_id: answer.id,
        tenant: answer.tenant,
        server_url: opts.params.server_url.clone(),
        system_id: answer.system_id,
        machine_fingerprint: opts.machine_fingerprint.clone(),
        hostname: answer.hostname,
        os: answer.os,
        enrolled_at: answer.enrolled_at,
        credential_issued_at: answer.credential_issued_at,
        suspected_clone: answer.suspected_clone,
        clone_of: answer.clone_of,
        reenrolled: answer.reenrolled,
        catalog_root: answer.catalog_root,
        pinned_root_version,
        assignment_key_id: key.keyid,
        endorsed_in_targets,
    };
    write_json(&state_dir.join(ENROLLMENT_FILE), &enrollment)?;
    Ok(enrollment)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), EnrollError> {
    let mut bytes =
        serde_json::to_vec_pretty(value).map_err(|e| EnrollError::BadResponse(e.to_string()))?;
    bytes.push(b'\n');
    fsutil::write_atomic(path, &bytes, PRIVATE).map_err(io_err(path))
}

/// The stored enrollment, if this host is enrolled.
pub fn load(state_dir: &Path) -> Result<Option<Enrollment>, EnrollError> {
    let path = state_dir.join(ENROLLMENT_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| EnrollError::BadResponse(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// The stored agent credential.
pub fn credential(state_dir: &Path) -> Result<String, EnrollError> {
    let path = state_dir.join(CREDENTIAL_FILE);
    let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
    Ok(text.trim().to_owned())
}

/// The tenant's assignment-signing key pinned at enrollment.
pub fn assignment_key(state_dir: &Path) -> Result<catalog::tuf::PublicKey, EnrollError> {
    let path = state_dir.join(ASSIGNMENT_KEY_FILE);
    let bytes = std::fs::read(&path).map_err(io_err(&path))?;
    let bad = |why: String| EnrollError::BadResponse(format!("{}: {why}", path.display()));
    let stored: AssignmentKey = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    match stored.key.key_id() {
        Ok(id) if id == stored.keyid => Ok(stored.key),
        _ => Err(bad("the key id does not match the key".into())),
    }
}

mod endorsement;
mod pin;
#[cfg(test)]
mod tests;
