//! Typed messages: (command id, protobuf body) ⇄ an enum, one per direction.

use bytes::{Bytes, BytesMut};
use prost::Message as _;

use crate::cmd;
use crate::codec::encode_raw;
use crate::pb;

/// A body that cannot be taken as the command it claims to be.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageError {
    /// No command with this id goes in this direction.
    UnknownCmd(u32),
    /// The body is not a valid protobuf encoding of the command's message.
    Body {
        /// The command id.
        cmd: u32,
        /// What prost said.
        error: prost::DecodeError,
    },
}

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownCmd(c) => write!(f, "unknown command id {c}"),
            Self::Body { cmd: c, error } => {
                let name = cmd::name(*c).unwrap_or("?");
                write!(f, "bad body for {name} ({c}): {error}")
            }
        }
    }
}

impl std::error::Error for MessageError {}

fn body<M: prost::Message + Default>(cmd: u32, body: Bytes) -> Result<M, MessageError> {
    M::decode(body).map_err(|error| MessageError::Body { cmd, error })
}

/// Declares a direction's enum with decode / encode / cmd.
macro_rules! direction {
    (
        $(#[$doc:meta])* $name:ident {
            $( $(#[$vdoc:meta])* $variant:ident($msg:ty) = $cmd:path, )*
        }
        units {
            $( $(#[$udoc:meta])* $unit:ident = $ucmd:path, )*
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vdoc])* $variant($msg), )*
            $( $(#[$udoc])* $unit, )*
        }

        impl $name {
            /// Decodes the body of command `cmd`.
            pub fn decode(cmd: u32, bytes: Bytes) -> Result<Self, MessageError> {
                match cmd {
                    $( $cmd => body(cmd, bytes).map(Self::$variant), )*
                    $( $ucmd => Ok(Self::$unit), )*
                    other => Err(MessageError::UnknownCmd(other)),
                }
            }

            /// The command id.
            pub fn cmd(&self) -> u32 {
                match self {
                    $( Self::$variant(_) => $cmd, )*
                    $( Self::$unit => $ucmd, )*
                }
            }

            /// Appends the whole frame (length, command id, body).
            pub fn encode(&self, out: &mut BytesMut) {
                match self {
                    $( Self::$variant(m) => crate::codec::encode($cmd, m, out), )*
                    $( Self::$unit => encode_raw($ucmd, &[], out), )*
                }
            }

            /// The protobuf body alone.
            pub fn encode_body(&self) -> Bytes {
                match self {
                    $( Self::$variant(m) => Bytes::from(m.encode_to_vec()), )*
                    $( Self::$unit => Bytes::new(), )*
                }
            }
        }
    };
}

direction! {
    /// What a business process sends to the gateway: commands, queries and registration.
    ToGateway {
        /// Set session / rebind customer / replace topics.
        ConnInfoUpdate(pb::ConnInfoUpdate) = cmd::CONN_INFO_UPDATE,
        /// Clear session / customer / topics.
        ConnInfoDelete(pb::ConnInfoDelete) = cmd::CONN_INFO_DELETE,
        /// To everyone.
        Broadcast(pb::Broadcast) = cmd::BROADCAST,
        /// One payload to many uniqIds.
        Multicast(pb::Multicast) = cmd::MULTICAST,
        /// One payload to many customers.
        MulticastByCustomerId(pb::MulticastByCustomerId) = cmd::MULTICAST_BY_CUSTOMER_ID,
        /// To one uniqId.
        SingleCast(pb::SingleCast) = cmd::SINGLE_CAST,
        /// Bulk by uniqId.
        SingleCastBulk(pb::SingleCastBulk) = cmd::SINGLE_CAST_BULK,
        /// To one customer.
        SingleCastByCustomerId(pb::SingleCastByCustomerId) = cmd::SINGLE_CAST_BY_CUSTOMER_ID,
        /// Bulk by customer.
        SingleCastBulkByCustomerId(pb::SingleCastBulkByCustomerId) = cmd::SINGLE_CAST_BULK_BY_CUSTOMER_ID,
        /// Subscribe a connection.
        TopicSubscribe(pb::TopicSubscribe) = cmd::TOPIC_SUBSCRIBE,
        /// Unsubscribe a connection.
        TopicUnsubscribe(pb::TopicUnsubscribe) = cmd::TOPIC_UNSUBSCRIBE,
        /// Drop topics.
        TopicDelete(pb::TopicDelete) = cmd::TOPIC_DELETE,
        /// Publish to topics.
        TopicPublish(pb::TopicPublish) = cmd::TOPIC_PUBLISH,
        /// Bulk publish.
        TopicPublishBulk(pb::TopicPublishBulk) = cmd::TOPIC_PUBLISH_BULK,
        /// Kick by uniqId.
        ForceOffline(pb::ForceOffline) = cmd::FORCE_OFFLINE,
        /// Kick by customer.
        ForceOfflineByCustomerId(pb::ForceOfflineByCustomerId) = cmd::FORCE_OFFLINE_BY_CUSTOMER_ID,
        /// Kick guests after a delay.
        ForceOfflineGuest(pb::ForceOfflineGuest) = cmd::FORCE_OFFLINE_GUEST,
        /// Register for events (worker port).
        Register(pb::RegisterReq) = cmd::REGISTER,
        /// Unregister (worker port).
        Unregister(pb::UnRegisterReq) = cmd::UNREGISTER,
        /// Which are online.
        CheckOnline(pb::CheckOnlineReq) = cmd::CHECK_ONLINE,
        /// Members of topics.
        TopicUniqIdList(pb::TopicUniqIdListReq) = cmd::TOPIC_UNIQ_ID_LIST,
        /// Member counts of topics.
        TopicUniqIdCount(pb::TopicUniqIdCountReq) = cmd::TOPIC_UNIQ_ID_COUNT,
        /// Customers of topics.
        TopicCustomerIdList(pb::TopicCustomerIdListReq) = cmd::TOPIC_CUSTOMER_ID_LIST,
        /// Topic → customer → uniqIds.
        TopicCustomerIdToUniqIdsList(pb::TopicCustomerIdToUniqIdsListReq) = cmd::TOPIC_CUSTOMER_ID_TO_UNIQ_IDS_LIST,
        /// Customer counts of topics.
        TopicCustomerIdCount(pb::TopicCustomerIdCountReq) = cmd::TOPIC_CUSTOMER_ID_COUNT,
        /// Connection info by uniqIds.
        ConnInfo(pb::ConnInfoReq) = cmd::CONN_INFO,
        /// Connection info by customers.
        ConnInfoByCustomerId(pb::ConnInfoByCustomerIdReq) = cmd::CONN_INFO_BY_CUSTOMER_ID,
        /// Set and read the global limits.
        Limit(pb::LimitReq) = cmd::LIMIT,
    }
    units {
        /// All customerIds.
        CustomerIdList = cmd::CUSTOMER_ID_LIST,
        /// How many customerIds.
        CustomerIdCount = cmd::CUSTOMER_ID_COUNT,
        /// All uniqIds.
        UniqIdList = cmd::UNIQ_ID_LIST,
        /// How many uniqIds.
        UniqIdCount = cmd::UNIQ_ID_COUNT,
        /// All topics.
        TopicList = cmd::TOPIC_LIST,
        /// How many topics.
        TopicCount = cmd::TOPIC_COUNT,
        /// Counters and rates.
        Metrics = cmd::METRICS,
    }
}

impl ToGateway {
    /// Whether the gateway answers this with a frame of the same command id.
    pub fn expects_response(&self) -> bool {
        self.cmd() >= cmd::REGISTER
    }
}

direction! {
    /// What the gateway sends to a business process: events and responses.
    ToBusiness {
        /// A client connected.
        ConnOpen(pb::ConnOpen) = cmd::CONN_OPEN,
        /// A client disconnected.
        ConnClose(pb::ConnClose) = cmd::CONN_CLOSE,
        /// A client message.
        Transfer(pb::Transfer) = cmd::TRANSFER,
        /// Answer to Register.
        Register(pb::RegisterResp) = cmd::REGISTER,
        /// Answer to Unregister.
        Unregister(pb::UnRegisterResp) = cmd::UNREGISTER,
        /// The online subset.
        CheckOnline(pb::CheckOnlineResp) = cmd::CHECK_ONLINE,
        /// All customerIds.
        CustomerIdList(pb::CustomerIdListResp) = cmd::CUSTOMER_ID_LIST,
        /// How many customerIds.
        CustomerIdCount(pb::CustomerIdCountResp) = cmd::CUSTOMER_ID_COUNT,
        /// All uniqIds.
        UniqIdList(pb::UniqIdListResp) = cmd::UNIQ_ID_LIST,
        /// How many uniqIds.
        UniqIdCount(pb::UniqIdCountResp) = cmd::UNIQ_ID_COUNT,
        /// All topics.
        TopicList(pb::TopicListResp) = cmd::TOPIC_LIST,
        /// How many topics.
        TopicCount(pb::TopicCountResp) = cmd::TOPIC_COUNT,
        /// Members of topics.
        TopicUniqIdList(pb::TopicUniqIdListResp) = cmd::TOPIC_UNIQ_ID_LIST,
        /// Member counts of topics.
        TopicUniqIdCount(pb::TopicUniqIdCountResp) = cmd::TOPIC_UNIQ_ID_COUNT,
        /// Customers of topics.
        TopicCustomerIdList(pb::TopicCustomerIdListResp) = cmd::TOPIC_CUSTOMER_ID_LIST,
        /// Topic → customer → uniqIds.
        TopicCustomerIdToUniqIdsList(pb::TopicCustomerIdToUniqIdsListResp) = cmd::TOPIC_CUSTOMER_ID_TO_UNIQ_IDS_LIST,
        /// Customer counts of topics.
        TopicCustomerIdCount(pb::TopicCustomerIdCountResp) = cmd::TOPIC_CUSTOMER_ID_COUNT,
        /// Connection info by uniqIds.
        ConnInfo(pb::ConnInfoResp) = cmd::CONN_INFO,
        /// Connection info by customers.
        ConnInfoByCustomerId(pb::ConnInfoByCustomerIdResp) = cmd::CONN_INFO_BY_CUSTOMER_ID,
        /// Counters and rates.
        Metrics(pb::MetricsResp) = cmd::METRICS,
        /// The limits now.
        Limit(pb::LimitResp) = cmd::LIMIT,
    }
    units {}
}

impl ToBusiness {
    /// True for the three client events (as opposed to responses).
    pub fn is_event(&self) -> bool {
        matches!(
            self,
            Self::ConnOpen(_) | Self::ConnClose(_) | Self::Transfer(_)
        )
    }
}
