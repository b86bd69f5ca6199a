#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The error envelope on every kind of failure, on SQLite and PostgreSQL.

use crate::common::TestApp;
use reqwest::Method;

both_backends!(errors_use_the_envelope_everywhere,);

async fn errors_use_the_envelope_everywhere(app: TestApp) {
    let r = TestApp::send(
        app.req(Method::GET, "/no/such/route")
            .header("x-correlation-id", "trace-me.1:2"),
    )
    .await;
    r.assert_error(404, "not_found");
    assert_eq!(r.body["correlation_id"], "trace-me.1:2");
    let r = TestApp::send(
        app.req(Method::GET, "/v1/me")
            .header("x-correlation-id", "bad id with spaces"),
    )
    .await;
    r.assert_error(401, "unauthenticated");
    assert_ne!(r.body["correlation_id"], "bad id with spaces");
    let r = TestApp::send(app.req(Method::PUT, "/v1/me")).await;
    assert_eq!(r.status.as_u16(), 405);
    assert_eq!(r.code(), "invalid_request");
    let ok = TestApp::send(app.req(Method::GET, "/healthz")).await;
    assert_eq!(ok.headers["x-correlation-id"].to_str().unwrap().len(), 32);
}
