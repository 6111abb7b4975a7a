//! How the `Gateway` handle's commands reach other nodes: uniqId-addressed ones go to the
//! owning node's channel, the rest to every node. Used by the command methods themselves, so
//! the task port, the JSON API and embedded code all route the same way.

use std::borrow::Cow;
use std::collections::BTreeMap;

use bytes::Bytes;
use netsvr_protocol::ToGateway;

use super::envelope::Opcode;
use super::node::NodeId;
use super::outbound::Outbound;
use crate::event::MessageKind;
use crate::gateway::Gateway;
use crate::id::UniqId;

/// uniqIds as netsvr's command messages carry them.
pub(crate) fn texts(ids: &[UniqId]) -> Vec<String> {
    ids.iter().map(ToString::to_string).collect()
}

/// A payload as a command message field.
pub(crate) fn copy(data: &[u8]) -> Bytes {
    Bytes::copy_from_slice(data)
}

/// The opcode a send of `kind` forces on the receiving node.
pub(crate) fn opcode(kind: MessageKind) -> Opcode {
    match kind {
        MessageKind::Text => Opcode::Text,
        MessageKind::Binary => Opcode::Binary,
    }
}

impl Gateway {
    /// The cluster link, unless there is none or this handle acts on this node only.
    pub(crate) fn outbound(&self) -> Option<&Outbound> {
        if self.node_only {
            return None;
        }
        self.shared.cluster.as_deref()
    }

    /// Publishes a customer / topic / broadcast command for every other node.
    pub(crate) fn forward_all(&self, opcode: Opcode, make: impl FnOnce() -> ToGateway) {
        if let Some(out) = self.outbound() {
            out.command_all(opcode, &make());
        }
    }

    /// When `uniq_id` belongs to another node, forwards the command there and returns
    /// whether the broker took it; `None` when the connection would be here.
    pub(crate) fn forward_owner(
        &self,
        uniq_id: &UniqId,
        opcode: Opcode,
        make: impl FnOnce() -> ToGateway,
    ) -> Option<bool> {
        let out = self.outbound()?;
        out.is_remote(uniq_id)
            .then(|| out.command_to(NodeId::of(uniq_id), opcode, &make()))
    }

    /// Forwards the remote part of `ids` to each owning node (one command per node, built by
    /// `make` from that node's ids) and returns the ids that belong here, in order.
    pub(crate) fn forward_ids<'a>(
        &self,
        ids: &'a [UniqId],
        make: impl Fn(&[UniqId]) -> ToGateway,
    ) -> Cow<'a, [UniqId]> {
        let Some(out) = self.outbound() else {
            return Cow::Borrowed(ids);
        };
        if !ids.iter().any(|id| out.is_remote(id)) {
            return Cow::Borrowed(ids);
        }
        let mut local = Vec::new();
        let mut remote: BTreeMap<NodeId, Vec<UniqId>> = BTreeMap::new();
        for id in ids {
            if out.is_remote(id) {
                remote.entry(NodeId::of(id)).or_default().push(*id);
            } else {
                local.push(*id);
            }
        }
        for (node, ids) in remote {
            out.command_to(node, Opcode::Default, &make(&ids));
        }
        Cow::Owned(local)
    }

    /// SingleCastBulk paired by index: forwards each other node's pairs there and returns
    /// the pairs that belong here.
    pub(crate) fn forward_pairs<'a, D: AsRef<[u8]>>(
        &self,
        ids: &[UniqId],
        data: &'a [D],
    ) -> Option<(Vec<UniqId>, Vec<&'a [u8]>)> {
        let out = self.outbound()?;
        let mut local = (Vec::new(), Vec::new());
        let mut remote: BTreeMap<NodeId, (Vec<String>, Vec<Bytes>)> = BTreeMap::new();
        for (id, d) in ids.iter().zip(data) {
            if out.is_remote(id) {
                let entry = remote.entry(NodeId::of(id)).or_default();
                entry.0.push(id.to_string());
                entry.1.push(copy(d.as_ref()));
            } else {
                local.0.push(*id);
                local.1.push(d.as_ref());
            }
        }
        for (node, (uniq_ids, data)) in remote {
            let message =
                ToGateway::SingleCastBulk(netsvr_protocol::pb::SingleCastBulk { uniq_ids, data });
            out.command_to(node, Opcode::Default, &message);
        }
        Some(local)
    }
}
