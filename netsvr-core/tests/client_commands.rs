//! Client commands over real sockets: off by default; subscribe / unsubscribe / publish /
//! ping with their replies; malformed and refused commands; grants from the authenticator;
//! order within one TCP write; the metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::raw::{self, upgrade_with};
use common::*;
use futures_util::SinkExt;
use netsvr_core::client_cmd::{AllowAllCommands, ConnectionGrants, TopicPrefixes};
use netsvr_core::{
    Admission, AuthDecision, Authenticator, ClientCommands, ClientGrants, EventKind, Gateway,
    HandshakeRequest, MessageKind, async_trait,
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// The next message a client gets, parsed as JSON.
async fn recv_json(client: &mut Client) -> Value {
    let text = recv_text(client).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Sends `command` and returns the reply.
async fn call(client: &mut Client, command: Value) -> Value {
    send_text(client, &command.to_string()).await;
    recv_json(client).await
}

async fn with_commands(commands: ClientCommands) -> TestGateway {
    TestGateway::start_with(
        Gateway::builder()
            .config(test_config())
            .client_commands_with(commands),
    )
    .await
}

fn news_and_chat() -> TopicPrefixes {
    TopicPrefixes::new()
        .subscribe(["news.", "chat."])
        .publish(["chat."])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_by_default_a_command_reaches_the_sink_unchanged() {
    let mut gw = TestGateway::start(test_config()).await;
    let (mut client, id) = gw.connect().await;
    let command = r#"{"cmd":"subscribe","id":1,"topics":["news"]}"#;
    send_text(&mut client, command).await;
    let event = gw.next_event().await;
    assert_eq!(event.uniq_id(), id);
    match event.kind {
        EventKind::Message { kind, payload } => {
            assert_eq!(kind, MessageKind::Text);
            assert_eq!(&payload[..], command.as_bytes());
        }
        other => panic!("{other:?}"),
    }
    assert!(gw.gateway.topic_members("news").is_empty());
    assert_silent(&mut client, QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_then_a_gateway_publish_arrives() {
    let mut gw = with_commands(ClientCommands::new(news_and_chat())).await;
    let (mut client, id) = gw.connect().await;
    let reply = call(
        &mut client,
        json!({"cmd": "subscribe", "id": 1, "topics": ["news.a", "chat.b", "news.a"]}),
    )
    .await;
    assert_eq!(
        reply,
        json!({"id": 1, "ok": true, "topics": ["news.a", "chat.b"]})
    );
    assert_eq!(gw.gateway.topic_members("news.a"), [id]);
    assert_eq!(
        gw.gateway.conn_info(&id).unwrap().info.topics,
        ["news.a", "chat.b"]
    );
    assert_eq!(gw.gateway.publish(&["news.a"], "breaking"), 1);
    assert_eq!(recv_text(&mut client).await, "breaking");
    // The command did not reach the sink.
    assert!(gw.events.try_recv().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_reaches_subscribers_and_nobody_else() {
    let mut gw = with_commands(ClientCommands::new(news_and_chat())).await;
    let (mut a, _) = gw.connect().await;
    let (mut b, _) = gw.connect().await;
    let (mut c, _) = gw.connect().await;
    let reply = call(
        &mut b,
        json!({"cmd": "subscribe", "id": "s", "topics": ["chat.room"]}),
    )
    .await;
    assert_eq!(reply["ok"], json!(true));
    let reply = call(
        &mut c,
        json!({"cmd": "subscribe", "topics": ["chat.other"]}),
    )
    .await;
    assert_eq!(reply, json!({"ok": true, "topics": ["chat.other"]}));
    let reply = call(
        &mut a,
        json!({"cmd": "publish", "id": 3, "topic": "chat.room", "data": "hello"}),
    )
    .await;
    assert_eq!(reply, json!({"id": 3, "ok": true}));
    assert_eq!(recv_text(&mut b).await, "hello");
    // Non-string data arrives as its compact JSON text.
    let reply = call(
        &mut a,
        json!({"cmd": "publish", "id": 4, "topic": "chat.room", "data": {"n": [1, 2]}}),
    )
    .await;
    assert_eq!(reply, json!({"id": 4, "ok": true}));
    assert_eq!(recv_text(&mut b).await, r#"{"n":[1,2]}"#);
    // The publisher is no subscriber; the other topic's subscriber gets nothing.
    assert_all_silent(vec![&mut a, &mut b, &mut c]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_stops_delivery() {
    let mut gw = with_commands(ClientCommands::new(news_and_chat())).await;
    let (mut client, id) = gw.connect().await;
    call(
        &mut client,
        json!({"cmd": "subscribe", "topics": ["news.a", "news.b"]}),
    )
    .await;
    let reply = call(
        &mut client,
        json!({"cmd": "unsubscribe", "id": 2, "topics": ["news.a"]}),
    )
    .await;
    assert_eq!(reply, json!({"id": 2, "ok": true, "topics": ["news.a"]}));
    assert_eq!(gw.gateway.conn_info(&id).unwrap().info.topics, ["news.b"]);
    assert_eq!(gw.gateway.publish(&["news.a"], "gone"), 0);
    gw.gateway.publish(&["news.b"], "still");
    assert_eq!(recv_text(&mut client).await, "still");
    assert_silent(&mut client, QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_replies_with_the_id_as_given() {
    let mut gw = with_commands(ClientCommands::new(TopicPrefixes::new())).await;
    let (mut client, _) = gw.connect().await;
    assert_eq!(
        call(&mut client, json!({"cmd": "ping", "id": 4})).await,
        json!({"id": 4, "ok": true, "pong": true})
    );
    assert_eq!(
        call(&mut client, json!({"cmd": "ping", "id": "req-5"})).await,
        json!({"id": "req-5", "ok": true, "pong": true})
    );
    assert_eq!(
        call(&mut client, json!({"cmd": "ping"})).await,
        json!({"ok": true, "pong": true})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_command_is_400_and_the_connection_stays_open() {
    let mut gw = with_commands(ClientCommands::new(AllowAllCommands)).await;
    let (mut client, id) = gw.connect().await;
    for (command, words) in [
        (
            json!({"cmd": "subscribe", "id": 7, "topics": []}),
            "`topics`",
        ),
        (
            json!({"cmd": "subscribe", "id": 7, "topics": "news"}),
            "`topics`",
        ),
        (
            json!({"cmd": "subscribe", "id": 7, "topics": ["x".repeat(129)]}),
            "128",
        ),
        (
            json!({"cmd": "subscribe", "id": 7, "topics": (0..65).map(|i| i.to_string()).collect::<Vec<_>>()}),
            "64",
        ),
        (json!({"cmd": "publish", "id": 7, "data": "x"}), "`topic`"),
        (json!({"cmd": "publish", "id": 7, "topic": "t"}), "`data`"),
    ] {
        let reply = call(&mut client, command.clone()).await;
        assert_eq!(reply["id"], json!(7), "{command}: {reply}");
        assert_eq!(reply["ok"], json!(false), "{command}: {reply}");
        assert_eq!(reply["error"]["code"], json!(400), "{command}: {reply}");
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{command}: {message}");
    }
    assert!(gw.gateway.topics().is_empty());
    assert!(gw.gateway.is_online(&id));
    assert_eq!(
        call(&mut client, json!({"cmd": "ping", "id": 8})).await["id"],
        json!(8)
    );
    assert!(gw.events.try_recv().is_none(), "a command reached the sink");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_command_is_403_and_takes_no_effect() {
    let mut gw = with_commands(ClientCommands::new(news_and_chat())).await;
    let (mut client, id) = gw.connect().await;
    let reply = call(
        &mut client,
        json!({"cmd": "subscribe", "id": 1, "topics": ["news.a", "secret"]}),
    )
    .await;
    assert_eq!(
        reply,
        json!({"id": 1, "ok": false, "error": {"code": 403, "message": "topic `secret` not allowed"}})
    );
    assert!(gw.gateway.conn_info(&id).unwrap().info.topics.is_empty());
    assert_eq!(gw.gateway.publish(&["news.a"], "x"), 0);
    // news.* may be read but not written.
    call(
        &mut client,
        json!({"cmd": "subscribe", "topics": ["news.a"]}),
    )
    .await;
    let reply = call(
        &mut client,
        json!({"cmd": "publish", "id": 2, "topic": "news.a", "data": "spoof"}),
    )
    .await;
    assert_eq!(reply["error"]["code"], json!(403));
    assert_silent(&mut client, QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_data_over_the_limit_is_413() {
    let commands = ClientCommands::new(AllowAllCommands).max_publish_size(8);
    let mut gw = with_commands(commands).await;
    let (mut client, _) = gw.connect().await;
    call(&mut client, json!({"cmd": "subscribe", "topics": ["t"]})).await;
    let reply = call(
        &mut client,
        json!({"cmd": "publish", "id": 1, "topic": "t", "data": "123456789"}),
    )
    .await;
    assert_eq!(reply["error"]["code"], json!(413), "{reply}");
    let command = json!({"cmd": "publish", "id": 2, "topic": "t", "data": "12345678"});
    send_text(&mut client, &command.to_string()).await;
    // Subscribed itself: the data comes first, then the reply.
    assert_eq!(recv_text(&mut client).await, "12345678");
    assert_eq!(recv_json(&mut client).await, json!({"id": 2, "ok": true}));
}

/// Grants from the query: `sub=a,b` and `pub=c` (prefixes).
struct GrantingAuth;

#[async_trait]
impl Authenticator for GrantingAuth {
    async fn authenticate(&self, request: &HandshakeRequest) -> AuthDecision {
        let list = |key| {
            request
                .query_param(key)
                .map(|v| v.split(',').map(str::to_owned).collect::<Vec<_>>())
        };
        let mut admission = Admission::new();
        if let (Some(sub), Some(publish)) = (list("sub"), list("pub")) {
            admission = admission.grants(ClientGrants::new().subscribe(sub).publish(publish));
        }
        AuthDecision::Allow(admission)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_from_the_admission_are_honoured() {
    let mut gw = TestGateway::start_with(
        Gateway::builder()
            .config(test_config())
            .authenticator(GrantingAuth)
            .client_commands(ConnectionGrants),
    )
    .await;
    let (mut granted, _) = gw.connect_query("?sub=room.&pub=room.1").await;
    let (mut plain, _) = gw.connect().await;
    let reply = call(
        &mut granted,
        json!({"cmd": "subscribe", "id": 1, "topics": ["room.1"]}),
    )
    .await;
    assert_eq!(reply["ok"], json!(true), "{reply}");
    let reply = call(
        &mut granted,
        json!({"cmd": "subscribe", "id": 2, "topics": ["lobby"]}),
    )
    .await;
    assert_eq!(reply["error"]["code"], json!(403), "{reply}");
    let reply = call(
        &mut granted,
        json!({"cmd": "publish", "id": 3, "topic": "room.2", "data": "x"}),
    )
    .await;
    assert_eq!(reply["error"]["code"], json!(403), "{reply}");
    // A connection without grants may only ping.
    let reply = call(
        &mut plain,
        json!({"cmd": "subscribe", "id": 4, "topics": ["room.1"]}),
    )
    .await;
    assert_eq!(reply["error"]["code"], json!(403), "{reply}");
    let reply = call(
        &mut plain,
        json!({"cmd": "publish", "id": 5, "topic": "room.1", "data": "x"}),
    )
    .await;
    assert_eq!(reply["error"]["code"], json!(403), "{reply}");
    let command = json!({"cmd": "publish", "id": 6, "topic": "room.1", "data": "mine"});
    send_text(&mut granted, &command.to_string()).await;
    assert_eq!(recv_text(&mut granted).await, "mine");
    assert_eq!(recv_json(&mut granted).await, json!({"id": 6, "ok": true}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_messages_are_still_forwarded() {
    let mut gw = with_commands(ClientCommands::new(AllowAllCommands)).await;
    let (mut client, _) = gw.connect().await;
    let texts = [
        r#"{"type":"chat","text":"hi"}"#,
        r#"{"cmd":"dance","id":1}"#,
        r#"{"cmd":5}"#,
        r#"{"cmd":"ping""#,
        "plain text",
    ];
    for text in texts {
        send_text(&mut client, text).await;
    }
    client
        .send(Message::binary(br#"{"cmd":"ping","id":1}"#.to_vec()))
        .await
        .unwrap();
    for text in texts {
        match gw.next_event().await.kind {
            EventKind::Message { kind, payload } => {
                assert_eq!(kind, MessageKind::Text);
                assert_eq!(&payload[..], text.as_bytes());
            }
            other => panic!("{other:?}"),
        }
    }
    match gw.next_event().await.kind {
        EventKind::Message { kind, payload } => {
            assert_eq!(kind, MessageKind::Binary);
            assert_eq!(&payload[..], br#"{"cmd":"ping","id":1}"#);
        }
        other => panic!("{other:?}"),
    }
    assert_silent(&mut client, QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_in_one_tcp_write_run_in_order() {
    let gw = with_commands(ClientCommands::new(AllowAllCommands)).await;
    // The upgrade request and three commands in a single write.
    let mut pipelined = Vec::new();
    for command in [
        json!({"cmd": "subscribe", "id": 1, "topics": ["t"]}),
        json!({"cmd": "publish", "id": 2, "topic": "t", "data": "first"}),
        json!({"cmd": "unsubscribe", "id": 3, "topics": ["t"]}),
        json!({"cmd": "publish", "id": 4, "topic": "t", "data": "second"}),
    ] {
        pipelined.extend_from_slice(&raw::text(command.to_string().as_bytes()));
    }
    let conn = raw::RawConn::connect(gw.gateway.local_addr()).await;
    let mut conn = upgrade_with(conn, "/netsvr", "", &pipelined).await;
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(String::from_utf8(conn.expect_data().await).unwrap());
    }
    let json = |i: usize| serde_json::from_str::<Value>(&got[i]).unwrap();
    assert_eq!(json(0), json!({"id": 1, "ok": true, "topics": ["t"]}));
    assert_eq!(got[1], "first");
    assert_eq!(json(2), json!({"id": 2, "ok": true}));
    assert_eq!(json(3), json!({"id": 3, "ok": true, "topics": ["t"]}));
    assert_eq!(json(4), json!({"id": 4, "ok": true}));
    // "second" was published after the unsubscribe: it never comes.
    conn.expect_silence(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_counted_by_kind_and_result() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let mut gw = metrics::with_local_recorder(&recorder, || {
        let (sink, events) = netsvr_core::ChannelSink::new(1024);
        let (gateway, serve) = Gateway::builder()
            .config(test_config())
            .sink(sink)
            .client_commands(news_and_chat())
            .build()
            .unwrap();
        tokio::spawn(serve);
        TestGateway { gateway, events }
    });
    let (mut client, _) = gw.connect().await;
    call(&mut client, json!({"cmd": "ping"})).await;
    call(&mut client, json!({"cmd": "ping"})).await;
    call(
        &mut client,
        json!({"cmd": "subscribe", "topics": ["secret"]}),
    )
    .await;
    call(&mut client, json!({"cmd": "publish", "topic": "chat.x"})).await;
    // One snapshot: taking it resets the debugging recorder's counters.
    let snapshot = snapshotter.snapshot().into_vec();
    let count = |cmd: &str, result: &str| {
        snapshot.iter().find_map(|(key, _, _, value)| {
            let key = key.key();
            let labels: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
            (key.name() == netsvr_core::metrics::CLIENT_COMMANDS_TOTAL
                && labels.contains(&("cmd", cmd))
                && labels.contains(&("result", result)))
            .then_some(match value {
                DebugValue::Counter(n) => *n,
                _ => u64::MAX,
            })
        })
    };
    assert_eq!(count("ping", "ok"), Some(2));
    assert_eq!(count("subscribe", "forbidden"), Some(1));
    assert_eq!(count("publish", "bad_request"), Some(1));
    assert_eq!(count("publish", "ok"), Some(0));
}

/// Two nodes sharing the machine's Redis: a command subscription on one node receives a
/// command publication made on the other (the publish is routed like `Gateway::publish`).
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_reaches_subscribers_on_other_nodes() {
    use std::sync::Arc;

    use netsvr_core::cluster::{Broker, ClusterConfig};
    use netsvr_core::redis_broker::{RedisBroker, RedisBrokerConfig};

    const URL: &str = "redis://127.0.0.1:6379";
    let Some(mut redis) = common::services::try_connect(URL).await else {
        common::services::unavailable("Redis is not reachable at 127.0.0.1:6379");
        return;
    };
    let prefix = format!("netsvr-test:commands:{}", std::process::id());
    let broker = || -> Arc<dyn Broker> {
        let mut config = RedisBrokerConfig::new(URL);
        config.prefix.clone_from(&prefix);
        Arc::new(RedisBroker::new(&config).unwrap())
    };
    let mut cluster = ClusterConfig::default();
    cluster.lease_ttl = std::time::Duration::from_millis(1500);
    cluster.heartbeat = std::time::Duration::from_millis(300);
    let mut config = test_config();
    config.shutdown_timeout = std::time::Duration::from_millis(500);
    let node = |broker| {
        TestGateway::start_with(
            Gateway::builder()
                .config(config.clone())
                .broker(broker, cluster.clone())
                .client_commands(AllowAllCommands),
        )
    };
    let mut one = node(broker()).await;
    let mut two = node(broker()).await;
    eventually("both nodes see each other", || {
        [&one, &two]
            .iter()
            .all(|n| n.gateway.cluster().unwrap().nodes().len() == 2)
    })
    .await;
    let (mut reader, _) = one.connect().await;
    let (mut writer, _) = two.connect().await;
    let reply = call(
        &mut reader,
        json!({"cmd": "subscribe", "id": 1, "topics": ["room"]}),
    )
    .await;
    assert_eq!(reply["ok"], json!(true), "{reply}");
    let reply = call(
        &mut writer,
        json!({"cmd": "publish", "id": 2, "topic": "room", "data": "across"}),
    )
    .await;
    assert_eq!(reply, json!({"id": 2, "ok": true}));
    assert_eq!(recv_text(&mut reader).await, "across");
    assert_silent(&mut writer, QUIET).await;
    drop((reader, writer));
    // The events nobody reads keep the sinks from flushing: shutdown_timeout is short.
    for node in [&one, &two] {
        node.gateway.shutdown().await;
    }
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut redis)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut redis).await;
    }
}
