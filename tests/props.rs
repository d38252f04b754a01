//! Property tests: no input makes the parsers or the seal opener panic, and what is
//! written reads back the same.

use dshare::chain;
use dshare::identity::Identity;
use dshare::mbox::{encode_line, parse_line};
use dshare::message::{Draft, Message};
use dshare::net::query;
use dshare::seal::Keyring;
use dshare::secret::Secret;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_text_parses_or_is_refused_without_panic(text in any::<String>()) {
        let _ = parse_line(&text);
        let _ = serde_json::from_str::<Message>(&text).map(|m| m.check());
        let _ = query::decode(&text);
        let _ = query::parse(&text);
    }

    #[test]
    fn json_shaped_garbage_is_refused_without_panic(
        seq in any::<u64>(), clock in any::<u64>(), ts in any::<u64>(),
        body in ".{0,64}", id in "[0-9a-f]{0,70}", sig in "[0-9a-fA-F]{0,130}",
    ) {
        let text = format!(
            r#"{{"chain":"{id}","id":"{id}","author":"{id}","seq":{seq},"prev":null,"clock":{clock},"ts":{ts},"body":{},"sig":"{sig}"}}"#,
            serde_json::to_string(&body).unwrap()
        );
        if let Ok(line) = parse_line(&text) {
            prop_assert!(line.message.check().is_err());
        }
    }

    #[test]
    fn any_bytes_never_open_a_seal_and_never_panic(blob in proptest::collection::vec(any::<u8>(), 0..512)) {
        let ring = Keyring::new(&Secret::new([7; 32]));
        prop_assert!(ring.open(b"aad", &blob, 1_000_000).is_err());
    }

    #[test]
    fn a_signed_message_round_trips_through_its_box_line(body in ".{0,300}", seq in 1u64..1000, clock in 1u64..1_000_000) {
        let key = Identity::from_secret(&Secret::new([3; 32]));
        let prev = (seq > 1).then_some(dshare::hex::Hex([1; 32]));
        let m = Message::sign(&Draft { author: key.author(), seq, prev, clock, ts: 5, body: &body }, &key);
        prop_assert_eq!(m.check(), Ok(()));
        let chain = chain::step(&chain::GENESIS, &m.id);
        let line = encode_line(&chain, &m);
        prop_assert!(!line.contains('\n'));
        let back = parse_line(&line).unwrap();
        prop_assert_eq!(back.message, m);
        prop_assert_eq!(back.chain, chain);
    }

    #[test]
    fn any_text_survives_percent_encoding(text in any::<String>()) {
        prop_assert_eq!(query::decode(&query::encode(&text)).unwrap(), text);
    }
}
