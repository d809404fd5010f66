//! Policy cases, each naming its source clause (RULES.md §8).

use super::*;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn joint(born: &str) -> RosterChild {
    RosterChild {
        born: d(born),
        joint: true,
        before_remarriage_of: None,
        adopted: false,
        deceased: false,
        disabled_certified: false,
    }
}

fn before(of: Spouse, born: &str) -> RosterChild {
    RosterChild {
        joint: false,
        before_remarriage_of: Some(of),
        ..joint(born)
    }
}

fn case(date: &str, w: &str, h: &str, remarriage: bool, children: Vec<RosterChild>) -> Decision {
    evaluate(&Case {
        date: d(date),
        provinces: vec![w.into(), h.into()],
        remarriage,
        children,
    })
    .unwrap()
}

#[test]
fn the_contract_example_shandong_2016_third_child_is_not_allowed() {
    let r = case(
        "2019-06-01",
        "37",
        "37",
        false,
        vec![joint("2012-03-01"), joint("2016-08-09")],
    );
    assert_eq!((r.birth_order, r.procedure), (3, Procedure::NotAllowed));
    assert!(r.rule.starts_with("37-2016"), "{}", r.rule);
    assert!(r.source.contains("山东"));
    // Without `joint`, a child still counts as the couple's (no proof of another parent).
    let unmarked = RosterChild {
        joint: false,
        ..joint("2016-08-09")
    };
    let r = case("2019-06-01", "37", "37", false, vec![joint("2012-03-01"), unmarked]);
    assert_eq!((r.birth_order, r.procedure), (3, Procedure::NotAllowed));
}

#[test]
fn second_child_boundary_2015_12_31_approval_2016_01_01_registration() {
    // national-1980 (一孩为主) vs national-2016 全面两孩 (中发〔2015〕40号).
    let one = vec![joint("2012-03-01")];
    let r = case("2015-12-31", "11", "11", false, one.clone());
    assert_eq!((r.birth_order, r.procedure), (2, Procedure::Approval));
    assert!(r.rule.starts_with("national-1980"));
    let r = case("2016-01-01", "11", "11", false, one);
    assert_eq!((r.birth_order, r.procedure), (2, Procedure::Registration));
    assert!(r.rule.starts_with("national-2016"));
}

#[test]
fn third_child_boundary_2021_05_30_not_allowed_2021_05_31_registration() {
    // national-2016 vs the 三孩 policy of 2021-05-31 (2021 law Art. 18).
    let two = vec![joint("2012-03-01"), joint("2017-03-01")];
    let r = case("2021-05-30", "11", "11", false, two.clone());
    assert_eq!(r.procedure, Procedure::NotAllowed);
    let r = case("2021-05-31", "11", "11", false, two.clone());
    assert_eq!((r.birth_order, r.procedure), (3, Procedure::Registration));
    assert!(r.rule.starts_with("national-2021"));
    let r = case("2022-01-01", "33", "33", false, two);
    assert!(r.rule.starts_with("33-2021"), "Zhejiang 2021 file applies: {}", r.rule);
}

#[test]
fn hubei_2016_remarriage_arithmetic_counts_children_not_births() {
    // 鄂州卫生计生办发〔2016〕45号: combined one before → two more; two → one more; >2 → one more.
    let one_before = vec![before(Spouse::Husband, "2010-01-01"), joint("2017-01-01")];
    let r = case("2018-06-01", "42", "42", true, one_before.clone());
    assert_eq!((r.birth_order, r.procedure), (3, Procedure::Approval), "{}", r.rule);
    let mut three = one_before;
    three.push(joint("2018-01-01"));
    assert_eq!(
        case("2019-06-01", "42", "42", true, three).procedure,
        Procedure::NotAllowed
    );
    let two_before = vec![
        before(Spouse::Wife, "2009-01-01"),
        before(Spouse::Husband, "2011-01-01"),
    ];
    let r = case("2018-06-01", "42", "42", true, two_before.clone());
    assert_eq!((r.birth_order, r.procedure), (3, Procedure::Approval));
    let mut after = two_before;
    after.push(joint("2017-01-01"));
    assert_eq!(
        case("2019-06-01", "42", "42", true, after).procedure,
        Procedure::NotAllowed
    );
    let many = vec![
        before(Spouse::Wife, "2005-01-01"),
        before(Spouse::Wife, "2007-01-01"),
        before(Spouse::Husband, "2009-01-01"),
    ];
    assert_eq!(
        case("2018-06-01", "42", "42", true, many).procedure,
        Procedure::Approval
    );
    // Two jointly born children without a special case: no third (两孩 = two children).
    let r = case(
        "2018-06-01",
        "42",
        "42",
        false,
        vec![joint("2012-01-01"), joint("2016-05-01")],
    );
    assert_eq!(r.procedure, Procedure::NotAllowed);
}

#[test]
fn shandong_2016_art_20_cases_3_to_5() {
    // Art.20(3): one spouse two before, the other none, none jointly.
    let r = case(
        "2018-06-01",
        "37",
        "37",
        true,
        vec![
            before(Spouse::Husband, "2008-01-01"),
            before(Spouse::Husband, "2010-01-01"),
        ],
    );
    assert_eq!(r.procedure, Procedure::Approval);
    assert!(r.rule.contains("Art.20(3)"));
    assert_eq!(r.steps.len(), 2);
    assert_eq!(decision_due(&r.steps, d("2018-06-01")), Some(d("2018-07-01")));
    // Art.20(4): one before, the other none, one jointly.
    let r = case(
        "2018-06-01",
        "37",
        "37",
        true,
        vec![before(Spouse::Wife, "2008-01-01"), joint("2017-01-01")],
    );
    assert!(r.rule.contains("Art.20(4)"), "{}", r.rule);
    // Art.20(5): one each before, one jointly: the fourth child.
    let r = case(
        "2018-06-01",
        "37",
        "37",
        true,
        vec![
            before(Spouse::Wife, "2008-01-01"),
            before(Spouse::Husband, "2009-01-01"),
            joint("2017-01-01"),
        ],
    );
    assert_eq!((r.birth_order, r.procedure), (4, Procedure::Approval));
    assert!(r.rule.contains("Art.20(5)"));
    // Art.20(1): two children, one certified disabled.
    let mut ill = joint("2013-01-01");
    ill.disabled_certified = true;
    let r = case("2018-06-01", "37", "37", false, vec![ill, joint("2016-05-01")]);
    assert!(r.rule.contains("Art.20(1)"));
}

#[test]
fn guangdong_2021_a_deceased_child_and_premarital_children_are_not_counted() {
    // 44-2021: 子女死亡的，可以再生育至三个子女.
    let mut died = joint("2015-01-01");
    died.deceased = true;
    let r = case(
        "2023-03-01",
        "44",
        "44",
        false,
        vec![died, joint("2018-01-01"), joint("2020-01-01")],
    );
    assert_eq!((r.birth_order, r.procedure), (3, Procedure::Registration));
    assert!(r.rule.contains("子女死亡"), "{}", r.rule);
    assert_eq!(r.excluded, vec![(0, "已死亡的子女不计入孩次".to_string())]);
    // 再婚夫妻再婚后可以生育三个子女: three before the remarriage do not count.
    let r = case(
        "2023-03-01",
        "44",
        "44",
        true,
        vec![
            before(Spouse::Wife, "2010-01-01"),
            before(Spouse::Husband, "2012-01-01"),
            before(Spouse::Husband, "2014-01-01"),
            joint("2022-01-01"),
        ],
    );
    assert_eq!((r.birth_order, r.procedure), (2, Procedure::Registration));
    assert!(r.rule.contains("再婚后可以生育三个子女"));
    // Three children, one disabled: one more by approval.
    let mut ill = joint("2016-01-01");
    ill.disabled_certified = true;
    let r = case(
        "2023-03-01",
        "44",
        "44",
        false,
        vec![ill, joint("2018-01-01"), joint("2021-08-01")],
    );
    assert_eq!((r.birth_order, r.procedure), (4, Procedure::Approval));
}

#[test]
fn shanghai_2021_approval_counts_working_days() {
    let mut ill = joint("2016-01-01");
    ill.disabled_certified = true;
    let r = case(
        "2023-03-01",
        "31",
        "31",
        false,
        vec![ill, joint("2018-01-01"), joint("2021-08-01")],
    );
    assert_eq!(r.procedure, Procedure::Approval);
    // 2023-03-01 is a Wednesday: 7 + 10 working days.
    assert_eq!(decision_due(&r.steps, d("2023-03-01")), Some(d("2023-03-24")));
    let r = case(
        "2023-03-01",
        "31",
        "31",
        false,
        vec![joint("2016-01-01"), joint("2018-01-01"), joint("2021-08-01")],
    );
    assert_eq!(r.procedure, Procedure::NotAllowed);
}

#[test]
fn mixed_provinces_take_the_rule_more_favourable_to_the_couple() {
    // Wife Shandong, husband Hubei, 2018: the husband had one child before, one joint since.
    // Shandong Art.20(4) and Hubei both allow by approval; with one each before and one joint
    // (the fourth child), only Shandong Art.20(5) allows it.
    let kids = vec![
        before(Spouse::Wife, "2008-01-01"),
        before(Spouse::Husband, "2009-01-01"),
        joint("2017-01-01"),
    ];
    let r = case("2018-06-01", "37", "42", true, kids.clone());
    assert_eq!(r.procedure, Procedure::Approval);
    assert_eq!(r.province, "37");
    assert_eq!(r.considered.len(), 3);
    let r = case("2018-06-01", "420102", "370102", true, kids);
    assert_eq!(r.province, "37", "the order of the spouses does not matter");
    // 2016–2021, wife Beijing (national fallback), husband Guangdong: same rule, first listed kept.
    let r = case("2017-06-01", "11", "44", false, vec![joint("2014-01-01")]);
    assert_eq!(r.procedure, Procedure::Registration);
}

#[test]
fn adopted_children_count_in_2016_and_not_from_2021() {
    let adopted = |born| RosterChild {
        joint: false,
        adopted: true,
        ..joint(born)
    };
    // Shandong Art.20(2): two adopted after infertility, then she is pregnant.
    let r = case(
        "2018-06-01",
        "37",
        "37",
        false,
        vec![adopted("2012-01-01"), adopted("2014-01-01")],
    );
    assert!(r.rule.contains("Art.20(2)"), "{}", r.rule);
    // 孩次界定 (国卫办人口发〔2021〕21号): adopted children are not counted.
    let r = case(
        "2023-01-01",
        "44",
        "44",
        false,
        vec![adopted("2012-01-01"), adopted("2014-01-01")],
    );
    assert_eq!((r.birth_order, r.procedure), (1, Procedure::Registration));
}

#[test]
fn bad_input_is_refused_with_a_message() {
    let bad = |c: Case| evaluate(&c).unwrap_err().0;
    let base = Case {
        date: d("2020-01-01"),
        provinces: vec!["37".into(), "37".into()],
        remarriage: false,
        children: vec![],
    };
    assert!(
        bad(Case {
            provinces: vec!["37".into()],
            ..base.clone()
        })
        .contains("two codes")
    );
    assert!(
        bad(Case {
            provinces: vec!["37".into(), "99".into()],
            ..base.clone()
        })
        .contains("\"99\"")
    );
    assert!(
        bad(Case {
            children: vec![joint("2021-01-01")],
            ..base.clone()
        })
        .contains("born after")
    );
    assert!(
        bad(Case {
            children: vec![before(Spouse::Wife, "2010-01-01")],
            ..base.clone()
        })
        .contains("not a remarriage")
    );
    assert!(
        bad(Case {
            date: d("1970-01-01"),
            ..base
        })
        .contains("no policy rule")
    );
}

#[test]
fn honour_certificate_ends_with_births_of_2016_and_a_second_child_cancels_it() {
    // §8.3: births ≤ 2015-12-31 may qualify; ≥ 2016-01-01 do not.
    assert_eq!(
        honour_certificate(&[joint("2015-12-31")], None),
        HonourCertificate::Eligible
    );
    assert!(matches!(
        honour_certificate(&[joint("2016-01-01")], None),
        HonourCertificate::NotEligible { .. }
    ));
    assert_eq!(
        honour_certificate(&[joint("2010-05-01")], Some(d("2017-03-01"))),
        HonourCertificate::Cancelled { from: d("2017-03-01") }
    );
}

#[test]
fn every_rule_file_parses_and_the_nation_is_covered_every_day() {
    let sets = rule_sets();
    assert_eq!(sets.len(), 8);
    for day in [
        "1980-09-25",
        "2000-01-01",
        "2015-12-31",
        "2016-01-01",
        "2021-05-30",
        "2021-05-31",
        "2030-01-01",
    ] {
        assert!(rule_for("00", d(day)).is_some(), "{day}");
    }
}
