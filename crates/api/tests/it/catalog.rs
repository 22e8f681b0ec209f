//! `GET /v1/catalog`: the peer catalog the node's cluster view lists, ascending by node; empty
//! when the node runs without peers.

use mempulse_api::{
    ApiConfig, CatalogNode, ClusterInfo, ClusterView, router, test_utils::TestNode,
};
use mempulse_primitives::{Height, NodeId, ValidatorId};
use serde_json::json;
use std::sync::Arc;

use super::helpers::{app, get};

/// A cluster view whose catalog holds two nodes.
struct WithCatalog(ClusterView);

impl ClusterInfo for WithCatalog {
    fn status(&self) -> ClusterView {
        self.0.clone()
    }

    fn catalog(&self) -> Vec<CatalogNode> {
        let node = |id: u64, tags: Vec<&'static str>, role| CatalogNode {
            node: NodeId(id),
            validator: ValidatorId(id.div_ceil(3)),
            stream_addr: format!("127.0.0.1:{}", 7500 + id),
            api_addr: format!("127.0.0.1:{}", 8500 + id),
            tags,
            role,
            height: Height(7),
            version: 3,
            age_ms: 12,
        };
        vec![node(1, vec!["proposer"], "leader"), node(4, Vec::new(), "follower")]
    }
}

#[tokio::test]
async fn the_catalog_lists_every_announced_node() {
    let node = TestNode::default();
    assert_eq!(get(&app(&node), "/v1/catalog").await.json(), json!({"nodes": []}));
    let mut services = node.services();
    services.cluster = Arc::new(WithCatalog(services.cluster.status()));
    let app = router(ApiConfig::default(), services);
    let body = get(&app, "/v1/catalog").await.json();
    assert_eq!(
        body["nodes"][0],
        json!({"node": 1, "validator": 1, "stream_addr": "127.0.0.1:7501",
            "api_addr": "127.0.0.1:8501", "tags": ["proposer"], "role": "leader",
            "height": 7, "version": 3, "age_ms": 12})
    );
    assert_eq!(body["nodes"][1]["node"], json!(4));
    assert_eq!(body["nodes"][1]["tags"], json!([]));
}
