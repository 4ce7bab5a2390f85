//! Crisis care through the engine: each kind of risk brings its response before (and
//! whatever) the model says, and moderators hear of it only as they chose.

use crate::helpers::*;
use kindred::domain::TurnSource;
use kindred_adapter::{Attachment, ChatRef, Inbound, ModAction, Outbound};

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
    let turns = app.turns_of("ana").await;
    let first_reply = turns.iter().find(|t| t.source == TurnSource::Model);
    let s = first_reply.unwrap().strategy.clone().unwrap();
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
        first_text
            .1
            .unwrap()
            .starts_with(kindred_adapter::CARE_PREFIX),
        "recorded as a turn, and marked as crisis resources (sent ahead of others)"
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

/// Moderators who ask for it hear that someone in their shared chat may be at risk:
/// without the person's words unless the community opted in, never when off, never for
/// direct messages; the person gets the crisis response either way.
#[tokio::test]
async fn escalation_reaches_the_alert_chat_only_as_the_moderators_chose() {
    let app = spawn_app(RESPONSES).await;
    let group = ChatRef::group("test", "g-1", None);
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

/// A community's alerts (a Discord server's) cover every chat in it, whichever chat the
/// moderator set them from, also for a message answered only after a restart.
#[tokio::test]
async fn a_communitys_alerts_cover_all_its_chats_also_after_a_restart() {
    let app = spawn_app(RESPONSES).await;
    let server = Some("server-1".to_string());
    let (settings_chat, ana_chat) = (
        ChatRef::group("test", "g-a", server.clone()),
        ChatRef::group("test", "g-b", server.clone()),
    );
    let elsewhere = ChatRef::group("test", "g-c", Some("server-2".into()));
    let (_, ana) = dm("ana");
    let (_, moderator) = dm("mo");
    let moderate = |chat: &ChatRef, action| Inbound::Moderation {
        chat: chat.clone(),
        user: moderator.clone(),
        action,
        interaction: Some("1:mod".into()),
    };
    let said = |chat: &ChatRef, text: &str| Inbound::Message {
        chat: chat.clone(),
        user: ana.clone(),
        message_id: None,
        text: text.into(),
    };
    let alerts = |out: &[Outbound]| -> usize {
        out.iter()
            .filter(|o| matches!(o, Outbound::Text { chat, .. } if chat.id == "mods"))
            .count()
    };
    for chat in [&settings_chat, &ana_chat, &elsewhere] {
        app.send(moderate(chat, ModAction::Enable)).await;
    }
    app.send(moderate(
        &settings_chat,
        ModAction::SetAlerts {
            target: Some("mods".into()),
            include_text: false,
        },
    ))
    .await;
    assert_eq!(alerts(&app.send(said(&ana_chat, "I want to die")).await), 1);
    assert_eq!(
        alerts(&app.send(said(&elsewhere, "I want to die")).await),
        0
    );
    // Stored in ana's chat of server-1, then a crash before it was answered.
    let u = app.user("ana").await.unwrap();
    let session = app
        .engine
        .store
        .open_session(u.id, "test", "g-b")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.chat_community, server);
    app.engine
        .store
        .add_turn(
            session.id,
            kindred::store::NewTurn {
                text: "I took a bunch of pills an hour ago",
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let app = restart(app, RESPONSES).await;
    let out = app.recover().await;
    assert_eq!(alerts(&out), 1, "{out:?}");
}

/// Telegram's way: a code from the watched group, sent from the moderators' group.
#[tokio::test]
async fn an_alert_group_is_linked_with_a_one_time_code() {
    let app = spawn_app(RESPONSES).await;
    let watched = ChatRef::group("test", "g-watched", None);
    let mods = ChatRef::group("test", "g-mods", None);
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

/// When the database refuses the person's words (locked by another process, down), the
/// screen still reads them: a person at risk gets the resources at once, ahead of the
/// sending budget, and then the "try again"; anyone else gets only the "try again".
#[tokio::test]
async fn the_resources_go_out_even_when_the_database_refuses_the_message() {
    let mut settings = RESPONSES.to_vec();
    settings.push(("KINDRED__STORAGE__BUSY_TIMEOUT_MS", "100"));
    let app = spawn_app(&settings).await;
    app.send(message("ana", "hello")).await;
    let lock = app.lock_database().await;
    let handle = |text: &'static str| {
        let engine = app.engine.clone();
        async move {
            let (tx, mut rx) = tokio::sync::mpsc::channel(16);
            let result = engine.handle(message("ana", text), &tx).await;
            drop(tx);
            let mut said = Vec::new();
            while let Some(o) = rx.recv().await {
                said.push(o);
            }
            (result, said)
        }
    };
    let (result, said) = handle("honestly I want to kill myself").await;
    assert!(result.is_err(), "the database was locked");
    let sent: Vec<(Option<String>, String)> = said
        .iter()
        .filter_map(|o| match o {
            Outbound::Text { id, text, .. } => Some((id.clone(), text.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0].1, "GLAD YOU TOLD ME\n\nCALL 988 NOW");
    assert!(
        sent[0]
            .0
            .as_deref()
            .is_some_and(|id| id.starts_with(kindred_adapter::CARE_PREFIX)),
        "sent as crisis resources, ahead of the budget: {sent:?}"
    );
    assert!(sent[1].1.contains("try again"), "{sent:?}");
    let (_, said) = handle("are you there?").await;
    let plain = texts(&said);
    assert!(
        plain.len() == 1 && plain[0].contains("try again"),
        "{plain:?}"
    );
    lock.release().await;
}
