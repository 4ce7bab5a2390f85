//! Sending to a platform: one queue per chat, served side by side, each kept to the
//! platform's published pace. Adapters hand [`send_per_chat`] their outbound channel
//! and a function that makes one platform call.

use std::future::Future;

use tokio::sync::mpsc;

use crate::{ChatKind, Outbound};

/// The start of the id of a message that carries crisis resources (`care:42`): it is
/// sent at once, ahead of everything waiting for the platform's budget, and spends from
/// it without waiting (a platform tolerates a short burst; a person in danger must not
/// wait behind other people's replies).
pub const CARE_PREFIX: &str = "care:";

/// Whether `o` carries crisis resources.
fn is_care(o: &Outbound) -> bool {
    matches!(o, Outbound::Text { id: Some(id), .. } if id.starts_with(CARE_PREFIX))
}

/// How fast a platform may be sent to, from its published limits: a budget for the
/// whole platform and one for each chat, each a bucket that holds `burst` sends and
/// refills one every `every`. Kindred keeps within them rather than learning of them
/// from `429`s (which it still honours): a platform that is hit past its limits answers
/// late for everyone, and Telegram drops groups' messages past 20 a minute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// Every call to the platform (sends, edits, typing).
    pub platform: Bucket,
    /// New messages to one direct chat.
    pub direct: Bucket,
    /// New messages to one shared chat.
    pub group: Bucket,
}

/// A token bucket: `burst` at once, then one every `every`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub burst: u32,
    pub every: std::time::Duration,
}

impl Pace {
    /// Telegram's: about 30 messages a second overall, one a second in a chat (short
    /// bursts allowed), 20 a minute in a group.
    pub const TELEGRAM: Pace = Pace {
        platform: Bucket::per_second(30),
        direct: Bucket {
            burst: 10,
            every: std::time::Duration::from_secs(1),
        },
        group: Bucket {
            burst: 5,
            every: std::time::Duration::from_secs(3),
        },
    };

    /// Discord's: 50 requests a second for a bot, 5 messages in 5 seconds in a channel.
    pub const DISCORD: Pace = Pace {
        platform: Bucket::per_second(50),
        direct: Bucket {
            burst: 5,
            every: std::time::Duration::from_secs(1),
        },
        group: Bucket {
            burst: 5,
            every: std::time::Duration::from_secs(1),
        },
    };
}

impl Bucket {
    /// `n` a second, with a second's worth at once.
    pub const fn per_second(n: u32) -> Bucket {
        Bucket {
            burst: n,
            every: std::time::Duration::from_nanos(1_000_000_000 / n as u64),
        }
    }
}

/// How many instances of Kindred send for the same bot now. A platform's limits are the
/// bot's, not one process's: two instances each keeping to 30 a second would send 60.
/// So each keeps to its share: the platform's budget and each shared chat's (whose
/// members may be handled by different instances) are divided by this number, which
/// the engine keeps up to date from the instances' heartbeats. A direct chat's is not:
/// one person is handled by one instance at a time.
#[derive(Debug, Clone)]
pub struct Sharing(std::sync::Arc<std::sync::atomic::AtomicU32>);

impl Default for Sharing {
    fn default() -> Self {
        Self(std::sync::Arc::new(std::sync::atomic::AtomicU32::new(1)))
    }
}

impl Sharing {
    /// `instances` send for the bot now (at least this one).
    pub fn set(&self, instances: u32) {
        self.0
            .store(instances.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    pub fn instances(&self) -> u32 {
        self.0.load(std::sync::atomic::Ordering::Relaxed).max(1)
    }
}

/// A bucket's state: the sends it holds now (fractions included) as of `at`; when the
/// bucket is shared with other instances (`sharing`), this instance's part of it.
struct Tokens {
    bucket: Bucket,
    sharing: Option<Sharing>,
    held: f64,
    at: tokio::time::Instant,
}

impl Tokens {
    fn new(bucket: Bucket, sharing: Option<Sharing>) -> Self {
        let mut tokens = Self {
            bucket,
            sharing,
            held: 0.0,
            at: tokio::time::Instant::now(),
        };
        tokens.held = tokens.share().0;
        tokens
    }

    /// This instance's share of the bucket: what it holds at most, and seconds a send.
    fn share(&self) -> (f64, f64) {
        let n = self.sharing.as_ref().map_or(1, Sharing::instances) as f64;
        let every = self.bucket.every.as_secs_f64().max(1e-9) * n;
        ((self.bucket.burst as f64 / n).max(1.0), every)
    }

    /// Adds what has refilled since the last look; returns the interval in seconds.
    fn refill(&mut self) -> f64 {
        let now = tokio::time::Instant::now();
        let (burst, every) = self.share();
        let refilled = now.saturating_duration_since(self.at).as_secs_f64() / every;
        self.held = (self.held + refilled).min(burst);
        self.at = now;
        every
    }

    /// Whether the bucket has refilled completely (its chat's pace holds nothing back).
    fn is_full(&mut self) -> bool {
        self.refill();
        self.held >= self.share().0
    }

    /// Takes one send only if it may go now (for what is worth sending only at once).
    fn try_take(&mut self) -> bool {
        self.refill();
        let free = self.held >= 1.0;
        if free {
            self.held -= 1.0;
        }
        free
    }

    /// Takes one send; returns how long to wait before making it.
    fn take(&mut self) -> std::time::Duration {
        let every = self.refill();
        self.held -= 1.0;
        if self.held >= 0.0 {
            std::time::Duration::ZERO
        } else {
            std::time::Duration::from_secs_f64(-self.held * every)
        }
    }
}

/// Sends what the engine asks, one queue per chat: a chat's messages go out in order,
/// one at a time, while different chats are served side by side (at most `concurrency`
/// sends in flight, handed out first come, first served). So one busy group, a flood of
/// answers to one person, or a chat whose sends keep failing and being retried holds
/// back only that chat, never everyone's replies. Sends keep to `pace`: each chat's new
/// messages to its chat's bucket, every call to the platform's. Returns once `outbound`
/// has closed and every queue is empty. With other instances sending for the same bot,
/// this one keeps to its share of the platform's and of shared chats' budgets
/// (`sharing`).
pub async fn send_per_chat<F, Fut>(
    mut outbound: mpsc::Receiver<Outbound>,
    concurrency: usize,
    pace: Pace,
    sharing: Sharing,
    send: F,
) where
    F: Fn(Outbound) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct ChatQueue {
        tx: mpsc::UnboundedSender<Outbound>,
        /// Messages handed to the queue and not yet sent.
        pending: Arc<AtomicUsize>,
        /// The chat's own bucket: kept with the queue, so that a chat whose queue is
        /// dropped and made again still keeps to its pace.
        tokens: Arc<std::sync::Mutex<Tokens>>,
    }

    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let platform = Arc::new(std::sync::Mutex::new(Tokens::new(
        pace.platform,
        Some(sharing.clone()),
    )));
    let mut queues: HashMap<(String, String), ChatQueue> = HashMap::new();
    let mut workers = tokio::task::JoinSet::new();
    while let Some(o) = outbound.recv().await {
        // The queues of chats with nothing left to send and a full bucket go (their
        // worker then ends): only this loop adds to a queue, so one found empty here
        // stays empty, and a fresh bucket for the chat is then what it would have had.
        if queues.len() > 64 {
            queues.retain(|_, q| {
                q.pending.load(Ordering::Acquire) > 0
                    || !q.tokens.lock().unwrap_or_else(|e| e.into_inner()).is_full()
            });
            while workers.try_join_next().is_some() {}
        }
        let key = (o.chat().platform.clone(), o.chat().id.clone());
        let q = queues.entry(key).or_insert_with(|| {
            let (tx, mut rx) = mpsc::unbounded_channel::<Outbound>();
            let pending = Arc::new(AtomicUsize::new(0));
            let (send, permits, left) = (send.clone(), permits.clone(), pending.clone());
            let platform = platform.clone();
            let tokens = Arc::new(std::sync::Mutex::new(match o.chat().kind {
                ChatKind::Direct => Tokens::new(pace.direct, None),
                ChatKind::Group => Tokens::new(pace.group, Some(sharing.clone())),
            }));
            let chat = tokens.clone();
            workers.spawn(async move {
                while let Some(o) = rx.recv().await {
                    let message = matches!(
                        o,
                        Outbound::Text { .. } | Outbound::Prompt { .. } | Outbound::File { .. }
                    );
                    let care = is_care(&o);
                    if message {
                        let wait = chat.lock().unwrap_or_else(|e| e.into_inner()).take();
                        if !care {
                            tokio::time::sleep(wait).await;
                        }
                    }
                    let wait = {
                        let mut platform = platform.lock().unwrap_or_else(|e| e.into_inner());
                        match o {
                            Outbound::Done { .. } => Some(std::time::Duration::ZERO),
                            // "Typing…" is worth showing only now: when the platform's
                            // budget is spent it is left out rather than delay replies.
                            Outbound::Typing { .. } => {
                                platform.try_take().then_some(std::time::Duration::ZERO)
                            }
                            _ if care => {
                                platform.take();
                                Some(std::time::Duration::ZERO)
                            }
                            _ => Some(platform.take()),
                        }
                    };
                    let Some(wait) = wait else {
                        left.fetch_sub(1, Ordering::AcqRel);
                        continue;
                    };
                    // Waiting for the budget holds no permit: the permits bound calls in
                    // flight, and a message due now (crisis resources) must find one free.
                    tokio::time::sleep(wait).await;
                    let Ok(_permit) = permits.acquire().await else {
                        return;
                    };
                    send(o).await;
                    left.fetch_sub(1, Ordering::AcqRel);
                }
            });
            ChatQueue {
                tx,
                pending,
                tokens,
            }
        });
        q.pending.fetch_add(1, Ordering::AcqRel);
        if q.tx.send(o).is_err() {
            q.pending.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!("a chat's send queue had stopped; a message was dropped");
        }
    }
    drop(queues);
    while workers.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChatRef;
    use std::sync::Arc;
    use std::time::Duration;

    fn text(chat: &ChatRef, n: usize) -> Outbound {
        Outbound::Text {
            id: None,
            chat: chat.clone(),
            text: format!("message {n}"),
            interaction: None,
        }
    }

    /// A sender under test that records what it sends and when: send into `tx`, then
    /// [`Recorder::finish`] closes it and returns each call with its time from the start.
    struct Recorder {
        tx: mpsc::Sender<Outbound>,
        sender: tokio::task::JoinHandle<()>,
        log: Arc<std::sync::Mutex<Vec<(Outbound, Duration)>>>,
    }

    impl Recorder {
        fn start(concurrency: usize, pace: Pace) -> Self {
            Self::shared(concurrency, pace, Sharing::default())
        }

        fn shared(concurrency: usize, pace: Pace, sharing: Sharing) -> Self {
            let (tx, rx) = mpsc::channel(256);
            let start = tokio::time::Instant::now();
            let log: Arc<std::sync::Mutex<Vec<(Outbound, Duration)>>> = Default::default();
            let calls = log.clone();
            let sender = tokio::spawn(send_per_chat(rx, concurrency, pace, sharing, move |o| {
                let calls = calls.clone();
                async move { calls.lock().unwrap().push((o, start.elapsed())) }
            }));
            Self { tx, sender, log }
        }

        async fn send(&self, o: Outbound) {
            self.tx.send(o).await.unwrap();
        }

        async fn finish(self) -> Vec<(Outbound, Duration)> {
            drop(self.tx);
            self.sender.await.unwrap();
            let log = self.log.lock().unwrap().clone();
            log
        }
    }

    /// When each message to `chat` went out.
    fn times_in(sent: &[(Outbound, Duration)], chat: &str) -> Vec<Duration> {
        sent.iter()
            .filter(|(o, _)| o.chat().id == chat)
            .map(|(_, t)| *t)
            .collect()
    }

    /// A chat's messages past its burst wait for the bucket to refill, while another
    /// chat's go at once; the platform's bucket holds everyone to its rate.
    #[tokio::test]
    async fn sends_keep_to_the_chat_and_platform_buckets() {
        let pace = Pace {
            platform: Bucket::per_second(1000),
            direct: Bucket {
                burst: 2,
                every: Duration::from_millis(100),
            },
            group: Bucket {
                burst: 1,
                every: Duration::from_millis(300),
            },
        };
        let r = Recorder::start(8, pace);
        let (busy, other, group) = (
            ChatRef::direct("t", "busy"),
            ChatRef::direct("t", "other"),
            ChatRef::group("t", "g", None),
        );
        for n in 0..5 {
            r.send(text(&busy, n)).await;
        }
        r.send(text(&other, 0)).await;
        r.send(text(&group, 0)).await;
        r.send(text(&group, 1)).await;
        let sent = r.finish().await;
        let at = |chat: &str| times_in(&sent, chat);
        let busy_at = at("busy");
        assert_eq!(busy_at.len(), 5);
        // Two at once, then one every 100 ms: the fifth no sooner than 300 ms in.
        assert!(busy_at[4] >= Duration::from_millis(290), "{busy_at:?}");
        // The other chat did not wait for the busy one.
        assert!(at("other")[0] < Duration::from_millis(100), "{sent:?}");
        // A group's second message waits for its slower bucket.
        assert!(at("g")[1] >= Duration::from_millis(290), "{sent:?}");
    }

    /// With a second instance sending for the bot, this one keeps to half the
    /// platform's budget and half a shared chat's; a direct chat keeps its whole own.
    #[tokio::test]
    async fn instances_sending_for_one_bot_share_its_budget() {
        let chats = Bucket {
            burst: 2,
            every: Duration::from_millis(200),
        };
        let run = |instances: u32, platform: Bucket| async move {
            let sharing = Sharing::default();
            sharing.set(instances);
            let pace = Pace {
                platform,
                direct: chats,
                group: chats,
            };
            let r = Recorder::shared(8, pace, sharing);
            for chat in [ChatRef::group("t", "g", None), ChatRef::direct("t", "one")] {
                r.send(text(&chat, 0)).await;
                r.send(text(&chat, 1)).await;
            }
            for n in 0..15 {
                r.send(text(&ChatRef::direct("t", format!("p{n}")), n))
                    .await;
            }
            r.finish().await
        };
        let last = |sent: &[(Outbound, Duration)]| sent.iter().map(|(_, t)| *t).max().unwrap();
        let gap = |sent: &[(Outbound, Duration)], chat: &str| {
            let at = times_in(sent, chat);
            at[1] - at[0]
        };
        // The platform's budget of 20 a second: alone, all 19 go at once; one of two
        // sends 10 at once, then one every 100 ms (the last about 900 ms in).
        let alone = run(1, Bucket::per_second(20)).await;
        assert!(last(&alone) < Duration::from_millis(150), "{alone:?}");
        let shared = run(2, Bucket::per_second(20)).await;
        assert!(last(&shared) >= Duration::from_millis(850), "{shared:?}");
        // A chat's budget of two at once: alone, a group's second message goes at once;
        // one of two waits its share's 400 ms. A person's is theirs alone either way.
        let alone = run(1, Bucket::per_second(1000)).await;
        assert!(gap(&alone, "g") < Duration::from_millis(100), "{alone:?}");
        let shared = run(2, Bucket::per_second(1000)).await;
        assert!(
            gap(&shared, "g") >= Duration::from_millis(390),
            "{shared:?}"
        );
        assert!(
            gap(&shared, "one") < Duration::from_millis(100),
            "{shared:?}"
        );
    }

    /// A chat keeps its pace when its queue empties and others' messages make the sender
    /// drop idle queues: a group's second message still waits its turn.
    #[tokio::test]
    async fn a_chat_keeps_its_pace_across_dropped_queues() {
        let pace = Pace {
            platform: Bucket::per_second(1000),
            direct: Bucket::per_second(1000),
            group: Bucket {
                burst: 1,
                every: Duration::from_millis(400),
            },
        };
        let r = Recorder::start(8, pace);
        let group = ChatRef::group("t", "g", None);
        r.send(text(&group, 0)).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Many other chats: more queues than the sender keeps idle.
        for n in 0..100 {
            r.send(text(&ChatRef::direct("t", format!("p{n}")), n))
                .await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        r.send(text(&group, 1)).await;
        let group_at = times_in(&r.finish().await, "g");
        assert_eq!(group_at.len(), 2);
        assert!(
            group_at[1] - group_at[0] >= Duration::from_millis(350),
            "{group_at:?}"
        );
    }

    /// "Typing…" never waits for the platform's budget: past it, it is left out, while
    /// a message waits its turn and goes.
    #[tokio::test]
    async fn typing_is_left_out_when_the_platform_budget_is_spent() {
        let pace = Pace {
            platform: Bucket {
                burst: 1,
                every: Duration::from_millis(200),
            },
            direct: Bucket::per_second(100),
            group: Bucket::per_second(100),
        };
        let r = Recorder::start(4, pace);
        let chat = ChatRef::direct("t", "c");
        r.send(Outbound::Typing { chat: chat.clone() }).await;
        r.send(Outbound::Typing { chat: chat.clone() }).await;
        r.send(text(&chat, 0)).await;
        let sent: Vec<&str> = r
            .finish()
            .await
            .iter()
            .map(|(o, _)| match o {
                Outbound::Typing { .. } => "typing",
                _ => "text",
            })
            .collect();
        assert_eq!(sent, ["typing", "text"]);
    }

    /// Crisis resources do not wait behind other chats' messages for the platform's
    /// budget.
    #[tokio::test]
    async fn crisis_resources_go_ahead_of_the_platform_budget() {
        let pace = Pace {
            platform: Bucket {
                burst: 1,
                every: Duration::from_millis(500),
            },
            direct: Bucket {
                burst: 1,
                every: Duration::from_millis(500),
            },
            group: Bucket::per_second(100),
        };
        let r = Recorder::start(1, pace);
        for chat in ["a", "b", "c"] {
            r.send(text(&ChatRef::direct("t", chat), 0)).await;
        }
        r.send(Outbound::Text {
            id: Some(format!("{CARE_PREFIX}7")),
            chat: ChatRef::direct("t", "d"),
            text: "resources".into(),
            interaction: None,
        })
        .await;
        let sent = r.finish().await;
        assert_eq!(sent.len(), 4, "{sent:?}");
        // The others take their turns for the budget, half a second apart; the resources,
        // sent last, go at once.
        let resources = times_in(&sent, "d")[0];
        assert!(resources < Duration::from_millis(250), "{sent:?}");
        let last = sent.iter().map(|(_, t)| *t).max().unwrap();
        assert!(last >= Duration::from_millis(950), "{sent:?}");
    }

    #[test]
    fn a_bucket_gives_its_burst_then_one_per_interval() {
        let mut t = Tokens::new(
            Bucket {
                burst: 2,
                every: Duration::from_secs(10),
            },
            None,
        );
        assert_eq!(t.take(), Duration::ZERO);
        assert_eq!(t.take(), Duration::ZERO);
        let wait = t.take();
        assert!(
            wait > Duration::from_secs(9) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        assert_eq!(Bucket::per_second(50).every, Duration::from_millis(20));
        // What may only go at once is refused while the bucket is empty, and takes nothing.
        assert!(!t.try_take());
        let mut fresh = Tokens::new(
            Bucket {
                burst: 1,
                every: Duration::from_secs(10),
            },
            None,
        );
        assert!(fresh.try_take());
        assert!(!fresh.try_take());
    }
}
