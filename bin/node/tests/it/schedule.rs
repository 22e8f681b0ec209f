//! `mempulse schedule` on a validators file: JSON lines, the table, and refused input.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_mempulse");

/// Three validators with powers 1, 3, 2; validator 4 joins at height 6 and validator 1 leaves
/// at height 8.
const FILE: &str = r#"
initial-height = 1

[[validators]]
id = 1
address = "0x0000000000000000000000000000000000000001"
power = 1
nodes = ["1@127.0.0.1:7400"]

[[validators]]
id = 2
address = "0x0000000000000000000000000000000000000002"
power = 3
nodes = ["1@127.0.0.1:7500", "2@127.0.0.1:7501"]

[[validators]]
id = 3
address = "0x0000000000000000000000000000000000000003"
power = 2

[[changes]]
height = 6
id = 4
address = "0x0000000000000000000000000000000000000004"
power = 2

[[changes]]
height = 8
id = 1
address = "0x0000000000000000000000000000000000000001"
power = 0
"#;

fn run(args: &[&str]) -> (i32, String, String) {
    let out =
        Command::new(BIN).arg("schedule").args(args).env("RUST_LOG", "warn").output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn write(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("validators.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn json_lines_name_the_proposer_and_every_tag() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, FILE);
    let (code, out, err) =
        run(&["--validators", &file, "--from-height", "3", "--count", "8", "--json"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> =
        out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 8);
    let proposers: Vec<u64> = lines.iter().map(|l| l["proposer"].as_u64().unwrap()).collect();
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["height"].as_u64(), Some(3 + i as u64));
        let tags = line["tags"].as_object().unwrap();
        // Keys are validator ids in ascending numeric order; each names its tags.
        let keys: Vec<u64> = tags.keys().map(|k| k.parse().unwrap()).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        let has =
            |id: u64, tag: &str| tags[&id.to_string()].as_array().unwrap().iter().any(|t| t == tag);
        assert!(has(proposers[i], "proposer"));
        if let Some(next) = proposers.get(i + 1) {
            assert!(has(*next, "proposer-next"));
        }
        if let Some(soon) = proposers.get(i + 2) {
            assert!(has(*soon, "proposer-soon"));
        }
        let tagged: usize = tags.values().map(|t| t.as_array().unwrap().len()).sum();
        assert!(tagged <= 3);
    }
    // Validator 4 proposes only from height 6; validator 1 never from height 8 on.
    assert!(lines.iter().all(|l| l["height"].as_u64() >= Some(6) || l["proposer"] != 4));
    assert!(lines.iter().all(|l| l["height"].as_u64() < Some(8) || l["proposer"] != 1));
    assert!(lines.iter().any(|l| l["proposer"] == 4));
    // Height 8 lists validators 2, 3 and 4 only.
    let at8 = lines.iter().find(|l| l["height"] == 8).unwrap();
    assert_eq!(at8["tags"].as_object().unwrap().keys().collect::<Vec<_>>(), ["2", "3", "4"]);
    // The same question gives the same answer, and starting later gives the tail.
    let (_, again, _) =
        run(&["--validators", &file, "--from-height", "3", "--count", "8", "--json"]);
    assert_eq!(again, out);
    let (_, tail, _) =
        run(&["--validators", &file, "--from-height", "5", "--count", "6", "--json"]);
    assert_eq!(tail.lines().collect::<Vec<_>>(), out.lines().skip(2).collect::<Vec<_>>());
}

#[test]
fn the_table_is_aligned() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, FILE);
    let (code, out, err) = run(&["--validators", &file, "--count", "9"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 10, "{out}");
    assert!(lines[0].starts_with("height  proposer  v1"), "{out}");
    let col = lines[0].find("v3").unwrap();
    for line in &lines[1..] {
        let cell = line.get(col..).unwrap_or("");
        assert!(cell.is_empty() || !cell.starts_with(' '), "column v3 misaligned:\n{out}");
    }
    assert!(lines[1].trim_start().starts_with("1 "), "{out}");
    assert!(out.contains("proposer-next") && out.contains("proposer-soon"));
}

#[test]
fn bad_input_exits_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.toml");
    let (code, out, err) = run(&["--validators", missing.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("reading validators file") && err.contains("absent.toml"), "{err}");

    let dup = FILE.replace("id = 3", "id = 2");
    let (code, _, err) = run(&["--validators", &write(&dir, &dup)]);
    assert_eq!(code, 2);
    assert!(err.contains("validator id 2 appears twice"), "{err}");

    let (code, _, err) = run(&["--validators", &write(&dir, "validators = 7\n")]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid validators file"), "{err}");

    let file = write(&dir, FILE);
    let (code, out, err) = run(&["--validators", &file, "--from-height", "0"]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("below the schedule's base height 1"), "{err}");

    let (code, _, err) = run(&["--validators", &file, "--count", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("--count"), "{err}");
}

#[test]
fn the_last_heights_are_computed_at_once_by_the_schedules_period() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, FILE);
    let started = std::time::Instant::now();
    let (code, out, err) = run(&[
        "--validators",
        &path,
        "--from-height",
        "18446744073709551615",
        "--count",
        "3",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "{:?}", started.elapsed());
    let lines: Vec<serde_json::Value> =
        out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "only one height is left: {out}");
    assert_eq!(lines[0]["height"], 18_446_744_073_709_551_615_u64);
}
