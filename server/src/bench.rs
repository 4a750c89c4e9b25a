//! `herald bench`: an end-to-end load generator. It starts a receiver on 127.0.0.1, starts a real
//! `herald serve` child process on a fresh database, creates a signed webhook through the API,
//! and drives events through `POST /api/v1/events` from concurrent senders, either flat out or at
//! a fixed rate. It reports ingest/s, end-to-end deliveries/s (first event sent to last delivery
//! received), event-to-delivery latency percentiles and the server's peak RSS.
//!
//! With `--ceiling` it first measures the machine's own ceiling in the same sitting: the same
//! senders post the same event bodies, one per request, straight to the same receiver. Herald's
//! figures are then also given as a share of it (absolute figures drift between runs and
//! machines; the share much less).
//!
//! Every loop is bounded by an event count and a deadline, and all traffic stays on loopback.

use anyhow::{bail, Context};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use clap::Args;
use serde_json::json;
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// `sqlite` (a fresh temporary file) or a PostgreSQL server URL (a fresh database is created
    /// on it and dropped afterwards).
    #[arg(long, default_value = "sqlite")]
    pub database: String,
    /// Events to send.
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    /// Events per second; 0 sends flat out.
    #[arg(long, default_value_t = 0)]
    pub rate: u32,
    /// Concurrent HTTP senders.
    #[arg(long, default_value_t = 16)]
    pub senders: usize,
    /// Events per request: 1 posts to `/api/v1/events`, more to `/api/v1/events/batch`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=500))]
    pub batch: u16,
    /// Give up waiting for deliveries after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub deadline_secs: u64,
    /// Webhooks (each its own endpoint); event `i` goes to webhook `i mod N` (by a filter).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub endpoints: u32,
    /// Share of the endpoints (percent) that never answer, so Herald times out on them (after
    /// `--hang-timeout` seconds). Latency figures are for the healthy endpoints only.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=99))]
    pub hanging_percent: u32,
    /// The webhooks' request timeout in seconds (what a hanging endpoint costs per try).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=60))]
    pub hang_timeout: u16,
    /// First measure the ceiling: the same senders posting the same bodies straight to the
    /// receiver (no Herald), and report Herald's throughput as a share of it.
    #[arg(long)]
    pub ceiling: bool,
    /// Webhooks subscribed to every event (each its own endpoint): each event fans out to this
    /// many deliveries, and the throughput figures count deliveries. Not with `--endpoints` or
    /// `--hanging-percent`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub fan_out: u32,
    /// Build a backlog first: the webhooks are switched off while every event is posted (their
    /// deliveries wait, pending), then switched on; "end to end" is then the drain of the whole
    /// backlog, and the peak RSS is the server's while holding and draining it.
    #[arg(long)]
    pub backlog: bool,
    /// Run `herald relay-floor` in Herald's place: the least a durable, signed relay costs on
    /// this stack, measured with the same senders, receiver, database and ceiling (one webhook;
    /// not with `--fan-out`, `--endpoints` or `--backlog`).
    #[arg(long)]
    pub floor: bool,
}

impl BenchArgs {
    /// Endpoints `0..hanging()` hang; the rest answer at once.
    fn hanging(&self) -> u32 {
        (self.endpoints * self.hanging_percent).div_ceil(100)
    }
}

#[derive(Default)]
struct Arrivals {
    at: Mutex<HashMap<String, Instant>>,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.events == 0 || args.senders == 0 {
        bail!("--events and --senders must be positive");
    }
    if args.fan_out > 1 && (args.endpoints > 1 || args.hanging_percent > 0) {
        bail!(
            "--fan-out sends every event to every webhook; use it without --endpoints and --hanging-percent"
        );
    }
    if args.floor && (args.fan_out > 1 || args.endpoints > 1 || args.backlog) {
        bail!("--floor serves one webhook; use it without --fan-out, --endpoints and --backlog");
    }
    let (database_url, cleanup) = fresh_database(&args.database).await?;
    let result = drive(&args, &database_url).await;
    if let Some(c) = cleanup {
        c.await;
    }
    result
}

async fn drive(args: &BenchArgs, database_url: &str) -> anyhow::Result<()> {
    let arrivals = Arc::new(Arrivals::default());
    let receiver_url = start_receiver(arrivals.clone()).await?;
    let ceiling = if args.ceiling {
        Some(measure_ceiling(args, &receiver_url, &arrivals).await?)
    } else {
        None
    };
    let key = create_key(database_url).await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = spawn_server(database_url, port, args.floor)?;
    let outcome = async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(args.senders)
            .build()?;
        wait_healthy(&client, &base).await?;
        let mut webhook_ids = vec![];
        for n in 0..args.endpoints.max(args.fan_out) {
            let (url, name) = if n < args.hanging() {
                (format!("{receiver_url}/hang"), format!("bench hanging {n}"))
            } else if args.fan_out > 1 {
                (
                    format!("{receiver_url}/hook?copy={n}"),
                    format!("bench {n}"),
                )
            } else {
                (format!("{receiver_url}/hook"), format!("bench {n}"))
            };
            let filter = if args.endpoints > 1 {
                json!([{"path": "data.endpoint", "op": "eq", "value": n}])
            } else {
                json!([])
            };
            let created = client
                .post(format!("{base}/api/v1/webhooks"))
                .bearer_auth(&key)
                .json(
                    &json!({"name": name, "url": url, "event_types": ["points.awarded"],
                    "filter": filter,
                    "retry": {"attempts": 3, "delay_seconds": 1, "backoff": "fixed",
                              "timeout_seconds": args.hang_timeout}}),
                )
                .send()
                .await?;
            anyhow::ensure!(
                created.status() == 201,
                "creating a webhook failed: {}",
                created.text().await?
            );
            let created: serde_json::Value = created.json().await?;
            webhook_ids.push(created["id"].as_str().unwrap_or_default().to_owned());
        }
        let switch = |enabled: bool| {
            let (client, base, key, ids) = (&client, &base, &key, &webhook_ids);
            async move {
                for id in ids {
                    let answer = client
                        .patch(format!("{base}/api/v1/webhooks/{id}"))
                        .bearer_auth(key)
                        .json(&json!({ "enabled": enabled }))
                        .send()
                        .await?;
                    anyhow::ensure!(
                        answer.status() == 200,
                        "switching a webhook failed: {}",
                        answer.text().await?
                    );
                }
                anyhow::Ok(())
            }
        };
        if args.backlog {
            switch(false).await?;
        }
        let url = if args.batch == 1 {
            format!("{base}/api/v1/events")
        } else {
            format!("{base}/api/v1/events/batch")
        };
        let cpu_before = (cpu_secs("self"), cpu_secs(&child.id().to_string()));
        let database_before = (args.database != "sqlite")
            .then(postgres_cpu_secs)
            .flatten();
        let threads_before = threads(child.id());
        let metrics_before = scrape(&client, &base).await;
        let mut sent =
            send_events(&client, &url, Some(&key), args, usize::from(args.batch)).await?;
        if args.backlog {
            eprintln!(
                "{} events accepted and held; switching the webhooks on",
                sent.at.len() / args.fan_out as usize
            );
            sent.drain_from = Some(Instant::now());
            switch(true).await?;
        }
        let report = collect(&arrivals, &sent, args).await;
        let rss = peak_rss_kib(child.id());
        let split = ThreadSplit::between(&threads_before, &threads(child.id()), report.e2e_secs);
        let writes = match (metrics_before, scrape(&client, &base).await) {
            (Some(before), Some(after)) => WritePath::between(&before, &after, report.e2e_secs),
            _ => None,
        };
        let cpu = match (
            cpu_before,
            cpu_secs("self"),
            cpu_secs(&child.id().to_string()),
        ) {
            ((Some(own0), Some(server0)), Some(own1), Some(server1)) => Some(Cpu {
                server: server1 - server0,
                generator: own1 - own0,
                database: database_before
                    .zip(postgres_cpu_secs())
                    .map(|(before, after)| after - before),
                wall: report.e2e_secs,
            }),
            _ => None,
        };
        Ok::<_, anyhow::Error>((report, rss, cpu, split, writes))
    }
    .await;
    stop(&mut child);
    let (report, rss, cpu, split, writes) = outcome?;
    print_report(args, &report, rss, ceiling);
    if let Some(cpu) = cpu {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let database = cpu
            .database
            .map(|secs| format!(", PostgreSQL {secs:.1} s"))
            .unwrap_or_default();
        println!(
            "  CPU                server {:.1} s{database}, load generator and receiver {:.1} s, over {:.1} s on {cores} cores ({:.0}% busy)",
            cpu.server,
            cpu.generator,
            cpu.wall,
            100.0 * (cpu.server + cpu.database.unwrap_or(0.0) + cpu.generator) / (cpu.wall * cores)
        );
        if report.delivered > 0 {
            let per = |secs: f64| secs * 1e6 / report.delivered as f64;
            let database = cpu
                .database
                .map(|secs| format!(", PostgreSQL {:.0} µs", per(secs)))
                .unwrap_or_default();
            println!(
                "  CPU per delivery   server {:.0} µs{database}, load generator and receiver {:.0} µs",
                per(cpu.server),
                per(cpu.generator)
            );
        }
    }
    if !split.groups.is_empty() {
        let groups: Vec<String> = split
            .groups
            .iter()
            .map(|g| {
                format!(
                    "{}: {} thread{}, {:.0}% of a core (the busiest ran {:.0}% and waited for a core {:.0}%)",
                    g.name,
                    g.threads,
                    if g.threads == 1 { "" } else { "s" },
                    g.busy_percent,
                    g.busiest_percent,
                    g.busiest_waiting_percent
                )
            })
            .collect();
        println!("  server threads     {}", groups.join("; "));
        if report.delivered > 0 {
            println!(
                "  thread switches    {:.1} per delivery in the server",
                split.switches as f64 / report.delivered as f64
            );
        }
    }
    if let Some(w) = writes {
        println!(
            "  write path         {:.0} transactions/s, {:.1} events and {:.1} results each; open {:.0}% of the run (summed)",
            w.transactions_per_sec, w.events_each, w.results_each, w.open_percent
        );
        println!(
            "                     an event waited {:.2} ms for its transaction, which took {:.2} ms (means)",
            w.event_wait_ms, w.transaction_ms
        );
        if let Some(express) = w.express_percent {
            println!(
                "  new deliveries     {express:.0}% sent straight from ingest (express), {:.0}% claimed from the queue",
                100.0 - express
            );
        }
    }
    Ok(())
}

/// The child server's Prometheus text, or `None` if it cannot be read.
async fn scrape(client: &reqwest::Client, base: &str) -> Option<String> {
    let r = client
        .get(format!("{base}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.text().await.ok()
}

/// The sum of every sample of `name` whose labels include `label` (`None`: any labels), in
/// Prometheus text.
fn metric_sum(text: &str, name: &str, label: Option<&str>) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, labels) = series.split_once('{').unwrap_or((series, ""));
            (metric == name && label.is_none_or(|want| labels.contains(want)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// The write path over a run, from the server's `herald_write_*` metrics scraped before and
/// after: how many transactions, what each carried, how long events waited for one and how
/// much of the run they were open, summed (on SQLite one at a time, so near 100% means the one
/// writer is the limit; on PostgreSQL ingest and results commit side by side and the sum can
/// pass 100%).
#[derive(Debug, PartialEq)]
struct WritePath {
    transactions_per_sec: f64,
    events_each: f64,
    results_each: f64,
    open_percent: f64,
    event_wait_ms: f64,
    transaction_ms: f64,
    /// Share of the new deliveries the ingesting process sent straight from memory (express
    /// dispatch) rather than claimed from the queue; `None` when none were routed.
    express_percent: Option<f64>,
}

impl WritePath {
    fn between(before: &str, after: &str, secs: f64) -> Option<Self> {
        let delta = |name: &str, label: Option<&str>| {
            metric_sum(after, name, label) - metric_sum(before, name, label)
        };
        let transactions = delta("herald_write_seconds_count", None);
        if transactions <= 0.0 || secs <= 0.0 {
            return None;
        }
        let open = delta("herald_write_seconds_sum", None);
        let waits = delta("herald_write_wait_seconds_count", Some(r#"kind="events""#));
        let waited = delta("herald_write_wait_seconds_sum", Some(r#"kind="events""#));
        Some(Self {
            transactions_per_sec: transactions / secs,
            events_each: delta("herald_write_rows_total", Some(r#"kind="events""#)) / transactions,
            results_each: delta("herald_write_rows_total", Some(r#"kind="results""#))
                / transactions,
            open_percent: 100.0 * open / secs,
            event_wait_ms: if waits > 0.0 {
                1000.0 * waited / waits
            } else {
                0.0
            },
            transaction_ms: 1000.0 * open / transactions,
            express_percent: {
                let express = delta("herald_deliveries_routed_total", Some(r#"path="express""#));
                let routed = delta("herald_deliveries_routed_total", None);
                (routed > 0.0).then(|| 100.0 * express / routed)
            },
        })
    }
}

/// A thread's name, CPU ticks, context switches (voluntary and not) and nanoseconds spent
/// runnable but waiting for a core (`schedstat`; 0 where the kernel does not keep it), by
/// thread id.
type ThreadTimes = HashMap<u32, (String, u64, u64, u64)>;

/// Every thread of a process, Linux only (empty elsewhere).
fn threads(pid: u32) -> ThreadTimes {
    let mut out = ThreadTimes::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for entry in dir.flatten() {
        let path = entry.path();
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let (Ok(stat), Ok(status)) = (
            std::fs::read_to_string(path.join("stat")),
            std::fs::read_to_string(path.join("status")),
        ) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let ticks = fields
            .get(11)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            + fields
                .get(12)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        let switches = status
            .lines()
            .filter(|l| l.contains("ctxt_switches"))
            .filter_map(|l| l.split(':').nth(1)?.trim().parse::<u64>().ok())
            .sum();
        let waited = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0);
        out.insert(
            tid,
            (stat[open + 1..close].to_owned(), ticks, switches, waited),
        );
    }
    out
}

/// Where the server's CPU went during a run, by thread name (threads of one name together).
struct ThreadSplit {
    groups: Vec<ThreadGroup>,
    /// Context switches of all the server's threads.
    switches: u64,
}

struct ThreadGroup {
    name: String,
    threads: usize,
    /// Of one core, all threads of the name together.
    busy_percent: f64,
    busiest_percent: f64,
    /// How long the busiest thread waited, runnable, for a core (percent of the run).
    busiest_waiting_percent: f64,
}

impl ThreadSplit {
    fn between(before: &ThreadTimes, after: &ThreadTimes, secs: f64) -> Self {
        let mut groups: Vec<ThreadGroup> = Vec::new();
        let mut switches = 0;
        for (tid, (name, ticks, sw, waited)) in after {
            let (t0, s0, w0) = before.get(tid).map_or((0, 0, 0), |b| (b.1, b.2, b.3));
            switches += sw.saturating_sub(s0);
            // USER_HZ is 100 on Linux: a tick is 10 ms, 1% of a core for a second.
            let percent = ticks.saturating_sub(t0) as f64 / secs.max(0.001);
            let waiting = waited.saturating_sub(w0) as f64 / 1e7 / secs.max(0.001);
            match groups.iter_mut().find(|g| g.name == *name) {
                Some(g) => {
                    g.threads += 1;
                    g.busy_percent += percent;
                    if percent > g.busiest_percent {
                        g.busiest_percent = percent;
                        g.busiest_waiting_percent = waiting;
                    }
                }
                None => groups.push(ThreadGroup {
                    name: name.clone(),
                    threads: 1,
                    busy_percent: percent,
                    busiest_percent: percent,
                    busiest_waiting_percent: waiting,
                }),
            }
        }
        groups.retain(|g| g.busy_percent >= 1.0);
        groups.sort_by(|a, b| b.busy_percent.total_cmp(&a.busy_percent));
        Self { groups, switches }
    }
}

/// What the senders achieve posting straight to the receiver (see `measure_ceiling`).
#[derive(Clone, Copy)]
struct Ceiling {
    per_sec: f64,
    /// The mean time from a request to its answer, in ms.
    mean_answer_ms: f64,
}

/// POST/s of the same senders posting the same bodies, one per request, straight to the receiver
/// (a `webhook-id` header names each, as Herald's deliveries do). Leaves the arrivals empty.
async fn measure_ceiling(
    args: &BenchArgs,
    receiver_url: &str,
    arrivals: &Arrivals,
) -> anyhow::Result<Ceiling> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.senders)
        .build()?;
    let all_healthy = BenchArgs {
        hanging_percent: 0,
        rate: 0,
        ..args.clone()
    };
    let sent = send_events(
        &client,
        &format!("{receiver_url}/hook"),
        None,
        &all_healthy,
        1,
    )
    .await?;
    let received = arrivals.at.lock().expect("arrivals").len();
    arrivals.at.lock().expect("arrivals").clear();
    anyhow::ensure!(
        received == sent.at.len() && sent.rejected == 0,
        "the ceiling run lost requests: {received} of {} arrived, {} refused",
        sent.at.len(),
        sent.rejected
    );
    Ok(Ceiling {
        per_sec: received as f64 / (sent.finished - sent.started).as_secs_f64(),
        mean_answer_ms: sent.answers_ms.iter().sum::<f64>() / sent.answers_ms.len().max(1) as f64,
    })
}

struct Sent {
    at: HashMap<String, Instant>,
    started: Instant,
    finished: Instant,
    rejected: usize,
    /// With `--backlog`: when the webhooks were switched on (the drain's start).
    drain_from: Option<Instant>,
    /// Each request's time from sending to its answer, in ms, sorted.
    answers_ms: Vec<f64>,
}

/// Posts `args.events` events to `url` from `args.senders` concurrent senders, `batch` per
/// request. With a key it talks to Herald's API (202 expected); without one it posts straight to
/// the receiver, naming each event in a `webhook-id` header (200 expected).
async fn send_events(
    client: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    args: &BenchArgs,
    batch: usize,
) -> anyhow::Result<Sent> {
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (endpoints, hanging) = (args.endpoints as usize, args.hanging() as usize);
    // What the receiver records for each delivery of an event (see `start_receiver`).
    let copies: Arc<Vec<String>> = Arc::new(if key.is_some() && args.fan_out > 1 {
        (0..args.fan_out).map(|n| format!("?copy={n}")).collect()
    } else {
        vec![String::new()]
    });
    let mut tasks = tokio::task::JoinSet::new();
    let expected = if key.is_some() { 202 } else { 200 };
    for _ in 0..args.senders {
        let copies = copies.clone();
        let (client, url, key, next, total, rate) = (
            client.clone(),
            url.to_owned(),
            key.map(str::to_owned),
            next.clone(),
            args.events,
            args.rate,
        );
        tasks.spawn(async move {
            let mut sent = Vec::new();
            let mut answers_ms = Vec::new();
            let mut rejected = 0;
            loop {
                let first = next.fetch_add(batch, std::sync::atomic::Ordering::Relaxed);
                if first >= total {
                    break;
                }
                let last = (first + batch).min(total);
                if rate > 0 {
                    let due = started + Duration::from_secs_f64(first as f64 / f64::from(rate));
                    tokio::time::sleep_until(due.into()).await;
                }
                let events: Vec<(String, serde_json::Value, bool)> = (first..last)
                    .map(|i| {
                        let id = uuid::Uuid::new_v4().to_string();
                        let endpoint = i % endpoints;
                        let event = json!({"event_type": "points.awarded", "event_id": id,
                            "data": {"user_id": format!("u_{i}"), "points": 10, "reason": "bench",
                                     "balance": i, "endpoint": endpoint}});
                        (id, event, endpoint >= hanging)
                    })
                    .collect();
                let body = if batch == 1 {
                    events[0].1.clone()
                } else {
                    json!({"events": events.iter().map(|(_, e, _)| e).collect::<Vec<_>>()})
                };
                let mut request = client.post(&url).json(&body);
                request = match &key {
                    Some(key) => request.bearer_auth(key),
                    None => request.header("webhook-id", &events[0].0),
                };
                let at = Instant::now();
                let ok = request.send().await.is_ok_and(|r| r.status() == expected);
                answers_ms.push(at.elapsed().as_secs_f64() * 1000.0);
                if ok {
                    // Only events for healthy endpoints are expected back.
                    for (id, _, healthy) in events {
                        if healthy {
                            sent.extend(copies.iter().map(|c| (format!("{id}{c}"), at)));
                        }
                    }
                } else {
                    rejected += events.len();
                }
            }
            (sent, answers_ms, rejected)
        });
    }
    let mut at = HashMap::with_capacity(args.events);
    let mut answers_ms = Vec::with_capacity(args.events / batch + 1);
    let mut rejected = 0;
    while let Some(done) = tasks.join_next().await {
        let (sent, answers, r) = done?;
        at.extend(sent);
        answers_ms.extend(answers);
        rejected += r;
    }
    answers_ms.sort_by(f64::total_cmp);
    Ok(Sent {
        at,
        started,
        finished: Instant::now(),
        rejected,
        drain_from: None,
        answers_ms,
    })
}

struct Report {
    accepted: usize,
    rejected: usize,
    delivered: usize,
    /// Deliveries the run waited for (`delivered` is fewer when the deadline ran out first).
    expected: usize,
    ingest_secs: f64,
    e2e_secs: f64,
    latencies_ms: Vec<f64>,
    /// Each ingest request's time to its answer, in ms, sorted.
    answers_ms: Vec<f64>,
}

async fn collect(arrivals: &Arrivals, sent: &Sent, args: &BenchArgs) -> Report {
    let deadline = Instant::now() + Duration::from_secs(args.deadline_secs);
    loop {
        let n = arrivals.at.lock().expect("arrivals").len();
        if n >= sent.at.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = arrivals.at.lock().expect("arrivals");
    let mut latencies_ms: Vec<f64> = sent
        .at
        .iter()
        .filter_map(|(id, t0)| {
            got.get(id)
                .map(|t1| t1.duration_since(*t0).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies_ms.sort_by(f64::total_cmp);
    let last = got.values().max().copied().unwrap_or(sent.started);
    Report {
        accepted: sent.at.len() / args.fan_out as usize,
        rejected: sent.rejected,
        delivered: latencies_ms.len(),
        expected: sent.at.len(),
        ingest_secs: (sent.finished - sent.started).as_secs_f64(),
        e2e_secs: (last - sent.drain_from.unwrap_or(sent.started)).as_secs_f64(),
        latencies_ms,
        answers_ms: sent.answers_ms.clone(),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn print_report(args: &BenchArgs, r: &Report, rss_kib: Option<u64>, ceiling: Option<Ceiling>) {
    let mode = if args.rate == 0 {
        "flat out".to_owned()
    } else {
        format!("{} events/s", args.rate)
    };
    let database = if args.database == "sqlite" {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    let floor = if args.floor {
        "the relay floor (herald relay-floor) in Herald's place, "
    } else {
        ""
    };
    let backend = format!("{floor}{database}");
    println!(
        "herald bench: {backend}, {mode}, {} events, {} senders, {} event(s) per request, signed deliveries to 127.0.0.1",
        args.events, args.senders, args.batch
    );
    if args.fan_out > 1 {
        println!(
            "  fan-out            {} webhooks per event; deliveries below count each",
            args.fan_out
        );
    }
    if args.endpoints > 1 {
        println!(
            "  endpoints          {} ({} hanging, timeout {} s; figures below are the healthy ones')",
            args.endpoints,
            args.hanging(),
            args.hang_timeout
        );
    }
    println!(
        "  accepted           {} (rejected {})",
        r.accepted, r.rejected
    );
    println!("  delivered          {}", r.delivered);
    if r.delivered < r.expected {
        println!(
            "  INCOMPLETE         {} of {} deliveries arrived before the deadline ({} s, --deadline-secs): \
             the figures below cover those only",
            r.delivered, r.expected, args.deadline_secs
        );
    }
    println!(
        "  ingest             {:.0} events/s",
        r.accepted as f64 / r.ingest_secs
    );
    if !r.answers_ms.is_empty() {
        let mean = r.answers_ms.iter().sum::<f64>() / r.answers_ms.len() as f64;
        // Flat out, each sender posts again as soon as it is answered, so the senders divided
        // by the mean answer time is the most requests a second they can make (Little's law).
        let bound = if args.rate == 0 {
            let requests = args.senders as f64 * 1000.0 / mean;
            let events = if args.batch > 1 {
                format!(" ({:.0} events/s)", requests * f64::from(args.batch))
            } else {
                String::new()
            };
            format!(
                "; {} senders / mean = {requests:.0} requests/s at most{events}",
                args.senders
            )
        } else {
            String::new()
        };
        println!(
            "  ingest answer      mean {mean:.2} ms, p50 {:.2} ms, p99 {:.2} ms (POST to 202){bound}",
            percentile(&r.answers_ms, 0.50),
            percentile(&r.answers_ms, 0.99),
        );
    }
    let delivered_per_sec = r.delivered as f64 / r.e2e_secs;
    if args.backlog {
        let drained = if r.delivered < r.expected {
            format!(
                "{} delivered in {:.1} s, not drained",
                r.delivered, r.e2e_secs
            )
        } else {
            format!("drained in {:.1} s", r.e2e_secs)
        };
        println!(
            "  backlog drain      {delivered_per_sec:.0} deliveries/s ({} held, {drained}; latencies below include the wait)",
            r.accepted
        );
    } else {
        println!("  end to end         {delivered_per_sec:.0} deliveries/s");
    }
    if let Some(c) = ceiling {
        println!(
            "  ceiling            {:.0} POST/s straight to the receiver (answered in {:.2} ms on average); {} end to end is {:.1}% of it",
            c.per_sec,
            c.mean_answer_ms,
            if args.floor { "the floor" } else { "Herald" },
            100.0 * delivered_per_sec / c.per_sec
        );
    }
    println!(
        "  latency p50        {:.1} ms",
        percentile(&r.latencies_ms, 0.50)
    );
    println!(
        "  latency p99        {:.1} ms",
        percentile(&r.latencies_ms, 0.99)
    );
    println!(
        "  latency max        {:.1} ms",
        r.latencies_ms.last().copied().unwrap_or(f64::NAN)
    );
    match rss_kib {
        Some(k) => println!("  server peak RSS    {:.1} MiB", k as f64 / 1024.0),
        None => println!("  server peak RSS    unknown"),
    }
}

async fn start_receiver(arrivals: Arc<Arrivals>) -> anyhow::Result<String> {
    /// Records the first arrival of each event at each webhook: the event id, followed by the
    /// query (`?copy=n`) that tells fanned-out webhooks apart.
    async fn receive(
        State(a): State<Arc<Arrivals>>,
        RawQuery(query): RawQuery,
        headers: HeaderMap,
    ) -> &'static str {
        if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
            let key = match query {
                Some(q) => format!("{id}?{q}"),
                None => id.to_owned(),
            };
            a.at.lock()
                .expect("arrivals")
                .entry(key)
                .or_insert_with(Instant::now);
        }
        "ok"
    }
    /// Never answers (the request ends when Herald gives up on it).
    async fn hang() -> &'static str {
        std::future::pending::<()>().await;
        "never"
    }
    let app = Router::new()
        .route("/hook", post(receive))
        .route("/hang", post(hang))
        .with_state(arrivals);
    serve_on_loopback(app).await
}

/// Serves `app` on a free port of 127.0.0.1 in the background; returns its base URL.
pub(crate) async fn serve_on_loopback(app: Router) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}"))
}

async fn create_key(database_url: &str) -> anyhow::Result<String> {
    let store = herald::store::connect(database_url).await?;
    Ok(herald::auth::api_key::issue(store.as_ref(), "bench")
        .await?
        .plain)
}

/// The bearer token the child server's `/metrics` answers to (loopback only, for this run).
const METRICS_TOKEN: &str = "bench-metrics";

fn spawn_server(database_url: &str, port: u16, floor: bool) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("locating the herald binary")?;
    Command::new(exe)
        .args([
            if floor { "relay-floor" } else { "serve" },
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            database_url,
        ])
        .env(
            "HERALD_SECRET_KEY",
            "62656e63682d6f6e6c792d6b65792d62656e63682d6f6e6c792d6b65792d2d21",
        )
        .env("HERALD_ALLOW_PRIVATE_TARGETS", "true")
        .env("HERALD_METRICS_TOKEN", METRICS_TOKEN)
        // HERALD_BENCH_SERVER_LOG, e.g. `warn,sqlx::query=debug`, times each statement.
        .env(
            "RUST_LOG",
            std::env::var("HERALD_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting herald serve")
}

async fn wait_healthy(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("herald serve did not become healthy")
}

/// CPU seconds used while events were sent and delivered.
struct Cpu {
    server: f64,
    generator: f64,
    /// PostgreSQL's own processes on this machine (`None`: SQLite, or not readable).
    database: Option<f64>,
    wall: f64,
}

/// CPU seconds of every PostgreSQL process on this machine (the backends serving the run, and
/// the WAL writer, checkpointer and others), with what exited processes left in the accounts of
/// the process that reaped them; Linux only. The server under test is on this machine in a
/// benchmark, and it does the database's share of the work per delivery.
/// Stops the server as an operator would (SIGTERM, so it shuts down cleanly and a profiler it
/// runs under, such as callgrind, writes its profile), and kills it if it has not exited within
/// 30 s.
fn stop(child: &mut Child) {
    let asked = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while asked && Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn postgres_cpu_secs() -> Option<f64> {
    let mut total = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let pid = entry.file_name();
        let Some(pid) = pid
            .to_str()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let is_postgres = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|comm| comm.trim_end() == "postgres");
        if let Some(secs) = is_postgres.then(|| process_secs(pid, true)).flatten() {
            *total.get_or_insert(0.0) += secs;
        }
    }
    total
}

/// User plus system CPU seconds of a process (`self` or a pid), Linux only.
fn cpu_secs(pid: &str) -> Option<f64> {
    process_secs(pid, false)
}

/// User plus system CPU seconds of a process, with those of its exited and reaped children
/// when `children`, Linux only.
fn process_secs(pid: &str, children: bool) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) closed by the last ')':
    // utime, stime, cutime, cstime are the 12th to 15th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let count = if children { 4 } else { 2 };
    let mut ticks = 0.0;
    for field in fields.get(11..11 + count)? {
        ticks += field.parse::<f64>().ok()?;
    }
    // The kernel reports in USER_HZ, 100 on Linux.
    Some(ticks / 100.0)
}

/// The child's peak resident set (VmHWM), Linux only.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

type Cleanup = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A fresh database for one run, and how to remove it afterwards.
async fn fresh_database(which: &str) -> anyhow::Result<(String, Option<Cleanup>)> {
    if which == "sqlite" {
        let dir = tempfile::tempdir()?;
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        );
        let cleanup: Cleanup = Box::pin(async move { drop(dir) });
        return Ok((url, Some(cleanup)));
    }
    if !which.starts_with("postgres") {
        bail!("--database must be sqlite or a postgres:// server URL");
    }
    let name = format!("herald_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(which).await?;
    sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {name}").as_str()).await?;
    let mut url = url::Url::parse(which)?;
    url.set_path(&name);
    let admin_url = which.to_owned();
    let cleanup: Cleanup = Box::pin(async move {
        if let Ok(mut c) = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url).await {
            let _ = sqlx::Executor::execute(
                &mut c,
                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
            )
            .await;
        }
    });
    Ok((url.to_string(), Some(cleanup)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PostgreSQL's backends come and go; what an exited one used is in the accounts of the
    /// process that reaped it (cutime and cstime), which the database figure counts.
    #[test]
    fn a_process_cpu_counts_its_reaped_children_when_asked() {
        let busy = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"])
            .status()
            .unwrap();
        assert!(busy.success());
        let own = process_secs("self", false).unwrap();
        let with_children = process_secs("self", true).unwrap();
        assert!(with_children > own, "{with_children} vs {own}");
        assert_eq!(cpu_secs("self").map(|s| s >= own), Some(true));
    }

    #[test]
    fn thread_split_groups_threads_by_name() {
        let before = ThreadTimes::from([
            (1, ("worker".to_owned(), 100, 10, 0)),
            (2, ("worker".to_owned(), 50, 5, 1_000_000_000)),
            (3, ("sqlite".to_owned(), 0, 0, 0)),
        ]);
        let after = ThreadTimes::from([
            (1, ("worker".to_owned(), 150, 30, 200_000_000)),
            (2, ("worker".to_owned(), 70, 15, 1_600_000_000)),
            (3, ("sqlite".to_owned(), 100, 40, 500_000_000)),
            // Started during the run: all of its time counts; under 1% it is left out.
            (4, ("idle".to_owned(), 1, 1, 0)),
        ]);
        let split = ThreadSplit::between(&before, &after, 2.0);
        let shown: Vec<(&str, usize, f64, f64, f64)> = split
            .groups
            .iter()
            .map(|g| {
                (
                    g.name.as_str(),
                    g.threads,
                    g.busy_percent,
                    g.busiest_percent,
                    g.busiest_waiting_percent,
                )
            })
            .collect();
        // The busiest worker (thread 1) waited 0.2 s of the 2 s run for a core: 10%.
        assert_eq!(
            shown,
            [
                ("sqlite", 1, 50.0, 50.0, 25.0),
                ("worker", 2, 35.0, 25.0, 10.0)
            ]
        );
        assert_eq!(split.switches, 20 + 10 + 40 + 1);
    }

    #[test]
    fn write_path_reads_the_metrics_deltas() {
        let before = "# HELP x\n\
            herald_write_seconds_count{kind=\"events\"} 10\n\
            herald_write_seconds_sum{kind=\"events\"} 0.01\n\
            herald_write_rows_total{kind=\"events\"} 40\n\
            herald_write_wait_seconds_count{kind=\"events\"} 40\n\
            herald_write_wait_seconds_sum{kind=\"events\"} 0.02\n";
        let after = "herald_write_seconds_count{kind=\"events\"} 110\n\
            herald_write_seconds_count{kind=\"shared\"} 100\n\
            herald_write_seconds_sum{kind=\"events\"} 0.11\n\
            herald_write_seconds_sum{kind=\"shared\"} 0.3\n\
            herald_write_rows_total{kind=\"events\"} 840\n\
            herald_write_rows_total{kind=\"results\"} 600\n\
            herald_write_wait_seconds_count{kind=\"events\"} 840\n\
            herald_write_wait_seconds_sum{kind=\"events\"} 0.42\n\
            herald_write_wait_seconds_count{kind=\"results\"} 100\n\
            herald_write_wait_seconds_sum{kind=\"results\"} 9\n\
            herald_deliveries_routed_total{path=\"express\"} 600\n\
            herald_deliveries_routed_total{path=\"queue\"} 200\n";
        let w = WritePath::between(before, after, 0.5).unwrap();
        // 200 transactions in half a second carried 800 events and 600 results, open 0.4 s.
        assert_eq!(w.transactions_per_sec, 400.0);
        assert_eq!(w.events_each, 4.0);
        assert_eq!(w.results_each, 3.0);
        assert!((w.open_percent - 80.0).abs() < 1e-9, "{w:?}");
        assert!((w.transaction_ms - 2.0).abs() < 1e-9, "{w:?}");
        // Events only: 0.4 s over 800 waits.
        assert!((w.event_wait_ms - 0.5).abs() < 1e-9, "{w:?}");
        // 600 of the 800 new deliveries went out without a claim.
        assert_eq!(w.express_percent, Some(75.0));
        assert_eq!(
            WritePath::between(after, after, 0.5),
            None,
            "no transactions"
        );
    }

    #[test]
    fn threads_reads_this_process() {
        let mine = threads(std::process::id());
        if cfg!(target_os = "linux") {
            assert!(!mine.is_empty(), "at least the thread running this test");
            assert!(mine.values().all(|(name, _, _, _)| !name.is_empty()));
        } else {
            assert!(mine.is_empty());
        }
    }
}
