//! Cluster-wide queries: every live node answers a netsvr query; the answers are merged
//! (or kept per node). The `Cluster` handle also lists the live nodes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use netsvr_protocol::{ToBusiness, ToGateway, pb};
use tokio::sync::mpsc;

use super::merge::{count, merge, topic_counts};
use super::node::{NodeId, NodeRecord};
use super::outbound::Outbound;
use crate::event::ConnInfo;
use crate::gateway::Gateway;
use crate::id::UniqId;

/// Why a cluster-wide query has no (complete) answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// These nodes did not answer within `query_timeout` (the engine may be down).
    #[error("no answer from {} node(s) within the query timeout", .0.len())]
    NoAnswer(Vec<NodeId>),
    /// The cross-node buffer is full; the query was not sent.
    #[error("the cross-node buffer is full")]
    Full,
    /// The message is a command, not a query.
    #[error("command {0} is not a query")]
    NotAQuery(u32),
}

/// One node's answer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NodeAnswer {
    /// The node.
    pub node: NodeId,
    /// Its answer, or why there is none.
    pub answer: Result<ToBusiness, QueryError>,
}

/// A merged answer, with the nodes that did not answer (their part is missing).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Merged {
    /// The answers joined.
    pub answer: ToBusiness,
    /// Nodes that did not answer in time.
    pub missing: Vec<NodeId>,
}

/// The cluster as seen from this node: cluster-wide queries and the live nodes. Get it from
/// [`Gateway::cluster`].
#[derive(Debug, Clone)]
pub struct Cluster {
    gateway: Gateway,
    out: Arc<Outbound>,
}

impl Cluster {
    pub(crate) fn new(gateway: Gateway, out: Arc<Outbound>) -> Self {
        Self { gateway, out }
    }

    fn out(&self) -> &Outbound {
        &self.out
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.out().id()
    }

    /// The live nodes as of the last lease renewal (this one included).
    pub fn nodes(&self) -> Vec<NodeRecord> {
        self.out().nodes.load().as_ref().clone()
    }

    /// Messages waiting to be published (the outage buffer).
    pub fn buffered(&self) -> u64 {
        self.out().queued.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether this node is connected to the broker and subscribed. While it is not, the
    /// live-node list is the last one known and cross-node messages wait in the buffer.
    pub fn is_connected(&self) -> bool {
        self.out()
            .connected
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Messages dropped since start because the outage buffer was full (also counted as
    /// `netsvr_broker_dropped_total{reason="full"}`).
    pub fn dropped(&self) -> u64 {
        self.out()
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Asks every live node `query` and returns each node's answer, this node's first
    /// (the per-node view).
    pub async fn per_node(&self, query: ToGateway) -> Result<Vec<NodeAnswer>, QueryError> {
        let out = self.out();
        let cmd = query.cmd();
        let local = crate::command::apply(&self.gateway.node_only(), query.clone(), || {
            pb::MetricsResp::default()
        })
        .ok_or(QueryError::NotAQuery(cmd))?;
        let mut answers = vec![NodeAnswer {
            node: out.id(),
            answer: Ok(local),
        }];
        let expected: Vec<NodeId> = out
            .nodes
            .load()
            .iter()
            .map(|n| n.id)
            .filter(|id| *id != out.id())
            .collect();
        if expected.is_empty() {
            return Ok(answers);
        }
        let (tx, mut rx) = mpsc::channel(expected.len() + 8);
        let request = out.query_all(&query, tx).ok_or(QueryError::Full)?;
        let deadline = tokio::time::Instant::now() + out.config.query_timeout;
        let mut got: BTreeMap<NodeId, ToBusiness> = BTreeMap::new();
        while !expected.iter().all(|id| got.contains_key(id)) {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((node, answer))) => {
                    got.insert(node, answer);
                }
                _ => break,
            }
        }
        out.pending.lock().remove(&request);
        for id in &expected {
            if !got.contains_key(id) {
                answers.push(NodeAnswer {
                    node: *id,
                    answer: Err(QueryError::NoAnswer(vec![*id])),
                });
            }
        }
        answers.extend(got.into_iter().map(|(node, answer)| NodeAnswer {
            node,
            answer: Ok(answer),
        }));
        Ok(answers)
    }

    async fn joined(&self, query: ToGateway) -> Result<Merged, QueryError> {
        let mut missing = Vec::new();
        let mut answers = Vec::new();
        for node in self.per_node(query).await? {
            match node.answer {
                Ok(answer) => answers.push(answer),
                Err(_) => missing.push(node.node),
            }
        }
        let answer = merge(answers).ok_or_else(|| QueryError::NoAnswer(missing.clone()))?;
        Ok(Merged { answer, missing })
    }

    /// Asks every live node a netsvr query and merges the answers: lists joined
    /// (customerIds and topics de-duplicated), counts summed — counts of distinct customers
    /// or topics are counted from the merged lists. Nodes that do not answer within
    /// `query_timeout` are listed in [`Merged::missing`].
    pub async fn query(&self, query: ToGateway) -> Result<Merged, QueryError> {
        use ToBusiness as R;
        use ToGateway as M;
        match query {
            M::CustomerIdCount => {
                let merged = self.joined(M::CustomerIdList).await?;
                let n = match &merged.answer {
                    R::CustomerIdList(list) => list.customer_ids.len(),
                    _ => 0,
                };
                Ok(Merged {
                    answer: R::CustomerIdCount(pb::CustomerIdCountResp { count: count(n) }),
                    missing: merged.missing,
                })
            }
            M::TopicCount => {
                let merged = self.joined(M::TopicList).await?;
                let n = match &merged.answer {
                    R::TopicList(list) => list.topics.len(),
                    _ => 0,
                };
                Ok(Merged {
                    answer: R::TopicCount(pb::TopicCountResp { count: count(n) }),
                    missing: merged.missing,
                })
            }
            M::TopicCustomerIdCount(req) => {
                let mut missing = Vec::new();
                let topics = if req.count_all {
                    let all = self.joined(M::TopicList).await?;
                    missing = all.missing;
                    match all.answer {
                        R::TopicList(list) => list.topics,
                        _ => Vec::new(),
                    }
                } else {
                    req.topics
                };
                let list = pb::TopicCustomerIdListReq { topics };
                let merged = self.joined(M::TopicCustomerIdList(list)).await?;
                missing.extend(merged.missing);
                missing.sort_unstable();
                missing.dedup();
                let items = match &merged.answer {
                    R::TopicCustomerIdList(list) => topic_counts(list),
                    _ => BTreeMap::new(),
                };
                Ok(Merged {
                    answer: R::TopicCustomerIdCount(pb::TopicCustomerIdCountResp { items }),
                    missing,
                })
            }
            other => self.joined(other).await,
        }
    }

    async fn complete(&self, query: ToGateway) -> Result<ToBusiness, QueryError> {
        let merged = self.query(query).await?;
        if merged.missing.is_empty() {
            Ok(merged.answer)
        } else {
            Err(QueryError::NoAnswer(merged.missing))
        }
    }

    /// The subset of `uniq_ids` online on any node.
    pub async fn check_online(&self, uniq_ids: &[UniqId]) -> Result<Vec<UniqId>, QueryError> {
        let req = pb::CheckOnlineReq {
            uniq_ids: super::texts(uniq_ids),
        };
        match self.complete(ToGateway::CheckOnline(req)).await? {
            ToBusiness::CheckOnline(resp) => Ok(parse_ids(&resp.uniq_ids)),
            _ => Ok(Vec::new()),
        }
    }

    /// Every connection of every node.
    pub async fn uniq_ids(&self) -> Result<Vec<UniqId>, QueryError> {
        match self.complete(ToGateway::UniqIdList).await? {
            ToBusiness::UniqIdList(resp) => Ok(parse_ids(&resp.uniq_ids)),
            _ => Ok(Vec::new()),
        }
    }

    /// How many connections the cluster holds.
    pub async fn connection_count(&self) -> Result<usize, QueryError> {
        match self.complete(ToGateway::UniqIdCount).await? {
            ToBusiness::UniqIdCount(resp) => Ok(usize::try_from(resp.count).unwrap_or(0)),
            _ => Ok(0),
        }
    }

    /// Every customer with a connection on any node, each once, sorted.
    pub async fn customer_ids(&self) -> Result<Vec<String>, QueryError> {
        match self.complete(ToGateway::CustomerIdList).await? {
            ToBusiness::CustomerIdList(resp) => Ok(resp.customer_ids),
            _ => Ok(Vec::new()),
        }
    }

    /// Every topic with a subscriber on any node, each once, sorted.
    pub async fn topics(&self) -> Result<Vec<String>, QueryError> {
        match self.complete(ToGateway::TopicList).await? {
            ToBusiness::TopicList(resp) => Ok(resp.topics),
            _ => Ok(Vec::new()),
        }
    }

    /// A topic's subscribers on every node.
    pub async fn topic_members(&self, topic: &str) -> Result<Vec<UniqId>, QueryError> {
        let req = pb::TopicUniqIdListReq {
            topics: vec![topic.to_owned()],
        };
        match self.complete(ToGateway::TopicUniqIdList(req)).await? {
            ToBusiness::TopicUniqIdList(resp) => Ok(resp
                .items
                .get(topic)
                .map(|item| parse_ids(&item.uniq_ids))
                .unwrap_or_default()),
            _ => Ok(Vec::new()),
        }
    }

    /// A connection's customer, session and topics, from whichever node holds it.
    pub async fn conn_info(&self, uniq_id: &UniqId) -> Result<Option<ConnInfo>, QueryError> {
        let text = uniq_id.to_string();
        let req = pb::ConnInfoReq {
            uniq_ids: vec![text.clone()],
            req_session: true,
            req_customer_id: true,
            req_topic: true,
        };
        match self.complete(ToGateway::ConnInfo(req)).await? {
            ToBusiness::ConnInfo(mut resp) => Ok(resp
                .items
                .remove(&text)
                .map(|item| ConnInfo::new(Some(item.customer_id), item.session, item.topics))),
            _ => Ok(None),
        }
    }

    /// How long cluster-wide queries wait for other nodes.
    pub fn query_timeout(&self) -> Duration {
        self.out().config.query_timeout
    }
}

fn parse_ids(texts: &[String]) -> Vec<UniqId> {
    texts.iter().filter_map(|t| t.parse().ok()).collect()
}
