//! Custom authentication: admits `?token=demo-<customer>` and binds that customer id;
//! refuses anything else with HTTP 401. Each message is sent to every connection of the
//! sender's customer (all their tabs and devices).
//!
//! `cargo run --release --example custom_auth -- --listen 127.0.0.1:9000`, then connect to
//! `ws://127.0.0.1:9000/?token=demo-alice`.

use netsvr_core::{
    Admission, AuthDecision, Authenticator, EventKind, Gateway, HandshakeRequest, Rejection,
    async_trait,
};
use netsvr_examples::{init_logging, parse_args, run};

/// Admits `token=demo-<customer>`.
struct TokenAuth;

#[async_trait]
impl Authenticator for TokenAuth {
    async fn authenticate(&self, request: &HandshakeRequest) -> AuthDecision {
        let customer = request
            .query_param("token")
            .and_then(|t| t.strip_prefix("demo-"))
            .filter(|c| !c.is_empty() && c.chars().all(|ch| ch.is_ascii_alphanumeric()));
        match customer {
            Some(customer) => AuthDecision::Allow(
                Admission::new()
                    .customer(customer)
                    .message(format!("welcome {customer}")),
            ),
            None => AuthDecision::Reject(Rejection::Status(401)),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let args = parse_args()?;
    let builder = Gateway::builder().authenticator(TokenAuth);
    run("custom_auth", &args, builder, |gateway, event| {
        if let EventKind::Message { payload, .. } = &event.kind
            && let Some(customer) = &event.conn.info.customer_id
        {
            gateway.send_to_customer(customer, payload);
        }
    })
    .await
}
