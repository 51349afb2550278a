//! Majority math over at most [`MAX_PEERS`] voters, without allocation.

use super::types::{Index, MAX_PEERS};

/// Votes needed for a majority of `voters`.
pub(crate) fn majority(voters: usize) -> usize {
    debug_assert!(voters >= 1);
    voters / 2 + 1
}

/// The highest index held by a majority, given each voter's durable match index
/// (self included). Sorts `matches` in place (descending).
pub(crate) fn quorum_index(matches: &mut [Index]) -> Index {
    debug_assert!(!matches.is_empty() && matches.len() <= MAX_PEERS);
    matches.sort_unstable_by(|a, b| b.cmp(a));
    matches[majority(matches.len()) - 1]
}

/// The outcome of an election (or pre-election) so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VoteResult {
    Pending,
    Won,
    Lost,
}

/// Count `votes` (one slot per voter: granted, refused, or not answered yet).
pub(crate) fn tally(votes: &[Option<bool>]) -> VoteResult {
    let need = majority(votes.len());
    let granted = votes.iter().filter(|v| **v == Some(true)).count();
    let refused = votes.iter().filter(|v| **v == Some(false)).count();
    if granted >= need {
        VoteResult::Won
    } else if refused >= need {
        // Even every pending vote could not make a majority any more.
        VoteResult::Lost
    } else {
        VoteResult::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majorities() {
        assert_eq!(
            (1..=7).map(majority).collect::<Vec<_>>(),
            [1, 2, 2, 3, 3, 4, 4]
        );
    }

    #[test]
    fn quorum_index_picks_the_majority_position() {
        assert_eq!(quorum_index(&mut [5]), 5);
        assert_eq!(quorum_index(&mut [5, 3]), 3);
        assert_eq!(quorum_index(&mut [3, 9, 5]), 5);
        assert_eq!(quorum_index(&mut [1, 9, 9, 2]), 2);
        assert_eq!(quorum_index(&mut [4, 0, 8, 6, 2]), 4);
        assert_eq!(quorum_index(&mut [0, 0, 7, 7, 7, 7, 1]), 7);
        assert_eq!(quorum_index(&mut [0, 0, 7, 7, 7, 1, 1]), 1);
    }

    #[test]
    fn tally_counts_grants_and_refusals() {
        use VoteResult::*;
        assert_eq!(tally(&[Some(true)]), Won);
        assert_eq!(tally(&[Some(true), None, None]), Pending);
        assert_eq!(tally(&[Some(true), Some(true), None]), Won);
        assert_eq!(tally(&[Some(true), Some(false), None]), Pending);
        assert_eq!(tally(&[Some(true), Some(false), Some(false)]), Lost);
        assert_eq!(tally(&[Some(true), Some(false), None, None]), Pending);
        assert_eq!(
            tally(&[Some(true), Some(false), Some(false), None]),
            Pending
        );
        assert_eq!(
            tally(&[Some(true), Some(false), Some(false), Some(false)]),
            Lost
        );
        assert_eq!(
            tally(&[Some(true), Some(true), Some(false), Some(false)]),
            Pending
        );
    }

    proptest::proptest! {
        /// The quorum index is the largest index that at least a majority holds.
        #[test]
        fn quorum_index_is_the_largest_majority_index(
            matches in proptest::collection::vec(0u64..20, 1..=MAX_PEERS)
        ) {
            let need = majority(matches.len());
            let holders = |i: Index| matches.iter().filter(|&&m| m >= i).count();
            let q = quorum_index(&mut matches.clone());
            proptest::prop_assert!(holders(q) >= need);
            proptest::prop_assert!(holders(q + 1) < need);
        }
    }
}
