//! Range-based set reconciliation over per-author heads (negentropy's scheme), with
//! no I/O: two nodes whose digests differ find the authors whose heads differ in a
//! few round trips whose bytes grow with the difference, not with the authors.
//!
//! The key space is the 32 bytes of an author id, in byte order. A message is a list
//! of ranges covering it from the zero key to the end, each one `[previous bound,
//! below)` and in one mode: `skip` (nothing to do there), `fingerprint` (a summary
//! of the sender's heads there) or `heads` (every head the sender holds there). Who
//! gets a fingerprint that differs from its own either lists its heads there, when
//! they are few, or splits the range into [`BRANCHES`] ranges of about equal counts,
//! each with its fingerprint. The initiator, on a `heads` range, knows both sides of
//! it and is done with it; the responder answers one with its own heads. The
//! initiator stops when it has nothing but `skip` left to say, or after
//! [`MAX_ROUNDS`] answers (what it learnt so far is still right; the rest waits for
//! the next repair). The responder keeps no state between requests.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::chain::Head;
use crate::hex::Hex;
use crate::message::AuthorId;

/// How many ranges a range whose fingerprints differ is split into. 16 takes 100,000
/// authors to a handful in four splits (two round trips) while a split costs about
/// 1 KB of JSON.
pub const BRANCHES: usize = 16;
/// A side with at most this many heads in a range whose fingerprints differ lists
/// them rather than splitting: eight heads (about 1.3 KB) cost about what a split
/// does.
pub const LIST_UP_TO: usize = 8;
/// Most ranges in one message (about 60 bytes each as JSON).
pub const MAX_RANGES: usize = 512;
/// Most heads in one message, over all its ranges: as many as a page of `/v1/heads`
/// (about 330 KiB of JSON), far under the 1 MiB a node reads from a request.
pub const MAX_HEADS: usize = 2048;
/// Most answers an initiator takes in one reconciliation. With [`MAX_HEADS`] heads
/// an answer, 131,072 heads can be learnt in one go; a larger difference is learnt
/// over several repairs. It bounds what a responder that never agrees can cost.
pub const MAX_ROUNDS: usize = 64;

/// Sixteen bytes summarising a set of heads: see [`fingerprint_of`].
pub type Fingerprint = Hex<16>;

/// An exclusive upper bound in the key space: a key, written as its hex with the
/// trailing zero bytes left out (the shortest prefix that separates two authors is
/// all a split needs to send, a few bytes where an author id is 32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bound(pub [u8; 32]);

impl Bound {
    /// The shortest bound above `low` and at most `high` (`low < high`): `high`'s
    /// bytes up to the first one where the two differ.
    pub fn between(low: &[u8; 32], high: &[u8; 32]) -> Bound {
        let common = low.iter().zip(high).take_while(|(a, b)| a == b).count();
        let mut key = [0u8; 32];
        let keep = (common + 1).min(32);
        key[..keep].copy_from_slice(&high[..keep]);
        Bound(key)
    }

    fn trimmed(&self) -> &[u8] {
        let len = self.0.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        &self.0[..len]
    }
}

impl Serialize for Bound {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::hex::encode(self.trimmed()))
    }
}

impl<'de> Deserialize<'de> for Bound {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bound, D::Error> {
        let text = String::deserialize(d)?;
        parse_bound(&text).map_err(serde::de::Error::custom)
    }
}

fn parse_bound(text: &str) -> Result<Bound, String> {
    let digits = text.as_bytes();
    if digits.len() > 64 || !digits.len().is_multiple_of(2) {
        return Err(format!(
            "a bound is at most 64 hex digits, in pairs; got {}",
            digits.len()
        ));
    }
    let mut key = [0u8; 32];
    for (i, pair) in digits.chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).map_err(|_| "a bound is hex".to_string())?;
        let lower = pair
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        key[i] = u8::from_str_radix(pair, 16)
            .ok()
            .filter(|_| lower)
            .ok_or_else(|| format!("a bound is lowercase hex; got {pair:?}"))?;
    }
    Ok(Bound(key))
}

/// What a message says about one range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Nothing to do here: the sides agree, or the sender is done with it.
    Skip,
    /// The sender's heads here, summarised.
    Fingerprint(Fingerprint),
    /// Every head the sender holds here, authors in ascending order.
    Heads(Vec<Head>),
}

/// One range: from the previous range's `below` (the zero key for the first) up to
/// `below`, left out on the last range, which runs to the end of the key space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<Bound>,
    pub mode: Mode,
}

/// A reconciliation message, the body of a `/v1/reconcile` request and of its answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranges {
    pub ranges: Vec<Range>,
}

impl Ranges {
    /// Whether the message says nothing but `skip`: the sender is done.
    pub fn is_done(&self) -> bool {
        self.ranges.iter().all(|r| r.mode == Mode::Skip)
    }
}

/// Why a message was refused; it changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed reconcile message: {}", self.0)
    }
}

impl std::error::Error for Malformed {}

fn malformed<T>(why: impl Into<String>) -> Result<T, Malformed> {
    Err(Malformed(why.into()))
}

/// Checks what a peer sent before any of it is used: it covers the key space once,
/// in order, within the limits' ranges and heads, and every listed head lies in
/// its range, in ascending order, with a seq of 1 or more.
pub fn check(message: &Ranges, limits: &Limits) -> Result<(), Malformed> {
    let ranges = &message.ranges;
    if ranges.is_empty() || ranges.len() > limits.max_ranges {
        return malformed(format!(
            "{} ranges (1 to {} allowed)",
            ranges.len(),
            limits.max_ranges
        ));
    }
    let heads: usize = ranges
        .iter()
        .map(|r| match &r.mode {
            Mode::Heads(h) => h.len(),
            _ => 0,
        })
        .sum();
    if heads > limits.max_heads {
        return malformed(format!(
            "{heads} heads (at most {} allowed)",
            limits.max_heads
        ));
    }
    let mut lower = [0u8; 32];
    for (i, range) in ranges.iter().enumerate() {
        let last = i + 1 == ranges.len();
        match (&range.below, last) {
            (None, true) => {}
            (Some(b), false) if b.0 > lower => {}
            (Some(_), false) => return malformed("the bounds do not ascend"),
            (None, false) => return malformed("only the last range may run to the end"),
            (Some(_), true) => return malformed("the last range must run to the end"),
        }
        if let Mode::Heads(listed) = &range.mode {
            check_listed(listed, &lower, range.below.as_ref())?;
        }
        if let Some(b) = &range.below {
            lower = b.0;
        }
    }
    Ok(())
}

fn check_listed(listed: &[Head], lower: &[u8; 32], below: Option<&Bound>) -> Result<(), Malformed> {
    let mut previous: Option<&[u8; 32]> = None;
    for h in listed {
        let key = &h.author.0;
        let inside = key >= lower && below.is_none_or(|b| *key < b.0);
        if !inside || previous.is_some_and(|p| p >= key) {
            return malformed("listed heads out of their range or out of order");
        }
        if h.seq == 0 {
            return malformed("a listed head with seq 0");
        }
        previous = Some(key);
    }
    Ok(())
}

/// The hash an item adds to its range's sum: over the whole head, so that a
/// different seq or id changes it.
fn item_hash(h: &Head) -> [u64; 4] {
    let mut hasher = Sha256::new();
    hasher.update(b"dshare/1 reconcile item\n");
    hasher.update(h.author.0);
    hasher.update(h.seq.to_be_bytes());
    hasher.update(h.id.0);
    let bytes: [u8; 32] = hasher.finalize().into();
    let mut limbs = [0u64; 4];
    for (limb, chunk) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
        *limb = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
    }
    limbs
}

/// `a + b` mod 2^256, little-endian limbs.
fn add(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
    let mut out = [0u64; 4];
    let mut carry = false;
    for i in 0..4 {
        let (s, c1) = a[i].overflowing_add(b[i]);
        let (s, c2) = s.overflowing_add(u64::from(carry));
        out[i] = s;
        carry = c1 || c2;
    }
    out
}

/// `a - b` mod 2^256.
fn sub(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
    let mut out = [0u64; 4];
    let mut borrow = false;
    for i in 0..4 {
        let (d, b1) = a[i].overflowing_sub(b[i]);
        let (d, b2) = d.overflowing_sub(u64::from(borrow));
        out[i] = d;
        borrow = b1 || b2;
    }
    out
}

/// The first 16 bytes of SHA-256 over the sum (32 bytes, little-endian) and the
/// count (8 bytes, little-endian). The sum makes a range's fingerprint the same
/// however its items are grouped, and cheap from prefix sums; the count and the hash
/// keep sets of different sizes and near-miss sums apart.
fn finish(sum: &[u64; 4], count: usize) -> Fingerprint {
    let mut hasher = Sha256::new();
    for limb in sum {
        hasher.update(limb.to_le_bytes());
    }
    hasher.update((count as u64).to_le_bytes());
    let full: [u8; 32] = hasher.finalize().into();
    let mut fp = [0u8; 16];
    fp.copy_from_slice(&full[..16]);
    Hex(fp)
}

/// The fingerprint of a set of heads (in any order).
pub fn fingerprint_of(heads: &[Head]) -> Fingerprint {
    let sum = heads.iter().fold([0u64; 4], |s, h| add(&s, &item_hash(h)));
    finish(&sum, heads.len())
}

/// One side's heads, sorted by author, with prefix sums of their item hashes so that
/// any range's fingerprint costs two binary searches.
struct Side {
    heads: Vec<Head>,
    sums: Vec<[u64; 4]>,
}

impl Side {
    fn new(mut heads: Vec<Head>) -> Side {
        heads.sort_unstable_by_key(|h| h.author.0);
        heads.dedup_by_key(|h| h.author.0);
        let mut sums = Vec::with_capacity(heads.len() + 1);
        sums.push([0u64; 4]);
        for h in &heads {
            let next = add(sums.last().expect("one at least"), &item_hash(h));
            sums.push(next);
        }
        Side { heads, sums }
    }

    /// The indices of the heads in `[lower, below)`.
    fn span(&self, lower: &[u8; 32], below: Option<&Bound>) -> (usize, usize) {
        let start = self.heads.partition_point(|h| h.author.0 < *lower);
        let end = below.map_or(self.heads.len(), |b| {
            self.heads.partition_point(|h| h.author.0 < b.0)
        });
        (start, end.max(start))
    }

    fn fingerprint(&self, start: usize, end: usize) -> Fingerprint {
        finish(&sub(&self.sums[end], &self.sums[start]), end - start)
    }
}

/// The sizes a reconciliation works within: [`LIMITS`] on the wire; tests shrink
/// them to reach the paths that large sets take. `max_ranges` must be at least
/// `branches + 2` (a skip, a split and the tail) and `max_heads` at least 1, so
/// that every answer deals with one range at least.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub branches: usize,
    pub list_up_to: usize,
    pub max_ranges: usize,
    pub max_heads: usize,
    pub max_rounds: usize,
}

/// The limits every node uses, and checks what peers send against.
pub const LIMITS: Limits = Limits {
    branches: BRANCHES,
    list_up_to: LIST_UP_TO,
    max_ranges: MAX_RANGES,
    max_heads: MAX_HEADS,
    max_rounds: MAX_ROUNDS,
};

/// One range of the message being answered, on this side.
struct Span<'a> {
    side: &'a Side,
    start: usize,
    end: usize,
    below: Option<Bound>,
}

impl Span<'_> {
    fn heads(&self) -> &[Head] {
        &self.side.heads[self.start..self.end]
    }

    fn range(&self, mode: Mode) -> Range {
        Range {
            below: self.below,
            mode,
        }
    }

    fn fingerprinted(&self) -> Range {
        self.range(Mode::Fingerprint(
            self.side.fingerprint(self.start, self.end),
        ))
    }

    /// What to say about a range where the sides differ: the heads held here if the
    /// peer listed its own (it has few there, so ours are worth sending even if
    /// many) or if they are few; otherwise a split into `branches` ranges of about
    /// equal counts, each fingerprinted.
    fn differing(&self, peer_listed: bool, heads_left: usize, limits: &Limits) -> Vec<Range> {
        let n = self.end - self.start;
        // A single head is listed whatever the limits say: splitting it would not
        // make the range any smaller.
        if peer_listed || n <= limits.list_up_to.max(1) {
            return self.list(heads_left);
        }
        let pieces = limits.branches.max(2).min(n);
        (0..pieces)
            .map(|piece| {
                let start = self.start + n * piece / pieces;
                let end = self.start + n * (piece + 1) / pieces;
                let below = if piece + 1 == pieces {
                    self.below
                } else {
                    let heads = &self.side.heads;
                    Some(Bound::between(
                        &heads[end - 1].author.0,
                        &heads[end].author.0,
                    ))
                };
                let fp = self.side.fingerprint(start, end);
                Range {
                    below,
                    mode: Mode::Fingerprint(fp),
                }
            })
            .collect()
    }

    /// The heads held here, as many as `heads_left` allows, the rest under one
    /// fingerprint (the peer answers it, and the next answer lists more).
    fn list(&self, heads_left: usize) -> Vec<Range> {
        let n = self.end - self.start;
        let fits = n.min(heads_left);
        if fits == n {
            return vec![self.range(Mode::Heads(self.heads().to_vec()))];
        }
        if fits == 0 {
            return vec![self.fingerprinted()];
        }
        let heads = &self.side.heads;
        let split = self.start + fits;
        let listed = Range {
            below: Some(Bound::between(
                &heads[split - 1].author.0,
                &heads[split].author.0,
            )),
            mode: Mode::Heads(heads[self.start..split].to_vec()),
        };
        let rest = Span {
            start: split,
            ..*self
        };
        vec![listed, rest.fingerprinted()]
    }
}

fn heads_in(ranges: &[Range]) -> usize {
    ranges
        .iter()
        .map(|r| match &r.mode {
            Mode::Heads(h) => h.len(),
            _ => 0,
        })
        .sum()
}

/// Writes the answer to `message` (already checked) from `side`, within `limits`:
/// `learn` is called, on the initiator, with each range the peer listed and what
/// this side holds there. When the answer is full, everything from the range that
/// does not fit to the end goes under one fingerprint: the leftmost ranges are dealt
/// with first, so each round makes progress, and the answer stays bounded however
/// many ranges differ.
fn answer(
    side: &Side,
    message: &Ranges,
    initiator: bool,
    limits: &Limits,
    mut learn: impl FnMut(&[Head], &[Head]),
) -> Ranges {
    let mut out: Vec<Range> = Vec::new();
    let mut heads_left = limits.max_heads;
    let mut lower = [0u8; 32];
    for range in &message.ranges {
        let (start, end) = side.span(&lower, range.below.as_ref());
        let span = Span {
            side,
            start,
            end,
            below: range.below,
        };
        let planned = match &range.mode {
            Mode::Skip => vec![span.range(Mode::Skip)],
            Mode::Fingerprint(theirs) if *theirs == side.fingerprint(start, end) => {
                vec![span.range(Mode::Skip)]
            }
            Mode::Fingerprint(_) => span.differing(false, heads_left, limits),
            Mode::Heads(theirs) if initiator => {
                learn(theirs, span.heads());
                vec![span.range(Mode::Skip)]
            }
            Mode::Heads(theirs) if theirs.as_slice() == span.heads() => {
                vec![span.range(Mode::Skip)]
            }
            Mode::Heads(_) => span.differing(true, heads_left, limits),
        };
        // One range kept for the tail, unless this range is the tail.
        let reserve = usize::from(range.below.is_some());
        if out.len() + planned.len() + reserve > limits.max_ranges {
            let rest = Span {
                side,
                start,
                end: side.heads.len(),
                below: None,
            };
            out.push(rest.fingerprinted());
            break;
        }
        heads_left -= heads_in(&planned).min(heads_left);
        for r in planned {
            push_merging_skips(&mut out, r);
        }
        if let Some(b) = range.below {
            lower = b.0;
        }
    }
    Ranges { ranges: out }
}

/// Pushes `range`, merged into the last one when both are `skip`.
fn push_merging_skips(out: &mut Vec<Range>, range: Range) {
    match out.last_mut() {
        Some(last) if last.mode == Mode::Skip && range.mode == Mode::Skip => {
            last.below = range.below;
        }
        _ => out.push(range),
    }
}

/// The responder's step: its answer to an initiator's message, from its own heads.
/// Costs one pass over `ours` (hashing) and two binary searches a range.
pub fn respond(ours: Vec<Head>, query: &Ranges) -> Result<Ranges, Malformed> {
    respond_within(ours, query, &LIMITS)
}

pub fn respond_within(
    ours: Vec<Head>,
    query: &Ranges,
    limits: &Limits,
) -> Result<Ranges, Malformed> {
    check(query, limits)?;
    Ok(answer(&Side::new(ours), query, false, limits, |_, _| {}))
}

/// What the initiator learnt of the peer's heads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Difference {
    /// The peer's heads of the authors whose heads differ from ours, or that we lack.
    pub theirs: Vec<Head>,
    /// The authors we hold and the peer does not.
    pub they_lack: Vec<AuthorId>,
    /// Whether the whole key space was reconciled (not cut short by the rounds
    /// limit): when false, the authors not reached count as agreeing until the next
    /// repair.
    pub complete: bool,
    /// Answers taken.
    pub rounds: usize,
}

/// The initiator's side of one reconciliation.
pub struct Initiator {
    side: Side,
    limits: Limits,
    /// Per author: the peer's head, or `None` when the peer lacks it. A map, so that
    /// a peer that lists an author again in a later answer does not count twice; it
    /// grows by at most `max_heads` an answer, plus our own authors.
    learnt: BTreeMap<[u8; 32], Option<Head>>,
    rounds: usize,
    complete: bool,
}

impl Initiator {
    pub fn new(ours: Vec<Head>) -> Initiator {
        Initiator::within(ours, LIMITS)
    }

    pub fn within(ours: Vec<Head>, limits: Limits) -> Initiator {
        Initiator {
            side: Side::new(ours),
            limits,
            learnt: BTreeMap::new(),
            rounds: 0,
            complete: false,
        }
    }

    /// The first message: one fingerprint over everything (or every head, if few).
    pub fn first(&self) -> Ranges {
        let all = Span {
            side: &self.side,
            start: 0,
            end: self.side.heads.len(),
            below: None,
        };
        let range = if all.heads().len() <= self.limits.list_up_to {
            all.range(Mode::Heads(all.heads().to_vec()))
        } else {
            all.fingerprinted()
        };
        Ranges {
            ranges: vec![range],
        }
    }

    /// Takes the peer's answer; returns the next message to send, or `None` when the
    /// reconciliation is over (done, or out of rounds).
    pub fn take(&mut self, reply: &Ranges) -> Result<Option<Ranges>, Malformed> {
        check(reply, &self.limits)?;
        self.rounds += 1;
        let learnt = &mut self.learnt;
        let next = answer(&self.side, reply, true, &self.limits, |theirs, ours| {
            learn(learnt, theirs, ours);
        });
        if next.is_done() {
            self.complete = true;
            return Ok(None);
        }
        Ok((self.rounds < self.limits.max_rounds).then_some(next))
    }

    pub fn finish(self) -> Difference {
        let mut diff = Difference {
            complete: self.complete,
            rounds: self.rounds,
            ..Difference::default()
        };
        for (author, theirs) in self.learnt {
            match theirs {
                Some(h) => diff.theirs.push(h),
                None => diff.they_lack.push(Hex(author)),
            }
        }
        diff
    }
}

/// Records what differs in one range where the peer listed `theirs` and we hold
/// `ours` (both ascending by author).
fn learn(learnt: &mut BTreeMap<[u8; 32], Option<Head>>, theirs: &[Head], ours: &[Head]) {
    let (mut i, mut j) = (0, 0);
    while i < theirs.len() || j < ours.len() {
        let order = match (theirs.get(i), ours.get(j)) {
            (Some(t), Some(o)) => t.author.0.cmp(&o.author.0),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                learnt.insert(theirs[i].author.0, Some(theirs[i]));
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                learnt.insert(ours[j].author.0, None);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                if theirs[i] == ours[j] {
                    learnt.remove(&theirs[i].author.0);
                } else {
                    learnt.insert(theirs[i].author.0, Some(theirs[i]));
                }
                i += 1;
                j += 1;
            }
        }
    }
}

/// The peer's heads, as far as reconciliation told: ours, with the differences put
/// in (authors not reached count as agreeing).
pub fn peer_heads(ours: &[Head], diff: &Difference) -> Vec<Head> {
    let mut by_author: BTreeMap<[u8; 32], Head> = ours.iter().map(|h| (h.author.0, *h)).collect();
    for author in &diff.they_lack {
        by_author.remove(&author.0);
    }
    for h in &diff.theirs {
        by_author.insert(h.author.0, *h);
    }
    by_author.into_values().collect()
}

#[cfg(test)]
mod tests;
