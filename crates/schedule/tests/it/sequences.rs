//! The expected sequences of `tests/data/proposer_sequences.txt` (written down from CometBFT's
//! tests and specification; the file cites each source) against `Schedule` and `ValidatorSet`.

use std::{collections::BTreeMap, num::NonZeroU32};

use mempulse_primitives::{Address, Height, ValidatorId};
use mempulse_schedule::{Schedule, Validator, ValidatorSet};

use crate::named_address;

const DATA: &str = include_str!("../data/proposer_sequences.txt");

#[derive(Debug, Default)]
struct Case {
    name: String,
    /// (name, validator) in declaration order.
    validators: Vec<(String, Validator)>,
    /// Expected proposer names, one per election.
    proposers: Vec<String>,
    /// Expected priorities after the election of the same index, when given.
    priorities: BTreeMap<usize, Vec<i64>>,
    /// (first election, count, expected proposals per name).
    counts: Vec<(usize, usize, BTreeMap<String, usize>)>,
}

fn parse_cases() -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for (n, line) in DATA.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let keyword = words.next().unwrap();
        let words: Vec<&str> = words.collect();
        if keyword == "case" {
            cases.push(Case { name: words[0].to_owned(), ..Case::default() });
            continue;
        }
        let case = cases.last_mut().unwrap_or_else(|| panic!("line {}: no case", n + 1));
        match keyword {
            "validator" => {
                let (name, power) = (words[0], words[1].parse().unwrap());
                let address = match words.get(2) {
                    Some(hex) => Address::from_hex(hex).unwrap(),
                    None => named_address(name),
                };
                let id = ValidatorId(u64::try_from(case.validators.len()).unwrap() + 1);
                case.validators.push((name.to_owned(), Validator::new(id, address, power)));
            }
            "proposers" => case.proposers.extend(words.iter().map(|w| (*w).to_owned())),
            "run" => {
                case.proposers.push(words[0].to_owned());
                let prios = words[1..].iter().map(|w| w.parse().unwrap()).collect();
                case.priorities.insert(case.proposers.len() - 1, prios);
            }
            "cycle" => {
                let count: usize = words[0].parse().unwrap();
                let cycle = &words[1..];
                case.proposers.extend((0..count).map(|i| cycle[i % cycle.len()].to_owned()));
            }
            "counts" => {
                let count: usize = words[0].parse().unwrap();
                let want = words[1..]
                    .iter()
                    .map(|w| {
                        let (name, c) = w.split_once('=').unwrap();
                        (name.to_owned(), c.parse().unwrap())
                    })
                    .collect();
                case.counts.push((case.proposers.len(), count, want));
            }
            other => panic!("line {}: unknown keyword {other}", n + 1),
        }
    }
    cases
}

fn name_of(case: &Case, id: ValidatorId) -> &str {
    &case.validators.iter().find(|(_, v)| v.id == id).unwrap().0
}

fn elections(case: &Case) -> usize {
    let counted = case.counts.iter().map(|(from, n, _)| from + n).max().unwrap_or(0);
    case.proposers.len().max(counted)
}

#[test]
fn published_sequences_hold_for_the_schedule() {
    let cases = parse_cases();
    assert_eq!(cases.len(), 6, "every case in the data file parses");
    for case in &cases {
        let validators: Vec<Validator> = case.validators.iter().map(|(_, v)| v.clone()).collect();
        let schedule = Schedule::genesis(Height(1), &validators).unwrap();
        let got: Vec<&str> = schedule
            .proposers(Height(1))
            .unwrap()
            .take(elections(case))
            .map(|p| name_of(case, p.proposer))
            .collect();
        assert_eq!(got[..case.proposers.len()], case.proposers, "case {}", case.name);
        for (from, n, want) in &case.counts {
            let mut counted: BTreeMap<String, usize> = BTreeMap::new();
            for name in &got[*from..from + n] {
                *counted.entry((*name).to_owned()).or_default() += 1;
            }
            assert_eq!(&counted, want, "case {}", case.name);
        }
    }
}

#[test]
fn published_priorities_hold_for_the_validator_set() {
    for case in parse_cases().iter().filter(|c| !c.priorities.is_empty()) {
        let validators: Vec<Validator> = case.validators.iter().map(|(_, v)| v.clone()).collect();
        let mut set = ValidatorSet::new(&validators).unwrap();
        for (i, want_proposer) in case.proposers.iter().enumerate() {
            if i > 0 {
                set.increment_proposer_priority(NonZeroU32::MIN);
            }
            assert_eq!(name_of(case, set.proposer()), want_proposer, "case {} run {i}", case.name);
            if let Some(want) = case.priorities.get(&i) {
                let got: Vec<i64> =
                    validators.iter().map(|v| set.priority(v.id).unwrap()).collect();
                assert_eq!(&got, want, "case {} run {}", case.name, i + 1);
            }
        }
    }
}
