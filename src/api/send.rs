//! `/send` (with the node's client token) and `/c/send` (sealed with a client key): one message in, the stored message out, with the peers that confirmed it when the sender waits.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Want;
use crate::message::Message;

pub const PATH: &str = "/send";
/// The sealed route for machines that are not nodes (`dshare client add`).
pub const REMOTE_PATH: &str = "/c/send";
/// The associated data of a sealed remote send.
pub const REMOTE_AAD: &[u8] = b"dshare/1 client /c/send";

/// What the command line asks of `POST /send` besides the body: a JSON answer, an
/// idempotency key, and how many peers to wait for and how long.
#[derive(Debug, Clone, Default)]
pub struct SendQuery {
    pub key: Option<String>,
    pub wait: Option<(Want, Duration)>,
}

impl SendQuery {
    /// The query parameters, in the order the node has always been sent them.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        let mut params = vec![("format", "json".to_string())];
        if let Some(key) = &self.key {
            params.push(("key", key.clone()));
        }
        if let Some((want, timeout)) = self.wait {
            params.push(("wait", want.to_string()));
            params.push(("timeout_ms", timeout.as_millis().to_string()));
        }
        params
    }
}

/// A send's JSON answer: the message as stored (its keys first, in the box's order),
/// `"repeat": true` when an idempotency key named one stored before, and with a wait
/// the peers that hold it (`acked`) and those that did not confirm (`missing`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendAnswer {
    #[serde(flatten)]
    pub message: Message,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repeat: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<Vec<String>>,
}

impl SendAnswer {
    pub fn stored(message: Message, repeat: bool) -> SendAnswer {
        SendAnswer {
            message,
            repeat,
            acked: None,
            missing: None,
        }
    }
}

/// What a remote sender seals for `/c/send`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteSend {
    pub body: String,
    pub wait: Option<Want>,
    pub timeout_ms: Option<u64>,
    /// An idempotency key: a repeat within the window stores nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// What `/c/send` seals back: the status `/send` would have answered with, and its
/// answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteAnswer {
    pub status: u16,
    pub answer: RemoteBody,
}

/// The stored message, or the node's words on why not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RemoteBody {
    Sent(Box<SendAnswer>),
    Refused(String),
}

impl RemoteBody {
    /// The answer as `/send` would have given it: the JSON of the message, or the text.
    pub fn text(&self) -> String {
        match self {
            RemoteBody::Sent(answer) => serde_json::to_string(answer).expect("answers serialize"),
            RemoteBody::Refused(text) => text.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::message::Draft;

    fn message() -> Message {
        let key = Identity::generate();
        let draft = Draft {
            author: key.author(),
            seq: 1,
            prev: None,
            clock: 1,
            ts: 5,
            body: "hi",
        };
        Message::sign(&draft, &key)
    }

    #[test]
    fn a_send_answer_is_the_message_then_repeat_then_the_peers() {
        let m = message();
        let plain = serde_json::to_string(&m).unwrap();
        let mut answer = SendAnswer::stored(m.clone(), false);
        assert_eq!(serde_json::to_string(&answer).unwrap(), plain);
        answer.repeat = true;
        answer.acked = Some(vec!["http://a:1".into()]);
        answer.missing = Some(vec![]);
        let text = serde_json::to_string(&answer).unwrap();
        let expected = format!(
            "{},\"repeat\":true,\"acked\":[\"http://a:1\"],\"missing\":[]}}",
            plain.strip_suffix('}').unwrap()
        );
        assert_eq!(text, expected);
        assert_eq!(serde_json::from_str::<SendAnswer>(&text).unwrap(), answer);
    }

    #[test]
    fn a_remote_answer_is_a_message_or_words() {
        let sent = RemoteAnswer {
            status: 200,
            answer: RemoteBody::Sent(Box::new(SendAnswer::stored(message(), false))),
        };
        let refused = RemoteAnswer {
            status: 413,
            answer: RemoteBody::Refused("too long".into()),
        };
        for answer in [sent, refused] {
            let text = serde_json::to_string(&answer).unwrap();
            assert_eq!(serde_json::from_str::<RemoteAnswer>(&text).unwrap(), answer);
        }
    }

    #[test]
    fn a_query_names_the_wait_in_words() {
        let query = SendQuery {
            key: Some("k1".into()),
            wait: Some((Want::Count(2), Duration::from_millis(1500))),
        };
        let params = query.params();
        let flat: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            flat,
            [
                ("format", "json"),
                ("key", "k1"),
                ("wait", "2"),
                ("timeout_ms", "1500")
            ]
        );
    }
}
