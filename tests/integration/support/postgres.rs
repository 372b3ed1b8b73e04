//! A PostgreSQL server of its own for a test: Debian's `postgresql` package, `initdb` and
//! `pg_ctl` in a temporary directory, listening on 127.0.0.1 at a free port; stopped on drop.
//!
//! PostgreSQL refuses to run as root: when the tests run as root, the server runs as the
//! `postgres` user the package creates (`runuser`), in a directory that user owns.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::{free_port, wait_for_port};

/// The database and role every test uses (trust authentication, on loopback only).
pub const DATABASE: &str = "linkymon";

/// A running PostgreSQL server.
pub struct Postgres {
    pub port: u16,
    bin: PathBuf,
    dir: TempDir,
    /// The server's own user, when the tests run as root.
    user: Option<&'static str>,
}

/// The newest `/usr/lib/postgresql/<version>/bin`, or a one-line panic saying how to get it.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "PostgreSQL (/usr/lib/postgresql/*/bin/initdb) is not installed: run ./scripts/test.sh, \
             which installs the test dependencies"
        )
    })
}

impl Postgres {
    /// A fresh server with the database [`DATABASE`], durable as a real one (fsync on).
    pub fn start() -> Postgres {
        let bin = bin_dir();
        let dir = tempfile::tempdir().unwrap();
        let user = is_root().then_some("postgres");
        if let Some(user) = user {
            let status = Command::new("chown")
                .args([user, &dir.path().display().to_string()])
                .status()
                .unwrap();
            assert!(
                status.success(),
                "cannot give {} to {user}",
                dir.path().display()
            );
        }
        let pg = Postgres {
            port: free_port(),
            bin,
            dir,
            user,
        };
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data().display().to_string(),
                "-U",
                DATABASE,
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             max_connections = 50\n",
            pg.port,
            pg.dir.path().display()
        );
        let mut file = std::fs::read_to_string(pg.data().join("postgresql.conf")).unwrap();
        file.push_str(&conf);
        std::fs::write(pg.data().join("postgresql.conf"), file).unwrap();
        pg.start_again();
        pg.run(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                DATABASE,
                DATABASE,
            ],
        );
        pg
    }

    /// The URL to put in `logger.database`.
    pub fn url(&self) -> String {
        format!("postgres://{DATABASE}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// One of the server's programs, to run as its user.
    fn program(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.user {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", user, "--"]).arg(&path);
                cmd
            }
            None => Command::new(&path),
        }
    }

    /// Runs one of the server's programs; panics with its output on failure.
    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .program(program)
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server as `systemctl stop postgresql` does (fast shutdown).
    pub fn stop(&self) {
        let data = self.data().display().to_string();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
    }

    /// Starts it again (same port, same data) and waits until it takes connections.
    pub fn start_again(&self) {
        let data = self.data().display().to_string();
        let log = self.dir.path().join("server.log").display().to_string();
        self.run("pg_ctl", &["-D", &data, "-l", &log, "-w", "start"]);
        wait_for_port(self.port, Duration::from_secs(10));
    }

    /// The answer to `sql` (simple protocol, every value as text; NULL as `None`).
    pub fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let url = self.url();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            let messages = client.simple_query(sql).await.unwrap();
            messages
                .into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                        (0..row.len())
                            .map(|i| row.get(i).map(str::to_owned))
                            .collect(),
                    ),
                    _ => None,
                })
                .collect()
        })
    }

    /// One number: the first column of the first row of `sql`.
    pub fn number(&self, sql: &str) -> i64 {
        let rows = self.query(sql);
        rows.first()
            .and_then(|r| r.first().cloned().flatten())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{sql} gave no number: {rows:?}"))
    }

    /// The server's log, for a failing test's message.
    #[allow(dead_code)]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Its directory.
    #[allow(dead_code)]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let _ = self
            .program("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn is_root() -> bool {
    // `id -u`, rather than an unsafe libc call.
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}
