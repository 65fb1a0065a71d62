//! A registry failing (issue 25): an HTTP relay on 127.0.0.1 in front of a real
//! `docker-registry` answers chosen requests with an error status (and `Retry-After`), cuts a
//! blob mid-body, sends it slowly, lies about its `Content-Length`, flips a byte, or stalls.
//! Transient failures (429, 503, resets) are asked again and the capture equals the
//! registry's own; permanent ones are not; a corrupt blob is never accepted; a stall ends
//! within `ENVLOCK_REGISTRY_TIMEOUT`. `--nocapture` prints the matrix.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::docker::{fixture, need_engine};
use crate::registry::Registry;
use crate::support::*;

/// What a fault does to a request it picks.
#[derive(Debug, Clone)]
enum Action {
    /// Answers this status (with a `Retry-After` of so many seconds), never forwarding.
    Status(u16, Option<u32>),
    /// Forwards, relays the head and this many body bytes, then closes.
    ResetAfter(usize),
    /// Forwards, relays the body 16 KiB at a time with this pause between pieces.
    Slow(Duration),
    /// Forwards, and says the body is this many bytes longer (or shorter) than it is.
    WrongLength(i64),
    /// Forwards the body with one byte in its middle flipped.
    Flip,
    /// Never answers.
    Stall,
    /// Relays the head and this many body bytes, then holds the connection.
    StallAfter(usize),
}

/// Requests whose path holds `part`; the first `times` of them (all: `None`).
#[derive(Debug, Clone)]
struct Fault {
    part: &'static str,
    /// Only requests whose blob is the largest the image has (its biggest layer).
    largest: bool,
    times: Option<usize>,
    action: Action,
}

struct Shared {
    upstream: String,
    fault: Fault,
    /// The largest layer's digest, for `Fault::largest`.
    largest: String,
    /// The matching requests seen and faulted.
    seen: AtomicUsize,
    fired: AtomicUsize,
    /// Every request line, with its `Range` header when it has one.
    log: Mutex<Vec<String>>,
    stop: AtomicBool,
}

/// A relay on a port of its own; dropping it stops it.
struct Relay {
    shared: Arc<Shared>,
    host: String,
}

impl Relay {
    fn start(upstream: &str, largest: &str, fault: Fault) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            fault,
            largest: largest.to_string(),
            seen: AtomicUsize::new(0),
            fired: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let shared = accepting.clone();
                std::thread::spawn(move || {
                    let _ = serve(&shared, client);
                });
            }
        });
        Relay { shared, host }
    }

    fn fired(&self) -> usize {
        self.shared.fired.load(Ordering::SeqCst)
    }

    fn log(&self) -> Vec<String> {
        self.shared.log.lock().unwrap().clone()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.host);
    }
}

/// A request or response head, as lines.
fn read_head(reader: &mut impl BufRead) -> std::io::Result<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end().to_string();
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line);
    }
}

fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

/// Holds `client` until it goes away or the relay stops.
fn hold(shared: &Shared, client: &TcpStream) {
    client
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut byte = [0u8; 1];
    while !shared.stop.load(Ordering::SeqCst) {
        match client.peek(&mut byte) {
            Ok(0) => return,
            Ok(_) => std::thread::sleep(Duration::from_millis(100)),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// One request per connection (the answer says `Connection: close`): forwarded whole to
/// the registry, its answer read whole, then relayed or faulted.
fn serve(shared: &Shared, client: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut to_client = client.try_clone()?;
    let head = read_head(&mut reader)?;
    let target = head[0].split_whitespace().nth(1).unwrap_or("").to_string();
    let range = header(&head, "range").map(|range| format!(" [Range: {range}]"));
    shared
        .log
        .lock()
        .unwrap()
        .push(format!("{}{}", head[0], range.unwrap_or_default()));
    let fault = &shared.fault;
    let matches =
        target.contains(fault.part) && (!fault.largest || target.contains(&shared.largest));
    let hit = matches && {
        let seen = shared.seen.fetch_add(1, Ordering::SeqCst) + 1;
        fault.times.is_none_or(|times| seen <= times)
    };
    if hit {
        shared.fired.fetch_add(1, Ordering::SeqCst);
    }
    let action = hit.then(|| fault.action.clone());
    match &action {
        Some(Action::Status(status, retry_after)) => {
            // The codes of the distribution specification.
            let code = match status {
                429 => "TOOMANYREQUESTS",
                404 => "MANIFEST_UNKNOWN",
                401 => "UNAUTHORIZED",
                _ => "UNAVAILABLE",
            };
            let body =
                format!("{{\"errors\":[{{\"code\":\"{code}\",\"message\":\"injected fault\"}}]}}");
            let retry = retry_after.map_or(String::new(), |s| format!("Retry-After: {s}\r\n"));
            write!(
                to_client,
                "HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\n{retry}\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )?;
            return to_client.flush();
        }
        Some(Action::Stall) => {
            hold(shared, &client);
            return Ok(());
        }
        _ => {}
    }
    // Forward the request (GET and HEAD have no body) with the connection closed after.
    let mut upstream = TcpStream::connect(&shared.upstream)?;
    let mut request = String::new();
    for line in &head {
        let key = line.split(':').next().unwrap_or("").trim();
        if key.eq_ignore_ascii_case("connection") || key.eq_ignore_ascii_case("host") {
            continue;
        }
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str(&format!(
        "Host: {}\r\nConnection: close\r\n\r\n",
        shared.upstream
    ));
    upstream.write_all(request.as_bytes())?;
    let mut from_upstream = BufReader::new(upstream);
    let answer = read_head(&mut from_upstream)?;
    let is_head = head[0].starts_with("HEAD ");
    // Every answer of the registry to a GET has a length (blobs, manifests, errors).
    let length: i64 = header(&answer, "content-length")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let said = match &action {
        Some(Action::WrongLength(delta)) => length + delta,
        _ => length,
    };
    let mut out = String::new();
    for line in &answer {
        let key = line.split(':').next().unwrap_or("").trim();
        if ["connection", "content-length", "transfer-encoding"]
            .iter()
            .any(|name| key.eq_ignore_ascii_case(name))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "Content-Length: {said}\r\nConnection: close\r\n\r\n"
    ));
    to_client.write_all(out.as_bytes())?;
    if is_head {
        return to_client.flush();
    }
    // The body, as it comes, up to where the fault breaks it.
    let (stop, piece) = match &action {
        Some(Action::ResetAfter(bytes)) | Some(Action::StallAfter(bytes)) => {
            (*bytes as i64, 64 << 10)
        }
        Some(Action::WrongLength(delta)) if *delta < 0 => (said, 64 << 10),
        Some(Action::Slow(_)) => (length, 16 << 10),
        _ => (length, 64 << 10),
    };
    let stop = stop.min(length).max(0) as usize;
    let flip = matches!(action, Some(Action::Flip)).then_some(length as usize / 2);
    let mut buffer = vec![0u8; piece];
    let mut sent = 0usize;
    while sent < stop {
        let want = piece.min(stop - sent);
        from_upstream.read_exact(&mut buffer[..want])?;
        if let Some(at) = flip.filter(|at| (sent..sent + want).contains(at)) {
            buffer[at - sent] ^= 0xff;
        }
        to_client.write_all(&buffer[..want])?;
        sent += want;
        if let Some(Action::Slow(pause)) = &action {
            to_client.flush()?;
            std::thread::sleep(*pause);
        }
    }
    to_client.flush()?;
    match &action {
        Some(Action::ResetAfter(_)) => {
            let _ = client.shutdown(Shutdown::Both);
        }
        Some(Action::StallAfter(_)) => hold(shared, &client),
        _ => {
            let _ = client.shutdown(Shutdown::Write);
        }
    }
    Ok(())
}

/// One case: a fault, what the run must end with, what its message names, how many
/// requests the fault must have caught (`None`: any), and whether a Range request resumed.
struct Case {
    name: &'static str,
    fault: Fault,
    exit: i32,
    names: &'static [&'static str],
    fired: Option<usize>,
    resumed: bool,
    /// `envlock audit registry:HOST/REPO` (its tags listed) instead of a snapshot of a tag.
    audit: bool,
}

/// The seconds of `ENVLOCK_REGISTRY_TIMEOUT` in the cases.
const LIMIT: &str = "3";

impl Case {
    /// A fault envlock gets through (the capture equals the registry's own), having caught
    /// `fired` requests.
    fn passes(name: &'static str, fault: Fault, fired: usize) -> Case {
        Case {
            name,
            fault,
            exit: 0,
            names: &[],
            fired: Some(fired),
            resumed: false,
            audit: false,
        }
    }

    /// A fault that fails the run (exit 2), its message naming `names`.
    fn fails(
        name: &'static str,
        fault: Fault,
        names: &'static [&'static str],
        fired: Option<usize>,
    ) -> Case {
        Case {
            exit: 2,
            names,
            fired,
            ..Case::passes(name, fault, 0)
        }
    }

    /// A range request resumes the blob.
    fn resumed(self) -> Case {
        Case {
            resumed: true,
            ..self
        }
    }

    /// Through `envlock audit` of the repository.
    fn audit(self) -> Case {
        Case {
            audit: true,
            ..self
        }
    }
}

fn cases() -> Vec<Case> {
    use Action::*;
    let fault = |part, times, action| Fault {
        part,
        largest: false,
        times,
        action,
    };
    let manifest = |times, action| fault("/manifests/", times, action);
    let blob = |times, action| Fault {
        largest: true,
        ..fault("/blobs/", times, action)
    };
    const TIMEOUT: &[&str] = &["registry:", "ENVLOCK_REGISTRY_TIMEOUT"];
    const DIGEST: &[&str] = &["registry:", "digest"];
    const LAYER: &[&str] = &["registry:", "layer"];
    let tries = Some(4);
    vec![
        Case::passes("manifest 503 once", manifest(Some(1), Status(503, None)), 1),
        Case::passes(
            "manifest 429 twice, Retry-After: 1",
            manifest(Some(2), Status(429, Some(1))),
            2,
        ),
        Case::fails(
            "manifest 503 always",
            manifest(None, Status(503, None)),
            &["registry:", "asked 4 times"],
            tries,
        ),
        Case::fails(
            "manifest 500",
            manifest(None, Status(500, None)),
            &["registry:", "500"],
            Some(1),
        ),
        Case::fails(
            "manifest 404",
            manifest(None, Status(404, None)),
            &["registry:", "no such image"],
            Some(1),
        ),
        Case::fails(
            "manifest 401",
            manifest(None, Status(401, None)),
            &["registry:", "refused access"],
            None,
        ),
        Case::fails("manifest stall", manifest(None, Stall), TIMEOUT, Some(1)),
        // The first blob asked for is the config.
        Case::passes(
            "config 503 once",
            fault("/blobs/", Some(1), Status(503, None)),
            1,
        ),
        Case::passes("layer 429 once", blob(Some(1), Status(429, Some(2))), 1),
        Case::passes(
            "layer reset mid-body once",
            blob(Some(1), ResetAfter(1 << 20)),
            1,
        )
        .resumed(),
        Case::fails(
            "layer reset mid-body always",
            blob(None, ResetAfter(1 << 20)),
            LAYER,
            tries,
        )
        .resumed(),
        Case::passes(
            "layer slow (16 KiB every 2 ms)",
            blob(None, Slow(Duration::from_millis(2))),
            1,
        ),
        Case::fails(
            "layer Content-Length 100 too long",
            blob(Some(1), WrongLength(100)),
            LAYER,
            Some(1),
        )
        .resumed(),
        Case::fails(
            "layer Content-Length 100 too short",
            blob(None, WrongLength(-100)),
            DIGEST,
            None,
        ),
        Case::fails(
            "layer with a byte flipped",
            blob(None, Flip),
            DIGEST,
            Some(1),
        ),
        Case::fails(
            "layer stall before the head",
            blob(None, Stall),
            TIMEOUT,
            Some(1),
        ),
        Case::fails(
            "layer stall mid-body",
            blob(None, StallAfter(1 << 20)),
            TIMEOUT,
            Some(1),
        ),
        Case::passes(
            "tag list 503 once (audit)",
            fault("/tags/list", Some(1), Status(503, None)),
            1,
        )
        .audit(),
        Case::fails(
            "tag list stall (audit)",
            fault("/tags/list", None, Stall),
            TIMEOUT,
            Some(1),
        )
        .audit(),
    ]
}

/// The digest of the largest layer of `reference`'s manifest in `registry`.
fn largest_layer(registry: &Registry, repository: &str) -> String {
    let mut stream = TcpStream::connect(&registry.host).unwrap();
    write!(
        stream,
        "GET /v2/{repository}/manifests/v1 HTTP/1.1\r\nHost: {}\r\nAccept: \
         application/vnd.oci.image.manifest.v1+json, \
         application/vnd.docker.distribution.manifest.v2+json\r\nConnection: close\r\n\r\n",
        registry.host
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    let manifest: serde_json::Value = serde_json::from_str(body).unwrap();
    let largest = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|layer| layer["size"].as_u64().unwrap())
        .unwrap();
    // A cut every 1 MiB breaks it more often than it may be resumed.
    assert!(largest["size"].as_u64().unwrap() > 8 << 20, "{largest}");
    largest["digest"].as_str().unwrap().to_string()
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn every_registry_fault_is_retried_refused_or_timed_out() {
    need_engine();
    let registry = Registry::start(None);
    let pushed = registry.push(&fixture("dist-packages"), "faults:v1");
    let largest = largest_layer(&registry, "faults");
    let truth = snapshot(
        envlock()
            .args(["snapshot", "--image"])
            .arg(format!("registry:{pushed}")),
    );
    let cases = cases();
    let results = share_out(&[(); 4], &cases, |(), _, case| {
        run_case(case, &registry, &largest, &truth)
    });
    assert_matrix(
        "| fault | exit | requests faulted | message | took |\n|---|---|---|---|---|",
        results,
    );
}

fn run_case(
    case: &Case,
    registry: &Registry,
    largest: &str,
    truth: &toml::Table,
) -> Result<String, String> {
    let relay = Relay::start(&registry.host, largest, case.fault.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("image.lock");
    let started = Instant::now();
    let mut command = envlock();
    if case.audit {
        command
            .args(["audit", "--no-exec"])
            .arg(format!("registry:{}/faults", relay.host));
    } else {
        command
            .args(["snapshot", "--image"])
            .arg(format!("registry:{}/faults:v1", relay.host));
    }
    let done = run(command
        .arg("-o")
        .arg(&out)
        .env("ENVLOCK_REGISTRY_TIMEOUT", LIMIT));
    let took = started.elapsed().as_secs_f64();
    let first = done
        .stderr
        .lines()
        .find(|line| line.starts_with("error:"))
        .unwrap_or("")
        .replace('|', "\\|");
    let log = relay.log();
    let resumed = log.iter().any(|line| line.contains("[Range: bytes="));
    let row = format!(
        "| {} | {} | {} | {} | {took:.1} s |",
        case.name,
        done.code,
        relay.fired(),
        first.replace(&relay.host, "RELAY")
    );
    let mut wrong = Vec::new();
    if done.code != case.exit {
        wrong.push(format!("exit {} (expected {})", done.code, case.exit));
    }
    if done.stderr.contains("panicked") {
        wrong.push("a panic".to_string());
    }
    match case.fired {
        Some(fired) if relay.fired() != fired => wrong.push(format!(
            "the fault caught {} requests, not {fired}",
            relay.fired()
        )),
        None if relay.fired() == 0 => wrong.push("the fault never fired".to_string()),
        _ => {}
    }
    if resumed != case.resumed {
        wrong.push(format!("resumed with a range request: {resumed}"));
    }
    for name in case.names {
        if !done.stderr.to_lowercase().contains(&name.to_lowercase()) {
            wrong.push(format!("the message does not name `{name}`"));
        }
    }
    if case.exit == 0 && case.audit {
        if !out.exists() {
            wrong.push("no audit was written".to_string());
        }
    } else if case.exit == 0 {
        // What came through the faults is what the registry holds.
        let mut lock: toml::Table = std::fs::read_to_string(&out)
            .map_err(|error| format!("{row}\n  no lock: {error}"))?
            .parse()
            .unwrap();
        let text = toml::to_string(&lock).unwrap();
        lock = text.replace(&relay.host, &registry.host).parse().unwrap();
        for key in [
            "packages",
            "system-packages",
            "numerics",
            "python",
            "platform",
        ] {
            if lock.get(key) != truth.get(key) {
                wrong.push(format!("`{key}` differs from the registry's own capture"));
            }
        }
    } else if out.exists() {
        wrong.push("a lock was written".to_string());
    }
    if wrong.is_empty() {
        Ok(row)
    } else {
        Err(format!(
            "{row}\n  {}\n  stderr:\n{}\n  requests:\n  {}",
            wrong.join("; "),
            done.stderr,
            log.join("\n  ")
        ))
    }
}
