//! The demo region for `serve --demo` and `demo-data`: facilities of every level, users of every
//! role and a few hundred women at different points of pregnancy. Everything goes through the
//! same services as real use (validation, audit), acting as the system at each facility.
//! Names and ID numbers are generated (valid checksums, fictitious people); the seed is fixed so
//! the demo looks the same every time.

use chrono::Days;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::auth::model::Role;
use crate::auth::service::{add_demo_user, system_actor};
use crate::error::ServiceError;
use crate::facility::model::{Facility, NewFacility};
use crate::identity::model::PersonInput;
use crate::identity::service::Registration;
use crate::ids::today_china;
use crate::pregnancy::model::BookingInput;
use crate::storage::Db;
use crate::visits::model::VisitInput;
use crate::visits::schedule;
use crate::{facility, identity, pregnancy, visits};

/// Every demo account's password (printed by `serve --demo`, in the README). Public, so the
/// password policy refuses it for real accounts; the demo seed sets it through
/// `auth::service::add_demo_user`, which bypasses the policy for this purpose only.
pub const DEMO_PASSWORD: &str = crate::auth::model::DEMO_PASSWORD;

pub struct DemoLogin {
    pub username: &'static str,
    pub role: &'static str,
    pub facility: String,
}

/// code, name, level, kind, jurisdiction, township code, capabilities.
type FacilityRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
);

const FACILITIES: &[FacilityRow] = &[
    (
        "PROV-MCH",
        "示范省妇幼保健院",
        "province",
        "mch_centre",
        "340000",
        None,
        "midwifery,prenatal_diagnosis",
    ),
    (
        "PROV-CC",
        "示范省危重孕产妇和新生儿救治中心",
        "province",
        "hospital",
        "340000",
        None,
        "maternal_critical_care,neonatal_critical_care,icu,nicu,blood_bank,midwifery,neonatal_transport,operating_theatre_24h",
    ),
    (
        "CITY-CC",
        "示范市危重孕产妇和新生儿救治中心",
        "city",
        "hospital",
        "340500",
        None,
        "maternal_critical_care,neonatal_critical_care,icu,nicu,blood_bank,midwifery,neonatal_transport,operating_theatre_24h",
    ),
    (
        "CITY-MCH",
        "示范市妇幼保健院",
        "city",
        "mch_centre",
        "340500",
        None,
        "midwifery",
    ),
    (
        "COUNTY-MCH",
        "示范县妇幼保健院",
        "county",
        "mch_centre",
        "340524",
        None,
        "midwifery",
    ),
    (
        "COUNTY-HOSP",
        "示范县人民医院",
        "county",
        "hospital",
        "340524",
        None,
        "maternal_critical_care,icu,blood_bank,midwifery,operating_theatre_24h",
    ),
    (
        "TWN-DONGGUAN",
        "东关镇卫生院",
        "township",
        "health_centre",
        "340524",
        Some("340524101"),
        "midwifery",
    ),
    (
        "TWN-XIHE",
        "西河乡卫生院",
        "township",
        "health_centre",
        "340524",
        Some("340524102"),
        "",
    ),
    (
        "VIL-HONGXING",
        "东关镇红星村卫生室",
        "village",
        "clinic",
        "340524",
        Some("340524101"),
        "",
    ),
    (
        "NBR-MCH",
        "邻县妇幼保健院",
        "county",
        "mch_centre",
        "340525",
        None,
        "midwifery",
    ),
    (
        "TWN-NANSHAN",
        "南山镇卫生院",
        "township",
        "health_centre",
        "340525",
        Some("340525101"),
        "",
    ),
];

const USERS: &[(&str, &str, &str, &str)] = &[
    ("doctor.dongguan", "张医生", "clinician", "TWN-DONGGUAN"),
    ("registrar.dongguan", "李登记", "registrar", "TWN-DONGGUAN"),
    ("doctor.xihe", "王医生", "clinician", "TWN-XIHE"),
    ("doctor.county", "赵医生", "clinician", "COUNTY-MCH"),
    ("coordinator.county", "孙调度", "referral_coordinator", "COUNTY-MCH"),
    ("doctor.city", "周医生", "clinician", "CITY-CC"),
    ("coordinator.city", "吴调度", "referral_coordinator", "CITY-CC"),
    ("doctor.nanshan", "郑医生", "clinician", "TWN-NANSHAN"),
    ("hospital.county", "县医院接口", "hospital_system", "COUNTY-HOSP"),
    ("doctor.hospital", "钱医生", "clinician", "COUNTY-HOSP"),
    ("coordinator.hospital", "冯调度", "referral_coordinator", "COUNTY-HOSP"),
    ("admin", "系统管理员", "admin", "PROV-MCH"),
    ("auditor", "审计员", "auditor", "PROV-MCH"),
];

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "高", "林",
    "罗",
];
const GIVEN: &[&str] = &[
    "秀英", "桂英", "丽", "敏", "静", "艳", "娟", "霞", "婷", "雪", "慧", "玲", "芳", "颖", "晓红", "小燕", "佳怡",
    "雨欣", "梦琪", "思雨",
];

/// A valid 18-digit ID number for a woman of `county` born on `birth`.
fn demo_id_number(rng: &mut StdRng, county: &str, birth: chrono::NaiveDate) -> String {
    demo_id_number_of(rng, county, birth, false)
}

/// A valid demo ID number; the sequence code's parity gives the sex (odd: male, GB 11643).
fn demo_id_number_of(rng: &mut StdRng, county: &str, birth: chrono::NaiveDate, male: bool) -> String {
    let seq = rng.gen_range(0..500) * 2 + u32::from(male);
    let body = format!("{county}{}{:03}", birth.format("%Y%m%d"), seq);
    let weights = [7u32, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.bytes().zip(weights).map(|(b, w)| u32::from(b - b'0') * w).sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{body}{check}")
}

/// What the demo seeding prints: the logins and the FHIR bearer tokens (role, facility, token).
pub struct DemoSeed {
    pub logins: Vec<DemoLogin>,
    pub tokens: Vec<(&'static str, &'static str, String)>,
}

/// Seed the demo region when the database has no facilities. Returns the logins, or None.
pub async fn seed_if_empty(db: &Db) -> Result<Option<DemoSeed>, ServiceError> {
    if db.read(|c| Ok::<_, ServiceError>(facility::repo::count(c)?)).await? > 0 {
        return Ok(None);
    }
    let mut facilities: Vec<Facility> = Vec::new();
    for (code, name, level, kind, j, t, caps) in FACILITIES {
        facilities.push(
            facility::service::add(
                db,
                NewFacility {
                    code: code.to_string(),
                    name: name.to_string(),
                    level: level.to_string(),
                    kind: kind.to_string(),
                    jurisdiction: j.to_string(),
                    township_code: t.map(str::to_string),
                    capabilities: caps.split(',').map(str::to_string).collect(),
                },
            )
            .await?,
        );
    }
    let mut logins = Vec::new();
    for (username, display, role, fac) in USERS {
        add_demo_user(db, username, display, role, fac).await?;
        let f = facilities
            .iter()
            .find(|f| f.code == *fac)
            .map(|f| f.name.clone())
            .unwrap_or_default();
        logins.push(DemoLogin {
            username,
            role,
            facility: f,
        });
    }
    let mut rng = StdRng::seed_from_u64(2026);
    let homes: Vec<&Facility> = facilities
        .iter()
        .filter(|f| f.township_code.is_some() && f.level.as_str() == "township")
        .collect();
    let today = today_china();
    let mut tasks = Vec::new();
    for i in 0..300 {
        let home = homes[i % homes.len()].clone();
        let age_years = rng.gen_range(18..44);
        let birth = today - Days::new(age_years * 365 + rng.gen_range(0..365));
        let id_number = demo_id_number(&mut rng, &home.jurisdiction, birth);
        let name = format!(
            "{}{}",
            SURNAMES[rng.gen_range(0..SURNAMES.len())],
            GIVEN[rng.gen_range(0..GIVEN.len())]
        );
        // 9 in 10 women have an active pregnancy, dated 4–41 weeks ago.
        let ga_today: u64 = rng.gen_range(28..=290);
        let pregnant = rng.gen_bool(0.9);
        let seed: u64 = rng.r#gen();
        tasks.push(seed_woman(
            db.clone(),
            home,
            name,
            id_number,
            pregnant.then_some(ga_today),
            seed,
        ));
    }
    // Run in groups so the group-commit writer batches them.
    let mut pregnancies = Vec::new();
    let mut pending = tasks.into_iter();
    loop {
        let group: Vec<_> = pending.by_ref().take(32).collect();
        if group.is_empty() {
            break;
        }
        for r in futures_util::future::join_all(group).await {
            pregnancies.extend(r?);
        }
    }
    grade_some(db, &facilities, &pregnancies, &mut rng).await?;
    seed_children(db, &homes, &facilities, &mut rng).await?;
    seed_couples(db, &homes, &mut rng).await?;
    seed_network(db, &facilities).await?;
    seed_referrals(db, &facilities, &pregnancies).await?;
    // Bearer tokens to try the FHIR interface with: the county hospital's system and an auditor's
    // reporting tool (printed once, like `mch-chain token issue`).
    let tokens = vec![
        (
            "hospital_system",
            "COUNTY-HOSP",
            crate::auth::service::issue_token_for(db, "COUNTY-HOSP", "县医院 HIS（演示）", Role::HospitalSystem)
                .await?,
        ),
        (
            "auditor",
            "PROV-MCH",
            crate::auth::service::issue_token_for(db, "PROV-MCH", "审计报表（演示）", Role::Auditor).await?,
        ),
    ];
    Ok(Some(DemoSeed { logins, tokens }))
}

/// The county MCH centre grades one woman in six, so the board, cases and reports have content:
/// a mix of yellow, orange, red and purple, some reports sent and acknowledged.
async fn grade_some(
    db: &Db,
    facilities: &[Facility],
    pregnancies: &[(String, String)],
    rng: &mut StdRng,
) -> Result<(), ServiceError> {
    let profiles: [serde_json::Value; 6] = [
        serde_json::json!({"factors": ["Y1.5"]}),
        serde_json::json!({"hb_g_l": 55}),
        serde_json::json!({"factors": ["O3.7"]}),
        serde_json::json!({"hb_g_l": 38}),
        serde_json::json!({"factors": ["R2.2"]}),
        serde_json::json!({"hbsag": "positive"}),
    ];
    for (i, (pid, county)) in pregnancies.iter().enumerate().filter(|(i, _)| i % 6 == 0) {
        // The county's MCH centre grades its own women.
        let Some(centre) = facilities
            .iter()
            .find(|f| f.level.as_str() == "county" && f.kind.as_str() == "mch_centre" && &f.jurisdiction == county)
        else {
            continue;
        };
        let grader = system_actor(centre.clone(), Role::Clinician);
        // Start from what the record shows (as the grading form does) and add the profile's finding.
        let form = crate::risk::service::grading_form(
            db,
            &grader,
            crate::risk::model::active_rule_set().to_string(),
            pid.clone(),
        )
        .await?;
        let mut facts = serde_json::to_value(&form.facts).unwrap_or_default();
        if let (Some(f), Some(extra)) = (facts.as_object_mut(), profiles[(i / 6) % profiles.len()].as_object()) {
            for (k, v) in extra {
                f.insert(k.clone(), v.clone());
            }
        }
        let facts: crate::risk::model::Facts = serde_json::from_value(facts).unwrap_or_default();
        let input = crate::risk::service::GradeInput {
            facts,
            ..Default::default()
        };
        let a = crate::risk::service::grade(
            db,
            &grader,
            crate::risk::model::active_rule_set().to_string(),
            pid.clone(),
            input,
        )
        .await?;
        if a.colour >= crate::risk::model::RiskColour::Orange && rng.gen_bool(0.6) {
            let view = crate::risk::service::unsent_reports(db, pid.clone()).await?;
            for report_id in view {
                crate::risk::service::send_report(db, &grader, report_id.clone()).await?;
                if rng.gen_bool(0.5) {
                    crate::risk::service::acknowledge_report(db, &grader, report_id).await?;
                }
            }
        }
    }
    Ok(())
}

async fn seed_woman(
    db: Db,
    home: Facility,
    name: String,
    id_number: String,
    ga_today: Option<u64>,
    seed: u64,
) -> Result<Option<(String, String)>, ServiceError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let county = home.jurisdiction.clone();
    let actor = system_actor(home, Role::Clinician);
    let today = today_china();
    let reg = identity::service::register(
        &db,
        &actor,
        PersonInput {
            name,
            id_number: Some(id_number),
            phone: Some(format!("139{:08}", rng.gen_range(0..100_000_000))),
            ..Default::default()
        },
        true,
    )
    .await?;
    let (Registration::Created { person_id } | Registration::Existing { person_id }) = reg else {
        return Ok(None);
    };
    let Some(ga_today) = ga_today else {
        return Ok(None);
    };
    let lmp = today - Days::new(ga_today);
    let booking_ga = rng.gen_range(42..=140).min(ga_today);
    let booking_date = lmp + Days::new(booking_ga);
    let gravidity = rng.gen_range(1..=4);
    let p = pregnancy::service::book(
        &db,
        &actor,
        person_id,
        BookingInput {
            booking_date: Some(booking_date.to_string()),
            lmp: Some(lmp.to_string()),
            gravidity: Some(gravidity.to_string()),
            parity: Some(rng.gen_range(0..gravidity).min(2).to_string()),
            ..Default::default()
        },
    )
    .await?;
    // The booking visit, then one visit in most contact windows that have opened.
    let height = rng.gen_range(150.0..172.0_f64).round();
    let mut weight = rng.gen_range(46.0..75.0_f64).round();
    let mut dates = vec![booking_date];
    for c in &schedule::national().contacts {
        if (c.from_days as u64) > booking_ga && (c.from_days as u64) <= ga_today && rng.gen_bool(0.8) {
            let day = rng.gen_range(c.from_days..=c.to_days).min(ga_today as i64);
            dates.push(lmp + Days::new(day as u64));
        }
    }
    for (n, d) in dates.iter().enumerate() {
        weight += 1.5;
        let ga_days = (*d - lmp).num_days();
        let late = ga_days >= 20 * 7;
        let next = schedule::national()
            .contacts
            .iter()
            .find(|c| c.from_days > ga_days)
            .map(|c| lmp + Days::new(c.from_days as u64 + 3));
        visits::service::record_visit(
            &db,
            &actor,
            p.id.clone(),
            VisitInput {
                visit_date: Some(d.to_string()),
                weight_kg: Some(format!("{weight:.1}")),
                height_cm: (n == 0).then(|| format!("{height}")),
                systolic_mmhg: Some(rng.gen_range(100..=138).to_string()),
                diastolic_mmhg: Some(rng.gen_range(60..=88).to_string()),
                fundal_height_cm: late.then(|| format!("{}", (ga_days / 7 - 2).clamp(10, 40))),
                abdominal_circumference_cm: late.then(|| format!("{}", rng.gen_range(85..=105))),
                fetal_heart_rate_bpm: (ga_days >= 12 * 7).then(|| rng.gen_range(120..=160).to_string()),
                fetal_presentation: late.then(|| "cephalic".to_string()),
                oedema: Some("none".into()),
                hb_g_l: Some(rng.gen_range(95..=135).to_string()),
                urine_protein: Some("negative".into()),
                complaints: Some(String::new()),
                advice: Some("注意营养，按时产检".into()),
                next_appointment: next
                    .filter(|n| n > d && (*n - *d).num_days() <= 120)
                    .map(|n| n.to_string()),
                ..Default::default()
            },
        )
        .await?;
    }
    Ok(Some((p.id, county)))
}

/// Mothers who delivered from a few days to six years ago, so every age of child health care has
/// children: a birth record, the visits of the contacts that have opened (weights and lengths
/// along a WHO curve of her own), most programme doses on time, newborn screening — with some
/// items left undone so the worklist and the schedules show overdue and missed ones, one baby of
/// an HBsAg-positive mother born yesterday whose 12-hour clock ran out (the worklist's first line), and a few high-risk newborns.
async fn seed_children(
    db: &Db,
    homes: &[&Facility],
    facilities: &[Facility],
    rng: &mut StdRng,
) -> Result<(), ServiceError> {
    use crate::growth::model::{self as growth, Indicator};
    let curves = |sex: growth::Sex, ind: Indicator| -> Vec<Vec<(f64, f64)>> {
        [-1.5, -0.5, 0.0, 0.5, 1.5]
            .iter()
            .map(|z| growth::curve(ind, sex, *z))
            .collect()
    };
    let wfa = [
        curves(growth::Sex::Male, Indicator::WeightForAge),
        curves(growth::Sex::Female, Indicator::WeightForAge),
    ];
    let lfa = [
        curves(growth::Sex::Male, Indicator::LengthForAge),
        curves(growth::Sex::Female, Indicator::LengthForAge),
    ];
    let today = today_china();
    let mut tasks = Vec::new();
    for i in 0..120usize {
        let home = homes[i % homes.len()].clone();
        // Ages spread over 0–6 years, more of them young (the busiest contacts).
        let age_days: u64 = match i % 4 {
            0 => rng.gen_range(1..60),
            1 => rng.gen_range(60..400),
            2 => rng.gen_range(400..1100),
            _ => rng.gen_range(1100..2190),
        };
        let mother_age = rng.gen_range(20..40);
        let birth = today - Days::new(mother_age * 365 + age_days + rng.gen_range(0..365));
        let name = format!(
            "{}{}",
            SURNAMES[rng.gen_range(0..SURNAMES.len())],
            GIVEN[rng.gen_range(0..GIVEN.len())]
        );
        let id_number = demo_id_number(rng, &home.jurisdiction, birth);
        let female = rng.gen_bool(0.48);
        let z = rng.gen_range(0..5usize);
        let sex = usize::from(female);
        // The county MCH centre grades the one HBsAg-positive mother (her baby's 12-hour clock).
        let grader = (i == 0)
            .then(|| {
                facilities.iter().find(|f| {
                    f.kind.as_str() == "mch_centre"
                        && f.level.as_str() == "county"
                        && f.jurisdiction == home.jurisdiction
                })
            })
            .flatten()
            .cloned();
        let child = DemoChild {
            grader,
            age_days: if i == 0 { 1 } else { age_days },
            female,
            twins: i % 29 == 7,
            preterm: i % 17 == 3,
            weight: wfa[sex][z].clone(),
            length: lfa[sex][z].clone(),
            seed: rng.r#gen(),
        };
        tasks.push(seed_mother_and_child(db.clone(), home, name, id_number, child));
    }
    let mut pending = tasks.into_iter();
    loop {
        let group: Vec<_> = pending.by_ref().take(24).collect();
        if group.is_empty() {
            break;
        }
        for r in futures_util::future::join_all(group).await {
            r?;
        }
    }
    Ok(())
}

struct DemoChild {
    age_days: u64,
    female: bool,
    twins: bool,
    preterm: bool,
    /// A county clinician who grades the mother HBsAg positive before the birth.
    grader: Option<Facility>,
    /// Her WHO weight and length curves (day, value), at her own z-score.
    weight: Vec<(f64, f64)>,
    length: Vec<(f64, f64)>,
    seed: u64,
}

async fn seed_mother_and_child(
    db: Db,
    home: Facility,
    name: String,
    id_number: String,
    kid: DemoChild,
) -> Result<(), ServiceError> {
    use crate::child::model::{ChildVisitInput, NewbornInput, ServiceInput, VaccinationInput};
    use crate::child::service as child;
    let mut rng = StdRng::seed_from_u64(kid.seed);
    let actor = system_actor(home.clone(), Role::Clinician);
    let today = today_china();
    let reg = identity::service::register(
        &db,
        &actor,
        PersonInput {
            name,
            id_number: Some(id_number),
            phone: Some(format!("138{:08}", rng.gen_range(0..100_000_000))),
            ..Default::default()
        },
        true,
    )
    .await?;
    let (Registration::Created { person_id } | Registration::Existing { person_id }) = reg else {
        return Ok(());
    };
    let born = today - Days::new(kid.age_days);
    let gestation: u64 = if kid.preterm {
        rng.gen_range(224..250)
    } else {
        rng.gen_range(261..290)
    };
    let lmp = born - Days::new(gestation);
    let p = pregnancy::service::book(
        &db,
        &actor,
        person_id,
        BookingInput {
            booking_date: Some((lmp + Days::new(rng.gen_range(56..90))).to_string()),
            lmp: Some(lmp.to_string()),
            gravidity: Some("1".into()),
            parity: Some("0".into()),
            ..Default::default()
        },
    )
    .await?;
    if let Some(centre) = &kid.grader {
        let grader = system_actor(centre.clone(), Role::Clinician);
        crate::risk::service::grade(
            &db,
            &grader,
            crate::risk::model::active_rule_set().to_string(),
            p.id.clone(),
            crate::risk::service::GradeInput {
                facts: serde_json::from_value(serde_json::json!({"hbsag": "positive"})).unwrap_or_default(),
                ..Default::default()
            },
        )
        .await?;
    }
    let weight_at = |day: f64, curve: &[(f64, f64)]| {
        curve
            .iter()
            .find(|(x, _)| *x >= day)
            .or(curve.last())
            .map_or(3.3, |(_, v)| *v)
    };
    let birth_weight = if kid.preterm {
        rng.gen_range(1700..2400)
    } else {
        (weight_at(0.0, &kid.weight) * 1000.0).round() as i32
    };
    let babies: Vec<NewbornInput> = (0..if kid.twins { 2 } else { 1 })
        .map(|_| NewbornInput {
            sex: Some(if kid.female { "female" } else { "male" }.into()),
            birth_time: Some(format!("{:02}:{:02}", rng.gen_range(0..24), rng.gen_range(0..60))),
            weight_g: Some(birth_weight.to_string()),
            length_cm: Some(format!("{:.1}", weight_at(0.0, &kid.length))),
            apgar_1: Some(rng.gen_range(7..=10).to_string()),
            apgar_5: Some(rng.gen_range(9..=10).to_string()),
            ..Default::default()
        })
        .collect();
    let birth = child::record_birth(
        &db,
        &actor,
        p.id.clone(),
        crate::pregnancy::model::DeliveryInput {
            delivery_date: Some(born.to_string()),
            discharge_date: Some((born + Days::new(rng.gen_range(1..4).min(kid.age_days))).to_string()),
            facility_name: Some("示范县人民医院".into()),
            mode: Some(if rng.gen_bool(0.3) { "caesarean" } else { "vaginal" }.into()),
            live_births: Some(babies.len().to_string()),
            stillbirths: Some("0".into()),
            maternal_death: None,
            complications: Some(String::new()),
        },
        babies,
    )
    .await?;
    for c in &birth.children {
        // The contacts that have opened, most of them done, on a day of their window.
        for item in crate::child::service::standard_schedule(born) {
            let (from, to) = (item.due_from, item.due_to);
            if from > today || rng.gen_bool(0.12) {
                continue;
            }
            let day = (from + Days::new(rng.gen_range(0..=(to - from).num_days().max(0)) as u64)).min(today);
            let age = (day - born).num_days() as f64;
            match item.kind {
                crate::child::schedule::ItemKind::Visit => {
                    let hb = (item.code == "m6" || item.code == "m8" || item.code == "m18" || item.code == "m30")
                        .then(|| rng.gen_range(98..=130).to_string());
                    let r = child::record_visit(
                        &db,
                        &actor,
                        c.id.clone(),
                        ChildVisitInput {
                            visit_date: Some(day.to_string()),
                            weight_kg: Some(format!("{:.1}", weight_at(age, &kid.weight))),
                            length_cm: Some(format!("{:.1}", weight_at(age, &kid.length))),
                            feeding: Some(
                                if age < 180.0 {
                                    "exclusive_breast"
                                } else {
                                    "complementary"
                                }
                                .into(),
                            ),
                            hb_g_l: hb,
                            hearing: (item.code == "m6"
                                || item.code == "m12"
                                || item.code == "m24"
                                || item.code == "m36")
                                .then(|| "pass".into()),
                            advice: Some("按时接种，合理喂养".into()),
                            ..Default::default()
                        },
                    )
                    .await;
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "demo child visit skipped");
                    }
                }
                crate::child::schedule::ItemKind::Vaccine => {
                    let given = format!("{day}T10:00");
                    let r = child::record_vaccination(
                        &db,
                        &actor,
                        c.id.clone(),
                        VaccinationInput {
                            vaccine: item.vaccine.map(str::to_string),
                            given_at: Some(given),
                            lot_number: Some(format!("{}{:04}", day.format("%Y%m"), rng.gen_range(0..10_000))),
                            manufacturer: Some("演示生物制品有限公司".into()),
                            expiry_date: Some((day + Days::new(400)).to_string()),
                            checks_done: Some("1".into()),
                            ..Default::default()
                        },
                    )
                    .await;
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "demo vaccination skipped");
                    }
                }
                _ if item.code == "blood_spot" || item.code == "hearing_initial" => {
                    let r = child::record_service(
                        &db,
                        &actor,
                        c.id.clone(),
                        ServiceInput {
                            code: Some(item.code.to_string()),
                            done_at: Some(format!("{day}T09:00")),
                            result: Some("pass".into()),
                            note: None,
                        },
                    )
                    .await;
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "demo service skipped");
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The critical-care network (责任片区): each delivery facility's responsible maternal and
/// neonatal centres and the green channel's duty phones.
async fn seed_network(db: &Db, facilities: &[Facility]) -> Result<(), ServiceError> {
    use crate::facility::model::DirectoryUpdate;
    let id = |code: &str| facilities.iter().find(|f| f.code == code).map(|f| f.id.clone());
    let Some(prov) = facilities.iter().find(|f| f.code == "PROV-MCH") else {
        return Ok(());
    };
    let admin = system_actor(prov.clone(), Role::Admin);
    let network: &[(&str, Option<&str>, Option<&str>, &str)] = &[
        ("TWN-DONGGUAN", Some("COUNTY-HOSP"), Some("CITY-CC"), "0550-7011001"),
        ("TWN-XIHE", Some("COUNTY-HOSP"), Some("CITY-CC"), "0550-7012001"),
        ("VIL-HONGXING", Some("COUNTY-HOSP"), Some("CITY-CC"), ""),
        ("COUNTY-MCH", Some("COUNTY-HOSP"), Some("CITY-CC"), "0550-7010120"),
        ("COUNTY-HOSP", Some("CITY-CC"), Some("CITY-CC"), "0550-7010999"),
        ("NBR-MCH", Some("CITY-CC"), Some("CITY-CC"), "0550-7020120"),
        ("TWN-NANSHAN", Some("CITY-CC"), Some("CITY-CC"), ""),
        ("CITY-CC", Some("PROV-CC"), Some("PROV-CC"), "0550-2120120"),
        ("PROV-CC", None, None, "0551-6120120"),
    ];
    for (code, maternal, neonatal, phone) in network {
        let Some(f) = facilities.iter().find(|f| f.code == *code) else {
            continue;
        };
        facility::service::update_directory(
            db,
            &admin,
            f.id.clone(),
            DirectoryUpdate {
                capabilities: f.capabilities.clone(),
                maternal_centre_id: maternal.and_then(id),
                neonatal_centre_id: neonatal.and_then(id),
                duty_phone: Some(phone.to_string()),
            },
        )
        .await?;
    }
    Ok(())
}

/// A few referrals from 东关镇 to the county centre in different states, so the board, the
/// timeline and the measures have content: one waiting to be acknowledged, one accepted, one
/// closed with feedback, one rejected and waiting for the next centre, one draft.
async fn seed_referrals(
    db: &Db,
    facilities: &[Facility],
    pregnancies: &[(String, String)],
) -> Result<(), ServiceError> {
    use crate::referral::model::Verb;
    use crate::referral::service::{self as referral, ActionInput, NewReferral};
    let find = |code: &str| facilities.iter().find(|f| f.code == code).cloned();
    let (Some(town), Some(hosp), Some(city)) = (find("TWN-DONGGUAN"), find("COUNTY-HOSP"), find("CITY-CC")) else {
        return Ok(());
    };
    let sender = system_actor(town.clone(), Role::Clinician);
    let centre = system_actor(hosp.clone(), Role::Clinician);
    let mut persons = Vec::new();
    for (pid, _) in pregnancies {
        let pid = pid.clone();
        let p = db
            .read(move |c| Ok::<_, ServiceError>(pregnancy::repo::by_id(c, &pid)?))
            .await?;
        if let Some(p) = p.filter(|p| p.township_code == town.township_code)
            && p.status == crate::pregnancy::model::PregnancyStatus::Active
        {
            persons.push(p.person_id);
        }
        if persons.len() == 5 {
            break;
        }
    }
    let plans: [(&str, &str, &str, &[Verb]); 5] = [
        ("emergency", "产前出血，疑胎盘早剥", "COUNTY-HOSP", &[Verb::Send]),
        (
            "urgent",
            "重度子痫前期，血压 168/112",
            "COUNTY-HOSP",
            &[Verb::Send, Verb::Acknowledge, Verb::Accept],
        ),
        (
            "emergency",
            "产后出血 1200 ml",
            "COUNTY-HOSP",
            &[
                Verb::Send,
                Verb::Accept,
                Verb::Depart,
                Verb::Arrive,
                Verb::Feedback,
                Verb::Close,
            ],
        ),
        (
            "urgent",
            "妊娠合并心脏病，心功能 III 级",
            "COUNTY-HOSP",
            &[Verb::Send, Verb::Reject],
        ),
        ("planned", "瘢痕子宫，计划分娩评估", "CITY-CC", &[]),
    ];
    for (person_id, (urgency, reason, to, steps)) in persons.into_iter().zip(plans) {
        let r = referral::open(
            db,
            &sender,
            NewReferral {
                person_id,
                urgency: urgency.into(),
                reason: reason.into(),
                to_facility: to.into(),
                patient_kind: None,
                details: None,
                send: false,
            },
        )
        .await?;
        let id = r.record.lifecycle.id.clone();
        for verb in steps {
            let by_sender = matches!(verb, Verb::Send | Verb::Depart | Verb::Close);
            let actor = if by_sender {
                &sender
            } else if to == "CITY-CC" {
                &system_actor(city.clone(), Role::Clinician)
            } else {
                &centre
            };
            let input = ActionInput {
                reason: (*verb == Verb::Reject).then(|| "ICU 暂无床位，建议转市级中心".to_string()),
                received_by: (*verb == Verb::Arrive).then(|| "钱医生".to_string()),
                diagnosis: (*verb == Verb::Feedback).then(|| "产后出血，宫缩乏力".to_string()),
                treatment: (*verb == Verb::Feedback).then(|| "宫缩剂、输血 4 U".to_string()),
                outcome: (*verb == Verb::Feedback).then(|| "survived".to_string()),
                ..ActionInput::default()
            };
            referral::act(db, actor, id.clone(), *verb, input).await?;
        }
    }
    Ok(())
}

/// Couples at each step before pregnancy (issue 12), in every township: screened and waiting for
/// the 早孕随访, screened high risk, registered (多证合一), booked (the follow-up closed itself
/// as 已孕 and her grading starts from the screening), lost (失访), and remarried couples with her
/// earlier child on the roster.
async fn seed_couples(db: &Db, homes: &[&Facility], rng: &mut StdRng) -> Result<(), ServiceError> {
    use crate::couple::model::{FollowupInput, MarriageInput, PrepregnancyInput, RegistrationInput};
    use crate::couple::service::{self as couple, CoupleInput, PartnerRef};
    let today = today_china();
    for i in 0..30usize {
        let home = homes[i % homes.len()].clone();
        let actor = system_actor(home.clone(), Role::Clinician);
        // Old enough at the marriage (≤ 5.5 years ago) for the legal ages of 20 and 22.
        let birth = today - Days::new(rng.gen_range(26..36) * 365);
        let his_birth = birth - Days::new(rng.gen_range(2..6) * 365);
        let his_number = demo_id_number_of(rng, &home.jurisdiction, his_birth, true);
        let person = |name: String, id: String| PersonInput {
            name,
            id_number: Some(id),
            phone: Some(format!("137{:08}", i * 7919)),
            ..Default::default()
        };
        let her = format!(
            "{}{}",
            SURNAMES[rng.gen_range(0..SURNAMES.len())],
            GIVEN[rng.gen_range(0..GIVEN.len())]
        );
        let him = format!(
            "{}{}",
            SURNAMES[rng.gen_range(0..SURNAMES.len())],
            ["建国", "志强", "伟", "磊", "军"][i % 5]
        );
        let step = i % 6;
        let married = today - Days::new(rng.gen_range(200..2000));
        let Ok(view) = couple::create_couple(
            db,
            &actor,
            CoupleInput {
                wife: PartnerRef {
                    person_id: None,
                    person: Some(person(her, demo_id_number(rng, &home.jurisdiction, birth))),
                },
                husband: PartnerRef {
                    person_id: None,
                    person: Some(person(him, his_number)),
                },
                marriage: MarriageInput {
                    marriage_date: Some(married.to_string()),
                    wife_remarriage: step == 5,
                    ..Default::default()
                },
            },
        )
        .await
        else {
            continue; // a demo ID number drawn twice
        };
        let id = view.couple.id.clone();
        let exam_days_ago = match step {
            0 | 1 => rng.gen_range(60..120),
            _ => rng.gen_range(100..300),
        };
        let high = step == 1 || i % 4 == 0;
        let wife: crate::couple::model::Findings = serde_json::from_value(serde_json::json!({
            "height_cm": 158, "weight_kg": if high { 78 } else { 55 }, "systolic_mmhg": 118, "diastolic_mmhg": 76,
            "hb_g_l": if high { 86 } else { 128 }, "hbsag": if i % 7 == 0 { "positive" } else { "negative" },
            "syphilis": "negative", "rubella_igg": "positive", "tsh_miu_l": 2.1,
            "diseases": if step == 1 { vec!["hypertension"] } else { Vec::new() }
        }))
        .unwrap_or_default();
        let husband: crate::couple::model::Findings =
            serde_json::from_value(serde_json::json!({"smoking": high, "hbsag": "negative", "syphilis": "negative"}))
                .unwrap_or_default();
        couple::record_prepregnancy(
            db,
            &actor,
            id.clone(),
            PrepregnancyInput {
                exam_date: Some((today - Days::new(exam_days_ago)).to_string()),
                wife,
                husband: Some(husband),
            },
        )
        .await?;
        let children = match step {
            5 => serde_json::json!([{"born": "2015-05-01", "before_remarriage_of": "wife"}]),
            _ => serde_json::json!([]),
        };
        let register = || RegistrationInput {
            date: None,
            children: serde_json::from_value(children.clone()).unwrap_or_default(),
            remarriage: None,
        };
        match step {
            2 | 5 => {
                couple::register_birth(db, &actor, id.clone(), register()).await?;
            }
            3 => {
                couple::register_birth(db, &actor, id.clone(), register()).await?;
                pregnancy::service::book(
                    db,
                    &actor,
                    view.wife.id.clone(),
                    BookingInput {
                        lmp: Some((today - Days::new(rng.gen_range(50..90))).to_string()),
                        gravidity: Some("1".into()),
                        parity: Some("0".into()),
                        ..Default::default()
                    },
                )
                .await?;
            }
            4 => {
                let v = couple::couple_view(db, &actor, id.clone()).await?;
                if let Some(f) = v.followups.iter().find(|f| f.open) {
                    couple::answer_followup(
                        db,
                        &actor,
                        id.clone(),
                        f.followup.id.clone(),
                        FollowupInput {
                            result: Some("lost".into()),
                            note: Some("电话停机，入户未遇".into()),
                            ..Default::default()
                        },
                    )
                    .await?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}
