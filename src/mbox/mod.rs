//! The message box: a plain-text, append-only, hash-chained file of messages
//! (docs/FORMAT.md), the index that serves reads from it, and the one writer that
//! appends to it with group commit.

mod archive;
mod audit;
mod checkpoint;
mod combine;
pub mod epoch;
mod format;
mod history;
mod lines;
mod order;
mod read;
mod store;
mod track;
mod verify;
mod writer;

pub use archive::{Archived, Retention, RetentionThread, Until, archive, prune};
pub use audit::{Audit, audit_path, last_audit, record_audit};
pub use checkpoint::checkpoint_path;
pub use format::{Line, encode_line, parse_line};
pub use history::{EpochReport, verify_history};
pub use read::{read_messages, sort_conversation};
pub use store::{Store, Summary, head_path};
pub use track::{AuthorHead, LineError, Tracker};
pub use verify::{
    HeadRecord, LineReport, Report, read_head_file, read_head_record, verify_file,
    verify_file_with_progress,
};
pub use writer::{Outcome, StoreError, Writer};
