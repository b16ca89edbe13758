//! A page served on a loopback port of its own: what a site other than the relay
//! serves. Opened under a name of its own (`http://evil.example:<port>/`, with
//! [`crate::browser::Browser::start_resolving`]), it is a page on another site as far
//! as the browser can tell.

use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Serves one HTML page at every path until dropped.
#[derive(Debug)]
pub struct PageServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl PageServer {
    /// Serves `html` on a free port of 127.0.0.1.
    pub async fn start(html: impl Into<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a page port");
        let addr = listener.local_addr().expect("its address");
        let html: std::sync::Arc<str> = html.into().into();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, html.clone()));
            }
        });
        Self { addr, task }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request's head, answers with the page, and closes.
async fn answer(mut stream: TcpStream, html: std::sync::Arc<str>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{html}",
        html.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
