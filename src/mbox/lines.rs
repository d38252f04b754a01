//! Reading a box in large blocks of whole lines, so that the work on each line
//! (parsing, ids, signatures) can be spread over the cores while the checks that
//! link lines (chain, seq, prev) run in order.

use std::io::Read;

/// Bytes read at a time: about 1,600 lines of typical messages, enough to keep every
/// core busy. Larger blocks were no faster, and the memory they passed through stayed
/// with the process (4 MiB blocks left a node holding 200,000 messages 6 MB larger).
const BLOCK: usize = 1 << 20;

/// Calls `each` with consecutive blocks of lines of `reader`, in file order. Every line
/// keeps its `\n`; only the last line of the file can lack one (a torn write), and it
/// comes alone in the last block. `each` returns `false` to stop early.
pub(super) fn blocks<E>(
    mut reader: impl Read,
    mut each: impl FnMut(&[&[u8]]) -> Result<bool, E>,
    io_error: impl Fn(std::io::Error) -> E,
) -> Result<(), E> {
    let mut buf: Vec<u8> = Vec::with_capacity(BLOCK + (64 << 10));
    let mut eof = false;
    while !eof {
        // Read BLOCK more bytes after the partial line carried over.
        let start = buf.len();
        buf.resize(start + BLOCK, 0);
        let mut filled = start;
        while filled < buf.len() {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        buf.truncate(filled);
        let complete = match buf.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            // No line feed in a whole block: one very long line; read on.
            None if !eof => continue,
            None => 0,
        };
        let lines: Vec<&[u8]> = buf[..complete].split_inclusive(|&b| b == b'\n').collect();
        if !lines.is_empty() && !each(&lines)? {
            return Ok(());
        }
        buf.drain(..complete);
        if eof && !buf.is_empty() {
            let last: &[u8] = &buf;
            each(&[last])?;
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(data: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        blocks(
            data,
            |ls: &[&[u8]]| -> Result<bool, ()> {
                out.extend(ls.iter().map(|l| l.to_vec()));
                Ok(true)
            },
            |_| (),
        )
        .unwrap();
        out
    }

    #[test]
    fn lines_keep_their_line_feed_and_a_torn_tail_comes_last() {
        assert_eq!(collect(b""), Vec::<Vec<u8>>::new());
        assert_eq!(collect(b"a\nbc\n"), vec![b"a\n".to_vec(), b"bc\n".to_vec()]);
        assert_eq!(collect(b"a\nbc"), vec![b"a\n".to_vec(), b"bc".to_vec()]);
        let long = vec![b'x'; BLOCK * 2 + 5];
        let mut data = long.clone();
        data.push(b'\n');
        data.extend_from_slice(b"y\n");
        let got = collect(&data);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].len(), long.len() + 1);
    }
}
