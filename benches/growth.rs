//! How long one child's WHO growth evaluation takes (all four indicators, flags and findings), so
//! that a visit list or a chart of a child's whole history can compute z-scores on the fly.
//! Run: `cargo bench --bench growth`. A benchmark, not a test: it prints figures and asserts
//! nothing about time.

use std::hint::black_box;
use std::time::Instant;

use mch_chain::growth::model::{Indicator, Measurement, Position, Sex, curve, evaluate};

fn main() {
    // A spread of children over 0–1856 days, both sexes, lying and standing, some without a
    // position, some extreme (restricted computation, flags), a few outside the wfl/wfh bands.
    let children: Vec<Measurement> = (0..1000u32)
        .map(|i| {
            let age_days = (i * 1_853) % 1857;
            let months = f64::from(age_days) / 30.4375;
            let length = 50.0 + 1.9 * months - 0.012 * months * months + f64::from(i % 17) * 0.37 - 3.0;
            let weight = 3.3 + 0.55 * months - 0.004 * months * months + f64::from(i % 13) * 0.21 - 1.3;
            Measurement {
                sex: if i % 2 == 0 { Sex::Male } else { Sex::Female },
                age_days,
                weight_kg: Some(if i % 97 == 0 { weight * 2.5 } else { weight.max(1.0) }),
                length_cm: Some(length.max(40.0)),
                position: match i % 3 {
                    0 => Some(Position::Lying),
                    1 => Some(Position::Standing),
                    _ => None,
                },
                oedema: false,
            }
        })
        .collect();
    let start = Instant::now();
    if let Err(e) = evaluate(&children[0]) {
        eprintln!("the embedded growth tables do not load: {e}");
        std::process::exit(1);
    }
    let first = start.elapsed().as_secs_f64() * 1e6;
    let rounds: u32 = std::env::var("MCH_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let mut all_four = 0;
    for c in &children {
        let e = evaluate(c).ok();
        if e.is_some_and(|e| {
            e.weight_for_age_z.is_some()
                && e.length_for_age_z.is_some()
                && e.weight_for_length_z.is_some()
                && e.bmi_for_age_z.is_some()
        }) {
            all_four += 1;
        }
    }
    let start = Instant::now();
    for _ in 0..rounds {
        for c in &children {
            black_box(evaluate(black_box(c)).ok());
        }
    }
    let per_child = start.elapsed().as_secs_f64() * 1e9 / (f64::from(rounds) * children.len() as f64);
    println!(
        "growth evaluate: {} children × {rounds} rounds ({all_four} with all four z-scores)",
        children.len()
    );
    println!("{:<44} {:>10.0} µs", "first call (parses the embedded tables)", first);
    println!("{:<44} {:>10.0} ns", "per child (wfa, lhfa, wfl/wfh, BMI)", per_child);

    let start = Instant::now();
    let curve_rounds = 200;
    let mut points = 0;
    for _ in 0..curve_rounds {
        for z in [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0] {
            points += black_box(curve(Indicator::WeightForAge, Sex::Female, z)).len();
        }
    }
    let per_chart = start.elapsed().as_secs_f64() * 1e6 / f64::from(curve_rounds);
    println!(
        "{:<44} {:>10.0} µs ({} points)",
        "−3…+3 SD weight-for-age curves, one chart",
        per_chart,
        points / curve_rounds as usize
    );
}
