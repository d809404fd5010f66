//! How long one five-colour assessment takes (the engine runs on every write that changes the
//! picture, so it must be cheap). Run: `cargo bench --bench risk_grading`. A benchmark, not a test:
//! it prints figures and asserts nothing about time.

use std::hint::black_box;
use std::time::Instant;

use mch_chain::risk::model::{Facts, TestResult, evaluate, rule_set};

fn main() {
    let Ok(rules) = rule_set("national-2017") else {
        eprintln!("the embedded rule set does not load");
        std::process::exit(1);
    };
    let cases: Vec<(&str, Facts)> = vec![
        ("nothing known (green)", Facts::default()),
        (
            "a typical booking (age, BMI, Hb, PLT, BP, tests)",
            Facts {
                age_years: Some(36.0),
                height_cm: Some(158.0),
                weight_kg: Some(66.0),
                hb_g_l: Some(104.0),
                platelets_10e9_l: Some(180.0),
                systolic_mmhg: Some(122.0),
                diastolic_mmhg: Some(78.0),
                fetuses: Some(1.0),
                previous_caesareans: Some(1.0),
                months_since_last_uterine_surgery: Some(30.0),
                hiv: Some(TestResult::Negative),
                syphilis: Some(TestResult::Negative),
                hbsag: Some(TestResult::Positive),
                ..Default::default()
            },
        ),
        (
            "every fact plus four ticked items",
            Facts {
                age_years: Some(41.0),
                height_cm: Some(150.0),
                weight_kg: Some(70.0),
                hb_g_l: Some(58.0),
                platelets_10e9_l: Some(45.0),
                systolic_mmhg: Some(165.0),
                diastolic_mmhg: Some(112.0),
                fetuses: Some(2.0),
                assisted_reproduction: Some(true),
                previous_caesareans: Some(2.0),
                previous_uterine_surgeries: Some(2.0),
                months_since_last_uterine_surgery: Some(12.0),
                hiv: Some(TestResult::Positive),
                syphilis: Some(TestResult::Positive),
                hbsag: Some(TestResult::Positive),
                factors: vec!["O3.7".into(), "R2.2".into(), "Y3.12".into(), "P4".into()],
            },
        ),
    ];
    let iterations: u32 = std::env::var("MCH_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    println!(
        "five-colour grading, rule set {}, {iterations} assessments per case",
        rules.id
    );
    println!("{:<50} {:>12} {:>10}", "case", "µs/assess", "factors");
    for (name, facts) in &cases {
        let mut factors = 0;
        for _ in 0..1000 {
            factors = evaluate(rules, black_box(facts)).map(|a| a.factors.len()).unwrap_or(0);
        }
        let start = Instant::now();
        for _ in 0..iterations {
            let a = evaluate(rules, black_box(facts));
            black_box(&a);
        }
        let per = start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
        println!("{name:<50} {per:>12.3} {factors:>10}");
    }
}
