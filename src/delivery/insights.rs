//! Insights as the API and the console read them: figures over a window, the flags, and the
//! charts, assembled from the store's hourly roll-ups (a handful of grouped reads, whatever the
//! number of attempts).

use super::{charts, Engine, Result};
use crate::domain::ids::{ProgramId, WebhookId};
use crate::domain::insights::{
    flags, hour_of, series, FlagInput, Rollup, SizeStats, Window, BASELINE_HOURS, RECENT_HOURS,
};
use crate::domain::views::{InsightsView, ProgramInsightsView, WebhookPageView, WebhookView};
use crate::store::rollups::{Grouping, RollupQuery};
use crate::store::{Webhook, WebhookCursor, WebhookQuery, HELD_COUNT_LIMIT};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

impl Engine {
    /// Roll-ups per webhook over `[from_hour, to_hour)`: of `only` these webhooks, or of the
    /// whole program (deleted webhooks too) when `only` is `None`.
    async fn rollups_by_webhook(
        &self,
        program: &ProgramId,
        only: Option<&[Webhook]>,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<HashMap<String, Rollup>> {
        // No webhooks named means none, not the whole program (an empty list filters nothing).
        if only.is_some_and(<[Webhook]>::is_empty) {
            return Ok(HashMap::new());
        }
        let q = RollupQuery {
            webhooks: only
                .unwrap_or_default()
                .iter()
                .map(|w| w.record.id.to_string())
                .collect(),
            from_hour,
            to_hour,
            grouping: Grouping::Webhook,
        };
        Ok(self
            .store()
            .rollups(program, &q)
            .await?
            .into_iter()
            .collect())
    }

    /// A page of the Webhooks list with each webhook's figures and flags. One row more than
    /// `query.limit` is read to tell whether another page follows; only the page's webhooks'
    /// roll-ups are read.
    pub async fn webhook_page(
        &self,
        program: &ProgramId,
        mut query: WebhookQuery,
        window: Window,
    ) -> Result<WebhookPageView> {
        let limit = query.limit;
        query.limit = limit.map(|l| l + 1);
        let mut hooks = self.store().list_webhooks(program, &query).await?;
        let next_cursor = match limit {
            Some(l) if hooks.len() > l as usize => {
                hooks.truncate(l as usize);
                hooks.last().map(|w| {
                    WebhookCursor {
                        created_at: w.record.created_at,
                        id: w.record.id.clone(),
                    }
                    .encode()
                })
            }
            _ => None,
        };
        let items = self
            .webhook_views(program, &hooks, window, limit.is_some())
            .await?;
        Ok(WebhookPageView { items, next_cursor })
    }

    /// Each webhook's figures over `window` and its flags, as list rows. `narrow` reads the
    /// roll-ups of `hooks` alone (a page of the list, one webhook's own page) rather than the
    /// whole program's: a page of 50 among 10,000 webhooks reads 50 webhooks' rows.
    pub async fn webhook_views(
        &self,
        program: &ProgramId,
        hooks: &[Webhook],
        window: Window,
        narrow: bool,
    ) -> Result<Vec<WebhookView>> {
        Ok(self
            .views_and_rollups(program, hooks, window, narrow)
            .await?
            .0)
    }

    /// `webhook_views`, with the window's roll-ups it read (per webhook id, deleted webhooks'
    /// too), so the pages that also show totals need not read them again.
    async fn views_and_rollups(
        &self,
        program: &ProgramId,
        hooks: &[Webhook],
        window: Window,
        narrow: bool,
    ) -> Result<(Vec<WebhookView>, HashMap<String, Rollup>)> {
        let only = narrow.then_some(hooks);
        let now = self.now();
        let (from, to) = window.span(now);
        let in_window = self.rollups_by_webhook(program, only, from, to).await?;
        let recent_from = hour_of(now) + 1 - RECENT_HOURS;
        let recent = self
            .rollups_by_webhook(program, only, recent_from, hour_of(now) + 1)
            .await?;
        let baseline = self
            .rollups_by_webhook(program, only, recent_from - BASELINE_HOURS, recent_from)
            .await?;
        let sizes = |rows: Vec<(String, SizeStats)>| rows.into_iter().collect::<HashMap<_, _>>();
        let recent_sizes = sizes(
            self.store()
                .event_sizes(program, recent_from, hour_of(now) + 1)
                .await?,
        );
        let baseline_sizes = sizes(
            self.store()
                .event_sizes(program, recent_from - BASELINE_HOURS, recent_from)
                .await?,
        );
        let off: Vec<WebhookId> = hooks
            .iter()
            .filter(|w| !w.record.enabled)
            .map(|w| w.record.id.clone())
            .collect();
        let held: HashMap<WebhookId, i64> = self
            .store()
            .held_counts(program, &off, HELD_COUNT_LIMIT)
            .await?
            .into_iter()
            .collect();
        let on: Vec<WebhookId> = hooks
            .iter()
            .filter(|w| w.record.enabled)
            .map(|w| w.record.id.clone())
            .collect();
        let due: HashMap<WebhookId, DateTime<Utc>> = self
            .store()
            .oldest_due(program, &on)
            .await?
            .into_iter()
            .collect();
        let views = hooks
            .iter()
            .map(|w| {
                let id = w.record.id.as_str();
                let last = w.stats.last_success_at.max(w.stats.last_failure_at);
                let input = FlagInput {
                    enabled: w.record.enabled,
                    recent: recent.get(id).cloned().unwrap_or_default(),
                    baseline: baseline.get(id).cloned().unwrap_or_default(),
                    silent_hours: last.map(|at| (now - at).num_seconds() as f64 / 3_600.0),
                    // Only what fell due before now: a retry scheduled later is not late. Nor
                    // is a webhook late before it was last switched on (the store counts from
                    // then): it releases what it held at their acceptance times, which an admin
                    // chose to wait. Other edits (a rename) do not restart the clock.
                    overdue_minutes: due
                        .get(&w.record.id)
                        .filter(|at| **at <= now)
                        .map(|at| (now - at).num_seconds() as f64 / 60.0),
                    payloads: w
                        .record
                        .event_types
                        .iter()
                        .map(|t| {
                            (
                                t.clone(),
                                recent_sizes.get(t).cloned().unwrap_or_default(),
                                baseline_sizes.get(t).cloned().unwrap_or_default(),
                            )
                        })
                        .collect(),
                };
                let mut view = WebhookView::from(w);
                view.figures = Some(
                    in_window
                        .get(id)
                        .cloned()
                        .unwrap_or_default()
                        .figures(window),
                );
                view.flags = flags(&input);
                let counted = held.get(&w.record.id).copied().unwrap_or(0);
                view.held = counted.min(HELD_COUNT_LIMIT);
                view.held_more = counted > HELD_COUNT_LIMIT;
                view
            })
            .collect();
        Ok((views, in_window))
    }

    /// The series and charts of one webhook, or of the whole program when `webhook` is `None`.
    async fn charted(
        &self,
        program: &ProgramId,
        webhook: Option<&WebhookId>,
        window: Window,
        totals: Rollup,
        found: Vec<crate::domain::insights::Flag>,
    ) -> Result<InsightsView> {
        let (from, to) = window.span(self.now());
        let q = RollupQuery {
            webhooks: webhook.map(ToString::to_string).into_iter().collect(),
            from_hour: from,
            to_hour: to,
            grouping: Grouping::Slot(window.step_hours()),
        };
        let slots: Vec<(i64, Rollup)> = self
            .store()
            .rollups(program, &q)
            .await?
            .into_iter()
            .filter_map(|(k, r)| k.parse().ok().map(|slot| (slot, r)))
            .collect();
        let points = series(window, from, &slots);
        let id = webhook.map_or("program", |w| w.as_str());
        Ok(InsightsView {
            window,
            figures: totals.figures(window),
            flags: found,
            step_hours: window.step_hours(),
            deliveries_svg: charts::deliveries_chart(&format!("deliveries-{id}"), window, &points),
            latency_svg: charts::latency_chart(&format!("latency-{id}"), window, &points),
            series: points,
        })
    }

    /// A webhook's insights over `window`: figures, flags and charts.
    pub async fn webhook_insights(
        &self,
        program: &ProgramId,
        id: &WebhookId,
        window: Window,
    ) -> Result<(WebhookView, InsightsView)> {
        let hook = self.get_webhook(program, id).await?;
        let (mut views, mut in_window) = self
            .views_and_rollups(program, std::slice::from_ref(&hook), window, true)
            .await?;
        let view = views.pop().expect("one view per webhook");
        let totals = in_window.remove(id.as_str()).unwrap_or_default();
        let insights = self
            .charted(program, Some(id), window, totals, view.flags.clone())
            .await?;
        Ok((view, insights))
    }

    /// A program's overview over `window`: totals across its webhooks, charts, and every
    /// webhook's figures and flags (busiest first).
    pub async fn program_insights(
        &self,
        program: &ProgramId,
        window: Window,
    ) -> Result<ProgramInsightsView> {
        let hooks = self
            .store()
            .list_webhooks(program, &Default::default())
            .await?;
        let (mut views, in_window) = self
            .views_and_rollups(program, &hooks, window, false)
            .await?;
        views.sort_by_key(|v| {
            (
                std::cmp::Reverse(v.figures.as_ref().map_or(0, |f| f.attempts)),
                v.name.to_lowercase(),
            )
        });
        let mut totals = Rollup::default();
        for r in in_window.values() {
            totals.add(r);
        }
        let found = views
            .iter()
            .flat_map(|v| {
                v.flags.iter().map(|f| crate::domain::insights::Flag {
                    kind: f.kind,
                    sentence: format!("{}: {}", v.name, f.sentence),
                })
            })
            .collect();
        let insights = self.charted(program, None, window, totals, found).await?;
        Ok(ProgramInsightsView {
            insights,
            webhooks: views,
        })
    }
}
