//! HTTP callbacks (feature `http`): OnOpen as the authenticator, OnMessage and OnClose as sinks.

mod config;

pub use config::CallbackConfig;
