//! Collecting name/value pairs from `instance_attributes`, `meta_attributes`
//! and similar blocks, with their rules evaluated for a context.

use std::collections::BTreeMap;

use vigil_cib::rules::{self, RuleContext, RuleLog, UnpackOptions};
use vigil_cib::xml::Element;

use crate::Scheduler;

impl Scheduler {
    /// Adds the pairs of every `set_name` block under `parent` whose rules
    /// pass to `into`, by Pacemaker's precedence (the first value of a name
    /// wins unless `overwrite`). Problems are reported as diagnostics.
    pub(crate) fn nvpairs(
        &mut self,
        parent: &Element,
        set_name: &str,
        ctx: &RuleContext<'_>,
        into: &mut BTreeMap<String, String>,
        overwrite: bool,
    ) {
        self.nvpairs_opts(parent, set_name, None, ctx, into, overwrite);
    }

    pub(crate) fn nvpairs_opts(
        &mut self,
        parent: &Element,
        set_name: &str,
        first_id: Option<&str>,
        ctx: &RuleContext<'_>,
        into: &mut BTreeMap<String, String>,
        overwrite: bool,
    ) {
        let ids = &self.ids;
        let resolve = |id: &str| ids.get(id);
        let mut log = RuleLog::new();
        let opts = UnpackOptions {
            set_element: Some(set_name),
            first_id,
            overwrite,
        };
        rules::unpack_nvpair_sets_into(parent, &opts, ctx, &resolve, into, &mut log);
        if let Some(t) = log.next_change {
            self.note_recheck(t.to_epoch_seconds());
        }
        for e in log.errors {
            self.diag.errors.push(e.to_string());
        }
    }

    /// Evaluates one rule element as Pacemaker does (a broken condition
    /// fails and is reported).
    pub(crate) fn rule_passes(&mut self, rule: &Element, ctx: &RuleContext<'_>) -> bool {
        let ids = &self.ids;
        let resolve = |id: &str| ids.get(id);
        let mut log = RuleLog::new();
        let ok = rules::evaluate_rule_with(rule, ctx, &resolve, &mut log);
        if let Some(t) = log.next_change {
            self.note_recheck(t.to_epoch_seconds());
        }
        for e in log.errors {
            self.diag.errors.push(e.to_string());
        }
        ok
    }
}
