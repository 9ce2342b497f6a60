//! HTTP/1.1 over one established TLS connection, kept alive for all of a check's probes.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

#[derive(Debug, Error)]
pub enum HttpError {
    #[error("no answer within {0}s")]
    Timeout(u64),
    #[error("the answer's body is larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("the connection failed: {0}")]
    Connection(String),
}

#[derive(Clone, Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// An open connection to one origin.
pub struct Session {
    sender: http1::SendRequest<Full<Bytes>>,
    /// Host header value.
    authority: String,
    timeout: Duration,
    max_body: usize,
    /// Requests sent, for the request counter and the benchmark.
    pub sent: u32,
}

impl Session {
    pub async fn open(
        tls: TlsStream<TcpStream>,
        authority: String,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Session, HttpError> {
        let (sender, conn) = http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| HttpError::Connection(e.to_string()))?;
        // The connection task ends when the session (its sender) is dropped.
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "bitbucket connection closed");
            }
        });
        Ok(Session {
            sender,
            authority,
            timeout,
            max_body,
            sent: 0,
        })
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Sends one request. `auth` is the Authorization header value, built by the caller from the
    /// credential and never logged.
    pub async fn send(
        &mut self,
        method: Method,
        path_and_query: &str,
        auth: Option<&HeaderValue>,
        form: Option<String>,
    ) -> Result<Response, HttpError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(header::HOST, &self.authority)
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("bbconn/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(a) = auth {
            builder = builder.header(header::AUTHORIZATION, a.clone());
        }
        let body = match form {
            Some(f) => {
                builder = builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Full::new(Bytes::from(f))
            }
            None => Full::new(Bytes::new()),
        };
        let request = builder
            .body(body)
            .map_err(|e| HttpError::Connection(e.to_string()))?;
        let secs = self.timeout.as_secs();
        let max = self.max_body;
        self.sent += 1;
        let exchange = async {
            self.sender
                .ready()
                .await
                .map_err(|e| HttpError::Connection(e.to_string()))?;
            let response = self
                .sender
                .send_request(request)
                .await
                .map_err(|e| HttpError::Connection(e.to_string()))?;
            let (parts, body) = response.into_parts();
            if parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok())
                .is_some_and(|n| n > max)
            {
                return Err(HttpError::BodyTooLarge(max));
            }
            let body = Limited::new(body, max)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        HttpError::BodyTooLarge(max)
                    } else {
                        HttpError::Connection(e.to_string())
                    }
                })?
                .to_bytes();
            Ok(Response {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout(secs))?
    }
}
