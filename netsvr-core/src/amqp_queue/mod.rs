//! AMQP 0-9-1 queue sink (feature `amqp`): events to a RabbitMQ exchange with publisher confirms.

mod config;

pub use config::{AmqpConfig, ExchangeKind, QueueBinding};
