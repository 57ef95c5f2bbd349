//! Pixray's units (`util.parse_unit`): an amount of a run as `20`, `20i`, `20 iter`, `20
//! iterations`, `50p`, `50%` or `50 percent`. A bare number takes the setting's own unit (steps
//! for `--save-every`, percent for `--lr-drops`), so today's meanings stay. One parser for every
//! setting that counts steps.
use crate::error::usage;
use anyhow::Result;
use serde::{Deserialize, Serialize};

/// An amount of the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    Steps(f64),
    Percent(f64),
}

impl Amount {
    /// The step count of the amount in a run of `total` steps, truncated as pixray's `int()`.
    pub fn steps(self, total: i64) -> i64 {
        match self {
            Amount::Steps(n) => n as i64,
            Amount::Percent(p) => (p * 0.01 * total as f64) as i64,
        }
    }

    /// As written back (run.toml): `20i` or `50%`.
    pub fn text(self) -> String {
        match self {
            Amount::Steps(n) => format!("{n}i"),
            Amount::Percent(p) => format!("{p}%"),
        }
    }
}

/// `20i`, `50%`, ...; `bare` is the unit of a plain number. `flag` names the setting in errors.
pub fn parse_unit(text: &str, bare: fn(f64) -> Amount, flag: &str) -> Result<Amount> {
    let t = text.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = || {
        usage(format!(
            "{flag}: invalid value '{text}': use a number with a unit, like 20i, '20 iterations', 50% or '50 percent'"
        ))
    };
    // pixray's \d*[.]?\d+: digits, at most one point, a digit last
    if number.is_empty() || number.matches('.').count() > 1 || number.ends_with('.') {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    match unit.trim_start() {
        "" => Ok(bare(value)),
        "i" | "iter" | "iterations" => Ok(Amount::Steps(value)),
        "p" | "%" | "percent" => Ok(Amount::Percent(value)),
        _ => Err(bad()),
    }
}

/// A step count as TOML holds it: a number, or text with a unit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Count {
    Int(i64),
    Text(String),
}

impl super::FlagValue<Count> for Option<String> {
    fn layer(&self) -> Option<Count> {
        self.clone().map(Count::Text)
    }
}

impl super::ToRaw<Count> for i64 {
    fn to_raw(&self) -> Option<Count> {
        Some(Count::Int(*self))
    }
}

impl super::ToRaw<Count> for Option<i64> {
    fn to_raw(&self) -> Option<Count> {
        self.map(Count::Int)
    }
}

/// A step count setting (bare numbers are steps) in a run of `total` steps; `default` when unset.
/// A negative number is passed through for the declaration's check to name.
pub fn parse_count(raw: Option<&Count>, total: i64, flag: &str, default: i64) -> Result<i64> {
    Ok(parse_opt_count(raw, total, flag)?.unwrap_or(default))
}

/// [`parse_count`] without a default (None when unset).
pub fn parse_opt_count(raw: Option<&Count>, total: i64, flag: &str) -> Result<Option<i64>> {
    match raw {
        None => Ok(None),
        Some(Count::Int(n)) => Ok(Some(*n)),
        Some(Count::Text(t)) => {
            let t = t.trim();
            if let Some(n) = t.strip_prefix('-').and_then(|n| n.parse::<i64>().ok()) {
                return Ok(Some(-n));
            }
            Ok(Some(parse_unit(t, Amount::Steps, flag)?.steps(total)))
        }
    }
}

/// `--save-every`.
pub fn parse_save_every(raw: Option<&Count>, total: i64) -> Result<i64> {
    parse_count(raw, total, "--save-every", super::DEFAULT_SAVE_EVERY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixrays_forms() {
        let steps = |t: &str| parse_unit(t, Amount::Steps, "--x").unwrap().steps(200);
        let percent = |t: &str| parse_unit(t, Amount::Percent, "--x").unwrap().steps(200);
        for t in [
            "20",
            "20i",
            "20 iter",
            "20 iterations",
            "20I",
            " 20 Iterations ",
            "20.7i",
        ] {
            assert_eq!(steps(t), 20, "{t}");
        }
        for t in ["10", "10%", "10 percent", "10p", "10.0 %", ".1e"] {
            if t == ".1e" {
                assert!(parse_unit(t, Amount::Percent, "--x").is_err());
                continue;
            }
            assert_eq!(percent(t), 20, "{t}");
        }
        assert_eq!(steps("50%"), 100);
        assert_eq!(percent("33%"), 66); // truncated, as pixray's int()
        for bad in [
            "", "i", "%", "20 steps", "2.0.0i", "20.", "x20", "-5%", "1e3",
        ] {
            let e = parse_unit(bad, Amount::Steps, "--save-every")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("--save-every") && e.contains("20 iterations"),
                "{bad}: {e}"
            );
        }
    }
}
