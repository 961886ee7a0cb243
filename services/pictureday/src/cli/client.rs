//! The API as the command line uses it: a district's paths, the bearer token, and the server's
//! JSON errors turned into messages a person can act on.

use anyhow::{Context as _, bail};
use reqwest::multipart::Form;
use serde_json::Value;

use super::ClientArgs;

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// `…/v1/districts/{district}`.
    district_url: String,
    token: String,
    pub district: String,
}

impl Client {
    /// A client for the district the arguments name, or else the token's own district.
    pub async fn connect(args: &ClientArgs) -> anyhow::Result<Self> {
        let base = args.url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--url {base:?} is not an http:// or https:// address");
        }
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .context("making the HTTP client")?;
        let district = match &args.district {
            Some(district) => district.clone(),
            None => {
                let url = format!("{base}/v1/whoami");
                let response = http
                    .get(&url)
                    .bearer_auth(&args.token)
                    .send()
                    .await
                    .with_context(|| format!("GET {url}"))?;
                let who: Value = checked(response).await?.json().await?;
                match who["district"].as_str() {
                    Some(district) => district.to_owned(),
                    None => bail!(
                        "the operator token may act for any district: name one with --district \
                         or PICTUREDAY_DISTRICT"
                    ),
                }
            }
        };
        Ok(Self {
            http,
            district_url: format!("{base}/v1/districts/{district}"),
            token: args.token.clone(),
            district,
        })
    }

    /// `path` under the district (`/jobs`, `/jobs/{id}`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.district_url)
    }

    pub async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let response = self.get(path).await?;
        response
            .json()
            .await
            .with_context(|| format!("reading the answer to GET {path}"))
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("GET {}", self.url(path)))?;
        checked(response).await
    }

    /// `GET path` with query parameters (encoded here).
    pub async fn get_json_with(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<Value> {
        let encoded: Vec<String> = query
            .iter()
            .map(|(key, value)| format!("{key}={}", percent_encoded(value)))
            .collect();
        let url = format!("{}?{}", self.url(path), encoded.join("&"));
        let response = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("GET {}", self.url(path)))?;
        checked(response)
            .await?
            .json()
            .await
            .with_context(|| format!("reading the answer to GET {path}"))
    }

    /// `POST path` with a JSON body (or none); the answer's JSON.
    pub async fn post_json(&self, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let mut request = self.http.post(self.url(path)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("POST {}", self.url(path)))?;
        checked(response)
            .await?
            .json()
            .await
            .with_context(|| format!("reading the answer to POST {path}"))
    }

    /// `PATCH path` with a raw body starting at `offset`; the answer's JSON.
    pub async fn patch_piece(
        &self,
        path: &str,
        offset: u64,
        length: u64,
        body: reqwest::Body,
    ) -> anyhow::Result<Value> {
        let response = self
            .http
            .patch(self.url(path))
            .bearer_auth(&self.token)
            .header("Upload-Offset", offset)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/offset+octet-stream",
            )
            .header(reqwest::header::CONTENT_LENGTH, length)
            .body(body)
            .send()
            .await
            .with_context(|| format!("PATCH {}", self.url(path)))?;
        checked(response)
            .await?
            .json()
            .await
            .with_context(|| format!("reading the answer to PATCH {path}"))
    }

    /// Posts an import form; the accepted job as the server describes it.
    pub async fn import(&self, form: Form, query: &str) -> anyhow::Result<Value> {
        let url = self.url(&format!("/imports{query}"));
        let response = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .multipart(form)
            .send()
            .await
            .with_context(|| format!("uploading to {url}"))?;
        let response = checked(response).await?;
        response.json().await.context("reading the import's answer")
    }
}

/// `value` as a query string carries it: unreserved characters as they are, the rest `%XX`.
fn percent_encoded(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A request the server refused: its status and its own message.
#[derive(Debug, thiserror::Error)]
#[error("{status} from {url}: {message}{hint}")]
pub struct Refused {
    pub status: reqwest::StatusCode,
    pub url: String,
    pub message: String,
    hint: &'static str,
}

impl Refused {
    /// Whether asking again later may succeed: the server or a dependency is briefly away.
    pub fn is_passing(&self) -> bool {
        matches!(self.status.as_u16(), 502..=504)
    }
}

/// Whether `error` may pass if the request is made again: the connection failed or the
/// server said it is briefly unavailable.
pub fn is_passing(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<Refused>()
            .is_some_and(Refused::is_passing)
            || cause
                .downcast_ref::<reqwest::Error>()
                .is_some_and(|e| e.is_connect() || e.is_timeout() || e.is_request() || e.is_body())
    })
}

/// The response when it succeeded; else a [`Refused`] with the server's own message.
async fn checked(response: reqwest::Response) -> anyhow::Result<reqwest::Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let url = response.url().to_string();
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| {
            v["error"]["message"]
                .as_str()
                .or(v["message"].as_str())
                .map(str::to_owned)
        })
        .unwrap_or(body);
    let hint = match status.as_u16() {
        401 => " (check --token / PICTUREDAY_TOKEN)",
        403 => " (this token's role is not enough)",
        404 => " (check --district and the id)",
        _ => "",
    };
    Err(Refused {
        status,
        url,
        message,
        hint,
    }
    .into())
}
