//! The browser page: the conversation, the peers, and a plain GET form that works
//! without JavaScript; `page.js` (served as `/page.js`) makes it live.

use sha2::{Digest, Sha256};

use crate::message::{AuthorId, Message};
use crate::replicate::peers::PeerView;
use crate::secret::Secret;

use super::http::Response;

/// How many of the latest messages the page shows.
pub const SHOWN: usize = 200;

/// The form field that carries the form key.
pub const FORM_KEY: &str = "form_key";

/// The header the page's script carries the form key in, for a `POST /send` on the
/// cookie alone. A cross-site form cannot set a header, and another origin's script
/// cannot without a CORS preflight, which the node never grants.
pub const FORM_KEY_HEADER: &str = "x-dshare-form-key";

/// The page's script: same-origin, so the policy can stay `script-src 'self'`.
pub const SCRIPT: &str = include_str!("page.js");

/// The policy of the page: its own script and inline style only; fetches to itself.
const POLICY: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// What the page shows.
pub struct View<'a> {
    pub messages: &'a [Message],
    /// Lines of the box when `messages` were read: where the script's long-poll starts.
    pub next: u64,
    pub peers: &'a [PeerView],
    pub me: &'a AuthorId,
    /// Set when the page was opened with the token in its URL and the browser has not
    /// shown the cookie yet; the form then carries it too, so sending works even where
    /// cookies are refused.
    pub token: Option<&'a str>,
    /// Goes into the form as [`FORM_KEY`].
    pub form_key: &'a str,
}

/// The key the page's form carries so that a send made with the cookie alone is
/// known to come from the page: derived from the token (so it needs no table and
/// survives restarts), useless for anything but that, and unreadable by another
/// origin's page, which can make the browser send a request but never read the
/// answer.
pub fn form_key(token: &Secret) -> Secret {
    let mut h = Sha256::new();
    h.update(b"dshare/1 page form key\n");
    h.update(token.expose());
    Secret::new(h.finalize().into())
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page, under a policy that runs only the node's own script.
pub fn render(view: &View) -> Response {
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dshare · {short}</title>
<style>{STYLE}</style>
<script src="/page.js" defer></script>
</head>
<body data-me="{me}">
<header>
<h1>dshare</h1>
<span class="meta">node {short} · the last {SHOWN} messages</span>
<ul id="peers" aria-label="peers">
{peers}</ul>
</header>
<main id="scroll">
<ol id="messages" data-next="{next}" aria-live="polite">
{rows}</ol>
</main>
<form action="/send" method="get">
<p id="error" role="alert" hidden></p>
<div class="compose">
{token_field}<input type="hidden" name="{FORM_KEY}" value="{form_key}">
<input type="hidden" name="from" value="page">
<textarea name="msg" rows="2" required aria-label="message" placeholder="Message" autofocus></textarea>
<button type="submit">Send</button>
</div>
</form>
</body>
</html>
"#,
        short = view.me.short(8),
        me = view.me.to_hex(),
        peers = peer_items(view.peers),
        next = view.next,
        rows = message_items(view.messages, view.me),
        token_field = view.token.map_or_else(String::new, |t| format!(
            "<input type=\"hidden\" name=\"token\" value=\"{}\">",
            escape(t)
        )),
        form_key = escape(view.form_key),
    );
    Response::new(200, "text/html; charset=utf-8", html)
        .with("Content-Security-Policy", POLICY)
        .with("X-Frame-Options", "DENY")
}

/// `GET /page.js`. Not secret, so it needs no token: it loads even where cookies
/// are refused.
pub fn script() -> Response {
    Response::new(200, "text/javascript; charset=utf-8", SCRIPT)
        .with("Cache-Control", "no-cache")
        .with("X-Content-Type-Options", "nosniff")
}

fn message_items(messages: &[Message], me: &AuthorId) -> String {
    let mut rows = String::new();
    for m in messages {
        let (class, who) = if m.author == *me {
            (" class=\"mine\"", "you".to_string())
        } else {
            ("", m.author.short(8))
        };
        let utc = crate::time::utc(m.ts);
        rows.push_str(&format!(
            "<li{class} data-id=\"{id}\"><div class=\"meta\"><span class=\"author\" title=\"{author}\">{who}</span> · <time datetime=\"{utc}\" data-ts=\"{ts}\">{shown}</time> · #{seq}</div><pre>{body}</pre></li>\n",
            id = m.id.to_hex(),
            author = m.author.to_hex(),
            ts = m.ts,
            shown = readable_utc(&utc),
            seq = m.seq,
            body = escape(&m.body)
        ));
    }
    if rows.is_empty() {
        rows.push_str("<li class=\"empty\">No messages yet.</li>\n");
    }
    rows
}

/// `2025-11-30T09:45:35Z` as `2025-11-30 09:45 UTC`; the script shows local time.
fn readable_utc(utc: &str) -> String {
    match (utc.get(..10), utc.get(11..16)) {
        (Some(day), Some(minute)) => format!("{day} {minute} UTC"),
        _ => utc.to_string(),
    }
}

fn peer_items(peers: &[PeerView]) -> String {
    if peers.is_empty() {
        return "<li class=\"none\">no peers</li>\n".to_string();
    }
    let mut items = String::new();
    for p in peers {
        let name =
            p.id.as_ref()
                .map_or_else(|| p.url.clone(), |id| id.short(8));
        items.push_str(&format!(
            "<li class=\"{state}\" title=\"{url} · {state}\">{name}</li>\n",
            state = escape(p.state.as_str()),
            url = escape(&p.url),
            name = escape(&name),
        ));
    }
    items
}

/// Laid out as a chat: the newest message and the form at the bottom of the screen.
/// The list sits in a `column-reverse` scroller, which opens scrolled to its end and
/// stays there as messages are added, with or without the script.
const STYLE: &str = "
* { box-sizing: border-box; }
body { margin: 0; height: 100vh; height: 100dvh; display: flex; flex-direction: column;
  font: 16px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #1d232a; background: #eef1f4; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: .25rem .75rem;
  padding: .5rem 1rem; background: #fff; border-bottom: 1px solid #d9dee4; }
h1 { font-size: 1.05rem; margin: 0; }
.meta { font-size: .78rem; color: #5b6672; }
#peers { list-style: none; margin: 0 0 0 auto; padding: 0; display: flex; flex-wrap: wrap; gap: .3rem; font-size: .78rem; }
#peers li { padding: .05rem .55rem; border-radius: 1rem; background: #eef1f4; color: #39434d; }
#peers li::before { content: '\\25CF'; margin-right: .3rem; color: #9aa4ae; }
#peers li.up::before { color: #23944a; }
#peers li.down::before { color: #c33b2f; }
#peers li.none::before { content: none; }
main { flex: 1; overflow-y: auto; display: flex; flex-direction: column-reverse; }
#messages { list-style: none; margin: 0 auto; padding: .75rem 1rem; width: 100%; max-width: 46rem; flex-shrink: 0; }
#messages li { width: fit-content; max-width: 88%; margin: .4rem 0; padding: .4rem .75rem .5rem;
  border-radius: .9rem .9rem .9rem .25rem; background: #fff; box-shadow: 0 1px 2px rgba(20,30,40,.08); }
#messages li.mine { margin-left: auto; background: #d7e8ff; border-radius: .9rem .9rem .25rem .9rem; }
#messages li.empty { margin: 2rem auto; background: none; box-shadow: none; color: #5b6672; }
.author { font-weight: 600; color: #2e3a46; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: .1rem 0 0; font: inherit; }
form { background: #fff; border-top: 1px solid #d9dee4; padding: .6rem 1rem calc(.6rem + env(safe-area-inset-bottom)); }
.compose { display: flex; gap: .5rem; max-width: 44rem; margin: 0 auto; }
textarea { flex: 1; min-width: 0; font: inherit; padding: .5rem .7rem; border: 1px solid #c3cbd3;
  border-radius: .6rem; resize: vertical; min-height: 2.75rem; max-height: 40vh; }
textarea:focus { outline: 2px solid #7fb0ff; border-color: #1f6feb; }
button { font: inherit; font-weight: 600; padding: 0 1.2rem; border: 0; border-radius: .6rem; background: #1f6feb; color: #fff; cursor: pointer; }
body.offline h1::after { content: ' · reconnecting…'; font-weight: 400; font-size: .8rem; color: #a4261b; }
button:disabled { background: #8fb3ee; }
#error { color: #a4261b; background: #fdecea; margin: 0 auto .5rem; max-width: 44rem; padding: .35rem .7rem; border-radius: .4rem; font-size: .9rem; }
";

#[cfg(test)]
mod tests {
    use crate::secret::Secret;

    #[test]
    fn the_form_key_depends_on_the_token_and_is_not_the_token() {
        let (a, b) = (Secret::random(), Secret::random());
        assert_eq!(super::form_key(&a), super::form_key(&a));
        assert_ne!(super::form_key(&a), super::form_key(&b));
        assert_ne!(super::form_key(&a), a);
    }

    #[test]
    fn times_read_as_minutes_in_utc() {
        assert_eq!(
            super::readable_utc("2025-11-30T09:45:35Z"),
            "2025-11-30 09:45 UTC"
        );
        assert_eq!(super::readable_utc("odd"), "odd");
    }

    #[test]
    fn a_peer_address_is_escaped_and_no_peers_says_so() {
        assert!(super::peer_items(&[]).contains("no peers"));
        let mut peer = crate::replicate::peers::PeerView::new("http://x/\"><script>");
        peer.state = crate::replicate::peers::PeerState::Down;
        let items = super::peer_items(&[peer]);
        assert!(!items.contains("<script>"), "{items}");
        assert!(items.contains("class=\"down\""), "{items}");
    }

    #[test]
    fn the_script_never_writes_markup() {
        assert!(!super::SCRIPT.contains("innerHTML"));
        assert!(!super::SCRIPT.contains("insertAdjacentHTML"));
        assert!(!super::SCRIPT.contains("document.write"));
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::escape("<script>alert('x')&\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;)&amp;&quot;&lt;/script&gt;"
        );
    }
}
