#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `/v1/mobile/connect(.svg)`: the link a mobile app scans to use this server. The QR code
//! is decoded with rqrr, a decoder that shares nothing with the encoder the server uses.

use crate::common;

use common::{Backend, TestApp};
use portcullis_server::config::StringList;
use reqwest::Method;
use serde_json::json;

fn expected_url(base: &str, scheme: &str) -> String {
    let origin: String = url::form_urlencoded::byte_serialize(base.as_bytes()).collect();
    format!("{scheme}://server?url={origin}")
}

/// Paints the SVG's unit squares (`M{x},{y}h1v1h-1z`) into a grayscale image, `scale`
/// pixels per module, and decodes it.
fn decode_svg(svg: &str, scale: usize) -> String {
    let view = svg
        .split("viewBox=\"0 0 ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse::<usize>().ok())
        .expect("viewBox");
    let path = svg
        .split(" d=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("path");
    let side = view * scale;
    let mut pixels = vec![255u8; side * side];
    for square in path.split('M').filter(|s| !s.is_empty()) {
        let coords = square.strip_suffix("h1v1h-1z").expect("unit square");
        let (x, y) = coords.split_once(',').expect("x,y");
        let (x, y): (usize, usize) = (x.parse().unwrap(), y.parse().unwrap());
        for dy in 0..scale {
            for dx in 0..scale {
                pixels[(y * scale + dy) * side + x * scale + dx] = 0;
            }
        }
    }
    let mut img =
        rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| pixels[y * side + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "exactly one QR code in the image");
    let (_meta, content) = grids[0].decode().expect("decodable QR code");
    content
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_link_and_its_qr_code() {
    let app = TestApp::start_with(Backend::Sqlite, |c| {
        c.mobile.schemes = StringList(vec!["alga".into(), "alga-beta".into()]);
    })
    .await;
    let url = expected_url(&app.base, "alga");

    let r = TestApp::send(app.req(Method::GET, "/v1/mobile/connect")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, json!({ "url": url }));

    let resp = app
        .req(Method::GET, "/v1/mobile/connect.svg")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/svg+xml");
    assert!(resp.headers().contains_key("x-correlation-id"));
    let svg = resp.text().await.unwrap();
    assert!(svg.starts_with("<?xml"), "{svg}");
    assert_eq!(decode_svg(&svg, 4), url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_needs_a_scheme_and_mobile_switched_on() {
    let none = TestApp::start(Backend::Sqlite).await;
    for path in ["/v1/mobile/connect", "/v1/mobile/connect.svg"] {
        let r = TestApp::send(none.req(Method::GET, path)).await;
        r.assert_error(404, "not_found");
        assert!(
            r.body["message"]
                .as_str()
                .unwrap()
                .contains("PORTCULLIS_MOBILE_SCHEMES"),
            "{}",
            r.body
        );
    }

    let off = TestApp::start_with(Backend::Sqlite, |c| {
        c.mobile.schemes = StringList(vec!["alga".into()]);
        c.mobile.enabled = false;
    })
    .await;
    for path in ["/v1/mobile/connect", "/v1/mobile/connect.svg"] {
        TestApp::send(off.req(Method::GET, path))
            .await
            .assert_error(403, "feature_disabled");
    }
}
