//! The dashboard's files as the relay serves them: gzipped to a browser that accepts
//! it, byte for byte the build once unzipped, plain to one that does not; the API is
//! not touched by it.

use bytes::Bytes;
use cortex_e2e::redis::RedisServer;
use cortex_e2e::relay::{assert_dashboard_built, dashboard_dir, Relay};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::io::Read;

/// A response's status, `content-encoding` and body as sent.
struct Response {
    status: u16,
    encoding: Option<String>,
    body: Vec<u8>,
}

async fn get(url: &str, accept_encoding: Option<&str>) -> Response {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut builder = http::Request::get(url);
    if let Some(value) = accept_encoding {
        builder = builder.header("accept-encoding", value);
    }
    let response = client
        .request(builder.body(Empty::new()).unwrap())
        .await
        .expect("GET");
    let status = response.status().as_u16();
    let encoding = response
        .headers()
        .get("content-encoding")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Response {
        status,
        encoding,
        body,
    }
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a valid gzip stream");
    out
}

#[tokio::test]
async fn dashboard_files_are_gzipped_for_browsers_that_accept_it() {
    assert_dashboard_built();
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let base = relay.http_url();
    let base = base.trim_end_matches('/');

    let wasm = std::fs::read_dir(dashboard_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "wasm"))
        .expect("the build has a wasm file");
    let built = std::fs::read(&wasm).unwrap();
    let path = format!("{base}/{}", wasm.file_name().unwrap().to_str().unwrap());

    let zipped = get(&path, Some("gzip, deflate, br")).await;
    assert_eq!(zipped.status, 200);
    assert_eq!(zipped.encoding.as_deref(), Some("gzip"));
    assert!(
        zipped.body.len() < built.len() / 2,
        "gzip sent {} of {} bytes",
        zipped.body.len(),
        built.len()
    );
    assert!(gunzip(&zipped.body) == built, "unzipped, the build's bytes");
    eprintln!(
        "wasm: {} bytes, {} sent gzipped",
        built.len(),
        zipped.body.len()
    );

    let plain = get(&path, None).await;
    assert_eq!((plain.status, plain.encoding), (200, None));
    assert!(plain.body == built);

    // A deep link gets index.html, gzipped as well.
    let index = std::fs::read(dashboard_dir().join("index.html")).unwrap();
    let deep = get(&format!("{base}/dlq?agents=pink"), Some("gzip")).await;
    assert_eq!(deep.status, 200);
    assert_eq!(deep.encoding.as_deref(), Some("gzip"));
    assert!(gunzip(&deep.body) == index);

    // The API is left as it was.
    let health = get(&format!("{base}/healthz"), Some("gzip")).await;
    assert_eq!((health.status, health.encoding), (200, None));
    assert!(String::from_utf8(health.body).unwrap().contains("\"ok\""));
}
