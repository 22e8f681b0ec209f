//! Bad input, table-driven: each case asserts the status and the error code, and that the
//! server still answers `/healthz` afterwards (design rule 8: bad input never panics).

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use mempulse_api::{ApiConfig, router, test_utils::TestNode};
use serde_json::Value;

use crate::helpers::{get, send};

/// What the answer must carry.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// A REST error body with this code.
    Rest(&'static str),
    /// A JSON-RPC error object with this code.
    Rpc(i64),
}

struct Case {
    name: &'static str,
    method: &'static str,
    uri: String,
    content_type: Option<&'static str>,
    header: Option<(&'static str, &'static str)>,
    body: Vec<u8>,
    status: StatusCode,
    want: Want,
}

fn case(name: &'static str, method: &'static str, uri: impl Into<String>) -> Case {
    Case {
        name,
        method,
        uri: uri.into(),
        content_type: None,
        header: None,
        body: Vec::new(),
        status: StatusCode::BAD_REQUEST,
        want: Want::Rest(""),
    }
}

impl Case {
    fn json(mut self, body: &str) -> Self {
        self.content_type = Some("application/json");
        self.body = body.as_bytes().to_vec();
        self
    }

    fn typed(mut self, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        self.content_type = Some(content_type);
        self.body = body.into();
        self
    }

    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.header = Some((name, value));
        self
    }

    fn rest(mut self, status: StatusCode, code: &'static str) -> Self {
        self.status = status;
        self.want = Want::Rest(code);
        self
    }

    fn bad(self, code: &'static str) -> Self {
        self.rest(StatusCode::BAD_REQUEST, code)
    }

    fn rpc(mut self, code: i64) -> Self {
        self.status = StatusCode::OK;
        self.want = Want::Rpc(code);
        self
    }
}

fn hash_of(chars: usize) -> String {
    format!("0x{}", "a".repeat(chars))
}

#[expect(clippy::too_many_lines, reason = "one line per case: the table is the test")]
fn cases() -> Vec<Case> {
    let h64 = hash_of(64);
    let commit = |body: String| case("", "POST", "/v1/blocks/commit").json(&body).bad("");
    let mut out = vec![
        // GET /v1/events: cursors, limits, kinds, parameters.
        case("negative cursor", "GET", "/v1/events?after=-1").bad("INVALID_CURSOR"),
        case("word cursor", "GET", "/v1/events?after=abc").bad("INVALID_CURSOR"),
        case("empty cursor", "GET", "/v1/events?after=").bad("INVALID_CURSOR"),
        case("fractional cursor", "GET", "/v1/events?after=1.5").bad("INVALID_CURSOR"),
        case("hex cursor", "GET", "/v1/events?after=0x10").bad("INVALID_CURSOR"),
        case("overflowing cursor", "GET", "/v1/events?after=99999999999999999999").bad("INVALID_CURSOR"),
        case("signed cursor", "GET", "/v1/events?after=%2B5").bad("INVALID_CURSOR"),
        case("zero limit", "GET", "/v1/events?limit=0").bad("INVALID_LIMIT"),
        case("limit over max", "GET", "/v1/events?limit=1001").bad("INVALID_LIMIT"),
        case("huge limit", "GET", "/v1/events?limit=99999999999999999999999").bad("INVALID_LIMIT"),
        case("negative limit", "GET", "/v1/events?limit=-1").bad("INVALID_LIMIT"),
        case("word limit", "GET", "/v1/events?limit=ten").bad("INVALID_LIMIT"),
        case("unknown kind", "GET", "/v1/events?kinds=nope").bad("UNKNOWN_KIND"),
        case("empty kinds", "GET", "/v1/events?kinds=").bad("UNKNOWN_KIND"),
        case("empty kind in list", "GET", "/v1/events?kinds=tx_admitted,,tx_rejected").bad("UNKNOWN_KIND"),
        case("upper-case kind", "GET", "/v1/events?kinds=TX_ADMITTED").bad("UNKNOWN_KIND"),
        case("unknown parameter", "GET", "/v1/events?foo=1").bad("INVALID_QUERY"),
        case("repeated parameter", "GET", "/v1/events?after=1&after=2").bad("INVALID_QUERY"),
        // GET /v1/events/stream.
        case("stream word cursor", "GET", "/v1/events/stream?after=x").bad("INVALID_CURSOR"),
        case("stream unknown kind", "GET", "/v1/events/stream?kinds=bogus").bad("UNKNOWN_KIND"),
        case("stream bad Last-Event-ID", "GET", "/v1/events/stream").header("last-event-id", "-3").bad("INVALID_CURSOR"),
        case("stream unknown parameter", "GET", "/v1/events/stream?limit=5").bad("INVALID_QUERY"),
        // GET /v1/state-root.
        case("negative index", "GET", "/v1/state-root?index=-1").bad("INVALID_QUERY"),
        case("word index", "GET", "/v1/state-root?index=tip").bad("INVALID_QUERY"),
        case("hex index", "GET", "/v1/state-root?index=0x5").bad("INVALID_QUERY"),
        case("empty index", "GET", "/v1/state-root?index=").bad("INVALID_QUERY"),
        case("overflowing index", "GET", "/v1/state-root?index=18446744073709551616").bad("INVALID_QUERY"),
        case("repeated index", "GET", "/v1/state-root?index=1&index=2").bad("INVALID_QUERY"),
        case("state-root unknown parameter", "GET", "/v1/state-root?height=1").bad("INVALID_QUERY"),
        // GET /v1/replay.
        case("replay without from", "GET", "/v1/replay").bad("INVALID_QUERY"),
        case("replay from zero", "GET", "/v1/replay?from=0").bad("INVALID_QUERY"),
        case("replay word from", "GET", "/v1/replay?from=start").bad("INVALID_QUERY"),
        case("replay signed to", "GET", "/v1/replay?from=1&to=-5").bad("INVALID_QUERY"),
        case("replay to below from", "GET", "/v1/replay?from=9&to=3").bad("INVALID_QUERY"),
        case("replay zero every", "GET", "/v1/replay?from=1&every=0").bad("INVALID_QUERY"),
        case("replay fractional every", "GET", "/v1/replay?from=1&every=2.5").bad("INVALID_QUERY"),
        case("replay unknown parameter", "GET", "/v1/replay?from=1&limit=5").bad("INVALID_QUERY"),
        case("replay too many points", "GET", "/v1/replay?from=1&to=100&every=1").bad("TOO_MANY_ITEMS"),
        case("replay past the log", "GET", "/v1/replay?from=500").rest(StatusCode::NOT_FOUND, "NOT_FOUND"),
        // GET /v1/txs/{hash}.
        case("short hash", "GET", "/v1/txs/0x1234").bad("INVALID_HASH"),
        case("hash without 0x", "GET", format!("/v1/txs/{}", "a".repeat(64))).bad("INVALID_HASH"),
        case("odd-length hash", "GET", format!("/v1/txs/{}", hash_of(63))).bad("INVALID_HASH"),
        case("33-byte hash", "GET", format!("/v1/txs/{}", hash_of(66))).bad("INVALID_HASH"),
        case("non-hex hash", "GET", format!("/v1/txs/0x{}", "z".repeat(64))).bad("INVALID_HASH"),
        case("non-UTF-8 hash", "GET", "/v1/txs/%FF%FE").bad("INVALID_HASH"),
        case("lifecycle repeated parameter", "GET", format!("/v1/txs/{h64}?x=1&x=2")).bad("INVALID_QUERY"),
        case("lifecycle consistency", "GET", format!("/v1/txs/{h64}?consistency=weak")).bad("INVALID_QUERY"),
        // Routes that take no parameters refuse any, as the others refuse unknown ones.
        case("cluster unknown parameter", "GET", "/v1/cluster?bogus=1").bad("INVALID_QUERY"),
        case("catalog unknown parameter", "GET", "/v1/catalog?after=-1").bad("INVALID_QUERY"),
        case("submit parameter", "POST", "/v1/txs?raw=0x01").typed("application/octet-stream", vec![1, 2]).bad("INVALID_QUERY"),
        case("build parameter", "POST", "/v1/blocks/build?proposer=1").json(r#"{"proposer":1}"#).bad("INVALID_QUERY"),
        case("commit parameter", "POST", "/v1/blocks/commit?height=1").json(r#"{"height":1,"txs":[]}"#).bad("INVALID_QUERY"),
        case("reorg parameter", "POST", "/v1/reorg?x=1").json(r#"{"fork_height":1,"orphaned":[{"height":2,"txs":[]}]}"#).bad("INVALID_QUERY"),
        // GET /v1/pool, /v1/pool/txs/{hash}: read consistency.
        case("unknown consistency", "GET", "/v1/pool?consistency=strong").bad("INVALID_CONSISTENCY"),
        case("empty consistency", "GET", "/v1/pool?consistency=").bad("INVALID_CONSISTENCY"),
        case("upper-case consistency", "GET", "/v1/pool?consistency=LINEARIZABLE").bad("INVALID_CONSISTENCY"),
        case("padded consistency", "GET", "/v1/pool?consistency=%20weak").bad("INVALID_CONSISTENCY"),
        case("repeated consistency", "GET", "/v1/pool?consistency=weak&consistency=weak").bad("INVALID_QUERY"),
        case("pool unknown parameter", "GET", "/v1/pool?stale=1").bad("INVALID_QUERY"),
        case("pool tx short hash", "GET", "/v1/pool/txs/0x12?consistency=weak").bad("INVALID_HASH"),
        case("pool tx unknown consistency", "GET", format!("/v1/pool/txs/{h64}?consistency=eventual")).bad("INVALID_CONSISTENCY"),
        case("pool tx unknown parameter", "GET", format!("/v1/pool/txs/{h64}?limit=1")).bad("INVALID_QUERY"),
        // POST /v1/txs.
        case("no content type", "POST", "/v1/txs").rest(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE"),
        case("image content type", "POST", "/v1/txs").typed("image/png", vec![1, 2]).rest(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE"),
        case("empty bytes", "POST", "/v1/txs").typed("application/octet-stream", vec![]).bad("INVALID_BODY"),
        case("truncated JSON", "POST", "/v1/txs").json(r#"{"raw":"#).bad("INVALID_JSON"),
        case("raw is a number", "POST", "/v1/txs").json(r#"{"raw":5}"#).bad("INVALID_BODY"),
        case("raw and raws", "POST", "/v1/txs").json(r#"{"raw":"0x01","raws":["0x02"]}"#).bad("INVALID_BODY"),
        case("neither raw nor raws", "POST", "/v1/txs").json("{}").bad("INVALID_BODY"),
        case("unknown field", "POST", "/v1/txs").json(r#"{"tx":"0x01"}"#).bad("INVALID_BODY"),
        case("raw without 0x", "POST", "/v1/txs").json(r#"{"raw":"0102"}"#).bad("INVALID_HEX"),
        case("raw of odd length", "POST", "/v1/txs").json(r#"{"raw":"0x123"}"#).bad("INVALID_HEX"),
        case("empty raw", "POST", "/v1/txs").json(r#"{"raw":"0x"}"#).bad("INVALID_BODY"),
        case("too many raws", "POST", "/v1/txs").json(r#"{"raws":["0x01","0x02","0x03","0x04","0x05"]}"#).bad("TOO_MANY_ITEMS"),
        case("empty raws", "POST", "/v1/txs").json(r#"{"raws":[]}"#).bad("INVALID_BODY"),
        case("array body", "POST", "/v1/txs").json(r#"["0x01"]"#).bad("INVALID_BODY"),
        case("non-hex text", "POST", "/v1/txs").typed("text/plain", "0xgg").bad("INVALID_HEX"),
        case("empty text", "POST", "/v1/txs").typed("text/plain", "  \n").bad("INVALID_BODY"),
        case("non-UTF-8 text", "POST", "/v1/txs").typed("text/plain", vec![0xff, 0xfe]).bad("INVALID_BODY"),
        case("oversize bytes", "POST", "/v1/txs").typed("application/octet-stream", vec![1; 5000]).rest(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
        // Block commands.
        case("proposer is text", "POST", "/v1/blocks/build").json(r#"{"proposer":"x"}"#).bad("INVALID_BODY"),
        case("proposer missing", "POST", "/v1/blocks/build").json(r#"{"max_gas":5}"#).bad("INVALID_BODY"),
        case("zero gas limit", "POST", "/v1/blocks/build").json(r#"{"proposer":1,"max_gas":0}"#).bad("INVALID_BODY"),
        case("negative proposer", "POST", "/v1/blocks/build").json(r#"{"proposer":-1}"#).bad("INVALID_BODY"),
        case("build as text", "POST", "/v1/blocks/build").typed("text/plain", "{}").rest(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE"),
        case("malformed commit", "POST", "/v1/blocks/commit").json("{height: 1}").bad("INVALID_JSON"),
        case("reorg without blocks", "POST", "/v1/reorg").json(r#"{"fork_height":1,"orphaned":[]}"#).bad("INVALID_BODY"),
        case("orphan at the fork", "POST", "/v1/reorg").json(r#"{"fork_height":3,"orphaned":[{"height":3,"txs":[]}]}"#).bad("INVALID_BODY"),
        case("orphan twice", "POST", "/v1/reorg").json(r#"{"fork_height":1,"orphaned":[{"height":2,"txs":[]},{"height":2,"txs":[]}]}"#).bad("INVALID_BODY"),
        case("orphan tx not hex", "POST", "/v1/reorg").json(r#"{"fork_height":1,"orphaned":[{"height":2,"txs":["0xqq"]}]}"#).bad("INVALID_HEX"),
        case("too many orphans", "POST", "/v1/reorg").json(r#"{"fork_height":1,"orphaned":[{"height":2,"txs":[]},{"height":3,"txs":[]},{"height":4,"txs":[]}]}"#).bad("TOO_MANY_ITEMS"),
        // JSON-RPC envelopes.
        case("rpc parse error", "POST", "/").json("{not json").rpc(-32700),
        case("rpc wrong version", "POST", "/").json(r#"{"jsonrpc":"1.0","id":1,"method":"eth_chainId"}"#).rpc(-32600),
        case("rpc version missing", "POST", "/").json(r#"{"id":1,"method":"eth_chainId"}"#).rpc(-32600),
        case("rpc method is a number", "POST", "/").json(r#"{"jsonrpc":"2.0","id":1,"method":5}"#).rpc(-32600),
        case("rpc id is an object", "POST", "/").json(r#"{"jsonrpc":"2.0","id":{},"method":"eth_chainId"}"#).rpc(-32600),
        case("rpc params is a string", "POST", "/").json(r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":"x"}"#).rpc(-32600),
        case("rpc scalar body", "POST", "/rpc").json("42").rpc(-32600),
        case("rpc unknown method", "POST", "/").json(r#"{"jsonrpc":"2.0","id":1,"method":"eth_mine"}"#).rpc(-32601),
        case("raw tx non-hex", "POST", "/").json(r#"{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0xzz"]}"#).rpc(-32602),
        case("raw tx odd length", "POST", "/").json(r#"{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0xabc"]}"#).rpc(-32602),
        case("raw tx without 0x", "POST", "/").json(r#"{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["abcd"]}"#).rpc(-32602),
        case("raw tx missing", "POST", "/").json(r#"{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction"}"#).rpc(-32602),
        case("raw tx twice", "POST", "/").json(r#"{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x01","0x02"]}"#).rpc(-32602),
        case("raw tx is a number", "POST", "/").json(r#"{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":[1]}"#).rpc(-32602),
        case("raw tx by name", "POST", "/").json(r#"{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":{"tx":"0x01"}}"#).rpc(-32602),
        case("raw tx empty", "POST", "/").json(r#"{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x"]}"#).rpc(-32000),
        case("lookup short hash", "POST", "/").json(r#"{"jsonrpc":"2.0","id":1,"method":"eth_getTransactionByHash","params":["0x12"]}"#).rpc(-32602),
        case("status unknown consistency", "POST", "/").json(r#"{"jsonrpc":"2.0","id":1,"method":"txpool_status","params":[{"consistency":"strong"}]}"#).rpc(-32602),
        case("status consistency is a number", "POST", "/").json(r#"{"jsonrpc":"2.0","id":1,"method":"txpool_status","params":[{"consistency":1}]}"#).rpc(-32602),
        case("status options not an object", "POST", "/").json(r#"{"jsonrpc":"2.0","id":1,"method":"txpool_status","params":["linearizable"]}"#).rpc(-32602),
        case("status unknown read option", "POST", "/").json(r#"{"jsonrpc":"2.0","id":1,"method":"txpool_status","params":[{"stale":true}]}"#).rpc(-32602),
        case("content two option objects", "POST", "/").json(r#"{"jsonrpc":"2.0","id":1,"method":"txpool_content","params":[{},{}]}"#).rpc(-32602),
        case("inspect upper-case consistency", "POST", "/").json(r#"{"jsonrpc":"2.0","id":1,"method":"txpool_inspect","params":[{"consistency":"LINEARIZABLE"}]}"#).rpc(-32602),
        case("lookup options as text", "POST", "/").json(&format!(r#"{{"jsonrpc":"2.0","id":1,"method":"eth_getTransactionByHash","params":["{h64}","linearizable"]}}"#)).rpc(-32602),
        case("lookup options without hash", "POST", "/").json(r#"{"jsonrpc":"2.0","id":1,"method":"eth_getTransactionByHash","params":[{"consistency":"linearizable"}]}"#).rpc(-32602),
        case("lookup options by name", "POST", "/").json(r#"{"jsonrpc":"2.0","id":1,"method":"txpool_status","params":{"consistency":"linearizable"}}"#).rpc(-32602),
        case("chain id with params", "POST", "/").json(r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[1]}"#).rpc(-32602),
        case("empty batch", "POST", "/").json("[]").rpc(-32600),
        case("rpc as text", "POST", "/").typed("text/plain", "{}").rest(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE"),
        case("rpc without content type", "POST", "/rpc").rest(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE"),
        case("rpc oversize", "POST", "/").json(&format!(r#"{{"pad":"{}"}}"#, "x".repeat(5000))).rest(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
        case("rpc nested too deep", "POST", "/").json(&format!("{}{}", "[".repeat(300), "]".repeat(300))).rpc(-32700),
        // Routing.
        case("unknown route", "GET", "/v2/nope").rest(StatusCode::NOT_FOUND, "ROUTE_NOT_FOUND"),
        case("delete events", "DELETE", "/v1/events").rest(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED"),
        case("get rpc", "GET", "/").rest(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED"),
        case("post healthz", "POST", "/healthz").rest(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED"),
    ];
    let batch: Vec<String> = (0..11)
        .map(|i| format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"eth_chainId"}}"#))
        .collect();
    out.push(case("huge batch", "POST", "/").json(&format!("[{}]", batch.join(","))).rpc(-32600));
    let commits = [
        ("zero height", r#"{"height":0,"txs":[]}"#.to_owned(), "INVALID_BODY"),
        ("short tx hash", r#"{"height":1,"txs":["0xabcd"]}"#.to_owned(), "INVALID_HASH"),
        ("duplicate tx hash", format!(r#"{{"height":1,"txs":["{h64}","{h64}"]}}"#), "INVALID_BODY"),
        (
            "19-byte sender",
            format!(
                r#"{{"height":1,"txs":[],"nonces":[{{"sender":"0x{}","nonce":1}}]}}"#,
                "11".repeat(19)
            ),
            "INVALID_BODY",
        ),
        (
            "sender twice",
            format!(
                r#"{{"height":1,"txs":[],"nonces":[{{"sender":"0x{0}","nonce":1}},{{"sender":"0x{0}","nonce":2}}]}}"#,
                "11".repeat(20)
            ),
            "INVALID_BODY",
        ),
        (
            "exponent base fee",
            r#"{"height":1,"txs":[],"base_fee_per_gas":"1e9"}"#.to_owned(),
            "INVALID_BODY",
        ),
        (
            "overflowing height",
            r#"{"height":18446744073709551616,"txs":[]}"#.to_owned(),
            "INVALID_BODY",
        ),
        ("fractional height", r#"{"height":1.5,"txs":[]}"#.to_owned(), "INVALID_BODY"),
        (
            "too many tx hashes",
            format!(r#"{{"height":1,"txs":[{}]}}"#, vec![format!("\"{h64}\""); 9].join(",")),
            "TOO_MANY_ITEMS",
        ),
    ];
    for (name, body, code) in commits {
        let mut c = commit(body).bad(code);
        c.name = name;
        out.push(c);
    }
    out
}

fn tight() -> ApiConfig {
    ApiConfig {
        body_bytes_max: 4096,
        rpc_batch_max: 10,
        txs_per_request_max: 4,
        events_limit_max: 1000,
        reorg_blocks_max: 2,
        block_txs_max: 8,
        replay_points_max: 50,
        ..ApiConfig::default()
    }
}

#[tokio::test]
async fn every_bad_input_gets_its_code_and_the_server_stays_up() {
    let node = TestNode::default();
    let app = router(tight(), node.services());
    let cases = cases();
    assert!(cases.len() >= 60, "the suite has {} cases", cases.len());
    for c in cases {
        let mut request = Request::builder().method(c.method).uri(&c.uri);
        if let Some(ct) = c.content_type {
            request = request.header("content-type", ct);
        }
        if let Some((name, value)) = c.header {
            request = request.header(name, value);
        }
        let answer = send(&app, request.body(Body::from(c.body)).unwrap()).await;
        let name = c.name;
        let text = String::from_utf8_lossy(&answer.body).into_owned();
        assert_eq!(answer.status, c.status, "{name}: {text}");
        let body: Value = serde_json::from_slice(&answer.body)
            .unwrap_or_else(|_| panic!("{name}: not JSON: {text}"));
        match c.want {
            Want::Rest(code) => {
                assert_eq!(body["code"], code, "{name}: {text}");
                assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{name}");
            }
            Want::Rpc(code) => {
                assert_eq!(body["jsonrpc"], "2.0", "{name}: {text}");
                assert_eq!(body["error"]["code"], code, "{name}: {text}");
            }
        }
        assert_eq!(get(&app, "/healthz").await.status, StatusCode::OK, "{name}: server down after");
    }
    assert!(node.pool.submitted.lock().unwrap().is_empty(), "no bad input reached the pool");
    assert!(node.blocks.builds.lock().unwrap().is_empty(), "no bad build reached the pool");
    assert!(node.blocks.commits.lock().unwrap().is_empty(), "no bad commit reached the pool");
    assert!(node.blocks.reorgs.lock().unwrap().is_empty(), "no bad reorg reached the pool");
}
