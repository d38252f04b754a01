//! What nodes say to each other under `/v1/`: each request and answer is one JSON
//! value, sealed (see [`crate::seal`]) and sent as a POST body.

use serde::{Deserialize, Serialize};

use crate::chain::Head;
use crate::hex::Hash;
use crate::mbox::Outcome;
use crate::message::{AuthorId, Message};

/// Longest list of messages in one push or one range answer.
pub const MAX_PAGE: usize = 500;
/// Most peer addresses exchanged in one hello.
pub const MAX_PEERS_SHARED: usize = 256;

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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HelloReply {
    pub node: NodeInfo,
    pub digest: Hash,
    pub peers: Vec<String>,
    /// Every author's head, sent only when the digests differ.
    pub heads: Option<Vec<Head>>,
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
}

/// A push as it is sent: the JSON of [`Messages`], written from borrowed messages
/// (those queued for a peer are shared by every peer's queue).
#[derive(Debug, Serialize)]
pub struct PushOf<'a> {
    pub messages: &'a [&'a Message],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sent_to_all: bool,
}

/// `/v1/push` answers with one outcome per message pushed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushReply {
    pub outcomes: Vec<Outcome>,
}

#[cfg(test)]
mod tests {
    use super::{Messages, PushOf};
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
            };
            let borrowed = PushOf {
                messages: &[&m, &m],
                sent_to_all,
            };
            assert_eq!(
                serde_json::to_string(&owned).unwrap(),
                serde_json::to_string(&borrowed).unwrap()
            );
        }
    }
}
