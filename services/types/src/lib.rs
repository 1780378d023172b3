//! vigil-types: the vocabulary every Vigil crate shares.
//!
//! Scores with Pacemaker's INFINITY arithmetic, resource roles, and the OCF
//! exit codes and operation statuses found in operation history. No I/O.

use std::fmt;
use std::str::FromStr;

/// A placement score. Pacemaker clamps scores to ±1,000,000, which it calls
/// INFINITY, and adding anything to an infinite score leaves it infinite
/// (with -INFINITY winning over +INFINITY).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Score(i32);

impl Score {
    pub const INFINITY_VALUE: i32 = 1_000_000;
    pub const INFINITY: Score = Score(Self::INFINITY_VALUE);
    pub const NEG_INFINITY: Score = Score(-Self::INFINITY_VALUE);
    pub const ZERO: Score = Score(0);

    /// A score from an integer, clamped to ±INFINITY.
    pub const fn new(v: i64) -> Score {
        if v >= Self::INFINITY_VALUE as i64 {
            Score::INFINITY
        } else if v <= -(Self::INFINITY_VALUE as i64) {
            Score::NEG_INFINITY
        } else {
            Score(v as i32)
        }
    }

    /// A score holding exactly `v`, even beyond ±INFINITY. Only for
    /// sentinel values that must stay distinct from every real score.
    pub const fn from_raw(v: i32) -> Score {
        Score(v)
    }

    pub const fn value(self) -> i32 {
        self.0
    }

    pub const fn is_pos_infinity(self) -> bool {
        self.0 >= Self::INFINITY_VALUE
    }

    pub const fn is_neg_infinity(self) -> bool {
        self.0 <= -Self::INFINITY_VALUE
    }

    pub const fn is_infinite(self) -> bool {
        self.is_pos_infinity() || self.is_neg_infinity()
    }

    /// Pacemaker's score addition: -INFINITY absorbs everything, then
    /// +INFINITY, otherwise the clamped sum.
    pub const fn add(self, other: Score) -> Score {
        if self.is_neg_infinity() || other.is_neg_infinity() {
            Score::NEG_INFINITY
        } else if self.is_pos_infinity() || other.is_pos_infinity() {
            Score::INFINITY
        } else {
            Score::new(self.0 as i64 + other.0 as i64)
        }
    }

    /// Parses a score as Pacemaker does: an integer, or `INFINITY`,
    /// `+INFINITY`, `-INFINITY` (any case). The node-health colours `red`,
    /// `yellow` and `green` take the given values.
    pub fn parse_with_health(s: &str, health: &HealthScores) -> Result<Score, ScoreError> {
        let t = s.trim();
        let lower = t.to_ascii_lowercase();
        match lower.as_str() {
            "infinity" | "+infinity" => Ok(Score::INFINITY),
            "-infinity" => Ok(Score::NEG_INFINITY),
            "red" => Ok(health.red),
            "yellow" => Ok(health.yellow),
            "green" => Ok(health.green),
            _ => {
                let v: i64 = t
                    .parse()
                    .or_else(|_| {
                        // Pacemaker accepts a leading integer ("12abc" is 12
                        // with a warning); accept only a complete number here
                        // but allow a trailing ".0" style float.
                        t.parse::<f64>().map(|f| f as i64)
                    })
                    .map_err(|_| ScoreError(s.to_string()))?;
                Ok(Score::new(v))
            }
        }
    }
}

impl std::ops::Add for Score {
    type Output = Score;
    fn add(self, rhs: Score) -> Score {
        Score::add(self, rhs)
    }
}

impl std::ops::AddAssign for Score {
    fn add_assign(&mut self, rhs: Score) {
        *self = Score::add(*self, rhs);
    }
}

impl std::ops::Neg for Score {
    type Output = Score;
    fn neg(self) -> Score {
        Score(-self.0)
    }
}

/// Scores the node-health colours map to (`node-health-red` etc.).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthScores {
    pub red: Score,
    pub yellow: Score,
    pub green: Score,
}

impl Default for HealthScores {
    fn default() -> Self {
        HealthScores {
            red: Score::NEG_INFINITY,
            yellow: Score::ZERO,
            green: Score::ZERO,
        }
    }
}

/// A text that is not a score.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a score (an integer, INFINITY or -INFINITY)")]
pub struct ScoreError(pub String);

impl FromStr for Score {
    type Err = ScoreError;
    fn from_str(s: &str) -> Result<Score, ScoreError> {
        Score::parse_with_health(s, &HealthScores::default())
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_pos_infinity() {
            f.write_str("INFINITY")
        } else if self.is_neg_infinity() {
            f.write_str("-INFINITY")
        } else {
            write!(f, "{}", self.0)
        }
    }
}

impl fmt::Debug for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A resource's role, ordered as Pacemaker orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Role {
    #[default]
    Unknown,
    Stopped,
    Started,
    Unpromoted,
    Promoted,
}

impl Role {
    /// Parses a role name, accepting the legacy `Master`/`Slave` spellings.
    pub fn parse(s: &str) -> Option<Role> {
        match s.to_ascii_lowercase().as_str() {
            "unknown" => Some(Role::Unknown),
            "stopped" => Some(Role::Stopped),
            "started" => Some(Role::Started),
            "unpromoted" | "slave" => Some(Role::Unpromoted),
            "promoted" | "master" => Some(Role::Promoted),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Unknown => "Unknown",
            Role::Stopped => "Stopped",
            Role::Started => "Started",
            Role::Unpromoted => "Unpromoted",
            Role::Promoted => "Promoted",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// OCF resource agent exit codes (with Pacemaker's extensions).
pub mod ocf {
    pub const OK: i32 = 0;
    pub const UNKNOWN_ERROR: i32 = 1;
    pub const INVALID_PARAM: i32 = 2;
    pub const UNIMPLEMENT_FEATURE: i32 = 3;
    pub const INSUFFICIENT_PRIV: i32 = 4;
    pub const NOT_INSTALLED: i32 = 5;
    pub const NOT_CONFIGURED: i32 = 6;
    pub const NOT_RUNNING: i32 = 7;
    pub const RUNNING_PROMOTED: i32 = 8;
    pub const FAILED_PROMOTED: i32 = 9;
    pub const DEGRADED: i32 = 190;
    pub const DEGRADED_PROMOTED: i32 = 191;
}

/// The execution status recorded with an operation (`op-status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpStatus {
    Pending,
    Done,
    Cancelled,
    Timeout,
    NotSupported,
    Error,
    ErrorHard,
    ErrorFatal,
    NotInstalled,
    NotConnected,
    Invalid,
}

impl OpStatus {
    /// Pacemaker's `op-status` code.
    pub fn code(self) -> i32 {
        match self {
            OpStatus::Pending => -1,
            OpStatus::Done => 0,
            OpStatus::Cancelled => 1,
            OpStatus::Timeout => 2,
            OpStatus::NotSupported => 3,
            OpStatus::Error => 4,
            OpStatus::ErrorHard => 5,
            OpStatus::ErrorFatal => 6,
            OpStatus::NotInstalled => 7,
            OpStatus::NotConnected => 8,
            OpStatus::Invalid => 9,
        }
    }

    /// How operators read it.
    pub fn as_str(self) -> &'static str {
        match self {
            OpStatus::Pending => "pending",
            OpStatus::Done => "complete",
            OpStatus::Cancelled => "cancelled",
            OpStatus::Timeout => "timed out",
            OpStatus::NotSupported => "not supported",
            OpStatus::Error => "error",
            OpStatus::ErrorHard => "hard error",
            OpStatus::ErrorFatal => "fatal error",
            OpStatus::NotInstalled => "not installed",
            OpStatus::NotConnected => "not connected",
            OpStatus::Invalid => "invalid",
        }
    }

    pub fn from_code(code: i32) -> Option<OpStatus> {
        Some(match code {
            -1 => OpStatus::Pending,
            0 => OpStatus::Done,
            1 => OpStatus::Cancelled,
            2 => OpStatus::Timeout,
            3 => OpStatus::NotSupported,
            4 => OpStatus::Error,
            5 => OpStatus::ErrorHard,
            6 => OpStatus::ErrorFatal,
            7 => OpStatus::NotInstalled,
            8 => OpStatus::NotConnected,
            9 => OpStatus::Invalid,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infinity_arithmetic() {
        let cases = [
            ("INFINITY", "-INFINITY", "-INFINITY"),
            ("INFINITY", "5", "INFINITY"),
            ("-INFINITY", "5", "-INFINITY"),
            ("999999", "5", "INFINITY"),
            ("-999999", "-5", "-INFINITY"),
            ("3", "-5", "-2"),
        ];
        for (a, b, want) in cases {
            let a: Score = a.parse().unwrap();
            let b: Score = b.parse().unwrap();
            assert_eq!((a + b).to_string(), want, "{a} + {b}");
            assert_eq!((b + a).to_string(), want, "{b} + {a}");
        }
    }

    #[test]
    fn parsing() {
        assert_eq!("+INFINITY".parse::<Score>().unwrap(), Score::INFINITY);
        assert_eq!("-infinity".parse::<Score>().unwrap(), Score::NEG_INFINITY);
        assert_eq!("2000000".parse::<Score>().unwrap(), Score::INFINITY);
        assert_eq!("red".parse::<Score>().unwrap(), Score::NEG_INFINITY);
        assert!("abc".parse::<Score>().is_err());
        assert_eq!(Role::parse("Master"), Some(Role::Promoted));
        assert!(Role::Promoted > Role::Unpromoted);
        for code in -1..=9 {
            assert_eq!(OpStatus::from_code(code).unwrap().code(), code);
        }
        assert_eq!(OpStatus::from_code(10), None);
    }
}
