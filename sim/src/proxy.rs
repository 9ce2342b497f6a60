//! A minimal HTTP CONNECT proxy (RFC 9110, section 9.3.6): the way to a "private" Bitbucket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

use crate::state::RecordedRequest;
use crate::state::Shared;

const MAX_HEAD: usize = 16 * 1024;

struct Head {
    method: String,
    target: String,
    proxy_authorization: Option<String>,
    /// Bytes the client sent after the request head (e.g. an eager TLS ClientHello).
    rest: Vec<u8>,
}

async fn read_head(stream: &mut TcpStream) -> Option<Head> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let rest = buf[end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let proxy_authorization = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("proxy-authorization")
            .then(|| value.trim().to_owned())
    });
    Some(Head {
        method,
        target,
        proxy_authorization,
        rest,
    })
}

pub(crate) async fn serve(shared: Arc<Shared>, idx: usize, mut client: TcpStream) {
    let Ok(Some(head)) =
        tokio::time::timeout(Duration::from_secs(10), read_head(&mut client)).await
    else {
        return;
    };
    let listener = &shared.listeners[idx];
    let config = shared.fixture.listeners.get(idx);
    let record = |status: u16| RecordedRequest {
        listener: listener.name.clone(),
        method: head.method.clone(),
        path: head.target.clone(),
        query: None,
        authorization: head.proxy_authorization.clone(),
        status,
    };
    let reply = |status: &str| {
        format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    };

    if !head.method.eq_ignore_ascii_case("CONNECT") {
        let _ = client
            .write_all(reply("405 Method Not Allowed").as_bytes())
            .await;
        shared.record(record(405));
        return;
    }
    if let Some(required) = config.and_then(|c| c.proxy_auth.as_ref()) {
        use base64::Engine as _;
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", required.username, required.password))
        );
        if head.proxy_authorization.as_deref() != Some(expected.as_str()) {
            let _ = client
                .write_all(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                      Proxy-Authenticate: Basic realm=\"bbconn-sim\"\r\n\
                      Content-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            shared.record(record(407));
            return;
        }
    }
    let upstream: Option<SocketAddr> = match config {
        Some(c) if !c.refuse => c
            .routes
            .iter()
            .find(|(target, _)| target.eq_ignore_ascii_case(&head.target))
            .and_then(|(_, to)| shared.addr(to).or_else(|| to.parse().ok())),
        _ => None,
    };
    let Some(upstream) = upstream else {
        let _ = client.write_all(reply("403 Forbidden").as_bytes()).await;
        shared.record(record(403));
        return;
    };
    let mut server = match TcpStream::connect(upstream).await {
        Ok(s) => s,
        Err(e) => {
            debug!(target = %head.target, error = %e, "CONNECT upstream failed");
            let _ = client.write_all(reply("502 Bad Gateway").as_bytes()).await;
            shared.record(record(502));
            return;
        }
    };
    let _ = server.set_nodelay(true);
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    shared.record(record(200));
    if !head.rest.is_empty() && server.write_all(&head.rest).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}
