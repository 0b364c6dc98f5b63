//! The admin's side of the demo, over the same HTTP API an IT department uses.

use anyhow::{bail, Context};
use serde_json::Value;

/// A logged-in admin of one tenant.
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: reqwest::blocking::Client,
    base: String,
    tenant: String,
    token: String,
}

impl AdminClient {
    /// Logs in with `email` / `password`.
    pub fn login(base: &str, tenant: &str, email: &str, password: &str) -> anyhow::Result<Self> {
        let http = reqwest::blocking::Client::new();
        let resp = http
            .post(format!("{base}/api/v1/login"))
            .header("content-type", "application/json")
            .body(
                serde_json::json!({"tenant": tenant, "email": email, "password": password})
                    .to_string(),
            )
            .send()
            .context("logging in")?;
        let status = resp.status();
        let body: Value =
            serde_json::from_slice(&resp.bytes()?).context("reading the login answer")?;
        if !status.is_success() {
            bail!("login refused ({status}): {body}");
        }
        let token = body["token"]
            .as_str()
            .with_context(|| format!("no token in the login answer {body}"))?
            .to_owned();
        Ok(Self {
            http,
            base: base.to_owned(),
            tenant: tenant.to_owned(),
            token,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1/tenants/{}/{path}", self.base, self.tenant)
    }

    fn answer(resp: reqwest::blocking::Response, what: &str) -> anyhow::Result<Value> {
        let status = resp.status();
        let bytes = resp.bytes()?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{what}: {status} {}", String::from_utf8_lossy(&bytes));
        }
        Ok(body)
    }

    /// `GET /api/v1/tenants/{t}/{path}` as JSON.
    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()?;
        Self::answer(resp, &format!("GET {path}"))
    }

    /// `GET …/{path}` as text (CSV reports).
    pub fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()?;
        let status = resp.status();
        let text = resp.text()?;
        if !status.is_success() {
            bail!("GET {path}: {status} {text}");
        }
        Ok(text)
    }

    /// `POST …/{path}` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()?;
        Self::answer(resp, &format!("POST {path}"))
    }

    /// `PUT …/{path}` with a JSON body.
    pub fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let resp = self
            .http
            .put(self.url(path))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()?;
        Self::answer(resp, &format!("PUT {path}"))
    }
}
