//! A TCP proxy on loopback that can abort the connections through it: each side gets
//! a reset (RST), as when a network path breaks or a process dies, with no close
//! handshake of any protocol above.

use std::io;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A proxy from a free loopback port to `upstream`; stops on drop.
#[derive(Debug)]
pub struct Proxy {
    addr: String,
    open: Arc<Mutex<Vec<Link>>>,
    accept: JoinHandle<()>,
}

/// One proxied connection: both sockets, and the two tasks copying between them.
#[derive(Debug)]
struct Link {
    sockets: [Arc<TcpStream>; 2],
    pumps: [JoinHandle<()>; 2],
}

impl Proxy {
    /// Listens on `127.0.0.1:0` and forwards every connection to `upstream`
    /// (`127.0.0.1:<port>`); a connection that cannot reach it is dropped.
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address").to_string();
        let open: Arc<Mutex<Vec<Link>>> = Arc::default();
        let upstream = upstream.to_owned();
        let links = open.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client, server) = (Arc::new(client), Arc::new(server));
                let pumps = [
                    tokio::spawn(pump(client.clone(), server.clone())),
                    tokio::spawn(pump(server.clone(), client.clone())),
                ];
                let mut links = links.lock().unwrap();
                links.retain(|l| !l.pumps.iter().all(JoinHandle::is_finished));
                links.push(Link {
                    sockets: [client, server],
                    pumps,
                });
            }
        });
        Self { addr, open, accept }
    }

    /// `127.0.0.1:<port>`, to connect to instead of the upstream.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Resets every connection open through the proxy, both sides; returns how many.
    /// New connections are proxied as before.
    pub fn abort_all(&self) -> usize {
        let links = std::mem::take(&mut *self.open.lock().unwrap());
        let mut aborted = 0;
        for link in links {
            if link.pumps.iter().all(JoinHandle::is_finished) {
                continue;
            }
            for socket in &link.sockets {
                // Closing a socket with a zero linger time sends RST instead of FIN.
                let _ = socket.set_zero_linger();
            }
            for pump in &link.pumps {
                pump.abort();
            }
            aborted += 1;
        }
        aborted
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.abort_all();
    }
}

/// Copies what `from` receives to `to` until `from` ends (then ends `to`'s sending
/// side too) or either fails.
async fn pump(from: Arc<TcpStream>, to: Arc<TcpStream>) {
    let _ = copy(&from, &to).await;
    // A half-close, as the peer did; the other pump ends its direction.
    let _ = shutdown_write(&to);
}

async fn copy(from: &TcpStream, to: &TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        from.readable().await?;
        let n = match from.try_read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        let mut sent = 0;
        while sent < n {
            to.writable().await?;
            match to.try_write(&buf[sent..n]) {
                Ok(m) => sent += m,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Shuts down the sending side of `socket` (tokio offers it only through `&mut`): on a
/// duplicate of its descriptor, since shutting down acts on the socket itself.
fn shutdown_write(socket: &TcpStream) -> io::Result<()> {
    use std::os::fd::AsFd;
    let fd = socket.as_fd().try_clone_to_owned()?;
    std::net::TcpStream::from(fd).shutdown(std::net::Shutdown::Write)
}
