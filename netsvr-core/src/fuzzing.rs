//! Entry points for the fuzz targets (feature `fuzzing`): internals driven with arbitrary
//! input. Not a stable API.

use crate::config::GatewayConfig;

/// Parses `head` as an HTTP/1 request head with `httparse` (the parser hyper uses) and runs
/// the gateway's upgrade checks on it. `None`: not a complete, valid request head (hyper
/// would answer 400 itself); `Some(Ok(()))`: the request goes on to admission;
/// `Some(Err(status))`: the gateway answers `status`.
pub fn check_upgrade_head(
    cfg: &GatewayConfig,
    head: &[u8],
    draining: bool,
) -> Option<Result<(), u16>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    if !matches!(parsed.parse(head), Ok(httparse::Status::Complete(_))) {
        return None;
    }
    let mut builder = hyper::Request::builder()
        .method(parsed.method?)
        .uri(parsed.path?);
    for header in parsed.headers.iter() {
        builder = builder.header(header.name, header.value);
    }
    let request = builder.body(()).ok()?;
    Some(crate::transport::request::check(cfg, &request, draining).map_err(|a| a.status.as_u16()))
}

/// Parses `payload` as a client command (as a client text message would be) and checks
/// what comes out: a command's topics are within the bounds, and every reply it could get
/// is a JSON object. Panics on a broken invariant.
pub fn client_command(payload: &[u8]) {
    use crate::client_cmd::{self, ClientCommand, MAX_TOPIC_LEN, MAX_TOPICS};

    let reply = match client_cmd::parse(payload) {
        None => return,
        Some(Err(error)) => {
            assert_eq!(error.code, client_cmd::BAD_REQUEST);
            client_cmd::error_reply(error.id.as_ref(), error.code, &error.message)
        }
        Some(Ok(request)) => {
            let topics = request.command.topics();
            assert!(topics.len() <= MAX_TOPICS);
            for topic in topics {
                assert!(!topic.is_empty() && topic.len() <= MAX_TOPIC_LEN);
            }
            if let ClientCommand::Subscribe { topics } | ClientCommand::Unsubscribe { topics } =
                &request.command
            {
                assert!(!topics.is_empty());
            }
            client_cmd::ok_reply(request.id.as_ref(), Some(topics), true)
        }
    };
    let parsed: Result<serde_json::Value, _> = serde_json::from_str(&reply);
    assert!(
        parsed.is_ok_and(|v| v.is_object()),
        "reply is not a JSON object: {reply}"
    );
}
