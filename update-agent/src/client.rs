//! The agent's side of the server conversation after enrollment:
//! `POST {server}/api/v1/agents/{agent}/checkin` (with `If-None-Match`) and
//! `POST {server}/api/v1/agents/{agent}/events`, both with the agent
//! credential as a bearer token.

use std::path::Path;

use catalog::checkin::{CheckIn, CheckInResponse};
use catalog::events::{EventAck, EventBatch};
use reqwest::header::{AUTHORIZATION, ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;

use crate::enroll::{self, EnrollError, Enrollment};

/// Why a request to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection (or no complete answer).
    #[error("cannot reach the server at {url}: {message}")]
    Unreachable {
        /// The URL.
        url: String,
        /// The HTTP client's message.
        message: String,
    },
    /// 401: the credential is unknown, revoked or replaced.
    #[error("agent credential rejected; re-enroll (`update-agent enroll`)")]
    CredentialRejected,
    /// Another error status.
    #[error("the server answered {status} to {url}: {body}")]
    Rejected {
        /// The URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The answer does not decode.
    #[error("unexpected answer from {url}: {why}")]
    BadResponse {
        /// The URL.
        url: String,
        /// Why.
        why: String,
    },
    /// The agent is not enrolled or its files are unreadable.
    #[error(transparent)]
    Enrollment(#[from] EnrollError),
    /// Not enrolled.
    #[error("not enrolled: run `update-agent enroll` first")]
    NotEnrolled,
}

/// What a check-in answered.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckInAnswer {
    /// 304: the assignments did not change since the ETag sent.
    NotModified,
    /// 200: the (unverified) answer and its ETag.
    New {
        /// The answer.
        response: CheckInResponse,
        /// Its ETag.
        etag: Option<String>,
    },
}

/// An authenticated client for one enrolled agent.
#[derive(Debug, Clone)]
pub struct ServerClient {
    http: reqwest::blocking::Client,
    server_url: String,
    agent: String,
    credential: String,
}

const MAX_ANSWER: usize = 4 * 1024 * 1024;

impl ServerClient {
    /// A client for the agent enrolled in `state_dir`.
    pub fn from_state_dir(state_dir: &Path, ca_cert: Option<&Path>) -> Result<Self, ClientError> {
        Self::from_state_dir_with(state_dir, enroll::http_client(ca_cert)?)
    }

    /// A client for the agent enrolled in `state_dir`, over `http`.
    pub fn from_state_dir_with(
        state_dir: &Path,
        http: reqwest::blocking::Client,
    ) -> Result<Self, ClientError> {
        let enrollment: Enrollment = enroll::load(state_dir)?.ok_or(ClientError::NotEnrolled)?;
        let credential = enroll::credential(state_dir)?;
        Ok(Self::new(
            http,
            &enrollment.server_url,
            &enrollment.agent_id,
            &credential,
        ))
    }

    /// A client from its parts.
    pub fn new(
        http: reqwest::blocking::Client,
        server_url: &str,
        agent: &str,
        credential: &str,
    ) -> Self {
        Self {
            http,
            server_url: server_url.trim_end_matches('/').to_owned(),
            agent: agent.to_owned(),
            credential: credential.to_owned(),
        }
    }

    /// The server's base URL (no trailing slash).
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// The agent id.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// The HTTP client (its TLS settings serve the repository downloads too).
    pub fn http(&self) -> &reqwest::blocking::Client {
        &self.http
    }

    fn url(&self, what: &str) -> String {
        format!("{}/api/v1/agents/{}/{what}", self.server_url, self.agent)
    }

    fn post(
        &self,
        url: &str,
        body: Vec<u8>,
        etag: Option<&str>,
    ) -> Result<(StatusCode, Option<String>, Vec<u8>), ClientError> {
        // reqwest's own message names only the URL; the cause (refused,
        // timed out, TLS) is in its source chain.
        let unreachable = |e: reqwest::Error| ClientError::Unreachable {
            url: url.to_owned(),
            message: error_report::chain(&e),
        };
        let mut req = self
            .http
            .post(url)
            .header(AUTHORIZATION, format!("Bearer {}", self.credential))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(tag) = etag {
            req = req.header(IF_NONE_MATCH, tag);
        }
        let resp = req.send().map_err(unreachable)?;
        let status = resp.status();
        let etag = resp
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if resp.content_length().is_some_and(|n| n > MAX_ANSWER as u64) {
            return Err(ClientError::BadResponse {
                url: url.to_owned(),
                why: "answer too large".into(),
            });
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(resp, MAX_ANSWER as u64 + 1),
            &mut bytes,
        )
        .map_err(|e| ClientError::Unreachable {
            url: url.to_owned(),
            message: e.to_string(),
        })?;
        if status == StatusCode::UNAUTHORIZED {
            return Err(ClientError::CredentialRejected);
        }
        Ok((status, etag, bytes))
    }

    fn rejected(url: &str, status: StatusCode, body: &[u8]) -> ClientError {
        let text = String::from_utf8_lossy(body);
        ClientError::Rejected {
            url: url.to_owned(),
            status: status.as_u16(),
            body: text.chars().take(300).collect(),
        }
    }

    /// One check-in. The assignment document in the answer is NOT verified here.
    pub fn check_in(
        &self,
        body: &CheckIn,
        etag: Option<&str>,
    ) -> Result<CheckInAnswer, ClientError> {
        let url = self.url("checkin");
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let (status, new_etag, answer) = self.post(&url, bytes, etag)?;
        if status == StatusCode::NOT_MODIFIED {
            return Ok(CheckInAnswer::NotModified);
        }
        if status != StatusCode::OK {
            return Err(Self::rejected(&url, status, &answer));
        }
        let response = serde_json::from_slice(&answer).map_err(|e| ClientError::BadResponse {
            url: url.clone(),
            why: e.to_string(),
        })?;
        Ok(CheckInAnswer::New {
            response,
            etag: new_etag,
        })
    }

    /// Sends one batch; `None` when the server has no events endpoint (404).
    pub fn send_events(&self, batch: &EventBatch) -> Result<Option<EventAck>, ClientError> {
        let url = self.url("events");
        let bytes = serde_json::to_vec(batch).unwrap_or_default();
        let (status, _, answer) = self.post(&url, bytes, None)?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(Self::rejected(&url, status, &answer));
        }
        serde_json::from_slice(&answer)
            .map(Some)
            .map_err(|e| ClientError::BadResponse {
                url,
                why: e.to_string(),
            })
    }
}
