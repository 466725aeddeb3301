//! The shared Redis client (`rdbtool::redis`): pipelining with per-command errors, unix
//! sockets, and a TLS Redis Cluster that requires client certificates and an ACL user
//! (`split --from rediss://user@host:port` with the password from REDISCLI_AUTH).

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{RedisServer, Resp, testdata};
use rdbtool::redis::server::Tls;
use rdbtool::redis::throwaway_cluster::slot_ranges;

fn rdbtool_env(args: &[&OsStr], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rdbtool"));
    c.args(args).stdin(Stdio::null()).env_remove("REDISCLI_AUTH");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct Node {
    srv: RedisServer,
    tls_port: u16,
    id: String,
}

/// Three masters of the library's throwaway cluster speaking TLS to clients and to each other,
/// client certificates required, the slots split in three ranges in order; a user that may
/// only read the slot map. None when Redis is missing.
fn tls_cluster(tls: Tls) -> Option<Vec<Node>> {
    let nodes = RedisServer::tls_cluster(3, tls)?;
    let nodes: Vec<Node> = nodes
        .into_iter()
        .map(|srv| {
            let Resp::Bulk(Some(id)) = srv.cmd(&[b"CLUSTER", b"MYID"]) else { panic!("CLUSTER MYID") };
            let r = srv.cmd(&[b"ACL", b"SETUSER", b"splitter", b"on", b">s3cret pw", b"-@all", b"+cluster|slots"]);
            assert_eq!(r, Resp::Simple("OK".into()));
            Node { tls_port: srv.tls_port(), srv, id: text(&id) }
        })
        .collect();
    // The bus speaks TLS: the nodes met and agree on one slot map.
    for n in &nodes {
        let Resp::Bulk(Some(info)) = n.srv.cmd(&[b"CLUSTER", b"INFO"]) else { panic!() };
        assert!(text(&info).contains("cluster_known_nodes:3"), "{}", text(&info));
    }
    Some(nodes)
}

#[test]
fn split_from_a_tls_cluster_with_client_certificates_and_an_acl_user() {
    let certs = tempfile::tempdir().unwrap();
    let Some(tls) = common::make_certs(certs.path()) else { return };
    let Some(nodes) = tls_cluster(tls) else { return };
    let c = |n: &str| certs.path().join(n).into_os_string();
    let (ca, cert, key) = (c("ca.crt"), c("client.crt"), c("client.key"));
    let out = tempfile::tempdir().unwrap();
    let input = testdata("all-types.rdb");
    let url = format!("rediss://splitter@127.0.0.1:{}", nodes[1].tls_port);
    let split = |extra: &[&OsStr], env: &[(&str, &str)]| -> Output {
        let mut args: Vec<&OsStr> = vec![
            "split".as_ref(),
            "--json".as_ref(),
            "--db".as_ref(),
            "0".as_ref(),
            "--force".as_ref(),
            input.as_os_str(),
            "-o".as_ref(),
            out.path().as_os_str(),
        ];
        args.extend_from_slice(extra);
        rdbtool_env(&args, env)
    };
    let tls: [&OsStr; 7] =
        ["--from".as_ref(), url.as_ref(), "--cacert".as_ref(), &ca, "--cert".as_ref(), &cert, "--key".as_ref()];
    let mut full: Vec<&OsStr> = tls.to_vec();
    full.push(&key);
    let pw = [("REDISCLI_AUTH", "s3cret pw")];

    let o = split(&full, &pw);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(!text(&o.stdout).contains("s3cret") && !text(&o.stderr).contains("s3cret"));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let targets = summary["targets"].as_array().unwrap();
    let mut seen: Vec<(String, u64, String)> = targets
        .iter()
        .map(|t| {
            (
                t["slots"].as_str().unwrap().to_owned(),
                t["node"]["port"].as_u64().unwrap(),
                t["node"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    let mut want: Vec<(String, u64, String)> = slot_ranges(3)
        .into_iter()
        .enumerate()
        .map(|(i, (lo, hi))| (format!("{lo}-{hi}"), nodes[i].tls_port as u64, nodes[i].id.clone()))
        .collect();
    want.sort();
    // The TLS ports: a TLS client is told the TLS address of every master.
    assert_eq!(seen, want);
    let keys: u64 = targets.iter().map(|t| t["keys"].as_u64().unwrap()).sum();
    assert!(keys > 0);
    for t in targets {
        assert!(Path::new(t["file"].as_str().unwrap()).is_file());
    }

    // The same server named redis-cli style: -h/-p --tls --user.
    let port = nodes[0].tls_port.to_string();
    let mut cli_style: Vec<&OsStr> = vec![
        "--from".as_ref(),
        "-h".as_ref(),
        "127.0.0.1".as_ref(),
        "-p".as_ref(),
        port.as_ref(),
        "--tls".as_ref(),
        "--user".as_ref(),
        "splitter".as_ref(),
    ];
    cli_style.extend_from_slice(&full[2..]);
    let o = split(&cli_style, &pw);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));

    // Without a client certificate the server refuses the handshake.
    let o = split(&full[..4], &pw);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("client certificate"), "{}", text(&o.stderr));
    // Without the CA the server's certificate is not trusted.
    let mut no_ca: Vec<&OsStr> = vec!["--from".as_ref(), url.as_ref()];
    no_ca.extend_from_slice(&full[4..]);
    let o = split(&no_ca, &pw);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("certificate"), "{}", text(&o.stderr));
    // --insecure: no CA, no check; --sni: the name checked is the one given.
    let mut insecure: Vec<&OsStr> = vec!["--from".as_ref(), url.as_ref(), "--insecure".as_ref()];
    insecure.extend_from_slice(&full[4..]);
    let o = split(&insecure, &pw);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let mut sni: Vec<&OsStr> = full.clone();
    sni.extend_from_slice(&["--sni".as_ref(), "localhost".as_ref()]);
    let o = split(&sni, &pw);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let mut sni: Vec<&OsStr> = full.clone();
    sni.extend_from_slice(&["--sni".as_ref(), "other.example".as_ref()]);
    let o = split(&sni, &pw);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--sni"), "{}", text(&o.stderr));
    // A CA file that is not PEM: said so.
    let not_pem = certs.path().join("not.pem");
    std::fs::write(&not_pem, b"hello").unwrap();
    let mut bad_ca: Vec<&OsStr> = vec!["--from".as_ref(), url.as_ref(), "--cacert".as_ref(), not_pem.as_os_str()];
    bad_ca.extend_from_slice(&full[4..]);
    let o = split(&bad_ca, &pw);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("PEM"), "{}", text(&o.stderr));
    // A wrong password: AUTH refused, the password not repeated.
    let o = split(&full, &[("REDISCLI_AUTH", "wrong-s3cret")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("AUTH"), "{}", text(&o.stderr));
    assert!(!text(&o.stderr).contains("wrong-s3cret"));
    // A URL that does not parse is not echoed with its password.
    let bad = format!("rediss://splitter:s3cret@127.0.0.1:{}x", nodes[1].tls_port);
    let o = split(&["--from".as_ref(), bad.as_ref()], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!text(&o.stderr).contains("s3cret"), "{}", text(&o.stderr));
    // A password in the URL works, with a warning.
    let with_pw = format!("rediss://splitter:s3cret%20pw@127.0.0.1:{}", nodes[2].tls_port);
    let mut in_url: Vec<&OsStr> = vec!["--from".as_ref(), with_pw.as_ref()];
    in_url.extend_from_slice(&full[2..]);
    let o = split(&in_url, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("visible"));
    assert!(!text(&o.stderr).contains("s3cret"));
}

#[test]
fn pipelined_commands_each_get_their_reply_or_error() {
    use rdbtool::redis::{Addr, ConnectOptions, Connection, Reply};
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("r.sock");
    let sock_s = sock.display().to_string();
    let Some(srv) = RedisServer::start(&["--unixsocket", &sock_s, "--unixsocketperm", "700"]) else { return };
    for addr in [Addr::Tcp { host: "127.0.0.1".into(), port: srv.port }, Addr::Unix(sock.clone())] {
        let mut c = Connection::connect(&ConnectOptions::new(addr)).unwrap();
        let cmds: Vec<Vec<&[u8]>> = vec![
            vec![b"SET", b"k", b"v"],
            vec![b"INCR", b"k"],
            vec![b"GET", b"k"],
            vec![b"GET", b"missing"],
            vec![b"NO-SUCH-COMMAND"],
        ];
        let r = c.pipeline(&cmds).unwrap();
        assert_eq!(r[0], Ok(Reply::Simple("OK".into())));
        assert!(r[1].as_ref().unwrap_err().starts_with("ERR value is not an integer"), "{:?}", r[1]);
        assert_eq!(r[2], Ok(Reply::Bulk(b"v".to_vec())));
        assert_eq!(r[3], Ok(Reply::Nil));
        assert!(r[4].as_ref().unwrap_err().contains("unknown command"));
        // The connection is still in step after the errors.
        assert_eq!(c.command(&[b"PING"]).unwrap(), Reply::Simple("PONG".into()));
    }
    // A URL names the socket too; a password on a server without one is refused as AUTH.
    let (mut o, _) = ConnectOptions::parse_url(&format!("unix://{sock_s}?db=3")).unwrap();
    assert_eq!(o.db, Some(3));
    let mut c = Connection::connect(&o).unwrap();
    c.select(3).unwrap();
    o.password = Some("nope".into());
    let e = Connection::connect(&o).err().unwrap();
    assert_eq!(e.kind, rdbtool::redis::ErrorKind::Auth);
    assert!(!e.to_string().contains("nope"));
}

#[test]
fn diff_names_its_server_like_redis_cli() {
    let f = testdata("small-db0.rdb");
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("r.sock").display().to_string();
    let Some(srv) = RedisServer::start_with_rdb(&f, &["--unixsocket", &sock]) else { return };
    assert_eq!(srv.cmd(&[b"CONFIG", b"SET", b"requirepass", b"pw1"]), Resp::Simple("OK".into()));
    let port = srv.port.to_string();
    let file = f.as_os_str();
    let run = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args: Vec<&OsStr> = vec!["diff".as_ref(), file];
        args.extend(extra.iter().map(OsStr::new));
        rdbtool_env(&args, env)
    };
    let pw = [("REDISCLI_AUTH", "pw1")];
    let o = run(&["-h", "127.0.0.1", "-p", &port], &pw);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("IDENTICAL"));
    let o = run(&["-s", &sock], &pw);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = run(&["-p", &port, "-a", "pw1"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("visible") && !text(&o.stderr).contains("pw1"));
    // -n: another database, empty on the server.
    let o = run(&["-p", &port, "-n", "1"], &pw);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // A side and -h together, or neither: an error.
    let o = run(&["redis://127.0.0.1:1", "-p", &port], &pw);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&[], &pw);
    assert_eq!(o.status.code(), Some(2));
}
