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
//! accounting, and a restart forgetting it is harmless.

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
    windows: Mutex<HashMap<String, Window>>,
}

impl ActionLimit {
    pub(super) fn new(per_minute: usize) -> Self {
        Self {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
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
        match w.count.cmp(&(self.per_minute + 1)) {
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
