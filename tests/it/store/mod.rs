//! The store's own suite, run against both backends: a SQLite file and a database on a
//! real Postgres server (see `helpers::postgres`). Each case is one async function over
//! a fresh [`Store`]; `both!` makes a `sqlite` and a `postgres` test of it.

use std::time::Duration;

use kindred::domain::{Delivery, EndReason, Speaker, Stage, Stars, TurnSource};
use kindred::store::{FieldValue, Location, NewTurn, SessionField, Store};
use kindred_adapter::ChatRef;

use crate::helpers::postgres as pg;

fn stars(n: i64) -> Stars {
    Stars::new(n).unwrap()
}

mod instances;
mod schemas;

use instances::*;

async fn sqlite_store(dir: &tempfile::TempDir) -> Store {
    Store::open(
        &Location::Sqlite(dir.path().join("kindred.sqlite")),
        Duration::from_secs(5),
    )
    .await
    .unwrap()
}

async fn postgres_store() -> Store {
    Store::open(&pg::fresh_database(), Duration::from_secs(5))
        .await
        .unwrap()
}

macro_rules! both {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = super::sqlite_store(&dir).await;
                    super::$case(&store).await;
                    store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    if crate::helpers::postgres::skipped(stringify!($case)) {
                        return;
                    }
                    let store = super::postgres_store().await;
                    super::$case(&store).await;
                    store.close().await;
                }
            )*
        }
    };
}

both!(
    users_are_made_once_and_keep_their_choices,
    sessions_move_through_their_stages,
    turns_are_numbered_and_a_redelivery_is_a_no_op,
    delivery_states_and_recovery,
    ratings_are_recorded,
    chat_settings_are_upserted,
    alert_link_codes_are_used_once,
    the_inbox_keeps_events_until_handled,
    words_are_erased_when_a_person_asked,
    forgetting_removes_everything_of_one_person,
    retention_and_statistics,
    migrations_are_all_applied,
    leases_are_held_by_one_live_instance,
    pending_replies_of_stopped_instances_are_claimed_once,
    unsent_rating_questions_of_stopped_instances_are_claimed_once,
);

async fn users_are_made_once_and_keep_their_choices(store: &Store) {
    let a = store.get_or_create_user("telegram", "1").await.unwrap();
    let again = store.get_or_create_user("telegram", "1").await.unwrap();
    assert_eq!(a, again);
    assert!(a.keep_words);
    assert!(a.pseudonym.starts_with("seeker-"));
    let b = store.get_or_create_user("discord", "1").await.unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!(store.find_user("telegram", "2").await.unwrap(), None);
    store.set_forget_nonce(a.id, Some("n1")).await.unwrap();
    assert_eq!(
        store
            .user(a.id)
            .await
            .unwrap()
            .unwrap()
            .forget_nonce
            .as_deref(),
        Some("n1")
    );
    store.set_forget_nonce(a.id, None).await.unwrap();
    store.set_keep_words(a.id, false).await.unwrap();
    let a = store.user(a.id).await.unwrap().unwrap();
    assert_eq!((a.forget_nonce, a.keep_words), (None, false));
    store.set_keep_words(a.id, true).await.unwrap();
    assert!(store.user(a.id).await.unwrap().unwrap().keep_words);
}

async fn sessions_move_through_their_stages(store: &Store) {
    let u = store.get_or_create_user("telegram", "7").await.unwrap();
    assert!(store
        .open_session(u.id, "telegram", "c7")
        .await
        .unwrap()
        .is_none());
    let s = store
        .create_session(
            u.id,
            &ChatRef::direct("telegram", "c7"),
            Stage::CheckinEmotion,
        )
        .await
        .unwrap();
    assert_eq!(
        (s.stage, s.bot_replies, s.ended_at),
        (Stage::CheckinEmotion, 0, None)
    );
    assert_eq!(s.nonce.len(), 12);
    store
        .set_session_field(s.id, SessionField::EmotionType, FieldValue::Text("anxiety"))
        .await
        .unwrap();
    store
        .set_session_field(s.id, SessionField::IntensityBefore, FieldValue::Int(4))
        .await
        .unwrap();
    store.set_stage(s.id, Stage::Chatting).await.unwrap();
    let open = store
        .open_session(u.id, "telegram", "c7")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(open.id, s.id);
    assert_eq!(open.emotion_type.as_deref(), Some("anxiety"));
    assert_eq!(open.intensity_before, Some(4));
    assert_eq!(store.chatting_sessions().await.unwrap().len(), 1);
    assert_eq!(store.count_bot_reply(s.id).await.unwrap(), 1);
    assert_eq!(store.count_bot_reply(s.id).await.unwrap(), 2);
    // Idle: last activity before the cutoff.
    let later = kindred::store::now_ms() + 1000;
    assert_eq!(store.idle_sessions(later).await.unwrap().len(), 1);
    assert_eq!(store.idle_sessions(0).await.unwrap().len(), 0);
    store
        .end_session(s.id, EndReason::User, Stage::SurveyIntensity)
        .await
        .unwrap();
    // The first reason and time stay when it is ended again.
    let ended = store.session(s.id).await.unwrap().unwrap();
    store
        .end_session(s.id, EndReason::Idle, Stage::Closed)
        .await
        .unwrap();
    let closed = store.session(s.id).await.unwrap().unwrap();
    assert_eq!(closed.end_reason, Some(EndReason::User));
    assert_eq!(closed.ended_at, ended.ended_at);
    assert_eq!(closed.stage, Stage::Closed);
    assert!(store
        .open_session(u.id, "telegram", "c7")
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.sessions_of_user(u.id).await.unwrap().len(), 1);
}

async fn turns_are_numbered_and_a_redelivery_is_a_no_op(store: &Store) {
    let u = store.get_or_create_user("telegram", "8").await.unwrap();
    let s = store
        .create_session(u.id, &ChatRef::direct("telegram", "c8"), Stage::Chatting)
        .await
        .unwrap();
    let first = store
        .add_turn_once(
            s.id,
            Some(("telegram", "msg:c8:1")),
            NewTurn {
                text: "hello",
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (first.idx, first.speaker, first.source),
        (0, Speaker::Seeker, TurnSource::User)
    );
    assert!(store.event_processed("telegram", "msg:c8:1").await.unwrap());
    let again = store
        .add_turn_once(
            s.id,
            Some(("telegram", "msg:c8:1")),
            NewTurn {
                text: "hello",
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(again.is_none(), "a redelivered message is not stored twice");
    let reply = store
        .add_turn(
            s.id,
            NewTurn {
                speaker: Speaker::Supporter,
                text: "I hear you.",
                source: TurnSource::Model,
                strategy: Some("Reflection of feelings"),
                strategy_probs: Some("[0.1,0.1,0.3,0.1,0.1,0.1,0.1,0.1]".into()),
                delivery: Delivery::Pending,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(reply.idx, 1);
    let turns = store.turns(s.id).await.unwrap();
    assert_eq!(
        turns.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(),
        ["hello", "I hear you."]
    );
    assert_eq!(store.turn(reply.id).await.unwrap().unwrap(), reply);
    assert_eq!(store.messages_since(u.id, 0, 10).await.unwrap(), 1);
    // The newest turns, in order; a count of messages that stops at what is asked.
    for text in ["two", "three"] {
        store
            .add_turn(
                s.id,
                NewTurn {
                    text,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    let recent = store.recent_turns(s.id, 2).await.unwrap();
    assert_eq!(
        recent.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(),
        ["two", "three"]
    );
    assert_eq!(store.messages_since(u.id, 0, 10).await.unwrap(), 3);
    assert_eq!(store.messages_since(u.id, 0, 2).await.unwrap(), 2);
    assert_eq!(
        store
            .messages_since(u.id, kindred::store::now_ms() + 1, 10)
            .await
            .unwrap(),
        0
    );
    assert!(store.mark_event_processed("telegram", "k2").await.unwrap());
    assert!(!store.mark_event_processed("telegram", "k2").await.unwrap());
}

async fn delivery_states_and_recovery(store: &Store) {
    let u = store.get_or_create_user("discord", "9").await.unwrap();
    let s = store
        .create_session(u.id, &ChatRef::direct("discord", "c9"), Stage::Chatting)
        .await
        .unwrap();
    let pending = |text: &'static str| NewTurn {
        speaker: Speaker::Supporter,
        text,
        source: TurnSource::Model,
        delivery: Delivery::Pending,
        ..Default::default()
    };
    let a = store.add_turn(s.id, pending("a")).await.unwrap();
    let b = store.add_turn(s.id, pending("b")).await.unwrap();
    let c = store.add_turn(s.id, pending("c")).await.unwrap();
    store.mark_delivered(a.id, Some("m-a")).await.unwrap();
    store.mark_failed(b.id).await.unwrap();
    let waiting = store.undelivered_turns().await.unwrap();
    assert_eq!(waiting.iter().map(|t| t.id).collect::<Vec<_>>(), [c.id]);
    let a = store.turn(a.id).await.unwrap().unwrap();
    assert_eq!(
        (a.delivery, a.platform_message_id.as_deref()),
        (Delivery::Delivered, Some("m-a"))
    );
    assert!(a.delivered_at.is_some());
    // A second confirmation without an id keeps the first id.
    store.mark_delivered(a.id, None).await.unwrap();
    assert_eq!(
        store
            .turn(a.id)
            .await
            .unwrap()
            .unwrap()
            .platform_message_id
            .as_deref(),
        Some("m-a")
    );
    assert_eq!(
        store.turn(b.id).await.unwrap().unwrap().delivery,
        Delivery::Failed
    );
    // Nothing is re-sent into a closed conversation.
    store.set_stage(s.id, Stage::Closed).await.unwrap();
    assert!(store.undelivered_turns().await.unwrap().is_empty());
}

async fn ratings_are_recorded(store: &Store) {
    let u = store.get_or_create_user("telegram", "10").await.unwrap();
    let s = store
        .create_session(u.id, &ChatRef::direct("telegram", "c10"), Stage::Chatting)
        .await
        .unwrap();
    let t1 = store
        .add_turn(
            s.id,
            NewTurn {
                text: "x",
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let t2 = store
        .add_turn(
            s.id,
            NewTurn {
                text: "y",
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let p = store
        .create_rating_prompt(s.id, t1.id, t2.id)
        .await
        .unwrap();
    assert_eq!(
        (p.first_turn_id, p.second_turn_id, p.stars),
        (t1.id, t2.id, None)
    );
    store.set_prompt_message_id(p.id, "pm-1").await.unwrap();
    store.set_rating(p.id, stars(4)).await.unwrap();
    let q = store
        .create_rating_prompt(s.id, t2.id, t2.id)
        .await
        .unwrap();
    let got = store.rating_prompt(p.id).await.unwrap().unwrap();
    assert_eq!(
        (got.stars, got.platform_message_id.as_deref()),
        (Some(stars(4)), Some("pm-1"))
    );
    assert_eq!(
        store.latest_rating_prompt(s.id).await.unwrap().unwrap().id,
        q.id
    );
    assert_eq!(store.rating_prompts(s.id).await.unwrap().len(), 2);
    // Stars outside 1..=5 cannot be made, and the database itself refuses them too
    // (a hand-edited row).
    assert!(
        sqlx::query("UPDATE rating_prompts SET stars = 6 WHERE id = $1")
            .bind(q.id)
            .execute(store.pool())
            .await
            .is_err()
    );
}

async fn chat_settings_are_upserted(store: &Store) {
    assert_eq!(store.chat_enabled("telegram", "g1").await.unwrap(), None);
    store
        .set_chat_enabled("telegram", "g1", true)
        .await
        .unwrap();
    assert_eq!(
        store.chat_enabled("telegram", "g1").await.unwrap(),
        Some(true)
    );
    store
        .set_chat_crisis_message("telegram", "g1", Some("Call 112"), false)
        .await
        .unwrap();
    // Setting resources keeps whether the chat is on.
    assert_eq!(
        store.chat_enabled("telegram", "g1").await.unwrap(),
        Some(true)
    );
    assert_eq!(
        store
            .chat_crisis_message("telegram", "g1")
            .await
            .unwrap()
            .as_deref(),
        Some("Call 112")
    );
    store
        .set_chat_crisis_message("telegram", "g1", None, false)
        .await
        .unwrap();
    assert_eq!(
        store.chat_crisis_message("telegram", "g1").await.unwrap(),
        None
    );
    store
        .set_chat_enabled("telegram", "g1", false)
        .await
        .unwrap();
    assert_eq!(
        store.chat_enabled("telegram", "g1").await.unwrap(),
        Some(false)
    );
    // A new chat takes the given default.
    store
        .set_chat_crisis_message("telegram", "g2", Some("x"), true)
        .await
        .unwrap();
    assert_eq!(
        store.chat_enabled("telegram", "g2").await.unwrap(),
        Some(true)
    );
    store
        .set_chat_alerts("telegram", "g1", Some("mods"), true, false)
        .await
        .unwrap();
    let route = store.chat_alerts("telegram", "g1").await.unwrap().unwrap();
    assert_eq!((route.target.as_str(), route.include_text), ("mods", true));
    store
        .set_chat_alerts("telegram", "g1", None, false, false)
        .await
        .unwrap();
    assert_eq!(store.chat_alerts("telegram", "g1").await.unwrap(), None);
}

async fn alert_link_codes_are_used_once(store: &Store) {
    store
        .set_alert_link_code("telegram", "g3", "code-1", true)
        .await
        .unwrap();
    assert_eq!(
        store
            .use_alert_link_code("telegram", "wrong", "mods", 3_600_000)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .use_alert_link_code("telegram", "code-1", "mods", 3_600_000)
            .await
            .unwrap()
            .as_deref(),
        Some("g3")
    );
    assert_eq!(
        store
            .use_alert_link_code("telegram", "code-1", "other", 3_600_000)
            .await
            .unwrap(),
        None,
        "a code is used up"
    );
    assert_eq!(
        store
            .chat_alerts("telegram", "g3")
            .await
            .unwrap()
            .unwrap()
            .target,
        "mods"
    );
    // A stale code does nothing.
    store
        .set_alert_link_code("telegram", "g4", "code-2", true)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        store
            .use_alert_link_code("telegram", "code-2", "m", 1)
            .await
            .unwrap(),
        None
    );
}

async fn the_inbox_keeps_events_until_handled(store: &Store) {
    let a = store
        .inbox_insert("telegram", "u:1", "{\"a\":1}", Some("p1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .inbox_insert("telegram", "u:1", "{\"a\":1}", Some("p1"))
            .await
            .unwrap(),
        None
    );
    let b = store
        .inbox_insert("telegram", "u:2", "{\"b\":2}", Some("p1"))
        .await
        .unwrap()
        .unwrap();
    // The same key on another platform is another event.
    assert!(store
        .inbox_insert("discord", "u:1", "{}", Some("p1"))
        .await
        .unwrap()
        .is_some());
    let waiting = store.inbox_unhandled().await.unwrap();
    assert_eq!(waiting.len(), 3);
    assert_eq!(waiting[0], (a, "{\"a\":1}".to_string()));
    store.inbox_done(a).await.unwrap();
    assert!(!store
        .inbox_unhandled()
        .await
        .unwrap()
        .iter()
        .any(|(id, _)| *id == a));
    assert!(store
        .inbox_unhandled()
        .await
        .unwrap()
        .iter()
        .any(|(id, _)| *id == b));
    // Handled events' keys are pruned after the cutoff, unhandled ones never.
    store.mark_event_processed("telegram", "old").await.unwrap();
    let pruned = store
        .prune_handled_events(kindred::store::now_ms() + 1)
        .await
        .unwrap();
    assert_eq!(pruned, 2, "the handled inbox row and the processed key");
    assert_eq!(store.inbox_unhandled().await.unwrap().len(), 2);
}

async fn words_are_erased_when_a_person_asked(store: &Store) {
    let u = store.get_or_create_user("telegram", "11").await.unwrap();
    store.set_keep_words(u.id, false).await.unwrap();
    let s = store
        .create_session(u.id, &ChatRef::direct("telegram", "c11"), Stage::Chatting)
        .await
        .unwrap();
    store
        .set_session_field(s.id, SessionField::Situation, FieldValue::Text("my exam"))
        .await
        .unwrap();
    store
        .add_turn(
            s.id,
            NewTurn {
                text: "I failed",
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // Kept while the conversation is open: the model answers from it.
    assert_eq!(store.turns(s.id).await.unwrap()[0].text, "I failed");
    assert!(store.exportable_sessions(0).await.unwrap().is_empty());
    store
        .end_session(s.id, EndReason::User, Stage::Closed)
        .await
        .unwrap();
    assert_eq!(store.turns(s.id).await.unwrap()[0].text, "");
    assert_eq!(store.session(s.id).await.unwrap().unwrap().situation, None);
    // Someone who keeps their words keeps them, and may be exported.
    let v = store.get_or_create_user("telegram", "12").await.unwrap();
    let t = store
        .create_session(v.id, &ChatRef::direct("telegram", "c12"), Stage::Chatting)
        .await
        .unwrap();
    store
        .add_turn(
            t.id,
            NewTurn {
                text: "kept",
                ..Default::default()
            },
        )
        .await
        .unwrap();
    store
        .end_session(t.id, EndReason::User, Stage::Closed)
        .await
        .unwrap();
    assert_eq!(store.turns(t.id).await.unwrap()[0].text, "kept");
    assert_eq!(store.exportable_sessions(0).await.unwrap().len(), 1);
    // Changing one's mind later erases what ended already.
    store.set_keep_words(v.id, false).await.unwrap();
    assert_eq!(store.turns(t.id).await.unwrap()[0].text, "");
}

async fn forgetting_removes_everything_of_one_person(store: &Store) {
    let ana = store.get_or_create_user("telegram", "ana").await.unwrap();
    let ben = store.get_or_create_user("telegram", "ben").await.unwrap();
    let mut inbox = Vec::new();
    for (u, chat) in [(&ana, "ca"), (&ben, "cb")] {
        let s = store
            .create_session(u.id, &ChatRef::direct("telegram", chat), Stage::Chatting)
            .await
            .unwrap();
        let key = format!("msg:{chat}:1");
        let t = store
            .add_turn_once(
                s.id,
                Some(("telegram", &key)),
                NewTurn {
                    text: "hi",
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .unwrap();
        store.create_rating_prompt(s.id, t.id, t.id).await.unwrap();
        inbox.push(
            store
                .inbox_insert("telegram", &format!("u:{chat}"), "{}", None)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    store.delete_user(ana.id, &inbox[..1]).await.unwrap();
    assert_eq!(store.user(ana.id).await.unwrap(), None);
    assert!(store.sessions_of_user(ana.id).await.unwrap().is_empty());
    assert!(!store.event_processed("telegram", "msg:ca:1").await.unwrap());
    // Ben's record is whole.
    assert!(store.event_processed("telegram", "msg:cb:1").await.unwrap());
    let ben_sessions = store.sessions_of_user(ben.id).await.unwrap();
    assert_eq!(ben_sessions.len(), 1);
    assert_eq!(store.turns(ben_sessions[0].id).await.unwrap().len(), 1);
    assert_eq!(
        store
            .rating_prompts(ben_sessions[0].id)
            .await
            .unwrap()
            .len(),
        1
    );
    let waiting: Vec<i64> = store
        .inbox_unhandled()
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(waiting, [inbox[1]]);
}

async fn retention_and_statistics(store: &Store) {
    let u = store.get_or_create_user("telegram", "13").await.unwrap();
    let s = store
        .create_session(u.id, &ChatRef::direct("telegram", "c13"), Stage::Chatting)
        .await
        .unwrap();
    store
        .add_turn(
            s.id,
            NewTurn {
                text: "hi",
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let r = store
        .add_turn(
            s.id,
            NewTurn {
                speaker: Speaker::Supporter,
                text: "hello",
                source: TurnSource::Model,
                strategy: Some("Question"),
                delivery: Delivery::Delivered,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let p = store.create_rating_prompt(s.id, r.id, r.id).await.unwrap();
    store.set_rating(p.id, stars(5)).await.unwrap();
    store
        .set_session_field(s.id, SessionField::IntensityBefore, FieldValue::Int(4))
        .await
        .unwrap();
    store
        .set_session_field(s.id, SessionField::IntensityAfter, FieldValue::Int(2))
        .await
        .unwrap();
    let open = store
        .create_session(u.id, &ChatRef::direct("telegram", "c14"), Stage::Chatting)
        .await
        .unwrap();
    let stats = store.stats(&["Question", "Others"]).await.unwrap();
    assert_eq!(stats["users"], 1);
    assert_eq!(stats["sessions"], 2);
    assert_eq!(stats["sessions_open"], 2);
    assert_eq!(stats["seeker_messages"], 1);
    assert_eq!(stats["bot_replies"], 1);
    assert_eq!(stats["ratings"], 1);
    assert_eq!(stats["mean_rating"], 5.0);
    assert_eq!(stats["ratings_by_stars"]["5"], 1);
    assert_eq!(stats["strategies"]["Question"], 1);
    assert_eq!(stats["strategies"]["Others"], 0);
    assert_eq!(stats["mean_intensity_before"], 4.0);
    assert_eq!(stats["mean_intensity_after"], 2.0);
    assert_eq!(stats["mean_empathy"], serde_json::Value::Null);
    store
        .end_session(s.id, EndReason::User, Stage::Closed)
        .await
        .unwrap();
    let removed = store
        .delete_sessions_ended_before(kindred::store::now_ms() + 1)
        .await
        .unwrap();
    assert_eq!(removed, 1, "only the closed session goes");
    assert!(store.session(s.id).await.unwrap().is_none());
    assert!(
        store.turn(r.id).await.unwrap().is_none(),
        "its turns go with it"
    );
    assert!(store.session(open.id).await.unwrap().is_some());
}

async fn migrations_are_all_applied(store: &Store) {
    let applied = store.applied_migrations().await.unwrap();
    let known: Vec<i64> = store.migrator().iter().map(|m| m.version).collect();
    assert_eq!(applied, known);
    // Applying again applies nothing.
    assert!(store.migrate().await.unwrap().is_empty());
}
