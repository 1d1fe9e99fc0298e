//! Findings recomputed every round, reported once they held for N consecutive rounds and
//! cleared as soon as a round no longer sees them (no latching: NMA #215, NPD #215).

use std::collections::BTreeMap;

use model::Finding;

/// Consecutive-round counter per finding (rule id + summary).
#[derive(Debug, Clone)]
pub struct Hold {
    need: u32,
    streak: BTreeMap<String, u32>,
}

impl Hold {
    /// `need` = rounds a finding must hold before it is reported (at least 1).
    pub fn new(need: u32) -> Hold {
        Hold {
            need: need.max(1),
            streak: BTreeMap::new(),
        }
    }

    pub fn need(&self) -> u32 {
        self.need
    }

    fn key(f: &Finding) -> String {
        format!("{}\u{1f}{}", f.rule, f.summary)
    }

    /// This round's findings in; (reported, number still pending) out.
    pub fn update(&mut self, current: Vec<Finding>) -> (Vec<Finding>, usize) {
        let mut next = BTreeMap::new();
        let mut reported = Vec::new();
        let mut pending = 0;
        for f in current {
            let key = Self::key(&f);
            let n = self
                .streak
                .get(&key)
                .copied()
                .unwrap_or(0)
                .saturating_add(1);
            next.insert(key, n);
            if n >= self.need {
                reported.push(f);
            } else {
                pending += 1;
            }
        }
        // Anything not seen this round is dropped: its streak starts again from zero.
        self.streak = next;
        (reported, pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::Severity;

    fn f(rule: &str) -> Finding {
        Finding {
            rule: rule.into(),
            severity: Severity::Error,
            node: "n".into(),
            summary: format!("{rule} broke"),
            evidence: vec![],
            explanation: String::new(),
            remedy: String::new(),
            inferred: vec![],
        }
    }

    #[test]
    fn holds_then_reports_then_clears() {
        let mut h = Hold::new(2);
        assert_eq!(h.update(vec![f("a")]).0.len(), 0);
        assert_eq!(h.update(vec![f("a")]).0.len(), 1);
        assert_eq!(h.update(vec![]).0.len(), 0, "cleared at once");
        assert_eq!(h.update(vec![f("a")]), (vec![], 1), "a flap starts over");
        let mut one = Hold::new(1);
        assert_eq!(one.update(vec![f("b")]).0.len(), 1);
        assert!(one.update(vec![]).0.is_empty());
    }
}
