//! `POST /archive`: the node closes the oldest part of its box into an epoch while it
//! goes on serving (`dshare archive` on a home with a running node).

use crate::mbox::{self, Until};

use super::client_api::ClientApi;
use super::http::{Request, Response};

impl ClientApi {
    /// `before=MS` or `keep_messages=N` (one of them), and `prune=1` to delete the
    /// lines of every closed epoch afterwards. Bad parameters change nothing.
    pub(super) fn archive(&self, req: &Request) -> Response {
        let until = match until(req) {
            Ok(until) => until,
            Err(why) => return Response::text(400, why),
        };
        let prune = req.param("prune") == Some("1");
        let path = self.writer.store().path().to_path_buf();
        let mut answer = serde_json::json!({"archived": false});
        if let Some(until) = until {
            match mbox::archive(&self.writer, &self.identity, until) {
                Ok(Some(a)) => answer = a.to_json(&path),
                Ok(None) => {}
                Err(e) => {
                    return Response::text(500, format!("archive failed, nothing changed: {e:#}"));
                }
            }
        }
        if prune {
            match mbox::prune(&path) {
                Ok(pruned) => answer["pruned"] = serde_json::json!(pruned),
                Err(e) => return Response::text(500, format!("cannot prune epochs: {e:#}")),
            }
        }
        Response::json(200, &answer)
    }
}

fn until(req: &Request) -> Result<Option<Until>, String> {
    let number = |name: &str| {
        req.param(name)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("{name} must be a whole number"))
            })
            .transpose()
    };
    match (number("before")?, number("keep_messages")?) {
        (Some(_), Some(_)) => Err("give before or keep_messages, not both".into()),
        (Some(t), None) => Ok(Some(Until::Before(t))),
        (None, Some(n)) => Ok(Some(Until::KeepMessages(n))),
        (None, None) if req.param("prune") == Some("1") => Ok(None),
        (None, None) => Err("give before=MS or keep_messages=N (or prune=1)".into()),
    }
}
