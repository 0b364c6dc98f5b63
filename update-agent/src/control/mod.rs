//! The local control channel: a Unix socket `<state>/control.sock` (mode
//! 0600, in the 0700 state directory) speaking line-delimited JSON, one
//! request per line, one answer per line.
//!
//! ```text
//! → {"command":"prompts"}
//! ← {"ok":true,"prompts":[{"id":"3f2a9c0d4e","kind":"update_available",…}]}
//! → {"command":"accept","id":"3f2a9c0d4e"}
//! ← {"ok":true,"prompt":{…,"state":"accepted"}}
//! → {"command":"defer","id":"nope"}
//! ← {"ok":false,"error":"no prompt nope"}
//! ```
//!
//! Only the agent's own user may talk to it: besides the file mode, every
//! connection's peer uid (`SO_PEERCRED`, via rustix) must equal the agent's
//! uid, else it is answered with an error and closed. A decision is
//! committed to the state database before it is acknowledged, and the
//! daemon is then woken to act on it ([`crate::daemon::Wake::Act`]).

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::daemon::Wake;
use crate::prompts::{Decision, Prompt};
use crate::state::{DecideError, State};

/// The socket's name in the state directory.
pub const SOCKET_FILE: &str = "control.sock";
/// The longest request line accepted.
pub const MAX_LINE: u64 = 16 * 1024;
/// How long one connection may stay silent before it is closed.
const IDLE: Duration = Duration::from_secs(10);

/// A request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The prompts shown now.
    Prompts,
    /// Accept prompt `id` (install now; or: the device was replugged).
    Accept {
        /// The prompt.
        id: String,
    },
    /// Decline prompt `id` (optional updates).
    Decline {
        /// The prompt.
        id: String,
    },
    /// Defer prompt `id`.
    Defer {
        /// The prompt.
        id: String,
    },
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request was carried out.
    pub ok: bool,
    /// For `prompts`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<Prompt>,
    /// For a decision: the prompt as committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Prompt>,
    /// Why not, when not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    fn error(message: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: Some(message.into()),
            ..Self::default()
        }
    }
}

/// Why the control channel failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The socket file or a connection.
    #[error("control socket {path}: {source}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// No agent is listening.
    #[error(
        "the agent is not running (no control socket at {0}); start it with `update-agent run`"
    )]
    NotRunning(PathBuf),
    /// Another agent already listens on this state directory.
    #[error("another agent is already running with this state directory ({0})")]
    AlreadyRunning(PathBuf),
    /// The answer was not understood.
    #[error("control socket: unexpected answer: {0}")]
    Protocol(String),
    /// The agent refused the request.
    #[error("{0}")]
    Refused(String),
}

/// The socket of the agent whose state directory is `state_dir`.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_FILE)
}

/// A bound control socket, not yet serving.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    listener: UnixListener,
    uid: u32,
}

/// A serving control socket; [`ControlHandle::stop`] (or drop) ends it and
/// removes the socket file.
#[derive(Debug)]
pub struct ControlHandle {
    path: PathBuf,
    listener: Option<UnixListener>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ControlServer {
    /// Binds `<state_dir>/control.sock` (0600). A stale socket left by a
    /// crashed agent is replaced; a live one is refused.
    pub fn bind(state_dir: &Path) -> Result<Self, ControlError> {
        let path = socket_path(state_dir);
        let io = |source| ControlError::Io {
            path: path.clone(),
            source,
        };
        crate::fsutil::create_private_dir(state_dir).map_err(io)?;
        if path.exists() {
            if UnixStream::connect(&path).is_ok() {
                return Err(ControlError::AlreadyRunning(path));
            }
            std::fs::remove_file(&path).map_err(io)?;
        }
        let listener = UnixListener::bind(&path).map_err(io)?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        Ok(Self {
            path,
            listener,
            uid: rustix::process::getuid().as_raw(),
        })
    }

    /// Serves as if the agent ran as `uid`: lets a test that cannot switch
    /// users (not root) be the other user whose connection is refused.
    #[cfg(test)]
    pub(crate) fn owned_by(mut self, uid: u32) -> Self {
        self.uid = uid;
        self
    }

    /// The socket file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves requests on a thread: decisions go to `state` (committed at
    /// `clock`'s now) and wake the daemon through `wake`.
    pub fn serve(
        self,
        state: Arc<State>,
        clock: Arc<dyn Clock>,
        wake: Sender<Wake>,
    ) -> ControlHandle {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let path = self.path.clone();
        let listener = self.listener.try_clone().ok();
        let thread = std::thread::spawn(move || {
            for conn in self.listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                match conn {
                    Ok(stream) => {
                        if let Err(e) = serve_one(stream, self.uid, &state, &*clock, &wake) {
                            tracing::debug!("control connection: {e}");
                        }
                    }
                    Err(_) if flag.load(Ordering::SeqCst) => break,
                    Err(e) => tracing::warn!("control socket: {e}"),
                }
            }
        });
        ControlHandle {
            path,
            listener,
            stop,
            thread: Some(thread),
        }
    }
}

impl ControlHandle {
    /// Stops serving and removes the socket file.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop: shutting a listening socket down makes a
        // blocked accept return on Linux; a connection does it anywhere
        // (when the socket file is still there).
        if let Some(l) = self.listener.take() {
            let _ = rustix::net::shutdown(&l, rustix::net::Shutdown::Both);
        }
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for ControlHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shutdown();
        }
    }
}

fn write_line(stream: &mut UnixStream, r: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(r).unwrap_or_default();
    line.push(b'\n');
    stream.write_all(&line)?;
    stream.flush()
}

fn serve_one(
    mut stream: UnixStream,
    uid: u32,
    state: &State,
    clock: &dyn Clock,
    wake: &Sender<Wake>,
) -> std::io::Result<()> {
    let peer = rustix::net::sockopt::socket_peercred(&stream)?;
    if peer.uid.as_raw() != uid {
        tracing::warn!(
            peer_uid = peer.uid.as_raw(),
            "control socket: refused a connection from another user"
        );
        return write_line(
            &mut stream,
            &Response::error("permission denied: not the agent's user"),
        );
    }
    stream.set_read_timeout(Some(IDLE))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    loop {
        let mut line = Vec::new();
        let n = (&mut reader)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        if line.len() as u64 > MAX_LINE {
            return write_line(&mut stream, &Response::error("request too long"));
        }
        let answer = match serde_json::from_slice::<Request>(&line) {
            Ok(req) => handle(req, state, clock, wake),
            Err(e) => Response::error(format!("bad request: {e}")),
        };
        write_line(&mut stream, &answer)?;
    }
}

/// Carries out one request.
fn handle(req: Request, state: &State, clock: &dyn Clock, wake: &Sender<Wake>) -> Response {
    let (id, decision) = match req {
        Request::Prompts => {
            return match state.shown_prompts() {
                Ok(prompts) => Response {
                    ok: true,
                    prompts,
                    ..Response::default()
                },
                Err(e) => Response::error(e.to_string()),
            }
        }
        Request::Accept { id } => (id, Decision::Accept),
        Request::Decline { id } => (id, Decision::Decline),
        Request::Defer { id } => (id, Decision::Defer),
    };
    match state.decide(&id, decision, clock.now()) {
        Ok(p) => {
            tracing::info!(prompt = %p.id, device = %p.device, "the user chose to {decision}");
            // Committed: now act on it.
            let _ = wake.send(Wake::Act);
            Response {
                ok: true,
                prompt: Some(p),
                ..Response::default()
            }
        }
        Err(DecideError::Refused(e)) => Response::error(e.to_string()),
        Err(e @ DecideError::State(_)) => Response::error(e.to_string()),
    }
}

/// Sends one request to the agent of `state_dir` and returns its answer
/// (an error when it refused).
pub fn request(state_dir: &Path, req: &Request) -> Result<Response, ControlError> {
    let path = socket_path(state_dir);
    let mut stream = UnixStream::connect(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
            ControlError::NotRunning(path.clone())
        }
        _ => ControlError::Io {
            path: path.clone(),
            source: e,
        },
    })?;
    let io = |source| ControlError::Io {
        path: path.clone(),
        source,
    };
    stream.set_read_timeout(Some(IDLE)).map_err(io)?;
    let mut line = serde_json::to_vec(req).unwrap_or_default();
    line.push(b'\n');
    stream.write_all(&line).map_err(io)?;
    let mut answer = String::new();
    BufReader::new(stream.take(16 * 1024 * 1024))
        .read_line(&mut answer)
        .map_err(io)?;
    let r: Response = serde_json::from_str(&answer)
        .map_err(|e| ControlError::Protocol(format!("{e}: {answer:?}")))?;
    if !r.ok {
        return Err(ControlError::Refused(
            r.error.unwrap_or_else(|| "refused".into()),
        ));
    }
    Ok(r)
}

#[cfg(test)]
mod tests;
