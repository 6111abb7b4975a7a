//! The admin HTTP port: Prometheus metrics, health, the JSON status and command API, a status page.
