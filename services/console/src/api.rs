//! The public API as the console calls it for a signed-in admin: with their token, so the API's
//! own checks (role, tenant) decide what they see and do; the console adds none of its own.

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// What went wrong with a call, as a page shows it.
#[derive(Debug, thiserror::Error)]
pub enum ApiFailure {
    /// The API answered with an error: its status and message.
    #[error("{message}")]
    Refused { status: StatusCode, message: String },
    #[error("the API could not be reached: {0}")]
    Unreachable(String),
}

impl ApiFailure {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiFailure::Refused { status, .. } => *status,
            ApiFailure::Unreachable(_) => StatusCode::BAD_GATEWAY,
        }
    }
}

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    /// Where the API is, from this server: `http://127.0.0.1:8080`.
    base: String,
}

impl Api {
    pub fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with the admin's token; the caller adds a body.
    pub fn request(&self, method: Method, token: &str, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(token)
    }

    pub async fn get_json(&self, token: &str, path: &str) -> Result<Value, ApiFailure> {
        self.send_json(self.request(Method::GET, token, path)).await
    }

    pub async fn send_json(&self, request: reqwest::RequestBuilder) -> Result<Value, ApiFailure> {
        let response = self.send(request).await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        response
            .json()
            .await
            .map_err(|e| ApiFailure::Unreachable(e.to_string()))
    }

    /// Sends; an error status becomes an `ApiFailure` with the API's message.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ApiFailure> {
        let response = request
            .send()
            .await
            .map_err(|e| ApiFailure::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let message = body["error"]["message"]
            .as_str()
            .map_or_else(|| status.to_string(), str::to_owned);
        Err(ApiFailure::Refused { status, message })
    }
}
