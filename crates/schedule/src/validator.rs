//! One validator: its id, address, voting power and the nodes of its cluster.

use core::{fmt, str::FromStr};

use mempulse_primitives::{Address, NodeId, ValidatorId};

/// One validator: a Raft cluster of mempulse nodes that proposes blocks in its turn.
///
/// The `address` plays CometBFT's role: it identifies the validator in change sets and breaks
/// priority ties (the smaller address proposes first). The `id` names the validator in events,
/// tags and the command line. Both are unique within a set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    /// The validator's id.
    pub id: ValidatorId,
    /// The validator's 20-byte address.
    pub address: Address,
    /// Voting power: positive in a set; in a change set, 0 removes the validator.
    pub power: u64,
    /// The member nodes of the validator's cluster: their Raft addresses.
    pub nodes: Vec<NodeAddr>,
    /// The member nodes' tx-stream and peer listeners (where tx sources and other nodes
    /// connect), `node-id@host:port` each; empty when the file gives none.
    pub streams: Vec<NodeAddr>,
}

impl Validator {
    /// A validator without member nodes or stream listeners.
    #[must_use]
    pub const fn new(id: ValidatorId, address: Address, power: u64) -> Self {
        Self { id, address, power, nodes: Vec::new(), streams: Vec::new() }
    }

    /// The same validator with these member nodes.
    #[must_use]
    pub fn with_nodes(mut self, nodes: Vec<NodeAddr>) -> Self {
        self.nodes = nodes;
        self
    }

    /// The same validator with these stream listeners.
    #[must_use]
    pub fn with_streams(mut self, streams: Vec<NodeAddr>) -> Self {
        self.streams = streams;
        self
    }
}

/// The address of one member node of a validator's cluster: `host:port`, optionally prefixed
/// with the node's id as `node-id@host:port` (the form of `mempulse run --peers`).
///
/// The host is a DNS name or IPv4 address (letters, digits, `.` and `-`) or a bracketed IPv6
/// address; the port is in `1..=65535`. Nothing is resolved: this crate does no IO.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeAddr {
    /// The node's id in its cluster, when given.
    pub node: Option<NodeId>,
    /// Host name or IP address (IPv6 in brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl NodeAddr {
    /// The `host:port` part, which identifies the endpoint.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(node) = self.node {
            write!(f, "{node}@")?;
        }
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// What is wrong with a member node address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NodeAddrErrorKind {
    /// No `:port` at the end.
    #[error("missing port")]
    MissingPort,
    /// The part before `@` is not a positive decimal integer.
    #[error("bad node id")]
    BadNodeId,
    /// The host is empty or has characters a host name cannot have.
    #[error("bad host")]
    BadHost,
    /// The port is not a decimal integer in 1..=65535.
    #[error("bad port")]
    BadPort,
}

impl NodeAddrErrorKind {
    /// Stable code of the error.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MissingPort => "missing_port",
            Self::BadNodeId => "bad_node_id",
            Self::BadHost => "bad_host",
            Self::BadPort => "bad_port",
        }
    }
}

fn is_decimal(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

impl FromStr for NodeAddr {
    type Err = NodeAddrErrorKind;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (node, endpoint) = match text.split_once('@') {
            Some((id, rest)) => match id.parse::<u64>() {
                Ok(n) if n > 0 && is_decimal(id) => (Some(NodeId(n)), rest),
                _ => return Err(NodeAddrErrorKind::BadNodeId),
            },
            None => (None, text),
        };
        let (host, port) = endpoint.rsplit_once(':').ok_or(NodeAddrErrorKind::MissingPort)?;
        let bracketed =
            host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).is_some_and(|ip| {
                !ip.is_empty()
                    && ip.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            });
        let named = !host.is_empty()
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !(bracketed || named) {
            return Err(NodeAddrErrorKind::BadHost);
        }
        let port = match port.parse::<u16>() {
            Ok(p) if p > 0 && is_decimal(port) => p,
            _ => return Err(NodeAddrErrorKind::BadPort),
        };
        Ok(Self { node, host: host.to_owned(), port })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addr_round_trips() {
        for text in ["127.0.0.1:7400", "3@node-b.internal:9", "[::1]:7000", "7@[fe80::1]:1"] {
            let addr: NodeAddr = text.parse().unwrap();
            assert_eq!(addr.to_string(), text);
        }
        let addr: NodeAddr = "2@127.0.0.1:7401".parse().unwrap();
        assert_eq!(addr.node, Some(NodeId(2)));
        assert_eq!(addr.endpoint(), "127.0.0.1:7401");
    }

    #[test]
    fn node_addr_refuses_bad_text() {
        use NodeAddrErrorKind::*;
        let cases = [
            ("127.0.0.1", MissingPort),
            ("", MissingPort),
            ("0@h:1", BadNodeId),
            ("+1@h:1", BadNodeId),
            ("x@h:1", BadNodeId),
            ("@h:1", BadNodeId),
            (":1", BadHost),
            ("h_x:1", BadHost),
            ("[]:1", BadHost),
            ("[zz]:1", BadHost),
            ("h:0", BadPort),
            ("h:65536", BadPort),
            ("h:+1", BadPort),
            ("h:", BadPort),
        ];
        for (text, kind) in cases {
            assert_eq!(text.parse::<NodeAddr>(), Err(kind), "{text}");
        }
        assert_eq!(BadPort.as_str(), "bad_port");
    }
}
