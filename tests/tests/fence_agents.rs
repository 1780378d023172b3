//! The fence agents Vigil ships (`agents/`), run as fenced runs them
//! (`key=value` lines on stdin) and as an operator does (options).
//!
//! `fence_vigil_sandbox` fences fake nodes made of `sleep` processes in a
//! scratch sandbox directory; `fence_vigil_container` is checked here for
//! what needs no switch (its metadata, its parameters, a dead switch);
//! `vigil-testkit`'s `power_switch` test runs it against the switch.
//!
//! Garbage on stdin: lines that are not `key=value` are ignored with a
//! warning (as Debian's agents do), so input of nothing but garbage fails
//! for want of the required parameters, and garbage among good lines
//! changes nothing.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use vigil_cib::xml::{Document, Element};

const SANDBOX: &str = "fence_vigil_sandbox";
const CONTAINER: &str = "fence_vigil_container";
/// No agent run may take longer than this.
const DEADLINE: Duration = Duration::from_secs(30);

fn agent(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../agents")
        .join(name)
}

/// What one run of an agent did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Run {
    fn expect(self, code: i32, what: &str) -> Run {
        assert_eq!(
            self.code, code,
            "{what}: exit {} instead of {code}\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// Runs agent `name` with `args` and `stdin`, and fails the test when it
/// runs longer than [`DEADLINE`].
fn run(name: &str, args: &[&str], stdin: &str) -> Run {
    let started = Instant::now();
    let mut child = Command::new(agent(name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("run {name}: {e}"));
    let mut input = child.stdin.take().expect("the agent's stdin");
    let stdin = stdin.as_bytes().to_vec();
    // An agent that does not read its input gets EPIPE; that is fine.
    std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(out) = rx.recv_timeout(DEADLINE) else {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status();
        panic!("{name} {args:?} did not end within {DEADLINE:?}");
    };
    let out = out.expect("wait for the agent");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    }
}

/// A scratch directory, removed on drop.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vigil-fence-{test}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create a scratch directory");
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A sandbox directory (`nodes/` in a scratch directory).
#[derive(Debug)]
struct Sandbox {
    dir: Scratch,
}

impl Sandbox {
    fn new(test: &str) -> Sandbox {
        let dir = Scratch::new(test);
        fs::create_dir(dir.path().join("nodes")).expect("create nodes/");
        Sandbox { dir }
    }

    fn dir(&self) -> &str {
        self.dir.path().to_str().expect("a UTF-8 path")
    }

    fn node(&self, name: &str) -> PathBuf {
        self.dir.path().join("nodes").join(name)
    }

    /// Creates node `name` whose processes are `pids` (with their start
    /// times when `with_start`).
    fn add_node(&self, name: &str, procs: &[&Proc], with_start: bool) {
        fs::create_dir_all(self.node(name)).expect("create a node directory");
        let mut text = String::from("# written by the test\n\n");
        for p in procs {
            if with_start {
                text.push_str(&format!("{} {}\n", p.pid, p.start));
            } else {
                text.push_str(&format!("{}\n", p.pid));
            }
        }
        fs::write(self.node(name).join("pids"), text).expect("write pids");
    }

    /// Runs the sandbox agent through stdin with `lines` after the
    /// `sandbox_dir` line.
    fn stdin(&self, lines: &str) -> Run {
        run(
            SANDBOX,
            &[],
            &format!("sandbox_dir={}\n{lines}", self.dir()),
        )
    }

    /// Runs the sandbox agent with options, `--sandbox-dir` first.
    fn opts(&self, args: &[&str]) -> Run {
        let mut all = vec!["--sandbox-dir", self.dir()];
        all.extend_from_slice(args);
        run(SANDBOX, &all, "")
    }
}

/// A process standing in for one of a node's: `sleep` in a process group
/// of its own, killed on drop.
#[derive(Debug)]
struct Proc {
    child: Option<Child>,
    pid: u32,
    start: u64,
}

impl Proc {
    fn sleep() -> Proc {
        Proc::spawn(Command::new("sleep").arg("1000"))
    }

    fn spawn(cmd: &mut Command) -> Proc {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start a process");
        let pid = child.id();
        let start = start_time(pid).expect("the process's start time");
        Proc {
            child: Some(child),
            pid,
            start,
        }
    }

    /// Whether it still runs (a zombie does not).
    fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }

    /// Reaps it and says whether SIGKILL ended it.
    fn killed(&mut self) -> bool {
        let mut child = self.child.take().expect("not reaped yet");
        let status = child.wait().expect("reap the process");
        status.signal() == Some(9)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Field 22 of `/proc/PID/stat`, for a process that runs (not a zombie).
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if matches!(fields.first(), Some(&("Z" | "X")) | None) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

fn wait_gone(pid: u32, start: u64) {
    let end = Instant::now() + Duration::from_secs(5);
    while start_time(pid) == Some(start) {
        assert!(Instant::now() < end, "process {pid} still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill_pid(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}

// ---- metadata ---------------------------------------------------------

fn parameter<'a>(root: &'a Element, name: &str) -> &'a Element {
    root.child("parameters")
        .expect("<parameters>")
        .children_named("parameter")
        .find(|p| p.attr("name") == Some(name))
        .unwrap_or_else(|| panic!("no parameter {name}"))
}

/// Checks the metadata both ways of asking give, and returns its root.
fn check_metadata(name: &str, own: &[(&str, bool, &str, Option<&str>)]) -> Element {
    let by_stdin = run(name, &[], "action=metadata\n").expect(0, "metadata by stdin");
    let by_option = run(name, &["-o", "metadata"], "").expect(0, "metadata by option");
    assert_eq!(by_stdin.stdout, by_option.stdout);
    let doc = Document::parse(&by_stdin.stdout)
        .unwrap_or_else(|e| panic!("{name}'s metadata is not XML: {e}"));
    let root = doc.root;
    assert_eq!(root.name, "resource-agent");
    assert_eq!(root.attr("name"), Some(name));
    assert!(!root.attr("shortdesc").unwrap_or_default().is_empty());
    assert!(
        !root
            .child("longdesc")
            .expect("<longdesc>")
            .text()
            .is_empty()
    );

    let actions: BTreeSet<&str> = root
        .child("actions")
        .expect("<actions>")
        .children_named("action")
        .filter_map(|a| a.attr("name"))
        .collect();
    let want: BTreeSet<&str> = [
        "on",
        "off",
        "reboot",
        "status",
        "list",
        "list-status",
        "monitor",
        "metadata",
        "validate-all",
    ]
    .into();
    assert_eq!(actions, want, "{name}'s actions");

    let params: Vec<&str> = root
        .child("parameters")
        .expect("<parameters>")
        .children_named("parameter")
        .filter_map(|p| p.attr("name"))
        .collect();
    let mut want: Vec<&str> = vec!["action", "plug", "port", "nodename"];
    want.extend(own.iter().map(|(n, ..)| *n));
    assert_eq!(params, want, "{name}'s parameters");
    for p in root
        .child("parameters")
        .expect("<parameters>")
        .children_named("parameter")
    {
        let pname = p.attr("name").unwrap_or_default();
        assert!(
            p.attr("unique").is_some() && p.attr("required").is_some(),
            "{pname}: unique and required"
        );
        assert!(p.child("getopt").is_some(), "{pname}: <getopt>");
        assert!(
            p.child("content").and_then(|c| c.attr("type")).is_some(),
            "{pname}: type"
        );
        assert!(!p.child("shortdesc").expect("<shortdesc>").text().is_empty());
    }
    let action = parameter(&root, "action");
    assert_eq!(action.attr("required"), Some("1"));
    assert_eq!(
        action.child("content").and_then(|c| c.attr("default")),
        Some("reboot")
    );
    assert_eq!(parameter(&root, "port").attr("deprecated"), Some("1"));
    for (pname, required, ty, default) in own {
        let p = parameter(&root, pname);
        let content = p.child("content").expect("<content>");
        assert_eq!(
            p.attr("required"),
            Some(if *required { "1" } else { "0" }),
            "{pname}"
        );
        assert_eq!(content.attr("type"), Some(*ty), "{pname}");
        assert_eq!(content.attr("default"), *default, "{pname}");
    }
    root
}

#[test]
fn sandbox_metadata_lists_actions_and_parameters() {
    check_metadata(
        SANDBOX,
        &[
            ("sandbox_dir", true, "string", None),
            ("power_timeout", false, "integer", Some("10")),
        ],
    );
}

#[test]
fn container_metadata_lists_actions_and_parameters() {
    check_metadata(
        CONTAINER,
        &[
            ("ip", true, "string", None),
            ("ipport", false, "integer", Some("5410")),
            ("switch_timeout", false, "integer", Some("8")),
        ],
    );
}

// ---- the sandbox agent ------------------------------------------------

#[test]
fn sandbox_validate_all_checks_the_directory() {
    let sb = Sandbox::new("validate");
    let r = run(SANDBOX, &[], "action=validate-all\n").expect(1, "without sandbox_dir");
    assert!(r.stderr.contains("sandbox_dir"), "{}", r.stderr);
    let r = run(SANDBOX, &["-o", "validate-all"], "").expect(1, "options, no sandbox_dir");
    assert!(r.stderr.contains("sandbox_dir"), "{}", r.stderr);

    sb.stdin("action=validate-all\n").expect(0, "a sandbox");
    sb.opts(&["-o", "validate-all"])
        .expect(0, "a sandbox, options");
    sb.opts(&["--action=validate-all", "--plug=n1"])
        .expect(0, "with a plug");

    let missing = format!("{}/nope", sb.dir());
    let r = run(
        SANDBOX,
        &["-o", "validate-all", "--sandbox_dir", &missing],
        "",
    )
    .expect(1, "a missing directory");
    assert!(r.stderr.contains("not a directory"), "{}", r.stderr);
    let plain = Scratch::new("plain");
    let r = run(
        SANDBOX,
        &[],
        &format!(
            "action=validate-all\nsandbox_dir={}\n",
            plain.path().display()
        ),
    )
    .expect(1, "a directory without nodes/");
    assert!(r.stderr.contains("nodes"), "{}", r.stderr);
    let r = sb
        .stdin("action=validate-all\npower_timeout=soon\n")
        .expect(1, "a bad power_timeout");
    assert!(r.stderr.contains("power_timeout"), "{}", r.stderr);
    let r = sb
        .stdin("action=validate-all\nplug=../etc\n")
        .expect(1, "a plug that climbs out");
    assert!(r.stderr.contains("node name"), "{}", r.stderr);
}

#[test]
fn sandbox_fences_a_node() {
    let sb = Sandbox::new("fence");
    let mut a = Proc::sleep();
    let mut b = Proc::sleep();
    // A group leader whose child the pids file does not list: fencing
    // kills the whole group.
    let child_file = sb.dir.path().join("child.pid");
    let mut leader = Proc::spawn(
        Command::new("sh")
            .args(["-c", "sleep 1000 & echo $! >\"$1\"; wait", "sh"])
            .arg(&child_file),
    );
    let grandchild = {
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(pid) = fs::read_to_string(&child_file)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
            {
                break pid;
            }
            assert!(Instant::now() < end, "the group's child never started");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let grandchild_start = start_time(grandchild).expect("the group's child runs");
    let other = Proc::sleep();
    sb.add_node("n1", &[&a, &leader], true);
    // b is listed without a start time, which the contract allows.
    fs::OpenOptions::new()
        .append(true)
        .open(sb.node("n1").join("pids"))
        .and_then(|mut f| writeln!(f, "{}", b.pid))
        .expect("append to pids");
    sb.add_node("n2", &[&other], true);

    let list = sb.stdin("action=list\n").expect(0, "list");
    assert_eq!(list.lines(), ["n1", "n2"]);
    let list = sb.opts(&["-o", "list"]).expect(0, "list by options");
    assert_eq!(list.lines(), ["n1", "n2"]);
    let ls = sb.opts(&["-o", "list-status"]).expect(0, "list-status");
    assert_eq!(ls.lines(), ["n1,,ON", "n2,,ON"]);
    sb.opts(&["-o", "monitor"]).expect(0, "monitor");

    // As fenced asks: nodename and port.
    let st = sb
        .stdin("action=status\nnodename=n1\nport=n1\n")
        .expect(0, "status of a running node");
    assert_eq!(st.stdout.trim(), "Status: ON");

    let off = sb
        .stdin("action=off\nnodename=n1\nport=n1\n")
        .expect(0, "off");
    assert_eq!(off.stdout.trim(), "Success: Powered OFF");
    eprintln!("sandbox off took {:.0?}", off.took);
    assert!(
        a.killed() && b.killed() && leader.killed(),
        "a process of n1 was not SIGKILLed"
    );
    wait_gone(grandchild, grandchild_start);
    let marker = fs::read_to_string(sb.node("n1").join("off")).expect("the off marker");
    assert!(marker.contains("fence_vigil_sandbox"), "{marker}");
    assert!(other.alive(), "fencing n1 killed n2's process");

    let st = sb
        .opts(&["-o", "status", "-n", "n1"])
        .expect(2, "status after off");
    assert_eq!(st.stdout.trim(), "Status: OFF");
    sb.opts(&["--action", "off", "--port", "n1"])
        .expect(0, "off again (idempotent)");
    sb.opts(&["-o", "status", "--plug=n2"])
        .expect(0, "n2 still runs");
    let ls = sb.opts(&["-o", "list-status"]).expect(0, "list-status");
    assert_eq!(ls.lines(), ["n1,,OFF", "n2,,ON"]);
}

#[test]
fn sandbox_never_kills_a_reused_pid() {
    let sb = Sandbox::new("reuse");
    let p = Proc::sleep();
    // The pids file names p's PID with another start time: the process the
    // sandbox started is gone and the PID now belongs to someone else.
    fs::create_dir_all(sb.node("n1")).expect("node directory");
    fs::write(
        sb.node("n1").join("pids"),
        format!("{} {}\n", p.pid, p.start + 1),
    )
    .expect("write pids");
    let st = sb.stdin("action=status\nplug=n1\n").expect(2, "status");
    assert_eq!(st.stdout.trim(), "Status: OFF");
    sb.stdin("action=off\nplug=n1\n").expect(0, "off");
    sb.stdin("action=reboot\nplug=n1\n").expect(0, "reboot");
    assert!(
        p.alive(),
        "the agent killed a process whose start time differs"
    );
}

#[test]
fn sandbox_powers_on_only_with_the_sandboxs_script() {
    let sb = Sandbox::new("on");
    let mut p = Proc::sleep();
    sb.add_node("n1", &[&p], true);

    let r = sb
        .stdin("action=reboot\nplug=n1\n")
        .expect(0, "reboot without power-on");
    assert!(p.killed());
    assert!(r.stderr.contains("stays off"), "{}", r.stderr);
    let r = sb
        .stdin("action=on\nplug=n1\n")
        .expect(1, "on without power-on");
    assert!(
        r.stderr.contains("this sandbox cannot power nodes on"),
        "{}",
        r.stderr
    );
    assert!(sb.node("n1").join("off").exists(), "the marker went");

    // The sandbox's script starts the node anew and lists its process.
    let script = sb.node("n1").join("power-on");
    fs::write(
        &script,
        "#!/bin/sh\n\
         echo \"$1 $SANDBOX_DIR $(pwd)\" >power-on.args\n\
         sleep 1000 </dev/null >/dev/null 2>&1 &\n\
         echo \"$!\" >pids\n",
    )
    .expect("write power-on");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod power-on");
    let r = sb.opts(&["-o", "on", "-n", "n1"]);
    let started: Option<u32> = fs::read_to_string(sb.node("n1").join("pids"))
        .ok()
        .and_then(|t| t.trim().parse().ok());
    let r = r.expect(0, "on with power-on");
    assert_eq!(r.stdout.trim(), "Success: Powered ON");
    let started = started.expect("power-on wrote a pid");
    let args = fs::read_to_string(sb.node("n1").join("power-on.args")).expect("power-on ran");
    let node_dir = sb.node("n1").canonicalize().expect("node directory");
    assert_eq!(
        args.trim(),
        format!("n1 {} {}", sb.dir(), node_dir.display()),
        "power-on's arguments"
    );
    assert!(
        !sb.node("n1").join("off").exists(),
        "the marker stayed after on"
    );
    sb.stdin("action=status\nplug=n1\n")
        .expect(0, "status after on");
    sb.stdin("action=on\nplug=n1\n").expect(0, "on when on");

    // Reboot: off, then on again through the script.
    let start = start_time(started).expect("the node's new process");
    sb.stdin("action=reboot\nplug=n1\n")
        .expect(0, "reboot with power-on");
    wait_gone(started, start);
    let again: u32 = fs::read_to_string(sb.node("n1").join("pids"))
        .expect("pids")
        .trim()
        .parse()
        .expect("a pid");
    assert_ne!(again, started);
    sb.stdin("action=off\nplug=n1\n")
        .expect(0, "off at the end");
    kill_pid(again);

    // A script that fails: on fails and says so.
    fs::write(&script, "#!/bin/sh\necho broken >&2\nexit 3\n").expect("write power-on");
    let r = sb
        .stdin("action=on\nplug=n1\n")
        .expect(1, "a failing power-on");
    assert!(r.stderr.contains("exit 3"), "{}", r.stderr);
}

#[test]
fn sandbox_refuses_bad_input() {
    let sb = Sandbox::new("bad");
    let p = Proc::sleep();
    sb.add_node("n1", &[&p], true);

    let r = sb
        .stdin("action=explode\nplug=n1\n")
        .expect(1, "an unknown action");
    assert!(
        r.stderr.contains("unknown action 'explode'"),
        "{}",
        r.stderr
    );
    let r = sb
        .opts(&["-o", "explode"])
        .expect(1, "an unknown action by option");
    assert!(r.stderr.contains("unknown action"), "{}", r.stderr);
    let r = sb.opts(&["--colour=red"]).expect(1, "an unknown option");
    assert!(r.stderr.contains("unknown option --colour"), "{}", r.stderr);
    let r = sb.opts(&["-o"]).expect(1, "an option without its value");
    assert!(r.stderr.contains("needs a value"), "{}", r.stderr);

    // Nothing but garbage: ignored with warnings, then no sandbox_dir.
    let r = run(SANDBOX, &[], "\u{1}\u{7f}garbage\nno equals sign here\n=\n")
        .expect(1, "garbage on stdin");
    assert!(r.stderr.contains("ignoring line 1"), "{}", r.stderr);
    assert!(r.stderr.contains("sandbox_dir"), "{}", r.stderr);
    // Garbage, comments, blank lines, quotes and unknown keys around good
    // lines change nothing.
    let st = sb
        .stdin(
            "# fenced passes comments\n\n  garbage line  \naction=\"status\"\r\n\
             pcmk_host_list=n1 n2\nplug=n1\nverbose=1\n",
        )
        .expect(0, "status among garbage");
    assert_eq!(st.stdout.trim(), "Status: ON");
    assert!(p.alive());

    // Targets that are not nodes of the sandbox.
    let r = sb
        .stdin("action=status\nplug=n9\n")
        .expect(1, "an unknown node");
    assert!(r.stderr.contains("no node 'n9'"), "{}", r.stderr);
    let r = sb
        .stdin("action=off\nplug=../nodes\n")
        .expect(1, "a path as plug");
    assert!(r.stderr.contains("node name"), "{}", r.stderr);
    let r = sb.stdin("action=off\n").expect(1, "off without a target");
    assert!(r.stderr.contains("needs the node"), "{}", r.stderr);

    // A pids file that is not the contract's, or names PID 1: refused,
    // nothing killed.
    fs::create_dir_all(sb.node("n2")).expect("node directory");
    for bad in ["1\n", "abc\n", "12 34 56\n", "-5\n", "7 x\n"] {
        fs::write(sb.node("n2").join("pids"), bad).expect("write pids");
        let r = sb.stdin("action=off\nplug=n2\n").expect(1, bad);
        assert!(
            r.stderr.contains("is not 'PID [STARTTIME]'"),
            "{bad:?}: {}",
            r.stderr
        );
        assert!(
            !sb.node("n2").join("off").exists(),
            "{bad:?}: marker written"
        );
    }
    fs::remove_file(sb.node("n2").join("pids")).expect("remove pids");
    let r = sb
        .stdin("action=status\nplug=n2\n")
        .expect(1, "no pids file");
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
    assert!(p.alive());
}

// ---- the container agent (no switch) ----------------------------------

#[test]
fn container_validate_all_needs_the_switch_address() {
    let r = run(CONTAINER, &[], "action=validate-all\nplug=n2\n").expect(1, "without ip");
    assert!(r.stderr.contains("ip"), "{}", r.stderr);
    let r = run(CONTAINER, &["-o", "status", "-n", "n2"], "").expect(1, "status without ip");
    assert!(r.stderr.contains("the parameter ip"), "{}", r.stderr);
    run(CONTAINER, &[], "action=validate-all\nip=192.0.2.1\n").expect(0, "with ip");
    run(
        CONTAINER,
        &[
            "-o",
            "validate-all",
            "-a",
            "192.0.2.1",
            "-u",
            "5410",
            "-n",
            "n2",
        ],
        "",
    )
    .expect(0, "with options");
    for bad in [
        "ipport=0",
        "ipport=70000",
        "ipport=x",
        "switch_timeout=0",
        "plug=a b",
    ] {
        run(
            CONTAINER,
            &[],
            &format!("action=validate-all\nip=192.0.2.1\n{bad}\n"),
        )
        .expect(1, bad);
    }
    let r = run(CONTAINER, &[], "action=explode\nip=192.0.2.1\n").expect(1, "unknown action");
    assert!(r.stderr.contains("unknown action"), "{}", r.stderr);
    let r = run(CONTAINER, &[], "ip=192.0.2.1\n").expect(1, "reboot (the default) without plug");
    assert!(r.stderr.contains("needs the node"), "{}", r.stderr);
}

#[test]
fn container_status_against_a_closed_port_fails_at_once() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("address").port()
    };
    let r = run(
        CONTAINER,
        &[],
        &format!("action=status\nip=127.0.0.1\nipport={port}\nport=n2\nnodename=n2\n"),
    )
    .expect(1, "status against a closed port");
    assert!(r.stderr.contains("cannot connect"), "{}", r.stderr);
    assert!(r.took < Duration::from_secs(3), "took {:?}", r.took);
    eprintln!("closed port: failed after {:.0?}", r.took);
    run(
        CONTAINER,
        &["-o", "monitor", "-a", "127.0.0.1", "-u", &port.to_string()],
        "",
    )
    .expect(1, "monitor against a closed port");
}

#[test]
fn container_status_against_a_silent_switch_is_bounded() {
    // Accepts connections (the kernel does, into the backlog) and never
    // answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("address").port().to_string();
    let r = run(
        CONTAINER,
        &["-o", "off", "-a", "127.0.0.1", "-u", &port, "-n", "n2"],
        "",
    )
    .expect(1, "off against a silent switch");
    assert!(r.stderr.contains("no answer"), "{}", r.stderr);
    assert!(
        r.took >= Duration::from_secs(7) && r.took < Duration::from_secs(10),
        "the default bound is 8 s; took {:?}",
        r.took
    );
    eprintln!("silent switch: gave up after {:.1?}", r.took);
    let r = run(
        CONTAINER,
        &[
            "-o",
            "status",
            "-a",
            "127.0.0.1",
            "-u",
            &port,
            "-n",
            "n2",
            "--switch-timeout=1",
        ],
        "",
    )
    .expect(1, "status, switch_timeout=1");
    assert!(r.took < Duration::from_secs(3), "took {:?}", r.took);
    // The listener saw the requests; read one to show they were sent.
    let (conn, _) = silent.accept().expect("a queued connection");
    let mut line = String::new();
    BufReader::new(conn)
        .read_line(&mut line)
        .expect("read the request");
    assert_eq!(line, "off n2\n");
}
