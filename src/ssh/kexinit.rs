//! The host key algorithms a server offers, read from its first key-exchange packet
//! (RFC 4253 sections 4.2 and 7.1). russh negotiates one algorithm and does not say what else
//! the server offered, and HostKeyVerified needs the whole list: every type the server holds
//! is one a consumer may negotiate. The packet is sent in the clear before any key exchange,
//! so this reads it on a connection of its own and closes it without authenticating.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The most bytes read before the server's identification line (RFC 4253 4.2 allows other
/// lines before it) and of the packet itself: KEXINIT is a few KiB at most.
const MAX_PREAMBLE: usize = 8 << 10;
const MAX_PACKET: usize = 64 << 10;
const SSH_MSG_KEXINIT: u8 = 20;

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("the connection failed while reading the server's SSH greeting: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server did not answer as an SSH server: {0}")]
    NotSsh(String),
}

/// What the server said before any key exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// The server's identification, e.g. `SSH-2.0-conq`.
    pub ident: String,
    /// server_host_key_algorithms, in the server's order.
    pub host_key_algorithms: Vec<String>,
}

/// Sends our identification, reads the server's and its KEXINIT, and returns the offer.
pub async fn scan<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    client_ident: &str,
) -> Result<Offer, ScanError> {
    // A server that already closed (or is not SSH) is judged by what it sent: a failed write
    // of our identification says less than that.
    let _ = stream
        .write_all(format!("{client_ident}\r\n").as_bytes())
        .await;
    let mut buf = Vec::with_capacity(1024);
    let ident = loop {
        let line = read_line(stream, &mut buf).await?;
        if line.starts_with("SSH-") {
            break line;
        }
    };
    if !(ident.starts_with("SSH-2.0-") || ident.starts_with("SSH-1.99-")) {
        return Err(ScanError::NotSsh(format!(
            "it speaks {:?}, not SSH 2.0",
            crate::scrub::excerpt(&ident, 40)
        )));
    }
    let mut head = [0u8; 4];
    fill(stream, &mut buf, &mut head).await?;
    let len = u32::from_be_bytes(head) as usize;
    if !(6..=MAX_PACKET).contains(&len) {
        return Err(ScanError::NotSsh(format!("a packet of {len} bytes")));
    }
    let mut packet = vec![0u8; len];
    fill(stream, &mut buf, &mut packet).await?;
    let payload = payload(&packet).ok_or_else(|| ScanError::NotSsh("a malformed packet".into()))?;
    let host_key_algorithms = host_key_algorithms(payload)
        .ok_or_else(|| ScanError::NotSsh("its first packet is not a key exchange offer".into()))?;
    Ok(Offer {
        ident,
        host_key_algorithms,
    })
}

/// The packet's payload: after the padding-length byte, without the padding.
fn payload(packet: &[u8]) -> Option<&[u8]> {
    let pad = usize::from(*packet.first()?);
    packet.get(1..packet.len().checked_sub(pad)?)
}

/// KEXINIT: byte 20, a 16-byte cookie, then name-lists: kex, then server host keys.
fn host_key_algorithms(payload: &[u8]) -> Option<Vec<String>> {
    if *payload.first()? != SSH_MSG_KEXINIT {
        return None;
    }
    let mut rest = payload.get(17..)?;
    let _kex = name_list(&mut rest)?;
    name_list(&mut rest)
}

fn name_list(rest: &mut &[u8]) -> Option<Vec<String>> {
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let raw = rest.get(4..4 + len)?;
    *rest = &rest[4 + len..];
    let text = std::str::from_utf8(raw).ok()?;
    Some(
        text.split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    )
}

/// One line of the preamble, from `buf` and then the stream.
async fn read_line<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Result<String, ScanError> {
    loop {
        if let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let text = String::from_utf8_lossy(&line);
            return Ok(text.trim_end_matches(['\r', '\n']).to_string());
        }
        if buf.len() > MAX_PREAMBLE {
            return Err(ScanError::NotSsh(
                "no SSH identification line in its first 8 KiB".into(),
            ));
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(ScanError::NotSsh(if buf.is_empty() {
                "it closed the connection without a word".into()
            } else {
                "it closed the connection before an SSH identification line".into()
            }));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Fills `out` from what is left in `buf`, then from the stream.
async fn fill<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    out: &mut [u8],
) -> Result<(), ScanError> {
    let from_buf = buf.len().min(out.len());
    out[..from_buf].copy_from_slice(&buf[..from_buf]);
    buf.drain(..from_buf);
    stream.read_exact(&mut out[from_buf..]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kexinit(hostkeys: &str) -> Vec<u8> {
        let mut p = vec![SSH_MSG_KEXINIT];
        p.extend([7u8; 16]);
        for list in ["curve25519-sha256", hostkeys] {
            p.extend((list.len() as u32).to_be_bytes());
            p.extend(list.as_bytes());
        }
        let pad = 4u8;
        let mut packet = vec![pad];
        packet.extend(&p);
        packet.extend([0u8; 4]);
        let mut out = (packet.len() as u32).to_be_bytes().to_vec();
        out.extend(packet);
        out
    }

    #[tokio::test]
    async fn reads_the_offered_host_key_algorithms_after_a_preamble() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        let mut sent = b"a banner line\r\nSSH-2.0-conq\r\n".to_vec();
        sent.extend(kexinit("rsa-sha2-512,ssh-ed25519,ecdsa-sha2-nistp256"));
        server.write_all(&sent).await.unwrap();
        let offer = scan(&mut client, "SSH-2.0-bbconn").await.unwrap();
        assert_eq!(offer.ident, "SSH-2.0-conq");
        assert_eq!(
            offer.host_key_algorithms,
            ["rsa-sha2-512", "ssh-ed25519", "ecdsa-sha2-nistp256"]
        );
        let mut ident = [0u8; 16];
        server.read_exact(&mut ident).await.unwrap();
        assert_eq!(&ident, b"SSH-2.0-bbconn\r\n");
    }

    #[tokio::test]
    async fn an_http_server_is_not_ssh() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        server
            .write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            .await
            .unwrap();
        drop(server);
        let e = scan(&mut client, "SSH-2.0-bbconn").await.unwrap_err();
        assert!(matches!(e, ScanError::NotSsh(_)), "{e}");
    }

    #[test]
    fn garbage_packets_do_not_panic() {
        for n in 0..200usize {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 31 + n) as u8).collect();
            let _ = payload(&bytes).and_then(host_key_algorithms);
        }
    }
}
