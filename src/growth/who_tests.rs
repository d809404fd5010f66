//! The engine against WHO's own numbers (tests/data/growth, sources in rules/growth/README.md):
//! the published SD values of WHO's expanded tables, and the z-scores WHO's igrowup software
//! computed for its example survey.

use std::path::Path;

use super::model::{Flag, Indicator, Measurement, Position, Sex, evaluate};

fn data(name: &str) -> Vec<Vec<String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/growth")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

fn num(cell: &str) -> Option<f64> {
    (!cell.is_empty()).then(|| cell.parse().unwrap())
}

/// The z our evaluation gives a child whose measure is `y` at `x` (day or cm) on one indicator.
fn z_of(indicator: &str, sex: Sex, x: f64, y: f64) -> Option<f64> {
    let (age_days, weight_kg, length_cm, position) = match indicator {
        "wfa" => (x as u32, Some(y), None, None),
        "lhfa" => (
            x as u32,
            None,
            Some(y),
            Some(if x < 731.0 { Position::Lying } else { Position::Standing }),
        ),
        "wfl" => (0, Some(y), Some(x), Some(Position::Lying)),
        "wfh" => (731, Some(y), Some(x), Some(Position::Standing)),
        _ => unreachable!(),
    };
    let e = evaluate(&Measurement {
        sex,
        age_days,
        weight_kg,
        length_cm,
        position,
        oedema: false,
    })
    .unwrap();
    match indicator {
        "wfa" => e.weight_for_age_z,
        "lhfa" => e.length_for_age_z,
        _ => e.weight_for_length_z,
    }
}

/// For every day 0–1856 and every 0.1 cm, both sexes: the z-score of WHO's published −3…+3 SD
/// values is −3…+3 within 0.01, and for the weight-based indicators a weight one SD2–SD3
/// distance beyond SD±3 (built from the published values) is ±4 within 0.01 — which only the
/// restricted computation gives (plain LMS is off by up to 0.2 there).
#[test]
fn z_scores_of_whos_published_sd_values_are_the_sd() {
    let mut points = 0;
    let mut worst = 0.0_f64;
    for indicator in ["wfa", "lhfa", "wfl", "wfh"] {
        for (sex, name) in [(Sex::Male, "male"), (Sex::Female, "female")] {
            let rows = data(&format!("sd-{indicator}-{name}.csv"));
            let expected_rows = if indicator == "wfl" {
                651
            } else if indicator == "wfh" {
                551
            } else {
                1857
            };
            assert_eq!(rows.len(), expected_rows, "{indicator} {name}");
            for row in rows {
                let x: f64 = row[0].parse().unwrap();
                let sd: Vec<f64> = row[1..8].iter().map(|c| c.parse().unwrap()).collect();
                let mut cases: Vec<(f64, f64)> = (0..7).map(|i| (sd[i], i as f64 - 3.0)).collect();
                if indicator != "lhfa" {
                    cases.push((2.0 * sd[6] - sd[5], 4.0));
                    cases.push((2.0 * sd[0] - sd[1], -4.0));
                }
                for (y, k) in cases {
                    let z = z_of(indicator, sex, x, y).unwrap_or_else(|| panic!("{indicator} {name} {x}: no z"));
                    let off = (z - k).abs();
                    worst = worst.max(off);
                    assert!(
                        off <= 0.01 + 1e-9,
                        "{indicator} {name} at {x}: z({y}) = {z}, WHO SD {k}"
                    );
                    points += 1;
                }
            }
        }
    }
    // 2 × (1857 × (7 + 2) + 1857 × 7 + 651 × 9 + 551 × 9) table points.
    assert_eq!(points, 81_060);
    eprintln!("WHO expanded tables: {points} points, largest |z − SD| after rounding {worst:.3}");
}

/// Every row of igrowup's example survey (WHO's software's own z-scores): each of zlen, zwei,
/// zwfl and zbmi is within 0.01 of WHO's or missing exactly where WHO's is missing, and our
/// implausibility flags are WHO's flags. No row is excluded: oedema rows (6) have no weight-based
/// z-scores on both sides, rows without a length (23) or weight (3) likewise.
#[test]
fn z_scores_of_whos_example_survey_are_whos() {
    let rows = data("who-anthro-survey.csv");
    assert_eq!(rows.len(), 498);
    let mut compared = 0;
    let mut missing_both = 0;
    let mut worst = 0.0_f64;
    for r in &rows {
        let m = Measurement {
            sex: if r[1] == "1" { Sex::Male } else { Sex::Female },
            age_days: r[2].parse().unwrap(),
            weight_kg: num(&r[3]),
            length_cm: num(&r[4]),
            position: match r[5].as_str() {
                "l" => Some(Position::Lying),
                "h" => Some(Position::Standing),
                _ => None,
            },
            oedema: r[6] == "y",
        };
        let e = evaluate(&m).unwrap();
        let wfl = e.weight_for_length_indicator.unwrap_or(Indicator::WeightForLength);
        for (col, ours, indicator) in [
            (7, e.length_for_age_z, Indicator::LengthForAge),
            (8, e.weight_for_age_z, Indicator::WeightForAge),
            (9, e.weight_for_length_z, wfl),
            (10, e.bmi_for_age_z, Indicator::BmiForAge),
        ] {
            let who = num(&r[col]);
            match (who, ours) {
                (Some(who), Some(ours)) => {
                    let off = (who - ours).abs();
                    worst = worst.max(off);
                    assert!(off <= 0.01 + 1e-9, "row {}: column {col} WHO {who}, ours {ours}", r[0]);
                    compared += 1;
                }
                (None, None) => missing_both += 1,
                _ => panic!("row {}: column {col} WHO {who:?}, ours {ours:?}", r[0]),
            }
            let who_flag = r[col + 4] == "1";
            let our_flag = e
                .flags
                .iter()
                .any(|f| matches!(f, Flag::ImplausibleZ { indicator: i, .. } if *i == indicator));
            assert_eq!(who_flag, our_flag, "row {}: flag of column {col}", r[0]);
        }
    }
    assert_eq!(compared + missing_both, 498 * 4);
    assert_eq!(compared, 1899);
    eprintln!(
        "WHO survey: {compared} z-scores compared, {missing_both} missing on both sides, largest difference {worst:.3}"
    );
}
