//! The write side of the admin API: JSON commands that send, publish, subscribe and kick
//! through the `Gateway` handle. Bad input is a 400 with `{"error": "..."}`; nothing is
//! done unless the whole request is valid.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hyper::StatusCode;
use netsvr_core::{Gateway, UniqId};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::http::{Resp, error};

/// How `data` is written in a request.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Encoding {
    /// UTF-8 text, sent as is.
    #[default]
    Text,
    /// Standard base64 (with padding), decoded before sending.
    Base64,
}

/// `/api/v1/send`: to connections by uniqId.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Send {
    uniq_ids: Vec<String>,
    data: String,
    #[serde(default)]
    encoding: Encoding,
}

/// `/api/v1/send_to_customers`: to every connection of each customer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SendToCustomers {
    customer_ids: Vec<String>,
    data: String,
    #[serde(default)]
    encoding: Encoding,
}

/// `/api/v1/broadcast`: to everyone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Broadcast {
    data: String,
    #[serde(default)]
    encoding: Encoding,
}

/// `/api/v1/publish`: to the subscribers of each topic.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Publish {
    topics: Vec<String>,
    data: String,
    #[serde(default)]
    encoding: Encoding,
}

/// `/api/v1/subscribe` and `/api/v1/unsubscribe`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Topics {
    uniq_id: String,
    topics: Vec<String>,
    /// Pushed to the connection after the change.
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    encoding: Encoding,
}

/// `/api/v1/kick`: close connections by uniqId and/or customer, after an optional message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kick {
    #[serde(default)]
    uniq_ids: Vec<String>,
    #[serde(default)]
    customer_ids: Vec<String>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    encoding: Encoding,
}

/// A 400 response carrying why.
struct BadRequest(String);

type Outcome = Result<Value, BadRequest>;

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, BadRequest> {
    serde_json::from_slice(body).map_err(|e| BadRequest(format!("invalid JSON body: {e}")))
}

fn decode(data: String, encoding: Encoding) -> Result<Vec<u8>, BadRequest> {
    match encoding {
        Encoding::Text => Ok(data.into_bytes()),
        Encoding::Base64 => STANDARD
            .decode(data.as_bytes())
            .map_err(|e| BadRequest(format!("`data` is not valid base64: {e}"))),
    }
}

fn decode_opt(data: Option<String>, encoding: Encoding) -> Result<Option<Vec<u8>>, BadRequest> {
    data.map(|d| decode(d, encoding)).transpose()
}

fn uniq_id(text: &str) -> Result<UniqId, BadRequest> {
    text.parse()
        .map_err(|_| BadRequest(format!("`{text}` is not a uniqId (28 hex characters)")))
}

fn uniq_ids(texts: &[String]) -> Result<Vec<UniqId>, BadRequest> {
    texts.iter().map(|t| uniq_id(t)).collect()
}

fn send(gw: &Gateway, body: &[u8]) -> Outcome {
    let req: Send = parse(body)?;
    let ids = uniq_ids(&req.uniq_ids)?;
    let data = decode(req.data, req.encoding)?;
    Ok(json!({ "delivered": gw.multicast(&ids, data) }))
}

fn send_to_customers(gw: &Gateway, body: &[u8]) -> Outcome {
    let req: SendToCustomers = parse(body)?;
    let data = decode(req.data, req.encoding)?;
    Ok(json!({ "delivered": gw.multicast_customers(&req.customer_ids, data) }))
}

fn broadcast(gw: &Gateway, body: &[u8]) -> Outcome {
    let req: Broadcast = parse(body)?;
    let data = decode(req.data, req.encoding)?;
    Ok(json!({ "delivered": gw.broadcast(data) }))
}

fn publish(gw: &Gateway, body: &[u8]) -> Outcome {
    let req: Publish = parse(body)?;
    let data = decode(req.data, req.encoding)?;
    Ok(json!({ "delivered": gw.publish(&req.topics, data) }))
}

fn subscription(gw: &Gateway, body: &[u8], subscribe: bool) -> Outcome {
    let req: Topics = parse(body)?;
    let id = uniq_id(&req.uniq_id)?;
    let data = decode_opt(req.data, req.encoding)?;
    if let Some(bad) = req.topics.iter().find(|t| t.is_empty()) {
        return Err(BadRequest(format!("topic `{bad}` is empty")));
    }
    let found = if subscribe {
        gw.subscribe(&id, &req.topics, data.as_deref())
    } else {
        gw.unsubscribe(&id, &req.topics, data.as_deref())
    };
    Ok(json!({ "found": found }))
}

fn kick(gw: &Gateway, body: &[u8]) -> Outcome {
    let req: Kick = parse(body)?;
    let ids = uniq_ids(&req.uniq_ids)?;
    let data = decode_opt(req.data, req.encoding)?;
    let mut kicked = 0;
    if !ids.is_empty() {
        kicked += gw.force_offline(&ids, data.as_deref());
    }
    if !req.customer_ids.is_empty() {
        kicked += gw.force_offline_customers(&req.customer_ids, data.as_deref());
    }
    Ok(json!({ "kicked": kicked }))
}

/// The command paths, for routing.
pub(crate) const PATHS: [&str; 7] = [
    "/api/v1/send",
    "/api/v1/send_to_customers",
    "/api/v1/broadcast",
    "/api/v1/publish",
    "/api/v1/subscribe",
    "/api/v1/unsubscribe",
    "/api/v1/kick",
];

/// Runs the command at `path` with a JSON `body`.
pub(crate) fn run(gw: &Gateway, path: &str, body: &[u8]) -> Resp {
    let outcome = match path {
        "/api/v1/send" => send(gw, body),
        "/api/v1/send_to_customers" => send_to_customers(gw, body),
        "/api/v1/broadcast" => broadcast(gw, body),
        "/api/v1/publish" => publish(gw, body),
        "/api/v1/subscribe" => subscription(gw, body, true),
        "/api/v1/unsubscribe" => subscription(gw, body, false),
        "/api/v1/kick" => kick(gw, body),
        _ => return error(StatusCode::NOT_FOUND, "no such command"),
    };
    match outcome {
        Ok(value) => super::http::json(StatusCode::OK, &value),
        Err(BadRequest(reason)) => error(StatusCode::BAD_REQUEST, reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_decoding() {
        assert_eq!(
            decode("hi".into(), Encoding::Text).ok(),
            Some(b"hi".to_vec())
        );
        assert_eq!(
            decode("aGk=".into(), Encoding::Base64).ok(),
            Some(b"hi".to_vec())
        );
        assert!(decode("a*k=".into(), Encoding::Base64).is_err());
        assert_eq!(decode_opt(None, Encoding::Base64).ok(), Some(None));
    }

    #[test]
    fn requests_are_strict() {
        assert!(parse::<Broadcast>(br#"{"data":"x"}"#).is_ok());
        assert!(parse::<Broadcast>(br#"{"data":"x","encoding":"base64"}"#).is_ok());
        assert!(parse::<Broadcast>(br#"{"data":"x","encoding":"hex"}"#).is_err());
        assert!(parse::<Broadcast>(br#"{"data":"x","extra":1}"#).is_err());
        assert!(parse::<Broadcast>(br#"{}"#).is_err());
        assert!(parse::<Kick>(br#"{}"#).is_ok());
        assert!(parse::<Send>(b"not json").is_err());
    }

    #[test]
    fn uniq_ids_are_validated() {
        assert!(uniq_id("7f00000117ae65432100aabbccdd").is_ok());
        let err = uniq_ids(&["7f00000117ae65432100aabbccdd".into(), "nope".into()]);
        assert!(matches!(err, Err(BadRequest(m)) if m.contains("nope")));
    }
}
