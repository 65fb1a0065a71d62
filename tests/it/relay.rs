//! A relay between envlock and the real engine, on a unix socket of its own, that logs every
//! Engine API request and injects faults into chosen ones: an engine error status, a
//! connection cut after some bytes of a response body, a body that ends short of its
//! framing, or a response that never comes. envlock reaches it with
//! `DOCKER_HOST=unix://…` (see [`Relay::host`]).
//!
//! It speaks just enough HTTP/1.1 for the engine: a request line and headers, bodies framed
//! by `Content-Length` or `Transfer-Encoding: chunked` (or, in a response, by the end of the
//! connection), keep-alive (one upstream connection per client connection, as the client's
//! pool has them), and hijacked connections (`attach`: after a `101` answer, or any
//! `Connection: Upgrade` request, bytes are piped both ways untouched).
//!
//! A [`Fault`] picks requests by [`Call`] kind (or method and substrings of the decoded
//! target) and the n-th such request; [`Call::of`] names every Engine API call envlock makes,
//! so a fault on any of them is one line.

use std::io::{self, BufRead, BufReader, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The engine the relay forwards to.
const ENGINE: &str = "/var/run/docker.sock";

/// The kind of an Engine API call, from its method and path (version prefix dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `GET|HEAD /_ping`
    Ping,
    /// `GET /version`
    Version,
    /// `GET /info`
    Info,
    /// `GET /images/{name}/json`
    ImageInspect,
    /// `GET /images/{name}/history`
    ImageHistory,
    /// `GET /images/{name}/get` and `GET /images/get` (`docker save`, the export stream)
    ImageExport,
    /// `POST /images/create` (a pull)
    ImagePull,
    /// `POST /containers/create`
    ContainerCreate,
    /// `GET /containers/{id}/json`
    ContainerInspect,
    /// `POST /containers/{id}/start`
    ContainerStart,
    /// `POST /containers/{id}/wait`
    ContainerWait,
    /// `POST /containers/{id}/attach`
    ContainerAttach,
    /// `GET /containers/{id}/logs`
    ContainerLogs,
    /// `POST /containers/{id}/kill` or `/stop`
    ContainerStop,
    /// `DELETE /containers/{id}`
    ContainerRemove,
    /// `GET /containers/json`
    ContainerList,
    /// `HEAD /containers/{id}/archive` (a path's stat)
    ArchiveHead,
    /// `GET /containers/{id}/archive` (a path's tar stream)
    ArchiveGet,
    /// `PUT /containers/{id}/archive` (an upload)
    ArchivePut,
    /// `/containers/{id}/export` (a container's file system)
    ContainerExport,
    /// `/volumes…`
    Volume,
    /// Anything else.
    Other,
}

impl Call {
    /// What `method target` is; `target` may carry the `/v1.xx` prefix and a query.
    pub fn of(method: &str, target: &str) -> Call {
        let path = target.split('?').next().unwrap_or_default();
        let path = strip_version(path);
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, parts.as_slice()) {
            (_, ["_ping"]) => Call::Ping,
            ("GET", ["version"]) => Call::Version,
            ("GET", ["info"]) => Call::Info,
            ("GET", ["images", "get"]) => Call::ImageExport,
            ("POST", ["images", "create"]) => Call::ImagePull,
            ("GET", ["containers", "json"]) => Call::ContainerList,
            ("POST", ["containers", "create"]) => Call::ContainerCreate,
            ("DELETE", ["containers", _]) => Call::ContainerRemove,
            (_, ["volumes", ..]) => Call::Volume,
            ("GET", ["images", .., "json"]) => Call::ImageInspect,
            ("GET", ["images", .., "history"]) => Call::ImageHistory,
            ("GET", ["images", .., "get"]) => Call::ImageExport,
            (_, ["containers", _, "export"]) => Call::ContainerExport,
            ("HEAD", ["containers", _, "archive"]) => Call::ArchiveHead,
            ("GET", ["containers", _, "archive"]) => Call::ArchiveGet,
            ("PUT", ["containers", _, "archive"]) => Call::ArchivePut,
            ("GET", ["containers", _, "json"]) => Call::ContainerInspect,
            ("POST", ["containers", _, "start"]) => Call::ContainerStart,
            ("POST", ["containers", _, "wait"]) => Call::ContainerWait,
            ("POST", ["containers", _, "attach"]) => Call::ContainerAttach,
            ("GET", ["containers", _, "logs"]) => Call::ContainerLogs,
            ("POST", ["containers", _, "kill" | "stop"]) => Call::ContainerStop,
            _ => Call::Other,
        }
    }
}

/// `/v1.47/images/…` → `/images/…`.
fn strip_version(path: &str) -> &str {
    let Some(rest) = path.strip_prefix("/v") else {
        return path;
    };
    match rest.find('/') {
        Some(slash)
            if rest[..slash]
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.') =>
        {
            &rest[slash..]
        }
        _ => path,
    }
}

/// What a fault does to the request it picks.
#[derive(Debug, Clone)]
pub enum Action {
    /// Answers this status with the engine's JSON error body `{"message": …}`; the request
    /// never reaches the engine.
    Status(u16, String),
    /// Forwards the request, relays the response head and this many bytes of the body as
    /// they are on the wire (chunk framing included), then closes the connection.
    ResetAfter(usize),
    /// Forwards the request, relays this many bytes of the body in well-formed framing
    /// (the bytes a `Content-Length` promised, or whole chunks), then closes without the
    /// rest: a body that ends short of its promise. (A body framed by the end of the
    /// connection cannot fall short: it just ends there.)
    Truncate(usize),
    /// Never answers: the request is not forwarded, the connection is held until the relay
    /// is dropped.
    Stall,
    /// Forwards the request, relays the head and this many body bytes, then holds the
    /// connection until the relay is dropped.
    StallAfter(usize),
}

/// Which requests a fault applies to.
#[derive(Debug, Clone)]
pub struct Fault {
    call: Option<Call>,
    method: Option<String>,
    /// Each must occur in the percent-decoded target.
    contains: Vec<String>,
    /// The n-th matching request (from 1); `None`: every one.
    nth: Option<usize>,
    /// Only a request whose target a `HEAD` answered 200 before (a path stat'ed and found).
    after_stat: bool,
    action: Action,
    seen: Arc<AtomicUsize>,
    fired: Arc<AtomicUsize>,
}

impl Fault {
    /// Every request of kind `call` whose decoded target contains each of `contains`.
    pub fn on(call: Call, contains: &[&str], action: Action) -> Fault {
        Fault {
            call: Some(call),
            method: None,
            contains: contains.iter().map(|s| s.to_string()).collect(),
            nth: None,
            after_stat: false,
            action,
            seen: Arc::default(),
            fired: Arc::default(),
        }
    }

    /// Every `method` request whose decoded target contains each of `contains`.
    pub fn raw(method: &str, contains: &[&str], action: Action) -> Fault {
        Fault {
            call: None,
            method: Some(method.to_string()),
            ..Fault::on(Call::Other, contains, action)
        }
    }

    /// Only the `n`-th match (from 1).
    pub fn nth(mut self, n: usize) -> Fault {
        self.nth = Some(n);
        self
    }

    /// Only a request for a path a stat found before: the engine's archive endpoint
    /// answering 404 right after its `HEAD` answered 200 for the same target (the mount
    /// race of a busy engine, moby#10992).
    pub fn after_stat(mut self) -> Fault {
        self.after_stat = true;
        self
    }

    fn matches(&self, method: &str, decoded: &str, call: Call) -> bool {
        self.call.is_none_or(|wanted| wanted == call)
            && self.method.as_deref().is_none_or(|wanted| wanted == method)
            && self.contains.iter().all(|part| decoded.contains(part))
    }

    /// Counts a match; whether this one is hit.
    fn hit(&self) -> bool {
        let seen = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        let hit = self.nth.is_none_or(|n| n == seen);
        if hit {
            self.fired.fetch_add(1, Ordering::SeqCst);
        }
        hit
    }
}

/// One request the relay saw.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    /// The target as sent, percent-decoded.
    pub target: String,
    pub call: Call,
    /// The answer's status, when one came (the engine's, or a fault's).
    pub status: Option<u16>,
    /// The index in the relay's faults of the fault applied.
    pub fault: Option<usize>,
}

impl std::fmt::Display for Logged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.status.map_or("-".to_string(), |s| s.to_string());
        let fault = self
            .fault
            .map_or(String::new(), |i| format!(" [fault {i}]"));
        write!(f, "{} {} -> {status}{fault}", self.method, self.target)
    }
}

struct Shared {
    faults: Vec<Fault>,
    log: Mutex<Vec<Logged>>,
    stop: AtomicBool,
    /// Clones of every client connection, shut down when the relay goes.
    clients: Mutex<Vec<UnixStream>>,
    /// `ENVLOCK_RELAY_LOG` set: each request is printed as it comes.
    print: bool,
}

/// A running relay; dropping it stops it, closes its connections and removes its socket.
pub struct Relay {
    shared: Arc<Shared>,
    socket: PathBuf,
    _dir: tempfile::TempDir,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    /// Listens on a fresh socket, forwarding to the engine and applying `faults` (the first
    /// that matches a request wins).
    pub fn start(faults: Vec<Fault>) -> Relay {
        // Under /tmp: a socket path must be short.
        let dir = tempfile::Builder::new()
            .prefix("envlock-relay-")
            .tempdir_in("/tmp")
            .unwrap();
        let socket = dir.path().join("engine.sock");
        let listener = UnixListener::bind(&socket).expect("the relay listens");
        let shared = Arc::new(Shared {
            faults,
            log: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            clients: Mutex::new(Vec::new()),
            print: std::env::var_os("ENVLOCK_RELAY_LOG").is_some(),
        });
        let accepting = shared.clone();
        let acceptor = std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if let Ok(clone) = client.try_clone() {
                    accepting.clients.lock().unwrap().push(clone);
                }
                let shared = accepting.clone();
                std::thread::spawn(move || {
                    let _ = serve(&shared, client);
                });
            }
        });
        Relay {
            shared,
            socket,
            _dir: dir,
            acceptor: Some(acceptor),
        }
    }

    /// The value of `DOCKER_HOST` that reaches the relay.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Every request so far, in the order they came.
    pub fn log(&self) -> Vec<Logged> {
        self.shared.log.lock().unwrap().clone()
    }

    /// The log, a request a line.
    pub fn log_text(&self) -> String {
        self.log()
            .iter()
            .map(|logged| format!("  {logged}\n"))
            .collect()
    }

    /// How many times fault `index` was applied.
    pub fn fired(&self, index: usize) -> usize {
        self.shared.faults[index].fired.load(Ordering::SeqCst)
    }

    /// Waits (up to `limit`) until fault `index` was applied; whether it was.
    pub fn wait_fired(&self, index: usize, limit: Duration) -> bool {
        let start = Instant::now();
        while self.fired(index) == 0 {
            if start.elapsed() > limit {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for client in self.shared.clients.lock().unwrap().drain(..) {
            let _ = client.shutdown(Shutdown::Both);
        }
        // Wakes the accept loop, which then sees the stop.
        let _ = UnixStream::connect(&self.socket);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// A request or response head: the first line and the headers, as read.
struct Head {
    line: String,
    headers: Vec<(String, String)>,
    raw: Vec<u8>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .flat_map(|(_, value)| value.split(','))
            .any(|part| part.trim().eq_ignore_ascii_case(token))
    }

    fn chunked(&self) -> bool {
        self.has_token("transfer-encoding", "chunked")
    }

    fn content_length(&self) -> Option<u64> {
        self.header("content-length")?.trim().parse().ok()
    }
}

/// Reads a head up to its blank line; `None` at a clean end of the stream.
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut raw = Vec::new();
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line)? == 0 {
            if raw.is_empty() {
                return Ok(None);
            }
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        raw.extend_from_slice(&line);
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        if text.is_empty() {
            if lines.is_empty() {
                continue; // a stray CRLF between messages
            }
            break;
        }
        lines.push(text);
    }
    let line = lines.remove(0);
    let headers = lines
        .into_iter()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            Some((key.trim().to_string(), value.trim().to_string()))
        })
        .collect();
    Ok(Some(Head { line, headers, raw }))
}

/// How a body is framed.
#[derive(Clone, Copy)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Until the connection ends (a response only).
    Close,
}

fn request_framing(head: &Head) -> Framing {
    if head.chunked() {
        Framing::Chunked
    } else {
        head.content_length().map_or(Framing::None, Framing::Length)
    }
}

fn response_framing(request_method: &str, status: u16, head: &Head) -> Framing {
    if request_method == "HEAD" || (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::None
    } else if head.chunked() {
        Framing::Chunked
    } else {
        head.content_length()
            .map_or(Framing::Close, Framing::Length)
    }
}

/// Where a body's bytes go, and how many may go before the relay breaks off.
struct Sink<'a> {
    out: &'a mut dyn Write,
    /// Bytes left before the break; `None`: no limit.
    left: Option<usize>,
}

/// Broke off at the limit.
#[derive(Debug)]
struct Limit;

impl Sink<'_> {
    /// Writes what the limit lets through; `Err(Limit)` once it is reached.
    fn put(&mut self, bytes: &[u8]) -> io::Result<Result<(), Limit>> {
        match &mut self.left {
            None => self.out.write_all(bytes).map(Ok),
            Some(left) => {
                let take = bytes.len().min(*left);
                self.out.write_all(&bytes[..take])?;
                *left -= take;
                Ok(if take < bytes.len() || *left == 0 && !bytes.is_empty() {
                    Err(Limit)
                } else {
                    Ok(())
                })
            }
        }
    }
}

/// Copies a body from `input` to `sink` as framed, raw (framing bytes counted).
fn copy_body(
    input: &mut impl BufRead,
    framing: Framing,
    sink: &mut Sink<'_>,
) -> io::Result<Result<(), Limit>> {
    match framing {
        Framing::None => Ok(Ok(())),
        Framing::Length(mut left) => {
            let mut buffer = [0u8; 16 * 1024];
            while left > 0 {
                let want = buffer
                    .len()
                    .min(usize::try_from(left).unwrap_or(usize::MAX));
                let read = input.read(&mut buffer[..want])?;
                if read == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                left -= read as u64;
                if let Err(limit) = sink.put(&buffer[..read])? {
                    return Ok(Err(limit));
                }
            }
            Ok(Ok(()))
        }
        Framing::Close => {
            let mut buffer = [0u8; 16 * 1024];
            loop {
                let read = input.read(&mut buffer)?;
                if read == 0 {
                    return Ok(Ok(()));
                }
                if let Err(limit) = sink.put(&buffer[..read])? {
                    return Ok(Err(limit));
                }
            }
        }
        Framing::Chunked => loop {
            let mut size_line = Vec::new();
            if input.read_until(b'\n', &mut size_line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if let Err(limit) = sink.put(&size_line)? {
                return Ok(Err(limit));
            }
            let size = chunk_size(&size_line)?;
            if size == 0 {
                // Trailers up to the blank line.
                loop {
                    let mut line = Vec::new();
                    if input.read_until(b'\n', &mut line)? == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    if let Err(limit) = sink.put(&line)? {
                        return Ok(Err(limit));
                    }
                    if line == b"\r\n" || line == b"\n" {
                        return Ok(Ok(()));
                    }
                }
            }
            // The data and its CRLF.
            if let Err(limit) = copy_body(input, Framing::Length(size + 2), sink)? {
                return Ok(Err(limit));
            }
        },
    }
}

fn chunk_size(line: &[u8]) -> io::Result<u64> {
    let text = String::from_utf8_lossy(line);
    let hex = text.trim().split(';').next().unwrap_or_default().trim();
    u64::from_str_radix(hex, 16).map_err(|_| io::Error::other(format!("chunk size `{hex}`")))
}

/// Reads a body's payload (framing removed) and writes at most `limit` bytes of it to `out`
/// in the same framing, a promise left unmet: a `Content-Length` body short of its length,
/// a chunked body without its last chunk.
fn truncate_body(
    input: &mut impl BufRead,
    framing: Framing,
    limit: usize,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut payload = Vec::new();
    let mut collect = Sink {
        out: &mut payload,
        left: Some(limit),
    };
    match framing {
        Framing::Chunked => loop {
            let mut size_line = Vec::new();
            if input.read_until(b'\n', &mut size_line)? == 0 {
                break;
            }
            let size = chunk_size(&size_line)?;
            if size == 0 {
                break;
            }
            let mut data = vec![0u8; usize::try_from(size).map_err(io::Error::other)?];
            input.read_exact(&mut data)?;
            let mut crlf = [0u8; 2];
            input.read_exact(&mut crlf)?;
            if collect.put(&data)?.is_err() {
                break;
            }
        },
        framing => {
            copy_body(input, framing, &mut collect)?.ok();
        }
    }
    match framing {
        Framing::Chunked => {
            for piece in payload.chunks(4096) {
                write!(out, "{:x}\r\n", piece.len())?;
                out.write_all(piece)?;
                out.write_all(b"\r\n")?;
            }
        }
        _ => out.write_all(&payload)?,
    }
    out.flush()
}

/// `%2F` → `/`, `+` kept.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok());
        if let (b'%', Some(hex)) = (bytes[i], hex) {
            if let Ok(byte) = u8::from_str_radix(hex, 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The engine's error answer.
fn error_answer(status: u16, message: &str) -> Vec<u8> {
    let body = serde_json::json!({ "message": message }).to_string();
    format!(
        "HTTP/1.1 {status} Fault\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Api-Version: 1.41\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Holds a connection until the relay stops or the client goes away (as a stalled
/// network does: the client's end closing ends it, and the engine's stream with it — an
/// engine still writing an archive keeps its container busy, and its removal waits).
fn hold(shared: &Shared, client: &UnixStream) {
    use std::os::fd::AsRawFd as _;
    let mut byte = 0u8;
    while !shared.stop.load(Ordering::SeqCst) {
        // SAFETY: a peek of one byte into a live buffer, on a socket this thread owns a
        // handle to.
        let peeked = unsafe {
            libc::recv(
                client.as_raw_fd(),
                (&raw mut byte).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        let would_block =
            peeked < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock;
        if peeked == 0 || (peeked < 0 && !would_block) {
            return; // the client went away
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Pipes bytes both ways until either side ends.
fn pipe(client: &UnixStream, upstream: &UnixStream, upstream_buffered: &[u8]) -> io::Result<()> {
    let mut to_client = client.try_clone()?;
    to_client.write_all(upstream_buffered)?;
    let mut from_upstream = upstream.try_clone()?;
    let down = std::thread::spawn(move || {
        let _ = io::copy(&mut from_upstream, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Write);
    });
    let mut from_client = client.try_clone()?;
    let mut to_upstream = upstream.try_clone()?;
    let _ = io::copy(&mut from_client, &mut to_upstream);
    let _ = to_upstream.shutdown(Shutdown::Write);
    let _ = down.join();
    Ok(())
}

/// One client connection: its requests in turn, each forwarded on one upstream connection.
fn serve(shared: &Shared, client: UnixStream) -> io::Result<()> {
    let mut from_client = BufReader::new(client.try_clone()?);
    let mut to_client = client.try_clone()?;
    let mut upstream: Option<(UnixStream, BufReader<UnixStream>)> = None;
    while let Some(request) = read_head(&mut from_client)? {
        let mut words = request.line.split_whitespace();
        let method = words.next().unwrap_or_default().to_string();
        let target = percent_decode(words.next().unwrap_or_default());
        let call = Call::of(&method, &target);
        let stat_found = || {
            shared.log.lock().unwrap().iter().any(|logged| {
                logged.method == "HEAD" && logged.target == target && logged.status == Some(200)
            })
        };
        let fault = shared.faults.iter().enumerate().find_map(|(index, fault)| {
            (fault.matches(&method, &target, call)
                && (!fault.after_stat || stat_found())
                && fault.hit())
            .then_some(index)
        });
        let entry = {
            let mut log = shared.log.lock().unwrap();
            log.push(Logged {
                method: method.clone(),
                target: target.clone(),
                call,
                status: None,
                fault,
            });
            log.len() - 1
        };
        if shared.print {
            eprintln!(
                "relay: {method} {target}{}",
                fault.map_or("", |_| " [fault]")
            );
        }
        let set_status = |status: u16| shared.log.lock().unwrap()[entry].status = Some(status);
        let action = fault.map(|index| shared.faults[index].action.clone());
        match action {
            Some(Action::Status(status, message)) => {
                copy_body(
                    &mut from_client,
                    request_framing(&request),
                    &mut Sink {
                        out: &mut io::sink(),
                        left: None,
                    },
                )?
                .ok();
                to_client.write_all(&error_answer(status, &message))?;
                to_client.flush()?;
                set_status(status);
                continue;
            }
            Some(Action::Stall) => {
                hold(shared, &client);
                break;
            }
            _ => {}
        }
        if upstream.is_none() {
            let stream = UnixStream::connect(ENGINE)?;
            let reader = BufReader::new(stream.try_clone()?);
            upstream = Some((stream, reader));
        }
        let (to_engine, from_engine) = upstream.as_mut().expect("connected above");
        to_engine.write_all(&request.raw)?;
        copy_body(
            &mut from_client,
            request_framing(&request),
            &mut Sink {
                out: to_engine,
                left: None,
            },
        )?
        .ok();
        to_engine.flush()?;
        let Some(response) = read_head(from_engine)? else {
            break;
        };
        let status: u16 = response
            .line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        set_status(status);
        let upgrade = status == 101 || request.has_token("connection", "upgrade");
        if upgrade && fault.is_none() {
            to_client.write_all(&response.raw)?;
            let buffered = from_engine.buffer().to_vec();
            let (engine, _) = upstream.take().expect("connected above");
            pipe(&client, &engine, &buffered)?;
            break;
        }
        let framing = response_framing(&method, status, &response);
        to_client.write_all(&response.raw)?;
        match action {
            Some(Action::ResetAfter(bytes)) | Some(Action::StallAfter(bytes)) => {
                let mut sink = Sink {
                    out: &mut to_client,
                    left: Some(bytes),
                };
                let _ = copy_body(from_engine, framing, &mut sink)?;
                to_client.flush()?;
                if matches!(action, Some(Action::StallAfter(_))) {
                    hold(shared, &client);
                }
                break;
            }
            Some(Action::Truncate(bytes)) => {
                truncate_body(from_engine, framing, bytes, &mut to_client)?;
                break;
            }
            _ => {}
        }
        let mut sink = Sink {
            out: &mut to_client,
            left: None,
        };
        copy_body(from_engine, framing, &mut sink)?.ok();
        to_client.flush()?;
        let closing = matches!(framing, Framing::Close)
            || response.has_token("connection", "close")
            || request.has_token("connection", "close");
        if closing {
            break;
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    if let Some((engine, _)) = upstream {
        let _ = engine.shutdown(Shutdown::Both);
    }
    Ok(())
}

#[test]
fn calls_are_named_by_method_and_path() {
    let cases = [
        ("GET", "/_ping", Call::Ping),
        ("GET", "/v1.47/version", Call::Version),
        (
            "GET",
            "/v1.47/images/envlock-test/x:1/json",
            Call::ImageInspect,
        ),
        ("GET", "/v1.47/images/sha256:ab/history", Call::ImageHistory),
        ("GET", "/v1.47/images/sha256:ab/get", Call::ImageExport),
        ("POST", "/v1.47/containers/create?", Call::ContainerCreate),
        (
            "HEAD",
            "/v1.47/containers/ab/archive?path=/etc",
            Call::ArchiveHead,
        ),
        (
            "GET",
            "/v1.47/containers/ab/archive?path=/etc",
            Call::ArchiveGet,
        ),
        (
            "DELETE",
            "/v1.47/containers/ab?force=true",
            Call::ContainerRemove,
        ),
        (
            "POST",
            "/v1.47/containers/ab/attach?stream=1",
            Call::ContainerAttach,
        ),
        ("POST", "/v1.47/containers/ab/wait", Call::ContainerWait),
    ];
    for (method, target, call) in cases {
        assert_eq!(Call::of(method, target), call, "{method} {target}");
    }
    assert_eq!(
        percent_decode("path=%2Fetc%2Fos-release"),
        "path=/etc/os-release"
    );
    assert_eq!(percent_decode("a%2"), "a%2");
}
