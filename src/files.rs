//! Files that readers must see whole: [`write_atomic`], shared by the logger (pages, the
//! `.pending` states), `linkymon graph` and the virtual screen.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Replaces `path` with `bytes` so that a reader (a browser, a web server, an image viewer,
/// the next start) finds the old content or the new one, never a part, even after a power
/// cut: the bytes go to a temporary file in the same directory (so the rename stays within
/// one file system), are flushed to the disk, and the file is then renamed over `path`.
///
/// If anything fails, `path` is left as it was and the temporary file is removed. The file
/// gets the permissions a plain `File::create` would give (0666 less the umask), not the
/// owner-only ones of a temporary file: a web server serving the pages must read them.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_data()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("index.html");
        write_atomic(&page, b"old").unwrap();
        write_atomic(&page, b"new").unwrap();
        assert_eq!(fs::read(&page).unwrap(), b"new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_atomically_written_file_has_the_permissions_of_a_created_one() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.html");
        fs::File::create(&plain).unwrap();
        let page = dir.path().join("page.html");
        write_atomic(&page, b"<html>").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&page), mode(&plain));
    }

    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("page.html");
        write_atomic(&page, b"old").unwrap();
        // The target is a directory now: the rename fails.
        let target = dir.path().join("sub");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("x"), b"").unwrap();
        assert!(write_atomic(&target, b"new").is_err());
        assert_eq!(fs::read(&page).unwrap(), b"old");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temporary file left"
        );
    }
}
