//! `dshare init`: create a home.

use anyhow::Result;

use crate::exit::Code;
use crate::home::Home;

use super::Output;

pub fn run(home: &Home, out: Output) -> Result<Code> {
    home.init(None)?;
    out.note(format!(
        "created {} (author {})",
        home.dir().display(),
        home.identity()?.author()
    ));
    Ok(Code::Success)
}
