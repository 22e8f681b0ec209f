//! What the process tests share: the binary, bounded waits, free ports, a `mempulse` process
//! whose stderr is captured (and printed when a test fails), a one-node `mempulse run` on free
//! ports, and a minimal HTTP/1.1 client.

use std::{
    io::{BufRead, BufReader, Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use bytes::Bytes;
use mempulse_primitives::{Address, Fees, Nonce, Tx, TxHash, TxType};
use serde_json::Value;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_mempulse");
/// Segment sizes of the event log and of the Raft log (its smallest: a Raft entry must fit in
/// half a segment) of the nodes the tests start: each log keeps up to two preallocated
/// segments, and tests run many nodes at once on one disk.
pub(crate) const SEGMENT_BYTES: u64 = 1 << 20;
pub(crate) const LOG_SEGMENT_BYTES: u64 = 8 << 20;
/// Bound of every wait (a debug build on a loaded 2-core machine).
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);
/// Pause between two polls of a bounded loop (pacing only: every loop has a deadline).
const POLL_PACE: Duration = Duration::from_millis(50);

/// Free loopback ports: bound to port 0 together (so they differ), then released.
pub(crate) fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> =
        (0..n).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// Polls `probe` until it returns a value; panics naming `what` after [`DEADLINE`].
pub(crate) fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < end, "timed out after {DEADLINE:?} waiting for {what}");
        std::thread::sleep(POLL_PACE);
    }
}

/// A running `mempulse` with its stderr captured line by line.
pub(crate) struct Process {
    name: String,
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl Process {
    /// Starts `mempulse <args>` with compact, uncoloured info logs.
    pub(crate) fn spawn(name: impl Into<String>, args: &[&std::ffi::OsStr]) -> Self {
        Self::spawn_env(name, args, &[])
    }

    /// Starts `mempulse run --config <config> --stream-addr <stream_addr>` (the stream
    /// listener on a fixed port; the harness otherwise defaults it to port 0).
    pub(crate) fn run_node(name: impl Into<String>, config: &Path, stream_addr: &str) -> Self {
        let args = [
            "run".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
            "--stream-addr".as_ref(),
            stream_addr.as_ref(),
        ];
        Self::spawn(name, &args)
    }

    /// As [`Process::spawn`], with extra environment variables.
    pub(crate) fn spawn_env(
        name: impl Into<String>,
        args: &[&std::ffi::OsStr],
        env: &[(&str, &str)],
    ) -> Self {
        let mut child = Command::new(BIN)
            .envs(env.iter().copied())
            .args(["--log-format", "compact"])
            .args(args)
            .env("RUST_LOG", "info,openraft=warn")
            .env("NO_COLOR", "1")
            // Every node's stream listener on a free port (a test that needs the port reads it
            // from the "node started" line, `stream=`); `--stream-addr` overrides this.
            .env("MEMPULSE_STREAM_ADDR", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let lines = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        });
        Self { name: name.into(), child: Some(child), log, reader: Some(reader) }
    }

    /// Whether it was started and has not been waited for.
    pub(crate) const fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Sends `kill <name>` (e.g. `-TERM`, `-9`).
    pub(crate) fn signal(&self, name: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let status = Command::new("kill").args([name, &pid]).status().unwrap();
        assert!(status.success(), "kill {name} {pid}");
    }

    /// Waits for the process to exit (bounded) and returns whether it exited with 0.
    pub(crate) fn wait_exit(&mut self) -> bool {
        let mut child = self.child.take().unwrap();
        let status = wait_until(&format!("{} to exit", self.name), || child.try_wait().unwrap());
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        status.success()
    }

    /// Whether a logged line contains `needle`.
    pub(crate) fn logged(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|line| line.contains(needle))
    }

    /// Every logged line containing `needle`, in order.
    pub(crate) fn logged_lines(&self, needle: &str) -> Vec<String> {
        self.log.lock().unwrap().iter().filter(|line| line.contains(needle)).cloned().collect()
    }

    /// The value of field `key` (`key=value`) in the first logged line containing `needle`.
    pub(crate) fn logged_field(&self, needle: &str, key: &str) -> Option<String> {
        let log = self.log.lock().unwrap();
        let line = log.iter().find(|line| line.contains(needle))?;
        let prefix = format!("{key}=");
        let value = line.split_whitespace().find_map(|word| word.strip_prefix(&prefix))?;
        Some(value.trim_end_matches(',').to_owned())
    }

    /// Waits (bounded) until a logged line contains `needle`.
    pub(crate) fn wait_logged(&self, needle: &str) {
        wait_until(&format!("{} to log {needle:?}", self.name), || {
            self.logged(needle).then_some(())
        });
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- {} stderr ---", self.name);
            for line in self.log.lock().unwrap().iter() {
                eprintln!("{line}");
            }
        }
    }
}

/// One node on its embedded default, on free loopback ports, driven by a config file.
pub(crate) struct Single {
    _dir: tempfile::TempDir,
    pub(crate) process: Process,
    pub(crate) http: SocketAddr,
    /// Its configuration file (for `mempulse cluster --config`).
    pub(crate) config: std::path::PathBuf,
    /// Its Raft address.
    pub(crate) raft: SocketAddr,
}

impl Single {
    pub(crate) fn start() -> Self {
        Self::start_with("")
    }

    /// Starts with `extra` appended to a configuration that sets the data dir and free ports.
    pub(crate) fn start_with(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ports = free_ports(2);
        let data = dir.path().join("data");
        let config = dir.path().join("node.toml");
        let toml = format!(
            "data-dir = {data:?}\n[wal]\nsegment-size-bytes = {SEGMENT_BYTES}\n\
             [cluster]\nraft-addr = \"127.0.0.1:{}\"\nlog-segment-size-bytes = {LOG_SEGMENT_BYTES}\n\
             [api]\nhttp-addr = \"127.0.0.1:{}\"\n{extra}",
            ports[0], ports[1]
        );
        std::fs::write(&config, toml).unwrap();
        let args = ["run".as_ref(), "--config".as_ref(), config.as_os_str()];
        let process = Process::spawn("node", &args);
        process.wait_logged("commands::run: node started");
        let http = SocketAddr::from(([127, 0, 0, 1], ports[1]));
        let raft = SocketAddr::from(([127, 0, 0, 1], ports[0]));
        Self { _dir: dir, process, http, config, raft }
    }

    /// One HTTP/1.1 exchange with `Connection: close`: (status, body).
    pub(crate) fn http(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> (u16, String) {
        http(self.http, method, path, content_type, body)
    }

    pub(crate) fn get_json(&self, path: &str) -> (u16, Value) {
        let (status, body) = self.http("GET", path, "application/json", b"");
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    pub(crate) fn rpc(&self, body: &str) -> (u16, Value) {
        let (status, body) = self.http("POST", "/", "application/json", body.as_bytes());
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    pub(crate) fn assert_healthy(&self) {
        assert_eq!(self.http("GET", "/healthz", "text/plain", b"").0, 200, "node not healthy");
    }
}

/// One HTTP/1.1 exchange with `addr` and `Connection: close`: (status, body).
pub(crate) fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    // A server may answer (413) and close before reading an oversize body.
    let _ = stream.write_all(body);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    (status, if chunked { dechunk(body) } else { body.to_owned() })
}

/// `GET path` on `addr`: (status, JSON body or `Value::Null`).
pub(crate) fn get_json(addr: SocketAddr, path: &str) -> (u16, Value) {
    let (status, body) = http(addr, "GET", path, "application/json", b"");
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// One JSON-RPC call to `addr`: (HTTP status, response object or `Value::Null`).
pub(crate) fn rpc_call(addr: SocketAddr, method: &str, params: &Value) -> (u16, Value) {
    let call = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let (status, body) = http(addr, "POST", "/", "application/json", call.to_string().as_bytes());
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The payload of a `Transfer-Encoding: chunked` body (hex size line, data, CRLF; size 0 ends).
pub(crate) fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Transaction `i` of a synthetic log: a unique hash, one of `senders` senders, nonces in
/// order per sender (no signature: for logs written directly, never for a lane).
pub(crate) fn synthetic_tx(i: u64, senders: u64) -> Tx {
    let mut hash = [0u8; 32];
    hash[..8].copy_from_slice(&i.to_le_bytes());
    let mut sender = [0u8; 20];
    sender[..8].copy_from_slice(&(i % senders).to_le_bytes());
    Tx {
        hash: TxHash(hash),
        sender: Address(sender),
        nonce: Nonce(i / senders),
        gas_limit: 21_000,
        fees: Fees::legacy(7),
        tx_type: TxType::Legacy,
        chain_id: None,
        encoded_size: 0,
        raw: Bytes::new(),
    }
}
