#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Health, readiness and the other operations endpoints, on SQLite and PostgreSQL.

use crate::common::TestApp;
use reqwest::{Method, StatusCode};

both_backends!(operations_endpoints,);

async fn operations_endpoints(app: TestApp) {
    let r = TestApp::send(app.req(Method::GET, "/healthz")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "ok");
    let r = TestApp::send(app.req(Method::GET, "/readyz")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ok"] == true)
    );
    let u = app.user("metrics").await;
    app.get("/v1/me", &u.token).await;
    app.get("/v1/me", "nope").await;
    let r = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(
        text.contains(
            "portcullis_http_requests_total{method=\"GET\",route=\"/v1/me\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("route=\"/v1/me\",status=\"401\"} 1"));
    assert!(text.contains("portcullis_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/auth/signup\",status=\"201\",le=\"+Inf\"} 1"));
    let r = TestApp::send(app.req(Method::GET, "/openapi.json")).await;
    assert_eq!(r.body["openapi"], "3.1.0");
    assert!(r.body["paths"]["/v1/me"]["get"].is_object());
}
