//! Reading workload options with the checks every workload needs: a count
//! that must be positive, a probability, a list of consistency models.

use harness::{HarnessError, Result, TestSpec};

/// `options.KEY` as a whole number of at least `min` (default `default`).
pub(crate) fn at_least(spec: &TestSpec, key: &str, default: i64, min: i64) -> Result<i64> {
    let n: i64 = spec.option(key, default)?;
    if n < min {
        return Err(HarnessError::spec(
            "test spec",
            format!("options.{key}"),
            format!("must be at least {min}, not {n}"),
        ));
    }
    Ok(n)
}

/// `options.KEY` as a probability (default `default`).
pub(crate) fn probability(spec: &TestSpec, key: &str, default: f64) -> Result<f64> {
    let p: f64 = spec.option(key, default)?;
    if !(0.0..=1.0).contains(&p) {
        return Err(HarnessError::spec(
            "test spec",
            format!("options.{key}"),
            format!("{p} is not a probability between 0 and 1"),
        ));
    }
    Ok(p)
}

/// `options.consistency_models`, comma-separated (default `default`).
pub(crate) fn consistency_models(spec: &TestSpec, default: &str) -> Result<Vec<String>> {
    let models: String = spec.option("consistency_models", default.to_owned())?;
    Ok(models.split(',').map(|m| m.trim().to_owned()).filter(|m| !m.is_empty()).collect())
}
