#!/usr/bin/env python3
"""Submits transactions signed by real Ethereum client libraries to a running mempulse node.

Usage: eth_clients.py RPC_URL CHAIN_ID

eth-account signs legacy (EIP-155), EIP-2930 and EIP-1559 transactions for several senders; web3
(when it is installed) sends half of them with `eth.send_raw_transaction`, and plain JSON-RPC
over urllib sends the rest, so the node is checked against two independent clients. The script
then checks, against what the libraries computed:

- every send returned the hash eth-account computed;
- `eth_chainId` is CHAIN_ID;
- every transaction is in `txpool_content` under its sender and nonce, as pending;
- `eth_getTransactionByHash` returns the sender, nonce and type the library signed;
- resending a transaction is refused with geth's "already known".

Prints one JSON line with the counts and exits 0 on success; any mismatch raises (exit 1).
"""
import json
import sys
import urllib.request

from eth_account import Account

try:
    from web3 import Web3
except ImportError:  # web3 is optional; plain JSON-RPC covers every call then
    Web3 = None

SENDERS = 4
TXS_PER_SENDER = 6
GWEI = 10**9
TO = "0x" + "35" * 20


def rpc(url, method, params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        reply = json.loads(response.read())
    if reply.get("jsonrpc") != "2.0" or reply.get("id") != 1:
        raise AssertionError(f"{method}: not a JSON-RPC 2.0 reply to id 1: {reply}")
    return reply


def rpc_result(url, method, params):
    reply = rpc(url, method, params)
    if "error" in reply:
        raise AssertionError(f"{method} failed: {reply['error']}")
    return reply["result"]


def unsigned(kind, nonce, chain_id):
    """One transaction of `kind` (0 legacy, 1 EIP-2930, 2 EIP-1559)."""
    base = {"nonce": nonce, "gas": 50_000, "to": TO, "value": 10**15 + nonce,
            "data": "0xdeadbeef", "chainId": chain_id}
    if kind == 0:
        return {**base, "gasPrice": 20 * GWEI}
    if kind == 1:
        return {**base, "type": 1, "gasPrice": 21 * GWEI,
                "accessList": [{"address": TO, "storageKeys": ["0x" + "00" * 31 + "01"]}]}
    return {**base, "type": 2, "maxFeePerGas": 30 * GWEI, "maxPriorityFeePerGas": 2 * GWEI}


def main():
    url, chain_id = sys.argv[1], int(sys.argv[2])
    assert int(rpc_result(url, "eth_chainId", []), 16) == chain_id, "eth_chainId"
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 10})) if Web3 else None

    accounts = [Account.from_key(bytes([0x11 * (i + 1)]) * 32) for i in range(SENDERS)]
    signed = []  # (account, nonce, kind, raw hex, hash hex)
    for account in accounts:
        for nonce in range(TXS_PER_SENDER):
            kind = nonce % 3
            tx = account.sign_transaction(unsigned(kind, nonce, chain_id))
            raw = "0x" + bytes(tx.raw_transaction).hex()
            signed.append((account, nonce, kind, raw, "0x" + bytes(tx.hash).hex()))

    via_web3 = 0
    for index, (_, _, _, raw, expected) in enumerate(signed):
        if w3 is not None and index % 2 == 0:
            got = "0x" + bytes(w3.eth.send_raw_transaction(raw)).hex()
            via_web3 += 1
        else:
            got = rpc_result(url, "eth_sendRawTransaction", [raw])
        assert got.lower() == expected, f"hash {got} != library's {expected}"

    content = rpc_result(url, "txpool_content", [])
    for account, nonce, kind, _, expected in signed:
        by_sender = {k.lower(): v for k, v in content["pending"].items()}
        entry = by_sender[account.address.lower()][str(nonce)]
        assert entry["hash"].lower() == expected, f"txpool_content hash for {account.address}/{nonce}"
        found = rpc_result(url, "eth_getTransactionByHash", [expected])
        assert found["from"].lower() == account.address.lower(), "from"
        assert int(found["nonce"], 16) == nonce, "nonce"
        assert int(found["type"], 16) == kind, "type"

    again = rpc(url, "eth_sendRawTransaction", [signed[0][3]])
    assert "error" in again and "already known" in again["error"]["message"], f"resend: {again}"

    status = rpc_result(url, "txpool_status", [])
    print(json.dumps({"sent": len(signed), "via_web3": via_web3,
                      "pending": int(status["pending"], 16), "queued": int(status["queued"], 16)}))


if __name__ == "__main__":
    main()
