//! The export loop: resume from `max(seq)`, fill a bounded batch from the log, insert it as one
//! atomic `INSERT` (retrying the same rows with capped exponential backoff), repeat.

use std::{future::Future, pin::Pin, time::Duration};

use mempulse_primitives::Seq;
use tokio::{
    sync::watch,
    time::{Instant, sleep, sleep_until},
};
use tracing::{debug, info, warn};

use crate::{
    batch::Batch,
    config::ClickHouseSinkConfig,
    error::{Error, Operation, Result},
    metrics::SinkMetrics,
    row::COLUMNS,
    source::LogSource,
    table::Table,
};

/// Where the export stands; published after setup and after every acknowledged batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Highest seq in ClickHouse when the sink started (0: the table was empty).
    pub resumed_after: Seq,
    /// Highest seq exported (acknowledged by ClickHouse).
    pub exported: Seq,
    /// Rows this run inserted.
    pub rows: u64,
    /// Batches this run inserted.
    pub batches: u64,
    /// Failed requests this run retried.
    pub retries: u64,
}

/// The ClickHouse sink of one log. See the crate docs.
#[derive(Debug)]
pub struct ClickHouseSink {
    config: ClickHouseSinkConfig,
    table: Table,
    metrics: SinkMetrics,
    progress: watch::Sender<Progress>,
}

type Shutdown<'a> = Pin<&'a mut (dyn Future<Output = ()> + Send)>;

impl ClickHouseSink {
    /// A sink for `config`. Nothing is sent before [`ClickHouseSink::run`].
    ///
    /// # Errors
    /// [`Error::Config`] when the configuration is invalid or the sink is off (no `url`).
    pub fn new(config: ClickHouseSinkConfig) -> Result<Self> {
        let url = config.validate()?;
        let table = Table::new(&config, url);
        Ok(Self {
            config,
            table,
            metrics: SinkMetrics::new(),
            progress: watch::channel(Progress::default()).0,
        })
    }

    /// A watch of the export's [`Progress`].
    #[must_use]
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Exports `source` until `shutdown` resolves, an offline log is fully exported, or a live
    /// log's sequencer stopped and everything it wrote is exported. Returns the final progress.
    ///
    /// Safe to stop at any point, including by killing the process: the next run resumes after
    /// the highest seq in ClickHouse and neither duplicates nor skips a row.
    ///
    /// # Errors
    /// Non-retryable errors stop the sink: [`Error::TableMissing`], [`Error::SchemaMismatch`],
    /// [`Error::AheadOfLog`], [`Error::Wal`] (including records purged before they were
    /// exported), [`Error::Decode`], and [`Error::RetriesExhausted`] when `retry-attempts-max`
    /// is set. Failed requests are retried with backoff, never returned, without that cap.
    pub async fn run<F>(self, source: LogSource, shutdown: F) -> Result<Progress>
    where
        F: Future<Output = ()> + Send,
    {
        let mut shutdown = std::pin::pin!(shutdown);
        let shutdown: Shutdown<'_> = shutdown.as_mut();
        let mut run = Run { sink: &self, shutdown, batch: self.new_batch() };
        let Some(resumed_after) = run.setup(source.reader().last_seq()).await? else {
            return Ok(*self.progress.borrow());
        };
        self.progress.send_modify(|p| {
            p.resumed_after = resumed_after;
            p.exported = resumed_after;
        });
        info!(
            database = self.table.database(),
            table = self.table.name(),
            resumed_after = resumed_after.0,
            "clickhouse sink started"
        );
        let result = run.export(source, resumed_after).await;
        let progress = *self.progress.borrow();
        info!(exported = progress.exported.0, rows = progress.rows, "clickhouse sink stopped");
        result.map(|()| progress)
    }

    fn new_batch(&self) -> Batch {
        Batch::new(self.config.batch_rows_max, self.config.batch_bytes_max)
    }
}

/// The state of one [`ClickHouseSink::run`].
struct Run<'a> {
    sink: &'a ClickHouseSink,
    shutdown: Shutdown<'a>,
    batch: Batch,
}

/// What the loop does next.
enum Step {
    Insert,
    Wait,
    Done,
}

impl Run<'_> {
    /// Creates and checks the table, then reads where to resume. `None`: shut down meanwhile.
    async fn setup(&mut self, log_last: Seq) -> Result<Option<Seq>> {
        let sink = self.sink;
        let table = &sink.table;
        if self.sink.config.create_table {
            let created = self.retry(Operation::CreateTable, || table.create()).await?;
            if created.is_none() {
                return Ok(None);
            }
        }
        let Some(found) = self.retry(Operation::ReadSchema, || table.columns()).await? else {
            return Ok(None);
        };
        let expected: Vec<String> = COLUMNS.iter().map(|(n, t)| format!("{n} {t}")).collect();
        if found.is_empty() {
            return Err(Error::TableMissing {
                database: table.database().to_owned(),
                table: table.name().to_owned(),
            });
        }
        if found != expected {
            return Err(Error::SchemaMismatch {
                database: table.database().to_owned(),
                table: table.name().to_owned(),
                found,
                expected,
            });
        }
        let Some(max) = self.retry(Operation::ReadExported, || table.max_seq()).await? else {
            return Ok(None);
        };
        let exported = Seq(max);
        if exported > log_last {
            return Err(Error::AheadOfLog { exported, log_last });
        }
        Ok(Some(exported))
    }

    async fn export(&mut self, mut source: LogSource, resumed_after: Seq) -> Result<()> {
        let mut next = Seq(resumed_after.0 + 1);
        let mut deadline: Option<Instant> = None;
        let mut closed = false;
        loop {
            if let LogSource::Live { durable, .. } = &mut source {
                // Mark the durable seq seen before reading, so a later publish wakes the wait.
                durable.borrow_and_update();
            }
            let reader = source.reader();
            if self.batch.fill(reader, next)? > 0 {
                next = self.batch.last().map_or(next, |last| Seq(last.0 + 1));
                deadline.get_or_insert_with(|| Instant::now() + self.sink.config.flush_interval());
            }
            let caught_up = next > reader.last_seq();
            self.sink.metrics.lag.set(lag(reader.last_seq(), self.exported()));
            let finite = closed || matches!(source, LogSource::Offline(_));
            match self.step(caught_up, finite, deadline) {
                Step::Insert => {
                    if !self.insert().await? {
                        return Ok(());
                    }
                    deadline = None;
                }
                Step::Done => return Ok(()),
                Step::Wait => {
                    let LogSource::Live { durable, .. } = &mut source else { return Ok(()) };
                    match wait(&mut self.shutdown, durable, deadline).await {
                        Wake::Shutdown => return Ok(()),
                        Wake::Closed => closed = true,
                        Wake::Records | Wake::Deadline => {}
                    }
                }
            }
        }
    }

    fn step(&self, caught_up: bool, finite: bool, deadline: Option<Instant>) -> Step {
        if self.batch.is_empty() {
            return if caught_up && finite { Step::Done } else { Step::Wait };
        }
        // Full, stopped short of the tail by the byte cap, at the end of a finite log, or
        // waited long enough for more records.
        let due = deadline.is_some_and(|d| d <= Instant::now());
        if self.batch.is_full() || !caught_up || finite || due { Step::Insert } else { Step::Wait }
    }

    /// Inserts the batch, retrying the same rows until ClickHouse acknowledges them. `false`:
    /// shut down first (the batch may or may not be in ClickHouse; a restart finds out).
    async fn insert(&mut self) -> Result<bool> {
        let (Some(first), Some(last)) = (self.batch.first(), self.batch.last()) else {
            return Ok(true);
        };
        let (rows, bytes) = (self.batch.len() as u64, self.batch.size_bytes());
        let sink = self.sink;
        let timeout = sink.config.request_timeout();
        let batch = std::mem::replace(&mut self.batch, self.sink.new_batch());
        let inserted = self.retry(Operation::Insert, || sink.table.insert(&batch, timeout)).await?;
        self.batch = batch;
        self.batch.clear();
        if inserted.is_none() {
            return Ok(false);
        }
        debug!(first = first.0, last = last.0, rows, bytes, "batch inserted");
        let metrics = &self.sink.metrics;
        metrics.rows.increment(rows);
        metrics.batches.increment(1);
        self.sink.progress.send_modify(|p| {
            p.exported = last;
            p.rows += rows;
            p.batches += 1;
        });
        Ok(true)
    }

    fn exported(&self) -> Seq {
        self.sink.progress.borrow().exported
    }

    /// Runs `request` until it succeeds, sleeping a doubling delay (capped) between attempts.
    /// `None`: shutdown resolved first.
    async fn retry<T, R, Fut>(&mut self, operation: Operation, mut request: R) -> Result<Option<T>>
    where
        R: FnMut() -> Fut,
        Fut: Future<Output = clickhouse::error::Result<T>>,
    {
        let config = &self.sink.config;
        let mut delay = config.retry_backoff_min();
        let mut attempts = 0u32;
        loop {
            let outcome = tokio::select! {
                outcome = request() => outcome,
                () = &mut self.shutdown => return Ok(None),
            };
            let error = match outcome {
                Ok(value) => return Ok(Some(value)),
                Err(error) => error,
            };
            attempts = attempts.saturating_add(1);
            self.sink.metrics.error(operation);
            if config.retry_attempts_max.is_some_and(|max| attempts >= max) {
                return Err(Error::RetriesExhausted { operation, attempts, source: error });
            }
            self.sink.progress.send_modify(|p| p.retries += 1);
            let error = Error::clickhouse(operation, error);
            warn!(%operation, attempts, delay_ms = millis(delay), error = %ErrorChain(&error),
                "clickhouse request failed, retrying");
            tokio::select! {
                () = sleep(delay) => {}
                () = &mut self.shutdown => return Ok(None),
            }
            delay = delay.saturating_mul(2).min(config.retry_backoff_max());
        }
    }
}

/// Why [`wait`] returned.
enum Wake {
    Records,
    Deadline,
    Closed,
    Shutdown,
}

/// Waits for new durable records, the flush deadline, or shutdown.
async fn wait(
    shutdown: &mut Shutdown<'_>,
    durable: &mut watch::Receiver<Seq>,
    deadline: Option<Instant>,
) -> Wake {
    let flush = async {
        match deadline {
            Some(at) => sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = shutdown => Wake::Shutdown,
        changed = durable.changed() => if changed.is_ok() { Wake::Records } else { Wake::Closed },
        () = flush => Wake::Deadline,
    }
}

fn lag(durable: Seq, exported: Seq) -> f64 {
    // A gauge is an f64; lags beyond 2^53 events lose precision, never order.
    #[expect(clippy::cast_precision_loss, reason = "a gauge value")]
    let lag = durable.0.saturating_sub(exported.0) as f64;
    lag
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// An error and its sources on one line (`a: b: c`), for logs.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

/// Exports `source` to ClickHouse with `config` until `shutdown` resolves (see
/// [`ClickHouseSink::run`]); the entry point a node wires.
///
/// # Errors
/// As [`ClickHouseSink::new`] and [`ClickHouseSink::run`].
pub async fn run<F>(
    config: ClickHouseSinkConfig,
    source: LogSource,
    shutdown: F,
) -> Result<Progress>
where
    F: Future<Output = ()> + Send,
{
    ClickHouseSink::new(config)?.run(source, shutdown).await
}
