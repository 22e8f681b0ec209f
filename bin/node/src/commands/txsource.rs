//! `mempulse txsource`: streams raw transactions to one node's stream lane (hex lines from a
//! file or stdin, or generated signed transfers), at an optional rate, and prints one JSON
//! line: what was sent and how the node answered (its tally). With `--catalog` it reads the
//! peer catalog from a node instead and routes by tags (`subscribe_if`): one stream to every
//! node of every matching cluster, each transaction to one stream per cluster (see
//! `route.rs`).
//!
//! SIGTERM and Ctrl-C stop the sending; the streams are then closed in order (`Close{normal}`,
//! the node's tally awaited within `--close-timeout-ms`), the report is printed as when the
//! input ends (`"ended"` says which), and the exit code is 0. With `--status-interval-ms` a
//! JSON status line (`"event":"status"`) goes to stdout that often before the report
//! (`"event":"report"`, always the last line).

mod route;

pub(crate) use route::predicate;

use std::{
    collections::BTreeMap,
    io::BufRead,
    net::SocketAddr,
    path::Path,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use mempulse_cluster::{TlsIdentity, certs::node_name};
use mempulse_net::{StreamClientConfig, StreamTally, TransferGenerator, TxStreamClient};
use mempulse_primitives::NodeId;
use rustls_pki_types::ServerName;
use serde_json::json;
use tokio::{
    net::TcpStream,
    signal::unix::{Signal, SignalKind, signal},
    sync::mpsc,
    time::{Interval, MissedTickBehavior},
};
use tokio_rustls::{TlsConnector, client::TlsStream};
use tracing::warn;

use crate::{cli::TxSourceArgs, config::parse_peer};

/// Lines read ahead of the stream (the client's own buffer bounds the rest).
const LINES_AHEAD: usize = 1024;

pub(crate) fn run(args: &TxSourceArgs) -> anyhow::Result<ExitCode> {
    let tls = match (&args.tls_ca, &args.tls_cert, &args.tls_key) {
        (Some(ca), Some(cert), Some(key)) => Some(
            TlsIdentity::from_files(ca, cert, key).context("loading the --tls-* certificates")?,
        ),
        (None, None, None) => None,
        _ => bail!("--tls-ca, --tls-cert and --tls-key go together"),
    };
    if let Some(rate) = args.rate {
        ensure!(rate > 0, "--rate must be at least 1 transaction per second");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (json, bad_lines) = runtime.block_on(async {
        // Installed first: a signal while connecting still ends in a report.
        let mut stop = Stop::install()?;
        anyhow::Ok(match (&args.catalog, &args.node) {
            (Some(catalogs), _) => {
                let report = route::stream(args, catalogs, tls, &mut stop).await?;
                (report.to_json(), report.bad_lines)
            }
            (None, Some(node)) => {
                let target = Target::parse(node)?;
                let report = stream(args, &target, tls, &mut stop).await?;
                (report.to_json(), report.bad_lines)
            }
            (None, None) => bail!("--node or --catalog is required"),
        })
    })?;
    print_line(&json.to_string());
    Ok(if bad_lines == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Why a source stopped sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    /// Its input ended (a file, stdin or `--generate`'s count).
    Input,
    /// SIGTERM.
    Terminate,
    /// SIGINT (Ctrl-C).
    Interrupt,
}

impl Ended {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Terminate => "terminate",
            Self::Interrupt => "interrupt",
        }
    }
}

/// SIGTERM and SIGINT: once one arrived, [`Stop::requested`] resolves at once, every time.
struct Stop {
    terminate: Signal,
    interrupt: Signal,
    seen: Option<Ended>,
}

impl Stop {
    fn install() -> anyhow::Result<Self> {
        let install = |kind: SignalKind| signal(kind).context("installing a signal handler");
        Ok(Self {
            terminate: install(SignalKind::terminate())?,
            interrupt: install(SignalKind::interrupt())?,
            seen: None,
        })
    }

    /// Resolves when a stop signal has arrived (now or earlier).
    async fn requested(&mut self) -> Ended {
        if let Some(ended) = self.seen {
            return ended;
        }
        let ended = tokio::select! {
            _ = self.terminate.recv() => Ended::Terminate,
            _ = self.interrupt.recv() => Ended::Interrupt,
        };
        self.seen = Some(ended);
        ended
    }
}

/// The status ticks: every `--status-interval-ms` (a JSON line each), or `fallback` (a log
/// only), or never. The first tick comes one period after the start.
struct Ticks {
    interval: Option<Interval>,
    json: bool,
}

impl Ticks {
    fn new(status_interval_ms: Option<u64>, fallback: Option<Duration>) -> Self {
        let every = status_interval_ms.map(Duration::from_millis).or(fallback);
        let interval = every.map(|every| {
            let every = every.max(Duration::from_millis(1));
            let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        });
        Self { interval, json: status_interval_ms.is_some() }
    }

    async fn tick(&mut self) {
        match &mut self.interval {
            Some(interval) => {
                interval.tick().await;
            }
            None => std::future::pending().await,
        }
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The node to stream to: `host:port`, or `id@host:port` to require that node's certificate.
struct Target {
    id: Option<NodeId>,
    host: String,
    addr: String,
}

impl Target {
    fn parse(text: &str) -> anyhow::Result<Self> {
        let (id, addr) = if text.contains('@') {
            let peer = parse_peer(text)?;
            (Some(peer.id), peer.addr)
        } else {
            (None, text.to_owned())
        };
        let (host, _port) = addr.rsplit_once(':').context("--node must be [id@]host:port")?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        Ok(Self { id, host, addr })
    }

    /// The TLS name the node's certificate must carry: `node-<id>` when the id is given, else
    /// the host dialled (`mempulse cert --hosts` puts those in every node certificate).
    fn server_name(&self) -> anyhow::Result<ServerName<'static>> {
        let name = self.id.map_or_else(|| self.host.clone(), node_name);
        ServerName::try_from(name.clone()).with_context(|| format!("`{name}` is no TLS name"))
    }
}

/// Either side of the connection the stream runs on.
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

async fn connect(target: &Target, tls: Option<TlsConnector>) -> std::io::Result<Io> {
    let tcp = TcpStream::connect(&target.addr).await?;
    let _ = tcp.set_nodelay(true);
    match tls {
        None => {
            let peer: SocketAddr = tcp.peer_addr()?;
            if !peer.ip().is_loopback() {
                return Err(std::io::Error::other("plaintext streams go to loopback only"));
            }
            Ok(Io::Plain(tcp))
        }
        Some(connector) => {
            let name = target.server_name().map_err(std::io::Error::other)?;
            Ok(Io::Tls(Box::new(connector.connect(name, tcp).await?)))
        }
    }
}

async fn stream(
    args: &TxSourceArgs,
    target: &Target,
    tls: Option<TlsIdentity>,
    stop: &mut Stop,
) -> anyhow::Result<Report> {
    let connector = match &tls {
        Some(identity) => Some(TlsConnector::from(identity.client_config()?)),
        None => None,
    };
    let mut config = StreamClientConfig::new(NodeId(args.source_id));
    config.close_timeout = Duration::from_millis(args.close_timeout_ms);
    let started = Instant::now();
    let connecting = async {
        match connector {
            None => {
                TxStreamClient::connect(|| async { plain(connect(target, None).await?) }, config)
                    .await
            }
            Some(tls) => {
                let dial = || async { secure(connect(target, Some(tls)).await?) };
                TxStreamClient::connect(dial, config).await
            }
        }
    };
    let mut input = Input::open(args)?;
    let client = tokio::select! {
        client = connecting => client.with_context(|| format!("opening a tx stream to {}", target.addr))?,
        ended = stop.requested() => {
            let elapsed_ms = elapsed_ms(started);
            return Ok(Report { sent: 0, tally: None, bad_lines: 0, elapsed_ms, ended });
        }
    };
    let pace = args.rate.map(|rate| Pace { started: Instant::now(), rate });
    let mut ticks = Ticks::new(args.status_interval_ms, None);
    let mut sent: u64 = 0;
    let ended = loop {
        let result = {
            let step = async {
                if let Some(pace) = &pace {
                    pace.wait(sent).await;
                }
                let Some(raw) = input.next().await? else { return anyhow::Ok(false) };
                client.send(raw).await.context("the node ended the stream")?;
                Ok(true)
            };
            tokio::pin!(step);
            loop {
                tokio::select! {
                    biased;
                    ended = stop.requested() => break Err(ended),
                    () = ticks.tick() => print_line(&json!({
                        "event": "status", "source": args.source_id,
                        "elapsed_ms": elapsed_ms(started), "sent": sent,
                        "open": !client.is_closed(),
                    }).to_string()),
                    more = &mut step => break Ok(more),
                }
            }
        };
        match result {
            Err(ended) => break ended,
            Ok(more) => {
                if !more? {
                    break Ended::Input;
                }
                sent += 1;
            }
        }
    };
    let summary = client.close().await.context("closing the tx stream")?;
    Ok(Report {
        sent: summary.txs,
        tally: summary.tally,
        bad_lines: input.bad_lines,
        elapsed_ms: elapsed_ms(started),
        ended,
    })
}

fn plain(io: Io) -> std::io::Result<TcpStream> {
    match io {
        Io::Plain(tcp) => Ok(tcp),
        Io::Tls(_) => Err(std::io::Error::other("a tls connection where plaintext was asked")),
    }
}

fn secure(io: Io) -> std::io::Result<TlsStream<TcpStream>> {
    match io {
        Io::Tls(tls) => Ok(*tls),
        Io::Plain(_) => Err(std::io::Error::other("a plaintext connection where tls was asked")),
    }
}

/// Sends no faster than `rate` transactions per second from `started`.
struct Pace {
    started: Instant,
    rate: u64,
}

impl Pace {
    async fn wait(&self, sent: u64) {
        let due_us = u128::from(sent) * 1_000_000 / u128::from(self.rate);
        let due = Duration::from_micros(u64::try_from(due_us).unwrap_or(u64::MAX));
        if let Some(at) = self.started.checked_add(due) {
            tokio::time::sleep_until(at.into()).await;
        }
    }
}

/// Where the transactions come from.
struct Input {
    source: Source,
    bad_lines: u64,
}

enum Source {
    /// Hex lines read on a blocking thread (a file or stdin).
    Lines(mpsc::Receiver<std::io::Result<(u64, String)>>),
    /// Generated transfers, `left` more.
    Generated { generator: TransferGenerator, left: u64 },
}

impl Input {
    fn open(args: &TxSourceArgs) -> anyhow::Result<Self> {
        let source = match (args.generate, &args.file) {
            (Some(_), Some(_)) => bail!("--generate and --file exclude each other"),
            (Some(count), None) => Source::Generated {
                generator: TransferGenerator::new(args.chain_id, args.senders, args.seed)?,
                left: count,
            },
            (None, file) => Source::Lines(read_lines(file.as_deref())?),
        };
        Ok(Self { source, bad_lines: 0 })
    }

    /// The next transaction; bad lines are warned about, counted and skipped.
    async fn next(&mut self) -> anyhow::Result<Option<Bytes>> {
        match &mut self.source {
            Source::Generated { generator, left } => {
                if *left == 0 {
                    return Ok(None);
                }
                *left -= 1;
                generator.next_tx().context("signing a generated transaction").map(Some)
            }
            Source::Lines(lines) => loop {
                let Some(line) = lines.recv().await else { return Ok(None) };
                let (number, text) = line.context("reading the input")?;
                let text = text.trim();
                if text.is_empty() {
                    continue;
                }
                let digits = text.strip_prefix("0x").unwrap_or(text);
                match hex::decode(digits) {
                    Ok(raw) if !raw.is_empty() => return Ok(Some(Bytes::from(raw))),
                    Ok(_) | Err(_) => {
                        self.bad_lines += 1;
                        warn!(line = number, "not a hex transaction; skipped");
                    }
                }
            },
        }
    }
}

/// Reads `file` (stdin for `None` or `-`) line by line on a blocking thread.
fn read_lines(
    file: Option<&Path>,
) -> anyhow::Result<mpsc::Receiver<std::io::Result<(u64, String)>>> {
    let reader: Box<dyn BufRead + Send> = match file {
        Some(path) if path != Path::new("-") => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        )),
        _ => Box::new(std::io::BufReader::new(std::io::stdin())),
    };
    let (tx, rx) = mpsc::channel(LINES_AHEAD);
    tokio::task::spawn_blocking(move || {
        for (number, line) in (1u64..).zip(reader.lines()) {
            let failed = line.is_err();
            if tx.blocking_send(line.map(|text| (number, text))).is_err() || failed {
                break;
            }
        }
    });
    Ok(rx)
}

/// What the command prints.
struct Report {
    sent: u64,
    tally: Option<StreamTally>,
    bad_lines: u64,
    elapsed_ms: u64,
    ended: Ended,
}

impl Report {
    fn to_json(&self) -> serde_json::Value {
        let Some(tally) = &self.tally else {
            return json!({
                "event": "report",
                "ended": self.ended.as_str(),
                "sent": self.sent,
                "answered": false,
                "bad_lines": self.bad_lines,
                "elapsed_ms": self.elapsed_ms,
            });
        };
        let names = |map: Vec<(&'static str, u64)>| map.into_iter().collect::<BTreeMap<_, _>>();
        json!({
            "event": "report",
            "ended": self.ended.as_str(),
            "sent": self.sent,
            "answered": true,
            "accepted": tally.in_pool(),
            "admitted": tally.admitted,
            "replaced": tally.replaced,
            "refused": {
                "rejected": names(tally.rejected.iter().map(|(r, n)| (r.as_str(), *n)).collect()),
                "dropped": names(tally.dropped.iter().map(|(r, n)| (r.as_str(), *n)).collect()),
                "unavailable":
                    names(tally.unavailable.iter().map(|(e, n)| (e.as_str(), *n)).collect()),
            },
            "unanswered": tally.unanswered,
            "bad_lines": self.bad_lines,
            "elapsed_ms": self.elapsed_ms,
        })
    }
}

#[expect(clippy::print_stdout, reason = "a CLI command's output goes to stdout")]
fn print_line(line: &str) {
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_the_node_or_the_host() {
        let by_id = Target::parse("3@127.0.0.1:7500").unwrap();
        assert_eq!((by_id.id, by_id.addr.as_str()), (Some(NodeId(3)), "127.0.0.1:7500"));
        assert_eq!(by_id.server_name().unwrap().to_str(), "node-3");
        let by_host = Target::parse("127.0.0.1:7500").unwrap();
        assert_eq!(by_host.server_name().unwrap().to_str(), "127.0.0.1");
        assert_eq!(Target::parse("[::1]:7500").unwrap().host, "::1");
        assert!(Target::parse("nowhere").is_err());
        assert!(Target::parse("0@127.0.0.1:1").is_err());
    }

    #[test]
    fn a_report_names_refusals_by_reason() {
        let mut tally = StreamTally { admitted: 2, replaced: 1, ..StreamTally::default() };
        tally.dropped.insert(mempulse_primitives::DropReason::Duplicate, 4);
        let report = Report {
            sent: 7,
            tally: Some(tally),
            bad_lines: 0,
            elapsed_ms: 5,
            ended: Ended::Input,
        };
        let json = report.to_json();
        assert_eq!((&json["event"], &json["ended"]), (&json!("report"), &json!("input")));
        assert_eq!(json["accepted"], 3);
        assert_eq!(json["refused"]["dropped"]["duplicate"], 4);
        assert_eq!(json["refused"]["rejected"], json!({}));
    }
}
