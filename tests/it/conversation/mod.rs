//! Whole conversations through the port: a real SQLite file in a temp dir and the real
//! (tiny, random-weight) Joint model.

use crate::helpers::*;
use kindred::domain::Stars;
use kindred::domain::{Delivery, Speaker, TurnSource};
use kindred::model::{self, ContextTurn, Strategy, StrategyChoice};
use kindred_adapter::{Attachment, Inbound, Outbound};

mod care;
mod presses;
mod privacy;

/// The next message the engine sends to the adapter, within 20 s.
pub(super) async fn next_outbound(rx: &mut tokio::sync::mpsc::Receiver<Outbound>) -> Outbound {
    tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv())
        .await
        .expect("an outbound message in time")
        .expect("the engine is running")
}

#[tokio::test]
async fn rating_prompt_comes_after_every_second_reply_and_is_stored_against_them() {
    let app = spawn_app(&[]).await;
    let mut prompts_after = Vec::new();
    let mut last_prompt = None;
    for i in 1..=6 {
        let out = app
            .send(message("ana", &format!("message number {i}, I feel low")))
            .await;
        assert_eq!(replies(&out).len(), 1, "one reply per message");
        let p = rating_prompts(&out);
        if !p.is_empty() {
            prompts_after.push(i);
            last_prompt = Some(p[0].clone());
            // The prompt comes after the reply it asks about.
            let reply_pos = out
                .iter()
                .position(
                    |o| matches!(o, Outbound::Text { id: Some(id), .. } if id.starts_with("turn:")),
                )
                .unwrap();
            let prompt_pos = out
                .iter()
                .position(|o| matches!(o, Outbound::Prompt { .. }))
                .unwrap();
            assert!(prompt_pos > reply_pos);
        }
    }
    assert_eq!(prompts_after, vec![2, 4, 6]);

    // The prompt covers the 5th and 6th replies; pressing 4 stores it, pressing again updates it.
    let (id, payloads) = last_prompt.unwrap();
    let prompt_id: i64 = id.trim_start_matches("rating:").parse().unwrap();
    let out = app.send(press("ana", "ana", &payloads[3])).await;
    assert!(
        out.iter()
            .any(|o| matches!(o, Outbound::EditPrompt { text, .. } if text.contains("4 ★"))),
        "{out:?}"
    );
    let p = app.rating_prompt(prompt_id).await;
    assert_eq!(p.stars.map(Stars::get), Some(4));
    let model_turns: Vec<_> = app
        .engine
        .store
        .turns(p.session_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.source == TurnSource::Model)
        .collect();
    assert_eq!(
        (p.first_turn_id, p.second_turn_id),
        (model_turns[4].id, model_turns[5].id)
    );
    app.send(press("ana", "ana", &payloads[1])).await;
    assert_eq!(
        app.rating_prompt(prompt_id).await.stars.map(Stars::get),
        Some(2)
    );

    // /rate works where buttons don't.
    let out = app.send(command("ana", "rate", "5")).await;
    assert!(texts(&out).iter().any(|t| t.contains("5 ★")));
    assert_eq!(
        app.rating_prompt(prompt_id).await.stars.map(Stars::get),
        Some(5)
    );
    let out = app.send(command("ana", "rate", "9")).await;
    assert!(texts(&out)[0].contains("from 1 to 5"));
}

#[tokio::test]
async fn interleaved_users_never_share_context() {
    let app = spawn_app(&[]).await;
    app.send(message("ana", "my dog died yesterday")).await;
    app.send(message("ben", "I failed my exam and my parents are angry"))
        .await;
    let out_a = app.send(message("ana", "I miss him so much")).await;
    app.send(message("ben", "they will not talk to me")).await;

    // Ana's second reply must be exactly what the model says to ana's turns alone.
    let ana = app.user("ana").await.unwrap();
    let session = &app.engine.store.sessions_of_user(ana.id).await.unwrap()[0];
    let turns = app.engine.store.turns(session.id).await.unwrap();
    assert_eq!(
        turns.len(),
        4,
        "ana's session holds only ana's 2 messages and 2 replies"
    );
    assert!(turns
        .iter()
        .all(|t| !t.text.contains("exam") && !t.text.contains("talk to me")));
    let context = vec![
        ContextTurn::seeker("my dog died yesterday"),
        ContextTurn::supporter(
            turns[1].text.clone(),
            turns[1]
                .strategy
                .as_deref()
                .and_then(Strategy::from_any_name),
        ),
        ContextTurn::seeker("I miss him so much"),
    ];
    let joint = model::load(&tiny_model(), &app.engine.settings().load_options()).unwrap();
    let opts = app.engine.settings().decoding_for(&joint.defaults).unwrap();
    let ids = joint.context_ids(None, &context).unwrap();
    let expected = joint.reply(&ids, StrategyChoice::Predict, &opts).unwrap();
    assert_eq!(
        replies(&out_a)[0],
        kindred::engine::display_text(&expected.text)
    );
    assert_eq!(
        turns[3].strategy.as_deref(),
        expected.strategy.map(|s| s.name())
    );
    // The 8 strategy probabilities are stored with the reply.
    let probs: Vec<f32> =
        serde_json::from_str(turns[3].strategy_probs.as_deref().unwrap()).unwrap();
    assert_eq!(probs.len(), 8);
    assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-4);
}

#[tokio::test]
async fn a_restarted_engine_continues_the_session() {
    let app = spawn_app(&[]).await;
    app.send(message("ana", "work is overwhelming")).await;
    app.send(message("ana", "my manager keeps adding tasks"))
        .await;
    let app = restart(app, &[]).await;
    let out = app.send(message("ana", "I can't sleep")).await;
    assert_eq!(replies(&out).len(), 1);
    let out = app.send(message("ana", "what should I do")).await;
    assert_eq!(
        rating_prompts(&out).len(),
        1,
        "the reply count carried over the restart"
    );
    let ana = app.user("ana").await.unwrap();
    let sessions = app.engine.store.sessions_of_user(ana.id).await.unwrap();
    assert_eq!(sessions.len(), 1, "still one session");
    let idx: Vec<i64> = app
        .engine
        .store
        .turns(sessions[0].id)
        .await
        .unwrap()
        .iter()
        .map(|t| t.idx)
        .collect();
    assert_eq!(idx, (0..8).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_message_stored_before_a_crash_is_answered_after_restart() {
    let app = spawn_app(&[]).await;
    app.send(message("ana", "hello")).await;
    // Simulate a crash after the message was stored but before the reply was made.
    let session = app.store_message_unanswered("ana", "are you there?").await;
    let app = restart(app, &[]).await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let n = app.engine.recover(|_| Some(tx.clone())).await.unwrap();
    assert_eq!(n, 1);
    drop(tx);
    let mut got = Vec::new();
    while let Some(o) = rx.recv().await {
        got.push(o);
    }
    assert_eq!(replies(&got).len(), 1, "{got:?}");
    let turns = app.engine.store.turns(session.id).await.unwrap();
    assert_eq!(turns.last().unwrap().speaker, Speaker::Supporter);
    assert_eq!(turns.last().unwrap().delivery, Delivery::Pending);
}

#[tokio::test]
async fn bad_input_gets_a_clear_answer_and_loses_nothing() {
    let app = spawn_app(&[("KINDRED__CONVERSATION__MAX_MESSAGE_CHARS", "100")]).await;
    // Empty and whitespace.
    for t in ["", "   \n\t "] {
        let out = app.send(message("ana", t)).await;
        assert_eq!(
            texts(&out),
            vec![kindred::engine::texts::EMPTY_MESSAGE.to_string()]
        );
    }
    // Non-text content.
    let (chat, user) = dm("ana");
    let out = app
        .send(Inbound::NonText {
            chat,
            user,
            message_id: None,
            attachment: Attachment::Sticker,
            caption: None,
        })
        .await;
    assert!(texts(&out)[0].contains("I can only read text"));
    // Unknown command.
    let out = app.send(command("ana", "frobnicate", "")).await;
    assert!(texts(&out)[0].contains("/frobnicate") && texts(&out)[0].contains("/help"));
    // A huge message: stored whole, a notice, and still a reply.
    let huge = "I feel lost. ".repeat(5000);
    let out = app.send(message("ana", &huge)).await;
    assert!(texts(&out)
        .iter()
        .any(|t| t.contains("first 100 characters")));
    assert_eq!(replies(&out).len(), 1);
    let turns = app.turns_of("ana").await;
    let stored = turns.iter().rev().find(|t| t.speaker == Speaker::Seeker);
    assert_eq!(stored.unwrap().text, huge);
    // A duplicate delivery of the same platform message is processed once.
    let (chat, user) = dm("ana");
    let dup = Inbound::Message {
        chat,
        user,
        message_id: Some("m-1".into()),
        text: "once".into(),
    };
    assert_eq!(replies(&app.send(dup.clone()).await).len(), 1);
    assert!(app.send(dup).await.is_empty());
}

#[tokio::test]
async fn start_checkin_and_end_survey_are_recorded_and_skippable() {
    let app = spawn_app(&[]).await;
    let out = app.send(command("ana", "start", "")).await;
    assert!(texts(&out)[0].contains("not a therapist"));
    let Outbound::Prompt { choices, .. } = out.last().unwrap() else {
        panic!()
    };
    let anxiety = choices
        .iter()
        .find(|c| c.label == "anxiety")
        .unwrap()
        .payload
        .clone();
    let out = app.send(press("ana", "ana", &anxiety)).await;
    let Outbound::Prompt { choices, .. } = out.last().unwrap() else {
        panic!("{out:?}")
    };
    let job = choices
        .iter()
        .find(|c| c.label == "job crisis")
        .unwrap()
        .payload
        .clone();
    let out = app.send(press("ana", "ana", &job)).await;
    let Outbound::Prompt { choices, .. } = out.last().unwrap() else {
        panic!()
    };
    app.send(press("ana", "ana", &choices[3].payload)).await; // intensity 4
                                                              // Pressing an earlier check-in button again is stale now.
    let out = app.send(press("ana", "ana", &anxiety)).await;
    assert!(texts(&out)[0].contains("no longer valid"));
    app.send(message("ana", "I might lose my job")).await;
    let out = app.send(command("ana", "end", "")).await;
    let Outbound::Prompt { choices, .. } = out.last().unwrap() else {
        panic!()
    };
    app.send(press("ana", "ana", &choices[1].payload)).await; // intensity after 2
    let out = app
        .send(press(
            "ana",
            "ana",
            &choices[1].payload.replace(":a:2", ":m:skip").to_string(),
        ))
        .await;
    assert!(texts(&out)
        .iter()
        .any(|t| t.contains("Thank you for talking")));
    let ana = app.user("ana").await.unwrap();
    let s = &app.engine.store.sessions_of_user(ana.id).await.unwrap()[0];
    assert_eq!(
        (s.emotion_type.as_deref(), s.problem_type.as_deref()),
        (Some("anxiety"), Some("job crisis"))
    );
    assert_eq!(
        (s.intensity_before, s.intensity_after, s.empathy),
        (Some(4), Some(2), None)
    );
    assert_eq!(s.stage, kindred::domain::Stage::Closed);
    assert!(s.ended_at.is_some());
    // Skipping the whole check-in takes one press.
    let out = app.send(command("ben", "start", "")).await;
    let Outbound::Prompt { choices, .. } = out.last().unwrap() else {
        panic!()
    };
    let out = app
        .send(press("ben", "ben", &choices.last().unwrap().payload))
        .await;
    assert!(texts(&out)[0].contains("I'm listening"));
    let ben = app.user("ben").await.unwrap();
    assert_eq!(
        app.engine.store.sessions_of_user(ben.id).await.unwrap()[0].stage,
        kindred::domain::Stage::Chatting
    );
}

#[tokio::test]
async fn reset_starts_a_fresh_context() {
    let app = spawn_app(&[]).await;
    app.send(message("ana", "first topic")).await;
    let out = app.send(command("ana", "reset", "")).await;
    assert!(texts(&out)[0].contains("Starting fresh"));
    app.send(message("ana", "second topic")).await;
    let ana = app.user("ana").await.unwrap();
    let sessions = app.engine.store.sessions_of_user(ana.id).await.unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(
        sessions[0].end_reason,
        Some(kindred::domain::EndReason::Reset)
    );
    let fresh = app.engine.store.turns(sessions[1].id).await.unwrap();
    assert_eq!(fresh[0].text, "second topic");
}

#[tokio::test]
async fn idle_sessions_end_and_a_new_message_opens_a_new_one() {
    let app = spawn_app(&[]).await;
    app.send(message("ana", "hello")).await;
    app.hours_pass(1).await;
    let out = app.send(message("ana", "back again")).await;
    assert!(texts(&out).iter().any(|t| t.contains("fresh conversation")));
    let ana = app.user("ana").await.unwrap();
    let sessions = app.engine.store.sessions_of_user(ana.id).await.unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(
        sessions[0].end_reason,
        Some(kindred::domain::EndReason::Idle)
    );
}

#[tokio::test]
async fn a_locked_database_is_an_error_not_a_panic() {
    let app = spawn_app(&[("KINDRED__STORAGE__BUSY_TIMEOUT_MS", "100")]).await;
    app.send(message("ana", "hello")).await;
    // Another process holds the write lock (SQLite), or an exclusive lock on the
    // tables (Postgres).
    let lock = app.lock_database().await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let result = app
        .engine
        .handle(message("ana", "are you there?"), &tx)
        .await;
    assert!(result.is_err());
    drop(tx);
    let mut said = Vec::new();
    while let Some(o) = rx.recv().await {
        said.push(o);
    }
    assert!(
        texts(&said).iter().any(|t| t.contains("try again")),
        "{said:?}"
    );
    lock.release().await;
    // Once the lock is gone, everything works again.
    assert_eq!(
        replies(&app.send(message("ana", "are you there?")).await).len(),
        1
    );
}

#[tokio::test]
async fn a_missing_model_directory_is_named_with_how_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let err = kindred::startup::build_engine(
        test_settings(dir.path(), &[]),
        std::path::Path::new("/nonexistent/model"),
    )
    .await
    .err()
    .unwrap();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("/nonexistent/model")
            && msg.contains("kindred train")
            && msg.contains("model pull"),
        "{msg}"
    );
}

#[tokio::test]
async fn export_speaks_esconv_and_reads_back_as_training_data() {
    let app = spawn_app(&[]).await;
    app.send(message("ana", "I lost my job")).await;
    let out = app.send(message("ana", "I don't know what to do")).await;
    let (_, payloads) = rating_prompts(&out)[0].clone();
    app.send(press("ana", "ana", &payloads[3])).await;
    app.send(message("ana", "thanks for listening")).await;
    let exported = kindred::export::export(
        &app.engine.store,
        &kindred::export::ExportOptions::everything(),
    )
    .await
    .unwrap();
    assert_eq!(exported.len(), 1);
    let conv = &exported[0];
    assert!(
        conv["kindred"]["seeker"]
            .as_str()
            .unwrap()
            .starts_with("seeker-"),
        "pseudonym, not the platform id"
    );
    assert!(
        !conv.to_string().contains("dm-ana"),
        "no platform ids in exports"
    );
    let dialog = conv["dialog"].as_array().unwrap();
    assert_eq!(dialog.len(), 6);
    assert_eq!(
        dialog[4]["annotation"]["feedback"], "4",
        "the rating is the next seeker turn's feedback"
    );
    assert!(dialog[1]["annotation"]["strategy"].is_string());
    let path = app.dir.path().join("export.json");
    std::fs::write(&path, serde_json::to_string(&exported).unwrap()).unwrap();
    let back = kindred::train::data::read_conversations(&path).unwrap();
    assert_eq!(back[0].turns.len(), 6);
    assert_eq!(back[0].turns[0].text, "I lost my job");
    let stats = kindred::export::stats(&app.engine.store).await.unwrap();
    assert_eq!(
        (stats["bot_replies"].as_i64(), stats["ratings"].as_i64()),
        (Some(3), Some(1))
    );
}

/// Presses, commands and files past the per-minute limit are not carried out: the person
/// is told once, others are not held back, and neither the crisis screen nor /forget
/// ever waits.
#[tokio::test]
async fn a_flood_of_presses_commands_and_files_is_held_back_but_never_care() {
    let app = spawn_app(&[("KINDRED__CONVERSATION__MAX_ACTIONS_PER_MINUTE", "4")]).await;
    let held_back = |out: &[Outbound]| {
        texts(out)
            .iter()
            .filter(|t| t.contains("a lot of taps"))
            .count()
    };
    for _ in 0..4 {
        let out = app.send(command("ana", "help", "")).await;
        assert_eq!(held_back(&out), 0);
        assert!(!texts(&out).is_empty(), "answered: {out:?}");
    }
    // The fifth is told, once; then silence.
    let out = app.send(command("ana", "help", "")).await;
    assert_eq!(texts(&out).len(), 1, "{out:?}");
    assert_eq!(held_back(&out), 1);
    assert!(texts(&app.send(press("ana", "ana", "r:1:x:5")).await).is_empty());
    let (chat, user) = dm("ana");
    let sticker = Inbound::NonText {
        chat: chat.clone(),
        user: user.clone(),
        message_id: None,
        attachment: Attachment::Sticker,
        caption: None,
    };
    assert!(texts(&app.send(sticker).await).is_empty());
    // The screen never waits: a caption and a command's words still bring resources.
    let photo = Inbound::NonText {
        chat,
        user,
        message_id: None,
        attachment: Attachment::Image,
        caption: Some("I want to kill myself".into()),
    };
    let out = app.send(photo).await;
    assert!(texts(&out)[0].contains("crisis line"), "{out:?}");
    let out = app
        .send(command("ana", "start", "I want to end my life"))
        .await;
    assert!(texts(&out)[0].contains("crisis line"), "{out:?}");
    // Nor does /forget.
    let out = app.send(command("ana", "forget", "")).await;
    assert!(
        out.iter()
            .any(|o| matches!(o, Outbound::Prompt { text, .. } if text.contains("permanently"))),
        "the forget question: {out:?}"
    );
    // Someone else is not held back by ana, and ana's messages still get replies.
    assert!(!texts(&app.send(command("ben", "help", "")).await).is_empty());
    assert_eq!(replies(&app.send(message("ana", "hello?")).await).len(), 1);
}

/// A busy shared chat is answered up to its own limit, all people together; past it the
/// chat is told once, messages are still kept and risk still brings the resources, and
/// the same people are still answered in private.
#[tokio::test]
async fn a_busy_group_is_held_back_but_its_words_are_kept_and_screened() {
    let app = spawn_app(&[("KINDRED__CONVERSATION__MAX_GROUP_EVENTS_PER_MINUTE", "3")]).await;
    let group = kindred_adapter::ChatRef::group("test", "busy", None);
    let (_, moderator) = dm("mo");
    app.send(Inbound::Moderation {
        chat: group.clone(),
        user: moderator,
        action: kindred_adapter::ModAction::Enable,
        interaction: None,
    })
    .await;
    let said = |who: &str, text: &str| Inbound::Message {
        chat: group.clone(),
        user: dm(who).1,
        message_id: None,
        text: text.into(),
    };
    for (who, i) in [("ana", 0), ("ben", 1), ("cy", 2)] {
        let out = app.send(said(who, &format!("hello everyone {i}"))).await;
        assert_eq!(replies(&out).len(), 1, "{out:?}");
    }
    let busy = |out: &[Outbound]| {
        texts(out)
            .iter()
            .filter(|t| t.contains("faster than I can keep up"))
            .count()
    };
    let out = app.send(said("dee", "anyone there?")).await;
    assert_eq!((replies(&out).len(), busy(&out)), (0, 1), "{out:?}");
    let out = app.send(said("eve", "me too")).await;
    // A newcomer still learns what Kindred is (the introduction), but gets no reply, and
    // the chat is not told again.
    assert_eq!(
        (replies(&out).len(), busy(&out)),
        (0, 0),
        "told once: {out:?}"
    );
    let out = app.send(said("eve", "I want to kill myself")).await;
    assert!(texts(&out)[0].contains("crisis line"), "{out:?}");
    assert_eq!(app.turns_containing("me too").await, 1, "kept");
    assert_eq!(replies(&app.send(message("eve", "hi")).await).len(), 1);
}

#[tokio::test]
async fn fast_writers_are_asked_to_slow_down_and_nothing_is_lost() {
    let app = spawn_app(&[("KINDRED__CONVERSATION__MAX_MESSAGES_PER_MINUTE", "3")]).await;
    for i in 0..3 {
        assert_eq!(
            replies(&app.send(message("ana", &format!("msg {i}"))).await).len(),
            1
        );
    }
    let out = app.send(message("ana", "msg 3")).await;
    assert!(replies(&out).is_empty());
    assert!(texts(&out)
        .iter()
        .any(|t| t.contains("faster than I can read")));
    // Told once, not for every message past the limit.
    let out = app.send(message("ana", "msg 4")).await;
    assert!(replies(&out).is_empty());
    assert!(
        !texts(&out)
            .iter()
            .any(|t| t.contains("faster than I can read")),
        "{out:?}"
    );
    let out = app.send(message("ana", "I want to end my life")).await;
    assert!(
        texts(&out).iter().any(|t| t.contains("crisis line")),
        "{out:?}"
    );
    // A risk split over two fast messages too.
    let out = app.send(message("ana", "I keep thinking about")).await;
    assert!(!texts(&out).iter().any(|t| t.contains("crisis line")));
    let out = app.send(message("ana", "how my life")).await;
    assert!(!texts(&out).iter().any(|t| t.contains("crisis line")));
    let out = app.send(message("ana", "is not worth living")).await;
    assert!(
        texts(&out).iter().any(|t| t.contains("crisis line")),
        "{out:?}"
    );
    assert_eq!(app.stored_messages().await, 9, "every message is stored");
}

#[tokio::test]
async fn retention_deletes_old_closed_conversations() {
    let app = spawn_app(&[("KINDRED__CONVERSATION__RETENTION_DAYS", "30")]).await;
    app.send(message("ana", "old conversation")).await;
    app.send(command("ana", "reset", "")).await;
    app.send(message("ana", "new conversation")).await;
    app.days_pass_since_ended(40).await;
    app.engine.end_idle_sessions().await.unwrap();
    assert_eq!(app.turns_containing("old conversation").await, 0);
    assert_eq!(app.turns_containing("new conversation").await, 1);
}

#[tokio::test]
async fn a_reply_that_fails_midway_gets_a_kind_message_and_loses_nothing() {
    // Replies longer than the model's 256 positions fail partway through generation.
    let app = spawn_app(&[
        ("KINDRED__MODEL__DECODING__MIN_LENGTH", "300"),
        ("KINDRED__MODEL__DECODING__MAX_LENGTH", "300"),
    ])
    .await;
    let out = app.send(message("ana", "hello, is anyone there?")).await;
    assert_eq!(
        replies(&out),
        vec![kindred::engine::texts::MODEL_FAILED.to_string()]
    );
    let out = app.send(message("ana", "I want to kill myself")).await;
    assert!(
        replies(&out)[0].contains("crisis line"),
        "a failing model never withholds the crisis resources"
    );
    assert_eq!(replies(&out)[1], kindred::engine::texts::MODEL_FAILED);
    let turns = app.turns_of("ana").await;
    let seeker = turns
        .iter()
        .filter(|t| t.speaker == Speaker::Seeker)
        .count();
    let failed = turns
        .iter()
        .filter(|t| t.source == TurnSource::System)
        .count();
    assert_eq!(
        (seeker, failed),
        (2, 2),
        "both messages kept; the failures are recorded but never enter the model's context"
    );
    // No rating prompt for failed replies.
    assert!(rating_prompts(&out).is_empty());
}

/// A crash after a message's platform key was recorded but before its words were stored
/// used to lose the message for good: the redelivery was skipped as already processed.
/// Now the key and the turn are written in one transaction.
#[tokio::test]
async fn a_failure_while_storing_a_message_does_not_mark_it_processed() {
    let app = spawn_app(&[]).await;
    // Storing this text fails, as a crash at that moment would.
    app.fail_storing("are you there?").await;
    let (chat, user) = dm("ana");
    let event = Inbound::Message {
        chat,
        user,
        message_id: Some("m-42".into()),
        text: "are you there?".into(),
    };
    let (tx, _rx) = tokio::sync::mpsc::channel(64);
    assert!(app.engine.handle(event.clone(), &tx).await.is_err());
    app.store_normally_again().await;
    // The platform (or the inbox at the next start) delivers it again: answered now.
    let out = app.send(event.clone()).await;
    assert_eq!(replies(&out).len(), 1, "{out:?}");
    assert_eq!(app.stored_messages().await, 1);
    // And a third delivery is a redelivery.
    assert!(replies(&app.send(event).await).is_empty());
}

#[tokio::test]
async fn a_whole_conversation_runs_on_a_decoder_only_joint_model() {
    // The engine, store and ratings see no difference between the architectures.
    let app = spawn_app_with_model(&tiny_llama_model(), &[]).await;
    let mut all_replies = Vec::new();
    for (i, text) in [
        "I lost my job today",
        "I feel like I let my family down",
        "I don't know how to tell them",
        "thank you for listening",
    ]
    .iter()
    .enumerate()
    {
        let out = app.send(message("lee", text)).await;
        let r = replies(&out);
        assert_eq!(r.len(), 1, "one reply per message: {out:?}");
        all_replies.push(r[0].clone());
        assert_eq!(!rating_prompts(&out).is_empty(), i % 2 == 1);
    }
    let session = app.open_session_of("lee").await;
    let turns = app.engine.store.turns(session.id).await.unwrap();
    let model_turns: Vec<_> = turns
        .iter()
        .filter(|t| t.source == TurnSource::Model)
        .collect();
    assert_eq!(model_turns.len(), 4);
    for t in &model_turns {
        assert!(t.strategy.is_some(), "every reply carries its strategy");
        let probs: Vec<f32> = serde_json::from_str(t.strategy_probs.as_deref().unwrap()).unwrap();
        assert_eq!(probs.len(), 8);
    }
    // The replies are the model's text, never a strategy token or ChatML marker.
    for r in &all_replies {
        assert!(!r.contains("<|im_") && !r.contains("[Question]"), "{r:?}");
    }
}
