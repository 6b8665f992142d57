//! The ledger's test suite, written once against [`Store`] and run on both
//! backends: SQLite always, PostgreSQL when `TOLLGATE_TEST_POSTGRES_URL`
//! is set (CI sets it). Each PostgreSQL test uses its own schema
//! (`tg_test_<uuid>`), dropped at the end, so parallel tests and reruns
//! never collide.

use std::sync::Arc;

use super::*;

/// A store for one test, with what it needs to clean up.
struct TestStore {
    store: Store,
    _dir: Option<tempfile::TempDir>,
}

fn sqlite_store() -> TestStore {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("ledger.sqlite")).expect("open sqlite");
    TestStore {
        store: Store::Sqlite(store),
        _dir: Some(dir),
    }
}

/// The PostgreSQL test URL, if configured.
pub(crate) fn postgres_url() -> Option<String> {
    std::env::var("TOLLGATE_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

async fn pg_store() -> Option<TestStore> {
    let url = postgres_url()?;
    let schema = format!("tg_test_{}", uuid::Uuid::new_v4().simple());
    let store = PgStore::new(&url, &schema, 16).expect("pg pool");
    store.migrate().await.expect("migrate");
    Some(TestStore {
        store: Store::Postgres(store),
        _dir: None,
    })
}

impl TestStore {
    async fn cleanup(self) {
        if let Store::Postgres(pg) = &self.store {
            pg.drop_schema().await.expect("drop schema");
        }
    }
}

fn amount(s: &str) -> Micros {
    Micros::parse_amount(s).expect("amount")
}

fn new_hold(customer: &str, amount: Micros, token: Option<&str>, now: i64) -> NewHold {
    NewHold {
        id: uuid::Uuid::new_v4().to_string(),
        customer: customer.to_owned(),
        amount,
        currency: "CNY".into(),
        client_token: token.map(str::to_owned),
        fingerprint: "fp".into(),
        request_id: "req".into(),
        action: "CreateInstance".into(),
        product: "oss".into(),
        official: Some(amount),
        provider: Provider::Alibaba,
        provider_ref: None,
        replay_key: None,
        now,
        forward_deadline: now + 10_000,
        expires_at: now + 900_000,
    }
}

async fn consistent(store: &Store, customer: &str) -> Budget {
    match check_consistency(store, customer).await {
        Ok(b) => b,
        Err(e) => panic!("{e}"),
    }
}

// ------------------------------------------------------------------ suite

async fn migrations_are_versioned_and_idempotent(store: &Store) {
    let v = store.migrate().await.expect("migrate");
    assert_eq!(v, schema::latest());
    assert_eq!(store.migrate().await.expect("again"), v);
    assert_eq!(store.schema_version().await.expect("version"), v);
}

async fn budgets_follow_the_reseller_quota_apis(store: &Store) {
    let now = now_ms();
    let b = store
        .create_budget("acme", "CNY", amount("1000.00"), Some("biz-1"), now)
        .await
        .expect("create");
    assert_eq!(
        (b.limit, b.status, b.held),
        (amount("1000"), Status::Normal, Micros::ZERO)
    );
    // The same OutBizId again: idempotent. Another create: -303.
    store
        .create_budget("acme", "CNY", amount("1000.00"), Some("biz-1"), now)
        .await
        .expect("idempotent create");
    assert_eq!(
        store
            .create_budget("acme", "CNY", amount("5"), None, now)
            .await,
        Err(LedgerError::Exists("acme".into()))
    );
    // SetResellerUserQuota overwrites the limit.
    let b = store
        .set_limit("acme", amount("1500"), Some("CNY"), Some("biz-2"), now)
        .await
        .expect("set");
    assert_eq!(b.limit, amount("1500"));
    assert!(matches!(
        store
            .set_limit("acme", amount("1"), Some("USD"), None, now)
            .await,
        Err(LedgerError::Currency { .. })
    ));
    // ChangeResellerConsumeAmount, idempotent on OutBizId.
    let b = store
        .adjust_consumed(
            "acme",
            AdjustType::Increase,
            amount("100.50"),
            "CNY",
            "c-1",
            now,
        )
        .await
        .expect("increase");
    assert_eq!(b.consumed, amount("100.5"));
    let again = store
        .adjust_consumed(
            "acme",
            AdjustType::Increase,
            amount("100.50"),
            "CNY",
            "c-1",
            now,
        )
        .await
        .expect("replayed");
    assert_eq!(again.consumed, amount("100.5"), "not applied twice");
    assert_eq!(
        store
            .adjust_consumed("acme", AdjustType::Decrease, amount("1"), "CNY", "c-1", now)
            .await,
        Err(LedgerError::OutBizConflict("c-1".into()))
    );
    let b = store
        .adjust_consumed(
            "acme",
            AdjustType::Decrease,
            amount("0.50"),
            "CNY",
            "c-2",
            now,
        )
        .await
        .expect("decrease");
    assert_eq!(b.consumed, amount("100"));
    assert_eq!(b.available(), amount("1400"));
    assert_eq!(
        store.budget("nobody").await.expect("read"),
        None,
        "no budget for an unknown customer"
    );
    assert!(matches!(
        store.set_status("nobody", Status::Frozen, now).await,
        Err(LedgerError::NoBudget(_))
    ));
    consistent(store, "acme").await;
}

async fn holds_commit_release_and_refuse(store: &Store) {
    let now = now_ms();
    store
        .create_budget("acme", "CNY", amount("100"), None, now)
        .await
        .expect("create");
    let a = new_hold("acme", amount("60"), None, now);
    assert!(
        matches!(store.reserve(a.clone()).await, Ok(Reserved::New(b)) if b.held == amount("60"))
    );
    // 60 held: 50 more does not fit.
    let b = new_hold("acme", amount("50"), None, now);
    assert_eq!(
        store.reserve(b.clone()).await,
        Err(LedgerError::Insufficient {
            available: amount("40"),
            needed: amount("50"),
            currency: "CNY".into()
        })
    );
    let mut usd = new_hold("acme", amount("1"), None, now);
    usd.currency = "USD".into();
    assert!(matches!(
        store.reserve(usd).await,
        Err(LedgerError::Currency { .. })
    ));
    assert!(matches!(
        store
            .reserve(new_hold("nobody", amount("1"), None, now))
            .await,
        Err(LedgerError::NoBudget(_))
    ));
    // Commit: held → consumed; again with the same order: Already.
    assert_eq!(
        store.commit(&a.id, Some("o-1"), Some("{}"), now).await,
        Ok(Committed::Now)
    );
    assert_eq!(
        store.commit(&a.id, Some("o-1"), None, now).await,
        Ok(Committed::Already)
    );
    assert!(matches!(
        store.commit(&a.id, Some("o-2"), None, now).await,
        Err(LedgerError::NotOpen {
            state: HoldState::Committed,
            ..
        })
    ));
    assert!(matches!(
        store.release(&a.id, "late", false, now).await,
        Err(LedgerError::NotOpen { .. })
    ));
    let budget = store.budget("acme").await.expect("read").expect("budget");
    assert_eq!((budget.consumed, budget.held), (amount("60"), Micros::ZERO));
    // An order is charged once: another hold cannot claim o-1.
    let c = new_hold("acme", amount("10"), None, now);
    store.reserve(c.clone()).await.expect("hold c");
    assert_eq!(
        store.commit(&c.id, Some("o-1"), None, now).await,
        Err(LedgerError::OrderClaimed("o-1".into()))
    );
    // Release frees the amount.
    store
        .release(&c.id, "provider refused", false, now)
        .await
        .expect("release");
    let budget = store.budget("acme").await.expect("read").expect("budget");
    assert_eq!((budget.consumed, budget.held), (amount("60"), Micros::ZERO));
    assert_eq!(
        store.release("no-such-hold", "x", false, now).await,
        Err(LedgerError::NoHold("no-such-hold".into()))
    );
    // Unknown → due for the reconciler after the grace period; expiry.
    let d = new_hold("acme", amount("5"), None, now);
    store.reserve(d.clone()).await.expect("hold d");
    store
        .mark_unknown(&d.id, "timeout", now)
        .await
        .expect("unknown");
    let hold = store.hold(&d.id).await.expect("read").expect("hold");
    assert_eq!(hold.state, HoldState::Unknown);
    assert!(
        store
            .due_holds(now + 999, 1_000, 10)
            .await
            .expect("due")
            .is_empty()
    );
    let due = store.due_holds(now + 1_000, 1_000, 10).await.expect("due");
    assert_eq!(
        due.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
        [d.id.as_str()]
    );
    // A `held` hold past its forward deadline is due too (its process died).
    let e = new_hold("acme", amount("5"), None, now);
    store.reserve(e.clone()).await.expect("hold e");
    let due = store
        .due_holds(e.forward_deadline + 1_000, 1_000, 10)
        .await
        .expect("due");
    assert!(due.iter().any(|h| h.id == e.id));
    let expired = store
        .expired_holds(e.expires_at, 10)
        .await
        .expect("expired");
    assert_eq!(expired.len(), 2);
    store
        .release(&e.id, "expired", true, e.expires_at)
        .await
        .expect("expire");
    assert_eq!(
        store.hold(&e.id).await.expect("read").expect("hold").state,
        HoldState::Expired
    );
    let open = store.holds("acme", true, 100).await.expect("open holds");
    assert_eq!(open.len(), 1);
    assert_eq!(store.holds("acme", false, 100).await.expect("all").len(), 4);
    let claimed = store
        .claimed_orders("acme", vec!["o-1".into(), "o-9".into()])
        .await
        .expect("claimed");
    assert_eq!(claimed, ["o-1"]);
    consistent(store, "acme").await;
}

async fn exactly_n_of_500_concurrent_purchases_fit(store: &Store) {
    const PURCHASES: usize = 500;
    const FIT: usize = 137;
    let now = now_ms();
    let price = amount("12.34");
    let limit = Micros(price.0 * i64::try_from(FIT).unwrap());
    store
        .create_budget("acme", "CNY", limit, None, now)
        .await
        .expect("create");
    let store = Arc::new(store.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..PURCHASES {
        let store = store.clone();
        tasks.spawn(async move {
            let token = format!("token-{i}");
            let h = new_hold("acme", price, Some(&token), now_ms());
            match store.reserve(h.clone()).await {
                Ok(Reserved::New(_)) => {
                    store
                        .commit(&h.id, Some(&format!("order-{i}")), None, now_ms())
                        .await
                        .expect("commit");
                    true
                }
                Err(LedgerError::Insufficient { .. }) => false,
                other => panic!("unexpected {other:?}"),
            }
        });
    }
    let mut ok = 0;
    while let Some(r) = tasks.join_next().await {
        if r.expect("task") {
            ok += 1;
        }
    }
    assert_eq!(ok, FIT, "exactly the purchases that fit succeed");
    let b = consistent(&store, "acme").await;
    assert_eq!((b.consumed, b.held), (limit, Micros::ZERO));
    assert_eq!(b.available(), Micros::ZERO);
}

async fn a_client_token_never_holds_twice(store: &Store) {
    let now = now_ms();
    store
        .create_budget("acme", "CNY", amount("1000"), None, now)
        .await
        .expect("create");
    // Concurrent retries of one purchase: one hold, the others find it.
    let store = Arc::new(store.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .reserve(new_hold("acme", amount("10"), Some("tok-A"), now_ms()))
                .await
                .expect("reserve")
        });
    }
    let mut new = Vec::new();
    let mut existing = Vec::new();
    while let Some(r) = tasks.join_next().await {
        match r.expect("task") {
            Reserved::New(_) => new.push(()),
            Reserved::Existing(h) => existing.push(h.id),
        }
    }
    assert_eq!((new.len(), existing.len()), (1, 19));
    let held = store
        .hold_by_token("acme", "tok-A")
        .await
        .expect("read")
        .expect("hold");
    assert!(existing.iter().all(|id| *id == held.id));
    assert_eq!(
        store.budget("acme").await.unwrap().unwrap().held,
        amount("10")
    );
    // Committed: still found (a retry gets the original).
    store
        .commit(&held.id, Some("o-A"), Some("answer"), now)
        .await
        .expect("commit");
    assert!(matches!(
        store.reserve(new_hold("acme", amount("10"), Some("tok-A"), now)).await,
        Ok(Reserved::Existing(h)) if h.order_id.as_deref() == Some("o-A") && h.answer.as_deref() == Some("answer")
    ));
    // Released: the token may be used again (a new attempt).
    let b = new_hold("acme", amount("10"), Some("tok-B"), now);
    store.reserve(b.clone()).await.expect("hold");
    store
        .release(&b.id, "refused", false, now)
        .await
        .expect("release");
    assert!(matches!(
        store
            .reserve(new_hold("acme", amount("10"), Some("tok-B"), now))
            .await,
        Ok(Reserved::New(_))
    ));
    // Tokens are per customer.
    store
        .create_budget("globex", "CNY", amount("10"), None, now)
        .await
        .expect("create");
    assert!(matches!(
        store
            .reserve(new_hold("globex", amount("10"), Some("tok-A"), now))
            .await,
        Ok(Reserved::New(_))
    ));
    consistent(&store, "acme").await;
    consistent(&store, "globex").await;
}

async fn a_signed_call_holds_once_ever(store: &Store) {
    let now = now_ms();
    store
        .create_budget("acme", "CNY", amount("1000"), None, now)
        .await
        .expect("create");
    let key = crate::ledger::types::replay_key(Provider::Alibaba, "TGACME", "nonce-1");
    let with_key = |k: &str| NewHold {
        replay_key: Some(k.to_owned()),
        ..new_hold("acme", amount("10"), None, now)
    };
    let first = with_key(&key);
    assert!(matches!(
        store.reserve(first.clone()).await,
        Ok(Reserved::New(_))
    ));
    // The same signed call again (after a restart, on another replica):
    // refused, and nothing more is held.
    assert!(matches!(
        store.reserve(with_key(&key)).await,
        Err(LedgerError::Replayed)
    ));
    assert_eq!(
        store.budget("acme").await.unwrap().unwrap().held,
        amount("10")
    );
    // Settled or not, the key stays used.
    store
        .release(&first.id, "refused", false, now)
        .await
        .expect("release");
    assert!(matches!(
        store.reserve(with_key(&key)).await,
        Err(LedgerError::Replayed)
    ));
    // Another nonce of the same key, and holds without a key, are free.
    let other = crate::ledger::types::replay_key(Provider::Alibaba, "TGACME", "nonce-2");
    assert!(matches!(
        store.reserve(with_key(&other)).await,
        Ok(Reserved::New(_))
    ));
    for _ in 0..2 {
        assert!(matches!(
            store
                .reserve(new_hold("acme", amount("1"), None, now))
                .await,
            Ok(Reserved::New(_))
        ));
    }
    consistent(store, "acme").await;
}

async fn copies_of_the_last_affordable_purchase_are_told_it_is_processing(store: &Store) {
    let now = now_ms();
    // Room for exactly one purchase: the copies that lose the race must
    // find the winner's hold, never "not enough balance".
    store
        .create_budget("acme", "CNY", amount("10"), None, now)
        .await
        .expect("create");
    let store = Arc::new(store.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .reserve(new_hold("acme", amount("10"), Some("tok-last"), now_ms()))
                .await
        });
    }
    let (mut new, mut existing) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        match r.expect("task") {
            Ok(Reserved::New(_)) => new += 1,
            Ok(Reserved::Existing(_)) => existing += 1,
            Err(e) => panic!("a copy of the purchase was refused: {e}"),
        }
    }
    assert_eq!((new, existing), (1, 29));
    consistent(&store, "acme").await;
}

async fn frozen_budgets_refuse_purchases_but_read(store: &Store) {
    let now = now_ms();
    store
        .create_budget("acme", "CNY", amount("100"), None, now)
        .await
        .expect("create");
    store
        .set_status("acme", Status::Frozen, now)
        .await
        .expect("freeze");
    assert_eq!(
        store
            .reserve(new_hold("acme", amount("1"), None, now))
            .await,
        Err(LedgerError::NotBuying {
            customer: "acme".into(),
            status: Status::Frozen
        })
    );
    assert_eq!(
        store
            .budget("acme")
            .await
            .expect("read")
            .expect("budget")
            .status,
        Status::Frozen
    );
    store
        .set_status("acme", Status::Normal, now)
        .await
        .expect("thaw");
    store
        .reserve(new_hold("acme", amount("100"), None, now))
        .await
        .expect("fits");
    // Lower the limit below what is held; thawing a frozen budget is then
    // refused (-116) while available < 0.
    store
        .set_limit("acme", amount("50"), None, None, now)
        .await
        .expect("lower");
    store
        .set_status("acme", Status::Trusteeship, now)
        .await
        .expect("host");
    assert_eq!(
        store.set_status("acme", Status::Normal, now).await,
        Err(LedgerError::QuotaNegative("acme".into()))
    );
    consistent(store, "acme").await;
}

async fn alarms_fire_once_per_crossing(store: &Store) {
    let now = now_ms();
    store
        .create_budget("acme", "CNY", amount("1000"), None, now)
        .await
        .expect("create");
    store
        .set_thresholds(
            "acme",
            vec![
                Threshold::Ratio {
                    numerator: 30,
                    denominator: 100,
                },
                Threshold::Amount {
                    micros: amount("100").0,
                },
            ],
            now,
        )
        .await
        .expect("thresholds");
    let kinds = |entries: &[Entry]| {
        entries
            .iter()
            .filter(|e| e.kind.starts_with("alarm"))
            .map(|e| e.kind.clone())
            .collect::<Vec<_>>()
    };
    // 1000 → 750 → 650: no crossing of 300.
    let a = new_hold("acme", amount("250"), None, now);
    store.reserve(a.clone()).await.expect("a");
    store
        .reserve(new_hold("acme", amount("100"), None, now))
        .await
        .expect("b");
    assert!(kinds(&store.entries("acme", 0, 100).await.unwrap()).is_empty());
    // → 250: crosses 300 once; → 200: nothing new.
    let c = new_hold("acme", amount("400"), None, now);
    store.reserve(c.clone()).await.expect("c");
    store
        .reserve(new_hold("acme", amount("50"), None, now))
        .await
        .expect("d");
    assert_eq!(
        kinds(&store.entries("acme", 0, 100).await.unwrap()),
        ["alarm"]
    );
    // The outbox has the crossing; a claim is a lease.
    let claimed = store.claim_alarms(now, 60_000, 10).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    assert!(
        claimed[0].payload.contains("\"kind\":\"ratio\""),
        "{}",
        claimed[0].payload
    );
    // The payload is the budget at the moment of the crossing.
    assert!(
        claimed[0].payload.contains("\"available\":\"250.00\""),
        "{}",
        claimed[0].payload
    );
    assert!(
        store
            .claim_alarms(now, 60_000, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    store
        .alarm_attempted(claimed[0].id, Err("down".into()), now + 1_000, false, now)
        .await
        .expect("attempt");
    let again = store
        .claim_alarms(now + 1_000, 60_000, 10)
        .await
        .expect("claim");
    assert_eq!((again.len(), again[0].attempts), (1, 1));
    store
        .alarm_attempted(again[0].id, Ok(()), 0, false, now + 1_000)
        .await
        .expect("delivered");
    assert!(
        store
            .claim_alarms(i64::MAX - 100_000, 1, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    // Release 400 → 600: re-armed; hold 350 → 250: fires again.
    store
        .release(&c.id, "refused", false, now)
        .await
        .expect("release");
    store
        .reserve(new_hold("acme", amount("350"), None, now))
        .await
        .expect("e");
    assert_eq!(
        kinds(&store.entries("acme", 0, 100).await.unwrap()),
        ["alarm", "alarm_rearm", "alarm"]
    );
    // An operator increase of consumption crosses the amount threshold.
    store
        .adjust_consumed("acme", AdjustType::Increase, amount("200"), "CNY", "x", now)
        .await
        .expect("increase");
    assert_eq!(
        kinds(&store.entries("acme", 0, 100).await.unwrap()),
        ["alarm", "alarm_rearm", "alarm", "alarm"]
    );
    assert_eq!(
        store
            .claim_alarms(now, 60_000, 10)
            .await
            .expect("claim")
            .len(),
        2
    );
    consistent(store, "acme").await;
}

async fn the_entry_log_recomputes_every_balance(store: &Store) {
    let now = now_ms();
    store
        .create_budget("acme", "CNY", amount("500"), None, now)
        .await
        .expect("create");
    let mut ids = Vec::new();
    for i in 0..30 {
        let h = new_hold("acme", amount("7.25"), None, now);
        store.reserve(h.clone()).await.expect("hold");
        match i % 3 {
            0 => {
                store
                    .commit(&h.id, Some(&format!("o{i}")), None, now)
                    .await
                    .expect("commit");
            }
            1 => store
                .release(&h.id, "refused", false, now)
                .await
                .expect("release"),
            _ => store
                .mark_unknown(&h.id, "timeout", now)
                .await
                .expect("unknown"),
        }
        ids.push(h.id);
    }
    store
        .set_limit("acme", amount("400"), None, None, now)
        .await
        .expect("set");
    store
        .adjust_consumed(
            "acme",
            AdjustType::Decrease,
            amount("3.5"),
            "CNY",
            "top-up",
            now,
        )
        .await
        .expect("decrease");
    let b = consistent(store, "acme").await;
    assert_eq!(b.consumed, Micros(amount("7.25").0 * 10 - amount("3.5").0));
    assert_eq!(b.held, Micros(amount("7.25").0 * 10));
    // Every entry's balances-after equal the running sums of the deltas.
    let entries = store.entries("acme", 0, 1_000).await.expect("entries");
    let (mut l, mut c, mut h) = (0, 0, 0);
    for e in &entries {
        l += e.limit_delta.0;
        c += e.consumed_delta.0;
        h += e.held_delta.0;
        assert_eq!(
            (e.limit_after.0, e.consumed_after.0, e.held_after.0),
            (l, c, h),
            "entry {} ({})",
            e.id,
            e.kind
        );
    }
    // Paging by id.
    let first = store.entries("acme", 0, 5).await.expect("page");
    let next = store.entries("acme", first[4].id, 5).await.expect("page");
    assert_eq!(next[0].id, entries[5].id);
}

async fn huawei_holds_record_what_to_ask_and_wait_for_an_answer(store: &Store) {
    use reconcile_huawei::HuaweiRef;
    let now = now_ms();
    store
        .create_budget("acme", "CNY", amount("100"), None, now)
        .await
        .expect("create");
    let asked = HuaweiRef {
        domain_id: "0a7c3b2f3d80d4a20f7ac004cbdeaf1b".into(),
        order_id: Some("CS2405010830ABCDE".into()),
        resource_ids: Vec::new(),
    };
    let mut pay = new_hold("acme", amount("35"), None, now - 10_000);
    pay.action = "PayOrders".into();
    pay.product = "huawei-bss".into();
    pay.provider = Provider::Huawei;
    pay.provider_ref = Some(asked.to_json());
    let mut old = pay.clone();
    old.id = uuid::Uuid::new_v4().to_string();
    old.amount = amount("5");
    old.expires_at = now - 1;
    let ali = new_hold("acme", amount("7"), None, now - 10_000);
    for h in [&pay, &old, &ali] {
        store.reserve(h.clone()).await.expect("hold");
        store
            .mark_unknown(&h.id, "timeout", now - 5_000)
            .await
            .expect("unknown");
    }
    // The provider and what to ask are stored as given; Alibaba's need no
    // reference.
    let got = store.hold(&pay.id).await.expect("read").expect("hold");
    assert_eq!(
        (
            got.provider,
            got.provider_ref.as_deref().and_then(HuaweiRef::parse)
        ),
        (Provider::Huawei, Some(asked))
    );
    let got = store.hold(&ali.id).await.expect("read").expect("hold");
    assert_eq!((got.provider, got.provider_ref), (Provider::Alibaba, None));

    // A pass that cannot ask either provider settles nothing it could
    // still ask about later, and expires what is past its expiry.
    let ledger = Ledger::with_store(
        store.clone(),
        Settings {
            hold_expiry: std::time::Duration::from_secs(900),
            reconcile_interval: std::time::Duration::from_millis(100),
            reconcile_grace: std::time::Duration::from_millis(1_000),
            payg_hold_hours: 1,
            default_budget: None,
            initial_budgets: Vec::new(),
        },
        alarms::Webhooks::new(&[]).expect("no webhooks"),
        [("acme".to_owned(), "2000000000000001".to_owned())],
        crate::metrics::Metrics::new(),
    );
    let report = ledger
        .reconcile_once(&reconcile::ProviderAccess::default())
        .await
        .expect("pass");
    assert_eq!(
        (report.committed, report.released, report.expired),
        (0, 0, 1),
        "{report:?}"
    );
    let state =
        |id: String| async move { store.hold(&id).await.expect("read").expect("hold").state };
    assert_eq!(state(pay.id.clone()).await, HoldState::Unknown);
    assert_eq!(state(ali.id.clone()).await, HoldState::Unknown);
    assert_eq!(state(old.id.clone()).await, HoldState::Expired);
    let b = consistent(store, "acme").await;
    assert_eq!((b.consumed, b.held), (Micros::ZERO, amount("42")));
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let t = super::sqlite_store();
                    super::$name(&t.store).await;
                }
            )*
        }
        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(t) = super::pg_store().await else {
                        eprintln!("PostgreSQL test not run: TOLLGATE_TEST_POSTGRES_URL is not set");
                        return;
                    };
                    super::$name(&t.store).await;
                    t.cleanup().await;
                }
            )*
        }
    };
}

on_both_backends!(
    migrations_are_versioned_and_idempotent,
    budgets_follow_the_reseller_quota_apis,
    holds_commit_release_and_refuse,
    exactly_n_of_500_concurrent_purchases_fit,
    a_client_token_never_holds_twice,
    a_signed_call_holds_once_ever,
    copies_of_the_last_affordable_purchase_are_told_it_is_processing,
    frozen_budgets_refuse_purchases_but_read,
    alarms_fire_once_per_crossing,
    the_entry_log_recomputes_every_balance,
    huawei_holds_record_what_to_ask_and_wait_for_an_answer,
);

#[tokio::test]
async fn a_second_process_cannot_open_a_sqlite_ledger_in_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.sqlite");
    let first = SqliteStore::open(&path).expect("first");
    first.schema_version().await.expect("in use");
    // The writer holds the exclusive lock once it has written; a second
    // opener (same process, other connection) is refused, not shared.
    let store = Store::Sqlite(first);
    store
        .create_budget("acme", "CNY", amount("1"), None, now_ms())
        .await
        .expect("write");
    assert!(SqliteStore::open(&path).is_err());
}

#[tokio::test]
async fn sqlite_commits_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.sqlite");
    {
        let store = Store::Sqlite(SqliteStore::open(&path).expect("open"));
        store
            .create_budget("acme", "CNY", amount("10"), None, now_ms())
            .await
            .expect("create");
        let h = new_hold("acme", amount("4"), Some("t"), now_ms());
        store.reserve(h.clone()).await.expect("hold");
        store
            .commit(&h.id, Some("o"), None, now_ms())
            .await
            .expect("commit");
    }
    // The writer thread ends when its last handle is gone; give it a moment.
    let mut reopened = None;
    for _ in 0..50 {
        if let Ok(s) = SqliteStore::open(&path) {
            reopened = Some(s);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let store = Store::Sqlite(reopened.expect("reopen"));
    let b = consistent(&store, "acme").await;
    assert_eq!(b.consumed, amount("4"));
}

/// The reconciler against the simulated cloud, deterministically: one
/// pending hold whose order the cloud made (its answer never reached the
/// gateway) is committed to that order; one whose call never took effect
/// is released; an expired one the cloud cannot be asked about expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciler_commits_found_orders_and_releases_the_rest() {
    use crate::aliyun::outbound::SigningKey;
    use crate::client::AliyunClient;
    use crate::config::OutboundScheme;

    const ACME_UID: &str = "2000000000000001";
    let policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let sim = crate::sim::spawn(
        crate::sim::SimConfig::load(&policies.join("sim.toml")).expect("sim config"),
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("sim");
    let partner_secret = std::fs::read_to_string(policies.join("secrets/partner-aliyun.secret"))
        .expect("secret")
        .trim()
        .to_owned();
    // The purchase reached the cloud, but its answer was lost.
    let partner = AliyunClient::new(
        &sim.addr.to_string(),
        "TGPARTNERDEMOKEY01",
        &partner_secret,
        OutboundScheme::Rpc,
    );
    let made = partner
        .call(
            "CreateInstance",
            "2017-12-14",
            &[
                ("OwnerId", ACME_UID),
                ("ProductCode", "oss"),
                ("SubscriptionType", "Subscription"),
                ("Period", "12"),
                ("Parameter.1.Code", "PackageCode"),
                ("Parameter.1.Value", "standard_500G"),
            ],
        )
        .await
        .expect("create");
    let order = made.json["Data"]["OrderId"]
        .as_str()
        .expect("order")
        .to_owned();

    let t = sqlite_store();
    let settings = Settings {
        hold_expiry: std::time::Duration::from_secs(900),
        reconcile_interval: std::time::Duration::from_millis(100),
        reconcile_grace: std::time::Duration::from_millis(1_000),
        payg_hold_hours: 1,
        default_budget: None,
        initial_budgets: vec![("acme".into(), (amount("1000"), "CNY".into()))],
    };
    let ledger = Ledger::with_store(
        t.store.clone(),
        settings,
        alarms::Webhooks::new(&[]).expect("no webhooks"),
        [("acme".to_owned(), ACME_UID.to_owned())],
        crate::metrics::Metrics::new(),
    );
    ledger.ready().await.expect("ready");
    let now = now_ms();
    let mut found = new_hold("acme", amount("91.80"), Some("lost-answer"), now - 10_000);
    found.official = Some(amount("91.80"));
    let mut missing = new_hold("acme", amount("91.80"), Some("never-arrived"), now - 9_000);
    missing.official = Some(amount("91.80"));
    for h in [&found, &missing] {
        t.store.reserve(h.clone()).await.expect("hold");
        t.store
            .mark_unknown(&h.id, "timeout", now - 5_000)
            .await
            .expect("unknown");
    }
    let forwarder = crate::upstream::Forwarder::new(std::time::Duration::from_secs(2), 1 << 20);
    let bss = crate::upstream::Upstream {
        product: "bssopenapi".into(),
        authority: sim.addr.to_string(),
        scheme: OutboundScheme::Rpc,
        timeout: std::time::Duration::from_secs(5),
    };
    let access = reconcile::ProviderAccess {
        alibaba: Some(reconcile::AlibabaAccess {
            forwarder: &forwarder,
            key: SigningKey {
                access_key_id: "TGPARTNERDEMOKEY01",
                secret: &partner_secret,
            },
            bss: &bss,
        }),
        huawei: None,
    };
    let report = ledger.reconcile_once(&access).await.expect("pass");
    assert_eq!((report.committed, report.released), (1, 1), "{report:?}");
    let h = t.store.hold(&found.id).await.unwrap().unwrap();
    assert_eq!(
        (h.state, h.order_id.as_deref()),
        (HoldState::Committed, Some(order.as_str()))
    );
    let m = t.store.hold(&missing.id).await.unwrap().unwrap();
    assert_eq!(m.state, HoldState::Released);
    // Nothing more to do on the next pass.
    assert_eq!(
        ledger.reconcile_once(&access).await.expect("pass"),
        reconcile::PassReport::default()
    );

    // An expired hold while the cloud cannot be asked: expired, amount freed.
    let mut old = new_hold("acme", amount("5"), None, now - 2_000_000);
    old.expires_at = now - 1;
    t.store.reserve(old.clone()).await.expect("hold");
    sim.shutdown().await;
    let report = ledger.reconcile_once(&access).await.expect("pass");
    assert_eq!(report.expired, 1, "{report:?}");
    assert_eq!(
        t.store.hold(&old.id).await.unwrap().unwrap().state,
        HoldState::Expired
    );
    let b = consistent(&t.store, "acme").await;
    assert_eq!((b.consumed, b.held), (amount("91.80"), Micros::ZERO));
}

/// What a version-1 ledger holds before the upgrade to version 2: a budget,
/// an Alibaba hold and a Huawei guard's hold (product `huawei-bss`).
const V1_ROWS: &str = "
INSERT INTO budgets (customer, currency, credit_limit, consumed, held, created_at, updated_at)
    VALUES ('acme', 'CNY', 100000000, 0, 42000000, 1, 1);
INSERT INTO holds (id, customer, amount, currency, fingerprint, request_id, action, product, state,
                   created_at, forward_deadline, expires_at)
    VALUES ('ali', 'acme', 7000000, 'CNY', 'fp', 'r', 'CreateInstance', 'oss', 'unknown', 1, 2, 3),
           ('hw', 'acme', 35000000, 'CNY', 'fp', 'r', 'PayOrders', 'huawei-bss', 'unknown', 1, 2, 3);
";

/// After the upgrade: the holds know their provider (the Huawei guard's by
/// its product), with nothing recorded to ask (so the reconciler defers
/// them until their expiry rather than asking the wrong cloud).
async fn the_upgrade_knows_which_holds_are_huawei(store: &Store) {
    assert_eq!(
        store.schema_version().await.expect("version"),
        schema::latest()
    );
    let read = |id: &'static str| async move { store.hold(id).await.expect("read").expect("hold") };
    let ali = read("ali").await;
    assert_eq!((ali.provider, ali.provider_ref), (Provider::Alibaba, None));
    let hw = read("hw").await;
    assert_eq!(
        (hw.provider, hw.provider_ref, hw.state, hw.amount),
        (Provider::Huawei, None, HoldState::Unknown, amount("35"))
    );
    // New holds take the new columns.
    let mut h = new_hold("acme", amount("1"), None, now_ms());
    h.provider = Provider::Huawei;
    h.provider_ref = Some("{\"domain_id\":\"d\",\"order_id\":\"o\"}".into());
    store.reserve(h.clone()).await.expect("hold");
    let got = store.hold(&h.id).await.expect("read").expect("hold");
    assert_eq!(
        (got.provider, got.provider_ref),
        (h.provider, h.provider_ref)
    );
}

#[tokio::test]
async fn a_version_1_sqlite_ledger_is_upgraded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.sqlite");
    {
        let c = rusqlite::Connection::open(&path).expect("open");
        c.execute_batch(schema::VERSION_TABLE)
            .expect("version table");
        c.execute_batch(schema::SQLITE[0].sql).expect("v1");
        c.execute(
            "INSERT INTO schema_version (version, name, applied_at) VALUES (1, 'initial', 0)",
            [],
        )
        .expect("v1 row");
        c.execute_batch(V1_ROWS).expect("rows");
    }
    let store = Store::Sqlite(SqliteStore::open(&path).expect("upgrade"));
    the_upgrade_knows_which_holds_are_huawei(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_postgres_ledger_is_upgraded() {
    let Some(url) = postgres_url() else {
        eprintln!("PostgreSQL test not run: TOLLGATE_TEST_POSTGRES_URL is not set");
        return;
    };
    let ns = format!("tg_test_{}", uuid::Uuid::new_v4().simple());
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let conn = tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE SCHEMA {ns}; SET search_path TO {ns};"))
        .await
        .expect("schema");
    client
        .batch_execute(schema::VERSION_TABLE)
        .await
        .expect("version table");
    client
        .batch_execute(schema::POSTGRES[0].sql)
        .await
        .expect("v1");
    client
        .batch_execute(
            "INSERT INTO schema_version (version, name, applied_at) VALUES (1, 'initial', 0)",
        )
        .await
        .expect("v1 row");
    client.batch_execute(V1_ROWS).await.expect("rows");
    drop(client);
    let _ = conn.await;
    let pg = PgStore::new(&url, &ns, 4).expect("pg pool");
    pg.migrate().await.expect("upgrade");
    let t = TestStore {
        store: Store::Postgres(pg),
        _dir: None,
    };
    the_upgrade_knows_which_holds_are_huawei(&t.store).await;
    t.cleanup().await;
}
