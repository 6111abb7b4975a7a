//! Redis queue sink (feature `redis`): events to a list (LPUSH) or a stream (XADD).

mod config;

pub use config::{KeyKind, RedisConfig, Target};
