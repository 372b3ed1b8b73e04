//! `logger.database`: every `state` message as one row of the PostgreSQL table `readings`
//! (README "Fleets"), written in batches by a task of its own.
//!
//! What is guaranteed, and why:
//! - **Each message stored once.** `readings` is unique on (`meter`, `seq`) and rows go in with
//!   `ON CONFLICT DO NOTHING`, so a message the broker delivers twice (after a crash, or to
//!   two loggers around a reconnection) is stored once.
//! - **Nothing acknowledged before it is stored.** Every message handed to the [`Sink`] comes
//!   with an acknowledgement token; the tokens come back, in the order the messages came in,
//!   only once the batch holding their rows is committed. The logger acknowledges the MQTT
//!   message then, so a database outage or a crash leaves the message with the broker, which
//!   sends it again.
//! - **Bounded memory.** The sink holds at most [`BUFFER`] messages waiting plus one batch of
//!   [`MAX_BATCH`]; past that, [`Sink::send`] waits, the logger stops reading from the broker
//!   and the broker keeps the rest (its session queue).
//! - **A database that is down never stops the logger.** The task connects, and reconnects,
//!   with a backoff ([`crate::source::Backoff`], up to 5 s); it logs once when the database goes
//!   away and once when it is back. A batch the database refuses as a whole is stored row by
//!   row, and a row it refuses alone is logged and acknowledged (it would be refused forever).
//!
//! The schema is created at start, in one transaction under an advisory lock (loggers of a
//! share group starting together do not race), and versioned in `linkymon_schema`: a later
//! linkymon migrates from the version it finds. The views and the `prices` table follow the
//! config (time zone, prices), so they are replaced at every start.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_postgres::{Client, NoTls};
use tracing::{info, warn};

use super::State;
use super::line::period_of_key;
use crate::source::Backoff;

/// Messages waiting for the database, at most; past that the logger waits (see the module doc).
pub const BUFFER: usize = 10_000;

/// Rows in one INSERT, at most: large enough that the commit's cost is shared by many rows,
/// small enough that one batch stays a few megabytes.
pub const MAX_BATCH: usize = 2_000;

/// How long one statement may take before the connection is deemed lost and made again.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The schema version this linkymon writes into `linkymon_schema`.
const SCHEMA_VERSION: i32 = 1;

/// The tariff periods with a column of their own, `energy_<period>_wh`: the energy index of
/// that period, named by meaning as in `<base>/<id>/energy/<period>`.
use crate::prices::PERIODS;

/// One row of `readings`, as `jsonb_to_recordset` reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    meter: String,
    /// RFC 3339, with the offset the daemon wrote.
    ts: String,
    seq: i64,
    mode: &'static str,
    period: Option<String>,
    apparent_power_va: Option<i64>,
    current_a: Option<i64>,
    injection_w: i64,
    energy_import_wh: Option<i64>,
    energy_export_wh: Option<i64>,
    /// `energy_<period>_wh` by period, flattened into columns.
    #[serde(flatten)]
    energy: BTreeMap<String, i64>,
    /// The message's `values` and `derived`, whole.
    data: Value,
}

impl Row {
    /// The row of a `state`; `None` when it has no `seq` (a daemon older than the contract's
    /// §6), which the unique key could not keep from being stored twice.
    ///
    /// Energy by period: the daemon's `derived.energy` (by period name, the standard-mode
    /// registers as it learnt them) and `derived.energy_import_wh`/`energy_export_wh` when the
    /// state has them. From an older daemon: in historic mode each index names its period
    /// (`EJPHN` → `hn`); in standard mode the register counting now (`NTARF`) is the period
    /// `derived.period` names, so the row holds that one period's index (the others are NULL),
    /// which is enough for the views' max − min per day; the import is the sum of the historic
    /// indexes, or `EAST`.
    pub fn from_state(state: &State) -> Option<Row> {
        let seq = i64::try_from(state.seq?).ok()?;
        let message: Value = serde_json::from_str(&state.payload).ok()?;
        let values = &message["values"];
        let derived = &message["derived"];
        let mut energy = BTreeMap::new();
        let mut column = |period: &str, wh: u64| {
            let period = period.to_ascii_lowercase();
            if PERIODS.contains(&period.as_str()) {
                energy.insert(format!("energy_{period}_wh"), wh as i64);
            }
        };
        for (key, wh) in &state.indexes {
            column(period_of_key(key), *wh);
        }
        if let (Some(n), Some(period)) = (state.ntarf, &state.period_code)
            && let Some((_, wh)) = state.registers.iter().find(|(r, _)| *r == n)
        {
            column(period, *wh);
        }
        if let Some(by_period) = derived["energy"].as_object() {
            for (period, wh) in by_period {
                if let Some(wh) = wh.as_u64().filter(|wh| *wh <= super::checks::MAX_INDEX) {
                    column(period, wh);
                }
            }
        }
        let from_derived = |key: &str| {
            derived[key]
                .as_i64()
                .filter(|wh| (0..=super::checks::MAX_INDEX as i64).contains(wh))
        };
        let energy_import_wh = from_derived("energy_import_wh").or(match state.mode {
            crate::tic::Mode::Historic if !state.indexes.is_empty() => {
                Some(state.indexes.iter().map(|(_, wh)| *wh as i64).sum())
            }
            crate::tic::Mode::Historic => None,
            crate::tic::Mode::Standard => values["EAST"].as_i64(),
        });
        Some(Row {
            meter: state.meter.clone(),
            ts: state.ts.to_string(),
            seq,
            mode: match state.mode {
                crate::tic::Mode::Historic => "historic",
                crate::tic::Mode::Standard => "standard",
            },
            period: state.period_code.clone(),
            apparent_power_va: state.consumed_va,
            current_a: state.current_a,
            injection_w: state.injection_w,
            energy_import_wh,
            energy_export_wh: from_derived("energy_export_wh")
                .or(state.injected_index.map(|wh| wh as i64)),
            energy,
            data: serde_json::json!({"values": values, "derived": derived}),
        })
    }
}

/// What the sink needs to know: where the database is and what the views compute.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The parsed `logger.database`, password included.
    pub config: tokio_postgres::Config,
    /// `logger.timezone`: where the views' days and months start.
    pub timezone: String,
    /// `prices.sets`: from which day, the price per kWh by period; the `prices` table the
    /// views' costs use.
    pub prices: Vec<(jiff::civil::Date, BTreeMap<String, f64>)>,
}

impl Settings {
    /// From the logger's config; `None` without `logger.database`. The URL was checked when
    /// the config was loaded.
    pub fn from_config(all: &crate::config::Config) -> Option<Settings> {
        let logger = &all.logger;
        let url = logger.database.as_ref()?;
        let mut config: tokio_postgres::Config = url.expose().parse().ok()?;
        if let Some(password) = &logger.database_password {
            config.password(password.expose());
        }
        config.connect_timeout(Duration::from_secs(10));
        config.application_name("linkymon-logger");
        Some(Settings {
            config,
            timezone: logger.timezone.clone(),
            prices: all
                .prices
                .sets
                .iter()
                .map(|set| (set.from, set.kwh.clone()))
                .collect(),
        })
    }
}

/// One message for the sink: its row, if it has one to store, and its acknowledgement token.
/// A message without a row (refused, or not a `state`) still goes through, so that tokens come
/// back in the order the messages came.
#[derive(Debug)]
pub struct Entry<A> {
    /// The row to store.
    pub row: Option<Row>,
    /// Given back once `row` is committed.
    pub ack: A,
}

/// The logger's handle on the database task.
#[derive(Debug)]
pub struct Sink<A> {
    entries: mpsc::Sender<Entry<A>>,
    stored: Arc<AtomicU64>,
}

impl<A: Send + 'static> Sink<A> {
    /// Starts the task. Committed messages' tokens come out of the receiver, in order, a batch
    /// at a time. Dropping the sink lets the task store what it holds and end; the receiver
    /// then ends too.
    pub fn start(settings: Settings) -> (Sink<A>, mpsc::UnboundedReceiver<Vec<A>>) {
        let (entries, rx) = mpsc::channel(BUFFER);
        let (acks, acks_rx) = mpsc::unbounded_channel();
        let stored = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(settings, rx, acks, stored.clone()));
        (Sink { entries, stored }, acks_rx)
    }

    /// Counts the rows this sink adds to `readings` (not the messages already there); it
    /// goes on counting after the sink is dropped, while the task stores what it holds.
    pub fn stored(&self) -> Arc<AtomicU64> {
        self.stored.clone()
    }

    /// Hands one message over; waits while the buffer is full (see the module doc).
    pub async fn send(&self, entry: Entry<A>) {
        // The task only ends when the sink is dropped.
        let _ = self.entries.send(entry).await;
    }
}

/// The task: batches in, committed tokens out, until the sink is dropped and all is stored.
async fn run<A>(
    settings: Settings,
    mut entries: mpsc::Receiver<Entry<A>>,
    acks: mpsc::UnboundedSender<Vec<A>>,
    stored: Arc<AtomicU64>,
) {
    let mut db = Connection::new(settings, stored);
    // At start, so that the schema is there before the first message (and a database that is
    // down is said at once).
    match db.connect().await {
        Ok(client) => db.client = Some(client),
        Err(e) => db.note_down(&e),
    }
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        if batch.is_empty() && entries.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let rows: Vec<&Row> = batch
            .iter()
            .filter_map(|e: &Entry<A>| e.row.as_ref())
            .collect();
        if !rows.is_empty() && !db.store(&rows).await {
            continue; // down: `store` waited its backoff; the same batch again
        }
        let tokens = batch.drain(..).map(|e| e.ack).collect();
        if acks.send(tokens).is_err() {
            return;
        }
    }
}

/// The connection, made (again) when needed, and what is logged about it.
struct Connection {
    settings: Settings,
    /// Rows added, for [`Sink::stored`].
    stored: Arc<AtomicU64>,
    client: Option<Client>,
    backoff: Backoff,
    /// Whether "cannot use the database" was logged since the last success.
    down_logged: bool,
}

impl Connection {
    fn new(settings: Settings, stored: Arc<AtomicU64>) -> Connection {
        Connection {
            settings,
            stored,
            client: None,
            backoff: Backoff::default(),
            down_logged: false,
        }
    }

    /// Stores `rows`, committed; `false` after waiting the backoff when the database is
    /// unreachable or broke off, so that the caller tries the same rows again.
    async fn store(&mut self, rows: &[&Row]) -> bool {
        let client = match self.client.take().filter(|c| !c.is_closed()) {
            Some(client) => client,
            None => match self.connect().await {
                Ok(client) => client,
                Err(e) => return self.down(&e).await,
            },
        };
        match insert(&client, rows).await {
            Ok(n) => {
                self.stored.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) if client.is_closed() || e.as_db_error().is_none() => {
                return self.down(&e).await;
            }
            // Refused as a whole (a value the column cannot take?): row by row, so that one
            // bad row does not hold up the others forever.
            Err(e) => {
                warn!(
                    "the database refused a batch of {} rows ({e}); storing them one by one",
                    rows.len()
                );
                for row in rows {
                    match insert(&client, &[row]).await {
                        Ok(n) => {
                            self.stored.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(e) if client.is_closed() || e.as_db_error().is_none() => {
                            return self.down(&e).await;
                        }
                        Err(e) => warn!(
                            meter = %row.meter, seq = row.seq,
                            "the database refused a reading, which is dropped: {e}"
                        ),
                    }
                }
            }
        }
        self.client = Some(client);
        self.backoff.reset();
        if self.down_logged {
            info!("the database is back; stored what waited");
            self.down_logged = false;
        }
        true
    }

    /// Connects and brings the schema up to date.
    async fn connect(&mut self) -> Result<Client, Failure> {
        let (client, connection) = self.settings.config.connect(NoTls).await?;
        tokio::spawn(async move {
            // Its error is the next statement's error, which is what gets logged.
            let _ = connection.await;
        });
        let mut client = client;
        let timescale = migrate(&mut client, &self.settings).await?;
        info!(
            timescaledb = timescale,
            "connected to the database; schema version {SCHEMA_VERSION}"
        );
        Ok(client)
    }

    /// Logs the failure once per outage, waits the backoff, and says "not stored".
    async fn down(&mut self, e: &Failure) -> bool {
        self.note_down(e);
        tokio::time::sleep(self.backoff.next_delay()).await;
        false
    }

    /// Logs the failure, once per outage, and forgets the connection.
    fn note_down(&mut self, e: &Failure) {
        if !self.down_logged {
            warn!(
                "cannot use the database: {e}; the messages wait at the broker, unacknowledged; \
                 retrying with backoff"
            );
            self.down_logged = true;
        }
        self.client = None;
    }
}

/// A statement that failed or took too long.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("no answer within {STATEMENT_TIMEOUT:?}")]
    Timeout,
}

impl Failure {
    /// The server's own error (a refused value, a constraint), as opposed to a lost connection.
    fn as_db_error(&self) -> Option<&tokio_postgres::error::DbError> {
        match self {
            Failure::Postgres(e) => e.as_db_error(),
            Failure::Timeout => None,
        }
    }
}

/// Runs `statement` within [`STATEMENT_TIMEOUT`].
async fn timed<T>(
    statement: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(STATEMENT_TIMEOUT, statement).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(Failure::Timeout),
    }
}

/// The columns `readings` gets its rows by, with their types, as `jsonb_to_recordset` reads them.
fn record_columns() -> Vec<(String, &'static str)> {
    let mut columns: Vec<(String, &'static str)> = [
        ("meter", "text"),
        ("ts", "timestamptz"),
        ("seq", "bigint"),
        ("mode", "text"),
        ("period", "text"),
        ("apparent_power_va", "bigint"),
        ("current_a", "bigint"),
        ("injection_w", "bigint"),
        ("energy_import_wh", "bigint"),
        ("energy_export_wh", "bigint"),
    ]
    .into_iter()
    .map(|(name, ty)| (name.to_owned(), ty))
    .collect();
    columns.extend(PERIODS.iter().map(|p| (format!("energy_{p}_wh"), "bigint")));
    columns.push(("data".to_owned(), "jsonb"));
    columns
}

/// Inserts `rows` in one statement (so one commit): the rows travel as one JSON array, read by
/// `jsonb_to_recordset`; rows already there are skipped. Returns how many were added.
async fn insert(client: &Client, rows: &[&Row]) -> Result<u64, Failure> {
    let columns = record_columns();
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let typed: Vec<String> = columns.iter().map(|(n, t)| format!("{n} {t}")).collect();
    let statement = format!(
        "INSERT INTO readings ({names}) SELECT {names} FROM jsonb_to_recordset($1::text::jsonb) \
         AS r({typed}) ON CONFLICT DO NOTHING",
        names = names.join(", "),
        typed = typed.join(", ")
    );
    let json = serde_json::to_string(rows).unwrap_or_else(|_| "[]".into());
    timed(client.execute(&statement, &[&json])).await
}

/// Version 1 of the schema: the table and its indexes. TimescaleDB, when the server has it,
/// makes `readings` a hypertable on `ts`; its unique index must then hold `ts` too, which keeps
/// the guarantee (a message delivered twice carries the same `ts`).
fn schema_v1(timescale: bool) -> String {
    let energy: String = PERIODS
        .iter()
        .map(|p| format!("    energy_{p}_wh bigint,\n"))
        .collect();
    let unique = if timescale {
        "(meter, seq, ts)"
    } else {
        "(meter, seq)"
    };
    let mut sql = format!(
        "CREATE TABLE readings (
    meter text NOT NULL,
    ts timestamptz NOT NULL,
    seq bigint NOT NULL,
    mode text NOT NULL,
    period text,
    apparent_power_va bigint,
    current_a bigint,
    injection_w bigint NOT NULL DEFAULT 0,
    energy_import_wh bigint,
    energy_export_wh bigint,
{energy}    data jsonb NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE {unique}
);
CREATE INDEX readings_meter_ts ON readings (meter, ts);
"
    );
    if timescale {
        sql.push_str("SELECT create_hypertable('readings', 'ts');\n");
    } else {
        sql.push_str("CREATE INDEX readings_ts_brin ON readings USING brin (ts);\n");
    }
    sql
}

/// The views, rebuilt at every start from `timezone`: energy per meter, local day and period
/// (the day's last index minus its first), with its cost at the price set in force that day;
/// the months sum the days. Subscriptions are not in the views (they are per meter, not per
/// kWh).
fn views(timezone: &str) -> String {
    let tz = timezone.replace('\'', "''");
    let periods: Vec<String> = PERIODS
        .iter()
        .map(|p| format!("('{p}', r.energy_{p}_wh)"))
        .collect();
    format!(
        "CREATE OR REPLACE VIEW energy_daily AS
SELECT e.meter, e.day, e.period, e.energy_wh,
       round((e.energy_wh / 1000.0 * (
           SELECT p.kwh FROM prices p
           WHERE p.period = e.period AND p.valid_from <= e.day
           ORDER BY p.valid_from DESC LIMIT 1))::numeric, 4) AS cost
FROM (
    SELECT r.meter, (r.ts AT TIME ZONE '{tz}')::date AS day,
           x.period, max(x.wh) - min(x.wh) AS energy_wh
    FROM readings r
    CROSS JOIN LATERAL (VALUES {values}) AS x(period, wh)
    WHERE x.wh IS NOT NULL
    GROUP BY 1, 2, 3
) e;
CREATE OR REPLACE VIEW energy_monthly AS
SELECT meter, date_trunc('month', day)::date AS month, period,
       sum(energy_wh)::bigint AS energy_wh, sum(cost) AS cost
FROM energy_daily
GROUP BY 1, 2, 3;
",
        values = periods.join(", ")
    )
}

/// Creates or migrates the schema and refreshes `prices` and the views, in one transaction
/// under an advisory lock. Says whether `readings` is a TimescaleDB hypertable.
async fn migrate(client: &mut Client, settings: &Settings) -> Result<bool, Failure> {
    let tx = timed(client.transaction()).await?;
    // Any constant will do, as long as it is always the same one: linkymon's.
    timed(tx.execute("SELECT pg_advisory_xact_lock(7231986041)", &[])).await?;
    timed(tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS linkymon_schema (version integer NOT NULL);
         CREATE TABLE IF NOT EXISTS prices (valid_from date NOT NULL, period text NOT NULL, \
         kwh double precision NOT NULL, PRIMARY KEY (valid_from, period));",
    ))
    .await?;
    let version: i32 = timed(tx.query_opt("SELECT max(version) FROM linkymon_schema", &[]))
        .await?
        .and_then(|row| row.get::<_, Option<i32>>(0))
        .unwrap_or(0);
    if version < 1 {
        // The hypertable needs the extension; one that is available but cannot be created
        // (not in shared_preload_libraries) leaves a plain table.
        let available = timed(tx.query_opt(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'",
            &[],
        ))
        .await?
        .is_some();
        let timescale = available
            && timed(tx.batch_execute(
                "SAVEPOINT ts; CREATE EXTENSION IF NOT EXISTS timescaledb; RELEASE SAVEPOINT ts;",
            ))
            .await
            .is_ok();
        if available && !timescale {
            timed(tx.batch_execute("ROLLBACK TO SAVEPOINT ts")).await?;
        }
        timed(tx.batch_execute(&schema_v1(timescale))).await?;
        timed(tx.execute(
            "INSERT INTO linkymon_schema VALUES ($1)",
            &[&SCHEMA_VERSION],
        ))
        .await?;
    }
    timed(tx.execute("DELETE FROM prices", &[])).await?;
    for (from, kwh) in &settings.prices {
        for (period, price) in kwh {
            timed(tx.execute(
                "INSERT INTO prices VALUES ($1::text::date, $2, $3)",
                &[&from.to_string(), period, price],
            ))
            .await?;
        }
    }
    timed(tx.batch_execute(&views(&settings.timezone))).await?;
    let timescale = timed(tx.query_opt(
        "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'",
        &[],
    ))
    .await?
    .is_some();
    timed(tx.commit()).await?;
    Ok(timescale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(payload: &str) -> Row {
        Row::from_state(&State::parse(payload).unwrap()).unwrap()
    }

    #[test]
    fn a_historic_state_names_each_index_by_its_period() {
        let r = row(
            r#"{"ts":"2026-11-28T21:04:05+01:00","meter":"021728123456","mode":"historic","seq":7,
            "values":{"ADCO":"021728123456","OPTARIF":"EJP.","ISOUSC":45,"EJPHN":688322,"EJPHPM":80072,
                      "PTEC":"HN..","IINST":13,"PAPP":2990},
            "derived":{"injection_w":0,"consumption_va":2990,"period":"HN"}}"#,
        );
        assert_eq!(r.seq, 7);
        assert_eq!(r.period.as_deref(), Some("HN"));
        assert_eq!(r.apparent_power_va, Some(2990));
        assert_eq!(r.energy_import_wh, Some(688322 + 80072));
        let expected: BTreeMap<String, i64> = [
            ("energy_hn_wh".to_owned(), 688322),
            ("energy_pm_wh".to_owned(), 80072),
        ]
        .into();
        assert_eq!(r.energy, expected);
        assert_eq!(r.data["values"]["OPTARIF"], "EJP.");
    }

    #[test]
    fn a_standard_state_fills_the_current_period_and_east() {
        let r = row(
            r#"{"ts":"2026-11-28T21:04:05+01:00","meter":"021728123456","mode":"standard","seq":1,
            "values":{"ADSC":"021728123456","EAST":5000,"EASF01":3000,"EASF02":2000,"NTARF":2,"SINSTS":900,"IRMS1":4},
            "derived":{"injection_w":0,"consumption_va":900,"period":"HP"}}"#,
        );
        assert_eq!(r.energy_import_wh, Some(5000));
        let expected: BTreeMap<String, i64> = [("energy_hp_wh".to_owned(), 2000)].into();
        assert_eq!(r.energy, expected);
    }

    #[test]
    fn the_daemons_energy_by_period_is_taken_as_it_says() {
        let r = row(
            r#"{"ts":"2026-11-28T21:04:05+01:00","meter":"021728123456","mode":"standard","seq":1,
            "values":{"ADSC":"021728123456","EAST":5000,"EASF01":3000,"EASF02":2000,"NTARF":2},
            "derived":{"injection_w":0,"period":"HP","energy_import_wh":5000,"energy_export_wh":7,
                       "energy":{"hc":3000,"hp":2000,"nonsense":1}}}"#,
        );
        let expected: BTreeMap<String, i64> = [
            ("energy_hc_wh".to_owned(), 3000),
            ("energy_hp_wh".to_owned(), 2000),
        ]
        .into();
        assert_eq!(r.energy, expected);
        assert_eq!(
            (r.energy_import_wh, r.energy_export_wh),
            (Some(5000), Some(7))
        );
    }

    #[test]
    fn a_state_without_seq_has_no_row() {
        let state = State::parse(
            r#"{"ts":"2026-11-28T21:04:05+01:00","meter":"021728123456","values":{},"derived":{}}"#,
        )
        .unwrap();
        assert_eq!(Row::from_state(&state), None);
    }

    #[test]
    fn every_row_field_is_a_column() {
        let r = row(
            r#"{"ts":"2026-11-28T21:04:05+01:00","meter":"021728123456","seq":1,
            "values":{"BASE":1,"HCHC":2,"HCHP":3,"EJPHN":4,"EJPHPM":5,"BBRHCJB":6,"BBRHPJB":7,
                      "BBRHCJW":8,"BBRHPJW":9,"BBRHCJR":10,"BBRHPJR":11,"EAIT":12},"derived":{}}"#,
        );
        let json = serde_json::to_value(&r).unwrap();
        let fields: Vec<&String> = json.as_object().unwrap().keys().collect();
        let mut columns: Vec<String> = record_columns().into_iter().map(|(n, _)| n).collect();
        columns.sort();
        let mut fields: Vec<String> = fields.into_iter().cloned().collect();
        fields.sort();
        assert_eq!(fields, columns);
    }
}
