//! A real registry for the tests: Debian's `docker-registry` (the CNCF distribution
//! registry) on 127.0.0.1 with a free port and a temporary storage folder, optionally behind
//! basic auth (an htpasswd file), stopped when dropped. Images reach it with `skopeo copy`
//! from the engine, and its access log tells which blobs were fetched.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::must;

/// A running registry.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// `user:password` when it asks for them.
    credentials: Option<String>,
    folder: tempfile::TempDir,
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    /// Starts a registry; with `credentials` (`user`, `password`) it takes only those.
    pub fn start(credentials: Option<(&str, &str)>) -> Registry {
        let folder = tempfile::tempdir().unwrap();
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {host}\n",
            folder.path().join("storage").display()
        );
        if let Some((user, password)) = credentials {
            let hash = bcrypt::hash(password, 4).unwrap();
            let htpasswd = folder.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: envlock-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = folder.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(folder.path().join("access.log")).unwrap();
        let child = Command::new(crate::support::tool("docker-registry"))
            .arg("serve")
            .arg(&config_path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("docker-registry starts (Debian's `docker-registry` package)");
        let started = Instant::now();
        while TcpStream::connect(&host).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the registry did not listen on {host}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            child,
            host,
            credentials: credentials.map(|(user, password)| format!("{user}:{password}")),
            folder,
        }
    }

    /// Copies the engine's `image` to `name` (`repo:tag`) here; returns `HOST/repo:tag`.
    pub fn push(&self, image: &str, name: &str) -> String {
        self.copy(&format!("docker-daemon:{image}"), name)
    }

    /// Copies the `docker save` archive of one image to `name` here (the engine is not
    /// asked to export the image again); returns `HOST/repo:tag`.
    pub fn push_archive(&self, archive: &std::path::Path, name: &str) -> String {
        self.copy(&format!("docker-archive:{}", archive.display()), name)
    }

    /// Tags what `from` (`repo:tag`) here names as `name` too: a manifest copy, its blobs
    /// already here. Returns `HOST/repo:tag`.
    pub fn tag(&self, from: &str, name: &str) -> String {
        self.copy(&format!("docker://{}/{from}", self.host), name)
    }

    /// `skopeo copy SOURCE docker://HOST/NAME`, layers gzipped at level 1 (gzip all the
    /// same, in a third of the time).
    fn copy(&self, source: &str, name: &str) -> String {
        let target = format!("{}/{name}", self.host);
        let mut copy = Command::new(crate::support::tool("skopeo"));
        copy.args(["copy", "-q", "--dest-compress-level", "1"]);
        copy.args(["--src-tls-verify=false", "--dest-tls-verify=false"]);
        if let Some(credentials) = &self.credentials {
            copy.args(["--src-creds", credentials, "--dest-creds", credentials]);
        }
        must(copy.arg(source).arg(format!("docker://{target}")));
        target
    }

    /// The digests of the blobs fetched (`GET …/blobs/DIGEST`) since the log was cleared.
    pub fn blob_gets(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.folder.path().join("access.log")).unwrap();
        log.lines()
            .filter(|line| line.contains("\"GET /v2/") && line.contains("/blobs/sha256:"))
            .filter_map(|line| {
                let start = line.find("/blobs/")? + "/blobs/".len();
                let digest: String = line[start..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                Some(digest)
            })
            .collect()
    }

    /// Flips one byte in the middle of the largest blob the registry stores (a layer).
    pub fn damage_largest_blob(&self) {
        let mut blobs = Vec::new();
        let mut folders = vec![self.folder.path().join("storage")];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
                let kind = entry.file_type().unwrap();
                if kind.is_dir() {
                    folders.push(entry.path());
                } else if entry.file_name() == "data" {
                    blobs.push((entry.metadata().unwrap().len(), entry.path()));
                }
            }
        }
        let (_, largest) = blobs.into_iter().max().expect("a blob");
        let mut bytes = std::fs::read(&largest).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&largest, bytes).unwrap();
    }

    /// Forgets the requests logged so far.
    pub fn clear_log(&self) {
        std::fs::write(self.folder.path().join("access.log"), "").unwrap();
    }

    /// A Docker config folder holding `user:password` for this registry.
    pub fn docker_config(&self, user: &str, password: &str) -> tempfile::TempDir {
        let folder = tempfile::tempdir().unwrap();
        let auth = base64(format!("{user}:{password}").as_bytes());
        std::fs::write(
            folder.path().join("config.json"),
            format!(
                "{{\"auths\": {{\"{}\": {{\"auth\": \"{auth}\"}}}}}}",
                self.host
            ),
        )
        .unwrap();
        folder
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 with padding, as the Docker config writes `auth`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let value = chunk.iter().enumerate().fold(0u32, |value, (i, byte)| {
            value | u32::from(*byte) << (16 - 8 * i)
        });
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(value >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_as_the_docker_config_writes_it() {
    assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
    assert_eq!(base64(b"ab"), "YWI=");
    assert_eq!(base64(b"a"), "YQ==");
}
