//! Files and streams `popsim run` writes besides the report: the event log (`--trace`) and
//! the HTML timeline (`--timeline`).

use reports::{event_line, History};
use std::io::Write as _;
use std::path::Path;

/// Refuses an output path that cannot be written, before the run starts: its directory must
/// exist and it must not be a directory itself.
pub fn check_destination(flag: &str, path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!(
            "{flag} {}: is a directory; give a file name",
            path.display()
        ));
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(format!(
            "{flag} {}: the directory {} does not exist",
            path.display(),
            parent.display()
        ));
    }
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`: a reader
/// sees the old file or the whole new one, never a partial one, and an error leaves nothing
/// behind.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The event log: one `[t=12.345s node] …` line per recorded event, in recorded order (which
/// is virtual-time order). To stdout when the report is text, else to stderr so that JSON and
/// Markdown on stdout stay clean.
pub fn print_trace(history: &History, to_stdout: bool) {
    let mut s = String::with_capacity(history.events.len() * 80);
    s.push_str("event log:\n");
    for e in &history.events {
        s.push_str("  ");
        s.push_str(&event_line(e));
        s.push('\n');
    }
    s.push('\n');
    if to_stdout {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(s.as_bytes());
        let _ = out.flush();
    } else {
        let _ = std::io::stderr().lock().write_all(s.as_bytes());
    }
}
