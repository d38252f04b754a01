//! The browser page: the conversation and a plain GET form. No JavaScript.

use sha2::{Digest, Sha256};

use crate::message::{AuthorId, Message};
use crate::secret::Secret;

use super::http::Response;

/// How many of the latest messages the page shows.
pub const SHOWN: usize = 200;

/// The form field that carries the form key.
pub const FORM_KEY: &str = "form_key";

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

/// The page. `token` is set when the page was opened with the token in its URL; the
/// form then carries it too, so sending works even where cookies are refused.
/// `form_key` goes into the form as [`FORM_KEY`].
pub fn render(
    messages: &[Message],
    me: &AuthorId,
    token: Option<&str>,
    form_key: &str,
) -> Response {
    let mut rows = String::new();
    for m in messages {
        let mine = if m.author == *me {
            " class=\"mine\""
        } else {
            ""
        };
        rows.push_str(&format!(
            "<li{mine}><span class=\"meta\">{} · {} #{}</span><pre>{}</pre></li>\n",
            crate::time::utc(m.ts),
            m.author.short(8),
            m.seq,
            escape(&m.body)
        ));
    }
    if rows.is_empty() {
        rows.push_str("<li class=\"empty\">No messages yet.</li>\n");
    }
    let token_field = token.map_or_else(String::new, |t| {
        format!(
            "<input type=\"hidden\" name=\"token\" value=\"{}\">",
            escape(t)
        )
    });
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dshare · {short}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 48rem; margin: 1rem auto; padding: 0 1rem; }}
ol {{ list-style: none; padding: 0; }}
li {{ border-bottom: 1px solid #ddd; padding: .4rem 0; }}
li.mine .meta {{ color: #246; }}
.meta {{ color: #666; font-size: .85rem; }}
pre {{ white-space: pre-wrap; overflow-wrap: anywhere; margin: .2rem 0; font-family: inherit; }}
textarea {{ width: 100%; box-sizing: border-box; }}
</style>
</head>
<body>
<h1>dshare</h1>
<p class="meta">node {short} · showing the last {shown} messages, oldest first</p>
<ol id="messages">
{rows}</ol>
<form action="/send" method="get">
{token_field}<input type="hidden" name="{FORM_KEY}" value="{form_key}">
<input type="hidden" name="from" value="page">
<textarea name="msg" rows="3" required aria-label="message"></textarea>
<button type="submit">Send</button>
</form>
</body>
</html>
"#,
        short = me.short(8),
        shown = SHOWN,
        form_key = escape(form_key),
    );
    Response::new(200, "text/html; charset=utf-8", html)
        .with(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        )
        .with("X-Frame-Options", "DENY")
}

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
    fn escapes_markup() {
        assert_eq!(
            super::escape("<script>alert('x')&\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;)&amp;&quot;&lt;/script&gt;"
        );
    }
}
