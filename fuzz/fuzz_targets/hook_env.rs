//! The hook environment builder: for any body a message can carry, every variable
//! stays within the cap and free of NUL, and what is left out is named.
#![no_main]

use dshare::hooks::{Delivery, MAX_VARIABLE, environment};
use dshare::identity::Identity;
use dshare::message::{Draft, MAX_BODY, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    if body.len() > MAX_BODY {
        return;
    }
    let who = Identity::from_secret(&dshare::secret::Secret::new([7; 32]));
    let message = Message::sign(
        &Draft {
            author: who.author(),
            seq: 1,
            prev: None,
            clock: 1,
            ts: 1,
            body,
        },
        &who,
    );
    let env = environment(&Delivery {
        message: &message,
        position: 1,
        cursor: None,
        attempt: 1,
        redelivered: false,
    });
    let omitted = &env.iter().find(|(n, _)| *n == "DSHARE_OMITTED").unwrap().1;
    for (name, value) in &env {
        assert!(value.len() <= MAX_VARIABLE, "{name} is {} bytes", value.len());
        assert!(!value.contains('\0'), "{name} holds a NUL");
        assert!(!omitted.split(' ').any(|o| o == *name), "{name} is both set and omitted");
    }
});
