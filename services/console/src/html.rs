//! Pages as HTML text: escaping, the layout every page shares (navigation, sign-out, styles
//! served inline: nothing is loaded from anywhere else), and small pieces.

use std::fmt::Write as _;

use crate::session::Session;

/// Text made safe for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text for a query parameter's value.
pub fn query_value(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The console's style sheet and script, served from `/console/assets/` (nothing inline, so the
/// console's policy allows scripts and styles from itself only).
pub const STYLE: &str = include_str!("../assets/console.css");
pub const SCRIPT: &str = include_str!("../assets/console.js");

/// What the console's pages may load: their own style sheet, script, photos and calls, nothing
/// from anywhere else, and forms only to the console.
pub const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// A whole page.
pub fn page(title: &str, session: Option<&Session>, district: Option<&str>, body: &str) -> String {
    let mut nav = String::new();
    if let (Some(session), Some(d)) = (session, district) {
        let d = escape(d);
        let _ = write!(
            nav,
            "<nav aria-label=\"Main\"><a href=\"/console/d/{d}\">Home</a><a href=\"/console/d/{d}/jobs\">Jobs</a>"
        );
        if session.may("importer") {
            let _ = write!(nav, "<a href=\"/console/d/{d}/upload\">Upload</a>");
        }
        let _ = write!(
            nav,
            "<a href=\"/console/d/{d}/missing\">Missing photos</a><a href=\"/console/d/{d}/people\">People</a>\
             <a href=\"/console/d/{d}/schools\">Schools</a>"
        );
        if session.may("admin") {
            let _ = write!(
                nav,
                "<a href=\"/console/d/{d}/tokens\">Tokens</a><a href=\"/console/d/{d}/sftp\">SFTP</a>\
                 <a href=\"/console/d/{d}/webhooks\">Webhooks</a>"
            );
        }
        if session.is_operator() {
            nav.push_str("<a href=\"/console/districts\">Districts</a>");
        }
        nav.push_str("</nav>");
    }
    let account = match session {
        Some(session) => format!(
            "<span>{}{}</span><form class=\"inline\" method=\"post\" action=\"/console/sign-out\">{}<button class=\"secondary\" type=\"submit\">Sign out</button></form>",
            escape(&session.role),
            session
                .district
                .as_deref()
                .map(|d| format!(" · {}", escape(d)))
                .unwrap_or_default(),
            csrf_field(session)
        ),
        None => String::new(),
    };
    let csrf_meta = session
        .map(|s| format!("<meta name=\"csrf-token\" content=\"{}\">", escape(&s.csrf)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{csrf_meta}\
         <title>{} · Pictureday</title><link rel=\"stylesheet\" href=\"/console/assets/console.css\">\
         <script src=\"/console/assets/console.js\" defer></script></head><body>\
         <a class=\"visually-hidden skip\" href=\"#main\">Skip to content</a>\
         <header><strong>Pictureday</strong>{nav}{account}</header><main id=\"main\"><h1>{}</h1>{body}</main></body></html>",
        escape(title),
        escape(title)
    )
}

/// The hidden field every form carries.
pub fn csrf_field(session: &Session) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(&session.csrf)
    )
}

/// A message for the person, e.g. an error the API gave.
pub fn alert(message: &str) -> String {
    format!("<p class=\"alert\" role=\"alert\">{}</p>", escape(message))
}

/// A note for the person (success, or something to know).
pub fn note(message: &str) -> String {
    format!("<p class=\"note\" role=\"status\">{}</p>", escape(message))
}
