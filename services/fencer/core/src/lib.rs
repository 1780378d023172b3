//! vigil-fencer: fencing as data (pacemaker-fenced's logic without its
//! processes or messages).
//!
//! - [`device`]: fence devices as the CIB configures them
//!   (`primitive class="stonith"`), with Pacemaker's `pcmk_*` options: which
//!   nodes a device can fence and how it is told the target, action names,
//!   timeouts, retries and delays;
//! - [`agent`]: the fence-agent API: the `key=value` lines an agent reads,
//!   its exit codes and its `list` output;
//! - [`topology`]: `fencing-topology` levels for a target (by name,
//!   pattern or node attribute), and the plan of levels to try;
//! - [`ops`]: the cluster-wide state every node keeps alike from the ordered
//!   fencing group: one operation per target at a time, who runs it, merged
//!   requests, and the fence history.
//!
//! Nothing here runs an agent, reads a clock or sends a message.

pub mod agent;
pub mod device;
pub mod ops;
pub mod topology;
