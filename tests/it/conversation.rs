//! Whole conversations through the port: a real SQLite file in a temp dir and the real
//! (tiny, random-weight) Joint model.

use crate::helpers::*;
use kindred::domain::{Delivery, Speaker, TurnSource};
use kindred::model::{self, ContextTurn, Strategy, StrategyChoice};
use kindred_adapter::{Attachment, ChatKind, ChatRef, Inbound, ModAction, Outbound};

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
    assert_eq!(p.stars, Some(4));
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
    assert_eq!(app.rating_prompt(prompt_id).await.stars, Some(2));

    // /rate works where buttons don't.
    let out = app.send(command("ana", "rate", "5")).await;
    assert!(texts(&out).iter().any(|t| t.contains("5 ★")));
    assert_eq!(app.rating_prompt(prompt_id).await.stars, Some(5));
    let out = app.send(command("ana", "rate", "9")).await;
    assert!(texts(&out)[0].contains("from 1 to 5"));
}

/// A press that overtakes the report of its prompt's delivery (the platform had not
/// yet answered the send with the message's id): the rating is stored at once, and the
/// prompt is edited as soon as the report brings the id.
#[tokio::test]
async fn a_press_before_the_prompt_is_reported_delivered_edits_it_once_it_is() {
    let app = spawn_app(&[]).await;
    app.send(message("ana", "my week was hard")).await;
    let out = app.send(message("ana", "and I can't sleep")).await;
    let (id, payloads) = rating_prompts(&out).remove(0);
    let prompt_id: i64 = id.trim_start_matches("rating:").parse().unwrap();
    // As if the delivery report had not come back yet.
    app.forget_delivery_of_prompt(prompt_id).await;
    let out = app.send(press("ana", "ana", &payloads[2])).await;
    assert!(
        !out.iter().any(|o| matches!(o, Outbound::EditPrompt { .. })),
        "no id to edit yet: {out:?}"
    );
    let stored = app.rating_prompt(prompt_id).await;
    assert_eq!(stored.stars, Some(3));

    let out = app
        .send_undelivered(Inbound::Delivered {
            outbound_id: id.clone(),
            platform_message_id: Some("pm-late".into()),
        })
        .await;
    let mut edits = Vec::new();
    for o in out {
        if let Outbound::EditPrompt {
            platform_message_id,
            text,
            chosen,
            choices,
            ..
        } = o
        {
            edits.push((platform_message_id, text, chosen, choices.len()));
        }
    }
    assert_eq!(edits.len(), 1, "{edits:?}");
    let (pmid, text, chosen, n) = &edits[0];
    assert_eq!((pmid.as_str(), *chosen, *n), ("pm-late", Some(2), 5));
    assert!(text.contains("3 ★"), "{text}");

    // A prompt delivered before any press is not edited by its report.
    let out = app.send(message("ana", "thanks for listening")).await;
    assert!(rating_prompts(&out).is_empty());
    let out = app.send(message("ana", "it helps")).await;
    let (id2, _) = rating_prompts(&out).remove(0);
    let out = app
        .send_undelivered(Inbound::Delivered {
            outbound_id: id2,
            platform_message_id: Some("pm-again".into()),
        })
        .await;
    assert!(out.is_empty(), "nothing to edit before a press: {out:?}");
}

#[tokio::test]
async fn forged_stale_and_foreign_presses_change_nothing() {
    let app = spawn_app(&[]).await;
    app.send(message("ana", "hello")).await;
    let out = app.send(message("ana", "I am sad")).await;
    let (id, payloads) = rating_prompts(&out)[0].clone();
    let prompt_id: i64 = id.trim_start_matches("rating:").parse().unwrap();
    app.send(message("ben", "hi")).await;

    let notice = |out: &[Outbound]| match out.first() {
        Some(Outbound::Notice { text, .. }) => text.clone(),
        other => panic!("expected a notice, got {other:?}"),
    };
    // Someone else presses ana's button.
    let out = app.send(press("ana", "ben", &payloads[4])).await;
    assert!(notice(&out).contains("Only the person"));
    // A forged nonce, a made-up prompt, garbage.
    let forged = payloads[4].replace(payloads[4].split(':').nth(2).unwrap(), "forgednonce1");
    assert!(notice(&app.send(press("ana", "ana", &forged)).await).contains("no longer valid"));
    assert!(
        notice(&app.send(press("ana", "ana", "r:99999:abc:5")).await).contains("no longer valid")
    );
    assert!(notice(&app.send(press("ana", "ana", "r:1:x:7")).await).contains("no longer valid"));
    assert!(
        notice(&app.send(press("ana", "ana", "DROP TABLE users")).await)
            .contains("no longer valid")
    );
    assert_eq!(app.rating_prompt(prompt_id).await.stars, None);

    // After /end the session's prompts are closed.
    app.send(command("ana", "end", "")).await;
    let out = app.send(press("ana", "ana", &payloads[2])).await;
    assert!(notice(&out).contains("has ended"));
    assert_eq!(app.rating_prompt(prompt_id).await.stars, None);
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
async fn forget_leaves_no_row_of_that_user() {
    let app = spawn_app(&[]).await;
    for t in ["hello", "I'm lonely", "nobody calls me"] {
        app.send(message("ana", t)).await;
    }
    app.send(message_with_id("ana", "a-41", "one more")).await;
    app.send(message("ben", "hi")).await;
    app.send(message_with_id("ben", "b-7", "still here")).await;
    assert_eq!(
        app.handled_message_keys().await,
        ["msg:dm-ana:a-41", "msg:dm-ben:b-7"]
    );
    let ana = app.user("ana").await.unwrap();
    let ben = app.user("ben").await.unwrap();
    let out = app.send(command("ana", "forget", "")).await;
    let Outbound::Prompt { choices, .. } = &out[0] else {
        panic!("{out:?}")
    };
    // Ben cannot confirm ana's deletion.
    app.send(press("ana", "ben", &choices[0].payload)).await;
    assert!(app.user("ana").await.is_some());
    let out = app.send(press("ana", "ana", &choices[0].payload)).await;
    assert!(texts(&out)[0].contains("deleted"));

    assert!(app.user("ana").await.is_none());
    assert!(app.conversations_of(ana.id).await.is_empty());
    assert_eq!(app.turns_containing("lonely").await, 0);
    assert_eq!(app.rating_prompts_of(ana.id).await, 0);
    assert_eq!(app.orphan_turns().await, 0);
    // The key of ana's message went with her; ben's stays until it is a week old.
    assert_eq!(app.handled_message_keys().await, ["msg:dm-ben:b-7"]);
    let store = &app.engine.store;
    assert_eq!(
        store
            .prune_handled_events(kindred::store::now_ms() - 60_000)
            .await
            .unwrap(),
        0
    );
    assert!(
        store
            .prune_handled_events(kindred::store::now_ms() + 1)
            .await
            .unwrap()
            >= 1
    );
    assert!(app.handled_message_keys().await.is_empty());
    // Ben's data is untouched.
    assert_eq!(app.conversations_of(ben.id).await.len(), 1);
    // A stale confirm after deletion does nothing harmful.
    let out = app.send(press("ana", "ana", &choices[0].payload)).await;
    assert!(matches!(&out[0], Outbound::Notice { .. }));
    assert!(app.user("ana").await.is_none());
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
    let (stored,): (String,) =
        sqlx::query_as("SELECT text FROM turns WHERE speaker = 'seeker' ORDER BY id DESC LIMIT 1")
            .fetch_one(app.db())
            .await
            .unwrap();
    assert_eq!(stored, huge);
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

/// Each category's response, marked so the tests can tell them apart.
const RESPONSES: &[(&str, &str)] = &[
    ("KINDRED__SAFETY__CRISIS_MESSAGE", "CALL 988 NOW"),
    ("KINDRED__SAFETY__EMERGENCY_MESSAGE", "EMERGENCY 112"),
    ("KINDRED__SAFETY__SELF_HARM_MESSAGE", "GLAD YOU TOLD ME"),
    (
        "KINDRED__SAFETY__OTHER_AT_RISK_MESSAGE",
        "ABOUT YOUR FRIEND",
    ),
    ("KINDRED__SAFETY__ABUSE_MESSAGE", "ABUSE HELPLINE"),
    ("KINDRED__SAFETY__HARM_TO_OTHERS_MESSAGE", "STEP AWAY"),
];

#[tokio::test]
async fn risk_of_self_harm_always_brings_the_crisis_resources() {
    let app = spawn_app(RESPONSES).await;
    let out = app.send(message("ana", "I have been feeling awful")).await;
    assert!(!replies(&out)[0].contains("CALL 988 NOW"));
    // Said outright, and indirectly (this one once went out without them).
    for text in [
        "honestly I want to kill myself",
        "sometimes I think about ending it all",
    ] {
        let r = replies(&app.send(message("ana", text)).await);
        assert_eq!(r.len(), 2, "the response, then the model's reply: {r:?}");
        assert_eq!(r[0], "GLAD YOU TOLD ME\n\nCALL 988 NOW", "{text}");
        assert!(!r[1].contains("CALL 988 NOW"), "{r:?}");
    }
}

/// Each category has its own response, and it reaches the person before the model's text.
#[tokio::test]
async fn each_category_gets_its_response_before_the_model_says_anything() {
    let app = spawn_app(RESPONSES).await;
    for (text, want) in [
        (
            "I took a bunch of pills an hour ago",
            "EMERGENCY 112\n\nGLAD YOU TOLD ME\n\nCALL 988 NOW",
        ),
        (
            "I wrote my goodbye letters today",
            "GLAD YOU TOLD ME\n\nCALL 988 NOW",
        ),
        (
            "my friend texted me she is going to kill herself tonight",
            "ABOUT YOUR FRIEND\n\nCALL 988 NOW",
        ),
        (
            "He hits me every night and I'm scared he will kill me",
            "ABUSE HELPLINE",
        ),
        (
            "I keep having urges to hurt people",
            "STEP AWAY\n\nCALL 988 NOW",
        ),
    ] {
        let out = app.send(message("ana", text)).await;
        let texts: Vec<&Outbound> = out
            .iter()
            .filter(|o| matches!(o, Outbound::Text { .. } | Outbound::Typing { .. }))
            .collect();
        let Outbound::Text { text: first, .. } = texts[0] else {
            panic!("the response comes before the typing indicator: {out:?}");
        };
        assert_eq!(first, want, "{text}");
        assert_eq!(replies(&out).len(), 2, "{text}: {out:?}");
    }
    // The imminent-danger turn was answered without suggestions or information.
    let strategies: Vec<(Option<String>,)> =
        sqlx::query_as("SELECT strategy FROM turns WHERE source = 'model' ORDER BY id LIMIT 1")
            .fetch_all(app.db())
            .await
            .unwrap();
    let s = strategies[0].0.clone().unwrap();
    assert!(s != "Providing Suggestions" && s != "Information", "{s}");
}

#[tokio::test]
async fn a_hung_model_never_holds_back_the_crisis_response() {
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(dir.path(), RESPONSES);
    let store = kindred::startup::open_store(&settings).await.unwrap();
    let engine = kindred::engine::Engine::new(
        store,
        kindred::engine::ModelWorker::unresponsive(),
        std::sync::Arc::new(settings),
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let handling = tokio::spawn({
        let engine = engine.clone();
        async move {
            engine
                .handle(message("ana", "I'm standing on the roof right now"), &tx)
                .await
        }
    });
    let first_text = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match rx.recv().await {
                Some(Outbound::Text { text, id, .. }) => return (text, id),
                Some(_) => continue,
                None => panic!("the engine stopped without sending anything"),
            }
        }
    })
    .await
    .expect("the response went out while the model hangs");
    assert!(first_text.0.starts_with("EMERGENCY 112"), "{first_text:?}");
    assert!(
        first_text.1.unwrap().starts_with("turn:"),
        "recorded as a turn"
    );
    assert!(!handling.is_finished(), "the model is still hung");
    handling.abort();
}

#[tokio::test]
async fn a_crash_before_or_after_the_screen_still_brings_the_response_once() {
    // A crash after the message was stored, before it was screened.
    let app = spawn_app(RESPONSES).await;
    app.send(message("ana", "hello")).await;
    app.store_message_unanswered("ana", "i bought a rope").await;
    let app = restart(app, RESPONSES).await;
    let got = app.recover().await;
    let r = replies(&got);
    assert_eq!(r.len(), 2, "{got:?}");
    assert!(r[0].starts_with("EMERGENCY 112"), "{r:?}");

    // A crash after the response was recorded, before it was delivered.
    let out = app.send_undelivered(message("ana", "I want to die")).await;
    assert_eq!(replies(&out).len(), 2);
    let app = restart(app, RESPONSES).await;
    let got = app.recover().await;
    let r = replies(&got);
    assert_eq!(
        r.iter()
            .filter(|t| t.starts_with("GLAD YOU TOLD ME"))
            .count(),
        1,
        "sent again once, not screened into a second response: {r:?}"
    );
}

#[tokio::test]
async fn captions_and_command_arguments_are_screened() {
    let app = spawn_app(RESPONSES).await;
    let (chat, user) = dm("ana");
    let out = app
        .send(Inbound::NonText {
            chat,
            user,
            message_id: Some("p1".into()),
            attachment: Attachment::Image,
            caption: Some("this is my last night alive".into()),
        })
        .await;
    let t = texts(&out);
    assert!(t[0].starts_with("EMERGENCY 112"), "{t:?}");
    assert!(
        t.iter().any(|x| x.contains("I can only read text")),
        "{t:?}"
    );
    let out = app
        .send(command("bo", "start", "i want to kill myself"))
        .await;
    let t = texts(&out);
    assert!(t[0].starts_with("GLAD YOU TOLD ME"), "{t:?}");
    // Commands without risk in them bring nothing extra.
    let out = app.send(command("cy", "start", "")).await;
    assert!(!texts(&out).iter().any(|x| x.contains("CALL 988 NOW")));
}

#[tokio::test]
async fn an_edit_is_not_answered_but_risk_in_it_brings_the_crisis_resources() {
    let app = spawn_app(RESPONSES).await;
    app.send(message("ana", "I'm fine")).await;
    assert!(app.send(edited("ana", "I'm fine, really")).await.is_empty());
    let out = app.send(edited("ana", "I'm not fine, I want to die")).await;
    assert_eq!(texts(&out), ["GLAD YOU TOLD ME\n\nCALL 988 NOW"], "{out:?}");
    assert_eq!(
        replies(&out).len(),
        1,
        "the response is recorded; no model reply to an edit"
    );
    assert_eq!(
        app.stored_messages().await,
        1,
        "the conversation keeps what was first sent"
    );
}

#[tokio::test]
async fn a_risk_split_over_two_messages_brings_the_crisis_resources() {
    let app = spawn_app(RESPONSES).await;
    let out = app.send(message("ana", "I keep thinking about")).await;
    assert!(!replies(&out)[0].contains("CALL 988 NOW"));
    let out = app.send(message("ana", "ending it all")).await;
    let r = replies(&out);
    assert!(r[0].contains("CALL 988 NOW"), "{r:?}");
    // Said once, the resources are not repeated with every later reply.
    let out = app.send(message("ana", "thank you")).await;
    assert!(!replies(&out)[0].contains("CALL 988 NOW"));
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
    let other_store = kindred::store::Store::connect(
        &database_of(app.dir.path()),
        std::time::Duration::from_secs(5),
    )
    .await
    .unwrap();
    let mut other = other_store.pool().acquire().await.unwrap();
    let lock: &[&str] = if on_postgres() {
        &[
            "BEGIN",
            "LOCK TABLE users, sessions, turns IN ACCESS EXCLUSIVE MODE",
        ]
    } else {
        &["BEGIN EXCLUSIVE"]
    };
    for sql in lock {
        sqlx::query(sql).execute(&mut *other).await.unwrap();
    }
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
    sqlx::query("ROLLBACK").execute(&mut *other).await.unwrap();
    drop(other);
    other_store.close().await;
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
    assert_eq!(app.stored_messages().await, 8, "every message is stored");
}

#[tokio::test]
async fn retention_deletes_old_closed_conversations() {
    let app = spawn_app(&[("KINDRED__CONVERSATION__RETENTION_DAYS", "30")]).await;
    app.send(message("ana", "old conversation")).await;
    app.send(command("ana", "reset", "")).await;
    app.send(message("ana", "new conversation")).await;
    sqlx::query("UPDATE sessions SET ended_at = ended_at - $1 WHERE end_reason = 'reset'")
        .bind(40_i64 * 86_400_000)
        .execute(app.db())
        .await
        .unwrap();
    app.engine.end_idle_sessions().await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM turns WHERE text = 'old conversation'")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(n, 0);
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM turns WHERE text = 'new conversation'")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(n, 1);
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
    let (seeker, failed): (i64, i64) = sqlx::query_as(
        "SELECT SUM(CASE WHEN speaker = 'seeker' THEN 1 ELSE 0 END),
                SUM(CASE WHEN source = 'system' THEN 1 ELSE 0 END) FROM turns",
    )
    .fetch_one(app.db())
    .await
    .unwrap();
    assert_eq!(
        (seeker, failed),
        (2, 2),
        "both messages kept; the failures are recorded but never enter the model's context"
    );
    // No rating prompt for failed replies.
    assert!(rating_prompts(&out).is_empty());
}

/// Everything said in answer to a platform interaction (a slash command) carries its
/// handle, down to the final Done, so the adapter can keep it private to the person who
/// asked; answers to plain messages carry none.
#[tokio::test]
async fn answers_to_an_interaction_carry_its_handle() {
    let app = spawn_app(&[("KINDRED__CONVERSATION__CHECKIN", "false")]).await;
    let handle = |o: &Outbound| match o {
        Outbound::Text { interaction, .. }
        | Outbound::Prompt { interaction, .. }
        | Outbound::Done { interaction, .. }
        | Outbound::Notice { interaction, .. } => Some(interaction.clone()),
        _ => None,
    };

    let Inbound::Command {
        chat, user, name, ..
    } = command("ana", "start", "")
    else {
        unreachable!()
    };
    let said = app
        .send_undelivered(Inbound::Command {
            chat,
            user,
            message_id: None,
            name,
            args: String::new(),
            interaction: Some("42:token-42".into()),
        })
        .await;
    assert!(said.len() >= 2, "{said:?}");
    for o in &said {
        if let Some(h) = handle(o) {
            assert_eq!(h.as_deref(), Some("42:token-42"), "{o:?}");
        }
    }
    assert!(matches!(said.last(), Some(Outbound::Done { .. })));

    let said = app.send_undelivered(message("ana", "I feel alone")).await;
    assert!(said.iter().any(|o| matches!(o, Outbound::Text { .. })));
    assert!(
        said.iter().all(|o| handle(o).flatten().is_none()),
        "{said:?}"
    );
}

/// In a shared chat the answers to a button press (the next check-in question) go to
/// the press's interaction, so that only the presser sees them; in a DM they go to the chat.
#[tokio::test]
async fn answers_to_a_press_are_private_only_in_shared_chats() {
    let app = spawn_app(&[]).await;
    let group = ChatRef {
        platform: "test".into(),
        id: "group-1".into(),
        kind: ChatKind::Group,
    };
    let (_, ana) = dm("ana");
    let (_, moderator) = dm("mo");
    app.send(Inbound::Moderation {
        chat: group.clone(),
        user: moderator,
        action: ModAction::Enable,
        interaction: Some("1:mod".into()),
    })
    .await;
    let next_prompt = |out: &[Outbound]| match out.last() {
        Some(Outbound::Prompt {
            choices,
            interaction,
            ..
        }) => (choices.clone(), interaction.clone()),
        other => panic!("{other:?}"),
    };

    let out = app
        .send(Inbound::Command {
            chat: group.clone(),
            user: ana.clone(),
            message_id: None,
            name: "start".into(),
            args: String::new(),
            interaction: Some("2:start".into()),
        })
        .await;
    let (choices, to) = next_prompt(&out);
    assert_eq!(to.as_deref(), Some("2:start"));
    let out = app
        .send(Inbound::Choice {
            chat: group.clone(),
            user: ana.clone(),
            payload: choices[0].payload.clone(),
            interaction: Some("3:press".into()),
        })
        .await;
    assert_eq!(next_prompt(&out).1.as_deref(), Some("3:press"));

    // The same in a DM: the next question is an ordinary message.
    let out = app.send(command("bo", "start", "")).await;
    let (choices, _) = next_prompt(&out);
    let out = app.send(press("bo", "bo", &choices[0].payload)).await;
    assert_eq!(next_prompt(&out).1, None);
}

/// The same through the running engine, where delivery reports are handled apart from
/// the people's queues: the late report's edit reaches the adapter.
#[tokio::test]
async fn the_edit_for_a_late_delivery_report_reaches_the_adapter() {
    let app = spawn_app(&[]).await;
    let (inbox, inbound) = kindred_adapter::Inbox::channel(16);
    let (to_adapter, mut outbound) = tokio::sync::mpsc::channel(64);
    let routes = std::sync::Arc::new(std::collections::HashMap::from([(
        "test".to_string(),
        to_adapter,
    )]));
    let (stop, stopped) = tokio::sync::broadcast::channel(1);
    let serving = tokio::spawn(kindred::engine::runtime::serve(
        app.engine.clone(),
        inbound,
        routes,
        stopped,
    ));
    inbox
        .send(message("ana", "my week was hard"))
        .await
        .unwrap();
    inbox
        .send(message("ana", "and I can't sleep"))
        .await
        .unwrap();
    // Nothing reports deliveries here: the prompt has no message id when it is pressed.
    let (id, payloads) = loop {
        let o = next_outbound(&mut outbound).await;
        if let Some(p) = rating_prompts(std::slice::from_ref(&o)).pop() {
            break p;
        }
    };
    inbox.send(press("ana", "ana", &payloads[3])).await.unwrap();
    let prompt_id: i64 = id.trim_start_matches("rating:").parse().unwrap();
    let pressed = std::time::Instant::now();
    while app.rating_prompt(prompt_id).await.stars != Some(4) {
        assert!(
            pressed.elapsed().as_secs() < 20,
            "the press is stored in time"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    inbox
        .send(Inbound::Delivered {
            outbound_id: id,
            platform_message_id: Some("pm-late".into()),
        })
        .await
        .unwrap();
    loop {
        if let Outbound::EditPrompt {
            platform_message_id,
            chosen,
            ..
        } = next_outbound(&mut outbound).await
        {
            assert_eq!((platform_message_id.as_str(), chosen), ("pm-late", Some(3)));
            break;
        }
    }
    stop.send(()).unwrap();
    // The reports lane stays open until the last adapter (here, the test) is gone.
    drop(inbox);
    let _ = serving.await;
}

/// The next message the engine sends to the adapter, within 20 s.
async fn next_outbound(rx: &mut tokio::sync::mpsc::Receiver<Outbound>) -> Outbound {
    tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv())
        .await
        .expect("an outbound message in time")
        .expect("the engine is running")
}

/// Moderators who ask for it hear that someone in their shared chat may be at risk:
/// without the person's words unless the community opted in, never when off, never for
/// direct messages; the person gets the crisis response either way.
#[tokio::test]
async fn escalation_reaches_the_alert_chat_only_as_the_moderators_chose() {
    let app = spawn_app(RESPONSES).await;
    let group = ChatRef {
        platform: "test".into(),
        id: "g-1".into(),
        kind: ChatKind::Group,
    };
    let (_, ana) = dm("ana");
    let (_, moderator) = dm("mo");
    let moderate = |action| Inbound::Moderation {
        chat: group.clone(),
        user: moderator.clone(),
        action,
        interaction: Some("1:mod".into()),
    };
    let in_group = |text: &str| Inbound::Message {
        chat: group.clone(),
        user: ana.clone(),
        message_id: None,
        text: text.into(),
    };
    let alerts = |out: &[Outbound]| -> Vec<String> {
        out.iter()
            .filter_map(|o| match o {
                Outbound::Text { chat, text, .. } if chat.id == "mods" => Some(text.clone()),
                _ => None,
            })
            .collect()
    };
    app.send(moderate(ModAction::Enable)).await;
    // Off by default.
    let out = app.send(in_group("I want to kill myself")).await;
    assert!(texts(&out)[0].starts_with("GLAD YOU TOLD ME"), "{out:?}");
    assert!(alerts(&out).is_empty());
    // On, without the words.
    app.send(moderate(ModAction::SetAlerts {
        target: Some("mods".into()),
        include_text: false,
    }))
    .await;
    let out = app
        .send(in_group("I took a bunch of pills an hour ago"))
        .await;
    let a = alerts(&out);
    assert_eq!(a.len(), 1, "{out:?}");
    assert!(a[0].contains("imminent"), "{a:?}");
    assert!(!a[0].contains("pills"), "no words unless opted in: {a:?}");
    let pseudonym = app.user("ana").await.unwrap().pseudonym;
    assert!(a[0].contains(&pseudonym), "{a:?}");
    assert!(
        texts(&out)[0].starts_with("EMERGENCY 112"),
        "the person first"
    );
    // Nothing without risk, nothing for direct messages.
    assert!(alerts(&app.send(in_group("thanks, that helps")).await).is_empty());
    assert!(alerts(&app.send(message("ana", "I want to die")).await).is_empty());
    // With the words, when the community opted in.
    app.send(moderate(ModAction::SetAlerts {
        target: Some("mods".into()),
        include_text: true,
    }))
    .await;
    let a = alerts(&app.send(in_group("my dad beats me")).await);
    assert!(a[0].contains("my dad beats me"), "{a:?}");
    // Off again.
    app.send(moderate(ModAction::SetAlerts {
        target: None,
        include_text: false,
    }))
    .await;
    assert!(alerts(&app.send(in_group("I want to end my life")).await).is_empty());
}

/// Telegram's way: a code from the watched group, sent from the moderators' group.
#[tokio::test]
async fn an_alert_group_is_linked_with_a_one_time_code() {
    let app = spawn_app(RESPONSES).await;
    let watched = ChatRef {
        platform: "test".into(),
        id: "g-watched".into(),
        kind: ChatKind::Group,
    };
    let mods = ChatRef {
        platform: "test".into(),
        id: "g-mods".into(),
        kind: ChatKind::Group,
    };
    let (_, moderator) = dm("mo");
    let (_, ana) = dm("ana");
    let moderate = |chat: &ChatRef, action| Inbound::Moderation {
        chat: chat.clone(),
        user: moderator.clone(),
        action,
        interaction: None,
    };
    app.send(moderate(&watched, ModAction::Enable)).await;
    let out = app.send(moderate(&watched, ModAction::LinkAlerts)).await;
    let text = texts(&out).join("\n");
    let code = text
        .split_whitespace()
        .skip_while(|w| *w != "/alerts")
        .nth(1)
        .unwrap()
        .to_string();
    let out = app
        .send(moderate(&mods, ModAction::UseAlertCode("wrongcode".into())))
        .await;
    assert!(texts(&out)[0].contains("unknown"), "{out:?}");
    app.send(moderate(&mods, ModAction::UseAlertCode(code.clone())))
        .await;
    // Used once.
    let out = app
        .send(moderate(&mods, ModAction::UseAlertCode(code)))
        .await;
    assert!(texts(&out)[0].contains("unknown"), "{out:?}");
    let out = app
        .send(Inbound::Message {
            chat: watched.clone(),
            user: ana,
            message_id: None,
            text: "I wrote my goodbye letters today".into(),
        })
        .await;
    assert!(
        out.iter().any(|o| matches!(o, Outbound::Text { chat, text, .. } if chat.id == "g-mods" && text.contains("self_harm"))),
        "{out:?}"
    );
}

/// A crash after a message's platform key was recorded but before its words were stored
/// used to lose the message for good: the redelivery was skipped as already processed.
/// Now the key and the turn are written in one transaction.
#[tokio::test]
async fn a_failure_while_storing_a_message_does_not_mark_it_processed() {
    let app = spawn_app(&[]).await;
    // Storing this text fails, as a crash at that moment would.
    let trigger: &[&str] = if on_postgres() {
        &[
            "CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'simulated crash'; END $$",
            "CREATE TRIGGER fail_once BEFORE INSERT ON turns FOR EACH ROW
             WHEN (NEW.text = 'are you there?') EXECUTE FUNCTION fail_once()",
        ]
    } else {
        &[
            "CREATE TRIGGER fail_once BEFORE INSERT ON turns WHEN NEW.text = 'are you there?'
           BEGIN SELECT RAISE(ABORT, 'simulated crash'); END",
        ]
    };
    for sql in trigger {
        sqlx::query(sql).execute(app.db()).await.unwrap();
    }
    let (chat, user) = dm("ana");
    let event = Inbound::Message {
        chat,
        user,
        message_id: Some("m-42".into()),
        text: "are you there?".into(),
    };
    let (tx, _rx) = tokio::sync::mpsc::channel(64);
    assert!(app.engine.handle(event.clone(), &tx).await.is_err());
    let drop = if on_postgres() {
        "DROP TRIGGER fail_once ON turns"
    } else {
        "DROP TRIGGER fail_once"
    };
    sqlx::query(drop).execute(app.db()).await.unwrap();
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

#[tokio::test]
async fn a_person_who_asks_us_not_to_keep_their_words_is_answered_and_then_erased() {
    let app = spawn_app(&[]).await;
    // An earlier conversation, ended, then the choice.
    app.send(message(
        "ana",
        "my sister and I had a fight about the wedding",
    ))
    .await;
    app.send(command("ana", "end", "")).await;
    let out = app.send(command("ana", "privacy", "")).await;
    assert!(texts(&out)[0].contains("I keep your words"), "{out:?}");
    let out = app.send(command("ana", "privacy", "off")).await;
    assert!(texts(&out)[0].contains("erased now"), "{out:?}");
    assert_eq!(
        app.turns_containing("wedding").await,
        0,
        "the ended conversation's words are erased at once"
    );

    // A new conversation is answered from its live words, and erased when it ends.
    app.send(message("ana", "my exam results came out today"))
        .await;
    let out = app.send(message("ana", "I failed chemistry")).await;
    assert!(!texts(&out).is_empty(), "answered: {out:?}");
    assert_eq!(
        app.turns_containing("chemistry").await,
        1,
        "kept while the conversation is open"
    );
    let ana = app.user("ana").await.unwrap();
    let open = app.engine.store.sessions_of_user(ana.id).await.unwrap();
    let live = open.iter().find(|s| s.ended_at.is_none()).unwrap();
    let context = app.engine.store.turns(live.id).await.unwrap();
    assert!(context.iter().any(|t| t.text.contains("exam results")));
    // A person who keeps their words is untouched, and exported; ana never is.
    app.send(message("ben", "work has been rough this week"))
        .await;
    app.send(command("ben", "end", "")).await;
    let exported = serde_json::to_string(
        &kindred::export::export(
            &app.engine.store,
            &kindred::export::ExportOptions::everything(),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert!(exported.contains("work has been rough"));
    assert!(!exported.contains("chemistry") && !exported.contains("wedding"));
    app.send(command("ana", "end", "")).await;
    assert_eq!(app.turns_containing("chemistry").await, 0);
    assert_eq!(app.turns_containing("exam results").await, 0);
    // Strategies and ratings stay; the choice can be undone.
    let turns: i64 = app
        .engine
        .store
        .sessions_of_user(ana.id)
        .await
        .unwrap()
        .len() as i64;
    assert!(turns >= 2);
    let out = app.send(command("ana", "privacy", "on")).await;
    assert!(texts(&out)[0].contains("keep the words"), "{out:?}");
    let out = app.send(command("ana", "privacy", "maybe")).await;
    assert!(texts(&out)[0].contains("/privacy on"), "{out:?}");
}

#[tokio::test]
async fn mydata_is_the_persons_own_record_and_only_in_a_direct_chat() {
    let app = spawn_app(&[]).await;
    app.send(message("ana", "I keep arguing with my flatmate"))
        .await;
    app.send(message("ben", "my dog is sick")).await;
    let out = app.send(command("ana", "mydata", "")).await;
    let Some(Outbound::File {
        file_name,
        content,
        caption,
        ..
    }) = out.iter().find(|o| matches!(o, Outbound::File { .. }))
    else {
        panic!("no file: {out:?}")
    };
    assert!(file_name.ends_with(".json") && caption.contains("/forget"));
    let record: serde_json::Value = serde_json::from_str(content).unwrap();
    assert!(content.contains("arguing with my flatmate"));
    assert!(!content.contains("my dog is sick"));
    assert_eq!(record["you"]["words_kept"], true);
    let dialog = record["conversations"][0]["dialog"].as_array().unwrap();
    assert!(dialog
        .iter()
        .any(|t| t["speaker"] == "supporter" && t["annotation"]["strategy"].is_string()));
    // Someone who never wrote has nothing stored.
    let out = app.send(command("cleo", "mydata", "")).await;
    assert!(
        !out.iter().any(|o| matches!(o, Outbound::File { .. })),
        "{out:?}"
    );
    // In a shared chat others could read it: only a pointer to the direct chat.
    let group = ChatRef {
        platform: "test".into(),
        id: "g-1".into(),
        kind: ChatKind::Group,
    };
    let out = app
        .send(Inbound::Command {
            chat: group,
            user: crate::helpers::dm("ana").1,
            message_id: None,
            name: "mydata".into(),
            args: String::new(),
            interaction: None,
        })
        .await;
    assert!(
        !out.iter().any(|o| matches!(o, Outbound::File { .. })),
        "{out:?}"
    );
}
