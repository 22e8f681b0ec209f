#!/usr/bin/env python3
"""Writes tests/vectors/ethereum_tests.json: cases of Ethereum's published transaction fixtures
(ethereum/tests `TransactionTests/**`), each with the raw bytes and the expected result at the
newest fork the fixture was filled for.

Usage (from crates/net, Python 3 standard library only):

    git clone https://github.com/ethereum/tests /path/to/ethereum-tests
    python3 tests/vectors/gen_ethereum_tests.py /path/to/ethereum-tests [--commit SHA]

The commit recorded in the output is `git -C PATH rev-parse HEAD`, or `--commit` when PATH is a
plain copy of the tree (not a git checkout). The output is deterministic: files and test names are
sorted and every case is one line, so a refill of the fixtures shows up as a readable diff.

Selection: every case of every group below, except the files in EXCLUDED (each with its reason,
also written to the output). A fixture's `result` maps fork names to either
`{hash, sender, intrinsicGas}` (valid) or `{exception, intrinsicGas}` (invalid); the newest fork
present (FORK_ORDER) is the one recorded, with its name.
"""
import argparse
import json
import os
import subprocess
import sys

FIXTURE_REPO = "https://github.com/ethereum/tests"
FIXTURE_DIR = "TransactionTests"

# Fork names as the fixtures spell them, oldest first.
FORK_ORDER = [
    "Frontier", "Homestead", "EIP150", "EIP158", "Byzantium", "Constantinople",
    "ConstantinopleFix", "Istanbul", "Berlin", "London", "Paris", "Shanghai", "Cancun",
    "Prague", "Osaka",
]

# Every test group of the fixture tree. A group missing from a checkout is reported, not fatal:
# later fixture releases moved some groups into execution-spec-tests.
GROUPS = [
    "ttAddress", "ttData", "ttEIP1559", "ttEIP2028", "ttEIP2930", "ttEIP3860", "ttGasLimit",
    "ttGasPrice", "ttNonce", "ttRSValue", "ttSignature", "ttVValue", "ttValue", "ttWrongRLP",
]

# Files left out, relative to TransactionTests/, with the reason.
EXCLUDED = {
    "ttData/String10MbData.json":
        "10 MB of calldata: too large to ship; the oversize path is covered by txs.json",
    "ttData/String10MbDataNotEnoughGAS.json":
        "10 MB of calldata: too large to ship; the oversize path is covered by txs.json",
}

ABOUT = (
    "Cases of Ethereum's published transaction fixtures (ethereum/tests, TransactionTests/**, "
    "commit in each case): raw txbytes and the expected result at the newest fork the fixture "
    "was filled for ('fork'): either hash, sender and intrinsic_gas, or the fixture's exception "
    "(with intrinsic_gas when the filler computed it). "
    "Written by crates/net/tests/vectors/gen_ethereum_tests.py; regenerate with "
    "'git clone https://github.com/ethereum/tests T && python3 "
    "tests/vectors/gen_ethereum_tests.py T' from crates/net (add '--commit SHA' when T is not a "
    "git checkout). Checked by crates/net/tests/it/ethereum_tests.rs; the exception mapping and "
    "the documented differences are in docs/design/tx-decoding.md."
)


def newest_fork(result, where):
    known = [fork for fork in result if fork in FORK_ORDER]
    unknown = sorted(set(result) - set(known))
    if unknown:
        sys.exit(f"{where}: unknown fork names {unknown}; extend FORK_ORDER")
    if not known:
        sys.exit(f"{where}: no fork results")
    return max(known, key=FORK_ORDER.index)


def case_of(rel_path, name, test, commit):
    where = f"{rel_path}:{name}"
    fork = newest_fork(test["result"], where)
    result = test["result"][fork]
    case = {
        "file": f"{FIXTURE_DIR}/{rel_path}",
        "name": name,
        "commit": commit,
        "fork": fork,
        "txbytes": test["txbytes"].lower(),
    }
    if "exception" in result:
        case["exception"] = result["exception"]
    else:
        for field in ("hash", "sender"):
            if field not in result:
                sys.exit(f"{where}: valid result without {field}")
            case[field] = result[field].lower()
    # An invalid result carries "0x00" when the filler stopped before computing intrinsic gas;
    # only a computed value is worth checking.
    intrinsic = result.get("intrinsicGas")
    if intrinsic is not None and int(intrinsic, 16) != 0:
        case["intrinsic_gas"] = intrinsic
    return case


def checkout_commit(root, override):
    if override:
        return override
    try:
        out = subprocess.run(
            ["git", "-C", root, "rev-parse", "HEAD"],
            check=True, capture_output=True, text=True,
        )
    except (OSError, subprocess.CalledProcessError):
        sys.exit(f"{root} is not a git checkout; pass --commit SHA")
    return out.stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkout", help="path of an ethereum/tests checkout (or copy of its tree)")
    parser.add_argument("--commit", help="fixture commit, when the path is not a git checkout")
    parser.add_argument(
        "--out",
        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "ethereum_tests.json"),
    )
    args = parser.parse_args()
    commit = checkout_commit(args.checkout, args.commit)
    base = os.path.join(args.checkout, FIXTURE_DIR)
    cases, missing_groups = [], []
    for group in GROUPS:
        group_dir = os.path.join(base, group)
        if not os.path.isdir(group_dir):
            missing_groups.append(group)
            continue
        for file_name in sorted(os.listdir(group_dir)):
            rel_path = f"{group}/{file_name}"
            if not file_name.endswith(".json") or rel_path in EXCLUDED:
                continue
            with open(os.path.join(group_dir, file_name), encoding="utf-8") as handle:
                tests = json.load(handle)
            for name in sorted(tests):
                cases.append(case_of(rel_path, name, tests[name], commit))
    if missing_groups:
        print(f"groups absent from this checkout: {missing_groups}", file=sys.stderr)
    header = {
        "about": ABOUT,
        "fixture_repo": FIXTURE_REPO,
        "fixture_commit": commit,
        "fork_order": FORK_ORDER,
        "excluded": [
            {"file": f"{FIXTURE_DIR}/{path}", "reason": reason}
            for path, reason in sorted(EXCLUDED.items())
        ],
    }
    # One case per line: compact, and a refill diffs line by line.
    lines = json.dumps(header, indent=1)[:-2] + ',\n "cases": [\n'
    lines += ",\n".join("  " + json.dumps(case, separators=(",", ":")) for case in cases)
    lines += "\n ]\n}\n"
    with open(args.out, "w", encoding="utf-8") as handle:
        handle.write(lines)
    valid = sum(1 for case in cases if "exception" not in case)
    print(f"{len(cases)} cases ({valid} valid, {len(cases) - valid} invalid) -> {args.out}")


if __name__ == "__main__":
    main()
