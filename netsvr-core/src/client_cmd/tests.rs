//! Unit tests of the command parser, the replies and the ready authorisers.

use std::net::SocketAddr;

use bytes::Bytes;
use serde_json::{Value, json};

use super::parse::{error_reply, ok_reply};
use super::*;
use crate::event::{ConnInfo, ConnMeta, ConnSnapshot};
use crate::id::UniqId;

fn ok(text: &str) -> CommandRequest {
    match parse(text.as_bytes()) {
        Some(Ok(request)) => request,
        other => panic!("{text}: {other:?}"),
    }
}

fn bad(text: &str) -> CommandError {
    match parse(text.as_bytes()) {
        Some(Err(error)) => error,
        other => panic!("{text}: {other:?}"),
    }
}

#[test]
fn the_four_commands_parse() {
    let r = ok(r#"{"cmd":"subscribe","id":1,"topics":["news","sport","news"]}"#);
    assert_eq!(r.id, Some(RequestId::number(1)));
    assert_eq!(
        r.command,
        ClientCommand::Subscribe {
            topics: vec!["news".into(), "sport".into()]
        }
    );
    let r = ok(r#" {"topics":["news"],"cmd":"unsubscribe","id":"a-2"}"#);
    assert_eq!(r.id, Some(RequestId::text("a-2")));
    assert_eq!(r.command.kind(), CommandKind::Unsubscribe);
    assert_eq!(r.command.topics(), ["news"]);
    let r = ok(r#"{"cmd":"publish","id":3,"topic":"news","data":"hello \"you\""}"#);
    assert_eq!(
        r.command,
        ClientCommand::Publish {
            topic: "news".into(),
            data: Bytes::from_static(b"hello \"you\"")
        }
    );
    let r = ok(r#"{"cmd":"ping"}"#);
    assert_eq!((r.id, r.command), (None, ClientCommand::Ping));
    // Unknown extra fields are ignored; a null id is no id.
    let r = ok(r#"{"cmd":"ping","id":null,"extra":{"deep":[1,2]}}"#);
    assert_eq!(r.id, None);
}

#[test]
fn non_string_data_is_delivered_as_compact_json() {
    let r = ok(r#"{"cmd":"publish","topic":"t","data": { "a" : [1, 2.5, null] } }"#);
    let ClientCommand::Publish { data, .. } = r.command else {
        panic!("{:?}", r.command);
    };
    assert_eq!(&data[..], br#"{"a":[1,2.5,null]}"#);
}

#[test]
fn other_messages_are_not_commands() {
    for text in [
        "",
        "hello",
        "~6YOt5rW35piO~",
        "[1,2]",
        r#""cmd""#,
        r#"{"cmd":"dance","id":1}"#,
        r#"{"cmd":1}"#,
        r#"{"cmd":null}"#,
        r#"{"command":"ping"}"#,
        r#"{"type":"chat","text":"cmd"}"#,
        r#"{"cmd":"ping""#,
        r#"{"cmd":"Ping"}"#,
    ] {
        assert!(parse(text.as_bytes()).is_none(), "{text}");
    }
    assert!(parse(b"\xff{\"cmd\":\"ping\"}").is_none());
}

#[test]
fn an_escaped_key_is_still_a_command() {
    let r = ok(r#"{"\u0063md":"p\u0069ng","id":9}"#);
    assert_eq!(r.command, ClientCommand::Ping);
}

#[test]
fn malformed_known_commands_are_400_with_their_id() {
    let long = "x".repeat(MAX_TOPIC_LEN + 1);
    let many: Vec<String> = (0..=MAX_TOPICS).map(|i| format!("t{i}")).collect();
    let many = serde_json::to_string(&many).unwrap();
    for (text, words) in [
        (
            r#"{"cmd":"subscribe","id":7}"#.to_owned(),
            "`topics` must be",
        ),
        (
            r#"{"cmd":"subscribe","id":7,"topics":[]}"#.to_owned(),
            "`topics` must be",
        ),
        (
            r#"{"cmd":"subscribe","id":7,"topics":"news"}"#.to_owned(),
            "`topics` must be",
        ),
        (
            r#"{"cmd":"unsubscribe","id":7,"topics":["a",2]}"#.to_owned(),
            "`topics` must be",
        ),
        (
            r#"{"cmd":"subscribe","id":7,"topics":[""]}"#.to_owned(),
            "a topic is empty",
        ),
        (
            format!(r#"{{"cmd":"subscribe","id":7,"topics":["{long}"]}}"#),
            "longer than 128 bytes",
        ),
        (
            format!(r#"{{"cmd":"subscribe","id":7,"topics":{many}}}"#),
            "more than 64 topics",
        ),
        (
            r#"{"cmd":"publish","id":7,"data":"x"}"#.to_owned(),
            "`topic` must be",
        ),
        (
            r#"{"cmd":"publish","id":7,"topic":"t"}"#.to_owned(),
            "`data` is missing",
        ),
        (
            r#"{"cmd":"publish","id":7,"topic":"","data":"x"}"#.to_owned(),
            "a topic is empty",
        ),
    ] {
        let e = bad(&text);
        assert_eq!(e.code, BAD_REQUEST, "{text}");
        assert_eq!(e.id, Some(RequestId::number(7)), "{text}");
        assert!(e.message.contains(words), "{text}: {}", e.message);
    }
    // A bad id cannot be echoed.
    let e = bad(r#"{"cmd":"ping","id":[1]}"#);
    assert_eq!((e.id, e.kind), (None, CommandKind::Ping));
    assert!(e.message.contains("`id`"));
}

#[test]
fn exactly_the_bounds_are_accepted() {
    let longest = "x".repeat(MAX_TOPIC_LEN);
    let most: Vec<String> = (0..MAX_TOPICS).map(|i| format!("t{i}")).collect();
    let text = json!({"cmd": "subscribe", "topics": most}).to_string();
    assert_eq!(ok(&text).command.topics().len(), MAX_TOPICS);
    let text = json!({"cmd": "subscribe", "topics": [longest]}).to_string();
    assert_eq!(ok(&text).command.topics()[0].len(), MAX_TOPIC_LEN);
}

#[test]
fn replies_are_the_documented_json() {
    let id = RequestId::number(1);
    assert_eq!(ok_reply(Some(&id), None, false), r#"{"id":1,"ok":true}"#);
    assert_eq!(ok_reply(None, None, true), r#"{"ok":true,"pong":true}"#);
    let topics = ["news".to_owned(), "a\"b".to_owned()];
    let text = ok_reply(Some(&RequestId::text("x")), Some(&topics), false);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"id": "x", "ok": true, "topics": ["news", "a\"b"]})
    );
    assert_eq!(
        error_reply(Some(&id), 403, "topic `x` not allowed"),
        r#"{"id":1,"ok":false,"error":{"code":403,"message":"topic `x` not allowed"}}"#
    );
    // A number id is echoed as given.
    let r = ok(r#"{"cmd":"ping","id":-2.5e3}"#);
    let text = ok_reply(r.id.as_ref(), None, true);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["id"],
        json!(-2500.0)
    );
}

fn snapshot() -> ConnSnapshot {
    let meta = ConnMeta::new(
        UniqId::from_bytes([1; 14]),
        SocketAddr::from(([127, 0, 0, 1], 1)),
    );
    ConnSnapshot::new(meta, ConnInfo::default())
}

fn check(
    authorizer: &dyn CommandAuthorizer,
    grants: Option<&ClientGrants>,
    text: &str,
) -> Result<(), CommandRefusal> {
    let conn = snapshot();
    authorizer.authorize(&CommandContext::new(&conn, grants), &ok(text).command)
}

#[test]
fn topic_prefixes_check_subscribe_and_publish_apart() {
    let rule = TopicPrefixes::new()
        .subscribe(["news.", "sport."])
        .publish(["chat."]);
    assert_eq!(
        check(
            &rule,
            None,
            r#"{"cmd":"subscribe","topics":["news.a","sport.b"]}"#
        ),
        Ok(())
    );
    // One refused topic refuses the whole command, naming it.
    let refused = check(
        &rule,
        None,
        r#"{"cmd":"subscribe","topics":["news.a","x"]}"#,
    );
    assert_eq!(refused, Err(CommandRefusal::topic("x")));
    assert_eq!(refused.unwrap_err().code, FORBIDDEN);
    // Unsubscribe follows the subscribe prefixes; ping is always allowed.
    assert!(check(&rule, None, r#"{"cmd":"unsubscribe","topics":["chat.a"]}"#).is_err());
    assert!(check(&rule, None, r#"{"cmd":"unsubscribe","topics":["news.a"]}"#).is_ok());
    assert!(check(&rule, None, r#"{"cmd":"ping"}"#).is_ok());
    let publish = |topic: &str| format!(r#"{{"cmd":"publish","topic":"{topic}","data":1}}"#);
    assert!(check(&rule, None, &publish("chat.1")).is_ok());
    assert!(check(&rule, None, &publish("news.a")).is_err());
    // Grants count only when asked for.
    let grants = ClientGrants::new().publish(["news."]);
    assert!(check(&rule, Some(&grants), &publish("news.a")).is_err());
    let rule = rule.with_grants(true);
    assert!(check(&rule, Some(&grants), &publish("news.a")).is_ok());
    assert!(check(&rule, Some(&grants), &publish("other")).is_err());
    // The empty prefix allows every topic.
    let all = TopicPrefixes::new().subscribe([""]);
    assert!(check(&all, None, r#"{"cmd":"subscribe","topics":["anything"]}"#).is_ok());
    assert!(check(&all, None, &publish("anything")).is_err());
}

#[test]
fn connection_grants_allow_only_what_was_granted() {
    let sub = r#"{"cmd":"subscribe","topics":["room.1"]}"#;
    assert!(check(&ConnectionGrants, None, sub).is_err());
    assert!(check(&ConnectionGrants, None, r#"{"cmd":"ping"}"#).is_ok());
    let grants = ClientGrants::new().subscribe(["room."]);
    assert!(check(&ConnectionGrants, Some(&grants), sub).is_ok());
    let publish = r#"{"cmd":"publish","topic":"room.1","data":"x"}"#;
    assert!(check(&ConnectionGrants, Some(&grants), publish).is_err());
    assert!(check(&AllowAllCommands, None, publish).is_ok());
}

#[test]
fn closures_are_authorisers() {
    let limit = |_: &CommandContext<'_>, command: &ClientCommand| match command {
        ClientCommand::Publish { .. } => Err(CommandRefusal::new(RATE_LIMITED, "slow down")),
        _ => Ok(()),
    };
    let publish = r#"{"cmd":"publish","topic":"t","data":"x"}"#;
    assert_eq!(check(&limit, None, publish).unwrap_err().code, 429);
    assert!(check(&limit, None, r#"{"cmd":"ping"}"#).is_ok());
}

#[test]
fn a_zero_publish_limit_is_refused() {
    let commands = ClientCommands::new(AllowAllCommands).max_publish_size(0);
    assert_eq!(
        commands.validate().unwrap_err().key,
        "client_commands.max_publish_size"
    );
    assert!(ClientCommands::new(AllowAllCommands).validate().is_ok());
}
