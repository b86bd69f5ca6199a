//! The few HTML pages the provider renders: sign-in, consent, errors, sign-out. No
//! scripts, no external resources; every interpolated value is escaped.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    page_with(status, title, body, "")
}

/// `form_targets`: sources the form's redirect chain may end at besides this server (the
/// mobile hand-off ends at the app's scheme; browsers check `form-action` on redirects).
fn page_with(status: StatusCode, title: &str, body: &str, form_targets: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem;color:#1d2330}}\
         label{{display:block;margin:.8rem 0 .2rem}}input{{width:100%;padding:.5rem;box-sizing:border-box}}button{{margin-top:1rem;padding:.5rem 1rem}}\
         .error{{color:#a4161a}}.muted{{color:#5c6370;font-size:.9rem}}</style></head><body>{body}</body></html>",
        title = escape(title)
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Nobody frames the sign-in page (clickjacking), and it loads nothing from elsewhere.
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'{}{form_targets}; frame-ancestors 'none'",
        if form_targets.is_empty() { "" } else { " " }
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&csp).unwrap_or_else(|_| {
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
        }),
    );
    r
}

/// A dead end that must not redirect (unknown client, unregistered redirect URI).
pub fn error(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<h1>Sign-in cannot continue</h1><p class=\"error\">{}</p><p class=\"muted\">Reference: {}</p>",
        escape(message),
        escape(&crate::http::correlation::current())
    );
    page(status, "Sign-in error", &body)
}

pub fn login(
    status: StatusCode,
    continue_query: &str,
    client_name: &str,
    email: &str,
    message: Option<&str>,
) -> Response {
    login_form(
        "/oauth2/login",
        "",
        status,
        continue_query,
        client_name,
        email,
        message,
    )
}

/// The sign-in page, posting to `action` (the provider's or the mobile hand-off's form
/// handler) with `continue_query` carried along for the way back.
pub fn login_form(
    action: &str,
    form_targets: &str,
    status: StatusCode,
    continue_query: &str,
    client_name: &str,
    email: &str,
    message: Option<&str>,
) -> Response {
    let error = message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(m)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in</h1><p class=\"muted\">to continue to {client}</p>{error}\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"continue\" value=\"{cont}\">\
         <label for=\"email\">Email</label><input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required value=\"{email}\">\
         <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">Sign in</button></form>",
        action = escape(action),
        client = escape(client_name),
        cont = escape(continue_query),
        email = escape(email),
    );
    page_with(status, "Sign in", &body, form_targets)
}

/// `form_target`: where the allowed request's redirect chain ends (the client's redirect
/// URI's origin or scheme), for the page's `form-action`.
pub fn consent(
    continue_query: &str,
    client_name: &str,
    scopes: &[&str],
    form_target: &str,
) -> Response {
    let items: String = scopes
        .iter()
        .map(|s| {
            let what = match *s {
                "openid" => "confirm who you are",
                "profile" => "see your name",
                "email" => "see your email address",
                "offline_access" => "stay signed in when you are away",
                other => other,
            };
            format!("<li>{}</li>", escape(what))
        })
        .collect();
    let body = format!(
        "<h1>Allow access?</h1><p><strong>{client}</strong> would like to:</p><ul>{items}</ul>\
         <form method=\"post\" action=\"/oauth2/consent\"><input type=\"hidden\" name=\"continue\" value=\"{cont}\">\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button> \
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>\
         <p class=\"muted\">You can withdraw this later from your account.</p>",
        client = escape(client_name),
        cont = escape(continue_query),
    );
    page_with(StatusCode::OK, "Allow access", &body, form_target)
}

/// Asks before signing out when nothing proves an application of the signed-in user sent
/// the browser (RP-initiated logout without a matching ID token hint). The form posts back
/// the logout request; `form_target` is the origin the browser may be sent to afterwards.
pub fn confirm_sign_out(continue_query: &str, form_target: Option<&str>) -> Response {
    let body = format!(
        "<h1>Sign out?</h1><p>An application asked to sign you out of this server.</p>\
         <form method=\"post\" action=\"/oauth2/logout\"><input type=\"hidden\" name=\"continue\" value=\"{cont}\">\
         <button type=\"submit\">Sign out</button></form>\
         <p class=\"muted\">If you did not expect this, close this window: you stay signed in.</p>",
        cont = escape(continue_query),
    );
    page_with(
        StatusCode::OK,
        "Sign out",
        &body,
        form_target.unwrap_or_default(),
    )
}

/// The mobile hand-off's question before it hands a signed-in account to an app: any app
/// may claim an app scheme, so the person at the browser names which one they meant. Posts
/// `decision` (`continue` or `cancel`), the hand-off query and the page's token to `action`.
pub fn mobile_confirm(
    action: &str,
    form_targets: &str,
    app_scheme: &str,
    account: &str,
    continue_query: &str,
    csrf_token: &str,
) -> Response {
    let body = format!(
        "<h1>Continue to {app} on this device?</h1>\
         <p>You are signed in as <strong>{account}</strong>. Continuing signs the app that opens \
         <strong>{app}://</strong> links on this device in to this account.</p>\
         <p class=\"muted\">Continue only if you just started signing in from that app. \
         If you did not, cancel: another app may be asking for your account.</p>\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"continue\" value=\"{cont}\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
         <button type=\"submit\" name=\"decision\" value=\"continue\">Continue</button> \
         <button type=\"submit\" name=\"decision\" value=\"cancel\">Cancel</button></form>",
        action = escape(action),
        app = escape(app_scheme),
        account = escape(account),
        cont = escape(continue_query),
        csrf = escape(csrf_token),
    );
    page_with(StatusCode::OK, "Continue to the app?", &body, form_targets)
}

pub fn signed_out() -> Response {
    page(
        StatusCode::OK,
        "Signed out",
        "<h1>You are signed out</h1><p>You can close this window.</p>",
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
