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

const STYLE: &str = "
:root{--ink:#1b1f24;--muted:#4a5560;--line:#d0d7de;--accent:#0b5cad;--bad:#a40e26;--ok:#116329;--bg:#fff}
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,sans-serif;color:var(--ink);background:var(--bg)}
header{display:flex;flex-wrap:wrap;gap:.5rem 1.25rem;align-items:center;padding:.75rem 1rem;border-bottom:1px solid var(--line)}
header strong{margin-right:auto}nav a{margin-right:1rem}
main{max-width:72rem;margin:0 auto;padding:1rem}
a{color:var(--accent)}a:focus,button:focus,input:focus,select:focus{outline:3px solid #f0b400;outline-offset:2px}
table{border-collapse:collapse;width:100%;margin:1rem 0}th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums}
button,.button{font:inherit;padding:.45rem .9rem;border:1px solid var(--accent);background:var(--accent);color:#fff;border-radius:4px;cursor:pointer;text-decoration:none;display:inline-block}
button.secondary{background:#fff;color:var(--accent)}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}input,select{font:inherit;padding:.4rem;border:1px solid var(--muted);border-radius:4px;max-width:100%}
.alert{padding:.75rem 1rem;border-left:4px solid var(--bad);background:#fff5f5;margin:1rem 0}.note{padding:.75rem 1rem;border-left:4px solid var(--accent);background:#f3f8ff;margin:1rem 0}
.state-finished{color:var(--ok)}.state-finished_with_errors,.state-failed{color:var(--bad)}
progress{width:100%;height:1rem}.inline{display:inline}
@media (max-width:40rem){th:nth-child(n+5),td:nth-child(n+5){display:none}}
";

/// A whole page.
pub fn page(title: &str, session: Option<&Session>, district: Option<&str>, body: &str) -> String {
    let mut nav = String::new();
    if let (Some(session), Some(d)) = (session, district) {
        let d = escape(d);
        let _ = write!(
            nav,
            "<nav aria-label=\"Main\"><a href=\"/console/d/{d}\">Home</a><a href=\"/console/d/{d}/jobs\">Jobs</a>\
             <a href=\"/console/d/{d}/missing\">Missing photos</a><a href=\"/console/d/{d}/schools\">Schools</a></nav>"
        );
        if session.is_operator() {
            nav.push_str("<a href=\"/console/districts\">Districts</a>");
        }
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
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Pictureday</title><style>{STYLE}</style></head><body>\
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
