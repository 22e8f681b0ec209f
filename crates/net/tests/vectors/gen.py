#!/usr/bin/env python3
"""Generates tests/vectors/txs.json: signed Ethereum transactions made by eth-account, a library
mempulse does not share code with, plus invalid variants derived from them.

Usage (from crates/net): pip install eth-account && python3 tests/vectors/gen.py
Signing is deterministic (RFC 6979), so re-running reproduces the committed file byte for byte.

Each valid vector records what eth-account computed (hash, sender, fields); each invalid vector
records the precise failure mempulse-net must report (`TxError::as_str`) and, when the bytes
decode far enough to have one, the hash.
"""
import json
import os

import rlp
from eth_account import Account
from eth_keys import keys
from eth_utils import keccak

CHAIN_ID = 1
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
GWEI = 10**9
TO = "0x" + "35" * 20

# Private keys: the EIP-155 example key and four more fixed ones.
KEYS = ["0x" + "46" * 32] + ["0x" + f"{i:02x}" * 32 for i in (1, 2, 3, 0x7F)]

# The signed transaction and hash printed in the EIP-155 text.
EIP155_EXAMPLE_RAW = (
    "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a7640000"
    "8025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f"
    "761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"
)
EIP155_EXAMPLE_HASH = "33469b22e9f636356c4160a87eb19df52b7412e8eac32a4a55ffe88ea8350788"

TYPE_NAMES = {0: "legacy", 1: "eip2930", 2: "eip1559", 3: "eip4844", 4: "eip7702"}


def sign(key, tx):
    return bytes(Account.from_key(key).sign_transaction(tx).raw_transaction)


def fees(tx):
    if "gasPrice" in tx:
        return tx["gasPrice"], tx["gasPrice"]
    return tx["maxFeePerGas"], tx["maxPriorityFeePerGas"]


def valid_entry(name, key, tx, raw):
    tx_type = tx.get("type", 0)
    max_fee, max_priority = fees(tx)
    return {
        "name": name,
        "raw": "0x" + raw.hex(),
        "hash": "0x" + keccak(raw).hex(),
        "sender": Account.from_key(key).address.lower(),
        "tx_type": TYPE_NAMES[tx_type],
        "nonce": tx["nonce"],
        "gas_limit": tx["gas"],
        "max_fee_per_gas": str(max_fee),
        "max_priority_fee_per_gas": str(max_priority),
        "chain_id": tx.get("chainId"),
        "encoded_size": len(raw),
    }


def templates(key, i):
    """One transaction of every supported shape, varied per key."""
    acct = Account.from_key(key)
    access_list = [
        {"address": "0x" + "de" * 20, "storageKeys": ["0x" + f"{k:064x}" for k in range(i + 1)]},
        {"address": "0x" + "ad" * 20, "storageKeys": []},
    ]
    auth = acct.sign_authorization({"chainId": CHAIN_ID, "address": "0x" + "42" * 20, "nonce": i + 1})
    dyn = {"maxFeePerGas": (30 + i) * GWEI, "maxPriorityFeePerGas": (i + 1) * GWEI, "chainId": CHAIN_ID}
    return [
        ("legacy_pre155", {"nonce": i, "gasPrice": (20 + i) * GWEI, "gas": 21000, "to": TO, "value": 10**18, "data": b""}),
        ("legacy_eip155", {"nonce": 100 + i, "gasPrice": (20 + i) * GWEI, "gas": 50000, "to": TO, "value": i, "data": bytes([0, 1, 2, i]), "chainId": CHAIN_ID}),
        ("legacy_create", {"nonce": i, "gasPrice": GWEI, "gas": 100000, "to": b"", "value": 0, "data": bytes.fromhex("6001600055") * (i + 1), "chainId": CHAIN_ID}),
        ("eip2930", {"type": 1, "nonce": i, "gasPrice": (20 + i) * GWEI, "gas": 60000, "to": TO, "value": 0, "data": b"\x00" * i, "accessList": access_list, "chainId": CHAIN_ID}),
        ("eip1559", {"type": 2, "nonce": 2**32 + i, "gas": 21000, "to": TO, "value": 10**17, "data": b"", "accessList": [], **dyn}),
        ("eip1559_calldata", {"type": 2, "nonce": i, "gas": 200000, "to": TO, "value": 0, "data": bytes(range(1, 64)) + b"\x00" * 20, "accessList": access_list, **dyn}),
        ("eip1559_create", {"type": 2, "nonce": i, "gas": 90000, "to": b"", "value": 0, "data": bytes.fromhex("600a600c600039600a6000f3602a60005260206000f3"), "accessList": [], **dyn}),
        ("eip4844", {"type": 3, "nonce": i, "gas": 21000, "to": TO, "value": 0, "data": b"", "accessList": [], "maxFeePerBlobGas": GWEI, "blobVersionedHashes": [b"\x01" + bytes([i]) * 31] * (i % 3 + 1), **dyn}),
        ("eip7702", {"type": 4, "nonce": i, "gas": 80000, "to": TO, "value": 0, "data": b"", "accessList": [], "authorizationList": [auth], **dyn}),
    ]


def minimal(n):
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def resign_fields(raw, mutate):
    """Decodes `raw`, lets `mutate` change the RLP item list (v/y, r, s are the last three), and
    re-encodes without re-signing."""
    if raw[0] >= 0xC0:
        items = rlp.decode(raw)
        return rlp.encode(mutate(list(items)))
    items = rlp.decode(raw[1:])
    return raw[:1] + rlp.encode(mutate(list(items)))


def to_in_long_form(raw):
    """A legacy transaction whose 20-byte `to` uses the long string form (0xb8 0x14), which RLP
    forbids below 56 bytes."""
    items = rlp.decode(raw)
    parts = [rlp.encode(x) for x in items]
    parts[3] = b"\xb8\x14" + items[3]
    payload = b"".join(parts)
    assert 55 < len(payload) < 256
    return b"\xf8" + bytes([len(payload)]) + payload


def high_s(items):
    """The malleable twin: s -> n - s with the parity flipped; it recovers the same sender."""
    v, r, s = items[-3:]
    v = int.from_bytes(v, "big")
    if v <= 1:  # typed: y_parity
        v ^= 1
    elif v <= 28:  # pre-EIP-155: 27 <-> 28
        v = 55 - v
    else:  # EIP-155: 35 + 2 * chain_id + parity
        v = v + 1 if (v - 35) % 2 == 0 else v - 1
    s = SECP256K1_N - int.from_bytes(s, "big")
    return items[:-3] + [minimal(v), r, minimal(s)]


def resign_typed(key, raw, mutate):
    """For a typed transaction eth-account refuses to build: takes a valid one, lets `mutate`
    change its unsigned fields, and signs the result with eth-keys."""
    fields = mutate(list(rlp.decode(raw[1:]))[:-3])
    sighash = keccak(raw[:1] + rlp.encode(fields))
    sig = keys.PrivateKey(bytes.fromhex(key[2:])).sign_msg_hash(sighash)
    return raw[:1] + rlp.encode(fields + [minimal(sig.v), minimal(sig.r), minimal(sig.s)])


def set_field(index, value):
    return lambda fields: fields[:index] + [value] + fields[index + 1 :]


def invalid(name, raw, error, decodes):
    return {
        "name": name,
        "raw": "0x" + raw.hex(),
        "error": error,
        "hash": "0x" + keccak(raw).hex() if decodes else None,
    }


def invalid_vectors(key):
    legacy = sign(key, {"nonce": 9, "gasPrice": 20 * GWEI, "gas": 21000, "to": TO, "value": 10**18, "data": b"", "chainId": CHAIN_ID})
    base = {"type": 2, "nonce": 1, "gas": 21000, "to": TO, "value": 1, "data": b"", "accessList": [], "maxFeePerGas": 30 * GWEI, "maxPriorityFeePerGas": GWEI, "chainId": CHAIN_ID}
    dyn = sign(key, base)
    blob = {**base, "type": 3, "maxFeePerBlobGas": GWEI, "blobVersionedHashes": [b"\x01" + b"\x00" * 31]}
    out = [
        invalid("empty", b"", "empty", False),
        invalid("truncated_legacy", legacy[:-1], "rlp_input_too_short", False),
        invalid("truncated_eip1559", dyn[:-1], "rlp_input_too_short", False),
        invalid("truncated_to_type_byte", dyn[:1], "rlp_input_too_short", False),
        invalid("type_byte_0x05", b"\x05" + dyn[1:], "unsupported_type", False),
        invalid("type_byte_0x00", b"\x00" + legacy, "unsupported_type", False),
        invalid("type_byte_0x7f", b"\x7f" + dyn[1:], "unsupported_type", False),
        invalid("rlp_string_not_list", b"\x83abc", "rlp_unexpected_string", False),
        invalid("trailing_byte_legacy", legacy + b"\x00", "trailing_bytes", False),
        invalid("trailing_byte_eip1559", dyn + b"\xc0", "trailing_bytes", False),
        invalid("legacy_v_29", resign_fields(legacy, lambda it: it[:-3] + [minimal(29)] + it[-2:]), "rlp_invalid_value", False),
        invalid("eip1559_y_parity_2", resign_fields(dyn, lambda it: it[:-3] + [minimal(2)] + it[-2:]), "rlp_invalid_value", False),
        invalid("legacy_nonce_leading_zero", resign_fields(legacy, lambda it: [b"\x00" + it[0]] + it[1:]), "rlp_leading_zero", False),
        invalid("legacy_list_length_leading_zero", b"\xf9\x00" + legacy[1:], "rlp_leading_zero", False),
        invalid("legacy_to_long_form_length", to_in_long_form(legacy), "rlp_non_canonical_size", False),
    ]
    for name, raw in (("high_s_legacy", legacy), ("high_s_eip1559", dyn)):
        mutated = resign_fields(raw, high_s)
        out.append(invalid(name, mutated, "high_s", True))
    for name, raw in (
        ("r_zero_eip1559", resign_fields(dyn, lambda it: it[:-2] + [b"", it[-1]])),
        ("s_zero_legacy", resign_fields(legacy, lambda it: it[:-1] + [b""])),
    ):
        out.append(invalid(name, raw, "invalid_signature", True))
    checks = [
        ("wrong_chain_id_legacy", {"nonce": 9, "gasPrice": 20 * GWEI, "gas": 21000, "to": TO, "value": 1, "data": b"", "chainId": 5}, "wrong_chain_id"),
        ("wrong_chain_id_eip1559", {**base, "chainId": 137}, "wrong_chain_id"),
        ("priority_fee_above_max_fee", {**base, "maxPriorityFeePerGas": 31 * GWEI}, "fee_fields_inconsistent"),
        ("gas_below_base", {**base, "gas": 20999}, "intrinsic_gas_too_low"),
        ("gas_below_calldata_cost", {**base, "gas": 21000 + 16 * 3, "data": b"\x01\x02\x03\x00"}, "intrinsic_gas_too_low"),
        ("gas_below_calldata_floor", {**base, "gas": 21000 + 4 * 16 + 36, "data": b"\x01\x02\x03\x04"}, "intrinsic_gas_too_low"),
        ("gas_below_access_list_cost", {**base, "gas": 21000 + 2400, "accessList": [{"address": TO, "storageKeys": ["0x" + "00" * 32]}]}, "intrinsic_gas_too_low"),
        ("gas_below_create_cost", {**base, "gas": 53000, "to": b"", "data": b"\x00"}, "intrinsic_gas_too_low"),
        ("gas_limit_above_eip7825_cap", {**base, "gas": 2**24 + 1}, "gas_limit_too_high"),
    ]
    for name, tx, error in checks:
        out.append(invalid(name, sign(key, tx), error, True))
    # Blob hashes are field 10 of an EIP-4844 payload, authorizations field 9 of an EIP-7702 one.
    blob_raw = sign(key, blob)
    auth = Account.from_key(key).sign_authorization({"chainId": CHAIN_ID, "address": TO, "nonce": 0})
    setcode_raw = sign(key, {**base, "type": 4, "gas": 60000, "authorizationList": [auth]})
    structural = [
        ("blob_without_hashes", blob_raw, set_field(10, []), "blob_count"),
        ("blob_seven_hashes", blob_raw, set_field(10, [b"\x01" + b"\x00" * 31] * 7), "blob_count"),
        ("blob_hash_version_0", blob_raw, set_field(10, [b"\x00" * 32]), "blob_hash_version"),
        ("eip7702_no_authorizations", setcode_raw, set_field(9, []), "empty_authorization_list"),
    ]
    for name, raw, mutate, error in structural:
        out.append(invalid(name, resign_typed(key, raw, mutate), error, True))
    return out


def main():
    valid = []
    for i, key in enumerate(KEYS):
        for name, tx in templates(key, i):
            valid.append(valid_entry(f"{name}_key{i}", key, tx, sign(key, tx)))
    example = {"nonce": 9, "gasPrice": 20 * GWEI, "gas": 21000, "to": TO, "value": 10**18, "data": b"", "chainId": 1}
    raw = sign(KEYS[0], example)
    assert raw.hex() == EIP155_EXAMPLE_RAW, "eth-account disagrees with the EIP-155 text"
    assert keccak(raw).hex() == EIP155_EXAMPLE_HASH
    valid.insert(0, valid_entry("eip155_example", KEYS[0], example, raw))
    doc = {
        "about": "generated by tests/vectors/gen.py with eth-account; do not edit by hand",
        "chain_id": CHAIN_ID,
        "valid": valid,
        "invalid": invalid_vectors(KEYS[1]),
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "txs.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {len(valid)} valid and {len(doc['invalid'])} invalid vectors to {path}")


if __name__ == "__main__":
    main()
