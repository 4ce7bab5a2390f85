//! Running the engine with adapters: one task per person serialises that person's
//! events, a semaphore bounds how many people are handled at once, a sweeper ends idle
//! sessions, and a broadcast shutdown signal stops everything cleanly.
//!
//! Events that arrive with a receipt are written to the inbox table before the adapter
//! is told they are stored (and so before the platform is acknowledged); they are marked
//! handled once the engine is done with them, and unhandled ones are replayed at start.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use kindred_adapter::{Envelope, Inbound, Intake, Outbound, Stored};
use tokio::sync::{broadcast, mpsc, Semaphore};

use super::Engine;

/// The outbound channel of each platform.
pub type Routes = Arc<HashMap<String, mpsc::Sender<Outbound>>>;

/// Feeds inbound events to the engine until `inbound` closes or shutdown fires; delivery
/// reports are recorded by a task of their own, which goes on until every adapter is gone
/// (so the reports of what adapters send while they stop are recorded too).
pub async fn serve(
    engine: Engine,
    intake: Intake,
    routes: Routes,
    mut shutdown: broadcast::Receiver<()>,
) -> Result<()> {
    let Intake {
        events: mut inbound,
        reports,
        sharing,
    } = intake;
    let recorder = tokio::spawn(record_reports(
        engine.clone(),
        reports,
        Arc::downgrade(&routes),
    ));
    // On a shared database (Postgres) this process is one instance of several: it beats,
    // and people, replies and periodic work are taken by lease (see `store::instances`).
    let shared: Option<Arc<str>> = engine.store.instance().map(Arc::from);
    let mut people = People {
        engine: engine.clone(),
        routes: routes.clone(),
        queues: HashMap::new(),
        tasks: tokio::task::JoinSet::new(),
        permits: Arc::new(Semaphore::new(
            engine.settings().conversation.max_concurrent_users,
        )),
        shared: shared.clone(),
    };
    // Each beat also counts the live instances: they send for one bot, and each keeps
    // to its share of the platforms' limits (see `kindred_adapter::Sharing`).
    let heartbeat = shared.clone().map(|instance| {
        let store = engine.store.clone();
        let engine_share = engine.instances.clone();
        tokio::spawn(async move {
            let mut beat = tokio::time::interval(Duration::from_secs(2));
            loop {
                beat.tick().await;
                if let Err(e) = store.heartbeat(&instance).await {
                    tracing::warn!(error = %format!("{e:#}"), "heartbeat failed");
                }
                match store.live_instances().await {
                    Ok(n) => {
                        if n != sharing.instances() {
                            tracing::info!(instances = n, "instances sending for the bot");
                        }
                        sharing.set(n);
                        engine_share.set(n);
                    }
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "counting instances failed")
                    }
                }
            }
        })
    });
    if let Some(instance) = &shared {
        if let Err(e) = engine.store.heartbeat(instance).await {
            tracing::error!(error = %format!("{e:#}"), "registering this instance failed");
        }
        tracing::info!(%instance, "sharing the database with other instances");
    }
    let route = {
        let routes = routes.clone();
        move |p: &str| routes.get(p).cloned()
    };
    let recovered = match &shared {
        Some(instance) => engine.recover_shared(&route, instance).await,
        None => engine.recover(&route).await,
    };
    match recovered {
        Ok(0) => {}
        Ok(n) => tracing::info!(resumed = n, "resumed unfinished replies"),
        Err(e) => tracing::error!(error = %format!("{e:#}"), "recovery after restart failed"),
    }
    // (Its copy of the routes must not outlive recovery: at shutdown the adapters stop
    // when the routes are gone.)
    drop(route);
    if shared.is_some() {
        // Before any person's events are read by person (rows from before `inbox.person`,
        // e.g. of an installation copied from SQLite).
        if let Err(e) = record_whose_events(&engine).await {
            tracing::error!(error = %format!("{e:#}"), "recording whose stored events are failed");
        }
    }
    // Events stored before a crash but never handled go first, in their original order.
    let mut replay: std::collections::VecDeque<Queued> = match engine.store.inbox_unhandled().await {
        Ok(rows) => rows
            .into_iter()
            .filter_map(|(id, payload)| match serde_json::from_str::<Inbound>(&payload) {
                Ok(ev) => Some((ev, Some(id))),
                Err(e) => {
                    tracing::warn!(inbox = id, error = %e, "an unreadable stored event was skipped");
                    None
                }
            })
            .collect(),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "reading unhandled events failed");
            Default::default()
        }
    };
    if !replay.is_empty() {
        tracing::info!(
            events = replay.len(),
            "handling events stored before the last stop"
        );
    }
    let mut sweep = tokio::time::interval(Duration::from_secs(60));
    let mut shared_tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        if let Some(q) = replay.pop_front() {
            people.dispatch(q).await;
            continue;
        }
        tokio::select! {
            _ = shutdown.recv() => break,
            _ = shared_tick.tick(), if shared.is_some() => {
                let instance = shared.as_deref().expect("shared");
                for q in orphans(&engine).await {
                    people.dispatch(q).await;
                }
                take_over_dead_instances(&engine, &routes, instance).await;
            }
            _ = sweep.tick() => {
                // Every instance's own people, leader or not.
                people.sweep();
                if let Some(instance) = shared.as_deref() {
                    // Periodic work is the leader's.
                    match engine.store.try_lease("leader", instance, 90_000).await {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(e) => {
                            tracing::warn!(error = %format!("{e:#}"), "taking the leader lease failed");
                            continue;
                        }
                    }
                }
                if let Err(e) = engine.end_idle_sessions().await {
                    tracing::warn!(error = %format!("{e:#}"), "ending idle sessions failed");
                }
                {
                    let route = |p: &str| routes.get(p).cloned();
                    if let Err(e) = engine.retry_failed_sends(route).await {
                        tracing::warn!(error = %format!("{e:#}"), "trying refused messages again failed");
                    }
                }
                let week_ago = crate::store::now_ms() - 7 * 24 * 3_600_000;
                if let Err(e) = engine.store.prune_handled_events(week_ago).await {
                    tracing::warn!(error = %format!("{e:#}"), "pruning handled events failed");
                }
            }
            envelope = inbound.recv() => {
                let Some(Envelope { event, receipt }) = envelope else { break };
                let m = crate::metrics::metrics();
                if let Some((chat, _)) = event.origin() {
                    m.event_received(&chat.platform, event_kind(&event));
                }
                m.set_queue_depth("events", inbound.len());
                m.set_queue_depth("people", people.queues.len());
                let Some(receipt) = receipt else {
                    people.dispatch((event, None)).await;
                    continue;
                };
                let platform = event.origin().map(|(c, _)| c.platform.clone()).unwrap_or_default();
                let person = person_key(&event);
                let stored = match serde_json::to_string(&event) {
                    Ok(payload) => engine.store.inbox_insert(&platform, &receipt.key, &payload, person.as_deref()).await,
                    Err(e) => Err(e.into()),
                };
                match stored {
                    Ok(Some(id)) => {
                        let _ = receipt.stored.send(Stored::New);
                        people.dispatch((event, Some(id))).await;
                    }
                    Ok(None) => {
                        tracing::debug!(key = %receipt.key, "a redelivered event was ignored");
                        let _ = receipt.stored.send(Stored::Duplicate);
                    }
                    Err(e) => {
                        let reason = format!("{e:#}");
                        tracing::error!(error = %reason, "storing an incoming event failed");
                        let _ = receipt.stored.send(Stored::Failed(reason));
                    }
                }
            }
        }
    }
    // Intake stops; what people already sent is finished within the grace period. A
    // person's task ends once its queue is empty; one still working when the grace runs
    // out is stopped, and its unfinished events are handled after the next start (they
    // are in the inbox, and an unsent reply is re-sent by recovery).
    // Events already handed over without a receipt (a console line) are the engine's to
    // handle; those with one are left unacknowledged, so the platform delivers them again.
    inbound.close();
    while let Ok(Envelope { event, receipt }) = inbound.try_recv() {
        if receipt.is_none() {
            people.dispatch((event, None)).await;
        }
    }
    drop(inbound);
    let mut tasks = people.close();
    let grace = Duration::from_secs(engine.settings().conversation.shutdown_grace_seconds);
    let finishing = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, finishing).await.is_err() {
        tracing::warn!(
            unfinished = tasks.len(),
            "people's messages still being handled at the end of the grace period are left for the next start"
        );
        tasks.shutdown().await;
    }
    // The routes go: each adapter sends what is queued for it, then stops. Reports keep
    // coming while the adapters finish sending; their lane closes when the last adapter
    // has gone.
    drop(routes);
    if tokio::time::timeout(Duration::from_secs(30), recorder)
        .await
        .is_err()
    {
        tracing::warn!("delivery reports were still arriving 30 s after shutdown");
    }
    if let Some(h) = heartbeat {
        h.abort();
    }
    Ok(())
}

/// Whose an event is: the key of the person's queue (platform, chat, user), which is
/// also their lease and `inbox.person` on a shared database.
pub fn person_key(ev: &Inbound) -> Option<String> {
    ev.origin()
        .map(|(chat, user)| person_key_of(&chat.platform, &chat.id, &user.id))
}

/// The person key of `user_id` in `chat_id` on `platform`.
pub fn person_key_of(platform: &str, chat_id: &str, user_id: &str) -> String {
    format!("{platform}\u{1f}{chat_id}\u{1f}{user_id}")
}

/// Records whose each unhandled stored event is, where the row does not say.
async fn record_whose_events(engine: &Engine) -> Result<()> {
    for (id, payload) in engine.store.inbox_unhandled_without_person().await? {
        if let Some(person) = serde_json::from_str::<Inbound>(&payload)
            .ok()
            .as_ref()
            .and_then(person_key)
        {
            engine.store.inbox_set_person(id, &person).await?;
        }
    }
    Ok(())
}

/// Events nobody handles (their instance died), one per person: dispatching one wakes
/// the person's task, which handles all of theirs in order.
async fn orphans(engine: &Engine) -> Vec<Queued> {
    let people = match engine.store.people_with_orphaned_events(2_000).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "looking for orphaned events failed");
            return Vec::new();
        }
    };
    let mut found = Vec::new();
    for person in people {
        if let Ok(events) = engine.store.inbox_unhandled_of(&person).await {
            if let Some((id, payload)) = events.into_iter().next() {
                if let Ok(ev) = serde_json::from_str::<Inbound>(&payload) {
                    found.push((ev, Some(id)));
                }
            }
        }
    }
    if !found.is_empty() {
        tracing::info!(
            people = found.len(),
            "taking over events another instance left"
        );
    }
    found
}

/// The leader re-sends the pending replies and answers the owed messages of instances
/// whose heartbeat stopped, then forgets them.
async fn take_over_dead_instances(engine: &Engine, routes: &Routes, instance: &str) {
    let dead = match engine.store.dead_instances().await {
        Ok(d) if !d.is_empty() => d,
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "looking for stopped instances failed");
            return;
        }
    };
    if !matches!(
        engine.store.try_lease("leader", instance, 90_000).await,
        Ok(true)
    ) {
        return;
    }
    tracing::warn!(
        instances = dead.len(),
        "taking over the work of stopped instances"
    );
    let route = |p: &str| routes.get(p).cloned();
    match engine.recover_shared(&route, instance).await {
        Ok(n) => tracing::info!(
            resumed = n,
            "resumed the unfinished replies of stopped instances"
        ),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "taking over a stopped instance's work failed");
            return;
        }
    }
    for d in dead {
        if let Err(e) = engine.store.remove_instance(&d).await {
            tracing::warn!(error = %format!("{e:#}"), "forgetting a stopped instance failed");
        }
    }
}

/// Records delivery reports as they come, apart from the queue of people's messages.
/// It holds the routes weakly: at shutdown the adapters' outbound channels must close
/// once the people's work is done, even while reports are still being recorded.
async fn record_reports(
    engine: Engine,
    mut reports: mpsc::Receiver<Inbound>,
    routes: std::sync::Weak<HashMap<String, mpsc::Sender<Outbound>>>,
) {
    let none: Routes = Arc::new(HashMap::new());
    while let Some(report) = reports.recv().await {
        let routes = routes.upgrade().unwrap_or_else(|| none.clone());
        record_report(&engine, &routes, report).await;
    }
}

/// One delivery report into the store. What it makes the engine send (the edit of a
/// prompt rated before its delivery was reported) goes to the adapter of the chat it is
/// for, forwarded while the report is handled, so that no count of messages can fill
/// the channel.
async fn record_report(engine: &Engine, routes: &Routes, report: Inbound) {
    let (tx, mut rx) = mpsc::channel(8);
    let handling = async move {
        if let Err(e) = engine.handle(report, &tx).await {
            tracing::warn!(error = %format!("{e:#}"), "recording a delivery failed");
        }
    };
    let forwarding = async {
        while let Some(o) = rx.recv().await {
            if let Some(route) = routes.get(&o.chat().platform) {
                let _ = route.send(o).await;
            }
        }
    };
    tokio::join!(handling, forwarding);
}

/// The kind of an event, as the `kindred_events_received_total` metric counts it.
fn event_kind(ev: &Inbound) -> &'static str {
    match ev {
        Inbound::Message { .. } => "message",
        Inbound::Edited { .. } => "edit",
        Inbound::NonText { .. } => "non_text",
        Inbound::Command { .. } => "command",
        Inbound::Choice { .. } => "press",
        Inbound::Moderation { .. } => "moderation",
        _ => "other",
    }
}

/// An event for a person's queue, with its inbox row when it was stored on receipt.
type Queued = (Inbound, Option<i64>);

/// Events waiting for a person beyond which they are told to give Kindred a moment.
const BACKLOG_NOTICE_AT: usize = 64;

/// A person's queue. It never blocks the loop that fills it: one person's flood (or a
/// person whose reply is slow) must not hold back everyone else's messages. Its length
/// is bounded in practice by the person's rate limit, which answers extra messages
/// without the model; past [`BACKLOG_NOTICE_AT`] the person is told once a minute.
struct PersonQueue {
    tx: mpsc::UnboundedSender<Queued>,
    waiting: Arc<std::sync::atomic::AtomicUsize>,
    told_at: Option<std::time::Instant>,
}

/// The people being handled: a queue and a task each, at most `permits` at work at once.
struct People {
    engine: Engine,
    routes: Routes,
    queues: HashMap<String, PersonQueue>,
    tasks: tokio::task::JoinSet<()>,
    permits: Arc<Semaphore>,
    /// This instance, on a shared database.
    shared: Option<Arc<str>>,
}

impl People {
    /// Hands an event to its person's task (starting one if needed).
    async fn dispatch(&mut self, (ev, inbox_id): Queued) {
        let (engine, routes, people, tasks, permits, shared) = (
            &self.engine,
            &self.routes,
            &mut self.queues,
            &mut self.tasks,
            &self.permits,
            &self.shared,
        );
        use std::sync::atomic::Ordering;
        let key = match person_key(&ev) {
            Some(key) => key,
            None => {
                // Reports come through their own lane; one that came this way (a replayed
                // one) is recorded the same way.
                record_report(engine, routes, ev).await;
                return;
            }
        };
        let Some((chat, _)) = ev.origin() else {
            return;
        };
        let chat = chat.clone();
        let Some(out) = routes.get(&chat.platform).cloned() else {
            tracing::warn!(platform = %chat.platform, "event from a platform without an adapter");
            return;
        };
        let mut item = Some((ev, inbox_id));
        if let Some(q) = people.get_mut(&key) {
            match q.tx.send(item.take().expect("not sent yet")) {
                Ok(()) => {
                    let waiting = q.waiting.fetch_add(1, Ordering::Relaxed) + 1;
                    let recently = q
                        .told_at
                        .is_some_and(|t| t.elapsed() < Duration::from_secs(60));
                    if waiting >= BACKLOG_NOTICE_AT && !recently {
                        q.told_at = Some(std::time::Instant::now());
                        // Not awaited: a full adapter queue must not stall this loop either.
                        let _ = out.try_send(Outbound::Text {
                            id: None,
                            chat,
                            text: super::texts::SLOW_DOWN.into(),
                            interaction: None,
                        });
                    }
                    return;
                }
                Err(mpsc::error::SendError(back)) => item = Some(back),
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let key_for_task = key.clone();
        let waiting = Arc::new(std::sync::atomic::AtomicUsize::new(1));
        tx.send(item.take().expect("not sent yet")).ok();
        people.insert(
            key,
            PersonQueue {
                tx,
                waiting: waiting.clone(),
                told_at: None,
            },
        );
        // Finished tasks are reaped as new ones start, so the set stays the size of the
        // people active now.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(person_task(
            engine.clone(),
            rx,
            waiting,
            out,
            permits.clone(),
            shared.clone().map(|instance| (instance, key_for_task)),
        ));
    }

    /// Frees what is kept for people whose task ended after a quiet spell: their queue,
    /// and the finished task itself (a finished task's slot is held until it is joined;
    /// without this, a burst of people left one behind each until the next event).
    fn sweep(&mut self) {
        self.queues.retain(|_, q| !q.tx.is_closed());
        while self.tasks.try_join_next().is_some() {}
        crate::metrics::metrics().set_queue_depth("people", self.queues.len());
    }

    /// Takes no more events: the queues close (each task ends once it has handled what it
    /// holds); the tasks are returned to be waited for.
    fn close(self) -> tokio::task::JoinSet<()> {
        self.tasks
    }
}

/// How long a person's task waits for their next event before it ends (a later event
/// starts a new one, which costs next to nothing). Short, so that what is kept per
/// person (the task, its queue's first block of slots: tens of kilobytes) is kept only
/// while they write: with 100,000 people starting within minutes (the people harness),
/// a one-minute spell held about 16,000 tasks at once and the daemon peaked at 470 MB.
const PERSON_QUIET_SPELL: Duration = Duration::from_secs(15);

/// Handles one person's events in order; exits after a quiet spell. On a shared
/// database (`shared`: this instance and the person's key) an event with an inbox row
/// is only a signal: the person's events are handled from the inbox, in the order they
/// arrived at any instance, under the person's lease (see [`drain_person`]).
async fn person_task(
    engine: Engine,
    mut rx: mpsc::UnboundedReceiver<Queued>,
    waiting: Arc<std::sync::atomic::AtomicUsize>,
    out: mpsc::Sender<Outbound>,
    permits: Arc<Semaphore>,
    shared: Option<(Arc<str>, String)>,
) {
    loop {
        let (ev, inbox_id) = match tokio::time::timeout(PERSON_QUIET_SPELL, rx.recv()).await {
            Ok(Some(q)) => q,
            _ => return,
        };
        waiting.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let Ok(_permit) = permits.acquire().await else {
            return;
        };
        if let (Some((instance, key)), Some(_)) = (&shared, inbox_id) {
            // Boxed, here and below: a waiting task then holds only this loop's state, not
            // room for the deepest await of handling an event (kilobytes a person).
            if let Err(e) = Box::pin(drain_person(&engine, key, &out, instance)).await {
                tracing::warn!(error = %format!("{e:#}"), "handling a person's events failed; they are retried");
            }
            continue;
        }
        let result = Box::pin(engine.handle(ev, &out)).await;
        if let Some(id) = inbox_id {
            // A failure was already told to the person; replaying it would not help.
            if let Err(e) = engine.store.inbox_done(id).await {
                tracing::warn!(error = %format!("{e:#}"), "marking an event handled failed");
            }
        }
        drop(result);
    }
}

/// How often a person's lease is renewed (and checked) while their events are handled
/// one after another. Not after every event: a flood of one person's messages would
/// then cost a database write each for the lease alone. The lease lasts far longer
/// than this, and another instance takes it only once this one's heartbeat is
/// [`crate::store::ALIVE_MS`] old, so a stall long enough for that is noticed at the
/// next event, and at most this long after a take-over can an event be handled here too.
const LEASE_RECHECK: Duration = Duration::from_secs(1);

/// Handles every stored, unhandled event of the person `key`, oldest first, while
/// holding their lease; returns at once when another live instance holds it (that one
/// handles them). Before giving the lease up it looks once more, so an event another
/// instance stored while the lease was held here is never left behind.
async fn drain_person(
    engine: &Engine,
    key: &str,
    out: &mpsc::Sender<Outbound>,
    instance: &str,
) -> Result<()> {
    let lease = format!("person:{key}");
    // Long enough for the slowest reply; a dead holder's lease is free sooner (its
    // heartbeat stops).
    let ttl = engine.reply_timeout().as_millis() as i64 + 60_000;
    loop {
        if !engine.store.try_lease(&lease, instance, ttl).await? {
            return Ok(());
        }
        let mut renewed = std::time::Instant::now();
        loop {
            let events = engine.store.inbox_unhandled_of(key).await?;
            if events.is_empty() {
                break;
            }
            for (id, payload) in events {
                match serde_json::from_str::<Inbound>(&payload) {
                    Ok(ev) => {
                        // A failure was already told to the person.
                        let _ = engine.handle(ev, out).await;
                    }
                    Err(e) => {
                        tracing::warn!(inbox = id, error = %e, "an unreadable stored event was skipped")
                    }
                }
                engine.store.inbox_done(id).await?;
                if renewed.elapsed() < LEASE_RECHECK {
                    continue;
                }
                if !engine.store.try_lease(&lease, instance, ttl).await? {
                    tracing::warn!(
                        "a person's lease was taken over (this instance was thought dead)"
                    );
                    return Ok(());
                }
                renewed = std::time::Instant::now();
            }
        }
        engine.store.release_lease(&lease, instance).await?;
        if engine.store.inbox_unhandled_of(key).await?.is_empty() {
            return Ok(());
        }
    }
}
