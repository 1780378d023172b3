//! ISO 8601 dates, durations and Pacemaker intervals.
