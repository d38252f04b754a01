use std::io::Result as IoResult;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use crate::connection::Connection;

/// One half of a connection: the read half shuts the socket down for reading when
/// dropped, the write half for writing, so each side of a request ends on its own.
pub struct RefinedTcpStream {
    stream: Connection,
    close_read: bool,
    close_write: bool,
    /// dshare patch: set when the connection is handed back to the waiting room
    /// through a third handle: the halves then close their handles and leave the
    /// socket open.
    handed_back: Arc<AtomicBool>,
}

impl RefinedTcpStream {
    /// The read and the write half of `stream`.
    ///
    /// dshare patch: fails (and the connection is closed) when the second handle
    /// cannot be made, `EMFILE` when the process is out of file descriptors. Stock 0.12
    /// unwrapped it, so running out of descriptors panicked the thread that accepted.
    ///
    /// dshare patch: with `handed_back` set, dropping a half shuts nothing down.
    pub(crate) fn new(
        stream: Connection,
        handed_back: &Arc<AtomicBool>,
    ) -> IoResult<(RefinedTcpStream, RefinedTcpStream)> {
        let read = RefinedTcpStream {
            stream: stream.try_clone()?,
            close_read: true,
            close_write: false,
            handed_back: Arc::clone(handed_back),
        };

        let write = RefinedTcpStream {
            stream,
            close_read: false,
            close_write: true,
            handed_back: Arc::clone(handed_back),
        };

        Ok((read, write))
    }

    pub(crate) fn peer_addr(&mut self) -> IoResult<Option<SocketAddr>> {
        self.stream.peer_addr()
    }
}

impl Drop for RefinedTcpStream {
    fn drop(&mut self) {
        if self.handed_back.load(Relaxed) {
            return;
        }
        if self.close_read {
            self.stream.shutdown(Shutdown::Read).ok();
        }

        if self.close_write {
            self.stream.shutdown(Shutdown::Write).ok();
        }
    }
}

impl Read for RefinedTcpStream {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        self.stream.read(buf)
    }
}

impl Write for RefinedTcpStream {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> IoResult<()> {
        self.stream.flush()
    }
}
