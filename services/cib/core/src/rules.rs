//! Rule evaluation (filled in by the rules work).
