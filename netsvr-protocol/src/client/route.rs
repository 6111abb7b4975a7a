//! Which gateway gets which command: the node prefix of a uniqId, and the split of
//! uniqId-addressed commands per owning gateway (PROTOCOL.md §6).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use super::{ClientError, GatewayAddr};
use crate::{ToGateway, pb};

/// Hex characters of a node prefix: IPv4 (4 bytes) + port (2 bytes).
pub const NODE_PREFIX_LEN: usize = 12;

/// The node prefix of a gateway: lower-hex of its task listener's IPv4 address and port
/// (big-endian), the first 12 characters of every uniqId it issues. `None` for an IPv6
/// address that is not IPv4-mapped.
///
/// ```
/// # use netsvr_protocol::client::node_prefix;
/// assert_eq!(node_prefix("127.0.0.1:6062".parse().unwrap()).as_deref(), Some("7f00000117ae"));
/// ```
pub fn node_prefix(task: SocketAddr) -> Option<String> {
    let ip = match task.ip() {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(ip) => ip.to_ipv4_mapped()?,
    };
    let [a, b, c, d] = ip.octets();
    let [p, q] = task.port().to_be_bytes();
    Some(format!("{a:02x}{b:02x}{c:02x}{d:02x}{p:02x}{q:02x}"))
}

/// The node prefixes of the configured gateways, by index.
#[derive(Debug, Clone)]
pub(crate) struct Router {
    prefixes: Vec<Option<String>>,
}

/// Where a command goes.
#[derive(Debug)]
pub(crate) enum Plan {
    /// The same command to every gateway.
    Everyone(ToGateway),
    /// One command per gateway index (possibly none at all).
    Each(Vec<(usize, ToGateway)>),
}

/// A routed command and the uniqIds that matched no gateway (dropped).
#[derive(Debug)]
pub(crate) struct Routed {
    pub(crate) plan: Plan,
    pub(crate) unrouted: Vec<String>,
}

impl Router {
    /// The router of a gateway list.
    pub(crate) fn new(gateways: &[GatewayAddr]) -> Self {
        Self {
            prefixes: gateways
                .iter()
                .map(|g| g.node_prefix().map(str::to_owned))
                .collect(),
        }
    }

    /// The index of the gateway that issued this uniqId (the first one, if two gateways
    /// were configured with the same prefix).
    pub(crate) fn owner(&self, uniq_id: &str) -> Option<usize> {
        let head = uniq_id.get(..NODE_PREFIX_LEN)?;
        self.prefixes
            .iter()
            .position(|p| p.as_deref().is_some_and(|p| p.eq_ignore_ascii_case(head)))
    }

    /// Splits items by the owner of their uniqId, keeping their order within each owner.
    /// Returns the groups by gateway index and the uniqIds of the items that match none.
    pub(crate) fn group<T>(
        &self,
        items: impl IntoIterator<Item = T>,
        uniq_id: impl Fn(&T) -> &str,
    ) -> (BTreeMap<usize, Vec<T>>, Vec<String>) {
        let mut groups: BTreeMap<usize, Vec<T>> = BTreeMap::new();
        let mut unrouted = Vec::new();
        for item in items {
            match self.owner(uniq_id(&item)) {
                Some(i) => groups.entry(i).or_default().push(item),
                None => unrouted.push(uniq_id(&item).to_owned()),
            }
        }
        (groups, unrouted)
    }

    /// Splits uniqIds by owner.
    pub(crate) fn group_ids(
        &self,
        ids: impl IntoIterator<Item = String>,
    ) -> (BTreeMap<usize, Vec<String>>, Vec<String>) {
        self.group(ids, |s| s.as_str())
    }

    /// Where a no-response command goes. Queries and (un)registration are refused: they
    /// need a reply, see the typed query methods.
    pub(crate) fn route(&self, cmd: ToGateway) -> Result<Routed, ClientError> {
        use ToGateway as T;
        Ok(match cmd {
            T::ConnInfoUpdate(m) => self.one(&m.uniq_id.clone(), T::ConnInfoUpdate(m)),
            T::ConnInfoDelete(m) => self.one(&m.uniq_id.clone(), T::ConnInfoDelete(m)),
            T::SingleCast(m) => self.one(&m.uniq_id.clone(), T::SingleCast(m)),
            T::TopicSubscribe(m) => self.one(&m.uniq_id.clone(), T::TopicSubscribe(m)),
            T::TopicUnsubscribe(m) => self.one(&m.uniq_id.clone(), T::TopicUnsubscribe(m)),
            T::Multicast(pb::Multicast { uniq_ids, data }) => self.split(uniq_ids, |uniq_ids| {
                T::Multicast(pb::Multicast {
                    uniq_ids,
                    data: data.clone(),
                })
            }),
            T::ForceOffline(pb::ForceOffline { uniq_ids, data }) => {
                self.split(uniq_ids, |uniq_ids| {
                    T::ForceOffline(pb::ForceOffline {
                        uniq_ids,
                        data: data.clone(),
                    })
                })
            }
            T::ForceOfflineGuest(pb::ForceOfflineGuest {
                uniq_ids,
                delay,
                data,
            }) => self.split(uniq_ids, |uniq_ids| {
                T::ForceOfflineGuest(pb::ForceOfflineGuest {
                    uniq_ids,
                    delay,
                    data: data.clone(),
                })
            }),
            T::SingleCastBulk(m) => self.single_cast_bulk(m)?,
            cmd @ (T::Broadcast(_)
            | T::MulticastByCustomerId(_)
            | T::SingleCastByCustomerId(_)
            | T::SingleCastBulkByCustomerId(_)
            | T::TopicDelete(_)
            | T::TopicPublish(_)
            | T::TopicPublishBulk(_)
            | T::ForceOfflineByCustomerId(_)) => Routed {
                plan: Plan::Everyone(cmd),
                unrouted: Vec::new(),
            },
            cmd @ (T::Register(_)
            | T::Unregister(_)
            | T::CheckOnline(_)
            | T::TopicUniqIdList(_)
            | T::TopicUniqIdCount(_)
            | T::TopicCustomerIdList(_)
            | T::TopicCustomerIdToUniqIdsList(_)
            | T::TopicCustomerIdCount(_)
            | T::ConnInfo(_)
            | T::ConnInfoByCustomerId(_)
            | T::Limit(_)
            | T::CustomerIdList
            | T::CustomerIdCount
            | T::UniqIdList
            | T::UniqIdCount
            | T::TopicList
            | T::TopicCount
            | T::Metrics) => return Err(not_a_command(&cmd)),
        })
    }

    /// The whole command to the owner of one uniqId.
    fn one(&self, uniq_id: &str, cmd: ToGateway) -> Routed {
        match self.owner(uniq_id) {
            Some(i) => Routed {
                plan: Plan::Each(vec![(i, cmd)]),
                unrouted: Vec::new(),
            },
            None => Routed {
                plan: Plan::Each(Vec::new()),
                unrouted: vec![uniq_id.to_owned()],
            },
        }
    }

    /// One command per owner, built from its share of the uniqIds.
    fn split(&self, ids: Vec<String>, build: impl Fn(Vec<String>) -> ToGateway) -> Routed {
        let (groups, unrouted) = self.group_ids(ids);
        Routed {
            plan: Plan::Each(groups.into_iter().map(|(i, ids)| (i, build(ids))).collect()),
            unrouted,
        }
    }

    /// One uniqId × N payloads goes whole to its owner; N × N pairs are split per owner with
    /// each pair kept together; any other shape is refused (the gateway would reject it).
    fn single_cast_bulk(&self, m: pb::SingleCastBulk) -> Result<Routed, ClientError> {
        let pb::SingleCastBulk { uniq_ids, data } = m;
        if let [uniq_id] = uniq_ids.as_slice() {
            let uniq_id = uniq_id.clone();
            let cmd = ToGateway::SingleCastBulk(pb::SingleCastBulk { uniq_ids, data });
            return Ok(self.one(&uniq_id, cmd));
        }
        if uniq_ids.len() != data.len() {
            return Err(ClientError::Invalid(format!(
                "SingleCastBulk with {} uniqIds and {} payloads: one uniqId with N payloads, \
                 or N of each",
                uniq_ids.len(),
                data.len()
            )));
        }
        let pairs: Vec<(String, Bytes)> = uniq_ids.into_iter().zip(data).collect();
        let (groups, unrouted) = self.group(pairs, |(id, _)| id.as_str());
        let plan = groups
            .into_iter()
            .map(|(i, pairs)| {
                let (uniq_ids, data) = pairs.into_iter().unzip();
                (
                    i,
                    ToGateway::SingleCastBulk(pb::SingleCastBulk { uniq_ids, data }),
                )
            })
            .collect();
        Ok(Routed {
            plan: Plan::Each(plan),
            unrouted,
        })
    }
}

/// The error for a request/response command given to `send`.
pub(crate) fn not_a_command(cmd: &ToGateway) -> ClientError {
    let name = crate::cmd::name(cmd.cmd()).unwrap_or("?");
    ClientError::Invalid(format!(
        "{name} expects a reply: use the query methods (or NodeTaskClient::request)"
    ))
}
