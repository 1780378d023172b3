//! vigil: the operator CLI.
//!
//! - `vigil simulate` runs the policy engine on a CIB file and prints what
//!   the cluster would do, in crm_simulate's format;
//! - `vigil cluster keygen` creates the cluster key;
//! - `vigil membership status` and `vigil quorum status` ask the local
//!   membership daemon over D-Bus (corosync-cfgtool's and
//!   corosync-quorumtool's information); `vigil quorum expected-votes N`
//!   changes the expected votes cluster-wide;
//! - `vigil cib show|edit|replace|patch|upgrade` and `vigil property
//!   get|set|unset` read and change the CIB through the CIB daemon;
//!   `vigil cib diff` compares two CIB files;
//! - `vigil agent list|meta|exec` lists resource agents, shows their
//!   metadata and runs one action by hand, as the executor would;
//! - `vigil fence NODE`, `vigil fence history|confirm` and `vigil stonith
//!   list|show` use the fencer;
//! - `vigil status` shows the cluster; `vigil sandbox up|status|kill|down`
//!   runs a whole cluster on this machine;
//! - `vigil resource ...`, `vigil group ...`, `vigil clone`/`unclone`,
//!   `vigil constraint ...` and `vigil node ...` configure and operate
//!   resources and nodes.

mod agent;
mod attribute;
mod bus;
mod cib;
mod cluster;
mod configure;
mod fence;
mod membership;
mod resource;
mod sandbox;
mod simulate;
mod status;
mod tree;
mod why;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "vigil",
    version,
    about = "Operate a Vigil high-availability cluster"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Compute what the cluster would do for a CIB, without touching anything
    Simulate(SimulateArgs),
    /// Set up the cluster: keys and configuration
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// The membership as this node's membership daemon sees it
    #[command(subcommand)]
    Membership(MembershipCommand),
    /// Quorum as this node's membership daemon sees it
    #[command(subcommand)]
    Quorum(QuorumCommand),
    /// The cluster information base (configuration and status)
    #[command(subcommand)]
    Cib(CibCommand),
    /// Cluster options (the crm_config section)
    #[command(subcommand)]
    Property(PropertyCommand),
    /// Resource agents on this node: list them, read their metadata, run
    /// one by hand
    #[command(subcommand)]
    Agent(AgentCommand),
    /// The cluster: nodes, resources, the DC, quorum, recent fencing
    Status {
        /// Show it again at every change, until interrupted
        #[arg(long)]
        watch: bool,
        /// text, or json (a stable shape, see `vigil status --help`)
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        output: String,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Nodes: standby, maintenance, attributes
    #[command(subcommand)]
    Node(NodeCommand),
    /// Resources: create, update, delete, show, enable, disable, restart,
    /// move, ban, clear, cleanup
    #[command(subcommand)]
    Resource(ResourceCommand),
    /// Groups: primitives that run together, on one node, started in order
    #[command(subcommand)]
    Group(GroupCommand),
    /// Run a primitive or group as a clone (RSC-clone) with clone options
    /// NAME=VALUE (clone-max, clone-node-max, interleave, notify, ...)
    Clone {
        /// The primitive or group (at the top level, not in a group)
        resource: String,
        /// Clone options, NAME=VALUE
        #[arg(value_name = "NAME=VALUE")]
        meta: Vec<String>,
        /// One instance is promoted (promotable=true)
        #[arg(long)]
        promotable: bool,
        /// Accept options Vigil does not know
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Unwrap a clone: what it holds runs as one resource again (RESOURCE
    /// is the clone or the resource in it)
    Unclone {
        resource: String,
        /// Remove the constraints that name the clone (else refused)
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Constraints: location, colocation, order
    #[command(subcommand)]
    Constraint(ConstraintCommand),
    /// Why a resource runs where it runs, or is stopped: its state, the
    /// scores per node and the constraints behind them
    Why {
        resource: String,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// A whole cluster on this machine, without root: up, status, kill a
    /// node, down
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Fence a node (`vigil fence NODE`), or read the fence history
    Fence(FenceArgs),
    /// Fence devices
    #[command(subcommand)]
    Stonith(StonithCommand),
}

#[derive(Parser, Debug)]
#[command(args_conflicts_with_subcommands = true)]
struct FenceArgs {
    #[command(subcommand)]
    command: Option<FenceCommand>,
    /// The node to fence
    node: Option<String>,
    /// off, reboot or on (on unfences)
    #[arg(long, default_value = "reboot")]
    action: String,
    /// Wait this long before fencing (e.g. 5s)
    #[arg(long)]
    delay: Option<String>,
    /// How long to wait for the result
    #[arg(long, default_value = "5min")]
    wait: String,
    #[command(flatten)]
    bus: BusArgs,
}

#[derive(Subcommand, Debug)]
enum FenceCommand {
    /// The cluster's fence history (of one node), and what is under way
    History {
        node: Option<String>,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Record that a node is down, checked by hand (the cluster then
    /// recovers its resources elsewhere)
    Confirm {
        node: String,
        /// Yes, the node is powered off
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        bus: BusArgs,
    },
}

#[derive(Subcommand, Debug)]
enum NodeCommand {
    /// Move every resource off a node and keep them off
    Standby {
        node: String,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Let a node run resources again
    Unstandby {
        node: String,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Stop managing a node's resources (they keep running as they are)
    Maintenance {
        node: String,
        /// Manage them again
        #[arg(long)]
        off: bool,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// A node's attributes: all of them (permanent and transient), one,
    /// or set one (NAME VALUE) or delete it (NAME --delete)
    Attribute {
        node: String,
        name: Option<String>,
        #[arg(allow_hyphen_values = true)]
        value: Option<String>,
        /// Delete the attribute
        #[arg(long)]
        delete: bool,
        /// forever (in the configuration; the default for changes) or
        /// reboot (transient: until the node's controller stops)
        #[arg(long, value_parser = ["forever", "reboot"])]
        lifetime: Option<String>,
        /// Write a transient change once it has held this long (5s,
        /// 500ms, 2min)
        #[arg(long)]
        dampen: Option<String>,
        #[command(flatten)]
        bus: BusArgs,
    },
}

#[derive(Subcommand, Debug)]
enum GroupCommand {
    /// Put primitives into a group (made if missing), at its end or
    /// before/after a member; primitives in another group leave it
    Add {
        group: String,
        #[arg(required = true)]
        resources: Vec<String>,
        /// Put them before this member
        #[arg(long, conflicts_with = "after")]
        before: Option<String>,
        /// Put them after this member
        #[arg(long)]
        after: Option<String>,
        /// Remove constraints naming a group that empties (else refused)
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Take primitives out of a group (they stay as resources of their
    /// own); a group left empty is deleted
    Remove {
        group: String,
        #[arg(required = true)]
        resources: Vec<String>,
        /// Remove constraints naming the group if it goes (else refused)
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Ungroup: the group goes, its members stay as resources of their own
    Delete {
        group: String,
        /// Remove the constraints that name the group (else refused)
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        bus: BusArgs,
    },
}

#[derive(Subcommand, Debug)]
enum ConstraintCommand {
    /// Where a resource prefers (or must not) run
    #[command(subcommand)]
    Location(LocationCommand),
    /// Run a resource with (or apart from) another
    #[command(subcommand)]
    Colocation(ColocationCommand),
    /// Start one resource before another
    #[command(subcommand)]
    Order(OrderCommand),
    /// Remove a constraint by its id
    Remove {
        id: String,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Every constraint
    List(BusArgs),
}

#[derive(Subcommand, Debug)]
enum LocationCommand {
    /// RESOURCE on NODE with SCORE (INFINITY: must, -INFINITY: never)
    Add {
        resource: String,
        node: String,
        #[arg(allow_hyphen_values = true)]
        score: String,
        #[command(flatten)]
        bus: BusArgs,
    },
}

#[derive(Subcommand, Debug)]
enum ColocationCommand {
    /// RESOURCE with WITH, with SCORE (-INFINITY: never together)
    Add {
        resource: String,
        with: String,
        #[arg(allow_hyphen_values = true)]
        score: String,
        #[command(flatten)]
        bus: BusArgs,
    },
}

#[derive(Subcommand, Debug)]
enum OrderCommand {
    /// FIRST before THEN (and THEN stopped before FIRST)
    Add {
        first: String,
        then: String,
        /// Mandatory, Optional or Serialize
        #[arg(long, default_value = "Mandatory")]
        kind: String,
        #[command(flatten)]
        bus: BusArgs,
    },
}

#[derive(Subcommand, Debug)]
enum ResourceCommand {
    /// Add a resource: ID AGENT [NAME=VALUE...] (checked with the agent
    /// on this node first)
    Create {
        id: String,
        /// ocf:PROVIDER:TYPE, lsb:NAME, systemd:UNIT, ...
        agent: String,
        /// Parameters, NAME=VALUE
        params: Vec<String>,
        /// A meta-attribute, NAME=VALUE (repeatable)
        #[arg(long = "meta", value_name = "NAME=VALUE")]
        meta: Vec<String>,
        /// Put it at the end of this group (created if needed)
        #[arg(long)]
        group: Option<String>,
        /// Its monitor's interval
        #[arg(long, default_value = "10s")]
        monitor: String,
        /// Create it even if the agent finds the parameters wrong
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Change a resource's parameters NAME=VALUE (checked with its agent
    /// on this node; NAME= removes one) and meta attributes
    Update {
        id: String,
        /// Parameters, NAME=VALUE (NAME= removes it)
        #[arg(value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// A meta-attribute, NAME=VALUE (NAME= removes it; repeatable);
        /// also for groups and clones
        #[arg(long = "meta", value_name = "NAME=VALUE")]
        meta: Vec<String>,
        /// Change it even if the agent finds the parameters wrong
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Stop a resource everywhere and start it again (its target-role is
    /// put back as it was)
    Restart {
        resource: String,
        /// How long to wait for it to stop, and then to start (90s, 2min)
        #[arg(long, default_value = "2min")]
        timeout: String,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Stop a resource, then remove it and its constraints
    Delete {
        id: String,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// A resource's configuration (every resource's id without one)
    Show {
        id: Option<String>,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Let a resource run (target-role Started)
    Enable {
        resource: String,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Stop a resource and keep it stopped (target-role Stopped)
    Disable {
        resource: String,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Run a resource on a node (a location constraint, until `clear` or
    /// the end of its lifetime)
    Move {
        resource: String,
        node: String,
        /// How long the move lasts: an ISO 8601 duration (PT10M) or a
        /// span (10min, 90s); for ever when not given
        #[arg(long)]
        lifetime: Option<String>,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Keep a resource off a node (a location constraint, until `clear` or
    /// the end of its lifetime)
    Ban {
        resource: String,
        node: String,
        /// How long the ban lasts: an ISO 8601 duration (PT10M) or a span
        /// (10min, 90s); for ever when not given
        #[arg(long)]
        lifetime: Option<String>,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Remove the constraints `move` and `ban` left
    Clear {
        resource: String,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Forget a resource's failures and history (on one node, or all):
    /// the cluster probes it afresh
    Cleanup {
        resource: String,
        #[arg(long)]
        node: Option<String>,
        #[command(flatten)]
        bus: BusArgs,
    },
}

#[derive(Parser, Debug)]
struct SandboxDir {
    /// The sandbox's directory (default: /tmp/vigil-sandbox-UID)
    #[arg(long)]
    dir: Option<PathBuf>,
}

impl SandboxDir {
    fn path(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(sandbox::default_dir)
    }
}

#[derive(Subcommand, Debug)]
enum SandboxCommand {
    /// Boot an N-node cluster on this machine with a demo configuration
    Up {
        /// How many nodes
        #[arg(long, default_value_t = 3)]
        nodes: u32,
        #[command(flatten)]
        dir: SandboxDir,
    },
    /// Which nodes run, and their buses
    Status(SandboxDir),
    /// Pull a node's plug (kill all its processes at once)
    Kill {
        node: String,
        #[command(flatten)]
        dir: SandboxDir,
    },
    /// Power a node that is off on again; it rejoins the cluster
    Start {
        node: String,
        #[command(flatten)]
        dir: SandboxDir,
    },
    /// Cut the links between these nodes and the others, both ways (a
    /// network split)
    Partition {
        #[arg(required = true)]
        nodes: Vec<String>,
        #[command(flatten)]
        dir: SandboxDir,
    },
    /// Restore every link `partition` cut
    Heal(SandboxDir),
    /// Stop every node and remove the sandbox
    Down(SandboxDir),
}

#[derive(Subcommand, Debug)]
enum StonithCommand {
    /// The fence devices and the nodes they are configured for
    List(BusArgs),
    /// A device, and whether its monitor succeeds
    Show {
        device: String,
        #[command(flatten)]
        bus: BusArgs,
    },
}

#[derive(Subcommand, Debug)]
enum AgentCommand {
    /// The agent classes this node has; the providers of ocf agents; or
    /// the agents of a class (and provider)
    List {
        /// ocf, lsb, systemd, service or stonith
        class: Option<String>,
        /// An ocf provider (heartbeat, pacemaker, ...)
        provider: Option<String>,
        #[command(flatten)]
        at: agent::Where,
    },
    /// An agent's description, parameters and actions
    Meta {
        /// The agent: ocf:PROVIDER:TYPE, lsb:NAME, systemd:UNIT, ...
        agent: String,
        /// Print the metadata XML as the agent gives it
        #[arg(long)]
        xml: bool,
        #[command(flatten)]
        at: agent::Where,
    },
    /// Run one action of an agent here, with the environment the cluster
    /// would give it (the executor's code, without the daemon); exits with
    /// the agent's OCF exit code
    Exec {
        #[command(flatten)]
        args: agent::ExecArgs,
        #[command(flatten)]
        at: agent::Where,
    },
}

#[derive(Subcommand, Debug)]
enum CibCommand {
    /// Print the CIB, a section of it, or what an XPath selects
    Show {
        /// A section: configuration, nodes, resources, constraints,
        /// crm_config, rsc_defaults, op_defaults, status, acls,
        /// fencing-topology, tags, alerts
        #[arg(long, conflicts_with = "xpath")]
        section: Option<String>,
        /// An XPath expression
        #[arg(long)]
        xpath: Option<String>,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Edit the CIB in $VISUAL or $EDITOR; the change is checked and
    /// applied as a patch, and an edit with a mistake is opened again
    Edit(BusArgs),
    /// Replace the whole CIB (a Pacemaker cib.xml loads as it is), a
    /// section, or what an XPath selects, with FILE (`-`: standard input)
    Replace {
        file: PathBuf,
        #[arg(long, conflicts_with = "xpath")]
        section: Option<String>,
        #[arg(long)]
        xpath: Option<String>,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Apply a v2 patchset (as crm_diff writes them) from FILE
    Patch {
        file: PathBuf,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// The v2 patchset that turns CIB file OLD into CIB file NEW
    Diff { old: PathBuf, new: PathBuf },
    /// Move the CIB to the newest schema
    Upgrade(BusArgs),
}

#[derive(Subcommand, Debug)]
enum PropertyCommand {
    /// Print a cluster option (or every one that is set)
    Get {
        name: Option<String>,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Set a cluster option, checking its name and value
    Set {
        name: String,
        value: String,
        /// Set it even if Vigil does not know the option
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Remove a cluster option (its default applies again)
    Unset {
        name: String,
        #[command(flatten)]
        bus: BusArgs,
    },
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Create the cluster key (32 random bytes, mode 0400); copy the same
    /// file to every node
    Keygen {
        /// Where to write it
        #[arg(long, default_value = vigil_membershipd::transport::DEFAULT_KEY_PATH)]
        key: PathBuf,
        /// Replace an existing key (every node then needs the new one)
        #[arg(long)]
        force: bool,
    },
    /// Set up a cluster: the same configuration and a new key on every node
    /// given (NAME or NAME=ADDRESS; ids in the order given), through ssh as
    /// root for the other nodes
    Setup {
        #[arg(required = true)]
        nodes: Vec<String>,
        /// The cluster's name
        #[arg(long, default_value = "vigil")]
        name: String,
        /// Replace the configuration and key of nodes set up already
        #[arg(long)]
        force: bool,
    },
    /// Start the stack here (systemctl start vigil.target), or on every node
    Start {
        /// On every node of this node's cluster configuration
        #[arg(long)]
        all: bool,
    },
    /// Stop the stack here (its resources move away first), or on every node
    /// at once
    Stop {
        /// On every node of this node's cluster configuration
        #[arg(long)]
        all: bool,
    },
    /// What `setup` runs on each node: writes the configuration and key read
    /// from stdin
    #[command(hide = true)]
    Receive {
        /// Only check that this node may be set up
        #[arg(long)]
        check: bool,
        #[arg(long)]
        force: bool,
        #[arg(long, default_value = cluster::CONFIG_DIR)]
        dir: PathBuf,
    },
}

/// Where to find the daemons.
#[derive(clap::Args, Debug)]
struct BusArgs {
    /// D-Bus address (default: $VIGIL_BUS, else the system bus)
    #[arg(long, global = true)]
    bus: Option<String>,
}

#[derive(Subcommand, Debug)]
enum MembershipCommand {
    /// This node, the agreed view, every configured node and transport
    /// counters
    Status(BusArgs),
}

#[derive(Subcommand, Debug)]
enum QuorumCommand {
    /// Whether this partition is quorate, votes and options
    Status(BusArgs),
    /// Change the expected votes of the whole cluster (as
    /// `corosync-quorumtool -e`)
    ExpectedVotes {
        /// The new expected votes
        votes: u32,
        #[command(flatten)]
        bus: BusArgs,
    },
}

#[derive(Parser, Debug)]
struct SimulateArgs {
    /// The CIB to schedule (a Pacemaker cib.xml with its status section)
    #[arg(short = 'x', long = "xml-file", value_name = "FILE")]
    xml_file: PathBuf,
    /// Simulate the transition's execution and show the resulting status
    #[arg(short = 'S', long = "simulate")]
    simulate: bool,
    /// Show allocation scores
    #[arg(short = 's', long = "show-scores")]
    show_scores: bool,
    /// Write the transition graph to FILE
    #[arg(short = 'G', long = "save-graph", value_name = "FILE")]
    save_graph: Option<PathBuf>,
    /// Use this date and time as "now" (ISO 8601, e.g. 2024-05-01T12:00:00Z)
    #[arg(short = 't', long = "set-datetime", value_name = "DATETIME")]
    datetime: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Agent(AgentCommand::Exec { args, at }) = &cli.command {
        return match agent::exec(args, at) {
            Ok(rc) => ExitCode::from(rc as u8),
            Err(e) => {
                eprintln!("vigil: {e:#}");
                // Not an OCF code an agent could return.
                ExitCode::from(64)
            }
        };
    }
    let result = match cli.command {
        Command::Agent(AgentCommand::List {
            class,
            provider,
            at,
        }) => agent::list(class, provider, &at),
        Command::Agent(AgentCommand::Meta { agent, xml, at }) => agent::meta(&agent, xml, &at),
        Command::Agent(AgentCommand::Exec { .. }) => unreachable!("handled above"),
        Command::Fence(f) => match f.command {
            Some(FenceCommand::History { node, bus }) => {
                fence::run(bus.bus, fence::Action::History { node })
            }
            Some(FenceCommand::Confirm { node, yes, bus }) => {
                fence::run(bus.bus, fence::Action::Confirm { node, yes })
            }
            None => match f.node {
                Some(node) => fence::run(
                    f.bus.bus,
                    fence::Action::Fence {
                        node,
                        action: f.action,
                        delay: f.delay,
                        wait: f.wait,
                    },
                ),
                None => Err(anyhow::anyhow!(
                    "name the node to fence (vigil fence NODE), or see `vigil fence --help`"
                )),
            },
        },
        Command::Status { watch, output, bus } => status::run(bus.bus, watch, output == "json"),
        Command::Why { resource, bus } => why::run(bus.bus, &resource),
        Command::Node(n) => {
            let (bus, action) = match n {
                NodeCommand::Standby { node, bus } => (
                    bus,
                    resource::Action::NodeAttr {
                        node,
                        name: "standby",
                        value: "on",
                    },
                ),
                NodeCommand::Unstandby { node, bus } => (
                    bus,
                    resource::Action::NodeAttr {
                        node,
                        name: "standby",
                        value: "off",
                    },
                ),
                NodeCommand::Maintenance { node, off, bus } => (
                    bus,
                    resource::Action::NodeAttr {
                        node,
                        name: "maintenance",
                        value: if off { "off" } else { "on" },
                    },
                ),
                NodeCommand::Attribute {
                    node,
                    name,
                    value,
                    delete,
                    lifetime,
                    dampen,
                    bus,
                } => {
                    return finish(
                        lifetime
                            .as_deref()
                            .map(attribute::Lifetime::parse)
                            .transpose()
                            .and_then(|lifetime| {
                                attribute::run(
                                    bus.bus,
                                    attribute::Request {
                                        node,
                                        name,
                                        value,
                                        delete,
                                        lifetime,
                                        dampen,
                                    },
                                )
                            }),
                    );
                }
            };
            resource::run(bus.bus, action)
        }
        Command::Constraint(c) => {
            let (bus, action) = match c {
                ConstraintCommand::Location(LocationCommand::Add {
                    resource,
                    node,
                    score,
                    bus,
                }) => (
                    bus,
                    configure::Action::Location {
                        resource,
                        node,
                        score,
                    },
                ),
                ConstraintCommand::Colocation(ColocationCommand::Add {
                    resource,
                    with,
                    score,
                    bus,
                }) => (
                    bus,
                    configure::Action::Colocation {
                        resource,
                        with,
                        score,
                    },
                ),
                ConstraintCommand::Order(OrderCommand::Add {
                    first,
                    then,
                    kind,
                    bus,
                }) => (bus, configure::Action::Order { first, then, kind }),
                ConstraintCommand::Remove { id, bus } => (bus, configure::Action::Remove { id }),
                ConstraintCommand::List(bus) => (bus, configure::Action::List),
            };
            configure::run(bus.bus, action)
        }
        Command::Resource(ResourceCommand::Create {
            id,
            agent,
            params,
            meta,
            group,
            monitor,
            force,
            bus,
        }) => configure::run(
            bus.bus,
            configure::Action::Create {
                id,
                agent,
                params,
                meta,
                group,
                monitor,
                force,
            },
        ),
        Command::Resource(ResourceCommand::Update {
            id,
            params,
            meta,
            force,
            bus,
        }) => configure::run(
            bus.bus,
            configure::Action::Update {
                id,
                params,
                meta,
                force,
            },
        ),
        Command::Group(g) => {
            let (bus, action) = match g {
                GroupCommand::Add {
                    group,
                    resources,
                    before,
                    after,
                    force,
                    bus,
                } => (
                    bus,
                    tree::Action::GroupAdd {
                        group,
                        members: resources,
                        position: before
                            .map(tree::Position::Before)
                            .or(after.map(tree::Position::After)),
                        force,
                    },
                ),
                GroupCommand::Remove {
                    group,
                    resources,
                    force,
                    bus,
                } => (
                    bus,
                    tree::Action::GroupRemove {
                        group,
                        members: resources,
                        force,
                    },
                ),
                GroupCommand::Delete { group, force, bus } => {
                    (bus, tree::Action::GroupDelete { group, force })
                }
            };
            tree::run(bus.bus, action)
        }
        Command::Clone {
            resource,
            meta,
            promotable,
            force,
            bus,
        } => tree::run(
            bus.bus,
            tree::Action::Clone {
                resource,
                meta,
                promotable,
                force,
            },
        ),
        Command::Unclone {
            resource,
            force,
            bus,
        } => tree::run(bus.bus, tree::Action::Unclone { resource, force }),
        Command::Resource(ResourceCommand::Delete { id, bus }) => {
            configure::run(bus.bus, configure::Action::Delete { id })
        }
        Command::Resource(ResourceCommand::Show { id, bus }) => {
            configure::run(bus.bus, configure::Action::Show { id })
        }
        Command::Resource(r) => {
            let (bus, action) = match r {
                ResourceCommand::Enable { resource, bus } => (
                    bus,
                    resource::Action::TargetRole {
                        resource,
                        role: "Started",
                    },
                ),
                ResourceCommand::Disable { resource, bus } => (
                    bus,
                    resource::Action::TargetRole {
                        resource,
                        role: "Stopped",
                    },
                ),
                ResourceCommand::Move {
                    resource,
                    node,
                    lifetime,
                    bus,
                } => (
                    bus,
                    resource::Action::Move {
                        resource,
                        node,
                        lifetime,
                    },
                ),
                ResourceCommand::Ban {
                    resource,
                    node,
                    lifetime,
                    bus,
                } => (
                    bus,
                    resource::Action::Ban {
                        resource,
                        node,
                        lifetime,
                    },
                ),
                ResourceCommand::Clear { resource, bus } => {
                    (bus, resource::Action::Clear { resource })
                }
                ResourceCommand::Cleanup {
                    resource,
                    node,
                    bus,
                } => (bus, resource::Action::Cleanup { resource, node }),
                ResourceCommand::Restart {
                    resource,
                    timeout,
                    bus,
                } => (bus, resource::Action::Restart { resource, timeout }),
                ResourceCommand::Create { .. }
                | ResourceCommand::Update { .. }
                | ResourceCommand::Delete { .. }
                | ResourceCommand::Show { .. } => unreachable!("handled above"),
            };
            resource::run(bus.bus, action)
        }
        Command::Sandbox(SandboxCommand::Up { nodes, dir }) => sandbox::up(&dir.path(), nodes),
        Command::Sandbox(SandboxCommand::Status(dir)) => sandbox::status(&dir.path()),
        Command::Sandbox(SandboxCommand::Kill { node, dir }) => sandbox::kill(&dir.path(), &node),
        Command::Sandbox(SandboxCommand::Start { node, dir }) => sandbox::start(&dir.path(), &node),
        Command::Sandbox(SandboxCommand::Partition { nodes, dir }) => {
            sandbox::partition(&dir.path(), &nodes)
        }
        Command::Sandbox(SandboxCommand::Heal(dir)) => sandbox::heal(&dir.path()),
        Command::Sandbox(SandboxCommand::Down(dir)) => sandbox::down(&dir.path()),
        Command::Stonith(StonithCommand::List(bus)) => fence::run(bus.bus, fence::Action::List),
        Command::Stonith(StonithCommand::Show { device, bus }) => {
            fence::run(bus.bus, fence::Action::Show { device })
        }
        Command::Simulate(args) => simulate::simulate(&args),
        Command::Cluster(ClusterCommand::Keygen { key, force }) => cluster::keygen(&key, force),
        Command::Cluster(ClusterCommand::Setup { nodes, name, force }) => {
            cluster::setup(&name, &nodes, force)
        }
        Command::Cluster(ClusterCommand::Start { all }) => cluster::start_stop("start", all),
        Command::Cluster(ClusterCommand::Stop { all }) => cluster::start_stop("stop", all),
        Command::Cluster(ClusterCommand::Receive { check, force, dir }) => {
            cluster::receive(&dir, check, force)
        }
        Command::Membership(MembershipCommand::Status(bus)) => {
            membership::run(bus.bus, membership::Query::Membership)
        }
        Command::Quorum(QuorumCommand::Status(bus)) => {
            membership::run(bus.bus, membership::Query::Quorum)
        }
        Command::Quorum(QuorumCommand::ExpectedVotes { votes, bus }) => {
            membership::run(bus.bus, membership::Query::SetExpectedVotes(votes))
        }
        Command::Cib(c) => match c {
            CibCommand::Show {
                section,
                xpath,
                bus,
            } => cib::run(bus.bus, cib::Action::Show { section, xpath }),
            CibCommand::Edit(bus) => cib::run(bus.bus, cib::Action::Edit),
            CibCommand::Replace {
                file,
                section,
                xpath,
                bus,
            } => cib::run(
                bus.bus,
                cib::Action::Replace {
                    file,
                    section,
                    xpath,
                },
            ),
            CibCommand::Patch { file, bus } => cib::run(bus.bus, cib::Action::Patch { file }),
            CibCommand::Diff { old, new } => cib::diff_files(&old, &new),
            CibCommand::Upgrade(bus) => cib::run(bus.bus, cib::Action::Upgrade),
        },
        Command::Property(p) => match p {
            PropertyCommand::Get { name, bus } => {
                cib::run(bus.bus, cib::Action::PropertyGet { name })
            }
            PropertyCommand::Set {
                name,
                value,
                force,
                bus,
            } => cib::run(bus.bus, cib::Action::PropertySet { name, value, force }),
            PropertyCommand::Unset { name, bus } => {
                cib::run(bus.bus, cib::Action::PropertyUnset { name })
            }
        },
    };
    finish(result)
}

/// The exit status of a command, its error on standard error.
fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil: {e:#}");
            ExitCode::FAILURE
        }
    }
}
