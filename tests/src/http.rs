//! A minimal HTTP/1.1 client over loopback: probes such as `/readyz`, and the JSON API.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `GET path` on `addr` (`127.0.0.1:<port>`); the status code and the body.
pub async fn get(addr: &str, path: &str) -> (u16, String) {
    request(addr, "GET", path, None).await
}

/// `POST path` with a JSON `body`; the status code and the body.
pub async fn post(addr: &str, path: &str, body: &str) -> (u16, String) {
    request(addr, "POST", path, Some(body)).await
}

/// `DELETE path`; the status code and the body.
pub async fn delete(addr: &str, path: &str) -> (u16, String) {
    request(addr, "DELETE", path, None).await
}

/// `method path` with an optional JSON body, on `addr`; the status code and the body
/// (de-chunked if need be).
pub async fn request(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    request_as(addr, method, path, None, body).await
}

/// Like [`request`], with an `Authorization` header value (e.g. `Bearer …`).
pub async fn request_as(
    addr: &str,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("connect to the relay");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(value) = authorization {
        request.push_str(&format!("Authorization: {value}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        request.push_str("\r\n");
    }
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("read response");
    parse_response(&response)
}

/// `method path` on `addr` with exactly `headers` (and `Host: addr` unless they give
/// one, `Content-Length` when there is a `body`): for requests as a browser or a
/// hostile page would send them. The status code and the body.
pub async fn request_with(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("connect to the relay");
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or_default());
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("read response");
    parse_response(&response)
}

/// The status code and the body (de-chunked) of a raw HTTP/1.1 response.
fn parse_response(response: &[u8]) -> (u16, String) {
    let response = String::from_utf8_lossy(response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .map(|(h, b)| (h.to_owned(), b.to_owned()))
        .unwrap_or_default();
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (status, if chunked { dechunk(&body) } else { body })
}

/// The body of a chunked transfer.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// A JSON API call: the status and the body parsed as JSON (`Null` when it is not).
pub async fn json(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> (u16, serde_json::Value) {
    let body = body.map(|b| b.to_string());
    let (status, text) = request(addr, method, path, body.as_deref()).await;
    (status, serde_json::from_str(&text).unwrap_or_default())
}

/// Sends `request` (any bytes, well formed HTTP or not) on a new connection to `addr`
/// and reads until the relay closes it or `timeout` passes; the status code and the
/// body, or `None` when no response came (the relay may close a connection on which it
/// cannot make out a request, or wait for the rest of one).
pub async fn raw(
    addr: &str,
    request: &[u8],
    timeout: std::time::Duration,
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("connect to the relay");
    // The relay may answer (e.g. 413) and close before it has read all of a large
    // request: a failed write is not an error, the answer may be there to read.
    let _ = tokio::time::timeout(timeout, stream.write_all(request)).await;
    let mut response = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => response.extend_from_slice(&chunk[..n]),
        }
    }
    let complete =
        response.starts_with(b"HTTP/1.") && response.windows(4).any(|w| w == b"\r\n\r\n");
    complete.then(|| parse_response(&response))
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(super::dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}
