//! `GET /log`: the last messages in conversation order, or those after a position in arrival order (waiting for one); one JSON message a line, and `X-Dshare-Next` says where to go on from.

pub const PATH: &str = "/log";
/// The header that says how many lines of the box the answer reaches.
pub const NEXT_HEADER: &str = "X-Dshare-Next";

/// What a client asks `/log` for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogQuery {
    /// The last `n` messages (the node's page without `n`).
    Last { n: Option<u64> },
    /// Up to `n` messages after the first `after` lines, waiting up to `wait_s`
    /// seconds for one.
    Since {
        after: u64,
        n: Option<u64>,
        wait_s: Option<u64>,
    },
}

impl LogQuery {
    /// The query parameters, in the order the command line has always sent them.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        let mut params = Vec::new();
        match *self {
            LogQuery::Last { n } => params.extend(n.map(|n| ("n", n.to_string()))),
            LogQuery::Since { after, n, wait_s } => {
                params.push(("since", after.to_string()));
                params.extend(n.map(|n| ("n", n.to_string())));
                params.extend(wait_s.map(|w| ("wait", w.to_string())));
            }
        }
        params
    }

    /// Reads the query from the request's parameters; whole numbers or nothing.
    pub fn parse<'a>(param: impl Fn(&str) -> Option<&'a str>) -> Result<LogQuery, &'static str> {
        let number = |name: &str| param(name).map(str::parse::<u64>).transpose();
        match (number("n"), number("since"), number("wait")) {
            (Ok(n), Ok(None), Ok(_)) => Ok(LogQuery::Last { n }),
            (Ok(n), Ok(Some(after)), Ok(wait_s)) => Ok(LogQuery::Since { after, n, wait_s }),
            _ => Err("n, since and wait must be whole numbers"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LogQuery;

    fn parse(pairs: &[(&'static str, &'static str)]) -> Result<LogQuery, &'static str> {
        LogQuery::parse(|name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v))
    }

    #[test]
    fn queries_read_back_from_their_params() {
        for query in [
            LogQuery::Last { n: None },
            LogQuery::Last { n: Some(0) },
            LogQuery::Since {
                after: 7,
                n: Some(10),
                wait_s: None,
            },
            LogQuery::Since {
                after: 0,
                n: None,
                wait_s: Some(30),
            },
        ] {
            let params = query.params();
            let read = LogQuery::parse(|name| {
                params
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.as_str())
            });
            assert_eq!(read, Ok(query));
        }
        assert!(parse(&[("n", "-1")]).is_err());
        assert!(parse(&[("since", "x")]).is_err());
        assert!(parse(&[("since", "1"), ("wait", "1.5")]).is_err());
    }
}
