//! Retries: a server that is not there yet, a connection cut mid-export, and the attempt cap.

use std::{net::SocketAddr, time::Duration};

use mempulse_primitives::Seq;
use mempulse_sink_clickhouse::{
    ClickHouseSink, ClickHouseSinkConfig, Error, LogSource, Operation, Progress,
};
use mempulse_wal::open_reader;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};

use crate::common::{TestDb, server_url, write_log};

const TABLE: &str = "mempulse_events";

/// A loopback TCP proxy to the ClickHouse server that can be cut: while down it closes every
/// connection, open ones included (the client's pooled connections die mid-request).
struct Proxy {
    up: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(listener: TcpListener) -> Self {
        let target: SocketAddr =
            server_url().trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
        let (up, up_rx) = watch::channel(true);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                let mut up = up_rx.clone();
                tokio::spawn(async move {
                    if !*up.borrow_and_update() {
                        return; // drops the connection
                    }
                    let Ok(server) = TcpStream::connect(target).await else { return };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = up.wait_for(|up| !up) => {}
                    }
                });
            }
        });
        Self { up, task }
    }

    fn set_up(&self, up: bool) {
        self.up.send_replace(up);
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

    // The server appears on that port; export starts.
    let proxy = Proxy::start(TcpListener::bind(addr).await.unwrap()).await;
    wait_for(&progress, "the first batches", |p| p.batches >= 2).await;

    // Cut every connection mid-export, then restore them.
    let retries_before = progress.borrow().retries;
    proxy.set_up(false);
    wait_for(&progress, "a retried insert", |p| p.retries > retries_before).await;
    proxy.set_up(true);

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
