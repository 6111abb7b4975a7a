//! The netsvr load generator (`netsvr-load`) as a library: argument parsing, a minimal
//! WebSocket client, latency histograms, per-second series and their plots, and one module
//! per load mode (see [`load`]).

pub mod load;

pub use load::args::{Args, Mode, SinkKind};
pub use load::idle::read_rss_kib;
pub use load::ws::{connect, frame_len};
