//! What nodes say to each other under `/v1/`: each request and answer is one JSON
//! value, sealed (see [`crate::seal`]) and sent as a POST body.

use serde::{Deserialize, Serialize};

use super::core::Word;
use crate::chain::Head;
use crate::hex::Hash;
use crate::mbox::Outcome;
use crate::message::{AuthorId, Message, Signature};

/// Longest list of messages in one push or one range answer.
pub const MAX_PAGE: usize = 500;
/// Most peer addresses exchanged in one hello.
pub const MAX_PEERS_SHARED: usize = 256;
/// Most heads in one answer (a hello's or a `heads` page). A head is about 163 bytes
/// of JSON, so a page is about 330 KiB, far under the 8 MiB a peer reads: before
/// heads were paged, a network of some 53,000 authors had answers no peer would read,
/// and its nodes stopped talking to each other for good.
pub const MAX_HEADS_PAGE: usize = 2048;

/// Who a node is and where others can reach it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: AuthorId,
    /// The address peers should use; `None` when the node does not advertise one.
    pub url: Option<String>,
}

/// `/v1/hello`: liveness, peer exchange, and the digest that tells whether a pull is
/// needed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    pub from: NodeInfo,
    pub digest: Hash,
    pub peers: Vec<String>,
    /// The sender finds differences with `/v1/reconcile`: a node that answers it
    /// sends no heads back. Left out when false; a node that does not know the field
    /// ignores it and sends heads as before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reconcile: bool,
    /// The sender's word on a link with the greeted node (see [`Word`]); left out
    /// by a node that does not know links, and in a probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<Word>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HelloReply {
    pub node: NodeInfo,
    pub digest: Hash,
    pub peers: Vec<String>,
    /// The first page of the heads, authors in ascending order, sent only when the
    /// digests differ.
    pub heads: Option<Vec<Head>>,
    /// Set when `heads` is not all of them: the last author of the page; the next
    /// page is asked for with `heads` from there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads_next: Option<AuthorId>,
    /// The node's signature over [`proof_bytes`] of the hello's nonce: it holds the
    /// key of `node.id`, so the address it answered at may be bound to that id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<Signature>,
    /// This node answers `/v1/reconcile` (see [`Reconcile`]); a node that does not
    /// says nothing, and is asked for pages of heads instead.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reconcile: bool,
    /// The answering node's word on a link with the greeter, after its hello;
    /// left out by a node that does not know links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<Word>,
}

/// `/v1/reconcile`: the initiator's ranges, answered with the responder's (the
/// messages, their checks and bounds are in [`super::reconcile`]).
pub type Reconcile = super::reconcile::Ranges;

/// What a hello answer's `proof` signs: the request's nonce (fresh, so the proof
/// cannot be replayed from another exchange) and the id claimed.
pub fn proof_bytes(request_nonce: &[u8], id: &AuthorId) -> Vec<u8> {
    let mut bytes = b"dshare/1 hello proof\n".to_vec();
    bytes.extend_from_slice(request_nonce);
    bytes.extend_from_slice(&id.0);
    bytes
}

/// `/v1/heads`: the page of heads of the authors after `after`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeadsRequest {
    pub after: AuthorId,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeadsPage {
    pub heads: Vec<Head>,
    /// As in [`HelloReply::heads_next`]: `None` on the last page.
    pub next: Option<AuthorId>,
}

/// The page of at most `limit` (at least 1) of `heads` whose authors come after
/// `after`, in ascending order, and the cursor of the next page if there is one.
pub fn heads_page(
    mut heads: Vec<Head>,
    after: Option<&AuthorId>,
    limit: usize,
) -> (Vec<Head>, Option<AuthorId>) {
    if let Some(after) = after {
        heads.retain(|h| h.author.0 > after.0);
    }
    heads.sort_unstable_by_key(|h| h.author.0);
    let limit = limit.max(1);
    if heads.len() <= limit {
        return (heads, None);
    }
    heads.truncate(limit);
    let next = heads.last().map(|h| h.author);
    (heads, next)
}

/// `/v1/range`: `limit` of `author`'s messages from seq `from` on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RangeRequest {
    pub author: AuthorId,
    pub from: u64,
    pub limit: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Messages {
    pub messages: Vec<Message>,
    /// On a push: the sender wrote these messages and pushed them to every peer it
    /// knows, so the receiver stores them without forwarding them (forwarding would
    /// only bring duplicates). Left out when false; a node that does not know the field
    /// ignores it and forwards as before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sent_to_all: bool,
    /// On a range answer: the first seq of the author the answering node holds, when
    /// it is above 1 (it retired the older ones into epochs, or joined after they were
    /// retired everywhere). Left out otherwise; an older node ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<u64>,
    /// On a push: the sender's advertised address. It holds these messages, so the
    /// receiver neither pushes nor offers them back. Left out by a node without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// A push as it is sent: the JSON of [`Messages`], written from borrowed messages
/// (those queued for a peer are shared by every peer's queue).
#[derive(Debug, Serialize)]
pub struct PushOf<'a> {
    pub messages: &'a [&'a Message],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sent_to_all: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<&'a str>,
}

/// `/v1/offer`: the lazy half of eager/lazy push. The ids of messages the sender
/// holds (at most [`MAX_PAGE`]); the receiver says which it lacks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Offer {
    pub ids: Vec<Head>,
    /// The sender's advertised address (it holds these messages), as in a push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// One flag per offered id, in order: true for a message the receiver lacks (the
/// sender then pushes it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OfferReply {
    pub want: Vec<bool>,
}

/// `/v1/push` answers with one outcome per message pushed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushReply {
    pub outcomes: Vec<Outcome>,
}

#[cfg(test)]
mod tests {
    use super::{Messages, PushOf, heads_page};
    use crate::chain::Head;

    fn head(author: u8) -> Head {
        Head {
            author: crate::hex::Hex([author; 32]),
            seq: 1,
            id: crate::hex::Hex([0; 32]),
        }
    }

    #[test]
    fn heads_come_in_ordered_pages_that_cover_every_author_once() {
        let all: Vec<Head> = [5, 1, 4, 2, 3].into_iter().map(head).collect();
        let (first, next) = heads_page(all.clone(), None, 2);
        assert_eq!(first, [head(1), head(2)]);
        let (second, next) = heads_page(all.clone(), next.as_ref(), 2);
        assert_eq!(second, [head(3), head(4)]);
        let (last, next) = heads_page(all.clone(), next.as_ref(), 2);
        assert_eq!((last, next), (vec![head(5)], None));
        let (whole, next) = heads_page(all, None, 0);
        assert_eq!(
            (whole.len(), next.is_some()),
            (1, true),
            "a page holds one at least"
        );
    }

    use crate::identity::Identity;
    use crate::message::{Draft, Message};

    #[test]
    fn a_push_of_borrowed_messages_is_the_same_json() {
        let id = Identity::generate();
        let m = Message::sign(
            &Draft {
                author: id.author(),
                seq: 1,
                prev: None,
                clock: 1,
                ts: 1,
                body: "hi \"there\"",
            },
            &id,
        );
        for sent_to_all in [false, true] {
            let owned = Messages {
                messages: vec![m.clone(), m.clone()],
                sent_to_all,
                first: None,
                from: Some("http://10.0.0.1:7070".into()),
            };
            let borrowed = PushOf {
                messages: &[&m, &m],
                sent_to_all,
                from: Some("http://10.0.0.1:7070"),
            };
            assert_eq!(
                serde_json::to_string(&owned).unwrap(),
                serde_json::to_string(&borrowed).unwrap()
            );
        }
    }
}
