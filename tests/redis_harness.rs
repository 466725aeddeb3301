//! Checks the integration-test harness itself (tests/common) against a real redis-server.

mod common;

use common::{RedisServer, Resp, testdata};

#[test]
fn set_get_and_arrays_over_resp() {
    let Some(srv) = RedisServer::start(&[]) else {
        return;
    };
    let value: &[u8] = b"\x00\xffbinary\r\nvalue";
    assert_eq!(srv.cmd(&[b"SET", b"key", value]), Resp::Simple("OK".into()));
    assert_eq!(srv.cmd(&[b"GET", b"key"]), Resp::Bulk(Some(value.to_vec())));
    assert_eq!(srv.cmd(&[b"GET", b"missing"]), Resp::Bulk(None));
    assert_eq!(srv.cmd(&[b"RPUSH", b"list", b"a", b"", b"c"]), Resp::Int(3));
    assert_eq!(
        srv.cmd(&[b"LRANGE", b"list", b"0", b"-1"]),
        Resp::Array(Some(vec![
            Resp::Bulk(Some(b"a".to_vec())),
            Resp::Bulk(Some(Vec::new())),
            Resp::Bulk(Some(b"c".to_vec())),
        ]))
    );
    assert!(matches!(srv.cmd(&[b"NO-SUCH-COMMAND"]), Resp::Error(_)));

    // SELECT sticks to the connection that `cmd` reuses.
    srv.select(2);
    srv.cmd(&[b"SET", b"in-db2", b"x"]);
    assert_eq!(srv.cmd(&[b"DBSIZE"]), Resp::Int(1));

    let out = srv.cli(&["-n", "2", "GET", "in-db2"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "x");
}

#[test]
fn loads_committed_rdb() {
    let rdb = testdata("small-db0.rdb");
    let Some(srv) = RedisServer::start_with_rdb(&rdb, &[]) else {
        return;
    };
    let dbsize = srv.cmd(&[b"DBSIZE"]).as_int().expect("DBSIZE is an integer");
    assert!(dbsize > 0, "small-db0.rdb loaded no keys");

    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(testdata("expected/small-db0.rdb.json")).expect("read expected JSON"))
            .expect("parse expected JSON");
    let keys = expected["dbs"]["0"].as_array().expect("db 0 entries").len();
    assert_eq!(dbsize, keys as i64);
}
