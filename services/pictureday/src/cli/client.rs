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

/// The response when it succeeded; else an error with the server's own message.
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
    bail!("{status} from {url}: {message}{hint}")
}
