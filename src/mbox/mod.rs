//! The message box: a plain-text, append-only, hash-chained file of messages
//! (docs/FORMAT.md), the index on disk that serves reads from it, and the one writer that
//! appends to it with group commit.

mod archive;
mod audit;
mod checkpoint;
mod combine;
pub mod epoch;
mod epoch_read;
mod format;
mod head;
mod held;
mod history;
mod index;
mod lines;
mod order;
mod read;
mod runs;
mod store;
mod track;
mod verify;
mod writer;

pub use archive::{Archived, Retention, RetentionThread, Until, archive, prune};
pub use audit::{Audit, audit_path, last_audit, record_audit};
pub use checkpoint::checkpoint_path;
pub use format::{Line, encode_line, parse_line};
pub use head::{HeadRecord, head_path, read_head_file, read_head_record};
pub use history::{history_start, verify_history};
pub use index::index_path;
pub use read::{read_messages, sort_conversation};
pub use store::{Store, Summary};
pub use track::{AuthorHead, LineError, Tracker};
pub use verify::{EpochReport, LineReport, Report, verify_file, verify_file_with_progress};
pub use writer::{Outcome, StoreError, Writer};
