//! A Redis server of the test's own (Debian's `redis-server`), on a free port and
//! a fresh directory, so a test can stop, kill and restart it, and the benchmark
//! can give each scenario a Redis that no earlier scenario has used.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// What a private server writes to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing (`appendonly no`): a restart loses every key.
    None,
    /// The append-only file, fsynced once a second (`appendfsync everysec`, Redis'
    /// default AOF policy).
    EverySecond,
    /// The append-only file, fsynced before Redis answers a write (`appendfsync always`).
    Always,
}

impl Persistence {
    /// Its name on the benchmark's command line: `none`, `everysec` or `always`.
    pub fn name(self) -> &'static str {
        match self {
            Persistence::None => "none",
            Persistence::EverySecond => "everysec",
            Persistence::Always => "always",
        }
    }

    /// The persistence named `name` ([`Persistence::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::None, Self::EverySecond, Self::Always]
            .into_iter()
            .find(|p| p.name() == name)
    }
}

/// A private redis-server.
pub struct RedisServer {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    persistence: Persistence,
}

impl RedisServer {
    /// A server on `port` keeping its files in a new directory; with `appendonly`,
    /// every write is fsynced to the append-only file before Redis answers.
    pub async fn start(port: u16, appendonly: bool) -> Self {
        let persistence = if appendonly {
            Persistence::Always
        } else {
            Persistence::None
        };
        Self::start_with(port, persistence).await
    }

    /// A server on `port` keeping its files in a new directory, as `persistence` says.
    pub async fn start_with(port: u16, persistence: Persistence) -> Self {
        let dir = std::env::temp_dir().join(format!("gw-redis-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut server = Self {
            child: None,
            port,
            dir,
            persistence,
        };
        server.restart().await;
        server
    }

    /// `redis://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server again on the same port and directory (its data reloads from the AOF).
    pub async fn restart(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(&self.dir)
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg(match self.persistence {
                Persistence::None => "no",
                Persistence::EverySecond | Persistence::Always => "yes",
            })
            .arg("--appendfsync")
            .arg(match self.persistence {
                Persistence::Always => "always",
                Persistence::None | Persistence::EverySecond => "everysec",
            })
            // No automatic rewrite of the append-only file: it forks a child that
            // rewrites the whole data set, in the middle of whatever is being measured.
            .arg("--auto-aof-rewrite-percentage")
            .arg("0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        self.child = Some(
            command
                .spawn()
                .expect("redis-server (apt-get install redis-server)"),
        );
        for _ in 0..200 {
            if let Ok(client) = redis::Client::open(self.url()) {
                if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                    if redis::cmd("PING")
                        .query_async::<String>(&mut conn)
                        .await
                        .is_ok()
                    {
                        return;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// SIGKILL: the server dies without a chance to write anything more.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
            let _ = child.wait().await;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
