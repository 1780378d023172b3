//! Running one agent process: a clean environment, its own process group,
//! bounded output, and a timeout that kills the whole group.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use vigil_executor::Exit;

/// At most this much of each of stdout and stderr is kept, half from the
/// beginning and half from the end (the rest is read and dropped, so the
/// agent never blocks on a full pipe).
pub const MAX_OUTPUT: usize = 64 * 1024;

/// How long to keep reading an agent's output after it exited: a process
/// it left behind may hold the pipe open, and the executor does not wait
/// for it.
const OUTPUT_GRACE: Duration = Duration::from_millis(100);

/// One process to run.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The whole environment (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// Written to stdin, which is then closed (`/dev/null` when `None`).
    pub stdin: Option<Vec<u8>>,
    pub timeout: Duration,
}

/// How a process ended and what it printed.
#[derive(Debug, Clone)]
pub struct Ran {
    pub exit: Exit,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// The process id (and process group) it had, if it started.
    pub pid: Option<u32>,
}

/// Runs `inv` to its end or its timeout. At the timeout every process of
/// its process group gets SIGKILL. Never fails: a process that cannot be
/// started is reported in [`Ran::exit`].
pub async fn run(inv: &Invocation) -> Ran {
    let started = Instant::now();
    let mut child = match spawn_retrying(inv).await {
        Ok(c) => c,
        Err(e) => {
            return Ran {
                exit: classify(&e, &inv.program),
                stdout: String::new(),
                stderr: String::new(),
                elapsed: started.elapsed(),
                pid: None,
            };
        }
    };
    let pid = child.id();
    if let (Some(data), Some(mut stdin)) = (inv.stdin.clone(), child.stdin.take()) {
        tokio::spawn(async move {
            let _ = stdin.write_all(&data).await;
            drop(stdin);
        });
    }
    let out = Arc::new(Mutex::new(Captured::default()));
    let err = Arc::new(Mutex::new(Captured::default()));
    let out_task = child.stdout.take().map(|s| spawn_reader(s, out.clone()));
    let err_task = child.stderr.take().map(|s| spawn_reader(s, err.clone()));
    let exit = match tokio::time::timeout(inv.timeout, child.wait()).await {
        Ok(Ok(status)) => match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(sig)) => Exit::Signal(sig),
            (None, None) => Exit::SpawnFailed(format!("unexpected status {status}")),
        },
        Ok(Err(e)) => Exit::SpawnFailed(format!("cannot wait for the agent: {e}")),
        Err(_) => {
            if let Some(pid) = pid {
                kill_group(pid);
            }
            let _ = child.wait().await;
            Exit::TimedOut
        }
    };
    for task in [out_task, err_task].into_iter().flatten() {
        let abort = task.abort_handle();
        if tokio::time::timeout(OUTPUT_GRACE, task).await.is_err() {
            abort.abort();
        }
    }
    let take = |c: &Arc<Mutex<Captured>>| c.lock().map(|mut c| c.text()).unwrap_or_default();
    Ran {
        exit,
        stdout: take(&out),
        stderr: take(&err),
        elapsed: started.elapsed(),
        pid,
    }
}

/// Sends SIGKILL to every process of the process group `pgid`.
pub fn kill_group(pgid: u32) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    let Ok(raw) = i32::try_from(pgid) else {
        return;
    };
    let _ = killpg(Pid::from_raw(raw), Signal::SIGKILL);
}

async fn spawn_retrying(inv: &Invocation) -> std::io::Result<tokio::process::Child> {
    let mut attempts = 0;
    loop {
        let mut cmd = tokio::process::Command::new(&inv.program);
        cmd.args(&inv.args)
            .env_clear()
            .envs(inv.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir("/")
            .process_group(0)
            .stdin(if inv.stdin.is_some() {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(false);
        match cmd.spawn() {
            // "Text file busy": the agent was just written and another
            // thread's fork still holds it open for writing; it passes.
            Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) && attempts < 20 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => return other,
        }
    }
}

fn classify(e: &std::io::Error, program: &Path) -> Exit {
    use std::io::ErrorKind;
    match (e.kind(), e.raw_os_error()) {
        (ErrorKind::NotFound, _) if program.exists() => {
            Exit::NotExecutable("its interpreter is missing (check the #! line)".to_string())
        }
        (ErrorKind::NotFound, _) => Exit::NotFound,
        (ErrorKind::PermissionDenied, _) => {
            Exit::NotExecutable("permission denied (is it executable?)".to_string())
        }
        (_, Some(nix::libc::ENOEXEC)) => {
            Exit::NotExecutable("not an executable format (a script needs a #! line)".to_string())
        }
        _ => Exit::SpawnFailed(e.to_string()),
    }
}

/// What a process printed on one stream: the beginning and the end, when
/// it printed more than [`MAX_OUTPUT`] (the end is where agents put their
/// exit reason).
#[derive(Debug, Default)]
struct Captured {
    head: Vec<u8>,
    tail: Vec<u8>,
    skipped: usize,
}

impl Captured {
    fn push(&mut self, mut data: &[u8]) {
        let half = MAX_OUTPUT / 2;
        if self.head.len() < half {
            let n = data.len().min(half - self.head.len());
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        self.tail.extend_from_slice(data);
        if self.tail.len() > 2 * half {
            let drop = self.tail.len() - half;
            self.tail.drain(..drop);
            self.skipped += drop;
        }
    }

    fn text(&mut self) -> String {
        let half = MAX_OUTPUT / 2;
        if self.tail.len() > half {
            let drop = self.tail.len() - half;
            self.tail.drain(..drop);
            self.skipped += drop;
        }
        let mut s = String::from_utf8_lossy(&self.head).into_owned();
        if self.skipped > 0 {
            s.push_str(&format!("\n[... {} bytes not kept ...]\n", self.skipped));
        }
        s.push_str(&String::from_utf8_lossy(&self.tail));
        s
    }
}

fn spawn_reader<R: AsyncRead + Unpin + Send + 'static>(
    mut r: R,
    into: Arc<Mutex<Captured>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Ok(mut c) = into.lock() {
                        c.push(&buf[..n]);
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout_ms: u64) -> Invocation {
        Invocation {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            stdin: None,
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    #[tokio::test]
    async fn exit_codes_output_and_environment() {
        let mut inv = sh("echo out; echo err >&2; echo \"x=$X\"; exit 7", 5_000);
        inv.env.push(("X".into(), "42".into()));
        let r = run(&inv).await;
        assert_eq!(r.exit, Exit::Code(7));
        assert_eq!(r.stdout, "out\nx=42\n");
        assert_eq!(r.stderr, "err\n");
        let r = run(&sh("echo \"home=$HOME\"", 5_000)).await;
        assert_eq!(r.stdout, "home=\n", "nothing is inherited");
    }

    #[tokio::test]
    async fn stdin_is_passed() {
        let mut inv = sh("cat", 5_000);
        inv.stdin = Some(b"action=off\nport=n1\n".to_vec());
        assert_eq!(run(&inv).await.stdout, "action=off\nport=n1\n");
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let r = run(&sh(
            "trap '' TERM; (trap '' TERM; sleep 60) & echo $!; sleep 60",
            300,
        ))
        .await;
        assert_eq!(r.exit, Exit::TimedOut);
        let grandchild: i32 = r.stdout.trim().parse().expect("the background pid");
        let alive = || {
            std::path::Path::new(&format!("/proc/{grandchild}")).exists()
                && !std::fs::read_to_string(format!("/proc/{grandchild}/stat"))
                    .unwrap_or_default()
                    .contains(") Z ")
        };
        for _ in 0..100 {
            if !alive() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            !alive(),
            "the agent's background process survived its timeout"
        );
    }

    #[tokio::test]
    async fn a_process_left_behind_does_not_hold_the_result() {
        let r = run(&sh("sleep 30 & echo done", 10_000)).await;
        assert_eq!(r.exit, Exit::Code(0));
        assert_eq!(r.stdout, "done\n");
        assert!(r.elapsed < Duration::from_secs(5), "{:?}", r.elapsed);
        if let Some(pid) = r.pid {
            kill_group(pid);
        }
    }

    #[tokio::test]
    async fn output_is_bounded_keeping_both_ends() {
        let r = run(&sh(
            "echo first; head -c 1000000 /dev/zero | tr '\\0' x; echo; echo last",
            10_000,
        ))
        .await;
        assert_eq!(r.exit, Exit::Code(0));
        assert!(r.stdout.len() < MAX_OUTPUT + 100, "{}", r.stdout.len());
        assert!(r.stdout.starts_with("first\n") && r.stdout.ends_with("\nlast\n"));
        assert!(r.stdout.contains(" bytes not kept ...]"));
        let r = run(&sh("echo small", 10_000)).await;
        assert_eq!(r.stdout, "small\n");
    }

    #[tokio::test]
    async fn programs_that_cannot_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut inv = sh("", 1_000);
        inv.args.clear();
        inv.program = dir.path().join("missing");
        assert_eq!(run(&inv).await.exit, Exit::NotFound);
        let write = |name: &str, body: &str, mode: u32| {
            use std::os::unix::fs::PermissionsExt;
            let p = dir.path().join(name);
            std::fs::write(&p, body).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        };
        inv.program = write("noexec", "#!/bin/sh\nexit 0\n", 0o644);
        assert!(matches!(run(&inv).await.exit, Exit::NotExecutable(w) if w.contains("permission")));
        inv.program = write("badinterp", "#!/nonexistent/sh\nexit 0\n", 0o755);
        assert!(
            matches!(run(&inv).await.exit, Exit::NotExecutable(w) if w.contains("interpreter"))
        );
        inv.program = write("garbage", "\x7fELF garbage", 0o755);
        assert!(matches!(run(&inv).await.exit, Exit::NotExecutable(_)));
        let r = run(&sh("kill -9 $$", 5_000)).await;
        assert_eq!(r.exit, Exit::Signal(9));
    }
}
