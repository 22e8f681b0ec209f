//! The slot clock: commits open the next height, missed deadlines move the round on, and no
//! clock is read (times are inputs).

use std::time::Duration;

use mempulse_primitives::{Height, ValidatorId};
use mempulse_schedule::{Error, Round, Schedule, SlotClock, SlotConfig, Tag};

use crate::numbered;

const MS: fn(u64) -> Duration = Duration::from_millis;

fn schedule() -> Schedule {
    let mut s =
        Schedule::genesis(Height(1), &[numbered(1, 1), numbered(2, 2), numbered(3, 3)]).unwrap();
    s.add_changes(Height(6), &[numbered(4, 5)]).unwrap();
    s
}

fn clock(at: u64) -> SlotClock {
    SlotClock::new(schedule(), SlotConfig::default(), Height(at), MS(1_000)).unwrap()
}

#[test]
fn commits_follow_the_schedule() {
    let s = schedule();
    let mut c = clock(1);
    let slot = c.slot();
    assert_eq!((slot.height, slot.round, slot.deadline), (Height(1), Round::ZERO, MS(1_500)));
    assert_eq!(slot.proposer, s.proposer(Height(1)).unwrap());
    let mut now = 1_000;
    for h in 1..40u64 {
        now += 37;
        let slot = c.on_commit(Height(h), MS(now)).unwrap();
        assert_eq!(slot.height, Height(h + 1));
        assert_eq!(slot.round, Round::ZERO);
        assert_eq!(slot.proposer, s.proposer(Height(h + 1)).unwrap());
        assert_eq!(c.deadline(), MS(now + 500));
    }
    assert!(c.current_set().unwrap().get(ValidatorId(4)).is_some());
}

#[test]
fn a_missed_deadline_moves_to_the_next_round_once_per_tick() {
    let s = schedule();
    let mut c = clock(3);
    assert_eq!(c.on_tick(MS(1_499)), None);
    let missed = c.on_tick(MS(1_500)).unwrap();
    assert_eq!(missed.height, Height(3));
    assert_eq!(missed.round, Round(0));
    assert_eq!(missed.proposer, s.proposer(Height(3)).unwrap());
    assert_eq!(missed.next.round, Round(1));
    assert_eq!(missed.next.proposer, s.proposer_at_round(Height(3), Round(1)).unwrap());
    assert_eq!(missed.next.deadline, MS(2_000));
    // A caller that slept through the deadlines at 2.0, 2.5, 3.0 and 3.5 s drains them one
    // tick at a time.
    let rounds: Vec<u32> =
        std::iter::from_fn(|| c.on_tick(MS(3_600))).map(|m| m.next.round.get()).collect();
    assert_eq!(rounds, [2, 3, 4, 5]);
    assert_eq!(c.slot().proposer, s.proposer_at_round(Height(3), Round(5)).unwrap());
    assert_eq!(c.deadline(), MS(4_000));
    // A commit resets the round and the deadline.
    let slot = c.on_commit(Height(3), MS(3_700)).unwrap();
    assert_eq!((slot.height, slot.round, slot.deadline), (Height(4), Round::ZERO, MS(4_200)));
    assert_eq!(slot.proposer, s.proposer(Height(4)).unwrap());
}

#[test]
fn late_and_stale_commits() {
    let s = schedule();
    let mut c = clock(2);
    // The node learns of commits 2..=9 at once: it skips to 10.
    let slot = c.on_commit(Height(9), MS(2_000)).unwrap();
    assert_eq!((slot.height, slot.proposer), (Height(10), s.proposer(Height(10)).unwrap()));
    let before = c.slot();
    assert_eq!(
        c.on_commit(Height(8), MS(2_100)),
        Err(Error::StaleCommit { committed: Height(8), current: Height(10) })
    );
    assert_eq!(c.slot(), before);
    assert_eq!(
        SlotClock::new(schedule(), SlotConfig::default(), Height(0), MS(0)).unwrap_err(),
        Error::HeightBeforeBase { height: Height(0), base: Height(1) }
    );
    let zero = SlotConfig { slot_duration: Duration::ZERO };
    assert_eq!(
        SlotClock::new(schedule(), zero, Height(1), MS(0)).unwrap_err(),
        Error::ZeroSlotDuration
    );
}

#[test]
fn tags_follow_the_round() {
    let s = schedule();
    let mut c = clock(5);
    let at5 = s.tags_at(Height(5)).unwrap();
    assert_eq!(c.tags(), at5);
    c.on_tick(MS(1_500)).unwrap();
    let tags = c.tags();
    let round1 = s.proposer_at_round(Height(5), Round(1)).unwrap();
    assert_eq!(tags.proposer, round1);
    assert!(tags.tags_of(round1).contains(Tag::Proposer));
    assert!(tags.tags_of(s.proposer(Height(6)).unwrap()).contains(Tag::ProposerNext));
    assert!(tags.tags_of(s.proposer(Height(7)).unwrap()).contains(Tag::ProposerSoon));
    // Validator 4 joins at height 6: tagged at height 5 only if it proposes 6 or 7.
    let joins_early = [6, 7].iter().any(|h| s.proposer(Height(*h)).unwrap() == ValidatorId(4));
    assert_eq!(tags.tags.contains_key(&ValidatorId(4)), joins_early);
}

#[test]
fn a_custom_slot_duration_sets_every_deadline() {
    let config = SlotConfig { slot_duration: MS(120) };
    let mut c = SlotClock::new(schedule(), config, Height(1), MS(0)).unwrap();
    assert_eq!(c.slot_duration(), MS(120));
    assert_eq!(c.deadline(), MS(120));
    c.on_tick(MS(500)).unwrap();
    assert_eq!(c.deadline(), MS(240));
    c.on_commit(Height(1), MS(1_000)).unwrap();
    assert_eq!(c.deadline(), MS(1_120));
}
