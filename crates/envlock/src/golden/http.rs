//! A minimal HTTP/1.1 client for golden cases: one request to a server on 127.0.0.1,
//! retried until the server answers or the deadline passes. Enough for a model server; no
//! TLS, no redirects.
//!
//! Why not `hyper` (in the tree through the engine's client): golden runs are synchronous
//! code that times each request from connect to the last byte, and an async client would
//! put an executor's scheduling inside the timing; one request per connection over a
//! `TcpStream`, with `Content-Length` or a close ending the body, is all a model server needs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::lock::LatencySpec;

/// Why a golden case's requests gave no answer to compare or time.
#[derive(Debug, thiserror::Error)]
pub(super) enum RequestError {
    /// The run was asked to stop.
    #[error("stopped")]
    Stopped,
    /// The server answered, but not with a 2xx.
    #[error("the server answered HTTP {status}: {tail}")]
    Refused {
        status: u16,
        /// The start of its answer.
        tail: String,
    },
    /// The server never answered before the deadline.
    #[error(
        "the server on port {port} did not answer before the timeout (last attempt: {})",
        last.as_ref().map_or_else(|| "no attempt".to_string(), ToString::to_string)
    )]
    NotReady {
        port: u16,
        /// Why the last attempt failed.
        #[source]
        last: Option<CallError>,
    },
    /// A timed request failed (counted from 1, warm-up included).
    #[error("request {number} failed: {source}")]
    Failed {
        number: u32,
        #[source]
        source: CallError,
    },
    /// A timed request was answered with another status than 2xx.
    #[error("request {number} answered HTTP {status}")]
    Status { number: u32, status: u16 },
}

impl From<RequestError> for super::CaseError {
    fn from(error: RequestError) -> super::CaseError {
        super::CaseError(error.to_string())
    }
}

/// Why one request got no HTTP answer.
#[derive(Debug, thiserror::Error)]
pub(super) enum CallError {
    /// Connecting, writing or reading failed (a refused connection: not listening yet).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The answer ends before its head does.
    #[error("the connection closed before a full answer")]
    Incomplete,
    /// The answer has no HTTP status line.
    #[error("not an HTTP answer")]
    NotHttp,
    /// A chunked body whose chunk is malformed.
    #[error("{0}")]
    Chunk(&'static str),
}

/// Sends `body` to `127.0.0.1:port` until a server answers (a refused or dropped connection
/// means it is still starting), then returns the response body of a 2xx answer. Gives up
/// at `deadline`, or as soon as `stopped` says so.
pub(super) fn call_when_ready(
    port: u16,
    method: &str,
    path: &str,
    body: &[u8],
    deadline: Instant,
    stopped: &dyn Fn() -> bool,
) -> Result<String, RequestError> {
    let mut last = None;
    while Instant::now() < deadline {
        if stopped() {
            return Err(RequestError::Stopped);
        }
        match call(port, method, path, body, deadline) {
            Ok((status, text)) if (200..300).contains(&status) => return Ok(text),
            Ok((status, text)) => {
                let tail: String = text.chars().take(400).collect();
                return Err(RequestError::Refused { status, tail });
            }
            Err(error) => last = Some(error),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(RequestError::NotReady { port, last })
}

/// Times requests to a server that already answered: `warmup` untimed, then `runs` timed,
/// each from connecting to the end of the answer. Milliseconds, or why a request failed.
pub(super) fn time_requests(
    port: u16,
    method: &str,
    path: &str,
    body: &[u8],
    latency: &LatencySpec,
    limit: Duration,
    stopped: &dyn Fn() -> bool,
) -> Result<Vec<f64>, RequestError> {
    let mut samples = Vec::with_capacity(latency.runs as usize);
    for request in 0..latency.warmup + latency.runs {
        if stopped() {
            return Err(RequestError::Stopped);
        }
        let start = Instant::now();
        let (status, _) = call(port, method, path, body, start + limit).map_err(|source| {
            RequestError::Failed {
                number: request + 1,
                source,
            }
        })?;
        let elapsed = start.elapsed();
        if !(200..300).contains(&status) {
            return Err(RequestError::Status {
                number: request + 1,
                status,
            });
        }
        if request >= latency.warmup {
            samples.push(elapsed.as_secs_f64() * 1000.0);
        }
    }
    Ok(samples)
}

fn call(
    port: u16,
    method: &str,
    path: &str,
    body: &[u8],
    deadline: Instant,
) -> Result<(u16, String), CallError> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(10));
    let mut stream = TcpStream::connect_timeout(&address, left.min(Duration::from_secs(2)))?;
    stream.set_read_timeout(Some(left))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    parse_response(&response)
}

/// Status and body of a raw HTTP/1.x response (`Content-Length`, chunked, or until close).
pub(super) fn parse_response(raw: &[u8]) -> Result<(u16, String), CallError> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(CallError::Incomplete)?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or(CallError::NotHttp)?;
    let header = |name: &str| {
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    };
    if header("Transfer-Encoding").is_some_and(|value| value.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body)?;
    } else if let Some(length) = header("Content-Length").and_then(|v| v.parse::<usize>().ok()) {
        body.truncate(length);
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, CallError> {
    let mut body = Vec::new();
    loop {
        let end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or(CallError::Chunk("a chunk size is cut off"))?;
        let size_text = String::from_utf8_lossy(&data[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| CallError::Chunk("a chunk size is not hexadecimal"))?;
        data = &data[end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = data
            .get(..size)
            .ok_or(CallError::Chunk("a chunk is cut off"))?;
        body.extend_from_slice(chunk);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_with_length_chunks_or_close() {
        let plain = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\": 1}";
        assert_eq!(parse_response(plain).unwrap(), (200, "{\"a\": 1}".into()));
        let sized = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nokEXTRA";
        assert_eq!(parse_response(sized).unwrap(), (201, "ok".into()));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (200, "abcde".into()));
        assert!(parse_response(b"HTTP/1.1 200").is_err());
    }

    #[test]
    fn a_server_that_never_listens_times_out() {
        // A port nobody listens on: bind and drop to find a free one.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let deadline = Instant::now() + Duration::from_millis(300);
        let error = call_when_ready(port, "POST", "/", b"{}", deadline, &|| false)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("did not answer before the timeout"),
            "{error}"
        );
    }
}
