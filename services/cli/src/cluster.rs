//! `vigil cluster keygen|setup|start|stop`: the cluster key, the same
//! configuration and key on every node (the `pcs cluster setup` job,
//! through ssh as root), and the stack started or stopped through systemd
//! here or everywhere.

use std::path::Path;

use anyhow::{Context, bail};
use vigil_membershipd::transport::{AuthKey, write_key};

/// Writes a new cluster key to `path`, refusing to replace one unless
/// `force`: replacing a key cuts this node off until every node has the new
/// one.
pub fn keygen(path: &Path, force: bool) -> anyhow::Result<()> {
    if path.exists() && !force {
        bail!(
            "{} already exists; nodes with a different key cannot talk to each other. \
             Use --force to replace it, then copy it to every node",
            path.display()
        );
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }
    let key = AuthKey::try_generate().context("cannot generate a key")?;
    write_key(path, &key)?;
    println!(
        "wrote the cluster key {} (fingerprint {}); copy this same file, mode 0400, to every node",
        path.display(),
        key.fingerprint()
    );
    Ok(())
}

/// The configuration directory every node uses.
pub const CONFIG_DIR: &str = "/etc/vigil";

/// A node named on `vigil cluster setup`'s command line: `NAME` (its
/// address found by name) or `NAME=ADDRESS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
    pub address: std::net::IpAddr,
}

/// Reads `NAME[=ADDRESS]`; without an address the name is looked up
/// (IPv4 first).
pub fn parse_node(spec: &str) -> anyhow::Result<NodeSpec> {
    let (name, addr) = match spec.split_once('=') {
        Some((n, a)) => (n, Some(a)),
        None => (spec, None),
    };
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if !valid {
        bail!("{name:?} is not a node name: use letters, digits, '-', '_' and '.'");
    }
    let address = match addr {
        Some(a) => a
            .parse()
            .with_context(|| format!("{a:?} (for {name}) is not an IP address"))?,
        None => {
            use std::net::ToSocketAddrs;
            let found: Vec<std::net::IpAddr> = (name, 0)
                .to_socket_addrs()
                .with_context(|| {
                    format!("cannot find the address of {name}: give it as {name}=ADDRESS")
                })?
                .map(|s| s.ip())
                .collect();
            found
                .iter()
                .find(|a| a.is_ipv4())
                .or(found.first())
                .copied()
                .with_context(|| format!("{name} has no address: give it as {name}=ADDRESS"))?
        }
    };
    Ok(NodeSpec {
        name: name.to_string(),
        address,
    })
}

/// The cluster configuration for `nodes` (ids 1.. in order), checked the
/// way the membership daemon reads it.
pub fn configuration(name: &str, nodes: &[NodeSpec]) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    if nodes.is_empty() {
        bail!("name the cluster's nodes: vigil cluster setup n1 n2 n3");
    }
    let mut seen = std::collections::BTreeSet::new();
    for n in nodes {
        if !seen.insert(n.name.as_str()) {
            bail!("{} is named twice", n.name);
        }
    }
    let mut text = format!(
        "# Written by `vigil cluster setup`; the same on every node.\n\
         [cluster]\nname = \"{name}\"\n"
    );
    if nodes.len() == 2 {
        text.push_str(
            "\n# Two nodes: either alone keeps quorum, fencing decides who survives.\n\
             [quorum]\ntwo_node = true\n",
        );
    }
    for (i, n) in nodes.iter().enumerate() {
        let _ = write!(
            text,
            "\n[[node]]\nid = {}\nname = \"{}\"\naddresses = [\"{}\"]\n",
            i + 1,
            n.name,
            n.address
        );
    }
    if let Err(errors) = vigil_membershipd::config::parse(&text, "cluster.toml") {
        bail!("the cluster configuration would be wrong:\n{errors}");
    }
    Ok(text)
}

/// What `setup` sends each node: the configuration and the key.
fn bundle(config: &str, key: &AuthKey) -> String {
    let hex: String = key.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}\n{config}")
}

/// `vigil cluster receive` (run by `setup` on each node, through ssh):
/// checks that this node is free to join (no configuration yet, unless
/// `force`), and unless `check` writes what `setup` sent on stdin.
pub fn receive(dir: &Path, check: bool, force: bool) -> anyhow::Result<()> {
    let config_path = dir.join("cluster.toml");
    if config_path.exists() && !force {
        bail!(
            "{} exists: this node is set up already (--force replaces its configuration and key)",
            config_path.display()
        );
    }
    if check {
        return Ok(());
    }
    let mut input = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut input)
        .context("cannot read what setup sent")?;
    let (hex, config) = input
        .split_once('\n')
        .context("setup sent nothing usable")?;
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
        .collect::<Result<_, _>>()
        .context("setup sent a malformed key")?;
    let key =
        AuthKey::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("setup sent a bad key: {e}"))?;
    if let Err(errors) = vigil_membershipd::config::parse(config, "cluster.toml") {
        bail!("setup sent a configuration with errors:\n{errors}");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_key(&dir.join("authkey"), &key)?;
    let tmp = dir.join("cluster.toml.new");
    std::fs::write(&tmp, config).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &config_path)
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    Ok(())
}

/// How `setup`, `start` and `stop` reach the other nodes: `ssh` as root
/// (`VIGIL_SSH` names another program taking the same arguments).
fn remote(address: &std::net::IpAddr, command: &[&str]) -> std::process::Command {
    let ssh = std::env::var("VIGIL_SSH").unwrap_or_else(|_| "ssh".into());
    let mut c = std::process::Command::new(ssh);
    c.args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"])
        .arg(format!("root@{address}"))
        .args(command);
    c
}

/// Whether `address` is one of this machine's.
fn is_local(address: &std::net::IpAddr) -> bool {
    if address.is_loopback() {
        return true;
    }
    nix::ifaddrs::getifaddrs()
        .map(|mut it| {
            it.any(|i| {
                i.address.is_some_and(|a| {
                    a.as_sockaddr_in().map(|s| std::net::IpAddr::V4(s.ip())) == Some(*address)
                        || a.as_sockaddr_in6().map(|s| std::net::IpAddr::V6(s.ip()))
                            == Some(*address)
                })
            })
        })
        .unwrap_or(false)
}

/// Runs `command` on node `n` (here when it is this machine): its output,
/// or an error that names the node.
fn on_node(n: &NodeSpec, command: &[&str], input: Option<&str>) -> anyhow::Result<String> {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut c = if is_local(&n.address) {
        let mut c = std::process::Command::new(command[0]);
        c.args(&command[1..]);
        c
    } else {
        remote(&n.address, command)
    };
    let mut child = c
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("{}: cannot run {}", n.name, command[0]))?;
    if let Some(text) = input
        && let Some(mut stdin) = child.stdin.take()
    {
        stdin.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "{} ({}): {}",
            n.name,
            n.address,
            err.trim().trim_start_matches("Error: ")
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The path of this `vigil` for running it here; remote nodes run the
/// `vigil` on their PATH (the package installs it).
fn vigil_here() -> String {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "vigil".into())
}

fn vigil_for(n: &NodeSpec) -> String {
    if is_local(&n.address) {
        vigil_here()
    } else {
        "vigil".into()
    }
}

/// `vigil cluster setup NODE...`: writes the same configuration and a new
/// key on every node (through ssh as root for the others), after checking
/// that each can be reached and is not set up already (so that it never
/// stops half-way for those reasons).
pub fn setup(name: &str, specs: &[String], force: bool) -> anyhow::Result<()> {
    let nodes: Vec<NodeSpec> = specs
        .iter()
        .map(|s| parse_node(s))
        .collect::<anyhow::Result<_>>()?;
    let config = configuration(name, &nodes)?;
    let key = AuthKey::try_generate().context("cannot generate a key")?;
    let payload = bundle(&config, &key);
    let mut problems = Vec::new();
    for n in &nodes {
        let v = vigil_for(n);
        let mut args = vec![v.as_str(), "cluster", "receive", "--check"];
        if force {
            args.push("--force");
        }
        if let Err(e) = on_node(n, &args, None) {
            problems.push(e.to_string());
        }
    }
    if !problems.is_empty() {
        bail!(
            "nothing was written; first:\n  {}\n(every node needs the vigil package and root ssh from here)",
            problems.join("\n  ")
        );
    }
    for n in &nodes {
        let v = vigil_for(n);
        let mut args = vec![v.as_str(), "cluster", "receive", "--force"];
        if !force {
            args.pop();
        }
        on_node(n, &args, Some(&payload))?;
        println!("{}: configuration and key written", n.name);
    }
    println!(
        "cluster {name} set up on {} (key fingerprint {}); start it with `vigil cluster start --all`",
        nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        key.fingerprint()
    );
    Ok(())
}

/// The nodes of this node's cluster configuration.
fn configured_nodes() -> anyhow::Result<Vec<NodeSpec>> {
    let path = Path::new(CONFIG_DIR).join("cluster.toml");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {}: is this node set up? (vigil cluster setup)",
            path.display()
        )
    })?;
    let cfg = vigil_membershipd::config::parse(&text, &path.display().to_string())
        .map_err(|e| anyhow::anyhow!("{} has errors:\n{e}", path.display()))?;
    Ok(cfg
        .nodes
        .iter()
        .filter_map(|n| {
            Some(NodeSpec {
                name: n.name.clone(),
                address: *n.addresses.first()?,
            })
        })
        .collect())
}

/// `vigil cluster start|stop [--all]`: `systemctl start|stop vigil.target`
/// here, or on every node at once (a stop on every node at once lets the
/// cluster stop everything in one go instead of moving resources from
/// node to node).
pub fn start_stop(verb: &str, all: bool) -> anyhow::Result<()> {
    let here = NodeSpec {
        name: "this node".into(),
        address: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    };
    let nodes = if all { configured_nodes()? } else { vec![here] };
    let handles: Vec<_> = nodes
        .into_iter()
        .map(|n| {
            let verb = verb.to_string();
            std::thread::spawn(move || {
                let r = on_node(&n, &["systemctl", &verb, "vigil.target"], None);
                (n.name, r)
            })
        })
        .collect();
    let mut failed = Vec::new();
    for h in handles {
        let (name, r) = h.join().map_err(|_| anyhow::anyhow!("a worker died"))?;
        match r {
            Ok(_) => println!(
                "{name}: vigil.target {}",
                if verb == "stop" { "stopped" } else { "started" }
            ),
            Err(e) => failed.push(e.to_string()),
        }
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("\n"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_specs_and_the_configuration() {
        let n = parse_node("n1=192.0.2.11").unwrap();
        assert_eq!(n.name, "n1");
        assert_eq!(n.address.to_string(), "192.0.2.11");
        assert_eq!(
            parse_node("localhost").unwrap().address.to_string(),
            "127.0.0.1"
        );
        let e = parse_node("n1=nope").unwrap_err().to_string();
        assert!(e.contains("\"nope\" (for n1) is not an IP address"), "{e}");
        let e = parse_node("n 1").unwrap_err().to_string();
        assert!(e.contains("is not a node name"), "{e}");
        let nodes: Vec<NodeSpec> = ["n1=192.0.2.11", "n2=192.0.2.12", "n3=192.0.2.13"]
            .iter()
            .map(|s| parse_node(s).unwrap())
            .collect();
        let c = configuration("prod", &nodes).unwrap();
        let cfg = vigil_membershipd::config::parse(&c, "x").unwrap();
        assert_eq!(cfg.nodes.len(), 3);
        assert!(!c.contains("two_node"));
        assert!(
            configuration("prod", &nodes[..2])
                .unwrap()
                .contains("two_node = true")
        );
        let twice = [nodes[0].clone(), nodes[0].clone()];
        assert!(
            configuration("prod", &twice)
                .unwrap_err()
                .to_string()
                .contains("named twice")
        );
        assert!(configuration("prod", &[]).is_err());
        // What receive reads back is what setup sent.
        let key = AuthKey::generate();
        let b = bundle(&c, &key);
        let (hex, rest) = b.split_once('\n').unwrap();
        assert_eq!(rest, c);
        assert_eq!(hex.len(), 64);
    }
}
