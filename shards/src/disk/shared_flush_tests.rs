//! The round logic of the shared flush: who is covered by which flush.

use super::*;

fn io_error(what: &str) -> DiskError {
    DiskError::Io {
        message: what.to_owned(),
    }
}

#[test]
fn one_round_covers_everyone_who_joined_before_it_started() {
    let mut r: Rounds<&str> = Rounds::default();
    let a = r.join("a").expect("no failure yet");
    let b = r.join("b").expect("no failure yet");
    let c = r.join("c").expect("no failure yet");
    assert_eq!((a, b, c), (1, 1, 1));
    assert!(r.outcome(a).is_none());
    // The first joiner's file is synced.
    assert_eq!(r.start(), Some((1, "a")));
    assert!(r.start().is_none(), "one round at a time");
    assert!(
        r.outcome(b).is_none(),
        "not covered before the flush completes"
    );
    r.finish(1, Ok(()));
    for t in [a, b, c] {
        assert_eq!(r.outcome(t), Some(Ok(())));
    }
    let s = r.stats();
    assert_eq!((s.rounds, s.joins, s.single_joiner_rounds), (1, 3, 0));
    assert!(r.start().is_none(), "nothing left to flush");
}

#[test]
fn a_joiner_during_a_flush_waits_for_the_next_one() {
    let mut r: Rounds<&str> = Rounds::default();
    let a = r.join("a").expect("no failure");
    assert_eq!(r.start(), Some((1, "a")));
    // Joined while round 1 is in flight: its writes may have completed after that
    // flush was issued.
    let b = r.join("b").expect("no failure");
    let c = r.join("c").expect("no failure");
    assert_eq!((b, c), (2, 2));
    assert!(r.start().is_none(), "round 2 waits for round 1");
    r.finish(1, Ok(()));
    assert_eq!(r.outcome(a), Some(Ok(())));
    assert_eq!(r.outcome(b), None, "round 1 does not cover a later joiner");
    assert_eq!(r.start(), Some((2, "b")));
    let d = r.join("d").expect("no failure");
    assert_eq!(d, 3);
    r.finish(2, Ok(()));
    assert_eq!(r.outcome(b), Some(Ok(())));
    assert_eq!(r.outcome(c), Some(Ok(())));
    assert_eq!(r.outcome(d), None);
    assert_eq!(r.start(), Some((3, "d")));
    r.finish(3, Ok(()));
    assert_eq!(r.outcome(d), Some(Ok(())));
    let s = r.stats();
    assert_eq!((s.rounds, s.joins, s.single_joiner_rounds), (3, 4, 2));
}

#[test]
fn a_failed_flush_fails_every_joiner_and_every_later_one() {
    let mut r: Rounds<&str> = Rounds::default();
    let a = r.join("a").expect("no failure");
    assert_eq!(r.start(), Some((1, "a")));
    r.finish(1, Ok(()));
    let b = r.join("b").expect("no failure");
    let c = r.join("c").expect("no failure");
    assert_eq!(r.start(), Some((2, "b")));
    let d = r.join("d").expect("no failure");
    r.finish(2, Err(io_error("EIO")));
    assert_eq!(r.outcome(a), Some(Ok(())), "a completed round stays good");
    for t in [b, c, d] {
        assert_eq!(r.outcome(t), Some(Err(io_error("EIO"))));
    }
    assert!(r.start().is_none(), "no round after a failure");
    assert_eq!(r.join("e"), Err(io_error("EIO")));
    assert_eq!(r.stats().failures, 1);
}

#[test]
fn an_abandoned_round_is_merged_into_the_next() {
    let mut r: Rounds<&str> = Rounds::default();
    let a = r.join("a").expect("no failure");
    let b = r.join("b").expect("no failure");
    assert_eq!(r.start(), Some((1, "a")));
    let c = r.join("c").expect("no failure");
    // The driver of round 1 goes away mid-flush: its joiners are not covered.
    r.abandon(1, "a");
    assert_eq!(r.outcome(a), None);
    // Round 2 (started after everyone joined) covers all three; its file is the
    // open round's own first joiner's.
    assert_eq!(r.start(), Some((2, "c")));
    r.finish(2, Ok(()));
    for t in [a, b, c] {
        assert_eq!(r.outcome(t), Some(Ok(())));
    }
    // Abandoned with nobody in the open round: the abandoned file is synced next.
    let d = r.join("d").expect("no failure");
    assert_eq!(r.start(), Some((3, "d")));
    r.abandon(3, "d");
    assert_eq!(r.start(), Some((4, "d")));
    r.finish(4, Ok(()));
    assert_eq!(r.outcome(d), Some(Ok(())));
    let s = r.stats();
    assert_eq!((s.rounds, s.abandoned), (4, 2));
}

#[test]
#[should_panic(expected = "only the running round finishes")]
fn finishing_a_round_that_is_not_running_is_a_bug() {
    let mut r: Rounds<&str> = Rounds::default();
    r.join("a").expect("no failure");
    r.finish(1, Ok(()));
}

/// Many joiners, rounds driven in random interleavings: every joiner is covered by
/// exactly the first round that started after it joined.
#[test]
fn random_interleavings_cover_each_joiner_by_the_first_round_after_it() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_pcg::Pcg64::seed_from_u64(0x5eed_f1a5);
    for _ in 0..200 {
        let mut r: Rounds<u32> = Rounds::default();
        // (ticket, rounds started when it joined)
        let mut joined: Vec<(u64, u64)> = Vec::new();
        let mut started = 0u64;
        let mut running: Option<u64> = None;
        for step in 0..100u32 {
            match rng.random_range(0..3) {
                0 => joined.push((r.join(step).expect("no failure"), started)),
                1 => {
                    if let Some((round, _)) = r.start() {
                        assert!(running.is_none());
                        running = Some(round);
                        started += 1;
                    }
                }
                _ => {
                    if let Some(round) = running.take() {
                        r.finish(round, Ok(()));
                    }
                }
            }
            for &(ticket, started_then) in &joined {
                let covered = r.outcome(ticket) == Some(Ok(()));
                // Covered needs a round started after the join that has finished.
                let finished_after_join = r.finished > started_then;
                assert_eq!(covered, finished_after_join, "ticket {ticket}");
            }
        }
    }
}

#[test]
fn the_device_is_idle_for_a_log_only_without_another_joiner_and_without_a_failure() {
    let mut r: Rounds<&str> = Rounds::default();
    assert!(r.idle_but(0));
    r.join("a").expect("no failure yet");
    assert!(!r.idle_but(0), "a round collects a joiner");
    assert!(r.idle_but(1), "the caller's own join is not another log's");
    let (round, _) = r.start().expect("it starts");
    assert!(!r.idle_but(0), "a round is in flight");
    assert!(r.idle_but(1), "with only the caller's join");
    r.join("b").expect("no failure yet");
    assert!(!r.idle_but(1), "another log waits for the next round");
    r.finish(round, Ok(()));
    // The caller (a) is covered and has no join left; b's round is still to come.
    assert!(!r.idle_but(0), "b waits for the next round");
    let (round, _) = r.start().expect("b's round starts");
    assert!(r.idle_but(1));
    r.finish(round, Ok(()));
    assert!(r.idle_but(0));
    // Two logs in one round: several are busy, so no solo write beside them.
    r.join("d").expect("no failure yet");
    r.join("e").expect("no failure yet");
    let (round, _) = r.start().expect("it starts");
    r.finish(round, Ok(()));
    assert!(!r.idle_but(0), "the last round had two joiners");
    r.join("d").expect("no failure yet");
    let (round, _) = r.start().expect("a round of one");
    r.finish(round, Ok(()));
    assert!(r.idle_but(0), "one log busy again");
    r.join("c").expect("no failure yet");
    let (round, _) = r.start().expect("it starts");
    r.finish(round, Err(io_error("flush")));
    assert!(
        !r.idle_but(1),
        "the device's cache state is unknown: a log learns it through its join"
    );
}
