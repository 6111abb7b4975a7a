//! [`NodeTaskClient`]: the task connection of one gateway, with unmerged typed queries.

use std::collections::BTreeMap;

use tokio::sync::oneshot;

use super::conn::{NodeConn, Reply, outcome};
use super::merge::{self, CustomerUniqIds};
use super::route::not_a_command;
use super::{ClientError, GatewayAddr};
use crate::{ToBusiness, ToGateway, pb};

/// A reply message that can be taken out of [`ToBusiness`].
pub(crate) trait FromReply: Sized {
    fn from_reply(reply: ToBusiness) -> Option<Self>;
}

macro_rules! from_reply {
    ($($variant:ident => $ty:ty,)*) => {$(
        impl FromReply for $ty {
            fn from_reply(reply: ToBusiness) -> Option<Self> {
                match reply {
                    ToBusiness::$variant(m) => Some(m),
                    _ => None,
                }
            }
        }
    )*};
}

from_reply! {
    CheckOnline => pb::CheckOnlineResp,
    CustomerIdList => pb::CustomerIdListResp,
    CustomerIdCount => pb::CustomerIdCountResp,
    UniqIdList => pb::UniqIdListResp,
    UniqIdCount => pb::UniqIdCountResp,
    TopicList => pb::TopicListResp,
    TopicCount => pb::TopicCountResp,
    TopicUniqIdList => pb::TopicUniqIdListResp,
    TopicUniqIdCount => pb::TopicUniqIdCountResp,
    TopicCustomerIdList => pb::TopicCustomerIdListResp,
    TopicCustomerIdToUniqIdsList => pb::TopicCustomerIdToUniqIdsListResp,
    TopicCustomerIdCount => pb::TopicCustomerIdCountResp,
    ConnInfo => pb::ConnInfoResp,
    ConnInfoByCustomerId => pb::ConnInfoByCustomerIdResp,
    Metrics => pb::MetricsResp,
    Limit => pb::LimitResp,
}

/// Waits for a reply and takes the expected message out of it.
pub(crate) async fn typed<T: FromReply>(rx: oneshot::Receiver<Reply>) -> Result<T, ClientError> {
    let reply = outcome(rx).await?;
    let cmd = reply.cmd();
    T::from_reply(reply).ok_or_else(|| {
        let name = crate::cmd::name(cmd).unwrap_or("?");
        ClientError::Protocol(format!("unexpected reply {name} ({cmd})"))
    })
}

/// The task connection of one gateway (see [`TaskClient::node`](super::TaskClient::node)):
/// commands are sent as they are, with no routing, and queries answer for this gateway
/// alone. Cheap to clone.
///
/// ```no_run
/// # async fn run(task: netsvr_protocol::client::TaskClient) -> Result<(), netsvr_protocol::client::ClientError> {
/// for i in 0..task.gateways().len() {
///     if let Some(node) = task.node(i) {
///         println!("{}: {} connections", node.gateway(), node.uniq_id_count().await?);
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct NodeTaskClient {
    index: usize,
    gateway: GatewayAddr,
    conn: NodeConn,
}

impl NodeTaskClient {
    pub(crate) fn new(index: usize, gateway: GatewayAddr, conn: NodeConn) -> Self {
        Self {
            index,
            gateway,
            conn,
        }
    }

    /// The index of this gateway in the list the client was built with.
    pub fn index(&self) -> usize {
        self.index
    }

    /// This gateway's addresses.
    pub fn gateway(&self) -> &GatewayAddr {
        &self.gateway
    }

    /// Sends a no-response command to this gateway as it is; resolves once it is written
    /// to the socket. A query is refused with [`ClientError::Invalid`].
    pub async fn send(&self, cmd: ToGateway) -> Result<(), ClientError> {
        if cmd.expects_response() {
            return Err(not_a_command(&cmd));
        }
        let frame = self.conn.encode(&cmd)?;
        outcome(self.conn.start_send(frame).await?).await
    }

    /// Sends any query and waits for its reply (Register and Unregister belong to the worker
    /// port and are refused, as are no-response commands).
    pub async fn request(&self, req: ToGateway) -> Result<ToBusiness, ClientError> {
        if !req.expects_response()
            || matches!(req, ToGateway::Register(_) | ToGateway::Unregister(_))
        {
            let name = crate::cmd::name(req.cmd()).unwrap_or("?");
            return Err(ClientError::Invalid(format!(
                "{name} is not a task-port query"
            )));
        }
        outcome(self.conn.start_request(&req).await?).await
    }

    /// Queues a query; the receiver gets the reply (used for fan-out: queue all, then wait).
    pub(crate) async fn start(
        &self,
        req: &ToGateway,
    ) -> Result<oneshot::Receiver<Reply>, ClientError> {
        self.conn.start_request(req).await
    }

    /// Queues a written frame; the receiver resolves once it is written.
    pub(crate) async fn start_send(
        &self,
        frame: bytes::Bytes,
    ) -> Result<oneshot::Receiver<Result<(), ClientError>>, ClientError> {
        self.conn.start_send(frame).await
    }

    async fn ask<T: FromReply>(&self, req: &ToGateway) -> Result<T, ClientError> {
        typed(self.start(req).await?).await
    }

    /// The subset of `uniq_ids` online on this gateway.
    pub async fn check_online(&self, uniq_ids: &[String]) -> Result<Vec<String>, ClientError> {
        let req = ToGateway::CheckOnline(pb::CheckOnlineReq {
            uniq_ids: uniq_ids.to_vec(),
        });
        Ok(self.ask::<pb::CheckOnlineResp>(&req).await?.uniq_ids)
    }

    /// Every uniqId on this gateway.
    pub async fn uniq_id_list(&self) -> Result<Vec<String>, ClientError> {
        Ok(self
            .ask::<pb::UniqIdListResp>(&ToGateway::UniqIdList)
            .await?
            .uniq_ids)
    }

    /// How many connections this gateway holds.
    pub async fn uniq_id_count(&self) -> Result<i32, ClientError> {
        Ok(self
            .ask::<pb::UniqIdCountResp>(&ToGateway::UniqIdCount)
            .await?
            .count)
    }

    /// Every customerId on this gateway.
    pub async fn customer_id_list(&self) -> Result<Vec<String>, ClientError> {
        let resp: pb::CustomerIdListResp = self.ask(&ToGateway::CustomerIdList).await?;
        Ok(resp.customer_ids)
    }

    /// How many customerIds this gateway holds.
    pub async fn customer_id_count(&self) -> Result<i32, ClientError> {
        let resp: pb::CustomerIdCountResp = self.ask(&ToGateway::CustomerIdCount).await?;
        Ok(resp.count)
    }

    /// Every topic on this gateway.
    pub async fn topic_list(&self) -> Result<Vec<String>, ClientError> {
        Ok(self
            .ask::<pb::TopicListResp>(&ToGateway::TopicList)
            .await?
            .topics)
    }

    /// How many topics this gateway holds.
    pub async fn topic_count(&self) -> Result<i32, ClientError> {
        Ok(self
            .ask::<pb::TopicCountResp>(&ToGateway::TopicCount)
            .await?
            .count)
    }

    /// Topic → its uniqIds on this gateway.
    pub async fn topic_uniq_id_list(
        &self,
        topics: &[String],
    ) -> Result<BTreeMap<String, Vec<String>>, ClientError> {
        let req = ToGateway::TopicUniqIdList(pb::TopicUniqIdListReq {
            topics: topics.to_vec(),
        });
        Ok(merge::topic_uniq_ids(self.ask(&req).await?))
    }

    /// Topic → its member count on this gateway (`count_all`: every topic).
    pub async fn topic_uniq_id_count(
        &self,
        topics: &[String],
        count_all: bool,
    ) -> Result<BTreeMap<String, i32>, ClientError> {
        let req = ToGateway::TopicUniqIdCount(pb::TopicUniqIdCountReq {
            topics: topics.to_vec(),
            count_all,
        });
        Ok(self.ask::<pb::TopicUniqIdCountResp>(&req).await?.items)
    }

    /// Topic → its customerIds on this gateway.
    pub async fn topic_customer_id_list(
        &self,
        topics: &[String],
    ) -> Result<BTreeMap<String, Vec<String>>, ClientError> {
        let req = ToGateway::TopicCustomerIdList(pb::TopicCustomerIdListReq {
            topics: topics.to_vec(),
        });
        Ok(merge::topic_customer_ids(self.ask(&req).await?))
    }

    /// Topic → customerId → that customer's uniqIds on this gateway.
    pub async fn topic_customer_id_to_uniq_ids_list(
        &self,
        topics: &[String],
    ) -> Result<BTreeMap<String, CustomerUniqIds>, ClientError> {
        let req = ToGateway::TopicCustomerIdToUniqIdsList(pb::TopicCustomerIdToUniqIdsListReq {
            topics: topics.to_vec(),
        });
        Ok(merge::topic_customer_uniq_ids(self.ask(&req).await?))
    }

    /// Topic → its customer count on this gateway, as the gateway counts it.
    pub async fn topic_customer_id_count(
        &self,
        topics: &[String],
        count_all: bool,
    ) -> Result<BTreeMap<String, i32>, ClientError> {
        let req = ToGateway::TopicCustomerIdCount(pb::TopicCustomerIdCountReq {
            topics: topics.to_vec(),
            count_all,
        });
        Ok(self.ask::<pb::TopicCustomerIdCountResp>(&req).await?.items)
    }

    /// uniqId → session / customerId / topics, for those of `req.uniq_ids` on this gateway.
    pub async fn conn_info(
        &self,
        req: &pb::ConnInfoReq,
    ) -> Result<BTreeMap<String, pb::ConnInfoRespItem>, ClientError> {
        let req = ToGateway::ConnInfo(req.clone());
        Ok(self.ask::<pb::ConnInfoResp>(&req).await?.items)
    }

    /// customerId → its connections on this gateway.
    pub async fn conn_info_by_customer_id(
        &self,
        req: &pb::ConnInfoByCustomerIdReq,
    ) -> Result<BTreeMap<String, Vec<pb::ConnInfoByCustomerIdRespItem>>, ClientError> {
        let req = ToGateway::ConnInfoByCustomerId(req.clone());
        Ok(merge::conn_info_by_customer(self.ask(&req).await?))
    }

    /// This gateway's counters and rates.
    pub async fn metrics(&self) -> Result<pb::MetricsResp, ClientError> {
        self.ask(&ToGateway::Metrics).await
    }

    /// Sets this gateway's global limits where > 0 and returns the limits now in force.
    pub async fn limit(&self, req: pb::LimitReq) -> Result<pb::LimitResp, ClientError> {
        self.ask(&ToGateway::Limit(req)).await
    }
}
