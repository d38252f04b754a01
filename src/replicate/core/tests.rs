//! The policy alone: rounds, retries and spread, with no socket and no clock.

use std::collections::HashSet;

use super::{Action, Answer, Config, Core, Event, LINKS, Link, Liveness, Spread, Word};
use crate::message::AuthorId;

fn author(n: u8) -> AuthorId {
    crate::hex::Hex([n; 32])
}

fn peer(n: usize) -> String {
    format!("http://10.0.0.{n}:7070")
}

/// A core that knows `n` peers, all up (peer i proved author i).
fn core_with(n: usize, seed: u64) -> Core {
    let mut core = Core::new(Config::new(8), seed);
    for i in 1..=n {
        core.handle(Event::Learned { peer: &peer(i) }, 0);
        let id = author(u8::try_from(i).unwrap());
        let answer = Answer::Up { id };
        core.handle(
            Event::Exchanged {
                peer: &peer(i),
                answer,
            },
            0,
        );
    }
    core
}

fn exchanges(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Exchange { peer } => Some(peer.clone()),
            _ => None,
        })
        .collect()
}

fn pushes(actions: &[Action]) -> Vec<(String, Spread)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Push { peer, spread } => Some((peer.clone(), *spread)),
            _ => None,
        })
        .collect()
}

/// Answers every exchange asked for as `answer` at `now`.
fn answer_all(core: &mut Core, actions: &[Action], answer: Answer, now: u64) {
    for p in exchanges(actions) {
        core.handle(Event::Exchanged { peer: &p, answer }, now);
    }
}

#[test]
fn a_learned_peer_is_greeted_at_once_and_only_once() {
    let mut core = Core::new(Config::new(8), 1);
    let first = core.handle(Event::Learned { peer: &peer(1) }, 5);
    assert_eq!(exchanges(&first), [peer(1)]);
    assert!(core.handle(Event::Learned { peer: &peer(1) }, 6).is_empty());
    assert_eq!(core.liveness(&peer(1)), Some(Liveness::Unknown));
}

/// The time from `now` to the wake a round's actions end with.
fn wait_after(actions: &[Action], now: u64) -> u64 {
    let Some(Action::Wake { at_ms }) = actions.last() else {
        panic!("a round ends with its wake: {actions:?}");
    };
    at_ms - now
}

#[test]
fn each_round_greets_one_partner_and_every_peer_within_n_rounds() {
    let n = 40;
    let mut core = core_with(n, 7);
    let mut now = 1;
    let mut greeted = HashSet::new();
    let mut waits = Vec::new();
    for _ in 0..n {
        let actions = core.handle(Event::Timer, now);
        let partners = exchanges(&actions);
        assert_eq!(partners.len(), 1, "one partner a round: {actions:?}");
        greeted.extend(partners.iter().cloned());
        answer_all(&mut core, &actions, Answer::Up { id: author(1) }, now);
        waits.push(wait_after(&actions, now));
        now += waits.last().unwrap();
    }
    // At rest rounds slow down, a doubling a round (±20%), to one every 8 s.
    for (i, base) in [1000, 2000, 4000, 8000, 8000].into_iter().enumerate() {
        let jittered = base * 4 / 5..=base * 6 / 5;
        assert!(jittered.contains(&waits[i]), "round {i}: {waits:?}");
    }
    assert!(waits.iter().all(|&w| w <= 9_600), "{waits:?}");
    assert_eq!(greeted.len(), n, "the oldest contact goes first");
    // Before its time a timer only says when the round is.
    let early = core.handle(Event::Timer, now - 1);
    assert_eq!(early, [Action::Wake { at_ms: now }]);
}

#[test]
fn a_quiet_round_waits_twice_as_long_as_the_last_until_something_is_stored() {
    let mut core = core_with(4, 5);
    let mut now = 1;
    for _ in 0..6 {
        let actions = core.handle(Event::Timer, now);
        answer_all(&mut core, &actions, Answer::Up { id: author(1) }, now);
        now += wait_after(&actions, now);
    }
    let quiet = core.handle(Event::Timer, now);
    assert!(wait_after(&quiet, now) >= 6_400, "at rest: {quiet:?}");
    answer_all(&mut core, &quiet, Answer::Up { id: author(1) }, now);
    // A stored batch brings the next round within a second, and the one after it
    // again a second later: the quiet time starts over.
    let at = now + 10;
    let stored = core.handle(
        Event::Stored {
            authors: &[author(9)],
            mine: false,
        },
        at,
    );
    let soon = wait_after(&stored, at);
    assert!((800..=1_200).contains(&soon), "{stored:?}");
    let next = core.handle(Event::Timer, at + soon);
    assert!(wait_after(&next, at + soon) <= 1_200, "{next:?}");
    // So does a member back (a peer learned is greeted at once, and the rounds
    // keep their pace: links turn a table over now and then).
    let (mut round, mut next) = (at + soon, at + soon);
    for _ in 0..5 {
        round = next;
        let actions = core.handle(Event::Timer, round);
        answer_all(&mut core, &actions, Answer::Up { id: author(1) }, round);
        next = round + wait_after(&actions, round);
    }
    assert!(next - round >= 6_400, "at rest again");
    let learned = core.handle(Event::Learned { peer: &peer(9) }, round + 1);
    assert_eq!(exchanges(&learned), [peer(9)], "{learned:?}");
    core.handle(Event::PushFailed { peer: &peer(2) }, round);
    let back = Event::Member {
        peer: &peer(2),
        alive: true,
    };
    let actions = core.handle(back, round + 1);
    assert!(wait_after(&actions, round + 1) <= 1_200, "{actions:?}");
}

#[test]
fn a_node_whose_rounds_are_how_it_receives_keeps_them_a_second_apart() {
    let mut config = Config::new(8);
    config.round_max_ms = config.round_ms;
    let mut core = Core::new(config, 2);
    core.handle(Event::Learned { peer: &peer(1) }, 0);
    let mut now = 1;
    for _ in 0..8 {
        let actions = core.handle(Event::Timer, now);
        answer_all(&mut core, &actions, Answer::Up { id: author(1) }, now);
        let wait = wait_after(&actions, now);
        assert!((800..=1_200).contains(&wait), "{actions:?}");
        now += wait;
    }
}

#[test]
fn a_peer_that_greeted_us_is_not_greeted_back_first() {
    let mut core = core_with(2, 3);
    core.handle(Event::HeardFrom { peer: &peer(1) }, 10);
    let actions = core.handle(Event::Timer, 10);
    assert_eq!(exchanges(&actions), [peer(2)]);
}

#[test]
fn an_unreachable_peer_is_retried_with_backoff_and_few_at_a_time() {
    let mut core = core_with(5, 11);
    for i in 1..=5 {
        core.handle(Event::PushFailed { peer: &peer(i) }, 0);
    }
    assert!(core.peers().all(|(_, l)| l == Liveness::Down));
    let mut now = 0;
    let mut tries = Vec::new();
    while now < 40_000 {
        let actions = core.handle(Event::Timer, now);
        let tried = exchanges(&actions);
        assert!(tried.len() <= 2, "retries a round are bounded: {tried:?}");
        tries.extend(tried.iter().filter(|p| **p == peer(1)).map(|_| now));
        answer_all(&mut core, &actions, Answer::Unreachable, now);
        now += 100;
    }
    let waits: Vec<u64> = tries.windows(2).map(|w| w[1] - w[0]).collect();
    // Retries are looked at once a second (±20%), however slow the rounds, so a wait
    // is its backoff to the next pass.
    assert!(
        waits[0] < waits[1] && waits[1] < waits[2],
        "waits grow: {waits:?}"
    );
    assert!(
        waits.iter().all(|&w| w <= 8_000 + 1_300),
        "and are capped: {waits:?}"
    );
    // Heard from: tried again at the next retry pass, within a second, and up once
    // it answers.
    let hurried = core.handle(Event::HeardFrom { peer: &peer(1) }, now);
    assert!(wait_after(&hurried, now) <= 1_200, "{hurried:?}");
    let actions = core.handle(Event::Timer, now + 1_300);
    assert!(exchanges(&actions).contains(&peer(1)), "{actions:?}");
    answer_all(
        &mut core,
        &actions,
        Answer::Up { id: author(1) },
        now + 1_300,
    );
    assert_eq!(core.liveness(&peer(1)), Some(Liveness::Up));
}

#[test]
fn own_messages_go_to_every_reachable_peer_in_a_small_network() {
    let mut core = core_with(4, 5);
    core.handle(Event::PushFailed { peer: &peer(4) }, 0);
    let actions = core.handle(
        Event::Stored {
            authors: &[author(0)],
            mine: true,
        },
        0,
    );
    let mut got = pushes(&actions);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let want: Vec<(String, Spread)> = (1..=3).map(|i| (peer(i), Spread::ToEveryPeer)).collect();
    assert_eq!(got, want, "not the down one");
    // Another author's batch is forwarded, never back to its author.
    let actions = core.handle(
        Event::Stored {
            authors: &[author(2)],
            mine: false,
        },
        0,
    );
    let got = pushes(&actions);
    assert_eq!(got.len(), 2);
    assert!(
        got.iter()
            .all(|(p, s)| *p != peer(2) && *s == Spread::Forwarded)
    );
}

#[test]
fn a_large_network_pushes_to_one_eager_peer_and_offers_to_fanout_others() {
    let mut core = core_with(40, 9);
    let stored = Event::Stored {
        authors: &[author(3)],
        mine: false,
    };
    let mut seen = HashSet::new();
    for _ in 0..20 {
        let got = pushes(&core.handle(stored, 0));
        let pushed: Vec<&String> = got
            .iter()
            .filter(|(_, s)| *s == Spread::Forwarded)
            .map(|(p, _)| p)
            .collect();
        let offered = got.iter().filter(|(_, s)| *s == Spread::Offered).count();
        assert_eq!((pushed.len(), offered), (1, 8), "{got:?}");
        assert!(
            got.iter().all(|(p, _)| *p != peer(3)),
            "never to the author"
        );
        // The push brought nothing new: that peer turns lazy.
        core.handle(
            Event::Pushed {
                peer: pushed[0],
                fresh: false,
            },
            0,
        );
        seen.insert(pushed[0].clone());
    }
    assert!(
        seen.len() >= 15,
        "pushes move on from lazy peers: {}",
        seen.len()
    );
    // A peer that asks for an offered message turns eager: with every other peer
    // lazy, it gets the next push.
    for i in 1..=40 {
        core.handle(
            Event::Pushed {
                peer: &peer(i),
                fresh: false,
            },
            0,
        );
    }
    core.handle(Event::Wanted { peer: &peer(7) }, 0);
    let got = pushes(&core.handle(stored, 0));
    assert!(got.contains(&(peer(7), Spread::Forwarded)), "{got:?}");
    // Past ORIGIN_FANOUT peers, the node's own messages are spread the same way.
    let own = Event::Stored {
        authors: &[author(0)],
        mine: true,
    };
    assert_eq!(pushes(&core.handle(own, 0)).len(), 9);
}

#[test]
fn the_same_seed_and_events_give_the_same_actions() {
    let run = |seed| {
        let mut core = core_with(30, seed);
        let mut trace = Vec::new();
        for t in 0..50u64 {
            let now = t * 500;
            let actions = core.handle(Event::Timer, now);
            answer_all(&mut core, &actions, Answer::Up { id: author(1) }, now);
            trace.extend(actions);
            trace.extend(core.handle(
                Event::Stored {
                    authors: &[author(2)],
                    mine: false,
                },
                now,
            ));
        }
        trace
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
}

/// A word numbered `seq`.
fn word(link: Link, seq: u64) -> Option<Word> {
    Some(Word { link, seq })
}

/// Has `core` greeted by peer `i` saying `w`; whether it holds a link with it then.
fn proposed(core: &mut Core, i: usize, w: Option<Word>, now: u64) -> (bool, Vec<Action>) {
    let actions = core.handle(
        Event::Proposed {
            peer: &peer(i),
            word: w,
        },
        now,
    );
    (core.linked(&peer(i)), actions)
}

/// Answers `core`'s hello to peer `i` with `w`.
fn answered(core: &mut Core, i: usize, w: Option<Word>, now: u64) -> Vec<Action> {
    core.handle(
        Event::LinkAnswered {
            peer: &peer(i),
            word: w,
        },
        now,
    )
}

/// Whether `core`'s word to `p` wants a link.
fn wants(core: &Core, p: &str) -> bool {
    core.word(p).is_some_and(|w| w.link != Link::Drop)
}

#[test]
fn links_are_taken_while_there_is_room_and_urgent_ones_drop_one_a_second() {
    let mut core = core_with(20, 3);
    // core_with asked its first peers for links; they refuse, freeing the room.
    for i in 1..=20 {
        answered(&mut core, i, word(Link::Drop, 1), 0);
    }
    assert_eq!(core.links(), 0);
    for i in 1..=LINKS {
        assert!(
            proposed(&mut core, i, word(Link::Want, 2), 10).0,
            "room: {i}"
        );
    }
    assert_eq!(core.links(), LINKS);
    let (taken, _) = proposed(&mut core, 10, word(Link::Want, 2), 10);
    assert!(!taken, "no room: a request is refused");
    assert_eq!(core.word(&peer(10)).map(|w| w.link), Some(Link::Drop));
    // Urgent: taken in the place of a link, which is greeted to learn it.
    let (taken, actions) = proposed(&mut core, 11, word(Link::Urgent, 2), 10);
    assert!(taken);
    assert_eq!(core.links(), LINKS, "still at the bound");
    let told = exchanges(&actions);
    assert_eq!(told.len(), 1, "{actions:?}");
    assert!(!core.linked(&told[0]));
    assert_eq!(core.word(&told[0]).map(|w| w.link), Some(Link::Drop));
    // A second urgent request within the second is refused.
    assert!(!proposed(&mut core, 12, word(Link::Urgent, 2), 500).0);
    assert!(proposed(&mut core, 12, word(Link::Urgent, 3), 1_010).0);
    assert_eq!(core.links(), LINKS);
    // A hello that says nothing leaves a link; an older word too; `drop` drops it.
    assert!(proposed(&mut core, 11, None, 1_020).0);
    assert!(
        proposed(&mut core, 11, word(Link::Drop, 1), 1_020).0,
        "older"
    );
    assert!(!proposed(&mut core, 11, word(Link::Drop, 5), 1_020).0);
    assert_eq!(core.links(), LINKS - 1);
    // An unknown peer is not linked: it must be adopted first.
    assert!(!proposed(&mut core, 99, word(Link::Urgent, 9), 3_000).0);
}

#[test]
fn words_numbered_out_of_order_leave_both_ends_agreeing() {
    // Node b drops a, then takes it back on a's next request; the drop, on
    // another connection, arrives after the answer that took it back.
    let mut a = core_with(3, 1);
    for i in 1..=3 {
        answered(&mut a, i, word(Link::Drop, 1), 0);
    }
    proposed(&mut a, 1, word(Link::Want, 10), 5);
    assert!(a.linked(&peer(1)));
    answered(&mut a, 1, word(Link::Want, 30), 40);
    assert!(a.linked(&peer(1)));
    proposed(&mut a, 1, word(Link::Drop, 20), 50);
    assert!(a.linked(&peer(1)), "the drop is older than the answer");
}

#[test]
fn a_node_with_room_asks_for_links_urgently_first_and_not_again_of_a_refuser() {
    let mut core = Core::new(Config::new(8), 9);
    let first = core.handle(Event::Learned { peer: &peer(1) }, 0);
    assert_eq!(exchanges(&first), [peer(1)]);
    assert_eq!(core.word(&peer(1)).map(|w| w.link), Some(Link::Urgent));
    answered(&mut core, 1, word(Link::Want, 5), 5);
    assert!(core.linked(&peer(1)));
    assert_eq!(
        core.word(&peer(1)).map(|w| w.link),
        Some(Link::Urgent),
        "1 < 2"
    );
    // Asks go to at most the room left: LINKS - 1 more of many peers learned.
    for i in 2..=30 {
        core.handle(Event::Learned { peer: &peer(i) }, 10);
    }
    let asked: Vec<String> = (2..=30).map(peer).filter(|p| wants(&core, p)).collect();
    assert_eq!(asked.len(), LINKS - 1);
    // Those that refuse are not asked again for a while: the round asks another.
    for i in 2..=30 {
        answered(&mut core, i, word(Link::Drop, 6), 20);
        let answer = Answer::Up {
            id: author(u8::try_from(i).unwrap()),
        };
        core.handle(
            Event::Exchanged {
                peer: &peer(i),
                answer,
            },
            20,
        );
    }
    let round = core.handle(Event::Timer, 30);
    let asked_now: Vec<String> = exchanges(&round)
        .into_iter()
        .filter(|p| wants(&core, p))
        .collect();
    assert!(!asked_now.is_empty(), "{round:?}");
    assert!(
        asked_now.iter().all(|p| !asked.contains(p)),
        "{asked_now:?}"
    );
    // A link to a peer found down is dropped.
    core.handle(
        Event::Member {
            peer: &peer(1),
            alive: false,
        },
        40,
    );
    assert_eq!(core.links(), 0);
}

#[test]
fn past_the_fanout_a_batch_goes_over_the_links_only() {
    let mut core = core_with(40, 4);
    for i in 1..=40 {
        answered(&mut core, i, word(Link::Drop, 1), 0);
    }
    for i in 1..=5 {
        proposed(&mut core, i, word(Link::Want, 2), 0);
    }
    let stored = Event::Stored {
        authors: &[author(99)],
        mine: false,
    };
    let got = pushes(&core.handle(stored, 0));
    let mut to: Vec<String> = got.iter().map(|(p, _)| p.clone()).collect();
    to.sort();
    let mut links: Vec<String> = (1..=5).map(peer).collect();
    links.sort();
    assert_eq!(to, links, "every link, no other peer");
    assert!(
        got.iter().all(|(_, s)| *s == Spread::Forwarded),
        "all eager at first"
    );
    // A link that had it already turns lazy and is only offered it next time.
    core.handle(
        Event::Pushed {
            peer: &peer(2),
            fresh: false,
        },
        0,
    );
    let got = pushes(&core.handle(stored, 0));
    assert!(got.contains(&(peer(2), Spread::Offered)), "{got:?}");
    assert_eq!(got.len(), 5);
    // A node that does not know links is pushed to as before links.
    answered(&mut core, 30, None, 0);
    let got = pushes(&core.handle(stored, 0));
    assert!(got.iter().any(|(p, _)| *p == peer(30)), "{got:?}");
}

#[test]
fn a_link_whose_other_end_forgot_this_node_is_let_go_at_the_next_exchange() {
    // a and b hold a link; b forgets a (to make room in its table). a must hear a
    // word newer than the one that made the link, or it pushes into it for ever.
    let mut a = core_with(3, 5);
    for i in 1..=3 {
        answered(&mut a, i, word(Link::Drop, 1), 0);
    }
    let mut b = core_with(8, 6);
    for i in 1..=8 {
        answered(&mut b, i, word(Link::Drop, 1), 0);
    }
    let a_at_b = 20;
    b.handle(
        Event::Learned {
            peer: &peer(a_at_b),
        },
        1_000,
    );
    proposed(&mut a, 1, b.word(&peer(a_at_b)), 1_000);
    answered(&mut b, a_at_b, Some(a.answer_word(&peer(1), 1_000)), 1_000);
    assert!(a.linked(&peer(1)) && b.linked(&peer(a_at_b)));
    b.handle(
        Event::Forgot {
            peer: &peer(a_at_b),
        },
        2_000,
    );
    answered(&mut a, 1, Some(b.answer_word(&peer(a_at_b), 3_000)), 3_000);
    assert!(!a.linked(&peer(1)), "b holds a no more: a lets the link go");
    assert_eq!(a.links(), 0);
    // Linked again; b forgets a, fills its links with others, then learns a again
    // with no room: its first word, no link, is newer than the one a holds.
    proposed(&mut a, 1, word(Link::Want, 4_000), 4_000);
    assert!(a.linked(&peer(1)));
    b.handle(
        Event::Forgot {
            peer: &peer(a_at_b),
        },
        4_500,
    );
    for i in 1..=LINKS {
        proposed(&mut b, i, word(Link::Want, 4_600), 4_600);
    }
    b.handle(
        Event::Learned {
            peer: &peer(a_at_b),
        },
        5_000,
    );
    let relearned = b.word(&peer(a_at_b));
    assert_eq!(relearned.map(|w| w.link), Some(Link::Drop), "{relearned:?}");
    answered(&mut a, 1, relearned, 5_000);
    assert!(!a.linked(&peer(1)));
}
