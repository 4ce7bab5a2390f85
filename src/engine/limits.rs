//! How often one person may press buttons, send commands and send files or stickers, and
//! how many events one shared chat may bring in a minute.
//!
//! Messages have their own limit (`conversation.max_messages_per_minute`, counted from
//! the stored conversation: the words are kept, only the model's reply is skipped). The
//! other kinds of event are not stored as conversation, and each costs a database write
//! and a platform call (an edit, a notice, a file for `/mydata`), so a person pressing a
//! button hundreds of times, or a script sending commands, would take the adapter's
//! sending and the store's writes away from everyone else. Past
//! `conversation.max_actions_per_minute` in a minute such events are not carried out:
//! the person is told once in that minute, and the rest are dropped.
//!
//! What is never held back: the crisis screen of a caption or a command's words (done
//! before this check), and `/forget` and `/privacy` (a person asking us to forget them
//! is never told to wait).
//!
//! A shared chat has a limit of its own over every kind of event, messages included
//! (`conversation.max_group_events_per_minute`): many people, each within their limits,
//! can together ask more of the model than leaves room for anyone else. Past it, the
//! chat's messages are kept and screened but not answered for the rest of the minute.
//!
//! The count is kept in memory per instance: it is a guard against floods, not an
//! accounting, and a restart forgetting it is harmless. A person is handled by one
//! instance at a time, so their count is whole there; a shared chat's members may be
//! handled by several, so each instance allows the chat its share of the limit (the
//! same share of the chat's sending budget it keeps to).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

/// Entries past which finished windows are swept out, so that the map holds about the
/// people active in the last minute.
const SWEEP_AT: usize = 4096;

/// What to do with one more event from a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Within the limit: carry it out.
    Allow,
    /// The first over the limit in this minute: tell the person, do nothing else.
    Tell,
    /// Over the limit, already told: drop it.
    Drop,
}

struct Window {
    started: Instant,
    count: usize,
}

pub(super) struct ActionLimit {
    per_minute: usize,
    /// When set, the instances sharing the limit: each allows its share.
    sharing: Option<kindred_adapter::Sharing>,
    windows: Mutex<HashMap<String, Window>>,
}

impl ActionLimit {
    pub(super) fn new(per_minute: usize) -> Self {
        Self {
            per_minute,
            sharing: None,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// A limit that instances share: with `n` of them, each allows `per_minute / n`
    /// (at least one). For a shared chat, whose members may be handled by different
    /// instances, as its sends are shared (`kindred_adapter::Sharing`).
    pub(super) fn shared(per_minute: usize, sharing: kindred_adapter::Sharing) -> Self {
        Self {
            sharing: Some(sharing),
            ..Self::new(per_minute)
        }
    }

    /// What this instance allows a minute now.
    fn allowed(&self) -> usize {
        let n = self.sharing.as_ref().map_or(1, |s| s.instances()) as usize;
        (self.per_minute / n).max(1)
    }

    /// Counts one event of `person` now.
    pub(super) fn check(&self, person: &str) -> Verdict {
        self.check_at(person, Instant::now())
    }

    fn check_at(&self, person: &str, now: Instant) -> Verdict {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= SWEEP_AT && !windows.contains_key(person) {
            windows.retain(|_, w| now.duration_since(w.started) < WINDOW);
        }
        let w = windows.entry(person.to_string()).or_insert(Window {
            started: now,
            count: 0,
        });
        if now.duration_since(w.started) >= WINDOW {
            *w = Window {
                started: now,
                count: 0,
            };
        }
        w.count += 1;
        match w.count.cmp(&(self.allowed() + 1)) {
            std::cmp::Ordering::Less => Verdict::Allow,
            std::cmp::Ordering::Equal => Verdict::Tell,
            std::cmp::Ordering::Greater => Verdict::Drop,
        }
    }

    #[cfg(test)]
    fn people(&self) -> usize {
        self.windows.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_is_told_once_past_the_limit_and_counted_afresh_next_minute() {
        let limit = ActionLimit::new(3);
        let t0 = Instant::now();
        let verdicts: Vec<Verdict> = (0..6).map(|_| limit.check_at("ana", t0)).collect();
        use Verdict::*;
        assert_eq!(verdicts, [Allow, Allow, Allow, Tell, Drop, Drop]);
        // Someone else is not held back by ana.
        assert_eq!(limit.check_at("ben", t0), Allow);
        // A minute later ana starts again.
        assert_eq!(limit.check_at("ana", t0 + WINDOW), Allow);
    }

    #[test]
    fn a_shared_limit_allows_each_instance_its_share() {
        let sharing = kindred_adapter::Sharing::default();
        let limit = ActionLimit::shared(4, sharing.clone());
        let t0 = Instant::now();
        let alone: Vec<Verdict> = (0..5).map(|_| limit.check_at("g", t0)).collect();
        use Verdict::*;
        assert_eq!(alone, [Allow, Allow, Allow, Allow, Tell]);
        sharing.set(2);
        let t1 = t0 + WINDOW;
        let shared: Vec<Verdict> = (0..3).map(|_| limit.check_at("g", t1)).collect();
        assert_eq!(shared, [Allow, Allow, Tell]);
    }

    #[test]
    fn finished_windows_are_swept_once_the_map_is_large() {
        let limit = ActionLimit::new(1);
        let t0 = Instant::now();
        for i in 0..SWEEP_AT {
            limit.check_at(&format!("p{i}"), t0);
        }
        assert_eq!(limit.people(), SWEEP_AT);
        limit.check_at("late", t0 + WINDOW);
        assert_eq!(limit.people(), 1, "only the one active in the last minute");
    }
}
