//! The calls to one peer, made on a pool thread serving its lane: the pushes queued
//! for it, and the exchange the core asked for (a hello, which probes liveness,
//! exchanges peers, and pulls whatever the peer holds that this node lacks).

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::chain::Head;
use crate::mbox::Outcome;
use crate::message::Message;

use super::core::{Answer, Event};
use super::drive::{Lane, Progress};
use super::peers::PeerState;
use super::protocol::{
    HeadsPage, HeadsRequest, Hello, HelloReply, MAX_PAGE, MAX_PEERS_SHARED, Messages, Offer,
    OfferReply, PushOf, PushReply, RangeRequest,
};
use super::rounds::{self, LastRound};
use super::{Replicator, Spread};

/// Most JSON bytes pushed in one request (the node accepts 1 MiB bodies).
const MAX_PUSH_BYTES: usize = 512 * 1024;
/// Catch-ups longer than this show a progress bar on a terminal.
const PROGRESS_FROM: u64 = 1000;
/// Most heads taken from one peer in one exchange, over all its pages: a bound on
/// what a lying peer can make this node hold (about 100 MB), far above any real
/// network's number of authors for now.
const MAX_HEADS_TOTAL: usize = 1_000_000;

/// Serves `lane` until it has nothing left: the exchange asked for, if any, then
/// every batch queued. A panic is caught and logged, and the lane given back, so a
/// pool thread never dies and the core never waits for an exchange that ended.
pub fn serve(rep: &Arc<Replicator>, lane: &Lane) {
    let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        while let Some(work) = lane.next_work() {
            if rep.stopping() {
                return;
            }
            if work.exchange {
                let answer = {
                    let mut progress = lane.progress.lock().expect("progress lock");
                    hello_and_pull(rep, &lane.url, &mut progress)
                };
                let peer = lane.url.as_str();
                rep.feed(Event::Exchanged { peer, answer }, None);
            }
            push_queued(rep, lane);
        }
    }));
    if served.is_err() {
        let url = &lane.url;
        crate::error!(peer = url; "the calls to peer {url} failed; its lane is reset");
        lane.reset();
        let answer = Answer::Failed;
        rep.feed(Event::Exchanged { peer: url, answer }, None);
        rep.greeted(url, false);
    }
}

/// Pushes everything queued for the lane's peer, in as few requests as possible,
/// those sent to every peer apart from those that may be forwarded.
fn push_queued(rep: &Replicator, lane: &Lane) {
    let url = lane.url.as_str();
    loop {
        let Ok(taken) = lane.inbox.lock().expect("inbox lock").take(Duration::ZERO) else {
            return;
        };
        let (mut to_all, mut others, mut offered): (Vec<&Message>, Vec<&Message>, Vec<&Message>) =
            (Vec::new(), Vec::new(), Vec::new());
        for (batch, spread) in &taken.batches {
            match spread {
                Spread::ToEveryPeer => &mut to_all,
                Spread::Forwarded => &mut others,
                Spread::Offered => &mut offered,
            }
            .extend(batch.iter());
        }
        if rep.peers.is_down(url) {
            continue;
        }
        let sent = offer(rep, url, &offered).and_then(|wanted| {
            others.extend(wanted);
            [(to_all, Spread::ToEveryPeer), (others, Spread::Forwarded)]
                .into_iter()
                .filter(|(messages, _)| !messages.is_empty())
                .try_for_each(|(messages, spread)| {
                    let outcomes = push(rep, url, &messages, spread)?;
                    let fresh = outcomes.iter().any(|o| !matches!(o, Outcome::Duplicate));
                    rep.feed(Event::Pushed { peer: url, fresh }, None);
                    Ok(())
                })
        });
        match sent {
            Ok(()) => {
                taken.answered();
                lane.progress.lock().expect("progress lock").pushed_ms = crate::time::now_ms();
            }
            Err(e) => {
                rep.failed(url, &e);
                if super::client::is_unreachable(&e) {
                    rep.feed(Event::PushFailed { peer: url }, None);
                }
            }
        }
    }
}

/// Offers `messages` by id (the lazy half of eager/lazy push) and returns those the
/// peer asked for, to be pushed; asking for any turns the peer eager again. A peer
/// that does not know offers (an older node) is pushed all of them, as before.
fn offer<'a>(rep: &Replicator, url: &str, messages: &[&'a Message]) -> Result<Vec<&'a Message>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let mut wanted = Vec::new();
    for chunk in messages.chunks(MAX_PAGE) {
        let ids = chunk
            .iter()
            .map(|m| Head {
                author: m.author,
                seq: m.seq,
                id: m.id,
            })
            .collect();
        match rep.client.call::<_, OfferReply>(
            url,
            "offer",
            &Offer {
                ids,
                from: rep.me.url.clone(),
            },
        ) {
            Ok(reply) => wanted.extend(
                chunk
                    .iter()
                    .zip(reply.want.iter().chain(std::iter::repeat(&false)))
                    .filter(|(_, want)| **want)
                    .map(|(m, _)| *m),
            ),
            Err(_) => wanted.extend(chunk.iter().copied()),
        }
    }
    if !wanted.is_empty() {
        rep.feed(Event::Wanted { peer: url }, None);
    }
    Ok(wanted)
}

/// Pushes `messages` in bounded requests. A peer that lacks an author's earlier
/// messages answers `gap`; it is sent the missing run once, then the push goes on.
/// [`Spread::ToEveryPeer`]: this node wrote them and pushes them to every peer it
/// knows, so the peer need not forward them (`sent_to_all` on the wire).
pub fn push(
    rep: &Replicator,
    url: &str,
    messages: &[&Message],
    spread: Spread,
) -> Result<Vec<Outcome>> {
    let mut outcomes = Vec::with_capacity(messages.len());
    for chunk in chunks(messages) {
        let reply: PushReply = rep.client.call(
            url,
            "push",
            &PushOf {
                messages: chunk,
                sent_to_all: spread == Spread::ToEveryPeer,
                from: rep.me.url.as_deref(),
            },
        )?;
        send_missing(rep, url, chunk, &reply.outcomes)?;
        note_refusals(rep, url, chunk, &reply.outcomes);
        outcomes.extend(reply.outcomes);
    }
    Ok(outcomes)
}

/// Records on the peer's view whether it refuses this node's own messages, and why,
/// so that `doctor` can say so (the peer's side sees nothing wrong with itself).
fn note_refusals(rep: &Replicator, url: &str, messages: &[&Message], outcomes: &[Outcome]) {
    let mut verdict = None;
    for (m, outcome) in messages.iter().zip(outcomes) {
        if m.author != rep.me.id {
            continue;
        }
        match outcome {
            Outcome::Refused { reason } => {
                verdict = Some(Some(format!("it refused our message {}: {reason}", m.seq)));
            }
            Outcome::Stored | Outcome::Duplicate => verdict = Some(None),
            _ => {}
        }
    }
    if let Some(refuses) = verdict {
        rep.peers.update(url, |p| p.refuses_ours = refuses);
    }
}

/// Notes what the peer's clock said at the last exchange, and whether it refuses our
/// requests for being too far from it.
fn note_clock(rep: &Replicator, url: &str, error: Option<&anyhow::Error>) {
    let offset = rep
        .writer
        .peer_clocks()
        .offset_of(url, crate::time::now_ms());
    let skewed = offset.is_some_and(|o| o.unsigned_abs() > crate::clock::MAX_SKEW_MS);
    rep.peers.update(url, |p| {
        p.clock_offset_ms = offset;
        match error {
            Some(e) if skewed => p.refuses_ours = Some(format!("{e:#}")),
            None if p
                .refuses_ours
                .as_deref()
                .is_some_and(|r| r.contains("clock")) =>
            {
                p.refuses_ours = None;
            }
            _ => {}
        }
    });
}

/// Sends the peer, once for each author whose messages it answered `gap` to, the
/// run it lacks (a page; anti-entropy brings the rest). Once per author, not per
/// message: a push of many messages after a lost one is answered `gap` for each,
/// and sending the run again for each of them had a worker push the same 500
/// messages over and over, for seconds.
fn send_missing(
    rep: &Replicator,
    url: &str,
    messages: &[&Message],
    outcomes: &[Outcome],
) -> Result<()> {
    let mut lacking: Vec<(crate::message::AuthorId, u64)> = Vec::new();
    for (m, outcome) in messages.iter().zip(outcomes) {
        if let Outcome::Gap { have } = outcome {
            match lacking.iter_mut().find(|(a, _)| *a == m.author) {
                Some((_, least)) => *least = (*least).min(*have),
                None => lacking.push((m.author, *have)),
            }
        }
    }
    for (author, have) in lacking {
        let missing = rep
            .writer
            .store()
            .range(&author, have.saturating_add(1), MAX_PAGE)?;
        if !missing.is_empty() {
            let _: PushReply = rep.client.call(
                url,
                "push",
                &Messages {
                    messages: missing,
                    sent_to_all: false,
                    first: None,
                    from: rep.me.url.clone(),
                },
            )?;
        }
    }
    Ok(())
}

/// Splits into runs of at most [`MAX_PAGE`] messages and about [`MAX_PUSH_BYTES`].
fn chunks<'a>(messages: &'a [&'a Message]) -> Vec<&'a [&'a Message]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, m) in messages.iter().enumerate() {
        let size = m.body.len() * 2 + 400;
        if i > start && (i - start >= MAX_PAGE || bytes + size > MAX_PUSH_BYTES) {
            out.push(&messages[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < messages.len() {
        out.push(&messages[start..]);
    }
    out
}

fn hello_and_pull(rep: &Arc<Replicator>, url: &str, progress: &mut Progress) -> Answer {
    let pushed_ms = progress
        .pushed_ms
        .max(rep.push_stored_ms.load(Ordering::Relaxed));
    let (answered, answer) = match exchange(rep, url, &mut progress.last_round, pushed_ms) {
        Ok(id) => (true, Answer::Up { id }),
        Err(Failure::Unreachable) => (false, Answer::Unreachable),
        Err(Failure::Answered(id)) => (false, id.map_or(Answer::Failed, |id| Answer::Up { id })),
    };
    if !answered {
        // Whatever is missing after a failure is repaired in full next time.
        progress.last_round = None;
    }
    rep.greeted(url, answered);
    answer
}

/// How an exchange that did not go through ended, for the core: the peer could not
/// be reached, or it answered (proving this id, if it did) and then something failed.
enum Failure {
    Unreachable,
    Answered(Option<crate::message::AuthorId>),
}

impl Failure {
    fn of(e: &anyhow::Error, proven: Option<crate::message::AuthorId>) -> Failure {
        if super::client::is_unreachable(e) {
            Failure::Unreachable
        } else {
            Failure::Answered(proven)
        }
    }
}

/// One hello, and when the digests differ a repair (see [`repair_by_heads`]).
/// Returns the id the peer proved, or how it failed.
fn exchange(
    rep: &Arc<Replicator>,
    url: &str,
    last_round: &mut Option<LastRound>,
    pushed_ms: u64,
) -> Result<crate::message::AuthorId, Failure> {
    let store = rep.writer.store();
    let mut hello = hello_of(rep);
    hello.link = rep.core.lock().expect("core lock").word(url);
    let start = Instant::now();
    let (mut reply, nonce): (HelloReply, _) = match rep.client.call_with_nonce(url, "hello", &hello)
    {
        Ok(r) => r,
        Err(e) => {
            note_clock(rep, url, Some(&e));
            rep.failed(url, &e);
            return Err(Failure::of(&e, None));
        }
    };
    note_clock(rep, url, None);
    let rtt = start.elapsed().as_secs_f64() * 1000.0;
    if reply.node.id == rep.me.id {
        rep.forget_self(url);
        return Err(Failure::Answered(None));
    }
    if !proves_id(&reply, &nonce) {
        // Anyone with the network key can claim any id; only the key's holder can
        // sign the nonce. Without the proof nothing is bound to this address.
        let e = anyhow::anyhow!(
            "peer {url} claims the id {} without proving it holds its key",
            reply.node.id.short(12)
        );
        rep.failed(url, &e);
        return Err(Failure::Answered(None));
    }
    let proven = reply.node.id;
    rep.feed(
        Event::LinkAnswered {
            peer: url,
            word: reply.link,
        },
        None,
    );
    // A peer that reconciles sends no heads: what differs is asked of it instead.
    let fetched = if reply.reconcile && reply.heads.is_none() && reply.digest != hello.digest {
        super::reconcile_peer::peer_heads(&rep.client, url, store.heads()).map(Some)
    } else {
        let next = reply.heads_next;
        reply
            .heads
            .take()
            .map(|first| all_heads(rep, url, first, next))
            .transpose()
    };
    match fetched {
        Ok(heads) => reply.heads = heads,
        Err(e) => {
            rep.failed(url, &e);
            return Err(Failure::of(&e, Some(proven)));
        }
    }
    for p in reply.peers.iter().take(MAX_PEERS_SHARED) {
        rep.heard_of(p);
    }
    if let Some(theirs) = &reply.node.url
        && theirs != url
    {
        rep.heard_of(theirs);
    }
    let ours = store.summary().digest;
    let (behind, ahead, diverged) = match (&reply.heads, reply.digest == ours) {
        (_, true) | (None, false) => (0, 0, false),
        (Some(heads), false) => compare(rep, heads),
    };
    rep.peers.update(url, |p| {
        p.id = Some(reply.node.id);
        p.state = PeerState::Up;
        p.last_seen = Some(crate::time::now_ms());
        p.rtt_ms = Some((rtt * 100.0).round() / 100.0);
        p.in_sync = reply.digest == ours;
        p.behind = behind;
        p.ahead = ahead;
        p.diverged = diverged;
        p.last_error = None;
    });
    rep.forget_stale_addresses(url, &reply.node.id);
    let (ours_now, now_ms) = (store.heads(), crate::time::now_ms());
    let Some(heads) = &reply.heads else {
        // In sync: the peer held what this node holds.
        *last_round = Some(LastRound::new(&ours_now, &ours_now, now_ms));
        return Ok(proven);
    };
    let last = last_round
        .as_ref()
        .and_then(|l| l.if_pushes_since(pushed_ms, now_ms));
    if let Err(e) = repair_by_heads(rep, url, heads, last, ahead) {
        rep.failed(url, &e);
        return Err(Failure::of(&e, Some(proven)));
    }
    *last_round = Some(LastRound::new(heads, &ours_now, now_ms));
    Ok(proven)
}

/// The repair once two digests differ, given the peer's heads: pulls every
/// author's missing run and pushes the peer what it lacks, only as far as both sides
/// held at `last` (the previous exchange) while pushes flow. The one place a
/// reconciliation that ships less than every head (ranges, a digest tree) would
/// replace.
fn repair_by_heads(
    rep: &Replicator,
    url: &str,
    heads: &[Head],
    last: Option<&LastRound>,
    ahead: u64,
) -> Result<()> {
    let store = rep.writer.store();
    let wanted = rounds::to_pull(last, heads);
    // Seqs come from the peer: a lying one sends u64::MAX; nothing may wrap.
    let missing: u64 = wanted.iter().fold(0, |sum, h| {
        sum.saturating_add(h.seq.saturating_sub(store.seq_of(&h.author)))
    });
    if missing > 0 {
        pull(rep, url, &wanted, missing)?;
        unserved_claims(rep, url, heads, &wanted);
    }
    // Pulling alone would leave messages on a node that peers cannot call back (no
    // advertised address, or one they cannot reach): send what the peer lacks.
    if ahead > 0 {
        push_missing(rep, url, heads, last)?;
    }
    Ok(())
}

fn hello_of(rep: &Replicator) -> Hello {
    let peers = rep.peers_to_share();
    Hello {
        from: rep.me.clone(),
        digest: rep.writer.store().summary().digest,
        peers,
        reconcile: true,
        link: None,
    }
}

/// One hello to an address not adopted yet: the id it proves it holds.
pub fn probe(rep: &Replicator, url: &str) -> Result<crate::message::AuthorId> {
    let (reply, nonce): (HelloReply, _) =
        rep.client.call_with_nonce(url, "hello", &hello_of(rep))?;
    if !proves_id(&reply, &nonce) {
        anyhow::bail!("peer {url} does not prove the id it claims");
    }
    Ok(reply.node.id)
}

/// Whether the answer is signed by the key of the id it claims, over the nonce of
/// this very request.
fn proves_id(reply: &HelloReply, nonce: &[u8]) -> bool {
    reply.proof.as_ref().is_some_and(|sig| {
        crate::signature::verify(
            &reply.node.id,
            &super::protocol::proof_bytes(nonce, &reply.node.id),
            sig,
        )
    })
}

/// The hello's first page of heads and, when there are more, the following pages.
/// Each page must move forward and hold something, and all of them together at most
/// [`MAX_HEADS_TOTAL`], so a lying peer can neither loop this node nor fill it.
fn all_heads(
    rep: &Replicator,
    url: &str,
    first: Vec<Head>,
    mut next: Option<crate::message::AuthorId>,
) -> Result<Vec<Head>> {
    let mut heads = first;
    while let Some(after) = next {
        if heads.len() >= MAX_HEADS_TOTAL {
            anyhow::bail!("peer {url} sent more than {MAX_HEADS_TOTAL} heads");
        }
        let page: HeadsPage = rep.client.call(url, "heads", &HeadsRequest { after })?;
        let forward = !page.heads.is_empty()
            && page.heads.iter().all(|h| h.author.0 > after.0)
            && page.next.is_none_or(|n| n.0 > after.0);
        if !forward {
            anyhow::bail!("peer {url} sent a page of heads that does not move forward");
        }
        heads.extend(page.heads);
        next = page.next;
    }
    Ok(heads)
}

/// After a pull that went through, what the peer claimed and still did not serve
/// (it answered an empty or refused page) is a lie or a loss: it no longer counts
/// as `behind` (a claim of 1,000,000 messages kept `doctor` unhealthy for ever), and
/// it is reported as the peer's last error.
fn unserved_claims(rep: &Replicator, url: &str, heads: &[Head], wanted: &[Head]) {
    let store = rep.writer.store();
    let unserved: std::collections::HashSet<_> = wanted
        .iter()
        .filter(|h| store.seq_of(&h.author) < h.seq)
        .map(|h| h.author)
        .collect();
    if unserved.is_empty() {
        return;
    }
    let served: Vec<Head> = heads
        .iter()
        .filter(|h| !unserved.contains(&h.author))
        .copied()
        .collect();
    let (behind, _, _) = compare(rep, &served);
    rep.peers.update(url, |p| p.behind = behind);
    rep.trouble(
        url,
        format!(
            "peer {url} claims messages of {} authors that it does not serve",
            unserved.len()
        ),
        false,
    );
}

/// Pushes, for every author, the run of messages the peer lacks, up to what this
/// node held at the last round (a page per author per round; later rounds send the
/// rest).
fn push_missing(
    rep: &Replicator,
    url: &str,
    heads: &[Head],
    last_round: Option<&LastRound>,
) -> Result<()> {
    let store = rep.writer.store();
    let theirs: std::collections::HashMap<_, _> = heads.iter().map(|h| (h.author, h.seq)).collect();
    for ours in store.heads() {
        let have = theirs.get(&ours.author).copied().unwrap_or(0);
        let upto = rounds::to_push(last_round, &ours.author, ours.seq);
        if upto > have {
            let limit = usize::try_from(upto - have)
                .unwrap_or(MAX_PAGE)
                .min(MAX_PAGE);
            let run = store.range(&ours.author, have + 1, limit)?;
            push(rep, url, &run.iter().collect::<Vec<_>>(), Spread::Forwarded)?;
        }
    }
    Ok(())
}

/// How many messages the peer holds that this node lacks, and the reverse, and
/// whether some author's history differs between the two.
fn compare(rep: &Replicator, heads: &[Head]) -> (u64, u64, bool) {
    let store = rep.writer.store();
    let (mut behind, mut ahead, mut diverged) = (0u64, 0u64, false);
    let mut seen = std::collections::HashSet::new();
    for h in heads {
        seen.insert(h.author);
        let ours = store.seq_of(&h.author);
        if h.seq > ours {
            behind = behind.saturating_add(h.seq - ours);
        } else {
            ahead = ahead.saturating_add(ours - h.seq);
            if store.id_at(&h.author, h.seq) != Some(h.id) {
                diverged = true;
            }
        }
    }
    for h in store.heads() {
        if !seen.contains(&h.author) {
            ahead = ahead.saturating_add(h.seq);
        }
    }
    (behind, ahead, diverged)
}

/// Bytes of a message besides its body, as it travels (hex id, author, signature,
/// JSON keys): what the repair byte counter adds per message.
const MESSAGE_OVERHEAD: usize = 300;

/// Pulls every author's missing run from the peer, page by page, checking each
/// message before offering it to the store.
fn pull(rep: &Replicator, url: &str, heads: &[Head], behind: u64) -> Result<()> {
    let bar = (behind >= PROGRESS_FROM && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(behind);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "catching up from {msg} {bar:30} {pos}/{len} messages ({per_sec})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message(url.to_string());
        bar
    });
    crate::metrics::METRICS.repair_rounds.inc();
    for h in heads {
        pull_author(rep, url, h, bar.as_ref())?;
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(())
}

/// Pulls one author's run up to `head`. The next page is fetched while this one is
/// checked and stored, so a long catch-up costs about the checking alone rather than
/// checking plus a round trip and an fsync per page.
fn pull_author(
    rep: &Replicator,
    url: &str,
    head: &Head,
    bar: Option<&indicatif::ProgressBar>,
) -> Result<()> {
    let first = rep.writer.store().seq_of(&head.author) + 1;
    if first > head.seq {
        return Ok(());
    }
    std::thread::scope(|s| {
        // One page waits while the next is fetched: memory stays at two pages.
        let (pages, fetched) = std::sync::mpsc::sync_channel::<Result<Page>>(1);
        s.spawn(move || fetch_pages(rep, url, head, first, &pages));
        for page in fetched {
            let (page, peer_first) = page?;
            if !starts_where_asked(rep, url, head, first, &page, peer_first)? {
                break;
            }
            let received = page.len();
            let bytes: usize = page.iter().map(|m| m.body.len() + MESSAGE_OVERHEAD).sum();
            crate::metrics::METRICS.repair_bytes.add(bytes as u64);
            let stored = rep.accept(url, page)?;
            if let Some(bar) = bar {
                bar.inc(received as u64);
            }
            if received == 0 || stored == 0 {
                // Refused or answered nothing: stop; the next hello tries again.
                break;
            }
        }
        // Leaving the loop drops the receiver, which stops the fetcher.
        Ok(())
    })
}

/// A page of one author's messages, and the first seq the peer said it holds.
type Page = (Vec<Message>, Option<u64>);

/// Whether a page asked from seq `asked` can be stored. A peer that retired the older
/// messages answers from its first seq held and says so: a node holding nothing of the
/// author starts its history there (a late joiner, docs/FORMAT.md §12); a node that
/// holds an older part cannot bridge the gap from this peer, and says so once.
fn starts_where_asked(
    rep: &Replicator,
    url: &str,
    head: &Head,
    asked: u64,
    page: &[Message],
    peer_first: Option<u64>,
) -> Result<bool> {
    let Some(m) = page.first().filter(|m| m.seq > asked) else {
        return Ok(true);
    };
    let (Some(prev), true) = (m.prev, peer_first == Some(m.seq)) else {
        return Ok(true);
    };
    if asked == 1 {
        let start = crate::mbox::AuthorHead {
            seq: m.seq - 1,
            id: prev,
            clock: 0,
        };
        if rep.writer.adopt(head.author, start)? {
            crate::note!(
                "author {}: {url} holds its history from seq {} on (older messages retired); this node's history of it starts there too",
                head.author.short(12),
                m.seq
            );
        }
        return Ok(true);
    }
    if warn_once(head.author) {
        crate::warning!(
            "author {}: {url} holds its history from seq {} on only, and this node holds up to seq {}: seqs {}–{} must come from a peer that still has them",
            head.author.short(12),
            m.seq,
            asked - 1,
            asked,
            m.seq - 1
        );
    }
    Ok(false)
}

/// True the first time for `author` in this process (up to a bound): a gap no peer
/// fills is said once, not at every round.
fn warn_once(author: crate::message::AuthorId) -> bool {
    static WARNED: std::sync::Mutex<Vec<crate::message::AuthorId>> =
        std::sync::Mutex::new(Vec::new());
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if warned.contains(&author) || warned.len() >= 1024 {
        return false;
    }
    warned.push(author);
    true
}

/// Fetches `head.author`'s messages from `from` to `head.seq`, page by page, into
/// `pages`, until the receiver is gone, the peer has no more, or a call fails.
fn fetch_pages(
    rep: &Replicator,
    url: &str,
    head: &Head,
    mut from: u64,
    pages: &std::sync::mpsc::SyncSender<Result<Page>>,
) {
    while from <= head.seq {
        let limit = usize::try_from((head.seq - from).saturating_add(1))
            .unwrap_or(MAX_PAGE)
            .min(MAX_PAGE);
        let request = RangeRequest {
            author: head.author,
            from,
            limit,
        };
        let page = match rep.client.call::<_, Messages>(url, "range", &request) {
            Ok(page) => page,
            Err(e) => {
                let _ = pages.send(Err(e));
                return;
            }
        };
        let messages: Vec<Message> = page
            .messages
            .into_iter()
            .filter(|m| m.author == head.author)
            .collect();
        let next = messages.last().map_or(from, |m| m.seq.saturating_add(1));
        let done = messages.is_empty() || next <= from;
        if pages.send(Ok((messages, page.first))).is_err() || done {
            return;
        }
        from = next;
    }
}
