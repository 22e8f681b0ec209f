"""Reads `cargo metadata --no-deps` on stdin and checks internal edges against the layer table."""
import json
import sys

# Layer of each workspace package (style.md B2). A crate may depend only on strictly lower layers.
LAYERS = {
    "mempulse-primitives": 0,
    "mempulse-wal": 1,
    "mempulse-mempool": 1,
    "mempulse-schedule": 1,
    "mempulse-cluster": 2,
    "mempulse-replay": 2,
    "mempulse-net": 2,
    "mempulse-sink-clickhouse": 2,
    "mempulse-api": 3,
    "mempulse-node": 4,
    "mempulse-bench": 5,  # never a dependency of the product
}
# Edges inside one layer that the design allows.
ALLOWED_SAME_LAYER = set()

meta = json.load(sys.stdin)
names = {p["name"] for p in meta["packages"]}
bad = []
for pkg in meta["packages"]:
    src = pkg["name"]
    if src not in LAYERS:
        bad.append(f"{src}: not in the layer table (ci/layers.py)")
        continue
    for dep in pkg["dependencies"]:
        dst = dep["name"]
        if dst not in names or dep.get("kind") == "dev":
            continue
        if dst == "mempulse-bench":
            bad.append(f"{src} -> {dst}: the bench package is never a dependency")
        elif LAYERS[dst] >= LAYERS[src] and (src, dst) not in ALLOWED_SAME_LAYER:
            bad.append(f"{src} (L{LAYERS[src]}) -> {dst} (L{LAYERS[dst]}): must depend downwards")
if bad:
    print("layer check failed:\n  " + "\n  ".join(bad), file=sys.stderr)
    sys.exit(1)
