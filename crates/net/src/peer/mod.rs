//! The peer protocol: nodes announce themselves to each other (node, validator, addresses,
//! tags, Raft role) and send each other the blocks they build; tx sources subscribe to a
//! node's catalog and route their streams by tags (`subscribe_if`).
//!
//! ```text
//!  node A (PeerLinks, one link per other node)          node B (stream listener)
//!    PeerSession ── PeerHello{A, v} ───────────────────► detect_protocol: kind 16 ─► serve_peer
//!                ◄─────────────────────── PeerHello{B} ──  (certificate must name node-A)
//!                ── Announce(A's announcement) ────────►  Catalog::merge (newer version wins)
//!                   … again on every change and every heartbeat (slot / 2)
//!                ── Block{id, notice} ─────────────────►  BlockHandler::on_block(A, notice)
//!                ◄──────────────────── BlockAck{id, ack} ──
//!  tx source
//!    PeerSession ── PeerHello{S} ── Subscribe ─────────►
//!                ◄──── Catalog([..]) now and on every change (ascending node)
//!    subscribe_if(predicate): one TxStreamClient per node of every cluster whose tags match
//! ```
//! Sessions are independent: a bad frame closes only its own (with `Close{reason}`), counted
//! in `mempulse_net_peer_sessions_closed_total`. See `docs/design/peer-catalog.md`.

mod catalog;
mod client;
mod conn;
mod error;
mod frame;
mod links;
pub mod metrics;
mod route;
mod server;
mod sniff;
mod types;

pub use self::{
    catalog::{
        AnnounceRefusal, CATALOG_EXPIRY_DEFAULT, CATALOG_NODES_MAX_DEFAULT, Catalog, CatalogConfig,
        CatalogEntry, Merged,
    },
    client::{PEER_REQUESTS_MAX_DEFAULT, PeerClientConfig, PeerSession},
    error::PeerError,
    frame::{
        ADDR_BYTES_MAX, PEER_FRAME_BYTES_MAX_DEFAULT, PEER_HELLO_KIND, PEER_HELLO_MAGIC,
        PEER_PROTOCOL_VERSION, PeerFrame, PeerFrameDecoder, PeerFrameError,
    },
    links::{
        BoxPeerIo, LINK_BACKOFF_MAX_DEFAULT, LINK_BACKOFF_MIN_DEFAULT, LINK_HEARTBEAT_DEFAULT,
        LinkStatus, PeerConnector, PeerIo, PeerLinks, PeerLinksConfig,
    },
    route::{
        NodeStatus, ProposerTurn, ROUTE_HISTORY_MAX, ROUTE_RETRY_DEFAULT, RouteConfig, RouteError,
        RouteStatus, RouteSummary, StreamEvent, TxRouter, subscribe_if,
    },
    server::{PEER_BLOCKS_IN_FLIGHT_MAX_DEFAULT, PeerLimits, PeerService, PeerSummary, serve_peer},
    sniff::{Protocol, Rewind, detect_protocol},
    types::{Announcement, BlockAck, BlockHandler, BlockNotice, PeerRole, REASON_BYTES_MAX},
};
/// The length-prefixed framing both protocols share: [`PeerFrameDecoder`] and the tx stream's
/// [`FrameDecoder`](crate::FrameDecoder) are [`LengthPrefixed`] decoders of their frame types.
pub use crate::stream::{LengthPrefixed, WireFrame};
