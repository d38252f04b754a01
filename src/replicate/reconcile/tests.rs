//! Reconciliation between two sets of heads in memory: exact differences, bounded
//! messages and their cost, checked against a plain set difference.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

/// A head whose author and id are spread over the key space by `n`.
fn head(n: u64, seq: u64) -> Head {
    let spread = |salt: &[u8]| {
        let mut h = Sha256::new();
        h.update(salt);
        h.update(n.to_le_bytes());
        let bytes: [u8; 32] = h.finalize().into();
        Hex(bytes)
    };
    Head {
        author: spread(b"author"),
        seq,
        id: spread(&seq.to_le_bytes()),
    }
}

fn heads(range: std::ops::Range<u64>) -> Vec<Head> {
    range.map(|n| head(n, 1)).collect()
}

/// What reconciliation must find: their heads that we do not hold as they are, and
/// the authors they lack.
fn expected(ours: &[Head], theirs: &[Head]) -> (BTreeSet<Head>, BTreeSet<AuthorId>) {
    let ours_by: BTreeMap<_, _> = ours.iter().map(|h| (h.author, *h)).collect();
    let theirs_by: BTreeMap<_, _> = theirs.iter().map(|h| (h.author, *h)).collect();
    let differing = theirs
        .iter()
        .filter(|h| ours_by.get(&h.author) != Some(h))
        .copied()
        .collect();
    let lacking = ours
        .iter()
        .filter(|h| !theirs_by.contains_key(&h.author))
        .map(|h| h.author)
        .collect();
    (differing, lacking)
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Head) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head {
    fn cmp(&self, other: &Head) -> std::cmp::Ordering {
        (self.author, self.seq, self.id).cmp(&(other.author, other.seq, other.id))
    }
}

/// A whole reconciliation in memory; also the JSON bytes each way.
fn reconcile(ours: &[Head], theirs: &[Head], limits: Limits) -> (Difference, usize) {
    let mut bytes = 0;
    let mut initiator = Initiator::within(ours.to_vec(), limits);
    let mut query = initiator.first();
    loop {
        bytes += serde_json::to_vec(&query).unwrap().len();
        let reply = respond_within(theirs.to_vec(), &query, &limits).expect("query checks");
        bytes += serde_json::to_vec(&reply).unwrap().len();
        match initiator.take(&reply).expect("answer checks") {
            Some(next) => query = next,
            None => return (initiator.finish(), bytes),
        }
    }
}

fn assert_exact(ours: &[Head], theirs: &[Head], diff: &Difference) {
    let (differing, lacking) = expected(ours, theirs);
    assert!(diff.complete, "cut short after {} rounds", diff.rounds);
    assert_eq!(
        diff.theirs.iter().copied().collect::<BTreeSet<_>>(),
        differing
    );
    assert_eq!(
        diff.they_lack.iter().copied().collect::<BTreeSet<_>>(),
        lacking
    );
    let mut whole = theirs.to_vec();
    whole.sort_unstable_by_key(|h| h.author.0);
    assert_eq!(peer_heads(ours, diff), whole, "the peer's heads rebuilt");
}

#[test]
fn a_bound_is_the_shortest_prefix_between_two_keys() {
    let mut low = [0u8; 32];
    let mut high = [0u8; 32];
    low[..3].copy_from_slice(&[0xab, 0x10, 0xff]);
    high[..3].copy_from_slice(&[0xab, 0x12, 0x00]);
    let b = Bound::between(&low, &high);
    assert!(b.0 > low && b.0 <= high);
    assert_eq!(serde_json::to_string(&b).unwrap(), "\"ab12\"");
    let back: Bound = serde_json::from_str("\"ab12\"").unwrap();
    assert_eq!(back, b);
    for bad in [
        "\"abc\"",
        "\"AB\"",
        "\"zz\"",
        &format!("\"{}\"", "a".repeat(66)),
    ] {
        assert!(serde_json::from_str::<Bound>(bad).is_err(), "{bad} parsed");
    }
}

#[test]
fn a_fingerprint_depends_on_the_set_not_its_order_and_sees_a_changed_seq() {
    let set = heads(0..50);
    let mut shuffled = set.clone();
    shuffled.reverse();
    assert_eq!(fingerprint_of(&set), fingerprint_of(&shuffled));
    let mut bumped = set.clone();
    bumped[7].seq += 1;
    assert_ne!(fingerprint_of(&set), fingerprint_of(&bumped));
    assert_ne!(fingerprint_of(&set), fingerprint_of(&set[1..]));
    let side = Side::new(shuffled);
    assert_eq!(side.fingerprint(0, 50), fingerprint_of(&set));
    assert_eq!(
        side.fingerprint(10, 20),
        fingerprint_of(&side.heads[10..20])
    );
}

#[test]
fn equal_sets_agree_in_one_round_trip() {
    let set = heads(0..1000);
    let (diff, bytes) = reconcile(&set, &set, LIMITS);
    assert_exact(&set, &set, &diff);
    assert_eq!(diff.rounds, 1);
    assert!(bytes < 200, "{bytes} bytes");
}

#[test]
fn empty_sides_reconcile_both_ways() {
    let set = heads(0..5000);
    let (diff, _) = reconcile(&[], &set, LIMITS);
    assert_exact(&[], &set, &diff);
    let (diff, _) = reconcile(&set, &[], LIMITS);
    assert_exact(&set, &[], &diff);
    let (diff, _) = reconcile(&[], &[], LIMITS);
    assert_exact(&[], &[], &diff);
}

/// The figures in docs/SCALING.md: one message more on one side, among 1,000 and
/// among 100,000 authors. Today's heads pages ship about 163 bytes an author.
#[test]
fn one_difference_costs_a_few_kilobytes_whatever_the_number_of_authors() {
    for (authors, most_bytes, most_rounds) in [(1_000u64, 6_000, 3), (100_000, 12_000, 5)] {
        let ours = heads(0..authors);
        let mut theirs = ours.clone();
        theirs[usize::try_from(authors / 2).unwrap()] = head(authors / 2, 2);
        let (diff, bytes) = reconcile(&ours, &theirs, LIMITS);
        assert_exact(&ours, &theirs, &diff);
        eprintln!(
            "{authors} authors, 1 differing: {bytes} bytes of JSON in {} round trips (heads pages: about {} bytes)",
            diff.rounds,
            authors * 163
        );
        assert!(bytes < most_bytes, "{bytes} bytes for {authors} authors");
        assert!(diff.rounds <= most_rounds, "{} rounds", diff.rounds);
        // One author only they hold, and one only we hold.
        let extra = [ours.clone(), vec![head(authors + 1, 1)]].concat();
        let (diff, bytes) = reconcile(&extra, &theirs, LIMITS);
        assert_exact(&extra, &theirs, &diff);
        assert!(bytes < 2 * most_bytes, "{bytes} bytes");
    }
}

#[test]
fn a_large_difference_is_learnt_within_the_limits_of_each_message() {
    let limits = Limits {
        branches: 4,
        list_up_to: 2,
        max_ranges: 12,
        max_heads: 10,
        max_rounds: 10_000,
    };
    let ours = heads(0..300);
    let theirs: Vec<Head> = heads(150..600);
    let mut initiator = Initiator::within(ours.clone(), limits);
    let mut query = initiator.first();
    loop {
        assert!(query.ranges.len() <= limits.max_ranges);
        assert!(heads_in(&query.ranges) <= limits.max_heads);
        let reply = respond_within(theirs.clone(), &query, &limits).unwrap();
        assert!(reply.ranges.len() <= limits.max_ranges);
        assert!(heads_in(&reply.ranges) <= limits.max_heads);
        match initiator.take(&reply).unwrap() {
            Some(next) => query = next,
            None => break,
        }
    }
    assert_exact(&ours, &theirs, &initiator.finish());
}

#[test]
fn a_responder_that_never_agrees_costs_at_most_the_rounds_limit() {
    let ours = heads(0..100);
    let mut initiator = Initiator::new(ours.clone());
    let lie = Ranges {
        ranges: vec![Range {
            below: None,
            mode: Mode::Fingerprint(Hex([7; 16])),
        }],
    };
    let mut answers = 0;
    while initiator.take(&lie).unwrap().is_some() {
        answers += 1;
        assert!(answers < MAX_ROUNDS, "no end");
    }
    let diff = initiator.finish();
    assert_eq!((diff.rounds, diff.complete), (MAX_ROUNDS, false));
    assert!(diff.theirs.is_empty() && diff.they_lack.is_empty());
    assert_eq!(
        peer_heads(&ours, &diff).len(),
        ours.len(),
        "nothing made up"
    );
}

fn ranges(list: Vec<(Option<Bound>, Mode)>) -> Ranges {
    Ranges {
        ranges: list
            .into_iter()
            .map(|(below, mode)| Range { below, mode })
            .collect(),
    }
}

fn bound(first: u8) -> Option<Bound> {
    let mut key = [0u8; 32];
    key[0] = first;
    Some(Bound(key))
}

#[test]
fn messages_that_break_a_rule_are_refused() {
    let fp = || Mode::Fingerprint(Hex([0; 16]));
    let skip = || Mode::Skip;
    let cases: Vec<(&str, Ranges)> = vec![
        ("empty", ranges(vec![])),
        ("no end", ranges(vec![(bound(5), fp())])),
        ("two ends", ranges(vec![(None, fp()), (None, skip())])),
        (
            "bounds not ascending",
            ranges(vec![(bound(5), fp()), (bound(5), fp()), (None, skip())]),
        ),
        ("zero bound", ranges(vec![(bound(0), fp()), (None, skip())])),
        (
            "too many ranges",
            ranges(
                (1..=MAX_RANGES)
                    .map(|i| (Some(Bound(head(i as u64, 1).author.0)), skip()))
                    .chain([(None, skip())])
                    .collect(),
            ),
        ),
        (
            "head out of its range",
            ranges(vec![
                (
                    bound(0x80),
                    Mode::Heads(vec![Head {
                        author: Hex([0x90; 32]),
                        ..head(1, 1)
                    }]),
                ),
                (None, skip()),
            ]),
        ),
        (
            "heads out of order",
            ranges(vec![(None, Mode::Heads(vec![head(1, 1), head(1, 1)]))]),
        ),
        ("seq 0", ranges(vec![(None, Mode::Heads(vec![head(1, 0)]))])),
        (
            "too many heads",
            ranges(vec![(
                None,
                Mode::Heads(Side::new(heads(0..MAX_HEADS as u64 + 1)).heads),
            )]),
        ),
    ];
    for (why, message) in cases {
        let ranges_before = message.clone();
        assert!(respond(heads(0..10), &message).is_err(), "{why}: answered");
        let mut initiator = Initiator::new(heads(0..10));
        assert!(initiator.take(&message).is_err(), "{why}: taken");
        assert_eq!(message, ranges_before);
    }
    let fine = ranges(vec![(bound(5), fp()), (bound(9), skip()), (None, skip())]);
    assert!(check(&fine, &LIMITS).is_ok());
}

/// Sets drawn with a shared part, a part each side alone holds, and authors both
/// hold at different seqs.
fn sets() -> impl Strategy<Value = (Vec<Head>, Vec<Head>)> {
    (0u64..400, 0u64..60, 0u64..60, 0u64..30).prop_map(
        |(shared, ours_only, theirs_only, changed)| {
            let mut ours = heads(0..shared);
            let mut theirs = ours.clone();
            ours.extend(heads(10_000..10_000 + ours_only));
            theirs.extend(heads(20_000..20_000 + theirs_only));
            for h in theirs.iter_mut().take(usize::try_from(changed).unwrap()) {
                h.seq = 2;
                h.id = Hex([0xee; 32]);
            }
            (ours, theirs)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_two_sets_reconcile_to_exactly_their_difference(
        (ours, theirs) in sets(),
        branches in 2usize..20,
        list_up_to in 0usize..10,
        max_heads in 1usize..50,
        extra_ranges in 1usize..30,
    ) {
        let small = Limits {
            branches,
            list_up_to,
            max_ranges: branches + 2 + extra_ranges,
            max_heads,
            max_rounds: 5_000,
        };
        for limits in [LIMITS, small] {
            let (diff, _) = reconcile(&ours, &theirs, limits);
            assert_exact(&ours, &theirs, &diff);
            // Bounded: each answer settles at least one head or one split.
            let n = ours.len() + theirs.len();
            prop_assert!(diff.rounds <= 4 * n + 8, "{} rounds for {n} heads", diff.rounds);
        }
    }

    #[test]
    fn a_reconciliation_cut_short_learns_only_true_differences(
        (ours, theirs) in sets(),
        max_rounds in 1usize..4,
    ) {
        let limits = Limits { max_rounds, max_heads: 3, list_up_to: 2, ..LIMITS };
        let (diff, _) = reconcile(&ours, &theirs, limits);
        let (differing, lacking) = expected(&ours, &theirs);
        prop_assert!(diff.rounds <= max_rounds);
        prop_assert!(diff.theirs.iter().all(|h| differing.contains(h)));
        prop_assert!(diff.they_lack.iter().all(|a| lacking.contains(a)));
    }
}
