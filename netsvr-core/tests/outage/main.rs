//! Back-end faults under load: Redis, RabbitMQ and HTTP callbacks down for 30 s at once; shutdown.
#![cfg(all(
    feature = "redis",
    feature = "amqp",
    feature = "http",
    feature = "worker"
))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    unreachable_pub
)]

#[path = "../common/mod.rs"]
mod common;

mod backends;
mod check;
mod outages;
mod shutdown;
