//! Command ids (PROTOCOL.md §3–4): the `u32` that follows the length prefix of a frame.

/// Event: a client connected (gateway → business, body `ConnOpen`).
pub const CONN_OPEN: u32 = 900_001_001;
/// Event: a client disconnected (gateway → business, body `ConnClose`).
pub const CONN_CLOSE: u32 = 900_001_002;
/// Event: a client message (gateway → business, body `Transfer`).
pub const TRANSFER: u32 = 900_001_003;

/// Set session / rebind customer / replace topics; optional push.
pub const CONN_INFO_UPDATE: u32 = 900_002_001;
/// Clear session / customer / topics; optional push.
pub const CONN_INFO_DELETE: u32 = 900_002_002;
/// To every connection.
pub const BROADCAST: u32 = 900_002_003;
/// One payload to many uniqIds.
pub const MULTICAST: u32 = 900_002_004;
/// One payload to all connections of many customers.
pub const MULTICAST_BY_CUSTOMER_ID: u32 = 900_002_005;
/// To one uniqId.
pub const SINGLE_CAST: u32 = 900_002_006;
/// One uniqId × many payloads, or pairs by index.
pub const SINGLE_CAST_BULK: u32 = 900_002_007;
/// To every connection of one customer.
pub const SINGLE_CAST_BY_CUSTOMER_ID: u32 = 900_002_008;
/// As `SINGLE_CAST_BULK`, per customer.
pub const SINGLE_CAST_BULK_BY_CUSTOMER_ID: u32 = 900_002_009;
/// Add topics to a connection; optional push.
pub const TOPIC_SUBSCRIBE: u32 = 900_002_010;
/// Remove topics from a connection; optional push.
pub const TOPIC_UNSUBSCRIBE: u32 = 900_002_011;
/// Drop topics and unsubscribe all members; data once per affected connection.
pub const TOPIC_DELETE: u32 = 900_002_012;
/// To subscribers of each topic.
pub const TOPIC_PUBLISH: u32 = 900_002_013;
/// One topic × many payloads, or pairs by index.
pub const TOPIC_PUBLISH_BULK: u32 = 900_002_014;
/// Optional farewell data, then close 1008.
pub const FORCE_OFFLINE: u32 = 900_002_015;
/// Same, by customer.
pub const FORCE_OFFLINE_BY_CUSTOMER_ID: u32 = 900_002_016;
/// After a delay, close those still without session and customer.
pub const FORCE_OFFLINE_GUEST: u32 = 900_002_017;

/// Worker port: register for events.
pub const REGISTER: u32 = 900_003_001;
/// Worker port: unregister.
pub const UNREGISTER: u32 = 900_003_002;
/// Which of these uniqIds are online.
pub const CHECK_ONLINE: u32 = 900_003_003;
/// All customerIds.
pub const CUSTOMER_ID_LIST: u32 = 900_003_004;
/// How many customerIds.
pub const CUSTOMER_ID_COUNT: u32 = 900_003_005;
/// All uniqIds.
pub const UNIQ_ID_LIST: u32 = 900_003_006;
/// How many uniqIds.
pub const UNIQ_ID_COUNT: u32 = 900_003_007;
/// All topics.
pub const TOPIC_LIST: u32 = 900_003_008;
/// How many topics.
pub const TOPIC_COUNT: u32 = 900_003_009;
/// Topic → uniqIds.
pub const TOPIC_UNIQ_ID_LIST: u32 = 900_003_010;
/// Topic → member count.
pub const TOPIC_UNIQ_ID_COUNT: u32 = 900_003_011;
/// Topic → customerIds.
pub const TOPIC_CUSTOMER_ID_LIST: u32 = 900_003_012;
/// Topic → customerId → all that customer's uniqIds.
pub const TOPIC_CUSTOMER_ID_TO_UNIQ_IDS_LIST: u32 = 900_003_013;
/// Topic → customer count.
pub const TOPIC_CUSTOMER_ID_COUNT: u32 = 900_003_014;
/// Connection info by uniqIds.
pub const CONN_INFO: u32 = 900_003_015;
/// Connection info by customerIds.
pub const CONN_INFO_BY_CUSTOMER_ID: u32 = 900_003_016;
/// Gateway counters and rates.
pub const METRICS: u32 = 900_003_017;
/// Set (where > 0) and read the global limits.
pub const LIMIT: u32 = 900_003_018;

/// The name of a known command id, for logs.
pub fn name(cmd: u32) -> Option<&'static str> {
    Some(match cmd {
        CONN_OPEN => "ConnOpen",
        CONN_CLOSE => "ConnClose",
        TRANSFER => "Transfer",
        CONN_INFO_UPDATE => "ConnInfoUpdate",
        CONN_INFO_DELETE => "ConnInfoDelete",
        BROADCAST => "Broadcast",
        MULTICAST => "Multicast",
        MULTICAST_BY_CUSTOMER_ID => "MulticastByCustomerId",
        SINGLE_CAST => "SingleCast",
        SINGLE_CAST_BULK => "SingleCastBulk",
        SINGLE_CAST_BY_CUSTOMER_ID => "SingleCastByCustomerId",
        SINGLE_CAST_BULK_BY_CUSTOMER_ID => "SingleCastBulkByCustomerId",
        TOPIC_SUBSCRIBE => "TopicSubscribe",
        TOPIC_UNSUBSCRIBE => "TopicUnsubscribe",
        TOPIC_DELETE => "TopicDelete",
        TOPIC_PUBLISH => "TopicPublish",
        TOPIC_PUBLISH_BULK => "TopicPublishBulk",
        FORCE_OFFLINE => "ForceOffline",
        FORCE_OFFLINE_BY_CUSTOMER_ID => "ForceOfflineByCustomerId",
        FORCE_OFFLINE_GUEST => "ForceOfflineGuest",
        REGISTER => "Register",
        UNREGISTER => "Unregister",
        CHECK_ONLINE => "CheckOnline",
        CUSTOMER_ID_LIST => "CustomerIdList",
        CUSTOMER_ID_COUNT => "CustomerIdCount",
        UNIQ_ID_LIST => "UniqIdList",
        UNIQ_ID_COUNT => "UniqIdCount",
        TOPIC_LIST => "TopicList",
        TOPIC_COUNT => "TopicCount",
        TOPIC_UNIQ_ID_LIST => "TopicUniqIdList",
        TOPIC_UNIQ_ID_COUNT => "TopicUniqIdCount",
        TOPIC_CUSTOMER_ID_LIST => "TopicCustomerIdList",
        TOPIC_CUSTOMER_ID_TO_UNIQ_IDS_LIST => "TopicCustomerIdToUniqIdsList",
        TOPIC_CUSTOMER_ID_COUNT => "TopicCustomerIdCount",
        CONN_INFO => "ConnInfo",
        CONN_INFO_BY_CUSTOMER_ID => "ConnInfoByCustomerId",
        METRICS => "Metrics",
        LIMIT => "Limit",
        _ => return None,
    })
}

/// Register event bits (`RegisterReq.events`).
pub mod events {
    /// Receive `ConnOpen`.
    pub const ON_OPEN: i32 = 1;
    /// Receive `ConnClose`.
    pub const ON_CLOSE: i32 = 2;
    /// Receive `Transfer`.
    pub const ON_MESSAGE: i32 = 4;
    /// Every event.
    pub const ALL: i32 = ON_OPEN | ON_CLOSE | ON_MESSAGE;
}
