//! Benchmark of the durable write path (`cargo bench --bench durable_writes`).
//!
//! Visits recorded per second through the real service (`visits::service::record_visit`: checks,
//! visit row, audit-chain row, all in one durable commit) in three ways, each on a fresh database:
//!
//! * **group commit** — `MCH_BENCH_CLIENTS` (16) concurrent clients sharing one `Db`, i.e. one
//!   group-commit writer: every unit queued while a commit is in flight joins the next commit.
//! * **one commit per visit, serial** — one client awaiting each call before the next, so every
//!   commit holds exactly one visit (nothing else is ever queued).
//! * **one commit per visit, 16 writers** — 16 clients, each with its own `Db` handle (its own
//!   writer thread and connection); a client has one call in flight, so each of its writer's
//!   commits holds one visit and the 16 writers contend for the database's write lock (SQLite:
//!   `BEGIN IMMEDIATE` + `busy_timeout`; PostgreSQL: the audit head row lock).
//!
//! SQLite runs in a directory on the build's disk (`target/tmp`, or `MCH_BENCH_DIR`), never in
//! `/tmp`, which may be a tmpfs where fsync costs nothing. With `MCH_BENCH_DATABASE_URL` set to a
//! PostgreSQL admin URL, the same three runs are repeated on throw-away databases.
//!
//! Sizes (environment): `MCH_BENCH_VISITS` (group commit and 16 writers, default 4000),
//! `MCH_BENCH_SERIAL_VISITS` (default 1000), `MCH_BENCH_CLIENTS` (16),
//! `MCH_BENCH_VISITS_PER_PREGNANCY` (8: each run seeds enough pregnancies that none gets more, as
//! the visit path reads a pregnancy's earlier visits), `MCH_BENCH_WARMUP` (visits per client before
//! timing, 5),
//! `MCH_BENCH_ROUNDS` (3: every scenario runs once per round, on a fresh database each time).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use chrono::Days;
use mch_chain::auth::model::{Actor, Role};
use mch_chain::auth::service::system_actor;
use mch_chain::facility::model::NewFacility;
use mch_chain::identity::model::PersonInput;
use mch_chain::identity::service::Registration;
use mch_chain::ids::today_china;
use mch_chain::pregnancy::model::BookingInput;
use mch_chain::storage::{Db, WriterStats, redact_url};
use mch_chain::visits::model::VisitInput;
use mch_chain::{facility, identity, pregnancy, visits};

struct Config {
    clients: usize,
    visits: usize,
    serial_visits: usize,
    visits_per_pregnancy: usize,
    warmup: usize,
    rounds: usize,
    pg_admin: Option<String>,
}

fn env_usize(name: &str, default: usize) -> Result<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| anyhow!("{name} must be a positive integer, not {v:?}")),
        Err(_) => Ok(default),
    }
}

impl Config {
    fn from_env() -> Result<Config> {
        Ok(Config {
            clients: env_usize("MCH_BENCH_CLIENTS", 16)?,
            visits: env_usize("MCH_BENCH_VISITS", 4000)?,
            serial_visits: env_usize("MCH_BENCH_SERIAL_VISITS", 1000)?,
            visits_per_pregnancy: env_usize("MCH_BENCH_VISITS_PER_PREGNANCY", 8)?,
            warmup: env_usize("MCH_BENCH_WARMUP", 5)?,
            rounds: env_usize("MCH_BENCH_ROUNDS", 3)?,
            pg_admin: std::env::var("MCH_BENCH_DATABASE_URL")
                .ok()
                .filter(|u| !u.trim().is_empty()),
        })
    }
}

/// Makes fresh, empty databases of one backend; removes them when dropped.
enum Backend {
    Sqlite {
        root: tempfile::TempDir,
        made: usize,
    },
    Postgres {
        admin: String,
        base: String,
        made: Vec<String>,
    },
}

impl Backend {
    fn sqlite() -> Result<Backend> {
        let parent = std::env::var("MCH_BENCH_DIR").unwrap_or_else(|_| env!("CARGO_TARGET_TMPDIR").to_string());
        std::fs::create_dir_all(&parent).with_context(|| format!("create {parent}"))?;
        let root = tempfile::Builder::new()
            .prefix("mch-bench-")
            .tempdir_in(&parent)
            .with_context(|| format!("temp dir in {parent}"))?;
        Ok(Backend::Sqlite { root, made: 0 })
    }

    fn postgres(admin: &str) -> Result<Backend> {
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .filter(|b| b.contains("://"))
            .ok_or_else(|| anyhow!("MCH_BENCH_DATABASE_URL needs a database name"))?;
        Ok(Backend::Postgres {
            admin: admin.to_string(),
            base,
            made: Vec::new(),
        })
    }

    fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite { .. } => "SQLite",
            Backend::Postgres { .. } => "PostgreSQL",
        }
    }

    fn describe(&self) -> String {
        match self {
            Backend::Sqlite { root, .. } => format!("SQLite (WAL, synchronous=FULL) in {}", root.path().display()),
            Backend::Postgres { admin, .. } => {
                format!("PostgreSQL (synchronous_commit=on) via {}", redact_url(admin))
            }
        }
    }

    /// The URL of a new empty database.
    fn fresh(&mut self) -> Result<String> {
        match self {
            Backend::Sqlite { root, made } => {
                *made += 1;
                Ok(format!(
                    "sqlite://{}",
                    root.path().join(format!("bench-{made}.db")).display()
                ))
            }
            Backend::Postgres { admin, base, made } => {
                let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
                pg_exec(admin, &format!("CREATE DATABASE \"{name}\""))?;
                made.push(name.clone());
                Ok(format!("{base}/{name}"))
            }
        }
    }

    /// PostgreSQL's durability settings, so the figures can be read in context.
    fn settings(&self) -> Option<String> {
        let Backend::Postgres { admin, .. } = self else {
            return None;
        };
        pg_settings(admin).ok()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Backend::Postgres { admin, made, .. } = self {
            for name in made.drain(..) {
                if let Err(e) = pg_exec(admin, &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")) {
                    eprintln!("could not drop benchmark database {name}: {e}");
                }
            }
        }
    }
}

fn pg_exec(admin: &str, sql: &str) -> Result<()> {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection};
    let mut c = PgConnection::establish(admin).map_err(|e| anyhow!("connect to {}: {e}", redact_url(admin)))?;
    c.batch_execute(sql).map_err(|e| anyhow!("{sql}: {e}"))
}

fn pg_settings(admin: &str) -> Result<String> {
    use diesel::sql_types::Text;
    use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        s: String,
    }
    let mut c = PgConnection::establish(admin)?;
    let row: Row = diesel::sql_query(
        "SELECT split_part(version(), ' ', 2) || ', fsync=' || current_setting('fsync') \
         || ', wal_sync_method=' || current_setting('wal_sync_method') \
         || ', commit_delay=' || current_setting('commit_delay') AS s",
    )
    .get_result(&mut c)?;
    Ok(row.s)
}

fn service_err(what: &str) -> impl Fn(mch_chain::error::ServiceError) -> anyhow::Error + '_ {
    move |e| anyhow!("{what}: {e} ({e:?})")
}

/// A valid 18-digit ID number of a woman born in county 340524.
fn id_number(birth: chrono::NaiveDate, seq: u32) -> String {
    let body = format!("340524{}{:03}", birth.format("%Y%m%d"), seq * 2 % 1000);
    let weights = [7u32, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.bytes().zip(weights).map(|(b, w)| u32::from(b - b'0') * w).sum();
    format!("{body}{}", b"10X98765432"[(sum % 11) as usize] as char)
}

/// One township health centre, its clinician (the system acting there) and `n` women, each with
/// an active pregnancy (LMP 100 days ago), all through the services.
async fn seed(db: &Db, n: usize) -> Result<(Actor, Vec<String>)> {
    let f = facility::service::add(
        db,
        NewFacility {
            code: "TWN-BENCH".into(),
            name: "东关镇卫生院".into(),
            level: "township".into(),
            kind: "health_centre".into(),
            jurisdiction: "340524".into(),
            township_code: Some("340524101".into()),
            capabilities: vec!["midwifery".into()],
        },
    )
    .await
    .map_err(service_err("add facility"))?;
    let actor = system_actor(f, Role::Clinician);
    let today = today_china();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (db, actor) = (db.clone(), actor.clone());
        tasks.spawn(async move {
            let birth = today - Days::new(25 * 365 + i as u64);
            let reg = identity::service::register(
                &db,
                &actor,
                PersonInput {
                    name: format!("测试{}", ["甲", "乙", "丙", "丁"][i % 4]),
                    id_number: Some(id_number(birth, i as u32)),
                    phone: Some(format!("139{:08}", i)),
                    ..Default::default()
                },
                true,
            )
            .await
            .map_err(service_err("register"))?;
            let person_id = match reg {
                Registration::Created { person_id } => person_id,
                other => bail!("register: unexpected answer {other:?}"),
            };
            let p = pregnancy::service::book(
                &db,
                &actor,
                person_id,
                BookingInput {
                    booking_date: Some((today - Days::new(30)).to_string()),
                    lmp: Some((today - Days::new(100)).to_string()),
                    gravidity: Some("1".into()),
                    parity: Some("0".into()),
                    ..Default::default()
                },
            )
            .await
            .map_err(service_err("book"))?;
            Ok(p.id)
        });
    }
    let mut ids = Vec::with_capacity(n);
    while let Some(r) = tasks.join_next().await {
        ids.push(r.context("seeding task")??);
    }
    ids.sort();
    Ok((actor, ids))
}

/// A plausible visit at 14 weeks, recorded today; `k` varies the measurements, all within normal
/// ranges (no anaemia, no hypertension), so the common path is measured: no risk re-grade proposed.
fn visit_input(k: usize) -> VisitInput {
    VisitInput {
        visit_date: None,
        weight_kg: Some(format!("{:.1}", 52.0 + (k % 40) as f64 * 0.5)),
        height_cm: k.is_multiple_of(7).then(|| "160".to_string()),
        systolic_mmhg: Some((100 + k % 30).to_string()),
        diastolic_mmhg: Some((62 + k % 23).to_string()),
        fetal_heart_rate_bpm: Some((125 + k % 30).to_string()),
        oedema: Some("none".into()),
        hb_g_l: Some((115 + k % 20).to_string()),
        urine_protein: Some("negative".into()),
        complaints: Some(String::new()),
        advice: Some("注意营养，按时产检".into()),
        ..Default::default()
    }
}

/// What the clients of one run saw.
#[derive(Default)]
struct ClientLog {
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
}

/// `clients` tasks, client `c` calling `record_visit` through `dbs[c % dbs.len()]` `per_client`
/// times, each call awaited before the next; call `k` of client `c` goes to pregnancy number
/// `offset + c + k * clients` (modulo), so the visits spread evenly. Returns the wall time and
/// what the clients saw.
async fn drive(
    dbs: &[Db],
    actor: &Actor,
    pregnancies: &[String],
    clients: usize,
    per_client: usize,
    offset: usize,
) -> Result<(Duration, ClientLog)> {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let db = dbs[c % dbs.len()].clone();
        let actor = actor.clone();
        let ids: Vec<String> = (0..per_client)
            .map(|k| pregnancies[(offset + c + k * clients) % pregnancies.len()].clone())
            .collect();
        tasks.spawn(async move {
            let mut log = ClientLog {
                latencies: Vec::with_capacity(ids.len()),
                ..Default::default()
            };
            for (k, id) in ids.into_iter().enumerate() {
                let t = Instant::now();
                match visits::service::record_visit(&db, &actor, id, visit_input(c * 7919 + k)).await {
                    Ok(_) => log.latencies.push(t.elapsed()),
                    Err(e) => {
                        log.errors += 1;
                        log.first_error.get_or_insert_with(|| format!("{e} ({e:?})"));
                    }
                }
            }
            log
        });
    }
    let mut all = ClientLog::default();
    while let Some(r) = tasks.join_next().await {
        let log = r.context("client task")?;
        all.latencies.extend(log.latencies);
        all.errors += log.errors;
        if all.first_error.is_none() {
            all.first_error = log.first_error;
        }
    }
    Ok((start.elapsed(), all))
}

/// The writer counts a commit just *after* answering its callers, so a snapshot taken the moment
/// an awaited write returns can miss that commit: wait until the counters stop moving.
async fn settled_stats(dbs: &[Db]) -> Vec<WriterStats> {
    let mut last: Vec<WriterStats> = dbs.iter().map(Db::writer_stats).collect();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now: Vec<WriterStats> = dbs.iter().map(Db::writer_stats).collect();
        let same = now
            .iter()
            .zip(&last)
            .all(|(a, b)| a.commits == b.commits && a.units == b.units);
        if same {
            return now;
        }
        last = now;
    }
}

/// One timed run.
struct Measured {
    elapsed: Duration,
    log: ClientLog,
    commits: u64,
    units: u64,
}

/// One run on a fresh database: seed, warm up, then time `per_client` visits from each client.
async fn run(backend: &mut Backend, cfg: &Config, s: &Scenario) -> Result<Measured> {
    let url = backend.fresh()?;
    // The services run without an Application here: wire their event reactions (re-grading) first.
    mch_chain::reactions::wire();
    let open = |size: u32| Db::open(&url, size).map_err(|e| anyhow!("open {}: {e}", redact_url(&url)));
    let first = open(4)?;
    let visits = (s.per_client + cfg.warmup) * s.clients;
    let (actor, pregnancies) = seed(&first, visits.div_ceil(cfg.visits_per_pregnancy)).await?;
    let mut dbs = vec![first];
    for _ in 1..s.writers {
        dbs.push(open(1)?);
    }
    let (_, warm) = drive(&dbs, &actor, &pregnancies, s.clients, cfg.warmup, 0).await?;
    if let Some(e) = warm.first_error {
        bail!("{}: warm-up failed: {e}", s.name);
    }
    let before = settled_stats(&dbs).await;
    let (elapsed, log) = drive(
        &dbs,
        &actor,
        &pregnancies,
        s.clients,
        s.per_client,
        s.clients * cfg.warmup,
    )
    .await?;
    let after = settled_stats(&dbs).await;
    let (mut commits, mut units) = (0, 0);
    for (a, b) in after.iter().zip(&before) {
        commits += a.commits - b.commits;
        units += a.units - b.units;
    }
    Ok(Measured {
        elapsed,
        log,
        commits,
        units,
    })
}

struct Scenario {
    name: &'static str,
    clients: usize,
    /// `Db` handles, i.e. writer threads each with its own connection.
    writers: usize,
    per_client: usize,
}

/// All rounds of one scenario on one backend.
struct Summary {
    backend: &'static str,
    scenario: &'static str,
    clients: usize,
    writers: usize,
    rates: Vec<f64>,
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
    elapsed: Duration,
    commits: u64,
    units: u64,
}

impl Summary {
    fn new(backend: &'static str, s: &Scenario) -> Summary {
        Summary {
            backend,
            scenario: s.name,
            clients: s.clients,
            writers: s.writers,
            rates: Vec::new(),
            latencies: Vec::new(),
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            commits: 0,
            units: 0,
        }
    }

    fn add(&mut self, m: Measured) {
        self.rates.push(m.log.latencies.len() as f64 / m.elapsed.as_secs_f64());
        self.latencies.extend(m.log.latencies);
        self.errors += m.log.errors;
        if self.first_error.is_none() {
            self.first_error = m.log.first_error;
        }
        self.elapsed += m.elapsed;
        self.commits += m.commits;
        self.units += m.units;
    }

    fn median_rate(&self) -> f64 {
        let mut r = self.rates.clone();
        r.sort_by(f64::total_cmp);
        match r.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => r[n / 2],
            n => (r[n / 2 - 1] + r[n / 2]) / 2.0,
        }
    }

    fn rate_range(&self) -> (f64, f64) {
        let min = self.rates.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (min, max)
    }

    /// Nearest-rank percentile of the per-call latencies of all rounds (sorted), in ms.
    fn percentile_ms(&self, p: f64) -> f64 {
        let n = self.latencies.len();
        if n == 0 {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        self.latencies[rank.clamp(1, n) - 1].as_secs_f64() * 1000.0
    }

    /// Wall time per commit, per writer (the writers of one run commit in parallel).
    fn ms_per_commit(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1000.0 * self.writers as f64 / self.commits.max(1) as f64
    }

    fn mean_batch(&self) -> f64 {
        self.units as f64 / self.commits.max(1) as f64
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

async fn bench_backend(mut backend: Backend, cfg: &Config) -> Result<Vec<Summary>> {
    eprintln!("{}", backend.describe());
    if let Some(s) = backend.settings() {
        eprintln!("  server: PostgreSQL {s}");
    }
    let n = cfg.clients;
    let scenarios = [
        Scenario {
            name: "group commit (1 shared writer)",
            clients: n,
            writers: 1,
            per_client: cfg.visits / n,
        },
        Scenario {
            name: "one commit per visit (serial)",
            clients: 1,
            writers: 1,
            per_client: cfg.serial_visits,
        },
        Scenario {
            name: "one commit per visit (1 writer each)",
            clients: n,
            writers: n,
            per_client: cfg.visits / n,
        },
    ];
    let mut out: Vec<Summary> = scenarios.iter().map(|s| Summary::new(backend.name(), s)).collect();
    // Rounds interleave the scenarios, so a disturbance of the machine hits all of them alike.
    for round in 1..=cfg.rounds {
        eprintln!("  round {round}/{} (load average {})", cfg.rounds, loadavg());
        for (s, sum) in scenarios.iter().zip(out.iter_mut()) {
            let m = run(&mut backend, cfg, s).await?;
            eprintln!(
                "    {:<38} {:>7.0} visits/s  ({} visits in {:.2} s, {:.2} visits/commit)",
                s.name,
                m.log.latencies.len() as f64 / m.elapsed.as_secs_f64(),
                m.log.latencies.len(),
                m.elapsed.as_secs_f64(),
                m.units as f64 / m.commits.max(1) as f64,
            );
            sum.add(m);
        }
    }
    eprintln!("  done (load average {})", loadavg());
    Ok(out)
}

fn print_table(rows: &mut [Summary], rounds: usize) {
    println!();
    println!("Median of {rounds} rounds (range in brackets); latency percentiles over all calls of all rounds.");
    println!();
    println!(
        "| backend    | scenario                             | clients | writers | visits/s (min–max)   | p50 ms | p99 ms | max ms | ms/commit | visits/commit | failed |"
    );
    println!(
        "|------------|--------------------------------------|--------:|--------:|----------------------|-------:|-------:|-------:|----------:|--------------:|-------:|"
    );
    for m in rows.iter_mut() {
        m.latencies.sort();
        let (lo, hi) = m.rate_range();
        let rate = format!("{:.0} ({lo:.0}–{hi:.0})", m.median_rate());
        println!(
            "| {:<10} | {:<36} | {:>7} | {:>7} | {:<20} | {:>6.2} | {:>6.2} | {:>6.1} | {:>9.2} | {:>13.2} | {:>6} |",
            m.backend,
            m.scenario,
            m.clients,
            m.writers,
            rate,
            m.percentile_ms(50.0),
            m.percentile_ms(99.0),
            m.percentile_ms(100.0),
            m.ms_per_commit(),
            m.mean_batch(),
            m.errors,
        );
    }
    println!();
    for chunk in rows.chunks(3) {
        if let [group, serial, separate] = chunk {
            println!(
                "{}: group commit = {:.1}x one commit per visit (serial), {:.1}x one commit per visit ({} writers).",
                group.backend,
                group.median_rate() / serial.median_rate(),
                group.median_rate() / separate.median_rate(),
                separate.writers,
            );
        }
    }
    for m in rows.iter() {
        if let Some(e) = &m.first_error {
            println!(
                "{} / {}: {} calls failed; first error: {e}",
                m.backend, m.scenario, m.errors
            );
        }
    }
}

fn main() -> Result<()> {
    let cfg = Config::from_env()?;
    if cfg.visits < cfg.clients {
        bail!("MCH_BENCH_VISITS must be at least MCH_BENCH_CLIENTS");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    eprintln!(
        "durable_writes: {} clients, {} visits per run (group commit, 1 writer each), {} serial, \
         {} visits per pregnancy, {} rounds, {} CPUs",
        cfg.clients,
        cfg.visits / cfg.clients * cfg.clients,
        cfg.serial_visits,
        cfg.visits_per_pregnancy,
        cfg.rounds,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let mut rows = rt.block_on(bench_backend(Backend::sqlite()?, &cfg))?;
    match &cfg.pg_admin {
        Some(admin) => rows.extend(rt.block_on(bench_backend(Backend::postgres(admin)?, &cfg))?),
        None => eprintln!("(MCH_BENCH_DATABASE_URL not set: PostgreSQL skipped)"),
    }
    print_table(&mut rows, cfg.rounds);
    Ok(())
}
