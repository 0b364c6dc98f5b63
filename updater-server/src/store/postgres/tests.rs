//! The PostgreSQL store against a real server: the database named by
//! `UPDATER_TEST_POSTGRES` (set in `.cargo/config.toml`; `scripts/test-suite
//! --install` starts it), one fresh schema per test.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::json;

use super::schema::{self, first_schema};
use super::{prefix_end, PgStore};
use crate::store::{conformance, Key, Op, Store, StoreError, Table};

fn test_url() -> String {
    std::env::var("UPDATER_TEST_POSTGRES").expect(
        "UPDATER_TEST_POSTGRES is unset: run the tests through cargo (.cargo/config.toml sets it)",
    )
}

fn fresh_schema() -> String {
    let mut bytes = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    format!("test_{}", hex::encode(bytes))
}

fn open(schema: &str) -> PgStore {
    let url = test_url();
    PgStore::open(&url, Some(schema), 4).unwrap_or_else(|e| {
        panic!(
            "the PostgreSQL store tests need the database {url}: {e}\n\
             start and set it up with: sudo scripts/test-suite --install --no-test"
        )
    })
}

fn store() -> PgStore {
    open(&fresh_schema())
}

#[test]
fn conformance_suite() {
    conformance(&store());
}

#[test]
fn survives_reopen_and_is_shared_between_handles() {
    let schema = fresh_schema();
    let (a, b) = (open(&schema), open(&schema));
    a.commit(vec![Op::Insert(
        Table::Tenants,
        Key::new("t1", ""),
        json!({"name": "x"}),
    )])
    .unwrap();
    assert_eq!(
        b.get(Table::Tenants, &Key::new("t1", "")).unwrap(),
        Some(json!({"name": "x"}))
    );
    assert_eq!(b.count(Table::Tenants).unwrap(), 1);
    drop((a, b));
    // A third start applies no migration twice.
    let c = open(&schema);
    assert_eq!(c.list(Table::Tenants, None).unwrap().len(), 1);
    let versions = migration_versions(&c);
    assert_eq!(versions, (1..=schema::latest()).collect::<Vec<_>>());
}

fn migration_versions(store: &PgStore) -> Vec<i32> {
    let pool = store.pool.clone();
    store
        .block(async move {
            let client = pool.get().await.map_err(super::backend)?;
            let rows = client
                .query(
                    "SELECT version FROM schema_migrations ORDER BY version",
                    &[],
                )
                .await
                .map_err(super::backend)?;
            Ok(rows.iter().map(|r| r.get::<_, i32>(0)).collect())
        })
        .unwrap()
}

#[test]
fn a_database_migrated_by_a_newer_server_is_refused() {
    let schema = fresh_schema();
    let store = open(&schema);
    let pool = store.pool.clone();
    store
        .block(async move {
            let client = pool.get().await.map_err(super::backend)?;
            client
                .execute(
                    "INSERT INTO schema_migrations (version, what) VALUES (999, 'future')",
                    &[],
                )
                .await
                .map_err(super::backend)
        })
        .unwrap();
    let err = PgStore::open(&test_url(), Some(&schema), 1).unwrap_err();
    assert!(
        err.to_string()
            .contains("version 999, newer than this server's"),
        "{err}"
    );
}

#[test]
fn concurrent_inserts_of_the_same_keys_store_each_once() {
    let schema = fresh_schema();
    // Two pools, as two server nodes would have.
    let nodes = [Arc::new(open(&schema)), Arc::new(open(&schema))];
    let conflicts = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..6 {
            let node = Arc::clone(&nodes[t % 2]);
            let conflicts = &conflicts;
            s.spawn(move || {
                for i in 0..40 {
                    let op = Op::Insert(
                        Table::Unique,
                        Key::new("t", format!("event:a:{i}")),
                        json!({ "by": t }),
                    );
                    match node.commit(vec![op]) {
                        Ok(()) => {}
                        Err(StoreError::Conflict { .. }) => {
                            conflicts.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            });
        }
    });
    assert_eq!(nodes[0].count(Table::Unique).unwrap(), 40);
    assert_eq!(conflicts.load(Ordering::Relaxed), 5 * 40);
}

/// Inserts of rollout members `{prefix}{i:06}` = `i` for `i` in `0..n`.
fn members(prefix: &str, n: usize) -> impl Iterator<Item = Op> + '_ {
    (0..n).map(move |i| {
        Op::Insert(
            Table::RolloutMembers,
            Key::new("t", format!("{prefix}{i:06}")),
            json!(i),
        )
    })
}

#[test]
fn prefix_scans_page_through_more_than_one_round_trip() {
    let store = store();
    let n = super::SCAN_PAGE as usize + 25;
    store
        .commit(
            members("r1/", n)
                .chain([
                    Op::Insert(Table::RolloutMembers, Key::new("t", "r1"), json!("x")),
                    Op::Insert(Table::RolloutMembers, Key::new("t", "r10/a"), json!("x")),
                ])
                .collect(),
        )
        .unwrap();
    let mut seen = Vec::new();
    store
        .scan_prefix(Table::RolloutMembers, "t", "r1/", &mut |id, text| {
            seen.push((id.to_owned(), text.to_owned()));
            Ok(())
        })
        .unwrap();
    assert_eq!(seen.len(), n);
    assert!(seen
        .iter()
        .enumerate()
        .all(|(i, (id, text))| *id == format!("r1/{i:06}") && *text == i.to_string()));
}

#[test]
fn a_scan_stopped_by_its_visitor_leaves_the_store_working() {
    // The next page is already being fetched when the visitor fails.
    let store = store();
    let n = 2 * super::SCAN_PAGE as usize + 1;
    store.commit(members("m/", n).collect()).unwrap();
    let mut visited = 0;
    let stopped = store.scan_prefix(Table::RolloutMembers, "t", "m/", &mut |_, _| {
        visited += 1;
        if visited == 3 {
            return Err(StoreError::Backend("enough".into()));
        }
        Ok(())
    });
    assert!(matches!(stopped, Err(StoreError::Backend(why)) if why.to_string() == "enough"));
    assert_eq!(visited, 3);
    let mut again = 0;
    store
        .scan_prefix(Table::RolloutMembers, "t", "m/", &mut |_, _| {
            again += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(again, n);
}

#[test]
fn prefix_end_is_the_least_bound_above_the_prefix() {
    let max = char::MAX.to_string();
    for (prefix, end) in [
        ("r1/", Some("r10".to_owned())),
        ("a", Some("b".to_owned())),
        ("", None),
        (max.as_str(), None),
        (&format!("a{max}"), Some("b".to_owned())),
        // The next code point after the surrogate gap.
        ("\u{d7ff}", Some("\u{e000}".to_owned())),
    ] {
        assert_eq!(prefix_end(prefix), end, "{prefix:?}");
    }
}

#[test]
fn the_schema_comes_from_the_search_path_unless_it_is_per_role() {
    for (path, schema) in [
        ("updater, public", Some("updater")),
        ("\"My \"\"Schema\"\"\", public", Some("My \"Schema\"")),
        ("\"$user\", public", None),
        ("", None),
    ] {
        assert_eq!(first_schema(path).as_deref(), schema, "{path}");
    }
}

#[test]
fn bad_schema_names_and_urls_are_refused_with_the_reason() {
    for name in [
        "",
        "1abc",
        "Upper",
        "a b",
        "a;drop",
        "x\"y",
        &"a".repeat(64),
    ] {
        let err = PgStore::open(&test_url(), Some(name), 1).unwrap_err();
        assert!(err.to_string().contains("schema name"), "{name}: {err}");
    }
    let err = PgStore::open("postgres://u:p@[::1", None, 1).unwrap_err();
    assert!(
        err.to_string().contains("not a PostgreSQL connection URL"),
        "{err}"
    );
}

#[test]
fn an_unreachable_server_names_where_without_the_password() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let err = PgStore::open("postgres://u:s3cret-pw@127.0.0.1:1/fleet", None, 1).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("127.0.0.1:1/fleet"), "{text}");
    assert!(!text.contains("s3cret-pw"), "{text}");
}

#[test]
fn jobs_run_on_one_node_at_a_time_and_pass_on_when_a_node_dies() {
    let schema = fresh_schema();
    let (a, b) = (open(&schema), open(&schema));
    let elsewhere = store();
    let mut inside = Vec::new();
    let ran = a
        .exclusively("rollouts", &mut || {
            // While node a runs it, node b skips the same job, and runs
            // another one; another installation's same job is its own.
            inside.push(b.exclusively("rollouts", &mut || {}).unwrap());
            inside.push(b.exclusively("retention", &mut || {}).unwrap());
            inside.push(elsewhere.exclusively("rollouts", &mut || {}).unwrap());
        })
        .unwrap();
    assert!(ran);
    assert_eq!(inside, [false, true, true]);
    // Released at the end of the job: the next tick of either node runs it.
    assert!(b.exclusively("rollouts", &mut || {}).unwrap());

    // A job that dies with its node (here: panics) loses its claim with its
    // connection; node b then takes the job over.
    let died = std::thread::scope(|s| {
        s.spawn(|| a.exclusively("rollouts", &mut || panic!("node a dies mid-job")))
            .join()
    });
    assert!(died.is_err());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    // The database notices the closed connection on its own schedule:
    // ask until it has (each try is a real round trip, not a sleep).
    let mut tries = 0;
    while !b.exclusively("rollouts", &mut || {}).unwrap() {
        tries += 1;
        assert!(
            std::time::Instant::now() < deadline,
            "the dead node's claim was never released ({tries} tries)"
        );
        std::thread::yield_now();
    }
}
