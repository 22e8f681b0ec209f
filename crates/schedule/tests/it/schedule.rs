//! The schedule API: heights, iterators, change sets, moving the base, errors.

use mempulse_primitives::{Height, ValidatorId};
use mempulse_schedule::{Error, HeightProposer, Round, Schedule, Tag, Tags, ValidatorSet};

use crate::numbered;

#[test]
fn heights_map_like_cometbft_state() {
    // V(initial) = NewValidatorSet; V(h + 1) = V(h) (+ changes) incremented once.
    let genesis = [numbered(1, 1), numbered(2, 3)];
    let mut schedule = Schedule::genesis(Height(7), &genesis).unwrap();
    schedule.add_changes(Height(9), &[numbered(3, 4)]).unwrap();
    let mut set = ValidatorSet::new(&genesis).unwrap();
    assert_eq!(schedule.set_at(Height(7)).unwrap(), set);
    set.increment_proposer_priority(std::num::NonZeroU32::MIN);
    assert_eq!(schedule.set_at(Height(8)).unwrap(), set);
    set.update_with_change_set(&[numbered(3, 4)]).unwrap();
    set.increment_proposer_priority(std::num::NonZeroU32::MIN);
    assert_eq!(schedule.set_at(Height(9)).unwrap(), set);
    assert_eq!(Schedule::effective_height(Height(7)), Some(Height(9)));
    assert_eq!(Schedule::effective_height(Height(u64::MAX - 1)), None);
    assert_eq!(schedule.change_heights().collect::<Vec<_>>(), [Height(9)]);
}

#[test]
fn iterators_and_point_queries_agree() {
    let mut schedule =
        Schedule::genesis(Height(1), &[numbered(1, 5), numbered(2, 3), numbered(3, 2)]).unwrap();
    schedule.add_changes(Height(20), &[numbered(2, 0), numbered(4, 7)]).unwrap();
    let all: Vec<HeightProposer> = schedule.proposers(Height(1)).unwrap().take(50).collect();
    for p in &all {
        assert_eq!(schedule.proposer(p.height).unwrap(), p.proposer);
        assert_eq!(schedule.proposer_at_round(p.height, Round::ZERO).unwrap(), p.proposer);
    }
    let from30: Vec<HeightProposer> = schedule.proposers(Height(30)).unwrap().take(20).collect();
    assert_eq!(from30, all[29..49]);
    assert!(all[19..].iter().all(|p| p.proposer != ValidatorId(2)));
    assert!(all[19..].iter().any(|p| p.proposer == ValidatorId(4)));
}

#[test]
fn tags_mark_three_heights() {
    let schedule = Schedule::genesis(
        Height(1),
        &[numbered(1, 1), numbered(2, 1), numbered(3, 1), numbered(4, 1)],
    )
    .unwrap();
    // Equal powers go in address order: 1, 2, 3, 4, 1, ...
    let t = schedule.tags_at(Height(1)).unwrap();
    let text: Vec<(u64, String)> =
        t.tags.iter().map(|(id, tags)| (id.get(), tags.to_string())).collect();
    assert_eq!(
        text,
        [
            (1, "proposer".to_owned()),
            (2, "proposer-next".to_owned()),
            (3, "proposer-soon".to_owned()),
            (4, String::new()),
        ]
    );
    // With two validators one carries two tags.
    let two = Schedule::genesis(Height(1), &[numbered(1, 1), numbered(2, 1)]).unwrap();
    let t = two.tags_at(Height(1)).unwrap();
    assert_eq!(t.tags_of(ValidatorId(1)), Tags::one(Tag::Proposer).with(Tag::ProposerSoon));
    assert_eq!(t.tags_of(ValidatorId(2)), Tags::one(Tag::ProposerNext));
    // The iterator and the point query agree.
    let iter: Vec<_> = schedule.tags(Height(5)).unwrap().take(10).collect();
    for t in &iter {
        assert_eq!(&schedule.tags_at(t.height).unwrap(), t);
    }
}

#[test]
fn the_end_of_the_height_range_is_handled() {
    let base = Height(u64::MAX - 1);
    let schedule = Schedule::genesis(base, &[numbered(1, 1), numbered(2, 2)]).unwrap();
    let heights: Vec<Height> = schedule.proposers(base).unwrap().map(|p| p.height).collect();
    assert_eq!(heights, [base, Height(u64::MAX)]);
    let tags: Vec<_> = schedule.tags(base).unwrap().collect();
    assert_eq!(tags.len(), 2);
    assert_eq!(tags[1].tags.values().filter(|t| !t.is_empty()).count(), 1);
}

#[test]
fn errors_are_typed_and_leave_the_schedule_unchanged() {
    let mut schedule = Schedule::genesis(Height(5), &[numbered(1, 1), numbered(2, 2)]).unwrap();
    assert_eq!(
        schedule.proposer(Height(4)),
        Err(Error::HeightBeforeBase { height: Height(4), base: Height(5) })
    );
    assert!(schedule.proposers(Height(0)).is_err());
    assert!(schedule.tags(Height(1)).is_err());
    assert_eq!(
        schedule.add_changes(Height(5), &[numbered(3, 1)]),
        Err(Error::ChangeHeightNotAscending { height: Height(5), after: Height(5) })
    );
    schedule.add_changes(Height(9), &[numbered(3, 1)]).unwrap();
    let before = schedule.clone();
    assert_eq!(
        schedule.add_changes(Height(8), &[numbered(4, 1)]),
        Err(Error::ChangeHeightNotAscending { height: Height(8), after: Height(9) })
    );
    // Removing a validator that is only added later, at height 12, is validated against the
    // membership at that height.
    assert_eq!(
        schedule.add_changes(Height(12), &[numbered(4, 0)]).unwrap_err(),
        Error::UnknownValidator { address: numbered(4, 0).address }
    );
    // The same id under another address.
    let mut clash = numbered(5, 1);
    clash.id = ValidatorId(3);
    assert_eq!(
        schedule.add_changes(Height(12), &[clash]),
        Err(Error::DuplicateId { id: ValidatorId(3) })
    );
    let mut moved = numbered(3, 4);
    moved.id = ValidatorId(7);
    assert_eq!(
        schedule.add_changes(Height(12), &[moved]),
        Err(Error::IdMismatch {
            address: numbered(3, 1).address,
            expected: ValidatorId(3),
            got: ValidatorId(7)
        })
    );
    assert_eq!(schedule, before);
    schedule.add_changes(Height(12), &[]).unwrap();
    assert_eq!(schedule, before, "an empty change set changes nothing");
}

#[test]
fn member_nodes_are_unique_across_validators() {
    let a = numbered(1, 1).with_nodes(vec!["1@127.0.0.1:7400".parse().unwrap()]);
    let b = numbered(2, 1).with_nodes(vec!["127.0.0.1:7400".parse().unwrap()]);
    assert!(matches!(
        ValidatorSet::new(&[a.clone(), b]),
        Err(Error::DuplicateNode { first: ValidatorId(1), second: ValidatorId(2), .. })
    ));
    // Node ids number the members of one cluster: unique within a validator only.
    let c = numbered(3, 1)
        .with_nodes(vec!["1@10.0.0.1:1".parse().unwrap(), "1@10.0.0.1:2".parse().unwrap()]);
    assert!(matches!(
        ValidatorSet::new(&[a.clone(), c]),
        Err(Error::DuplicateNode { first: ValidatorId(3), second: ValidatorId(3), .. })
    ));
    let d = numbered(4, 1).with_nodes(vec!["1@10.0.0.1:1".parse().unwrap()]);
    let set = ValidatorSet::new(&[a, d]).unwrap();
    let nodes: Vec<String> = set.nodes().map(|(id, n)| format!("{id}:{n}")).collect();
    assert_eq!(nodes, ["1:1@127.0.0.1:7400", "4:1@10.0.0.1:1"]);
}

#[test]
fn stream_listeners_are_unique_endpoints_too() {
    let addr = |text: &str| text.parse::<mempulse_schedule::NodeAddr>().unwrap();
    let a = numbered(1, 1)
        .with_nodes(vec![addr("1@127.0.0.1:7400")])
        .with_streams(vec![addr("1@127.0.0.1:7500")]);
    // A stream listener on another validator's Raft endpoint is refused.
    let b = numbered(2, 1).with_streams(vec![addr("4@127.0.0.1:7400")]);
    assert!(matches!(
        ValidatorSet::new(&[a.clone(), b]),
        Err(Error::DuplicateNode { first: ValidatorId(1), second: ValidatorId(2), .. })
    ));
    // One node id twice among one validator's streams is refused; the same id in `nodes`
    // and `streams` names the same member and is expected.
    let c = numbered(3, 1).with_streams(vec![addr("7@10.0.0.1:1"), addr("7@10.0.0.1:2")]);
    assert!(matches!(
        ValidatorSet::new(&[a.clone(), c]),
        Err(Error::DuplicateNode { first: ValidatorId(3), second: ValidatorId(3), .. })
    ));
    let d = numbered(4, 1).with_streams(vec![addr("4@127.0.0.1:7504")]);
    let set = ValidatorSet::new(&[a, d]).unwrap();
    let streams: Vec<String> = set.streams().map(|(id, n)| format!("{id}:{n}")).collect();
    assert_eq!(streams, ["1:1@127.0.0.1:7500", "4:4@127.0.0.1:7504"]);
}

#[test]
fn a_restored_set_continues_where_it_left_off() {
    let genesis = [numbered(1, 3), numbered(2, 5), numbered(3, 7)];
    let mut set = ValidatorSet::new(&genesis).unwrap();
    for _ in 0..11 {
        set.increment_proposer_priority(std::num::NonZeroU32::MIN);
    }
    let saved: Vec<_> = set.iter().map(|(v, p)| (v.clone(), p)).collect();
    let restored = ValidatorSet::with_priorities(saved).unwrap();
    let a = Schedule::new(Height(12), set.clone());
    let b = Schedule::new(Height(12), restored);
    let next = |s: &Schedule| s.proposers(Height(13)).unwrap().take(30).collect::<Vec<_>>();
    assert_eq!(next(&a), next(&b));
    // CometBFT's `findPreviousProposer`: the lowest priority is the one just elected.
    assert_eq!(b.base_set().proposer(), set.proposer());
}
