//! Agents for tests: a scripted fence agent (and where to put it).

use std::path::{Path, PathBuf};

/// A fence agent for tests, `fence_test`. Parameters: `log` (each fencing
/// action is appended as `ACTION TARGET MODE`), `mode` (`ok`, `fail`,
/// `hang`, `lie`: success without fencing), `state` (a directory of power
/// states, one file per target, read by `status`). It lists n1, n2 and n3.
pub const FENCE_TEST: &str = r#"#!/bin/sh
action=; port=; log=; mode=ok; state=
while IFS= read -r line; do
    case "$line" in
    action=*) action=${line#action=} ;;
    port=*) port=${line#port=} ;;
    log=*) log=${line#log=} ;;
    mode=*) mode=${line#mode=} ;;
    state=*) state=${line#state=} ;;
    esac
done
case "$action" in
metadata)
    cat <<'XML'
<?xml version="1.0" ?>
<resource-agent name="fence_test" shortdesc="A fence agent for tests">
<parameters>
<parameter name="port" unique="0" required="0"><content type="string"/></parameter>
<parameter name="log" unique="0" required="0"><content type="string"/></parameter>
<parameter name="mode" unique="0" required="0"><content type="string" default="ok"/></parameter>
<parameter name="state" unique="0" required="0"><content type="string"/></parameter>
</parameters>
<actions>
<action name="on"/><action name="off"/><action name="reboot"/><action name="status"/>
<action name="list"/><action name="monitor"/><action name="metadata"/>
</actions>
</resource-agent>
XML
    exit 0 ;;
list) echo "n1"; echo "n2"; echo "n3"; exit 0 ;;
monitor) exit 0 ;;
status)
    [ -n "$state" ] && [ "$(cat "$state/$port" 2>/dev/null)" = off ] && exit 2
    exit 0 ;;
esac
[ -n "$log" ] && echo "$action $port $mode" >> "$log"
case "$mode" in
fail) echo "ERROR: the switch refused" >&2; exit 1 ;;
hang) sleep 1000 ;;
lie) exit 0 ;;
esac
[ -n "$state" ] && case "$action" in
off) echo off > "$state/$port" ;;
on|reboot) echo on > "$state/$port" ;;
esac
exit 0
"#;

/// Writes `fence_test` into `dir` (created) and returns its path.
pub fn install_fence_test(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).expect("create the agent directory");
    let path = dir.join("fence_test");
    std::fs::write(&path, FENCE_TEST).expect("write fence_test");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .expect("make fence_test executable");
    path
}
