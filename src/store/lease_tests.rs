//! The lease behaviours of the engine contract ([`crate::store::lease`]),
//! run on every engine by `engine_tests`' `for_each_engine!`.

use std::sync::Arc;

use crate::store::lease::LeaseClaim;
use crate::store::Engine;

type Store = Arc<dyn Engine>;

fn claim<'a>(name: &'a str, owner: &'a str, seen: Option<(i64, i64)>) -> LeaseClaim<'a> {
    LeaseClaim {
        name,
        owner,
        seen,
        ttl_ms: 3000,
        streams: "[\"s\"]",
    }
}

pub(super) async fn a_lease_changes_hands_only_from_what_the_claimer_saw(store: Store) {
    assert_eq!(store.leases(Some("h")).await.expect("read"), vec![]);
    assert_eq!(store.claim_lease(&claim("h", "a", None)).await, Ok(Some(1)));
    // a second first claim finds the lease taken
    assert_eq!(store.claim_lease(&claim("h", "b", None)).await, Ok(None));
    let lease = store.leases(Some("h")).await.expect("read").remove(0);
    assert_eq!((lease.owner.as_str(), lease.token, lease.beat), ("a", 1, 1));
    assert_eq!((lease.ttl_ms, lease.streams.as_str()), (3000, "[\"s\"]"));
    assert!(
        lease.renewed_at > 1_700_000_000_000,
        "renewed_at is ms since the epoch"
    );

    assert_eq!(store.renew_lease("h", 1).await, Ok(true));
    // b saw the beat before the renewal: too old
    assert_eq!(
        store.claim_lease(&claim("h", "b", Some((1, 1)))).await,
        Ok(None)
    );
    assert_eq!(
        store.claim_lease(&claim("h", "b", Some((1, 2)))).await,
        Ok(Some(2))
    );
    let lease = store.leases(Some("h")).await.expect("read").remove(0);
    assert_eq!((lease.owner.as_str(), lease.token, lease.beat), ("b", 2, 3));

    // a has lost it: it can neither renew nor move the bookmark
    assert_eq!(store.renew_lease("h", 1).await, Ok(false));
    store.set_bookmark("h", 4).await.expect("set");
    assert_eq!(store.set_bookmark_fenced("h", 9, 1).await, Ok(false));
    assert_eq!(store.get_bookmark("h").await, Ok(4));
    assert_eq!(store.set_bookmark_fenced("h", 10, 2).await, Ok(true));
    assert_eq!(store.get_bookmark("h").await, Ok(10));

    // a release keeps the token and raises the beat; a's release is ignored
    store.release_lease("h", 1).await.expect("stale release");
    assert_eq!(store.leases(Some("h")).await.expect("read")[0].owner, "b");
    store.release_lease("h", 2).await.expect("release");
    let lease = store.leases(Some("h")).await.expect("read").remove(0);
    assert_eq!((lease.owner.as_str(), lease.token, lease.beat), ("", 2, 4));
    assert_eq!(
        store.set_bookmark_fenced("h", 11, 2).await.map(|_| ()),
        Ok(())
    );
    assert_eq!(
        store.claim_lease(&claim("h", "a", Some((2, 4)))).await,
        Ok(Some(3))
    );
    store.close().await;
}

pub(super) async fn a_fenced_write_needs_a_lease(store: Store) {
    assert_eq!(store.set_bookmark_fenced("never", 3, 1).await, Ok(false));
    assert_eq!(store.get_bookmark("never").await, Ok(0));
    // and creates the bookmark under a lease
    assert_eq!(
        store.claim_lease(&claim("new", "a", None)).await,
        Ok(Some(1))
    );
    assert_eq!(store.set_bookmark_fenced("new", 3, 1).await, Ok(true));
    assert_eq!(store.get_bookmark("new").await, Ok(3));
    store.close().await;
}

pub(super) async fn of_concurrent_claims_one_wins(store: Store) {
    for round in 0..8 {
        let name = format!("race{round}");
        let (ca, cb) = (claim(&name, "a", None), claim(&name, "b", None));
        let (a, b) = tokio::join!(store.claim_lease(&ca), store.claim_lease(&cb));
        let won = [a.expect("claim a"), b.expect("claim b")];
        assert_eq!(won.iter().flatten().count(), 1, "round {round}: {won:?}");
        let seen = store.leases(Some(&name)).await.expect("read").remove(0);
        let seen = Some((seen.token, seen.beat));
        let (ca, cb) = (claim(&name, "a", seen), claim(&name, "b", seen));
        let (a, b) = tokio::join!(store.claim_lease(&ca), store.claim_lease(&cb));
        let won = [a.expect("claim a"), b.expect("claim b")];
        assert_eq!(
            won.iter().flatten().collect::<Vec<_>>(),
            vec![&2],
            "round {round}"
        );
    }
    store.close().await;
}

pub(super) async fn lists_bookmarks_leases_and_counts_what_is_behind(store: Store) {
    store.set_bookmark("b1", 2).await.expect("set");
    store.set_bookmark("b0", 0).await.expect("set");
    assert_eq!(
        store.bookmarks().await,
        Ok(vec![("b0".to_string(), 0), ("b1".to_string(), 2)])
    );
    assert_eq!(
        store.claim_lease(&claim("l2", "x", None)).await,
        Ok(Some(1))
    );
    assert_eq!(
        store.claim_lease(&claim("l1", "y", None)).await,
        Ok(Some(1))
    );
    let names: Vec<String> = store
        .leases(None)
        .await
        .expect("leases")
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(names, vec!["l1", "l2"]);

    let json = |n: usize| {
        let items: Vec<_> = (0..n)
            .map(|_| serde_json::json!({"timestamp": 1_700_000_000_000i64, "event": {"type": "t"}}))
            .collect();
        serde_json::Value::Array(items).to_string()
    };
    let a = json(3);
    let events = crate::store::input::parse_new_events(&a).expect("parse");
    let p = store.append("s1", "a", 1, &events).await.expect("append");
    let b = json(2);
    let events = crate::store::input::parse_new_events(&b).expect("parse");
    store.append("s2", "a", 1, &events).await.expect("append");
    let s1 = vec!["s1".to_string()];
    let both = vec!["s1".to_string(), "s2".to_string()];
    assert_eq!(store.count_after(&s1, 0).await, Ok(3));
    assert_eq!(store.count_after(&s1, p[0]).await, Ok(2));
    assert_eq!(store.count_after(&both, 0).await, Ok(5));
    assert_eq!(store.count_after(&["none".to_string()], 0).await, Ok(0));
    store.close().await;
}
