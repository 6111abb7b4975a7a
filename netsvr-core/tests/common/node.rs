//! A gateway serving its worker and task ports, all on ephemeral loopback ports.

use std::net::SocketAddr;

use netsvr_core::worker::{WorkerConfig, WorkerPorts};
use netsvr_core::{Gateway, GatewayConfig};
use netsvr_protocol::client::GatewayAddr;

use super::{Client, test_config};

/// One gateway node with its business ports.
pub struct Node {
    pub gateway: Gateway,
    pub worker: SocketAddr,
    pub task: SocketAddr,
}

impl Node {
    pub async fn start() -> Self {
        Self::start_with(|_, _| {}).await
    }

    /// Starts a node after `tune` adjusts the port and gateway configs.
    pub async fn start_with(tune: impl FnOnce(&mut WorkerConfig, &mut GatewayConfig)) -> Self {
        let mut wcfg = WorkerConfig::default();
        wcfg.worker_listen = "127.0.0.1:0".parse().unwrap();
        wcfg.task_listen = "127.0.0.1:0".parse().unwrap();
        let mut gcfg = test_config();
        tune(&mut wcfg, &mut gcfg);
        let ports = WorkerPorts::bind(wcfg).unwrap();
        let (worker, task) = (ports.worker_addr().unwrap(), ports.task_addr().unwrap());
        let (gateway, serve) = Gateway::builder()
            .config(gcfg)
            .node_addr(ports.node_addr())
            .sink(ports.sink())
            .build()
            .unwrap();
        tokio::spawn(serve);
        tokio::spawn(ports.serve(gateway.clone()));
        Self {
            gateway,
            worker,
            task,
        }
    }

    pub fn url(&self, query: &str) -> String {
        format!("ws://{}/netsvr{query}", self.gateway.local_addr())
    }

    pub async fn client(&self) -> Client {
        tokio_tungstenite::connect_async(self.url(""))
            .await
            .unwrap()
            .0
    }

    /// The node as the business client addresses it.
    pub fn addr(&self) -> GatewayAddr {
        GatewayAddr::new(self.worker, self.task)
    }

    /// A uniqId of this node that no connection holds.
    pub fn offline_id(&self) -> String {
        format!("{}0000000000000001", self.addr().node_prefix().unwrap())
    }
}
