//! Several instances on one database: heartbeats, leases, and the claims by which the
//! replies and rating questions of a stopped instance are sent by exactly one other.

use super::*;

/// Makes `instance`'s last heartbeat `ago_ms` old.
async fn beat_ago(store: &Store, instance: &str, ago_ms: i64) {
    sqlx::query("UPDATE instances SET heartbeat_at = $1 WHERE id = $2")
        .bind(kindred::store::now_ms() - ago_ms)
        .bind(instance)
        .execute(store.pool())
        .await
        .unwrap();
}

pub(super) async fn leases_are_held_by_one_live_instance(store: &Store) {
    store.heartbeat("a").await.unwrap();
    store.heartbeat("b").await.unwrap();
    assert!(store.try_lease("person:p", "a", 60_000).await.unwrap());
    assert!(!store.try_lease("person:p", "b", 60_000).await.unwrap());
    // Renewing one's own lease works; another lease is independent.
    assert!(store.try_lease("person:p", "a", 60_000).await.unwrap());
    assert!(store.try_lease("person:q", "b", 60_000).await.unwrap());
    // Released: the other may take it.
    store.release_lease("person:p", "a").await.unwrap();
    assert!(store.try_lease("person:p", "b", 60_000).await.unwrap());
    assert!(!store.try_lease("person:p", "a", 60_000).await.unwrap());
    // An instance whose heartbeat stopped holds nothing.
    beat_ago(store, "b", kindred::store::ALIVE_MS + 1_000).await;
    assert_eq!(store.dead_instances().await.unwrap(), ["b"]);
    assert!(store.try_lease("person:p", "a", 60_000).await.unwrap());
    // An expired lease is free too.
    assert!(store.try_lease("leader", "a", -1).await.unwrap());
    store.heartbeat("c").await.unwrap();
    assert!(store.try_lease("leader", "c", 60_000).await.unwrap());
    // Orphaned events: stored, unhandled, and nobody live holds the person.
    store
        .inbox_insert("telegram", "u:9", "{}", Some("p"))
        .await
        .unwrap();
    store
        .inbox_insert("telegram", "u:10", "{}", Some("r"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    // p is held by a (alive); r by nobody.
    assert_eq!(store.people_with_orphaned_events(10).await.unwrap(), ["r"]);
    store.remove_instance("a").await.unwrap();
    let mut orphaned = store.people_with_orphaned_events(10).await.unwrap();
    orphaned.sort();
    assert_eq!(orphaned, ["p", "r"]);
}

pub(super) async fn pending_replies_of_stopped_instances_are_claimed_once(store: &Store) {
    let u = store.get_or_create_user("telegram", "20").await.unwrap();
    let s = store
        .create_session(u.id, &ChatRef::direct("telegram", "c20"), Stage::Chatting)
        .await
        .unwrap();
    let t = store
        .add_turn(
            s.id,
            NewTurn {
                speaker: Speaker::Supporter,
                text: "pending",
                source: TurnSource::Model,
                delivery: Delivery::Pending,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let owner = store.instance().unwrap_or("sqlite-owner").to_string();
    sqlx::query("UPDATE turns SET claimed_by = $1 WHERE id = $2")
        .bind(&owner)
        .bind(t.id)
        .execute(store.pool())
        .await
        .unwrap();
    store.heartbeat(&owner).await.unwrap();
    store.heartbeat("other").await.unwrap();
    // Its instance is alive: nobody else takes it, and its own take-over of another
    // instance's work does not send it a second time.
    assert!(store.claim_pending_turns("other").await.unwrap().is_empty());
    assert!(store.claim_pending_turns(&owner).await.unwrap().is_empty());
    beat_ago(store, &owner, kindred::store::ALIVE_MS + 1_000).await;
    let claimed = store.claim_pending_turns("other").await.unwrap();
    assert_eq!(claimed.iter().map(|t| t.id).collect::<Vec<_>>(), [t.id]);
    store.heartbeat("third").await.unwrap();
    assert!(
        store.claim_pending_turns("third").await.unwrap().is_empty(),
        "claimed by a live instance now"
    );
    store.mark_delivered(t.id, Some("m")).await.unwrap();
    assert!(store.claim_pending_turns("other").await.unwrap().is_empty());
}

pub(super) async fn unsent_rating_questions_of_stopped_instances_are_claimed_once(store: &Store) {
    let u = store.get_or_create_user("telegram", "21").await.unwrap();
    let s = store
        .create_session(u.id, &ChatRef::direct("telegram", "c21"), Stage::Chatting)
        .await
        .unwrap();
    let mut replies = Vec::new();
    for text in ["one", "two"] {
        let t = store
            .add_turn(
                s.id,
                NewTurn {
                    speaker: Speaker::Supporter,
                    text,
                    source: TurnSource::Model,
                    delivery: Delivery::Delivered,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        replies.push(t.id);
    }
    let p = store
        .create_rating_prompt(s.id, replies[0], replies[1])
        .await
        .unwrap();
    // A shared store claims it for itself as it records it.
    let owner = match store.instance() {
        Some(me) => me.to_string(),
        None => {
            sqlx::query("UPDATE rating_prompts SET claimed_by = 'sqlite-owner' WHERE id = $1")
                .bind(p.id)
                .execute(store.pool())
                .await
                .unwrap();
            "sqlite-owner".to_string()
        }
    };
    store.heartbeat(&owner).await.unwrap();
    store.heartbeat("other").await.unwrap();
    let ids = |v: Vec<kindred::store::RatingPrompt>| v.iter().map(|p| p.id).collect::<Vec<_>>();
    assert!(store
        .claim_unsent_rating_prompts("other")
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .claim_unsent_rating_prompts(&owner)
        .await
        .unwrap()
        .is_empty());
    beat_ago(store, &owner, kindred::store::ALIVE_MS + 1_000).await;
    assert_eq!(
        ids(store.claim_unsent_rating_prompts("other").await.unwrap()),
        [p.id]
    );
    store.heartbeat("third").await.unwrap();
    assert!(store
        .claim_unsent_rating_prompts("third")
        .await
        .unwrap()
        .is_empty());
    // Once sent (or answered) it is nobody's to send again, whoever stops.
    store.set_prompt_message_id(p.id, "m").await.unwrap();
    beat_ago(store, "other", kindred::store::ALIVE_MS + 1_000).await;
    assert!(store
        .claim_unsent_rating_prompts("third")
        .await
        .unwrap()
        .is_empty());
}
