//! The `Store` implementation both backends share, written once as a macro over the backend's
//! type and its `sqlx` database. A backend supplies `writer`, `reader` and `program` fields,
//! `claim`, `ingest` and `record` (where SQLite and PostgreSQL truly differ: a round trip to
//! PostgreSQL costs far more than a statement), and nothing else.

macro_rules! impl_store {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Creates the default program if there is none and refreshes the event catalog.
            async fn seed(pool: &sqlx::Pool<$db>) -> Result<ProgramId> {
                let mut tx = pool.begin().await?;
                sqlx::query(sql::ENSURE_DEFAULT_PROGRAM)
                    .bind(ProgramId::generate().to_string())
                    .bind(super::now())
                    .execute(&mut *tx)
                    .await?;
                for et in catalog::catalog() {
                    sqlx::query(sql::UPSERT_EVENT_TYPE)
                        .bind(et.name)
                        .bind(et.feed)
                        .bind(et.description)
                        .bind(Json(&et.schema))
                        .bind(Json(&et.example))
                        .execute(&mut *tx)
                        .await?;
                }
                let id: String = sqlx::query_scalar(sql::DEFAULT_PROGRAM)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(ProgramId::from_trusted(id))
            }

            /// The pool every write goes through, once the database's file is still the one
            /// opened (see `file_trouble`); refused as unavailable otherwise. Taking it here,
            /// before a connection, is what keeps any write (ingest, results, claims, a
            /// webhook's edit, a session) out of a deleted file: a refusal inside a transaction
            /// could close the connection, and a new one would create an empty file at the path.
            fn writer(&self) -> Result<&sqlx::Pool<$db>> {
                match self.file_trouble() {
                    Some(trouble) => Err(StoreError::Unavailable(trouble)),
                    None => Ok(&self.write_pool),
                }
            }

            /// Ingest's and the recorder's writes (see `Store::ingest_batch` and
            /// `Store::record_results`), either side possibly empty, in one transaction of its
            /// own. Where the backend takes scripts, the transaction's BEGIN and COMMIT travel in
            /// its first and last scripts (`sql::OpenTransaction`); otherwise through sqlx's
            /// transaction.
            async fn write(
                &self,
                batch: &[IngestItem],
                results: &[Outcome],
                now: DateTime<Utc>,
            ) -> Result<(Vec<Option<usize>>, Moved)> {
                if !Self::STATEMENTS_TOGETHER {
                    let mut tx = self.writer()?.begin().await?;
                    let written = self.write_in(&mut tx, batch, results, now, false).await?;
                    tx.commit().await?;
                    return Ok(written);
                }
                let mut open = sql::OpenTransaction::new(self.writer()?.acquire().await?);
                match self.write_in(open.conn(), batch, results, now, true).await {
                    Ok(written) => {
                        open.finish();
                        Ok(written)
                    }
                    Err(e) => {
                        // The script stopped at the failing statement, before its COMMIT. If
                        // even the rollback fails, dropping `open` closes the connection.
                        if sqlx::query("ROLLBACK").execute(open.conn()).await.is_ok() {
                            open.finish();
                        }
                        Err(e)
                    }
                }
            }

            /// The statements of `write` on `conn`, in two steps (`sql::Statements`): first what
            /// answers back (each program's subscriber-list version, the events that were new,
            /// the deliveries that moved on), then what follows from those answers. `inline`:
            /// the steps begin and commit the transaction themselves; otherwise `conn` is inside
            /// one. Returns what ingest returns and which results moved their delivery.
            async fn write_in(
                &self,
                conn: &mut <$db as sqlx::Database>::Connection,
                batch: &[IngestItem],
                results: &[Outcome],
                now: DateTime<Utc>,
                inline: bool,
            ) -> Result<(Vec<Option<usize>>, Moved)> {
                use sqlx::Row;
                let routed: Vec<(&str, i64)> = sql::routed_versions(batch)?.into_iter().collect();
                let rows = batch.len() + results.len();
                let mut first = sql::Statements::new(Self::STATEMENTS_TOGETHER, rows);
                if inline {
                    first.begin();
                }
                for (program, _) in &routed {
                    sql::push_routing_version(first.next(), program, Self::SHARE_LOCK);
                }
                let event_chunks: Vec<_> = sql::sized_chunks(batch, sql::MAX_ROWS_PER_INSERT / 2).collect();
                for chunk in &event_chunks {
                    sql::push_insert_events(first.next(), chunk);
                }
                for chunk in sql::sized_chunks(results, sql::FINISHED_PER_UPDATE) {
                    sql::push_finish_deliveries(first.next(), chunk, now);
                }
                let answers = Self::run(conn, first).await?;
                let (versions, rest) = answers.split_at(routed.len());
                let (inserted, finished) = rest.split_at(event_chunks.len());
                for ((_, version), rows) in routed.iter().zip(versions) {
                    let current: Option<i64> = rows.first().map(|r| r.try_get(0)).transpose()?;
                    if current != Some(*version) {
                        return Err(StoreError::StaleRouting);
                    }
                }

                // The first occurrence of a new event id is the one stored; repeats are duplicates.
                let mut fresh = std::collections::HashSet::new();
                for row in inserted.iter().flatten() {
                    fresh.insert((row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?));
                }
                let mut stored_counts = Vec::with_capacity(batch.len());
                let mut deliveries = Vec::new();
                let mut stored = Vec::with_capacity(batch.len());
                for item in batch {
                    let e = &item.event;
                    let key = (e.program_id.to_string(), e.id.to_string());
                    if fresh.remove(&key) {
                        deliveries.extend(item.targets.iter().map(|t| (e, t)));
                        stored_counts.push(Some(item.targets.len()));
                        stored.push(item);
                    } else {
                        stored_counts.push(None);
                    }
                }
                // A result moved its delivery on if the delivery was still under that result's
                // claim: each delivery moved answers with the claim it moved under, so a stale
                // worker's result that shares a batch with the current claim's is superseded
                // rather than counted as moved.
                let mut moved = std::collections::HashMap::with_capacity(results.len());
                for row in finished.iter().flatten() {
                    moved.insert(row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?);
                }
                let did_move =
                    |r: &Outcome| moved.get(r.delivery_id.as_str()) == Some(&r.claim_count);

                let mut second = sql::Statements::new(Self::STATEMENTS_TOGETHER, rows);
                let sizes = $crate::store::rollups::event_adds(stored.into_iter());
                let sizes: Vec<_> = sizes.iter().collect();
                for chunk in sql::sized_chunks(&sizes, $crate::store::rollups::ROWS_PER_UPSERT) {
                    $crate::store::rollups::push_upsert_events(second.next(), chunk);
                }
                for chunk in sql::sized_chunks(&deliveries, sql::MAX_ROWS_PER_INSERT) {
                    sql::push_insert_deliveries(second.next(), chunk);
                }
                // Every request that went out is in the audit log; one whose claim lost the race
                // is marked superseded and moves no figures.
                let superseded: Vec<NewAttempt> = results
                    .iter()
                    .filter(|r| !did_move(r))
                    .map(|r| NewAttempt { superseded: true, ..r.attempt.clone() })
                    .collect();
                let attempts: Vec<&NewAttempt> = results
                    .iter()
                    .filter(|r| did_move(r))
                    .map(|r| &r.attempt)
                    .chain(superseded.iter())
                    .collect();
                let dead: std::collections::HashSet<String> = results
                    .iter()
                    .filter(|r| r.next == $crate::delivery::queue::NextStep::Failed && did_move(r))
                    .map(|r| r.attempt.id.to_string())
                    .collect();
                Self::push_attempt_writes(&mut second, &attempts, &dead);
                // Deliveries stored already claimed are sent by this process, and held ones wait
                // for their webhook to be switched on: only others need announcing to the
                // processes waiting for work (heard when the transaction commits).
                if deliveries.iter().any(|(_, t)| t.lease.is_none() && !t.held) {
                    self.announce(&mut *conn).await?;
                }
                if inline {
                    second.commit();
                }
                if !second.is_empty() || inline {
                    Self::run(conn, second).await?;
                }
                Ok((stored_counts, Moved::new(results.iter().map(did_move).collect())))
            }

            /// A program's webhooks subscribed to `event_type` (see `Store::subscribers`), read
            /// on `conn`; `lock` follows the read of the program's subscriber-list version
            /// (`SHARE_LOCK` inside a transaction holds webhook changes off until it ends).
            async fn subscribers_on(
                conn: &mut <$db as sqlx::Database>::Connection,
                program: &ProgramId,
                event_type: &str,
                lock: &str,
            ) -> Result<Subscribers> {
                // The version is read first: a change committed between the two reads makes the
                // list newer than its version, which ingest then finds stale (never the reverse).
                let (version, validated): (i64, String) = sqlx::query_as(&format!(
                    "SELECT webhooks_version, validated_event_types FROM programs WHERE id = $1{lock}"
                ))
                .bind(program.as_str())
                .fetch_optional(&mut *conn)
                .await?
                .unwrap_or_default();
                let validate = validated.split(',').any(|t| t == event_type);
                let rows: Vec<WebhookRow> = sqlx::query_as(&format!(
                    "SELECT {} FROM webhooks w JOIN subscriptions s ON s.webhook_id = w.id \
                     WHERE s.program_id = $1 AND s.event_type = $2 AND w.deleted_at IS NULL",
                    sql::WEBHOOK_COLUMNS
                ))
                .bind(program.as_str())
                .bind(event_type)
                .fetch_all(&mut *conn)
                .await?;
                Ok(Subscribers { version, webhooks: sql::convert(rows)?, validate })
            }

            /// Runs `statements` on `conn`: the rows each of the caller's statements answered, in
            /// order.
            async fn run(
                conn: &mut <$db as sqlx::Database>::Connection,
                statements: sql::Statements<'_, $db>,
            ) -> Result<Vec<Vec<<$db as sqlx::Database>::Row>>> {
                use futures::TryStreamExt;
                use sqlx::Executor;
                let (queries, expected, framing) = statements.into_queries();
                let mut answers = Vec::with_capacity(expected);
                let mut rows = Vec::new();
                for mut query in queries {
                    let mut steps = (&mut *conn).fetch_many(query.build());
                    while let Some(step) = steps.try_next().await? {
                        match step {
                            // The end of one statement.
                            sqlx::Either::Left(_) => answers.push(std::mem::take(&mut rows)),
                            sqlx::Either::Right(row) => rows.push(row),
                        }
                    }
                }
                if answers.len() != expected {
                    return Err(StoreError::Database(sqlx::Error::Protocol(format!(
                        "{expected} statements sent, {} answered",
                        answers.len()
                    ))));
                }
                Ok(framing.own(answers))
            }

            /// Records results in one transaction of a few statements (see `Store::record_results`).
            async fn record_in_transaction(&self, results: &[Outcome], now: DateTime<Utc>) -> Result<Moved> {
                let (_, moved) = self.write(&[], results, now).await?;
                Ok(moved)
            }

            /// Replaces a webhook's settings and subscriptions, fenced on its version.
            async fn update_webhook_in(tx: &mut sqlx::Transaction<'_, $db>, w: &WebhookRecord) -> Result<()> {
                let updated = sql::bind_webhook(sqlx::query(sql::UPDATE_WEBHOOK), w)
                    .bind(w.updated_at)
                    .bind(w.version)
                    .execute(&mut **tx)
                    .await
                    .map_err(|e| conflict_on_unique(e, "name"))?
                    .rows_affected();
                if updated == 0 {
                    return Err(StoreError::Stale);
                }
                // The write is fenced on `w.version` and moves it by one.
                Self::announce_change(&mut **tx, &w.id, w.version + 1).await?;
                // Its pending deliveries follow the switch afterwards, a step at a time
                // (`settle_held`): claims skip a switched-off webhook whatever their due time.
                Self::write_subscriptions(tx, w).await
            }

            async fn write_subscriptions(tx: &mut sqlx::Transaction<'_, $db>, w: &WebhookRecord) -> Result<()> {
                sqlx::query(sql::DELETE_SUBSCRIPTIONS)
                    .bind(w.id.as_str())
                    .execute(&mut **tx)
                    .await?;
                for et in &w.event_types {
                    sqlx::query(sql::INSERT_SUBSCRIPTION)
                        .bind(w.id.as_str())
                        .bind(w.program_id.as_str())
                        .bind(et)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(())
            }

            /// Moves the program's subscriber-list version on (first, so the program row is always
            /// locked before a webhook row: the same order ingest takes them in).
            async fn bump_routing(tx: &mut sqlx::Transaction<'_, $db>, program: &ProgramId) -> Result<()> {
                sqlx::query(sql::BUMP_ROUTING_VERSION)
                    .bind(program.as_str())
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            /// Audit rows in multi-row inserts, their roll-ups, and each webhook's counters moved
            /// once. `dead` names the attempts that dead-lettered their delivery (for the roll-ups).
            fn push_attempt_writes<'a>(
                statements: &mut sql::Statements<'a, $db>,
                attempts: &[&'a NewAttempt],
                dead: &std::collections::HashSet<String>,
            ) {
                for chunk in sql::sized_chunks(attempts, sql::ATTEMPTS_PER_INSERT) {
                    sql::push_insert_attempts(statements.next(), chunk);
                }
                let adds = $crate::store::rollups::hour_adds(attempts, dead);
                let rows: Vec<_> = adds.iter().collect();
                for chunk in sql::sized_chunks(&rows, $crate::store::rollups::ROWS_PER_UPSERT) {
                    $crate::store::rollups::push_upsert_hours(statements.next(), chunk);
                }
                let buckets = $crate::store::rollups::bucket_adds(&adds);
                for chunk in sql::sized_chunks(&buckets, $crate::store::rollups::ROWS_PER_UPSERT) {
                    $crate::store::rollups::push_upsert_buckets(statements.next(), chunk);
                }
                let tallies = sql::tally(attempts.iter().copied());
                let mut tallies: Vec<_> = tallies.iter().collect();
                // One order, so two writers never take the same webhooks' rows in opposite orders.
                tallies.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
                for chunk in sql::sized_chunks(&tallies, $crate::store::rollups::ROWS_PER_UPSERT) {
                    sql::push_bump_counters(statements.next(), chunk);
                }
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.reader).await?;
                Ok(())
            }

            fn backend(&self) -> &'static str {
                Self::BACKEND
            }

            fn database_file(&self) -> Option<std::path::PathBuf> {
                self.local_file()
            }

            async fn default_program(&self) -> Result<ProgramId> {
                Ok(self.program.clone())
            }

            async fn insert_webhook(&self, w: &WebhookRecord) -> Result<()> {
                let mut tx = self.writer()?.begin().await?;
                Self::bump_routing(&mut tx, &w.program_id).await?;
                sql::bind_webhook(sqlx::query(sql::INSERT_WEBHOOK), w)
                    .bind(w.created_at)
                    .bind(w.updated_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| conflict_on_unique(e, "name"))?;
                Self::write_subscriptions(&mut tx, w).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn update_webhook(&self, w: &WebhookRecord) -> Result<()> {
                let mut tx = self.writer()?.begin().await?;
                Self::bump_routing(&mut tx, &w.program_id).await?;
                Self::update_webhook_in(&mut tx, w).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn import_webhooks(
                &self,
                program: &ProgramId,
                new: &[WebhookRecord],
                changed: &[WebhookRecord],
            ) -> Result<()> {
                let mut tx = self.writer()?.begin().await?;
                Self::bump_routing(&mut tx, program).await?;
                for w in new.iter().chain(changed) {
                    if &w.program_id != program {
                        return Err(StoreError::Corrupt(format!(
                            "webhook {} imported into another program",
                            w.id
                        )));
                    }
                }
                for w in changed {
                    Self::update_webhook_in(&mut tx, w).await?;
                }
                for w in new {
                    sql::bind_webhook(sqlx::query(sql::INSERT_WEBHOOK), w)
                        .bind(w.created_at)
                        .bind(w.updated_at)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| conflict_on_unique(e, "name"))?;
                    Self::write_subscriptions(&mut tx, w).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn get_webhook(&self, program: &ProgramId, id: &WebhookId) -> Result<Option<Webhook>> {
                let row: Option<WebhookRow> = sqlx::query_as(&format!(
                    "SELECT {} FROM webhooks w WHERE w.program_id = $1 AND w.id = $2 AND w.deleted_at IS NULL",
                    sql::WEBHOOK_COLUMNS
                ))
                .bind(program.as_str())
                .bind(id.as_str())
                .fetch_optional(&self.reader)
                .await?;
                row.map(Webhook::try_from).transpose()
            }

            async fn list_webhooks(&self, program: &ProgramId, q: &WebhookQuery) -> Result<Vec<Webhook>> {
                let rows: Vec<WebhookRow> = sql::list_webhooks_query::<$db>(program, q)
                    .build_query_as()
                    .fetch_all(&self.reader)
                    .await?;
                sql::convert(rows)
            }

            async fn delete_webhook(&self, program: &ProgramId, id: &WebhookId) -> Result<bool> {
                let now = super::now();
                let mut tx = self.writer()?.begin().await?;
                Self::bump_routing(&mut tx, program).await?;
                let done = sqlx::query(sql::SOFT_DELETE_WEBHOOK)
                    .bind(id.as_str())
                    .bind(program.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if done == 1 {
                    // The pending ones follow in steps (`settle_held`).
                    sqlx::query(sql::CANCEL_IN_FLIGHT)
                        .bind(id.as_str())
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(done == 1)
            }

            async fn ingest_batch(&self, batch: &[IngestItem]) -> Result<Vec<Option<usize>>> {
                if batch.is_empty() {
                    return Ok(Vec::new());
                }
                self.ingest(batch).await
            }

            async fn ingest_and_record(
                &self,
                batch: &[IngestItem],
                results: &[Outcome],
                now: DateTime<Utc>,
            ) -> Result<(Vec<Option<usize>>, Moved)> {
                self.write_together(batch, results, now).await
            }

            async fn subscribers(&self, program: &ProgramId, event_type: &str) -> Result<Subscribers> {
                let mut conn = self.reader.acquire().await?;
                Self::subscribers_on(&mut conn, program, event_type, "").await
            }

            async fn ingest_routed(
                &self,
                batch: &mut [IngestItem],
                route: &mut $crate::store::Router<'_>,
            ) -> Result<Vec<Option<usize>>> {
                if batch.is_empty() {
                    return Ok(Vec::new());
                }
                let mut tx = self.writer()?.begin().await?;
                let mut lists: std::collections::HashMap<(String, String), Subscribers> =
                    std::collections::HashMap::new();
                for (place, item) in batch.iter_mut().enumerate() {
                    let e = &item.event;
                    let key = (e.program_id.to_string(), e.event_type.to_string());
                    if !lists.contains_key(&key) {
                        let list = Self::subscribers_on(
                            &mut *tx,
                            &e.program_id,
                            e.event_type.as_str(),
                            Self::SHARE_LOCK,
                        )
                        .await?;
                        lists.insert(key.clone(), list);
                    }
                    let list = &lists[&key];
                    let targets = route(place, e, list)?;
                    item.targets = targets;
                    item.routing_version = list.version;
                }
                let stored = self.ingest_on(&mut *tx, batch).await?;
                tx.commit().await?;
                Ok(stored)
            }

            async fn claim_due(
                &self,
                now: DateTime<Utc>,
                limit: u32,
                lease_margin: chrono::Duration,
                exclude: &[WebhookId],
            ) -> Result<Vec<Claim>> {
                self.claim(now, limit, lease_margin, exclude).await
            }

            async fn record_results(&self, results: &[Outcome], now: DateTime<Utc>) -> Result<Moved> {
                self.record(results, now).await
            }

            async fn rollups(&self, program: &ProgramId, q: &$crate::store::rollups::RollupQuery) -> Result<Vec<(String, $crate::domain::insights::Rollup)>> {
                let counters_sql = q.counters_sql();
                let mut counters = sqlx::query_as::<_, $crate::store::rollups::CounterRow>(&counters_sql)
                    .bind(program.as_str())
                    .bind(q.from_hour)
                    .bind(q.to_hour);
                let buckets_sql = q.buckets_sql();
                let mut buckets = sqlx::query_as::<_, (String, i64, i64, i64)>(&buckets_sql)
                    .bind(program.as_str())
                    .bind(q.from_hour)
                    .bind(q.to_hour);
                for webhook in &q.webhooks {
                    counters = counters.bind(webhook.clone());
                    buckets = buckets.bind(webhook.clone());
                }
                let counters = counters.fetch_all(&self.reader).await?;
                let buckets = buckets.fetch_all(&self.reader).await?;
                Ok($crate::store::rollups::fold(counters, buckets))
            }

            async fn discard_held(
                &self,
                program: &ProgramId,
                id: &WebhookId,
                reason: &str,
                now: DateTime<Utc>,
                limit: i64,
            ) -> Result<u64> {
                Ok(sqlx::query(&sql::discard_held_step(Self::IN_SET))
                    .bind(id.as_str())
                    .bind(program.as_str())
                    .bind(reason)
                    .bind(now)
                    .bind(limit)
                    .execute(self.writer()?)
                    .await?
                    .rows_affected())
            }

            async fn settle_held(&self, id: &WebhookId, limit: i64) -> Result<u64> {
                let state: Option<(bool, bool)> = sqlx::query_as(
                    "SELECT enabled, deleted_at IS NOT NULL FROM webhooks WHERE id = $1",
                )
                .bind(id.as_str())
                .fetch_optional(&self.reader)
                .await?;
                let Some((enabled, deleted)) = state else {
                    return Ok(0);
                };
                if deleted {
                    return Ok(sqlx::query(&sql::cancel_step(Self::IN_SET))
                        .bind(id.as_str())
                        .bind(super::now())
                        .bind(limit)
                        .execute(self.writer()?)
                        .await?
                        .rows_affected());
                }
                // Each step checks the switch again as it writes: a step for a switch that has
                // changed since moves nothing (the change's own steps follow it).
                let step = if enabled {
                    sql::release_step(Self::IN_SET)
                } else {
                    sql::hold_step(Self::IN_SET)
                };
                Ok(sqlx::query(&step)
                    .bind(id.as_str())
                    .bind(sql::held_due())
                    .bind(limit)
                    .execute(self.writer()?)
                    .await?
                    .rows_affected())
            }

            async fn unsettled_webhooks(&self) -> Result<Vec<WebhookId>> {
                let ids: Vec<String> = sqlx::query_scalar(sql::UNSETTLED_WEBHOOKS)
                    .bind(sql::held_due())
                    .fetch_all(&self.reader)
                    .await?;
                Ok(ids.into_iter().map(WebhookId::from_trusted).collect())
            }

            async fn held_counts(&self, program: &ProgramId, ids: &[WebhookId], limit: i64) -> Result<Vec<(WebhookId, i64)>> {
                let mut counts = Vec::new();
                // A few hundred ids a statement: a whole program's (the flag check) stays within
                // every backend's limit on bound values.
                for chunk in ids.chunks(sql::IDS_PER_STATEMENT) {
                    let rows: Vec<(String, i64)> = sql::held_counts_query::<$db>(program, chunk, limit)
                        .build_query_as()
                        .fetch_all(&self.reader)
                        .await?;
                    counts.extend(rows.into_iter().map(|(id, n)| (WebhookId::from_trusted(id), n)));
                }
                Ok(counts)
            }

            async fn oldest_due(&self, program: &ProgramId, ids: &[WebhookId]) -> Result<Vec<(WebhookId, DateTime<Utc>)>> {
                let mut due = Vec::new();
                for chunk in ids.chunks(sql::IDS_PER_STATEMENT) {
                    let rows: Vec<(String, DateTime<Utc>, Option<DateTime<Utc>>)> =
                        sql::first_pending_query::<$db>(Some((program, chunk)))
                            .build_query_as()
                            .fetch_all(&self.reader)
                            .await?;
                    due.extend(rows.into_iter().filter_map(|(id, on, at)| {
                        Some((WebhookId::from_trusted(id), super::waiting_from(on, at)?))
                    }));
                }
                Ok(due)
            }

            async fn sustained_failures(
                &self,
                ids: &[WebhookId],
                since: DateTime<Utc>,
                min_failures: i64,
            ) -> Result<Vec<$crate::store::FailingWebhook>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let rows: Vec<(String, String, String, DateTime<Utc>, i64)> =
                    sql::sustained_failures_query::<$db>(ids, since, min_failures)
                        .build_query_as()
                        .fetch_all(&self.reader)
                        .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, program, name, since, failures)| $crate::store::FailingWebhook {
                        id: WebhookId::from_trusted(id),
                        program: ProgramId::from_trusted(program),
                        name,
                        since,
                        failures,
                    })
                    .collect())
            }

            async fn auto_disable_webhook(
                &self,
                program: &ProgramId,
                id: &WebhookId,
                reason: &str,
                now: DateTime<Utc>,
            ) -> Result<Option<i64>> {
                let mut tx = self.writer()?.begin().await?;
                Self::bump_routing(&mut tx, program).await?;
                let version: Option<i64> = sqlx::query_scalar(sql::AUTO_DISABLE)
                    .bind(id.as_str())
                    .bind(program.as_str())
                    .bind(reason)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(version) = version else {
                    // Already off (or gone): nothing to change, and no need to move the version.
                    tx.rollback().await?;
                    return Ok(None);
                };
                Self::announce_change(&mut *tx, id, version).await?;
                tx.commit().await?;
                Ok(Some(version))
            }

            async fn validated_event_types(&self, program: &ProgramId) -> Result<Vec<String>> {
                let raw: Option<String> = sqlx::query_scalar(
                    "SELECT validated_event_types FROM programs WHERE id = $1",
                )
                .bind(program.as_str())
                .fetch_optional(&self.reader)
                .await?;
                Ok(raw
                    .unwrap_or_default()
                    .split(',')
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect())
            }

            async fn set_event_type_validation(&self, program: &ProgramId, event_type: &str, on: bool) -> Result<()> {
                let mut tx = self.writer()?.begin().await?;
                // The bump first: it locks the program row until commit, so two changes at once
                // cannot both read the old list.
                Self::bump_routing(&mut tx, program).await?;
                let raw: Option<String> = sqlx::query_scalar(
                    "SELECT validated_event_types FROM programs WHERE id = $1",
                )
                .bind(program.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                let mut types: std::collections::BTreeSet<String> = raw
                    .unwrap_or_default()
                    .split(',')
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect();
                if on {
                    types.insert(event_type.to_owned());
                } else {
                    types.remove(event_type);
                }
                let joined = types.into_iter().collect::<Vec<_>>().join(",");
                sqlx::query("UPDATE programs SET validated_event_types = $2 WHERE id = $1")
                    .bind(program.as_str())
                    .bind(joined)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn event_sizes(&self, program: &ProgramId, from_hour: i64, to_hour: i64) -> Result<Vec<(String, $crate::domain::insights::SizeStats)>> {
                let rows: Vec<(String, i64, i64, f64, i64, i64)> = sqlx::query_as($crate::store::rollups::EVENT_SIZES)
                    .bind(program.as_str())
                    .bind(from_hour)
                    .bind(to_hour)
                    .fetch_all(&self.reader)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(t, events, bytes_sum, bytes_sq_sum, bytes_min, bytes_max)| {
                        (t, $crate::domain::insights::SizeStats { events, bytes_sum, bytes_sq_sum, bytes_min, bytes_max })
                    })
                    .collect())
            }

            async fn insert_attempts(&self, attempts: &[NewAttempt]) -> Result<()> {
                let rows: Vec<&NewAttempt> = attempts.iter().collect();
                let mut statements = sql::Statements::new(Self::STATEMENTS_TOGETHER, rows.len());
                Self::push_attempt_writes(&mut statements, &rows, &Default::default());
                let mut tx = self.writer()?.begin().await?;
                Self::run(&mut *tx, statements).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn queue_gauges(&self) -> Result<QueueGauges> {
                let mut rows: Vec<(String, i64)> = sqlx::query_as(sql::UNFINISHED_COUNTS)
                    .fetch_all(&self.reader)
                    .await?;
                rows.push((
                    "failed".to_owned(),
                    sqlx::query_scalar(sql::DEAD_LETTER_COUNT)
                        .fetch_one(&self.reader)
                        .await?,
                ));
                let count = |state: &str| {
                    rows.iter().find(|(s, _)| s == state).map_or(0, |(_, n)| *n)
                };
                Ok(QueueGauges {
                    pending: count("pending"),
                    in_flight: count("in_flight"),
                    failed: count("failed"),
                    pool_connections: self.write_pool.size(),
                    pool_idle: u32::try_from(self.write_pool.num_idle()).unwrap_or(u32::MAX),
                })
            }

            async fn next_due_at(
                &self,
                exclude: &[WebhookId],
                now: DateTime<Utc>,
            ) -> Result<Option<DateTime<Utc>>> {
                // With webhooks left out (rate limits, full lanes) the due index's oldest
                // entries are mostly theirs: a deep backlog that is all due. Walking it to reach
                // another webhook's entry read it entry by entry (measured on PostgreSQL: the
                // busiest statement while draining a one-webhook backlog). So ask first whether
                // any other webhook has something due now (each one's own index), and otherwise
                // walk only the future, which the excluded backlog is not part of.
                let after = if exclude.is_empty() {
                    None
                } else {
                    let any: bool = sql::any_claimable_query::<$db>(now, exclude)
                        .build_query_scalar()
                        .fetch_one(&self.reader)
                        .await?;
                    if any {
                        return Ok(Some(now));
                    }
                    Some(now)
                };
                let due: Option<DateTime<Utc>> = sql::next_due_query::<$db>(exclude, false, after)
                    .build_query_scalar()
                    .fetch_optional(&self.reader)
                    .await?;
                let lease: Option<DateTime<Utc>> = sql::next_due_query::<$db>(exclude, true, after)
                    .build_query_scalar()
                    .fetch_optional(&self.reader)
                    .await?
                    .flatten();
                Ok(super::earliest(due, lease))
            }

            async fn waiting_since(&self) -> Result<Option<DateTime<Utc>>> {
                let first: Option<(DateTime<Utc>, DateTime<Utc>)> = sql::first_due_query::<$db>()
                    .build_query_as()
                    .fetch_optional(&self.reader)
                    .await?;
                let due = match first {
                    // The due index opens with a released hold: its webhook was switched on
                    // after it fell due. Another webhook may have waited longer, so ask each
                    // one's own pending index (only while a release drains; otherwise one entry
                    // answers).
                    Some((due, on)) if on > due => {
                        let rows: Vec<(String, DateTime<Utc>, Option<DateTime<Utc>>)> =
                            sql::first_pending_query::<$db>(None)
                                .build_query_as()
                                .fetch_all(&self.reader)
                                .await?;
                        rows.into_iter()
                            .filter_map(|(_, on, due)| super::waiting_from(on, due))
                            .min()
                    }
                    first => first.map(|(due, _)| due),
                };
                let lease: Option<DateTime<Utc>> = sql::next_due_query::<$db>(&[], true, None)
                    .build_query_scalar()
                    .fetch_optional(&self.reader)
                    .await?;
                Ok(super::earliest(due, lease))
            }

            async fn release(&self, claims: &[(DeliveryId, i64)], now: DateTime<Utc>) -> Result<()> {
                let mut tx = self.writer()?.begin().await?;
                for chunk in sql::sized_chunks(claims, sql::RELEASED_PER_UPDATE) {
                    let mut qb = sqlx::QueryBuilder::new("");
                    sql::push_release_deliveries(&mut qb, chunk, now);
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_deliveries(&self, program: &ProgramId, q: &DeliveryQuery) -> Result<DeliveryPage> {
                let rows: Vec<DeliveryRow> = sql::list_deliveries_query::<$db>(program, q)
                    .build_query_as()
                    .fetch_all(&self.reader)
                    .await?;
                Ok(DeliveryPage::from_rows(sql::convert(rows)?, q.limit))
            }

            async fn replay_delivery(&self, program: &ProgramId, id: &DeliveryId, now: DateTime<Utc>) -> Result<Replayed> {
                let mut tx = self.writer()?.begin().await?;
                let found: Option<(String, bool)> = sqlx::query_as(sql::DELIVERY_STATUS)
                    .bind(id.as_str())
                    .bind(program.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                let (statement, outcome) = match found {
                    Some((status, _)) if status == "failed" || status == "succeeded" => {
                        (sql::REPLAY_DELIVERY, Replayed::Requeued)
                    }
                    Some((status, false)) if status == "pending" => return Ok(Replayed::Held),
                    Some((status, true)) if status == "pending" => (sql::RETRY_NOW, Replayed::DueNow),
                    Some(_) => return Ok(Replayed::InFlight),
                    None => return Ok(Replayed::NotFound),
                };
                let done = sqlx::query(statement)
                    .bind(id.as_str())
                    .bind(program.as_str())
                    .bind(now)
                    .bind(sql::held_due())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if done == 0 {
                    // The webhook was deleted, or the status moved on between the two statements.
                    return Ok(Replayed::NotFound);
                }
                self.announce(&mut *tx).await?;
                tx.commit().await?;
                Ok(outcome)
            }

            async fn listen_for_work(
                &self,
                wake: std::sync::Arc<tokio::sync::Notify>,
                changed: super::WebhookChanged,
            ) -> Result<()> {
                self.listen(wake, changed).await
            }

            async fn list_attempts(&self, program: &ProgramId, q: &AttemptQuery) -> Result<AttemptPage> {
                let named: Vec<sql::NamedWebhook> = match q.search.as_deref().map(str::trim) {
                    Some(search) if !search.is_empty() => {
                        sql::webhook_names_query::<$db>(program, q, search)
                            .build_query_as::<(String, i64)>()
                            .fetch_all(&self.reader)
                            .await?
                            .into_iter()
                            .map(sql::NamedWebhook::from)
                            .collect()
                    }
                    _ => Vec::new(),
                };
                let rows: Vec<AttemptSummaryRow> = sql::list_attempts_query::<$db>(program, q, &named)
                    .build_query_as()
                    .fetch_all(&self.reader)
                    .await?;
                let mut page = sql::attempt_page(q, rows)?;
                self.name_members(program, &mut page.items).await?;
                Ok(page)
            }

            async fn get_attempt(&self, program: &ProgramId, id: &AttemptId) -> Result<Option<AttemptDetail>> {
                let row: Option<AttemptDetailRow> = sqlx::query_as(sql::GET_ATTEMPT)
                    .bind(program.as_str())
                    .bind(id.as_str())
                    .fetch_optional(&self.reader)
                    .await?;
                let Some(mut detail) = row.map(AttemptDetail::try_from).transpose()? else {
                    return Ok(None);
                };
                self.name_members(program, std::slice::from_mut(&mut detail.summary)).await?;
                Ok(Some(detail))
            }

            async fn backfill_members(&self, limit: i64) -> Result<Option<BackfillStep>> {
                // Read on a reader connection: the single SQLite writer is held only for the
                // writes (a page's members in one statement per program, the cursor moved).
                let Some((program, id)) = sqlx::query_as::<_, (String, String)>(sql::MEMBER_BACKFILL_CURSOR)
                    .fetch_optional(&self.reader)
                    .await?
                else {
                    return Ok(None);
                };
                let page: Vec<(String, String, Option<String>)> = sqlx::query_as(sql::MEMBER_BACKFILL_PAGE)
                    .bind(&program)
                    .bind(&id)
                    .bind(limit)
                    .fetch_all(&self.reader)
                    .await?;
                // Pairs of each program in turn (the page is in program order).
                let mut found: Vec<(&str, Vec<(&str, String)>)> = Vec::new();
                for (event_program, event_id, body) in &page {
                    let Some(member) = body.as_deref().and_then(crate::domain::event::member_in_body) else {
                        continue;
                    };
                    match found.last_mut() {
                        Some((p, pairs)) if *p == event_program.as_str() => pairs.push((event_id.as_str(), member)),
                        _ => found.push((event_program.as_str(), vec![(event_id.as_str(), member)])),
                    }
                }
                let mut tx = self.writer()?.begin().await?;
                let mut filled = 0;
                for (event_program, pairs) in &found {
                    for chunk in pairs.chunks(sql::MAX_ROWS_PER_INSERT / 3) {
                        filled += sql::set_members_query::<$db>(event_program, chunk)
                            .build()
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                    }
                }
                let done = (page.len() as i64) < limit;
                let moved = match page.last() {
                    Some((last_program, last_id, _)) if !done => sqlx::query(sql::MEMBER_BACKFILL_ADVANCE)
                        .bind(&program)
                        .bind(&id)
                        .bind(last_program)
                        .bind(last_id),
                    _ => sqlx::query(sql::MEMBER_BACKFILL_DONE).bind(&program).bind(&id),
                }
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if moved == 0 {
                    // Another process took this step meanwhile: its work stands, this one's goes.
                    tx.rollback().await?;
                    return Ok(Some(BackfillStep { read: 0, filled: 0, done: false }));
                }
                tx.commit().await?;
                Ok(Some(BackfillStep { read: page.len() as u64, filled, done }))
            }
        }

        impl $store {
            /// Fills in the member each attempt's event is about, read by key after the
            /// attempts themselves (one query for a page).
            async fn name_members(&self, program: &ProgramId, items: &mut [AttemptSummary]) -> Result<()> {
                let ids: std::collections::BTreeSet<&str> =
                    items.iter().map(|a| a.event_id.as_str()).collect();
                if ids.is_empty() {
                    return Ok(());
                }
                let members: std::collections::HashMap<String, String> =
                    sql::members_query::<$db>(program, ids)
                        .build_query_as::<(String, String)>()
                        .fetch_all(&self.reader)
                        .await?
                        .into_iter()
                        .collect();
                for a in items {
                    a.member = members.get(&a.event_id).cloned();
                }
                Ok(())
            }
        }
    };
}

pub(crate) use impl_store;
