//! A small W3C WebDriver client: the real headless Chromium, driven by the real chromedriver
//! (Debian's `chromium` and `chromium-driver`, installed by scripts/install-deps.sh) over HTTP.
//! Each [`Browser`] starts its own chromedriver on a free loopback port, in a process group of its
//! own; dropping it ends that group (chromedriver and the Chromium it started).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

/// WebDriver's codes for the Tab and Enter keys.
pub const TAB: &str = "\u{E004}";
pub const ENTER: &str = "\u{E007}";

/// The key W3C WebDriver names an element reference by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A program on `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// A chromedriver process (and what it started), ended when dropped.
struct Driver {
    child: std::process::Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and the Chromium processes it started.
        let group = format!("-{}", self.child.id());
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One headless Chromium session.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`.
    session: String,
    screenshots: PathBuf,
    shots: usize,
    _driver: Driver,
}

/// An element of the page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver and a headless Chromium. Fails when either is not installed (run
    /// scripts/install-deps.sh), never skips. Screenshots go to `screenshots`.
    pub async fn start(screenshots: &Path) -> anyhow::Result<Self> {
        let chromedriver = on_path("chromedriver").context(
            "chromedriver is not installed (Debian: chromium-driver); run scripts/install-deps.sh",
        )?;
        let chromium = on_path("chromium")
            .or_else(|| on_path("chromium-browser"))
            .context("chromium is not installed; run scripts/install-deps.sh")?;
        let port = pictureday_tests::free_port()?;
        let mut command = std::process::Command::new(chromedriver);
        command
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let driver = Driver {
            child: command.spawn().context("starting chromedriver")?,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let base = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let ready = match http.get(format!("{base}/status")).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .ok()
                    .map(|v| v["value"]["ready"] == true),
                Err(_) => None,
            };
            if ready == Some(true) {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                bail!("chromedriver did not become ready on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--window-size=1200,900", "--disable-gpu"],
            },
            "timeouts": {"implicit": 0, "pageLoad": 30000, "script": 30000},
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await?
            .json()
            .await?;
        let id = created["value"]["sessionId"]
            .as_str()
            .with_context(|| format!("no session from chromedriver: {created}"))?;
        std::fs::create_dir_all(screenshots)?;
        Ok(Self {
            http,
            session: format!("{base}/session/{id}"),
            screenshots: screenshots.to_owned(),
            shots: 0,
            _driver: driver,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let value: Value = response.json().await?;
        if !status.is_success() {
            bail!(
                "WebDriver {method} {path}: {status}: {} {}",
                value["value"]["error"],
                value["value"]["message"]
            );
        }
        Ok(value["value"].clone())
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.post("/url", json!({"url": url})).await.map(drop)
    }

    pub async fn url(&self) -> anyhow::Result<String> {
        Ok(self
            .get("/url")
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    pub async fn find(&self, css: &str) -> anyhow::Result<Element> {
        let found = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await
            .with_context(|| format!("no element {css}"))?;
        found[ELEMENT]
            .as_str()
            .map(|id| Element(id.to_owned()))
            .with_context(|| format!("no element reference for {css}: {found}"))
    }

    pub async fn find_all(&self, css: &str) -> anyhow::Result<Vec<Element>> {
        let found = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await?;
        Ok(found
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT].as_str().map(|id| Element(id.to_owned())))
            .collect())
    }

    pub async fn click(&self, element: &Element) -> anyhow::Result<()> {
        self.post(&format!("/element/{}/click", element.0), json!({}))
            .await
            .map(drop)
    }

    /// Types `text` into an element; for `<input type=file>`, `text` is a file's absolute path.
    pub async fn send_keys(&self, element: &Element, text: &str) -> anyhow::Result<()> {
        self.post(
            &format!("/element/{}/value", element.0),
            json!({"text": text}),
        )
        .await
        .map(drop)
    }

    pub async fn text(&self, element: &Element) -> anyhow::Result<String> {
        Ok(self
            .get(&format!("/element/{}/text", element.0))
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// The text of the first element matching `css`.
    pub async fn text_of(&self, css: &str) -> anyhow::Result<String> {
        let element = self.find(css).await?;
        self.text(&element).await
    }

    pub async fn attribute(&self, element: &Element, name: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .get(&format!("/element/{}/attribute/{name}", element.0))
            .await?
            .as_str()
            .map(str::to_owned))
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub async fn execute(&self, script: &str, args: Value) -> anyhow::Result<Value> {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// Runs `script`, which calls `arguments[arguments.length - 1]` with its result.
    pub async fn execute_async(&self, script: &str, args: Value) -> anyhow::Result<Value> {
        self.post("/execute/async", json!({"script": script, "args": args}))
            .await
    }

    /// Presses and releases a key, as a person at the keyboard does, wherever the focus is
    /// (`key`: a character, or a WebDriver key code such as [`TAB`] or [`ENTER`]).
    pub async fn press(&self, key: &str) -> anyhow::Result<()> {
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]}]}),
        )
        .await?;
        self.call(reqwest::Method::DELETE, "/actions", None)
            .await
            .map(drop)
    }

    /// Shows pages as a phone of `width` CSS pixels does (Chromium's device emulation, through
    /// chromedriver's DevTools passthrough), `mobile` so the page's viewport applies.
    pub async fn emulate_width(&self, width: u32, height: u32) -> anyhow::Result<()> {
        self.post(
            "/goog/cdp/execute",
            json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": {
                "width": width, "height": height, "deviceScaleFactor": 1, "mobile": true}}),
        )
        .await
        .map(drop)
    }

    /// Waits until an element matches `css` (a form's answer page has loaded): its text.
    pub async fn wait_for_element_text(
        &self,
        css: &str,
        patience: Duration,
    ) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if let Ok(element) = self.find(css).await
                && let Ok(text) = self.text(&element).await
            {
                return Ok(text);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("no element {css} within {patience:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `script` (as [`Browser::execute`]) until it returns something other than `null`
    /// (an image that has finished loading, a value the page sets later): that value.
    pub async fn wait_for_value(
        &self,
        script: &str,
        args: Value,
        patience: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let value = self.execute(script, args.clone()).await?;
            if !value.is_null() {
                return Ok(value);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{script:?} returned null for {patience:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the element matching `css` has exactly `expected` as its text.
    pub async fn wait_for_text(
        &self,
        css: &str,
        expected: &str,
        patience: Duration,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut last = String::new();
        loop {
            if let Ok(element) = self.find(css).await
                && let Ok(text) = self.text(&element).await
            {
                if text == expected {
                    return Ok(());
                }
                last = text;
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "{css} did not read {expected:?} within {patience:?} (last: {last:?}) at {}",
                    self.url().await.unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the page as `NN-<name>.png` in the screenshots directory.
    pub async fn screenshot(&mut self, name: &str) -> anyhow::Result<PathBuf> {
        let data = self.get("/screenshot").await?;
        let png = base64_decode(data.as_str().unwrap_or_default())?;
        anyhow::ensure!(png.starts_with(b"\x89PNG"), "the screenshot is no PNG");
        self.shots += 1;
        let path = self
            .screenshots
            .join(format!("{:02}-{name}.png", self.shots));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// Ends the session (and with it Chromium); chromedriver is ended when dropped.
    pub async fn quit(self) -> anyhow::Result<()> {
        self.call(reqwest::Method::DELETE, "", None).await.map(drop)
    }
}

fn base64_decode(text: &str) -> anyhow::Result<Vec<u8>> {
    let value = |c: u8| -> anyhow::Result<u32> {
        Ok(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => bail!("not base64: {:?}", char::from(c)),
        }
        .into())
    };
    let bytes: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c)? << (18 - 6 * i);
        }
        let [_, a, b, c] = n.to_be_bytes();
        out.push(a);
        if chunk.len() > 2 {
            out.push(b);
        }
        if chunk.len() > 3 {
            out.push(c);
        }
    }
    Ok(out)
}

#[test]
fn base64_decodes_as_written() -> anyhow::Result<()> {
    assert_eq!(base64_decode("aGVsbG8=")?, b"hello");
    assert_eq!(base64_decode("aGk=")?, b"hi");
    assert_eq!(base64_decode("YWJj")?, b"abc");
    Ok(())
}
