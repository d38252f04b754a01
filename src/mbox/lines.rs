//! Reading a box in large blocks of whole lines, so that the work on each line
//! (parsing, ids, signatures) can be spread over the cores while the checks that
//! link lines (chain, seq, prev) run in order.

use std::io::Read;

/// Bytes read at a time: about 1,600 lines of typical messages, enough to keep every
/// core busy. Larger blocks were no faster, and the memory they passed through stayed
/// with the process (4 MiB blocks left a node holding 200,000 messages 6 MB larger).
const BLOCK: usize = 1 << 20;

/// Room in a new buffer, beyond [`BLOCK`], for the start of a line carried over from
/// the block before, so that the buffer rarely grows.
const CARRY_ROOM: usize = 64 << 10;

/// Calls `each` with consecutive blocks of lines of `reader`, in file order. Every line
/// keeps its `\n`; only the last line of the file can lack one (a torn write), and it
/// comes alone in the last block. `each` returns `false` to stop early.
pub(super) fn blocks<E>(
    reader: impl Read,
    mut each: impl FnMut(&[&[u8]]) -> Result<bool, E>,
    io_error: impl Fn(std::io::Error) -> E,
) -> Result<(), E> {
    let mut blocks = Blocks::new(reader);
    while let Some(block) = blocks.next() {
        let block = block.map_err(&io_error)?;
        if !each(&split(&block))? {
            break;
        }
        blocks.recycle(block);
    }
    Ok(())
}

/// The lines of a block from [`Blocks`], each with its `\n`.
pub(super) fn split(block: &[u8]) -> Vec<&[u8]> {
    block.split_inclusive(|&b| b == b'\n').collect()
}

/// The blocks of lines of a reader, in file order, each a buffer of its own (to be
/// passed to another thread) holding whole lines: [`blocks`] as an iterator. A read
/// error ends it.
pub(super) struct Blocks<R> {
    reader: R,
    /// The start of a line that the block before ended in the middle of.
    carry: Vec<u8>,
    /// A spent block's buffer, to read the next block into.
    spare: Vec<u8>,
    eof: bool,
}

impl<R: Read> Blocks<R> {
    pub(super) fn new(reader: R) -> Blocks<R> {
        Blocks {
            reader,
            carry: Vec::new(),
            spare: Vec::new(),
            eof: false,
        }
    }

    /// Gives back a block's buffer once its lines are done with: a reader on one thread
    /// then keeps one buffer, not a new one per block.
    pub(super) fn recycle(&mut self, mut block: Vec<u8>) {
        block.clear();
        self.spare = block;
    }
}

impl<R: Read> Iterator for Blocks<R> {
    type Item = std::io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.eof {
            // What is left is a last line without a line feed.
            let last = std::mem::take(&mut self.carry);
            return (!last.is_empty()).then_some(Ok(last));
        }
        let mut buf = std::mem::take(&mut self.spare);
        if buf.capacity() == 0 {
            buf.reserve_exact(BLOCK + CARRY_ROOM);
        }
        buf.append(&mut self.carry);
        loop {
            buf.reserve(BLOCK);
            // `Take` reads until it has BLOCK bytes or the file ends, and retries
            // interrupted reads.
            match (&mut self.reader).take(BLOCK as u64).read_to_end(&mut buf) {
                Ok(n) => self.eof = n < BLOCK,
                Err(e) => {
                    self.eof = true;
                    return Some(Err(e));
                }
            }
            if let Some(end) = buf.iter().rposition(|&b| b == b'\n') {
                self.carry.extend_from_slice(&buf[end + 1..]);
                buf.truncate(end + 1);
                return Some(Ok(buf));
            }
            if self.eof {
                return (!buf.is_empty()).then_some(Ok(buf));
            }
            // No line feed in a whole block: one very long line; read on.
        }
    }
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

    /// Two lines, then a failing read.
    struct Failing(&'static [u8]);

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("disk gone"));
            }
            let n = self.0.len().min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_ends_the_blocks() {
        let mut blocks = Blocks::new(Failing(b"a\nb"));
        assert!(
            blocks.next().unwrap().is_err(),
            "the block was never complete"
        );
        assert!(blocks.next().is_none());
    }
}
