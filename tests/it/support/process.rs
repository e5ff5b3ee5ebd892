//! A server a test starts (redis-server, DynamoDB Local) as an RAII guard:
//! its output appended to a log file, readiness polled with a deadline,
//! killed (SIGKILL) by `stop` and on drop, and its log printed when the
//! test fails.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use super::{LogFile, poll_until, spawn_error};

pub struct ServerProcess {
    /// How failures name it ("redis-server", "DynamoDB Local").
    title: &'static str,
    /// The label of its printed log.
    label: &'static str,
    child: Option<Child>,
    log: LogFile,
}

impl ServerProcess {
    /// Not started yet; its log goes to `log` (created, or appended to).
    pub fn new(title: &'static str, label: &'static str, log: PathBuf) -> ServerProcess {
        ServerProcess {
            title,
            label,
            child: None,
            log: LogFile::open(log).0,
        }
    }

    /// Spawns `command` with its output appended to the log, then polls
    /// `ready` until `deadline`. Fails the test, log printed, when the
    /// process exits first or `ready` never answers (`waiting_for` says what
    /// it waits for: "answer PING on TLS port 6380").
    pub fn spawn_and_wait(
        &mut self,
        command: &mut Command,
        deadline: Duration,
        waiting_for: &str,
        mut ready: impl FnMut() -> Option<()>,
    ) {
        let (_, out, err) = LogFile::open(self.log.path().to_path_buf());
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| spawn_error(&command.get_program().to_string_lossy(), e));
        self.child = Some(child);
        let answered = poll_until(deadline, || {
            if let Some(status) = self.try_wait() {
                self.log.dump(self.label);
                panic!("{} exited during startup ({status}); log above", self.title);
            }
            ready()
        });
        if answered.is_none() {
            self.log.dump(self.label);
            panic!("{} did not {waiting_for} within {deadline:?}", self.title);
        }
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        child
            .try_wait()
            .unwrap_or_else(|e| panic!("poll {}: {e}", self.title))
    }

    /// Kills the process (SIGKILL, no goodbye to clients) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.try_wait().is_none()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log(&self) -> &LogFile {
        &self.log
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            self.log.dump(self.label);
        }
    }
}
