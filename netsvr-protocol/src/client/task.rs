//! [`TaskClient`]: commands routed to the owning gateways, queries merged across gateways.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::debug;

use super::conn::{NodeConn, outcome};

use super::merge::{self, CustomerUniqIds};
use super::node::{FromReply, NodeTaskClient, typed};
use super::route::{Plan, Router};
use super::{ClientConfig, ClientError, GatewayAddr};
use crate::{ToGateway, pb};

/// Commands and queries to every gateway's task port, one connection per gateway.
///
/// * [`send`](Self::send) routes a no-response command: uniqId-addressed commands go to the
///   gateway owning each uniqId (split per gateway when there are several), the others to
///   every gateway. uniqIds that match no gateway are dropped and counted
///   ([`unrouted`](Self::unrouted)).
/// * The query methods ask every gateway (or only the owners, for the uniqId-based ones),
///   concurrently over the pipelined connections, and merge the answers. A query fails if
///   any gateway asked fails; use [`node`](Self::node) for one gateway's answer alone.
///
/// A connection that breaks is re-opened in the background with a capped exponential
/// back-off; until it is back, commands and queries for that gateway fail at once with
/// `Io(NotConnected)`. Cheap to clone; dropping the last clone closes the connections once
/// what was queued is written.
///
/// ```no_run
/// use netsvr_protocol::client::{ClientConfig, GatewayAddr, TaskClient};
/// use netsvr_protocol::{ToGateway, pb};
///
/// # async fn run(gateways: Vec<GatewayAddr>) -> Result<(), netsvr_protocol::client::ClientError> {
/// let task = TaskClient::connect(gateways, ClientConfig::default()).await?;
/// task.send(ToGateway::Broadcast(pb::Broadcast { data: "hello".into() })).await?;
/// let online = task.check_online(&["7f00000117ae6650a1b2000000c8".to_owned()]).await?;
/// let topics = task.topic_list().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TaskClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    nodes: Vec<NodeTaskClient>,
    gateways: Vec<GatewayAddr>,
    router: Router,
    unrouted: AtomicU64,
    config: Arc<ClientConfig>,
}

impl TaskClient {
    /// Connects to the task port of every gateway (all must answer this first time; later
    /// losses are repaired in the background). Must run inside a Tokio runtime.
    pub async fn connect(
        gateways: Vec<GatewayAddr>,
        config: ClientConfig,
    ) -> Result<Self, ClientError> {
        if gateways.is_empty() {
            return Err(ClientError::Invalid("no gateway given".to_owned()));
        }
        let config = Arc::new(config);
        let mut streams = Vec::with_capacity(gateways.len());
        for g in &gateways {
            streams.push(super::io::connect(g.task(), &config).await?);
        }
        let nodes = gateways
            .iter()
            .zip(streams)
            .enumerate()
            .map(|(i, (g, stream))| {
                let conn = NodeConn::spawn(g.task(), stream, Arc::clone(&config));
                NodeTaskClient::new(i, g.clone(), conn)
            })
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                nodes,
                router: Router::new(&gateways),
                gateways,
                unrouted: AtomicU64::new(0),
                config,
            }),
        })
    }

    /// The gateways, in the order given; a gateway's index is its position here.
    pub fn gateways(&self) -> &[GatewayAddr] {
        &self.inner.gateways
    }

    /// The connection of one gateway, to query it alone; `None` past the end.
    pub fn node(&self, index: usize) -> Option<NodeTaskClient> {
        self.inner.nodes.get(index).cloned()
    }

    /// The index of the gateway owning a uniqId (by its first 12 hex characters).
    pub fn owner_of(&self, uniq_id: &str) -> Option<usize> {
        self.inner.router.owner(uniq_id)
    }

    /// How many uniqIds [`send`](Self::send) has dropped so far because no gateway owns them.
    pub fn unrouted(&self) -> u64 {
        self.inner.unrouted.load(Ordering::Relaxed)
    }

    /// Sends a no-response command, routed (see the type's docs); resolves once it is
    /// written to every target socket. Every target is attempted; the first error is
    /// returned. A query is refused with [`ClientError::Invalid`], as is a `SingleCastBulk`
    /// whose shape is neither 1 × N nor N × N.
    pub async fn send(&self, cmd: ToGateway) -> Result<(), ClientError> {
        self.send_routed(cmd).await.map(drop)
    }

    /// As [`send`](Self::send), returning the uniqIds that matched no gateway (dropped).
    pub async fn send_routed(&self, cmd: ToGateway) -> Result<Vec<String>, ClientError> {
        let routed = self.inner.router.route(cmd)?;
        if !routed.unrouted.is_empty() {
            let n = u64::try_from(routed.unrouted.len()).unwrap_or(u64::MAX);
            self.inner.unrouted.fetch_add(n, Ordering::Relaxed);
            debug!(unrouted = ?routed.unrouted, "uniqIds owned by no configured gateway");
        }
        let mut frames = Vec::new();
        match routed.plan {
            Plan::Everyone(cmd) => {
                let frame = super::io::encode(&cmd, &self.inner.config.codec)?;
                for i in 0..self.inner.nodes.len() {
                    frames.push((i, frame.clone()));
                }
            }
            Plan::Each(cmds) => {
                for (i, cmd) in cmds {
                    frames.push((i, super::io::encode(&cmd, &self.inner.config.codec)?));
                }
            }
        }
        let mut first_err = None;
        let mut waits = Vec::with_capacity(frames.len());
        for (i, frame) in frames {
            let started = match self.inner.nodes.get(i) {
                Some(node) => node.start_send(frame).await,
                None => Err(ClientError::Closed),
            };
            match started {
                Ok(rx) => waits.push(rx),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        for rx in waits {
            if let Err(e) = outcome(rx).await {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(routed.unrouted),
        }
    }

    /// The online subset of `uniq_ids`, in their order; each is asked of its owner only
    /// (uniqIds owned by no gateway are not online).
    pub async fn check_online(&self, uniq_ids: &[String]) -> Result<Vec<String>, ClientError> {
        let (groups, _) = self.inner.router.group_ids(uniq_ids.iter().cloned());
        let reqs = groups.into_iter().map(|(i, ids)| {
            (
                i,
                ToGateway::CheckOnline(pb::CheckOnlineReq { uniq_ids: ids }),
            )
        });
        let answers: Vec<pb::CheckOnlineResp> = self.ask_each(reqs).await?;
        let online: HashSet<String> = answers.into_iter().flat_map(|r| r.uniq_ids).collect();
        Ok(uniq_ids
            .iter()
            .filter(|id| online.contains(*id))
            .cloned()
            .collect())
    }

    /// Every uniqId of every gateway.
    pub async fn uniq_id_list(&self) -> Result<Vec<String>, ClientError> {
        let answers: Vec<pb::UniqIdListResp> = self.ask_all(&ToGateway::UniqIdList).await?;
        Ok(answers.into_iter().flat_map(|r| r.uniq_ids).collect())
    }

    /// The number of connections, summed over the gateways.
    pub async fn uniq_id_count(&self) -> Result<u64, ClientError> {
        let answers: Vec<pb::UniqIdCountResp> = self.ask_all(&ToGateway::UniqIdCount).await?;
        Ok(answers.iter().map(|r| merge::count(r.count)).sum())
    }

    /// Every customerId, deduplicated (a customer may be connected to several gateways).
    pub async fn customer_id_list(&self) -> Result<Vec<String>, ClientError> {
        let answers: Vec<pb::CustomerIdListResp> = self.ask_all(&ToGateway::CustomerIdList).await?;
        Ok(merge::dedup(answers.into_iter().map(|r| r.customer_ids)))
    }

    /// The number of distinct customerIds: the length of
    /// [`customer_id_list`](Self::customer_id_list), since per-gateway counts would count a
    /// customer connected to two gateways twice.
    pub async fn customer_id_count(&self) -> Result<u64, ClientError> {
        Ok(len(&self.customer_id_list().await?))
    }

    /// Every topic, deduplicated.
    pub async fn topic_list(&self) -> Result<Vec<String>, ClientError> {
        let answers: Vec<pb::TopicListResp> = self.ask_all(&ToGateway::TopicList).await?;
        Ok(merge::dedup(answers.into_iter().map(|r| r.topics)))
    }

    /// The number of distinct topics: the length of [`topic_list`](Self::topic_list).
    pub async fn topic_count(&self) -> Result<u64, ClientError> {
        Ok(len(&self.topic_list().await?))
    }

    /// Topic → its uniqIds on every gateway (lists concatenated).
    pub async fn topic_uniq_id_list(
        &self,
        topics: &[String],
    ) -> Result<BTreeMap<String, Vec<String>>, ClientError> {
        let req = ToGateway::TopicUniqIdList(pb::TopicUniqIdListReq {
            topics: topics.to_vec(),
        });
        let answers: Vec<pb::TopicUniqIdListResp> = self.ask_all(&req).await?;
        Ok(merge::merge_lists(
            answers.into_iter().map(merge::topic_uniq_ids),
            false,
        ))
    }

    /// Topic → its member count, summed over the gateways (`count_all`: every topic).
    pub async fn topic_uniq_id_count(
        &self,
        topics: &[String],
        count_all: bool,
    ) -> Result<BTreeMap<String, u64>, ClientError> {
        let req = ToGateway::TopicUniqIdCount(pb::TopicUniqIdCountReq {
            topics: topics.to_vec(),
            count_all,
        });
        let answers: Vec<pb::TopicUniqIdCountResp> = self.ask_all(&req).await?;
        Ok(merge::sum_counts(answers.into_iter().map(|r| r.items)))
    }

    /// Topic → its customerIds across the gateways, deduplicated.
    pub async fn topic_customer_id_list(
        &self,
        topics: &[String],
    ) -> Result<BTreeMap<String, Vec<String>>, ClientError> {
        let req = ToGateway::TopicCustomerIdList(pb::TopicCustomerIdListReq {
            topics: topics.to_vec(),
        });
        let answers: Vec<pb::TopicCustomerIdListResp> = self.ask_all(&req).await?;
        Ok(merge::merge_lists(
            answers.into_iter().map(merge::topic_customer_ids),
            true,
        ))
    }

    /// Topic → customerId → that customer's uniqIds on every gateway.
    pub async fn topic_customer_id_to_uniq_ids_list(
        &self,
        topics: &[String],
    ) -> Result<BTreeMap<String, CustomerUniqIds>, ClientError> {
        let req = ToGateway::TopicCustomerIdToUniqIdsList(pb::TopicCustomerIdToUniqIdsListReq {
            topics: topics.to_vec(),
        });
        let answers: Vec<pb::TopicCustomerIdToUniqIdsListResp> = self.ask_all(&req).await?;
        Ok(merge::merge_nested(
            answers.into_iter().map(merge::topic_customer_uniq_ids),
        ))
    }

    /// Topic → its number of **distinct** customers across the gateways (`count_all`: every
    /// topic). With one gateway this is that gateway's `TopicCustomerIdCount`. With several,
    /// summing their counts would count a customer connected to two gateways twice, so this
    /// asks `TopicCustomerIdList` instead (after `TopicList` when `count_all`) and counts the
    /// deduplicated customers; [`NodeTaskClient::topic_customer_id_count`] gives raw counts.
    pub async fn topic_customer_id_count(
        &self,
        topics: &[String],
        count_all: bool,
    ) -> Result<BTreeMap<String, u64>, ClientError> {
        if let [node] = self.inner.nodes.as_slice() {
            let counts = node.topic_customer_id_count(topics, count_all).await?;
            return Ok(merge::sum_counts([counts]));
        }
        let all;
        let topics = if count_all {
            all = self.topic_list().await?;
            &all
        } else {
            topics
        };
        let lists = self.topic_customer_id_list(topics).await?;
        Ok(lists.into_iter().map(|(t, ids)| (t, len(&ids))).collect())
    }

    /// uniqId → session / customerId / topics; each uniqId is asked of its owner only.
    pub async fn conn_info(
        &self,
        req: &pb::ConnInfoReq,
    ) -> Result<BTreeMap<String, pb::ConnInfoRespItem>, ClientError> {
        let (groups, _) = self.inner.router.group_ids(req.uniq_ids.iter().cloned());
        let reqs = groups.into_iter().map(|(i, uniq_ids)| {
            let part = pb::ConnInfoReq {
                uniq_ids,
                ..req.clone()
            };
            (i, ToGateway::ConnInfo(part))
        });
        let answers: Vec<pb::ConnInfoResp> = self.ask_each(reqs).await?;
        Ok(answers.into_iter().flat_map(|r| r.items).collect())
    }

    /// customerId → its connections on every gateway (concatenated).
    pub async fn conn_info_by_customer_id(
        &self,
        req: &pb::ConnInfoByCustomerIdReq,
    ) -> Result<BTreeMap<String, Vec<pb::ConnInfoByCustomerIdRespItem>>, ClientError> {
        let req = ToGateway::ConnInfoByCustomerId(req.clone());
        let answers: Vec<pb::ConnInfoByCustomerIdResp> = self.ask_all(&req).await?;
        Ok(merge::merge_conn_info_by_customer(
            answers.into_iter().map(merge::conn_info_by_customer),
        ))
    }

    /// Each gateway's counters and rates (they are not summed: rates do not add up).
    pub async fn metrics(&self) -> Result<Vec<(GatewayAddr, pb::MetricsResp)>, ClientError> {
        let answers: Vec<pb::MetricsResp> = self.ask_all(&ToGateway::Metrics).await?;
        Ok(self.inner.gateways.iter().cloned().zip(answers).collect())
    }

    /// Sets the global limits (where > 0) on every gateway; returns each one's limits now.
    pub async fn limit(
        &self,
        req: pb::LimitReq,
    ) -> Result<Vec<(GatewayAddr, pb::LimitResp)>, ClientError> {
        let answers: Vec<pb::LimitResp> = self.ask_all(&ToGateway::Limit(req)).await?;
        Ok(self.inner.gateways.iter().cloned().zip(answers).collect())
    }

    /// Asks every gateway the same query; the answers in gateway order.
    async fn ask_all<T: FromReply>(&self, req: &ToGateway) -> Result<Vec<T>, ClientError> {
        let reqs = (0..self.inner.nodes.len()).map(|i| (i, req.clone()));
        self.ask_each(reqs).await
    }

    /// Queues every query first, then waits for the answers, so gateways work in parallel.
    async fn ask_each<T: FromReply>(
        &self,
        reqs: impl IntoIterator<Item = (usize, ToGateway)>,
    ) -> Result<Vec<T>, ClientError> {
        let mut waits = Vec::new();
        for (i, req) in reqs {
            let node = self.inner.nodes.get(i).ok_or(ClientError::Closed)?;
            waits.push(node.start(&req).await?);
        }
        let mut out = Vec::with_capacity(waits.len());
        for rx in waits {
            out.push(typed(rx).await?);
        }
        Ok(out)
    }
}

/// A length as a `u64`.
fn len<T>(v: &[T]) -> u64 {
    u64::try_from(v.len()).unwrap_or(u64::MAX)
}
