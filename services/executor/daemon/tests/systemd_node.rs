//! System tier: the `systemd` class against a real systemd. One node boots
//! from the Debian image with this build's vigil-execd bind-mounted in; the
//! executor runs there as a transient unit (so it logs to the node's
//! journald), serves `org.vigil.executor1` on a private bus inside the node
//! and drives the node's own systemd on its system bus. The test drives the
//! executor with `busctl` inside the node, as an administrator would.
//!
//! Runs only with `VIGIL_SYSTEM_TIER=1` (as root); skips otherwise.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use vigil_testkit::nspawn::{Image, Node, NodeOptions, system_tier};
use vigil_types::ocf;

/// Where the directory holding this build's vigil-execd appears in the node.
const BIN_DIR: &str = "/opt/vigil";
/// The executor's private bus in the node: the system bus has no policy
/// letting a service own `org.vigil.executor1` (yet).
const BUS_SOCKET: &str = "/run/vigil-test-bus";
const BUS: &str = "unix:path=/run/vigil-test-bus";
/// The unit under test and its runtime drop-in.
const UNIT: &str = "vigil-test.service";
const AGENT: &str = "systemd:vigil-test";
const DROP_IN: &str = "/run/systemd/system/vigil-test.service.d/50-vigil.conf";
/// `Restart=always`, so that only the executor's drop-in (`Restart=no`)
/// keeps systemd from restarting it behind the cluster's back.
const UNIT_FILE: &str = "[Unit]\n\
    Description=Vigil test service\n\
    \n\
    [Service]\n\
    ExecStart=/bin/sleep infinity\n\
    Restart=always\n\
    RestartSec=100ms\n";
/// The record of an operation that has not run yet waits this long (the
/// operation's default timeout, 20 s, and some).
const OP_WAIT: Duration = Duration::from_secs(40);

#[test]
fn systemd_units_through_the_executor() {
    const T: &str = "systemd_units_through_the_executor";
    if !system_tier(T) {
        return;
    }
    let started = Instant::now();
    let exe = Path::new(env!("CARGO_BIN_EXE_vigil-execd"));
    let bin_dir = exe.parent().expect("the binary's directory");
    let exe_name = exe
        .file_name()
        .expect("the binary's name")
        .to_string_lossy()
        .into_owned();
    let image = Image::bookworm(&[]);
    let node = Node::boot(
        "execd-sd",
        &image,
        &NodeOptions::new().bind_ro(bin_dir, BIN_DIR),
    );
    eprintln!("node booted after {:.1?}", started.elapsed());
    let x = Executor::start(node, &format!("{BIN_DIR}/{exe_name}"));
    let node = &x.node;
    eprintln!("executor ready after {:.1?}", started.elapsed());

    // The unit, and proof that on its own systemd does restart it.
    node.write_file(&format!("/etc/systemd/system/{UNIT}"), UNIT_FILE, 0o644);
    node.sh_ok("systemctl daemon-reload");
    node.sh_ok("systemctl start vigil-test");
    let pid = x.main_pid();
    node.sh_ok("systemctl kill -s KILL vigil-test");
    eventually(
        "systemd to restart vigil-test by itself (Restart=always)",
        || {
            let (state, now) = (x.active_state(), x.main_pid());
            if state == "active" && now != 0 && now != pid {
                Ok(())
            } else {
                Err(format!(
                    "ActiveState {state}, MainPID {now} (killed: {pid})"
                ))
            }
        },
    );
    node.sh_ok("systemctl stop vigil-test");
    assert_eq!(x.active_state(), "inactive", "vigil-test after the control");

    // The executor knows the class and the unit.
    let classes = x.strings(x.call("ListClasses", "", &[]));
    assert!(
        classes.iter().any(|c| c == "systemd"),
        "ListClasses lacks systemd: {classes:?}"
    );
    let units = x.strings(x.call("ListAgents", "ss", &["systemd", ""]));
    assert!(
        units.iter().any(|u| u == UNIT),
        "ListAgents systemd lacks {UNIT}: {units:?}"
    );
    let data = x.call("AgentMetadata", "s", &[AGENT]);
    let xml = data.first().and_then(Json::as_str).unwrap_or_default();
    let md = vigil_executor::metadata::parse(xml)
        .unwrap_or_else(|e| panic!("AgentMetadata {AGENT} is no agent metadata ({e}): {xml}"));
    assert_eq!(
        (md.name.as_str(), md.shortdesc.as_str()),
        (UNIT, "Vigil test service"),
        "AgentMetadata {AGENT}: {xml}"
    );

    // The probe finds it stopped.
    let rec = x.run("web", AGENT, "monitor");
    assert_eq!(
        (rec.rc, rec.failed),
        (ocf::NOT_RUNNING, false),
        "probe of a stopped unit: {rec:?}"
    );

    // Start: systemd runs it, with the executor's drop-in.
    let rec = x.run("web", AGENT, "start");
    assert_eq!(
        (rec.rc, rec.note.as_str(), rec.failed),
        (0, "", false),
        "start: {rec:?}"
    );
    assert_eq!(x.active_state(), "active", "vigil-test after the start");
    let drop_in = node.sh(&format!("cat {DROP_IN}"));
    assert!(
        drop_in.status.success() && stdout(&drop_in).contains("Restart=no"),
        "the drop-in {DROP_IN} after the start: {}",
        describe(&drop_in)
    );
    let restart = x.show("Restart");
    assert_eq!(
        restart, "no",
        "systemd's Restart= of vigil-test with the drop-in"
    );
    let drop_ins = x.show("DropInPaths");
    assert!(
        drop_ins.contains(DROP_IN),
        "systemd does not use the drop-in: DropInPaths={drop_ins}"
    );
    let rec = x.run("web", AGENT, "monitor");
    assert_eq!(
        (rec.rc, rec.failed),
        (0, false),
        "monitor of the started unit: {rec:?}"
    );

    // A recurring monitor sees the unit die, and systemd leaves it dead.
    let rec = x.run_every("web", AGENT, "monitor", 1000);
    assert_eq!(rec.rc, 0, "first recurring monitor: {rec:?}");
    let (pid, restarts) = (x.main_pid(), x.show("NRestarts"));
    assert_ne!(pid, 0, "vigil-test has no main process");
    node.sh_ok("systemctl kill -s KILL vigil-test");
    eventually(
        "vigil-test to fail after its process was killed",
        || match x.active_state().as_str() {
            "failed" => Ok(()),
            other => Err(format!("ActiveState {other}, MainPID {}", x.main_pid())),
        },
    );
    // Ten times systemd's RestartSec: a restart would have happened.
    std::thread::sleep(Duration::from_secs(1));
    let (state, now, restarts_now) = (x.active_state(), x.main_pid(), x.show("NRestarts"));
    assert_eq!(
        (state.as_str(), now, restarts_now.as_str()),
        ("failed", 0, restarts.as_str()),
        "systemd restarted vigil-test despite the drop-in's Restart=no \
         (ActiveState, MainPID, NRestarts; killed main PID {pid})"
    );
    let rec = x.await_record(
        "web",
        ("monitor", 1000),
        x.last_call_id("web"),
        None,
        "the recurring monitor to see the dead unit",
        |r| r.rc != 0,
    );
    assert_eq!(
        (rec.rc, rec.failed),
        (ocf::NOT_RUNNING, true),
        "recurring monitor of the killed unit: {rec:?}"
    );
    assert!(
        rec.exit_reason.contains("failed"),
        "recurring monitor of the killed unit says nothing of the failed unit: {rec:?}"
    );
    let res = x.resource("web").expect("GetResource web");
    assert!(
        res.failures
            .iter()
            .any(|f| f.call_id == rec.call_id && f.action == "monitor"),
        "the resource's last failure is not the monitor's: {res:?}"
    );
    x.call("Cancel", "sst", &["web", "monitor", "1000"]);
    eventually("the recurring monitor's job to end", || {
        match x.resource("web") {
            Ok(r) if r.jobs.is_empty() => Ok(()),
            Ok(r) => Err(format!("{r:?}")),
            Err(e) => Err(e),
        }
    });
    let rec = x.run("web", AGENT, "monitor");
    assert_eq!(
        rec.rc,
        ocf::NOT_RUNNING,
        "probe of the killed unit: {rec:?}"
    );

    // Started again, stopped, stopped again.
    let rec = x.run("web", AGENT, "start");
    assert_eq!(
        (rec.rc, rec.failed),
        (0, false),
        "start after the unit failed (a second systemd job of the executor): {rec:?}"
    );
    assert_eq!(
        x.active_state(),
        "active",
        "vigil-test after the second start"
    );
    let rec = x.run("web", AGENT, "stop");
    assert_eq!(
        (rec.rc, rec.note.as_str(), rec.failed),
        (0, "", false),
        "stop: {rec:?}"
    );
    assert_eq!(x.active_state(), "inactive", "vigil-test after the stop");
    let drop_ins = x.show("DropInPaths");
    assert!(
        !drop_ins.contains("50-vigil.conf"),
        "the drop-in outlived the stop (the unit is the system's again): {drop_ins}"
    );
    let rec = x.run("web", AGENT, "stop");
    assert_eq!(
        (rec.rc, rec.note.as_str(), rec.failed),
        (0, "already stopped", false),
        "second stop: {rec:?}"
    );
    assert_eq!(
        x.active_state(),
        "inactive",
        "vigil-test after the second stop"
    );

    // A unit that does not exist is not installed, and gets no drop-in.
    let rec = x.run("ghost", "systemd:no-such-unit", "start");
    assert_eq!(
        (rec.rc, rec.failed),
        (ocf::NOT_INSTALLED, true),
        "start of a unit that does not exist: {rec:?}"
    );
    let ghost = node.sh("ls -d /run/systemd/system/no-such-unit.service.d");
    assert!(
        !ghost.status.success(),
        "a drop-in was written for a unit that does not exist: {}",
        describe(&ghost)
    );

    // Every operation is in the node's journal, with its fields.
    let entries = eventually("the journal entries of resource web", || {
        let out = node.exec(&[
            "journalctl",
            "--no-pager",
            "-o",
            "json",
            "VIGIL_RESOURCE=web",
        ]);
        let entries: Vec<Json> = stdout(&out)
            .lines()
            .filter_map(|l| Json::parse(l).ok())
            .collect();
        let has = |op: &str, rc: &str| {
            entries
                .iter()
                .any(|e| e.get_str("VIGIL_OP") == Some(op) && e.get_str("VIGIL_RC") == Some(rc))
        };
        if has("web_start_0", "0") && has("web_monitor_0", "7") && has("web_stop_0", "0") {
            Ok(entries)
        } else {
            Err(format!(
                "{} entries (want web_start_0 rc 0, web_monitor_0 rc 7, web_stop_0 rc 0):\n{}",
                entries.len(),
                describe(&out)
            ))
        }
    });
    // Each operation's result (the entries with an rc; others, like a
    // cancelled recurring operation, have only the resource and the op).
    let results: Vec<&Json> = entries
        .iter()
        .filter(|e| e.get("VIGIL_RC").is_some())
        .collect();
    for e in &results {
        let field = |f: &str| e.get_str(f).unwrap_or_default();
        let id = field("MESSAGE_ID");
        assert!(
            id.len() == 32
                && id.bytes().all(|b| b.is_ascii_hexdigit())
                && field("VIGIL_OP").starts_with("web_")
                && field("VIGIL_RC").parse::<i32>().is_ok()
                && field("VIGIL_NODE") == "n1"
                && field("_SYSTEMD_UNIT") == "vigil-execd.service",
            "a journaled result of resource web lacks the executor's fields \
             (MESSAGE_ID, VIGIL_OP, VIGIL_RC, VIGIL_NODE=n1): {e:?}"
        );
    }
    eprintln!(
        "{T}: {} journaled results of web; took {:.1?}",
        results.len(),
        started.elapsed()
    );
}

// ---- the executor in the node -------------------------------------------

/// The node with the executor running in it; prints the executor's journal
/// when the test fails (before the node, dropped next, powers off).
struct Executor {
    node: Node,
}

impl Drop for Executor {
    fn drop(&mut self) {
        if std::thread::panicking() && self.node.running() {
            let out = self.node.exec_with_deadline(
                &[
                    "/bin/sh",
                    "-c",
                    "journalctl -u vigil-execd --no-pager -o short-precise; \
                     echo; systemctl status --no-pager vigil-test vigil-execd",
                ],
                Duration::from_secs(20),
            );
            eprintln!(
                "---- journal of vigil-execd on node {} ----\n{}",
                self.node.name(),
                describe(&out)
            );
        }
    }
}

impl Executor {
    /// Starts a bus and the executor (`binary`) on it, as transient units.
    fn start(node: Node, binary: &str) -> Executor {
        let x = Executor { node };
        x.node.sh_ok(&format!(
            "systemd-run --quiet --unit=vigil-test-bus \
             dbus-daemon --session --nofork --nopidfile --address={BUS}"
        ));
        eventually("the private bus socket", || {
            let out = x.node.exec(&["test", "-S", BUS_SOCKET]);
            if out.status.success() {
                Ok(())
            } else {
                Err(describe(&x.node.exec(&[
                    "systemctl",
                    "status",
                    "--no-pager",
                    "vigil-test-bus",
                ])))
            }
        });
        // Type=notify: systemd-run returns once the executor said it is
        // ready (or fails when it did not start).
        x.node.sh_ok(&format!(
            "systemd-run --quiet --unit=vigil-execd -p Type=notify \
             --setenv=RUST_LOG=debug,zbus=warn \
             {binary} --bus {BUS} --node-name n1"
        ));
        eventually("the executor to own org.vigil.executor1", || {
            let out = x.node.exec(&[
                "busctl",
                &format!("--address={BUS}"),
                "call",
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "NameHasOwner",
                "s",
                "org.vigil.executor1",
            ]);
            if stdout(&out) == "b true" {
                Ok(())
            } else {
                Err(describe(&out))
            }
        });
        x
    }

    /// Calls `method` of the executor's manager with busctl; the reply's
    /// values, or the error busctl printed.
    fn try_call(&self, method: &str, signature: &str, args: &[&str]) -> Result<Vec<Json>, String> {
        let address = format!("--address={BUS}");
        let mut argv = vec![
            "busctl",
            &address,
            "--json=short",
            "call",
            "org.vigil.executor1",
            "/org/vigil/executor1",
            "org.vigil.executor1.Manager",
            method,
        ];
        if !signature.is_empty() {
            argv.push(signature);
            argv.extend_from_slice(args);
        }
        let out = self.node.exec(&argv);
        if !out.status.success() {
            return Err(format!("{method}: {}", describe(&out)));
        }
        let text = stdout(&out);
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let reply = Json::parse(&text).map_err(|e| format!("{method}: {e} in {text}"))?;
        match reply.get("data") {
            Some(Json::Arr(values)) => Ok(values.clone()),
            _ => Err(format!("{method}: no data in {text}")),
        }
    }

    /// [`Executor::try_call`], failing the test on an error.
    fn call(&self, method: &str, signature: &str, args: &[&str]) -> Vec<Json> {
        self.try_call(method, signature, args)
            .unwrap_or_else(|e| panic!("busctl call {method} {signature} {args:?} failed: {e}"))
    }

    /// A reply of one `as`.
    fn strings(&self, data: Vec<Json>) -> Vec<String> {
        match data.first() {
            Some(Json::Arr(items)) => items
                .iter()
                .map(|i| i.as_str().unwrap_or_default().to_string())
                .collect(),
            other => panic!("expected a list of strings, got {other:?}"),
        }
    }

    /// `Execute`s a one-shot action (default timeout, no parameters) and
    /// returns its job's id.
    fn execute(&self, resource: &str, agent: &str, action: &str, interval_ms: u64) -> u32 {
        let interval = interval_ms.to_string();
        let data = self.call(
            "Execute",
            "ssstta{ss}a{ss}a{sv}",
            &[resource, agent, action, &interval, "0", "0", "0", "0"],
        );
        data.first()
            .and_then(Json::as_u64)
            .and_then(|id| u32::try_from(id).ok())
            .unwrap_or_else(|| panic!("Execute {resource} {action} returned {data:?}"))
    }

    /// `GetResource`.
    fn resource(&self, resource: &str) -> Result<Resource, String> {
        let data = self.try_call("GetResource", "s", &[resource])?;
        // busctl shows the one struct returned as its fields.
        Resource::from_json(&Json::Arr(data.clone()))
            .ok_or_else(|| format!("GetResource {resource} returned {data:?}"))
    }

    /// The highest call id of the resource's records (0 for a resource the
    /// executor does not know).
    fn last_call_id(&self, resource: &str) -> u64 {
        self.resource(resource)
            .map(|r| r.ops.iter().map(|o| o.call_id).max().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Runs a one-shot action and waits for its record.
    fn run(&self, resource: &str, agent: &str, action: &str) -> Record {
        let after = self.last_call_id(resource);
        let id = self.execute(resource, agent, action, 0);
        self.await_record(
            resource,
            (action, 0),
            after,
            Some(id),
            &format!("{action} of {resource} ({agent}, job {id})"),
            |_| true,
        )
    }

    /// Starts a recurring action and waits for the record of its first run.
    fn run_every(&self, resource: &str, agent: &str, action: &str, interval_ms: u64) -> Record {
        let after = self.last_call_id(resource);
        let id = self.execute(resource, agent, action, interval_ms);
        self.await_record(
            resource,
            (action, interval_ms),
            after,
            None,
            &format!("{action} every {interval_ms} ms of {resource} ({agent}, job {id})"),
            |_| true,
        )
    }

    /// Waits for a record of `op` (action, interval) newer than call
    /// `after` that `accept` takes, and (with `job`) for that job to end.
    fn await_record(
        &self,
        resource: &str,
        op: (&str, u64),
        after: u64,
        job: Option<u32>,
        what: &str,
        accept: impl Fn(&Record) -> bool,
    ) -> Record {
        eventually_for(what, OP_WAIT, || {
            let r = self.resource(resource)?;
            let rec = r
                .ops
                .iter()
                .find(|o| o.action == op.0 && o.interval_ms == op.1 && o.call_id > after);
            match rec {
                Some(rec)
                    if accept(rec)
                        && job.is_none_or(|id| r.jobs.iter().all(|j| j.0 != u64::from(id))) =>
                {
                    Ok(rec.clone())
                }
                _ => Err(format!("{r:?}")),
            }
        })
    }

    /// A property of vigil-test as `systemctl show` gives it.
    fn show(&self, property: &str) -> String {
        stdout(&self.node.exec(&["systemctl", "show", "-P", property, UNIT]))
    }

    fn active_state(&self) -> String {
        self.show("ActiveState")
    }

    fn main_pid(&self) -> u32 {
        let pid = self.show("MainPID");
        pid.parse()
            .unwrap_or_else(|_| panic!("MainPID of vigil-test is {pid:?}"))
    }
}

/// One operation record (`(tssstiissxxttibs)`).
#[derive(Debug, Clone)]
#[allow(dead_code)] // Fields only read through Debug in messages.
struct Record {
    call_id: u64,
    resource: String,
    agent: String,
    action: String,
    interval_ms: u64,
    rc: i32,
    op_status: i32,
    exit_reason: String,
    note: String,
    exec_ms: u64,
    queue_ms: u64,
    failed: bool,
}

impl Record {
    fn from_json(v: &Json) -> Option<Record> {
        let f = v.as_arr()?;
        if f.len() != 16 {
            return None;
        }
        Some(Record {
            call_id: f[0].as_u64()?,
            resource: f[1].as_str()?.to_string(),
            agent: f[2].as_str()?.to_string(),
            action: f[3].as_str()?.to_string(),
            interval_ms: f[4].as_u64()?,
            rc: i32::try_from(f[5].as_i64()?).ok()?,
            op_status: i32::try_from(f[6].as_i64()?).ok()?,
            exit_reason: f[7].as_str()?.to_string(),
            note: f[8].as_str()?.to_string(),
            exec_ms: f[11].as_u64()?,
            queue_ms: f[12].as_u64()?,
            failed: f[14].as_bool()?,
        })
    }
}

/// A resource as `GetResource` describes it.
#[derive(Debug, Clone)]
#[allow(dead_code)] // Fields only read through Debug in messages.
struct Resource {
    agent: String,
    state: String,
    ops: Vec<Record>,
    failures: Vec<Record>,
    /// id, action, interval, state.
    jobs: Vec<(u64, String, u64, String)>,
}

impl Resource {
    fn from_json(v: &Json) -> Option<Resource> {
        let f = v.as_arr()?;
        if f.len() != 5 {
            return None;
        }
        let records = |v: &Json| -> Option<Vec<Record>> {
            v.as_arr()?.iter().map(Record::from_json).collect()
        };
        let jobs = f[4]
            .as_arr()?
            .iter()
            .map(|j| {
                let j = j.as_arr()?;
                Some((
                    j.first()?.as_u64()?,
                    j.get(1)?.as_str()?.to_string(),
                    j.get(2)?.as_u64()?,
                    j.get(3)?.as_str()?.to_string(),
                ))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Resource {
            agent: f[0].as_str()?.to_string(),
            state: f[1].as_str()?.to_string(),
            ops: records(&f[2])?,
            failures: records(&f[3])?,
            jobs,
        })
    }
}

// ---- helpers -------------------------------------------------------------

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn describe(out: &Output) -> String {
    format!(
        "{}; stdout: {}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end()
    )
}

/// Runs `probe` until it gives a value, for up to 10 s.
fn eventually<T>(what: &str, probe: impl FnMut() -> Result<T, String>) -> T {
    eventually_for(what, Duration::from_secs(10), probe)
}

fn eventually_for<T>(
    what: &str,
    wait: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let end = Instant::now() + wait;
    loop {
        match probe() {
            Ok(v) => return v,
            Err(last) if Instant::now() > end => {
                panic!("timed out after {wait:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Just enough JSON for `busctl --json` and `journalctl -o json`.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    /// The number as written (64-bit values stay exact).
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Result<Json, String> {
        let mut p = JsonParser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing text at byte {}", p.i));
        }
        Ok(v)
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Json::as_str)
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Num(n) => n.parse().ok(),
            _ => None,
        }
    }

    fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Num(n) => n.parse().ok(),
            _ => None,
        }
    }

    fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    fn as_arr(&self) -> Option<&[Json]> {
        match self {
            Json::Arr(items) => Some(items),
            _ => None,
        }
    }
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.i))
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut fields = Vec::new();
                self.ws();
                if self.eat("}") {
                    return Ok(Json::Obj(fields));
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    self.ws();
                    if !self.eat(":") {
                        return self.err("expected ':'");
                    }
                    fields.push((key, self.value()?));
                    self.ws();
                    if self.eat("}") {
                        return Ok(Json::Obj(fields));
                    }
                    if !self.eat(",") {
                        return self.err("expected ',' or '}'");
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.eat("]") {
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    if self.eat("]") {
                        return Ok(Json::Arr(items));
                    }
                    if !self.eat(",") {
                        return self.err("expected ',' or ']'");
                    }
                }
            }
            Some(b'"') => self.string().map(Json::Str),
            Some(b't') if self.eat("true") => Ok(Json::Bool(true)),
            Some(b'f') if self.eat("false") => Ok(Json::Bool(false)),
            Some(b'n') if self.eat("null") => Ok(Json::Null),
            Some(c) if *c == b'-' || c.is_ascii_digit() => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_digit() || b"+-.eE".contains(c))
                {
                    self.i += 1;
                }
                Ok(Json::Num(
                    String::from_utf8_lossy(&self.s[start..self.i]).into_owned(),
                ))
            }
            _ => self.err("expected a value"),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        if !self.eat("\"") {
            return self.err("expected a string");
        }
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return self.err("unterminated string");
            };
            self.i += 1;
            match c {
                b'"' => return Ok(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return self.err("unterminated escape");
                    };
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hex = |p: &mut Self| -> Result<u32, String> {
                                let digits = p.s.get(p.i..p.i + 4).unwrap_or_default();
                                let n = std::str::from_utf8(digits)
                                    .ok()
                                    .and_then(|h| u32::from_str_radix(h, 16).ok());
                                p.i += 4;
                                n.ok_or_else(|| format!("bad \\u escape at byte {}", p.i))
                            };
                            let mut n = hex(self)?;
                            if (0xd800..0xdc00).contains(&n) && self.eat("\\u") {
                                let low = hex(self)?;
                                n = 0x10000 + ((n - 0xd800) << 10) + (low.wrapping_sub(0xdc00));
                            }
                            char::from_u32(n).unwrap_or('\u{fffd}')
                        }
                        _ => return self.err("bad escape"),
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                c => out.push(c),
            }
        }
    }
}

#[test]
fn json_for_busctl_and_journalctl() {
    let v = Json::parse(
        r#"{"type":"uo","data":[18446744073709551615,"/o\/p",-1,true,null,[],{"a":"\u00e9\ud83d\ude00\n"}]}"#,
    )
    .unwrap();
    let data = v.get("data").and_then(Json::as_arr).unwrap();
    assert_eq!(data[0].as_u64(), Some(u64::MAX));
    assert_eq!(data[1].as_str(), Some("/o/p"));
    assert_eq!(data[2].as_i64(), Some(-1));
    assert_eq!(data[3].as_bool(), Some(true));
    assert_eq!(data[4], Json::Null);
    assert_eq!(data[5], Json::Arr(Vec::new()));
    assert_eq!(data[6].get_str("a"), Some("é😀\n"));
    assert!(Json::parse("[1,").is_err());
    assert!(Json::parse("{} x").is_err());
}
