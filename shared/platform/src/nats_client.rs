//! Connecting to NATS with the credentials a URL carries. NATS tools take credentials in the URL
//! (`nats://TOKEN@host:4222`, `nats://USER:PASSWORD@host:4222`, `tls://…` for TLS); the client
//! library takes them only as options, so they are moved from the one to the other here, and a
//! URL is only ever shown with its credentials masked.

/// A NATS URL split into where to connect and how to authenticate.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsAddress {
    /// The URL without credentials.
    pub url: String,
    credentials: Credentials,
}

#[derive(Clone, PartialEq, Eq)]
enum Credentials {
    None,
    Token(String),
    UserPassword(String, String),
}

impl std::fmt::Debug for NatsAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.masked())
    }
}

impl NatsAddress {
    /// Reads `scheme://[credentials@]host:port[,…]`.
    pub fn parse(url: &str) -> Self {
        let plain = |url: &str| NatsAddress {
            url: url.to_owned(),
            credentials: Credentials::None,
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return plain(url);
        };
        let Some((userinfo, host)) = rest.rsplit_once('@') else {
            return plain(url);
        };
        let credentials = match userinfo.split_once(':') {
            Some((user, password)) => Credentials::UserPassword(decoded(user), decoded(password)),
            None => Credentials::Token(decoded(userinfo)),
        };
        NatsAddress {
            url: format!("{scheme}://{host}"),
            credentials,
        }
    }

    /// `nats://TOKEN@127.0.0.1:4222` for a token.
    pub fn with_token(url: &str, token: &str) -> String {
        match url.split_once("://") {
            Some((scheme, host)) => format!("{scheme}://{token}@{host}"),
            None => url.to_owned(),
        }
    }

    /// The URL as logs and errors may show it.
    pub fn masked(&self) -> String {
        match (&self.credentials, self.url.split_once("://")) {
            (Credentials::None, _) | (_, None) => self.url.clone(),
            (Credentials::Token(_), Some((scheme, host))) => format!("{scheme}://***@{host}"),
            (Credentials::UserPassword(user, _), Some((scheme, host))) => {
                format!("{scheme}://{user}:***@{host}")
            }
        }
    }

    /// Client options with the credentials applied.
    pub fn options(&self) -> async_nats::ConnectOptions {
        let options = async_nats::ConnectOptions::new();
        match &self.credentials {
            Credentials::None => options,
            Credentials::Token(token) => options.token(token.clone()),
            Credentials::UserPassword(user, password) => {
                options.user_and_password(user.clone(), password.clone())
            }
        }
    }

    /// Connects once, named `name` on the server.
    pub async fn connect(
        &self,
        name: &str,
    ) -> Result<async_nats::Client, async_nats::ConnectError> {
        self.options().name(name).connect(&self.url).await
    }
}

/// Percent-decoding of a URL's user part (`%40` for `@` in a password).
fn decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url_and_are_masked() {
        let token = NatsAddress::parse("nats://s3cr3t@127.0.0.1:4222");
        assert_eq!(token.url, "nats://127.0.0.1:4222");
        assert_eq!(token.masked(), "nats://***@127.0.0.1:4222");
        assert!(!format!("{token:?}").contains("s3cr3t"));
        let user = NatsAddress::parse("tls://pictureday:p%40ss@nats.example:4222");
        assert_eq!(user.url, "tls://nats.example:4222");
        assert_eq!(user.masked(), "tls://pictureday:***@nats.example:4222");
        assert!(user.credentials == Credentials::UserPassword("pictureday".into(), "p@ss".into()));
        let plain = NatsAddress::parse("nats://127.0.0.1:4222");
        assert_eq!(plain.masked(), "nats://127.0.0.1:4222");
        assert_eq!(
            NatsAddress::with_token("nats://127.0.0.1:4222", "t"),
            "nats://t@127.0.0.1:4222"
        );
    }
}
