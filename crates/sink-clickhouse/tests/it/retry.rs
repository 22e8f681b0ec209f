//! Retries: a server that is not there yet, a connection cut mid-export, and the attempt cap.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use mempulse_primitives::Seq;
use mempulse_sink_clickhouse::{
    ClickHouseSink, ClickHouseSinkConfig, Error, LogSource, Operation, Progress,
};
use mempulse_wal::open_reader;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

use crate::common::{TestDb, server_url, write_log};

const TABLE: &str = "mempulse_events";

/// A loopback TCP proxy to the ClickHouse server that cuts itself: once `trip_at_bytes` bytes
/// went from the client to the server, it closes every connection (the insert in flight dies
/// mid-body) and refuses new ones until [`Proxy::restore`]. Where the cut lands is a byte
/// count, not a moment, so the test does not race the export.
struct Proxy {
    up: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    fn start(listener: TcpListener, trip_at_bytes: u64) -> Self {
        let target: SocketAddr =
            server_url().trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
        let up = Arc::new(watch::channel(true).0);
        let sent = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let up = Arc::clone(&up);
            async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else { return };
                    if !*up.borrow() {
                        continue; // refused: dropped at once
                    }
                    let (up, sent) = (Arc::clone(&up), Arc::clone(&sent));
                    tokio::spawn(async move {
                        let Ok(server) = TcpStream::connect(target).await else { return };
                        let mut cut = up.subscribe();
                        tokio::select! {
                            () = forward(client, server, &up, &sent, trip_at_bytes) => {}
                            _ = cut.wait_for(|up| !up) => {}
                        }
                    });
                }
            }
        });
        Self { up, task }
    }

    fn is_cut(&self) -> bool {
        !*self.up.borrow()
    }

    fn restore(&self) {
        self.up.send_replace(true);
    }
}

/// Copies both ways; trips the proxy when the client-to-server total reaches `trip_at`.
async fn forward(
    client: TcpStream,
    server: TcpStream,
    up: &watch::Sender<bool>,
    sent: &AtomicU64,
    trip_at: u64,
) {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let upstream = async {
        let mut buf = vec![0u8; 16 << 10];
        loop {
            let Ok(n) = client_rx.read(&mut buf).await else { return };
            if n == 0 || server_tx.write_all(&buf[..n]).await.is_err() {
                return;
            }
            let n = n as u64;
            let total = sent.fetch_add(n, Ordering::AcqRel) + n;
            if total >= trip_at && total - n < trip_at {
                up.send_replace(false);
            }
        }
    };
    let downstream = tokio::io::copy(&mut server_rx, &mut client_tx);
    tokio::select! {
        () = upstream => {}
        _ = downstream => {}
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn wait_for(
    progress: &watch::Receiver<Progress>,
    what: &str,
    done: impl FnMut(&Progress) -> bool,
) {
    let mut progress = progress.clone();
    tokio::time::timeout(Duration::from_secs(60), progress.wait_for(done))
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .unwrap();
}

/// A loopback port with nothing listening on it.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_until_the_server_is_reachable_and_across_cut_connections() {
    let db = TestDb::new("retry").await;
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 1, 20_000);
    let addr = closed_port().await;
    let config = ClickHouseSinkConfig {
        url: Some(format!("http://{addr}")),
        batch_rows_max: 500,
        ..db.config()
    };
    let sink = ClickHouseSink::new(config).unwrap();
    let progress = sink.progress();
    let source = LogSource::offline(open_reader(dir.path()).unwrap());
    let task = tokio::spawn(sink.run(source, std::future::pending()));

    // Nothing listens: setup fails and is retried.
    wait_for(&progress, "retries against a closed port", |p| p.retries >= 3).await;
    assert_eq!(progress.borrow().exported, Seq(0));

    // The server appears on that port; export starts, until the proxy cuts every connection
    // after 1 MiB (of about 3.5 MB), in the middle of some insert's body.
    let proxy = Proxy::start(TcpListener::bind(addr).await.unwrap(), 1 << 20);
    // After a batch went through, every failure is the cut's (the proxy is the only path).
    wait_for(&progress, "a batch through the proxy", |p| p.batches >= 1).await;
    let retries_before = progress.borrow().retries;
    wait_for(&progress, "a failed insert retried", |p| p.retries > retries_before).await;
    assert!(proxy.is_cut());
    let exported = progress.borrow().exported;
    assert!(Seq(0) < exported && exported < Seq(20_000), "cut mid-export, at {exported}");
    proxy.restore();

    let done =
        tokio::time::timeout(Duration::from_secs(120), task).await.unwrap().unwrap().unwrap();
    assert_eq!(done.exported, Seq(20_000));
    assert!(done.retries > retries_before);
    assert_eq!(db.stats(TABLE).await, (20_000, 20_000, 1, 20_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_after_the_attempt_cap() {
    let db = TestDb::new("retry_cap").await;
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 1, 10);
    let config = ClickHouseSinkConfig {
        url: Some(format!("http://{}", closed_port().await)),
        retry_attempts_max: Some(3),
        ..db.config()
    };
    let source = LogSource::offline(open_reader(dir.path()).unwrap());
    let err =
        mempulse_sink_clickhouse::run(config, source, std::future::pending()).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::RetriesExhausted { operation: Operation::CreateTable, attempts: 3, .. }
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_the_retries() {
    let db = TestDb::new("retry_shutdown").await;
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 1, 10);
    let config = ClickHouseSinkConfig {
        url: Some(format!("http://{}", closed_port().await)),
        // After the first failure the sink sleeps 30 s: shutdown must cut that sleep short.
        retry_backoff_min_ms: 30_000,
        retry_backoff_max_ms: 60_000,
        ..db.config()
    };
    let sink = ClickHouseSink::new(config).unwrap();
    let progress = sink.progress();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let source = LogSource::offline(open_reader(dir.path()).unwrap());
    let task = tokio::spawn(sink.run(source, async move {
        let _ = stopped.await;
    }));
    wait_for(&progress, "a failed attempt", |p| p.retries >= 1).await;
    stop.send(()).unwrap();
    // Returns at once, mid-backoff, with nothing exported.
    let done = tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();
    assert_eq!((done.exported, done.rows), (Seq(0), 0));
}
